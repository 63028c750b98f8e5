"""--confirm: a failure stands only if it repeats (conformance.confirm), without a lab."""

from __future__ import annotations

from pathlib import Path

from conformance.casefile import load_case_file
from conformance.confirm import confirm_failure
from conformance.verdict import ERROR, FAIL, PASS, Verdict

(CASE,) = load_case_file(Path("confirm.yaml"), (
    "id: t.confirm\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
    "target: {role: listener, start: LISTEN}\n"
    "steps:\n  - send: {flags: SYN, seq: 0}\n  - expect: {flags: SYN+ACK, ack: 1}\n"))


def fail(line=7, actual="no segment within 1s", alternative=None) -> Verdict:
    return Verdict(FAIL, CASE, line=line, expected="SYN+ACK", actual=actual,
                   alternative=alternative)


def runs_of(*verdicts):
    """again() handing out `verdicts` in turn, and how many it handed out."""
    handed = []

    def again():
        handed.append(verdicts[len(handed)])
        return handed[-1]
    return again, handed


def test_a_failure_that_repeats_stands_and_counts_its_runs():
    again, handed = runs_of(fail(), fail())
    verdict = confirm_failure(fail(), again, 2)
    assert (verdict.outcome, verdict.runs, len(handed)) == (FAIL, 3, 2)


def test_a_failure_that_does_not_repeat_is_an_error_saying_each_run():
    again, handed = runs_of(Verdict(PASS, CASE), fail())
    verdict = confirm_failure(fail(), again, 2)
    assert (verdict.outcome, verdict.runs, len(handed)) == (ERROR, 2, 1)  # stops at once
    assert verdict.reason.startswith("the failure did not repeat (--confirm 2): fail at line 7 "
                                     "(no segment within 1s); then pass: the link or the "
                                     "target is not repeatable here")


def test_a_failure_elsewhere_or_down_another_alternative_is_not_the_same():
    for other in (fail(line=9), fail(alternative="reset")):
        again, _ = runs_of(other)
        assert confirm_failure(fail(), again, 1).outcome == ERROR


def test_a_pass_or_no_confirmation_runs_once():
    again, handed = runs_of(fail())
    assert confirm_failure(Verdict(PASS, CASE), again, 3).runs == 1 and handed == []
    assert confirm_failure(fail(), again, 0).outcome == FAIL and handed == []
