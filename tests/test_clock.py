"""Tests for qingsuan.clock: injected integer-microsecond time and the deterministic scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.clock import (
    BEIJING,
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_MINUTE,
    US_PER_SECOND,
    Scheduler,
    VirtualClock,
    WallClock,
    format_time,
    from_datetime,
    parse_time,
    to_beijing,
)

# 2026-11-25T02:00:00Z == 2026-11-25T10:00 Beijing
T_1000_BEIJING = 1_795_572_000_000_000
T_1000_UTC = 1_795_600_800_000_000


def test_units() -> None:
    assert US_PER_SECOND == 1_000_000
    assert US_PER_MINUTE == 60_000_000
    assert US_PER_HOUR == 3_600_000_000
    assert US_PER_DAY == 86_400_000_000
    assert BEIJING.utcoffset(None) == timedelta(hours=8)


# -- clocks --------------------------------------------------------------------------------


def test_virtual_clock_advances() -> None:
    clock = VirtualClock()
    assert clock.now_us() == 0
    clock.advance_to(5)
    assert clock.now_us() == 5
    clock.advance_to(5)  # standing still is allowed
    assert clock.now_us() == 5
    clock = VirtualClock(start_us=T_1000_BEIJING)
    assert clock.now_us() == T_1000_BEIJING


def test_virtual_clock_never_goes_back() -> None:
    clock = VirtualClock(100)
    with pytest.raises(ValueError) as info:
        clock.advance_to(99)
    assert str(info.value) == "virtual clock cannot go back from 100 to 99"
    assert clock.now_us() == 100


def test_wall_clock_monotonic() -> None:
    clock = WallClock()
    first = clock.now_us()
    second = clock.now_us()
    assert isinstance(first, int)
    assert second >= first
    # close to the real time (microseconds since the epoch, not ns or ms)
    real = int(datetime.now(UTC).timestamp() * US_PER_SECOND)
    assert abs(second - real) < 60 * US_PER_SECOND


def test_wall_clock_holds_when_system_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import qingsuan.clock as clock_module

    readings = iter([5_000_000, 3_000_000, 7_000_000])
    monkeypatch.setattr(clock_module._time, "time_ns", lambda: next(readings))
    clock = WallClock()
    assert clock.now_us() == 5_000
    assert clock.now_us() == 5_000  # held, not 3_000
    assert clock.now_us() == 7_000


# -- scheduler -----------------------------------------------------------------------------


def test_timers_fire_in_time_priority_sequence_order() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[tuple[str, int]] = []

    def rec(tag: str) -> object:
        return lambda: fired.append((tag, clock.now_us()))

    sched.schedule(30, rec("c"))
    sched.schedule(10, rec("a2"), priority=1)
    sched.schedule(10, rec("a1-first"), priority=0)
    sched.schedule(10, rec("a1-second"), priority=0)
    sched.schedule(20, rec("b"), priority=-5)
    sched.schedule(10, rec("a0"), priority=-1)
    assert len(sched) == 6
    assert sched.next_due_us() == 10
    assert sched.run_until(100) == 6
    assert fired == [
        ("a0", 10),
        ("a1-first", 10),
        ("a1-second", 10),
        ("a2", 10),
        ("b", 20),
        ("c", 30),
    ]
    assert len(sched) == 0
    assert sched.next_due_us() is None
    assert clock.now_us() == 100


def test_run_until_stops_at_horizon() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[int] = []
    sched.schedule(50, lambda: fired.append(50))
    sched.schedule(51, lambda: fired.append(51))
    assert sched.run_until(50) == 1  # inclusive horizon
    assert fired == [50]
    assert clock.now_us() == 50
    assert len(sched) == 1
    assert sched.next_due_us() == 51
    assert sched.run_until(60) == 1
    assert fired == [50, 51]
    assert clock.now_us() == 60


def test_run_until_with_no_timers_moves_clock_to_horizon() -> None:
    clock = VirtualClock(10)
    sched = Scheduler(clock)
    assert sched.run_until(1_000) == 0
    assert clock.now_us() == 1_000
    # a horizon in the past leaves the clock alone (time never goes back)
    assert sched.run_until(500) == 0
    assert clock.now_us() == 1_000


def test_cancel() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[str] = []
    keep = sched.schedule(10, lambda: fired.append("keep"))
    drop = sched.schedule(5, lambda: fired.append("drop"))
    assert len(sched) == 2
    assert sched.cancel(drop) is True
    assert len(sched) == 1
    assert sched.cancel(drop) is False  # already cancelled
    assert len(sched) == 1
    assert sched.next_due_us() == 10
    assert sched.run_until(20) == 1
    assert fired == ["keep"]
    assert sched.cancel(keep) is False  # already fired
    assert len(sched) == 0


def test_callback_schedules_timer_inside_horizon() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[tuple[str, int]] = []

    def first() -> None:
        fired.append(("first", clock.now_us()))
        sched.schedule(clock.now_us() + 5, lambda: fired.append(("child", clock.now_us())))
        sched.schedule(clock.now_us() + 500, lambda: fired.append(("late", clock.now_us())))

    sched.schedule(10, first)
    sched.schedule(12, lambda: fired.append(("other", clock.now_us())))
    assert sched.run_until(100) == 3
    assert fired == [("first", 10), ("other", 12), ("child", 15)]
    assert len(sched) == 1
    assert clock.now_us() == 100
    assert sched.run_until(510) == 1
    assert fired[-1] == ("late", 510)


def test_callback_scheduling_at_same_time_fires_after_earlier_sequence() -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[str] = []

    def first() -> None:
        fired.append("first")
        sched.schedule(10, lambda: fired.append("child"))

    sched.schedule(10, first)
    sched.schedule(10, lambda: fired.append("second"))
    assert sched.run_until(10) == 3
    assert fired == ["first", "second", "child"]


def test_past_timers_fire_on_next_run() -> None:
    clock = VirtualClock(1_000)
    sched = Scheduler(clock)
    fired: list[tuple[str, int]] = []
    sched.schedule(2_000, lambda: fired.append(("future", clock.now_us())))
    sched.schedule(5, lambda: fired.append(("past", clock.now_us())))
    sched.schedule(1_000, lambda: fired.append(("now", clock.now_us())))
    assert sched.run_until(1_000) == 2
    # fired at once, the clock did not go back
    assert fired == [("past", 1_000), ("now", 1_000)]
    assert clock.now_us() == 1_000
    assert sched.run_due() == 0
    clock.advance_to(2_500)
    assert sched.run_due() == 1
    assert fired[-1] == ("future", 2_500)


def test_run_due_fires_only_due_timers() -> None:
    clock = VirtualClock(100)
    sched = Scheduler(clock)
    fired: list[int] = []
    sched.schedule(100, lambda: fired.append(100))
    sched.schedule(99, lambda: fired.append(99))
    sched.schedule(101, lambda: fired.append(101))
    assert sched.run_due() == 2
    assert fired == [99, 100]
    assert clock.now_us() == 100
    assert len(sched) == 1


def test_run_until_with_wall_clock_raises() -> None:
    sched = Scheduler(WallClock())
    sched.schedule(0, lambda: None)
    with pytest.raises(TypeError) as info:
        sched.run_until(10)
    assert str(info.value) == "run_until needs a VirtualClock; use run_due with a wall clock"
    assert len(sched) == 1
    assert sched.run_due() == 1  # time 0 is long past
    assert len(sched) == 0


def test_len_counts_live_timers() -> None:
    sched = Scheduler(VirtualClock())
    assert len(sched) == 0
    timers = [sched.schedule(t, lambda: None) for t in (3, 1, 2)]
    assert len(sched) == 3
    sched.cancel(timers[1])  # the earliest one, at the top of the heap
    assert len(sched) == 2
    assert sched.next_due_us() == 2
    assert sched.run_until(2) == 1
    assert len(sched) == 1
    sched.cancel(timers[0])
    assert len(sched) == 0
    assert sched.next_due_us() is None
    assert sched.run_until(10) == 0


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=-3, max_value=3)),
        max_size=60,
    )
)
def test_firing_order_property(entries: list[tuple[int, int]]) -> None:
    clock = VirtualClock()
    sched = Scheduler(clock)
    fired: list[tuple[int, int, int, int]] = []
    for index, (at_us, priority) in enumerate(entries):
        sched.schedule(
            at_us,
            lambda a=at_us, p=priority, i=index: fired.append((a, p, i, clock.now_us())),
            priority=priority,
        )
    assert len(sched) == len(entries)
    assert sched.run_until(20) == len(entries)
    expected = sorted((a, p, i) for i, (a, p) in enumerate(entries))
    assert [(a, p, i) for a, p, i, _ in fired] == expected
    assert all(a == now for a, _, _, now in fired)  # each fired at its own time
    assert len(sched) == 0


@given(
    st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40),
    st.data(),
)
def test_cancel_property(times: list[int], data: st.DataObject) -> None:
    sched = Scheduler(VirtualClock())
    fired: list[int] = []
    timers = [sched.schedule(t, lambda i=i: fired.append(i)) for i, t in enumerate(times)]
    cancelled = data.draw(st.sets(st.integers(min_value=0, max_value=len(times) - 1)))
    for i in cancelled:
        assert sched.cancel(timers[i]) is True
    assert len(sched) == len(times) - len(cancelled)
    sched.run_until(50)
    assert sorted(fired) == [i for i in range(len(times)) if i not in cancelled]
    assert all(sched.cancel(t) is False for t in timers)


# -- time helpers --------------------------------------------------------------------------


def test_parse_time_is_beijing_by_default() -> None:
    assert parse_time("2026-11-25T10:00") == T_1000_BEIJING
    assert parse_time("  2026-11-25T10:00  ") == T_1000_BEIJING
    assert parse_time("2026-11-25T10:00+08:00") == T_1000_BEIJING
    assert parse_time("2026-11-25T02:00+00:00") == T_1000_BEIJING
    assert parse_time("2026-11-25T10:00:00.000001") == T_1000_BEIJING + 1


def test_parse_time_explicit_offset_differs_by_eight_hours() -> None:
    assert parse_time("2026-11-25T10:00+00:00") == T_1000_UTC
    assert T_1000_UTC - T_1000_BEIJING == 8 * US_PER_HOUR


def test_epoch() -> None:
    assert parse_time("1970-01-01T08:00") == 0
    assert parse_time("1970-01-01T00:00+00:00") == 0
    assert format_time(0) == "1970-01-01T08:00:00+08:00"


def test_format_time() -> None:
    assert format_time(T_1000_BEIJING) == "2026-11-25T10:00:00+08:00"
    assert format_time(T_1000_BEIJING + 1) == "2026-11-25T10:00:00.000001+08:00"
    assert format_time(T_1000_UTC) == "2026-11-25T18:00:00+08:00"


@given(st.integers(min_value=0, max_value=4_102_444_800 * US_PER_SECOND))  # up to 2100
def test_format_parse_round_trip(at_us: int) -> None:
    text = format_time(at_us)
    assert text.endswith("+08:00")
    assert parse_time(text) == at_us


@pytest.mark.parametrize("bad", ["", "   ", "tomorrow", "2026-13-01T10:00", "2026-11-25T25:00"])
def test_parse_time_bad_text(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_time(bad, field="events[3].at")
    assert str(info.value) == (f"events[3].at: not a date-time like 2026-11-25T10:00 (got {bad!r})")


def test_parse_time_not_a_string() -> None:
    with pytest.raises(ValueError) as info:
        parse_time(None)  # type: ignore[arg-type]
    assert str(info.value) == "at: not a date-time like 2026-11-25T10:00 (got None)"


def test_to_beijing_and_from_datetime() -> None:
    value = to_beijing(T_1000_BEIJING)
    assert value.utcoffset() == timedelta(hours=8)
    assert (value.year, value.month, value.day, value.hour, value.minute) == (2026, 11, 25, 10, 0)
    assert from_datetime(value) == T_1000_BEIJING
    assert from_datetime(datetime(2026, 11, 25, 10, 0)) == T_1000_BEIJING  # naive = Beijing
    assert from_datetime(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)) == T_1000_BEIJING
    assert from_datetime(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
