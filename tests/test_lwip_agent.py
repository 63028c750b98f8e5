"""The lwIP agent speaks the agent protocol as conformance/agent.py does.

The counterpart of tests/test_agent.py for targets/lwip's C agent: the agent
of a started lwIP target connects to its own address through lwIP's loopback
(LWIP_NETIF_LOOPBACK), so no segment of these tests crosses the lab's wire.
The engine reads the agent's replies and error words (``timeout``,
``unsupported``, ``bad-request``, errno names) to tell a stack's behaviour from
the suite's own trouble; where lwIP's sockets API answers otherwise than
Linux's, the test states what lwIP says (targets/lwip/README.md lists the
differences).  The sweep of cases/ on lwIP drives the ops the cases use;
these tests also pin the ones no case reaches.
"""

from __future__ import annotations

import base64
import time

import pytest

from conformance.agent_client import AgentError
from conformance.lab import TARGET_IP, TARGET_IP6
from conformance.targets.lwip import LwipLab

pytestmark = pytest.mark.lab  # every test here builds a lab

# An address of the lab's subnet that nobody holds: a SYN to it waits on ARP.
NOBODY = "198.18.0.77"


@pytest.fixture(scope="module")
def lwip():
    """The agent of one lwIP target for the whole module (its lab, tap and bridge)."""
    target = LwipLab()
    target.start()
    try:
        yield target.agent
    finally:
        target.stop()


@pytest.fixture
def agent(lwip):
    """The module's agent, with every connection a test opened aborted after it."""
    yield lwip
    lwip.call("cleanup")


def error_of(agent, op: str, **args) -> tuple[str | None, str]:
    try:
        agent.call(op, **args)
    except AgentError as exc:
        return exc.error, exc.message
    return None, ""


def pair(agent, addr: str = TARGET_IP) -> dict:
    """A listener and an established connection to it, both ends in lwIP."""
    listener = agent.call("listen", port=0, addr=addr)
    client = agent.call("connect", addr=addr, port=listener["port"])
    agent.call("wait_connected", sock=client["sock"])
    server = agent.call("accept", sock=listener["sock"])
    return {"listener": listener["sock"], "port": listener["port"], "client": client["sock"],
            "cport": client["local_port"], "server": server["sock"], "peer": server["peer"]}


def state(agent, local_port: int, remote_port: int) -> str | None:
    rows = agent.call("states", local_port=local_port, remote_port=remote_port)["connections"]
    return rows[0]["state"] if rows else None


def wait_state(agent, local_port: int, remote_port: int, wanted: str) -> str | None:
    """lwIP's tcpip thread moves a connection on after the call returns: poll briefly."""
    deadline = time.monotonic() + 2.0
    while (got := state(agent, local_port, remote_port)) != wanted \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    return got


def test_hello_names_the_protocol(agent):
    assert agent.hello["agent"] == "tcpconf-agent" and agent.hello["protocol"] == 1
    assert agent.hello["system"].startswith("lwIP 2.1.3")


def test_states_rows_and_filters(agent):
    """The engine finds a connection by its remote; the ::ffff: form of an IPv4
    remote matches as it does in agent.py."""
    p = pair(agent)
    assert p["peer"] == f"{TARGET_IP}:{p['cport']}"
    rows = agent.call("states", local_port=p["port"])["connections"]
    assert {"local": f"{TARGET_IP}:{p['port']}", "remote": "0.0.0.0:0",
            "state": "LISTEN"} in rows
    assert state(agent, p["port"], p["cport"]) == state(agent, p["cport"], p["port"]) \
        == "ESTABLISHED"
    for remote, count in ((TARGET_IP, 1), ("::ffff:" + TARGET_IP, 1), ("198.18.0.9", 0)):
        assert len(agent.call("states", local_port=p["port"],
                              remote_addr=remote)["connections"]) == count, remote


def test_ipv6_and_a_dual_stack_listener(agent):
    p6 = pair(agent, TARGET_IP6)
    assert p6["peer"] == f"{TARGET_IP6}:{p6['cport']}"
    dual = agent.call("listen", port=0, addr="::")
    client = agent.call("connect", addr=TARGET_IP, port=dual["port"])
    agent.call("wait_connected", sock=client["sock"])
    # lwIP gives an IPv4 peer in IPv4 form, where Linux writes ::ffff:198.18.0.2.
    assert agent.call("accept", sock=dual["sock"])["peer"] == \
        f"{TARGET_IP}:{client['local_port']}"
    assert {"local": f":::{dual['port']}", "remote": ":::0", "state": "LISTEN"} in \
        agent.call("states", local_port=dual["port"])["connections"]


def test_data_both_ways(agent):
    p = pair(agent)
    agent.call("send", sock=p["client"], data="héllo")
    assert agent.call("recv", sock=p["server"])["text"] == "héllo"
    raw = bytes([0xff, 0x00, 0x80])
    agent.call("send", sock=p["server"], data_b64=base64.b64encode(raw).decode())
    got = agent.call("recv", sock=p["client"])
    assert base64.b64decode(got["data_b64"]) == raw and got["text"] is None
    assert agent.call("send", sock=p["client"], size=100000, timeout=5.0)["sent"] == 100000
    data = b""
    while len(data) < 100000:
        data += base64.b64decode(agent.call("recv", sock=p["server"])["data_b64"])
    assert len(data) == 100000 and data.decode("ascii").isprintable()


def test_timeouts_are_the_word_timeout(agent):
    """The engine tells "no connection completed" from a failing accept by it."""
    p = pair(agent)
    assert error_of(agent, "recv", sock=p["server"], timeout=0.1)[0] == "timeout"
    assert error_of(agent, "accept", sock=p["listener"], timeout=0.1)[0] == "timeout"


def test_half_close_and_the_end_of_the_stream(agent):
    p = pair(agent)
    agent.call("send", sock=p["client"], data="last")
    agent.call("shutdown", sock=p["client"], how="wr")
    assert agent.call("recv", sock=p["server"])["text"] == "last"
    # lwIP fails a second read after the end with ENOTCONN; the agent says eof again.
    assert agent.call("recv", sock=p["server"])["eof"] is True
    assert agent.call("recv", sock=p["server"])["eof"] is True
    assert error_of(agent, "send", sock=p["client"], data="x")[0] == "ENOTCONN"  # Linux: EPIPE
    agent.call("send", sock=p["server"], data="reply")
    assert agent.call("recv", sock=p["client"])["text"] == "reply"
    assert wait_state(agent, p["cport"], p["port"], "FIN-WAIT-2") == "FIN-WAIT-2"
    assert state(agent, p["port"], p["cport"]) == "CLOSE-WAIT"
    agent.call("close", sock=p["server"])
    assert wait_state(agent, p["cport"], p["port"], "TIME-WAIT") == "TIME-WAIT"
    assert error_of(agent, "recv", sock=p["server"])[0] == "bad-request"


def test_resets_reach_the_application(agent):
    p = pair(agent)
    agent.call("abort", sock=p["client"])
    assert error_of(agent, "recv", sock=p["server"])[0] == "ECONNRESET"
    assert state(agent, p["cport"], p["port"]) is None
    p = pair(agent)
    agent.call("abort", sock=p["client"])
    deadline, error = time.monotonic() + 2.0, None
    while error is None and time.monotonic() < deadline:
        error = agent.call("sockerror", sock=p["server"])["error"]
    assert error == "ECONNRESET"
    assert agent.call("sockerror", sock=p["server"])["error"] is None   # read, then cleared
    closed = agent.call("listen", port=0, addr=TARGET_IP)
    agent.call("close", sock=closed["sock"])
    client = agent.call("connect", addr=TARGET_IP, port=closed["port"])
    # lwIP reports the RST in SYN-SENT as ERR_RST (Linux: ECONNREFUSED).
    assert error_of(agent, "wait_connected", sock=client["sock"])[0] == "ECONNRESET"


def test_closing_a_listener_resets_its_unaccepted_connections(agent):
    listener = agent.call("listen", port=0, addr=TARGET_IP)
    queued = [agent.call("connect", addr=TARGET_IP, port=listener["port"]) for _ in range(3)]
    for client in queued:
        agent.call("wait_connected", sock=client["sock"])
    agent.call("close", sock=listener["sock"])
    time.sleep(0.2)
    assert [agent.call("sockerror", sock=c["sock"])["error"] for c in queued] == \
        ["ECONNRESET"] * 3
    assert agent.call("states", local_port=listener["port"])["connections"] == []


def test_socket_options_lwip_lacks_are_unsupported(agent):
    """"unsupported" makes a case that needs the option not applicable to lwIP."""
    p = pair(agent)
    answers = {option: error_of(agent, "setsockopt", sock=p["client"], option=option,
                                value=value)[0] or "ok"
               for option, value in [("SO_RCVBUF", 65536), ("TCP_NODELAY", True),
                                     ("SO_KEEPALIVE", 1), ("SO_LINGER", 5),
                                     ("TCP_KEEPIDLE", 10), ("TCP_USER_TIMEOUT", 1000),
                                     ("SO_OOBINLINE", 1), ("TCP_MAXSEG", 1000)]}
    assert answers == {"SO_RCVBUF": "ok", "TCP_NODELAY": "ok", "SO_KEEPALIVE": "ok",
                       "SO_LINGER": "ok", "TCP_KEEPIDLE": "ok",
                       "TCP_USER_TIMEOUT": "unsupported", "SO_OOBINLINE": "unsupported",
                       "TCP_MAXSEG": "unsupported"}
    error, message = error_of(agent, "setsockopt", sock=p["client"], option="SO_BOGUS", value=1)
    assert error == "bad-request" and "SO_BOGUS" in message
    # Options given to listen apply before listen(), TCP ones included.
    assert agent.call("listen", port=0, addr=TARGET_IP,
                      sockopts={"TCP_NODELAY": 1, "SO_RCVBUF": 1024})["port"] > 0


def test_connect_from_a_given_local_port(agent):
    listener = agent.call("listen", port=0, addr=TARGET_IP)
    probe = agent.call("listen", port=0, addr=TARGET_IP)
    agent.call("close", sock=probe["sock"])
    client = agent.call("connect", addr=TARGET_IP, port=listener["port"],
                        local_addr=TARGET_IP, local_port=probe["port"])
    agent.call("wait_connected", sock=client["sock"])
    assert agent.call("accept", sock=listener["sock"])["peer"] == f"{TARGET_IP}:{probe['port']}"


def test_a_socket_held_into_time_wait(agent):
    """lwIP frees a TIME-WAIT pcb without telling its netconn; the agent detaches
    it before every call (README: "An lwIP bug the agent works around")."""
    p = pair(agent)
    agent.call("shutdown", sock=p["client"], how="wr")
    agent.call("close", sock=p["server"])
    assert wait_state(agent, p["cport"], p["port"], "TIME-WAIT") == "TIME-WAIT"
    agent.call("abort", sock=p["client"])
    assert state(agent, p["cport"], p["port"]) is None
    p = pair(agent)
    agent.call("shutdown", sock=p["client"], how="wr")
    agent.call("close", sock=p["server"])
    wait_state(agent, p["cport"], p["port"], "TIME-WAIT")
    assert error_of(agent, "send", sock=p["client"], data="x")[0] is not None
    assert agent.alive()


def test_abort_and_close_in_syn_sent_delete_the_connection(agent):
    for op in ("abort", "close"):
        client = agent.call("connect", addr=NOBODY, port=9)
        assert state(agent, client["local_port"], 9) == "SYN-SENT"
        agent.call(op, sock=client["sock"])
        assert state(agent, client["local_port"], 9) is None, op


@pytest.mark.parametrize("op, args, named", [
    ("listen", {}, "port"), ("listen", {"port": "80"}, "port"), ("listen", {"port": True}, "port"),
    ("recv", {"sock": 9999}, "sock"), ("shutdown", {"how": "sideways"}, "how"),
    ("setsockopt", {"option": "TCP_NODELAY", "value": "yes"}, "value"),
    ("states", {"source": 1}, "source"), ("states", {"source": "sysfs"}, "source"),
    ("frobnicate", {}, "op")])
def test_bad_arguments_are_bad_requests(agent, op, args, named):
    """A wrong argument is the suite's mistake: the engine cannot decide the case."""
    if op in ("shutdown", "setsockopt"):        # on a handle that exists
        args = {"sock": agent.call("listen", port=0, addr=TARGET_IP)["sock"], **args}
    error, message = error_of(agent, op, **args)
    assert error == "bad-request" and message.startswith(named), message


def test_states_show_rcv_nxt_moving_when_lwip_takes_text_or_a_fin(agent):
    """With received, each connection's rcv_nxt (what a fence.Mark compares),
    null for a listener; a bool or nothing else."""
    p = pair(agent)

    def received(local, remote):
        [row] = agent.call("states", local_port=local, remote_port=remote,
                           received=True)["connections"]
        return row["received"]

    before = received(p["port"], p["cport"])
    agent.call("send", sock=p["client"], size=10)
    deadline = time.monotonic() + 2.0
    while received(p["port"], p["cport"]) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert received(p["port"], p["cport"]) == (before + 10) % 2**32
    agent.call("shutdown", sock=p["client"], how="wr")
    wait_state(agent, p["port"], p["cport"], "CLOSE-WAIT")
    assert received(p["port"], p["cport"]) == (before + 11) % 2**32
    listener = [r for r in agent.call("states", local_port=p["port"],
                                      received=True)["connections"] if r["state"] == "LISTEN"]
    assert listener[0]["received"] is None
    assert "received" not in agent.call("states", local_port=p["port"])["connections"][0]
    error, message = error_of(agent, "states", received=1)
    assert error == "bad-request" and message == "received: expected bool, got int"


def test_states_has_no_netlink(agent):
    assert error_of(agent, "states", source="netlink")[0] == "unsupported"


def test_cleanup_aborts_everything(lwip):
    pair(lwip)
    assert lwip.call("cleanup")["aborted"] > 0
    assert [r for r in lwip.call("states")["connections"] if r["state"] != "TIME-WAIT"] == []
