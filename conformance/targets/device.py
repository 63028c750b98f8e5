"""A real device in the path: a firewall or NAT between two interfaces of
this host, the tester on one side and an end host the suite builds on the
other.

    this host (runs the suite)                 the device            this host
    +-------------------------------+         +-------------+        +------------------------------+
    | --device-outside IFACE        |-------->| outside     |        | --device-inside IFACE        |
    |   the tester: --tester-address|  cable  | --device-   |        |  `-- macvlan target0, in a   |
    |   (no host owns it: the suite |         |   address   |        |      namespace of the suite: |
    |   answers ARP/ND for it)      |         |      inside |<-------|      the end host, Linux's   |
    +-------------------------------+         | --device-   | cable  |      TCP with the agent, at  |
                                              | inside-gw   |        |      --device-host           |
                                              +-------------+        +------------------------------+

The tester sends to the end host through the device (the device's outside
MAC is the next hop), or, behind NAT, to the device's outside address.  The
end host is the Linux kernel in a namespace the suite makes on a macvlan of
the inside interface: its own MAC, the addresses given, the device as its
default route; the inside capture of middlebox.py runs there, so a case
sees what crossed the device as in the lab.

What the suite cannot see is the device's own connection tracking: a
``firewall: {tracks: ...}`` step is reported as not observable on this
target, never decided.

Safety, as for a remote target (remote.py): the addresses are the user's,
announced before the first packet; the wire sends only to the device's and
the end host's; the tester's addresses must belong to no one on the outside
link, and the end host's to no one on the inside link; stop() removes the
end host's namespace (the macvlan goes with it), and a namespace left by a
crash is removed at the next start, as the lab's are.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass

from ..agent_client import AgentClient, AgentFailure
from ..lab import (LAB_SYSCTLS, PREFIX, TARGET_IFACE, TARGET_IPV6_SYSCTLS, LabError, new_tag,
                   remove_stale_labs, run)
from ..middlebox import MiddleboxAt
from ..neighbour import NeighbourResponder, ask
from ..tcp import IPV4, IPV6
from ..wire import Link
from .base import ALL
from .remote import (ConfigError, RemoteTarget, check_address, family_of, interface_facts,
                     unowned_mac)

KINDS = ("firewall", "nat")


@dataclass
class DeviceConfig:
    """What the user told the suite about a device between two interfaces."""

    outside: str                      # this host's interface facing the device's outside
    inside: str                       # ... facing its inside: the end host goes there
    kind: str                         # "firewall" or "nat": which cases apply
    addresses: tuple[str, ...]        # the device's outside address(es): the next hop
    hosts: tuple[str, ...]            # the end host's address(es), ADDR/PREFIX
    inside_gateways: tuple[str, ...]  # the device's inside address(es): the end host's route
    tester: tuple[str, ...]           # the tester's address(es) on the outside link
    name: str = "middlebox"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"--device-kind: expected one of {', '.join(KINDS)}; "
                              f"got {self.kind!r}")
        if self.outside == self.inside:
            raise ConfigError(f"--device-outside and --device-inside are both {self.outside}: "
                              f"the device must stand between two interfaces")
        families = {}
        for what, values in (("--device-address", self.addresses),
                             ("--device-host", tuple(h.split("/")[0] for h in self.hosts)),
                             ("--device-inside-gateway", self.inside_gateways),
                             ("--tester-address", self.tester)):
            found = [family_of(v) for v in values]
            if not found or len(set(found)) != len(found):
                raise ConfigError(f"{what}: expected one IPv4 address, one IPv6 address, or "
                                  f"one of each; got {', '.join(values) or 'none'}")
            families[what] = set(found)
        if len({frozenset(f) for f in families.values()}) != 1:
            raise ConfigError("--device-address, --device-host, --device-inside-gateway and "
                              "--tester-address must name the same address families")

    @property
    def host_ips(self) -> dict[str, str]:
        return {family_of(h.split("/")[0]): h.split("/")[0] for h in self.hosts}

    @property
    def iface(self) -> str:
        """The tester's interface (RemoteTarget's checks read it)."""
        return self.outside

    def announce(self) -> str:
        """What is about to be tested, said before the first packet."""
        hosts = ", ".join(self.hosts)
        return (f"a {self.kind} between {self.outside} (outside: {', '.join(self.addresses)}) "
                f"and {self.inside} (inside: the suite's end host {hosts}, routed through "
                f"{', '.join(self.inside_gateways)}); tester {', '.join(self.tester)}, owned by "
                f"no host (the suite answers ARP/ND for it); nothing else will be sent to")


def parse_host(value: str) -> str:
    """An end host's ADDR/PREFIX, normalised; ConfigError otherwise."""
    address, _, prefix = value.strip().partition("/")
    address = check_address(address, "--device-host")
    bits = 32 if family_of(address) == IPV4 else 128
    if not prefix.isdigit() or not 8 <= int(prefix) < bits:
        raise ConfigError(f"--device-host: expected ADDR/PREFIX such as 192.168.1.10/24 or "
                          f"fd00:1::10/64 (the inside link's subnet); got {value!r}")
    network = ipaddress.ip_interface(f"{address}/{prefix}").network
    return f"{address}/{network.prefixlen}"


class DeviceTarget(RemoteTarget):
    """A device in the path between two interfaces of this host, with an end
    host of the suite's own behind it."""

    check_link_at_start = True
    promiscuous = True

    def __init__(self, config: DeviceConfig | None):
        super().__init__(None)
        # Named as a lab's target namespace, so that one a crash left behind
        # is removed at the next start (lab.remove_stale_labs).
        self.host_ns = f"{PREFIX}-{new_tag()}-target"
        if config is not None:
            self.config, self.name, self.middlebox = config, config.name, config.kind
            self.allowed_targets = config.addresses + tuple(config.host_ips.values())

    @property
    def state_view(self) -> str:
        return ALL

    @property
    def state_view_reason(self) -> str:
        return ""

    @property
    def witness_at(self):
        return None

    @property
    def middlebox_at(self) -> MiddleboxAt:
        """The end host's namespace and interface; no tracker the suite can read."""
        return MiddleboxAt(self.host_ns, TARGET_IFACE, None, self.config.host_ips)

    def describe(self) -> str:
        return (f"{self.name} ({self.config.kind} between {self.config.outside} and "
                f"{self.config.inside})")

    # -- starting and stopping -----------------------------------------------

    def _start(self) -> None:
        config = self.config
        outside = interface_facts(config.outside)
        interface_facts(config.inside)      # there, and up
        self.tester_mac = unowned_mac(config.tester)
        testers = {family_of(a): a for a in config.tester}
        for address in testers.values():
            self._check_unowned(address, outside)
        self._build_end_host()
        hosts = config.host_ips
        for gateway in config.addresses:
            family = family_of(gateway)
            mac = ask(config.outside, None, self.tester_mac, testers[family], gateway)
            if mac is None:
                raise LabError(f"the device's outside address {gateway} does not answer "
                               f"{'neighbour discovery' if family == IPV6 else 'ARP'} on "
                               f"{config.outside}: check the address, the interface and the "
                               f"cable")
            # Through a firewall the tester talks to the end host; behind NAT
            # to the device, which the end host's connections leave from.
            target_ip = gateway if config.kind == "nat" else hosts[family]
            self.links[family] = Link(iface=config.outside, tester_mac=self.tester_mac,
                                      target_mac=mac, tester_ip=testers[family],
                                      target_ip=target_ip)
        self.responder = NeighbourResponder(self.links)
        try:
            self.agent = AgentClient.start(["ip", "netns", "exec", self.host_ns],
                                           python=sys.executable)
        except AgentFailure as exc:
            raise LabError(f"the end host's agent did not start in {self.host_ns}: "
                           f"{exc}") from None

    def _build_end_host(self) -> None:
        """The end host: a namespace with a macvlan of the inside interface,
        the given addresses (each checked to be nobody's first), and the
        device's inside address as its default route."""
        config, ns = self.config, self.host_ns
        remove_stale_labs()
        for host in config.hosts:
            address = host.split("/")[0]
            unspecified = "::" if family_of(address) == IPV6 else "0.0.0.0"
            owner = ask(config.inside, None, unowned_mac((address,)), unspecified, address,
                        timeout=0.5, tries=2)
            if owner is not None:
                raise LabError(f"the end host's address {address} is taken on "
                               f"{config.inside} (answered by {owner}): choose one no host "
                               f"owns")
        run("ip", "netns", "add", ns)
        # As the lab's end host: no router advertisement, autoconfiguration or
        # duplicate address detection changes it while the cases run.
        for key, value in {**LAB_SYSCTLS, **TARGET_IPV6_SYSCTLS}.items():
            run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")
        run("ip", "link", "add", "link", config.inside, "name", TARGET_IFACE, "netns", ns,
            "type", "macvlan", "mode", "bridge")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "link", "set", TARGET_IFACE, "up")
        for host in config.hosts:
            run("ip", "-n", ns, "addr", "add", host, "dev", TARGET_IFACE, "nodad")
        for gateway in config.inside_gateways:
            family = "-6" if family_of(gateway) == IPV6 else "-4"
            run("ip", "-n", ns, family, "route", "replace", "default", "via", gateway)
        run("ip", "netns", "exec", ns, "ethtool", "-K", TARGET_IFACE, "tx", "off", "tso", "off",
            "gso", "off", check=False)

    def stop(self) -> None:
        super().stop()
        if self.host_ns in run("ip", "netns", "list", check=False):
            run("ip", "netns", "delete", self.host_ns, check=False)

    def settings(self) -> dict:
        config = self.config
        values = {"stack": f"a {config.kind} the suite did not build, between "
                           f"{config.outside} and {config.inside}, in front of the Linux "
                           f"kernel's TCP as the end host (a namespace of the suite's own)",
                  "device outside address": ", ".join(config.addresses),
                  "end host": f"{', '.join(config.hosts)} on a macvlan of {config.inside}, "
                              f"routed through {', '.join(config.inside_gateways)}",
                  "device connection tracking": "not readable by the suite: its 'tracks' "
                                                "steps are reported as not observable"}
        for link in self.links.values():
            values[f"link {link.family}"] = (f"{link.tester_ip} ({link.tester_mac}) on "
                                             f"{link.iface} -> {link.target_ip} via "
                                             f"{link.target_mac}")
        if self.agent is not None:
            values["end host system"] = self.agent.hello.get("system", "?")
        return values
