"""The HTTP sandbox's JSON transfers: single customer transfers over loopback, a fixed
number in flight (one per keep-alive connection), each durable before its answer.

    .venv/bin/python bench/bench_http.py --in-flight 64 --duration 10 [--runs 3] [--xml]

Starts ``qingsuan serve`` on a new store (free ports, the documented sandbox keys), then
drives ``POST /v1/participants/{p}/transfers`` from the four banks' customers (1.00 each,
at the counter: BEPS) with a minimal HTTP/1.1 client on one asyncio loop (a full client
library would be the bottleneck), and prints the rate, the latency percentiles, and the
CPU time per transfer of each of the server's processes (the card port, the HTTP edge,
the engine's) and of the client. Client and server share the machine. ``--xml``: each
transfer is a pacs.008 (``POST .../messages``, answered with a pacs.002).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import psutil

CODES = {"ICBC": "102100099996", "CCB": "105100000017", "ABC": "103100000026",
         "BOC": "104100000004"}
PAYERS = [  # (bank, debtor account, creditor bank, creditor account, creditor name)
    ("ICBC", "9222020000000010017", "CCB", "9217000000000010011", "Holder CCB 1"),
    ("CCB", "9217000000000010029", "ABC", "9228480000000010017", "Holder ABC 1"),
    ("ABC", "9228480000000010025", "BOC", "9216610000000010015", "Holder BOC 1"),
    ("BOC", "9216610000000010023", "ICBC", "9222020000000010025", "Holder ICBC 2"),
]
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def start(store: Path, core: str) -> tuple[subprocess.Popen[str], str, int]:
    """``qingsuan serve`` on a new store, free ports, the documented sandbox keys: the
    process and where its HTTP API listens (named within its first lines of output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0",
         "--http-port", "0", "--api-keys", "sandbox", "--core", core],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        if "HTTP API listening" in line:
            url = line.split("http://", 1)[1].split()[0]
            host, port = url.rsplit(":", 1)
            return proc, host, int(port)
    proc.kill()
    raise SystemExit("the server did not start")


def request(host: str, bank: str, body: bytes, xml: bool = False) -> bytes:
    path, kind = ("messages", "application/xml") if xml else ("transfers", "application/json")
    return (f"POST /v1/participants/{bank}/{path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer sandbox-{bank}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def pacs008_template(payer: tuple[str, str, str, str, str]) -> bytes:
    """A pacs.008 of 1.00 through BEPS from ``payer``, settled today (Beijing), its ids
    ``@MSG@`` and ``@TX@`` to replace."""
    import datetime as dt

    from qingsuan.clock import BEIJING
    from qingsuan.messages import CreditTransfer, build_pacs008

    bank, debtor, cbank, caccount, cname = payer
    now = dt.datetime.now(BEIJING).replace(microsecond=0)
    return build_pacs008(CreditTransfer(
        msg_id="@MSG@", created_at=now, end_to_end_id="@TX@", tx_id="@TX@", system="BEPS",
        kind="customer", priority="normal", amount_fen=100, settlement_date=now.date(),
        debtor_agent_code=CODES[bank], creditor_agent_code=CODES[cbank],
        debtor_name=f"Holder {bank}", debtor_account=debtor, creditor_name=cname,
        creditor_account=caccount))


async def connection(host: str, port: int, n: int, until: float, warm: float,
                     latencies: list[float], codes: dict[int, int], xml: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    payer = PAYERS[n % len(PAYERS)]
    bank, debtor, cbank, caccount, cname = payer
    template = pacs008_template(payer) if xml else b""
    i = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= until:
                return
            i += 1
            if xml:
                body = template.replace(b"@MSG@", b"B%dM%d" % (n, i)).replace(
                    b"@TX@", b"B%dT%d" % (n, i))
            else:
                body = orjson.dumps({"id": f"B{n}-{i}", "debtor_account": debtor,
                                     "amount": "1.00", "creditor": {
                                         "bank": cbank, "account": caccount,
                                         "name": cname}})
            writer.write(request(host, bank, body, xml))
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            answer = await reader.readexactly(int(match.group(1))) if match else b""
            done = time.perf_counter()
            status = int(head[9:12])
            if xml and i == 1 and (status != 200 or b"RJCT" in answer):
                raise SystemExit(f"the pacs.008 was refused: {answer[:2000]!r}")
            if now >= warm:
                codes[status] = codes.get(status, 0) + 1
                latencies.append(done - now)
    finally:
        writer.close()


def cpu_s(procs: list[psutil.Process]) -> list[float]:
    """CPU seconds (user + system) each process has used so far."""
    out = []
    for proc in procs:
        try:
            times = proc.cpu_times()
            out.append(times.user + times.system)
        except psutil.Error:
            out.append(0.0)
    return out


async def drive(host: str, port: int, in_flight: int, duration: float, warmup: float,
                server: list[psutil.Process], xml: bool = False
                ) -> tuple[list[float], dict[int, int], float, list[float]]:
    """Latencies, status counts, the measured span, and the CPU seconds in it of the
    server's processes and of this client (last)."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    begin = time.perf_counter()
    warm, until = begin + warmup, begin + warmup + duration
    loop = asyncio.get_running_loop()
    marks: list[list[float]] = []

    def mark() -> None:
        marks.append([*cpu_s(server), time.process_time()])

    loop.call_later(warmup, mark)
    await asyncio.gather(*(connection(host, port, n, until, warm, latencies, codes, xml)
                           for n in range(in_flight)))
    mark()
    used = [b - a for a, b in zip(marks[0], marks[1], strict=True)]
    return latencies, codes, time.perf_counter() - warm, used


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--core", choices=("process", "inline"), default="process")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--xml", action="store_true", help="send each transfer as a pacs.008 "
                    "(POST .../messages) instead of JSON")
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            proc, host, port = start(Path(tmp) / "bench.db", args.core)
            main_proc = psutil.Process(proc.pid)
            server = [main_proc, *main_proc.children()]
            try:
                lat, codes, span, used = asyncio.run(drive(host, port, args.in_flight,
                                                           args.duration, args.warmup,
                                                           server, args.xml))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        ms = np.array(lat) * 1000
        ok = codes.get(200 if args.xml else 201, 0)
        print(f"run {run}: {len(lat):,} answered in {span:.1f} s ({ok:,} "
              f"{'200 pacs.002' if args.xml else '201'}), "
              f"{len(lat) / span:,.0f} transfers/s at {args.in_flight} in flight "
              f"(--core {args.core}{', pacs.008' if args.xml else ''}); "
              f"latency ms p50 {np.percentile(ms, 50):.1f}, "
              f"p90 {np.percentile(ms, 90):.1f}, p99 {np.percentile(ms, 99):.1f}, "
              f"max {ms.max():.1f}; codes {dict(sorted(codes.items()))}")
        per = ", ".join(f"{name} {cpu / max(1, len(lat)) * 1e6:.0f}" for name, cpu in zip(
            [f"server pid {p.pid}" for p in server] + ["client"], used, strict=True))
        print(f"  CPU µs per transfer: {per}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
