"""The steps of a case, as data: what the tester sends, what it expects, the
silences and waits, the target application's calls, the state checks and
the alternatives (one_of).  case.py builds them from a case file; the engine
runs them.

Sequence numbers in steps are :class:`SeqExpr`: relative numbers that may
name the tester's view of the connection (``snd_nxt + 1``), evaluated when
the step runs (connection.Connection.variables).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import Any, Union

from . import tcp

EXPR_NAMES = ("snd_nxt", "snd_una", "rcv_nxt", "snd_wnd")
DEFAULT_WITHIN = 1.0  # seconds an expected segment may take unless the case says otherwise
DEFAULT_STATE_WITHIN = 0.2
# How an 'isn:' compares a new ISN with the old connection's numbers (both
# signed distances from the old ISN, so serial-number order, RFC 1982); the
# operators are tried longest first (">=" before ">").
ISN_COMPARISONS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                   ">": lambda a, b: a > b, "<": lambda a, b: a < b, "=": lambda a, b: a == b}


@dataclass(frozen=True)
class SeqExpr:
    """A relative sequence number: a constant plus named connection variables."""

    constant: int
    names: tuple[tuple[int, str], ...] = ()  # (sign, name)
    text: str = ""

    def evaluate(self, variables: dict[str, int]) -> int:
        return self.constant + sum(sign * variables[name] for sign, name in self.names)

    def __str__(self):
        return self.text or str(self.constant)


_TERM = re.compile(r"\s*([+-]?)\s*([A-Za-z_][A-Za-z0-9_]*|\d+)\s*")


def parse_seqexpr(value: Union[int, str]) -> SeqExpr:
    if isinstance(value, int):
        return SeqExpr(value, (), str(value))
    text, pos, constant, names = value.strip(), 0, 0, []
    if not text:
        raise ValueError(f"expected a number or {', '.join(EXPR_NAMES)} joined by + and -")
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or match.end() == pos or (pos and not match.group(1)):
            raise ValueError(f"expected a number or {', '.join(EXPR_NAMES)} joined by + and -")
        sign = -1 if match.group(1) == "-" else 1
        term = match.group(2)
        if term.isdigit():
            constant += sign * int(term)
        elif term in EXPR_NAMES:
            names.append((sign, term))
        else:
            term = term if len(term) <= 40 else term[:40] + "..."
            raise ValueError(f"unknown name {term!r}; expected one of {', '.join(EXPR_NAMES)}")
        pos = match.end()
    return SeqExpr(constant, tuple(names), text)


# The longest time a step may take.  The cases' longest is 170 s (a TIME-WAIT
# of 2MSL is 60 s on Linux); ten minutes is a typo, and a sweep must not hang on it.
MAX_DURATION = 600.0
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|min|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def parse_duration(value, limit: float = MAX_DURATION) -> float:
    """Seconds from 300ms, 1.5s, 250us, 4min, 2h or a number of seconds;
    ValueError for anything else, NaN, infinity, a negative time or one over
    `limit` (a time the tester waits: MAX_DURATION; a time it only reads, such
    as a tracker's timeout, may be longer)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a duration such as 300ms, 1.5s or a number of seconds; "
                         f"got {value!r}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"expected a duration such as 300ms, 1.5s or a number of "
                             f"seconds; got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(value)
    if not 0 <= seconds <= limit:      # also false for NaN
        raise ValueError(f"expected a duration from 0 to {limit:g}s; got {value!r}")
    return seconds


DEFAULT_CONNECTION = "a"


@dataclass
class Step:
    line: int
    note: str | None
    requirement: str | None
    # The connection the step is about, when a case opens several ("a" unless named).
    conn: str = field(default=DEFAULT_CONNECTION, kw_only=True)


@dataclass
class Send(Step):
    flags: int
    seq: SeqExpr | None = None
    ack: SeqExpr | None = None
    win: int = 65535
    urg: int = 0
    payload: bytes = b""
    # A payload length known only when the segment is sent (len: snd_wnd).
    length: SeqExpr | None = None
    options: list = field(default_factory=list)
    raw_options: bytes = b""
    bad_checksum: bool = False

    def describe(self) -> str:
        length = self.length if self.length is not None else len(self.payload) or None
        return tcp.format_segment(self.flags, seq=self.seq, ack=self.ack,
                                  win=self.win if self.win != 65535 else None, length=length,
                                  urg=self.urg, options=self.options,
                                  raw_options=self.raw_options, bad_checksum=self.bad_checksum)


@dataclass
class Expect(Step):
    flags: int | None = None
    optional_flags: int = 0
    seq: SeqExpr | None = None
    ack: SeqExpr | None = None
    win: int | None = None
    length: int | None = None
    data: bytes | None = None
    options: dict = field(default_factory=dict)  # name -> int | 'present' | 'absent'
    within: float = DEFAULT_WITHIN
    after: float = 0.0
    retransmission: bool = False
    # For a SYN that starts a new incarnation (a reopened TIME-WAIT): how its
    # sequence number compares with the old connection's numbers, measured
    # from the old connection's ISN, as (operator, expression).
    isn: tuple[str, SeqExpr] | None = None
    # An option the RFCs leave optional (timestamp, sack_ok, wscale): when the
    # answer comes without it, the target does not implement it, and the case,
    # which checks how it is used, does not apply.
    requires_option: str | None = None

    def describe(self) -> str:
        parts = []
        if self.flags is not None:
            text = tcp.format_flags(self.flags)
            if self.optional_flags:
                text += "".join(f"+({tcp.format_flags(1 << i)})"
                                for i in range(8) if self.optional_flags & (1 << i))
            parts.append(text)
        for name in ("seq", "ack", "win"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.length is not None:
            parts.append(f"len={self.length}")
        if self.data is not None:
            parts.append(f"data={self.data.decode(errors='replace')!r}")
        for name, value in self.options.items():
            parts.append(f"{name}={value}")
        if self.isn is not None:
            parts.append(f"isn {self.isn[0]} {self.isn[1]} (of the old connection)")
        if self.retransmission:
            parts.append("(a retransmission)")
        timing = f"within {fmt_duration(self.within)}"
        if self.after:
            timing = f"after {fmt_duration(self.after)}, " + timing
        return " ".join(parts) + f", {timing}" if parts else f"any segment, {timing}"


@dataclass
class Silence(Step):
    duration: float


@dataclass
class Wait(Step):
    duration: float


@dataclass
class App(Step):
    op: str                      # listen, accept, connect, close, shutdown, abort, send, recv, setsockopt
    argument: Any = None         # text for send/recv, options for setsockopt
    timeout: float = 2.0
    expect_error: str | None = None  # errno name(s) a call must fail with ("A or B")

    def fails_as_expected(self, error: str) -> bool:
        return self.expect_error is not None and error in self.expect_error.split(" or ")

    def call(self) -> str:
        """The call as the application makes it, without the outcome the step
        expects (the ladder writes the outcome it got after it)."""
        if self.op == "send":
            return f"send {self.argument!r}"
        if self.op == "setsockopt":
            return "setsockopt " + ", ".join(f"{k}={v}" for k, v in self.argument.items())
        return self.op

    def describe(self) -> str:
        """The step as the case writes it: the call and the outcome it expects."""
        if self.op == "recv":
            return f"recv -> {self.argument}" if self.argument in ("EOF",) or is_errno(self.argument) \
                else f"recv {self.argument!r}"
        return self.call() + (f" -> {self.expect_error}" if self.expect_error else "")


@dataclass
class StateCheck(Step):
    state: str
    within: float = DEFAULT_STATE_WITHIN


# How long a firewall step waits for the segment at the end host's side, and
# for the tracker's state to settle.  A veth and a router in one machine take
# well under a millisecond; a segment that has not crossed by then was dropped.
DEFAULT_CROSSING_WITHIN = 0.2
CROSSING_FATES = ("drops", "forwards", "translates")


@dataclass
class FirewallCheck(Step):
    """What the middlebox did with the tester's last segment on the step's
    connection (`fate`: drops, forwards, translates), the state its
    connection tracking holds for the connection (`tracks`: a state, or
    none), or whether a NAT maps the connection to the same outside port as
    another of the case's (`same_mapping_as`: that connection's name)."""

    fate: str | None = None
    tracks: str | None = None
    same_mapping_as: str | None = None
    within: float = DEFAULT_CROSSING_WITHIN
    # The tracker keeps the entry at least this long without a packet (its
    # idle timeout, read from the time the table says is left).
    idle_timeout_at_least: float | None = None

    def describe(self) -> str:
        if self.fate:
            return f"the firewall {self.fate} it"
        if self.same_mapping_as:
            return (f"the NAT maps it to the outside port of connection "
                    f"{self.same_mapping_as}")
        if self.tracks == "none":
            return "the firewall tracks no connection"
        text = f"the firewall tracks it as {self.tracks}"
        if self.idle_timeout_at_least is not None:
            text += f", idle for at least {self.idle_timeout_at_least:g} s before it forgets it"
        return text


# The ICMP errors a tester can send about a connection: (IPv4 type, code,
# IPv6 type, code, words).  Administratively prohibited is what RFC 6092
# REC-34 names; a port unreachable is a hard error (RFC 1122 4.2.3.9).
ICMP_ERRORS = {
    "admin-prohibited": (3, 13, 1, 1, "destination unreachable, administratively prohibited"),
    "port-unreachable": (3, 3, 1, 4, "destination unreachable, port unreachable"),
}


@dataclass
class SendIcmp(Step):
    """An ICMP (ICMPv6) error from the tester about the step's connection,
    quoting the last segment the target sent on it, as the tester got it."""

    error: str = "admin-prohibited"

    def describe(self) -> str:
        return f"ICMP {ICMP_ERRORS[self.error][4]}, quoting the target's last segment"


@dataclass
class Alternative:
    label: str
    conforms: bool
    note: str | None
    steps: list
    # The sentence that allows this answer or, with conforms false, the one
    # it breaks: a deviation along this alternative is reported at its level.
    requirement: str | None = None


@dataclass
class OneOf(Step):
    alternatives: list[Alternative]


def fmt_duration(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def is_errno(text) -> bool:
    return isinstance(text, str) and text in errno.errorcode.values()


def pattern(length: int) -> bytes:
    """A recognisable payload of the given length."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return (alphabet * (length // len(alphabet) + 1))[:length]
