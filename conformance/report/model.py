"""What the report's pages show, computed from a results file: the columns
of the matrix, its rows, the compliance summary by RFC, section and level,
and the requirement index.  Pure functions over plain data, so the pages'
templates only lay it out.

A requirement's standing on a stack comes from the records of the cases that
cite it:

* *deviates* when a case deviated on it (the requirement that decided the
  verdict: fail, warn, info, or known when the baseline lists it);
* *met* when at least one case citing it passed and none deviated on it;
* *undecided* when its cases ended in errors or were not applicable, or
  deviated on another requirement before this one was reached;
* *unchecked* when no case cites it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..requirements import Catalogue
from ..results import DEVIATING, Results

# Worst first: the one a cell shows when its records disagree.
STANDINGS = ("deviates", "known", "undecided", "met", "unchecked")


def page_name(target: str, case: str, family: str) -> str:
    """A record's page, relative to the report directory (a merged report's
    column may be named after a device: its spaces and slashes are not kept)."""
    folder = re.sub(r"[^A-Za-z0-9._@+-]", "_", target)
    return f"cases/{folder}/{case}-{family or 'all'}.html"


@dataclass
class Column:
    target: str
    family: str

    @property
    def key(self) -> tuple[str, str]:
        return self.target, self.family


@dataclass
class Row:
    """One case in the matrix: a cell per (target, family) column."""
    case: str
    title: str
    cells: list[dict | None]
    rfcs: list[str]
    levels: list[str]
    states: list[str]

    @property
    def statuses(self) -> list[str]:
        return sorted({cell["status"] for cell in self.cells if cell})


def columns(results: Results) -> list[Column]:
    order = {target: i for i, target in enumerate(results.targets)}
    families = results.run.get("families") or ["ipv4", "ipv6"]
    keys = {(r["target"], r["family"]) for r in results.records if r["target"]}
    return [Column(t, f) for t, f in sorted(
        keys, key=lambda k: (order.get(k[0], 99), families.index(k[1]) if k[1] in families else 9))]


def matrix_rows(results: Results, cols: list[Column]) -> list[Row]:
    """Written cases first, in id order, then the grid's cells."""
    by_case: dict[str, dict] = defaultdict(dict)
    states: dict[str, set] = defaultdict(set)
    for rec in results.records:
        if not rec["target"]:
            continue     # an unreadable case file: listed apart, above the matrix
        by_case[rec["case"]][(rec["target"], rec["family"])] = rec
        states[rec["case"]].update(rec.get("states", []))
    rows = []
    for case in sorted(by_case, key=lambda c: (c.startswith("grid."), c)):
        info = results.cases.get(case, {})
        reqs = info.get("requirements", [])
        rows.append(Row(
            case=case, title=info.get("title", ""),
            cells=[by_case[case].get(col.key) for col in cols],
            rfcs=sorted({str(r["rfc"]) for r in reqs}, key=int),
            levels=sorted({r["level"] for r in reqs}, key=("MUST", "SHOULD", "MAY").index),
            states=sorted(states[case] | ({info["start"]} if info.get("start") else set()))))
    return rows


# -- requirements ----------------------------------------------------------------------

@dataclass
class RequirementRow:
    id: str
    rfc: int
    section: str
    level: str
    text: str
    in_scope: bool = True
    why: str = ""
    catalogued: bool = True
    cases: list[str] = field(default_factory=list)
    standing: dict[str, str] = field(default_factory=dict)   # target -> standing
    basis: str = ""      # why a deviation has its level (Requirement.basis)

    @property
    def citation(self) -> str:
        return f"RFC {self.rfc} section {self.section}"


def requirement_rows(results: Results, catalogue: Catalogue) -> list[RequirementRow]:
    """Every catalogued requirement, then any a case cites that the catalogue
    lacks, each with its cases and its standing on every stack."""
    rows: dict[str, RequirementRow] = {}
    for entry in catalogue:
        rows[entry.id] = RequirementRow(entry.id, entry.rfc, entry.section, entry.level,
                                        entry.quote, entry.in_scope, entry.why,
                                        basis=entry.basis)
    for case_id, info in sorted(results.cases.items()):
        for req in info.get("requirements", []):
            row = rows.get(req["id"])
            if row is None:
                row = rows[req["id"]] = RequirementRow(
                    req["id"], req["rfc"], req["section"], req["level"], req["text"],
                    catalogued=False, basis=req.get("basis", ""))
            row.cases.append(case_id)
    for row in rows.values():
        row.standing = {target: "unchecked" for target in results.targets}
    evidence: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for rec in results.records:
        if not rec["target"]:
            continue
        cited = [r["id"] for r in results.cases.get(rec["case"], {}).get("requirements", [])]
        for req_id in cited:
            evidence[(req_id, rec["target"])][_bearing(rec, req_id)] += 1
    for (req_id, target), seen in evidence.items():
        if req_id in rows:
            rows[req_id].standing[target] = _standing(seen)
    return list(rows.values())


def _bearing(rec: dict, req_id: str) -> str:
    """What one record says about one requirement its case cites."""
    if rec["status"] in ("pass", "fixed"):
        return "met"
    if rec["status"] in DEVIATING and rec["requirement"] == req_id:
        return "known" if rec["status"] == "known" else "deviates"
    return "undecided"


def _standing(seen: Counter) -> str:
    for standing in ("deviates", "known", "met"):
        if seen[standing]:
            return standing
    return "undecided"


@dataclass
class SummaryRow:
    """Requirements of one RFC (and section, unless it is the RFC's total) at one level."""
    rfc: int
    section: str          # "" for the RFC's total
    level: str
    count: int
    by_target: dict[str, Counter]      # target -> Counter of standings

    @property
    def is_total(self) -> bool:
        return not self.section


def compliance_summary(rows: list[RequirementRow], targets: list[str]) -> list[SummaryRow]:
    """Per RFC, then per section, per level: how many requirements each stack
    meets, deviates from, or leaves undecided.  Only requirements some case
    checks count: the requirement index lists the others."""
    groups: dict[tuple, list[RequirementRow]] = defaultdict(list)
    for row in rows:
        if row.cases:
            groups[(row.rfc, "", row.level)].append(row)
            groups[(row.rfc, row.section, row.level)].append(row)
    out = []
    for (rfc, section, level), members in sorted(groups.items(), key=_summary_order):
        by_target = {t: Counter(m.standing[t] for m in members) for t in targets}
        out.append(SummaryRow(rfc, section, level, len(members), by_target))
    return out


def _summary_order(item) -> tuple:
    (rfc, section, level), _ = item
    numbers = tuple(int(p) if p.isdigit() else 0 for p in section.split(".")) if section else ()
    return rfc != 9293, rfc, numbers, ("MUST", "SHOULD", "MAY").index(level)


# -- the first page: executive summary, documented deviations, reproduce -------------

LEVELS = ("MUST", "SHOULD", "MAY")
# The parts of a stack's bar, in the order drawn.
BAR_PARTS = ("met", "known", "deviates", "undecided")


@dataclass
class LevelTally:
    """One stack's requirements of one level that some case it ran checks."""
    level: str
    counts: Counter

    @property
    def total(self) -> int:
        return sum(self.counts[p] for p in BAR_PARTS)

    def share(self, part: str) -> float:
        """The part's width in the bar, in percent."""
        return round(100 * self.counts[part] / self.total, 2) if self.total else 0.0


def executive_summary(rows: list[RequirementRow], targets: list[str]) -> dict[str, list[LevelTally]]:
    """Per stack and level: how many of the requirements its cases checked it
    meets, deviates from (known: listed in its baseline) or leaves undecided.
    A requirement no case of the stack's ran is not counted for it."""
    out = {}
    for target in targets:
        tallies = []
        for level in LEVELS:
            counts = Counter(row.standing.get(target, "unchecked") for row in rows
                             if row.level == level)
            counts.pop("unchecked", None)
            if counts:
                tallies.append(LevelTally(level, counts))
        out[target] = tallies
    return out


@dataclass
class Documented:
    """A baselined deviation (KNOWN), its families collapsed."""
    target: str
    case: str
    requirement: str
    level: str
    where: str
    reason: str
    families: list[str]
    actual: str


def documented_deviations(results: Results) -> list[Documented]:
    """Every KNOWN record with its baseline's reason, by target then case."""
    found: dict[tuple, Documented] = {}
    for rec in results.records:
        if rec["status"] != "known" or not rec.get("baseline"):
            continue
        key = (rec["target"], rec["case"], rec["requirement"], rec["baseline"]["reason"])
        if key not in found:
            found[key] = Documented(rec["target"], rec["case"], rec["requirement"], rec["level"],
                                    rec["baseline"]["where"], rec["baseline"]["reason"], [],
                                    rec["actual"])
        found[key].families.append(rec["family"])
    order = {t: i for i, t in enumerate(results.targets)}
    return sorted(found.values(), key=lambda d: (order.get(d.target, 99), d.case))


def rfc_url(rfc: int | str, section: str = "") -> str:
    """The requirement's RFC at the RFC Editor, at its section when it has one."""
    url = f"https://www.rfc-editor.org/rfc/rfc{rfc}.html"
    section = str(section or "").strip()
    if section and section[0].isdigit():
        return f"{url}#section-{section}"
    if section:      # an appendix: "A.1"
        return f"{url}#appendix-{section}"
    return url


def run_of(results: Results, rec: dict) -> dict:
    """The run a record came from: a merged report keeps each input's run."""
    inputs = results.run.get("inputs") or []
    index = rec.get("input")
    if isinstance(index, int) and 0 <= index < len(inputs):
        return inputs[index]["run"]
    return results.run


def reproduce(rec: dict, case: dict, run: dict) -> list[tuple[str, str]]:
    """The commands that run just this case again on this target and family,
    from the folder the sweep ran in: tcpconf's, and plain pytest's."""
    import shlex
    target = rec.get("swept_as") or rec["target"]
    options = list((run.get("selection") or {}).get("rerun_options") or [])
    file = case.get("file") or ""
    if not file or not rec.get("family"):
        return []
    node = f"{rec['case']}[{rec['family']}]"     # one target: the family alone names the item
    where = case.get("catalogue") or file
    tcpconf = ["tcpconf", "sweep", f"{where}::{node}", f"--target={target}",
               f"--family={rec['family']}", "-n", "0", *options]
    pytest = ["pytest", "-p", "conformance.plugin", f"{file}::{node}", f"--target={target}",
              f"--family={rec['family']}", *options]
    return [("tcpconf", shlex.join(tcpconf)), ("pytest", shlex.join(pytest))]
