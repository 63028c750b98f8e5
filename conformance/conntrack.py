"""A stateful firewall's own view of a flow: Linux connection tracking.

The kernel lists the connections it tracks, per network namespace, in
/proc/net/nf_conntrack (CONFIG_NF_CONNTRACK_PROCFS); reading it from a thread
inside the firewall's namespace shows that namespace's table.  One line per
connection:

    ipv4     2 tcp      6 117 SYN_SENT src=198.18.0.1 dst=198.18.1.2 sport=40001
        dport=10001 [UNREPLIED] src=198.18.1.2 dst=198.18.0.1 sport=10001 dport=40001
        mark=0 zone=0 use=2

the address family, the protocol, the seconds left before the entry expires,
the TCP tracker's state, the tuple of the original direction (as the first
packet came), [UNREPLIED] until a packet came the other way, the tuple a
reply must carry (translated, behind NAT), and [ASSURED] once the connection
is established enough not to be dropped early when the table fills.

The tracker's states are its own, not RFC 9293's (nf_conntrack_proto_tcp.c):
one entry tracks both ends, so it has SYN_SENT (a SYN seen), SYN_RECV (the
SYN-ACK seen), ESTABLISHED (the final ACK seen), FIN_WAIT, CLOSE_WAIT,
LAST_ACK, TIME_WAIT, CLOSE (after a RST) and SYN_SENT2 (a simultaneous open).

Parsing is pure (:func:`parse`); :func:`read` enters the namespace.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import netns

# The TCP tracker's states, in the order a connection meets them.
STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
          "TIME_WAIT", "CLOSE", "SYN_SENT2")

TABLE = "/proc/thread-self/net/nf_conntrack"


class ConntrackError(Exception):
    """The table cannot be read or makes no sense; the message says why."""


@dataclass(frozen=True)
class Endpoints:
    """A tuple as conntrack writes it: who sent, to whom, from and to which port."""

    src: str
    dst: str
    sport: int
    dport: int


@dataclass(frozen=True)
class Tracked:
    """One TCP connection in the tracker's table."""

    family: str              # "ipv4" or "ipv6"
    state: str               # one of STATES
    timeout: int             # seconds left before the entry expires
    original: Endpoints      # as the first packet came
    reply: Endpoints         # as a reply must come (translated, behind NAT)
    unreplied: bool          # nothing seen the other way yet
    assured: bool            # established enough to be kept when the table fills

    def carries(self, src: str, sport: int, dst: str, dport: int) -> bool:
        """Whether a packet from src:sport to dst:dport belongs to this entry,
        in either direction."""
        seen = (_address(src), sport, _address(dst), dport)
        return seen in ((self.original.src, self.original.sport,
                         self.original.dst, self.original.dport),
                        (self.reply.src, self.reply.sport, self.reply.dst, self.reply.dport))

    @property
    def translated(self) -> bool:
        """Whether the firewall rewrites the flow's addresses or ports (NAT):
        a reply does not simply swap the original's ends."""
        o, r = self.original, self.reply
        return (r.src, r.sport, r.dst, r.dport) != (o.dst, o.dport, o.src, o.sport)


def _address(text: str) -> str:
    """An address in one spelling, so that 2001:2::1 and 2001:0002::0001 agree."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def parse(text: str) -> list[Tracked]:
    """The TCP entries of an nf_conntrack table (other protocols left out)."""
    return [entry for number, line in enumerate(text.splitlines(), 1)
            if (entry := _entry(line, number)) is not None]


def _entry(line: str, number: int) -> Tracked | None:
    words = line.split()
    if len(words) < 6 or words[2] != "tcp":
        return None
    try:
        family = {"ipv4": "ipv4", "ipv6": "ipv6"}[words[0]]
        timeout, state = int(words[4]), words[5]
    except (KeyError, ValueError):
        raise ConntrackError(f"nf_conntrack line {number}: expected 'ipv4|ipv6 N tcp 6 "
                             f"SECONDS STATE ...'; got {line[:120]!r}") from None
    if state not in STATES:
        raise ConntrackError(f"nf_conntrack line {number}: unknown TCP state {state!r}")
    tuples, current, flags = [], {}, set()
    for word in words[6:]:
        if word.startswith("[") and word.endswith("]"):
            flags.add(word[1:-1])
            continue
        key, equals, value = word.partition("=")
        if not equals or key not in ("src", "dst", "sport", "dport"):
            continue
        if key in current:                 # the reply tuple begins
            tuples.append(current)
            current = {}
        current[key] = value
    tuples.append(current)
    try:
        original, reply = (Endpoints(_address(t["src"]), _address(t["dst"]), int(t["sport"]),
                                     int(t["dport"])) for t in tuples[:2])
    except (KeyError, ValueError):
        raise ConntrackError(f"nf_conntrack line {number}: expected two tuples of src, dst, "
                             f"sport and dport; got {line[:120]!r}") from None
    return Tracked(family, state, timeout, original, reply, "UNREPLIED" in flags,
                   "ASSURED" in flags)


def read(namespace: str | None) -> list[Tracked]:
    """The TCP entries tracked in network namespace `namespace`."""
    try:
        with netns.entered(namespace):
            with open(TABLE, encoding="ascii", errors="replace") as table:
                text = table.read()
    except FileNotFoundError:
        raise ConntrackError(f"no {TABLE} in {namespace}: the kernel lacks "
                             f"CONFIG_NF_CONNTRACK_PROCFS, or nothing loaded connection "
                             f"tracking there") from None
    except OSError as exc:
        raise ConntrackError(f"cannot read the connection tracking table of {namespace}: "
                             f"{exc}") from None
    return parse(text)


def entry_for(entries: list[Tracked], src: str, sport: int, dst: str,
              dport: int) -> Tracked | None:
    """The entry tracking the flow from src:sport to dst:dport, if any."""
    return next((e for e in entries if e.carries(src, sport, dst, dport)), None)
