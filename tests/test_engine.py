"""The engine's semantics, against the real Linux lab: retransmissions,
checksums, strict accounting of every answer, alternatives."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.casefile import load_case_file
from conformance.grid import grid_cells
from conformance.verdict import FAIL, PASS

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep


def case(steps: str, start: str = "ESTABLISHED", role: str = "listener"):
    text = (f"id: engine-test\ntitle: an engine test\nrequirements: [RFC9293-MUST-13]\n"
            f"target: {{role: {role}, start: {start}}}\nsteps:\n{steps}")
    (loaded,) = load_case_file(Path("engine-test.yaml"), text)
    return loaded


def test_retransmission_during_silence_is_not_an_answer(linux):
    """The target's retransmitted FIN inside a silence window does not break the silence."""
    verdict = linux.run(case("  - silence: 700ms\n  - state: FIN-WAIT-1\n", start="FIN-WAIT-1"))
    assert verdict.outcome == PASS, verdict.explain()
    assert any(e.kind == "segment" and e.mark == "retransmission" for e in verdict.ladder), \
        verdict.explain()


def test_expected_retransmission_is_matched(linux):
    """expect with retransmission: true matches the retransmitted FIN, after the RTO."""
    verdict = linux.run(case(
        "  - expect: {flags: FIN+ACK, seq: rcv_nxt - 1, retransmission: true, after: 150ms}\n",
        start="FIN-WAIT-1"))
    assert verdict.outcome == PASS, verdict.explain()


def test_segment_with_bad_checksum_is_dropped(linux):
    """Data with a wrong checksum is dropped silently and does not advance snd_nxt."""
    verdict = linux.run(case(
        "  - send: {flags: ACK+PSH, data: lost, bad_checksum: true}\n"
        "  - silence: 200ms\n"
        "  - send: {flags: ACK+PSH, data: kept}\n"
        "  - expect: {flags: ACK, ack: 5}\n"
        "  - app: {recv: kept}\n"))
    assert verdict.outcome == PASS, verdict.explain()
    assert all(e.checksum_ok for e in verdict.ladder if e.kind == "segment" and e.direction == "in")


def test_unforeseen_answer_fails_the_next_expect(linux):
    """An answer the case did not expect is not skipped: the next expect sees it."""
    verdict = linux.run(case(
        "  - send: {flags: ACK+PSH, data: hello}\n"
        "  - app: {send: reply}\n"
        "  - expect: {flags: ACK+(PSH), data: reply}\n"))
    assert verdict.outcome == FAIL
    assert "data is b''" in verdict.actual


def test_expectation_on_timing_fails_when_late(linux):
    """An answer later than 'within' fails, saying when it came."""
    verdict = linux.run(case(
        "  - wait: 100ms\n"
        "  - expect: {flags: FIN+ACK, retransmission: true, within: 50ms}\n", start="FIN-WAIT-1"))
    assert verdict.outcome == FAIL
    assert "no segment within 50ms" in verdict.actual or "it came after" in verdict.actual


def test_target_as_client_stays_in_syn_sent_on_bad_synack(linux):
    """A SYN-ACK that does not ack the SYN draws a RST at SEG.ACK and leaves SYN-SENT
    (RFC 9293 3.10.7.3): the client role and absolute-ack handling work end to end."""
    verdict = linux.run(case(
        "  - send: {flags: SYN+ACK, seq: 0, ack: 1000}\n"
        "  - expect: {flags: RST, seq: 1000}\n"
        "  - state: SYN-SENT\n", start="SYN-SENT", role="client"))
    assert verdict.outcome == PASS, verdict.explain()


def test_syn_probe_in_established_does_not_move_snd_nxt(linux):
    """A SYN sent in ESTABLISHED is a probe: the challenge ACK still acks the old snd_nxt."""
    verdict = linux.run(case(
        "  - send: {flags: SYN, seq: snd_nxt + 50}\n"
        "  - expect: {flags: ACK, seq: rcv_nxt, ack: snd_nxt}\n"
        "  - state: ESTABLISHED\n"))
    assert verdict.outcome == PASS, verdict.explain()


TIME_WAIT_RST = """\
  - send: {flags: RST}
  - one_of:
      - label: RFC 1337 fix F1
        requirement: RFC9293-MUST-13
        steps:
          - silence: 100ms
          - state: TIME-WAIT
      - label: assassinated
        requirement: RFC9293-MUST-13
        conforms: false
        steps:
          - silence: 100ms
          - state: CLOSED
"""


def test_alternatives_with_the_same_answer_are_told_apart_by_state(linux):
    """Two branches that both start with silence are decided by the state that follows."""
    old = linux.target.set_sysctl("net.ipv4.tcp_rfc1337", 1)
    try:
        protected = linux.run(case(TIME_WAIT_RST, start="TIME-WAIT"))
    finally:
        linux.target.set_sysctl("net.ipv4.tcp_rfc1337", old)
    assassinated = linux.run(case(TIME_WAIT_RST, start="TIME-WAIT"))
    assert (protected.outcome, protected.alternative) == (PASS, "RFC 1337 fix F1")
    assert (assassinated.outcome, assassinated.alternative) == (FAIL, "assassinated")


REOPEN = ("  - send: {flags: SYN, seq: snd_nxt + 100000, mss: 1460}\n"
          "  - expect: {flags: SYN+ACK, isn: \">= rcv_nxt + %d\"}\n")


def test_isn_of_a_new_incarnation_is_measured_from_the_old_connection(linux):
    """A SYN that reopens TIME-WAIT (RFC 9293 MAY-2) is judged by its ISN counted
    from the old connection's.  Linux takes the old SND.NXT + 65537
    (tcp_timewait_state_process: tw_snd_nxt + 65535 + 2), 65539 after a FIN at 1:
    'isn: >= rcv_nxt + 65537' holds and '+ 65538' does not, which a check that
    measured the SYN against its own seq (always 0) could not tell apart."""
    holds = linux.run(case(REOPEN % 65537, start="TIME-WAIT"))
    breaks = linux.run(case(REOPEN % 65538, start="TIME-WAIT"))
    assert holds.outcome == PASS, holds.explain()
    assert breaks.outcome == FAIL, breaks.explain()
    assert "its ISN is 65539 from the old ISN, not >= rcv_nxt + 65538 = 65540" in breaks.actual


def test_reopen_without_returning_to_time_wait_fails_at_the_rule(linux):
    """The grid's MAY-2 branch checks the second condition too: Linux reopens,
    and the old duplicate's RST leaves no connection, so the cell fails at the
    rule's requirement (a SHOULD), not at MAY-2's."""
    cell = next(c for c in grid_cells() if c.case.id == "grid.TIME-WAIT.syn.beyond-window")
    verdict = linux.run(cell.case)
    assert verdict.outcome == FAIL, verdict.explain()
    assert verdict.requirement.id == "RFC9293-3.10.7.4-unacceptable", verdict.explain()
    assert verdict.requirement.level == "SHOULD"
    assert "state TIME-WAIT" in verdict.expected, verdict.explain()
