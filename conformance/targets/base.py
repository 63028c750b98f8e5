"""What every target is: the base class and the words for what its agent can
show (see the package's docstring, targets/__init__.py)."""

from __future__ import annotations

from ..agent_client import AgentClient
from ..lab import TARGET_IFACE, LabError
from ..wire import Link

ALL, HELD, NONE = "all", "held", "none"
# A frame on a veth takes microseconds; a loaded machine's softirq backlog
# can hold it for milliseconds.
LINK_SETTLE = 0.05


class Target:
    name = "target"
    links: dict[str, Link]
    agent: AgentClient | None         # None: black-box mode
    state_view = ALL
    # Why some states are invisible, for the ladder and the report.
    state_view_reason = ""
    # The ports the tester may send from (each case takes fresh ones).
    tester_ports = range(40000, 60000)
    # Black-box mode: where the target's own service listens, and a port
    # where nothing does (the cases' target port when there is no agent).
    listen_port: int | None = None
    closed_port: int | None = None
    # Addresses outside the lab ranges that the user configured explicitly.
    allowed_targets: tuple[str, ...] = ()
    # The tester's MAC is not the interface's own: capture promiscuously.
    promiscuous = False
    # Prove the link with an ICMP echo before the first case (a target the
    # suite did not build: its first case must not be the one to find out).
    check_link_at_start = False

    # The device in the path this target is ('firewall', 'nat'; targets/
    # firewall.py), whose cases it runs; None: an end host, which runs the
    # host cases.
    middlebox: str | None = None
    # Where a case sees what crossed a middlebox the suite built and what it
    # tracks (middlebox.MiddleboxAt); None: no device in the path.
    middlebox_at = None

    @property
    def witness_at(self) -> tuple[str, str] | None:
        """Where the witness captures (witness.py): the target's end of a link
        the suite built, as (namespace, interface).  The lab targets keep their
        Lab as ``self.lab``; a target the suite does not build has no witness."""
        lab = getattr(self, "lab", None)
        return None if lab is None else (lab.target_ns, TARGET_IFACE)

    @property
    def link_settle(self) -> float:
        """How long a frame may still be on its way when a case ends: a
        moment on a plain veth, plus the largest delay of the link's faults."""
        faults = getattr(getattr(self, "lab", None), "faults", None)
        return LINK_SETTLE + (faults.hold if faults else 0.0)

    def start(self) -> None:
        raise NotImplementedError

    def before_rerun(self) -> None:
        """Before a case runs again (link damage, --confirm): put back what the
        first run used up, so that every run meets the same target."""

    def stop(self) -> None:
        raise NotImplementedError

    def settings(self) -> dict:
        return {}

    def describe(self) -> str:
        return self.name

    def alive(self) -> bool:
        """False once the target itself has died (not just one connection)."""
        return True

    def post_mortem(self) -> str:
        """What the target said as it died (a log's last lines), if anything."""
        return ""

    # The target's post-mortem is the stack's own crash (a panic it logged),
    # not a process of the suite's that died: then its death during a case
    # is a finding about the target, not an error of the tool.
    crash_is_the_stacks = False

    def recover(self) -> None:
        """Start the target again after it died; LabError if it cannot."""
        raise LabError(f"the target {self.name} died and cannot be restarted")
