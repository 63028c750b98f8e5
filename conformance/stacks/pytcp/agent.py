#!/usr/bin/env python3
"""tcpconf target agent for PyTCP 2.7.6: the suite's agent protocol on PyTCP.

PyTCP (https://github.com/ccie18643/PyTCP, PyPI ``pytcp``) is a TCP/IP stack
written in Python that runs in user space on a tap device.  This program
runs PyTCP inside the lab's target namespace, on an existing tap that
``targets/tap-bridge.sh`` bridged with the lab's veth end, and speaks
protocol 1 of ``conformance/agent_protocol.py`` on stdin/stdout (JSON lines,
hello first, the same ops, argument names, reply fields and error words as
the Linux agent), with PyTCP's own socket API doing the work::

    ip netns exec NS .venv/bin/python -O targets/pytcp/agent.py --tap pytcp0 \
        --ip 198.18.0.2/24 --ip6 2001:2::2/64 --mac 02:00:c6:12:00:02 \
        --peer-ip 198.18.0.1 --peer-ip6 2001:2::1 --peer-mac 02:00:c6:12:00:01 \
        [--gateway ADDR] [--gateway6 fe80::ADDR] [--skip-stdin N] [-- anything]

Behind a router (a firewall of the lab), ``--gateway`` and ``--gateway6``
give the default routes, and the peer is the router: its addresses get the
permanent neighbour entries.  PyTCP takes only a link-local IPv6 gateway.

``--skip-stdin N`` discards the first N bytes of stdin (the suite's
AgentClient sends the Python agent's modules first); everything after ``--``
is ignored (AgentClient appends its bootstrap command).  Run it with
``python -O``: PyTCP formats a log message for every packet unless
``__debug__`` is off, which costs milliseconds per segment.

What the agent sets up around PyTCP (see README.md):

* the addresses are assigned directly, without PyTCP's ARP probes and IPv6
  duplicate address detection (4-6 s of start-up, and the lab's kernel
  target uses ``nodad`` too); no link-local address, no router solicitation;
* PyTCP's ARP and ND caches get permanent entries for the tester's
  addresses, as the Linux lab has permanent neighbour entries (PyTCP drops
  a segment whose next hop is not in its cache, it does not queue it);
* PyTCP's logger is silenced (it prints to stdout, the protocol channel);
* an exception in PyTCP's packet handler or timer thread is caught and
  logged to stderr instead of ending the thread (which would leave the
  stack deaf or frozen);
* timer tasks of sessions that reached CLOSED are retired (PyTCP keeps
  calling every session's FSM every millisecond for ever, and its 1 ms tick
  slows down with every connection ever made);
* the timer thread runs a round every 5 ms, not every millisecond, and
  counts the time that passed (timer_rounds): PyTCP's tick cost a fifth to
  a third of a core per agent.
"""

import argparse
import base64
import errno
import fcntl
import os
import struct
import sys
import threading
import time
import traceback

# The protocol layer is the Linux agent's (conformance/agent_protocol.py),
# imported from this checkout whatever the working directory and the venv.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from conformance.agent_protocol import (  # noqa: E402
    BadRequest, OpTimeout, ProtocolAgent, Unsupported, arg, check_sockopts,
    errno_name, hello, send_payload, serve)

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

# The protocol channel: the real stdout.  sys.stdout is pointed at stderr so
# that nothing PyTCP prints (its logger, trace helpers) can corrupt it.
_PROTO_OUT = os.fdopen(os.dup(1), "w", buffering=1)
sys.stdout = sys.stderr

# PyTCP's FsmState names -> RFC 9293 names.
STATE_NAMES = {
    "CLOSED": "CLOSED", "LISTEN": "LISTEN", "SYN_SENT": "SYN-SENT",
    "SYN_RCVD": "SYN-RECEIVED", "ESTABLISHED": "ESTABLISHED",
    "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2",
    "CLOSING": "CLOSING", "CLOSE_WAIT": "CLOSE-WAIT", "LAST_ACK": "LAST-ACK",
    "TIME_WAIT": "TIME-WAIT",
}


def log(text):
    sys.stderr.write("pytcp-agent: %s\n" % text)
    sys.stderr.flush()


# --------------------------------------------------------------- the stack

class Stack(object):
    """PyTCP brought up on an existing tap, as the lab needs it."""

    def __init__(self, args):
        from pytcp import config
        config.LOG_CHANEL = set()
        config.LOG_DEBUG = False
        config.IP4_SUPPORT = bool(args.ip)
        config.IP6_SUPPORT = bool(args.ip6)
        config.IP4_HOST_DHCP = False
        config.IP6_LLA_AUTOCONFIG = False
        config.IP6_GUA_AUTOCONFIG = False
        from pytcp.lib import stack
        from pytcp.lib.ip4_address import Ip4Address, Ip4Host
        from pytcp.lib.ip6_address import Ip6Address, Ip6Host
        from pytcp.lib.mac_address import MacAddress
        self.config, self.stack = config, stack
        self.args = args
        self._patch()

        if not os.path.exists("/sys/class/net/%s/tun_flags" % args.tap):
            raise SystemExit("pytcp-agent: %s is not an existing tap device in this "
                             "namespace (TUNSETIFF would create one)" % args.tap)
        self.tap = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.tap, TUNSETIFF,
                    struct.pack("16sH", args.tap.encode(), IFF_TAP | IFF_NO_PI))

        ph = stack.packet_handler
        ph.assign_mac_address(MacAddress(args.mac))
        # Addresses without duplicate address detection: straight into the
        # lists PyTCP's _create_stack_ip*_addressing would fill after DAD.
        if args.ip:
            host4 = Ip4Host(args.ip)
            if args.gateway:
                host4.gateway = Ip4Address(args.gateway)
            ph.ip4_host.append(host4)
        if args.ip6:
            host6 = Ip6Host(args.ip6)
            if args.gateway6:
                host6.gateway = Ip6Address(args.gateway6)
            ph.ip6_host.append(host6)
            for group in (Ip6Address("ff02::1"), host6.address.solicited_node_multicast):
                ph.ip6_multicast.append(group)
                ph.mac_multicast.append(group.multicast_mac)
        # Permanent neighbour entries for the tester, as in the Linux lab.
        peer_mac = MacAddress(args.peer_mac)
        if args.peer_ip:
            stack.arp_cache._arp_cache[Ip4Address(args.peer_ip)] = \
                stack.arp_cache.CacheEntry(peer_mac, permanent=True)
        if args.peer_ip6:
            stack.nd_cache._nd_cache[Ip6Address(args.peer_ip6)] = \
                stack.nd_cache.CacheEntry(peer_mac, permanent=True)

        # TcpIpStack.start() without its address acquisition.
        stack.timer.start()
        stack.arp_cache.start()
        stack.nd_cache.start()
        stack.rx_ring.start(self.tap)
        stack.tx_ring.start(self.tap)
        stack.packet_handler.start()
        self._wait_forwarding(args.tap)

    def _patch(self):
        """Robustness and bookkeeping around PyTCP; see the module docstring."""
        from pytcp.protocols.tcp import session as session_mod
        from pytcp.subsystems import packet_handler as ph_mod
        from pytcp.subsystems import timer as timer_mod

        TcpSession = session_mod.TcpSession
        FsmState = session_mod.FsmState
        self.FsmState = FsmState

        original_change = TcpSession._change_state

        def change_state(session, state):
            previous = session._state
            try:
                original_change(session, state)
            except KeyError:
                # PyTCP pops the socket from stack.sockets on CLOSED without a
                # default; a socket already gone must not end the thread.
                session._state = state
            if state is FsmState.CLOSED and previous is not FsmState.CLOSED:
                session._tcpconf_done = True
                packet = getattr(session, "_tcpconf_packet", None)
                if packet is not None and packet.flag_rst:
                    session._tcpconf_reset = True
        TcpSession._change_state = change_state

        original_fsm = TcpSession.tcp_fsm

        def tcp_fsm(session, packet_rx_md=None, syscall=None, timer=None):
            if packet_rx_md is None:
                return original_fsm(session, packet_rx_md, syscall, timer)
            with session._lock_fsm:
                session._tcpconf_packet = packet_rx_md
                try:
                    return original_fsm(session, packet_rx_md, syscall, timer)
                finally:
                    session._tcpconf_packet = None
        TcpSession.tcp_fsm = tcp_fsm

        # Retire a session's timer task once it is CLOSED for good.
        timer = self.stack.timer
        original_register = timer.register_method

        def register_method(method, args=None, kwargs=None, delay=1, delay_exp=False,
                            repeat_count=-1, stop_condition=None):
            owner = getattr(method, "__self__", None)
            if stop_condition is None and isinstance(owner, TcpSession):
                def stop_condition(owner=owner):
                    return getattr(owner, "_tcpconf_done", False)
            return original_register(method, args, kwargs, delay, delay_exp,
                                     repeat_count, stop_condition)
        timer.register_method = register_method

        timer_mod.Timer._Timer__thread_timer = timer_rounds

        original_rx = ph_mod.PacketHandler._phrx_ether

        def phrx_ether(handler, packet_rx):
            try:
                original_rx(handler, packet_rx)
            except Exception:  # noqa: BLE001 - keep the packet handler alive
                log("exception in PyTCP's packet handler:\n" + traceback.format_exc())
        ph_mod.PacketHandler._phrx_ether = phrx_ether

    @staticmethod
    def _wait_forwarding(tap, limit=5.0):
        """Until the kernel forwards through the tap (carrier on once we are
        attached, then a forwarding bridge port)."""
        deadline = time.monotonic() + limit
        base = "/sys/class/net/%s" % tap
        while time.monotonic() < deadline:
            try:
                with open(base + "/operstate") as f:
                    up = f.read().strip() == "up"
                state_path = base + "/brport/state"
                forwarding = True
                if os.path.exists(state_path):
                    with open(state_path) as f:
                        forwarding = f.read().strip() == "3"
                if up and forwarding:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        log("warning: %s is not a forwarding port after %.0fs" % (tap, limit))


# ------------------------------------------------------------------- agent

class Entry(object):
    def __init__(self, sock, kind):
        self.sock = sock
        self.kind = kind            # "listen" or "conn"
        self.connect_thread = None
        self.connect_error = None   # errno name once connect() failed
        self.pending_error = None   # SO_ERROR equivalent
        self.eof_seen = False


class Agent(ProtocolAgent):
    """The operations, on PyTCP's sockets.  PyTCP has no socket options at
    all: a known name is "unsupported" (check_sockopts says which names are
    known, Linux's), an unknown one "bad-request", as in the Linux agent."""

    entry_type = Entry

    def __init__(self, pstack):
        super().__init__()
        self.pstack = pstack
        from pytcp.lib import socket as psocket
        self.psocket = psocket

    def family_of(self, addr):
        return self.psocket.AF_INET6 if ":" in addr else self.psocket.AF_INET4

    # ----------------------------------------------------------------- ops

    def op_listen(self, req):
        port = arg(req, "port", int)
        addr = arg(req, "addr", str, "0.0.0.0")
        arg(req, "backlog", int, 5)   # PyTCP has no backlog
        sockopts = arg(req, "sockopts", dict, {})
        check_sockopts(sockopts)
        if sockopts:
            raise Unsupported("PyTCP has no socket options (%s)" % ", ".join(sockopts))
        sock = self.psocket.socket(self.family_of(addr), self.psocket.SOCK_STREAM)
        sock.bind((addr, port))
        sock.listen()
        return {"sock": self.add(sock, "listen"),
                "local": "%s:%d" % (sock.local_ip_address, sock.local_port),
                "port": sock.local_port}

    def op_accept(self, req):
        ent = self.entry(req)
        timeout = arg(req, "timeout", float, 2.0)
        if ent.kind != "listen":
            raise OSError(errno.EINVAL, "not a listening socket")
        if not ent.sock._event_tcp_session_established.acquire(timeout=timeout):
            raise OpTimeout("no connection within %.3gs" % timeout)
        conn = ent.sock._tcp_accept.pop(0)
        return {"sock": self.add(conn, "conn"),
                "peer": "%s:%d" % (conn.remote_ip_address, conn.remote_port),
                "local": "%s:%d" % (conn.local_ip_address, conn.local_port)}

    def op_connect(self, req):
        addr = arg(req, "addr", str)
        port = arg(req, "port", int)
        local_port = arg(req, "local_port", int, None)
        local_addr = arg(req, "local_addr", str, None)
        sockopts = arg(req, "sockopts", dict, {})
        check_sockopts(sockopts)
        if sockopts:
            raise Unsupported("PyTCP has no socket options (%s)" % ", ".join(sockopts))
        family = self.family_of(addr)
        sock = self.psocket.socket(family, self.psocket.SOCK_STREAM)
        if local_port is not None or local_addr is not None:
            wildcard = "::" if family == self.psocket.AF_INET6 else "0.0.0.0"
            sock.bind((local_addr or wildcard, local_port or 0))
        handle = self.add(sock, "conn")
        ent = self.socks[handle]

        def run():
            try:
                sock.connect((addr, port))
                if sock.state is not self.pstack.FsmState.ESTABLISHED and \
                        ent.connect_error is None:
                    ent.connect_error = "ECONNREFUSED"
            except ConnectionRefusedError:
                ent.connect_error = "ECONNREFUSED"
            except TimeoutError:
                ent.connect_error = "ETIMEDOUT"
            except OSError as e:
                ent.connect_error = errno_name(e.errno) if e.errno else "EIO"
            except Exception as e:  # noqa: BLE001
                log("connect: %r" % (e,))
                ent.connect_error = "EIO"
            if ent.connect_error:
                ent.pending_error = ent.connect_error
        ent.connect_thread = threading.Thread(target=run, daemon=True,
                                              name="connect-%d" % handle)
        ent.connect_thread.start()
        # connect() picks the port and sends the SYN (from the timer) at once.
        deadline = time.monotonic() + 1.0
        while sock.local_port == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        result = {"sock": handle}
        if sock.local_port:
            result["local"] = "%s:%d" % (sock.local_ip_address, sock.local_port)
            result["local_port"] = sock.local_port
        return result

    def op_wait_connected(self, req):
        ent = self.entry(req)
        timeout = arg(req, "timeout", float, 2.0)
        if ent.connect_thread is None:
            if ent.sock.state is self.pstack.FsmState.ESTABLISHED:
                return {}
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        ent.connect_thread.join(timeout)
        if ent.connect_thread.is_alive():
            raise OpTimeout("no connection within %.3gs" % timeout)
        if ent.connect_error:
            if ent.pending_error is None:
                raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
            name, ent.pending_error = ent.pending_error, None
            raise ErrnoError(name)
        return {}

    def op_send(self, req):
        ent = self.entry(req)
        data = send_payload(req)
        arg(req, "timeout", float, 2.0)
        session = ent.sock.tcp_session
        if session is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        if getattr(session, "_tcpconf_reset", False) and not ent.eof_seen:
            ent.eof_seen = True
            raise ErrnoError("ECONNRESET")
        if getattr(session, "_tcpconf_shut_wr", False):
            raise OSError(errno.EPIPE, os.strerror(errno.EPIPE))
        try:
            sent = ent.sock.send(data)
        except BrokenPipeError:
            raise OSError(errno.EPIPE, os.strerror(errno.EPIPE))
        return {"sent": sent}

    def op_recv(self, req):
        ent = self.entry(req)
        maxlen = arg(req, "max", int, 65536)
        timeout = arg(req, "timeout", float, 1.0)
        if maxlen <= 0:
            raise BadRequest("max: must be positive")
        session = ent.sock.tcp_session
        if session is None or ent.kind != "conn":
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        if not session._event_rx_buffer.acquire(timeout=timeout):
            raise OpTimeout("no data within %.3gs" % timeout)
        session._event_rx_buffer.release()     # receive() takes it again
        data = session.receive(maxlen)
        if not data:
            if getattr(session, "_tcpconf_reset", False):
                ent.eof_seen = True
                raise ErrnoError("ECONNRESET")
            if str(session._connection_error) == "TIMEOUT":
                raise ErrnoError("ETIMEDOUT")
            return {"eof": True}
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {"data_b64": base64.b64encode(data).decode("ascii"), "text": text}

    def op_shutdown(self, req):
        """PyTCP's CLOSE is RFC 9293's CLOSE: "no more data to send"; the
        session still receives.  That is shutdown(SHUT_WR)."""
        ent = self.entry(req)
        how = arg(req, "how", str, "wr")
        if how not in ("rd", "wr", "rdwr"):
            raise BadRequest("how: must be one of rd, wr, rdwr")
        if how != "wr":
            raise Unsupported("PyTCP has no shutdown(); only the write side can be "
                              "closed (its CLOSE call)")
        session = ent.sock.tcp_session
        if session is None or ent.kind != "conn":
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        session._tcpconf_shut_wr = True
        ent.sock.close()
        return {}

    def op_close(self, req):
        ent = self.release(req)
        if ent.sock.tcp_session is None:
            self.forget_unconnected(ent.sock)
            return {}
        if not getattr(ent.sock.tcp_session, "_tcpconf_shut_wr", False):
            ent.sock.close()
        session = ent.sock.tcp_session
        if session is not None and session.state is self.pstack.FsmState.CLOSED:
            session._event_connect.release()   # a connect() still waiting
        return {}

    def op_abort(self, req):
        ent = self.release(req)
        self.abort(ent.sock)
        return {}

    def abort(self, sock):
        """RFC 9293 3.10.5 ABORT, which PyTCP lacks: in SYN-RECEIVED,
        ESTABLISHED, FIN-WAIT-1/2 and CLOSE-WAIT send <SEQ=SND.NXT><CTL=RST>
        (with ACK, as Linux does) through PyTCP's own transmit path, then
        delete the TCB (CLOSED); in other states delete it silently."""
        FsmState = self.pstack.FsmState
        session = sock.tcp_session
        if session is None:
            self.forget_unconnected(sock)
            return
        with session._lock_fsm:
            state = session.state
            if state is FsmState.CLOSED:
                return
            if state in (FsmState.SYN_RCVD, FsmState.ESTABLISHED, FsmState.FIN_WAIT_1,
                         FsmState.FIN_WAIT_2, FsmState.CLOSE_WAIT):
                session._transmit_packet(flag_rst=True, flag_ack=True,
                                         seq=session._snd_nxt)
            session._tx_buffer.clear()
            session._change_state(FsmState.CLOSED)
            session._event_connect.release()
            session._event_rx_buffer.release()

    def forget_unconnected(self, sock):
        self.pstack.stack.sockets.pop(str(sock), None)

    def op_setsockopt(self, req):
        self.entry(req)
        option = arg(req, "option", str)
        value = arg(req, "value", object)   # checked by check_sockopts
        check_sockopts({option: value})
        raise Unsupported("PyTCP has no socket options (%s)" % option)

    def op_sockerror(self, req):
        ent = self.entry(req)
        err, ent.pending_error = ent.pending_error, None
        if err is None:
            session = ent.sock.tcp_session
            if session is not None and getattr(session, "_tcpconf_reset", False) \
                    and not ent.eof_seen:
                ent.eof_seen = True
                err = "ECONNRESET"
        return {"error": err}

    def op_states(self, req):
        local_port = arg(req, "local_port", int, None)
        remote_addr = arg(req, "remote_addr", str, None)
        remote_port = arg(req, "remote_port", int, None)
        source = arg(req, "source", str, "auto")
        received = arg(req, "received", bool, False)
        if source not in ("auto", "netlink", "proc"):
            raise BadRequest("source: must be one of auto, netlink, proc")
        if source != "auto":
            raise Unsupported("PyTCP has neither sock_diag netlink nor /proc/net/tcp")
        conns = []
        for sock in snapshot(self.pstack.stack.sockets):
            if not hasattr(sock, "tcp_session"):
                continue            # a UDP socket
            session = sock.tcp_session
            if session is None:
                continue            # bound only: Linux does not list these either
            state = STATE_NAMES.get(session.state.name, session.state.name)
            if state == "CLOSED":
                continue
            lport, rport = sock.local_port, sock.remote_port
            rip = str(sock.remote_ip_address)
            if local_port is not None and lport != local_port:
                continue
            if remote_port is not None and rport != remote_port:
                continue
            if remote_addr is not None and rip != remote_addr:
                continue
            conn = {"local": "%s:%d" % (sock.local_ip_address, lport),
                    "remote": "%s:%d" % (rip, rport), "state": state}
            if received:
                with session._lock_fsm:
                    conn["received"] = session._rcv_nxt
                    conn["sends_in"] = sends_in(session, self.pstack.stack.timer)
            conns.append(conn)
        return {"connections": conns}

    def op_cleanup(self, req):
        aborted = 0
        for handle in sorted(self.socks):
            ent = self.socks.pop(handle)
            try:
                if ent.kind == "listen":
                    if ent.sock.tcp_session is not None:
                        ent.sock.close()
                else:
                    self.abort(ent.sock)
                    aborted += 1
            except Exception as e:  # noqa: BLE001
                log("cleanup: sock %d: %r" % (handle, e))
        return {"aborted": aborted}

    def error_reply(self, op, exc):
        """As the Linux agent's, and: an ErrnoError by its name, a number
        out of range (a port, say) as a bad request, PyTCP's OSError text
        read for its errno, and the traceback of an unexpected error logged."""
        if isinstance(exc, ErrnoError):
            return exc.name, exc.message
        if isinstance(exc, OverflowError):
            return "bad-request", str(exc)
        if isinstance(exc, OSError):
            name = errno_name(exc.errno) if exc.errno else pytcp_errno(str(exc))
            if name is None:
                return "agent-error", repr(exc)
            return name, str(exc)
        error, message = super().error_reply(op, exc)
        if error == "agent-error":
            log("op %s: %s" % (op, traceback.format_exc()))
        return error, message


class ErrnoError(Exception):
    """An error reported by its errno name (PyTCP's own errors have none)."""

    def __init__(self, name, message=None):
        super().__init__(name)
        self.name = name
        num = getattr(errno, name, None)
        self.message = message or (os.strerror(num) if num else name)


def snapshot(table):
    for _ in range(10):
        try:
            return list(table.values())
        except RuntimeError:        # changed size during iteration
            continue
    return []


def pytcp_errno(text):
    """PyTCP raises plain OSError("[Errno 98] Address already in use - ...")
    without an errno attribute: read the number from the text."""
    if text.startswith("[Errno "):
        try:
            return errno_name(int(text[7:text.index("]")]))
        except ValueError:
            return None
    return None


def introduction(args):
    """The protocol's hello, with the stack and the tap."""
    u = os.uname()
    try:
        from importlib.metadata import version
        pytcp_version = version("pytcp")
    except Exception:  # noqa: BLE001
        pytcp_version = "?"
    return hello(system="PyTCP %s on %s %s %s" % (pytcp_version, u.sysname, u.release,
                                                  u.machine),
                 implementation="pytcp", stack="PyTCP %s" % pytcp_version,
                 tap=args.tap, ipv6=bool(args.ip6), optimized=not __debug__)


def sends_in(session, timer):
    """When the session's timer would next send something by itself
    (conformance/fence.py's QUIET_VIEW), in milliseconds from now: 0 at its
    next round, None when nothing is scheduled.  PyTCP's packet handler
    answers a segment at once, but what the segment lets out goes from the
    timer's FSM round (TcpSession._tcp_fsm_* with timer=True):

    * at the next round: a SYN or SYN+ACK not yet sent, text waiting in the
      send buffer, a FIN after close() (_closing) or not yet sent (FIN-WAIT-1,
      LAST-ACK), a segment to send again after a retransmission request
      (_retransmit_packet_request moved SND.NXT back);
    * when the delayed-ACK timer runs out: an ACK, while RCV.NXT is past
      what was acknowledged (_delayed_ack);
    * when SND.UNA's retransmission timer runs out: the segment again, or a
      RST after the last try (_retransmit_packet_timeout), while something
      is unacknowledged.

    A timer that is not running counts as run out.  Read under the
    session's FSM lock."""
    state = session._state.name
    if state in ("SYN_SENT", "SYN_RCVD") and session._snd_nxt == session._snd_ini:
        return 0
    if session._snd_nxt != session._snd_max:
        return 0
    if state in ("ESTABLISHED", "CLOSE_WAIT") and (
            session._closing or len(session._tx_buffer) > session._tx_buffer_nxt):
        return 0
    if state in ("FIN_WAIT_1", "LAST_ACK") and session._snd_nxt != session._snd_fin:
        return 0
    due = []
    if session._rcv_nxt != session._rcv_una:
        due.append(time_left(timer, "%s-delayed_ack" % session))
    if session._snd_una != session._snd_max:
        due.append(time_left(timer, "%s-retransmit_seq-%d" % (session, session._snd_una)))
    return min(due) if due else None


def time_left(timer, name):
    """The milliseconds before PyTCP's named timer runs out, counted from
    now (0 when it is not running).  Its count was taken down at the last
    round (timer_rounds' `accounted`), so the time since then is taken off.
    The round's time is read before its counts, as the round writes them in
    the other order: a round between the two reads then only makes the
    figure smaller, never larger."""
    accounted = getattr(timer, "tcpconf_accounted", None)
    left = timer._timers.get(name, 0)
    if left <= 0 or accounted is None:
        return 0
    return max(0, int(left - (time.monotonic() - accounted) * 1000))


# How often the timer thread runs its round (PyTCP: every millisecond).
TIMER_ROUND = 0.005


def timer_rounds(timer):
    """PyTCP's timer thread (Timer.__thread_timer), in rounds of TIMER_ROUND
    instead of one every millisecond: each round takes the milliseconds that
    really passed off every named timer and every task, and runs a task once
    when its delay is up.  PyTCP's own thread woke a thousand times a second
    and called every live session's FSM each time: a fifth to a third of a
    core per agent, waiting.  Its timers count ticks, not time, so under
    load they ran slow; these count time.  A task's method that raises is
    logged, and the thread goes on (it would end, and the stack freeze)."""
    last = timer.tcpconf_accounted = time.monotonic()
    while timer._run_thread:
        time.sleep(TIMER_ROUND)
        elapsed = int((time.monotonic() - last) * 1000)
        if elapsed <= 0:
            continue
        last += elapsed / 1000
        # The counts first, then the time they were taken at: a reader
        # between the two takes the new counts down once more (time_left).
        timer._timers = {name: left - elapsed for name, left in timer._timers.items()
                         if left - elapsed > 0}
        timer.tcpconf_accounted = last
        for task in timer._tasks:
            advance(task, elapsed)
        timer._tasks = [task for task in timer._tasks if task._remaining_delay > 0]


def advance(task, elapsed):
    """TimerTask.tick for `elapsed` milliseconds at once."""
    task._remaining_delay -= elapsed
    if task._stop_condition and task._stop_condition():
        task._remaining_delay = 0
        return
    if task._remaining_delay > 0:
        return
    try:
        task._method(*task._args, **task._kwargs)
    except Exception:  # noqa: BLE001 - keep the timer thread alive
        log("exception in a PyTCP timer task:\n" + traceback.format_exc())
    if task._repeat_count:
        task._remaining_delay = (task._delay * (1 << task._delay_exp_factor)
                                 if task._delay_exp else task._delay)
        task._delay_exp_factor += 1
        if task._repeat_count > 0:
            task._repeat_count -= 1
    else:
        task._remaining_delay = 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        argv = argv[:argv.index("--")]
    ap = argparse.ArgumentParser(description="tcpconf agent on PyTCP")
    ap.add_argument("--tap", required=True)
    ap.add_argument("--ip", help="IPv4 address/prefix, e.g. 198.18.0.2/24")
    ap.add_argument("--ip6", help="IPv6 address/prefix, e.g. 2001:2::2/64")
    ap.add_argument("--mac", required=True)
    ap.add_argument("--peer-ip")
    ap.add_argument("--peer-ip6")
    ap.add_argument("--peer-mac", required=True)
    ap.add_argument("--gateway", help="the IPv4 default route, behind a router")
    ap.add_argument("--gateway6", help="the IPv6 default route (link-local), behind a router")
    ap.add_argument("--skip-stdin", type=int, default=0)
    args = ap.parse_args(argv)
    stdin = sys.stdin.buffer
    left = args.skip_stdin
    while left > 0:
        chunk = stdin.read(left)
        if not chunk:
            break
        left -= len(chunk)
    pstack = Stack(args)
    serve(Agent(pstack), introduction(args), _PROTO_OUT)
    # PyTCP's threads are not daemons: leave without waiting for them.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
