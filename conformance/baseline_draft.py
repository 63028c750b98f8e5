"""A baseline drafted from a sweep: every deviation of one target, grouped
by the requirement it deviates from, each with its reason to fill in.

    tcpconf baseline draft reports/results.json --target linux > baselines/linux.yaml

A deviation the sweep already knew (its baseline's entry) keeps that reason;
a new one gets ``FILL IN: ...`` with what the target did, which the loader
refuses (baseline.py) until an engineer writes what the target does and why:
a draft cannot pass for a reviewed baseline.  A case that deviates over both
address families is listed once; over one, with its family.
"""

from __future__ import annotations

from collections import defaultdict

import yaml

PLACEHOLDER = "FILL IN"
DEVIATING = ("fail", "warn", "info", "known")


def draft(records: list[dict], target: str) -> str:
    """The baseline file's text for `target` from results.json's records."""
    ours = [r for r in records if r["target"] == target and r["status"] in DEVIATING]
    by_requirement: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    reasons: dict[str, str] = {}
    for record in ours:
        by_requirement[record["requirement"]][record["case"]].add(record["family"])
        known = (record.get("baseline") or {}).get("reason")
        if known:
            reasons.setdefault(record["requirement"], known.strip())
        else:
            reasons.setdefault(record["requirement"],
                               f"{PLACEHOLDER}: what {target} does instead, and why (seen: "
                               f"{record['actual'] or record['reason']})")
    families = {r["family"] for r in records if r["target"] == target}
    deviations = []
    for requirement in sorted(by_requirement):
        cases = []
        for case, seen in sorted(by_requirement[requirement].items()):
            if seen >= families:
                cases.append(case)
            else:
                cases += [f"{case}[{family}]" for family in sorted(seen)]
        deviations.append({"requirement": requirement, "reason": reasons[requirement],
                           "cases": cases})
    header = (f"# Known deviations of {target}, drafted from a sweep by tcpconf baseline "
              f"draft.\n# Every reason that says {PLACEHOLDER} must be written before the "
              f"file loads: what the\n# target does instead of the requirement, and why.\n")
    body = yaml.safe_dump({"target": target, "version": "FILL IN: the target's version",
                           "deviations": deviations}, sort_keys=False, width=90,
                          allow_unicode=True)
    return header + body
