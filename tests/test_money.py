"""Tests for qingsuan.money: amounts are int fen, parsed and formatted only at the edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.money import FEN_PER_YUAN, MAX_AMOUNT_FEN, AmountError, format_fen, parse_amount

# -- parsing: good values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("123.45", 12345),
        ("123", 12300),
        ("0.01", 1),
        ("123.4", 12340),
        ("1.05", 105),
        ("0.10", 10),
        ("  7.50  ", 750),
        (5, 500),
        (1, 100),
    ],
)
def test_parse_amount_good(value: object, fen: int) -> None:
    result = parse_amount(value)
    assert result == fen
    assert type(result) is int


def test_constants() -> None:
    assert FEN_PER_YUAN == 100
    assert MAX_AMOUNT_FEN == 10**15


# -- parsing: errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1.5, 'an amount must be a string like "123.45", never a float'),
        (0.1, 'an amount must be a string like "123.45", never a float'),
        (True, 'an amount must be a string like "123.45", not a boolean'),
        (False, 'an amount must be a string like "123.45", not a boolean'),
        (None, 'an amount must be a string like "123.45"'),
        (b"1.00", 'an amount must be a string like "123.45"'),
        ("1.234", "more than two decimals"),
        ("0.001", "more than two decimals"),
        ("-1.00", "must not be negative"),
        (-1, "must not be negative"),
        ("0", "must be greater than zero"),
        ("0.00", "must be greater than zero"),
        (0, "must be greater than zero"),
        ("1e3", 'not a decimal amount like "123.45"'),
        ("1,000.00", 'not a decimal amount like "123.45"'),
        ("", 'not a decimal amount like "123.45"'),
        (" ", 'not a decimal amount like "123.45"'),
        ("+1.00", 'not a decimal amount like "123.45"'),
        ("1.", 'not a decimal amount like "123.45"'),
        (".50", 'not a decimal amount like "123.45"'),
        ("1 000", 'not a decimal amount like "123.45"'),
        ("１２３", 'not a decimal amount like "123.45"'),  # full-width digits
        ("１２３.４５", 'not a decimal amount like "123.45"'),
        ("١٢٣", 'not a decimal amount like "123.45"'),  # Arabic-Indic digits
        ("1" * 41, "amount string is too long"),
    ],
)
def test_parse_amount_errors(value: object, reason: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_amount(value, field="transfer.amount")
    err = info.value
    assert err.field == "transfer.amount"
    assert err.reason == reason
    assert err.value == value
    assert str(err) == f"transfer.amount: {reason} (got {value!r})"
    assert isinstance(err, ValueError)


def test_default_field_name() -> None:
    with pytest.raises(AmountError) as info:
        parse_amount("abc")
    assert info.value.field == "amount"
    assert str(info.value) == "amount: not a decimal amount like \"123.45\" (got 'abc')"


def test_allow_zero() -> None:
    assert parse_amount("0", allow_zero=True) == 0
    assert parse_amount("0.00", allow_zero=True) == 0
    assert parse_amount(0, allow_zero=True) == 0


def test_allow_negative() -> None:
    assert parse_amount("-1.00", allow_negative=True) == -100
    assert parse_amount("-0.05", allow_negative=True) == -5
    assert parse_amount(-3, allow_negative=True) == -300
    with pytest.raises(AmountError, match="must be greater than zero"):
        parse_amount("-0.00", allow_negative=True)
    assert parse_amount("-0.00", allow_negative=True, allow_zero=True) == 0


def test_huge_amount_beyond_default_max() -> None:
    with pytest.raises(AmountError) as info:
        parse_amount("99999999999999999999.00", field="x")
    assert info.value.field == "x"
    assert info.value.reason == "exceeds the largest accepted amount 10000000000000.00"


def test_default_max_is_inclusive() -> None:
    assert parse_amount("10000000000000.00") == MAX_AMOUNT_FEN
    with pytest.raises(AmountError) as info:
        parse_amount("10000000000000.01")
    assert info.value.reason == "exceeds the largest accepted amount 10000000000000.00"


def test_custom_max_fen() -> None:
    assert parse_amount("50000.00", max_fen=5_000_000) == 5_000_000
    with pytest.raises(AmountError) as info:
        parse_amount("50000.01", field="limit", max_fen=5_000_000)
    assert info.value.field == "limit"
    assert info.value.reason == "exceeds the largest accepted amount 50000.00"
    # the bound applies to the absolute value
    with pytest.raises(AmountError) as info:
        parse_amount("-1.01", allow_negative=True, max_fen=100)
    assert info.value.reason == "exceeds the largest accepted amount 1.00"
    assert parse_amount("-1.00", allow_negative=True, max_fen=100) == -100


# -- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (12345, "123.45"),
        (-5, "-0.05"),
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (100, "1.00"),
        (-12345, "-123.45"),
        (10**15, "10000000000000.00"),
    ],
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@pytest.mark.parametrize(("value", "name"), [(1.5, "float"), (True, "bool"), ("1.00", "str")])
def test_format_fen_rejects_non_int(value: object, name: str) -> None:
    with pytest.raises(TypeError) as info:
        format_fen(value)  # type: ignore[arg-type]
    assert str(info.value) == f"amount_fen must be int, got {name}"


# -- properties ----------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10**15))
def test_round_trip_fen(fen: int) -> None:
    assert parse_amount(format_fen(fen)) == fen


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_trip_fen_signed(fen: int) -> None:
    assert parse_amount(format_fen(fen), allow_zero=True, allow_negative=True) == fen


@given(
    st.integers(min_value=0, max_value=10**13 - 1),
    st.integers(min_value=0, max_value=99),
)
def test_two_decimal_string_is_canonical(yuan: int, fen: int) -> None:
    text = f"{yuan}.{fen:02d}"
    assert format_fen(parse_amount(text, allow_zero=True)) == text


@given(st.integers(min_value=1, max_value=10**13 - 1), st.integers(min_value=0, max_value=9))
def test_one_decimal_and_whole_strings(yuan: int, dime: int) -> None:
    assert parse_amount(f"{yuan}.{dime}") == yuan * 100 + dime * 10
    assert parse_amount(str(yuan)) == yuan * 100
    assert parse_amount(yuan) == yuan * 100
