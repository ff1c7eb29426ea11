"""qingsuan simulate (sim/simulate.py, cli_simulate.py): generated days through the world's
bulk path; deterministic output, every check holding, the command end to end."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.sim.scenario import Scenario, load_scenario
from qingsuan.sim.simulate import Options, simulate

NATIONAL_DAY = Path(str(resources.files("qingsuan") / "scenarios" / "national-day.yaml"))
TINY = 2e-5


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(NATIONAL_DAY)


def _summary_bytes(sc: Scenario, tmp: Path, seed: int) -> bytes:
    written = simulate(sc, Options(seed=seed, scale=TINY, keep_items=True)).write(tmp)
    assert {p.name for p in written} >= {"summary.json", "flows.parquet", "items.parquet"}
    return b"".join(p.read_bytes() for p in written)


def test_same_seed_same_bytes_another_seed_other_bytes(scenario: Scenario,
                                                       tmp_path: Path) -> None:
    first = _summary_bytes(scenario, tmp_path / "a", 11)
    assert first == _summary_bytes(scenario, tmp_path / "b", 11)
    assert first != _summary_bytes(scenario, tmp_path / "c", 12)


def test_a_business_day_and_a_holiday_conserve_money_and_reconcile(scenario: Scenario
                                                                  ) -> None:
    """30 September (business day) and 1 October (National Day: HVPS closed): every check
    holds, every generated transfer has an outcome, the net positions of the holiday wait
    for the next business day, and the flows table adds up to the totals."""
    result = simulate(scenario, Options(days=2, seed=1, scale=TINY))
    s = result.summary
    assert s["checks"] == {"books_balanced": True, "money_conserved": True,
                           "mirrors_match": True, "suspense_explained": True}
    total = 0
    flows = result.tables["flows"].to_pylist()
    for name, sysm in s["systems"].items():
        outcomes = sysm["outcomes"]
        assert sum(v["items"] for v in outcomes.values()) == sysm["generated_items"], name
        assert sum(v["value_fen"] for v in outcomes.values()) == sysm["generated_value_fen"]
        assert sysm["outcomes"].get("credited", {}).get("items", 0) > 0, name
        total += sysm["generated_items"]
        rows = [r for r in flows if r["system"] == name]
        assert sum(r["items"] for r in rows) == sysm["generated_items"]
        assert sum(r["value_fen"] for r in rows) == sysm["generated_value_fen"]
    assert result.items == total
    # HVPS only on the business day; BEPS and IBPS on both
    hvps_days = {r["bucket_start"][:10] for r in flows if r["system"] == "HVPS"}
    ibps_days = {r["bucket_start"][:10] for r in flows if r["system"] == "IBPS"}
    assert hvps_days == {"2026-09-30"} and ibps_days == {"2026-09-30", "2026-10-01"}
    for name in ("BEPS", "IBPS"):
        sessions = s["net_sessions"][name]
        assert sessions and all(x["at"].startswith("2026-09-30") for x in sessions)
        assert all(sum(x["positions_fen"].values()) == 0 for x in sessions)
        assert any(s["open_net_positions_fen"][name].values())  # the holiday's, carried


def test_generated_customers_and_balances_are_sized_from_the_block(scenario: Scenario
                                                                  ) -> None:
    result = simulate(scenario, Options(seed=2, scale=TINY))
    assert result.summary["customers"] == 2 + 9 * 50  # listed + 50 per participant


def test_the_command_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["simulate", str(NATIONAL_DAY), "--scale", str(TINY),
                                    "--seed", "5", "--out", str(out), "--days", "2"],
                              env={"COLUMNS": "120"})
    assert done.exit_code == 0, done.output
    assert "books_balanced yes" in done.stdout and "items/s" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 5 and summary["days"] == 2 and summary["scale"] == TINY
    flows = pq.read_table(out / "flows.parquet")
    assert flows.num_rows and flows.column_names == ["bucket_start", "system", "participant",
                                                     "outcome", "reason", "items",
                                                     "value_fen"]
    assert summary["reasons"]["no_funds"] == "AM04"
    assert {r["reason"] for r in flows.to_pylist() if r["outcome"] == "no_funds"} <= {"AM04"}
    assert not (out / "items.parquet").exists()  # per item only with --keep-items


@pytest.mark.parametrize(("args", "message"), [
    (["--days", "0"], "days must be from 1"),
    (["--scale", "0"], "scale must be above 0"),
    (["--bucket-minutes", "7"], "must divide a day"),
])
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = CliRunner().invoke(app, ["simulate", str(NATIONAL_DAY), *args])
    assert done.exit_code == 2 and message in done.output, done.output


def test_a_file_without_traffic_is_refused() -> None:
    intrabank = NATIONAL_DAY.parent / "intrabank.yaml"
    done = CliRunner().invoke(app, ["simulate", str(intrabank)])
    assert done.exit_code == 2 and "no traffic: block" in done.output


def test_the_national_day_week_conserves_money_and_settles_the_holiday_on_its_return(
        scenario: Scenario) -> None:
    """30 September to 8 October 2026: the Golden Week (HVPS closed 1-7 October). Every
    check holds, every transfer has one final outcome, HVPS traffic only on the two
    business days, and the holiday's BEPS and IBPS positions settle at 8 October's first
    session, the largest of that day. (At this tiny scale a draw can leave PAYCO, the
    smallest participant, with a week of net debits beyond its settlement balance: its
    IBPS session then waits, as in CNAPS; this seed's week fits.)"""
    result = simulate(scenario, Options(days=9, seed=6, scale=TINY))
    s = result.summary
    assert all(s["checks"].values()), s["checks"]
    for name, sysm in s["systems"].items():
        assert sum(v["items"] for v in sysm["outcomes"].values()) == \
            sysm["generated_items"], name
    flows = result.tables["flows"].to_pylist()
    assert {r["bucket_start"][:10] for r in flows if r["system"] == "HVPS"} == \
        {"2026-09-30", "2026-10-08"}
    assert len({r["bucket_start"][:10] for r in flows if r["system"] == "IBPS"}) == 9
    for name in ("BEPS", "IBPS"):
        sessions = s["net_sessions"][name]
        assert {x["at"][:10] for x in sessions} == {"2026-09-30", "2026-10-08"}
        assert all(x["status"] == "settled" for x in sessions)
        back = [x for x in sessions if x["at"].startswith("2026-10-08")]
        assert back[0]["gross_debits_fen"] == max(x["gross_debits_fen"] for x in back)


def test_the_output_does_not_depend_on_how_far_ahead_the_day_is_generated(
        scenario: Scenario, tmp_path: Path) -> None:
    """Generated window by window (memory stays with the windows): 5 minutes ahead or the
    whole day at once, the same summary.json and Parquet files, byte for byte."""
    def written(ahead: int, out: Path) -> dict[str, bytes]:
        paths = simulate(scenario, Options(seed=3, scale=TINY, keep_items=True,
                                           generate_minutes=ahead)).write(out, report=False)
        return {p.name: p.read_bytes() for p in paths}

    near, whole = written(5, tmp_path / "near"), written(1_440, tmp_path / "whole")
    assert set(near) >= {"summary.json", "flows.parquet", "items.parquet"}
    assert near == whole


def test_the_traffic_does_not_depend_on_the_window_played(scenario: Scenario) -> None:
    """Windows of 5 or 30 minutes batch the transfers differently (queue times are
    measured per window), but the transfers generated are the same."""
    def traffic(chunk: int) -> list[tuple[object, ...]]:
        items = simulate(scenario, Options(seed=4, scale=TINY, keep_items=True,
                                           chunk_minutes=chunk)).tables["items"]
        cols = ("arrival", "system", "payer", "payee", "amount_fen")
        return sorted(zip(*(items.column(c).to_pylist() for c in cols), strict=True))

    assert traffic(5) == traffic(30)
