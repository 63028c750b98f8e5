"""The middlebox targets: a stateful firewall (or a NAT) the suite builds in
its lab, in front of the Linux stack as the end host (conformance/firewall.py
draws the lab), or of gVisor's netstack, lwIP or PyTCP (`firewall-gvisor`,
`firewall-lwip`, `firewall-pytcp`).  The device in the path is what is
tested: the cases for it (`middlebox: firewall` or `nat` in a case's target)
run against these targets only, and the host cases do not.  Another end host
answers some segments otherwise (no challenge ACK, say): what the firewall
passes and what the end host makes of it are seen side by side, and where the
end host's own behaviour differs the case does not apply (engine.py, behind a
device)."""

from __future__ import annotations

import sys

from ..agent_bootstrap import AGENT_SOURCE
from ..firewall import (FIREWALL, HOST_IP, HOST_IP6, INSIDE_IP, INSIDE_LL6, INSIDE_MAC, NAT,
                        PREFIXLEN, PREFIXLEN6, WEAK, FirewallLab)
from ..lab import TARGET_IFACE, TARGET_MAC, LabError
from ..middlebox import MiddleboxAt
from ..tcp import IPV4, IPV6
from .gvisor import GvisorLab
from .gvisor.sandbox import GvisorSandbox
from .linux import LinuxLab
from .lwip import AGENT as LWIP_AGENT
from .lwip import LwipLab
from .pytcp import AGENT as PYTCP_AGENT
from .pytcp import PytcpLab


class InFront:
    """What a device in front of an end host adds to the end host's target:
    the firewall lab, where a case sees what crossed it and what it tracks,
    and no witness (what the firewall drops is its behaviour, not damage)."""

    variant = FIREWALL
    middlebox = "firewall"        # the cases it runs: those with `middlebox: firewall`
    end_host = "linux"
    # The Linux end host takes --target-sysctl in its namespace; a stack in
    # user space has none of them (its target reports them as ignored).
    end_host_sysctls = False

    def __init__(self, sysctls: dict | None = None, tag: str | None = None, faults=None):
        if faults:
            raise LabError(f"--link-faults and the {self.name} target do not go together: "
                           f"the firewall is what sits between tester and end host")
        super().__init__(sysctls, tag)
        kept = dict(sysctls or {}) if self.end_host_sysctls else {}
        self.lab = FirewallLab(self.variant, sysctls=kept, **({"tag": tag} if tag else {}))

    @property
    def witness_at(self):
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
                           f"in front of {self.end_host_text} as the end host")
        return values

    def describe(self) -> str:
        return f"{self.name} ({self.lab.firewall_ns}, in front of {self.end_host})"


class FirewallTarget(InFront, LinuxLab):
    """The reference stateful firewall, in front of the Linux stack."""

    name = FIREWALL
    end_host_text = "the Linux kernel's TCP"
    end_host_sysctls = True


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


class FirewallGvisorTarget(InFront, GvisorLab):
    """The reference stateful firewall, in front of gVisor's netstack: runsc
    copies the end host's addresses, its route through the firewall and its
    permanent neighbour entry for the firewall into netstack."""

    name = "firewall-gvisor"
    end_host = "gvisor"
    end_host_text = "gVisor's netstack"

    def __init__(self, sysctls: dict | None = None, tag: str | None = None, faults=None):
        super().__init__(sysctls, tag, faults)
        # The sandbox runs in the firewall lab's end host namespace.
        self.sandbox = GvisorSandbox(self.lab.target_ns, python=self.sandbox.python)

    def recover(self) -> None:
        """As gVisor's, and the end host's routes through the firewall made
        again: runsc took them with the addresses, and the sandbox puts back
        only addresses and neighbour entries."""
        self.agent = None
        self.sandbox.stop()
        self.lab.configure_addresses()
        super().recover()


class FirewallLwipTarget(InFront, LwipLab):
    """The reference stateful firewall, in front of lwIP: IPv4 only, as lwIP
    routes IPv6 beyond its link only through a router it learnt from a
    router advertisement, and the lab sends none."""

    name = "firewall-lwip"
    end_host = "lwip"
    end_host_text = "lwIP"

    @property
    def links(self):
        return {IPV4: self.lab.links[IPV4]}

    def agent_command(self) -> list[str]:
        return ["ip", "netns", "exec", self.lab.target_ns, str(LWIP_AGENT), "--tap", self.tap,
                "--ip", f"{HOST_IP}/{PREFIXLEN}", "--gw", INSIDE_IP, "--mac", TARGET_MAC,
                "--skip-stdin", str(len(AGENT_SOURCE)), "--"]


class FirewallPytcpTarget(InFront, PytcpLab):
    """The reference stateful firewall, in front of PyTCP, whose default
    routes go through the firewall (its link-local address for IPv6)."""

    name = "firewall-pytcp"
    end_host = "pytcp"
    end_host_text = "PyTCP"

    def agent_command(self) -> list[str]:
        return ["ip", "netns", "exec", self.lab.target_ns, sys.executable, "-O",
                str(PYTCP_AGENT), "--tap", self.tap, "--ip", f"{HOST_IP}/{PREFIXLEN}",
                "--ip6", f"{HOST_IP6}/{PREFIXLEN6}", "--mac", TARGET_MAC,
                "--peer-ip", INSIDE_IP, "--peer-ip6", INSIDE_LL6, "--peer-mac", INSIDE_MAC,
                "--gateway", INSIDE_IP, "--gateway6", INSIDE_LL6,
                "--skip-stdin", str(len(AGENT_SOURCE)), "--"]
