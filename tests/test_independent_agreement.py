"""The suite agrees with an independent witness of Linux's behaviour.

tests/independent/probes.py observes the Linux stack with plain raw sockets and
no suite code (tests/test_independent_probes.py re-measures what it recorded
in tests/independent/observed.yaml).  Here each observation is set beside the
catalogue case that checks the same behaviour (cases written by other hands
than the witness), with what that case requires written in the witness's
words.  Where the observation is what the case requires, the suite must pass
it; where it is not, the suite must fail it, and the Linux baseline must say
why.  For a case with alternatives, the suite must also name the alternative
the witness saw, or fail the case when the witness saw none of them in full.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.baseline import load_baseline
from conformance.grid import grid_cells
from conformance.verdict import FAIL, PASS

from .conftest import REPO, all_cases

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

OBSERVED = yaml.safe_load(
    (Path(__file__).parent / "independent" / "observed.yaml").read_text())["behaviours"]
BASELINE = load_baseline(REPO / "baselines" / "linux.yaml")
CASES = {**all_cases(), **{cell.case.id: cell.case for cell in grid_cells()}}

CHALLENGE_ACK = "ACK seq=SND.NXT ack=RCV.NXT"

# witness behaviour -> (suite case, what the case requires in the witness's words)
# or (suite case, {alternative label: what that alternative requires})
AGREEMENT = {
    "01_fin_without_ack": ("fin.without-ack", {"answer": "silence", "state_after": "ESTAB"}),
    "02_data_without_ack": ("grid.ESTABLISHED.data.at-rcv-nxt",
                            {"answer": "silence", "state_after": "ESTAB"}),
    "03_rst_at_rcv_nxt": ("rst.at-rcv-nxt", {"answer": "silence", "state_after": "gone"}),
    "04_rst_in_window_not_rcv_nxt": ("rst.in-window-challenge-ack", {
        "RFC 5961 challenge ACK": {"answer": CHALLENGE_ACK, "state_after": "ESTAB"},
        "RFC 793 in-window reset": {"answer": "silence", "state_after": "gone"}}),
    "05_rst_beyond_window": ("rst.out-of-window", {"answer": "silence", "state_after": "ESTAB"}),
    "06_syn_in_established": ("handshake.syn-in-established",
                              {"answer": CHALLENGE_ACK, "state_after": "ESTAB"}),
    "07_ack_beyond_snd_nxt_with_data": ("acceptability.ack-beyond-snd-nxt",
                                        {"answer": CHALLENGE_ACK, "recv_q": 0}),
    "08_stray_ack_to_listener": ("probes.ack-to-listener", {"answer": "RST seq=SEG.ACK"}),
    # The case sends nmap's SYN+FIN+URG+PSH; the witness a plain SYN+FIN.
    "09_syn_fin_to_listener": ("probes.syn-fin-urg-psh-to-listener",
                               {"answer": "SYN+ACK"}),
    "10_syn_to_closed_port": ("handshake.closed-port-syn",
                              {"answer": "RST+ACK seq=0 ack=SEG.SEQ+SEG.LEN"}),
    "11_data_below_rcv_nxt": ("acceptability.duplicate-data",
                              {"answer": CHALLENGE_ACK, "state_after": "ESTAB"}),
    "12_bad_checksum": ("acceptability.bad-checksum",
                        {"answer": "silence", "recv_q": 0, "control_recv_q": 5}),
    "13_synack_retransmissions": ("syn-queue.synack-retransmission",
                                  {"synack_count": 3, "intervals_s": [1.0, 2.0],
                                   "state_after": "gone"}),
    "14_fin_ack_in_established": ("grid.ESTABLISHED.fin-ack.at-rcv-nxt",
                                  {"answer": "ACK seq=SND.NXT ack=SEG.SEQ+SEG.LEN",
                                   "state_after": "CLOSE-WAIT"}),
    "15a_rst_in_time_wait_rfc1337_0": ("time-wait.rst-rfc1337-off", {
        "RFC 9293, the RST closes TIME-WAIT": {"answer": "silence", "state_after": "gone"},
        "RFC 1337 fix F1, the RST is ignored in TIME-WAIT": {"answer": "silence",
                                                             "state_after": "TIME-WAIT"}}),
    "15b_rst_in_time_wait_rfc1337_1": ("time-wait.rst-rfc1337-on", {
        "RFC 9293, the RST closes TIME-WAIT": {"answer": "silence", "state_after": "gone"},
        "RFC 1337 fix F1, the RST is ignored in TIME-WAIT": {"answer": "silence",
                                                             "state_after": "TIME-WAIT"}}),
    "16_syn_again_in_syn_received": ("grid.SYN-RECEIVED.syn.left-of-window", {
        "acknowledged": {"answer": "ACK seq=SND.NXT ack=RCV.NXT", "state_after": "SYN-RECV"},
        "SYN-ACK sent again": {"answer": "SYN+ACK seq=ISS ack=RCV.NXT (within 100 ms)",
                               "state_after": "SYN-RECV"}}),
    # MAY-2's two conditions: the new ISN above the old connection's sequence
    # numbers, and TIME-WAIT back when the SYN proves an old duplicate.
    "17_syn_in_time_wait_then_rst": ("time-wait.syn-higher-isn", {
        "RFC 9293 MAY-2, reopened from TIME-WAIT": {
            "answer": "SYN+ACK seq=ISS ack=SEG.SEQ+1", "iss_above_old_snd_nxt": True,
            "state_after_rst": "TIME-WAIT"},
        "RFC 5961 4.2 challenge ACK, TIME-WAIT kept": {"answer": CHALLENGE_ACK}}),
    "18_ack_in_window_in_time_wait": ("grid.TIME-WAIT.ack.in-window", {
        "no answer": {"answer": "silence", "state_after": "TIME-WAIT"},
        "MAY-13: ACK of RCV.NXT": {"answer": "ACK seq=SND.NXT ack=RCV.NXT",
                                   "state_after": "TIME-WAIT"}}),
    "19_syn_with_text_to_listener": ("handshake.syn-with-data", {
        "text on the SYN queued, acknowledged once ESTABLISHED": {"synack_ack": "SEG.SEQ+1",
                                                                  "recv_q": 10},
        "text on the SYN discarded, sent again by the tester": {"synack_ack": "SEG.SEQ+1",
                                                                "recv_q": 0}}),
    "20_zero_window_probe": ("acceptability.window-probe", {
        "probe without new data": {"probe": "ACK seq=SND.UNA-1 len=0"},
        "probe with one octet of new data": {"probe": "ACK seq=SND.UNA len=1"}}),
}


def _holds(required: dict, observed: dict) -> bool:
    return all(observed.get(key) == value for key, value in required.items())


def test_every_witnessed_behaviour_is_compared():
    """Each behaviour the witness recorded is set beside a case of the catalogue."""
    assert sorted(AGREEMENT) == sorted(OBSERVED)
    assert all(case_id in CASES for case_id, _ in AGREEMENT.values())


@pytest.mark.parametrize("behaviour", sorted(AGREEMENT))
def test_suite_agrees_with_the_witness(linux, behaviour):
    """The suite passes the case exactly when the witness saw what the case requires."""
    case_id, required = AGREEMENT[behaviour]
    observed = OBSERVED[behaviour]["observed"]
    verdict = linux.run(CASES[case_id], "ipv4")
    if all(isinstance(value, dict) for value in required.values()):
        seen = [label for label, alternative in required.items() if _holds(alternative, observed)]
        assert len(seen) <= 1, f"the witness's {observed} fits {seen} of {list(required)}"
        if seen:
            assert verdict.alternative == seen[0], verdict.explain()
        else:
            # What the witness saw fits no alternative in full (a reopen
            # without MAY-2's second condition): the suite must say so.
            assert verdict.outcome == FAIL, verdict.explain()
            assert BASELINE.lookup(case_id, "ipv4"), f"{case_id} deviates but is not in the baseline"
        return
    if _holds(required, observed):
        assert verdict.outcome == PASS, verdict.explain()
    else:
        assert verdict.outcome == FAIL, verdict.explain()
        assert BASELINE.lookup(case_id, "ipv4"), f"{case_id} deviates but is not in the baseline"
