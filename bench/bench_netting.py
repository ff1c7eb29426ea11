"""BEPS and IBPS netting: a 2025-scale day through ``net_items``, then one session each.

A seeded day of 13,950,000 BEPS items and 46,690,000 IBPS items (2025 volumes) among 2,000
participants. Participants have scale-free weights (weight ~ 1/rank^1.1: a few big banks, a
long tail); each item's (sender, receiver) pair is drawn with probability proportional to
w_s * w_r (s != r), a symmetric law, so every participant's expected inflow equals its
expected outflow and its position is a zero-drift random walk. Amounts are lognormal
(BEPS median 1,000 CNY, IBPS median 300 CNY) capped at the 50,000.00 CNY item limit. Each
participant's net debit cap is ``--cap-scale`` (jittered x0.5..1.5) times the standard
deviation of its position over the day, so a small share of the items would pass a cap.

Items are generated in batches (bounded memory) and netted batch by batch; BEPS items still
queued after a batch are carried, ahead of the next batch's arrivals. After the day each
system settles one session: settlement instructions, the coverage check against settlement
balances and unused pledge credit, and the ledger postings' columns.

Reported: items netted per second (timing ``net_items`` only; generation is reported
apart), the share rejected (IBPS) or queued on arrival (BEPS), peak memory as the process's
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: everything, Python
and numpy included), and the session's time for 2,000 positions.

    python bench/bench_netting.py [--quick] [--batch 2000000] [--cap-scale 1.5] [--verify]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from qingsuan.cnaps.netting import (
    QUEUED,
    REJECTED,
    Mode,
    net_items,
    net_items_reference,
    session_coverage,
    settlement_instructions,
    settlement_postings,
)

I64 = npt.NDArray[np.int64]
PARTICIPANTS = 2_000
ITEM_LIMIT_FEN = 5_000_000  # 50,000.00 CNY
#: 2025 volumes per day (the issue's figures)
DAY = {"beps": 13_950_000, "ibps": 46_690_000}
#: lognormal amounts: median in fen, sigma
AMOUNTS = {"beps": (100_000, 1.6), "ibps": (30_000, 1.4)}


def participant_weights() -> npt.NDArray[np.float64]:
    w = 1.0 / np.arange(1, PARTICIPANTS + 1, dtype=np.float64) ** 1.1
    return np.asarray(w / w.sum(), np.float64)


def draw_items(rng: np.random.Generator, n: int, cdf: npt.NDArray[np.float64], mode: Mode
               ) -> tuple[I64, I64, I64]:
    """n items: (sender, receiver) ~ w_s * w_r over s != r (redraw equal pairs: exact), and
    lognormal amounts, rounded to the fen and capped at the item limit. The generator works
    in floats; the items are int64 fen from here on."""
    s = np.searchsorted(cdf, rng.random(n), side="right")
    r = np.searchsorted(cdf, rng.random(n), side="right")
    again = np.flatnonzero(s == r)
    while len(again):
        s[again] = np.searchsorted(cdf, rng.random(len(again)), side="right")
        r[again] = np.searchsorted(cdf, rng.random(len(again)), side="right")
        again = again[s[again] == r[again]]
    median, sigma = AMOUNTS[mode]
    amount = np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), 1, ITEM_LIMIT_FEN)
    return s.astype(np.int64), r.astype(np.int64), amount.astype(np.int64)


def batches(seed: int, total: int, batch: int, mode: Mode) -> Iterator[tuple[I64, I64, I64]]:
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(participant_weights())
    cdf[-1] = 1.0
    for start in range(0, total, batch):
        yield draw_items(rng, min(batch, total - start), cdf, mode)


def caps_for(total: int, mode: Mode, scale: float, seed: int) -> I64:
    """cap_p = scale * jitter * sd of p's position after ``total`` items (zero-drift walk:
    variance = items x P(p takes part) x E[amount^2], E estimated on a sample)."""
    rng = np.random.default_rng(seed + 1_000)
    w = participant_weights()
    cdf = np.cumsum(w)
    cdf[-1] = 1.0
    sample = draw_items(rng, 200_000, cdf, mode)[2].astype(np.float64)
    part = 2 * w * (1 - w) / (1 - np.sum(w * w))  # P(p is sender or receiver of an item)
    sd = np.sqrt(total * part * float(np.mean(sample ** 2)))
    return (scale * rng.uniform(0.5, 1.5, PARTICIPANTS) * sd).astype(np.int64)


@dataclass
class DayResult:
    items: int
    net_s: float
    gen_s: float
    failed_on_arrival: int
    still_queued: int
    position: I64
    cap: I64


def run_day(mode: Mode, total: int, batch: int, scale: float, seed: int, verify: bool,
            console: Console) -> DayResult:
    cap = caps_for(total, mode, scale, seed)
    position = np.zeros(PARTICIPANTS, np.int64)
    carried = (np.zeros(0, np.int64),) * 3
    net_s = gen_s = 0.0
    failed = 0
    t_gen = time.perf_counter()
    for k, (s, r, a) in enumerate(batches(seed, total, batch, mode)):
        k0 = len(carried[0])
        waiting = None
        if k0:
            s, r, a = (np.concatenate((c, x)) for c, x in zip(carried, (s, r, a), strict=True))
            waiting = np.zeros(len(s), np.bool_)
            waiting[:k0] = True
        gen_s += time.perf_counter() - t_gen
        t0 = time.perf_counter()
        out = net_items(position, cap, s, r, a, mode=mode, start_queued=waiting)
        net_s += time.perf_counter() - t0
        if verify and k == 0:
            ref = net_items_reference(position, cap, s, r, a, mode=mode, start_queued=waiting)
            same = (np.array_equal(ref.status, out.status) and np.array_equal(ref.order, out.order)
                    and np.array_equal(ref.position, out.position)
                    and np.array_equal(ref.low, out.low))
            console.print(f"{mode}: first batch equals the reference: {same}")
            if not same:
                raise SystemExit(1)
        position = out.position
        failed += int(out.queued_on_arrival[k0:].sum()) if mode == "beps" else \
            int((out.status == REJECTED).sum())
        queued = np.flatnonzero(out.status == QUEUED)
        carried = (s[queued], r[queued], a[queued])
        t_gen = time.perf_counter()
    return DayResult(total, net_s, gen_s, failed, len(carried[0]), position, cap)


def session(position: I64, cap: I64, seed: int, repeat: int) -> tuple[list[float], int, int]:
    """One settlement session for the day's positions: instructions, coverage (balances
    drawn so that some payers are short), postings' columns. Times of ``repeat`` runs."""
    rng = np.random.default_rng(seed + 2_000)
    pays = np.maximum(-position, 0)
    balance = (pays * rng.uniform(0.7, 3.0, len(position))).astype(np.int64)
    credit = (cap // 10).astype(np.int64)
    accounts = np.arange(10_001, 10_001 + len(position), dtype=np.int64)
    times: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        debits, credits = settlement_instructions(position)
        cover = session_coverage(position, balance, credit)
        dr, cr, am = settlement_postings(position, accounts, 10_000)
        times.append(time.perf_counter() - t0)
    # the postings settle the positions exactly
    moved = np.zeros(len(position) + 1, np.int64)
    np.add.at(moved, np.where(cr == 10_000, len(position), cr - 10_001), am)
    np.subtract.at(moved, np.where(dr == 10_000, len(position), dr - 10_001), am)
    assert np.array_equal(moved[:-1], position) and moved[-1] == 0
    assert int(debits.amount.sum()) == int(credits.amount.sum())
    return times, len(cover.short), int(cover.shortfall.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/20 of a day")
    parser.add_argument("--batch", type=int, default=2_000_000)
    parser.add_argument("--cap-scale", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--verify", action="store_true",
                        help="also compare each system's first batch with the reference")
    args = parser.parse_args()
    console = Console(width=200)  # the table is wide: do not let rich squeeze it
    share = 20 if args.quick else 1
    days: dict[str, DayResult] = {}
    sessions: dict[str, tuple[list[float], int, int]] = {}
    for mode in ("beps", "ibps"):
        total = DAY[mode] // share
        console.print(f"{mode}: netting {total:,} items in batches of {args.batch:,} ...")
        days[mode] = run_day(mode, total, args.batch, args.cap_scale, args.seed,
                             args.verify, console)
        sessions[mode] = session(days[mode].position, days[mode].cap, args.seed, 50)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    table = Table(title=f"BEPS and IBPS netting: {PARTICIPANTS:,} participants, batches of "
                        f"{args.batch:,}, cap scale {args.cap_scale} ({os.cpu_count()} cores, "
                        f"{platform.python_version()}, numpy {np.__version__})")
    for col in ("system", "items", "netting s", "items/s", "failed on arrival",
                "still queued", "generation s", "session ms (median / max of 50)",
                "short in session"):
        table.add_column(col, justify="right")
    for mode, d in days.items():
        times, short, shortfall = sessions[mode]
        failed = "rejected" if mode == "ibps" else "queued"
        table.add_row(mode.upper(), f"{d.items:,}", f"{d.net_s:.2f}", f"{d.items / d.net_s:,.0f}",
                      f"{d.failed_on_arrival / d.items:.3%} {failed}", f"{d.still_queued:,}",
                      f"{d.gen_s:.2f}",
                      f"{1e3 * statistics.median(times):.3f} / {1e3 * max(times):.3f}",
                      f"{short} ({shortfall / 100:,.2f} CNY)")
    items = sum(d.items for d in days.values())
    net_s = sum(d.net_s for d in days.values())
    table.add_row("both", f"{items:,}", f"{net_s:.2f}", f"{items / net_s:,.0f}", "", "",
                  f"{sum(d.gen_s for d in days.values()):.2f}", "", "")
    console.print(table)
    console.print(f"peak memory (ru_maxrss, whole process): {peak_mib:,.0f} MiB")
    console.print(f"targets: >= 1,000,000 items/s overall: "
                  f"{'met' if items / net_s >= 1_000_000 else 'MISSED'}; <= 8 GiB: "
                  f"{'met' if peak_mib <= 8 * 1024 else 'MISSED'}; session <= 50 ms: "
                  f"{'met' if all(max(t[0]) <= 0.05 for t in sessions.values()) else 'MISSED'}")


if __name__ == "__main__":
    main()
