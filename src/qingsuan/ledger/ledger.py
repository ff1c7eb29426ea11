"""The double-entry ledger: books, accounts, and batches of immutable transfers.

Design (after TigerBeetle): accounts carry four running totals (debits/credits, pending/
posted); a transfer is validated and applied in batch order, exactly as if one at a time;
failed transfers change nothing and are not stored; a retry of a stored transfer id with the
same body answers ``EXISTS``, with another body a specific ``EXISTS_WITH_DIFFERENT_*`` code.

Two paths compute the same result:

* the **exact path** walks a batch item by item (linked chains, two-phase transfers,
  failures); it is the reference semantics;
* the **vector path** applies a batch of plain single-phase transfers with numpy in a few
  array operations. It first proves that applying every transfer in order would pass every
  check (validation, no account past its limit at any prefix of the batch, no overflow); if
  a transfer would fail it applies the clean prefix vectorised and hands the rest to the exact
  path. Tests compare the two on random batches.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import io
import struct
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, starmap
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.ledger.batch import I64, TransferBatch
from qingsuan.ledger.types import (
    DONE_MAX,
    KNOWN_TRANSFER_FLAGS,
    MAX_ID,
    MAX_TOTAL_FEN,
    PHASE_TWO,
    Account,
    AccountFlags,
    AccountResult,
    Balance,
    NormalSide,
    PendingState,
    Transfer,
    TransferFlags,
    TransferRecord,
    TransferResult,
)
from qingsuan.ledger.types import available_fen as _available_fen
from qingsuan.money import MAX_AMOUNT_FEN

_PENDING: Final = int(TransferFlags.PENDING)
_POST: Final = int(TransferFlags.POST_PENDING)
_VOID: Final = int(TransferFlags.VOID_PENDING)
_LINKED: Final = int(TransferFlags.LINKED)
_MNO: Final = int(AccountFlags.MUST_NOT_OVERDRAW)
_CLOSED: Final = int(AccountFlags.CLOSED)
_EXCLUSIVE: Final = _PENDING | _POST | _VOID
_PHASE_TWO: Final = _POST | _VOID
_UNKNOWN_FLAGS: Final = ~int(KNOWN_TRANSFER_FLAGS)
_CREDIT_NORMAL: Final = int(NormalSide.CREDIT)
#: the normal side of an account by its stored value (without an enum call per balance)
_SIDE_OF: Final = {int(side): side for side in NormalSide}
_DEBIT_NORMAL: Final = int(NormalSide.DEBIT)

R = TransferResult
#: members read on the hot paths, as module globals: in Python 3.11 reading a member off
#: its enum class (TransferResult.OK) costs about 1,000 instructions (EnumType defines
#: __getattr__, which sends every attribute read off the class down the slow generic path)
_OK: Final = TransferResult.OK
_EXISTS: Final = TransferResult.EXISTS
_LINKED_EVENT_FAILED: Final = TransferResult.LINKED_EVENT_FAILED
_IS_PENDING: Final = PendingState.PENDING
_IS_POSTED: Final = PendingState.POSTED
_IS_VOIDED: Final = PendingState.VOIDED
_IS_EXPIRED: Final = PendingState.EXPIRED
#: every result code by its value (without an enum call per code read)
_RESULT_OF: Final = tuple(TransferResult)
assert all(int(code) == value for value, code in enumerate(_RESULT_OF))

#: Upper bound on accounts and stored transfers; beyond it is a configuration error.
MAX_ACCOUNTS: Final = 50_000_000
MAX_TRANSFERS: Final = 2_000_000_000
#: Transfers run item by item after a failure before the vector path is tried again.
_EXACT_WINDOW: Final = 32
#: Transfer-object lists up to this size take the exact path without numpy columns.
_SMALL_BATCH: Final = 16
#: the column path compares the whole ledger's debits and credits once it has posted rows
#: for 1/BALANCE_CHECK_RATIO of the accounts (Ledger.create_transfers): a bounded cost a row
BALANCE_CHECK_RATIO: Final = 16
#: rows the exact path keeps out of the columns before writing them in bulk
_TAIL_ROWS: Final = 256
#: most accounts' balances kept in Python after the tail wrote them (Ledger._clean)
_CLEAN_ROWS: Final = 1 << 16
#: most accounts' static fields kept as Python ints (Ledger._acc_static): a run that meets
#: every customer of a world of millions would otherwise keep a tuple for each
_STATIC_KEPT: Final = 1 << 20
#: an account as the exact path reads it: (row, book, flags, normal, limit)
_Static = tuple[int, int, int, int, int]
#: a transfer as the exact path takes it: (id, debit id, credit id, amount, flags, pending
#: id, timeout, code, the debit account, the credit account)
_Prepared = tuple[int, int, int, int, int, int, int, int, _Static, _Static]
_UNKNOWN_ACCOUNT: Final = (-1, 0, 0, 0, 0)
#: an account's four totals, side by side in one block of the account columns (one read
#: gives all four: see _Columns)
_BALANCES: Final = ("dp", "dpo", "cp", "cpo")
#: Largest direct id -> row table for account lookups (8 bytes per slot).
_TABLE_MAX: Final = 1 << 24
#: Transfer rows per block of the history's digest (part of the state hash's definition:
#: a ledger of fewer rows hashes every row itself; see :meth:`Ledger.state_hash`).
HISTORY_BLOCK_ROWS: Final = 1 << 18
#: blocks being digested at once when the history is not kept (memory against waiting)
_INFLIGHT_BLOCKS: Final = 2
#: _find_row's answer for a transfer that was stored and then forgotten (history not kept)
_FORGOTTEN: Final = -2


class LedgerInvariantError(AssertionError):
    """A book does not sum to zero, or totals went negative: a bug, never an input error."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One result code per transfer of the batch, in batch order."""

    codes: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> TransferResult:
        return _RESULT_OF[int(self.codes[i])]

    @property
    def all_done(self) -> bool:
        if len(self.codes) <= 64:  # a card's two postings: skip numpy's per-call cost
            return max(self.codes.tolist(), default=0) <= DONE_MAX
        return bool(np.all(self.codes <= DONE_MAX))

    def failures(self) -> list[tuple[int, TransferResult]]:
        """(index, code) of every transfer that was not done."""
        idx = np.nonzero(self.codes > DONE_MAX)[0]
        return [(int(i), _RESULT_OF[int(self.codes[i])]) for i in idx]


class _Columns:
    """Growable parallel columns (amortised doubling, no per-item objects).

    The int64 columns named in ``block`` are kept side by side in one 2-D array
    (``block``; each column a strided view of it): a row of them is one read and one
    write (an account's four totals, read by the exact path one account at a time and
    written back many accounts at once). A column's values are the same either way.
    ``block_bytes`` is the block's memory as flat bytes: :func:`struct` reads a row of it
    at a fraction of what numpy's indexing costs (one account at a time); ``block_rows``
    is the block with each row one item (of ``block_names`` int64s' bytes): rows written
    by their numbers through it cost a third of the same write into the 2-D block."""

    __slots__ = ("block", "block_bytes", "block_names", "block_rows", "cols", "n", "names")

    def __init__(self, names: Sequence[str], dtypes: Sequence[Any], capacity: int = 1024,
                 block: Sequence[str] = ()):
        self.names = tuple(names)
        self.block_names = tuple(block)
        self.n = 0
        self.cols: dict[str, npt.NDArray[Any]] = {
            name: np.zeros(capacity, dtype) for name, dtype in zip(names, dtypes, strict=True)
            if name not in self.block_names
        }
        assert all(np.dtype(dtype) == np.int64 for name, dtype in zip(names, dtypes,
                                                                     strict=True)
                   if name in self.block_names)
        self.block: npt.NDArray[np.int64] = np.zeros((capacity, len(self.block_names)),
                                                     np.int64)
        self._view_block()

    def _view_block(self) -> None:
        for j, name in enumerate(self.block_names):
            self.cols[name] = self.block[:, j]
        # views, not copies: the struct reads and the row writes go through them (reshape
        # copies a block that is not C-contiguous without a word; np.zeros makes one that is)
        assert self.block.flags.c_contiguous
        self.block_bytes = self.block.reshape(-1).view(np.uint8).data
        self.block_rows = self.block.view(np.dtype((np.void, 8 * len(self.block_names)))
                                          ).reshape(-1) if self.block_names else self.block

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        cap = len(next(iter(self.cols.values())))
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for name, col in self.cols.items():
            if name in self.block_names:
                continue
            grown = np.zeros(cap, col.dtype)
            grown[: self.n] = col[: self.n]
            self.cols[name] = grown
        block = np.zeros((cap, len(self.block_names)), np.int64)
        block[: self.n] = self.block[: self.n]
        self.block = block
        self._view_block()

    def view(self, name: str) -> npt.NDArray[Any]:
        return self.cols[name][: self.n]


class Ledger:
    """All the books of one world. Deterministic: the same calls give the same state."""

    # slots: the exact path reads a dozen of these per transfer, and an instance dict of
    # this many keys is not a split dict with the fast attribute reads
    __slots__ = (
        "_acc",
        "_acc_index",
        "_acc_sorted_ids",
        "_acc_sorted_rows",
        "_acc_static",
        "_acc_table",
        "_base",
        "_base_last_mono_id",
        "_buffer",
        "_chain",
        "_clean",
        "_digested",
        "_expiry",
        "_gone_hi",
        "_gone_ids",
        "_gone_lo",
        "_inflight",
        "_kept",
        "_kept_ids",
        "_mono_end",
        "_mono_last_id",
        "_open_pending",
        "_pending_state",
        "_scratch",
        "_span_end",
        "_span_first",
        "_span_row",
        "_span_static",
        "_tr",
        "_tr_index",
        "_ts",
        "_unchecked_rows",
        "books",
        "history_block_rows",
        "keep_history",
        "last_timestamp_us",
        "max_amount_fen",
        "vectorise",
    )

    def __init__(self, max_amount_fen: int = MAX_AMOUNT_FEN, *, vectorise: bool = True,
                 keep_history: bool = True,
                 history_block_rows: int = HISTORY_BLOCK_ROWS) -> None:
        if history_block_rows < 1:
            raise ValueError(f"history_block_rows must be positive, not {history_block_rows}")
        self.max_amount_fen = max_amount_fen
        #: False forces the exact item-by-item path (tests compare the two paths).
        self.vectorise = vectorise
        #: False: transfer rows are kept only until their block is digested, except
        #: pending transfers (docs/LEDGER.md, "History retention"); a memory setting, not
        #: state: balances, codes and the state hash are the same either way
        self.keep_history = keep_history
        self.history_block_rows = history_block_rows
        self.books: dict[int, str] = {}
        self._acc = _Columns(
            ("id", "book", "normal", "flags", "limit", "code", "dp", "dpo", "cp", "cpo"),
            (np.int64, np.int64, np.int8, np.uint8, np.int64, np.int64,
             np.int64, np.int64, np.int64, np.int64),
            block=_BALANCES,
        )
        #: account id -> row, for the accounts outside the spans (see _row_of)
        self._acc_index: dict[int, int] = {}
        # Spans: runs of accounts opened one after another (consecutive ids at consecutive
        # rows, the same book, flags, normal side and limit: a range of generated
        # customers), one entry a run, not one dict entry an account (a world of 10
        # million customers would keep a 1 GiB dict). Sorted by first id, never
        # overlapping; an account opened past the last span's end extends it or begins a
        # new one, any other goes to _acc_index.
        self._span_first: list[int] = []
        #: one past each span's last id
        self._span_end: list[int] = []
        #: each span's first row
        self._span_row: list[int] = []
        #: each span's accounts' (book, flags, normal, limit), as _static gives them
        self._span_static: list[tuple[int, int, int, int]] = []
        self._acc_static: dict[int, _Static] = {}
        #: rows the column path posted since the whole-ledger sums were last compared
        self._unchecked_rows = 0
        self._acc_sorted_ids: I64 | None = None
        self._acc_sorted_rows: I64 | None = None
        self._acc_table: I64 | None = None
        self._tr = _Columns(
            ("id", "dr", "cr", "amount", "flags", "pending_id", "timeout", "code", "ts"),
            (np.int64, np.int64, np.int64, np.int64, np.uint16, np.int64, np.int64,
             np.uint16, np.int64),
            capacity=4096,
        )
        self._tr_index: dict[int, int] = {}
        self._mono_end = 0
        self._mono_last_id = 0
        # History retention. Row numbers are global (0 = the first transfer ever stored);
        # the columns hold rows [_base, _base + _tr.n). Rows below _base were forgotten
        # (keep_history False) after their block went into the digest chain, but for
        # pending transfers, kept in _kept (row -> fields) and _kept_ids (id -> row).
        self._base = 0
        self._kept: dict[int, tuple[int, ...]] = {}
        self._kept_ids: dict[int, int] = {}
        #: runs [lo, hi] of forgotten ids of the increasing prefix; forgotten others
        self._gone_lo: list[int] = []
        self._gone_hi: list[int] = []
        self._gone_ids: set[int] = set()
        #: the id of the last row below _base in the increasing prefix (0: none)
        self._base_last_mono_id = 0
        #: sha256 chain over the first _digested blocks' digests (in flight: _inflight)
        self._chain = b""
        self._digested = 0
        #: digests of blocks being hashed in a thread, in block order
        self._inflight: list[Future[bytes]] = []
        # The exact path's tail, kept in Python ints because numpy element reads and writes
        # are the costly part of a card authorisation's two postings. It is written into
        # the columns every _TAIL_ROWS rows, and before anything reads them
        # (:meth:`_flush_tail`); :meth:`balance` reads the scratch directly.
        #: balances of the accounts the tail touched (the columns hold them as they were
        #: read, until the tail is written)
        self._scratch: dict[int, list[int]] = {}
        #: balances of accounts the tail wrote into the columns, as the columns hold them
        #: (a cache, not state: at most _CLEAN_ROWS; a row written in the columns by
        #: another path is dropped): the tail takes them back without a numpy read
        self._clean: dict[int, list[int]] = {}
        #: rows applied and not yet in the columns (row numbers continue the columns')
        self._buffer: list[tuple[int, ...]] = []
        self._ts = 0
        self._pending_state: dict[int, PendingState] = {}
        #: pending transfers not yet posted, voided or expired: id -> (row, debit row,
        #: credit row, amount, debit id, credit id), so that a post or void reads no
        #: column (a cache, not state: a miss reads the row, as after a load)
        self._open_pending: dict[int, tuple[int, int, int, int, int, int]] = {}
        self._expiry: list[tuple[int, int, int]] = []  # (expires_at_us, transfer id, row)
        self.last_timestamp_us = 0

    # ------------------------------------------------------------------ books and accounts

    def create_book(self, book_id: int, name: str) -> None:
        """Open an institution's book (账簿). Idempotent for the same name."""
        if not 0 < book_id <= MAX_ID:
            raise ValueError(f"book id {book_id} out of range")
        existing = self.books.get(book_id)
        if existing is not None and existing != name:
            raise ValueError(f"book {book_id} exists as {existing!r}, not {name!r}")
        self.books[book_id] = name

    def create_accounts(self, accounts: Iterable[Account]) -> list[AccountResult]:
        """Create accounts in order; one result per account. ``EXISTS`` for a same-body retry."""
        results: list[AccountResult] = []
        for account in accounts:
            code = self._check_account(account)
            if code is AccountResult.OK:
                self._add_account(account)
            results.append(code)
        return results

    def create_account_range(self, first_id: int, count: int, book: int,
                             normal: NormalSide = NormalSide.CREDIT,
                             flags: AccountFlags = AccountFlags.NONE,
                             overdraft_limit_fen: int = 0, code: int = 0
                             ) -> list[AccountResult]:
        """:meth:`create_accounts` of the ``count`` accounts ``first_id`` ..
        ``first_id + count - 1``, all with these fields (a range of generated customers):
        the same results and state, written as columns at once and kept as one span when
        every one is new past every known id and valid (a new range), else account by
        account."""
        if count <= 0:
            return []
        if not self._range_is_new(first_id, count, book, normal, flags, overdraft_limit_fen,
                                  code):
            return self.create_accounts(
                Account(first_id + k, book, normal, flags, overdraft_limit_fen, code)
                for k in range(count))
        acc = self._acc
        acc.reserve(count)
        lo, hi = acc.n, acc.n + count
        cols = acc.cols
        cols["id"][lo:hi] = np.arange(first_id, first_id + count, dtype=np.int64)
        # rows past n are zeros (the columns are made zeroed, grown by copying the first n,
        # and n never goes down), totals included: a zero is not written again, so the
        # pages of a range's zero columns stay unwritten
        for name, value in (("book", book), ("normal", int(normal)), ("flags", int(flags)),
                            ("limit", overdraft_limit_fen), ("code", code)):
            if value:
                cols[name][lo:hi] = value
        acc.n = hi
        self._index_run(first_id, lo, count, (book, int(flags), int(normal),
                                              overdraft_limit_fen))
        self._acc_sorted_ids = None
        return [AccountResult.OK] * count

    def _range_is_new(self, first_id: int, count: int, book: int, normal: NormalSide,
                      flags: AccountFlags, limit: int, code: int) -> bool:
        """Whether :meth:`create_accounts` would give every account of the range OK (valid
        fields, no id known) and keep them all in one span (past the last span's end),
        with plain ints that fit their columns."""
        last = first_id + count - 1
        if not (type(first_id) is type(count) is type(book) is type(limit) is type(code)
                is int and first_id > 0 and last <= MAX_ID and book in self.books
                and 0 <= limit <= _I64_MAX and 0 <= code <= _I64_MAX
                and int(normal) in (_DEBIT_NORMAL, _CREDIT_NORMAL)
                and not int(flags) & ~(_MNO | _CLOSED)
                and self._acc.n + count <= MAX_ACCOUNTS):
            return False
        ends = self._span_end
        # past the last span's end no id is known: the dict holds only ids below a span's
        # end (_index_account), and nothing without a span
        assert ends or not self._acc_index
        return not ends or first_id >= ends[-1]

    def _check_account(self, a: Account) -> AccountResult:
        if not 0 < a.id <= MAX_ID:
            return AccountResult.ID_OUT_OF_RANGE
        row = self._row_of(a.id)
        if row is not None:
            return (AccountResult.EXISTS if self.account(a.id) == a
                    else AccountResult.EXISTS_WITH_DIFFERENT_FIELDS)
        if a.book not in self.books:
            return AccountResult.BOOK_NOT_FOUND
        if a.overdraft_limit_fen < 0:
            return AccountResult.OVERDRAFT_LIMIT_NEGATIVE
        if int(a.flags) & ~(_MNO | _CLOSED):
            return AccountResult.UNKNOWN_FLAGS
        return AccountResult.OK

    def _add_account(self, a: Account) -> None:
        if self._acc.n >= MAX_ACCOUNTS:
            raise RuntimeError(f"ledger holds {MAX_ACCOUNTS} accounts: refusing more")
        self._acc.reserve(1)
        row = self._acc.n
        cols = self._acc.cols
        cols["id"][row] = a.id
        cols["book"][row] = a.book
        cols["normal"][row] = int(a.normal)
        cols["flags"][row] = int(a.flags)
        cols["limit"][row] = a.overdraft_limit_fen
        cols["code"][row] = a.code
        self._acc.n += 1
        self._index_account(a.id, row, (int(a.book), int(a.flags), int(a.normal),
                                        int(a.overdraft_limit_fen)))
        self._acc_sorted_ids = None

    def _index_account(self, account_id: int, row: int,
                       static: tuple[int, int, int, int]) -> None:
        """Make a new account (its ``static``: book, flags, normal, limit) found by id:
        past the last span's end it extends that span (the next id at the next row, the
        same static fields) or begins a new one; below, it goes to the dict."""
        ends = self._span_end
        if ends and account_id < ends[-1]:
            self._acc_index[account_id] = row
            return
        if ends and account_id == ends[-1] and static == self._span_static[-1] and \
                row == self._span_row[-1] + account_id - self._span_first[-1]:
            ends[-1] = account_id + 1
            return
        self._span_first.append(account_id)
        ends.append(account_id + 1)
        self._span_row.append(row)
        self._span_static.append(static)

    def _reindex_accounts(self) -> None:
        """The id lookups rebuilt from the account columns (after a load): their runs of
        consecutive ids and equal static fields as spans, as _index_account would have
        made them (or longer: any split of a run is as good)."""
        self._acc_index, self._acc_static = {}, {}
        self._span_first, self._span_end, self._span_row, self._span_static = [], [], [], []
        n = self._acc.n
        if not n:
            return
        c = self._acc.cols
        ids = c["id"][:n]
        statics = [c[name][:n] for name in ("book", "flags", "normal", "limit")]
        breaks = ids[1:] - 1 != ids[:-1]  # (ids are positive: no wrap)
        for col in statics:
            breaks |= col[1:] != col[:-1]
        starts = np.flatnonzero(np.r_[True, breaks]).tolist()
        firsts = ids[starts].tolist()
        fields = list(zip(*(col[starts].tolist() for col in statics), strict=True))
        for lo, hi, first, static in zip(starts, [*starts[1:], n], firsts, fields,
                                         strict=True):
            self._index_run(first, lo, hi - lo, static)

    def _index_run(self, first_id: int, row: int, count: int,
                   static: tuple[int, int, int, int]) -> None:
        """Make ``count`` new accounts found by id, consecutive ids from ``first_id`` at
        consecutive rows from ``row`` with the same ``static`` fields, as _index_account
        one by one would: below the last span's end into the dict (the whole run is:
        the span holds the end's id), else the first extends the last span or begins
        one, the others extend it."""
        ends = self._span_end
        if ends and first_id < ends[-1]:
            self._acc_index.update(zip(range(first_id, first_id + count),
                                       range(row, row + count), strict=True))
            return
        self._index_account(first_id, row, static)
        ends[-1] = first_id + count

    def _row_of(self, account_id: int) -> int | None:
        """An account's row, None if there is none: the dict, else the span holding it."""
        row = self._acc_index.get(account_id)
        if row is None:
            first = self._span_first
            k = bisect.bisect_right(first, account_id) - 1
            if k >= 0 and account_id < self._span_end[k]:
                return self._span_row[k] + account_id - first[k]
        return row

    def _account_row(self, account_id: int) -> int:
        """An account's row (KeyError if there is none)."""
        row = self._row_of(account_id)
        if row is None:
            raise KeyError(account_id)
        return row

    def account(self, account_id: int) -> Account:
        row = self._account_row(account_id)
        c = self._acc.cols
        return Account(account_id, int(c["book"][row]), NormalSide(int(c["normal"][row])),
                       AccountFlags(int(c["flags"][row])), int(c["limit"][row]),
                       int(c["code"][row]))

    def overdraft_limit_fen(self, account_id: int) -> int:
        """How far a must-not-overdraw account may go below zero (KeyError if unknown)."""
        hit = self._acc_static.get(account_id) or self._static(account_id)
        if hit[0] < 0:
            raise KeyError(account_id)
        return hit[4]

    def has_account(self, account_id: int) -> bool:
        return self._row_of(account_id) is not None

    def balance(self, account_id: int) -> Balance:
        row, _, _, normal, _ = self._acc_static.get(account_id) or self._static(account_id)
        if row < 0:
            raise KeyError(account_id)
        # held by the exact path's tail since the last flush, else as it last wrote them
        # into the columns, else from the columns
        dp, dpo, cp, cpo = (self._scratch.get(row) or self._clean.get(row)
                            or self._column_totals(row))
        side = _SIDE_OF.get(normal)
        return Balance(dp, dpo, cp, cpo, NormalSide(normal) if side is None else side)

    def posted_fen(self, account_id: int) -> int:
        """``balance(account_id).posted_fen`` without building the Balance (a frozen
        dataclass: its __init__ is the costly part of a balance query)."""
        row, _, _, normal, _ = self._acc_static.get(account_id) or self._static(account_id)
        if row < 0:
            raise KeyError(account_id)
        _, dpo, _, cpo = (self._scratch.get(row) or self._clean.get(row)
                          or self._column_totals(row))
        return cpo - dpo if normal == _CREDIT_NORMAL else dpo - cpo

    def available_fen(self, account_id: int) -> int:
        """``balance(account_id).available_fen`` without building the Balance (a card
        authorisation asks it every time)."""
        row, _, _, normal, _ = self._acc_static.get(account_id) or self._static(account_id)
        if row < 0:
            raise KeyError(account_id)
        # read into the exact path's tail: the transfer that usually follows (a card's
        # debit of this account) then finds it there, not in the columns again
        dp, dpo, cp, cpo = self._scratch.get(row) or self._load(row)
        return _available_fen(dp, dpo, cp, cpo, normal)

    def funds_fen(self, account_id: int) -> tuple[int, int]:
        """(:meth:`available_fen`, :meth:`overdraft_limit_fen`) of an account at once (a
        card authorisation's issuer asks both)."""
        row, _, _, normal, limit = self._acc_static.get(account_id) or self._static(account_id)
        if row < 0:
            raise KeyError(account_id)
        dp, dpo, cp, cpo = self._scratch.get(row) or self._load(row)
        return _available_fen(dp, dpo, cp, cpo, normal), limit

    def debit_headroom_fen(self, account_ids: npt.ArrayLike) -> I64:
        """What each account may still be debited (posted balance less pending outflows
        plus its overdraft limit), as a column: for a batch that checks its payers' funds
        at once. Accounts no limit guards on that side get MAX_TOTAL_FEN."""
        self._flush_tail()
        rows = self._lookup_rows(np.asarray(account_ids, np.int64))
        if (rows < 0).any():
            raise KeyError("unknown account in a headroom query")
        acc = self._acc.cols
        credit_normal = acc["normal"][rows] == int(NormalSide.CREDIT)
        guarded = (acc["flags"][rows] & _MNO) != 0
        headroom = np.where(credit_normal,
                            acc["cpo"][rows] - acc["dpo"][rows] - acc["dp"][rows],
                            acc["dpo"][rows] - acc["cpo"][rows] - acc["cp"][rows]
                            ) + acc["limit"][rows]
        out: I64 = np.where(guarded & credit_normal, headroom, MAX_TOTAL_FEN)
        out[(acc["flags"][rows] & _CLOSED) != 0] = 0  # a closed account pays nothing
        return out

    def posted_columns(self, account_ids: npt.ArrayLike) -> tuple[I64, I64]:
        """``balance(id).posted_fen`` and ``.available_fen`` of many accounts at once, as
        columns (the simulator samples every participant's settlement account after each
        window)."""
        self._flush_tail()
        rows = self._lookup_rows(np.asarray(account_ids, np.int64))
        if (rows < 0).any():
            raise KeyError("unknown account in a balance query")
        acc = self._acc.cols
        dp, dpo, cp, cpo = (acc[name][rows] for name in ("dp", "dpo", "cp", "cpo"))
        credit_normal = acc["normal"][rows] == _CREDIT_NORMAL
        posted: I64 = np.where(credit_normal, cpo - dpo, dpo - cpo)
        available: I64 = posted - np.where(credit_normal, dp, cp)
        return posted, available

    def _column_totals(self, row: int) -> list[int]:
        """An account's four totals as the columns hold them, read at once (_Columns)."""
        return list(_TOTALS.unpack_from(self._acc.block_bytes, row * _TOTALS_ROW))

    @property
    def account_count(self) -> int:
        return self._acc.n

    @property
    def transfer_count(self) -> int:
        return self._base + self._tr.n + len(self._buffer)

    @property
    def held_transfer_count(self) -> int:
        """Transfer rows held in memory (all of them while the history is kept)."""
        return self._tr.n + len(self._buffer) + len(self._kept)

    # ------------------------------------------------------------------ transfers

    def create_transfers(
        self, batch: TransferBatch | Sequence[Transfer], timestamp_us: int
    ) -> BatchResult:
        """Apply a batch at ``timestamp_us`` (from the injected clock; never decreasing).

        Pending transfers whose timeout has passed are voided first, so the outcome depends
        only on the batch and its timestamp: replaying the log reproduces it exactly.
        """
        if not isinstance(batch, TransferBatch):
            if 0 < len(batch) <= _SMALL_BATCH and _plain_ints(batch):
                return self._create_small(batch, timestamp_us)
            batch = TransferBatch.from_transfers(batch)
        self.advance_time(timestamp_us)
        self._flush_tail()  # the column paths write at the columns' end
        n = len(batch)
        codes = np.zeros(n, np.uint8)
        if n == 0:
            return BatchResult(codes)
        if self.transfer_count + n > MAX_TRANSFERS:
            raise RuntimeError(f"ledger holds {MAX_TRANSFERS} transfers: refusing more")
        self._maybe_forget()
        self._tr.reserve(n)
        plain = self.vectorise and not (
            batch.flags.any() or batch.pending_id.any() or batch.timeout_us.any())
        if not plain:
            self._apply_exact(batch, 0, n, timestamp_us, codes)
        else:
            # Vector path as far as it provably goes; a failing transfer and a few after it
            # go item by item; then the vector path resumes.
            start = 0
            window = _EXACT_WINDOW
            while start < n:
                part = batch if start == 0 else batch.slice(start, n)
                applied = self._apply_vector(part, timestamp_us)
                start += applied
                if start >= n:
                    break
                if applied == 0 and start > 0:
                    stop = n  # the vector path cannot take this batch: exact for the rest
                else:
                    # failures close together: widen the exact window (adapts to density)
                    window = window * 2 if applied < 4 * window else _EXACT_WINDOW
                    stop = min(n, start + window)
                self._apply_exact(batch, start, stop, timestamp_us, codes)
                start = stop
        # The whole-ledger sums read every account: compared once the rows posted since
        # the last comparison reach 1/BALANCE_CHECK_RATIO of the accounts, so their cost
        # per row stays bounded whatever the world's size (a world of a million customers
        # paid them at every netting session: a tenth of an event). Every batch of a
        # small ledger is still compared at once; check_invariants compares every book.
        self._unchecked_rows += n
        if self._unchecked_rows * BALANCE_CHECK_RATIO >= self._acc.n:
            self._unchecked_rows = 0
            self._assert_books_balanced()
        return BatchResult(codes)

    def _create_small(self, transfers: Sequence[Transfer], timestamp_us: int) -> BatchResult:
        """A few transfer objects (a card authorisation's two postings, say): straight to
        the exact path on Python ints, without building numpy columns first. Same rules,
        same codes, same stored rows as the column paths (the property tests compare)."""
        return self._create_rows(
            [(t.id, t.debit_account_id, t.credit_account_id, t.amount_fen, int(t.flags),
              t.pending_id, t.timeout_us, t.code) for t in transfers], timestamp_us)

    def create_transfer_tuples(self, rows: Sequence[tuple[int, int, int, int, int]],
                               timestamp_us: int) -> BatchResult:
        """Plain transfers as (id, debit id, credit id, amount, flags) tuples of ints: the
        engine's own postings (a card authorisation's two, say), without building objects.
        Same rules and codes as :meth:`create_transfers`."""
        if not 0 < len(rows) <= _SMALL_BATCH:
            if not rows:
                return self.create_transfers([], timestamp_us)
            # the column paths' batch straight from the tuples (no objects on the way)
            return self.create_transfers(TransferBatch.of(*zip(*rows, strict=True)),
                                         timestamp_us)
        self._begin_small(len(rows), timestamp_us)
        static, kept = self._static, self._acc_static
        prepared = []
        for tid, dr, cr, amount, flags in rows:  # _create_rows's rows, built at once
            prepared.append((tid, dr, cr, amount, flags, 0, 0, 0,
                             kept.get(dr) or static(dr), kept.get(cr) or static(cr)))
        return BatchResult(np.array(self._run_small(prepared), np.uint8))

    def create_transfer_rows(self, rows: Sequence[tuple[int, int, int, int, int, int]],
                             timestamp_us: int) -> BatchResult:
        """A few transfers as (id, debit id, credit id, amount, flags, pending id) rows of
        ints, two-phase ones included (a reservation's post with the credit it pays): the
        exact path without objects. Same rules and codes as :meth:`create_transfers`."""
        if not 0 < len(rows) <= _SMALL_BATCH:
            return self.create_transfers(
                [Transfer(tid, dr, cr, amount, TransferFlags(flags), pending)
                 for tid, dr, cr, amount, flags, pending in rows], timestamp_us)
        return self._create_rows([(*row, 0, 0) for row in rows], timestamp_us)

    def create_transfer_row(self, tid: int, debit_id: int, credit_id: int, amount_fen: int,
                            flags: int, pending_id: int, timestamp_us: int) -> TransferResult:
        """One transfer as ints (a reservation, its post or void): the exact path without
        building an object or a batch. Same rules and codes as :meth:`create_transfers`; a
        linked flag is refused (a chain needs a batch)."""
        assert not flags & _LINKED, "a linked transfer is posted in a batch"
        # _create_rows for one unlinked row, without the list, the codes array and the
        # chain bookkeeping (a reservation, its post or void: the bank tier's commonest)
        if timestamp_us != self.last_timestamp_us or (
                self._expiry and self._expiry[0][0] <= timestamp_us):
            self.advance_time(timestamp_us)  # (at the same time with nothing due: a no-op)
        held = len(self._buffer)
        if self._base + self._tr.n + held >= MAX_TRANSFERS:  # transfer_count + 1 > MAX
            raise RuntimeError(f"ledger holds {MAX_TRANSFERS} transfers: refusing more")
        if not held:
            self._maybe_forget()
        self._ts = timestamp_us
        if flags & _PHASE_TWO:  # a post or void: the pending transfer's accounts, not these
            code = self._apply_one(tid, debit_id, credit_id, amount_fen, flags, pending_id,
                                   0, 0, _UNKNOWN_ACCOUNT, _UNKNOWN_ACCOUNT, None)
        else:
            static = self._acc_static
            d = static.get(debit_id) or self._static(debit_id)
            c = static.get(credit_id) or self._static(credit_id)
            if flags or pending_id:  # a reservation (or a row that fails its checks)
                code = self._apply_one(tid, debit_id, credit_id, amount_fen, flags,
                                       pending_id, 0, 0, d, c, None)
            else:  # posted at once: _apply_one's checks that can fail for it, in order
                code = self._apply_plain(tid, debit_id, credit_id, amount_fen, 0, d, c, None)
        if len(self._buffer) >= _TAIL_ROWS:
            self._flush_tail()
        return code

    def create_transfer_pair(self, tid: int, debit_id: int, credit_id: int, amount_fen: int,
                             tid2: int, debit_id2: int, credit_id2: int, amount_fen2: int,
                             timestamp_us: int) -> tuple[int, int]:
        """Two plain transfers linked all or nothing (a card's issuer and acquirer legs),
        as ints: :meth:`create_transfer_tuples` of ``[(tid, debit_id, credit_id,
        amount_fen, LINKED), (tid2, debit_id2, credit_id2, amount_fen2, 0)]`` without the
        lists, the codes array and the batch result. The same rules, codes, rollback and
        stored rows (the property tests compare); returns the two codes."""
        self._begin_small(2, timestamp_us)
        kept, static = self._acc_static, self._static
        d = kept.get(debit_id) or static(debit_id)
        c = kept.get(credit_id) or static(credit_id)
        undo: list[tuple[Any, ...]] = []
        first = self._apply_plain(tid, debit_id, credit_id, amount_fen, _LINKED, d, c, undo)
        if first > DONE_MAX:  # the first failed: it changed nothing, the second not tried
            codes = (first, _LINKED_EVENT_FAILED)
        else:
            d = kept.get(debit_id2) or static(debit_id2)
            c = kept.get(credit_id2) or static(credit_id2)
            # a failing transfer changes nothing: only the first's effects to undo
            second = self._apply_plain(tid2, debit_id2, credit_id2, amount_fen2, 0, d, c, None)
            if second > DONE_MAX:
                self._rollback(undo)
                codes = (_LINKED_EVENT_FAILED, second)
            else:
                codes = (first, second)
        if len(self._buffer) >= _TAIL_ROWS:
            self._flush_tail()
        return codes

    def _create_rows(self, rows: Sequence[tuple[int, int, int, int, int, int, int, int]],
                     timestamp_us: int) -> BatchResult:
        """The small-batch exact path: (id, debit, credit, amount, flags, pending id,
        timeout, code) rows of ints, with each account's attributes from the int cache."""
        self._begin_small(len(rows), timestamp_us)
        static, kept = self._static, self._acc_static
        prepared = [(*row, kept.get(row[1]) or static(row[1]), kept.get(row[2]) or static(row[2]))
                    for row in rows]
        return BatchResult(np.array(self._run_small(prepared), np.uint8))

    def _begin_small(self, n: int, timestamp_us: int) -> None:
        """What the small-batch path does before its ``n`` rows: the time (expiring what
        is due), the ledger's limit, the history's retention."""
        if timestamp_us != self.last_timestamp_us or (
                self._expiry and self._expiry[0][0] <= timestamp_us):
            self.advance_time(timestamp_us)  # (at the same time with nothing due: a no-op)
        if self.transfer_count + n > MAX_TRANSFERS:
            raise RuntimeError(f"ledger holds {MAX_TRANSFERS} transfers: refusing more")
        if not self._buffer:
            self._maybe_forget()
        self._ts = timestamp_us

    def _run_small(self, prepared: Sequence[_Prepared]) -> list[int]:
        """The exact path over prepared rows, their codes in a list: applied in order, a
        linked chain all or nothing (its other transfers LINKED_EVENT_FAILED, a chain left
        open LINKED_CHAIN_OPEN at its end); the tail written into the columns once full."""
        codes: list[int] = []
        undo: list[tuple[Any, ...]] = []
        chain_start = -1  # index where the current linked chain began
        chain_failed = False
        apply_one = self._apply_one
        for i, t in enumerate(prepared):
            linked = t[4] & _LINKED
            if chain_start < 0:
                if not linked:  # a transfer on its own
                    codes.append(apply_one(*t, None))
                    continue
                chain_start, chain_failed, undo = i, False, []
            if chain_failed:
                code = _LINKED_EVENT_FAILED
            else:
                code = apply_one(*t, undo)
                if code > DONE_MAX:
                    chain_failed = True
                    self._rollback(undo)
                    codes[chain_start:i] = [_LINKED_EVENT_FAILED] * (i - chain_start)
            codes.append(code)
            if not linked:  # this transfer closes the chain
                chain_start = -1
        if chain_start >= 0:  # the batch ended inside a chain: the whole chain fails
            if not chain_failed:
                self._rollback(undo)
            codes[chain_start:] = [_LINKED_EVENT_FAILED] * (len(codes) - chain_start)
            codes[-1] = R.LINKED_CHAIN_OPEN
        if len(self._buffer) >= _TAIL_ROWS:
            self._flush_tail()
        return codes

    def _static(self, account_id: int) -> _Static:
        """(row, book, flags, normal, limit) of an account; row -1 if unknown. Accounts
        never change these after they are opened, so they are cached as Python ints in
        _acc_static: callers read it first (``kept.get(id) or self._static(id)``), this
        finds and keeps what it misses."""
        row = self._acc_index.get(account_id)
        if row is not None:
            c = self._acc.cols  # .item: a Python int without a numpy scalar first
            hit = (row, c["book"].item(row), c["flags"].item(row), c["normal"].item(row),
                   c["limit"].item(row))
        else:  # in a span (a generated customer's): its fields without a column read
            first = self._span_first
            k = bisect.bisect_right(first, account_id) - 1
            if k < 0 or account_id >= self._span_end[k]:
                return _UNKNOWN_ACCOUNT
            book, flags, normal, limit = self._span_static[k]
            hit = (self._span_row[k] + account_id - first[k], book, flags, normal, limit)
        kept = self._acc_static
        if len(kept) >= _STATIC_KEPT:
            kept.clear()
        kept[account_id] = hit
        return hit

    def create_transfer(self, transfer: Transfer, timestamp_us: int) -> TransferResult:
        """One transfer: a batch of one."""
        return self.create_transfers([transfer], timestamp_us)[0]

    # -- transfer id index -----------------------------------------------------------
    #
    # Rows [0, _mono_end) hold strictly increasing transfer ids and are found by binary
    # search; they are not in the dict. Clients that mint increasing ids (time-based, as
    # TigerBeetle recommends) thus never pay a hash insert per transfer. The first id out
    # of order closes the prefix; later rows go to the dict.

    def _find_row(self, tid: int) -> int | None:
        """The global row of a stored transfer, None if there is none, _FORGOTTEN if it
        was stored and its row forgotten (history not kept)."""
        if self._mono_end and tid <= self._mono_last_id:
            base = self._base
            m = min(self._mono_end, base + self._tr.n)
            if self._mono_end > m:  # part of the prefix is still in the exact path's buffer
                for k, row in enumerate(self._buffer):
                    if row[0] == tid and m + k < self._mono_end:
                        return m + k
            if m > base:
                ids = self._tr.cols["id"]
                pos = int(np.searchsorted(ids[:m - base], tid))
                if pos < m - base and int(ids[pos]) == tid:
                    return base + pos
            if base and tid <= self._base_last_mono_id:
                kept = self._kept_ids.get(tid)
                if kept is not None:
                    return kept
                k = bisect.bisect_right(self._gone_lo, tid) - 1
                if k >= 0 and tid <= self._gone_hi[k]:
                    return _FORGOTTEN
        found = self._tr_index.get(tid)
        if found is None and tid in self._gone_ids:
            return _FORGOTTEN
        return found

    def _unindex_last_row(self, tid: int, row: int) -> None:
        if row < self._mono_end:
            assert row == self._mono_end - 1
            self._mono_end -= 1
            self._mono_last_id = (self._row_fields(row - 1)[0] if row > self._base
                                  else self._base_last_mono_id)
        else:
            del self._tr_index[tid]

    # -- vector path -----------------------------------------------------------------

    def _lookup_rows(self, ids: I64) -> I64:
        """Account ids -> rows, -1 where unknown: a direct table while ids are dense enough,
        else binary search over the sorted ids."""
        if self._acc_sorted_ids is None:
            self._build_account_lookup()
        table = self._acc_table
        if table is not None:
            inside = (ids >= 0) & (ids < len(table))
            rows = table[np.where(inside, ids, 0)]
            return np.where(inside, rows, -1)
        sorted_ids, sorted_rows = self._acc_sorted_ids, self._acc_sorted_rows
        assert sorted_ids is not None and sorted_rows is not None
        if len(sorted_ids) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[pos] == ids, sorted_rows[pos], -1)

    def _build_account_lookup(self) -> None:
        acc_ids = self._acc.view("id")
        order = np.argsort(acc_ids, kind="stable")
        self._acc_sorted_ids = acc_ids[order]
        self._acc_sorted_rows = order.astype(np.int64)
        top = int(acc_ids.max()) if len(acc_ids) else 0
        if top < min(_TABLE_MAX, 8 * len(acc_ids) + 65_536):
            table = np.full(top + 1, -1, np.int64)
            table[acc_ids] = np.arange(len(acc_ids), dtype=np.int64)
            self._acc_table = table
        else:
            self._acc_table = None

    def _apply_vector(self, batch: TransferBatch, ts: int) -> int:
        """Apply the longest prefix of plain transfers that provably all succeed.
        Returns how many were applied (the exact path takes the rest)."""
        n = len(batch)
        ids, amt = batch.id, batch.amount_fen
        if ((ids <= 0).any() or (amt <= 0).any() or (amt > self.max_amount_fen).any()
                or (batch.debit_account_id == batch.credit_account_id).any()):
            return 0
        di = self._lookup_rows(batch.debit_account_id)
        ci = self._lookup_rows(batch.credit_account_id)
        if (di < 0).any() or (ci < 0).any():
            return 0
        acc = self._acc.cols
        book = acc["book"]
        if (book[di] != book[ci]).any():
            return 0
        flags = acc["flags"]
        if ((flags[di] | flags[ci]) & _CLOSED).any():
            return 0
        monotone = (self._base + self._tr.n == self._mono_end
                    and int(ids[0]) > self._mono_last_id
                    and bool((ids[1:] > ids[:-1]).all()))
        ids_list: list[int] | None = None
        if not monotone:
            ids_list = ids.tolist()
            if len(set(ids_list)) != n or not self._tr_index.keys().isdisjoint(ids_list) \
                    or not self._gone_ids.isdisjoint(ids_list):
                return 0
            if self._mono_end and bool(self._in_mono_prefix(ids).any()):
                return 0
        # Overflow: a coarse bound; the exact path checks item by item if it trips.
        na = self._acc.n
        total = int(amt.sum())
        if (int(acc["dpo"][:na].max()) + int(acc["dp"][:na].max()) + total >= MAX_TOTAL_FEN
                or int(acc["cpo"][:na].max()) + int(acc["cp"][:na].max()) + total
                >= MAX_TOTAL_FEN):
            return 0
        stop = self._first_limit_breach(di, ci, amt)
        if stop > 0:
            self._commit_vector(batch, di, ci, ts, stop, ids_list)
        return stop

    def _in_mono_prefix(self, ids: I64) -> npt.NDArray[np.bool_]:
        base = self._base
        hit: npt.NDArray[np.bool_] = np.zeros(len(ids), np.bool_)
        if self._mono_end > base:
            prefix = self._tr.cols["id"][: self._mono_end - base]
            pos = np.minimum(np.searchsorted(prefix, ids), len(prefix) - 1)
            hit |= prefix[pos] == ids
        if self._gone_lo:  # forgotten runs of the prefix (the kept rows lie inside them)
            lo, hi = np.array(self._gone_lo, np.int64), np.array(self._gone_hi, np.int64)
            k = np.searchsorted(lo, ids, side="right") - 1
            hit |= (k >= 0) & (ids <= hi[np.maximum(k, 0)])
        return hit

    def _first_limit_breach(self, di: I64, ci: I64, amt: I64) -> int:
        """Index of the first transfer that would take a must-not-overdraw account past its
        limit if the batch were applied in order, or len(batch) if none would."""
        acc = self._acc.cols
        n = len(amt)
        normal = acc["normal"]
        guarded = (acc["flags"] & _MNO) != 0
        # Credit-normal guarded accounts lose headroom on debits; debit-normal on credits.
        d_is_guarded, c_is_guarded = guarded[di], guarded[ci]
        d_credit_normal = normal[di] == int(NormalSide.CREDIT)
        c_credit_normal = normal[ci] == int(NormalSide.CREDIT)
        d_loss = d_is_guarded & d_credit_normal
        c_loss = c_is_guarded & ~c_credit_normal
        if not (d_loss.any() or c_loss.any()):
            return n
        na = self._acc.n
        headroom_all = np.where(
            normal[:na] == int(NormalSide.CREDIT),
            acc["cpo"][:na] - acc["dpo"][:na] - acc["dp"][:na],
            acc["dpo"][:na] - acc["cpo"][:na] - acc["cp"][:na],
        ) + acc["limit"][:na]
        # Sufficient test first: if every guarded account could pay all of this batch's
        # outflows even before any inflow arrives, no prefix can breach.
        loss_rows = np.concatenate((di[d_loss], ci[c_loss]))
        loss_amt = np.concatenate((amt[d_loss], amt[c_loss]))
        outflow = np.zeros(na, np.int64)
        np.add.at(outflow, loss_rows, loss_amt)
        if bool((headroom_all[loss_rows] >= outflow[loss_rows]).all()):
            return n
        # Exact test: running headroom of each guarded account, event by event in order.
        d_gain = d_is_guarded & ~d_credit_normal
        c_gain = c_is_guarded & c_credit_normal
        ev_acc = np.stack((np.where(d_loss | d_gain, di, -1),
                           np.where(c_loss | c_gain, ci, -1)), axis=1).reshape(-1)
        ev_delta = np.stack((np.where(d_loss, -amt, amt), np.where(c_loss, -amt, amt)),
                            axis=1).reshape(-1)
        ev_pos = np.repeat(np.arange(n, dtype=np.int64), 2)
        keep = ev_acc >= 0
        ev_acc, ev_delta, ev_pos = ev_acc[keep], ev_delta[keep], ev_pos[keep]
        # order by account, then batch order: one unique key, sorted with numpy's (SIMD)
        # default sort, much faster than a stable sort of the account alone
        key = ev_acc * len(ev_acc) + np.arange(len(ev_acc), dtype=np.int64)
        order = np.argsort(key)
        ev_acc, ev_delta, ev_pos = ev_acc[order], ev_delta[order], ev_pos[order]
        running = np.cumsum(ev_delta)
        new_group = np.empty(len(ev_acc), bool)
        new_group[0] = True
        np.not_equal(ev_acc[1:], ev_acc[:-1], out=new_group[1:])
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(ev_acc)), 0))
        within = running - (running - ev_delta)[group_start]
        breach = (ev_delta < 0) & (headroom_all[ev_acc] + within < 0)
        if not breach.any():
            return n
        return int(ev_pos[breach].min())

    def _commit_vector(self, batch: TransferBatch, di: I64, ci: I64, ts: int, stop: int,
                       ids_list: list[int] | None) -> None:
        acc = self._acc.cols
        amt = batch.amount_fen[:stop]
        self._clean.clear()  # the columns change under it
        np.add.at(acc["dpo"], di[:stop], amt)
        np.add.at(acc["cpo"], ci[:stop], amt)
        tr = self._tr
        lo = tr.n
        hi = lo + stop
        c = tr.cols
        c["id"][lo:hi] = batch.id[:stop]
        c["dr"][lo:hi] = di[:stop]
        c["cr"][lo:hi] = ci[:stop]
        c["amount"][lo:hi] = amt
        c["flags"][lo:hi] = 0
        c["pending_id"][lo:hi] = 0
        c["timeout"][lo:hi] = 0
        c["code"][lo:hi] = batch.code[:stop]
        c["ts"][lo:hi] = ts
        tr.n = hi
        end = self._base + hi  # global rows
        if ids_list is None:  # monotone batch: extends the binary-searched prefix
            self._mono_end = end
            self._mono_last_id = int(batch.id[stop - 1])
        else:
            self._tr_index.update(zip(ids_list[:stop], range(end - stop, end), strict=True))

    # -- exact path ------------------------------------------------------------------
    #
    # Works on Python ints: account balances are loaded once per touched account into a
    # scratch dict and written back at the end; new rows are buffered and written as
    # columns. A linked chain keeps an undo list and rolls back if any member fails.

    def _apply_exact(self, batch: TransferBatch, start: int, stop: int, ts: int,
                     codes: npt.NDArray[np.uint8]) -> None:
        rest = batch.slice(start, stop)
        di_arr = self._lookup_rows(rest.debit_account_id)
        ci_arr = self._lookup_rows(rest.credit_account_id)
        assert not self._buffer and not self._scratch, "the tail is written first"
        self._ts = ts
        # static account attributes gathered once (numpy scalar reads are slow per item)
        acc = self._acc.cols
        dsafe, csafe = np.maximum(di_arr, 0), np.maximum(ci_arr, 0)
        # each account as _static gives it: (row, book, flags, normal, limit), row -1 if
        # unknown (the other attributes then those of row 0, never read)
        debits, credits = (
            zip(rows.tolist(), acc["book"][safe].tolist(), acc["flags"][safe].tolist(),
                acc["normal"][safe].tolist(), acc["limit"][safe].tolist(), strict=True)
            for rows, safe in ((di_arr, dsafe), (ci_arr, csafe)))
        cols = zip(rest.id.tolist(), rest.debit_account_id.tolist(),
                   rest.credit_account_id.tolist(), rest.amount_fen.tolist(),
                   rest.flags.tolist(), rest.pending_id.tolist(), rest.timeout_us.tolist(),
                   rest.code.tolist(), debits, credits, strict=True)
        codes[start:stop] = self._run_small(list(cols))
        self._flush_tail()

    def _flush_tail(self) -> None:
        """Write what the exact path holds in Python into the columns, before anything
        reads them: the touched accounts' balances (asserting that debits and credits
        moved by the same amounts), then the new rows."""
        if self._scratch:
            self._flush_balances()
        if self._buffer:
            self._flush_rows()

    def _flush_balances(self) -> None:
        """The tail's balances written into the columns' block at once (a tail of a few
        hundred card postings touches as many accounts), asserting that debits and
        credits moved by the same amounts: the columns still hold what the tail read."""
        scratch = self._scratch
        rows = _int64_values(scratch)
        now = _int64_rows(scratch.values(), _TOTALS)
        acc = self._acc
        delta = now - acc.block.take(rows, axis=0)
        acc.block_rows[rows] = now.view(acc.block_rows.dtype).reshape(-1)
        moved = _exact_column_sums(delta)
        if moved[0] != moved[2] or moved[1] != moved[3]:
            raise LedgerInvariantError("debits and credits moved by different amounts")
        clean = self._clean  # the lists now hold what the columns hold
        if len(clean) + len(scratch) > _CLEAN_ROWS:
            clean.clear()
        clean.update(scratch)
        self._scratch = {}

    def _flush_rows(self) -> None:
        rows = self._buffer
        tr = self._tr
        base, k = tr.n, len(rows)
        tr.reserve(k)
        # one int64 array of all the fields, then a column at a time; the 16-bit
        # columns' values were checked to fit (flags, code)
        fields = _int64_rows(rows, _ROW)
        for j, name in enumerate(tr.names):
            tr.cols[name][base: base + k] = fields[:, j]
        tr.n = base + k
        self._buffer = []

    def _load(self, row: int) -> list[int]:
        """An account's totals read into the tail (not held there yet): as the tail last
        wrote them (_clean), else from the columns."""
        bal = self._clean.get(row)
        if bal is None:
            # _column_totals, without the call
            bal = list(_TOTALS.unpack_from(self._acc.block_bytes, row * _TOTALS_ROW))
        self._scratch[row] = bal
        return bal

    def _row_fields(self, row: int) -> tuple[int, ...]:
        """(id, dr, cr, amount, flags, pending_id, timeout, code, ts) of a stored or
        buffered row (global row number; a forgotten one is a KeyError)."""
        base = self._base
        n = base + self._tr.n
        if row >= n:
            return self._buffer[row - n]
        if row < base:
            return self._kept[row]
        c = self._tr.cols
        return tuple(int(c[name][row - base]) for name in self._tr.names)

    def _rollback(self, undo: list[tuple[Any, ...]]) -> None:
        for entry in reversed(undo):
            kind = entry[0]
            if kind == "bal":
                self._scratch[entry[1]][entry[2]] -= entry[3]
            elif kind == "row":
                fields = self._buffer.pop()
                self._unindex_last_row(fields[0],
                                       self._base + self._tr.n + len(self._buffer))
            elif kind == "pstate":
                if entry[2] is None:
                    del self._pending_state[entry[1]]
                    self._open_pending.pop(entry[1], None)
                else:
                    self._pending_state[entry[1]] = entry[2]
        undo.clear()

    def _apply_one(self, tid: int, dr: int, cr: int, amt: int, flags: int, pid: int, tmo: int,
                   code: int, d: _Static, c: _Static,
                   undo: list[tuple[Any, ...]] | None
                   ) -> TransferResult:
        """One transfer of the exact path, the accounts' (row, book, flags, normal, limit)
        given (:meth:`_static`): its code, and if done its effects applied (``undo``: how
        to take them back, for a linked chain)."""
        if not 0 < tid <= MAX_ID:
            return R.ID_OUT_OF_RANGE
        if flags & _UNKNOWN_FLAGS:
            return R.UNKNOWN_FLAGS
        # _find_row only where it can find one: a new id (the common case) is above the
        # increasing prefix and in neither dict (without the call)
        if (self._mono_end and tid <= self._mono_last_id) or tid in self._tr_index or \
                tid in self._gone_ids:
            again = self._retried(tid, dr, cr, amt, flags, pid, tmo, code)
            if again is not None:
                return again
        mode = flags & _EXCLUSIVE
        if mode & (mode - 1):
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if mode & (_POST | _VOID):
            return self._apply_phase_two(tid, dr, cr, amt, flags, pid, tmo, code, undo)
        if pid != 0:
            return R.PENDING_ID_MUST_BE_ZERO
        if tmo < 0:
            return R.TIMEOUT_NEGATIVE
        if tmo and not mode:
            return R.TIMEOUT_RESERVED_FOR_PENDING
        dslot, cslot = (0, 2) if mode else (1, 3)  # reserved (PENDING) or posted at once
        verdict = self._post_new(dr, cr, amt, d, c, dslot, cslot)
        if verdict:
            return verdict
        di, ci = d[0], c[0]
        new_row = self._buffer_row(tid, di, ci, amt, flags, 0, tmo, code)
        if undo is not None:
            undo += [("bal", di, dslot, amt), ("bal", ci, cslot, amt), ("row",)]
        if mode:
            if undo is not None:
                undo.append(("pstate", tid, None))
            self._pending_state[tid] = _IS_PENDING
            self._open_pending[tid] = (new_row, di, ci, amt, dr, cr)
            if tmo:
                heapq.heappush(self._expiry, (self._ts + tmo, tid, new_row))
        return _OK

    def _post_new(self, dr: int, cr: int, amt: int, d: _Static, c: _Static, dslot: int,
                  cslot: int) -> TransferResult:
        """The checks of a new transfer on its amount and its accounts (their (row, book,
        flags, normal, limit)), in their order (:meth:`_apply_one` and
        :meth:`_apply_plain`): the first failing code (nothing changed), or OK (0) with
        the amount added to the total ``dslot`` of the debit account's held balances
        ``[dp, dpo, cp, cpo]`` and to ``cslot`` of the credit account's."""
        if amt <= 0:
            return R.AMOUNT_MUST_BE_POSITIVE
        if amt > self.max_amount_fen:
            return R.AMOUNT_TOO_LARGE
        if dr == cr:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        di, dbook, dflags, dnormal, dlimit = d
        ci, cbook, cflags, cnormal, climit = c
        if di < 0:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        if ci < 0:
            return R.CREDIT_ACCOUNT_NOT_FOUND
        if dbook != cbook:
            return R.ACCOUNTS_IN_DIFFERENT_BOOKS
        if dflags & _CLOSED:
            return R.DEBIT_ACCOUNT_CLOSED
        if cflags & _CLOSED:
            return R.CREDIT_ACCOUNT_CLOSED
        scratch = self._scratch
        dbal = scratch.get(di) or self._load(di)  # [dp, dpo, cp, cpo]
        cbal = scratch.get(ci) or self._load(ci)
        if dflags & _MNO and dnormal == _CREDIT_NORMAL and (
                dbal[3] - dbal[1] - dbal[0] - amt < -dlimit):
            return R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
        if cflags & _MNO and cnormal == _DEBIT_NORMAL and (
                cbal[1] - cbal[3] - cbal[2] - amt < -climit):
            return R.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS
        if dbal[1] + dbal[0] + amt >= MAX_TOTAL_FEN:
            return R.OVERFLOWS_DEBITS
        if cbal[3] + cbal[2] + amt >= MAX_TOTAL_FEN:
            return R.OVERFLOWS_CREDITS
        dbal[dslot] += amt
        cbal[cslot] += amt
        return _OK

    def _retried(self, tid: int, dr: int, cr: int, amt: int, flags: int, pid: int,
                 tmo: int, code: int) -> TransferResult | None:
        """The answer to a transfer id stored before (EXISTS, or how its body differs);
        None if it is new after all."""
        row = self._find_row(tid)
        if row is None:
            return None
        if row == _FORGOTTEN:  # stored once; its body is no longer held to compare
            return _EXISTS
        return self._compare_existing(row, dr, cr, amt, flags, pid, tmo, code)

    def _apply_plain(self, tid: int, dr: int, cr: int, amt: int, flags: int,
                     d: _Static, c: _Static,
                     undo: list[tuple[Any, ...]] | None) -> TransferResult:
        """:meth:`_apply_one` of a posted transfer (``flags`` 0 or LINKED, no pending id,
        timeout or code), the accounts' (row, book, flags, normal, limit) given: the same
        checks in the same order, without those that cannot fail for it."""
        if not 0 < tid <= MAX_ID:
            return R.ID_OUT_OF_RANGE
        # _find_row only where it can find one: a new id (the common case) is above the
        # increasing prefix and in neither dict (without the call)
        if (self._mono_end and tid <= self._mono_last_id) or tid in self._tr_index or \
                tid in self._gone_ids:
            again = self._retried(tid, dr, cr, amt, flags, 0, 0, 0)
            if again is not None:
                return again
        verdict = self._post_new(dr, cr, amt, d, c, 1, 3)
        if verdict:
            return verdict
        di, ci = d[0], c[0]
        self._buffer_row(tid, di, ci, amt, flags, 0, 0, 0)
        if undo is not None:
            undo += [("bal", di, 1, amt), ("bal", ci, 3, amt), ("row",)]
        return _OK

    def _apply_phase_two(self, tid: int, dr: int, cr: int, amt: int, flags: int, pid: int,
                         tmo: int, code: int, undo: list[tuple[Any, ...]] | None
                         ) -> TransferResult:
        if pid == 0:
            return R.PENDING_ID_REQUIRED
        if pid == tid:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if tmo:
            return R.TIMEOUT_RESERVED_FOR_PENDING
        if amt < 0:
            return R.AMOUNT_MUST_BE_POSITIVE
        cached = self._open_pending.get(pid)
        if cached is not None:
            _, p_di, p_ci, p_amt, p_dr, p_cr = cached
            if (dr and dr != p_dr) or (cr and cr != p_cr):
                return R.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
        else:
            prow = self._find_row(pid)
            if prow is None:
                return R.PENDING_TRANSFER_NOT_FOUND
            if prow == _FORGOTTEN:  # pending transfers are never forgotten
                return R.PENDING_TRANSFER_NOT_PENDING
            _, p_di, p_ci, p_amt, p_flags, *_ = self._row_fields(prow)
            if not p_flags & _PENDING:
                return R.PENDING_TRANSFER_NOT_PENDING
            acc_id = self._acc.cols["id"]
            if (dr and dr != int(acc_id[p_di])) or (cr and cr != int(acc_id[p_ci])):
                return R.PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS
        state = self._pending_state[pid]
        if state is _IS_POSTED:
            return R.PENDING_TRANSFER_ALREADY_POSTED
        if state is _IS_VOIDED:
            return R.PENDING_TRANSFER_ALREADY_VOIDED
        if state is _IS_EXPIRED:
            return R.PENDING_TRANSFER_EXPIRED
        post = bool(flags & _POST)
        amount = p_amt if amt == 0 else amt
        if amount > p_amt or (not post and amount != p_amt):
            return R.PENDING_TRANSFER_EXCEEDED
        scratch = self._scratch  # (_load, without the calls)
        dbal = scratch.get(p_di) or self._load(p_di)
        cbal = scratch.get(p_ci) or self._load(p_ci)
        dbal[0] -= p_amt
        cbal[2] -= p_amt
        if post:
            dbal[1] += amount
            cbal[3] += amount
        self._buffer_row(tid, p_di, p_ci, amount, flags, pid, 0, code)
        if undo is not None:
            undo += [("bal", p_di, 0, -p_amt), ("bal", p_ci, 2, -p_amt)]
            if post:
                undo += [("bal", p_di, 1, amount), ("bal", p_ci, 3, amount)]
            undo += [("row",), ("pstate", pid, state)]
        self._pending_state[pid] = _IS_POSTED if post else _IS_VOIDED
        self._open_pending.pop(pid, None)
        return _OK

    def _buffer_row(self, tid: int, di: int, ci: int, amt: int, flags: int, pid: int,
                    tmo: int, code: int) -> int:
        """A new row into the tail, indexed by its id (see _find_row): its row number."""
        buffer = self._buffer
        row = self._base + self._tr.n + len(buffer)
        if row >= MAX_TRANSFERS:
            raise RuntimeError(f"ledger holds {MAX_TRANSFERS} transfers: refusing more")
        buffer.append((tid, di, ci, amt, flags, pid, tmo, code, self._ts))
        if row == self._mono_end and tid > self._mono_last_id:
            self._mono_end = row + 1
            self._mono_last_id = tid
        else:
            self._tr_index[tid] = row
        return row

    def _compare_existing(self, row: int, dr: int, cr: int, amt: int, flags: int, pid: int,
                          tmo: int, code: int) -> TransferResult:
        _, s_di, s_ci, s_amt, s_flags, s_pid, s_tmo, s_code, _ = self._row_fields(row)
        acc_id = self._acc.cols["id"]
        if s_flags != flags:
            return R.EXISTS_WITH_DIFFERENT_FLAGS
        phase_two = bool(flags & int(PHASE_TWO))
        s_dr, s_cr = int(acc_id[s_di]), int(acc_id[s_ci])
        if (dr, cr) != (s_dr, s_cr) and not (phase_two and dr in (0, s_dr) and cr in (0, s_cr)):
            return R.EXISTS_WITH_DIFFERENT_ACCOUNTS
        if s_pid != pid:
            return R.EXISTS_WITH_DIFFERENT_PENDING_ID
        if amt != s_amt and not (phase_two and amt == 0 and self._is_full_amount(s_pid, s_amt)):
            return R.EXISTS_WITH_DIFFERENT_AMOUNT
        if s_tmo != tmo:
            return R.EXISTS_WITH_DIFFERENT_TIMEOUT
        if s_code != code:
            return R.EXISTS_WITH_DIFFERENT_CODE
        return _EXISTS

    def _is_full_amount(self, pending_id: int, amount: int) -> bool:
        prow = self._find_row(pending_id)
        return prow is not None and prow != _FORGOTTEN and self._row_fields(prow)[3] == amount

    # ------------------------------------------------------------------ history retention

    def _chain_upto(self, blocks: int) -> bytes:
        """The digest chain over the first ``blocks`` full blocks of transfer rows:
        c(k) = sha256(c(k - 1) + digest of block k). Blocks past those already digested
        are read from the columns."""
        while self._inflight:
            self._chain_next()
        size = self.history_block_rows
        while self._digested < blocks:
            lo = self._digested * size - self._base
            block = [self._tr.cols[name][lo:lo + size] for name in self._tr.names]
            self._chain = hashlib.sha256(self._chain + _block_digest(block)).digest()
            self._digested += 1
        assert self._digested >= blocks
        return self._chain

    def _chain_next(self) -> None:
        """The oldest block in flight into the chain (waiting for its digest)."""
        self._chain = hashlib.sha256(self._chain + self._inflight.pop(0).result()).digest()

    def _maybe_forget(self) -> None:
        """Without the history: once the columns hold two blocks, digest their full
        blocks (in a thread, overlapping the caller's work) and drop their rows, but
        for the pending transfers' (kept: a post, a void or an expiry reads them)."""
        size = self.history_block_rows
        if self.keep_history or self._tr.n < 2 * size or self._buffer:
            return
        base = self._base
        full = (base + self._tr.n) // size
        if self._digested < base // size:
            raise AssertionError("forgotten blocks must have been digested")
        new_base = full * size
        drop = new_base - base
        c = self._tr.cols
        for k in range(self._digested, full):
            while len(self._inflight) >= _INFLIGHT_BLOCKS:
                self._chain_next()
            lo = k * size - base
            # encoded here (new arrays, a quarter of the rows' bytes), hashed in the thread
            parts = _block_parts([c[name][lo:lo + size] for name in self._tr.names])
            self._inflight.append(_digest_pool().submit(_hash_parts, parts))
        self._digested = full
        ids, flags = c["id"][:drop], c["flags"][:drop]
        # the pending transfers' rows stay
        for local in np.flatnonzero(flags & _PENDING).tolist():
            row = base + local
            fields = tuple(int(c[name][local]) for name in self._tr.names)
            self._kept[row] = fields
            if row < self._mono_end:
                self._kept_ids[fields[0]] = row
        # what was stored stays known by id: runs of the increasing prefix, others by id
        prefix = min(self._mono_end, new_base) - base
        if prefix > 0:
            run_ids = ids[:prefix]
            breaks = np.flatnonzero(run_ids[1:] != run_ids[:-1] + 1) + 1
            starts = np.r_[0, breaks]
            ends = np.r_[breaks - 1, prefix - 1]
            for lo, hi in zip(run_ids[starts].tolist(), run_ids[ends].tolist(), strict=True):
                if self._gone_hi and lo == self._gone_hi[-1] + 1:
                    self._gone_hi[-1] = hi
                else:
                    self._gone_lo.append(lo)
                    self._gone_hi.append(hi)
            self._base_last_mono_id = int(run_ids[-1])
        if self._tr_index:
            for tid, row in list(self._tr_index.items()):
                if row < new_base and row not in self._kept:
                    del self._tr_index[tid]
                    self._gone_ids.add(tid)
        keep = self._tr.n - drop
        for name in self._tr.names:
            col = c[name]
            col[:keep] = col[drop:drop + keep]
        self._tr.n = keep
        self._base = new_base

    # ------------------------------------------------------------------ expiry

    def advance_time(self, now_us: int) -> list[int]:
        """Move the ledger's time to ``now_us`` (never back) and void the reservations that
        have timed out by then. Returns their ids."""
        if now_us < self.last_timestamp_us:
            raise ValueError(f"timestamp {now_us} is before the last batch's "
                             f"{self.last_timestamp_us}")
        if now_us > _I64_MAX:  # stored in an int64 column (perhaps later, from the tail)
            raise ValueError(f"timestamp {now_us} does not fit 64 bits")
        self.last_timestamp_us = now_us
        return self.expire_pending(now_us)

    def expire_pending(self, now_us: int) -> list[int]:
        """Void every pending transfer whose timeout has passed at ``now_us``. Returns their
        ids. Called at the start of every batch, and by the engine's clock ticks."""
        if not (self._expiry and self._expiry[0][0] <= now_us):
            return []  # nothing due (the engine moves the time before every command)
        expired: list[int] = []
        self._flush_tail()
        acc = self._acc.cols
        while self._expiry and self._expiry[0][0] <= now_us:
            expires_at, tid, row = heapq.heappop(self._expiry)
            if row >= self.transfer_count or \
                    self._pending_state.get(tid) is not _IS_PENDING:
                continue  # rolled back with its chain, or already posted/voided
            if row < self._base and row not in self._kept:
                continue  # rolled back, its row taken by a transfer since forgotten
            r_id, r_dr, r_cr, amt, _, _, r_timeout, _, r_ts = self._row_fields(row)
            if r_id != tid or r_ts + r_timeout != expires_at:
                continue  # its row was rolled back and taken by another transfer
            acc["dp"][r_dr] -= amt
            acc["cp"][r_cr] -= amt
            self._clean.pop(r_dr, None)  # (no longer what the columns hold)
            self._clean.pop(r_cr, None)
            self._pending_state[tid] = _IS_EXPIRED
            self._open_pending.pop(tid, None)
            expired.append(tid)
        return expired

    # ------------------------------------------------------------------ queries

    def lookup_transfer(self, transfer_id: int) -> TransferRecord | None:
        row = self._find_row(transfer_id)
        return None if row is None or row == _FORGOTTEN else self._record(row)

    def _record(self, row: int) -> TransferRecord:
        self._flush_tail()
        acc_id = self._acc.cols["id"]
        tid, dr, cr, amount, flags, pending_id, timeout, code, ts = self._row_fields(row)
        transfer = Transfer(tid, int(acc_id[dr]), int(acc_id[cr]), amount,
                            TransferFlags(flags), pending_id, timeout, code)
        state = self._pending_state.get(tid) if flags & _PENDING else None
        return TransferRecord(transfer, ts, state)

    def _kept_rows(self, account_row: int | None = None, after_us: int | None = None,
                   until_us: int | None = None) -> list[int]:
        """The rows held below the columns (pending transfers whose block was forgotten),
        in order: those of an account and applied in (``after_us``, ``until_us``]."""
        return [r for r, f in sorted(self._kept.items())
                if (account_row is None or account_row in (f[1], f[2]))
                and (after_us is None or after_us < f[8])
                and (until_us is None or f[8] <= until_us)]

    def transfers_since(self, row: int) -> list[TransferRecord]:
        """Stored transfers from position ``row`` on, in the order applied (those still
        held: without the history, the forgotten ones are left out)."""
        self._flush_tail()
        held = [r for r in self._kept_rows() if r >= row]
        held += range(max(row, self._base), self._base + self._tr.n)
        return [self._record(r) for r in held]

    def history(self, account_id: int, limit: int = 10_000) -> list[TransferRecord]:
        """The account's transfers in the order applied (most recent ``limit``; those
        still held when the history is not kept)."""
        row = self._account_row(account_id)
        self._flush_tail()
        n = self._tr.n
        rows = np.nonzero((self._tr.cols["dr"][:n] == row) | (self._tr.cols["cr"][:n] == row))[0]
        held = self._kept_rows(row) + (rows + self._base).tolist()
        return [self._record(r) for r in held[-limit:]]

    def history_between(self, account_id: int, after_us: int, until_us: int
                        ) -> list[TransferRecord]:
        """The account's transfers applied at a time in (``after_us``, ``until_us``], in
        order. Transfers are stored in time order (the ledger's time never goes back), so
        only that stretch of the table is read (a day's statement, not all history)."""
        row = self._account_row(account_id)
        self._flush_tail()
        n = self._tr.n
        c = self._tr.cols
        ts = c["ts"][:n]
        lo = int(np.searchsorted(ts, after_us, side="right"))
        hi = int(np.searchsorted(ts, until_us, side="right"))
        rows = lo + np.nonzero((c["dr"][lo:hi] == row) | (c["cr"][lo:hi] == row))[0]
        held = self._kept_rows(row, after_us, until_us) + (rows + self._base).tolist()
        return [self._record(r) for r in held]

    def pending_state(self, transfer_id: int) -> PendingState | None:
        return self._pending_state.get(transfer_id)

    def book_totals(self) -> dict[int, tuple[int, int]]:
        """Per book: (sum of debits posted - credits posted, same for pending). Both are 0."""
        self._flush_tail()
        n = self._acc.n
        c = self._acc.cols
        out: dict[int, tuple[int, int]] = {}
        if n == 0:
            return out
        books = c["book"][:n]
        uniq, inverse = np.unique(books, return_inverse=True)
        posted = np.zeros(len(uniq), np.int64)
        pending = np.zeros(len(uniq), np.int64)
        np.add.at(posted, inverse, c["dpo"][:n] - c["cpo"][:n])
        np.add.at(pending, inverse, c["dp"][:n] - c["cp"][:n])
        for b, p, q in zip(uniq.tolist(), posted.tolist(), pending.tolist(), strict=True):
            out[b] = (p, q)
        return out

    def _assert_books_balanced(self) -> None:
        self._flush_tail()
        n = self._acc.n
        c = self._acc.cols
        # Whole-ledger totals are O(accounts) and cheap; per-book sums run in check_invariants.
        if int(c["dpo"][:n].sum()) != int(c["cpo"][:n].sum()) or \
                int(c["dp"][:n].sum()) != int(c["cp"][:n].sum()):
            raise LedgerInvariantError("debits and credits differ across the ledger")

    def check_invariants(self) -> None:
        """Every book sums to zero (posted and pending); no total is negative; every
        must-not-overdraw account is within its limit. Raises LedgerInvariantError."""
        self._flush_tail()
        for book, (posted, pending) in self.book_totals().items():
            if posted or pending:
                raise LedgerInvariantError(
                    f"book {book} ({self.books.get(book)}) does not balance: "
                    f"posted {posted}, pending {pending}")
        n = self._acc.n
        c = self._acc.cols
        for name in ("dp", "dpo", "cp", "cpo"):
            if n and int(c[name][:n].min()) < 0:
                raise LedgerInvariantError(f"negative {name} total")
        guarded = (c["flags"][:n] & _MNO) != 0
        credit_normal = c["normal"][:n] == int(NormalSide.CREDIT)
        avail = np.where(credit_normal, c["cpo"][:n] - c["dpo"][:n] - c["dp"][:n],
                         c["dpo"][:n] - c["cpo"][:n] - c["cp"][:n])
        if (guarded & (avail < -c["limit"][:n])).any():
            raise LedgerInvariantError("an account is past its overdraft limit")

    # ------------------------------------------------------------------ state

    def state_hash(self) -> bytes:
        """SHA-256 over the canonical state: equal hashes mean identical ledgers.

        The transfer rows enter block by block: every full block of
        ``history_block_rows`` rows through the digest chain, the rows after the last
        full block one by one. So the hash is the same whether the history is kept or
        not, and a ledger of fewer rows than a block hashes as it always did."""
        self._flush_tail()
        h = hashlib.sha256()
        h.update(repr(sorted(self.books.items())).encode())
        h.update(self._acc.n.to_bytes(8, "little"))
        for name in self._acc.names:
            h.update(np.ascontiguousarray(self._acc.view(name)).tobytes())
        total = self.transfer_count
        h.update(total.to_bytes(8, "little"))
        full = total // self.history_block_rows
        if full:
            h.update(b"blocks" + full.to_bytes(8, "little") + self._chain_upto(full))
        start = full * self.history_block_rows - self._base
        for name in self._tr.names:
            h.update(np.ascontiguousarray(self._tr.view(name)[start:]).tobytes())
        h.update(repr(sorted((k, int(v)) for k, v in self._pending_state.items())).encode())
        h.update(repr(sorted(self._expiry)).encode())
        h.update(self.last_timestamp_us.to_bytes(8, "little", signed=True))
        return h.digest()

    def to_bytes(self) -> bytes:
        """Serialise the whole state (for snapshots; the held transfer rows, and when
        some were forgotten the digest of their blocks)."""
        self._flush_tail()
        buf = io.BytesIO()
        arrays: dict[str, npt.NDArray[Any]] = {}
        for prefix, cols in (("a_", self._acc), ("t_", self._tr)):
            for name in cols.names:
                arrays[prefix + name] = cols.view(name)
        if self._base or self.history_block_rows != HISTORY_BLOCK_ROWS:
            chain = self._chain_upto(0)  # over the blocks digested so far
            arrays["h_meta"] = np.array([
                self._base, self.history_block_rows, self._mono_end, self._mono_last_id,
                self._base_last_mono_id, self._digested], np.int64)
            arrays["h_chain"] = np.frombuffer(chain, np.uint8)
            kept = sorted(self._kept.items())
            arrays["h_kept"] = np.array([[r, *f] for r, f in kept], np.int64).reshape(-1, 10)
            arrays["h_gone"] = np.array([self._gone_lo, self._gone_hi], np.int64)
            arrays["h_gone_ids"] = np.array(sorted(self._gone_ids), np.int64)
        pend = sorted(self._pending_state.items())
        arrays["p_id"] = np.array([k for k, _ in pend], np.int64)
        arrays["p_state"] = np.array([int(v) for _, v in pend], np.int8)
        arrays["x"] = np.array(self._expiry, np.int64).reshape(-1, 3)
        book_items = sorted(self.books.items())
        arrays["b_id"] = np.array([k for k, _ in book_items], np.int64)
        arrays["b_name"] = np.array([v for _, v in book_items], dtype=np.str_)
        arrays["meta"] = np.array([self.last_timestamp_us, self.max_amount_fen], np.int64)
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = z["meta"]
            ledger = cls(max_amount_fen=int(meta[1]))
            ledger.last_timestamp_us = int(meta[0])
            ledger.books = dict(zip(z["b_id"].tolist(), z["b_name"].tolist(), strict=True))
            for prefix, cols in (("a_", ledger._acc), ("t_", ledger._tr)):
                n = len(z[prefix + "id"])
                cols.reserve(n)
                for name in cols.names:
                    cols.cols[name][:n] = z[prefix + name]
                cols.n = n
            ledger._reindex_accounts()
            ids = ledger._tr.view("id")
            if "h_meta" in z:  # some rows forgotten (or blocks of another size)
                base, block, mono_end, mono_last, base_last, digested = z["h_meta"].tolist()
                ledger.history_block_rows = block
                ledger._base, ledger._base_last_mono_id = base, base_last
                ledger._chain, ledger._digested = z["h_chain"].tobytes(), digested
                ledger._kept = {int(r[0]): tuple(r[1:]) for r in z["h_kept"].tolist()}
                ledger._gone_lo, ledger._gone_hi = (x.tolist() for x in z["h_gone"])
                ledger._gone_ids = set(z["h_gone_ids"].tolist())
            else:
                increasing = np.nonzero(ids[1:] <= ids[:-1])[0]
                mono_end = int(increasing[0]) + 1 if len(increasing) else len(ids)
                mono_last = int(ids[mono_end - 1]) if mono_end else 0
            base = ledger._base
            ledger._mono_end, ledger._mono_last_id = mono_end, mono_last
            held = max(mono_end - base, 0)
            ledger._tr_index = {int(v): base + held + i for i, v in enumerate(ids[held:])}
            ledger._tr_index.update((f[0], r) for r, f in ledger._kept.items()
                                    if r >= mono_end)
            ledger._kept_ids = {f[0]: r for r, f in ledger._kept.items() if r < mono_end}
            ledger._pending_state = {
                int(k): PendingState(int(v))
                for k, v in zip(z["p_id"].tolist(), z["p_state"].tolist(), strict=True)}
            ledger._expiry = [(int(a), int(b), int(c)) for a, b, c in z["x"].tolist()]
            heapq.heapify(ledger._expiry)
        return ledger


_I64_MIN: Final = -(1 << 63)
_I64_MAX: Final = (1 << 63) - 1
_DIGEST_POOL: list[ThreadPoolExecutor] = []


def _digest_pool() -> ThreadPoolExecutor:
    """One thread digesting forgotten blocks (hashlib and numpy release the GIL)."""
    if not _DIGEST_POOL:
        _DIGEST_POOL.append(ThreadPoolExecutor(1, thread_name_prefix="ledger-digest"))
    return _DIGEST_POOL[0]


def _block_parts(columns: Sequence[npt.NDArray[Any]]) -> list[Any]:
    """One block of transfer rows as the pieces its digest hashes, column by column: a
    column of one value as that value (C), the id column counting up by one as its first
    id (P), a column of few runs (the time) as where they change and their values (L), a
    column of int64 within 0 .. 2^31 (the accounts' rows) as int32 (I), any other as its
    bytes (R). A bulk posting's block hashes about 16 of its 60 bytes a row. The pieces
    are new objects: the columns may be overwritten while a thread hashes them."""
    parts: list[Any] = []
    for k, col in enumerate(columns):
        first = col[:1].tobytes()
        if bool((col == col[0]).all()):
            parts.append(b"C" + first)
            continue
        if k == 0 and bool((col[1:] - col[:-1] == 1).all()):
            parts.append(b"P" + first)
            continue
        change = np.flatnonzero(col[1:] != col[:-1])
        if 16 * len(change) < len(col):
            parts += [b"L" + len(change).to_bytes(8, "little"), change.astype(np.int64),
                      col[np.r_[0, change + 1]]]
        elif col.dtype == np.int64 and int(col.min()) >= 0 and int(col.max()) < 1 << 31:
            parts += [b"I", col.astype(np.int32)]
        else:
            parts += [b"R", col.copy()]
    return parts


def _hash_parts(parts: Sequence[Any]) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def _block_digest(columns: Sequence[npt.NDArray[Any]]) -> bytes:
    """SHA-256 of one block of transfer rows (see _block_parts)."""
    return _hash_parts(_block_parts(columns))


#: the tail's rows and balances as machine ints, for _int64_rows: native longs where a
#: long is 64 bits (struct converts a long digit by digit, a long long through a byte
#: array: half the cost of a row); the same bytes, the same range, the same errors
_INT64_CODE: Final = "l" if struct.calcsize("@l") == 8 else "q"
_ROW: Final = struct.Struct(f"@9{_INT64_CODE}")
_TOTALS: Final = struct.Struct(f"@4{_INT64_CODE}")
assert _ROW.size == 9 * 8 and _TOTALS.size == 4 * 8
#: bytes of one row of the account block (its four totals, side by side: _Columns)
_TOTALS_ROW: Final = _TOTALS.size
assert len(_BALANCES) * np.dtype(np.int64).itemsize == _TOTALS_ROW


def _int64_values(values: Collection[int]) -> I64:
    """Ints as an int64 array: packed by struct in one call, without numpy's per-value
    conversion steps; a value past 64 bits raises numpy's OverflowError, as writing it
    into a column would."""
    try:
        data = struct.pack(f"@{len(values)}{_INT64_CODE}", *values)
    except struct.error:  # not all 64-bit ints: numpy's conversion, and its error
        return np.fromiter(values, np.int64, len(values))
    return np.frombuffer(data, np.int64)


def _int64_rows(rows: Collection[Sequence[int]], packer: struct.Struct) -> I64:
    """Rows of ints (``packer`` says how many each) as a 2-D int64 array: packed by
    struct a row at a time (as :func:`_int64_values`), with its errors."""
    width = packer.size // 8
    try:
        data = b"".join(starmap(packer.pack, rows))
    except struct.error:  # not all 64-bit ints: numpy's conversion, and its error
        return np.fromiter(chain.from_iterable(rows), np.int64, len(rows) * width
                           ).reshape(-1, width)
    return np.frombuffer(data, np.int64).reshape(-1, width)


def _exact_column_sums(values: I64) -> list[int]:
    """The sums of a 2-D int64 array's columns, exact (Python ints: a sum in int64 may
    wrap): each value split into its high 32 bits (signed) and its low 32 bits, whose
    sums over fewer than 2^31 rows each fit in int64, then joined again."""
    assert len(values) < 1 << 31
    high = (values >> 32).sum(axis=0).tolist()
    low = (values & 0xFFFF_FFFF).sum(axis=0).tolist()
    return [(h << 32) + lo for h, lo in zip(high, low, strict=True)]


def _plain_ints(transfers: Sequence[Transfer]) -> bool:
    """Every field an int in its column's range: what the column path would accept (else
    it goes there and raises the column's own error)."""
    for t in transfers:
        for v in (t.id, t.debit_account_id, t.credit_account_id, t.amount_fen, t.pending_id,
                  t.timeout_us):
            if type(v) is not int or not _I64_MIN <= v <= _I64_MAX:
                return False
        if type(t.code) is not int or not 0 <= t.code <= 0xFFFF or \
                not 0 <= int(t.flags) <= 0xFFFF:
            return False
    return True
