"""Shared types of the command store: entries, snapshots, the hash chain and its verification.

The engine is a function of its input log.  Every accepted command batch is appended here and
made durable *before* it is acknowledged, so after a crash the log holds exactly the batches
that anyone was told about -- plus, at most, one half-written batch that nobody was told about.
Replaying the log from the start (or from a snapshot) rebuilds the identical state.

Each entry is chained to its predecessor by hash (:func:`entry_hash`), so on start-up the store
can prove that the log it is about to replay is the one it wrote:

* a **torn tail** -- only the *final* entry fails its own hash check -- is what a crash in the
  middle of a write leaves behind.  That entry was never acknowledged (acknowledgement happens
  only after the write is durable), so it is discarded with a warning and the log continues
  from the entry before it;
* anything else -- an entry in the middle whose content does not match its hash, a
  ``prev_hash`` that does not match the previous entry, a gap in the sequence -- means the
  history itself is damaged or was tampered with.  Replaying it would silently produce a
  different state, so the store refuses to open (:class:`BrokenChainError`).

The concrete stores (memory, SQLite, PostgreSQL) implement only a handful of storage
primitives; the chaining, verification and snapshot rules live here, once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = [
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "BrokenChainError",
    "CommandLog",
    "LogEntry",
    "LogError",
    "Snapshot",
    "entry_hash",
    "snapshot_hash",
]

logger = logging.getLogger("qingsuan.store")

#: ``prev_hash`` of entry 1.
GENESIS_HASH = bytes(32)

#: On-disk format version, kept in the ``meta`` table; a store refuses any other version.
FORMAT_VERSION = 1

HASH_SIZE = 32
MAX_KIND_LENGTH = 255  # the kind's length is hashed as one byte

# entries() fetches in chunks sized to roughly this many payload bytes (between 1 and
# _MAX_CHUNK_ROWS rows), so neither many tiny payloads nor a few huge ones load the whole log.
_CHUNK_TARGET_BYTES = 8 * 1024 * 1024
_MAX_CHUNK_ROWS = 1024
_FIRST_CHUNK_ROWS = 64


class LogError(Exception):
    """The command log cannot be opened or written (bad format, storage failure, ...)."""


class BrokenChainError(LogError):
    """The hash chain is broken somewhere other than a torn tail; the store will not open.

    ``seq`` is the entry at which the defect was found and ``reason`` what is wrong with it.
    """

    def __init__(self, seq: int, reason: str, where: str = "") -> None:
        self.seq = seq
        self.reason = reason
        self.where = where
        log = f"command log {where}" if where else "command log"
        super().__init__(f"{log} broken at entry {seq}: {reason} (refusing to start)")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One durable command batch member.  ``hash`` chains it to entry ``seq - 1``."""

    seq: int
    kind: str
    payload: bytes
    prev_hash: bytes
    hash: bytes

    def hash_ok(self) -> bool:
        """True when ``hash`` recomputes from the entry's own content (seq, kind, payload and
        prev_hash).  Never raises: a malformed entry (non-ascii kind, ...) is simply not ok."""
        try:
            return entry_hash(self.prev_hash, self.seq, self.kind, self.payload) == self.hash
        except (ValueError, TypeError, OverflowError):
            return False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Engine state after applying entries ``1..seq``; ``state_hash`` is ``sha256(state)``."""

    seq: int
    state: bytes
    state_hash: bytes

    @classmethod
    def of(cls, seq: int, state: bytes) -> Snapshot:
        """Build a snapshot, computing its ``state_hash``."""
        return cls(seq, state, snapshot_hash(state))


def entry_hash(prev_hash: bytes, seq: int, kind: str, payload: bytes) -> bytes:
    """SHA-256 over ``prev_hash || seq (8 bytes, big endian) || len(kind) (1 byte) || kind
    (ascii) || payload``.

    Fed to the hash piece by piece, so a large payload is never copied into a concatenation.
    """
    kind_bytes = kind.encode("ascii")
    if len(kind_bytes) > MAX_KIND_LENGTH:
        raise ValueError(f"command kind longer than {MAX_KIND_LENGTH} characters: {kind[:40]!r}")
    h = hashlib.sha256(prev_hash)
    h.update(seq.to_bytes(8, "big"))
    h.update(len(kind_bytes).to_bytes(1, "big"))
    h.update(kind_bytes)
    h.update(payload)
    return h.digest()


def snapshot_hash(state: bytes) -> bytes:
    """``sha256(state)``, the hash a :class:`Snapshot` must carry."""
    return hashlib.sha256(state).digest()


def _check_command(kind: object, payload: object) -> tuple[str, bytes]:
    if not isinstance(kind, str) or not kind or not kind.isascii():
        raise ValueError(f"command kind must be a non-empty ascii string, got {kind!r}")
    if len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"command kind longer than {MAX_KIND_LENGTH} characters: {kind[:40]!r}")
    if isinstance(payload, bytes):
        return kind, payload
    if isinstance(payload, bytearray | memoryview):
        return kind, bytes(payload)
    raise TypeError(f"command payload must be bytes, got {type(payload).__name__}")


class CommandLog(ABC):
    """An append-only, hash-chained, durable log of command batches, plus snapshots.

    Fail-stop: once an append has failed, the store refuses further writes (the failed
    write may or may not have become durable); re-opening it re-verifies and recovers.

    Subclasses supply the storage primitives (the ``_``-prefixed abstract methods); this class
    owns the chain, the verification on open and the snapshot rules.  Construct a store through
    :func:`qingsuan.store.open_log`, which calls :meth:`_start` once the storage is ready.

    A store has one writer: ``append`` and ``save_snapshot`` are serialised by a lock, and a
    second writer on the same storage is detected by the primary key on ``seq`` (its append
    fails with :class:`LogError` instead of forking the chain).
    """

    #: Human-readable location (file name, url), used in messages.
    where: str

    def __init__(self, where: str) -> None:
        self.where = where
        self._last_seq = 0
        self._last_hash = GENESIS_HASH
        self._lock = threading.Lock()
        self._closed = False
        self._failed = False

    # ------------------------------------------------------------------ public API

    @property
    def last_seq(self) -> int:
        """Seq of the last durable entry (0 for an empty log)."""
        return self._last_seq

    @property
    def last_hash(self) -> bytes:
        """Hash of the last durable entry (:data:`GENESIS_HASH` for an empty log)."""
        return self._last_hash

    def append(self, commands: Sequence[tuple[str, bytes]]) -> list[LogEntry]:
        """Append a batch of ``(kind, payload)`` commands as one group commit.

        All commands become durable together -- one transaction, one fsync -- *before* this
        returns, so the caller may acknowledge them as soon as it has the entries.  If it
        raises, nothing was appended and nothing may be acknowledged.  An empty batch is a
        no-op returning ``[]``.
        """
        checked = [_check_command(kind, payload) for kind, payload in commands]
        if not checked:
            return []
        with self._lock:
            self._check_writable()
            entries: list[LogEntry] = []
            prev, seq = self._last_hash, self._last_seq
            for kind, payload in checked:
                seq += 1
                h = entry_hash(prev, seq, kind, payload)
                entries.append(LogEntry(seq, kind, payload, prev, h))
                prev = h
            try:
                self._write_entries(entries)  # durable when it returns
            except BaseException:
                # The outcome may be unknown (e.g. connection lost during COMMIT): stop
                # writing; re-opening re-verifies and sees what did become durable.
                self._failed = True
                raise
            self._last_seq, self._last_hash = seq, prev
            return entries

    def entries(self, after_seq: int = 0) -> Iterator[LogEntry]:
        """Entries with ``seq > after_seq`` in seq order.

        Streams: rows are fetched in bounded chunks (sized by payload bytes), each chunk with
        its own short query, so a huge log is never held in memory and no long-running read
        transaction is kept open between chunks.  Entries appended while iterating are seen.
        """
        limit = _FIRST_CHUNK_ROWS
        while True:
            self._check_open()
            chunk = self._fetch_entries(after_seq, limit)
            yield from chunk
            if len(chunk) < limit:
                return
            after_seq = chunk[-1].seq
            size = sum(len(e.payload) for e in chunk) + 128 * len(chunk)
            limit = max(1, min(_MAX_CHUNK_ROWS, _CHUNK_TARGET_BYTES * len(chunk) // size))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` durably (replacing any snapshot at the same seq).

        Requires ``0 <= snapshot.seq <= last_seq`` and a correct ``state_hash``.  The snapshot
        is bound to the hash of entry ``seq`` so that it can never be applied to a different
        history that happens to reach the same seq.
        """
        if snapshot_hash(snapshot.state) != snapshot.state_hash:
            raise ValueError(f"snapshot at seq {snapshot.seq}: state_hash is not sha256(state)")
        with self._lock:
            self._check_writable()
            if not 0 <= snapshot.seq <= self._last_seq:
                raise ValueError(
                    f"snapshot seq {snapshot.seq} outside the log (last_seq {self._last_seq})"
                )
            chain = (
                self._last_hash
                if snapshot.seq == self._last_seq
                else self._chain_hash_at(snapshot.seq)
            )
            if chain is None:  # pragma: no cover - the log is contiguous after open
                raise LogError(f"{self.where}: entry {snapshot.seq} is missing")
            self._write_snapshot(snapshot, chain)

    def latest_snapshot(self) -> Snapshot | None:
        """The newest usable snapshot, or None.

        A snapshot whose state does not hash to its ``state_hash`` is skipped with a warning
        and the previous one is used.  A snapshot beyond ``last_seq`` (or bound to an entry
        hash that is no longer in the log) is ignored: it describes a history we do not have.
        """
        self._check_open()
        for seq, state_hash, chain in self._snapshot_index():
            if seq > self._last_seq:
                logger.warning(
                    "command log %s: ignoring snapshot at seq %d, beyond the last entry %d",
                    self.where,
                    seq,
                    self._last_seq,
                )
                continue
            if self._chain_hash_at(seq) != chain:
                logger.warning(
                    "command log %s: ignoring snapshot at seq %d, taken from a different "
                    "history (entry hash mismatch)",
                    self.where,
                    seq,
                )
                continue
            state = self._load_snapshot_state(seq)
            if state is None or snapshot_hash(state) != state_hash:
                logger.warning(
                    "command log %s: snapshot at seq %d is corrupt (state does not match "
                    "state_hash); falling back to an earlier one",
                    self.where,
                    seq,
                )
                continue
            return Snapshot(seq, state, state_hash)
        return None

    def close(self) -> None:
        """Release the storage.  Idempotent.  Everything appended is already durable."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where} last_seq={self._last_seq}>"

    # ------------------------------------------------------------------ start-up

    def _start(self, verify: bool) -> None:
        """Establish ``last_seq``/``last_hash``; with ``verify``, prove the chain first."""
        if verify:
            self._verify_chain()
            return
        tail = self._fetch_tail()
        if tail is not None:
            self._last_seq, self._last_hash = tail.seq, tail.hash

    def _verify_chain(self) -> None:
        """Walk the whole chain (streaming); discard a torn tail, refuse anything else."""
        prev_seq, prev_hash = 0, GENESIS_HASH
        bad: LogEntry | None = None  # an entry that failed its own hash check
        for entry in self.entries(0):
            if bad is not None:
                # The bad entry is not the last one: this is damage, not a torn write.
                raise BrokenChainError(
                    bad.seq,
                    "its hash does not match its content (and it is not the last "
                    "entry, so this is not a torn write)",
                    self.where,
                )
            if entry.seq != prev_seq + 1:
                missing = prev_seq + 1
                reason = (
                    f"gap in the sequence: expected entry {missing} after entry {prev_seq}"
                    if prev_seq
                    else f"the log must start at entry 1, found entry {entry.seq}"
                )
                raise BrokenChainError(entry.seq, reason, self.where)
            if not entry.hash_ok():
                bad = entry
                continue
            if entry.prev_hash != prev_hash:
                what = f"entry {prev_seq}" if prev_seq else "the genesis hash"
                raise BrokenChainError(entry.seq, f"prev_hash does not match {what}", self.where)
            prev_seq, prev_hash = entry.seq, entry.hash
        if bad is not None:
            logger.warning(
                "command log %s: discarding torn tail entry %d (its hash does not match its "
                "content: a write interrupted by a crash, never acknowledged); continuing "
                "from entry %d",
                self.where,
                bad.seq,
                prev_seq,
            )
            self._truncate_after(prev_seq)
        self._last_seq, self._last_hash = prev_seq, prev_hash

    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"command log {self.where} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._failed:
            raise LogError(
                f"command log {self.where}: an earlier append failed and its outcome is "
                "unknown; re-open the log to recover"
            )

    # ------------------------------------------------------------------ storage primitives

    @abstractmethod
    def _fetch_entries(self, after_seq: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` entries with ``seq > after_seq``, ascending."""

    @abstractmethod
    def _fetch_tail(self) -> LogEntry | None:
        """The entry with the highest seq, if any."""

    @abstractmethod
    def _chain_hash_at(self, seq: int) -> bytes | None:
        """Stored hash of entry ``seq`` (:data:`GENESIS_HASH` for 0); None if absent."""

    @abstractmethod
    def _write_entries(self, entries: list[LogEntry]) -> None:
        """Insert ``entries`` atomically and durably (one transaction, one fsync).

        Must raise (leaving the store unchanged) rather than return before durability."""

    @abstractmethod
    def _truncate_after(self, seq: int) -> None:
        """Durably delete every entry with seq > ``seq`` (torn-tail removal only)."""

    @abstractmethod
    def _snapshot_index(self) -> list[tuple[int, bytes, bytes]]:
        """``(seq, state_hash, chain_hash)`` of every stored snapshot, newest first."""

    @abstractmethod
    def _load_snapshot_state(self, seq: int) -> bytes | None:
        """The stored state of the snapshot at ``seq``."""

    @abstractmethod
    def _write_snapshot(self, snapshot: Snapshot, chain_hash: bytes) -> None:
        """Durably store (or replace) the snapshot at ``snapshot.seq``."""

    @abstractmethod
    def _close(self) -> None:
        """Release connections / files."""
