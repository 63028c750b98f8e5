"""The target's states over a case: each state check and how long its state
stood, for the ladder's state band and the case page's table."""

from __future__ import annotations

from dataclasses import dataclass

from ..evidence import Event, StateEvent, describe, tag


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


def state_timeline(events: list[Event]) -> list[StateSpan]:
    """The target's states in time order, each until the next state check;
    times in seconds from the case's first event."""
    events = sorted(events, key=lambda e: e.time)
    t0 = events[0].time if events else 0.0
    states = [e for e in events if isinstance(e, StateEvent)]
    ends = [e.time - t0 for e in states[1:]] + [None]
    return [StateSpan(e.time - t0, end, e) for e, end in zip(states, ends)]
