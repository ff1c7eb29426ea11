"""The engine: state as a function of a durable command log.

Every command (open books and accounts, a batch of transfers, a clock tick that expires
reservations) is encoded, appended to the :class:`~qingsuan.store.CommandLog` and made
durable *before* it is applied and acknowledged. Applying is deterministic and reads time
only from the command itself, so replaying the log (from a snapshot, or from the start)
rebuilds exactly the same state: the state hash proves it.

The engine knows the ledger only; the payment systems (HVPS, BEPS, IBPS, the card switch)
are built on top of it and log their own commands through the same door.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from qingsuan.clock import Clock
from qingsuan.ledger import (
    Account,
    AccountFlags,
    AccountResult,
    BatchResult,
    Ledger,
    NormalSide,
    Transfer,
    TransferBatch,
    decode_batch,
    encode_batch,
)
from qingsuan.store import CommandLog, LogEntry, Snapshot, open_log

KIND_ACCOUNTS: Final = "accounts"
KIND_TRANSFERS: Final = "transfers"
KIND_TICK: Final = "tick"

_TICK: Final = struct.Struct("<q")
_SNAPSHOT_MAGIC: Final = b"QSNAP1\n"


class ReplayError(RuntimeError):
    """A logged command that cannot be applied: the log is not this engine's."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an acknowledged command returns: where it is in the log, and its results."""

    seq: int
    timestamp_us: int
    results: BatchResult


class Engine:
    """A ledger driven by a command log and an injected clock."""

    def __init__(self, log: CommandLog, clock: Clock, *, snapshot_every: int = 0) -> None:
        self.log = log
        self.clock = clock
        #: Take a snapshot every N log entries (0 = only when asked).
        self.snapshot_every = snapshot_every
        self.ledger = Ledger()
        self.applied_seq = 0
        self._recover()

    @classmethod
    def open(cls, url: str, clock: Clock, *, snapshot_every: int = 0) -> Engine:
        """Open (or create) the log at ``url`` and rebuild the state it records."""
        return cls(open_log(url), clock, snapshot_every=snapshot_every)

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        snap = self.log.latest_snapshot()
        if snap is not None:
            self.ledger = _load_state(snap.state)
            self.applied_seq = snap.seq
        for entry in self.log.entries(self.applied_seq):
            self._apply_entry(entry)

    def _apply_entry(self, entry: LogEntry) -> BatchResult | list[AccountResult] | list[int]:
        if entry.seq != self.applied_seq + 1:
            raise ReplayError(f"entry {entry.seq} follows applied entry {self.applied_seq}")
        try:
            result = self._apply(entry.kind, entry.payload)
        except (ValueError, KeyError) as exc:
            raise ReplayError(f"log entry {entry.seq} ({entry.kind}) cannot be applied: {exc}"
                              ) from exc
        self.applied_seq = entry.seq
        return result

    def _apply(self, kind: str, payload: bytes) -> BatchResult | list[AccountResult] | list[int]:
        if kind == KIND_TRANSFERS:
            batch, ts = decode_batch(payload)
            return self.ledger.create_transfers(batch, ts)
        if kind == KIND_ACCOUNTS:
            books, accounts = _decode_accounts(payload)
            for book_id, name in books:
                self.ledger.create_book(book_id, name)
            return self.ledger.create_accounts(accounts)
        if kind == KIND_TICK:
            (ts,) = _TICK.unpack(payload)
            return self.ledger.advance_time(ts)
        raise ValueError(f"unknown command kind {kind!r}")

    # ------------------------------------------------------------------ commands

    def _submit(self, commands: Sequence[tuple[str, bytes]]
                ) -> list[BatchResult | list[AccountResult] | list[int]]:
        entries = self.log.append(commands)  # durable before anything is acknowledged
        results = [self._apply_entry(e) for e in entries]
        if self.snapshot_every and self.applied_seq % self.snapshot_every < len(entries):
            self.snapshot()
        return results

    def open_accounts(self, books: Iterable[tuple[int, str]], accounts: Iterable[Account]
                      ) -> list[AccountResult]:
        """Open books (institutions) and accounts, as one logged command."""
        (result,) = self._submit([(KIND_ACCOUNTS, _encode_accounts(list(books),
                                                                   list(accounts)))])
        assert isinstance(result, list)
        return result  # type: ignore[return-value]

    def submit_transfers(self, batch: TransferBatch | Sequence[Transfer]) -> Receipt:
        """Log one batch durably, apply it at the clock's time, return its results."""
        return self.submit_many([batch])[0]

    def submit_many(self, batches: Sequence[TransferBatch | Sequence[Transfer]]
                    ) -> list[Receipt]:
        """Group commit: several batches made durable with one fsync, then applied in order."""
        ts = self.clock.now_us()
        commands = []
        for batch in batches:
            if not isinstance(batch, TransferBatch):
                batch = TransferBatch.from_transfers(batch)
            commands.append((KIND_TRANSFERS, encode_batch(batch, ts)))
        first = self.applied_seq + 1
        results = self._submit(commands)
        receipts = []
        for i, res in enumerate(results):
            assert isinstance(res, BatchResult)
            receipts.append(Receipt(first + i, ts, res))
        return receipts

    def tick(self) -> list[int]:
        """Log the clock's time so reservations past their timeout are voided now.
        Returns the ids voided."""
        (result,) = self._submit([(KIND_TICK, _TICK.pack(self.clock.now_us()))])
        assert isinstance(result, list)
        return result  # type: ignore[return-value]

    # ------------------------------------------------------------------ state

    def snapshot(self) -> Snapshot:
        """Store the current state in the log's snapshot table (fast restart)."""
        snap = Snapshot.of(self.applied_seq, _dump_state(self.ledger))
        self.log.save_snapshot(snap)
        return snap

    def state_hash(self) -> bytes:
        return self.ledger.state_hash()


def replay(url: str) -> Ledger:
    """Rebuild the state from the log alone, from the first entry, ignoring snapshots."""
    from qingsuan.clock import VirtualClock

    log = open_log(url)
    try:
        engine = Engine.__new__(Engine)
        engine.log, engine.clock, engine.snapshot_every = log, VirtualClock(), 0
        engine.ledger, engine.applied_seq = Ledger(), 0
        for entry in log.entries(0):
            engine._apply_entry(entry)
        return engine.ledger
    finally:
        log.close()


def _encode_accounts(books: list[tuple[int, str]], accounts: list[Account]) -> bytes:
    doc = {
        "books": [[b, n] for b, n in books],
        "accounts": [[a.id, a.book, int(a.normal), int(a.flags), a.overdraft_limit_fen, a.code]
                     for a in accounts],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _decode_accounts(payload: bytes) -> tuple[list[tuple[int, str]], list[Account]]:
    doc = json.loads(payload)
    books = [(int(b), str(n)) for b, n in doc["books"]]
    accounts = [Account(int(i), int(b), NormalSide(int(n)), AccountFlags(int(f)), int(lim),
                        int(code)) for i, b, n, f, lim, code in doc["accounts"]]
    return books, accounts


def _dump_state(ledger: Ledger) -> bytes:
    return _SNAPSHOT_MAGIC + ledger.to_bytes()


def _load_state(state: bytes) -> Ledger:
    if not state.startswith(_SNAPSHOT_MAGIC):
        raise ReplayError("snapshot is not in this engine's format")
    return Ledger.from_bytes(state[len(_SNAPSHOT_MAGIC):])
