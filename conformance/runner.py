"""One run of the suite against one target: start it, run cases, always tear down.

Teardown happens on every way out: normal end, a failing case, Ctrl-C
(KeyboardInterrupt), SIGTERM/SIGHUP (turned into KeyboardInterrupt so the same
path runs), and interpreter exit.  A run killed with SIGKILL leaves its
namespaces behind; the next run's lab removes them (lab.remove_stale_labs).
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from .case import Case
from .confirm import confirm_failure
from .engine import Engine
from .fence import ON
from .lab import LabError
from .proctree import children
from .safety import UnsafeTarget
from .targets import Target, make_target
from .verdict import ERROR, FAIL, PASS, Verdict
from .tcp import IPV4
from .wire import Wire, WireError, side_by_side
from .witness import Witness, summary

if TYPE_CHECKING:
    from .middlebox import MiddleboxView

# Further runs of a case whose frames the link damaged, before it is an error.
LINK_RETRIES = 3

_running: list["Runner"] = []


def _stop_all() -> None:
    for runner in list(_running):
        runner.stop()


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _interrupt_with_children(signum, frame):
    # Ctrl-C reaches every process of the terminal's group; SIGTERM reaches
    # only the one it is sent to.  Passed on to this process's own children
    # (an xdist controller's workers), by PID, they tear their labs down too.
    for pid in children(os.getpid()):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    _interrupt(signum, frame)


def install_signal_handlers(pass_to_children: bool = False) -> None:
    """Make SIGTERM and SIGHUP unwind like Ctrl-C, so teardown code runs;
    with `pass_to_children` (an xdist controller), in the workers too."""
    handler = _interrupt_with_children if pass_to_children else _interrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, handler)


atexit.register(_stop_all)


class Runner:
    """A started target with its wire and engine."""

    def __init__(self, target: Target, pcap_dir: Path | None = None,
                 share: tuple[int, int] = (0, 1), confirm: int = 0,
                 link_retries: int = LINK_RETRIES, fences: str = ON):
        self.target, self.pcap_dir, self.share = target, pcap_dir, share
        self.fences = fences              # fence.py: on, off or audit
        self.confirm = confirm            # further runs a failure must repeat in
        self.link_retries = link_retries  # further runs of a case the link damaged
        self.wire: Wire | None = None
        self.witness: Witness | None = None
        self.middlebox: MiddleboxView | None = None
        self.engine: Engine | None = None
        self.failure: str | None = None   # why the run cannot start, once known

    @classmethod
    def for_target(cls, name: str, sysctls: dict | None = None, pcap_dir: Path | None = None,
                   outside=None, share: tuple[int, int] = (0, 1), confirm: int = 0,
                   faults=None, link_retries: int = LINK_RETRIES,
                   fences: str = ON) -> "Runner":
        """`outside`: the description of a target the suite does not build
        (targets.RemoteConfig, ContainerConfig); `share`: this process's
        (index, count) among the processes testing the same target; `faults`:
        what the lab's link does to frames (faults.Faults)."""
        return cls(make_target(name, sysctls, outside, faults), pcap_dir, share, confirm,
                   link_retries, fences)

    def start(self) -> None:
        if self.engine is not None or self.failure:
            return
        _running.append(self)
        try:
            self.target.start()
            middlebox_at = self.target.middlebox_at
            self.wire = Wire(self.target.links, self.target.allowed_targets,
                             promiscuous=self.target.promiscuous,
                             also_to=tuple(middlebox_at.host_ips.values()) if middlebox_at else ())
            if self.target.check_link_at_start:
                self._check_link()
            if self.target.witness_at is not None:
                namespace, iface = self.target.witness_at
                self.witness = Witness.on(iface, namespace, settle=self.target.link_settle)
            if middlebox_at is not None:
                from .middlebox import MiddleboxView    # with a firewall in the path only
                self.middlebox = MiddleboxView.on(middlebox_at)
            self.engine = Engine(self.target, self.wire, self.pcap_dir, self.share,
                                 self.witness, self.middlebox, self.fences)
        except (LabError, WireError, UnsafeTarget, OSError) as exc:
            self.failure = str(exc)
            self.stop()

    def _check_link(self) -> None:
        """The engine proves the link with an ICMP echo after every case; a
        target that does not answer one at all is refused before the first."""
        for family, link in self.target.links.items():
            if not any(self.wire.echo(link) for _ in range(3)):
                raise LabError(
                    f"{link.target_ip} does not answer ICMP echo over {family} on {link.iface}: "
                    f"the suite checks after every case that the link still works with an "
                    f"echo, so it cannot decide anything without one (allow ping on the "
                    f"target)")

    def run(self, case: Case, family: str = IPV4) -> Verdict:
        verdict = self._run_undamaged(case, family)
        return confirm_failure(verdict, lambda: self._again(case, family), self.confirm)

    def _run_undamaged(self, case: Case, family: str) -> Verdict:
        """A run whose frames the link delivered as sent (witness.py), and whose
        sends the tester made on time (engine.STALL_LIMIT): any other run goes
        again, each time with its own capture, up to `link_retries` times; if
        every run failed so, the last one's error stands, saying why."""
        verdict = self._run_once(case, family)
        damaged = []
        while (verdict.damage or verdict.stalled) and len(damaged) < self.link_retries:
            damaged.append(verdict.damage or verdict.stalled)
            self.target.before_rerun()
            verdict = self._run_once(case, family)
        verdict.retries = len(damaged)
        if not damaged or not (verdict.damage or verdict.stalled):
            return verdict
        runs = len(damaged) + 1
        late = any(isinstance(each, str) for each in damaged) or bool(verdict.stalled)
        if not late:
            verdict.reason = (f"the link damaged all {runs} runs of this case, so no verdict "
                              f"can stand; in the last: {summary(verdict.damage)}")
        else:
            last = summary(verdict.damage) if verdict.damage else verdict.stalled
            verdict.reason = (f"in all {runs} runs of this case the link damaged the evidence "
                              f"or the tester was late, so no verdict can stand; in the last, "
                              f"{last}")
        return verdict

    def _again(self, case: Case, family: str) -> Verdict:
        """A confirming run, without a capture of its own: the case's pcap stays
        the first run's, whose ladder the verdict shows."""
        if self.engine is None:
            return self._run_undamaged(case, family)
        self.target.before_rerun()
        keep, self.engine.pcap_dir = self.engine.pcap_dir, None
        try:
            return self._run_undamaged(case, family)
        finally:
            if self.engine is not None:
                self.engine.pcap_dir = keep

    def _run_once(self, case: Case, family: str) -> Verdict:
        self.start()
        if self.failure:
            raise LabError(self.failure)
        verdict = self.engine.run(case, family)
        if not self.target.alive():
            # The target died during the case: whatever the case saw after is
            # no answer.  A crash the stack itself reports (a netstack panic
            # takes its sandbox down) is a finding about the target, at the
            # level of what the case checks, and a baseline may list it;
            # otherwise (a process that died, nothing said why) the tool
            # cannot decide.
            last_words = self.target.post_mortem()
            died = (f"the target {self.target.name} died during this case"
                    + (f": {last_words}" if last_words else ""))
            if last_words and self.target.crash_is_the_stacks:
                verdict.actual = died + _before_death(verdict)
                if verdict.outcome != FAIL:
                    verdict.requirement = case.primary
                    verdict.expected = "the target answers the case's segments and stays up"
                verdict.outcome = FAIL
                verdict.reason = "it was restarted for the next case"
            else:
                verdict.reason = (died + _before_death(verdict)
                                  + "; it was restarted for the next case")
                verdict.outcome = ERROR
            try:
                self.target.recover()
            except LabError as exc:
                self.failure = f"the target died and could not be restarted: {exc}"
                verdict.reason = verdict.reason.replace("it was restarted for the next case",
                                                        f"it could not be restarted: {exc}")
        return verdict

    def stop(self) -> None:
        # The packet sockets close side by side with the target's stop: each
        # close waits out an RCU grace period (wire.side_by_side).
        closers = [each.close for each in (self.wire, self.witness, self.middlebox)
                   if each is not None]
        self.wire = self.witness = self.middlebox = None
        self.engine = None
        try:
            side_by_side([self.target.stop, *closers])
        finally:
            if self in _running:
                _running.remove(self)

    def __enter__(self) -> "Runner":
        self.start()
        if self.failure:
            raise LabError(self.failure)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _before_death(verdict: Verdict) -> str:
    """What the case had found when the target died (it may die in the cleanup)."""
    if verdict.outcome == PASS:
        return " (every check of the case had passed before)"
    if verdict.outcome == FAIL:
        return (f" (before, the case had failed at line {verdict.line}: expected "
                f"{verdict.expected}; actual {verdict.actual})")
    return ""
