"""pytest integration, seen as a user sees it: a sweep over a cases directory."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from scapy.utils import rdpcap

from .conftest import CASES, REPO, lab_namespaces

GOOD = "handshake/passive-open.yaml"
BAD_FILES = {
    # file name: (content, the line the error must name, words it must say)
    "broken-yaml.yaml": ("id: x\ntitle: [unclosed\n", 3, "not valid YAML"),
    "unknown-field.yaml": (
        "id: x\ntitle: t\nrequirements:\n"
        "  - {id: X-1, rfc: 9293, section: '3.5', level: MUST, text: t}\n"
        "target: {role: listener, start: LISTEN}\ncolour: red\n"
        "steps:\n  - silence: 1s\n", 6, "unknown field 'colour'"),
    "wrong-type.yaml": (
        "id: x\ntitle: t\nrequirements:\n"
        "  - {id: X-1, rfc: 9293, section: '3.5', level: MUST, text: t}\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: SYN, win: big}\n  - silence: 1s\n", 7, "window from 0 to 65535"),
    "no-expectation.yaml": (
        "id: x\ntitle: t\nrequirements:\n"
        "  - {id: X-1, rfc: 9293, section: '3.5', level: MUST, text: t}\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: SYN}\n  - expect: {within: 1s}\n", 8, "at least one field to check"),
}


def run_pytest(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "conformance.plugin", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cases_dir(tmp_path):
    root = tmp_path / "cases"
    (root / "handshake").mkdir(parents=True)
    shutil.copy(CASES / GOOD, root / GOOD)
    return root


def test_bad_files_each_give_one_error_and_good_cases_still_run(cases_dir):
    """Each bad file is one ERROR naming file, line and what was expected; good cases pass."""
    for name, (content, _line, _words) in BAD_FILES.items():
        (cases_dir / name).write_text(content)
    result = run_pytest("-q", "-rE", str(cases_dir))
    out = result.stdout
    assert "4 passed" in out and f"{len(BAD_FILES)} errors" in out, out
    for name, (_content, line, words) in BAD_FILES.items():
        errors = [l for l in out.splitlines() if l.startswith("invalid case file:") and name in l]
        assert len(errors) == 1, out
        assert f"{name}:{line}:" in errors[0] and words in errors[0], errors[0]
    assert "Traceback" not in out


def test_failure_prints_requirement_expected_actual_and_ladder(cases_dir):
    """A failing case prints, h2spec-style, the requirement, Expected, Actual and the ladder."""
    result = run_pytest("-q", str(cases_dir), "--target-nft", "out:tcp flags & (syn|ack) == syn|ack drop")
    out = result.stdout
    assert result.returncode == 1, out
    assert "Requirement: RFC9293-3.10.7.2-listen-syn (MUST, RFC 9293 section 3.10.7.2)" in out
    assert "Expected: SYN+ACK ack=1 mss=present, within 1s" in out
    assert "Actual: no segment within 1s" in out
    assert "--> SYN seq=0 win=65535 <mss 1460>" in out


def test_report_shows_requirement_ladder_and_pcap(cases_dir, tmp_path):
    """The self-contained HTML report carries each case's requirement, ladder and capture."""
    report = tmp_path / "report.html"
    result = run_pytest("-q", str(cases_dir), f"--html={report}", "--self-contained-html",
                        f"--pcap-dir={tmp_path / 'pcap'}")
    assert result.returncode == 0, result.stdout
    page = report.read_text()
    assert "RFC9293-3.10.7.2-listen-syn" in page
    assert "SYN+ACK seq=0 ack=1" in page
    assert "data:application/vnd.tcpdump.pcap;base64," in page
    assert "tcp_invalid_ratelimit" in page
    for family in ("ipv4", "ipv6"):
        packets = rdpcap(str(tmp_path / "pcap" / f"handshake.passive-open-{family}.pcap"))
        assert len(packets) >= 3   # a capture Scapy (and so Wireshark) can read


def test_marks_and_keywords_select_cases():
    """-m selects by level and RFC, -k by requirement id."""
    by_mark = run_pytest("--collect-only", "-q", "-m", "rfc5961", "cases")
    assert "rst.in-window-challenge-ack" in by_mark.stdout
    assert "handshake.stale-syn" not in by_mark.stdout
    by_key = run_pytest("--collect-only", "-q", "-k", "RFC9293-MUST-11", "cases")
    assert "handshake.stale-syn" in by_key.stdout
    assert "rst.at-rcv-nxt" not in by_key.stdout


def test_sweep_of_all_cases_passes_and_leaves_nothing(tmp_path):
    """The whole sweep passes against Linux and leaves no namespace behind."""
    before = lab_namespaces()
    result = run_pytest("-q", "cases", f"--html={tmp_path / 'r.html'}", "--self-contained-html",
                        f"--pcap-dir={tmp_path / 'pcap'}")
    assert result.returncode == 0, result.stdout
    assert lab_namespaces() == before
