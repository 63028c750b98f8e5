"""Black-box mode: a target without an agent, judged from the wire alone.

A device under test often runs nothing of ours: the suite can only send
segments and read the answers.  Its application is whatever already runs
there, so a case can run only if it asks of the application no more than
a service does by itself:

* a listener case needs a port where a service listens and accepts every
  connection, and never sends or closes on its own (discard, RFC 863, is
  the model: containers/target/tcpconf-hold.py); the user names it with
  --remote-port.  The case's ``listen`` and the ``accept`` of its setup are
  that service's doing;
* a client case without application steps (segments to a port where
  nothing listens) needs such a port: --remote-closed-port;
* any other application step (connect, close, send, recv, socket options, an
  accept whose outcome the case checks) needs an agent: the case is not run,
  and says so before its first segment;
* a state cannot be read, but whether a connection exists can be asked on
  the wire (see the engine's _probe_state): a state check after the case's
  last check on the wire is decided by such a *probe*, as far as a probe can
  tell (a connection, or none).  A state check with wire checks after it is
  not probed, because a probe could disturb what follows (RFC 5961 section
  7 lets a stack rate-limit the ACKs a probe draws, and a case may be about
  to expect one): it is recorded as not observable, and the verdict rests on
  the wire.

The case's starting state comes from its setup's segments: a setup that
does not reach it fails on the wire and the case is an error, as anywhere.
"""

from __future__ import annotations

from .case import DEFAULT_BACKLOG, Case
from .steps import App, Expect, OneOf, Silence, StateCheck


def cannot_run(case: Case, listen_port: int | None, closed_port: int | None) -> str | None:
    """Why `case` cannot run without an agent on the target, or None if it can."""
    if case.sysctls:
        settings = ", ".join(f"{k}={v}" for k, v in case.sysctls.items())
        return f"it needs the target setting(s) {settings}"
    for step in case.setup_steps:
        if isinstance(step, App) and not (case.role == "listener" and step.op == "accept"):
            return f"its starting state {case.start} needs the application to {step.describe()}"
    for step in all_steps(case.steps):
        if isinstance(step, App):
            return (f"it needs the target's application to {step.describe()} "
                    f"({case.path.name}:{step.line})")
    if case.role == "listener":
        if case.sockopts or case.backlog != DEFAULT_BACKLOG:
            return "it needs its listening socket set up (backlog, socket options)"
        if listen_port is None:
            return "it needs a port where the target listens: give --remote-port"
    elif closed_port is None:
        return "it needs a port where nothing listens on the target: give --remote-closed-port"
    return None


def probe_points(steps) -> set[int]:
    """The state checks (by id) that a wire probe decides: those after the
    last check on the wire, at the top level or at the end of the
    alternatives of a final one_of."""
    points: set[int] = set()
    for step in reversed(steps):
        if isinstance(step, StateCheck):
            points.add(id(step))
        elif isinstance(step, OneOf):
            for alternative in step.alternatives:
                points |= probe_points(alternative.steps)
            break
        elif isinstance(step, (Expect, Silence)):
            break
    return points


def all_steps(steps):
    """The steps, and those of every alternative, depth first."""
    for step in steps:
        yield step
        if isinstance(step, OneOf):
            for alternative in step.alternatives:
                yield from all_steps(alternative.steps)
