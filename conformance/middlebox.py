"""The middlebox's side of a case: what crossed it, and what it tracks.

With a firewall or a NAT in the path (firewall.py), the device is the
target, and a case asks two things the tester's own capture cannot answer:

* what the device did with a segment the tester sent: dropped it, forwarded
  it (unchanged, but for the hop: TTL or hop limit one less, the IPv4 header
  checksum with it), or translated it (other addresses or ports, as a NAT
  does).  A capture on the end host's link (inside the end host's namespace)
  sees what reached it; :func:`crossing` compares the two frames.
* the state its connection tracking holds for the case's connection, read
  from the firewall's namespace (conntrack.py).

Matching is pure; :class:`MiddleboxView` holds the inside capture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import conntrack
from .conntrack import Tracked
from .evidence import DeviceEvent
from .wire import Capture, Frame, decode_packet
from .witness import ip_packet

DROPS, FORWARDS, TRANSLATES = "drops", "forwards", "translates"
STATE_POLL = 0.01          # seconds between reads of the tracker's table


@dataclass(frozen=True)
class Crossing:
    """What became of one segment at the middlebox."""

    fate: str                          # DROPS, FORWARDS or TRANSLATES
    delay: float | None = None         # seconds from the tester's send to the inside capture
    detail: str = ""

    def event(self, at: float) -> DeviceEvent:
        """The crossing as evidence on the ladder."""
        delay = None if self.delay is None else round(self.delay * 1e6)
        return DeviceEvent(at, "crossing", self.fate, delay, self.detail)


def _identity(packet: bytes):
    """What routing and translation leave alone: the TCP sequence numbers,
    flags and data (None when the packet is no TCP segment)."""
    seg = decode_packet(packet)
    return None if seg is None else (seg.seq, seg.ack, seg.flags, bytes(seg.payload))


def _without_hop(packet: bytes) -> bytes:
    """The packet with what a router changes zeroed: IPv4's TTL and header
    checksum, IPv6's hop limit."""
    if packet[0] >> 4 == 4:
        return packet[:8] + b"\x00" + packet[9:10] + b"\x00\x00" + packet[12:]
    return packet[:7] + b"\x00" + packet[8:]


def crossing(sent: bytes, sent_at: float, inside: list[Frame]) -> Crossing:
    """The fate of the tester's frame `sent` (sent at `sent_at`), from the
    frames the inside capture took since: the first that carries the same
    segment decides."""
    packet = ip_packet(sent)
    identity = _identity(packet)
    for frame in inside:
        arrived = ip_packet(frame.data)
        if frame.outgoing or _identity(arrived) != identity:
            continue
        delay = max(0.0, frame.time - sent_at)
        if _without_hop(arrived) == _without_hop(packet):
            return Crossing(FORWARDS, delay)
        return Crossing(TRANSLATES, delay, _translation(packet, arrived))
    return Crossing(DROPS)


def _translation(sent: bytes, arrived: bytes) -> str:
    """Which addresses and ports the device rewrote, in words."""
    before, after = _ends(sent), _ends(arrived)
    changed = [f"{name} {a} -> {b}" for name, a, b in zip(("source", "destination"), before,
                                                            after) if a != b]
    return ", ".join(changed) or "rewritten"


def _ends(packet: bytes) -> tuple[str, str]:
    seg = decode_packet(packet)
    host = (lambda a: f"[{a}]") if ":" in seg.src else str
    return f"{host(seg.src)}:{seg.sport}", f"{host(seg.dst)}:{seg.dport}"


class MiddleboxView:
    """The end host's link, captured inside its namespace, and the firewall's
    connection tracking table."""

    def __init__(self, capture, firewall_ns: str | None):
        self.capture, self.firewall_ns = capture, firewall_ns
        self.inside: list[Frame] = []

    @classmethod
    def on(cls, namespace: str, iface: str, firewall_ns: str) -> "MiddleboxView":
        return cls(Capture(iface, namespace), firewall_ns)

    def watch(self, ports) -> None:
        """The case's flows only (by the tester's ports: behind NAT, the
        addresses differ from one side of the device to the other)."""
        self.capture.watch_ports(ports)
        self.inside = []

    def fate(self, sent: bytes, sent_at: float, deadline: float) -> Crossing:
        """What the device did with `sent`: waits until the segment shows on
        the inside link, or until `deadline` (then it was dropped)."""
        while True:
            found = crossing(sent, sent_at, self.inside)
            if found.fate != DROPS:
                return found
            frame = self.capture.receive(deadline)
            if frame is None:
                return found
            self.inside.append(frame)

    def tracks(self, ends: tuple[str, int, str, int], state: str,
               within: float) -> Tracked | None:
        """The tracker's entry for the flow `ends` (src, sport, dst, dport as the
        tester sees it), read until it is in `state` ("none": until there is
        none) or `within` seconds have passed; the last entry read."""
        deadline = time.monotonic() + within
        while True:
            entry = conntrack.entry_for(conntrack.read(self.firewall_ns), *ends)
            settled = entry is None if state == "none" else (entry and entry.state == state)
            if settled or time.monotonic() >= deadline:
                return entry
            time.sleep(STATE_POLL)

    def close(self) -> None:
        self.capture.close()
