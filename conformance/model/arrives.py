"""SEGMENT ARRIVES (RFC 9293 3.10.7): in the synchronized states (3.10.7.4)
with the grid's table as the ordered list of checks, and the ACK field's
checks below; in CLOSED, LISTEN and SYN-SENT by .opening's checks.

In a synchronized state, :func:`segment_arrives` classifies the segment
(.classify), finds the first rule of the table that decides that state,
kind and position, and turns each of the rule's answers into numbers: the
segment the target sends (or none), and the state that follows.  Every
outcome carries the requirement that allows it (or, with conforms false,
the one it breaks) and that requirement's level, so a target's answer
outside the conforming outcomes is judged at the level of the sentence the
table cites."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import tcp
from ..grid import GridTable, rule_table
from ..requirements import load_catalogue
from ..seq import seq_add, seq_ge, seq_gt, seq_le
from .classify import Segment, kind, position
from .opening import CHECKS
from .tcb import SYNCHRONIZED, Tcb

# Kinds whose acknowledgment number the fifth check reads: the table's rows
# assume it acknowledges everything sent (SEG.ACK = SND.NXT), _ack_field the
# rest.  RST and SYN are decided before the ACK field is looked at, and a
# segment without ACK is dropped at the fifth check itself.
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
    rule: int               # the deciding rule's (or check's) index in its table


def segment_arrives(tcb: Tcb, seg: Segment, table: GridTable | None = None) -> list[Outcome]:
    """Every outcome the RFCs name for `seg` arriving in `tcb`'s state, in the
    table's order; raises Unmodelled for an event the model does not decide."""
    if tcb.state in CHECKS:
        return _opening(tcb, seg)
    if tcb.state not in SYNCHRONIZED:
        raise Unmodelled(f"SEGMENT ARRIVES in {tcb.state}: not modelled yet")
    table = table or rule_table()
    seg_kind, seg_position = kind(seg), position(tcb, seg)
    if _active_open_rst_or_syn(tcb, seg_kind, seg_position):
        return _throttled(tcb, _active_open(table, tcb, seg, seg_kind, seg_position))
    outcomes = _from_table(table, tcb, seg, _deciding_kind(table, tcb, seg, seg_kind,
                                                           seg_position), seg_position)
    # The ACK field is read only at the fifth check: by a segment that
    # passed the first (acceptable) and is neither RST nor SYN.  The table's
    # rows assume SEG.ACK = SND.NXT; any other value is decided here.
    if seg_kind in _ACK_READ and seg_position not in ("left-of-window", "beyond-window"):
        outcomes = (_ack_field(tcb, seg, outcomes) if seg.ack != tcb.snd_nxt
                    else [_acknowledged(o, seg.ack) for o in outcomes])
    return _throttled(tcb, outcomes)


# The ACKs RFC 5961 sends to segments that may be blind attacks: challenge
# ACKs for a RST or SYN in the window (3.2, 4.2), and the ACK of a segment
# whose ACK field is too old (5.2, MAY-12).
_CHALLENGES = ("RFC5961-3.2-challenge-ack", "RFC5961-4.2-syn-challenge-ack", "RFC9293-MAY-12")
_THROTTLE = "RFC5961-7-ack-throttling"


def _is_challenge(outcome: Outcome) -> bool:
    return outcome.conforms and outcome.requirement in _CHALLENGES \
        and outcome.answer.kind == "ack"


def _throttled(tcb: Tcb, outcomes: list[Outcome]) -> list[Outcome]:
    """Challenge ACKs counted; and after a first one, the silence of a stack
    that throttles the next (RFC 5961 7: "An implementation SHOULD include an
    ACK throttling mechanism", its rate the administrator's to tune, so any
    challenge ACK but the connection's first may be the one held back)."""
    challenges = [o for o in outcomes if _is_challenge(o)]
    if not challenges:
        return outcomes
    counted = [replace(o, tcb=o.tcb.moved(challenge_acks=tcb.challenge_acks + 1))
               if _is_challenge(o) and o.tcb is not None else o for o in outcomes]
    if tcb.challenge_acks == 0:
        return counted
    first = challenges[0]
    held_back = _outcome("challenge ACK throttled (RFC 5961 7)", _THROTTLE, True,
                         Answer("nothing"), first.state, tcb, first.rule)
    return counted + [held_back]


def _deciding_kind(table: GridTable, tcb: Tcb, seg: Segment, seg_kind: str,
                   seg_position: str) -> str:
    """The table's row for the segment.  A FIN that carries text is a fin-ack
    row, but the text is looked at first (the seventh check, before the
    eighth's FIN): where the text's own row ends the processing with a reset
    (data after CLOSE, RFC 9293 SHLD-3), that row decides."""
    if seg_kind == "fin-ack" and seg.length:
        rule = table.rules[table.decide(tcb.state, "data-ack", seg_position)]
        if any(branch["answer"] == "reset" for branch in rule.get("one_of", [rule])):
            return "data-ack"
    return seg_kind


# The sentence by which a segment is held whole for later, its ACK field
# with it: the outcomes that follow it have not processed the ACK yet.
_HELD = "RFC9293-SHLD-31"


def _acknowledged(outcome: Outcome, ack: int) -> Outcome:
    """The outcome with SND.UNA moved to SEG.ACK (3.10.7.4: "If SND.UNA <
    SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK"), unless it holds the
    segment for later."""
    if outcome.tcb is None or outcome.requirement == _HELD \
            or not seq_gt(ack, outcome.tcb.snd_una):
        return outcome
    return replace(outcome, tcb=outcome.tcb.moved(snd_una=ack))


def _opening(tcb: Tcb, seg: Segment) -> list[Outcome]:
    """CLOSED, LISTEN, SYN-SENT: the first of the state's checks that holds."""
    for index, check in enumerate(CHECKS[tcb.state]):
        if not check.when(tcb, seg):
            continue
        if check.requirement is None:
            raise Unmodelled(f"{tcb.state}: no catalogue requirement decides this segment yet")
        kind_, *numbers = check.answer(tcb, seg)
        answer = Answer(kind_, *numbers) if numbers else Answer(kind_)
        after = check.then(tcb, seg)
        return [_outcome("", check.requirement, True, answer, after.state, after, index)]
    raise AssertionError(f"{tcb.state}: its checks end with one that always holds")


# -- SYN-RECEIVED from an active OPEN (a simultaneous open) -----------------------

_RST_KINDS, _SYN_KINDS = ("rst", "rst-ack"), ("syn", "syn-ack")
# The table's SYN-RECEIVED rows for an acceptable RST or SYN are the passive
# OPEN's; from an active OPEN the RFC sends both elsewhere, and the table's
# rows of this synchronized state decide instead.
_LIKE = "ESTABLISHED"


def _active_open_rst_or_syn(tcb: Tcb, seg_kind: str, seg_position: str) -> bool:
    return (tcb.state == "SYN-RECEIVED" and tcb.active_open
            and seg_kind in _RST_KINDS + _SYN_KINDS
            and seg_position not in ("left-of-window", "beyond-window"))


def _active_open(table: GridTable, tcb: Tcb, seg: Segment, seg_kind: str,
                 seg_position: str) -> list[Outcome]:
    """RFC 9293 3.10.7.4 in SYN-RECEIVED, for a connection that came from
    SYN-SENT.  A RST at RCV.NXT: "If this connection was initiated with an
    active OPEN (i.e., came from SYN-SENT state), then the connection was
    refused ... And in the active OPEN case, enter the CLOSED state".  A
    SYN: "Otherwise, handle per the directions for synchronized states
    below".  Any other RST in the window is the synchronized states' RFC
    5961 3.2 challenge, a reset by RFC 793 closing the connection."""
    if seg_kind in _RST_KINDS and seg_position == "at-rcv-nxt":
        index = table.decide(tcb.state, seg_kind, seg_position)
        return [_outcome("", "RFC9293-3.10.7.4-rst-syn-received-active", True,
                         Answer("nothing"), "CLOSED", tcb, index)]
    return _from_table(table, tcb, seg, seg_kind, seg_position, row_state=_LIKE)


def _from_table(table: GridTable, tcb: Tcb, seg: Segment, seg_kind: str,
                seg_position: str, row_state: str | None = None) -> list[Outcome]:
    """The outcomes of the table's rule for the segment; `row_state`: the
    state whose rows decide, when not the TCB's own (its 'same' stays in the
    TCB's state)."""
    row_state = row_state or tcb.state
    index = table.decide(row_state, seg_kind, seg_position)
    rule = table.rules[index]
    outcomes = []
    for branch in rule.get("one_of", [rule]):
        answer, after = _answer(branch["answer"], tcb, seg, seg_kind)
        state = table.then_state(branch["then"], row_state) if "then" in branch else None
        if state == row_state:
            state = tcb.state
        outcomes.append(_outcome(branch.get("label", ""), branch["requirement"],
                                 branch.get("conforms", True), answer, state, after, index))
    return outcomes


def _outcome(label: str, requirement: str, conforms: bool, answer: Answer, state: str | None,
             after: Tcb, rule: int) -> Outcome:
    return Outcome(label=label, requirement=requirement,
                   level=load_catalogue().get(requirement).level, conforms=conforms,
                   answer=answer, state=state,
                   tcb=after.moved(state=state) if state is not None else None, rule=rule)


# -- the fifth check: the ACK field (RFC 9293 3.10.7.4, RFC 5961 5.2) ------------

# The moves only an acknowledgment of our SYN or FIN makes: an ACK that
# acknowledges nothing new leaves the state where it was (and a FIN crossing
# ours in FIN-WAIT-1 then leads to CLOSING, not TIME-WAIT).
#               (state,        the table's next state) -> the state instead
_ACK_DRIVEN = {("SYN-RECEIVED", "ESTABLISHED"): "SYN-RECEIVED",
               ("FIN-WAIT-1", "FIN-WAIT-2"): "FIN-WAIT-1",
               ("FIN-WAIT-1", "TIME-WAIT"): "CLOSING",
               ("CLOSING", "TIME-WAIT"): "CLOSING",
               ("LAST-ACK", "CLOSED"): "LAST-ACK"}

# An ACK with RFC 5961's mitigation and without it (RFC 9293 MAY-12): the
# labels and the requirement are those of acceptability.ack-too-old.
_CHECKED = "RFC 5961 5.2 ACK check"
_IGNORED = "RFC 793, old ACK ignored and data accepted"


def ack_class(tcb: Tcb, ack: int) -> str:
    """Where SEG.ACK falls: 'unsent' (beyond SND.NXT), 'new' (SND.UNA <
    SEG.ACK =< SND.NXT), 'duplicate' (at or below SND.UNA, within
    MAX.SND.WND of it), 'too-old' (below that)."""
    if seq_gt(ack, tcb.snd_nxt):
        return "unsent"
    if seq_gt(ack, tcb.snd_una):
        return "new"
    if seq_ge(ack, seq_add(tcb.snd_una, -tcb.max_snd_wnd)):
        return "duplicate"
    return "too-old"


def _ack_field(tcb: Tcb, seg: Segment, table_outcomes: list[Outcome]) -> list[Outcome]:
    which = ack_class(tcb, seg.ack)
    rule = table_outcomes[0].rule
    drop_with_ack = Answer("ack", tcp.ACK, tcb.snd_nxt, tcb.rcv_nxt)
    if tcb.state == "SYN-RECEIVED" and which != "new":
        # "If the segment acknowledgment is not acceptable, form a reset
        # segment <SEQ=SEG.ACK><CTL=RST> and send it."
        return [_outcome("", "RFC9293-3.10.7.4-syn-received-bad-ack", True,
                         Answer("reset", tcp.RST, seg.ack), tcb.state, tcb, rule)]
    if which == "unsent":
        # "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send
        # an ACK, drop the segment, and return."
        return [_outcome("", "RFC9293-3.10.7.4-ack-unsent", True, drop_with_ack, tcb.state,
                         tcb, rule)]
    # A duplicate "can be ignored", and an ACK of part of what was sent moves
    # SND.UNA only: the segment goes on to the text and FIN checks as the
    # table says, without the moves an ACK of our SYN or FIN would make.
    ignored = [replace(o, state=_ACK_DRIVEN.get((tcb.state, o.state), o.state),
                       tcb=o.tcb.moved(state=_ACK_DRIVEN.get((tcb.state, o.state), o.state))
                       if o.tcb else None)
               for o in table_outcomes]
    if which == "new":
        return [_acknowledged(o, seg.ack) for o in ignored]
    if which == "duplicate":
        return ignored
    # Too old: discarded with an ACK by RFC 5961's mitigation, which RFC 9293
    # makes optional (MAY-12); ignored as a duplicate without it.
    checked = _outcome(_CHECKED, "RFC9293-MAY-12", True, drop_with_ack, tcb.state, tcb, rule)
    return [checked] + [replace(o, label=_IGNORED + (f"; {o.label}" if o.label else ""),
                                requirement="RFC9293-MAY-12", conforms=False,
                                level=load_catalogue().get("RFC9293-MAY-12").level)
                        for o in ignored]


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
