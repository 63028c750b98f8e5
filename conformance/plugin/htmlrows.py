"""pytest-html: the title, the requirement columns, and each row's evidence
(requirement, expected and actual, the text ladder, links to the capture and
the case's page)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..evidence import render_ladder
from ..report import page_name
from ..summary import count_line, tally
from ..verdict import ERROR, FAIL, NOT_APPLICABLE, Verdict
from . import keys


class HtmlReport:
    """pytest-html additions: the title, the suite's own counts, and the
    requirement columns (the evidence itself is attached in
    pytest_runtest_makereport)."""

    def __init__(self, sweep=None):
        self.sweep = sweep       # the controller's SweepSummary: every record

    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        """pytest-html counts in pytest's outcomes; the suite's statuses are
        finer.  Said first, with how one maps onto the other."""
        if self.sweep is None or not self.sweep.records:
            return
        lines = [f"<b>{html.escape(target)}</b>: {html.escape(count_line(counts))}"
                 for target, counts in tally(self.sweep.records,
                                             list(self.sweep.targets())).items()]
        prefix.append("<p class='tcpconf-counts'>TCP conformance: " + "; ".join(lines)
                      + ".<br>Below, pytest's outcomes: passed holds passed, warned (SHOULD) "
                        "and info (MAY); skipped holds known (in the baseline) and not "
                        "applicable; failed holds failed and fixed.</p>")

    def pytest_html_report_title(self, report):
        report.title = "TCP conformance report"

    def pytest_html_results_table_header(self, cells):
        cells.insert(1, "<th>Verdict</th>")
        cells.insert(2, "<th>Target</th>")
        cells.insert(4, "<th>Requirement</th>")
        cells.insert(5, "<th>Level</th>")
        cells.insert(6, "<th>Follows</th>")

    def pytest_html_results_table_row(self, report, cells):
        fields = getattr(report, "tcpconf", None) or {}
        # A file that could not be read has no requirement to show.
        requirement = (f"{fields['requirement']} ({fields['citation']})"
                       if "requirement" in fields else "")
        cells.insert(1, f"<td>{html.escape(fields.get('status', '').upper())}</td>")
        cells.insert(2, f"<td>{html.escape(fields.get('target', ''))}</td>")
        cells.insert(4, f"<td>{html.escape(requirement)}</td>")
        cells.insert(5, f"<td>{fields.get('level', '')}</td>")
        cells.insert(6, f"<td>{html.escape(fields.get('follows', ''))}</td>")


def evidence(verdict: Verdict, target: str, config) -> str:
    """The verdict's evidence for pytest-html's row: requirement, expected/actual,
    the text ladder, and links to the capture and to the case's page of --report.
    Links, not embedded data: thousands of rows stay light."""
    case = verdict.case
    here = Path(config.option.htmlpath).resolve().parent
    rows = []
    for req in case.requirements:
        rows.append(f"<li><b>{html.escape(req.id)}</b> ({req.level}, {html.escape(req.citation)}): "
                    f"{html.escape(req.text.strip())}</li>")
    parts = [f"<div class='tcpconf'><h4>{html.escape(case.id)}: {html.escape(case.title)}</h4>",
             f"<p>Target: {html.escape(verdict.target)}. Case file: "
             f"{html.escape(str(case.path))}:{case.line}</p>",
             "<p>Requirements:</p><ul>" + "".join(rows) + "</ul>"]
    if verdict.outcome == FAIL:
        parts.append(f"<p><b>Expected:</b> {html.escape(verdict.expected)}<br>"
                     f"<b>Actual:</b> {html.escape(verdict.actual)}<br>"
                     f"<b>At:</b> {html.escape(str(case.path))}:{verdict.line}</p>")
    if verdict.outcome == ERROR:
        parts.append(f"<p><b>The suite could not decide:</b> {html.escape(verdict.reason)}</p>")
    if verdict.outcome == NOT_APPLICABLE:
        parts.append(f"<p><b>Not run:</b> {html.escape(verdict.reason)}</p>")
    if verdict.unobserved:
        parts.append(f"<p><b>Not observable on this target</b> (the verdict rests on the wire "
                     f"there): {html.escape(', '.join(verdict.unobserved))}</p>")
    if verdict.alternative:
        parts.append(f"<p><b>The target followed:</b> {html.escape(verdict.alternative)}</p>")
    parts.append("<pre>" + html.escape("\n".join(render_ladder(verdict.ladder))) + "</pre>")
    links = []
    run_dir = config.stash.get(keys.RUN_DIR, None)     # --report DIR: this run's directory
    if run_dir is not None:
        page = Path(run_dir).resolve() / page_name(
            target, verdict.case.id, verdict.family)
        links.append(f"<a href='{html.escape(os.path.relpath(page, here))}'>case page "
                     f"with the ladder diagram</a>")
    if verdict.pcap and Path(verdict.pcap).exists():
        name = Path(verdict.pcap).name
        links.append(f"<a download='{html.escape(name)}' href='"
                     f"{html.escape(os.path.relpath(Path(verdict.pcap).resolve(), here))}'>"
                     f"the capture ({html.escape(name)})</a>")
    if links:
        parts.append("<p>" + " &middot; ".join(links) + "</p>")
    parts.append("</div>")
    return "".join(parts)
