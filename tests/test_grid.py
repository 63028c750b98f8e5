"""The state-event grid: its table expands as written, bad tables are clear
errors, and every cell can fail against a target altered to answer otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.baseline import load_baseline
from conformance.case import CaseError
from conformance.casefile import load_case_file
from conformance.grid import DEFAULT_GRID, grid_cells, render
from conformance.seq import seq_add
from conformance.verdict import FAIL, PASS

REPO = Path(__file__).resolve().parents[1]
CELLS = grid_cells()
BASELINE = load_baseline(REPO / "baselines" / "linux.yaml")


def test_grid_has_every_state_segment_and_position():
    """8 synchronized states x 9 segments x 5 positions, each cell once."""
    assert len(CELLS) == 8 * 9 * 5
    assert len({cell.case.id for cell in CELLS}) == len(CELLS)
    assert {cell.state for cell in CELLS} == {
        "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
        "LAST-ACK", "TIME-WAIT"}


def test_cell_is_an_ordinary_case_located_at_its_rule():
    """A cell is a case whose line is the rule that decided it, with that rule's requirement."""
    cell = next(c for c in CELLS if c.case.id == "grid.ESTABLISHED.rst.in-window")
    lines = DEFAULT_GRID.read_text().splitlines()
    assert "segment: [rst, rst-ack]}" in lines[cell.line - 1]
    assert cell.case.line == cell.line
    assert cell.case.primary.id == "RFC5961-3.2-challenge-ack"
    assert cell.case.start == "ESTABLISHED" and "grid" in cell.case.marks


def test_collected_like_a_case_file():
    """load_case_file expands the grid document into the same cases."""
    ids = [case.id for case in load_case_file(DEFAULT_GRID)]
    assert ids == [cell.case.id for cell in CELLS]


def test_render_shows_every_cell():
    """The printed grid has a row per state and segment."""
    text = render(CELLS)
    assert len(text.splitlines()) == 1 + 8 * 9
    assert "none>LISTEN" in text


def _table(edit) -> str:
    data = yaml.safe_load(DEFAULT_GRID.read_text())
    edit(data["grid"])
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("edit,field,words", [
    (lambda g: g["rules"][0].update(answer="shrug"), "grid.rules[0].answer", "expected one of"),
    (lambda g: g["rules"][0]["when"].update(state="ESTABLISHD"), "grid.rules[0].when.state",
     "got 'ESTABLISHD'"),
    (lambda g: g["rules"][0].update(then="OPEN"), "grid.rules[0].then",
     "expected a state name or 'same'"),
    (lambda g: g["rules"][0].update(requirement="RFC0-x"), "grid.rules[0].requirement",
     "expected a requirement id of requirements.yaml; got 'RFC0-x'"),
    (lambda g: g["rules"][1]["one_of"][1].update(requirement="RFC9293-MAY-22"),
     "grid.rules[1].one_of[1].requirement", "the nearest: "),
    (lambda g: g["rules"][1]["one_of"][1].update(then="SYN-RECEIVED"),
     "grid.rules[1].one_of[1].then", "answer 'reopen' checks the state itself"),
    (lambda g: g["rules"][1]["one_of"][0].pop("then"), "grid.rules[1].one_of[0]",
     "expected then: answer 'ack' does not check the state"),
    (lambda g: g["rules"].pop(), "grid.rules", "no rule decides the cell"),
    (lambda g: g["rules"].insert(0, {"when": {}, "requirement": "RFC9293-3.10.7.4-ack",
                                     "answer": "nothing", "then": "same"}),
     "grid.rules[1]", "decides no cell"),
    (lambda g: g.update(colour="blue"), "grid.colour", "unknown field"),
])
def test_bad_table_is_one_clear_error(tmp_path, edit, field, words):
    """A mistake in the table names the file, the line and the field."""
    path = tmp_path / "grid.yaml"
    path.write_text(_table(edit))
    with pytest.raises(CaseError) as caught:
        load_case_file(path)
    error = caught.value
    assert error.field == field and words in error.message, str(error)
    assert error.line and str(path) in str(error)


# -- every cell can fail ----------------------------------------------------------
#
# The alterations, tried in turn until the cell fails.  Each rewrites or drops
# the one segment the cell injects (all later segments from the tester's port),
# standing in for a stack that ignores it, resets on it, or answers it:

def _drop(run) -> str:
    return f"tcp sport {run.tester_port} drop"


def _reset(run) -> str:
    # a RST exactly at the target's RCV.NXT: the connection ends
    return f"tcp sport {run.tester_port} tcp flags set rst tcp sequence set {run.conn.snd_nxt}"


def _syn(run) -> str:
    # a SYN far outside the window: every state answers it
    far = seq_add(run.conn.snd_nxt, 1 << 30)
    return f"tcp sport {run.tester_port} tcp flags set syn tcp sequence set {far}"


ALTERATIONS = {"drop": _drop, "reset": _reset, "syn": _syn}


@pytest.mark.parametrize("cell", CELLS, ids=[cell.case.id for cell in CELLS])
def test_every_cell_can_fail(linux, cell):
    """Against a target altered to drop, reset on, or answer the cell's segment, the
    cell fails; unaltered, it passes unless the Linux baseline lists it."""
    outcomes = {}
    try:
        for name, rule in ALTERATIONS.items():
            linux.engine.after_setup = lambda run, rule=rule: linux.target.add_nft_rule(
                "in", rule(run))
            verdict = linux.run(cell.case)
            linux.target.clear_alterations()
            outcomes[name] = verdict.outcome
            if verdict.outcome == FAIL:
                break
    finally:
        linux.engine.after_setup = None
    assert FAIL in outcomes.values(), f"{cell.case.id} passed every alteration: {outcomes}"
    unaltered = linux.run(cell.case)
    expected = FAIL if BASELINE.lookup(cell.case.id, "ipv4") else PASS
    assert unaltered.outcome == expected, unaltered.explain()
