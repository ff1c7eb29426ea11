"""Shared types of the command store: entries, snapshots, the checkpoint, the hash chain and
its verification.

The engine is a function of its input log.  Every accepted command batch is appended here and
made durable *before* it is acknowledged.  SQLite and PostgreSQL commit atomically, so a crash
never leaves half an entry: every stored entry was written whole, and an entry that fails its
hash was changed afterwards.  Nothing here ever deletes or rewrites an entry on its own:

* each entry is chained to its predecessor by hash (:func:`entry_hash`); on open the whole
  chain is walked and any defect -- an entry whose content does not match its hash, a
  ``prev_hash`` that does not link, a gap -- raises :class:`BrokenChainError` naming the entry
  and both hashes;
* a :class:`Checkpoint` (the last seq and chain hash, and the newest snapshot's state hash) is
  kept *outside* the log, in its own table; it is written with every snapshot, at a clean close
  and every ``checkpoint_every`` entries (in the same transaction as the entries, so it costs no
  extra fsync).  A log shorter than its checkpoint says (:class:`LogTruncatedError`), an entry
  that differs from it, or a snapshot that is missing or changed (:class:`SnapshotError`) is
  refused the same way;
* repair is a separate, explicit step (:func:`qingsuan.store.repair.repair_log`), which keeps a
  copy first.

A store has one writer (:class:`WriterLockedError` names the holder); read-only opens take no
lock and write nothing.  The concrete stores implement a handful of storage primitives; the
chain, the checkpoint and the snapshot rules live here, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

__all__ = [
    "CHECKPOINT_EVERY",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "MAX_CHECKPOINT_EVERY",
    "BrokenChainError",
    "Checkpoint",
    "CommandLog",
    "LogEntry",
    "LogError",
    "LogTruncatedError",
    "NotAStoreError",
    "Proof",
    "RepairReport",
    "Snapshot",
    "SnapshotError",
    "WriterInfo",
    "WriterLockedError",
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

#: Entries between two periodic checkpoints (default). A tail shorter than this, deleted
#: after the last checkpoint and before a clean close, is the most that can go unnoticed.
CHECKPOINT_EVERY: Final = 256
#: The largest ``checkpoint_every`` a store accepts.
MAX_CHECKPOINT_EVERY: Final = 65_536

# entries() fetches in chunks sized to roughly this many payload bytes (between 1 and
# _MAX_CHUNK_ROWS rows), so neither many tiny payloads nor a few huge ones load the whole log.
_CHUNK_TARGET_BYTES = 8 * 1024 * 1024
_MAX_CHUNK_ROWS = 1024
_FIRST_CHUNK_ROWS = 64


class LogError(Exception):
    """The command log cannot be opened or written (bad format, storage failure, ...)."""


class NotAStoreError(LogError):
    """The target is not a command log: missing (read-only open), an empty file, another
    program's database. Nothing was written."""


class EmptyStoreError(NotAStoreError):
    """Nothing there yet (a database or schema without tables), opened read-only: a new
    store once opened for writing."""


class BrokenChainError(LogError):
    """The log is damaged or was tampered with; the store will not open.

    ``seq`` is the entry at which the defect was found and ``reason`` what is wrong with it.
    """

    def __init__(self, seq: int, reason: str, where: str = "") -> None:
        self.seq = seq
        self.reason = reason
        self.where = where
        log = f"command log {where}" if where else "command log"
        super().__init__(f"{log} broken at entry {seq}: {reason} (refusing to start)")


class LogTruncatedError(BrokenChainError):
    """The log ends before the entry its checkpoint records: entries were removed from its
    tail. ``last_seq`` is where it ends, ``checkpoint`` what was recorded."""

    def __init__(self, last_seq: int, checkpoint: Checkpoint, where: str = "") -> None:
        self.last_seq = last_seq
        self.checkpoint = checkpoint
        missing = (f"entry {checkpoint.seq}" if checkpoint.seq == last_seq + 1
                   else f"entries {last_seq + 1}..{checkpoint.seq}")
        super().__init__(
            last_seq + 1,
            f"the log ends at entry {last_seq}, but its checkpoint (written "
            f"{checkpoint.written_at or 'at an unknown time'}) records entry {checkpoint.seq} "
            f"with hash {checkpoint.hash.hex()}: {missing} are missing from the tail. "
            f"If the loss is known, `qingsuan log repair URL --truncate-after {last_seq}` "
            "accepts it (after keeping a copy)",
            where,
        )


class SnapshotError(LogError):
    """A snapshot is missing, changed or corrupt; the store will not open (the log is intact:
    ``qingsuan log repair`` can drop the snapshot and recovery replays the log instead)."""

    def __init__(self, seq: int, reason: str, where: str = "") -> None:
        self.seq = seq
        self.reason = reason
        super().__init__(f"command log {where}: snapshot at entry {seq}: {reason} "
                         "(refusing to start)")


@dataclass(frozen=True, slots=True)
class WriterInfo:
    """Who holds a store's writer lock."""

    pid: int
    host: str
    since: str  # UTC, ISO 8601

    @classmethod
    def mine(cls) -> WriterInfo:
        return cls(os.getpid(), socket.gethostname(), utc_now())

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"

    def is_gone(self) -> bool:
        """True when this writer ran on this host and its process no longer exists (it was
        killed or crashed); a writer on another host is never known to be gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by another user
            return False
        return False


class WriterLockedError(LogError):
    """Another writer holds the store (``holder``, when known); a store has one writer."""

    def __init__(self, where: str, holder: WriterInfo | None) -> None:
        self.holder = holder
        who = f"by {holder}" if holder is not None else "by another process (holder unknown)"
        super().__init__(
            f"command log {where} is open for writing {who}: a store has one writer, so "
            "this process refuses to open it (stop that one first; readers such as "
            "`qingsuan log verify` need no lock)"
        )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One durable command batch member.  ``hash`` chains it to entry ``seq - 1``."""

    seq: int
    kind: str
    payload: bytes
    prev_hash: bytes
    hash: bytes

    def computed_hash(self) -> bytes | None:
        """The hash the entry's content (seq, kind, payload, prev_hash) gives; None when it
        cannot be computed (a non-ascii kind, ...)."""
        try:
            return entry_hash(self.prev_hash, self.seq, self.kind, self.payload)
        except (ValueError, TypeError, OverflowError):
            return None

    def hash_ok(self) -> bool:
        """True when ``hash`` recomputes from the entry's own content.  Never raises."""
        return self.computed_hash() == self.hash


@dataclass(frozen=True, slots=True)
class Proof:
    """Where a durable entry sits in its log: its ``seq`` and chain ``hash``. The hash of
    entry N commits to every entry up to N, so a client holding it can later prove that
    an acknowledged command existed (``qingsuan log verify URL --expect SEQ:HASH``)."""

    seq: int
    hash: bytes

    def as_dict(self) -> dict[str, int | str]:
        """``{"seq": N, "hash": HEX}``, for answers."""
        return {"seq": self.seq, "hash": self.hash.hex()}

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash.hex()}"

    @classmethod
    def parse(cls, text: str) -> Proof:
        """``SEQ:HEX`` (as :meth:`__str__` writes it)."""
        seq, sep, digest = text.strip().partition(":")
        try:
            value = cls(int(seq), bytes.fromhex(digest))
        except ValueError:
            value = None
        if not sep or value is None or value.seq < 1 or len(value.hash) != HASH_SIZE:
            raise ValueError(f"not a proof {text!r}: expected SEQ:HASH (64 hex digits)")
        return value


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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What the log held when it was last checkpointed, kept outside the log table: its last
    entry (``seq``, ``hash``) and its newest snapshot (``snapshot_seq``, ``snapshot_hash``,
    both None when there is none)."""

    seq: int
    hash: bytes
    snapshot_seq: int | None = None
    snapshot_hash: bytes | None = None
    written_at: str = ""

    def at(self, seq: int, chain_hash: bytes) -> Checkpoint:
        """The same snapshot reference with the log at ``seq``, written now."""
        return Checkpoint(seq, chain_hash, self.snapshot_seq, self.snapshot_hash, utc_now())


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What a repair did: where the copy is (empty when nothing needed changing), the entries
    kept (``1..kept_seq``) and removed, the snapshots dropped, the checkpoint before and
    after."""

    backup: str
    kept_seq: int
    removed_entries: int
    dropped_snapshots: list[int]
    before: Checkpoint | None
    after: Checkpoint


#: The checkpoint of a new, empty store.
EMPTY_CHECKPOINT = Checkpoint(0, GENESIS_HASH)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def entry_hash(prev_hash: bytes, seq: int, kind: str, payload: bytes) -> bytes:
    """SHA-256 over ``prev_hash || seq (8 bytes, big endian) || len(kind) (1 byte) || kind
    (ascii) || payload``.

    A large payload is fed to the hash on its own, never copied into a concatenation; a
    small one (a scenario event's) goes in with the rest in one call: cheaper than five.
    """
    head = _kind_head(kind)
    if len(payload) > _JOIN_MAX_BYTES:
        h = hashlib.sha256(prev_hash)
        h.update(seq.to_bytes(8, "big"))
        h.update(head)
        h.update(payload)
        return h.digest()
    return hashlib.sha256(b"".join((prev_hash, seq.to_bytes(8, "big"), head, payload))
                          ).digest()


#: payloads up to this size are hashed as one concatenation with their entry's header
_JOIN_MAX_BYTES = 4096
#: kinds whose hashed header (length byte and ascii) is kept: a log has a few dozen
_KIND_HEADS_MAX = 256
_kind_heads: dict[str, bytes] = {}


def _kind_head(kind: str) -> bytes:
    """``len(kind) (1 byte) || kind (ascii)``, kept per kind."""
    head = _kind_heads.get(kind)
    if head is None:
        kind_bytes = kind.encode("ascii")
        if len(kind_bytes) > MAX_KIND_LENGTH:
            raise ValueError(f"command kind longer than {MAX_KIND_LENGTH} characters: "
                             f"{kind[:40]!r}")
        head = len(kind_bytes).to_bytes(1, "big") + kind_bytes
        if kind_bytes and len(_kind_heads) < _KIND_HEADS_MAX:
            _kind_heads[kind] = head
    return head


def snapshot_hash(state: bytes) -> bytes:
    """``sha256(state)``, the hash a :class:`Snapshot` must carry."""
    return hashlib.sha256(state).digest()


def _check_command(kind: object, payload: object) -> tuple[str, bytes]:
    if type(kind) is str and type(payload) is bytes and kind in _kind_heads:
        return kind, payload  # a kind seen before (every kind kept is a valid one)
    if not isinstance(kind, str) or not kind or not kind.isascii():
        raise ValueError(f"command kind must be a non-empty ascii string, got {kind!r}")
    if len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"command kind longer than {MAX_KIND_LENGTH} characters: {kind[:40]!r}")
    if isinstance(payload, bytes):
        return kind, payload
    if isinstance(payload, bytearray | memoryview):
        return kind, bytes(payload)
    raise TypeError(f"command payload must be bytes, got {type(payload).__name__}")


def _hex(value: bytes | None) -> str:
    return "(none)" if value is None else value.hex()


class CommandLog(ABC):
    """An append-only, hash-chained, durable log of command batches, plus snapshots and the
    checkpoint.

    Fail-stop: once an append has failed, the store refuses further writes (the failed
    write may or may not have become durable); re-opening it re-verifies.

    Subclasses supply the storage primitives (the ``_``-prefixed abstract methods); this class
    owns the chain, the verification on open, the checkpoint and the snapshot rules.  Construct
    a store through :func:`qingsuan.store.open_log`, which takes the writer lock (unless
    read-only) and calls :meth:`_start` once the storage is ready.
    """

    #: Human-readable location (file name, url), used in messages.
    where: str

    def __init__(self, where: str, *, readonly: bool = False,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        if not 1 <= checkpoint_every <= MAX_CHECKPOINT_EVERY:
            raise ValueError(f"checkpoint_every must be 1..{MAX_CHECKPOINT_EVERY}, "
                             f"got {checkpoint_every}")
        self.where = where
        self.readonly = readonly
        self.checkpoint_every = checkpoint_every
        self._last_seq = 0
        self._last_hash = GENESIS_HASH
        self._checkpoint = EMPTY_CHECKPOINT
        self._lock = threading.Lock()
        self._closed = False
        self._failed = False
        # set once the store has been checked on open: only then does close record the
        # checkpoint (a store refused on open must not overwrite the evidence)
        self._open_ok = False

    # ------------------------------------------------------------------ public API

    @property
    def last_seq(self) -> int:
        """Seq of the last durable entry (0 for an empty log)."""
        return self._last_seq

    @property
    def last_hash(self) -> bytes:
        """Hash of the last durable entry (:data:`GENESIS_HASH` for an empty log)."""
        return self._last_hash

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint as last read or written by this store."""
        return self._checkpoint

    def proof(self) -> Proof:
        """The last durable entry's seq and chain hash."""
        return Proof(self._last_seq, self._last_hash)

    def hash_at(self, seq: int) -> bytes | None:
        """The stored chain hash of entry ``seq`` (:data:`GENESIS_HASH` for 0), None if
        there is no such entry."""
        self._check_open()
        return self._chain_hash_at(seq)

    def append(self, commands: Sequence[tuple[str, bytes]]) -> list[LogEntry]:
        """Append a batch of ``(kind, payload)`` commands as one group commit.

        All commands become durable together -- one transaction, one fsync -- *before* this
        returns, so the caller may acknowledge them as soon as it has the entries.  If it
        raises, nothing was appended and nothing may be acknowledged.  An empty batch is a
        no-op returning ``[]``.  Every ``checkpoint_every`` entries the checkpoint is written
        in the same transaction.
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
            checkpoint = (self._checkpoint.at(seq, prev)
                          if seq - self._checkpoint.seq >= self.checkpoint_every else None)
            try:
                self._write_entries(entries, checkpoint)  # durable when it returns
            except BaseException:
                # The outcome may be unknown (e.g. connection lost during COMMIT): stop
                # writing; re-opening re-verifies and sees what did become durable.
                self._failed = True
                raise
            self._last_seq, self._last_hash = seq, prev
            if checkpoint is not None:
                self._checkpoint = checkpoint
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
        """Store ``snapshot`` durably (replacing any snapshot at the same seq), and with it
        the checkpoint (the log's end and the newest snapshot), in one transaction.

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
            old = self._checkpoint
            newest = old.snapshot_seq is None or snapshot.seq >= old.snapshot_seq
            checkpoint = Checkpoint(
                self._last_seq, self._last_hash,
                snapshot.seq if newest else old.snapshot_seq,
                snapshot.state_hash if newest else old.snapshot_hash, utc_now())
            self._write_snapshot(snapshot, chain, checkpoint)
            self._checkpoint = checkpoint

    def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot, which must be the one the checkpoint records, or None.

        Raises :class:`SnapshotError` when that snapshot is missing, when one not recorded by
        the checkpoint exists, when its state does not hash to its ``state_hash`` or the
        checkpoint's, or when it is bound to another history than the log's.
        """
        self._check_open()
        checkpoint, index = self._checkpoint_and_snapshots()
        if checkpoint is None:
            raise LogError(f"command log {self.where}: its checkpoint is missing (deleted "
                           "from outside?); refusing to start")
        ref = checkpoint.snapshot_seq
        newest = index[0] if index else None
        if ref is None:
            if newest is not None:
                raise SnapshotError(newest[0], "the checkpoint records no snapshot: this one "
                                    "was added from outside", self.where)
            return None
        if newest is None or newest[0] < ref:
            raise SnapshotError(ref, "recorded by the checkpoint (state hash "
                                f"{_hex(checkpoint.snapshot_hash)}), it is missing", self.where)
        seq, state_hash, chain = newest
        if seq > ref:
            raise SnapshotError(seq, f"the checkpoint records the snapshot at entry {ref} as "
                                "the newest: this one was added from outside", self.where)
        if state_hash != checkpoint.snapshot_hash:
            raise SnapshotError(seq, f"its state hash {state_hash.hex()} differs from the "
                                f"checkpoint's {_hex(checkpoint.snapshot_hash)}", self.where)
        if seq > self._last_seq and self.readonly:
            self._extend_verified()  # a writer went on after this reader opened
        if seq > self._last_seq:
            raise SnapshotError(seq, f"beyond the last entry {self._last_seq}", self.where)
        entry = self._chain_hash_at(seq)
        if entry != chain:
            raise SnapshotError(seq, f"taken from another history: bound to entry hash "
                                f"{chain.hex()}, the log's entry {seq} is {_hex(entry)}",
                                self.where)
        state = self._load_snapshot_state(seq)
        found = None if state is None else snapshot_hash(state)
        if state is None or found != state_hash:
            raise SnapshotError(seq, f"its state is corrupt: it hashes to {_hex(found)}, "
                                f"recorded {state_hash.hex()}", self.where)
        return Snapshot(seq, state, state_hash)

    def close(self) -> None:
        """Release the storage (and the writer lock).  Idempotent.  Everything appended is
        already durable; a writer records the log's end in the checkpoint first (unless an
        append failed: then what became durable is unknown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._open_ok and not self.readonly and not self._failed:
                    checkpoint = self._checkpoint
                    if (checkpoint.seq, checkpoint.hash) != (self._last_seq, self._last_hash):
                        checkpoint = checkpoint.at(self._last_seq, self._last_hash)
                    self._write_checkpoint(checkpoint, release=True)
                    self._checkpoint = checkpoint
            except LogError as exc:
                # the periodic checkpoints stand; closing must still release the store
                logger.warning("command log %s: checkpoint at close not written: %s",
                               self.where, exc)
            finally:
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

    # ------------------------------------------------------------------ repair

    def _repair(self, keep_seq: int) -> RepairReport:
        """Keep entries ``1..keep_seq`` and the sound snapshots among them; remove the rest
        after keeping a copy, and record the result in the checkpoint.  The store must have
        been opened for repair (no checks) and for writing."""
        with self._lock:
            self._check_writable()
            if not 0 <= keep_seq <= self._last_seq:
                raise ValueError(f"{self.where}: can keep entries 1..N with N from 0 to "
                                 f"{self._last_seq} (the last entry), not {keep_seq}")
            prev_seq, prev_hash = 0, GENESIS_HASH
            for entry in self.entries(0):
                if entry.seq > keep_seq:
                    break
                try:
                    check_link(entry, prev_seq, prev_hash, self.where)
                except BrokenChainError as exc:
                    raise BrokenChainError(exc.seq, f"{exc.reason}; repair can keep entries "
                                           f"up to {exc.seq - 1} at most", self.where) from None
                prev_seq, prev_hash = entry.seq, entry.hash
            if prev_seq != keep_seq:  # pragma: no cover - a gap is caught by check_link
                raise BrokenChainError(prev_seq + 1, "missing", self.where)
            kept: tuple[int, bytes] | None = None
            dropped: list[int] = []
            for seq, state_hash, chain in self._snapshot_index():
                sound = (kept is None and seq <= keep_seq
                         and self._chain_hash_at(seq) == chain
                         and (state := self._load_snapshot_state(seq)) is not None
                         and snapshot_hash(state) == state_hash)
                if sound:
                    kept = (seq, state_hash)
                elif seq > keep_seq or kept is None:
                    dropped.append(seq)  # older ones behind a sound one are left alone
            old = self._read_checkpoint()
            checkpoint = Checkpoint(keep_seq, prev_hash, kept[0] if kept else None,
                                    kept[1] if kept else None, utc_now())
            removed = self._last_seq - keep_seq
            unchanged = (removed == 0 and not dropped and old is not None
                         and (old.seq, old.hash, old.snapshot_seq, old.snapshot_hash)
                         == (checkpoint.seq, checkpoint.hash, checkpoint.snapshot_seq,
                             checkpoint.snapshot_hash))
            backup = ""
            if not unchanged:
                backup = self._backup()
                self._cut(keep_seq, dropped, checkpoint)
            self._last_seq, self._last_hash = keep_seq, prev_hash
            self._checkpoint = checkpoint
            self._open_ok = True
            return RepairReport(backup, keep_seq, removed, dropped, old, checkpoint)

    # ------------------------------------------------------------------ start-up

    def _start(self, verify: bool, *, check: bool = True) -> None:
        """Establish ``last_seq``/``last_hash``; with ``verify``, prove the chain first; with
        ``check`` (all but repair), compare with the checkpoint."""
        checkpoint = self._read_checkpoint()  # before the walk: the log only grows after it
        if verify:
            self._verify_chain()
        else:
            tail = self._fetch_tail()
            if tail is not None:
                self._last_seq, self._last_hash = tail.seq, tail.hash
        if not check:
            self._checkpoint = checkpoint or EMPTY_CHECKPOINT
            return
        if checkpoint is None:
            raise LogError(f"command log {self.where}: its checkpoint is missing (deleted "
                           "from outside?); refusing to start")
        if self._last_seq < checkpoint.seq:
            raise LogTruncatedError(self._last_seq, checkpoint, self.where)
        found = self._chain_hash_at(checkpoint.seq)
        if found != checkpoint.hash:
            raise BrokenChainError(
                checkpoint.seq, f"its hash {_hex(found)} differs from the checkpoint's "
                f"{checkpoint.hash.hex()}: the history was rewritten", self.where)
        self._checkpoint = checkpoint
        self._open_ok = True

    def _verify_chain(self) -> None:
        """Walk the whole chain (streaming); any defect raises :class:`BrokenChainError`."""
        self._last_seq, self._last_hash = 0, GENESIS_HASH
        self._extend_verified()

    def _extend_verified(self) -> None:
        """Verify the entries after ``last_seq`` and move ``last_seq`` to the end."""
        prev_seq, prev_hash = self._last_seq, self._last_hash
        for entry in self.entries(prev_seq):
            check_link(entry, prev_seq, prev_hash, self.where)
            prev_seq, prev_hash = entry.seq, entry.hash
        self._last_seq, self._last_hash = prev_seq, prev_hash

    def _check_open(self) -> None:
        if self._closed:
            raise LogError(f"command log {self.where} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise LogError(f"command log {self.where} is open read-only")
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
    def _write_entries(self, entries: list[LogEntry], checkpoint: Checkpoint | None) -> None:
        """Insert ``entries`` (and write ``checkpoint``, if given) atomically and durably:
        one transaction, one fsync.  Must raise (leaving the store unchanged) rather than
        return before durability."""

    @abstractmethod
    def _read_checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint; None when it is missing."""

    @abstractmethod
    def _write_checkpoint(self, checkpoint: Checkpoint, *, release: bool = False) -> None:
        """Durably store ``checkpoint``; with ``release``, clear the writer record too."""

    @abstractmethod
    def _snapshot_index(self) -> list[tuple[int, bytes, bytes]]:
        """``(seq, state_hash, chain_hash)`` of every stored snapshot, newest first."""

    def _checkpoint_and_snapshots(self) -> tuple[Checkpoint | None,
                                                 list[tuple[int, bytes, bytes]]]:
        """The checkpoint and the snapshot index, read together (one read transaction where
        the storage has them, so a concurrent writer cannot fall between the two)."""
        return self._read_checkpoint(), self._snapshot_index()

    @abstractmethod
    def _load_snapshot_state(self, seq: int) -> bytes | None:
        """The stored state of the snapshot at ``seq``."""

    @abstractmethod
    def _write_snapshot(self, snapshot: Snapshot, chain_hash: bytes,
                        checkpoint: Checkpoint) -> None:
        """Durably store (or replace) the snapshot at ``snapshot.seq`` and ``checkpoint``, in
        one transaction."""

    @abstractmethod
    def _backup(self) -> str:
        """Keep a copy of everything stored (repair does this first); where it is."""

    @abstractmethod
    def _cut(self, seq: int, drop_snapshots: Sequence[int], checkpoint: Checkpoint) -> None:
        """In one transaction: delete every entry after ``seq`` and the snapshots at
        ``drop_snapshots``, and store ``checkpoint``.  Repair only."""

    @abstractmethod
    def _close(self) -> None:
        """Release connections / files / the writer lock."""


def check_link(entry: LogEntry, prev_seq: int, prev_hash: bytes, where: str) -> None:
    """Raise :class:`BrokenChainError` unless ``entry`` follows entry ``prev_seq`` (whose hash
    is ``prev_hash``) and matches its own hash."""
    if entry.seq != prev_seq + 1:
        reason = (
            f"gap in the sequence: expected entry {prev_seq + 1} after entry {prev_seq}"
            if prev_seq
            else f"the log must start at entry 1, found entry {entry.seq}"
        )
        raise BrokenChainError(entry.seq, reason, where)
    computed = entry.computed_hash()
    if computed != entry.hash:
        what = ("cannot be computed (malformed kind)" if computed is None
                else f"computes to {computed.hex()}")
        raise BrokenChainError(
            entry.seq, f"its content does not match its hash: stored {entry.hash.hex()}, "
            f"its content {what} (changed or corrupted after it was written)", where)
    if entry.prev_hash != prev_hash:
        what = f"entry {prev_seq}" if prev_seq else "the genesis hash"
        raise BrokenChainError(
            entry.seq, f"prev_hash does not match {what}: it holds {entry.prev_hash.hex()}, "
            f"{what} is {prev_hash.hex()}", where)
