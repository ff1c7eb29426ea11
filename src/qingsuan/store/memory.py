"""In-memory command log, for simulation and tests.  Not durable.

``memory:`` / ``memory://`` opens a fresh, private log.  ``memory://NAME`` opens a *named* log
kept in this process until :func:`discard` is called, so that closing and re-opening it
behaves like a durable store (re-verification, the checkpoint and the one-writer rule
included); tests use the :class:`MemoryBacking` of a named log to damage it the way a bad
disk or an intruder would.
"""

from __future__ import annotations

import bisect
import copy
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from qingsuan.store.base import (
    CHECKPOINT_EVERY,
    EMPTY_CHECKPOINT,
    FORMAT_VERSION,
    GENESIS_HASH,
    Checkpoint,
    CommandLog,
    LogEntry,
    LogError,
    Snapshot,
    WriterInfo,
    WriterLockedError,
)

__all__ = ["MemoryBacking", "MemoryCommandLog", "backing", "discard"]


@dataclass
class MemoryBacking:
    """The "storage" of a memory log: plain lists and dicts, kept sorted by seq."""

    entries: list[LogEntry] = field(default_factory=list)
    #: seq -> (state, state_hash, chain_hash)
    snapshots: dict[int, tuple[bytes, bytes, bytes]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=lambda: {"format_version": str(FORMAT_VERSION)})
    #: kept apart from the entries, as the SQL stores keep it in its own table
    checkpoint: Checkpoint | None = EMPTY_CHECKPOINT
    #: the open writer (a weak reference: a log dropped without close frees the store)
    writer: tuple[weakref.ref[MemoryCommandLog], WriterInfo] | None = None


_registry: dict[str, MemoryBacking] = {}
_registry_lock = threading.Lock()


def backing(name: str) -> MemoryBacking:
    """The backing of the named log ``memory://NAME`` (created empty if new)."""
    with _registry_lock:
        return _registry.setdefault(name, MemoryBacking())


def discard(name: str) -> None:
    """Forget the named log ``memory://NAME``."""
    with _registry_lock:
        _registry.pop(name, None)


def _seq_of(entry: LogEntry) -> int:
    return entry.seq


class MemoryCommandLog(CommandLog):
    """A :class:`CommandLog` over a :class:`MemoryBacking`; same verification semantics."""

    def __init__(self, store: MemoryBacking, where: str, *, readonly: bool = False,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        super().__init__(where, readonly=readonly, checkpoint_every=checkpoint_every)
        self._store = store
        self._name = where.removeprefix("memory:").removeprefix("//")

    @classmethod
    def open(cls, url: str, *, verify: bool, readonly: bool = False, check: bool = True,
             checkpoint_every: int = CHECKPOINT_EVERY) -> MemoryCommandLog:
        """Open ``memory:`` (fresh) or ``memory://NAME`` (named, shared in this process)."""
        name = url.removeprefix("memory:").removeprefix("//")
        store = backing(name) if name else MemoryBacking()
        found = store.meta.get("format_version")
        if found != str(FORMAT_VERSION):
            raise LogError(
                f"{url}: command-log format version {found} is not supported "
                f"(this build reads version {FORMAT_VERSION}); refusing to open"
            )
        log = cls(store, url, readonly=readonly, checkpoint_every=checkpoint_every)
        if not readonly:
            with _registry_lock:
                holder = store.writer
                if holder is not None and holder[0]() is not None:
                    raise WriterLockedError(url, holder[1])
                store.writer = (weakref.ref(log), WriterInfo.mine())
        try:
            log._start(verify, check=check)
        except BaseException:
            log.close()
            raise
        return log

    def _index_after(self, seq: int) -> int:
        return bisect.bisect_right(self._store.entries, seq, key=_seq_of)

    def _fetch_entries(self, after_seq: int, limit: int) -> list[LogEntry]:
        start = self._index_after(after_seq)
        return self._store.entries[start : start + limit]

    def _fetch_tail(self) -> LogEntry | None:
        return self._store.entries[-1] if self._store.entries else None

    def _chain_hash_at(self, seq: int) -> bytes | None:
        if seq == 0:
            return GENESIS_HASH
        i = self._index_after(seq) - 1
        entries = self._store.entries
        return entries[i].hash if i >= 0 and entries[i].seq == seq else None

    def _write_entries(self, entries: list[LogEntry], checkpoint: Checkpoint | None) -> None:
        tail = self._store.entries[-1].seq if self._store.entries else 0
        if entries[0].seq <= tail:
            raise LogError(f"{self.where}: entry {entries[0].seq} exists (a second writer?)")
        self._store.entries.extend(entries)
        if checkpoint is not None:
            self._store.checkpoint = checkpoint

    def _read_checkpoint(self) -> Checkpoint | None:
        return self._store.checkpoint

    def _write_checkpoint(self, checkpoint: Checkpoint, *, release: bool = False) -> None:
        self._store.checkpoint = checkpoint

    def _snapshot_index(self) -> list[tuple[int, bytes, bytes]]:
        return [
            (seq, state_hash, chain)
            for seq, (_state, state_hash, chain) in sorted(
                self._store.snapshots.items(), reverse=True
            )
        ]

    def _load_snapshot_state(self, seq: int) -> bytes | None:
        found = self._store.snapshots.get(seq)
        return found[0] if found else None

    def _write_snapshot(self, snapshot: Snapshot, chain_hash: bytes,
                        checkpoint: Checkpoint) -> None:
        self._store.snapshots[snapshot.seq] = (snapshot.state, snapshot.state_hash, chain_hash)
        self._store.checkpoint = checkpoint

    def _backup(self) -> str:
        if not self._name:
            return "(none: a private memory log)"
        n = 1
        while True:
            name = f"{self._name}.backup-{n}"
            with _registry_lock:
                if name not in _registry:
                    kept = copy.deepcopy(self._store)
                    kept.writer = None
                    _registry[name] = kept
                    return f"memory://{name}"
            n += 1

    def _cut(self, seq: int, drop_snapshots: Sequence[int], checkpoint: Checkpoint) -> None:
        del self._store.entries[self._index_after(seq):]
        for dropped in drop_snapshots:
            self._store.snapshots.pop(dropped, None)
        self._store.checkpoint = checkpoint

    def _close(self) -> None:
        if self.readonly:
            return
        with _registry_lock:
            holder = self._store.writer
            if holder is not None and holder[0]() is self:
                self._store.writer = None
