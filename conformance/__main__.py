"""`python -m conformance` is the `tcpconf` command (conformance/cli.py):
compare, report, lint, baseline draft and sweep, for a checkout that was
never installed."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
