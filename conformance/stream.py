"""The segments of a case, as the wire delivers them: sorted to the case's
connections, put on the ladder, retransmissions told apart from answers.

A :class:`SegmentStream` reads frames from anything with the wire's
``receive(deadline)`` (a real :class:`wire.Wire`, or a list of frames in the
project's tests), and gives the engine the target's next segment on the
connection a step is about.  Segments of the case's other connections are
kept for them; a retransmission (sequence space the target has already sent,
RFC 9293 3.8.1) is shown on the ladder and passed over unless a step asks for
one, and the last one passed over is remembered, so that a failure about a
missing answer can say that one came.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import tcp
from .connection import Connection
from .evidence import Event, SegmentEvent, describe
from .seq import relative
from .wire import decode, is_echo_reply, write_pcap


@dataclass
class Flow:
    """One connection of a case: the tester's port and view of it, the
    target application's socket, and the target's segments read for it while
    the case was busy with another connection."""

    name: str
    tester_port: int
    conn: Connection
    sock: int | None = None
    held: list = field(default_factory=list)
    # The last frame the tester sent on it, and when (time.time()): a
    # middlebox step asks what became of it (middlebox.py).
    last_sent: bytes | None = None
    last_sent_at: float = 0.0
    # The target's port as the tester sees it: the case's own, or, behind a
    # NAT that translates ports, the one its first segment came from.
    target_port: int = 0
    heard: bool = False         # a segment of the target's has come on it

class SegmentStream:
    def __init__(self, wire, flows: dict[str, Flow], ladder: list[Event],
                 learn_target_ports: bool = False):
        """`learn_target_ports`: take each flow's target port from the target's
        first segment on it (a NAT may translate the port)."""
        self.wire, self.flows, self.ladder = wire, flows, ladder
        self.learn_target_ports = learn_target_ports
        self._by_port = {flow.tester_port: flow for flow in flows.values()}
        self._events: dict[int, SegmentEvent] = {}    # id(segment) -> its ladder event
        self.segments: list[tcp.Segment] = []         # every frame of the case, for the pcap
        self.skipped: tcp.Segment | None = None       # the last retransmission passed over
        self.in_setup = True                          # the case's setup is running
        self.from_target = self.bad_checksums = 0     # the target's segments, and how
                                                      # many of them had a wrong checksum
        self.fence_reply: float | None = None         # when the last fence was answered

    def flow_of_port(self, tester_port: int) -> Flow | None:
        return self._by_port.get(tester_port)

    def next(self, flow: Flow, deadline: float, want_retransmission: bool = False,
             mark: str = "", fence: int | None = None) -> tcp.Segment | None:
        """The target's next segment on `flow` (retransmissions skipped unless
        wanted), or None once the deadline passes; segments of the case's
        other connections are kept for them.  With `fence` (an echo request's
        ident, fence.py), None also when its reply comes first: its time is
        then `fence_reply`."""
        self.fence_reply = None
        if flow.held:
            return flow.held.pop(0)
        while True:
            frame = self.wire.receive(deadline)
            if frame is None:
                return None
            seg = decode(frame)
            if seg is None:
                if fence is not None and is_echo_reply(frame, fence):
                    self.fence_reply = frame.time
                    return None
                continue
            owner = self._by_port.get(seg.sport if seg.direction == tcp.OUT else seg.dport)
            if owner is None:
                continue
            self.segments.append(seg)
            entry = self.event(seg, owner, mark)
            self.ladder.append(entry)
            self._events[id(seg)] = entry
            if seg.direction == tcp.OUT:
                entry.mark = ""  # only the target's segments can go unexamined
                continue
            if not owner.heard and self.learn_target_ports:
                owner.target_port = seg.sport
            owner.heard = True
            self.from_target += 1
            if not seg.checksum_ok:
                self.bad_checksums += 1
                entry.mark = "bad checksum"
            if owner.conn.is_retransmission(seg):
                entry.mark = "retransmission"
                if not want_retransmission or owner is not flow:
                    self.skipped = seg
                    continue
            if self.in_setup and not entry.mark:
                entry.mark = "setup"
            if owner is not flow:
                if entry.mark == "unexamined":
                    entry.mark = ""
                owner.held.append(seg)
                continue
            return seg

    def drain(self, flow: Flow, now: float) -> None:
        """At the end of a case: whatever the target sent that no step
        examined goes on the ladder as unexamined."""
        while self.next(flow, now, want_retransmission=True, mark="unexamined") is not None:
            pass
        for each in self.flows.values():
            for seg in each.held:
                entry = self._events.get(id(seg))
                if entry is not None and entry.mark in ("", "setup"):
                    entry.mark = "unexamined"

    def offload_suspected(self) -> str | None:
        """Why no verdict can stand when every segment of the target came with
        a wrong TCP checksum: a virtual link whose sender leaves the checksum
        to an offload (CHECKSUM_PARTIAL on a veth or a tap) delivers them so,
        whatever the stack does.  None once one came right."""
        if self.from_target == 0 or self.bad_checksums < self.from_target:
            return None
        return (f"every segment from the target ({self.from_target}) has a wrong TCP "
                f"checksum: the mark of a checksum offload on a virtual link, not of the "
                f"stack; turn it off on the interface the target sends from "
                f"(ethtool -K IFACE tx off) and run again")

    def save(self, path) -> str | None:
        """The case's frames as a pcap at `path` (its parent made if need be);
        None when the case saw no frame."""
        if not self.segments:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pcap(path, [(seg.time, seg.frame) for seg in self.segments])
        return str(path)

    def skipped_since(self, ref: float, flow: Flow) -> str:
        """What a failure about a missing answer adds when the target did send
        something, which the stream passed over as a retransmission: the
        answer may be one (a SYN-ACK sent again in answer to a repeated SYN)."""
        seg = self.skipped
        if seg is None or seg.time < ref:
            return ""
        return (f"; but a {tcp.format_flags(seg.flags)} came at "
                f"{(seg.time - ref) * 1000:.2f} ms ({self.describe(seg, flow)}), taken as a "
                f"retransmission: write retransmission: true if it is the answer")

    def describe(self, seg: tcp.Segment, flow: Flow) -> str:
        """The segment's ladder line, for a failure's actual."""
        return describe(self.event(seg, flow))

    def event(self, seg: tcp.Segment, flow: Flow, mark: str = "") -> SegmentEvent:
        """The segment as evidence; with several connections, it names its own."""
        return segment_event(seg, flow.conn, flow.name if len(self.flows) > 1 else "", mark)


def segment_event(seg: tcp.Segment, conn: Connection, name: str = "",
                  mark: str = "") -> SegmentEvent:
    """A captured segment as a ladder event: seq and ack also relative to each
    side's ISN (a SYN's seq to itself), as far as the connection knows them."""
    if seg.direction == tcp.OUT:
        own_isn, peer_isn = conn.iss, conn.irs
    else:
        own_isn = seg.seq if seg.has(tcp.SYN) else conn.irs
        peer_isn = conn.iss
    return SegmentEvent(
        seg.time, seg.direction, seg.flags, seg.seq, seg.ack,
        rel_seq=relative(seg.seq, own_isn) if own_isn is not None else None,
        rel_ack=relative(seg.ack, peer_isn) if peer_isn is not None else None,
        window=seg.window, length=len(seg.payload), urg=seg.urgptr,
        options=tuple(seg.options), checksum_ok=seg.checksum_ok, connection=name, mark=mark)
