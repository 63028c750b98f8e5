"""What a sweep prints, for an engineer watching it and for a CI log.

While it runs: a progress line at each tenth of the sweep (and at least every
half minute) naming the checks running now, and a one-line notice as each
failure or error arrives, instead of a dot per check.  At the end: the
summary per stack, the failures and deviations grouped by requirement x stack
(conformance.summary), then the report's path and the exit status as the last
lines of the output, after pytest's own count.

With -v, pytest's own lines stay as they are: one per check, and the ladder of
every failure in the FAILURES section; the warnings, known deviations and
the targets' settings are listed in full.
"""

from __future__ import annotations

import sys
import time

import pytest

from .. import summary
from . import keys

PROGRESS_STEPS = 10         # a line at each tenth of the sweep
PROGRESS_EVERY = 30.0       # seconds: and at least this often while checks finish
LOG_WIDTH = 130            # characters of a line written to a file or pipe
DEFAULT_REPORTCHARS = "fE"  # pytest's -r when none is given
SMALL_SWEEP = 20            # fewer checks than this: the notices and the summary suffice


def is_case(nodeid: str) -> bool:
    """An item of a case file (the xdist controller sees node ids only)."""
    path = nodeid.split("::", 1)[0]
    return "::" in nodeid and path.endswith((".yaml", ".yml"))


class Terminal:
    """Registered in the controller (or the only process) beside SweepSummary,
    whose records and exit status it prints."""

    def __init__(self, config, sweep):
        self.config, self.sweep = config, sweep
        self.quiet = config.option.verbose <= 0
        self.sweeping = False            # the session's items are cases
        self.total = 0
        self.done = 0
        self.running: dict[str, None] = {}     # node ids started, in the order they started
        self.next_step = 1
        self.last_line = time.monotonic()

    # -- before the first check -------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self._sweeping([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        if not self.sweeping:
            self._sweeping(ids)

    def _sweeping(self, nodeids: list[str]) -> None:
        if not nodeids or not all(is_case(n) for n in nodeids):
            return      # the project's own tests, or a mix: pytest's terminal as it is
        self.sweeping, self.total = True, len(nodeids)
        reporter = self._reporter()
        if self.quiet and reporter is not None:
            # The closing summary says each failure once; the ladders are in
            # the report (and here with -v).  A -r or --tb of the user's own
            # stays as asked.
            if self.config.option.reportchars == DEFAULT_REPORTCHARS:
                reporter.reportchars = ""
            if self.config.option.tbstyle == "auto":
                self.config.option.tbstyle = "no"
            # Nor a file's name before letters that are not written, nor a
            # percentage after them.
            reporter.showfspath = False
            reporter._show_progress_info = False

    # -- while it runs ------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report, config):
        result = yield
        if self.sweeping and self.quiet and is_case(report.nodeid) and result:
            # No letter: progress lines and notices say more than 900 dots.
            # (The word stays: -r's short summary names each item with it.)
            category, _letter, word = result
            return category, "", word
        return result

    def pytest_runtest_logstart(self, nodeid, location):
        if self.sweeping:
            self.running[nodeid] = None

    @pytest.hookimpl(trylast=True)      # after SweepSummary has taken the record
    def pytest_runtest_logreport(self, report):
        fields = getattr(report, "tcpconf", None)
        if not (self.sweeping and fields and "record" in fields):
            return
        self.running.pop(report.nodeid, None)
        self.done += 1
        record = fields["record"]
        reporter = self._reporter()
        if reporter is None or not self.quiet:
            return
        if record["status"] in ("fail", "fixed", "error"):
            reporter.write_line(self._fit(notice(record)), red=True)
        if self.total >= SMALL_SWEEP and self.done < self.total:
            now = time.monotonic()
            if (self.done * PROGRESS_STEPS >= self.next_step * self.total
                    or now - self.last_line >= PROGRESS_EVERY):
                while self.done * PROGRESS_STEPS >= self.next_step * self.total:
                    self.next_step += 1
                self.last_line = now
                reporter.write_line(self._fit(self._progress()))

    def _progress(self) -> str:
        failed = sum(r["status"] in ("fail", "fixed") for r in self.sweep.records)
        errors = sum(r["status"] == "error" for r in self.sweep.records)
        tally = f"{failed} failed" + (f", {errors} errors" if errors else "")
        now = ", ".join(nodeid.split("::", 1)[1] for nodeid in self.running)
        return (f"[{self.done * 100 // self.total:3d}%] {self.done}/{self.total} checks, "
                f"{tally}" + (f"; running {now}" if now else ""))

    # -- the end -----------------------------------------------------------

    def pytest_unconfigure(self, config):
        """After pytest's own closing count: the answer comes last."""
        reporter = self._reporter()
        ended = self.sweep.ended
        if reporter is None or ended is None or not self.sweep.records:
            return
        exitstatus, interrupted = ended
        reporter.write_sep("=", "TCP conformance summary")
        for line in summary.closing_summary(self.sweep.records,
                                            list(config.stash[keys.TARGETS]), interrupted,
                                            width=self._width()):
            reporter.write_line(line)
        report_dir = self.sweep.report_dir
        if report_dir is not None:
            reporter.write_line("")
            reporter.write_line(f"Report:  {(report_dir / 'index.html').resolve().as_uri()}")
            reporter.write_line(f"Results: {report_dir / 'results.json'} "
                                f"(compare two: tcpconf compare OLD NEW)")
        if exitstatus is not None:
            reporter.write_line(f"Exit status {exitstatus}: "
                                f"{summary.EXIT_MEANINGS[exitstatus]}",
                                bold=True, red=exitstatus != summary.CONFORMANT,
                                green=exitstatus == summary.CONFORMANT)

    def _reporter(self):
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _width(self) -> int:
        """The terminal's width; a log (CI) has no width, so lines may be longer."""
        reporter = self._reporter()
        width = reporter._tw.fullwidth if reporter is not None else 80
        return width - 1 if sys.stdout.isatty() else max(width, LOG_WIDTH)

    def _fit(self, line: str) -> str:
        return summary.fit(line, self._width())


def notice(record: dict) -> str:
    """One line as a failure or error arrives: where, and why in brief."""
    where = f"{record['target']}  {record['case']}[{record['family']}]" if record["target"] \
        else record["case"]
    status = record["status"].upper().ljust(5)
    if record["status"] == "error":
        return f"{status} {where}: {summary.first_line(record.get('reason'))}"
    why = ("passes now: out of the baseline" if record["status"] == "fixed"
           else record.get("actual") or "")
    return f"{status} {where}  {record['requirement']} ({record['level']}): {why}"
