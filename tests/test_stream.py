"""The segment stream (conformance.stream) on a fake wire, without a lab:
frames are built as the target would send them and handed out one by one."""

from __future__ import annotations

from conformance import tcp
from conformance.connection import Connection
from conformance.stream import Flow, SegmentStream
from conformance.evidence import Event, describe
from conformance.wire import Frame, Link, build_frame

TESTER = Link("t0", "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.0.1", "198.18.0.2")
# The target's frames: the same link seen from the other end.
TARGET = Link("t0", TESTER.target_mac, TESTER.tester_mac, TESTER.target_ip, TESTER.tester_ip)
ISS, IRS, PORT = 1000, 5000, 80


class FakeWire:
    """Frames handed out in order, each at its time; None once none is left
    before the deadline."""

    def __init__(self, frames):
        self.frames = list(frames)

    def receive(self, deadline: float):
        if self.frames and self.frames[0].time <= deadline:
            return self.frames.pop(0)
        return None


def from_target(time: float, tester_port: int, flags: int, seq: int, ack: int,
                payload: bytes = b"") -> Frame:
    return Frame(time, False, build_frame(TARGET, PORT, tester_port, seq, ack, flags, 65535,
                                          payload))


def from_tester(time: float, tester_port: int, flags: int, seq: int, ack: int) -> Frame:
    return Frame(time, True, build_frame(TESTER, tester_port, PORT, seq, ack, flags, 65535))


def flows(*ports: int) -> dict[str, Flow]:
    out = {}
    for name, port in zip("abc", ports):
        conn = Connection.opening(ISS)
        conn.sent(ISS, tcp.SYN, 0)
        conn.irs, conn.rcv_nxt, conn.peer_max = IRS, IRS + 1, IRS + 1
        out[name] = Flow(name, port, conn)
    return out


def test_answers_come_in_order_and_the_tester_own_segments_only_on_the_ladder():
    fl = flows(40000)
    ladder: list[Event] = []
    stream = SegmentStream(FakeWire([
        from_tester(1.0, 40000, tcp.ACK, ISS + 1, IRS + 1),
        from_target(1.1, 40000, tcp.ACK | tcp.PSH, IRS + 1, ISS + 1, b"hello"),
    ]), fl, ladder)
    seg = stream.next(fl["a"], deadline=2.0)
    assert seg.payload == b"hello" and seg.direction == tcp.IN
    assert [describe(e) for e in ladder] == ["ACK seq=1 ack=1 win=65535",
                                       "PSH+ACK seq=1 ack=1 win=65535 len=5"]
    assert stream.next(fl["a"], deadline=2.0) is None
    assert len(stream.segments) == 2


def test_a_retransmission_is_passed_over_unless_wanted():
    """Data already seen is skipped, marked on the ladder and remembered; a step
    that asks for a retransmission gets it."""
    fl = flows(40000)
    fl["a"].conn.peer_max = IRS + 6            # "hello" was seen already
    again = [from_target(1.0, 40000, tcp.ACK | tcp.PSH, IRS + 1, ISS + 1, b"hello")]
    ladder: list[Event] = []
    stream = SegmentStream(FakeWire(again), fl, ladder)
    assert stream.next(fl["a"], deadline=2.0) is None
    assert ladder[0].mark == "retransmission" and stream.skipped is not None
    stream = SegmentStream(FakeWire(list(again)), fl, [])
    assert stream.next(fl["a"], deadline=2.0, want_retransmission=True) is not None


def test_segments_of_another_connection_are_kept_for_it():
    fl = flows(40000, 40001)
    stream = SegmentStream(FakeWire([
        from_target(1.0, 40001, tcp.ACK, IRS + 1, ISS + 1),
        from_target(1.1, 40000, tcp.FIN | tcp.ACK, IRS + 1, ISS + 1),
    ]), fl, [])
    assert stream.next(fl["a"], deadline=2.0).has(tcp.FIN)
    assert stream.next(fl["b"], deadline=2.0).has(tcp.ACK)       # held for b
    assert stream.describe(stream.segments[0], fl["b"]).startswith("[b] ACK")


def test_frames_of_other_flows_and_other_protocols_are_ignored():
    fl = flows(40000)
    stream = SegmentStream(FakeWire([
        from_target(1.0, 40999, tcp.ACK, IRS + 1, ISS + 1),     # not the case's port
        Frame(1.1, False, b"\x00" * 60),                        # not TCP
    ]), fl, [])
    assert stream.next(fl["a"], deadline=2.0) is None and stream.segments == []


def test_setup_segments_are_marked_and_leftovers_are_unexamined():
    fl = flows(40000)
    ladder: list[Event] = []
    stream = SegmentStream(FakeWire([
        from_target(1.0, 40000, tcp.ACK, IRS + 1, ISS + 1),
        from_target(1.2, 40000, tcp.FIN | tcp.ACK, IRS + 1, ISS + 1),
    ]), fl, ladder)
    stream.next(fl["a"], deadline=1.1)
    stream.in_setup = False
    stream.drain(fl["a"], now=5.0)
    assert [e.mark for e in ladder] == ["setup", "unexamined"]


def test_behind_a_nat_each_flow_takes_its_target_port_from_the_first_segment():
    """A NAT may give the end host's connection another outside port: the
    flow follows the port its first segment came from, and only that one."""
    fl = flows(40000)
    fl["a"].target_port = 11000
    moved = Link(TARGET.iface, TARGET.tester_mac, TARGET.target_mac, TARGET.tester_ip,
                 TARGET.target_ip)
    frames = [Frame(1.0, False, build_frame(moved, 61000, 40000, IRS + 1, ISS + 1, tcp.ACK,
                                            65535)),
              Frame(1.1, False, build_frame(moved, 62000, 40000, IRS + 1, ISS + 1, tcp.ACK,
                                            65535))]
    stream = SegmentStream(FakeWire(frames), fl, [], learn_target_ports=True)
    stream.next(fl["a"], deadline=2.0)
    stream.next(fl["a"], deadline=2.0)
    assert (fl["a"].target_port, fl["a"].heard) == (61000, True)
    # Without a NAT the case's port stays, whatever comes.
    fl = flows(40000)
    fl["a"].target_port = 11000
    stream = SegmentStream(FakeWire(list(frames)), fl, [])
    stream.next(fl["a"], deadline=2.0)
    assert fl["a"].target_port == 11000
