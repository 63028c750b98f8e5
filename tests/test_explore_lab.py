"""tcpconf explore on the Linux lab, end to end: sequences swept, findings
shrunk into case files that reproduce on their own, known deviations told
from new ones by the baseline, and the terminal ending with the answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.casefile import load_case_file

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[1]


def explore(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", "explore", "--report",
                           str(tmp_path), "-n", "2", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


def test_an_exploration_of_linux_finds_shrinks_and_verifies(tmp_path):
    done = explore(tmp_path, "--target", "linux", "--count", "60", "--seed", "5",
                   "--baseline", str(REPO / "baselines"))
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output
    assert done.stdout.strip().splitlines()[-1].startswith(f"Exit status {done.returncode}")
    summary = json.loads((tmp_path / "latest" / "explore.json").read_text())
    findings = summary["findings"]
    assert findings, output
    # Each finding stands only because its shrunk case made it again, alone.
    assert all(f["reproduced"] for f in findings), output
    # Linux's baseline lists the window's right edge, which sequences meet often.
    assert any(f["known"] == "known" for f in findings), output
    assert all(f["events"] <= 5 for f in findings)
    coverage = summary["coverage"]["linux"]
    assert coverage["pairs"] > 20 and coverage["transitions"] > 20
    # A finding is an ordinary case: it loads, and a sweep of it alone deviates.
    first = tmp_path / "latest" / findings[0]["case_file"]
    [case] = load_case_file(first)
    assert case.id.startswith("finding.linux.")
    again = subprocess.run([sys.executable, "-m", "conformance", "sweep", str(first),
                            "--target", "linux", "--family", "ipv4", "-n", "0",
                            f"--report={tmp_path / 'again'}", "-p", "no:cacheprovider"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    records = json.loads((tmp_path / "again" / "latest" / "results.json").read_text())["records"]
    assert [r["status"] for r in records] == [findings[0]["status"]], again.stdout


def test_a_bad_argument_is_a_usage_error_naming_it(tmp_path):
    done = explore(tmp_path, "--count", "0")
    assert done.returncode == 4 and "--count" in done.stderr
