"""Fixtures for the project's own tests.

Tests that need the lab use one Linux lab for the whole test session (building
one costs about a second); tests that alter the target undo their alterations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.case import load_case_file
from conformance.lab import list_namespaces, preflight
from conformance.runner import Runner

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"


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


def all_cases() -> dict:
    """The written cases by id (the grid's cells have their own tests)."""
    cases = {}
    for path in sorted(CASES.rglob("*.yaml")):
        for case in load_case_file(path):
            if "grid" not in case.marks:
                cases[case.id] = case
    return cases


def line_of(case, marker: str) -> int:
    """The 1-based line of the first line containing `marker` in the case's own document."""
    lines = case.path.read_text().splitlines()
    for number in range(case.line, len(lines) + 1):
        if marker in lines[number - 1]:
            return number
    raise AssertionError(f"{marker!r} not found in {case.path} after line {case.line}")
