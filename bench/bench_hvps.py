"""HVPS simulation mode: 1,000,000 payments among 200 participants with scarce liquidity.

The payments go through ``Cnaps.rtgs_batch`` in batches (a logged command each, memory
log): gross settlement when covered, six FIFO levels, incoming credits releasing queues in
cascade, and every settlement posted in the ledger (gross in the PBOC's book, mirrors by
net movement). Liquidity is a share of each participant's gross outflow, so a sizeable
share of the payments queues; what is still queued after a batch is carried, ahead of the
new arrivals, into the next one. Reports payments per second (min/median/max of the runs),
the share that queued on arrival and the share settled by the end.

    python bench/bench_hvps.py [--runs 5] [--payments 1000000] [--liquidity 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.rtgs_batch import SETTLED
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.ledger import Transfer

PARTICIPANTS = 200


def workload(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, PARTICIPANTS + 1) ** 1.1  # a few big banks, a long tail
    weights /= weights.sum()
    sender = rng.choice(PARTICIPANTS, n, p=weights)
    receiver = rng.choice(PARTICIPANTS - 1, n, p=None)
    receiver = np.where(receiver >= sender, receiver + 1, receiver)
    amount = np.maximum(1, rng.lognormal(np.log(2_000_000_00), 1.5, n)).astype(np.int64)
    priority = rng.choice([5, 4, 1], n, p=[0.9, 0.09, 0.01])
    return sender, receiver, amount, priority


def run_once(n: int, batch: int, share: float, seed: int) -> tuple[float, float, float]:
    sender, receiver, amount, priority = workload(n, seed)
    outflow = np.zeros(PARTICIPANTS, np.int64)
    np.add.at(outflow, sender, amount)
    liquidity = (outflow * share).astype(np.int64) + 1
    cn = Cnaps()
    engine = Engine.open("memory:", VirtualClock(parse_time("2026-11-25T09:00")), systems=[cn])
    engine.set_params({"hvps.lsm": "off"})
    names = [f"B{i:03d}" for i in range(PARTICIPANTS)]
    for i, name in enumerate(names):
        cn.join(name, f"313{i:04d}0000{i % 10}")
    reg = engine.registry
    engine.submit_transfers([Transfer(2 * i + 1, reg.id("PBOC", "issued"),
                                      reg.id("PBOC", f"settlement:{nm}"), int(liquidity[i]))
                             for i, nm in enumerate(names)] +
                            [Transfer(2 * i + 2, reg.id(nm, "reserve_at_pboc"),
                                      reg.id(nm, "hvps_incoming"), int(liquidity[i]))
                             for i, nm in enumerate(names)])
    carried = np.zeros(0, np.int64)  # indices still queued
    queued_on_arrival = 0
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        new = np.arange(start, min(n, start + batch))
        idx = np.concatenate((carried, new))
        waiting = np.zeros(len(idx), np.uint8)
        waiting[: len(carried)] = 1
        out = cn.rtgs_batch(names, sender[idx], receiver[idx], amount[idx], priority[idx],
                            waiting)
        settled_now = out.status == SETTLED
        arrivals = np.arange(len(carried), len(idx))
        queued_on_arrival += int((out.settled_at_arrival[arrivals] != arrivals).sum())
        carried = idx[~settled_now]
    elapsed = time.perf_counter() - t0
    engine.ledger.check_invariants()
    return n / elapsed, queued_on_arrival / n, 1 - len(carried) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--liquidity", type=float, default=0.05,
                        help="liquidity as a share of each participant's gross outflow")
    args = parser.parse_args()
    rates, queued, settled = [], [], []
    for run in range(args.runs):
        rate, q, s = run_once(args.payments, args.batch, args.liquidity, seed=run)
        rates.append(rate)
        queued.append(q)
        settled.append(s)
    table = Table(title=f"HVPS simulation mode: {args.payments:,} payments, {PARTICIPANTS} "
                        f"participants, batches of {args.batch:,}, liquidity "
                        f"{args.liquidity:.0%} of outflow ({args.runs} runs, "
                        f"{os.cpu_count()} cores)")
    for col in ("min /s", "median /s", "max /s", "queued on arrival", "settled by the end"):
        table.add_column(col, justify="right")
    table.add_row(f"{min(rates):,.0f}", f"{statistics.median(rates):,.0f}",
                  f"{max(rates):,.0f}", f"{statistics.mean(queued):.1%}",
                  f"{statistics.mean(settled):.1%}")
    Console().print(table)


if __name__ == "__main__":
    main()
