"""Faults on the lab link without a lab: the spec's parsing and its errors,
the words for the report, the nftables ruleset's text, the delay line's
schedule, and the lab's side: its names, its bridge ports, the targets that
take faults (tests/test_link_faults.py measures them on a real link)."""

from __future__ import annotations

import argparse
import random

import pytest

from conformance.delayline import FIXED, UNIFORM, DelayLine, Schedule, delay_function, parse_route
from conformance.faults import Faults, parse_faults, ruleset
from conformance.lab import _LAB_NAME, Lab, LabError, port_forwards
from conformance.targets import RemoteConfig, make_target


# -- parsing --------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("loss=2%,dup=2%,corrupt=1%,delay=10ms,reorder=5%",
     Faults(loss=0.02, duplicate=0.02, corrupt=0.01, delay=0.01, reorder=0.05)),
    ("loss=0.02", Faults(loss=0.02)),
    ("duplicate=0.5%", Faults(duplicate=0.005)),
    ("corruption=1%", Faults(corrupt=0.01)),
    (" Loss = 3 % , DELAY = 500us ", Faults(loss=0.03, delay=0.0005)),
    ("delay=0.25s", Faults(delay=0.25)),
    ("delay=1s", Faults(delay=1.0)),
    ("reorder=50%", Faults(reorder=0.5)),
    ("loss=0%", Faults()),
    ("loss=.5%", Faults(loss=0.005)),
    ("none", Faults()),
])
def test_specs_parse(text, expected):
    assert vars(parse_faults(text)) == pytest.approx(vars(expected))


@pytest.mark.parametrize("text, message", [
    ("", "expected NAME=VALUE"),
    ("loss", "'loss': expected NAME=VALUE"),
    ("loss=", "'loss=': expected NAME=VALUE"),
    ("jitter=2ms", "unknown fault 'jitter'; expected one of loss, dup"),
    ("loss=2%,loss=3%", "'loss=3%': loss is given twice"),
    ("dup=1%,duplicate=1%", "duplicate is given twice"),
    ("loss=60%", "'loss=60%': expected at most 50% of frames"),
    ("loss=2", "a bare number is a fraction: write 2% or 0.02"),
    ("loss=-1%", "'loss=-1%': expected a fraction of frames"),
    ("loss=nan", "'loss=nan': expected a fraction of frames"),
    ("loss=inf%", "expected a fraction of frames"),
    ("loss=1e-2", "expected a fraction of frames"),
    ("loss=0.001%", "expected at least 0.01%"),
    ("delay=10", "'delay=10': expected a duration with its unit"),
    ("delay=2s", "'delay=2s': expected at most 1000 ms"),
    ("delay=inf ms", "expected a duration with its unit"),
    ("delay=-5ms", "expected a duration with its unit"),
    ("reorder=5%,", "'': expected NAME=VALUE"),
])
def test_bad_specs_name_the_part_and_what_is_expected(text, message):
    with pytest.raises(ValueError) as error:
        parse_faults(text)
    assert message in str(error.value)


def test_a_spec_that_is_not_text_is_refused():
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_faults(None)


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": 0.6}, "loss: expected a fraction of frames from 0 to 50%"),
    ({"corrupt": -0.1}, "corrupt: expected a fraction"),
    ({"duplicate": float("nan")}, "duplicate: expected a fraction"),
    ({"reorder": True}, "reorder: expected a fraction"),
    ({"loss": "2%"}, "loss: expected a fraction"),
    ({"delay": 1.5}, "delay: expected a duration from 0 to 1000 ms"),
    ({"delay": float("inf")}, "delay: expected a duration"),
    ({"loss": 0.00001}, "loss: expected at least 0.01%"),
])
def test_faults_check_their_own_values(kwargs, message):
    with pytest.raises(ValueError) as error:
        Faults(**kwargs)
    assert message in str(error.value)


# -- what the faults are, in words ------------------------------------------------

def test_no_faults_is_false_and_says_none():
    assert not Faults()
    assert Faults().describe() == "none"
    assert Faults(delay=0.001)


@pytest.mark.parametrize("faults, words", [
    (Faults(loss=0.02, duplicate=0.02, delay=0.01),
     "loss 2%, duplication 2%, delay up to 10 ms"),
    (Faults(corrupt=0.005), "corruption of TCP checksums 0.5%"),
    (Faults(reorder=0.05), "reordering 5% (held back 5 ms)"),
    (Faults(reorder=0.07, delay=0.0125), "reordering 7% (held back 12.5 ms)"),
])
def test_describe(faults, words):
    assert faults.describe() == words


def test_how_long_frames_are_held():
    assert Faults().hold == 0
    assert Faults(delay=0.01).hold == 0.01 and Faults(delay=0.01).delays_every_frame
    assert Faults(reorder=0.1).hold == 0.005 and not Faults(reorder=0.1).delays_every_frame
    assert Faults(reorder=0.1, delay=0.02).hold == 0.02


# -- the nftables ruleset ---------------------------------------------------------

def _chain(text: str, port: str) -> list[str]:
    """The rules of the ingress chain on `port`, one a line."""
    body = text.split(f"chain from_{port} {{", 1)[1].split("}", 1)[0]
    lines = [line.strip() for line in body.strip().splitlines()]
    assert lines[0] == f'type filter hook ingress device "{port}" priority filter; policy accept;'
    return lines[1:]


def test_ruleset_applies_every_fault_in_each_direction():
    text = ruleset(Faults(loss=0.02, duplicate=0.01, corrupt=0.005, reorder=0.05))
    assert text.startswith("table netdev tcpconf_faults {")
    for port, other, delay_port in (("l0", "l1", "dl0"), ("l1", "l0", "dl1")):
        assert _chain(text, port) == [
            'numgen random mod 10000 < 200 drop comment "loss 2%"',
            'meta l4proto tcp numgen random mod 10000 < 50 @th,128,16 set @th,128,16 ^ 0x0001 '
            'comment "corrupt 0.5% of TCP checksums"',
            f'numgen random mod 10000 < 100 dup to "{other}" comment "duplicate 1%"',
            f'numgen random mod 10000 < 500 fwd to "{delay_port}" '
            f'comment "reorder 5%: hold back 5 ms"',
        ]


def test_delay_alone_sends_every_frame_and_every_copy_to_the_delay_line():
    assert _chain(ruleset(Faults(duplicate=0.01, delay=0.01)), "l1") == [
        'numgen random mod 10000 < 100 dup to "dl1" comment "duplicate 1%"',
        'fwd to "dl1" comment "delay up to 10 ms"',
    ]


def test_only_tcp_is_corrupted():
    rules = _chain(ruleset(Faults(corrupt=0.01)), "l0")
    assert len(rules) == 1 and rules[0].startswith("meta l4proto tcp ")


def test_smallest_steps_are_exact():
    assert "mod 10000 < 1 drop" in ruleset(Faults(loss=0.0001))
    assert "mod 10000 < 5000 drop" in ruleset(Faults(loss=0.5))


def test_no_faults_means_no_rules():
    text = ruleset(Faults())
    assert _chain(text, "l0") == [] and _chain(text, "l1") == []


def test_ports_and_table_can_be_named():
    text = ruleset(Faults(reorder=0.1), ports=("a0", "a1"), delay_ports=("d0", "d1"), table="t")
    assert text.startswith("table netdev t {")
    assert 'fwd to "d0"' in "\n".join(_chain(text, "a0"))
    assert 'fwd to "d1"' in "\n".join(_chain(text, "a1"))


# -- the delay line's schedule ---------------------------------------------------

def test_frames_leave_when_due_earliest_first_and_in_arrival_order_on_ties():
    delays = iter([0.010, 0.002, 0.010, 0.0])
    schedule = Schedule(lambda: next(delays))
    for name in (b"a", b"b", b"c", b"d"):
        schedule.hold(name, "out", now=100.0)
    assert schedule.due(100.0) == [("out", b"d")]
    assert schedule.due(100.001) == []
    assert schedule.due(100.002) == [("out", b"b")]
    assert schedule.due(100.5) == [("out", b"a"), ("out", b"c")]
    assert len(schedule) == 0


def test_poll_waits_until_the_next_deadline_rounded_up():
    schedule = Schedule(lambda: 0.0041)
    assert schedule.timeout_ms(5.0) is None                    # nothing held: wait for frames
    schedule.hold(b"x", "out", now=5.0)
    assert schedule.timeout_ms(5.0) == 5                      # never wakes before the deadline
    assert schedule.timeout_ms(5.0041) == 0
    assert schedule.timeout_ms(6.0) == 0                      # overdue: at once


def test_delay_functions():
    assert delay_function(FIXED, 0.005)() == 0.005
    uniform = delay_function(UNIFORM, 0.01, random.Random(1))
    draws = [uniform() for _ in range(2000)]
    assert 0 <= min(draws) and max(draws) <= 0.01
    assert 0.0045 < sum(draws) / len(draws) < 0.0055
    with pytest.raises(ValueError, match="expected fixed or uniform"):
        delay_function("gaussian", 0.01)


def test_routes():
    assert parse_route("dl0r:l1") == ("dl0r", "l1")
    for bad in ("dl0r", ":l1", "dl0r:"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected IN:OUT"):
            parse_route(bad)


def test_the_delay_line_runs_in_the_link_namespace():
    line = DelayLine("tcpconf-1-1-link", [("dl0r", "l1"), ("dl1r", "l0")], 0.005, FIXED)
    command = line.command()
    assert command[:4] == ["ip", "netns", "exec", "tcpconf-1-1-link"]
    assert command[5:] == ["-m", "conformance.delayline", "--delay", "0.005", "--mode", "fixed",
                           "--route", "dl0r:l1", "--route", "dl1r:l0"]
    assert line.pid is None and not line.alive()


# -- the lab's side ---------------------------------------------------------------

def test_a_lab_with_faults_has_a_link_namespace_that_a_later_run_recognises():
    assert Lab(tag="7-1").link_ns is None
    with_faults = Lab(tag="7-1", faults=Faults())
    assert with_faults.link_ns == "tcpconf-7-1-link"
    assert _LAB_NAME.match(with_faults.link_ns).group(1) == "7"
    assert with_faults.link_text.endswith(" via tcpconf-7-1-link (l0, br0, l1)")


@pytest.mark.parametrize("shown, forwards", [
    ([{"operstate": "UP", "linkinfo": {"info_slave_data": {"state": "forwarding"}}}], True),
    ([{"operstate": "UP", "linkinfo": {"info_slave_data": {"state": "disabled"}}}], False),
    ([{"operstate": "LOWERLAYERDOWN",
       "linkinfo": {"info_slave_data": {"state": "forwarding"}}}], False),
    ([{"operstate": "UP"}], False),
    ([], False),
])
def test_a_bridge_port_forwards_once_up_and_forwarding(shown, forwards):
    assert port_forwards(shown) is forwards


def test_a_target_outside_the_lab_refuses_faults():
    config = RemoteConfig(iface="eth1", addresses=("192.0.2.10",))
    with pytest.raises(LabError, match="the suite owns no link to a remote target"):
        make_target("remote", outside=config, faults=Faults(loss=0.01))


def test_lab_targets_pass_faults_to_their_lab():
    faults = Faults(loss=0.01)
    for name in ("linux", "lwip", "pytcp", "gvisor"):
        assert make_target(name, faults=faults).lab.faults is faults
    assert make_target("linux").lab.faults is None
