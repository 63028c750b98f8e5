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

A drop is the absence of a frame, and an inside capture that saw nothing
proves nothing by itself: a capture on the wrong interface, or a device that
had stopped forwarding altogether, would pass every `drops`.  So a drop is
decided by a fence: once the wait is over, the tester sends an ICMP echo
request through the device to the end host (every ruleset passes ICMP), and
the drop stands only when the inside capture sees that echo arrive with the
segment still missing.  Without the echo, the step cannot be decided.

Matching is pure; :class:`MiddleboxView` holds the inside capture.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import conntrack
from .conntrack import Tracked
from .evidence import DeviceEvent
from .wire import Capture, Frame, decode_packet, is_echo_request, write_pcap
from .witness import ip_packet

DROPS, FORWARDS, TRANSLATES = "drops", "forwards", "translates"
UNDECIDED = "undecided"    # no segment, and no fence either: the capture proves nothing
STATE_POLL = 0.01          # seconds between reads of the tracker's table
FENCE_WAIT = 0.5           # seconds the fence's echo may take to reach the end host


@dataclass(frozen=True)
class MiddleboxAt:
    """Where the suite sees a middlebox it built: the end host's namespace
    and interface (the inside capture), the firewall's namespace (its
    tracker), and the end host's own addresses by family, which the fence's
    echo is sent to (behind NAT, the tester's link names the NAT instead)."""

    host_ns: str
    host_iface: str
    firewall_ns: str | None      # None: a device the suite did not build (unreadable)
    host_ips: dict[str, str]


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
    flags and data; of an ICMP error about a TCP segment, its type, code and
    the quoted segment's numbers and flags (None for any other packet)."""
    seg = decode_packet(packet)
    if seg is not None:
        return ("tcp", seg.seq, seg.ack, seg.flags, bytes(seg.payload))
    error = _icmp_error(packet)
    if error is None:
        return None
    kind, quoted = error
    inner = decode_packet(quoted)
    return None if inner is None else ("icmp", kind, inner.seq, inner.ack, inner.flags)


def _icmp_error(packet: bytes) -> tuple[tuple[int, int], bytes] | None:
    """An ICMP destination unreachable error's (type, code) and the packet it
    quotes (IPv4 type 3, ICMPv6 type 1); None for any other packet."""
    if packet[0] >> 4 == 4:
        header = (packet[0] & 0x0F) * 4
        if packet[9] != 1 or len(packet) < header + 8 or packet[header] != 3:
            return None
    else:
        header = 40
        if packet[6] != 58 or len(packet) < header + 8 or packet[header] != 1:
            return None
    return (packet[header], packet[header + 1]), packet[header + 8:]


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


def fence_crossed(ident: int, inside: list[Frame]) -> Crossing | None:
    """The drop proved by the fence (the echo request `ident` seen on the
    inside link), or None while it has not arrived."""
    for frame in inside:
        if not frame.outgoing and is_echo_request(frame, ident):
            return Crossing(DROPS, detail="an echo sent after it did reach the end host")
    return None


# The tracker's table counts whole seconds left since the flow's last packet,
# and is read a little after it: a timeout of exactly the bound may show a
# second or two less.
TIMEOUT_SLACK = 2


def lasts(entry: Tracked | None, idle_timeout_at_least: float | None) -> bool:
    """Whether the tracker's entry keeps the connection at least that long
    idle (True when the step asks no timeout)."""
    if idle_timeout_at_least is None:
        return True
    return entry is not None and entry.timeout + TIMEOUT_SLACK >= idle_timeout_at_least


def _translation(sent: bytes, arrived: bytes) -> str:
    """Which addresses and ports the device rewrote, in words (of an ICMP
    error, those of the segment it quotes too)."""
    before, after = _ends(sent), _ends(arrived)
    changed = [f"{name} {before[name]} -> {after[name]}" for name in before
               if before[name] != after.get(name)]
    return ", ".join(changed) or "rewritten"


def _ends(packet: bytes) -> dict[str, str]:
    seg = decode_packet(packet)
    if seg is not None:
        return {"source": _where(seg.src, seg.sport), "destination": _where(seg.dst, seg.dport)}
    inner = decode_packet(_icmp_error(packet)[1])
    if packet[0] >> 4 == 4:
        src, dst = socket.inet_ntop(socket.AF_INET, packet[12:16]), \
            socket.inet_ntop(socket.AF_INET, packet[16:20])
    else:
        src, dst = socket.inet_ntop(socket.AF_INET6, packet[8:24]), \
            socket.inet_ntop(socket.AF_INET6, packet[24:40])
    return {"source": src, "destination": dst,
            "quoted source": _where(inner.src, inner.sport),
            "quoted destination": _where(inner.dst, inner.dport)}


def _where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class MiddleboxView:
    """The end host's link, captured inside its namespace, and the firewall's
    connection tracking table."""

    def __init__(self, capture, at: MiddleboxAt):
        self.capture, self.at = capture, at
        self.firewall_ns = at.firewall_ns
        self.inside: list[Frame] = []

    @classmethod
    def on(cls, at: MiddleboxAt) -> "MiddleboxView":
        return cls(Capture(at.host_iface, at.host_ns), at)

    def watch(self, ports) -> None:
        """The case's flows only (by the tester's ports: behind NAT, the
        addresses differ from one side of the device to the other), and the
        fences' echo requests."""
        self.capture.watch_ports(ports, icmp=True)
        self.inside = []

    def fate(self, sent: bytes, sent_at: float, deadline: float,
             fence: Callable[[], int]) -> Crossing:
        """What the device did with `sent`: waits until the segment shows on
        the inside link, or until `deadline`; then `fence()` sends an echo
        through the device (returning its ident), and the
        segment was dropped if the echo arrives without it, UNDECIDED if
        the echo does not arrive either."""
        found = self._await(sent, sent_at, deadline)
        if found.fate != DROPS:
            return found
        ident = fence()
        fence_deadline = time.time() + FENCE_WAIT
        while (fenced := fence_crossed(ident, self.inside)) is None:
            frame = self.capture.receive(fence_deadline)
            if frame is None:
                return Crossing(UNDECIDED, detail=(
                    f"the segment did not reach the end host, but neither did an echo sent "
                    f"through the device after it (within {FENCE_WAIT * 1000:g} ms): the "
                    f"inside capture or the device's forwarding is not working"))
            self.inside.append(frame)
            late = crossing(sent, sent_at, self.inside)
            if late.fate != DROPS:
                return late
        return fenced

    def _await(self, sent: bytes, sent_at: float, deadline: float) -> Crossing:
        while True:
            found = crossing(sent, sent_at, self.inside)
            if found.fate != DROPS:
                return found
            frame = self.capture.receive(deadline)
            if frame is None:
                return found
            self.inside.append(frame)

    def _read_queued(self) -> None:
        while (frame := self.capture.receive(time.time())) is not None:
            self.inside.append(frame)

    def undelivered(self, since: float, delivered: list[bytes]) -> list[Frame]:
        """The end host's segments that its own link saw leave since `since`
        and that are not among the frames `delivered` to the tester."""
        self._read_queued()
        arrived = {_identity(ip_packet(frame)) for frame in delivered}
        return [frame for frame in self.inside if frame.outgoing and frame.time >= since
                and _identity(ip_packet(frame.data)) not in arrived | {None}]

    def end_host_sent_it(self, frame: bytes) -> bool:
        """Whether the end host's link shows the segment of `frame` (as the
        tester received it) leave the end host: then the device passed it on
        unchanged but for addresses and ports."""
        self._read_queued()
        identity = _identity(ip_packet(frame))
        return any(each.outgoing and _identity(ip_packet(each.data)) == identity
                   for each in self.inside)

    def reached(self, sent: bytes, sent_at: float) -> bool:
        """Whether the tester's frame `sent` reached the end host's link."""
        self._read_queued()
        return crossing(sent, sent_at, self.inside).fate != DROPS

    def save(self, path, deadline: float) -> str | None:
        """The inside capture of the case (what reached the end host's link and
        what the end host sent, the fences' echoes too) as a pcap at `path`,
        once the frames still queued until `deadline` are read; None when
        there was none."""
        while (frame := self.capture.receive(deadline)) is not None:
            self.inside.append(frame)
        if not self.inside:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pcap(path, [(frame.time, frame.data) for frame in self.inside])
        return str(path)

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
