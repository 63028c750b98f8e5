"""The engine on a fake wire, without root or a lab (tests/fake_target.py):
matching answers, the tester's sequence numbers, silences, retransmissions,
alternatives, state checks, black-box decisions and the verdicts they give.
tests/test_engine.py checks the same semantics against the real Linux stack."""

from __future__ import annotations

from pathlib import Path

from conformance import tcp
from conformance.casefile import load_case_file
from conformance.engine import Engine
from conformance.evidence import SegmentEvent, StateEvent
from conformance.probe import PROBE_OFFSET
from conformance.seq import seq_diff
from conformance.verdict import ERROR, FAIL, NOT_APPLICABLE, PASS
from tests.fake_target import IRS, FakeAgent, FakeTarget, Reply, ScriptedWire, handshake


def case(steps: str, start: str = "ESTABLISHED"):
    text = (f"id: fake-wire\ntitle: an engine test on a fake wire\n"
            f"requirements: [RFC9293-MUST-13]\n"
            f"target: {{role: listener, start: {start}}}\nsteps:\n{steps}")
    (loaded,) = load_case_file(Path("fake-wire.yaml"), text)
    return loaded


def run(steps: str, answer=handshake, states=None, echo=True, start="ESTABLISHED"):
    """The verdict of `steps` against a target that answers by `answer`; with
    `states`, an agent reports them (else black-box mode); and the wire."""
    wire = ScriptedWire(answer, echo)
    agent = FakeAgent(wire, states) if states is not None else None
    verdict = Engine(FakeTarget(agent), wire).run(case(steps, start))
    return verdict, wire


def acking(extra=lambda seg: []):
    """A listening target that acknowledges data, plus `extra` answers."""
    def answer(seg: tcp.Segment) -> list[Reply]:
        replies = handshake(seg)
        if seg.payload:
            replies.append(Reply(tcp.ACK, IRS + 1, seg.seq + len(seg.payload)))
        return replies + extra(seg)
    return answer


def segments(verdict, direction=tcp.IN) -> list[SegmentEvent]:
    return [e for e in verdict.ladder if e.kind == "segment" and e.direction == direction]


DATA_THEN_ACK = ("  - send: {flags: ACK+PSH, data: hello}\n"
                 "  - expect: {flags: ACK, ack: snd_nxt}\n")


# --- matching and the tester's numbers ---------------------------------------------

def test_an_expected_answer_passes_with_the_numbers_the_connection_keeps():
    verdict, wire = run(DATA_THEN_ACK, acking())
    assert verdict.outcome == PASS, verdict.explain()
    data = next(seg for seg in wire.sent if seg.payload)
    assert data.payload == b"hello" and seq_diff(data.seq, wire.sent[0].seq) == 1
    syn_ack, ack = segments(verdict)
    assert (syn_ack.rel_seq, syn_ack.rel_ack, syn_ack.mark) == (0, 1, "setup")
    assert (ack.rel_seq, ack.rel_ack, ack.mark) == (1, 6, "")


def test_a_wrong_number_fails_with_the_segment_and_what_differs():
    def stale_ack(seg):
        return handshake(seg) + ([Reply(tcp.ACK, IRS + 1, seg.seq)] if seg.payload else [])
    verdict, _ = run(DATA_THEN_ACK, stale_ack)
    assert verdict.outcome == FAIL and verdict.requirement.id == "RFC9293-MUST-13"
    assert verdict.line == 7                                  # the expect step's line
    assert verdict.actual.startswith("ACK seq=1 ack=1 win=65535: ")
    assert "ack" in verdict.actual.split(": ", 1)[1]


def test_no_answer_within_the_bound_fails_the_expect():
    verdict, _ = run("  - send: {flags: ACK+PSH, data: hello}\n"
                     "  - expect: {flags: ACK, within: 50ms}\n")
    assert verdict.outcome == FAIL and verdict.actual == "no segment within 50ms"


def test_an_unforeseen_answer_is_not_skipped_the_next_expect_sees_it():
    def fin_first(seg):
        if not seg.payload:
            return handshake(seg)
        return [Reply(tcp.FIN | tcp.ACK, IRS + 1, seg.seq + len(seg.payload)),
                Reply(tcp.ACK, IRS + 2, seg.seq + len(seg.payload), delay=0.002)]
    verdict, _ = run(DATA_THEN_ACK, fin_first)
    assert verdict.outcome == FAIL and verdict.actual.startswith("FIN+ACK seq=1 ack=6")


# --- silence and retransmissions ------------------------------------------------------

def test_silence_passes_when_nothing_comes():
    verdict, _ = run("  - send: {flags: ACK, seq: snd_nxt}\n  - silence: 80ms\n")
    assert verdict.outcome == PASS, verdict.explain()
    assert verdict.protocol_waits >= 0.08


def test_an_answer_breaks_the_silence():
    verdict, _ = run("  - send: {flags: ACK+PSH, data: hi}\n  - silence: 80ms\n", acking())
    assert verdict.outcome == FAIL
    assert verdict.expected == "no answer for 80ms (retransmissions aside)"
    assert verdict.actual.startswith("ACK seq=1 ack=3") and "ms into the silence" in verdict.actual


def test_a_retransmission_during_silence_is_not_an_answer():
    def resends_syn_ack(seg):
        return handshake(seg) + ([Reply(tcp.SYN | tcp.ACK, IRS, seg.seq, delay=0.02)]
                                 if seg.payload else [])
    verdict, _ = run("  - send: {flags: ACK+PSH, data: hi}\n  - silence: 80ms\n",
                     resends_syn_ack)
    assert verdict.outcome == PASS, verdict.explain()
    assert segments(verdict)[-1].mark == "retransmission"


def test_a_retransmission_is_the_answer_when_a_step_asks_for_one():
    def resends_syn_ack(seg):
        return handshake(seg) + ([Reply(tcp.SYN | tcp.ACK, IRS, seg.seq, delay=0.02)]
                                 if seg.payload else [])
    verdict, _ = run("  - send: {flags: ACK+PSH, data: hi}\n"
                     "  - expect: {flags: SYN+ACK, seq: rcv_nxt - 1, retransmission: true}\n",
                     resends_syn_ack)
    assert verdict.outcome == PASS, verdict.explain()


# --- alternatives -----------------------------------------------------------------------

ACK_OR_RST = """\
  - send: {flags: ACK+PSH, data: hello}
  - one_of:
      - label: acknowledged
        requirement: RFC9293-MUST-13
        steps:
          - expect: {flags: ACK, ack: snd_nxt, within: 100ms}
      - label: reset
        requirement: RFC9293-MUST-13
        conforms: false
        steps:
          - expect: {flags: RST, within: 100ms}
"""


def test_the_answer_decides_the_alternative():
    verdict, _ = run(ACK_OR_RST, acking())
    assert (verdict.outcome, verdict.alternative) == (PASS, "acknowledged")


def test_a_non_conforming_alternative_fails_at_its_requirement():
    def resets(seg):
        return handshake(seg) + ([Reply(tcp.RST, IRS + 1, 0)] if seg.payload else [])
    verdict, _ = run(ACK_OR_RST, resets)
    assert (verdict.outcome, verdict.alternative) == (FAIL, "reset")
    assert verdict.expected == "acknowledged" and verdict.actual == "the target followed: reset"


def test_an_answer_no_alternative_foresees_fails():
    def fins(seg):
        return handshake(seg) + ([Reply(tcp.FIN | tcp.ACK, IRS + 1, seg.seq + 5)]
                                 if seg.payload else [])
    verdict, _ = run(ACK_OR_RST, fins)
    assert verdict.outcome == FAIL and verdict.actual.endswith("which matches none of them")


KEPT_OR_DROPPED = """\
  - send: {flags: ACK, seq: snd_nxt}
  - one_of:
      - label: kept
        requirement: RFC9293-MUST-13
        steps:
          - silence: 50ms
          - state: ESTABLISHED
      - label: dropped
        requirement: RFC9293-MUST-13
        conforms: false
        steps:
          - silence: 50ms
          - state: CLOSED
"""


def test_alternatives_alike_on_the_wire_are_told_apart_by_the_state():
    kept, _ = run(KEPT_OR_DROPPED, states=["ESTABLISHED"])
    assert (kept.outcome, kept.alternative) == (PASS, "kept"), kept.explain()
    dropped, _ = run(KEPT_OR_DROPPED, states=["ESTABLISHED", "CLOSED"])
    assert (dropped.outcome, dropped.alternative) == (FAIL, "dropped"), dropped.explain()


# --- state checks ----------------------------------------------------------------------------

def test_a_state_the_agent_shows_is_evidence():
    verdict, _ = run("  - state: CLOSE-WAIT\n", states=["ESTABLISHED"])
    assert verdict.outcome == FAIL and verdict.actual == "state ESTABLISHED"
    final = [e for e in verdict.ladder if isinstance(e, StateEvent)][-1]
    assert (final.expected, final.observed, final.holds) == ("CLOSE-WAIT", "ESTABLISHED", False)


# --- black-box mode ------------------------------------------------------------------------------

def test_black_box_does_not_run_a_case_that_needs_the_application():
    verdict, wire = run("  - app: {send: hi}\n  - silence: 10ms\n")
    assert verdict.outcome == NOT_APPLICABLE and wire.sent == []
    assert "it needs the target's application to send 'hi' (fake-wire.yaml:6)" in verdict.reason


def probed(exists: bool):
    """A listening target that answers the black-box wire probe (an ACK far
    left of the window): ACK while a connection exists, RST when none does."""
    def answer(seg):
        if seg.flags == tcp.ACK and seq_diff(seg.seq, IRS) and seg.ack == IRS + 1 and \
                seq_diff(answer.iss + 1, seg.seq) == PROBE_OFFSET:
            return [Reply(tcp.ACK if exists else tcp.RST, IRS + 1 if exists else seg.ack,
                          answer.iss + 1)]
        if seg.flags == tcp.SYN:
            answer.iss = seg.seq
        return handshake(seg)
    return answer


def test_black_box_decides_a_final_state_check_by_a_wire_probe():
    gone, _ = run("  - send: {flags: RST, seq: snd_nxt}\n  - state: CLOSED\n",
                  probed(exists=False))
    assert gone.outcome == PASS, gone.explain()
    still, _ = run("  - send: {flags: RST, seq: snd_nxt}\n  - state: CLOSED\n",
                   probed(exists=True))
    assert still.outcome == FAIL and "by a wire probe" in still.actual
    setup_check = [e for e in still.ladder if isinstance(e, StateEvent)][0]
    assert setup_check.observed is None and "black-box" in setup_check.reason


def test_black_box_with_nothing_it_could_observe_is_an_error():
    verdict, _ = run("  - send: {flags: ACK, seq: snd_nxt}\n  - state: ESTABLISHED\n"
                     "  - send: {flags: ACK, seq: snd_nxt}\n")
    assert verdict.outcome == ERROR and "nothing this case checks can be observed" in \
        verdict.reason


# --- what the suite cannot decide ---------------------------------------------------------------------

def test_a_target_that_never_reaches_the_starting_state_is_an_error():
    verdict, _ = run("  - silence: 10ms\n", answer=lambda seg: [])
    assert verdict.outcome == ERROR
    assert verdict.reason.startswith("the target did not reach the starting state ESTABLISHED")


def test_a_broken_wire_after_the_case_voids_the_verdict():
    verdict, _ = run("  - send: {flags: ACK, seq: snd_nxt}\n  - silence: 10ms\n", echo=False)
    assert verdict.outcome == ERROR and "sanity probe" in verdict.reason


# --- a link that damages every checksum -----------------------------------------------------------

def test_a_wrong_checksum_on_one_answer_is_the_target_s():
    def one_bad(seg):
        return handshake(seg) + ([Reply(tcp.ACK, IRS + 1, seg.seq + 5, bad_checksum=True)]
                                 if seg.payload else [])
    verdict, _ = run(DATA_THEN_ACK, one_bad)
    assert verdict.outcome == FAIL and "its TCP checksum is wrong" in verdict.actual


def test_a_wrong_checksum_on_every_answer_is_the_link_s():
    """A virtual link whose sender leaves checksums to an offload: no verdict."""
    def all_bad(seg):
        return [Reply(r.flags, r.seq, r.ack, bad_checksum=True) for r in acking()(seg)]
    verdict, _ = run(DATA_THEN_ACK, all_bad)
    assert verdict.outcome == ERROR
    assert verdict.reason.startswith("every segment from the target (1) has a wrong TCP "
                                     "checksum: the mark of a checksum offload")
    assert "ethtool -K IFACE tx off" in verdict.reason
