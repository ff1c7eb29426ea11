"""Repair: the one way entries leave a command log, and only when asked.

Opening a store never deletes or rewrites anything: a damaged or shortened log is refused.
:func:`repair_log` is the explicit step an operator takes after looking at the refusal: it
keeps entries ``1..keep_seq`` (which must be intact), drops the entries after them and any
snapshot that is beyond them or unsound, and records the result in the checkpoint -- after
keeping a copy of the whole store (SQLite: a backup file beside the database; PostgreSQL:
``*_backup_STAMP`` tables; a named memory log: ``memory://NAME.backup-N``).
"""

from __future__ import annotations

import os

from qingsuan.store import open_log
from qingsuan.store.base import RepairReport

__all__ = ["RepairReport", "repair_log"]


def repair_log(url: str | os.PathLike[str], keep_seq: int) -> RepairReport:
    """Keep entries ``1..keep_seq`` of the log at ``url`` and remove the rest (a copy is kept
    first). Takes the writer lock; refuses a store that is not a command log, and a
    ``keep_seq`` past a damaged entry (:class:`~qingsuan.store.BrokenChainError`)."""
    # a store must be there already: a writer's open would make a new one
    open_log(url, readonly=True, verify=False, _check=False).close()
    with open_log(url, verify=False, _check=False) as log:
        return log._repair(keep_seq)
