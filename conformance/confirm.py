"""A failing verdict confirmed by running its case again.

Where the suite cannot watch the link at both ends (a device, a container on
a real network), a segment the link lost, doubled or damaged looks like the
target's own doing: "Expected SYN+ACK, no segment within 1s".  One such event
must not become a finding.  With ``--confirm N`` a case that fails runs N more
times, and the failure stands only if every run fails the same way: at the
same requirement, the same step and, where the case has alternatives, the
same one.  Otherwise the verdict is an error that lists what each run found:
the link or the target is not repeatable there, and nothing is claimed.
"""

from __future__ import annotations

from typing import Callable

from .verdict import ERROR, FAIL, Verdict


def _signature(verdict: Verdict) -> tuple:
    """What must repeat for a failure to stand."""
    requirement = (verdict.requirement or verdict.case.primary).id
    return verdict.outcome, requirement, verdict.line, verdict.alternative


def _said(verdict: Verdict) -> str:
    if verdict.outcome == FAIL:
        return f"fail at line {verdict.line} ({verdict.actual})"
    return verdict.outcome + (f" ({verdict.reason})" if verdict.reason else "")


def confirm_failure(first: Verdict, again: Callable[[], Verdict], times: int) -> Verdict:
    """`first` if it is no failure, or if each of `times` runs of `again()`
    fails the same way; else an error saying what each run found.  The
    verdict returned keeps the first run's evidence, and counts the runs."""
    if first.outcome != FAIL or times <= 0:
        return first
    runs = [first]
    for _ in range(times):
        runs.append(again())
        if _signature(runs[-1]) != _signature(first):
            break
    first.runs = len(runs)
    if len(runs) == times + 1 and _signature(runs[-1]) == _signature(first):
        return first
    found = "; then ".join(_said(v) for v in runs)
    first.outcome = ERROR
    first.reason = (f"the failure did not repeat (--confirm {times}): {found}: the link or "
                    f"the target is not repeatable here, so nothing is claimed")
    return first
