"""Banks' cash managers (sim/policies.py) and costs (sim/costs.py): the release decisions
as pure functions, their effect on a simulated day, and the cost arithmetic."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from qingsuan.clock import US_PER_MINUTE
from qingsuan.sim.costs import CostRates, bank_costs
from qingsuan.sim.metrics import SCHEMAS
from qingsuan.sim.policies import Policy, PolicyKind, release, split
from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.simulate import Options, Result, simulate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "scenarios" / "sim-stress.yaml").read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]
NOON = 12 * 60 * US_PER_MINUTE
CUTOFF = (17 * 60 + 15) * US_PER_MINUTE


def _a(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def test_buffer_releases_in_order_while_the_buffer_stays() -> None:
    buffer = Policy(PolicyKind.BUFFER, buffer_ppm=200_000)
    at = _a(0, 0, 0)
    # opening 100, keep 20: 30 + 30 fit in 100 - 20, the third does not
    assert release(buffer, NOON, CUTOFF, at, _a(30, 30, 30), 100, 100).tolist() == \
        [True, True, False]
    # a payment that does not fit stops the ones after it (the bank pays in order)
    assert release(buffer, NOON, CUTOFF, at, _a(90, 10, 10), 95, 100).tolist() == \
        [False, False, False]
    # from final_minutes before the cut-off, everything goes
    late = CUTOFF - 30 * US_PER_MINUTE
    assert release(buffer, late, CUTOFF, at, _a(90, 10, 10), 95, 100).all()
    assert release(Policy(), NOON, CUTOFF, at, _a(90, 10, 10), 0, 100).all()


def test_deadline_releases_what_is_covered_or_due() -> None:
    deadline = Policy(PolicyKind.DEADLINE, hold_minutes=30)
    at = _a(NOON - 31 * US_PER_MINUTE, NOON - 10 * US_PER_MINUTE, NOON)
    assert release(deadline, NOON, CUTOFF, at, _a(50, 50, 50), 10, 100).tolist() == \
        [True, False, False]  # the first is past its deadline; nothing is covered
    assert release(deadline, NOON, CUTOFF, at, _a(50, 50, 50), 100, 100).tolist() == \
        [True, True, False]


def test_split_keeps_every_fen_in_pieces_of_at_most_the_maximum() -> None:
    amounts = _a(250, 100, 99, 1)
    source, pieces = split(100, amounts)
    assert source.tolist() == [0, 0, 0, 1, 2, 3]
    assert pieces.tolist() == [100, 100, 50, 100, 99, 1]
    big = _a(10**15)
    _, many = split(7, big)  # more pieces than allowed: fewer, larger ones
    assert int(many.sum()) == 10**15 and len(many) == 1_000


@cache
def _run(managers: str = "") -> Result:
    return simulate(parse_scenario(BASE + managers, "s.yaml"),
                    Options(seed=6, scale=4e-4, keep_items=True))


def test_a_bank_that_keeps_a_buffer_uses_less_liquidity_and_waits_longer() -> None:
    base = _run()
    held = _run("cash_managers:\n  ICBC: {policy: buffer, buffer: 0.5}\n")
    assert held.summary["cash_managers"] == {"ICBC": "buffer"}
    mine, theirs = (r.summary["participant_metrics"]["ICBC"] for r in (held, base))
    assert mine["peak_liquidity_used_fen"] < theirs["peak_liquidity_used_fen"]
    assert mine["sent"]["HVPS"]["queue_time_s"] > theirs["sent"]["HVPS"]["queue_time_s"]
    costs, costs_base = held.summary["costs"]["banks"]["ICBC"], \
        base.summary["costs"]["banks"]["ICBC"]
    assert costs["delay_fen"] > costs_base["delay_fen"]
    assert costs["liquidity_fen"] < costs_base["liquidity_fen"]
    assert all(held.summary["checks"].values())


def test_a_bank_that_splits_sends_pieces_and_every_fen_of_them() -> None:
    done = _run('cash_managers:\n  ICBC: {policy: split, max: "2000000.00"}\n')
    items = [r for r in done.tables["items"].to_pylist()
             if r["sender"] == "ICBC" and r["system"] == "HVPS"]
    assert items and max(r["amount_fen"] for r in items) <= 200_000_000
    hv = done.summary["systems"]["HVPS"]
    assert sum(v["value_fen"] for v in hv["outcomes"].values()) == hv["generated_value_fen"]
    assert sum(v["items"] for v in hv["outcomes"].values()) > hv["generated_items"]


def test_costs_are_the_documented_rates_times_the_metrics() -> None:
    day = "2026-09-30T"
    tables = {
        "liquidity": pa.Table.from_pylist([
            {"bucket_start": f"{day}09:00:00+08:00", "participant": "A",
             "opening_balance_fen": 0, "min_balance_fen": 0, "end_balance_fen": 0,
             "liquidity_used_fen": 4_000_000, "credit_line_fen": 0,
             "credit_drawn_peak_fen": 0},
            {"bucket_start": f"{day}10:00:00+08:00", "participant": "A",
             "opening_balance_fen": 0, "min_balance_fen": 0, "end_balance_fen": 0,
             "liquidity_used_fen": 10_000_000, "credit_line_fen": 0,
             "credit_drawn_peak_fen": 0}], schema=SCHEMAS["liquidity"]),
        "queues": pa.Table.from_pylist([
            {"bucket_start": f"{day}09:00:00+08:00", "system": "HVPS", "participant": "A",
             "peak_items": 1, "peak_value_fen": 1, "end_items": 0, "end_value_fen": 0,
             "delayed_items": 1, "delayed_value_fen": 1_000_000,
             "queue_time_value_fen_s": 1_000_000 * 7_200.0}], schema=SCHEMAS["queues"]),
        "flows": pa.Table.from_pylist([
            {"bucket_start": f"{day}17:00:00+08:00", "system": "HVPS", "participant": "A",
             "outcome": "not_settled", "items": 1, "value_fen": 50_000_000}],
            schema=SCHEMAS["flows"]),
    }
    costs = bank_costs(CostRates(), 36_000, ["A", "B"], tables, {"A": 1_000_000})
    a = costs["banks"]["A"]
    assert a["liquidity_fen"] == 10_000_000 * 100 // 1_000_000  # the day's peak, 1 bp
    assert a["delay_fen"] == round(1_000_000 * 2 * 20 / 1_000_000)  # 2 hours at 20 ppm/h
    assert a["end_of_day_fen"] == 50_000_000 * 1_000 // 1_000_000
    assert a["overnight_fen"] == 1_000_000 * 36_000 // 1_000_000 // 360
    assert a["total_fen"] == sum(v for k, v in a.items() if k != "total_fen")
    assert costs["banks"]["B"]["total_fen"] == 0 and costs["total_fen"] == a["total_fen"]


@pytest.mark.parametrize(("block", "message"), [
    ("cash_managers:\n  XYZ: {policy: buffer}\n", "XYZ: not a listed participant"),
    ("cash_managers:\n  ICBC: {policy: hoard}\n", "policy must be one of immediate"),
    ("cash_managers:\n  ICBC: {policy: buffer, buffer: 2}\n", "buffer must be a decimal"),
    ("cash_managers:\n  ICBC: {policy: deadline, hold_minutes: -5}\n",
     "hold_minutes must be whole minutes"),
    ("cash_managers:\n  ICBC: {policy: split}\n", "missing required key 'max'"),
    ('cash_managers:\n  ICBC: {policy: split, max: "100.00"}\n',
     "max must be above the BEPS item limit"),
    ("cash_managers:\n  ICBC: {policy: immediate, buffer: 0.1}\n", "unknown key 'buffer'"),
    ("costs: {liquidity_rate: 1.5}\n", "liquidity_rate must be a decimal"),
    ("costs: {fee: 1}\n", "unknown key 'fee'"),
])
def test_a_bad_cash_manager_or_cost_block_names_its_line(block: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + block, "s.yaml")
    assert message in str(caught.value), str(caught.value)
    assert f"s.yaml:{BASE.count(chr(10)) + 1}" in str(caught.value) or \
        f"s.yaml:{BASE.count(chr(10)) + 2}" in str(caught.value)


def test_a_world_with_pledged_collateral_simulates_with_every_check_passing() -> None:
    """The bulk path draws pledge credit when a batch needs it (cnaps/rtgs_batch.py
    credit_needed): a world with collateral runs, books balanced, money conserved."""
    text = BASE.replace('{name: ICBC,  code: "102100000013"}',
                        '{name: ICBC,  code: "102100000013", collateral: "1000.00"}')
    summary = simulate(parse_scenario(text, "s.yaml"), Options(scale=1e-5)).summary
    assert summary["checks"] == {"books_balanced": True, "money_conserved": True,
                                 "mirrors_match": True, "suspense_explained": True}
