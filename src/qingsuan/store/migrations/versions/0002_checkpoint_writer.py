"""The checkpoint (the log's end and newest snapshot, kept outside the log) and the writer.

The first checkpoint records the log as it is when this migration runs (its last entry and
newest snapshot), so a store written before the checkpoint existed is protected from here on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    checkpoint = op.create_table(
        "checkpoint",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.Column("snapshot_seq", _SEQ, nullable=True),
        sa.Column("snapshot_hash", sa.LargeBinary, nullable=True),
        sa.Column("written_at", sa.Text, nullable=False),
    )
    op.create_table(
        "writer",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("since", sa.Text, nullable=False),
    )
    bind = op.get_bind()
    tail = bind.execute(sa.text(
        "SELECT seq, hash FROM command_log ORDER BY seq DESC LIMIT 1")).first()
    snap = bind.execute(sa.text(
        "SELECT seq, state_hash FROM snapshot ORDER BY seq DESC LIMIT 1")).first()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    op.bulk_insert(checkpoint, [{
        "id": 1,
        "seq": int(tail[0]) if tail else 0,
        "hash": bytes(tail[1]) if tail else bytes(32),
        "snapshot_seq": int(snap[0]) if snap else None,
        "snapshot_hash": bytes(snap[1]) if snap else None,
        "written_at": now,
    }])


def downgrade() -> None:
    op.drop_table("writer")
    op.drop_table("checkpoint")
