"""Projected holiday schedules for years whose State Council notice is not published yet.

The national holidays as revised in 2025 (全国年节及纪念日放假办法, in force from 2025) fix
the statutory days; the State Council's notice for each year then bridges them into blocks
with adjusted weekend workdays 调休. :data:`RULES` is that pattern as data, one row per
holiday; the placement steps are below and in docs/CALENDAR.md. Applied to 2025 and 2026 the
rules give exactly the published schedules (tests/test_calendar.py checks it).

What a reader would get wrong: a projected 调休 is a forecast, not a fact. Every day of a
projected year says so (:attr:`YearSchedule.projected`, ``BusinessCalendar.is_projected``);
load the official notice when it appears (``load_calendar(schedule_files=...)``).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from lunar_python import Lunar

from qingsuan.calendar.errors import CalendarError
from qingsuan.calendar.schedule import YearSchedule

__all__ = [
    "PROJECTION_FIRST_YEAR",
    "PROJECTION_LAST_YEAR",
    "PROJECTION_SOURCE",
    "RULES",
    "HolidayRule",
    "Placement",
    "project_year",
    "qingming",
    "statutory_days",
]

PROJECTION_FIRST_YEAR: Final = 2025
"""The rules below are those in force from 2025; earlier years follow older rules."""
PROJECTION_LAST_YEAR: Final = 2099
"""The last year projected: a bound, and the range the solar-term and lunar dates are
checked for."""
PROJECTION_SOURCE: Final = (
    "projected by qingsuan.calendar.projection from the national holidays as revised in "
    "2025 and the State Council's customary 调休 pattern; not an official schedule"
)

_ONE_DAY: Final = dt.timedelta(days=1)
_SATURDAY: Final = 5
# How far from a holiday period an adjusted workday 调休 may be searched for (the notices
# have used at most the second weekend after, 2026's Spring Festival).
_WORKDAY_SEARCH_DAYS: Final = 21
_MAX_WORKED_DAYS: Final = 2


class Placement(enum.Enum):
    """Where a holiday period 放假调休 of ``block_days`` days sits around the statutory days."""

    FROM_FIRST_DAY = "from_first_day"
    """Starts on the first statutory day (Spring Festival 自除夕起, National Day 10-01)."""
    FEWEST_BRIDGED = "fewest_bridged"
    """The window holding the statutory days with the fewest bridged weekdays, then the one
    starting nearest the first statutory day (the three-day weekends; Labour Day)."""


@dataclass(frozen=True, slots=True)
class HolidayRule:
    """One national holiday: its name (as in the packaged tables), its first statutory day
    in a year, how many statutory days it has, and the customary period around them:
    ``block_days`` days placed by ``placement``, bridged with at most ``max_bridged_days``
    weekdays made up by 调休 (more than that: no bridging, e.g. a Wednesday holiday)."""

    name: str
    first_day: Callable[[int], dt.date]
    statutory_days: int
    block_days: int
    placement: Placement
    max_bridged_days: int


def _lunar(year: int, month: int, day: int) -> dt.date:
    """The Gregorian date of day ``day`` of (non-leap) lunar month ``month`` of ``year``."""
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return dt.date(solar.getYear(), solar.getMonth(), solar.getDay())


def _fixed(month: int, day: int) -> Callable[[int], dt.date]:
    return lambda year: dt.date(year, month, day)


def qingming(year: int) -> dt.date:
    """清明, the solar term (about 4-5 April), by the library's astronomical tables."""
    term = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    day = dt.date(term.getYear(), term.getMonth(), term.getDay())
    assert day.year == year and day.month == 4 and 3 <= day.day <= 6, day
    return day


def _lunar_new_year_eve(year: int) -> dt.date:
    """除夕: the day before the first day of the first lunar month (29th or 30th of the 12th)."""
    return _lunar(year, 1, 1) - _ONE_DAY


NEW_YEAR: Final = HolidayRule("New Year's Day", _fixed(1, 1), 1, 3, Placement.FEWEST_BRIDGED, 1)
SPRING_FESTIVAL: Final = HolidayRule(
    "Spring Festival", _lunar_new_year_eve, 4, 8, Placement.FROM_FIRST_DAY, 2
)
QINGMING: Final = HolidayRule("Tomb-sweeping Day", qingming, 1, 3, Placement.FEWEST_BRIDGED, 1)
LABOUR_DAY: Final = HolidayRule("Labour Day", _fixed(5, 1), 2, 5, Placement.FEWEST_BRIDGED, 1)
DRAGON_BOAT: Final = HolidayRule(
    "Dragon Boat Festival", lambda y: _lunar(y, 5, 5), 1, 3, Placement.FEWEST_BRIDGED, 1
)
MID_AUTUMN: Final = HolidayRule(
    "Mid-autumn Festival", lambda y: _lunar(y, 8, 15), 1, 3, Placement.FEWEST_BRIDGED, 1
)
NATIONAL_DAY: Final = HolidayRule("National Day", _fixed(10, 1), 3, 7, Placement.FROM_FIRST_DAY, 2)

RULES: Final = (NEW_YEAR, SPRING_FESTIVAL, QINGMING, LABOUR_DAY, DRAGON_BOAT, MID_AUTUMN,
                NATIONAL_DAY)
"""The 2025 rules, in calendar order: 13 statutory days a year."""

# Mid-Autumn falling from 26 September to 8 October joins National Day in one period of
# National Day's days plus one, from the earlier first day (2017, 2020, 2023, 2025).
_JOINED_MID_AUTUMN: Final = ((9, 26), (10, 8))
_JOINED_EXTRA_DAYS: Final = 1


@dataclass(frozen=True, slots=True)
class _Occurrence:
    """One holiday period to place: its statutory days (a date may repeat when two holidays
    coincide; each repetition is owed a day off) and the rule for the period."""

    name: str
    statutory: tuple[tuple[dt.date, str], ...]
    block_days: int
    placement: Placement
    max_bridged_days: int

    @property
    def first(self) -> dt.date:
        return min(day for day, _ in self.statutory)

    @property
    def last(self) -> dt.date:
        return max(day for day, _ in self.statutory)


def _occurrence(rule: HolidayRule, year: int) -> _Occurrence:
    first = rule.first_day(year)
    days = tuple((first + _ONE_DAY * i, rule.name) for i in range(rule.statutory_days))
    return _Occurrence(rule.name, days, rule.block_days, rule.placement, rule.max_bridged_days)


def _occurrences(year: int) -> list[_Occurrence]:
    """The holiday periods of ``year`` in date order, Mid-Autumn joined to National Day when
    it falls near it."""
    out = [_occurrence(rule, year) for rule in RULES if rule not in (MID_AUTUMN, NATIONAL_DAY)]
    mid_autumn, national = _occurrence(MID_AUTUMN, year), _occurrence(NATIONAL_DAY, year)
    low, high = (dt.date(year, m, d) for m, d in _JOINED_MID_AUTUMN)
    if low <= mid_autumn.first <= high:
        out.append(_Occurrence(
            NATIONAL_DAY.name,
            national.statutory + mid_autumn.statutory,  # National Day's name wins a shared day
            NATIONAL_DAY.block_days + _JOINED_EXTRA_DAYS,
            Placement.FROM_FIRST_DAY,
            NATIONAL_DAY.max_bridged_days,
        ))
    else:
        out += [mid_autumn, national]
    return sorted(out, key=lambda occ: occ.first)


def statutory_days(year: int) -> dict[dt.date, str]:
    """The statutory holidays of ``year`` (13 days under the 2025 rules), date -> name,
    before any bridging: what the law fixes, whatever the notice will add."""
    _check_year(year)
    out: dict[dt.date, str] = {}
    for occ in _occurrences(year):
        for day, name in occ.statutory:
            out.setdefault(day, name)
    return out


def _weekdays_in(start: dt.date, days: int) -> int:
    return sum(1 for i in range(days) if (start + _ONE_DAY * i).weekday() < _SATURDAY)


def _choose_window(occ: _Occurrence) -> tuple[dt.date, int] | None:
    """The period's first day and how many weekdays it bridges; None if every candidate
    bridges more than the rule allows."""
    owed = len(occ.statutory)  # a statutory day on a weekend is owed a weekday 补休
    length = occ.block_days
    if occ.placement is Placement.FROM_FIRST_DAY:
        starts = [occ.first]
    else:
        span = (occ.last - occ.first).days + 1
        starts = [occ.first - _ONE_DAY * back for back in range(length - span + 1)]
    best: tuple[tuple[int, int], dt.date, int] | None = None
    for start in starts:
        assert start <= occ.first and start + _ONE_DAY * (length - 1) >= occ.last, occ
        bridged = _weekdays_in(start, length) - owed
        if bridged < 0:
            continue  # no room for the 补休
        key = (bridged, (occ.first - start).days)
        if best is None or key < best[0]:
            best = (key, start, bridged)
    if best is None or best[2] > occ.max_bridged_days:
        return None
    return best[1], best[2]


def _unbridged_days(occ: _Occurrence) -> list[dt.date]:
    """No bridging: the statutory days, plus for each one on a weekend the next free weekday
    (补休), plus the weekend days between them."""
    days = sorted({day for day, _ in occ.statutory})
    owed_in_lieu = sum(1 for day, _ in occ.statutory if day.weekday() >= _SATURDAY)
    owed_in_lieu += len(occ.statutory) - len(days)  # two holidays on one date
    candidate = occ.last + _ONE_DAY
    while owed_in_lieu:
        if candidate.weekday() < _SATURDAY:
            days.append(candidate)
            owed_in_lieu -= 1
        candidate += _ONE_DAY
    return [days[0] + _ONE_DAY * i for i in range((days[-1] - days[0]).days + 1)]


def _free_weekend_day(day: dt.date, holidays: dict[dt.date, str],
                      workdays: dict[dt.date, str]) -> bool:
    return day.weekday() >= _SATURDAY and day not in holidays and day not in workdays


def _workday_candidates(start: dt.date, end: dt.date, direction: int,
                        holidays: dict[dt.date, str], workdays: dict[dt.date, str]
                        ) -> list[tuple[int, dt.date]]:
    """Weekend days that could be worked, nearest the period first, as (distance, day).
    A worked weekend day must touch an ordinary working weekday (a Saturday after a worked
    Friday, a Sunday before a worked Monday), never stand alone between days off."""
    out: list[tuple[int, dt.date]] = []
    day = start - _ONE_DAY if direction < 0 else end + _ONE_DAY
    for distance in range(1, _WORKDAY_SEARCH_DAYS + 1):
        if _free_weekend_day(day, holidays, workdays):
            neighbour = day - _ONE_DAY if day.weekday() == _SATURDAY else day + _ONE_DAY
            if neighbour.weekday() < _SATURDAY and neighbour not in holidays:
                out.append((distance, day))
        day += _ONE_DAY * direction
    return out


def _worked_days(start: dt.date, end: dt.date, count: int, holidays: dict[dt.date, str],
                 workdays: dict[dt.date, str]) -> list[dt.date]:
    """``count`` adjusted workdays 调休 for a period: one each side when two, the nearest
    (the earlier on a tie) when one."""
    assert 0 <= count <= _MAX_WORKED_DAYS, count
    if count == 0:
        return []
    before = _workday_candidates(start, end, -1, holidays, workdays)
    after = _workday_candidates(start, end, 1, holidays, workdays)
    if count == 2 and before and after:
        return [before[0][1], after[0][1]]
    nearest = sorted(before + after)  # on a tie the earlier day (before the period) wins
    if len(nearest) < count:
        raise CalendarError(
            f"projection: no weekend day to work within {_WORKDAY_SEARCH_DAYS} days of the "
            f"holiday period {start.isoformat()}..{end.isoformat()}"
        )
    return [day for _, day in nearest[:count]]


def _place(occ: _Occurrence, holidays: dict[dt.date, str], workdays: dict[dt.date, str]
           ) -> None:
    """Add one holiday period and its adjusted workdays to ``holidays``/``workdays``."""
    names: dict[dt.date, str] = {}
    for day, name in occ.statutory:
        names.setdefault(day, name)
    window = _choose_window(occ)
    if window is None:
        days, bridged = _unbridged_days(occ), 0
    else:
        start, bridged = window
        days = [start + _ONE_DAY * i for i in range(occ.block_days)]
    for day in days:
        assert day not in holidays and day not in workdays, (day, occ.name)
        holidays[day] = names.get(day, occ.name)
    start, end = days[0], days[-1]
    for day in _worked_days(start, end, bridged, holidays, workdays):
        workdays[day] = occ.name
    # the weekend days touching the period are part of it (放假 from Saturday, say)
    day = start - _ONE_DAY
    while _free_weekend_day(day, holidays, workdays):
        holidays[day] = occ.name
        day -= _ONE_DAY
    day = end + _ONE_DAY
    while _free_weekend_day(day, holidays, workdays):
        holidays[day] = occ.name
        day += _ONE_DAY


def _check_year(year: int) -> None:
    if not PROJECTION_FIRST_YEAR <= year <= PROJECTION_LAST_YEAR:
        raise CalendarError(
            f"no projected holiday schedule for {year}: the projection covers "
            f"{PROJECTION_FIRST_YEAR}-{PROJECTION_LAST_YEAR} (the rules in force from 2025; "
            f"bounded at {PROJECTION_LAST_YEAR})"
        )


@functools.cache
def project_year(year: int) -> YearSchedule:
    """The projected schedule of ``year`` (2025-2099): its statutory holidays bridged by the
    customary pattern, marked ``projected``. A New Year period that starts in late December
    belongs to the December's year, as in the published tables."""
    _check_year(year)
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    for occ in [*_occurrences(year), _occurrence(NEW_YEAR, year + 1)]:
        _place(occ, holidays, workdays)
    return YearSchedule(
        year,
        {day: name for day, name in holidays.items() if day.year == year},
        {day: name for day, name in workdays.items() if day.year == year},
        PROJECTION_SOURCE,
        projected=True,
    )
