#!/usr/bin/env python3
"""The lwIP agent's protocol, checked over lwIP's own loopback (run as root).

    .venv/bin/python targets/lwip/protocol_check.py [--valgrind]

The counterpart of tests/test_agent.py for lwip-agent: the agent runs in a
throwaway network namespace holding only a tap device (no lab, no wire:
lwIP talks to its own address through its loopback), and every op of the
protocol is driven through the suite's AgentClient, with the replies and
error words the suite relies on checked.  Where lwIP's sockets API differs
from Linux's, the check states what lwIP does (ECONNRESET for a refused
connect, ENOTCONN for a send after shutdown).  The namespace and the agent
are removed at the end, on failure and on Ctrl-C/SIGTERM too.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from conformance.agent_client import AGENT_SOURCE, AgentClient, AgentError  # noqa: E402

AGENT = HERE / "build" / "lwip-agent"
IP4, IP6 = "198.18.0.2", "2001:2::2"


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""),
              flush=True)
        return ok


def error_of(agent, op, **args):
    try:
        agent.call(op, **args)
    except AgentError as e:
        return e.error, e.message
    return None, ""


def pair(agent, addr=IP4):
    listener = agent.call("listen", port=0, addr=addr)
    client = agent.call("connect", addr=addr, port=listener["port"])
    agent.call("wait_connected", sock=client["sock"])
    server = agent.call("accept", sock=listener["sock"])
    return {"listener": listener["sock"], "port": listener["port"], "client": client["sock"],
            "cport": client["local_port"], "server": server["sock"], "peer": server["peer"]}


def state(agent, lport, rport):
    rows = agent.call("states", local_port=lport, remote_port=rport)["connections"]
    return rows[0]["state"] if rows else None


def wait_state(agent, lport, rport, wanted, within=2.0):
    deadline = time.monotonic() + within
    while True:
        got = state(agent, lport, rport)
        if got == wanted or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def run_checks(agent, check: Checks) -> None:
    h = agent.hello
    check("hello", h.get("agent") == "tcpconf-agent" and h.get("protocol") == 1,
          h.get("system", ""))

    p = pair(agent)
    check("listen/connect/accept", p["peer"] == f"{IP4}:{p['cport']}", p["peer"])
    rows = agent.call("states", local_port=p["port"])["connections"]
    check("states: LISTEN row", {"local": f"{IP4}:{p['port']}", "remote": "0.0.0.0:0",
                                 "state": "LISTEN"} in rows, repr(rows))
    check("states: both ends ESTABLISHED",
          state(agent, p["port"], p["cport"]) == state(agent, p["cport"], p["port"])
          == "ESTABLISHED")
    check("states: remote_addr filter (also the ::ffff: form)",
          len(agent.call("states", local_port=p["port"], remote_addr=IP4)["connections"]) == 1
          and len(agent.call("states", local_port=p["port"],
                             remote_addr="::ffff:" + IP4)["connections"]) == 1
          and agent.call("states", local_port=p["port"],
                         remote_addr="198.18.0.9")["connections"] == [])

    agent.call("send", sock=p["client"], data="héllo")
    got = agent.call("recv", sock=p["server"])
    check("send/recv text", got.get("text") == "héllo", repr(got))
    raw = bytes([0xff, 0x00, 0x80])
    agent.call("send", sock=p["server"], data_b64=base64.b64encode(raw).decode())
    got = agent.call("recv", sock=p["client"])
    check("send/recv binary (text null)", base64.b64decode(got["data_b64"]) == raw
          and got["text"] is None)
    sent = agent.call("send", sock=p["client"], size=100000, timeout=5.0)["sent"]
    data = b""
    while len(data) < 100000:
        try:
            data += base64.b64decode(agent.call("recv", sock=p["server"])["data_b64"])
        except AgentError:
            break
    check("send size=100000 arrives whole", sent == 100000 and len(data) == 100000
          and data.decode("ascii").isprintable())
    check("recv timeout", error_of(agent, "recv", sock=p["server"], timeout=0.1)[0] == "timeout")
    check("accept timeout",
          error_of(agent, "accept", sock=p["listener"], timeout=0.1)[0] == "timeout")

    agent.call("send", sock=p["client"], data="last")
    agent.call("shutdown", sock=p["client"], how="wr")
    check("recv after peer shutdown: data, then eof, eof again",
          agent.call("recv", sock=p["server"]).get("text") == "last"
          and agent.call("recv", sock=p["server"]).get("eof") is True
          and agent.call("recv", sock=p["server"]).get("eof") is True)
    err = error_of(agent, "send", sock=p["client"], data="x")[0]
    check("send after shutdown fails", err in ("EPIPE", "ENOTCONN"),
          f"lwIP says {err} (Linux: EPIPE)")
    agent.call("send", sock=p["server"], data="reply")
    check("half-closed side still receives",
          agent.call("recv", sock=p["client"]).get("text") == "reply")
    check("FIN-WAIT-2 / CLOSE-WAIT",
          wait_state(agent, p["cport"], p["port"], "FIN-WAIT-2") == "FIN-WAIT-2"
          and state(agent, p["port"], p["cport"]) == "CLOSE-WAIT")
    agent.call("close", sock=p["server"])
    check("TIME-WAIT after both close",
          wait_state(agent, p["cport"], p["port"], "TIME-WAIT") == "TIME-WAIT")
    check("closed handle is a bad request",
          error_of(agent, "recv", sock=p["server"])[0] == "bad-request")

    p = pair(agent)
    agent.call("abort", sock=p["client"])
    check("recv after peer abort: ECONNRESET",
          error_of(agent, "recv", sock=p["server"])[0] == "ECONNRESET")
    check("abort leaves no connection block", state(agent, p["cport"], p["port"]) is None)
    p = pair(agent)
    agent.call("abort", sock=p["client"])
    deadline, err = time.monotonic() + 2, None
    while err is None and time.monotonic() < deadline:
        err = agent.call("sockerror", sock=p["server"])["error"]
    check("sockerror after peer abort: ECONNRESET, then cleared",
          err == "ECONNRESET" and agent.call("sockerror", sock=p["server"])["error"] is None)

    closed = agent.call("listen", port=0, addr=IP4)
    agent.call("close", sock=closed["sock"])
    c = agent.call("connect", addr=IP4, port=closed["port"])
    err = error_of(agent, "wait_connected", sock=c["sock"])[0]
    check("connect to a closed port fails", err in ("ECONNREFUSED", "ECONNRESET"),
          f"lwIP says {err} (Linux: ECONNREFUSED)")

    p = pair(agent)
    results = {}
    for option, value in [("SO_RCVBUF", 65536), ("TCP_NODELAY", True), ("SO_KEEPALIVE", 1),
                          ("SO_LINGER", 5), ("SO_LINGER", -1), ("TCP_KEEPIDLE", 10),
                          ("TCP_USER_TIMEOUT", 1000), ("SO_OOBINLINE", 1), ("TCP_MAXSEG", 1000)]:
        results[option] = error_of(agent, "setsockopt", sock=p["client"], option=option,
                                   value=value)[0] or "ok"
    check("setsockopt: lwIP's options ok, the others 'unsupported'",
          all(results[o] == "ok" for o in ("SO_RCVBUF", "TCP_NODELAY", "SO_KEEPALIVE",
                                           "SO_LINGER", "TCP_KEEPIDLE"))
          and all(results[o] == "unsupported"
                  for o in ("TCP_USER_TIMEOUT", "SO_OOBINLINE", "TCP_MAXSEG")),
          ", ".join(f"{k}: {v}" for k, v in results.items()))
    err, msg = error_of(agent, "setsockopt", sock=p["client"], option="SO_BOGUS", value=1)
    check("unknown option is a bad request naming it", err == "bad-request" and "SO_BOGUS" in msg)

    listener = agent.call("listen", port=0, addr=IP4)
    probe = agent.call("listen", port=0, addr=IP4)
    agent.call("close", sock=probe["sock"])
    c = agent.call("connect", addr=IP4, port=listener["port"], local_addr=IP4,
                   local_port=probe["port"])
    agent.call("wait_connected", sock=c["sock"])
    s = agent.call("accept", sock=listener["sock"])
    check("connect from a given local port", s["peer"] == f"{IP4}:{probe['port']}", s["peer"])

    p6 = pair(agent, IP6)
    check("IPv6 pair", p6["peer"] == f"{IP6}:{p6['cport']}", p6["peer"])
    dual = agent.call("listen", port=0, addr="::")
    c = agent.call("connect", addr=IP4, port=dual["port"])
    agent.call("wait_connected", sock=c["sock"])
    s = agent.call("accept", sock=dual["sock"])
    rows = agent.call("states", local_port=dual["port"])["connections"]
    check("dual-stack listener on ::", s["peer"] in (f"::ffff:{IP4}:{c['local_port']}",
                                                     f"{IP4}:{c['local_port']}")
          and {"local": f":::{dual['port']}", "remote": ":::0", "state": "LISTEN"} in rows,
          f"peer {s['peer']}, rows {rows}")

    for op, args, named in [("listen", {}, "port"), ("listen", {"port": "80"}, "port"),
                            ("listen", {"port": True}, "port"), ("recv", {"sock": 9999}, "sock"),
                            ("shutdown", {"sock": 1, "how": "sideways"}, "how"),
                            ("setsockopt", {"sock": 1, "option": "TCP_NODELAY", "value": "yes"},
                             "value"),
                            ("states", {"source": 1}, "source"),
                            ("states", {"source": "sysfs"}, "source"),
                            ("frobnicate", {}, "op")]:
        err, msg = error_of(agent, op, **args)
        check(f"bad request: {op} {args}", err == "bad-request" and msg.startswith(named), msg)
    err, _ = error_of(agent, "states", source="netlink")
    check("states source netlink: unsupported (lwIP has none)", err == "unsupported")

    # A socket left open on a connection in TIME-WAIT (shutdown, then the
    # peer's FIN): lwIP frees such a pcb without telling the netconn; the
    # agent must neither crash nor touch freed memory (see --valgrind).
    p = pair(agent)
    agent.call("shutdown", sock=p["client"], how="wr")
    agent.call("close", sock=p["server"])
    check("TIME-WAIT with the socket still open",
          wait_state(agent, p["cport"], p["port"], "TIME-WAIT") == "TIME-WAIT")
    agent.call("abort", sock=p["client"])
    check("abort in TIME-WAIT deletes the TCB", state(agent, p["cport"], p["port"]) is None)
    p = pair(agent)
    agent.call("shutdown", sock=p["client"], how="wr")
    agent.call("close", sock=p["server"])
    wait_state(agent, p["cport"], p["port"], "TIME-WAIT")
    check("send on it afterwards fails cleanly",
          error_of(agent, "send", sock=p["client"], data="x")[0] is not None)

    # Abort in SYN-SENT (nobody answers 198.18.0.77: the SYN waits on ARP).
    c = agent.call("connect", addr="198.18.0.77", port=9)
    check("SYN-SENT while unanswered",
          state(agent, c["local_port"], 9) == "SYN-SENT")
    agent.call("abort", sock=c["sock"])
    check("abort in SYN-SENT deletes the TCB", state(agent, c["local_port"], 9) is None)
    c = agent.call("connect", addr="198.18.0.77", port=9)
    agent.call("close", sock=c["sock"])
    check("close in SYN-SENT deletes the TCB", state(agent, c["local_port"], 9) is None)
    # Options given to listen apply before listen(), TCP ones included.
    lo = agent.call("listen", port=0, addr=IP4, sockopts={"TCP_NODELAY": 1, "SO_RCVBUF": 1024})
    agent.call("close", sock=lo["sock"])
    check("listen with sockopts", lo["port"] > 0)
    # Closing a listener with connections queued but never accepted.
    listener = agent.call("listen", port=0, addr=IP4)
    queued = [agent.call("connect", addr=IP4, port=listener["port"]) for _ in range(3)]
    for q in queued:
        agent.call("wait_connected", sock=q["sock"])
    agent.call("close", sock=listener["sock"])
    time.sleep(0.2)
    errors = [agent.call("sockerror", sock=q["sock"])["error"] for q in queued]
    check("closing a listener resets its unaccepted connections",
          all(e == "ECONNRESET" for e in errors)
          and agent.call("states", local_port=listener["port"])["connections"] == [],
          f"clients see {errors}")

    aborted = agent.call("cleanup")["aborted"]
    left = [r for r in agent.call("states")["connections"] if r["state"] != "TIME-WAIT"]
    check("cleanup aborts everything", aborted > 0 and left == [], f"aborted {aborted}, left {left}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--valgrind", action="store_true", help="run the agent under valgrind")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("protocol_check.py: run as root", file=sys.stderr)
        return 2
    if not AGENT.exists() and subprocess.run(["make", "-C", str(HERE)]).returncode != 0:
        return 2
    if args.valgrind and not shutil.which("valgrind"):
        print("protocol_check.py: valgrind is missing", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    ns = f"lwipcheck-{os.getpid()}"
    check, agent, vg_log = Checks(), None, Path(f"/tmp/lwipcheck-valgrind-{os.getpid()}.log")
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", "lwip0", "mode", "tap"],
                       check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lwip0", "up"], check=True)
        prefix = ["ip", "netns", "exec", ns]
        if args.valgrind:
            prefix += ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                       f"--log-file={vg_log}"]
        agent = AgentClient.start(prefix + [str(AGENT), "--tap", "lwip0", "--ip", f"{IP4}/24",
                                            "--ip6", IP6, "--mac", "02:00:c6:12:00:02",
                                            "--skip-stdin", str(len(AGENT_SOURCE)), "--"],
                                  timeout=60.0)
        run_checks(agent, check)
        agent.call("quit")
        code = agent._proc.wait(timeout=60)
        check("agent exits after quit", code == 0, f"exit status {code}")
        if args.valgrind:
            text = vg_log.read_text(errors="replace")
            summary = [line.split("== ", 1)[-1] for line in text.splitlines()
                       if "ERROR SUMMARY" in line or "definitely lost" in line]
            check("valgrind clean", "ERROR SUMMARY: 0 errors" in text, "; ".join(summary))
    except KeyboardInterrupt:
        check("run", False, "interrupted")
    except Exception as e:  # noqa: BLE001 - report, then clean up
        check("run", False, f"{type(e).__name__}: {e}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if agent is not None:
            if check.failed:
                print(agent.stderr_tail(), file=sys.stderr)
            agent.close()
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        if vg_log.exists() and not check.failed:
            vg_log.unlink()
    print(f"\nlwip-agent protocol: {check.passed} passed, {check.failed} failed")
    return 0 if check.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
