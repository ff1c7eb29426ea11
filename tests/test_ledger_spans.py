"""Accounts opened one after another (a range of generated customers) are found through
spans, not one dict entry each: every id lookup, EXISTS check, transfer and snapshot must
answer as if each account had its own entry. A property test compares random openings
with a plain dict of what was opened."""

from __future__ import annotations

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
    Transfer,
)
from qingsuan.ledger import TransferResult as R

MNO = AccountFlags.MUST_NOT_OVERDRAW


def _books(ledger: Ledger) -> Ledger:
    ledger.create_book(1, "ICBC")
    ledger.create_book(2, "CCB")
    return ledger


def _columns_static(ledger: Ledger, account_id: int) -> tuple[int, int, int, int, int]:
    """(row, book, flags, normal, limit) of an account read from its columns."""
    a = ledger.account(account_id)
    row = int(ledger._acc.view("id").tolist().index(account_id))
    return (row, a.book, int(a.flags), int(a.normal), a.overdraft_limit_fen)


def _check_lookups(ledger: Ledger, opened: dict[int, Account], probes: set[int]) -> None:
    """Every opened account found with its fields and row, every other probe not."""
    for account_id in sorted(probes | set(opened)):
        account = opened.get(account_id)
        assert ledger.has_account(account_id) is (account is not None), account_id
        if account is None:
            assert ledger._static(account_id)[0] < 0
            assert ledger._row_of(account_id) is None
            continue
        assert ledger.account(account_id) == account
        ledger._acc_static.pop(account_id, None)  # the miss path, not the cached answer
        assert ledger._static(account_id) == _columns_static(ledger, account_id)
        assert ledger.create_accounts([account]) == [AccountResult.EXISTS]
        other = Account(account.id, account.book, account.normal, account.flags,
                        account.overdraft_limit_fen, account.code + 1)
        assert ledger.create_accounts([other]) == [AccountResult.EXISTS_WITH_DIFFERENT_FIELDS]


def test_a_range_is_one_span() -> None:
    ledger = _books(Ledger())
    accounts = [Account(1000 + k, 1, NormalSide.CREDIT, MNO) for k in range(500)]
    assert ledger.create_accounts(accounts) == [AccountResult.OK] * 500
    assert ledger._span_first == [1000] and ledger._span_end == [1500]
    assert ledger._span_row == [0] and not ledger._acc_index
    _check_lookups(ledger, {a.id: a for a in accounts}, {0, 999, 1500, 1501, -1})


def test_runs_break_on_any_static_field_and_on_gaps() -> None:
    ledger = _books(Ledger())
    accounts = [
        Account(1, 1, NormalSide.DEBIT),
        Account(2, 1, NormalSide.DEBIT),
        Account(3, 2, NormalSide.DEBIT),  # another book
        Account(4, 2, NormalSide.CREDIT),  # another side
        Account(5, 2, NormalSide.CREDIT, MNO),  # other flags
        Account(6, 2, NormalSide.CREDIT, MNO, 100),  # another limit
        Account(7, 2, NormalSide.CREDIT, MNO, 100, code=9),  # only the code: same span
        Account(9, 2, NormalSide.CREDIT, MNO, 100),  # a gap
        Account(8, 2, NormalSide.CREDIT, MNO, 100),  # below the last span: by id
    ]
    assert ledger.create_accounts(accounts) == [AccountResult.OK] * len(accounts)
    assert ledger._span_first == [1, 3, 4, 5, 6, 9]
    assert ledger._acc_index == {8: 8}
    _check_lookups(ledger, {a.id: a for a in accounts}, set(range(-2, 14)))


def test_transfers_between_span_accounts() -> None:
    ledger = _books(Ledger())
    ledger.create_accounts([Account(1, 1, NormalSide.DEBIT)])
    ledger.create_accounts(Account(100 + k, 1, NormalSide.CREDIT, MNO) for k in range(50))
    assert ledger.create_transfer_row(1, 1, 120, 5_000, 0, 0, 10) is R.OK
    assert ledger.create_transfer_row(2, 120, 121, 6_000, 0, 0, 10) is \
        R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
    assert ledger.create_transfer_row(3, 120, 150, 1, 0, 0, 10) is R.CREDIT_ACCOUNT_NOT_FOUND
    assert ledger.create_transfer_row(4, 120, 149, 4_000, 0, 0, 10) is R.OK
    assert ledger.balance(120).posted_fen == 1_000
    assert ledger.balance(149).posted_fen == 4_000
    assert ledger.history(149)[0].transfer == Transfer(4, 120, 149, 4_000)
    ledger.check_invariants()


def test_snapshot_round_trip_rebuilds_the_spans_and_grows() -> None:
    ledger = _books(Ledger())
    opened = [Account(1, 1, NormalSide.DEBIT), Account(2, 2, NormalSide.DEBIT)]
    opened += [Account(10 + k, 1, NormalSide.CREDIT, MNO) for k in range(100)]
    opened += [Account(5, 1, NormalSide.CREDIT)]  # below the spans
    opened += [Account(200 + k, 2, NormalSide.CREDIT, MNO, 50) for k in range(30)]
    assert ledger.create_accounts(opened) == [AccountResult.OK] * len(opened)
    assert ledger.create_transfer_row(7, 1, 10, 900, 0, 0, 5) is R.OK
    data = ledger.to_bytes()
    loaded = Ledger.from_bytes(data)
    assert loaded.to_bytes() == data
    assert loaded.state_hash() == ledger.state_hash()
    _check_lookups(loaded, {a.id: a for a in opened}, {0, 3, 4, 6, 9, 110, 199, 230, 231})
    # it grows on, as the original does
    more = [Account(230 + k, 2, NormalSide.CREDIT, MNO, 50) for k in range(20)]
    more += [Account(6, 1, NormalSide.CREDIT)]
    for one in (ledger, loaded):
        assert one.create_accounts(more) == [AccountResult.OK] * len(more)
        assert one.create_transfer_row(8, 2, 249, 70, 0, 0, 6) is R.OK
    assert loaded.to_bytes() == ledger.to_bytes()
    assert loaded._span_first[-1] == 200 and loaded._span_end[-1] == 250
    _check_lookups(loaded, {a.id: a for a in opened + more}, {0, 3, 4, 9, 110, 199, 250})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 2), st.integers(0, 1),
                          st.integers(0, 1), st.sampled_from([0, 0, 0, 7])),
                min_size=1, max_size=80))
def test_random_openings_are_found_as_a_dict_would(
        specs: list[tuple[int, int, int, int, int]]) -> None:
    """Ids in any order (runs, repeats, gaps), fields varying: the lookups, the EXISTS
    checks and a snapshot's rebuilt lookups answer as a dict of what was opened."""
    ledger = _books(Ledger())
    opened: dict[int, Account] = {}
    for account_id, book, normal, flags, limit in specs:
        account = Account(account_id, book, NormalSide(normal), AccountFlags(flags), limit)
        (code,) = ledger.create_accounts([account])
        if account_id in opened:
            assert code is (AccountResult.EXISTS if opened[account_id] == account
                            else AccountResult.EXISTS_WITH_DIFFERENT_FIELDS)
        else:
            assert code is AccountResult.OK
            opened[account_id] = account
    probes = set(range(0, 62))
    _check_lookups(ledger, opened, probes)
    loaded = Ledger.from_bytes(ledger.to_bytes())
    _check_lookups(loaded, opened, probes)
    assert loaded.to_bytes() == ledger.to_bytes()


def _range_both(setup: list[Account], first_id: int, count: int, book: int,
                normal: NormalSide = NormalSide.CREDIT, flags: AccountFlags = MNO,
                limit: int = 0, code: int = 0) -> tuple[Ledger, Ledger]:
    """The same range opened by create_account_range and by create_accounts, after the
    same setup: the same results and the same snapshot bytes."""
    ranged, single = _books(Ledger()), _books(Ledger())
    for one in (ranged, single):
        assert one.create_accounts(setup) == [AccountResult.OK] * len(setup)
    got = ranged.create_account_range(first_id, count, book, normal, flags, limit, code)
    want = single.create_accounts(Account(first_id + k, book, normal, flags, limit, code)
                                  for k in range(count))
    assert got == want
    assert ranged.to_bytes() == single.to_bytes()
    assert ranged.state_hash() == single.state_hash()
    return ranged, single


def test_a_range_at_once_equals_account_by_account() -> None:
    bank = [Account(1, 1, NormalSide.DEBIT)]
    # a new range: columns at once, one span
    ranged, _ = _range_both(bank, 100, 1000, 1, limit=300, code=5)
    assert ranged._span_first == [1, 100] and ranged._span_end == [2, 1100]
    _check_lookups(ranged, {a.id: a for a in bank} | {
        100 + k: Account(100 + k, 1, NormalSide.CREDIT, MNO, 300, 5) for k in range(1000)},
        {0, 2, 99, 1100})
    # continuing the last span: it grows
    run = [Account(10 + k, 1, NormalSide.CREDIT, MNO) for k in range(5)]
    ranged, _ = _range_both(run, 15, 20, 1)
    assert ranged._span_first == [10] and ranged._span_end == [35]
    assert ranged.create_transfer_row(1, 34, 10, 0, 0, 0, 1) is R.AMOUNT_MUST_BE_POSITIVE
    # the account-by-account path where it differs: ids known, below the spans, invalid
    _range_both(run, 12, 10, 1)  # EXISTS, then new
    _range_both(run, 5, 3, 1)  # below the last span: by id
    _range_both(run, 50, 3, 9)  # no such book
    _range_both(run, 50, 3, 1, limit=-1)
    _range_both(run, 50, 3, 1, flags=AccountFlags(4))
    _range_both(run, 0, 3, 1)
    _range_both(run, 50, 0, 1)
    _range_both([*run, Account(3, 2, NormalSide.CREDIT)], 40, 5, 2, NormalSide.DEBIT,
                AccountFlags.NONE)


def test_a_range_then_a_snapshot_and_more() -> None:
    ledger = _books(Ledger())
    ledger.create_accounts([Account(1, 1, NormalSide.DEBIT)])
    assert ledger.create_account_range(2, 10_000, 1) == [AccountResult.OK] * 10_000
    assert ledger.create_transfer_row(5, 1, 9_999, 700, 0, 0, 3) is R.OK
    loaded = Ledger.from_bytes(ledger.to_bytes())
    assert loaded.to_bytes() == ledger.to_bytes()
    assert loaded._span_first == ledger._span_first == [1, 2]
    for one in (ledger, loaded):
        assert one.create_account_range(10_002, 5, 1) == [AccountResult.OK] * 5
        assert one.create_account_range(10_000, 5, 1)[:3] == [AccountResult.EXISTS] * 3
        assert one.balance(9_999).posted_fen == 700
    assert loaded.to_bytes() == ledger.to_bytes()


def test_posted_and_available_fen_equal_the_balance_s() -> None:
    ledger = _books(Ledger())
    ledger.create_accounts([Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.DEBIT)])
    ledger.create_account_range(10, 5, 1, NormalSide.CREDIT, MNO, 100)
    rows = [(1, 1, 10, 900, 0, 0), (2, 10, 11, 300, 2, 0), (3, 11, 2, 50, 0, 0),
            (4, 0, 0, 0, 4, 2), (5, 12, 1, 80, 0, 0)]
    for tid, dr, cr, amount, flags, pending in rows:
        ledger.create_transfer_row(tid, dr, cr, amount, flags, pending, tid)
        for account_id in (1, 2, 10, 11, 12, 13):
            balance = ledger.balance(account_id)
            assert ledger.posted_fen(account_id) == balance.posted_fen
            assert ledger.available_fen(account_id) == balance.available_fen
    ledger._flush_tail()  # from the columns and the written balances kept in Python
    for account_id in (1, 2, 10, 11, 12, 13):
        assert ledger.posted_fen(account_id) == ledger.balance(account_id).posted_fen
    loaded = Ledger.from_bytes(ledger.to_bytes())
    for account_id in (1, 2, 10, 11, 12, 13):
        assert loaded.posted_fen(account_id) == ledger.balance(account_id).posted_fen
    with pytest.raises(KeyError):
        ledger.posted_fen(15)


def test_the_static_cache_bound_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounts' static fields kept for at most a few accounts (cleared when full) or for
    all: the same codes and the same state."""
    def run() -> tuple[list[int], bytes]:
        ledger = _books(Ledger())
        ledger.create_accounts([Account(1, 1, NormalSide.DEBIT)])
        ledger.create_account_range(10, 20, 1, NormalSide.CREDIT, MNO)
        codes = []
        for k in range(60):
            payer, payee = 10 + k * 7 % 21, 10 + k * 3 % 20
            codes.append(int(ledger.create_transfer_row(100 + k, 1, payee, 50, 0, 0, k)))
            codes.append(int(ledger.create_transfer_row(300 + k, payer, payee, 70, 0, 0, k)))
        assert len(ledger._acc_static) <= ledger_module._STATIC_KEPT
        return codes, ledger.to_bytes()

    want = run()
    monkeypatch.setattr(ledger_module, "_STATIC_KEPT", 3)
    assert run() == want
