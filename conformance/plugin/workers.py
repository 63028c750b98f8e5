"""How many pytest-xdist workers ``-n auto`` starts for a sweep.

A sweep mostly waits (on silences the fences cannot end, on timers), so
more workers than cores overlap more of the waiting; every worker builds a
lab for each stack it is given items of, so the memory a sweep takes grows
with workers x stacks.  ``-n auto`` (what ``./run sweep`` and ``tcpconf
sweep`` pass) gives each stack swept PER_STACK workers, at least LEAST and
at most MOST, and no more than the machine's available memory holds at
LAB_MEMORY a lab.  Measured on the 2-core machine, the four lab stacks with
fences: 4 workers 239 s, 8 workers 136 s, 12 workers 107 s (at first with
three lwIP errors, from the neighbour responder's slow first ARP reply);
once PyTCP's timer ran in 5 ms rounds, 8 workers 135 s and 12 workers
103 s, 1.3 of the 2 cores busy.
"""

from __future__ import annotations

PER_STACK = 3
LEAST = 4
MOST = 12
# What one worker's lab of one stack takes, measured: a four-stack sweep with
# 4 workers peaked at 1.06 GiB, 66 MB a lab; kept with room to spare.
LAB_MEMORY = 100 << 20


def auto_workers(stacks: int, available_memory: int | None) -> int:
    """Workers for a sweep of `stacks` targets, given the bytes of memory
    available (None: unknown)."""
    wanted = max(LEAST, min(MOST, PER_STACK * max(1, stacks)))
    if available_memory is None:
        return wanted
    fits = available_memory // (LAB_MEMORY * max(1, stacks))
    return max(LEAST, min(wanted, fits))


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
