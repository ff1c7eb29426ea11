"""A window entry (Engine.command_in_window): the commands a run applies between two other
commands logged as one entry, each replayed at its own time with the systems' after-steps
between them, exactly as entries of their own would be."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from qingsuan.clock import VirtualClock
from qingsuan.engine import KIND_WINDOW, MAX_WINDOW, Engine, ReplayError, replay
from qingsuan.sim.runner import COMMIT_EVERY
from qingsuan.store import open_log


class _Stamp:
    """Records each command's body and time, and each after-step (the banks' follow-up):
    its state is the exact order of both, so a replay that ran them differently shows."""

    prefix = "stamp"

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> int:
        assert self.engine is not None and self.engine.now_us == timestamp_us
        self.seen.append(f"{body.decode()}@{timestamp_us}")
        return len(self.seen)

    def after_apply(self) -> None:
        if self.seen and not self.seen[-1].startswith("after"):
            self.seen.append(f"after {self.seen[-1]}")

    def on_tick(self, now_us: int) -> None:
        self.seen.append(f"tick@{now_us}")

    def dump_state(self) -> bytes:
        return "|".join(self.seen).encode()

    def load_state(self, state: bytes) -> None:
        self.seen = state.decode().split("|") if state else []


def _kinds(url: str) -> list[str]:
    log = open_log(url, readonly=True)
    try:
        return [e.kind for e in log.entries(0)]
    finally:
        log.close()


def _run(engine: Engine, clock: VirtualClock, commit_every: int = 100) -> list[int]:
    """a, b, c at 10, 20, 30; a tick at 40; d, e at 50, 60 (windowed)."""
    results = []
    with engine.deferred_commits(commit_every):
        for name, at in (("a", 10), ("b", 20), ("c", 30)):
            clock.advance_to(at)
            results.append(engine.command_in_window("stamp.it", name.encode()))
        clock.advance_to(40)
        engine.tick()
        for name, at in (("d", 50), ("e", 60)):
            clock.advance_to(at)
            results.append(engine.command_in_window("stamp.it", name.encode()))
    return results


def test_a_window_is_one_entry_replayed_at_each_commands_time(tmp_path: Path) -> None:
    url, clock = str(tmp_path / "w.db"), VirtualClock(0)
    with Engine.open(url, clock, systems=[_Stamp()]) as engine:
        assert _run(engine, clock) == [1, 3, 5, 9, 11]  # applied at once, in order
        state = engine.systems["stamp"].dump_state()  # type: ignore[attr-defined]
        assert state == (b"a@10|after a@10|b@20|after b@20|c@30|after c@30|tick@40|"
                         b"after tick@40|d@50|after d@50|e@60|after e@60")
        assert engine.applied_seq == 3  # two windows and the tick between them
        assert engine.commands_applied == 6
        expected = engine.state_hash()
    assert _kinds(url) == [KIND_WINDOW, "tick", KIND_WINDOW]
    replayed = replay(url, [_Stamp()])
    assert replayed.state_hash() == expected
    assert replayed.commands_applied == 6
    with Engine.open(url, VirtualClock(0), systems=[_Stamp()]) as again:  # from a snapshot
        again.snapshot()
    with Engine.open(url, VirtualClock(0), systems=[_Stamp()]) as again:
        assert again.state_hash() == expected and again.commands_applied == 6


def test_a_window_holds_no_more_than_a_commit_group() -> None:
    """commit_every bounds the commands a crash can lose, windows included: a group of 1
    makes every command its own entry, as without windows."""
    url = "memory://window-groups"
    clock = VirtualClock(0)
    with Engine.open(url, clock, systems=[_Stamp()]) as engine:
        _run(engine, clock, commit_every=1)
        assert engine.applied_seq == engine.commands_applied == 6
    clock = VirtualClock(0)
    with Engine.open("memory://window-groups-2", clock, systems=[_Stamp()]) as engine:
        _run(engine, clock, commit_every=2)
        assert engine.applied_seq == 4  # (a b) (c) tick (d e)
        assert engine.commands_applied == 6
    assert MAX_WINDOW >= COMMIT_EVERY  # a run's commit group fits one window


def test_without_deferred_commits_a_window_command_is_an_entry() -> None:
    with Engine.open("memory://window-plain", VirtualClock(7), systems=[_Stamp()]) as engine:
        assert engine.command_in_window("stamp.it", b"x") == 1
        assert engine.applied_seq == engine.commands_applied == 1


def test_a_window_cut_short_or_nested_does_not_replay(tmp_path: Path) -> None:
    def window(items: list[tuple[str, bytes]]) -> bytes:
        parts = [struct.pack("<q", 1)]
        for kind, payload in items:
            parts += [struct.pack("<HI", len(kind), len(payload)), kind.encode(), payload]
        return b"".join(parts)

    good = window([("stamp.it", struct.pack("<q", 1) + b"a")] * 2)
    for bad, why in ((good[:-1], "cut short"),
                     (window([(KIND_WINDOW, good)]), "holds no 'window'"),
                     (struct.pack("<q", 1), "cut short")):
        url = str(tmp_path / f"bad{len(bad)}.db")
        log = open_log(url)
        log.append([(KIND_WINDOW, bad)])
        log.close()
        with pytest.raises(ReplayError, match=why):
            replay(url, [_Stamp()])
