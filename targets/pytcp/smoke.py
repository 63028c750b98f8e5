#!/usr/bin/env python3
"""End-to-end check of PyTCP as a lab target (run as root, with the project's Python).

    .venv/bin/python targets/pytcp/smoke.py [--count 20] [--family ipv4|ipv6] [--no-optimize]

Builds a lab (conformance.lab.Lab), takes the kernel's addresses off target0,
bridges a tap (targets/tap-bridge.sh with TCPCONF_TAP=pytcp0), starts
targets/pytcp/agent.py on it through the suite's AgentClient, answers ARP/ND
for the tester (conformance.neighbour.NeighbourResponder: it counts what
PyTCP asks), and then, COUNT times, over the suite's Wire:

    agent: listen on a fresh port
    --> SYN <mss 1460>            <-- SYN+ACK (latency measured)
    --> ACK                       state ESTABLISHED, agent: accept
    --> PSH+ACK "hello pytcp"     <-- ACK; agent: recv == data
    --> FIN+ACK                   <-- ACK; agent: recv == EOF, state CLOSE-WAIT
    agent: close                  <-- FIN+ACK (state LAST-ACK)
    --> ACK                       state: no connection left
    --> ICMP echo                 <-- echo reply

Every step of every round is checked; the script prints each failure, the
latencies (median, max) and "N passed, M failed".  Everything is torn down
at the end, on failure, on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from conformance.agent_client import AGENT_SOURCE, AgentClient  # noqa: E402
from conformance.lab import (PREFIXLEN, PREFIXLEN6, TARGET_IFACE, TARGET_IP, TARGET_IP6,  # noqa: E402
                             TARGET_MAC, TESTER_IP, TESTER_IP6, TESTER_MAC, Lab, run)
from conformance.neighbour import NeighbourResponder  # noqa: E402
from conformance.wire import Wire, build_frame, decode, echo_request, is_echo_reply  # noqa: E402

SETUP = ROOT / "targets" / "tap-bridge.sh"
AGENT = HERE / "agent.py"
TAP = "pytcp0"
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def agent_command(ns: str, optimize: bool = True) -> list[str]:
    py = [sys.executable] + (["-O"] if optimize else [])
    return ["ip", "netns", "exec", ns, *py, str(AGENT), "--tap", TAP,
            "--ip", f"{TARGET_IP}/{PREFIXLEN}", "--ip6", f"{TARGET_IP6}/{PREFIXLEN6}",
            "--mac", TARGET_MAC, "--peer-ip", TESTER_IP, "--peer-ip6", TESTER_IP6,
            "--peer-mac", TESTER_MAC, "--skip-stdin", str(len(AGENT_SOURCE)), "--"]


def setup_env() -> dict:
    return {**os.environ, "TCPCONF_TAP": TAP}


def prepare_target_namespace(lab: Lab) -> None:
    run("ip", "-n", lab.target_ns, "addr", "flush", "dev", TARGET_IFACE)
    run("ip", "-n", lab.target_ns, "neigh", "flush", "dev", TARGET_IFACE, "nud", "permanent")
    subprocess.run([str(SETUP), lab.target_ns], check=True, env=setup_env())


def teardown_target_namespace(lab: Lab) -> None:
    subprocess.run([str(SETUP), "--teardown", lab.target_ns], env=setup_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Round:
    def __init__(self, wire: Wire, agent: AgentClient, link, port: int):
        self.wire, self.agent, self.link, self.port = wire, agent, link, port
        self.sport = random.randrange(20000, 60000)
        self.iss = random.randrange(1 << 32)
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.problems: list[str] = []
        self.latency: dict[str, float] = {}

    def send(self, flags: int, payload: bytes = b"", options=()) -> float:
        frame = build_frame(self.link, self.sport, self.port, self.snd_nxt,
                            self.rcv_nxt or 0, flags, 65535, payload, options)
        sent = self.wire.send(frame)
        self.snd_nxt = (self.snd_nxt + len(payload) + bool(flags & SYN) + bool(flags & FIN)) \
            % (1 << 32)
        return sent

    def expect(self, what: str, flags: int, sent: float, within: float = 1.0):
        deadline = time.time() + within
        while True:
            frame = self.wire.receive(deadline)
            if frame is None:
                self.problems.append(f"{what}: nothing within {within}s")
                return None
            if frame.outgoing:
                sent = frame.time      # the kernel's timestamp of our own segment
                continue
            seg = decode(frame)
            if seg is None:
                continue
            self.latency[what] = (frame.time - sent) * 1000
            if seg.flags & 0x3F != flags:
                self.problems.append(f"{what}: got flags {seg.flags:#x} seq={seg.seq} "
                                     f"ack={seg.ack} len={len(seg.payload)}, wanted {flags:#x}")
                return seg
            if not seg.checksum_ok:
                self.problems.append(f"{what}: bad checksum")
            return seg

    def state(self) -> str:
        conns = self.agent.call("states", local_port=self.port)["connections"]
        remote = f"{self.link.tester_ip}:{self.sport}"
        return next((c["state"] for c in conns if c["remote"] == remote), "CLOSED")

    def want_state(self, wanted: str, within: float = 1.0) -> None:
        deadline = time.time() + within
        while True:
            got = self.state()
            if got == wanted or time.time() > deadline:
                break
            time.sleep(0.005)
        if got != wanted:
            self.problems.append(f"state {got}, wanted {wanted}")

    def run(self) -> None:
        self.wire.watch(self.link, self.sport)
        listener = self.agent.call("listen", port=self.port,
                                   addr="::" if ":" in self.link.target_ip else "0.0.0.0")["sock"]
        t = self.send(SYN, options=[("mss", 1460)])
        synack = self.expect("SYN -> SYN+ACK", SYN | ACK, t)
        if synack is None or synack.ack != self.snd_nxt:
            if synack is not None:
                self.problems.append(f"SYN+ACK acks {synack.ack}, wanted {self.snd_nxt}")
            return
        self.rcv_nxt = (synack.seq + 1) % (1 << 32)
        self.send(ACK)
        self.want_state("ESTABLISHED")
        conn = self.agent.call("accept", sock=listener, timeout=1.0)["sock"]
        data = b"hello pytcp"
        t = self.send(PSH | ACK, data)
        ack = self.expect("data -> ACK", ACK, t)
        if ack is not None and ack.ack != self.snd_nxt:
            self.problems.append(f"data ACK acks {ack.ack}, wanted {self.snd_nxt}")
        got = self.agent.call("recv", sock=conn, timeout=1.0)
        if got.get("text") != data.decode():
            self.problems.append(f"recv returned {got}")
        t = self.send(FIN | ACK)
        ack = self.expect("FIN -> ACK", ACK, t)
        if ack is not None and ack.ack != self.snd_nxt:
            self.problems.append(f"FIN ACK acks {ack.ack}, wanted {self.snd_nxt}")
        if not self.agent.call("recv", sock=conn, timeout=1.0).get("eof"):
            self.problems.append("recv after FIN is not EOF")
        self.want_state("CLOSE-WAIT")
        t = time.time()
        self.agent.call("close", sock=conn)
        fin = self.expect("close -> FIN", FIN | ACK, t)
        if fin is not None:
            self.rcv_nxt = (fin.seq + 1) % (1 << 32)
            self.want_state("LAST-ACK")
            self.send(ACK)
            self.want_state("CLOSED")
        self.agent.call("close", sock=listener)
        # The lab's sanity probe.
        ident = random.randrange(1, 65535)
        self.wire.watch_icmp(self.link)
        t = self.wire.send(echo_request(self.link, ident))
        deadline = time.time() + 1.0
        while True:
            frame = self.wire.receive(deadline)
            if frame is None:
                self.problems.append("no ICMP echo reply within 1s")
                break
            if is_echo_reply(frame, ident):
                self.latency["echo"] = (frame.time - t) * 1000
                break


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--family", choices=("ipv4", "ipv6"), action="append")
    ap.add_argument("--no-optimize", action="store_true",
                    help="run PyTCP without python -O (its per-packet logging code runs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("smoke.py: run as root", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    lab = Lab()
    agent = responder = wire = None
    passed = failed = 0
    try:
        lab.build()
        prepare_target_namespace(lab)
        responder = NeighbourResponder(lab.links)
        started = time.monotonic()
        agent = AgentClient.start(agent_command(lab.target_ns, not args.no_optimize),
                                  timeout=30)
        print(f"agent up in {time.monotonic() - started:.2f}s: {agent.hello.get('system')}")
        wire = Wire(lab.links)
        for family in args.family or ("ipv4", "ipv6"):
            link = lab.links[family]
            latencies: dict[str, list[float]] = {}
            for i in range(args.count):
                rnd = Round(wire, agent, link, 30000 + i + (1000 if family == "ipv6" else 0))
                try:
                    rnd.run()
                except Exception as exc:  # noqa: BLE001
                    rnd.problems.append(f"{type(exc).__name__}: {exc}")
                for key, value in rnd.latency.items():
                    latencies.setdefault(key, []).append(value)
                if rnd.problems:
                    failed += 1
                    print(f"{family} round {i + 1}: FAIL: " + "; ".join(rnd.problems))
                else:
                    passed += 1
            for key, values in latencies.items():
                print(f"{family} {key:16} n={len(values):3} median {statistics.median(values):7.2f} ms"
                      f"  min {min(values):7.2f}  max {max(values):7.2f}")
        print(f"ARP/ND questions answered for PyTCP: {responder.answered}")
        tail = agent.stderr_tail()
        if tail:
            print("agent stderr:\n" + tail)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        failed += 1
    finally:
        if wire is not None:
            wire.close()
        if agent is not None:
            agent.close()
        if responder is not None:
            responder.stop()
        teardown_target_namespace(lab)
        lab.destroy()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


if __name__ == "__main__":
    sys.exit(main())
