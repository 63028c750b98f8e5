"""TCP vocabulary shared by every part of the suite: flags, states, segments.

Names follow RFC 9293: states are written as the RFC writes them
(``SYN-RECEIVED``, ``FIN-WAIT-2``), flags as engineers write them on a ladder
diagram (``SYN+ACK``), and a segment knows its sequence-space length
(SEG.LEN counts SYN and FIN, section 3.4).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

# --- states --------------------------------------------------------------

LISTEN = "LISTEN"
SYN_SENT = "SYN-SENT"
SYN_RECEIVED = "SYN-RECEIVED"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT_1 = "FIN-WAIT-1"
FIN_WAIT_2 = "FIN-WAIT-2"
CLOSE_WAIT = "CLOSE-WAIT"
CLOSING = "CLOSING"
LAST_ACK = "LAST-ACK"
TIME_WAIT = "TIME-WAIT"
CLOSED = "CLOSED"

STATES = (
    LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,
    CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT, CLOSED,
)

# --- flags ---------------------------------------------------------------

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = (1 << i for i in range(8))
FLAG_NAMES = {"FIN": FIN, "SYN": SYN, "RST": RST, "PSH": PSH,
              "ACK": ACK, "URG": URG, "ECE": ECE, "CWR": CWR}
# The order engineers say them in: "SYN+ACK", "FIN+ACK", "RST+ACK".
_SPOKEN_ORDER = ("SYN", "FIN", "RST", "PSH", "URG", "ECE", "CWR", "ACK")
# tcpdump's letters; "." is ACK, as in "S." for a SYN-ACK.
_TCPDUMP = {"S": SYN, "F": FIN, "R": RST, "P": PSH, "U": URG,
            "E": ECE, "W": CWR, ".": ACK}


class FlagsError(ValueError):
    """A flags string that is neither names nor tcpdump letters."""


def format_option(name: str, value) -> str:
    """An option as a ladder writes it: "mss 1460", "sack_ok", "timestamp 100/0",
    an unknown kind's octets in hex: "kind-30 0102"."""
    if value is True or value is None:
        return name
    if isinstance(value, tuple):
        return f"{name} {'/'.join(map(str, value))}"
    if isinstance(value, (bytes, bytearray)):
        return f"{name} {bytes(value).hex()}"
    return f"{name} {value}"


def format_flags(bits: int) -> str:
    """``SYN+ACK``; ``none`` for a segment with no flags at all."""
    return "+".join(flag_names(bits)) or "none"


def flag_names(bits: int) -> list[str]:
    """The flags set in `bits`, in the order engineers say them."""
    return [n for n in _SPOKEN_ORDER if bits & FLAG_NAMES[n]]


def flag_bits(names: list[str]) -> int:
    """The inverse of flag_names (ValueError for a name that is not a flag)."""
    unknown = [n for n in names if n not in FLAG_NAMES]
    if unknown:
        raise ValueError(f"not a TCP flag: {', '.join(map(repr, unknown))}")
    return sum(FLAG_NAMES[n] for n in set(names))


def format_segment(flags: int, *, seq=None, ack=None, win=None, length=None, urg=0,
                   options=(), raw_options: bytes = b"", bad_checksum: bool = False) -> str:
    """A segment as a ladder writes it: "SYN+ACK seq=0 ack=1 win=64240 <mss 1460>".
    Numbers may be expressions (a case's send step); a field given as None
    is left out."""
    parts = [format_flags(flags)]
    parts += [f"{name}={value}" for name, value in
              (("seq", seq), ("ack", ack), ("win", win), ("len", length))
              if value is not None]
    if urg:
        parts.append(f"urg={urg}")
    if options:
        parts.append("<" + ",".join(format_option(name, value) for name, value in options)
                     + ">")
    if raw_options:
        parts.append(f"raw options {raw_options.hex()}")
    if bad_checksum:
        parts.append("(bad checksum)")
    return " ".join(parts)


def parse_flags(text: str) -> tuple[int, int]:
    """Parse flags as written in a case file.

    Accepts names joined by ``+``, ``|``, ``,`` or spaces (``SYN+ACK``), a single
    name (``RST``), ``none``, or tcpdump letters (``S.``, ``R.``, ``FP.``).
    A name in parentheses is optional (``ACK+(PSH)``; ``PSH?`` means the same
    where YAML allows it): returned as the second value, a mask of flags whose
    presence is not checked.
    """
    text = str(text).strip()
    if text.lower() in ("none", "0", ""):
        return 0, 0
    words = [w for w in re.split(r"[+|,\s]+", text) if w]
    if not words:                   # only separators: "+", ", "
        raise FlagsError(f"no flag in {text!r}")
    if len(words) > 1 or _flag_word(words[0])[0] in FLAG_NAMES:
        required = optional = 0
        for word in words:
            name, is_optional = _flag_word(word)
            if name not in FLAG_NAMES:
                raise FlagsError(f"unknown flag {word!r}")
            if is_optional:
                optional |= FLAG_NAMES[name]
            else:
                required |= FLAG_NAMES[name]
        return required, optional
    if all(c in _TCPDUMP for c in text):
        bits = 0
        for c in text:
            bits |= _TCPDUMP[c]
        return bits, 0
    raise FlagsError(f"unknown flag {text!r}")


def _flag_word(word: str) -> tuple[str, bool]:
    if word.startswith("(") and word.endswith(")"):
        return word[1:-1].upper(), True
    if word.endswith("?"):
        return word[:-1].upper(), True
    return word.upper(), False


# --- options -------------------------------------------------------------

# Options the case language names; anything else is written raw by kind.
OPTION_NAMES = ("mss", "wscale", "sack_ok", "timestamp")


# --- segments ------------------------------------------------------------

OUT = "out"  # tester -> target
IN = "in"    # target -> tester


@dataclass
class Segment:
    """One TCP segment as seen on the wire, with the kernel's capture time."""

    direction: str
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    urgptr: int = 0
    options: list = field(default_factory=list)  # [(name, value)] in wire order
    payload: bytes = b""
    checksum_ok: bool = True
    frame: bytes = b""

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one each for SYN and FIN (3.4)."""
        return len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def option(self, name: str):
        for opt_name, value in self.options:
            if opt_name == name:
                return value
        return None

    def has_option(self, name: str) -> bool:
        return any(opt_name == name for opt_name, _ in self.options)


# --- address families ------------------------------------------------------

IPV4, IPV6 = "ipv4", "ipv6"
FAMILIES = (IPV4, IPV6)


# --- options -----------------------------------------------------------------

# TCP option kinds (RFC 9293 3.1, RFC 7323, RFC 2018).
EOL, NOP, MSS, WSCALE, SACK_OK, SACK, TIMESTAMP = 0, 1, 2, 3, 4, 5, 8
OPTION_KINDS = {MSS: "mss", WSCALE: "wscale", SACK_OK: "sack_ok", SACK: "sack",
                 TIMESTAMP: "timestamp"}
MAX_OPTION_BYTES = 40  # data offset is 4 bits of 32-bit words: 60 - 20


def encode_options(options=(), raw: bytes = b"") -> bytes:
    """The option bytes of a segment: the named options in the order given,
    then `raw` as written (for unknown, unaligned or malformed options), then
    EOL padding to a multiple of four octets (RFC 9293 3.1)."""
    out = b""
    for name, value in options:
        if name == "mss":
            out += struct.pack("!BBH", MSS, 4, value)
        elif name == "wscale":
            out += struct.pack("!BBB", WSCALE, 3, value)
        elif name == "sack_ok":
            out += struct.pack("!BB", SACK_OK, 2)
        elif name == "timestamp":
            out += struct.pack("!BBII", TIMESTAMP, 10, *value)
        else:
            raise ValueError(f"unknown option {name!r}")
    out += raw
    return out + b"\x00" * (-len(out) % 4)
