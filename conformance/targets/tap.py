"""User-space stacks on a tap device (lwIP, PyTCP): what they share.

    tester namespace              target namespace
    +----------------+            +--------------------------------------------+
    | tester0        |<--- veth ->| target0 (no address, MAC :fe) --+          |
    | injector, and  |            |                                 br0        |
    | the neighbour  |            | tap ----------------------------+          |
    | responder      |            |   `-- the stack's agent: the stack owns    |
    +----------------+            |       198.18.0.2, 2001:2::2 and the lab    |
                                  |       MAC 02:00:c6:12:00:02                |
                                  +--------------------------------------------+

The lab is built as for Linux, then the kernel gives up the target's
addresses and neighbour entries (so it answers neither ARP nor TCP for them)
and ``targets/tap-bridge.sh`` bridges target0 with a tap that the stack's
agent attaches to.  Such a stack may ask ARP or neighbour discovery for the
tester before it answers: the injector's :class:`NeighbourResponder` answers
for the tester's addresses for as long as the target runs.

The agent is the stack's own program speaking the suite's agent protocol
(conformance/agent_protocol.py), driven by the unchanged AgentClient:
``--skip-stdin N --`` makes it discard the Python agent's modules the client
sends first (N = len(agent_bootstrap.AGENT_SOURCE)) and ignore the bootstrap
command the client appends.  The stack runs inside the
agent's process, so a dead agent is a dead stack: ``recover()`` starts
another on the same tap.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..agent_client import AgentClient, AgentFailure
from ..faults import Faults
from ..lab import TARGET_IFACE, Lab, LabError, run
from ..neighbour import NeighbourResponder
from .base import Target

# The other stacks' agents and the tap bridge, shipped in the package (the
# checkout's targets/ is a link to it).
STACKS_DIR = Path(__file__).resolve().parents[1] / "stacks"
TAP_BRIDGE = STACKS_DIR / "tap-bridge.sh"


class TapStack(Target):
    """A stack in an agent process on a tap bridged to the lab's target0."""

    tap = "tap0"
    start_timeout = 10.0

    def __init__(self, sysctls: dict | None = None, tag: str | None = None,
                 faults: Faults | None = None):
        self.lab = Lab(**({"tag": tag} if tag else {}), faults=faults)
        self.agent = None
        self.responder: NeighbourResponder | None = None
        # Asked for on the command line for every target; these stacks have none.
        self.ignored_sysctls = dict(sysctls or {})

    # What each stack supplies.

    def prepare(self) -> None:
        """Make the agent runnable (build it, check its library); LabError if not."""

    def agent_command(self) -> list[str]:
        raise NotImplementedError

    # The common part.

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        self.prepare()
        self.lab.build()
        g = self.lab.target_ns
        try:
            run("ip", "-n", g, "addr", "flush", "dev", TARGET_IFACE)
            run("ip", "-n", g, "neigh", "flush", "dev", TARGET_IFACE, "nud", "permanent")
            self._bridge()
            self.responder = NeighbourResponder(self.links)
            self.agent = AgentClient.start(self.agent_command(), timeout=self.start_timeout)
        except (AgentFailure, LabError, OSError) as exc:
            self.stop()
            raise LabError(f"{self.name} did not start in {g}: {exc}") from None

    def _bridge(self) -> None:
        result = subprocess.run(["sh", str(TAP_BRIDGE), self.lab.target_ns], capture_output=True,
                                text=True, env={**os.environ, "TCPCONF_TAP": self.tap})
        if result.returncode != 0:
            raise LabError(f"{TAP_BRIDGE.name}: {result.stderr.strip() or result.returncode}")

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.responder is not None:
            self.responder.stop()
            self.responder = None
        # The tap and the bridge live in the target namespace and go with it.
        self.lab.destroy()

    def alive(self) -> bool:
        return self.agent is not None and self.agent.alive()

    def post_mortem(self) -> str:
        tail = self.agent.stderr_tail() if self.agent else ""
        return tail.splitlines()[-1] if tail else ""

    def recover(self) -> None:
        """A fresh stack on the same tap after the agent (and the stack in it) died."""
        if self.agent is not None:
            self.agent.close()
        try:
            self.agent = AgentClient.start(self.agent_command(), timeout=self.start_timeout)
        except AgentFailure as exc:
            self.agent = None
            raise LabError(f"{self.name} did not restart in {self.lab.target_ns}: {exc}") \
                from None

    def settings(self) -> dict:
        values = {"target system": self.agent.hello.get("system", "?") if self.agent else "?",
                  "link": f"{self.lab.link_text}, through br0 to the tap {self.tap}"}
        if self.lab.faults is not None:
            values["link faults"] = self.lab.faults.describe()
        if self.ignored_sysctls:
            values["IGNORED Linux sysctls"] = ", ".join(self.ignored_sysctls)
        return values

    def describe(self) -> str:
        return f"{self.name} ({self.lab.target_ns})"
