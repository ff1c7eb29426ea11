"""The simulator's metrics (sim/metrics.py) as an analyst reads them: the tables add up to
summary.json, queues and liquidity move the way a tighter day moves them, per-item rows
only when asked, and the Parquet files carry nothing but the data."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qingsuan.sim.scenario import Scenario, load_scenario
from qingsuan.sim.simulate import Options, Result, simulate

NATIONAL_DAY = Path(str(resources.files("qingsuan") / "scenarios" / "national-day.yaml"))
SCALE = 5e-4


def _with_liquidity(sc: Scenario, share: float) -> Scenario:
    assert sc.traffic is not None
    return dataclasses.replace(sc, traffic=dataclasses.replace(
        sc.traffic, settlement_liquidity=share))


@pytest.fixture(scope="module")
def tight() -> Result:
    """A business day where the banks hold 3% of their expected outflow: HVPS queues."""
    sc = _with_liquidity(load_scenario(NATIONAL_DAY), 0.03)
    return simulate(sc, Options(seed=3, scale=SCALE, keep_items=True))


@pytest.fixture(scope="module")
def ample() -> Result:
    sc = _with_liquidity(load_scenario(NATIONAL_DAY), 1.0)
    return simulate(sc, Options(seed=3, scale=SCALE))


def test_less_liquidity_means_queues_and_delay(tight: Result, ample: Result) -> None:
    """The classic result on the same traffic: a tighter day queues more value for longer
    and settles less of it by the cut-off."""
    hv_tight, hv_ample = tight.summary["systems"]["HVPS"], ample.summary["systems"]["HVPS"]
    assert hv_tight["generated_value_fen"] == hv_ample["generated_value_fen"]
    assert hv_tight["delayed_items"] > hv_ample["delayed_items"]
    assert hv_tight["queue_time_s"] > hv_ample["queue_time_s"]
    assert hv_tight["peak_queue_value_fen"] > 0
    assert hv_tight["credited_value_fen"] < hv_ample["credited_value_fen"]
    assert tight.tables["queues"].num_rows > 0
    assert all(tight.summary["checks"].values()) and all(ample.summary["checks"].values())


def test_queue_time_is_the_value_weighted_mean_of_the_items(tight: Result) -> None:
    items = tight.tables["items"].to_pylist()
    hv = [r for r in items if r["system"] == "HVPS" and r["outcome"] == "credited"]
    weighted = sum(r["amount_fen"] * r["queue_time_s"] for r in hv)
    value = sum(r["amount_fen"] for r in hv)
    assert tight.summary["systems"]["HVPS"]["queue_time_s"] == round(weighted / value, 3)
    queues = tight.tables["queues"].to_pylist()
    assert sum(r["delayed_value_fen"] for r in queues if r["system"] == "HVPS") == \
        tight.summary["systems"]["HVPS"]["delayed_value_fen"]
    # an item that waited settled after it arrived; one that did not, at once
    assert any(r["queue_time_s"] > 0 for r in hv)
    assert all(r["done"] >= r["arrival"] for r in items)


def test_every_item_has_one_final_row_and_the_flows_add_up(tight: Result) -> None:
    items = tight.tables["items"].to_pylist()
    flows = tight.tables["flows"].to_pylist()
    s = tight.summary
    assert len(items) == sum(x["generated_items"] for x in s["systems"].values())
    by_item: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in items:
        key = (r["system"], r["sender"], r["outcome"])
        by_item[key][0] += 1
        by_item[key][1] += r["amount_fen"]
    by_flow: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in flows:
        key = (r["system"], r["participant"], r["outcome"])
        by_flow[key][0] += r["items"]
        by_flow[key][1] += r["value_fen"]
    assert by_item == by_flow
    for name, p in s["participant_metrics"].items():
        for system, sent in p["sent"].items():
            for outcome, v in sent["outcomes"].items():
                assert by_flow[(system, name, outcome)] == [v["items"], v["value_fen"]]


def test_liquidity_used_is_within_what_each_bank_had(tight: Result) -> None:
    """Peak liquidity used (opening balance less the day's low) never exceeds the opening
    balance plus the pledge credit line, and summary.json holds the table's peak."""
    rows = tight.tables["liquidity"].to_pylist()
    peak: dict[str, int] = defaultdict(int)
    for r in rows:
        assert 0 <= r["liquidity_used_fen"] <= r["opening_balance_fen"] + r["credit_line_fen"]
        assert r["min_balance_fen"] <= r["end_balance_fen"]
        peak[r["participant"]] = max(peak[r["participant"]], r["liquidity_used_fen"])
    metrics = tight.summary["participant_metrics"]
    assert {k: v["peak_liquidity_used_fen"] for k, v in metrics.items()} == dict(peak)
    assert max(v["peak_liquidity_used_ppm"] for v in metrics.values()) > 500_000


def test_net_positions_stay_within_their_caps_and_transit_is_reported(tight: Result
                                                                      ) -> None:
    for r in tight.tables["positions"].to_pylist():
        assert r["min_position_fen"] >= -r["cap_fen"]
    transit = tight.tables["transit"].to_pylist()
    assert {r["system"] for r in transit} == {"BEPS", "IBPS"}
    for name in ("BEPS", "IBPS"):
        assert tight.summary["systems"][name]["peak_in_transit_fen"] == max(
            r["peak_fen"] for r in transit if r["system"] == name)


def test_parquet_files_hold_no_timestamps_and_a_fixed_schema(tight: Result,
                                                             tmp_path: Path) -> None:
    written = tight.write(tmp_path)
    for path in written:
        if path.suffix != ".parquet":
            continue
        meta = pq.read_metadata(path)
        assert set(meta.metadata or {}) == {b"ARROW:schema"}
        assert pq.read_table(path).equals(tight.tables[path.stem])
