"""pytest integration: case files become test items, verdicts become outcomes.

* Every ``*.yaml`` under a ``cases`` directory (or named on the command line)
  is collected; each case in it is one item per address family it runs over,
  named ``<case id>[ipv4]`` and ``<case id>[ipv6]``.
* Marks come from the case: the requirement levels (``must``, ``should``,
  ``may``), the RFCs (``rfc9293``, ``rfc5961``), the target's role
  (``listener``, ``client``) and the case's own ``marks``; requirement ids are
  keywords, so ``-m must`` and ``-k RFC5961`` select as expected.
* The case runs in the item's *setup*: if the suite cannot decide (lab broken,
  agent dead, starting state not reached, bad case file) pytest reports an
  ERROR with the reason, never a pass.  The *call* phase turns the verdict
  into an outcome (verdict.judge): a MUST violation fails, printing
  requirement, expected, actual and the ladder in the manner of h2spec; a
  SHOULD deviation is a WARN (a failure with ``--strict``), a MAY one INFO.
  With ``--baseline``, listed deviations are KNOWN and a listed case that
  passes fails as FIXED: the run fails only on change.
* Slow cases (mark ``slow``: timers of many seconds) run only with ``--slow``
  or ``-m slow``; with pytest-xdist (``-n 4``) every worker builds its own lab,
  so slow cases overlap instead of queueing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from .. import runner as runner_module
from .. import summary
from ..lab import preflight
from ..tcp import FAMILIES
from . import keys
from .htmlrows import HtmlReport
from .items import CaseItem, InvalidCase, case_folders, pytest_collect_file, record_settings
from .options import pytest_addoption, read_options
from .selection import SELECTION, SLOW, note_deselected
from .records import pytest_report_teststatus, pytest_runtest_makereport, pytest_terminal_summary
from .sweep import SweepSummary
from .terminal import Terminal
from .workers import auto_workers, available_memory

__all__ = ["pytest_addoption", "pytest_collect_file", "pytest_report_teststatus",
           "pytest_runtest_makereport", "pytest_terminal_summary"]


@pytest.hookimpl(tryfirst=True)    # before JUnit and pytest-html read their paths (rundir.py)
def pytest_configure(config):
    for level in ("must", "should", "may"):
        config.addinivalue_line("markers", f"{level}: cases checking a {level.upper()} requirement")
    for role in ("listener", "client"):
        config.addinivalue_line("markers", f"{role}: cases where the target is the {role}")
    for family in FAMILIES:
        config.addinivalue_line("markers", f"{family}: cases run over {family}")
    read_options(config)
    config.addinivalue_line("markers", "slow: cases that wait on timers of many seconds")
    sweep = None
    if not hasattr(config, "workerinput"):
        # The controller (or the only process): it sees every item's report.
        sweep = SweepSummary(config)
        config.pluginmanager.register(sweep, "tcp-conformance-summary")
        config.pluginmanager.register(Terminal(config, sweep), "tcp-conformance-terminal")
        # SIGTERM as Ctrl-C here too: an xdist controller collects nothing, and
        # would otherwise die at once, with no results.json and no report.
        runner_module.install_signal_handlers(
            pass_to_children=bool(getattr(config.option, "numprocesses", None)))
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlReport(sweep), "tcp-conformance-html")


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """-n auto: workers for the stacks swept (workers.py), not xdist's one
    a core."""
    stacks = [t for t in config.option.target.split(",") if t.strip()]
    return auto_workers(len(stacks), available_memory())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Around pytest's own selection (-k, -m, --lf): a declared case folder
    that holds no case, or folders of YAML that gave no item at all, are
    usage errors (their cases would silently be none).  A case file that could
    not be read stays whatever the selection: nobody can tell whether it held a
    case the selection names.  Slow cases are left out unless asked for
    (--slow, or a -m naming slow)."""
    for folder in case_folders(config):
        if not folder.is_dir():
            raise pytest.UsageError(f"--cases / tcpconf_cases: {folder} is no folder")
        if not any(p.suffix in (".yaml", ".yml") for p in folder.rglob("*")):
            raise pytest.UsageError(f"--cases / tcpconf_cases: {folder} holds no case file "
                                    f"(*.yaml)")
    if not items and config.args_source == pytest.Config.ArgsSource.ARGS:
        # Nothing at all from folders of YAML files: say how they become cases.
        for arg in config.args:
            folder = Path(config.invocation_params.dir, arg.split("::")[0])
            if folder.is_dir() and any(folder.rglob("*.yaml")):
                raise pytest.UsageError(
                    f"{arg}: its *.yaml files are not taken as cases: name the folder cases, "
                    f"or pass --cases {arg} (tcpconf sweep {arg} does), or list it in the "
                    f"ini's tcpconf_cases")
    unreadable = [item for item in items if isinstance(item, InvalidCase)]
    items[:] = [item for item in items if not isinstance(item, InvalidCase)]
    try:
        return (yield)
    finally:
        items[:0] = unreadable
        if not _slow_asked(config):
            slow = [item for item in items if item.get_closest_marker("slow") is not None]
            if slow:
                config.hook.pytest_deselected(items=slow)
                items[:] = [item for item in items if item.get_closest_marker("slow") is None]


def _slow_asked(config) -> bool:
    return config.option.slow or "slow" in (config.option.markexpr or "")


def pytest_deselected(items):
    """Everything pytest leaves out (-k, -m, --lf, --deselect, and the slow
    cases without --slow) is kept for results.json's selection."""
    if not items:
        return
    config = items[0].config
    slow_left_out = not _slow_asked(config)
    for item in items:
        slow = slow_left_out and item.get_closest_marker("slow") is not None
        note_deselected(config, [item], SLOW if slow else SELECTION)


def pytest_collection_finish(session):
    """Refuse to start without root or the lab's tools: one message, not one per case."""
    if session.config.option.collectonly:
        return
    if any(isinstance(item, CaseItem) for item in session.items):
        # Every target of the suite's own lab needs it (lwIP and gVisor run
        # in a lab namespace too).
        problems = preflight()
        if problems:
            pytest.exit("cannot build the lab: " + "; ".join(problems),
                        returncode=summary.COULD_NOT_RUN)
        runner_module.install_signal_handlers()     # an xdist worker's own


def pytest_sessionfinish(session):
    # The labs come down while the report is written: closing a packet
    # socket waits out an RCU grace period, removing a namespace and ending
    # the agent take milliseconds more, none of which the report needs.
    # pytest_unconfigure waits for it; the thread is not a daemon, so the
    # process does not end before the labs are gone in any case.
    stopping = _LabsStopping(list(session.config.stash.get(keys.RUNNERS, {}).values()))
    session.config.stash[_STOPPING] = stopping
    stopping.start()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: its labs' settings go to the controller's summary.
        workeroutput["tcpconf_settings"] = session.config.stash.get(keys.SETTINGS, {})
        workeroutput["tcpconf_deselected"] = session.config.stash.get(keys.DESELECTED, [])


_STOPPING = pytest.StashKey["_LabsStopping"]()


class _LabsStopping(threading.Thread):
    """Every runner stopped, in the background; join() re-raises what
    stopping one raised."""

    def __init__(self, runners):
        super().__init__(name="tcpconf-stop-labs")
        self.runners, self.failure = runners, None

    def run(self) -> None:
        for current in self.runners:
            try:
                current.stop()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self.failure = self.failure or exc

    def join(self, timeout=None) -> None:
        super().join(timeout)
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure


def pytest_unconfigure(config):
    stopping = config.stash.get(_STOPPING, None)
    if stopping is not None:
        stopping.join()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: every worker writes its captures into the controller's run directory."""
    run_dir = node.config.stash.get(keys.RUN_DIR, None)
    if run_dir is not None:
        node.workerinput["tcpconf_run_dir"] = str(run_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist: keep each target's settings from the first worker that reports
    them (every worker builds its labs the same way)."""
    output = getattr(node, "workeroutput", {}) or {}
    for target, settings in (output.get("tcpconf_settings") or {}).items():
        record_settings(node.config, target, settings)
    # Every worker collects the same items: the first to report says what was left out.
    if output.get("tcpconf_deselected") and not node.config.stash.get(keys.DESELECTED, None):
        node.config.stash[keys.DESELECTED] = list(output["tcpconf_deselected"])


