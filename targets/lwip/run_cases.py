#!/usr/bin/env python3
"""Run the suite's cases against lwIP with the suite's own engine (run as root).

    .venv/bin/python targets/lwip/run_cases.py cases/handshake/*.yaml [--family ipv4]

An interim bridge until the suite has an lwIP target of its own
(conformance/targets.py): it shows what such a target has to do.  The lab
is built as for Linux, then the kernel's addresses leave target0,
setup-netns.sh adds br0 and lwip0, lwip-agent is started through the
suite's AgentClient, and a responder thread (smoke.Wire, its own AF_PACKET
socket in the tester namespace) answers lwIP's ARP and neighbour
solicitations for the tester's addresses for the whole run, since the
suite's wire does not.  Each case prints its verdict; everything is torn
down at the end, on failure and on Ctrl-C/SIGTERM.
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

import smoke  # noqa: E402
from conformance.agent_client import AGENT_SOURCE, AgentClient  # noqa: E402
from conformance.case import load_case_file  # noqa: E402
from conformance.lab import PREFIXLEN, TARGET_IFACE, TARGET_IP, TARGET_IP6, TARGET_MAC, Lab, run  # noqa: E402,E501
from conformance.runner import Runner  # noqa: E402
from conformance.targets import Target  # noqa: E402


class LwipLab(Target):
    """lwIP 2.1.3 on a tap bridged to the lab's target0."""

    name = "lwip"

    def __init__(self):
        self.lab = Lab()
        self.agent = None
        self.responder = None

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        self.lab.build()
        run("ip", "-n", self.lab.target_ns, "addr", "flush", "dev", TARGET_IFACE)
        run("ip", "-n", self.lab.target_ns, "neigh", "flush", "dev", TARGET_IFACE,
            "nud", "permanent")
        run(str(smoke.SETUP), self.lab.target_ns)
        self.responder = smoke.Wire(self.lab.tester_ns, keep_frames=False)
        self.agent = AgentClient.start(
            ["ip", "netns", "exec", self.lab.target_ns, str(smoke.AGENT), "--tap", smoke.TAP,
             "--ip", f"{TARGET_IP}/{PREFIXLEN}", "--ip6", TARGET_IP6, "--mac", TARGET_MAC,
             "--skip-stdin", str(len(AGENT_SOURCE)), "--"])

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        if self.responder is not None:
            self.responder.close()
            self.responder = None
        self.lab.destroy()

    def settings(self) -> dict:
        return {"stack": "lwIP 2.1.3 (Debian liblwip) on a tap, bridged to target0",
                "target system": self.agent.hello.get("system", "?") if self.agent else "?"}

    def describe(self) -> str:
        return f"lwip ({self.lab.target_ns})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="case files")
    ap.add_argument("--family", choices=("ipv4", "ipv6"), action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run_cases.py: run as root", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    target = LwipLab()
    runner = Runner(target)
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        runner.stop()
        target.stop()
    print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no case ran")
    return 0 if not counts.get("fail") and not counts.get("error") else 1


if __name__ == "__main__":
    sys.exit(main())
