"""tcpconf target agent: performs socket operations on command.

This program runs inside the host under test (a network namespace, a
remote host over ssh, a container, a gVisor sandbox) and is driven by the
suite through the line protocol of agent_protocol.py on its stdin/stdout.
Nothing is installed there: agent_bootstrap.py pipes this program and the
modules it imports through the same stdin, ahead of the protocol.  So it
is held to the rules of a program that must run on any Linux with Python:
standard library only, Python 3.6+ (no annotations, no walrus), never
relying on ``__file__``, and importing only modules that are shipped with
it (agent_bootstrap.SHIPPED), by their absolute names.
"""

import base64
import errno
import os
import select
import socket
import struct
import sys
import time

from conformance.agent_protocol import (BadRequest, OpTimeout, ProtocolAgent,
                                        Unsupported, arg, check_sockopts,
                                        errno_name, hello, resolve_option,
                                        send_payload, serve)
from conformance.agent_states import (STATE_SOURCES, connections,
                                      diag_tcp_sockets, proc_tcp_sockets)


class Entry(object):
    """A socket the agent holds, named by an integer handle."""

    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind            # "listen" or "conn"
        self.pending_error = 0      # connect() error returned synchronously


class Agent(ProtocolAgent):
    """The operations, on the host's own sockets."""

    entry_type = Entry

    def __init__(self):
        super().__init__()
        self.warned_netlink = False

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
        ent = self.release(req)
        ent.sock.close()
        return {}

    def op_abort(self, req):
        """RFC 9293 3.10.5 ABORT call: discard the connection with RST.

        The sockets API has no abort(); the Linux/BSD idiom is SO_LINGER
        on with a zero timeout followed by close(), which makes the kernel
        drop queued data and send RST instead of FIN (no TIME-WAIT).
        """
        ent = self.release(req)
        abort_socket(ent.sock)
        return {}

    def op_setsockopt(self, req):
        ent = self.entry(req)
        option = arg(req, "option", str)
        value = arg(req, "value", object)   # checked by check_sockopts
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
        table, which the kernel walks for each /proc file).  With
        ``received``, each connection also says how many octets of
        sequence space the kernel has taken (netlink only: tcp_info's
        bytes_received, null for a request or timewait socket).
        """
        local_port = arg(req, "local_port", int, None)
        remote_addr = arg(req, "remote_addr", str, None)
        remote_port = arg(req, "remote_port", int, None)
        source = arg(req, "source", str, "auto")
        received = arg(req, "received", bool, False)
        if source not in STATE_SOURCES:
            raise BadRequest("source: must be one of %s"
                             % ", ".join(STATE_SOURCES))
        if received and source == "proc":
            raise BadRequest("received: read through netlink only, not /proc")
        rows = None
        if source != "proc":
            try:
                rows = diag_tcp_sockets(local_port, remote_port, received)
            except (OSError, ValueError, struct.error) as e:
                if source == "netlink" or received:
                    raise Unsupported("sock_diag netlink: %s" % (e,))
                if not self.warned_netlink:
                    self.warned_netlink = True
                    log("states: sock_diag netlink unavailable (%s); "
                        "reading /proc/net/tcp instead" % (e,))
        if rows is None:
            rows = proc_tcp_sockets()
        return {"connections": connections(rows, local_port, remote_addr,
                                           remote_port)}

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


def log(text):
    sys.stderr.write("tcpconf-agent: %s\n" % text)
    sys.stderr.flush()


def main():
    serve(Agent(), hello(), sys.stdout)
    sys.exit(0)


if __name__ == "__main__":
    main()
