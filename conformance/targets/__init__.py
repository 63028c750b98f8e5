"""Targets: a TCP stack the suite can reach over a link and drive through an agent.

The engine needs three things from a target, whatever it is (the Linux
kernel in a namespace, lwIP or PyTCP on a tap, gVisor's netstack in a
sandbox; later a remote device or a container):

* ``links``: where the injector sends from and to, one :class:`wire.Link`
  per address family it can be reached in (``ipv4``, ``ipv6``);
* ``agent``: an :class:`AgentClient` that performs socket calls on the target
  and reports its TCP states;
* ``settings()``: what the report should say about how the target was set up.

And it may say what it cannot do, so that verdicts stay honest:

* ``state_view``: which connections the agent's ``states`` op can see.
  ``"all"``: every connection block of the stack, as Linux's sock_diag
  shows them.  ``"held"``: only those of sockets the application holds
  (gVisor's /proc/net/tcp): an embryonic connection in SYN-RECEIVED, or one
  the application has closed (FIN-WAIT-*, CLOSING, LAST-ACK, TIME-WAIT), is
  invisible, and a state check on it is reported as not observable rather
  than decided.  ``"none"``: no agent at all (black-box mode, blackbox.py):
  every state check is unobserved, and the verdict rests on the wire.
* ``set_sysctl(key, value)`` exists only on targets with Linux settings; a
  case that needs one is not applicable elsewhere.
* ``alive()`` and ``recover()``: a target that can crash (a sandbox whose
  stack panics) says so, and the runner starts it again for the next case.
"""

from __future__ import annotations

from ..agent_client import AgentClient
from ..lab import LabError
from ..wire import Link

ALL, HELD, NONE = "all", "held", "none"


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

    def start(self) -> None:
        raise NotImplementedError

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

    def recover(self) -> None:
        """Start the target again after it died; LabError if it cannot."""
        raise LabError(f"the target {self.name} died and cannot be restarted")


from .gvisor import GvisorLab  # noqa: E402  (they subclass Target)
from .linux import LinuxLab  # noqa: E402
from .lwip import LwipLab  # noqa: E402
from .pytcp import PytcpLab  # noqa: E402

from .remote import RemoteConfig, RemoteTarget  # noqa: E402
from .container import ContainerConfig, ContainerTarget  # noqa: E402

# The stacks the suite can build in its own lab, by the name --target takes.
TARGETS = {"linux": LinuxLab, "lwip": LwipLab, "gvisor": GvisorLab, "pytcp": PytcpLab}
# Targets the suite does not build: described by the --remote-* and
# --container options instead.
OUTSIDE_TARGETS = ("remote", "container")


def make_target(name: str, sysctls: dict | None = None,
                outside: RemoteConfig | ContainerConfig | None = None) -> Target:
    if name == "remote" and isinstance(outside, RemoteConfig):
        return RemoteTarget(outside)
    if name == "container" and isinstance(outside, ContainerConfig):
        return ContainerTarget(outside)
    try:
        factory = TARGETS[name]
    except KeyError:
        raise LabError(f"unknown target {name!r}; known targets: "
                       f"{', '.join([*TARGETS, *OUTSIDE_TARGETS])}") from None
    return factory(sysctls=sysctls)
