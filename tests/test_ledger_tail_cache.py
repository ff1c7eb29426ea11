"""The balances the exact path's tail wrote into the columns are kept in Python
(Ledger._clean) for the next tail to take without a numpy read: every path that writes
the columns some other way (the vector path, an expiry) must leave the kept copy behind,
and every read must see what the columns hold."""

from __future__ import annotations

import pytest

import qingsuan.ledger.ledger as ledger_module
from qingsuan.ledger import Account, AccountFlags, Ledger, NormalSide, TransferBatch
from qingsuan.ledger import TransferResult as R

MNO = AccountFlags.MUST_NOT_OVERDRAW
PENDING = 2


def _ledger() -> Ledger:
    ledger = Ledger()
    ledger.create_book(1, "ICBC")
    ledger.create_accounts([Account(1, 1, NormalSide.DEBIT)])
    ledger.create_account_range(10, 5, 1, NormalSide.CREDIT, MNO)
    return ledger


def _totals(ledger: Ledger, account_id: int) -> tuple[int, int, int, int]:
    b = ledger.balance(account_id)
    return (b.debits_pending_fen, b.debits_posted_fen, b.credits_pending_fen,
            b.credits_posted_fen)


@pytest.mark.parametrize("tail", [1, 2, 256])
def test_a_vector_batch_after_the_tail_is_seen_by_the_next_tail(
        tail: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", tail)
    ledger = _ledger()
    assert ledger.create_transfer_row(1, 1, 10, 1_000, 0, 0, 1) is R.OK
    ledger._flush_tail()
    assert ledger._clean, "the written balances are kept"
    # 10 pays 900 of its 1,000 through the vector path (columns written directly)
    n = 45  # 20 each
    batch = TransferBatch.of(list(range(100, 100 + n)), [10] * n, [11] * n, [900 // n] * n)
    assert ledger.create_transfers(batch, 2).all_done
    # the tail must see 100 left, not the 1,000 it wrote
    assert ledger.create_transfer_row(2, 10, 12, 101, 0, 0, 3) is \
        R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    assert ledger.create_transfer_row(3, 10, 12, 100, 0, 0, 3) is R.OK
    assert ledger.available_fen(10) == 0 and ledger.posted_fen(10) == 0
    ledger.check_invariants()


@pytest.mark.parametrize("tail", [1, 2, 256])
def test_an_expiry_after_the_tail_is_seen_by_the_next_tail(
        tail: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", tail)
    ledger = _ledger()
    assert ledger.create_transfer_row(1, 1, 10, 1_000, 0, 0, 1) is R.OK
    # 10 reserves 800 for 5 us (a timeout needs the batch path), then the tail touches it
    reserve = TransferBatch.of([2], [10], [11], [800], [PENDING], None, [5])
    assert ledger.create_transfers(reserve, 2).all_done
    assert ledger.create_transfer_row(3, 1, 10, 1, 0, 0, 3) is R.OK
    ledger._flush_tail()
    assert _totals(ledger, 10) == (800, 0, 0, 1_001)
    # the expiry voids the reservation in the columns; the tail must see 1,001 free
    assert ledger.create_transfer_row(4, 10, 12, 1_001, 0, 0, 10) is R.OK
    assert _totals(ledger, 10) == (0, 1_001, 0, 1_001)
    assert _totals(ledger, 11) == (0, 0, 0, 0)
    ledger.check_invariants()
    loaded = Ledger.from_bytes(ledger.to_bytes())
    assert _totals(loaded, 10) == _totals(ledger, 10)


def test_the_kept_balances_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "_TAIL_ROWS", 1)
    monkeypatch.setattr(ledger_module, "_CLEAN_ROWS", 2)
    ledger = _ledger()
    for k in range(5):
        assert ledger.create_transfer_row(1 + k, 1, 10 + k, 100, 0, 0, 1) is R.OK
        assert len(ledger._clean) <= 2
    assert [ledger.posted_fen(10 + k) for k in range(5)] == [100] * 5
    for k in range(5):  # a ring: each pays its 100 on
        assert ledger.create_transfer_row(10 + k, 10 + k, 10 + (k + 1) % 5, 100, 0, 0, 2) \
            is R.OK
    assert [ledger.posted_fen(10 + k) for k in range(5)] == [100] * 5
    ledger.check_invariants()


def test_the_tail_check_sums_exactly() -> None:
    """_flush_balances compares the debits and credits the tail moved by their exact sums:
    int64 sums of large totals would wrap."""
    import numpy as np

    rng = np.random.default_rng(7)
    big = 1 << 62
    values = rng.integers(-big, big, size=(1_000, 4), dtype=np.int64)
    values[:5] = [[big - 1, -big, 1, -1]] * 5
    values[5:10] = [[-(1 << 63), (1 << 63) - 1, 0, -(1 << 32)]] * 5
    exact = [sum(column) for column in values.T.tolist()]
    assert ledger_module._exact_column_sums(values) == exact
    assert ledger_module._exact_column_sums(values[:0]) == [0, 0, 0, 0]


def test_a_tail_whose_debits_and_credits_differ_is_refused() -> None:
    ledger = _ledger()
    assert ledger.create_transfer_row(1, 1, 10, 1_000, 0, 0, 1) is R.OK
    ledger._scratch[ledger._static(10)[0]][3] += 1  # a credit without its debit: a bug
    with pytest.raises(ledger_module.LedgerInvariantError):
        ledger._flush_tail()
