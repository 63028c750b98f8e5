"""Real docker for the container tests: a dockerd of the suite's own, in a
network namespace of the suite's own, and the reference image built from a
local base.

    network namespace tcpconf-<pid>-<n>-docker (the suite runs here too)
    +-----------------------------------------------------------------+
    | dockerd, its own data root, exec root, pidfile and socket under |
    |   /var/tmp/tcpconf-docker/<pid>-<n>/                            |
    | docker0   198.18.99.1/24  2001:2:0:99::1/64   (--bip, unused)   |
    | tcpconf0  198.18.100.1/24 2001:2:0:100::1/64  (compose.yaml's)  |
    |   `- veth <---> container tcpconf-target 198.18.100.2, ::2      |
    +-----------------------------------------------------------------+

Why it is built this way:

* dockerd is started with ``nsenter --net=/run/netns/NS``, which changes the
  network namespace only.  ``ip netns exec`` also mounts a fresh /sys for the
  namespace (ip-netns(8)), which hides the cgroup hierarchies dockerd needs to
  start a container.  Every bridge, veth, address and iptables rule docker
  makes is then inside the namespace: the root namespace's interfaces are
  never configured, and no packet leaves namespaces the suite created.
* Every address docker may hand out lies in the lab's benchmarking ranges
  (198.18.0.0/15, RFC 2544; 2001:2::/48, RFC 5180): --bip, --fixed-cidr-v6 and
  --default-address-pool replace docker's 172.17.0.0/16 and its pools
  (dockerd(8)); the network the target is on is compose.yaml's.
* No registry is reachable here, so the base image is a Debian made with
  debootstrap (python3 included, from the mirror apt already uses) and loaded
  with ``docker import``; the reference image (containers/target/Dockerfile)
  is built on it with ``--build-arg BASE=...`` and ``--network none``.  The
  base's tarball is kept in /var/cache/tcpconf under a digest of what made it
  (suite, mirror, packages), so a second run on one machine skips debootstrap.
* Everything is named after the PID of the process that made it (the lab's
  convention, conformance/lab.py new_tag()), so what a killed run left (the
  namespace, dockerd and the processes under it, their mounts, the data root,
  the containers' cgroups) is removed at the next start; a process is ended
  only by a PID the suite recorded (a pidfile in the run's own directory, or a
  cgroup docker made for the run), and only if its command line names that
  directory or it is in that cgroup.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance.lab import (PREFIX, TARGET_IPV6_SYSCTLS, list_namespaces, new_tag, pid_alive,
                             run)

REPO = Path(__file__).resolve().parent.parent
CONTEXT = REPO / "containers" / "target"
COMPOSE = REPO / "containers" / "compose.yaml"

RUNS = Path("/var/tmp/tcpconf-docker")     # one directory per dockerd: <pid>-<n>
CACHE = Path(os.environ.get("TCPCONF_CACHE", "/var/cache/tcpconf"))
# docker.io's own client, which speaks the daemon's API version; another docker
# earlier on PATH (a newer static client, say) is not the one under test.
DOCKER_CLI = "/usr/bin/docker"

# The default bridge docker0 must exist (dockerd makes it at start); it gets
# addresses in the lab's ranges and is not used.  The pool is for networks
# created without a subnet: none here, but docker's own pools are 172.17/16 on.
BIP, FIXED_CIDR_V6, POOL = "198.18.99.1/24", "2001:2:0:99::/64", "base=198.18.96.0/22,size=24"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

_RUN_NAME = re.compile(r"^(\d+)-\d+$")
_NETNS_NAME = re.compile(rf"^{PREFIX}-(\d+)-\d+-docker$")


class DockerError(Exception):
    """Real docker could not be started or used; the message says why."""


def unavailable() -> str | None:
    """Why real docker cannot run here (a package missing, not root), or None.

    Only these make the container tests fall back to the stand-in: installed
    but failing to start is a failure, not a skip."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    missing = [pkg for pkg, path in (("docker.io", "/usr/sbin/dockerd"), ("docker.io", DOCKER_CLI),
                                     ("debootstrap", "/usr/sbin/debootstrap"))
               if not os.access(path, os.X_OK)]
    if missing:
        return (f"{' and '.join(sorted(set(missing)))} not installed "
                f"(apt-get install docker.io debootstrap; ./run test installs them)")
    return None


# --------------------------------------------------------------------- dockerd

@dataclass
class Docker:
    """One dockerd of the suite's own, in its own network namespace."""

    tag: str = field(default_factory=new_tag)
    process: subprocess.Popen | None = None

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.tag}-docker"

    @property
    def dir(self) -> Path:
        return RUNS / self.tag

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def cgroup_parent(self) -> str:
        return f"{PREFIX}-{self.tag}"

    @property
    def env(self) -> dict[str, str]:
        """The environment under which `docker` (first on PATH) is this dockerd's client."""
        return {"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.dir / "cli"),
                "PATH": f"{self.dir / 'bin'}:{os.environ['PATH']}"}

    def cli(self, *argv: str, check: bool = True, input: bytes | None = None,
            timeout: float = 120, stdin=None) -> subprocess.CompletedProcess:
        result = subprocess.run([DOCKER_CLI, *argv], input=input, stdin=stdin,
                                capture_output=True, timeout=timeout,
                                env={**os.environ, **self.env})
        if check and result.returncode != 0:
            raise DockerError(f"'docker {' '.join(argv)}' failed: "
                              f"{result.stderr.decode(errors='replace').strip()}")
        return result

    def start(self) -> None:
        remove_stale()
        self.dir.mkdir(parents=True)
        (self.dir / "bin").mkdir()
        (self.dir / "bin" / "docker").symlink_to(DOCKER_CLI)
        (self.dir / "cli").mkdir()
        # The machine's /etc/docker/daemon.json must not apply (its bip or pools
        # could be outside the lab's ranges, or conflict with the flags).
        (self.dir / "daemon.json").write_text("{}\n")
        run("ip", "netns", "add", self.netns)
        try:
            run("ip", "-n", self.netns, "link", "set", "lo", "up")
            # Interfaces docker makes stay quiet, as the lab's target does: no
            # router solicitations, no DAD, no SLAAC.
            for key, value in TARGET_IPV6_SYSCTLS.items():
                run("ip", "netns", "exec", self.netns, "sysctl", "-qw", f"{key}={value}")
            log = open(self.dir / "dockerd.log", "wb")
            self.process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "/usr/sbin/dockerd",
                 f"--config-file={self.dir / 'daemon.json'}",
                 f"--data-root={self.dir / 'data'}", f"--exec-root={self.dir / 'exec'}",
                 f"--pidfile={self.dir / 'dockerd.pid'}", f"--host=unix://{self.socket}",
                 f"--bip={BIP}", "--ipv6", f"--fixed-cidr-v6={FIXED_CIDR_V6}",
                 f"--default-address-pool={POOL}", f"--cgroup-parent={self.cgroup_parent}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C meant for pytest reaches dockerd only
                # through stop(), after the containers are gone.
                start_new_session=True)
            log.close()
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.process.poll() is not None:
                    raise DockerError(f"dockerd ended at start (status "
                                      f"{self.process.returncode}): {self.log_tail()}")
                if self.socket.exists() and self.cli("version", check=False,
                                                     timeout=10).returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise DockerError(f"dockerd did not answer within {START_TIMEOUT:.0f} s: "
                                      f"{self.log_tail()}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.dir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def in_netns(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.netns, *argv, check=check)

    def sweep(self, cases, report: Path, *options: str,
              timeout: float = 300) -> subprocess.CompletedProcess:
        """The suite, run where docker's bridges are, as a user runs it on the host."""
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "pytest",
             "-p", "no:cacheprovider", "-p", "conformance.plugin", "-q",
             "-n", os.environ.get("BENCH_WORKERS", "0"),
             *map(str, cases), f"--report={report}", *options],
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, **self.env})

    def stop(self) -> None:
        """Containers, dockerd (by its PID), what it left, the namespace, the directory."""
        if self.process is not None and self.process.poll() is None and self.socket.exists():
            ids = self.cli("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.cli("rm", "-f", *map(bytes.decode, ids), check=False, timeout=60)
        if self.process is not None:
            end(self.process.pid, lambda: self.process.poll() is not None)
            self.process.wait()
        cleanup(self.tag)


def end(pid: int, ended, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM a process the suite started, SIGKILL it if it lingers."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ended():
                return
            time.sleep(0.1)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _cgroup_dirs(parent: str) -> list[Path]:
    """The cgroups docker made for a run's containers (--cgroup-parent), deepest
    first, in a cgroup v2 tree or in every v1 hierarchy."""
    roots = [Path("/sys/fs/cgroup") / parent, *Path("/sys/fs/cgroup").glob(f"*/{parent}")]
    found = []
    for root in roots:
        if root.is_dir():
            found += [Path(d) for d, _, _ in os.walk(root)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cleanup(tag: str) -> None:
    """Remove what the dockerd of run `tag` made: its processes, mounts,
    cgroups, namespace and directory.  Used at the end of a run (after dockerd
    stopped and took its containers and containerd with it) and for runs a
    killed process left."""
    directory = RUNS / tag
    # dockerd, its containerd and the containerd shims, by the PIDs they wrote
    # in this run's directory; a PID is trusted only while its command line
    # still names the directory (a reused PID does not).
    # (Only where they are written: data/ holds the images' file trees.)
    for pidfile in [directory / "dockerd.pid", *(directory / "exec").glob("**/*.pid")]:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid > 1 and str(directory) in _cmdline(pid):
            end(pid, lambda pid=pid: not pid_alive(pid) or _zombie(pid))
    # The containers' processes: in the cgroups docker made for this run only.
    for _ in range(2):
        for cgroup in _cgroup_dirs(f"{PREFIX}-{tag}"):
            try:
                pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
            except OSError:
                continue
            for pid in pids:
                end(pid, lambda pid=pid: not pid_alive(pid) or _zombie(pid), timeout=5)
    for cgroup in _cgroup_dirs(f"{PREFIX}-{tag}"):
        try:
            cgroup.rmdir()
        except OSError:
            pass
    # Overlay and namespace mounts under the directory, deepest first.
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m == str(directory)
                         or m.startswith(f"{directory}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    netns = f"{PREFIX}-{tag}-docker"
    if netns in list_namespaces():
        run("ip", "netns", "delete", netns, check=False)
    shutil.rmtree(directory, ignore_errors=True)


def _zombie(pid: int) -> bool:
    """Ended, not yet reaped by its parent (dockerd reaps containerd itself)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def remove_stale() -> list[str]:
    """Clean up after runs whose process is gone (a crash, a kill -9)."""
    tags = set()
    if RUNS.is_dir():
        tags |= {d.name for d in RUNS.iterdir() if _RUN_NAME.match(d.name)}
    for name in list_namespaces():
        match = _NETNS_NAME.match(name)
        if match:
            tags.add(name[len(PREFIX) + 1:-len("-docker")])
    stale = sorted(t for t in tags
                   if int(t.split("-")[0]) != os.getpid() and not pid_alive(int(t.split("-")[0])))
    for tag in stale:
        cleanup(tag)
    return stale


# ---------------------------------------------------------------------- images

def apt_source(codename: str) -> str:
    """The mirror apt already uses for `codename` (one-line or deb822 sources):
    the only archive this machine is known to reach."""
    entries = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
                if "deb" in fields.get("Types", "").split():
                    entries += [(uri, suite) for uri in fields.get("URIs", "").split()
                                for suite in fields.get("Suites", "").split()]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], words[2]))
    for uri, suite in entries:
        if suite == codename:
            return uri
    raise DockerError(f"no apt source for {codename} in /etc/apt/sources.list(.d) to debootstrap "
                      f"from (set TCPCONF_DEBOOTSTRAP_MIRROR)")


def _os_release() -> dict[str, str]:
    text = Path("/etc/os-release").read_text()
    return {k: v.strip('"') for k, v in re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE)}


def base_recipe() -> dict[str, str]:
    """What the base image is made from; its digest names the cached tarball."""
    codename = os.environ.get("TCPCONF_DEBOOTSTRAP_SUITE") or _os_release()["VERSION_CODENAME"]
    mirror = os.environ.get("TCPCONF_DEBOOTSTRAP_MIRROR") or apt_source(codename)
    return {"suite": codename, "mirror": mirror, "variant": "minbase", "include": "python3",
            "arch": subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                                   text=True).stdout.strip()}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _locked(name: str):
    CACHE.mkdir(parents=True, exist_ok=True)
    lock = open(CACHE / f"{name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)       # one maker at a time; others wait and reuse
    return lock


@dataclass
class Timings:
    """Seconds each step of making the image took, for the test's report."""

    debootstrap: float | None = None        # None: the cached base was used
    import_base: float = 0.0
    build: float = 0.0


def base_tarball(timings: Timings) -> tuple[Path, str]:
    """A root filesystem tarball of the host's Debian release with python3,
    made once per recipe with debootstrap(8) and kept in the cache."""
    recipe = base_recipe()
    digest = _digest(json.dumps(recipe, sort_keys=True).encode())
    tarball = CACHE / f"base-{digest}.tar"
    with _locked("base"):
        if tarball.exists():
            return tarball, digest
        with tempfile.TemporaryDirectory(dir=CACHE, prefix="debootstrap-") as tmp:
            root = Path(tmp) / "root"
            started = time.monotonic()
            result = subprocess.run(
                ["/usr/sbin/debootstrap", f"--variant={recipe['variant']}",
                 f"--include={recipe['include']}", f"--arch={recipe['arch']}",
                 recipe["suite"], str(root), recipe["mirror"]],
                capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                log = root / "debootstrap" / "debootstrap.log"
                detail = log.read_text()[-2000:] if log.exists() else result.stderr[-2000:]
                raise DockerError(f"debootstrap {recipe['suite']} from {recipe['mirror']} "
                                  f"failed: {detail}")
            # The package lists and caches are not needed in a target (the
            # image never runs apt), so the tarball stays smaller.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (root / junk).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."],
                           check=True)
            partial.rename(tarball)
            timings.debootstrap = time.monotonic() - started
    return tarball, digest


def target_image(docker: Docker, timings: Timings) -> str:
    """The reference image (containers/target), built in `docker` on the local
    base.  Only the base is cached: `docker load` of a saved image took longer
    here (8.9 s) than `docker import` of the base and the build together
    (6.5 s + 2.2 s), so the image is built each time, and its tag carries the
    digest of the base and the build context."""
    tarball, base_digest = base_tarball(timings)
    context = sorted(p for p in CONTEXT.iterdir() if p.is_file())
    digest = _digest(base_digest.encode(), *(p.name.encode() + p.read_bytes() for p in context))
    base, image = f"tcpconf-base:{base_digest}", f"tcpconf-target:{digest}"
    started = time.monotonic()
    with open(tarball, "rb") as stream:
        docker.cli("import", "-", base, stdin=stream, timeout=300)
    timings.import_base = time.monotonic() - started
    started = time.monotonic()
    # --network none: the base has python3, so the RUN step installs nothing,
    # and a build never sends a packet anywhere.
    docker.cli("build", "-q", "--network", "none", "--build-arg", f"BASE={base}",
               "-t", image, str(CONTEXT), timeout=300)
    timings.build = time.monotonic() - started
    return image


# ------------------------------------------------------------------ the target

@dataclass
class Target:
    """The reference container, started as containers/compose.yaml starts it."""

    docker: Docker
    name: str
    image: str
    network: str
    bridge: str
    addresses: tuple[str, str]
    gateways: tuple[str, str]
    timings: Timings

    def inspect(self) -> dict:
        return json.loads(self.docker.cli("inspect", "--type", "container", self.name).stdout)[0]

    @property
    def pid(self) -> int:
        return int(self.inspect()["State"]["Pid"])

    def in_container_netns(self, *argv: str) -> str:
        return run("nsenter", f"--net=/proc/{self.pid}/ns/net", *argv)


def start_target(docker: Docker, timings: Timings, hold: float = 2.0) -> Target:
    """compose.yaml's network and service, made with the docker CLI (docker.io
    has no compose plugin); the service's command gets --hold so that a
    connection a case leaves in CLOSE-WAIT is gone within the test."""
    compose = yaml.safe_load(COMPOSE.read_text())
    (service,) = compose["services"].values()
    (net_key, attachment), = service["networks"].items()
    network = compose["networks"][net_key]
    image = target_image(docker, timings)
    create = ["network", "create", "--driver", network.get("driver", "bridge")]
    if network.get("enable_ipv6"):
        create.append("--ipv6")
    for key, value in (network.get("driver_opts") or {}).items():
        create += ["-o", f"{key}={value}"]
    for config in network["ipam"]["config"]:
        create += ["--subnet", config["subnet"], "--gateway", config["gateway"]]
    docker.cli(*create, network["name"])
    name = service["container_name"]
    argv = ["run", "-d", "--name", name, "--network", network["name"],
            "--ip", attachment["ipv4_address"], "--ip6", attachment["ipv6_address"]]
    for key, value in service["sysctls"].items():
        argv += ["--sysctl", f"{key}={value}"]
    docker.cli(*argv, image, *service["command"], "--hold", str(hold))
    target = Target(docker=docker, name=name, image=image, network=network["name"],
                    bridge=network["driver_opts"]["com.docker.network.bridge.name"],
                    addresses=(attachment["ipv4_address"], attachment["ipv6_address"]),
                    gateways=tuple(c["gateway"] for c in network["ipam"]["config"]),
                    timings=timings)
    # Ready once docker says the health check passed (compose's --wait).
    deadline = time.monotonic() + 30
    while (target.inspect()["State"].get("Health") or {}).get("Status") != "healthy":
        if time.monotonic() > deadline:
            raise DockerError(f"{name} did not become healthy: "
                              f"{docker.cli('logs', name, check=False).stderr.decode()}")
        time.sleep(0.3)
    return target
