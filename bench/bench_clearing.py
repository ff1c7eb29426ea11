"""Card clearing day: 10,000,000 transactions among 200 participants (issue 6).

Seeded numpy columns: issuer and acquirer drawn uniformly among 199 banks (participant 199 is
the switch; on-us pairs are moved to the next bank), 80% purchases, 15% ATM withdrawals, 5%
refunds, 60% debit cards, lognormal amounts (median 200 CNY) capped at 50,000.00 CNY.

Timed: (1) ``clear`` (fees, positions, totals) over all 10M rows; (2) the clearing files of
every participant for all 10M rows with ``write_clearing_files_bulk`` (20M detail lines, each
transaction in the issuer's and the acquirer's file), into memory and, with ``--dir``, to
files; (1) + (2) is the day's budget (10 s). For reference, the pure-Python
``write_clearing_file`` (one ``Detail`` and one f-string per line) over the first
``--file-rows`` transactions, whose files must equal the bulk writer's byte for byte, and
``parse_clearing_file`` over them.

    python bench/bench_clearing.py [--rows 10000000] [--file-rows 200000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date, datetime, timedelta

import numpy as np

from qingsuan.cards.clearing import CREDIT, REFUND, clear
from qingsuan.cards.files import (
    Detail,
    parse_clearing_file,
    write_clearing_file,
    write_clearing_files_bulk,
)


def fixed(values: np.ndarray, width: int, prefix: bytes = b"") -> np.ndarray:
    """Zero-padded decimal ``values`` (< 10**width) behind ``prefix`` as an ``S`` column."""
    w = len(prefix) + width
    mat = np.empty((values.shape[0], w), dtype=np.uint8)
    mat[:, :len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    v = values.astype(np.int64)
    for k in range(w - 1, len(prefix) - 1, -1):
        mat[:, k] = (v % 10).astype(np.uint8) + 48
        v //= 10
    return mat.view(f"S{w}").ravel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--file-rows", type=int, default=200_000)
    ap.add_argument("--participants", type=int, default=200)
    ap.add_argument("--dir", default=None,
                    help="directory for the bulk files (default: a temporary one, removed)")
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
    rows = np.arange(n, dtype=np.int64)
    rrn = fixed(rows, 12)
    stan = fixed(rows % 1_000_000, 6)
    term = fixed(rows % 10_000_000, 7, b"T")
    mti = np.where(kind == REFUND, np.array(b"0220"), np.array(b"0200"))
    pan = fixed(rows % 10_000, 4, b"621202****")
    pan = np.where(card_kind == CREDIT, np.char.replace(pan, b"621202", b"622202"), pan)
    local = np.datetime64("2025-06-30T00:00:00") + (rows * 86_399 // n).astype("m8[s]")
    issuer_dir = np.where(kind == REFUND, np.array(b"C"), np.array(b"D"))
    codes = [f"B{p:04d}" for p in range(parts)]
    gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = clear(iss, acq, kind, card_kind, amount, n_participants=parts, switch=switch)
    t_clear = time.perf_counter() - t0
    assert int(res.positions_fen.sum()) == 0

    day = date(2025, 6, 30)

    def bulk(k: int, directory: str | None = None) -> list[bytes] | list[object]:
        cols = dict(issuer=iss[:k], acquirer=acq[:k], rrn=rrn[:k], stan=stan[:k], mti=mti[:k],
                    pan=pan[:k], amount_fen=amount[:k],
                    issuer_fee_fen=res.issuer_fee_net_fen[:k],
                    acquirer_fee_fen=res.acquirer_fee_net_fen[:k],
                    issuer_direction=issuer_dir[:k], terminal_id=term[:k], local_time=local[:k])
        if directory is None:
            return write_clearing_files_bulk(codes, day, **cols)
        return write_clearing_files_bulk(codes, day, directory=directory, **cols)

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.dir or tmp
        os.makedirs(out_dir, exist_ok=True)
        t0 = time.perf_counter()
        paths = bulk(n, out_dir)
        t_dir = time.perf_counter() - t0
        bulk_size = sum(os.path.getsize(str(p)) for p in paths)
    t0 = time.perf_counter()
    blobs = bulk(n)
    t_bulk = time.perf_counter() - t0
    assert sum(len(b) for b in blobs) == bulk_size  # type: ignore[arg-type]
    del blobs

    m = min(args.file_rows, n)
    start = datetime(2025, 6, 30)
    per_part: list[list[Detail]] = [[] for _ in range(parts)]
    t0 = time.perf_counter()
    for i in range(m):
        a = int(amount[i])
        refund = kind[i] == REFUND
        mti_i = "0220" if refund else "0200"
        pan_i = f"62{'2' if card_kind[i] == CREDIT else '1'}202****{i % 10_000:04d}"
        local_i = start + timedelta(seconds=i * 86_399 // n)
        rrn_i, stan_i = f"{i:012d}", f"{i % 1_000_000:06d}"
        term_i = f"T{i % 10_000_000:07d}"
        s, b = int(iss[i]), int(acq[i])
        per_part[s].append(Detail(rrn_i, stan_i, mti_i, pan_i, a,
                                  int(res.issuer_fee_net_fen[i]), "C" if refund else "D",
                                  term_i, local_i))
        per_part[b].append(Detail(rrn_i, stan_i, mti_i, pan_i, a,
                                  int(res.acquirer_fee_net_fen[i]), "D" if refund else "C",
                                  term_i, local_i))
    texts = [write_clearing_file(f"B{p:04d}", day, per_part[p]) for p in range(parts)]
    t_files = time.perf_counter() - t0
    small = bulk(m)
    assert [t.encode() for t in texts] == small, "bulk files differ from write_clearing_file"
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
    print(f"bulk files (write_clearing_files_bulk) written to {args.dir or 'a temp dir'}: "
          f"{parts} files, {2 * n:,} detail lines ({bulk_size / 1e6:.0f} MB) from {n:,} rows: "
          f"{t_dir:.2f} s ({2 * n / t_dir:,.0f} lines/s); as bytes in memory: {t_bulk:.2f} s")
    print(f"positions + bulk files: {t_clear + t_dir:.2f} s written "
          f"({t_clear + t_bulk:.2f} s in memory)")
    print(f"reference write_clearing_file: {parts} files, {lines:,} detail lines "
          f"({size / 1e6:.1f} MB) from {m:,} rows: "
          f"{t_files:.2f} s ({lines / t_files:,.0f} lines/s) -> {2 * n:,} lines ~ "
          f"{2 * n / (lines / t_files):.0f} s; bulk output identical")
    print(f"parse+check the same files: {t_parse:.2f} s ({lines / t_parse:,.0f} lines/s)")


if __name__ == "__main__":
    main()
