"""Matching answers against expectations (conformance.matching), without a lab:
cases are loaded from text, segments built by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import tcp
from conformance.casefile import load_case_file
from conformance.matching import candidates, choose, mismatches
from conformance.outcomes import CannotDecide

from .test_connection import IRS, ISS, established, segment


def steps(text: str):
    """The steps of a case whose steps are `text` (flush left)."""
    body = "".join("  " + line + "\n" for line in text.strip("\n").splitlines())
    (case,) = load_case_file(Path("matching.yaml"), (
        "id: t.match\ntitle: matching\nrequirements: [RFC9293-MUST-13, RFC9293-MAY-2]\n"
        "target: {role: listener, start: ESTABLISHED}\nsteps:\n" + body))
    return case.steps


def expect(fields: str):
    (step,) = steps(f"- expect: {{{fields}}}")
    return step


def check(fields: str, seg, conn=None, ref: float = 0.0):
    conn = conn or established()
    return mismatches(expect(fields), seg, conn, ref, conn.variables())


ACK_OF_DATA = segment(tcp.ACK, IRS + 1, ISS + 6)


def test_a_matching_answer_has_no_mismatch():
    assert check("flags: ACK, seq: rcv_nxt, ack: 6", ACK_OF_DATA) == []


@pytest.mark.parametrize("fields,problem", [
    ("flags: RST", "flags are ACK"),
    ("flags: ACK, seq: 2", "seq is 1, not 2"),
    ("flags: ACK, ack: 5", "ack is 6, not 5"),
    ("flags: ACK, win: 100", "window is 65535"),
    ("flags: ACK, len: 3", "length is 0"),
    ("flags: ACK, mss: present", "no mss option"),
    ("flags: ACK, within: 10ms", "it came after 20.0 ms"),
    ("flags: ACK, after: 50ms", "it came early, after 20.0 ms"),
    ("flags: ACK, retransmission: true", "it is not a retransmission"),
])
def test_each_field_names_what_is_wrong(fields, problem):
    seg = segment(tcp.ACK, IRS + 1, ISS + 6)
    seg.time = 0.020
    assert problem in check(fields, seg)


def test_optional_flags_may_be_there_or_not():
    assert check("flags: ACK+(PSH)", segment(tcp.ACK | tcp.PSH, IRS + 1, ISS + 1, b"x")) == []
    assert check("flags: ACK+(PSH)", ACK_OF_DATA) == []


def test_bad_checksum_is_a_mismatch():
    seg = segment(tcp.ACK, IRS + 1, ISS + 1)
    seg.checksum_ok = False
    assert check("flags: ACK", seg) == ["its TCP checksum is wrong"]


def test_a_syn_counts_its_seq_from_itself():
    """A SYN+ACK's seq is its own ISN: seq 0, whatever the number on the wire."""
    assert check("flags: SYN+ACK, seq: 0", segment(tcp.SYN | tcp.ACK, 123456, ISS + 1)) == []


def test_isn_of_a_new_incarnation_counts_from_the_old_connection():
    """isn: '>= rcv_nxt' compares with the old connection's numbers (MAY-2 (1))."""
    conn = established()                      # rcv_nxt = 1 from the old IRS
    above = segment(tcp.SYN | tcp.ACK, IRS + 65537, ISS + 1)
    below = segment(tcp.SYN | tcp.ACK, IRS - 10, ISS + 1)
    assert check('flags: SYN+ACK, isn: ">= rcv_nxt"', above, conn) == []
    assert check('flags: SYN+ACK, isn: ">= rcv_nxt"', below, conn) == [
        "its ISN is -10 from the old ISN, not >= rcv_nxt = 1"]


def test_isn_without_an_old_connection_cannot_be_decided():
    from conformance.connection import Connection
    conn = Connection.opening(ISS)
    with pytest.raises(CannotDecide):
        check('flags: SYN+ACK, isn: ">= rcv_nxt"', segment(tcp.SYN | tcp.ACK, 7, ISS + 1), conn)


def test_candidates_by_answer_and_by_silence():
    """The answer picks the alternatives whose first expect it matches; no answer
    picks those that start with a silence."""
    (one_of,) = steps("""
- one_of:
    - label: challenge ACK
      requirement: RFC9293-MUST-13
      steps:
        - expect: {flags: ACK}
    - label: reset
      requirement: RFC9293-MUST-13
      conforms: false
      steps:
        - expect: {flags: RST}
    - label: ignored
      requirement: RFC9293-MAY-2
      steps:
        - silence: 200ms
""")
    conn = established()
    fits = candidates(one_of.alternatives, ACK_OF_DATA, conn, 0.0, 0.0, conn.variables())
    assert [a.label for a in fits] == ["challenge ACK"]
    fits = candidates(one_of.alternatives, None, conn, 0.0, 0.0, conn.variables())
    assert [a.label for a in fits] == ["ignored"]
    # A RST after the 200 ms silence fits both the silence and the reset
    # (expected within 1 s): the engine takes the first, unless a state check
    # right after them tells them apart.
    late = segment(tcp.RST, IRS + 1)
    late.time = 0.5
    fits = candidates(one_of.alternatives, late, conn, 0.0, 0.0, conn.variables())
    assert [a.label for a in fits] == ["reset", "ignored"]


SAME_ANSWER = """
- one_of:
    - label: RFC 9293, the RST closes TIME-WAIT
      requirement: RFC9293-MUST-13
      steps:
        - silence: 200ms
        - state: CLOSED
    - label: RFC 1337 F1, ignored
      requirement: RFC9293-MAY-2
      steps:
        - silence: 200ms
        - state: TIME-WAIT
"""


def test_choose_by_the_state_that_follows():
    """Two alternatives with the same answer: the state tells them apart."""
    (one_of,) = steps(SAME_ANSWER)
    fits = one_of.alternatives
    chosen, label = choose(fits, lambda state: "TIME-WAIT", "linux")
    assert chosen is fits[1] and label == "RFC 1337 F1, ignored"
    chosen, label = choose(fits, lambda state: "CLOSED", "linux")
    assert chosen is fits[0]


def test_choose_when_the_state_cannot_be_seen():
    """Equally conforming alternatives stand together; a non-conforming one
    that the wire cannot tell apart makes the case undecidable."""
    (one_of,) = steps(SAME_ANSWER)
    chosen, label = choose(one_of.alternatives, lambda state: None, "a device")
    assert chosen is one_of.alternatives[0]
    assert label.endswith("(the state that tells them apart is not observable)")
    one_of.alternatives[1].conforms = False
    with pytest.raises(CannotDecide, match="not observable on a device"):
        choose(one_of.alternatives, lambda state: None, "a device")


def test_choose_one_or_none():
    (one_of,) = steps(SAME_ANSWER)
    assert choose([], lambda state: None, "x") == (None, "")
    assert choose(one_of.alternatives[:1], lambda state: None, "x")[1] == \
        "RFC 9293, the RST closes TIME-WAIT"
