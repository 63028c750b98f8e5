"""The lab's other stacks: lwIP, gVisor's netstack and PyTCP, beside Linux.

Each test drives the real stack.  They show that every stack starts, answers
in both families and leaves nothing behind; that the differences measured in
the lab notes show up as failures on the right stack and passes on the
others; and that what the suite cannot know about a stack (a state it does
not show, a crash) never becomes a verdict about it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.casefile import load_case_file
from conformance.lab import (TARGET_IP, TARGET_IP6, TESTER_IP, TESTER_IP6, list_namespaces,
                            pid_alive)
from conformance.runner import Runner
from conformance.targets import TARGETS
from conformance.targets.gvisor import descendants
from conformance.targets.lwip import AGENT, build_agent
from conformance.verdict import ERROR, FAIL, NOT_APPLICABLE, PASS
from conformance.wire import echo_request, is_echo_reply

from .conftest import REPO, all_cases, closing_count

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

STACKS = ("lwip", "gvisor", "pytcp")


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    """One started runner per stack, for the whole module (started on first use)."""
    started: dict[str, Runner] = {}

    def get(name: str) -> Runner:
        if name not in started:
            runner = Runner.for_target(name, pcap_dir=tmp_path_factory.mktemp(name))
            runner.start()
            assert not runner.failure, runner.failure
            started[name] = runner
        return started[name]

    yield get
    for runner in started.values():
        runner.stop()


def case(case_id: str):
    return all_cases()[case_id]


def verdict_text(verdict) -> str:
    return verdict.explain() if verdict.outcome != PASS else verdict.headline()


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_completes_a_handshake_in_both_families(runners, stack):
    runner = runners(stack)
    for family in ("ipv4", "ipv6"):
        verdict = runner.run(case("handshake.passive-open"), family)
        assert verdict.outcome == PASS, verdict_text(verdict)


# What ../shared/reference/tcp-rules.md measured ("Behaviour that differs between
# real stacks"), as the verdicts of the cases that check it.
DIFFERENCES = {
    # FIN without ACK: lwIP ACKs it and the application sees EOF.
    "fin.without-ack": {"linux": PASS, "lwip": FAIL, "gvisor": PASS, "pytcp": PASS},
    # Data without ACK: lwIP acknowledges and delivers it.
    "acceptability.data-without-ack": {"linux": PASS, "lwip": FAIL, "gvisor": PASS,
                                       "pytcp": PASS},
    # An in-window RST not at RCV.NXT: gVisor resets, PyTCP ignores it; the others
    # send the challenge ACK of RFC 5961.
    "rst.in-window-challenge-ack": {"linux": PASS, "lwip": PASS, "gvisor": FAIL,
                                    "pytcp": FAIL},
    # A stray ACK to a listener: RST seq=SEG.ACK from Linux and gVisor, RST/ACK from
    # lwIP and PyTCP.
    "probes.ack-to-listener": {"linux": PASS, "lwip": FAIL, "gvisor": PASS, "pytcp": FAIL},
    # SYN+FIN to a listener: Linux and PyTCP drop it, lwIP and gVisor answer SYN-ACK.
    "probes.syn-fin-urg-psh-to-listener": {"linux": FAIL, "lwip": PASS, "gvisor": PASS,
                                           "pytcp": FAIL},
}
# What the actual answer of a failing stack says, to be sure it fails for the
# measured reason and not another.
WHY = {
    ("fin.without-ack", "lwip"): "ACK",
    ("acceptability.data-without-ack", "lwip"): "ack=6",
    ("rst.in-window-challenge-ack", "gvisor"): "RFC 793 in-window reset",
    ("probes.ack-to-listener", "lwip"): "RST+ACK",
    ("probes.ack-to-listener", "pytcp"): "RST+ACK",
}


@pytest.mark.parametrize("case_id, stack, outcome", [
    (case_id, stack, outcome) for case_id, outcomes in DIFFERENCES.items()
    for stack, outcome in outcomes.items()])
def test_measured_differences_fail_on_the_right_stack(runners, linux, case_id, stack, outcome):
    runner = linux if stack == "linux" else runners(stack)
    verdict = runner.run(case(case_id), "ipv4")
    assert verdict.outcome == outcome, verdict_text(verdict)
    if (case_id, stack) in WHY:
        assert WHY[case_id, stack] in verdict.actual, verdict_text(verdict)


ABORT = """\
id: t.abort
title: the application aborts an established connection
requirements: [RFC9293-MUST-13]
target: {role: listener, start: ESTABLISHED}
steps:
  - app:    abort
  - expect: {flags: RST+(ACK), seq: rcv_nxt}
  - state:  CLOSED
"""


@pytest.mark.parametrize("stack", ("linux", *STACKS))
def test_abort_resets_the_connection(runners, linux, tmp_path, stack):
    """No case of cases/ aborts (the engine's cleanup does, unseen): each stack's
    agent sends the RST of RFC 9293 3.10.5 ABORT at SND.NXT and, where its
    states show it, keeps no connection block."""
    runner = linux if stack == "linux" else runners(stack)
    path = tmp_path / "abort.yaml"
    path.write_text(ABORT)
    (abort,) = load_case_file(path)
    for family in ("ipv4", "ipv6"):
        verdict = runner.run(abort, family)
        assert verdict.outcome == PASS, verdict_text(verdict)
        # gVisor shows no socket the application let go of.
        assert verdict.unobserved == (["state CLOSED (line 8)"] if stack == "gvisor" else [])


def test_netstack_alone_answers_for_the_target(runners):
    """runsc gives the target's addresses to netstack and takes them off the host
    side of target0, so the host kernel answers nothing for them (its answers
    would be blamed on netstack); netstack got the lab's permanent entries for
    the tester, so it needs no ARP or neighbour discovery (GvisorLab has no
    responder)."""
    runner = runners("gvisor")
    target = runner.target
    host = subprocess.run(["ip", "-n", target.lab.target_ns, "-br", "addr", "show", "target0"],
                          capture_output=True, text=True, check=True).stdout
    assert TARGET_IP not in host and TARGET_IP6 not in host, host
    assert sorted(ip for _, ip, _ in target.sandbox.neighbours) == [TESTER_IP, TESTER_IP6]
    for link in target.links.values():
        ident = random.randrange(1, 65535)
        runner.wire.watch_icmp(link)
        runner.wire.send(echo_request(link, ident))
        deadline, replies = time.time() + 0.3, 0
        while (frame := runner.wire.receive(deadline)) is not None:
            replies += is_echo_reply(frame, ident)
        assert replies == 1, f"{replies} echo replies over {link.family}"


# -- what a stack cannot show, and a stack that dies --------------------------------

STATE_ONLY = """\
id: t.state-only
title: only a state check on an embryonic connection
requirements: [RFC9293-MUST-13]
families: [ipv4]
target: {role: listener, start: LISTEN}
steps:
  - send:   {flags: SYN, seq: 0, mss: 1460}
  - state:  SYN-RECEIVED
---
id: t.wire-and-state
title: a SYN-ACK on the wire, and a state gVisor cannot show
requirements: [RFC9293-MUST-13]
families: [ipv4]
target: {role: listener, start: LISTEN}
steps:
  - send:   {flags: SYN, seq: 0, mss: 1460}
  - expect: {flags: SYN+ACK, ack: 1}
  - state:  SYN-RECEIVED
---
id: t.alternatives-by-state
title: two conforming alternatives that only the state tells apart
requirements: [RFC9293-MUST-13]
families: [ipv4]
target: {role: listener, start: ESTABLISHED}
steps:
  - app:    close
  - expect: {flags: FIN+ACK}
  - one_of:
      - label: A
        requirement: RFC9293-MUST-13
        steps: [{silence: 100ms}, {state: FIN-WAIT-1}]
      - label: B
        requirement: RFC9293-MUST-13
        steps: [{silence: 100ms}, {state: CLOSING}]
"""


def test_unobservable_states_are_not_decided(runners, tmp_path):
    """gVisor shows only the sockets the application holds: a check of an
    embryonic connection's state is reported as not observable.  A case with
    nothing else to check is an error; one with wire checks passes on them and
    says what it could not see."""
    path = tmp_path / "cases.yaml"
    path.write_text(STATE_ONLY)
    state_only, wire_and_state, by_state = load_case_file(path)
    runner = runners("gvisor")
    verdict = runner.run(state_only, "ipv4")
    assert verdict.outcome == ERROR, verdict_text(verdict)
    assert "nothing this case checks can be observed on gvisor" in verdict.reason
    verdict = runner.run(wire_and_state, "ipv4")
    assert verdict.outcome == PASS, verdict_text(verdict)
    assert verdict.unobserved == ["state SYN-RECEIVED (line 18)"]
    assert any(e.kind == "state" and e.expected == "SYN-RECEIVED" and e.observed is None
               for e in verdict.ladder)
    # Alternatives the wire cannot tell apart: the verdict stands on the wire,
    # but which one the target followed is not claimed.
    verdict = runner.run(by_state, "ipv4")
    assert verdict.outcome == PASS, verdict_text(verdict)
    assert verdict.alternative == "A or B (the state that tells them apart is not observable)"


def test_a_sandbox_crash_is_the_targets_failure_and_the_next_case_runs(runners):
    """gVisor 2022's netstack panics on the crossed SYN-ACKs of a simultaneous
    open: a finding about gVisor, failed at the level of the case's
    requirement with the panic quoted (its baseline lists it), and the
    sandbox is restarted for the next case."""
    runner = runners("gvisor")
    verdict = runner.run(case("client.simultaneous-open-crossed-synacks"), "ipv4")
    assert verdict.outcome == FAIL, verdict_text(verdict)
    assert verdict.requirement.id == "RFC9293-MUST-10"
    assert verdict.actual.startswith("the target gvisor died during this case: panic:")
    assert runner.target.alive()
    verdict = runner.run(case("handshake.passive-open"), "ipv4")
    assert verdict.outcome == PASS, verdict_text(verdict)


def test_a_dead_agent_is_an_error_and_the_next_case_runs(runners):
    """lwIP runs in its agent's process: when that process dies mid-case (killed
    here, by the PID the suite started it with), the verdict is an error and a
    new lwIP is started on the same tap."""
    runner = runners("lwip")

    def kill_agent(_run):
        os.kill(runner.target.agent.pid, 9)

    runner.engine.after_setup = kill_agent
    try:
        verdict = runner.run(case("fin.without-ack"), "ipv4")
    finally:
        runner.engine.after_setup = None
    assert verdict.outcome == ERROR, verdict_text(verdict)
    assert "the target lwip died during this case" in verdict.reason
    verdict = runner.run(case("handshake.passive-open"), "ipv4")
    assert verdict.outcome == PASS, verdict_text(verdict)


def test_linux_settings_are_not_applicable_elsewhere(runners):
    """A case written for a Linux setting (tcp_rfc1337) is not run on lwIP, and says why."""
    verdict = runners("lwip").run(case("time-wait.rst-rfc1337-on"), "ipv4")
    assert verdict.outcome == NOT_APPLICABLE
    assert "net.ipv4.tcp_rfc1337=1" in verdict.reason


# -- starting and stopping ----------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_stop_leaves_no_namespace_tap_sandbox_or_process(stack):
    runner = Runner.for_target(stack)
    runner.start()
    assert not runner.failure, runner.failure
    target = runner.target
    namespaces = {target.lab.tester_ns, target.lab.target_ns}
    processes = [target.agent.pid, *descendants(target.agent.pid)]
    sandbox_dir = getattr(getattr(target, "sandbox", None), "tmpdir", None)
    links = subprocess.run(["ip", "-n", target.lab.target_ns, "-o", "link"],
                           capture_output=True, text=True).stdout
    if stack != "gvisor":
        assert f"{target.tap}:" in links and "br0:" in links
    runner.stop()
    assert not namespaces & set(list_namespaces())
    assert not [pid for pid in processes if pid_alive(pid)]
    if sandbox_dir is not None:
        assert not Path(sandbox_dir).exists()
    # The tap and the bridge lived in the target namespace only.
    root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {getattr(target, 'tap', 'lwip0')}:" not in root_links


CANNOT_START = """\
from conformance.targets import TARGETS
from conformance.targets.gvisor import GvisorLab


class GvisorWithoutRunsc(GvisorLab):
    name = "gvisor-no-runsc"

    def __init__(self, sysctls=None, tag=None):
        super().__init__(sysctls, tag)
        self.sandbox.runsc = "/nonexistent/runsc"


TARGETS["gvisor-no-runsc"] = GvisorWithoutRunsc
"""


def test_a_stack_that_cannot_start_is_an_error_with_the_reason(tmp_path):
    """Every case of a stack that does not start is an ERROR naming why, never a
    skip; the other stacks of the sweep run as usual."""
    root = tmp_path / "cases"
    root.mkdir()
    (root / "conftest.py").write_text(CANNOT_START)
    (root / "passive-open.yaml").write_text(
        (REPO / "cases" / "handshake" / "passive-open.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "-q", "-rA", "--family", "ipv4", "--target", "linux,gvisor-no-runsc", str(root)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 3, out     # the tool could not decide everything
    assert "PASSED cases/passive-open.yaml::handshake.passive-open[linux-ipv4]" in out, out
    assert "ERROR cases/passive-open.yaml::handshake.passive-open[gvisor-no-runsc-ipv4]" in out
    assert "the target gvisor-no-runsc could not be started" in out
    assert "runsc is not installed: apt-get install runsc" in out
    assert "skipped" not in closing_count(out)
    assert "gvisor-no-runsc  UNDECIDED: 2 could not be decided" in out, out


def test_every_stack_is_offered_by_name():
    assert set(STACKS) | {"linux"} <= set(TARGETS)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--collect-only", "-q", "--target", "linux,lwip,gvisor,pytcp",
                             "cases/fin"], cwd=REPO, capture_output=True, text=True)
    for stack in ("linux", "lwip", "gvisor", "pytcp"):
        assert f"fin.without-ack[{stack}-ipv6]" in result.stdout, result.stdout


def test_lwip_agent_builds_from_the_checkout():
    """The suite builds lwip-agent itself (./run and the target's start both do)."""
    build_agent()
    assert AGENT.exists() and os.access(AGENT, os.X_OK)
