"""lwIP 2.1.3 (Debian's liblwip) as a lab target: a C agent on a tap device.

    tester namespace              target namespace
    +----------------+            +--------------------------------------------+
    | tester0        |<--- veth ->| target0 (no address, MAC :fe) --+          |
    | injector, and  |            |                                 br0        |
    | the neighbour  |            | lwip0 (tap) ------------------- +          |
    | responder      |            |   `-- lwip-agent: lwIP owns 198.18.0.2,    |
    +----------------+            |       2001:2::2, MAC 02:00:c6:12:00:02     |
                                  +--------------------------------------------+

The lab is built as for Linux, then the kernel gives up the target's
addresses (so it answers neither ARP nor TCP for them) and
``targets/lwip/setup-netns.sh`` bridges target0 with a tap that
``targets/lwip/build/lwip-agent`` attaches lwIP to.  lwIP keeps no static
neighbour entries, so it asks ARP / neighbour discovery for the tester
before its first answer: the injector's :class:`NeighbourResponder` answers
for the tester's addresses for as long as the target runs.

The agent speaks the suite's agent protocol (conformance/agent.py) and is
driven by the unchanged AgentClient: ``--skip-stdin N --`` makes it discard
the Python agent source the client sends first, and ignore the bootstrap
command the client appends.  The sources and their README (lwIP's options,
the tap driver that replaces Debian's faulty tapif) are in targets/lwip/.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from ..agent_client import AGENT_SOURCE, AgentClient, AgentFailure
from ..lab import PREFIXLEN, TARGET_IFACE, TARGET_IP, TARGET_IP6, TARGET_MAC, Lab, LabError, run
from ..neighbour import NeighbourResponder
from . import Target

SOURCE_DIR = Path(__file__).resolve().parents[2] / "targets" / "lwip"
AGENT = SOURCE_DIR / "build" / "lwip-agent"
SETUP = SOURCE_DIR / "setup-netns.sh"
TAP = "lwip0"
BUILD_NEEDS = {"gcc": "gcc", "make": "make", "pkg-config": "pkg-config"}


def build_agent() -> Path:
    """Build (or bring up to date) lwip-agent with make; LabError says why not.

    Several pytest-xdist workers start their lwIP targets at once: a lock
    file makes them build one after the other (the later ones find the
    binary up to date)."""
    missing = [pkg for tool, pkg in BUILD_NEEDS.items() if shutil.which(tool) is None]
    if missing:
        raise LabError(f"cannot build the lwIP agent: install {' '.join(missing)} "
                       f"(apt-get install {' '.join(missing)} liblwip-dev)")
    AGENT.parent.mkdir(exist_ok=True)
    with open(AGENT.parent / ".build-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(["make", "-s", "-C", str(SOURCE_DIR)], capture_output=True,
                                text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise LabError(f"cannot build the lwIP agent (make -C {SOURCE_DIR}): {tail}")
    return AGENT


class LwipLab(Target):
    """lwIP on a tap bridged to the lab's target0."""

    name = "lwip"

    def __init__(self, sysctls: dict | None = None, tag: str | None = None):
        self.lab = Lab(**({"tag": tag} if tag else {}))
        self.agent = None
        self.responder: NeighbourResponder | None = None
        # Asked for on the command line for every target; lwIP has none of them.
        self.ignored_sysctls = dict(sysctls or {})

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        agent = build_agent()
        self.lab.build()
        g = self.lab.target_ns
        try:
            run("ip", "-n", g, "addr", "flush", "dev", TARGET_IFACE)
            run("ip", "-n", g, "neigh", "flush", "dev", TARGET_IFACE, "nud", "permanent")
            run(str(SETUP), g)
            self.responder = NeighbourResponder(self.links)
            self.agent = self._start_agent(agent)
        except (AgentFailure, LabError, OSError) as exc:
            self.stop()
            raise LabError(f"lwIP did not start in {g}: {exc}") from None

    def _start_agent(self, agent: Path) -> AgentClient:
        # lwIP takes the lab's MAC and addresses on the tap.
        return AgentClient.start(
            ["ip", "netns", "exec", self.lab.target_ns, str(agent), "--tap", TAP,
             "--ip", f"{TARGET_IP}/{PREFIXLEN}", "--ip6", TARGET_IP6, "--mac", TARGET_MAC,
             "--skip-stdin", str(len(AGENT_SOURCE)), "--"])

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
        """A fresh lwIP after the agent died (lwIP runs in the agent's process)."""
        if self.agent is not None:
            self.agent.close()
        try:
            self.agent = self._start_agent(AGENT)
        except AgentFailure as exc:
            self.agent = None
            raise LabError(f"lwIP did not restart in {self.lab.target_ns}: {exc}") from None

    def settings(self) -> dict:
        values = {"stack": "lwIP (Debian liblwip) on a tap, bridged to target0",
                  "target system": self.agent.hello.get("system", "?") if self.agent else "?",
                  "lwIP options": "MSS 1460, window 65535 with scale 1, no SACK, "
                                  "no timestamps, TIME-WAIT 2 x 60 s (Debian's lwipopts.h)",
                  "link": self.lab.link_text}
        if self.ignored_sysctls:
            values["IGNORED Linux sysctls"] = ", ".join(self.ignored_sysctls)
        return values

    def describe(self) -> str:
        return f"lwip ({self.lab.target_ns})"
