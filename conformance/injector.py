"""Injecting a case's segments: a ``send`` step's numbers from the tester's
view of its connection, the frame, the wire, and the connection's
bookkeeping after it (connection.py)."""

from __future__ import annotations

import time

from .outcomes import NotApplicable
from .steps import Send, pattern
from .stream import Flow
from .tcp import IPV6
from .wire import build_frame


class Injector:
    def __init__(self, wire, link, target_name: str):
        self.wire, self.link, self.target_name = wire, link, target_name

    def send(self, step: Send, flow: Flow) -> float:
        """Send the step's segment on `flow`; the time.perf_counter() of the
        send (the start of a round trip)."""
        conn, v = flow.conn, flow.conn.variables()
        seq, ack = conn.send_numbers(step.seq.evaluate(v) if step.seq else None,
                                     step.ack.evaluate(v) if step.ack is not None else None,
                                     step.flags)
        payload = step.payload
        if step.length is not None:
            payload = pattern(self._one_segment(step.length.evaluate(v), step.length.text))
        frame = build_frame(self.link, flow.tester_port, flow.target_port, seq, ack, step.flags,
                            step.win, payload, step.options, step.urg, step.bad_checksum,
                            step.raw_options)
        sent_at = time.perf_counter()
        flow.last_sent, flow.last_sent_at = frame, time.time()
        self.wire.send(frame)
        conn.sent(seq, step.flags, len(payload), step.options, step.bad_checksum)
        return sent_at

    def _one_segment(self, length: int, text: str) -> int:
        """A computed payload length, if one segment on the lab's link can carry it."""
        limit = 1500 - (40 if self.link.family == IPV6 else 20) - 20   # MTU - IP - TCP headers
        if not 0 <= length <= limit:
            raise NotApplicable(f"not applicable to {self.target_name}: the case sends "
                                f"len {text} = {length} octets in one segment, and one segment "
                                f"carries 0 to {limit} here")
        return length
