"""What an exploration found, from the sweep's records and the model's
expansions: each deviating record becomes a finding at the event (and the
model's state, event and position there) whose step decided it; the path
each target took through the branches gives the transitions it exercised;
and the stacks' records side by side say where they disagree.

Pure: records in, typed findings out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..baseline import Baseline
from ..case import Case
from ..model.opening import CHECKS
from ..model.tcb import SYNCHRONIZED
from ..results import DEVIATING
from .expand import Branch, Expansion, Node

KNOWN, NEW = "known", "new"

# The model's (state, event) pairs: every state it decides segments in,
# with each of the grid's nine kinds, and the calls where it models them.
SEGMENT_KINDS = ("rst", "rst-ack", "syn", "syn-ack", "data", "fin", "fin-ack", "data-ack", "ack")
CALL_STATES = {"close": ("ESTABLISHED", "CLOSE-WAIT"),
               "abort": ("SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT")}
STATES = tuple(CHECKS) + SYNCHRONIZED
PAIRS = tuple((s, k) for s in STATES for k in SEGMENT_KINDS) + tuple(
    (s, op) for op, states in CALL_STATES.items() for s in states)
POSITIONS = ("at-rcv-nxt", "in-window", "left-of-window", "right-edge", "beyond-window")
GRID_CELLS = len(SYNCHRONIZED) * len(SEGMENT_KINDS) * len(POSITIONS)


@dataclass(frozen=True)
class Finding:
    target: str
    sequence: str           # the case id of the sequence it was found in
    events: int             # how many events that sequence has
    event: int              # the event (from 1) whose step decided it
    state: str
    kind: str               # the segment's kind, or the call
    position: str
    requirement: str
    level: str
    status: str             # fail, warn or info: the record's
    expected: str
    actual: str
    follows: str = ""
    known: str = NEW        # KNOWN: the target's baseline lists it (see label)

    @property
    def key(self) -> tuple:
        """What makes two findings the same deviation."""
        return (self.target, self.requirement, self.state, self.kind, self.position)

    @property
    def where(self) -> str:
        at = f" {self.position}" if self.position != "-" else ""
        return f"{self.state} {self.kind}{at}"


@dataclass
class Walk:
    """One record read against its expansion."""
    finding: Finding | None
    visited: list[tuple[Node, Branch | None]] = field(default_factory=list)
    error: str = ""


def step_owners(case: Case, expansion: Expansion) -> dict[int, Node]:
    """The node each line of the case's steps belongs to (the loaded case
    and the expansion's data have the same steps, in the same order)."""
    lines: dict[int, Node] = {}

    def walk(steps, owners) -> None:
        for step, owner in zip(steps, owners):
            if isinstance(owner, tuple):
                node, per_alternative = owner
                lines[step.line] = node
                for alternative, owned in zip(step.alternatives, per_alternative):
                    walk(alternative.steps, owned)
            else:
                lines.setdefault(step.line, owner)

    walk(case.steps, expansion.owners)
    return lines


def read_record(record: dict, case: Case, expansion: Expansion) -> Walk:
    """The finding a record makes (None if it conforms), and the nodes the
    target went through, each with the branch it took (None where it
    deviated, or where the record does not say)."""
    if record["status"] == "error":
        return Walk(None, error=record["reason"])
    failed = None
    if record["status"] in DEVIATING and record.get("at") is not None:
        failed = step_owners(case, expansion).get(record["at"])
    visited = _path(expansion.root, list(record.get("followed", [])), failed)
    if record["status"] not in DEVIATING or record["status"] == "known":
        return Walk(None, visited)
    node = failed or (visited[-1][0] if visited else None)
    if node is None:
        return Walk(None, visited, error=f"line {record.get('at')} is no event's step")
    return Walk(Finding(
        target=record["target"], sequence=record["case"],
        events=len(expansion.sequence.events), event=node.index + 1, state=node.state,
        kind=node.event, position=node.position, requirement=record["requirement"],
        level=record["level"], status=record["status"], expected=record["expected"] or "",
        actual=record["actual"] or "", follows=record.get("follows", "")), visited)


def _path(root: Node | None, followed: list[str], failed: Node | None):
    """The nodes from the root the target went through: a single outcome
    is taken; between alternatives, the one the record says it followed."""
    path, node, labels = [], root, iter(followed)
    while node is not None:
        if node is failed:
            path.append((node, None))
            break
        if len(node.branches) == 1:
            branch = node.branches[0]
        else:
            label = next(labels, None)
            branch = next((b for b in node.branches if b.label == label), None)
        path.append((node, branch))
        if branch is None or not branch.outcome.conforms:
            break
        node = branch.then
    return path


def label_known(finding: Finding, baseline: Baseline | None) -> Finding:
    """KNOWN when the target's baseline lists a deviation from the same
    requirement at the same place: the grid's case for the finding's cell
    (state, kind, position); for the states and events the grid has no cell
    for (CLOSED, LISTEN, SYN-SENT, the calls), any case of that requirement."""
    if baseline is None:
        return finding
    listed = {case for (case, _family), dev in baseline.entries()
              if dev.requirement == finding.requirement}
    if finding.state in SYNCHRONIZED and finding.position != "-":
        cell = f"grid.{finding.state}.{finding.kind}.{finding.position}"
        known = cell in listed
    else:
        known = bool(listed)
    return replace(finding, known=KNOWN if known else NEW)


@dataclass
class Coverage:
    """The model's transitions a target's runs went through."""
    pairs: Counter = field(default_factory=Counter)        # (state, event)
    cells: Counter = field(default_factory=Counter)        # (state, kind, position), synchronized
    transitions: Counter = field(default_factory=Counter)  # (state, event, next state)

    def add(self, visited) -> None:
        for node, branch in visited:
            self.pairs[(node.state, node.event)] += 1
            if node.state in SYNCHRONIZED and node.position != "-":
                self.cells[node.cell] += 1
            if branch is not None and branch.outcome.state is not None:
                self.transitions[(node.state, node.event, branch.outcome.state)] += 1

    def summary(self) -> dict:
        return {"pairs": len(self.pairs), "pairs_total": len(PAIRS),
                "grid_cells": len(self.cells), "grid_cells_total": GRID_CELLS,
                "transitions": len(self.transitions)}


def signature(record: dict) -> str | None:
    """What a target did with a sequence, comparable across targets (the
    same case has the same lines everywhere): conformed, or deviated from
    this requirement at this step; None when it was not decided."""
    if record["status"] in ("error", "n/a"):
        return None
    if record["status"] in DEVIATING:
        return f"{record['requirement']} at line {record['at']}"
    return "conforms"


def disagreements(signatures: dict[str, dict[str, str | None]]) -> dict:
    """Where the targets' verdicts on the same sequence differ: `signatures`
    is {sequence: {target: signature}}.  The number of sequences on which
    the targets that decided disagree, and for each target the number on
    which it alone did otherwise than all the others."""
    disagree, alone = 0, Counter()
    for per_target in signatures.values():
        decided = {t: s for t, s in per_target.items() if s is not None}
        if len(decided) < 2 or len(set(decided.values())) == 1:
            continue
        disagree += 1
        counts = Counter(decided.values())
        for target, sig in decided.items():
            if counts[sig] == 1 and len(counts) == 2 and len(decided) > 2:
                alone[target] += 1
    return {"sequences": disagree, "alone": dict(alone)}


def write_finding_case(path: Path, data: dict, finding: Finding, sequence_text: list[str]) -> None:
    """The finding as an ordinary case file: the sequence's case, titled and
    described by what was found."""
    data = dict(data)
    data["title"] = (f"{finding.target} deviates from {finding.requirement} at event "
                     f"{finding.event} ({finding.where})")
    data["description"] = "\n".join(
        [f"Found by tcpconf explore on {finding.target} in sequence {finding.sequence}, "
         f"shrunk to {len(sequence_text) - 1} event(s); the expectations are the reference "
         f"model's.", f"Expected: {finding.expected}", f"Actual: {finding.actual}",
         "Start: " + sequence_text[0]] + [f"Event {i}: {text}"
                                           for i, text in enumerate(sequence_text[1:], 1)])
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")
