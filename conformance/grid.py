"""The state-event grid: one table of RFC rules, expanded into one case per cell.

A grid document (``cases/grid/state-event.yaml``) names the synchronized
states, the kinds of segment, the sequence positions and an ordered list of
rules; each (state, segment, position) cell is decided by the first rule
whose ``when`` matches it, in the order of RFC 9293's SEGMENT ARRIVES checks.
Every cell becomes an ordinary :class:`case.Case`, written in the case
language and built by the same loader, so a cell runs, fails and reports
exactly like a hand-written case; its line is the line of the rule that
decided it.  Nothing about the expectations lives here: this module only
substitutes names into the table's own text.

``python -m conformance.grid`` prints the expanded grid, one row per state
and segment, so that a reader can check the table's outcome at a glance.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from . import tcp
from .case import Case, CaseError, build_case
from .requirements import load_catalogue
from .source import Marks, Schema, check_schema, dotted, load_yaml_documents, validator
from .steps import Expect, OneOf, Silence, StateCheck

SCHEMA_PATH = Path(__file__).with_name("grid-schema.yaml")
DEFAULT_GRID = Path(__file__).resolve().parent / "cases" / "grid" / "state-event.yaml"


@lru_cache(maxsize=None)
def _validator() -> Schema:
    return validator(SCHEMA_PATH)


class _RuleMarks(Marks):
    """Every field of a generated case is located at the rule that decided it."""

    def __init__(self, line: int):
        super().__init__()
        self.fixed = line

    def line(self, path) -> int:
        return self.fixed


@dataclass(frozen=True)
class Cell:
    state: str
    segment: str
    position: str
    rule: int        # index of the deciding rule
    line: int        # its line in the grid file
    case: Case


def _names(value) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class GridTable:
    """The grid's table, checked: its states, segments, positions, answers
    and ordered rules.  Expanded into cases (cells), and read by the
    reference model (conformance.model) as its rules for the synchronized
    states."""

    def __init__(self, data: dict, marks: Marks, path: Path):
        self.path, self.marks = path, marks
        check_schema(data, marks, path, _validator())
        grid = data["grid"]
        self.grid = grid
        self.states, self.segments = grid["states"], grid["segments"]
        self.positions, self.answers = grid["positions"], grid["answers"]
        self.rules = grid["rules"]
        self._check_rules()

    def error(self, field_path, message) -> CaseError:
        full = ("grid",) + tuple(field_path)
        return CaseError(self.path, self.marks.line(full), dotted(full), message)

    def _check_rules(self) -> None:
        catalogue = load_catalogue()
        known = {"state": self.states, "segment": list(self.segments),
                 "position": list(self.positions)}
        for i, rule in enumerate(self.rules):
            where = ("rules", i)
            for key, allowed in known.items():
                for name in _names(rule["when"].get(key)) or []:
                    if name not in allowed:
                        raise self.error(where + ("when", key),
                                         f"expected one of {', '.join(allowed)}; got {name!r}")
            if ("one_of" in rule) == ("answer" in rule or "then" in rule):
                raise self.error(where, "a rule needs either answer (and then), or one_of")
            if rule["requirement"] not in catalogue:
                raise self.error(where + ("requirement",), catalogue.unknown(rule["requirement"]))
            for j, branch in enumerate(rule.get("one_of", [rule])):
                here = where + (("one_of", j) if "one_of" in rule else ())
                if branch["requirement"] not in catalogue:
                    raise self.error(here + ("requirement",),
                                     catalogue.unknown(branch["requirement"]))
                if branch.get("answer") not in self.answers:
                    raise self.error(here + ("answer",),
                                     f"expected one of {', '.join(self.answers)}; "
                                     f"got {branch.get('answer')!r}")
                # An answer that ends by checking the state (a branch with
                # conditions of its own, MAY-2's) needs no `then`; any other does.
                last = self.answers[branch["answer"]][-1]
                checks_state = isinstance(last, dict) and "state" in last
                if checks_state and "then" in branch:
                    raise self.error(here + ("then",), f"answer {branch['answer']!r} checks the "
                                                       f"state itself: leave out then")
                if not checks_state:
                    if "then" not in branch:
                        raise self.error(here, f"expected then: answer {branch['answer']!r} "
                                               f"does not check the state")
                    self._check_then(branch["then"], here + ("then",))

    def _check_then(self, then, where) -> None:
        allowed = set(tcp.STATES) | {"same"}
        values = list(then.values()) if isinstance(then, dict) else [then]
        keys = list(then) if isinstance(then, dict) else []
        for value in values:
            if value not in allowed:
                raise self.error(where, f"expected a state name or 'same'; got {value!r}")
        for key in keys:
            if key != "other" and key not in self.states:
                raise self.error(where + (key,), f"expected one of the grid's states or "
                                                 f"'other'; got {key!r}")

    # -- expansion -----------------------------------------------------------

    def decide(self, state: str, segment: str, position: str) -> int:
        for i, rule in enumerate(self.rules):
            when = rule["when"]
            if all(value in (_names(when.get(key)) or [value])
                   for key, value in (("state", state), ("segment", segment),
                                      ("position", position))):
                return i
        raise self.error(("rules",), f"no rule decides the cell {state} / {segment} / "
                                     f"{position}: add one")

    def then_state(self, then, state: str) -> str:
        if isinstance(then, dict):
            then = then.get(state, then.get("other", "same"))
        return state if then == "same" else then

    def cells(self) -> list[Cell]:
        used, cells = set(), []
        for state in self.states:
            for segment in self.segments:
                for position in self.positions:
                    index = self.decide(state, segment, position)
                    used.add(index)
                    line = self.marks.line(("grid", "rules", index))
                    data = self.case_data(state, segment, position, index)
                    case = build_case(data, _RuleMarks(line), self.path)
                    cells.append(Cell(state, segment, position, index, line, case))
        for i in range(len(self.rules)):
            if i not in used:
                raise self.error(("rules", i), "this rule decides no cell: earlier rules "
                                               "match everything it names")
        return cells

    def case_data(self, state: str, segment: str, position: str, index: int) -> dict:
        """One cell written as a case file would write it."""
        rule, seg, pos = self.rules[index], self.segments[segment], self.positions[position]
        flags = tcp.parse_flags(seg["flags"])[0]
        span = max(1, seg.get("len", 0) + bool(flags & tcp.SYN) + bool(flags & tcp.FIN))
        seq = pos["seq"].replace("{span}", str(span))
        send = {"flags": seg["flags"], "seq": seq}
        if seg.get("len"):
            send["len"] = seg["len"]
        steps = [{"send": send, "note": f"{seg['text']} {pos['text']}"}]
        def outcome_steps(branch: dict) -> list:
            answer = self.answer(branch["answer"], seq, rule["requirement"])
            if "then" not in branch:
                return answer
            return answer + [{"state": self.then_state(branch["then"], state)}]

        if "one_of" in rule:
            steps.append({"one_of": [
                {"label": branch["label"], "conforms": branch.get("conforms", True),
                 "requirement": branch["requirement"], "steps": outcome_steps(branch)}
                for branch in rule["one_of"]]})
            outcome = " / ".join(branch["label"] for branch in rule["one_of"])
        else:
            steps += outcome_steps(rule)
            outcome = rule["answer"]
            if "then" in rule:
                outcome += f", then {self.then_state(rule['then'], state)}"
        # The rule's requirement first (a deviation from no alternative is
        # reported at its level), then each alternative's.
        requirements = list(dict.fromkeys(
            [rule["requirement"]] + [branch["requirement"] for branch in rule.get("one_of", [])]))
        return {
            "id": f"{self.grid['id']}.{state}.{segment}.{position}",
            "title": f"{state}: {seg['text']} {pos['text']}: {outcome}",
            "requirements": requirements,
            "target": {"role": "listener", "start": state},
            "marks": ["grid"],
            "steps": steps,
        }

    def answer(self, name: str, seq: str, requirement: str) -> list:
        """An answer's steps for one cell: {seq} is the cell's sequence
        expression, {requirement} the rule's requirement (a branch's own
        condition failing is a deviation from the rule, at its level)."""
        text = yaml.safe_dump(self.answers[name])
        text = text.replace("{seq}", seq).replace("{requirement}", requirement)
        return yaml.safe_load(text)


def expand_grid(data: dict, marks: Marks, path: Path) -> list[Case]:
    """The cases of a grid document, one per cell, in table order."""
    return [cell.case for cell in GridTable(data, marks, Path(path)).cells()]


def grid_cells(path: Path = DEFAULT_GRID) -> list[Cell]:
    """The cells of the grid file (for reports and tests)."""
    (data, marks), = list(load_yaml_documents(Path(path)))
    return GridTable(data, marks, Path(path)).cells()


@lru_cache(maxsize=None)
def rule_table(path: Path = DEFAULT_GRID) -> GridTable:
    """The grid file's table, read once (the reference model's rules)."""
    (data, marks), = list(load_yaml_documents(Path(path)))
    return GridTable(data, marks, Path(path))


def render(cells: list[Cell]) -> str:
    """The grid as a text table: rows state x segment, columns positions."""
    positions = list(dict.fromkeys(c.position for c in cells))
    rows: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in cells:
        rows.setdefault((cell.state, cell.segment), {})[cell.position] = cell
    texts = {(c.state, c.segment, c.position): f"{_brief(c.case)} l.{c.line}" for c in cells}
    width = max(max(map(len, texts.values())), max(map(len, positions)))
    out = [f"{'state':<13} {'segment':<9} " + " ".join(f"{p:<{width}}" for p in positions)]
    for state, segment in rows:
        out.append(f"{state:<13} {segment:<9} " + " ".join(
            texts[state, segment, position].ljust(width) for position in positions))
    return "\n".join(out)


def _brief(case: Case) -> str:
    """'ACK>CLOSE-WAIT' style summary of what a cell expects."""
    for step in case.steps[1:]:
        if isinstance(step, OneOf):
            conforming = [a for a in step.alternatives if a.conforms]
            return " | ".join(_brief_steps(a.steps) for a in conforming)
    return _brief_steps(case.steps[1:])


def _brief_steps(steps) -> str:
    answer = state = ""
    for step in steps:
        if isinstance(step, Silence):
            answer = "none"
        elif isinstance(step, Expect):
            answer = tcp.format_flags(step.flags or 0)
        elif isinstance(step, StateCheck):
            state = step.state
    return f"{answer}>{state}"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT_GRID
    try:
        cells = grid_cells(path)
    except CaseError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(render(cells))
    print(f"\n{len(cells)} cells from {path}: the answer ('none': silence), '>' the state "
          f"that follows, '|' between conforming alternatives, l. the deciding rule's line")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
