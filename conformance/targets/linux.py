"""The Linux kernel's own stack in a lab namespace: the suite's default target."""

from __future__ import annotations

import sys

from ..agent_client import AgentClient, AgentFailure
from ..faults import Faults
from ..lab import Lab, LabError, preflight
from ..wire import Link
from .base import Target


class LinuxLab(Target):
    """The Linux kernel's own stack, in a target namespace the suite builds."""

    name = "linux"

    def __init__(self, sysctls: dict | None = None, tag: str | None = None,
                 faults: Faults | None = None):
        kwargs = {"sysctls": dict(sysctls or {}), "faults": faults}
        if tag:
            kwargs["tag"] = tag
        self.lab = Lab(**kwargs)
        self.agent = None
        self._nft_rules: list[str] = []
        self._altered_sysctls: dict[str, str] = {}   # key -> value before the alteration
        self._altered_mtu = False

    @property
    def links(self) -> dict[str, Link]:
        return self.lab.links

    def start(self) -> None:
        prefix = ["ip", "netns", "exec", self.lab.target_ns]

        def spawn_agent():
            # The agent's interpreter starts while the lab's links are made.
            self.agent = AgentClient(AgentClient.spawn(prefix, python=sys.executable), prefix)
        try:
            self.lab.build(then=spawn_agent)
            self.agent.ready()
        except AgentFailure as exc:
            self.stop()
            raise LabError(f"the target agent did not start in {self.lab.target_ns}: {exc}") \
                from None
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
            self.agent = None
        self.lab.destroy()

    def settings(self) -> dict:
        values = {"stack": "Linux kernel TCP, in a network namespace the suite built"}
        if self.agent is not None:
            values["target system"] = self.agent.hello.get("system", "?")
        values.update(self.lab.settings())
        if self._nft_rules:
            values["ALTERED by nftables rules"] = "; ".join(self._nft_rules)
        if self._altered_sysctls:
            values["ALTERED settings"] = ", ".join(self._altered_sysctls)
        if self._altered_mtu:
            values["ALTERED link MTU"] = "yes"
        return values

    def describe(self) -> str:
        return f"linux ({self.lab.target_ns})"

    # -- deliberate alterations, for showing that cases can fail ------------

    def set_sysctl(self, key: str, value) -> str:
        return self.lab.set_sysctl(key, str(value))

    def alter_sysctl(self, key: str, value) -> None:
        """Change a target setting until clear_alterations() puts it back."""
        old = self.set_sysctl(key, value)
        self._altered_sysctls.setdefault(key, old)

    def alter_mtu(self, mtu: int) -> None:
        """Change the target link's MTU until clear_alterations()."""
        self.lab.set_mtu(mtu)
        self._altered_mtu = True

    def run_in_target(self, *argv: str) -> str:
        """Run a command in the target namespace (e.g. to change its MTU)."""
        return self.lab.in_target(*argv)

    def add_nft_rule(self, hook: str, rule: str) -> None:
        """Alter the target with an nftables rule in its own namespace.

        `hook` is "in" (segments arriving at the target, before its TCP sees
        them) or "out" (segments its TCP sends).  Examples: ("out", "tcp flags
        & rst == rst drop") makes the target never send a RST; ("in", "tcp
        flags == fin tcp flags set fin | ack") makes it treat a FIN without
        ACK as a FIN+ACK, as lwIP does."""
        if hook not in ("in", "out"):
            raise LabError(f"an nftables alteration needs the hook 'in' or 'out', not {hook!r}")
        problems = preflight(("nft",))
        if problems:
            raise LabError("; ".join(problems))
        if not self._nft_rules:
            self.lab.in_target("nft", "add table inet tcpconf_alter")
            self.lab.in_target("nft", "add chain inet tcpconf_alter in "
                                      "{ type filter hook prerouting priority raw ; }")
            self.lab.in_target("nft", "add chain inet tcpconf_alter out "
                                      "{ type filter hook output priority raw ; }")
        self.lab.in_target("nft", f"add rule inet tcpconf_alter {hook} {rule}")
        self._nft_rules.append(f"{hook}: {rule}")

    def before_rerun(self) -> None:
        """The alteration rules made afresh: a rule with state (an nftables quota
        that lets one FIN through and drops the next) must not carry what the
        first run used into the next."""
        if self._nft_rules:
            rules = [entry.split(": ", 1) for entry in self._nft_rules]
            self.lab.in_target("nft", "delete table inet tcpconf_alter", check=False)
            self._nft_rules = []
            for hook, rule in rules:
                self.add_nft_rule(hook, rule)

    def clear_alterations(self) -> None:
        if self._nft_rules:
            self.lab.in_target("nft", "delete table inet tcpconf_alter", check=False)
            self._nft_rules = []
        for key, value in self._altered_sysctls.items():
            self.set_sysctl(key, value)
        self._altered_sysctls = {}
        if self._altered_mtu:
            self.lab.set_mtu(1500)
            self._altered_mtu = False
