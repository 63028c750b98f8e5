"""Benchmark: an exploration's throughput next to the fast sweep's.

Runs, in one go and on the same targets with the same workers, an
exploration without shrinking (tcpconf explore --no-shrink: COUNT sequences
drawn, swept, read back) and the fast sweep of the catalogue over the same
family; prints each one's wall time, sequences (checks) per second and the
ratio.  Needs root (the lab).

Usage (from the repository root):
    .venv/bin/python benchmarks/explore.py [--target linux] [--count 500] [-n 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="linux")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-n", "--workers", default="4")
    args = parser.parse_args()
    targets = args.target.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        explore = timed([sys.executable, "-m", "conformance", "explore", "--target", args.target,
                         "--count", str(args.count), "--seed", str(args.seed), "--no-shrink",
                         "-n", args.workers, "--report", f"{tmp}/explore"])
        summary = json.loads(Path(tmp, "explore", "latest", "explore.json").read_text())
        sweep = timed([sys.executable, "-m", "conformance", "sweep", "--target", args.target,
                       "--family", "ipv4", "-n", args.workers, f"--report={tmp}/sweep",
                       "-p", "no:cacheprovider", "-q"])
        records = json.loads(Path(tmp, "sweep", "latest", "results.json").read_text())["records"]
    runs = args.count * len(targets)
    checks = len([r for r in records if r["target"]])
    sweep_wall = summary["wall_seconds"]
    print(f"targets {args.target}, {args.workers} workers, ipv4")
    print(f"exploration: {args.count} sequences x {len(targets)} targets: sweep of them "
          f"{sweep_wall:.1f} s ({runs / sweep_wall:.1f} sequences/s), the whole command "
          f"{explore:.1f} s")
    print(f"fast sweep:  {checks} checks in {sweep:.1f} s ({checks / sweep:.1f} checks/s)")
    print(f"ratio: {runs / sweep_wall / (checks / sweep):.2f} sequences per check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
