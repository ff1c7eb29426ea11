"""BEPS debit receipts over HTTP (routes_confirm.py, docs/SERVER.md): ICBC's hub collects
from a CCB customer by pacs.003; CCB, connected, sees the request in its inbox and in
`GET .../beps/receipts`, and gives or refuses the receipt (回执) with a code before the
deadline; a late answer is a 409; another participant can neither see nor answer it; bad
answers are a 422 naming the field, nothing logged; the request reaches CCB's webhook."""

from __future__ import annotations

from typing import Any

import pytest
import test_http_api
import test_http_callbacks
from test_http_api import CCB, CCB1, DAY, ICBC, ICBC1, Api, at
from test_http_callbacks import Receiver, connect, drain

from qingsuan.cnaps.netsys import RECEIPT_REJECT_CODES
from qingsuan.messages import DirectDebit, build_pacs003, parse_pacs002
from qingsuan.server.http.auth import OPERATOR
from qingsuan.server.http.delivery import Deliverer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

api = pytest.fixture(test_http_api.api.__wrapped__)  # type: ignore[attr-defined]
receiver = pytest.fixture(test_http_callbacks.receiver.__wrapped__)  # type: ignore[attr-defined]
sandbox = pytest.fixture(test_http_callbacks.sandbox.__wrapped__)  # type: ignore[attr-defined]

R = "/v1/participants/CCB/beps/receipts"
REF = "ICBC/DDM1/DD1"
DEADLINE = "2026-11-27T10:00:00+08:00"  # 10:00 plus beps.receipt_timeout_minutes (1440)


def collect(api: Api, amount_fen: int = 32_150, tx: str = "DD1") -> tuple[str, str | None]:
    """ICBC's hub collects from CCB's customer (pacs.003): the pacs.002 status and code."""
    xml = build_pacs003(DirectDebit(
        msg_id=f"DDM{tx[2:]}", created_at=at(10), end_to_end_id=tx, tx_id=tx, system="BEPS",
        amount_fen=amount_fen, settlement_date=DAY, creditor_agent_code=ICBC,
        debtor_agent_code=CCB, creditor_name="Holder ICBC 1", creditor_account=ICBC1,
        debtor_name="Holder CCB 1", debtor_account=CCB1))
    sent = api.xml(xml)
    assert sent.status_code == 200, sent.text
    (report,) = parse_pacs002(sent.content)
    return report.status, report.reason_code


def connect_ccb(api: Api, who: str = "CCB", connected: bool = True) -> None:
    path = "/v1/participants/CCB/ibps/confirmations" if who == "CCB" else \
        "/v1/operator/participants/CCB/ibps/confirmations"
    answer = api.client.put(path, headers=api.h(who), json={"connected": connected})
    assert answer.status_code == 200, answer.text


def answer(api: Api, who: str = "CCB", **body: Any) -> Any:
    return api.post(f"/v1/participants/{who}/beps/receipts/answers", who,
                    json={"ref": REF, **body})


def payment(api: Api) -> dict[str, Any]:
    """ICBC's view of its debit."""
    doc: dict[str, Any] = api.get("/v1/participants/ICBC/payments/DDM1/DD1").json()
    return doc


def position(api: Api, who: str) -> int:
    return int(api.core.cnaps.beps.positions[who])


def balance(api: Api, bank: str, customer: str) -> int:
    engine = api.core.engine
    return engine.ledger.balance(engine.registry.id(bank, f"customer:{customer}")).available_fen


def test_connected_bank_sees_and_gives_its_receipt(api: Api) -> None:
    connect_ccb(api)
    doc = api.get(R, "CCB").json()
    assert doc == {"participant": "CCB", "connected": True, "timeout_minutes": 1440,
                   "pending": []}
    assert collect(api) == ("PDNG", None)  # waiting for CCB's receipt
    assert payment(api)["status"] == "awaiting_confirmation"
    pending = api.get(R, "CCB").json()["pending"]
    assert [(p["ref"], p["from"], p["kind"], p["amount"], p["payer_account"], p["answer_by"])
            for p in pending] == [(REF, "ICBC", "ordinary_debit", "321.50", CCB1, DEADLINE)]
    notes = api.get("/v1/participants/CCB/notices", "CCB").json()["notices"]
    assert [(n["event"], n["system"], n["detail"]) for n in notes if n["ref"] == REF] == [
        ("receipt_request", "BEPS", DEADLINE)]
    assert position(api, "CCB") == 0
    payer, payee = balance(api, "CCB", "ccb1"), balance(api, "ICBC", "icbc1")
    done = answer(api, answer="accept")
    assert done.status_code == 200, done.text
    assert done.json() == {"ref": REF, "status": "netted", "reason": None}
    assert payment(api)["status"] == "credited"  # netted, and ICBC credited its customer
    assert (position(api, "CCB"), position(api, "ICBC")) == (-32_150, 32_150)
    # CCB debited its customer on its receipt; ICBC credited its own
    assert balance(api, "CCB", "ccb1") == payer - 32_150
    assert balance(api, "ICBC", "icbc1") == payee + 32_150
    assert api.get(R, "CCB").json()["pending"] == []
    again = answer(api, answer="reject", code="AM04")
    assert again.status_code == 409 and again.json()["reason"] == "not_awaiting"
    assert payment(api)["status"] == "credited"


@pytest.mark.parametrize("code", ["AC04", "AM04", "MD01"])
def test_refused_receipt_ends_with_the_code_and_nothing_moves(api: Api, code: str) -> None:
    connect_ccb(api, OPERATOR)  # the operator connects it
    before = balance(api, "CCB", "ccb1")
    collect(api)
    done = answer(api, answer="reject", code=code, message="the payer says no")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected" and done.json()["reason"]["code"] == code
    paid = payment(api)
    assert paid["status"] == "rejected" and paid["reason"]["code"] == code
    assert (position(api, "CCB"), position(api, "ICBC")) == (0, 0)
    assert balance(api, "CCB", "ccb1") == before


def test_no_receipt_rejects_ab06_and_a_late_answer_is_a_409(api: Api) -> None:
    set_param = api.post("/v1/operator/params", OPERATOR,
                         json={"params": {"beps.receipt_timeout_minutes": "30"}})
    assert set_param.status_code == 200, set_param.text
    connect_ccb(api)
    collect(api)
    assert api.get(R, "CCB").json()["pending"][0]["answer_by"] == "2026-11-26T10:30:00+08:00"
    assert api.clock(at="2026-11-26T10:29").status_code == 200
    assert payment(api)["status"] == "awaiting_confirmation"  # not before the deadline
    assert api.clock(at="2026-11-26T10:30").status_code == 200
    paid = payment(api)
    assert paid["status"] == "rejected" and paid["reason"]["code"] == "AB06"
    late = answer(api, answer="accept")
    assert late.status_code == 409, late.text
    assert late.json()["reason"] == "too_late" and late.json()["field"] == "ref"
    assert payment(api)["status"] == "rejected"
    assert position(api, "CCB") == 0


def test_bad_answers_are_refused_naming_the_field(api: Api) -> None:
    connect_ccb(api)
    collect(api)
    seq = api.core.engine.applied_seq
    for body, field in (({"answer": "reject"}, "code"),
                        ({"answer": "reject", "code": "BE01"}, "code"),  # an IBPS code
                        ({"answer": "reject", "code": "am04"}, "code"),
                        ({"answer": "accept", "code": "AC01"}, "code"),
                        ({"answer": "maybe"}, "answer"),
                        ({"answer": "accept", "message": "x" * 106}, "message"),
                        ({"answer": "accept", "ref": ""}, "ref"),
                        ({"answer": "accept", "extra": 1}, "extra"),
                        ({"answer": "accept", "ref": "ICBC/DDM1/NOPE"}, "ref")):
        refused = answer(api, **body)
        assert 400 <= refused.status_code < 500, refused.text
        assert field in str(refused.json()["field"]), (body, refused.json())
    assert api.core.engine.applied_seq == seq
    assert api.get(R, "CCB").json()["pending"][0]["ref"] == REF
    refused = answer(api, answer="reject")
    assert set(RECEIPT_REJECT_CODES) <= set(refused.json()["message"].replace(",", "").split())


def test_another_participant_neither_sees_nor_answers(api: Api) -> None:
    connect_ccb(api)
    collect(api)
    for who in ("ICBC", "ABC"):  # the payee's bank too: the receipt is the payer bank's
        own = answer(api, who, answer="accept")
        assert own.status_code == 404 and own.json()["reason"] == "unknown_request"
        assert "321.50" not in own.text
        mine = api.get(f"/v1/participants/{who}/beps/receipts", who)
        assert mine.status_code == 200 and mine.json()["pending"] == []
        theirs = api.post(f"{R}/answers", who, json={"ref": REF, "answer": "accept"})
        assert theirs.status_code == 403
        assert api.get(R, who).status_code == 403
    assert payment(api)["status"] == "awaiting_confirmation"
    # the operator reads CCB's requests but gives no receipt for it
    assert api.get(R, OPERATOR).json()["pending"][0]["ref"] == REF
    assert api.post(f"{R}/answers", OPERATOR,
                    json={"ref": REF, "answer": "accept"}).status_code == 403


def test_an_ibps_answer_route_does_not_give_a_beps_receipt(api: Api) -> None:
    connect_ccb(api)
    collect(api)
    wrong = api.post("/v1/participants/CCB/ibps/confirmations/answers", "CCB",
                     json={"ref": REF, "answer": "accept"})
    assert wrong.status_code == 404 and wrong.json()["reason"] == "unknown_request"
    assert payment(api)["status"] == "awaiting_confirmation"


def test_not_connected_the_simulated_bank_answers_at_once(api: Api) -> None:
    connect_ccb(api)
    connect_ccb(api, connected=False)
    assert api.get(R, "CCB").json()["connected"] is False
    payer = balance(api, "CCB", "ccb1")
    assert collect(api) == ("ACSP", None)
    assert payment(api)["status"] == "credited"
    assert position(api, "CCB") == -32_150
    assert balance(api, "CCB", "ccb1") == payer - 32_150
    # the simulated bank refuses what the account cannot pay, at once
    assert collect(api, 10**12, "DD2") == ("RJCT", "AM04")


def test_the_request_reaches_the_webhook(sandbox: tuple[Api, Deliverer],
                                         receiver: Receiver) -> None:
    hub_api, deliverer = sandbox
    connect(hub_api, "CCB", f"{receiver.url}/CCB")
    connect_ccb(hub_api)
    collect(hub_api)
    drain(deliverer)
    (got,) = receiver.on("/CCB")
    notice = got.doc["notice"]
    assert notice["event"] == "receipt_request" and notice["system"] == "BEPS"
    assert notice["ref"] == REF and notice["detail"] == DEADLINE
    assert answer(hub_api, answer="accept").json()["status"] == "netted"
    drain(deliverer)
    assert [r.doc["notice"]["event"] for r in receiver.on("/CCB")] == [
        "receipt_request", "netted"]

