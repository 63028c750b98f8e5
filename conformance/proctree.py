"""The host's processes as a tree, read from /proc: whom the suite may
signal is found by parent PID, never by name."""

from __future__ import annotations

import os


def process_tree() -> dict[int, list[int]]:
    """Each live PID's direct children (/proc/PID/stat's fourth field)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def children(pid: int) -> list[int]:
    """The PIDs of `pid`'s direct children."""
    return process_tree().get(pid, [])
