"""Sequence number arithmetic modulo 2**32 (conformance.seq)."""

from __future__ import annotations

import pytest

from conformance.seq import (
    HALF,
    MOD,
    in_window,
    relative,
    seq_add,
    seq_diff,
    seq_ge,
    seq_gt,
    seq_le,
    seq_lt,
)

TOP = MOD - 1  # the largest sequence number, 2**32 - 1


def test_constants():
    """MOD is 2**32 and HALF is 2**31."""
    assert MOD == 2**32
    assert HALF == 2**31


# --- seq_add -------------------------------------------------------------------

@pytest.mark.parametrize("a, n, expected", [
    (0, 0, 0),
    (1, 1, 2),
    (TOP, 1, 0),
    (TOP, 2, 1),
    (MOD - 10, 15, 5),
    (5, -10, MOD - 5),
    (0, -1, TOP),
    (0, MOD, 0),
    (7, 3 * MOD + 1, 8),
    (HALF, HALF, 0),
])
def test_seq_add_wraps(a, n, expected):
    """seq_add stays on the circle [0, 2**32) in both directions."""
    assert seq_add(a, n) == expected


# --- seq_diff ------------------------------------------------------------------

@pytest.mark.parametrize("a, b, expected", [
    (5, 5, 0),
    (6, 5, 1),
    (5, 6, -1),
    (0, TOP, 1),              # across the wrap, forwards
    (TOP, 0, -1),             # across the wrap, backwards
    (5, MOD - 10, 15),
    (MOD - 10, 5, -15),
    (HALF - 1, 0, HALF - 1),  # largest positive distance below the half circle
    (HALF + 1, 0, -(HALF - 1)),
    (0, HALF + 1, HALF - 1),
])
def test_seq_diff_sign(a, b, expected):
    """seq_diff is the signed shortest distance a - b."""
    assert seq_diff(a, b) == expected


@pytest.mark.parametrize("a, b", [(HALF, 0), (0, HALF), (TOP, HALF - 1), (123, 123 + HALF)])
def test_seq_diff_exactly_half_is_positive(a, b):
    """At exactly 2**31 apart the distance is +2**31: the range is (-2**31, 2**31]."""
    assert seq_diff(a, b) == HALF


@pytest.mark.parametrize("a", [0, 1, HALF - 1, HALF, HALF + 1, TOP])
@pytest.mark.parametrize("b", [0, 1, HALF - 1, HALF, HALF + 1, TOP])
def test_seq_diff_range(a, b):
    """seq_diff always lies in (-2**31, 2**31] and agrees with seq_add."""
    d = seq_diff(a, b)
    assert -HALF < d <= HALF
    assert seq_add(b, d) == a


# --- comparisons ---------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    (1, 2),
    (MOD - 10, 5),       # 2**32-10 < 5 across the wrap
    (TOP, 0),
    (0, HALF - 1),
    (HALF + 1, 0),       # HALF+1 is 2**31-1 behind 0
])
def test_less_than_across_wrap(a, b):
    """a < b on the circle: lt and le hold, gt and ge do not, and the mirror holds."""
    assert seq_lt(a, b)
    assert seq_le(a, b)
    assert not seq_gt(a, b)
    assert not seq_ge(a, b)
    assert seq_gt(b, a)
    assert seq_ge(b, a)
    assert not seq_lt(b, a)
    assert not seq_le(b, a)


@pytest.mark.parametrize("a", [0, 5, HALF, TOP])
def test_equal_numbers(a):
    """Equal numbers are le and ge but neither lt nor gt."""
    assert seq_le(a, a) and seq_ge(a, a)
    assert not seq_lt(a, a) and not seq_gt(a, a)


def test_plain_integer_order_is_not_used():
    """5 is after 2**32-10 although it is the smaller integer."""
    assert seq_gt(5, MOD - 10)
    assert not seq_lt(5, MOD - 10)


# --- in_window -----------------------------------------------------------------

@pytest.mark.parametrize("seq, start, size, expected", [
    (100, 100, 10, True),          # start is inside
    (109, 100, 10, True),          # the last octet
    (110, 100, 10, False),         # start + size is outside
    (99, 100, 10, False),          # just before
    (MOD - 5, MOD - 5, 10, True),  # window straddling the wrap
    (TOP, MOD - 5, 10, True),
    (0, MOD - 5, 10, True),
    (4, MOD - 5, 10, True),
    (5, MOD - 5, 10, False),
    (MOD - 6, MOD - 5, 10, False),
    (0, 0, 1, True),
    (1, 0, 1, False),
    (TOP, 0, MOD, True),           # the whole circle
])
def test_in_window(seq, start, size, expected):
    """in_window is start =< seq < start + size modulo 2**32."""
    assert in_window(seq, start, size) is expected


@pytest.mark.parametrize("seq, start", [(100, 100), (0, 0), (TOP, TOP), (101, 100)])
def test_in_window_size_zero_holds_nothing(seq, start):
    """A window of size 0 holds no sequence number, not even its start."""
    assert in_window(seq, start, 0) is False


def test_in_window_negative_size_holds_nothing():
    """A negative size is treated as an empty window."""
    assert in_window(100, 100, -1) is False


# --- relative ------------------------------------------------------------------

@pytest.mark.parametrize("absolute, isn, expected", [
    (1001, 1000, 1),
    (1000, 1000, 0),
    (990, 1000, -10),
    (0, TOP, 1),            # ISN+1 across the wrap
    (MOD - 5, 5, -10),      # ISN-10 across the wrap
    (TOP, 0, -1),
])
def test_relative(absolute, isn, expected):
    """relative() counts from the ISN as a ladder does: ISN+1 is 1, ISN-10 is -10."""
    assert relative(absolute, isn) == expected


@pytest.mark.parametrize("absolute", [0, 1, TOP])
def test_relative_unknown_isn(absolute):
    """relative() is None while the ISN is not known."""
    assert relative(absolute, None) is None


def test_relative_isn_zero_is_not_unknown():
    """An ISN of 0 is a real ISN, not a missing one."""
    assert relative(1, 0) == 1


# --- properties ------------------------------------------------------------------

def test_properties(tmp_path, monkeypatch):
    """Property check: add/diff round trip, comparison mirror, window membership."""
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    configuration = pytest.importorskip("hypothesis.configuration")
    # Hypothesis caches files under ./.hypothesis even without an example
    # database; keep them in this test's temporary directory instead.
    monkeypatch.setattr(configuration, "__hypothesis_home_directory", tmp_path, raising=False)

    seqs = st.integers(min_value=0, max_value=TOP)
    # Distances strictly inside the half circle, where order is defined.
    dists = st.integers(min_value=-(HALF - 1), max_value=HALF - 1)
    settings = hypothesis.settings(max_examples=200, deadline=None, database=None)

    @settings
    @hypothesis.given(a=seqs, d=dists)
    def round_trip_and_order(a, d):
        b = seq_add(a, d)
        assert 0 <= b < MOD
        assert seq_diff(b, a) == d
        assert seq_diff(a, b) == -d
        assert seq_lt(a, b) == (d > 0) == seq_gt(b, a)
        assert seq_le(a, b) == (d >= 0) == seq_ge(b, a)
        assert relative(b, a) == d

    @settings
    @hypothesis.given(start=seqs, k=st.integers(min_value=0, max_value=TOP),
                      size=st.integers(min_value=0, max_value=MOD))
    def window(start, k, size):
        assert in_window(seq_add(start, k), start, size) == (k < size)

    round_trip_and_order()
    window()
