"""Reading a firewall's connection tracking table (pure: no lab)."""

import re

import pytest

from conformance.conntrack import ConntrackError, entry_for, parse

# Two lines as this kernel printed them (a namespace's loopback connections),
# then a half-open one in the kernel's format, translated as a NAT would.
TABLE = """\
ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=52834 dport=5555 \
src=127.0.0.1 dst=127.0.0.1 sport=5555 dport=52834 [ASSURED] mark=0 zone=0 use=2
ipv6     10 tcp      6 431999 ESTABLISHED src=0000:0000:0000:0000:0000:0000:0000:0001 \
dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=36670 dport=5555 \
src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 \
sport=5555 dport=36670 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=198.18.0.1 dst=198.18.1.2 sport=53 dport=53 [UNREPLIED] \
src=198.18.1.2 dst=198.18.0.1 sport=53 dport=53 mark=0 zone=0 use=2
ipv4     2 tcp      6 117 SYN_SENT src=198.18.1.2 dst=198.18.0.1 sport=10001 dport=40001 \
[UNREPLIED] src=198.18.0.1 dst=198.18.0.254 sport=40001 dport=61000 mark=0 zone=0 use=2
"""


def test_each_tcp_line_becomes_an_entry_and_other_protocols_are_left_out():
    v4, v6, half = parse(TABLE)
    assert (v4.family, v4.state, v4.timeout, v4.assured, v4.unreplied) == (
        "ipv4", "ESTABLISHED", 431999, True, False)
    assert (v4.original.sport, v4.reply.sport) == (52834, 5555)
    assert v6.original.src == "::1" and v6.family == "ipv6"
    assert (half.state, half.unreplied, half.assured) == ("SYN_SENT", True, False)


def test_an_entry_is_found_from_either_direction_of_its_flow():
    entries = parse(TABLE)
    assert entry_for(entries, "::1", 5555, "0::1", 36670).state == "ESTABLISHED"
    assert entry_for(entries, "198.18.0.1", 40001, "198.18.0.254", 61000).state == "SYN_SENT"
    assert entry_for(entries, "198.18.0.1", 40002, "198.18.0.254", 61000) is None


def test_a_translated_flow_is_told_from_a_plain_one():
    v4, _v6, half = parse(TABLE)
    assert not v4.translated and half.translated


@pytest.mark.parametrize("line, words", [
    ("ipv4 2 tcp 6 x ESTABLISHED", "expected 'ipv4|ipv6 N tcp 6 SECONDS STATE ...'"),
    ("ipv4 2 tcp 6 10 SYN_SEEN src=1 dst=2", "unknown TCP state 'SYN_SEEN'"),
    ("ipv4 2 tcp 6 10 CLOSE src=198.18.0.1 dst=198.18.0.2", "expected two tuples"),
])
def test_a_line_that_makes_no_sense_is_one_clear_error(line, words):
    with pytest.raises(ConntrackError, match="line 1: " + re.escape(words)):
        parse(line)
