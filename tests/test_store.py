"""The command store: one suite, run over the memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
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
    Checkpoint,
    CommandLog,
    LogEntry,
    LogError,
    LogTruncatedError,
    NotAStoreError,
    Proof,
    Snapshot,
    SnapshotError,
    WriterLockedError,
    base,
    entry_hash,
    memory,
    open_log,
)
from qingsuan.store.repair import repair_log
from qingsuan.store.schema import (
    ALEMBIC_VERSION_TABLE,
    checkpoint,
    command_log,
    meta,
    snapshot,
)
from qingsuan.store.sql import sqlite_engine

# ---------------------------------------------------------------------- harnesses


class Harness:
    """Opens one store by url and damages it directly in its storage, as a crash or a bad
    disk would, bypassing the store's API."""

    url: str
    where: str  # what error messages must name

    def open(self, *, verify: bool = True, **options: Any) -> CommandLog:
        return open_log(self.url, verify=verify, **options)

    def update_entry(self, seq: int, **values: Any) -> None:
        raise NotImplementedError

    def delete_entry(self, seq: int) -> None:
        raise NotImplementedError

    def update_snapshot_state(self, seq: int, state: bytes) -> None:
        raise NotImplementedError

    def set_format_version(self, value: str) -> None:
        raise NotImplementedError

    def update_snapshot(self, seq: int, **values: Any) -> None:
        raise NotImplementedError

    def delete_snapshot(self, seq: int) -> None:
        raise NotImplementedError

    def delete_checkpoint(self) -> None:
        raise NotImplementedError

    def stored_checkpoint(self) -> Checkpoint | None:
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

    def update_snapshot(self, seq: int, **values: Any) -> None:
        state, state_hash, chain = self.backing.snapshots[seq]
        self.backing.snapshots[seq] = (values.get("state", state),
                                       values.get("state_hash", state_hash),
                                       values.get("chain_hash", chain))

    def delete_snapshot(self, seq: int) -> None:
        del self.backing.snapshots[seq]

    def delete_checkpoint(self) -> None:
        self.backing.checkpoint = None

    def stored_checkpoint(self) -> Checkpoint | None:
        return self.backing.checkpoint

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

    def update_snapshot(self, seq: int, **values: Any) -> None:
        self._run(sa.update(snapshot).where(snapshot.c.seq == seq).values(**values))

    def delete_snapshot(self, seq: int) -> None:
        self._run(sa.delete(snapshot).where(snapshot.c.seq == seq))

    def delete_checkpoint(self) -> None:
        self._run(sa.delete(checkpoint))

    def stored_checkpoint(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(checkpoint)).first()
        if row is None:
            return None
        m = row._mapping
        return Checkpoint(m["seq"], bytes(m["hash"]), m["snapshot_seq"],
                          None if m["snapshot_hash"] is None else bytes(m["snapshot_hash"]),
                          m["written_at"])

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

        def boom(entries: list[LogEntry], checkpoint: Checkpoint | None) -> None:
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


def test_second_writer_is_refused_naming_the_holder(harness: Harness) -> None:
    """One writer per store: a second open for writing refuses at once, naming the holder;
    readers need no lock; the store is free again once the writer closes."""
    with harness.open() as a:
        a.append([("transfers", b"from a")])
        with pytest.raises(WriterLockedError) as info:
            harness.open()
        assert f"pid {os.getpid()}" in str(info.value)
        assert info.value.holder is not None and info.value.holder.pid == os.getpid()
        with harness.open(readonly=True) as reader:
            assert [e.payload for e in reader.entries()] == [b"from a"]
            with pytest.raises(LogError, match="read-only"):
                reader.append([("transfers", b"from the reader")])
        a.append([("transfers", b"a again")])
    with harness.open() as log:
        assert [e.payload for e in log.entries()] == [b"from a", b"a again"]


# ---------------------------------------------------------------------- verification


def test_changed_last_entry_is_refused_and_kept(harness: Harness) -> None:
    """A committed row is never torn (atomic commits): a last entry that fails its hash was
    changed. It is reported with both hashes, and neither deleted nor rewritten."""
    with harness.open() as log:
        fill(log, 4)
        [e5] = log.append([("c", b"5 as written")])
    harness.update_entry(5, payload=b"5 as changed")
    computed = entry_hash(e5.prev_hash, 5, "c", b"5 as changed")
    for _ in range(2):  # refused again: nothing was repaired on the way
        with pytest.raises(BrokenChainError) as info:
            harness.open()
        assert info.value.seq == 5
        assert e5.hash.hex() in str(info.value) and computed.hex() in str(info.value)
    with harness.open(verify=False, _check=False) as log:
        assert [e.payload for e in log.entries()][-1] == b"5 as changed"


def test_damaged_hash_column_at_the_tail_is_refused(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
    harness.update_entry(3, hash=b"\x00" * 7)
    with pytest.raises(BrokenChainError, match="broken at entry 3"):
        harness.open()


def test_deleted_tail_is_caught_by_the_checkpoint(harness: Harness) -> None:
    """Deleting the last entries leaves a chain that verifies; the checkpoint (written at
    the clean close) says the log was longer."""
    with harness.open() as log:
        entries = fill(log, 6)
    harness.delete_entry(6)
    harness.delete_entry(5)
    for verify in (True, False):
        with pytest.raises(LogTruncatedError) as info:
            harness.open(verify=verify)
        text = str(info.value)
        assert "ends at entry 4" in text and "records entry 6" in text
        assert entries[5].hash.hex() in text and "entries 5..6 are missing" in text
        assert "--truncate-after 4" in text


def test_rewritten_history_is_caught_by_the_checkpoint(harness: Harness) -> None:
    """A consistent rewrite of the whole chain (every hash recomputed) still differs from
    the checkpoint's hash of its last recorded entry."""
    with harness.open() as log:
        fill(log, 3)
        checkpointed = log.last_hash
    prev = GENESIS_HASH
    for seq in (1, 2, 3):
        payload = f"forged {seq}".encode()
        h = entry_hash(prev, seq, "transfers", payload)
        harness.update_entry(seq, payload=payload, prev_hash=prev, hash=h)
        prev = h
    with pytest.raises(BrokenChainError, match="the history was rewritten") as info:
        harness.open()
    assert info.value.seq == 3 and checkpointed.hex() in str(info.value)


def test_deleted_checkpoint_is_refused(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 2)
    harness.delete_checkpoint()
    with pytest.raises(LogError, match="checkpoint is missing"):
        harness.open()


def test_checkpoint_every_n_entries_without_a_close(harness: Harness) -> None:
    """The periodic checkpoint goes with the appends (same transaction), every N entries:
    a process that dies without closing leaves at most N - 1 entries past it."""
    with pytest.raises(ValueError, match="checkpoint_every"):
        harness.open(checkpoint_every=0)
    log = harness.open(checkpoint_every=4)
    try:
        fill(log, 3)
        stored = harness.stored_checkpoint()
        assert stored is not None and stored.seq == 0
        fill(log, 1)
        log.append([("a", b"5"), ("b", b"6"), ("c", b"7")])
        stored = harness.stored_checkpoint()
        assert stored is not None and (stored.seq, stored.hash) == (4, log.hash_at(4))
        log.append([("d", b"8")])
        stored = harness.stored_checkpoint()
        assert stored is not None and (stored.seq, stored.hash) == (8, log.last_hash)
        log.save_snapshot(Snapshot.of(6, b"state at 6"))
        fill(log, 1)
        stored = harness.stored_checkpoint()
        assert stored is not None and (stored.seq, stored.snapshot_seq) == (8, 6)
        assert stored.snapshot_hash == hashlib.sha256(b"state at 6").digest()
    finally:
        log.close()
    stored = harness.stored_checkpoint()
    assert stored is not None and (stored.seq, stored.snapshot_seq) == (9, 6)


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


def test_corrupt_snapshot_is_refused_and_repair_drops_it(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 4)
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
        log.save_snapshot(Snapshot.of(4, b"state at 4"))
    harness.update_snapshot(4, state=b"state at 4 but rotten")
    with harness.open() as log, pytest.raises(SnapshotError, match="state is corrupt") as info:
        log.latest_snapshot()
    assert info.value.seq == 4
    report = repair_log(harness.url, 4)
    assert report.dropped_snapshots == [4] and report.removed_entries == 0 and report.backup
    with harness.open() as log:
        assert log.latest_snapshot() == Snapshot.of(2, b"state at 2")
        assert log.last_seq == 4


def test_changed_snapshot_is_refused(harness: Harness) -> None:
    """A snapshot rewritten consistently (state and its hash) differs from the
    checkpoint's record of it."""
    with harness.open() as log:
        fill(log, 3)
        log.save_snapshot(Snapshot.of(3, b"state at 3"))
    forged = b"a richer state at 3"
    harness.update_snapshot(3, state=forged, state_hash=hashlib.sha256(forged).digest())
    with harness.open() as log, pytest.raises(SnapshotError, match="differs from the "
                                              "checkpoint's") as info:
        log.latest_snapshot()
    assert hashlib.sha256(b"state at 3").hexdigest() in str(info.value)


def test_deleted_snapshot_is_refused(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
        log.save_snapshot(Snapshot.of(1, b"state at 1"))
        log.save_snapshot(Snapshot.of(3, b"state at 3"))
    harness.delete_snapshot(3)
    with harness.open() as log, pytest.raises(SnapshotError, match="it is missing"):
        log.latest_snapshot()


def test_snapshot_bound_to_another_history_is_refused(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 3)
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
    harness.update_snapshot(2, chain_hash=hashlib.sha256(b"elsewhere").digest())
    with harness.open() as log, pytest.raises(SnapshotError, match="another history"):
        log.latest_snapshot()


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


# ---------------------------------------------------------------------- repair


def test_repair_accepts_a_lost_tail_after_keeping_a_copy(harness: Harness) -> None:
    with harness.open() as log:
        entries = fill(log, 5)
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
        log.save_snapshot(Snapshot.of(5, b"state at 5"))
    harness.delete_entry(5)
    with pytest.raises(LogTruncatedError):
        harness.open()
    with pytest.raises(BrokenChainError, match="up to 2 at most"):
        harness.update_entry(3, payload=b"bad")
        try:
            repair_log(harness.url, 4)  # entry 3 is damaged: 4 cannot be kept
        finally:
            harness.update_entry(3, payload=entries[2].payload)
    with pytest.raises(ValueError, match="0 to 4"):
        repair_log(harness.url, 5)
    report = repair_log(harness.url, 4)
    assert (report.kept_seq, report.removed_entries, report.dropped_snapshots) == (4, 0, [5])
    assert report.before is not None and report.before.seq == 5
    assert (report.after.seq, report.after.hash) == (4, entries[3].hash)
    assert report.after.snapshot_seq == 2
    with harness.open() as log:
        assert log.last_seq == 4
        assert log.latest_snapshot() == Snapshot.of(2, b"state at 2")
        [e5] = log.append([("transfers", b"a new entry 5")])
        assert e5.prev_hash == entries[3].hash
    assert repair_log(harness.url, 5).backup == ""  # nothing to repair


def test_repair_removes_a_changed_tail(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 4)
    harness.update_entry(4, payload=b"changed")
    report = repair_log(harness.url, 3)
    assert report.removed_entries == 1 and report.backup
    with harness.open() as log:
        assert log.last_seq == 3
    if isinstance(harness, MemoryHarness):
        with open_log(report.backup, readonly=True, _check=False, verify=False) as copy:
            assert [e.payload for e in copy.entries()][-1] == b"changed"


def test_repair_takes_the_writer_lock(harness: Harness) -> None:
    with harness.open() as log:
        fill(log, 2)
        with pytest.raises(WriterLockedError):
            repair_log(harness.url, 1)


def test_sqlite_repair_keeps_a_copy_of_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "log.db")
    with open_log(path) as log:
        fill(log, 3)
    harness = SqlHarness(path, path, sqlite_engine(path))
    try:
        harness.update_entry(3, payload=b"changed")
    finally:
        harness.cleanup()
    report = repair_log(path, 2)
    assert Path(report.backup).parent == tmp_path and report.backup.endswith(".bak")
    copy = sqlite3.connect(report.backup)
    try:
        assert copy.execute("SELECT payload FROM command_log WHERE seq = 3").fetchone() == (
            b"changed",)
    finally:
        copy.close()


@pytest.mark.postgres
def test_postgres_repair_keeps_backup_tables(pg_dsn: str) -> None:
    h = PostgresHarness(pg_dsn)
    try:
        with open_log(h.url) as log:
            fill(log, 3)
        h.update_entry(3, payload=b"changed")
        report = repair_log(h.url, 2)
        assert report.backup.startswith("tables command_log_backup_")
        name = report.backup.split()[1].rstrip(",")
        with h.engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar() == 3
    finally:
        h.cleanup()


# ---------------------------------------------------------------------- not a store


def test_sqlite_empty_file_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    for readonly in (False, True):
        with pytest.raises(NotAStoreError, match=r"empty file \(0 bytes\)") as info:
            open_log(str(path), readonly=readonly)
        assert str(path) in str(info.value)
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    with open_log(str(path), create=True) as log:
        log.append([("transfers", b"x")])
    with open_log(str(path)) as log:
        assert log.last_seq == 1


def test_sqlite_foreign_database_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(NotAStoreError, match=r"not a qingsuan command log.*customers"):
            open_log(str(path), readonly=readonly)
    assert path.read_bytes() == before
    with open_log(str(path), create=True) as log:
        assert log.last_seq == 0


def test_readonly_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(NotAStoreError, match="no such command log"):
        open_log(str(tmp_path / "nosuch.db"), readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_readonly_open_writes_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with open_log(str(path)) as log:
        fill(log, 3)
        log.save_snapshot(Snapshot.of(3, b"state"))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(files) == {"log.db", "log.db-lock"}
    with open_log(str(path), readonly=True) as log:
        assert log.last_seq == 3 and log.latest_snapshot() == Snapshot.of(3, b"state")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_readonly_reader_beside_a_live_writer(harness: Harness) -> None:
    """A reader opened while the writer goes on sees a consistent prefix, and the newest
    snapshot even when it was taken after the reader opened."""
    with harness.open(checkpoint_every=2) as writer:
        fill(writer, 3)
        reader = harness.open(readonly=True)
        try:
            fill(writer, 3)
            writer.save_snapshot(Snapshot.of(6, b"state at 6"))
            assert reader.last_seq == 3
            assert reader.latest_snapshot() == Snapshot.of(6, b"state at 6")
            assert reader.last_seq == 6  # verified on the way
        finally:
            reader.close()


@pytest.mark.postgres
def test_postgres_readonly_creates_nothing_and_foreign_schema_is_refused(pg_dsn: str) -> None:
    h = PostgresHarness(pg_dsn)
    try:
        with pytest.raises(NotAStoreError, match="no command log"):
            open_log(h.url, readonly=True)
        with psycopg.connect(h.dsn) as conn:
            found = conn.execute("SELECT 1 FROM information_schema.schemata WHERE "
                                 "schema_name = %s", (h.schema,)).fetchone()
            assert found is None
            conn.execute(f'CREATE SCHEMA "{h.schema}"')
            conn.execute(f'CREATE TABLE "{h.schema}".orders (id int)')
        with pytest.raises(NotAStoreError, match="orders"):
            open_log(h.url)
        with open_log(h.url, create=True) as log:
            fill(log, 1)
        with open_log(h.url, readonly=True) as log:
            assert log.last_seq == 1
    finally:
        h.cleanup()


def test_proof_round_trip() -> None:
    proof = Proof(7, hashlib.sha256(b"x").digest())
    assert Proof.parse(str(proof)) == proof
    assert proof.as_dict() == {"seq": 7, "hash": proof.hash.hex()}
    for bad in ("7", "x:00", "0:" + "00" * 32, "7:abcd"):
        with pytest.raises(ValueError, match="SEQ:HASH"):
            Proof.parse(bad)


def test_a_store_dropped_without_close_frees_the_writer_lock(harness: Harness) -> None:
    import gc

    log = harness.open()
    fill(log, 1)
    del log
    gc.collect()
    with harness.open() as again:
        assert again.last_seq == 1


def test_a_store_from_before_the_checkpoint_is_upgraded(tmp_path: Path) -> None:
    """Migration 0002 records the log as it stands; a reader must wait for a writer to
    upgrade the store, and says so."""
    path = str(tmp_path / "old.db")
    with open_log(path) as log:
        fill(log, 3)
        log.save_snapshot(Snapshot.of(2, b"state at 2"))
        last = log.last_hash
    harness = SqlHarness(path, path, sqlite_engine(path))
    try:
        harness._run(sa.text("DROP TABLE checkpoint"), sa.text("DROP TABLE writer"))
        harness.set_alembic_revision("0001")
    finally:
        harness.cleanup()
    with pytest.raises(LogError, match="open it once for writing"):
        open_log(path, readonly=True)
    with open_log(path) as log:
        assert (log.checkpoint.seq, log.checkpoint.hash) == (3, last)
        assert log.checkpoint.snapshot_seq == 2
        assert log.latest_snapshot() == Snapshot.of(2, b"state at 2")


@pytest.mark.postgres
def test_postgres_waits_for_the_lock_of_a_writer_that_died_on_this_host(pg_dsn: str) -> None:
    """After ``kill -9`` PostgreSQL frees the dead writer's lock only once its backend sees the
    connection close; a restart in that moment waits for it instead of being refused."""
    import socket
    import threading

    from qingsuan.store.schema import writer
    from qingsuan.store.sql import _pg_lock_key

    h = PostgresHarness(pg_dsn)
    try:
        with open_log(h.url) as log:
            fill(log, 2)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()  # a pid that no longer exists
        with h.engine.begin() as conn:
            conn.execute(sa.delete(writer))  # what a crashed writer leaves: its own row
            conn.execute(sa.insert(writer).values(id=1, pid=dead.pid, host=socket.gethostname(),
                                                  since="2026-12-07T00:00:00Z"))
        holder = psycopg.connect(h.dsn, autocommit=True)
        (database,) = holder.execute("SELECT current_database()").fetchone() or ("",)
        holder.execute("SELECT pg_advisory_lock(%s)", (_pg_lock_key(database, h.schema),))
        threading.Timer(0.3, holder.close).start()  # the dead writer's backend goes away
        with open_log(h.url) as log:
            assert log.last_seq == 2
            log.append([("transfers", b"after the crash")])
    finally:
        h.cleanup()
