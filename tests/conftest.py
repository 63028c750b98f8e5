"""Fixtures for the project's own tests.

Tests that need the lab use one Linux lab for the whole test session (building
one costs about a second); tests that alter the target undo their alterations.

Every test that builds a lab or runs a sweep is marked ``lab`` (by the
fixtures below, or by its module); the others are pure logic and need no
root: ``./run test -m "not lab"`` runs them in seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

from conformance.casefile import load_case_file
from conformance.lab import list_namespaces, preflight
from conformance.runner import Runner

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"


# Fixtures that build a lab or sweep: a test using one is marked lab.
LAB_FIXTURES = {"linux_runner", "linux", "report_sweep", "runners", "responder", "namespace"}


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: builds a lab or runs a sweep (needs root, or a "
                                       "user namespace)")


def pytest_collection_modifyitems(items):
    for item in items:
        if LAB_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.lab)


def lab_namespaces() -> set[str]:
    return {name for name in list_namespaces() if name.startswith("tcpconf-")}


@pytest.fixture(scope="session")
def linux_runner(tmp_path_factory):
    problems = preflight(("ip", "ethtool", "nft"))
    if problems:
        pytest.fail("these tests drive a real lab: " + "; ".join(problems), pytrace=False)
    runner = Runner.for_target("linux", pcap_dir=tmp_path_factory.mktemp("pcap"))
    with runner:
        yield runner


@pytest.fixture
def linux(linux_runner):
    """The session's Linux lab, with every alteration undone after the test."""
    yield linux_runner
    linux_runner.target.clear_alterations()


@lru_cache(maxsize=None)
def all_cases() -> dict:
    """The written cases for a host by id (the grid's cells have their own tests,
    and the middlebox cases theirs: tests/test_firewall.py); read once per
    session, for the many test modules that parametrize over them."""
    cases = {}
    for path in sorted(CASES.rglob("*.yaml")):
        for case in load_case_file(path):
            if "grid" not in case.marks and case.middlebox is None:
                cases[case.id] = case
    return cases


def line_of(case, marker: str) -> int:
    """The 1-based line of the first line containing `marker` in the case's own document."""
    lines = case.path.read_text().splitlines()
    for number in range(case.line, len(lines) + 1):
        if marker in lines[number - 1]:
            return number
    raise AssertionError(f"{marker!r} not found in {case.path} after line {case.line}")


# A made-up MUST that Linux violates (it answers an in-window RST with a
# challenge ACK, as RFC 5961 wants): a failure a sweep finds every time.
PRETEND_MUST = """\
id: t.must-fails
title: pretends Linux must not send challenge ACKs
requirements: [RFC9293-MUST-13]
families: [ipv4]
target: {role: listener, start: ESTABLISHED}
steps:
  - send: {flags: RST, seq: snd_nxt + 100}
  - silence: 200ms
"""

PASSIVE_OPEN = "handshake/passive-open.yaml"


def closing_count(output: str) -> str:
    """pytest's own closing count ("2 failed, 3 passed in 1.20s"): a sweep's
    output goes on after it, with the suite's summary and the exit status."""
    for line in reversed(output.strip().splitlines()):
        if re.search(r"^=*\s*(no tests ran|\d+ [a-z]+)(, \d+ [a-z]+)* in [\d.]+s", line):
            return line.strip("= ")
    raise AssertionError(f"no pytest count line in:\n{output[-2000:]}")


# The device the shared report sweep names (--dut-name, --dut-version, --dut-notes).
REPORT_DUT = ("--dut-name", "Lab Linux <bench>", "--dut-version", "6.18-lab",
              "--dut-notes", "the kernel's own stack in the suite's lab namespaces")


def run_dir(report: Path) -> Path:
    """The directory of the last run that wrote its report into `report`
    (--report DIR writes DIR/<UTC timestamp>/ and points DIR/latest at it)."""
    return (Path(report) / "latest").resolve()


def sweep(cases: Path, report: Path, *options: str) -> subprocess.CompletedProcess:
    """A real sweep of `cases` against the Linux lab, writing its report into
    `report` (the run's own directory in it: run_dir(report))."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "-q", "-n", "0", str(cases), f"--report={report}", *options],
        cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def report_sweep(tmp_path_factory) -> dict:
    """One real sweep for the report's tests: the passive-open file's cases (they pass
    on Linux) and the pretend MUST (it fails), with --report and --junitxml."""
    root = tmp_path_factory.mktemp("report-sweep")
    cases = root / "cases"
    (cases / "handshake").mkdir(parents=True)
    shutil.copy(CASES / PASSIVE_OPEN, cases / PASSIVE_OPEN)
    (cases / "pretend.yaml").write_text(PRETEND_MUST)
    reports = root / "report"
    result = sweep(cases, reports, f"--junitxml={reports / 'junit.xml'}", *REPORT_DUT)
    report = run_dir(reports)     # junit.xml too: it was named in the report folder
    assert (report / "index.html").exists(), result.stdout + result.stderr
    passing = load_case_file(cases / PASSIVE_OPEN)
    return {"root": root, "cases": cases, "report": report, "reports": reports,
            "result": result,
            "stdout": result.stdout, "passing": passing,
            "items": sum(len(c.families) for c in passing) + 1}


def sigint_as_ctrl_c() -> None:
    """For subprocess's preexec_fn: the child takes SIGINT as Ctrl-C even when
    the tests run where it is ignored (a background job of a shell without job
    control ignores SIGINT, and its children inherit that)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
