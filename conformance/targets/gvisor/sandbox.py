"""One runsc sandbox in a lab's target namespace, hosting the suite's agent.

`GvisorSandbox(target_ns).start()` writes the OCI bundle (bundle.py) into a
temporary directory, starts `runsc run` (runsc.py) with stdin and stdout
piped, and returns a `conformance.agent_client.AgentClient` that has done the
agent's handshake.  `stop()` ends the agent, kills and deletes the container
through runsc, kills by PID whatever runsc started that is still alive
(processes.py), and removes the temporary directory.

runsc with `--network=sandbox` copies every address, route and permanent
neighbour entry of the namespace's interfaces into netstack and deletes the
addresses from the host interface (so the host kernel no longer answers for
them; deleting the last IPv4 address also makes the kernel flush the IPv4
neighbour entries, permanent ones included).  runsc does not put anything
back: `stop()` does (addresses and permanent neighbour entries), unless told
not to.  Because the lab's permanent entries for the tester are copied as
static entries, netstack never asks ARP or neighbour discovery for the tester
while they exist when the sandbox starts.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

from ...agent_client import AgentClient, AgentFailure
from .bundle import write_bundle
from .processes import StartedProcesses
from .runsc import RUNSC_FLAGS, SandboxDir, netns_path, reap_stale_sandboxes
from .runsc import version as runsc_version

# Sysctls as netstack shows them inside the sandbox (runsc exec ... cat); only
# some are real knobs in gVisor (tcp_sack, tcp_recovery, tcp_rmem, tcp_wmem,
# ip_local_port_range), the others are fixed values its /proc presents.
REPORTED_SYSCTLS = ("tcp_sack", "tcp_timestamps", "tcp_recovery", "tcp_rmem", "tcp_wmem",
                    "tcp_congestion_control", "tcp_syn_retries", "tcp_synack_retries",
                    "tcp_rfc1337", "tcp_invalid_ratelimit", "ip_local_port_range")


class GvisorError(Exception):
    """The sandbox cannot be started or stopped; the message says why."""


def _neighbours(ns: str) -> list[tuple[str, str, str]]:
    """(interface, address, MAC) of every permanent neighbour entry in namespace `ns`."""
    out = subprocess.run(["ip", "-n", ns, "-j", "neigh", "show", "nud", "permanent"],
                         capture_output=True, text=True, check=True).stdout
    return [(n["dev"], n["dst"], n["lladdr"]) for n in json.loads(out or "[]")
            if n.get("lladdr")]


def _addresses(ns: str) -> list[tuple[str, str]]:
    """(interface, address/prefix) of every global address in namespace `ns`."""
    out = subprocess.run(["ip", "-n", ns, "-j", "addr", "show"], capture_output=True,
                         text=True, check=True).stdout
    result = []
    for link in json.loads(out or "[]"):
        if "LOOPBACK" in link.get("flags", []):
            continue
        for info in link.get("addr_info", []):
            if info.get("scope") == "global":
                result.append((link["ifname"], f"{info['local']}/{info['prefixlen']}"))
    return result


def _put_back(ns: str, addresses: list[tuple[str, str]],
              neighbours: list[tuple[str, str, str]]) -> None:
    """Give the host side of `ns` the addresses and permanent entries runsc took."""
    if not os.path.exists(netns_path(ns)):
        return
    for iface, address in addresses:
        argv = ["ip", "-n", ns, "addr", "replace", address, "dev", iface]
        if ":" in address:
            argv.append("nodad")
        subprocess.run(argv, capture_output=True)
    for iface, address, mac in neighbours:
        subprocess.run(["ip", "-n", ns, "neigh", "replace", address, "lladdr",
                        mac, "dev", iface, "nud", "permanent"], capture_output=True)


class GvisorSandbox:
    """One runsc sandbox in a lab's target namespace, hosting the suite's agent."""

    def __init__(self, target_ns: str, python: str = "/usr/bin/python3", runsc: str = "runsc",
                 extra_flags: tuple[str, ...] = (), restore_addresses: bool = True,
                 pcap: bool = False, debug: bool = False, keep_logs: str | None = None):
        self.target_ns = target_ns
        self.python = python
        self.runsc = shutil.which(runsc) or runsc
        self.extra_flags = tuple(extra_flags)
        self.restore_addresses = restore_addresses
        self.pcap, self.debug = pcap, debug
        self.keep_logs = keep_logs      # a directory to copy runsc's logs (and pcap) into
        self.container_id = f"tcpconf-{target_ns.removeprefix('tcpconf-')}-{os.getpid()}"
        self.dir: SandboxDir | None = None
        self.proc: subprocess.Popen | None = None
        self.agent: AgentClient | None = None
        self._started = StartedProcesses()          # what runsc started, by PID
        self._stolen: list[tuple[str, str]] = []    # addresses runsc took from the host side
        self.neighbours: list[tuple[str, str, str]] = []  # permanent entries netstack copied

    @property
    def tmpdir(self):
        """The sandbox's temporary directory while it exists, else None."""
        return self.dir.path if self.dir is not None else None

    # ------------------------------------------------------------ start

    def start(self, timeout: float = 30.0) -> AgentClient:
        """Start the sandbox and the agent in it; returns the agent's client."""
        if self.agent is not None:
            return self.agent
        if shutil.which(self.runsc) is None:
            raise GvisorError("runsc is not installed: apt-get install runsc")
        if not os.path.exists(netns_path(self.target_ns)):
            raise GvisorError(f"no network namespace {self.target_ns}: build the lab first")
        self._stolen = _addresses(self.target_ns)
        # runsc copies these into netstack as static entries (so netstack sends
        # no ARP or neighbour solicitation for them); the kernel then flushes the
        # IPv4 ones when runsc deletes the last IPv4 address.
        self.neighbours = _neighbours(self.target_ns)
        if not self._stolen:
            raise GvisorError(f"{self.target_ns} has no global address for netstack to take "
                              "(a previous sandbox took them; the lab must put them back)")
        reap_stale_sandboxes()
        self.dir = SandboxDir(self.runsc, self.target_ns, self.extra_flags, self.pcap, self.debug)
        try:
            self.dir.make()
            write_bundle(self.dir.bundle_dir, self.python, netns_path(self.target_ns))
            argv = self.dir.run_argv(self.container_id)
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=-1,
                                         start_new_session=True)
            try:
                client = AgentClient.attach(self.proc, argv[:argv.index("run")], timeout)
            except AgentFailure as exc:
                log = self.log_tail()
                raise GvisorError(f"the agent did not start in the gVisor sandbox: {exc}"
                                  + (f"\nrunsc log:\n{log}" if log else "")) from None
            self.agent = client
            self._started.remember(self.proc.pid)
            return client
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 20) -> str:
        return self.dir.log_tail(lines) if self.dir is not None else ""

    def panic_message(self) -> str:
        """The sentry's panic ("panic: ..."), from the log --panic-log names."""
        return self.dir.panic_message() if self.dir is not None else ""

    # ------------------------------------------------------------ stop

    def runsc_command(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        """Run a runsc subcommand (state, exec, kill, delete, ...) on this sandbox,
        from its namespace (see SandboxDir.command)."""
        return self.dir.command(*args, timeout=timeout)

    def stop(self) -> None:
        """End everything start() began; safe to call more than once and at any point."""
        if self.proc is not None:
            self._started.remember(self.proc.pid)
        if self.agent is not None:
            self.agent.close()          # quit, then terminate/kill the runsc run process
            self.agent = None
        if self.dir is not None and self.dir.state_dir.exists():
            self.dir.try_command("kill", "--all", self.container_id, "KILL")
            self.dir.try_command("delete", "--force", self.container_id)
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.kill()
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        self._started.kill()
        self.proc = None
        if self.restore_addresses and self._stolen:
            _put_back(self.target_ns, self._stolen, self.neighbours)
        self._stolen = []
        if self.dir is not None:
            self.dir.remove(self.keep_logs)
            self.dir = None

    # ------------------------------------------------------------ report

    def version(self) -> str:
        return runsc_version(self.runsc)

    def sysctls(self, names=REPORTED_SYSCTLS) -> dict:
        """net.ipv4 sysctls as netstack presents them inside the sandbox."""
        script = "; ".join(f"printf '%s=%s\\n' {n} \"$(cat /proc/sys/net/ipv4/{n} 2>/dev/null)\""
                           for n in names)
        try:
            out = self.runsc_command("exec", self.container_id, "/bin/sh", "-c", script).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        values = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            values[f"net.ipv4.{key}"] = " ".join(value.split()) or "?"
        return values

    def settings(self) -> dict:
        values = {
            "stack": "gVisor netstack (runsc sandbox, ptrace platform)",
            "runsc": self.version(),
            "runsc flags": " ".join(RUNSC_FLAGS + self.extra_flags),
            "target system": (self.agent.hello.get("system", "?") if self.agent else "?"),
        }
        if self.agent is not None:
            values.update(self.sysctls())
        return values

    def describe(self) -> str:
        return f"gvisor ({self.target_ns}, container {self.container_id})"

    def command_line(self) -> str:
        """The runsc command as started (for the README and for debugging)."""
        return shlex.join(self.dir.argv("run", "--bundle=BUNDLE", self.container_id))

    def __enter__(self) -> "GvisorSandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
