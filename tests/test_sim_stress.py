"""Stress blocks (sim/stress.py, sim/sim_blocks.py): each one's effect on the same traffic,
and a bad block refused with its line."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.simulate import Options, Result, simulate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "scenarios" / "sim-stress.yaml").read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]
OUTAGE = ("  - {kind: outage, participant: CCB, from: 2026-09-30T10:00, "
          "until: 2026-09-30T13:00}\n")
SQUEEZE = "  - {kind: squeeze, share: 0.5, of: balances}\n"
MAINTENANCE = ("  - {kind: maintenance, system: BEPS, from: 2026-09-30T12:00, "
               "until: 2026-09-30T12:30}\n")
SCALE = 4e-4
BEIJING = ZoneInfo("Asia/Shanghai")


@cache
def _run(*blocks: str) -> Result:
    text = BASE + ("stress:\n" + "".join(blocks) if blocks else "")
    return simulate(parse_scenario(text, "s.yaml"), Options(seed=5, scale=SCALE,
                                                             keep_items=True))


def _hm(at: datetime) -> str:
    """An items.parquet time as 'THH:MM', Beijing time."""
    return at.astimezone(BEIJING).strftime("T%H:%M")


def _others_hvps_delay(r: Result, but: str) -> int:
    return sum(p["sent"].get("HVPS", {}).get("delayed_value_fen", 0)
               for name, p in r.summary["participant_metrics"].items() if name != but)


def test_the_file_is_read_with_its_three_blocks() -> None:
    sc = parse_scenario(TEXT, "sim-stress.yaml")
    kinds = [type(b).__name__ for b in sc.sim.stress]
    assert kinds == ["Outage", "Squeeze", "Maintenance"]


def test_an_outage_holds_the_participants_payments_and_drains_the_others() -> None:
    """CCB down 10:00-13:00: nothing of CCB's settles then, its payments wait until 13:00,
    the others keep paying it (its balance rises: a liquidity sink) and wait longer for
    their own payments."""
    base, out = _run(), _run(OUTAGE)
    assert out.summary["checks"] == base.summary["checks"] and all(out.summary["checks"]
                                                                   .values())
    ccb = [r for r in out.tables["items"].to_pylist() if r["sender"] == "CCB"]
    during = [r for r in ccb if "T10:00" <= _hm(r["arrival"]) < "T13:00"]
    assert during and all(_hm(r["done"]) >= "T13:00" for r in during)
    assert all(r["queue_time_s"] > 0 for r in during if r["outcome"] == "credited")
    assert not any("T10:00" <= _hm(r["done"]) < "T13:00" for r in ccb)
    rows = out.tables["liquidity"].to_pylist()
    noon = next(r for r in rows if r["participant"] == "CCB" and r["bucket_start"][11:16]
                == "12:00")
    assert noon["end_balance_fen"] > noon["opening_balance_fen"]  # what it receives stays
    assert _others_hvps_delay(out, "CCB") > _others_hvps_delay(base, "CCB")


def test_a_squeeze_cuts_the_opening_balances_and_queues_grow() -> None:
    base, cut = _run(), _run(SQUEEZE)
    opening = {r["participant"]: r["opening_balance_fen"]
               for r in base.tables["liquidity"].to_pylist()}
    squeezed = {r["participant"]: r["opening_balance_fen"]
                for r in cut.tables["liquidity"].to_pylist()}
    assert squeezed == {k: v - v * 500_000 // 1_000_000 for k, v in opening.items()}
    hv, hv_base = cut.summary["systems"]["HVPS"], base.summary["systems"]["HVPS"]
    assert hv["queue_time_s"] > hv_base["queue_time_s"]
    assert hv["delayed_value_fen"] > hv_base["delayed_value_fen"]


def test_a_maintenance_window_holds_the_systems_transfers_until_it_ends() -> None:
    base, held = _run(), _run(MAINTENANCE)
    beps = [r for r in held.tables["items"].to_pylist() if r["system"] == "BEPS"]
    assert not any("T12:00" <= _hm(r["done"]) < "T12:30" for r in beps)
    waited = [r for r in beps if "T12:00" <= _hm(r["arrival"]) < "T12:30"]
    assert waited and all(_hm(r["done"]) == "T12:30" and r["queue_time_s"] > 0
                          for r in waited)
    assert held.summary["systems"]["BEPS"]["delayed_items"] >= len(waited) > \
        base.summary["systems"]["BEPS"]["delayed_items"]
    # nothing is lost: every BEPS item still settles
    assert held.summary["systems"]["BEPS"]["credited_value_fen"] == \
        base.summary["systems"]["BEPS"]["credited_value_fen"]


@pytest.mark.parametrize(("block", "message"), [
    ("  - {kind: fire}\n", "kind must be one of outage, squeeze, maintenance"),
    ("  - {kind: outage, participant: XYZ, from: 2026-09-30T10:00, "
     "until: 2026-09-30T11:00}\n", "participant 'XYZ' is not listed"),
    ("  - {kind: outage, participant: CCB, from: 2026-09-30T10:00, "
     "until: 2026-09-30T09:00}\n", "until must be after from"),
    ("  - {kind: outage, participant: CCB, from: tomorrow, until: 2026-09-30T09:00}\n",
     "from must be a date-time"),
    ("  - {kind: squeeze, share: 1.5}\n", "share must be a decimal above 0 and at most 1"),
    ("  - {kind: squeeze, share: 0.5, of: everything}\n", "of must be balances"),
    ("  - {kind: squeeze, share: 0.5, participants: [NOPE]}\n",
     "participants must be a list of listed participants"),
    ("  - {kind: maintenance, system: CIPS, from: 2026-09-30T10:00, "
     "until: 2026-09-30T11:00}\n", "system must be HVPS, BEPS or IBPS"),
    ("  - {kind: outage, participant: CCB, from: 2026-09-30T10:00, "
     "until: 2026-09-30T11:00, why: fire}\n", "unknown key 'why'"),
])
def test_a_bad_stress_block_names_its_line(block: str, message: str) -> None:
    line = BASE.count("\n") + 2
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(BASE + "stress:\n" + block, "s.yaml")
    assert message in str(caught.value) and f"s.yaml:{line}" in str(caught.value), \
        str(caught.value)
