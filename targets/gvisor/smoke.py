#!/usr/bin/env python3
"""Smoke test of gVisor's netstack as a lab target, driven from the tester namespace.

Run as root from the checkout:  .venv/bin/python targets/gvisor/smoke.py [--rtt N]

It builds a lab (tag "gv"), starts runsc in the target namespace with the
suite's agent inside the sandbox, answers ARP/ND for the tester's addresses,
and checks over IPv4 and IPv6, with crafted segments (Scapy, through the
suite's wire):

* passive open: listen; SYN -> SYN-ACK; ACK; accept; data both ways;
  the states the agent reports inside the sandbox; the target closes: FIN
  exchange; TIME-WAIT, seen from the wire (a retransmitted FIN is re-ACKed);
* active open: connect from the sandbox to the tester: SYN, SYN-ACK, ACK,
  ESTABLISHED; abort -> RST;
* only netstack answers (the host kernel of the namespace answers nothing),
  a segment with a wrong checksum is dropped, and the SYN -> SYN-ACK round
  trip (median of N, kernel timestamps on the tester's capture socket).

Everything (namespaces, runsc state, processes, temporary files) is removed
on success, on failure, on Ctrl-C and on SIGTERM.  Exit status: 0 when every
check passed, 1 when one failed, 2 when the set-up failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from conformance import netns, tcp  # noqa: E402
from conformance.agent_client import AgentError  # noqa: E402
from conformance.lab import Lab, run  # noqa: E402
from conformance.neighbour import NeighbourResponder  # noqa: E402
from conformance.wire import (IPV4, IPV6, Wire, build_frame, decode, echo_request,  # noqa: E402
                              is_echo_reply)
from conformance.targets.gvisor import GvisorSandbox  # noqa: E402

SYN, ACK, FIN, RST, PSH = tcp.SYN, tcp.ACK, tcp.FIN, tcp.RST, tcp.PSH
WINDOW = 65535
ETH_P_ARP, ETH_P_IPV6 = 0x0806, 0x86DD


class Interrupted(Exception):
    """SIGTERM or SIGHUP: clean up as for Ctrl-C."""


class Smoke:
    def __init__(self, lab: Lab, agent, wire: Wire):
        self.lab, self.agent, self.wire = lab, agent, wire
        self.results: list[tuple[str, bool, str]] = []
        self.notes: list[str] = []

    # -- bookkeeping ------------------------------------------------------

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, bool(ok), detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""),
              flush=True)
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note  {text}", flush=True)

    # -- the wire ---------------------------------------------------------

    def send(self, link, sport, dport, seq, ack, flags, payload=b"", options=(),
             bad_checksum=False):
        frame = build_frame(link, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                            WINDOW, payload=payload, options=options, bad_checksum=bad_checksum)
        return self.wire.send(frame)

    def expect(self, predicate, timeout=1.0):
        """The first segment from the target that satisfies predicate, with the
        last outgoing (tester) segment captured before it; (None, None) on timeout."""
        deadline = time.time() + timeout
        last_out = None
        while True:
            frame = self.wire.receive(deadline)
            if frame is None:
                return None, last_out
            seg = decode(frame)
            if seg is None:
                continue
            if seg.direction == tcp.OUT:
                last_out = seg
                continue
            if predicate(seg):
                return seg, last_out

    def collect(self, duration):
        """Every segment the target sends within `duration` seconds."""
        deadline = time.time() + duration
        segs = []
        while True:
            frame = self.wire.receive(deadline)
            if frame is None:
                return segs
            seg = decode(frame)
            if seg is not None and seg.direction == tcp.IN:
                segs.append(seg)

    def states(self, **filters):
        try:
            conns = self.agent.call("states", **filters)["connections"]
        except AgentError as exc:
            return None, str(exc)
        return conns, ", ".join(f"{c['local']}<->{c['remote']} {c['state']}" for c in conns) \
            or "(none listed)"

    # -- the checks -------------------------------------------------------

    def passive(self, family: str) -> None:
        link = self.lab.links[family]
        any_addr = "::" if family == IPV6 else "0.0.0.0"
        port = 8000 + (family == IPV6)
        sport = random.randint(20000, 29999)
        isn = random.getrandbits(32)
        print(f"\n[{family}] passive open: {link.tester_ip}:{sport} -> {link.target_ip}:{port}")
        listener = self.agent.call("listen", port=port, addr=any_addr, backlog=5)["sock"]
        self.wire.watch(link, sport)

        self.send(link, sport, port, isn, 0, SYN, options=[("mss", 1460)])
        synack, syn = self.expect(lambda s: s.has(SYN))
        if not self.check(f"{family} SYN -> SYN-ACK", synack is not None and synack.has(ACK)
                          and synack.ack == (isn + 1) & 0xFFFFFFFF and synack.checksum_ok,
                          "no answer" if synack is None else
                          f"{tcp.format_flags(synack.flags)} ack=isn+{(synack.ack - isn) % 2**32}"
                          f" mss={synack.option('mss')} wscale={synack.option('wscale')}"
                          f" sack_ok={synack.has_option('sack_ok')}"
                          f" ts={synack.has_option('timestamp')} win={synack.window}"
                          f" checksum {'ok' if synack.checksum_ok else 'BAD'}"
                          + (f" rtt={(synack.time - syn.time) * 1e3:.3f} ms" if syn else "")):
            return
        # Anything else within 300 ms (a RST from the host kernel, a duplicate
        # SYN-ACK from a second stack) would show that netstack is not alone.
        extra = [s for s in self.collect(0.3)
                 if not (s.has(SYN) and s.seq == synack.seq)]
        self.check(f"{family} only netstack answers the SYN", not extra,
                   "no other segment within 300 ms" if not extra else
                   "; ".join(tcp.format_flags(s.flags) for s in extra))
        _, text = self.states(local_port=port)
        self.note(f"{family} states during the handshake (SYN-RECEIVED pending): {text}")

        their = (synack.seq + 1) & 0xFFFFFFFF
        ours = (isn + 1) & 0xFFFFFFFF
        self.send(link, sport, port, ours, their, ACK)
        try:
            accepted = self.agent.call("accept", sock=listener, timeout=2.0)
        except AgentError as exc:
            self.check(f"{family} accept", False, str(exc))
            return
        self.check(f"{family} accept", accepted["peer"].rsplit(":", 1) ==
                   [link.tester_ip, str(sport)], f"peer {accepted['peer']}")
        conn = accepted["sock"]
        conns, text = self.states(local_port=port, remote_port=sport)
        self.check(f"{family} states: ESTABLISHED inside the sandbox",
                   conns is not None and any(c["state"] == tcp.ESTABLISHED for c in conns), text)

        data = f"hello gvisor over {family}\n".encode()
        self.send(link, sport, port, ours, their, PSH | ACK, payload=data)
        ack, _ = self.expect(lambda s: s.has(ACK) and s.ack == (ours + len(data)) & 0xFFFFFFFF,
                             timeout=1.0)
        self.check(f"{family} data to the target is ACKed", ack is not None,
                   "no ACK" if ack is None else f"ack=+{len(data)}, win={ack.window}")
        ours = (ours + len(data)) & 0xFFFFFFFF
        got = self.agent.call("recv", sock=conn, timeout=1.0)
        self.check(f"{family} agent recv", got.get("text") == data.decode(), repr(got.get("text")))

        reply = b"pong from netstack"
        self.agent.call("send", sock=conn, data=reply.decode())
        seg, _ = self.expect(lambda s: len(s.payload) > 0, timeout=1.0)
        self.check(f"{family} agent send -> data segment",
                   seg is not None and seg.payload == reply and seg.seq == their,
                   "nothing" if seg is None else f"{tcp.format_flags(seg.flags)} {seg.payload!r}")
        if seg is None:
            return
        their = (their + len(seg.payload)) & 0xFFFFFFFF
        self.send(link, sport, port, ours, their, ACK)

        # The target closes first: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT.
        self.agent.call("close", sock=conn)
        fin, _ = self.expect(lambda s: s.has(FIN), timeout=1.0)
        if not self.check(f"{family} close -> FIN", fin is not None and fin.seq == their,
                          "no FIN" if fin is None else tcp.format_flags(fin.flags)):
            return
        _, text = self.states(local_port=port, remote_port=sport)
        self.note(f"{family} states after close() (FIN-WAIT-1 on the wire): {text}")
        their = (their + 1) & 0xFFFFFFFF
        self.send(link, sport, port, ours, their, ACK)
        self.send(link, sport, port, ours, their, FIN | ACK)
        last, _ = self.expect(lambda s: s.has(ACK) and s.ack == (ours + 1) & 0xFFFFFFFF,
                              timeout=1.0)
        self.check(f"{family} our FIN is ACKed", last is not None and not last.has(RST),
                   "no ACK" if last is None else tcp.format_flags(last.flags))
        _, text = self.states(local_port=port, remote_port=sport)
        self.note(f"{family} states in TIME-WAIT (by the wire): {text}")
        # TIME-WAIT seen from the wire: a retransmission of our FIN is
        # acknowledged again (RFC 9293 3.10.7.4); a closed connection would RST.
        self.wire.drain()
        self.send(link, sport, port, ours, their, FIN | ACK)
        again, _ = self.expect(lambda s: True, timeout=1.0)
        self.check(f"{family} TIME-WAIT: a retransmitted FIN is ACKed again",
                   again is not None and again.flags == ACK
                   and again.ack == (ours + 1) & 0xFFFFFFFF,
                   "no answer" if again is None else tcp.format_flags(again.flags))
        self.agent.call("close", sock=listener)

    def active(self, family: str) -> None:
        link = self.lab.links[family]
        tport = 9000 + (family == IPV6)
        print(f"\n[{family}] active open: {link.target_ip} -> {link.tester_ip}:{tport}")
        self.wire.watch(link, tport)
        started = time.time()
        conn = self.agent.call("connect", addr=link.tester_ip, port=tport)
        handle = conn["sock"]
        syn, _ = self.expect(lambda s: s.has(SYN), timeout=3.0)
        if not self.check(f"{family} connect -> SYN", syn is not None and not syn.has(ACK),
                          "no SYN within 3 s" if syn is None else
                          f"from port {syn.sport}, {(syn.time - started) * 1e3:.1f} ms after "
                          f"the request, mss={syn.option('mss')} wscale={syn.option('wscale')}"
                          f" sack_ok={syn.has_option('sack_ok')} "
                          f"ts={syn.has_option('timestamp')}"):
            return
        conns, text = self.states(local_port=syn.sport)
        self.check(f"{family} states: SYN-SENT after connect()", conns is not None and
                   any(c["state"] == tcp.SYN_SENT for c in conns), text)
        isn = random.getrandbits(32)
        their = (syn.seq + 1) & 0xFFFFFFFF
        self.send(link, tport, syn.sport, isn, their, SYN | ACK, options=[("mss", 1460)])
        ack, _ = self.expect(lambda s: s.has(ACK) and not s.has(SYN), timeout=1.0)
        self.check(f"{family} SYN-ACK -> ACK", ack is not None
                   and ack.ack == (isn + 1) & 0xFFFFFFFF and ack.seq == their,
                   "no ACK" if ack is None else tcp.format_flags(ack.flags))
        try:
            self.agent.call("wait_connected", sock=handle, timeout=2.0)
            connected = True
        except AgentError as exc:
            connected = False
            self.check(f"{family} wait_connected", False, str(exc))
        if connected:
            conns, text = self.states(local_port=syn.sport)
            self.check(f"{family} states: ESTABLISHED after connect",
                       conns is not None and any(c["state"] == tcp.ESTABLISHED for c in conns),
                       text)
        self.agent.call("abort", sock=handle)
        rst, _ = self.expect(lambda s: s.has(RST), timeout=1.0)
        self.check(f"{family} abort -> RST", rst is not None and rst.seq == their,
                   "no RST" if rst is None else tcp.format_flags(rst.flags))

    def handshake(self, link, port, sport):
        """SYN, SYN-ACK, ACK from the tester; returns (ours, theirs) next sequence numbers."""
        isn = random.getrandbits(32)
        self.send(link, sport, port, isn, 0, SYN, options=[("mss", 1460)])
        synack, _ = self.expect(lambda s: s.has(SYN) and s.has(ACK))
        if synack is None:
            raise RuntimeError(f"no SYN-ACK from {link.target_ip}:{port}")
        ours, their = (isn + 1) & 0xFFFFFFFF, (synack.seq + 1) & 0xFFFFFFFF
        self.send(link, sport, port, ours, their, ACK)
        return ours, their

    def visibility(self, family: str) -> None:
        """Which RFC 9293 states the agent's `states` op (gVisor's /proc/net/tcp
        inside the sandbox) can show, with the socket still held or not."""
        link = self.lab.links[family]
        any_addr = "::" if family == IPV6 else "0.0.0.0"
        port = 8300 + (family == IPV6)
        print(f"\n[{family}] which states the sandbox's /proc/net/tcp shows")
        listener = self.agent.call("listen", port=port, addr=any_addr)["sock"]
        seen = {}

        def look(label, sport):
            _, text = self.states(local_port=port, remote_port=sport)
            seen[label] = text
            print(f"    {label:<44} {text}", flush=True)

        # A: the target shuts down its side but keeps the socket; then the tester closes.
        sport = random.randint(50000, 54999)
        self.wire.watch(link, sport)
        ours, their = self.handshake(link, port, sport)
        time.sleep(0.05)
        look("completed, not yet accepted (accept queue)", sport)
        conn = self.agent.call("accept", sock=listener)["sock"]
        look("accepted: ESTABLISHED", sport)
        self.agent.call("shutdown", sock=conn, how="wr")
        fin, _ = self.expect(lambda s: s.has(FIN))
        look("shutdown(WR), FIN unacked: FIN-WAIT-1", sport)
        their = (their + 1) & 0xFFFFFFFF
        self.send(link, sport, port, ours, their, ACK)
        time.sleep(0.05)
        look("FIN acked: FIN-WAIT-2", sport)
        self.send(link, sport, port, ours, their, FIN | ACK)
        self.expect(lambda s: s.has(ACK) and s.ack == (ours + 1) & 0xFFFFFFFF)
        look("tester's FIN acked, socket held: TIME-WAIT", sport)
        self.agent.call("close", sock=conn)
        time.sleep(0.05)
        look("socket closed: TIME-WAIT", sport)

        # B: the tester closes first.
        sport = random.randint(55000, 59999)
        self.wire.watch(link, sport)
        ours, their = self.handshake(link, port, sport)
        conn = self.agent.call("accept", sock=listener)["sock"]
        self.send(link, sport, port, ours, their, FIN | ACK)
        self.expect(lambda s: s.has(ACK) and s.ack == (ours + 1) & 0xFFFFFFFF)
        ours = (ours + 1) & 0xFFFFFFFF
        look("tester's FIN acked: CLOSE-WAIT", sport)
        self.agent.call("shutdown", sock=conn, how="wr")
        self.expect(lambda s: s.has(FIN))
        look("shutdown(WR) in CLOSE-WAIT, socket held: LAST-ACK", sport)
        self.agent.call("close", sock=conn)
        time.sleep(0.05)
        look("socket closed: LAST-ACK", sport)
        self.send(link, sport, port, ours, (their + 1) & 0xFFFFFFFF, ACK)

        # C: half-open: SYN answered, no final ACK.
        sport = random.randint(60000, 64999)
        self.wire.watch(link, sport)
        self.send(link, sport, port, random.getrandbits(32), 0, SYN)
        self.expect(lambda s: s.has(SYN))
        look("SYN answered, no ACK: SYN-RECEIVED", sport)
        self.agent.call("close", sock=listener)

        listed = lambda label: "(none listed)" not in seen[label]  # noqa: E731
        self.check(f"{family} states: FIN-WAIT-1/FIN-WAIT-2 visible while the socket is held",
                   listed("shutdown(WR), FIN unacked: FIN-WAIT-1")
                   and listed("FIN acked: FIN-WAIT-2"),
                   f"{seen['shutdown(WR), FIN unacked: FIN-WAIT-1']}; "
                   f"{seen['FIN acked: FIN-WAIT-2']}")
        self.check(f"{family} states: CLOSE-WAIT visible", listed(
            "tester's FIN acked: CLOSE-WAIT"), seen["tester's FIN acked: CLOSE-WAIT"])

    def checksum(self, family: str) -> None:
        link = self.lab.links[family]
        port = 8100 + (family == IPV6)
        listener = self.agent.call("listen", port=port, addr="::" if family == IPV6 else
                                   "0.0.0.0")["sock"]
        sport = random.randint(30000, 39999)
        self.wire.watch(link, sport)
        isn = random.getrandbits(32)
        self.send(link, sport, port, isn, 0, SYN, bad_checksum=True)
        answer, _ = self.expect(lambda s: True, timeout=0.5)
        self.check(f"{family} SYN with a wrong checksum is dropped", answer is None,
                   "silence" if answer is None else f"answered {tcp.format_flags(answer.flags)}")
        self.send(link, sport, port, isn, 0, SYN)
        answer, _ = self.expect(lambda s: s.has(SYN), timeout=0.5)
        if answer is not None:
            self.send(link, sport, port, isn + 1, 0, RST)
        self.agent.call("close", sock=listener)

    def ping(self, family: str) -> None:
        link = self.lab.links[family]
        self.wire.watch_icmp(link)
        ident = random.randint(1, 0xFFFF)
        self.wire.send(echo_request(link, ident))
        replies = []
        deadline = time.time() + 0.3
        while (frame := self.wire.receive(deadline)) is not None:
            if is_echo_reply(frame, ident):
                replies.append(frame)
        self.check(f"{family} echo request: exactly one reply (netstack's)", len(replies) == 1,
                   f"{len(replies)} replies")

    def rtt(self, family: str, count: int) -> tuple[list[float], list[float]]:
        """SYN -> SYN-ACK round trips (ms), twice: on the wire (kernel timestamps
        of the tester's outgoing SYN and of the SYN-ACK on one reused capture
        socket) and as the tester's Python sees it (before the send to the
        SYN-ACK's return from the capture socket)."""
        link = self.lab.links[family]
        port = 8200 + (family == IPV6)
        listener = self.agent.call("listen", port=port, addr="::" if family == IPV6 else
                                   "0.0.0.0", backlog=128)["sock"]
        sport = random.randint(40000, 49999)
        self.wire.watch(link, sport)
        times, user = [], []
        for _ in range(count):
            isn = random.getrandbits(32)
            frame = build_frame(link, sport, port, isn, 0, SYN, WINDOW, options=[("mss", 1460)])
            began = time.perf_counter()
            self.wire.send(frame)
            synack, syn = self.expect(lambda s: s.has(SYN) and s.ack == (isn + 1) & 0xFFFFFFFF,
                                      timeout=1.0)
            ended = time.perf_counter()
            if synack is not None and syn is not None:
                times.append((synack.time - syn.time) * 1e3)
                user.append((ended - began) * 1e3)
            # RST ends the embryonic connection, so the 4-tuple can be used again.
            self.send(link, sport, port, isn + 1, 0, RST)
            self.wire.drain()
        self.agent.call("close", sock=listener)
        return times, user


def host_side_addresses(lab: Lab) -> str:
    return run("ip", "-n", lab.target_ns, "-br", "addr", "show", "target0").strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=int, default=200, help="SYNs per family for the round "
                        "trip (default 200)")
    parser.add_argument("--tag", default="gv", help="lab tag (default gv)")
    parser.add_argument("--keep-pcap", metavar="FILE", help="copy runsc's own pcap of "
                        "netstack's traffic to FILE")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("smoke.py must run as root (network namespaces, runsc)", file=sys.stderr)
        return 2

    def terminate(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    lab = Lab(tag=args.tag)
    sandbox = responder = wire = None
    smoke = None
    status = 2
    try:
        lab.build()
        print(f"lab {lab.tester_ns} / {lab.target_ns} built; host side of target0: "
              f"{host_side_addresses(lab)}")
        sandbox = GvisorSandbox(lab.target_ns, python="/usr/bin/python3",
                                pcap=bool(args.keep_pcap))
        started = time.monotonic()
        agent = sandbox.start()
        print(f"runsc: {sandbox.version()}; sandbox and agent up in "
              f"{time.monotonic() - started:.2f} s")
        print(f"  {sandbox.command_line()}")
        print(f"agent hello: system={agent.hello['system']!r} python={agent.hello['python']} "
              f"hostname={agent.hello['hostname']}")
        print(f"host side of target0 after the start: {host_side_addresses(lab)}")
        neigh = run("ip", "-n", lab.target_ns, "neigh", "show", "dev", "target0").strip()
        print(f"host neighbour table (permanent entries of the lab): {neigh!r}")
        responder = NeighbourResponder(lab.links)
        wire = Wire(lab.links)
        smoke = Smoke(lab, agent, wire)
        print("\nsetup")
        smoke.check("host kernel holds no address on target0 (netstack took them)",
                    "198.18.0.2" not in host_side_addresses(lab)
                    and "2001:2::2" not in host_side_addresses(lab), host_side_addresses(lab))
        for family in (IPV4, IPV6):
            smoke.ping(family)
        for family in (IPV4, IPV6):
            smoke.passive(family)
            smoke.active(family)
            smoke.checksum(family)
            smoke.visibility(family)
        copied = ", ".join(f"{ip} {mac}" for _, ip, mac in sandbox.neighbours) or "none"
        print(f"\nneighbour resolution: runsc copied the permanent entries ({copied}) into "
              f"netstack; the responder answered {responder.answered} ARP/ND question(s)")
        smoke.check("no ARP/ND needed (netstack uses the copied static entries)",
                    responder.answered == 0 and len(sandbox.neighbours) == 2,
                    f"{responder.answered} answered")
        rtts = {}
        if args.rtt > 0:
            print(f"\nSYN -> SYN-ACK round trip, {args.rtt} SYNs per family (wire: kernel "
                  "timestamps on the tester's capture socket; user: send() to the SYN-ACK "
                  "read in Python)")
            for family in (IPV4, IPV6):
                times, user = smoke.rtt(family, args.rtt)
                rtts[family] = times
                for label, values in (("wire", times), ("user", user)):
                    if len(values) >= 2:
                        qs = statistics.quantiles(values, n=20)
                        print(f"  {family} {label}: median {statistics.median(values):.3f} ms, "
                              f"p5 {qs[0]:.3f} ms, p95 {qs[-1]:.3f} ms, "
                              f"min {min(values):.3f} ms, {len(values)}/{args.rtt} answered")
                smoke.check(f"{family} round trips measured", len(times) == args.rtt,
                            f"{len(times)}/{args.rtt}")
        failed = [r for r in smoke.results if not r[1]]
        print(f"\nsummary: {len(smoke.results) - len(failed)} passed, {len(failed)} failed")
        for name, _, detail in failed:
            print(f"  FAILED {name}: {detail}")
        status = 1 if failed else 0
        if args.keep_pcap and sandbox.tmpdir is not None:
            pcap = sandbox.log_dir / "netstack.pcap"
            if pcap.exists():
                Path(args.keep_pcap).write_bytes(pcap.read_bytes())
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        status = 130
    except Interrupted as exc:
        print(f"\n{exc}: cleaning up", file=sys.stderr)
        status = 130
    except Exception:  # noqa: BLE001 - report, then clean up
        traceback.print_exc()
        if sandbox is not None and sandbox.agent is not None:
            tail = sandbox.agent.stderr_tail()
            if tail:
                print(f"agent stderr:\n{tail}", file=sys.stderr)
        if sandbox is not None:
            log = sandbox.log_tail()
            if log:
                print(f"runsc log:\n{log}", file=sys.stderr)
        status = 2 if smoke is None else 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if wire is not None:
                wire.close()
            if responder is not None:
                responder.stop()
            if sandbox is not None:
                sandbox.stop()
            lab.destroy()
        finally:
            signal.signal(signal.SIGINT, previous)
        left = [ns for ns in (lab.tester_ns, lab.target_ns)
                if os.path.exists(os.path.join(netns.NETNS_RUN_DIR, ns))]
        print(f"cleaned up: sandbox stopped, namespaces "
              f"{'removed' if not left else 'LEFT: ' + ', '.join(left)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
