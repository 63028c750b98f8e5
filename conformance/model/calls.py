"""The application's calls (RFC 9293 3.10.1, 3.10.4 and 3.10.5; section 3.6
for CLOSE): OPEN (listen, connect, accept), CLOSE and ABORT.  What each
sends, and the state that follows."""

from __future__ import annotations

from .. import tcp
from ..seq import seq_add
from .arrives import Answer, Outcome, Unmodelled, _outcome
from .tcb import Tcb

# CLOSE (3.10.4): "queue this until all preceding SENDs have been segmentized,
# then form a FIN segment and send it" -- ESTABLISHED to FIN-WAIT-1, and
# CLOSE-WAIT to LAST-ACK.
_CLOSE = {"ESTABLISHED": ("FIN-WAIT-1", "RFC9293-3.6-active-close"),
          "CLOSE-WAIT": ("LAST-ACK", "RFC9293-3.6-half-close")}


# The states in which ABORT sends a reset (3.10.5); in LISTEN and SYN-SENT it
# sends nothing, in CLOSING, LAST-ACK and TIME-WAIT it deletes the TCB only.
_ABORT_RESETS = ("SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT")


def _local(after: Tcb) -> Outcome:
    """A call that sends nothing: no requirement judges it on the wire."""
    return Outcome("", "", "", True, Answer("nothing"), after.state, after, 0)


def app_call(tcb: Tcb, op: str) -> list[Outcome]:
    """The outcomes of the application's call `op` on `tcb`."""
    if op == "listen" and tcb.state == "CLOSED":
        return [_local(tcb.moved(state="LISTEN"))]
    if op == "connect" and tcb.state == "CLOSED":
        # OPEN, active (3.10.1): "a SYN segment of the form <SEQ=ISS><CTL=SYN> is
        # sent", SND.UNA to ISS, SND.NXT to ISS+1, and SYN-SENT.
        syn = Answer("syn", tcp.SYN, tcb.iss, None)
        after = tcb.moved(state="SYN-SENT", snd_una=tcb.iss, snd_nxt=seq_add(tcb.iss, 1))
        return [Outcome("", "", "", True, syn, "SYN-SENT", after, 0)]
    if op == "accept":
        # Taking an established connection from the queue sends nothing.
        return [_local(tcb)]
    if op == "close" and tcb.state in _CLOSE:
        state, requirement = _CLOSE[tcb.state]
        fin = Answer("fin", tcp.FIN | tcp.ACK, tcb.snd_nxt, tcb.rcv_nxt)
        return [_outcome("", requirement, True, fin, state,
                         tcb.moved(snd_nxt=seq_add(tcb.snd_nxt, 1)), 0)]
    if op == "abort" and tcb.state in _ABORT_RESETS:
        # ABORT (3.10.5): "Send a reset segment: <SEQ=SND.NXT><CTL=RST>" and
        # enter CLOSED.
        reset = Answer("reset", tcp.RST, tcb.snd_nxt, None)
        return [_outcome("", "RFC9293-3.10.5-abort-reset", True, reset, "CLOSED",
                         tcb, 0)]
    raise Unmodelled(f"the application's {op} in {tcb.state}: not modelled yet")
