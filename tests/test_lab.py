"""The lab: built and torn down completely, also after Ctrl-C and SIGKILL;
refused with one clear message when it cannot be built; honest errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conformance import lab
from conformance.lab import Lab, LabError, preflight
from conformance.proctree import children
from conformance.runner import Runner
from conformance.safety import UnsafeTarget, check_target
from conformance.verdict import ERROR
from conformance.wire import Link, Wire

from .conftest import REPO, all_cases, lab_namespaces, run_dir, sigint_as_ctrl_c

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep


def _wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def namespaces_of(pid: int) -> set[str]:
    return {name for name in lab_namespaces() if name.startswith(f"{lab.PREFIX}-{pid}-")}


def _dead_pid() -> int:
    pid = 4_000_000
    while os.path.exists(f"/proc/{pid}"):
        pid += 1
    return pid


def test_build_and_destroy_leave_nothing():
    """A lab's namespaces exist while it is built and are gone after destroy()."""
    the_lab = Lab(tag="t1")
    try:
        the_lab.build()
        assert {the_lab.tester_ns, the_lab.target_ns} <= lab_namespaces()
        settings = the_lab.settings()
        assert settings["net.ipv4.tcp_invalid_ratelimit"] == "0"
        assert settings["target0 tx-checksumming"] == "off"
    finally:
        the_lab.destroy()
    assert not {the_lab.tester_ns, the_lab.target_ns} & lab_namespaces()


def test_stale_lab_is_removed_at_next_start():
    """Namespaces left by a run whose process is gone are deleted by the next build."""
    stale = f"{lab.PREFIX}-{_dead_pid()}-1-target"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    the_lab = Lab(tag="t2")
    try:
        the_lab.build()
        assert stale not in lab_namespaces()
    finally:
        the_lab.destroy()
        subprocess.run(["ip", "netns", "delete", stale], capture_output=True)


def test_killed_run_is_cleaned_by_the_next_run():
    """SIGKILL leaves a lab behind; the next lab build removes it."""
    code = ("import time\nfrom conformance.runner import Runner\n"
            "r = Runner.for_target('linux'); r.start(); print('up', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
        ours = namespaces_of(child.pid)
        assert len(ours) == 2
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert ours <= lab_namespaces()          # left behind by the kill
        the_lab = Lab(tag="t3")
        try:
            the_lab.build()
            assert not ours & lab_namespaces()   # and removed by the next start
        finally:
            the_lab.destroy()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_sweep_tears_the_lab_down(sig, workers, tmp_path):
    """Ctrl-C (SIGINT) or SIGTERM to the sweep's process, with or without xdist
    workers, ends it like this: the lab and the agents removed, exit status 2,
    and results.json and the report of the cases that finished, marked
    interrupted."""
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a-quick.yaml").write_text(
        "id: quick\ntitle: answers\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\nfamilies: [ipv4]\n"
        "steps:\n  - send: {flags: SYN, seq: 0}\n  - expect: {flags: SYN+ACK, ack: 1}\n")
    (cases / "z-slow.yaml").write_text(
        "id: slow\ntitle: waits\nrequirements: [RFC9293-MUST-13]\n"
        "target: {role: listener, start: LISTEN}\nfamilies: [ipv4]\n"
        "steps:\n  - silence: 30s\n")
    report = tmp_path / "report"
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "-q", "-n", workers, str(cases), f"--report={report}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=sigint_as_ctrl_c)
    try:
        # The run's directory (report/<UTC timestamp>) is made before the first packet.
        assert _wait_for(lambda: any(report.glob("*/pcap/quick-ipv4.pcap")), timeout=30), \
            "the quick case never finished"
        time.sleep(0.5)
        family_tree = [child.pid] + children(child.pid)    # the xdist workers too
        child.send_signal(sig)
        output, _ = child.communicate(timeout=30)
        assert child.returncode == 2, output
        assert "Exit status 2: interrupted" in output and "Traceback" not in output, output
        data = json.loads((run_dir(report) / "results.json").read_text())
        assert data["run"]["interrupted"] is True
        assert [r["case"] for r in data["records"]] == ["quick"]
        assert not any(namespaces_of(pid) for pid in family_tree)
        agents = subprocess.run(["pgrep", "-f", "tcpconf-agent"], capture_output=True, text=True)
        assert str(child.pid) not in agents.stdout
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_not_root_gives_one_clear_message():
    """Without root, the sweep stops before any case with one message saying what to do."""
    # An unprivileged user cannot read this machine's Python installation, so
    # the sweep runs as root with the effective uid reported as a user's.
    code = ("import os, sys, pytest\nos.geteuid = lambda: 1000\n"
            "sys.exit(pytest.main(['-p', 'no:cacheprovider', '-q', 'cases']))")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output, _ = child.communicate(timeout=120)
    assert child.returncode == 3, output     # the tool could not run (summary.py)
    assert output.count("the lab needs root") == 1, output
    assert "run as root" in output
    assert not namespaces_of(child.pid)  # stopped before building anything


def test_missing_tools_are_named_with_their_package(monkeypatch):
    """A missing ethtool is named together with the apt package that provides it."""
    monkeypatch.setattr(lab.shutil, "which", lambda tool: None if tool == "ethtool" else "/x")
    problems = preflight()
    assert any("ethtool" in p and "apt-get install ethtool" in p for p in problems)


def test_lab_error_names_the_failing_command():
    """A failing lab command raises LabError with the command and its message."""
    with pytest.raises(LabError, match="ip netns delete"):
        lab.run("ip", "netns", "delete", "tcpconf-no-such-namespace")


# -- the safety interlock --------------------------------------------------------

def test_target_outside_the_lab_is_refused():
    """An address outside 198.18.0.0/15 and 2001:2::/48 is refused unless configured."""
    with pytest.raises(UnsafeTarget, match="outside the lab"):
        check_target("192.0.2.1")
    check_target("198.19.255.1")
    check_target("192.0.2.1", allowed=("192.0.2.1",))


def test_wire_refuses_a_non_lab_link_before_any_socket():
    """The wire refuses to open on a link whose target is outside the lab."""
    with pytest.raises(UnsafeTarget):
        Wire([Link(iface="lo", tester_mac="02:00:00:00:00:01", target_mac="02:00:00:00:00:02",
                   tester_ip="198.18.0.1", target_ip="192.0.2.1")])
    with pytest.raises(UnsafeTarget):
        Wire([Link(iface="lo", tester_mac="02:00:00:00:00:01", target_mac="02:00:00:00:00:02",
                   tester_ip="2001:2::1", target_ip="2001:db8::2")])


def test_wire_refuses_frames_to_other_addresses(linux):
    """A frame addressed anywhere but the lab target is not sent."""
    frame = bytearray(b"\x00" * 60)
    frame[12:14] = b"\x08\x00"
    frame[30:34] = bytes([192, 0, 2, 1])
    with pytest.raises(UnsafeTarget):
        linux.wire.send(bytes(frame))
    frame = bytearray(b"\x00" * 80)
    frame[12:14] = b"\x86\xdd"
    frame[38:54] = bytes.fromhex("20010db8000000000000000000000002")
    with pytest.raises(UnsafeTarget):
        linux.wire.send(bytes(frame))
    frame[12:14] = b"\x08\x06"   # ARP: neither IPv4 nor IPv6
    with pytest.raises(UnsafeTarget):
        linux.wire.send(bytes(frame))


# -- honest verdicts ---------------------------------------------------------------

def test_broken_link_gives_error_not_pass(linux):
    """With the lab link down, a case that expects silence is an ERROR, never a pass."""
    case = all_cases()["rst.out-of-window"]
    subprocess.run(["ip", "-n", linux.target.lab.tester_ns, "link", "set", "tester0", "down"],
                   check=True)
    try:
        verdict = linux.run(case)
    finally:
        subprocess.run(["ip", "-n", linux.target.lab.tester_ns, "link", "set", "tester0", "up"],
                       check=True)
    assert verdict.outcome == ERROR, verdict.explain()
    assert "Network is down" in verdict.reason or "starting state" in verdict.reason


def test_capture_lost_after_case_gives_error(linux, monkeypatch):
    """If the sanity probe after a case gets no answer, a passing case becomes an ERROR."""
    case = all_cases()["rst.out-of-window"]
    target_ns = linux.target.lab.target_ns
    real_watch_icmp = linux.wire.watch_icmp

    def lose_icmp(link):
        # The target stops answering pings just before the probe: the probe
        # cannot tell the wire works, so the verdict must not be a pass.
        subprocess.run(["ip", "netns", "exec", target_ns, "sysctl", "-qw",
                        "net.ipv4.icmp_echo_ignore_all=1"], check=True)
        real_watch_icmp(link)

    monkeypatch.setattr(linux.wire, "watch_icmp", lose_icmp)
    try:
        verdict = linux.run(case)
    finally:
        subprocess.run(["ip", "netns", "exec", target_ns, "sysctl", "-qw",
                        "net.ipv4.icmp_echo_ignore_all=0"], check=True)
    assert verdict.outcome == ERROR
    assert "sanity probe" in verdict.reason


def test_dead_agent_gives_error(tmp_path):
    """If the target agent dies, the verdict is an ERROR naming the agent."""
    with Runner.for_target("linux", pcap_dir=tmp_path) as runner:
        os.kill(runner.target.agent.pid, signal.SIGKILL)
        verdict = runner.run(all_cases()["handshake.passive-open"])
    assert verdict.outcome == ERROR
    assert "Agent" in verdict.reason or "agent" in verdict.reason
