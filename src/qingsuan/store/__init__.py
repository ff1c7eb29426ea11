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

See :mod:`qingsuan.store.base` for the chain, the torn-tail rule and the errors.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url

from qingsuan.store.base import (
    FORMAT_VERSION,
    GENESIS_HASH,
    BrokenChainError,
    CommandLog,
    LogEntry,
    LogError,
    Snapshot,
    entry_hash,
    snapshot_hash,
)

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "BrokenChainError",
    "CommandLog",
    "LogEntry",
    "LogError",
    "Snapshot",
    "entry_hash",
    "open_log",
    "snapshot_hash",
]

_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def open_log(url: str | os.PathLike[str], *, verify: bool = True) -> CommandLog:
    """Open (creating if needed) the command log at ``url``.

    * ``memory:`` or ``memory://`` -- a fresh in-memory log (simulation; not durable);
      ``memory://NAME`` -- a named in-memory log that survives close/re-open in this process;
    * ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db`` or a bare path ending in
      ``.db`` -- a SQLite file, the embedded default;
    * ``postgresql://user@host:port/db`` (or ``postgresql+psycopg://``), optionally with
      ``?schema=NAME`` to keep the tables in that schema (created if missing).

    With ``verify`` (the default) the whole chain is checked before the log is returned: a
    torn tail is discarded with a warning, any other defect raises :class:`BrokenChainError`.
    A store in an unknown format raises :class:`LogError`; an unknown url scheme raises
    :class:`ValueError`.
    """
    text = os.fspath(url)
    if text.startswith("memory:"):
        from qingsuan.store.memory import MemoryCommandLog

        return MemoryCommandLog.open(text, verify=verify)

    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
    elif text.endswith(".db"):
        from qingsuan.store.sql import SqliteCommandLog

        return SqliteCommandLog.open(text, verify=verify)
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
        return SqliteCommandLog.open(path, verify=verify)
    if scheme in _POSTGRES_SCHEMES:
        from qingsuan.store.sql import PostgresCommandLog

        return PostgresCommandLog.open(
            make_url(text).set(drivername="postgresql+psycopg"), verify=verify
        )
    raise ValueError(
        f"unsupported command-log url scheme {scheme!r}: use memory:, sqlite:///PATH.db, "
        "PATH.db or postgresql://USER@HOST:PORT/DB"
    )
