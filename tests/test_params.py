"""Tests for qingsuan.params: every rule number is a parameter with a documented default."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.params import (
    PPM,
    SPECS,
    ParamError,
    ParamKind,
    Params,
    format_value,
    parse_value,
    spec,
)

DEFAULTS_WRITTEN = {
    "cups.sessions": "09:00",
    "cups.default_cap": "1000000000000.00",
    "cards.pos_no_pin_limit": "1000.00",
    "cards.pin_tries": "3",
    "cards.daily_withdrawal_limit": "20000.00",
    "banks.name_check": "off",
    "ibps.sim_latency_ms": "200",
    "ibps.sim_accept_ratio": "1",
    "ibps.default_cap": "10000000.00",
    "ibps.sessions": "09:00,11:00,13:00,15:00,16:30",
    "beps.package_max_items": "1000",
    "beps.default_cap": "10000000.00",
    "beps.sessions": "09:00,11:00,13:00,15:00,16:30",
    "beps.closed": "off",
    "ibps.closed": "off",
    "calendar.name": "cn",
    "cnaps.bank_systems": "HVPS,BEPS,IBPS",
    "cnaps.payment_institution_systems": "IBPS",
    "cnaps.card_switch_systems": "HVPS,BEPS,IBPS",
    "hvps.bypass_fifo": "off",
    "hvps.lsm": "lsm",
    "hvps.lsm_on_queue": "on",
    "hvps.lsm_interval_minutes": "5",
    "hvps.bilateral_candidates": "100",
    "hvps.pledge_haircut": "0.1",
    "hvps.credit_rate": "0.0225",
    "calendar.missing_year": "error",
    "hvps.open": "20:30",
    "hvps.cutoff": "17:15",
    "hvps.clearing_end": "17:30",
    "hvps.closed": "off",
    "cards.cutoff": "23:00",
    "beps.item_limit": "50000.00",
    "beps.holiday_item_limit": "50000.00",
    "ibps.item_limit": "50000.00",
    "ibps.confirm_timeout_ms": "30000",
    "cards.fees": "on",
    "cards.issuer_fee_debit_rate": "0.0035",
    "cards.issuer_fee_debit_cap": "13.00",
    "cards.issuer_fee_credit_rate": "0.0045",
    "cards.network_fee_rate": "0.000325",
    "cards.network_fee_cap": "3.25",
    "cards.atm_interbank_fee": "3.00",
    "cards.issuer_timeout": "30",
    "cards.standin": "off",
    "cards.standin_limit": "500.00",
    "cards.chargeback_days": "120",
    "cards.dispute_reply_days": "20",
    "cards.preauth_days": "30",
    "cards.preauth_tolerance": "0.15",
    "banks.channel_fee": "0.00",
}


# -- the registry --------------------------------------------------------------------------


def test_specs_are_unique_documented_and_parse() -> None:
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names))
    for s in SPECS:
        assert s.doc.strip(), s.name
        assert "." in s.name
        assert spec(s.name) is s
        value = parse_value(s.name, s.default)
        assert format_value(s.name, value) == s.default, s.name
        if s.kind is ParamKind.CHOICE:
            assert s.default in s.choices


def test_params_defaults() -> None:
    params = Params()
    assert len(params) == len(SPECS)
    assert list(params) == [s.name for s in SPECS]
    assert params["hvps.open"] == 20 * 60 + 30
    assert params["hvps.cutoff"] == 17 * 60 + 15
    assert params["hvps.closed"] is False
    assert params["beps.closed"] is False and params["ibps.closed"] is False
    assert params["cards.fees"] is True
    assert params["beps.item_limit"] == 5_000_000
    assert params.amount("beps.item_limit") == 5_000_000
    assert params["banks.channel_fee"] == 0
    assert params["ibps.confirm_timeout_ms"] == 30_000
    assert params["cards.issuer_fee_debit_rate"] == 3_500
    assert params["cards.network_fee_rate"] == 325
    assert params["cards.network_fee_cap"] == 325
    assert params["calendar.missing_year"] == "error"
    assert params.written() == DEFAULTS_WRITTEN


# -- names ---------------------------------------------------------------------------------


def test_unknown_name_without_known_prefix() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("nosuch.thing", "1")
    assert str(info.value) == "unknown parameter 'nosuch.thing'"


def test_unknown_name_with_known_prefix_lists_known() -> None:
    with pytest.raises(ParamError) as info:
        spec("hvps.opn")
    assert str(info.value) == (
        "unknown parameter 'hvps.opn'; known hvps.* parameters: "
        "hvps.open, hvps.cutoff, hvps.clearing_end, hvps.closed, hvps.bypass_fifo, hvps.lsm, "
        "hvps.lsm_on_queue, hvps.lsm_interval_minutes, hvps.bilateral_candidates, "
        "hvps.pledge_haircut, hvps.credit_rate"
    )


def test_unknown_name_in_params() -> None:
    with pytest.raises(
        ParamError,
        match=r"^unknown parameter 'ibps.limit'; known ibps\.\* "
        r"parameters: ibps.item_limit, ibps.confirm_timeout_ms, ibps.sim_latency_ms, "
        r"ibps.sim_accept_ratio, ibps.default_cap, ibps.sessions, ibps.closed$",
    ):
        Params({"ibps.limit": "1.00"})
    params = Params()
    with pytest.raises(ParamError, match=r"^unknown parameter 'x'$"):
        params.set("x", "1")
    with pytest.raises(ParamError, match=r"^unknown parameter 'x'$"):
        params["x"]


def test_param_error_is_value_error() -> None:
    assert issubclass(ParamError, ValueError)


# -- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("50000.00", 5_000_000),
        ("50000", 5_000_000),
        ("3.25", 325),
        ("0", 0),
        ("0.00", 0),
        (100, 10_000),
    ],
)
def test_amount_values(value: object, fen: int) -> None:
    assert parse_value("ibps.item_limit", value) == fen


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-1.00", "must not be negative"),
        ("1.001", "more than two decimals"),
        ("１００.００", 'not a decimal amount like "123.45"'),
        ("1,000", 'not a decimal amount like "123.45"'),
    ],
)
def test_amount_errors_name_the_parameter(value: str, reason: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("beps.item_limit", value)
    assert str(info.value) == f"parameter beps.item_limit: {reason} (got {value!r})"


def test_amount_float_rejected() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("beps.item_limit", 50000.0)
    assert str(info.value) == (
        "parameter beps.item_limit: write the value as a quoted string, not a float (got 50000.0)"
    )


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("20:30", 1230), ("00:00", 0), ("23:59", 1439), ("09:05", 545), (" 17:15 ", 1035)],
)
def test_time_values(value: str, minutes: int) -> None:
    assert parse_value("hvps.open", value) == minutes


def test_time_int_gives_quote_hint() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("hvps.open", 1230)
    assert str(info.value) == (
        'parameter hvps.open: quote times, e.g. "20:30" (YAML reads an unquoted 20:30 as '
        "the number 1230)"
    )


@pytest.mark.parametrize(
    "value",
    ["24:00", "9:30", "12:60", "12:5", "1230", "", "noon", "20:30:00", "２０:３０", "1５:00"],
)
def test_time_errors(value: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("hvps.cutoff", value)
    assert str(info.value) == f"parameter hvps.cutoff: not a time HH:MM (got {value!r})"


def test_time_float_rejected() -> None:
    # YAML reads an unquoted 17.15 as a float
    with pytest.raises(ParamError, match=r"^parameter hvps.cutoff: .*not a float \(got 17.15\)$"):
        parse_value("hvps.cutoff", 17.15)


# -- booleans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True),
        ("off", False),
        ("true", True),
        ("false", False),
        ("ON", True),
        ("False", False),
        ("yes", True),
        ("no", False),
        (True, True),
        (False, False),
    ],
)
def test_bool_values(value: object, expected: bool) -> None:
    assert parse_value("hvps.closed", value) is expected


@pytest.mark.parametrize("value", ["1", "0", "maybe", ""])
def test_bool_errors(value: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("cards.fees", value)
    assert str(info.value) == f"parameter cards.fees: use on or off (got {value!r})"


def test_bool_float_rejected() -> None:
    with pytest.raises(ParamError, match="not a float"):
        parse_value("cards.fees", 1.0)


# -- ints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [("1", 1), ("30000", 30000), (500, 500)])
def test_int_values(value: object, number: int) -> None:
    assert parse_value("ibps.confirm_timeout_ms", value) == number


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-5", "-5"), (0, "0")])
def test_int_minimum(value: object, shown: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("ibps.confirm_timeout_ms", value)
    assert str(info.value) == (
        f"parameter ibps.confirm_timeout_ms: must be at least 1 (got {shown})"
    )


@pytest.mark.parametrize("value", ["1.5", "abc", "", "1e3", "３０", True])
def test_int_errors(value: object) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("ibps.confirm_timeout_ms", value)
    assert str(info.value) == (
        f"parameter ibps.confirm_timeout_ms: not a whole number (got {value!r})"
    )


def test_int_float_rejected() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("ibps.confirm_timeout_ms", 30000.0)
    assert "float" in str(info.value)
    assert str(info.value).startswith("parameter ibps.confirm_timeout_ms: ")


# -- rates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ppm"),
    [
        ("0.0035", 3_500),
        ("0.000325", 325),
        ("0", 0),
        ("1", PPM),
        ("1.000000", PPM),
        ("0.5", 500_000),
        ("0.000001", 1),
    ],
)
def test_rate_values(value: str, ppm: int) -> None:
    assert parse_value("cards.network_fee_rate", value) == ppm


def test_rate_above_one() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("cards.network_fee_rate", "1.5")
    assert str(info.value) == (
        "parameter cards.network_fee_rate: a rate above 1 (100%) (got '1.5')"
    )
    with pytest.raises(ParamError, match="a rate above 1"):
        parse_value("cards.network_fee_rate", "1.000001")


@pytest.mark.parametrize(
    "value", ["0.0000001", "0.1234567", "-0.1", ".5", "5%", "0,5", "", "０.５"]
)
def test_rate_errors(value: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("cards.issuer_fee_credit_rate", value)
    assert str(info.value) == (
        "parameter cards.issuer_fee_credit_rate: not a decimal rate with at most 6 decimals "
        f"(got {value!r})"
    )


def test_rate_float_rejected() -> None:
    with pytest.raises(ParamError) as info:
        parse_value("cards.issuer_fee_credit_rate", 0.0035)
    assert str(info.value) == (
        "parameter cards.issuer_fee_credit_rate: write the value as a quoted string, "
        "not a float (got 0.0035)"
    )


# -- choices -------------------------------------------------------------------------------


def test_choice() -> None:
    assert parse_value("calendar.missing_year", "weekends") == "weekends"
    assert parse_value("calendar.missing_year", " error ") == "error"
    with pytest.raises(ParamError) as info:
        parse_value("calendar.missing_year", "ignore")
    assert str(info.value) == (
        "parameter calendar.missing_year: one of error, weekends (got 'ignore')"
    )


# -- sets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("IBPS", "IBPS"), ("IBPS,HVPS", "HVPS,IBPS"), (" BEPS , IBPS ", "BEPS,IBPS"), ("", ""),
     ("HVPS,BEPS,IBPS", "HVPS,BEPS,IBPS")],
)
def test_set_values_are_written_in_the_choices_order(value: str, parsed: str) -> None:
    assert parse_value("cnaps.payment_institution_systems", value) == parsed


@pytest.mark.parametrize("value", ["CUPS", "IBPS,IBPS", "ibps", "HVPS;IBPS", "IBPS,"])
def test_set_errors(value: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_value("cnaps.bank_systems", value)
    assert str(info.value) == (
        "parameter cnaps.bank_systems: some of HVPS, BEPS, IBPS, separated by commas, each "
        f"once (got {value!r})")


def test_set_choices_are_declared() -> None:
    for s in SPECS:
        if s.kind is ParamKind.SET:
            assert s.choices, s.name


# -- canonical forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "written"),
    [
        ("hvps.open", 545, "09:05"),
        ("hvps.open", 0, "00:00"),
        ("hvps.closed", True, "on"),
        ("hvps.closed", False, "off"),
        ("beps.item_limit", 5, "0.05"),
        ("cards.network_fee_rate", 3_500, "0.0035"),
        ("cards.network_fee_rate", 0, "0"),
        ("cards.network_fee_rate", PPM, "1"),
        ("cards.network_fee_rate", 100_000, "0.1"),
        ("cards.network_fee_rate", 1, "0.000001"),
        ("ibps.confirm_timeout_ms", 7, "7"),
        ("calendar.missing_year", "weekends", "weekends"),
        ("cnaps.bank_systems", "HVPS,IBPS", "HVPS,IBPS"),
    ],
)
def test_format_value(name: str, value: int | bool | str, written: str) -> None:
    assert format_value(name, value) == written
    assert parse_value(name, written) == value


@given(st.integers(min_value=0, max_value=PPM))
def test_rate_round_trip(ppm: int) -> None:
    assert parse_value("cards.network_fee_rate", format_value("cards.network_fee_rate", ppm)) == ppm


@given(st.integers(min_value=0, max_value=24 * 60 - 1))
def test_time_round_trip(minutes: int) -> None:
    text = format_value("hvps.open", minutes)
    assert len(text) == 5
    assert parse_value("hvps.open", text) == minutes


@given(st.integers(min_value=0, max_value=10**15))
def test_amount_round_trip(fen: int) -> None:
    assert parse_value("banks.channel_fee", format_value("banks.channel_fee", fen)) == fen


@given(st.integers(min_value=1, max_value=10**9))
def test_int_round_trip(number: int) -> None:
    text = format_value("ibps.confirm_timeout_ms", number)
    assert parse_value("ibps.confirm_timeout_ms", text) == number


# -- Params --------------------------------------------------------------------------------


def test_params_set_changes_value() -> None:
    params = Params()
    params.set("hvps.cutoff", "16:00")
    assert params["hvps.cutoff"] == 960
    params.set("beps.item_limit", "100000")
    assert params.amount("beps.item_limit") == 10_000_000
    params.set("cards.fees", "off")
    assert params["cards.fees"] is False
    params.set("cards.issuer_fee_debit_rate", "0.003500")
    written = params.written()
    assert written["hvps.cutoff"] == "16:00"
    assert written["beps.item_limit"] == "100000.00"
    assert written["cards.fees"] == "off"
    assert written["cards.issuer_fee_debit_rate"] == "0.0035"
    # the others keep their defaults
    assert {
        k: v
        for k, v in written.items()
        if k not in {"hvps.cutoff", "beps.item_limit", "cards.fees", "cards.issuer_fee_debit_rate"}
    } == {
        k: v
        for k, v in DEFAULTS_WRITTEN.items()
        if k not in {"hvps.cutoff", "beps.item_limit", "cards.fees", "cards.issuer_fee_debit_rate"}
    }
    # a fresh Params is unaffected
    assert Params().written() == DEFAULTS_WRITTEN


def test_params_set_bad_value_keeps_old() -> None:
    params = Params()
    with pytest.raises(ParamError, match="not a time HH:MM"):
        params.set("hvps.cutoff", "24:00")
    assert params["hvps.cutoff"] == 1035


def test_params_overrides() -> None:
    params = Params({"hvps.open": "21:00", "hvps.closed": True, "ibps.confirm_timeout_ms": 5})
    assert params["hvps.open"] == 1260
    assert params["hvps.closed"] is True
    assert params["ibps.confirm_timeout_ms"] == 5
    written = params.written()
    assert written["hvps.open"] == "21:00"
    assert written["hvps.closed"] == "on"
    assert written["ibps.confirm_timeout_ms"] == "5"
    with pytest.raises(ParamError, match="quote times"):
        Params({"hvps.open": 1230})


def test_params_written_round_trips() -> None:
    params = Params({"cards.network_fee_rate": "0.5", "banks.channel_fee": "2"})
    again = Params(params.written())
    assert dict(again) == dict(params)
    assert again.written() == params.written()


def test_params_membership() -> None:
    params = Params()
    assert "hvps.open" in params
    assert "no.such" not in params
    assert params.get("hvps.open") == 1230


def test_params_unknown_name_still_raises_param_error() -> None:
    params = Params()
    assert params["cards.preauth_days"] == Params()["cards.preauth_days"]
    with pytest.raises(ParamError, match="unknown parameter"):
        params["cards.no_such_thing"]
