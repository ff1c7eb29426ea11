"""Alembic environment for the command store.

Run only programmatically (:func:`qingsuan.store.sql.migrate`), which passes an open
connection in ``config.attributes["connection"]``; the migration runs inside that
connection's transaction.  No logging configuration happens here: opening a store is quiet.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from qingsuan.store.schema import ALEMBIC_VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "qingsuan store migrations run only through qingsuan.store.open_log "
        "(online, with config.attributes['connection'])"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,  # lets `alembic revision --autogenerate` diff against schema.py
    version_table=ALEMBIC_VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
