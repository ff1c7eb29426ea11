"""The banks after every command (banks/system.py after_apply): the followers run in turn
until each in a row finds nothing, and the wake-up they fold keeps the card cut-off once
folded instead of asking the switch again. Both must give what the plain rule gives:
rounds of every follower until a round moves nothing, and the world's state moments
(the card cut-off among them) folded in after every command, a whole fold after a tick
or a change of parameters."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from qingsuan.banks.system import FOLLOWERS, Banks
from qingsuan.clock import parse_time
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario, parse_scenario

SCENARIOS = Path(str(resources.files("qingsuan") / "scenarios"))
#: scenarios/cards.yaml with the card's transactions in the evening, after the world's
#: last tick before the cut-off: the purchases bring the wake-up forward to the cut-off
EVENING = (SCENARIOS / "cards.yaml").read_text(encoding="utf-8").replace(
    "at: 2026-11-25T10:00", "at: 2026-11-25T21:00").replace(
    "at: 2026-11-25T12:30", "at: 2026-11-25T21:30")


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.yaml")
                                        if not p.stem.startswith("sim-")))
def test_wake_up_and_following_as_the_plain_rule(name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    check_as_plain_rule(monkeypatch, lambda: load_scenario(SCENARIOS / f"{name}.yaml"))


def test_card_transactions_after_the_last_tick_bring_the_wake_up_forward(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "21:30" in EVENING
    wakes = check_as_plain_rule(monkeypatch, lambda: parse_scenario(EVENING))
    assert parse_time("2026-11-25T23:00+08:00") in wakes


def check_as_plain_rule(monkeypatch: pytest.MonkeyPatch, scenario: Any) -> list[int | None]:
    """Run the scenario checking every command's wake-up against the plain rule; the
    wake-ups after each command."""
    plain: dict[int, Any] = {}  # Banks id -> the wake-up the plain rule gives
    checked = []
    real_after = Banks.after_apply

    def after_apply(b: Banks) -> None:
        assert b.engine is not None
        ticked, version_before = b._ticked, b._params_version
        real_after(b)
        # every follower, called again, finds nothing (the plain rule's last round), and
        # the cursors are at their lists' ends (what _follow's shortcut reads)
        assert not any(follow(b) for follow in FOLLOWERS)
        assert b._caught_up() or bool(b.held or b.returns_pending or b.payouts_waiting)
        now, version = b.engine.now_us, b.engine.params.version
        wake = plain.get(id(b))
        if ticked or wake is None:
            wake = b.next_due_us(now)
        else:
            nxt = b.next_due_us(now) if version != version_before else b._state_due_us(now)
            if nxt is not None and nxt < wake:
                wake = nxt
        plain[id(b)] = wake
        assert b.wake_us == wake
        checked.append(wake)

    monkeypatch.setattr(Banks, "after_apply", after_apply)
    run_scenario(scenario(), store="memory:")
    assert checked
    return checked
