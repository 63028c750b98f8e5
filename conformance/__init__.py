"""tcp-conformance: a TCP protocol conformance suite.

YAML cases (the built-in catalogue is :data:`CATALOGUE`) are sent by a Scapy
injector at real stacks in lab namespaces, at a device in the path, or at a
remote target; pytest judges each answer against the RFC sentence the case
cites (conformance.plugin), and an HTML report shows the evidence.

The command is ``tcpconf`` (conformance/cli.py); the pytest plugin is
registered as ``conformance.plugin`` (an entry point, so ``pytest DIR`` runs
the cases in DIR once the package is installed).
"""

from __future__ import annotations

from pathlib import Path

# The cases that come with the suite (a checkout's cases/ links here).
CATALOGUE = Path(__file__).resolve().parent / "cases"

try:
    # Written by setuptools-scm when the package is installed (pyproject.toml).
    from ._version import version as __version__
except ImportError:                 # run from a checkout that was never installed
    __version__ = "unknown"
