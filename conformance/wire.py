"""The wire: injecting crafted segments and capturing the target's answers.

Two AF_PACKET sockets are opened once for the whole run, inside the tester
namespace, on the tester's end of the lab link (lab notes: one socket per
segment, as Scapy's sr1() does, costs 23-32 ms an exchange; a reused socket
costs well under a millisecond):

* the *injector* socket only transmits (protocol 0: it receives nothing);
* the *capture* socket sees both directions of the case's flow, through a BPF
  filter that the kernel applies, and the kernel timestamps every frame
  (SO_TIMESTAMPNS).  Our own injected frames reach it as outgoing frames, so
  the ladder's times for both directions come from the same clock.

Scapy builds the segments and a small struct parser reads them; nothing here sleeps or polls with a
fixed period: waiting is a poll() on the capture socket with a deadline.
"""

from __future__ import annotations

import ctypes
import ipaddress
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

from . import netns, packets, safety, tcp
from .bpf import FilterError, compile_filter
from .tcp import (EOL, IPV4, IPV6, MSS, NOP, OPTION_KINDS, SACK_OK, TIMESTAMP, WSCALE,
                  encode_options)

ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
SO_TIMESTAMPNS = 35          # <asm-generic/socket.h>; Python's socket module lacks it
SO_ATTACH_FILTER = 26
SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 263, 1, 1   # <linux/if_packet.h>
PACKET_OUTGOING = 4          # sll_pkttype of a frame this host sent
DLT_EN10MB = 1
CAPTURE_BUFFER = 4 << 20     # room for a burst of retransmissions while a step runs


class WireError(Exception):
    """The wire cannot be used: the verdict of any case depending on it is an error."""


@dataclass(frozen=True)
class Link:
    """Where the tester sends from and what it talks to, in one address family."""

    iface: str
    tester_mac: str
    target_mac: str
    tester_ip: str
    target_ip: str
    netns: str | None = None  # the namespace holding `iface`; None: our own

    @property
    def family(self) -> str:
        return IPV6 if ":" in self.target_ip else IPV4

    def frame(self, proto: int, payload: bytes) -> bytes:
        """An Ethernet frame from the tester to the target, the IP packet
        around `payload` (packets.py)."""
        return packets.frame(self.target_mac, self.tester_mac, self.tester_ip, self.target_ip,
                             proto, payload)


@dataclass
class Frame:
    time: float       # kernel receive timestamp, seconds since the epoch
    outgoing: bool    # sent by the tester
    data: bytes


def _sock_fprog(instructions: bytes, count: int):
    buffer = ctypes.create_string_buffer(instructions)
    prog = struct.pack("HL", count, ctypes.addressof(buffer))
    return prog, buffer  # keep the buffer alive until setsockopt returns


_DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)  # BPF "ret #0": accept nothing


class Capture:
    """A capture-only packet socket on one interface: the kernel filters
    frames to the flows a case watches (BPF) and timestamps each one.

    The wire has one on the tester's end of the link; the witness
    (witness.py) has one on the target's end.

    `promiscuous`: the tester speaks from a MAC address of its own that the
    interface does not have (a remote target tested from an address no host
    owns), so the capture must take frames for other addresses too.  It is a
    membership of the capture socket, not a setting of the interface: the
    kernel drops it when the socket closes, however the run ends."""

    def __init__(self, iface: str, namespace: str | None, promiscuous: bool = False):
        try:
            with netns.entered(namespace):
                # Protocol 0 here and ETH_P_ALL at bind: a socket made with a
                # protocol is hooked in at once, and bind then unhooks it,
                # waiting out an RCU grace period (packet_do_bind's
                # synchronize_net): 8 ms a capture, the same as its close.
                self._rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                self._attach(_DROP_ALL, 1)
                self._rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_BUFFER)
                self._rx.bind((iface, ETH_P_ALL))    # (Python puts it in network order)
                if promiscuous:
                    membership = struct.pack("iHH8s", socket.if_nametoindex(iface),
                                             PACKET_MR_PROMISC, 0, b"")
                    self._rx.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        except OSError as exc:
            self.close()
            raise WireError(f"cannot open a packet socket on {iface} "
                            f"in namespace {namespace}: {exc}") from None
        self._poller = select.poll()
        self._poller.register(self._rx, select.POLLIN)

    def _attach(self, instructions: bytes, count: int) -> None:
        prog, _keep = _sock_fprog(instructions, count)
        self._rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)

    def watch(self, link: Link, tester_ports, echo_replies: bool = True) -> None:
        """Capture only the flows between the tester's port(s) and the target,
        and with `echo_replies` the target's ICMP echo replies."""
        ports = [tester_ports] if isinstance(tester_ports, int) else list(tester_ports)
        sent = " or ".join(f"src port {port}" for port in ports)
        answered = " or ".join(f"dst port {port}" for port in ports)
        # libpcap's `tcp` follows no IPv6 extension headers; the segments the
        # suite checks carry none.
        # And the target's echo replies: a fence's (fence.py) closes a window.
        reply = "icmp6 and ip6[40] == 129" if link.family == IPV6 else \
            "icmp and icmp[icmptype] == icmp-echoreply"
        expression = (
            f"(tcp and ((src host {link.tester_ip} and dst host {link.target_ip} and ({sent})) "
            f"or (src host {link.target_ip} and dst host {link.tester_ip} and ({answered}))))")
        if echo_replies:
            expression += (f" or ({reply} and src host {link.target_ip} "
                           f"and dst host {link.tester_ip})")
        self._filter(expression)

    def watch_ports(self, ports, icmp: bool = False) -> None:
        """Capture TCP to or from any of `ports`, whatever the addresses (the
        end host's side of a NAT, where the addresses are not the tester's),
        and with `icmp` ICMP and ICMPv6 echo requests and destination
        unreachable errors too."""
        expression = "(tcp and (" + " or ".join(f"port {port}" for port in ports) + "))"
        if icmp:
            # and ICMP destination unreachable errors, which a case may send
            expression += (" or (icmp and (icmp[icmptype] == icmp-echo or icmp[icmptype] == "
                           "icmp-unreach)) or (icmp6 and (ip6[40] == 128 or ip6[40] == 1))")
        self._filter(expression)

    def watch_icmp(self, link: Link) -> None:
        """Capture the target's ICMP, for the sanity probe after each case."""
        proto = "icmp6" if link.family == IPV6 else "icmp"
        self._filter(f"{proto} and src host {link.target_ip} and dst host {link.tester_ip}")

    def _filter(self, expression: str) -> None:
        # libpcap compiles the expression (bpf.py); the kernel runs it, so
        # frames of other flows never wake the tester up.
        try:
            raw, count = compile_filter(expression)
        except FilterError as exc:
            raise WireError(f"cannot compile the capture filter {expression!r}: {exc}") from None
        self._attach(raw, count)
        self.drain()

    def drain(self) -> None:
        """Forget frames that belong to an earlier flow."""
        while self._read(0) is not None:
            pass

    def receive(self, deadline: float) -> Frame | None:
        """The next captured frame, or None once time.time() passes deadline.
        Frames already queued are returned even after the deadline: their
        kernel timestamps say when they really arrived."""
        return self._read(max(0.0, deadline - time.time()))

    def _read(self, timeout: float) -> Frame | None:
        if not self._poller.poll(int(timeout * 1000 + 0.999)):
            return None
        try:
            data, ancillary, _flags, address = self._rx.recvmsg(
                65536, socket.CMSG_SPACE(16), socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        stamp = time.time()
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec + nsec / 1e9
        return Frame(stamp, address[2] == PACKET_OUTGOING, data)

    def close(self) -> None:
        if getattr(self, "_rx", None) is not None:
            self._rx.close()


class Wire:
    """The tester's two packet sockets on one interface: the injector's, which
    only transmits (protocol 0: it receives nothing), and a :class:`Capture`.

    One wire serves every address family of a target (its `links` share the
    interface): each case watches the flow of the link it runs over."""

    def __init__(self, links, allowed_targets: tuple[str, ...] = (), promiscuous: bool = False,
                 also_to: tuple[str, ...] = ()):
        """`also_to`: addresses beyond the links' targets the wire may send to
        (the end host behind a middlebox, which the fence's echo goes to)."""
        links = list(links.values()) if isinstance(links, dict) else list(links)
        link = links[0]
        if any((other.iface, other.netns) != (link.iface, link.netns) for other in links):
            raise WireError("the links of one wire must share the interface and namespace")
        destinations = [each.target_ip for each in links] + list(also_to)
        for address in destinations:
            safety.check_target(address, allowed_targets)
        self.links = {each.family: each for each in links}
        self._targets = {ipaddress.ip_address(address).packed for address in destinations}
        try:
            with netns.entered(link.netns):
                self._tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                self._tx.bind((link.iface, 0))
        except OSError as exc:
            raise WireError(f"cannot open packet sockets on {link.iface} "
                            f"in namespace {link.netns}: {exc}") from None
        try:
            self.capture = Capture(link.iface, link.netns, promiscuous)
        except WireError:
            self._tx.close()
            raise
        self.watch, self.watch_icmp = self.capture.watch, self.capture.watch_icmp
        self.drain, self.receive = self.capture.drain, self.capture.receive

    def echo(self, link: Link, timeout: float = 1.0) -> bool:
        """Whether the target answers an ICMP echo within `timeout` (the
        capture is left watching ICMP: the next case sets its own filter)."""
        ident = random.randrange(1, 65535)
        self.watch_icmp(link)
        self.send(echo_request(link, ident))
        deadline = time.time() + timeout
        while (captured := self.receive(deadline)) is not None:
            if is_echo_reply(captured, ident):
                return True
        return False

    # -- injection ----------------------------------------------------------

    def send(self, frame: bytes) -> float:
        """Put one frame on the wire; returns the time just after the send."""
        # Belt and braces for the safety rule: every frame must be IPv4 or
        # IPv6 to a checked target, whatever built it.
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype == ETH_P_IP:
            destination = frame[30:34]
        elif ethertype == ETH_P_IPV6:
            destination = frame[38:54]
        else:
            destination = None
        if destination not in self._targets:
            raise safety.UnsafeTarget(
                f"refusing to send a frame to {_address_text(destination)}: the wire sends only "
                f"to the configured target(s) {', '.join(l.target_ip for l in self.links.values())}")
        self._tx.send(frame)
        return time.time()

    def close(self) -> None:
        side_by_side([each.close for each in (getattr(self, "_tx", None),
                                              getattr(self, "capture", None))
                      if each is not None])


def side_by_side(closers) -> None:
    """Call every one of `closers` at once, each on a thread of its own, and
    return when all have: closing a packet socket waits out an RCU grace
    period (packet_release's synchronize_net, 8-16 ms here), and waits that
    overlap end together.  The first exception raised is raised again."""
    failures = []

    def call(closer):
        try:
            closer()
        except BaseException as exc:  # noqa: BLE001 - raised again below
            failures.append(exc)
    threads = []
    for closer in closers[1:]:
        thread = threading.Thread(target=call, args=(closer,), name="tcpconf-close")
        try:
            thread.start()
        except RuntimeError:        # at interpreter shutdown: one after the other
            call(closer)
            continue
        threads.append(thread)
    if closers:
        call(closers[0])
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _address_text(packed: bytes | None) -> str:
    if packed is None:
        return "no IP address (not an IPv4 or IPv6 frame)"
    return str(ipaddress.ip_address(packed))


# -- crafting and dissecting segments -----------------------------------------

def build_frame(link: Link, sport: int, dport: int, seq: int, ack: int, flags: int,
                window: int, payload: bytes = b"", options=(), urgptr: int = 0,
                bad_checksum: bool = False, raw_options: bytes = b"") -> bytes:
    # The options go on the wire byte for byte, malformed ones too; the
    # checksum covers header, options and data all the same.
    segment = packets.tcp_segment(link.tester_ip, link.target_ip, sport, dport, seq, ack,
                                  flags, window, encode_options(options, raw_options), payload,
                                  urgptr)
    if bad_checksum:
        # RFC 9293 MUST-2/3: the receiver checks the checksum and drops the
        # segment silently.  Flip bits of the correct value so it is wrong.
        good = struct.unpack("!H", segment[16:18])[0]
        segment = segment[:16] + struct.pack("!H", good ^ 0xA5A5) + segment[18:]
    return link.frame(packets.PROTO_TCP, segment)


ECHO_DATA = b"tcpconf sanity"


def echo_request(link: Link, ident: int) -> bytes:
    """An ICMP (or ICMPv6) echo request from the tester to the target."""
    v6 = link.family == IPV6
    message = packets.icmp_message(link.tester_ip, link.target_ip, 128 if v6 else 8, 0,
                                   struct.pack("!HH", ident, 1) + ECHO_DATA, v6)
    return link.frame(packets.PROTO_ICMPV6 if v6 else packets.PROTO_ICMP, message)


def icmp_error(link: Link, code: int, quoted: bytes) -> bytes:
    """An ICMP (ICMPv6) destination unreachable error with `code` from the
    tester to the target, quoting the IP packet `quoted` (one the target
    sent): the whole of a short one, as RFC 1812 4.3.2.3 and RFC 4443 2.4
    allow (at least the IP header and 8 octets, RFC 792)."""
    v6 = link.family == IPV6
    message = packets.icmp_message(link.tester_ip, link.target_ip, 1 if v6 else 3, code,
                                   bytes(4) + quoted[:1232 if v6 else 548], v6)
    return link.frame(packets.PROTO_ICMPV6 if v6 else packets.PROTO_ICMP, message)


# ICMP echo types, (IPv4, ICMPv6).
_ECHO_REQUEST, _ECHO_REPLY = (8, 128), (0, 129)


def is_echo_request(frame: Frame, ident: int) -> bool:
    return _is_echo(frame, ident, _ECHO_REQUEST)


def is_echo_reply(frame: Frame, ident: int) -> bool:
    return _is_echo(frame, ident, _ECHO_REPLY)


def _is_echo(frame: Frame, ident: int, types: tuple[int, int]) -> bool:
    """Whether `frame` is an ICMP (ICMPv6) echo of `types` with `ident`.
    Parsed with struct: a fence's reply is looked for among the frames of
    every window it closes."""
    data, want = frame.data, ident.to_bytes(2, "big")
    ethertype = int.from_bytes(data[12:14], "big")
    if ethertype == ETH_P_IP and len(data) >= 34 and data[23] == socket.IPPROTO_ICMP:
        icmp = 14 + (data[14] & 0x0F) * 4
        return data[icmp:icmp + 1] == bytes([types[0]]) and data[icmp + 4:icmp + 6] == want
    if ethertype == ETH_P_IPV6 and len(data) >= 62 and data[20] == socket.IPPROTO_ICMPV6:
        return data[54] == types[1] and data[58:60] == want
    return False


def parse_options(data: bytes) -> list:
    """TCP options as (name, value) pairs, NOP and EOL left out.

    Unknown kinds become ("kind-<n>", bytes); a length that is impossible
    (below 2, or running past the header) ends parsing with ("malformed",
    rest), since nothing after it can be trusted (RFC 9293 MUST-7)."""
    options, i = [], 0
    while i < len(data):
        kind = data[i]
        if kind == EOL:
            break
        if kind == NOP:
            i += 1
            continue
        length = data[i + 1] if i + 1 < len(data) else 0
        if length < 2 or i + length > len(data):
            options.append(("malformed", data[i:]))
            break
        body = data[i + 2:i + length]
        name = OPTION_KINDS.get(kind, f"kind-{kind}")
        if kind == MSS and length == 4:
            value = struct.unpack("!H", body)[0]
        elif kind == WSCALE and length == 3:
            value = body[0]
        elif kind == SACK_OK and length == 2:
            value = True
        elif kind == TIMESTAMP and length == 10:
            value = struct.unpack("!II", body)
        else:
            value = body
        options.append((name, value))
        i += length
    return options


def decode(frame: Frame) -> tcp.Segment | None:
    """The TCP segment in a captured frame, or None if there is none.

    Parsed with struct rather than Scapy: it runs for every captured frame,
    and must not trip over the malformed options that cases send."""
    data = frame.data
    ethertype = int.from_bytes(data[12:14], "big")
    if ethertype == ETH_P_IP and len(data) >= 34:
        ihl = (data[14] & 0x0F) * 4
        total = int.from_bytes(data[16:18], "big")
        if data[23] != socket.IPPROTO_TCP or total < ihl + 20:
            return None
        src, dst = socket.inet_ntop(socket.AF_INET, data[26:30]), socket.inet_ntop(socket.AF_INET, data[30:34])
        tcp_bytes = data[14 + ihl:14 + total]
        pseudo = data[26:34] + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp_bytes))
    elif ethertype == ETH_P_IPV6 and len(data) >= 54:
        length = int.from_bytes(data[18:20], "big")
        if data[20] != socket.IPPROTO_TCP or length < 20:
            return None
        src, dst = socket.inet_ntop(socket.AF_INET6, data[22:38]), socket.inet_ntop(socket.AF_INET6, data[38:54])
        tcp_bytes = data[54:54 + length]
        pseudo = data[22:54] + struct.pack("!IxxxB", len(tcp_bytes), socket.IPPROTO_TCP)
    else:
        return None
    if len(tcp_bytes) < 20:
        return None
    sport, dport, seq, ack, offset_byte, flags, window, _sum, urgptr = \
        struct.unpack("!HHIIBBHHH", tcp_bytes[:20])
    header = max(20, (offset_byte >> 4) * 4)
    return tcp.Segment(
        direction=tcp.OUT if frame.outgoing else tcp.IN, time=frame.time,
        src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack,
        flags=flags | (offset_byte & 0x01) << 8, window=window, urgptr=urgptr,
        options=parse_options(tcp_bytes[20:header]), payload=tcp_bytes[header:],
        checksum_ok=packets.checksum(pseudo + tcp_bytes) == 0, frame=data)


def decode_packet(packet: bytes) -> tcp.Segment | None:
    """The TCP segment in an IP packet (no Ethernet header: as the witness and
    the middlebox view compare them), or None if there is none."""
    ethertype = b"\x86\xdd" if packet[:1] and packet[0] >> 4 == 6 else b"\x08\x00"
    return decode(Frame(0.0, False, bytes(12) + ethertype + packet))


PCAP_NANOSECOND_MAGIC = 0xA1B23C4D


def write_pcap(path, frames) -> None:
    """A pcap of the frames of a case, (time, bytes) pairs in capture order,
    with the kernel's nanosecond timestamps (the pcap format's nanosecond
    variant, which Wireshark, tcpdump and Scapy read)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", PCAP_NANOSECOND_MAGIC, 2, 4, 0, 0, 65535, DLT_EN10MB))
        for at, data in frames:
            sec = int(at)
            nsec = min(999_999_999, int(round((at - sec) * 1e9)))
            out.write(struct.pack("<IIII", sec, nsec, len(data), len(data)))
            out.write(data)
