"""Benchmark: sweeps bound by the wire, in one run (issue 19's table).

Prints, measured one after the other on this machine:
- each stack's fast sweep (the catalogue's cases, both families) without
  fences and with them: wall time, and the seconds spent in windows that
  ended with no answer (results.json `unanswered`, summed over the checks);
- the four stacks swept together, with fences, next to the slowest stack
  swept alone;
- one case from a cold process (benchmarks/coldstart.py's figure);
- packetdrill on the same scenario, when a `packetdrill` binary is on PATH
  (the column is skipped otherwise).
Every sweep is `pytest -p conformance.plugin cases` as `tcpconf sweep` runs
it, with the worker count given (default: auto, conformance/plugin/workers.py).

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/wirebound.py [--target linux,lwip,gvisor,pytcp] [-n auto]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from coldstart import measure as cold_start  # noqa: E402
from fences import cut, figures, sweep, verdicts_changed  # noqa: E402

from conformance.compare import compare  # noqa: E402
from conformance.fence import OFF, ON  # noqa: E402

COLD_CASE = "cases/handshake/passive-open.yaml"
# The same scenario as packetdrill sees it: a passive open, the tester's SYN
# answered by the target's SYN-ACK, then its ACK.
PACKETDRILL_SCRIPT = """\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 65535 <mss 1460>
+0  > S. 0:0(0) ack 1 <...>
+0  < . 1:1(0) ack 1 win 65535
+0  accept(3, ..., ...) = 4
"""


PACKETDRILL_ADDRESSES = ("--local_ip=198.18.100.1 --remote_ip=198.18.100.2 "
                         "--gateway_ip=198.18.100.3 --netmask_ip=255.255.255.0")


def packetdrill(runs: int) -> float | None:
    """The median wall time of packetdrill running the scenario, or None
    without packetdrill."""
    binary = shutil.which("packetdrill")
    if binary is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pkt") as script:
        script.write(PACKETDRILL_SCRIPT)
        script.flush()
        took = []
        for _ in range(runs):
            started = time.monotonic()
            # Its own namespace, lab addresses: its tun device and route stay there.
            subprocess.run(["unshare", "-n", "sh", "-c",
                            f"ip link set lo up && {binary} {PACKETDRILL_ADDRESSES} "
                            f"{script.name}"], capture_output=True)
            took.append(time.monotonic() - started)
    return statistics.median(took)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="linux,lwip,gvisor,pytcp")
    parser.add_argument("-n", "--workers", default="auto")
    parser.add_argument("--family", default="ipv4,ipv6")
    parser.add_argument("--runs", type=int, default=5, help="cold starts to take the median of")
    args = parser.parse_args()
    stacks = args.target.split(",")
    rows, alone = [], {}
    with tempfile.TemporaryDirectory(prefix="tcpconf-wirebound-") as tmp:
        for stack in stacks:
            off_wall, off = sweep(stack, OFF, args.workers, None, args.family, Path(tmp))
            on_wall, on = sweep(stack, ON, args.workers, None, args.family, Path(tmp))
            rows.append((stack, off_wall, on_wall, figures(off), figures(on),
                         verdicts_changed(compare(off, on))))
            alone[stack] = on_wall
        together_wall, together = sweep(",".join(stacks), ON, args.workers, None, args.family,
                                        Path(tmp))
    cold = cold_start(COLD_CASE, args.runs)
    drill = packetdrill(args.runs)

    print(f"{'stack':<8} {'checks':>6} {'wall off':>9} {'wall on':>8} {'unanswered off':>15} "
          f"{'on':>7} {'cut':>5} {'fenced':>7} {'verdicts changed':>17}")
    total_off = total_on = 0.0
    for stack, off_wall, on_wall, off, on, changed in rows:
        total_off, total_on = total_off + off["unanswered"], total_on + on["unanswered"]
        print(f"{stack:<8} {off['checks']:>6} {off_wall:>8.1f}s {on_wall:>7.1f}s "
              f"{off['unanswered']:>14.1f}s {on['unanswered']:>6.1f}s {cut(off, on):>5.0%} "
              f"{on['fenced']:>7} {changed:>17}")
    all_cut = cut({"unanswered": total_off}, {"unanswered": total_on})
    print(f"{'all':<8} {'':>6} {'':>9} {'':>8} {total_off:>14.1f}s {total_on:>6.1f}s "
          f"{all_cut:>5.0%}")
    slowest = max(alone, key=alone.get)
    print(f"\n{len(stacks)} stacks together, fences on: {together_wall:.1f} s for "
          f"{len(together.records)} checks, {together_wall / alone[slowest]:.2f}x the slowest "
          f"stack alone ({slowest}, {alone[slowest]:.1f} s)")
    case_line = next(name for name in cold if name.startswith("tcpconf sweep"))
    print(f"one case from a cold process ({case_line}, median of {args.runs}): "
          f"{cold[case_line][0]:.2f} s (imports {cold['imports of a sweep'][0]:.2f} s, "
          f"python itself {cold['python -c pass'][0]:.2f} s)")
    if drill is None:
        print("packetdrill: not installed, its column skipped")
    else:
        print(f"packetdrill, the same passive open, median of {args.runs}: {drill:.2f} s")
    print("\nunanswered: seconds in windows that ended with no answer, summed over the checks "
          "(every worker's); verdicts changed: `tcpconf compare` of the sweeps without and "
          "with fences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
