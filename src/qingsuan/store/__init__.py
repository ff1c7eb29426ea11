"""Durable, append-only, hash-chained command log (and snapshots) for the engine.

The engine is a function of its input log: every accepted command batch goes through
:meth:`CommandLog.append`, which returns only once the batch is durable, and only then is the
batch acknowledged.  Replaying :meth:`CommandLog.entries` rebuilds identical state; a
:class:`Snapshot` lets a restart skip the replay of everything before it.

Open a store with :func:`open_log`::

    with open_log("sqlite:///var/qingsuan.db") as log:
        snap = log.latest_snapshot()
        for entry in log.entries(snap.seq if snap else 0):
            ...  # replay
        log.append([("transfers", payload)])

See :mod:`qingsuan.store.base` for the chain, the checkpoint and the errors, and
:mod:`qingsuan.store.repair` for the one command that may remove entries.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from qingsuan.store.base import (
    CHECKPOINT_EVERY,
    FORMAT_VERSION,
    GENESIS_HASH,
    MAX_CHECKPOINT_EVERY,
    BrokenChainError,
    Checkpoint,
    CommandLog,
    EmptyStoreError,
    LogEntry,
    LogError,
    LogTruncatedError,
    NotAStoreError,
    Proof,
    Snapshot,
    SnapshotError,
    WriterInfo,
    WriterLockedError,
    entry_hash,
    snapshot_hash,
)

__all__ = [
    "CHECKPOINT_EVERY",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "MAX_CHECKPOINT_EVERY",
    "BrokenChainError",
    "Checkpoint",
    "CommandLog",
    "EmptyStoreError",
    "LogEntry",
    "LogError",
    "LogTruncatedError",
    "NotAStoreError",
    "Proof",
    "Snapshot",
    "SnapshotError",
    "WriterInfo",
    "WriterLockedError",
    "entry_hash",
    "file_beside",
    "open_log",
    "snapshot_hash",
]

_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def file_beside(store: str, suffix: str) -> Path | None:
    """The file named ``STORE + suffix`` beside a SQLite store (a store's key files); None
    for PostgreSQL and memory stores, which have no file to sit beside."""
    path: str | None = None
    if store.startswith("sqlite:///"):
        path = store[len("sqlite:///"):]
    elif "://" not in store and not store.startswith("memory:"):
        path = store
    return Path(path + suffix) if path else None


def open_log(url: str | os.PathLike[str], *, verify: bool = True, readonly: bool = False,
             create: bool = False, checkpoint_every: int = CHECKPOINT_EVERY,
             _check: bool = True) -> CommandLog:
    """Open the command log at ``url``.

    * ``memory:`` or ``memory://`` -- a fresh in-memory log (simulation; not durable);
      ``memory://NAME`` -- a named in-memory log that survives close/re-open in this process;
    * ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db`` or a bare path ending in
      ``.db`` -- a SQLite file, the embedded default;
    * ``postgresql://user@host:port/db`` (or ``postgresql+psycopg://``), optionally with
      ``?schema=NAME`` to keep the tables in that schema (created if missing).

    A writer (the default) takes the store's writer lock (:class:`WriterLockedError` names
    the holder) and creates a store where there is none (a file that does not exist, a
    schema without tables); an empty file or another program's database is refused
    (:class:`NotAStoreError`) unless ``create``.  ``readonly`` takes no lock, writes nothing
    and creates nothing: a missing store is :class:`NotAStoreError`.

    With ``verify`` (the default) the whole chain is checked before the log is returned; in
    every case the log is compared with its checkpoint.  Any defect raises
    :class:`BrokenChainError` (:class:`LogTruncatedError` for a shortened log).  A store in an
    unknown format raises :class:`LogError`; an unknown url scheme :class:`ValueError`.
    ``checkpoint_every``: entries between two periodic checkpoints (1 to
    :data:`MAX_CHECKPOINT_EVERY`).  ``_check=False`` skips the checks (repair only).
    """
    if readonly and create:
        raise ValueError("a read-only open cannot create a store")
    if not 1 <= checkpoint_every <= MAX_CHECKPOINT_EVERY:
        raise ValueError(f"checkpoint_every must be 1..{MAX_CHECKPOINT_EVERY}, "
                         f"got {checkpoint_every}")
    text = os.fspath(url)
    if text.startswith("memory:"):
        from qingsuan.store.memory import MemoryCommandLog

        return MemoryCommandLog.open(text, verify=verify, readonly=readonly, check=_check,
                                     checkpoint_every=checkpoint_every)

    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
    elif text.endswith(".db"):
        from qingsuan.store.sql import SqliteCommandLog

        return SqliteCommandLog.open(text, verify=verify, readonly=readonly, create=create,
                                     check=_check, checkpoint_every=checkpoint_every)
    else:
        scheme = text.split(":", 1)[0] if ":" in text else ""
        if not scheme or "/" in scheme or "\\" in scheme:
            raise ValueError(
                f"not a command-log url: {text!r} (no url scheme, and not a path ending in .db)"
            )

    if scheme in _SQLITE_SCHEMES:
        from qingsuan.store.sql import SqliteCommandLog

        path = make_url(text).database
        if not path or path == ":memory:":
            raise ValueError(
                f"url scheme {scheme!r} needs a file path (sqlite:///PATH.db); "
                "use 'memory:' for an in-memory log"
            )
        return SqliteCommandLog.open(path, verify=verify, readonly=readonly, create=create,
                                     check=_check, checkpoint_every=checkpoint_every)
    if scheme in _POSTGRES_SCHEMES:
        from qingsuan.store.sql import PostgresCommandLog

        return PostgresCommandLog.open(
            make_url(text).set(drivername="postgresql+psycopg"), verify=verify,
            readonly=readonly, create=create, check=_check, checkpoint_every=checkpoint_every)
    raise ValueError(
        f"unsupported command-log url scheme {scheme!r}: use memory:, sqlite:///PATH.db, "
        "PATH.db or postgresql://USER@HOST:PORT/DB"
    )
