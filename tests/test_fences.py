"""Fences (conformance/fence.py) without a lab: which windows may end by one,
how the stream knows its reply, and the engine on a fake wire ending a
silence at the reply, waiting out what may be a delayed ACK, and in audit
mode counting an answer that came after the reply.  tests/test_fences_lab.py
measures the real stacks."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from conformance import fence, tcp
from conformance.engine import Engine
from conformance.verdict import FAIL, PASS
from conformance.wire import Frame, is_echo_reply, is_echo_request
from tests.fake_target import FakeAgent, FakeTarget, Reply, ScriptedWire, handshake
from tests.test_engine_fake_wire import case


def frame(packet) -> Frame:
    return Frame(0.0, False, bytes(Ether() / packet))


def test_a_fences_request_and_reply_are_known_by_their_ident_in_both_families():
    assert is_echo_reply(frame(IP() / ICMP(type=0, id=4242)), 4242)
    assert not is_echo_reply(frame(IP() / ICMP(type=0, id=4243)), 4242)
    assert not is_echo_reply(frame(IP() / ICMP(type=8, id=4242)), 4242)
    assert is_echo_reply(frame(IPv6() / ICMPv6EchoReply(id=4242)), 4242)
    assert not is_echo_reply(frame(IPv6() / ICMPv6EchoRequest(id=4242)), 4242)
    # and the middlebox's view knows a fence's request on the inside link the same way
    assert is_echo_request(frame(IP() / ICMP(type=8, id=4242)), 4242)
    assert is_echo_request(frame(IPv6() / ICMPv6EchoRequest(id=4242)), 4242)
    assert not is_echo_request(frame(IP() / ICMP(type=0, id=4242)), 4242)


def test_only_a_segment_that_occupies_no_sequence_space_is_answered_at_once():
    def seg(flags, payload=b""):
        return tcp.Segment(tcp.OUT, 0.0, "198.18.0.1", "198.18.0.2", 1, 2, 0, 0, flags, 65535,
                           payload=payload)
    assert fence.immediate(seg(tcp.ACK)) and fence.immediate(seg(tcp.RST | tcp.ACK))
    assert not fence.immediate(seg(tcp.ACK | tcp.PSH, b"x"))    # a delayed ACK may follow
    assert not fence.immediate(seg(tcp.FIN | tcp.ACK))
    assert not fence.immediate(seg(tcp.SYN | tcp.ACK))          # lwIP acknowledges it late
    assert not fence.immediate(None)


def target(name="linux", **more):
    return SimpleNamespace(**{"name": name, "middlebox": None, "middlebox_at": None, **more})


@pytest.mark.parametrize("stack, mode, sends, decides", [
    ("linux", fence.ON, True, True),
    ("linux", fence.AUDIT, True, False),
    ("linux", fence.OFF, False, False),
    # A stack not known to answer in order gets none, but audit measures it.
    ("gvisor", fence.ON, False, False),
    ("gvisor", fence.AUDIT, True, False),
    ("remote", fence.ON, False, False),
    # PyTCP answers from its timer too: only where its agent can say the
    # connection is quiet (fence.QUIET_VIEW).
    ("pytcp", fence.ON, False, False),
])
def test_fences_only_where_the_stack_answers_in_order(stack, mode, sends, decides):
    policy = fence.policy(target(stack), mode)
    assert (policy.sends, policy.decides) == (sends, decides)


def test_marks_only_where_an_agent_shows_what_the_stack_took():
    assert fence.policy(target("linux", agent=object())).marks
    assert not fence.policy(target("linux", agent=None)).marks      # black-box mode
    assert fence.policy(target("lwip", agent=object())).marks
    assert not fence.policy(target("gvisor", agent=object()), fence.AUDIT).marks  # no view
    assert not fence.policy(target("linux", agent=object()), fence.OFF).marks


def test_quiet_fences_where_the_agent_shows_what_is_left_to_send():
    policy = fence.policy(target("pytcp", agent=object()))
    assert (policy.sends, policy.decides, policy.quiet, policy.marks) == (True, True, True, False)
    assert not fence.policy(target("linux", agent=object())).quiet


ESTABLISHED_AT = fence.Mark("ESTABLISHED", 1)


@pytest.mark.parametrize("before, after, untaken", [
    (ESTABLISHED_AT, ESTABLISHED_AT, True),                        # dropped whole
    (ESTABLISHED_AT, fence.Mark("ESTABLISHED", 6), False),         # text taken: ACK owed
    (ESTABLISHED_AT, fence.Mark("CLOSE-WAIT", 2), False),          # a FIN taken
    (ESTABLISHED_AT, None, True),                                  # reset: nothing left
    (fence.Mark("TIME-WAIT", None), fence.Mark("TIME-WAIT", None), True),
    (None, fence.Mark("SYN-RECEIVED", None), False),               # opened a connection
    (None, None, False),                                           # nothing to compare
])
def test_a_segment_is_untaken_only_when_the_connection_is_as_it_was(before, after, untaken):
    assert fence.untaken(before, after) is untaken


def test_no_fence_through_a_device_in_the_path_or_over_a_faulty_link():
    assert "device in the path" in fence.policy(target(middlebox="firewall")).reason
    assert "link faults" in fence.policy(target(lab=SimpleNamespace(faults=object()))).reason


SILENCE_AFTER_ACK = ("  - send: {flags: ACK, seq: 1, ack: 1}\n"
                     "  - silence: 300ms\n")


def run(steps, answer=handshake, mode=fence.ON, echo_delay=0.0005, received=None,
        stack="linux", sends_in=(None,)):
    """The case on a fake `stack`; with `received`, an agent that shows the
    octets its kernel took, one figure per mark read (fence.Mark), and when
    the connection next `sends_in` by itself (fence.QUIET_VIEW)."""
    wire = ScriptedWire(answer, echo_delay=echo_delay)
    agent = None if received is None else FakeAgent(wire, received=received,
                                                    sends_in=sends_in)
    started = time.monotonic()
    verdict = Engine(FakeTarget(agent, name=stack), wire, fences=mode).run(case(steps))
    return verdict, wire, time.monotonic() - started


def test_a_silence_after_a_bare_ack_ends_at_the_fences_reply():
    verdict, wire, _ = run(SILENCE_AFTER_ACK)
    assert verdict.outcome == PASS, verdict.explain()
    assert verdict.fenced == [7] and wire.echoes == 1
    assert verdict.unanswered < 0.05        # the window's own time: not the 300 ms
    assert any(e.kind == "note" and e.mark == "fence" for e in verdict.ladder)


def test_without_fences_the_silence_is_waited_out():
    verdict, wire, took = run(SILENCE_AFTER_ACK, mode=fence.OFF)
    assert verdict.outcome == PASS and verdict.fenced == [] and wire.echoes == 0
    assert took >= 0.3 and verdict.unanswered >= 0.3


def test_after_text_the_window_waits_for_a_delayed_ack():
    """RFC 1122 4.2.3.2: an ACK may come up to 500 ms late; no fence there."""
    late_ack = lambda seg: handshake(seg) + (                       # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq + 5, delay=0.1)] if seg.payload else [])
    verdict, wire, _ = run("  - send: {flags: ACK+PSH, data: hello}\n"
                           "  - silence: 300ms\n", late_ack)
    assert verdict.outcome == FAIL and wire.echoes == 0
    assert "ms into the silence" in verdict.actual


def test_an_answer_before_the_reply_breaks_the_silence():
    answer = lambda seg: handshake(seg) + (                         # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq, delay=0.01)] if seg.flags == tcp.ACK else [])
    verdict, _, _ = run(SILENCE_AFTER_ACK, answer, echo_delay=0.05)
    assert verdict.outcome == FAIL and verdict.fenced == []


def test_audit_waits_the_window_out_and_counts_an_answer_that_overtook_the_fence():
    """A stack whose echo reply overtakes a segment's answer would turn that
    answer into a silence: audit mode shows it, and the verdict stays the
    unfenced one."""
    answer = lambda seg: handshake(seg) + (                         # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq, delay=0.05)] if seg.flags == tcp.ACK else [])
    verdict, _, _ = run(SILENCE_AFTER_ACK, answer, mode=fence.AUDIT)
    assert verdict.outcome == FAIL and verdict.fenced == []
    [audit] = verdict.fence_audit
    assert audit["line"] == 7 and audit["overtaken"]
    quiet, _, _ = run(SILENCE_AFTER_ACK, mode=fence.AUDIT)
    assert quiet.outcome == PASS and [a["overtaken"] for a in quiet.fence_audit] == [False]


def test_an_expect_that_nothing_meets_fails_at_the_fences_reply():
    verdict, _, _ = run("  - send: {flags: ACK, seq: 1, ack: 1}\n"
                        "  - expect: {flags: ACK, within: 500ms}\n")
    assert verdict.outcome == FAIL and verdict.fenced == [7]
    assert verdict.actual == "no segment before the fence's echo reply"
    assert verdict.unanswered < 0.05


def test_no_fence_while_earlier_text_may_still_draw_a_delayed_ack():
    """Text, then a RST: the text's delayed ACK may come after the RST's
    fence (RFC 1122 4.2.3.2 allows 500 ms), so the silence is waited out."""
    late_ack = lambda seg: handshake(seg) + (                       # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq + 5, delay=0.1)] if seg.payload else [])
    verdict, wire, _ = run("  - send: {flags: ACK+PSH, data: hello}\n"
                           "  - send: {flags: RST, seq: snd_nxt + 1000}\n"
                           "  - silence: 300ms\n", late_ack)
    assert verdict.outcome == FAIL and wire.echoes == 0


def test_text_acknowledged_at_once_leaves_nothing_pending():
    at_once = lambda seg: handshake(seg) + (                        # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq + 5)] if seg.payload else [])
    verdict, wire, _ = run("  - send: {flags: ACK+PSH, data: hello}\n"
                           "  - expect: {flags: ACK, ack: snd_nxt}\n"
                           "  - send: {flags: RST, seq: snd_nxt + 1000}\n"
                           "  - silence: 300ms\n", at_once)
    assert verdict.outcome == PASS, verdict.explain()
    assert verdict.fenced == [9] and wire.echoes == 1          # the silence's line


TEXT_THEN_SILENCE = ("  - send: {flags: PSH, data: hello}\n"
                     "  - silence: 300ms\n")


def test_text_the_target_took_none_of_is_fenced():
    """Text without ACK, dropped (RFC 9293 3.10.7.4: "if the ACK bit is off,
    drop the segment"): RCV.NXT unchanged before and after, so no delayed
    ACK is owed, and the reply ends the silence."""
    verdict, wire, _ = run(TEXT_THEN_SILENCE, received=[0])
    assert verdict.outcome == PASS, verdict.explain()
    assert verdict.fenced == [7] and wire.echoes == 1 and verdict.unanswered < 0.05
    [note] = [e for e in verdict.ladder if e.kind == "note" and e.mark == "fence"]
    assert "took none of the segment (still ESTABLISHED, RCV.NXT unchanged)" in note.text


def test_text_the_target_took_waits_for_its_delayed_ack():
    """Taken (RCV.NXT moved on by 5): the ACK may come up to 500 ms later
    (RFC 1122 4.2.3.2), and it does: the fence's reply ends nothing."""
    late_ack = lambda seg: handshake(seg) + (                       # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq + 5, delay=0.1)] if seg.payload else [])
    verdict, wire, _ = run(TEXT_THEN_SILENCE, late_ack, received=[0, 5])
    assert verdict.outcome == FAIL and verdict.fenced == [] and wire.echoes == 1
    assert "ms into the silence" in verdict.actual


def test_audit_says_which_text_fences_would_have_decided():
    verdict, _, _ = run(TEXT_THEN_SILENCE, mode=fence.AUDIT, received=[0])
    assert [(a["untaken"], a["overtaken"]) for a in verdict.fence_audit] == [(True, False)]


def test_a_quiet_connection_is_fenced_at_a_second_echos_reply():
    """PyTCP: the agent says the session has nothing to send by itself; a
    second echo flushes what it queued before it was asked."""
    verdict, wire, _ = run(TEXT_THEN_SILENCE, received=[0], stack="pytcp")
    assert verdict.outcome == PASS, verdict.explain()
    assert verdict.fenced == [7] and wire.echoes == 2 and verdict.unanswered < 0.05
    [note] = [e for e in verdict.ladder if e.kind == "note" and e.mark == "fence"]
    assert "nothing to send by itself, and a second echo's reply" in note.text


def test_a_connection_with_something_to_send_waits_for_it():
    """Not quiet (the ACK it owes goes from its timer): the window runs on and
    the late ACK breaks the silence."""
    late_ack = lambda seg: handshake(seg) + (                       # noqa: E731
        [Reply(tcp.ACK, 7001, seg.seq + 5, delay=0.05)] if seg.payload else [])
    verdict, wire, _ = run(TEXT_THEN_SILENCE, late_ack, received=[0], stack="pytcp",
                           sends_in=[0])
    assert verdict.outcome == FAIL and verdict.fenced == [] and wire.echoes == 1


def test_a_timer_running_out_after_the_window_does_not_keep_it_open():
    """A FIN waiting for its ACK is sent again when its retransmission timer
    runs out: 900 ms on, past the 300 ms silence, the window is fenced; 100
    ms on, inside it, the window runs on and the retransmission breaks the
    silence."""
    verdict, wire, _ = run(TEXT_THEN_SILENCE, received=[0], stack="pytcp", sends_in=[900])
    assert verdict.outcome == PASS and verdict.fenced == [7] and wire.echoes == 2
    [note] = [e for e in verdict.ladder if e.kind == "note" and e.mark == "fence"]
    assert "sends nothing by itself for 900 ms (its timer), past the window's end" in note.text

    again = lambda seg: handshake(seg) + (                          # noqa: E731
        [Reply(tcp.FIN | tcp.ACK, 7001, 1001, delay=0.1)] if seg.payload else [])
    verdict, wire, _ = run(TEXT_THEN_SILENCE, again, received=[0], stack="pytcp",
                           sends_in=[100])
    assert verdict.outcome == FAIL and verdict.fenced == [] and wire.echoes == 1
