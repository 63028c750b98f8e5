"""Remote targets: a namespace driven as an outside host over an interface.

The suite runs inside the bench's host namespace and is handed an interface,
the target's addresses and (or not) an agent command: it builds nothing.
Each sweep runs in both tester-address modes (the host's own address with
the nftables guard, and an address no host owns with the suite answering
ARP/ND), with an agent over a command transport and in black-box mode.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conformance import blackbox
from conformance.safety import UnsafeTarget
from conformance.targets.remote import (ConfigError, RemoteConfig, _tester_ports, agent_prefix,
                                        check_address)
from conformance.wire import Link, Wire, build_frame

from .bench import REPO, point_to_point, stop
from .conftest import CASES, all_cases, lab_namespaces, sigint_as_ctrl_c

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

HOLD = REPO / "containers" / "target" / "tcpconf-hold.py"
UNOWNED = "198.18.5.9,2001:2:0:5::9"
# Passive open and closed ports: cases every mode can run, with and without
# an agent (passive-open.yaml's cases need one: they are not run blind).
SMALL_SWEEP = [CASES / "handshake" / "passive-open.yaml", CASES / "handshake" / "closed-port.yaml",
               CASES / "rst" / "rst-to-listen.yaml"]


@pytest.fixture(scope="module")
def bench():
    built = point_to_point()
    hold = built.start_in_remote("python3", str(HOLD), "--port", "9", "--hold", "2")
    try:
        assert hold.stdout.readline().strip() == "tcpconf-hold: listening on port 9"
        yield built
    finally:
        stop(hold)
        built.destroy()
        # Its own namespaces only: other workers build and remove labs meanwhile.
        assert {built.host, built.remote}.isdisjoint(lab_namespaces())


def remote_options(bench, tester: str, agent: bool, *more: str) -> list[str]:
    options = ["--target", "remote", "--remote-iface", bench.host_iface,
               "--remote-address", ",".join(bench.remote_ips), "--tester-address", tester]
    if agent:
        options += ["--agent-command", f"ip netns exec {bench.remote} python3 -"]
    else:
        options += ["--remote-port", "9", "--remote-closed-port", "10"]
    return options + list(more)


def records(report) -> dict:
    """The records of the last run with --report `report` (its run directory, latest)."""
    data = json.loads((report / "latest" / "results.json").read_text())
    return {(r["case"], r["family"]): r for r in data["records"]}, data["run"]


@pytest.mark.parametrize("tester", ["host", UNOWNED], ids=["host-address", "unowned-address"])
@pytest.mark.parametrize("agent", [True, False], ids=["agent", "black-box"])
def test_remote_host_in_both_tester_modes(bench, tmp_path, tester, agent):
    """The target's kernel, reached over bench0 only, passes the handshake and
    closed-port cases; blind, the cases needing the application are not run,
    with the reason; afterwards no nftables table is left in the host."""
    result = bench.sweep(SMALL_SWEEP, tmp_path, *remote_options(bench, tester, agent))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Said before the first packet: what is tested, from where, and the promise.
    announce = next(line for line in output.splitlines() if line.startswith("TCP conformance: remote:"))
    assert "198.18.5.2, 2001:2:0:5::2 on bench0" in announce
    assert "nothing else will be sent to" in announce
    assert output.index(announce) < output.index("passed")
    found, run = records(tmp_path)
    settings = run["targets"]["remote"]
    statuses = {key: r["status"] for key, r in found.items()}
    assert statuses[("handshake.closed-port-syn", "ipv6")] == "pass"
    assert statuses[("rst.to-listen", "ipv4")] == "pass"
    if agent:
        assert set(statuses.values()) == {"pass"}, statuses
        assert "Linux" in settings["agent"]
    else:
        passive = found[("handshake.passive-open", "ipv4")]
        assert passive["status"] == "n/a"
        assert "not run in black-box mode" in passive["reason"]
        assert "needs the target's application to accept" in passive["reason"]
        assert settings["listening port (black-box)"] == "9"
    if tester == "host":
        assert "tcpconf_guard" in settings["host guard"]
        assert settings["link ipv4"].startswith("198.18.5.1 ")
    else:
        assert "host guard" not in settings
        assert settings["link ipv4"].startswith("198.18.5.9 (02:74:63:")
        # The target learnt the tester's MAC from the suite's ARP/ND answers.
        neighbours = bench.in_remote("ip", "neigh", "show", "dev", bench.remote_iface)
        assert "198.18.5.9 lladdr 02:74:63:" in neighbours
        assert "2001:2:0:5::9 lladdr 02:74:63:" in neighbours
        # and no host owns the address: the host namespace's kernel does not.
        assert "198.18.5.9" not in bench.in_host("ip", "addr")
    assert bench.guard_tables() == []


def test_agent_over_a_remote_shell(bench, tmp_path):
    """A transport that hands its arguments to a shell over there, as ssh does:
    the bootstrap must arrive as one word.  This `ssh` joins its arguments and
    runs them with sh -c in the remote namespace, as sshd would."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh").write_text(f'#!/bin/sh\nshift\nexec ip netns exec {bench.remote} sh -c "$*"\n')
    (fake / "ssh").chmod(0o755)
    result = bench.sweep([CASES / "handshake" / "active-open.yaml"], tmp_path / "report",
                         "--target", "remote", "--remote-iface", "bench0",
                         "--remote-address", "198.18.5.2", "--family", "ipv4",
                         "--agent-command", "ssh root@dut python3 -",
                         env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stdout + result.stderr
    found, _ = records(tmp_path / "report")
    assert found[("handshake.active-open", "ipv4")]["status"] == "pass"


def test_ctrl_c_removes_the_host_guard(bench, tmp_path):
    """Interrupted mid-sweep, the suite removes its nftables table (and a
    table left by a killed run is removed by the next one)."""
    # A table of a run killed with SIGKILL: its PID no longer exists.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"tcpconf_guard_{dead.pid}_1"
    bench.in_host("nft", "add", "table", "inet", stale)
    process = subprocess.Popen(
        ["ip", "netns", "exec", bench.host, sys.executable, "-m", "pytest", "-p",
         "no:cacheprovider", "-p", "conformance.plugin", "-q", "-n", "0",
         str(CASES / "time-wait" / "duration.yaml"), "--slow", f"--report={tmp_path}",
         *remote_options(bench, "host", True)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=sigint_as_ctrl_c)
    try:
        deadline = time.monotonic() + 30
        while not any("tcpconf_guard" in t and stale not in t for t in bench.guard_tables()):
            assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
            time.sleep(0.05)
        assert not any(stale in t for t in bench.guard_tables())   # the stale one went first
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        stop(process)
    assert process.returncode == 2, output
    assert bench.guard_tables() == []


# -- refusals -------------------------------------------------------------------

def test_a_target_that_is_not_on_the_link_is_refused(bench, tmp_path):
    """No ARP answer, no test: the suite never sends through a router."""
    result = bench.sweep(SMALL_SWEEP[:1], tmp_path, "--target", "remote", "--remote-iface",
                         "bench0", "--remote-address", "198.18.5.77", "--family", "ipv4")
    assert result.returncode == 3, result.stdout + result.stderr
    assert ("198.18.5.77 does not answer ARP requests on bench0: the suite tests only a "
            "target on the link it is given (it never sends through a router)") in result.stdout
    assert bench.guard_tables() == []


def test_a_tester_address_someone_owns_is_refused(bench, tmp_path):
    bench.in_remote("ip", "addr", "add", "198.18.5.3/24", "dev", bench.remote_iface)
    try:
        taken = bench.sweep(SMALL_SWEEP[:1], tmp_path / "a", *remote_options(
            bench, "198.18.5.3", True, "--remote-address", "198.18.5.2", "--family", "ipv4"))
    finally:
        bench.in_remote("ip", "addr", "del", "198.18.5.3/24", "dev", bench.remote_iface)
    assert taken.returncode == 3
    assert "the tester address 198.18.5.3 is taken on bench0 (answered by" in taken.stdout
    own = bench.sweep(SMALL_SWEEP[:1], tmp_path / "b", *remote_options(
        bench, "198.18.5.1", True, "--remote-address", "198.18.5.2", "--family", "ipv4"))
    assert own.returncode == 3
    assert ("the tester address 198.18.5.1 is an address of bench0 itself: use "
            "--tester-address host") in own.stdout


@pytest.mark.parametrize("tester, words", [
    ("192.0.2.9", "is outside the lab ranges (198.18.0.0/15, 2001:2::/48) and outside the "
                  "subnets of the link (198.18.5.0/24, 2001:2:0:5::/64)"),
    ("198.18.5.255", "is the broadcast address of 198.18.5.0/24, not a host's"),
])
def test_a_tester_address_off_the_link_or_a_broadcast_is_refused(bench, tmp_path, tester, words):
    """The suite speaks for an address only on the link's own subnets (or the lab
    ranges), and never for one every host there takes as its own."""
    result = bench.sweep(SMALL_SWEEP[:1], tmp_path, *remote_options(
        bench, tester, True, "--remote-address", "198.18.5.2", "--family", "ipv4"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"the tester address {tester} {words}" in result.stdout


def test_the_wire_refuses_an_address_that_is_not_configured(bench):
    """However a frame was built, the wire sends only to the configured target."""
    link = Link(iface="bench0", tester_mac="02:74:63:00:00:01", target_mac="02:00:00:00:00:02",
                tester_ip="198.18.5.9", target_ip="198.18.5.2", netns=bench.host)
    wire = Wire([link], allowed_targets=("198.18.5.2",))
    try:
        stray = Link(**{**link.__dict__, "target_ip": "198.18.5.3"})
        with pytest.raises(UnsafeTarget, match=r"refusing to send a frame to 198\.18\.5\.3: the "
                                               r"wire sends only to the configured target\(s\) "
                                               r"198\.18\.5\.2"):
            wire.send(build_frame(stray, 40000, 9, 0, 0, 0x02, 1000))
    finally:
        wire.close()
    # And a target outside the lab ranges needs naming explicitly.
    outside = Link(**{**link.__dict__, "target_ip": "192.0.2.7"})
    with pytest.raises(UnsafeTarget, match="outside the lab ranges .* not configured explicitly"):
        Wire([outside])


@pytest.mark.parametrize("options, message", [
    (["--target", "remote"], "--target remote needs --remote-iface IFACE"),
    (["--target", "remote", "--remote-iface", "bench0", "--remote-address", "224.0.0.1"],
     "--remote-address: 224.0.0.1 is not a unicast address of a host on a link"),
    (["--target", "remote", "--remote-iface", "bench0", "--remote-address", "198.18.5.2",
      "--agent-command", "ssh root@dut"], "expected a command that ends by running Python"),
    (["--target", "linux", "--remote-address", "198.18.5.2"],
     "--remote-address applies to --target remote"),
    (["--target", "remote", "--remote-iface", "bench0", "--remote-address", "198.18.5.2",
      "--tester-address", "198.18.5.9"], None),
    (["--remote-port", "70000"], "expected a TCP port, 1 to 65535"),
])
def test_wrong_options_are_usage_errors(tmp_path, options, message):
    """Checked before anything starts: exit status 4 and the reason."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "--collect-only", "-q", str(SMALL_SWEEP[0]), *options],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    if message is None:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr


# -- pure logic -------------------------------------------------------------------

def test_agent_commands_are_split_as_users_write_them():
    assert agent_prefix("ssh root@dut python3 -") == (["ssh", "root@dut"], "python3", True)
    assert agent_prefix("docker exec -i box python3 -") == (
        ["docker", "exec", "-i", "box"], "python3", False)
    assert agent_prefix("ip netns exec NS /usr/bin/python3.11") == (
        ["ip", "netns", "exec", "NS"], "/usr/bin/python3.11", False)
    with pytest.raises(ConfigError, match="ends by running Python"):
        agent_prefix("ssh root@dut")


def test_tester_ports_avoid_the_hosts_ephemeral_ports():
    assert _tester_ports(range(32768, 61000)) == range(12768, 32768)
    assert _tester_ports(range(1024, 40000)) == range(40000, 60000)
    with pytest.raises(Exception, match="leave no room"):
        _tester_ports(range(1024, 65536))


def test_remote_config_checks_families():
    with pytest.raises(ConfigError, match="one of each"):
        RemoteConfig(iface="eth0", addresses=("198.18.5.2", "198.18.5.3"))
    with pytest.raises(ConfigError, match="one address of each family"):
        RemoteConfig(iface="eth0", addresses=("2001:2::2",), tester=("198.18.5.9",))
    assert check_address(" 2001:2:0:0::2 ", "x") == "2001:2::2"


def test_every_case_either_runs_blind_or_says_why():
    """Black-box mode decides from the case alone, before any segment."""
    runnable, reasons = [], {}
    for case in all_cases().values():
        reason = blackbox.cannot_run(case, listen_port=9, closed_port=10)
        (runnable.append(case.id) if reason is None else reasons.setdefault(case.id, reason))
    assert "handshake.closed-port-syn" in runnable and "rst.to-listen" in runnable
    assert reasons["handshake.active-open"].startswith("it needs the target's application to "
                                                      "connect")
    assert all(reason.startswith("it needs") or reason.startswith("its starting state")
               for reason in reasons.values())
    assert blackbox.cannot_run(all_cases()["rst.to-listen"], None, None) == (
        "it needs a port where the target listens: give --remote-port")


def test_black_box_state_checks_are_decided_by_a_wire_probe(bench, tmp_path):
    """Blind, a final state check becomes a probe on the wire, and it can fail:
    Linux accepts a RST at RCV.NXT-1 in CLOSE-WAIT (a known deviation, in the
    lab seen through the agent's state reading): the probe finds no
    connection left.  In-window data in CLOSE-WAIT leaves the connection: the
    probe finds it, and says it cannot tell which state it is in."""
    result = bench.sweep([CASES / "grid" / "state-event.yaml"], tmp_path,
                         *remote_options(bench, UNOWNED, False, "--family", "ipv4", "-k",
                                         "CLOSE-WAIT and (rst.left-of-window or ack.in-window)"))
    found, _ = records(tmp_path)
    failed = found[("grid.CLOSE-WAIT.rst.left-of-window", "ipv4")]
    assert failed["outcome"] == "fail" and failed["status"] == "warn", result.stdout
    assert failed["actual"] == "no connection (the probe drew a RST), by a wire probe"
    assert failed["expected"] == "state CLOSE-WAIT"
    passed = found[("grid.CLOSE-WAIT.ack.in-window", "ipv4")]
    assert passed["status"] == "pass", result.stdout
    assert any("a wire probe found a connection, not which state it is in" in text
               for text in passed["unobserved"])


def test_without_the_host_guard_the_hosts_kernel_resets_the_flow(bench):
    """Why the guard exists, and that it works: from the host's own address,
    the host's kernel answers the target's SYN-ACK with a RST of its own
    (RFC 9293 3.10.7.1: it has no socket for the flow); with the guard
    installed, that RST never leaves."""
    from conformance import netns
    from conformance.hostguard import HostGuard
    from conformance.wire import decode
    mac = bench.in_remote("cat", f"/sys/class/net/{bench.remote_iface}/address").strip()
    own = bench.in_host("cat", f"/sys/class/net/{bench.host_iface}/address").strip()
    link = Link(iface=bench.host_iface, tester_mac=own, target_mac=mac, tester_ip="198.18.5.1",
                target_ip="198.18.5.2", netns=bench.host)
    wire = Wire([link])

    def kernel_resets(port: int) -> bool:
        wire.watch(link, port)
        wire.send(build_frame(link, port, 9, 1000, 0, 0x02, 65535))     # SYN to tcpconf-hold
        deadline, flags = time.time() + 0.3, []
        while (frame := wire.receive(deadline)) is not None:
            segment = decode(frame)
            if segment is not None:
                flags.append((segment.direction, segment.flags))
        assert ("in", 0x12) in flags, flags                               # the SYN-ACK came
        return ("out", 0x04) in flags                                     # a RST went back
    try:
        assert kernel_resets(20001)
        guard = HostGuard([("198.18.5.1", "198.18.5.2")], range(20000, 20100))
        with netns.entered(bench.host):
            guard.install()
        try:
            assert not kernel_resets(20002)
        finally:
            with netns.entered(bench.host):
                guard.remove()
    finally:
        wire.close()
    assert bench.guard_tables() == []
