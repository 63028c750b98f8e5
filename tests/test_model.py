"""The reference model (conformance.model) against the state-event grid, cell
by cell: from the numbers the suite's setups reach, the concrete segment a
cell sends is classified into the cell's own kind and position, and every
answer the model computes (flags, seq, ack, the state that follows, the
requirement, whether it conforms) is the one the cell's case expects, its
expressions evaluated as the tester evaluates them.  Pure: no lab."""

from __future__ import annotations

import pytest

from conformance import tcp
from conformance.grid import grid_cells
from conformance.model import Segment, Tcb, Unmodelled, kind, position, segment_arrives
from conformance.model.tcb import after_setup
from conformance.seq import seq_add, seq_gt, seq_le
from conformance.steps import Expect, OneOf, Send, Silence, StateCheck

CELLS = grid_cells()


def seen_by_tester(tcb: Tcb) -> dict[str, int]:
    """The tester's variables facing `tcb` (both ISNs are 0): what it has sent
    and had acknowledged is the target's RCV.NXT, what it received the
    target's SND.NXT."""
    return {"snd_nxt": tcb.rcv_nxt, "snd_una": tcb.rcv_nxt, "rcv_nxt": tcb.snd_nxt,
            "snd_wnd": tcb.rcv_wnd}


def sent(send: Send, tcb: Tcb) -> tuple[Segment, dict[str, int]]:
    """The cell's segment in numbers, and the tester's variables once sent
    (SND.NXT moves over a segment that starts within what was sent)."""
    view = seen_by_tester(tcb)
    seq = send.seq.evaluate(view) % 2**32
    length = len(send.payload) or (send.length.evaluate(view) if send.length else 0)
    seg = Segment(send.flags, seq, ack=tcb.snd_nxt if send.flags & tcp.ACK else 0,
                  length=length)
    after = dict(view)
    end = seq_add(seq, length + bool(send.flags & tcp.FIN))
    if not send.flags & tcp.SYN and seq_le(seq, view["snd_nxt"]) and seq_gt(end, view["snd_nxt"]):
        after["snd_nxt"] = end
    return seg, after


def expected(steps, view) -> dict:
    """What an alternative's steps expect, in the model's terms."""
    out = {"silent": False, "state": None}
    for step in steps:
        if isinstance(step, Silence):
            out["silent"] = True
        elif isinstance(step, Expect) and "flags" not in out:
            out["flags"] = step.flags
            out["seq"] = step.seq.evaluate(view) % 2**32 if step.seq is not None else None
            out["ack"] = step.ack.evaluate(view) % 2**32 if step.ack is not None else None
            out["min_iss"] = (step.isn[1].evaluate(view) % 2**32
                              if step.isn is not None else None)
        elif isinstance(step, StateCheck) and out["state"] is None:
            out["state"] = step.state
    return out


def alternatives(case):
    """(label, conforms, requirement, steps) of each answer the cell allows."""
    rest = case.steps[1:]
    if len(rest) == 1 and isinstance(rest[0], OneOf):
        return [(a.label, a.conforms, a.requirement, a.steps) for a in rest[0].alternatives]
    return [("", True, case.primary.id, rest)]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.case.id)
def test_the_model_agrees_with_the_grid_cell(cell):
    tcb = after_setup(cell.state)
    seg, view = sent(cell.case.steps[0], tcb)
    assert (kind(seg), position(tcb, seg)) == (cell.segment, cell.position), seg
    outcomes = segment_arrives(tcb, seg)
    allowed = alternatives(cell.case)
    assert [(o.label, o.conforms, o.requirement) for o in outcomes] == \
        [(label, conforms, req) for label, conforms, req, _ in allowed], cell.case.id
    for outcome, (label, _conforms, _req, steps) in zip(outcomes, allowed):
        want, got = expected(steps, view), outcome.answer
        where = f"{cell.case.id} ({label or 'its answer'}), grid line {cell.line}"
        assert got.silent == want["silent"], where
        if not got.silent:
            assert got.flags == want["flags"], where
            for name in ("seq", "ack", "min_iss"):
                if want[name] is not None:
                    assert getattr(got, name) == want[name], (where, name)
        if outcome.state is not None:
            assert outcome.state == want["state"], where
            assert outcome.tcb.state == outcome.state


def test_every_cell_is_checked():
    assert len(CELLS) == 8 * 9 * 5


@pytest.mark.parametrize("flags, length, expected_kind", [
    (tcp.RST | tcp.SYN | tcp.FIN, 0, "rst"),           # RST is checked before SYN
    (tcp.SYN | tcp.FIN | tcp.ACK, 0, "syn-ack"),
    (tcp.FIN | tcp.PSH | tcp.URG, 5, "fin"),          # no ACK: dropped at the fifth check
    (0, 0, "data"),                                    # a segment with no flag at all
    (tcp.FIN | tcp.ACK, 5, "fin-ack"),                 # text and FIN
    (tcp.ACK | tcp.URG, 3, "data-ack"),
])
def test_any_flags_take_the_row_the_rfc_checks_first(flags, length, expected_kind):
    assert kind(Segment(flags, 0, length=length)) == expected_kind


def test_positions_follow_table_6_and_trim_an_overlap():
    tcb = Tcb("ESTABLISHED", rcv_nxt=1000, rcv_wnd=100)
    at = lambda seq, length=10, flags=tcp.ACK: position(tcb, Segment(flags, seq, length=length))
    assert at(995) == "at-rcv-nxt"                    # reaches into the window: trimmed
    assert at(990) == "left-of-window"                # ends at RCV.NXT: old
    assert at(1099, 0) == "right-edge" and at(1100, 0) == "beyond-window"
    assert at(1099, 10) == "right-edge"                # its first octet is in the window
    assert at(995, 0, tcp.RST) == "left-of-window"     # a RST is placed by its seq alone
    zero = Tcb("ESTABLISHED", rcv_nxt=1000, rcv_wnd=0)
    assert position(zero, Segment(tcp.ACK, 1000)) == "at-rcv-nxt"
    assert position(zero, Segment(tcp.ACK, 1000, length=1)) == "beyond-window"


def test_positions_wrap_around_the_sequence_circle():
    tcb = Tcb("ESTABLISHED", rcv_nxt=2**32 - 5, rcv_wnd=100)
    assert position(tcb, Segment(tcp.ACK, 10)) == "in-window"
    assert position(tcb, Segment(tcp.ACK, 2**32 - 20, length=10)) == "left-of-window"


def test_what_the_model_does_not_decide_it_says():
    with pytest.raises(Unmodelled, match="LISTEN"):
        segment_arrives(Tcb("LISTEN"), Segment(tcp.SYN, 0))
    established = after_setup("ESTABLISHED")
    with pytest.raises(Unmodelled, match="acknowledgment number other than SND.NXT"):
        segment_arrives(established, Segment(tcp.ACK, 1, ack=99))
    # A RST or SYN is decided before the ACK field is read: any ack will do.
    assert segment_arrives(established, Segment(tcp.RST | tcp.ACK, 1, ack=99))
