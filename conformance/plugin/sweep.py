"""The controller's view of a sweep: every decided item's record gathered,
results.json and the report written (--report), the closing summary per
stack printed last, and the exit status set (conformance.summary)."""

from __future__ import annotations

import time

import pytest

from .. import results, rundir, selection, summary
from ..report import write_report
from . import keys
from .items import CaseItem, strict
from .selection import run_selection


class SweepSummary:
    """In the controller (or the only process): gathers every decided item's
    record, writes results.json and the report (--report), closes the terminal
    output with a summary per stack, and sets the exit status (summary.py)."""

    def __init__(self, config):
        self.config = config
        self.records: list[dict] = []
        self.cases: dict[str, dict] = {}
        self.started, self.clock = results.now(), time.monotonic()
        # --report DIR: this run's own directory in it (rundir.py).
        self.report_dir = config.stash.get(keys.RUN_DIR, None)
        self.announced = False
        self.items = 0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        if any(isinstance(item, CaseItem) for item in session.items):
            self._announce(len(session.items))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """xdist: the controller collects nothing itself; every worker collects all."""
        if not self.announced and any(".yaml::" in nodeid for nodeid in ids):
            self._announce(len(ids))

    def _announce(self, items: int) -> None:
        """Say what is about to be tested before the first packet (also with -q)."""
        config, self.announced, self.items = self.config, True, items
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or config.option.collectonly:
            return
        report = f"{self.report_dir}/index.html" if self.report_dir else "none (--report DIR)"
        reporter.write_line(
            f"TCP conformance: {items} items on {', '.join(config.stash[keys.TARGETS])} over "
            f"{', '.join(config.stash[keys.FAMILIES])}; baseline: "
            f"{config.option.baseline or 'none'}; report: {report}")
        for name, outside in config.stash[keys.OUTSIDE].items():
            reporter.write_line(f"TCP conformance: {name}: {outside.announce()}")

    def pytest_runtest_logreport(self, report):
        fields = getattr(report, "tcpconf", None)
        if fields and "record" in fields:
            self.records.append(fields["record"])
            if "case_info" in fields:
                self.cases.setdefault(fields["record"]["case"], fields["case_info"])

    def results(self, interrupted: bool = False) -> results.Results:
        config = self.config
        baselines = {t: str(b.path) for t, b in config.stash[keys.BASELINES].items()}
        settings = config.stash.get(keys.SETTINGS, {})
        run = results.run_info(
            command=["pytest", *config.invocation_params.args],
            # In the order of --target (xdist workers report in any order); a
            # target that never started has no settings.
            targets={target: settings.get(target, {}) for target in config.stash[keys.TARGETS]},
            families=list(config.stash[keys.FAMILIES]), baselines=baselines,
            strict=strict(config), started=self.started,
            duration=time.monotonic() - self.clock,
            dut={"name": config.option.dut_name, "version": config.option.dut_version,
                 "notes": config.option.dut_notes},
            selection=run_selection(config, self.items, self.cases),
            commit=results.suite_commit(),
            case_files=selection.case_files(
                info["file"] for info in self.cases.values() if info.get("file")))
        run["interrupted"] = interrupted
        return results.Results(run, self.cases, self.records)

    def _stopped_as_asked(self, exitstatus) -> bool:
        """-x or --maxfail N under xdist: its controller ends the session as
        interrupted, where pytest alone ends it as failed."""
        maxfail = self.config.option.maxfail
        failed = sum(r["status"] in ("fail", "error", "fixed") for r in self.records)
        return exitstatus == pytest.ExitCode.INTERRUPTED and bool(maxfail) and failed >= maxfail

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self._stopped_as_asked(exitstatus):
            exitstatus = pytest.ExitCode.TESTS_FAILED
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED and self.announced
        if not self.records and not interrupted:
            if self.report_dir is not None:
                rundir.remove_if_empty(self.report_dir)   # the run wrote nothing
            return
        # An interrupted sweep (Ctrl-C, SIGTERM) still writes what finished.
        if self.report_dir is not None:
            swept = self.results(interrupted)
            results.write_results(self.report_dir / "results.json", swept)
            write_report(self.report_dir, swept)
            rundir.point_latest(self.report_dir)
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = summary.exit_status(self.records)

    @pytest.hookimpl(trylast=True)     # last before pytest's closing line
    def pytest_terminal_summary(self, terminalreporter, exitstatus):
        if not self.records:
            return
        terminalreporter.section("TCP conformance summary")
        if self._stopped_as_asked(exitstatus):
            exitstatus = pytest.ExitCode.TESTS_FAILED
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        for line in summary.closing_summary(self.records, self.cases,
                                            list(self.config.stash[keys.TARGETS]), interrupted):
            terminalreporter.write_line(line)
        if self.report_dir is not None:
            terminalreporter.write_line("")
            index = (self.report_dir / "index.html").resolve()
            terminalreporter.write_line(f"Report:  {index.as_uri()}")
            terminalreporter.write_line(f"Results: {self.report_dir / 'results.json'} "
                                        f"(compare two: tcpconf compare OLD NEW)")
        status = summary.exit_status(self.records)
        if interrupted:
            status = summary.INTERRUPTED
        if interrupted or exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            terminalreporter.write_line(f"Exit status {status}: {summary.EXIT_MEANINGS[status]}")


