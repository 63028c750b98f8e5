"""A case run's evidence as typed events (conformance.evidence): the one
formatter, and results.json's form of the events, without a lab."""

from __future__ import annotations

import json

import pytest

from conformance import tcp
from conformance.connection import Connection
from conformance.evidence import (
    AppEvent,
    NoteEvent,
    SegmentEvent,
    StateEvent,
    describe,
    from_json,
    render_ladder,
    states_checked,
    tag,
    to_json,
)
from conformance.stream import segment_event

ISS, IRS = 1000, 5000


def syn_ack(time=10.0, options=(("mss", 1460), ("timestamp", (7, 1))), **more):
    return SegmentEvent(time, tcp.IN, tcp.SYN | tcp.ACK, IRS, ISS + 1, 0, 1, 65160,
                        options=options, **more)


EVENTS = [
    SegmentEvent(9.999, tcp.OUT, tcp.SYN, ISS, 0, 0, None, 64240),
    syn_ack(mark="setup"),
    AppEvent(10.002, "accept", "ok"),
    StateEvent(10.003, "ESTABLISHED", "ESTABLISHED", holds=True),
    StateEvent(10.004, "CLOSE-WAIT", "ESTABLISHED", holds=False),
    StateEvent(10.005, "FIN-WAIT-2", reason="the stack shows no states"),
    NoteEvent(10.006, "wire probe for state CLOSED", mark="probe"),
]


# --- the formatter ---------------------------------------------------------------

def test_a_segment_reads_as_engineers_write_it():
    assert describe(syn_ack()) == "SYN+ACK seq=0 ack=1 win=65160 <mss 1460,timestamp 7/1>"
    assert describe(syn_ack(connection="b", checksum_ok=False)).startswith("[b] SYN+ACK")
    assert describe(syn_ack(checksum_ok=False)).endswith("(bad checksum)")


def test_numbers_relative_to_an_unknown_isn_are_shown_absolute():
    event = SegmentEvent(1.0, tcp.IN, tcp.RST | tcp.ACK, 77, ISS + 1, None, 1, 0)
    assert describe(event) == "RST+ACK seq=77 ack=1 win=0"


def test_ack_is_left_out_without_the_flag_unless_the_field_is_set():
    assert "ack=" not in describe(SegmentEvent(1.0, tcp.IN, tcp.RST, 7, 0, 3, 0, 0))
    assert "ack=9" in describe(SegmentEvent(1.0, tcp.IN, tcp.RST, 7, 9, 3, 9, 0))


@pytest.mark.parametrize("event, text, marked", [
    (StateEvent(0, "ESTABLISHED", "ESTABLISHED", holds=True), "ESTABLISHED", ""),
    (StateEvent(0, "CLOSE-WAIT", "ESTABLISHED", holds=False), "ESTABLISHED",
     "expected CLOSE-WAIT"),
    (StateEvent(0, "FIN-WAIT-2", reason="hidden"), "FIN-WAIT-2? not observable", "hidden"),
    (AppEvent(0, "recv", "EOF"), "recv -> EOF", ""),
    (NoteEvent(0, "a probe", mark="probe"), "a probe", "probe"),
])
def test_each_kind_has_its_line_and_tag(event, text, marked):
    assert (describe(event), tag(event)) == (text, marked)


def test_the_text_ladder_puts_the_tester_left_and_times_in_ms():
    lines = render_ladder(EVENTS)
    assert lines[0].split() == ["ms", "tester", "target"]
    assert lines[1].split()[:3] == ["0.000", "-->", "SYN"]
    assert "<-- SYN+ACK seq=0 ack=1" in lines[2] and lines[2].endswith("[setup]")
    assert lines[3].split()[0] == "3.000" and lines[3].endswith("| app: accept -> ok")
    assert lines[5].endswith("| state: ESTABLISHED  [expected CLOSE-WAIT]")
    assert render_ladder([]) == ["(nothing happened)"]


def test_states_checked_are_the_expected_ones_once_each():
    assert states_checked(EVENTS + EVENTS) == ["ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-2"]


# --- a captured segment as an event -----------------------------------------------

def test_a_captured_segment_is_numbered_from_each_isn():
    conn = Connection.opening(ISS)
    conn.irs = IRS
    answer = tcp.Segment(tcp.IN, 1.0, "b", "a", 80, 40000, IRS + 1, ISS + 6, tcp.ACK, 509,
                         payload=b"abc")
    event = segment_event(answer, conn, "b", mark="setup")
    assert (event.seq, event.ack, event.rel_seq, event.rel_ack) == (IRS + 1, ISS + 6, 1, 6)
    assert (event.length, event.connection, event.mark) == (3, "b", "setup")
    syn = tcp.Segment(tcp.IN, 1.0, "b", "a", 80, 40000, 42, ISS + 1, tcp.SYN | tcp.ACK, 509)
    assert segment_event(syn, Connection.opening(ISS)).rel_seq == 0   # its own ISN


# --- results.json ------------------------------------------------------------------------

def test_events_go_through_json_unchanged_but_for_time():
    items = json.loads(json.dumps(to_json(EVENTS)))
    assert items[0]["t"] == 0 and items[1]["flags"] == ["SYN", "ACK"]
    assert items[1]["options"] == [["mss", 1460], ["timestamp", [7, 1]]]
    back = from_json(items)
    assert [describe(e) for e in back] == [describe(e) for e in EVENTS]
    assert [tag(e) for e in back] == [tag(e) for e in EVENTS]
    assert back[1].time == pytest.approx(0.001)


def test_unknown_option_octets_survive_json():
    event = syn_ack(options=(("kind-30", b"\x01\xff"),))
    (back,) = from_json(json.loads(json.dumps(to_json([event]))))
    assert back.options == (("kind-30", b"\x01\xff"),)
    assert describe(back).endswith("<kind-30 01ff>")


@pytest.mark.parametrize("item, words", [
    ({"kind": "note", "text": "x", "mark": ""}, "'t' must be a number"),
    ({"t": -1, "kind": "note", "text": "x", "mark": ""}, "'t' must be a number"),
    ({"t": float("nan"), "kind": "note", "text": "x", "mark": ""}, "'t' must be a number"),
    ({"t": 0, "kind": "packet"}, "'kind' must be one of segment, app, state, note"),
    ({"t": 0, "kind": "app", "call": "close"}, r"\(app\): 'result' must be a string"),
    ({"t": 0, "kind": "state", "expected": "CLOSED", "observed": None, "holds": "yes",
      "reason": ""}, r"'holds' must be true, false or null"),
])
def test_a_bad_event_is_named_by_its_index_and_field(item, words):
    good = {"t": 0, "kind": "note", "text": "fine", "mark": ""}
    with pytest.raises(ValueError, match=rf"ladder event 1\b.*{words}"):
        from_json([good, item])


def test_a_segment_with_a_bad_direction_or_flag_is_refused():
    (item,) = to_json([syn_ack()])
    with pytest.raises(ValueError, match="'direction' must be 'out' or 'in'"):
        from_json([dict(item, direction="up")])
    with pytest.raises(ValueError, match="'flags': not a TCP flag: 'SYNACK'"):
        from_json([dict(item, flags=["SYNACK"])])
