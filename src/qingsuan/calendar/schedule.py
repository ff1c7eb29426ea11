"""One year's holiday schedule 放假安排, and the official-schedule file format.

A :class:`YearSchedule` lists the exceptional days of one year: public holidays 节假日 and
adjusted weekend workdays 调休. It comes from the packaged tables (published notices), from a
file given by the user (:func:`load_schedule_file`, e.g. a notice published after this
release), or from the projection (:mod:`qingsuan.calendar.projection`, ``projected=True``).

The file format is documented in docs/CALENDAR.md; errors name the field
(``years.2027[1].workdays[0]``), as :class:`ScheduleFileError`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

import yaml

from qingsuan.calendar.errors import CalendarError

__all__ = [
    "MAX_BLOCK_DAYS",
    "ScheduleFileError",
    "YearSchedule",
    "load_schedule_file",
    "parse_schedule",
]

MAX_BLOCK_DAYS: Final = 16
"""Longest holiday period a file may give in one entry (the longest ever, 2020's Spring
Festival extended for the epidemic, was 10 days)."""
MAX_FILE_BYTES: Final = 1_000_000
MAX_YEARS_PER_FILE: Final = 100
MAX_ENTRIES_PER_YEAR: Final = 20
MAX_WORKDAYS_PER_ENTRY: Final = 4
MAX_NAME_CHARS: Final = 80
FILE_YEARS: Final = range(1949, 2100)
"""Years a schedule file may give (the calendar then accepts only those it covers)."""

_TOP_KEYS: Final = ("source", "years")
_ENTRY_KEYS: Final = ("name", "from", "to", "workdays")
_ISO_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_YEAR_RE: Final = re.compile(r"^\d{4}$", re.ASCII)
_WEEKDAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


class ScheduleFileError(CalendarError):
    """A bad schedule file; ``field`` is the path of the offending field (``""`` for the
    whole file), ``file`` the file's name."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """The exceptional days of ``year``: ``holidays`` (date -> holiday name; weekend days
    inside a holiday period included) and ``workdays`` (adjusted weekend workday 调休 ->
    the holiday it compensates). Every other Monday-Friday is a business day.

    ``projected`` is True when the days were computed from the rules rather than taken from
    a published notice; ``source`` says where they come from.
    """

    year: int
    holidays: Mapping[dt.date, str]
    workdays: Mapping[dt.date, str]
    source: str
    projected: bool = field(default=False)

    def __post_init__(self) -> None:
        for day in (*self.holidays, *self.workdays):
            if day.year != self.year:
                raise CalendarError(
                    f"schedule {self.year}: {day.isoformat()} is not in {self.year}"
                )
        for day in self.workdays:
            if day.weekday() < 5:
                raise CalendarError(
                    f"schedule {self.year}: adjusted workday 调休 {day.isoformat()} is a "
                    f"{_WEEKDAY_NAMES[day.weekday()]}, not a Saturday or Sunday"
                )
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise CalendarError(
                f"schedule {self.year}: {both[0].isoformat()} is both a holiday and a workday"
            )
        if not self.source:
            raise CalendarError(f"schedule {self.year}: empty source")
        object.__setattr__(self, "holidays", MappingProxyType(dict(sorted(self.holidays.items()))))
        object.__setattr__(self, "workdays", MappingProxyType(dict(sorted(self.workdays.items()))))

    def is_business_day(self, day: dt.date) -> bool:
        """工作日 by this schedule alone (``day`` must be in :attr:`year`)."""
        assert day.year == self.year, (day, self.year)
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() < 5


# -- the file ------------------------------------------------------------------------------


def load_schedule_file(path: str | Path) -> tuple[YearSchedule, ...]:
    """Read an official schedule file (``.yaml``/``.yml`` or ``.json``), one schedule per
    year it gives, in year order. Raises :class:`ScheduleFileError` naming the field."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ScheduleFileError(
            file.name, "", f"unknown file type {suffix or '(none)'!r}: use .yaml, .yml or .json"
        )
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ScheduleFileError(str(file), "", f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScheduleFileError(file.name, "", f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScheduleFileError(file.name, "", "not UTF-8 text") from None
    try:
        document: object = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScheduleFileError(file.name, "", f"not valid {suffix[1:].upper()}: {exc}") from None
    return parse_schedule(document, file.name)


def parse_schedule(document: object, file: str = "<schedule>") -> tuple[YearSchedule, ...]:
    """Validate a parsed schedule document (see :func:`load_schedule_file`)."""
    top = _mapping(document, file, "")
    for key in top:
        if key not in _TOP_KEYS:
            raise ScheduleFileError(
                file, str(key), f"unknown key (allowed: {', '.join(_TOP_KEYS)})"
            )
    source = _text(top.get("source"), file, "source", MAX_FILE_BYTES)
    years = _mapping(top.get("years"), file, "years")
    if not years:
        raise ScheduleFileError(file, "years", "no year given")
    if len(years) > MAX_YEARS_PER_FILE:
        raise ScheduleFileError(file, "years", f"more than {MAX_YEARS_PER_FILE} years")
    schedules: dict[int, YearSchedule] = {}
    for key, entries in years.items():
        year = _year(key, file)
        if year in schedules:
            raise ScheduleFileError(file, f"years.{year}", "year given twice")
        schedules[year] = _parse_year(year, entries, file, source)
    return tuple(schedules[year] for year in sorted(schedules))


def _parse_year(year: int, entries: object, file: str, source: str) -> YearSchedule:
    where = f"years.{year}"
    if not isinstance(entries, list):
        raise ScheduleFileError(
            file, where, f"expected a list of holidays, got {_kind(entries)}"
        )
    if not entries:
        raise ScheduleFileError(file, where, "empty list: a year has public holidays")
    if len(entries) > MAX_ENTRIES_PER_YEAR:
        raise ScheduleFileError(file, where, f"more than {MAX_ENTRIES_PER_YEAR} holidays")
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    listed_at: dict[dt.date, str] = {}

    def claim(day: dt.date, field: str) -> None:
        if day in listed_at:
            raise ScheduleFileError(
                file, field, f"{day.isoformat()} already listed at {listed_at[day]}"
            )
        listed_at[day] = field

    for index, raw_entry in enumerate(entries):
        at = f"{where}[{index}]"
        entry = _mapping(raw_entry, file, at)
        for key in entry:
            if key not in _ENTRY_KEYS:
                raise ScheduleFileError(
                    file, f"{at}.{key}", f"unknown key (allowed: {', '.join(_ENTRY_KEYS)})"
                )
        name = _text(entry.get("name"), file, f"{at}.name", MAX_NAME_CHARS)
        first = _date(entry.get("from"), file, f"{at}.from", year)
        last = first if entry.get("to") is None else _date(entry["to"], file, f"{at}.to", year)
        if last < first:
            raise ScheduleFileError(
                file, f"{at}.to", f"{last.isoformat()} is before from ({first.isoformat()})"
            )
        span_days = (last - first).days + 1
        if span_days > MAX_BLOCK_DAYS:
            raise ScheduleFileError(
                file, f"{at}.to", f"{span_days} days from {first.isoformat()}; at most "
                f"{MAX_BLOCK_DAYS}"
            )
        for offset in range(span_days):
            day = first + dt.timedelta(days=offset)
            claim(day, f"{at}.from..to")
            holidays[day] = name
        raw_workdays = entry.get("workdays", [])
        if not isinstance(raw_workdays, list):
            raise ScheduleFileError(
                file, f"{at}.workdays", f"expected a list of dates, got {_kind(raw_workdays)}"
            )
        if len(raw_workdays) > MAX_WORKDAYS_PER_ENTRY:
            raise ScheduleFileError(
                file, f"{at}.workdays", f"more than {MAX_WORKDAYS_PER_ENTRY} adjusted workdays"
            )
        for w_index, raw_day in enumerate(raw_workdays):
            w_at = f"{at}.workdays[{w_index}]"
            day = _date(raw_day, file, w_at, year)
            if day.weekday() < 5:
                raise ScheduleFileError(
                    file, w_at, f"{day.isoformat()} is a {_WEEKDAY_NAMES[day.weekday()]}; an "
                    "adjusted workday 调休 must be a Saturday or Sunday"
                )
            claim(day, w_at)
            workdays[day] = name
    return YearSchedule(year, holidays, workdays, source)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _mapping(value: object, file: str, where: str) -> Mapping[object, object]:
    if value is None and where:
        raise ScheduleFileError(file, where, "missing")
    if not isinstance(value, dict):
        raise ScheduleFileError(file, where, f"expected a mapping, got {_kind(value)}")
    return value


def _text(value: object, file: str, where: str, max_chars: int) -> str:
    if value is None:
        raise ScheduleFileError(file, where, "missing")
    if not isinstance(value, str) or not value.strip():
        raise ScheduleFileError(file, where, f"expected non-empty text, got {_kind(value)}")
    if len(value) > max_chars:
        raise ScheduleFileError(file, where, f"longer than {max_chars} characters")
    if any(ch in value for ch in "\r\n"):
        raise ScheduleFileError(file, where, "must be one line")
    return value.strip()


def _year(key: object, file: str) -> int:
    text = str(key)
    if isinstance(key, bool) or not isinstance(key, int | str) or not _YEAR_RE.match(text):
        raise ScheduleFileError(file, f"years.{text}", "a year must be four digits, e.g. 2027")
    year = int(text)
    if year not in FILE_YEARS:
        raise ScheduleFileError(
            file, f"years.{year}", f"outside {FILE_YEARS[0]}-{FILE_YEARS[-1]}"
        )
    return year


def _date(value: object, file: str, where: str, year: int) -> dt.date:
    if value is None:
        raise ScheduleFileError(file, where, "missing")
    if isinstance(value, dt.datetime):
        raise ScheduleFileError(file, where, f"expected a date, got a date and time {value}")
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and _ISO_DATE_RE.match(value.strip()):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ScheduleFileError(file, where, f"no such date {value!r}") from None
    else:
        raise ScheduleFileError(
            file, where, f"expected a date YYYY-MM-DD, got {_kind(value)} {value!r}"
        )
    if day.year != year:
        raise ScheduleFileError(
            file, where, f"{day.isoformat()} is not in {year} (list it under years.{day.year})"
        )
    return day
