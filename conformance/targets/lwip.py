"""lwIP 2.1.3 (Debian's liblwip) as a lab target: a C agent on a tap device.

``targets/lwip/build/lwip-agent`` runs lwIP on the tap (see tap.py for the
lab around it) and serves the suite's agent operations with lwIP's socket
API.  The sources and their README (lwIP's options as Debian built them, the
tap driver that replaces Debian's faulty tapif, where lwIP differs) are in
targets/lwip/; the suite builds the agent with make when it starts the target.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess

from ..agent_bootstrap import AGENT_SOURCE
from ..lab import PREFIXLEN, TARGET_IP, TARGET_IP6, TARGET_MAC, LabError
from .tap import STACKS_DIR, TapStack

SOURCE_DIR = STACKS_DIR / "lwip"
AGENT = SOURCE_DIR / "build" / "lwip-agent"
BUILD_NEEDS = {"gcc": "gcc", "make": "make", "pkg-config": "pkg-config"}


def build_agent() -> None:
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


class LwipLab(TapStack):
    """lwIP on a tap bridged to the lab's target0."""

    name = "lwip"
    tap = "lwip0"

    def prepare(self) -> None:
        build_agent()

    def agent_command(self) -> list[str]:
        # lwIP takes the lab's MAC and addresses on the tap.
        return ["ip", "netns", "exec", self.lab.target_ns, str(AGENT), "--tap", self.tap,
                "--ip", f"{TARGET_IP}/{PREFIXLEN}", "--ip6", TARGET_IP6, "--mac", TARGET_MAC,
                "--skip-stdin", str(len(AGENT_SOURCE)), "--"]

    def settings(self) -> dict:
        return {"stack": "lwIP (Debian liblwip) on a tap, bridged to target0",
                "lwIP options": "MSS 1460, window 65535 with scale 1, no SACK, "
                                "no timestamps, TIME-WAIT 2 x 60 s (Debian's lwipopts.h)",
                **super().settings()}
