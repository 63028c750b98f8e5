"""The independent witness checks itself: every probe still sees what observed.yaml records.

tests/independent/probes.py drives the Linux stack without any of the suite's code; its
recorded observations are what the suite's own verdicts are compared with, so they are
re-measured here. Needs root, `ip`, `ethtool` and `ss`; about 16 s in all (the SYN-ACK
retransmission probe alone takes about 7.7 s).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
from pathlib import Path

import pytest
import yaml

from tests.independent import probes

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

OBSERVED = yaml.safe_load((Path(__file__).parent / "independent" / "observed.yaml").read_text())["behaviours"]

needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "ethtool", "ss")),
    reason="the independent probes need root, ip, ethtool and ss",
)


def own_namespaces() -> list[str]:
    return [ns for ns in probes.namespaces() if ns.startswith(f"tcpconf-indep-{os.getpid()}-")]


def test_observed_yaml_covers_every_probe_and_is_stable():
    assert list(OBSERVED) == list(probes.PROBES)
    for name, entry in OBSERVED.items():
        assert entry["stable"] is True and entry["runs"] >= 3, name
        assert entry["probe"] == probes.description(name), name


def test_checksum_matches_a_known_ipv4_header():
    # A captured IPv4 header whose checksum field (0xb861) is correct: it must verify to 0.
    header = bytes.fromhex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
    assert probes.checksum(header) == 0
    assert probes.checksum(header[:10] + b"\0\0" + header[12:]) == 0xB861


def test_built_frames_carry_good_and_bad_checksums_as_asked():
    mac_a, mac_b = bytes(6), bytes([2, 0, 0, 0, 0, 1])
    for bad in (False, True):
        frame = probes.build_frame(mac_b, mac_a, 40000, 8080, 0xFFFFFFF0, 123, probes.PSH | probes.ACK,
                                   payload=b"hello", options=probes.MSS_1460, bad_checksum=bad)
        ip, tcp = frame[14:34], frame[34:]
        assert probes.checksum(ip) == 0
        assert struct.unpack("!H", ip[2:4])[0] == 20 + len(tcp) == 20 + 24 + 5
        assert (probes.tcp_checksum(probes.TESTER_IP, probes.TARGET_IP, tcp) == 0) is not bad
        assert socket.inet_ntoa(ip[16:20]) == probes.TARGET_IP


@needs_lab
@pytest.mark.parametrize("name", list(probes.PROBES))
def test_probe_still_matches_observation(name):
    result = probes.run_probe(name)
    assert own_namespaces() == [], "the probe's lab was not deleted"
    assert result == OBSERVED[name]["observed"], f"{name}: {OBSERVED[name]['probe']}"
