"""The frames packed with struct (conformance/packets.py, wire.py's builders)
and the filters compiled through libpcap (conformance/bpf.py), each against
what Scapy builds and compiles from the same fields: byte for byte."""

from __future__ import annotations

import ctypes
import ipaddress

import pytest
from scapy.arch.common import compile_filter as scapy_compile
from scapy.arch.common import free_filter
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from conformance import neighbour, tcp
from conformance.bpf import FilterError, compile_filter
from conformance.wire import Link, build_frame, echo_request, icmp_error

V4 = Link("t0", "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.0.1", "198.18.0.2")
V6 = Link("t0", "02:00:00:00:00:01", "02:00:00:00:00:02", "2001:2::1", "2001:2::2")


def scapy_ip(link: Link):
    if link.family == tcp.IPV6:
        return IPv6(src=link.tester_ip, dst=link.target_ip, hlim=64)
    return IP(src=link.tester_ip, dst=link.target_ip, ttl=64)


def scapy_frame(link: Link, layer) -> bytes:
    return bytes(Ether(src=link.tester_mac, dst=link.target_mac) / scapy_ip(link) / layer)


@pytest.mark.parametrize("link", [V4, V6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("fields", [
    dict(seq=0, ack=0, flags=tcp.SYN, window=65535, options=[("mss", 1460)]),
    dict(seq=2**32 - 1, ack=12345, flags=tcp.ACK | tcp.PSH, window=0, payload=b"hello"),
    dict(seq=7, ack=9, flags=tcp.URG | tcp.ACK, window=1000, payload=b"x" * 101, urgptr=3),
    dict(seq=1, ack=2, flags=tcp.SYN | tcp.FIN | tcp.RST, window=512,
         options=[("wscale", 7), ("sack_ok", b""), ("timestamp", (1, 0))]),
    dict(seq=5, ack=6, flags=tcp.ACK, window=100, raw_options=b"\x02\x00\x01\x01"),
])
def test_a_segment_is_the_frame_scapy_builds(link, fields):
    options = tcp.encode_options(fields.get("options", ()), fields.get("raw_options", b""))
    layer = TCP(sport=40000, dport=80, seq=fields["seq"], ack=fields["ack"],
                flags=fields["flags"], window=fields["window"], urgptr=fields.get("urgptr", 0),
                dataofs=5 + len(options) // 4)
    payload = options + fields.get("payload", b"")
    if payload:
        layer = layer / Raw(payload)
    assert build_frame(link, 40000, 80, **fields) == scapy_frame(link, layer)


def test_a_bad_checksum_differs_from_the_good_one_only_there():
    good = build_frame(V4, 1, 2, 3, 4, tcp.ACK, 100)
    bad = build_frame(V4, 1, 2, 3, 4, tcp.ACK, 100, bad_checksum=True)
    assert [i for i in range(len(good)) if good[i] != bad[i]] == [50, 51]


def test_echo_requests_are_scapys():
    assert echo_request(V4, 77) == scapy_frame(V4, ICMP(type=8, id=77, seq=1) / b"tcpconf sanity")
    assert echo_request(V6, 77) == scapy_frame(
        V6, ICMPv6EchoRequest(id=77, seq=1, data=b"tcpconf sanity"))


def test_icmp_errors_are_scapys():
    quoted = bytes(range(60))
    assert icmp_error(V4, 1, quoted) == scapy_frame(V4, ICMP(type=3, code=1) / Raw(quoted))
    assert icmp_error(V6, 4, quoted) == scapy_frame(V6, ICMPv6DestUnreach(code=4) / Raw(quoted))


@pytest.mark.parametrize("expression", [
    "tcp and ((src host 198.18.0.1 and dst host 198.18.0.2 and (src port 40000)) or "
    "(src host 198.18.0.2 and dst host 198.18.0.1 and (dst port 40000)))",
    "icmp6 and ip6[40] == 129 and src host 2001:2::2",
])
def test_a_filter_compiles_to_the_program_scapy_gets_from_libpcap(expression):
    program = scapy_compile(expression, linktype=1)
    try:
        theirs = ctypes.string_at(ctypes.cast(program.bf_insns, ctypes.c_void_p),
                                  program.bf_len * 8)
    finally:
        free_filter(program)
    assert compile_filter(expression) == (theirs, len(theirs) // 8)


def test_a_filter_that_does_not_compile_says_why():
    with pytest.raises(FilterError, match="syntax error"):
        compile_filter("tcp and and")


# -- the neighbour responder's frames (conformance/neighbour.py) --------------

TESTER_MAC, TARGET_MAC = "02:00:c6:12:00:01", "02:00:c6:12:00:02"


@pytest.mark.parametrize("op, hwdst, dst", [
    (1, "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"),    # a request, broadcast
    (2, TARGET_MAC, TARGET_MAC),                      # a reply, to the asker
])
def test_an_arp_packet_is_the_frame_scapy_builds(op, hwdst, dst):
    from scapy.layers.l2 import ARP
    ours = neighbour.arp_frame(op, TESTER_MAC, "198.18.0.1", hwdst, "198.18.0.2", dst)
    assert ours == bytes(Ether(src=TESTER_MAC, dst=dst)
                         / ARP(op=op, hwsrc=TESTER_MAC, psrc="198.18.0.1", hwdst=hwdst,
                               pdst="198.18.0.2"))


def test_a_neighbour_advertisement_is_the_frame_scapy_builds():
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr
    ours = neighbour.discovery_frame(
        TARGET_MAC, TESTER_MAC, "2001:2::1", "2001:2::2", 136,
        neighbour.NA_SOLICITED | neighbour.NA_OVERRIDE, "2001:2::1", (2, TESTER_MAC))
    assert ours == bytes(Ether(src=TESTER_MAC, dst=TARGET_MAC)
                         / IPv6(src="2001:2::1", dst="2001:2::2", hlim=255)
                         / ICMPv6ND_NA(tgt="2001:2::1", R=0, S=1, O=1)
                         / ICMPv6NDOptDstLLAddr(lladdr=TESTER_MAC))


@pytest.mark.parametrize("source", ["2001:2::1", "::"], ids=["asking", "probing"])
def test_a_neighbour_solicitation_is_the_frame_scapy_builds(source):
    """A probe from :: carries no source link-layer option (RFC 4861 4.3)."""
    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr
    group, group_mac = "ff02::1:ff00:2", "33:33:ff:00:00:02"
    expected = (Ether(src=TESTER_MAC, dst=group_mac) / IPv6(src=source, dst=group, hlim=255)
                / ICMPv6ND_NS(tgt="2001:2::2"))
    if source != "::":
        expected = expected / ICMPv6NDOptSrcLLAddr(lladdr=TESTER_MAC)
    assert neighbour._solicitation(TESTER_MAC, source,
                                   ipaddress.ip_address("2001:2::2")) == bytes(expected)
