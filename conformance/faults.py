"""Faults on the lab link: loss, duplication, corruption, delay and reordering.

With faults asked for, the lab puts a *link namespace* between the tester and
the target (lab.py draws it): a bridge br0 joins l0 (the tester's side) and
l1 (the target's side), and an nftables netdev table on the ingress of both
ports applies the faults to each frame, independently in each direction:

* loss:        ``numgen random mod 10000 < k drop``;
* duplication: ``dup to`` the other port (the copy goes straight out, the
  original through the bridge);
* corruption:  the TCP checksum of a TCP segment, IPv4 or IPv6, has its
  lowest bit flipped (``@th,128,16 set @th,128,16 ^ 0x0001``).  A flipped
  bit changes the one's-complement sum by one, which is never a multiple of
  0xffff, so the receiver's check always fails and it drops the segment; a
  fixed value would be right once in 65536.  nft writes a raw payload without
  fixing the checksum up (csum_flags 0).  Nothing but TCP is corrupted: a
  lost echo or neighbour solicitation is the loss fault's business;
* delay and reordering: frames are diverted with ``fwd to`` into a veth pair
  whose far end a *delay line* reads (delayline.py), which sends each frame
  out of the port towards its destination after its delay.  With `reorder`,
  that fraction of frames is held back by `delay` (5 ms unless given) while
  the others pass straight, so later frames overtake them; `delay` alone
  holds every frame for a uniform random time from 0 to `delay`.

The netdev ingress hook runs before the bridge sees a frame, so a dropped or
diverted frame never reaches it, and one ``numgen`` per rule makes each
fault an independent draw.  Fractions are counted in ten-thousandths, fine
enough for 1 % and 0.5 % (the smallest fault is 0.01 %).

Why not the usual tools: this kernel has no netem (sch_netem is not built),
and no NFQUEUE a delay line could read from: nft's ``queue`` statement needs
CONFIG_NFT_QUEUE, which is unset, and the xtables NFQUEUE target needs
iptables (not installed) and, for frames crossing a bridge, br_netfilter,
which makes every bridge of the machine pass its frames through the IP
tables.  ``fwd to`` a veth and an AF_PACKET socket need neither.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

# The link namespace's interfaces (lab.py creates them): the bridge's ports,
# and for each port the veth end its frames to be delayed are sent to; the
# delay line reads each pair's other end (DELAY_READ).
PORTS = ("l0", "l1")                 # l0 faces the tester, l1 the target
DELAY_PORTS = ("dl0", "dl1")         # frames that came in on l0, on l1
DELAY_READ = ("dl0r", "dl1r")        # the delay line's ends of those pairs
TABLE = "tcpconf_faults"

GRANULARITY = 10_000                 # numgen's modulus: steps of 0.01 %
MAX_FRACTION = 0.5
MAX_DELAY = 1.0                      # seconds
REORDER_HOLD = 0.005                 # how long reordering holds a frame without `delay`

# The TCP checksum: 16 bits at byte 16 of the TCP header.
TCP_CHECKSUM_BITS = "@th,128,16"

FRACTIONS = ("loss", "duplicate", "corrupt", "reorder")
# Spelled on the command line as: name -> field.
NAMES = {"loss": "loss", "dup": "duplicate", "duplicate": "duplicate",
         "corrupt": "corrupt", "corruption": "corrupt", "delay": "delay",
         "reorder": "reorder"}


@dataclass(frozen=True)
class Faults:
    """What the link does to frames, in each direction on its own.

    `loss`, `duplicate`, `corrupt` and `reorder` are fractions of frames
    (0 to 0.5); `delay` is in seconds (at most 1)."""

    loss: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0

    def __post_init__(self):
        for name in FRACTIONS:
            _check_fraction(name, getattr(self, name))
        _check_delay(self.delay)

    def __bool__(self) -> bool:
        return any(getattr(self, each.name) for each in fields(self))

    @property
    def hold(self) -> float:
        """How long the delay line holds a frame: exactly this with `reorder`,
        up to this (uniformly) without; 0 when nothing is delayed."""
        if self.reorder:
            return self.delay or REORDER_HOLD
        return self.delay

    @property
    def delays_every_frame(self) -> bool:
        return bool(self.delay) and not self.reorder

    def describe(self) -> str:
        """In words, for the report: "loss 2%, duplication 2%, delay up to 10 ms"."""
        parts = []
        for name, word in (("loss", "loss"), ("duplicate", "duplication"),
                           ("corrupt", "corruption of TCP checksums")):
            if getattr(self, name):
                parts.append(f"{word} {_percent(getattr(self, name))}")
        if self.reorder:
            parts.append(f"reordering {_percent(self.reorder)} "
                         f"(held back {_milliseconds(self.hold)})")
        elif self.delay:
            parts.append(f"delay up to {_milliseconds(self.delay)}")
        return ", ".join(parts) if parts else "none"


def _check_fraction(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 <= value <= MAX_FRACTION:
        raise ValueError(f"{name}: expected a fraction of frames from 0 to "
                         f"{_percent(MAX_FRACTION)}; got {value!r}")
    if value and round(value * GRANULARITY) == 0:
        raise ValueError(f"{name}: expected at least {_percent(1 / GRANULARITY)} (the "
                         f"link counts in steps of {_percent(1 / GRANULARITY)}); got {value!r}")


def _check_delay(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 <= value <= MAX_DELAY:
        raise ValueError(f"delay: expected a duration from 0 to {_milliseconds(MAX_DELAY)}; "
                         f"got {value!r}")


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.4g} ms"


# -- the command line's spelling ------------------------------------------------

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"        # plain decimals: no nan, inf or exponents
_FRACTION = re.compile(rf"^({_NUMBER})\s*(%?)$")
_DURATION = re.compile(rf"^({_NUMBER})\s*(s|ms|us|µs)$")
_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
SPEC_HELP = ("NAME=VALUE[,NAME=VALUE...] with the names loss, dup, corrupt, reorder "
             "(fractions: 2% or 0.02, up to 50%) and delay (a duration: 10ms, 0.01s, 500us, "
             "up to 1s), e.g. 'loss=2%,dup=1%,delay=10ms'; or 'none'")


def parse_faults(text: str) -> Faults:
    """`loss=2%,dup=2%,corrupt=1%,delay=10ms,reorder=5%` as Faults; 'none' is a
    link with no faults.  ValueError names the bad part and what is expected."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"link faults: expected {SPEC_HELP}; got {text!r}")
    if text.strip().lower() == "none":
        return Faults()
    values: dict[str, float] = {}
    for part in text.split(","):
        name, value = _parse_part(part.strip())
        if name in values:
            raise ValueError(f"'{part.strip()}': {name} is given twice")
        values[name] = value
    try:
        return Faults(**values)
    except ValueError as exc:
        raise ValueError(f"link faults '{text.strip()}': {exc}") from None


def _parse_part(part: str) -> tuple[str, float]:
    name, equals, value = part.partition("=")
    name, value = name.strip().lower(), value.strip()
    if not equals or not name or not value:
        raise ValueError(f"'{part}': expected NAME=VALUE ({SPEC_HELP})")
    if name not in NAMES:
        raise ValueError(f"'{part}': unknown fault {name!r}; expected one of "
                         f"{', '.join(NAMES)}")
    field_name = NAMES[name]
    if field_name == "delay":
        return field_name, _parse_duration(part, value)
    return field_name, _parse_fraction(part, value)


def _parse_fraction(part: str, value: str) -> float:
    match = _FRACTION.match(value)
    if not match:
        raise ValueError(f"'{part}': expected a fraction of frames, as a percentage (2%) "
                         f"or a number from 0 to 0.5 (0.02)")
    number = float(match.group(1))
    fraction = number / 100 if match.group(2) else number
    if fraction > MAX_FRACTION:
        raise ValueError(f"'{part}': expected at most {_percent(MAX_FRACTION)} of frames"
                         + ("" if match.group(2) else " (a bare number is a fraction: "
                                                       "write 2% or 0.02)"))
    if fraction and round(fraction * GRANULARITY) == 0:
        raise ValueError(f"'{part}': expected at least {_percent(1 / GRANULARITY)}, the "
                         f"link's smallest step")
    return fraction


def _parse_duration(part: str, value: str) -> float:
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{part}': expected a duration with its unit: 10ms, 0.01s or 500us")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DELAY:
        raise ValueError(f"'{part}': expected at most {_milliseconds(MAX_DELAY)}")
    return seconds


# -- the nftables ruleset -------------------------------------------------------

def ruleset(faults: Faults, ports: tuple[str, str] = PORTS,
            delay_ports: tuple[str, str] = DELAY_PORTS, table: str = TABLE) -> str:
    """The nftables text (for 'nft -f') applying `faults` to the frames coming
    in on each of the two `ports`: one netdev table, an ingress chain per port.
    A frame to be delayed that came in on ports[i] is sent to delay_ports[i]."""
    chains = []
    for index, port in enumerate(ports):
        other, delay_port = ports[1 - index], delay_ports[index]
        rules = "\n".join(f"        {rule}" for rule in _rules(faults, other, delay_port))
        chains.append(f"    chain from_{port} {{\n"
                      f"        type filter hook ingress device \"{port}\" priority filter; "
                      f"policy accept;\n{rules}\n    }}")
    return f"table netdev {table} {{\n" + "\n".join(chains) + "\n}\n"


def _rules(faults: Faults, other: str, delay_port: str) -> list[str]:
    """One direction's rules, in the order a frame meets them: lost frames are
    neither corrupted nor copied; a copy carries the corruption of its
    original; what remains is delayed or passes to the bridge."""
    rules = []
    if faults.loss:
        rules.append(f"{_draw(faults.loss)} drop comment \"loss {_percent(faults.loss)}\"")
    if faults.corrupt:
        rules.append(f"meta l4proto tcp {_draw(faults.corrupt)} {TCP_CHECKSUM_BITS} set "
                     f"{TCP_CHECKSUM_BITS} ^ 0x0001 "
                     f"comment \"corrupt {_percent(faults.corrupt)} of TCP checksums\"")
    if faults.duplicate:
        # When every frame is delayed, so is the copy (with a delay of its own).
        to = delay_port if faults.delays_every_frame else other
        rules.append(f"{_draw(faults.duplicate)} dup to \"{to}\" "
                     f"comment \"duplicate {_percent(faults.duplicate)}\"")
    if faults.reorder:
        rules.append(f"{_draw(faults.reorder)} fwd to \"{delay_port}\" "
                     f"comment \"reorder {_percent(faults.reorder)}: hold back "
                     f"{_milliseconds(faults.hold)}\"")
    elif faults.delay:
        rules.append(f"fwd to \"{delay_port}\" "
                     f"comment \"delay up to {_milliseconds(faults.delay)}\"")
    return rules


def _draw(fraction: float) -> str:
    """An independent random draw true for `fraction` of frames."""
    return f"numgen random mod {GRANULARITY} < {round(fraction * GRANULARITY)}"
