"""``tcpconf explore``: sequences nobody wrote, run on real stacks and judged
by the reference model.

    tcpconf explore --target linux,lwip --count 2000 --seed 7 --baseline baselines

1. Draw COUNT sequences (.sequence) the model can meet, and write each as a
   case file with the model's expectations (.expand).
2. Sweep them on every target at once: the ordinary sweep (pytest and the
   suite's plugin), its records, its report.
3. Read each record against its sequence (.findings): a deviation is a
   finding at the event whose step decided it; the path each target took
   is its coverage of the model; the targets side by side, where they
   disagree.
4. Shrink one sequence per distinct finding (.shrink), by sweeping shorter
   candidates in rounds, and write each as a case file (findings/).
5. Sweep the findings' case files on their own: a finding stands only if it
   reproduces there, and that sweep's report is the exploration's report.

Everything goes in a run directory, reports/explore/<UTC timestamp>/
(reports/explore/latest points at the last).  Exit status as a sweep's: 0
no new deviation from a MUST (new SHOULD and MAY findings are reported, as
a sweep warns and informs), 1 a new deviation from a MUST, 2 interrupted,
3 the tool could not run or decide, 4 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import yaml

from ..baseline import BaselineError, load_baseline, resolve
from ..casefile import load_case_file
from ..cli import UNUSED_PLUGINS
from ..results import ResultsError, load_results
from ..rundir import make_run_dir, point_latest
from ..summary import COULD_NOT_RUN, INTERRUPTED, NON_CONFORMANT, USAGE
from .expand import Expansion, expand
from .findings import (NEW, Coverage, Finding, disagreements, label_known, read_record,
                       signature, write_finding_case)
from .sequence import Sequence, sequences
from .shrink import candidates

REPORTS = Path("reports") / "explore"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tcpconf explore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="linux",
                   help="the stacks to explore, comma-separated: with more than one, the same "
                        "sequences run on each and where they disagree is reported "
                        "(default: linux)")
    p.add_argument("--count", type=int, default=200, help="sequences to draw (default 200)")
    p.add_argument("--seed", type=int, help="the generator's seed (default: a random one, "
                                            "printed, to run the same sequences again)")
    p.add_argument("--baseline", metavar="DIR", help="the targets' baselines (a folder of "
                                                     "<target>.yaml): listed deviations are "
                                                     "findings labelled known, not new")
    p.add_argument("--family", choices=("ipv4", "ipv6"), default="ipv4",
                   help="the address family to run over (default ipv4)")
    p.add_argument("-n", "--workers", default="4", help="pytest-xdist workers (default 4)")
    p.add_argument("--no-shrink", action="store_true", help="write the findings as found")
    p.add_argument("--report", type=Path, default=REPORTS,
                   help=f"where the run directory goes (default {REPORTS})")
    return p


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return USAGE if exc.code else 0
    targets = [t for t in args.target.split(",") if t]
    if args.count < 1 or not targets:
        print("tcpconf explore: --count must be at least 1, and --target name a stack",
              file=sys.stderr)
        return USAGE
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    baselines = {}
    if args.baseline:
        for target in targets:
            path = resolve(args.baseline, target)
            if path.exists():
                try:
                    baselines[target] = load_baseline(path)
                except BaselineError as exc:
                    print(f"tcpconf explore: {exc}", file=sys.stderr)
                    return USAGE
    run_dir = make_run_dir(args.report)
    point_latest(run_dir)
    explorer = Explorer(run_dir, targets, args.family, args.workers, baselines)
    try:
        return explorer.explore(seed, args.count, shrink=not args.no_shrink)
    except KeyboardInterrupt:
        print("\ntcpconf explore: interrupted", file=sys.stderr)
        return INTERRUPTED
    except SweepFailed as exc:
        print(f"tcpconf explore: {exc}", file=sys.stderr)
        return COULD_NOT_RUN


class SweepFailed(Exception):
    """A sweep that wrote no results: the message says where its log is."""


class Explorer:
    def __init__(self, run_dir: Path, targets: list[str], family: str, workers: str,
                 baselines: dict):
        self.run_dir, self.targets, self.family = run_dir, targets, family
        self.workers, self.baselines = workers, baselines
        self.sweeps = 0
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    # -- the steps ---------------------------------------------------------------

    def explore(self, seed: int, count: int, shrink: bool) -> int:
        drawn = draw(seed, count)
        folder = self.run_dir / "sequences"
        expansions = write_cases(folder, drawn)
        self.say(f"seed {seed}: {count} sequences of {sum(len(s.events) for s in drawn)} "
                 f"events, as cases in {folder}")
        began = time.monotonic()
        records = self.sweep(folder, self.targets, "sequences")
        wall = time.monotonic() - began
        walks = read_all(records, folder, expansions)
        coverage = {t: Coverage() for t in self.targets}
        errors: dict[str, Counter] = {t: Counter() for t in self.targets}
        found: list[Finding] = []
        signatures: dict[str, dict] = {}
        for record, walk in walks:
            target = record["target"]
            coverage[target].add(walk.visited)
            signatures.setdefault(record["case"], {})[target] = signature(record)
            if walk.error:
                errors[target][walk.error] += 1
            if walk.finding is not None:
                found.append(label_known(walk.finding, self.baselines.get(target)))
        self.say(f"swept {count} sequences on {', '.join(self.targets)} in {wall:.1f} s: "
                 f"{len(found)} deviating records")
        distinct = representatives(found)
        by_key = {f.key: (f, expansions[f.sequence].sequence) for f in distinct}
        if shrink and by_key:
            by_key = self.shrink(by_key)
        written = self.write_findings(by_key)
        reproduced = self.verify(written) if written else {}
        summary = self.summarise(seed, count, wall, found, written, reproduced, coverage,
                                 errors, disagreements(signatures))
        return self.finish(summary)

    def sweep(self, folder: Path, targets: list[str], name: str) -> list[dict]:
        """The cases of `folder` swept on `targets`: their records."""
        return self.sweep_apart([(folder, targets, name)])

    def sweep_apart(self, jobs: list[tuple[Path, list[str], str]]) -> list[dict]:
        """Several sweeps (folder, targets, name) at once, the workers shared
        among them (at least two each): the records of all."""
        workers = str(max(2, int(self.workers) // len(jobs)))
        running = []
        for folder, targets, name in jobs:
            self.sweeps += 1
            report = self.run_dir / "sweeps" / name
            log = self.run_dir / "sweeps" / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "pytest", "-p", "conformance.plugin",
                       *UNUSED_PLUGINS, str(folder),
                       f"--cases={folder}", f"--target={','.join(targets)}",
                       f"--family={self.family}", f"--report={report}", "-n", workers,
                       "-p", "no:cacheprovider", "-q"]
            out = open(log, "w", encoding="utf-8")
            running.append((subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                             env=dict(os.environ, PYTHONUNBUFFERED="1")),
                            out, folder, report, log))
        records = []
        for process, out, folder, report, log in running:
            status = process.wait()
            out.close()
            if status == INTERRUPTED:
                raise KeyboardInterrupt
            try:
                records += load_results(report / "latest" / "results.json").records
            except ResultsError as exc:
                raise SweepFailed(f"the sweep of {folder} wrote no results ({exc}); its "
                                  f"output is in {log}") from None
        return records

    def shrink(self, by_key: dict) -> dict:
        """Shorter sequences that still make each finding, in rounds: the
        candidates of a round swept at once, each on its finding's target."""
        active = set(by_key)
        for round_ in range(1, 1 + max(len(seq.events) for _f, seq in by_key.values())):
            trials: dict[tuple, list[Sequence]] = {}
            for key in sorted(active):
                finding, seq = by_key[key]
                trials[key] = [c for c in candidates(seq, finding, f"r{round_}")
                               if expand(c).root is not None]
            trials = {k: v for k, v in trials.items() if v}
            if not trials:
                break
            # Each target's candidates on that target alone, the targets at once.
            tried: dict[str, list[Sequence]] = {}
            for key, tries in trials.items():
                tried.setdefault(key[0], []).extend(tries)
            here = self.run_dir / "shrink" / f"round-{round_}"
            expansions = {t: write_cases(here / t, runs) for t, runs in tried.items()}
            self.say(f"shrinking, round {round_}: {sum(map(len, tried.values()))} shorter "
                     f"sequences for {len(trials)} findings")
            records = self.sweep_apart([(here / t, [t], f"shrink-{round_}-{t}") for t in tried])
            got = {}
            for target in tried:
                mine = [r for r in records if r["target"] == target]
                got.update({(r["case"], target): w
                            for r, w in read_all(mine, here / target, expansions[target])})
            active = set()
            for key, tries in trials.items():
                for candidate in tries:
                    walk = got.get((candidate.id, key[0]))
                    if walk is not None and walk.finding is not None \
                            and walk.finding.key == key:
                        by_key[key] = (label_known(walk.finding, self.baselines.get(key[0])),
                                       candidate)
                        active.add(key)
                        break
        return by_key

    def write_findings(self, by_key: dict) -> dict[Path, Finding]:
        folder = self.run_dir / "findings"
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        numbered = Counter()
        for key in sorted(by_key):
            finding, seq = by_key[key]
            numbered[finding.target] += 1
            case_id = f"finding.{finding.target}.{numbered[finding.target]:03d}"
            expansion = expand(Sequence(case_id, seq.role, seq.start, seq.events))
            path = folder / f"{case_id}.yaml"
            write_finding_case(path, expansion.data, finding, seq.describe())
            written[path] = (finding, expansion)
        return written

    def verify(self, written: dict) -> dict[Path, Finding | None]:
        """Each finding's case swept on its own: the finding it makes there
        on its target (None: it did not reproduce)."""
        folder = self.run_dir / "findings"
        targets = sorted({f.target for f, _e in written.values()}, key=self.targets.index)
        self.say(f"verifying {len(written)} findings, each case on its own")
        expansions = {e.sequence.id: e for _f, e in written.values()}
        walks = {(r["case"], r["target"]): w
                 for r, w in read_all(self.sweep(folder, targets, "findings"), folder,
                                      expansions)}
        out = {}
        for path, (finding, expansion) in written.items():
            walk = walks.get((expansion.sequence.id, finding.target))
            same = (walk is not None and walk.finding is not None
                    and walk.finding.key == finding.key)
            out[path] = walk.finding if same else None
        return out

    # -- the answer ----------------------------------------------------------------

    def summarise(self, seed, count, wall, found, written, reproduced, coverage, errors,
                  differ) -> dict:
        findings = []
        for path, (finding, _expansion) in written.items():
            findings.append(dict(asdict(finding), case_file=str(path.relative_to(self.run_dir)),
                                 reproduced=reproduced.get(path) is not None))
        report = self.run_dir / "sweeps" / "findings" / "latest" / "index.html"
        return {
            "seed": seed, "count": count, "targets": self.targets, "family": self.family,
            "wall_seconds": round(wall, 1),
            "sequences_per_second": round(count * len(self.targets) / wall, 2) if wall else None,
            "deviating_records": len(found),
            "findings": findings,
            "coverage": {t: c.summary() for t, c in coverage.items()},
            "errors": {t: dict(e.most_common()) for t, e in errors.items()},
            "disagreements": differ,
            "report": str(report) if report.exists() else None,
            "sweep_report": str(self.run_dir / "sweeps" / "sequences" / "latest" / "index.html"),
        }

    def finish(self, summary: dict) -> int:
        path = self.run_dir / "explore.json"
        path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print()
        print(render(summary))
        if summary["findings"]:
            print(f"\nFindings, a case file each: {self.run_dir / 'findings'} "
                  f"(tcpconf sweep {self.run_dir / 'findings'} runs them again)")
        print(f"Exploration: {path}")
        if summary["report"]:
            print(f"Report of the findings: file://{Path(summary['report']).resolve()}")
        status = exit_status(summary)
        print(f"Exit status {status}: " + {
            0: "no new deviation from a MUST (new SHOULD and MAY findings warn and inform)",
            NON_CONFORMANT: "a new deviation from a MUST",
            COULD_NOT_RUN: "the tool could not decide every sequence (and found no new deviation "
                           "from a MUST)"}[status])
        return status


def exit_status(summary: dict) -> int:
    """As a sweep's: a new deviation from a MUST fails the run; new SHOULD
    and MAY deviations are reported (warn, info) and do not."""
    if any(f["reproduced"] and f["known"] == NEW and f["status"] == "fail"
           for f in summary["findings"]):
        return NON_CONFORMANT
    if any(summary["errors"].values()):
        return COULD_NOT_RUN
    return 0


def render(summary: dict) -> str:
    """The terminal's closing summary: findings per target, coverage,
    disagreements, throughput."""
    lines = []
    by_target: dict[str, list[dict]] = {}
    for f in summary["findings"]:
        by_target.setdefault(f["target"], []).append(f)
    for target in summary["targets"]:
        found = by_target.get(target, [])
        stand = [f for f in found if f["reproduced"]]
        new = [f for f in stand if f["known"] == NEW]
        cov = summary["coverage"][target]
        errors = sum(summary["errors"][target].values())
        lines.append(f"{target:<8} {len(stand)} distinct findings ({len(new)} new, "
                     f"{len(stand) - len(new)} known)"
                     + (f", {len(found) - len(stand)} did not reproduce" if len(found) > len(stand)
                        else "")
                     + (f", {errors} sequences undecided" if errors else ""))
        lines.append(f"         coverage: {cov['pairs']}/{cov['pairs_total']} (state, event) "
                     f"pairs, {cov['grid_cells']}/{cov['grid_cells_total']} grid cells, "
                     f"{cov['transitions']} transitions")
        lines += _by_requirement(stand)
    if len(summary["targets"]) > 1:
        differ = summary["disagreements"]
        alone = ", ".join(f"{t} {n}" for t, n in sorted(differ["alone"].items())) or "none"
        lines.append(f"the targets disagree on {differ['sequences']} of {summary['count']} "
                     f"sequences (alone against all others: {alone})")
    lines.append(f"{summary['count']} sequences x {len(summary['targets'])} targets in "
                 f"{summary['wall_seconds']} s: {summary['sequences_per_second']} sequences/s")
    return "\n".join(lines)


def _by_requirement(findings: list[dict], shown: int = 3) -> list[str]:
    """A target's findings a line per requirement, new before known, with
    the first few places (state, event, position) and how many more."""
    groups: dict[tuple, list[dict]] = {}
    for f in findings:
        groups.setdefault((f["known"] != NEW, f["requirement"]), []).append(f)
    lines = []
    for (known, requirement), group in sorted(groups.items()):
        places = [f"{f['state']} {f['kind']}" + (f" {f['position']}" if f["position"] != "-"
                                                  else "") for f in group]
        more = f", +{len(places) - shown} more" if len(places) > shown else ""
        lines.append(f"  {'known' if known else 'NEW  '} {group[0]['level']:<6} {requirement} "
                     f"x{len(group)}: {'; '.join(places[:shown])}{more}")
    return lines


# -- pieces without a lab --------------------------------------------------------

def draw(seed: int, count: int) -> list[Sequence]:
    """The first `count` sequences of the seed that the model can meet (at
    least their first event)."""
    out = []
    for seq in sequences(seed):
        if expand(seq).root is not None:
            out.append(seq)
            if len(out) == count:
                return out
    raise AssertionError("sequences() is endless")


def write_cases(folder: Path, drawn: list[Sequence]) -> dict[str, Expansion]:
    folder.mkdir(parents=True, exist_ok=True)
    expansions = {}
    for seq in drawn:
        expansion = expand(seq)
        expansions[seq.id] = expansion
        (folder / f"{seq.id}.yaml").write_text(
            yaml.safe_dump(expansion.data, sort_keys=False, width=100), encoding="utf-8")
    return expansions


def read_all(records: list[dict], folder: Path, expansions: dict[str, Expansion]):
    """(record, Walk) for each record of a sequence's case."""
    cases = {}
    for record in records:
        expansion = expansions.get(record["case"])
        if expansion is None or not record["target"]:
            continue
        if record["case"] not in cases:
            [cases[record["case"]]] = load_case_file(folder / f"{record['case']}.yaml")
        yield record, read_record(record, cases[record["case"]], expansion)


def representatives(found: list[Finding]) -> list[Finding]:
    """One finding per distinct key: the one in the shortest sequence."""
    best: dict[tuple, Finding] = {}
    for f in found:
        if f.key not in best or (f.events, f.sequence) < (best[f.key].events,
                                                          best[f.key].sequence):
            best[f.key] = f
    return [best[k] for k in sorted(best)]
