"""tcpconf explore without a lab: the generator, the model's expectations
written as cases, the records read back into findings and coverage,
shrinking and the closing summary.  (tests/test_explore_lab.py runs it.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance import tcp
from conformance.baseline import Baseline, Deviation
from conformance.blackbox import all_steps
from conformance.casefile import load_case_file
from conformance.explore.cli import draw, exit_status, render, representatives
from conformance.explore.expand import expand, segment
from conformance.explore.findings import (KNOWN, NEW, Coverage, Finding, disagreements,
                                          label_known, read_record, signature, step_owners)
from conformance.explore.sequence import (RIGHT_EDGE, SND_UNA, SPAN, Call, Inject, Sequence,
                                          sequences)
from conformance.explore.shrink import candidates
from conformance.model import segment_arrives
from conformance.model.setups import reach
from conformance.steps import Expect, OneOf, Send, Silence

ACK, PSH, RST, SYN, FIN = tcp.ACK, tcp.PSH, tcp.RST, tcp.SYN, tcp.FIN


def case_of(expansion, tmp_path: Path):
    path = tmp_path / f"{expansion.sequence.id}.yaml"
    path.write_text(yaml.safe_dump(expansion.data, sort_keys=False), encoding="utf-8")
    [case] = load_case_file(path)
    return case


def test_the_same_seed_draws_the_same_sequences_and_another_seed_others():
    first = [s for s, _ in zip(sequences(7), range(50))]
    assert first == [s for s, _ in zip(sequences(7), range(50))]
    assert first != [s for s, _ in zip(sequences(8), range(50))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_drawn_sequence_is_a_valid_case_whose_steps_each_belong_to_an_event(seed, tmp_path):
    for seq in draw(seed, 150):
        expansion = expand(seq)
        case = case_of(expansion, tmp_path)
        owners = step_owners(case, expansion)
        # Every step is some event's, and the first is the first event's.
        assert set(owners) == {s.line for s in all_steps(case.steps)}
        assert owners[case.steps[0].line] is expansion.root


def test_data_in_order_is_expected_acknowledged_with_the_models_numbers(tmp_path):
    seq = Sequence("t.data", "listener", "ESTABLISHED", (Inject(PSH | ACK, 10),))
    case = case_of(expand(seq), tmp_path)
    send, expect, state = case.steps
    assert (send.flags, send.seq.constant, send.ack.constant, send.length.constant
            if send.length else len(send.payload)) == (PSH | ACK, 1, 1, 10)
    assert (expect.flags, expect.seq.constant, expect.ack.constant) == (ACK, 1, 11)
    assert state.state == "ESTABLISHED"


def test_a_segment_at_the_windows_edge_is_written_against_the_window_the_target_offers():
    tcb = reach("listener", "ESTABLISHED")
    event = Inject(ACK, seq_from=RIGHT_EDGE, seq_off=0)
    data = expand(Sequence("t.edge", "listener", "ESTABLISHED", (event,))).data
    assert data["steps"][0]["send"]["seq"] == "snd_una + snd_wnd + 0"
    assert segment(event, tcb).seq == tcb.rcv_nxt + tcb.rcv_wnd
    # Where no connection offers a window, the same event is a plain number.
    data = expand(Sequence("t.edge", "listener", "LISTEN", (Inject(SYN, seq_from=RIGHT_EDGE),))).data
    assert isinstance(data["steps"][0]["send"]["seq"], int)


def test_each_conforming_alternative_is_followed_by_the_rest_from_its_own_tcb(tmp_path):
    # An in-window RST in TIME-WAIT: a challenge ACK (TIME-WAIT stays), or
    # RFC 1337's silence (non-conforming), or RFC 793's reset (non-conforming);
    # then an ACK.
    seq = Sequence("t.tw", "listener", "TIME-WAIT",
                   (Inject(RST, seq_off=100), Inject(ACK, seq_off=100)))
    expansion = expand(seq)
    [step] = [s for s in case_of(expansion, tmp_path).steps if isinstance(s, OneOf)]
    by_label = {a.label: a for a in step.alternatives}
    challenge = by_label["RFC 5961: challenge ACK"]
    assert challenge.conforms and any(isinstance(s, Send) for s in challenge.steps)
    for alternative in step.alternatives:
        if not alternative.conforms:
            assert not any(isinstance(s, Send) for s in alternative.steps)


def test_a_connection_reset_leaves_the_listener_to_answer_what_follows():
    seq = Sequence("t.gone", "listener", "ESTABLISHED", (Inject(RST), Inject(ACK)))
    node = expand(seq).root
    [branch] = node.branches
    assert branch.outcome.state == "CLOSED"
    assert branch.then.state == "LISTEN"
    assert branch.then.branches[0].outcome.answer.kind == "reset"


@pytest.mark.parametrize("start, events, stop", [
    ("ESTABLISHED", (Inject(PSH | ACK, 10, seq_off=100), Inject(ACK)), "held for later"),
    ("ESTABLISHED", (Call("close"), Call("close")), "holds no socket"),
    # The handshake completes, but nobody accepted the connection.
    ("SYN-RECEIVED", (Inject(ACK), Call("close")), "holds no socket"),
    # An ignored RST beyond the window, then a SYN there: the tester's view
    # starts anew at its SYN, and an answer written over snd_una would move.
    ("TIME-WAIT", (Inject(RST | ACK, seq_from=RIGHT_EDGE), Inject(SYN, seq_from=RIGHT_EDGE)),
     "re-bases the tester's SND.UNA"),
])
def test_a_branch_stops_where_the_model_cannot_go_on_honestly(start, events, stop):
    root = expand(Sequence("t.stop", "listener", start, events)).root
    assert stop in root.stops and all(b.then is None for b in root.branches)


def test_a_call_the_application_cannot_make_first_draws_no_case():
    assert expand(Sequence("t.none", "listener", "SYN-RECEIVED", (Call("abort"),))).root is None


def test_after_a_first_challenge_ack_the_next_may_be_throttled():
    tcb = reach("listener", "ESTABLISHED")
    rst = segment(Inject(RST, seq_off=100), tcb)
    first = segment_arrives(tcb, rst)
    assert [o.requirement for o in first if o.conforms] == ["RFC5961-3.2-challenge-ack"]
    after = next(o for o in first if o.conforms).tcb
    second = segment_arrives(after, segment(Inject(RST, seq_off=100), after))
    throttled = [o for o in second if o.requirement == "RFC5961-7-ack-throttling"]
    assert len(throttled) == 1 and throttled[0].conforms and throttled[0].answer.silent


def test_a_fin_with_text_after_close_is_data_lost_after_close():
    tcb = reach("listener", "FIN-WAIT-1")
    outcomes = segment_arrives(tcb, segment(Inject(FIN | PSH | ACK, 10), tcb))
    [conforming] = [o for o in outcomes if o.conforms]
    assert (conforming.requirement, conforming.answer.kind, conforming.state) == \
        ("RFC9293-SHLD-3", "reset", "CLOSED")


def test_abort_sends_a_reset_at_snd_nxt():
    root = expand(Sequence("t.abort", "listener", "ESTABLISHED", (Call("abort"),))).root
    [branch] = root.branches
    answer = branch.outcome.answer
    assert (answer.flags, answer.seq, branch.outcome.state) == (RST, 1, "CLOSED")
    assert branch.outcome.requirement == "RFC9293-3.10.5-abort-reset"


def _record(case, status, at=None, followed=(), requirement="", target="linux"):
    return {"case": case, "target": target, "family": "ipv4", "status": status, "at": at,
            "followed": list(followed), "requirement": requirement, "level": "SHOULD",
            "expected": "e", "actual": "a", "reason": "why", "follows": ""}


def test_a_deviating_record_is_a_finding_at_the_event_whose_step_decided_it(tmp_path):
    seq = Sequence("t.two", "listener", "ESTABLISHED", (Inject(ACK), Inject(ACK, seq_off=-FAR_BACK)))
    expansion = expand(seq)
    case = case_of(expansion, tmp_path)
    second_answer = [s for s in case.steps if isinstance(s, (Expect, Silence))][1]
    walk = read_record(_record("t.two", "warn", second_answer.line,
                               requirement="RFC9293-3.10.7.4-unacceptable"), case, expansion)
    f = walk.finding
    assert (f.event, f.state, f.kind, f.position) == (2, "ESTABLISHED", "ack", "left-of-window")
    assert [n.index for n, _b in walk.visited] == [0, 1]
    assert walk.visited[-1][1] is None       # deviated there


FAR_BACK = 1000


def test_a_passing_record_walks_the_path_it_followed_and_counts_coverage(tmp_path):
    seq = Sequence("t.tw", "listener", "TIME-WAIT",
                   (Inject(RST, seq_off=100), Inject(ACK, seq_off=100)))
    expansion = expand(seq)
    case = case_of(expansion, tmp_path)
    walk = read_record(_record("t.tw", "pass", followed=["RFC 5961: challenge ACK"]), case,
                       expansion)
    assert walk.finding is None and [n.state for n, _b in walk.visited] == ["TIME-WAIT"] * 2
    coverage = Coverage()
    coverage.add(walk.visited)
    assert coverage.pairs == {("TIME-WAIT", "rst"): 1, ("TIME-WAIT", "ack"): 1}
    assert ("TIME-WAIT", "rst", "TIME-WAIT") in coverage.transitions
    assert read_record(_record("t.tw", "error"), case, expansion).error == "why"


def _finding(**changes):
    base = dict(target="linux", sequence="s", events=3, event=1, state="ESTABLISHED", kind="ack",
                position="beyond-window", requirement="RFC9293-3.10.7.4-unacceptable",
                level="SHOULD", status="warn", expected="", actual="")
    return Finding(**dict(base, **changes))


def test_a_finding_is_known_where_the_baseline_lists_its_requirement_at_its_grid_cell():
    deviation = Deviation("Linux takes the edge", Path("b.yaml"), 3,
                          "RFC9293-3.10.7.4-unacceptable")
    baseline = Baseline(Path("b.yaml"), "linux",
                        {("grid.ESTABLISHED.ack.beyond-window", None): deviation})
    assert label_known(_finding(), baseline).known == KNOWN
    assert label_known(_finding(position="left-of-window"), baseline).known == NEW
    assert label_known(_finding(requirement="RFC9293-3.10.7.4-ack"), baseline).known == NEW
    # The grid has no cell for LISTEN: the requirement decides there.
    assert label_known(_finding(state="LISTEN", position="-"), baseline).known == KNOWN
    assert label_known(_finding(), None).known == NEW


def test_representatives_keep_the_shortest_sequence_of_each_finding():
    found = [_finding(sequence="b", events=3), _finding(sequence="a", events=2),
             _finding(sequence="c", events=1, kind="fin")]
    assert [f.sequence for f in representatives(found)] == ["a", "c"]


def test_shrinking_cuts_after_the_deciding_event_then_drops_earlier_ones():
    seq = Sequence("s", "listener", "ESTABLISHED", (Inject(ACK), Inject(RST), Inject(SYN),
                                                     Inject(FIN)))
    [cut] = candidates(seq, _finding(event=3, events=4), "r1")
    assert cut.events == seq.events[:3] and cut.id == "s-r1-0"
    dropped = candidates(cut, _finding(event=3, events=3), "r2")
    assert [c.events for c in dropped] == [seq.events[1:3], (seq.events[0], seq.events[2])]


def test_stacks_disagree_where_the_verdicts_differ_and_one_alone_is_named():
    signatures = {
        "a": {"linux": "conforms", "lwip": "conforms", "pytcp": "X at line 5"},
        "b": {"linux": "conforms", "lwip": "conforms", "pytcp": "conforms"},
        "c": {"linux": "X at line 5", "lwip": None, "pytcp": "conforms"},
    }
    assert disagreements(signatures) == {"sequences": 2, "alone": {"pytcp": 1}}
    assert signature(_record("a", "error")) is None
    assert signature(_record("a", "info", 7, requirement="R")) == "R at line 7"


def test_the_summary_ends_with_the_throughput_and_the_status_follows_new_findings():
    summary = {"targets": ["linux"], "count": 10, "wall_seconds": 2.0,
               "sequences_per_second": 5.0, "disagreements": {"sequences": 0, "alone": {}},
               "coverage": {"linux": {"pairs": 3, "pairs_total": 106, "grid_cells": 2,
                                      "grid_cells_total": 360, "transitions": 4}},
               "errors": {"linux": {}},
               "findings": [dict(vars(_finding()), case_file="findings/x.yaml",
                                 reproduced=True, known=KNOWN)]}
    text = render(summary)
    assert "1 distinct findings (0 new, 1 known)" in text
    assert text.splitlines()[-1].endswith("5.0 sequences/s")
    assert exit_status(summary) == 0
    summary["findings"][0]["known"] = NEW
    assert exit_status(summary) == 0          # a SHOULD: it warns, as in a sweep
    summary["findings"][0]["status"] = "fail"
    assert exit_status(summary) == 1
    summary["findings"][0]["reproduced"] = False
    summary["errors"]["linux"] = {"a reason": 1}
    assert exit_status(summary) == 3


def test_span_offsets_end_the_segment_exactly_where_they_are_measured_from():
    event = Inject(FIN | ACK, 10, seq_off=SPAN, ack_from=SND_UNA)
    assert event.offset == -11
