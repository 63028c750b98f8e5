"""Probes on the wire: what the tester can learn and tidy without an agent on
the target (black-box mode), and the sanity probe after every case.

:meth:`WireProbe.connection_exists` asks the target whether a connection is
there.  The probe is an ACK far left of any receive window (windows are at
most 2^30 octets, RFC 7323 2.3), acknowledging what the target sent: a
connection in any synchronized state answers an unacceptable segment with an
ACK (RFC 9293 3.10.7.4, first check), and a 4-tuple with no connection answers
a segment with ACK set with a RST (3.10.7.1, and LISTEN in 3.10.7.2).  The
probe changes no state.  A probe that is not answered (a stack may rate-limit
such ACKs, RFC 5961 section 7) is tried once more after a rate-limit interval;
then the answer is None: silence decides nothing.

:meth:`WireProbe.reset` closes what a case opened, since no agent does.
"""

from __future__ import annotations

import time

from . import tcp
from .seq import seq_add
from .stream import Flow, SegmentStream
from .wire import build_frame

PROBE_OFFSET = 1 << 30
PROBE_WAIT = 0.3
PROBE_TRIES = 2
PROBE_RATE_LIMIT_GAP = 0.6     # Linux's tcp_invalid_ratelimit is 500 ms
SANITY_TRIES = 3


class WireProbe:
    def __init__(self, wire, stream: SegmentStream, link):
        self.wire, self.stream, self.link = wire, stream, link

    def connection_exists(self, flow: Flow) -> bool | None:
        """True when the probe drew an ACK, False when it drew a RST, None
        when it was not answered."""
        conn = flow.conn
        for attempt in range(PROBE_TRIES):
            if attempt:
                time.sleep(PROBE_RATE_LIMIT_GAP)
            self.wire.send(build_frame(self.link, flow.tester_port, flow.target_port,
                                       seq_add(conn.snd_nxt, -PROBE_OFFSET), conn.rcv_nxt or 0,
                                       tcp.ACK, 65535))
            answer = self.stream.next(flow, time.time() + PROBE_WAIT, mark="probe")
            if answer is not None:
                return not answer.has(tcp.RST)
        return None

    def reset(self, flows) -> bool:
        """A RST to every connection the case started, at the target's
        RCV.NXT as it last acknowledged it (RFC 9293 3.10.7.4: a RST whose
        sequence number is RCV.NXT is acceptable in every synchronized state
        and in SYN-RECEIVED); otherwise each case would leave a connection
        behind on the device, and a long sweep would fill its tables.  False
        when the wire refused one."""
        for flow in flows:
            conn = flow.conn
            if conn.snd_nxt == conn.iss:
                continue            # nothing was ever sent on it
            frame = build_frame(self.link, flow.tester_port, flow.target_port, conn.snd_nxt, 0,
                                tcp.RST, 0)
            try:
                self.wire.send(frame)
            except OSError:
                return False
        return True


def sanity_probe(wire, link) -> str | None:
    """After each case, prove the wire still works (tlsfuzzer's sanity
    conversation): the target's kernel must answer an ICMP echo.  A case
    whose answers could have been lost by a broken lab must not pass.  ICMP
    keeps the probe independent of any TCP behaviour under test.  The reason
    the verdict cannot stand, or None."""
    try:
        # A link that loses the odd frame (a real one, or the lab's with
        # --link-faults) must not pass for a broken one: a few echoes.
        if any(wire.echo(link) for _ in range(SANITY_TRIES)):
            return None
    except OSError as exc:
        return f"the sanity probe after the case could not be sent: {exc}"
    return (f"the lab did not answer the sanity probe after the case ({SANITY_TRIES} ICMP "
            f"echoes to the target): the link or the capture is broken, so this verdict "
            f"cannot be trusted")
