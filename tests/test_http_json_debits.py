"""pacs.003 (BEPS direct debit) and pacs.004 (return) in JSON: POST .../direct-debits and
POST .../returns, answered by the gateway's code for the XML messages. Each refusal is a
clear 4xx naming the field (amounts with more than two decimals or negative, unknown
banks, accounts and payments, another participant's path), nothing logged; never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_api import CCB, CCB1, DAY, ICBC, ICBC1, Api, assert_refusal, at, sandbox_api

from qingsuan.messages import DirectDebit, build_pacs003, parse_pacs002

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEBITS = "/v1/participants/{}/direct-debits"
RETURNS = "/v1/participants/{}/returns"


@pytest.fixture
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def debit(**fields: Any) -> dict[str, Any]:
    """ICBC collects 88.00 from CCB's customer for its own customer."""
    doc: dict[str, Any] = {
        "id": "DD-1", "debtor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"},
        "creditor": {"account": ICBC1, "name": "Holder ICBC 1"}, "amount": "88.00"}
    doc.update(fields)
    return doc


def a_return(**fields: Any) -> dict[str, Any]:
    """CCB gives back ICBC's BEPS transfer T1 of 1,234.50."""
    doc: dict[str, Any] = {"id": "RT-1", "payment": {"sender": "ICBC", "msg_id": "API",
                                                     "tx_id": "T1"},
                           "amount": "1234.50", "reason": "AC04", "message": "account closed"}
    doc.update(fields)
    return doc


def beps(api: Api, participant: str = "ICBC") -> dict[str, Any]:
    net: dict[str, Any] = api.get(f"/v1/participants/{participant}/positions",
                                  participant).json()["net"]
    return net["BEPS"]


# ---------------------------------------------------------------------- direct debits


def customer_fen(api: Api, bank: str, account: str) -> int:
    """A customer's posted balance in its bank's books, by account number."""
    world, engine = api.core.world, api.core.engine
    cid = world.banks.directory.by_number[(bank, account)].id
    return engine.ledger.balance(engine.registry.id(bank, f"customer:{cid}")).posted_fen


def test_json_debit_nets_in_beps_as_a_pacs003_would(api: Api) -> None:
    payer, payee = customer_fen(api, "CCB", CCB1), customer_fen(api, "ICBC", ICBC1)
    answer = api.post(DEBITS.format("ICBC"), json=debit())
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert (doc["payment_id"], doc["system"], doc["kind"]) == ("API/DD-1", "BEPS",
                                                              "ordinary_debit")
    # netted, and the payee's bank credited its customer at once
    assert (doc["status"], doc["iso_status"]) == ("credited", "ACSP")
    # ICBC is owed 88.00 in BEPS, CCB owes it; CCB debited its customer, ICBC credited its own
    assert beps(api)["position"] == "88.00" and beps(api, "CCB")["position"] == "-88.00"
    assert customer_fen(api, "CCB", CCB1) == payer - 8_800
    assert customer_fen(api, "ICBC", ICBC1) == payee + 8_800
    followed = api.get("/v1/participants/ICBC/payments/API/DD-1").json()
    assert followed["status"] == "credited" and followed["system"] == "BEPS"
    # the same debit as XML (its own ids): the same answer, the same positions
    xml = build_pacs003(DirectDebit(
        msg_id="ICBCD1", created_at=at(10), end_to_end_id="X1", tx_id="X1",
        amount_fen=8_800, settlement_date=DAY, creditor_agent_code=ICBC,
        debtor_agent_code=CCB, creditor_name="Holder ICBC 1", creditor_account=ICBC1,
        debtor_name="Holder CCB 1", debtor_account=CCB1))
    (report,) = parse_pacs002(api.xml(xml).content)
    assert report.status == "ACSP" and beps(api)["position"] == "176.00"
    assert customer_fen(api, "CCB", CCB1) == payer - 17_600
    assert customer_fen(api, "ICBC", ICBC1) == payee + 17_600


def test_a_debit_for_an_account_the_payee_bank_lacks_is_refused_before_cnaps(api: Api) -> None:
    """The payee's bank asks only for its own customer: a creditor account it does not
    hold is refused AC01 (a pacs.002 RJCT) before CNAPS or the payer's bank sees it."""
    payer = customer_fen(api, "CCB", CCB1)
    xml = build_pacs003(DirectDebit(
        msg_id="ICBCD2", created_at=at(10), end_to_end_id="X2", tx_id="X2",
        amount_fen=8_800, settlement_date=DAY, creditor_agent_code=ICBC,
        debtor_agent_code=CCB, creditor_name="Nobody", creditor_account="9222020000000099999",
        debtor_name="Holder CCB 1", debtor_account=CCB1))
    (report,) = parse_pacs002(api.xml(xml).content)
    assert (report.status, report.reason_code) == ("RJCT", "AC01")
    assert "ICBC" in (report.additional_info or "")
    assert "ICBC/ICBCD2/X2" not in api.core.cnaps.beps.items  # CNAPS never saw it
    assert beps(api)["position"] == "0.00" and customer_fen(api, "CCB", CCB1) == payer


def test_the_payers_bank_refuses_with_its_reason_and_the_recorded_payment(api: Api) -> None:
    unknown = api.post(DEBITS.format("ICBC"), json=debit(
        debtor={"bank": "CCB", "account": "9217000000000099999", "name": "Nobody"}))
    assert_refusal(unknown, 422, "AC01", "debtor.account")
    assert unknown.json()["payment"]["status"] == "rejected"
    assert unknown.json()["payment"]["iso_status"] == "RJCT"
    too_much = api.post(DEBITS.format("ICBC"), json=debit(id="DD-2", amount="999999999.00"))
    assert_refusal(too_much, 422, "AM04", "amount")
    no_mandate = api.post(DEBITS.format("ICBC"), json=debit(id="DD-3", mandate="AGR-1"))
    assert_refusal(no_mandate, 422, "MD01", "mandate")
    assert no_mandate.json()["payment"]["kind"] == "periodic_debit"
    assert beps(api)["position"] == "0.00"  # nothing netted
    # each refusal is the payment's recorded status
    assert api.get("/v1/participants/ICBC/payments/API/DD-2").json()["status"] == "rejected"


@pytest.mark.parametrize(("amount", "reason"), [
    ("88.001", "amount_precision"), ("-88.00", "amount_negative"), ("0.00", "amount_zero"),
    ("1000000000000000.00", "amount_too_large"), ("eighty", "invalid_amount"),
    (88, "invalid_type"), ("", "invalid_amount"),
])
def test_debit_amounts_are_refused_with_their_reason(api: Api, amount: Any,
                                                     reason: str) -> None:
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(DEBITS.format("ICBC"), json=debit(amount=amount)), 422, reason,
                   "amount")
    assert api.core.engine.applied_seq == seq


@pytest.mark.parametrize(("fields", "status", "reason", "field"), [
    ({"debtor": {"bank": "NOSUCH", "account": CCB1, "name": "Holder CCB 1"}}, 422,
     "unknown_participant", "debtor.bank"),
    ({"debtor": {"bank": "999999999999", "account": CCB1, "name": "Holder CCB 1"}}, 422,
     "unknown_participant", "debtor.bank"),
    ({"creditor": {"account": CCB1, "name": "Holder CCB 1"}}, 422, "unknown_account",
     "creditor.account"),
    ({"debtor": {"bank": "CCB", "account": "12", "name": "Holder CCB 1"}}, 422,
     "invalid_account", "debtor.account"),
    ({"creditor": {"account": ICBC1, "name": " "}}, 422, "invalid_name", "creditor.name"),
    ({"id": "no spaces"}, 422, "invalid_id", "id"),
    ({"mandate": "a/b"}, 422, "invalid_id", "mandate"),
    ({"debtor": {"bank": "CCB", "account": CCB1}}, 422, "missing_field", "debtor.name"),
    ({"system": "HVPS"}, 422, "unknown_field", "system"),
])
def test_debit_refusals_name_the_field(api: Api, fields: dict[str, Any], status: int,
                                       reason: str, field: str) -> None:
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(DEBITS.format("ICBC"), json=debit(**fields)), status, reason,
                   field)
    assert api.core.engine.applied_seq == seq


def test_a_debit_id_used_before_is_a_conflict(api: Api) -> None:
    assert api.post(DEBITS.format("ICBC"), json=debit()).status_code == 201
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(DEBITS.format("ICBC"), json=debit()), 409, "duplicate", "id")
    # a JSON transfer's id too: both are payments API/<id>
    assert api.transfer(id="T9").status_code == 201
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(DEBITS.format("ICBC"), json=debit(id="T9")), 409, "duplicate")
    assert api.core.engine.applied_seq == seq
    assert beps(api)["position"] == "-1146.50"  # 88.00 owed to ICBC, 1,234.50 it sent


def test_debits_and_returns_act_for_the_keys_own_participant(api: Api) -> None:
    seq = api.core.engine.applied_seq
    for path, body in ((DEBITS, debit()), (RETURNS, a_return())):
        for target in ("ICBC", "NOSUCHBANK"):
            answer = api.post(path.format(target), "CCB", json=body)
            assert_refusal(answer, 403, "not_yours", "participant")
        assert_refusal(api.post(path.format("ICBC"), "operator", json=body), 403,
                       "participant_only")
        assert_refusal(api.client.post(path.format("ICBC"), json=body), 401, "missing_key")
    assert api.core.engine.applied_seq == seq


@pytest.mark.parametrize("path", [DEBITS, RETURNS])
def test_bodies_that_are_not_orders_are_4xx(api: Api, path: str) -> None:
    url = path.format("ICBC")
    assert_refusal(api.post(url, content=b"{not json", headers={"content-type":
                                                                 "application/json"}),
                   400, "invalid_json")
    assert_refusal(api.post(url, json=[1, 2]), 422, "invalid_type")
    assert_refusal(api.post(url, json={}), 422, "missing_field")
    assert api.post(url, json={"id": None}).status_code == 422
    assert api.post(url, json="\x00" * 100).status_code == 422


# ---------------------------------------------------------------------- returns


def sent_and_netted(api: Api) -> None:
    """ICBC's customer pays CCB's 1,234.50 at the counter: BEPS, netted."""
    doc = api.transfer().json()
    assert (doc["system"], doc["status"]) == ("BEPS", "credited"), doc
    assert beps(api)["position"] == "-1234.50"


def test_json_return_gives_the_credit_back(api: Api) -> None:
    payer, payee = customer_fen(api, "ICBC", ICBC1), customer_fen(api, "CCB", CCB1)
    sent_and_netted(api)
    assert customer_fen(api, "CCB", CCB1) == payee + 123_450
    answer = api.post(RETURNS.format("CCB"), "CCB", json=a_return())
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert (doc["system"], doc["amount"], doc["iso_status"]) == ("BEPS", "1234.50", "ACSP")
    assert doc["payment"] == {"sender": "ICBC", "msg_id": "API", "tx_id": "T1"}
    assert doc["status"] == "netted"
    # the positions are back where they were, and so are both customers' balances: CCB
    # took the credit back from its customer, ICBC gave it back to its own
    assert beps(api)["position"] == "0.00" and beps(api, "CCB")["position"] == "0.00"
    assert customer_fen(api, "CCB", CCB1) == payee
    assert customer_fen(api, "ICBC", ICBC1) == payer
    returned = api.get("/v1/participants/ICBC/payments/API/T1").json()
    assert returned["status"] == "returned" and returned["reason"]["code"] == "AC04"
    # ICBC is told: its payment came back
    notices = api.get("/v1/participants/ICBC/notices").json()["notices"]
    assert any(n["event"] == "returned" and n["ref"] == "ICBC/API/T1" for n in notices)
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(RETURNS.format("CCB"), "CCB", json=a_return(id="RT-2")), 409,
                   "duplicate", "payment")
    assert api.core.engine.applied_seq == seq


def test_a_credit_the_customer_has_spent_is_not_returned(api: Api) -> None:
    """The bank takes a return's amount back from the customer it credited: spent (here
    reserved for a larger payment), the return is refused AM04 and nothing moves."""
    sent_and_netted(api)
    whole_fen = customer_fen(api, "CCB", CCB1)
    everything = f"{whole_fen // 100}.{whole_fen % 100:02d}"
    spent = api.transfer("CCB", id="SPEND", debtor_account=CCB1, amount=everything,
                         creditor={"bank": "ICBC", "account": ICBC1, "name": "Holder ICBC 1"})
    assert spent.status_code == 201, spent.text
    held = customer_fen(api, "CCB", CCB1)
    assert_refusal(api.post(RETURNS.format("CCB"), "CCB", json=a_return()), 422, "AM04",
                   "amount")
    assert beps(api, "CCB")["position"] == "1234.50"  # no return item
    assert customer_fen(api, "CCB", CCB1) == held
    assert api.get("/v1/participants/ICBC/payments/API/T1").json()["status"] == "credited"


def test_a_return_gives_back_the_whole_amount(api: Api) -> None:
    sent_and_netted(api)
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(RETURNS.format("CCB"), "CCB", json=a_return(amount="1000.00")),
                   422, "AM02", "amount")
    assert api.core.engine.applied_seq == seq and beps(api)["position"] == "-1234.50"


@pytest.mark.parametrize(("fields", "status", "reason", "field"), [
    ({"amount": "1234.501"}, 422, "amount_precision", "amount"),
    ({"amount": "-1234.50"}, 422, "amount_negative", "amount"),
    ({"amount": 1234.5}, 422, "invalid_type", "amount"),
    ({"reason": "ac04"}, 422, "invalid_field", "reason"),
    ({"reason": "ACCOUNT CLOSED"}, 422, "invalid_field", "reason"),
    ({"message": "x" * 141}, 422, "invalid_field", "message"),
    ({"id": "-bad"}, 422, "invalid_id", "id"),
    ({"payment": {"sender": "NOSUCH", "msg_id": "API", "tx_id": "T1"}}, 422,
     "unknown_participant", "payment.sender"),
    ({"payment": {"sender": "ICBC", "msg_id": "API", "tx_id": "NOPE"}}, 404,
     "unknown_payment", "payment"),
    ({"payment": {"sender": "ICBC", "msg_id": "", "tx_id": "T1"}}, 422, "invalid_id",
     "payment.msg_id"),
    ({"payment": {"sender": "ICBC", "msg_id": "API"}}, 422, "missing_field",
     "payment.tx_id"),
])
def test_return_refusals_name_the_field(api: Api, fields: dict[str, Any], status: int,
                                        reason: str, field: str) -> None:
    sent_and_netted(api)
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(RETURNS.format("CCB"), "CCB", json=a_return(**fields)), status,
                   reason, field)
    assert api.core.engine.applied_seq == seq


def test_only_the_receiving_bank_returns_and_only_netted_credits(api: Api) -> None:
    sent_and_netted(api)
    # BOC did not receive ICBC's T1: the same as no such payment, nothing of it shown
    theirs = api.post(RETURNS.format("BOC"), "BOC", json=a_return())
    assert_refusal(theirs, 404, "unknown_payment", "payment")
    assert "1234.50" not in theirs.text
    # nor does the sender return its own payment
    assert_refusal(api.post(RETURNS.format("ICBC"), json=a_return()), 404, "unknown_payment")
    # an HVPS payment is not returned here (BEPS and IBPS only)
    assert api.transfer(id="U1", urgent=True).json()["system"] == "HVPS"
    seq = api.core.engine.applied_seq
    urgent = a_return(payment={"sender": "ICBC", "msg_id": "API", "tx_id": "U1"})
    assert_refusal(api.post(RETURNS.format("CCB"), "CCB", json=urgent), 404,
                   "unknown_payment")
    assert api.core.engine.applied_seq == seq


# ---------------------------------------------------------------------- never a 5xx

json_values = st.none() | st.booleans() | st.integers() | st.text(max_size=40) | st.floats(
    allow_nan=False, allow_infinity=False) | st.dictionaries(st.text(max_size=8),
                                                            st.text(max_size=12), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["direct-debits", "returns", "reports"]),
       changes=st.dictionaries(st.sampled_from(
           ["id", "amount", "debtor", "creditor", "mandate", "payment", "reason", "message",
            "date", "to"]), json_values, max_size=3))
def test_random_bodies_never_5xx(api: Api, route: str, changes: dict[str, Any]) -> None:
    base = {"direct-debits": debit(), "returns": a_return(),
            "reports": {"message": "camt.053", "date": "2026-11-25"}}[route]
    answer = api.post(f"/v1/participants/ICBC/{route}", json={**base, **changes})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        body = answer.json()
        assert body["reason"] and body["message"], body
