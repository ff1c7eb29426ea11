"""The wallets' own moments (wallets/wake.py), in a world where no event comes after the
first day: the issuer's statement run on the statement day and the interest at the next
one, the gates' batch the next morning, a campaign's close at the end of its window. Each
is a logged tick at its time; a world stopped in between and resumed from its store ends
in the same state (hash) as one run straight through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_wallet import ALICE_CARD, BASE, BOB_CARD, rec

from qingsuan.clock import format_time
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import parse_scenario

CREDIT_CARD = "6228480000000005124"  # ABC, Alice's credit card
ALICE = "13800000001"

CREDIT = f"""
  - {{id: alice-cc, bank: ABC, account: "6228480000000000512", credit_limit: "20000.00",
      name: "Alice Wang"}}
cards:
  - {{pan: "{CREDIT_CARD}", account: alice-cc, kind: credit}}"""


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def scenario(until: str, params: str = "{}") -> Any:
    """The test world with Alice's credit card: she binds it, pays 600.00 with it on the
    25th, claims a voucher, rides the metro; then nothing happens until ``until``."""
    text = BASE.replace("{PARAMS}", params).replace("{BUDGET}", "100.00").replace(
        "{PER_USER}", "1").replace("run_until: 2026-11-26T12:00", f"run_until: {until}")
    text = text.replace("\ncards:", CREDIT, 1)
    events = "".join(f"  - {{at: 2026-11-25T{at}, do: {do}, {body}}}\n" for at, do, body in (
        ("08:40", "bind_card", f'id: b-cc, user: "{ALICE}", card: "{CREDIT_CARD}", '
                               'name: "Alice Wang"'),
        ("09:00", "claim_voucher", 'id: v, user: "13800000002", campaign: spring'),
        ("10:00", "qr_pay", f'id: dinner, user: "{ALICE}", card: "{CREDIT_CARD}", '
                            'terminal: POS00001, amount: "600.00"'),
        ("21:30", "transit_ride", f'id: ride, user: "{ALICE}", card: "{ALICE_CARD}", '
                                  'terminal: POS00002, amount: "4.00"')))
    assert BOB_CARD in text
    return parse_scenario(text + events, "wake.yaml")


def run(until: str, params: str = "{}") -> dict[str, Any]:
    out = run_scenario(scenario(until, params), store="memory:")
    assert all(out["checks"].values()), out["checks"]
    return out


def test_a_credit_card_gets_its_statement_and_interest_with_no_event() -> None:
    # statement day the 27th (credit.statement_day), due 2 days later; unpaid, the next
    # statement a month on charges 600.00 x 0.05% x 28 days = 8.40
    out = run("2026-12-27T12:00", '{"credit.statement_day": 27, "credit.due_days": 2}')
    statements = out["wallets"]["statements"]["622848*********5124"]
    assert [(s["at"], s["owed"], s["minimum"], s["due"], s["interest"]) for s in statements] \
        == [("2026-11-27T00:00:00+08:00", "600.00", "60.00", "2026-11-29T00:00:00+08:00",
             "0.00"),
            ("2026-12-27T00:00:00+08:00", "608.40", "60.84", "2026-12-29T00:00:00+08:00",
             "8.40")]
    assert out["balances"]["customers"]["alice-cc"] == "-608.40"
    # only the card that owes something: Alice's debit card gets no statement
    assert list(out["wallets"]["statements"]) == ["622848*********5124"]


def test_the_gates_batch_and_the_campaign_s_close_come_by_themselves() -> None:
    out = run("2026-11-26T12:00")
    batch = rec(out, "transit_clearing:2026-11-26")
    assert (batch["at"], batch["cleared"]) == ("2026-11-26T08:00:00+08:00", ["ride"])
    close = rec(out, "close:spring")
    assert (close["at"], close["expired"], close["returned"]) == \
        ("2026-11-25T20:00:01+08:00", 1, "100.00")
    assert out["balances"]["customers"]["city"] == "1000.00"


def test_the_next_wake_up_is_the_wallets_own_moment() -> None:
    runner = Runner(scenario("2026-11-25T10:30"), store="memory:")
    runner.run()
    wallets = runner.world.wallets
    assert wallets is not None
    # the campaign's close comes first (the ride is still to come, the statement run is
    # on the 1st), and the banks' wake-up (the world's one rule) holds it
    due = wallets.next_due_us(runner.engine.now_us)
    assert due is not None and format_time(due) == "2026-11-25T20:00:01+08:00"
    assert runner.world.banks._state_due_us(runner.engine.now_us) == due


@pytest.mark.parametrize("stop", ["2026-11-25T20:00", "2026-11-26T07:59",
                                  "2026-12-01T12:00"])
def test_a_world_stopped_and_resumed_from_its_store_ends_the_same(
        tmp_path: Path, stop: str) -> None:
    straight = run("2026-12-27T12:00")
    store = str(tmp_path / "w.db")
    first = run_scenario(scenario(stop), store=store)
    assert first["log"]["state_hash"] != straight["log"]["state_hash"]
    resumed = run_scenario(scenario("2026-12-27T12:00"), store=store)
    assert resumed["log"] == straight["log"]
    assert resumed["wallets"] == straight["wallets"]
