"""HVPS gridlock resolution: value settled and wall time of each algorithm against the MILP.

Instances come from ``qingsuan.cnaps.gridlock.generate`` (seeded): 50 participants x 2,000
queued payments and 200 x 20,000, liquidity 5%, 10% and 20% of each participant's queued
outflow. Every heuristic runs ``--repeats`` times on a fresh instance (so the queue sort is
timed too) and the fastest run is reported. The MILP (HiGHS, cold start: it does not see the
heuristics' answers) runs once with a time limit; percentages are of its best bound, which is
at least the optimum, so they never flatter the heuristics. When the MILP proves optimality
with a zero gap the bound *is* the optimum.

    python bench/bench_gridlock.py [--quick] [--seeds 1,2,3] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from qingsuan.cnaps.gridlock import (
    BoolArray,
    QueueInstance,
    bilateral_offset,
    check_solution,
    fifo_with_retry,
    generate,
    lsm,
    multilateral_offset,
    optimal,
    settled_value,
)

ALGORITHMS: dict[str, Callable[[QueueInstance], BoolArray]] = {
    "FIFO": fifo_with_retry,
    "bilateral": bilateral_offset,
    "multilateral": multilateral_offset,
    "lsm": lsm,
}


@dataclass
class Row:
    participants: int
    payments: int
    share: float
    seed: int
    queued: int
    values: dict[str, int]
    seconds: dict[str, float]
    milp_objective: int
    milp_bound: int
    milp_status: str
    milp_seconds: float
    milp_limit: float


def fresh(inst: QueueInstance) -> QueueInstance:
    """Same arrays, no cached queue order: every timed run pays for sorting the queues."""
    return QueueInstance(inst.liquidity, inst.sender, inst.receiver, inst.amount, inst.priority)


def run_instance(participants: int, payments: int, share: float, seed: int,
                 milp_limit: float, repeats: int) -> Row:
    inst = generate(participants, payments, share, seed)
    values: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for name, algo in ALGORITHMS.items():
        best = float("inf")
        for _ in range(repeats):
            copy = fresh(inst)
            start = time.perf_counter()
            mask = algo(copy)
            best = min(best, time.perf_counter() - start)
        check_solution(inst, mask)
        values[name] = settled_value(inst, mask)
        seconds[name] = best
    start = time.perf_counter()
    res = optimal(inst, time_limit_s=milp_limit)
    milp_seconds = time.perf_counter() - start
    return Row(participants, payments, share, seed, settled_value(inst, np.ones_like(inst.amount,
               dtype=np.bool_)), values, seconds, res.objective, res.bound, res.status,
               milp_seconds, milp_limit)


def pct(value: int, bound: int) -> str:
    # Floored, in exact integers: 99.9996% must not print as 100.000%.
    return f"{value * 100_000 // bound / 1000:.3f}" if bound else "-"


def columns(row: Row) -> list[str]:
    lsm_vs = ("=" if row.values["lsm"] == row.milp_objective
              else f"{row.values['lsm'] - row.milp_objective:+,d}")
    gap = (row.milp_bound - row.milp_objective) / row.milp_bound if row.milp_bound else 0.0
    return [
        f"{row.participants}x{row.payments:,}", f"{row.share:.1%}".replace(".0%", "%"),
        str(row.seed),
        f"{row.queued / 100 / 1e9:,.1f}", pct(row.values["lsm"], row.queued),
        pct(row.values["FIFO"], row.milp_bound), pct(row.values["bilateral"], row.milp_bound),
        pct(row.values["multilateral"], row.milp_bound), pct(row.values["lsm"], row.milp_bound),
        f"{row.seconds['FIFO'] * 1e3:.1f}", f"{row.seconds['multilateral'] * 1e3:.1f}",
        f"{row.seconds['lsm'] * 1e3:.1f}",
        f"{row.milp_status} ({row.milp_limit:.0f} s)", f"{gap * 100:.5f}%",
        f"{row.milp_seconds:.1f}",
        lsm_vs,
    ]


HEADERS = [
    "size", "liq", "seed", "queued bn CNY", "lsm/queued", "FIFO", "bilat", "multi", "lsm",
    "FIFO ms", "multi ms", "lsm ms", "MILP (limit)", "MILP gap", "MILP s", "lsm-MILP fen",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one seed, MILP limits 20 s / 30 s")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--small-limit", type=float, default=60.0,
                        help="MILP time limit (s), 50 x 2,000")
    parser.add_argument("--big-limit", type=float, default=300.0,
                        help="MILP time limit (s), 200 x 20,000")
    parser.add_argument("--shares", default="0.05,0.10,0.20",
                        help="liquidity as a share of each participant's queued outflow")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    shares = [float(s) for s in args.shares.split(",")]
    small_limit, big_limit = args.small_limit, args.big_limit
    if args.quick:
        seeds, small_limit, big_limit = seeds[:1], 20.0, 30.0

    # Wide enough for every column even when the output is piped to a file.
    console = Console(width=200)
    console.print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                  f"{platform.python_implementation()} {platform.python_version()}, "
                  f"numpy {np.__version__}")
    rows: list[Row] = []
    for participants, payments, limit in ((50, 2_000, small_limit), (200, 20_000, big_limit)):
        for share in shares:
            for seed in seeds:
                row = run_instance(participants, payments, share, seed, limit, args.repeats)
                rows.append(row)
                console.print(" | ".join(columns(row)), highlight=False, soft_wrap=True)

    table = Table(title="HVPS gridlock resolution: value settled, % of the MILP bound (>= optimum)")
    for header in HEADERS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*columns(row))
    console.print(table)
    for size in sorted({(r.participants, r.payments) for r in rows}):
        sel = [r for r in rows if (r.participants, r.payments) == size]
        def ratio(r: Row, name: str) -> float:
            return r.values[name] / r.milp_bound if r.milp_bound else 1.0

        worst = min(sel, key=lambda r: ratio(r, "lsm"))
        worst_fifo = min(sel, key=lambda r: ratio(r, "FIFO"))
        console.print(
            f"{size[0]}x{size[1]:,}: lsm worst {pct(worst.values['lsm'], worst.milp_bound)}% "
            f"of the MILP bound, slowest {max(r.seconds['lsm'] for r in sel) * 1e3:.1f} ms; "
            f"FIFO worst {pct(worst_fifo.values['FIFO'], worst_fifo.milp_bound)}%; "
            f"MILP statuses {sorted({r.milp_status for r in sel})}")
    if args.markdown:
        print("| " + " | ".join(HEADERS) + " |")
        print("|" + "---:|" * len(HEADERS))
        for row in rows:
            print("| " + " | ".join(columns(row)) + " |")


if __name__ == "__main__":
    main()
