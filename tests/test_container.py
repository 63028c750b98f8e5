"""Container targets, tested against real docker (a stand-in only where it cannot run).

test_real_docker: a dockerd of the tests' own runs in a network namespace of their own
(tests/docker_bench.py), with the reference image (containers/target) built on a
Debian made with debootstrap, and the container started as
containers/compose.yaml starts it.  The suite runs in that namespace, where
docker's bridge is, as a user runs it on the container's host: it is given the
container's name and finds the rest with `docker inspect`.

test_stand_in_*: only where docker.io or debootstrap is not installed (or the tests
do not run as root), a namespace plays the container and a stand-in `docker`
command answers `inspect` and `exec -i` for it (tests/bench.py).  Those tests
are skipped wherever real docker can run, and test_real_docker is skipped with
the reason docker could not: a stand-in result never passes for a real one.
Installed but failing to start is a failure, and with TCPCONF_REQUIRE_DOCKER
(.ci/run) so is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import netns
from conformance.lab import PREFIX, LabError, new_tag, run
from conformance.targets.container import discover

from . import docker_bench
from .bench import CONTAINER_MAC, REPO, Bench, bridged_container, fake_engine, stop
from .conftest import CASES, lab_namespaces

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

HOLD = REPO / "containers" / "target" / "tcpconf-hold.py"
LINUX_BASELINE = REPO / "baselines" / "linux.yaml"

# The agent sweep: a handful of case files across the catalogue's topics, three of
# them with deviations of Linux's that baselines/linux.yaml lists (syn-with-data,
# missing-tsopt, syn-fin-urg-psh-to-listener), each swept against the container
# and against the lab.
AGENT_CASES = [CASES / "handshake" / "passive-open.yaml", CASES / "handshake" / "active-open.yaml",
               CASES / "handshake" / "closed-port.yaml", CASES / "handshake" / "syn-with-data.yaml",
               CASES / "rst" / "rst-closing-states.yaml", CASES / "options" / "timestamps.yaml",
               CASES / "probes" / "listener-probes.yaml"]
BLIND_CASES = [CASES / "handshake" / "passive-open.yaml", CASES / "rst" / "rst-to-listen.yaml"]


@dataclass
class Container:
    """What a test needs of the container, whichever engine runs it."""

    kind: str                   # "docker" or "stand-in"
    name: str
    env: dict                   # under which `docker` is that engine's client
    host_ns: str                # where the container's bridge is: the suite runs here
    scratch_ns: str             # a namespace holding no gateway
    iface: str                  # the bridge
    addresses: tuple[str, str]
    mac: str
    pid_of: callable
    offloads: callable          # ethtool -k of the container's eth0
    sweep: callable             # (cases, report, *options) -> CompletedProcess
    stopped: callable           # a context manager: (env, name) of a container that is not running
    bench: object = None


def _guard_tables(ns: str) -> list[str]:
    return [line for line in run("ip", "netns", "exec", ns, "nft", "list", "tables").splitlines()
            if "tcpconf_guard" in line]


@pytest.fixture(scope="module")
def real_docker(request):
    why_not = docker_bench.unavailable()
    if why_not and os.environ.get("TCPCONF_REQUIRE_DOCKER"):
        # CI (.ci/run) must sweep a container through real docker, never skip it.
        pytest.fail(f"TCPCONF_REQUIRE_DOCKER is set, but real docker cannot run here: "
                    f"{why_not}", pytrace=False)
    if why_not:
        pytest.skip(f"real docker cannot run here ({why_not}): the container tests ran "
                    f"against the stand-in docker command only (test_stand_in_*)")
    yield from _real_docker(request)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    if docker_bench.unavailable() is None:
        pytest.skip("real docker runs here (test_real_docker): the stand-in docker command is "
                    "kept only for machines where docker.io or debootstrap is missing")
    yield from _stand_in(tmp_path_factory)


def _real_docker(request):
    docker = docker_bench.Docker()
    # Named as the lab names a target namespace, so a killed run's is removed too.
    scratch = f"{PREFIX}-{new_tag()}-target"
    started = time.monotonic()
    try:
        docker.start()
        timings = docker_bench.Timings()
        target = docker_bench.start_target(docker, timings)
        ready = time.monotonic() - started
        # The cost of real docker, in the test log (a CI machine starts cold).
        said = (f"real docker ready in {ready:.1f} s (debootstrap "
                f"{'cached' if timings.debootstrap is None else f'{timings.debootstrap:.1f} s'}, "
                f"import {timings.import_base:.1f} s, build {timings.build:.1f} s)")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(said)
        else:       # a pytest-xdist worker: shown with the test's captured output
            print(said)
        run("ip", "netns", "add", scratch)

        @contextmanager
        def stopped():
            """A second container of the image, created and never started."""
            docker.cli("create", "--name", "tcpconf-stopped", "--network", target.network,
                       target.image)
            try:
                yield docker.env, "tcpconf-stopped"
            finally:
                docker.cli("rm", "-f", "tcpconf-stopped", check=False)

        yield Container(
            kind="docker", name=target.name, env=docker.env, host_ns=docker.netns,
            scratch_ns=scratch, iface=target.bridge, addresses=target.addresses,
            mac=target.inspect()["NetworkSettings"]["Networks"][target.network]["MacAddress"],
            pid_of=lambda: target.pid,
            offloads=lambda: target.in_container_netns("ethtool", "-k", "eth0"),
            sweep=docker.sweep, stopped=stopped, bench=docker)
    finally:
        run("ip", "netns", "delete", scratch, check=False)
        docker.stop()
        # Its own namespaces only: other workers build and remove labs meanwhile.
        assert {docker.netns, scratch}.isdisjoint(lab_namespaces())
        assert not docker.dir.exists()


def _stand_in(tmp_path_factory):
    name = "tcpconf-bench-target"
    bench: Bench = bridged_container()
    try:
        engine = fake_engine(tmp_path_factory.mktemp("engine"), bench, name)
        env = {"PATH": f"{engine}:{os.environ['PATH']}"}

        @contextmanager
        def stopped():
            directory = fake_engine(tmp_path_factory.mktemp("stopped"), bench, name,
                                    running=False)
            yield {"PATH": f"{directory}:{os.environ['PATH']}"}, name

        def sweep(cases, report, *options):
            return bench.sweep(cases, report, *options, env=env)

        yield Container(
            kind="stand-in", name=name, env=env, host_ns=bench.host, scratch_ns=bench.remote,
            iface=bench.host_iface, addresses=bench.remote_ips, mac=CONTAINER_MAC,
            pid_of=lambda: bench.holder.pid,
            offloads=lambda: bench.in_remote("ethtool", "-k", "eth0"),
            sweep=sweep, stopped=stopped, bench=bench)
    finally:
        bench.destroy()
        assert {bench.host, bench.remote}.isdisjoint(lab_namespaces())


@contextmanager
def environment(env: dict):
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_discovery_finds_namespace_addresses_and_bridge(container):
    # Discovery reads the host's interfaces: run it where the bridge is.
    with environment(container.env), netns.entered(container.host_ns):
        found = discover("docker", container.name)
    pid = container.pid_of()
    assert found.pid == pid
    assert found.netns == f"/proc/{pid}/ns/net"
    assert found.addresses == container.addresses
    assert found.iface == container.iface and found.container_iface == "eth0"
    assert found.mac == container.mac.lower()


def check_discovery_says_what_is_wrong(container):
    with environment(container.env), netns.entered(container.host_ns), pytest.raises(
            LabError, match="No such container: nope"):
        discover("docker", "nope")
    # Run where no interface holds the gateway (an empty namespace of the test's).
    with environment(container.env), netns.entered(container.scratch_ns), pytest.raises(
            LabError, match="no interface of this host holds the gateway address"):
        discover("docker", container.name)
    with container.stopped() as (env, name), environment(env), \
            netns.entered(container.host_ns), pytest.raises(LabError, match="is not running"):
        discover("docker", name)


def verdicts(report: Path) -> list[tuple[str, str, str]]:
    data = json.loads((report / "latest" / "results.json").read_text())
    return sorted((r["case"], r["family"], r["status"]) for r in data["records"])


def check_sweep_by_name_with_its_agent(container, tmp_path):
    """--container NAME is all the user gives: the agent runs through
    `docker exec -i NAME python3 -`, the offloads are off during the run and
    back on after it, and nothing is left in the host's nftables.  Against real
    docker the verdicts are the lab's, case by case (the target is the same
    kernel's stack), and the Linux baseline holds."""
    assert "tx-checksumming: on" in container.offloads()
    cases = AGENT_CASES if container.kind == "docker" else AGENT_CASES[:2]
    result = container.sweep(cases, tmp_path, "--target", "container", "--container",
                             container.name, "--container-engine", "docker",
                             "--baseline", str(LINUX_BASELINE))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (f"TCP conformance: container: the docker container {container.name}, at the "
            f"address(es) its engine reports") in output
    data = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert {r["family"] for r in data["records"]} == {"ipv4", "ipv6"}
    settings = data["run"]["targets"]["container"]
    assert settings["container"].startswith(f"{container.name} (docker), PID {container.pid_of()}")
    assert f"docker exec -i {container.name} python3 -" in settings["agent"]
    gateway4 = "198.18.100.1" if container.kind == "docker" else "198.18.6.1"
    assert settings["link ipv4"].startswith(f"{gateway4} ")
    assert f" on {container.iface} " in settings["link ipv4"]
    assert "turned off for the run: tx, tso, gso" in settings["container interface offloads"]
    assert "tx-checksumming: on" in container.offloads()      # put back
    assert _guard_tables(container.host_ns) == []
    if container.kind == "stand-in":
        assert {r["status"] for r in data["records"]} == {"pass"}
        return
    lab = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "-q", "-n", "0", *map(str, cases), f"--report={tmp_path / 'lab'}", "--target", "linux",
         "--baseline", str(LINUX_BASELINE)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert lab.returncode == 0, lab.stdout + lab.stderr
    assert verdicts(tmp_path) == verdicts(tmp_path / "lab")
    assert len(verdicts(tmp_path)) >= 40
    assert "known" in {status for _, _, status in verdicts(tmp_path)}


def check_sweep_blind(container, tmp_path):
    """--black-box: no agent in the container; its own service on port 9
    (the image's tcpconf-hold; with the stand-in, started in the namespace)."""
    hold = None
    if container.kind == "stand-in":
        hold = subprocess.Popen(["ip", "netns", "exec", container.scratch_ns, "python3",
                                 str(HOLD), "--port", "9", "--hold", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if hold is not None:
            assert hold.stdout.readline().strip() == "tcpconf-hold: listening on port 9"
        result = container.sweep(BLIND_CASES, tmp_path, "--target", "container", "--container",
                                 container.name, "--black-box", "--remote-port", "9")
    finally:
        if hold is not None:
            stop(hold)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "latest" / "results.json").read_text())
    found = {(r["case"], r["family"]): r["status"] for r in data["records"]}
    assert found[("rst.to-listen", "ipv6")] == "pass"
    assert found[("handshake.passive-open", "ipv4")] == "n/a"


def test_real_docker(real_docker, tmp_path):
    """The reference container in real docker: discovered by name, discovery's
    errors, swept with its agent (the lab's verdicts) and blind.  One test, so
    that pytest-xdist starts one dockerd, not one per worker (xdist 3.8's
    loadgroup cannot group tests under pytest 9.2, whose nodes no longer read
    the _nodeid it rewrites)."""
    check_discovery_finds_namespace_addresses_and_bridge(real_docker)
    check_discovery_says_what_is_wrong(real_docker)
    (tmp_path / "agent").mkdir()
    check_sweep_by_name_with_its_agent(real_docker, tmp_path / "agent")
    (tmp_path / "blind").mkdir()
    check_sweep_blind(real_docker, tmp_path / "blind")


def test_stand_in_discovery_finds_namespace_addresses_and_bridge(stand_in):
    check_discovery_finds_namespace_addresses_and_bridge(stand_in)


def test_stand_in_discovery_says_what_is_wrong(stand_in):
    check_discovery_says_what_is_wrong(stand_in)


def test_stand_in_sweep_by_name_with_its_agent(stand_in, tmp_path):
    check_sweep_by_name_with_its_agent(stand_in, tmp_path)


def test_stand_in_sweep_blind(stand_in, tmp_path):
    check_sweep_blind(stand_in, tmp_path)
