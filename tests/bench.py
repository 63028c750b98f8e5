"""A bench network for the remote and container targets' tests.

No second machine is available here, so namespaces play the outside world
(a real container engine does run here: tests/docker_bench.py; the bridged
"container" and the stand-in docker command below serve only where it cannot): the suite is run *inside* the "host" namespace, handed an
interface, addresses and an agent command, exactly as a user on a real host
would, and it does not build the target itself.

Point to point (a remote device on a bench cable)::

    host namespace (the suite runs here)          remote namespace (the target)
    bench0  198.18.5.1/24  2001:2:0:5::1/64  <--> bench1  198.18.5.2/24  2001:2:0:5::2/64

A container on a bridge (what docker builds)::

    host namespace                                 "container" namespace
    br-bench 198.18.6.1/24 2001:2:0:6::1/64
      `- veth-bench  <---------------------------> eth0  198.18.6.2/24  2001:2:0:6::2/64

Namespace names follow the lab's pattern (tcpconf-<pid>-<n>-tester|target), so
a bench left by a killed test run is removed like a lab.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance.lab import PREFIX, TARGET_IPV6_SYSCTLS, run

REPO = Path(__file__).resolve().parent.parent
_numbers = itertools.count(9000)

# The target side behaves like a device: checksums computed in software, no
# segmentation offload, and no rate limit on challenge ACKs (lab notes).  Both
# sides keep IPv6 as quiet as the lab's target does (no link-local address,
# router solicitations or DAD).


@dataclass
class Bench:
    host: str
    remote: str
    host_iface: str
    remote_iface: str
    host_ips: tuple[str, str]
    remote_ips: tuple[str, str]
    holder: subprocess.Popen | None = None     # a process "in the container"

    def in_host(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.host, *argv, check=check)

    def in_remote(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.remote, *argv, check=check)

    def sweep(self, cases, report: Path, *options: str, env: dict | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
        """The suite, run in the host namespace as a user would run it there."""
        return subprocess.run(
            ["ip", "netns", "exec", self.host, sys.executable, "-m", "pytest",
             "-p", "no:cacheprovider", "-p", "conformance.plugin", "-q", "-n", os.environ.get("BENCH_WORKERS", "0"),
             *map(str, cases if isinstance(cases, (list, tuple)) else [cases]),
             f"--report={report}", *options],
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **(env or {})})

    def guard_tables(self) -> list[str]:
        return [line for line in self.in_host("nft", "list", "tables").splitlines()
                if "tcpconf_guard" in line]

    def start_in_remote(self, *argv: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.remote, *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def destroy(self) -> None:
        if self.holder is not None:
            stop(self.holder)
        for ns in (self.remote, self.host):
            run("ip", "netns", "delete", ns, check=False)


def stop(process: subprocess.Popen) -> None:
    """End a process this test started, by its PID."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _namespaces(tag: str) -> tuple[str, str]:
    host, remote = f"{PREFIX}-{tag}-tester", f"{PREFIX}-{tag}-target"
    run("ip", "netns", "add", host)
    run("ip", "netns", "add", remote)
    for ns in (host, remote):
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for key, value in TARGET_IPV6_SYSCTLS.items():
            run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")
    run("ip", "netns", "exec", remote, "sysctl", "-qw", "net.ipv4.tcp_invalid_ratelimit=0")
    return host, remote


def _address(ns: str, iface: str, ip4: str, ip6: str, prefix6: int = 64) -> None:
    run("ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", iface)
    run("ip", "-n", ns, "addr", "add", f"{ip6}/{prefix6}", "dev", iface, "nodad")


def point_to_point() -> Bench:
    """A host and a remote device on one cable."""
    tag = f"{os.getpid()}-{next(_numbers)}"
    host, remote = _namespaces(tag)
    bench = Bench(host, remote, "bench0", "bench1", ("198.18.5.1", "2001:2:0:5::1"),
                  ("198.18.5.2", "2001:2:0:5::2"))
    try:
        run("ip", "-n", host, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1",
            "netns", remote)
        _address(host, "bench0", *bench.host_ips)
        _address(remote, "bench1", *bench.remote_ips)
        run("ip", "netns", "exec", remote, "ethtool", "-K", "bench1", "tx", "off", "tso", "off",
            "gso", "off")
        run("ip", "-n", host, "link", "set", "bench0", "up")
        run("ip", "-n", remote, "link", "set", "bench1", "up")
    except BaseException:
        bench.destroy()
        raise
    return bench


CONTAINER_MAC = "02:42:c6:12:06:02"


def bridged_container() -> Bench:
    """A host with a bridge, and a "container" namespace on it, held by a
    process whose PID stands for the container's (as docker inspect reports
    State.Pid).  Offloads stay as veth makes them: the suite must turn them off."""
    tag = f"{os.getpid()}-{next(_numbers)}"
    host, remote = _namespaces(tag)
    bench = Bench(host, remote, "br-bench", "eth0", ("198.18.6.1", "2001:2:0:6::1"),
                  ("198.18.6.2", "2001:2:0:6::2"))
    try:
        run("ip", "-n", host, "link", "add", "br-bench", "type", "bridge")
        run("ip", "-n", host, "link", "add", "veth-bench", "type", "veth", "peer", "name", "eth0",
            "address", CONTAINER_MAC, "netns", remote)
        run("ip", "-n", host, "link", "set", "veth-bench", "master", "br-bench")
        _address(host, "br-bench", *bench.host_ips)
        _address(remote, "eth0", *bench.remote_ips)
        for ns, iface in ((host, "br-bench"), (host, "veth-bench"), (remote, "eth0")):
            run("ip", "-n", ns, "link", "set", iface, "up")
        bench.holder = subprocess.Popen(["ip", "netns", "exec", remote, "sleep", "3600"])
    except BaseException:
        bench.destroy()
        raise
    return bench


def fake_engine(directory: Path, bench: Bench, name: str, running: bool = True) -> Path:
    """A `docker` command that knows one container: the bench's namespace.

    It stands in for the container engine's command line only (inspect and
    exec -i), never for a TCP stack: the target is the kernel's stack in the
    bench namespace.  inspect prints what docker prints for these fields."""
    info = [{
        "Id": "0" * 64, "Name": f"/{name}",
        "State": {"Status": "running" if running else "exited", "Running": running,
                  "Pid": bench.holder.pid if running else 0},
        "NetworkSettings": {"Networks": {"bench": {
            "IPAddress": bench.remote_ips[0], "IPPrefixLen": 24, "Gateway": bench.host_ips[0],
            "GlobalIPv6Address": bench.remote_ips[1], "GlobalIPv6PrefixLen": 64,
            "IPv6Gateway": bench.host_ips[1], "MacAddress": CONTAINER_MAC}}},
    }]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inspect.json").write_text(json.dumps(info))
    script = directory / "docker"
    script.write_text(f"""#!/bin/sh
# A stand-in for the docker CLI: inspect and exec -i for the container {name}.
case "$1" in
  inspect)
    for last; do :; done
    [ "$last" = "{name}" ] || {{ echo "Error: No such container: $last" >&2; exit 1; }}
    cat "{directory / 'inspect.json'}" ;;
  exec)
    shift; [ "$1" = "-i" ] && shift
    [ "$1" = "{name}" ] || {{ echo "Error: No such container: $1" >&2; exit 1; }}
    shift
    exec nsenter --net=/proc/{bench.holder.pid}/ns/net "$@" ;;
  *) echo "fake docker: $1 is not supported" >&2; exit 2 ;;
esac
""")
    script.chmod(0o755)
    return directory
