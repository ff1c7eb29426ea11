"""IBPS confirmations over HTTP (routes_confirm.py, docs/SERVER.md): a participant connects
itself (or the operator connects it), sees the IBPS items waiting for its answer, accepts
or rejects each with a reason within the timeout; a late answer is a 409; another
participant can neither see nor answer them; the request reaches its webhook."""

from __future__ import annotations

from typing import Any

import pytest
import test_http_api
import test_http_callbacks
from test_http_api import CCB, CCB1, ICBC1, Api, order
from test_http_callbacks import Receiver, connect, drain

from qingsuan.server.http.auth import OPERATOR
from qingsuan.server.http.delivery import Deliverer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: the sandbox (test_http_api), and a webhook receiver with its sandbox (test_http_callbacks)
api = pytest.fixture(test_http_api.api.__wrapped__)  # type: ignore[attr-defined]
receiver = pytest.fixture(test_http_callbacks.receiver.__wrapped__)  # type: ignore[attr-defined]
sandbox = pytest.fixture(test_http_callbacks.sandbox.__wrapped__)  # type: ignore[attr-defined]

C = "/v1/participants/CCB/ibps/confirmations"
REF = "ICBC/API/T1"


def ibps(api: Api, tx: str = "T1", amount: str = "1234.50") -> dict[str, Any]:
    """ICBC's customer pays CCB's through IBPS."""
    answer = api.transfer(id=tx, system="IBPS", amount=amount,
                          creditor={"bank": CCB, "account": CCB1, "name": "Holder CCB 1"})
    assert answer.status_code == 201, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def connect_ccb(api: Api, who: str = "CCB", connected: bool = True) -> dict[str, Any]:
    path = C if who == "CCB" else "/v1/operator/participants/CCB/ibps/confirmations"
    answer = api.client.put(path, headers=api.h(who), json={"connected": connected})
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def answer(api: Api, who: str = "CCB", **body: Any) -> Any:
    return api.post(f"/v1/participants/{who}/ibps/confirmations/answers", who,
                    json={"ref": REF, **body})


def balance(api: Api, bank: str, customer: str) -> int:
    """What the customer may spend at its bank (reservations deducted), in fen."""
    engine = api.core.engine
    return engine.ledger.balance(engine.registry.id(bank, f"customer:{customer}")).available_fen


def payment(api: Api, tx: str = "T1") -> dict[str, Any]:
    doc: dict[str, Any] = api.get(f"/v1/participants/ICBC/payments/API/{tx}").json()
    return doc


def test_connected_bank_sees_and_accepts_its_request(api: Api) -> None:
    doc = connect_ccb(api)
    assert doc == {"participant": "CCB", "connected": True, "timeout_ms": 30000,
                   "pending": []}
    sent = ibps(api)
    assert sent["status"] == "accepted"  # waiting for CCB: not yet credited
    pending = api.get(C, "CCB").json()["pending"]
    assert [(p["ref"], p["from"], p["amount"], p["payee_account"], p["answer_by"])
            for p in pending] == [(REF, "ICBC", "1234.50", CCB1, "2026-11-26T10:00:30+08:00")]
    # the request is in CCB's inbox
    notes = api.get("/v1/participants/CCB/notices", "CCB").json()["notices"]
    assert [n["event"] for n in notes if n["ref"] == REF] == ["confirm_request"]
    done = answer(api, answer="accept")
    assert done.status_code == 200, done.text
    assert done.json() == {"ref": REF, "status": "netted", "reason": None}
    assert payment(api)["status"] == "credited"
    assert api.get(C, "CCB").json()["pending"] == []
    # answered: a second answer is refused, nothing changes
    again = answer(api, answer="reject", code="AC04")
    assert again.status_code == 409 and again.json()["reason"] == "not_awaiting"
    assert payment(api)["status"] == "credited"


def test_rejection_with_a_reason_gives_the_payer_its_money_back(api: Api) -> None:
    before = balance(api, "ICBC", "icbc1")
    connect_ccb(api, OPERATOR)  # the operator connects it
    ibps(api)
    assert balance(api, "ICBC", "icbc1") == before - 123_450  # reserved meanwhile
    done = answer(api, answer="reject", code="AC04", message="account closed")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected" and done.json()["reason"]["code"] == "AC04"
    paid = payment(api)
    assert paid["status"] == "rejected" and paid["reason"]["code"] == "AC04"
    assert balance(api, "ICBC", "icbc1") == before


def test_no_answer_rejects_ab05_and_a_late_answer_is_a_409(api: Api) -> None:
    connect_ccb(api)
    ibps(api)
    assert api.clock(at="2026-11-26T10:00:29").status_code == 200
    assert payment(api)["status"] == "accepted"  # not before the deadline
    assert api.clock(at="2026-11-26T10:00:30").status_code == 200
    paid = payment(api)
    assert paid["status"] == "rejected" and paid["reason"]["code"] == "AB05"
    late = answer(api, answer="accept")
    assert late.status_code == 409, late.text
    assert late.json()["reason"] == "too_late" and late.json()["field"] == "ref"
    assert payment(api)["status"] == "rejected"


def test_bad_answers_are_refused_naming_the_field(api: Api) -> None:
    connect_ccb(api)
    ibps(api)
    seq = api.core.engine.applied_seq
    for body, field in (({"answer": "reject"}, "code"),
                        ({"answer": "reject", "code": "AM05"}, "code"),
                        ({"answer": "accept", "code": "AC01"}, "code"),
                        ({"answer": "maybe"}, "answer"),
                        ({"answer": "accept", "ref": "ICBC/API/NOPE"}, "ref")):
        refused = answer(api, **body)
        assert 400 <= refused.status_code < 500, refused.text
        assert field in str(refused.json()["field"]), refused.json()
    assert api.core.engine.applied_seq == seq
    assert api.get(C, "CCB").json()["pending"][0]["ref"] == REF


def test_another_participant_neither_sees_nor_answers(api: Api) -> None:
    connect_ccb(api)
    ibps(api)
    for who in ("ICBC", "ABC"):  # the payer too: the answer is the receiver's
        own = answer(api, who, answer="accept")
        assert own.status_code == 404 and own.json()["reason"] == "unknown_request"
        assert api.get(f"/v1/participants/{who}/ibps/confirmations", who).json()[
            "pending"] == []
        theirs = api.post(f"{C}/answers", who, json={"ref": REF, "answer": "accept"})
        assert theirs.status_code == 403
        assert api.get(C, who).status_code == 403
    assert payment(api)["status"] == "accepted"


def test_disconnected_the_simulated_bank_answers(api: Api) -> None:
    connect_ccb(api)
    assert connect_ccb(api, connected=False)["connected"] is False
    assert ibps(api)["status"] == "credited"


def test_the_request_reaches_the_webhook(sandbox: tuple[Api, Deliverer],
                                         receiver: Receiver) -> None:
    hub_api, deliverer = sandbox
    connect(hub_api, "CCB", f"{receiver.url}/CCB")
    connect_ccb(hub_api)
    ibps(hub_api)
    drain(deliverer)
    (got,) = receiver.on("/CCB")
    notice = got.doc["notice"]
    assert notice["event"] == "confirm_request" and notice["system"] == "IBPS"
    assert notice["ref"] == REF and notice["detail"] == "2026-11-26T10:00:30+08:00"
    assert answer(hub_api, answer="accept").json()["status"] == "netted"
    drain(deliverer)
    assert [r.doc["notice"]["event"] for r in receiver.on("/CCB")] == [
        "confirm_request", "incoming"]


def test_order_helper_is_the_apis(api: Api) -> None:
    # (the transfers above are the API's own JSON order, from ICBC's customer)
    assert order()["debtor_account"] == ICBC1
