"""Verdicts: what a case run tells the engineer.

PASS and FAIL describe the target.  ERROR means the suite could not decide
(the lab broke, the agent died, the starting state was never reached): it is
never reported as a pass.  A FAIL says, as h2spec does, the requirement, what
was expected and what the wire showed, with the ladder of segments and times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .case import Case
from .evidence import Event, render_ladder
from .requirements import Requirement

PASS, FAIL, ERROR = "pass", "fail", "error"
# The case cannot run on this target by design (it needs a Linux setting or a
# socket option the stack does not have): neither a verdict on the target nor
# a failure of the suite.  pytest reports it as skipped, with the reason.
NOT_APPLICABLE = "n/a"

# What a verdict means for the run, once the requirement's level and the
# target's baseline are taken into account (see judge()).
WARN, INFO, KNOWN, FIXED = "warn", "info", "known", "fixed"
FAILING = (FAIL, FIXED)


@dataclass
class Verdict:
    outcome: str
    case: Case
    requirement: Requirement | None = None
    line: int | None = None          # the step that decided a FAIL or ERROR
    expected: str = ""
    actual: str = ""
    reason: str = ""                 # for ERROR: why the suite could not decide
    alternative: str | None = None   # which labelled alternative the target followed
    # The label of every alternative the target followed, in the order the
    # case's one_of steps chose them (conforming or not): the path it took.
    followed: list[str] = field(default_factory=list)
    ladder: list[Event] = field(default_factory=list)
    pcap: str | None = None
    pcap_inside: str | None = None   # behind a middlebox: the capture on the end host's link
    wall_time: float = 0.0           # seconds the run took
    # Seconds waiting for nothing: wait steps, and windows (silence, expect,
    # one_of) that ended with no answer; the windows alone in `unanswered`.
    protocol_waits: float = 0.0
    unanswered: float = 0.0
    # The lines of the steps whose window a fence ended (fence.py); in audit
    # mode, each fence's record instead: {line, reply_ms, saved_ms, overtaken,
    # untaken (the agent's view, fence.TAKEN_VIEW or QUIET_VIEW, let it decide)}.
    fenced: list[int] = field(default_factory=list)
    fence_audit: list[dict] = field(default_factory=list)
    exchanges: list[float] = field(default_factory=list)  # injector round trips, seconds
    target: str = ""
    family: str = "ipv4"
    label: str = ""                  # the pytest item's name, when it says more (the target)
    # State checks the target could not show (Target.state_view): the verdict
    # rests on the wire alone there.
    unobserved: list[str] = field(default_factory=list)
    runs: int = 1                    # how often the case ran (--confirm repeats a failure)
    # What the link did to this run's frames (witness.py): a verdict with
    # damage is an error; the runner runs the case again, `retries` times.
    damage: list = field(default_factory=list)
    # Why the tester's own timing failed this run (engine.STALL_LIMIT), or "":
    # run again, as for damage.
    stalled: str = ""
    retries: int = 0

    @property
    def name(self) -> str:
        """The case and the address family it ran over, as pytest names the item."""
        return self.label or f"{self.case.id}[{self.family}]"

    def headline(self) -> str:
        where = f"{self.case.path}:{self.line}" if self.line else str(self.case.path)
        if self.outcome == PASS:
            followed = f" (followed: {self.alternative})" if self.alternative else ""
            return f"PASS {self.name}{followed}"
        if self.outcome == ERROR:
            return f"ERROR {self.name} at {where}: {self.reason}"
        return f"FAIL {self.name} at {where}"

    def explain(self) -> str:
        """The h2spec-style failure text: requirement, expected, actual, ladder."""
        req = self.requirement or self.case.primary
        lines = [self.headline()]
        if self.outcome == FAIL:
            lines += [
                f"  Requirement: {req.id} ({req.level}, {req.citation})",
                f"    \"{req.quote}\"",
                f"    Level: {req.basis}",
                f"  Expected: {self.expected}",
                f"    Actual: {self.actual}",
            ]
            if self.alternative:
                lines.append(f"  The target followed: {self.alternative}")
        if self.unobserved:
            lines.append(f"  Not observable on this target: {', '.join(self.unobserved)}")
        lines += ["", "  Ladder (times in ms from the first event; seq/ack relative to each ISN):"]
        lines += ["    " + line for line in render_ladder(self.ladder)]
        if self.pcap:
            lines.append(f"  Capture: {self.pcap}")
        return "\n".join(lines)


def judge(verdict: Verdict, strict: bool = False, deviation=None) -> str:
    """The status of a verdict in a run.

    A MUST violation fails; a SHOULD deviation is a warning unless `strict`
    (as h2spec's --strict); a MAY is information only.  With a baseline, a
    listed deviation that still deviates from the requirement the baseline
    names is KNOWN, and one that now passes is FIXED, which fails the run: the
    baseline is out of date.  A listed case that now deviates from another
    requirement is judged as if it were not listed.  An ERROR stays an error
    whatever the baseline says: nothing was decided."""
    if verdict.outcome == ERROR:
        return ERROR
    if verdict.outcome == PASS:
        return FIXED if deviation is not None else PASS
    requirement = verdict.requirement or verdict.case.primary
    if deviation is not None and deviation.requirement in ("", requirement.id):
        return KNOWN
    level = requirement.level
    if level == "MUST" or (level == "SHOULD" and strict):
        return FAIL
    return WARN if level == "SHOULD" else INFO
