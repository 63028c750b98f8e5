"""The compliance report: a directory an engineer opens, a vendor hands over,
and a browser loads quickly with thousands of cases.

    DIR/index.html                   what was tested; compliance per stack by RFC,
                                     section and level; the case x stack matrix
                                     (Autobahn|Testsuite's layout) with filters;
                                     the requirement index, uncovered ones too
    DIR/cases/<target>/<case>-<family>.html
                                     one page per record: requirement, expected
                                     and actual side by side, the alternative the
                                     target followed, the ladder drawn to time
                                     as SVG, the state timeline, the capture
    DIR/pcap/...                     the captures (Wireshark opens them)
    DIR/results.json                 the same results as data (conformance.results)
    DIR/report.css, DIR/report.js    shared by every page

Everything is drawn from a results.Results, so a report can be drawn again
from a results file alone (python -m conformance report results.json DIR).
The pages are static HTML with one small script for the filters: no
framework, no data embedded twice.  benchmarks/report.py measures them: a
report of 5,000 records loads in about 0.4 s in headless Chromium (pytest-html
4 takes about 4.4 s for 5,000 tests), an index of 5,000 cases x 8 columns in
about 2 s.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import jinja2

from .. import evidence
from ..requirements import load_catalogue
from ..results import STATUSES, Results
from ..summary import INTERRUPTED_VERDICT, count_line, stack_verdict, tally
from . import model
from .ladder import ladder_svg
from .model import page_name
from .timeline import state_timeline

__all__ = ["write_report", "page_name"]

STATUS_MEANINGS = {
    "pass": "the target met the requirement",
    "fail": "the target violated a MUST (or a SHOULD with --strict)",
    "warn": "the target deviated from a SHOULD",
    "info": "the target took a different MAY",
    "known": "a deviation listed in the target's baseline",
    "fixed": "listed in the baseline, but the target now conforms",
    "error": "the suite could not decide (lab, target or case file)",
    "n/a": "the case needs something this target does not have",
}


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiling the templates took a fifth of a one-case sweep: their
    bytecode is kept in the user's own temporary directory (jinja2 makes it
    private, and keys each entry by the template's source).  None where that
    directory cannot be had as the user's own (in a user namespace, root's
    is another user's): the templates are then compiled each time."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except OSError:
        return None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance.report", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined, bytecode_cache=_bytecode_cache())
    env.filters["css"] = lambda status: "s-" + status.replace("/", "")
    env.filters["ms"] = lambda seconds: f"{seconds * 1000:.3f}"
    return env


def write_report(directory: Path, results: Results, case_pages: bool = True) -> Path:
    """Write the report into `directory`; returns the index page's path.
    Without `case_pages`, only the index and its stylesheet and script."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env = _environment()
    for name in ("report.css", "report.js"):
        text = resources.files("conformance.report").joinpath("templates", name).read_text()
        (directory / name).write_text(text, encoding="utf-8")

    cols = model.columns(results)
    rows = model.matrix_rows(results, cols)
    requirements = model.requirement_rows(results, load_catalogue())
    targets = results.targets
    totals = tally(results.records, targets)
    index = env.get_template("index.html.j2").render(
        run=results.run, targets=targets, columns=cols, rows=rows,
        verdicts={t: (INTERRUPTED_VERDICT if results.run.get("interrupted")
                      else stack_verdict(totals[t])) for t in targets},
        count_lines={t: count_line(totals[t]) for t in targets},
        summary=model.compliance_summary(requirements, targets),
        requirements=requirements, statuses=STATUSES, meanings=STATUS_MEANINGS,
        unreadable=results.unreadable, page_name=page_name,
        executive=model.executive_summary(requirements, targets), bar_parts=model.BAR_PARTS,
        documented=model.documented_deviations(results), inputs=results.run.get("inputs") or [],
        dut_of=_dut_of(results),
        has_selection=any(r.get("selection") for r in
                          [i["run"] for i in results.run.get("inputs") or []] or [results.run]),
        rfcs=sorted({rfc for row in rows for rfc in row.rfcs}, key=int),
        states=sorted({state for row in rows for state in row.states}))
    (directory / "index.html").write_text(index, encoding="utf-8")
    if case_pages:
        _write_case_pages(directory, results, env)
    return directory / "index.html"


def _dut_of(results: Results) -> dict[str, dict]:
    """Each target's device (--dut-name, --dut-version, --dut-notes): the run's,
    or in a merged report the device of the input the target came from."""
    out = {}
    for rec in results.records:
        if rec["target"] and rec["target"] not in out:
            out[rec["target"]] = model.run_of(results, rec).get("dut") or {}
    for target in results.targets:
        out.setdefault(target, results.run.get("dut") or {})
    return out


def _write_case_pages(directory: Path, results: Results, env: jinja2.Environment) -> None:
    """A page per record of a case on a target (an unreadable case file has none:
    the index names it)."""
    case_page = env.get_template("case.html.j2")
    base = results.path.parent if results.path else directory   # captures are relative to it
    records = [rec for rec in results.records if rec["target"]]
    siblings: dict[str, list[dict]] = {}
    for rec in records:
        siblings.setdefault(rec["case"], []).append(rec)
    for rec in records:
        path = directory / page_name(rec["target"], rec["case"], rec["family"])
        path.parent.mkdir(parents=True, exist_ok=True)
        root = os.path.relpath(directory, path.parent)
        info = results.cases.get(rec["case"], {})
        events = evidence.from_json(rec["ladder"])
        run = model.run_of(results, rec)
        path.write_text(case_page.render(
            rec=rec, case=info, root=root, page_name=page_name, run=run,
            reproduce=model.reproduce(rec, info, run), rfc_url=model.rfc_url,
            script=_script_lines(info, rec),
            siblings=siblings[rec["case"]], meanings=STATUS_MEANINGS,
            requirements=_requirements_first_deciding(info, rec),
            svg=_ladder(events, rec, info),
            timeline=state_timeline(events),
            wire=evidence.render_ladder(events),
            pcap=_pcap_link(rec, base, path.parent),
            pcap_inside=_pcap_link(rec, base, path.parent, "pcap_inside")), encoding="utf-8")


def _script_lines(info: dict, rec: dict) -> list[dict]:
    """The case's steps, each with the case file's line it comes from, the one
    that decided a deviation or an error marked (the verdict's `at`)."""
    texts = info.get("script", [])
    lines = info.get("script_lines") or [None] * len(texts)
    decided = rec.get("at") if rec["status"] not in ("pass", "fixed", "n/a") else None
    return [{"text": text, "line": line, "deciding": decided is not None and line == decided}
            for text, line in zip(texts, lines)]


def _ladder(events, rec: dict, info: dict) -> str:
    """The case's ladder: with a device in the path (a middlebox case), on
    three lifelines, the device being the target."""
    if info.get("middlebox"):
        return ladder_svg(events, tester="tester", target="end host", device=rec["target"])
    return ladder_svg(events, tester="tester", target=rec["target"])


def _requirements_first_deciding(info: dict, rec: dict) -> list[dict]:
    reqs = list(info.get("requirements", []))
    reqs.sort(key=lambda r: r["id"] != rec["requirement"])
    return reqs


def _pcap_link(rec: dict, base: Path, page_dir: Path, key: str = "pcap") -> str:
    """The capture, relative to the page; empty when there is none to link."""
    if not rec.get(key):
        return ""
    pcap = Path(rec[key])
    if not pcap.is_absolute():
        pcap = base / pcap
    return os.path.relpath(pcap, page_dir) if pcap.exists() else ""
