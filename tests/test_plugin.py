"""pytest integration, seen as a user sees it: a sweep over a cases directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.utils import rdpcap

from conformance.results import load_results

from .conftest import CASES, REPO, closing_count, lab_namespaces, run_dir

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

GOOD = "handshake/passive-open.yaml"
BAD_FILES = {
    # file name: (content, the line the error must name, words it must say)
    "broken-yaml.yaml": ("id: x\ntitle: [unclosed\n", 3, "not valid YAML"),
    "unknown-field.yaml": (
        "id: x\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\ncolour: red\n"
        "steps:\n  - silence: 1s\n", 5, "unknown field 'colour'"),
    "wrong-type.yaml": (
        "id: x\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: SYN, win: big}\n  - silence: 1s\n", 6, "window from 0 to 65535"),
    "no-expectation.yaml": (
        "id: x\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: SYN}\n  - expect: {within: 1s}\n", 7, "at least one field to check"),
    # A typo that once raised an IndexError: the file's cases vanished and the run
    # said "conformant".
    "typo-flags.yaml": (
        "id: y\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: +}\n  - silence: 1s\n", 6, "no flag in '+'"),
    "nan.yaml": (
        "id: z\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - send: {flags: SYN}\n  - silence: .nan\n", 7, "a duration from 0 to 600s"),
    "same-id.yaml": (
        "id: handshake.passive-open\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\n"
        "steps:\n  - silence: 1s\n", 1, "the case id 'handshake.passive-open' is already used at"),
    "tracker-timeout.yaml": (
        "id: w\ntitle: t\nrequirements: [RFC5382-REQ-5-established]\n"
        "target: {role: client, start: ESTABLISHED, middlebox: nat}\n"
        "steps:\n  - firewall: {tracks: ESTABLISHED, idle_timeout_at_least: long}\n", 6,
        "idle_timeout_at_least: DURATION (such as 4min); or {same_mapping_as: CONNECTION}; "
        "got {'tracks': 'ESTABLISHED', 'idle_timeout_at_least': 'long'}"),
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


@pytest.mark.parametrize("workers, html", [("0", False), ("2", True)])
def test_bad_files_each_give_one_error_and_good_cases_still_run(cases_dir, workers, html,
                                                                tmp_path):
    """Each bad file is one ERROR naming file, line and what was expected, with or
    without xdist workers, and with pytest-html's report (whose row for a file
    that could not be read once raised an INTERNALERROR); good cases pass, and
    the run could not test everything (exit 3), the files named in the summary."""
    for name, (content, _line, _words) in BAD_FILES.items():
        (cases_dir / name).write_text(content)
    report = [f"--html={tmp_path / 'pytest.html'}"] if html else []
    result = run_pytest("-q", "-rE", "-n", workers, *report, str(cases_dir))
    out = result.stdout
    assert result.returncode == 3, out
    assert "4 passed" in out and f"{len(BAD_FILES)} errors" in out, out
    closing = out.split("TCP conformance summary")[1]
    for name, (_content, line, words) in BAD_FILES.items():
        errors = [l for l in closing.splitlines() if "invalid case file:" in l and name in l]
        assert len(errors) == 1, out
        assert errors[0].startswith(f"  ERROR {name}: ")
        assert f"{name}:{line}:" in errors[0] and words in errors[0], errors[0]
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_a_selection_does_not_hide_a_file_that_could_not_be_read(cases_dir):
    """-k cannot know whether an unreadable file held a case it names: the file's
    error stays, and the run could not test everything (exit 3)."""
    (cases_dir / "broken.yaml").write_text("id: x\ntitle: [unclosed\n")
    result = run_pytest("-q", "-n", "0", "-k", "synack-mss", str(cases_dir))
    assert result.returncode == 3, result.stdout
    assert counts(result.stdout) == {"passed": 2, "deselected": 2, "error": 1}, result.stdout
    assert "ERROR broken.yaml: invalid case file: " in result.stdout


def test_failure_prints_requirement_expected_actual_and_ladder(cases_dir):
    """With -v, a failing case prints, h2spec-style, the requirement, Expected, Actual
    and the ladder; without, its requirement, expected and actual once, in the summary."""
    nft = "out:tcp flags & (syn|ack) == syn|ack drop"
    quiet = run_pytest("-q", str(cases_dir), "--target-nft", nft).stdout
    assert "expected SYN+ACK ack=1 mss=1460, within 1s" in quiet
    assert "actual   no segment within 1s" in quiet and "-->" not in quiet
    result = run_pytest("-v", str(cases_dir), "--target-nft", nft)
    out = result.stdout
    assert result.returncode == 1, out
    assert "Requirement: RFC9293-MUST-14 (MUST, RFC 9293 section 3.7.1)" in out
    assert '"TCP endpoints MUST implement both sending and receiving the MSS Option (MUST-14)."' in out
    assert "Level: MUST" in out
    assert "Expected: SYN+ACK ack=1 mss=1460, within 1s" in out
    assert "Actual: no segment within 1s" in out
    assert "--> SYN seq=0 win=65535 <mss 1460>" in out


def test_pytest_html_rows_carry_the_evidence_and_link_the_capture(cases_dir, tmp_path):
    """pytest-html's report keeps each case's requirement and ladder, and links (not
    embeds) the capture and the case's page of --report, so big sweeps stay light."""
    report = tmp_path / "pytest.html"
    result = run_pytest("-q", str(cases_dir), f"--html={report}", "--self-contained-html",
                        f"--report={tmp_path / 'report'}")
    assert result.returncode == 0, result.stdout
    page = report.read_text()
    assert "RFC9293-3.10.7.2-listen-syn" in page
    assert "SYN+ACK seq=0 ack=1" in page
    run = run_dir(tmp_path / "report")      # the run's own directory
    assert f"report/{run.name}/pcap/handshake.passive-open-ipv4.pcap" in page
    assert f"report/{run.name}/cases/linux/handshake.passive-open-ipv4.html" in page
    assert "data:application/vnd.tcpdump.pcap" not in page
    assert "tcp_invalid_ratelimit" in page
    for family in ("ipv4", "ipv6"):
        packets = rdpcap(str(run / "pcap" / f"handshake.passive-open-{family}.pcap"))
        assert len(packets) >= 3   # a capture Scapy (and so Wireshark) can read


def test_marks_and_keywords_select_cases():
    """-m selects by level and RFC, -k by requirement id."""
    by_mark = run_pytest("--collect-only", "-q", "-m", "rfc5961", "cases")
    assert "rst.in-window-challenge-ack" in by_mark.stdout
    assert "handshake.stale-syn" not in by_mark.stdout
    by_key = run_pytest("--collect-only", "-q", "-k", "RFC9293-MUST-11", "cases")
    assert "handshake.stale-syn" in by_key.stdout
    assert "rst.at-rcv-nxt" not in by_key.stdout


def test_sweep_with_the_baseline_passes_and_leaves_nothing(tmp_path):
    """A sweep against Linux with its baseline passes and leaves no namespace behind
    (CI sweeps the whole catalogue the same way)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "cases/handshake",
         "cases/rst", "--baseline", "baselines", f"--report={tmp_path / 'report'}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = child.communicate(timeout=300)
    assert child.returncode == 0, output
    assert " known" in closing_count(output), output
    assert not {n for n in lab_namespaces() if n.startswith(f"tcpconf-{child.pid}-")}


# -- verdict levels, baselines, slow cases -------------------------------------------

# A requirement of each level in the catalogue: the level of a verdict is its sentence's.
LEVEL_IDS = {"MUST": "RFC9293-MUST-13", "SHOULD": "RFC9293-SHLD-31", "MAY": "RFC9293-MAY-13"}

LEVELS = """id: t.{level}
title: pretends Linux must not send challenge ACKs
requirements: [{req_id}]
families: [ipv4]
target: {{role: listener, start: ESTABLISHED}}
steps:
  - send: {{flags: RST, seq: snd_nxt + 100}}
  - silence: 200ms
"""


def counts(output: str) -> dict:
    """The closing line's tallies, e.g. {"failed": 1, "warned": 2}."""
    last = closing_count(output).split(" in ")[0]
    return {word: int(number) for number, word in
            (part.split() for part in last.split(", "))}


@pytest.fixture
def levels_dir(tmp_path):
    root = tmp_path / "cases"
    root.mkdir()
    for level in ("MUST", "SHOULD", "MAY"):
        (root / f"{level.lower()}.yaml").write_text(LEVELS.format(level=level, req_id=LEVEL_IDS[level]))
    return root


def test_levels_fail_warn_and_inform(levels_dir):
    """A MUST deviation fails, a SHOULD one warns, a MAY one informs; only MUST sets the
    exit status.  The closing summary groups them by requirement, the failure with
    expected and actual; -v lists each warning with expected and actual too."""
    result = run_pytest("-q", str(levels_dir))
    out = result.stdout
    assert result.returncode == 1, out
    assert counts(out) == {"failed": 1, "warned": 1, "info": 1}, out
    closing = out.split("TCP conformance summary")[1]
    assert "FAIL  RFC9293-MUST-13 (MUST)" in closing and "linux  1 case: t.MUST" in closing
    assert "actual   ACK seq=1 ack=1" in closing
    assert "WARN  RFC9293-SHLD-31 (SHOULD)" in closing and "linux: 1 case: t.SHOULD" in closing
    assert "INFO  " in closing and "linux: 1 case: t.MAY" in closing
    # The failure once, not again in pytest's FAILURES and short summary sections.
    assert out.count("t.MUST") == 2, out       # its notice as it failed, the summary
    verbose = run_pytest("-v", str(levels_dir)).stdout
    assert "SHOULD deviations (warnings; --strict makes them fail)" in verbose
    assert "RFC9293-SHLD-31 (SHOULD, RFC 9293 section 3.10.7.4)" in verbose
    assert "Actual: ACK seq=1 ack=1" in verbose and "Ladder" in verbose


@pytest.mark.parametrize("workers", ["0", "2"])
def test_last_failed_reruns_only_the_failures_and_failed_first_puts_them_first(
        levels_dir, tmp_path, workers):
    """pytest's cache reads an item's "[ipv4]" back as parameters: --lf finds the
    failed checks again (it once reran the whole catalogue) and --ff runs them first."""
    shutil.copy(CASES / GOOD, levels_dir / "passive-open.yaml")

    def cached(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.plugin",
                               "-o", f"cache_dir={tmp_path / 'cache'}", *args, str(levels_dir)],
                              cwd=REPO, capture_output=True, text=True, timeout=300).stdout

    first = cached("-q", "-n", workers)
    assert counts(first) == {"failed": 1, "passed": 4, "warned": 1, "info": 1}, first
    again = cached("-q", "--lf", "-n", workers)
    assert counts(again) == {"failed": 1}, again
    assert "TCP conformance: 1 items" in again
    first_failed = cached("-v", "--ff", "-n", "0")
    ran = [line for line in first_failed.splitlines() if ".yaml::" in line and "%]" in line]
    assert "t.MUST[ipv4]" in ran[0] and len(ran) == 7, first_failed


def test_strict_makes_should_fail(levels_dir):
    """pytest --strict turns SHOULD deviations into failures; MAY stays information."""
    result = run_pytest("-q", "--strict", str(levels_dir))
    assert counts(result.stdout) == {"failed": 2, "info": 1}, result.stdout


def test_baseline_turns_listed_deviations_into_known_and_stale_ones_into_failures(
        levels_dir, tmp_path):
    """Listed deviations are KNOWN with their reason; a listed case that passes fails."""
    (levels_dir / "passes.yaml").write_text(
        LEVELS.format(level="MUST", req_id=LEVEL_IDS["MUST"]).replace("t.MUST", "t.passes")
        .replace("silence: 200ms", "expect: {flags: ACK}"))
    baseline = tmp_path / "linux.yaml"
    baseline.write_text("target: linux\ndeviations:\n"
                        "  - requirement: RFC9293-MUST-13\n"
                        "    reason: Linux sends the challenge ACK the pretend rule forbids.\n"
                        "    cases: [t.MUST, 't.passes[ipv4]']\n"
                        "  - requirement: RFC9293-SHLD-31\n"
                        "    reason: Linux sends the challenge ACK the pretend rule forbids.\n"
                        "    cases: [t.SHOULD]\n")
    result = run_pytest("-q", "--baseline", str(baseline), str(levels_dir))
    out = result.stdout
    assert result.returncode == 1, out
    assert counts(out) == {"failed": 1, "known": 2, "info": 1}, out
    assert "MATCHES" not in out and "2 known" in out
    assert "FIXED RFC9293-MUST-13 (MUST)" in out and "now conforms: remove it from the " \
        "baseline" in out
    verbose = run_pytest("-v", "--baseline", str(baseline), str(levels_dir)).stdout
    assert "Reason (" in verbose and "Linux sends the challenge ACK" in verbose
    assert "but the target now conforms: remove it from the baseline" in verbose


def test_junit_and_pytest_html_tell_known_warned_and_info_from_passes(levels_dir, tmp_path):
    """A CI system reads a known deviation as skipped with the baseline's reason, a
    warning or information with its level; pytest-html states the suite's own counts."""
    baseline = tmp_path / "linux.yaml"
    baseline.write_text("target: linux\ndeviations:\n"
                        "  - requirement: RFC9293-MUST-13\n"
                        "    reason: Linux sends the challenge ACK the pretend rule forbids.\n"
                        "    cases: [t.MUST]\n")
    junit, page = tmp_path / "junit.xml", tmp_path / "pytest.html"
    result = run_pytest("-q", "--baseline", str(baseline), f"--junitxml={junit}",
                        f"--html={page}", str(levels_dir))
    assert result.returncode == 0, result.stdout
    import xml.etree.ElementTree as ET
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    skipped = cases["t.MUST[ipv4]"].find("skipped")
    assert skipped is not None and skipped.get("message").startswith(
        "known deviation from RFC9293-MUST-13 (MUST), ") and "pretend rule" in skipped.get(
        "message")
    for name, status, level in (("t.SHOULD[ipv4]", "warn", "SHOULD"),
                                ("t.MAY[ipv4]", "info", "MAY")):
        props = {p.get("name"): p.get("value") for p in cases[name].iter("property")}
        assert (props["status"], props["level"]) == (status, level), props
        assert cases[name].find("skipped") is None and cases[name].find("failure") is None
    assert "TCP conformance: <b>linux</b>: 3 checks, 1 warned, 1 info, 1 known" in \
        page.read_text()


def test_a_baseline_entry_naming_no_case_is_a_warning(levels_dir, tmp_path):
    """An entry for a case renamed since (or a typo) excuses nothing: the sweep says
    so before the first packet; one for a case a -k left out is no warning."""
    baseline = tmp_path / "linux.yaml"
    baseline.write_text("target: linux\ndeviations:\n"
                        "  - requirement: RFC9293-MUST-13\n"
                        "    reason: Linux sends the challenge ACK the pretend rule forbids.\n"
                        "    cases: [t.MUST, t.renamed-since]\n")
    out = run_pytest("-q", "-n", "0", "-k", "SHOULD", "--baseline", str(baseline),
                     str(levels_dir)).stdout
    warnings = [line for line in out.splitlines() if "warning:" in line]
    assert warnings == [f"TCP conformance: warning: {baseline}:5: 't.renamed-since' names no "
                        f"case of the catalogue or of the files swept (renamed, or a typo?)"], out


def test_baseline_entry_for_another_requirement_does_not_excuse(levels_dir, tmp_path):
    """A listed case that now deviates from another requirement than the one its
    baseline entry names is not KNOWN: a MUST deviation fails, saying so."""
    baseline = tmp_path / "linux.yaml"
    baseline.write_text("target: linux\ndeviations:\n"
                        "  - requirement: RFC9293-SHLD-31\n"
                        "    reason: listed against the wrong requirement on purpose.\n"
                        "    cases: [t.MUST, t.SHOULD]\n")
    result = run_pytest("-q", "--baseline", str(baseline), str(levels_dir))
    out = result.stdout
    assert result.returncode == 1, out
    assert counts(out) == {"failed": 1, "known": 1, "info": 1}, out
    assert "the baseline lists it against RFC9293-SHLD-31" in out


@pytest.mark.parametrize("content,words", [
    ("target: linux\ndeviations:\n  - reason: too short\n    cases: [x]\n",
     ":3: deviations[0].reason"),
    ("target: linux\ndeviations:\n  - reason: a long enough reason\n    cases: ['x[ipv5]']\n",
     ":4: deviations[0].cases[0]"),
    ("target: lwip\ndeviations: []\n", "the baseline of 'lwip', not of the target 'linux'"),
])
def test_bad_baseline_is_one_clear_error(tmp_path, content, words):
    """A baseline mistake stops the run with the file, line and field."""
    baseline = tmp_path / "linux.yaml"
    baseline.write_text(content)
    result = run_pytest("-q", "--baseline", str(baseline), "--collect-only", "cases/handshake")
    assert result.returncode == 4, result.stdout + result.stderr
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_slow_cases_only_on_request():
    """Slow cases are left out of the default sweep; --slow and -m slow add them."""
    default = run_pytest("--collect-only", "-q", "cases/syn-queue")
    assert "synack-retransmission" not in default.stdout and "deselected" in default.stdout
    for option in (["--slow"], ["-m", "slow"]):
        chosen = run_pytest("--collect-only", "-q", *option, "cases/syn-queue")
        assert "syn-queue.synack-retransmission[ipv6]" in chosen.stdout, chosen.stdout


# -- several targets ----------------------------------------------------------------

TWO_TARGETS_CONFTEST = """\
from conformance.targets import TARGETS, LinuxLab


class LinuxWithRfc1337(LinuxLab):
    name = "linux-rfc1337"

    def __init__(self, sysctls=None, tag=None):
        super().__init__({**(sysctls or {}), "net.ipv4.tcp_rfc1337": "1"}, tag)


TARGETS["linux-rfc1337"] = LinuxWithRfc1337
"""

RFC1337_CASE = """\
id: t.rfc1337
title: a RST at RCV.NXT does not end TIME-WAIT
requirements: [RFC9293-MUST-13]
families: [ipv4]
target: {role: listener, start: TIME-WAIT}
steps:
  - send: {flags: RST, seq: snd_nxt}
  - silence: 200ms
  - state: TIME-WAIT
"""


def test_several_targets_sweep_side_by_side(tmp_path):
    """--target a,b runs every case against each target, in items named by target and
    family, with each target's verdict and settings."""
    root = tmp_path / "cases"
    root.mkdir()
    (root / "conftest.py").write_text(TWO_TARGETS_CONFTEST)
    (root / "rfc1337.yaml").write_text(RFC1337_CASE)
    result = run_pytest("-rA", "-q", "--target", "linux,linux-rfc1337", "--report=report",
                        "-n", "2", str(root), cwd=tmp_path)
    out = result.stdout
    assert counts(out) == {"failed": 1, "passed": 1}, out
    assert "PASSED cases/rfc1337.yaml::t.rfc1337[linux-rfc1337-ipv4]" in out
    assert "FAILED cases/rfc1337.yaml::t.rfc1337[linux-ipv4]" in out
    settings = load_results(run_dir(tmp_path / "report") / "results.json").run["targets"]
    assert settings["linux-rfc1337"]["net.ipv4.tcp_rfc1337"] == "1"
    assert "linux-rfc1337  CONFORMANT" in out and "linux          NON-CONFORMANT" in out
    # The matrix: a column per target and family, each cell linking to its evidence.
    run = run_dir(tmp_path / "report")
    page = (run / "index.html").read_text()
    assert "<th>linux<br>ipv4</th>" in page and "<th>linux-rfc1337<br>ipv4</th>" in page
    assert ">FAIL</a>" in page and ">PASS</a>" in page
    evidence = (run / "cases" / "linux" / "t.rfc1337-ipv4.html").read_text()
    assert "RFC9293-MUST-13" in evidence and 'id="actual"' in evidence
    # A relative --report: the page still finds its capture.
    assert 'id="pcap" href="../../pcap/linux/t.rfc1337-ipv4.pcap"' in evidence
    # Each target's captures apart.
    assert (run / "pcap" / "linux-rfc1337" / "t.rfc1337-ipv4.pcap").exists()


def test_unknown_target_is_one_clear_error():
    """A target name the suite does not know stops the run, naming the known ones."""
    result = run_pytest("-q", "--target", "linux,bsd", "--collect-only", "cases/handshake")
    assert result.returncode == 4
    assert "--target: expected one or more of linux" in result.stderr


@pytest.mark.parametrize("setting, words", [
    ("kernel.hostname=x", "kernel.hostname is not a setting of the target's network namespace"),
    ("vm.swappiness=1", "vm.swappiness is not a setting of the target's network namespace"),
    ("net.ipv4.tcp_rfc1337", "expected KEY=VALUE"),
])
def test_a_sysctl_outside_the_network_namespace_is_refused(cases_dir, setting, words):
    """'ip netns exec' enters only the network namespace: kernel.hostname set there is
    the host's own.  Such a setting stops the run before anything starts (exit 4)."""
    hostname = Path("/proc/sys/kernel/hostname").read_text()
    result = run_pytest("-q", "--target-sysctl", setting, str(cases_dir))
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"--target-sysctl: {words}" in result.stderr
    assert Path("/proc/sys/kernel/hostname").read_text() == hostname


def test_confirm_runs_a_failure_again_and_keeps_it_when_it_repeats(cases_dir, tmp_path):
    """--confirm 2: a case failing for good fails three times, and says so."""
    result = run_pytest("-q", str(cases_dir), "-k", "synack-mss and not ipv6", "--family", "ipv4",
                        "--confirm", "2", f"--report={tmp_path / 'report'}",
                        "--target-nft", "out:tcp flags & (syn|ack) == syn|ack drop")
    assert result.returncode == 1, result.stdout
    data = json.loads((run_dir(tmp_path / "report") / "results.json").read_text())
    assert [(r["case"], r["status"], r["runs"]) for r in data["records"]] == [
        ("handshake.synack-mss", "fail", 3)]


@pytest.mark.parametrize("value", ["-1", "x", "11"])
def test_confirm_takes_a_small_count(value):
    result = run_pytest("-q", "--confirm", value, "--collect-only", "cases/handshake")
    assert result.returncode == 4
    assert "expected a number of runs, 0 to 10" in result.stderr


@pytest.mark.parametrize("options, words", [
    (("--link-faults", "loss=200%"), "--link-faults: "),
    (("--link-faults", "jitter=1ms"), "--link-faults: "),
    (("--link-faults", "loss=2%", "--target", "remote"),
     "--link-faults: the suite owns no link to remote"),
    (("--link-retries", "50"), "expected a number of runs, 0 to 20"),
    (("--link-faults", "loss=2%", "--target", "firewall"),
     "--link-faults: firewall is a device in the path"),
])
def test_link_fault_options_are_checked_before_anything_starts(options, words):
    result = run_pytest("-q", *options, "--collect-only", "cases/handshake")
    assert result.returncode == 4, result.stdout + result.stderr
    assert words in result.stderr


@pytest.mark.parametrize("option, words", [
    ("--report=/proc/tcpconf", "--report /proc/tcpconf: cannot write there"),
    ("--pcap-dir=/proc/tcpconf", "--pcap-dir /proc/tcpconf: cannot write there"),
    ("--target-sysctl=foo", "--target-sysctl: expected KEY=VALUE"),
])
def test_a_place_or_setting_that_cannot_work_is_a_usage_error_before_any_packet(option, words):
    result = run_pytest("-q", "-n", "0", option, "cases/handshake/passive-open.yaml")
    assert result.returncode == 4, result.stdout + result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("workers", ["0", "2"])
def test_stopping_at_the_first_failure_exits_as_a_failure(cases_dir, workers):
    """-x stops the sweep at the first failure: exit 1, with or without
    xdist workers (whose controller calls it an interruption)."""
    result = run_pytest("-q", "-x", "-n", workers, str(cases_dir),
                        "--target-nft", "out:tcp flags & (syn|ack) == syn|ack drop")
    assert result.returncode == 1, result.stdout[-2000:]
    ours = result.stdout.split("TCP conformance summary")[1]
    assert "Exit status 1" in ours and "interrupted" not in ours.lower(), ours
