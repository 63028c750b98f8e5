"""The tester's sequence bookkeeping (conformance.connection), without a lab."""

from __future__ import annotations

from conformance import tcp
from conformance.connection import Connection
from conformance.seq import MOD

ISS, IRS = 1000, 5000


def segment(flags: int, seq: int, ack: int = 0, payload: bytes = b"", window: int = 65535,
            options=()) -> tcp.Segment:
    """A target segment, as the wire would decode it."""
    return tcp.Segment(tcp.IN, 0.0, "198.18.0.2", "198.18.0.1", 80, 40000, seq, ack, flags,
                       window, options=list(options), payload=payload)


def established() -> Connection:
    conn = Connection.opening(ISS)
    conn.sent(ISS, tcp.SYN, 0, [("mss", 1460)])
    conn.consume(segment(tcp.SYN | tcp.ACK, IRS, ISS + 1))
    conn.sent(ISS + 1, tcp.ACK, 0)
    return conn


def test_handshake_sets_the_rfc_variables():
    """SYN: SND.NXT = ISS+1; SYN-ACK: IRS, RCV.NXT = IRS+1, SND.UNA = ISS+1, synchronized."""
    conn = established()
    assert (conn.snd_nxt, conn.snd_una, conn.irs, conn.rcv_nxt) == (ISS + 1, ISS + 1, IRS, IRS + 1)
    assert conn.synchronized
    assert conn.variables() == {"snd_nxt": 1, "snd_una": 1, "rcv_nxt": 1, "snd_wnd": 65535}


def test_default_numbers_are_snd_nxt_and_rcv_nxt():
    """A send without seq is at SND.NXT; with ACK and no ack, it acknowledges RCV.NXT."""
    conn = established()
    assert conn.send_numbers(None, None, tcp.ACK) == (ISS + 1, IRS + 1)
    assert conn.send_numbers(None, None, tcp.RST) == (ISS + 1, 0)
    assert conn.send_numbers(100, 5, tcp.ACK) == (ISS + 100, IRS + 5)


def test_snd_nxt_moves_forward_only_within_what_was_sent():
    """Data at SND.NXT advances it; a retransmission or a probe beyond it does not."""
    conn = established()
    conn.sent(ISS + 1, tcp.ACK | tcp.PSH, 5)
    assert conn.snd_nxt == ISS + 6
    conn.sent(ISS + 1, tcp.ACK | tcp.PSH, 5)              # retransmitted
    conn.sent(ISS + 1000, tcp.ACK | tcp.PSH, 10)          # beyond SND.NXT: a probe
    assert conn.snd_nxt == ISS + 6
    conn.sent(ISS + 6, tcp.ACK | tcp.FIN, 0)
    assert conn.snd_nxt == ISS + 7


def test_bad_checksum_advances_nothing():
    conn = established()
    conn.sent(ISS + 1, tcp.ACK | tcp.PSH, 5, bad_checksum=True)
    assert conn.snd_nxt == ISS + 1


def test_syn_while_synchronized_is_a_probe_not_a_new_iss():
    """RFC 5961 4.2 probes: a SYN in ESTABLISHED leaves SND.NXT; after a RST it reopens."""
    conn = established()
    conn.sent(ISS + 500, tcp.SYN, 0)
    assert conn.snd_nxt == ISS + 1
    conn.sent(ISS + 1, tcp.RST, 0)
    conn.sent(ISS + 500, tcp.SYN, 0)
    assert (conn.snd_una, conn.snd_nxt) == (ISS + 500, ISS + 501)


def test_retransmission_is_sequence_space_already_seen():
    """Data already seen is a retransmission; a repeated ACK or the SYN again at
    another seq is not."""
    conn = established()
    data = segment(tcp.ACK | tcp.PSH, IRS + 1, ISS + 1, b"hello")
    assert not conn.is_retransmission(data)
    conn.consume(data)
    assert conn.rcv_nxt == IRS + 6
    assert conn.is_retransmission(data)
    assert not conn.is_retransmission(segment(tcp.ACK, IRS + 6, ISS + 1))
    assert conn.is_retransmission(segment(tcp.SYN | tcp.ACK, IRS, ISS + 1))
    assert not conn.is_retransmission(segment(tcp.SYN | tcp.ACK, IRS + 70000, ISS + 1))


def test_numbers_wrap_around_the_sequence_circle():
    """An ISN just below 2**32: SND.NXT wraps to 0 and the variables stay small."""
    conn = Connection.opening(MOD - 1)
    conn.sent(MOD - 1, tcp.SYN, 0)
    assert conn.snd_nxt == 0
    conn.consume(segment(tcp.SYN | tcp.ACK, MOD - 2, 0))
    assert conn.rcv_nxt == MOD - 1 and conn.variables()["rcv_nxt"] == 1
    conn.sent(0, tcp.ACK | tcp.PSH, 3)
    assert conn.variables()["snd_nxt"] == 4


def test_window_is_scaled_only_when_both_sides_offered_it():
    """RFC 7323 2.2: the peer's window is shifted only if both SYNs carried a scale,
    and never in a SYN."""
    conn = Connection.opening(ISS)
    conn.sent(ISS, tcp.SYN, 0, [("wscale", 7)])
    conn.consume(segment(tcp.SYN | tcp.ACK, IRS, ISS + 1, window=1000, options=[("wscale", 2)]))
    assert conn.snd_wnd == 1000
    conn.consume(segment(tcp.ACK, IRS + 1, ISS + 1, window=1000))
    assert conn.snd_wnd == 4000
    unscaled = Connection.opening(ISS)
    unscaled.sent(ISS, tcp.SYN, 0)
    unscaled.consume(segment(tcp.SYN | tcp.ACK, IRS, ISS + 1, options=[("wscale", 2)]))
    unscaled.consume(segment(tcp.ACK, IRS + 1, ISS + 1, window=1000))
    assert unscaled.snd_wnd == 1000


def test_rst_ends_synchronization():
    conn = established()
    conn.consume(segment(tcp.RST, IRS + 1))
    assert not conn.synchronized
