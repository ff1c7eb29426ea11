"""Scripted events through the whole bank tier, durable (SQLite), at two world sizes.

A world of 100 banks and N customers (each a debit card holder; one merchant with a POS
terminal per bank) runs a business day of scripted events: customer transfers along all
four routes (行内, HVPS, BEPS, IBPS) and card purchases at other banks' terminals, through
the banks, CNAPS and the card switch, every event a logged command on a SQLite log. The
cost per event must not grow with the world: the rate at 1,000,000 customers is compared
with the rate at 10,000.

    python bench/bench_world.py [--customers 10000,1000000] [--events 100000] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from qingsuan.clock import parse_time
from qingsuan.cnaps.participants import check_digit
from qingsuan.params import Params
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import (
    Card,
    Customer,
    Event,
    Merchant,
    Participant,
    Scenario,
    Terminal,
    hash_pin,
)

BANKS = 100
PIN = "123456"


def bank_code(i: int) -> str:
    body = f"{300 + i:03d}1000{i:04d}"
    return body + check_digit(body)


def luhn_pan(i: int) -> str:
    body = f"622202{i:012d}"
    total = 0
    for k, ch in enumerate(reversed(body)):
        d = int(ch)
        if k % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return body + str((10 - total % 10) % 10)


def world(customers: int, events: int, seed: int, card_holders: int = 100_000) -> Scenario:
    """A scenario built in memory (no YAML): 100 banks, ``customers`` card holders, a
    merchant per bank, and ``events`` scripted events over one business day."""
    rng = np.random.default_rng(seed)
    banks = [f"B{i:03d}" for i in range(BANKS)]
    participants = tuple(Participant(b, bank_code(i), "bank", 10**13, 0, 0)
                         for i, b in enumerate(banks))
    bank_of = rng.integers(0, BANKS, customers)
    custs = [Customer(f"c{i}", banks[bank_of[i]], f"62220{i:014d}", 10_000_000, f"C{i}",
                      None, 0) for i in range(customers)]
    custs += [Customer(f"m{i}", b, f"62171{i:014d}", 0, f"Shop {i}",
                       Merchant(f"M{i:014d}", "5814", 6_000), 0) for i, b in enumerate(banks)]
    pin_hash = hash_pin(luhn_pan(0), PIN)  # one PIN hash shared (only its checks cost)
    card_holders = min(customers, card_holders)
    cards = [Card(luhn_pan(i), f"c{i}", "debit", hash_pin(luhn_pan(i), PIN)
                  if i < 1000 else pin_hash, 0) for i in range(card_holders)]
    terminals = [Terminal(f"POS{i:05d}", "pos", b, 0, f"m{i}", 0)
                 for i, b in enumerate(banks)] if card_holders else []
    start = parse_time("2026-11-25T09:00")
    times = np.sort(rng.integers(0, 7 * 3600 * 1_000_000, events)) + start
    kind = rng.choice(5, events, p=[0.1, 0.05, 0.3, 0.25, 0.3])  # book, hvps, beps, ibps, card
    payer = rng.integers(0, customers, events)
    payee = rng.integers(0, customers, events)
    evs = []
    for k in range(events):
        p, q = int(payer[k]), int(payee[k])
        if q == p:
            q = (q + 1) % customers
        if kind[k] == 4 and card_holders:
            holder = p % card_holders
            term = (bank_of[holder] + 1) % BANKS
            fields = {"id": f"e{k}", "card": luhn_pan(holder), "terminal": f"POS{term:05d}",
                      "amount_fen": 3_600, "pin": PIN if holder < 1000 else None}
            evs.append(Event(int(times[k]), "pos_purchase", k, 0, fields))
            continue
        if kind[k] == 0:  # 行内: a payee at the payer's bank
            same = np.flatnonzero(bank_of[:2000] == bank_of[p])
            q = int(same[0]) if same.size and same[0] != p else q
        amount = {0: 10_000, 1: 10_000_000, 2: 20_000, 3: 30_000}[int(kind[k])]
        evs.append(Event(int(times[k]), "transfer", k, 0, {
            "id": f"e{k}", "amount_fen": amount, "channel": "mobile" if kind[k] == 3
            else "counter", "urgent": bool(kind[k] == 3), "from_customer": f"c{p}",
            "to_customer": f"c{q}", "to_account": None}))
    return Scenario("bench-world", "<bench>", "", start, start + 16 * 3600 * 1_000_000,
                    "cn", Params({"cards.fees": "off"}), participants, tuple(custs),
                    tuple(cards), tuple(terminals), tuple(evs))


def run_once(customers: int, events: int, seed: int) -> dict[str, float]:
    sc = world(customers, events, seed)
    with tempfile.TemporaryDirectory(prefix="bench-world-") as tmp:
        runner = Runner(sc, store=str(Path(tmp) / "w.db"))
        t0 = time.perf_counter()
        runner.build_world()
        built = time.perf_counter() - t0
        # the outcome and the final snapshot read the whole world once, at the end: timed
        # apart, so that the rate is the events' own cost
        spent = [0.0]
        outcome, snapshot = runner.outcome, runner.engine.snapshot

        def timed(fn: Any) -> Any:
            def call() -> Any:
                t = time.perf_counter()
                try:
                    return fn()
                finally:
                    spent[0] += time.perf_counter() - t
            return call

        runner.outcome = timed(outcome)  # type: ignore[method-assign]
        runner.engine.snapshot = timed(snapshot)  # type: ignore[method-assign]
        t0 = time.perf_counter()
        out = runner.run()
        elapsed = time.perf_counter() - t0 - spent[0]
    statuses: dict[str, int] = {}
    for rec in out["payments"].values():
        statuses[rec["status"]] = statuses.get(rec["status"], 0) + 1
    assert all(out["checks"].values()), out["checks"]
    return {"events_per_s": events / elapsed, "build_s": built, "run_s": elapsed,
            "report_s": spent[0],
            "settled_share": (statuses.get("settled", 0) + statuses.get("credited", 0))
            / max(1, len(out["payments"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="10000,1000000")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    console.print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs; SQLite log; "
                  f"{args.events:,} events per run")
    table = Table("customers", "build s", "events s", "outcome s", "events/s",
                  "credited/settled")
    rates = {}
    for n in (int(x) for x in args.customers.split(",")):
        results = [run_once(n, args.events, seed) for seed in range(args.runs)]
        rate = statistics.median(r["events_per_s"] for r in results)
        rates[n] = rate
        table.add_row(f"{n:,}", f"{results[0]['build_s']:.1f}", f"{results[0]['run_s']:.1f}",
                      f"{results[0]['report_s']:.1f}", f"{rate:,.0f}",
                      f"{results[0]['settled_share']:.0%}")
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory {peak:,.0f} MiB; target >= 20,000 events/s, the largest "
                  f"world within 20% of the smallest")


if __name__ == "__main__":
    main()
