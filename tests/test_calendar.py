"""Tests for qingsuan.calendar: business days 工作日, 调休, HVPS windows, card 日切."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path

import chinese_calendar
import pytest

from qingsuan.calendar import (
    BusinessCalendar,
    CalendarError,
    CalendarYearMissing,
    HvpsPhase,
    HvpsSchedule,
    HvpsState,
    OperatingWindows,
    available_calendars,
    card_clearing_date,
    hvps_phase,
    load_calendar,
    next_hvps_open,
)
from qingsuan.calendar import business as business_module

D = dt.date
T = dt.datetime
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cn() -> BusinessCalendar:
    return load_calendar("cn")


# -- the table -----------------------------------------------------------------------------


def test_every_day_2004_2026_matches_chinese_calendar(cn: BusinessCalendar) -> None:
    day = D(2004, 1, 1)
    checked = 0
    mismatches: list[dt.date] = []
    while day <= D(2026, 12, 31):
        if cn.is_business_day(day) != chinese_calendar.is_workday(day):
            mismatches.append(day)
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        expected_name = name if (on_holiday and name is not None) else None
        if cn.holiday_name(day) != expected_name:
            mismatches.append(day)
        day += dt.timedelta(days=1)
        checked += 1
    assert checked == 8401
    assert mismatches == []


def test_covered_years_and_source(cn: BusinessCalendar) -> None:
    assert cn.years == range(2004, 2027)
    assert cn.covers(2004) and cn.covers(2026)
    assert not cn.covers(2003) and not cn.covers(2027)
    assert "State Council" in cn.source
    assert "chinese-calendar 1.11.0" in cn.source
    assert set(available_calendars()) == {"cn", "weekdays"}


def test_packaged_files_one_per_year_with_header() -> None:
    data = ROOT / "src" / "qingsuan" / "calendar" / "data"
    names = sorted(p.name for p in data.glob("*.csv"))
    assert names == [f"cn_{y}.csv" for y in range(2004, 2027)]
    for year in (2004, 2026):
        lines = (data / f"cn_{year}.csv").read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# source: State Council notices")
        assert lines[1] == "date,kind,name"


def test_generator_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_calendar.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_runtime_does_not_import_chinese_calendar() -> None:
    code = (
        "import sys, datetime as dt\n"
        "sys.modules['chinese_calendar'] = None\n"  # any import of it now fails
        "from qingsuan.calendar import load_calendar\n"
        "c = load_calendar('cn')\n"
        "assert c.is_business_day(dt.date(2026, 10, 10))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    spec = importlib.util.find_spec("qingsuan.calendar.business")
    assert spec is not None and spec.origin is not None
    for module in ("business.py", "windows.py", "__init__.py"):
        source = (Path(spec.origin).parent / module).read_text(encoding="utf-8")
        assert "chinese_calendar" not in source


# -- known days ----------------------------------------------------------------------------


def test_known_days(cn: BusinessCalendar) -> None:
    assert D(2026, 10, 10).weekday() == 5
    assert cn.is_business_day(D(2026, 10, 10))  # Saturday, adjusted workday 调休
    assert cn.is_adjusted_workday(D(2026, 10, 10))
    assert not cn.is_holiday(D(2026, 10, 10))
    assert cn.holiday_name(D(2026, 10, 10)) is None

    assert cn.is_holiday(D(2026, 10, 1))
    assert not cn.is_business_day(D(2026, 10, 1))
    assert cn.holiday_name(D(2026, 10, 1)) == "National Day"

    assert D(2026, 2, 14).weekday() == 5
    assert cn.is_business_day(D(2026, 2, 14))
    assert cn.workdays[D(2026, 2, 14)] == "Spring Festival"

    assert cn.is_holiday(D(2025, 1, 1))
    assert not cn.is_business_day(D(2025, 1, 1))
    assert cn.holiday_name(D(2025, 1, 1)) == "New Year's Day"

    # an ordinary weekend is not a business day, and not a holiday
    assert not cn.is_business_day(D(2026, 11, 28))
    assert not cn.is_holiday(D(2026, 11, 28))
    assert cn.is_business_day(D(2026, 11, 27))


def test_next_and_previous_business_day_across_national_day(cn: BusinessCalendar) -> None:
    assert cn.next_business_day(D(2026, 9, 30)) == D(2026, 10, 8)
    assert cn.next_business_day(D(2026, 10, 3)) == D(2026, 10, 8)
    assert cn.next_business_day(D(2026, 10, 9)) == D(2026, 10, 10)  # Saturday 调休
    assert cn.next_business_day(D(2026, 10, 10)) == D(2026, 10, 12)
    assert cn.previous_business_day(D(2026, 10, 8)) == D(2026, 9, 30)
    assert cn.business_day_on_or_after(D(2026, 10, 1)) == D(2026, 10, 8)
    assert cn.business_day_on_or_after(D(2026, 9, 30)) == D(2026, 9, 30)
    assert cn.business_day_on_or_before(D(2026, 10, 7)) == D(2026, 9, 30)
    # strictly after / before, even when the day itself is a business day
    assert cn.next_business_day(D(2026, 11, 26)) == D(2026, 11, 27)
    assert cn.previous_business_day(D(2026, 11, 30)) == D(2026, 11, 27)


def test_first_day_of_holiday_period(cn: BusinessCalendar) -> None:
    assert cn.is_first_day_of_holiday_period(D(2026, 11, 28))  # Saturday after normal Friday
    assert not cn.is_first_day_of_holiday_period(D(2026, 11, 29))  # Sunday
    assert not cn.is_first_day_of_holiday_period(D(2026, 11, 27))  # Friday, business day
    assert cn.is_first_day_of_holiday_period(D(2026, 10, 1))  # National Day, Thursday
    assert not cn.is_first_day_of_holiday_period(D(2026, 10, 2))
    # 2026-10-10 is a worked Saturday, so the weekend starts on Sunday 10-11
    assert not cn.is_first_day_of_holiday_period(D(2026, 10, 10))
    assert cn.is_first_day_of_holiday_period(D(2026, 10, 11))


# -- missing years and fallback -----------------------------------------------------------


def test_missing_year_raises_naming_year_and_range(cn: BusinessCalendar) -> None:
    with pytest.raises(CalendarYearMissing, match="2030") as info:
        cn.is_business_day(D(2030, 1, 7))
    message = str(info.value)
    assert "2004-2026" in message
    assert info.value.year == 2030
    assert isinstance(info.value, CalendarError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(CalendarYearMissing, match="2003"):
        cn.is_holiday(D(2003, 12, 31))
    # the search reaches into the missing year and says so
    with pytest.raises(CalendarYearMissing, match="2027"):
        cn.next_business_day(D(2026, 12, 31))


def test_weekends_fallback() -> None:
    cal = load_calendar("cn", missing_year="weekends")
    assert cal.missing_year == "weekends"
    assert D(2030, 1, 7).weekday() == 0
    assert cal.is_business_day(D(2030, 1, 7))
    assert not cal.is_business_day(D(2030, 1, 5))  # Saturday
    assert cal.is_business_day(D(2030, 1, 1))  # no holiday knowledge outside the table
    assert cal.holiday_name(D(2030, 1, 1)) is None
    assert cal.next_business_day(D(2030, 1, 4)) == D(2030, 1, 7)
    # inside the table the table still rules
    assert not cal.is_business_day(D(2026, 10, 1))
    assert cal.next_business_day(D(2026, 12, 31)) == D(2027, 1, 1)


def test_bad_policy_and_unknown_calendar() -> None:
    with pytest.raises(ValueError, match="missing_year"):
        load_calendar("cn", missing_year="ignore")
    with pytest.raises(ValueError, match="missing_year"):
        BusinessCalendar({}, {}, range(2020, 2021), missing_year="skip")
    with pytest.raises(CalendarError, match="mars"):
        load_calendar("mars")


def test_weekdays_calendar() -> None:
    cal = load_calendar("weekdays")
    assert cal.is_business_day(D(2026, 10, 1))  # no holidays
    assert not cal.is_business_day(D(2026, 10, 10))  # no adjusted workdays
    assert D(2130, 1, 2).weekday() == 0
    assert cal.is_business_day(D(2130, 1, 2))  # every year covered
    assert not cal.is_business_day(D(2130, 1, 1))  # a Sunday
    assert cal.next_business_day(D(2026, 11, 27)) == D(2026, 11, 30)


def test_custom_calendar_validation() -> None:
    with pytest.raises(CalendarError, match="not a Saturday or Sunday"):
        BusinessCalendar({}, {D(2026, 11, 25): "x"}, range(2026, 2027))
    with pytest.raises(CalendarError, match="outside"):
        BusinessCalendar({D(2025, 1, 1): "x"}, {}, range(2026, 2027))
    with pytest.raises(CalendarError, match="both"):
        BusinessCalendar({D(2026, 11, 28): "x"}, {D(2026, 11, 28): "x"}, range(2026, 2027))


def test_parse_table_rejects_bad_rows() -> None:
    def parse(text: str) -> None:
        business_module._parse_table("cn_2026.csv", 2026, text, {}, {})

    ok = "# source: test\ndate,kind,name\n2026-10-01,holiday,National Day\n"
    parse(ok)
    with pytest.raises(CalendarError, match="kind"):
        parse("# source: t\ndate,kind,name\n2026-10-01,vacation,X\n")
    with pytest.raises(CalendarError, match="not in 2026"):
        parse("# source: t\ndate,kind,name\n2025-10-01,holiday,X\n")
    with pytest.raises(CalendarError, match="bad date"):
        parse("# source: t\ndate,kind,name\n2026-13-01,holiday,X\n")
    with pytest.raises(CalendarError, match="source"):
        parse("date,kind,name\n2026-10-01,holiday,X\n")
    with pytest.raises(CalendarError, match="header"):
        parse("# source: t\n2026-10-01,holiday,X\n")


# -- operating windows ----------------------------------------------------------------------


def test_window_defaults_and_params() -> None:
    w = OperatingWindows()
    assert (w.hvps_open, w.hvps_cutoff, w.hvps_clearing_end, w.card_cutoff) == (
        dt.time(20, 30),
        dt.time(17, 15),
        dt.time(17, 30),
        dt.time(23, 0),
    )
    assert w.hvps_opens_previous_evening
    assert OperatingWindows.from_params({}) == w
    assert OperatingWindows.from_params(w.to_params()) == w
    custom = OperatingWindows.from_params(
        {"hvps.open": "21:00", "cards.cutoff": "22:30", "ibps.item_limit": "50000.00"}
    )
    assert custom.hvps_open == dt.time(21, 0)
    assert custom.card_cutoff == dt.time(22, 30)
    assert custom.hvps_cutoff == dt.time(17, 15)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hvps.open", "25:00"),
        ("hvps.cutoff", "17:60"),
        ("hvps.clearing_end", "noon"),
        ("cards.cutoff", ""),
        ("hvps.open", 1230),  # YAML reads unquoted 20:30 as 1230
    ],
)
def test_bad_param_names_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        OperatingWindows.from_params({key: value})


def test_param_order_is_checked() -> None:
    with pytest.raises(ValueError, match=r"hvps\.cutoff"):
        OperatingWindows.from_params({"hvps.cutoff": "17:30", "hvps.clearing_end": "17:15"})
    with pytest.raises(ValueError, match=r"hvps\.open"):
        OperatingWindows.from_params({"hvps.open": "17:20"})


# -- HVPS phases ------------------------------------------------------------------------------

# 2026-11-25 is a Wednesday, 11-27 Friday, 11-28/29 a normal weekend, 11-30 Monday.


@pytest.mark.parametrize(
    ("moment", "phase", "business_date"),
    [
        (T(2026, 11, 25, 0, 0), HvpsPhase.OPEN, D(2026, 11, 25)),
        (T(2026, 11, 25, 9, 0), HvpsPhase.OPEN, D(2026, 11, 25)),
        (T(2026, 11, 25, 17, 14, 59), HvpsPhase.OPEN, D(2026, 11, 25)),
        (T(2026, 11, 25, 17, 15), HvpsPhase.CLEARING_WINDOW, D(2026, 11, 25)),
        (T(2026, 11, 25, 17, 29, 59), HvpsPhase.CLEARING_WINDOW, D(2026, 11, 25)),
        (T(2026, 11, 25, 17, 30), HvpsPhase.CLOSED, None),
        (T(2026, 11, 25, 20, 29, 59), HvpsPhase.CLOSED, None),
        (T(2026, 11, 25, 20, 30), HvpsPhase.OPEN, D(2026, 11, 26)),
        (T(2026, 11, 25, 23, 59, 59), HvpsPhase.OPEN, D(2026, 11, 26)),
        # Friday evening before a normal weekend: closed
        (T(2026, 11, 27, 20, 30), HvpsPhase.CLOSED, None),
        (T(2026, 11, 28, 12, 0), HvpsPhase.CLOSED, None),
        (T(2026, 11, 28, 20, 30), HvpsPhase.CLOSED, None),  # Saturday before Sunday
        (T(2026, 11, 29, 20, 29), HvpsPhase.CLOSED, None),
        (T(2026, 11, 29, 20, 30), HvpsPhase.OPEN, D(2026, 11, 30)),  # Sunday before Monday
        (T(2026, 11, 30, 8, 0), HvpsPhase.OPEN, D(2026, 11, 30)),
        # National Day: 09-30 Wed business; 10-01..10-07 holiday; 10-08 Thu business
        (T(2026, 9, 30, 20, 30), HvpsPhase.CLOSED, None),  # holiday eve
        (T(2026, 10, 1, 10, 0), HvpsPhase.CLOSED, None),
        (T(2026, 10, 6, 21, 0), HvpsPhase.CLOSED, None),
        (T(2026, 10, 7, 20, 29, 59), HvpsPhase.CLOSED, None),
        (T(2026, 10, 7, 20, 30), HvpsPhase.OPEN, D(2026, 10, 8)),  # last holiday evening
        # Friday 10-09 evening: Saturday 10-10 is an adjusted workday 调休
        (T(2026, 10, 9, 20, 30), HvpsPhase.OPEN, D(2026, 10, 10)),
        (T(2026, 10, 10, 17, 20), HvpsPhase.CLEARING_WINDOW, D(2026, 10, 10)),
        (T(2026, 10, 10, 20, 30), HvpsPhase.CLOSED, None),  # Sunday 10-11 not a business day
    ],
)
def test_hvps_phase(
    cn: BusinessCalendar, moment: dt.datetime, phase: HvpsPhase, business_date: dt.date | None
) -> None:
    assert hvps_phase(moment, cn) == HvpsState(phase, business_date)


def test_hvps_phase_missing_year(cn: BusinessCalendar) -> None:
    assert hvps_phase(T(2026, 12, 31, 10, 0), cn).phase is HvpsPhase.OPEN
    with pytest.raises(CalendarYearMissing, match="2027"):
        hvps_phase(T(2026, 12, 31, 20, 30), cn)


def test_hvps_rejects_aware_datetime(cn: BusinessCalendar) -> None:
    aware = T(2026, 11, 25, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with pytest.raises(ValueError, match="naive"):
        hvps_phase(aware, cn)
    with pytest.raises(ValueError, match="naive"):
        card_clearing_date(aware)


def test_next_hvps_open(cn: BusinessCalendar) -> None:
    # Friday 18:00 before a normal weekend -> Sunday 20:30
    assert next_hvps_open(T(2026, 11, 27, 18, 0), cn) == T(2026, 11, 29, 20, 30)
    # open now -> itself
    assert next_hvps_open(T(2026, 11, 25, 10, 0), cn) == T(2026, 11, 25, 10, 0)
    assert next_hvps_open(T(2026, 11, 25, 20, 30), cn) == T(2026, 11, 25, 20, 30)
    # clearing window is not accepting payments -> the evening opening
    assert next_hvps_open(T(2026, 11, 25, 17, 15), cn) == T(2026, 11, 25, 20, 30)
    # holiday eve and holiday -> the last holiday evening
    assert next_hvps_open(T(2026, 9, 30, 17, 30), cn) == T(2026, 10, 7, 20, 30)
    assert next_hvps_open(T(2026, 10, 3, 9, 0), cn) == T(2026, 10, 7, 20, 30)
    # Friday before a worked Saturday 调休 -> Friday evening
    assert next_hvps_open(T(2026, 10, 9, 18, 0), cn) == T(2026, 10, 9, 20, 30)
    # the weekdays calendar has no holidays
    weekdays = load_calendar("weekdays")
    assert next_hvps_open(T(2026, 9, 30, 18, 0), weekdays) == T(2026, 9, 30, 20, 30)


def test_session_timetable(cn: BusinessCalendar) -> None:
    schedule = HvpsSchedule(cn)
    s = schedule.session(D(2026, 11, 30))
    assert s.opens_at == T(2026, 11, 29, 20, 30)
    assert s.cutoff_at == T(2026, 11, 30, 17, 15)
    assert s.closes_at == T(2026, 11, 30, 17, 30)
    with pytest.raises(CalendarError, match="not a business day"):
        schedule.session(D(2026, 10, 1))


def test_same_day_opening_variant(cn: BusinessCalendar) -> None:
    w = OperatingWindows.from_params(
        {"hvps.open": "08:30", "hvps.cutoff": "17:00", "hvps.clearing_end": "17:30"}
    )
    assert not w.hvps_opens_previous_evening
    assert hvps_phase(T(2026, 11, 25, 8, 29), cn, w) == HvpsState(HvpsPhase.CLOSED, None)
    assert hvps_phase(T(2026, 11, 25, 8, 30), cn, w) == HvpsState(HvpsPhase.OPEN, D(2026, 11, 25))
    assert hvps_phase(T(2026, 11, 25, 21, 0), cn, w).phase is HvpsPhase.CLOSED
    assert next_hvps_open(T(2026, 11, 27, 18, 0), cn, w) == T(2026, 11, 30, 8, 30)


def test_custom_evening_opening(cn: BusinessCalendar) -> None:
    w = OperatingWindows.from_params({"hvps.open": "21:00"})
    assert hvps_phase(T(2026, 11, 25, 20, 30), cn, w).phase is HvpsPhase.CLOSED
    assert hvps_phase(T(2026, 11, 25, 21, 0), cn, w) == HvpsState(HvpsPhase.OPEN, D(2026, 11, 26))


# -- card clearing ---------------------------------------------------------------------------


def test_card_clearing_date() -> None:
    assert card_clearing_date(T(2026, 11, 25, 22, 59, 59)) == D(2026, 11, 25)
    assert card_clearing_date(T(2026, 11, 25, 23, 0)) == D(2026, 11, 26)
    assert card_clearing_date(T(2026, 11, 25, 0, 0)) == D(2026, 11, 25)
    # every natural day, holidays included, and across the year end
    assert card_clearing_date(T(2026, 9, 30, 23, 30)) == D(2026, 10, 1)
    assert card_clearing_date(T(2026, 12, 31, 23, 0)) == D(2027, 1, 1)
    # custom cut-off
    assert card_clearing_date(T(2026, 11, 25, 22, 30), dt.time(22, 30)) == D(2026, 11, 26)
    assert card_clearing_date(T(2026, 11, 25, 23, 59), dt.time(0, 0)) == D(2026, 11, 25)
