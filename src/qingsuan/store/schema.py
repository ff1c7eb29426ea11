"""The command store's tables, defined with SQLAlchemy Core.

This module describes the *current* schema for the code that reads and writes it.  The schema
in a database is created and upgraded only by the Alembic migrations in ``migrations/``
(see :func:`qingsuan.store.sql.migrate`); a migration never imports these objects, so old
migrations keep meaning what they meant when they were written.

``seq`` is ``BIGINT`` (``INTEGER`` on SQLite, where that makes it the rowid: no separate
index, appends go to the end of the table's b-tree).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "ALEMBIC_VERSION_TABLE",
    "checkpoint",
    "command_log",
    "meta",
    "metadata",
    "snapshot",
    "writer",
]

#: Alembic's bookkeeping table for this store.  Not the default ``alembic_version``, so that
#: another component migrating its own tables in the same database or schema cannot collide.
ALEMBIC_VERSION_TABLE = "qingsuan_store_alembic_version"

SEQ_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

command_log = sa.Table(
    "command_log",
    metadata,
    sa.Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("prev_hash", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
)

snapshot = sa.Table(
    "snapshot",
    metadata,
    sa.Column("seq", SEQ_TYPE, primary_key=True, autoincrement=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("state_hash", sa.LargeBinary, nullable=False),
    # hash of command_log entry `seq` when the snapshot was taken (GENESIS_HASH for seq 0):
    # binds the snapshot to one history.
    sa.Column("chain_hash", sa.LargeBinary, nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: The log's end and its newest snapshot as last recorded (one row, id 1), kept outside the
#: log so that a shortened or rewritten log is noticed (see base.Checkpoint).
checkpoint = sa.Table(
    "checkpoint",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", SEQ_TYPE, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sa.Column("snapshot_seq", SEQ_TYPE, nullable=True),
    sa.Column("snapshot_hash", sa.LargeBinary, nullable=True),
    sa.Column("written_at", sa.Text, nullable=False),
)

#: Who holds the writer lock (one row, id 1, while a writer is open): named in the refusal
#: a second writer gets.
writer = sa.Table(
    "writer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.Text, nullable=False),
    sa.Column("since", sa.Text, nullable=False),
)
