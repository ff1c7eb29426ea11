"""The ledger's rules, each asserted on balances and result codes, plus property tests that
compare the ledger with a small independent model of the same rules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qingsuan.ledger.ledger as ledger_module
from qingsuan.ledger import (
    Account,
    AccountFlags,
    AccountResult,
    Ledger,
    NormalSide,
    PendingState,
    Transfer,
    TransferBatch,
    TransferFlags,
)
from qingsuan.ledger import TransferResult as R

MNO = AccountFlags.MUST_NOT_OVERDRAW
F = TransferFlags


def make_ledger(vectorise: bool = True) -> Ledger:
    """Book 1: a bank. 1 = vault (debit-normal, unguarded), 2 and 3 customers (guarded,
    3 with a 50.00 overdraft), 4 reserve mirror (debit-normal, guarded). Book 2: another
    bank with account 10."""
    ledger = Ledger(vectorise=vectorise)
    ledger.create_book(1, "ICBC")
    ledger.create_book(2, "CCB")
    results = ledger.create_accounts([
        Account(1, 1, NormalSide.DEBIT),
        Account(2, 1, NormalSide.CREDIT, MNO),
        Account(3, 1, NormalSide.CREDIT, MNO, overdraft_limit_fen=5000),
        Account(4, 1, NormalSide.DEBIT, MNO),
        Account(10, 2, NormalSide.CREDIT),
    ])
    assert results == [AccountResult.OK] * 5
    return ledger


def test_single_transfer_moves_money_and_books_balance() -> None:
    ledger = make_ledger()
    assert ledger.create_transfer(Transfer(100, 1, 2, 10_000), 1) is R.OK
    assert ledger.balance(2).posted_fen == 10_000
    assert ledger.balance(1).posted_fen == 10_000  # vault asset up
    assert ledger.book_totals()[1] == (0, 0)
    ledger.check_invariants()


def test_must_not_overdraw_and_overdraft_limit() -> None:
    ledger = make_ledger()
    assert ledger.create_transfer(Transfer(1, 2, 1, 1), 1) is R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    assert ledger.create_transfer(Transfer(2, 3, 1, 5000), 1) is R.OK  # within overdraft
    assert ledger.balance(3).posted_fen == -5000
    assert ledger.create_transfer(Transfer(3, 3, 1, 1), 1) is R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    # a debit-normal guarded asset cannot be credited below zero
    assert ledger.create_transfer(Transfer(4, 1, 4, 1), 1) is R.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS
    assert ledger.balance(2).posted_fen == 0
    assert ledger.balance(4).posted_fen == 0


def test_validation_codes_each_name_one_cause() -> None:
    ledger = make_ledger()
    ledger.create_accounts([Account(5, 1, NormalSide.CREDIT, AccountFlags.CLOSED)])
    cases = [
        (Transfer(0, 1, 2, 1), R.ID_OUT_OF_RANGE),
        (Transfer(11, 1, 2, 0), R.AMOUNT_MUST_BE_POSITIVE),
        (Transfer(12, 1, 2, -5), R.AMOUNT_MUST_BE_POSITIVE),
        (Transfer(13, 1, 2, 10**15 + 1), R.AMOUNT_TOO_LARGE),
        (Transfer(14, 2, 2, 1), R.ACCOUNTS_MUST_BE_DIFFERENT),
        (Transfer(15, 99, 2, 1), R.DEBIT_ACCOUNT_NOT_FOUND),
        (Transfer(16, 1, 99, 1), R.CREDIT_ACCOUNT_NOT_FOUND),
        (Transfer(17, 1, 10, 1), R.ACCOUNTS_IN_DIFFERENT_BOOKS),
        (Transfer(18, 5, 1, 1), R.DEBIT_ACCOUNT_CLOSED),
        (Transfer(19, 1, 5, 1), R.CREDIT_ACCOUNT_CLOSED),
        (Transfer(20, 1, 2, 1, flags=TransferFlags(64)), R.UNKNOWN_FLAGS),
        (Transfer(21, 1, 2, 1, flags=F.PENDING | F.VOID_PENDING), R.FLAGS_ARE_MUTUALLY_EXCLUSIVE),
        (Transfer(22, 1, 2, 1, timeout_us=5), R.TIMEOUT_RESERVED_FOR_PENDING),
        (Transfer(23, 1, 2, 1, pending_id=7), R.PENDING_ID_MUST_BE_ZERO),
        (Transfer(24, 0, 0, 0, flags=F.POST_PENDING), R.PENDING_ID_REQUIRED),
        (Transfer(25, 0, 0, 0, flags=F.POST_PENDING, pending_id=25),
         R.PENDING_ID_MUST_BE_DIFFERENT),
        (Transfer(26, 0, 0, 0, flags=F.VOID_PENDING, pending_id=999),
         R.PENDING_TRANSFER_NOT_FOUND),
        (Transfer(27, 1, 2, 1, flags=F.PENDING, timeout_us=-1), R.TIMEOUT_NEGATIVE),
    ]
    for transfer, expected in cases:
        assert ledger.create_transfer(transfer, 1) is expected, transfer
    assert ledger.transfer_count == 0
    assert all(ledger.balance(a).posted_fen == 0 for a in (1, 2, 3, 4))


def test_idempotent_retry_and_conflicting_body() -> None:
    ledger = make_ledger()
    assert ledger.create_transfer(Transfer(7, 1, 2, 500), 1) is R.OK
    assert ledger.create_transfer(Transfer(7, 1, 2, 500), 2) is R.EXISTS
    assert ledger.balance(2).posted_fen == 500  # the retry moved nothing
    assert ledger.create_transfer(Transfer(7, 1, 2, 501), 2) is R.EXISTS_WITH_DIFFERENT_AMOUNT
    assert ledger.create_transfer(Transfer(7, 1, 3, 500), 2) is R.EXISTS_WITH_DIFFERENT_ACCOUNTS
    assert ledger.create_transfer(Transfer(7, 1, 2, 500, code=9), 2) is R.EXISTS_WITH_DIFFERENT_CODE
    assert (ledger.create_transfer(Transfer(7, 1, 2, 500, flags=F.PENDING), 2)
            is R.EXISTS_WITH_DIFFERENT_FLAGS)
    assert ledger.transfer_count == 1
    # a failed transfer is not stored: the same id succeeds once funds arrive
    assert ledger.create_transfer(Transfer(8, 2, 1, 900), 3) is R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    assert ledger.create_transfer(Transfer(9, 1, 2, 400), 3) is R.OK
    assert ledger.create_transfer(Transfer(8, 2, 1, 900), 3) is R.OK
    assert ledger.balance(2).posted_fen == 0


def test_duplicate_id_within_one_batch() -> None:
    for vectorise in (True, False):
        ledger = make_ledger(vectorise)
        res = ledger.create_transfers([Transfer(5, 1, 2, 100), Transfer(5, 1, 2, 100),
                                       Transfer(5, 1, 2, 200)], 1)
        assert [res[i] for i in range(3)] == [R.OK, R.EXISTS, R.EXISTS_WITH_DIFFERENT_AMOUNT]
        assert ledger.balance(2).posted_fen == 100


def test_two_phase_post_partial_void_and_expiry() -> None:
    ledger = make_ledger()
    ledger.create_transfer(Transfer(1, 1, 2, 10_000), 0)
    # reserve 6,000 of the customer's 10,000
    assert ledger.create_transfer(Transfer(2, 2, 1, 6000, flags=F.PENDING), 1) is R.OK
    assert ledger.balance(2).posted_fen == 10_000
    assert ledger.balance(2).available_fen == 4000
    assert ledger.create_transfer(Transfer(3, 2, 1, 4001), 1) is R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    # post 2,500 of it: the rest is released
    assert ledger.create_transfer(
        Transfer(4, 0, 0, 2500, flags=F.POST_PENDING, pending_id=2), 2) is R.OK
    assert ledger.balance(2).posted_fen == 7500
    assert ledger.balance(2).available_fen == 7500
    assert ledger.pending_state(2) is PendingState.POSTED
    assert ledger.create_transfer(
        Transfer(5, 0, 0, 0, flags=F.VOID_PENDING, pending_id=2), 3) is (
        R.PENDING_TRANSFER_ALREADY_POSTED)
    assert ledger.create_transfer(
        Transfer(6, 0, 0, 0, flags=F.POST_PENDING, pending_id=1), 3) is (
        R.PENDING_TRANSFER_NOT_PENDING)
    # a pending with a timeout voids itself when the clock passes it
    assert ledger.create_transfer(
        Transfer(7, 2, 1, 7000, flags=F.PENDING, timeout_us=1000), 10) is R.OK
    assert ledger.balance(2).available_fen == 500
    assert ledger.create_transfer(
        Transfer(8, 0, 0, 8000, flags=F.POST_PENDING, pending_id=7), 11) is (
        R.PENDING_TRANSFER_EXCEEDED)
    assert ledger.expire_pending(1009) == []
    assert ledger.expire_pending(1010) == [7]
    assert ledger.pending_state(7) is PendingState.EXPIRED
    assert ledger.balance(2).available_fen == 7500
    assert ledger.create_transfer(
        Transfer(9, 0, 0, 0, flags=F.POST_PENDING, pending_id=7), 1011) is (
        R.PENDING_TRANSFER_EXPIRED)
    # void: releases exactly, posts nothing
    ledger.create_transfer(Transfer(10, 2, 1, 100, flags=F.PENDING), 1012)
    assert ledger.create_transfer(
        Transfer(11, 0, 0, 0, flags=F.VOID_PENDING, pending_id=10), 1013) is R.OK
    assert ledger.create_transfer(
        Transfer(12, 0, 0, 0, flags=F.VOID_PENDING, pending_id=10), 1013) is (
        R.PENDING_TRANSFER_ALREADY_VOIDED)
    assert ledger.balance(2).posted_fen == 7500 and ledger.balance(2).available_fen == 7500
    # retry of the post with amount 0 (= whole amount) is recognised as the same post
    ledger.create_transfer(Transfer(13, 2, 1, 100, flags=F.PENDING), 1014)
    assert ledger.create_transfer(
        Transfer(14, 0, 0, 0, flags=F.POST_PENDING, pending_id=13), 1015) is R.OK
    assert ledger.create_transfer(
        Transfer(14, 0, 0, 0, flags=F.POST_PENDING, pending_id=13), 1016) is R.EXISTS
    ledger.check_invariants()


def test_expiry_happens_at_the_next_batch_timestamp() -> None:
    ledger = make_ledger()
    ledger.create_transfer(Transfer(1, 1, 2, 1000), 0)
    ledger.create_transfer(Transfer(2, 2, 1, 1000, flags=F.PENDING, timeout_us=50), 100)
    assert ledger.create_transfer(Transfer(3, 2, 1, 1000), 149) is (
        R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS)
    assert ledger.create_transfer(Transfer(3, 2, 1, 1000), 150) is R.OK
    assert ledger.pending_state(2) is PendingState.EXPIRED


def test_linked_chain_is_all_or_nothing() -> None:
    for vectorise in (True, False):
        ledger = make_ledger(vectorise)
        chain = [
            Transfer(1, 1, 2, 1000, flags=F.LINKED),
            Transfer(2, 2, 3, 1000, flags=F.LINKED),
            Transfer(3, 3, 1, 9000),  # 3 can go to -50.00 only: fails
            Transfer(4, 1, 2, 10),
        ]
        res = ledger.create_transfers(chain, 1)
        assert [res[i] for i in range(4)] == [
            R.LINKED_EVENT_FAILED, R.LINKED_EVENT_FAILED, R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS,
            R.OK]
        assert ledger.balance(2).posted_fen == 10
        assert ledger.balance(3).posted_fen == 0
        assert ledger.lookup_transfer(1) is None
        ledger.check_invariants()


def test_linked_chain_open_at_batch_end_fails_whole_chain() -> None:
    ledger = make_ledger()
    res = ledger.create_transfers([Transfer(1, 1, 2, 5), Transfer(2, 1, 2, 5, flags=F.LINKED),
                                   Transfer(3, 1, 2, 5, flags=F.LINKED)], 1)
    assert [res[i] for i in range(3)] == [R.OK, R.LINKED_EVENT_FAILED, R.LINKED_CHAIN_OPEN]
    assert ledger.balance(2).posted_fen == 5


def test_linked_chain_rolls_back_pending_and_post() -> None:
    ledger = make_ledger()
    ledger.create_transfer(Transfer(1, 1, 2, 1000), 0)
    ledger.create_transfer(Transfer(2, 2, 1, 400, flags=F.PENDING), 1)
    res = ledger.create_transfers([
        Transfer(3, 0, 0, 0, flags=F.POST_PENDING | F.LINKED, pending_id=2),
        Transfer(4, 2, 1, 300, flags=F.PENDING | F.LINKED, timeout_us=10),
        Transfer(5, 99, 1, 1),
    ], 2)
    assert res.failures()[-1] == (2, R.DEBIT_ACCOUNT_NOT_FOUND)
    assert ledger.pending_state(2) is PendingState.PENDING
    assert ledger.pending_state(4) is None
    assert ledger.balance(2).available_fen == 600
    assert ledger.expire_pending(100) == []
    ledger.check_invariants()


def test_history_and_lookup() -> None:
    ledger = make_ledger()
    ledger.create_transfers([Transfer(1, 1, 2, 100), Transfer(2, 1, 3, 200),
                             Transfer(3, 2, 1, 50)], 5)
    hist = ledger.history(2)
    assert [r.transfer.id for r in hist] == [1, 3]
    assert hist[0].timestamp_us == 5
    rec = ledger.lookup_transfer(2)
    assert rec is not None and rec.transfer.amount_fen == 200


def test_account_creation_results() -> None:
    ledger = make_ledger()
    res = ledger.create_accounts([
        Account(2, 1, NormalSide.CREDIT, MNO),
        Account(2, 1, NormalSide.DEBIT),
        Account(0, 1),
        Account(30, 9),
        Account(31, 1, overdraft_limit_fen=-1),
    ])
    assert res == [AccountResult.EXISTS, AccountResult.EXISTS_WITH_DIFFERENT_FIELDS,
                   AccountResult.ID_OUT_OF_RANGE, AccountResult.BOOK_NOT_FOUND,
                   AccountResult.OVERDRAFT_LIMIT_NEGATIVE]


def test_timestamps_never_go_back() -> None:
    ledger = make_ledger()
    ledger.create_transfer(Transfer(1, 1, 2, 1), 10)
    with pytest.raises(ValueError, match="before the last batch"):
        ledger.create_transfer(Transfer(2, 1, 2, 1), 9)


# ---------------------------------------------------------------- model-based properties


class Model:
    """An independent, naive statement of the rules (dicts, one transfer at a time)."""

    def __init__(self, ledger: Ledger) -> None:
        self.acc = {a: ledger.account(a) for a in (1, 2, 3, 4, 10)}
        self.bal = {a: [0, 0, 0, 0] for a in self.acc}  # dp, dpo, cp, cpo
        self.transfers: dict[int, Transfer] = {}
        self.pending: dict[int, str] = {}

    def apply(self, t: Transfer) -> R:
        if t.id in self.transfers:
            old = self.transfers[t.id]
            return R.EXISTS if old == t else R.EXISTS_WITH_DIFFERENT_AMOUNT  # class, not cause
        if t.flags & F.POST_PENDING or t.flags & F.VOID_PENDING:
            p = self.transfers.get(t.pending_id)
            if p is None or not p.flags & F.PENDING:
                return R.PENDING_TRANSFER_NOT_FOUND
            if self.pending[p.id] != "pending":
                return R.PENDING_TRANSFER_ALREADY_POSTED
            amount = t.amount_fen or p.amount_fen
            if amount > p.amount_fen or (t.flags & F.VOID_PENDING and amount != p.amount_fen):
                return R.PENDING_TRANSFER_EXCEEDED
            self.bal[p.debit_account_id][0] -= p.amount_fen
            self.bal[p.credit_account_id][2] -= p.amount_fen
            if t.flags & F.POST_PENDING:
                self.bal[p.debit_account_id][1] += amount
                self.bal[p.credit_account_id][3] += amount
                self.pending[p.id] = "posted"
            else:
                self.pending[p.id] = "voided"
            self.transfers[t.id] = t
            return R.OK
        d, c = self.acc.get(t.debit_account_id), self.acc.get(t.credit_account_id)
        if d is None or c is None or d.book != c.book or d.id == c.id:
            return R.DEBIT_ACCOUNT_NOT_FOUND
        db, cb = self.bal[d.id], self.bal[c.id]
        if d.flags & MNO and d.normal is NormalSide.CREDIT and \
                db[3] - db[1] - db[0] - t.amount_fen < -d.overdraft_limit_fen:
            return R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
        if c.flags & MNO and c.normal is NormalSide.DEBIT and \
                cb[1] - cb[3] - cb[2] - t.amount_fen < -c.overdraft_limit_fen:
            return R.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS
        slot = 0 if t.flags & F.PENDING else 1
        db[slot] += t.amount_fen
        cb[slot + 2] += t.amount_fen
        if t.flags & F.PENDING:
            self.pending[t.id] = "pending"
        self.transfers[t.id] = t
        return R.OK


def _same_class(a: R, b: R) -> bool:
    """The model names failure classes, not every cause: compare done / not done, and
    the insufficient-funds side exactly."""
    if a.done or b.done:
        return a == b
    funds = {R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS, R.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS}
    return (a in funds) == (b in funds) and (a not in funds or a == b)


accounts = st.sampled_from([1, 2, 3, 4, 10])
plain = st.builds(lambda i, d, c, a: Transfer(i, d, c, a), st.integers(1, 40), accounts,
                  accounts, st.integers(1, 3000))
pending = st.builds(lambda i, d, c, a: Transfer(i, d, c, a, flags=F.PENDING),
                    st.integers(1, 40), accounts, accounts, st.integers(1, 3000))
phase2 = st.builds(lambda i, p, a, post: Transfer(i, 0, 0, a, pending_id=p, flags=(
    F.POST_PENDING if post else F.VOID_PENDING)), st.integers(1, 40), st.integers(1, 40),
    st.integers(0, 3000), st.booleans())
batches = st.lists(st.lists(st.one_of(plain, plain, pending, phase2), max_size=12), max_size=8)


@settings(max_examples=300, deadline=None)
@given(batches)
def test_ledger_agrees_with_model_and_conserves_money(batch_list: list[list[Transfer]]) -> None:
    ledger = make_ledger()
    exact = make_ledger(vectorise=False)
    model = Model(ledger)
    for ts, batch in enumerate(batch_list):
        # columns (vector path with exact fallback) vs a list of objects (small exact path)
        res = ledger.create_transfers(TransferBatch.from_transfers(batch), ts)
        res_exact = exact.create_transfers(batch, ts)
        assert list(res.codes) == list(res_exact.codes)
        for i, t in enumerate(batch):
            assert _same_class(res[i], model.apply(t)), (i, t, res[i])
        ledger.check_invariants()  # every book zero, no account past its limit
    for a in (1, 2, 3, 4, 10):
        b = ledger.balance(a)
        assert [b.debits_pending_fen, b.debits_posted_fen, b.credits_pending_fen,
                b.credits_posted_fen] == model.bal[a]
    assert ledger.state_hash() == exact.state_hash()
    # money is conserved: the book's totals net to zero on both phases
    assert ledger.book_totals()[1] == (0, 0)


linked = st.builds(lambda i, d, c, a, p: Transfer(i, d, c, a, flags=F.LINKED | (
    F.PENDING if p else F.NONE)), st.integers(1, 40), accounts, accounts,
    st.integers(1, 3000), st.booleans())
chains = st.lists(st.lists(st.one_of(plain, pending, phase2, linked, linked), max_size=10),
                  max_size=8)


@settings(max_examples=200, deadline=None)
@given(chains)
def test_small_object_path_equals_column_path(batch_list: list[list[Transfer]]) -> None:
    """Lists of a few transfer objects skip the numpy columns: same codes, same state."""
    small, columns = make_ledger(), make_ledger(vectorise=False)
    for ts, batch in enumerate(batch_list):
        got = small.create_transfers(batch, ts)
        want = columns.create_transfers(TransferBatch.from_transfers(batch), ts)
        assert list(got.codes) == list(want.codes), batch
        small.check_invariants()
    assert small.state_hash() == columns.state_hash()


long_chains = st.lists(st.lists(st.one_of(plain, pending, phase2, linked, linked),
                                max_size=40), max_size=5)


@settings(max_examples=150, deadline=None)
@given(long_chains)
def test_tuples_of_any_length_equal_the_column_path(batch_list: list[list[Transfer]]) -> None:
    """``create_transfer_tuples`` (the engine's postings: (id, debit, credit, amount,
    flags)), a few on the small path, more (a netting session's linked chain) straight
    into a column batch, give the codes and the state of the column path of objects."""
    tuples, columns = make_ledger(), make_ledger(vectorise=False)
    for ts, batch in enumerate(batch_list):
        rows = [(t.id, t.debit_account_id, t.credit_account_id, t.amount_fen, int(t.flags))
                for t in batch]
        got = tuples.create_transfer_tuples(rows, ts)
        want = columns.create_transfers(TransferBatch.from_transfers(
            [Transfer(*row[:4], F(row[4])) for row in rows]), ts)
        assert list(got.codes) == list(want.codes), rows
        tuples.check_invariants()
    assert tuples.state_hash() == columns.state_hash()


@settings(max_examples=200, deadline=None)
@given(chains)
def test_one_row_path_equals_column_path(batch_list: list[list[Transfer]]) -> None:
    """``create_transfer_row`` (the bank tier's reservations, posts and voids, one at a
    time) gives the codes and the state of the column path, transfer by transfer."""
    rows, columns = make_ledger(), make_ledger(vectorise=False)
    ts = 0
    for batch in batch_list:
        for t in batch:
            if t.flags & F.LINKED:
                continue  # a chain needs a batch: the one-row path refuses it
            ts += 1
            got = rows.create_transfer_row(t.id, t.debit_account_id, t.credit_account_id,
                                           t.amount_fen, int(t.flags), t.pending_id, ts)
            want = columns.create_transfers(TransferBatch.from_transfers([t]), ts)
            assert got is want[0], t
            rows.check_invariants()
    assert rows.state_hash() == columns.state_hash()


@settings(max_examples=150, deadline=None)
@given(batches)
def test_retrying_a_batch_is_idempotent(batch_list: list[list[Transfer]]) -> None:
    """A client that resends every batch (lost acknowledgement) never moves money twice:
    every transfer done the first time answers EXISTS, and balances move only by the
    transfers that newly succeed on the retry."""
    ledger = make_ledger()
    for ts, batch in enumerate(batch_list):
        first = ledger.create_transfers(batch, ts)
        before = {a: ledger.balance(a) for a in (1, 2, 3, 4, 10)}
        retry = ledger.create_transfers(batch, ts)
        done_ids = {t.id for i, t in enumerate(batch) if first[i] is R.OK}
        newly = [t for i, t in enumerate(batch) if retry[i] is R.OK]
        for i, t in enumerate(batch):
            if first[i] is R.OK and all(u.id != t.id for u in batch[:i]):
                assert retry[i] is R.EXISTS
        assert not {t.id for t in newly} & done_ids
        if not newly:
            assert {a: ledger.balance(a) for a in before} == before
        ledger.check_invariants()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 300), st.booleans())
def test_vector_path_equals_exact_path_on_large_batches(seed: int, n: int, guard: bool) -> None:
    rng = np.random.default_rng(seed)
    limits = rng.integers(0, 3, 21) * 100
    fast, slow = Ledger(), Ledger(vectorise=False)
    for ledger in (fast, slow):
        ledger.create_book(1, "PBOC")
        ledger.create_accounts([Account(i, 1, NormalSide(i % 2),
                                        MNO if guard and i % 3 else AccountFlags.NONE,
                                        overdraft_limit_fen=int(limits[i]))
                                for i in range(1, 21)])
    next_id = 1
    for ts in range(3):
        dr = rng.integers(1, 21, n)
        cr = rng.integers(1, 21, n)
        ids = np.arange(next_id, next_id + n)
        if seed % 5 == 0:
            rng.shuffle(ids)
        next_id += n
        batch = TransferBatch.of(ids, dr, cr, rng.integers(1, 500, n))
        assert list(fast.create_transfers(batch, ts).codes) == list(
            slow.create_transfers(batch, ts).codes)
    assert fast.state_hash() == slow.state_hash()
    fast.check_invariants()


def test_snapshot_round_trip_continues_identically() -> None:
    ledger = make_ledger()
    ledger.create_transfers([Transfer(1, 1, 2, 1000), Transfer(5, 2, 1, 100, flags=F.PENDING,
                                                               timeout_us=1000),
                             Transfer(3, 1, 3, 10)], 1)
    restored = Ledger.from_bytes(ledger.to_bytes())
    assert restored.state_hash() == ledger.state_hash()
    nxt = [Transfer(2, 1, 2, 7), Transfer(4, 0, 0, 0, flags=F.POST_PENDING, pending_id=5)]
    assert list(ledger.create_transfers(nxt, 2).codes) == list(
        restored.create_transfers(nxt, 2).codes)
    assert restored.state_hash() == ledger.state_hash()
    assert restored.lookup_transfer(3) is not None


timed = st.builds(lambda i, d, c, a, t: Transfer(i, d, c, a, flags=F.PENDING, timeout_us=t),
                  st.integers(1, 60), accounts, accounts, st.integers(1, 3000),
                  st.integers(1, 3))
queries = st.sampled_from(["count", "lookup", "history", "since", "totals", "none", "none"])
steps = st.lists(st.tuples(
    st.lists(st.one_of(plain, pending, phase2, linked, timed), max_size=6), st.booleans(),
    queries, st.integers(1, 60)), max_size=25)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the same patch
@given(steps)
def test_deferred_tail_reads_like_written_columns(
        monkeypatch: pytest.MonkeyPatch, plan: list[tuple[list[Transfer], bool, str, int]]
) -> None:
    """The small path keeps its new rows and touched balances out of the columns until
    the tail is full (made 3 here): whatever is asked in between (counts, balances,
    look-ups, histories, totals, expiry, a column batch) answers as a ledger that writes
    everything at once."""
    import qingsuan.ledger.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", 3)
    deferred, written = make_ledger(), make_ledger(vectorise=False)
    for ts, (batch, as_columns, query, tid) in enumerate(plan):
        if as_columns:  # the column path flushes the tail first
            got = deferred.create_transfers(TransferBatch.from_transfers(batch), ts)
        else:
            got = deferred.create_transfers(batch, ts)
        want = written.create_transfers(TransferBatch.from_transfers(batch), ts)
        assert list(got.codes) == list(want.codes), batch
        assert deferred.transfer_count == written.transfer_count
        if query == "lookup":  # the batch's own ids: the rows most likely in the tail
            for t in [*batch, Transfer(tid, 1, 2, 1)]:
                assert deferred.lookup_transfer(t.id) == written.lookup_transfer(t.id)
        elif query == "history":
            assert deferred.history(2) == written.history(2)
        elif query == "since":
            since = max(0, written.transfer_count - tid % 5)
            assert deferred.transfers_since(since) == written.transfers_since(since)
        elif query == "totals":  # a snapshot mid-way, and the books
            assert Ledger.from_bytes(deferred.to_bytes()).state_hash() == \
                written.state_hash()
            assert deferred.book_totals() == written.book_totals()
            deferred.check_invariants()
        for a in (1, 2, 3, 4, 10):
            assert deferred.balance(a) == written.balance(a)
            assert deferred.available_fen(a) == written.available_fen(a) == \
                written.balance(a).available_fen
    assert deferred.state_hash() == written.state_hash()
    with pytest.raises(KeyError):
        deferred.available_fen(99)
    assert Ledger.from_bytes(deferred.to_bytes()).state_hash() == written.state_hash()


def test_a_timestamp_beyond_64_bits_is_refused_at_once() -> None:
    """Rows wait in the tail before the int64 columns: the ledger refuses a time that would
    not fit before it applies anything (not later, at the flush)."""
    ledger = make_ledger()
    with pytest.raises(ValueError, match="64 bits"):
        ledger.create_transfers([Transfer(1, 1, 2, 100)], 2**63)
    assert ledger.transfer_count == 0 and ledger.lookup_transfer(1) is None
    assert ledger.create_transfers([Transfer(1, 1, 2, 100)], 5)[0] is R.OK


# --- the exact path's tail against a ledger that writes its columns after every batch

TAIL_ACCOUNTS = (1, 2, 3, 4, 10, 11)


def _ledger() -> Ledger:
    """make_ledger's world and a debit-normal account 11 in book 2."""
    ledger = Ledger()
    ledger.create_book(1, "A")
    ledger.create_book(2, "B")
    ledger.create_accounts([
        Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.CREDIT, MNO),
        Account(3, 1, NormalSide.CREDIT, MNO, overdraft_limit_fen=5000),
        Account(4, 1, NormalSide.DEBIT, MNO), Account(10, 2, NormalSide.CREDIT),
        Account(11, 2, NormalSide.DEBIT)])
    return ledger


class _Pair:
    """A ledger with a long tail (nothing flushed until read) beside one that writes its
    columns at the end of every batch (the behaviour before the tail, _TAIL_ROWS = 0);
    every call goes to both with the module's tail size set for each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mp = monkeypatch
        self.deferred, self.written = _ledger(), _ledger()

    def both(self, call: Callable[[Ledger], Any]) -> Any:
        self.mp.setattr(ledger_module, "_TAIL_ROWS", 10**9)
        got = call(self.deferred)
        self.mp.setattr(ledger_module, "_TAIL_ROWS", 0)
        want = call(self.written)
        assert _plain(got) == _plain(want)
        for a in TAIL_ACCOUNTS:
            assert self.deferred.balance(a) == self.written.balance(a)
        assert self.deferred.transfer_count == self.written.transfer_count
        return got

    def post(self, transfers: list[Transfer], ts: int) -> list[R]:
        return list(self.both(lambda led: led.create_transfers(transfers, ts)))

    def same_state(self) -> None:
        assert self.deferred.state_hash() == self.written.state_hash()


def _plain(value: Any) -> Any:
    if hasattr(value, "codes"):
        return [int(c) for c in value.codes]
    return value


def test_linked_chain_fails_inside_the_monotone_prefix_held_in_the_tail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(1, 1, 2, 100), Transfer(2, 1, 2, 100)], 1) == [R.OK] * 2
    assert pair.deferred._buffer, "rows stay in the tail"
    # a chain extends the prefix by one row, then fails: the prefix's last id comes back
    # from the tail (row 1, id 2)
    codes = pair.post([Transfer(3, 1, 2, 50, F.LINKED), Transfer(4, 2, 1, 10**6)], 2)
    assert codes == [R.LINKED_EVENT_FAILED, R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS]
    assert pair.deferred._mono_last_id == 2
    assert pair.post([Transfer(3, 1, 2, 7)], 3) == [R.OK]  # id 3 is free again
    assert pair.both(lambda led: led.lookup_transfer(3)).transfer.amount_fen == 7
    pair.same_state()


def test_pending_in_the_tail_posted_voided_and_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(1, 1, 2, 1000)], 1) == [R.OK]
    assert pair.post([Transfer(10, 2, 1, 300, F.PENDING),
                      Transfer(11, 2, 1, 200, F.PENDING, timeout_us=5),
                      Transfer(12, 2, 1, 100, F.PENDING, timeout_us=2)], 2) == [R.OK] * 3
    # post and void while the pending rows are still in the tail
    assert pair.post([Transfer(20, 0, 0, 0, F.POST_PENDING, pending_id=10),
                      Transfer(21, 0, 0, 0, F.VOID_PENDING, pending_id=10)], 3) == \
        [R.OK, R.PENDING_TRANSFER_ALREADY_POSTED]
    # 12 expires at 4 while its row is in the tail; 11 at 7 by a clock tick
    assert pair.post([Transfer(22, 0, 0, 0, F.POST_PENDING, pending_id=12)], 4) == \
        [R.PENDING_TRANSFER_EXPIRED]
    assert pair.both(lambda led: led.advance_time(7)) == [11]
    assert pair.both(lambda led: led.pending_state(11)) is PendingState.EXPIRED
    pair.same_state()
    pair.deferred.check_invariants()


def test_duplicates_of_rows_in_the_tail_and_a_column_batch_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(5, 1, 2, 100), Transfer(3, 1, 2, 100, code=7)], 1) == [R.OK] * 2
    assert pair.post([Transfer(5, 1, 2, 100), Transfer(5, 1, 2, 101),
                      Transfer(3, 1, 2, 100, code=8)], 2) == \
        [R.EXISTS, R.EXISTS_WITH_DIFFERENT_AMOUNT, R.EXISTS_WITH_DIFFERENT_CODE]
    # a column batch (vector path, monotone ids) after small batches: flushed first
    batch = TransferBatch.from_transfers([Transfer(100 + i, 1, 2, 1) for i in range(40)])
    assert pair.both(lambda led: led.create_transfers(batch, 3)).all_done
    assert pair.post([Transfer(5, 1, 2, 100)], 4) == [R.EXISTS]
    assert pair.both(lambda led: led.history(2)) == pair.written.history(2)
    pair.same_state()


def test_snapshot_in_the_middle_of_a_tail_continues_identically(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    pair.post([Transfer(1, 1, 2, 500), Transfer(2, 2, 1, 100, F.PENDING, timeout_us=3)], 1)
    assert pair.deferred._buffer
    restored = Ledger.from_bytes(pair.deferred.to_bytes())
    assert restored.state_hash() == pair.written.state_hash()
    nxt = [Transfer(3, 0, 0, 0, F.POST_PENDING, pending_id=2), Transfer(4, 1, 2, 1)]
    assert list(restored.create_transfers(nxt, 2).codes) == \
        pair.post(nxt, 2)
    assert restored.state_hash() == pair.written.state_hash()


tail_ids = st.integers(1, 30)
tail_acc = st.sampled_from(TAIL_ACCOUNTS)
tail_transfer = st.one_of(
    st.builds(lambda i, d, c, a, link: Transfer(i, d, c, a, F.LINKED if link else F.NONE),
              tail_ids, tail_acc, tail_acc, st.integers(1, 3000), st.booleans()),
    st.builds(lambda i, d, c, a, t: Transfer(i, d, c, a, F.PENDING, timeout_us=t),
              tail_ids, tail_acc, tail_acc, st.integers(1, 3000), st.integers(0, 4)),
    st.builds(lambda i, p, a, post: Transfer(i, 0, 0, a, pending_id=p, flags=(
        F.POST_PENDING if post else F.VOID_PENDING)), tail_ids, tail_ids, st.integers(0, 3000),
        st.booleans()))


def _columns(batch: TransferBatch, ts: int, led: Ledger) -> Any:
    return led.create_transfers(batch, ts)


def _tick(ts: int, led: Ledger) -> list[int]:
    return led.advance_time(ts)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(tail_transfer, max_size=5), st.integers(0, 2),
                          st.sampled_from(["small", "columns", "tick", "snapshot"])),
                max_size=30))
def test_long_tail_equals_flushing_every_batch(
        monkeypatch: pytest.MonkeyPatch, plan: list[tuple[list[Transfer], int, str]]) -> None:
    pair = _Pair(monkeypatch)
    ts = 0
    for batch, step, how in plan:
        ts += step
        if how == "columns":
            columns = TransferBatch.from_transfers(batch)
            pair.both(functools.partial(_columns, columns, ts))
        else:
            pair.post(batch, ts)
        if how == "tick":
            ts += 1
            pair.both(functools.partial(_tick, ts))
        elif how == "snapshot":
            restored = Ledger.from_bytes(pair.deferred.to_bytes())
            assert restored.state_hash() == pair.written.state_hash()
    pair.same_state()


# ---------------------------------------------------------------- history retention


def _history_pair(block: int) -> tuple[Ledger, Ledger]:
    """The same book twice with small digest blocks: one keeps every transfer row, the
    other keeps only the last blocks and the pending transfers."""
    kept, forgetful = make_ledger(), make_ledger()
    for ledger in (kept, forgetful):
        ledger.history_block_rows = block
    forgetful.keep_history = False
    return kept, forgetful


def _totals(ledger: Ledger) -> list[tuple[int, int, int, int]]:
    return [(b.debits_pending_fen, b.debits_posted_fen, b.credits_pending_fen,
             b.credits_posted_fen) for b in map(ledger.balance, (1, 2, 3, 4, 10))]


# one body per id, so that a retried id is always the same transfer (a retry with another
# body is where the two may differ: see the test after)
funding = st.builds(lambda i, c, a: Transfer(i, 1, c, a), st.integers(1, 60),
                   st.sampled_from([2, 3]), st.integers(1, 3000))
catalog = st.lists(st.one_of(plain, funding, funding, pending, phase2, linked, timed),
                   min_size=60, max_size=60).map(lambda ts: {i + 1: Transfer(i + 1, *(
                       t.debit_account_id, t.credit_account_id, t.amount_fen, t.flags,
                       t.pending_id if t.pending_id != i + 1 else 0, t.timeout_us))
                       for i, t in enumerate(ts)})
history_plan = st.tuples(catalog, st.integers(1, 4), st.lists(st.tuples(
    st.lists(st.integers(1, 60), max_size=8), st.booleans(), st.booleans()), min_size=4,
    max_size=30))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # the same patch
@given(history_plan)
def test_without_the_history_balances_codes_and_state_hash_are_the_same(
        monkeypatch: pytest.MonkeyPatch,
        plan: tuple[dict[int, Transfer], int, list[tuple[list[int], bool, bool]]]) -> None:
    """A ledger that forgets the rows of its digested blocks answers every batch with the
    same codes, holds the same balances and hashes to the same state as one that keeps
    them all, also across a snapshot taken after rows were forgotten; it holds fewer.
    (The small path's tail is written every 2 rows, so that blocks fill from it too.)"""
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", 2)
    transfers, block, batches = plan
    kept, forgetful = _history_pair(block)
    for ts, (ids, as_columns, snapshot) in enumerate(batches):
        batch = [transfers[i] for i in ids]
        args: Any = TransferBatch.from_transfers(batch) if as_columns and batch else batch
        assert list(kept.create_transfers(args, ts).codes) == list(
            forgetful.create_transfers(args, ts).codes), batch
        if snapshot:
            forgetful = Ledger.from_bytes(forgetful.to_bytes())
            forgetful.keep_history = False
        assert _totals(forgetful) == _totals(kept)
        forgetful.check_invariants()
    assert forgetful.state_hash() == kept.state_hash()
    assert forgetful.transfer_count == kept.transfer_count
    assert forgetful.held_transfer_count <= kept.held_transfer_count
    for tid in transfers:  # the pending transfers are still there to post or void
        if forgetful.pending_state(tid) is PendingState.PENDING:
            assert forgetful.lookup_transfer(tid) == kept.lookup_transfer(tid)


def test_a_long_history_is_forgotten_by_blocks_and_hashes_the_same() -> None:
    """10,000 column transfers in blocks of 64: the forgetful ledger holds under three
    blocks of rows plus its pending reservation, hashes like the one that keeps them,
    still refuses a retry of a forgotten transfer (EXISTS: nothing moves), still posts
    a reservation made before everything else was forgotten, and a snapshot of it goes on
    identically."""
    kept, forgetful = _history_pair(64)
    for ledger in (kept, forgetful):
        ledger.create_transfers([Transfer(1, 1, 2, 500, flags=F.PENDING)], 1)
        for k in range(100):
            ids = np.arange(2 + 100 * k, 102 + 100 * k)
            ledger.create_transfers(TransferBatch.of(
                ids, np.ones(100, np.int64), np.full(100, 2 + k % 2), np.full(100, 7)),
                2 + k)
    assert forgetful.state_hash() == kept.state_hash()
    assert forgetful.transfer_count == kept.transfer_count == 10_001
    assert forgetful.held_transfer_count < 3 * 64 + 100 + 1 < kept.held_transfer_count
    assert forgetful.lookup_transfer(50) is None and kept.lookup_transfer(50) is not None
    before = _totals(forgetful)
    retry = [Transfer(50, 1, 2, 7), Transfer(51, 1, 3, 999)]  # the second: another body
    assert [forgetful.create_transfer(t, 200) for t in retry] == [R.EXISTS, R.EXISTS]
    assert kept.create_transfers(retry, 200).codes.tolist() == [
        R.EXISTS, R.EXISTS_WITH_DIFFERENT_ACCOUNTS]
    assert _totals(forgetful) == before
    snap = Ledger.from_bytes(forgetful.to_bytes())
    post = [Transfer(20_000, 0, 0, 0, flags=F.POST_PENDING, pending_id=1)]
    for ledger in (kept, forgetful, snap):
        assert ledger.create_transfers(post, 300).codes.tolist() == [R.OK]
        assert ledger.balance(2).credits_posted_fen == 500 + 50 * 700
    assert snap.state_hash() == forgetful.state_hash() == kept.state_hash()
    assert len(forgetful.history(2)) < len(kept.history(2))


def test_balance_columns_read_as_one_balance_at_a_time() -> None:
    """posted_columns answers what balance() answers, for every account at once, with
    reservations and the small path's unwritten tail included."""
    ledger = make_ledger()
    ledger.create_transfers([Transfer(1, 1, 2, 10_000), Transfer(2, 2, 3, 2_500),
                             Transfer(3, 3, 4, 700, flags=F.PENDING),
                             Transfer(4, 2, 1, 300, flags=F.PENDING)], 1)
    ledger.create_transfers([Transfer(5, 10, 10, 1)], 2)  # refused: nothing moves
    ids = [1, 2, 3, 4, 10]
    posted, available = ledger.posted_columns(ids)
    assert posted.tolist() == [ledger.balance(a).posted_fen for a in ids]
    assert available.tolist() == [ledger.balance(a).available_fen for a in ids]
    assert available.tolist() != posted.tolist()
    with pytest.raises(KeyError):
        ledger.posted_columns([99])


def test_a_stale_expiry_of_a_forgotten_row_is_skipped() -> None:
    """A timed reservation rolled back with its chain leaves an expiry entry naming its
    row; the row goes to another transfer, the id to a new reservation, and the row is then
    forgotten: when the stale entry comes due nothing happens (the new reservation expires
    at its own time), as in the ledger that keeps everything."""
    kept, forgetful = _history_pair(2)
    chain = [Transfer(10, 1, 2, 5, flags=F.LINKED | F.PENDING, timeout_us=100),
             Transfer(11, 2, 2, 1)]
    later = [Transfer(20, 1, 2, 1), Transfer(10, 1, 2, 5, flags=F.PENDING, timeout_us=1000)]
    for ledger in (kept, forgetful):
        assert ledger.create_transfers(chain, 1).codes.tolist() == [
            R.LINKED_EVENT_FAILED, R.ACCOUNTS_MUST_BE_DIFFERENT]
        assert ledger.create_transfers(later, 2).all_done
        for k in range(3):
            ledger.create_transfers(TransferBatch.of(
                np.arange(100 + 10 * k, 110 + 10 * k), np.ones(10, np.int64),
                np.full(10, 3), np.full(10, 1)), 3 + k)
        ledger.advance_time(500)  # the stale entry (1 + 100) is due, the new one is not
        assert ledger.pending_state(10) is PendingState.PENDING
        ledger.advance_time(1_100)
        assert ledger.pending_state(10) is PendingState.EXPIRED
    assert forgetful.lookup_transfer(20) is None and kept.lookup_transfer(20) is not None
    assert forgetful.state_hash() == kept.state_hash()


def test_account_totals_kept_as_a_block_grow_and_snapshot_as_columns() -> None:
    """The four totals live side by side in one 2-D block (a row read or written at
    once): the ledger grows past its first capacity with every balance kept, and its
    columns, state hash and snapshot are those of plain columns."""
    ledger = Ledger()
    ledger.create_book(1, "A")
    n = 3000  # past the account columns' first capacity (1024), twice
    ledger.create_accounts([Account(1, 1, NormalSide.DEBIT)] + [
        Account(i, 1, NormalSide.CREDIT) for i in range(2, n + 1)])
    for i in range(2, n + 1):
        ledger.create_transfer_row(i, 1, i, i, int(F.PENDING) if i % 3 == 0 else 0, 0, i)
    ledger._flush_tail()
    acc = ledger._acc
    for name in ("dp", "dpo", "cp", "cpo"):
        assert np.shares_memory(acc.view(name), acc.block)
    assert ledger.balance(2).posted_fen == 2 and ledger.balance(3).posted_fen == 0
    assert acc.view("cp")[2] == 3 and acc.view("dpo")[0] == sum(
        i for i in range(2, n + 1) if i % 3)
    copy = Ledger.from_bytes(ledger.to_bytes())
    assert copy.state_hash() == ledger.state_hash()
    for i in (1, 2, 3, n):
        assert copy.balance(i) == ledger.balance(i)
    ledger.check_invariants()
