"""The delay line: a process in the lab's link namespace that holds frames back.

The link's nftables rules (faults.py) divert the frames to be delayed with
``fwd to`` into a veth pair, one per direction.  This process reads the far
end of each pair with an AF_PACKET socket and sends every frame out of the
bridge port towards its destination once its delay is over: a frame that
came in on l0 (from the tester) leaves through l1 (to the target), and the
other way round.  Sent on the port itself, it bypasses the bridge and the
port's ingress rules, so it is neither delayed nor faulted twice.

Waiting is a heap of deadlines and one poll() whose timeout is the earliest
of them: no fixed sleep.  The process ends when its stdin closes (the suite
that started it is gone, however it ended) or on SIGTERM; the suite starts
and stops it by PID (``DelayLine``).

This module runs as ``python -m conformance.delayline`` inside the link
namespace and uses only the standard library.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_IGNORE_OUTGOING = 263, 23     # <linux/if_packet.h>
SO_RCVBUFFORCE = 33          # <asm-generic/socket.h>; Python's socket module lacks it
RECEIVE_BUFFER = 4 << 20     # a burst of frames arriving while earlier ones are sent
MAX_FRAME = 65536
READY = "ready"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 2.0
REPO = Path(__file__).resolve().parents[1]

FIXED, UNIFORM = "fixed", "uniform"


class DelayLineError(Exception):
    """The delay line did not start; the message says why."""


# -- what is due when (pure: unit-tested without a link) ------------------------

@dataclass(order=True)
class _Held:
    deadline: float
    order: int                         # arrival order breaks ties: FIFO
    out: object = field(compare=False)
    frame: bytes = field(compare=False)


class Schedule:
    """Frames held until their deadline.  `delay` is a function giving each
    new frame its delay in seconds."""

    def __init__(self, delay):
        self._delay = delay
        self._heap: list[_Held] = []
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def hold(self, frame: bytes, out, now: float) -> float:
        deadline = now + self._delay()
        heapq.heappush(self._heap, _Held(deadline, next(self._arrivals), out, frame))
        return deadline

    def due(self, now: float) -> list[tuple[object, bytes]]:
        """The frames whose deadline has come, earliest first, taken off the heap."""
        ready = []
        while self._heap and self._heap[0].deadline <= now:
            held = heapq.heappop(self._heap)
            ready.append((held.out, held.frame))
        return ready

    def timeout_ms(self, now: float) -> int | None:
        """poll()'s timeout until the next deadline (rounded up, so poll never
        wakes before it); None to wait for frames only."""
        if not self._heap:
            return None
        return max(0, math.ceil((self._heap[0].deadline - now) * 1000))


def delay_function(mode: str, seconds: float, rng: random.Random | None = None):
    """`fixed`: every frame waits `seconds`; `uniform`: from 0 to `seconds`."""
    if mode == FIXED:
        return lambda: seconds
    if mode == UNIFORM:
        rng = rng or random.Random()
        return lambda: rng.uniform(0.0, seconds)
    raise ValueError(f"delay mode: expected {FIXED} or {UNIFORM}; got {mode!r}")


def parse_route(text: str) -> tuple[str, str]:
    """'dl0r:l1': frames read on dl0r leave through l1."""
    source, colon, out = text.partition(":")
    if not colon or not source or not out:
        raise argparse.ArgumentTypeError(f"expected IN:OUT (two interface names); got {text!r}")
    return source, out


# -- the process ----------------------------------------------------------------

def _open(routes: list[tuple[str, str]]):
    """A reading socket per route, keyed by file descriptor, with the sending
    socket of its way out."""
    senders: dict[str, socket.socket] = {}
    readers = {}
    for source, out in routes:
        if out not in senders:
            senders[out] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            senders[out].bind((out, 0))
        reader = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        reader.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        _set_receive_buffer(reader)
        reader.bind((source, ETH_P_ALL))  # wire.Capture says why here
        reader.setblocking(False)
        readers[reader.fileno()] = (reader, senders[out])
    return readers


def _set_receive_buffer(sock: socket.socket) -> None:
    # Past net.core.rmem_max only with CAP_NET_ADMIN over the machine (not
    # root of a user namespace): else the most rmem_max allows.
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def serve(routes: list[tuple[str, str]], schedule: Schedule, control: int) -> None:
    """Hold and pass on frames until `control` (stdin) closes."""
    readers = _open(routes)
    poller = select.poll()
    for fd in readers:
        poller.register(fd, select.POLLIN)
    poller.register(control, select.POLLIN | select.POLLHUP)
    print(READY, flush=True)
    while True:
        for fd, _events in poller.poll(schedule.timeout_ms(time.monotonic())):
            if fd == control:
                if not os.read(control, 4096):
                    return                          # the suite is gone
                continue
            reader, sender = readers[fd]
            _take(reader, sender, schedule)
        for sender, frame in schedule.due(time.monotonic()):
            try:
                sender.send(frame)
            except OSError:
                pass          # the port is going away with the lab: nothing to deliver to


def _take(reader: socket.socket, sender: socket.socket, schedule: Schedule) -> None:
    """Every frame waiting on `reader`, each held from the moment it is read."""
    while True:
        try:
            frame = reader.recv(MAX_FRAME)
        except BlockingIOError:
            return
        schedule.hold(frame, sender, time.monotonic())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.delayline",
                                     description="Hold frames back, then send them on.")
    parser.add_argument("--route", type=parse_route, action="append", required=True,
                        metavar="IN:OUT", help="read frames on IN, send them out of OUT")
    parser.add_argument("--delay", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--mode", choices=(FIXED, UNIFORM), default=FIXED)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve(args.route, Schedule(delay_function(args.mode, args.delay)), sys.stdin.fileno())
    except OSError as exc:
        print(f"delay line: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


# -- the suite's side: one delay line process, by PID ---------------------------

class DelayLine:
    """The delay line process in namespace `netns`, started and stopped by PID."""

    def __init__(self, netns: str, routes: list[tuple[str, str]], delay: float, mode: str):
        self.netns, self.routes, self.delay, self.mode = netns, routes, delay, mode
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        argv = ["ip", "netns", "exec", self.netns, sys.executable, "-m", "conformance.delayline",
                "--delay", repr(self.delay), "--mode", self.mode]
        for source, out in self.routes:
            argv += ["--route", f"{source}:{out}"]
        return argv

    def start(self) -> None:
        """Start it and wait until its sockets are open; DelayLineError if not."""
        # `ip netns exec` executes Python in its own place: the PID is the delay line's.
        # Only this process holds the pipe to its stdin (subprocess closes other
        # descriptors in every child), so the delay line sees it close when the
        # suite ends, even by SIGKILL.  (PR_SET_PDEATHSIG would not do: it fires
        # when the starting *thread* ends.)
        self.proc = subprocess.Popen(self.command(), cwd=REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != READY:
            error = self._stop_and_tell()
            raise DelayLineError(f"the delay line did not start in {self.netns}"
                                 + (f": {error}" if error else f" within {START_TIMEOUT:g} s"))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            self._stop_and_tell()

    def _stop_and_tell(self) -> str:
        """End the process (SIGTERM, then SIGKILL, by PID) and return what it said."""
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        error = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        return error.splitlines()[-1] if error else ""


if __name__ == "__main__":
    sys.exit(main())
