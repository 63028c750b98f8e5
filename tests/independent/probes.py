"""Independent witness: how this machine's Linux TCP stack answers a list of probes.

Deliberately separate from the suite (nothing here imports `conformance`): it builds its
own pair of network namespaces with `ip`, writes and reads Ethernet frames on a raw
AF_PACKET socket with `struct`, runs a tiny Python listener inside the target namespace,
and reads TCP states with `ss -tanH`.

Topology (one fresh lab per probe, always deleted afterwards):

    tester namespace                      target namespace
    veth "indep-a": up, promiscuous,      veth "indep-b": 198.18.0.2/24, offloads off,
    no IP address                         permanent neighbour 198.18.0.1 -> indep-a's MAC

The tester pretends to be 198.18.0.1; its kernel owns no address, so it never answers.

Answer vocabulary (values are the target's, seen before the injected segment arrives):
    SND.NXT  the target's next send sequence number (its ISN + 1 + what it sent)
    RCV.NXT  the target's next expected sequence number (what the tester has sent)
    SEG.SEQ, SEG.ACK, SEG.LEN  fields of the injected segment (SEG.LEN counts SYN and FIN)
    ISS      the sequence number of a reply that carries SYN (the target's fresh ISN)
A reply is written as its flags, then seq=..., then ack=... when the ACK bit is set, e.g.
"ACK seq=SND.NXT ack=RCV.NXT" or "RST+ACK seq=0 ack=SEG.SEQ+SEG.LEN". A value that matches
no name is written relative to the first name, e.g. "ack=RCV.NXT+5". "silence" means no
new segment within 300 ms (a retransmission of a segment that occupies sequence space and
was already seen is not an answer). "state_after" is the `ss -tan` state of the probe's
4-tuple 300 ms after the injection, or "gone". "recv_q" is ss's Recv-Q: the listener never
reads, so it counts the payload bytes TCP accepted.

Run `python3 -m tests.independent.probes --runs 3` from the repository root to print the
observations as YAML.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time

TESTER_IP = "198.18.0.1"
TARGET_IP = "198.18.0.2"
PORT = 8080
CLOSED_PORT = 8081
TESTER_IF = "indep-a"
TARGET_IF = "indep-b"
QUIET = 0.300          # seconds without a new segment that count as "silence"

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
FLAG_NAMES = [(SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (URG, "URG"), (ACK, "ACK")]
MSS_1460 = struct.pack("!BBH", 2, 4, 1460)

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000

# The application in the target namespace: a listener on 198.18.0.2:8080 that accepts
# and either keeps every connection open without reading ("hold"), closes it at once
# ("close"), or writes "hello" on it 0.2 s after accepting it and keeps it ("send").
APP = r"""
import socket, sys, time
mode = sys.argv[1]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("198.18.0.2", 8080))
listener.listen(16)
print("ready", flush=True)
held = []
while True:
    conn, _ = listener.accept()
    if mode == "close":
        conn.close()
    else:
        if mode == "send":
            time.sleep(0.2)
            conn.send(b"hello")
        held.append(conn)
"""


# ----------------------------------------------------------------------------- wire

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_checksum(src_ip: str, dst_ip: str, tcp: bytes) -> int:
    pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6, len(tcp))
    return checksum(pseudo + tcp)


def build_frame(dst_mac: bytes, src_mac: bytes, sport: int, dport: int, seq: int, ack: int,
                flags: int, payload: bytes = b"", options: bytes = b"", window: int = 65535,
                bad_checksum: bool = False) -> bytes:
    """An Ethernet frame carrying IPv4 + TCP from TESTER_IP to TARGET_IP."""
    options += b"\0" * (-len(options) % 4)
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      offset << 4, flags, window, 0, 0) + options + payload
    csum = tcp_checksum(TESTER_IP, TARGET_IP, tcp)
    if bad_checksum:
        csum ^= 0x1234        # never turns 0x0000 into 0xFFFF, so always wrong
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000,
                     64, 6, 0, socket.inet_aton(TESTER_IP), socket.inet_aton(TARGET_IP))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip + tcp


def parse_frame(frame: bytes):
    """A dict for an IPv4/TCP frame from TARGET_IP to TESTER_IP, else None."""
    if len(frame) < 14 + 20 + 20 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    if ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    if src != TARGET_IP or dst != TESTER_IP:
        return None
    tcp = ip[ihl:total]
    sport, dport, seq, ack, off, flags, window = struct.unpack("!HHIIBBH", tcp[:16])
    payload = tcp[(off >> 4) * 4:]
    seg_len = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    return {"sport": sport, "dport": dport, "seq": seq, "ack": ack, "flags": flags,
            "window": window, "payload": payload, "len": seg_len,
            "checksum_ok": tcp_checksum(src, dst, tcp) == 0, "time": time.monotonic()}


def flag_text(flags: int) -> str:
    return "+".join(name for bit, name in FLAG_NAMES if flags & bit) or "none"


def relation(value: int, names) -> str:
    """The first name whose number equals value, else value relative to the first name."""
    for label, number in names:
        if value == number & 0xFFFFFFFF:
            return label
    label, number = names[0]
    diff = (value - number) & 0xFFFFFFFF
    if diff >= 1 << 31:
        diff -= 1 << 32
    return f"{label}{diff:+d}"


def describe(seg: dict, seq_names, ack_names) -> str:
    seq = "ISS" if seg["flags"] & SYN else relation(seg["seq"], seq_names)
    text = f"{flag_text(seg['flags'])} seq={seq}"
    if seg["flags"] & ACK:
        text += f" ack={relation(seg['ack'], ack_names)}"
    if seg["payload"]:
        text += f" len={len(seg['payload'])}"
    if not seg["checksum_ok"]:
        text += " (bad checksum)"
    return text


# ----------------------------------------------------------------------------- lab

def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def open_packet_socket(netns: str, ifname: str) -> socket.socket:
    """A raw AF_PACKET socket bound to ifname, created inside netns by a throw-away thread.

    setns() changes only the calling thread's namespace; the socket keeps the namespace it
    was created in, so the main thread can use it afterwards."""
    result = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((ifname, 0))
            result["sock"] = sock
        except BaseException as error:    # handed to the caller below
            result["error"] = error

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


class Lab:
    """Two namespaces, a veth pair, a raw socket and the listener apps; all removed on exit."""

    def __init__(self):
        self.tester = f"tcpconf-indep-{os.getpid()}-tester"
        self.target = f"tcpconf-indep-{os.getpid()}-target"
        self.apps: list[subprocess.Popen] = []
        self.sock = None
        self.created: list[str] = []

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _build(self):
        for ns in (self.tester, self.target):
            run("ip", "netns", "add", ns)
            self.created.append(ns)
        t, g = self.tester, self.target
        run("ip", "-n", t, "link", "add", TESTER_IF, "type", "veth", "peer", "name", TARGET_IF)
        run("ip", "-n", t, "link", "set", TARGET_IF, "netns", g)
        run("ip", "-n", t, "link", "set", TESTER_IF, "promisc", "on", "up")
        run("ip", "-n", g, "link", "set", "lo", "up")
        run("ip", "-n", g, "addr", "add", f"{TARGET_IP}/24", "dev", TARGET_IF)
        run("ip", "-n", g, "link", "set", TARGET_IF, "up")
        self.tester_mac = self._mac(t, TESTER_IF)
        self.target_mac = self._mac(g, TARGET_IF)
        run("ip", "-n", g, "neigh", "replace", TESTER_IP, "lladdr", self.tester_mac.hex(":"),
            "dev", TARGET_IF, "nud", "permanent")
        run("ip", "netns", "exec", g, "ethtool", "-K", TARGET_IF, "tx", "off", "tso", "off", "gso", "off")
        self.sysctl("net.ipv4.tcp_invalid_ratelimit", 0)
        self.sock = open_packet_socket(t, TESTER_IF)

    def __exit__(self, *exc):
        try:
            for app in self.apps:          # each ended by its own PID
                if app.poll() is None:
                    app.kill()
                app.wait()
                if app.stdout:
                    app.stdout.close()
            self.apps.clear()
            if self.sock is not None:
                self.sock.close()
                self.sock = None
        finally:
            for ns in reversed(self.created):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            self.created.clear()
        left = {self.tester, self.target} & set(namespaces())
        if left:
            raise RuntimeError(f"namespaces left behind: {sorted(left)}")
        return False

    @staticmethod
    def _mac(ns: str, ifname: str) -> bytes:
        return bytes.fromhex(json.loads(run("ip", "-n", ns, "-j", "link", "show", ifname))[0]["address"].replace(":", ""))

    def sysctl(self, name: str, value) -> None:
        run("ip", "netns", "exec", self.target, "sysctl", "-qw", f"{name}={value}")

    def start_app(self, mode: str = "hold") -> None:
        app = subprocess.Popen(["ip", "netns", "exec", self.target, sys.executable, "-c", APP, mode],
                               stdout=subprocess.PIPE, text=True)
        self.apps.append(app)
        ready, _, _ = select.select([app.stdout], [], [], 5)
        if not ready or app.stdout.readline().strip() != "ready":
            raise RuntimeError("the listener in the target namespace did not start")

    def ss(self) -> list[list[str]]:
        """Rows of `ss -tanH` in the target namespace: state, recv-q, send-q, local, peer."""
        return [line.split() for line in run("ip", "netns", "exec", self.target, "ss", "-tanH").splitlines()
                if line.strip()]

    def row(self, sport: int, port: int = PORT):
        for row in self.ss():
            if row[3] == f"{TARGET_IP}:{port}" and row[4] == f"{TESTER_IP}:{sport}":
                return row
        return None

    def state(self, sport: int, port: int = PORT) -> str:
        row = self.row(sport, port)
        return row[0] if row else "gone"

    def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    def receive(self, sport: int, until: float, stop=None) -> list[dict]:
        """Segments from the target to tester port sport until the monotonic deadline
        (or until one satisfies stop)."""
        got = []
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                frame, address = self.sock.recvfrom(65535)
            except socket.timeout:
                return got
            if address[2] == PACKET_OUTGOING:
                continue
            seg = parse_frame(frame)
            if seg is None or seg["dport"] != sport:
                continue
            got.append(seg)
            if stop is not None and stop(seg):
                return got

    def connect(self, port: int = PORT, wait_established: bool = True) -> "Connection":
        return Connection(self, port, wait_established)


class Connection:
    """A TCP connection from the tester (raw frames) to the target's listener."""

    def __init__(self, lab: Lab, port: int = PORT, wait_established: bool = True):
        self.lab = lab
        self.port = port
        self.sport = random.randint(20000, 60999)
        self.seen = set()          # (seq, flags, len) of target segments that occupy sequence space
        iss = random.getrandbits(32)
        self.send(SYN, iss, 0, options=MSS_1460)
        got = lab.receive(self.sport, time.monotonic() + 2,
                          stop=lambda s: s["flags"] & (SYN | ACK) == SYN | ACK and s["ack"] == (iss + 1) & 0xFFFFFFFF)
        if not got or got[-1]["flags"] & (SYN | ACK) != SYN | ACK:
            raise RuntimeError("no SYN-ACK from the target")
        synack = got[-1]
        self.remember(got)
        self.rcv_nxt = (iss + 1) & 0xFFFFFFFF          # the target's RCV.NXT
        self.snd_nxt = (synack["seq"] + 1) & 0xFFFFFFFF  # the target's SND.NXT
        self.window = synack["window"]
        self.send(ACK, self.rcv_nxt, self.snd_nxt)
        deadline = time.monotonic() + 1
        while wait_established and lab.state(self.sport, port) != "ESTAB":
            if time.monotonic() > deadline:
                raise RuntimeError("the connection did not reach ESTABLISHED")
            time.sleep(0.01)

    def send(self, flags: int, seq: int, ack: int, payload: bytes = b"", options: bytes = b"",
             bad_checksum: bool = False) -> None:
        self.lab.send(build_frame(self.lab.target_mac, self.lab.tester_mac, self.sport, self.port,
                                  seq, ack, flags, payload, options, bad_checksum=bad_checksum))

    def remember(self, segments) -> None:
        for s in segments:
            if s["len"]:
                self.seen.add((s["seq"], s["flags"], s["len"]))

    def wait_for(self, stop, timeout: float = 2.0) -> dict:
        got = self.lab.receive(self.sport, time.monotonic() + timeout, stop)
        self.remember(got)
        if not got or not stop(got[-1]):
            raise RuntimeError("the expected segment from the target did not come")
        return got[-1]

    def inject(self, flags: int, seq: int, ack: int = 0, payload: bytes = b"", options: bytes = b"",
               bad_checksum: bool = False) -> dict:
        """Send one segment, watch 300 ms, and return the answer and the state afterwards."""
        seg_len = len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        seq_names = [("SND.NXT", self.snd_nxt)] + ([("SEG.ACK", ack)] if flags & ACK else []) + [("0", 0)]
        ack_names = [("RCV.NXT", self.rcv_nxt), ("SEG.SEQ+SEG.LEN", seq + seg_len)]
        self.send(flags, seq, ack, payload, options, bad_checksum)
        got = self.lab.receive(self.sport, time.monotonic() + QUIET)
        new = [s for s in got if not (s["len"] and (s["seq"], s["flags"], s["len"]) in self.seen)]
        self.remember(got)
        answer = "; ".join(describe(s, seq_names, ack_names) for s in new) or "silence"
        return {"answer": answer, "state_after": self.lab.state(self.sport, self.port)}

    def recv_q(self) -> int:
        row = self.lab.row(self.sport, self.port)
        return int(row[1]) if row else -1


def stray(lab: Lab, flags: int, port: int, options: bytes = b"") -> dict:
    """One segment from a fresh tester port with no connection; 300 ms of watching."""
    sport = random.randint(20000, 60999)
    seq, ack = random.getrandbits(32), (random.getrandbits(32) if flags & ACK else 0)
    seg_len = (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    seq_names = ([("SEG.ACK", ack)] if flags & ACK else []) + [("0", 0)]
    ack_names = [("SEG.SEQ+SEG.LEN", seq + seg_len)]
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, port, seq, ack, flags, options=options))
    got = lab.receive(sport, time.monotonic() + QUIET)
    answer = "; ".join(describe(s, seq_names, ack_names) for s in got) or "silence"
    return {"answer": answer, "state_after": lab.state(sport, port)}


# ----------------------------------------------------------------------------- probes
# Each probe gets a fresh lab; the first docstring line is its description in observed.yaml.

def fin_without_ack(lab):
    """ESTABLISHED; FIN (no ACK bit) at RCV.NXT."""
    lab.start_app()
    c = lab.connect()
    return c.inject(FIN, c.rcv_nxt)


def data_without_ack(lab):
    """ESTABLISHED; PSH (no ACK bit) with 5 bytes at RCV.NXT."""
    lab.start_app()
    c = lab.connect()
    result = c.inject(PSH, c.rcv_nxt, payload=b"hello")
    return {**result, "recv_q": c.recv_q()}


def rst_at_rcv_nxt(lab):
    """ESTABLISHED; RST (no ACK bit) at RCV.NXT."""
    lab.start_app()
    c = lab.connect()
    return c.inject(RST, c.rcv_nxt)


def rst_in_window(lab):
    """ESTABLISHED; RST (no ACK bit) at RCV.NXT+100, inside the window."""
    lab.start_app()
    c = lab.connect()
    return c.inject(RST, c.rcv_nxt + 100)


def rst_beyond_window(lab):
    """ESTABLISHED; RST (no ACK bit) at RCV.NXT+66536 (no window scaling, so the window is at most 65535)."""
    lab.start_app()
    c = lab.connect()
    return c.inject(RST, c.rcv_nxt + 65536 + 1000)


def syn_in_established(lab):
    """ESTABLISHED; SYN (no ACK bit, MSS 1460) with a new random sequence number."""
    lab.start_app()
    c = lab.connect()
    seq = random.getrandbits(32)
    while not (1 << 20) < (seq - c.rcv_nxt) & 0xFFFFFFFF < (1 << 32) - (1 << 20):
        seq = random.getrandbits(32)                       # keep well clear of RCV.NXT
    return c.inject(SYN, seq, options=MSS_1460)


def ack_beyond_snd_nxt(lab):
    """ESTABLISHED; PSH+ACK with 5 bytes at RCV.NXT, ack=SND.NXT+1000 (acks unsent data)."""
    lab.start_app()
    c = lab.connect()
    result = c.inject(PSH | ACK, c.rcv_nxt, c.snd_nxt + 1000, payload=b"hello")
    return {**result, "recv_q": c.recv_q()}


def stray_ack_to_listener(lab):
    """No connection; ACK with random seq and ack from a fresh port to the listener's port 8080."""
    lab.start_app()
    return stray(lab, ACK, PORT)


def syn_fin_to_listener(lab):
    """No connection; SYN+FIN (MSS 1460) from a fresh port to the listener's port 8080."""
    lab.start_app()
    return stray(lab, SYN | FIN, PORT, options=MSS_1460)


def syn_to_closed_port(lab):
    """No connection; SYN (MSS 1460) to port 8081, where nothing listens (8080 listens)."""
    lab.start_app()
    return stray(lab, SYN, CLOSED_PORT, options=MSS_1460)


def data_below_rcv_nxt(lab):
    """ESTABLISHED; 10 bytes accepted first, then PSH+ACK with 5 bytes at RCV.NXT-10 (all below RCV.NXT)."""
    lab.start_app()
    c = lab.connect()
    c.send(PSH | ACK, c.rcv_nxt, c.snd_nxt, b"0123456789")
    c.rcv_nxt = (c.rcv_nxt + 10) & 0xFFFFFFFF
    c.wait_for(lambda s: s["flags"] & ACK and s["ack"] == c.rcv_nxt)
    result = c.inject(PSH | ACK, c.rcv_nxt - 10, c.snd_nxt, payload=b"01234")
    return {**result, "recv_q": c.recv_q()}


def bad_checksum(lab):
    """ESTABLISHED; PSH+ACK with 5 bytes at RCV.NXT and a wrong TCP checksum (then the same with a good one)."""
    lab.start_app()
    c = lab.connect()
    result = c.inject(PSH | ACK, c.rcv_nxt, c.snd_nxt, payload=b"hello", bad_checksum=True)
    result["recv_q"] = c.recv_q()
    # Control: the very same segment with a correct checksum must be accepted.
    control = c.inject(PSH | ACK, c.rcv_nxt, c.snd_nxt, payload=b"hello")
    return {**result, "control_good_checksum": control["answer"], "control_recv_q": c.recv_q()}


def synack_retransmissions(lab):
    """tcp_synack_retries=2; SYN (MSS 1460) to 8080, the final ACK never sent: SYN-ACK times, SYN-RECV lifetime."""
    lab.sysctl("net.ipv4.tcp_synack_retries", 2)
    lab.start_app()
    sport, iss = random.randint(20000, 60999), random.getrandbits(32)
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, PORT, iss, 0, SYN, options=MSS_1460))
    start = time.monotonic()
    segments, states, gone_seen = [], [], None
    while time.monotonic() - start < 12:                  # poll ss about every 60 ms
        segments += lab.receive(sport, time.monotonic() + 0.05)
        state = lab.state(sport)
        if not states or states[-1] != state:
            states.append(state)
        if state == "gone" and segments:
            gone_seen = time.monotonic()
            break
    segments += lab.receive(sport, time.monotonic() + QUIET)  # nothing more after the entry went
    if not segments:
        return {"answer": "silence", "states": states}
    first = segments[0]["time"]
    times = [s["time"] - first for s in segments]
    half = lambda seconds: round(seconds * 2) / 2
    # The kernel's timer for the 4 s wait fires up to a timer-wheel slot late (256 ms at
    # HZ=250), which puts the removal near 7.25 s: report the half-second bracket instead.
    floor_half = lambda seconds: int(seconds * 2) / 2
    names = {describe(s, [("0", 0)], [("SEG.SEQ+SEG.LEN", iss + 1)]) for s in segments}
    return {"answer": "; ".join(sorted(names)),
            "synack_count": len(segments),
            "intervals_s": [half(b - a) for a, b in zip(times, times[1:])],
            "states": states,
            "syn_recv_gone_between_s": ([floor_half(gone_seen - first), floor_half(gone_seen - first) + 0.5]
                                        if gone_seen else None),
            "state_after": lab.state(sport)}


def _rst_in_time_wait(lab, rfc1337: int):
    lab.sysctl("net.ipv4.tcp_rfc1337", rfc1337)
    lab.start_app("close")
    c = lab.connect(wait_established=False)     # the app closes it at once: no lasting ESTAB
    fin = c.wait_for(lambda s: s["flags"] & FIN and s["seq"] == c.snd_nxt)
    c.snd_nxt = (fin["seq"] + fin["len"]) & 0xFFFFFFFF
    c.window = fin["window"]
    c.send(ACK, c.rcv_nxt, c.snd_nxt)                      # ack the target's FIN
    time.sleep(0.02)
    before_fin = c.lab.state(c.sport)
    c.send(FIN | ACK, c.rcv_nxt, c.snd_nxt)                # our FIN
    c.rcv_nxt = (c.rcv_nxt + 1) & 0xFFFFFFFF
    c.wait_for(lambda s: s["flags"] & ACK and s["ack"] == c.rcv_nxt)
    before_rst = c.lab.state(c.sport)
    result = c.inject(RST, c.rcv_nxt)
    return {"answer": result["answer"], "states_before": [before_fin, before_rst],
            "state_after": result["state_after"]}


def rst_in_time_wait_rfc1337_0(lab):
    """tcp_rfc1337=0; app closes after accept; we ACK its FIN, send ours, get its ACK (TIME-WAIT); RST (no ACK) at RCV.NXT."""
    return _rst_in_time_wait(lab, 0)


def rst_in_time_wait_rfc1337_1(lab):
    """tcp_rfc1337=1; app closes after accept; we ACK its FIN, send ours, get its ACK (TIME-WAIT); RST (no ACK) at RCV.NXT."""
    return _rst_in_time_wait(lab, 1)


def fin_ack_in_established(lab):
    """ESTABLISHED; FIN+ACK at RCV.NXT, ack=SND.NXT."""
    lab.start_app()
    c = lab.connect()
    return c.inject(FIN | ACK, c.rcv_nxt, c.snd_nxt)


def _time_wait(lab) -> "Connection":
    """A connection the target closed first, brought to TIME-WAIT (the listener stays)."""
    lab.start_app("close")
    c = lab.connect(wait_established=False)     # the app closes it at once
    fin = c.wait_for(lambda s: s["flags"] & FIN and s["seq"] == c.snd_nxt)
    c.snd_nxt = (fin["seq"] + fin["len"]) & 0xFFFFFFFF
    c.window = fin["window"]
    c.send(ACK, c.rcv_nxt, c.snd_nxt)                      # ack the target's FIN
    time.sleep(0.02)
    c.send(FIN | ACK, c.rcv_nxt, c.snd_nxt)                # our FIN
    c.rcv_nxt = (c.rcv_nxt + 1) & 0xFFFFFFFF
    c.wait_for(lambda s: s["flags"] & ACK and s["ack"] == c.rcv_nxt)
    return c


def syn_again_in_syn_received(lab):
    """LISTEN; SYN, SYN-ACK, then the same SYN again at once: every answer within 300 ms, repeats included."""
    lab.start_app()
    sport, iss = random.randint(20000, 60999), random.getrandbits(32)
    syn = build_frame(lab.target_mac, lab.tester_mac, sport, PORT, iss, 0, SYN, options=MSS_1460)
    lab.send(syn)
    first = lab.receive(sport, time.monotonic() + 1, stop=lambda s: s["flags"] & SYN)
    if not first:
        raise RuntimeError("no SYN-ACK from the target")
    synack = first[-1]
    sent = time.monotonic()
    lab.send(syn)
    got = lab.receive(sport, time.monotonic() + QUIET)
    names = [("ISS", synack["seq"]), ("ISS+1", synack["seq"] + 1)]
    answers = []
    for s in got:
        text = f"{flag_text(s['flags'])} seq={relation(s['seq'], names)}"
        if s["flags"] & ACK:
            text += f" ack={relation(s['ack'], [('RCV.NXT', iss + 1)])}"
        answers.append(text + (" (within 100 ms)" if s["time"] - sent < 0.1 else ""))
    return {"answer": "; ".join(answers) or "silence", "state_after": lab.state(sport)}


def syn_in_time_wait_then_rst(lab):
    """TIME-WAIT; SYN at RCV.NXT+100000; if a SYN-ACK comes, RST at its ack (the old-duplicate refusal): ISS vs the old SND.NXT, state after."""
    c = _time_wait(lab)
    old_snd_nxt, seq = c.snd_nxt, (c.rcv_nxt + 100000) & 0xFFFFFFFF
    c.send(SYN, seq, 0, options=MSS_1460)
    got = lab.receive(c.sport, time.monotonic() + QUIET)
    if not got:
        return {"answer": "silence", "state_after": lab.state(c.sport)}
    answer = got[0]
    if answer["flags"] & (SYN | ACK) != SYN | ACK:
        return {"answer": describe(answer, [("SND.NXT", c.snd_nxt)], [("RCV.NXT", c.rcv_nxt)]),
                "state_after": lab.state(c.sport)}
    distance = (answer["seq"] - old_snd_nxt) & 0xFFFFFFFF
    reopened = lab.state(c.sport)
    c.send(RST, answer["ack"], 0)          # "I never sent that SYN" (RFC 793 figure 9)
    time.sleep(QUIET)
    return {"answer": "SYN+ACK seq=ISS ack=SEG.SEQ+1" if answer["ack"] == (seq + 1) & 0xFFFFFFFF
            else describe(answer, [("SND.NXT", c.snd_nxt)], [("SEG.SEQ+1", seq + 1)]),
            "iss_above_old_snd_nxt": 0 < distance < 1 << 31,
            "state_reopened": reopened,
            "state_after_rst": lab.state(c.sport)}


def ack_in_window_in_time_wait(lab):
    """TIME-WAIT; a bare ACK at RCV.NXT+100 (in the window, not at its left edge), ack=SND.NXT."""
    c = _time_wait(lab)
    return c.inject(ACK, c.rcv_nxt + 100, c.snd_nxt)


def syn_with_text_to_listener(lab):
    """LISTEN; a SYN carrying 10 octets, then the final ACK at SEG.SEQ+1: what the SYN-ACK acknowledges, the answer to the ACK, the octets TCP holds."""
    lab.start_app()
    sport, iss = random.randint(20000, 60999), random.getrandbits(32)
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, PORT, iss, 0, SYN,
                         b"early data", MSS_1460))
    got = lab.receive(sport, time.monotonic() + 1, stop=lambda s: s["flags"] & SYN)
    if not got:
        raise RuntimeError("no SYN-ACK from the target")
    synack = got[-1]
    names = [("SEG.SEQ+1", iss + 1), ("SEG.SEQ+1+10", iss + 11)]
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, PORT, iss + 1, synack["seq"] + 1, ACK))
    after = lab.receive(sport, time.monotonic() + QUIET)
    row = lab.row(sport)
    return {"synack_ack": relation(synack["ack"], names),
            "answer_to_final_ack": "; ".join(f"{flag_text(s['flags'])} ack={relation(s['ack'], names)}"
                                             for s in after) or "silence",
            "recv_q": int(row[1]) if row else -1}


def zero_window_probe(lab):
    """ESTABLISHED, the tester's window closed (ACK win=0); the application writes 5 octets: the first segment within 1.5 s, its seq against SND.UNA and its length."""
    lab.start_app("send")
    c = lab.connect()
    lab.send(build_frame(lab.target_mac, lab.tester_mac, c.sport, c.port, c.rcv_nxt, c.snd_nxt,
                           ACK, window=0))
    got = lab.receive(c.sport, time.monotonic() + 1.5, stop=lambda s: True)
    if not got:
        return {"probe": "silence"}
    s = got[-1]
    return {"probe": f"{flag_text(s['flags'])} seq={relation(s['seq'], [('SND.UNA', c.snd_nxt)])} "
                     f"len={s['len']}"}


# Probes 21-26 witness what tcpconf explore found on Linux (issue 18).

def old_ack_with_data(lab):
    """ESTABLISHED, nothing sent by the target; PSH+ACK with 5 bytes at RCV.NXT, ack=SND.NXT-1 (below SND.UNA, within MAX.SND.WND): the answer, the octets TCP holds."""
    lab.start_app()
    c = lab.connect()
    result = c.inject(PSH | ACK, c.rcv_nxt, (c.snd_nxt - 1) & 0xFFFFFFFF, payload=b"hello")
    return {**result, "recv_q": c.recv_q()}


def _fin_wait_2(lab) -> "Connection":
    """A connection the target closed first, its FIN acknowledged: FIN-WAIT-2."""
    lab.start_app("close")
    c = lab.connect(wait_established=False)
    fin = c.wait_for(lambda s: s["flags"] & FIN and s["seq"] == c.snd_nxt)
    c.snd_nxt = (fin["seq"] + fin["len"]) & 0xFFFFFFFF
    c.window = fin["window"]
    c.send(ACK, c.rcv_nxt, c.snd_nxt)
    deadline = time.monotonic() + 1
    while lab.state(c.sport) != "FIN-WAIT-2":
        if time.monotonic() > deadline:
            raise RuntimeError("the connection did not reach FIN-WAIT-2")
        time.sleep(0.01)
    return c


def unsent_ack_in_fin_wait_2(lab):
    """FIN-WAIT-2 (the target closed first); a bare ACK at RCV.NXT with ack=SND.NXT+1 (acknowledging what was never sent)."""
    c = _fin_wait_2(lab)
    return c.inject(ACK, c.rcv_nxt, (c.snd_nxt + 1) & 0xFFFFFFFF)


def bad_ack_beyond_window_in_syn_received(lab):
    """SYN-RECEIVED; FIN+ACK at RCV.NXT+65535 (beyond the window) with ack=ISS (not acknowledging the SYN-ACK)."""
    lab.start_app()
    sport, iss = random.randint(20000, 60999), random.getrandbits(32)
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, PORT, iss, 0, SYN, options=MSS_1460))
    got = lab.receive(sport, time.monotonic() + 1, stop=lambda s: s["flags"] & SYN)
    if not got:
        raise RuntimeError("no SYN-ACK from the target")
    synack = got[-1]
    rcv_nxt, seq = (iss + 1) & 0xFFFFFFFF, (iss + 1 + 65535) & 0xFFFFFFFF
    lab.send(build_frame(lab.target_mac, lab.tester_mac, sport, PORT, seq, synack["seq"], FIN | ACK))
    got = [s for s in lab.receive(sport, time.monotonic() + QUIET) if not s["flags"] & SYN]
    seq_names = [("SND.NXT", synack["seq"] + 1), ("SEG.ACK", synack["seq"]), ("0", 0)]
    answer = "; ".join(describe(s, seq_names, [("RCV.NXT", rcv_nxt)]) for s in got) or "silence"
    return {"answer": answer, "state_after": lab.state(sport)}


def overlapping_data_in_close_wait(lab):
    """CLOSE-WAIT (the tester's FIN taken); PSH+ACK with 10 bytes at RCV.NXT-1, so reaching past the FIN."""
    lab.start_app()
    c = lab.connect()
    c.send(FIN | ACK, c.rcv_nxt, c.snd_nxt)
    c.rcv_nxt = (c.rcv_nxt + 1) & 0xFFFFFFFF
    c.wait_for(lambda s: s["flags"] & ACK and s["ack"] == c.rcv_nxt)
    return c.inject(PSH | ACK, (c.rcv_nxt - 1) & 0xFFFFFFFF, c.snd_nxt, payload=b"0123456789")


def syn_rst_ending_at_rcv_nxt(lab):
    """ESTABLISHED; SYN+RST at RCV.NXT-1, so that its one octet of sequence space (the SYN's) ends exactly at RCV.NXT."""
    lab.start_app()
    c = lab.connect()
    return c.inject(SYN | RST, (c.rcv_nxt - 1) & 0xFFFFFFFF)


def no_flags_beyond_window_in_fin_wait_2(lab):
    """FIN-WAIT-2 (the target closed first); a segment with no flags at all at RCV.NXT+RCV.WND (the first sequence number beyond the window its FIN offered), then one at RCV.NXT+65535."""
    c = _fin_wait_2(lab)
    edge = c.inject(0, (c.rcv_nxt + c.window) & 0xFFFFFFFF)
    far = c.inject(0, (c.rcv_nxt + 65535) & 0xFFFFFFFF)
    return {"rcv_wnd": c.window, "answer_at_edge": edge["answer"], "answer_far": far["answer"],
            "state_after": far["state_after"]}


# Behaviour number in the brief -> probe.
PROBES = {
    "01_fin_without_ack": fin_without_ack,
    "02_data_without_ack": data_without_ack,
    "03_rst_at_rcv_nxt": rst_at_rcv_nxt,
    "04_rst_in_window_not_rcv_nxt": rst_in_window,
    "05_rst_beyond_window": rst_beyond_window,
    "06_syn_in_established": syn_in_established,
    "07_ack_beyond_snd_nxt_with_data": ack_beyond_snd_nxt,
    "08_stray_ack_to_listener": stray_ack_to_listener,
    "09_syn_fin_to_listener": syn_fin_to_listener,
    "10_syn_to_closed_port": syn_to_closed_port,
    "11_data_below_rcv_nxt": data_below_rcv_nxt,
    "12_bad_checksum": bad_checksum,
    "13_synack_retransmissions": synack_retransmissions,
    "14_fin_ack_in_established": fin_ack_in_established,
    "15a_rst_in_time_wait_rfc1337_0": rst_in_time_wait_rfc1337_0,
    "15b_rst_in_time_wait_rfc1337_1": rst_in_time_wait_rfc1337_1,
    "16_syn_again_in_syn_received": syn_again_in_syn_received,
    "17_syn_in_time_wait_then_rst": syn_in_time_wait_then_rst,
    "18_ack_in_window_in_time_wait": ack_in_window_in_time_wait,
    "19_syn_with_text_to_listener": syn_with_text_to_listener,
    "20_zero_window_probe": zero_window_probe,
    "21_old_ack_with_data": old_ack_with_data,
    "22_unsent_ack_in_fin_wait_2": unsent_ack_in_fin_wait_2,
    "23_bad_ack_beyond_window_in_syn_received": bad_ack_beyond_window_in_syn_received,
    "24_overlapping_data_in_close_wait": overlapping_data_in_close_wait,
    "25_syn_rst_ending_at_rcv_nxt": syn_rst_ending_at_rcv_nxt,
    "26_no_flags_beyond_window_in_fin_wait_2": no_flags_beyond_window_in_fin_wait_2,
}


def description(name: str) -> str:
    return PROBES[name].__doc__.strip().splitlines()[0]


def run_probe(name: str) -> dict:
    """Run one probe in a lab of its own; the lab is deleted whatever happens."""
    with Lab() as lab:
        return PROBES[name](lab)


def main(argv=None) -> int:
    import argparse
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("names", nargs="*", default=list(PROBES))
    args = parser.parse_args(argv)
    out, unstable = {}, []
    for name in args.names:
        results = []
        for _ in range(args.runs):
            started = time.monotonic()
            results.append(run_probe(name))
            print(f"# {name}: {results[-1]} ({time.monotonic() - started:.2f} s)", file=sys.stderr)
        if any(r != results[0] for r in results):
            unstable.append(name)
        out[name] = {"probe": description(name), "runs": args.runs,
                     "stable": all(r == results[0] for r in results), "observed": results[0]}
    print(yaml.safe_dump({"behaviours": out}, sort_keys=False, width=120))
    return 1 if unstable else 0


if __name__ == "__main__":
    sys.exit(main())
