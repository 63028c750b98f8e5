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

Scapy builds and dissects the segments; nothing here sleeps or polls with a
fixed period: waiting is a poll() on the capture socket with a deadline.
"""

from __future__ import annotations

import ctypes
import ipaddress
import select
import socket
import struct
import time
from dataclasses import dataclass

from scapy.arch.common import compile_filter, free_filter
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapWriter

from . import netns, safety, tcp

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35          # <asm-generic/socket.h>; Python's socket module lacks it
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4          # sll_pkttype of a frame this host sent
DLT_EN10MB = 1
CAPTURE_BUFFER = 4 << 20     # room for a burst of retransmissions while a step runs

_SCAPY_OPTION = {"mss": "MSS", "wscale": "WScale", "sack_ok": "SAckOK", "timestamp": "Timestamp"}
_OPTION_NAME = {v: k for k, v in _SCAPY_OPTION.items()}


class WireError(Exception):
    """The wire cannot be used: the verdict of any case depending on it is an error."""


@dataclass(frozen=True)
class Link:
    """Where the tester sends from and what it talks to."""

    iface: str
    tester_mac: str
    target_mac: str
    tester_ip: str
    target_ip: str
    netns: str | None = None  # the namespace holding `iface`; None: our own


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


class Wire:
    """The tester's two packet sockets on one link."""

    def __init__(self, link: Link, allowed_targets: tuple[str, ...] = ()):
        safety.check_target(link.target_ip, allowed_targets)
        self.link = link
        self._target_ip = ipaddress.ip_address(link.target_ip).packed
        try:
            with netns.entered(link.netns):
                self._tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                self._tx.bind((link.iface, 0))
                self._rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                         socket.htons(ETH_P_ALL))
                self._attach(_DROP_ALL, 1)
                self._rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self._rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_BUFFER)
                self._rx.bind((link.iface, ETH_P_ALL))
        except OSError as exc:
            raise WireError(f"cannot open packet sockets on {link.iface} "
                            f"in namespace {link.netns}: {exc}") from None
        self._poller = select.poll()
        self._poller.register(self._rx, select.POLLIN)

    # -- capture ------------------------------------------------------------

    def _attach(self, instructions: bytes, count: int) -> None:
        prog, _keep = _sock_fprog(instructions, count)
        self._rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)

    def watch(self, tester_port: int) -> None:
        """Capture only the flow between the tester's port and the target."""
        link = self.link
        self._filter(
            f"tcp and ((src host {link.tester_ip} and src port {tester_port} "
            f"and dst host {link.target_ip}) or (src host {link.target_ip} "
            f"and dst host {link.tester_ip} and dst port {tester_port}))")

    def watch_icmp(self) -> None:
        """Capture the target's ICMP, for the sanity probe after each case."""
        self._filter(f"icmp and src host {self.link.target_ip} and dst host {self.link.tester_ip}")

    def _filter(self, expression: str) -> None:
        # libpcap (through Scapy) compiles the expression; the kernel runs it,
        # so frames of other flows never wake the tester up.
        program = compile_filter(expression, linktype=DLT_EN10MB)
        try:
            raw = ctypes.string_at(ctypes.cast(program.bf_insns, ctypes.c_void_p),
                                   program.bf_len * 8)
            self._attach(raw, program.bf_len)
        finally:
            free_filter(program)
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

    # -- injection ----------------------------------------------------------

    def send(self, frame: bytes) -> float:
        """Put one frame on the wire; returns the time just after the send."""
        # Belt and braces for the safety rule: every IPv4 frame must go to the
        # checked target, whatever built it.
        if frame[12:14] != b"\x08\x00" or frame[30:34] != self._target_ip:
            raise safety.UnsafeTarget("refusing a frame not addressed to the lab target")
        self._tx.send(frame)
        return time.time()

    def close(self) -> None:
        for sock in (getattr(self, "_tx", None), getattr(self, "_rx", None)):
            if sock is not None:
                sock.close()


# -- crafting and dissecting segments (Scapy) --------------------------------

def build_frame(link: Link, sport: int, dport: int, seq: int, ack: int, flags: int,
                window: int, payload: bytes = b"", options=(), urgptr: int = 0,
                bad_checksum: bool = False) -> bytes:
    scapy_options = [(_SCAPY_OPTION[name], b"" if name == "sack_ok" else value)
                     for name, value in options]
    segment = TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                  window=window, urgptr=urgptr, options=scapy_options)
    packet = (Ether(src=link.tester_mac, dst=link.target_mac)
              / IP(src=link.tester_ip, dst=link.target_ip, ttl=64) / segment)
    if payload:
        packet = packet / Raw(payload)
    frame = bytes(packet)
    if bad_checksum:
        # RFC 9293 MUST-2/3: the receiver checks the checksum and drops the
        # segment silently.  Flip bits of the correct value so it is wrong.
        ihl = (frame[14] & 0x0F) * 4
        offset = 14 + ihl + 16
        good = struct.unpack("!H", frame[offset:offset + 2])[0]
        frame = frame[:offset] + struct.pack("!H", good ^ 0xA5A5) + frame[offset + 2:]
    return frame


def decode(frame: Frame) -> tcp.Segment | None:
    """The TCP segment in a captured frame, or None if there is none."""
    packet = Ether(frame.data)
    if IP not in packet or TCP not in packet:
        return None
    ip, segment = packet[IP], packet[TCP]
    ihl = ip.ihl * 4
    tcp_bytes = frame.data[14 + ihl:14 + ip.len]
    payload = tcp_bytes[segment.dataofs * 4:]
    options = []
    for name, value in segment.options:
        if name in ("NOP", "EOL"):
            continue
        options.append((_OPTION_NAME.get(name, str(name)), True if name == "SAckOK" else value))
    return tcp.Segment(
        direction=tcp.OUT if frame.outgoing else tcp.IN, time=frame.time,
        src=ip.src, dst=ip.dst, sport=segment.sport, dport=segment.dport,
        seq=segment.seq, ack=segment.ack, flags=int(segment.flags), window=segment.window,
        urgptr=segment.urgptr, options=options, payload=payload,
        checksum_ok=in4_chksum(6, ip, tcp_bytes) == 0, frame=frame.data)


def write_pcap(path, segments) -> None:
    """A pcap (nanosecond timestamps) of the frames of a case, in capture order."""
    writer = PcapWriter(str(path), linktype=DLT_EN10MB, nano=True, sync=False)
    try:
        for seg in segments:
            sec = int(seg.time)
            writer.write_packet(seg.frame, sec=sec, usec=int(round((seg.time - sec) * 1e9)))
    finally:
        writer.close()
