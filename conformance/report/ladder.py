"""The ladder diagram as SVG: the case's conversation drawn to a time scale.

It is drawn the way an engineer draws it on a whiteboard: the tester's
lifeline on the left, the target's on the right, each segment an arrow between
them, slanted down as time passes, with its text above it.  Socket calls on the
target are small boxes beside its lifeline; the target's state is a band
further right.  The time axis on the far left gives each event's time in ms.

Rules of this file:
- Vertical distance is proportional to elapsed time, with close events set
  apart and long gaps cut (timescale.py); a cut gap has a break mark on the
  lifelines and its length beside the axis.
- A segment's time is taken at the tester's lifeline, where the tester sent
  or captured it: an outgoing arrow starts there, an incoming one ends there.
- The input is the case's evidence (evidence.py), read from results.json by
  evidence.from_json; every text is the one formatter's (evidence.describe
  and evidence.tag), and the state band reads the state events' fields.
- All text is escaped for XML, and the SVG is styled by presentation
  attributes only (svg.py), so it can be embedded in any page, several per page.

A silence step (the case expects no answer for a while) is a shaded window
between the lifelines, from where it began to where it ended: its full length,
or the segment that broke it, drawn in red.  Every event carries a <title>, so
hovering shows its time and, for a segment, the absolute sequence and
acknowledgment numbers beside the relative ones the arrow's text shows.

With a device in the path (a firewall, a NAT: middlebox.py), the ladder has
three lifelines: tester, device, end host.  A segment the tester sent runs to
the device and, if the case asked what became of it, on to the end host
(forwarded; translated, with the rewritten addresses above the inner half) or
ends at the device with a cross (dropped); a segment whose fate no step asked
runs straight through.  What the device's tracker held is a box on its
lifeline.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from ..evidence import Event, describe, in_order, tag
from . import svg
from .timeline import StateSpan, state_timeline
from .timescale import (
    FONT_PX,
    GAP_CAP_MS,
    MIN_SPACING_PX,
    PX_PER_MS,
    SLANT_PX,
    Break,
    Row,
    axis_labels,
    gap_label,
    place,
    time_label,
)

# --- text and widths (the time scale's constants are in timescale.py) --------
CHAR_PX = 7.25           # advance of one monospace character at FONT_PX
TAG_FONT_PX = 10
TAG_CHAR_PX = 6.1        # ... at TAG_FONT_PX
MIN_LIFELINE_GAP_PX = 280
LABEL_PAD_PX = 24        # free space at each end of the longest segment label
NAME_Y_PX = 18
LIFELINE_TOP_PX = 28
END_PX = 22              # the lifelines go on this far below the last event
MARGIN_PX = 10
AXIS_TO_TESTER_PX = 18   # from the right edge of the time labels to the tester's lifeline
APP_OFFSET_PX = 10       # from the target's lifeline to the app boxes
INSIDE_GAP_PX = 150      # the least room between a device's lifeline and the end host's
BAND_OFFSET_PX = 14      # from the target's lifeline (or the app boxes) to the state band
BAND_PX = 10             # width of the state band

# --- colours -----------------------------------------------------------------
INK = "#212121"
GREY = "#8c8c8c"
RED = "#c62828"
ORANGE = "#e65100"
APP_FILL, APP_STROKE = "#e3f2fd", "#1565c0"
DEVICE_FILL, DEVICE_STROKE = "#f3e5f5", "#6a1b9a"
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

def ladder_svg(events: list[Event], tester: str = "tester", target: str = "target",
               device: str | None = None) -> str:
    """The ladder of `events` as one inline <svg> element; with `device`, the
    name of a device in the path, on three lifelines."""
    entries = _items(events)
    if not entries:
        return _empty_svg(tester, target)
    rows, breaks = place(entries)
    fates = _fates(entries) if device else {}
    geo = _geometry(entries, rows, breaks, tester, target, device, fates)
    body = (_names(geo, tester, target, device) + _lifelines(geo, breaks)
            + _breaks(geo, breaks) + _time_axis(geo, rows) + _states(geo, entries, rows)
            + _events(geo, rows, fates) + _legend(geo))
    segments = sum(1 for e in entries if e.kind == "segment")
    between = (f"{tester} (left), {device} (middle) and {target} (right)" if device
               else f"{tester} (left) and {target} (right)")
    title = (f"Ladder diagram: {between}, {segments} segments "
             f"over {time_label(entries[-1].t - entries[0].t)} ms")
    return svg.document(geo.width, geo.height, title, [_hatch(geo.hatch)] + body, FONT_PX)


# --- input --------------------------------------------------------------------

def _items(events: list[Event]) -> list[_Item]:
    """The events in time order (stable for equal times), timed from the first."""
    events = sorted(events, key=in_order)
    t0 = events[0].time if events else 0.0
    return [_Item(e.time - t0, e) for e in events]


def _fates(entries: list[_Item]) -> dict[int, _Item]:
    """For each segment the tester sent whose fate a step asked, the device's
    crossing event that answered (by the segment's index in `entries`): the
    first crossing after it, before the tester sent another."""
    fates, last_sent = {}, None
    for i, entry in enumerate(entries):
        if entry.kind == "segment" and entry.direction == "out":
            last_sent = i
        elif entry.kind == "note" and entry.mark == "icmp":
            last_sent = None        # the tester's ICMP error: its crossing is its own
        elif (entry.kind == "device" and entry.event.check == "crossing"
              and last_sent is not None):
            fates[last_sent] = entry
            last_sent = None
    return fates


# --- the vertical layout -----------------------------------------------------------


# --- the horizontal layout ----------------------------------------------------------

@dataclass(frozen=True)
class _Geometry:
    axis_x: float      # right edge of the time labels
    tester_x: float
    device_x: float | None     # a device in the path's lifeline; None: there is none
    target_x: float
    app_x: float       # left edge of the app boxes
    band_x: float      # left edge of the state band
    end_y: float       # where the lifelines and open state spans end
    width: float
    height: float
    hatch: str         # the id of the hatch pattern for states not observable

    @property
    def middle_x(self) -> float:
        """Where a segment's label is centred: between the tester and the
        next lifeline."""
        return (self.tester_x + (self.device_x or self.target_x)) / 2


def _geometry(entries, rows, breaks, tester, target, device=None, fates=None) -> _Geometry:
    labels = axis_labels([e.t for e in entries]) + [gap_label(b.seconds) for b in breaks]
    axis_x = MARGIN_PX + max(_width(s) for s in labels + ["ms"])
    tester_x = max(axis_x + AXIS_TO_TESTER_PX, axis_x + 8 + _width(tester) / 2)
    longest = max((_label_width(e) for e in entries if e.kind == "segment"), default=0)
    device_x = None
    if device:
        device_x = tester_x + max(MIN_LIFELINE_GAP_PX, longest + 2 * LABEL_PAD_PX)
        inner = max((_width(f.event.detail) for f in (fates or {}).values()
                     if f.event.seen == "translates"), default=0)
        target_x = device_x + max(INSIDE_GAP_PX, inner + 2 * LABEL_PAD_PX)
    else:
        target_x = tester_x + max(MIN_LIFELINE_GAP_PX, longest + 2 * LABEL_PAD_PX)
    app_x = target_x + APP_OFFSET_PX
    apps = [_app_width(e) for e in entries if e.kind == "app"]
    band_x = (app_x + max(apps) if apps else target_x) + BAND_OFFSET_PX
    end_y = rows[-1].y + END_PX
    rights = [target_x + _width(target) / 2, _legend_x() + _width(_legend_text())]
    rights += [band_x + BAND_PX + 6 + _width(_state_text(e)) for e in entries
               if e.kind == "state"]
    rights += [_note_x(tester_x) + _width(e.text) for e in entries
               if e.kind in ("note", "silence") or (e.kind == "device" and not device)]
    if device:
        rights += [_device_x(device_x) + _device_width(e) for e in entries
                   if e.kind == "device"]
    width = max(rights) + MARGIN_PX
    height = end_y + 24 + MARGIN_PX
    return _Geometry(axis_x, tester_x, device_x, target_x, app_x, band_x, end_y,
                     math.ceil(width), math.ceil(height), _hatch_id(entries, tester, target))


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


def _device_x(device_x: float) -> float:
    """The left edge of the device's boxes: just right of its lifeline."""
    return device_x + 6


def _device_width(entry: _Item) -> float:
    return _width(entry.text) + 12


def _legend_x() -> float:
    return MARGIN_PX


def _look(mark: str) -> SegmentLook:
    return SEGMENT_LOOKS.get(mark) or SegmentLook(INK, None, mark)


# --- drawing --------------------------------------------------------------------

def _names(geo: _Geometry, tester: str, target: str, device: str | None) -> list[str]:
    names = [svg.text(geo.axis_x, NAME_Y_PX, "ms", cls="axis-title", anchor="end", fill=GREY),
             svg.text(geo.tester_x, NAME_Y_PX, tester, cls="name tester", anchor="middle",
                      weight="bold"),
             svg.text(geo.target_x, NAME_Y_PX, target, cls="name target", anchor="middle",
                      weight="bold")]
    if device:
        names.append(svg.text(geo.device_x, NAME_Y_PX, device, cls="name device",
                              anchor="middle", weight="bold", fill=DEVICE_STROKE))
    return names


def _lifelines(geo: _Geometry, breaks: list[Break]) -> list[str]:
    """Each lifeline from the names down to the end, interrupted at the cut gaps."""
    cuts = [LIFELINE_TOP_PX] + [y for b in breaks for y in (b.middle - 7, b.middle + 7)]
    cuts.append(geo.end_y)
    out = []
    lifelines = [("lifeline tester", geo.tester_x), ("lifeline target", geo.target_x)]
    if geo.device_x is not None:
        lifelines.append(("lifeline device", geo.device_x))
    for cls, x in lifelines:
        for top, bottom in zip(cuts[::2], cuts[1::2]):
            out.append(svg.line(x, top, x, bottom, cls=cls, stroke=INK, width=1.5))
    return out


def _breaks(geo: _Geometry, breaks: list[Break]) -> list[str]:
    """A zig-zag on both lifelines and the gap's length by the axis."""
    out = []
    for b in breaks:
        c = b.middle
        marks = [_zigzag(x, c) for x in (geo.tester_x, geo.device_x, geo.target_x)
                 if x is not None]
        cut = svg.line(geo.tester_x + 8, c, geo.target_x - 8, c, cls="cut", stroke=GREY,
                    width=0.8, dash="2 4")
        label = svg.text(geo.axis_x, c + 4, gap_label(b.seconds), cls="gap", anchor="end",
                      fill=INK, weight="bold")
        out.append(f'<g class="break" data-seconds="{b.seconds:g}">{"".join(marks)}{cut}'
                   f'{label}</g>')
    return out


def _zigzag(x: float, c: float) -> str:
    points = [(x, c - 7), (x - 5, c - 4), (x + 5, c), (x - 5, c + 4), (x, c + 7)]
    return (f'<polyline class="zigzag" points="{svg.points(points)}" fill="none" '
            f'stroke="{INK}" stroke-width="1.5"/>')


def _time_axis(geo: _Geometry, rows: list[Row]) -> list[str]:
    """Each event's time, with a faint guide to the tester's lifeline."""
    out = []
    for row, label in zip(rows, axis_labels([row.entry.t for row in rows])):
        out.append(svg.line(geo.axis_x + 4, row.y, geo.tester_x - 3, row.y, cls="guide",
                         stroke="#cfcfcf", width=0.8))
        out.append(svg.text(geo.axis_x, row.y + 4, label, cls="time", anchor="end", fill="#555"))
    return out


def _events(geo: _Geometry, rows: list[Row], fates: dict[int, _Item]) -> list[str]:
    # Without a device's lifeline, what the device in the path did is written
    # across the diagram, as a note.
    draw = {"segment": _segment, "app": _app, "note": _note, "state": _state_tick,
            "device": _note if geo.device_x is None else _device}
    by_entry = {id(entry): i for i, entry in enumerate(row.entry for row in rows)}
    out = []
    for i, row in enumerate(rows):
        if row.entry.kind == "segment":
            drawn = _segment(geo, row, fates.get(by_entry[id(row.entry)]))
        elif row.entry.kind == "silence":
            drawn = _silence(geo, row, _y_at(rows, i, row.entry.t + _window(row.entry, rows, i),
                                             geo.end_y))
        else:
            drawn = draw[row.entry.kind](geo, row)
        out.append(_with_title(drawn, _title(row.entry)))
    return out


def _title(entry: _Item) -> str:
    """What hovering over an event shows: its time, and a segment's absolute numbers."""
    when = f"{entry.t * 1000:.3f} ms"
    event = entry.event
    if entry.kind == "segment":
        return (f"{when}: {'tester -> target' if entry.direction == 'out' else 'target -> tester'}"
                f" {entry.text}\nabsolute seq={event.seq} ack={event.ack}, window {event.window}"
                f", {event.length} octets of data")
    if entry.kind == "silence":
        return (f"{when}: {entry.text}" + (", broken by the segment below" if event.broken
                                            else ", and nothing came"))
    return f"{when}: {entry.text}" + (f" [{entry.mark}]" if entry.mark else "")


def _with_title(group: str, title: str) -> str:
    """An event's group with its <title> first, which browsers show on hover."""
    head, sep, rest = group.partition(">")
    return f"{head}>{'<title>' + svg.esc(title) + '</title>'}{rest}" if sep else group


def _window(entry: _Item, rows: list[Row], i: int) -> float:
    """How long a silence window lasted: until the segment that broke it, or its length."""
    if entry.event.broken:
        after = [r.entry for r in rows[i + 1:]
                 if r.entry.kind == "segment" and r.entry.direction == "in"]
        if after:
            return max(0.0, after[0].t - entry.t)
    return entry.event.duration


def _y_at(rows: list[Row], i: int, t: float, end_y: float) -> float:
    """The y of time t at or after rows[i], between the rows around it (the
    scale is cut at long gaps, so in between it is interpolated)."""
    for before, after in zip(rows[i:], rows[i + 1:]):
        if after.entry.t >= t:
            span = after.entry.t - before.entry.t
            share = (t - before.entry.t) / span if span > 0 else 1.0
            return before.y + share * (after.y - before.y)
    last = rows[-1]
    return min(end_y, last.y + max(0.0, t - last.entry.t) * 1000 * PX_PER_MS)


def _silence(geo: _Geometry, row: Row, bottom: float) -> str:
    """A window in which the case expected no answer: shaded between the
    tester's lifeline and the next, its words at the top; red when a segment
    broke it."""
    broken = row.entry.event.broken
    colour = RED if broken else GREY
    top = row.y
    right = geo.device_x if geo.device_x is not None else geo.target_x
    bottom = max(bottom, top + 6)
    area = (f'<rect class="window" x="{svg.n(geo.tester_x + 2)}" y="{svg.n(top)}" '
            f'width="{svg.n(right - geo.tester_x - 4)}" height="{svg.n(bottom - top)}" '
            f'fill="{"#ffebee" if broken else "#eceff1"}" fill-opacity="0.7" stroke="{colour}" '
            f'stroke-width="0.8" stroke-dasharray="4 3"/>')
    words = row.entry.text + (" [broken]" if broken else "")
    label = svg.text(_note_x(geo.tester_x), top + 12, words, fill=colour, italic=True)
    cls = "silence broken" if broken else "silence"
    return (f'<g class="{cls}" {_data(row)} data-bottom="{svg.n(bottom)}">{area}{label}</g>')


def _segment(geo: _Geometry, row: Row, fate: _Item | None = None) -> str:
    """An arrow between the lifelines, its text above it, its mark as a tag;
    through a device, as far as the device let it go."""
    entry = row.entry
    look = _look(entry.mark)
    seen = fate.event.seen if fate is not None else None
    if entry.direction == "out":
        x1, y1, x2, y2 = geo.tester_x, row.y, geo.target_x, row.y + SLANT_PX
    else:
        x1, y1, x2, y2 = geo.target_x, row.y - SLANT_PX, geo.tester_x, row.y
    cls = " ".join(["seg", entry.direction] + ([svg.slug(entry.mark)] if entry.mark else [])
                   + ([seen] if seen else []))
    extra = ""
    if seen == "drops":
        # The arrow ends at the device, struck through.
        x2, y2 = geo.device_x, row.y + SLANT_PX / 2
        extra = _cross(x2, y2)
    elif seen in ("forwards", "translates"):
        extra = (f'<circle class="crossed" cx="{svg.n(geo.device_x)}" '
                 f'cy="{svg.n(row.y + SLANT_PX / 2)}" r="2.5" fill="{DEVICE_STROKE}"/>')
        if seen == "translates" and fate.event.detail:
            inner_x = (geo.device_x + geo.target_x) / 2
            extra += (f'<text class="translation" x="{svg.n(inner_x)}" '
                      f'y="{svg.n(row.y + SLANT_PX / 2 - 4)}" text-anchor="middle" '
                      f'fill="{DEVICE_STROKE}" font-size="{TAG_FONT_PX}">'
                      f'{svg.esc(fate.event.detail)}</text>')
    arrow = svg.line(x1, y1, x2, y2, cls="arrow", stroke=look.colour, width=1.4, dash=look.dash)
    head = ("" if seen == "drops" else
            f'<polygon class="head" points="{svg.points(_head(x1, y1, x2, y2))}" '
            f'fill="{look.colour}"/>')
    tag = (f'<tspan class="tag" font-size="{TAG_FONT_PX}" font-weight="bold" dx="{TAG_CHAR_PX}">'
           f'[{svg.esc(look.tag)}]</tspan>' if look.tag else "")
    label = (f'<text class="label" x="{svg.n(geo.middle_x)}" y="{svg.n(min(y1, y2) - 4)}" '
             f'text-anchor="middle" fill="{look.colour}">{svg.esc(entry.text)}{tag}</text>')
    return f'<g class="{cls}" {_data(row)}>{arrow}{head}{extra}{label}</g>'


def _cross(x: float, y: float) -> str:
    """Where a dropped segment ends: a red cross on the device's lifeline."""
    strokes = (svg.line(x - 5, y - 5, x + 5, y + 5, cls="stroke", stroke=RED, width=2)
               + svg.line(x - 5, y + 5, x + 5, y - 5, cls="stroke", stroke=RED, width=2))
    return f'<g class="dropped">{strokes}</g>'


def _device(geo: _Geometry, row: Row) -> str:
    """What the device did or holds: a box on its lifeline."""
    entry = row.entry
    x = _device_x(geo.device_x)
    box = (f'<rect x="{svg.n(x)}" y="{svg.n(row.y - 9)}" width="{svg.n(_device_width(entry))}" '
           f'height="18" rx="3" fill="{DEVICE_FILL}" stroke="{DEVICE_STROKE}"/>')
    tick = svg.line(geo.device_x, row.y, x, row.y, cls="tick", stroke=DEVICE_STROKE, width=1)
    label = svg.text(x + 6, row.y + 4, entry.text, fill=INK)
    return (f'<g class="device {svg.slug(entry.event.check)}" {_data(row)}>'
            f'{tick}{box}{label}</g>')


def _head(x1, y1, x2, y2) -> list[tuple[float, float]]:
    """The arrowhead's triangle, its tip at (x2, y2)."""
    length = math.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy
    return [(x2, y2), (bx - 4 * uy, by + 4 * ux), (bx + 4 * uy, by - 4 * ux)]


def _app(geo: _Geometry, row: Row) -> str:
    """A socket call on the target: a small box beside its lifeline."""
    text = _app_text(row.entry)
    box = (f'<rect x="{svg.n(geo.app_x)}" y="{svg.n(row.y - 9)}" width="{svg.n(_app_width(row.entry))}" '
           f'height="18" rx="3" fill="{APP_FILL}" stroke="{APP_STROKE}"/>')
    tick = svg.line(geo.target_x, row.y, geo.app_x, row.y, cls="tick", stroke=APP_STROKE, width=1)
    label = svg.text(geo.app_x + 6, row.y + 4, text, fill=INK)
    return f'<g class="app" {_data(row)}>{tick}{box}{label}</g>'


def _note(geo: _Geometry, row: Row) -> str:
    """Free text across the diagram, on a light ground so the lifelines do not cross it."""
    x, width = _note_x(geo.tester_x), _width(row.entry.text) + 6
    ground = (f'<rect x="{svg.n(x - 3)}" y="{svg.n(row.y - 9)}" width="{svg.n(width)}" height="17" '
              f'fill="#fffde7" fill-opacity="0.9"/>')
    label = svg.text(x, row.y + 4, row.entry.text, fill="#555", italic=True)
    return f'<g class="note" {_data(row)}>{ground}{label}</g>'


def _state_tick(geo: _Geometry, row: Row) -> str:
    """Where a state was looked at: a dotted tick from the target's lifeline to the band."""
    tick = svg.line(geo.target_x, row.y, geo.band_x, row.y, cls="tick", stroke=GREY, width=0.8,
                 dash="1 3")
    return f'<g class="state-entry" {_data(row)}>{tick}</g>'


def _states(geo: _Geometry, entries: list[_Item], rows: list[Row]) -> list[str]:
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
    band = (f'<rect x="{svg.n(geo.band_x)}" y="{svg.n(top)}" width="{BAND_PX}" '
            f'height="{svg.n(bottom - top)}" fill="{fill}" stroke="{stroke}" stroke-width="0.8"/>')
    label = svg.text(geo.band_x + BAND_PX + 6, top + 4, _span_text(span), fill=colour,
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
    return [svg.text(_legend_x(), geo.end_y + 22, _legend_text(), cls="legend", fill="#555",
                  size=11)]


def _empty_svg(tester: str, target: str) -> str:
    title = f"Ladder diagram: {tester} and {target}: nothing happened"
    body = [svg.text(MARGIN_PX, 24, "nothing happened", cls="empty", fill=GREY, italic=True)]
    return svg.document(200, 40, title, body, FONT_PX)


# --- SVG text ----------------------------------------------------------------------


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


def _data(row: Row) -> str:
    """The event's time (seconds) and y, for tests and scripts in the page."""
    return f'data-t="{row.entry.t!r}" data-y="{svg.n(row.y)}"'


