"""Generated traffic (sim/traffic.py) and the scenario's traffic: block: seeded, calibrated
to its targets, routed where the banks would route it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qingsuan.clock import US_PER_DAY, US_PER_HOUR, US_PER_MINUTE, parse_time
from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.traffic import (
    DayGenerator,
    DayTraffic,
    Limits,
    Member,
    Network,
    TrafficSpec,
    TrafficSystem,
    default_systems,
    draw_amounts,
    generate_day,
    truncated_mean,
)

LIMITS = Limits(5_000_000, 5_000_000)
MIDNIGHT = parse_time("2026-09-30T00:00")


def _network(banks: int = 8, customers: int = 30, institution: bool = True) -> Network:
    members = [Member(f"B{i}", True, np.arange(i * customers, (i + 1) * customers))
               for i in range(banks)]
    if institution:
        members.append(Member("PAY", False, np.arange(banks * customers,
                                                      (banks + 1) * customers)))
    return Network(members, 1.1)


def _day(seed: int, scale: float = 1e-3, hvps_open: bool = True) -> DayTraffic:
    spec = TrafficSpec(default_systems(), scale)
    return generate_day(spec, _network(), LIMITS, seed, 0, MIDNIGHT, hvps_open)


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    a, b, c = _day(1), _day(1), _day(2)
    cols = ("at_us", "system", "payer", "payee", "amount_fen")
    assert all(getattr(a, k).tobytes() == getattr(b, k).tobytes() for k in cols)
    assert any(getattr(a, k).tobytes() != getattr(c, k).tobytes() for k in cols)


def test_counts_are_the_scaled_targets_and_the_mean_per_item_is_calibrated() -> None:
    """Counts exact; the mean per item within 4 standard errors of the target (sample
    sd estimated from the draw) and within stated bounds: HVPS 10%, BEPS 1%, IBPS 2%."""
    spec = TrafficSpec(default_systems(), 1e-2)
    day = generate_day(spec, _network(), LIMITS, 7, 0, MIDNIGHT, True)
    for target, tolerance in zip(spec.systems, (0.10, 0.01, 0.02), strict=True):
        mine = day.system == target.system
        amounts = day.amount_fen[mine]
        assert len(amounts) == round(target.items_per_day * 1e-2)
        assert amounts.dtype == np.int64
        mean = float(amounts.mean())
        standard_error = float(amounts.std()) / math.sqrt(len(amounts))
        assert abs(mean - target.mean_fen) <= 4 * standard_error, target.system
        assert abs(mean / target.mean_fen - 1) <= tolerance, (target.system, mean)


def test_amounts_stay_on_their_route_and_ibps_is_urgent() -> None:
    day = _day(3)
    hvps, beps, ibps = (day.system == s for s in TrafficSystem)
    assert (day.amount_fen[hvps] > 5_000_000).all()
    assert (day.amount_fen[beps | ibps] <= 5_000_000).all() and (day.amount_fen > 0).all()
    assert (day.urgent == ibps).all()


def test_the_big_banks_exchange_most_of_the_value_and_nobody_pays_itself() -> None:
    day = _day(4, scale=5e-3)
    bank = day.payer // 30
    assert (bank != day.payee // 30).all()
    value = np.bincount(bank, weights=day.amount_fen.astype(np.float64), minlength=9)
    assert value[:3].sum() > 0.5 * value.sum()  # 3 of 9 participants
    # a payment institution takes part in IBPS only
    institution = (bank == 8) | (day.payee // 30 == 8)
    assert (day.system[institution] == TrafficSystem.IBPS).all() and institution.any()


def test_arrivals_follow_the_profiles() -> None:
    day = _day(5, scale=5e-3)
    at = day.at_us - MIDNIGHT
    assert (np.diff(day.at_us) >= 0).all() and (at >= 0).all() and (at < US_PER_DAY).all()
    hvps = at[day.system == TrafficSystem.HVPS]
    cutoff = 17 * US_PER_HOUR + 15 * US_PER_MINUTE
    assert hvps.min() >= 8 * US_PER_HOUR + 30 * US_PER_MINUTE and hvps.max() < cutoff
    # HVPS peaks before its cut-off: the last 1.75 hours carry more than their share
    assert float(np.mean(hvps >= cutoff - 105 * US_PER_MINUTE)) > 105 / 525 * 1.5
    # IBPS: an evening peak above the small hours
    ibps = at[day.system == TrafficSystem.IBPS] // US_PER_HOUR
    assert np.sum((ibps >= 19) & (ibps < 22)) > 5 * np.sum((ibps >= 2) & (ibps < 5))


def test_no_hvps_traffic_when_hvps_is_closed() -> None:
    day = _day(6, hvps_open=False)
    assert not (day.system == TrafficSystem.HVPS).any() and len(day) > 0


def test_the_truncated_lognormal_is_calibrated_exactly() -> None:
    assert truncated_mean(10.0, 1.0, 1.0, math.inf) == pytest.approx(math.exp(10.5), 1e-9)
    rng = np.random.default_rng(0)
    amounts = draw_amounts(rng, 200_000, 4_000_000.0, 0.8, 1, 5_000_000)
    assert amounts.max() <= 5_000_000 and amounts.min() >= 1
    assert float(amounts.mean()) == pytest.approx(4_000_000, rel=0.01)


BASE = """
name: t
start: 2026-09-30T00:00
run_until: 2026-10-01T00:00
participants:
  - {name: ICBC, code: "102100099996"}
  - {name: CCB, code: "105100000017"}
"""


def test_the_traffic_block_is_read_with_its_defaults() -> None:
    sc = parse_scenario(BASE + "traffic:\n  scale: 0.001\n  customers_per_bank: 3\n"
                               "  systems:\n    IBPS: {sigma: 1.0}\n    HVPS:\n")
    assert sc.traffic is not None
    assert [s.system for s in sc.traffic.systems] == [TrafficSystem.IBPS, TrafficSystem.HVPS]
    assert sc.traffic.systems[0].sigma == 1.0 and sc.traffic.systems[1].items_per_day == 1_630_000
    assert sc.traffic.scale == 0.001 and sc.traffic.customers_per_bank == 3
    assert parse_scenario(BASE + "traffic: []\n").traffic is None
    defaults = parse_scenario(BASE + "traffic: {scale: 1}\n").traffic
    assert defaults is not None and len(defaults.systems) == 3


@pytest.mark.parametrize(("block", "message"), [
    ("traffic: {scale: 0}", "scale must be a number above 0"),
    ("traffic: {scale: fast}", "scale must be a number"),
    ("traffic: {customers_per_bank: -1}", "customers_per_bank must be a whole number"),
    ("traffic: {speed: 1}", "unknown key 'speed'"),
    ("traffic: {systems: {CUPS: {}}}", "unknown system 'CUPS'"),
    ("traffic: {systems: {IBPS: {items_per_day: 10, value_per_day: '900000.00'}}}",
     "must be below the IBPS item limit"),
    ("traffic: {systems: {HVPS: {items_per_day: 10, value_per_day: '100.00'}}}",
     "must be above the BEPS item limit"),
    ("traffic: {systems: {BEPS: {items_per_day: 0}}}", "items_per_day must be a whole number"),
    ("traffic: [1]", "traffic must be a mapping"),
])
def test_a_bad_traffic_block_names_its_line(block: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + block + "\n", "t.yaml")
    assert message in str(caught.value) and "t.yaml:8" in str(caught.value)


def test_a_day_taken_in_any_windows_is_the_same_day_byte_for_byte() -> None:
    """The simulator takes the day window by window, generating as it goes: the windows'
    size and how far ahead it generates change no transfer."""
    spec = TrafficSpec(default_systems(), 2e-3)
    whole = generate_day(spec, _network(), LIMITS, 9, 0, MIDNIGHT, True)
    assert len(whole) == sum(spec.items_per_day(s) for s in spec.systems)
    for window_minutes, ahead in ((7, 1), (60, 3), (1, 12)):
        gen = DayGenerator(spec, _network(), LIMITS, 9, 0, MIDNIGHT, True)
        parts = [gen.take_until(MIDNIGHT + (k + 1) * window_minutes * US_PER_MINUTE, ahead)
                 for k in range(-(-1_440 // window_minutes))]
        assert all(len(p) < len(whole) for p in parts)  # taken in pieces, really
        for col in ("at_us", "system", "payer", "payee", "amount_fen"):
            taken = np.concatenate([getattr(p, col) for p in parts])
            assert taken.tobytes() == getattr(whole, col).tobytes(), (window_minutes, col)
    # another day of the same seed is other traffic
    other = generate_day(spec, _network(), LIMITS, 9, 1, MIDNIGHT, True)
    assert other.amount_fen.tobytes() != whole.amount_fen.tobytes()


def test_participants_are_drawn_with_their_weights_and_a_zero_weight_never() -> None:
    """The alias table draws each participant with its eligible weight (2,000 of them
    as in the national day, one a payment institution, never in BEPS)."""
    members = [Member(f"B{i}", i != 3, np.array([i])) for i in range(2_000)]
    network = Network(members, 1.1)
    drawn = network.draw(np.random.default_rng(1), 2_000_000, TrafficSystem.BEPS)
    share = np.bincount(drawn, minlength=2_000) / 2_000_000
    weight = network.eligible(TrafficSystem.BEPS)
    assert share[3] == 0 and weight[3] == 0
    top = slice(0, 20)  # the big banks: within 3 standard errors of their weights
    error = np.sqrt(weight[top] * (1 - weight[top]) / 2_000_000)
    assert (np.abs(share[top] - weight[top]) <= 3 * error + 1e-12).all()
