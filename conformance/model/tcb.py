"""The transmission control block: RFC 9293 section 3.3.1's variables, as
the model keeps them (absolute sequence numbers, modulo 2**32)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..seq import seq_add

# The states in which both sides' ISNs are known (RFC 9293 3.10.7.4's
# "Otherwise" branch of SEGMENT ARRIVES).
SYNCHRONIZED = ("SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT",
                "CLOSING", "LAST-ACK", "TIME-WAIT")


@dataclass(frozen=True)
class Tcb:
    state: str
    iss: int = 0
    irs: int = 0
    snd_una: int = 0
    snd_nxt: int = 0
    snd_wnd: int = 65535
    rcv_nxt: int = 0
    rcv_wnd: int = 64240
    # MAX.SND.WND (RFC 5961 5.2): the largest window the peer has offered.
    max_snd_wnd: int = 65535
    # Challenge ACKs sent so far (RFC 5961 section 7 lets a stack throttle
    # those that follow: not an RFC 9293 variable, but the model's memory of
    # what allows a later one to be missing).
    challenge_acks: int = 0
    # SYN-RECEIVED reached from SYN-SENT (a simultaneous open): there RFC
    # 9293 3.10.7.4 treats a RST and a SYN as the active OPEN's, not as a
    # passive OPEN's return to LISTEN.
    active_open: bool = False

    def moved(self, **changes) -> "Tcb":
        return replace(self, **changes)

    def received(self, octets: int) -> "Tcb":
        """RCV.NXT advanced over `octets` of sequence space taken in order."""
        return replace(self, rcv_nxt=seq_add(self.rcv_nxt, octets))
