"""tcpconf baseline draft: a sweep's deviations as a baseline to review
(conformance/baseline_draft.py), which does not load until reviewed."""

from __future__ import annotations

import pytest
import yaml

from conformance.baseline import BaselineError, load_baseline
from conformance.baseline_draft import draft


def record(case, family, status, requirement="RFC9293-MUST-13", actual="no segment", known=None):
    return {"target": "linux", "case": case, "family": family, "status": status,
            "requirement": requirement, "actual": actual, "reason": "",
            "baseline": {"where": "b.yaml:3", "reason": known} if known else None}


RECORDS = [
    record("a.both", "ipv4", "fail"), record("a.both", "ipv6", "warn"),
    record("b.one", "ipv4", "pass"), record("b.one", "ipv6", "fail"),
    record("c.known", "ipv4", "known", "RFC9293-MUST-14", known="Linux does this, on purpose."),
    record("c.known", "ipv6", "known", "RFC9293-MUST-14", known="Linux does this, on purpose."),
    record("d.other", "ipv4", "fail") | {"target": "lwip"},
]


def test_a_draft_lists_each_deviation_under_its_requirement():
    data = yaml.safe_load(draft(RECORDS, "linux"))
    assert data["target"] == "linux"
    by = {d["requirement"]: d for d in data["deviations"]}
    assert by["RFC9293-MUST-13"]["cases"] == ["a.both", "b.one[ipv6]"]
    assert by["RFC9293-MUST-13"]["reason"].startswith("FILL IN: what linux does instead")
    assert "(seen: no segment)" in by["RFC9293-MUST-13"]["reason"]
    # A reason the sweep's baseline gave is kept.
    assert by["RFC9293-MUST-14"] == {"requirement": "RFC9293-MUST-14", "cases": ["c.known"],
                                     "reason": "Linux does this, on purpose."}


def test_a_draft_does_not_load_until_its_reasons_are_written(tmp_path):
    path = tmp_path / "linux.yaml"
    path.write_text(draft(RECORDS, "linux"))
    with pytest.raises(BaselineError, match=r"linux.yaml:\d+: deviations\[0\]\.reason: a "
                                            r"drafted reason \(FILL IN\)"):
        load_baseline(path)
    text = path.read_text()
    reviewed = tmp_path / "reviewed.yaml"
    reviewed.write_text(text.replace("'FILL IN: what linux does instead", "'It answers late")
                        .replace("FILL IN: the target''s version", "6.18"))
    assert load_baseline(reviewed).lookup("b.one", "ipv6") is not None
