"""Ledger throughput: 1,000,000 transfers between 200 accounts in batches of 8,190.

Each mode runs the same pre-generated workload (amounts 1 to 100,000 fen, seeded) through
``Engine.submit_transfers``: encode, append to the command log (durable: fsync per batch for
SQLite, commit per batch for PostgreSQL) and only then apply. Run 5 times; report min,
median and max transfers per second. ``--quick`` runs a tenth of the workload once.

    python bench/bench_ledger.py [--runs 5] [--modes memory,sqlite,postgres] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid

import numpy as np
from rich.console import Console
from rich.table import Table

from qingsuan.clock import VirtualClock
from qingsuan.engine import Engine
from qingsuan.ledger import Account, AccountFlags, NormalSide, TransferBatch

ACCOUNTS = 200
BATCH = 8190
PG_DSN = os.environ.get("QINGSUAN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def workload(total: int, seed: int = 42) -> list[TransferBatch]:
    rng = np.random.default_rng(seed)
    batches = []
    next_id = 1_000_000
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        dr = rng.integers(1, ACCOUNTS + 1, n)
        cr = rng.integers(1, ACCOUNTS, n)
        cr = np.where(cr >= dr, cr + 1, cr)  # never the same account
        ids = np.arange(next_id, next_id + n)
        next_id += n
        batches.append(TransferBatch.of(ids, dr, cr, rng.integers(1, 100_001, n)))
    return batches


def run_once(url: str, guarded: bool, batches: list[TransferBatch],
             funding_fen: int = 10**12) -> tuple[float, int]:
    clock = VirtualClock(1_700_000_000_000_000)
    with Engine.open(url, clock) as engine:
        flags = AccountFlags.MUST_NOT_OVERDRAW if guarded else AccountFlags.NONE
        engine.open_accounts([(1, "BENCH")], [Account(999, 1, NormalSide.DEBIT)] + [
            Account(i, 1, NormalSide.CREDIT, flags) for i in range(1, ACCOUNTS + 1)])
        # Fund every account generously (outside the timed part) so that transfers
        # settle: the guarded run checks every debit against its balance all the same.
        engine.submit_transfers(TransferBatch.of(
            np.arange(1, ACCOUNTS + 1), np.full(ACCOUNTS, 999), np.arange(1, ACCOUNTS + 1),
            np.full(ACCOUNTS, funding_fen)))
        done = 0
        t0 = time.perf_counter()
        for batch in batches:
            clock.advance_to(clock.now_us() + 1000)
            receipt = engine.submit_transfers(batch)
            done += int((receipt.results.codes <= 1).sum())
        elapsed = time.perf_counter() - t0
        engine.ledger.check_invariants()
    return elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--modes", default="memory,sqlite,postgres")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scarce", action="store_true",
                        help="fund each account with only 50,000.00: many transfers fail and "
                             "the exact item-by-item path does the work (memory store)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.transfers = 1, 100_000
    console = Console()
    batches = workload(args.transfers)
    if args.scarce:
        rates = []
        for _ in range(args.runs):
            elapsed, done = run_once("memory:", True, batches, funding_fen=5_000_000)
            rates.append(args.transfers / elapsed)
        console.print(f"scarce funds, memory, must-not-overdraw: {done:,} of "
                      f"{args.transfers:,} done; transfers/s min {min(rates):,.0f} median "
                      f"{statistics.median(rates):,.0f} max {max(rates):,.0f}")
        return
    table = Table(title=f"{args.transfers:,} transfers, {ACCOUNTS} accounts, batches of {BATCH}"
                        f" ({args.runs} runs; {platform.processor() or platform.machine()}, "
                        f"{os.cpu_count()} cores)")
    for col in ("store", "must-not-overdraw", "min /s", "median /s", "max /s"):
        table.add_column(col, justify="right")
    tmp = tempfile.mkdtemp(prefix="qingsuan-bench-")
    for mode in args.modes.split(","):
        for guarded in (False, True):
            rates = []
            for _ in range(args.runs):
                if mode == "memory":
                    url = "memory:"
                elif mode == "sqlite":
                    url = os.path.join(tmp, f"{uuid.uuid4().hex}.db")
                else:
                    url = f"{PG_DSN}?schema=bench_{uuid.uuid4().hex[:12]}"
                elapsed, done = run_once(url, guarded, batches)
                assert done == args.transfers, f"{done} of {args.transfers} transfers done"
                rates.append(done / elapsed)
                if mode == "postgres":
                    _drop_schema(url)
            table.add_row(mode, "yes" if guarded else "no", f"{min(rates):,.0f}",
                          f"{statistics.median(rates):,.0f}", f"{max(rates):,.0f}")
    console.print(table)


def _drop_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
