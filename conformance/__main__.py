"""Commands that work on results files, without the lab (no root needed).

    python -m conformance compare OLD.json NEW.json   what changed between two sweeps
    python -m conformance report RESULTS.json DIR     draw the HTML report again

A sweep itself is pytest (./run sweep); these read what it wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .compare import compare
from .results import ResultsError, load_results
from .summary import COULD_NOT_RUN


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("compare", help="list what changed between two results files "
                                               "(exit 1: regressed, 3: new errors, 0: neither)")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    redraw = commands.add_parser("report", help="write the HTML report of a results file")
    redraw.add_argument("results", type=Path)
    redraw.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            comparison = compare(load_results(args.old), load_results(args.new))
            print("\n".join(comparison.text(str(args.old), str(args.new))))
            return comparison.exit_status
        from .report import write_report   # Jinja2 is needed only here
        index = write_report(args.directory, load_results(args.results))
        print(f"Report: {index.resolve().as_uri()}")
        return 0
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return COULD_NOT_RUN


if __name__ == "__main__":
    sys.exit(main())
