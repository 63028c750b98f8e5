"""The middlebox targets: a stateful firewall (or a NAT) the suite builds in
its lab, in front of the Linux stack as the end host (conformance/firewall.py
draws the lab).  The device in the path is what is tested: the cases for it
(`middlebox: firewall` or `nat` in a case's target) run against these targets
only, and the host cases do not."""

from __future__ import annotations

from ..firewall import FIREWALL, HOST_IP, HOST_IP6, NAT, WEAK, FirewallLab
from ..lab import TARGET_IFACE, LabError
from ..middlebox import MiddleboxAt
from ..tcp import IPV4, IPV6
from .linux import LinuxLab


class FirewallTarget(LinuxLab):
    """The reference stateful firewall, in front of the Linux stack."""

    name = FIREWALL
    variant = FIREWALL
    middlebox = "firewall"        # the cases it runs: those with `middlebox: firewall`

    def __init__(self, sysctls: dict | None = None, tag: str | None = None, faults=None):
        if faults:
            raise LabError(f"--link-faults and the {self.name} target do not go together: "
                           f"the firewall is what sits between tester and end host")
        super().__init__(sysctls, tag)
        kwargs = {"tag": tag} if tag else {}
        self.lab = FirewallLab(self.variant, sysctls=dict(sysctls or {}), **kwargs)

    @property
    def witness_at(self):
        """None: what the firewall drops is its behaviour, not the link's damage."""
        return None

    @property
    def middlebox_at(self) -> MiddleboxAt:
        """The end host's namespace and interface, where the inside capture
        runs, the firewall's namespace, whose tracker a case reads, and the
        end host's addresses, where the fence's echo goes."""
        return MiddleboxAt(self.lab.target_ns, TARGET_IFACE, self.lab.firewall_ns,
                           {IPV4: HOST_IP, IPV6: HOST_IP6})

    def settings(self) -> dict:
        values = super().settings()
        values["stack"] = (f"a {self.variant} ruleset in nftables (Linux connection tracking), "
                           f"in front of the Linux kernel's TCP as the end host")
        return values

    def describe(self) -> str:
        return f"{self.name} ({self.lab.firewall_ns}, in front of linux)"


class WeakFirewallTarget(FirewallTarget):
    """A stateless filter that lets every segment through: the middlebox cases
    must fail against it."""

    name = WEAK
    variant = WEAK


class NatTarget(FirewallTarget):
    """The reference firewall with masquerade on its outside link."""

    name = NAT
    variant = NAT
    middlebox = "nat"
