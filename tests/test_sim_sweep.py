"""Sweeps (sim/sweep.py, simulate --sweep): the grid, the same answers whatever runs it
(in this process or on Dask workers), the classic trade-off, and the command."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.money import format_fen
from qingsuan.sim.simulate import Options
from qingsuan.sim.sweep import Axis, grid, parse_axis, run_sweep

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "scenarios" / "sim-stress.yaml"
TEXT = FILE.read_text(encoding="utf-8")
BASE = TEXT[:TEXT.index("\nstress:") + 1]  # the same day without its stress
OPTIONS = Options(seed=8, scale=2e-4)


def test_an_axis_is_read_from_start_stop_count_or_a_list() -> None:
    assert parse_axis("liquidity=0.1:0.5:5").values == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert parse_axis("buffer=0,0.25").values == (0.0, 0.25)
    points = grid([parse_axis("liquidity=0.1,0.2"), parse_axis("buffer=0,0.5")])
    assert points == [{"liquidity": 0.1, "buffer": 0.0}, {"liquidity": 0.1, "buffer": 0.5},
                      {"liquidity": 0.2, "buffer": 0.0}, {"liquidity": 0.2, "buffer": 0.5}]


@pytest.mark.parametrize(("text", "message"), [
    ("lsm=off,fast", "'fast' is not one of off, bilateral, multilateral, lsm"),
    ("speed=1,2", "unknown setting"),
    ("liquidity", "write NAME=START:STOP:COUNT"),
    ("liquidity=0.1:0.5:1", "COUNT from 2"),
    ("liquidity=0,0.5", "outside (0, 1000]"),
    ("buffer=0.5,2", "outside (0, 1]"),
])
def test_a_bad_axis_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--sweep") as caught:
        parse_axis(text)
    assert message in str(caught.value)


def test_more_liquidity_never_increases_the_value_weighted_delay() -> None:
    """The same traffic at growing opening balances: HVPS's delay index (value-weighted
    wait, the payments never settled counted until they were given back) and the value
    left unsettled never grow (the classic liquidity-delay trade-off). The queue time of
    the settled payments alone may: with very little liquidity only the quick ones
    settle."""
    axis = Axis("liquidity", (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5))
    rows = run_sweep(BASE, "s.yaml", OPTIONS, [axis], workers=0)
    delay = [r["hvps_delay_index_s"] for r in rows]
    unsettled = [r["hvps_not_settled_value_fen"] for r in rows]
    assert all(a >= b for a, b in itertools.pairwise(delay)), delay
    assert all(a >= b for a, b in itertools.pairwise(unsettled)), unsettled
    assert delay[0] > delay[-1] and all(r["checks"] for r in rows)
    # the same traffic: what arrives is the same at every point
    assert len({r["hvps_credited_value_fen"] + r["hvps_not_settled_value_fen"]
                for r in rows[-2:]}) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_the_same_answers_in_this_process_and_on_dask_workers(workers: int) -> None:
    axes = [Axis("liquidity", (0.05, 0.2)), Axis("buffer", (0.0, 0.3))]
    here = run_sweep(TEXT, "sim-stress.yaml", OPTIONS, axes, workers=0)
    on_dask = run_sweep(TEXT, "sim-stress.yaml", OPTIONS, axes, workers=workers)
    assert here == on_dask and len(here) == 4
    assert here[1]["buffer"] == 0.3 and here[1]["liquidity"] == 0.05
    assert len({r["hvps_delay_index_s"] for r in here}) == 4  # the points differ


def _cells(page: str) -> list[tuple[str, str, str]]:
    import re

    return re.findall(r'<td data-key="([^"]+)" data-kind="(\w+)">([^<]*)</td>', page)


def test_the_command_writes_the_sweep_and_its_curve(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = CliRunner().invoke(app, ["simulate", str(FILE), "--scale", "2e-4", "--seed", "8",
                                    "--sweep", "liquidity=0.05:0.3:3", "--workers", "0",
                                    "--out", str(out)], env={"COLUMNS": "150"})
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert [p["liquidity"] for p in doc["points"]] == [0.05, 0.175, 0.3]
    assert (out / "sweep.parquet").stat().st_size > 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 1 and "<figcaption>" in page
    cells = _cells(page)
    assert len(cells) == 3 * 9
    for key, kind, text in cells:
        value: Any = doc
        for part in key.split("."):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert text.replace(",", "") == (format_fen(value) if kind == "fen"
                                         else str(value)), key


def test_gridlock_resolution_never_settles_less_than_none_on_the_same_traffic() -> None:
    """The same traffic with little liquidity, without and with HVPS's gridlock resolution:
    each step settles something only when it runs, and resolution never leaves more value
    unsettled or settles less (the LSM shifts the liquidity-delay curve down)."""
    axes = [parse_axis("liquidity=0.03,0.1"), parse_axis("lsm=off,bilateral,multilateral")]
    assert axes[1].values == ("off", "bilateral", "multilateral")
    rows = run_sweep(BASE, "s.yaml", OPTIONS, axes, workers=0)
    assert [r["lsm"] for r in rows] == ["off", "bilateral", "multilateral"] * 2
    for at in (rows[:3], rows[3:]):
        off, bilateral, multilateral = at
        assert off["hvps_lsm_bilateral_value_fen"] == off["hvps_lsm_multilateral_value_fen"] == 0
        assert bilateral["hvps_lsm_multilateral_value_fen"] == 0
        for r in (bilateral, multilateral):
            assert r["hvps_credited_value_fen"] >= off["hvps_credited_value_fen"]
            assert r["hvps_not_settled_value_fen"] <= off["hvps_not_settled_value_fen"]
            assert r["checks"]
    low = rows[:3]
    assert low[2]["hvps_lsm_bilateral_value_fen"] + low[2]["hvps_lsm_multilateral_value_fen"] > 0


def test_the_command_sweeps_lsm_and_draws_a_line_per_choice(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = CliRunner().invoke(app, ["simulate", str(FILE), "--scale", "2e-4", "--seed", "8",
                                    "--sweep", "liquidity=0.05,0.3",
                                    "--sweep", "lsm=off,bilateral,multilateral",
                                    "--workers", "0", "--out", str(out)],
                              env={"COLUMNS": "150"})
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert doc["axes"][1] == {"name": "lsm", "values": ["off", "bilateral", "multilateral"]}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "lsm multilateral:" in page and 'data-kind="text">bilateral<' in page
