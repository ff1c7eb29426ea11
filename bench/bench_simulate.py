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
``--cards SCALE`` plays a card day instead (sim/sim_cards.py: the file's traffic block
replaced by cards only; 2,000 participants unless ``--participants`` says): generation,
the switch's batch entry, the cut-off's clearing, with the wall and CPU time.

A benchmark, not a test: figures go to docs/SIMULATE.md ("Speed"). Each scale runs in a
process of its own, so that the peak memory is that scale's.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

_ONE = """
import json, os, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
load0 = os.getloadavg()[0]
from qingsuan.sim.scenario import load_scenario
from qingsuan.sim.simulate import Options, simulate
file, scale, days, out, store = (sys.argv[1], float(sys.argv[2]), int(sys.argv[3]),
                                 sys.argv[4], sys.argv[5])
result = simulate(load_scenario(file), Options(days=days, scale=scale, seed=1, store=store))
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
load = (load0 + os.getloadavg()[0]) / 2
t1 = time.perf_counter()
if out:
    result.write(Path(out))
write = time.perf_counter() - t1
print(json.dumps({"items": result.items, "wall_s": wall, "write_s": write,
                  "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "load": load,
                  "checks": all(result.summary["checks"].values()),
                  "peak_mb": hwm_kb / 1024,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


_CARDS = """
import json, resource, sys, time
t0 = time.perf_counter()
from qingsuan.banks import reconcile
from qingsuan.clock import US_PER_DAY, US_PER_HOUR, US_PER_MINUTE
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import load_scenario
from qingsuan.sim.sim_cards import CardPlayer
from qingsuan.sim.simulate import (directory_columns, midnight_us, network_of,
                                   with_traffic_world)
file, store = sys.argv[1], sys.argv[2]
sc = load_scenario(file)
world_sc = with_traffic_world(sc, sc.traffic)
runner = Runner(world_sc, store=store)
runner.build_world()
world, clock = runner.world, runner.clock
first = midnight_us(sc.start_us)
player = CardPlayer(world, sc.traffic, network_of(world_sc, sc.traffic,
                    directory_columns(world)), 1, first, US_PER_HOUR, 24, 2)
player.start_day(0, first)

def tick_until(at_us):
    while (due := world.next_due_us()) is not None and due <= at_us:
        clock.advance_to(max(due, clock.now_us()))
        runner.engine.tick()

built, built_cpu = time.perf_counter(), time.process_time()
t, end = first, first + US_PER_DAY
while t < end:  # simulate's windows: 10 minutes, cut where the world asks for a tick
    tick_until(t)
    w_end = min(t + 10 * US_PER_MINUTE, end)
    due = world.next_due_us()
    w_end = due if due is not None and t < due < w_end else w_end
    player.play_until(w_end, sc.start_us, clock)
    tick_until(w_end)
    t = w_end
played, played_cpu = time.perf_counter(), time.process_time()
tick_until(end + 10 * US_PER_HOUR)  # the next morning: the CUPS session settles the day
settled, settled_cpu = time.perf_counter(), time.process_time()
usage = resource.getrusage(resource.RUSAGE_SELF)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
cards = player.summary(first, end + 10 * US_PER_HOUR)
banks = world.banks
checks = (reconcile.books_balanced(banks) and reconcile.money_conserved(banks)
          and reconcile.mirrors_match(banks) and reconcile.suspense_explained(banks))
print(json.dumps({"items": cards["generated_items"], "value_fen": cards["generated_value_fen"],
                  "approved": cards["outcomes"].get("approved", {}).get("items", 0),
                  "approved_fen": cards["approved_value_fen"],
                  "cleared": cards["clearing_days"],
                  "settled": [x["at"] for x in cards["settlements"]
                              if x["status"] == "settled"],
                  "build_s": built - t0, "play_s": played - built,
                  "settle_s": settled - played, "wall_s": settled - t0,
                  "build_cpu_s": built_cpu, "play_cpu_s": played_cpu - built_cpu,
                  "settle_cpu_s": settled_cpu - played_cpu,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": hwm_kb / 1024,
                  "checks": checks}))
"""

#: the traffic block of a card day (the file's customers and liquidity, cards only)
_CARD_TRAFFIC = """traffic:
  scale: {scale}
  customers_per_bank: 50
  customer_liquidity: 2.0
  settlement_liquidity: 0.5
  zipf: 1.1
  systems:
    cards: {{}}
"""


def cards(file: str, scale: str, store: str, folder: Path) -> None:
    """A card day played (sim/sim_cards.py): the file's participants and customers, a
    traffic block of cards only, one business day in simulate's windows through the
    switch's batch entry and the cut-off's clearing, then the next morning's CUPS session
    that settles it in HVPS."""
    text = Path(file).read_text(encoding="utf-8")
    head, sep, _ = text.partition("\nevents:" if "\nevents:" in text else "\ntraffic:")
    assert sep, "the scenario needs a traffic: block at its end"
    # a Wednesday: the next morning is a business day (HVPS settles the positions)
    head = re.sub(r"(?m)^start: .*$", "start: 2026-11-25T00:00", head)
    head = re.sub(r"(?m)^run_until: .*$", "run_until: 2026-11-26T23:59", head)
    path = folder / f"cards-{scale}.yaml"
    path.write_text(head + "\n" + _CARD_TRAFFIC.format(scale=scale), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", _CARDS, str(path),
                           str(folder / f"cards-{scale}.db") if store else "memory:"],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"cards {scale}: {done.stderr.strip()}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    Console().print(f"card day at scale {scale}: {r['items']:,} transactions, "
                    f"{r['value_fen'] / 100:,.2f} CNY; {r['approved']:,} approved "
                    f"({r['approved_fen'] / 100:,.2f} CNY); cleared "
                    f"{', '.join(r['cleared'])}, settled {', '.join(r['settled'])}; wall "
                    f"{r['wall_s']:.1f} s (world {r['build_s']:.1f}, day {r['play_s']:.1f}, "
                    f"settlement {r['settle_s']:.1f}), CPU {r['cpu_s']:.1f} s (world "
                    f"{r['build_cpu_s']:.1f}, day {r['play_cpu_s']:.1f}, settlement "
                    f"{r['settle_cpu_s']:.1f}); {r['items'] / r['play_s']:,.0f} "
                    f"transactions/s over the day by wall time, "
                    f"{r['items'] / r['play_cpu_s']:,.0f}/s by CPU time; peak "
                    f"{r['peak_mb']:,.0f} MB; checks {'hold' if r['checks'] else 'FAIL'}")


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
                    help="play a card day at this scale instead (0.01: 10.4 million)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    if args.cards:
        cards(with_participants(args.file, args.participants or 2_000, tmp), args.cards,
              args.store, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.participants:
        args.file = with_participants(args.file, args.participants, tmp)
    table = Table(title=f"simulate {Path(args.file).name}, {args.days} day(s)")
    for col in ("scale", "transfers", "wall s", "CPU s (user + sys)", "load",
                "transfers/s", "write s", "peak MB", "checks"):
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
                      f"{r['user_s'] + r['sys_s']:.1f} ({r['user_s']:.1f} + "
                      f"{r['sys_s']:.1f})", f"{r['load']:.1f}",
                      f"{r['items'] / r['wall_s']:,.0f}",
                      f"{r['write_s']:.1f}" if args.out else "-", f"{r['peak_mb']:,.0f}",
                      "yes" if r["checks"] else "NO")
    Console(width=160).print(table)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
