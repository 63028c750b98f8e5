"""Tests of the container recipe (containers/): what can be checked where no
container engine runs.

The compose file, the Dockerfile and the example workflow are read as data and
held to what README.md ("Testing a container") promises.  The hold service (the target's
black-box service) runs for real: inside a network namespace this test creates,
started as a container would start it, with clients whose sockets are created in
that same namespace.  Every packet stays there, on its loopback; the root
namespace is never touched, and the namespace is deleted afterwards.
"""

from __future__ import annotations

import ipaddress
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conformance.lab import PREFIX, Lab
from conformance.netns import entered
from conformance.safety import LAB_NETWORKS

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
COMPOSE = CONTAINERS / "compose.yaml"
WORKFLOW = CONTAINERS / "github-actions-sweep.yml"
DOCKERFILE = CONTAINERS / "target" / "Dockerfile"
HOLD = CONTAINERS / "target" / "tcpconf-hold.py"
README = REPO / "README.md"

CONTAINER_NAME = "tcpconf-target"
HOLD_PORT = 9
HOLD_SECONDS = 1.0      # --hold for the tests: CLOSE-WAIT lasts this long
QUIET = 0.5             # how long "nothing came back" is watched
READY_TIMEOUT = 10.0

# /proc/net/tcp's state column (include/net/tcp_states.h).
PROC_STATES = {0x01: "ESTABLISHED", 0x08: "CLOSE-WAIT", 0x09: "LAST-ACK", 0x0A: "LISTEN"}


# ------------------------------------------------------------ the recipe as data

@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def target_service(compose):
    (service,) = [s for s in compose["services"].values()
                  if s.get("container_name") == CONTAINER_NAME]
    return service


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def workflow_steps(workflow):
    (job,) = workflow["jobs"].values()
    return job["steps"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def in_lab_ranges(address: str) -> bool:
    return any(ipaddress.ip_address(address) in net for net in LAB_NETWORKS)


def test_compose_target_is_the_named_container_built_from_the_recipe(target_service):
    """The service is built from containers/target and named tcpconf-target."""
    build = target_service["build"]
    context = build if isinstance(build, str) else build["context"]
    assert (COMPOSE.parent / context).resolve() == DOCKERFILE.parent
    assert target_service["container_name"] == CONTAINER_NAME


def test_compose_network_is_a_dual_stack_bridge_in_the_benchmarking_ranges(compose,
                                                                         target_service):
    """Subnets, gateways and the target's fixed addresses lie in 198.18.0.0/15 and 2001:2::/48."""
    (net_name, attachment), = target_service["networks"].items()
    network = compose["networks"][net_name]
    assert network.get("driver", "bridge") == "bridge"
    assert network["enable_ipv6"] is True
    subnets = [ipaddress.ip_network(entry["subnet"]) for entry in network["ipam"]["config"]]
    assert sorted(str(s) for s in subnets) == ["198.18.100.0/24", "2001:2:0:100::/64"]
    for entry in network["ipam"]["config"]:
        assert in_lab_ranges(entry["gateway"])
        assert ipaddress.ip_address(entry["gateway"]) in ipaddress.ip_network(entry["subnet"])
    addresses = [attachment["ipv4_address"], attachment["ipv6_address"]]
    assert addresses == ["198.18.100.2", "2001:2:0:100::2"]
    for address in addresses:
        assert in_lab_ranges(address)
        assert any(ipaddress.ip_address(address) in subnet for subnet in subnets)


def test_compose_sets_the_lab_sysctls(target_service):
    """Challenge and duplicate ACKs are not rate-limited, as in the lab."""
    sysctls = target_service["sysctls"]
    assert sysctls["net.ipv4.tcp_invalid_ratelimit"] == "0"
    assert sysctls["net.ipv6.conf.all.disable_ipv6"] == "0"
    # Only namespaced sysctls: a container cannot set any other.
    assert all(key.startswith("net.") for key in sysctls)


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == option]


def test_compose_health_check_reads_the_ports_the_service_listens_on(target_service):
    """The health check asks tcpconf-hold --check about exactly the ports it serves."""
    test = target_service["healthcheck"]["test"]
    assert test[0] == "CMD" and "--check" in test
    served = option_values(target_service["command"], "--port")
    assert served == [str(HOLD_PORT)]
    assert option_values(test, "--port") == served


def test_dockerfile_copies_only_files_that_exist():
    """Every COPY source is in the build context, and the image is Debian with python3
    (by default from debian:bookworm-slim; the tests' real docker builds it on a
    local base through the BASE build argument)."""
    instructions = dockerfile_instructions()
    assert instructions[:2] == [("ARG", "BASE=debian:bookworm-slim"), ("FROM", "${BASE}")]
    copies = [args.split() for word, args in instructions if word == "COPY"]
    assert copies
    for *sources, _destination in copies:
        for source in sources:
            assert (DOCKERFILE.parent / source).is_file(), source
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert re.search(r"apt-get install .*\bpython3\b", runs)
    entrypoint = dict(instructions)["ENTRYPOINT"]
    assert "tcpconf-hold" in entrypoint and "python3" in entrypoint


def test_dockerfile_health_check_matches_the_compose_file(target_service):
    """The image's own health check (for docker run) is the compose file's."""
    healthcheck = dict(dockerfile_instructions())["HEALTHCHECK"]
    command = yaml.safe_load(healthcheck.split("CMD", 1)[1])
    assert ["CMD", *command] == target_service["healthcheck"]["test"]


def run_lines(steps) -> list[str]:
    return [step.get("run", "") for step in steps]


def test_workflow_starts_sweeps_and_stops_the_container(workflow, workflow_steps):
    """Compose up --wait, the container sweep as root, compose down even on failure."""
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert workflow_steps[0]["uses"].startswith("actions/checkout@")
    runs = run_lines(workflow_steps)
    up = [i for i, run in enumerate(runs)
          if "docker compose -f containers/compose.yaml up -d --build --wait" in run]
    sweep = [i for i, run in enumerate(runs)
             if re.search(r"sudo \./run sweep --target container --container tcpconf-target\b",
                          run)]
    down = [i for i, run in enumerate(runs)
            if "docker compose -f containers/compose.yaml down" in run]
    assert len(up) == len(sweep) == len(down) == 1
    assert up[0] < sweep[0] < down[0]
    assert "--remote-port 9" in runs[sweep[0]]
    assert workflow_steps[down[0]].get("if") == "always()"


def test_workflow_uploads_the_report_always(workflow_steps):
    """The report is uploaded even when the sweep failed."""
    (upload,) = [step for step in workflow_steps
                 if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "reports"


def test_workflow_explains_every_exit_status(workflow_steps):
    """The sweep step names the meaning of each exit status of conformance/summary.py."""
    from conformance import summary

    (sweep,) = [run for run in run_lines(workflow_steps) if "./run sweep" in run]
    statuses = (summary.CONFORMANT, summary.NON_CONFORMANT, summary.INTERRUPTED,
                summary.COULD_NOT_RUN, summary.USAGE)
    for status in statuses:
        assert re.search(rf"^\s*{status}\) meaning=", sweep, re.MULTILINE), status
    # The step keeps the sweep's status as its own.
    assert "exit $status" in sweep


def test_docs_give_the_same_commands():
    """The README's section "Testing a container" shows the compose file's and the
    workflow's commands."""
    docs = README.read_text()
    assert "docker compose -f containers/compose.yaml up -d --build --wait" in docs
    assert "./run sweep --target container --container tcpconf-target" in docs
    assert "containers/github-actions-sweep.yml" in docs


# ------------------------------------------------------ the hold service, for real

def needs_root_and_ip():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the hold service's tests create a network namespace: run them as root "
                    "with iproute2 installed", pytrace=False)


@pytest.fixture
def namespace():
    """A network namespace of this test's own, loopback up; deleted afterwards.

    Named as the lab names its namespaces (tcpconf-<pid>-<n>-target), so a run
    killed before the deletion leaves one that the next lab removes.
    """
    needs_root_and_ip()
    name = f"{PREFIX}-{Lab().tag}-target"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True,
                       capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def python3() -> str:
    """The target's interpreter, with the standard library only (no .venv)."""
    return shutil.which("python3") or sys.executable


def hold_check(namespace: str, *ports: int) -> int:
    """tcpconf-hold --check's exit status in the namespace."""
    argv = ["ip", "netns", "exec", namespace, python3(), str(HOLD), "--check"]
    for port in ports:
        argv += ["--port", str(port)]
    return subprocess.run(argv, capture_output=True).returncode


class HoldService:
    """tcpconf-hold started in a namespace as a container's runtime would, with
    the namespace's loopback to reach it."""

    def __init__(self, namespace: str, *args: str):
        self.namespace = namespace
        # `ip netns exec` execs the command in place: the PID is the service's.
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, python3(), str(HOLD), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ready_lines: list[str] = []

    def wait_ready(self, ports: int) -> list[str]:
        """The ready lines, once `ports` of them have come."""
        deadline = time.monotonic() + READY_TIMEOUT
        buffered = b""
        while buffered.count(b"\n") < ports:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self.process.stdout], [], [], max(0, remaining))
            if not readable:
                raise AssertionError(f"no ready line within {READY_TIMEOUT:g} s: "
                                     f"{buffered!r}")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"the hold service ended: {self.finish()}")
            buffered += chunk
        self.ready_lines = buffered.decode().splitlines()
        return self.ready_lines

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def finish(self, timeout: float = 5.0) -> tuple[int, str]:
        """The exit status and stderr, once it has ended by itself (what it
        printed on stdout after the ready lines is kept in `self.rest`)."""
        stdout, stderr = self.process.communicate(timeout=timeout)
        self.rest = stdout.decode()
        return self.process.returncode, stderr.decode()

    def stop(self) -> None:
        """End it by its PID if it still runs (the tests' cleanup)."""
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
        self.process.communicate()

    def connect(self, family: int = socket.AF_INET, port: int = HOLD_PORT) -> socket.socket:
        """A client socket created inside the namespace, connected to the service."""
        with entered(self.namespace):
            sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(("127.0.0.1" if family == socket.AF_INET else "::1", port))
        return sock

    def server_state(self, client: socket.socket) -> str | None:
        """The state of the service's end of `client`'s connection, read from
        the namespace's /proc/net/tcp{,6} (through the service's own /proc)."""
        client_port = client.getsockname()[1]
        for table in ("tcp", "tcp6"):
            path = f"/proc/{self.process.pid}/net/{table}"
            for row in Path(path).read_text().splitlines()[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if (local_port, remote_port) == (HOLD_PORT, client_port):
                    state = int(fields[3], 16)
                    return PROC_STATES.get(state, f"state {state:#x}")
        return None


@pytest.fixture
def start_hold(namespace):
    """Start tcpconf-hold in the test's namespace; killed by PID afterwards if
    the test did not end it."""
    started = []

    def start(*args: str, ports: int = 1) -> HoldService:
        service = HoldService(namespace, *args)
        started.append(service)
        service.wait_ready(ports)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop()


@pytest.fixture
def hold(start_hold):
    return start_hold("--port", str(HOLD_PORT), "--hold", str(HOLD_SECONDS))


def nothing_comes_back(sock: socket.socket, seconds: float = QUIET) -> bool:
    """True when, for `seconds`, the socket has nothing to read: no data, no
    FIN (end of file) and no RST (an error) from the service."""
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable


def send_beyond_the_buffers(sock: socket.socket) -> None:
    """Send more than the socket buffers on both ends hold, so that it goes
    through only if the service reads (and does not just leave it queued)."""
    sock.sendall(os.urandom(1 << 16) * 256)      # 16 MiB


def test_hold_says_it_listens_once_per_port(start_hold):
    """One ready line per port, in the order given, and nothing else on stdout."""
    service = start_hold("--port", "9", "--port", "7", "--port", "9", ports=2)
    assert service.ready_lines == ["tcpconf-hold: listening on port 9",
                                   "tcpconf-hold: listening on port 7"]
    for port in (9, 7):
        service.connect(port=port).close()


def test_hold_default_port_is_discard(start_hold):
    """Without --port it listens on 9, RFC 863's discard port."""
    service = start_hold()
    assert service.ready_lines == ["tcpconf-hold: listening on port 9"]


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_hold_reads_and_never_answers(hold, family):
    """Data is read (16 MiB go through) and nothing comes back, in both families."""
    client = hold.connect(family)
    try:
        assert hold.server_state(client) == "ESTABLISHED"
        send_beyond_the_buffers(client)
        assert nothing_comes_back(client)
        assert hold.server_state(client) == "ESTABLISHED"
    finally:
        client.close()


def test_hold_never_closes_an_open_connection(hold):
    """An idle connection stays open past the hold time: no FIN, no RST."""
    client = hold.connect()
    try:
        client.sendall(b"probe\r\n")
        assert nothing_comes_back(client, HOLD_SECONDS * 2)
        assert hold.server_state(client) == "ESTABLISHED"
        client.sendall(b"still there\r\n")
        assert nothing_comes_back(client)
    finally:
        client.close()


def test_hold_keeps_close_wait_for_the_hold_time_then_closes(hold):
    """After the client's FIN the service's side stays in CLOSE-WAIT for --hold
    seconds, sending nothing; then its FIN ends the connection."""
    client = hold.connect()
    try:
        client.sendall(b"data before the FIN")
        fin_sent = time.monotonic()
        client.shutdown(socket.SHUT_WR)
        assert nothing_comes_back(client, HOLD_SECONDS * 0.6)
        assert hold.server_state(client) == "CLOSE-WAIT"
        client.settimeout(HOLD_SECONDS * 5)
        assert client.recv(1) == b""                       # the service's FIN
        held = time.monotonic() - fin_sent
        assert HOLD_SECONDS * 0.9 <= held <= HOLD_SECONDS * 4
    finally:
        client.close()


def test_hold_survives_resets_and_keeps_accepting(hold):
    """Connections reset by the peer are dropped quietly; many connections at
    once are all accepted and read, and after that a new one still is."""
    aborted = hold.connect()
    aborted.sendall(b"about to reset")
    # SO_LINGER on with a zero timeout: close() sends a RST (RFC 9293 3.10.5, ABORT).
    aborted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    aborted.close()
    half_closed = hold.connect(socket.AF_INET6)
    half_closed.shutdown(socket.SHUT_WR)
    clients = [hold.connect(socket.AF_INET if n % 2 else socket.AF_INET6) for n in range(40)]
    try:
        for client in clients:
            client.sendall(os.urandom(1 << 16) * 32)     # 2 MiB each, 80 MiB in all
        for client in clients:
            assert nothing_comes_back(client, 0.01)
        late = hold.connect()
        clients.append(late)
        send_beyond_the_buffers(late)
        assert nothing_comes_back(late)
        assert hold.process.poll() is None
    finally:
        for client in [half_closed, *clients]:
            client.close()
    assert hold.process.poll() is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_hold_ends_cleanly_on_a_signal(hold, signum):
    """SIGTERM (docker stop) and SIGINT end it with status 0 and nothing on
    stderr, even with connections open and one in CLOSE-WAIT."""
    open_client = hold.connect()
    half_closed = hold.connect(socket.AF_INET6)
    half_closed.shutdown(socket.SHUT_WR)
    try:
        assert nothing_comes_back(open_client, 0.2)
        hold.signal(signum)
        status, stderr = hold.finish()
        assert (status, stderr) == (0, "")
    finally:
        open_client.close()
        half_closed.close()


def test_hold_check_reports_whether_every_port_listens(namespace, start_hold):
    """--check (the health check) is 0 only while every given port listens."""
    assert hold_check(namespace, 9) == 1             # nothing listens yet
    service = start_hold("--port", "9")
    assert hold_check(namespace, 9) == 0
    assert hold_check(namespace, 9, 10) == 1         # 10 is a closed port
    service.signal(signal.SIGTERM)
    assert service.finish()[0] == 0
    assert hold_check(namespace, 9) == 1


def test_hold_refuses_a_port_it_cannot_take(start_hold, namespace):
    """A port already taken is an error on stderr and status 1, with no ready line."""
    start_hold("--port", "9")
    second = HoldService(namespace, "--port", "9")
    try:
        status, stderr = second.finish()
        assert status == 1
        assert "cannot listen on port 9" in stderr
        assert second.rest == ""
    finally:
        second.stop()


def test_hold_usage_names_its_options():
    """The command line the Dockerfile and compose file use is the one it parses."""
    result = subprocess.run([sys.executable, str(HOLD), "--help"], capture_output=True,
                            text=True, check=True)
    for option in ("--port", "--hold", "--check", "--backlog"):
        assert option in result.stdout
    bad = subprocess.run([sys.executable, str(HOLD), "--port", "0"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "not a TCP port" in bad.stderr


def test_hold_serves_ipv4_where_ipv6_is_disabled(namespace, start_hold):
    """With IPv6 disabled in the namespace (a container on a network without
    IPv6), the "::" socket still takes IPv4 connections."""
    for key in ("all", "default", "lo"):
        subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw",
                        f"net.ipv6.conf.{key}.disable_ipv6=1"], check=True)
    service = start_hold("--port", "9")
    client = service.connect(socket.AF_INET)
    try:
        send_beyond_the_buffers(client)
        assert nothing_comes_back(client)
        assert service.server_state(client) == "ESTABLISHED"
    finally:
        client.close()
