"""The ladder's time scale: where each event goes down the page, which gaps
are cut, and how times are written.

Vertical distance is proportional to elapsed time (PX_PER_MS), except that
consecutive events are never closer than MIN_SPACING_PX (so labels never
overlap) and a gap longer than GAP_CAP_MS is cut: drawn BREAK_PX tall, with
its length written beside the axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PX_PER_MS = 0.5          # vertical pixels per millisecond of elapsed time
MIN_SPACING_PX = 28      # between consecutive events: room for a label and a slanted arrow
GAP_CAP_MS = 300         # a longer gap between two events is cut ...
BREAK_PX = 64            # ... and drawn this tall, with a break mark
SLANT_PX = 5             # how far an arrow drops between the two lifelines
TOP_PX = 56              # y of the first event, below the lifelines' names
FONT_PX = 12             # the labels' size: a cut gap leaves room for the one below it


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


def axis_labels(times: list[float]) -> list[str]:
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


@dataclass(frozen=True)
class Row:
    """An event and the y it is drawn at."""

    entry: Any          # anything with its time in seconds as .t
    y: float


@dataclass(frozen=True)
class Break:
    """A cut gap: drawn between `top` and `bottom`, `seconds` long."""

    top: float
    bottom: float
    seconds: float

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def place(entries: list) -> tuple[list[Row], list[Break]]:
    """Each (sorted) entry's y, and the gaps that were cut."""
    rows = [Row(entries[0], TOP_PX)]
    breaks = []
    for entry in entries[1:]:
        y = rows[-1].y
        gap_ms = (entry.t - rows[-1].entry.t) * 1000
        if gap_ms > GAP_CAP_MS:
            # Between the arrow above and the label of the one below.
            breaks.append(Break(y + SLANT_PX + 2, y + BREAK_PX - SLANT_PX - FONT_PX - 2,
                                gap_ms / 1000))
            y += BREAK_PX
        else:
            y += max(MIN_SPACING_PX, gap_ms * PX_PER_MS)
        rows.append(Row(entry, y))
    return rows, breaks
