"""Tests of the target agent and its client, run as a local process.

Everything happens over loopback 127.0.0.1 inside this host's network
namespace; listeners use port 0 so the kernel picks free ports.
"""

import ast
import base64
import errno
import json
import os
import signal
import socket
import struct
import sys
import time

import pytest

from conformance import agent as agent_module
from conformance import agent_states
from conformance.agent_bootstrap import (
    AGENT_SOURCE,
    SHIPPED,
    SOURCES,
    bootstrap_command,
)
from conformance.agent_client import (
    AgentClient,
    AgentDied,
    AgentError,
    AgentFailure,
)

LOOPBACK = "127.0.0.1"


@pytest.fixture
def agent():
    client = AgentClient.start([], python=sys.executable)
    try:
        yield client
    finally:
        client.close()


def connected_pair(agent):
    """Listener plus an established client/server pair over loopback."""
    listener = agent.call("listen", port=0, addr=LOOPBACK)
    client = agent.call("connect", addr=LOOPBACK, port=listener["port"])
    agent.call("wait_connected", sock=client["sock"])
    server = agent.call("accept", sock=listener["sock"])
    return {
        "listener": listener["sock"],
        "port": listener["port"],
        "client": client["sock"],
        "client_port": client["local_port"],
        "server": server["sock"],
        "peer": server["peer"],
    }


def state_of(agent, local_port, remote_port):
    conns = agent.call("states", local_port=local_port,
                       remote_addr=LOOPBACK, remote_port=remote_port)
    states = [c["state"] for c in conns["connections"]]
    return states[0] if states else None


def wait_state(agent, local_port, remote_port, wanted, timeout=2.0):
    """Poll the kernel's table until the connection reaches ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        state = state_of(agent, local_port, remote_port)
        if state == wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


def pid_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ------------------------------------------------------------ bootstrap

def test_bootstrap_command_embeds_source_lengths():
    """The bootstrap reads exactly as many bytes of each shipped module as
    the client writes, the agent last."""
    argv = bootstrap_command("py")
    assert argv[:4] == ["py", "-S", "-u", "-c"]
    *modules, agent = SHIPPED
    for name in modules:
        assert "(%r, %d)" % (name, len(SOURCES[name])) in argv[4]
    assert "r(%d)" % len(SOURCES[agent]) in argv[4]
    assert len(AGENT_SOURCE) == sum(len(source) for source in SOURCES.values())
    assert "\n" not in argv[4]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_modules_run_on_python_3_6(name):
    """What is shipped parses with Python 3.6's grammar, has no annotations
    and imports only the standard library and the modules shipped before it."""
    tree = ast.parse(SOURCES[name], feature_version=(3, 6))
    for node in ast.walk(tree):
        assert not isinstance(node, ast.AnnAssign), node.lineno
        if isinstance(node, ast.arg):
            assert node.annotation is None, node.lineno
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None, node.lineno
        if isinstance(node, ast.ImportFrom):
            assert node.module != "__future__", node.lineno
            if node.module.startswith("conformance"):
                assert SHIPPED.index(node.module) < SHIPPED.index(name)
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("conformance") for a in node.names)


def test_hello(agent):
    """The agent introduces itself with name, protocol and platform."""
    hello = agent.hello
    assert hello["agent"] == "tcpconf-agent"
    assert hello["protocol"] == 1
    assert hello["python"] == sys.version.split()[0]
    assert hello["system"].startswith(os.uname().sysname)
    assert hello["hostname"]


# ----------------------------------------------------------- data path

def test_listen_connect_accept(agent):
    """connect + wait_connected + accept yield an established pair."""
    pair = connected_pair(agent)
    assert pair["peer"] == "%s:%d" % (LOOPBACK, pair["client_port"])
    assert len({pair["listener"], pair["client"], pair["server"]}) == 3


def test_send_recv_both_ways(agent):
    """Text and binary data cross in both directions unchanged."""
    pair = connected_pair(agent)
    assert agent.call("send", sock=pair["client"], data="héllo")["sent"] == 6
    got = agent.call("recv", sock=pair["server"])
    assert got["text"] == "héllo"
    raw = bytes([0xff, 0x00, 0x80])
    agent.call("send", sock=pair["server"],
               data_b64=base64.b64encode(raw).decode())
    got = agent.call("recv", sock=pair["client"])
    assert base64.b64decode(got["data_b64"]) == raw
    assert got["text"] is None


def test_send_size_pattern(agent):
    """send with size delivers that many printable bytes."""
    pair = connected_pair(agent)
    assert agent.call("send", sock=pair["client"], size=1000)["sent"] == 1000
    received = b""
    while len(received) < 1000:
        got = agent.call("recv", sock=pair["server"])
        received += base64.b64decode(got["data_b64"])
    assert len(received) == 1000 and received.decode("ascii").isprintable()


def test_recv_timeout(agent):
    """recv with nothing to read fails with "timeout"."""
    pair = connected_pair(agent)
    with pytest.raises(AgentError) as info:
        agent.call("recv", sock=pair["server"], timeout=0.1)
    assert info.value.error == "timeout"


def test_accept_timeout(agent):
    """accept with no pending connection fails with "timeout"."""
    listener = agent.call("listen", port=0, addr=LOOPBACK)
    with pytest.raises(AgentError) as info:
        agent.call("accept", sock=listener["sock"], timeout=0.1)
    assert info.value.error == "timeout"


def test_recv_eof_after_peer_shutdown(agent):
    """recv reports eof once the peer's FIN arrived and data is drained."""
    pair = connected_pair(agent)
    agent.call("send", sock=pair["client"], data="last")
    agent.call("shutdown", sock=pair["client"], how="wr")
    assert agent.call("recv", sock=pair["server"])["text"] == "last"
    assert agent.call("recv", sock=pair["server"])["eof"] is True


def test_recv_reset_after_peer_abort(agent):
    """recv reports ECONNRESET after the peer aborted."""
    pair = connected_pair(agent)
    agent.call("abort", sock=pair["client"])
    with pytest.raises(AgentError) as info:
        agent.call("recv", sock=pair["server"])
    assert info.value.error == "ECONNRESET"


def test_shutdown_write_keeps_read_side(agent):
    """After shutdown wr, sending fails with EPIPE but receiving works."""
    pair = connected_pair(agent)
    agent.call("shutdown", sock=pair["client"])
    with pytest.raises(AgentError) as info:
        agent.call("send", sock=pair["client"], data="x")
    assert info.value.error == "EPIPE"
    agent.call("send", sock=pair["server"], data="reply")
    assert agent.call("recv", sock=pair["client"])["text"] == "reply"


def test_close_sends_fin_and_forgets_handle(agent):
    """close makes the peer see eof and retires the handle."""
    pair = connected_pair(agent)
    agent.call("close", sock=pair["client"])
    assert agent.call("recv", sock=pair["server"])["eof"] is True
    with pytest.raises(AgentError) as info:
        agent.call("recv", sock=pair["client"])
    assert info.value.error == "bad-request"


def test_abort_resets_peer(agent):
    """abort sends RST: the peer's SO_ERROR is ECONNRESET, no TIME-WAIT."""
    pair = connected_pair(agent)
    agent.call("abort", sock=pair["client"])
    deadline = time.monotonic() + 2.0
    error = None
    while error is None and time.monotonic() < deadline:
        error = agent.call("sockerror", sock=pair["server"])["error"]
    assert error == "ECONNRESET"
    assert state_of(agent, pair["client_port"], pair["port"]) is None


def test_wait_connected_refused(agent):
    """Connecting to a closed port reports ECONNREFUSED."""
    listener = agent.call("listen", port=0, addr=LOOPBACK)
    agent.call("close", sock=listener["sock"])
    client = agent.call("connect", addr=LOOPBACK, port=listener["port"])
    with pytest.raises(AgentError) as info:
        agent.call("wait_connected", sock=client["sock"])
    assert info.value.error == "ECONNREFUSED"


# ------------------------------------------------------------- options

def test_setsockopt(agent):
    """Known options are set by name, with ints or bools."""
    pair = connected_pair(agent)
    for option, value in [("SO_RCVBUF", 65536), ("TCP_NODELAY", True),
                          ("SO_KEEPALIVE", 1), ("TCP_USER_TIMEOUT", 1000),
                          ("SO_LINGER", 5)]:
        agent.call("setsockopt", sock=pair["client"], option=option,
                   value=value)


def test_setsockopt_unknown_option(agent):
    """An unknown option name is a bad request naming the option."""
    pair = connected_pair(agent)
    with pytest.raises(AgentError) as info:
        agent.call("setsockopt", sock=pair["client"], option="SO_BOGUS",
                   value=1)
    assert info.value.error == "bad-request"
    assert "SO_BOGUS" in info.value.message


def test_sockopts_on_listen_and_connect(agent):
    """listen and connect accept a sockopts dict applied before bind."""
    listener = agent.call("listen", port=0, addr=LOOPBACK,
                          sockopts={"SO_RCVBUF": 32768,
                                    "TCP_DEFER_ACCEPT": 0})
    client = agent.call("connect", addr=LOOPBACK, port=listener["port"],
                        sockopts={"TCP_NODELAY": True, "TCP_MAXSEG": 1000})
    agent.call("wait_connected", sock=client["sock"])


def test_connect_from_local_port(agent):
    """connect binds the requested local port."""
    listener = agent.call("listen", port=0, addr=LOOPBACK)
    probe = agent.call("listen", port=0, addr=LOOPBACK)
    agent.call("close", sock=probe["sock"])  # a port that was just free
    client = agent.call("connect", addr=LOOPBACK, port=listener["port"],
                        local_addr=LOOPBACK, local_port=probe["port"])
    agent.call("wait_connected", sock=client["sock"])
    server = agent.call("accept", sock=listener["sock"])
    assert server["peer"] == "%s:%d" % (LOOPBACK, probe["port"])


# -------------------------------------------------------------- states

def test_states_listen_and_established(agent):
    """states lists the listener and both ends of the connection."""
    pair = connected_pair(agent)
    conns = agent.call("states", local_port=pair["port"])["connections"]
    assert {"local": "%s:%d" % (LOOPBACK, pair["port"]),
            "remote": "0.0.0.0:0", "state": "LISTEN"} in conns
    assert state_of(agent, pair["port"], pair["client_port"]) == "ESTABLISHED"
    assert state_of(agent, pair["client_port"], pair["port"]) == "ESTABLISHED"


def test_states_fin_wait_2_after_active_close(agent):
    """The side closing first sits in FIN-WAIT-2, its peer in CLOSE-WAIT."""
    pair = connected_pair(agent)
    agent.call("close", sock=pair["client"])
    assert wait_state(agent, pair["client_port"], pair["port"],
                      "FIN-WAIT-2") == "FIN-WAIT-2"
    assert state_of(agent, pair["port"], pair["client_port"]) == "CLOSE-WAIT"


def test_states_time_wait_after_both_close(agent):
    """When the peer closes too, the active closer enters TIME-WAIT."""
    pair = connected_pair(agent)
    agent.call("close", sock=pair["client"])
    wait_state(agent, pair["client_port"], pair["port"], "FIN-WAIT-2")
    agent.call("close", sock=pair["server"])
    assert wait_state(agent, pair["client_port"], pair["port"],
                      "TIME-WAIT") == "TIME-WAIT"


def test_states_show_the_octets_the_kernel_took(agent):
    """With received, a full socket shows tcp_info's bytes_received (text and
    FIN alike: what a fence.Mark compares); a timewait socket shows none."""
    pair = connected_pair(agent)

    def received(local, remote):
        [conn] = agent.call("states", local_port=local, remote_addr=LOOPBACK,
                            remote_port=remote, received=True)["connections"]
        return conn["state"], conn["received"]

    assert received(pair["port"], pair["client_port"]) == ("ESTABLISHED", 0)
    agent.call("send", sock=pair["client"], size=10)
    agent.call("close", sock=pair["client"])
    wait_state(agent, pair["client_port"], pair["port"], "FIN-WAIT-2")
    assert received(pair["port"], pair["client_port"]) == ("CLOSE-WAIT", 11)
    assert received(pair["client_port"], pair["port"]) == ("FIN-WAIT-2", None)
    with pytest.raises(AgentError, match="netlink only"):
        agent.call("states", source="proc", received=True)


def diag_attributes():
    info = bytes(128) + struct.pack("=Q", 1234) + bytes(8)
    other = struct.pack("=HH", 4 + 4, 9) + bytes(4)             # another attribute first
    return other + struct.pack("=HH", 4 + len(info), agent_states.INET_DIAG_INFO) + info


def test_bytes_received_is_read_from_the_tcp_info_attribute():
    assert agent_states.bytes_received(diag_attributes()) == 1234
    assert agent_states.bytes_received(b"") is None                       # request socket
    short = struct.pack("=HH", 4 + 104, agent_states.INET_DIAG_INFO) + bytes(104)
    assert agent_states.bytes_received(short) is None                     # before Linux 4.1


def test_cleanup_aborts_everything(agent):
    """cleanup aborts connections, closes listeners, frees every handle."""
    pair = connected_pair(agent)
    assert agent.call("cleanup")["aborted"] == 2
    assert state_of(agent, pair["client_port"], pair["port"]) is None
    conns = agent.call("states", local_port=pair["port"])["connections"]
    assert conns == []
    with pytest.raises(AgentError):
        agent.call("close", sock=pair["listener"])


def test_states_netlink_matches_proc(agent):
    """sock_diag netlink and /proc/net/tcp* list the same connections.

    Covers LISTEN, ESTABLISHED, SYN-RECEIVED (a request socket: with
    TCP_DEFER_ACCEPT the server drops the client's bare ACK and keeps the
    request socket while the client is already ESTABLISHED), FIN-WAIT-2
    with CLOSE-WAIT, TIME-WAIT, and, when the host has IPv6, a dual-stack
    listener on :: whose connections appear as ::ffff:127.0.0.1.  A socket
    left bound to a port after a refused connect is in neither list
    (asking sock_diag for all 32 state bits would add it as CLOSED).  Each
    comparison is order-exact, with and without the port filters.
    """
    closed = agent.call("listen", port=0, addr=LOOPBACK)
    agent.call("close", sock=closed["sock"])
    probe = agent.call("listen", port=0, addr=LOOPBACK)
    agent.call("close", sock=probe["sock"])
    refused = agent.call("connect", addr=LOOPBACK, port=closed["port"],
                         local_addr=LOOPBACK, local_port=probe["port"])
    with pytest.raises(AgentError):
        agent.call("wait_connected", sock=refused["sock"])
    finwait = connected_pair(agent)
    agent.call("close", sock=finwait["client"])
    timewait = connected_pair(agent)
    agent.call("close", sock=timewait["client"])
    wait_state(agent, timewait["client_port"], timewait["port"], "FIN-WAIT-2")
    agent.call("close", sock=timewait["server"])
    deferred = agent.call("listen", port=0, addr=LOOPBACK,
                          sockopts={"TCP_DEFER_ACCEPT": 30})
    half = agent.call("connect", addr=LOOPBACK, port=deferred["port"])
    agent.call("wait_connected", sock=half["sock"])
    expected = {
        (finwait["client_port"], finwait["port"]): "FIN-WAIT-2",
        (finwait["port"], finwait["client_port"]): "CLOSE-WAIT",
        (timewait["client_port"], timewait["port"]): "TIME-WAIT",
        (deferred["port"], half["local_port"]): "SYN-RECEIVED",
        (half["local_port"], deferred["port"]): "ESTABLISHED",
        (finwait["port"], 0): "LISTEN",
        (deferred["port"], 0): "LISTEN",
    }
    try:
        dual = agent.call("listen", port=0, addr="::")
    except AgentError as e:  # a host without IPv6
        assert e.error in ("EAFNOSUPPORT", "EADDRNOTAVAIL"), e
    else:
        dual_client = agent.call("connect", addr=LOOPBACK, port=dual["port"])
        agent.call("wait_connected", sock=dual_client["sock"])
        agent.call("accept", sock=dual["sock"])
        expected[(dual["port"], 0)] = "LISTEN"
        expected[(dual["port"], dual_client["local_port"])] = "ESTABLISHED"

    def ports(conn):
        return (int(conn["local"].rsplit(":", 1)[1]),
                int(conn["remote"].rsplit(":", 1)[1]))

    deadline = time.monotonic() + 2.0
    while True:  # until every socket reached its state
        conns = agent.call("states")["connections"]
        seen = {ports(c): c["state"] for c in conns if ports(c) in expected}
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert seen == expected

    def both(**filters):
        got = [agent.call("states", source=source, **filters)["connections"]
               for source in ("netlink", "proc")]
        assert got[0] == got[1], filters
        return got[0]

    # Unfiltered: the whole table, of which only our rows are stable.
    ours = [[c for c in agent.call("states", source=source)["connections"]
             if ports(c) in expected]
            for source in ("netlink", "proc")]
    assert ours[0] == ours[1]
    assert {ports(c): c["state"] for c in ours[0]} == expected
    for local, remote in expected:
        both(local_port=local)
        both(remote_port=remote)
        both(local_port=local, remote_port=remote)
        if remote:
            rows = both(local_port=local, remote_addr=LOOPBACK,
                        remote_port=remote)
            assert [c["state"] for c in rows] == [expected[(local, remote)]]
    assert both(local_port=probe["port"]) == []
    assert both(local_port=65535, remote_port=1) == []


def test_states_sources_and_default(agent):
    """states takes source auto (the default), netlink or proc."""
    pair = connected_pair(agent)
    results = [agent.call("states", local_port=pair["port"], **extra)
               ["connections"]
               for extra in ({}, {"source": "auto"}, {"source": "netlink"},
                             {"source": "proc"})]
    assert len(results[0]) == 2  # LISTEN and the server's ESTABLISHED
    assert all(result == results[0] for result in results)
    for bad in ("sysfs", 1):
        with pytest.raises(AgentError) as info:
            agent.call("states", source=bad)
        assert info.value.error == "bad-request"
        assert info.value.message.startswith("source")


def test_states_falls_back_to_proc_without_netlink(monkeypatch, capsys):
    """Where a netlink socket cannot be made, auto reads /proc/net/tcp*
    (saying so once on stderr) and source netlink is "unsupported"."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    real_socket = socket.socket

    def no_netlink(family=socket.AF_INET, *args, **kwargs):
        if family == socket.AF_NETLINK:
            raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
        return real_socket(family, *args, **kwargs)

    def states(source):
        line = json.dumps({"id": 1, "op": "states", "local_port": port,
                           "source": source})
        return agent.handle(line.encode())

    listening = [{"local": "%s:%d" % (LOOPBACK, port),
                  "remote": "0.0.0.0:0", "state": "LISTEN"}]
    try:
        agent = agent_module.Agent()
        assert states("netlink")["connections"] == listening
        monkeypatch.setattr(socket, "socket", no_netlink)
        for _ in range(2):
            assert states("auto")["connections"] == listening
        assert capsys.readouterr().err.count("reading /proc/net/tcp") == 1
        failed = states("netlink")
        assert failed["ok"] is False and failed["error"] == "unsupported"
        assert "EAFNOSUPPORT" in failed["message"] or "ddress family" in \
            failed["message"]
        assert states("proc")["connections"] == listening
    finally:
        listener.close()


def test_netlink_port_filter_bytecode():
    """The inet_diag filter program jumps to the end to accept and 4 bytes
    past it to reject, as the kernel's bytecode audit requires."""
    diag_port_filter = agent_states.diag_port_filter
    assert diag_port_filter(None, None) == b""
    op = struct.Struct("=BBH")  # code, yes, no
    assert diag_port_filter(80, None) == (
        op.pack(2, 8, 20) + op.pack(0, 0, 80)      # local port >= 80
        + op.pack(3, 8, 12) + op.pack(0, 0, 80))   # local port <= 80
    assert diag_port_filter(None, 443) == (
        op.pack(4, 8, 20) + op.pack(0, 0, 443)
        + op.pack(5, 8, 12) + op.pack(0, 0, 443))
    both = diag_port_filter(80, 443)
    assert [op.unpack_from(both, i)[2] for i in range(0, 32, 8)] == \
        [36, 28, 20, 12]


# ------------------------------------------------------ bad requests

def test_unknown_op_is_bad_request(agent):
    """An unknown op is a bad request and the agent keeps working."""
    with pytest.raises(AgentError) as info:
        agent.call("frobnicate")
    assert info.value.error == "bad-request"
    assert agent.call("states")["connections"] is not None


@pytest.mark.parametrize("op, args, named", [
    ("listen", {}, "port"),
    ("listen", {"port": "80"}, "port"),
    ("listen", {"port": True}, "port"),
    ("recv", {"sock": 99}, "sock"),
    ("shutdown", {"sock": 1, "how": "sideways"}, "how"),
    ("setsockopt", {"sock": 1, "option": "TCP_NODELAY", "value": "yes"},
     "value"),
])
def test_bad_arguments_are_bad_requests(agent, op, args, named):
    """Missing or mistyped arguments are bad requests naming the argument."""
    agent.call("listen", port=0, addr=LOOPBACK)  # handle 1 exists
    with pytest.raises(AgentError) as info:
        agent.call(op, **args)
    assert info.value.error == "bad-request"
    assert info.value.message.startswith(named)
    assert agent.call("states")["connections"] is not None


# ------------------------------------------------------------ lifecycle

def test_agent_death_raises_agent_died(agent):
    """A killed agent makes the next call raise AgentDied."""
    os.kill(agent.pid, signal.SIGKILL)
    with pytest.raises(AgentDied):
        agent.call("states")
    with pytest.raises(AgentFailure):  # and stays dead
        agent.call("states")


def test_unresponsive_agent_raises_agent_died(agent):
    """A call exceeding its timeout raises AgentDied instead of hanging."""
    pair = connected_pair(agent)
    started = time.monotonic()
    with pytest.raises(AgentDied) as info:
        agent.call("recv", sock=pair["server"], timeout=5.0,
                   call_timeout=0.2)
    assert "no response" in str(info.value)
    assert time.monotonic() - started < 2.0
    assert not pid_exists(agent.pid)


def test_close_leaves_no_process(agent):
    """close() ends the agent process; calling it again is harmless."""
    pid = agent.pid
    connected_pair(agent)
    agent.close()
    assert not pid_exists(pid)
    assert agent.returncode == 0
    agent.close()


def test_quit_exits_cleanly(agent):
    """quit is answered, then the agent exits with status 0."""
    agent.call("quit")
    agent._proc.wait(timeout=2)
    assert agent.returncode == 0


def test_context_manager_closes():
    """Leaving the with block closes the agent."""
    with AgentClient.start([], python=sys.executable) as client:
        pid = client.pid
    assert not pid_exists(pid)


def test_start_failure_raises_agent_died():
    """A prefix whose command exits at once raises AgentDied with stderr."""
    with pytest.raises(AgentDied) as info:
        AgentClient.start([sys.executable, "-c",
                           "import sys; sys.stderr.write('nope\\n')", "--"],
                          timeout=5.0)
    assert "nope" in str(info.value)


def test_stdin_eof_means_quit(agent):
    """Closing the agent's stdin makes it exit with status 0."""
    agent._proc.stdin.close()
    assert agent._proc.wait(timeout=2) == 0


def test_garbage_line_is_survived(agent):
    """A line that is not JSON is answered with an error, then ignored."""
    agent._proc.stdin.write(b"this is not json\n")
    agent._proc.stdin.flush()
    assert agent.call("states")["ok"] is True
    assert "not a JSON line" in agent.stderr_tail()


def test_remote_shell_quoting():
    """remote_shell=True survives a prefix that re-parses a command string."""
    with AgentClient.start(["sh", "-c"], python=sys.executable,
                           remote_shell=True) as client:
        assert client.hello["agent"] == "tcpconf-agent"
        assert client.call("states")["ok"] is True
