"""What a middlebox did with a segment, and the firewall's rulesets (pure: no lab)."""

from __future__ import annotations

import pytest

from conformance import tcp
from conformance.evidence import DeviceEvent, describe, from_json, to_json
from conformance.firewall import FIREWALL, NAT, WEAK, ruleset
from conformance.lab import LabError
from conformance.conntrack import Tracked
from conformance.middlebox import (DROPS, FORWARDS, TRANSLATES, UNDECIDED, MiddleboxAt,
                                   MiddleboxView, crossing, fence_crossed, lasts)
from conformance.targets import middlebox_of
from conformance.wire import Frame, Link, build_frame, echo_request, is_echo_request

OUTSIDE = Link("tester0", "02:00:c6:12:00:01", "02:00:c6:12:00:d0", "198.18.0.1", "198.18.1.2")
OUTSIDE6 = Link("tester0", "02:00:c6:12:00:01", "02:00:c6:12:00:d0", "2001:2::1",
                "2001:2:0:1::2")
# The same segment on the inside link, one hop on: another MAC, TTL one less.
INSIDE = Link("fw1", "02:00:c6:12:00:d1", "02:00:c6:12:00:02", "198.18.0.1", "198.18.1.2")
NATTED = Link("fw1", "02:00:c6:12:00:d1", "02:00:c6:12:00:02", "198.18.1.254", "198.18.1.2")


def segment(link, ttl=64, sport=40000, flags=tcp.ACK):
    frame = bytearray(build_frame(link, sport, 10000, 1000, 2000, flags, 65535, b"hi"))
    if link.family == tcp.IPV4 and ttl != 64:
        frame[22] = ttl
        frame[24:26] = b"\x00\x00"          # what a router recomputes: not compared
    elif ttl != 64:
        frame[21] = ttl
    return bytes(frame)


def test_a_segment_one_hop_on_and_otherwise_unchanged_was_forwarded():
    sent = segment(OUTSIDE)
    found = crossing(sent, 10.0, [Frame(10.0002, False, segment(INSIDE, ttl=63))])
    assert (found.fate, round(found.delay, 4)) == (FORWARDS, 0.0002)
    assert describe(found.event(10.0)) == "the firewall forwards it: at the end host 0.20 ms later"


def test_ipv6_hop_limit_is_the_hop_too():
    inside6 = Link("fw1", INSIDE.tester_mac, INSIDE.target_mac, "2001:2::1", "2001:2:0:1::2")
    found = crossing(segment(OUTSIDE6), 10.0, [Frame(10.001, False, segment(inside6, ttl=63))])
    assert found.fate == FORWARDS


def test_a_segment_with_other_addresses_was_translated_and_says_how():
    found = crossing(segment(OUTSIDE), 10.0,
                     [Frame(10.001, False, segment(NATTED, ttl=63, sport=61000))])
    assert found.fate == TRANSLATES
    assert found.detail == "source 198.18.0.1:40000 -> 198.18.1.254:61000"


def test_a_segment_never_seen_inside_was_dropped():
    other = segment(INSIDE, ttl=63, flags=tcp.ACK | tcp.PSH)      # another segment
    outgoing = Frame(10.001, True, segment(INSIDE, ttl=63))       # the host's own, leaving
    assert crossing(segment(OUTSIDE), 10.0, [Frame(10.001, False, other), outgoing]).fate == DROPS


def test_the_rulesets_differ_where_the_cases_look():
    stateful, weak, nat = ruleset(FIREWALL), ruleset(WEAK), ruleset(NAT)
    assert "ct state established,related accept" in stateful and "ct state" not in weak
    assert "tcp flags & (fin | syn | rst | ack) == syn ct state new accept" in stateful
    assert "masquerade" in nat and "masquerade" not in stateful
    with pytest.raises(LabError, match="unknown firewall ruleset 'open'"):
        ruleset("open")


def test_each_target_runs_the_cases_for_what_it_is():
    assert [middlebox_of(t) for t in ("linux", "firewall", "firewall-weak", "nat",
                                      "firewall-gvisor", "remote")] \
        == [None, "firewall", "firewall", "nat", "firewall", None]


def test_what_the_device_did_is_typed_evidence_in_results_json():
    events = [DeviceEvent(1.0, "crossing", "translates", 52, "source 198.18.0.1:40000 -> "
                                                            "198.18.1.254:61000"),
              DeviceEvent(1.1, "tracking", "ESTABLISHED", None, "431999 s left"),
              DeviceEvent(1.2, "tracking", "none")]
    back = from_json(to_json(events))
    assert [describe(e) for e in back] == [
        "the firewall translates it: at the end host 0.05 ms later (source 198.18.0.1:40000 "
        "-> 198.18.1.254:61000)",
        "the firewall tracks it as ESTABLISHED (431999 s left)",
        "the firewall tracks no connection for it"]


# -- a drop is decided by a fence ------------------------------------------------

class FakeCapture:
    """Frames that 'arrive' on the inside link when the view reads; the
    fence's echo among them only once the fence was sent."""

    def __init__(self, frames, echo_after_fence: bool):
        self.frames, self.echo_after_fence, self.fenced = list(frames), echo_after_fence, False

    def receive(self, deadline):
        if self.frames:
            return self.frames.pop(0)
        if self.fenced and self.echo_after_fence:
            self.fenced = False
            return Frame(20.0004, False, echo_request(INSIDE, 77))
        return None


def view_with(frames, echo_after_fence=True):
    capture = FakeCapture(frames, echo_after_fence)
    view = MiddleboxView(capture, MiddleboxAt("host", "target0", "fw", {tcp.IPV4: "198.18.1.2"}))

    def fence():
        capture.fenced = True
        return 77
    return view, fence


def test_a_drop_stands_when_an_echo_sent_after_the_segment_arrived_without_it():
    view, fence = view_with([])
    found = view.fate(segment(OUTSIDE), 10.0, 0, fence)
    assert found.fate == DROPS
    assert found.detail == "an echo sent after it did reach the end host"


def test_without_the_echo_a_missing_segment_decides_nothing():
    view, fence = view_with([], echo_after_fence=False)
    found = view.fate(segment(OUTSIDE), 10.0, 0, fence)
    assert found.fate == UNDECIDED
    assert "neither did an echo sent through the device after it" in found.detail


def test_a_segment_that_arrives_needs_no_fence():
    view, fence = view_with([Frame(10.0002, False, segment(INSIDE, ttl=63))])
    assert view.fate(segment(OUTSIDE), 10.0, 0, fence).fate == FORWARDS
    assert not view.capture.fenced


def test_an_echo_request_is_told_by_its_ident():
    frame = Frame(1.0, False, echo_request(INSIDE, 77))
    assert fence_crossed(77, [frame]).fate == DROPS
    assert fence_crossed(78, [frame]) is None
    assert not is_echo_request(Frame(1.0, False, segment(INSIDE)), 77)


def test_an_idle_timeout_is_read_from_the_time_the_tracker_has_left():
    def entry(state, timeout):
        return Tracked("ipv4", state, timeout, None, None, False, False)
    assert lasts(entry("ESTABLISHED", 7439), 7440) and lasts(entry("ESTABLISHED", 1), None)
    assert not lasts(None, 7440) and not lasts(entry("SYN_SENT", 119), 240)


def test_an_end_host_segment_the_tester_never_got_is_undelivered():
    answer = segment(INSIDE, flags=tcp.ACK)
    view, _fence = view_with([Frame(10.5, True, answer)])
    assert [f.time for f in view.undelivered(10.0, delivered=[])] == [10.5]
    # The same segment captured at the tester, one hop on, was delivered.
    assert view.undelivered(10.0, delivered=[segment(OUTSIDE, ttl=63, flags=tcp.ACK)]) == []
    # What left before the answer was prompted is not counted.
    assert view.undelivered(11.0, delivered=[]) == []


# -- ICMP errors about a connection ----------------------------------------------

def test_an_icmp_error_is_known_by_the_segment_it_quotes_and_its_translation_named():
    from dataclasses import replace

    from conformance.wire import icmp_error
    from conformance.witness import ip_packet

    # The end host's segment as the tester got it behind NAT (from the NAT's
    # address), quoted in the tester's error; and the same error as the NAT
    # delivers it inside, addressed to the end host and quoting its own address.
    answer = ip_packet(build_frame(Link("t", "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.1.254", "198.18.0.1"), 61000,
                                   40000, 5000, 6000, tcp.ACK | tcp.PSH, 502, b"hello"))
    sent = icmp_error(replace(OUTSIDE, target_ip="198.18.1.254"), 13, answer)
    inner = ip_packet(build_frame(Link("t", "02:00:00:00:00:01", "02:00:00:00:00:02", "198.18.1.2", "198.18.0.1"), 40000,
                                  40000, 5000, 6000, tcp.ACK | tcp.PSH, 502, b"hello"))
    arrived = icmp_error(Link("fw1", INSIDE.tester_mac, INSIDE.target_mac, "198.18.0.1",
                              "198.18.1.2"), 13, inner)
    found = crossing(sent, 10.0, [Frame(10.001, False, arrived)])
    assert found.fate == TRANSLATES
    assert found.detail == ("destination 198.18.1.254 -> 198.18.1.2, quoted source "
                            "198.18.1.254:61000 -> 198.18.1.2:40000")
    # An error quoting another segment is another packet.
    other = icmp_error(Link("fw1", INSIDE.tester_mac, INSIDE.target_mac, "198.18.0.1",
                            "198.18.1.2"), 13, ip_packet(segment(INSIDE)))
    assert crossing(sent, 10.0, [Frame(10.001, False, other)]).fate == DROPS
