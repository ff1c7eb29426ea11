"""qingsuan simulate end to end: a generated day of a scenario's traffic (generation, the
banks' bulk path, the world's ticks, the metrics) at growing scales, with the wall time,
the transfers per second and the process's peak memory; every check must hold.

    python bench/bench_simulate.py [--file scenarios/national-day.yaml]
                                   [--scales 0.001,0.01,0.1] [--days 1] [--out DIR]

A benchmark, not a test: figures go to docs/SIMULATE.md ("Speed"). Each scale runs in a
process of its own, so that the peak memory is that scale's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

_ONE = """
import json, resource, sys, time
from pathlib import Path
from qingsuan.sim.scenario import load_scenario
from qingsuan.sim.simulate import Options, simulate
file, scale, days, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
result = simulate(load_scenario(file), Options(days=days, scale=scale, seed=1))
wall = time.perf_counter() - t0
t1 = time.perf_counter()
if out:
    result.write(Path(out))
write = time.perf_counter() - t1
print(json.dumps({"items": result.items, "wall_s": wall, "write_s": write,
                  "checks": all(result.summary["checks"].values()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=str(ROOT / "scenarios" / "national-day.yaml"))
    ap.add_argument("--scales", default="0.001,0.01,0.1")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--out", default="", help="also write the outputs (and time it)")
    args = ap.parse_args()
    table = Table(title=f"simulate {Path(args.file).name}, {args.days} day(s)")
    for col in ("scale", "transfers", "wall s", "transfers/s", "write s", "peak MB",
                "checks"):
        table.add_column(col, justify="right")
    for scale in args.scales.split(","):
        done = subprocess.run([sys.executable, "-c", _ONE, args.file, scale, str(args.days),
                               f"{args.out}/{scale}" if args.out else ""],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"scale {scale}: {done.stderr.strip()}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        table.add_row(scale, f"{r['items']:,}", f"{r['wall_s']:.1f}",
                      f"{r['items'] / r['wall_s']:,.0f}",
                      f"{r['write_s']:.1f}" if args.out else "-", f"{r['peak_mb']:,.0f}",
                      "yes" if r["checks"] else "NO")
    Console().print(table)


if __name__ == "__main__":
    main()
