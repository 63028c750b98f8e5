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

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

from ..lab import LabError
from .base import ALL, HELD, NONE, Target

if TYPE_CHECKING:
    from ..faults import Faults
    from .container import ContainerConfig
    from .device import DeviceConfig
    from .remote import RemoteConfig

# Each class by the module that holds it, imported when first asked for
# (TARGETS below, and `from conformance.targets import GvisorLab`): a run
# against the Linux lab need not import gVisor's sandbox, the firewalls, a
# container's or a device's code (a tenth of a one-case run's imports).
CLASSES = {
    "ContainerConfig": ".container", "ContainerTarget": ".container",
    "DeviceConfig": ".device", "DeviceTarget": ".device",
    "FirewallGvisorTarget": ".firewall", "FirewallLwipTarget": ".firewall",
    "FirewallPytcpTarget": ".firewall", "FirewallTarget": ".firewall",
    "NatTarget": ".firewall", "WeakFirewallTarget": ".firewall",
    "GvisorLab": ".gvisor", "LinuxLab": ".linux", "LwipLab": ".lwip", "PytcpLab": ".pytcp",
    "RemoteConfig": ".remote", "RemoteTarget": ".remote",
}

__all__ = ["ALL", "HELD", "NONE", "OUTSIDE_TARGETS", "TARGETS", "Target", "make_target",
           "middlebox_of", *CLASSES]


def __getattr__(name: str):
    """A class of CLASSES, imported now (PEP 562)."""
    if name not in CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(CLASSES[name], __name__), name)


class Registry(MutableMapping):
    """The targets by the name --target takes.  A value is the target's
    class, or the name of one in CLASSES, imported when first looked up; a
    class of the user's own may be registered as it is."""

    def __init__(self, entries: dict):
        self._entries = dict(entries)

    def __getitem__(self, name: str):
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = self._entries[name] = __getattr__(entry)
        return entry

    def __setitem__(self, name: str, factory) -> None:
        self._entries[name] = factory

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


# The stacks the suite can build in its own lab, by the name --target takes.
# The end hosts first, then the devices in the path (targets/firewall.py).
TARGETS = Registry({
    "linux": "LinuxLab", "lwip": "LwipLab", "gvisor": "GvisorLab", "pytcp": "PytcpLab",
    "firewall": "FirewallTarget", "firewall-weak": "WeakFirewallTarget", "nat": "NatTarget",
    "firewall-gvisor": "FirewallGvisorTarget", "firewall-lwip": "FirewallLwipTarget",
    "firewall-pytcp": "FirewallPytcpTarget"})
# Targets the suite does not build, each described by the --remote-*,
# --container or --device-* options instead: that description's class, and
# the target's.
OUTSIDE = {"remote": ("RemoteConfig", "RemoteTarget"),
           "container": ("ContainerConfig", "ContainerTarget"),
           "middlebox": ("DeviceConfig", "DeviceTarget")}
OUTSIDE_TARGETS = tuple(OUTSIDE)


def make_target(name: str, sysctls: dict | None = None,
                outside: RemoteConfig | ContainerConfig | DeviceConfig | None = None,
                faults: Faults | None = None) -> Target:
    """The target `name`; `faults` on the lab's link (lab targets only)."""
    if name in OUTSIDE_TARGETS and faults:
        # The link to a remote device or a container is not the suite's: it
        # cannot put a fault on it, and a report must not claim it did.
        raise LabError(f"link faults ({faults.describe()}) need a lab target "
                       f"({', '.join(TARGETS)}): the suite owns no link to a {name} target")
    if name in OUTSIDE and outside is not None:
        config, target = OUTSIDE[name]
        if isinstance(outside, __getattr__(config)):
            return __getattr__(target)(outside)
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
        return outside.kind if isinstance(outside, __getattr__("DeviceConfig")) else "firewall"
    factory = TARGETS.get(name)
    return getattr(factory, "middlebox", None)
