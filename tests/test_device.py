"""--target middlebox: a device the suite did not build, between two
interfaces of the host the suite runs on.

The bench stands in for a test host cabled to a device: a namespace with two
interfaces (out0, in0), each a veth to a "device" namespace that routes
between them with the lab's own firewall or NAT ruleset.  The suite runs in
the bench namespace as it would on the host, from the options alone: it
builds its end host on in0, talks to the device through out0, and must leave
nothing behind.  What crossed the device is decided as in the lab; what the
device's tracker holds is not observable, and is said to be so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conformance.firewall import ruleset
from conformance.lab import new_tag

from .conftest import CASES, REPO, lab_namespaces

pytestmark = pytest.mark.lab

DEVICE_OPTIONS = [
    "--target", "middlebox", "--device-outside", "out0", "--device-inside", "in0",
    "--device-address", "198.18.0.254,2001:2::fe",
    "--device-host", "198.18.1.2/24,2001:2:0:1::2/64",
    "--device-inside-gateway", "198.18.1.254,2001:2:0:1::fe",
    "--tester-address", "198.18.0.1,2001:2::1"]


def sh(*argv: str, input: str | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, input=input)


@pytest.fixture(params=["firewall", "nat"])
def bench(request):
    """(the bench's namespace, the device's kind), torn down afterwards."""
    tag = new_tag()
    host, device = f"tcpconf-{tag}-tester", f"tcpconf-{tag}-firewall"
    sh("ip", "netns", "add", host)
    sh("ip", "netns", "add", device)
    try:
        sh("ip", "-n", host, "link", "add", "out0", "type", "veth", "peer", "name", "dout",
           "netns", device)
        sh("ip", "-n", host, "link", "add", "in0", "type", "veth", "peer", "name", "din",
           "netns", device)
        sh("ip", "netns", "exec", device, "sysctl", "-qw", "net.ipv4.ip_forward=1",
           "net.ipv6.conf.all.forwarding=1")
        for iface, addresses in (("dout", ("198.18.0.254/24", "2001:2::fe/64")),
                                 ("din", ("198.18.1.254/24", "2001:2:0:1::fe/64"))):
            sh("ip", "-n", device, "link", "set", iface, "up")
            # A device computes its checksums; a veth leaves them to the receiver.
            sh("ip", "netns", "exec", device, "ethtool", "-K", iface, "tx", "off", "tso", "off",
               "gso", "off", "gro", "off")
            for address in addresses:
                sh("ip", "-n", device, "addr", "add", address, "dev", iface, "nodad")
        for iface in ("out0", "in0"):
            sh("ip", "-n", host, "link", "set", iface, "up")
        sh("ip", "netns", "exec", device, "nft", "-f", "-",
           input=ruleset(request.param).replace('"fw0"', '"dout"'))
        yield host, request.param
    finally:
        sh("ip", "netns", "delete", host)
        sh("ip", "netns", "delete", device)


def suite_in(host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", host, sys.executable, "-m", "pytest",
                           "-p", "no:cacheprovider", "-p", "conformance.plugin", "-n", "0",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_a_real_device_between_two_interfaces_is_tested_as_the_lab_one(bench, tmp_path):
    host, kind = bench
    before = lab_namespaces()
    selected = {"firewall": "ack-without-connection or syn-creates-state or outbound-connection",
                "nat": "outbound-connection-translated or ack-without-mapping or rst-linger"}
    result = suite_in(host, *DEVICE_OPTIONS, "--device-kind", kind, "-k", selected[kind],
                      f"--report={tmp_path}", str(CASES / "middlebox"))
    out = result.stdout
    # A case whose own requirement is read only from the tracker cannot pass
    # here (a SYN creating the entry or the mapping, the NAT's 4 minutes
    # after a RST): those are errors saying so.
    assert result.returncode == 3, out[-3000:]
    # The addresses are said before the first packet.
    assert (f"TCP conformance: middlebox: a {kind} between out0 (outside: 198.18.0.254, "
            f"2001:2::fe) and in0") in out
    records = json.loads((tmp_path / "latest" / "results.json").read_text())["records"]
    unread = {"firewall": {"firewall.outbound-connection": "RFC6092-3.3.1-syn-creates-state"},
              "nat": {"nat.outbound-connection-translated": "RFC5382-4.2-syn-creates-mapping",
                      "nat.rst-linger": "RFC7857-2.2-rst-linger"}}[kind]
    errors = [r for r in records if r["case"] in unread]
    assert len(errors) == 2 * len(unread) and all(
        r["status"] == "error" and f"the case's requirement {unread[r['case']]} is checked "
        f"only by steps that cannot be observed" in r["reason"] for r in errors), errors
    records = [r for r in records if r not in errors]
    assert len(records) == 6 - len(errors) and {r["status"] for r in records} == {"pass"}, \
        out[-3000:]
    # What crossed the device is decided; what its tracker holds is not seen.
    crossings = [e["seen"] for r in records for e in r["ladder"]
                 if e["kind"] == "device" and e["check"] == "crossing"]
    assert crossings and set(crossings) <= {"drops", "forwards", "translates"}
    tracked = [e["seen"] for r in records for e in r["ladder"]
               if e["kind"] == "device" and e["check"] == "tracking"]
    assert tracked and set(tracked) == {"unobservable"}
    assert all("connection tracking is not readable" in " ".join(r["unobserved"])
               for r in records)
    # Nothing left behind: the end host's namespace went, with its macvlan.  (New
    # namespaces of a process still running are another test's, on another worker.)
    left = {name for name in lab_namespaces() - before
            if not os.path.exists(f"/proc/{name.split('-')[1]}")}
    assert not left, left


def test_a_case_that_only_reads_the_tracker_is_an_error_saying_why(bench, tmp_path):
    host, kind = bench
    case = {"firewall": "firewall.established-idle-timeout",
            "nat": "nat.established-idle-timeout"}[kind]
    result = suite_in(host, *DEVICE_OPTIONS, "--device-kind", kind, "-k", case,
                      "--family", "ipv4", str(CASES / "middlebox"))
    assert result.returncode == 3, result.stdout[-3000:]
    assert ("is checked only by steps that cannot be observed on middlebox: firewall tracks "
            "ESTABLISHED") in result.stdout


@pytest.mark.parametrize("drop, words", [
    ("--tester-address", "--target middlebox needs --tester-address ADDR[,ADDR6]: address(es) "
                         "on the outside link that no host owns"),
    ("--device-inside", "--target middlebox needs --device-inside"),
])
def test_a_device_without_its_addresses_is_a_usage_error(drop, words):
    options = list(DEVICE_OPTIONS)
    at = options.index(drop)
    del options[at:at + 2]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "-p", "conformance.plugin", *options, str(CASES / "middlebox")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4 and words in result.stderr, result.stderr
