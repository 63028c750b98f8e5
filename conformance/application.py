"""The target's application in a case: what ``app`` steps ask of it, and the
TCP states it can show.

:class:`Application` drives it through the agent: listen, accept, connect,
send, receive, close, socket options, and reads the kernel's states.  Agent
errors that are the suite's or the host's, not the stack's, make the case
undecidable; an operation the target's API lacks makes it not applicable.
:class:`BlackBoxApplication` stands for a target that runs no agent: its own
service listens on the port the user named and accepts by itself, nothing
else can be asked of it, and no state can be read (a wire probe decides
final state checks, see the engine).  The engine chooses one of the two once.
"""

from __future__ import annotations

import base64
import time

from . import fence, tcp
from .agent_client import AgentError
from .evidence import AppEvent, Event, NoteEvent
from .outcomes import CannotDecide, NotApplicable, StepFailed
from .steps import App, fmt_duration, is_errno
from .stream import Flow
from .targets import ALL

# Agent errors that are the suite's fault or a broken target host, never the
# target's TCP behaviour.
_TOOL_ERRORS = ("bad-request", "agent-error", "unsupported")


class Application:
    """The target's application, driven through the agent."""

    # The agent closes what a case opened (its cleanup); the tester need not.
    closes_connections = True

    def __init__(self, target, case, family: str, link, target_port: int,
                 flows: dict[str, Flow], ladder: list[Event]):
        self.target, self.case, self.family, self.link = target, case, family, link
        self.target_port, self.flows, self.ladder = target_port, flows, ladder
        self._by_port = {flow.tester_port: flow for flow in flows.values()}
        self.listener = None

    def call(self, op: str, **args) -> dict:
        try:
            return self.target.agent.call(op, **args)
        except AgentError as exc:
            if exc.error == "unsupported":
                raise NotApplicable(f"not applicable to {self.target.name}: its agent "
                                    f"cannot {op} as the case needs ({exc.message})") from None
            if exc.error in _TOOL_ERRORS:
                raise CannotDecide(f"the target agent could not {op}: {exc}") from None
            raise

    def _note(self, text: str) -> None:
        self.ladder.append(NoteEvent(time.time(), text))

    def _done(self, call: str, result: str) -> None:
        self.ladder.append(AppEvent(time.time(), call, result))

    # -- app steps -----------------------------------------------------------------

    def run(self, step: App, flow: Flow, in_setup: bool) -> bool:
        """One app step for `flow`'s connection; StepFailed when the call's
        outcome is not the one the step expects.  True when the application
        acted (the next step's time counts from now)."""
        op = step.op
        sock = flow.sock if flow.sock is not None else self.listener
        text, result = step.call(), "ok"
        try:
            if op == "listen":
                self.listener = self.call("listen", port=self.target_port,
                                          addr="::" if self.family == tcp.IPV6 else "0.0.0.0",
                                          backlog=self.case.backlog,
                                          sockopts=self.case.sockopts)["sock"]
                text = f"listen on port {self.target_port}, backlog {self.case.backlog}"
            elif op == "accept":
                reply = self.call("accept", sock=self.listener, timeout=step.timeout)
                # The socket belongs to the connection it came from, whichever
                # step accepted it.
                peer_port = int(reply.get("peer", ":0").rsplit(":", 1)[1])
                owner = self._by_port.get(peer_port, flow)
                owner.sock = reply["sock"]
                if len(self.flows) > 1:
                    text = f"accept -> connection {owner.name}"
            elif op == "connect" and flow.sock is not None:
                # The connection was started already (connect returns at once,
                # its SYN on the wire): this step waits for its outcome.
                text = "connect completes" if not step.expect_error else "connect outcome"
                self.call("wait_connected", sock=flow.sock, timeout=step.timeout)
            elif op == "connect":
                flow.sock = self.call("connect", addr=self.link.tester_ip, port=flow.tester_port,
                                      local_port=self.target_port,
                                      sockopts=self.case.sockopts)["sock"]
                text = f"connect to {self.link.tester_ip}:{flow.tester_port}"
            elif op in ("close", "abort"):
                self.call(op, sock=sock)
                if sock == flow.sock:
                    flow.sock = None
                else:
                    self.listener = None
            elif op == "shutdown":
                self.call("shutdown", sock=sock, how="wr")
            elif op == "send":
                result = f"{self.call('send', sock=sock, data=step.argument)['sent']} bytes"
            elif op == "setsockopt":
                for name, value in step.argument.items():
                    self.call("setsockopt", sock=sock, option=name, value=value)
            elif op == "recv":
                result = self._recv(step, sock)
        except AgentError as exc:
            self._done(text, exc.error)
            if step.fails_as_expected(exc.error):
                return True
            if op == "accept" and exc.error == "timeout":
                raise StepFailed(step, "a connection to accept",
                                 f"none completed within {fmt_duration(step.timeout)}") from None
            wanted = f"{op} fails with {step.expect_error}" if step.expect_error else \
                f"{op} succeeds"
            raise StepFailed(step, wanted, f"{op} failed: {exc.error} ({exc.message})") from None
        self._done(text, result)
        if step.expect_error:
            raise StepFailed(step, f"{op} fails with {step.expect_error}", f"{op} succeeded")
        return True

    def _recv(self, step: App, sock) -> str:
        want = step.argument
        if want == "EOF" or is_errno(want):
            try:
                reply = self.call("recv", sock=sock, timeout=1.0)
            except AgentError as exc:
                if exc.error == want:
                    return exc.error
                raise StepFailed(step, f"recv -> {want}", f"recv failed with {exc.error}") from None
            got = "EOF" if reply.get("eof") else repr(_data(reply))
            if got != want:
                raise StepFailed(step, f"recv -> {want}", f"recv returned {got}")
            return got
        expected, data = want.encode(), b""
        deadline = time.time() + 1.0
        while len(data) < len(expected) and time.time() < deadline:
            try:
                reply = self.call("recv", sock=sock, max=len(expected) - len(data),
                                  timeout=max(0.01, deadline - time.time()))
            except AgentError as exc:
                if exc.error == "timeout":
                    break
                raise StepFailed(step, f"recv {want!r}", f"recv failed with {exc.error}") from None
            if reply.get("eof"):
                break
            data += _data(reply)
        if data != expected:
            raise StepFailed(step, f"recv {want!r}", f"the application read {data!r}")
        return repr(data.decode(errors="replace"))

    # -- states ------------------------------------------------------------------------

    def can_show_state(self, flow: Flow) -> bool:
        """Whether the target can show this connection's state now."""
        if self.target.state_view == ALL:
            return True
        return flow.sock is not None   # "held": only sockets the application holds

    def state(self, flow: Flow, expected: str) -> str:
        """The target kernel's state for the connection, in the case language's
        terms: CLOSED when it has no connection block for the 4-tuple, LISTEN
        (when `expected` is LISTEN) when none is left and the listener is
        there, as RFC 9293 3.10.7.4 means a reset SYN-RECEIVED connection
        "returns to LISTEN"."""
        conns = self.call("states", local_port=self.target_port)["connections"]
        remote = f"{self.link.tester_ip}:{flow.tester_port}"
        state = next((c["state"] for c in conns if c["remote"] == remote), None)
        if state is None:
            # gVisor shows a connecting socket's remote as 0.0.0.0:0 until it
            # is established; each case has its own local port, so such a row
            # on it is this case's connection.
            state = next((c["state"] for c in conns
                          if c["state"] != tcp.LISTEN and _unspecified(c["remote"])), tcp.CLOSED)
        if expected == tcp.LISTEN and state == tcp.CLOSED:
            listening = any(c["state"] == tcp.LISTEN for c in conns)
            return tcp.LISTEN if listening else "CLOSED (no listener left)"
        return state

    def mark(self, flow: Flow) -> fence.Mark | None:
        """The target's state of the connection and how far it has received
        (fence.Mark), or None when it has no connection for the 4-tuple."""
        row = self._received_row(flow)
        return None if row is None else fence.Mark(row["state"], row.get("received"))

    def sends_in(self, flow: Flow) -> float | None:
        """When the target's connection would next send something by itself
        (fence.QUIET_VIEW), in seconds from now: 0 when it has something to
        send at once, None when it has nothing scheduled (nor, if it is gone,
        anything at all).  An agent that cannot tell says 0."""
        row = self._received_row(flow)
        if row is None:
            return None
        if "sends_in" not in row:
            return 0.0
        return None if row["sends_in"] is None else row["sends_in"] / 1000

    def _received_row(self, flow: Flow) -> dict | None:
        """The agent's row for the connection, with what it says of how far
        the connection has received (`states` with received), or None."""
        conns = self.call("states", local_port=self.target_port,
                          received=True)["connections"]
        remote = f"{self.link.tester_ip}:{flow.tester_port}"
        return next((c for c in conns if c["remote"] == remote), None)


class BlackBoxApplication(Application):
    """A target that runs no agent: its own service listens on the user's port
    and accepts by itself; nothing else can be asked of it
    (blackbox.cannot_run keeps cases that need more from running)."""

    closes_connections = False

    def call(self, op: str, **args) -> dict:
        if op == "cleanup":
            return {}
        raise NotApplicable(f"not run in black-box mode: the case needs the agent to {op}")

    def run(self, step: App, flow: Flow, in_setup: bool) -> bool:
        if step.op == "listen":
            self._note(f"the target's own service listens on port {self.target_port} "
                       f"(black-box mode)")
            return False
        if step.op == "accept" and in_setup:
            self._note("the target's service accepts the connection by itself (black-box mode)")
            return False
        return super().run(step, flow, in_setup)

    def can_show_state(self, flow: Flow) -> bool:
        return False


def _unspecified(remote: str) -> bool:
    host, _, port = remote.rpartition(":")
    return port == "0" and host.strip("[]") in ("0.0.0.0", "::", "")


def _data(reply: dict) -> bytes:
    return base64.b64decode(reply.get("data_b64", ""))
