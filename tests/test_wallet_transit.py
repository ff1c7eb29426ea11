"""The transit code (乘车码): rides authorised offline at the gate within a per-ride and a
per-day limit, cleared the next day in a batch through the switch; a ride the issuer
declines is the rider's debt, retried at each later batch, and the gates refuse the rider
until it is paid. Every run: money conserved, books balanced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_wallet import ALICE_CARD, BASE, CAROL_CARD, code, rec, wallet

from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import parse_scenario

ALICE, CAROL = "13800000001", "13800000003"
GATE = "POS00002"  # the mall's terminal stands for a metro gate


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def at(when: str, do: str, **fields: str) -> str:
    body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items())
    return f"  - {{at: 2026-11-{when}, do: {do}, {body}}}\n"


def ride(when: str, rid: str, fare: str, user: str = ALICE, card: str = ALICE_CARD) -> str:
    return at(when, "transit_ride", id=rid, user=user, card=card, terminal=GATE,
              amount=fare)


def run(events: str, params: str = "{}") -> dict[str, Any]:
    """The test world of tests/test_wallet.py, run two days longer (the batches settle)."""
    text = BASE.replace("{PARAMS}", params).replace("{BUDGET}", "100.00").replace(
        "{PER_USER}", "1").replace("run_until: 2026-11-26T12:00", "run_until: 2026-11-28T12:00")
    out = run_scenario(parse_scenario(text + events, "w.yaml"), store="memory:")
    assert all(out["checks"].values()), out["checks"]
    return out


def test_rides_pass_offline_and_clear_the_next_day_through_the_switch() -> None:
    # no event sends a batch but the one asked for the same evening: the gates' acquirer
    # sends one each morning at wallets.transit_clearing_time (08:00) by itself
    out = run(ride("25T08:40", "r1", "5.00") + ride("25T18:10", "r2", "6.00")
              + at("25T20:00", "transit_clearing", id="same-day")
              + ride("26T07:50", "r3", "4.00"))
    assert [rec(out, k)["status"] for k in ("r1", "r2", "r3")] == ["authorised"] * 3
    # nothing reached the switch at the gate: no card record for a ride until the batch
    assert code(out, "same-day") == "NO_RIDES"
    batch = rec(out, "transit_clearing:2026-11-26")
    assert batch["at"] == "2026-11-26T08:00:00+08:00"
    assert batch["cleared"] == ["r1", "r2"] and batch["amount"] == "11.00"
    assert batch["declined"] == []
    assert out["payments"]["r1"]["kind"] == "transit_ride"
    assert out["payments"]["r1"]["status"] == "settled"  # cut-off on the 26th, HVPS the 27th
    # the day's ride waited for the next morning's batch (cleared at the switch's cut-off,
    # settled on the next business day: Monday the 30th)
    assert rec(out, "transit_clearing:2026-11-27")["cleared"] == ["r3"]
    assert out["payments"]["r3"]["status"] == "cleared"
    assert "transit_clearing:2026-11-28" not in out["wallets"]["records"]  # nothing left
    customers = out["balances"]["customers"]
    assert customers["alice"] == "4985.00"  # all three rides paid
    # less each ride's 0.50% MDR: 0.03 (0.025) + 0.03 + 0.02
    assert customers["mall"] == "14.92"


def test_the_gate_refuses_by_reason_and_books_nothing() -> None:
    out = run(ride("25T08:40", "r1", "5.00")
              + ride("25T08:50", "dear", "20.01")
              + ride("25T09:00", "r2", "5.00")
              + ride("25T09:10", "over", "2.01")
              + ride("25T09:20", "bob", "3.00", user="13800000002", card=ALICE_CARD)
              + ride("26T08:00", "next-day", "2.01"),
              params='{"wallets.transit_daily_limit": "12.00"}')
    assert code(out, "dear") == "RIDE_LIMIT"
    assert code(out, "over") == "DAILY_LIMIT"
    assert code(out, "bob") == "NOT_BOUND"
    assert rec(out, "next-day")["status"] == "authorised"  # a new day, a new limit
    # the refused rides were never sent: the batches collected r1, r2 and next-day only
    assert rec(out, "transit_clearing:2026-11-26")["cleared"] == ["r1", "r2"]
    assert rec(out, "transit_clearing:2026-11-27")["cleared"] == ["next-day"]
    assert out["balances"]["customers"]["alice"] == "4987.99"


def test_a_declined_ride_is_a_debt_the_next_batch_collects() -> None:
    # Carol rides, then moves nearly all her account into her wallet: the batch finds
    # her card short (51); the gates refuse her until a later batch collects the fare
    out = run(ride("25T08:40", "r1", "15.00", user=CAROL, card=CAROL_CARD)
              + at("25T09:00", "wallet_top_up", id="up", user=CAROL, card=CAROL_CARD,
                   amount="290.00")
              + at("26T08:00", "transit_clearing", id="b1")
              + ride("26T08:30", "r2", "3.00", user=CAROL, card=CAROL_CARD)
              + at("26T09:00", "wallet_withdrawal", id="back", user=CAROL, card=CAROL_CARD,
                   amount="100.00")
              + at("27T08:00", "transit_clearing", id="b2")
              + ride("27T08:30", "r3", "3.00", user=CAROL, card=CAROL_CARD))
    assert rec(out, "b1")["cleared"] == []
    assert rec(out, "b1")["declined"][0]["ride"] == "r1"
    assert rec(out, "b1")["declined"][0]["response_code"] == "51"
    assert out["payments"]["r1"]["status"] == "declined"
    assert code(out, "r2") == "TRANSIT_DEBT"
    assert rec(out, "b2")["cleared"] == ["r1"]
    assert out["payments"]["r1.retry1"]["status"] == "settled"
    assert rec(out, "r3")["status"] == "authorised"
    # the morning after, the batch (by itself: no event) collects r3 too
    assert rec(out, "transit_clearing:2026-11-28")["cleared"] == ["r3"]
    assert out["balances"]["customers"]["carol"] == "92.00"  # 300 - 290 + 100 - 15 - 3
    assert wallet(out, CAROL) == "190.00"


def test_a_world_loaded_from_its_state_still_knows_the_rider_s_rides() -> None:
    from qingsuan.sim.runner import Runner

    text = BASE.replace("{PARAMS}", "{}").replace("{BUDGET}", "100.00").replace(
        "{PER_USER}", "1")
    runner = Runner(parse_scenario(text + ride("25T08:40", "r1", "5.00")
                                   + ride("25T08:50", "r2", "6.00"), "w.yaml"),
                    store="memory:")
    runner.run()
    w = runner.world.wallets
    assert w is not None and w.rides_of == {ALICE: ["r1", "r2"]}
    w.load_state(w.dump_state())
    assert w.rides_of == {ALICE: ["r1", "r2"]} and w.rides["r2"].fare_fen == 600
    runner.close()
