"""tcpconf target agent: performs socket operations on command.

This program runs inside the host under test (a network namespace, a
remote host over ssh, a container) and is driven by the suite through a
line protocol on its stdin/stdout.  It is deliberately self-contained:
standard library only, Python 3.6+ (no annotations, no walrus), and it
never relies on ``__file__`` or on being importable, because it is
started as::

    python3 -u -c "import sys;exec(compile(sys.stdin.buffer.read(N),'tcpconf-agent','exec'))"

with its own source written to stdin first (N = byte length of this
file).  The protocol lines follow on the same stdin.

Protocol (version 1): one JSON object per line each way, UTF-8.

    request:  {"id": <int>, "op": "<name>", ...arguments}
    response: {"id": <same>, "ok": true, ...results}
              {"id": <same>, "ok": false, "error": "<ERRNO NAME or word>",
               "message": "<human text>"}

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
import select
import socket
import struct
import sys
import time

PROTOCOL = 1
AGENT_NAME = "tcpconf-agent"

# Printable pattern used by ``send`` with ``size``.
PATTERN = (b"0123456789abcdefghijklmnopqrstuvwxyz"
           b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# /proc/net/tcp state numbers (include/net/tcp_states.h) -> RFC 9293 names.
# 12 is TCP_NEW_SYN_RECV, the kernel's lightweight request socket for a
# half-open passive connection; on the wire it is SYN-RECEIVED.
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN-SENT",
    3: "SYN-RECEIVED",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "CLOSED",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN-RECEIVED",
}

# Where ``states`` reads the kernel's connections from (see op_states).
STATE_SOURCES = ("auto", "netlink", "proc")

# sock_diag netlink (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h).
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x01
NLM_F_DUMP = 0x300                  # NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1          # request attribute: a filter program
INET_DIAG_BC_S_GE = 2               # filter ops: local port >=, <=,
INET_DIAG_BC_S_LE = 3               # remote port >=, <= (all kernels;
INET_DIAG_BC_D_GE = 4               # the _EQ ops are 4.16+)
INET_DIAG_BC_D_LE = 5
# idiag_states bits 1..12: every state /proc/net/tcp* lists, including
# TIME-WAIT (6) and request sockets (TCP_NEW_SYN_RECV, 12; the kernel
# reports them as state 3), which are dumped only when their bits are
# set.  Not all 32 bits: bit 13 is
# TCP_BOUND_INACTIVE on recent kernels, which adds sockets that are only
# bound (reported as CLOSE, state 7) and that /proc never lists.
DIAG_STATES = sum(1 << state for state in range(1, 13))
NLMSG_HEADER = struct.Struct("=IHHII")     # len, type, flags, seq, pid
# struct inet_diag_req_v2 with an all-zero inet_diag_sockid (48 bytes):
# family, protocol, ext, pad, states.
DIAG_REQUEST = struct.Struct("=BBBBI48x")
# The start of struct inet_diag_msg: family, state, timer, retrans, then
# inet_diag_sockid's sport, dport (network order), src[16], dst[16].
DIAG_MESSAGE = struct.Struct("!BB2xHH16s16s")
DIAG_MESSAGE_SIZE = 72                     # sizeof(struct inet_diag_msg)
NETLINK_TIMEOUT = 2.0

# Option-name prefix -> socket level for setsockopt / sockopts.
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


class Entry(object):
    """A socket the agent holds, named by an integer handle."""

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind            # "listen" or "conn"
        self.pending_error = 0      # connect() error returned synchronously


class Agent(object):
    def __init__(self):
        self.socks = {}
        self.next_handle = 1
        self.quitting = False
        self.warned_netlink = False

    # ----------------------------------------------------------- helpers

    def add(self, sock, kind):
        handle = self.next_handle
        self.next_handle += 1
        self.socks[handle] = Entry(sock, kind)
        return handle

    def entry(self, req):
        handle = arg(req, "sock", int)
        try:
            return self.socks[handle]
        except KeyError:
            raise BadRequest("sock: unknown handle %d" % handle)

    # --------------------------------------------------------------- ops

    def op_listen(self, req):
        port = arg(req, "port", int)
        addr = arg(req, "addr", str, "0.0.0.0")
        backlog = arg(req, "backlog", int, 5)
        sockopts = arg(req, "sockopts", dict, {})
        check_sockopts(sockopts)
        sock = socket.socket(family_of(addr), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            apply_sockopts(sock, sockopts)
            sock.bind((addr, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        local = sock.getsockname()
        return {"sock": self.add(sock, "listen"),
                "local": fmt_addr(local), "port": local[1]}

    def op_accept(self, req):
        ent = self.entry(req)
        timeout = arg(req, "timeout", float, 2.0)
        wait_for(ent.sock, "r", timeout, "accept")
        conn, peer = ent.sock.accept()
        # accept() gives a blocking socket whatever the listener is; every
        # socket the agent holds is non-blocking and waited on with select.
        conn.setblocking(False)
        return {"sock": self.add(conn, "conn"), "peer": fmt_addr(peer),
                "local": fmt_addr(conn.getsockname())}

    def op_connect(self, req):
        """Start a connection and return at once.

        The outcome is collected by ``wait_connected``.  An error that
        connect() reports synchronously (possible on loopback, e.g.
        ECONNREFUSED) is kept and reported there too, so callers see the
        same sequence whatever the timing.  Errors before connect()
        (bind: EADDRINUSE, ...) fail this op directly.
        """
        addr = arg(req, "addr", str)
        port = arg(req, "port", int)
        local_port = arg(req, "local_port", int, None)
        local_addr = arg(req, "local_addr", str, None)
        sockopts = arg(req, "sockopts", dict, {})
        check_sockopts(sockopts)
        family = family_of(addr)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            apply_sockopts(sock, sockopts)
            if local_port is not None or local_addr is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
                sock.bind((local_addr or wildcard, local_port or 0))
            sock.setblocking(False)
            rc = sock.connect_ex((addr, port))
        except BaseException:
            sock.close()
            raise
        handle = self.add(sock, "conn")
        if rc not in (0, errno.EINPROGRESS, errno.EALREADY,
                      errno.EWOULDBLOCK):
            self.socks[handle].pending_error = rc
        result = {"sock": handle}
        try:
            local = sock.getsockname()
            result["local"] = fmt_addr(local)
            result["local_port"] = local[1]
        except OSError:
            pass
        return result

    def op_wait_connected(self, req):
        ent = self.entry(req)
        timeout = arg(req, "timeout", float, 2.0)
        if ent.pending_error:
            err, ent.pending_error = ent.pending_error, 0
            raise OSError(err, os.strerror(err))
        wait_for(ent.sock, "w", timeout, "connection")
        err = ent.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
        # Writable with no error but not connected: the failure was already
        # consumed (e.g. by sockerror); getpeername raises ENOTCONN.
        ent.sock.getpeername()
        return {}

    def op_send(self, req):
        ent = self.entry(req)
        data = send_payload(req)
        timeout = arg(req, "timeout", float, 2.0)
        deadline = time.monotonic() + timeout
        sent = 0
        view = memoryview(data)
        while sent < len(data):
            left = deadline - time.monotonic()
            try:
                wait_for(ent.sock, "w", max(left, 0.0), "send")
            except OpTimeout:
                raise OpTimeout("sent %d of %d bytes within %.3gs"
                                % (sent, len(data), timeout))
            try:
                sent += ent.sock.send(view[sent:])
            except BlockingIOError:
                continue
        return {"sent": sent}

    def op_recv(self, req):
        ent = self.entry(req)
        maxlen = arg(req, "max", int, 65536)
        timeout = arg(req, "timeout", float, 1.0)
        if maxlen <= 0:
            raise BadRequest("max: must be positive")
        wait_for(ent.sock, "r", timeout, "data")
        data = ent.sock.recv(maxlen)
        if not data:
            return {"eof": True}
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {"data_b64": base64.b64encode(data).decode("ascii"),
                "text": text}

    def op_shutdown(self, req):
        ent = self.entry(req)
        how = arg(req, "how", str, "wr")
        hows = {"rd": socket.SHUT_RD, "wr": socket.SHUT_WR,
                "rdwr": socket.SHUT_RDWR}
        if how not in hows:
            raise BadRequest("how: must be one of rd, wr, rdwr")
        ent.sock.shutdown(hows[how])
        return {}

    def op_close(self, req):
        """Normal close: the kernel sends FIN (or RST if unread data)."""
        ent = self.entry(req)
        del self.socks[arg(req, "sock", int)]
        ent.sock.close()
        return {}

    def op_abort(self, req):
        """RFC 9293 3.10.5 ABORT call: discard the connection with RST.

        The sockets API has no abort(); the Linux/BSD idiom is SO_LINGER
        on with a zero timeout followed by close(), which makes the kernel
        drop queued data and send RST instead of FIN (no TIME-WAIT).
        """
        ent = self.entry(req)
        del self.socks[arg(req, "sock", int)]
        abort_socket(ent.sock)
        return {}

    def op_setsockopt(self, req):
        ent = self.entry(req)
        option = arg(req, "option", str)
        value = req.get("value", _REQUIRED)
        if value is _REQUIRED:
            raise BadRequest("value: missing")
        check_sockopts({option: value})
        apply_sockopts(ent.sock, {option: value})
        return {}

    def op_sockerror(self, req):
        """Read (and thereby clear) SO_ERROR."""
        ent = self.entry(req)
        err = ent.pending_error
        ent.pending_error = 0
        if not err:
            err = ent.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return {"error": errno_name(err) if err else None}

    def op_states(self, req):
        """The kernel's TCP connections, optionally filtered.

        ``source`` picks where they come from: "netlink" (sock_diag),
        "proc" (/proc/net/tcp{,6}) or "auto" (the default: netlink, and
        /proc when netlink is unavailable).  Both give the same list, in
        the same order; the netlink dump is far cheaper (about 0.35 ms
        against 7 ms on a host with a 262144-bucket established hash
        table, which the kernel walks for each /proc file).
        """
        local_port = arg(req, "local_port", int, None)
        remote_addr = arg(req, "remote_addr", str, None)
        remote_port = arg(req, "remote_port", int, None)
        source = arg(req, "source", str, "auto")
        if source not in STATE_SOURCES:
            raise BadRequest("source: must be one of %s"
                             % ", ".join(STATE_SOURCES))
        rows = None
        if source != "proc":
            try:
                rows = diag_tcp_sockets(local_port, remote_port)
            except (OSError, ValueError, struct.error) as e:
                if source == "netlink":
                    raise Unsupported("sock_diag netlink: %s" % (e,))
                if not self.warned_netlink:
                    self.warned_netlink = True
                    log("states: sock_diag netlink unavailable (%s); "
                        "reading /proc/net/tcp instead" % (e,))
        if rows is None:
            rows = proc_tcp_sockets()
        conns = []
        for lip, lport, rip, rport, state in rows:
            if local_port is not None and lport != local_port:
                continue
            if remote_port is not None and rport != remote_port:
                continue
            if remote_addr is not None and not same_ip(rip, remote_addr):
                continue
            conns.append({"local": "%s:%d" % (lip, lport),
                          "remote": "%s:%d" % (rip, rport),
                          "state": TCP_STATES.get(state,
                                                  "UNKNOWN-%d" % state)})
        return {"connections": conns}

    def op_cleanup(self, req):
        """Drop everything: abort connections, close listeners."""
        aborted = 0
        for handle in sorted(self.socks):
            ent = self.socks.pop(handle)
            try:
                if ent.kind == "listen":
                    ent.sock.close()
                else:
                    abort_socket(ent.sock)
                    aborted += 1
            except OSError as e:
                log("cleanup: sock %d: %r" % (handle, e))
        return {"aborted": aborted}

    def op_quit(self, req):
        """Stop after this response; open sockets close with the process."""
        self.quitting = True
        return {}

    # ---------------------------------------------------------- dispatch

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
        func = OPS.get(op) if isinstance(op, str) else None
        if func is None:
            return fail(rid, "bad-request", "op: unknown operation %r" % (op,))
        try:
            result = func(self, req)
        except BadRequest as e:
            return fail(rid, "bad-request", str(e))
        except OpTimeout as e:
            return fail(rid, "timeout", str(e))
        except Unsupported as e:
            return fail(rid, "unsupported", str(e))
        except OSError as e:
            if e.errno is None:
                return fail(rid, "agent-error", repr(e))
            return fail(rid, errno_name(e.errno),
                        e.strerror or os.strerror(e.errno))
        except Exception as e:  # never die on a request
            return fail(rid, "agent-error", repr(e))
        response = {"id": rid, "ok": True}
        response.update(result)
        return response


OPS = {
    "listen": Agent.op_listen,
    "accept": Agent.op_accept,
    "connect": Agent.op_connect,
    "wait_connected": Agent.op_wait_connected,
    "send": Agent.op_send,
    "recv": Agent.op_recv,
    "shutdown": Agent.op_shutdown,
    "close": Agent.op_close,
    "abort": Agent.op_abort,
    "setsockopt": Agent.op_setsockopt,
    "sockerror": Agent.op_sockerror,
    "states": Agent.op_states,
    "cleanup": Agent.op_cleanup,
    "quit": Agent.op_quit,
}


# ------------------------------------------------------------- utilities

def arg(req, name, kind, default=_REQUIRED):
    """Fetch argument ``name`` of type ``kind``; BadRequest naming it.

    ``bool`` is never accepted for int/float (it is an int subclass in
    Python, but true/false for a port is a caller bug); an int is accepted
    for float.  A default of None makes the argument nullable.
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


def apply_sockopts(sock, opts):
    """Apply {name: value}.  SO_LINGER's value is seconds with linger on;
    a negative value turns lingering off."""
    for name, value in opts.items():
        level, optname = resolve_option(name)
        if name == "SO_LINGER":
            value = int(value)
            onoff = 1 if value >= 0 else 0
            sock.setsockopt(level, optname,
                            struct.pack("ii", onoff, max(value, 0)))
        else:
            sock.setsockopt(level, optname, int(value))


def abort_socket(sock):
    """SO_LINGER {on, 0} then close(): the kernel sends RST (see op_abort)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    finally:
        sock.close()


def wait_for(sock, mode, timeout, what):
    """Block until ``sock`` is readable ("r") or writable ("w").

    A socket with a pending error (RST received, connect failed) counts as
    both, so the following call reports the error.
    """
    if timeout < 0:
        raise BadRequest("timeout: must not be negative")
    rlist = [sock] if mode == "r" else []
    wlist = [sock] if mode == "w" else []
    r, w, _ = select.select(rlist, wlist, [], timeout)
    if not (r or w):
        raise OpTimeout("no %s within %.3gs" % (what, timeout))


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def fmt_addr(sockaddr):
    return "%s:%d" % (sockaddr[0], sockaddr[1])


def errno_name(num):
    return errno.errorcode.get(num, "E%d" % num)


def same_ip(a, b):
    """Compare textual addresses; an IPv4 filter also matches the
    IPv4-mapped IPv6 form (::ffff:a.b.c.d) of the same address."""
    def norm(text):
        try:
            if ":" in text:
                packed = socket.inet_pton(socket.AF_INET6, text)
                if packed[:12] == b"\0" * 10 + b"\xff\xff":
                    return packed[12:]
                return packed
            return socket.inet_pton(socket.AF_INET, text)
        except (OSError, ValueError):
            return text
    return norm(a) == norm(b)


def parse_hex_addr(text, family):
    """Decode "0100007F:0050" from /proc/net/tcp{,6} into (ip, port).

    The address is printed as 32-bit words, each the host-order value of
    network-order memory, so packing each word natively restores the
    original bytes.  The port is printed already converted to host order.
    """
    hexip, hexport = text.split(":")
    words = [int(hexip[i:i + 8], 16) for i in range(0, len(hexip), 8)]
    packed = b"".join(struct.pack("=I", w) for w in words)
    return socket.inet_ntop(family, packed), int(hexport, 16)


def parse_proc_line(line, family):
    """One /proc/net/tcp{,6} line as (lip, lport, rip, rport, state)."""
    fields = line.split()
    if len(fields) < 4:
        return None
    try:
        lip, lport = parse_hex_addr(fields[1], family)
        rip, rport = parse_hex_addr(fields[2], family)
        state = int(fields[3], 16)
    except (ValueError, OSError, struct.error):
        return None
    return lip, lport, rip, rport, state


def proc_tcp_sockets():
    """All TCP sockets from /proc/net/tcp and /proc/net/tcp6, as
    (lip, lport, rip, rport, state) tuples."""
    rows = []
    readable = False
    for path, family in (("/proc/net/tcp", socket.AF_INET),
                         ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(path) as f:
                lines = f.readlines()
        except (IOError, OSError):
            continue
        readable = True
        for line in lines[1:]:
            row = parse_proc_line(line, family)
            if row is not None:
                rows.append(row)
    if not readable:
        raise Unsupported("neither /proc/net/tcp nor /proc/net/tcp6 "
                          "is readable")
    return rows


def diag_port_filter(local_port, remote_port):
    """inet_diag bytecode accepting only the given ports (None: any).

    Each op is struct inet_diag_bc_op {u8 code; u8 yes; u16 no;}; a port
    comparison is followed by a second op whose ``no`` holds the port.
    ``yes``/``no`` are forward jumps in bytes; landing exactly on the end
    accepts the socket, jumping 4 bytes past it rejects it.
    """
    tests = []
    if local_port is not None:
        tests += [(INET_DIAG_BC_S_GE, local_port),
                  (INET_DIAG_BC_S_LE, local_port)]
    if remote_port is not None:
        tests += [(INET_DIAG_BC_D_GE, remote_port),
                  (INET_DIAG_BC_D_LE, remote_port)]
    total = 8 * len(tests)
    code = b""
    for i, (op, port) in enumerate(tests):
        code += struct.pack("=BBH", op, 8, total - 8 * i + 4)
        code += struct.pack("=BBH", 0, 0, port)
    return code


def diag_tcp_sockets(local_port=None, remote_port=None):
    """All TCP sockets through sock_diag netlink, as (lip, lport, rip,
    rport, state) tuples, in the order /proc/net/tcp{,6} lists them.

    The ports, when given, are also passed to the kernel as a filter so
    it copies out only the matching sockets (the caller filters again).
    Raises OSError (or ValueError on a malformed reply) when netlink or
    sock_diag is unavailable.
    """
    if not hasattr(socket, "AF_NETLINK"):
        raise OSError(errno.EAFNOSUPPORT, "no AF_NETLINK on this host")
    for port in (local_port, remote_port):
        if port is not None and not 0 <= port <= 0xFFFF:
            return []                       # no socket has such a port
    code = diag_port_filter(local_port, remote_port)
    attr = b""
    if code:
        attr = struct.pack("=HH", 4 + len(code),
                           INET_DIAG_REQ_BYTECODE) + code
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                       NETLINK_SOCK_DIAG)
    try:
        nl.settimeout(NETLINK_TIMEOUT)
        rows = []
        for seq, family in ((1, socket.AF_INET), (2, socket.AF_INET6)):
            body = DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0,
                                     DIAG_STATES) + attr
            nl.send(NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body),
                                      SOCK_DIAG_BY_FAMILY,
                                      NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
                    + body)
            diag_read_dump(nl, seq, rows)
        return rows
    finally:
        nl.close()


def diag_read_dump(nl, seq, rows):
    """Read one multipart dump reply up to NLMSG_DONE into ``rows``."""
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + NLMSG_HEADER.size <= len(data):
            length, kind, _, msg_seq, _ = NLMSG_HEADER.unpack_from(data,
                                                                   offset)
            if length < NLMSG_HEADER.size or offset + length > len(data):
                raise ValueError("truncated netlink message")
            payload = offset + NLMSG_HEADER.size
            offset += (length + 3) & ~3     # NLMSG_ALIGN
            if msg_seq != seq:
                continue                    # not an answer to this request
            if kind == NLMSG_DONE or kind == NLMSG_ERROR:
                # Both carry an int: 0, or a negative errno.
                err = 0
                if length >= NLMSG_HEADER.size + 4:
                    err = struct.unpack_from("=i", data, payload)[0]
                if err < 0:
                    raise OSError(-err, os.strerror(-err))
                if kind == NLMSG_DONE:
                    return
                continue                    # an ACK
            if kind != SOCK_DIAG_BY_FAMILY:
                continue
            if length < NLMSG_HEADER.size + DIAG_MESSAGE_SIZE:
                raise ValueError("short inet_diag_msg")
            family, state, sport, dport, src, dst = \
                DIAG_MESSAGE.unpack_from(data, payload)
            size = 4 if family == socket.AF_INET else 16
            rows.append((socket.inet_ntop(family, src[:size]), sport,
                         socket.inet_ntop(family, dst[:size]), dport, state))


def fail(rid, error, message):
    return {"id": rid, "ok": False, "error": error, "message": message}


def log(text):
    sys.stderr.write("tcpconf-agent: %s\n" % text)
    sys.stderr.flush()


def hello():
    u = os.uname()
    return {"agent": AGENT_NAME, "protocol": PROTOCOL,
            "python": sys.version.split()[0],
            "system": "%s %s %s" % (u.sysname, u.release, u.machine),
            "hostname": socket.gethostname()}


def write(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    agent = Agent()
    write({"id": 0, "ok": True, "hello": hello()})
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:  # EOF: the suite went away; same as quit
            break
        if not line.strip():
            continue
        response = agent.handle(line)
        try:
            write(response)
        except (BrokenPipeError, OSError):
            break
        if agent.quitting:
            break
    sys.exit(0)


if __name__ == "__main__":
    main()
