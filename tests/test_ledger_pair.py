"""The ledger's linked pair (``Ledger.create_transfer_pair``, ``Engine.post_pair``: a card's
issuer and acquirer legs) against the general small-batch path for the same chain of two:
the same codes, balances, stored rows and state, whichever leg fails and however."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qingsuan.ledger.ledger as ledger_module
from qingsuan.clock import VirtualClock
from qingsuan.engine import Engine
from qingsuan.ledger import (
    Account,
    AccountFlags,
    Ledger,
    NormalSide,
    Transfer,
    TransferFlags,
)
from qingsuan.ledger import TransferResult as R

MNO = AccountFlags.MUST_NOT_OVERDRAW
F = TransferFlags
#: 99 is no account
ACCOUNTS = (1, 2, 3, 4, 5, 10, 11)


def _ledger(keep_history: bool = True) -> Ledger:
    """Book 1: 1 a vault (debit-normal), 2 and 3 guarded customers (3 with a 50.00
    overdraft), 4 a guarded debit-normal mirror, 5 closed. Book 2: 10 and 11. A small
    largest amount, so that AMOUNT_TOO_LARGE happens. Without the history, blocks of 2
    rows: stored transfers are soon forgotten (a retry of one is EXISTS)."""
    ledger = Ledger(max_amount_fen=5_000, keep_history=keep_history, history_block_rows=2)
    ledger.create_book(1, "A")
    ledger.create_book(2, "B")
    ledger.create_accounts([
        Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.CREDIT, MNO),
        Account(3, 1, NormalSide.CREDIT, MNO, overdraft_limit_fen=5000),
        Account(4, 1, NormalSide.DEBIT, MNO),
        Account(5, 1, NormalSide.CREDIT, AccountFlags.CLOSED),
        Account(10, 2, NormalSide.CREDIT), Account(11, 2, NormalSide.DEBIT)])
    return ledger


account = st.sampled_from((*ACCOUNTS, 99))
tid = st.integers(0, 30)  # 0 is out of range; a small range retries stored ids
amount = st.sampled_from((0, 1, 700, 2500, 4999, 5000, 5001))
leg = st.tuples(tid, account, account, amount)
pair = st.tuples(leg, leg)
#: other traffic between the pairs: plain and pending transfers (some expiring), posts
#: and voids, so that ids are taken, funds move and reservations hold
other = st.one_of(
    st.builds(lambda i, d, c, a: Transfer(i, d, c, a), tid, account, account, amount),
    st.builds(lambda i, d, c, a, t: Transfer(i, d, c, a, flags=F.PENDING, timeout_us=t),
              st.integers(1, 30), account, account, amount, st.sampled_from((0, 1, 3))),
    st.builds(lambda i, p, a, post: Transfer(i, 0, 0, a, pending_id=p, flags=(
        F.POST_PENDING if post else F.VOID_PENDING)), st.integers(1, 30),
        st.integers(1, 30), amount, st.booleans()))
step = st.one_of(pair, pair, pair, st.lists(other, min_size=1, max_size=4))
plan = st.lists(st.tuples(step, st.integers(0, 2)), max_size=25)


def _same(a: Ledger, b: Ledger) -> None:
    for acc in ACCOUNTS:
        assert a.balance(acc) == b.balance(acc), acc
    assert a.transfer_count == b.transfer_count


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=plan, tail=st.sampled_from((1, 3, 256)), keep=st.booleans())
def test_pair_equals_the_small_batch_path(steps: list[tuple[Any, int]], tail: int,
                                          keep: bool, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Random pairs (either leg failing for any cause: unknown, closed or equal accounts,
    other books, amounts, insufficient funds, stored ids with the same or another body)
    between other traffic give the codes, the balances and the state hash of
    ``create_transfer_tuples`` for the same linked chain of two; the tail flushed often
    or seldom; with the history kept or forgotten."""
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", tail)
    paired, general = _ledger(keep), _ledger(keep)
    ts = 0
    for item, dt in steps:
        ts += dt
        if isinstance(item, list):
            got_codes = [int(c) for c in paired.create_transfers(item, ts).codes]
            want_codes = [int(c) for c in general.create_transfers(item, ts).codes]
        else:
            (i1, d1, c1, a1), (i2, d2, c2, a2) = item
            got = paired.create_transfer_pair(i1, d1, c1, a1, i2, d2, c2, a2, ts)
            want = general.create_transfer_tuples(
                [(i1, d1, c1, a1, int(F.LINKED)), (i2, d2, c2, a2, 0)], ts)
            got_codes, want_codes = list(got), [int(c) for c in want.codes]
        assert got_codes == want_codes, item
        _same(paired, general)
        # both: the check writes the tail, and without the history when rows are
        # forgotten (a retry's EXISTS or EXISTS_WITH_DIFFERENT_*) follows the writes
        paired.check_invariants()
        general.check_invariants()
    assert paired.state_hash() == general.state_hash()


def _pair_codes(ledger: Ledger, legs: tuple[tuple[int, int, int, int], ...], ts: int
                ) -> tuple[int, int]:
    (i1, d1, c1, a1), (i2, d2, c2, a2) = legs
    first, second = ledger.create_transfer_pair(i1, d1, c1, a1, i2, d2, c2, a2, ts)
    return int(first), int(second)


def test_a_failing_second_leg_takes_the_first_back() -> None:
    ledger = _ledger()
    # 1 -> 2 would pass; 2 -> 10 is in another book: the chain fails, 2 keeps nothing
    assert _pair_codes(ledger, ((1, 1, 2, 100), (2, 2, 10, 100)), 1) == (
        R.LINKED_EVENT_FAILED, R.ACCOUNTS_IN_DIFFERENT_BOOKS)
    assert ledger.balance(2).credits_posted_fen == 0
    assert ledger.transfer_count == 0
    # the ids are free again: the same first leg with a good second one is done
    assert _pair_codes(ledger, ((1, 1, 2, 100), (2, 2, 3, 100)), 2) == (R.OK, R.OK)
    assert ledger.balance(3).available_fen == 100
    # retried whole: both EXISTS; the customer cannot pay more than it has
    assert _pair_codes(ledger, ((1, 1, 2, 100), (2, 2, 3, 100)), 2) == (R.EXISTS, R.EXISTS)
    # 3 has 1.00 and a 50.00 overdraft: 40.00 once, not twice (the second leg not tried)
    assert _pair_codes(ledger, ((3, 3, 1, 4000), (4, 1, 2, 1)), 3) == (R.OK, R.OK)
    assert _pair_codes(ledger, ((5, 3, 1, 4000), (6, 1, 2, 1)), 3) == (
        R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS, R.LINKED_EVENT_FAILED)
    # the second leg short of funds: 2 (1.01) pays 1 fen more than it holds after the
    # first leg credited it 0.50: both taken back
    assert _pair_codes(ledger, ((7, 1, 2, 50), (8, 2, 1, 152)), 4) == (
        R.LINKED_EVENT_FAILED, R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS)
    assert ledger.balance(2).credits_posted_fen == 101
    assert ledger.transfer_count == 4


def test_a_failing_first_leg_leaves_the_second_untried() -> None:
    ledger = _ledger()
    assert _pair_codes(ledger, ((1, 5, 1, 100), (2, 1, 2, 100)), 1) == (
        R.DEBIT_ACCOUNT_CLOSED, R.LINKED_EVENT_FAILED)
    assert ledger.transfer_count == 0


def test_engine_post_pair_takes_the_ids_post_would() -> None:
    """Two engines, one posting pairs and one posting the same legs linked through
    ``post``: the same answers, derived ids and state."""
    engines = [Engine.open("memory:", VirtualClock(1_000_000)) for _ in range(2)]
    for engine in engines:
        engine.open_accounts([(1, "A")], [
            Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.CREDIT, MNO),
            Account(3, 1, NormalSide.CREDIT)])
    legs = [((1, 2, 500), (2, 3, 200)), ((2, 3, 400), (1, 3, 1)), ((3, 2, 100), (2, 1, 50))]
    for (d1, c1, a1), (d2, c2, a2) in legs:
        done = engines[0].post_pair(d1, c1, a1, d2, c2, a2)
        result = engines[1].post([(d1, c1, a1), (d2, c2, a2)], linked=True)
        assert done == result.all_done
        assert engines[0].next_derived_id() == engines[1].next_derived_id()
    assert engines[0].ledger.state_hash() == engines[1].ledger.state_hash()
    for engine in engines:
        engine.close()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=plan, tail=st.sampled_from((1, 3, 8)))
def test_balances_written_back_as_a_block_equal_writing_every_batch(
        steps: list[tuple[Any, int]], tail: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail's balances written back into the account columns' block, many accounts
    at once, give the columns of a ledger that writes them at the end of every batch."""
    held, written = _ledger(), _ledger()
    ts = 0
    for item, dt in steps:
        ts += dt
        for ledger, rows in ((held, tail), (written, 0)):
            monkeypatch.setattr(ledger_module, "_TAIL_ROWS", rows)
            if isinstance(item, list):
                ledger.create_transfers(item, ts)
            else:
                (i1, d1, c1, a1), (i2, d2, c2, a2) = item
                ledger.create_transfer_pair(i1, d1, c1, a1, i2, d2, c2, a2, ts)
        held._flush_tail()  # the columns read below, not the tail
        for name in ("dp", "dpo", "cp", "cpo"):
            assert held._acc.view(name).tolist() == written._acc.view(name).tolist()
    assert held.state_hash() == written.state_hash()


def test_a_retry_of_forgotten_rows_is_exists_on_both_paths(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the history a stored transfer's row is forgotten once its block is
    digested: a retry of it is EXISTS, body unseen, on the pair path as on the general."""
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", 1)
    paired, general = _ledger(keep_history=False), _ledger(keep_history=False)
    legs = [((2 * k - 1, 1, 2, 10), (2 * k, 1, 3, 10)) for k in range(1, 8)]
    legs += [((1, 1, 2, 10), (2, 1, 3, 10)), ((3, 1, 3, 99), (99, 1, 2, 1))]
    for ts, ((i1, d1, c1, a1), (i2, d2, c2, a2)) in enumerate(legs, 1):
        got = paired.create_transfer_pair(i1, d1, c1, a1, i2, d2, c2, a2, ts)
        want = general.create_transfer_tuples(
            [(i1, d1, c1, a1, int(F.LINKED)), (i2, d2, c2, a2, 0)], ts)
        assert list(got) == [int(c) for c in want.codes]
    assert list(got) == [R.EXISTS, R.OK]  # the first forgotten, the second new
    _same(paired, general)
    assert paired.state_hash() == general.state_hash()
