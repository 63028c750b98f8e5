"""Benchmark: one case from a cold process, as an engineer reruns it.

Runs `tcpconf sweep FILE --target linux --family ipv4 -n 0` (the command a
report page gives to rerun one case) several times and prints the median
wall time of the whole process, beside the time the same interpreter takes
just to import what a sweep imports, and to start at all.

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/coldstart.py [--case cases/handshake/passive-open.yaml] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    took = time.monotonic() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} ended with {done.returncode}:\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took


def measure(case: str, runs: int) -> dict[str, tuple[float, float]]:
    """What each command takes, median of `runs`: (with bytecode caches,
    without)."""
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="tcpconf-cold-") as tmp:
        figures = {
            "python -c pass": [python, "-c", "pass"],
            "imports of a sweep": [python, "-c", "import conformance.plugin, "
                                   "conformance.runner, conformance.engine, pytest, xdist"],
            f"tcpconf sweep {case}": [python, "-m", "conformance", "sweep", case,
                                      "--target", "linux", "--family", "ipv4", "-n", "0",
                                      f"--report={tmp}", "-p", "no:cacheprovider", "-q"],
        }
        # As on a user's machine, Python keeps its bytecode caches (and pytest
        # its rewritten modules'); a machine that sets PYTHONDONTWRITEBYTECODE
        # compiles every module in every process, shown apart.
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        uncached = dict(cached, PYTHONDONTWRITEBYTECODE="1")
        measured = {}
        for name, command in figures.items():
            timed(command, cached)          # writes the caches
            measured[name] = (statistics.median(timed(command, cached) for _ in range(runs)),
                              statistics.median(timed(command, uncached) for _ in range(runs)))
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="cases/handshake/passive-open.yaml")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'what':<56} {'cached':>8} {'no cache':>9}  (medians of {args.runs} runs)")
    for name, (with_cache, without) in measure(args.case, args.runs).items():
        print(f"{name:<56} {with_cache:7.3f}s {without:8.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
