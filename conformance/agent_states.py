"""The kernel's TCP connections, as the Linux agent's ``states`` reads them.

Two readers give the same rows, in the same order: sock_diag netlink
(diag_tcp_sockets) and /proc/net/tcp{,6} (proc_tcp_sockets); op_states
says which it reads and why.  A row is (local ip, local port, remote ip,
remote port, the kernel's state number); ``connections`` filters the rows
and names their states.

Shipped to the target with the agent (agent_bootstrap.py): standard library
only, Python 3.6+.
"""

import errno
import os
import socket
import struct

from conformance.agent_protocol import Unsupported

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
# The extension that adds struct tcp_info to a full socket's message (none
# for a request or a timewait socket): idiag_ext bit INET_DIAG_INFO - 1.
INET_DIAG_INFO = 2
RTATTR_HEADER = struct.Struct("=HH")       # rta_len, rta_type
# struct tcp_info's tcpi_bytes_received (Linux 4.1+, RFC 4898's
# tcpEStatsAppHCThruOctetsReceived): every advance of RCV.NXT past the
# SYN, text and FIN alike, so it changes whenever the kernel takes text or
# a FIN.
TCPI_BYTES_RECEIVED = struct.Struct("=128xQ")
NETLINK_TIMEOUT = 2.0


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


def diag_tcp_sockets(local_port=None, remote_port=None, received=False):
    """All TCP sockets through sock_diag netlink, as (lip, lport, rip,
    rport, state) tuples, in the order /proc/net/tcp{,6} lists them; with
    `received`, a sixth element: tcpi_bytes_received, or None for a socket
    the kernel keeps no tcp_info for (a request or a timewait socket).

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
            ext = 1 << (INET_DIAG_INFO - 1) if received else 0
            body = DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, ext, 0,
                                     DIAG_STATES) + attr
            nl.send(NLMSG_HEADER.pack(NLMSG_HEADER.size + len(body),
                                      SOCK_DIAG_BY_FAMILY,
                                      NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
                    + body)
            diag_read_dump(nl, seq, rows, received)
        return rows
    finally:
        nl.close()


def diag_read_dump(nl, seq, rows, received=False):
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
            row = (socket.inet_ntop(family, src[:size]), sport,
                   socket.inet_ntop(family, dst[:size]), dport, state)
            if received:
                row += (bytes_received(data[payload + DIAG_MESSAGE_SIZE:
                                            payload + length - NLMSG_HEADER.size]),)
            rows.append(row)


def bytes_received(attributes):
    """tcpi_bytes_received from a message's attributes, or None when they
    carry no tcp_info long enough to hold it."""
    offset = 0
    while offset + RTATTR_HEADER.size <= len(attributes):
        length, kind = RTATTR_HEADER.unpack_from(attributes, offset)
        if length < RTATTR_HEADER.size:
            break
        value = attributes[offset + RTATTR_HEADER.size:offset + length]
        if kind == INET_DIAG_INFO and len(value) >= TCPI_BYTES_RECEIVED.size:
            return TCPI_BYTES_RECEIVED.unpack_from(value)[0]
        offset += (length + 3) & ~3         # RTA_ALIGN
    return None


def connections(rows, local_port=None, remote_addr=None, remote_port=None):
    """The rows that match the filters given (None: any), as ``states``
    replies them: {"local": "ip:port", "remote": "ip:port", "state": name}."""
    conns = []
    for row in rows:
        lip, lport, rip, rport, state = row[:5]
        if local_port is not None and lport != local_port:
            continue
        if remote_port is not None and rport != remote_port:
            continue
        if remote_addr is not None and not same_ip(rip, remote_addr):
            continue
        conn = {"local": "%s:%d" % (lip, lport),
                "remote": "%s:%d" % (rip, rport),
                "state": TCP_STATES.get(state, "UNKNOWN-%d" % state)}
        if len(row) > 5:
            conn["received"] = row[5]
        conns.append(conn)
    return conns
