"""The command store: one suite, run over the memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from qingsuan.store import (
    GENESIS_HASH,
    BrokenChainError,
    CommandLog,
    LogEntry,
    LogError,
    Snapshot,
    base,
    entry_hash,
    memory,
    open_log,
)
from qingsuan.store.schema import ALEMBIC_VERSION_TABLE, command_log, meta, snapshot
from qingsuan.store.sql import sqlite_engine

# ---------------------------------------------------------------------- harnesses


class Harness:
    """Opens one store by url and damages it directly in its storage, as a crash or a bad
    disk would, bypassing the store's API."""

    url: str
    where: str  # what error messages must name

    def open(self, *, verify: bool = True) -> CommandLog:
        return open_log(self.url, verify=verify)

    def update_entry(self, seq: int, **values: Any) -> None:
        raise NotImplementedError

    def delete_entry(self, seq: int) -> None:
        raise NotImplementedError

    def update_snapshot_state(self, seq: int, state: bytes) -> None:
        raise NotImplementedError

    def set_format_version(self, value: str) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class MemoryHarness(Harness):
    def __init__(self) -> None:
        self.name = f"test-{uuid.uuid4().hex}"
        self.url = self.where = f"memory://{self.name}"
        self.backing = memory.backing(self.name)

    def _index(self, seq: int) -> int:
        return next(i for i, e in enumerate(self.backing.entries) if e.seq == seq)

    def update_entry(self, seq: int, **values: Any) -> None:
        i = self._index(seq)
        self.backing.entries[i] = dataclasses.replace(self.backing.entries[i], **values)

    def delete_entry(self, seq: int) -> None:
        del self.backing.entries[self._index(seq)]

    def update_snapshot_state(self, seq: int, state: bytes) -> None:
        _state, state_hash, chain = self.backing.snapshots[seq]
        self.backing.snapshots[seq] = (state, state_hash, chain)

    def set_format_version(self, value: str) -> None:
        self.backing.meta["format_version"] = value

    def cleanup(self) -> None:
        memory.discard(self.name)


class SqlHarness(Harness):
    def __init__(self, url: str, where: str, engine: sa.Engine) -> None:
        self.url, self.where, self.engine = url, where, engine

    def _run(self, *statements: sa.Executable) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)

    def update_entry(self, seq: int, **values: Any) -> None:
        self._run(sa.update(command_log).where(command_log.c.seq == seq).values(**values))

    def delete_entry(self, seq: int) -> None:
        self._run(sa.delete(command_log).where(command_log.c.seq == seq))

    def update_snapshot_state(self, seq: int, state: bytes) -> None:
        self._run(sa.update(snapshot).where(snapshot.c.seq == seq).values(state=state))

    def set_format_version(self, value: str) -> None:
        self._run(sa.update(meta).where(meta.c.key == "format_version").values(value=value))

    def set_alembic_revision(self, value: str) -> None:
        self._run(
            sa.text(f"UPDATE {ALEMBIC_VERSION_TABLE} SET version_num = :v").bindparams(v=value)
        )

    def cleanup(self) -> None:
        self.engine.dispose()


class PostgresHarness(SqlHarness):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn.replace("+psycopg", "", 1)
        self.schema = f"qs_test_{uuid.uuid4().hex[:16]}"
        engine = sa.create_engine(
            sa.make_url(self.dsn).set(drivername="postgresql+psycopg"),
            connect_args={"options": f"-c search_path={self.schema}"},
        )
        super().__init__(f"{self.dsn}?schema={self.schema}", self.schema, engine)

    def cleanup(self) -> None:
        super().cleanup()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h: Harness
    if request.param == "memory":
        h = MemoryHarness()
    elif request.param == "sqlite":
        path = str(tmp_path / "log.db")
        h = SqlHarness(path, path, sqlite_engine(path))
    else:
        h = PostgresHarness(request.getfixturevalue("pg_dsn"))
    try:
        yield h
    finally:
        h.cleanup()


@pytest.fixture
def log(harness: Harness) -> Iterator[CommandLog]:
    with harness.open() as opened:
        yield opened


def fill(log: CommandLog, n: int, size: int = 16) -> list[LogEntry]:
    """Append ``n`` single-command batches with distinct payloads."""
    return [log.append([("transfers", f"p{i}".encode().ljust(size, b"."))])[0] for i in range(n)]


def assert_chained(entries: list[LogEntry]) -> None:
    prev = GENESIS_HASH
    for i, e in enumerate(entries, start=1):
        assert e.seq == i
        assert e.prev_hash == prev
        assert e.hash == entry_hash(e.prev_hash, e.seq, e.kind, e.payload)
        prev = e.hash


# ---------------------------------------------------------------------- the hash


def test_entry_hash_is_the_documented_function() -> None:
    h1 = entry_hash(GENESIS_HASH, 1, "transfers", b"hello")
    assert (
        h1
        == hashlib.sha256(
            bytes(32) + (1).to_bytes(8, "big") + bytes([9]) + b"transfers" + b"hello"
        ).digest()
    )
    assert h1.hex() == "39be1bd60ae046f45a45de13c00680cb84e08c580cbabcebd5b253bb222e6804"
    h2 = entry_hash(h1, 2, "expire", b"")
    assert h2.hex() == "9f3f85c6b4e4c991216027608e3e4ed030f34dd2d1645bbbef9467eca0be5e6e"
    assert bytes(32) == GENESIS_HASH


def test_entry_hash_rejects_bad_kinds() -> None:
    with pytest.raises(ValueError):
        entry_hash(GENESIS_HASH, 1, "转账", b"")
    with pytest.raises(ValueError):
        entry_hash(GENESIS_HASH, 1, "k" * 256, b"")


# ---------------------------------------------------------------------- append / read


def test_append_round_trip_and_chain(log: CommandLog) -> None:
    assert (log.last_seq, log.last_hash) == (0, GENESIS_HASH)
    [e1] = log.append([("accounts", b"\x00\x01binary\xff")])
    assert (e1.seq, e1.kind, e1.payload, e1.prev_hash) == (
        1,
        "accounts",
        b"\x00\x01binary\xff",
        GENESIS_HASH,
    )
    assert e1.hash == entry_hash(GENESIS_HASH, 1, "accounts", b"\x00\x01binary\xff")
    [e2] = log.append([("transfers", b"")])
    assert e2.prev_hash == e1.hash
    assert (log.last_seq, log.last_hash) == (2, e2.hash)
    stored = list(log.entries())
    assert stored == [e1, e2]
    assert all(type(e.payload) is bytes for e in stored)
    assert_chained(stored)


def test_group_commit_returns_contiguous_seqs(log: CommandLog) -> None:
    assert log.append([]) == []
    first = log.append([("accounts", b"a"), ("transfers", b"b"), ("transfers", b"c")])
    second = log.append([("expire", b"d"), ("transfers", bytearray(b"e"))])  # type: ignore[list-item]
    assert [e.seq for e in first] == [1, 2, 3]
    assert [e.seq for e in second] == [4, 5]
    assert second[0].prev_hash == first[-1].hash
    assert list(log.entries()) == first + second
    assert log.last_seq == 5
    assert log.append([]) == [] and log.last_seq == 5


def test_invalid_commands_are_rejected_and_nothing_is_written(log: CommandLog) -> None:
    with pytest.raises(ValueError):
        log.append([("ok", b"x"), ("转账", b"x")])
    with pytest.raises(ValueError):
        log.append([("", b"x")])
    with pytest.raises(TypeError):
        log.append([("transfers", "not bytes")])  # type: ignore[list-item]
    assert log.last_seq == 0 and list(log.entries()) == []
    log.append([("transfers", b"fine")])
    assert log.last_seq == 1


def test_reopen_keeps_everything(harness: Harness) -> None:
    with harness.open() as log:
        written = fill(log, 3) + log.append([("a", b"1"), ("b", b"2")])
        last = log.last_hash
    with harness.open() as log:
        assert (log.last_seq, log.last_hash) == (5, last)
        assert list(log.entries()) == written
        [e6] = log.append([("transfers", b"after reopen")])
        assert (e6.seq, e6.prev_hash) == (6, last)
    with harness.open() as log:
        assert_chained(list(log.entries()))
        assert log.last_seq == 6


def test_reopen_without_verification(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 4)
        last = log.last_hash
    with harness.open(verify=False) as log:
        assert (log.last_seq, log.last_hash) == (4, last)


def test_entries_after_seq_streams_in_chunks(
    log: CommandLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = fill(log, 150, size=1000)
    assert list(log.entries(0)) == written
    assert list(log.entries(100)) == written[100:]
    assert list(log.entries(149)) == written[149:]
    assert list(log.entries(150)) == []
    assert list(log.entries(10_000)) == []

    # Chunks are bounded by payload bytes: ~10 KB per query with 1 KB payloads.
    monkeypatch.setattr(base, "_CHUNK_TARGET_BYTES", 10_000)
    sizes: list[int] = []
    fetch = log._fetch_entries

    def spy(after_seq: int, limit: int) -> list[LogEntry]:
        chunk = fetch(after_seq, limit)
        sizes.append(len(chunk))
        return chunk

    monkeypatch.setattr(log, "_fetch_entries", spy)
    it = log.entries(0)
    assert next(it) == written[0]
    assert sizes == [64]  # only the first chunk has been read
    assert [e.seq for e in it] == list(range(2, 151))
    assert max(sizes[1:]) <= 10 and sum(sizes) == 150


def test_closed_store_refuses_use(harness: Harness) -> None:
    log = harness.open()
    log.close()
    log.close()  # idempotent
    with pytest.raises(LogError, match="closed"):
        log.append([("transfers", b"x")])
    with pytest.raises(LogError, match="closed"):
        list(log.entries())


def test_failed_append_stops_writes_until_reopen(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    with harness.open() as log:
        fill(log, 2)

        def boom(entries: list[LogEntry]) -> None:
            raise LogError("disk on fire")

        monkeypatch.setattr(log, "_write_entries", boom)
        with pytest.raises(LogError, match="disk on fire"):
            log.append([("transfers", b"x")])
        monkeypatch.undo()
        assert log.last_seq == 2
        with pytest.raises(LogError, match="re-open"):
            log.append([("transfers", b"y")])
    with harness.open() as log:
        assert log.last_seq == 2
        assert log.append([("transfers", b"y")])[0].seq == 3


def test_second_writer_cannot_fork_the_chain(harness: Harness) -> None:
    with harness.open() as a, harness.open() as b:
        a.append([("transfers", b"from a")])
        with pytest.raises(LogError):
            b.append([("transfers", b"from b")])
    with harness.open() as log:
        assert [e.payload for e in log.entries()] == [b"from a"]


# ---------------------------------------------------------------------- verification


def test_torn_tail_is_discarded_and_appending_continues(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with harness.open() as log:
        fill(log, 2)
        kept = log.append([("a", b"3"), ("b", b"4")])[-1]
        log.append([("c", b"5 half written")])
    harness.update_entry(5, payload=b"5 half wri\x00\x00\x00\x00")

    with caplog.at_level(logging.WARNING, logger="qingsuan.store"):
        log = harness.open()
    with log:
        assert "torn tail entry 5" in caplog.text
        assert (log.last_seq, log.last_hash) == (4, kept.hash)
        assert [e.seq for e in log.entries()] == [1, 2, 3, 4]
        [e5] = log.append([("c", b"5 again")])
        assert (e5.seq, e5.prev_hash) == (5, kept.hash)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qingsuan.store"), harness.open() as log:
        assert log.last_seq == 5
        assert_chained(list(log.entries()))
    assert caplog.text == ""


def test_torn_tail_with_damaged_hash_column(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
    harness.update_entry(3, hash=b"\x00" * 7)  # partially written hash
    with harness.open() as log:
        assert log.last_seq == 2


@pytest.mark.parametrize("seq", [1, 3])
def test_corrupt_middle_entry_refuses_to_open(harness: Harness, seq: int) -> None:
    with harness.open() as log:
        fill(log, 5)
    harness.update_entry(seq, payload=b"tampered")
    with pytest.raises(BrokenChainError) as info:
        harness.open()
    assert info.value.seq == seq
    assert f"broken at entry {seq}:" in str(info.value)
    assert "refusing to start" in str(info.value)
    assert harness.where in str(info.value)


@pytest.mark.parametrize("seq", [1, 3, 5])
def test_broken_link_refuses_to_open(harness: Harness, seq: int) -> None:
    """An entry whose own hash is consistent but which does not link to its predecessor is a
    broken chain even at the tail: a torn write cannot produce a self-consistent entry."""
    with harness.open() as log:
        entries = fill(log, 5)
    forged_prev = hashlib.sha256(b"another history").digest()
    e = entries[seq - 1]
    harness.update_entry(
        seq, prev_hash=forged_prev, hash=entry_hash(forged_prev, seq, e.kind, e.payload)
    )
    with pytest.raises(BrokenChainError, match=f"broken at entry {seq}: prev_hash") as info:
        harness.open()
    assert info.value.seq == seq
    expected = "the genesis hash" if seq == 1 else f"entry {seq - 1}"
    assert f"prev_hash does not match {expected}" in str(info.value)


def test_gap_in_sequence_refuses_to_open(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 5)
    harness.delete_entry(3)
    with pytest.raises(BrokenChainError, match="broken at entry 4: gap") as info:
        harness.open()
    assert info.value.seq == 4


def test_missing_first_entry_refuses_to_open(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
    harness.delete_entry(1)
    with pytest.raises(BrokenChainError, match="broken at entry 2: the log must start"):
        harness.open()


def test_broken_chain_is_not_detected_without_verify(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
    harness.update_entry(2, payload=b"tampered")
    with harness.open(verify=False) as log:
        assert log.last_seq == 3


# ---------------------------------------------------------------------- snapshots


def test_snapshots_save_and_load(harness: Harness) -> None:
    with harness.open() as log:
        assert log.latest_snapshot() is None
        fill(log, 4)
        log.save_snapshot(Snapshot.of(0, b"empty"))
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
        log.save_snapshot(Snapshot.of(4, b"state at 4, first try"))
        log.save_snapshot(Snapshot.of(4, b"state at 4"))  # replaces
        assert log.latest_snapshot() == Snapshot.of(4, b"state at 4")
    with harness.open() as log:
        snap = log.latest_snapshot()
        assert snap == Snapshot(4, b"state at 4", hashlib.sha256(b"state at 4").digest())
        with pytest.raises(ValueError, match="outside the log"):
            log.save_snapshot(Snapshot.of(5, b"future"))
        with pytest.raises(ValueError, match="state_hash"):
            log.save_snapshot(Snapshot(1, b"state", bytes(32)))


def test_corrupt_snapshot_falls_back_to_earlier(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with harness.open() as log:
        fill(log, 4)
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
        log.save_snapshot(Snapshot.of(4, b"state at 4"))
    harness.update_snapshot_state(4, b"state at 4 but rotten")
    with caplog.at_level(logging.WARNING, logger="qingsuan.store"), harness.open() as log:
        assert log.latest_snapshot() == Snapshot.of(2, b"state at 2")
    assert "snapshot at seq 4 is corrupt" in caplog.text
    harness.update_snapshot_state(2, b"also rotten")
    with harness.open() as log:
        assert log.latest_snapshot() is None


def test_snapshot_of_a_lost_history_is_ignored(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with harness.open() as log:
        fill(log, 5)
        log.save_snapshot(Snapshot.of(3, b"state at 3"))
        log.save_snapshot(Snapshot.of(5, b"state at 5"))
    harness.update_entry(5, payload=b"torn")
    with caplog.at_level(logging.WARNING, logger="qingsuan.store"), harness.open() as log:
        assert log.last_seq == 4
        assert log.latest_snapshot() == Snapshot.of(3, b"state at 3")
        assert "beyond the last entry" in caplog.text
        # A new entry 5 is a different history: the old snapshot at 5 must not apply to it.
        log.append([("transfers", b"a different entry 5")])
        assert log.latest_snapshot() == Snapshot.of(3, b"state at 3")
        assert "different history" in caplog.text


# ---------------------------------------------------------------------- opening


def test_wrong_format_version_refuses_to_open(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 1)
    harness.set_format_version("999")
    with pytest.raises(LogError, match="format version 999") as info:
        harness.open()
    assert harness.where in str(info.value)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://user@host/db", "mysql"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2"),
        ("file:///tmp/x.json", "file"),
        ("s3:bucket", "s3"),
    ],
)
def test_bad_url_names_the_scheme(url: str, scheme: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"'{scheme}'")):
        open_log(url)


@pytest.mark.parametrize("url", ["no_scheme.json", "sqlite://", "sqlite:///:memory:"])
def test_bad_url_without_usable_target(url: str) -> None:
    with pytest.raises(ValueError):
        open_log(url)


def test_memory_urls_open_fresh_logs() -> None:
    for url in ("memory:", "memory://"):
        with open_log(url) as log:
            log.append([("transfers", b"x")])
        with open_log(url) as log:
            assert log.last_seq == 0


def test_sqlite_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_log("sqlite:///rel.db") as log:
        log.append([("transfers", b"x")])
    with open_log(tmp_path / "rel.db") as log:
        assert log.last_seq == 1
    with open_log(f"sqlite:///{tmp_path}/abs.db") as log:
        assert log.last_seq == 0
    assert (tmp_path / "abs.db").exists()


def test_sqlite_is_wal_with_full_sync_and_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log.db"
    with open_log(str(path)) as log:
        db: Any = log._db  # type: ignore[attr-defined]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        engine: sa.Engine = log._engine  # type: ignore[attr-defined]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_sqlite_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(LogError, match=re.escape(str(path))):
        open_log(str(path))


def test_sqlite_newer_schema_revision_refuses_to_open(tmp_path: Path) -> None:
    path = str(tmp_path / "log.db")
    open_log(path).close()
    harness = SqlHarness(path, path, sqlite_engine(path))
    try:
        harness.set_alembic_revision("9999")
    finally:
        harness.cleanup()
    with pytest.raises(LogError, match="newer qingsuan") as info:
        open_log(path)
    assert path in str(info.value)


@pytest.mark.postgres
def test_postgres_schema_isolation(pg_dsn: str) -> None:
    a, b = PostgresHarness(pg_dsn), PostgresHarness(pg_dsn)
    try:
        with open_log(a.url) as log:
            log.append([("transfers", b"in a")])
        with open_log(b.url) as log:
            assert log.last_seq == 0
        with a.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(command_log)).scalar() == 1
        url = pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        with open_log(f"{url}?schema={a.schema}") as log:
            assert log.last_seq == 1
        with pytest.raises(ValueError, match="schema"):
            open_log(f"{pg_dsn}?schema=bad;name")
    finally:
        a.cleanup()
        b.cleanup()


def test_sqlite_one_entry_append_is_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = open_log(f"sqlite:///{path}")
    try:
        log.append([("x.one", b"payload")])
        db: sqlite3.Connection = log._db  # type: ignore[attr-defined]
        assert not db.in_transaction  # nothing left open: durable when append returns
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("SELECT count(*) FROM command_log").fetchone()[0] == 1
        finally:
            other.close()
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        log.append([("x.two", b"a"), ("x.three", b"b")])
        assert not db.in_transaction
    finally:
        log.close()
