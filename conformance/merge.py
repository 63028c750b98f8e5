"""One matrix from several sweeps: the shards of one sweep run on several CI
jobs, or sweeps of several devices.

    tcpconf report a/results.json b/results.json -o merged

Records are matched by case, target and address family.  One found in two
inputs with the same status is the same result (shards that overlap); with
different statuses it is a conflict, an error naming both files, unless the
user says which to keep (--on-conflict first or last).  Two devices swept
under the same target name (two `remote` runs, say) are told apart by their
--dut-name: each becomes a column of its own, `remote@<device name>`, and
its case pages say how to rerun it (as `--target remote`).

The merged run keeps every input's run (its device, suite, commit, digest
and selection) in run["inputs"], and each record says which input it came
from (record["input"]), so the report shows both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .results import Results
from .selection import cases_digest

CONFLICT_CHOICES = ("error", "first", "last")


class MergeError(Exception):
    """Inputs that cannot be merged as asked: the message names the files."""


def merge(inputs: list[tuple[str, Results]], on_conflict: str = "error") -> Results:
    """The inputs, each (name shown, results), as one Results."""
    if on_conflict not in CONFLICT_CHOICES:
        raise ValueError(f"on_conflict: one of {', '.join(CONFLICT_CHOICES)}")
    names = _column_names(inputs)
    records: dict[tuple, dict] = {}
    origin: dict[tuple, str] = {}
    cases: dict[str, dict] = {}
    unreadable: list[dict] = []
    for index, (name, results) in enumerate(inputs):
        base = results.path.parent if results.path else Path.cwd()
        for case, info in results.cases.items():
            cases.setdefault(case, info)
        for original in results.records:
            rec = dict(original, input=index)
            for key in ("pcap", "pcap_inside"):
                if rec.get(key) and not os.path.isabs(rec[key]):
                    rec[key] = os.path.abspath(base / rec[key])
            if not rec["target"]:
                unreadable.append(rec)
                continue
            column = names[(index, rec["target"])]
            if column != rec["target"]:
                rec["swept_as"], rec["target"] = rec["target"], column
            key = (rec["case"], rec["target"], rec["family"])
            held = records.get(key)
            if held is not None and held["status"] != rec["status"]:
                if on_conflict == "error":
                    raise MergeError(
                        f"{origin[key]} and {name} both hold {rec['case']} [{rec['family']}] "
                        f"on {rec['target']}, as {held['status']} and {rec['status']}: "
                        f"say which to keep (--on-conflict first or last), or, for two "
                        f"devices swept under one target name, give each its --dut-name")
                if on_conflict == "first":
                    continue
            elif held is not None:
                continue        # the same result twice (overlapping shards): the first stays
            records[key] = rec
            origin[key] = name
    run = _merged_run(inputs, names)
    return Results(run=run, cases=cases, records=unreadable + list(records.values()))


def _column_names(inputs: list[tuple[str, Results]]) -> dict[tuple[int, str], str]:
    """Each input's target as a column: its own name, unless inputs of several
    devices (by --dut-name) swept under it; then name@device."""
    devices: dict[str, set] = {}
    for _name, results in inputs:
        dut = (results.run.get("dut") or {}).get("name", "")
        for target in results.targets:
            devices.setdefault(target, set()).add(dut)
    names = {}
    for index, (_name, results) in enumerate(inputs):
        dut = (results.run.get("dut") or {}).get("name", "")
        for target in results.targets:
            names[(index, target)] = (f"{target}@{dut}" if len(devices[target]) > 1 and dut
                                      else target)
    return names


def _merged_run(inputs: list[tuple[str, Results]], names: dict) -> dict:
    runs = [results.run for _name, results in inputs]
    families: list[str] = []
    for run in runs:
        families += [f for f in run.get("families", []) if f not in families]
    targets, baselines = {}, {}
    for index, (_name, results) in enumerate(inputs):
        for target in results.targets:
            column = names[(index, target)]
            targets.setdefault(column, (results.run.get("targets") or {}).get(target, {}))
            if target in (results.run.get("baselines") or {}):
                baselines.setdefault(column, results.run["baselines"][target])
    duts = [run.get("dut") or {} for run in runs]
    versions = list(dict.fromkeys(run.get("version", "") for run in runs))
    case_files: dict[str, str] = {}
    for run in runs:
        case_files.update(run.get("case_files") or {})
    merged = {"suite": "tcp-conformance", "version": ", ".join(v for v in versions if v),
              "started": min((run.get("started", "") for run in runs), default=""),
              "duration": round(sum(run.get("duration", 0) for run in runs), 3),
              "targets": targets, "families": families, "baselines": baselines,
              "strict": any(run.get("strict") for run in runs),
              "dut": duts[0] if all(d == duts[0] for d in duts) else {},
              "interrupted": any(run.get("interrupted") for run in runs),
              "inputs": [{"path": name, "targets": [names[(i, t)] for t in results.targets],
                          "run": results.run}
                         for i, (name, results) in enumerate(inputs)]}
    if case_files:
        merged["case_files"] = case_files
        merged["cases_digest"] = cases_digest(case_files)
    commits = list(dict.fromkeys(run["commit"]["commit"] for run in runs if run.get("commit")))
    if len(commits) == 1 and all(run.get("commit") for run in runs):
        merged["commit"] = {"commit": commits[0],
                            "dirty": any(run["commit"].get("dirty") for run in runs)}
    return merged


def copy_captures(results: Results, directory: Path) -> None:
    """Copy each record's captures into directory/pcap/<input number>/, so the
    merged report is handed over whole; a capture no longer there stays unlinked."""
    import shutil
    for rec in results.records:
        for key in ("pcap", "pcap_inside"):
            source = rec.get(key)
            if not source or not os.path.isabs(source) or not os.path.exists(source):
                continue
            folder = re.sub(r"[^A-Za-z0-9._@+-]", "_", rec["target"] or "unread")
            dest = (Path(directory) / "pcap" / str(rec.get("input", 0) + 1) / folder
                    / Path(source).name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
            rec[key] = str(dest.resolve())
