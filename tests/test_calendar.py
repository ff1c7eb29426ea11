"""Tests for qingsuan.calendar: business days 工作日, 调休, HVPS windows, card 日切."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import chinese_calendar
import pytest

from qingsuan.calendar import (
    PROJECTION_LAST_YEAR,
    BusinessCalendar,
    CalendarError,
    CalendarYearMissing,
    HvpsPhase,
    HvpsSchedule,
    HvpsState,
    OperatingWindows,
    ScheduleFileError,
    available_calendars,
    card_clearing_date,
    hvps_phase,
    load_calendar,
    load_schedule_file,
    next_hvps_open,
    project_year,
    statutory_days,
)
from qingsuan.calendar import business as business_module
from qingsuan.calendar import projection as projection_module

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
    assert cn.years == range(2004, 2100)
    assert cn.covers(2004) and cn.covers(2026) and cn.covers(2027) and cn.covers(2099)
    assert not cn.covers(2003) and not cn.covers(2100)
    assert cn.projected_years == frozenset(range(2027, 2100))
    assert "State Council" in cn.source
    assert "chinese-calendar 1.11.0" in cn.source
    assert "2027-2099 projected" in cn.source
    assert set(available_calendars()) == {"cn", "weekdays"}
    assert "projected=2027-2099" in repr(cn)


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
    for module in (
        "business.py", "windows.py", "__init__.py", "projection.py", "schedule.py", "errors.py"
    ):
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
    with pytest.raises(CalendarYearMissing, match="2100") as info:
        cn.is_business_day(D(2100, 1, 4))
    message = str(info.value)
    assert "2004-2099" in message
    assert "projection of the holiday rules stops at 2099" in message
    assert info.value.year == 2100
    assert isinstance(info.value, CalendarError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(CalendarYearMissing, match="2003") as before:
        cn.is_holiday(D(2003, 12, 31))
    assert "cn_2003.csv" in str(before.value)
    with pytest.raises(CalendarYearMissing, match="2100"):
        cn.is_projected(D(2100, 1, 4))
    with pytest.raises(CalendarYearMissing, match="2100"):
        cn.year_schedule(2100)
    # the search reaches past the last projected year and says so
    assert D(2099, 12, 31).weekday() == 3
    with pytest.raises(CalendarYearMissing, match="2100"):
        cn.next_business_day(D(2099, 12, 31))


def test_weekends_fallback() -> None:
    cal = load_calendar("cn", missing_year="weekends")
    assert cal.missing_year == "weekends"
    assert D(2100, 1, 4).weekday() == 0
    assert cal.is_business_day(D(2100, 1, 4))
    assert not cal.is_business_day(D(2100, 1, 2))  # Saturday
    assert cal.is_business_day(D(2100, 1, 1))  # no holiday knowledge outside the range
    assert cal.holiday_name(D(2100, 1, 1)) is None
    assert not cal.is_projected(D(2100, 1, 1))  # a fallback, not a projection
    assert cal.next_business_day(D(2100, 1, 1)) == D(2100, 1, 4)
    # inside the range the tables and the projection still rule
    assert not cal.is_business_day(D(2026, 10, 1))
    assert not cal.is_business_day(D(2027, 10, 1))
    assert cal.next_business_day(D(2099, 12, 31)) == D(2100, 1, 1)


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
    assert hvps_phase(T(2099, 12, 31, 10, 0), cn).phase is HvpsPhase.OPEN
    with pytest.raises(CalendarYearMissing, match="2100"):
        hvps_phase(T(2099, 12, 31, 20, 30), cn)
    # the old end of the tables is no end any more: 2027-01-01 is a holiday (Friday)
    assert hvps_phase(T(2026, 12, 31, 20, 30), cn) == HvpsState(HvpsPhase.CLOSED, None)


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


# -- projected years (2027-2099) --------------------------------------------------------------


def _published(year: int) -> tuple[dict[dt.date, str], dict[dt.date, str]]:
    text = (ROOT / "src" / "qingsuan" / "calendar" / "data" / f"cn_{year}.csv").read_text(
        encoding="utf-8"
    )
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    business_module._parse_table(f"cn_{year}.csv", year, text, holidays, workdays)
    return holidays, workdays


def test_new_year_2027_is_a_projected_holiday(cn: BusinessCalendar) -> None:
    day = D(2027, 1, 1)
    assert day.weekday() == 4
    assert cn.is_holiday(day)
    assert not cn.is_business_day(day)
    assert cn.holiday_name(day) == "New Year's Day"
    assert cn.is_projected(day)
    assert cn.is_projected(D(2027, 3, 10))  # every day of a projected year
    assert not cn.is_projected(D(2026, 12, 31))  # published
    assert cn.next_business_day(D(2026, 12, 31)) == D(2027, 1, 4)
    schedule = cn.year_schedule(2027)
    assert schedule.projected and "not an official schedule" in schedule.source
    assert schedule.holidays[day] == "New Year's Day"
    published = cn.year_schedule(2026)
    assert not published.projected and "State Council" in published.source
    assert published.workdays[D(2026, 10, 10)] == "National Day"


def test_spring_festival_2027_and_2030_on_the_lunar_dates(cn: BusinessCalendar) -> None:
    # 正月初一 2027 is Saturday 6 February, 2030 Sunday 3 February; 除夕 the day before.
    for eve in (D(2027, 2, 5), D(2030, 2, 2)):
        for offset in range(4):  # 除夕 to 初三: the four statutory days
            day = eve + dt.timedelta(days=offset)
            assert cn.holiday_name(day) == "Spring Festival", day
            assert cn.is_projected(day)
        assert statutory_days(eve.year)[eve] == "Spring Festival"
        assert cn.is_business_day(eve - dt.timedelta(days=1))  # 腊月廿八/廿九: work
    # bridged to the customary period of eight days from 除夕 with two worked weekend days
    # (the Saturday after touches the period, so it is a day off too: nine, like 2026)
    assert [d for d in cn.year_schedule(2027).holidays if d.month == 2] == [
        D(2027, 2, 5) + dt.timedelta(days=i) for i in range(9)
    ]
    assert {d: n for d, n in cn.year_schedule(2027).workdays.items() if d.month < 3} == {
        D(2027, 1, 31): "Spring Festival",
        D(2027, 2, 14): "Spring Festival",
    }
    assert cn.is_business_day(D(2027, 2, 14)) and D(2027, 2, 14).weekday() == 6
    # 2030: 除夕 on a Saturday, 2-9 February off, Sunday 10 February worked
    assert [d for d in cn.year_schedule(2030).holidays if d.month == 2] == [
        D(2030, 2, 2) + dt.timedelta(days=i) for i in range(8)
    ]
    assert cn.is_adjusted_workday(D(2030, 2, 10))


def test_national_day_2031(cn: BusinessCalendar) -> None:
    # 2031: Mid-Autumn falls on 1 October itself; joined, the period is 1-8 October
    assert statutory_days(2031)[D(2031, 10, 1)] == "National Day"
    for i in range(8):
        day = D(2031, 10, 1) + dt.timedelta(days=i)
        assert cn.is_holiday(day) and not cn.is_business_day(day), day
        assert cn.holiday_name(day) == "National Day"
    assert cn.is_business_day(D(2031, 9, 30))
    assert cn.is_business_day(D(2031, 10, 9))
    assert cn.is_adjusted_workday(D(2031, 9, 28))  # Sunday before
    assert cn.is_adjusted_workday(D(2031, 10, 11))  # Saturday after
    assert cn.is_first_day_of_holiday_period(D(2031, 10, 1))


def test_weekday_in_2028_is_a_business_day(cn: BusinessCalendar) -> None:
    day = D(2028, 3, 15)
    assert day.weekday() == 2
    assert cn.is_business_day(day)
    assert not cn.is_holiday(day)
    assert cn.holiday_name(day) is None
    assert cn.is_projected(day)
    assert not cn.is_business_day(D(2028, 3, 18))  # an ordinary Saturday
    assert cn.next_business_day(day) == D(2028, 3, 16)


def test_hvps_closed_on_a_projected_holiday(cn: BusinessCalendar) -> None:
    # National Day 2027: Friday 1 to Thursday 7 October, Saturday 9 October worked
    assert cn.is_projected(D(2027, 10, 1))
    assert hvps_phase(T(2027, 10, 1, 10, 0), cn) == HvpsState(HvpsPhase.CLOSED, None)
    assert hvps_phase(T(2027, 9, 30, 20, 30), cn) == HvpsState(HvpsPhase.CLOSED, None)
    assert next_hvps_open(T(2027, 9, 30, 17, 30), cn) == T(2027, 10, 7, 20, 30)
    assert hvps_phase(T(2027, 10, 7, 20, 30), cn) == HvpsState(HvpsPhase.OPEN, D(2027, 10, 8))
    # the worked Saturday 调休 opens on Friday evening
    assert hvps_phase(T(2027, 10, 8, 20, 30), cn) == HvpsState(HvpsPhase.OPEN, D(2027, 10, 9))
    with pytest.raises(CalendarError, match="not a business day"):
        HvpsSchedule(cn).session(D(2027, 10, 4))


@pytest.mark.parametrize("year", [2025, 2026])
def test_projection_reproduces_the_published_schedules(year: int) -> None:
    # the only years published under the 2025 rules: the projection must give them exactly
    schedule = project_year(year)
    assert (dict(schedule.holidays), dict(schedule.workdays)) == _published(year)
    assert schedule.projected


def test_projection_invariants_2027_2099(cn: BusinessCalendar) -> None:
    one = dt.timedelta(days=1)
    for year in range(2027, PROJECTION_LAST_YEAR + 1):
        schedule = cn.year_schedule(year)
        assert schedule.projected and schedule == project_year(year)
        statutory = statutory_days(year)
        assert len(statutory) in (12, 13), year  # 12 when Mid-Autumn falls on 1-3 October
        assert all(schedule.holidays[day] for day in statutory), year
        # every statutory day is owed exactly one weekday off: bridged weekdays are made up
        weekdays_off = sum(1 for day in schedule.holidays if day.weekday() < 5)
        assert weekdays_off - len(schedule.workdays) == 13, year
        for day in schedule.workdays:
            # a worked weekend day touches an ordinary working weekday
            neighbour = day - one if day.weekday() == 5 else day + one
            assert neighbour.weekday() < 5 and cn.is_business_day(neighbour), day
        # no holiday period longer than nine days, no working week longer than seven days
        day, off, on = D(year, 1, 1), 0, 0
        while day.year == year:
            if cn.is_business_day(day):
                off, on = 0, on + 1
            else:
                off, on = off + 1, 0
            assert off <= 9 and on <= 7, day
            day += one


def test_qingming_is_the_solar_term() -> None:
    # the standard formula for 2000-2099, [Y*0.2422 + 4.81] - [Y/4], in integers
    for year in range(2000, 2100):
        y = year % 100
        assert projection_module.qingming(year) == D(year, 4, (y * 2422 + 48100) // 10000 - y // 4)
    for year in range(2008, 2027):  # Qingming has been a public holiday since 2008
        holidays, _ = _published(year)
        assert holidays[projection_module.qingming(year)] == "Tomb-sweeping Day", year


def test_lunar_dates_agree_with_the_published_tables(cn: BusinessCalendar) -> None:
    for year in range(2008, 2027):
        first_day = projection_module.SPRING_FESTIVAL.first_day(year) + dt.timedelta(days=1)
        dragon_boat = projection_module.DRAGON_BOAT.first_day(year)
        mid_autumn = projection_module.MID_AUTUMN.first_day(year)
        assert D(year, 1, 21) <= first_day <= D(year, 2, 20), first_day
        assert cn.holiday_name(first_day) == "Spring Festival", year
        for day, names in ((dragon_boat, {"Dragon Boat Festival"}),
                           (mid_autumn, {"Mid-autumn Festival", "National Day"})):
            assert not cn.is_business_day(day), day
            # the tables leave out a festival falling on a weekend in 2012
            assert cn.holiday_name(day) in names or day.weekday() >= 5, day


def test_projection_is_bounded() -> None:
    with pytest.raises(CalendarError, match="2025-2099"):
        project_year(2100)
    with pytest.raises(CalendarError, match="2025-2099"):
        statutory_days(2024)
    with pytest.raises(CalendarError, match="cannot be projected"):
        BusinessCalendar({}, {}, range(2020, 2031), projected_years=[2024])
    with pytest.raises(CalendarError, match="projected"):
        BusinessCalendar({D(2027, 1, 1): "x"}, {}, range(2027, 2028), projected_years=[2027])


# -- official schedule files -------------------------------------------------------------------

# Test data, not the real 2027 notice: only the shape of one.
OFFICIAL_2027 = """\
source: 国务院办公厅关于2027年部分节假日安排的通知 (test data)
years:
  2027:
    - {name: New Year's Day, from: 2027-01-01, to: 2027-01-03}
    - name: Spring Festival
      from: 2027-02-05
      to: 2027-02-11
      workdays: [2027-02-20]
    - {name: Tomb-sweeping Day, from: 2027-04-03, to: 2027-04-05}
    - {name: Labour Day, from: 2027-05-01, to: 2027-05-05, workdays: [2027-04-25]}
    - {name: Dragon Boat Festival, from: 2027-06-09}
    - {name: Mid-autumn Festival, from: 2027-09-15}
    - name: National Day
      from: 2027-10-01
      to: 2027-10-07
      workdays: ["2027-09-26", "2027-10-09"]
"""


def test_official_file_overrides_the_projection(tmp_path: Path) -> None:
    path = tmp_path / "notice_2027.yaml"
    path.write_text(OFFICIAL_2027, encoding="utf-8")
    (schedule,) = load_schedule_file(path)
    assert schedule.year == 2027 and not schedule.projected
    assert schedule.workdays[D(2027, 2, 20)] == "Spring Festival"
    cal = load_calendar("cn", schedule_files=[path])
    projected = load_calendar("cn")
    # the projection bridges 12 February and works Sunday 14 February; the file does not
    assert not projected.is_business_day(D(2027, 2, 12))
    assert cal.is_business_day(D(2027, 2, 12))
    assert projected.is_adjusted_workday(D(2027, 2, 14))
    assert not cal.is_business_day(D(2027, 2, 14))
    assert cal.is_adjusted_workday(D(2027, 2, 20))
    assert cal.is_adjusted_workday(D(2027, 4, 25))
    assert cal.holiday_name(D(2027, 10, 4)) == "National Day"
    assert not cal.is_projected(D(2027, 2, 12))
    assert cal.is_projected(D(2028, 1, 3))  # the other years stay projected
    assert cal.projected_years == frozenset(range(2028, 2100))
    assert cal.year_schedule(2027).source == (
        "国务院办公厅关于2027年部分节假日安排的通知 (test data) (file notice_2027.yaml)"
    )
    assert "notice_2027.yaml" in cal.source and "2028-2099 projected" in cal.source
    assert cal.holidays[D(2027, 1, 1)] == "New Year's Day"
    assert cal.holidays[D(2026, 1, 1)] == "New Year's Day"  # published years untouched


def test_official_file_in_json(tmp_path: Path) -> None:
    path = tmp_path / "notice.json"
    path.write_text(json.dumps({
        "source": "test data",
        "years": {"2028": [
            {"name": "New Year's Day", "from": "2028-01-01", "to": "2028-01-03"},
            {"name": "Labour Day", "from": "2028-05-01", "to": "2028-05-02"},
        ]},
    }), encoding="utf-8")
    cal = load_calendar("cn", schedule_files=[path])
    assert cal.is_business_day(D(2028, 5, 3))  # the projection would bridge it
    assert not load_calendar("cn").is_business_day(D(2028, 5, 3))
    assert not cal.is_projected(D(2028, 5, 3))
    assert cal.is_projected(D(2027, 5, 3))


def _entry(**fields: object) -> dict[str, object]:
    return {"name": "National Day", "from": "2027-10-01", "to": "2027-10-07", **fields}


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        ({"years": {"2027": [_entry()]}}, "source", "missing"),
        ({"source": "", "years": {"2027": [_entry()]}}, "source", "non-empty"),
        ({"source": "s", "years": {"2027": [_entry()]}, "colour": 1}, "colour", "unknown key"),
        ({"source": "s"}, "years", "missing"),
        ({"source": "s", "years": {}}, "years", "no year"),
        ({"source": "s", "years": {"27": [_entry()]}}, "years.27", "four digits"),
        ({"source": "s", "years": {"2100": [_entry()]}}, "years.2100", "outside"),
        ({"source": "s", "years": {"2027": {}}}, "years.2027", "list of holidays"),
        ({"source": "s", "years": {"2027": []}}, "years.2027", "empty"),
        ({"source": "s", "years": {"2027": ["x"]}}, "years.2027[0]", "mapping"),
        ({"source": "s", "years": {"2027": [_entry(name=None)]}}, "years.2027[0].name",
         "missing"),
        ({"source": "s", "years": {"2027": [_entry(colour="red")]}}, "years.2027[0].colour",
         "unknown key"),
        ({"source": "s", "years": {"2027": [_entry(**{"from": "2027-13-01"})]}},
         "years.2027[0].from", "no such date"),
        ({"source": "s", "years": {"2027": [_entry(**{"from": "1 Oct"})]}},
         "years.2027[0].from", "YYYY-MM-DD"),
        ({"source": "s", "years": {"2027": [_entry(to="2027-09-30")]}}, "years.2027[0].to",
         "before from"),
        ({"source": "s", "years": {"2027": [_entry(to="2027-10-31")]}}, "years.2027[0].to",
         "at most 16"),
        ({"source": "s", "years": {"2027": [_entry(**{"from": "2026-12-31"})]}},
         "years.2027[0].from", "not in 2027"),
        ({"source": "s", "years": {"2027": [_entry(workdays=["2027-10-11"])]}},
         "years.2027[0].workdays[0]", "Monday"),
        ({"source": "s", "years": {"2027": [_entry(workdays="2027-10-09")]}},
         "years.2027[0].workdays", "list of dates"),
        ({"source": "s", "years": {"2027": [_entry(workdays=["2027-10-03"])]}},
         "years.2027[0].workdays[0]", "already listed at years.2027[0].from..to"),
        ({"source": "s", "years": {"2027": [_entry(), _entry(**{"from": "2027-10-07"})]}},
         "years.2027[1].from..to", "2027-10-07 already listed"),
    ],
)
def test_bad_schedule_file_names_the_field(
    tmp_path: Path, document: dict[str, object], field: str, words: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ScheduleFileError) as info:
        load_schedule_file(path)
    assert info.value.field == field
    assert info.value.file == "bad.json"
    assert str(info.value).startswith(f"bad.json: {field}: ")
    assert words in info.value.problem
    assert isinstance(info.value, CalendarError)


def test_bad_schedule_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("source: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScheduleFileError, match=r"broken\.yaml: not valid YAML"):
        load_schedule_file(broken)
    with pytest.raises(ScheduleFileError, match=r"use \.yaml, \.yml or \.json"):
        load_schedule_file(tmp_path / "notice.txt")
    with pytest.raises(ScheduleFileError, match="cannot read"):
        load_schedule_file(tmp_path / "absent.yaml")
    # a YAML date and time is not a date; an unquoted YAML date is
    timed = tmp_path / "timed.yaml"
    timed.write_text(OFFICIAL_2027.replace("from: 2027-06-09", "from: 2027-06-09T08:00"),
                     encoding="utf-8")
    with pytest.raises(ScheduleFileError, match=r"years\.2027\[4\]\.from: expected a date"):
        load_schedule_file(timed)
    # the calendar checks what the file alone cannot
    early = tmp_path / "early.yaml"
    early.write_text("source: s\nyears:\n  2003:\n    - {name: X, from: 2003-10-01}\n",
                     encoding="utf-8")
    with pytest.raises(ScheduleFileError, match=r"early\.yaml: years\.2003: outside .*2004-2099"):
        load_calendar("cn", schedule_files=[early])
    one = tmp_path / "one.yaml"
    one.write_text(OFFICIAL_2027, encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text(OFFICIAL_2027, encoding="utf-8")
    with pytest.raises(ScheduleFileError, match=r"other\.yaml: years\.2027: also given by one"):
        load_calendar("cn", schedule_files=[one, other])
    with pytest.raises(CalendarError, match="no holidays"):
        load_calendar("weekdays", schedule_files=[one])


def test_generator_writes_a_table_from_an_official_file(tmp_path: Path) -> None:
    notice = tmp_path / "notice_2027.yaml"
    notice.write_text(OFFICIAL_2027, encoding="utf-8")
    tool = [sys.executable, str(ROOT / "tools" / "gen_calendar.py"), "--from-file", str(notice),
            "--out", str(tmp_path / "data")]
    result = subprocess.run(tool, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "data" / "cn_2027.csv").read_text(encoding="utf-8")
    assert text.startswith("# source: 国务院办公厅关于2027年部分节假日安排的通知 (test data); "
                           "converted by tools/gen_calendar.py --from-file notice_2027.yaml\n")
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    business_module._parse_table("cn_2027.csv", 2027, text, holidays, workdays)
    (schedule,) = load_schedule_file(notice)
    assert (holidays, workdays) == (dict(schedule.holidays), dict(schedule.workdays))
    check = subprocess.run([*tool, "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: s\nyears: {2027: []}\n", encoding="utf-8")
    failed = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_calendar.py"), "--from-file", str(bad),
         "--out", str(tmp_path / "data")], capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert "bad.yaml: years.2027: empty list" in failed.stderr


# -- a scenario in a projected year ---------------------------------------------------------------

_SCRIPT = Path(sys.executable).with_name("qingsuan")
_COMMAND = ([str(_SCRIPT)] if _SCRIPT.exists()
            else [sys.executable, "-c", "from qingsuan.cli import main; main()"])


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*_COMMAND, "run", "--store", "memory:", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_scenario_in_2027_runs(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "intrabank.yaml").read_text(encoding="utf-8")
    assert text.count("2026-11-25") >= 3
    scenario = tmp_path / "intrabank-2027.yaml"
    scenario.write_text(text.replace("2026-11-25", "2027-01-04"), encoding="utf-8")
    result = _run("--json", scenario)
    assert result.returncode == 0, result.stderr + result.stdout
    outcome = json.loads(result.stdout)
    assert outcome["ended_at"].startswith("2027-01-04T18:00")
    assert outcome["payments"]["rent"]["status"] == "credited"
    assert all(outcome["checks"].values()), outcome["checks"]
    # past the projection the scenario is refused, naming the limit
    late = tmp_path / "intrabank-2100.yaml"
    late.write_text(text.replace("2026-11-25", "2100-01-04"), encoding="utf-8")
    refused = _run(late)
    assert refused.returncode == 2
    assert "projection stops at 2099" in refused.stdout + refused.stderr


def test_hvps_payment_on_a_projected_holiday_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "national-day-2027.yaml"
    scenario.write_text(
        "name: national-day-2027\n"
        "start: 2027-09-30T16:00\n"
        "run_until: 2027-10-01T12:00\n"
        "participants:\n"
        '  - {name: ICBC, code: "102100099996", settlement_balance: "2000000.00"}\n'
        '  - {name: CCB,  code: "105100000017", settlement_balance: "2000000.00"}\n'
        "customers:\n"
        '  - {id: factory, bank: ICBC, account: "6222020200000000030", balance: "900000.00"}\n'
        '  - {id: worker,  bank: CCB,  account: "6217000010000000029", balance: "1000.00"}\n'
        "events:\n"
        "  - {at: 2027-09-30T16:00, do: hvps_payment, id: eve, from: factory, to: worker,"
        ' amount: "1000.00"}\n'
        "  - {at: 2027-10-01T10:00, do: hvps_payment, id: holiday, from: factory, to: worker,"
        ' amount: "1000.00"}\n',
        encoding="utf-8",
    )
    result = _run("--json", scenario)
    assert result.returncode == 0, result.stderr + result.stdout
    payments = json.loads(result.stdout)["payments"]
    assert payments["eve"]["status"] == "credited"
    assert payments["holiday"]["status"] == "rejected"
    assert "it opens 2027-10-07T20:30" in payments["holiday"]["reason"]["message"]


@pytest.mark.parametrize("opens", ["20:30", "08:30"])
def test_hvps_phase_holds_until_the_next_boundary(opens: str) -> None:
    """HVPS's phase is asked after every command and cached over the span
    ``phase_holds_until`` gives: anywhere in that span the phase is the same (across
    weekends, the National Day week and both opening conventions)."""
    import random

    from qingsuan.calendar.windows import HvpsSchedule, OperatingWindows

    sched = HvpsSchedule(load_calendar("cn"), OperatingWindows.from_params({"hvps.open": opens}))
    rng = random.Random(7)
    start = dt.datetime(2026, 9, 25)
    changes = 0
    for _ in range(3_000):
        moment = start + dt.timedelta(seconds=rng.randrange(0, 20 * 86_400))
        until = sched.phase_holds_until(moment)
        assert moment < until <= dt.datetime.combine(moment.date(), dt.time()) + \
            dt.timedelta(days=1)
        phase = sched.phase(moment)
        for probe in (moment + (until - moment) / 2, until - dt.timedelta(microseconds=1)):
            assert sched.phase(probe) == phase, (moment, until, probe)
        changes += sched.phase(until) != phase
    assert changes > 100  # the spans end where the phase does change, often
