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

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

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
        mac = ":".join(f"{b:02x}" for b in sender_mac)
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
        mac = ":".join(f"{b:02x}" for b in frame[6:12])
        # Solicited, override: the requester may replace whatever it had.
        return bytes(Ether(src=self.tester_mac, dst=mac)
                     / IPv6(src=str(asked), dst=str(requester), hlim=255)
                     / ICMPv6ND_NA(tgt=str(asked), R=0, S=1, O=1)
                     / ICMPv6NDOptDstLLAddr(lladdr=self.tester_mac))

