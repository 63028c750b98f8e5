"""Fences on the real stacks (conformance/fence.py): where fence.IN_ORDER
says a stack answers in order, or fence.QUIET_VIEW that its agent shows
what a connection has left to send, an audit of the grid finds no answer
that came after a fence's reply; fences change no verdict; and the target's
namespace has a TCP hash table of its own, so reading its states does not
walk the host's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import fence
from conformance.compare import compare
from conformance.lab import CHILD_EHASH, Lab, run
from conformance.results import load_results

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[1]


def sweep(tmp_path: Path, name: str, *args: str):
    report = tmp_path / name
    subprocess.run([sys.executable, "-m", "pytest", "-p", "conformance.plugin", "cases/grid",
                    "--family=ipv4", f"--report={report}", "-n", "2", "-q",
                    "-p", "no:cacheprovider", *args],
                   capture_output=True, text=True, cwd=REPO, timeout=900)
    return load_results(report / "latest" / "results.json")


@pytest.mark.parametrize("stack", [s for s, in_order in fence.IN_ORDER.items() if in_order]
                         + list(fence.QUIET_VIEW))
def test_no_answer_overtakes_a_fence_where_the_stack_is_said_to_answer_in_order(tmp_path, stack):
    """Or, on a QUIET_VIEW stack, where its agent says a connection stays
    quiet to the window's end: there CLOSING and LAST-ACK too, whose FIN
    waits for its ACK on a retransmission timer."""
    skipped = "FIN-WAIT-2" if stack in fence.QUIET_VIEW else "FIN-WAIT-2 or CLOSING or LAST-ACK"
    results = sweep(tmp_path, stack, f"--target={stack}", "--fences=audit", "-k",
                    f"not ({skipped})")
    audits = [a for r in results.records for a in r["fence_audit"]]
    assert len(audits) > 20, "the audit sent too few fences to say anything"
    late = [(r["case"], a) for r in results.records for a in r["fence_audit"] if a["overtaken"]]
    assert late == []


def test_fences_change_no_verdict_and_cut_the_unanswered_time(tmp_path):
    # RSTs: segments that occupy no sequence space, where fences apply.
    select = ("-k", "rst and (ESTABLISHED or FIN-WAIT-1 or CLOSE-WAIT or LAST-ACK)")
    off = sweep(tmp_path, "off", "--target=linux", "--fences=off", *select)
    on = sweep(tmp_path, "on", "--target=linux", "--fences=on", *select)
    changes = compare(off, on)
    assert [getattr(changes, name) for name, _title in changes.SECTIONS] == \
        [[]] * len(changes.SECTIONS), "\n".join(changes.text("off", "on"))
    fenced = sum(len(r["fenced"]) for r in on.records)
    assert fenced > 15
    waited = {name: sum(r["unanswered"] for r in results.records)
              for name, results in (("off", off), ("on", on))}
    assert waited["on"] < 0.5 * waited["off"], json.dumps(waited)


def test_the_target_namespace_has_a_small_tcp_hash_table_of_its_own():
    the_lab = Lab(tag="eh")
    try:
        the_lab.build()
        shown = run("ip", "netns", "exec", the_lab.target_ns, "sysctl", "-n",
                    "net.ipv4.tcp_ehash_entries").strip()
    finally:
        the_lab.destroy()
    # A negative size is the host's table, shared (Documentation/networking/ip-sysctl).
    assert int(shown) == int(CHILD_EHASH[1])
