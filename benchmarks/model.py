"""Benchmark: the reference model's step rate.

Runs SEGMENT ARRIVES (conformance.model) on every cell of the state-event
grid (the 360 segments the cells send, from the TCBs the setups reach), and
on as many random segments with random flags, sequence numbers and lengths
against random synchronized TCBs; prints the steps per second of each, and
how many random events the model leaves undecided (Unmodelled), measured
in one run.  Pure Python: no root, no lab.

Usage (from the repository root):
    .venv/bin/python benchmarks/model.py [--steps 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance import tcp  # noqa: E402
from conformance.grid import rule_table  # noqa: E402
from conformance.model import Segment, Unmodelled, segment_arrives  # noqa: E402
from conformance.model.setups import after_setup  # noqa: E402
from conformance.model.tcb import SYNCHRONIZED  # noqa: E402


def grid_events() -> list:
    table = rule_table()
    events = []
    for state in table.states:
        tcb = after_setup(state)
        for name, seg in table.segments.items():
            flags = tcp.parse_flags(seg["flags"])[0]
            for offset in (0, 100, -1, tcb.rcv_wnd - 1, tcb.rcv_wnd):
                events.append((tcb, Segment(flags, (tcb.rcv_nxt + offset) % 2**32,
                                            ack=tcb.snd_nxt, length=seg.get("len", 0))))
    return events


def random_events(count: int, rng: random.Random) -> list:
    events = []
    for _ in range(count):
        tcb = after_setup(rng.choice(SYNCHRONIZED), iss=rng.getrandbits(32),
                          irs=rng.getrandbits(32)).moved(rcv_wnd=rng.choice((0, 1, 1000, 64240)))
        near = rng.choice((tcb.rcv_nxt, tcb.rcv_nxt + tcb.rcv_wnd, rng.getrandbits(32)))
        seq = (near + rng.randint(-3, 3)) % 2**32
        ack = rng.choice((tcb.snd_nxt, tcb.snd_una, rng.getrandbits(32)))
        events.append((tcb, Segment(rng.getrandbits(6), seq, ack=ack,
                                    length=rng.choice((0, 0, 1, 10, 1460)))))
    return events


def rate(events: list) -> tuple[float, int]:
    undecided = 0
    start = time.perf_counter()
    for tcb, seg in events:
        try:
            segment_arrives(tcb, seg)
        except Unmodelled:
            undecided += 1
    return len(events) / (time.perf_counter() - start), undecided


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rule_table()       # read the table once, outside the timing
    grid = grid_events()
    per_second, _ = rate(grid * max(1, args.steps // len(grid)))
    print(f"grid cells' segments: {per_second:,.0f} steps/s")
    events = random_events(args.steps, random.Random(args.seed))
    per_second, undecided = rate(events)
    print(f"random segments:      {per_second:,.0f} steps/s "
          f"({undecided} of {len(events)} not decided by the model yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
