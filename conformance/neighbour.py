"""Answering ARP and IPv6 neighbour discovery for the tester's addresses.

The tester's addresses belong to no host: the injector speaks for them.  A
target that resolves them before it answers (a user-space stack such as lwIP
on a tap device, which keeps no static neighbour entries; later a remote
device on a real interface) needs someone to say where they are.  The
responder is that someone: a thread with its own packet socket that answers
an ARP request (RFC 826) or a neighbour solicitation (RFC 4861 7.2.4) for a
tester address, and nothing else.

Safety: it claims only the tester's own addresses, and answers only a
requester whose address is one of the configured targets, at the MAC address
that asked.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
import time

from . import netns, packets
from .wire import ETH_P_ALL, ETH_P_IPV6

ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ARP_REQUEST, ARP_REPLY = 1, 2
ICMPV6_NEIGHBOR_SOLICITATION, ICMPV6_NEIGHBOR_ADVERTISEMENT = 135, 136
ND_OPT_SOURCE_LLADDR, ND_OPT_TARGET_LLADDR = 1, 2
NA_SOLICITED, NA_OVERRIDE = 0x40000000, 0x20000000    # RFC 4861 4.4's S and O flags
BROADCAST = "ff:ff:ff:ff:ff:ff"
UNKNOWN_MAC = "00:00:00:00:00:00"


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class NeighbourResponder:
    """Answers ARP and neighbour solicitations for the tester's addresses on
    the links' interface, from a background thread, until stop()."""

    def __init__(self, links):
        links = list(links.values()) if isinstance(links, dict) else list(links)
        self.iface, self.ns = links[0].iface, links[0].netns
        self.tester_mac = links[0].tester_mac
        self.tester_ips = {ipaddress.ip_address(link.tester_ip) for link in links}
        self.target_ips = {ipaddress.ip_address(link.target_ip) for link in links}
        self.answered = 0
        self._stop = threading.Event()
        with netns.entered(self.ns):
            # Protocol at bind, not at creation (wire.Capture says why).
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self._sock.bind((self.iface, ETH_P_ALL))
        self._thread = threading.Thread(target=self._serve, name="neighbour-responder",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(100):
                continue
            try:
                frame = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except OSError:
                continue
            answer = self.answer(frame)
            if answer is not None:
                try:
                    self._sock.send(answer)
                    self.answered += 1
                except OSError:
                    pass

    def answer(self, frame: bytes) -> bytes | None:
        """The reply to a frame, or None when it is not a question for us."""
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == ETH_P_ARP:
            return self._arp_reply(frame)
        if ethertype == ETH_P_IPV6:
            return self._neighbour_advertisement(frame)
        return None

    def _arp_reply(self, frame: bytes) -> bytes | None:
        if len(frame) < 42:
            return None
        op, sender_mac, sender_ip, target_ip = struct.unpack("!6xH6s4s6x4s", frame[14:42])
        asked = ipaddress.ip_address(target_ip)
        requester = ipaddress.ip_address(sender_ip)
        if op != 1 or asked not in self.tester_ips or requester not in self.target_ips:
            return None
        mac = _mac_text(sender_mac)
        return arp_frame(ARP_REPLY, self.tester_mac, str(asked), mac, str(requester), mac)

    def _neighbour_advertisement(self, frame: bytes) -> bytes | None:
        if len(frame) < 14 + 40 + 24 or frame[20] != socket.IPPROTO_ICMPV6:
            return None
        icmp = frame[54:]
        if icmp[0] != ICMPV6_NEIGHBOR_SOLICITATION:
            return None
        asked = ipaddress.ip_address(icmp[8:24])
        requester = ipaddress.ip_address(frame[22:38])
        if asked not in self.tester_ips or requester not in self.target_ips:
            return None
        # Solicited, override: the requester may replace whatever it had.
        return discovery_frame(_mac_text(frame[6:12]), self.tester_mac, str(asked),
                               str(requester), ICMPV6_NEIGHBOR_ADVERTISEMENT,
                               NA_SOLICITED | NA_OVERRIDE, asked,
                               (ND_OPT_TARGET_LLADDR, self.tester_mac))



# -- asking: the target's MAC address, and whether an address is taken --------



def ask(iface: str, namespace: str | None, tester_mac: str, tester_ip: str, address: str,
        timeout: float = 1.0, tries: int = 3) -> str | None:
    """The MAC address that answers for `address` on `iface`, or None.

    IPv4 asks with an ARP request (RFC 826), IPv6 with a neighbour
    solicitation to the address's solicited-node group (RFC 4861 7.2.2).  A
    `tester_ip` of 0.0.0.0 or :: makes it a probe (RFC 5227 2.1.1; RFC 4862
    5.4.2, duplicate address detection): the question tells no one about an
    address, which is how to ask whether an address is taken before we speak
    for it.

    Only neighbours are asked: whatever answers is on the link itself, so a
    host behind a router can never be resolved, and so never reached."""
    asked = ipaddress.ip_address(address)
    question = (_arp_request(tester_mac, tester_ip, asked) if asked.version == 4
                else _solicitation(tester_mac, tester_ip, asked))
    with netns.entered(namespace):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((iface, ETH_P_ALL))     # wire.Capture says why here
        for _ in range(tries):
            sock.send(question)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                mac = _answer_for(sock.recv(65536), asked)
                if mac is not None:
                    return mac
    finally:
        sock.close()
    return None


def _arp_request(tester_mac: str, tester_ip: str, asked) -> bytes:
    return arp_frame(ARP_REQUEST, tester_mac, tester_ip, UNKNOWN_MAC, str(asked), BROADCAST)


def _solicitation(tester_mac: str, tester_ip: str, asked) -> bytes:
    # The solicited-node group: ff02::1:ff plus the address's last 24 bits,
    # and its multicast MAC 33:33 plus the group's last 32 bits (RFC 2464 7).
    low = asked.packed[-3:]
    group = ipaddress.ip_address(b"\xff\x02" + bytes(9) + b"\x01\xff" + low)
    group_mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[-4:])
    # A probe carries no source link-layer option (RFC 4861 4.3).
    option = (None if ipaddress.ip_address(tester_ip).is_unspecified
              else (ND_OPT_SOURCE_LLADDR, tester_mac))
    return discovery_frame(group_mac, tester_mac, tester_ip, str(group),
                           ICMPV6_NEIGHBOR_SOLICITATION, 0, asked, option)


def _answer_for(frame: bytes, asked) -> str | None:
    """The MAC address in an ARP reply or neighbour advertisement for `asked`."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == ETH_P_ARP and len(frame) >= 42:
        op, sender_mac, sender_ip = struct.unpack("!6xH6s4s", frame[14:32])
        if op == ARP_REPLY and sender_ip == asked.packed:
            return _mac_text(sender_mac)
    if (ethertype == ETH_P_IPV6 and len(frame) >= 14 + 40 + 24
            and frame[20] == socket.IPPROTO_ICMPV6 and frame[54] == ICMPV6_NEIGHBOR_ADVERTISEMENT
            and frame[62:78] == asked.packed):
        options = frame[78:]
        while len(options) >= 8 and options[1]:
            if options[0] == ND_OPT_TARGET_LLADDR:
                return _mac_text(options[2:8])
            options = options[options[1] * 8:]
        return _mac_text(frame[6:12])   # no option: the advertisement's sender
    return None


# -- the frames, packed with struct (tests/test_packets.py checks them against
# Scapy): the responder answers from a thread, and importing Scapy there on the
# first question took over a second on a loaded machine, longer than a target
# waits for its SYN-ACK to leave.

def arp_frame(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str,
              dst_mac: str) -> bytes:
    """An ARP request or reply (RFC 826) for IPv4 over Ethernet, in a frame to `dst_mac`."""
    return (packets.ethernet(dst_mac, sender_mac, ETH_P_ARP)
            + struct.pack("!HHBBH6s4s6s4s", ARPHRD_ETHER, packets.ETH_P_IP, 6, 4, op,
                          _mac_bytes(sender_mac), ipaddress.ip_address(sender_ip).packed,
                          _mac_bytes(target_mac), ipaddress.ip_address(target_ip).packed))


def discovery_frame(dst_mac: str, src_mac: str, src_ip: str, dst_ip: str, icmp_type: int,
                    flags: int, target, option: tuple[int, str] | None) -> bytes:
    """A neighbour solicitation or advertisement (RFC 4861 4.3, 4.4): hop limit
    255, the flags word, the target address and at most one link-layer
    address option (type, MAC)."""
    rest = struct.pack("!I", flags) + ipaddress.ip_address(target).packed
    if option is not None:
        rest += struct.pack("!BB6s", option[0], 1, _mac_bytes(option[1]))
    message = packets.icmp_message(src_ip, dst_ip, icmp_type, 0, rest, v6=True)
    return packets.frame(dst_mac, src_mac, src_ip, dst_ip, packets.PROTO_ICMPV6, message,
                         ttl=255)


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
