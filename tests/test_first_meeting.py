"""The first meeting of a generated customer (banks/ranges.py) is made cheap: its record
filled slot by slot, its id read off its name without a general split, the responder's
answer filled likewise. Each must be exactly what the plain way makes."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.banks.directory import CustomerAccount, Directory, ResponderView, _member
from qingsuan.banks.ranges import CustomerRange
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.ledger.registry import AccountRegistry, split_index

ICBC = CustomerRange("ICBC", 500, 100_000, "icbc.c", "6222", 19, "ICBC customer ")
CCB = CustomerRange("CCB", 30, 0, "ccb.c", "6217", 19, "CCB customer ")


def _directory() -> Directory:
    directory = Directory()
    directory.add(CustomerAccount("bob", "CCB", "6217100010000000029", "Bob"))
    directory.add_range(ICBC)
    directory.add_range(CCB)
    return directory


@given(st.integers(0, ICBC.count - 1))
def test_a_member_is_the_record_its_constructor_makes(k: int) -> None:
    made = _member(ICBC, k)
    plain = CustomerAccount(ICBC.id(k), ICBC.bank, ICBC.account(k), ICBC.name(k))
    assert type(made) is CustomerAccount
    assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)
    assert made.to_state() == plain.to_state()
    assert dataclasses.astuple(made) == dataclasses.astuple(plain)
    assert pickle.loads(pickle.dumps(made)) == plain
    assert dataclasses.replace(made, closed=True) == dataclasses.replace(plain, closed=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "x"  # type: ignore[misc]


@given(st.integers(0, ICBC.count - 1))
def test_found_by_id_number_and_responder_as_the_plain_way(k: int) -> None:
    directory = _directory()
    by_id = directory[ICBC.id(k)]
    assert by_id == CustomerAccount(ICBC.id(k), "ICBC", ICBC.account(k), ICBC.name(k))
    assert directory.find_number("ICBC", ICBC.account(k)) is by_id
    assert directory.number_of(("ICBC", ICBC.account(k))) is by_id

    class Banks:
        pass

    banks: Any = Banks()
    banks.directory = directory
    answer = ResponderView(banks).get(("ICBC", ICBC.account(k)))
    plain = SimAccount("ICBC", ICBC.account(k), ICBC.name(k),
                       f"ICBC:{by_id.ledger_name}", False)
    assert type(answer) is SimAccount and answer == plain and repr(answer) == repr(plain)


@given(st.text("icbc.0123456789cx", max_size=12))
def test_an_id_is_generated_exactly_when_split_index_says_so(cid: str) -> None:
    directory = _directory()
    split = split_index(cid)
    expect = split is not None and split[0] == "icbc.c" and split[1] < ICBC.count
    assert (directory.find_id(cid) is not None) == expect
    if expect:
        assert directory.find_id(cid) == _member(ICBC, split[1])  # type: ignore[index]


def _registry() -> AccountRegistry:
    reg = AccountRegistry()
    reg.add_book(1, "ICBC")
    reg.add_book(2, "A:B")
    reg.add_account(1, 1, "ICBC:fee_income")
    reg.add_account(2, 1, "ICBC:customer:icbc.c500")   # past the range's count
    reg.add_account(3, 1, "ICBC:customer:icbc.c07")    # not a canonical index
    reg.add_range("ICBC:customer:icbc.c", 500, 10)
    reg.add_range("A:B:x", 5, 1000)                    # a book whose name holds a colon
    return reg


def _plain(reg: AccountRegistry, book: str, name: str) -> int | None:
    """The id as the full name's split reads it (the registry's way before)."""
    full = f"{book}:{name}"
    if full in reg._ids:
        return reg._ids[full]
    split = split_index(full)
    hit = reg._ranges.get(split[0]) if split is not None else None
    return None if split is None or hit is None or split[1] >= hit[0] else hit[1] + split[1]


@given(st.sampled_from(["ICBC", "A", "A:B", "B", ""]),
       st.text("customer:icb.x0123456789B", max_size=20))
def test_an_id_by_book_and_name_is_the_full_names(book: str, name: str) -> None:
    reg = _registry()
    expect = _plain(reg, book, name)
    if expect is None:
        with pytest.raises(KeyError, match="no account"):
            reg.id(book, name)
        assert not reg.has(f"{book}:{name}")
    else:
        assert reg.id(book, name) == expect == reg.account_id(f"{book}:{name}")


def test_named_and_range_accounts_side_by_side() -> None:
    reg = _registry()
    assert reg.id("ICBC", "customer:icbc.c0") == 10
    assert reg.id("ICBC", "customer:icbc.c499") == 509
    assert reg.id("ICBC", "customer:icbc.c500") == 2
    assert reg.id("ICBC", "customer:icbc.c07") == 3
    assert reg.id("ICBC", "fee_income") == 1
    assert reg.id("A:B", "x4") == reg.id("A", "B:x4") == 1004
    with pytest.raises(KeyError):
        reg.id("ICBC", "customer:icbc.c501")
    again = AccountRegistry.from_bytes(reg.to_bytes())
    assert again.id("A", "B:x3") == 1003 and again.id("ICBC", "customer:icbc.c5") == 15
