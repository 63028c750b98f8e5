"""PytcpLab: PyTCP 2.7.6 on a tap bridged to the lab's target0, as a suite target.

Shaped like LwipLab in targets/lwip/run_cases.py: the lab is built as for
Linux, the kernel's addresses and permanent neighbour entries leave target0,
targets/lwip/setup-netns.sh (with LWIP_TAP=pytcp0) adds br0 and the tap,
targets/pytcp/agent.py runs PyTCP on the tap through the suite's own
AgentClient, and a NeighbourResponder answers ARP/ND for the tester's
addresses (PyTCP's caches are primed with permanent entries, so it should
never ask; the responder is there in case it does).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import smoke  # noqa: E402
from conformance.agent_client import AgentClient, AgentFailure  # noqa: E402
from conformance.lab import Lab, LabError  # noqa: E402
from conformance.neighbour import NeighbourResponder  # noqa: E402
from conformance.targets import Target  # noqa: E402


class PytcpLab(Target):
    """PyTCP 2.7.6 (pure Python, user space) on a tap bridged to target0."""

    name = "pytcp"

    def __init__(self, optimize: bool = True):
        self.lab = Lab()
        self.agent = None
        self.responder = None
        self.optimize = optimize
        self._bridged = False

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        try:
            self.lab.build()
            smoke.prepare_target_namespace(self.lab)
            self._bridged = True
            self.responder = NeighbourResponder(self.lab.links)
            self.agent = AgentClient.start(smoke.agent_command(self.lab.target_ns, self.optimize),
                                           timeout=30)
        except (AgentFailure, OSError, Exception) as exc:
            self.stop()
            raise LabError(f"the PyTCP target did not start in {self.lab.target_ns}: {exc}") \
                from None

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.responder is not None:
            self.responder.stop()
            self.responder = None
        if self._bridged:
            smoke.teardown_target_namespace(self.lab)
            self._bridged = False
        self.lab.destroy()

    def alive(self) -> bool:
        """False once the agent (and with it PyTCP) has died."""
        if self.agent is None:
            return False
        check = getattr(self.agent, "alive", None)
        return check() if check is not None else self.agent.returncode is None

    def settings(self) -> dict:
        return {"stack": "PyTCP 2.7.6 (pure Python) on a tap, bridged to target0",
                "target system": self.agent.hello.get("system", "?") if self.agent else "?",
                "python -O": "yes" if self.optimize else "no",
                "neighbour entries": "permanent, primed by the agent"}

    def describe(self) -> str:
        return f"pytcp ({self.lab.target_ns})"
