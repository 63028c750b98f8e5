"""Frames packed with struct: Ethernet, IPv4 or IPv6, and TCP or ICMP.

The injector builds a frame for every segment a case sends, and a fence
(fence.py) an echo request for every window it closes: packing the bytes
by hand takes microseconds where building them with Scapy takes most of a
millisecond, and importing Scapy alone takes a large part of a cold start.
The fields are those Scapy would fill (IPv4 ID 1, TTL 64, no IPv4 flags;
IPv6 hop limit 64): tests/test_packets.py checks every builder against
Scapy, byte for byte.
"""

from __future__ import annotations

import ipaddress
import struct

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
PROTO_ICMP, PROTO_TCP, PROTO_ICMPV6 = 1, 6, 58
TTL = 64


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ethernet(dst_mac: str, src_mac: str, ethertype: int) -> bytes:
    return _mac(dst_mac) + _mac(src_mac) + struct.pack("!H", ethertype)


def _pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """What the TCP (and ICMPv6) checksum covers beside the segment itself."""
    if len(src) == 16:
        return src + dst + struct.pack("!I3xB", length, proto)
    return src + dst + struct.pack("!xBH", proto, length)


def ip_packet(src_ip: str, dst_ip: str, proto: int, payload: bytes,
              ttl: int = TTL) -> tuple[int, bytes]:
    """(ethertype, the IP packet around `payload`); `ttl` is IPv6's hop limit."""
    src, dst = ipaddress.ip_address(src_ip).packed, ipaddress.ip_address(dst_ip).packed
    if len(src) == 16:
        header = struct.pack("!IHBB", 6 << 28, len(payload), proto, ttl) + src + dst
        return ETH_P_IPV6, header + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0,
                         src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return ETH_P_IP, header + payload


def tcp_segment(src_ip: str, dst_ip: str, sport: int, dport: int, seq: int, ack: int,
                flags: int, window: int, options: bytes = b"", payload: bytes = b"",
                urgptr: int = 0) -> bytes:
    """A TCP header, `options` as given (padded by the caller) and `payload`,
    with the checksum over the pseudo-header."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq % 2**32, ack % 2**32,
                         (5 + len(options) // 4) << 4, flags & 0xFF, window, 0, urgptr)
    segment = header + options + payload
    src, dst = ipaddress.ip_address(src_ip).packed, ipaddress.ip_address(dst_ip).packed
    sum_ = checksum(_pseudo_header(src, dst, PROTO_TCP, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", sum_) + segment[18:]


def icmp_message(src_ip: str, dst_ip: str, icmp_type: int, code: int, rest: bytes,
                 v6: bool) -> bytes:
    """An ICMP (or ICMPv6, whose checksum covers the pseudo-header) message:
    type, code, checksum, then `rest` (the echo's ident and sequence, or an
    error's unused word and the quoted packet)."""
    message = struct.pack("!BBH", icmp_type, code, 0) + rest
    if v6:
        src, dst = ipaddress.ip_address(src_ip).packed, ipaddress.ip_address(dst_ip).packed
        message = _pseudo_header(src, dst, PROTO_ICMPV6, len(message)) + message
        sum_, message = checksum(message), message[40:]
    else:
        sum_ = checksum(message)
    return message[:2] + struct.pack("!H", sum_) + message[4:]


def frame(dst_mac: str, src_mac: str, src_ip: str, dst_ip: str, proto: int,
          payload: bytes, ttl: int = TTL) -> bytes:
    """An Ethernet frame with the IP packet around `payload`."""
    ethertype, packet = ip_packet(src_ip, dst_ip, proto, payload, ttl)
    return ethernet(dst_mac, src_mac, ethertype) + packet
