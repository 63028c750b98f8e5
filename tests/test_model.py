"""The reference model (conformance.model) against the state-event grid, cell
by cell: from the numbers the suite's setups reach, the concrete segment a
cell sends is classified into the cell's own kind and position, and every
answer the model computes (flags, seq, ack, the state that follows, the
requirement, whether it conforms) is the one the cell's case expects, its
expressions evaluated as the tester evaluates them.  Pure: no lab."""

from __future__ import annotations

import pytest

from conformance import CATALOGUE, tcp
from conformance.casefile import load_case_file
from conformance.grid import grid_cells
from conformance.model import Segment, Tcb, Unmodelled, kind, position, segment_arrives
from conformance.case import load_setups
from conformance.model.setups import after_setup, reach, setup_tcb
from conformance.model.tcb import SYNCHRONIZED
from conformance.seq import seq_add, seq_gt, seq_le
from conformance.steps import App, Expect, OneOf, Send, Silence, StateCheck, Wait

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
    # Without seq, the tester sends at its SND.NXT; without ack, with ACK, at
    # its RCV.NXT (connection.Connection.send_numbers).
    seq = send.seq.evaluate(view) % 2**32 if send.seq is not None else view["snd_nxt"]
    length = len(send.payload) or (send.length.evaluate(view) if send.length else 0)
    ack = (send.ack.evaluate(view) % 2**32 if send.ack is not None
           else tcb.snd_nxt if send.flags & tcp.ACK else 0)
    seg = Segment(send.flags, seq, ack=ack, length=length)
    after = dict(view)
    end = seq_add(seq, length + bool(send.flags & tcp.FIN))
    if send.flags & tcp.SYN and tcb.state not in SYNCHRONIZED:
        after["snd_nxt"] = seq_add(end, 1)        # a SYN opening: its ISN, and its SYN
    elif not send.flags & tcp.SYN and seq_le(seq, view["snd_nxt"]) \
            and seq_gt(end, view["snd_nxt"]):
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


def test_a_syn_in_syn_sent_is_a_simultaneous_open_and_neither_syn_nor_rst_is_dropped():
    """3.10.7.3: "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
    <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"; "Fifth, if neither of the SYN or
    RST bits is set, then drop the segment and return"."""
    syn_sent = setup_tcb("client", "SYN-SENT")
    [crossed] = segment_arrives(syn_sent, Segment(tcp.SYN, 5000))
    answer = crossed.answer
    assert (answer.flags, answer.seq, answer.ack) == (tcp.SYN | tcp.ACK, syn_sent.iss, 5001)
    assert (crossed.state, crossed.tcb.snd_una, crossed.tcb.rcv_nxt) == \
        ("SYN-RECEIVED", syn_sent.iss, 5001)
    [dropped] = segment_arrives(syn_sent, Segment(tcp.ACK, 5000, ack=syn_sent.snd_nxt))
    assert dropped.answer.silent and dropped.requirement == "RFC9293-3.10.7.3-syn-sent-neither"

def test_syn_received_from_an_active_open_is_refused_by_a_rst_and_challenges_a_syn():
    """3.10.7.4, SYN-RECEIVED: "If this connection was initiated with an
    active OPEN (i.e., came from SYN-SENT state), then the connection was
    refused ... enter the CLOSED state"; a SYN there is not the passive
    OPEN's return to LISTEN ("Otherwise, handle per the directions for
    synchronized states below")."""
    syn_sent = setup_tcb("client", "SYN-SENT")
    [crossed] = segment_arrives(syn_sent, Segment(tcp.SYN, 5000))
    active = crossed.tcb
    assert active.active_open
    [refused] = segment_arrives(active, Segment(tcp.RST, 5001))
    assert (refused.requirement, refused.state, refused.answer.silent) == \
        ("RFC9293-3.10.7.4-rst-syn-received-active", "CLOSED", True)
    challenged = segment_arrives(active, Segment(tcp.SYN, 5001))
    assert [(o.conforms, o.answer.kind, o.state) for o in challenged] == \
        [(True, "ack", "SYN-RECEIVED"), (False, "reset", "CLOSED")]
    assert challenged[0].requirement == "RFC5961-4.2-syn-challenge-ack"
    # A passive OPEN's SYN-RECEIVED returns to LISTEN, as before.
    passive = setup_tcb("listener", "SYN-RECEIVED")
    [to_listen] = segment_arrives(passive, Segment(tcp.RST, passive.rcv_nxt))
    assert to_listen.state == "LISTEN"



def test_what_the_model_does_not_decide_it_says():
    with pytest.raises(Unmodelled, match="not modelled yet"):
        segment_arrives(Tcb("SYN-RECEIVED-AS-CLIENT"), Segment(tcp.SYN, 0))


def test_an_ack_of_part_of_what_was_sent_moves_snd_una_not_the_state():
    """FIN-WAIT-1 with ten octets and the FIN unacknowledged: an ACK of five
    moves SND.UNA; only an ACK of the FIN leads to FIN-WAIT-2."""
    fin_wait_1 = Tcb("FIN-WAIT-1", snd_una=1, snd_nxt=12, rcv_nxt=1)
    [part] = segment_arrives(fin_wait_1, Segment(tcp.ACK, 1, ack=6))
    assert (part.state, part.tcb.snd_una) == ("FIN-WAIT-1", 6)
    [whole] = segment_arrives(fin_wait_1, Segment(tcp.ACK, 1, ack=12))
    assert (whole.state, whole.tcb.snd_una) == ("FIN-WAIT-2", 12)


def test_setups_walk_across_the_end_of_the_sequence_space():
    tcb = reach("listener", "TIME-WAIT", iss=2**32 - 1, irs=2**32 - 2)
    assert (tcb.state, tcb.snd_nxt, tcb.rcv_nxt) == ("TIME-WAIT", 1, 0)


@pytest.mark.parametrize("role, start", sorted(load_setups()))
def test_the_model_walks_every_setup_as_setups_yaml_writes_it(role, start):
    """Each setup's segments, calls, expected answers and state checks, run
    through the model, reach the setup's state: the TCBs the model starts
    the cases from are the setups' own."""
    assert reach(role, start).state == start


def test_a_fin_crossing_ours_leads_to_closing_as_the_setup_expects():
    """setups.yaml's CLOSING: in FIN-WAIT-1, a FIN+ACK that does not acknowledge
    our FIN (ack = SND.UNA) is acknowledged, and the state is CLOSING."""
    [outcome] = segment_arrives(after_setup("FIN-WAIT-1"), Segment(tcp.FIN | tcp.ACK, 1, ack=1))
    assert (outcome.answer.flags, outcome.answer.seq, outcome.answer.ack) == (tcp.ACK, 2, 2)
    assert outcome.state == "CLOSING" and outcome.tcb == after_setup("CLOSING")


def test_a_bad_ack_in_syn_received_draws_a_reset_at_its_ack():
    [outcome] = segment_arrives(after_setup("SYN-RECEIVED"), Segment(tcp.ACK, 1, ack=77))
    assert (outcome.requirement, outcome.answer.flags, outcome.answer.seq) == \
        ("RFC9293-3.10.7.4-syn-received-bad-ack", tcp.RST, 77)
    assert outcome.state == "SYN-RECEIVED"


# -- CLOSED, LISTEN, SYN-SENT: RFC 9293 3.10.7.1 to 3.10.7.3, sentence by sentence ----------

SYN_SENT = setup_tcb("client", "SYN-SENT")        # ISS 0, SND.NXT 1


@pytest.mark.parametrize("tcb, seg, requirement, answer, state", [
    # "An incoming segment containing a RST is discarded."
    (Tcb("CLOSED"), Segment(tcp.RST, 5), "RFC9293-3.10.7.1-closed-rst", (None, None, None),
     "CLOSED"),
    # "If the ACK bit is off, ... <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>" (SYN and FIN count)
    (Tcb("CLOSED"), Segment(tcp.SYN | tcp.FIN, 5, length=3), "RFC9293-3.10.7.1-closed-no-ack",
     (tcp.RST | tcp.ACK, 0, 10), "CLOSED"),
    # "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>"
    (Tcb("CLOSED"), Segment(tcp.ACK, 5, ack=77), "RFC9293-3.10.7.1-closed-ack",
     (tcp.RST, 77, None), "CLOSED"),
    # LISTEN: "An incoming RST should be ignored", even with SYN.
    (Tcb("LISTEN"), Segment(tcp.RST | tcp.SYN, 5), "RFC9293-3.10.7.2-listen-rst",
     (None, None, None), "LISTEN"),
    # "... for any arriving ACK-bearing segment ... <SEQ=SEG.ACK><CTL=RST>", a SYN-ACK too.
    (Tcb("LISTEN"), Segment(tcp.SYN | tcp.ACK, 5, ack=9), "RFC9293-3.10.7.2-listen-ack",
     (tcp.RST, 9, None), "LISTEN"),
    # "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>": the ISS is the target's to choose.
    (Tcb("LISTEN"), Segment(tcp.SYN, 5), "RFC9293-3.10.7.2-listen-syn",
     (tcp.SYN | tcp.ACK, None, 6), "SYN-RECEIVED"),
    # "... any other control or text should be queued": RCV.NXT is SEG.SEQ+1.
    (Tcb("LISTEN"), Segment(tcp.SYN, 5, length=4), "RFC9293-3.10.7.2-listen-syn-text",
     (tcp.SYN | tcp.ACK, None, 6), "SYN-RECEIVED"),
    (Tcb("LISTEN"), Segment(tcp.FIN, 5), "RFC9293-3.10.7.2-listen-other", (None, None, None),
     "LISTEN"),
    # SYN-SENT: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set)"
    (SYN_SENT, Segment(tcp.SYN | tcp.ACK, 5, ack=0), "RFC9293-3.10.7.3-syn-sent-bad-ack",
     (tcp.RST, 0, None), "SYN-SENT"),
    (SYN_SENT, Segment(tcp.RST | tcp.ACK, 5, ack=2), "RFC9293-3.10.7.3-syn-sent-bad-ack",
     (None, None, None), "SYN-SENT"),
    (SYN_SENT, Segment(tcp.RST | tcp.ACK, 5, ack=1), "RFC9293-3.10.7.3-syn-sent-rst-ack",
     (None, None, None), "CLOSED"),
    (SYN_SENT, Segment(tcp.RST, 5), "RFC9293-3.10.7.3-syn-sent-rst-no-ack", (None, None, None),
     "SYN-SENT"),
    # "... ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"
    (SYN_SENT, Segment(tcp.SYN | tcp.ACK, 5, ack=1), "RFC9293-3.10.7.3-syn-sent-synack",
     (tcp.ACK, 1, 6), "ESTABLISHED"),
])
def test_the_unsynchronized_states_follow_the_rfc(tcb, seg, requirement, answer, state):
    [outcome] = segment_arrives(tcb, seg)
    assert outcome.requirement == requirement and outcome.conforms
    assert (outcome.answer.flags, outcome.answer.seq, outcome.answer.ack) == answer
    assert outcome.state == state


# -- the hand-written cases the model covers --------------------------------------------

def first_exchange(case):
    """The case's first segment and the answers it allows to it, if the model
    can judge them: a case from a setup whose TCB the model knows (setup_tcb),
    with the settings the model assumes (no sysctls or socket options: they
    change windows and rates), whose first step sends a segment with no
    options."""
    if setup_tcb(case.role, case.start) is None or case.sysctls or case.sockopts \
            or case.middlebox or len(case.steps) < 2:
        return None
    send, answer = case.steps[0], case.steps[1]
    if not isinstance(send, Send) or send.options or send.raw_options or send.bad_checksum \
            or send.conn != "a" or not isinstance(answer, (Expect, Silence, OneOf)):
        return None
    if isinstance(answer, OneOf):
        return send, [(a.label, a.conforms, until_next_event(a.steps))
                      for a in answer.alternatives]
    return send, [("", True, until_next_event(case.steps[1:]))]


def until_next_event(steps):
    """The answer to one segment: the steps up to the next event (a segment
    sent, an application call, a wait)."""
    out = []
    for step in steps:
        if isinstance(step, (Send, App, Wait)):
            break
        out.append(step)
    return out


HAND_WRITTEN = [case for path in sorted(CATALOGUE.rglob("*.yaml")) if "grid" not in path.parts
                for case in load_case_file(path) if first_exchange(case)]


def as_answer(silent, flags, ack, state):
    return (silent, None if silent else flags, None if silent else ack, state)


@pytest.mark.parametrize("case", HAND_WRITTEN, ids=lambda c: c.id)
def test_the_model_agrees_with_the_first_exchange_of_a_hand_written_case(case):
    """Every answer the case takes as conforming is one the model allows, and
    every answer it marks as breaking a requirement is none the model allows."""
    send, allowed = first_exchange(case)
    tcb = setup_tcb(case.role, case.start)
    seg, view = sent(send, tcb)
    outcomes = segment_arrives(tcb, seg)
    model = {True: [], False: []}
    for o in outcomes:
        model[o.conforms].append(as_answer(o.answer.silent, o.answer.flags, o.answer.ack,
                                           o.state))
    for label, conforms, steps in allowed:
        want = expected(steps, view)
        answer = as_answer(want["silent"], want.get("flags"), want.get("ack"), want["state"])
        found = [m for m in model[True] if matches(m, answer)]
        where = f"{case.id} at {case.path}:{case.line} ({label or 'its answer'}): {answer}"
        if conforms:
            assert found, f"{where} is not among the model's conforming answers {model[True]}"
        else:
            assert not found, f"{where} breaks a requirement, the model allows it"


def matches(model_answer, case_answer) -> bool:
    """The case's answer fixes what it writes: ack and state only when given."""
    return all(want is None or got == want or (i == 1 and got & want == want)
               for i, (got, want) in enumerate(zip(model_answer, case_answer)))


def test_the_hand_written_cases_covered():
    assert len(HAND_WRITTEN) >= 41, [case.id for case in HAND_WRITTEN]
