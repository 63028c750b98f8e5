"""Sequences nobody wrote: a setup to start from, then segments from the
tester and calls of the target's application, drawn at random with a bias
towards the edges where stacks differ.

An event is written against the connection it meets, not in numbers: a
segment's sequence number is an offset from RCV.NXT or from the right edge
of the receive window, its acknowledgment number an offset from SND.NXT or
SND.UNA.  The same event therefore means the same thing on every branch the
target may take and on every stack, whatever its ISN and window; the model
turns it into numbers where it meets a TCB (.expand).

Why a generator of our own and not Hypothesis: every example costs a run on
a real stack (tens to hundreds of milliseconds of wire time), so the budget
is a few thousand sequences, not Hypothesis's many cheap examples; its
stateful testing drives a system in the same process, where ours is a lab
behind a sweep; and shrinking here is a rerun on the wire, which we do in
batches (.shrink).  A seeded ``random.Random`` with explicit edge tables
gives the same sequences for the same seed, and the tables say plainly what
"biased towards the edges" means.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace

from .. import tcp
from ..case import load_setups

RCV_NXT, RIGHT_EDGE = "rcv_nxt", "right_edge"
SND_NXT, SND_UNA = "snd_nxt", "snd_una"
# An offset of minus the segment's own length in sequence space.
SPAN = "-span"

# The window the tester offers (a send's default): RFC 5961 5.2's MAX.SND.WND
# at the target, the bound below which an ACK is too old.
TESTER_WINDOW = 65535
# The farthest a sequence number can be from another and still compare
# (RFC 1982: at exactly 2**31 the order is undefined, so it is not used).
FAR = 2**31 - 1


@dataclass(frozen=True)
class Inject:
    """A segment from the tester.  ``seq_off`` may be SPAN: minus the
    segment's own length in sequence space, so that it ends exactly at the
    point it is measured from."""
    flags: int
    length: int = 0
    seq_from: str = RCV_NXT
    seq_off: int | str = 0
    ack_from: str = SND_NXT
    ack_off: int = 0

    @property
    def span(self) -> int:
        return self.length + bool(self.flags & tcp.SYN) + bool(self.flags & tcp.FIN)

    @property
    def offset(self) -> int:
        return -max(1, self.span) if self.seq_off == SPAN else self.seq_off

    def describe(self) -> str:
        where = "RCV.NXT" if self.seq_from == RCV_NXT else "RCV.NXT+RCV.WND"
        off = self.offset
        at = where + (f"{off:+d}" if off else "")
        text = f"{tcp.format_flags(self.flags)}" + (f" with {self.length} octets" if self.length
                                                     else "")
        if self.flags & tcp.ACK:
            ack = "SND.NXT" if self.ack_from == SND_NXT else "SND.UNA"
            text += f", ack {ack}" + (f"{self.ack_off:+d}" if self.ack_off else "")
        return f"{text}, seq {at}"



@dataclass(frozen=True)
class Call:
    """A call of the target's application (RFC 9293 3.10): close or abort."""
    op: str

    def describe(self) -> str:
        return f"the application calls {self.op.upper()}"


Event = Inject | Call


@dataclass(frozen=True)
class Sequence:
    id: str
    role: str
    start: str
    events: tuple[Event, ...]

    def without(self, index: int) -> "Sequence":
        return replace(self, events=self.events[:index] + self.events[index + 1:])

    def through(self, index: int) -> "Sequence":
        """The sequence up to and including event `index`."""
        return replace(self, events=self.events[:index + 1])

    def describe(self) -> list[str]:
        return [f"{self.role} {self.start}"] + [e.describe() for e in self.events]


# -- the edge tables: (value, weight) ----------------------------------------------

# Every kind of the SEGMENT ARRIVES checks, and combinations a stack may not
# expect (SYN with FIN, RST with FIN, URG, no flags at all).
FLAGS = (("ACK", 6), ("PSH+ACK", 6), ("FIN+ACK", 4), ("RST", 3), ("RST+ACK", 3), ("SYN", 3),
         ("SYN+ACK", 2), ("FIN", 1), ("PSH", 1), ("none", 1), ("SYN+FIN", 1),
         ("FIN+RST+ACK", 1), ("URG+ACK", 1), ("SYN+RST", 1), ("FIN+PSH+ACK", 1))
# Octets of text on a segment that may carry it (PSH, or FIN with data).
LENGTHS = ((1, 2), (10, 3), (100, 1))
# Where the sequence number falls: at RCV.NXT, around it, ending exactly at
# it (just old), at the far ends of the comparable space; or around the
# window's right edge (the last octet in it, the first beyond it).
SEQ_AT_RCV_NXT = ((0, 10), (1, 2), (100, 2), (-1, 2), (SPAN, 3), (FAR, 1), (-FAR, 1))
SEQ_AT_EDGE = ((-1, 3), (0, 3), (1, 1), (SPAN, 1))
# Where the acknowledgment number falls: all that was sent, one beyond it,
# only what was acknowledged before, a duplicate, and the two sides of RFC
# 5961's bound SND.UNA-MAX.SND.WND (the oldest acceptable, the first too old).
ACKS = (((SND_NXT, 0), 10), ((SND_UNA, 0), 3), ((SND_NXT, 1), 2), ((SND_UNA, -1), 2),
        ((SND_UNA, -TESTER_WINDOW), 1), ((SND_UNA, -TESTER_WINDOW - 1), 1),
        ((SND_NXT, FAR), 1))
EVENTS_PER_SEQUENCE = ((1, 2), (2, 3), (3, 3), (4, 2), (5, 1))
CALLS = (("close", 2), ("abort", 1))
CALL_CHANCE = 0.08
EDGE_CHANCE = 0.25
TEXT_ON_FIN_CHANCE = 0.25


def starts() -> list[tuple[str, str]]:
    """Every setup of setups.yaml, as (role, start): the rarely reached states
    (CLOSING, LAST-ACK, TIME-WAIT) as often as ESTABLISHED."""
    return sorted(load_setups())


def _pick(rng: random.Random, table):
    values, weights = zip(*table)
    return rng.choices(values, weights)[0]


def random_event(rng: random.Random) -> Event:
    if rng.random() < CALL_CHANCE:
        return Call(_pick(rng, CALLS))
    flags = tcp.parse_flags(_pick(rng, FLAGS))[0]
    length = 0
    if flags & tcp.PSH or (flags & tcp.FIN and rng.random() < TEXT_ON_FIN_CHANCE):
        length = _pick(rng, LENGTHS)
    if rng.random() < EDGE_CHANCE:
        seq_from, seq_off = RIGHT_EDGE, _pick(rng, SEQ_AT_EDGE)
    else:
        seq_from, seq_off = RCV_NXT, _pick(rng, SEQ_AT_RCV_NXT)
    ack_from, ack_off = _pick(rng, ACKS) if flags & tcp.ACK else (SND_NXT, 0)
    return Inject(flags, length, seq_from, seq_off, ack_from, ack_off)


def sequences(seed: int, prefix: str = "explore"):
    """Sequences without end, the same for the same seed."""
    rng = random.Random(seed)
    choices = starts()
    for n in itertools.count():
        role, start = rng.choice(choices)
        events = tuple(random_event(rng) for _ in range(_pick(rng, EVENTS_PER_SEQUENCE)))
        yield Sequence(f"{prefix}.s{seed}.{n:05d}", role, start, events)
