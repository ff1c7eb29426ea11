"""The engine over each command-log store: durable before acknowledged, replay rebuilds the
identical state, snapshots restart fast, and a SIGKILL at any moment loses nothing
acknowledged and half-applies nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from qingsuan.clock import VirtualClock
from qingsuan.engine import Engine, ReplayError, replay
from qingsuan.ledger import (
    Account,
    AccountFlags,
    NormalSide,
    PendingState,
    Transfer,
    TransferFlags,
)
from qingsuan.ledger import TransferResult as R
from qingsuan.store import open_log

MNO = AccountFlags.MUST_NOT_OVERDRAW


def _world(engine: Engine) -> None:
    engine.open_accounts([(1, "ICBC")], [
        Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.CREDIT, MNO),
        Account(3, 1, NormalSide.CREDIT, MNO)])


def test_commands_survive_reopen_with_identical_state(log_url: str) -> None:
    clock = VirtualClock(10)
    with Engine.open(log_url, clock) as engine:
        _world(engine)
        r1 = engine.submit_transfers([Transfer(1, 1, 2, 5000), Transfer(2, 2, 3, 9000)])
        assert [r1.results[0], r1.results[1]] == [R.OK, R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS]
        clock.advance_to(20)
        engine.submit_transfers([Transfer(3, 2, 1, 1000, flags=TransferFlags.PENDING,
                                          timeout_us=100)])
        clock.advance_to(200)
        assert engine.tick() == [3]
        expected = engine.state_hash()
        seq = engine.applied_seq
    with Engine.open(log_url, VirtualClock(200)) as again:
        assert again.applied_seq == seq
        assert again.state_hash() == expected
        assert again.ledger.balance(2).posted_fen == 5000
        assert again.ledger.pending_state(3) is PendingState.EXPIRED
        # retry after restart: idempotent, nothing moves
        receipt = again.submit_transfers([Transfer(1, 1, 2, 5000)])
        assert receipt.results[0] is R.EXISTS
        assert again.ledger.balance(2).posted_fen == 5000
        after_retry = again.state_hash()
    if not log_url.startswith("memory"):
        assert replay(log_url).state_hash() == after_retry


def test_snapshot_restart_equals_full_replay(log_url: str) -> None:
    clock = VirtualClock(0)
    with Engine.open(log_url, clock, snapshot_every=3) as engine:
        _world(engine)
        for i in range(10):
            clock.advance_to(clock.now_us() + 5)
            engine.submit_transfers([Transfer(100 + i, 1, 2 + i % 2, 100 + i)])
        expected = engine.state_hash()
        snap = engine.log.latest_snapshot()
        assert snap is not None and snap.seq >= 9
    with Engine.open(log_url, clock) as again:
        assert again.state_hash() == expected
        assert again.ledger.balance(3).posted_fen == sum(100 + i for i in range(1, 10, 2))


def test_group_commit_applies_in_order() -> None:
    clock = VirtualClock(0)
    with Engine.open("memory:", clock) as engine:
        _world(engine)
        receipts = engine.submit_many([[Transfer(1, 1, 2, 100)], [Transfer(2, 2, 3, 100)]])
        assert [r.seq for r in receipts] == [2, 3]
        assert receipts[1].results[0] is R.OK  # saw the first batch's credit
        assert engine.ledger.balance(3).posted_fen == 100


def test_broken_chain_refuses_to_start(tmp_path: Path) -> None:
    url = str(tmp_path / "broken.db")
    clock = VirtualClock(0)
    with Engine.open(url, clock) as engine:
        _world(engine)
        for i in range(3):
            engine.submit_transfers([Transfer(10 + i, 1, 2, 1)])
    import sqlite3

    con = sqlite3.connect(url)
    con.execute("UPDATE command_log SET payload = X'00' || payload WHERE seq = 2")
    con.commit()
    con.close()
    from qingsuan.store import BrokenChainError

    with pytest.raises(BrokenChainError, match="entry 2"):
        Engine.open(url, clock)


def _pump(stream: IO[bytes], lines: list[str], seen: threading.Event) -> None:
    for raw in stream:
        lines.append(raw.decode())
        seen.set()


def _crash_rounds(url: str, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    env = dict(os.environ)
    writer = Path(__file__).with_name("crash_writer.py")
    for round_no in range(rounds):
        proc = subprocess.Popen([sys.executable, str(writer), url, str(seed + round_no)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        lines: list[str] = []
        first_ack = threading.Event()

        reader = threading.Thread(target=_pump, args=(proc.stdout, lines, first_ack),
                                  daemon=True)
        reader.start()
        # wait for the writer to be well under way (start-up time varies with load), then
        # kill it at a random moment mid-stream
        assert first_ack.wait(60), "the writer acknowledged nothing within 60 s"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(10)
        err = proc.stderr.read() if proc.stderr else b""
        acks = [line.split() for line in lines if line.startswith("ACK")]
        assert acks, f"writer acknowledged nothing before the kill: {err.decode()[-2000:]}"
        # Restart: every acknowledged batch is in the log, byte for byte (hash chain).
        with Engine.open(url, VirtualClock(0)) as engine:
            log_hashes = {e.seq: e.hash.hex() for e in engine.log.entries(0)}
            for _, seq, digest in acks:
                assert log_hashes.get(int(seq)) == digest, f"acknowledged entry {seq} lost"
            # Nothing half-applied: each logged batch's transfers are all present.
            from qingsuan.ledger import decode_batch

            for entry in engine.log.entries(0):
                if entry.kind != "transfers":
                    continue
                batch, _ = decode_batch(entry.payload)
                present = [engine.ledger.lookup_transfer(int(t)) is not None for t in batch.id]
                assert all(present), f"batch {entry.seq} half applied"
            engine.ledger.check_invariants()
            restored = engine.state_hash()
        # The snapshot-based restart equals a replay from the first entry.
        assert replay(url).state_hash() == restored


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_sigkill_loses_nothing_acknowledged(store: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    if store == "sqlite":
        url = str(tmp_path / "crash.db")
    else:
        import uuid

        dsn = request.getfixturevalue("pg_dsn")
        schema = f"crash_{uuid.uuid4().hex[:12]}"
        url = f"{dsn}?schema={schema}"
    try:
        _crash_rounds(url, rounds=3, seed=7)
    finally:
        if store == "postgres":
            import psycopg

            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_changed_last_entry_stops_the_engine_until_repaired(tmp_path: Path) -> None:
    """A committed entry is never torn: a last entry that fails its hash is refused (not
    discarded), and only an explicit repair removes it, keeping a copy."""
    from qingsuan.store import BrokenChainError
    from qingsuan.store.repair import repair_log

    url = str(tmp_path / "changed.db")
    clock = VirtualClock(0)
    with Engine.open(url, clock) as engine:
        _world(engine)
        engine.submit_transfers([Transfer(1, 1, 2, 100)])
        engine.submit_transfers([Transfer(2, 1, 2, 200)])
    import sqlite3

    con = sqlite3.connect(url)
    con.execute("UPDATE command_log SET payload = substr(payload, 1, 20) WHERE seq = 3")
    con.commit()
    con.close()
    for _ in range(2):
        with pytest.raises(BrokenChainError, match="broken at entry 3"):
            Engine.open(url, clock)
    assert repair_log(url, 2).removed_entries == 1
    with Engine.open(url, clock) as engine:
        assert engine.applied_seq == 2
        assert engine.ledger.balance(2).posted_fen == 100
        assert engine.submit_transfers([Transfer(2, 1, 2, 200)]).results[0] is R.OK
    with open_log(url) as log:
        assert log.last_seq == 3


def test_last_entry_is_the_proof_of_durability(log_url: str) -> None:
    with Engine.open(log_url, VirtualClock(0)) as engine:
        _world(engine)
        receipt = engine.submit_transfers([Transfer(1, 1, 2, 100)])
        proof = engine.last_entry()
        assert proof.seq == receipt.seq == engine.log.last_seq
        assert proof.hash == engine.log.hash_at(receipt.seq) == engine.log.last_hash
    with Engine.open(log_url, VirtualClock(0), readonly=True) as again:
        assert again.last_entry() == proof
        with pytest.raises(Exception, match="read-only"):
            again.submit_transfers([Transfer(2, 1, 2, 1)])


def test_a_command_that_cannot_be_applied_stops_the_engine() -> None:
    """Fail-stop: after a logged command fails to apply, no further command is taken."""
    from qingsuan.engine import EngineFailed

    with Engine.open("memory:", VirtualClock(0)) as engine:
        _world(engine)
        with pytest.raises(ReplayError, match="unknown command kind"):
            engine.command("nosuch.kind", b"{}")
        with pytest.raises(EngineFailed, match="could not apply"):
            engine.submit_transfers([Transfer(1, 1, 2, 5)])



class _Echo:
    """A system that records what it applies (a stand-in for the card switch)."""

    prefix = "echo"

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> int:
        self.seen.append(body)
        return len(self.seen)

    def dump_state(self) -> bytes:
        return b"|".join(self.seen)

    def load_state(self, state: bytes) -> None:
        self.seen = state.split(b"|") if state else []


def test_command_group_is_one_entry_applied_in_order_and_replayed(log_url: str) -> None:
    clock = VirtualClock(5)
    bodies = [b"a", b"", b"ccc" * 100, b"d"]
    with Engine.open(log_url, clock, systems=[_Echo()]) as engine:
        before = engine.applied_seq
        assert engine.command_group("echo.it", bodies) == [1, 2, 3, 4]
        assert engine.applied_seq == before + 1  # one log entry for the four
        assert engine.systems["echo"].seen == bodies  # type: ignore[attr-defined]
        expected = engine.state_hash()
        with pytest.raises(ValueError, match="unknown command kind"):
            engine.command_group("nosuch.it", [b"x"])
        with pytest.raises(ValueError, match="1 to"):
            engine.command_group("echo.it", [])
        assert engine.applied_seq == before + 1  # refused groups log nothing
    with Engine.open(log_url, VirtualClock(5), systems=[_Echo()]) as again:
        assert again.state_hash() == expected
