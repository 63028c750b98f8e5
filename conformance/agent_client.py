"""Suite-side client for the target agent (see agent_protocol.py for the protocol).

The agent is not installed on the target: its source is piped through the
same stdin that later carries the protocol, using a tiny bootstrap given
on the command line (agent_bootstrap.py).  Any command prefix that runs a
program "over there" with stdin/stdout attached works::

    AgentClient.start(["ip", "netns", "exec", "tcpconf-1234-target"])
    AgentClient.start(["ssh", "user@host"], remote_shell=True)
    AgentClient.start(["docker", "exec", "-i", "container"])
    AgentClient.start([])                      # local process

Every wait is bounded: responses are read by a daemon thread into a
queue, so a hung or dead agent raises AgentDied instead of hanging the
suite.
"""

from __future__ import annotations

import collections
import itertools
import json
import queue
import shlex
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional

from .agent_bootstrap import AGENT_SOURCE, agent_argv
from .agent_protocol import AGENT_NAME, PROTOCOL

STDERR_LINES = 50
DEFAULT_CALL_TIMEOUT = 10.0   # client wait when no timeout is given
RESPONSE_GRACE = 5.0          # extra client wait beyond an op's timeout

_EOF = object()


class AgentFailure(Exception):
    """Base class of everything the agent client raises."""


class AgentError(AgentFailure):
    """The agent answered ``ok: false``: the operation failed over there.

    ``error`` is an errno name ("ECONNRESET") or a word ("timeout",
    "bad-request", "unsupported", "agent-error").
    """

    def __init__(self, op: str, error: str, message: str):
        super().__init__(op, error, message)
        self.op = op
        self.error = error
        self.message = message

    def __str__(self) -> str:
        return "%s: %s: %s" % (self.op, self.error, self.message)


class AgentDied(AgentFailure):
    """The agent is gone or unresponsive; the client is unusable after it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class AgentClient:
    """One running agent process and its request/response channel."""

    def __init__(self, proc: subprocess.Popen, prefix: List[str]):
        self._proc = proc
        self._prefix = list(prefix)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._responses: "queue.Queue[Any]" = queue.Queue()
        self._stderr: "collections.deque[str]" = collections.deque(
            maxlen=STDERR_LINES)
        self._dead: Optional[str] = None
        self._closed = False
        self.hello: Dict[str, Any] = {}
        self._threads = [
            threading.Thread(target=_read_responses, daemon=True,
                             args=(proc.stdout, self._responses, self._stderr),
                             name="agent-stdout-%d" % proc.pid),
            threading.Thread(target=_read_lines, daemon=True,
                             args=(proc.stderr, self._stderr),
                             name="agent-stderr-%d" % proc.pid),
        ]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------ start

    @classmethod
    def start(cls, prefix: List[str], python: str = "python3",
              timeout: float = 10.0, *,
              remote_shell: bool = False) -> "AgentClient":
        """Spawn the agent through ``prefix`` (agent_bootstrap.agent_argv)
        and await hello."""
        return cls.attach(cls.spawn(prefix, python, remote_shell=remote_shell),
                          prefix, timeout)

    @staticmethod
    def spawn(prefix: List[str], python: str = "python3", *,
              remote_shell: bool = False) -> subprocess.Popen:
        """The agent's process, started through ``prefix``; ``attach``
        sends it the source and awaits hello.  Apart, so that a target can
        let the interpreter start while it does other work."""
        argv = agent_argv(prefix, python, remote_shell=remote_shell)
        try:
            return subprocess.Popen(argv, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, bufsize=-1)
        except OSError as e:
            raise AgentDied("cannot start agent (%s): %s"
                            % (shlex.join(argv), e))

    @classmethod
    def attach(cls, proc: subprocess.Popen, prefix: List[str],
               timeout: float = 10.0) -> "AgentClient":
        """Drive an agent process someone else started (a sandbox's, say):
        send it the agent source and await hello.  On failure the process is
        ended and AgentFailure raised."""
        client = cls(proc, prefix)
        client.ready(timeout)
        return client

    def ready(self, timeout: float = 10.0) -> None:
        """Send the agent source and await hello; on failure the process is
        ended and AgentFailure raised."""
        try:
            self._handshake(timeout)
        except BaseException:
            self.close()
            raise

    def _handshake(self, timeout: float) -> None:
        try:
            # Well under a pipe buffer, so this cannot block on a stuck peer.
            self._proc.stdin.write(AGENT_SOURCE)
            self._proc.stdin.flush()
        except OSError as e:
            self._die("could not send agent source: %s" % e)
        response = self._await(0, "hello", timeout)
        hello = response.get("hello")
        if (not isinstance(hello, dict)
                or hello.get("agent") != AGENT_NAME):
            self._die("unexpected hello: %r" % (response,))
        if hello.get("protocol") != PROTOCOL:
            self._die("agent speaks protocol %r, client %d"
                      % (hello.get("protocol"), PROTOCOL))
        self.hello = hello

    # ------------------------------------------------------------ calls

    @property
    def pid(self) -> int:
        """PID of the local process (for ssh/docker: the ssh/docker one)."""
        return self._proc.pid

    def call(self, op: str, timeout: Optional[float] = None, *,
             call_timeout: Optional[float] = None,
             **args: Any) -> Dict[str, Any]:
        """Run ``op`` with ``args``; return the response dict if ok.

        ``timeout`` is both the op's own ``timeout`` argument (accept,
        wait_connected, send, recv) and the basis of the client's wait:
        ops have an argument named ``timeout`` and Python cannot take the
        keyword twice, so when given it is forwarded to the agent (ops
        without one ignore it) and the client waits ``timeout +
        RESPONSE_GRACE`` so the agent's own "timeout" error can arrive.
        Without it the agent uses the op's default and the client waits
        DEFAULT_CALL_TIMEOUT.  ``call_timeout`` overrides the client wait.

        Raises AgentError when the agent reports failure and AgentDied when
        it exits, the pipe breaks or no answer comes in time (the process
        is then killed: a late answer could not be trusted to line up with
        the next request).
        """
        if timeout is not None:
            args["timeout"] = timeout
        if call_timeout is None:
            call_timeout = (DEFAULT_CALL_TIMEOUT if timeout is None
                            else timeout + RESPONSE_GRACE)
        with self._lock:
            if self._dead is not None:
                raise AgentDied(self._dead)
            if self._closed:
                raise AgentDied("agent client is closed")
            rid = next(self._ids)
            request = dict(args)
            request.update(id=rid, op=op)
            line = (json.dumps(request) + "\n").encode("utf-8")
            try:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            except (OSError, ValueError) as e:
                self._die("cannot send %s request: %s" % (op, e))
            response = self._await(rid, op, call_timeout)
        if response.get("ok") is True:
            return response
        raise AgentError(op, str(response.get("error", "agent-error")),
                         str(response.get("message", "")))

    def _await(self, rid: int, op: str, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._die("no response to %s within %.3gs" % (op, timeout),
                          kill=True)
            try:
                item = self._responses.get(timeout=left)
            except queue.Empty:
                continue
            if item is _EOF:
                self._die("agent exited during %s" % op)
            if item.get("id") == rid:
                return item
            # A response to an earlier request that we gave up on, or an
            # id-less error about an unparsable line: keep for diagnosis.
            self._stderr.append("unexpected response: %s" % json.dumps(item))

    def _die(self, reason: str, kill: bool = False) -> None:
        """Mark the agent dead and raise AgentDied with the stderr tail."""
        if kill:
            self._stop_process(grace=0.0)
        else:
            # Give the process a moment to finish writing stderr / exit.
            try:
                self._proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            self._threads[1].join(timeout=0.5)
        rc = self._proc.poll()
        message = "%s (pid %d, %s)" % (
            reason, self._proc.pid,
            "running" if rc is None else "exit status %d" % rc)
        tail = self.stderr_tail()
        if tail:
            message += "\nagent stderr:\n" + tail
        self._dead = message
        raise AgentDied(message)

    def stderr_tail(self) -> str:
        """The last lines the agent wrote to stderr (and stray stdout)."""
        return "\n".join(list(self._stderr))

    # ----------------------------------------------------------- closing

    def close(self) -> None:
        """Ask the agent to quit; terminate/kill this process if it won't.

        Only this client's own Popen process is ever signalled.  Safe to
        call more than once.
        """
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None and self._dead is None:
            try:
                self._proc.stdin.write(b'{"op": "quit"}\n')
                self._proc.stdin.flush()
            except (OSError, ValueError):
                pass
        self._stop_process(grace=2.0)
        for stream in (self._proc.stdin, self._proc.stdout,
                       self._proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def _stop_process(self, grace: float) -> None:
        proc = self._proc
        try:
            proc.stdin.close()  # EOF also means quit
        except (OSError, ValueError):
            pass
        for step in ("wait", "terminate", "kill"):
            if step == "terminate":
                proc.terminate()
            elif step == "kill":
                proc.kill()
            try:
                proc.wait(timeout=grace if step == "wait" else 2.0)
                break
            except subprocess.TimeoutExpired:
                continue
        for t in self._threads:
            t.join(timeout=1.0)

    def alive(self) -> bool:
        """True while the agent process runs and answers."""
        return (self._dead is None and not self._closed
                and self._proc.poll() is None)

    @property
    def returncode(self) -> Optional[int]:
        return self._proc.poll()

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<AgentClient pid=%d %s>" % (
            self._proc.pid, shlex.join(self._prefix) or "local")


# The readers of the agent's pipes, each in a thread of its own: responses
# into a queue (then _EOF), anything else into the tail of lines kept for
# diagnosis.

def _read_responses(stream, responses: queue.Queue, tail: collections.deque) -> None:
    try:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            try:
                item = json.loads(text)
            except ValueError:
                item = None
            if isinstance(item, dict):
                responses.put(item)
            elif text:
                # e.g. a login banner printed by a remote shell
                tail.append("stdout: " + text)
    except (OSError, ValueError):
        pass
    finally:
        responses.put(_EOF)


def _read_lines(stream, tail: collections.deque) -> None:
    try:
        for raw in iter(stream.readline, b""):
            tail.append(raw.decode("utf-8", "replace").rstrip())
    except (OSError, ValueError):
        pass
