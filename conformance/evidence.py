"""A case run's evidence as data: the events of its ladder.

An engineer proves a verdict with a ladder diagram: the segments between
tester and target, the calls the target's application made, the states the
target showed when the case looked, and notes on what the suite did.  The
engine records these as typed events, in the order they happen; the terminal,
pytest-html, results.json and the HTML report all read the same events, and
one formatter (:func:`describe`, :func:`tag`, :func:`render_ladder`) writes
them as text.  Nothing downstream parses text back.

In results.json each event is one flat object with ``t`` (seconds since the
case's first event) and ``kind`` (:func:`to_json`, :func:`from_json`)::

    {"t": 0.0012, "kind": "segment", "direction": "in", "flags": ["SYN", "ACK"],
     "seq": 3091772562, "ack": 1000001, "rel_seq": 0, "rel_ack": 1, "window": 64240,
     "length": 0, "urg": 0, "options": [["mss", 1460]], "checksum_ok": true,
     "connection": "", "mark": ""}
    {"t": 0.0031, "kind": "state", "expected": "ESTABLISHED", "observed": "ESTABLISHED",
     "holds": true, "reason": ""}
    {"t": 0.0040, "kind": "app", "call": "accept", "result": "ok"}
    {"t": 0.0051, "kind": "note", "text": "the target followed: ...", "mark": ""}
    {"t": 0.0062, "kind": "device", "check": "crossing", "seen": "forwards",
     "delay_us": 52, "detail": ""}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import ClassVar, Union

from . import tcp


@dataclass
class SegmentEvent:
    """A segment on the wire, as the capture saw it."""

    kind: ClassVar[str] = "segment"
    time: float
    direction: str                  # tcp.OUT: tester -> target; tcp.IN: target -> tester
    flags: int
    seq: int                        # as on the wire
    ack: int
    rel_seq: int | None             # relative to the sender's ISN, as a ladder shows it;
    rel_ack: int | None             # None while that ISN is unknown
    window: int
    length: int = 0                 # payload octets
    urg: int = 0
    options: tuple = ()             # (name, value) pairs as wire.parse_options gives them
    checksum_ok: bool = True
    connection: str = ""            # the case's name for the connection, when it has several
    mark: str = ""                  # "retransmission", "setup", "unexamined", "bad checksum"


@dataclass
class AppEvent:
    """A call of the target's application and its outcome."""

    kind: ClassVar[str] = "app"
    time: float
    call: str                       # "connect to 198.18.0.1:40001", "send 'abc'"
    result: str                     # "ok", "3 bytes", "EOF", an errno name


@dataclass
class StateEvent:
    """A state check: the state the case expected and what the target showed."""

    kind: ClassVar[str] = "state"
    time: float
    expected: str
    observed: str | None = None     # the state shown, or what a wire probe found;
                                    # None: nothing could be observed
    holds: bool | None = None       # whether it is the expected one; None: not observed
    reason: str = ""                # why nothing could be observed


@dataclass
class NoteEvent:
    """What the suite did or concluded, in words."""

    kind: ClassVar[str] = "note"
    time: float
    text: str
    mark: str = ""                  # "probe" for a black-box wire probe, "icmp" for the
                                    # tester's ICMP error, "fence" for a window a fence ended


@dataclass
class DeviceEvent:
    """What the device in the path did (middlebox.py): with the tester's last
    segment (`check` "crossing", `seen` drops, forwards or translates; or
    undecided), what its connection tracking held for the connection (`check`
    "tracking", `seen` a state such as ESTABLISHED, none, or unobservable),
    or how a NAT mapped it beside another connection (`check` "mapping",
    `seen` same port or another port)."""

    kind: ClassVar[str] = "device"
    time: float
    check: str
    seen: str
    delay_us: int | None = None     # crossing: microseconds to the end host's link
    detail: str = ""                # the translation; the tracked entry's time left; the ports


@dataclass
class SilenceEvent:
    """A window in which the case expected no answer (a silence step): from
    `time`, for `duration` seconds; `broken` when a segment came within it
    (that segment is the next event, and the window ended there)."""

    kind: ClassVar[str] = "silence"
    time: float
    duration: float
    broken: bool = False


Event = Union[SegmentEvent, AppEvent, StateEvent, NoteEvent, DeviceEvent, SilenceEvent]
KINDS = {cls.kind: cls for cls in (SegmentEvent, AppEvent, StateEvent, NoteEvent,
                                   DeviceEvent, SilenceEvent)}


# --- the one formatter ---------------------------------------------------------

def describe(event: Event) -> str:
    """The event's line on a ladder, without its tag."""
    if isinstance(event, SegmentEvent):
        text = tcp.format_segment(
            event.flags,
            seq=_shown(event.rel_seq, event.seq),
            ack=_shown(event.rel_ack, event.ack) if event.flags & tcp.ACK or event.ack else None,
            win=event.window, length=event.length or None, urg=event.urg,
            options=event.options, bad_checksum=not event.checksum_ok)
        return f"[{event.connection}] {text}" if event.connection else text
    if isinstance(event, AppEvent):
        return f"{event.call} -> {event.result}"
    if isinstance(event, StateEvent):
        return event.observed if event.observed is not None else \
            f"{event.expected}? not observable"
    if isinstance(event, DeviceEvent):
        return _device_text(event)
    if isinstance(event, SilenceEvent):
        shown = (f"{event.duration * 1000:g}ms" if event.duration < 1
                 else f"{event.duration:g}s")
        return f"expected: nothing for {shown}"
    return event.text


def _device_text(event: DeviceEvent) -> str:
    if event.check == "mapping":
        return f"the NAT maps it to {event.seen} ({event.detail})"
    if event.check == "tracking":
        if event.seen == "unobservable":
            return f"the firewall's tracking of it is not observable ({event.detail})"
        if event.seen == "none":
            return "the firewall tracks no connection for it"
        return f"the firewall tracks it as {event.seen}" + (
            f" ({event.detail})" if event.detail else "")
    if event.seen == "undecided":
        return f"the firewall's handling of it is unknown ({event.detail})"
    if event.delay_us is None:
        return f"the firewall {event.seen} it (it never reached the end host's link" + (
            f"; {event.detail})" if event.detail else ")")
    return (f"the firewall {event.seen} it: at the end host {event.delay_us / 1000:.2f} ms later"
            + (f" ({event.detail})" if event.detail else ""))


def tag(event: Event) -> str:
    """What a ladder writes in brackets after the line: a segment's or note's
    mark; for a state, the expectation it missed or why it was not observable."""
    if isinstance(event, StateEvent):
        if event.observed is None:
            return event.reason
        return "" if event.holds else f"expected {event.expected}"
    if isinstance(event, (AppEvent, DeviceEvent)):
        return ""
    if isinstance(event, SilenceEvent):
        return "broken" if event.broken else ""
    return event.mark


def _shown(relative: int | None, absolute: int) -> int:
    return relative if relative is not None else absolute


def in_order(event: Event) -> tuple:
    """The ladder's order: by time; a silence window after the segment sent
    at the same instant (the one it waits after)."""
    return event.time, event.kind == "silence"


def render_ladder(events: list[Event]) -> list[str]:
    """A text ladder: tester on the left, target on the right, times in ms
    from the first event."""
    if not events:
        return ["(nothing happened)"]
    events = sorted(events, key=in_order)
    t0 = events[0].time
    width = max((len(describe(e)) for e in events if e.kind == "segment"), default=20)
    out = [f"{'ms':>9}  tester{' ' * (width + 4)}target"]
    for event in events:
        stamp = f"{(event.time - t0) * 1000:9.3f}"
        mark = f"  [{tag(event)}]" if tag(event) else ""
        text = describe(event)
        if event.kind == "segment" and event.direction == tcp.OUT:
            body = f"  --> {text.ljust(width)} -->"
        elif event.kind == "segment":
            body = f"  <-- {text.ljust(width)} <--"
        else:
            body = f"      {' ' * width}     | {event.kind}: {text}"
        out.append(f"{stamp}{body}{mark}")
    return out


def states_checked(events: list[Event]) -> list[str]:
    """The states the case's checks expected, in order, each once."""
    return list(dict.fromkeys(e.expected for e in events if isinstance(e, StateEvent)))


# --- results.json --------------------------------------------------------------------

def to_json(events: list[Event]) -> list[dict]:
    """The events in time order as plain JSON objects, times from the first."""
    events = sorted(events, key=in_order)
    t0 = events[0].time if events else 0.0
    out = []
    for event in events:
        item = {"t": round(event.time - t0, 6), "kind": event.kind}
        for name, kind in _FIELDS[event.kind].items():
            value = getattr(event, name)
            if name == "flags":
                value = tcp.flag_names(value)
            elif name == "options":
                value = [[opt, _option_to_json(v)] for opt, v in value]
            item[name] = value
        out.append(item)
    return out


def from_json(items) -> list[Event]:
    """Events from results.json, checked: a bad one is named by its index
    (ValueError).  Their times are the file's, from the case's first event."""
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"ladder events must be a list, got {type(items).__name__}")
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"ladder event {index}: expected an object, got {item!r}")
        cls = KINDS.get(item.get("kind"))
        if cls is None:
            raise ValueError(f"ladder event {index}: 'kind' must be one of {', '.join(KINDS)}, "
                             f"got {item.get('kind')!r}")
        t = item.get("t")
        if isinstance(t, bool) or not isinstance(t, Real) or not t >= 0 or math.isinf(t):
            raise ValueError(f"ladder event {index}: 't' must be a number of seconds >= 0, "
                             f"got {t!r}")
        values = {}
        for name, kind in _FIELDS[cls.kind].items():
            value = item.get(name)
            if not _is(value, kind):
                raise ValueError(f"ladder event {index} ({cls.kind}): {name!r} must be "
                                 f"{_KIND_WORDS[kind]}, got {value!r}")
            values[name] = value
        if cls is SegmentEvent:
            if values["direction"] not in (tcp.OUT, tcp.IN):
                raise ValueError(f"ladder event {index} (segment): 'direction' must be "
                                 f"'out' or 'in', got {values['direction']!r}")
            try:
                values["flags"] = tcp.flag_bits(values["flags"])
            except ValueError as exc:
                raise ValueError(f"ladder event {index} (segment): 'flags': {exc}") from None
            values["options"] = tuple((opt[0], _option_from_json(opt[1]))
                                      for opt in values["options"])
        events.append(cls(time=float(t), **values))
    return events


# Each kind's fields in results.json and the JSON type each must have.
_INT, _OPT_INT, _STR, _OPT_STR, _BOOL, _OPT_BOOL, _LIST, _NUM = \
    "int", "int?", "str", "str?", "bool", "bool?", "list", "number"
_FIELDS = {
    "segment": {"direction": _STR, "flags": _LIST, "seq": _INT, "ack": _INT,
                "rel_seq": _OPT_INT, "rel_ack": _OPT_INT, "window": _INT, "length": _INT,
                "urg": _INT, "options": _LIST, "checksum_ok": _BOOL, "connection": _STR,
                "mark": _STR},
    "app": {"call": _STR, "result": _STR},
    "state": {"expected": _STR, "observed": _OPT_STR, "holds": _OPT_BOOL, "reason": _STR},
    "note": {"text": _STR, "mark": _STR},
    "device": {"check": _STR, "seen": _STR, "delay_us": _OPT_INT, "detail": _STR},
    "silence": {"duration": _NUM, "broken": _BOOL},
}
_KIND_WORDS = {_INT: "an integer", _OPT_INT: "an integer or null", _STR: "a string",
               _OPT_STR: "a string or null", _BOOL: "true or false",
               _OPT_BOOL: "true, false or null", _LIST: "a list",
               _NUM: "a number of seconds >= 0"}


def _is(value, kind: str) -> bool:
    if kind.endswith("?") and value is None:
        return True
    base = kind.rstrip("?")
    if base == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if base == _STR:
        return isinstance(value, str)
    if base == _BOOL:
        return isinstance(value, bool)
    if base == _NUM:
        return (isinstance(value, Real) and not isinstance(value, bool) and value >= 0
                and not math.isinf(value))
    if value is None or not isinstance(value, list):
        return False
    # A list: of flag names, or of [name, value] options.
    return all(isinstance(v, str) or (isinstance(v, list) and len(v) == 2
                                      and isinstance(v[0], str)) for v in value)


def _option_to_json(value):
    """An option's value in JSON: numbers and true as they are, a pair (the
    timestamps) as a list, raw octets (an unknown kind) as {"hex": ...}."""
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _option_from_json(value):
    if isinstance(value, dict) and isinstance(value.get("hex"), str):
        return bytes.fromhex(value["hex"])
    if isinstance(value, list):
        return tuple(value)
    return value
