#!/usr/bin/env python3
"""Run the suite's cases against PyTCP with the suite's own engine (run as root).

    .venv/bin/python targets/pytcp/run_cases.py cases/handshake/*.yaml [--family ipv4]

The target is PytcpLab (pytcp_target.py); the cases, the engine and the
wire are the suite's, unchanged.  Each case prints its verdict, then the
counts; everything is torn down at the end, on failure and on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from conformance.case import load_case_file  # noqa: E402
from conformance.runner import Runner  # noqa: E402
from pytcp_target import PytcpLab  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="case files")
    ap.add_argument("--family", choices=("ipv4", "ipv6"), action="append")
    ap.add_argument("--pcap-dir", type=Path, help="write a pcap per case here")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print the requirement and the ladder of every case that did not pass")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run_cases.py: run as root", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    target = PytcpLab()
    runner = Runner(target, args.pcap_dir)
    counts: dict[str, int] = {}
    try:
        for path in args.files:
            for case in load_case_file(Path(path)):
                for family in case.families:
                    if args.family and family not in args.family:
                        continue
                    v = runner.run(case, family)
                    counts[v.outcome] = counts.get(v.outcome, 0) + 1
                    extra = ""
                    if v.outcome != "pass":
                        extra = f"  -- {v.reason or f'expected {v.expected}; actual {v.actual}'}"
                    print(f"{v.outcome:6} {v.name}{extra}", flush=True)
                    if args.verbose and v.outcome != "pass":
                        print(v.explain() + "\n", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        runner.stop()
        target.stop()
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no case ran")
    return 0 if not counts.get("fail") and not counts.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())
