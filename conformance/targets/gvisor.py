"""gVisor's netstack as a lab target: the suite's agent inside a runsc sandbox.

    tester namespace                     target namespace (the lab's)
    +----------------------+             +-------------------------------------+
    | tester0, no address  | <---------> | target0: no address left on the     |
    | injector, responder  |    veth     |   host side; runsc reads it through |
    +----------------------+             |   an AF_PACKET socket               |
                                         | runsc sandbox (ptrace platform):    |
                                         |   netstack owns 198.18.0.2 and      |
                                         |   2001:2::2; the agent runs in it   |
                                         +-------------------------------------+

`GvisorSandbox(target_ns).start()` writes an OCI bundle into a temporary
directory (root file system: the host's / bound read-only, so the host's
python3 runs inside; the process: the agent bootstrap; the network
namespace: /var/run/netns/<target_ns>), starts `runsc run` with stdin and
stdout piped, and returns a `conformance.agent_client.AgentClient` that has
done the agent's handshake.  `stop()` ends the agent, kills and deletes the
container through runsc, kills by PID whatever runsc started that is still
alive, and removes the temporary directory.

runsc with `--network=sandbox` copies every address, route and permanent
neighbour entry of the namespace's interfaces into netstack and deletes the
addresses from the host interface (so the host kernel no longer answers for
them; deleting the last IPv4 address also makes the kernel flush the IPv4
neighbour entries, permanent ones included).  runsc does not put anything
back: `stop()` does (addresses and permanent neighbour entries), unless told
not to.  Because the lab's permanent entries for the tester are copied as
static entries, netstack never asks ARP or neighbour discovery for the tester
while they exist when the sandbox starts.

Traps handled here (see README.md):
* runsc decides it is in the root network namespace when
  /proc/sys/net/core/rmem_default exists, which recent kernels show in every
  namespace; it then refuses to start.  The runsc process therefore runs
  under `ip netns exec <target_ns>` (a private mount namespace, inside the
  target network namespace) with a tmpfs mounted over /proc/sys/net/core.
* runsc's defaults do not suit a conformance target: RX checksum offload is
  on (netstack would accept segments with a wrong checksum) and GSO makes
  netstack build segments larger than the MSS for the link to cut.  Both are
  switched off.
* runsc writes its own log to stdout unless told otherwise; stdout carries the
  agent protocol, so the log goes to a file.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..agent_bootstrap import bootstrap_command
from ..agent_client import AgentClient, AgentFailure
from ..lab import Lab, LabError, pid_alive
from . import HELD, Target

NETNS_DIR = "/var/run/netns"
# The flags that make runsc usable here (lab notes) and faithful as a target.
RUNSC_FLAGS = (
    "--network=sandbox",          # netstack, on the namespace's interfaces
    "--platform=ptrace",          # the KVM platform hangs on this machine
    "--ignore-cgroups",           # no cgroup set-up for a lab process
    "--rx-checksum-offload=false",  # netstack verifies checksums itself
    "--tx-checksum-offload=false",  # and computes them (the default)
    "--gso=false",                # no host segmentation offload
    "--software-gso=false",       # nor netstack's own: segments <= MSS
)
# Mounted over /proc/sys/net/core so runsc's root-namespace test says "no".
MASK_SOURCE = "tcpconf-gvisor-mask"
LAUNCH_SCRIPT = ('mount -t tmpfs -o size=4k,mode=0555 %s /proc/sys/net/core '
                 '&& exec "$@"' % MASK_SOURCE)


class GvisorError(Exception):
    """The sandbox cannot be started or stopped; the message says why."""


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process from a later one with its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def descendants(pid: int) -> list[int]:
    """The PIDs of all live descendants of `pid` (not `pid` itself)."""
    children = _proc_children()
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


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


TMP_PREFIX = "tcpconf-gvisor-"
# Sysctls as netstack shows them inside the sandbox (runsc exec ... cat); only
# some are real knobs in gVisor (tcp_sack, tcp_recovery, tcp_rmem, tcp_wmem,
# ip_local_port_range), the others are fixed values its /proc presents.
REPORTED_SYSCTLS = ("tcp_sack", "tcp_timestamps", "tcp_recovery", "tcp_rmem", "tcp_wmem",
                    "tcp_congestion_control", "tcp_syn_retries", "tcp_synack_retries",
                    "tcp_rfc1337", "tcp_invalid_ratelimit", "ip_local_port_range")


def reap_stale_sandboxes() -> list[str]:
    """Remove what a killed run left: for every temporary directory of this
    module whose owner PID is gone, SIGKILL (by PID) the runsc processes whose
    command line names that directory, then delete the directory."""
    reaped = []
    tmp = Path(tempfile.gettempdir())
    for path in tmp.glob(f"{TMP_PREFIX}*-*"):
        owner = path.name[len(TMP_PREFIX):].split("-", 1)[0]
        if not owner.isdigit() or pid_alive(int(owner)):
            continue
        marker = f"--root={path}/state".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if marker in cmdline.split(b"\0"):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(path, ignore_errors=True)
        reaped.append(str(path))
    return reaped


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
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.agent: AgentClient | None = None
        self._known: dict[int, str] = {}            # pid -> start time, of what runsc started
        self._stolen: list[tuple[str, str]] = []    # addresses runsc took from the host side
        self.neighbours: list[tuple[str, str, str]] = []  # permanent entries netstack copied

    # ------------------------------------------------------------ paths

    @property
    def state_dir(self) -> Path:
        return self.tmpdir / "state"

    @property
    def bundle_dir(self) -> Path:
        return self.tmpdir / "bundle"

    @property
    def log_dir(self) -> Path:
        return self.tmpdir / "logs"

    def runsc_argv(self, *subcommand: str) -> list[str]:
        flags = [f"--root={self.state_dir}", *RUNSC_FLAGS, *self.extra_flags,
                 f"--log={self.log_dir / 'runsc.log'}",
                 # Where the sentry's Go runtime writes a panic: post_mortem() reads it.
                 f"--panic-log={self.log_dir / 'panic.log'}"]
        if self.debug:
            flags += ["--debug", f"--debug-log={self.log_dir}/"]
        if self.pcap:
            flags.append(f"--pcap-log={self.log_dir / 'netstack.pcap'}")
        return [self.runsc, *flags, *subcommand]

    # ------------------------------------------------------------ bundle

    def spec(self) -> dict:
        """The OCI runtime spec: the host's / read-only, the agent bootstrap as the
        process, the lab's target namespace as the network namespace."""
        caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
        return {
            "ociVersion": "1.0.0",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": bootstrap_command(self.python),
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "PYTHONDONTWRITEBYTECODE=1", "LANG=C.UTF-8"],
                "cwd": "/",
                "capabilities": {kind: caps for kind in
                                 ("bounding", "effective", "inheritable", "permitted")},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            },
            "root": {"path": "/", "readonly": True},
            "hostname": "gvisor-target",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
            ],
            "linux": {
                "namespaces": [
                    {"type": "pid"},
                    {"type": "network", "path": os.path.join(NETNS_DIR, self.target_ns)},
                    {"type": "ipc"},
                    {"type": "uts"},
                    {"type": "mount"},
                ],
            },
        }

    # ------------------------------------------------------------ start

    def start(self, timeout: float = 30.0) -> AgentClient:
        """Start the sandbox and the agent in it; returns the agent's client."""
        if self.agent is not None:
            return self.agent
        if shutil.which(self.runsc) is None:
            raise GvisorError("runsc is not installed: apt-get install runsc")
        if not os.path.exists(os.path.join(NETNS_DIR, self.target_ns)):
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
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        try:
            for d in (self.state_dir, self.bundle_dir, self.log_dir):
                d.mkdir()
            (self.bundle_dir / "config.json").write_text(json.dumps(self.spec(), indent=1))
            argv = ["ip", "netns", "exec", self.target_ns, "sh", "-c", LAUNCH_SCRIPT, "sh",
                    *self.runsc_argv("run", f"--bundle={self.bundle_dir}", self.container_id)]
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
            self._remember_processes()
            return client
        except BaseException:
            self.stop()
            raise

    def _remember_processes(self) -> None:
        if self.proc is None:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            started = _start_time(pid)
            if started is not None:
                self._known.setdefault(pid, started)

    def _log(self, name: str) -> str:
        """One of runsc's log files, or "" when there is none (yet, or any more)."""
        if self.tmpdir is None:
            return ""
        try:
            return (self.log_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log("runsc.log").splitlines()[-lines:])

    def panic_message(self) -> str:
        """The sentry's panic ("panic: ..."), from the log --panic-log names."""
        lines = self._log("panic.log").strip().splitlines()
        return next((line.strip() for line in lines if line.startswith("panic")),
                    lines[0] if lines else "")

    # ------------------------------------------------------------ stop

    def runsc_command(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        """Run a runsc subcommand (state, exec, kill, delete, ...) on this sandbox.

        It runs inside the target network namespace: the sandbox's control
        socket is an abstract Unix socket, which belongs to the network
        namespace the sandbox joined; from any other namespace runsc cannot
        reach it and reports the container as "stopped"."""
        prefix = []
        if os.path.exists(os.path.join(NETNS_DIR, self.target_ns)):
            prefix = ["ip", "netns", "exec", self.target_ns]
        return subprocess.run([*prefix, *self.runsc_argv(*args)], capture_output=True,
                              text=True, timeout=timeout)

    def _runsc(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess | None:
        try:
            return self.runsc_command(*args, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None

    def stop(self) -> None:
        """End everything start() began; safe to call more than once and at any point."""
        if self.proc is not None:
            self._remember_processes()
        if self.agent is not None:
            self.agent.close()          # quit, then terminate/kill the runsc run process
            self.agent = None
        if self.tmpdir is not None and self.state_dir.exists():
            self._runsc("kill", "--all", self.container_id, "KILL")
            self._runsc("delete", "--force", self.container_id)
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
        self._kill_leftovers()
        self.proc = None
        if self.restore_addresses and self._stolen:
            self._put_addresses_back()
        self._stolen = []
        if self.tmpdir is not None:
            if self.keep_logs and self.log_dir.exists():
                shutil.copytree(self.log_dir, self.keep_logs, dirs_exist_ok=True)
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def _kill_leftovers(self) -> None:
        """SIGKILL, by PID, every process runsc started that is still the same process."""
        deadline = time.monotonic() + 5
        while self._known and time.monotonic() < deadline:
            alive = {pid: t for pid, t in self._known.items() if _start_time(pid) == t}
            self._known = alive
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if alive:
                time.sleep(0.05)
        self._known = {}

    def _put_addresses_back(self) -> None:
        if not os.path.exists(os.path.join(NETNS_DIR, self.target_ns)):
            return
        for iface, address in self._stolen:
            argv = ["ip", "-n", self.target_ns, "addr", "replace", address, "dev", iface]
            if ":" in address:
                argv.append("nodad")
            subprocess.run(argv, capture_output=True)
        for iface, address, mac in self.neighbours:
            subprocess.run(["ip", "-n", self.target_ns, "neigh", "replace", address, "lladdr",
                            mac, "dev", iface, "nud", "permanent"], capture_output=True)

    # ------------------------------------------------------------ report

    def version(self) -> str:
        out = subprocess.run([self.runsc, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else "?"

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
        return shlex.join(self.runsc_argv("run", "--bundle=BUNDLE", self.container_id))

    def __enter__(self) -> "GvisorSandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- the suite's target


class GvisorLab(Target):
    """gVisor's netstack in a lab the suite builds.

    The lab is the Linux lab unchanged: its permanent neighbour entries for
    the tester are copied by runsc into netstack as static entries, so no ARP
    or neighbour discovery happens and no responder is needed.  Linux sysctls
    do not apply to netstack, so there is no set_sysctl(): a case that needs
    one is not applicable here.

    States come from the /proc/net/tcp that gVisor shows inside the sandbox
    (it has no sock_diag), which lists only the sockets of the process that
    reads it: the agent's.  Hence ``state_view = HELD``."""

    name = "gvisor"
    state_view = HELD
    state_view_reason = ("gVisor lists only the sockets the application holds: not a "
                         "connection before accept(), nor one after close()")

    def __init__(self, sysctls: dict | None = None, tag: str | None = None,
                 python: str = "/usr/bin/python3"):
        kwargs = {"tag": tag} if tag else {}
        self.lab = Lab(**kwargs)
        self.sandbox = GvisorSandbox(self.lab.target_ns, python=python)
        self.agent = None
        # Asked for on the command line for every target; netstack has none of them.
        self.ignored_sysctls = dict(sysctls or {})

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        self.lab.build()
        try:
            self.agent = self.sandbox.start()
        except (GvisorError, AgentFailure, OSError) as exc:
            self.stop()
            raise LabError(f"gVisor did not start in {self.lab.target_ns}: {exc}") from None

    def stop(self) -> None:
        self.agent = None
        try:
            self.sandbox.stop()
        finally:
            self.lab.destroy()

    def alive(self) -> bool:
        """False once the sandbox is gone (netstack panics take the whole sandbox
        down, and the agent with it)."""
        return (self.agent is not None and self.agent.alive() and self.sandbox.proc is not None
                and self.sandbox.proc.poll() is None)

    def post_mortem(self) -> str:
        """The panic message of a sentry that died (the first line of its
        panic log: "panic: ..."), or nothing."""
        return self.sandbox.panic_message()

    def recover(self) -> None:
        """A fresh sandbox on the same lab after the previous one died: stop()
        puts the addresses and neighbour entries back, start() hands them to
        the new netstack."""
        self.agent = None
        self.sandbox.stop()
        try:
            self.agent = self.sandbox.start()
        except (GvisorError, AgentFailure, OSError) as exc:
            raise LabError(f"gVisor did not restart in {self.lab.target_ns}: {exc}") from None

    def settings(self) -> dict:
        values = self.sandbox.settings()
        values["link"] = self.lab.link_text
        if self.ignored_sysctls:
            values["IGNORED Linux sysctls"] = ", ".join(self.ignored_sysctls)
        return values

    def describe(self) -> str:
        return f"gvisor ({self.lab.target_ns})"
