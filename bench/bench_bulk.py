"""The bulk path through the banks: customer transfers as columns, bank debit to payee
credit (banks/bulk.py), in memory and durable (SQLite), with 1,000,000 customers in 100
banks. Transfers mix the four routes (行内, BEPS, IBPS urgent, HVPS above the BEPS limit);
every check (books balanced, money conserved, mirrors, suspense) must hold after the run.

    python bench/bench_bulk.py [--customers 1000000] [--transfers 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from qingsuan.banks import reconcile
from qingsuan.banks.bulk import BulkCode
from qingsuan.clock import parse_time
from qingsuan.sim.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_world import world


def workload(customers: int, n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    payer = rng.integers(0, customers, n)
    payee = (payer + rng.integers(1, customers, n)) % customers
    amount = rng.choice([10_000, 20_000, 50_000, 6_000_000], n, p=[0.4, 0.3, 0.29, 0.01])
    urgent = rng.random(n) < 0.3
    return payer, payee, amount, urgent


def run(customers: int, transfers: int, runs: int, store: str | None) -> list[float]:
    rates = []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        url = "memory:" if store is None else str(Path(tmp) / "bulk.db")
        runner = Runner(world(customers, 0, 0, card_holders=0), store=url)
        t0 = time.perf_counter()
        runner.build_world()
        kind = "memory" if store is None else "SQLite"
        Console().print(f"  world of {customers:,} customers built in "
                        f"{time.perf_counter() - t0:.1f} s ({kind})")
        runner.clock.advance_to(parse_time("2026-11-25T10:00"))
        banks = runner.world.banks
        t0 = time.perf_counter()
        banks.bulk_columns()  # the directory as columns: built once, then kept
        Console().print(f"  directory as columns in {time.perf_counter() - t0:.1f} s")
        for k in range(runs):
            payer, payee, amount, urgent = workload(customers, transfers, k)
            t0 = time.perf_counter()
            codes = banks.bulk_transfers(payer, payee, amount, urgent)
            rates.append(transfers / (time.perf_counter() - t0))
            credited = float(np.mean(codes == BulkCode.CREDITED))
            Console().print(f"  run {k + 1}: {rates[-1]:,.0f} transfers/s, "
                            f"{credited:.1%} credited")
        assert reconcile.books_balanced(banks) and reconcile.money_conserved(banks)
        assert reconcile.mirrors_match(banks) and reconcile.suspense_explained(banks)
        runner.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    console.print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs; "
                  f"{args.customers:,} customers in 100 banks, {args.transfers:,} "
                  "transfers per command")
    table = Table("store", "min /s", "median /s", "max /s", "target")
    for store, target in ((None, ">= 1,000,000"), ("sqlite", ">= 500,000")):
        rates = run(args.customers, args.transfers, args.runs, store)
        table.add_row("memory" if store is None else "SQLite (durable)",
                      f"{min(rates):,.0f}", f"{statistics.median(rates):,.0f}",
                      f"{max(rates):,.0f}", target)
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
