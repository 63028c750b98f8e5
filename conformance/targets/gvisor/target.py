"""The target `--target gvisor`: a lab the suite builds, with netstack in a sandbox."""

from __future__ import annotations

from ...agent_client import AgentFailure
from ...faults import Faults
from ...lab import Lab, LabError
from ..base import HELD, Target
from .sandbox import GvisorError, GvisorSandbox


class GvisorLab(Target):
    """gVisor's netstack in a lab the suite builds.

    The lab is the Linux lab unchanged: its permanent neighbour entries for
    the tester are copied by runsc into netstack as static entries, so no ARP
    or neighbour discovery happens and no responder is needed.  Linux sysctls
    do not apply to netstack, so there is no set_sysctl(): a case that needs
    one is not applicable here.

    States come from the /proc/net/tcp that gVisor shows inside the sandbox
    (it has no sock_diag), which lists only the sockets of the process that
    reads it: the agent's.  Hence ``state_view = HELD``."""

    name = "gvisor"
    state_view = HELD
    state_view_reason = ("gVisor lists only the sockets the application holds: not a "
                         "connection before accept(), nor one after close()")

    def __init__(self, sysctls: dict | None = None, tag: str | None = None,
                 python: str = "/usr/bin/python3", faults: Faults | None = None):
        kwargs = {"tag": tag} if tag else {}
        self.lab = Lab(**kwargs, faults=faults)
        self.sandbox = GvisorSandbox(self.lab.target_ns, python=python)
        self.agent = None
        # Asked for on the command line for every target; netstack has none of them.
        self.ignored_sysctls = dict(sysctls or {})

    @property
    def links(self):
        return self.lab.links

    def start(self) -> None:
        self.lab.build()
        try:
            self.agent = self.sandbox.start()
        except (GvisorError, AgentFailure, OSError) as exc:
            self.stop()
            raise LabError(f"gVisor did not start in {self.lab.target_ns}: {exc}") from None

    def stop(self) -> None:
        self.agent = None
        try:
            self.sandbox.stop()
        finally:
            self.lab.destroy()

    def alive(self) -> bool:
        """False once the sandbox is gone (netstack panics take the whole sandbox
        down, and the agent with it)."""
        return (self.agent is not None and self.agent.alive() and self.sandbox.proc is not None
                and self.sandbox.proc.poll() is None)

    def post_mortem(self) -> str:
        """The panic message of a sentry that died (the first line of its
        panic log: "panic: ..."), or nothing."""
        return self.sandbox.panic_message()

    # A panic message is netstack's own (the sentry logs it as it dies).
    crash_is_the_stacks = True

    def recover(self) -> None:
        """A fresh sandbox on the same lab after the previous one died: stop()
        puts the addresses and neighbour entries back, start() hands them to
        the new netstack."""
        self.agent = None
        self.sandbox.stop()
        try:
            self.agent = self.sandbox.start()
        except (GvisorError, AgentFailure, OSError) as exc:
            raise LabError(f"gVisor did not restart in {self.lab.target_ns}: {exc}") from None

    def settings(self) -> dict:
        values = self.sandbox.settings()
        values["link"] = self.lab.link_text
        if self.lab.faults is not None:
            values["link faults"] = self.lab.faults.describe()
        if self.ignored_sysctls:
            values["IGNORED Linux sysctls"] = ", ".join(self.ignored_sysctls)
        return values

    def describe(self) -> str:
        return f"gvisor ({self.lab.target_ns})"
