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

from conformance import tcp
from conformance.baseline import load_baseline
from conformance.casefile import load_case_file
from conformance.explore.expand import expand
from conformance.explore.sequence import RIGHT_EDGE, SND_UNA, Inject, Sequence
from conformance.grid import grid_cells
from conformance.verdict import FAIL, PASS

from .conftest import REPO, all_cases

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

OBSERVED = yaml.safe_load(
    (Path(__file__).parent / "independent" / "observed.yaml").read_text())["behaviours"]
BASELINE = load_baseline(REPO / "baselines" / "linux.yaml")
CASES = {**all_cases(), **{cell.case.id: cell.case for cell in grid_cells()}}

CHALLENGE_ACK = "ACK seq=SND.NXT ack=RCV.NXT"
ACK, FIN, PSH, RST, SYN = tcp.ACK, tcp.FIN, tcp.PSH, tcp.RST, tcp.SYN

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


# Behaviours tcpconf explore found (probes 21-26): set beside the sequence
# that found them, expected as the reference model allows, with what the
# model requires in the witness's words.  The witness saw otherwise each time,
# so the suite must fail each sequence's case on Linux.
EXPLORED = {
    "21_old_ack_with_data": (Sequence("w.21", "listener", "ESTABLISHED",
                                      (Inject(PSH | ACK, 5, ack_off=-1),)), {"recv_q": 5}),
    "22_unsent_ack_in_fin_wait_2": (Sequence("w.22", "listener", "FIN-WAIT-2",
                                             (Inject(ACK, ack_off=1),)),
                                    {"answer": CHALLENGE_ACK}),
    "23_bad_ack_beyond_window_in_syn_received": (
        Sequence("w.23", "listener", "SYN-RECEIVED",
                 (Inject(FIN | ACK, seq_off=65535, ack_from=SND_UNA),)),
        {"answer": CHALLENGE_ACK}),
    "24_overlapping_data_in_close_wait": (Sequence("w.24", "listener", "CLOSE-WAIT",
                                                   (Inject(PSH | ACK, 10, seq_off=-1),)),
                                          {"state_after": "CLOSE-WAIT"}),
    "25_syn_rst_ending_at_rcv_nxt": (Sequence("w.25", "listener", "ESTABLISHED",
                                              (Inject(SYN | RST, seq_off=-1),)),
                                     {"answer": "silence"}),
    "26_no_flags_beyond_window_in_fin_wait_2": (
        Sequence("w.26", "listener", "FIN-WAIT-2", (Inject(0, seq_from=RIGHT_EDGE),)),
        {"answer_at_edge": CHALLENGE_ACK}),
}


def _holds(required: dict, observed: dict) -> bool:
    return all(observed.get(key) == value for key, value in required.items())


def test_every_witnessed_behaviour_is_compared():
    """Each behaviour the witness recorded is set beside a case of the
    catalogue, or beside the explored sequence that found it."""
    assert sorted({**AGREEMENT, **EXPLORED}) == sorted(OBSERVED)
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


@pytest.mark.parametrize("behaviour", sorted(EXPLORED))
def test_the_explored_case_deviates_where_the_witness_saw_linux_deviate(linux, behaviour):
    sequence, required = EXPLORED[behaviour]
    observed = OBSERVED[behaviour]["observed"]
    assert not _holds(required, observed), f"the witness saw what the model requires: {observed}"
    [case] = load_case_file(Path(f"{sequence.id}.yaml"),
                            yaml.safe_dump(expand(sequence).data, sort_keys=False))
    verdict = linux.run(case, "ipv4")
    assert verdict.outcome == FAIL, verdict.explain()
