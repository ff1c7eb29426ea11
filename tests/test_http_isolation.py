"""A participant sees and acts on its own payments, statements and positions only: for
every route, another participant's key gets 403 or 404, never the data (and a new route
without a row here fails the coverage test). API keys are kept only as hashes."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_http_api import CCB, CCB1, ICBC, NAMES, Api, open_api, order, pacs008

from qingsuan.server.http import KeyRing
from qingsuan.server.http.auth import OPERATOR, hash_key, key_file_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

P = "/v1/participants/{participant}"
#: every route a participant's key may use, with what it needs: (method, path, body)
PARTICIPANT_ROUTES: list[tuple[str, str, str]] = [
    ("POST", f"{P}/messages", "xml"),
    ("POST", f"{P}/transfers", "json"),
    ("POST", f"{P}/institution-transfers", "institution"),
    ("POST", f"{P}/direct-debits", "debit"),
    ("POST", f"{P}/returns", "return"),
    ("POST", f"{P}/reports", "report"),
    ("GET", f"{P}/payments/{{msg_id}}/{{tx_id}}", ""),
    ("POST", f"{P}/payments/{{msg_id}}/{{tx_id}}/cancel", "cancel"),
    ("GET", f"{P}/statements/{{date}}", ""),
    ("GET", f"{P}/reports/intraday", ""),
    ("GET", f"{P}/positions", ""),
    ("GET", f"{P}/notices", ""),
    ("GET", f"{P}/inquiries/account", "inquiry"),
    ("GET", f"{P}/inquiries/balance", "inquiry"),
    ("POST", f"{P}/consents", "consent"),
    ("PUT", f"{P}/callback", "callback"),
    ("GET", f"{P}/callback", ""),
    ("DELETE", f"{P}/callback", "disconnect"),
    ("POST", f"{P}/transfer-batches", "batch"),
    ("GET", f"{P}/transfer-batches/{{batch_id}}", ""),
    ("GET", f"{P}/transfer-batches/{{batch_id}}/items", ""),
    ("GET", f"{P}/ibps/confirmations", ""),
    ("PUT", f"{P}/ibps/confirmations", "confirm_connect"),
    ("POST", f"{P}/ibps/confirmations/answers", "confirm_answer"),
    ("GET", f"{P}/beps/receipts", ""),
    ("POST", f"{P}/beps/receipts/answers", "confirm_answer"),
]
#: a CSV batch of ICBC's customer paying CCB's (routes_batch.py)
BATCH_CSV = ("debtor_account,creditor_bank,creditor_account,creditor_name,amount\n"
             "9222020000000010017,CCB,9217000000000010011,Holder CCB 1,1.00\n")
HOOK = {"url": "http://127.0.0.1:9/hook"}  # (never called: no delivery is stepped here)
OPERATOR_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/operator/clock", None),
    ("POST", "/v1/operator/clock", {"advance": "1h"}),
    ("POST", "/v1/operator/tick", None),
    ("GET", "/v1/operator/stream", None),  # (the dashboard's feed: every participant's)
    ("POST", "/v1/operator/participants/{participant}/pledge", {"value": "1.00"}),
    ("POST", "/v1/operator/participants/{participant}/release", {"value": "1.00"}),
    ("GET", "/v1/operator/params", None),
    ("POST", "/v1/operator/participants/{participant}/status", {"status": "active"}),
    ("POST", "/v1/operator/params", {"params": {"hvps.lsm_interval_minutes": "15"}}),
    ("POST", "/v1/operator/participants", {"name": "NEWB", "code": "313100000013",
                                           "settlement_balance": "1000.00"}),
    ("POST", "/v1/operator/sessions", {"system": "BEPS"}),
    ("POST", "/v1/operator/end-of-day", None),
    ("PUT", "/v1/operator/participants/{participant}/callback", HOOK),
    ("DELETE", "/v1/operator/participants/{participant}/callback", None),
    ("PUT", "/v1/operator/participants/{participant}/ibps/confirmations",
     {"connected": False}),
]
#: routes whose answer is the same for every key (or needs none): nobody's data
PUBLIC_ROUTES = {("GET", "/v1/health"), ("GET", "/v1/me"), ("GET", "/v1/participants"),
                 ("GET", "/metrics"), ("GET", "/dashboard")}  # (the page holds no data)
#: the consumer app's routes (routes_app.py): they take a user's app key, never a
#: participant's (test below); that a user sees only their own cards, codes, vouchers and
#: statements is tested user against user in test_http_app_api.py (its wallet, top-ups,
#: withdrawals and transit rides in test_http_app_money.py)
APP_ROUTES: list[tuple[str, str]] = [
    ("GET", "/v1/app/me"), ("GET", "/v1/app/cards"), ("POST", "/v1/app/cards"),
    ("POST", "/v1/app/codes"), ("GET", "/v1/app/codes/{code_id}"),
    ("GET", "/v1/app/codes/{code_id}/qr.png"), ("GET", "/v1/app/codes/{code_id}/qr.svg"),
    ("POST", "/v1/app/payments"), ("GET", "/v1/app/vouchers"), ("POST", "/v1/app/vouchers"),
    ("GET", "/v1/app/statements"), ("POST", "/v1/app/repayments"),
    ("GET", "/v1/app/wallet"), ("POST", "/v1/app/top-ups"), ("POST", "/v1/app/withdrawals"),
    ("GET", "/v1/app/transit"), ("POST", "/v1/app/transit/rides")]
#: logging in (a phone and its key) and the app's page (it holds no data)
APP_PUBLIC = {("POST", "/v1/app/login"), ("GET", "/app")}


@pytest.fixture
def world() -> Iterator[Api]:
    """ICBC has sent a JSON transfer, a pacs.008 and has a closed day; so has CCB."""
    ring, keys = KeyRing.for_world(NAMES)
    client, core = open_api(f"memory://{uuid.uuid4().hex}", ring)
    api = Api(client, core, keys)
    try:
        assert api.transfer(urgent=True).status_code == 201
        assert api.xml(pacs008()).status_code == 200
        assert api.post("/v1/participants/CCB/transfers", "CCB", json=order(
            id="C1", debtor_account=CCB1, creditor={"bank": "ICBC", "account":
                                                    "9222020000000010025",
                                                    "name": "Holder ICBC 2"})).status_code == 201
        batch = api.post("/v1/participants/ICBC/transfer-batches", content=BATCH_CSV,
                         headers={"content-type": "text/csv"})
        assert batch.status_code == 201, batch.text
        api.batch_id = batch.json()["id"]  # type: ignore[attr-defined]
        assert api.clock(at="2026-11-26T20:00").status_code == 200
        yield api
    finally:
        core.close()


def _call(api: Api, who: str, method: str, template: str, body: str, participant: str,
          msg_id: str = "API", tx_id: str = "T1") -> Any:
    path = template.format(participant=participant, msg_id=msg_id, tx_id=tx_id,
                           date="2026-11-26", batch_id=getattr(api, "batch_id", "B1"))
    if body == "xml":
        return api.post(path, who, content=pacs008("OTHERM", "OTHERT"),
                        headers={"content-type": "application/xml"})
    if body == "json":
        return api.post(path, who, json=order(id="OTHER"))
    if body == "cancel":
        return api.post(path, who)
    if body == "institution":
        return api.post(path, who, json={"id": "OTHER", "creditor_bank": "ABC",
                                         "amount": "1.00"})
    if body == "debit":  # ICBC's customer collects from CCB's
        return api.post(path, who, json={
            "id": "OTHER", "debtor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"},
            "creditor": {"account": "9222020000000010017", "name": "Holder ICBC 1"},
            "amount": "1.00"})
    if body == "return":  # ICBC gives back CCB's transfer C1, netted in BEPS
        return api.post(path, who, json={
            "id": "OTHER", "payment": {"sender": "CCB", "msg_id": "API", "tx_id": "C1"},
            "amount": "1234.50", "reason": "AC04"})
    if body == "report":
        return api.post(path, who, json={"message": "camt.053", "date": "2026-11-26"})
    if body == "inquiry":
        return api.get(path, who, params={"bank": "ICBC", "account": "9222020000000010017"})
    if body == "consent":
        return api.post(path, who, json={"account": "9222020000000010017", "asker": "ABC"})
    if body == "batch":
        return api.post(path, who, content=BATCH_CSV, headers={"content-type": "text/csv"})
    if body == "callback":
        return api.client.put(path, headers=api.h(who), json=HOOK)
    if body == "disconnect":
        return api.client.delete(path, headers=api.h(who))
    if body == "confirm_connect":
        return api.client.put(path, headers=api.h(who), json={"connected": True})
    if body == "confirm_answer":  # ICBC's own transfer (to CCB, by HVPS): asked of nobody
        # (neither an IBPS confirmation nor a BEPS debit receipt)
        return api.post(path, who, json={"ref": "ICBC/API/T1", "answer": "accept"})
    return api.get(path, who)


@pytest.mark.parametrize(("method", "template", "body"), PARTICIPANT_ROUTES)
def test_another_participants_key_is_refused_on_every_route(
        world: Api, method: str, template: str, body: str) -> None:
    seq = world.core.engine.applied_seq
    for target in ("ICBC", "NOSUCHBANK"):  # an unknown one alike: a key learns nothing
        answer = _call(world, "CCB", method, template, body, target)
        assert answer.status_code == 403, (target, answer.text)
        doc = answer.json()
        assert set(doc) == {"reason", "field", "message"} and doc["reason"] == "not_yours"
        assert ICBC not in answer.text and "T1" not in answer.text
    assert world.core.engine.applied_seq == seq  # nothing was sent in ICBC's name


@pytest.mark.parametrize(("method", "template", "body"), PARTICIPANT_ROUTES)
def test_own_key_on_own_path_sees_only_its_own(world: Api, method: str, template: str,
                                               body: str) -> None:
    answer = _call(world, "CCB", method, template, body, "CCB")
    if template.endswith("/cancel"):  # ICBC's payment on CCB's path: no such payment
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown_payment"
        mine = _call(world, "CCB", method, template, body, "CCB", "API", "C1")
        assert mine.status_code == 409  # CCB's own: netted already, nothing to cancel
        return
    if "payments" in template:  # ICBC's payment ids on CCB's own path: not found
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown_payment"
        theirs = _call(world, "CCB", method, template, body, "CCB", "ICBCM1", "ICBCT1")
        assert theirs.status_code == 404
        mine = _call(world, "CCB", method, template, body, "CCB", "API", "C1")
        assert mine.status_code == 200 and mine.json()["tx_id"] == "C1"
        return
    if body == "inquiry":  # CCB asks about ICBC's customer: exists; no consent, no balance
        assert answer.status_code == 200 and "balance\"" not in answer.text
        return
    if body == "institution":  # CCB's own payment (refused: HVPS has closed for the day)
        assert answer.status_code == 422 and answer.json()["payment"]["system"] == "HVPS"
        assert answer.json()["payment"]["tx_id"] == "OTHER" and "ICBC" not in answer.text
        return
    if body == "debit":  # CCB collects for an account that is ICBC's: not its customer
        assert answer.status_code == 422 and answer.json()["reason"] == "unknown_account"
        return
    if body == "return":  # CCB cannot return its own payment: it received no C1
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown_payment"
        assert "1234.50" not in answer.text
        return
    if body == "consent":  # CCB cannot consent for ICBC's customer
        assert answer.status_code == 422 and answer.json()["reason"] == "unknown_account"
        return
    if body == "xml":  # CCB's hub sends a message in its own name: ICBC's agent refused
        assert answer.status_code == 200 and b"RC01" in answer.content
        return
    if body == "batch":  # CCB's batch pays from an ICBC account: refused, nothing booked
        assert answer.status_code == 422 and answer.json()["reason"] == "unknown_account"
        assert answer.json()["line"] == 2
        return
    if "transfer-batches/" in template:  # ICBC's batch id on CCB's own path: not found
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown_batch"
        assert "Holder" not in answer.text
        return
    if body == "json":  # CCB's hub pays from an ICBC account: not its customer
        assert answer.status_code == 422 and answer.json()["reason"] == "unknown_account"
        return
    if body == "callback":  # CCB connects itself: its own secret
        assert answer.status_code == 200 and answer.json()["participant"] == "CCB"
        assert answer.json()["secret"] and ICBC not in answer.text
        return
    if body == "disconnect":  # CCB was not connected
        assert answer.status_code == 404 and answer.json()["reason"] == "not_connected"
        return
    if body == "confirm_answer":  # ICBC's payment was never CCB's to confirm: no data
        assert answer.status_code == 404 and answer.json()["reason"] == "unknown_request"
        assert "Holder" not in answer.text and "amount" not in answer.text
        return
    assert answer.status_code == 200, answer.text
    if template.endswith("/notices"):  # ICBC's payments only as they reach CCB
        notes = answer.json()["notices"]
        assert notes and all((n["ref"] and n["ref"].startswith("CCB/")) or
                             n["event"] in ("credited", "incoming") for n in notes), notes
        return
    if template.endswith("/callback"):  # CCB's own (not connected), nothing of ICBC's
        assert answer.json() == {"participant": "CCB", "connected": False}
        return
    if template.endswith(("/ibps/confirmations", "/beps/receipts")):  # CCB's own requests
        doc = answer.json()
        assert doc["participant"] == "CCB" and doc["pending"] == []
        assert "ICBC" not in answer.text
        return
    assert CCB in answer.text and ICBC not in answer.text  # CCB's account, not ICBC's


@pytest.mark.parametrize(("method", "path", "body"), OPERATOR_ROUTES)
def test_operator_routes_refuse_participants(world: Api, method: str, path: str,
                                             body: Any) -> None:
    params = {"count": 1} if path.endswith("/stream") else None
    path = path.format(participant="ICBC")
    if path.endswith("/release"):  # (something pledged to release)
        assert world.post("/v1/operator/participants/ICBC/pledge", OPERATOR,
                          json={"value": "1.00"}).status_code == 200
    if method == "DELETE":  # (something to disconnect)
        assert world.client.put(path, headers=world.h(OPERATOR), json=HOOK).status_code == 200
    for who in NAMES:
        answer = world.client.request(method, path, headers=world.h(who), json=body,
                                      params=params)
        assert answer.status_code == 403 and answer.json()["reason"] == "operator_only"
        assert "balance" not in answer.text
    answer = world.client.request(method, path, headers=world.h(OPERATOR), json=body,
                                  params=params)
    if path.endswith(("/sessions", "/end-of-day")):  # (at 20:00 HVPS is closed: 409)
        assert answer.json()["reason"] == "hvps_closed", answer.text
    else:
        assert answer.status_code in (200, 201), answer.text  # (201: a participant added)


def test_operator_reads_but_never_acts_for_a_participant(world: Api) -> None:
    for method, template, body in PARTICIPANT_ROUTES:
        answer = _call(world, OPERATOR, method, template, body, "ICBC")
        if body:  # (the routes that act: sending, cancelling, asking as a bank)
            assert answer.status_code == 403, template
            assert answer.json()["reason"] == "participant_only"
        else:
            assert answer.status_code == 200, (template, answer.text)


def test_every_route_has_an_isolation_test(world: Api) -> None:
    tested = {(m, p) for m, p, _ in PARTICIPANT_ROUTES} | \
        {(m, p) for m, p, _ in OPERATOR_ROUTES} | PUBLIC_ROUTES | set(APP_ROUTES) | APP_PUBLIC
    # (the OpenAPI's paths: FastAPI 0.165 keeps an included router's routes inside it, so
    # app.routes no longer lists them)
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert ("GET", f"{P}/positions") in routes and len(routes) >= len(tested) - 2
    assert routes - tested == set()


def test_me_and_directory_show_no_ones_payments(world: Api) -> None:
    me = world.get("/v1/me", "CCB").json()
    assert me == {"operator": False, "participant": "CCB", "code": CCB,
                  "kind": "direct_bank"}
    directory = world.get("/v1/participants", "CCB").text
    assert "T1" not in directory and "balance" not in directory


# ---------------------------------------------------------------------- the key file


def test_keys_are_kept_only_as_hashes_in_a_private_file(tmp_path: Path) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    assert set(keys) == {*NAMES, OPERATOR} and len(set(keys.values())) == len(keys)
    path = tmp_path / "s.db.apikeys"
    ring.save(path)
    text = path.read_text()
    assert all(key not in text for key in keys.values())
    assert json.loads(text)["sha256"]["ICBC"] == hash_key(keys["ICBC"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = KeyRing.load(path)
    assert again.who(keys["ICBC"]).name == "ICBC"  # type: ignore[union-attr]
    assert again.who(keys["ICBC"] + "x") is None and again.who("") is None
    assert again.missing([*NAMES, "NEWBANK"]) == ["NEWBANK"]
    new = again.issue(["NEWBANK"])
    assert again.who(new["NEWBANK"]).name == "NEWBANK"  # type: ignore[union-attr]
    assert key_file_of(f"sqlite:///{tmp_path}/s.db") == path
    assert key_file_of("memory://x") is None and key_file_of("postgresql://h/db") is None
    path.write_text("{}")
    with pytest.raises(ValueError, match="cannot be read"):
        KeyRing.load(path)


def test_sandbox_keys_are_the_documented_ones() -> None:
    ring, keys = KeyRing.for_world(["ICBC"], sandbox=True)
    assert keys == {"ICBC": "sandbox-ICBC", OPERATOR: "sandbox-operator"}
    assert ring.who("sandbox-ICBC").name == "ICBC"  # type: ignore[union-attr]
    assert ring.who("sandbox-operator").operator  # type: ignore[union-attr]


def test_a_key_of_a_participant_this_world_lacks_sees_nothing() -> None:
    ring, keys = KeyRing.for_world([*NAMES, "GHOST"])
    client, core = open_api(f"memory://{uuid.uuid4().hex}", ring)
    api = Api(client, core, keys)
    try:
        me = api.get("/v1/me", "GHOST")
        assert me.status_code == 403 and me.json()["reason"] == "unknown_participant"
        for path in ("/v1/participants/GHOST/positions", "/v1/participants/GHOST/transfers"):
            answer = api.get(path, "GHOST") if "positions" in path else \
                api.post(path, "GHOST", json=order())
            assert answer.status_code == 404 and answer.json()["reason"] == \
                "unknown_participant"
    finally:
        core.close()


@pytest.mark.parametrize(("method", "path"), APP_ROUTES)
def test_app_routes_take_no_participants_or_operators_key(world: Api, method: str,
                                                         path: str) -> None:
    seq = world.core.engine.applied_seq
    body = {"card_id": "x", "card": "x", "from_card": "x", "amount": "1.00",
            "campaign": "x", "name": "x", "terminal": "POS00001"}
    for who in [*NAMES, OPERATOR]:
        answer = world.client.request(method, path.format(code_id="C1"), headers=world.h(who),
                                      json=body if method == "POST" else None)
        assert answer.status_code == 401 and answer.json()["reason"] == "bad_key", answer.text
    assert world.core.engine.applied_seq == seq
