"""The witness's comparison of the two ends of the link (pure: no lab)."""

from conformance import tcp
from conformance.wire import build_frame
from conformance.witness import (ALTERED, DELAYED, DUPLICATED, FROM_TARGET, LOST, REORDERED,
                                 TO_TARGET, Damage, Passage, compare, ip_packet, summary)
from tests.fake_target import TESTER

import struct


def packet(seq, flags=tcp.ACK, payload=b""):
    return ip_packet(build_frame(TESTER, 40000, 10000, seq, 1, flags, 65535, payload))


A, B, C = packet(100), packet(200, payload=b"x"), packet(300, tcp.FIN | tcp.ACK)


def sent(*packets, start=10.0):
    return [Passage(start + i * 0.01, p) for i, p in enumerate(packets)]


def arrived(*packets, start=10.0, transit=0.0001):
    return [Passage(start + i * 0.01 + transit, p) for i, p in enumerate(packets)]


def kinds(damage):
    return [(d.kind, d.segment) for d in damage]


def test_a_link_that_delivers_everything_intact_did_no_damage():
    assert compare(sent(A, B, C), arrived(A, B, C), TO_TARGET, cutoff=11.0) == []


def test_a_frame_that_never_arrived_is_lost():
    damage = compare(sent(A, B, C), [arrived(A, B, C)[0], arrived(A, B, C)[2]], TO_TARGET, 11.0)
    assert [d.kind for d in damage] == [LOST]
    assert "seq=200" in damage[0].segment and damage[0].direction == TO_TARGET


def test_a_frame_still_on_its_way_at_the_cutoff_is_not_lost():
    assert compare(sent(A, B, C), arrived(A, B), TO_TARGET, cutoff=10.015) == []


def test_a_frame_that_arrived_twice_is_duplicated():
    twice = arrived(A, B, C) + [Passage(10.05, B)]
    damage = compare(sent(A, B, C), twice, FROM_TARGET, 11.0)
    assert [d.kind for d in damage] == [DUPLICATED]
    assert damage[0].text().startswith("the target's ACK seq=200")


def test_a_frame_with_a_changed_checksum_is_altered_and_says_so():
    offset = 20 + 16
    bad = B[:offset] + struct.pack("!H", 0x1234) + B[offset + 2:]
    damage = compare(sent(A, B, C), arrived(A, bad, C), TO_TARGET, 11.0)
    assert [d.kind for d in damage] == [ALTERED]
    assert "TCP checksum changed" in damage[0].detail


def test_an_arrival_that_matches_nothing_sent_is_altered():
    damage = compare(sent(A), arrived(A, C), TO_TARGET, 11.0)
    assert [d.kind for d in damage] == [ALTERED]
    assert "no such segment was sent" in damage[0].detail


def test_frames_that_overtook_each_other_are_reordered():
    swapped = [Passage(10.0001, A), Passage(10.0201, C), Passage(10.0301, B)]
    damage = compare(sent(A, B, C), swapped, TO_TARGET, 11.0)
    assert kinds(damage) == [(REORDERED, "ACK seq=200 ack=1 len=1")]


def test_a_frame_slower_than_the_transit_limit_is_delayed():
    damage = compare(sent(A), arrived(A, transit=0.2), TO_TARGET, 11.0, transit_limit=0.05)
    assert [d.kind for d in damage] == [DELAYED]
    assert damage[0].detail == "it took 200.0 ms"


def test_ip_packet_drops_the_link_padding():
    frame = build_frame(TESTER, 40000, 10000, 1, 1, tcp.ACK, 65535)
    assert ip_packet(frame + b"\x00" * 6) == frame[14:]


def test_the_summary_names_the_first_few():
    damage = [Damage(LOST, TO_TARGET, f"ACK seq={n}", float(n)) for n in range(5)]
    text = summary(damage)
    assert text.startswith("the tester's ACK seq=0 lost on the link")
    assert text.endswith("and 2 more")


# --- the engine and the runner with a witness ------------------------------------------------

def _engine_run(lose, witnessed=True):
    from conformance.engine import Engine
    from tests.fake_target import FakeTarget, ScriptedWire
    from tests.test_engine_fake_wire import DATA_THEN_ACK, acking, case
    wire = ScriptedWire(acking(), lose=lose)
    engine = Engine(FakeTarget(), wire, witness=wire.witness() if witnessed else None)
    return engine.run(case(DATA_THEN_ACK))


def lose_acks_of_data(reply):
    return reply.flags == tcp.ACK


def test_without_a_witness_a_lost_answer_looks_like_the_target_s_silence():
    from conformance.verdict import FAIL
    verdict = _engine_run(lose_acks_of_data, witnessed=False)
    assert verdict.outcome == FAIL and verdict.actual.startswith("no segment within")


def test_with_a_witness_a_lost_answer_is_an_error_naming_it():
    from conformance.verdict import ERROR
    verdict = _engine_run(lose_acks_of_data)
    assert verdict.outcome == ERROR
    assert [d.kind for d in verdict.damage] == [LOST]
    assert verdict.reason.startswith("the link damaged this case's evidence, so no verdict can "
                                     "stand: the target's ACK seq=")
    assert "lost on the link (it never arrived)" in verdict.reason


def test_with_a_witness_an_undamaged_case_keeps_its_verdict():
    from conformance.verdict import PASS
    verdict = _engine_run(lambda reply: False)
    assert verdict.outcome == PASS and verdict.damage == [], verdict.explain()


def _runner_with(*verdicts, retries=3):
    from conformance.runner import Runner
    from tests.fake_target import FakeTarget
    runner = Runner(FakeTarget(), link_retries=retries)
    handed = iter(verdicts)
    runner._run_once = lambda case, family: next(handed)
    return runner


def _verdict(outcome, damage=()):
    from conformance.verdict import Verdict
    from tests.test_confirm import CASE
    return Verdict(outcome, CASE, damage=list(damage),
                   reason="the link damaged this case's evidence" if damage else "")


LOSS = Damage(LOST, TO_TARGET, "SYN seq=0", 1.0, "it never arrived")


def test_the_runner_runs_a_damaged_case_again_until_a_run_is_clean():
    from conformance.verdict import ERROR, PASS
    runner = _runner_with(_verdict(ERROR, [LOSS]), _verdict(ERROR, [LOSS]), _verdict(PASS))
    verdict = runner.run(None)
    assert (verdict.outcome, verdict.retries) == (PASS, 2)


def test_a_case_the_link_damages_every_time_is_an_error_saying_so():
    from conformance.verdict import ERROR
    runner = _runner_with(*[_verdict(ERROR, [LOSS])] * 3, retries=2)
    verdict = runner.run(None)
    assert (verdict.outcome, verdict.retries) == (ERROR, 2)
    assert verdict.reason == ("the link damaged all 3 runs of this case, so no verdict can "
                              "stand; in the last: the tester's SYN seq=0 lost on the link "
                              "(it never arrived)")


def test_a_tester_late_to_send_is_an_error_and_runs_again():
    """A busy machine holding the tester back between steps: the target's
    timers ran on, so the verdict cannot stand (engine.STALL_LIMIT)."""
    import time as clock
    from conformance.engine import STALL_LIMIT, Engine
    from conformance.verdict import ERROR
    from tests.fake_target import FakeTarget, ScriptedWire
    from tests.test_engine_fake_wire import DATA_THEN_ACK, acking, case
    wire = ScriptedWire(acking())
    engine = Engine(FakeTarget(), wire)
    engine.after_setup = lambda run: clock.sleep(STALL_LIMIT + 0.05)
    verdict = engine.run(case(DATA_THEN_ACK))
    assert verdict.outcome == ERROR and verdict.stalled
    assert verdict.reason.startswith("the tester sent the segment of line 6 ")
    assert "ms after the step before it ended (the machine was busy)" in verdict.reason
    runner = _runner_with(verdict, _verdict(ERROR, [LOSS]), _verdict("pass"))
    assert runner.run(None).retries == 2


def test_a_send_after_a_silence_chosen_in_one_of_is_not_late():
    """The silence of the alternative the target followed is waited out inside
    the one_of step: the send after it is on time."""
    from conformance.engine import Engine
    from tests.fake_target import FakeTarget, ScriptedWire, handshake
    from tests.test_engine_fake_wire import case
    steps = ("  - send: {flags: ACK+PSH, data: hello}\n"
             "  - one_of:\n"
             "      - label: quiet\n"
             "        requirement: RFC9293-MUST-13\n"
             "        steps:\n"
             "          - silence: 150ms\n"
             "          - send: {flags: ACK+PSH, data: again}\n"
             "      - label: answered\n"
             "        requirement: RFC9293-MUST-13\n"
             "        steps:\n"
             "          - expect: {flags: ACK, within: 150ms}\n")
    verdict = Engine(FakeTarget(), ScriptedWire(handshake)).run(case(steps))
    assert verdict.alternative == "quiet" and verdict.stalled == "", verdict.explain()
