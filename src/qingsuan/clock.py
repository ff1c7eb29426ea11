"""Injected time and a tiny deterministic scheduler.

Time is an ``int`` of microseconds since the Unix epoch (UTC). Business logic never reads
the system time: it asks a :class:`Clock`. The simulator and the tests drive a
:class:`VirtualClock` as fast as the CPU allows; servers use :class:`WallClock`. The same
code settles a payment under both.

Timers fire in (time, priority, sequence) order, so two timers due at the same microsecond
always fire in the same order: lower priority number first, then the order they were set.
"""

from __future__ import annotations

import heapq
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Protocol

US_PER_SECOND: Final = 1_000_000
US_PER_MINUTE: Final = 60 * US_PER_SECOND
US_PER_HOUR: Final = 60 * US_PER_MINUTE
US_PER_DAY: Final = 24 * US_PER_HOUR

#: Beijing time (北京时间). China has kept UTC+8 without daylight saving since 1991, so a
#: fixed offset is exact for every date the model runs and needs no tz database.
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: Upper bound on timers waiting at once; a runaway scheduler is a bug, not a workload.
MAX_TIMERS: Final = 10_000_000


class Clock(Protocol):
    """Anything that tells the time in integer microseconds."""

    def now_us(self) -> int: ...


class VirtualClock:
    """A clock that moves only when told to (simulation and tests)."""

    __slots__ = ("_now_us",)

    def __init__(self, start_us: int = 0) -> None:
        self._now_us = start_us

    def now_us(self) -> int:
        return self._now_us

    def advance_to(self, at_us: int) -> None:
        """Move forward to ``at_us``. Time never runs backwards."""
        if at_us < self._now_us:
            raise ValueError(f"virtual clock cannot go back from {self._now_us} to {at_us}")
        self._now_us = at_us


class WallClock:
    """The real time, for servers. The one place in Qingsuan that reads the system clock.

    It never goes backwards even if the system clock is stepped back: it holds at the last
    reading until real time catches up, so log timestamps stay ordered.
    """

    __slots__ = ("_last_us",)

    def __init__(self) -> None:
        self._last_us = 0

    def now_us(self) -> int:
        now = _time.time_ns() // 1000
        if now > self._last_us:
            self._last_us = now
        return self._last_us


@dataclass(order=True, slots=True)
class Timer:
    """A scheduled callback. Ordered by (at_us, priority, seq): deterministic ties."""

    at_us: int
    priority: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Scheduler:
    """A heap of timers driven by a clock (the simpy-style core, nothing more).

    With a :class:`VirtualClock`, :meth:`run_until` jumps the clock from timer to timer.
    With a :class:`WallClock`, a server loop calls :meth:`run_due` when it wakes up.
    """

    def __init__(self, clock: VirtualClock | Clock) -> None:
        self.clock = clock
        self._heap: list[Timer] = []
        self._seq = 0
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def schedule(self, at_us: int, callback: Callable[[], None], priority: int = 0) -> Timer:
        """Run ``callback`` at ``at_us`` (or at once on the next run if that is in the past)."""
        if self._live >= MAX_TIMERS:
            raise RuntimeError(f"scheduler holds {MAX_TIMERS} timers: refusing more")
        self._seq += 1
        timer = Timer(at_us, priority, self._seq, callback)
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    def cancel(self, timer: Timer) -> bool:
        """Cancel a timer that has not fired. Returns False if it already fired or was cancelled."""
        if timer.cancelled or timer.seq == -1:
            return False
        timer.cancelled = True
        self._live -= 1
        return True

    def next_due_us(self) -> int | None:
        """When the next live timer is due, or None."""
        self._drop_cancelled()
        return self._heap[0].at_us if self._heap else None

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)

    def _pop_due(self, until_us: int) -> Timer | None:
        self._drop_cancelled()
        if self._heap and self._heap[0].at_us <= until_us:
            timer = heapq.heappop(self._heap)
            timer.seq = -1  # fired: cancel() now reports False
            self._live -= 1
            return timer
        return None

    def run_due(self) -> int:
        """Fire every timer due at the clock's current time (wall-clock servers). Returns count."""
        fired = 0
        now = self.clock.now_us()
        while (timer := self._pop_due(now)) is not None:
            timer.callback()
            fired += 1
        return fired

    def run_until(self, until_us: int) -> int:
        """Virtual time: fire every timer due up to ``until_us`` in order, moving the clock to
        each timer's time, then leave the clock at ``until_us``. Timers scheduled by callbacks
        for times within the horizon fire in the same call."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("run_until needs a VirtualClock; use run_due with a wall clock")
        fired = 0
        while (timer := self._pop_due(until_us)) is not None:
            if timer.at_us > clock.now_us():
                clock.advance_to(timer.at_us)
            timer.callback()
            fired += 1
        if until_us > clock.now_us():
            clock.advance_to(until_us)
        return fired


# The epoch in Beijing time, aware and naive. Beijing is a fixed UTC+8 (BEIJING above), so
# a time is the epoch plus a timedelta: no time-zone lookup per call (these run on every
# command).
_EPOCH_BEIJING: Final = datetime(1970, 1, 1, tzinfo=UTC).astimezone(BEIJING)
_EPOCH_BEIJING_NAIVE: Final = _EPOCH_BEIJING.replace(tzinfo=None)
_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_BEIJING_OFFSET_US: Final = 8 * US_PER_HOUR


def to_beijing(at_us: int) -> datetime:
    """Microseconds since the epoch -> aware Beijing datetime."""
    return _EPOCH_BEIJING + timedelta(microseconds=at_us)


def beijing_day(at_us: int) -> int:
    """The Beijing calendar day of a time as a count of days (the epoch's Beijing day is
    0): a division, Beijing being UTC+8 all year. For answers that hold for a local day."""
    return (at_us + _BEIJING_OFFSET_US) // US_PER_DAY


def beijing_day_start_us(day: int) -> int:
    """The first microsecond of Beijing day ``day`` (as :func:`beijing_day` counts them)."""
    return day * US_PER_DAY - _BEIJING_OFFSET_US


assert beijing_day(beijing_day_start_us(0)) == 0 and beijing_day(beijing_day_start_us(0) - 1) == -1


def to_beijing_naive(at_us: int) -> datetime:
    """Beijing wall time without tzinfo: the calendar's and the schedules' convention."""
    return _EPOCH_BEIJING_NAIVE + timedelta(microseconds=at_us)


def from_datetime(value: datetime) -> int:
    """Datetime -> microseconds since the epoch; a naive datetime is Beijing time."""
    delta = value - (_EPOCH_BEIJING_NAIVE if value.tzinfo is None else _EPOCH_UTC)
    return (delta.days * US_PER_DAY) + delta.seconds * US_PER_SECOND + delta.microseconds


def parse_time(text: str, *, field: str = "at") -> int:
    """Parse an ISO 8601 date-time (``2026-11-25T10:00``); without offset it is Beijing time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"{field}: not a date-time like 2026-11-25T10:00 (got {text!r})") from exc
    return from_datetime(value)


def format_time(at_us: int) -> str:
    """Microseconds -> ISO 8601 Beijing time with offset, seconds precision unless finer."""
    value = to_beijing(at_us)
    spec = "seconds" if value.microsecond == 0 else "microseconds"
    return value.isoformat(timespec=spec)
