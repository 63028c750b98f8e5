"""Benchmark: faults on the lab's link give no false verdict.

Sweeps the catalogue against one stack (default Linux) with its baseline over
a clean link, then once under each fault, and compares every faulty sweep
with the clean one (`conformance compare`'s buckets).  A changed verdict that
is not an error naming the link's damage is a false verdict.  Prints, per
fault: the checks, the false verdicts, the checks run again because the
witness saw damage (and how many runs that took), the checks that ended as
errors, and the sweep's wall time against the clean sweep's, measured in the
same run.

Usage (as root, from the repository root; each sweep takes a minute or two):
    .venv/bin/python benchmarks/faults.py [--target linux] [--workers 4]
        [--fault loss=2%] [--fault dup=2%] ...
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

from conformance.compare import compare  # noqa: E402
from conformance.results import load_results  # noqa: E402

# The faults (issue 15): loss 2 %, duplication 2 %, corruption 1 %,
# and delay and reordering.
FAULTS = ["loss=2%", "dup=2%", "corrupt=1%", "delay=10ms", "reorder=5%"]
FALSE = ("new_failures", "new_deviations", "fixed", "changed_alternatives", "other_changes",
         "added", "removed")


def sweep(report: Path, target: str, workers: int, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "cases",
                    "-n", str(workers), "--target", target, "--baseline", "baselines",
                    f"--report={report}", *extra],
                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="linux")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--fault", action="append", help="a --link-faults spec (repeatable)")
    args = ap.parse_args()
    faults = args.fault or FAULTS
    with tempfile.TemporaryDirectory(prefix="tcpconf-faults-") as tmp:
        root = Path(tmp)
        clean_time = sweep(root / "clean", args.target, args.workers)
        clean = load_results(root / "clean" / "results.json")
        print(f"clean link: {len(clean.records)} checks in {clean_time:.0f} s")
        print(f"{'faults':<14} {'checks':>6} {'false':>5} {'retried':>7} {'runs':>5} "
              f"{'errors':>6} {'time':>6}")
        total_false = 0
        for spec in faults:
            name = spec.replace("=", "-").replace("%", "pc").replace(",", "+")
            took = sweep(root / name, args.target, args.workers, "--link-faults", spec)
            faulty = load_results(root / name / "results.json")
            found = compare(clean, faulty)
            false = [c for bucket in FALSE for c in getattr(found, bucket)]
            false += [c for c in found.new_errors if "the link damaged" not in c.new["reason"]]
            retried = [r for r in faulty.records if r.get("retries")]
            errors = [r for r in faulty.records if r["status"] == "error"]
            total_false += len(false)
            print(f"{spec:<14} {len(faulty.records):>6} {len(false):>5} {len(retried):>7} "
                  f"{sum(r['retries'] for r in retried):>5} {len(errors):>6} "
                  f"{took / clean_time:>5.2f}x")
            for change in false:
                print("    false: " + change.line().replace("\n", "\n    "))
            for rec in errors:
                print(f"    error: {rec['case']} [{rec['family']}]: {rec['reason'][:160]}")
        print(f"false verdicts under faults: {total_false}")
    return 1 if total_false else 0


if __name__ == "__main__":
    sys.exit(main())
