"""Remote targets: a device, host or container the suite did not build.

    the tester host (runs the suite)                    the target (given by the user)
    +-------------------------------------+             +------------------------------+
    | IFACE, the suite's packet sockets   | <---------> | --remote-address ADDR[,ADDR6] |
    | tester address, either              |  one link,  | listening on --remote-port,   |
    |  host: the interface's own address, |  no router  | or driven by an agent that    |
    |        with the host guard          |             | --agent-command starts there  |
    |  or:   one no host owns, for which  |             +------------------------------+
    |        the suite answers ARP / ND   |
    +-------------------------------------+

The user names the interface, the target's address(es) and how to reach
its application; the suite builds nothing.  Before the first segment it:

1. checks the tester address: the host's own one (host mode), or, for an
   address no host owns, that nobody answers a probe for it (RFC 5227);
2. resolves the target's MAC address with ARP or neighbour discovery.  Only
   a neighbour answers: a target behind a router is refused, so test
   traffic never leaves the link it was given;
3. in host mode, installs the host guard (hostguard.py), since the host's
   kernel would otherwise answer the target's segments with RSTs; with an
   unowned address, it answers ARP and neighbour solicitations itself
   (neighbour.py) and captures promiscuously, since frames come to a MAC
   address the interface does not have;
4. starts the agent through the user's command (ssh, docker exec, ip netns
   exec...), or, without one, runs in black-box mode (blackbox.py).

Safety: the wire sends only to the configured address(es) (wire.Wire.send),
the neighbour responder answers only them, and everything installed is
removed by stop(), which the runner calls on every way out.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field

from ..agent_client import AgentClient, AgentFailure
from ..hostguard import HostGuard
from ..lab import LabError, ethtool_features, run
from ..neighbour import NeighbourResponder, ask
from ..safety import unowned_address_problem
from ..tcp import IPV4, IPV6
from ..wire import Link
from .base import ALL, NONE, Target

HOST = "host"
# In host mode the tester's ports must stay clear of the host's ephemeral
# ports (see _tester_ports); otherwise they are the lab's (Target.tester_ports).
MIN_TESTER_PORTS = 1000
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


class ConfigError(Exception):
    """The remote target's options do not make sense; the message says which."""


@dataclass
class RemoteConfig:
    """What the user told the suite about a target it did not build."""

    iface: str
    addresses: tuple[str, ...]                # the target's, at most one per family
    tester: str | tuple[str, ...] = HOST      # HOST, or addresses no host owns
    agent_command: str | None = None          # None: black-box mode
    listen_port: int | None = None            # where the target's own service listens
    closed_port: int | None = None            # where nothing listens
    name: str = "remote"
    extra_settings: dict = field(default_factory=dict)   # what discovery found (containers)

    def __post_init__(self):
        families = [family_of(a) for a in self.addresses]
        if not self.addresses or len(set(families)) != len(families):
            raise ConfigError(f"expected one IPv4 address, one IPv6 address, or one of each for "
                              f"the target; got {', '.join(self.addresses) or 'none'}")
        if self.tester != HOST:
            mine = [family_of(a) for a in self.tester]
            missing = [f for f in families if f not in mine]
            if missing or len(set(mine)) != len(mine):
                raise ConfigError(f"the tester needs one address of each family the target has "
                                  f"({', '.join(families)}); got {', '.join(self.tester)}")
        if self.agent_command is not None:
            agent_prefix(self.agent_command)      # refuse a command that cannot work, now

    @property
    def mode(self) -> str:
        return "host address" if self.tester == HOST else "unowned address"

    def announce(self) -> str:
        """What is about to be tested, said before the first packet."""
        return (f"{', '.join(self.addresses)} on {self.iface}, from {tester_text(self.tester)}; "
                f"{agent_text(self.agent_command, self.listen_port, self.closed_port)}; "
                f"nothing else will be sent to")


def tester_text(tester) -> str:
    if tester == HOST:
        return "the interface's own address (with the nftables host guard)"
    return f"{', '.join(tester)}, owned by no host (the suite answers ARP/ND for it)"


def agent_text(command, listen_port, closed_port) -> str:
    if command is not None:
        return f"agent through {command!r}"
    ports = [f"listening port {listen_port}" if listen_port else "no listening port",
             f"closed port {closed_port}" if closed_port else "no closed port"]
    return f"black-box mode ({', '.join(ports)})"


def family_of(address: str) -> str:
    return IPV6 if ipaddress.ip_address(address).version == 6 else IPV4


def check_address(address: str, what: str) -> str:
    """A unicast address the suite may talk to, normalised; ConfigError otherwise."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        raise ConfigError(f"{what}: {address!r} is not an IP address") from None
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.is_link_local or (
            ip.version == 4 and ip == ipaddress.ip_address("255.255.255.255")):
        raise ConfigError(f"{what}: {ip} is not a unicast address of a host on a link")
    return str(ip)


def agent_prefix(command: str) -> tuple[list[str], str, bool]:
    """The user's agent command, split into (prefix, python, remote_shell).

    The command runs Python on the target with stdin and stdout attached,
    written as the user would type it: 'ssh root@dut python3 -'.  The
    trailing '-' (read the program from stdin) is what the suite does, but
    Python reads a program from stdin only up to its end, and the agent's
    protocol follows on the same stream: so the suite runs the interpreter
    with its own bootstrap instead (agent_bootstrap.bootstrap_command).  ssh
    hands its arguments to a shell over there, so the bootstrap goes as one
    quoted word."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"--agent-command {command!r}: {exc}") from None
    if argv and argv[-1] == "-":
        argv = argv[:-1]
    if not argv or not _PYTHON.match(os.path.basename(argv[-1])):
        raise ConfigError(f"--agent-command {command!r}: expected a command that ends by "
                          f"running Python on the target, e.g. 'ssh root@dut python3 -', "
                          f"'docker exec -i NAME python3 -' or 'ip netns exec NS python3 -'")
    prefix = argv[:-1]
    return prefix, argv[-1], bool(prefix) and os.path.basename(prefix[0]) == "ssh"


class RemoteTarget(Target):
    """A target over an interface of this host, from a tester address that
    is either the host's own or one no host owns."""

    check_link_at_start = True

    def __init__(self, config: RemoteConfig | None):
        self.agent: AgentClient | None = None
        self.links: dict[str, Link] = {}
        self.guard: HostGuard | None = None
        self.responder: NeighbourResponder | None = None
        self.tester_mac = ""
        self.config = None
        if config is not None:
            self._configure(config)

    def _configure(self, config: RemoteConfig) -> None:
        self.config, self.name = config, config.name
        self.listen_port, self.closed_port = config.listen_port, config.closed_port
        self.allowed_targets = config.addresses
        self.promiscuous = config.tester != HOST

    # -- the target's view, for the engine ----------------------------------

    @property
    def state_view(self) -> str:
        return ALL if self.agent is not None else NONE

    @property
    def state_view_reason(self) -> str:
        return "" if self.agent is not None else "black-box mode: no agent reads its states"

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.config.addresses)} via {self.config.iface})"

    # -- starting and stopping -----------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        config = self.config
        interface = interface_facts(config.iface)
        if config.tester == HOST:
            self.tester_mac = interface["mac"]
            testers = {family_of(t): host_address_for(interface, t)
                       for t in config.addresses}
            self.tester_ports = _tester_ports(_ephemeral_ports())
        else:
            testers = {family_of(a): a for a in config.tester}
            self.tester_mac = unowned_mac(config.tester)
            for address in testers.values():
                self._check_unowned(address, interface)
        for target_ip in config.addresses:
            tester_ip = testers[family_of(target_ip)]
            mac = ask(config.iface, None, self.tester_mac, tester_ip, target_ip)
            if mac is None:
                raise LabError(
                    f"{target_ip} does not answer {_asking(target_ip)} on {config.iface}: the "
                    f"suite tests only a target on the link it is given (it never sends "
                    f"through a router); check the address, the interface and the cable")
            self.links[family_of(target_ip)] = Link(
                iface=config.iface, tester_mac=self.tester_mac, target_mac=mac,
                tester_ip=tester_ip, target_ip=target_ip)
        if config.tester == HOST:
            self.guard = HostGuard([(link.tester_ip, link.target_ip)
                                    for link in self.links.values()], self.tester_ports)
            self.guard.install()
        else:
            self.responder = NeighbourResponder(self.links)
        if config.agent_command is not None:
            prefix, python, remote_shell = agent_prefix(config.agent_command)
            try:
                self.agent = AgentClient.start(prefix, python=python, timeout=30.0,
                                               remote_shell=remote_shell)
            except AgentFailure as exc:
                raise LabError(f"the agent did not start through {config.agent_command!r}: "
                               f"{exc}") from None

    def _check_unowned(self, address: str, interface: dict) -> None:
        """An address the suite speaks for must be a host's address of the lab
        ranges or of the link's own subnets, and belong to no one else."""
        networks = [f"{info['local']}/{info['prefixlen']}"
                    for info in interface["addresses"].values()]
        problem = unowned_address_problem(address, networks)
        if problem:
            raise LabError(f"the tester address {problem}")
        if address in interface["addresses"]:
            raise LabError(f"the tester address {address} is an address of {self.config.iface} "
                           f"itself: use --tester-address host to test from it")
        unspecified = "::" if family_of(address) == IPV6 else "0.0.0.0"
        owner = ask(self.config.iface, None, self.tester_mac, unspecified, address,
                    timeout=0.5, tries=2)
        if owner is not None:
            raise LabError(f"the tester address {address} is taken on {self.config.iface} "
                           f"(answered by {owner}): choose an address no host owns")

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.responder is not None:
            self.responder.stop()
            self.responder = None
        if self.guard is not None:
            self.guard.remove()
            self.guard = None

    def settings(self) -> dict:
        config = self.config
        values = {"stack": f"remote target, not built by the suite ({config.mode})"}
        values.update(config.extra_settings)
        for link in self.links.values():
            values[f"link {link.family}"] = (f"{link.tester_ip} ({link.tester_mac}) on "
                                             f"{link.iface} <-> {link.target_ip} "
                                             f"({link.target_mac})")
        values["agent"] = (f"{config.agent_command!r}: {self.agent.hello.get('system', '?')}"
                           if self.agent is not None else
                           "none: black-box mode (cases needing the application to act are "
                           "not run; a final state check is a wire probe)")
        if config.listen_port:
            values["listening port (black-box)"] = str(config.listen_port)
        if config.closed_port:
            values["closed port (black-box)"] = str(config.closed_port)
        values["tester ports"] = f"{self.tester_ports.start}-{self.tester_ports.stop - 1}"
        if self.guard is not None:
            values["host guard"] = self.guard.describe()
        gro = ethtool_features(run("ethtool", "-k", config.iface, check=False)).get(
            "generic-receive-offload")
        if gro:
            values[f"{config.iface} generic-receive-offload"] = gro
        return values


# -- facts about this host ------------------------------------------------------

def interface_facts(iface: str) -> dict:
    """The interface's MAC address and its addresses (ip -j addr)."""
    result = subprocess.run(["ip", "-j", "addr", "show", "dev", iface],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"there is no interface {iface!r} here ({result.stderr.strip()}); "
                       f"'ip link' lists them")
    (entry,) = json.loads(result.stdout)
    if "UP" not in entry.get("flags", []):
        raise LabError(f"the interface {iface} is down: bring it up first")
    addresses = {info["local"]: info for info in entry.get("addr_info", [])}
    return {"mac": entry.get("address", ""), "addresses": addresses}


def host_address_for(interface: dict, target_ip: str) -> str:
    """The interface's own address to test `target_ip` from: one whose
    subnet holds the target, else its first global one of that family."""
    target = ipaddress.ip_address(target_ip)
    candidates = [info for info in interface["addresses"].values()
                  if info.get("scope") == "global"
                  and ipaddress.ip_address(info["local"]).version == target.version]
    for info in candidates:
        if target in ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}").network:
            return info["local"]
    if candidates:
        return candidates[0]["local"]
    raise LabError(f"the interface has no {family_of(target_ip)} address to test {target_ip} "
                   f"from: give one no host owns with --tester-address")


def unowned_mac(addresses) -> str:
    """A locally administered MAC address (RFC 7042 2.1) for the tester,
    the same for the same tester addresses from run to run."""
    digest = hashlib.sha256(",".join(sorted(addresses)).encode()).digest()
    return "02:74:63:" + ":".join(f"{b:02x}" for b in digest[:3])


def _ephemeral_ports() -> range:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = map(int, f.read().split())
    return range(low, high + 1)


def _tester_ports(ephemeral: range) -> range:
    """Tester ports clear of the host's ephemeral ports: the host's own
    connections (an ssh to the target, say) never share a 4-tuple with a
    test flow, and the host guard never drops one of their RSTs."""
    below = range(max(1024, ephemeral.start - 20000), ephemeral.start)
    above = range(ephemeral.stop, min(65536, ephemeral.stop + 20000))
    best = max(below, above, key=len)
    if len(best) < MIN_TESTER_PORTS:
        raise LabError(f"the host's ephemeral ports ({ephemeral.start}-{ephemeral.stop - 1}, "
                       f"net.ipv4.ip_local_port_range) leave no room for the tester's ports")
    return best



def _asking(address: str) -> str:
    return "neighbour solicitations" if family_of(address) == IPV6 else "ARP requests"


