"""docs/requirements.md: the catalogue as a table a reviewer reads beside the RFCs.

One row per requirement in scope: its id, where it is, the RFC's sentence as
the catalogue quotes it, the keyword that sentence carries, the level a
deviation is reported at (and why), and the cases that check it.  The page is
generated, never edited by hand; a test checks that the committed page is the
one this module writes::

    python -m conformance.requirements_doc > docs/requirements.md
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from .casefile import load_case_file
from .requirements import Catalogue, load_catalogue

CASES = Path(__file__).resolve().parent / "cases"


def citing_cases(case_dir: Path = CASES) -> dict[str, list[str]]:
    """Requirement id -> the cases citing it, in file order; the grid's cells
    counted, not listed (it has hundreds)."""
    cases: dict[str, list[str]] = defaultdict(list)
    grid: dict[str, int] = defaultdict(int)
    for path in sorted(case_dir.rglob("*.yaml")):
        for case in load_case_file(path):
            for req in case.requirements:
                if "grid" in case.marks:
                    grid[req.id] += 1
                else:
                    cases[req.id].append(case.id)
    for req_id, count in grid.items():
        cases[req_id].append(f"{count} grid cell{'s' if count > 1 else ''}")
    return cases


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render(catalogue: Catalogue, cases: dict[str, list[str]]) -> str:
    wire = catalogue.in_scope()
    checked = sum(1 for entry in wire if cases.get(entry.id))
    by_level = {level: sum(1 for e in wire if e.level == level) for level in ("MUST", "SHOULD", "MAY")}
    lines = [
        "# Requirements in scope",
        "",
        "Generated from `conformance/requirements.yaml` by "
        "`python -m conformance.requirements_doc`; do not edit by hand.",
        "",
        f"{len(wire)} requirements can be checked from the wire ({by_level['MUST']} MUST, "
        f"{by_level['SHOULD']} SHOULD, {by_level['MAY']} MAY as their sentences give them); "
        f"{checked} are checked by a case.  A deviation fails at MUST, warns at SHOULD and "
        "informs at MAY; a sentence without a BCP 14 keyword, or a MUST that holds only for "
        "a stack that adopted an optional mechanism, is reported at the weaker level "
        "(README, \"Levels\").",
        "",
        "| id | where | the RFC's words | keyword | level | cases |",
        "|---|---|---|---|---|---|",
    ]
    for entry in wire:
        level = entry.level if entry.basis == entry.level else f"{entry.level}: {entry.basis}"
        lines.append(" | ".join([
            f"| `{entry.id}`", f"RFC {entry.rfc} {entry.section}", _cell(f"\u201c{entry.quote}\u201d"),
            entry.keyword, _cell(level),
            ", ".join(f"`{c}`" if " " not in c else c for c in cases.get(entry.id, []))
            or "none yet"]) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render(load_catalogue(), citing_cases()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
