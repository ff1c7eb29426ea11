"""Card clearing day: 10,000,000 transactions among 200 participants (issue 6).

Seeded numpy columns: issuer and acquirer drawn uniformly among 199 banks (participant 199 is
the switch; on-us pairs are moved to the next bank), 80% purchases, 15% ATM withdrawals, 5%
refunds, 60% debit cards, lognormal amounts (median 200 CNY) capped at 50,000.00 CNY.

Timed apart: (1) ``clear`` (fees, positions, totals) over all 10M rows; (2) the clearing
files: ``write_clearing_file`` (one ``Detail`` object and one formatted line per item, pure
Python) for every participant over the first ``--file-rows`` transactions (each transaction
gives two lines, issuer's and acquirer's), then the per-line rate is extrapolated to 20M lines.

    python bench/bench_clearing.py [--rows 10000000] [--file-rows 200000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date, datetime, timedelta

import numpy as np

from qingsuan.cards.clearing import CREDIT, REFUND, clear
from qingsuan.cards.files import Detail, parse_clearing_file, write_clearing_file


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--file-rows", type=int, default=200_000)
    ap.add_argument("--participants", type=int, default=200)
    args = ap.parse_args()
    n, parts = args.rows, args.participants
    switch = parts - 1
    rng = np.random.default_rng(20250630)
    t0 = time.perf_counter()
    iss = rng.integers(0, parts - 1, n)
    acq = rng.integers(0, parts - 1, n)
    acq = np.where(acq == iss, (acq + 1) % (parts - 1), acq)
    kind = rng.choice(np.array([0, 1, 2]), n, p=[0.80, 0.15, 0.05])
    card_kind = (rng.random(n) < 0.4).astype(np.int64)
    amount = np.minimum(np.round(rng.lognormal(np.log(20_000), 1.0, n)).astype(np.int64) + 1,
                        5_000_000)
    gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = clear(iss, acq, kind, card_kind, amount, n_participants=parts, switch=switch)
    t_clear = time.perf_counter() - t0
    assert int(res.positions_fen.sum()) == 0

    m = min(args.file_rows, n)
    day = date(2025, 6, 30)
    start = datetime(2025, 6, 30)
    per_part: list[list[Detail]] = [[] for _ in range(parts)]
    t0 = time.perf_counter()
    for i in range(m):
        a = int(amount[i])
        refund = kind[i] == REFUND
        mti = "0220" if refund else "0200"
        pan = f"62{'2' if card_kind[i] == CREDIT else '1'}202****{i % 10_000:04d}"
        local = start + timedelta(seconds=i * 86_399 // m)
        rrn, stan, term = f"{i:012d}", f"{i % 1_000_000:06d}", f"T{i % 10_000_000:07d}"
        s, b = int(iss[i]), int(acq[i])
        per_part[s].append(Detail(rrn, stan, mti, pan, a, int(res.issuer_fee_net_fen[i]),
                                  "C" if refund else "D", term, local))
        per_part[b].append(Detail(rrn, stan, mti, pan, a, int(res.acquirer_fee_net_fen[i]),
                                  "D" if refund else "C", term, local))
    texts = [write_clearing_file(f"B{p:04d}", day, per_part[p]) for p in range(parts)]
    t_files = time.perf_counter() - t0
    size = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    for t in texts:
        parse_clearing_file(t)
    t_parse = time.perf_counter() - t0

    lines = 2 * m
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"generate {n:,} rows: {gen:.2f} s")
    print(f"clear {n:,} rows among {parts} participants: {t_clear:.2f} s "
          f"({n / t_clear:,.0f} rows/s)")
    print(f"files: {parts} files, {lines:,} detail lines ({size / 1e6:.1f} MB) from {m:,} rows: "
          f"{t_files:.2f} s ({lines / t_files:,.0f} lines/s) -> {2 * n:,} lines ~ "
          f"{2 * n / (lines / t_files):.0f} s")
    print(f"parse+check the same files: {t_parse:.2f} s ({lines / t_parse:,.0f} lines/s)")


if __name__ == "__main__":
    main()
