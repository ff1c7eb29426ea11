"""The sandbox's clock: the wall clock (Beijing time), or a virtual clock the operator sets
or advances, to 17:14 before the HVPS cut-off, to the eve of a holiday.

Business logic reads time only from a command's timestamp, so the clock only decides the
stamps of new commands; every move of the virtual clock is logged (one tick at each
scheduled moment it passes, then one at the new time), so a replay of the log goes
through the same moments. Time never goes back: not on a move, not when the operator
returns to wall time while the virtual clock is ahead (the clock then holds until real
time catches up), not after a restart (the clock starts no earlier than the log's last
time). Which mode the clock is in is not logged: a restart takes ``--clock``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from qingsuan.clock import WallClock, format_time, to_beijing
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from qingsuan.world import World

Mode = Literal["wall", "virtual"]
#: the longest move of the virtual clock in one request (each day passed is some dozen
#: ticks, all logged)
MAX_MOVE_US: Final = 366 * 86_400_000_000
#: ticks one move may log at most (a guard: a day has a few dozen scheduled moments)
MAX_MOVE_TICKS: Final = 100_000


class SandboxClock:
    """Wall or virtual time. Read by any thread (the card port's and the HTTP one's);
    moved only by the engine's single writer."""

    def __init__(self, mode: Mode = "wall", start_us: int | None = None) -> None:
        if mode not in ("wall", "virtual"):
            raise ValueError(f"the clock is wall or virtual, not {mode!r}")
        if start_us is not None and mode != "virtual":
            raise ValueError("a start time is for the virtual clock")
        self._wall = WallClock()
        self.mode: Mode = mode
        #: the virtual time; None until the store is opened (then the log's last time)
        self._virtual_us = start_us
        self._start_given = start_us is not None
        #: the wall clock never reads earlier than this (the log's last time, or where the
        #: virtual clock was when the operator went back to wall time)
        self._floor_us = 0
        self._lock = threading.Lock()

    def now_us(self) -> int:
        if self.mode == "virtual" and self._virtual_us is not None:
            return self._virtual_us
        wall = self._wall.now_us()
        return wall if wall > self._floor_us else self._floor_us

    def resume(self, last_us: int) -> None:
        """The store is open and its last logged time is ``last_us``: never stamp earlier;
        a virtual clock without a given start starts there. ValueError if the given start
        is before it."""
        with self._lock:
            self._floor_us = max(self._floor_us, last_us)
            if self.mode != "virtual":
                return
            if self._virtual_us is None:
                self._virtual_us = last_us
            elif self._virtual_us < last_us:
                if self._start_given:
                    raise ValueError(f"the clock's start {format_time(self._virtual_us)} is "
                                     "before the last time in the store "
                                     f"({format_time(last_us)}): the world's time never goes "
                                     "back")
                self._virtual_us = last_us

    def set_virtual(self, at_us: int) -> None:
        with self._lock:
            now = self.now_us()
            if at_us < now:
                raise ValueError(f"the clock cannot go back from {format_time(now)} to "
                                 f"{format_time(at_us)}")
            self._virtual_us = at_us
            self.mode = "virtual"

    def use_wall(self) -> None:
        with self._lock:
            self._floor_us = max(self._floor_us, self.now_us())
            self.mode = "wall"


@dataclass(frozen=True)
class ClockMove:
    """What a move did: the moments it stopped at (each a logged tick)."""

    ticks: int
    from_us: int
    to_us: int


def move_to(world: World, clock: SandboxClock, target_us: int) -> ClockMove:
    """Move the virtual clock to ``target_us`` the way time passes: a logged tick at each
    scheduled moment on the way (cut-offs, net sessions, the close, the card cut-off), in
    order, then one at the target. Runs on the engine's writer. ApiError (nothing logged)
    when the target is in the past, too far, or outside the world's business calendar."""
    start = clock.now_us()
    if target_us < start:
        raise ApiError(409, "clock_backwards", f"the clock is at {format_time(start)}: the "
                       f"world's time never goes back (asked for {format_time(target_us)})",
                       "at")
    if target_us - start > MAX_MOVE_US:
        raise ApiError(422, "clock_too_far", "one move goes at most 366 days ahead", "at")
    _check_calendar(world, start, target_us)
    engine = world.engine
    ticks = 0
    while True:
        due = world.next_due_us()
        if due is None or due > target_us or ticks >= MAX_MOVE_TICKS:
            break
        clock.set_virtual(max(due, clock.now_us()))
        engine.tick()
        ticks += 1
        if due <= clock.now_us() and world.next_due_us() == due:
            break  # (a wake-up that does not move on: never loop on it)
    clock.set_virtual(target_us)
    engine.tick()
    return ClockMove(ticks + 1, start, target_us)


def _check_calendar(world: World, from_us: int, to_us: int) -> None:
    """A world whose calendar refuses years it has no data for (``calendar.missing_year``
    ``error``) cannot be ticked into one: refuse the move before anything is logged."""
    calendar = world.cnaps.hvps.schedule().calendar
    if calendar.missing_year != "error":
        return
    first = to_beijing(from_us).year
    last = (to_beijing(to_us) + dt.timedelta(days=1)).year  # HVPS's day D opens on D-1
    for year in range(first, last + 1):
        if not calendar.covers(year):
            years = calendar.years
            raise ApiError(422, "calendar_not_covered", f"the world's business calendar "
                           f"{calendar.name!r} covers {years.start}-{years.stop - 1}, not "
                           f"{year}", "at")


def clock_view(world: World, clock: SandboxClock) -> dict[str, Any]:
    """The clock, the next scheduled moment and HVPS's phase, as the API shows them."""
    now = clock.now_us()
    phase, day = world.cnaps.hvps.phase(now)
    due = world.next_due_us()
    return {"mode": clock.mode, "now": format_time(now),
            "next_due": format_time(due) if due is not None else None,
            "hvps_phase": phase.value,
            "business_date": day.isoformat() if isinstance(day, dt.date) else None}
