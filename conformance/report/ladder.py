"""The ladder diagram as SVG: the case's conversation drawn to a time scale.

It is drawn the way an engineer draws it on a whiteboard: the tester's
lifeline on the left, the target's on the right, each segment an arrow between
them, slanted down as time passes, with its text above it.  Socket calls on the
target are small boxes beside its lifeline; the target's state is a band
further right.  The time axis on the far left gives each event's time in ms.

Rules of this file:
- Vertical distance is proportional to elapsed time (PX_PER_MS), except that
  consecutive events are never closer than MIN_SPACING_PX (so labels never
  overlap) and a gap longer than GAP_CAP_MS is cut: drawn BREAK_PX tall with a
  break mark on the lifelines and the gap's length beside the axis.
- A segment's time is taken at the tester's lifeline, where the tester sent
  or captured it: an outgoing arrow starts there, an incoming one ends there.
- The input is the case's evidence (evidence.py), read from results.json by
  evidence.from_json; every text is the one formatter's (evidence.describe
  and evidence.tag), and the state band reads the state events' fields.
- All text is escaped for XML, and the SVG is styled by presentation
  attributes only, so it can be embedded in any page, several per page.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from dataclasses import dataclass

from ..evidence import Event, StateEvent, describe, tag

# --- the time scale ---------------------------------------------------------
PX_PER_MS = 0.5          # vertical pixels per millisecond of elapsed time
MIN_SPACING_PX = 28      # between consecutive events: room for a label and a slanted arrow
GAP_CAP_MS = 300         # a longer gap between two events is cut ...
BREAK_PX = 64            # ... and drawn this tall, with a break mark
SLANT_PX = 5             # how far an arrow drops between the two lifelines

# --- text and widths ---------------------------------------------------------
FONT_PX = 12
CHAR_PX = 7.25           # advance of one monospace character at FONT_PX
TAG_FONT_PX = 10
TAG_CHAR_PX = 6.1        # ... at TAG_FONT_PX
MIN_LIFELINE_GAP_PX = 280
LABEL_PAD_PX = 24        # free space at each end of the longest segment label
TOP_PX = 56              # y of the first event, below the lifelines' names
NAME_Y_PX = 18
LIFELINE_TOP_PX = 28
END_PX = 22              # the lifelines go on this far below the last event
MARGIN_PX = 10
AXIS_TO_TESTER_PX = 18   # from the right edge of the time labels to the tester's lifeline
APP_OFFSET_PX = 10       # from the target's lifeline to the app boxes
BAND_OFFSET_PX = 14      # from the target's lifeline (or the app boxes) to the state band
BAND_PX = 10             # width of the state band

# --- colours -----------------------------------------------------------------
INK = "#212121"
GREY = "#8c8c8c"
RED = "#c62828"
ORANGE = "#e65100"
APP_FILL, APP_STROKE = "#e3f2fd", "#1565c0"
# Consecutive observed states alternate between two greens, so that where one
# ends and the next begins shows in the band.
STATE_FILLS, STATE_STROKE = ("#c8e6c9", "#a5d6a7"), "#2e7d32"
MISMATCH_FILL = "#ffcdd2"



@dataclass(frozen=True)
class SegmentLook:
    colour: str
    dash: str | None    # an SVG stroke-dasharray; None: solid
    tag: str            # the small text after the label; "" for none


# How each segment mark is drawn.  A mark not listed here is drawn plainly,
# with the mark itself as its tag.
SEGMENT_LOOKS = {
    "": SegmentLook(INK, None, ""),
    "retransmission": SegmentLook(INK, "6 4", "retransmission"),
    "setup": SegmentLook(GREY, None, "setup"),
    "unexamined": SegmentLook(ORANGE, None, "unexamined: no step looked at it"),
    "bad checksum": SegmentLook(RED, None, "bad checksum"),
}


@dataclass(frozen=True)
class StateSpan:
    """One state check of the target and how long its state stood."""

    start: float          # seconds from the first event
    end: float | None     # the next state check's time; None: until the end
    event: StateEvent

    @property
    def observable(self) -> bool:
        return self.event.observed is not None

    @property
    def expected(self) -> str | None:
        """The state the case expected, when the target was seen in another."""
        return self.event.expected if self.event.holds is False else None

    @property
    def state(self) -> str:
        """The state shown, or "X? not observable"."""
        return describe(self.event)

    @property
    def note(self) -> str:
        """Why the state could not be observed, or the expectation it missed."""
        return tag(self.event)


@dataclass(frozen=True)
class _Item:
    """An event, its time in seconds from the first event, and its text as
    the one formatter writes it."""

    t: float
    event: Event

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def text(self) -> str:
        return describe(self.event)

    @property
    def mark(self) -> str:
        return tag(self.event)

    @property
    def direction(self) -> str:
        return getattr(self.event, "direction", "")


# --- public API ----------------------------------------------------------------

def ladder_svg(events: list[Event], tester: str = "tester", target: str = "target") -> str:
    """The ladder of `events` as one inline <svg> element."""
    entries = _items(events)
    if not entries:
        return _empty_svg(tester, target)
    rows, breaks = _place(entries)
    geo = _geometry(entries, rows, breaks, tester, target)
    body = (_names(geo, tester, target) + _lifelines(geo, breaks) + _breaks(geo, breaks)
            + _time_axis(geo, rows) + _states(geo, entries, rows) + _events(geo, rows)
            + _legend(geo))
    segments = sum(1 for e in entries if e.kind == "segment")
    title = (f"Ladder diagram: {tester} (left) and {target} (right), {segments} segments "
             f"over {time_label(entries[-1].t - entries[0].t)} ms")
    return _svg(geo.width, geo.height, title, [_hatch(geo.hatch)] + body)


def state_timeline(events: list[Event]) -> list[StateSpan]:
    """The target's states in time order, each until the next state check."""
    states = [e for e in _items(events) if e.kind == "state"]
    ends = [e.t for e in states[1:]] + [None]
    return [StateSpan(e.t, end, e.event) for e, end in zip(states, ends)]


def time_label(t: float) -> str:
    """`t` seconds as the axis writes it in ms, to about four significant
    digits: "0.000", "1.204", "200.5", "3 012"."""
    ms = t * 1000
    return _ms_text(ms, _decimals(ms))


def gap_label(seconds: float) -> str:
    """The length of a cut gap: "+450 ms", "+1.0 s", "+60 s"."""
    if seconds < 1:
        return f"+{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"+{seconds:.1f} s"
    return f"+{seconds:.0f} s"


def _decimals(ms: float) -> int:
    return 3 if ms < 10 else 2 if ms < 100 else 1 if ms < 1000 else 0


def _ms_text(ms: float, decimals: int) -> str:
    return f"{ms:,.{decimals}f}".replace(",", " ")


# --- input --------------------------------------------------------------------

def _items(events: list[Event]) -> list[_Item]:
    """The events in time order (stable for equal times), timed from the first."""
    events = sorted(events, key=lambda e: e.time)
    t0 = events[0].time if events else 0.0
    return [_Item(e.time - t0, e) for e in events]


# --- the vertical layout -----------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    """An event and the y it is drawn at."""

    entry: _Item
    y: float


@dataclass(frozen=True)
class _Break:
    """A cut gap: drawn between `top` and `bottom`, `seconds` long."""

    top: float
    bottom: float
    seconds: float

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def _place(entries: list[_Item]) -> tuple[list[_Row], list[_Break]]:
    """Each (sorted) entry's y, and the gaps that were cut."""
    rows = [_Row(entries[0], TOP_PX)]
    breaks = []
    for entry in entries[1:]:
        y = rows[-1].y
        gap_ms = (entry.t - rows[-1].entry.t) * 1000
        if gap_ms > GAP_CAP_MS:
            # Between the arrow above and the label of the one below.
            breaks.append(_Break(y + SLANT_PX + 2, y + BREAK_PX - SLANT_PX - FONT_PX - 2,
                                gap_ms / 1000))
            y += BREAK_PX
        else:
            y += max(MIN_SPACING_PX, gap_ms * PX_PER_MS)
        rows.append(_Row(entry, y))
    return rows, breaks


# --- the horizontal layout ----------------------------------------------------------

@dataclass(frozen=True)
class _Geometry:
    axis_x: float      # right edge of the time labels
    tester_x: float
    target_x: float
    app_x: float       # left edge of the app boxes
    band_x: float      # left edge of the state band
    end_y: float       # where the lifelines and open state spans end
    width: float
    height: float
    hatch: str         # the id of the hatch pattern for states not observable

    @property
    def middle_x(self) -> float:
        return (self.tester_x + self.target_x) / 2


def _geometry(entries, rows, breaks, tester, target) -> _Geometry:
    labels = _axis_labels([e.t for e in entries]) + [gap_label(b.seconds) for b in breaks]
    axis_x = MARGIN_PX + max(_width(s) for s in labels + ["ms"])
    tester_x = max(axis_x + AXIS_TO_TESTER_PX, axis_x + 8 + _width(tester) / 2)
    longest = max((_label_width(e) for e in entries if e.kind == "segment"), default=0)
    target_x = tester_x + max(MIN_LIFELINE_GAP_PX, longest + 2 * LABEL_PAD_PX)
    app_x = target_x + APP_OFFSET_PX
    apps = [_app_width(e) for e in entries if e.kind == "app"]
    band_x = (app_x + max(apps) if apps else target_x) + BAND_OFFSET_PX
    end_y = rows[-1].y + END_PX
    rights = [target_x + _width(target) / 2, _legend_x() + _width(_legend_text())]
    rights += [band_x + BAND_PX + 6 + _width(_state_text(e)) for e in entries
               if e.kind == "state"]
    rights += [_note_x(tester_x) + _width(e.text) for e in entries if e.kind == "note"]
    width = max(rights) + MARGIN_PX
    height = end_y + 24 + MARGIN_PX
    return _Geometry(axis_x, tester_x, target_x, app_x, band_x, end_y, math.ceil(width),
                     math.ceil(height), _hatch_id(entries, tester, target))


def _width(text: str) -> float:
    return len(text) * CHAR_PX


def _label_width(entry: _Item) -> float:
    tag = _look(entry.mark).tag
    return _width(entry.text) + (len(tag) + 3) * TAG_CHAR_PX if tag else _width(entry.text)


def _app_width(entry: _Item) -> float:
    return _width(_app_text(entry)) + 12


def _app_text(entry: _Item) -> str:
    return f"app: {entry.text}"


def _note_x(tester_x: float) -> float:
    return tester_x + 8


def _legend_x() -> float:
    return MARGIN_PX


def _look(mark: str) -> SegmentLook:
    return SEGMENT_LOOKS.get(mark) or SegmentLook(INK, None, mark)


# --- drawing --------------------------------------------------------------------

def _names(geo: _Geometry, tester: str, target: str) -> list[str]:
    return [_text(geo.axis_x, NAME_Y_PX, "ms", cls="axis-title", anchor="end", fill=GREY),
            _text(geo.tester_x, NAME_Y_PX, tester, cls="name tester", anchor="middle",
                  weight="bold"),
            _text(geo.target_x, NAME_Y_PX, target, cls="name target", anchor="middle",
                  weight="bold")]


def _lifelines(geo: _Geometry, breaks: list[_Break]) -> list[str]:
    """Each lifeline from the names down to the end, interrupted at the cut gaps."""
    cuts = [LIFELINE_TOP_PX] + [y for b in breaks for y in (b.middle - 7, b.middle + 7)]
    cuts.append(geo.end_y)
    out = []
    for cls, x in (("lifeline tester", geo.tester_x), ("lifeline target", geo.target_x)):
        for top, bottom in zip(cuts[::2], cuts[1::2]):
            out.append(_line(x, top, x, bottom, cls=cls, stroke=INK, width=1.5))
    return out


def _breaks(geo: _Geometry, breaks: list[_Break]) -> list[str]:
    """A zig-zag on both lifelines and the gap's length by the axis."""
    out = []
    for b in breaks:
        c = b.middle
        marks = [_zigzag(x, c) for x in (geo.tester_x, geo.target_x)]
        cut = _line(geo.tester_x + 8, c, geo.target_x - 8, c, cls="cut", stroke=GREY,
                    width=0.8, dash="2 4")
        label = _text(geo.axis_x, c + 4, gap_label(b.seconds), cls="gap", anchor="end",
                      fill=INK, weight="bold")
        out.append(f'<g class="break" data-seconds="{b.seconds:g}">{"".join(marks)}{cut}'
                   f'{label}</g>')
    return out


def _zigzag(x: float, c: float) -> str:
    points = [(x, c - 7), (x - 5, c - 4), (x + 5, c), (x - 5, c + 4), (x, c + 7)]
    return (f'<polyline class="zigzag" points="{_points(points)}" fill="none" '
            f'stroke="{INK}" stroke-width="1.5"/>')


def _time_axis(geo: _Geometry, rows: list[_Row]) -> list[str]:
    """Each event's time, with a faint guide to the tester's lifeline."""
    out = []
    for row, label in zip(rows, _axis_labels([row.entry.t for row in rows])):
        out.append(_line(geo.axis_x + 4, row.y, geo.tester_x - 3, row.y, cls="guide",
                         stroke="#cfcfcf", width=0.8))
        out.append(_text(geo.axis_x, row.y + 4, label, cls="time", anchor="end", fill="#555"))
    return out


def _axis_labels(times: list[float]) -> list[str]:
    """time_label() of each time, with more decimals (up to a microsecond) where
    it would read the same as the time before it: "1 040" then "1 040.2"."""
    labels = [time_label(t) for t in times]
    for i in range(1, len(times)):
        before, now = times[i - 1] * 1000, times[i] * 1000
        if before == now:
            labels[i] = labels[i - 1]
            continue
        digits = _decimals(now)
        while digits < 3 and round(before, digits) == round(now, digits):
            digits += 1
            labels[i] = _ms_text(now, digits)
    return labels


def _events(geo: _Geometry, rows: list[_Row]) -> list[str]:
    draw = {"segment": _segment, "app": _app, "note": _note, "state": _state_tick}
    return [draw[row.entry.kind](geo, row) for row in rows]


def _segment(geo: _Geometry, row: _Row) -> str:
    """An arrow between the lifelines, its text above it, its mark as a tag."""
    entry = row.entry
    look = _look(entry.mark)
    if entry.direction == "out":
        x1, y1, x2, y2 = geo.tester_x, row.y, geo.target_x, row.y + SLANT_PX
    else:
        x1, y1, x2, y2 = geo.target_x, row.y - SLANT_PX, geo.tester_x, row.y
    cls = " ".join(["seg", entry.direction] + ([_slug(entry.mark)] if entry.mark else []))
    arrow = _line(x1, y1, x2, y2, cls="arrow", stroke=look.colour, width=1.4, dash=look.dash)
    head = (f'<polygon class="head" points="{_points(_head(x1, y1, x2, y2))}" '
            f'fill="{look.colour}"/>')
    tag = (f'<tspan class="tag" font-size="{TAG_FONT_PX}" font-weight="bold" dx="{TAG_CHAR_PX}">'
           f'[{_esc(look.tag)}]</tspan>' if look.tag else "")
    label = (f'<text class="label" x="{_n(geo.middle_x)}" y="{_n(min(y1, y2) - 4)}" '
             f'text-anchor="middle" fill="{look.colour}">{_esc(entry.text)}{tag}</text>')
    return f'<g class="{cls}" {_data(row)}>{arrow}{head}{label}</g>'


def _head(x1, y1, x2, y2) -> list[tuple[float, float]]:
    """The arrowhead's triangle, its tip at (x2, y2)."""
    length = math.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy
    return [(x2, y2), (bx - 4 * uy, by + 4 * ux), (bx + 4 * uy, by - 4 * ux)]


def _app(geo: _Geometry, row: _Row) -> str:
    """A socket call on the target: a small box beside its lifeline."""
    text = _app_text(row.entry)
    box = (f'<rect x="{_n(geo.app_x)}" y="{_n(row.y - 9)}" width="{_n(_app_width(row.entry))}" '
           f'height="18" rx="3" fill="{APP_FILL}" stroke="{APP_STROKE}"/>')
    tick = _line(geo.target_x, row.y, geo.app_x, row.y, cls="tick", stroke=APP_STROKE, width=1)
    label = _text(geo.app_x + 6, row.y + 4, text, fill=INK)
    return f'<g class="app" {_data(row)}>{tick}{box}{label}</g>'


def _note(geo: _Geometry, row: _Row) -> str:
    """Free text across the diagram, on a light ground so the lifelines do not cross it."""
    x, width = _note_x(geo.tester_x), _width(row.entry.text) + 6
    ground = (f'<rect x="{_n(x - 3)}" y="{_n(row.y - 9)}" width="{_n(width)}" height="17" '
              f'fill="#fffde7" fill-opacity="0.9"/>')
    label = _text(x, row.y + 4, row.entry.text, fill="#555", italic=True)
    return f'<g class="note" {_data(row)}>{ground}{label}</g>'


def _state_tick(geo: _Geometry, row: _Row) -> str:
    """Where a state was looked at: a dotted tick from the target's lifeline to the band."""
    tick = _line(geo.target_x, row.y, geo.band_x, row.y, cls="tick", stroke=GREY, width=0.8,
                 dash="1 3")
    return f'<g class="state-entry" {_data(row)}>{tick}</g>'


def _states(geo: _Geometry, entries: list[_Item], rows: list[_Row]) -> list[str]:
    """The band: each state from its entry down to the next state entry, or the end."""
    spans = state_timeline([e.event for e in entries])
    tops = [row.y for row in rows if row.entry.kind == "state"]
    bottoms = tops[1:] + [geo.end_y]
    return [_span(geo, span, top, bottom, STATE_FILLS[i % 2])
            for i, (span, top, bottom) in enumerate(zip(spans, tops, bottoms))]


def _span(geo: _Geometry, span: StateSpan, top: float, bottom: float, green: str) -> str:
    if not span.observable:
        cls, fill, stroke, colour = "state unobservable", f"url(#{geo.hatch})", GREY, GREY
    elif span.expected is not None:
        cls, fill, stroke, colour = "state mismatch", MISMATCH_FILL, RED, RED
    else:
        cls, fill, stroke, colour = "state", green, STATE_STROKE, STATE_STROKE
    band = (f'<rect x="{_n(geo.band_x)}" y="{_n(top)}" width="{BAND_PX}" '
            f'height="{_n(bottom - top)}" fill="{fill}" stroke="{stroke}" stroke-width="0.8"/>')
    label = _text(geo.band_x + BAND_PX + 6, top + 4, _span_text(span), fill=colour,
                  weight="bold" if span.expected is not None else None)
    return f'<g class="{cls}" data-t="{span.start!r}">{band}{label}</g>'


def _span_text(span: StateSpan) -> str:
    if span.expected is not None:
        return f"{span.state} (expected {span.expected})"
    if not span.observable and span.note:
        return f"{span.state}: {span.note}"
    return span.state


def _state_text(entry: _Item) -> str:
    return _span_text(StateSpan(entry.t, None, entry.event))


def _legend_text() -> str:
    return (f"vertical: {PX_PER_MS:g} px per ms, events at least {MIN_SPACING_PX} px apart; "
            f"gaps over {GAP_CAP_MS} ms cut and labelled")


def _legend(geo: _Geometry) -> list[str]:
    return [_text(_legend_x(), geo.end_y + 22, _legend_text(), cls="legend", fill="#555",
                  size=11)]


def _empty_svg(tester: str, target: str) -> str:
    title = f"Ladder diagram: {tester} and {target}: nothing happened"
    body = [_text(MARGIN_PX, 24, "nothing happened", cls="empty", fill=GREY, italic=True)]
    return _svg(200, 40, title, body)


# --- SVG text ----------------------------------------------------------------------

def _svg(width, height, title: str, body: list[str]) -> str:
    content = "\n".join(body)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" role="img" '
            f'aria-label="{_esc(title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
            f'font-family="monospace" font-size="{FONT_PX}">\n'
            f'<title>{_esc(title)}</title>\n'
            f'<rect class="ground" width="{width}" height="{height}" fill="#ffffff"/>\n'
            f'{content}\n</svg>')


def _hatch(hatch_id: str) -> str:
    return (f'<defs><pattern id="{hatch_id}" width="6" height="6" '
            f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="6" height="6" fill="#eeeeee"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{GREY}" stroke-width="2"/>'
            f'</pattern></defs>')


def _hatch_id(entries, tester, target) -> str:
    """An id for the hatch pattern that differs between the ladders of one page
    (ids are page-wide) yet is the same for the same ladder."""
    shown = [[e.t, e.kind, e.text, e.mark] for e in entries]
    digest = hashlib.sha1(json.dumps([shown, tester, target]).encode()).hexdigest()
    return f"ladder-hatch-{digest[:10]}"


def _text(x, y, text, cls=None, anchor=None, fill=None, weight=None, italic=False,
          size=None) -> str:
    attrs = [f'x="{_n(x)}"', f'y="{_n(y)}"']
    attrs += [f'class="{cls}"'] if cls else []
    attrs += [f'text-anchor="{anchor}"'] if anchor else []
    attrs += [f'fill="{fill}"'] if fill else []
    attrs += [f'font-weight="{weight}"'] if weight else []
    attrs += ['font-style="italic"'] if italic else []
    attrs += [f'font-size="{size}"'] if size else []
    return f'<text {" ".join(attrs)}>{_esc(text)}</text>'


def _line(x1, y1, x2, y2, cls, stroke, width, dash=None) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line class="{cls}" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
            f'stroke="{stroke}" stroke-width="{width}"{dashed}/>')


def _data(row: _Row) -> str:
    """The event's time (seconds) and y, for tests and scripts in the page."""
    return f'data-t="{row.entry.t!r}" data-y="{_n(row.y)}"'


def _points(points) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _n(value: float) -> str:
    """A coordinate, to a tenth of a pixel, without a needless ".0"."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# Characters XML 1.0 does not allow at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(text: str) -> str:
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _slug(mark: str) -> str:
    """A mark as a class name: "bad checksum" -> "bad-checksum"."""
    return re.sub(r"[^a-z0-9]+", "-", mark.lower()).strip("-") or "marked"
