"""The lab: a tester namespace and a target namespace joined by a veth pair
(or, with faults on the link, through a link namespace).

    tester namespace                      target namespace
    +-------------------------+           +-----------------------------+
    | tester0 (no IP address, | <-------> | target0  198.18.0.2/24      |
    |  promiscuous, IPv6 off) |   veth    |          2001:2::2/64       |
    +-------------------------+           | neigh 198.18.0.1, 2001:2::1 |
                                          |       permanent             |
                                          +-----------------------------+

The tester's kernel owns no address on the link, so it never answers the
target's segments itself (with an address configured, it sent a RST 28 us
after the target's SYN-ACK: lab notes); the injector speaks for 198.18.0.1
and 2001:2::1.  The target knows the tester's MAC from permanent neighbour
entries, so neither ARP nor neighbour discovery is needed; its IPv6 address
skips duplicate address detection, and it makes no link-local address and
ignores router advertisements, so it is usable at once and quiet.  Offloads
are off on the target's end: with them on, veth hands over segments without a
valid checksum and TSO merges segments (lab notes).

With faults on the link (``Lab(faults=...)``, faults.py), a third namespace
sits in between; tester0 and target0 keep their names, MACs and addresses,
so the rest of the suite sees no difference:

    tester ns            link namespace tcpconf-<tag>-link              target ns
    +---------+      +--------------------------------------------+      +---------+
    | tester0 |<---->| l0 ------------- br0 ------------- l1      |<---->| target0 |
    +---------+ veth | nftables on l0's and l1's ingress: loss,   | veth +---------+
                     | duplication, corruption; frames to delay:  |
                     |   l0 -fwd-> dl0 = dl0r -> delay line -> l1 |
                     |   l1 -fwd-> dl1 = dl1r -> delay line -> l0 |
                     +--------------------------------------------+

The bridge has no address, STP and learning off (a two-port hub), and the
link namespace has IPv6 off, so nothing in it sends a frame of its own; its
offloads are off, so frames cross it unchanged.  The delay line is a process
of the suite in the link namespace (delayline.py), stopped by PID with the
lab.

Nothing is configured outside the lab's namespaces: each veth pair is created
inside one of them with its peer placed straight into the other.
Namespace names carry the PID of the process that built them and a number
unique within it (tcpconf-<pid>-<n>-target), so a lab left by a killed run is
recognised and removed at the next start, and two labs of one process never
share a name.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import netns
from .delayline import FIXED, UNIFORM, DelayLine, DelayLineError
from .faults import DELAY_PORTS, DELAY_READ, PORTS, Faults, ruleset
from .tcp import IPV4, IPV6
from .wire import Link

PREFIX = "tcpconf"
TESTER_IFACE, TARGET_IFACE = "tester0", "target0"
TESTER_MAC, TARGET_MAC = "02:00:c6:12:00:01", "02:00:c6:12:00:02"
TESTER_IP, TARGET_IP, PREFIXLEN = "198.18.0.1", "198.18.0.2", 24
# RFC 5180's IPv6 benchmarking range, the counterpart of 198.18.0.0/15.
TESTER_IP6, TARGET_IP6, PREFIXLEN6 = "2001:2::1", "2001:2::2", 64

# Lab sysctls, set in the target namespace only.  Each one is recorded in the
# report next to the values the target ended up with.
LAB_SYSCTLS = {
    # Linux throttles duplicate and challenge ACKs to one per 500 ms
    # (RFC 5961 section 7 allows throttling); cases probe faster than that.
    "net.ipv4.tcp_invalid_ratelimit": "0",
}
# The tester's kernel takes no part in IPv6 either.
TESTER_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
# A new namespace shares the host's TCP hash table (262,144 buckets here),
# and every state read (an inet_diag dump) walks all of it: 2.4 ms a dump.
# Given a private table of its own, the target's costs 0.04 ms.  Its size is
# read from the namespace that creates it (Linux 6.1's
# net.ipv4.tcp_child_ehash_entries), so the tester's namespace, which the
# suite owns, creates the target's (Lab.build).
CHILD_EHASH = ("net.ipv4.tcp_child_ehash_entries", "1024")
# The target's interface: a static IPv6 address only (no link-local address,
# so no router solicitations or MLD reports; no SLAAC, no DAD).
TARGET_IPV6_SYSCTLS = {
    "net.ipv6.conf.default.addr_gen_mode": "1",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.default.autoconf": "0",
    "net.ipv6.conf.default.dad_transmits": "0",
    "net.ipv6.conf.default.router_solicitations": "0",
}
# Settings that change what the target answers; read back for the report.
RECORDED_SYSCTLS = (
    "net.ipv4.tcp_invalid_ratelimit", "net.ipv4.tcp_challenge_ack_limit",
    "net.ipv4.tcp_synack_retries", "net.ipv4.tcp_syn_retries", "net.ipv4.tcp_rfc1337",
    "net.ipv4.tcp_syncookies", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_sack",
    "net.ipv4.tcp_window_scaling", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_ecn",
)

# The offloads that change what the capture shows (ethtool -k names, with the
# ethtool -K keyword that sets each): off on every target link the suite uses.
OFFLOADS = {"tx-checksumming": "tx", "tcp-segmentation-offload": "tso",
            "generic-segmentation-offload": "gso"}

# The link namespace (only with faults): no IPv6 at all, so no interface in
# it sends router solicitations, MLD reports or anything else of its own.
LINK_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
LINK_BRIDGE = "br0"
# Locally administered MACs of the lab's 02:00:c6:12:00:xx block for the
# bridge and its ports (never a frame's source: they only forward), apart
# from the tester's (:01), the target's (:02) and tap-bridge.sh's (:fc-:fe).
LINK_MACS = {PORTS[0]: "02:00:c6:12:00:e0", PORTS[1]: "02:00:c6:12:00:e1",
             LINK_BRIDGE: "02:00:c6:12:00:e2"}
# Offloads off on every interface of the link namespace (ethtool -K
# keywords): frames cross it as they were sent, one segment each, with the
# checksum they carry.
LINK_OFFLOADS = ("tx", "tso", "gso", "gro")
PORTS_FORWARD_TIMEOUT = 5.0   # seconds until the bridge ports forward

_LAB_NAME = re.compile(rf"^{PREFIX}-(\d+)-\d+-(tester|target|link|firewall)$")
_lab_numbers = itertools.count(1)


def new_tag() -> str:
    """A lab's tag: this process's pid (so that a lab left by a crash is
    known stale at the next start) and a number of its own."""
    return f"{os.getpid()}-{next(_lab_numbers)}"


# The sysctls a case or --target-sysctl may set: those of the network stack,
# which each network namespace has its own copy of.  Any other (kernel.*,
# vm.*, fs.*) belongs to the whole machine: 'ip netns exec NS sysctl' would
# change the host the suite runs on.
NETNS_SYSCTL = re.compile(r"^net\.[a-z0-9_.-]+$")


def sysctl_problem(key: str) -> str | None:
    """Why the suite refuses to set `key` in a namespace, or None."""
    if NETNS_SYSCTL.match(key):
        return None
    return (f"{key} is not a setting of the target's network namespace: the suite sets "
            f"only net.* sysctls, which each namespace has its own copy of; this one "
            f"would change the machine the suite runs on")


class LabError(Exception):
    """The lab cannot be built or used; the message says what to do."""


def preflight(tools=("ip", "ethtool")) -> list[str]:
    """What stops the lab from being built here, in words a user can act on."""
    problems = []
    if os.geteuid() != 0:
        # Root of a user namespace will do: conformance/rootless.py runs pytest as that.
        problems.append("the lab needs root's powers over network namespaces: run as root "
                        "(for example with sudo), or without root through './run sweep' or "
                        "'python -m conformance.rootless [pytest options]', which build the "
                        "lab in a user namespace")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = {"ip": "iproute2", "ethtool": "ethtool", "nft": "nftables"}
        problems.append(f"missing command(s) {', '.join(missing)}: install them with "
                        f"'apt-get install {' '.join(packages.get(t, t) for t in missing)}'")
    return problems


def run(*argv: str, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise LabError(f"'{' '.join(argv)}' failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def run_batch(namespace: str, commands: list[tuple[str, ...]]) -> None:
    """Several `ip` commands in `namespace` from one process (`ip -batch`):
    a lab is built from a few dozen, and each process costs milliseconds."""
    run("ip", "-n", namespace, "-batch", "-",
        input="".join(" ".join(command) + "\n" for command in commands))


def set_sysctls(namespace: str, settings: dict[str, str], check: bool = True) -> None:
    """Every setting written to /proc/sys inside `namespace`, from this
    process (a sysctl process per namespace cost milliseconds); with
    `check`, a setting the kernel refuses or lacks is a LabError."""
    with netns.entered(namespace):
        for key, value in settings.items():
            try:
                Path("/proc/sys", *key.split(".")).write_text(f"{value}\n", encoding="ascii")
            except OSError as exc:
                if check:
                    raise LabError(f"sysctl {key}={value} in {namespace} failed: "
                                   f"{exc.strerror}") from None


def read_sysctl(namespace: str, key: str) -> str | None:
    """A sysctl's value as `namespace` has it (None: the kernel has no such
    setting), read from /proc/sys in the namespace, with no process to start."""
    with netns.entered(namespace):
        try:
            return Path("/proc/sys", *key.split(".")).read_text(encoding="ascii").strip()
        except OSError:
            return None


def ethtool_features(text: str) -> dict[str, str]:
    """`ethtool -k` output as feature name -> value ("on", "off [fixed]"...)."""
    features = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and value.strip():
            features[name.strip()] = value.strip()
    return features


def list_namespaces() -> list[str]:
    """The named network namespaces, as `ip netns list` shows them (its
    directory, read without starting it)."""
    try:
        return sorted(os.listdir(netns.NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_labs() -> list[str]:
    """Delete the namespaces of labs whose building process is gone."""
    removed = []
    for name in list_namespaces():
        match = _LAB_NAME.match(name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            run("ip", "netns", "delete", name, check=False)
            removed.append(name)
    return removed


@dataclass
class Lab:
    """One tester/target namespace pair; `build()` and `destroy()` are idempotent.

    With `faults` (even Faults(): a faultless link), the two are joined
    through a link namespace that applies them (see the module's docstring);
    without, directly."""

    tag: str = field(default_factory=new_tag)
    sysctls: dict = field(default_factory=dict)   # overrides on top of LAB_SYSCTLS
    faults: Faults | None = None
    _delay_line: DelayLine | None = field(default=None, init=False, repr=False)

    @property
    def tester_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-tester"

    @property
    def target_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-target"

    @property
    def link_ns(self) -> str | None:
        """The link namespace, when the lab has one (with faults)."""
        return None if self.faults is None else f"{PREFIX}-{self.tag}-link"

    @property
    def delay_line_pid(self) -> int | None:
        return self._delay_line.pid if self._delay_line else None

    @property
    def links(self) -> dict[str, Link]:
        """The link in each address family, keyed "ipv4" and "ipv6"."""
        common = dict(iface=TESTER_IFACE, tester_mac=TESTER_MAC, target_mac=TARGET_MAC,
                      netns=self.tester_ns)
        return {IPV4: Link(tester_ip=TESTER_IP, target_ip=TARGET_IP, **common),
                IPV6: Link(tester_ip=TESTER_IP6, target_ip=TARGET_IP6, **common)}

    def in_target(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.target_ns, *argv, check=check)

    def namespaces(self) -> dict[str, dict]:
        """The lab's namespaces, each with the sysctls set in it as it is made."""
        namespaces = {self.tester_ns: {**LAB_SYSCTLS, **TESTER_SYSCTLS},
                      self.target_ns: {**LAB_SYSCTLS, **TARGET_IPV6_SYSCTLS, **self.sysctls}}
        if self.link_ns:
            namespaces[self.link_ns] = LINK_SYSCTLS
        return namespaces

    def build(self, then: Callable[[], None] | None = None) -> None:
        """Make the lab; `then` is called as soon as the target's namespace
        exists, before its links are made: a target starts its agent there,
        which then comes up while the lab is finished."""
        problems = preflight(("ip", "ethtool", "nsenter") + (("nft",) if self.needs_nft else ()))
        if problems:
            raise LabError("; ".join(problems))
        remove_stale_labs()
        self.destroy()
        t, g = self.tester_ns, self.target_ns
        for ns, ns_sysctls in self.namespaces().items():
            if ns == g:
                # Made from inside the tester's namespace (the dict makes that
                # one first), with a hash table of CHILD_EHASH's size where
                # the kernel has the setting (from 6.1) and lets it be set.
                set_sysctls(t, dict([CHILD_EHASH]), check=False)
                run("nsenter", f"--net=/run/netns/{t}", "ip", "netns", "add", ns)
                if then is not None:
                    then()
            else:
                run("ip", "netns", "add", ns)
            set_sysctls(ns, ns_sysctls)
        self.join()
        run("ip", "-n", t, "link", "set", TESTER_IFACE, "promisc", "on", "up")
        # target0 came into the namespace after its defaults were set.
        set_sysctls(g, {key.replace(".default.", f".{TARGET_IFACE}."): value
                        for key, value in TARGET_IPV6_SYSCTLS.items()})
        run_batch(g, [("link", "set", "lo", "up"), ("link", "set", TARGET_IFACE, "up")])
        self.configure_addresses()
        # Checksums computed in software and no segmentation offload, so the
        # capture shows the segments the target's TCP really built.
        self.in_target("ethtool", "-K", TARGET_IFACE, "tx", "off", "tso", "off", "gso", "off")
        run("ip", "netns", "exec", t, "ethtool", "-K", TESTER_IFACE, "gro", "off", check=False)
        self.start_middle()

    # What a lab with something between tester0 and target0 changes (the
    # faulty link here; a firewall in firewall.py).

    @property
    def needs_nft(self) -> bool:
        return bool(self.faults)

    def join(self) -> None:
        """tester0 and target0, joined directly or through the link namespace."""
        if self.link_ns:
            self._add_link()
        else:
            run("ip", "-n", self.tester_ns, "link", "add", TESTER_IFACE, "address", TESTER_MAC,
                "type", "veth", "peer", "name", TARGET_IFACE, "address", TARGET_MAC,
                "netns", self.target_ns)

    def start_middle(self) -> None:
        """Whatever runs between the two ends once they are joined."""
        if self.link_ns:
            self._start_faults()

    @property
    def middle_namespaces(self) -> tuple[str, ...]:
        """The namespaces between tester and target, destroyed with the lab."""
        return (self.link_ns,) if self.link_ns else ()

    # -- the link namespace (with faults) ---------------------------------------

    def _add_link(self) -> None:
        """tester0 <-> l0, l1 <-> target0 (each pair created in one namespace with
        its peer placed straight into the other), the bridge, and a veth pair
        per direction for the frames the delay line holds."""
        t, g, k = self.tester_ns, self.target_ns, self.link_ns
        run("ip", "-n", t, "link", "add", TESTER_IFACE, "address", TESTER_MAC, "type", "veth",
            "peer", "name", PORTS[0], "address", LINK_MACS[PORTS[0]], "netns", k)
        run("ip", "-n", k, "link", "add", PORTS[1], "address", LINK_MACS[PORTS[1]],
            "type", "veth", "peer", "name", TARGET_IFACE, "address", TARGET_MAC, "netns", g)
        for delay_port, reader in zip(DELAY_PORTS, DELAY_READ):
            run("ip", "-n", k, "link", "add", delay_port, "type", "veth", "peer", "name", reader)
        run("ip", "-n", k, "link", "add", LINK_BRIDGE, "address", LINK_MACS[LINK_BRIDGE],
            "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
        for port in PORTS:
            run("ip", "-n", k, "link", "set", port, "master", LINK_BRIDGE)
            # No learning: the bridge floods every frame to the other port, so
            # a frame the delay line sends past it cannot leave a stale entry.
            run("ip", "-n", k, "link", "set", port, "type", "bridge_slave", "learning", "off")
        for iface in (*PORTS, *DELAY_PORTS, *DELAY_READ):
            offloads = [word for keyword in LINK_OFFLOADS for word in (keyword, "off")]
            run("ip", "netns", "exec", k, "ethtool", "-K", iface, *offloads)
            run("ip", "-n", k, "link", "set", iface, "up")
        run("ip", "-n", k, "link", "set", LINK_BRIDGE, "up")

    def _start_faults(self) -> None:
        """The nftables rules and the delay line, then wait until the bridge's
        ports forward (the kernel applies carrier changes through its link
        watch, up to a second later; until then the bridge drops every frame)."""
        k, faults = self.link_ns, self.faults
        if faults:
            nft = subprocess.run(["ip", "netns", "exec", k, "nft", "-f", "-"],
                                 input=ruleset(faults), capture_output=True, text=True)
            if nft.returncode != 0:
                raise LabError(f"nft could not load the link's faults in {k}: "
                               f"{nft.stderr.strip() or nft.returncode}")
        if faults.hold:
            routes = [(DELAY_READ[0], PORTS[1]), (DELAY_READ[1], PORTS[0])]
            self._delay_line = DelayLine(k, routes, faults.hold,
                                         UNIFORM if faults.delays_every_frame else FIXED)
            try:
                self._delay_line.start()
            except DelayLineError as exc:
                self._delay_line = None
                raise LabError(str(exc)) from None
        self._wait_for_ports()

    def _wait_for_ports(self) -> None:
        deadline = time.monotonic() + PORTS_FORWARD_TIMEOUT
        while not all(self._port_forwards(port) for port in PORTS):
            if time.monotonic() > deadline:
                raise LabError(f"the bridge ports {', '.join(PORTS)} in {self.link_ns} did not "
                               f"start forwarding within {PORTS_FORWARD_TIMEOUT:g} s")
            time.sleep(0.01)

    def _port_forwards(self, port: str) -> bool:
        shown = run("ip", "-n", self.link_ns, "-j", "-d", "link", "show", "dev", port)
        return port_forwards(json.loads(shown or "[]"))

    def configure_addresses(self) -> None:
        """The target's addresses and its neighbour entries for the tester
        (idempotent: the kernel drops IPv6 from a link whose MTU goes below
        1280, and this puts it back)."""
        self.address_target((TARGET_IP, TARGET_IP6), (TESTER_IP, TESTER_IP6), TESTER_MAC)

    def address_target(self, addresses: tuple[str, str], neighbours: tuple[str, str],
                       neighbour_mac: str, via_neighbours: bool = False) -> None:
        """The target's IPv4 and IPv6 `addresses` on target0, permanent entries
        for its `neighbours` (one MAC: the tester's, or a router's), and with
        `via_neighbours`, default routes through them."""
        ipv4, ipv6 = addresses
        commands = [("addr", "replace", f"{ipv4}/{PREFIXLEN}", "dev", TARGET_IFACE),
                    ("addr", "replace", f"{ipv6}/{PREFIXLEN6}", "dev", TARGET_IFACE, "nodad")]
        for neighbour in neighbours:
            commands.append(("neigh", "replace", neighbour, "lladdr", neighbour_mac,
                             "dev", TARGET_IFACE, "nud", "permanent"))
            if via_neighbours:     # the gateway's address gives the route its family
                commands.append(("route", "replace", "default", "via", neighbour))
        run_batch(self.target_ns, commands)

    def set_mtu(self, mtu: int) -> None:
        self.in_target("ip", "link", "set", TARGET_IFACE, "mtu", str(mtu))
        if mtu >= 1280:
            self.configure_addresses()

    def destroy(self) -> None:
        if self._delay_line is not None:
            self._delay_line.stop()
            self._delay_line = None
        existing = set(list_namespaces()) if shutil.which("ip") else set()
        for ns in (self.target_ns, *self.middle_namespaces, self.tester_ns):
            if ns in existing:
                run("ip", "netns", "delete", ns, check=False)

    def set_sysctl(self, key: str, value: str) -> str:
        """Change a sysctl in the target namespace; returns the old value."""
        problem = sysctl_problem(key)
        if problem:
            raise LabError(problem)
        old = self.in_target("sysctl", "-n", key).strip()
        self.in_target("sysctl", "-qw", f"{key}={value}")
        return old

    def settings(self) -> dict:
        """The lab's settings as the target sees them, for the report."""
        values = {key: read_sysctl(self.target_ns, key) or "?" for key in RECORDED_SYSCTLS}
        features = ethtool_features(self.in_target("ethtool", "-k", TARGET_IFACE, check=False))
        for name in OFFLOADS:
            if name in features:
                values[f"{TARGET_IFACE} {name}"] = features[name]
        values["link"] = self.link_text
        if self.faults is not None:
            values["link faults"] = self.faults.describe()
        return values

    @property
    def link_text(self) -> str:
        text = (f"{TESTER_IP}, {TESTER_IP6} ({self.tester_ns}/{TESTER_IFACE}) <-> "
                f"{TARGET_IP}, {TARGET_IP6} ({self.target_ns}/{TARGET_IFACE})")
        if self.link_ns:
            text += f" via {self.link_ns} ({PORTS[0]}, {LINK_BRIDGE}, {PORTS[1]})"
        return text


def port_forwards(shown: list) -> bool:
    """Whether `ip -j -d link show dev PORT` shows a bridge port that is up
    and forwarding."""
    if not shown:
        return False
    link = shown[0]
    slave = link.get("linkinfo", {}).get("info_slave_data", {})
    return link.get("operstate") == "UP" and slave.get("state") == "forwarding"
