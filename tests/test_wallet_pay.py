"""Paying a merchant from the wallet's balance (余额支付) and a campaign's end (活动结束:
the unused budget goes back to the sponsor): money conserved, books balanced, the reserve
covering the wallets (every run's checks), refusals by reason code."""

from __future__ import annotations

import pytest
from test_wallet import ALICE_CARD, BOB_CARD, code, ev, rec, run, wallet

TOP_UP = ev("09:00", "wallet_top_up", id="up", user="13800000001", card=ALICE_CARD,
            amount="500.00")


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def test_a_wallet_payment_reaches_the_merchant_through_ibps() -> None:
    out = run(TOP_UP + ev("09:30", "wallet_pay", id="lunch", user="13800000001",
                          terminal="POS00001", amount="120.00"))
    assert rec(out, "lunch")["status"] == "done"
    assert rec(out, "lunch")["merchant"] == "shop"
    assert out["payments"]["lunch"]["system"] == "IBPS"
    assert out["payments"]["lunch"]["status"] == "settled"
    assert wallet(out, "13800000001") == "380.00"
    customers = out["balances"]["customers"]
    assert customers["shop"] == "120.00"  # the full amount: no card, no MDR
    assert customers["alice"] == "4500.00" and customers["pool"] == "0.00"
    assert out["wallets"]["institutions"]["PAYCO"] == {"reserve": "1380.00",
                                                      "customer_funds": "380.00"}


def test_a_wallet_payment_larger_than_the_wallet_is_refused_and_changes_nothing() -> None:
    out = run(TOP_UP + ev("09:30", "wallet_pay", id="much", user="13800000001",
                          terminal="POS00001", amount="500.01"))
    assert code(out, "much") == "INSUFFICIENT_WALLET"
    assert "much" not in out["payments"]
    assert wallet(out, "13800000001") == "500.00"
    assert out["balances"]["customers"]["shop"] == "0.00"


def test_a_wallet_payment_ibps_refuses_goes_back_to_the_wallet() -> None:
    out = run(TOP_UP
              + "  - {at: 2026-11-25T09:01, do: set_param, name: ibps.closed, value: \"on\"}\n"
              + ev("09:30", "wallet_pay", id="lunch", user="13800000001",
                   terminal="POS00001", amount="120.00"))
    assert rec(out, "lunch")["status"] == "failed" and code(out, "lunch") == "DT01"
    assert wallet(out, "13800000001") == "500.00"
    assert out["balances"]["customers"]["shop"] == "0.00"


# ---------------------------------------------------------------------- campaign's end

CLAIMS = (ev("09:00", "claim_voucher", id="va", user="13800000001", campaign="spring")
          + ev("09:01", "claim_voucher", id="vb", user="13800000002", campaign="spring")
          + ev("10:00", "qr_pay", id="pay", user="13800000002", card=BOB_CARD,
               terminal="POS00001", amount="100.00", voucher="spring"))


def test_the_unused_budget_goes_back_to_the_sponsor_after_the_validity_window() -> None:
    # no event closes it: the campaign closes by itself in the first second after its
    # window (valid until 20:00); asked to close early or again, it refuses
    out = run(CLAIMS
              + ev("19:59", "close_campaign", id="early", campaign="spring")
              + ev("20:02", "close_campaign", id="again", campaign="spring"))
    assert code(out, "early") == "CAMPAIGN_OPEN"
    end = rec(out, "close:spring")
    assert (end["status"], end["at"]) == ("done", "2026-11-25T20:00:01+08:00")
    assert end["returned"] == "80.00" and end["expired"] == 1
    assert code(out, "again") == "CAMPAIGN_CLOSED"
    customers = out["balances"]["customers"]
    assert customers["city"] == "980.00"  # 1000.00 less the one discount it paid
    assert customers["shop"] == "99.52"   # the merchant kept the full price
    report = out["wallets"]["campaigns"]["spring"]
    assert report["returned"] == "80.00" and report["fund_left"] == "0.00"
    assert report["discounts_paid"] == "20.00" and report["used"] == 1


def test_a_discount_ibps_refused_goes_back_to_the_sponsor_at_the_end() -> None:
    out = run(ev("09:00", "claim_voucher", id="vb", user="13800000002", campaign="spring")
              + "  - {at: 2026-11-25T09:30, do: set_param, name: ibps.closed, value: \"on\"}\n"
              + ev("10:00", "qr_pay", id="pay", user="13800000002", card=BOB_CARD,
                   terminal="POS00001", amount="100.00", voucher="spring")
              + "  - {at: 2026-11-25T10:30, do: set_param, name: ibps.closed, value: \"off\"}\n")
    assert rec(out, "pay")["subsidy_failed"]["code"] == "DT01"
    end = rec(out, "close:spring")
    assert end["returned"] == "100.00" and end["expired"] == 0
    assert out["balances"]["customers"]["city"] == "1000.00"


def test_a_closed_campaign_takes_no_claims() -> None:
    out = run(ev("20:02", "claim_voucher", id="late", user="13800000001",
                 campaign="spring"))
    assert rec(out, "close:spring")["returned"] == "100.00"
    assert code(out, "late") == "CAMPAIGN_CLOSED"


def test_the_loader_names_a_gate_or_merchant_that_is_not_a_pos_terminal() -> None:
    from test_wallet import world

    from qingsuan.sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="wallet_pay w1: terminal 'ATM9' is not a listed POS"):
        world(ev("09:30", "wallet_pay", id="w1", user="13800000001", terminal="ATM9",
                 amount="1.00"))
    with pytest.raises(ScenarioError, match="close_campaign c: campaign 'autumn' is not"):
        world(ev("09:30", "close_campaign", id="c", campaign="autumn"))


def test_the_derived_indexes_are_rebuilt_from_the_state() -> None:
    # who holds which card and which vouchers is derived, not stored: a world loaded from
    # its state must refuse a second binding and find the user's voucher as before
    from test_wallet import world

    from qingsuan.sim.runner import Runner

    runner = Runner(world(CLAIMS), store="memory:")
    runner.run()
    w = runner.world.wallets
    assert w is not None
    bound, held = dict(w.bound), dict(w.held)
    assert bound and held == {("spring", "13800000001"): ["va"],
                              ("spring", "13800000002"): ["vb"]}
    w.load_state(w.dump_state())
    assert (w.bound, w.held) == (bound, held)
    runner.close()
