"""What HVPS's gridlock resolution settles in a simulation: reported per step in
summary.json, per participant, in lsm.parquet and in the report, all adding up."""

from __future__ import annotations

import re
from pathlib import Path

from qingsuan.sim.scenario import parse_scenario
from qingsuan.sim.simulate import Options, simulate

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "scenarios" / "sim-stress.yaml").read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]


def test_the_value_settled_by_each_step_adds_up_everywhere(tmp_path: Path) -> None:
    tight = BASE.replace("settlement_liquidity: 0.1 ", "settlement_liquidity: 0.03")
    assert tight != BASE
    result = simulate(parse_scenario(tight, "s.yaml"), Options(seed=8, scale=2e-4))
    hv = result.summary["systems"]["HVPS"]
    steps = hv["lsm"]
    assert set(steps) == {"bilateral", "multilateral"}
    settled = sum(s["value_fen"] for s in steps.values())
    assert settled > 0 and all(result.summary["checks"].values())
    assert hv["lsm_share_ppm"] == settled * 1_000_000 // hv["credited_value_fen"]
    rows = result.tables["lsm"].to_pylist()
    for step, figures in steps.items():
        mine = [r for r in rows if r["step"] == step]
        assert sum(r["items"] for r in mine) == figures["items"]
        assert sum(r["value_fen"] for r in mine) == figures["value_fen"]
        per_participant = sum(p["sent"].get("HVPS", {}).get("lsm", {}).get(step, {})
                              .get("value_fen", 0)
                              for p in result.summary["participant_metrics"].values())
        assert per_participant == figures["value_fen"]
    # settled by resolution is settled: within what HVPS credited
    assert settled <= hv["credited_value_fen"]
    result.write(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    keys = set(re.findall(r'data-key="(systems\.HVPS\.lsm[^"]*)"', page))
    assert keys == {"systems.HVPS.lsm.bilateral.items", "systems.HVPS.lsm.bilateral.value_fen",
                    "systems.HVPS.lsm.multilateral.items",
                    "systems.HVPS.lsm.multilateral.value_fen", "systems.HVPS.lsm_share_ppm"}
    assert (tmp_path / "lsm.parquet").stat().st_size > 0
