"""The operator runs a net settlement session or HVPS's end of day by name, now
(`POST /v1/operator/sessions`, `POST /v1/operator/end-of-day`, docs/SERVER.md): each a
logged CNAPS command, answered with what it did, and a replay or a restart reaching the
same state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_http_api import (
    CCB1,
    NAMES,
    Api,
    assert_refusal,
    open_api,
    sandbox_api,
)

from qingsuan.banks import reconcile
from qingsuan.engine import replay
from qingsuan.messages import parse_camt053
from qingsuan.money import parse_amount
from qingsuan.server.http import KeyRing, SandboxClock
from qingsuan.world import world_systems

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SESSIONS, END = "/v1/operator/sessions", "/v1/operator/end-of-day"


@pytest.fixture
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def balance(api: Api, who: str) -> int:
    """The participant's settlement balance in fen, as its positions show it."""
    got = api.get(f"/v1/participants/{who}/positions", who).json()["settlement"]["balance"]
    return parse_amount(got, allow_zero=True)


def session(api: Api, system: str) -> Any:
    return api.post(SESSIONS, "operator", json={"system": system})


def test_a_beps_session_settles_what_was_netted_now(api: Api) -> None:
    assert api.transfer().json()["status"] == "credited"  # BEPS: netted, 11:00 by timetable
    icbc, ccb = balance(api, "ICBC"), balance(api, "CCB")
    ran = session(api, "BEPS")
    assert ran.status_code == 200, ran.text
    doc = ran.json()
    assert (doc["system"], doc["status"], doc["items_settled"]) == ("BEPS", "settled", 1)
    assert doc["positions"] == {"CCB": "1234.50", "ICBC": "-1234.50"}
    assert doc["at"] == "2026-11-26T10:00:00+08:00"
    assert api.get("/v1/participants/ICBC/payments/API/T1").json()["status"] == "settled"
    assert (balance(api, "ICBC"), balance(api, "CCB")) == (icbc - 123_450, ccb + 123_450)
    assert api.get("/v1/participants/ICBC/positions").json()["net"]["BEPS"]["position"] == \
        "0.00"
    again = session(api, "BEPS").json()
    assert (again["status"], again["items_settled"], again["positions"]) == \
        ("nothing to settle", 0, {})
    settled = [n for n in api.get("/v1/participants/ICBC/notices").json()["notices"]
               if n["event"] == "settled" and n["system"] == "BEPS"]
    assert [n["detail"] for n in settled] == [doc["session"]]


def test_an_ibps_session_and_the_card_positions_by_either_name(api: Api) -> None:
    sent = api.transfer(id="M1", channel="mobile", urgent=True, amount="300.00")
    assert sent.json()["system"] == "IBPS", sent.text
    doc = session(api, "IBPS").json()
    assert (doc["status"], doc["items_settled"]) == ("settled", 1)
    assert doc["positions"] == {"CCB": "300.00", "ICBC": "-300.00"}
    assert api.get("/v1/participants/ICBC/payments/API/M1").json()["status"] == "settled"
    cards = session(api, "cards").json()
    assert (cards["system"], cards["status"]) == ("CUPS", "nothing to settle")


def test_session_refusals_name_the_field_and_log_nothing(api: Api) -> None:
    api.transfer()
    before = api.core.engine.applied_seq
    assert_refusal(session(api, "HVPS"), 422, "invalid_field", "system")
    assert_refusal(api.post(SESSIONS, "operator", json={}), 422, "missing_field", "system")
    assert_refusal(api.post(SESSIONS, "ICBC", json={"system": "BEPS"}), 403, "operator_only")
    assert_refusal(api.post(END, "CCB"), 403, "operator_only")
    assert api.core.engine.applied_seq == before
    assert api.post("/v1/operator/params", "operator",
                    json={"params": {"beps.closed": True}}).status_code == 200
    before = api.core.engine.applied_seq
    assert_refusal(session(api, "BEPS"), 409, "system_closed", "system")
    assert api.core.engine.applied_seq == before
    assert api.get("/v1/participants/ICBC/payments/API/T1").json()["status"] == "credited"


def test_end_of_day_now_returns_the_queue_closes_hvps_and_writes_the_statement(
        api: Api) -> None:
    path = "/v1/participants/ICBC/institution-transfers"
    small = api.post(path, json={"id": "L1", "creditor_bank": "CCB", "amount": "1000.00"})
    assert small.json()["iso_status"] == "ACSC"
    big = api.post(path, json={"id": "L2", "creditor_bank": "CCB", "amount": "200000000.00"})
    assert big.json()["status"] == "queued"
    assert api.transfer().status_code == 201  # BEPS, netted: carried to the next day
    assert_refusal(api.get("/v1/participants/ICBC/statements/2026-11-26"), 404,
                   "no_statement")
    closed = api.post(END, "operator")
    assert closed.status_code == 200, closed.text
    doc = closed.json()
    assert (doc["business_date"], doc["hvps_phase"]) == ("2026-11-26", "closed")
    assert doc["returned"] == ["ICBC/API/L2"] and doc["settled_in_window"] == []
    status = api.get("/v1/participants/ICBC/payments/API/L2").json()
    assert (status["status"], status["reason"]["code"]) == ("returned", "AM04"), status
    clock = api.get("/v1/operator/clock", "operator").json()
    assert (clock["hvps_phase"], clock["business_date"]) == ("closed", None)
    (statement,) = parse_camt053(api.get("/v1/participants/ICBC/statements/2026-11-26").content)
    assert statement.closing_balance_fen == balance(api, "ICBC")
    assert any(e.amount_fen == 100_000 for e in statement.entries)  # L1
    assert_refusal(api.post(END, "operator"), 409, "hvps_closed")
    assert_refusal(session(api, "BEPS"), 409, "hvps_closed", "system")
    banks = api.core.world.banks  # (the returned payment's money is back with its payer)
    assert reconcile.money_conserved(banks) and reconcile.suspense_explained(banks)
    # HVPS stays closed for the day: an urgent payment goes by BEPS now (HVPS closed)
    assert api.transfer(id="T2", urgent=True).json()["system"] == "BEPS"
    # the scheduled close at 17:30 does not close the day again; the 27th opens as usual
    assert api.clock(at="2026-11-27T09:00").status_code == 200
    (again,) = parse_camt053(api.get("/v1/participants/ICBC/statements/2026-11-26").content)
    assert (again.opening_balance_fen, again.closing_balance_fen, again.entries) == \
        (statement.opening_balance_fen, statement.closing_balance_fen, statement.entries)
    assert api.get("/v1/operator/clock", "operator").json()["hvps_phase"] == "open"
    assert api.get("/v1/participants/ICBC/payments/API/T1").json()["status"] == "settled"
    third = api.transfer(id="T3", urgent=True, amount="60000.00")
    assert (third.json()["system"], third.json()["iso_status"]) == ("HVPS", "ACSC")


def test_replay_and_restart_reach_the_same_state(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    ring, keys = KeyRing.for_world(NAMES)
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        assert api.transfer().status_code == 201
        assert session(api, "BEPS").json()["status"] == "settled"
        assert api.transfer(id="T2", creditor={"bank": "CCB", "account": CCB1,
                                               "name": "Holder CCB 1"}).status_code == 201
        assert api.post(END, "operator").status_code == 200
        statement = api.get("/v1/participants/CCB/statements/2026-11-26", "CCB").content
        live = core.engine.state_hash()
    finally:
        core.close()
    assert replay(store, world_systems()).state_hash() == live
    client, core = open_api(store, ring, SandboxClock("virtual"))
    again = Api(client, core, keys)
    try:
        assert core.engine.state_hash() == live
        assert again.get("/v1/operator/clock", "operator").json()["hvps_phase"] == "closed"
        assert again.get("/v1/participants/CCB/statements/2026-11-26", "CCB").content == \
            statement
        assert_refusal(again.post(END, "operator"), 409, "hvps_closed")
        assert again.get("/v1/participants/ICBC/payments/API/T2").json()["status"] == \
            "credited"  # (netted after the BEPS session: it waits for the next day's)
    finally:
        core.close()



def test_a_session_short_of_funds_waits_and_settles_when_run_again(api: Api) -> None:
    """A bank added with 100.00 in its settlement account owes 5,000.00 in BEPS: the
    session waits for it; once it pledges collateral, the same session settles."""
    added = api.post("/v1/operator/participants", "operator", json={
        "name": "NEWB", "code": "313100000013", "settlement_balance": "100.00",
        "customers": [{"account": "6200000000000001", "name": "New Holder 1",
                       "balance": "30000.00"}]})
    assert added.status_code == 201, added.text
    api.keys["NEWB"] = added.json()["api_key"]
    sent = api.post("/v1/participants/NEWB/transfers", "NEWB", json={
        "id": "N1", "debtor_account": "6200000000000001", "amount": "5000.00",
        "creditor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}})
    assert (sent.json()["system"], sent.json()["status"]) == ("BEPS", "credited"), sent.text
    short = session(api, "BEPS").json()
    assert (short["status"], short["items_settled"]) == ("waiting", 0)
    assert short["detail"] == "waiting: NEWB short 4900.00"
    assert short["positions"] == {"CCB": "5000.00", "NEWB": "-5000.00"}
    assert api.get("/v1/participants/NEWB/payments/API/N1", "NEWB").json()["status"] == \
        "credited"
    assert api.post("/v1/operator/participants/NEWB/pledge", "operator",
                    json={"value": "10000.00"}).status_code == 200
    again = session(api, "BEPS").json()
    assert (again["session"], again["status"], again["items_settled"]) == \
        (short["session"], "settled", 1)
    assert api.get("/v1/participants/NEWB/payments/API/N1", "NEWB").json()["status"] == \
        "settled"
    positions = api.get("/v1/participants/NEWB/positions", "NEWB").json()
    assert positions["settlement"]["balance"] == "0.00"  # 100.00 and 4,900.00 of credit
    assert positions["credit"]["drawn"] == "4900.00"
