"""SEGMENT ARRIVES where no connection is synchronized: CLOSED, LISTEN and
SYN-SENT (RFC 9293 3.10.7.1 to 3.10.7.3), each an ordered list of checks,
the first that holds deciding, as the RFC writes them.

A check's answer may hold a number the target chooses (a new ISS): it is
None there; the TCB that follows holds the ISS the TCB was given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import tcp
from ..seq import seq_add, seq_gt, seq_le
from .classify import Segment
from .tcb import Tcb


@dataclass(frozen=True)
class Check:
    when: Callable[[Tcb, Segment], bool]
    requirement: str | None          # None: no requirement in the catalogue yet
    answer: Callable[[Tcb, Segment], tuple]     # (kind, flags, seq, ack) or ("nothing",)
    then: Callable[[Tcb, Segment], Tcb]         # the TCB after


def _bad_ack(tcb: Tcb, seg: Segment) -> bool:
    """SYN-SENT: an ACK that does not acknowledge our SYN (SEG.ACK =< ISS or
    SEG.ACK > SND.NXT)."""
    return seg.has(tcp.ACK) and (seq_le(seg.ack, tcb.iss) or seq_gt(seg.ack, tcb.snd_nxt))


def _syn_received(tcb: Tcb, seg: Segment) -> Tcb:
    """LISTEN -> SYN-RECEIVED: IRS is SEG.SEQ, RCV.NXT SEG.SEQ+1, and the ISS
    the TCB holds is the one it sends (the answer leaves it open: a judge
    reads the target's own from its SYN-ACK)."""
    return tcb.moved(state="SYN-RECEIVED", irs=seg.seq, rcv_nxt=seq_add(seg.seq, 1),
                     snd_una=tcb.iss, snd_nxt=seq_add(tcb.iss, 1), snd_wnd=seg.wnd,
                     max_snd_wnd=seg.wnd)


def always(tcb, seg) -> bool:
    return True


def same(tcb, seg) -> Tcb:
    return tcb


NOTHING = lambda tcb, seg: ("nothing",)                               # noqa: E731
RESET_AT_ACK = lambda tcb, seg: ("reset", tcp.RST, seg.ack, None)     # noqa: E731

CHECKS: dict[str, tuple[Check, ...]] = {
    # 3.10.7.1: the connection does not exist.
    "CLOSED": (
        Check(lambda t, s: s.has(tcp.RST), "RFC9293-3.10.7.1-closed-rst", NOTHING, same),
        Check(lambda t, s: not s.has(tcp.ACK), "RFC9293-3.10.7.1-closed-no-ack",
              lambda t, s: ("reset", tcp.RST | tcp.ACK, 0, seq_add(s.seq, s.span)), same),
        Check(always, "RFC9293-3.10.7.1-closed-ack", RESET_AT_ACK, same),
    ),
    # 3.10.7.2: first RST, second ACK, third SYN, fourth anything else.
    "LISTEN": (
        Check(lambda t, s: s.has(tcp.RST), "RFC9293-3.10.7.2-listen-rst", NOTHING, same),
        Check(lambda t, s: s.has(tcp.ACK), "RFC9293-3.10.7.2-listen-ack", RESET_AT_ACK, same),
        # Text on the SYN is queued: the SYN-ACK acknowledges the SYN alone.
        Check(lambda t, s: s.has(tcp.SYN) and s.length > 0, "RFC9293-3.10.7.2-listen-syn-text",
              lambda t, s: ("syn-ack", tcp.SYN | tcp.ACK, None, seq_add(s.seq, 1)),
              lambda t, s: _syn_received(t, s)),
        Check(lambda t, s: s.has(tcp.SYN), "RFC9293-3.10.7.2-listen-syn",
              lambda t, s: ("syn-ack", tcp.SYN | tcp.ACK, None, seq_add(s.seq, 1)),
              lambda t, s: _syn_received(t, s)),
        Check(always, "RFC9293-3.10.7.2-listen-other", NOTHING, same),
    ),
    # 3.10.7.3: first the ACK field, second RST, fourth SYN, fifth neither.
    "SYN-SENT": (
        Check(lambda t, s: _bad_ack(t, s) and s.has(tcp.RST), "RFC9293-3.10.7.3-syn-sent-bad-ack",
              NOTHING, same),
        Check(_bad_ack, "RFC9293-3.10.7.3-syn-sent-bad-ack", RESET_AT_ACK, same),
        Check(lambda t, s: s.has(tcp.RST) and s.has(tcp.ACK), "RFC9293-3.10.7.3-syn-sent-rst-ack",
              NOTHING, lambda t, s: t.moved(state="CLOSED")),
        Check(lambda t, s: s.has(tcp.RST), "RFC9293-3.10.7.3-syn-sent-rst-no-ack", NOTHING, same),
        Check(lambda t, s: s.has(tcp.SYN) and s.has(tcp.ACK), "RFC9293-3.10.7.3-syn-sent-synack",
              lambda t, s: ("ack", tcp.ACK, s.ack, seq_add(s.seq, 1)),
              lambda t, s: t.moved(state="ESTABLISHED", irs=s.seq, rcv_nxt=seq_add(s.seq, 1),
                                   snd_una=s.ack, snd_wnd=s.wnd,
                                   max_snd_wnd=max(t.max_snd_wnd, s.wnd))),
        # A SYN that does not acknowledge ours: a simultaneous open.  The
        # SYN,ACK repeats our SYN's <SEQ=ISS>; SND.UNA stays at ISS.
        Check(lambda t, s: s.has(tcp.SYN), "RFC9293-3.10.7.3-syn-sent-syn",
              lambda t, s: ("syn-ack", tcp.SYN | tcp.ACK, t.iss, seq_add(s.seq, 1)),
              lambda t, s: t.moved(state="SYN-RECEIVED", irs=s.seq, rcv_nxt=seq_add(s.seq, 1),
                                   snd_wnd=s.wnd, max_snd_wnd=max(t.max_snd_wnd, s.wnd),
                                   active_open=True)),
        Check(always, "RFC9293-3.10.7.3-syn-sent-neither", NOTHING, same),
    ),
}
