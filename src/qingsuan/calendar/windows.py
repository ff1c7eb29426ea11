"""Operating windows of the CNAPS systems and the card switch, and the HVPS day cycle.

All times are naive Beijing local time (UTC+8, no daylight saving); the model never reads the
system clock, callers pass the simulated time in.

Defaults (DOMAIN.md §3), each a parameter (:meth:`OperatingWindows.from_params`):

============================  ===========  ==========================================
parameter                     default      meaning
============================  ===========  ==========================================
``hvps.open``                 20:30        HVPS business day D opens at this time on
                                           the previous natural day (see below)
``hvps.cutoff``               17:15        业务截止: last moment for ordinary payments
``hvps.clearing_end``         17:30        清算窗口 ends; queued items are returned, 日切
``cards.cutoff``              23:00        card clearing cut-off (日切 of the switch)
============================  ===========  ==========================================

BEPS 小额批量 and IBPS 网上支付 (超级网银) run 7x24: they have no window to configure; only
the settlement of their net positions in HVPS follows the HVPS business days.

**HVPS business day D** (D a business day 工作日, see :mod:`qingsuan.calendar.business`):

* it opens at ``hvps.open`` on the previous *natural* day D-1, whatever D-1 is: Monday's day
  opens Sunday 20:30, the first day after a holiday opens on the last holiday's evening;
* it accepts payments until ``hvps.cutoff`` on D (phase ``OPEN``);
* ``hvps.cutoff`` to ``hvps.clearing_end`` is the clearing window 清算窗口 (``CLEARING_WINDOW``):
  funding, cancelling and reordering only; at its end whatever is queued is returned and the
  system rolls over to the next day (日切);
* from ``hvps.clearing_end`` to the next opening HVPS is ``CLOSED``. A non-business day is
  closed all day, except its evening from ``hvps.open`` if the next natural day is a business
  day (that evening belongs to the next business day).

If ``hvps.open`` is set *before* ``hvps.cutoff`` (e.g. ``"08:30"``, as in the early CNAPS
years) the session opens on D itself instead of the previous evening. A value inside the
clearing window is rejected.

**Card clearing day**: runs every natural day, holidays included; a transaction at or after
``cards.cutoff`` belongs to the next natural day's clearing date (a cut-off of 00:00 means the
clearing date is the natural date).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar, Final

from qingsuan.calendar.business import BusinessCalendar, CalendarError

__all__ = [
    "DEFAULT_WINDOWS",
    "HvpsPhase",
    "HvpsSchedule",
    "HvpsSession",
    "HvpsState",
    "OperatingWindows",
    "card_clearing_date",
    "hvps_phase",
    "next_hvps_open",
]

_ONE_DAY: Final = dt.timedelta(days=1)
_MIDNIGHT: Final = dt.time(0, 0)
_HHMM_RE: Final = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def _parse_hhmm(key: str, value: object) -> dt.time:
    """Parse an ``"HH:MM"`` (or ``"HH:MM:SS"``) parameter; errors name ``key``."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ValueError(f"{key}: expected a naive local time, got {value!r}")
        return value
    if not isinstance(value, str):
        hint = (
            ' (in YAML quote times: "20:30", unquoted 20:30 reads as 1230)'
            if isinstance(value, int) and not isinstance(value, bool)
            else ""
        )
        raise ValueError(
            f'{key}: expected a time "HH:MM", got {type(value).__name__} {value!r}{hint}'
        )
    match = _HHMM_RE.match(value.strip())
    if not match:
        raise ValueError(f'{key}: invalid time {value!r}, expected "HH:MM" from 00:00 to 23:59')
    hour, minute, second = match.groups()
    return dt.time(int(hour), int(minute), int(second or 0))


def _format_time(value: dt.time) -> str:
    text = value.strftime("%H:%M:%S" if value.second else "%H:%M")
    return text if not value.microsecond else value.isoformat()


@dataclass(frozen=True, slots=True)
class OperatingWindows:
    """Operating hours of HVPS and the card switch (naive Beijing local ``datetime.time``).

    ``hvps_open`` (``hvps.open``, 20:30): business day D opens at this time on the natural day
    before D (or on D itself if earlier than ``hvps_cutoff``). ``hvps_cutoff``
    (``hvps.cutoff``, 17:15): end of payment acceptance on D. ``hvps_clearing_end``
    (``hvps.clearing_end``, 17:30): end of the clearing window, day rollover 日切.
    ``card_cutoff`` (``cards.cutoff``, 23:00): card clearing cut-off. BEPS and IBPS are 7x24.
    """

    hvps_open: dt.time = dt.time(20, 30)
    hvps_cutoff: dt.time = dt.time(17, 15)
    hvps_clearing_end: dt.time = dt.time(17, 30)
    card_cutoff: dt.time = dt.time(23, 0)

    PARAM_KEYS: ClassVar[Mapping[str, str]] = {
        "hvps.open": "hvps_open",
        "hvps.cutoff": "hvps_cutoff",
        "hvps.clearing_end": "hvps_clearing_end",
        "cards.cutoff": "card_cutoff",
    }
    """Parameter name (dotted, as in scenario files) -> field name."""

    def __post_init__(self) -> None:
        keys = {name: key for key, name in self.PARAM_KEYS.items()}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, dt.time) or value.tzinfo is not None:
                raise ValueError(f"{keys[f.name]}: expected a naive datetime.time, got {value!r}")
        cutoff, end, opens = self.hvps_cutoff, self.hvps_clearing_end, self.hvps_open
        if not cutoff < end:
            raise ValueError(
                f"hvps.cutoff ({_format_time(cutoff)}) must be before "
                f"hvps.clearing_end ({_format_time(end)})"
            )
        if cutoff <= opens < end:
            raise ValueError(
                f"hvps.open ({_format_time(opens)}) falls in the clearing window "
                f"hvps.cutoff-hvps.clearing_end ({_format_time(cutoff)}-{_format_time(end)}); "
                "it must be at or after hvps.clearing_end (opens the previous evening) "
                "or before hvps.cutoff (opens the same day)"
            )

    @property
    def hvps_opens_previous_evening(self) -> bool:
        """True if business day D opens on the natural day before D (the default)."""
        return self.hvps_open >= self.hvps_clearing_end

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> OperatingWindows:
        """Build from dotted parameters (``hvps.open``, ``hvps.cutoff``, ``hvps.clearing_end``,
        ``cards.cutoff``), each an ``"HH:MM"`` string (or a ``datetime.time``). Missing keys
        keep their defaults; other keys are ignored. A bad value raises ``ValueError`` naming
        the key; so does an insane order (cut-off not before clearing end, opening inside the
        clearing window)."""
        values = {
            name: _parse_hhmm(key, params[key])
            for key, name in cls.PARAM_KEYS.items()
            if key in params
        }
        return cls(**values)

    def to_params(self) -> dict[str, str]:
        """The windows as dotted parameters with ``"HH:MM"`` values (inverse of from_params)."""
        return {key: _format_time(getattr(self, name)) for key, name in self.PARAM_KEYS.items()}


DEFAULT_WINDOWS: Final = OperatingWindows()


class HvpsPhase(enum.Enum):
    """Phase of HVPS 大额实时支付系统 at a given moment."""

    OPEN = "open"
    """Accepting payments (营业时间)."""
    CLEARING_WINDOW = "clearing_window"
    """清算窗口 (17:15-17:30 by default): funding, cancel/reorder, final settlement only."""
    CLOSED = "closed"
    """Not running: after the day's rollover 日切, or a non-business day."""


@dataclass(frozen=True, slots=True)
class HvpsState:
    """The HVPS phase at a moment, and the business day 工作日 that moment belongs to
    (``None`` exactly when the phase is ``CLOSED``)."""

    phase: HvpsPhase
    business_date: dt.date | None

    @property
    def accepting_payments(self) -> bool:
        """True in phase ``OPEN``."""
        return self.phase is HvpsPhase.OPEN


@dataclass(frozen=True, slots=True)
class HvpsSession:
    """The timetable of one HVPS business day: ``[opens_at, cutoff_at)`` open,
    ``[cutoff_at, closes_at)`` clearing window, ``closes_at`` is the rollover 日切."""

    business_date: dt.date
    opens_at: dt.datetime
    cutoff_at: dt.datetime
    closes_at: dt.datetime


def _check_naive(moment: dt.datetime) -> None:
    if moment.utcoffset() is not None:
        raise ValueError(
            f"expected a naive Beijing local datetime, got a timezone-aware one: {moment!r}"
        )


class HvpsSchedule:
    """The HVPS day cycle for a business calendar and operating windows. Immutable."""

    __slots__ = ("_calendar", "_windows")

    def __init__(
        self, calendar: BusinessCalendar, windows: OperatingWindows = DEFAULT_WINDOWS
    ) -> None:
        self._calendar = calendar
        self._windows = windows

    @property
    def calendar(self) -> BusinessCalendar:
        """The business calendar 工作日历 in use."""
        return self._calendar

    @property
    def windows(self) -> OperatingWindows:
        """The operating windows in use."""
        return self._windows

    def session(self, business_date: dt.date) -> HvpsSession:
        """The timetable of business day ``business_date``; CalendarError if it is not one."""
        if not self._calendar.is_business_day(business_date):
            raise CalendarError(f"{business_date.isoformat()} is not a business day 工作日")
        return self._session(business_date)

    def _session(self, day: dt.date) -> HvpsSession:
        w = self._windows
        try:
            open_day = day - _ONE_DAY if w.hvps_opens_previous_evening else day
        except OverflowError:
            raise CalendarError(f"no HVPS session before {day.isoformat()}") from None
        return HvpsSession(
            business_date=day,
            opens_at=dt.datetime.combine(open_day, w.hvps_open),
            cutoff_at=dt.datetime.combine(day, w.hvps_cutoff),
            closes_at=dt.datetime.combine(day, w.hvps_clearing_end),
        )

    def phase(self, moment: dt.datetime) -> HvpsState:
        """The HVPS phase at ``moment`` (naive Beijing local time) and its business date."""
        _check_naive(moment)
        today = moment.date()
        if self._calendar.is_business_day(today):
            s = self._session(today)
            if s.opens_at <= moment < s.cutoff_at:
                return HvpsState(HvpsPhase.OPEN, today)
            if s.cutoff_at <= moment < s.closes_at:
                return HvpsState(HvpsPhase.CLEARING_WINDOW, today)
        w = self._windows
        if w.hvps_opens_previous_evening and moment.time() >= w.hvps_open:
            try:
                tomorrow = today + _ONE_DAY
            except OverflowError:
                raise CalendarError(f"no HVPS session after {today.isoformat()}") from None
            if self._calendar.is_business_day(tomorrow):
                return HvpsState(HvpsPhase.OPEN, tomorrow)
        return HvpsState(HvpsPhase.CLOSED, None)

    def phase_holds_until(self, moment: dt.datetime) -> dt.datetime:
        """The first moment after ``moment`` at which :meth:`phase` may answer otherwise:
        the phase depends only on the date and on where the time of day stands against
        the opening, the cut-off and the end of the clearing window, so it holds until
        the next of those times today, or midnight."""
        _check_naive(moment)
        today = moment.date()
        w = self._windows
        later = [at for at in (dt.datetime.combine(today, t)
                               for t in (w.hvps_open, w.hvps_cutoff, w.hvps_clearing_end))
                 if at > moment]
        return min(later) if later else dt.datetime.combine(today, dt.time()) + _ONE_DAY

    def next_open(self, moment: dt.datetime) -> dt.datetime:
        """The next moment HVPS accepts payments: ``moment`` itself if it is open now,
        else the opening of the next session (the clearing window does not count)."""
        if self.phase(moment).accepting_payments:
            return moment
        day = self._calendar.business_day_on_or_after(moment.date())
        while True:
            opens_at = self._session(day).opens_at
            if opens_at > moment:
                return opens_at
            day = self._calendar.next_business_day(day)


def hvps_phase(
    moment: dt.datetime,
    calendar: BusinessCalendar,
    windows: OperatingWindows = DEFAULT_WINDOWS,
) -> HvpsState:
    """The HVPS phase at ``moment`` (naive Beijing local time); see :class:`HvpsSchedule`."""
    return HvpsSchedule(calendar, windows).phase(moment)


def next_hvps_open(
    moment: dt.datetime,
    calendar: BusinessCalendar,
    windows: OperatingWindows = DEFAULT_WINDOWS,
) -> dt.datetime:
    """The next moment HVPS accepts payments (``moment`` itself if open)."""
    return HvpsSchedule(calendar, windows).next_open(moment)


def card_clearing_date(
    moment: dt.datetime, cutoff: dt.time = DEFAULT_WINDOWS.card_cutoff
) -> dt.date:
    """The card switch's clearing date (清算日期) of a transaction at ``moment``.

    The card clearing day runs every natural day, holidays 节假日 included; at or after the
    cut-off (日切, default 23:00) a transaction belongs to the next natural day. A cut-off of
    00:00 makes the clearing date the natural date.
    """
    _check_naive(moment)
    if cutoff.tzinfo is not None:
        raise ValueError(f"cards.cutoff: expected a naive local time, got {cutoff!r}")
    day = moment.date()
    if cutoff != _MIDNIGHT and moment.time() >= cutoff:
        return day + _ONE_DAY
    return day
