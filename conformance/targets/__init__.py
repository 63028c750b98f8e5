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

from ..faults import Faults
from ..lab import LabError
from .base import ALL, HELD, NONE, Target
from .container import ContainerConfig, ContainerTarget
from .device import DeviceConfig, DeviceTarget
from .firewall import (FirewallGvisorTarget, FirewallLwipTarget, FirewallPytcpTarget,
                       FirewallTarget, NatTarget, WeakFirewallTarget)
from .gvisor import GvisorLab
from .linux import LinuxLab
from .lwip import LwipLab
from .pytcp import PytcpLab
from .remote import RemoteConfig, RemoteTarget

__all__ = ["ALL", "HELD", "NONE", "OUTSIDE_TARGETS", "TARGETS", "ContainerConfig",
           "ContainerTarget", "DeviceConfig", "DeviceTarget", "FirewallGvisorTarget",
           "FirewallLwipTarget", "FirewallPytcpTarget",
           "FirewallTarget", "GvisorLab", "LinuxLab", "LwipLab",
           "NatTarget", "PytcpLab", "RemoteConfig", "RemoteTarget", "Target",
           "WeakFirewallTarget", "make_target", "middlebox_of"]

# The stacks the suite can build in its own lab, by the name --target takes.
# The end hosts first, then the devices in the path (targets/firewall.py).
TARGETS = {"linux": LinuxLab, "lwip": LwipLab, "gvisor": GvisorLab, "pytcp": PytcpLab,
           "firewall": FirewallTarget, "firewall-weak": WeakFirewallTarget, "nat": NatTarget,
           "firewall-gvisor": FirewallGvisorTarget, "firewall-lwip": FirewallLwipTarget,
           "firewall-pytcp": FirewallPytcpTarget}
# Targets the suite does not build: described by the --remote-*, --container
# and --device-* options instead.
OUTSIDE_TARGETS = ("remote", "container", "middlebox")


def make_target(name: str, sysctls: dict | None = None,
                outside: RemoteConfig | ContainerConfig | DeviceConfig | None = None,
                faults: Faults | None = None) -> Target:
    """The target `name`; `faults` on the lab's link (lab targets only)."""
    if name in OUTSIDE_TARGETS and faults:
        # The link to a remote device or a container is not the suite's: it
        # cannot put a fault on it, and a report must not claim it did.
        raise LabError(f"link faults ({faults.describe()}) need a lab target "
                       f"({', '.join(TARGETS)}): the suite owns no link to a {name} target")
    if name == "remote" and isinstance(outside, RemoteConfig):
        return RemoteTarget(outside)
    if name == "container" and isinstance(outside, ContainerConfig):
        return ContainerTarget(outside)
    if name == "middlebox" and isinstance(outside, DeviceConfig):
        return DeviceTarget(outside)
    try:
        factory = TARGETS[name]
    except KeyError:
        raise LabError(f"unknown target {name!r}; known targets: "
                       f"{', '.join([*TARGETS, *OUTSIDE_TARGETS])}") from None
    # A target class of the user's own (registered in TARGETS) need not know faults.
    return factory(sysctls=sysctls, **({"faults": faults} if faults is not None else {}))


def middlebox_of(name: str, outside=None) -> str | None:
    """The kind of device in the path target `name` is ('firewall', 'nat'),
    or None for an end host: which cases it runs.  A real device in the path
    ('middlebox') is what its DeviceConfig `outside` says."""
    if name == "middlebox":
        return outside.kind if isinstance(outside, DeviceConfig) else "firewall"
    factory = TARGETS.get(name)
    return getattr(factory, "middlebox", None)
