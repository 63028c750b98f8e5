"""Each decided item as plain data: its status for the terminal, its record
for results.json (crossing from xdist workers as JSON), its properties for
JUnit, its evidence for pytest-html; and, with -v, the lists of warnings,
information and known deviations at the end of the terminal output."""

from __future__ import annotations

import pytest

from .. import results
from ..verdict import ERROR, INFO, KNOWN, NOT_APPLICABLE, WARN, Verdict
from . import keys
from .items import CaseItem, InvalidCase


_STATUS_WORDS = {WARN: ("warned", "W", "WARN"), INFO: ("info", "i", "INFO"),
                 KNOWN: ("known", "k", "KNOWN")}


def pytest_report_teststatus(report, config):
    status = getattr(report, "tcpconf", {}).get("status")
    if report.when == "call" and status in _STATUS_WORDS:
        category, letter, word = _STATUS_WORDS[status]
        return category, letter, (word, {"yellow": status == WARN, "cyan": status != WARN})
    return None


def pytest_terminal_summary(terminalreporter, config):
    """With -v: every warning, information and known deviation, and the
    targets' settings (without, the closing summary groups them and the
    report lists them)."""
    if config.option.verbose <= 0:
        return
    titles = {WARN: "SHOULD deviations (warnings; --strict makes them fail)",
              INFO: "MAY deviations (information)",
              KNOWN: "known deviations (listed in the baseline)"}
    for status, title in titles.items():
        reports = [r for r in terminalreporter.stats.get(_STATUS_WORDS[status][0], [])]
        if not reports:
            continue
        terminalreporter.section(f"TCP conformance: {title}")
        for report in reports:
            terminalreporter.write_line(report.tcpconf["summary"])
    for target, settings in config.stash.get(keys.SETTINGS, {}).items():
        terminalreporter.section(f"TCP conformance: target {target}")
        for key, value in settings.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, InvalidCase):
        if call.when == "setup":
            # Not a case on a target: a file the suite could not read at all.
            report.tcpconf = {"status": "error", "record": results.undecided_record(
                case=str(item.path.name), target="", family="", nodeid=item.nodeid,
                reason=f"invalid case file: {item.error}")}
        return
    if not isinstance(item, CaseItem):
        return
    verdict = item.stash.get(keys.VERDICT, None)
    if report.skipped and isinstance(report.longrepr, tuple):
        # Point at the case, not at the plugin line that skipped it.
        report.longrepr = (str(item.path), item.case.line, report.longrepr[2])
    report.tcpconf = fields = _report_fields(item, verdict, call.when)
    if not (call.when == "call" or (call.when == "setup" and not report.passed)):
        return
    # The item is decided: its record goes to the controller (plain JSON, so
    # it crosses from an xdist worker as it is), and the status to JUnit.
    # Without a status from the verdict, the item ended before the case ran: it
    # failed (an error) or was skipped (not applicable); never a pass.
    status = fields["status"] or ("n/a" if report.skipped else "error")
    fields["status"] = status
    if verdict is not None:
        fields["record"] = results.record(verdict, status, target=item.target,
                                          nodeid=item.nodeid, deviation=item.deviation())
    else:
        fields["record"] = results.undecided_record(
            case=item.case.id, target=item.target, family=item.family, nodeid=item.nodeid,
            reason=_longrepr_text(report), requirement=item.case.primary.id,
            level=item.case.primary.level, status=status)
    sent = item.config.stash.setdefault(keys.CASES_SENT, set())
    if item.case.id not in sent:     # once per process: the controller keeps the first
        sent.add(item.case.id)
        fields["case_info"] = results.case_info(item.case)
    if status == KNOWN:
        # A documented deviation is neither a pass nor a failure: JUnit (and
        # pytest-html) show it as skipped, with the baseline's reason.
        deviation = item.deviation()
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.case.line - 1,
                           f"known deviation from {fields['requirement']} "
                           f"({fields['level']}), {deviation.where}: {deviation.reason}")
    # JUnit XML takes an item's properties from its teardown report, made from these.
    item.user_properties += [("status", status), ("target", item.target),
                             ("family", item.family), ("requirement", fields["requirement"]),
                             ("level", fields["level"])]
    if fields["follows"]:
        item.user_properties.append(("follows", fields["follows"]))
    if verdict is not None and getattr(item.config.option, "htmlpath", None):
        from .htmlrows import evidence
        import pytest_html    # pytest-html's --html: its row carries the evidence too
        report.extras = getattr(report, "extras", []) + [
            pytest_html.extras.html(evidence(verdict, item.target, item.config))]


def _longrepr_text(report) -> str:
    """A skip's reason, or a failure's text."""
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return str(report.longrepr)


def _report_fields(item: "CaseItem", verdict: Verdict | None, when: str) -> dict:
    """What the terminal and the report show about a case, as plain data
    (xdist carries reports between processes as JSON)."""
    req = (verdict.requirement if verdict and verdict.requirement else None) or item.case.primary
    status = item.stash.get(keys.STATUS, None) if when == "call" else None
    if verdict is not None and verdict.outcome in (ERROR, NOT_APPLICABLE):
        status = verdict.outcome
    fields = {"status": status or "", "target": item.target, "requirement": req.id,
              "level": req.level,
              "citation": req.citation, "follows": (verdict.alternative or "") if verdict else ""}
    if status in (WARN, INFO):
        fields["summary"] = (f"{status.upper()} {item.nodeid}\n  {req.id} ({req.level}, "
                             f"{req.citation})\n  Expected: {verdict.expected}\n"
                             f"    Actual: {verdict.actual}")
    elif status == KNOWN:
        deviation = item.deviation()
        fields["summary"] = (f"KNOWN {item.nodeid}: {req.id} ({req.level})\n  "
                             f"Actual: {verdict.actual}\n  Reason ({deviation.where}): "
                             f"{deviation.reason}")
    return fields


