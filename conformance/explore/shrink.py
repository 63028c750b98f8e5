"""Shrinking a finding's sequence: the shorter sequences to try next.

A finding is decided at one event, so the events after it go first (one
candidate, cut there); then each earlier event in turn, one candidate
without it.  The explorer sweeps a round's candidates together and keeps,
per finding, the first that still makes the same finding (same target,
requirement, state, event and position): greedy one-at-a-time removal, as
delta debugging ends when no single event can go."""

from __future__ import annotations

from dataclasses import replace

from .findings import Finding
from .sequence import Sequence


def candidates(sequence: Sequence, finding: Finding, tag: str) -> list[Sequence]:
    """The shorter sequences to try, named <sequence id>-<tag>-<n>."""
    if finding.event < len(sequence.events):
        shorter = [sequence.through(finding.event - 1)]
    else:
        shorter = [sequence.without(i) for i in range(finding.event - 1)]
    return [replace(s, id=f"{sequence.id}-{tag}-{n}") for n, s in enumerate(shorter)]
