"""SQL command logs: SQLite (the embedded default) and PostgreSQL.

Schema creation and upgrades go through the Alembic migrations shipped in ``migrations/``
(:func:`migrate`).  Reads, snapshots and the checkpoint use SQLAlchemy Core.  The hot path --
``append`` -- uses the driver connection directly (``executemany`` in one transaction): it is
called once per accepted batch, before the batch is acknowledged, so its latency is the
engine's acknowledgement latency.

Durability: an ``append`` returns only after its transaction has committed durably (SQLite:
WAL with ``synchronous=FULL``; PostgreSQL: ``synchronous_commit=on``).  A commit is atomic,
so a stored row is never torn.

One writer: SQLite holds ``flock`` on ``PATH-lock`` beside the database, PostgreSQL a session
advisory lock keyed by the database and schema, on the connection that appends (if that
session dies, appends fail too).  Both record the holder (``writer`` table; SQLite also in
the lock file).  Read-only opens take no lock and write nothing: SQLite is opened with
``mode=ro``, and a writer's clean close leaves the file in rollback-journal mode so that a
read-only open creates no ``-wal``/``-shm`` files either.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from qingsuan.store.base import (
    CHECKPOINT_EVERY,
    FORMAT_VERSION,
    GENESIS_HASH,
    Checkpoint,
    CommandLog,
    EmptyStoreError,
    LogEntry,
    LogError,
    NotAStoreError,
    Snapshot,
    WriterInfo,
    WriterLockedError,
    utc_now,
)
from qingsuan.store.schema import (
    ALEMBIC_VERSION_TABLE,
    checkpoint,
    command_log,
    meta,
    snapshot,
    writer,
)

__all__ = ["PostgresCommandLog", "SqlCommandLog", "SqliteCommandLog", "migrate"]

logger = logging.getLogger("qingsuan.store")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_INSERT_COLUMNS = "command_log (seq, kind, payload, prev_hash, hash)"
_CHECKPOINT_UPSERT = (
    "INSERT INTO checkpoint (id, seq, hash, snapshot_seq, snapshot_hash, written_at) "
    "VALUES (1, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
    "hash = excluded.hash, snapshot_seq = excluded.snapshot_seq, "
    "snapshot_hash = excluded.snapshot_hash, written_at = excluded.written_at"
)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Serialises concurrent migrations of one PostgreSQL database (any constant will do).
_PG_MIGRATION_LOCK = 0x716E_6773_7561_6E  # "qingsuan"
#: tables a foreign database is named by, at most
_SHOWN_TABLES = 5

_CheckpointRow = tuple[int, bytes, int | None, bytes | None, str]


# ---------------------------------------------------------------------- schema / migrations


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def _head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _format_version(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "format_version")
    ).scalar_one_or_none()
    return value if value is None else str(value)


def _check_format(found: str | None, where: str) -> None:
    expected = str(FORMAT_VERSION)
    if found is not None and found != expected:
        raise LogError(
            f"{where}: command-log format version {found} is not supported "
            f"(this build reads version {expected}); refusing to open"
        )


def _not_ours(tables: list[str], where: str, *, allow_empty: bool, allow_foreign: bool) -> None:
    """Refuse a database that is not a command log (unless told to make one in it)."""
    if ALEMBIC_VERSION_TABLE in tables:
        return
    if tables and not allow_foreign:
        shown = ", ".join(sorted(tables)[:_SHOWN_TABLES]) + (
            ", ..." if len(tables) > _SHOWN_TABLES else "")
        raise NotAStoreError(
            f"{where}: not a qingsuan command log (it holds other tables: {shown}); "
            "refusing to touch it (to add a new command log to it anyway, create it "
            "explicitly: --new / create=True)")
    if not tables and not allow_empty:
        raise NotAStoreError(
            f"{where}: an empty database is not a command log; refusing to open it "
            "(to make a new command log here, create it explicitly: --new / create=True)")


def migrate(engine: Engine, where: str, *, allow_empty: bool = True,
            allow_foreign: bool = False) -> None:
    """Create or upgrade the store's schema to the newest migration, then check the format.

    A database written in a format this code does not know (a newer build) raises
    :class:`LogError`, and one that is not a command log (other tables; no tables unless
    ``allow_empty``) :class:`NotAStoreError` naming ``where`` -- before anything is changed.
    """
    try:
        with _write_connection(engine) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            _not_ours(sa.inspect(conn).get_table_names(), where, allow_empty=allow_empty,
                      allow_foreign=allow_foreign)
            _check_format(_format_version(conn), where)
            command.upgrade(_alembic_config(conn), "head")
            found = _format_version(conn)
            if found != str(FORMAT_VERSION):
                _check_format(found or "(none)", where)
    except CommandError as exc:
        raise LogError(
            f"{where}: cannot bring the command-log schema up to date ({exc}); "
            "was it written by a newer qingsuan?"
        ) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise LogError(f"{where}: cannot open command log: {exc}") from exc


def _check_schema_readonly(engine: Engine, where: str) -> None:
    """What :func:`migrate` checks, without changing anything: the store must be at the
    newest revision already (a read-only open cannot migrate)."""
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            if not tables:
                raise EmptyStoreError(f"{where}: no command log there (no tables)")
            _not_ours(tables, where, allow_empty=False, allow_foreign=False)
            _check_format(_format_version(conn), where)
            found = conn.execute(
                sa.text(f"SELECT version_num FROM {ALEMBIC_VERSION_TABLE}")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        raise LogError(f"{where}: cannot open command log: {exc}") from exc
    head = _head_revision()
    if found != head:
        older = str(found) < head
        raise LogError(
            f"{where}: the store's schema is at revision {found}, this build's at {head}; "
            + ("open it once for writing (e.g. `qingsuan serve`) to upgrade it"
               if older else "was it written by a newer qingsuan?"))


@contextlib.contextmanager
def _write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose transactions take the write lock up front (SQLite ``BEGIN
    IMMEDIATE``), so read-then-write transactions cannot deadlock with another writer."""
    with engine.connect() as conn:
        yield conn.execution_options(qingsuan_write=True)


# ---------------------------------------------------------------------- common SQL store


class SqlCommandLog(CommandLog):
    """A :class:`CommandLog` over a SQLAlchemy engine (schema already migrated)."""

    #: INSERT statement for the hot path, in the driver's paramstyle.
    _insert_sql: ClassVar[str]
    #: The checkpoint's upsert for the hot path, in the driver's paramstyle.
    _checkpoint_sql: ClassVar[str]
    #: Driver-level exceptions that mean "the write failed".
    _driver_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, engine: Engine, where: str, raw: Any | None, *, readonly: bool = False,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        super().__init__(where, readonly=readonly, checkpoint_every=checkpoint_every)
        assert (raw is None) == readonly
        self._engine = engine
        # One long-lived driver connection for appends (the hot path); none when read-only.
        self._raw = raw
        self._db: Any = None if raw is None else raw.driver_connection

    # -- reads (SQLAlchemy Core) ---------------------------------------------------------

    def _fetch_entries(self, after_seq: int, limit: int) -> list[LogEntry]:
        query = (
            sa.select(command_log)
            .where(command_log.c.seq > after_seq)
            .order_by(command_log.c.seq)
            .limit(limit)
        )
        with self._reading() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def _fetch_tail(self) -> LogEntry | None:
        query = sa.select(command_log).order_by(command_log.c.seq.desc()).limit(1)
        with self._reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else _entry(row)

    def _chain_hash_at(self, seq: int) -> bytes | None:
        if seq == 0:
            return GENESIS_HASH
        query = sa.select(command_log.c.hash).where(command_log.c.seq == seq)
        with self._reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else _blob(value)

    def _snapshot_index(self) -> list[tuple[int, bytes, bytes]]:
        with self._reading() as conn:
            return _snapshot_index(conn)

    def _read_checkpoint(self) -> Checkpoint | None:
        with self._reading() as conn:
            return _checkpoint(conn)

    def _checkpoint_and_snapshots(self) -> tuple[Checkpoint | None,
                                                 list[tuple[int, bytes, bytes]]]:
        with self._reading(consistent=True) as conn, conn.begin():
            return _checkpoint(conn), _snapshot_index(conn)

    def _load_snapshot_state(self, seq: int) -> bytes | None:
        query = sa.select(snapshot.c.state).where(snapshot.c.seq == seq)
        with self._reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else _blob(value)

    @contextlib.contextmanager
    def _reading(self, *, consistent: bool = False) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                if consistent and conn.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise LogError(f"{self.where}: read failed: {exc}") from exc

    # -- writes ---------------------------------------------------------------------------

    def _write_entries(self, entries: list[LogEntry], checkpoint: Checkpoint | None) -> None:
        rows = [(e.seq, e.kind, e.payload, e.prev_hash, e.hash) for e in entries]
        try:
            self._insert_durably(rows, None if checkpoint is None else _row(checkpoint))
        except self._driver_errors as exc:
            with contextlib.suppress(Exception):
                self._db.rollback()
            raise LogError(
                f"{self.where}: append of entries {entries[0].seq}..{entries[-1].seq} failed: {exc}"
            ) from exc

    def _insert_durably(self, rows: list[tuple[int, str, bytes, bytes, bytes]],
                        checkpoint_row: _CheckpointRow | None) -> None:
        """One transaction holding all rows (and the checkpoint); returns after a durable
        COMMIT."""
        with contextlib.closing(self._db.cursor()) as cur:
            cur.executemany(self._insert_sql, rows)
            if checkpoint_row is not None:
                cur.execute(self._checkpoint_sql, checkpoint_row)
        self._db.commit()

    def _write_checkpoint(self, ckpt: Checkpoint, *, release: bool = False) -> None:
        statements: list[sa.Executable] = _replace_checkpoint(ckpt)
        if release:
            statements.append(sa.delete(writer))
        self._write(*statements)

    def _write_snapshot(self, snap: Snapshot, chain_hash: bytes, ckpt: Checkpoint) -> None:
        self._write(
            sa.delete(snapshot).where(snapshot.c.seq == snap.seq),
            sa.insert(snapshot).values(
                seq=snap.seq, state=snap.state, state_hash=snap.state_hash, chain_hash=chain_hash
            ),
            *_replace_checkpoint(ckpt),
        )

    def _claim_writer(self, info: WriterInfo) -> None:
        """Record the writer lock's holder (this process)."""
        self._write(sa.delete(writer),
                    sa.insert(writer).values(id=1, pid=info.pid, host=info.host,
                                             since=info.since))

    def _cut(self, seq: int, drop_snapshots: Sequence[int], ckpt: Checkpoint) -> None:
        self._write(
            sa.delete(command_log).where(command_log.c.seq > seq),
            sa.delete(snapshot).where(snapshot.c.seq.in_(list(drop_snapshots))),
            *_replace_checkpoint(ckpt),
        )

    def _write(self, *statements: sa.Executable) -> None:
        try:
            with _write_connection(self._engine) as conn, conn.begin():
                for statement in statements:
                    conn.execute(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise LogError(f"{self.where}: write failed: {exc}") from exc

    def _close(self) -> None:
        try:
            if self._raw is not None:
                if self._engine.dialect.name == "postgresql":
                    # give the writer lock back now: a closed connection's backend frees
                    # it only when it has exited, after close returns (a writer reopening
                    # at once would find its own lock still held)
                    with contextlib.suppress(Exception):
                        db = self._raw.driver_connection
                        db.execute("SELECT pg_advisory_unlock_all()")
                        db.commit()
                self._raw.close()
        finally:
            self._engine.dispose()


def _snapshot_index(conn: Connection) -> list[tuple[int, bytes, bytes]]:
    query = sa.select(snapshot.c.seq, snapshot.c.state_hash, snapshot.c.chain_hash).order_by(
        snapshot.c.seq.desc()
    )
    return [(int(s), _blob(h), _blob(c)) for s, h, c in conn.execute(query)]


def _checkpoint(conn: Connection) -> Checkpoint | None:
    row = conn.execute(sa.select(checkpoint).where(checkpoint.c.id == 1)).first()
    if row is None:
        return None
    m = row._mapping
    snap_seq, snap_hash = m["snapshot_seq"], m["snapshot_hash"]
    return Checkpoint(int(m["seq"]), _blob(m["hash"]),
                      None if snap_seq is None else int(snap_seq),
                      None if snap_hash is None else _blob(snap_hash), str(m["written_at"]))


def _row(ckpt: Checkpoint) -> _CheckpointRow:
    return (ckpt.seq, ckpt.hash, ckpt.snapshot_seq, ckpt.snapshot_hash, ckpt.written_at)


def _replace_checkpoint(ckpt: Checkpoint) -> list[sa.Executable]:
    return [sa.delete(checkpoint),
            sa.insert(checkpoint).values(id=1, seq=ckpt.seq, hash=ckpt.hash,
                                         snapshot_seq=ckpt.snapshot_seq,
                                         snapshot_hash=ckpt.snapshot_hash,
                                         written_at=ckpt.written_at)]


def _entry(row: sa.Row[Any]) -> LogEntry:
    m = row._mapping
    return LogEntry(
        int(m["seq"]), str(m["kind"]), _blob(m["payload"]), _blob(m["prev_hash"]),
        _blob(m["hash"])
    )


def _blob(value: object) -> bytes:
    """A stored binary column. SQLite lets a tampered row hold text instead: take its bytes
    so that the hash check reports the entry, rather than failing with a TypeError."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    assert isinstance(value, bytes | bytearray | memoryview), type(value)
    return bytes(value)


_S = TypeVar("_S", bound=SqlCommandLog)


def _start_store(store: _S, verify: bool, check: bool, info: WriterInfo | None) -> _S:
    """Record the writer (if any) and verify; the store is closed if either fails."""
    try:
        if info is not None:
            store._claim_writer(info)
        store._start(verify, check=check)
    except BaseException:
        store.close()
        raise
    return store


# ---------------------------------------------------------------------- SQLite


class _FileLock:
    """``flock`` on a lock file beside the database, holding the holder's description.

    The file is never deleted: unlinking it while another process has it open would let two
    processes each lock a file of the same name."""

    def __init__(self, path: str, where: str) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LogError(f"{where}: cannot open the writer lock {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 4096, 0)
            os.close(fd)
            raise WriterLockedError(where, _holder_from(text)) from None
        info = WriterInfo.mine()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": info.pid, "host": info.host,
                                  "since": info.since}).encode(), 0)
        self.info = info
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the lock
            self._fd = None


def _holder_from(text: bytes) -> WriterInfo | None:
    try:
        doc = json.loads(text)
        return WriterInfo(int(doc["pid"]), str(doc["host"]), str(doc["since"]))
    except (ValueError, KeyError, TypeError):
        return None


def _sqlite_tables(path: str, where: str) -> list[str]:
    """The tables of an existing SQLite file, read without writing or creating anything."""
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise NotAStoreError(f"{where}: cannot open: {exc}") from exc
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:
        raise NotAStoreError(f"{where}: not a command log (not an SQLite database: {exc})"
                             ) from exc
    finally:
        conn.close()
    return [str(name) for (name,) in rows]


class SqliteCommandLog(SqlCommandLog):
    """SQLite file store: WAL journal, ``synchronous=FULL`` (one fsync per commit)."""

    _insert_sql = f"INSERT INTO {_INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?)"
    _checkpoint_sql = _CHECKPOINT_UPSERT.format(p="?")
    _driver_errors = (sqlite3.Error,)

    def __init__(self, engine: Engine, where: str, raw: Any | None, *, readonly: bool = False,
                 checkpoint_every: int = CHECKPOINT_EVERY, path: str = "",
                 lock: _FileLock | None = None) -> None:
        super().__init__(engine, where, raw, readonly=readonly,
                         checkpoint_every=checkpoint_every)
        self._path = path
        self._file_lock = lock
        if lock is not None:
            # a store dropped without close() must not keep this process locked out of it
            weakref.finalize(self, lock.release)

    def _insert_durably(self, rows: list[tuple[int, str, bytes, bytes, bytes]],
                        checkpoint_row: _CheckpointRow | None) -> None:
        # The driver connection is in autocommit mode (see sqlite_engine), so the
        # transaction is explicit; IMMEDIATE takes the write lock before any work.
        db: sqlite3.Connection = self._db
        if len(rows) == 1 and checkpoint_row is None:
            # autocommit: one statement is one transaction (one call instead of three)
            db.execute(self._insert_sql, rows[0])
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self._insert_sql, rows)
            if checkpoint_row is not None:
                db.execute(self._checkpoint_sql, checkpoint_row)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @classmethod
    def open(cls, path: str, *, verify: bool, readonly: bool = False, create: bool = False,
             check: bool = True, checkpoint_every: int = CHECKPOINT_EVERY
             ) -> SqliteCommandLog:
        """Open the SQLite command log at ``path``: a file that does not exist is created
        (not when ``readonly``); an empty file or another program's database only with
        ``create``."""
        where = str(path)
        file = Path(path)
        existed = file.exists()
        if readonly and not existed:
            raise NotAStoreError(f"{where}: no such command log")
        if existed:
            if file.is_dir():
                raise NotAStoreError(f"{where}: a directory, not a command log")
            if file.stat().st_size == 0 and (readonly or not create):
                raise NotAStoreError(
                    f"{where}: an empty file (0 bytes) is not a command log; refusing to "
                    "open it" + ("" if readonly else " (to make a new command log in it, "
                                 "create it explicitly: --new / create=True)"))
            _not_ours(_sqlite_tables(str(path), where), where,
                      allow_empty=create and not readonly,
                      allow_foreign=create and not readonly)
        if readonly:
            engine = sqlite_engine(str(path), readonly=True)
            try:
                _check_schema_readonly(engine, where)
            except BaseException:
                engine.dispose()
                raise
            store = cls(engine, where, None, readonly=True, checkpoint_every=checkpoint_every,
                        path=str(path))
            return _start_store(store, verify, check, None)
        lock = _FileLock(f"{path}-lock", where)
        engine = sqlite_engine(str(path))
        try:
            migrate(engine, where, allow_empty=not existed or create, allow_foreign=create)
            store = cls(engine, where, engine.raw_connection(),
                        checkpoint_every=checkpoint_every, path=str(path), lock=lock)
        except BaseException as exc:
            engine.dispose()
            lock.release()
            if isinstance(exc, sa.exc.SQLAlchemyError):
                raise LogError(f"{where}: cannot open command log: {exc}") from exc
            raise
        return _start_store(store, verify, check, lock.info)

    def _backup(self) -> str:
        """A consistent copy of the database (SQLite's online backup) beside it."""
        target = f"{self._path}.{utc_now().replace(':', '')}.bak"
        n = 1
        while Path(target).exists():
            n += 1
            target = f"{self._path}.{utc_now().replace(':', '')}.{n}.bak"
        try:
            dest = sqlite3.connect(target)
            try:
                self._db.backup(dest)
            finally:
                dest.close()
        except sqlite3.Error as exc:
            raise LogError(f"{self.where}: cannot keep a copy in {target}: {exc}") from exc
        return target

    def _close(self) -> None:
        try:
            super()._close()
            if not self.readonly:
                _leave_at_rest(self._path)
        finally:
            if self._file_lock is not None:
                self._file_lock.release()


def _leave_at_rest(path: str) -> None:
    """Switch a closed store back to a rollback journal when nobody else has it open, so a
    later read-only open (``mode=ro``) reads it without creating ``-wal``/``-shm`` files. The
    next writer switches to WAL again. Busy (a reader is in): left in WAL, harmlessly."""
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()


def sqlite_engine(path: str, *, readonly: bool = False) -> Engine:
    """Engine for a SQLite file with the store's connection settings on *every* connection:
    WAL + ``synchronous=FULL``, and driver-level autocommit with SQLAlchemy emitting ``BEGIN``
    itself (so DDL and reads are transactional, as they are not under pysqlite's defaults).
    ``readonly``: opened with ``mode=ro`` (nothing is written, no file is created)."""
    if readonly:
        uri = f"file:{quote(str(Path(path).absolute()))}?mode=ro"
        engine = sa.create_engine(
            "sqlite+pysqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
        )
    else:
        engine = sa.create_engine(
            URL.create("sqlite+pysqlite", database=path),
            connect_args={"check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        if readonly:
            return
        cur = dbapi_conn.cursor()
        try:
            mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("command log %s: SQLite refused WAL mode (%s)", path, mode)
            cur.execute("PRAGMA synchronous=FULL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("qingsuan_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# ---------------------------------------------------------------------- PostgreSQL


def _pg_lock_key(database: str, schema: str) -> int:
    """The writer lock's key: the log's identity (database and schema), as a signed
    64-bit advisory-lock key."""
    digest = hashlib.sha256(f"qingsuan-writer\0{database}\0{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresCommandLog(SqlCommandLog):
    """PostgreSQL store over psycopg 3; durable at COMMIT (``synchronous_commit`` default)."""

    _insert_sql = f"INSERT INTO {_INSERT_COLUMNS} VALUES (%s, %s, %s, %s, %s)"
    _checkpoint_sql = _CHECKPOINT_UPSERT.format(p="%s")
    _driver_errors = (psycopg.Error,)

    @classmethod
    def open(cls, url: URL, *, verify: bool, readonly: bool = False, create: bool = False,
             check: bool = True, checkpoint_every: int = CHECKPOINT_EVERY
             ) -> PostgresCommandLog:
        """Open the log at ``url`` (driver ``postgresql+psycopg``).  A ``schema`` query
        parameter puts the tables in that schema, created if missing, by pinning the
        connections' ``search_path`` to it.  A schema (or database) with no tables is a new
        store; one with other tables is refused unless ``create``."""
        schema = url.query.get("schema")
        url = url.difference_update_query(["schema"])
        options = []
        if schema is not None:
            if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError(f"invalid schema name {schema!r} in command-log url")
            options.append(f"-c search_path={schema}")
        if readonly:
            options.append("-c default_transaction_read_only=on")
        connect_args: dict[str, Any] = {"options": " ".join(options)} if options else {}
        where = url.render_as_string(hide_password=True) + (f" (schema {schema})" if schema else "")
        engine = sa.create_engine(url, connect_args=connect_args)
        try:
            if readonly:
                _check_schema_readonly(engine, where)
                store = cls(engine, where, None, readonly=True,
                            checkpoint_every=checkpoint_every)
                return _start_store(store, verify, check, None)
            raw = engine.raw_connection()
            try:
                _lock_pg_writer(raw.driver_connection, engine, where, schema)
                migrate(engine, where, allow_empty=True, allow_foreign=create)
                store = cls(engine, where, raw, checkpoint_every=checkpoint_every)
            except BaseException:
                raw.close()
                raise
        except (sa.exc.SQLAlchemyError, psycopg.Error) as exc:
            engine.dispose()
            raise LogError(f"{where}: cannot open command log: {exc}") from exc
        except BaseException:
            engine.dispose()
            raise
        return _start_store(store, verify, check, WriterInfo.mine())

    def _backup(self) -> str:
        """Copies of the store's tables, beside them (``TABLE_backup_STAMP``)."""
        stamp = re.sub(r"\D", "", utc_now())
        names = []
        statements: list[sa.Executable] = []
        for table in ("command_log", "snapshot", "checkpoint"):
            name = f"{table}_backup_{stamp}"
            names.append(name)
            statements.append(sa.text(f'CREATE TABLE "{name}" AS SELECT * FROM {table}'))
        self._write(*statements)
        return "tables " + ", ".join(names)


#: How long to wait for the writer lock of a writer that ran on this host and is gone.
#: PostgreSQL frees a session's advisory lock only once the backend has seen its client's
#: connection close, a moment after the client died, so a restart right after a crash
#: (``kill -9`` then ``qingsuan run --resume``) would otherwise be refused by a dead writer.
DEAD_WRITER_WAIT_MS = 10_000
_LOCK_POLL_S = 0.02


def _lock_pg_writer(db: Any, engine: Engine, where: str, schema: str | None,
                    dead_writer_wait_ms: int = DEAD_WRITER_WAIT_MS) -> None:
    """Take the writer lock on ``db`` (the connection that will append) or refuse, naming
    the holder.  A holder known to be gone (same host, no such process) is waited for, up
    to ``dead_writer_wait_ms``; a live one is refused at once."""
    assert dead_writer_wait_ms >= 0
    if schema is not None:
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    database, current = db.execute("SELECT current_database(), current_schema()").fetchone()
    key = _pg_lock_key(str(database), schema or str(current or "public"))
    deadline = time.monotonic() + dead_writer_wait_ms / 1000
    while True:
        (got,) = db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        db.commit()
        if got:
            return
        holder = _pg_holder(engine, key)
        if holder is None or not holder.is_gone() or time.monotonic() >= deadline:
            raise WriterLockedError(where, holder)
        time.sleep(_LOCK_POLL_S)


def _pg_holder(engine: Engine, key: int) -> WriterInfo | None:
    """Who holds the writer lock: the ``writer`` row, else the backend holding the lock."""
    with contextlib.suppress(sa.exc.SQLAlchemyError), engine.connect() as conn:
        if sa.inspect(conn).has_table(writer.name):
            row = conn.execute(sa.select(writer.c.pid, writer.c.host, writer.c.since)).first()
            if row is not None:
                return WriterInfo(int(row[0]), str(row[1]), str(row[2]))
        unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
        row = conn.execute(sa.text(
            "SELECT a.pid, coalesce(host(a.client_addr), 'local'), a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi "
            "AND l.objid = :lo AND l.objsubid = 1"),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}).first()
        if row is not None:
            return WriterInfo(int(row[0]), f"{row[1]} (PostgreSQL backend)", str(row[2]))
    return None
