"""A pretend target on a fake wire, to run the engine without root or a lab.

The target's answers are a script: :class:`ScriptedWire` hands each segment
the tester sends to ``answer(segment)``, which returns the target's segments
back (:class:`Reply`), with their delays.  The wire delivers the tester's own
frames and the replies in time order, as the real capture does, and stamps
them with the real clock, so silences and time bounds run as they do on a
real wire (keep them short in tests).  :class:`FakeTarget` is a target with
no agent (black-box mode), or with :class:`FakeAgent` for cases whose
setup calls the application and reads states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from conformance import tcp
from conformance.targets import ALL, NONE, Target
from conformance.wire import Frame, Link, build_frame, decode
from conformance.witness import Witness

TESTER = Link("t0", "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.0.1", "198.18.0.2")
# The target's frames: the same link seen from the other end.
TARGET = Link("t0", TESTER.target_mac, TESTER.tester_mac, TESTER.target_ip, TESTER.tester_ip)
IRS = 7000           # the pretend target's ISN


@dataclass
class Reply:
    flags: int
    seq: int
    ack: int
    delay: float = 0.001
    payload: bytes = b""
    window: int = 65535
    bad_checksum: bool = False


class ScriptedWire:
    """`lose(reply)`: whether the link loses that reply on its way to the
    tester (the target's end of the link still saw it leave: see witness())."""

    def __init__(self, answer=lambda seg: [], echo: bool = True, lose=lambda reply: False,
                 echo_delay: float = 0.0005):
        """`echo_delay`: how long the target takes to answer an ICMP echo
        request (a fence's, fence.py)."""
        self.answer, self.echo_answered, self.lose = answer, echo, lose
        self.echo_delay = echo_delay
        self.echoes = 0                       # echo requests the tester sent
        self.pending: list[Frame] = []
        self.at_target: list[Frame] = []      # what the target's end of the link saw
        self.sent: list[tcp.Segment] = []     # what the tester sent, decoded
        self.ports: list[int] = []

    # The parts of wire.Wire the engine uses.
    def watch(self, link, ports) -> None:
        self.ports = list(ports)

    def send(self, data: bytes) -> None:
        now = time.time()
        self._deliver(Frame(now, True, data))
        seg = decode(Frame(now, True, data))
        if seg is None:               # an ICMP echo request: its reply, swapped
            self.echoes += 1
            reply = _echo_reply(data)
            if self.echo_answered and reply is not None:
                self._deliver(Frame(now + self.echo_delay, False, reply))
            return
        self.sent.append(seg)
        self.at_target.append(Frame(now, False, data))
        for reply in self.answer(seg):
            frame = build_frame(TARGET, seg.dport, seg.sport, reply.seq, reply.ack, reply.flags,
                                reply.window, reply.payload, bad_checksum=reply.bad_checksum)
            self.at_target.append(Frame(now + reply.delay, True, frame))
            if not self.lose(reply):
                self._deliver(Frame(now + reply.delay, False, frame))

    def witness(self) -> Witness:
        """A witness at the target's end of this wire."""
        return Witness(_TargetEnd(self), "the fake target's end", settle=0.01)

    def receive(self, deadline: float) -> Frame | None:
        if self.pending and self.pending[0].time <= deadline:
            time.sleep(max(0.0, self.pending[0].time - time.time()))
            return self.pending.pop(0)
        time.sleep(max(0.0, deadline - time.time()))
        return None

    def echo(self, link) -> bool:
        return self.echo_answered

    def _deliver(self, frame: Frame) -> None:
        self.pending.append(frame)
        self.pending.sort(key=lambda f: f.time)


def _echo_reply(request: bytes) -> bytes | None:
    """The reply to an IPv4 ICMP echo request frame: addresses swapped, type 0
    (the checksum is left as it was: nothing here checks it)."""
    if request[12:14] != b"\x08\x00" or request[23] != 1:
        return None
    icmp = 14 + (request[14] & 0x0F) * 4
    return (request[6:12] + request[0:6] + request[12:26] + request[30:34] + request[26:30]
            + request[34:icmp] + b"\x00" + request[icmp + 1:])


class _TargetEnd:
    """The capture a witness has at the target's end of a ScriptedWire."""

    def __init__(self, wire: ScriptedWire):
        self.wire = wire

    def watch(self, link, ports, echo_replies: bool = True) -> None:
        self.wire.at_target.clear()

    def receive(self, deadline: float) -> Frame | None:
        frames = self.wire.at_target
        frames.sort(key=lambda f: f.time)
        if frames and frames[0].time <= deadline:
            return frames.pop(0)
        return None

    def close(self) -> None:
        pass


class FakeAgent:
    """The target's application: listens and accepts by script, and reports
    the states it is given for the case's connection on `wire`, one per
    states call, the last one from then on."""

    def __init__(self, wire: ScriptedWire, states=("ESTABLISHED",), received=(0,),
                 sends_in=(None,)):
        """`received` and `sends_in`: what each `states` call with
        received=True reports (fence.Mark; fence.QUIET_VIEW: milliseconds, or
        None for nothing scheduled), one per call, the last one from then on."""
        self.wire, self.states, self.calls = wire, list(states), []
        self.received, self.sends_in = list(received), list(sends_in)

    def call(self, op: str, **args) -> dict:
        self.calls.append(op)
        if op in ("listen", "accept", "connect"):
            return {"sock": 1, "peer": f"{TESTER.tester_ip}:0"}
        if op == "states":
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            remote = f"{TESTER.tester_ip}:{self.wire.ports[0]}"
            row = {"state": state, "remote": remote}
            if args.get("received"):
                row["received"] = (self.received.pop(0) if len(self.received) > 1
                                   else self.received[0])
                row["sends_in"] = (self.sends_in.pop(0) if len(self.sends_in) > 1
                                   else self.sends_in[0])
            return {"connections": [row]}
        return {}


class FakeTarget(Target):
    name = "fake"
    tester_ports = range(40000, 40100)

    def __init__(self, agent: FakeAgent | None = None, name: str | None = None):
        """`name`: a lab stack's, to take its fences (fence.IN_ORDER)."""
        self.name = name or self.name
        self.links = {tcp.IPV4: TESTER}
        self.agent = agent
        self.state_view = ALL if agent else NONE
        self.state_view_reason = "" if agent else "black-box mode: no agent on the target"
        self.listen_port, self.closed_port = 80, 81


def handshake(seg: tcp.Segment) -> list[Reply]:
    """The answers of a listening target to the tester's SYN: a SYN-ACK."""
    if seg.flags == tcp.SYN:
        return [Reply(tcp.SYN | tcp.ACK, IRS, seg.seq + 1)]
    return []
