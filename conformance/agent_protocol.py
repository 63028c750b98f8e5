"""The agent protocol: what every tcpconf target agent shares.

The suite drives the application on the target through an agent: the Linux
agent (conformance/agent.py, also run inside gVisor and on hosts the suite
did not build), the PyTCP agent (targets/pytcp/agent.py) and lwIP's C agent
(targets/lwip/src/agent.c) all speak this protocol.  This module is the
protocol layer of the two Python agents: requests parsed and dispatched,
arguments checked, errors turned into replies, the hello, the serving loop.

It is shipped to the target with the Linux agent (agent_bootstrap.py), so
it is held to the agent's rules: standard library only, Python 3.6+ (no
annotations, no walrus), and no reliance on ``__file__``.

Protocol (version 1): one JSON object per line each way, UTF-8.

    request:  {"id": <int>, "op": "<name>", ...arguments}
    response: {"id": <same>, "ok": true, ...results}
              {"id": <same>, "ok": false, "error": "<ERRNO NAME or word>",
               "message": "<human text>"}

The agent speaks first: a response with id 0 whose "hello" says who it is
(agent, protocol, python, system, hostname).

Error words: an errno name such as "ECONNRESET" for an OSError,
"timeout" when an operation's own timeout expires, "bad-request" for an
unknown op or a missing/wrongly typed argument, "unsupported" when the
host lacks a facility, "agent-error" for anything unexpected.  The agent
never dies on a bad request.

Addresses are rendered "ip:port" (IPv6 unbracketed, e.g. "::1:80"; split
with ``rsplit(":", 1)``).

Diagnostics go to stderr only; stdout carries nothing but responses.
"""

import base64
import errno
import json
import os
import socket
import sys

PROTOCOL = 1
AGENT_NAME = "tcpconf-agent"

# Printable pattern used by ``send`` with ``size``.
PATTERN = (b"0123456789abcdefghijklmnopqrstuvwxyz"
           b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# The socket options a request may name (Linux's names), by prefix, with
# the socket level each prefix stands for.
OPTION_LEVELS = (
    ("SO_", socket.SOL_SOCKET),
    ("TCP_", socket.IPPROTO_TCP),
    ("IPV6_", getattr(socket, "IPPROTO_IPV6", 41)),
    ("IP_", socket.IPPROTO_IP),
)

_REQUIRED = object()


class BadRequest(Exception):
    """The request itself is malformed: reported as "bad-request"."""


class OpTimeout(Exception):
    """An operation's own timeout expired: reported as "timeout"."""


class Unsupported(Exception):
    """The host lacks a facility the op needs: reported as "unsupported"."""


ERROR_WORDS = ((BadRequest, "bad-request"), (OpTimeout, "timeout"),
               (Unsupported, "unsupported"))


class ProtocolAgent(object):
    """What every agent does with requests: the sockets it holds by
    handle, each request dispatched to the method ``op_<name>``, failures
    reported as error replies, and ``quit``.

    An agent subclasses it with its ``op_`` methods and the ``entry_type``
    its sockets are held in (constructed with the socket and its kind,
    "listen" or "conn").
    """

    entry_type = None

    def __init__(self):
        self.socks = {}
        self.next_handle = 1
        self.quitting = False

    def add(self, sock, kind):
        """Hold ``sock``; its handle, for the reply."""
        handle = self.next_handle
        self.next_handle += 1
        self.socks[handle] = self.entry_type(sock, kind)
        return handle

    def entry(self, req):
        """The entry of the request's ``sock`` handle."""
        handle = arg(req, "sock", int)
        try:
            return self.socks[handle]
        except KeyError:
            raise BadRequest("sock: unknown handle %d" % handle)

    def release(self, req):
        """The entry of the request's ``sock``, no longer held (close, abort)."""
        ent = self.entry(req)
        del self.socks[arg(req, "sock", int)]
        return ent

    def op_quit(self, req):
        """Stop after this response; open sockets close with the process."""
        self.quitting = True
        return {}

    def handle(self, line):
        """Turn one request line into one response dict."""
        try:
            req = json.loads(line.decode("utf-8"))
        except ValueError as e:
            return fail(None, "bad-request", "not a JSON line: %s" % e)
        if not isinstance(req, dict):
            return fail(None, "bad-request", "request must be a JSON object")
        rid = req.get("id")
        if rid is not None and (not isinstance(rid, int)
                                or isinstance(rid, bool)):
            return fail(None, "bad-request", "id: must be an integer")
        op = req.get("op")
        func = getattr(self, "op_" + op, None) if isinstance(op, str) else None
        if func is None:
            return fail(rid, "bad-request", "op: unknown operation %r" % (op,))
        try:
            result = func(req)
        except Exception as e:  # never die on a request
            error, message = self.error_reply(op, e)
            return fail(rid, error, message)
        response = {"id": rid, "ok": True}
        response.update(result)
        return response

    def error_reply(self, op, exc):
        """The error word and message that report ``exc``, raised by ``op``.

        Called inside the ``except`` clause, so an agent that overrides it
        can still log the traceback.
        """
        for kind, word in ERROR_WORDS:
            if isinstance(exc, kind):
                return word, str(exc)
        if isinstance(exc, OSError) and exc.errno is not None:
            return (errno_name(exc.errno),
                    exc.strerror or os.strerror(exc.errno))
        return "agent-error", repr(exc)


def arg(req, name, kind, default=_REQUIRED):
    """Fetch argument ``name`` of type ``kind``; BadRequest naming it.

    ``bool`` is never accepted for int/float (it is an int subclass in
    Python, but true/false for a port is a caller bug); an int is accepted
    for float.  A default of None makes the argument nullable; ``object``
    accepts any JSON value.
    """
    if name not in req or (req[name] is None and default is None):
        if default is _REQUIRED:
            raise BadRequest("%s: missing" % name)
        return default
    value = req[name]
    if kind in (int, float):
        ok = isinstance(value, (int, float) if kind is float else int)
        ok = ok and not isinstance(value, bool)
        if ok and kind is float:
            value = float(value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise BadRequest("%s: expected %s, got %s"
                         % (name, kind.__name__, type(value).__name__))
    return value


def send_payload(req):
    """The bytes to send: exactly one of data, data_b64, size."""
    given = [k for k in ("data", "data_b64", "size") if k in req]
    if len(given) != 1:
        raise BadRequest("data: give exactly one of data, data_b64, size")
    if given[0] == "data":
        return arg(req, "data", str).encode("utf-8")
    if given[0] == "data_b64":
        try:
            return base64.b64decode(arg(req, "data_b64", str), validate=True)
        except ValueError as e:
            raise BadRequest("data_b64: %s" % e)
    size = arg(req, "size", int)
    if size < 0:
        raise BadRequest("size: must not be negative")
    reps = size // len(PATTERN) + 1
    return (PATTERN * reps)[:size]


def resolve_option(name):
    """Map an option name to (level, optname) or raise BadRequest."""
    for prefix, level in OPTION_LEVELS:
        if name.startswith(prefix):
            optname = getattr(socket, name, None)
            if isinstance(optname, int):
                return level, optname
            break
    raise BadRequest("option: unknown socket option %r" % (name,))


def check_sockopts(opts):
    """Validate a {name: value} dict before any socket is created."""
    for name, value in opts.items():
        resolve_option(name)
        if not isinstance(value, int):  # bool is an int: True -> 1
            raise BadRequest("value: option %s expects int or bool, got %s"
                             % (name, type(value).__name__))


def errno_name(num):
    return errno.errorcode.get(num, "E%d" % num)


def fail(rid, error, message):
    return {"id": rid, "ok": False, "error": error, "message": message}


def hello(**fields):
    """The agent's introduction (the response with id 0): the protocol
    and where it runs.  An agent adds ``fields`` or replaces ``system``."""
    u = os.uname()
    introduction = {"agent": AGENT_NAME, "protocol": PROTOCOL,
                    "python": sys.version.split()[0],
                    "system": "%s %s %s" % (u.sysname, u.release, u.machine),
                    "hostname": socket.gethostname()}
    introduction.update(fields)
    return introduction


def write(out, obj):
    out.write(json.dumps(obj) + "\n")
    out.flush()


def serve(agent, introduction, out):
    """Say hello on ``out``, then answer request lines from stdin until it
    ends (the suite went away: the same as quit) or the agent quits."""
    write(out, {"id": 0, "ok": True, "hello": introduction})
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        response = agent.handle(line)
        try:
            write(out, response)
        except (BrokenPipeError, OSError):
            break
        if agent.quitting:
            break
