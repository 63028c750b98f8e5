"""Fences: a silence decided in a millisecond, where that is sound.

Most of a sweep is waiting out windows that end without an answer (a
silence step's 200 ms, an ``expect`` the target does not meet).  A fence
ends such a window early.  Right after a segment, the tester sends an ICMP
echo request, which every host answers at once (RFC 1122 3.2.2.6: "Every
host MUST implement an ICMP Echo server function").  A stack that handles
the frames reaching it one after another, answering each as it goes, sends
any answer to the segment before the echo reply: once the reply is in with
nothing before it, no immediate answer to the segment is coming.

That holds only where the awaited answer can only be immediate:

* the window opens directly after the tester's segment (the answer to an
  application's call is the application's doing, not the segment's);
* the segment occupies no sequence space (no text, no SYN, no FIN): a
  stack may acknowledge what does with a delayed ACK up to 500 ms later
  (RFC 1122 4.2.3.2, RFC 9293 3.8.6.3); lwIP acknowledges a SYN-ACK that
  way, about 100 ms late.  Or it does, and the target can show that it
  took none of it (TAKEN_VIEW below): a delayed ACK acknowledges what was
  taken, so a segment dropped whole draws only answers due at once;
* the window does not await a retransmission, which a timer sends;
* no earlier segment of the tester's that occupies sequence space may
  still draw a delayed ACK: each was acknowledged, or was sent
  DELAYED_ACK_LIMIT ago (RFC 1122 4.2.3.2: "the delay MUST be less than
  0.5 seconds");
* nothing between tester and target holds frames back or reorders them
  (no device in the path, no faulty link), and the stack answers in the
  order the frames came: measured per stack (IN_ORDER below), by sweeping
  with ``--fences audit``, which sends every fence but waits every window
  out, and counts the answers that came after a fence's reply.

Where a window ends by a fence, the verdict records the step's line
(results.json ``fenced``), and the ladder says so.  A silence is then no
measure of time passing: a case that needs time to pass writes a wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tcp
from .seq import seq_ge

ON, OFF, AUDIT = "on", "off", "audit"
MODES = (ON, OFF, AUDIT)

# RFC 1122 4.2.3.2's bound on a delayed ACK.
DELAYED_ACK_LIMIT = 0.5

# How long a window waits for an answer before it sends its fence: an
# answer the stack gives at once comes within a fraction of a millisecond,
# and then no fence is needed.
FENCE_AFTER = 0.002

# Whether each lab stack answers the frames that reach it in their order,
# so that a fence's echo reply never overtakes an earlier segment's answer.
# Measured with `benchmarks/fences.py` (a sweep of the catalogue with
# --fences audit on each stack); a test re-measures it (tests/test_fences_lab.py).
IN_ORDER = {
    # The kernel answers inside the frame's receive path (softirq), in
    # order: 0 of 190 audited fences overtaken.
    "linux": True,
    # The agent feeds lwIP one frame at a time from one thread (NO_SYS):
    # 0 of 178 overtaken.
    "lwip": True,
    # netstack queues a TCP segment for its endpoint's processor goroutine
    # and answers an ICMP echo on the goroutine that read the frame: the
    # reply can overtake the answer (none did in 250 audited fences, but
    # nothing orders them).
    "gvisor": False,
    # PyTCP's packet handler answers each frame in turn, but sends what an
    # ACK lets out (new data, a delayed ACK) from its 1 ms timer thread: a
    # fence's reply overtook the next 536 octets of handshake.syn-without-mss
    # in a CI sweep, where 262 audited fences on a quiet machine had shown
    # none.
    "pytcp": False,
}


# The stacks whose agent shows, before and after a segment, whether the
# stack took any of it (a Mark), and why nothing but what they took can draw
# a later answer.
TAKEN_VIEW = {
    # sock_diag's tcp_info (bytes_received: every advance of RCV.NXT, text
    # and FIN) and the state.  Only a full socket keeps a delayed-ACK timer
    # (inet_csk_schedule_ack); a request socket (SYN-RECEIVED) holds no text
    # and answers a segment at once or never, and so does a timewait socket
    # (TIME-WAIT, FIN-WAIT-2 after close()), which keeps no timer but its
    # own expiry.  Text kept out of order leaves RCV.NXT where it was but is
    # acknowledged at once (__tcp_ack_snd_check with an out-of-order queue).
    "linux": "tcp_info's bytes_received and the state, read through sock_diag",
    # The pcb's rcv_nxt and state (the agent's pcb lists).  tcp_receive
    # delays an ACK (tcp_ack: TF_ACK_DELAY) only for text it took in
    # sequence; a segment out of sequence, out of the window or a duplicate
    # gets tcp_ack_now, sent by the tcp_output that ends tcp_input, and a
    # TIME-WAIT pcb acknowledges at once too (tcp_timewait_input).
    "lwip": "the pcb's rcv_nxt and state, read from lwIP's pcb lists",
}


# The stacks that may answer from a timer after a fence's reply, so are not
# IN_ORDER, but whose agent shows when a connection would next send something
# by itself.  On these, a fence's reply ends a window only where the
# connection stays quiet until the window's end (or is gone), and only at the
# reply to a second echo, sent after the agent was asked: whatever the stack
# queued before it, its transmit queue delivered first.  A retransmission
# timer that runs out after the window's end is no answer the window could
# have seen: a SYN-ACK or FIN waiting for its ACK does not keep the window
# open.
QUIET_VIEW = {
    # The packet handler answers each frame in turn; the timer's FSM round
    # sends what a segment lets out, a delayed ACK and a retransmission
    # (targets/pytcp/agent.py: sends_in).
    "pytcp": "the session's send and receive variables and its timers, read under its FSM lock",
}


@dataclass(frozen=True)
class Mark:
    """What the target showed of a connection: its state, and how far it
    has received: a count that moves whenever it takes text or a FIN
    (Linux's bytes_received, lwIP's RCV.NXT; None: a socket that keeps no
    count and takes no text, see TAKEN_VIEW)."""
    state: str
    received: int | None


def untaken(before: Mark | None, after: Mark | None) -> bool:
    """Whether a segment that occupied sequence space left the connection
    as it was: read before it was sent and after the fence's echo reply
    showed it handled (None: no connection for the 4-tuple).  Then no
    delayed ACK can be owed for it.  A connection that was not there before
    is not judged: the segment may have opened one."""
    if before is None:
        return False
    return after is None or after == before


@dataclass(frozen=True)
class Policy:
    """Whether a run's windows may end by a fence, and how."""
    mode: str               # ON, OFF or AUDIT
    reason: str = ""        # why not, when the target cannot have them
    # Whether a segment that occupied sequence space may be fenced, when
    # the target shows it took none of it (TAKEN_VIEW).
    marks: bool = False
    # Whether every fence asks whether the connection stays quiet (QUIET_VIEW).
    quiet: bool = False

    @property
    def sends(self) -> bool:
        return self.mode in (ON, AUDIT) and not self.reason

    @property
    def decides(self) -> bool:
        """A fence's reply ends the window (audit waits it out)."""
        return self.mode == ON and not self.reason


def policy(target, mode: str = ON) -> Policy:
    """The fences a run against `target` may use."""
    if mode == OFF:
        return Policy(OFF)
    if target.middlebox is not None or target.middlebox_at is not None:
        return Policy(mode, "a device in the path answers for the end host")
    if getattr(getattr(target, "lab", None), "faults", None) is not None:
        return Policy(mode, "the lab's link may hold frames back (link faults)")
    agent = getattr(target, "agent", None) is not None
    quiet = target.name in QUIET_VIEW and agent
    if mode == ON and not (IN_ORDER.get(target.name, False) or quiet):
        return Policy(mode, f"{target.name} is not known to answer in order")
    return Policy(mode, marks=target.name in TAKEN_VIEW and agent, quiet=quiet)


def nothing_pending(sent: list[tuple[int, int, float]], target_segments, now: float) -> bool:
    """Whether no segment of the tester's may still draw a delayed ACK.
    `sent`: (tester port, the sequence number just past it, when it left)
    for each segment that occupied sequence space; `target_segments`: the
    target's segments of the case so far.  A segment is done with once the
    target's ACK covers it, or DELAYED_ACK_LIMIT after it left."""
    for port, end, at in sent:
        if now - at >= DELAYED_ACK_LIMIT:
            continue
        if not any(seg.dport == port and seg.time >= at and seg.has(tcp.ACK)
                   and seq_ge(seg.ack, end) for seg in target_segments):
            return False
    return True


def immediate(seg: tcp.Segment | None) -> bool:
    """Whether every answer to the tester's segment `seg` is due at once: it
    occupies no sequence space (text, a SYN or a FIN may draw a delayed ACK)."""
    return seg is not None and seg.seg_len == 0
