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

from . import netns
from .wire import ETH_P_ALL, ETH_P_IPV6

ETH_P_ARP = 0x0806
ICMPV6_NEIGHBOR_SOLICITATION = 135


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
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
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
        from scapy.layers.l2 import ARP, Ether     # Scapy only here: a cold start spares it
        return bytes(Ether(src=self.tester_mac, dst=mac)
                     / ARP(op=2, hwsrc=self.tester_mac, psrc=str(asked), hwdst=mac,
                           pdst=str(requester)))

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
        mac = _mac_text(frame[6:12])
        # Solicited, override: the requester may replace whatever it had.
        from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
        from scapy.layers.l2 import Ether
        return bytes(Ether(src=self.tester_mac, dst=mac)
                     / IPv6(src=str(asked), dst=str(requester), hlim=255)
                     / ICMPv6ND_NA(tgt=str(asked), R=0, S=1, O=1)
                     / ICMPv6NDOptDstLLAddr(lladdr=self.tester_mac))



# -- asking: the target's MAC address, and whether an address is taken --------

ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
ND_OPT_SOURCE_LLADDR, ND_OPT_TARGET_LLADDR = 1, 2
ARP_REQUEST, ARP_REPLY = 1, 2
BROADCAST = "ff:ff:ff:ff:ff:ff"


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
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((iface, ETH_P_ALL))
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
    from scapy.layers.l2 import ARP, Ether
    return bytes(Ether(src=tester_mac, dst=BROADCAST)
                 / ARP(op=ARP_REQUEST, hwsrc=tester_mac, psrc=tester_ip,
                       hwdst="00:00:00:00:00:00", pdst=str(asked)))


def _solicitation(tester_mac: str, tester_ip: str, asked) -> bytes:
    # The solicited-node group: ff02::1:ff plus the address's last 24 bits,
    # and its multicast MAC 33:33 plus the group's last 32 bits (RFC 2464 7).
    low = asked.packed[-3:]
    group = ipaddress.ip_address(b"\xff\x02" + bytes(9) + b"\x01\xff" + low)
    group_mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[-4:])
    from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
    from scapy.layers.l2 import Ether
    solicitation = IPv6(src=tester_ip, dst=str(group), hlim=255) / ICMPv6ND_NS(tgt=str(asked))
    if ipaddress.ip_address(tester_ip).is_unspecified:
        # A probe carries no source link-layer option (RFC 4861 4.3).
        return bytes(Ether(src=tester_mac, dst=group_mac) / solicitation)
    return bytes(Ether(src=tester_mac, dst=group_mac) / solicitation
                 / ICMPv6NDOptSrcLLAddr(lladdr=tester_mac))


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


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
