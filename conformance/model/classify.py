"""Any segment as the state-event grid names segments: its kind (nine, by
the order of RFC 9293's SEGMENT ARRIVES checks) and its position against the
receive window (five, by RFC 9293's Table 6 and RFC 5961 section 3.2).

The grid writes one concrete segment per kind and position; the model meets
segments with any flags, sequence number and length, and these two
functions say which row and column of the table decides each."""

from __future__ import annotations

from dataclasses import dataclass

from .. import tcp
from ..seq import in_window, seq_add, seq_lt
from .tcb import Tcb


@dataclass(frozen=True)
class Segment:
    """A segment arriving at the target, in absolute numbers."""
    flags: int
    seq: int
    ack: int = 0
    wnd: int = 65535
    length: int = 0          # octets of data

    @property
    def span(self) -> int:
        """SEG.LEN: the sequence space it occupies, SYN and FIN counted."""
        return self.length + bool(self.flags & tcp.SYN) + bool(self.flags & tcp.FIN)

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


def kind(seg: Segment) -> str:
    """The grid's segment kind, decided in the order SEGMENT ARRIVES checks
    the bits (RFC 9293 3.10.7.4): second RST, fourth SYN, fifth the ACK bit
    (a segment without it is dropped, whatever else it carries), seventh
    text, eighth FIN.  URG and PSH change no answer: the sixth check only
    moves RCV.UP."""
    if seg.has(tcp.RST):
        return "rst-ack" if seg.has(tcp.ACK) else "rst"
    if seg.has(tcp.SYN):
        return "syn-ack" if seg.has(tcp.ACK) else "syn"
    if not seg.has(tcp.ACK):
        return "fin" if seg.has(tcp.FIN) else "data"
    if seg.has(tcp.FIN):
        return "fin-ack"
    return "data-ack" if seg.length else "ack"


def position(tcb: Tcb, seg: Segment) -> str:
    """Where the segment falls against RCV.NXT and RCV.WND.

    A RST is in the window only by its sequence number (RFC 5961 3.2: exactly
    RCV.NXT resets, elsewhere in the window draws a challenge ACK).  Any
    other segment is acceptable by RFC 9293's Table 6, whose test counts SYN
    and FIN; one that starts before RCV.NXT but reaches into the window is
    trimmed to start there (3.10.7.4), so it is at RCV.NXT."""
    nxt, wnd = tcb.rcv_nxt, tcb.rcv_wnd
    right_edge = seq_add(nxt, wnd - 1)
    if seg.has(tcp.RST):
        acceptable = in_window(seg.seq, nxt, wnd)
    elif seg.span == 0:
        acceptable = (seg.seq == nxt) if wnd == 0 else in_window(seg.seq, nxt, wnd)
    else:
        last = seq_add(seg.seq, seg.span - 1)
        acceptable = wnd > 0 and (in_window(seg.seq, nxt, wnd) or in_window(last, nxt, wnd))
    if not acceptable:
        return "left-of-window" if seq_lt(seg.seq, nxt) else "beyond-window"
    if seg.seq == nxt or seq_lt(seg.seq, nxt):
        return "at-rcv-nxt"
    return "right-edge" if seg.seq == right_edge else "in-window"
