"""The HTTP sandbox's batch endpoint: files of customer transfers over loopback, each booked
as one logged bulk command and durable before its answer.

    .venv/bin/python bench/bench_http_batch.py --items 100000 --batches 5

Starts ``qingsuan serve`` on a new SQLite store (free ports, the documented sandbox keys),
then POSTs ``--batches`` CSV (or ``--jsonl``: JSON lines) files of ``--items`` transfers each to
``/v1/participants/ICBC/transfer-batches`` (ICBC's customers paying the other banks'
customers 1.00 to 9.99: BEPS), one after the other on one keep-alive connection, and prints
items/s end to end (from the first byte sent to the answer read; the file is made before
the clock starts, as a hub would have it ready). Client and server share the machine. Not
a test and not in the Makefile.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_http import start  # qingsuan serve on a new store, free ports, sandbox keys

HEADER = "debtor_account,creditor_bank,creditor_account,creditor_name,amount\n"
PAYERS = ["9222020000000010017", "9222020000000010025"]
PAYEES = [("CCB", "9217000000000010011", "Holder CCB 1"),
          ("ABC", "9228480000000010017", "Holder ABC 1"),
          ("BOC", "9216610000000010015", "Holder BOC 1")]


def batch_file(items: int, seed: int, jsonl: bool = False) -> bytes:
    rows = [] if jsonl else [HEADER]
    for k in range(items):
        bank, account, name = PAYEES[(k + seed) % len(PAYEES)]
        fen = 100 + (k * 7 + seed) % 900
        amount = f"{fen // 100}.{fen % 100:02d}"
        rows.append(json.dumps({"debtor_account": PAYERS[k % 2], "amount": amount,
                                "creditor": {"bank": bank, "account": account,
                                             "name": name}}) + "\n" if jsonl else
                    f"{PAYERS[k % 2]},{bank},{account},{name},{amount}\n")
    return "".join(rows).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="transfers per batch")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--jsonl", action="store_true", help="JSON lines instead of CSV")
    args = parser.parse_args()
    files = [batch_file(args.items, seed, args.jsonl) for seed in range(args.batches)]
    kind = "application/x-ndjson" if args.jsonl else "text/csv"
    with tempfile.TemporaryDirectory() as tmp:
        proc, host, port = start(Path(tmp) / "bench.db", "inline")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=300)
            rates = []
            total_items, total_s = 0, 0.0
            for body in files:
                began = time.perf_counter()
                conn.request("POST", "/v1/participants/ICBC/transfer-batches", body=body,
                             headers={"Authorization": "Bearer sandbox-ICBC",
                                      "Content-Type": kind})
                answer = conn.getresponse()
                doc = json.loads(answer.read())
                took = time.perf_counter() - began
                if answer.status != 201:
                    raise SystemExit(f"refused: {answer.status} {doc}")
                rates.append(doc["items"] / took)
                total_items += doc["items"]
                total_s += took
                print(f"batch {doc['id']}: {doc['items']:,} items ({len(body):,} bytes), "
                      f"credited {doc['credited']['count']:,}, {took * 1000:.0f} ms, "
                      f"{doc['items'] / took:,.0f} items/s", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"{args.batches} batches of {args.items:,}: {total_items / total_s:,.0f} items/s "
          f"end to end (best batch {max(rates):,.0f}/s); nproc {os.cpu_count()}; "
          f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")


if __name__ == "__main__":
    main()
