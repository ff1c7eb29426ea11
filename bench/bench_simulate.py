"""qingsuan simulate end to end: a generated day of a scenario's traffic (generation, the
banks' bulk path, the world's ticks, the metrics) at growing scales, with the wall time,
the transfers per second and the process's peak memory; every check must hold.

    python bench/bench_simulate.py [--file scenarios/national-day.yaml]
                                   [--scales 0.001,0.01,0.1] [--days 1] [--out DIR]
                                   [--participants 2000] [--store x.db] [--profile DIR]
    python bench/bench_simulate.py --cards 0.01 [--participants 2000]

``--participants N`` adds city commercial banks after the file's participants until there
are N (the issue's national day has 2,000); ``--store`` puts the command log on SQLite (a
new file per scale); ``--profile DIR`` runs each scale under py-spy (raw stacks in DIR).
``--cards SCALE`` only generates a card day (sim/sim_cards.py): the switch cannot play
it yet.

A benchmark, not a test: figures go to docs/SIMULATE.md ("Speed"). Each scale runs in a
process of its own, so that the peak memory is that scale's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

_ONE = """
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from qingsuan.sim.scenario import load_scenario
from qingsuan.sim.simulate import Options, simulate
file, scale, days, out, store = (sys.argv[1], float(sys.argv[2]), int(sys.argv[3]),
                                 sys.argv[4], sys.argv[5])
result = simulate(load_scenario(file), Options(days=days, scale=scale, seed=1, store=store))
wall = time.perf_counter() - t0
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
t1 = time.perf_counter()
if out:
    result.write(Path(out))
write = time.perf_counter() - t1
print(json.dumps({"items": result.items, "wall_s": wall, "write_s": write,
                  "checks": all(result.summary["checks"].values()),
                  "peak_mb": hwm_kb / 1024,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_CARDS = """
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from qingsuan.clock import parse_time
from qingsuan.sim.sim_cards import NOT_PLAYABLE, CardDay, CardTraffic, day_totals
from qingsuan.sim.traffic import Member, Network
scale, banks = float(sys.argv[1]), int(sys.argv[2])
network = Network([Member(f"B{k}", True, np.arange(k * 50, (k + 1) * 50))
                   for k in range(banks)], 1.1)
day = CardDay(CardTraffic(scale=scale), network, 1, 0, parse_time("2026-09-30T00:00"))
items, value, _, _ = day_totals(day, banks)
wall = time.perf_counter() - t0
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
print(json.dumps({"items": items, "value_fen": value, "wall_s": wall,
                  "peak_mb": hwm_kb / 1024, "refused": NOT_PLAYABLE}))
"""


def cards(scale: str, banks: int) -> None:
    """A card day generated (slot by slot, not played: the switch has no batch entry)."""
    done = subprocess.run([sys.executable, "-c", _CARDS, scale, str(banks)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"cards {scale}: {done.stderr.strip()}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    Console().print(f"card day at scale {scale}, {banks:,} banks: {r['items']:,} "
                    f"transactions, {r['value_fen'] / 100:,.2f} CNY generated in "
                    f"{r['wall_s']:.1f} s ({r['items'] / r['wall_s']:,.0f}/s), peak "
                    f"{r['peak_mb']:,.0f} MB; not played: {r['refused']}")


def with_participants(file: str, total: int, folder: Path) -> str:
    """The scenario with city commercial banks (313, codes with their check digit) added
    after its listed participants until there are ``total``, written into ``folder``."""
    from qingsuan.cnaps.participants import check_digit
    from qingsuan.sim.scenario import load_scenario

    listed = len(load_scenario(file).participants)
    lines = []
    for k in range(max(total - listed, 0)):
        body = f"313{1000 + k // 1000:04d}{k % 1000:04d}"
        lines.append(f'  - {{name: CCB{k:04d}, code: "{body}{check_digit(body)}"}}')
    text = Path(file).read_text(encoding="utf-8")
    head, sep, tail = text.partition("\ncustomers:")
    assert sep, "the scenario needs a customers: list after its participants"
    path = folder / f"{Path(file).stem}-{total}.yaml"
    path.write_text(head + "\n" + "\n".join(lines) + sep + tail, encoding="utf-8")
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=str(ROOT / "scenarios" / "national-day.yaml"))
    ap.add_argument("--scales", default="0.001,0.01,0.1")
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--out", default="", help="also write the outputs (and time it)")
    ap.add_argument("--participants", type=int, default=0,
                    help="add city commercial banks until there are this many")
    ap.add_argument("--store", default="",
                    help="a SQLite file name: the log on SQLite (scale appended)")
    ap.add_argument("--profile", default="", help="py-spy raw stacks into this folder")
    ap.add_argument("--cards", default="",
                    help="only generate a card day at this scale (0.01: 10.4 million)")
    args = ap.parse_args()
    if args.cards:
        cards(args.cards, args.participants or 2_000)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    if args.participants:
        args.file = with_participants(args.file, args.participants, tmp)
    table = Table(title=f"simulate {Path(args.file).name}, {args.days} day(s)")
    for col in ("scale", "transfers", "wall s", "transfers/s", "write s", "peak MB",
                "checks"):
        table.add_column(col, justify="right")
    for scale in args.scales.split(","):
        store = f"{tmp / scale}-{Path(args.store).name}" if args.store else "memory:"
        command = [sys.executable, "-c", _ONE, args.file, scale, str(args.days),
                   f"{args.out}/{scale}" if args.out else "", store]
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            command = [str(Path(sys.executable).parent / "py-spy"), "record", "-f", "raw",
                       "-r", "20", "-o", f"{args.profile}/simulate-{scale}.txt", "--",
                       *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"scale {scale}: {done.stderr.strip()}")
        r = json.loads(next(line for line in reversed(done.stdout.splitlines())
                            if line.startswith("{")))
        table.add_row(scale, f"{r['items']:,}", f"{r['wall_s']:.1f}",
                      f"{r['items'] / r['wall_s']:,.0f}",
                      f"{r['write_s']:.1f}" if args.out else "-", f"{r['peak_mb']:,.0f}",
                      "yes" if r["checks"] else "NO")
    Console().print(table)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
