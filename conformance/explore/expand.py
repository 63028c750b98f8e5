"""A sequence as a case: the reference model meets each event in the state
the events before it left, and the case expects every answer the model
allows there.

Where the model allows more than one outcome, the case branches (``one_of``)
and the rest of the sequence is expected after each conforming alternative
in turn, from the TCB that alternative leaves: the same abstract event means
new numbers on each branch.  A non-conforming alternative ends its branch
(the verdict is decided there).  The result is an ordinary case, run by the
ordinary engine, which a finding is written out as.

A branch stops early, saying why, where the model cannot go on honestly:
an event it does not decide (:class:`Unmodelled`), a call the application
cannot make (it holds no socket), a segment held for later (the model keeps
no out-of-order queue, so what a later segment makes of it is unknown),
alternatives the wire cannot tell apart that leave different TCBs, an
answer that leaves the TCB open (TIME-WAIT reopening), and a SYN at the
window's edge after the tester's own RST (the tester's view re-bases).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import tcp
from ..case import load_setups
from ..grid import rule_table
from ..model import Outcome, Segment, Tcb, Unmodelled, kind, position, segment_arrives
from ..model.calls import app_call
from ..model.setups import reach
from ..model.tcb import SYNCHRONIZED
from ..seq import seq_add, seq_diff
from ..steps import App, Expect
from .sequence import RIGHT_EDGE, SND_NXT, Call, Inject, Sequence

# The windows the grid's answers wait (cases/grid/state-event.yaml): an
# answer-less check 200 ms, a dropped text or FIN 500 ms (a stack that takes
# it anyway may acknowledge it late), an ACK within 500 ms (RFC 1122
# 4.2.3.2's delayed ACK).
SILENCE = {"nothing": "200ms", "dropped": "500ms"}
ACK_WITHIN = "500ms"
_ACKS = ("ack", "dup-ack", "syn-ack-again")

# Positions in the sense of the grid, for a segment that meets no
# synchronized connection (CLOSED, LISTEN, SYN-SENT: no window to be in).
NO_WINDOW = "-"


@dataclass
class Branch:
    outcome: Outcome
    label: str
    then: "Node | None" = None


@dataclass
class Node:
    """One event as it meets one TCB: the (state, event, position) the model
    decided it by, and each outcome the model allows."""
    index: int
    state: str
    event: str          # the segment's kind (the grid's names), or the call
    position: str
    seg: Segment | None = None      # the segment in the model's numbers (a call: None)
    knows_iss: bool = True          # the tester has seen the target's ISN by then
    branches: list[Branch] = field(default_factory=list)
    stops: str = ""     # why no later event follows this one, if none does

    @property
    def seq_rel(self) -> int:
        """The segment's seq relative to the tester's ISN (the model's is 0)."""
        return seq_diff(self.seg.seq, 0)

    @property
    def ack_rel(self) -> int:
        return seq_diff(self.seg.ack, 0)

    @property
    def cell(self) -> tuple[str, str, str]:
        return self.state, self.event, self.position


@dataclass
class Expansion:
    sequence: Sequence
    root: Node | None
    data: dict                       # the case, as a case file writes it
    owners: list                     # which node each step of data["steps"] belongs to
    stops: str = ""                  # why the first event could not be met, if so

    def nodes(self) -> list[Node]:
        out, todo = [], [self.root] if self.root else []
        while todo:
            node = todo.pop(0)
            out.append(node)
            todo.extend(b.then for b in node.branches if b.then is not None)
        return out


@dataclass(frozen=True)
class _Context:
    role: str
    holds_socket: bool      # the application has the connection's socket (accepted or connected)
    knows_iss: bool         # the tester has seen the target's ISN: its numbers are relative
    # The tester sent a RST on the connection: its view then starts anew at
    # its next SYN (connection.py), so SND.UNA is re-based to that SYN's seq.
    tester_reset: bool = False


def expand(sequence: Sequence) -> Expansion:
    """The case that runs `sequence` with the model's expectations."""
    role, start = sequence.role, sequence.start
    setup = load_setups()[(role, start)]
    ops = [s.op for s in setup if isinstance(s, App)]
    context = _Context(role, holds_socket=bool({"accept", "connect"} & set(ops))
                       and "close" not in ops,
                       knows_iss=any(isinstance(s, Expect) and s.flags is not None
                                     and s.flags & tcp.SYN for s in setup))
    tcb = reach(role, start)
    root, stops = _meet(sequence, 0, tcb, context)
    steps, owners = _steps(root, sequence) if root else ([], [])
    requirements = list(dict.fromkeys(
        b.outcome.requirement for node in _walk(root) for b in node.branches
        if b.outcome.requirement))
    data = {
        "id": sequence.id,
        "title": f"explored from {role} {start}: " + "; ".join(
            e.describe() for e in sequence.events),
        "description": "Generated by tcpconf explore: the reference model's answers to "
                       "each event, in the state the events before it left.",
        "requirements": requirements,
        "target": {"role": role, "start": start},
        "marks": ["explore"],
        "steps": steps,
    }
    return Expansion(sequence, root, data, owners, stops)


def _walk(node: Node | None):
    if node is None:
        return
    yield node
    for branch in node.branches:
        yield from _walk(branch.then)


def _meet(sequence: Sequence, index: int, tcb: Tcb,
          context: _Context) -> tuple[Node | None, str]:
    """The node of event `index` meeting `tcb`, its branches met in turn by
    the next event; or None and why the event cannot be met."""
    event = sequence.events[index]
    if (context.tester_reset and isinstance(event, Inject) and event.flags & tcp.SYN
            and event.seq_from == RIGHT_EDGE and tcb.state in SYNCHRONIZED):
        # Written over snd_una, the SYN's answer would be measured after the
        # re-base moved it: the expectation would not be the model's.
        return None, (f"event {index + 1}: a SYN at the window's edge after the tester's own "
                      f"RST re-bases the tester's SND.UNA")
    try:
        if isinstance(event, Call):
            if not context.holds_socket:
                return None, f"event {index + 1}: the application holds no socket to {event.op}"
            node = Node(index, tcb.state, event.op, NO_WINDOW, knows_iss=context.knows_iss)
            outcomes = app_call(tcb, event.op)
            context = _Context(context.role, False, context.knows_iss, context.tester_reset)
        else:
            seg = segment(event, tcb)
            node = Node(index, tcb.state, kind(seg),
                        position(tcb, seg) if tcb.state in SYNCHRONIZED else NO_WINDOW,
                        seg=seg, knows_iss=context.knows_iss)
            outcomes = segment_arrives(tcb, seg)
            if event.flags & tcp.RST:
                context = _Context(context.role, context.holds_socket, context.knows_iss, True)
    except Unmodelled as exc:
        return None, f"event {index + 1}: {exc}"
    node.branches = _branches(outcomes)
    node.stops = _stops(node, event, tcb)
    if node.stops or index + 1 == len(sequence.events):
        return node, ""
    for branch in node.branches:
        if not branch.outcome.conforms:
            continue
        after = _connection_after(branch.outcome.tcb, context.role)
        knows = context.knows_iss or branch.outcome.answer.kind == "syn-ack"
        branch.then, why = _meet(sequence, index + 1, after,
                                 _Context(context.role, context.holds_socket, knows,
                                          context.tester_reset))
        if why and not node.stops:
            node.stops = why
    return node, ""


def _connection_after(tcb: Tcb, role: str) -> Tcb:
    """What the next segment meets: the connection, or once it is gone, the
    listening socket the target's application still holds (RFC 9293
    3.10.7.4: a connection from a passive OPEN returns to LISTEN), or no
    socket at all (CLOSED)."""
    if tcb.state == "CLOSED" and role == "listener":
        return tcb.moved(state="LISTEN", challenge_acks=0)
    return tcb


def _branches(outcomes: list[Outcome]) -> list[Branch]:
    labels: list[str] = []
    for o in outcomes:
        label = o.label or f"{o.answer.kind}" + (f", then {o.state}" if o.state else "")
        while label in labels:
            label += " (again)"
        labels.append(label)
    return [Branch(o, label) for o, label in zip(outcomes, labels)]


def _stops(node: Node, event, tcb: Tcb) -> str:
    n = node.index + 1
    if any(b.outcome.tcb is None for b in node.branches if b.outcome.conforms):
        return f"event {n}: the answer leaves the connection's numbers open"
    if (isinstance(event, Inject) and tcb.state in SYNCHRONIZED
            and node.position in ("in-window", "right-edge")
            and node.event in ("data", "data-ack", "fin", "fin-ack")):
        return (f"event {n}: the segment lies beyond RCV.NXT and may be held for later; the "
                f"model keeps no out-of-order queue")
    conforming = [b for b in node.branches if b.outcome.conforms]
    seen: dict[tuple, Tcb] = {}
    for b in conforming:
        key = (b.outcome.answer.kind, b.outcome.answer.flags, b.outcome.state)
        if key in seen and seen[key] != b.outcome.tcb:
            return (f"event {n}: alternatives the wire cannot tell apart leave different "
                    f"connections")
        seen[key] = b.outcome.tcb
    return ""


def segment(event: Inject, tcb: Tcb) -> Segment:
    """The event's segment in the model's numbers (both ISNs are 0)."""
    base = tcb.rcv_nxt if event.seq_from != RIGHT_EDGE else seq_add(tcb.rcv_nxt, tcb.rcv_wnd)
    seq = seq_add(base, event.offset)
    ack = 0
    if event.flags & tcp.ACK:
        ack = seq_add(tcb.snd_nxt if event.ack_from == SND_NXT else tcb.snd_una, event.ack_off)
    return Segment(event.flags, seq, ack=ack, length=event.length)


# -- the case's steps -------------------------------------------------------------

def _steps(node: Node, sequence: Sequence) -> tuple[list, list]:
    """The steps of `node` and all after it, and beside them which node each
    belongs to (a one_of's entry: (node, [each alternative's owners]))."""
    event = sequence.events[node.index]
    steps = [_event_step(node, event)]
    owners: list = [node]
    conforming = [b for b in node.branches if b.outcome.conforms]
    if len(node.branches) == 1:
        branch = node.branches[0]
        more, more_owners = _outcome_steps(node, branch, event, sequence, True)
        return steps + more, owners + more_owners
    alternatives, alt_owners = [], []
    for branch in node.branches:
        more, more_owners = _outcome_steps(node, branch, event, sequence, False)
        alternatives.append({"label": branch.label, "conforms": branch.outcome.conforms,
                             "requirement": branch.outcome.requirement, "steps": more})
        alt_owners.append(more_owners)
    assert conforming, "every rule of the model has a conforming outcome"
    # An answer that fits no alternative deviates from the deciding rule,
    # whose requirement its first conforming outcome carries (as the grid's).
    return (steps + [{"one_of": alternatives, "requirement": conforming[0].outcome.requirement}],
            owners + [(node, alt_owners)])


def _event_step(node: Node, event) -> dict:
    note = f"event {node.index + 1}: {event.describe()} (in {node.state})"
    if isinstance(event, Call):
        return {"app": event.op, "note": note}
    return {"send": _send_fields(event, node), "note": note}


def _send_fields(event: Inject, node: Node) -> dict:
    fields = {"flags": tcp.format_flags(event.flags), "seq": _seq_text(event, node)}
    if event.flags & tcp.ACK:
        fields["ack"] = node.ack_rel
    if event.length:
        fields["len"] = event.length
    return fields


def _seq_text(event: Inject, node: Node) -> int | str:
    """The segment's seq as the tester writes it.  At the window's edge in a
    synchronized state it is measured from the window the target last
    offered (the tester's snd_una + snd_wnd), whatever that is on the stack
    under test: the model's own RCV.WND only places the segment on the
    edge's side.  Elsewhere it is a number relative to the tester's ISN."""
    off = event.offset
    if event.seq_from == RIGHT_EDGE and node.state in SYNCHRONIZED:
        return f"snd_una + snd_wnd {'-' if off < 0 else '+'} {abs(off)}"
    return node.seq_rel


def _outcome_steps(node: Node, branch: Branch, event, sequence: Sequence,
                   only: bool) -> tuple[list, list]:
    outcome = branch.outcome
    steps = _answer_steps(outcome, event, node)
    if outcome.state is not None and not (outcome.state == node.state
                                          and node.state in ("CLOSED", "LISTEN")):
        steps.append({"state": outcome.state})
    if only:
        for step in steps:
            step.setdefault("requirement", outcome.requirement)
    owners: list = [node] * len(steps)
    if branch.then is not None:
        more, more_owners = _steps(branch.then, sequence)
        steps, owners = steps + more, owners + more_owners
    return steps, owners


def _answer_steps(outcome: Outcome, event, node: Node) -> list[dict]:
    answer = outcome.answer
    if answer.silent:
        return [{"silence": SILENCE.get(answer.kind, SILENCE["nothing"])}]
    if answer.kind == "reopen":
        # As the grid writes it: a reopening that breaks MAY-2's conditions
        # deviates from the rule the branch is an exception to.
        rule = rule_table().rules[outcome.rule]
        return rule_table().answer("reopen", str(_seq_text(event, node)), rule["requirement"])
    flags = tcp.format_flags(answer.flags)
    # A reset whose ACK the RFC leaves open (the grid's `reset`, ABORT's form
    # <SEQ=SND.NXT><CTL=RST>), unlike 3.10.7.1's two exact forms.
    if answer.kind == "reset" and (answer.seq is None or isinstance(event, Call)):
        flags = "RST+(ACK)"
    expect: dict = {"flags": flags}
    # A RST+ACK from CLOSED has <SEQ=0>, an absolute number the tester's
    # relative ones cannot write; a seq from a target whose ISN the tester
    # has not seen is not relative to anything yet.
    if answer.seq is not None and node.knows_iss and answer.flags != tcp.RST | tcp.ACK:
        expect["seq"] = seq_diff(answer.seq, 0)
    if answer.ack is not None:
        expect["ack"] = seq_diff(answer.ack, 0)
    if answer.kind in _ACKS:
        expect["within"] = ACK_WITHIN
    # The SYN,ACK of a simultaneous open repeats the target's SYN (its ISS):
    # the tester would otherwise take it for a retransmission, not an answer.
    if answer.kind == "syn-ack-again" or (answer.flags & tcp.SYN and answer.seq is not None):
        expect["retransmission"] = True
    return [{"expect": expect}]
