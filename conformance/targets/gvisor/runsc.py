"""runsc's command lines, and the directory each sandbox keeps its files in.

Traps handled here (see targets/gvisor/README.md):
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
* The sandbox's control socket is an abstract Unix socket, which belongs to
  the network namespace the sandbox joined: every other runsc subcommand
  (kill, delete, exec) runs there too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ...lab import pid_alive

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
# A sandbox's directory is TMP_PREFIX<owner pid>-XXXX in the temporary directory.
TMP_PREFIX = "tcpconf-gvisor-"


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def version(runsc: str) -> str:
    out = subprocess.run([runsc, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


class SandboxDir:
    """One sandbox's temporary directory (runsc's state, the bundle, runsc's logs)
    and the runsc command lines that use it."""

    def __init__(self, runsc: str, target_ns: str, extra_flags: tuple[str, ...] = (),
                 pcap: bool = False, debug: bool = False):
        self.runsc, self.target_ns = runsc, target_ns
        self.extra_flags, self.pcap, self.debug = extra_flags, pcap, debug
        # The owner's PID in the name: reap_stale_sandboxes() knows whose it is.
        self.path = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))

    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    @property
    def bundle_dir(self) -> Path:
        return self.path / "bundle"

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    def make(self) -> None:
        for d in (self.state_dir, self.bundle_dir, self.log_dir):
            d.mkdir()

    def argv(self, *subcommand: str) -> list[str]:
        flags = [f"--root={self.state_dir}", *RUNSC_FLAGS, *self.extra_flags,
                 f"--log={self.log_dir / 'runsc.log'}",
                 # Where the sentry's Go runtime writes a panic: panic_message() reads it.
                 f"--panic-log={self.log_dir / 'panic.log'}"]
        if self.debug:
            flags += ["--debug", f"--debug-log={self.log_dir}/"]
        if self.pcap:
            flags.append(f"--pcap-log={self.log_dir / 'netstack.pcap'}")
        return [self.runsc, *flags, *subcommand]

    def run_argv(self, container_id: str) -> list[str]:
        """`runsc run` of the bundle, inside the target namespace, under the mask."""
        return ["ip", "netns", "exec", self.target_ns, "sh", "-c", LAUNCH_SCRIPT, "sh",
                *self.argv("run", f"--bundle={self.bundle_dir}", container_id)]

    def command(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        """Run a runsc subcommand (state, exec, kill, delete, ...) on this sandbox.

        It runs inside the target network namespace: the sandbox's control
        socket is an abstract Unix socket, which belongs to the network
        namespace the sandbox joined; from any other namespace runsc cannot
        reach it and reports the container as "stopped"."""
        prefix = []
        if os.path.exists(netns_path(self.target_ns)):
            prefix = ["ip", "netns", "exec", self.target_ns]
        return subprocess.run([*prefix, *self.argv(*args)], capture_output=True,
                              text=True, timeout=timeout)

    def try_command(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess | None:
        """command(), or None when runsc could not be run or did not finish in time."""
        try:
            return self.command(*args, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None

    # -- runsc's logs ----------------------------------------------------------------

    def log(self, name: str) -> str:
        """One of runsc's log files, or "" when there is none (yet, or any more)."""
        try:
            return (self.log_dir / name).read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log("runsc.log").splitlines()[-lines:])

    def panic_message(self) -> str:
        """The sentry's panic ("panic: ..."), from the log --panic-log names."""
        lines = self.log("panic.log").strip().splitlines()
        return next((line.strip() for line in lines if line.startswith("panic")),
                    lines[0] if lines else "")

    def remove(self, keep_logs: str | None = None) -> None:
        """Delete the directory, after copying the logs into `keep_logs` if given."""
        if keep_logs and self.log_dir.exists():
            shutil.copytree(self.log_dir, keep_logs, dirs_exist_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)


def reap_stale_sandboxes() -> list[str]:
    """Remove what a killed run left: for every sandbox directory whose owner PID
    is gone, SIGKILL (by PID) the runsc processes whose command line names that
    directory, then delete the directory."""
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
