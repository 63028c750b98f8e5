"""Faults on the lab link, measured: a lab with a link namespace, thousands of
SYNs from the tester, and what arrives at the target (and the target's
answers at the tester) counted for loss, duplication, corruption, delay and
reordering.  Also: the link namespace and the delay line are gone after
destroy(), and after the building process is killed.

The SYNs go to a closed port of the Linux target, which answers each with a
RST; every SYN has its own source port, so each frame (and each answer) is
known by its port.  Captures are AF_PACKET sockets with kernel timestamps on
target0 in the target namespace and on tester0 in the tester namespace.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from conformance import netns, packets
from conformance.faults import Faults
from conformance.lab import Lab, TARGET_IFACE, TESTER_IFACE
from conformance.tcp import IPV4, IPV6
from conformance.wire import build_frame

from .conftest import REPO, lab_namespaces

pytestmark = pytest.mark.lab  # every test here builds a lab

ETH_P_ALL, SO_TIMESTAMPNS, PACKET_OUTGOING = 0x0003, 35, 4
SYN, RST = 0x02, 0x04
FIRST_PORT = 20000
CLOSED_PORT = 9
GAP = 0.0003          # seconds between SYNs: a held frame is overtaken by the next ones


@dataclass
class Seen:
    """One TCP frame a capture saw: the tester's port it belongs to, when
    (kernel timestamp), and whether its checksum holds."""
    port: int
    time: float
    checksum_ok: bool
    outgoing: bool


def parse_tcp(frame: bytes) -> tuple[int, int, int, bool] | None:
    """(source port, destination port, flags, checksum holds) of a TCP frame
    over IPv4 or IPv6 (without extension headers); None for anything else."""
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800 and frame[23] == 6:
        header = (frame[14] & 0x0F) * 4
        length = int.from_bytes(frame[16:18], "big") - header
        segment = frame[14 + header:14 + header + length]
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, length)
    elif ethertype == 0x86DD and frame[20] == 6:
        length = int.from_bytes(frame[18:20], "big")
        segment = frame[54:54 + length]
        pseudo = frame[22:54] + struct.pack("!IxxxB", length, 6)
    else:
        return None
    sport, dport = struct.unpack("!HH", segment[:4])
    return sport, dport, segment[13], packets.checksum(pseudo + segment) == 0


class Capture:
    """An AF_PACKET socket on `iface` in namespace `ns`, read by a thread while
    the test sends (the socket's buffer cannot hold thousands of frames
    without CAP_NET_ADMIN over the machine, which a user namespace lacks)."""

    def __init__(self, ns: str, iface: str):
        with netns.entered(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.sock.bind((iface, ETH_P_ALL))
        self.seen: list[Seen] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def frames(self) -> list[Seen]:
        """What was seen until now; the capture ends."""
        self._done.set()
        self._thread.join()
        self.sock.close()
        return self.seen

    def _read(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while not self._done.is_set():
            if not poller.poll(50):
                continue
            while True:
                try:
                    data, ancillary, _flags, address = self.sock.recvmsg(
                        65536, socket.CMSG_SPACE(16), socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                self._note(data, ancillary, address)

    def _note(self, data: bytes, ancillary, address) -> None:
        parsed = parse_tcp(data)
        if parsed is None:
            return
        sport, dport, _flags, ok = parsed
        stamp = next(struct.unpack("qq", value[:16]) for level, kind, value in ancillary
                     if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS)
        # The tester's port: the source of a SYN, the destination of an answer.
        port = sport if dport == CLOSED_PORT else dport
        self.seen.append(Seen(port, stamp[0] + stamp[1] / 1e9, ok,
                              address[2] == PACKET_OUTGOING))


def send_syns(lab: Lab, count: int) -> None:
    """`count` SYNs to a closed port, alternately over IPv4 and IPv6, each from
    its own source port."""
    links = lab.links
    frames = [build_frame(links[IPV4 if i % 2 == 0 else IPV6], FIRST_PORT + i, CLOSED_PORT,
                          seq=i, ack=0, flags=SYN, window=65535) for i in range(count)]
    with netns.entered(lab.tester_ns):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        tx.bind((TESTER_IFACE, 0))
    with tx:
        for frame in frames:
            tx.send(frame)
            time.sleep(GAP)


@dataclass
class Rates:
    """One direction of the link, measured over the frames sent into it."""
    sent: int
    lost: float            # sent frames that never arrived
    duplicated: float      # arrived frames that arrived more than once
    corrupted: float       # arrived frames whose (first copy's) checksum is wrong
    overtaken: float       # arrived frames that a later one overtook
    delays: list[float]    # seconds from sending to arrival (first copies)
    overtaken_delays: list[float]

    def __str__(self) -> str:
        return (f"{self.sent} sent: lost {self.lost:.2%}, duplicated {self.duplicated:.2%}, "
                f"corrupted {self.corrupted:.2%}, overtaken {self.overtaken:.2%}, delay median "
                f"{statistics.median(self.delays) * 1e3:.2f} ms, max "
                f"{max(self.delays) * 1e3:.2f} ms")


def rates(sent: dict[int, float], arrived: list[Seen]) -> Rates:
    """Compare frames sent (port -> send time) with what arrived, in arrival order."""
    copies: dict[int, list[Seen]] = {}
    for seen in arrived:
        if seen.port in sent:
            copies.setdefault(seen.port, []).append(seen)
    # In the order each frame first arrived: a frame is overtaken if one sent
    # after it arrived before it.
    rank = {port: index for index, port in enumerate(sorted(sent, key=sent.get))}
    firsts = sorted((each[0] for each in copies.values()), key=lambda seen: seen.time)
    overtaken, latest = [], -1
    for seen in firsts:
        if rank[seen.port] < latest:
            overtaken.append(seen)
        latest = max(latest, rank[seen.port])
    count = len(copies) or 1
    return Rates(
        sent=len(sent), lost=1 - len(copies) / len(sent),
        duplicated=sum(len(each) > 1 for each in copies.values()) / count,
        corrupted=sum(not each[0].checksum_ok for each in copies.values()) / count,
        overtaken=len(overtaken) / count,
        delays=[seen.time - sent[seen.port] for seen in firsts],
        overtaken_delays=[seen.time - sent[seen.port] for seen in overtaken])


def measure(faults: Faults, count: int) -> tuple[Rates, Rates, int | None]:
    """Build a lab with `faults`, send `count` SYNs; the rates towards the
    target and back (answers the target sent once, measured at the tester),
    and the delay line's PID (checked gone after destroy())."""
    lab = Lab(faults=faults)
    try:
        lab.build()
        pid = lab.delay_line_pid
        at_target = Capture(lab.target_ns, TARGET_IFACE)
        at_tester = Capture(lab.tester_ns, TESTER_IFACE)
        send_syns(lab, count)
        time.sleep(0.2 + faults.hold)        # the last answers through the delay line
        target_frames, tester_frames = at_target.frames(), at_tester.frames()
    finally:
        lab.destroy()
    assert not {lab.tester_ns, lab.target_ns, lab.link_ns} & lab_namespaces()
    if pid is not None:
        assert not os.path.exists(f"/proc/{pid}"), "the delay line outlived destroy()"
    syns = sent_once(tester_frames)
    assert len(syns) == count
    forward = rates(syns, [seen for seen in target_frames if not seen.outgoing])
    back = rates(sent_once(target_frames), [seen for seen in tester_frames if not seen.outgoing])
    return forward, back, pid


def sent_once(frames: list[Seen]) -> dict[int, float]:
    """The frames a capture saw leaving, by port, with the kernel's timestamp
    of their sending; only ports with one (a duplicated SYN draws two answers,
    which cannot be told apart on the way back)."""
    leaving: dict[int, list[Seen]] = {}
    for seen in frames:
        if seen.outgoing:
            leaving.setdefault(seen.port, []).append(seen)
    return {port: each[0].time for port, each in leaving.items() if len(each) == 1}


def test_loss_duplication_corruption_and_reordering_are_applied_each_way():
    """5 % loss, 5 % duplication, 5 % corruption and 10 % reordering (held
    back 5 ms): each measured within a plausible band in both directions."""
    faults = Faults(loss=0.05, duplicate=0.05, corrupt=0.05, reorder=0.10)
    forward, back, _pid = measure(faults, 2000)
    print(f"\ntowards the target: {forward}\nback to the tester: {back}")
    for direction in (forward, back):
        assert 0.03 <= direction.lost <= 0.075, direction
        assert 0.03 <= direction.duplicated <= 0.075, direction
        assert 0.03 <= direction.corrupted <= 0.075, direction
        # A held frame is overtaken unless the frames after it are lost or held too.
        assert 0.06 <= direction.overtaken <= 0.14, direction
        # Held back 5 ms (the delay line wakes on the millisecond), the others not.
        assert 0.0045 <= statistics.median(direction.overtaken_delays) <= 0.009, direction
        assert statistics.median(direction.delays) < 0.002, direction


def test_corruption_hits_both_families():
    """TCP over IPv6 is corrupted as TCP over IPv4 is (meta l4proto follows
    the IPv6 header; @th is the TCP header in both)."""
    lab = Lab(faults=Faults(corrupt=0.5))
    try:
        lab.build()
        at_target = Capture(lab.target_ns, TARGET_IFACE)
        send_syns(lab, 400)
        time.sleep(0.1)
        arrived = [seen for seen in at_target.frames() if not seen.outgoing]
    finally:
        lab.destroy()
    for parity, family in ((0, IPV4), (1, IPV6)):
        ours = [seen for seen in arrived if (seen.port - FIRST_PORT) % 2 == parity]
        bad = sum(not seen.checksum_ok for seen in ours) / len(ours)
        print(f"{family}: {len(ours)} arrived, {bad:.1%} corrupted")
        assert len(ours) == 200
        assert 0.35 <= bad <= 0.65, (family, bad)


def test_delay_alone_holds_every_frame_up_to_the_delay():
    """delay=10ms without reordering: every frame is held a uniform 0 to 10 ms
    (so frames pass each other), none lost, duplicated or corrupted."""
    forward, back, _pid = measure(Faults(delay=0.010), 1000)
    print(f"\ntowards the target: {forward}\nback to the tester: {back}")
    for direction in (forward, back):
        assert direction.lost == direction.duplicated == direction.corrupted == 0, direction
        assert 0.004 <= statistics.mean(direction.delays) <= 0.007, direction
        # The delay line wakes on the millisecond; a machine busy with the other
        # tests adds more (14.3 ms seen in CI for 10 ms, a 99th percentile of
        # 22 ms in another run): the mean above is what says the delay is right,
        # these bounds only that no frame is held for long.
        assert sorted(direction.delays)[int(0.99 * len(direction.delays))] <= 0.030, direction
        assert max(direction.delays) <= 0.060, direction
        assert direction.overtaken > 0.2, direction


def test_a_faultless_link_namespace_passes_everything():
    """Faults() builds the link namespace with no rules and no delay line: every
    frame crosses once, intact, in order."""
    forward, back, pid = measure(Faults(), 500)
    assert pid is None
    for direction in (forward, back):
        assert direction.lost == direction.duplicated == direction.corrupted == 0, direction
        assert direction.overtaken == 0, direction


def test_a_killed_run_leaves_no_delay_line_and_its_namespaces_go_at_the_next_start():
    """SIGKILL to the process that built a lab with faults: its delay line sees
    its stdin close and ends; the next lab build removes the three namespaces."""
    code = ("from conformance.lab import Lab\nfrom conformance.faults import Faults\n"
            "lab = Lab(faults=Faults(reorder=0.1)); lab.build()\n"
            "print(lab.delay_line_pid, lab.link_ns, flush=True)\nimport time; time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    try:
        pid, link_ns = child.stdout.readline().split()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{pid}"), "the delay line outlived its suite"
        # The kill left the namespaces behind; another test's lab, built on
        # another worker meanwhile, may already have removed them as stale.
        lab = Lab()
        try:
            lab.build()
            assert not {name for name in lab_namespaces()
                        if name.startswith(f"tcpconf-{child.pid}-")}
        finally:
            lab.destroy()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
