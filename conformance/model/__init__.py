"""An executable reference model of TCP: what RFC 9293 (with RFC 5961's
blind-attack rules and the RFC 793 alternatives they replace) allows a
target to answer, for a connection's state and an incoming segment.

Pure Python, no I/O.  The state is a :class:`Tcb` (the connection's state
name and its variables); an event is a :class:`Segment`; the model's answer
is the set of conforming and non-conforming :class:`Outcome` s, each with the
answer the target sends, the state that follows, and the catalogue
requirement that allows (or forbids) it.

The rules are not written twice: for the synchronized states, SEGMENT ARRIVES
is the state-event grid's table (``cases/grid/state-event.yaml``), read as the
ordered list of checks it is; the model contributes what a table of nine
segment kinds and five positions cannot say: which kind and position a
segment with any flags, sequence number and length is (:mod:`.classify`),
and the numbers of each answer (:mod:`.arrives`).

The ACK field, which the table's rows take as SND.NXT, is the model's own
small table (:mod:`.arrives`); CLOSED, LISTEN and SYN-SENT are ordered lists
of checks (:mod:`.opening`); the setups' calls are :mod:`.calls`, and the
TCB each setup reaches is found by walking it through the model
(:mod:`.setups`).  What the model does not decide yet (SEND and RECEIVE;
timers) it says so: :class:`Unmodelled`, never a guess.
"""

from .arrives import Outcome, Unmodelled, segment_arrives
from .classify import Segment, kind, position
from .tcb import Tcb

__all__ = ["Outcome", "Segment", "Tcb", "Unmodelled", "kind", "position", "segment_arrives"]
