"""The controller's view of a sweep: every decided item's record gathered,
results.json and the report written (--report), and the exit status set
(conformance.summary); plugin/terminal.py prints them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .. import CATALOGUE, results, rundir, selection, summary
from ..casefile import case_ids_under
from ..report import write_report
from . import keys
from .items import CaseItem, case_folders, strict
from .selection import run_selection
from .terminal import is_case


class SweepSummary:
    """In the controller (or the only process): gathers every decided item's
    record, writes results.json and the report (--report), and sets the exit
    status (summary.py)."""

    def __init__(self, config):
        self.config = config
        self.records: list[dict] = []
        self.cases: dict[str, dict] = {}
        self.started, self.clock = results.now(), time.monotonic()
        # --report DIR: this run's own directory in it (rundir.py).
        self.report_dir = config.stash.get(keys.RUN_DIR, None)
        self.announced = False
        self.items = 0
        # (exit status or None, interrupted) once the session has ended
        self.ended: tuple[int | None, bool] | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        if any(isinstance(item, CaseItem) for item in session.items):
            self._announce(len(session.items))
            self._check_baselines([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """xdist: the controller collects nothing itself; every worker collects all."""
        if not self.announced and any(is_case(nodeid) for nodeid in ids):
            self._announce(len(ids))
            self._check_baselines(ids)

    def _check_baselines(self, nodeids: list[str]) -> None:
        """A baseline entry naming no case, neither of the catalogue nor of the
        files swept, is a warning: renamed since, or a typo, it excuses nothing.
        (The cases left out by a selection are looked for in their files.)"""
        config = self.config
        baselines = config.stash[keys.BASELINES]
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if not baselines or reporter is None or config.option.collectonly:
            return
        swept = {nodeid.split("::", 1)[1].rsplit("[", 1)[0] for nodeid in nodeids
                 if "::" in nodeid}
        if not any(b.naming_none_of(swept) for b in baselines.values()):
            return
        roots = [str(CATALOGUE), *map(str, case_folders(config)),
                 *(str(Path(config.invocation_params.dir, arg.split("::")[0]))
                   for arg in config.args)]
        known = swept | case_ids_under(roots)
        for baseline in baselines.values():
            for case_id, deviation in baseline.naming_none_of(known):
                reporter.write_line(f"TCP conformance: warning: {deviation.where}: "
                                    f"{case_id!r} names no case of the catalogue or of the "
                                    f"files swept (renamed, or a typo?)", yellow=True)

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

    def targets(self) -> list[str]:
        return list(self.config.stash[keys.TARGETS])

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
        # What the closing lines say (plugin/terminal.py): the status, unless
        # pytest itself ended the session otherwise (a usage or internal error).
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self.ended = (summary.INTERRUPTED, True)
        elif exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            self.ended = (session.exitstatus, False)
        else:
            self.ended = (None, False)
