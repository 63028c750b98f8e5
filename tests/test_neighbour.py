"""The neighbour responder answers ARP and neighbour solicitations for the
tester's addresses, only to the lab's targets."""

from __future__ import annotations

import subprocess

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Ether

from conformance.neighbour import NeighbourResponder
from conformance.verdict import ERROR, PASS

from .conftest import all_cases

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

TARGET_MAC = "02:00:c6:12:00:02"


def arp_request(asker: str, asked: str) -> bytes:
    return bytes(Ether(src=TARGET_MAC, dst="ff:ff:ff:ff:ff:ff")
                 / ARP(op=1, hwsrc=TARGET_MAC, psrc=asker, pdst=asked))


def solicitation(asker: str, asked: str) -> bytes:
    return bytes(Ether(src=TARGET_MAC, dst="33:33:ff:00:00:01")
                 / IPv6(src=asker, dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt=asked))


@pytest.fixture
def responder(linux):
    answering = NeighbourResponder(linux.target.links)
    yield answering
    answering.stop()


def test_answers_arp_for_the_tester_only_to_a_target(responder):
    """An ARP request from the target for the tester's address gets the tester's MAC."""
    reply = Ether(responder.answer(arp_request("198.18.0.2", "198.18.0.1")))
    assert reply[ARP].op == 2 and reply[ARP].psrc == "198.18.0.1"
    assert reply[ARP].hwsrc == "02:00:c6:12:00:01" and reply.dst == TARGET_MAC
    assert responder.answer(arp_request("198.18.0.2", "198.18.0.9")) is None   # not ours
    assert responder.answer(arp_request("192.0.2.7", "198.18.0.1")) is None    # not a target


def test_answers_neighbour_solicitation(responder):
    """A solicitation for the tester's IPv6 address gets a solicited, override advertisement."""
    reply = Ether(responder.answer(solicitation("2001:2::2", "2001:2::1")))
    advert = reply[ICMPv6ND_NA]
    assert advert.tgt == "2001:2::1" and advert.S == 1 and advert.O == 1
    assert reply[IPv6].dst == "2001:2::2" and reply[IPv6].hlim == 255
    assert responder.answer(solicitation("2001:2::2", "2001:2::5")) is None


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_target_without_neighbour_entries_needs_the_responder(linux, family):
    """Without its permanent entries the target must resolve the tester: unanswered,
    even the sanity probe goes unanswered and the verdict is an ERROR (never a
    verdict about the target); with the responder, the case passes."""
    lab = linux.target.lab
    case = all_cases()["handshake.passive-open"]

    def forget_the_tester():
        for address in ("198.18.0.1", "2001:2::1"):
            subprocess.run(["ip", "-n", lab.target_ns, "neigh", "del", address, "dev", "target0"],
                           capture_output=True)

    forget_the_tester()
    try:
        unanswered = linux.run(case, family)
        answering = NeighbourResponder(linux.target.links)
        try:
            forget_the_tester()
            answered = linux.run(case, family)
        finally:
            answering.stop()
    finally:
        lab.configure_addresses()
    assert unanswered.outcome == ERROR and "sanity probe" in unanswered.reason, \
        unanswered.explain()
    assert answered.outcome == PASS, answered.explain()
    assert answering.answered >= 1
