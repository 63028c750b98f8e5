"""Every case can fail: against a deliberately altered target, the right step
fails with the right message.  A case that passes against every stack proves
nothing; these alterations stand in for stacks that break each requirement
(nftables rules in the target namespace, the link's MTU, or a target setting).

The alterations live in tests/breaks/*.yaml (the format is described at the
top of tests/breaks/seed.yaml); every written case must have one, except the
cases Linux itself fails (listed in the Linux baseline): they have been seen
failing already.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from conformance.baseline import load_baseline
from conformance.verdict import FAIL, PASS

from .conftest import REPO, all_cases, line_of

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

CASES = all_cases()
BASELINE = load_baseline(REPO / "baselines" / "linux.yaml")
BREAKS = {}
for _path in sorted(Path(__file__).with_name("breaks").glob("*.yaml")):
    for _case_id, _entry in (yaml.safe_load(_path.read_text()) or {}).items():
        assert _case_id not in BREAKS, f"{_case_id} has two breaks ({_path.name})"
        BREAKS[_case_id] = _entry

RUNS = [(case_id, family) for case_id in sorted(CASES) for family in CASES[case_id].families]


def alter(linux, case, alterations):
    """Apply the alterations; returns the case to run.  A setting the case makes
    itself is overridden in a copy of the case, or the case would undo it."""
    for alteration in alterations:
        (kind, value), = alteration.items()
        if kind == "mtu":
            linux.target.alter_mtu(int(value))
        elif kind == "sysctl":
            key, setting = value.split("=", 1)
            linux.target.alter_sysctl(key, setting)
            if key in case.sysctls:
                case = dataclasses.replace(case, sysctls={**case.sysctls, key: setting})
        else:
            linux.target.add_nft_rule(kind, value)
    return case


def _deviates(case_id: str) -> bool:
    return all(BASELINE.lookup(case_id, family) for family in CASES[case_id].families)


def test_every_case_has_a_break():
    """Each case Linux passes is listed in tests/breaks/ with an alteration that breaks it."""
    assert sorted(c for c in CASES if not _deviates(c)) == sorted(BREAKS)


@pytest.mark.parametrize("case_id,family", [r for r in RUNS if r[0] in BREAKS])
def test_case_fails_against_altered_target(linux, case_id, family):
    """The altered target fails the case at the right step, with the right actual."""
    entry, case = BREAKS[case_id], CASES[case_id]
    verdict = linux.run(alter(linux, case, entry["alter"]), family)
    assert verdict.outcome == FAIL, verdict.explain()
    assert verdict.line == line_of(case, entry["fails_at"]), verdict.explain()
    assert entry["actual"] in verdict.actual, verdict.explain()


@pytest.mark.parametrize("case_id,family", RUNS)
def test_case_passes_against_linux(linux, case_id, family):
    """Unaltered, the Linux stack passes every case its baseline does not list, and
    fails every case it lists."""
    verdict = linux.run(CASES[case_id], family)
    expected = FAIL if BASELINE.lookup(case_id, family) else PASS
    assert verdict.outcome == expected, verdict.explain()


def test_a_case_run_again_meets_the_alterations_afresh(linux):
    """A quota rule lets the first FIN through and drops the next.  When the
    first run is unsound (here the witness is made to report a lost frame)
    and the case runs again, the rerun meets the rule as the first run did,
    not its used-up quota (Target.before_rerun), and fails at the same step."""
    from conformance.witness import LOST, TO_TARGET, Damage
    case_id = "close.last-ack-retransmits-fin"
    entry, case = BREAKS[case_id], CASES[case_id]
    witness = linux.engine.witness
    real, told = witness.damage, []

    def lost_once(*args):
        if not told:
            told.append(True)
            return [Damage(LOST, TO_TARGET, "FIN+ACK", 0.0, "made up by the test")]
        return real(*args)
    witness.damage = lost_once
    try:
        verdict = linux.run(alter(linux, case, entry["alter"]), "ipv6")
    finally:
        witness.damage = real
    assert told and verdict.retries == 1, verdict.explain()
    assert verdict.outcome == FAIL, verdict.explain()
    assert verdict.line == line_of(case, entry["fails_at"]), verdict.explain()
