"""The engine: runs one case against a target and returns a verdict.

It keeps the tester's view of the connection in RFC 9293 terms (ISS, IRS,
SND.NXT, SND.UNA, RCV.NXT, SND.WND), injects the case's segments through the
wire, and reads the target's answers in capture order.  Every target segment
must be accounted for by an ``expect`` step, like packetdrill: an answer the
case did not foresee makes the next expectation fail, rather than being
skipped silently.  The one exception is a *retransmission* (a segment whose
sequence space the target has already sent, RFC 9293 section 3.8.1): it is
shown on the ladder but is not an answer, unless a step asks for one.

Outcomes: a mismatch in the case's own steps is a FAIL of the step's
requirement.  A mismatch while reaching the starting state (the setup), a dead
agent, a broken wire, or a lab that does not answer a sanity probe after the
case is an ERROR: the suite could not decide.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import blackbox, fence, tcp
from .agent_client import AgentFailure
from .application import Application, BlackBoxApplication
from .case import Case
from .connection import Connection
from .evidence import DeviceEvent, Event, NoteEvent, SegmentEvent, SilenceEvent, describe
from .injector import Injector
from .matching import candidates, choose, mismatches
from .observers import AgentObserver, ProbeObserver
from .outcomes import CannotDecide, NotApplicable, StepFailed
from .probe import WireProbe, sanity_probe
from .seq import MOD, seq_add
from .settings import CaseSettings
from .steps import (ICMP_ERRORS, App, Expect, FirewallCheck, OneOf, Send, SendIcmp, Silence,
                    StateCheck, Wait,
                    fmt_duration)
from .stream import Flow, SegmentStream
from .tcp import IPV4
from .verdict import ERROR, FAIL, NOT_APPLICABLE, PASS, Verdict
from .wire import Frame, Wire, WireError, decode, echo_request, icmp_error
from .witness import Witness, ip_packet, summary

if TYPE_CHECKING:
    from .middlebox import MiddleboxView


class Engine:
    """Runs cases against one target over one wire."""

    def __init__(self, target, wire: Wire, pcap_dir: Path | None = None,
                 share: tuple[int, int] = (0, 1), witness: Witness | None = None,
                 middlebox: MiddleboxView | None = None, fences: str = fence.ON):
        self.target, self.wire, self.pcap_dir = target, wire, pcap_dir
        self.fences = fence.policy(target, fences)    # fence.py: silences decided early
        self.witness = witness      # the capture at the target's end, where there is one
        self.middlebox = middlebox  # the device in the path's side of a case, if it is one
        # Called with the case run once its setup is done, before its own
        # steps: the project's tests alter the target there, to show that a
        # case fails when the target answers differently.
        self.after_setup = None
        self._ports = port_pairs(target.tester_ports, TARGET_PORTS, share)

    def run(self, case: Case, family: str = IPV4) -> Verdict:
        tester_port, target_port = next(self._ports)
        # Further connections of the case get tester ports of their own.
        tester_ports = [tester_port] + [next(self._ports)[0] for _ in case.connections[1:]]
        if self.target.agent is None:
            # Black-box mode: the case runs against the ports the user named,
            # if it asks nothing of the application beyond them.
            reason = blackbox.cannot_run(case, self.target.listen_port, self.target.closed_port)
            if reason:
                return Verdict(NOT_APPLICABLE, case, target=self.target.describe(),
                               family=family, reason=f"not run in black-box mode (no agent on "
                                                     f"the target): {reason}")
            target_port = (self.target.listen_port if case.role == "listener"
                           else self.target.closed_port)
        run = _CaseRun(self, case, family, tester_ports, target_port)
        return run.execute()


# How long the tester may take from the end of one step to a send.  The
# engine does a few milliseconds of work there; a busy machine (too many
# workers for its cores) can stop it for hundreds, and a target's
# retransmission timer (200 ms on gVisor) does not wait.
STALL_LIMIT = 0.1

# The target's ports for cases whose application the agent drives.
TARGET_PORTS = range(10000, 30000)


def port_pairs(tester_ports: range, target_ports: range, share: tuple[int, int] = (0, 1)):
    """Endless (tester port, target port) pairs: each case gets its own
    4-tuple, so that nothing a previous case left behind (TIME-WAIT,
    retransmissions) can meet it.  `share` = (index, count) gives each of
    `count` processes testing one target its own slice of both ranges, so
    that parallel workers never share a 4-tuple."""
    index, count = share
    testers, targets = tester_ports[index::count], target_ports[index::count]
    start = random.randrange(len(testers))
    for n in itertools.count(start):
        yield testers[n % len(testers)], targets[n % len(targets)]


class _CaseRun:
    """One run of one case: the steps in order, each with the part that does
    it (the stream, the injector, the application, the state observer), and
    the verdict from how the steps ended."""

    def __init__(self, engine: Engine, case: Case, family: str, tester_ports: list[int],
                 target_port: int):
        self.engine, self.case, self.family = engine, case, family
        self.wire = engine.wire
        blind = engine.target.agent is None       # black-box mode (blackbox.py)
        self.link = engine.target.links.get(family)
        self.target_port = target_port
        self.flows: dict[str, Flow] = {}
        for name, port in zip(case.connections, tester_ports):
            iss = random.randrange(MOD)
            self.flows[name] = Flow(name, port, Connection.opening(iss), target_port=target_port)
        self.flow = self.flows[case.connections[0]]   # the connection the current step is about
        self.ladder: list[Event] = []
        # A NAT may give the end host's connections other ports (RFC 5382 4.1).
        self.stream = SegmentStream(self.wire, self.flows, self.ladder,
                                    learn_target_ports=engine.target.middlebox == "nat")
        self.app = (BlackBoxApplication if blind else Application)(
            engine.target, case, family, self.link, target_port, self.flows, self.ladder)
        self.ref_time = time.time()        # when the previous step ended
        self.step_end: float | None = None  # when the previous step's method returned
        self.stall: tuple[int, float] | None = None   # (line, seconds): the worst lag
        self.sent_at: float | None = None  # perf_counter of the last injection
        self.exchanges: list[float] = []
        self.waits = 0.0
        # Seconds spent in windows that ended with no answer; the lines of
        # the steps whose window a fence ended (fence.py), and in audit mode
        # every fence's record.
        self.unanswered = 0.0
        self.fenced: list[int] = []
        self.fence_audit: list[dict] = []
        # The tester's segment when the step before the current one sent it
        # (a fence may end the window that follows it), else None.
        self.just_sent: tcp.Segment | None = None
        # The tester's segments that occupied sequence space: (its port, the
        # sequence number just past it, when it left), for fence.nothing_pending.
        self.occupying: list[tuple[int, int, float]] = []
        # For a tester segment that occupied sequence space, on a target that
        # shows what its kernel took (fence.TAKEN_VIEW): the connection's
        # mark read just before it was sent, the question being whether it
        # took any of it.
        self.mark_read = False
        self.mark: fence.Mark | None = None
        self.alternatives: list[str] = []
        self.followed: list[str] = []
        self.phase = "setup"
        # Checks of the case's own steps that were decided, and state checks
        # the target could not show (see Target.state_view).
        self.decided = 0
        # The requirements whose only checks were device steps nobody could
        # read (a real device's tracker): a pass must not stand for them.
        self.unread: set[str] = set()
        self.read: set[str] = set()
        self.unobserved: list[str] = []
        self.app_at = 0.0             # when the target's application last acted
        self.settings = CaseSettings(engine.target, case.sysctls, self.ladder)
        self.probe = WireProbe(self.wire, self.stream, self.link)
        self.injector = Injector(self.wire, self.link, engine.target.name)
        # Without an agent, a wire probe decides the final state checks.
        reason = engine.target.state_view_reason
        self.observer = (ProbeObserver(self.probe, blackbox.probe_points(case.steps), reason)
                         if blind else AgentObserver(self.app, reason))

    # The current step's connection, in RFC 9293 terms.
    conn = property(lambda self: self.flow.conn)
    tester_port = property(lambda self: self.flow.tester_port)

    def execute(self) -> Verdict:
        case = self.case
        started = time.perf_counter()
        verdict = Verdict(PASS, case, target=self.engine.target.describe(), family=self.family)
        try:
            if self.link is None:
                raise NotApplicable(f"the target has no {self.family} address (none was "
                                    f"configured or found)")
            ports = [flow.tester_port for flow in self.flows.values()]
            self.wire.watch(self.link, ports)
            if self.engine.witness is not None:
                self.engine.witness.watch(self.link, ports)
            if self.engine.middlebox is not None:
                self.engine.middlebox.watch(ports)
            self.app.call("cleanup")
            self.settings.apply()
            try:
                if case.role == "listener":
                    self._app(App(line=case.line, note=None, requirement=None, op="listen"))
                self._steps(case.setup_steps)
            except StepFailed as exc:
                raise CannotDecide(self.stream.offload_suspected() or (
                    f"the target did not reach the starting state {case.start}: expected "
                    f"{exc.expected}; got {exc.actual}")) from None
            self.phase = "case"
            self.stream.in_setup = False
            if self.engine.after_setup is not None:
                self.engine.after_setup(self)
            self._steps(case.steps)
            primary = case.primary.id
            if primary in self.unread and primary not in self.read:
                raise CannotDecide(
                    f"the case's requirement {primary} is checked only by steps that cannot "
                    f"be observed on {self.engine.target.name}: {', '.join(self.unobserved)}")
            if self.unobserved and not self.decided:
                why = self.engine.target.state_view_reason
                raise CannotDecide(
                    f"nothing this case checks can be observed on {self.engine.target.name}: "
                    f"{', '.join(self.unobserved)}" + (f" ({why})" if why else ""))
        except StepFailed as exc:
            step = exc.step
            verdict.outcome = FAIL
            verdict.requirement = case.requirement(exc.requirement
                                                   or getattr(step, "requirement", None))
            verdict.line, verdict.expected, verdict.actual = step.line, exc.expected, exc.actual
            if exc.alternative:
                self.alternatives.append(exc.alternative)
        except CannotDecide as exc:
            verdict.outcome, verdict.reason = ERROR, str(exc)
        except NotApplicable as exc:
            verdict.outcome, verdict.reason = NOT_APPLICABLE, str(exc)
        except (AgentFailure, WireError, OSError) as exc:
            verdict.outcome, verdict.reason = ERROR, f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(verdict)
        self._check_link(verdict)
        if self.stall is not None and verdict.outcome != NOT_APPLICABLE:
            line, gap = self.stall
            verdict.outcome = ERROR
            verdict.stalled = (f"the tester sent the segment of line {line} {gap * 1000:.0f} ms "
                               f"after the step before it ended (the machine was busy): the "
                               f"target's timers ran on meanwhile, so the case's timing "
                               f"cannot be trusted")
            verdict.reason = verdict.stalled
        if verdict.outcome == FAIL and self.stream.offload_suspected():
            verdict.outcome, verdict.reason = ERROR, self.stream.offload_suspected()
        if verdict.outcome not in (ERROR, NOT_APPLICABLE):
            problem = sanity_probe(self.wire, self.link)
            if problem:
                verdict.outcome, verdict.reason = ERROR, problem
        verdict.alternative = ", ".join(self.alternatives) or None
        verdict.followed = list(self.followed)
        verdict.fenced, verdict.fence_audit = self.fenced, self.fence_audit
        verdict.unanswered = self.unanswered
        verdict.unobserved = self.unobserved
        verdict.wall_time = time.perf_counter() - started
        return verdict

    def _check_link(self, verdict: Verdict) -> None:
        """Whatever the case found, it stands only if the link delivered every
        frame of it as sent (witness.py); else it is an error naming the damage."""
        witness = self.engine.witness
        if witness is None or self.link is None:
            return
        sent = [Frame(seg.time, seg.direction == tcp.OUT, seg.frame)
                for seg in self.stream.segments]
        try:
            damage = witness.damage(sent, self._read_rest)
        except OSError as exc:
            verdict.outcome = ERROR
            verdict.reason = f"the witness at {witness.where} could not be read: {exc}"
            return
        if damage:
            verdict.damage = damage
            verdict.outcome = ERROR
            verdict.reason = (f"the link damaged this case's evidence, so no verdict can "
                              f"stand: {summary(damage)}")

    def _read_rest(self, deadline: float) -> list[Frame]:
        """The tester's frames of the case not read yet (sent or answered after
        the last step: the cleanup's, say)."""
        frames = []
        while (frame := self.wire.receive(deadline)) is not None:
            if decode(frame) is not None:   # a fence's late echo reply is no segment
                frames.append(frame)
        return frames

    def _finish(self, verdict: Verdict) -> None:
        # Whatever the target sent that no step examined goes on the ladder too.
        try:
            self.stream.drain(self.flow, time.time())
        except OSError:
            pass
        try:
            self.app.call("cleanup")
        except (CannotDecide, NotApplicable, AgentFailure):
            pass
        if not self.app.closes_connections and self.probe.reset(self.flows.values()):
            self._note("after the case: RST to each connection of the case (black-box mode: "
                       "no agent closes them)")
        problem = self.settings.put_back()
        if problem:
            verdict.outcome, verdict.reason = ERROR, problem
        verdict.ladder, verdict.exchanges, verdict.protocol_waits = \
            self.ladder, self.exchanges, self.waits
        if self.engine.pcap_dir is not None:
            name = f"{self.case.id}-{self.family}"
            verdict.pcap = self.stream.save(self.engine.pcap_dir / f"{name}.pcap")
            if self.engine.middlebox is not None:
                try:
                    verdict.pcap_inside = self.engine.middlebox.save(
                        self.engine.pcap_dir / f"{name}-inside.pcap", time.time())
                except OSError:
                    pass

    def _steps(self, steps) -> None:
        # One method per kind of step: a new kind touches this table, its
        # method and the schema.
        run = {Send: self._send, Expect: self._expect, Silence: self._silence, App: self._app,
               StateCheck: self._state, Wait: self._wait, OneOf: self._one_of,
               FirewallCheck: self._firewall, SendIcmp: self._icmp}
        for step in steps:
            self.flow = self.flows[step.conn]
            if self.phase == "case" and _decides(step):
                self.decided += 1
                view = self.engine.middlebox
                if not (isinstance(step, FirewallCheck) and step.tracks
                        and view is not None and view.firewall_ns is None):
                    self.read.add(step.requirement or self.case.primary.id)
            if step.note:
                self._note(step.note)
            if not isinstance(step, (Send, Expect, OneOf)):
                self.sent_at = None  # a round trip is a send answered by the next expect
            if isinstance(step, Send):
                self._mind_the_gap(step)
            run[type(step)](step)
            self.step_end = time.time()
            if not isinstance(step, Send):
                self.just_sent = None   # only the step right after a send may be fenced

    def _mind_the_gap(self, step: Send) -> None:
        """Remember the longest time the tester took, between one step's end
        and a send, beyond STALL_LIMIT: a busy machine can hold the tester back
        while the target's timers run on (a retransmission, a timeout), and the
        segment then meets another state than the case was written for."""
        if self.step_end is None:
            return
        gap = time.time() - self.step_end
        if gap > STALL_LIMIT and (self.stall is None or gap > self.stall[1]):
            self.stall = (step.line, gap)

    def _wait(self, step: Wait) -> None:
        time.sleep(step.duration)
        self.waits += step.duration
        self.ref_time = time.time()

    def _note(self, text: str, mark: str = "") -> None:
        self.ladder.append(NoteEvent(time.time(), text, mark))

    def _send(self, step: Send) -> None:
        self.mark_read = (self.engine.fences.marks and self.phase == "case"
                          and bool(step.flags & (tcp.SYN | tcp.FIN) or step.payload
                                   or step.length is not None))
        if self.mark_read:
            self.mark = self.app.mark(self.flow)
        before = time.time()    # an answer may be stamped before send() returns
        self.sent_at = self.injector.send(step, self.flow)
        seg = self.just_sent = decode(Frame(0.0, True, self.flow.last_sent))
        if seg is not None and seg.seg_len:
            self.occupying.append((seg.sport, seq_add(seg.seq, seg.seg_len), before))
        self.ref_time = time.time()

    def _window(self, step, deadline: float, want_retransmission: bool = False):
        """The target's next segment on the flow before `deadline`, or None.
        Directly after a segment that can only be answered at once, and where
        the target answers in order, a fence ends an unanswered window when
        its echo reply comes (fence.py); in audit mode the window runs on, and
        an answer after the reply is recorded."""
        start = time.time()
        policy = self.engine.fences
        fenced = policy.sends and self.just_sent is not None and not want_retransmission
        if fenced and policy.quiet:
            settled = self._quiet    # whatever the segment was, judged by what is left to send
        elif fenced and fence.immediate(self.just_sent):
            fenced = fence.nothing_pending(self.occupying, self._target_segments(), start)
            settled = None
        elif fenced and self.mark_read:
            # Earlier segments must be done with; this one is judged by its mark.
            fenced = fence.nothing_pending(self.occupying[:-1], self._target_segments(), start)
            settled = self._untaken
        else:
            fenced = False
        if fenced:
            seg = self._fenced(step, start, deadline, policy.decides, settled)
        else:
            seg = self.stream.next(self.flow, deadline, want_retransmission)
        if seg is None:
            # Waiting for nothing, not the tool's own cost: counted with the
            # case's waits (results.json), and apart, for the fences' figures.
            self.unanswered += time.time() - start
            self.waits += time.time() - start
        return seg

    def _target_segments(self) -> list[tcp.Segment]:
        return [seg for seg in self.stream.segments if seg.direction == tcp.IN]

    def _untaken(self, _deadline: float) -> str | None:
        """Why the segment just sent can draw no delayed ACK (its kernel took
        none of it), or None when it may."""
        after = self.app.mark(self.flow)
        if not fence.untaken(self.mark, after):
            return None
        return ("the target took none of the segment (" + (
            f"still {after.state}, RCV.NXT unchanged" if after is not None
            else "no connection left") + ")")

    def _quiet(self, deadline: float) -> str | None:
        """Why nothing more can come on the connection before `deadline`
        (fence.QUIET_VIEW), or None when the target may send something by
        itself before then."""
        asked = time.time()     # the agent's count runs from a later moment
        sends_in = self.app.sends_in(self.flow)
        if sends_in is None:
            return "the target has nothing to send by itself"
        if asked + sends_in <= deadline:
            return None
        return (f"the target sends nothing by itself for {sends_in * 1000:.0f} ms "
                f"(its timer), past the window's end")

    def _echo(self, deadline: float) -> tuple[tcp.Segment | None, float | None, float]:
        """An ICMP echo request sent now: (the answer that came before its
        reply, or None; when the reply came, or None; when it was sent)."""
        ident = random.randrange(1, 65536)
        sent = time.time()      # the reply may be stamped before send() returns
        self.wire.send(echo_request(self.link, ident))
        seg = self.stream.next(self.flow, deadline, fence=ident)
        return seg, self.stream.fence_reply, sent

    def _fenced(self, step, start: float, deadline: float, decides: bool, settled=None):
        """The window's answer, with a fence sent FENCE_AFTER into it; with
        `settled` (given the deadline: _untaken, _quiet), the reply ends the
        window only where it says why no later answer can come in it."""
        seg = self.stream.next(self.flow, min(deadline, start + fence.FENCE_AFTER))
        if seg is not None or time.time() >= deadline:
            return seg
        seg, reply, sent = self._echo(deadline)
        if seg is not None or reply is None:
            return seg                  # an answer came first, or the echo's reply never did
        why = "" if settled is None else settled(deadline)
        if why is None:
            return self.stream.next(self.flow, deadline)    # a later answer may be owed
        if self.engine.fences.quiet:
            # What the stack queued before the agent was asked leaves before this reply.
            seg, flushed, _ = self._echo(deadline)
            if seg is not None or flushed is None:
                return seg
            why += ", and a second echo's reply came with nothing before it"
        if decides:
            self.fenced.append(step.line)
            self._note(f"fence: an ICMP echo sent {(sent - start) * 1000:.1f} ms into the window "
                       f"came back {(reply - sent) * 1000:.2f} ms later with no answer before "
                       f"it{', and ' + why if why else ''}: the window (line {step.line}) "
                       f"ends here", mark="fence")
            return None
        late = self.stream.next(self.flow, deadline)
        self.fence_audit.append({"line": step.line, "reply_ms": round((reply - sent) * 1000, 3),
                                 "saved_ms": round((deadline - reply) * 1000, 1),
                                 "overtaken": late is not None, "untaken": bool(why)})
        return late

    def _icmp(self, step: SendIcmp) -> None:
        """An ICMP error about the connection, quoting the target's last
        segment on it as the tester got it (behind NAT: translated)."""
        answers = [seg for seg in self.stream.segments
                   if seg.direction == "in" and seg.dport == self.flow.tester_port]
        if not answers:
            raise CannotDecide(f"line {step.line}: 'icmp' quotes the target's last segment on "
                               f"the connection, and the target has sent none")
        _type4, code4, _type6, code6, words = ICMP_ERRORS[step.error]
        frame = icmp_error(self.link, code6 if self.family == tcp.IPV6 else code4,
                           ip_packet(answers[-1].frame))
        self.flow.last_sent, self.flow.last_sent_at = frame, time.time()
        self.wire.send(frame)
        self._note(f"--> ICMP {words}, quoting {self.stream.describe(answers[-1], self.flow)}",
                   mark="icmp")
        self.ref_time = time.time()

    def _expect(self, step: Expect) -> None:
        v, ref = self.conn.variables(), self.ref_time
        seg = self._window(step, ref + step.within, step.retransmission)
        if seg is None:
            missing = (("no segment before the fence's echo reply" if self.fenced[-1:] ==
                        [step.line] else f"no segment within {fmt_duration(step.within)}")
                       + self.stream.skipped_since(ref, self.flow))
            self._unanswered_through_device(step, ref, missing)
            raise StepFailed(step, step.describe(), missing)
        problems, said = mismatches(step, seg, self.conn, ref, v), self.stream.describe(seg, self.flow)
        self.conn.consume(seg)
        if problems and problems == [f"no {step.requires_option} option"]:
            # An optional feature (RFC 7323 timestamps, say) the target does not
            # implement: the case checks how it is used, so it does not apply.
            raise NotApplicable(f"not applicable to {self.engine.target.name}: it does not "
                                f"negotiate the {step.requires_option} option (line {step.line}: "
                                f"{said})")
        if problems:
            self._end_hosts_own_answer(step, seg, said)
            raise StepFailed(step, step.describe(), f"{said}: {'; '.join(problems)}")
        self._answered(seg)

    def _answered(self, seg: tcp.Segment) -> None:
        if self.sent_at is not None:
            self.exchanges.append(time.perf_counter() - self.sent_at)
            self.sent_at = None
        # The next step's time bounds count from the answer's arrival on the
        # wire (a retransmission timer starts when the segment leaves).
        self.ref_time = seg.time

    def _silence(self, step: Silence) -> None:
        start = time.time()
        window = SilenceEvent(start, step.duration)
        self.ladder.append(window)      # the report draws the window on the ladder
        seg = self._window(step, start + step.duration)
        if seg is not None:
            window.broken = True
            if seg.time < window.time:
                # An answer captured before the step began to wait (to the
                # segment just sent): the window is drawn from that segment.
                window.time = next((e.time for e in reversed(self.ladder)
                                    if isinstance(e, SegmentEvent) and e.direction == tcp.OUT
                                    and e.time <= seg.time), seg.time)
        if seg is not None:
            self.conn.consume(seg)
            self._end_hosts_own_answer(step, seg, self.stream.describe(seg, self.flow))
            raise StepFailed(step, f"no answer for {fmt_duration(step.duration)} "
                                   f"(retransmissions aside)",
                             f"{self.stream.describe(seg, self.flow)}, "
                             f"{max(0.0, seg.time - start) * 1000:.1f} ms into the silence")
        self.ref_time = time.time()

    def _one_of(self, step: OneOf) -> None:
        """Alternatives as data: the target's next answer (or its silence)
        decides which labelled alternative it follows; the rest of that
        alternative must then hold too."""
        v, ref, start = self.conn.variables(), self.ref_time, time.time()
        windows = [ref + a.steps[0].within if isinstance(a.steps[0], Expect)
                   else start + a.steps[0].duration for a in step.alternatives]
        # An alternative may be a retransmission (a SYN-ACK sent again), which
        # is otherwise not an answer.
        retransmission = any(isinstance(a.steps[0], Expect) and a.steps[0].retransmission
                             for a in step.alternatives)
        seg = self._window(step, max(windows), want_retransmission=retransmission)
        fitting = candidates(step.alternatives, seg, self.conn, ref, start, v)
        chosen, label = choose(
            fitting, lambda state: (self.app.state(self.flow, state)
                                    if self.app.can_show_state(self.flow) else None),
            f"{self.engine.target.name} ({self.engine.target.state_view_reason})")
        described = "; or ".join(f"{a.label}: {_first_text(a.steps[0])}" for a in step.alternatives)
        if chosen is None:
            actual = (self.stream.describe(seg, self.flow) if seg
                      else "no segment" + self.stream.skipped_since(ref, self.flow))
            if seg is not None:
                self.conn.consume(seg)
            raise StepFailed(step, described, f"{actual}, which matches none of them")
        self._note(f"the target followed: {label}")
        self.alternatives.append(label)
        self.followed.append(label)
        if seg is not None and isinstance(chosen.steps[0], Silence):
            self.flow.held.append(seg)  # it came after the silence window: an answer for later
        elif seg is not None:
            self.conn.consume(seg)
            self._answered(seg)
        else:
            self.ref_time = time.time()
        # The alternative's own first step ended with the choice (a window of
        # silence waited out, or an answer read): its next send is timed from here.
        self.step_end = time.time()
        try:
            self._steps(chosen.steps[1:])
        except StepFailed as exc:
            # A later step of the alternative checks what its sentence says.
            if exc.requirement is None and getattr(exc.step, "requirement", None) is None:
                exc.requirement = chosen.requirement
            raise
        if not chosen.conforms:
            self.alternatives.pop()
            conforming = [a.label for a in step.alternatives if a.conforms]
            raise StepFailed(step, " or ".join(conforming),
                             f"the target followed: {label}", alternative=label,
                             requirement=chosen.requirement)

    def _app(self, step: App) -> None:
        self.app_at = time.time()
        if self.app.run(step, self.flow, in_setup=self.phase == "setup"):
            self.ref_time = time.time()

    def _firewall(self, step: FirewallCheck) -> None:
        """What the device in the path did with the tester's last segment, or
        what its connection tracking holds for the connection (middlebox.py)."""
        view = self.engine.middlebox
        if view is None:
            raise NotApplicable(f"not applicable to {self.engine.target.name}: the case asks "
                                f"what a firewall in the path did, and there is none")
        from .middlebox import UNDECIDED, lasts    # with a firewall in the path only
        if step.fate:
            if self.flow.last_sent is None:
                raise CannotDecide(f"line {step.line}: 'firewall: {step.fate}' asks about the "
                                   f"tester's last segment, and none was sent before it")
            found = view.fate(self.flow.last_sent, self.flow.last_sent_at,
                              time.time() + step.within, self._fence)
            seen = found.event(time.time())
            if found.fate == UNDECIDED:
                self.ladder.append(seen)
                raise CannotDecide(f"line {step.line}: {found.detail}")
            held = found.fate == step.fate
        elif step.same_mapping_as:
            seen = self._mapping(step)
            held = seen.seen == "same port"
        elif view.firewall_ns is None:
            # A device the suite did not build: its tracker is not readable.
            self.ladder.append(DeviceEvent(time.time(), "tracking", "unobservable",
                                           detail="the device's tracker is not readable"))
            self.unobserved.append(f"firewall tracks {step.tracks} (line {step.line}): the "
                                   f"device's connection tracking is not readable")
            if self.phase == "case":
                self.decided -= 1       # counted as deciding when the step began
                self.unread.add(step.requirement or self.case.primary.id)
            return
        else:
            link = self.link
            ends = (link.tester_ip, self.flow.tester_port, link.target_ip, self.flow.target_port)
            entry = view.tracks(ends, step.tracks, step.within)
            seen = _tracked(entry, time.time())
            held = seen.seen == step.tracks and lasts(entry, step.idle_timeout_at_least)
        self.ladder.append(seen)
        if not held:
            raise StepFailed(step, step.describe(), describe(seen))
        self.ref_time = time.time()

    def _state(self, step: StateCheck) -> None:
        seen = self.observer.check(step, self.flow, in_case=self.phase == "case")
        self.ladder.extend(seen.notes + [seen.event])
        self.decided += seen.decided
        if seen.decided and self.phase == "case":
            self.read.add(step.requirement or self.case.primary.id)
        if seen.unobserved:
            self.unobserved.append(seen.unobserved)
        if seen.failure:
            view = self.engine.middlebox
            if (view is not None and self.flow.last_sent is not None
                    and view.reached(self.flow.last_sent, self.flow.last_sent_at)):
                # What the end host made of a segment that reached it.
                raise NotApplicable(f"not applicable to {self.engine.target.name}: the end "
                                    f"host's state differs (line {step.line}: expected "
                                    f"{seen.failure[0]}; {seen.failure[1]}) after the tester's "
                                    f"segment reached it, which is its own behaviour, not the "
                                    f"device's")
            raise StepFailed(step, *seen.failure)
        if seen.observed:
            self.ref_time = time.time()

    def _end_hosts_own_answer(self, step, seg: tcp.Segment, said: str) -> None:
        """Behind a device in the path, an answer other than the case expects
        is the end host's own when its link shows it leave as it arrived (the
        device changed nothing but addresses and ports): then the case does
        not apply to that end host.  Otherwise the device made it so."""
        view = self.engine.middlebox
        if view is not None and view.end_host_sent_it(seg.frame):
            raise NotApplicable(f"not applicable to {self.engine.target.name}: the end host's "
                                f"own answer differs (line {step.line}: {said}, as it left the "
                                f"end host), which is its behaviour, not the device's")

    def _unanswered_through_device(self, step: Expect, ref: float, missing: str) -> None:
        """Behind a device in the path, whose doing a missing answer is: the
        device's, if the end host sent one (its link shows it leave) or never
        got the segment it answers; the end host's own otherwise, and then
        the case does not apply to it (another stack answers otherwise: its
        host sweep judges that, not the device's)."""
        view = self.engine.middlebox
        if view is None:
            return
        # The answer is to what came last: the tester's segment, or the
        # application's call (whose answer may have left before the device's
        # own steps ended, so before `ref`).
        prompted = self.flow.last_sent is not None and self.flow.last_sent_at > self.app_at
        delivered = [seg.frame for seg in self.stream.segments if seg.direction == "in"]
        sent = view.undelivered(min(ref, max(self.flow.last_sent_at, self.app_at)), delivered)
        if sent:
            raise StepFailed(step, step.describe(), f"{missing}; the end host did send "
                                                    f"{len(sent)} segment(s) on its link, which "
                                                    f"the device did not pass on")
        if prompted and not view.reached(self.flow.last_sent, self.flow.last_sent_at):
            raise StepFailed(step, step.describe(), f"{missing}; the tester's segment never "
                                                    f"reached the end host")
        raise NotApplicable(f"not applicable to {self.engine.target.name}: the end host sent "
                            f"no answer (line {step.line}: {step.describe()}), which is its own "
                            f"behaviour, not the device's")

    def _mapping(self, step: FirewallCheck) -> DeviceEvent:
        """Whether the NAT gave this connection the outside port it gave
        another (both learnt from the end host's segments, as they came)."""
        other = self.flows[step.same_mapping_as]
        for flow in (self.flow, other):
            if not flow.heard:
                raise CannotDecide(f"line {step.line}: no segment of the end host's came on "
                                   f"connection {flow.name}, so its outside port is not known")
        same = self.flow.target_port == other.target_port
        return DeviceEvent(time.time(), "mapping", "same port" if same else "another port",
                           detail=f"connection {other.name} from port {other.target_port}, "
                                  f"connection {self.flow.name} from port "
                                  f"{self.flow.target_port}")

    def _fence(self) -> int:
        """An ICMP echo request from the tester through the device to the end
        host's own address; its ident (middlebox.py)."""
        ident = random.randrange(1, 65535)
        host = self.engine.middlebox.at.host_ips[self.family]
        self.wire.send(echo_request(replace(self.link, target_ip=host), ident))
        return ident


def _tracked(entry, at: float) -> DeviceEvent:
    """What the tracker held for a connection, as evidence."""
    if entry is None:
        return DeviceEvent(at, "tracking", "none")
    return DeviceEvent(at, "tracking", entry.state, detail=f"{entry.timeout} s left"
                       + (", unreplied" if entry.unreplied else ""))


def _decides(step) -> bool:
    """A step whose outcome is a check of the target (state checks count
    only when the state could be observed: see _state)."""
    if isinstance(step, (Expect, Silence, OneOf, FirewallCheck)):
        return True
    return isinstance(step, App) and (step.expect_error is not None or step.op == "recv")


def _first_text(step) -> str:
    if isinstance(step, Expect):
        return step.describe()
    return f"no answer for {fmt_duration(step.duration)}"
