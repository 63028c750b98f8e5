"""The ladder drawn to time as SVG (conformance.report.ladder, timescale and
timeline)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conformance import tcp
from conformance.evidence import (AppEvent, DeviceEvent, NoteEvent, SegmentEvent, SilenceEvent,
                                  StateEvent, from_json, to_json,
                                  describe)
from conformance.report.ladder import CHAR_PX, ladder_svg
from conformance.report.timeline import state_timeline
from conformance.report.timescale import (
    GAP_CAP_MS,
    MIN_SPACING_PX,
    PX_PER_MS,
    gap_label,
    time_label,
)

SVG = "{http://www.w3.org/2000/svg}"


def seg(t, direction, flags="ACK", seq=1, ack=1, win=502, mark="", **more):
    """A segment event; seq and ack as the ladder shows them (relative)."""
    return SegmentEvent(t, direction, tcp.flag_bits(flags.split("+")), seq, ack, seq, ack, win,
                        mark=mark, **more)


def app(t, call, result="ok"):
    return AppEvent(t, call, result)


def state(t, expected, observed=None):
    """A state check that found `observed` (the expected state unless given)."""
    observed = observed or expected
    return StateEvent(t, expected, observed, holds=observed == expected)


def unobservable(t, expected, reason=""):
    return StateEvent(t, expected, reason=reason)


def note(t, text):
    return NoteEvent(t, text)


OPTIONS = (("mss", 1460), ("sack_ok", True), ("timestamp", (1, 0)), ("wscale", 7))
HANDSHAKE = [
    seg(0.0, "out", "SYN", seq=0, ack=0, win=64240, mark="setup", options=OPTIONS),
    seg(0.000412, "in", "SYN+ACK", seq=0, ack=1, win=65160, mark="setup", options=OPTIONS),
    seg(0.00052, "out", "ACK", mark="setup"),
    app(0.0012, "accept"),
    state(0.0013, "ESTABLISHED"),
    seg(0.0021, "out", "PSH+ACK", length=5),
    seg(0.2025, "in", "ACK", ack=6, win=509),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def groups(root: ET.Element, *wanted: str) -> list[ET.Element]:
    """The <g> elements carrying all the `wanted` classes, in document order."""
    return [g for g in root.iter(f"{SVG}g") if set(wanted) <= classes(g)]


def text_of(element: ET.Element) -> str:
    """The text drawn (an event's <title>, shown on hover, is not)."""
    out = element.text or "" if element.tag != f"{SVG}title" else ""
    for child in element:
        if child.tag != f"{SVG}title":
            out += text_of(child)
        out += child.tail or ""
    return out


def ys(root: ET.Element) -> list[tuple[float, float]]:
    """(t, y) of every event, in document order."""
    return [(float(g.get("data-t")), float(g.get("data-y")))
            for g in root.iter(f"{SVG}g") if g.get("data-y") is not None]


def y_of(root: ET.Element, t: float) -> float:
    return next(y for when, y in ys(root) if when == t)


# --- the SVG element ---------------------------------------------------------------

def test_parses_by_itself():
    """The SVG is well-formed XML by itself, with no declaration before it."""
    svg = ladder_svg(HANDSHAKE)
    assert svg.startswith("<svg ")
    assert parse(svg).tag == f"{SVG}svg"


def test_scales_and_is_labelled():
    """viewBox, width and height, a <title>, role="img" and an aria-label."""
    root = parse(ladder_svg(HANDSHAKE, tester="scapy", target="linux"))
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert width > 0 and height > 0
    assert root.get("role") == "img"
    assert "scapy" in root.get("aria-label") and "linux" in root.get("aria-label")
    assert "linux" in root.find(f"{SVG}title").text


def test_lifelines_are_named():
    """The tester's name at the top of the left lifeline, the target's at the right."""
    root = parse(ladder_svg(HANDSHAKE, tester="scapy", target="freebsd"))
    names = {text_of(t): float(t.get("x")) for t in root.iter(f"{SVG}text")
             if "name" in classes(t)}
    assert names["scapy"] < names["freebsd"]


def test_legend_states_the_scale():
    """A one-line legend under the diagram gives px per ms and the gap cap."""
    root = parse(ladder_svg(HANDSHAKE))
    legend = next(t for t in root.iter(f"{SVG}text") if "legend" in classes(t))
    assert f"{PX_PER_MS:g} px per ms" in text_of(legend)
    assert f"gaps over {GAP_CAP_MS} ms cut" in text_of(legend)


def test_empty_ladder():
    """No entries: a small SVG that says nothing happened."""
    svg = ladder_svg([])
    root = parse(svg)
    assert "nothing happened" in text_of(root)
    assert float(root.get("height")) < 100
    assert not groups(root, "seg")


# --- segments ------------------------------------------------------------------

def test_one_arrow_per_segment():
    """N segment entries give N arrows, out and in told apart by class."""
    root = parse(ladder_svg(HANDSHAKE))
    assert len(groups(root, "seg")) == 5
    assert len(groups(root, "seg", "out")) == 3
    assert len(groups(root, "seg", "in")) == 2


@pytest.mark.parametrize("direction", ["out", "in"])
def test_arrow_points_the_right_way(direction):
    """out goes tester -> target (head on the right), in the other way; both slant down."""
    root = parse(ladder_svg([seg(0, direction)]))
    (arrow,) = groups(root, "seg", direction)
    line = arrow.find(f"{SVG}line")
    x1, x2 = float(line.get("x1")), float(line.get("x2"))
    y1, y2 = float(line.get("y1")), float(line.get("y2"))
    assert (x2 > x1) if direction == "out" else (x2 < x1)
    assert y2 > y1
    tip = arrow.find(f"{SVG}polygon").get("points").split()[0]
    assert float(tip.split(",")[0]) == x2


def test_label_above_arrow():
    """The segment's text is written above its arrow."""
    root = parse(ladder_svg([seg(0, "out", "FIN+ACK")]))
    (arrow,) = groups(root, "seg")
    label = arrow.find(f"{SVG}text")
    assert text_of(label) == "FIN+ACK seq=1 ack=1 win=502"
    assert float(label.get("y")) < float(arrow.find(f"{SVG}line").get("y1"))


def test_lifelines_far_enough_apart_for_the_longest_label():
    """A label of over 90 characters fits between the lifelines."""
    event = seg(0, "out", "SYN+ACK", seq=0, win=65160, connection="c2",
                options=OPTIONS + (("kind-30", bytes(range(12))),))
    assert len(describe(event)) > 90
    root = parse(ladder_svg([event]))
    line = groups(root, "seg")[0].find(f"{SVG}line")
    assert float(line.get("x2")) - float(line.get("x1")) >= len(describe(event)) * CHAR_PX


def test_retransmission_is_dashed():
    """A retransmission's arrow is dashed and tagged; a plain one is solid."""
    root = parse(ladder_svg([seg(0, "in", mark="retransmission"), seg(1, "in")]))
    resent, plain = groups(root, "seg")
    assert "retransmission" in classes(resent)
    assert resent.find(f"{SVG}line").get("stroke-dasharray")
    assert "[retransmission]" in text_of(resent)
    assert plain.find(f"{SVG}line").get("stroke-dasharray") is None


@pytest.mark.parametrize("mark, cls, tag", [
    ("bad checksum", "bad-checksum", "bad checksum"),
    ("setup", "setup", "setup"),
    ("unexamined", "unexamined", "unexamined"),
])
def test_marks_have_their_class_colour_and_tag(mark, cls, tag):
    """Each mark has its class, a colour of its own and a tag in the label."""
    root = parse(ladder_svg([seg(0, "out", mark=mark), seg(0.001, "out")]))
    marked, plain = groups(root, "seg")
    assert cls in classes(marked)
    assert tag in text_of(marked.find(f"{SVG}text"))
    colour = marked.find(f"{SVG}line").get("stroke")
    assert colour != plain.find(f"{SVG}line").get("stroke")


# --- the time scale ----------------------------------------------------------------

def test_y_never_decreases_with_time():
    """Events are drawn in time order, even when given out of order."""
    entries = [seg(0.5, "in"), seg(0.0, "out"), state(0.2, "ESTABLISHED"), app(0.2, "accept"),
               note(0.0001, "a note"), seg(61.0, "out"), seg(0.3, "in")]
    placed = sorted(ys(parse(ladder_svg(entries))))
    assert len(placed) == len(entries)
    assert all(a[1] <= b[1] for a, b in zip(placed, placed[1:]))


def test_close_events_keep_the_minimum_spacing():
    """Two events 0.01 ms apart are still MIN_SPACING_PX apart."""
    root = parse(ladder_svg([seg(0.0, "out"), seg(0.00001, "in")]))
    assert y_of(root, 0.00001) - y_of(root, 0.0) >= MIN_SPACING_PX


def test_spacing_is_proportional_to_time():
    """An event 100 ms after another is further below than one 10 ms after."""
    ten = parse(ladder_svg([seg(0.0, "out"), seg(0.010, "in")]))
    hundred = parse(ladder_svg([seg(0.0, "out"), seg(0.100, "in")]))
    assert y_of(hundred, 0.1) - y_of(hundred, 0.0) > y_of(ten, 0.01) - y_of(ten, 0.0)
    assert y_of(hundred, 0.1) - y_of(hundred, 0.0) == pytest.approx(100 * PX_PER_MS)


def test_long_gap_is_cut_and_labelled():
    """A 60 s gap is drawn short, with a break mark saying +60 s."""
    entries = [seg(0.0, "out"), state(0.001, "TIME-WAIT"), state(60.001, "CLOSED")]
    root = parse(ladder_svg(entries))
    (cut,) = groups(root, "break")
    assert "+60 s" in text_of(cut)
    assert cut.findall(f"{SVG}polyline")            # the zig-zag on the lifelines
    assert float(root.get("height")) < 400
    assert y_of(root, 60.001) - y_of(root, 0.001) < GAP_CAP_MS * PX_PER_MS


def test_gap_at_the_cap_is_not_cut():
    """A gap of exactly GAP_CAP_MS is drawn to scale, with no break."""
    root = parse(ladder_svg([seg(0.0, "out"), seg(GAP_CAP_MS / 1000, "in")]))
    assert not groups(root, "break")


def test_time_axis_labels():
    """Each event's time in ms appears on the axis."""
    root = parse(ladder_svg([seg(0.0, "out"), seg(0.001204, "in"), seg(0.2005, "out")]))
    times = [text_of(t) for t in root.iter(f"{SVG}text") if "time" in classes(t)]
    assert times == ["0.000", "1.204", "200.5"]


def test_time_axis_tells_close_times_apart():
    """Two different times that would read the same get more decimals."""
    root = parse(ladder_svg([seg(0.0, "out"), seg(1.0400, "out"), seg(1.0402, "in")]))
    times = [text_of(t) for t in root.iter(f"{SVG}text") if "time" in classes(t)]
    assert times == ["0.000", "1 040", "1 040.2"]


@pytest.mark.parametrize("seconds, label", [
    (0.0, "0.000"), (0.001204, "1.204"), (0.01234, "12.34"), (0.2005, "200.5"),
    (3.012, "3 012"), (60.0123, "60 012"),
])
def test_time_label(seconds, label):
    """About four significant digits of ms, thousands set apart by a space."""
    assert time_label(seconds) == label


@pytest.mark.parametrize("seconds, label", [(0.45, "+450 ms"), (1.0, "+1.0 s"), (60.0, "+60 s")])
def test_gap_label(seconds, label):
    """A cut gap in ms below a second, in seconds above."""
    assert gap_label(seconds) == label


# --- app events, notes, the state band -------------------------------------------------

def test_app_event_is_a_box_beside_the_target():
    """A socket call is a box to the right of the target's lifeline."""
    root = parse(ladder_svg([seg(0, "out"), app(0.001, "accept")]))
    (box,) = groups(root, "app")
    assert text_of(box) == "app: accept -> ok"
    target_x = float(groups(root, "seg")[0].find(f"{SVG}line").get("x2"))
    assert float(box.find(f"{SVG}rect").get("x")) > target_x


def test_note_is_italic():
    """A note is italic text."""
    root = parse(ladder_svg([note(0, "the target delays its ACK")]))
    (text,) = groups(root, "note")[0].iter(f"{SVG}text")
    assert text.get("font-style") == "italic"
    assert text_of(text) == "the target delays its ACK"


def test_state_band_runs_until_the_next_state():
    """Each state's band reaches down to where the next state starts."""
    entries = [state(0.0, "ESTABLISHED"), seg(0.001, "in"), state(0.002, "CLOSE-WAIT")]
    root = parse(ladder_svg(entries))
    first, second = groups(root, "state")
    band = first.find(f"{SVG}rect")
    assert float(band.get("y")) + float(band.get("height")) == pytest.approx(
        float(second.find(f"{SVG}rect").get("y")))
    assert text_of(first) == "ESTABLISHED"


def test_state_mismatch_is_red_and_says_what_was_expected():
    """An observed state that is not the expected one is drawn red with "expected X"."""
    root = parse(ladder_svg([state(0.0, "ESTABLISHED", "SYN-RECEIVED")]))
    (span,) = groups(root, "state", "mismatch")
    assert "expected ESTABLISHED" in text_of(span)
    assert "SYN-RECEIVED" in text_of(span)


def test_state_not_observable_is_hatched():
    """A state that could not be seen is hatched, with its reason."""
    root = parse(ladder_svg([unobservable(0.0, "SYN-RECEIVED", "no state view")]))
    (span,) = groups(root, "state", "unobservable")
    assert "no state view" in text_of(span)
    fill = span.find(f"{SVG}rect").get("fill")
    pattern_ids = {p.get("id") for p in root.iter(f"{SVG}pattern")}
    assert fill.startswith("url(#") and fill[5:-1] in pattern_ids


def test_two_ladders_have_their_own_pattern_ids():
    """Ids are page-wide: two ladders on one page do not share one."""
    a = parse(ladder_svg([unobservable(0, "SYN-SENT")]))
    b = parse(ladder_svg([unobservable(0, "SYN-RECEIVED")]))
    assert {p.get("id") for p in a.iter(f"{SVG}pattern")}.isdisjoint(
        {p.get("id") for p in b.iter(f"{SVG}pattern")})


# --- escaping ------------------------------------------------------------------------

def test_text_is_escaped():
    """<, &, and quotes in any text are escaped; the SVG still parses and reads back."""
    nasty = seg(0, "out", connection="""c<1> & "quoted" 'single'""", mark="odd <mark>",
                options=(("mss", 1460),))
    entries = [nasty, app(0.001, "recv 5", "'<&>'"),
               unobservable(0.002, "CLOSED", 'reason "<here>"'), note(0.003, "a & b < c")]
    svg = ladder_svg(entries, tester='te"st<er>', target="tar&get")
    root = parse(svg)
    assert text_of(groups(root, "seg")[0].find(f"{SVG}text")).startswith(describe(nasty))
    assert 'reason "<here>"' in text_of(groups(root, "state")[0])
    assert text_of(groups(root, "app")[0]) == "app: recv 5 -> '<&>'"
    assert text_of(groups(root, "note")[0]) == "a & b < c"
    assert 'te"st<er>' in root.get("aria-label")


def test_control_characters_do_not_break_the_xml():
    """Characters XML cannot hold at all are replaced, not passed through."""
    parse(ladder_svg([note(0, "payload \x00\x01\x1b end")]))


# --- state_timeline -------------------------------------------------------------------

def test_state_timeline_spans():
    """Consecutive states give consecutive spans; the last one is open-ended."""
    entries = [seg(0.0, "out"), state(0.001, "ESTABLISHED"), seg(0.002, "in"),
               state(0.003, "CLOSE-WAIT"), state(0.005, "LAST-ACK")]
    assert [(s.start, s.end, s.state) for s in state_timeline(entries)] == [
        (0.001, 0.003, "ESTABLISHED"),
        (0.003, 0.005, "CLOSE-WAIT"),
        (0.005, None, "LAST-ACK"),
    ]


def test_state_timeline_keeps_the_mismatch():
    """An observed state other than the expected one says which was expected."""
    (span,) = state_timeline([state(0.0, "ESTABLISHED", "SYN-RECEIVED")])
    assert span.note == "expected ESTABLISHED"
    assert span.expected == "ESTABLISHED"
    assert span.observable


def test_state_timeline_keeps_not_observable():
    """A state not observable stays, with its reason, and is not taken for a mismatch."""
    (span,) = state_timeline([unobservable(0.0, "SYN-RECEIVED",
                                           "expected to be hidden by the stack")])
    assert span.state == "SYN-RECEIVED? not observable"
    assert span.note == "expected to be hidden by the stack"
    assert not span.observable
    assert span.expected is None


def test_state_timeline_sorts_by_time():
    """Entries given out of order are put in time order."""
    spans = state_timeline([state(0.2, "CLOSED"), state(0.1, "ESTABLISHED")])
    assert [(s.state, s.end) for s in spans] == [("ESTABLISHED", 0.1), ("CLOSED", None)]


def test_state_timeline_without_states():
    """No state entries, no spans."""
    assert state_timeline(HANDSHAKE[:3]) == []


# --- a device in the path: three lifelines -------------------------------------------

def device(t, check, seen, delay_us=None, detail=""):
    return DeviceEvent(t, check, seen, delay_us, detail)


THROUGH_NAT = [
    seg(0.0, "out", "SYN", seq=0, ack=0, win=64240),
    device(0.0004, "crossing", "translates", 80, "destination 198.18.0.254:80 -> 198.18.1.2:80"),
    seg(0.0006, "in", "SYN+ACK", seq=0, ack=1),
    device(0.001, "tracking", "SYN_RECV", detail="59 s left"),
    seg(0.002, "out", "ACK", seq=1000, ack=2000),
    device(0.202, "crossing", "drops", detail="an echo sent after it did reach the end host"),
    seg(0.203, "out", "ACK", seq=1, ack=1),
]


def lifeline_xs(root: ET.Element) -> dict[str, float]:
    return {next(c for c in classes(line) if c != "lifeline"): float(line.get("x1"))
            for line in root.iter(f"{SVG}line") if "lifeline" in classes(line)}


def test_a_device_in_the_path_stands_between_tester_and_end_host():
    root = parse(ladder_svg(THROUGH_NAT, tester="tester", target="end host", device="nat"))
    xs = lifeline_xs(root)
    assert xs["tester"] < xs["device"] < xs["target"]
    names = {text_of(t) for t in root.iter(f"{SVG}text") if "name" in classes(t)}
    assert names == {"tester", "nat", "end host"}
    assert "nat (middle)" in root.find(f"{SVG}title").text


def test_a_segment_goes_as_far_as_the_device_let_it():
    root = parse(ladder_svg(THROUGH_NAT, tester="tester", target="end host", device="nat"))
    xs = lifeline_xs(root)
    translated, dropped, unasked = groups(root, "seg", "out")[0], groups(root, "seg", "out")[1], \
        groups(root, "seg", "out")[2]
    # Translated: on to the end host, the new addresses over the inner half.
    assert "translates" in classes(translated)
    assert float(translated.find(f"{SVG}line").get("x2")) == xs["target"]
    assert "198.18.1.2:80" in text_of(translated)
    # Dropped: the arrow ends at the device, struck through, with no head.
    assert "drops" in classes(dropped)
    assert float(dropped.find(f"{SVG}line").get("x2")) == xs["device"]
    assert dropped.find(f"{SVG}polygon") is None and groups(dropped, "dropped")
    # Nobody asked: straight through.
    assert float(unasked.find(f"{SVG}line").get("x2")) == xs["target"]
    # The end host's answer comes back through.
    answer = groups(root, "seg", "in")[0]
    assert float(answer.find(f"{SVG}line").get("x1")) == xs["target"]


def test_what_the_device_holds_is_a_box_on_its_lifeline():
    root = parse(ladder_svg(THROUGH_NAT, tester="tester", target="end host", device="nat"))
    tracked = groups(root, "device", "tracking")
    assert [text_of(g) for g in tracked] == ["the firewall tracks it as SYN_RECV (59 s left)"]
    box = tracked[0].find(f"{SVG}rect")
    assert float(box.get("x")) > lifeline_xs(root)["device"]
    assert "drops it (it never reached the end host's link; an echo sent after it did reach " \
           "the end host)" in text_of(groups(root, "device", "crossing")[1])


def test_without_a_device_what_it_did_is_a_note_on_two_lifelines():
    root = parse(ladder_svg(THROUGH_NAT, tester="tester", target="nat"))
    assert set(lifeline_xs(root)) == {"tester", "target"}
    assert len(groups(root, "note")) == 3


# -- silences and what hovering shows ------------------------------------------------

def title_of(group: ET.Element) -> str:
    found = group.find(f"{SVG}title")
    return found.text if found is not None else ""


def test_a_silence_is_a_window_drawn_for_its_length():
    """The case expected nothing for 200 ms and nothing came: a grey window from
    where the silence began, 200 ms tall on the scale, with its words."""
    events = [seg(0.0, "out", "RST", seq=101), SilenceEvent(0.001, 0.2),
              seg(0.3, "out", "ACK")]
    root = parse(ladder_svg(events))
    (window,) = groups(root, "silence")
    assert "broken" not in classes(window)
    assert text_of(window) == "expected: nothing for 200ms"
    top, bottom = float(window.get("data-y")), float(window.get("data-bottom"))
    assert bottom - top == pytest.approx(200 * PX_PER_MS, abs=1)
    rect = window.find(f"{SVG}rect")
    assert float(rect.get("height")) == pytest.approx(bottom - top, abs=0.2)
    assert "nothing came" in title_of(window)


def test_a_broken_silence_ends_red_at_the_segment_that_broke_it():
    events = [seg(0.0, "out", "RST", seq=101), SilenceEvent(0.001, 0.2, broken=True),
              seg(0.05, "in", "ACK", seq=1, ack=1)]
    root = parse(ladder_svg(events))
    (window,) = groups(root, "silence", "broken")
    (answer,) = groups(root, "seg", "in")
    assert float(window.get("data-bottom")) == pytest.approx(float(answer.get("data-y")), abs=0.2)
    assert "[broken]" in text_of(window) and "broken by the segment below" in title_of(window)
    assert window.find(f"{SVG}rect").get("stroke") == "#c62828"


def test_hovering_a_segment_shows_its_absolute_numbers_and_time():
    """The arrow's text is relative to each ISN; its <title> gives the wire's values."""
    absolute = SegmentEvent(0.0015, "in", tcp.flag_bits(["SYN", "ACK"]), 3091772562, 1000001,
                            0, 1, 65160)
    root = parse(ladder_svg([seg(0.0, "out", "SYN", seq=0, ack=0), absolute]))
    (answer,) = groups(root, "seg", "in")
    assert "seq=3091772562 ack=1000001" in title_of(answer)
    assert title_of(answer).startswith("1.500 ms: target -> tester SYN+ACK seq=0 ack=1")
    assert "3091772562" not in text_of(answer)


def test_a_silence_crosses_results_json():
    events = [seg(0.0, "out", "RST"), SilenceEvent(0.001, 0.25, broken=True)]
    (_, window) = from_json(to_json(events))
    assert (window.duration, window.broken, window.time) == (0.25, True, 0.001)
    with pytest.raises(ValueError, match="'duration' must be a number of seconds"):
        from_json([{"t": 0, "kind": "silence", "duration": "1s", "broken": False}])
