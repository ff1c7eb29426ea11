"""The app's routes for the wallet's money and the transit code (/v1/app): top-up by quick
pay from a bound card, withdrawal to one, the wallet's moves, rides through a gate with
the transit code and their batch the next morning; refusals name the field, bad input
logs nothing, and another user's key gets 404 for anything of Li's. The sandbox's clock
brings the wallets' own moments (the statement run, the batch) with no event."""

from __future__ import annotations

import pytest
from test_http_app_api import HAN, LI, App, refused
from test_http_app_api import app as app  # the fixture: the wallet world, four cards bound

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def balances(app: App, who: str) -> dict[str, str]:
    return {c["card"][-4:]: c["balance"] for c in app.get("/cards", who).json()["cards"]}


def move_clock(app: App, to: str) -> None:
    moved = app.client.post("/v1/operator/clock", headers=app.h("operator"), json={"at": to})
    assert moved.status_code == 200, moved.text


def test_top_up_and_withdraw_between_the_wallet_and_the_cards(app: App) -> None:
    icbc, ccb = app.card_id(LI, "0014"), app.card_id(LI, "0094")
    up = app.post("/top-ups", LI, {"card_id": icbc, "amount": "500.00"})
    assert up.status_code == 201, up.text
    assert up.json()["status"] == "done" and up.json()["wallet"] == "500.00"
    assert up.json()["card"] == "622202*********0014" and "6222020200000000014" not in up.text
    out = app.post("/withdrawals", LI, {"card_id": ccb, "amount": "200.00"})
    assert out.status_code == 201, out.text
    assert (out.json()["status"], out.json()["wallet"]) == ("done", "300.00")
    seen = app.get("/wallet", LI).json()
    assert seen["wallet"] == "300.00" and seen["institution"] == "PAYCO"
    assert [(m["do"], m["amount"], m["direction"], m["status"]) for m in seen["moves"]] == [
        ("wallet_withdrawal", "200.00", "out", "done"),
        ("wallet_top_up", "500.00", "in", "done")]
    assert app.get("/me", LI).json()["wallet"] == "300.00"
    cards = balances(app, LI)
    assert (cards["0014"], cards["0094"]) == ("4500.00", "1000.00")
    assert app.get("/wallet", HAN).json()["moves"] == []  # Li's moves are his


def test_wallet_refusals_name_the_field_and_bad_input_logs_nothing(app: App) -> None:
    icbc = app.card_id(LI, "0014")
    seq = app.core.engine.applied_seq
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": "1.005"}), 422,
            "amount_precision", "amount")
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": 5}), 422, "invalid_type",
            "amount")
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": "-1.00"}), 422,
            "amount_negative", "amount")
    refused(app.post("/withdrawals", LI, {"card_id": "tok_nope", "amount": "1.00"}), 404,
            "unknown_card", "card")
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": "1.00", "x": 1}), 422,
            "unknown_field", "x")
    refused(app.post("/top-ups", LI, {"amount": "1.00"}), 422, "missing_field", "card_id")
    assert app.core.engine.applied_seq == seq  # none of them logged anything
    # the wallets' refusals: logged, with their reason and the field
    refused(app.post("/withdrawals", LI, {"card_id": icbc, "amount": "0.01"}), 422,
            "INSUFFICIENT_WALLET", "amount")
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": "100000.01"}), 422,
            "WALLET_LIMIT", "amount")
    # more than the ICBC account holds: ICBC refuses the quick-pay debit, nothing moves
    refused(app.post("/top-ups", LI, {"card_id": icbc, "amount": "5000.01"}), 422,
            "IBPS_AM04", "amount")
    assert app.get("/wallet", LI).json()["wallet"] == "0.00"
    assert balances(app, LI)["0014"] == "5000.00"


def test_another_user_cannot_move_money_with_li_s_cards(app: App) -> None:
    li_card, gate = app.card_id(LI, "0014"), "GATE0001"
    tries = [app.post("/top-ups", HAN, {"card_id": li_card, "amount": "1.00"}),
             app.post("/withdrawals", HAN, {"card_id": li_card, "amount": "1.00"}),
             app.post("/transit/rides", HAN, {"card_id": li_card, "gate": gate,
                                              "amount": "1.00"})]
    for answer in tries:
        refused(answer, 404, "unknown_card", "card")
        assert LI not in answer.text and "0014" not in answer.text
    for path in ("/top-ups", "/withdrawals"):  # without a key: 401, never another's data
        assert app.client.post("/v1/app" + path, json={"card_id": li_card,
                                                        "amount": "1.00"}).status_code == 401
    assert balances(app, LI)["0014"] == "5000.00"


def test_rides_with_the_transit_code_clear_the_next_morning(app: App) -> None:
    icbc = app.card_id(LI, "0014")
    ride = app.post("/transit/rides", LI, {"card_id": icbc, "gate": "GATE0001",
                                           "amount": "4.00"})
    assert ride.status_code == 201, ride.text
    assert (ride.json()["status"], ride.json()["fare"]) == ("authorised", "4.00")
    refused(app.post("/transit/rides", LI, {"card_id": icbc, "gate": "GATE0001",
                                            "amount": "25.00"}), 422, "RIDE_LIMIT", "amount")
    seq = app.core.engine.applied_seq
    refused(app.post("/transit/rides", LI, {"card_id": icbc, "gate": "NOGATE",
                                            "amount": "4.00"}), 422, "unknown_gate", "gate")
    refused(app.post("/transit/rides", LI, {"card_id": icbc, "gate": "GATE0001",
                                            "amount": "4.001"}), 422, "amount_precision",
            "amount")
    assert app.core.engine.applied_seq == seq
    seen = app.get("/transit", LI).json()
    assert [(r["fare"], r["status"], r["gate"]) for r in seen["rides"]] == [
        ("4.00", "authorised", "GATE0001")]
    assert (seen["today"], seen["owed"], seen["ride_limit"], seen["daily_limit"]) == (
        "4.00", "0.00", "20.00", "100.00")
    assert balances(app, LI)["0014"] == "5000.00"  # offline: nothing reached the bank yet
    assert app.get("/transit", HAN).json()["rides"] == []
    # the next morning at 08:00 the gates' batch goes by itself: no event, the clock only
    move_clock(app, "2026-11-26T09:00:00+08:00")
    after = app.get("/transit", LI).json()["rides"][0]
    assert (after["status"], after["cleared"]) == ("cleared", "approved")  # cut-off at 23:00
    assert balances(app, LI)["0014"] == "4996.00"


def test_the_statement_comes_on_its_day_with_the_sandbox_clock(app: App) -> None:
    credit = app.card_id(LI, "5124")
    assert app.post("/payments", LI, {"card_id": credit, "amount": "600.00",
                                      "terminal": "POS00001"}).status_code == 201
    assert app.get("/statements", LI).json()["cards"][0]["statements"] == []
    move_clock(app, "2026-12-01T00:00:01+08:00")  # credit.statement_day: the 1st
    stmt = app.get("/statements", LI).json()["cards"][0]["statements"]
    assert [(s["at"], s["owed"], s["minimum"], s["due"][:10]) for s in stmt] == [
        ("2026-12-01T00:00:00+08:00", "600.00", "60.00", "2026-12-21")]


@pytest.mark.parametrize("icbc_answers", [True, False])
def test_a_campaign_closes_once_its_last_discount_leaves_ibps(app: App,
                                                              icbc_answers: bool) -> None:
    # the café banks with ICBC, which confirms IBPS credits itself (connected): the city's
    # discount for a payment at 21:59:50 is still waiting for ICBC when the café's
    # campaign's window ends (22:00): the close waits for it, then comes by itself
    connected = app.client.put("/v1/operator/participants/ICBC/ibps/confirmations",
                               headers=app.h("operator"), json={"connected": True})
    assert connected.status_code == 200, connected.text
    move_clock(app, "2026-11-25T17:10:00+08:00")
    assert app.post("/vouchers", HAN, {"campaign": "cafe-evening"}).status_code == 201
    move_clock(app, "2026-11-25T21:59:50+08:00")
    paid = app.post("/payments", HAN, {"card_id": app.card_id(HAN, "0034"), "amount": "30.00",
                                       "terminal": "POS00002", "voucher": "cafe-evening"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["card_paid"] == "25.00"
    move_clock(app, "2026-11-25T22:00:05+08:00")
    w = app.core.world.wallets
    assert w is not None and not w.campaigns["cafe-evening"].closed
    assert "close:cafe-evening" not in w.records  # (no refusal recorded either)
    if icbc_answers:  # ICBC accepts the discount (at 22:00:05): paid from the budget
        answer = app.client.post(
            "/v1/participants/ICBC/ibps/confirmations/answers", headers=app.h("ICBC"),
            json={"ref": f"{paid.json()['id']}.subsidy", "answer": "accept"})
        assert answer.status_code == 200, answer.text
    move_clock(app, "2026-11-25T22:01:00+08:00")  # unanswered: AB05 at 22:00:20
    close = w.records["close:cafe-evening"]
    assert (close["at"], close["returned"]) == (
        ("2026-11-25T22:00:05+08:00", "45.00") if icbc_answers
        else ("2026-11-25T22:00:20+08:00", "50.00"))


def test_the_wallet_s_moves_are_the_user_s_own_after_a_reload(app: App) -> None:
    """The moves are read from the user's own records (an index rebuilt when the state
    is loaded, never stored): the same moves before and after a reload."""
    icbc = app.card_id(LI, "0014")
    for amount in ("100.00", "50.00", "25.00"):
        assert app.post("/top-ups", LI, {"card_id": icbc, "amount": amount}).status_code == 201
    before = app.get("/wallet", LI).json()["moves"]
    assert [m["amount"] for m in before] == ["25.00", "50.00", "100.00"]
    wallets = app.core.world.wallets
    assert wallets is not None
    wallets.load_state(wallets.dump_state())
    assert app.get("/wallet", LI).json()["moves"] == before
    assert app.get("/wallet", HAN).json()["moves"] == []
