"""PyTCP 2.7.6 (pure Python, user space) as a lab target.

``targets/pytcp/agent.py`` runs PyTCP on the tap (see tap.py for the lab
around it) and serves the suite's agent operations with PyTCP's socket API.
Its README says what the agent does around PyTCP (addresses assigned without
ARP probes or DAD, neighbour caches primed, its logger silenced) and where
PyTCP differs from the RFCs.
"""

from __future__ import annotations

import importlib.util
import sys

from ..agent_bootstrap import AGENT_SOURCE
from ..lab import (PREFIXLEN, PREFIXLEN6, TARGET_IP, TARGET_IP6, TARGET_MAC, TESTER_IP,
                   TESTER_IP6, TESTER_MAC, LabError)
from .tap import STACKS_DIR, TapStack

AGENT = STACKS_DIR / "pytcp" / "agent.py"
VERSION = "2.7.6"   # the agent patches PyTCP's internals written for this release


class PytcpLab(TapStack):
    """PyTCP on a tap bridged to the lab's target0."""

    name = "pytcp"
    tap = "pytcp0"
    start_timeout = 30.0

    def prepare(self) -> None:
        if importlib.util.find_spec("pytcp") is None:
            raise LabError(f"PyTCP is not installed: pip install 'pytcp=={VERSION}' "
                           f"(./run installs it)")

    def agent_command(self) -> list[str]:
        # -O: PyTCP formats a log line for every packet unless __debug__ is off.
        # Its neighbour caches get permanent entries for the tester (it drops
        # a segment whose next hop it has not resolved, rather than queueing it).
        return ["ip", "netns", "exec", self.lab.target_ns, sys.executable, "-O", str(AGENT),
                "--tap", self.tap, "--ip", f"{TARGET_IP}/{PREFIXLEN}",
                "--ip6", f"{TARGET_IP6}/{PREFIXLEN6}", "--mac", TARGET_MAC,
                "--peer-ip", TESTER_IP, "--peer-ip6", TESTER_IP6, "--peer-mac", TESTER_MAC,
                "--skip-stdin", str(len(AGENT_SOURCE)), "--"]

    def settings(self) -> dict:
        return {"stack": f"PyTCP {VERSION} (pure Python) on a tap, bridged to target0",
                **super().settings()}
