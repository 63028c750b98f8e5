"""Reading the target's TCP state for a ``state`` step, as evidence.

Two observers, one chosen per case: :class:`AgentObserver` asks the target's
application side (the agent) and polls until the expected state shows or the
step's time is up; :class:`ProbeObserver`, without an agent, decides a final
state check by a wire probe (probe.py) and leaves the others not observable.
Each returns an :class:`Observation`: what the ladder shows, whether the
check was decided, what stays unobserved, and the failure, if any; the
engine turns it into the run's evidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import tcp
from .evidence import NoteEvent, StateEvent
from .steps import StateCheck
from .stream import Flow


@dataclass
class Observation:
    event: StateEvent                     # the state check on the ladder
    observed: bool = False                # the target showed something (state or probe answer)
    decided: bool = False                 # a check of the case's own steps was decided
    unobserved: str = ""                  # what the target could not show
    failure: tuple[str, str] | None = None  # (expected, actual) when the check fails
    notes: list = field(default_factory=list)   # ladder notes made on the way (the probe)


def not_observable(step: StateCheck, reason: str) -> Observation:
    return Observation(StateEvent(time.time(), step.state, reason=reason),
                       unobserved=f"state {step.state} (line {step.line})")


class AgentObserver:
    """The state as the target's kernel reports it (Application.state)."""

    def __init__(self, app, reason: str):
        self.app, self.reason = app, reason     # reason: why a state may not show

    def check(self, step: StateCheck, flow: Flow, in_case: bool) -> Observation:
        """Poll until the state is the expected one or `within` passes.

        LISTEN means what RFC 9293 3.10.7.4 means when a reset SYN-RECEIVED
        connection "returns to LISTEN": no connection block for the 4-tuple
        is left, and the listening socket is still there.  CLOSED means no
        connection block, whatever the listener does."""
        if not self.app.can_show_state(flow):
            return not_observable(step, self.reason)
        deadline = time.time() + step.within
        while True:
            state = self.app.state(flow, step.state)
            if state == step.state or time.time() >= deadline:
                break
            time.sleep(0.005)
        holds = state == step.state
        return Observation(StateEvent(time.time(), step.state, state, holds),
                           observed=True, decided=in_case,
                           failure=None if holds else (f"state {step.state}", f"state {state}"))


class ProbeObserver:
    """Black-box mode: a final state check is decided by a wire probe (the
    checks in `probed`, blackbox.probe_points); the others cannot be seen."""

    def __init__(self, probe, probed: set[int], reason: str):
        self.probe, self.probed, self.reason = probe, probed, reason

    def check(self, step: StateCheck, flow: Flow, in_case: bool) -> Observation:
        if not (in_case and id(step) in self.probed):
            return not_observable(step, self.reason)
        wanted = step.state not in (tcp.CLOSED, tcp.LISTEN)
        notes = [NoteEvent(time.time(), f"wire probe for state {step.state}: is there "
                                        f"a connection?", mark="probe")]
        exists = self.probe.connection_exists(flow)
        if exists is None:
            return Observation(StateEvent(time.time(), step.state,
                                          reason="no answer to the wire probe (black-box mode)"),
                               unobserved=f"state {step.state} (line {step.line}): the wire "
                                          f"probe was not answered", notes=notes)
        found = ("a connection exists (the probe drew an ACK)" if exists else
                 "no connection (the probe drew a RST)")
        event = StateEvent(time.time(), step.state, found, holds=exists == wanted)
        if exists != wanted:
            return Observation(event, observed=True, decided=True, notes=notes,
                               failure=(f"state {step.state}", f"{found}, by a wire probe"))
        unobserved = ""
        if wanted:
            unobserved = (f"state {step.state} (line {step.line}): a wire probe found a "
                          f"connection, not which state it is in")
        elif step.state == tcp.LISTEN:
            unobserved = (f"state LISTEN (line {step.line}): a wire probe found no "
                          f"connection, not whether the listener remains")
        return Observation(event, observed=True, decided=True, unobserved=unobserved,
                           notes=notes)
