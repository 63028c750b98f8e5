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

    def moved(self, **changes) -> "Tcb":
        return replace(self, **changes)

    def received(self, octets: int) -> "Tcb":
        """RCV.NXT advanced over `octets` of sequence space taken in order."""
        return replace(self, rcv_nxt=seq_add(self.rcv_nxt, octets))


# Where a passive opener's connection stands in each synchronized state, with
# the ISNs at 0 and nothing sent but SYN and FIN: the numbers the suite's
# setups (conformance/setups.yaml) reach, in the target's own terms.
#                state          SND.UNA SND.NXT RCV.NXT
_AFTER_SETUP = {"SYN-RECEIVED": (0,      1,      1),
                "ESTABLISHED":  (1,      1,      1),
                "CLOSE-WAIT":   (1,      1,      2),
                "LAST-ACK":     (1,      2,      2),
                "FIN-WAIT-1":   (1,      2,      1),
                "CLOSING":      (1,      2,      2),
                "FIN-WAIT-2":   (2,      2,      1),
                "TIME-WAIT":    (2,      2,      2)}


def after_setup(state: str, iss: int = 0, irs: int = 0, rcv_wnd: int = 64240) -> Tcb:
    """The TCB of a listener brought to `state` by the suite's setup."""
    una, nxt, rcv = _AFTER_SETUP[state]
    return Tcb(state, iss=iss, irs=irs, snd_una=seq_add(iss, una), snd_nxt=seq_add(iss, nxt),
               rcv_nxt=seq_add(irs, rcv), rcv_wnd=rcv_wnd)


def setup_tcb(role: str, start: str) -> Tcb | None:
    """The TCB a case's setup reaches (setups.yaml), or None where the model
    has none: a listener in LISTEN or a synchronized state, a client in
    CLOSED (no socket) or SYN-SENT (its SYN sent, ISS 0)."""
    if role == "listener":
        if start == "LISTEN":
            return Tcb("LISTEN")
        return after_setup(start) if start in _AFTER_SETUP else None
    if start == "CLOSED":
        return Tcb("CLOSED")
    if start == "SYN-SENT":
        return Tcb("SYN-SENT", snd_una=0, snd_nxt=1)
    return None
