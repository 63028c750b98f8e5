"""TCP flags as written in case files and on ladders (conformance.tcp)."""

from __future__ import annotations

import pytest

from conformance.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    FLAG_NAMES,
    PSH,
    RST,
    SYN,
    URG,
    FlagsError,
    format_flags,
    parse_flags,
)

ALL = FIN | SYN | RST | PSH | ACK | URG | ECE | CWR


def test_flag_bits_are_the_wire_bits():
    """The flag constants are the bits of the TCP header's flags octet."""
    assert (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR) == (0x01, 0x02, 0x04, 0x08,
                                                        0x10, 0x20, 0x40, 0x80)
    assert set(FLAG_NAMES) == {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}


# --- parse_flags: names ----------------------------------------------------------

@pytest.mark.parametrize("text", [
    "SYN+ACK", "syn|ack", "SYN,ACK", "SYN ACK", "ACK+SYN", "  SYN + ACK  ", "Syn|Ack",
    "SYN, ACK", "SYN+ACK+SYN",
])
def test_names_with_any_separator(text):
    """Names joined by +, |, comma or spaces, in any case and order, give SYN|ACK."""
    assert parse_flags(text) == (SYN | ACK, 0)


@pytest.mark.parametrize("text, bits", [
    ("RST", RST), ("rst", RST), ("FIN", FIN), ("ACK", ACK), ("SYN", SYN),
    ("PSH", PSH), ("URG", URG), ("ECE", ECE), ("CWR", CWR),
    ("FIN+ACK", FIN | ACK), ("RST+ACK", RST | ACK), ("FIN+PSH+ACK", FIN | PSH | ACK),
    ("SYN+ECE+CWR", SYN | ECE | CWR),
])
def test_single_and_combined_names(text, bits):
    """Each name maps to its own bit."""
    assert parse_flags(text) == (bits, 0)


@pytest.mark.parametrize("text", ["none", "NONE", "None", "0", "", "   "])
def test_none(text):
    """'none', '0' and the empty string mean no flags at all."""
    assert parse_flags(text) == (0, 0)


# --- parse_flags: tcpdump letters ----------------------------------------------------

@pytest.mark.parametrize("text, bits", [
    ("S.", SYN | ACK),
    ("R.", RST | ACK),
    ("FP.", FIN | PSH | ACK),
    ("S", SYN),
    ("R", RST),
    (".", ACK),
    ("P.", PSH | ACK),
    ("F.", FIN | ACK),
    ("SFRPUEW.", ALL),
    (" S. ", SYN | ACK),
])
def test_tcpdump_letters(text, bits):
    """tcpdump's letters, with '.' for ACK, as in 'S.' for a SYN-ACK."""
    assert parse_flags(text) == (bits, 0)


# --- parse_flags: optional flags -----------------------------------------------------

@pytest.mark.parametrize("text, required, optional", [
    ("ACK+(PSH)", ACK, PSH),
    ("ACK+PSH?", ACK, PSH),
    ("ack+(psh)", ACK, PSH),
    ("ACK,PSH?", ACK, PSH),
    ("FIN+ACK+(PSH)", FIN | ACK, PSH),
    ("ACK+(PSH)+(URG)", ACK, PSH | URG),
    ("(PSH)", 0, PSH),
    ("PSH?", 0, PSH),
])
def test_optional_flags(text, required, optional):
    """A name in parentheses or with '?' is optional: returned in the second mask."""
    assert parse_flags(text) == (required, optional)


# --- parse_flags: errors ---------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "SYNACK", "XYZ", "S+Q", "SYN+XYZ", "S.+ACK", "SYN++FOO", "()", "?", "s.", "SYN-ACK",
])
def test_unknown_flags_raise(text):
    """Neither names nor tcpdump letters: FlagsError naming the offending text."""
    with pytest.raises(FlagsError, match="unknown flag"):
        parse_flags(text)


def test_flags_error_is_a_value_error():
    """FlagsError is a ValueError, so generic callers can catch it."""
    assert issubclass(FlagsError, ValueError)


def test_error_names_the_bad_word():
    """In a list of names, the error quotes the word that is not a flag."""
    with pytest.raises(FlagsError, match="'Q'"):
        parse_flags("SYN+Q")


# --- format_flags ----------------------------------------------------------------------

@pytest.mark.parametrize("bits, text", [
    (SYN | ACK, "SYN+ACK"),
    (FIN | ACK, "FIN+ACK"),
    (RST | ACK, "RST+ACK"),
    (0, "none"),
    (SYN, "SYN"),
    (ACK, "ACK"),
    (PSH | ACK, "PSH+ACK"),
    (FIN | PSH | ACK, "FIN+PSH+ACK"),
    (SYN | FIN, "SYN+FIN"),
    (ALL, "SYN+FIN+RST+PSH+URG+ECE+CWR+ACK"),
])
def test_format_flags_spoken_order(bits, text):
    """format_flags writes SYN, FIN, RST, PSH, URG, ECE, CWR, ACK in that order."""
    assert format_flags(bits) == text


def test_format_then_parse_round_trips():
    """Every one of the 256 flag combinations survives format_flags then parse_flags."""
    for bits in range(256):
        assert parse_flags(format_flags(bits)) == (bits, 0), format_flags(bits)
