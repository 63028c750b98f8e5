"""The tester's side of one TCP connection: RFC 9293's send and receive
variables, kept from the segments the tester sends and the answers it takes.

Pure bookkeeping, no I/O: the engine tells a :class:`Connection` what it sent
(:meth:`Connection.sent`) and which of the target's segments it accepted as an
answer (:meth:`Connection.consume`); a case's expressions read
:meth:`Connection.variables`.  All numbers are absolute; variables are
relative to each side's ISN, as a ladder shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tcp
from .seq import seq_add, seq_diff, seq_gt, seq_le


@dataclass
class Connection:
    """The tester's side of the connection, in absolute sequence numbers."""

    iss: int
    snd_nxt: int
    snd_una: int
    irs: int | None = None
    rcv_nxt: int | None = None
    snd_wnd: int = 0
    peer_max: int | None = None      # highest sequence number the target has sent + 1
    our_wscale: int | None = None
    peer_wscale: int | None = None
    # True once the target has acknowledged our SYN, until either side resets:
    # a SYN sent while synchronized is a probe (RFC 5961 4.2), not a new ISN.
    synchronized: bool = False

    @classmethod
    def opening(cls, iss: int) -> "Connection":
        """A connection before its first segment: SND.NXT = SND.UNA = ISS."""
        return cls(iss=iss, snd_nxt=iss, snd_una=iss)

    def variables(self) -> dict[str, int]:
        """The names a case may use in seq/ack, relative to each side's ISN."""
        return {
            "snd_nxt": seq_diff(self.snd_nxt, self.iss),
            "snd_una": seq_diff(self.snd_una, self.iss),
            "rcv_nxt": seq_diff(self.rcv_nxt, self.irs or 0) if self.rcv_nxt is not None else 0,
            "snd_wnd": self.snd_wnd,
        }

    # -- what the tester sends -----------------------------------------------

    def send_numbers(self, seq_rel: int | None, ack_rel: int | None, flags: int) -> tuple[int, int]:
        """The absolute seq and ack of a segment a case writes with relative
        numbers (None: the defaults, seq SND.NXT and, with ACK, ack RCV.NXT)."""
        seq = seq_add(self.iss, seq_rel) if seq_rel is not None else self.snd_nxt
        if ack_rel is not None:
            ack = seq_add(self.irs or 0, ack_rel)
        elif flags & tcp.ACK:
            ack = self.rcv_nxt if self.rcv_nxt is not None else 0
        else:
            ack = 0
        return seq, ack

    def sent(self, seq: int, flags: int, payload_len: int, options=(),
             bad_checksum: bool = False) -> None:
        """Account for a segment the tester sent."""
        if bad_checksum:
            return   # the target must discard it (MUST-3): it advances nothing
        if flags & tcp.RST:
            self.synchronized = False  # we abort: our next SYN opens anew
        elif flags & tcp.SYN and not self.synchronized:
            self.snd_una = seq
            self.snd_nxt = seq_add(seq, 1 + payload_len + bool(flags & tcp.FIN))
            self.our_wscale = dict(options).get("wscale")
        elif not flags & tcp.SYN:
            # SND.NXT only moves forward, and only for a segment that starts
            # within what we have sent: a retransmitted FIN leaves it where it
            # is, a probe beyond the window does not move it at all.
            end = seq_add(seq, payload_len + bool(flags & tcp.FIN))
            if seq_le(seq, self.snd_nxt) and seq_gt(end, self.snd_nxt):
                self.snd_nxt = end

    # -- what the target sends -----------------------------------------------

    def is_retransmission(self, seg: tcp.Segment) -> bool:
        """True when the segment only repeats sequence space already sent
        (RFC 9293 3.8.1).  A segment without SYN, FIN or data occupies no
        sequence space and is never a retransmission: a repeated ACK is a new
        answer."""
        if seg.seg_len == 0:
            return False
        if seg.has(tcp.SYN):
            return self.irs is not None and seg.seq == self.irs
        return self.peer_max is not None and seq_le(seq_add(seg.seq, seg.seg_len), self.peer_max)

    def consume(self, seg: tcp.Segment) -> None:
        """Update the tester's view with a segment the case accepted as the answer."""
        if seg.has(tcp.SYN):
            self.irs = seg.seq
            self.rcv_nxt = seq_add(seg.seq, seg.seg_len)
            self.peer_wscale = seg.option("wscale")
        elif self.rcv_nxt is not None and seg.seq == self.rcv_nxt:
            self.rcv_nxt = seq_add(seg.seq, seg.seg_len)
        end = seq_add(seg.seq, seg.seg_len)
        if self.peer_max is None or seq_gt(end, self.peer_max) or seg.has(tcp.SYN):
            self.peer_max = end
        if seg.has(tcp.ACK) and seq_gt(seg.ack, self.snd_una) and seq_le(seg.ack, self.snd_nxt):
            self.snd_una = seg.ack
            self.synchronized = self.synchronized or self.irs is not None
        if seg.has(tcp.RST):
            self.synchronized = False
        scaled = self.our_wscale is not None and self.peer_wscale is not None
        self.snd_wnd = seg.window << (self.peer_wscale if scaled and not seg.has(tcp.SYN) else 0)
