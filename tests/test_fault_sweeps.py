"""Faults on the lab's link give no false verdict (issue 15): a part of the
catalogue swept over a clean link and over one that loses, duplicates,
corrupts and reorders frames must agree, verdict for verdict, except where the
witness at the target's end saw the damage in every run, which is an error
that says so.  The whole catalogue under each fault alone is measured for the
closing notes (benchmarks/faults.py), not here: it takes minutes."""

from __future__ import annotations

import shutil

import pytest

from conformance.compare import compare
from conformance.results import load_results

from .conftest import CASES, sweep

pytestmark = pytest.mark.lab

# Files whose cases hinge on single segments and on silences, where a lost,
# doubled or altered frame is most easily mistaken for the target's doing.
SAMPLE = ["rst/rst-in-window.yaml", "fin/fin-without-ack.yaml", "handshake/passive-open.yaml",
          "acceptability/beyond-window.yaml", "acceptability/duplicate-data.yaml"]
# Rates far above the (2 % loss) so that a short sample meets each fault.
FAULTS = "loss=5%,dup=5%,corrupt=3%,reorder=5%,delay=5ms"


def test_faults_on_the_link_change_no_verdict(tmp_path):
    cases = tmp_path / "cases"
    for name in SAMPLE:
        (cases / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CASES / name, cases / name)
    common = ("--baseline", "baselines", "-n", "2", "--link-retries", "5")
    clean = sweep(cases, tmp_path / "clean", *common)
    faulty = sweep(cases, tmp_path / "faulty", "--link-faults", FAULTS, *common)
    assert clean.returncode == 0, clean.stdout[-3000:]
    # 3: some checks could not be decided (the link damaged every run): errors.
    assert faulty.returncode in (0, 3), faulty.stdout[-3000:]
    old = load_results(tmp_path / "clean" / "latest" / "results.json")
    new = load_results(tmp_path / "faulty" / "latest" / "results.json")
    found = compare(old, new)
    false = (found.new_failures + found.new_deviations + found.fixed
             + found.changed_alternatives + found.other_changes + found.added + found.removed)
    assert not false, "\n".join(change.line() for change in false)
    for change in found.new_errors:
        assert "the link damaged" in change.new["reason"], change.line()
    # The faults were there, and the witness saw them.
    assert sum(r["retries"] for r in new.records) > 0
