"""Crash cycles (issue 13.5): `qingsuan serve` under card load, SIGKILLed at random moments.

Each cycle starts `qingsuan serve` on the same store (loopback only), puts it under load
from `qingsuan cards load --json` (bounded in time) while a recorder sends purchases of its
own one at a time and writes down every approval (its RRN), kills the server's process
group with SIGKILL at a random moment, then opens the store as a restart does and proves:

- every purchase the recorder saw approved is in the store, approved (by its RRN);
- the store holds at least as many new approvals as were acknowledged in the cycle (the load
  generator's 00 answers plus the recorder's): nothing acknowledged was lost;
- the state a restart recovers (snapshot + tail) has the state hash of a full replay of the
  log from its first entry.

Usage (figures in docs/RELIABILITY.md):

    .venv/bin/python tools/crash_cycles.py --cycles 10
    .venv/bin/python tools/crash_cycles.py --cycles 10 --store postgresql://127.0.0.1:5432/test

A PostgreSQL store gets a fresh schema (``?schema=qs_crash_<random>``), dropped at the end.
Exit 0 when every cycle proves out, 1 when one does not (it says which and why).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
QINGSUAN: Final = str(ROOT / ".venv" / "bin" / "qingsuan")
HOST: Final = "127.0.0.1"
#: the recorder's STANs start here (the load generator counts up from 1)
RECORDER_STAN: Final = 900_000
#: bounds: cycles, seconds of load per cycle, seconds to wait for a port
MAX_CYCLES: Final = 10_000
MAX_LOAD_S: Final = 60.0
START_TIMEOUT_S: Final = 60.0
#: seconds `qingsuan cards load` takes to start sending (imports, its world)
LOAD_WARMUP_S: Final = 3.0


@dataclass
class Totals:
    cycles: int = 0
    load_approved: int = 0
    recorded: int = 0
    in_store: int = 0
    failures: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"qingsuan serve exited with {proc.returncode}: "
                               f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"qingsuan serve did not open port {port} in {START_TIMEOUT_S} s")


def _serve(store: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([QINGSUAN, "serve", "--store", store, "--host", HOST, "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=env)
    _wait_port(port, proc)
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server and its core process (the session this tool started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class Recorder(threading.Thread):
    """Sends purchases one at a time and records the RRN of each approval."""

    def __init__(self, port: int, first_stan: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        from qingsuan.server.card_client import ClientWorld
        from qingsuan.sim.scenario import load_scenario

        sandbox = load_scenario(ROOT / "src" / "qingsuan" / "scenarios" / "card-sandbox.yaml")
        self.world = ClientWorld.from_scenario(sandbox)
        self.port, self.stan, self.stop = port, first_stan, stop
        self.approved: list[str] = []

    def run(self) -> None:
        from qingsuan.cards.iso8583 import Decoded, encode_message
        from qingsuan.clock import BEIJING
        from qingsuan.server.card_client import request_fields, send_one

        pos = [t for t in self.world.terminals if t.kind == "pos"]
        rng = random.Random(self.stan)
        while not self.stop.is_set():
            self.stan += 1
            mti, fields = request_fields(
                "purchase", card=rng.choice(self.world.cards), terminal=rng.choice(pos),
                stan=self.stan, at=dt.datetime.now(BEIJING), amount_fen=rng.randint(1, 50_000),
                pin="123456")
            try:
                answer = send_one(HOST, self.port, encode_message(mti, fields), timeout_s=5)
            except (OSError, ValueError):
                return  # the server died: what was not answered was not acknowledged
            if isinstance(answer, Decoded) and answer.fields.get("39") == "00":
                self.approved.append(str(fields["37"]))


def _load(port: int, seconds: float, seed: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([QINGSUAN, "cards", "load", "--host", HOST, "--port", str(port),
                             "--duration", f"{seconds:.2f}", "--connections", "4",
                             "--in-flight", "32", "--seed", str(seed), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _examine(store: str) -> tuple[set[str], int, str, str]:
    """What a restart finds: the approved RRNs, the approvals, the recovered state hash,
    and the state hash of a replay from the first entry."""
    from qingsuan.clock import VirtualClock
    from qingsuan.engine import replay
    from qingsuan.world import World, world_systems

    world = World.open(store, VirtualClock(0), readonly=True)
    try:
        approved = [t for t in world.switch.txns.values() if t.rc == "00"]
        recovered = world.engine.state_hash().hex()
    finally:
        world.close()
    replayed = replay(store, world_systems()).state_hash().hex()
    return {t.rrn for t in approved}, len(approved), recovered, replayed


def run(cycles: int, store: str, load_s: float, seed: int, env: dict[str, str]) -> Totals:
    rng = random.Random(seed)
    totals = Totals()
    before = 0
    stan = RECORDER_STAN
    for cycle in range(1, cycles + 1):
        port = _free_port()
        server = _serve(store, port, env)
        stop = threading.Event()
        load = _load(port, LOAD_WARMUP_S + load_s, seed + cycle)
        recorder = Recorder(port, stan, stop)
        recorder.start()
        # a random moment under load (the load generator takes a moment to start)
        time.sleep(LOAD_WARMUP_S + rng.uniform(0.0, load_s))
        _kill(server)
        stop.set()
        recorder.join(10)
        stan = recorder.stan + 1
        try:
            out, _ = load.communicate(timeout=LOAD_WARMUP_S + load_s + 30)
            report = json.loads(out or b"{}")
        except (subprocess.TimeoutExpired, ValueError):
            load.kill()
            load.wait()
            report = {}
        load_ok = int(report.get("response_codes", {}).get("00", 0))
        rrns, count, recovered, replayed = _examine(store)
        missing = [r for r in recorder.approved if r not in rrns]
        totals.cycles += 1
        totals.load_approved += load_ok
        totals.recorded += len(recorder.approved)
        totals.in_store = count
        acked = load_ok + len(recorder.approved)
        line = (f"cycle {cycle}: acknowledged {acked} approvals ({load_ok} load, "
                f"{len(recorder.approved)} recorded), {count - before} new in the store; "
                f"recovered {recovered[:12]}, replay {replayed[:12]}")
        print(line, flush=True)
        if missing:
            totals.failures.append(f"cycle {cycle}: {len(missing)} recorded approvals missing: "
                                   f"{missing[:5]}")
        if count - before < acked:
            totals.failures.append(f"cycle {cycle}: {acked} approvals acknowledged, only "
                                   f"{count - before} new in the store")
        if recovered != replayed:
            totals.failures.append(f"cycle {cycle}: the recovered state {recovered} is not "
                                   f"the replay's {replayed}")
        before = count
    port = _free_port()  # the store still opens for a server after the last kill
    server = _serve(store, port, env)
    server.send_signal(signal.SIGTERM)
    if server.wait(30) != 0:
        totals.failures.append(f"the last restart exited {server.returncode}")
    return totals


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100, help="SIGKILLs (default 100)")
    parser.add_argument("--store", default="", help="postgresql://HOST:PORT/DB (a fresh "
                        "schema is made and dropped); default a temporary SQLite file")
    parser.add_argument("--load-seconds", type=float, default=2.0,
                        help="most seconds of load before each kill (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 1 <= args.cycles <= MAX_CYCLES or not 0.3 <= args.load_seconds <= MAX_LOAD_S:
        parser.error(f"--cycles 1..{MAX_CYCLES}, --load-seconds 0.3..{MAX_LOAD_S}")
    # one card key for the servers and this process's own look at the store (the vault)
    os.environ.setdefault("QINGSUAN_CARD_KEY", "ab" * 32)
    env = dict(os.environ)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qingsuan-crash-") as tmp:
        schema = ""
        if args.store.startswith("postgres"):
            schema = f"qs_crash_{uuid.uuid4().hex[:10]}"
            store = f"{args.store}{'&' if '?' in args.store else '?'}schema={schema}"
        else:
            store = str(Path(tmp) / "crash.db")
        try:
            totals = run(args.cycles, store, args.load_seconds, args.seed, env)
        finally:
            if schema:
                _drop_schema(args.store.split("?", 1)[0], schema)
    kind = "PostgreSQL" if schema else "SQLite"
    print(f"crash cycles on {kind}: {totals.cycles} SIGKILLs in {time.perf_counter() - t0:.0f} s;"
          f" {totals.load_approved + totals.recorded} approvals acknowledged "
          f"({totals.recorded} recorded one by one and found by RRN), {totals.in_store} "
          f"approved in the store at the end; {len(totals.failures)} failures")
    for failure in totals.failures:
        print("FAIL " + failure)
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
