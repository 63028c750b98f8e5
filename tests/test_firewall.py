"""The middlebox targets: the reference stateful firewall passes the
firewall cases and the reference NAT the NAT cases; the weak, stateless
firewall deviates in every firewall case that needs state, so each such check
is shown able to fail; host cases and middlebox cases each run only where
they belong."""

from __future__ import annotations

import json

import pytest

from .conftest import CASES, REPO, sweep

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return tmp_path_factory.mktemp("firewall-sweep")


@pytest.fixture(scope="module")
def records(report) -> dict:
    result = sweep(CASES / "middlebox", report, "--target", "firewall,firewall-weak,nat")
    assert result.returncode == 0, result.stdout[-3000:]
    data = json.loads((report / "results.json").read_text())
    return {(r["target"], r["case"], r["family"]): r for r in data["records"]}


def test_the_reference_firewall_passes_every_middlebox_case(records):
    ours = {key: r["status"] for key, r in records.items() if key[0] == "firewall"}
    assert len(ours) >= 38 and set(ours.values()) == {"pass"}, ours


def test_the_reference_nat_passes_the_nat_cases(records):
    ours = {key: r["status"] for key, r in records.items() if key[0] == "nat"}
    assert len(ours) >= 12 and set(ours.values()) == {"pass"}, ours


def test_the_weak_firewall_deviates_in_every_case_that_needs_state(records, report):
    weak = {key: r for key, r in records.items() if key[0] == "firewall-weak"}
    assert len(weak) == len([k for k in records if k[0] == "firewall"])
    # Passing every segment is right for one case only: a SYN with data.
    passed = {key[1] for key, r in weak.items() if r["status"] == "pass"}
    assert passed == {"firewall.syn-with-data"}
    assert {r["status"] for key, r in weak.items() if key[1] not in passed} <= {"info", "warn"}
    # The seed's warning: an ACK with no connection behind it crosses a
    # stateless filter.
    ack = weak[("firewall-weak", "firewall.ack-without-connection", "ipv4")]
    assert ack["expected"] == "the firewall drops it"
    assert ack["actual"].startswith("the firewall forwards it: at the end host")
    # What the device did is typed evidence on the ladder, drawn on the case's page.
    assert [e["seen"] for e in ack["ladder"] if e["kind"] == "device"] == ["forwards"]
    page = report / "cases" / "firewall-weak" / "firewall.ack-without-connection-ipv4.html"
    assert "the firewall forwards it: at the end host" in page.read_text()


def test_host_cases_and_middlebox_cases_run_where_they_belong():
    import subprocess
    import sys
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "--target", "linux,firewall", str(CASES / "middlebox"), str(CASES / "fin")],
        cwd=REPO, capture_output=True, text=True).stdout
    items = [line for line in listed.splitlines() if "::" in line]
    assert items and all(("[firewall-" in i) == ("middlebox/" in i) for i in items), items


def test_a_drop_is_not_decided_by_a_capture_that_sees_nothing(tmp_path):
    """The fence: with the inside capture on an interface where nothing
    arrives (the end host's loopback), a segment the firewall forwards would
    pass for dropped; the echo sent after it does not arrive either, so the
    step is an error that says so."""
    from dataclasses import replace

    from conformance.casefile import load_case_file
    from conformance.runner import Runner
    from conformance.verdict import ERROR, PASS

    case = {c.id: c for c in load_case_file(CASES / "middlebox" / "firewall.yaml")}[
        "firewall.ack-without-connection"]
    with Runner.for_target("firewall-weak", pcap_dir=tmp_path) as runner:
        runner.start()
        blind = replace(runner.target.middlebox_at, host_iface="lo")
        runner.middlebox.close()
        runner.middlebox = runner.engine.middlebox = type(runner.middlebox).on(blind)
        verdict = runner.run(case)
    assert verdict.outcome == ERROR, verdict.reason
    assert "neither did an echo sent through the device after it" in verdict.reason
    with Runner.for_target("firewall", pcap_dir=tmp_path) as runner:
        assert runner.run(case).outcome == PASS
