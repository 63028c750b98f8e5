"""Building and parsing segments: options byte for byte, both address families."""

from __future__ import annotations

import pytest

from conformance import tcp
from conformance.tcp import encode_options
from conformance.wire import (Frame, Link, build_frame, decode, echo_request,
                              is_echo_reply, parse_options)

LINK4 = Link(iface="x", tester_mac="02:00:00:00:00:01", target_mac="02:00:00:00:00:02",
             tester_ip="198.18.0.1", target_ip="198.18.0.2")
LINK6 = Link(iface="x", tester_mac="02:00:00:00:00:01", target_mac="02:00:00:00:00:02",
             tester_ip="2001:2::1", target_ip="2001:2::2")


def roundtrip(link, **kwargs):
    args = dict(sport=1234, dport=80, seq=1000, ack=2000, flags=tcp.SYN | tcp.ACK, window=512)
    args.update(kwargs)
    return decode(Frame(0.0, True, build_frame(link, **args)))


@pytest.mark.parametrize("link", [LINK4, LINK6], ids=["ipv4", "ipv6"])
def test_segment_roundtrip(link):
    """What build_frame puts on the wire, decode reads back, checksum included."""
    seg = roundtrip(link, payload=b"hello", options=[("mss", 1460), ("wscale", 7)], urgptr=3)
    assert (seg.src, seg.dst, seg.sport, seg.dport) == (link.tester_ip, link.target_ip, 1234, 80)
    assert (seg.seq, seg.ack, seg.flags, seg.window, seg.urgptr) == (1000, 2000, 0x12, 512, 3)
    assert seg.payload == b"hello" and seg.checksum_ok
    assert seg.options == [("mss", 1460), ("wscale", 7)]


@pytest.mark.parametrize("link", [LINK4, LINK6], ids=["ipv4", "ipv6"])
def test_bad_checksum_is_seen_as_bad(link):
    """A deliberately wrong checksum is wrong on the wire and decode says so."""
    assert not roundtrip(link, bad_checksum=True, payload=b"x").checksum_ok


def test_raw_options_reach_the_wire_byte_for_byte():
    """Raw options follow the named ones unchanged, padded with EOL to 32 bits."""
    assert encode_options([("mss", 536)], bytes.fromhex("01fe04abcd")) == \
        bytes.fromhex("02040218" "01fe04abcd" "000000")
    seg = roundtrip(LINK4, options=[("mss", 536)], raw_options=bytes.fromhex("01fe04abcd"))
    assert seg.options == [("mss", 536), ("kind-254", b"\xab\xcd")]
    assert seg.checksum_ok


@pytest.mark.parametrize("raw,parsed", [
    ("0101020405b4", [("mss", 1460)]),                       # unaligned MSS after NOPs
    ("0300", [("malformed", b"\x03\x00")]),                   # length 0
    ("fe01", [("malformed", b"\xfe\x01")]),                   # length 1
    ("fe28aabb", [("malformed", b"\xfe\x28\xaa\xbb")]),       # runs past the header
    ("080a0000000100000002", [("timestamp", (1, 2))]),
    ("0402", [("sack_ok", True)]),
    ("0003", []),                                             # EOL ends the list
])
def test_parse_options(raw, parsed):
    """Options are parsed like a receiver must (RFC 9293 MUST-64..68): unknown kinds
    and impossible lengths are named, never a crash."""
    assert parse_options(bytes.fromhex(raw)) == parsed


@pytest.mark.parametrize("link", [LINK4, LINK6], ids=["ipv4", "ipv6"])
def test_echo_request_is_addressed_to_the_target(link):
    """The sanity probe is an echo request in the link's own family."""
    frame = echo_request(link, 77)
    assert frame[12:14] == (b"\x86\xdd" if link.family == "ipv6" else b"\x08\x00")
    assert not is_echo_reply(Frame(0.0, True, frame), 77)
