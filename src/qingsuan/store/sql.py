"""SQL command logs: SQLite (the embedded default) and PostgreSQL.

Schema creation and upgrades go through the Alembic migrations shipped in ``migrations/``
(:func:`migrate`).  Reads, truncation and snapshots use SQLAlchemy Core.  The hot path --
``append`` -- uses the driver connection directly (``executemany`` in one transaction): it is
called once per accepted batch, before the batch is acknowledged, so its latency is the
engine's acknowledgement latency.

Durability: an ``append`` returns only after its transaction has committed durably.

* SQLite runs in WAL mode with ``synchronous=FULL`` on every connection, so each commit
  fsyncs the WAL;
* PostgreSQL keeps its default ``synchronous_commit=on``: ``COMMIT`` returns after the WAL
  record is flushed.

Fail-stop: if a write fails, its outcome may be unknown (e.g. the connection dropped during
``COMMIT``), so the store refuses further appends; re-open it, which re-verifies the chain
and picks up whatever did become durable.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from qingsuan.store.base import (
    FORMAT_VERSION,
    GENESIS_HASH,
    CommandLog,
    LogEntry,
    LogError,
    Snapshot,
)
from qingsuan.store.schema import command_log, meta, snapshot

__all__ = ["PostgresCommandLog", "SqlCommandLog", "SqliteCommandLog", "migrate"]

logger = logging.getLogger("qingsuan.store")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_INSERT_COLUMNS = "command_log (seq, kind, payload, prev_hash, hash)"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Serialises concurrent migrations of one PostgreSQL database (any constant will do).
_PG_MIGRATION_LOCK = 0x716E_6773_7561_6E  # "qingsuan"


# ---------------------------------------------------------------------- schema / migrations


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def _format_version(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(meta.name):
        return None
    value = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "format_version")
    ).scalar_one_or_none()
    return value if value is None else str(value)


def migrate(engine: Engine, where: str) -> None:
    """Create or upgrade the store's schema to the newest migration, then check the format.

    A database written in a format this code does not know (a newer build, or not a command
    log at all) raises :class:`LogError` naming ``where`` -- before anything is changed.
    """
    expected = str(FORMAT_VERSION)
    try:
        with _write_connection(engine) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            found = _format_version(conn)
            if found is not None and found != expected:
                raise LogError(
                    f"{where}: command-log format version {found} is not supported "
                    f"(this build reads version {expected}); refusing to open"
                )
            command.upgrade(_alembic_config(conn), "head")
            found = _format_version(conn)
            if found != expected:
                raise LogError(
                    f"{where}: command-log format version {found} is not supported "
                    f"(this build reads version {expected}); refusing to open"
                )
    except CommandError as exc:
        raise LogError(
            f"{where}: cannot bring the command-log schema up to date ({exc}); "
            "was it written by a newer qingsuan?"
        ) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise LogError(f"{where}: cannot open command log: {exc}") from exc


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
    #: Driver-level exceptions that mean "the write failed".
    _driver_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, engine: Engine, where: str) -> None:
        super().__init__(where)
        self._engine = engine
        # One long-lived driver connection for appends (the hot path).
        self._raw = engine.raw_connection()
        self._db: Any = self._raw.driver_connection

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
        return None if value is None else bytes(value)

    def _snapshot_index(self) -> list[tuple[int, bytes, bytes]]:
        query = sa.select(snapshot.c.seq, snapshot.c.state_hash, snapshot.c.chain_hash).order_by(
            snapshot.c.seq.desc()
        )
        with self._reading() as conn:
            return [(int(s), bytes(h), bytes(c)) for s, h, c in conn.execute(query)]

    def _load_snapshot_state(self, seq: int) -> bytes | None:
        query = sa.select(snapshot.c.state).where(snapshot.c.seq == seq)
        with self._reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else bytes(value)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise LogError(f"{self.where}: read failed: {exc}") from exc

    # -- writes ---------------------------------------------------------------------------

    def _write_entries(self, entries: list[LogEntry]) -> None:
        rows = [(e.seq, e.kind, e.payload, e.prev_hash, e.hash) for e in entries]
        try:
            self._insert_durably(rows)
        except self._driver_errors as exc:
            with contextlib.suppress(Exception):
                self._db.rollback()
            raise LogError(
                f"{self.where}: append of entries {entries[0].seq}..{entries[-1].seq} failed: {exc}"
            ) from exc

    def _insert_durably(self, rows: list[tuple[int, str, bytes, bytes, bytes]]) -> None:
        """One transaction holding all rows; returns after a durable COMMIT."""
        with contextlib.closing(self._db.cursor()) as cur:
            cur.executemany(self._insert_sql, rows)
        self._db.commit()

    def _truncate_after(self, seq: int) -> None:
        self._write(sa.delete(command_log).where(command_log.c.seq > seq))

    def _write_snapshot(self, snap: Snapshot, chain_hash: bytes) -> None:
        self._write(
            sa.delete(snapshot).where(snapshot.c.seq == snap.seq),
            sa.insert(snapshot).values(
                seq=snap.seq, state=snap.state, state_hash=snap.state_hash, chain_hash=chain_hash
            ),
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
            self._raw.close()
        finally:
            self._engine.dispose()


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


# ---------------------------------------------------------------------- SQLite


class SqliteCommandLog(SqlCommandLog):
    """SQLite file store: WAL journal, ``synchronous=FULL`` (one fsync per commit)."""

    _insert_sql = f"INSERT INTO {_INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?)"
    _driver_errors = (sqlite3.Error,)

    def _insert_durably(self, rows: list[tuple[int, str, bytes, bytes, bytes]]) -> None:
        # The driver connection is in autocommit mode (see sqlite_engine), so the
        # transaction is explicit; IMMEDIATE takes the write lock before any work.
        db: sqlite3.Connection = self._db
        if len(rows) == 1:
            # autocommit: one statement is one transaction (one call instead of three)
            db.execute(self._insert_sql, rows[0])
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self._insert_sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @classmethod
    def open(cls, path: str, *, verify: bool) -> SqliteCommandLog:
        """Open (creating if missing) the SQLite command log at ``path``."""
        where = str(path)
        return _migrate_and_start(cls, sqlite_engine(path), where, verify)


_S = TypeVar("_S", bound=SqlCommandLog)


def _migrate_and_start(cls: type[_S], engine: Engine, where: str, verify: bool,
                       schema: str | None = None) -> _S:
    """Create the schema if needed, migrate, construct the store and verify its chain; the
    engine is disposed of if any step fails."""
    try:
        if schema is not None:
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        migrate(engine, where)
        store = cls(engine, where)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise LogError(f"{where}: cannot open command log: {exc}") from exc
    except BaseException:
        engine.dispose()
        raise
    with _closing_on_error(store):
        store._start(verify)
    return store


def sqlite_engine(path: str) -> Engine:
    """Engine for a SQLite file with the store's connection settings on *every* connection:
    WAL + ``synchronous=FULL``, and driver-level autocommit with SQLAlchemy emitting ``BEGIN``
    itself (so DDL and reads are transactional, as they are not under pysqlite's defaults)."""
    engine = sa.create_engine(
        URL.create("sqlite+pysqlite", database=path),
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
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


class PostgresCommandLog(SqlCommandLog):
    """PostgreSQL store over psycopg 3; durable at COMMIT (``synchronous_commit`` default)."""

    _insert_sql = f"INSERT INTO {_INSERT_COLUMNS} VALUES (%s, %s, %s, %s, %s)"
    _driver_errors = (psycopg.Error,)

    @classmethod
    def open(cls, url: URL, *, verify: bool) -> PostgresCommandLog:
        """Open the log at ``url`` (driver ``postgresql+psycopg``).  A ``schema`` query
        parameter puts the tables in that schema, created if missing, by pinning the
        connections' ``search_path`` to it."""
        schema = url.query.get("schema")
        url = url.difference_update_query(["schema"])
        connect_args: dict[str, Any] = {}
        if schema is not None:
            if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
                raise ValueError(f"invalid schema name {schema!r} in command-log url")
            connect_args["options"] = f"-c search_path={schema}"
        where = url.render_as_string(hide_password=True) + (f" (schema {schema})" if schema else "")
        engine = sa.create_engine(url, connect_args=connect_args)
        return _migrate_and_start(cls, engine, where, verify, schema=schema)


@contextlib.contextmanager
def _closing_on_error(store: CommandLog) -> Iterator[None]:
    try:
        yield
    except BaseException:
        store.close()
        raise
