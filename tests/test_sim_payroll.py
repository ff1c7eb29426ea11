"""BEPS payroll days (sim/sim_payroll.py, the payroll: block): on a payroll day BEPS
carries the payroll credits on top of its ordinary day, in the morning; other days and
other systems are unchanged; a bad block names its line."""

from __future__ import annotations

import numpy as np
import pytest

from qingsuan.clock import US_PER_HOUR, parse_time
from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.sim_payroll import Payroll
from qingsuan.sim.simulate import Options, simulate
from qingsuan.sim.traffic import (
    DayGenerator,
    Limits,
    Member,
    Network,
    TrafficSpec,
    TrafficSystem,
    default_systems,
    generate_day,
)

LIMITS = Limits(5_000_000, 5_000_000)
MIDNIGHT = parse_time("2026-09-10T00:00")


def _network() -> Network:
    return Network([Member(f"B{i}", True, np.arange(i * 30, (i + 1) * 30)) for i in range(8)],
                   1.1)


def test_a_payroll_day_adds_morning_credits_to_beps_only() -> None:
    spec = TrafficSpec(default_systems(), 1e-3)
    plain = generate_day(spec, _network(), LIMITS, 2, 0, MIDNIGHT, True)
    gen = DayGenerator(spec, _network(), LIMITS, 2, 0, MIDNIGHT, True,
                       Payroll(share_ppm=500_000, mean_fen=800_000))
    paid = gen.take_until(MIDNIGHT + 24 * US_PER_HOUR, 288)
    beps = TrafficSystem.BEPS
    ordinary = int(np.sum(plain.system == beps))
    assert gen.payroll_items == ordinary // 2
    assert int(np.sum(paid.system == beps)) == ordinary + ordinary // 2
    for s in (TrafficSystem.HVPS, TrafficSystem.IBPS):  # the other streams: unchanged
        assert paid.amount_fen[paid.system == s].tobytes() == \
            plain.amount_fen[plain.system == s].tobytes()
    hour = (paid.at_us[paid.system == beps] - MIDNIGHT) // US_PER_HOUR
    plain_hour = (plain.at_us[plain.system == beps] - MIDNIGHT) // US_PER_HOUR
    morning = int(np.sum((hour >= 6) & (hour < 12)))
    assert morning - int(np.sum((plain_hour >= 6) & (plain_hour < 12))) == ordinary // 2


BASE = """
name: t
start: 2026-09-10T00:00
run_until: 2026-09-12T00:00
participants:
  - {name: ICBC, code: "102100099996"}
  - {name: CCB, code: "105100000017"}
traffic: {scale: 0.0001, customers_per_bank: 5, settlement_liquidity: 2,
          systems: {BEPS: {}}}
"""


def test_simulate_reports_the_payroll_day_and_not_the_next() -> None:
    """10 September is a payroll day, the 11th is not: the run's BEPS items are the two
    ordinary days plus the 10th's payroll credits, all with an outcome."""
    sc = parse_scenario(BASE + "payroll: {days: [10], share: 0.5}\n")
    s = simulate(sc, Options(days=2, seed=1)).summary
    beps = s["systems"]["BEPS"]
    assert s["payroll"]["generated_items"] == 1_395 // 2 == 697
    assert beps["generated_items"] == 2 * 1_395 + 697
    assert sum(v["items"] for v in beps["outcomes"].values()) == beps["generated_items"]
    assert all(s["checks"].values())


@pytest.mark.parametrize(("block", "message"), [
    ("payroll: {days: [0]}", "days must be a list of days of the month"),
    ("payroll: {days: 10}", "days must be a list"),
    ("payroll: {share: -1}", "payroll: share must be a decimal"),
    ("payroll: {mean: '90000.00'}", "mean must be at most the BEPS item limit"),
    ("payroll: {when: 1}", "unknown key 'when'"),
])
def test_a_bad_payroll_block_names_its_line(block: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + block + "\n", "t.yaml")
    assert message in str(caught.value) and "t.yaml:10" in str(caught.value)
