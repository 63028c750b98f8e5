"""Matching the target's answers against a case's expectations: pure functions
of the expected step, the segment and the tester's connection.

:func:`mismatches` says what is wrong with a segment as the answer to an
``expect`` (an empty list when nothing is); :func:`candidates` says which
alternatives of a ``one_of`` an answer (or its silence) fits.  Neither reads
the wire or the clock: the engine passes the segment, and the time the step's
window opened, in.
"""

from __future__ import annotations

from . import tcp
from .connection import Connection
from .outcomes import CannotDecide
from .seq import seq_diff
from .steps import ISN_COMPARISONS, Expect, StateCheck


def mismatches(step: Expect, seg: tcp.Segment, conn: Connection, ref: float,
               variables: dict[str, int]) -> list[str]:
    """What is wrong with `seg` as the answer `step` expects, each in a few
    words; `ref` is when the step's time window opened, `variables` the
    connection's variables when it did."""
    problems = []
    if step.flags is not None and (seg.flags & 0xFF & ~step.optional_flags) != step.flags:
        problems.append(f"flags are {tcp.format_flags(seg.flags)}")
    if step.seq is not None:
        # A SYN's sequence number counts from itself (it is a new ISN).
        own_isn = seg.seq if seg.has(tcp.SYN) else (conn.irs or 0)
        want, got = step.seq.evaluate(variables), seq_diff(seg.seq, own_isn)
        if got != want:
            problems.append(f"seq is {got}, not {want}")
    if step.ack is not None:
        want, got = step.ack.evaluate(variables), seq_diff(seg.ack, conn.iss)
        if got != want:
            problems.append(f"ack is {got}, not {want}")
    if step.isn is not None:
        problems += isn_mismatch(step, seg, conn, variables)
    if step.win is not None and seg.window != step.win:
        problems.append(f"window is {seg.window}")
    if step.length is not None and len(seg.payload) != step.length:
        problems.append(f"length is {len(seg.payload)}")
    if step.data is not None and seg.payload != step.data:
        problems.append(f"data is {seg.payload[:40]!r}")
    for name, want in step.options.items():
        have = seg.option(name)
        if want == "absent" and seg.has_option(name):
            problems.append(f"{name} option present ({have})")
        elif want != "absent" and not seg.has_option(name):
            problems.append(f"no {name} option")
        elif isinstance(want, int) and not isinstance(want, bool) and have != want:
            problems.append(f"{name} is {have}")
    if not seg.checksum_ok:
        problems.append("its TCP checksum is wrong")
    if step.retransmission and not conn.is_retransmission(seg):
        problems.append("it is not a retransmission")
    delay = seg.time - ref
    if delay > step.within:
        problems.append(f"it came after {delay * 1000:.1f} ms")
    if step.after and delay < step.after:
        problems.append(f"it came early, after {delay * 1000:.1f} ms")
    return problems


def isn_mismatch(step: Expect, seg: tcp.Segment, conn: Connection,
                 variables: dict[str, int]) -> list[str]:
    """A new incarnation's ISN, measured from the old connection's ISN (the
    SYN has not re-based the tester's view yet), against the step's
    comparison: 'isn: >= rcv_nxt' is RFC 9293 MAY-2's first condition."""
    if not seg.has(tcp.SYN):
        return []           # the flags check says what is wrong
    if conn.irs is None:
        raise CannotDecide(f"line {step.line}: isn compares a SYN with the connection "
                           f"before it, and this connection had none")
    operator, expression = step.isn
    want, got = expression.evaluate(variables), seq_diff(seg.seq, conn.irs)
    if ISN_COMPARISONS[operator](got, want):
        return []
    return [f"its ISN is {got} from the old ISN, not {operator} {expression} = {want}"]


def candidates(alternatives, seg: tcp.Segment | None, conn: Connection, ref: float,
               start: float, variables: dict[str, int]) -> list:
    """The alternatives the target's answer fits: those whose first expect
    `seg` matches, or, when no segment came within an alternative's silence
    (`start` is when the silence began), those that start with that silence."""
    fits = []
    for alternative in alternatives:
        first = alternative.steps[0]
        if isinstance(first, Expect):
            if seg is not None and not mismatches(first, seg, conn, ref, variables):
                fits.append(alternative)
        elif seg is None or seg.time - start > first.duration:
            fits.append(alternative)
    return fits


def choose(fitting: list, state_of, unobservable: str):
    """The alternative the target followed, among those its answer fits, and
    the label the verdict names: the first, unless several fit and a state
    check right after the answer tells them apart.  `state_of(state)` is the
    target's state in the case language's terms, or None when the target
    cannot show it (`unobservable` says why); then equally conforming
    alternatives stand together, and a conforming one cannot be told from a
    non-conforming one: CannotDecide."""
    chosen = fitting[0] if fitting else None
    label = chosen.label if chosen else ""
    if len(fitting) < 2:
        return chosen, label
    # The same answer on the wire (say, silence after a RST in TIME-WAIT):
    # the state that follows tells the alternatives apart.
    for alternative in fitting:
        if len(alternative.steps) < 2 or not isinstance(alternative.steps[1], StateCheck):
            continue
        wanted = alternative.steps[1].state
        observed = state_of(wanted)
        if observed is None:
            if len({a.conforms for a in fitting}) > 1:
                raise CannotDecide(f"the wire cannot tell {' from '.join(a.label for a in fitting)}"
                                   f" apart, and the state that would is not observable on "
                                   f"{unobservable}")
            # Equally conforming: the verdict stands, but which one the
            # target followed is not known.
            return chosen, (" or ".join(a.label for a in fitting)
                            + " (the state that tells them apart is not observable)")
        if observed == wanted:
            return alternative, alternative.label
    return chosen, label
