"""Every case can fail: against a deliberately altered target, the right step
fails with the right message.  A case that passes against every stack proves
nothing; these alterations stand in for stacks that break each requirement
(nftables rules in the target namespace, or a target setting)."""

from __future__ import annotations

import pytest

from conformance.verdict import FAIL, PASS

from .conftest import all_cases, line_of

CASES = all_cases()

# case id -> (alterations, marker of the step that must fail, words in the "actual")
# An alteration is ("in" | "out", nftables rule) or ("mtu", value).
BREAKS = {
    "handshake.passive-open": (
        [("out", "tcp flags & (syn|ack) == syn|ack drop")],
        "expect: {flags: SYN+ACK, ack: 1, mss: present}", "no segment within 1s"),
    "handshake.synack-mss": (
        [("mtu", "1000")], "expect: {flags: SYN+ACK, ack: 1, mss: 1460}", "mss is 960"),
    "handshake.active-open": (
        [("out", "tcp flags == ack drop")], "expect: {flags: ACK, seq: 1, ack: 1}", "no segment"),
    "handshake.stale-syn": (
        [("in", "tcp flags & rst == rst drop")], "state:  LISTEN", "state SYN-RECEIVED"),
    # What lwIP does: it takes a FIN without ACK as a FIN.
    "fin.without-ack": (
        [("in", "tcp flags == fin tcp flags set fin | ack")], "silence: 300ms", "ACK seq=1 ack=2"),
    "rst.at-rcv-nxt": (
        [("in", "tcp flags & rst == rst drop")], "state:   CLOSED", "state ESTABLISHED"),
    "rst.ack-at-rcv-nxt": (
        [("in", "tcp flags & rst == rst drop")], "state:   CLOSED", "state ESTABLISHED"),
    # No challenge ACK: the silence alternative (RFC 793) is taken, and its
    # reset never happened either, so the connection is still there.
    "rst.in-window-challenge-ack": (
        [("out", "tcp flags == ack drop")], "state:   CLOSED", "state ESTABLISHED"),
    "rst.out-of-window": (
        [("out", "tcp flags & psh == psh drop")], "expect:  {flags: ACK+(PSH)", "no segment"),
    "close.half-close": (
        [("out", "tcp flags & psh == psh drop")], "data: still talking}", "no segment"),
    "close.active-close": (
        [("out", "tcp flags == ack drop")], "expect: {flags: ACK, seq: rcv_nxt", "no segment"),
    "close.simultaneous": (
        [("out", "tcp flags == ack drop")], "expect: {flags: ACK, seq: rcv_nxt", "no segment"),
}


def test_every_case_has_a_break():
    """Each case in cases/ is listed here with an alteration that breaks it."""
    assert sorted(CASES) == sorted(BREAKS)


@pytest.mark.parametrize("case_id", sorted(BREAKS))
def test_case_fails_against_altered_target(linux, case_id):
    """The altered target fails the case at the right step, with the right actual."""
    alterations, marker, words = BREAKS[case_id]
    case = CASES[case_id]
    for hook, value in alterations:
        if hook == "mtu":
            linux.target.run_in_target("ip", "link", "set", "target0", "mtu", value)
        else:
            linux.target.add_nft_rule(hook, value)
    verdict = linux.run(case)
    assert verdict.outcome == FAIL, verdict.explain()
    assert verdict.line == line_of(case, marker), verdict.explain()
    assert words in verdict.actual, verdict.explain()


@pytest.mark.parametrize("case_id", sorted(BREAKS))
def test_case_passes_against_linux(linux, case_id):
    """Unaltered, the Linux stack passes every case."""
    verdict = linux.run(CASES[case_id])
    assert verdict.outcome == PASS, verdict.explain()
