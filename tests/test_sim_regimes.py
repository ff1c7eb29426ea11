"""Historical regimes on the same payments (sim/sim_regimes.py): each regime's arithmetic
on a small day written by hand, and the comparison a simulated day reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qingsuan.clock import US_PER_DAY, US_PER_HOUR, US_PER_SECOND
from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.sim_regimes import RegimeParams, Regimes, prefunding_fen
from qingsuan.sim.simulate import Options, simulate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "scenarios" / "sim-stress.yaml").read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]


def _a(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def test_correspondents_prefund_each_pairs_peak_running_flow() -> None:
    """A pays B 100, B pays A 30, A pays B 50: A's account at B must hold 120 (the running
    net's peak), B's at A nothing; C pays A 10: C's account at A holds 10."""
    at = _a(1, 2, 3, 4)
    assert prefunding_fen(at, _a(0, 1, 0, 2), _a(1, 0, 1, 0), _a(100, 30, 50, 10)) == 130
    # the order matters: B's 30 first means B must prefund 30 at A, and A then 120 at B
    assert prefunding_fen(_a(2, 1, 3), _a(0, 1, 0), _a(1, 0, 1), _a(100, 30, 50)) == 30 + 120


def test_each_regime_on_a_hand_written_day() -> None:
    day_end = 2 * US_PER_DAY
    at = _a(day_end - 6 * US_PER_HOUR, day_end - 2 * US_PER_HOUR)
    regimes = Regimes(RegimeParams(draft_days=10, escort_ppm=10_000, post_days=2,
                                   wire_days=1), participants=3)
    regimes.day(day_end, at, _a(0, 1), _a(1, 2), _a(300, 100))
    regimes.cnaps(350, 0.0, 400)
    s = regimes.summary(period_s=US_PER_DAY / US_PER_SECOND)
    # net: A -300, B +200, C +100: net debits 300
    assert s["hub_post"]["liquidity_fen"] == s["hub_wire"]["liquidity_fen"] == 300
    assert s["draft_houses"]["liquidity_fen"] == 300
    assert s["draft_houses"]["cost_fen"] == 3  # 1% of the 300 escorted
    assert s["draft_houses"]["delay_s"] == 10 * 86_400
    assert s["draft_houses"]["in_transit_fen"] == 400 * 10  # ten days' value on the road
    # the wire hub: each payment waits for the day's end, then a day
    wire = (300 * (6 * 3600 + 86_400) + 100 * (2 * 3600 + 86_400)) / 400
    assert s["hub_wire"]["delay_s"] == round(wire, 3)
    assert s["hub_post"]["delay_s"] == round(wire + 86_400, 3)
    assert s["correspondent"] == {"liquidity_fen": 400, "in_transit_fen": 0, "delay_s": 0.0,
                                  "cost_fen": 0, "accounts": 6}
    assert s["cnaps"]["liquidity_fen"] == 350 and s["cnaps"]["accounts"] == 3


def test_a_simulated_day_compares_the_regimes_on_its_own_payments() -> None:
    result = simulate(parse_scenario(BASE, "s.yaml"), Options(seed=2, scale=3e-4))
    r = result.summary["regimes"]
    assert r["correspondent"]["liquidity_fen"] >= r["hub_wire"]["liquidity_fen"] > 0
    assert r["hub_post"]["delay_s"] > r["hub_wire"]["delay_s"] > r["cnaps"]["delay_s"]
    assert r["draft_houses"]["delay_s"] == 10 * 86_400
    assert r["correspondent"]["accounts"] == 9 * 8
    # CNAPS's own figures are the run's: its delay is the transfers' waiting
    assert r["cnaps"]["delay_s"] > 0 and r["cnaps"]["in_transit_fen"] > 0


@pytest.mark.parametrize(("block", "message"), [
    ("regimes: {draft_days: -1}\n", "draft_days must be a whole number from 0 to 366"),
    ("regimes: {escort_rate: 2}\n", "escort_rate must be a decimal"),
    ("regimes: {ships: 3}\n", "unknown key 'ships'"),
])
def test_bad_regime_parameters_name_their_line(block: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + block, "s.yaml")
    assert message in str(caught.value) and f"s.yaml:{BASE.count(chr(10)) + 1}" in \
        str(caught.value)
