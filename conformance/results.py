"""A sweep's results as data: the JSON file that CI reads, that two releases
are compared by (conformance.compare), and that the HTML report is drawn from.

One file holds the run (what was tested: stacks and their settings, families,
baselines, suite version, date, command), each case once (title,
requirements, the steps it expects), and one record per case, target and
address family: the status in the run, the verdict behind it (expected,
actual, the alternative the target followed), the ladder, the capture and the
timing.  Everything in it is plain JSON, so it also travels between
pytest-xdist workers and the controller as it is.

    {"schema": 2, "run": {...}, "cases": {"<case id>": {...}}, "records": [{...}, ...]}

A record's ladder is a list of events, as evidence.to_json writes them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import evidence
from .case import Case, script, script_lines
from .verdict import Verdict

# 2: the ladder as typed events (evidence.py); 1 wrote it as text, which is
# not read back: a schema-1 file's records keep their verdicts, not their ladders.
SCHEMA = 2
READABLE_SCHEMAS = (1, 2)

# Statuses of a record, in the order reports count them.  pass, fail, error
# and n/a are a verdict; warn, info, known and fixed are a verdict weighed by
# the requirement's level and the target's baseline (verdict.judge).
STATUSES = ("pass", "fail", "warn", "info", "known", "fixed", "error", "n/a")
# Statuses that say the target deviates from the requirement that decided.
DEVIATING = ("fail", "warn", "info", "known")


class ResultsError(Exception):
    """A results file that cannot be read: the message names the file and what is wrong."""


def suite_commit(package: Path | None = None) -> dict | None:
    """The git commit of the suite's checkout, {"commit": sha, "dirty": bool}
    (dirty: tracked files changed since); None when the suite is not run from
    a checkout (an installed copy) or git is absent."""
    package = Path(package or Path(__file__).resolve().parent)
    git = shutil.which("git")
    if git is None:
        return None

    def ask(*args: str) -> str | None:
        try:
            done = subprocess.run([git, "-C", str(package), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    # The package's own files must be tracked there: an installed copy in a
    # virtual environment inside some checkout is not that checkout's.
    if ask("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = ask("rev-parse", "HEAD")
    if not commit:
        return None
    changed = ask("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit, "dirty": bool(changed)}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_info(*, command: list[str], targets: dict[str, dict], families: list[str],
             baselines: dict[str, str], strict: bool, started: str, duration: float,
             dut: dict | None = None, selection: dict | None = None,
             case_files: dict[str, str] | None = None, commit: dict | None = None) -> dict:
    """What was tested, for the report's first section: the suite (version,
    the commit of its checkout when it runs from one), the device (dut: name,
    version, notes as the user gave them), the selection (selection.py: the
    command line's choice and what it left out), and the case files run with
    a digest of each and of them all."""
    from . import __version__
    from .selection import cases_digest
    info = {"suite": "tcp-conformance", "version": __version__, "started": started,
            "duration": round(duration, 3), "command": command, "host": platform.node(),
            "kernel": platform.release(), "targets": targets, "families": families,
            "baselines": baselines, "strict": strict,
            "dut": {k: v for k, v in (dut or {}).items() if v},
            "selection": selection or {}}
    if commit:
        info["commit"] = commit
    if case_files is not None:
        info["case_files"] = case_files
        info["cases_digest"] = cases_digest(case_files)
    return info


def case_info(case: Case) -> dict:
    """A case as the report shows it, once per case whatever the number of records."""
    return {"title": case.title, "file": _shown_path(case.path), "line": case.line,
            "catalogue": _in_catalogue(case.path),
            "role": case.role, "start": case.start, "marks": list(case.marks),
            "middlebox": case.middlebox,
            "description": case.description.strip(),
            "requirements": [{"id": r.id, "rfc": r.rfc, "section": r.section,
                              "level": r.level, "keyword": r.keyword, "basis": r.basis,
                              "text": r.quote, "summary": r.summary}
                             for r in case.requirements],
            "script": script(case), "script_lines": script_lines(case)}


def _in_catalogue(path: Path) -> str:
    """A case file of the built-in catalogue by its place there (rst/in-window.yaml),
    which `tcpconf sweep` takes wherever the suite is installed; else empty."""
    from . import CATALOGUE
    resolved = Path(path).resolve()
    return str(resolved.relative_to(CATALOGUE)) if resolved.is_relative_to(CATALOGUE) else ""


def _shown_path(path: Path) -> str:
    """A case file as the engineer typed it: relative to where the sweep ran."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def record(verdict: Verdict, status: str, *, target: str, nodeid: str, deviation=None) -> dict:
    """One case's result on one target (its name in --target) and family."""
    req = verdict.requirement or verdict.case.primary
    return {
        "case": verdict.case.id, "target": target, "family": verdict.family,
        "nodeid": nodeid, "status": status, "outcome": verdict.outcome,
        "requirement": req.id, "level": req.level,
        "expected": verdict.expected, "actual": verdict.actual, "reason": verdict.reason,
        "at": verdict.line, "follows": verdict.alternative or "",
        "followed": list(verdict.followed),
        "unobserved": list(verdict.unobserved),
        "baseline": ({"where": deviation.where, "reason": deviation.reason,
                      "requirement": deviation.requirement}
                     if deviation is not None else None),
        "states": _states(verdict),
        "ladder": evidence.to_json(verdict.ladder),
        "pcap": os.path.abspath(verdict.pcap) if verdict.pcap else "",   # made relative on writing
        "pcap_inside": os.path.abspath(verdict.pcap_inside) if verdict.pcap_inside else "",
        "duration": round(verdict.wall_time, 4), "waits": round(verdict.protocol_waits, 4),
        "unanswered": round(verdict.unanswered, 4), "fenced": list(verdict.fenced),
        "fence_audit": list(verdict.fence_audit),
        "runs": verdict.runs,
        # Runs the link damaged before this one (witness.py), and, when this
        # one was damaged too, what the link did to it.
        "retries": verdict.retries,
        "damage": [d.to_json() for d in verdict.damage],
        "stalled": verdict.stalled,
    }


def undecided_record(*, case: str, target: str, family: str, nodeid: str, reason: str,
                     requirement: str = "", level: str = "", status: str = "error") -> dict:
    """A record for an item that ended before there was a verdict (the target
    could not start; or the case file is invalid, a record with no target and
    no family): an error with the reason; or an item pytest skipped before the
    case ran, not applicable with the reason."""
    return {"case": case, "target": target, "family": family, "nodeid": nodeid,
            "status": status, "outcome": status, "requirement": requirement,
            "level": level, "expected": "", "actual": "", "reason": reason, "at": None,
            "follows": "", "followed": [], "unobserved": [], "baseline": None, "states": [], "ladder": [],
            "pcap": "", "pcap_inside": "", "duration": 0.0, "waits": 0.0, "unanswered": 0.0,
            "fenced": [], "fence_audit": [], "runs": 0, "retries": 0, "damage": [],
            "stalled": ""}


def _states(verdict: Verdict) -> list[str]:
    """The states the case is about: where it starts and every state it checked
    (for the report's filter by state)."""
    return list(dict.fromkeys([verdict.case.start] + evidence.states_checked(verdict.ladder)))


@dataclass
class Results:
    run: dict
    cases: dict[str, dict] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    path: Path | None = None

    @property
    def targets(self) -> list[str]:
        """The targets in the order the sweep named them."""
        named = list(self.run.get("targets", {}))
        seen = dict.fromkeys(named + [r["target"] for r in self.records if r["target"]])
        return list(seen)

    @property
    def unreadable(self) -> list[dict]:
        """Records of case files the suite could not read (no target, no family)."""
        return [r for r in self.records if not r["target"]]

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "run": self.run, "cases": self.cases, "records": self.records}


def write_results(path: Path, results: Results) -> None:
    """Write the file; capture paths become relative to it, so the report
    directory can be moved or handed over whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for rec in results.records:
        for key in ("pcap", "pcap_inside"):
            if rec.get(key) and os.path.isabs(rec[key]):
                rec[key] = os.path.relpath(rec[key], path.parent)
    path.write_text(json.dumps(results.to_json(), indent=1), encoding="utf-8")
    results.path = path


_RECORD_KEYS = {"case": str, "target": str, "family": str, "status": str}


def load_results(path: Path) -> Results:
    """Read a results file written by write_results, or say clearly why not."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "records" not in data:
        raise ResultsError(f"{path}: not a results file of this suite (expected an object "
                           f"with schema, run, cases and records)")
    if data.get("schema") not in READABLE_SCHEMAS:
        raise ResultsError(f"{path}: results schema {data.get('schema')!r}; this suite reads "
                           f"schema {' and '.join(map(str, READABLE_SCHEMAS))}")
    for index, rec in enumerate(data["records"]):
        for key, kind in _RECORD_KEYS.items():
            if not isinstance(rec, dict) or not isinstance(rec.get(key), kind):
                raise ResultsError(f"{path}: records[{index}].{key}: expected a string")
        if rec["status"] not in STATUSES:
            raise ResultsError(f"{path}: records[{index}].status: expected one of "
                               f"{', '.join(STATUSES)}; got {rec['status']!r}")
        if data["schema"] == 1:
            rec["ladder"] = []
        try:
            evidence.from_json(rec.get("ladder", []))   # checked here, read by the report
        except ValueError as exc:
            raise ResultsError(f"{path}: records[{index}].ladder: {exc}") from None
    return Results(run=data.get("run", {}), cases=data.get("cases", {}),
                   records=data["records"], path=path)
