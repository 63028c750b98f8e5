"""Container targets, tested against a namespace (no container engine runs here).

The bench builds what docker builds for a container on a bridge network: a
bridge in the host namespace holding the network's gateway address, and a
veth into the container's namespace, held by a process whose PID is the
container's.  A stand-in `docker` command answers `inspect` with docker's
JSON for those facts and runs `exec -i` in that namespace.  Everything else
is the suite's own discovery: the PID's namespace, the addresses, the bridge
holding the gateway, the interface with the container's MAC, its offloads.
"""

from __future__ import annotations

import json
import os

import pytest

from conformance.lab import LabError
from conformance.targets.container import discover

from .bench import CONTAINER_MAC, REPO, bridged_container, fake_engine, stop
from .conftest import CASES, lab_namespaces

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

NAME = "tcpconf-bench-target"
HOLD = REPO / "containers" / "target" / "tcpconf-hold.py"


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    bench = bridged_container()
    try:
        bench.engine_dir = fake_engine(tmp_path_factory.mktemp("engine"), bench, NAME)
        yield bench
    finally:
        bench.destroy()
        # Its own namespaces only: other workers build and remove labs meanwhile.
        assert {bench.host, bench.remote}.isdisjoint(lab_namespaces())


def engine_env(container) -> dict:
    return {"PATH": f"{container.engine_dir}:{os.environ['PATH']}"}


def offloads(container) -> str:
    return container.in_remote("ethtool", "-k", "eth0")


def test_discovery_finds_namespace_addresses_and_bridge(container, monkeypatch):
    monkeypatch.setenv("PATH", engine_env(container)["PATH"])
    # Discovery reads the host's interfaces: run it where the bridge is.
    from conformance import netns
    with netns.entered(container.host):
        found = discover("docker", NAME)
    assert found.pid == container.holder.pid
    assert found.netns == f"/proc/{container.holder.pid}/ns/net"
    assert found.addresses == ("198.18.6.2", "2001:2:0:6::2")
    assert found.iface == "br-bench" and found.container_iface == "eth0"
    assert found.mac == CONTAINER_MAC


def test_sweep_a_container_by_name_with_its_agent(container, tmp_path):
    """--container NAME is all the user gives: the agent runs through
    `docker exec -i NAME python3 -`, the offloads are off during the run and
    back on after it, and nothing is left in the host's nftables."""
    assert "tx-checksumming: on" in offloads(container)
    result = container.sweep([CASES / "handshake" / "passive-open.yaml",
                              CASES / "handshake" / "active-open.yaml"], tmp_path,
                             "--target", "container", "--container", NAME,
                             "--container-engine", "docker", env=engine_env(container))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (f"TCP conformance: container: the docker container {NAME}, at the address(es) its "
            f"engine reports") in output
    data = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert {r["status"] for r in data["records"]} == {"pass"}
    assert {r["family"] for r in data["records"]} == {"ipv4", "ipv6"}
    settings = data["run"]["targets"]["container"]
    assert settings["container"].startswith(f"{NAME} (docker), PID {container.holder.pid}")
    assert "docker exec -i tcpconf-bench-target python3 -" in settings["agent"]
    assert settings["link ipv4"].startswith("198.18.6.1 ") and " on br-bench " in settings["link ipv4"]
    assert "turned off for the run: tx, tso, gso" in settings["container interface offloads"]
    assert "tx-checksumming: on" in offloads(container)      # put back
    assert container.guard_tables() == []


def test_sweep_a_container_blind(container, tmp_path):
    """--black-box: no agent in the container; its own service on port 9."""
    hold = container.start_in_remote("python3", str(HOLD), "--port", "9", "--hold", "2")
    try:
        assert hold.stdout.readline().strip() == "tcpconf-hold: listening on port 9"
        result = container.sweep([CASES / "handshake" / "passive-open.yaml",
                                  CASES / "rst" / "rst-to-listen.yaml"], tmp_path,
                                 "--target", "container", "--container", NAME, "--black-box",
                                 "--remote-port", "9", env=engine_env(container))
    finally:
        stop(hold)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "latest" / "results.json").read_text())
    statuses = {(r["case"], r["family"]): r["status"] for r in data["records"]}
    assert statuses[("rst.to-listen", "ipv6")] == "pass"
    assert statuses[("handshake.passive-open", "ipv4")] == "n/a"


def test_discovery_says_what_is_wrong(container, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", engine_env(container)["PATH"])
    from conformance import netns
    with netns.entered(container.host), pytest.raises(LabError, match="No such container: nope"):
        discover("docker", "nope")
    # Run where no interface holds the gateway (an empty namespace of the bench).
    with netns.entered(container.remote), pytest.raises(
            LabError, match="no interface of this host holds the gateway address"):
        discover("docker", NAME)
    stopped = fake_engine(tmp_path / "stopped", container, NAME, running=False)
    monkeypatch.setenv("PATH", f"{stopped}:{os.environ['PATH']}")
    with netns.entered(container.host), pytest.raises(LabError, match="is not running"):
        discover("docker", NAME)
