"""The host guard: keep the tester host's own kernel out of the test flows.

When the suite sends from an address the host itself owns (a remote target
tested from the host's own address), the host's kernel sees the target's
answers too.  It has no socket for the suite's flows, so by RFC 9293 3.10.7.1
it answers every one of them with a RST (the lab notes measured one 28 us
after a SYN-ACK), and the target would be judged on a conversation it never
had with the suite alone.

The guard is one nftables table in the host's namespace that drops the
host kernel's outgoing RSTs from the tester address to the target, for the
suite's tester ports only: the suite's own segments leave through a packet
socket, which no netfilter hook sees, and every other flow of the host is
untouched.  The table's name carries the PID of the process that made it, so
a table left behind by a killed run is recognised and removed at the next
start, as the lab does with its namespaces.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import subprocess
from dataclasses import dataclass

from .lab import LabError, pid_alive

TABLE_PREFIX = "tcpconf_guard"
_TABLE = re.compile(rf"^table inet ({TABLE_PREFIX}_(\d+)_\d+)$")
_numbers = itertools.count(1)


def _nft(*args: str, check: bool = True, script: str | None = None) -> str:
    try:
        result = subprocess.run(["nft", *args], input=script, capture_output=True, text=True)
    except FileNotFoundError:
        raise LabError("the host guard needs nft: install it with 'apt-get install "
                       "nftables'") from None
    if check and result.returncode != 0:
        raise LabError(f"'nft {' '.join(args)}' failed: {result.stderr.strip()}")
    return result.stdout


def remove_stale_guards() -> list[str]:
    """Delete the guard tables of runs whose process is gone."""
    removed = []
    for line in _nft("list", "tables", check=False).splitlines():
        match = _TABLE.match(line.strip())
        if match and int(match.group(2)) != os.getpid() and not pid_alive(int(match.group(2))):
            _nft("delete", "table", "inet", match.group(1), check=False)
            removed.append(match.group(1))
    return removed


@dataclass
class HostGuard:
    """Drops the host kernel's RSTs from `tester_ip` to `target_ip` sent
    from `tester_ports`, while installed."""

    pairs: list[tuple[str, str]]      # (tester address, target address), one per family
    tester_ports: range
    table: str = ""

    def rules(self) -> list[str]:
        ports = f"{self.tester_ports.start}-{self.tester_ports.stop - 1}"
        rules = []
        for tester_ip, target_ip in self.pairs:
            ip = "ip6" if ipaddress.ip_address(target_ip).version == 6 else "ip"
            rules.append(f"{ip} saddr {tester_ip} {ip} daddr {target_ip} tcp sport {ports} "
                         f"tcp flags & rst == rst drop")
        return rules

    def install(self) -> None:
        remove_stale_guards()
        self.table = f"{TABLE_PREFIX}_{os.getpid()}_{next(_numbers)}"
        # One transaction: the table is there with all its rules, or not at all.
        script = [f"add table inet {self.table}",
                  f"add chain inet {self.table} output "
                  f"{{ type filter hook output priority raw ; policy accept ; }}"]
        script += [f"add rule inet {self.table} output {rule}" for rule in self.rules()]
        try:
            _nft("-f", "-", script="\n".join(script) + "\n")
        except LabError as exc:
            self.table = ""
            raise LabError(f"cannot install the host guard: {exc}") from None

    def remove(self) -> None:
        """Idempotent; safe on every way out."""
        if self.table:
            _nft("delete", "table", "inet", self.table, check=False)
            self.table = ""

    def describe(self) -> str:
        return f"nftables table inet {self.table or '(not installed)'}: " + "; ".join(self.rules())
