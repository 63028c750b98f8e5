"""Benchmark: what fences (conformance/fence.py) save, and whether they hold.

For each stack, the catalogue's fast cases are swept three times, one
after the other: with --fences off (every window waited out), on, and
audit (every fence sent, every window waited out, and any answer that came
after a fence's reply counted: the measurement fence.IN_ORDER rests on).
Printed per stack: the sweep's wall time, the seconds spent in windows that
ended with no answer (results.json `unanswered`, summed over the records),
the steps a fence decided, the fences the audit sent and how many an answer
overtook, and `tcpconf compare` of the off and on sweeps (a fence must not
change a verdict).

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/fences.py [--target linux,lwip,gvisor,pytcp] [-n 4]
                                          [-k EXPR] [--family ipv4,ipv6]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance.cli import UNUSED_PLUGINS  # noqa: E402
from conformance.compare import compare  # noqa: E402
from conformance.fence import AUDIT, OFF, ON  # noqa: E402
from conformance.results import load_results  # noqa: E402


def sweep(target: str, mode: str, workers: str, select: str | None, family: str,
          where: Path):
    """One sweep's wall time and results."""
    report = where / f"{target}-{mode}"
    command = [sys.executable, "-m", "pytest", "-p", "conformance.plugin", "cases",
               f"--target={target}", f"--fences={mode}", f"--family={family}",
               f"--report={report}", "-n", workers, "-q", "-p", "no:cacheprovider",
               *UNUSED_PLUGINS]
    if select:
        command += ["-k", select]
    started = time.monotonic()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started, load_results(report / "latest" / "results.json")


def figures(results) -> dict:
    records = results.records
    audits = [a for r in records for a in r.get("fence_audit", [])]
    return {
        "checks": len(records),
        "unanswered": sum(r.get("unanswered", 0.0) for r in records),
        "fenced": sum(len(r.get("fenced", [])) for r in records),
        "fences": len(audits),
        "overtaken": sum(a["overtaken"] for a in audits),
        "could_save": sum(a["saved_ms"] for a in audits if not a["overtaken"]) / 1000,
    }


def cut(off: dict, on: dict) -> float:
    """The share of the unanswered time the fences saved."""
    saved = 1 - on["unanswered"] / off["unanswered"] if off["unanswered"] else 0.0
    return max(saved, 0.0) if abs(saved) < 0.005 else saved     # no "-0%"


def verdicts_changed(changes) -> int:
    """How many records `tcpconf compare` of the two sweeps lists as changed."""
    return sum(len(getattr(changes, name)) for name, _title in changes.SECTIONS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="linux,lwip,gvisor,pytcp")
    parser.add_argument("-n", "--workers", default="4")
    parser.add_argument("-k", dest="select")
    parser.add_argument("--family", default="ipv4,ipv6")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tcpconf-fences-") as tmp:
        for target in args.target.split(","):
            runs = {mode: sweep(target, mode, args.workers, args.select, args.family, Path(tmp))
                    for mode in (OFF, ON, AUDIT)}
            changes = compare(runs[OFF][1], runs[ON][1])
            rows.append((target, {mode: (wall, figures(results))
                                  for mode, (wall, results) in runs.items()}, changes))
            for line in changes.text(f"{target} without fences", f"{target} with fences")[1:]:
                print(line)
    print(f"{'stack':<8} {'checks':>6} {'wall off':>9} {'wall on':>8} {'unanswered off':>15} "
          f"{'on':>7} {'cut':>5} {'fenced':>7} {'audit fences':>13} {'overtaken':>10} "
          f"{'verdicts changed':>17}")
    for target, by_mode, changes in rows:
        (off_wall, off), (on_wall, on) = by_mode[OFF], by_mode[ON]
        audit = by_mode[AUDIT][1]
        print(f"{target:<8} {off['checks']:>6} {off_wall:>8.1f}s {on_wall:>7.1f}s "
              f"{off['unanswered']:>14.1f}s {on['unanswered']:>6.1f}s {cut(off, on):>5.0%} "
              f"{on['fenced']:>7} {audit['fences']:>13} {audit['overtaken']:>10} "
              f"{verdicts_changed(changes):>17}")
    print("\nunanswered: seconds in windows that ended with no answer, summed over the checks; "
          "overtaken: audit fences whose reply came before an answer in the same window "
          "(fence.IN_ORDER must be False for a stack with any)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
