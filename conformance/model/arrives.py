"""SEGMENT ARRIVES in the synchronized states (RFC 9293 3.10.7.4), with the
grid's table as the ordered list of checks.

For a TCB and a segment, :func:`segment_arrives` classifies the segment
(.classify), finds the first rule of the table that decides that state,
kind and position, and turns each of the rule's answers into numbers: the
segment the target sends (or none), and the state that follows.  Every
outcome carries the requirement that allows it (or, with conforms false,
the one it breaks) and that requirement's level, so a target's answer
outside the conforming outcomes is judged at the level of the sentence the
table cites."""

from __future__ import annotations

from dataclasses import dataclass

from .. import tcp
from ..grid import GridTable, rule_table
from ..requirements import load_catalogue
from ..seq import seq_add, seq_gt, seq_le
from .classify import Segment, kind, position
from .tcb import SYNCHRONIZED, Tcb

# Kinds whose acknowledgment number the fifth check reads: the table's rows
# assume it acknowledges everything sent (SEG.ACK = SND.NXT).  RST and SYN
# are decided before the ACK field is looked at, and a segment without ACK
# is dropped at the fifth check itself.
_ACK_READ = ("fin-ack", "data-ack", "ack")


class Unmodelled(Exception):
    """The model does not decide this event yet: said, never guessed."""


@dataclass(frozen=True)
class Answer:
    """What the target sends: kind is the table's answer name (nothing,
    dropped, ack, dup-ack, reset, syn-ack-again, reopen).  Numbers the answer
    fixes are given; None where the RFC leaves them open (a RST's)."""
    kind: str
    flags: int | None = None
    seq: int | None = None
    ack: int | None = None
    min_iss: int | None = None     # reopen: the new ISN must be at least this

    @property
    def silent(self) -> bool:
        return self.flags is None


@dataclass(frozen=True)
class Outcome:
    label: str              # the alternative's label ("" for a rule with one answer)
    requirement: str
    level: str
    conforms: bool
    answer: Answer
    state: str | None       # the state that follows (None: the answer checks it, reopen's)
    tcb: Tcb | None         # the connection after it, where the model knows it
    rule: int               # the deciding rule's index in the table (its line: table.marks)


def segment_arrives(tcb: Tcb, seg: Segment, table: GridTable | None = None) -> list[Outcome]:
    """Every outcome the RFCs name for `seg` arriving in `tcb`'s state, in the
    table's order; raises Unmodelled for an event the model does not decide."""
    if tcb.state not in SYNCHRONIZED:
        raise Unmodelled(f"SEGMENT ARRIVES in {tcb.state}: not modelled yet")
    seg_kind = kind(seg)
    if seg_kind in _ACK_READ and seg.ack != tcb.snd_nxt:
        raise Unmodelled("an acknowledgment number other than SND.NXT: the ACK field's "
                         "checks (RFC 5961 5.2, RFC 9293 fifth check) are not modelled yet")
    table = table or rule_table()
    index = table.decide(tcb.state, seg_kind, position(tcb, seg))
    rule = table.rules[index]
    catalogue = load_catalogue()
    outcomes = []
    for branch in rule.get("one_of", [rule]):
        requirement = branch["requirement"]
        answer, after = _answer(branch["answer"], tcb, seg, seg_kind)
        state = table.then_state(branch["then"], tcb.state) if "then" in branch else None
        outcomes.append(Outcome(
            label=branch.get("label", ""), requirement=requirement,
            level=catalogue.get(requirement).level, conforms=branch.get("conforms", True),
            answer=answer, state=state,
            tcb=after.moved(state=state) if state is not None else None, rule=index))
    return outcomes


def _answer(name: str, tcb: Tcb, seg: Segment, seg_kind: str) -> tuple[Answer, Tcb]:
    """The answer's numbers, and the TCB after it (RCV.NXT moved over the
    segment when the answer acknowledges it in order)."""
    taken = _taken(tcb, seg, seg_kind)
    if name in ("nothing", "dropped"):
        return Answer(name), tcb
    if name == "ack":
        # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, RCV.NXT past the segment if it
        # was taken in order.
        return Answer(name, tcp.ACK, tcb.snd_nxt, taken.rcv_nxt), taken
    if name == "dup-ack":
        return Answer(name, tcp.ACK, tcb.snd_nxt, tcb.rcv_nxt), tcb
    if name == "reset":
        return Answer(name, tcp.RST), tcb
    if name == "syn-ack-again":
        # The SYN not yet acknowledged, sent again: it carries <ACK=RCV.NXT>.
        return Answer(name, tcp.SYN | tcp.ACK, tcb.iss, tcb.rcv_nxt), tcb
    if name == "reopen":
        # RFC 9293 3.6.1 MAY-2: a new ISN above the old connection's numbers.
        return Answer(name, tcp.SYN | tcp.ACK, None, seq_add(seg.seq, 1),
                      min_iss=tcb.snd_nxt), tcb
    raise Unmodelled(f"the table's answer {name!r} has no numbers in the model")


def _taken(tcb: Tcb, seg: Segment, seg_kind: str) -> Tcb:
    """RCV.NXT once the segment's text and FIN are taken, if it starts at or
    before RCV.NXT and reaches past it (a SYN or RST takes no sequence space
    here: both are answered before the text is looked at)."""
    if seg_kind not in _ACK_READ:
        return tcb
    end = seq_add(seg.seq, seg.span)
    if seq_le(seg.seq, tcb.rcv_nxt) and seq_gt(end, tcb.rcv_nxt):
        return tcb.moved(rcv_nxt=end)
    return tcb
