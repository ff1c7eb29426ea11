"""A holiday week (stress kind ``holiday``, sim/stress.py): National Day 2026 played over
nine days, with and without the block: what it does to the traffic and the reopening day,
and money conserved over the week."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import pytest

from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.simulate import Options, Result, simulate
from qingsuan.sim.stress import Holiday, day_factors

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "scenarios" / "sim-holiday-week.yaml").read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]
SCALE = 5e-5
HVPS_PER_DAY = 1_630_000


@cache
def _run(with_block: bool) -> Result:
    return simulate(parse_scenario(TEXT if with_block else BASE, "h.yaml"),
                    Options(days=9, seed=3, scale=SCALE, chunk_minutes=30))


def _business(day: dt.date) -> bool:
    return not dt.date(2026, 10, 1) <= day <= dt.date(2026, 10, 7) and day.weekday() < 5


def test_the_block_scales_the_week_and_defers_the_closed_weekdays() -> None:
    (block,) = parse_scenario(TEXT, "h.yaml").sim.stress
    assert block == Holiday(dt.date(2026, 10, 1), dt.date(2026, 10, 8), 400_000, 1_000_000,
                            block.line)
    assert block.closed_weekdays(_business) == 5  # Thu 1, Fri 2, Mon 5, Tue 6, Wed 7
    assert block.deferred_to(_business) == dt.date(2026, 10, 8)
    assert day_factors((block,), dt.date(2026, 10, 3), _business) == (0.4, 0.4)
    assert day_factors((block,), dt.date(2026, 10, 8), _business) == (1.0, 6.0)
    assert day_factors((block,), dt.date(2026, 9, 30), _business) == (1.0, 1.0)


def test_a_holiday_week_conserves_money_and_loads_the_reopening_day() -> None:
    """Without the block the calendar alone closes HVPS for the week (no HVPS traffic, no
    net session: BEPS and IBPS positions wait for the 8th). With it, the week carries 40%
    of the retail traffic and the 8th carries six days of HVPS payments: its queue peaks
    far higher. Every check holds over the nine days either way."""
    base, week = _run(False), _run(True)
    for r in (base, week):
        assert all(r.summary["checks"].values()), r.summary["checks"]
        sessions = [x["at"][:10] for s in ("BEPS", "IBPS")
                    for x in r.summary["net_sessions"][s]]
        assert set(sessions) == {"2026-09-30", "2026-10-08"}  # nothing settles in between
    assert week.summary["holidays"] == [{
        "from": "2026-10-01", "until": "2026-10-08", "traffic_ppm": 400_000,
        "deferred_ppm": 1_000_000, "closed_weekdays": 5, "deferred_to": "2026-10-08"}]
    assert "holidays" not in base.summary
    hv_base = base.summary["systems"]["HVPS"]
    hv_week = week.summary["systems"]["HVPS"]
    one_day = round(HVPS_PER_DAY * SCALE)
    assert hv_base["generated_items"] == 2 * one_day
    assert hv_week["generated_items"] == one_day + round(6 * HVPS_PER_DAY * SCALE)
    assert hv_week["peak_queue_value_fen"] > 2 * hv_base["peak_queue_value_fen"]
    for name in ("BEPS", "IBPS"):  # 2 ordinary days and 7 at 40%: 4.8 of 9
        share = (week.summary["systems"][name]["generated_items"]
                 / base.summary["systems"][name]["generated_items"])
        assert share == pytest.approx(4.8 / 9, abs=0.02), (name, share)


@pytest.mark.parametrize(("block", "message"), [
    ("  - {kind: holiday, from: 2026-10-08, until: 2026-10-01}\n",
     "until must be after from, at most 31 days on"),
    ("  - {kind: holiday, from: 2026-10-01, until: 2026-12-01}\n", "at most 31 days"),
    ("  - {kind: holiday, from: 2026-10-01T10:00, until: 2026-10-08}\n",
     "from must be a date like 2026-10-01"),
    ("  - {kind: holiday, from: 2026-10-01, until: 2026-10-08, traffic: 200}\n",
     "traffic must be a decimal from 0 and at most 100"),
    ("  - {kind: holiday, from: 2026-10-01, until: 2026-10-08, deferred: 1.5}\n",
     "deferred must be a decimal from 0 and at most 1"),
    ("  - {kind: holiday, from: 2026-10-01, until: 2026-10-08, shops: closed}\n",
     "unknown key 'shops'"),
])
def test_a_bad_holiday_block_names_its_line(block: str, message: str) -> None:
    line = BASE.count("\n") + 2
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + "stress:\n" + block, "h.yaml")
    assert message in str(caught.value) and f"h.yaml:{line}" in str(caught.value), \
        str(caught.value)
