"""The witness: a capture at the target's end of the link, so that a case
knows whether the link delivered what each end sent.

In the lab the suite owns both ends of the link.  The tester's capture shows
what the tester sent and what reached it; the witness, a second packet socket
on the target's interface (inside the target's namespace), shows what reached
the target and what the target sent.  After each case the two are compared,
one direction at a time: every frame that left one end must have arrived at
the other once, intact, in the order it was sent, and within the link's
transit time.  Anything else is :class:`Damage`: the case's evidence is not
about the target, so its verdict cannot stand.  The runner runs such a case
again (a bounded number of times, recorded in the results) and, if the link
damages every run, the verdict is an error naming what was lost or altered.

A healthy veth delivers every frame in microseconds, so in a clean lab the
witness never finds anything; it earns its keep on a link with faults
(faults.py), and on any lab whose link misbehaves under load.

A target the suite does not build (a device on a real network, a container)
has no witness: there, ``--confirm N`` (confirm.py) repeats a failure
instead, and a verdict stands only if every run agrees.

The comparison is pure (:func:`compare`), over :class:`Passage` records: a
frame's IP packet, when it was captured, and whether the capture was at its
sender or its receiver.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from . import tcp
from .wire import Capture, Frame, Link, decode_packet

# Kinds of damage, as the reason of an error says them.
LOST, DUPLICATED, ALTERED, REORDERED, DELAYED = (
    "lost", "duplicated", "altered", "reordered", "delayed")
TO_TARGET, FROM_TARGET = "to the target", "from the target"

# How long a frame may take from one end to the other before the link is
# said to have delayed it.  A veth takes microseconds; under a loaded
# machine's softirq backlog, a few milliseconds.  Case time bounds are
# hundreds of milliseconds, so a delay below this cannot change a verdict.
TRANSIT_LIMIT = 0.050


@dataclass(frozen=True)
class Passage:
    """One frame seen at one end of the link."""

    time: float
    packet: bytes        # the IP packet, without the Ethernet header or padding

    @classmethod
    def of(cls, frame: Frame) -> "Passage":
        return cls(frame.time, ip_packet(frame.data))


@dataclass(frozen=True)
class Damage:
    """What the link did to one frame of a case."""

    kind: str            # LOST, DUPLICATED, ALTERED, REORDERED, DELAYED
    direction: str       # TO_TARGET or FROM_TARGET
    segment: str         # the segment as the ladder writes it
    time: float          # when it left its sender (or reached its receiver, if never sent)
    detail: str = ""

    def text(self) -> str:
        sender = "the tester's" if self.direction == TO_TARGET else "the target's"
        said = f"{sender} {self.segment} {self.kind} on the link"
        return f"{said} ({self.detail})" if self.detail else said

    def to_json(self) -> dict:
        return {"kind": self.kind, "direction": self.direction, "segment": self.segment,
                "time": self.time, "detail": self.detail}


def ip_packet(frame: bytes) -> bytes:
    """The IP packet in an Ethernet frame, cut at the length its header gives
    (a link may pad short frames)."""
    ethertype = int.from_bytes(frame[12:14], "big")
    packet = frame[14:]
    if ethertype == 0x0800 and len(packet) >= 20:
        return packet[:int.from_bytes(packet[2:4], "big")]
    if ethertype == 0x86DD and len(packet) >= 40:
        return packet[:40 + int.from_bytes(packet[4:6], "big")]
    return packet


def describe(packet: bytes) -> str:
    """A packet as the ladder writes a segment: flags, seq, ack, length."""
    seg = decode_packet(packet)
    if seg is None:
        return f"packet of {len(packet)} bytes"
    return tcp.format_segment(seg.flags, seq=seg.seq, ack=seg.ack if seg.has(tcp.ACK) else None,
                              length=len(seg.payload) or None)


def _identity(packet: bytes):
    """What stays the same when a link alters a frame's bytes: the ports, the
    sequence numbers and the flags (None if it is no TCP segment)."""
    seg = decode_packet(packet)
    return None if seg is None else (seg.sport, seg.dport, seg.seq, seg.ack, seg.flags)


def compare(sent: list[Passage], arrived: list[Passage], direction: str, cutoff: float,
            transit_limit: float = TRANSIT_LIMIT) -> list[Damage]:
    """The damage done to one direction's frames: `sent` as the sender's
    capture saw them, `arrived` as the receiver's did, each in capture order.
    A frame sent after `cutoff` may still be on its way, and is not missed."""
    damage: list[Damage] = []
    matched = [False] * len(sent)
    strays: list[Passage] = []            # arrivals that match nothing sent
    latest = -1                           # the latest sent index delivered so far
    for frame in arrived:
        copies = [i for i, each in enumerate(sent) if each.packet == frame.packet]
        fresh = [i for i in copies if not matched[i]]
        if not fresh:
            if copies:
                damage.append(Damage(DUPLICATED, direction, describe(frame.packet),
                                     sent[copies[0]].time, "it arrived once more"))
            else:
                strays.append(frame)
            continue
        i = fresh[0]
        matched[i] = True
        if i < latest:
            damage.append(Damage(REORDERED, direction, describe(frame.packet), sent[i].time,
                                 "a segment sent after it arrived first"))
        latest = max(latest, i)
        transit = frame.time - sent[i].time
        if transit > transit_limit:
            damage.append(Damage(DELAYED, direction, describe(frame.packet), sent[i].time,
                                 f"it took {transit * 1000:.1f} ms"))
    for i, each in enumerate(sent):
        if matched[i] or each.time > cutoff:
            continue
        twin = next((s for s in strays if _identity(s.packet) is not None
                     and _identity(s.packet) == _identity(each.packet)), None)
        if twin is not None:
            strays.remove(twin)
            damage.append(Damage(ALTERED, direction, describe(each.packet), each.time,
                                 _difference(each.packet, twin.packet)))
        else:
            damage.append(Damage(LOST, direction, describe(each.packet), each.time,
                                 "it never arrived"))
    for stray in strays:
        damage.append(Damage(ALTERED, direction, describe(stray.packet), stray.time,
                             "it arrived, but no such segment was sent"))
    return sorted(damage, key=lambda d: d.time)


def _difference(sent: bytes, arrived: bytes) -> str:
    """Where the arrived copy differs from what was sent, in words."""
    if len(sent) != len(arrived):
        return f"{len(sent)} bytes sent, {len(arrived)} arrived"
    offsets = [i for i, (a, b) in enumerate(zip(sent, arrived)) if a != b]
    header = (sent[0] & 0x0F) * 4 if sent[0] >> 4 == 4 else 40
    checksum = range(header + 16, header + 18)
    if all(i in checksum for i in offsets):
        (before,), (after,) = struct.unpack("!H", sent[checksum.start:checksum.stop]), \
            struct.unpack("!H", arrived[checksum.start:checksum.stop])
        return f"its TCP checksum changed from {before:#06x} to {after:#06x}"
    return f"{len(offsets)} byte(s) changed, the first at offset {offsets[0]} of the IP packet"


class Witness:
    """The witness's capture on the target's interface, with the case's flow
    filter; :meth:`damage` compares it with the tester's frames.

    `settle`: how long a frame may still be on its way when a case ends (the
    faults' largest delay, and a margin)."""

    def __init__(self, capture, where: str, settle: float = 0.05):
        self.capture, self.where, self.settle = capture, where, settle

    @classmethod
    def on(cls, iface: str, namespace: str, settle: float = 0.05) -> "Witness":
        """The witness on `iface` inside `namespace` (the target's end)."""
        return cls(Capture(iface, namespace), f"{namespace}/{iface}", settle)

    def watch(self, link: Link, tester_ports) -> None:
        # The segments alone: the witness compares what TCP sent and got.
        self.capture.watch(link, tester_ports, echo_replies=False)

    def damage(self, tester_frames, read_tester) -> list[Damage]:
        """The link's damage to the case so far.  `tester_frames`: the
        (time, outgoing, frame bytes) the tester captured; `read_tester(deadline)`
        reads more of them (frames still queued, or on their way)."""
        now = time.time()
        tester = list(tester_frames) + read_tester(now)
        target = self._read(now)
        found = self._compare(tester, target, cutoff=now)
        if found:
            # Something may still be on its way: wait for the link's transit
            # time once, then judge what was sent before this check began.
            deadline = now + self.settle
            tester += read_tester(deadline)
            target += self._read(deadline)
            found = self._compare(tester, target, cutoff=now)
        return found

    def _read(self, deadline: float) -> list[Frame]:
        frames = []
        while (frame := self.capture.receive(deadline)) is not None:
            frames.append(frame)
        return frames

    def _compare(self, tester: list[Frame], target: list[Frame], cutoff: float) -> list[Damage]:
        def side(frames, outgoing):
            return [Passage.of(f) for f in frames if f.outgoing == outgoing]
        return sorted(compare(side(tester, True), side(target, False), TO_TARGET, cutoff)
                      + compare(side(target, True), side(tester, False), FROM_TARGET, cutoff),
                      key=lambda d: d.time)

    def close(self) -> None:
        self.capture.close()


def summary(damage: list[Damage], limit: int = 3) -> str:
    """The damage in one sentence, the first few items named."""
    shown = "; ".join(d.text() for d in damage[:limit])
    more = len(damage) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


__all__ = ["ALTERED", "DELAYED", "DUPLICATED", "Damage", "FROM_TARGET", "LOST", "Passage",
           "REORDERED", "TO_TARGET", "Witness", "compare", "ip_packet", "summary"]
