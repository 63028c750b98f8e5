"""The lab: a tester namespace and a target namespace joined by a veth pair.

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
ignores router advertisements, so it is usable at once and quiet.  Offloads are off on the target's end: with them on, veth hands
over segments without a valid checksum and TSO merges segments (lab notes).

Nothing is configured outside the two namespaces: the veth pair is created
inside the tester namespace with its peer placed straight into the target's.
Namespace names carry the PID of the process that built them and a number
unique within it (tcpconf-<pid>-<n>-target), so a lab left by a killed run is
recognised and removed at the next start, and two labs of one process never
share a name.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

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

_LAB_NAME = re.compile(rf"^{PREFIX}-(\d+)-\d+-(tester|target)$")
_lab_numbers = itertools.count(1)


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


def run(*argv: str, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise LabError(f"'{' '.join(argv)}' failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def ethtool_features(text: str) -> dict[str, str]:
    """`ethtool -k` output as feature name -> value ("on", "off [fixed]"...)."""
    features = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and value.strip():
            features[name.strip()] = value.strip()
    return features


def list_namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


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
    """One tester/target namespace pair; `build()` and `destroy()` are idempotent."""

    tag: str = field(default_factory=lambda: f"{os.getpid()}-{next(_lab_numbers)}")
    sysctls: dict = field(default_factory=dict)   # overrides on top of LAB_SYSCTLS

    @property
    def tester_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-tester"

    @property
    def target_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-target"

    @property
    def links(self) -> dict[str, Link]:
        """The link in each address family, keyed "ipv4" and "ipv6"."""
        common = dict(iface=TESTER_IFACE, tester_mac=TESTER_MAC, target_mac=TARGET_MAC,
                      netns=self.tester_ns)
        return {IPV4: Link(tester_ip=TESTER_IP, target_ip=TARGET_IP, **common),
                IPV6: Link(tester_ip=TESTER_IP6, target_ip=TARGET_IP6, **common)}

    def in_target(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.target_ns, *argv, check=check)

    def build(self) -> None:
        problems = preflight()
        if problems:
            raise LabError("; ".join(problems))
        remove_stale_labs()
        self.destroy()
        t, g = self.tester_ns, self.target_ns
        run("ip", "netns", "add", t)
        run("ip", "netns", "add", g)
        for ns, ns_sysctls in ((t, {**LAB_SYSCTLS, **TESTER_SYSCTLS}),
                               (g, {**LAB_SYSCTLS, **TARGET_IPV6_SYSCTLS, **self.sysctls})):
            for key, value in ns_sysctls.items():
                run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")
        run("ip", "-n", t, "link", "add", TESTER_IFACE, "address", TESTER_MAC, "type", "veth",
            "peer", "name", TARGET_IFACE, "address", TARGET_MAC, "netns", g)
        run("ip", "-n", t, "link", "set", TESTER_IFACE, "promisc", "on", "up")
        run("ip", "-n", g, "link", "set", "lo", "up")
        for key, value in TARGET_IPV6_SYSCTLS.items():
            iface_key = key.replace(".default.", f".{TARGET_IFACE}.")
            run("ip", "netns", "exec", g, "sysctl", "-qw", f"{iface_key}={value}")
        run("ip", "-n", g, "link", "set", TARGET_IFACE, "up")
        self.configure_addresses()
        # Checksums computed in software and no segmentation offload, so the
        # capture shows the segments the target's TCP really built.
        self.in_target("ethtool", "-K", TARGET_IFACE, "tx", "off", "tso", "off", "gso", "off")
        run("ip", "netns", "exec", t, "ethtool", "-K", TESTER_IFACE, "gro", "off", check=False)

    def configure_addresses(self) -> None:
        """The target's addresses and its neighbour entries for the tester
        (idempotent: the kernel drops IPv6 from a link whose MTU goes below
        1280, and this puts it back)."""
        g = self.target_ns
        run("ip", "-n", g, "addr", "replace", f"{TARGET_IP}/{PREFIXLEN}", "dev", TARGET_IFACE)
        run("ip", "-n", g, "addr", "replace", f"{TARGET_IP6}/{PREFIXLEN6}", "dev", TARGET_IFACE,
            "nodad")
        for tester_ip in (TESTER_IP, TESTER_IP6):
            run("ip", "-n", g, "neigh", "replace", tester_ip, "lladdr", TESTER_MAC,
                "dev", TARGET_IFACE, "nud", "permanent")

    def set_mtu(self, mtu: int) -> None:
        self.in_target("ip", "link", "set", TARGET_IFACE, "mtu", str(mtu))
        if mtu >= 1280:
            self.configure_addresses()

    def destroy(self) -> None:
        existing = set(list_namespaces()) if shutil.which("ip") else set()
        for ns in (self.target_ns, self.tester_ns):
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
        values = {}
        for key in RECORDED_SYSCTLS:
            values[key] = self.in_target("sysctl", "-n", key, check=False).strip() or "?"
        features = ethtool_features(self.in_target("ethtool", "-k", TARGET_IFACE, check=False))
        for name in OFFLOADS:
            if name in features:
                values[f"{TARGET_IFACE} {name}"] = features[name]
        values["link"] = self.link_text
        return values

    @property
    def link_text(self) -> str:
        return (f"{TESTER_IP}, {TESTER_IP6} ({self.tester_ns}/{TESTER_IFACE}) <-> "
                f"{TARGET_IP}, {TARGET_IP6} ({self.target_ns}/{TARGET_IFACE})")
