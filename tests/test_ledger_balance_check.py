"""The column path's whole-ledger comparison of debits and credits (an assertion in code):
still made, and made at once in a small ledger, but in a ledger of many accounts only once
the rows posted since the last one reach a share of the accounts (BALANCE_CHECK_RATIO), so
that its cost per row does not grow with the world."""

from __future__ import annotations

import pytest

from qingsuan.ledger import Ledger, LedgerInvariantError, Transfer
from qingsuan.ledger.ledger import BALANCE_CHECK_RATIO

#: more than the small-batch path takes: the column path
BATCH = 20


def _ledger(accounts: int) -> Ledger:
    ledger = Ledger()
    ledger.create_book(1, "ICBC")
    ledger.create_account_range(1, accounts, 1)
    return ledger


def _batch(first_id: int) -> list[Transfer]:
    return [Transfer(first_id + k, 1 + k, 2 + k, 100) for k in range(BATCH)]


def _corrupt(ledger: Ledger) -> None:
    """A debit posted on one side only, as a bug in a vector path would."""
    ledger.check_invariants()  # writes the tail: the columns hold every total
    ledger._acc.cols["dp"][0] += 1


def test_a_small_ledger_is_compared_after_every_batch() -> None:
    ledger = _ledger(100)
    assert ledger.create_transfers(_batch(1), 1).all_done
    _corrupt(ledger)
    with pytest.raises(LedgerInvariantError, match="debits and credits differ"):
        ledger.create_transfers(_batch(1_000), 2)


def test_a_large_ledger_is_compared_once_enough_rows_were_posted() -> None:
    accounts = 10_000
    ledger = _ledger(accounts)
    _corrupt(ledger)
    batches_before_check = -(-accounts // (BATCH * BALANCE_CHECK_RATIO))  # ceiling
    for k in range(batches_before_check - 1):
        assert ledger.create_transfers(_batch(1 + BATCH * k), 1 + k).all_done
    with pytest.raises(LedgerInvariantError, match="debits and credits differ"):
        ledger.create_transfers(_batch(1_000_000), 10_000)
