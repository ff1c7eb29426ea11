"""Card traffic played by qingsuan simulate (a ``cards`` system in ``traffic:``): through
the switch's batch entry, cleared at the cut-off and settled in HVPS the next business
morning; metrics that add up, the same bytes for the same seed, and a checked block."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from qingsuan.money import format_fen
from qingsuan.sim.scenario import ScenarioError, parse_scenario
from qingsuan.sim.simulate import Options, simulate

WORLD = """
name: card-day
start: 2026-11-25T00:00
run_until: 2026-11-26T23:59
calendar: cn
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}
  - {name: BOC,  code: "104100000012", settlement_balance: "1000000.00"}
  - {name: PAYCO, code: "Z2000000001X", kind: payment_institution}
traffic:
  customers_per_bank: 20
  customer_liquidity: %s
  systems:
    cards: {items_per_day: 3000, value_per_day: "2000000.00", credit_share: 0.4,
            mdr: 0.006}
"""


def _run(tmp: Path, liquidity: str = "1.0", seed: int = 3, *, report: bool = False
         ) -> dict[str, Any]:
    sc = parse_scenario(WORLD % liquidity, "card-day.yaml")
    simulate(sc, Options(days=2, seed=seed)).write(tmp, report=report)
    return json.loads((tmp / "summary.json").read_text())


def test_a_card_day_is_approved_cleared_and_settled(tmp_path: Path) -> None:
    """Every generated transaction has an outcome (approved or 51, the lean customers run
    short); the first day's positions are settled the next morning at 09:00 in HVPS and
    sum to zero with the switch's fees; per participant the fees add up; every check."""
    s = _run(tmp_path, "0.3")
    cards = s["cards"]
    assert cards["generated_items"] == 6000  # two days of 3,000
    outcomes = cards["outcomes"]
    assert set(outcomes) == {"approved", "no_funds"}
    assert sum(o["items"] for o in outcomes.values()) == 6000
    assert sum(o["value_fen"] for o in outcomes.values()) == cards["generated_value_fen"]
    assert cards["approved_value_fen"] == outcomes["approved"]["value_fen"]
    assert cards["clearing_days"] == ["2026-11-25", "2026-11-26"]
    settled = [x for x in cards["settlements"] if x["status"] == "settled"]
    assert settled and settled[0]["at"].startswith("2026-11-26T09:00")
    assert sum(settled[0]["positions_fen"].values()) == 0
    people = cards["participants"]
    assert "PAYCO" not in people  # a payment institution takes no card business
    assert people["CUPS"]["cleared"]["position_fen"] > 0  # the network fees
    assert sum(p["cleared"]["position_fen"] for p in people.values()) == 0
    assert sum(p["cleared"]["fees_paid_fen"] for p in people.values()) == \
        sum(p["cleared"]["fees_received_fen"] for p in people.values())
    assert sum(p["acquirer"]["approved_value_fen"] for n, p in people.items()
               if n != "CUPS") == cards["approved_value_fen"]
    assert all(p["cleared"]["mdr_fen"] > 0 for n, p in people.items() if n != "CUPS")
    assert all(s["checks"].values())


def test_the_cards_table_and_the_report_add_up_to_the_summary(tmp_path: Path) -> None:
    """cards.parquet's rows sum to the summary; the report's card figures are the
    summary's (each printed with its key)."""
    s = _run(tmp_path, report=True)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'alt="Card purchases over the day' in page  # the plot, with its reading:
    assert f"{s['cards']['approved_value_fen'] * 100 // s['cards']['generated_value_fen']}% " \
        "of the value generated was approved" in page
    cells = re.findall(r'<td data-key="(cards\.[^"]+)" data-kind="(\w+)">([^<]*)</td>',
                       (tmp_path / "report.html").read_text(encoding="utf-8"))
    assert len(cells) == 5 + 3 * 6 + 3  # the outcomes, three banks and the switch
    for key, kind, text in cells:
        value: Any = s
        for part in key.split("."):
            value = value[part]
        assert text.replace(",", "") == (format_fen(value) if kind == "fen" else str(value))
    rows = pq.read_table(tmp_path / "cards.parquet").to_pylist()
    issued = [r for r in rows if r["role"] == "issuer"]
    assert sum(r["items"] for r in issued) == s["cards"]["generated_items"]
    assert sum(r["value_fen"] for r in issued if r["response_code"] == "00") == \
        s["cards"]["approved_value_fen"]
    assert {r["participant"] for r in rows} == {"ICBC", "CCB", "BOC"}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def files(folder: Path, seed: int) -> bytes:
        _run(folder, seed=seed)
        return b"".join((folder / n).read_bytes() for n in ("summary.json", "cards.parquet"))

    first = files(tmp_path / "a", 5)
    assert first == files(tmp_path / "b", 5)
    assert first != files(tmp_path / "c", 6)


@pytest.mark.parametrize(("cards", "message"), [
    ("{items_per_day: 0}", "traffic: cards: items_per_day must be a whole number above 0"),
    ("{mdr: 2}", "traffic: cards: mdr must be a decimal from 0 and at most 1"),
    ("{credit_share: -0.1}", "traffic: cards: credit_share must be a decimal"),
    ("{sigma: 9}", "traffic: cards: sigma must be a number above 0 and at most 4"),
    ("{colour: red}", "colour"),
])
def test_a_bad_cards_block_names_its_line(cards: str, message: str) -> None:
    text = WORLD.replace(
        '{items_per_day: 3000, value_per_day: "2000000.00", credit_share: 0.4,\n'
        '            mdr: 0.006}', cards) % "1.0"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "card-day.yaml")
    assert message in str(info.value) and "card-day.yaml:" in str(info.value)
