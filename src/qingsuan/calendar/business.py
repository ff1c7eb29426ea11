"""Business days (工作日) of the Chinese payment system.

A *business day* 工作日 is a day on which HVPS settles and BEPS/IBPS net positions are
settled in HVPS:

* Monday to Friday, unless it is a public holiday 节假日;
* plus the adjusted weekend workdays 调休 (a Saturday or Sunday worked to compensate for a
  bridged holiday, e.g. Saturday 2026-10-10 after National Day).

The exceptional days of a year come, in this order of precedence, from an official schedule
file the caller loads (:func:`load_calendar` ``schedule_files``), from the packaged tables of
published notices (``qingsuan/calendar/data/cn_YYYY.csv``, written by
``tools/gen_calendar.py``), or from the projection of the rules in force
(:mod:`qingsuan.calendar.projection`) for the years after the last published one, up to
:data:`PROJECTION_LAST_YEAR`. A projected day says so (:meth:`BusinessCalendar.is_projected`).
A date outside the covered years raises :class:`CalendarYearMissing` unless the calendar is
built with ``missing_year="weekends"`` (stated fallback: Monday-Friday are business days).

Everything here is pure: no system time, no mutable global state (the parsed tables and the
projected years are cached immutably).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Final

from qingsuan.calendar.errors import CalendarError
from qingsuan.calendar.projection import (
    PROJECTION_FIRST_YEAR,
    PROJECTION_LAST_YEAR,
    PROJECTION_SOURCE,
    project_year,
)
from qingsuan.calendar.schedule import ScheduleFileError, YearSchedule, load_schedule_file

__all__ = [
    "MISSING_YEAR_POLICIES",
    "BusinessCalendar",
    "CalendarError",
    "CalendarYearMissing",
    "available_calendars",
    "load_calendar",
]

MISSING_YEAR_POLICIES: Final = ("error", "weekends")
"""Accepted values of ``missing_year``: raise, or fall back to Monday-Friday."""

_WEEKDAYS_NAME: Final = "weekdays"
_PROJECTED_CALENDARS: Final = frozenset({"cn"})
"""Calendars whose years after the last published table are projected by the Chinese rules."""
_TABLE_NAME_RE: Final = re.compile(r"^([a-z][a-z0-9]*)_(\d{4})\.csv$")
_HEADER: Final = ["date", "kind", "name"]
_KIND_HOLIDAY: Final = "holiday"
_KIND_WORKDAY: Final = "workday"
_ONE_DAY: Final = dt.timedelta(days=1)
# No valid calendar has a run of non-business days this long; guards the day-by-day searches.
_MAX_SEARCH_DAYS: Final = 400
_MAX_SCHEDULE_FILES: Final = 100


class CalendarYearMissing(CalendarError):
    """The calendar has no data (published, loaded or projected) for the requested year."""

    def __init__(self, year: int, calendar_name: str, years: range) -> None:
        self.year = year
        self.calendar_name = calendar_name
        self.years = years
        if len(years) and years[-1] == PROJECTION_LAST_YEAR and year > PROJECTION_LAST_YEAR:
            remedy = f"the projection of the holiday rules stops at {PROJECTION_LAST_YEAR}"
        else:
            remedy = (
                f"add a table qingsuan/calendar/data/{calendar_name}_{year}.csv "
                "(tools/gen_calendar.py)"
            )
        super().__init__(
            f"business calendar {calendar_name!r} has no data for year {year} "
            f"(covers {_describe_years(years)}); {remedy}, or build the calendar with "
            "missing_year='weekends'"
        )


def _describe_years(years: range) -> str:
    if len(years) == 0:
        return "no years"
    return f"{years[0]}-{years[-1]}"


def _describe_set(years: Iterable[int]) -> str:
    """``2027-2099`` for a run, ``2027, 2029-2099`` otherwise."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and runs[-1][1] == year - 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def _check_policy(missing_year: str) -> str:
    if missing_year not in MISSING_YEAR_POLICIES:
        raise ValueError(
            f"missing_year must be one of {', '.join(map(repr, MISSING_YEAR_POLICIES))}, "
            f"got {missing_year!r}"
        )
    return missing_year


class BusinessCalendar:
    """Business days 工作日: Mon-Fri minus public holidays 节假日, plus adjusted workdays 调休.

    ``years`` is the contiguous range of years the calendar covers. ``projected_years`` (a
    subset, within the projection's bounds) are computed on demand by
    :func:`qingsuan.calendar.projection.project_year`; for every other covered year
    ``holidays`` maps each public-holiday date (weekday or weekend) to the holiday's name and
    ``workdays`` each adjusted weekend workday 调休 to the holiday it compensates (these must
    be Saturdays or Sundays). For a date outside ``years``: ``missing_year="error"``
    (default) raises :class:`CalendarYearMissing`; ``missing_year="weekends"`` treats the
    date by the weekday rule alone (Mon-Fri business, Sat/Sun not, no holidays).
    ``year_sources`` says where each non-projected year comes from (default: ``source``).

    Instances are immutable; build them with :func:`load_calendar` for the packaged tables.
    """

    __slots__ = ("_holidays", "_missing_year", "_name", "_projected", "_source", "_workdays",
                 "_year_sources", "_years")

    def __init__(
        self,
        holidays: Mapping[dt.date, str],
        workdays: Mapping[dt.date, str],
        years: range,
        *,
        projected_years: Iterable[int] = (),
        missing_year: str = "error",
        name: str = "custom",
        source: str = "",
        year_sources: Mapping[int, str] | None = None,
    ) -> None:
        self._missing_year = _check_policy(missing_year)
        if years.step != 1:
            raise CalendarError(f"years must be a contiguous range, got {years!r}")
        if len(years) > 0 and (years[0] < dt.MINYEAR or years[-1] > dt.MAXYEAR):
            raise CalendarError(f"years {years!r} outside {dt.MINYEAR}-{dt.MAXYEAR}")
        projected = frozenset(projected_years)
        for year in sorted(projected):
            if year not in years:
                raise CalendarError(
                    f"calendar {name!r}: projected year {year} outside the covered years "
                    f"{_describe_years(years)}"
                )
            if not PROJECTION_FIRST_YEAR <= year <= PROJECTION_LAST_YEAR:
                raise CalendarError(
                    f"calendar {name!r}: year {year} cannot be projected (the projection "
                    f"covers {PROJECTION_FIRST_YEAR}-{PROJECTION_LAST_YEAR})"
                )
        for day in (*holidays, *workdays):
            if day.year not in years:
                raise CalendarError(
                    f"calendar {name!r}: {day.isoformat()} outside the covered years "
                    f"{_describe_years(years)}"
                )
            if day.year in projected:
                raise CalendarError(
                    f"calendar {name!r}: {day.isoformat()} is given but its year is projected"
                )
        for day in workdays:
            if day.weekday() < 5:
                raise CalendarError(
                    f"calendar {name!r}: adjusted workday 调休 {day.isoformat()} is not a "
                    "Saturday or Sunday"
                )
        both = sorted(set(holidays) & set(workdays))
        if both:
            raise CalendarError(
                f"calendar {name!r}: {both[0].isoformat()} is both a holiday and a workday"
            )
        self._holidays: Mapping[dt.date, str] = MappingProxyType(dict(holidays))
        self._workdays: Mapping[dt.date, str] = MappingProxyType(dict(workdays))
        self._years = years
        self._projected = projected
        self._name = name
        self._source = source
        self._year_sources: Mapping[int, str] = MappingProxyType(dict(year_sources or {}))

    # -- description ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The calendar's name (``"cn"``, ``"weekdays"``, ...)."""
        return self._name

    @property
    def years(self) -> range:
        """The years covered (contiguous), projected ones included. ``weekdays`` covers
        every year."""
        return self._years

    @property
    def projected_years(self) -> frozenset[int]:
        """The covered years whose days are projected from the rules, not published."""
        return self._projected

    @property
    def missing_year(self) -> str:
        """The policy for dates outside :attr:`years`: ``"error"`` or ``"weekends"``."""
        return self._missing_year

    @property
    def source(self) -> str:
        """Where the days come from (the tables' ``# source:`` lines, loaded files, and the
        projection if any year is projected)."""
        return self._source

    @property
    def holidays(self) -> Mapping[dt.date, str]:
        """Read-only view: public holiday 节假日 date -> holiday name, for the published and
        loaded years (a projected year's: :meth:`year_schedule`)."""
        return self._holidays

    @property
    def workdays(self) -> Mapping[dt.date, str]:
        """Read-only view: adjusted weekend workday 调休 date -> holiday it compensates, for
        the published and loaded years (a projected year's: :meth:`year_schedule`)."""
        return self._workdays

    def covers(self, year: int) -> bool:
        """True if the calendar has data for ``year``, published, loaded or projected
        (regardless of the fallback policy)."""
        return year in self._years

    def year_schedule(self, year: int) -> YearSchedule:
        """The exceptional days of a covered ``year``, with its source and ``projected``
        flag; :class:`CalendarYearMissing` for a year not covered (whatever the policy)."""
        if year not in self._years:
            raise CalendarYearMissing(year, self._name, self._years)
        if year in self._projected:
            return project_year(year)
        return YearSchedule(
            year,
            {day: name for day, name in self._holidays.items() if day.year == year},
            {day: name for day, name in self._workdays.items() if day.year == year},
            self._year_sources.get(year) or self._source or f"calendar {self._name!r}",
        )

    def __repr__(self) -> str:
        projected = (
            f", projected={_describe_set(self._projected)}" if self._projected else ""
        )
        return (
            f"BusinessCalendar(name={self._name!r}, years={_describe_years(self._years)}"
            f"{projected}, missing_year={self._missing_year!r})"
        )

    # -- queries -------------------------------------------------------------------------

    def _tables(self, day: dt.date) -> tuple[Mapping[dt.date, str], Mapping[dt.date, str]]:
        """(holidays, workdays) deciding ``day``; empty maps when the weekday fallback
        applies."""
        year = day.year
        if year in self._years:
            if year in self._projected:
                schedule = project_year(year)
                return schedule.holidays, schedule.workdays
            return self._holidays, self._workdays
        if self._missing_year == "weekends":
            return _EMPTY, _EMPTY
        raise CalendarYearMissing(year, self._name, self._years)

    def is_business_day(self, day: dt.date) -> bool:
        """工作日: Monday-Friday and not a public holiday, or an adjusted workday 调休."""
        holidays, workdays = self._tables(day)
        if day in workdays:
            return True
        if day in holidays:
            return False
        return day.weekday() < 5

    def is_holiday(self, day: dt.date) -> bool:
        """True on a public holiday 节假日 (the table's holiday days, weekends inside a
        holiday period included). An ordinary weekend is not a holiday."""
        return day in self._tables(day)[0]

    def is_adjusted_workday(self, day: dt.date) -> bool:
        """True on an adjusted weekend workday 调休 (a Saturday/Sunday that is worked)."""
        return day in self._tables(day)[1]

    def is_projected(self, day: dt.date) -> bool:
        """True if ``day``'s status is projected from the rules rather than published or
        loaded: every day of a projected year is (an ordinary Tuesday too: the projection
        says no holiday was moved onto it). False under the weekday fallback."""
        self._tables(day)  # raises for a year not covered, as every query does
        return day.year in self._projected

    def holiday_name(self, day: dt.date) -> str | None:
        """The public holiday's name (e.g. ``"Spring Festival"``), None if not a holiday."""
        return self._tables(day)[0].get(day)

    def next_business_day(self, day: dt.date) -> dt.date:
        """The first business day strictly after ``day``."""
        return self._search(day, 1, strict=True)

    def previous_business_day(self, day: dt.date) -> dt.date:
        """The last business day strictly before ``day``."""
        return self._search(day, -1, strict=True)

    def business_day_on_or_after(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a business day, else the next one."""
        return self._search(day, 1, strict=False)

    def business_day_on_or_before(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a business day, else the previous one."""
        return self._search(day, -1, strict=False)

    def is_first_day_of_holiday_period(self, day: dt.date) -> bool:
        """True if ``day`` is not a business day but the day before is: the first day of a
        weekend or of a holiday period (节假日首日). On that day BEPS/IBPS net positions are
        not sent to HVPS; they settle on the next business day."""
        return not self.is_business_day(day) and self.is_business_day(_step(day, -1))

    def _search(self, day: dt.date, direction: int, *, strict: bool) -> dt.date:
        candidate = _step(day, direction) if strict else day
        for _ in range(_MAX_SEARCH_DAYS):
            if self.is_business_day(candidate):
                return candidate
            candidate = _step(candidate, direction)
        raise CalendarError(
            f"calendar {self._name!r}: no business day within {_MAX_SEARCH_DAYS} days "
            f"{'after' if direction > 0 else 'before'} {day.isoformat()}"
        )


_EMPTY: Final[Mapping[dt.date, str]] = MappingProxyType({})


def _step(day: dt.date, direction: int) -> dt.date:
    try:
        return day + _ONE_DAY * direction
    except OverflowError:
        raise CalendarError(f"no date {direction:+d} day from {day.isoformat()}") from None


# -- packaged tables -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    holidays: Mapping[dt.date, str]
    workdays: Mapping[dt.date, str]
    years: range
    source: str
    year_sources: Mapping[int, str]


def _data_dir() -> Traversable:
    return resources.files("qingsuan.calendar").joinpath("data")


@functools.cache
def _table_files() -> Mapping[str, Mapping[int, str]]:
    """calendar name -> year -> file name, from the packaged data directory."""
    found: dict[str, dict[int, str]] = {}
    for entry in _data_dir().iterdir():
        match = _TABLE_NAME_RE.match(entry.name)
        if match and entry.is_file():
            found.setdefault(match.group(1), {})[int(match.group(2))] = entry.name
    return MappingProxyType({k: MappingProxyType(v) for k, v in found.items()})


def available_calendars() -> tuple[str, ...]:
    """Names accepted by :func:`load_calendar`."""
    return tuple(sorted({*_table_files(), _WEEKDAYS_NAME}))


@functools.cache
def _load_table(name: str) -> _Table:
    files = _table_files().get(name)
    if not files:
        raise CalendarError(
            f"unknown business calendar {name!r}; known: {', '.join(available_calendars())}"
        )
    first, last = min(files), max(files)
    gaps = [year for year in range(first, last + 1) if year not in files]
    if gaps:
        raise CalendarError(f"calendar {name!r}: tables for {first}-{last} lack year {gaps[0]}")
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    year_sources: dict[int, str] = {}
    for year in range(first, last + 1):
        file_name = files[year]
        text = _data_dir().joinpath(file_name).read_text(encoding="utf-8")
        year_sources[year] = _parse_table(file_name, year, text, holidays, workdays)
    return _Table(
        holidays=MappingProxyType(holidays),
        workdays=MappingProxyType(workdays),
        years=range(first, last + 1),
        source=" | ".join(dict.fromkeys(year_sources.values())),
        year_sources=MappingProxyType(year_sources),
    )


def _parse_table(
    file_name: str,
    year: int,
    text: str,
    holidays: dict[dt.date, str],
    workdays: dict[dt.date, str],
) -> str:
    """Parse one ``cn_YYYY.csv`` into ``holidays``/``workdays``; return its source line."""
    source = ""
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        where = f"{file_name}:{lineno}"
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if comment.startswith("source:") and not source:
                source = comment.removeprefix("source:").strip()
            continue
        row = [field.strip() for field in next(csv.reader([line]))]
        if not header_seen:
            if row != _HEADER:
                raise CalendarError(f"{where}: expected header {','.join(_HEADER)}, got {line!r}")
            header_seen = True
            continue
        if len(row) != 3:
            raise CalendarError(f"{where}: expected 3 fields date,kind,name, got {line!r}")
        raw_date, kind, name = row
        try:
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise CalendarError(f"{where}: bad date {raw_date!r}") from None
        if day.year != year:
            raise CalendarError(f"{where}: {raw_date} is not in {year}")
        if not name:
            raise CalendarError(f"{where}: empty holiday name")
        if day in holidays or day in workdays:
            raise CalendarError(f"{where}: {raw_date} listed twice")
        if kind == _KIND_HOLIDAY:
            holidays[day] = name
        elif kind == _KIND_WORKDAY:
            workdays[day] = name
        else:
            raise CalendarError(f"{where}: kind must be holiday or workday, got {kind!r}")
    if not header_seen:
        raise CalendarError(f"{file_name}: missing header line {','.join(_HEADER)}")
    if not source:
        raise CalendarError(f"{file_name}: missing '# source:' header comment")
    return source


def load_calendar(
    name: str = "cn",
    missing_year: str = "error",
    schedule_files: Iterable[str | Path] = (),
) -> BusinessCalendar:
    """Build a business calendar.

    ``name="cn"``: the packaged Chinese tables (节假日 and 调休) of the published years
    (2004-2026), then the projection of the rules in force for every later year up to
    :data:`~qingsuan.calendar.projection.PROJECTION_LAST_YEAR` (marked projected).
    ``name="weekdays"``: pure Monday-Friday, every year (handy in tests).
    ``missing_year``: ``"error"`` (default) or ``"weekends"``; see :class:`BusinessCalendar`.
    ``schedule_files``: official schedule files (:func:`load_schedule_file`, format in
    docs/CALENDAR.md); each year a file gives replaces that year's published or projected
    days. Unknown ``name`` raises :class:`CalendarError`, a bad file
    :class:`~qingsuan.calendar.schedule.ScheduleFileError`, a bad ``missing_year`` a
    ``ValueError``.
    """
    _check_policy(missing_year)
    paths = [Path(path) for path in schedule_files]
    if len(paths) > _MAX_SCHEDULE_FILES:
        raise CalendarError(f"more than {_MAX_SCHEDULE_FILES} schedule files")
    if name == _WEEKDAYS_NAME:
        if paths:
            raise CalendarError(
                f"calendar {name!r} has no holidays; schedule files apply to "
                f"{', '.join(sorted(_PROJECTED_CALENDARS))}"
            )
        return BusinessCalendar(
            {},
            {},
            range(dt.MINYEAR, dt.MAXYEAR + 1),
            missing_year=missing_year,
            name=name,
            source="Monday-Friday are business days; no holidays",
        )
    table = _load_table(name)
    years = table.years
    projected: set[int] = set()
    if name in _PROJECTED_CALENDARS and years[-1] < PROJECTION_LAST_YEAR:
        projected = set(range(years[-1] + 1, PROJECTION_LAST_YEAR + 1))
        years = range(years[0], PROJECTION_LAST_YEAR + 1)
    holidays = dict(table.holidays)
    workdays = dict(table.workdays)
    year_sources = dict(table.year_sources)
    loaded: dict[int, str] = {}
    for path in paths:
        for schedule in load_schedule_file(path):
            year = schedule.year
            if year not in years:
                raise ScheduleFileError(
                    path.name, f"years.{year}", f"outside the years calendar {name!r} covers "
                    f"({_describe_years(years)})"
                )
            if year in loaded:
                raise ScheduleFileError(
                    path.name, f"years.{year}", f"also given by {loaded[year]}"
                )
            loaded[year] = path.name
            for days in (holidays, workdays):
                for day in [day for day in days if day.year == year]:
                    del days[day]
            holidays.update(schedule.holidays)
            workdays.update(schedule.workdays)
            projected.discard(year)
            year_sources[year] = f"{schedule.source} (file {path.name})"
    sources = [table.source]
    sources += dict.fromkeys(year_sources[year] for year in sorted(loaded))
    if projected:
        sources.append(f"{_describe_set(projected)} {PROJECTION_SOURCE}")
    return BusinessCalendar(
        holidays,
        workdays,
        years,
        projected_years=projected,
        missing_year=missing_year,
        name=name,
        source=" | ".join(sources),
        year_sources=year_sources,
    )
