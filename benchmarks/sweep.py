"""Benchmark: where a sweep's time goes.

Prints, for every case in cases/, its wall time next to the time it waited
for nothing (wait steps, and every window that ended with no answer: a
silence, an expect the target did not meet, a one_of answered by silence):
the difference is the suite's own cost.  Then the injector's round trip per exchange (from the
engine deciding to send a segment to the engine holding the matched answer)
next to a raw-socket floor measured in the same lab and the same run: a
pre-serialised SYN written to the packet socket and its SYN-ACK read back, with
no Scapy, no engine and no case language in between.

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/sweep.py [--repeat N] [--grid] [--target linux|lwip|gvisor|pytcp]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conformance.casefile import load_case_file  # noqa: E402
from conformance.runner import Runner  # noqa: E402
from conformance.targets import TARGETS  # noqa: E402
from conformance.wire import build_frame  # noqa: E402
from conformance import tcp  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f}"


def raw_floor(runner: Runner, count: int) -> list[float]:
    """SYN -> SYN-ACK round trips on the bare packet sockets."""
    agent, wire = runner.target.agent, runner.wire
    link = wire.links["ipv4"]
    port = 9999
    listener = agent.call("listen", port=port, backlog=count + 8)["sock"]
    frames = [build_frame(link, 30000 + i, port, 1000 * i, 0, tcp.SYN, 65535,
                          options=[("mss", 1460)]) for i in range(count)]
    wire.capture._filter(f"tcp and src host {link.target_ip} and src port {port}")
    times = []
    try:
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            wire.send(frame)
            while True:
                got = wire.receive(time.time() + 1.0)
                if got is None:
                    raise RuntimeError("no SYN-ACK within 1 s during the floor measurement")
                # the sport check is all the parsing the floor does
                if not got.outgoing and int.from_bytes(got.data[36:38], "big") == 30000 + i:
                    break
            times.append(time.perf_counter() - start)
    finally:
        agent.call("close", sock=listener)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="sweeps to run (default 3)")
    parser.add_argument("--floor-count", type=int, default=200)
    parser.add_argument("--grid", action="store_true",
                        help="also the state-event grid's 360 cells (written cases only by default)")
    parser.add_argument("--target", default="linux", choices=sorted(TARGETS),
                        help="the stack to sweep (default linux)")
    args = parser.parse_args()

    # The fast cases over IPv4, one process: where the time of one case goes.
    # (Whole sweeps with parallel workers: time ./run sweep, ./run sweep -m slow.)
    cases = [case for path in sorted((REPO / "cases").rglob("*.yaml"))
             for case in load_case_file(path)
             if "slow" not in case.marks and "ipv4" in case.families
             and (args.grid or "grid" not in case.marks)]
    started = time.perf_counter()
    with Runner.for_target(args.target) as runner:
        lab_up = time.perf_counter() - started
        results: dict[str, list] = {case.id: [] for case in cases}
        sweep_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for case in cases:
                results[case.id].append(runner.run(case))
            sweep_times.append(time.perf_counter() - t0)
        floor = raw_floor(runner, args.floor_count)
    total = time.perf_counter() - started

    print(f"TCP conformance sweep benchmark: {len(cases)} cases x {args.repeat} sweeps, "
          f"{args.target} in the lab\n")
    print(f"{'case':44} {'verdict':7} {'wall ms':>8} {'waits ms':>8} {'own ms':>8} "
          f"{'exch':>4} {'rtt ms':>8}")
    all_exchanges = []
    for case in cases:
        verdicts = results[case.id]
        wall = statistics.median(v.wall_time for v in verdicts)
        waits = statistics.median(v.protocol_waits for v in verdicts)
        exchanges = [x for v in verdicts for x in v.exchanges]
        all_exchanges += exchanges
        rtt = ms(statistics.median(exchanges)) if exchanges else "       -"
        outcome = "/".join(sorted({v.outcome for v in verdicts}))
        print(f"{case.id:44} {outcome:7} {ms(wall)} {ms(waits)} {ms(wall - waits)} "
              f"{len(exchanges) // len(verdicts):4} {rtt}")
    print()
    print(f"lab start (namespaces, veth, stack):  {ms(lab_up)} ms")
    print(f"sweep wall time, median of {args.repeat}:       {ms(statistics.median(sweep_times))} ms")
    print(f"whole benchmark:                      {ms(total)} ms")

    def spread(values):
        values = sorted(values)
        return (f"median {ms(statistics.median(values))} ms, p90 "
                f"{ms(values[int(len(values) * 0.9)])} ms, n={len(values)}")
    print(f"injector round trip per exchange:     {spread(all_exchanges)}")
    print(f"raw-socket floor (SYN -> SYN-ACK):    {spread(floor)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
