#!/usr/bin/env python3
"""Smoke test of the lwIP target: lab, bridge and tap, lwip-agent, wire.

Run as root from the repository (or anywhere; it finds the repository from
its own path), with the project's Python (Scapy is needed):

    .venv/bin/python targets/lwip/smoke.py [--valgrind] [--keep-logs DIR]

It builds a lab with conformance.lab.Lab, removes the kernel's addresses
from target0 in the target namespace, runs tap-bridge.sh there, starts
build/lwip-agent inside the target namespace (through the suite's own
AgentClient, which also proves the agent works with it unchanged), and
answers lwIP's ARP requests and neighbour solicitations for the tester's
addresses itself, from a Scapy AF_PACKET socket in the tester namespace.
Then, in IPv4 and in IPv6, it checks:

  hello; listen; tester SYN -> SYN-ACK; SYN-RECEIVED in states; final ACK;
  accept; data both ways (a 1000-byte segment in, 3000 bytes out: frames
  over the size at which Debian's own tapif driver corrupts its heap);
  ESTABLISHED; close -> FIN; FIN-WAIT-2; tester FIN -> ACK; TIME-WAIT;
  abort -> RST; a connect from lwIP to the tester (SYN, SYN-ACK, ACK,
  wait_connected, ESTABLISHED); and a refused connect (RST+ACK: which
  error the application sees).

Everything it made is removed at the end, on failure and on Ctrl-C or
SIGTERM too: the agent (ended by its PID), the namespaces with the bridge
and tap inside them.  Exit status 0 when every check passed, 1 otherwise,
2 when the smoke test could not run.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from conformance.agent_client import AGENT_SOURCE, AgentClient, AgentError  # noqa: E402
from conformance.lab import (  # noqa: E402
    PREFIXLEN, TARGET_IFACE, TARGET_IP, TARGET_IP6, TARGET_MAC, TESTER_IFACE, TESTER_IP,
    TESTER_IP6, TESTER_MAC, Lab, LabError, run)
from conformance.netns import entered  # noqa: E402

AGENT = HERE / "build" / "lwip-agent"
SETUP = HERE.parent / "tap-bridge.sh"
TAP = "lwip0"
LAB_NETS = ("198.18.", "2001:2:")


# ---------------------------------------------------------------- results

class Results:
    def __init__(self):
        self.rows: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, bool(ok), detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}{'  (' + detail + ')' if detail else ''}",
              flush=True)
        return bool(ok)

    @property
    def failed(self) -> int:
        return sum(1 for _, ok, _ in self.rows if not ok)


class Abort(Exception):
    """A check failed that the following ones depend on."""


# ------------------------------------------------------------------ wire

class Wire:
    """One Scapy L2 socket on tester0 (tester namespace).

    A reader thread answers lwIP's ARP requests for 198.18.0.1 and its
    neighbour solicitations for 2001:2::1 with the tester's MAC, and queues
    every other frame lwIP sends for the checks to read."""

    def __init__(self, netns: str, keep_frames: bool = True):
        from scapy.arch.linux import L2Socket
        self.keep_frames = keep_frames
        with entered(netns):
            self.sock = L2Socket(iface=TESTER_IFACE, promisc=True)
        self.frames: "queue.Queue" = queue.Queue()
        self.arp_answered = 0
        self.nd_answered = 0
        self.other = []            # frames lwIP sent that were neither
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, daemon=True,
                                        name="arp-nd-responder")
        self._thread.start()

    def _reader(self):
        from scapy.layers.inet import ICMP, TCP
        from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6ND_NA, ICMPv6ND_NS,
                                        ICMPv6NDOptDstLLAddr, IPv6)
        from scapy.layers.l2 import ARP, Ether
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock.ins], [], [], 0.1)
            if not r:
                continue
            try:
                pkt = self.sock.recv()
            except OSError:
                break
            if pkt is None or Ether not in pkt or pkt[Ether].src != TARGET_MAC:
                continue
            if ARP in pkt:
                arp = pkt[ARP]
                if arp.op == 1 and arp.pdst == TESTER_IP:
                    self.send(Ether(src=TESTER_MAC, dst=pkt[Ether].src)
                              / ARP(op=2, hwsrc=TESTER_MAC, psrc=TESTER_IP,
                                    hwdst=arp.hwsrc, pdst=arp.psrc))
                    self.arp_answered += 1
                continue
            if ICMPv6ND_NS in pkt:
                ns = pkt[ICMPv6ND_NS]
                if ns.tgt == TESTER_IP6 and pkt[IPv6].src.startswith(LAB_NETS[1]):
                    self.send(Ether(src=TESTER_MAC, dst=pkt[Ether].src)
                              / IPv6(src=TESTER_IP6, dst=pkt[IPv6].src, hlim=255)
                              / ICMPv6ND_NA(tgt=TESTER_IP6, R=0, S=1, O=1)
                              / ICMPv6NDOptDstLLAddr(lladdr=TESTER_MAC))
                    self.nd_answered += 1
                continue
            if TCP in pkt or ICMP in pkt or ICMPv6EchoReply in pkt:
                if self.keep_frames:
                    self.frames.put((time.monotonic(), pkt))
            elif self.keep_frames:
                self.other.append(pkt.summary())

    def send(self, pkt) -> None:
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        # Safety: nothing leaves for an address outside the lab ranges.
        for layer in (IP, IPv6):
            if layer in pkt and not str(pkt[layer].dst).startswith(LAB_NETS):
                raise RuntimeError(f"refusing to send to {pkt[layer].dst}")
        self.sock.send(pkt)

    def drain(self) -> None:
        while True:
            try:
                self.frames.get_nowait()
            except queue.Empty:
                return

    def expect(self, pred, timeout: float = 2.0):
        """The next TCP frame from lwIP that satisfies pred, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                _, pkt = self.frames.get(timeout=left)
            except queue.Empty:
                return None
            if pred(pkt):
                return pkt

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


# ------------------------------------------------------------ one family

class Flow:
    """The tester's side of one connection."""

    def __init__(self, wire: Wire, family: str, sport: int, dport: int):
        self.wire, self.family = wire, family
        self.sport, self.dport = sport, dport
        self.snd_nxt = random.randrange(1 << 32)
        self.rcv_nxt = 0
        self.tester_ip = TESTER_IP if family == "ipv4" else TESTER_IP6
        self.target_ip = TARGET_IP if family == "ipv4" else TARGET_IP6

    def segment(self, flags: str, data: bytes = b"", seq=None, ack=None, mss=None):
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether
        ip = (IP(src=self.tester_ip, dst=self.target_ip) if self.family == "ipv4"
              else IPv6(src=self.tester_ip, dst=self.target_ip))
        options = [("MSS", mss)] if mss else []
        tcp = TCP(sport=self.sport, dport=self.dport, flags=flags,
                  seq=self.snd_nxt if seq is None else seq,
                  ack=(self.rcv_nxt if ack is None else ack) if "A" in flags else 0,
                  window=65535, options=options)
        pkt = Ether(src=TESTER_MAC, dst=TARGET_MAC) / ip / tcp
        if data:
            pkt = pkt / data
        self.wire.send(pkt)
        self.snd_nxt = (self.snd_nxt + len(data) + ("S" in flags) + ("F" in flags)) % (1 << 32)

    def mine(self, pkt) -> bool:
        from scapy.layers.inet import TCP
        return (TCP in pkt and pkt[TCP].sport == self.dport and pkt[TCP].dport == self.sport)

    def expect(self, flags: str, timeout: float = 2.0, want_data: bool = False):
        """The next segment of this flow with exactly these flags (PSH
        ignored), skipping pure ACKs while data is wanted."""
        from scapy.layers.inet import TCP

        def pred(pkt):
            if not self.mine(pkt):
                return False
            got = str(pkt[TCP].flags).replace("P", "")
            payload = len(bytes(pkt[TCP].payload))
            if want_data and not payload:
                return False
            return sorted(got) == sorted(flags)
        return self.wire.expect(pred, timeout)


def tcp_of(pkt):
    from scapy.layers.inet import TCP
    return pkt[TCP]


def is_tcp(pkt) -> bool:
    from scapy.layers.inet import TCP
    return TCP in pkt


def ping(wire: Wire, family: str, ident: int):
    """An ICMP echo to the target, as the suite's sanity probe sends; the
    round trip in ms, or None."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Ether
    if family == "ipv4":
        pkt = Ether(src=TESTER_MAC, dst=TARGET_MAC) / IP(src=TESTER_IP, dst=TARGET_IP) \
            / ICMP(type=8, id=ident, seq=1) / b"tcpconf"
        pred = lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == ident  # noqa: E731
    else:
        pkt = Ether(src=TESTER_MAC, dst=TARGET_MAC) / IPv6(src=TESTER_IP6, dst=TARGET_IP6) \
            / ICMPv6EchoRequest(id=ident, seq=1, data=b"tcpconf")
        pred = lambda p: ICMPv6EchoReply in p and p[ICMPv6EchoReply].id == ident  # noqa: E731
    t0 = time.monotonic()
    wire.send(pkt)
    reply = wire.expect(pred, 1.0)
    return None if reply is None else (time.monotonic() - t0) * 1000


def payload_len(pkt) -> int:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    t = tcp_of(pkt)
    if IP in pkt:
        total = pkt[IP].len - pkt[IP].ihl * 4
    else:
        total = pkt[IPv6].plen
    return total - t.dataofs * 4


def state_of(agent, local_port: int, remote: str) -> str:
    conns = agent.call("states", local_port=local_port)["connections"]
    return next((c["state"] for c in conns if c["remote"] == remote), "CLOSED")


def wait_state(agent, local_port: int, remote: str, wanted: str, within: float = 2.0) -> str:
    deadline = time.monotonic() + within
    while True:
        state = state_of(agent, local_port, remote)
        if state == wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


def run_family(family: str, agent, wire: Wire, res: Results) -> None:
    tag = f"[{family}]"
    any_addr = "0.0.0.0" if family == "ipv4" else "::"
    tester_ip = TESTER_IP if family == "ipv4" else TESTER_IP6
    rtt = ping(wire, family, random.randrange(1, 65535))
    res.check(f"{tag} ICMP echo answered (the suite's sanity probe)", rtt is not None,
              f"{rtt:.2f} ms" if rtt is not None else "no reply in 1 s")
    port = random.randrange(20000, 30000)
    listener = agent.call("listen", port=port, addr=any_addr)
    res.check(f"{tag} listen on port {port}", listener.get("port") == port,
              listener.get("local", ""))
    st = agent.call("states", local_port=port)["connections"]
    res.check(f"{tag} states shows LISTEN", any(c["state"] == "LISTEN" for c in st), repr(st))

    # --- passive open -------------------------------------------------
    flow = Flow(wire, family, random.randrange(40000, 50000), port)
    remote = f"{tester_ip}:{flow.sport}"
    wire.drain()
    isn = flow.snd_nxt
    t0 = time.monotonic()
    flow.segment("S", mss=1460)
    synack = flow.expect("SA")
    if not res.check(f"{tag} SYN gets a SYN-ACK", synack is not None and tcp_of(synack).ack
                     == (isn + 1) % (1 << 32),
                     f"{(time.monotonic() - t0) * 1000:.1f} ms, ack=ISN+1, "
                     f"options {tcp_of(synack).options}" if synack else "no answer in 2 s"):
        raise Abort(f"{tag} no handshake")
    flow.rcv_nxt = (tcp_of(synack).seq + 1) % (1 << 32)
    res.check(f"{tag} states shows SYN-RECEIVED", state_of(agent, port, remote) == "SYN-RECEIVED")
    flow.segment("A")
    acc = agent.call("accept", sock=listener["sock"], timeout=2.0)
    res.check(f"{tag} final ACK, accept", acc.get("peer") == remote, f"peer {acc.get('peer')}")
    conn = acc["sock"]
    res.check(f"{tag} states shows ESTABLISHED",
              wait_state(agent, port, remote, "ESTABLISHED") == "ESTABLISHED")

    # --- data: tester -> lwIP --------------------------------------------
    small = b"hello lwip"
    flow.segment("PA", small)
    got = agent.call("recv", sock=conn, timeout=2.0)
    res.check(f"{tag} recv {small!r}", got.get("text") == small.decode(), repr(got.get("text")))
    big = bytes(random.randrange(256) for _ in range(1000))
    flow.segment("PA", big)
    data = b""
    deadline = time.monotonic() + 2
    import base64
    while len(data) < len(big) and time.monotonic() < deadline:
        try:
            r = agent.call("recv", sock=conn, timeout=1.0)
        except AgentError:
            break
        data += base64.b64decode(r.get("data_b64", ""))
    res.check(f"{tag} recv a 1000-byte segment (1054+ byte frame)", data == big,
              f"{len(data)} bytes, text={'null' if r.get('text') is None else 'str'}")
    ack = flow.wire.expect(lambda p: flow.mine(p) and tcp_of(p).ack == flow.snd_nxt, 1.5)
    res.check(f"{tag} lwIP acknowledges the data", ack is not None)

    # --- data: lwIP -> tester --------------------------------------------
    wire.drain()
    sent = agent.call("send", sock=conn, data="hello tester")
    seg = flow.expect("A", want_data=True)
    ok = seg is not None and bytes(tcp_of(seg).payload)[:payload_len(seg)] == b"hello tester"
    res.check(f"{tag} send 'hello tester' reaches the tester", ok and sent.get("sent") == 12)
    if seg is not None:
        flow.rcv_nxt = (flow.rcv_nxt + payload_len(seg)) % (1 << 32)
        flow.segment("A")
    sent = agent.call("send", sock=conn, size=3000)
    lens, deadline = [], time.monotonic() + 3
    while sum(lens) < 3000 and time.monotonic() < deadline:
        seg = flow.expect("A", timeout=max(0.05, deadline - time.monotonic()), want_data=True)
        if seg is None:
            break
        if tcp_of(seg).seq != flow.rcv_nxt:
            continue                      # a retransmission
        n = payload_len(seg)
        lens.append(n)
        flow.rcv_nxt = (flow.rcv_nxt + n) % (1 << 32)
        flow.segment("A")
    res.check(f"{tag} send 3000 bytes: full-size segments", sum(lens) == 3000,
              f"segments {lens}")

    # --- active close by lwIP, TIME-WAIT -----------------------------------
    wire.drain()
    agent.call("close", sock=conn)
    fin = flow.expect("FA")
    if res.check(f"{tag} close sends FIN", fin is not None):
        flow.rcv_nxt = (flow.rcv_nxt + 1) % (1 << 32)
        flow.segment("A")
        res.check(f"{tag} states shows FIN-WAIT-2",
                  wait_state(agent, port, remote, "FIN-WAIT-2") == "FIN-WAIT-2")
        flow.segment("FA")
        last = flow.expect("A")
        res.check(f"{tag} tester FIN is acknowledged",
                  last is not None and tcp_of(last).ack == flow.snd_nxt)
        res.check(f"{tag} states shows TIME-WAIT",
                  wait_state(agent, port, remote, "TIME-WAIT") == "TIME-WAIT")

    # --- abort -------------------------------------------------------------
    flow2 = Flow(wire, family, flow.sport + 1, port)
    wire.drain()
    flow2.segment("S", mss=1460)
    synack = flow2.expect("SA")
    if synack is not None:
        flow2.rcv_nxt = (tcp_of(synack).seq + 1) % (1 << 32)
        flow2.segment("A")
        acc2 = agent.call("accept", sock=listener["sock"], timeout=2.0)
        agent.call("abort", sock=acc2["sock"])
        rst = flow2.wire.expect(lambda p: flow2.mine(p) and "R" in str(tcp_of(p).flags), 1.0)
        res.check(f"{tag} abort sends RST", rst is not None,
                  f"flags {tcp_of(rst).flags} seq=rcv_nxt" if rst is not None
                  and tcp_of(rst).seq == flow2.rcv_nxt else "")
        res.check(f"{tag} no connection block left after abort",
                  state_of(agent, port, f"{tester_ip}:{flow2.sport}") == "CLOSED")
    else:
        res.check(f"{tag} abort sends RST", False, "no SYN-ACK for the second connection")

    # --- active open by lwIP ---------------------------------------------------
    tport = random.randrange(30000, 40000)
    wire.drain()
    want_lport = random.randrange(50000, 60000)      # as the engine binds it
    c = agent.call("connect", addr=tester_ip, port=tport, local_port=want_lport)
    lport = c.get("local_port")
    syn = wire.expect(lambda p: is_tcp(p) and "S" in str(tcp_of(p).flags)
                      and tcp_of(p).dport == tport, 2.0)
    if res.check(f"{tag} connect (bound to local port {want_lport}) sends SYN",
                 syn is not None and tcp_of(syn).sport == want_lport == lport,
                 f"options {tcp_of(syn).options}" if syn else ""):
        cf = Flow(wire, family, tport, tcp_of(syn).sport)
        cf.rcv_nxt = (tcp_of(syn).seq + 1) % (1 << 32)
        res.check(f"{tag} states shows SYN-SENT",
                  state_of(agent, cf.dport, f"{tester_ip}:{tport}") == "SYN-SENT")
        cf.segment("SA", mss=1460)
        ack = cf.expect("A")
        res.check(f"{tag} SYN-ACK gets the final ACK", ack is not None)
        try:
            agent.call("wait_connected", sock=c["sock"], timeout=2.0)
            ok, detail = True, ""
        except AgentError as e:
            ok, detail = False, str(e)
        res.check(f"{tag} wait_connected", ok, detail)
        res.check(f"{tag} states shows ESTABLISHED (client)",
                  state_of(agent, cf.dport, f"{tester_ip}:{tport}") == "ESTABLISHED")
        agent.call("abort", sock=c["sock"])
        cf.wire.expect(lambda p: cf.mine(p) and "R" in str(tcp_of(p).flags), 1.0)

    # --- refused connect -------------------------------------------------------
    wire.drain()
    c = agent.call("connect", addr=tester_ip, port=tport + 1)
    syn = wire.expect(lambda p: is_tcp(p) and "S" in str(tcp_of(p).flags)
                      and tcp_of(p).dport == tport + 1, 2.0)
    if syn is not None:
        rf = Flow(wire, family, tport + 1, tcp_of(syn).sport)
        rf.segment("RA", seq=0, ack=(tcp_of(syn).seq + 1) % (1 << 32))
        try:
            agent.call("wait_connected", sock=c["sock"], timeout=2.0)
            err = "connected?!"
        except AgentError as e:
            err = e.error
        res.check(f"{tag} RST+ACK refuses the connect", err in ("ECONNREFUSED", "ECONNRESET"),
                  f"the application sees {err}")
        agent.call("close", sock=c["sock"])
    else:
        res.check(f"{tag} RST+ACK refuses the connect", False, "no SYN")
    agent.call("close", sock=listener["sock"])


# ------------------------------------------------------------------ main

def valgrind_summary(path: Path) -> tuple[bool, str]:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return False, f"no valgrind log: {e}"
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    indirect = re.search(r"indirectly lost: ([\d,]+) bytes", text)
    invalid = len(re.findall(r"Invalid (read|write|free)", text))
    n_errors = int(errors.group(1)) if errors else -1
    detail = (f"ERROR SUMMARY {n_errors if errors else '?'} errors, "
              f"{invalid} invalid read/write/free, "
              f"definitely lost {lost.group(1) if lost else '0'} bytes, "
              f"indirectly lost {indirect.group(1) if indirect else '0'} bytes")
    return n_errors == 0 and invalid == 0, detail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--valgrind", action="store_true",
                    help="run the agent under valgrind (memcheck) and report its findings")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="keep the agent's stderr and the valgrind log in DIR")
    ap.add_argument("--family", choices=("ipv4", "ipv6"), action="append",
                    help="only this family (repeatable; default both)")
    args = ap.parse_args()
    families = args.family or ["ipv4", "ipv6"]

    if os.geteuid() != 0:
        print("smoke.py: run as root (it builds network namespaces)", file=sys.stderr)
        return 2
    if not AGENT.exists():
        print(f"smoke.py: building {AGENT.relative_to(ROOT)}", flush=True)
        if subprocess.run(["make", "-C", str(HERE)]).returncode != 0:
            print("smoke.py: build failed", file=sys.stderr)
            return 2
    if args.valgrind and shutil.which("valgrind") is None:
        print("smoke.py: valgrind is missing (apt-get install valgrind)", file=sys.stderr)
        return 2

    # SIGTERM unwinds like Ctrl-C, through the finally below.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    res = Results()
    lab = Lab()
    agent = None
    wire = None
    logdir = Path(args.keep_logs) if args.keep_logs else None
    vg_log = (logdir or Path("/tmp")) / f"lwip-agent-valgrind-{os.getpid()}.log"
    rc = 1
    interrupted = False
    try:
        print(f"lab: {lab.tester_ns} <-> {lab.target_ns}", flush=True)
        lab.build()
        # lwIP, not the kernel, owns the target addresses.
        run("ip", "-n", lab.target_ns, "addr", "flush", "dev", TARGET_IFACE)
        run("ip", "-n", lab.target_ns, "neigh", "flush", "dev", TARGET_IFACE, "nud", "permanent")
        run(str(SETUP), lab.target_ns)
        res.check("tap-bridge.sh: br0 + lwip0 up, no kernel address",
                  not run("ip", "-n", lab.target_ns, "-o", "addr", "show", "scope", "global")
                  .strip())
        wire = Wire(lab.tester_ns)
        argv = [str(AGENT), "--tap", TAP, "--ip", f"{TARGET_IP}/{PREFIXLEN}",
                "--ip6", TARGET_IP6, "--mac", TARGET_MAC,
                "--skip-stdin", str(len(AGENT_SOURCE)), "--"]
        prefix = ["ip", "netns", "exec", lab.target_ns]
        if args.valgrind:
            if logdir:
                logdir.mkdir(parents=True, exist_ok=True)
            prefix += ["valgrind", "--tool=memcheck", "--leak-check=full",
                       "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite",
                       "--track-fds=no", "--track-origins=yes", f"--log-file={vg_log}"]
        t0 = time.monotonic()
        # The suite's own client; everything after "--" (the Python
        # bootstrap it appends) is ignored by the agent.
        agent = AgentClient.start(prefix + argv, python="python3",
                                  timeout=60.0 if args.valgrind else 10.0)
        hello = agent.hello
        res.check("agent hello", hello.get("agent") == "tcpconf-agent"
                  and hello.get("protocol") == 1,
                  f"{hello.get('system')}, ipv6={hello.get('ipv6')}, "
                  f"{(time.monotonic() - t0) * 1000:.0f} ms")
        for family in families:
            print(f"{family}:", flush=True)
            try:
                run_family(family, agent, wire, res)
            except Abort as e:
                res.check(str(e), False)
            except AgentError as e:
                res.check(f"[{family}] agent call", False, str(e))
        aborted = agent.call("cleanup")
        res.check("cleanup", True, f"aborted {aborted.get('aborted')}")
        res.check("ARP answered by the tester", wire.arp_answered > 0,
                  f"{wire.arp_answered} ARP, {wire.nd_answered} NS answered; "
                  f"other frames from lwIP: {len(wire.other)}"
                  + (f" ({', '.join(sorted(set(wire.other)))})" if wire.other else ""))
        # Quit and let the process end by itself (valgrind writes its
        # report at exit), then close the client.
        agent.call("quit")
        proc = agent._proc
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        res.check("agent exits after quit", code is not None, f"exit status {code}")
        if args.valgrind:
            ok, detail = valgrind_summary(vg_log)
            res.check("valgrind memcheck clean", ok, detail)
        rc = 0 if res.failed == 0 else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        interrupted = True
        rc = 1
    except (LabError, OSError, RuntimeError) as e:
        res.check("smoke run", False, f"{type(e).__name__}: {e}")
        rc = 1
    except Exception as e:  # noqa: BLE001 - report, then clean up
        res.check("smoke run", False, f"{type(e).__name__}: {e}")
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if agent is not None:
            tail = agent.stderr_tail()
            agent.close()          # ends its own process, by PID
            if logdir and tail:
                logdir.mkdir(parents=True, exist_ok=True)
                (logdir / "agent-stderr.log").write_text(tail + "\n")
            if rc and tail:
                print("agent stderr (tail):\n" + tail, file=sys.stderr)
        if wire is not None:
            wire.close()
        if lab.target_ns in run("ip", "netns", "list", check=False):
            run(str(SETUP), "--teardown", lab.target_ns, check=False)
        lab.destroy()
        if args.valgrind and not logdir and vg_log.exists():
            if rc == 0:
                vg_log.unlink()
            else:
                print(f"valgrind log kept: {vg_log}", file=sys.stderr)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    passed = len(res.rows) - res.failed
    print(f"\nlwIP smoke: {'INTERRUPTED after ' if interrupted else ''}"
          f"{passed} passed, {res.failed} failed"
          + (" (under valgrind)" if args.valgrind else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
