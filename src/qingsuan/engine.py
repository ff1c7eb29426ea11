"""The engine: state as a function of a durable command log.

Every command (open books and accounts, a batch of transfers, a clock tick, a payment
system's command such as an HVPS payment or cancel) is encoded, appended to the
:class:`~qingsuan.store.CommandLog` and made durable *before* it is applied and
acknowledged. Applying is deterministic and reads time only from the command itself, so
replaying the log (from a snapshot, or from the start) rebuilds exactly the same state:
the state hash proves it.

Payment systems plug in as :class:`System` objects: the engine routes the commands whose
kind starts with the system's prefix (``hvps.submit``) to it, and a system posts into the
ledger directly while applying them. Those postings are not logged on their own: they are
a deterministic consequence of the logged command, and replay repeats them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import numpy as np
import numpy.typing as npt

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
    TransferFlags,
    TransferResult,
    decode_batch,
    encode_batch,
)
from qingsuan.ledger.batch import MAX_BATCH
from qingsuan.ledger.registry import AccountRegistry
from qingsuan.ledger.types import DONE_MAX
from qingsuan.params import Params
from qingsuan.store import CommandLog, LogEntry, Proof, Snapshot, open_log

KIND_ACCOUNTS: Final = "accounts"
KIND_TRANSFERS: Final = "transfers"
KIND_TICK: Final = "tick"
KIND_PARAM: Final = "param"
#: several commands of one system kind in one log entry (see Engine.command_group)
KIND_GROUP: Final = "group"
_GROUP_ITEM: Final = struct.Struct("<I")
#: commands one group holds at most
MAX_GROUP: Final = 65_536
#: commands applied ahead of their append at most (deferred_commits)
MAX_DEFERRED: Final = 65_536
#: several commands, each stamped with its own time, in one log entry: a run's events
#: between two wake-ups (Engine.command_in_window), applied exactly as entries of their own
#: would be (the systems' after-steps after each). One hash and one row for the lot.
KIND_WINDOW: Final = "window"
#: a window item's head: the length of its kind, then of its stamped payload
_WINDOW_ITEM: Final = struct.Struct("<HI")
#: commands one window holds at most
MAX_WINDOW: Final = 4096
#: system command kinds whose system is kept found (a world has a few dozen kinds)
MAX_TARGETS_KEPT: Final = 1024
#: the engine's own command kinds (a system's prefix may be none of them)
_BUILT_IN_KINDS: Final = frozenset((KIND_ACCOUNTS, KIND_TRANSFERS, KIND_TICK, KIND_PARAM,
                                    KIND_GROUP, KIND_WINDOW))

_TS: Final = struct.Struct("<q")
_LINKED: Final = int(TransferFlags.LINKED)
#: Transfer ids from here up are the engine's own: postings a system makes while applying a
#: logged command (clients use ids below it).
DERIVED_ID_BASE: Final = 1 << 62
_SNAPSHOT_MAGIC: Final = b"QSNAP2\n"


class ReplayError(RuntimeError):
    """A logged command that cannot be applied: the log is not this engine's."""


class EngineFailed(RuntimeError):
    """The engine met a command it could not apply and refuses further commands
    (fail-stop): its state may be half-changed; restart it from the log."""


class System(Protocol):
    """A payment system hosted by the engine (HVPS, BEPS, IBPS, the card switch)."""

    #: Commands whose kind starts with ``prefix + "."`` are routed to this system.
    prefix: str

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        """Apply one logged command. Deterministic; may post into ``engine.ledger``."""

    def dump_state(self) -> bytes:
        """The system's whole state, for snapshots and the state hash."""

    def load_state(self, state: bytes) -> None:
        """Restore from :meth:`dump_state`."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an acknowledged transfer batch returns: its place in the log and its results."""

    seq: int
    timestamp_us: int
    results: BatchResult


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """An account to open, by book name and account name (ids are assigned in order)."""

    book: str
    name: str
    normal: NormalSide = NormalSide.CREDIT
    flags: AccountFlags = AccountFlags.NONE
    overdraft_limit_fen: int = 0


class Engine:
    """A ledger and its payment systems, driven by a command log and an injected clock."""

    def __init__(self, log: CommandLog, clock: Clock, *, snapshot_every: int = 0,
                 systems: Iterable[System] = ()) -> None:
        self.log = log
        self.clock = clock
        #: Take a snapshot every N log entries (0 = only when asked).
        self.snapshot_every = snapshot_every
        self.ledger = Ledger()
        self.registry = AccountRegistry()
        #: The rule parameters in force; changed only by logged ``param`` commands.
        self.params = Params()
        self.systems: dict[str, System] = {}
        #: command kind -> its system, for the kinds applied so far (Engine._apply)
        self._targets: dict[str, System] = {}
        #: what systems do after every applied log entry (the banks follow notices)
        self._after: list[Callable[[], None]] = []
        for system in systems:
            self.register(system)
        self.applied_seq = 0
        self._failed: str | None = None
        #: commands applied but not yet appended (deferred_commits), and the group size
        self._deferred: list[tuple[str, bytes]] | None = None
        self._defer_max = 0
        #: commands those entries hold (a window entry holds several)
        self._deferred_commands = 0
        #: commands applied under deferred_commits since the last entry, to be logged as
        #: one window entry (command_in_window)
        self._window: list[tuple[str, bytes]] = []
        #: commands the applied window entries hold beyond one each (commands_applied)
        self._window_extra = 0
        self._derived_seq = 0
        #: Time of the command being applied (systems post at this time).
        self.now_us = 0
        self._recover()

    @classmethod
    def open(cls, url: str, clock: Clock, *, snapshot_every: int = 0,
             systems: Iterable[System] = (), create: bool = False,
             readonly: bool = False) -> Engine:
        """Open the log at ``url`` and rebuild the state it records.

        A writer (the default) holds the store's writer lock until :meth:`close` and makes a
        new store where there is none (a file that does not exist yet); an empty file or
        another program's database only with ``create``. ``readonly``: no lock, nothing
        written, no file created (commands are refused). A damaged, shortened or foreign
        store raises (:mod:`qingsuan.store`'s errors): the engine never starts on it.
        """
        log = open_log(url, readonly=readonly, create=create)
        try:
            return cls(log, clock, snapshot_every=snapshot_every, systems=systems)
        except BaseException:
            log.close()
            raise

    def last_entry(self) -> Proof:
        """The seq and chain hash of the last durable log entry: after a command returns,
        the entry that made it durable (or a later one, whose hash commits to it too).
        Edges put it in their answers (``Proof.as_dict()``) so that a client can later
        prove the command was logged (``qingsuan log verify URL --expect SEQ:HASH``)."""
        return self.log.proof()

    def register(self, system: System) -> None:
        if system.prefix in self.systems or system.prefix in _BUILT_IN_KINDS:
            raise ValueError(f"a system with prefix {system.prefix!r} is already registered")
        self.systems[system.prefix] = system
        self._targets.clear()
        attach = getattr(system, "attach", None)
        if attach is not None:
            attach(self)
        after = getattr(system, "after_apply", None)
        if after is not None:
            self._after.append(after)

    def close(self) -> None:
        self.flush()
        self.log.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """The latest snapshot (which the store has checked against its checkpoint), then
        the entries after it, up to the log's end as verified on open."""
        snap = self.log.latest_snapshot()
        if snap is not None:
            self._load_state(snap.state)
            self.applied_seq = snap.seq
        last = self.log.last_seq
        for entry in self.log.entries(self.applied_seq):
            if entry.seq > last:
                break
            self._apply_entry(entry)

    def _apply_entry(self, entry: LogEntry) -> Any:
        if entry.seq != self.applied_seq + 1:
            raise ReplayError(f"entry {entry.seq} follows applied entry {self.applied_seq}")
        try:
            result = self._apply(entry.kind, entry.payload)
            for after in self._after:
                after()
        except (ValueError, KeyError) as exc:
            raise ReplayError(f"log entry {entry.seq} ({entry.kind}) cannot be applied: {exc}"
                              ) from exc
        self.applied_seq = entry.seq
        return result

    def _apply(self, kind: str, payload: bytes) -> Any:
        target = self._targets.get(kind)
        if target is None:  # a built-in kind, or a system's not applied before
            if kind in _BUILT_IN_KINDS:
                return self._apply_built_in(kind, payload)
            target = self.systems.get(kind.split(".", 1)[0])
            if target is None:
                raise ValueError(f"unknown command kind {kind!r}")
            if len(self._targets) < MAX_TARGETS_KEPT:
                self._targets[kind] = target
        (ts,) = _TS.unpack_from(payload)
        self.now_us = ts
        self.ledger.advance_time(ts)
        return target.apply(kind, ts, payload[_TS.size:])

    def _apply_built_in(self, kind: str, payload: bytes) -> Any:
        if kind == KIND_TRANSFERS:
            batch, ts = decode_batch(payload)
            self.now_us = ts
            return self.ledger.create_transfers(batch, ts)
        if kind == KIND_ACCOUNTS:
            books, accounts, names = _decode_accounts(payload)
            for book_id, name in books:
                self.ledger.create_book(book_id, name)
                self.registry.add_book(book_id, name)
            results = self.ledger.create_accounts(accounts)
            for account, name, code in zip(accounts, names, results, strict=True):
                if code is AccountResult.OK:
                    self.registry.add_account(account.id, account.book, name)
            return results
        if kind == KIND_WINDOW:
            return self._apply_window(payload)
        (ts,) = _TS.unpack_from(payload)
        body = payload[_TS.size:]
        self.now_us = ts
        if kind == KIND_PARAM:
            doc = json.loads(body)
            self.ledger.advance_time(ts)
            for name, value in doc.items():
                self.params.set(name, value)
            return None
        if kind == KIND_TICK:
            voided = self.ledger.advance_time(ts)
            for hosted in self.systems.values():
                tick = getattr(hosted, "on_tick", None)
                if tick is not None:
                    tick(ts)
            return voided
        assert kind == KIND_GROUP, kind
        return self._apply_group(ts, body)

    def _apply_group(self, ts: int, payload: bytes) -> list[Any]:
        (klen,) = struct.unpack_from("<H", payload)
        kind = payload[2:2 + klen].decode()
        target = self.systems.get(kind.split(".", 1)[0])
        if target is None:
            raise ValueError(f"unknown command kind {kind!r} in a group")
        self.ledger.advance_time(ts)
        pos, end = 2 + klen, len(payload)
        out = []
        apply = target.apply
        while pos < end:
            (n,) = _GROUP_ITEM.unpack_from(payload, pos)
            pos += 4
            out.append(apply(kind, ts, payload[pos:pos + n]))
            pos += n
        if pos != end:
            raise ValueError("a group's last command is cut short")
        return out

    def _apply_window(self, payload: bytes) -> list[Any]:
        """A window's commands in order, each at its own time, the systems' after-steps
        between them (the caller runs them after the last, as after any entry)."""
        out: list[Any] = []
        for kind, stamped in window_commands(payload):
            if out:
                for after in self._after:
                    after()
            out.append(self._apply(kind, stamped))
        self._window_extra += len(out) - 1
        return out

    # ------------------------------------------------- postings made while applying

    def post(self, transfers: Sequence[tuple[int, int, int] | Transfer],
             *, linked: bool = False) -> BatchResult:
        """Post transfers as part of applying the current logged command (not logged on
        their own: replay repeats them). Tuples are (debit id, credit id, amount); ids are
        assigned from the engine's own range. ``linked``: all or none."""
        n = len(transfers)
        if not any(isinstance(t, Transfer) for t in transfers):  # the common case: tuples
            base = DERIVED_ID_BASE + self._derived_seq
            self._derived_seq += n
            plain = cast("Sequence[tuple[int, int, int]]", transfers)
            if linked:
                last = n - 1
                rows = [(base + i, d, c, a, _LINKED if i <= last else 0)
                        for i, (d, c, a) in enumerate(plain, 1)]
            else:
                rows = [(base + i, d, c, a, 0) for i, (d, c, a) in enumerate(plain, 1)]
            return self.ledger.create_transfer_tuples(rows, self.now_us)
        out: list[Transfer] = []
        for i, t in enumerate(transfers):
            self._derived_seq += 1
            tid = DERIVED_ID_BASE + self._derived_seq
            flags = TransferFlags.LINKED if linked and i < n - 1 else TransferFlags.NONE
            if isinstance(t, Transfer):
                out.append(Transfer(tid, t.debit_account_id, t.credit_account_id, t.amount_fen,
                                    t.flags | flags, t.pending_id, t.timeout_us, t.code))
            else:
                debit, credit, amount = t
                out.append(Transfer(tid, debit, credit, amount, flags))
        return self.ledger.create_transfers(out, self.now_us)

    def post_one(self, debit_id: int, credit_id: int, amount_fen: int, flags: int = 0,
                 pending_id: int = 0) -> TransferResult:
        """One transfer, as :meth:`post` (derived id), without building objects: a
        reservation (``flags`` PENDING), or its post or void (``pending_id``)."""
        self._derived_seq += 1
        return self.ledger.create_transfer_row(DERIVED_ID_BASE + self._derived_seq, debit_id,
                                               credit_id, amount_fen, flags, pending_id,
                                               self.now_us)

    def post_pair(self, debit_id: int, credit_id: int, amount_fen: int,
                  debit_id2: int, credit_id2: int, amount_fen2: int) -> bool:
        """:meth:`post` of two transfers linked (all or none), as ints: whether both are
        done (a card's issuer and acquirer legs, without the lists and the batch result;
        the same ids, rules and rows)."""
        seq = self._derived_seq
        self._derived_seq = seq + 2
        first, second = self.ledger.create_transfer_pair(
            DERIVED_ID_BASE + seq + 1, debit_id, credit_id, amount_fen,
            DERIVED_ID_BASE + seq + 2, debit_id2, credit_id2, amount_fen2, self.now_us)
        return first <= DONE_MAX and second <= DONE_MAX

    def post_rows(self, rows: Sequence[tuple[int, int, int, int, int]]) -> BatchResult:
        """Several transfers as (debit id, credit id, amount, flags, pending id) rows, as
        :meth:`post` (derived ids): a reservation's post and the credit it pays, at once."""
        base = DERIVED_ID_BASE + self._derived_seq
        self._derived_seq += len(rows)
        return self.ledger.create_transfer_rows(
            [(base + i + 1, *row) for i, row in enumerate(rows)], self.now_us)

    @property
    def failed(self) -> str | None:
        """Why the engine stopped taking commands (fail-stop: a command failed while its
        group was being applied or made durable), or None while it runs."""
        return self._failed

    def next_derived_id(self) -> int:
        """The id :meth:`post` gives its next transfer (to void a reservation later)."""
        return DERIVED_ID_BASE + self._derived_seq + 1

    def post_columns(self, debit_ids: npt.NDArray[np.int64], credit_ids: npt.NDArray[np.int64],
                     amounts: npt.NDArray[np.int64], *, must_succeed: bool = True
                     ) -> BatchResult:
        """Like :meth:`post` for many plain transfers at once (numpy columns, no objects):
        the vectorised ledger path. Every transfer must succeed (asserted) unless
        ``must_succeed`` is false: then the codes say which did (a payer short of funds)."""
        n = len(amounts)
        codes = []
        for start in range(0, n, MAX_BATCH):
            stop = min(n, start + MAX_BATCH)
            first = DERIVED_ID_BASE + self._derived_seq + 1
            self._derived_seq += stop - start
            result = self.ledger.create_transfers(TransferBatch.of(
                np.arange(first, first + stop - start, dtype=np.int64), debit_ids[start:stop],
                credit_ids[start:stop], amounts[start:stop]), self.now_us)
            assert result.all_done or not must_succeed, result.failures()[:5]
            codes.append(result.codes)
        return BatchResult(np.concatenate(codes) if codes else np.zeros(0, np.uint8))

    def open_derived(self, specs: Iterable[AccountSpec]) -> dict[str, int]:
        """Open accounts as part of applying the current logged command (a system opening
        its own accounts, e.g. when a participant joins). Ids continue the registry's."""
        out: dict[str, int] = {}
        for spec in specs:
            book_id = self.registry.books.get(spec.book)
            if book_id is None:
                book_id = max(self.registry.books.values(), default=0) + 1
                self.ledger.create_book(book_id, spec.book)
                self.registry.add_book(book_id, spec.book)
            full = f"{spec.book}:{spec.name}"
            account_id = self.registry.next_account_id()
            (code,) = self.ledger.create_accounts([Account(
                account_id, book_id, spec.normal, spec.flags, spec.overdraft_limit_fen)])
            if code is not AccountResult.OK:
                raise ValueError(f"cannot open {full}: {code.name}")
            self.registry.add_account(account_id, book_id, full)
            out[full] = account_id
        return out

    def open_range(self, book: str, prefix: str, count: int,
                   flags: AccountFlags = AccountFlags.NONE,
                   normal: NormalSide = NormalSide.CREDIT) -> int:
        """Open ``count`` accounts ``book:PREFIX0`` .. ``book:PREFIX{count-1}`` as part of
        applying the current logged command, named by one registry range (no name kept per
        account: a world of millions of generated customers). Returns the first id."""
        book_id = self.registry.books[book]
        first = self.registry.next_account_id()
        self.registry.add_range(f"{book}:{prefix}", count, first)
        # one span of the ledger's accounts (no id -> row entry each: Ledger._spans)
        codes = self.ledger.create_account_range(first, count, book_id, normal, flags)
        if any(code is not AccountResult.OK for code in codes):
            raise ValueError(f"cannot open {book}:{prefix}N")
        return first

    # ------------------------------------------------------------------ commands

    def _check_running(self) -> None:
        if self._failed is not None:
            raise EngineFailed(f"the engine stopped after a command it could not apply "
                               f"({self._failed}); restart it from the log")

    def _submit(self, commands: Sequence[tuple[str, bytes]]) -> list[Any]:
        self._check_running()
        if self._deferred is not None:
            if self._window:  # the commands before this one come first in the log
                self._close_window()
            return self._submit_deferred(commands)
        entries = self.log.append(commands)  # durable before anything is acknowledged
        try:
            results = [self._apply_entry(e) for e in entries]
        except BaseException as exc:
            # A logged command that cannot be applied is a bug (commands are checked before
            # they are logged); the state may be half-changed, so stop rather than go on.
            self._failed = f"entry {self.applied_seq + 1}: {exc}"
            raise
        if self.snapshot_every and self.applied_seq % self.snapshot_every < len(entries):
            self.snapshot()
        return results

    # ------------------------------------------------- deferred group commit

    @contextlib.contextmanager
    def deferred_commits(self, max_entries: int = 4096) -> Iterator[None]:
        """Apply commands at once but make them durable in groups of up to
        ``max_entries`` (one append, one fsync), and at the end. For a driver that
        acknowledges nothing before the group is durable (a scenario run reports at the
        end): a crash loses only commands nobody was told about, and the log stays the
        exact record of the state (a restart replays the durable prefix)."""
        if not 0 < max_entries <= MAX_DEFERRED:
            raise ValueError(f"max_entries must be 1 to {MAX_DEFERRED}, got {max_entries}")
        assert self._deferred is None, "deferred commits do not nest"
        self._deferred, self._defer_max, self._deferred_commands = [], max_entries, 0
        try:
            yield
        finally:
            try:
                if self._failed is None:
                    self.flush()
            finally:
                self._deferred, self._window = None, []

    def _submit_deferred(self, commands: Sequence[tuple[str, bytes]]) -> list[Any]:
        assert self._deferred is not None
        results = []
        for kind, payload in commands:
            results.append(self._apply_ahead(kind, payload))
            self.applied_seq += 1
            self._deferred.append((kind, payload))
            self._deferred_commands += 1
        if self._deferred_commands >= self._defer_max:
            self.flush()
        return results

    def _apply_ahead(self, kind: str, payload: bytes) -> Any:
        """Apply a command ahead of its append (deferred commits), then the systems'
        after-steps; one that cannot be applied stops the engine."""
        try:
            result = self._apply(kind, payload)
            for after in self._after:
                after()
        except BaseException as exc:
            self._failed = f"entry {self.applied_seq + 1}: {exc}"
            raise
        return result

    def command_in_window(self, kind: str, body: bytes = b"") -> Any:
        """A system command stamped with the clock's time, applied at once. Under
        :meth:`deferred_commits` it is logged with the commands applied next to it (until
        another kind of command, a flush or :data:`MAX_WINDOW`) as one window entry: one
        hash and one row for a run of scenario events, each replayed at its own time with
        the systems' after-steps between them, exactly as entries of their own. Otherwise
        it is :meth:`command`."""
        if self._deferred is None:
            return self.command(kind, body)
        self._check_running()
        payload = _TS.pack(self.clock.now_us()) + body
        result = self._apply_ahead(kind, payload)
        window = self._window
        window.append((kind, payload))
        if len(window) >= MAX_WINDOW:
            self._close_window()
        if self._deferred_commands + len(self._window) >= self._defer_max:
            self.flush()
        return result

    def _close_window(self) -> None:
        """The open window's commands as one deferred entry (a single command as itself)."""
        assert self._deferred is not None
        window, self._window = self._window, []
        if len(window) == 1:
            self._deferred.append(window[0])
        else:
            parts = [window[0][1][:_TS.size]]  # the entry's time: its first command's
            for kind, payload in window:
                encoded = kind.encode()
                parts += [_WINDOW_ITEM.pack(len(encoded), len(payload)), encoded, payload]
            self._deferred.append((KIND_WINDOW, b"".join(parts)))
            self._window_extra += len(window) - 1
        self._deferred_commands += len(window)
        self.applied_seq += 1

    @property
    def commands_applied(self) -> int:
        """Commands applied: log entries, a window entry counting its commands (and the
        commands of the window still open)."""
        return self.applied_seq + self._window_extra + len(self._window)

    def flush(self) -> None:
        """Make the commands applied under :meth:`deferred_commits` durable now (not
        after a failure: what the log holds is then the truth, to restart from)."""
        if self._failed is not None:
            return
        if self._window:
            self._close_window()
        if not self._deferred:
            return
        first = self.applied_seq - len(self._deferred) + 1
        try:
            entries = self.log.append(self._deferred)
        except BaseException as exc:
            # whether the group is durable is not known: the state is ahead of the log
            self._failed = f"the append of entries {first} to {self.applied_seq}: {exc}"
            raise
        assert entries[0].seq == first and entries[-1].seq == self.applied_seq, \
            (entries[0].seq, first, self.applied_seq)
        self._deferred.clear()
        self._deferred_commands = 0
        if self.snapshot_every and self.applied_seq % self.snapshot_every < len(entries):
            self.snapshot()

    def command(self, kind: str, body: bytes = b"") -> Any:
        """Log a system command stamped with the clock's time, then apply it."""
        return self.commands([(kind, body)])[0]

    def commands(self, commands: Sequence[tuple[str, bytes]]) -> list[Any]:
        """Several system commands in one group commit, stamped with the clock's time."""
        stamp = _TS.pack(self.clock.now_us())
        return self._submit([(kind, stamp + body) for kind, body in commands])

    def command_group(self, kind: str, bodies: Sequence[bytes]) -> list[Any]:
        """Many commands of one system kind (card authorisations, say) as ONE log entry:
        one hash and one row for the lot, applied in order at one timestamp; their results
        in order. Same durability as :meth:`commands` (all or nothing)."""
        if not 0 < len(bodies) <= MAX_GROUP:
            raise ValueError(f"a group holds 1 to {MAX_GROUP} commands, got {len(bodies)}")
        if kind.split(".", 1)[0] not in self.systems:
            raise ValueError(f"unknown command kind {kind!r}")
        encoded = kind.encode()
        parts = [_TS.pack(self.clock.now_us()), struct.pack("<H", len(encoded)), encoded]
        for body in bodies:
            parts += [_GROUP_ITEM.pack(len(body)), body]
        result: list[Any] = self._submit([(KIND_GROUP, b"".join(parts))])[0]
        return result

    def set_params(self, values: dict[str, object]) -> None:
        """Change rule parameters from now on (logged, so replay sees the same values).
        Every value is checked first: a bad one raises ParamError and nothing is logged."""
        probe = Params(self.params.written())
        for name, value in values.items():
            probe.set(name, value)
        self.command(KIND_PARAM, json.dumps({k: str(v) if not isinstance(v, bool) else v
                                             for k, v in values.items()}).encode())

    def open_accounts(self, books: Iterable[tuple[int, str]], accounts: Iterable[Account]
                      ) -> list[AccountResult]:
        """Open books and accounts with explicit ids (names default to their ids)."""
        acc = list(accounts)
        payload = _encode_accounts(list(books), acc, [f"#{a.id}" for a in acc])
        result: list[AccountResult] = self._submit([(KIND_ACCOUNTS, payload)])[0]
        return result

    def open_named(self, specs: Iterable[AccountSpec]) -> dict[str, int]:
        """Open accounts by name (``book:name``), creating their books as needed; ids are
        assigned in order, so the same world opened in the same order gets the same ids.
        Returns the new ids by full name."""
        books: list[tuple[int, str]] = []
        accounts: list[Account] = []
        names: list[str] = []
        book_ids = dict(self.registry.books)
        next_book = max(book_ids.values(), default=0) + 1
        next_id = self.registry.next_account_id()
        for spec in specs:
            book_id = book_ids.get(spec.book)
            if book_id is None:
                book_id = book_ids[spec.book] = next_book
                books.append((next_book, spec.book))
                next_book += 1
            full = f"{spec.book}:{spec.name}"
            if self.registry.has(full) or full in names:
                raise ValueError(f"account {full} is already open")
            accounts.append(Account(next_id, book_id, spec.normal, spec.flags,
                                    spec.overdraft_limit_fen))
            names.append(full)
            next_id += 1
        self._submit([(KIND_ACCOUNTS, _encode_accounts(books, accounts, names))])
        return {name: a.id for name, a in zip(names, accounts, strict=True)}

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
        results = self._submit(commands)
        first = self.applied_seq - len(results) + 1  # (after an open window's entry, if any)
        receipts = []
        for i, res in enumerate(results):
            assert isinstance(res, BatchResult)
            receipts.append(Receipt(first + i, ts, res))
        return receipts

    def tick(self) -> list[int]:
        """Log the clock's time: reservations past their timeout are voided, and systems
        with an ``on_tick`` act on the time. Returns the ledger's voided ids."""
        result: list[int] = self._submit([(KIND_TICK, _TS.pack(self.clock.now_us()))])[0]
        return result

    # ------------------------------------------------------------------ state

    def snapshot(self) -> Snapshot:
        """Store the current state in the log's snapshot table (fast restart)."""
        if self._deferred or self._window:
            self.flush()  # the state it describes must be in the log first
        snap = Snapshot.of(self.applied_seq, self._dump_state())
        self.log.save_snapshot(snap)
        return snap

    def _dump_state(self) -> bytes:
        parts = {"ledger": self.ledger.to_bytes(),
                 "registry": self.registry.to_bytes(),
                 "params": json.dumps(self.params.written(), sort_keys=True).encode(),
                 "engine": json.dumps(self._engine_state()).encode()}
        for prefix, system in sorted(self.systems.items()):
            parts[f"system:{prefix}"] = system.dump_state()
        header = json.dumps({k: len(v) for k, v in parts.items()}).encode()
        return _SNAPSHOT_MAGIC + _TS.pack(len(header)) + header + b"".join(parts.values())

    def _engine_state(self) -> dict[str, int]:
        state = {"derived_seq": self._derived_seq}
        if self._window_extra:  # only a log with windows has any (older snapshots: none)
            state["window_extra"] = self._window_extra
        return state

    def _load_state(self, state: bytes) -> None:
        if not state.startswith(_SNAPSHOT_MAGIC):
            raise ReplayError("snapshot is not in this engine's format")
        pos = len(_SNAPSHOT_MAGIC)
        (hlen,) = _TS.unpack_from(state, pos)
        pos += _TS.size
        sizes: dict[str, int] = json.loads(state[pos:pos + hlen])
        pos += hlen
        parts = {}
        for name, size in sizes.items():
            parts[name] = state[pos:pos + size]
            pos += size
        self.ledger = Ledger.from_bytes(parts["ledger"])
        self.registry = AccountRegistry.from_bytes(parts["registry"])
        self.params = Params(json.loads(parts["params"]))
        engine_state = json.loads(parts["engine"])
        self._derived_seq = int(engine_state["derived_seq"])
        self._window_extra = int(engine_state.get("window_extra", 0))
        for prefix, system in self.systems.items():
            blob = parts.get(f"system:{prefix}")
            if blob is None:
                raise ReplayError(f"snapshot has no state for system {prefix!r}")
            system.load_state(blob)

    def state_hash(self) -> bytes:
        """SHA-256 over the ledger, the names and every system's state."""
        h = hashlib.sha256(self.ledger.state_hash())
        h.update(self.registry.to_bytes())
        h.update(json.dumps(self.params.written(), sort_keys=True).encode())
        h.update(self._derived_seq.to_bytes(8, "little"))
        for _, system in sorted(self.systems.items()):
            h.update(system.dump_state())
        return h.digest()


def window_commands(payload: bytes) -> list[tuple[str, bytes]]:
    """The commands of a ``window`` entry's payload, in order: (kind, its time + body).
    ValueError for a payload cut short or holding a kind a window does not hold."""
    pos, end = _TS.size, len(payload)
    out: list[tuple[str, bytes]] = []
    while pos + _WINDOW_ITEM.size <= end:
        klen, plen = _WINDOW_ITEM.unpack_from(payload, pos)
        pos += _WINDOW_ITEM.size
        kind = payload[pos:pos + klen].decode()
        pos += klen
        if kind in (KIND_WINDOW, KIND_GROUP, KIND_ACCOUNTS, KIND_TRANSFERS):
            raise ValueError(f"a window holds no {kind!r} command")
        out.append((kind, payload[pos:pos + plen]))
        pos += plen
    if pos != end or not out or len(out[-1][1]) < _TS.size:
        raise ValueError("a window's last command is cut short")
    return out


def replay(url: str | CommandLog, systems: Iterable[System] = (), *,
           until_seq: int | None = None) -> Engine:
    """Rebuild the state from the log alone, from the first entry, ignoring snapshots, up to
    the log's last entry (or ``until_seq``). ``url``: opened read-only (no lock, nothing
    written) and closed again; or an open log, left open. Returns an engine holding the
    replayed state (its log closed when it was opened here)."""
    from qingsuan.clock import VirtualClock

    log = open_log(url, readonly=True) if isinstance(url, str) else url
    last = log.last_seq if until_seq is None else until_seq
    engine = Engine.__new__(Engine)
    engine.log, engine.clock, engine.snapshot_every = log, VirtualClock(), 0
    engine.ledger, engine.registry, engine.applied_seq = Ledger(), AccountRegistry(), 0
    engine.params = Params()
    engine._derived_seq, engine.now_us, engine._failed = 0, 0, None
    engine._deferred, engine._defer_max, engine._deferred_commands = None, 0, 0
    engine._window, engine._window_extra = [], 0
    engine.systems, engine._targets = {}, {}
    engine._after = []
    try:
        if not 0 <= last <= log.last_seq:
            raise ValueError(f"cannot replay to entry {last}: the log ends at {log.last_seq}")
        for system in systems:
            engine.register(system)
        for entry in log.entries(0):
            if entry.seq > last:
                break
            engine._apply_entry(entry)
    finally:
        if isinstance(url, str):
            log.close()
    return engine


def _encode_accounts(books: list[tuple[int, str]], accounts: list[Account],
                     names: list[str]) -> bytes:
    doc = {
        "books": [[b, n] for b, n in books],
        "accounts": [[a.id, a.book, int(a.normal), int(a.flags), a.overdraft_limit_fen, a.code,
                      name] for a, name in zip(accounts, names, strict=True)],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _decode_accounts(payload: bytes
                     ) -> tuple[list[tuple[int, str]], list[Account], list[str]]:
    doc = json.loads(payload)
    books = [(int(b), str(n)) for b, n in doc["books"]]
    accounts = []
    names = []
    for i, b, n, f, lim, code, name in doc["accounts"]:
        accounts.append(Account(int(i), int(b), NormalSide(int(n)), AccountFlags(int(f)),
                                int(lim), int(code)))
        names.append(str(name))
    return books, accounts, names
