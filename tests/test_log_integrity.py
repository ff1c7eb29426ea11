"""The log cannot be quietly shortened or changed, and a store has one writer: each attack of
issues 12 and 13 tried from outside (the CLI, a second process) on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.clock import VirtualClock
from qingsuan.engine import Engine
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario
from qingsuan.store import (
    BrokenChainError,
    LogTruncatedError,
    NotAStoreError,
    WriterLockedError,
    entry_hash,
)
from qingsuan.world import World

SCENARIOS = Path(str(resources.files("qingsuan") / "scenarios"))


@dataclass
class Store:
    """A world's store, and direct SQL on its tables (as an intruder has it)."""

    url: str
    path: Path | None  # the SQLite file
    dsn: str = ""
    schema: str = ""

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                with conn:
                    rows = conn.execute(statement.replace("%s", "?"), params).fetchall()
            finally:
                conn.close()
            return rows
        with psycopg.connect(self.dsn, options=f"-c search_path={self.schema}") as pg:
            cur = pg.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def last(self) -> tuple[int, str, bytes, bytes, bytes]:
        [row] = self.sql("SELECT seq, kind, payload, prev_hash, hash FROM command_log "
                         "ORDER BY seq DESC LIMIT 1")
        seq, kind, payload, prev, h = row
        return int(seq), str(kind), bytes(payload), bytes(prev), bytes(h)

    def files(self) -> dict[str, bytes]:
        assert self.path is not None
        return {p.name: p.read_bytes() for p in self.path.parent.iterdir()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store holding a finished run of the intrabank story."""
    if request.param == "sqlite":
        path = tmp_path / "world" / "w.db"
        path.parent.mkdir()
        store = Store(str(path), path)
    else:
        dsn = request.getfixturevalue("pg_dsn").replace("+psycopg", "", 1)
        schema = f"integrity_{uuid.uuid4().hex[:12]}"
        store = Store(f"{dsn}?schema={schema}", None, dsn, schema)
    run_scenario(load_scenario(SCENARIOS / "intrabank.yaml"), store=store.url)
    try:
        yield store
    finally:
        if store.path is None:
            with psycopg.connect(store.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


def verify(*args: str) -> Any:
    return CliRunner().invoke(app, ["log", "verify", *args])


def flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------- a changed entry


def test_a_changed_last_entry_is_reported_and_kept(world_store: Store) -> None:
    """Issue 13: one byte of the last entry's payload changed was called a torn tail,
    deleted, and verify exited 0. Now: exit 1 naming the entry and both hashes; the row
    stays as it is; nothing opens the store for writing."""
    seq, kind, payload, prev, stored = world_store.last()
    changed = bytes([payload[0] ^ 1]) + payload[1:]
    world_store.sql("UPDATE command_log SET payload = %s WHERE seq = %s", changed, seq)
    before = world_store.files() if world_store.path else {}
    result = verify(world_store.url)
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert f"entry {seq}" in text and "chain intact" not in text
    assert stored.hex() in text and entry_hash(prev, seq, kind, changed).hex() in text
    if world_store.path:
        assert world_store.files() == before  # verify wrote nothing
    assert world_store.last() == (seq, kind, changed, prev, stored)  # not erased
    with pytest.raises(BrokenChainError, match=f"entry {seq}"):
        World.open(world_store.url, VirtualClock(0))
    assert world_store.last()[0] == seq


def test_a_deleted_tail_is_reported(world_store: Store) -> None:
    """Deleting the last row used to verify as "chain intact"; the checkpoint (written at
    the run's clean close) now says how long the log was."""
    seq, *_, stored = world_store.last()
    world_store.sql("DELETE FROM command_log WHERE seq = %s", seq)
    result = verify(world_store.url)
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert f"ends at entry {seq - 1}" in text and f"records entry {seq}" in text
    assert stored.hex() in text
    with pytest.raises(LogTruncatedError):
        Engine.open(world_store.url, VirtualClock(0))

    # the explicit repair: a copy first, then the log as it is, recorded
    repaired = CliRunner().invoke(app, ["log", "repair", world_store.url,
                                        "--truncate-after", str(seq - 1)])
    assert repaired.exit_code == 0, repaired.output
    assert "copy kept in" in repaired.output
    if world_store.path:
        assert any(name.endswith(".bak") for name in world_store.files())
    else:
        assert world_store.sql("SELECT count(*) FROM information_schema.tables WHERE "
                               "table_schema = %s AND table_name LIKE 'command_log_backup_%%'",
                               world_store.schema) == [(1,)]
    assert verify(world_store.url).exit_code == 0


def test_a_deleted_snapshot_is_reported(world_store: Store) -> None:
    [(snap,)] = world_store.sql("SELECT max(seq) FROM snapshot")
    world_store.sql("DELETE FROM snapshot WHERE seq = %s", snap)
    result = verify(world_store.url)
    assert result.exit_code == 1
    assert f"snapshot at entry {snap}" in flat(result.output)
    assert "missing" in result.output


def test_a_rolled_back_store_is_caught_by_a_proof(tmp_path: Path) -> None:
    """A store swapped for an older copy of itself is consistent on its own; the proof an
    answer carried (seq and chain hash of its entry) shows it is not the store that gave it."""
    store = tmp_path / "w.db"
    run_scenario(load_scenario(SCENARIOS / "intrabank.yaml"), store=str(store))
    old = tmp_path / "old.db"
    shutil.copy(store, old)
    clock = VirtualClock(0)
    world = World.open(str(store), clock)
    try:
        clock.advance_to(world.engine.ledger.last_timestamp_us + 1)
        world.engine.tick()
        proof = world.engine.last_entry()
    finally:
        world.close()
    assert verify(str(store), "--expect", str(proof)).exit_code == 0
    shutil.copy(old, store)
    assert verify(str(store)).exit_code == 0
    result = verify(str(store), "--expect", str(proof))
    assert result.exit_code == 1
    assert f"does not hold entry {proof.seq}" in flat(result.output)
    assert verify(str(store), "--expect", "12:zz").exit_code == 2


# ---------------------------------------------------------------------- not a store


def test_an_empty_file_is_not_a_store(tmp_path: Path) -> None:
    """A store file truncated to 0 bytes verified as intact and `serve` started a new world
    on it. Now both refuse, and neither writes to it nor creates anything beside it."""
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = verify(str(empty))
    assert result.exit_code == 2, result.output
    assert "0 bytes" in flat(result.output) and "chain intact" not in result.output
    with pytest.raises(NotAStoreError):
        World.open(str(empty), VirtualClock(0))
    served = subprocess.run(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(empty), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False)
    assert served.returncode != 0 and "0 bytes" in flat(served.stderr), served.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["empty.db"]
    assert empty.stat().st_size == 0
    with Engine.open(str(empty), VirtualClock(0), create=True) as engine:  # told to
        engine.tick()
    assert verify(str(empty)).exit_code == 0


def test_a_foreign_database_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    result = verify(str(other))
    assert result.exit_code == 2 and "accounts" in result.output
    with pytest.raises(NotAStoreError, match="not a qingsuan command log"):
        Engine.open(str(other), VirtualClock(0))
    assert other.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["app.db"]


def test_verify_creates_and_writes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.db"
    result = verify(str(missing))
    assert result.exit_code == 2 and "no such command log" in result.output
    assert list(tmp_path.iterdir()) == []
    store = tmp_path / "w.db"
    run_scenario(load_scenario(SCENARIOS / "intrabank.yaml"), store=str(store))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert verify(str(store)).exit_code == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---------------------------------------------------------------------- one writer

_HOLDER = textwrap.dedent("""
    import sys
    from qingsuan.clock import VirtualClock
    from qingsuan.engine import Engine
    engine = Engine.open(sys.argv[1], VirtualClock(0))
    print("READY", flush=True)
    sys.stdin.readline()
    engine.close()
""")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_second_writer_process_is_refused_naming_the_holder(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "sqlite":
        url = str(tmp_path / "one.db")
    else:
        url = f"{request.getfixturevalue('pg_dsn')}?schema=writer_{uuid.uuid4().hex[:12]}"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "READY"
        start = time.monotonic()
        with pytest.raises(WriterLockedError) as info:
            Engine.open(url, VirtualClock(0))
        assert time.monotonic() - start < 5  # at once, not after a timeout
        assert info.value.holder is not None and info.value.holder.pid == holder.pid
        assert f"pid {holder.pid}" in str(info.value)
        with Engine.open(url, VirtualClock(0), readonly=True) as reader:  # readers: no lock
            assert reader.applied_seq == 0
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(30)
    with Engine.open(url, VirtualClock(0)) as engine:  # free again
        engine.tick()
    if kind == "postgres":
        dsn = request.getfixturevalue("pg_dsn").replace("+psycopg", "", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{url.rsplit("=", 1)[1]}" CASCADE')


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_two_serve_processes_on_one_store(tmp_path: Path) -> None:
    """Issue 12: both started, and the first died on a UNIQUE constraint. Now the second
    exits at once, naming the holder (the first server's engine process), and the first
    goes on serving."""
    store = tmp_path / "sandbox.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert "listening on" in line, first.stderr.read() if first.stderr else ""
        start = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0"],
            capture_output=True, text=True, timeout=60, check=False, env=env)
        assert time.monotonic() - start < 30
        assert second.returncode != 0
        text = flat(second.stderr)
        assert "open for writing by pid" in text, second.stderr
        pid = int(text.split("open for writing by pid ", 1)[1].split()[0])
        assert first.pid in (pid, _ppid(pid))
        assert first.poll() is None  # the first one is unharmed
    finally:
        first.terminate()
        assert first.wait(30) == 0
    assert verify(str(store)).exit_code == 0


def test_repair_of_no_store_creates_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["log", "repair", str(tmp_path / "nosuch.db"),
                                      "--truncate-after", "0"])
    assert result.exit_code == 2 and "no such command log" in result.output
    assert list(tmp_path.iterdir()) == []


def test_verify_beside_a_live_writer(tmp_path: Path) -> None:
    store = tmp_path / "w.db"
    run_scenario(load_scenario(SCENARIOS / "intrabank.yaml"), store=str(store))
    clock = VirtualClock(0)
    world = World.open(str(store), clock, snapshot_every=2)
    try:
        for _ in range(5):
            clock.advance_to(world.engine.ledger.last_timestamp_us + 1_000_000)
            world.engine.tick()
        result = verify(str(store))
        assert result.exit_code == 0, result.output
        assert f"last entry {world.engine.last_entry()}" in flat(result.output)
    finally:
        world.close()
