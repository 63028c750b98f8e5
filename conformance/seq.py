"""Sequence number arithmetic modulo 2**32 (RFC 9293 section 3.4).

TCP sequence numbers live on a circle: "=<" in the RFC means "less than or equal
modulo 2**32", which is only meaningful for numbers less than 2**31 apart.
Every comparison of sequence or acknowledgment numbers in the suite goes
through this module, so that a test against a target whose ISN sits just below
2**32 wraps correctly.
"""

from __future__ import annotations

MOD = 1 << 32
HALF = 1 << 31


def seq_add(a: int, n: int) -> int:
    """a + n on the sequence circle."""
    return (a + n) % MOD


def seq_diff(a: int, b: int) -> int:
    """The signed distance a - b, in (-2**31, 2**31]."""
    d = (a - b) % MOD
    return d - MOD if d > HALF else d


def seq_lt(a: int, b: int) -> bool:
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    return seq_diff(a, b) >= 0


def in_window(seq: int, start: int, size: int) -> bool:
    """start =< seq < start + size, as in the acceptability test of
    RFC 9293 section 3.10.7.4 (Table 6)."""
    return 0 <= (seq - start) % MOD < size if size > 0 else False


def relative(absolute: int, isn: int | None) -> int | None:
    """A sequence number relative to an ISN, as engineers read a ladder:
    ISN+1 is 1, ISN-10 is -10.  None when the ISN is not known yet."""
    if isn is None:
        return None
    return seq_diff(absolute, isn)
