"""The card gateway under load: `qingsuan cards load` against `qingsuan serve` on this
machine, durable SQLite log, purchases and withdrawals (issue 6's target: >= 15,000
authorisations/s sustained at 64 in flight, p99 <= 20 ms).

    python bench/bench_gateway.py [--runs 3] [--duration 20] [--in-flight 64]

Each run starts a fresh server (new log), waits for its port, loads it, stops it with
SIGTERM (exit 0 required: clean shutdown), and prints the load report; the summary gives
the median run. Both programs are the ones users run, as separate processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    store = folder / "gateway.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0",
         "--core", args.core], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert server.stdout is not None
    line = server.stdout.readline()
    if "listening on" not in line:
        detail = server.stderr.read() if server.stderr else ""
        raise SystemExit(f"the server did not start: {line}{detail}")
    port = line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1]
    try:
        load = subprocess.run(
            [sys.executable, "-m", "qingsuan", "cards", "load", "--port", port,
             "--connections", str(args.connections), "--in-flight", str(args.in_flight),
             "--duration", str(args.duration), "--mix", args.mix, "--json"],
            capture_output=True, text=True, timeout=args.duration + 120)
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=120)
    if load.returncode not in (0, 1) or not load.stdout.strip():
        raise SystemExit(f"load failed: {load.stderr}")
    report: dict[str, object] = json.loads(load.stdout)
    report["server_exit"] = status
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--mix", default="purchase=7,withdrawal=3")
    ap.add_argument("--core", default="process", choices=["process", "inline"])
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    reports = []
    with tempfile.TemporaryDirectory(prefix="qingsuan-gw-") as tmp:
        for i in range(args.runs):
            report = one_run(args, Path(tmp))
            reports.append(report)
            lat = report["latency_ms"]
            assert isinstance(lat, dict)
            print(f"run {i + 1}: {report['throughput_per_s']:,.0f}/s overall, per second "
                  f"min {report['per_second_min']:,} median {report['per_second_median']:,.0f};"
                  f" p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms max {lat['max']:.2f} ms;"
                  f" {report['answered']:,} answered, {report['unanswered']} unanswered;"
                  f" codes {report['response_codes']}; server exit {report['server_exit']}",
                  flush=True)
    rates = [float(r["throughput_per_s"]) for r in reports]  # type: ignore[arg-type]
    p99s = [float(r["latency_ms"]["p99"]) for r in reports]  # type: ignore[index]
    print(json.dumps({"runs": args.runs, "in_flight": args.in_flight,
                      "connections": args.connections, "duration_s": args.duration,
                      "mix": args.mix, "core": args.core,
                      "throughput_median_per_s": statistics.median(rates),
                      "throughput_min_per_s": min(rates),
                      "p99_median_ms": statistics.median(p99s)}))


if __name__ == "__main__":
    main()
