"""The processes a runsc sandbox is made of, found and ended by PID.

`runsc run` starts runsc-gofer, runsc-sandbox and the ptrace stubs, which do
not all end with it.  They are found as descendants of the process the suite
started, and remembered with their start times: a PID the kernel has given
to a later process since is never signalled.
"""

from __future__ import annotations

import os
import signal
import time

from ...proctree import process_tree


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process from a later one with its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def descendants(pid: int) -> list[int]:
    """The PIDs of all live descendants of `pid` (not `pid` itself)."""
    children = process_tree()
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


class StartedProcesses:
    """The processes under one root PID, each with the start time it had when seen."""

    def __init__(self):
        self._known: dict[int, str] = {}            # pid -> start time

    def remember(self, root: int) -> None:
        """Note `root` and its live descendants (those seen first keep their time)."""
        for pid in [root, *descendants(root)]:
            started = start_time(pid)
            if started is not None:
                self._known.setdefault(pid, started)

    def kill(self) -> None:
        """SIGKILL, by PID, every process remembered that is still the same process,
        until none is left (for at most 5 s); then forget them all."""
        deadline = time.monotonic() + 5
        while self._known and time.monotonic() < deadline:
            alive = {pid: t for pid, t in self._known.items() if start_time(pid) == t}
            self._known = alive
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if alive:
                time.sleep(0.05)
        self._known = {}
