#!/usr/bin/env python3
"""tcpconf-hold: a TCP service that accepts, reads and never answers.

The reference container target (containers/target/Dockerfile) runs this as
its only service, so that a black-box sweep (no agent in the target) has a
port where the target's TCP listens and where every segment that comes back
is the TCP stack's own doing, never the application's:

* it listens on each --port (default 9, the discard port of RFC 863: "simply
  throws away any data it receives" and sends none), on IPv4 and IPv6 through
  one "::" socket that also takes IPv4-mapped connections;
* it accepts every connection and reads whatever arrives, so the receive
  window stays open (RFC 9293 section 3.8.6) and a case may send as much as it
  likes; it never writes;
* it never closes a connection while the peer keeps it open: only the peer
  ends one.  On the peer's FIN (RFC 9293 section 3.10.7.4) our side is in
  CLOSE-WAIT, and the service holds it there for --hold seconds (default
  60) before closing, because cases check what the stack answers in
  CLOSE-WAIT; on a reset (section 3.10.7.4, RST bit) it closes at once;
* it prints "tcpconf-hold: listening on port N" for each port, and nothing
  else on stdout, once every port listens: a test or a container runtime
  waits for these lines;
* SIGTERM and SIGINT end it with status 0.

`--check` does not serve: it exits 0 when every --port has a listening socket
in this network namespace (read from /proc/net/tcp{,6}, without opening a
connection that would itself sit in the table), 1 otherwise.  It is the
container's health check.

Standard library only, Python 3.6 or later, one thread: the connections are
multiplexed with selectors, so a burst of connections costs no threads.
"""

import argparse
import errno
import resource
import selectors
import signal
import socket
import sys
import time

NAME = "tcpconf-hold"
DISCARD_PORT = 9          # RFC 863
DEFAULT_HOLD = 60.0       # seconds a half-closed connection stays in CLOSE-WAIT
BACKLOG = 128             # cases open connections back to back; none may wait
READ_SIZE = 65536

# socket() or bind() of an IPv6 socket fails with these where the host has
# no IPv6 at all (a kernel without it, or booted with ipv6.disable=1).
NO_IPV6 = {errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL}

# /proc/net/tcp's state column for a listening socket (include/net/tcp_states.h).
PROC_TCP_LISTEN = 0x0A


def port_number(text):
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("%s is not a TCP port (1-65535)" % text)
    return port


def seconds(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("%s is not a duration in seconds" % text)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog=NAME, description="Accept TCP connections, read and discard, never send "
        "and never close while the peer keeps a connection open.")
    parser.add_argument("--port", type=port_number, action="append",
                        help="a port to listen on, repeatable (default: %d, discard)"
                        % DISCARD_PORT)
    parser.add_argument("--hold", type=seconds, default=DEFAULT_HOLD,
                        help="seconds to stay in CLOSE-WAIT after the peer's FIN "
                        "(default: %g)" % DEFAULT_HOLD)
    parser.add_argument("--backlog", type=int, default=BACKLOG,
                        help="listen backlog (default: %d)" % BACKLOG)
    parser.add_argument("--check", action="store_true",
                        help="do not serve: exit 0 when every port has a listener here")
    args = parser.parse_args(argv)
    # Each port once, in the order given.
    args.port = list(dict.fromkeys(args.port or [DISCARD_PORT]))
    return args


# ------------------------------------------------------------------ listening

def open_listener(port, backlog):
    """One listening socket for both families: "::" with IPV6_V6ONLY off takes
    IPv4 connections as IPv4-mapped addresses (RFC 4291 section 2.5.5.2).
    Only where the host has no IPv6 does it fall back to an IPv4 socket."""
    sock = None
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
    except OSError as e:
        if sock is not None:
            sock.close()
        if e.errno not in NO_IPV6:
            raise
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A restart must not wait for the old connections' TIME-WAIT to end.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def listening_ports(paths=("/proc/net/tcp", "/proc/net/tcp6")):
    """The local ports with a socket in LISTEN in this network namespace."""
    ports = set()
    for path in paths:
        try:
            with open(path) as table:
                rows = table.readlines()[1:]
        except OSError:
            continue          # no /proc/net/tcp6 without IPv6
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and int(fields[3], 16) == PROC_TCP_LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def check(ports):
    listening = listening_ports()
    missing = [port for port in ports if port not in listening]
    for port in ports:
        print("%s: port %d is %s" % (NAME, port,
                                     "not listening" if port in missing else "listening"))
    return 1 if missing else 0


# ------------------------------------------------------------------- serving

class Hold:
    """The service's event loop: listeners, open connections, and the
    connections the peer half-closed, each with the time it is closed."""

    def __init__(self, listeners, hold):
        self.hold = hold
        self.listeners = listeners
        self.selector = selectors.DefaultSelector()
        self.close_wait = {}        # socket -> monotonic time to close it
        self.stopping = False
        # A signal only sets a flag; the byte the interpreter writes to the
        # wake-up socket ends a select() that would otherwise go on waiting.
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self.drain_wakeup)
        for listener in listeners:
            self.selector.register(listener, selectors.EVENT_READ, self.accept)

    def catch_signals(self):
        signal.set_wakeup_fd(self.wake_w.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)

    def stop(self, signum, frame):
        self.stopping = True

    def run(self):
        try:
            while not self.stopping:
                for key, _ in self.selector.select(self.time_to_next_close()):
                    key.data(key.fileobj)
                self.close_held()
        finally:
            self.shut_down()

    def time_to_next_close(self):
        if not self.close_wait:
            return None
        return max(0.0, min(self.close_wait.values()) - time.monotonic())

    def drain_wakeup(self, wake_r):
        try:
            while wake_r.recv(64):
                pass
        except BlockingIOError:
            pass

    def accept(self, listener):
        """Take every connection waiting in the backlog."""
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue      # reset before we took it: nothing left to hold
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: the connection stays in
                    # the backlog; try again shortly instead of spinning.
                    sys.stderr.write("%s: accept: %s\n" % (NAME, e.strerror))
                    time.sleep(0.1)
                    return
                raise
            conn.setblocking(False)
            self.selector.register(conn, selectors.EVENT_READ, self.discard)

    def discard(self, conn):
        """Read and drop (RFC 863); react only to the peer's FIN or reset."""
        try:
            data = conn.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            # ECONNRESET, ETIMEDOUT: the connection is gone; close quietly.
            self.selector.unregister(conn)
            conn.close()
            return
        if data:
            return
        # End of file: the peer's FIN.  Our side is in CLOSE-WAIT and stays
        # there until the hold time is up.  A socket at end of file is always
        # readable, so it leaves the selector.
        self.selector.unregister(conn)
        self.close_wait[conn] = time.monotonic() + self.hold

    def close_held(self):
        now = time.monotonic()
        for conn, deadline in list(self.close_wait.items()):
            if deadline <= now:
                del self.close_wait[conn]
                conn.close()      # our FIN: CLOSE-WAIT -> LAST-ACK

    def shut_down(self):
        signal.set_wakeup_fd(-1)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        for conn in self.close_wait:
            conn.close()
        self.selector.close()
        self.wake_w.close()


def raise_descriptor_limit():
    """Every connection a sweep leaves open is held, not closed: allow as many
    as the hard limit does, rather than a soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass      # keep the soft limit; accept() reports EMFILE if it is reached


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.check:
        return check(args.port)
    raise_descriptor_limit()
    listeners = []
    for port in args.port:
        try:
            listeners.append(open_listener(port, args.backlog))
        except OSError as e:
            sys.stderr.write("%s: cannot listen on port %d: %s\n"
                             % (NAME, port, e.strerror or e))
            for listener in listeners:
                listener.close()
            return 1
    hold = Hold(listeners, args.hold)
    # Signals are caught before the ready lines: whoever waits for them may
    # stop the service at once, and must see it end with status 0.
    hold.catch_signals()
    # Ready only once every port listens: whoever waits for these lines may
    # connect to any of them at once.
    for port in args.port:
        print("%s: listening on port %d" % (NAME, port))
    sys.stdout.flush()
    hold.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
