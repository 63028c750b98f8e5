"""Every setup in conformance/setups.yaml reaches the state it is named after,
against Linux: a case may start from any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.case import load_setups
from conformance.casefile import load_case_file
from conformance.verdict import PASS

pytestmark = pytest.mark.lab  # every test here builds a lab or runs a sweep

SETUPS = sorted(load_setups())


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("role,name", SETUPS, ids=[f"{r}-{n}" for r, n in SETUPS])
def test_setup_reaches_its_state(linux, role, name, family):
    """A case starting at the setup finds the target in that state."""
    text = (f"id: setup-{name}\ntitle: t\nrequirements: [RFC9293-MUST-13]\n"
            f"target: {{role: {role}, start: {name}}}\nsteps:\n  - state: {name}\n")
    (case,) = load_case_file(Path(f"setup-{name}.yaml"), text)
    verdict = linux.run(case, family)
    assert verdict.outcome == PASS, verdict.explain()
