"""Container targets: a docker or podman container on this host, by name.

A container on a bridge network is a remote target whose details the
container engine knows, so the user names only the container:

    this host (runs the suite)                     the container
    +-------------------------------+              +-----------------------------+
    | bridge (docker0, br-...):     |    veth      | eth0: address on the bridge |
    |   holds the network's gateway | <----------> |       network (discovered)  |
    |   address: the tester speaks  |              | network namespace:          |
    |   from it, with the host guard|              |   /proc/<pid>/ns/net        |
    +-------------------------------+              +-----------------------------+

``<engine> inspect`` gives the container's PID (so its network namespace,
/proc/PID/ns/net), its address(es), MAC and gateway on each network.  The
host interface holding the gateway address is the bridge the suite sends
on.  Inside the container's namespace the suite turns the interface's
checksum and segmentation offloads off, as the lab does for its own veth
(lab notes: with them on, veth hands over segments without a valid checksum
and TSO merges segments), and puts them back afterwards.  The agent runs in
the container with ``<engine> exec -i NAME python3 -`` unless the user gives
another command, or none (black-box mode).

Rootless podman puts containers behind slirp4netns or pasta, not on a bridge
of the host: discovery then finds no address and says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..lab import OFFLOADS, LabError, ethtool_features, pid_alive, run
from .remote import (HOST, ConfigError, RemoteConfig, RemoteTarget, agent_text,
                     tester_text)

ENGINES = ("docker", "podman")


@dataclass
class ContainerConfig:
    """What the user named: the container, and how to run cases against it."""

    container: str
    engine: str | None = None                 # None: whichever of ENGINES is installed
    network: str | None = None                # None: the container's only network
    agent_command: str | None = None          # None: <engine> exec -i NAME python3 -
    black_box: bool = False
    tester: str | tuple[str, ...] = HOST
    listen_port: int | None = None
    closed_port: int | None = None

    def announce(self) -> str:
        """What is about to be tested, said before the first packet."""
        agent = None if self.black_box else (
            self.agent_command or f"{self.engine or '<engine>'} exec -i {self.container} "
                                  f"python3 -")
        return (f"the {self.engine or 'docker/podman'} container {self.container}, at the "
                f"address(es) its engine reports, from {tester_text(self.tester)}; "
                f"{agent_text(agent, self.listen_port, self.closed_port)}; nothing else will "
                f"be sent to")


@dataclass
class Discovered:
    """What the engine and the host say about the container."""

    pid: int
    netns: str
    network: str
    addresses: tuple[str, ...]
    mac: str
    iface: str                 # the host's interface on the container's network
    container_iface: str       # the container's interface on it


class ContainerTarget(RemoteTarget):
    """A container found by name; once found, a remote target on its bridge."""

    def __init__(self, config: ContainerConfig):
        self.container_config = config
        self.found: Discovered | None = None
        self._offloads: dict[str, str] = {}      # ethtool -K keyword -> value to restore
        super().__init__(None)     # the rest is known once start() has discovered it

    def describe(self) -> str:
        if self.found is None:
            return f"container {self.container_config.container}"
        return (f"container {self.container_config.container} "
                f"({', '.join(self.found.addresses)} via {self.found.iface})")

    def start(self) -> None:
        cc = self.container_config
        engine = cc.engine or find_engine()
        self.found = found = discover(engine, cc.container, cc.network)
        if cc.black_box:
            agent = None
        else:
            agent = cc.agent_command or shlex.join([engine, "exec", "-i", cc.container,
                                                    "python3", "-"])
        try:
            self._configure(RemoteConfig(
                iface=found.iface, addresses=found.addresses, tester=cc.tester,
                agent_command=agent, listen_port=cc.listen_port, closed_port=cc.closed_port,
                name="container", extra_settings={
                    "container": f"{cc.container} ({engine}), PID {found.pid}, network "
                                 f"{found.network}, namespace {found.netns}",
                    "container interface": f"{found.container_iface} ({found.mac})"}))
        except ConfigError as exc:
            raise LabError(f"container {cc.container}: {exc}") from None
        try:
            self._offloads_off()
            super().start()
        except BaseException:
            self.stop()
            raise

    def _offloads_off(self) -> None:
        """Offloads off for the run, shared by every process testing the
        container (pytest-xdist workers): the first turns them off and keeps
        what they were, the last to stop puts them back."""
        found = self.found
        with _offload_record(found.pid) as record:
            if not record["users"]:
                current = ethtool_features(in_netns(found.netns, "ethtool", "-k",
                                                    found.container_iface))
                # "on [fixed]" cannot be changed, so it is neither turned off nor back on.
                record["original"] = {keyword: "on" for name, keyword in OFFLOADS.items()
                                      if current.get(name) == "on"}
                if record["original"]:
                    in_netns(found.netns, "ethtool", "-K", found.container_iface,
                             *[word for keyword in record["original"]
                               for word in (keyword, "off")])
            record["users"].append(os.getpid())
            self._offloads = record["original"]
        if self._offloads:
            self.config.extra_settings["container interface offloads"] = (
                f"turned off for the run: {', '.join(self._offloads)}")

    def stop(self) -> None:
        super().stop()
        if self.found is None or not self._offloads:
            return
        found, self._offloads = self.found, {}
        with _offload_record(found.pid) as record:
            record["users"] = [pid for pid in record["users"] if pid != os.getpid()]
            if not record["users"] and record["original"]:
                in_netns(found.netns, "ethtool", "-K", found.container_iface,
                         *[word for keyword, value in record["original"].items()
                           for word in (keyword, value)], check=False)


RECORDS = Path("/run/tcpconf")


@contextmanager
def _offload_record(container_pid: int):
    """The container's original offloads and the processes using them, read
    and written under a lock; processes that died are dropped."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"offloads-{container_pid}.json"
    with open(RECORDS / f"offloads-{container_pid}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {"original": {}, "users": []}
        record["users"] = [pid for pid in record["users"] if pid_alive(pid)]
        yield record
        if record["users"]:
            path.write_text(json.dumps(record))
        else:
            path.unlink(missing_ok=True)


def find_engine() -> str:
    for engine in ENGINES:
        if shutil.which(engine):
            return engine
    raise LabError("neither docker nor podman is installed here: a container target needs "
                   "the engine that runs it (or describe it with --target remote)")


def discover(engine: str, container: str, network: str | None = None) -> Discovered:
    """The container's namespace, address(es) and the host interface facing it."""
    info = inspect(engine, container)
    state = info.get("State") or {}
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        raise LabError(f"the container {container} is not running ({engine} inspect: "
                       f"State.Running={state.get('Running')}, Pid={pid})")
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    usable = {name: n for name, n in networks.items()
              if n.get("IPAddress") or n.get("GlobalIPv6Address")}
    if network is not None:
        if network not in usable:
            raise LabError(f"the container {container} has no address on a network {network!r}; "
                           f"its networks: {', '.join(usable) or 'none'}")
        usable = {network: usable[network]}
    if not usable:
        raise LabError(f"the container {container} has no address on a network of this host "
                       f"(rootless podman puts containers behind slirp4netns or pasta, not on "
                       f"a bridge of the host)")
    if len(usable) > 1:
        raise LabError(f"the container {container} has addresses on several networks "
                       f"({', '.join(usable)}): choose one with --container-network")
    (name, settings), = usable.items()
    addresses = tuple(a for a in (settings.get("IPAddress"), settings.get("GlobalIPv6Address"))
                      if a)
    gateways = [g for g in (settings.get("Gateway"), settings.get("IPv6Gateway")) if g]
    netns = f"/proc/{pid}/ns/net"
    return Discovered(pid=pid, netns=netns, network=name, addresses=addresses,
                      mac=settings.get("MacAddress", "").lower(),
                      iface=host_interface_holding(gateways, container),
                      container_iface=interface_with_mac(netns, settings.get("MacAddress", ""),
                                                         container))


def inspect(engine: str, container: str) -> dict:
    try:
        result = subprocess.run([engine, "inspect", "--type", "container", container],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"cannot run '{engine} inspect': {exc}") from None
    if result.returncode != 0:
        raise LabError(f"'{engine} inspect {container}' failed: "
                       f"{result.stderr.strip() or result.returncode}")
    try:
        (info,) = json.loads(result.stdout)
    except ValueError:
        raise LabError(f"'{engine} inspect {container}' did not describe one container") \
            from None
    return info


def host_interface_holding(gateways: list[str], container: str) -> str:
    """The interface of this host whose address is the container network's gateway."""
    result = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True)
    for entry in json.loads(result.stdout or "[]"):
        for info in entry.get("addr_info", []):
            if info.get("local") in gateways:
                return entry["ifname"]
    raise LabError(f"no interface of this host holds the gateway address of {container}'s "
                   f"network ({', '.join(gateways) or 'none given'}): run the suite on the "
                   f"container's host, in the host's network namespace")


def interface_with_mac(netns: str, mac: str, container: str) -> str:
    links = json.loads(in_netns(netns, "ip", "-j", "link") or "[]")
    for entry in links:
        if entry.get("address", "").lower() == mac.lower():
            return entry["ifname"]
    raise LabError(f"no interface with the MAC address {mac} in {container}'s namespace "
                   f"{netns}")


def in_netns(netns: str, *argv: str, check: bool = True) -> str:
    """Run a command of this host inside the container's network namespace."""
    return run("nsenter", f"--net={netns}", *argv, check=check)

