"""The HTTP API's contract (server/http/, docs/SERVER.md): every route, its answers and
its refusals (each a clear 4xx with a reason, never a 5xx), the clock, and a restart."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # (starlette's TestClient would like httpx2)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from qingsuan.clock import BEIJING, from_datetime
from qingsuan.engine import replay
from qingsuan.messages import (
    PACS009,
    CancelRequest,
    CreditTransfer,
    StatusRequest,
    build_camt056,
    build_pacs008,
    build_pacs009,
    build_pacs028,
    parse_camt029,
    parse_camt052,
    parse_camt053,
    parse_pacs002,
)
from qingsuan.server.http import KeyRing, SandboxClock, SandboxCore, create_app
from qingsuan.sim.scenario import load_scenario
from qingsuan.world import world_systems

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SANDBOX = load_scenario(Path(str(resources.files("qingsuan") / "scenarios" /
                                 "card-sandbox.yaml")))
NAMES = [p.name for p in SANDBOX.participants]
ICBC, CCB = "102100099996", "105100000017"
ICBC1, ICBC2, CCB1 = "9222020000000010017", "9222020000000010025", "9217000000000010011"
DAY = dt.date(2026, 11, 26)  # a Thursday: HVPS open from 08:30 to 17:15
START = from_datetime(dt.datetime(2026, 11, 26, 10, 0))


@dataclass
class Api:
    client: TestClient
    core: SandboxCore
    keys: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def get(self, path: str, who: str = "ICBC", **kw: Any) -> Any:
        return self.client.get(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def post(self, path: str, who: str = "ICBC", **kw: Any) -> Any:
        return self.client.post(path, headers={**self.h(who), **kw.pop("headers", {})}, **kw)

    def transfer(self, who: str = "ICBC", **fields: Any) -> Any:
        return self.post(f"/v1/participants/{who}/transfers", who, json=order(**fields))

    def xml(self, xml: bytes, who: str = "ICBC", **headers: str) -> Any:
        return self.post(f"/v1/participants/{who}/messages", who, content=xml,
                         headers={"content-type": "application/xml", **headers})

    def clock(self, **change: Any) -> Any:
        return self.post("/v1/operator/clock", "operator", json=change)


def open_api(store: str, keys: KeyRing, clock: SandboxClock | None = None) -> tuple[
        TestClient, SandboxCore]:
    core = SandboxCore(SANDBOX, store, clock or SandboxClock("virtual", START))
    return TestClient(create_app(core, keys), raise_server_exceptions=False), core


@contextlib.contextmanager
def sandbox_api() -> Iterator[Api]:
    """The sandbox world on a fresh memory store, its documented keys, a client."""
    ring, keys = KeyRing.for_world(NAMES)
    client, core = open_api(f"memory://{uuid.uuid4().hex}", ring)
    try:
        yield Api(client, core, keys)
    finally:
        core.close()


@pytest.fixture
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def order(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": "T1", "debtor_account": ICBC1,
                           "creditor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"},
                           "amount": "1234.50"}
    doc.update(fields)
    return doc


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), BEIJING)


def pacs008(msg_id: str = "ICBCM1", tx_id: str = "ICBCT1", amount_fen: int = 123_456,
            debtor_agent: str = ICBC) -> bytes:
    return build_pacs008(CreditTransfer(
        msg_id=msg_id, created_at=at(10), end_to_end_id="E2E-1", tx_id=tx_id, system="HVPS",
        kind="customer", priority="normal", amount_fen=amount_fen, settlement_date=DAY,
        debtor_agent_code=debtor_agent, creditor_agent_code=CCB, debtor_name="Holder ICBC 1",
        debtor_account=ICBC1, creditor_name="Holder CCB 1", creditor_account=CCB1))


def pacs009(amount_fen: int, msg_id: str = "ICBCM9", tx_id: str = "ICBCT9") -> bytes:
    return build_pacs009(CreditTransfer(
        msg_id=msg_id, created_at=at(10), end_to_end_id="LOAN-1", tx_id=tx_id, system="HVPS",
        kind="institution", priority="urgent", amount_fen=amount_fen, settlement_date=DAY,
        debtor_agent_code=ICBC, creditor_agent_code=CCB))


def assert_refusal(response: Any, status: int, reason: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["reason"] == reason, body
    assert body["message"]
    if field is not None:
        assert body["field"] == field, body


# ---------------------------------------------------------------------- JSON transfers


def test_json_transfer_is_booked_routed_and_followed(api: Api) -> None:
    answer = api.transfer()
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["payment_id"] == "API/T1" and doc["system"] == "BEPS"
    assert doc["status"] == "credited" and doc["iso_status"] == "ACSP"
    assert "BEPS" in doc["route"]
    status = api.get("/v1/participants/ICBC/payments/API/T1")
    assert status.status_code == 200 and status.json()["status"] == "credited"
    # urgent at the counter while HVPS is open: HVPS, settled at once
    urgent = api.transfer(id="T2", urgent=True).json()
    assert urgent["system"] == "HVPS" and urgent["iso_status"] == "ACSC"
    # both accounts at ICBC: booked within the bank (行内)
    book = api.transfer(id="T3", creditor={"bank": "ICBC", "account": ICBC2,
                                           "name": "Holder ICBC 2"}).json()
    assert book["system"] == "BOOK" and book["status"] == "credited"
    # the hub names the system (as a pacs.008 would), by bank code
    hub = api.transfer(id="T4", system="IBPS", creditor={"bank": CCB, "account": CCB1,
                                                         "name": "Holder CCB 1"})
    assert hub.status_code == 201 and hub.json()["system"] == "IBPS", hub.text


@pytest.mark.parametrize(("amount", "reason"), [
    ("1234.567", "amount_precision"), ("0.001", "amount_precision"),
    ("-5.00", "amount_negative"), ("-0.001", "amount_negative"), ("0", "amount_zero"),
    ("0.00", "amount_zero"), ("10000000000000.01", "amount_too_large"),
    ("1e3", "invalid_amount"), ("1,000.00", "invalid_amount"), ("", "invalid_amount"),
    (12.5, "invalid_amount"), (100, "invalid_amount"), (None, "invalid_amount")])
def test_json_amounts_are_refused_with_their_reason(api: Api, amount: Any, reason: str
                                                    ) -> None:
    answer = api.transfer(amount=amount)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["field"] == "amount" and body["reason"] in (reason, "invalid_type"), body
    assert api.get("/v1/participants/ICBC/payments/API/T1").status_code == 404


@pytest.mark.parametrize(("fields", "status", "reason", "field"), [
    ({"debtor_account": "9999999999"}, 422, "unknown_account", "debtor_account"),
    ({"debtor_account": CCB1}, 422, "unknown_account", "debtor_account"),  # CCB's, not ours
    ({"debtor_account": "12ab"}, 422, "invalid_account", "debtor_account"),
    ({"creditor": {"bank": "NOPE", "account": CCB1, "name": "x"}}, 422, "unknown_participant",
     "creditor.bank"),
    ({"creditor": {"bank": "999999999999", "account": CCB1, "name": "x"}}, 422,
     "unknown_participant", "creditor.bank"),
    ({"creditor": {"bank": "CCB", "account": "1", "name": "x"}}, 422, "invalid_account",
     "creditor.account"),
    ({"creditor": {"bank": "CCB", "account": CCB1, "name": ""}}, 422, "invalid_name",
     "creditor.name"),
    ({"creditor": {"bank": "ICBC", "account": ICBC1, "name": "me"}}, 422, "same_account",
     "creditor.account"),
    ({"id": "has/slash"}, 422, "invalid_id", "id"), ({"id": ""}, 422, "invalid_id", "id"),
    ({"id": "x" * 36}, 422, "invalid_id", "id"),
    ({"channel": "fax"}, 422, "invalid_field", "channel"),
    ({"system": "SWIFT"}, 422, "invalid_field", "system"),
    ({"urgent": "very"}, 422, "invalid_type", "urgent"),
    ({"extra": 1}, 422, "unknown_field", "extra"),
    ({"creditor": "CCB"}, 422, "invalid_type", "creditor"),
])
def test_json_transfer_refusals(api: Api, fields: dict[str, Any], status: int, reason: str,
                                field: str) -> None:
    seq = api.core.engine.applied_seq
    answer = api.transfer(**fields)
    assert_refusal(answer, status, reason if reason != "invalid_type" else
                   answer.json().get("reason"), field)
    assert answer.json()["reason"] in (reason, "invalid_field", "invalid_type")
    assert api.core.engine.applied_seq == seq  # refused at the edge: nothing logged


def test_json_body_that_is_not_json_or_missing(api: Api) -> None:
    path = "/v1/participants/ICBC/transfers"
    assert_refusal(api.post(path, content=b"{not json", headers={
        "content-type": "application/json"}), 400, "invalid_json")
    assert api.post(path).status_code in (400, 422)
    missing = api.post(path, json={"id": "T9"})
    assert_refusal(missing, 422, "missing_field")


def test_duplicate_id_is_a_conflict_and_changes_nothing(api: Api) -> None:
    assert api.transfer().status_code == 201
    seq = api.core.engine.applied_seq
    assert_refusal(api.transfer(amount="1.00"), 409, "duplicate", "id")
    assert api.core.engine.applied_seq == seq


def test_bank_refusals_are_422_with_the_iso_reason_and_the_recorded_payment(api: Api
                                                                            ) -> None:
    # mobile urgent goes through IBPS, whose item limit is 50,000.00: the bank refuses
    above = api.transfer(id="BIG", amount="60000.00", channel="mobile", urgent=True)
    assert_refusal(above, 422, "AM02", "amount")
    assert above.json()["payment"]["status"] == "rejected"
    # more than the customer holds (100,000,000.00): insufficient funds
    short = api.transfer(id="POOR", amount="200000000.00", urgent=True)
    assert_refusal(short, 422, "AM04")
    # both were recorded: their status is there to read
    assert api.get("/v1/participants/ICBC/payments/API/POOR").json()["status"] == "rejected"


# ---------------------------------------------------------------------- ISO 20022


def test_pacs008_is_answered_with_pacs002(api: Api) -> None:
    answer = api.xml(pacs008())
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/xml")
    (report,) = parse_pacs002(answer.content)
    assert report.status == "ACSC" and report.original_tx_id == "ICBCT1"
    status = api.get("/v1/participants/ICBC/payments/ICBCM1/ICBCT1").json()
    assert status["system"] == "HVPS" and status["iso_status"] == "ACSC"
    # sent again: a transaction-level refusal, in the pacs.002 (200)
    (again,) = parse_pacs002(api.xml(pacs008()).content)
    assert again.status == "RJCT" and again.reason_code == "AM05"


def test_pacs002_rejects_a_transaction_of_another_agent_with_200(api: Api) -> None:
    (report,) = parse_pacs002(api.xml(pacs008(debtor_agent=CCB)).content)
    assert report.status == "RJCT" and report.reason_code == "RC01"


def test_xsd_invalid_xml_is_400_with_a_rejection_or_json(api: Api) -> None:
    bad = pacs008().replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>one</NbOfTxs>")
    seq = api.core.engine.applied_seq
    answer = api.xml(bad)
    assert answer.status_code == 400
    (report,) = parse_pacs002(answer.content)
    assert report.status == "RJCT" and report.reason_code == answer.headers["qingsuan-reason"]
    as_json = api.xml(bad, accept="application/json")
    assert as_json.status_code == 400
    body = as_json.json()
    assert body["reason"] == report.reason_code and "NbOfTxs" in (body["field"] or "")
    for junk in (b"not xml at all", b"<Document/>", b"<a><b></a>"):
        refused = api.xml(junk, accept="application/json")
        assert refused.status_code == 400 and refused.json()["reason"], junk
    assert api.core.engine.applied_seq == seq


def test_xml_content_type_size_and_emptiness(api: Api) -> None:
    path = "/v1/participants/ICBC/messages"
    assert_refusal(api.post(path, content=pacs008(), headers={"content-type": "text/plain"}),
                   415, "unsupported_media_type")
    assert_refusal(api.post(path, json={"a": 1}), 415, "unsupported_media_type")
    assert_refusal(api.xml(b""), 400, "missing_body")
    huge = b"<Document>" + b" " * (1 << 20) + b"</Document>"
    assert_refusal(api.xml(huge), 413, "too_large")
    # text/xml with a charset is XML too
    ok = api.post(path, content=pacs008(), headers={"content-type": "text/xml; charset=utf-8"})
    assert ok.status_code == 200


def test_pacs009_queues_camt056_cancels_pacs028_asks(api: Api) -> None:
    # more than ICBC's 100,000,000.00: queued
    (queued,) = parse_pacs002(api.xml(pacs009(20_000_000_000)).content)
    assert queued.status == "ACSP"
    pos = api.get("/v1/participants/ICBC/positions").json()
    assert pos["hvps_queue"]["count"] == 1
    assert pos["hvps_queue"]["payments"][0]["payment_id"] == "ICBCM9/ICBCT9"
    asked = build_pacs028(StatusRequest(
        msg_id="ICBCQ1", created_at=at(10, 5), requesting_participant=ICBC,
        original_msg_id="ICBCM9", original_message_type=PACS009, original_tx_id="ICBCT9"))
    (status,) = parse_pacs002(api.xml(asked).content)
    assert status.status == "ACSP"
    cancel = build_camt056(CancelRequest(
        msg_id="ICBCC1", created_at=at(10, 10), requesting_participant=ICBC,
        original_msg_id="ICBCM9", original_message_type=PACS009, original_tx_id="ICBCT9",
        reason_code="DUPL"))
    answer = api.xml(cancel)
    (cancelled,) = parse_camt029(answer.content)
    assert cancelled.accepted, answer.text
    assert api.get("/v1/participants/ICBC/positions").json()["hvps_queue"]["count"] == 0
    # CCB cannot ask about ICBC's payment: unknown to it
    theirs = build_pacs028(StatusRequest(
        msg_id="CCBQ1", created_at=at(10, 5), requesting_participant=CCB,
        original_msg_id="ICBCM9", original_message_type=PACS009, original_tx_id="ICBCT9"))
    (unknown,) = parse_pacs002(api.xml(theirs, "CCB").content)
    assert unknown.status == "RJCT" and "unknown" in (unknown.additional_info or "")


# ---------------------------------------------------------------------- reports


def test_statements_intraday_and_positions(api: Api) -> None:
    assert api.transfer(urgent=True).status_code == 201  # HVPS: 1,234.50 leaves ICBC
    report = api.get("/v1/participants/ICBC/reports/intraday")
    assert report.status_code == 200
    (intraday,) = parse_camt052(report.content)
    assert intraday.account == ICBC and intraday.entries[-1].amount_fen == 123_450
    assert intraday.entries[-1].direction == "debit"
    assert_refusal(api.get("/v1/participants/ICBC/statements/2026-11-26"), 404,
                   "no_statement", "date")
    assert_refusal(api.get("/v1/participants/ICBC/statements/26-11-2026"), 422,
                   "invalid_date", "date")
    assert api.clock(at="2026-11-26T20:00").status_code == 200  # past the close
    closed = api.get("/v1/participants/ICBC/statements/2026-11-26")
    assert closed.status_code == 200, closed.text
    (statement,) = parse_camt053(closed.content)
    assert statement.business_date == DAY and statement.account == ICBC
    assert statement.closing_balance_fen == 10_000_000_000 - 123_450
    pos = api.get("/v1/participants/ICBC/positions").json()
    assert pos["settlement"]["balance"] == "99998765.50"
    assert set(pos["net"]) >= {"BEPS", "IBPS"} and pos["net"]["BEPS"]["cap"]
    # the operator reads any participant's
    assert api.get("/v1/participants/CCB/positions", "operator").json()["code"] == CCB


# ---------------------------------------------------------------------- the clock


def test_clock_set_advance_and_refusals(api: Api) -> None:
    now = api.get("/v1/operator/clock", "operator").json()
    assert now["mode"] == "virtual" and now["now"] == "2026-11-26T10:00:00+08:00"
    assert now["hvps_phase"] == "open" and now["business_date"] == "2026-11-26"
    moved = api.clock(at="2026-11-26T17:14").json()
    assert moved["now"] == "2026-11-26T17:14:00+08:00" and moved["ticks"] >= 1
    later = api.clock(advance="1h").json()
    assert later["now"] == "2026-11-26T18:14:00+08:00" and later["hvps_phase"] == "closed"
    assert_refusal(api.clock(at="2026-11-26T09:00"), 409, "clock_backwards", "at")
    assert_refusal(api.clock(advance="soon"), 422, "invalid_duration", "advance")
    assert_refusal(api.clock(advance="0m"), 422, "invalid_duration", "advance")
    assert_refusal(api.clock(at="tomorrow"), 422, "invalid_time", "at")
    assert_refusal(api.clock(at="2026-11-27T10:00", advance="1h"), 422, "invalid_field")
    assert_refusal(api.clock(), 422, "missing_field")
    assert_refusal(api.clock(advance="400d"), 422, "clock_too_far")
    assert_refusal(api.clock(mode="hourglass"), 422, "invalid_field", "mode")
    wall = api.clock(mode="wall").json()
    assert wall["mode"] == "wall"
    ticked = api.post("/v1/operator/tick", "operator")
    assert ticked.status_code == 200 and ticked.json()["ticks"] == 1


def test_clock_moves_run_the_day_and_replay_reproduces_them(tmp_path: Path) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = f"sqlite:///{tmp_path / 's.db'}"
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        assert api.transfer().status_code == 201  # BEPS: netted now, settled in a session
        assert api.clock(at="2026-11-27T10:00").status_code == 200
        assert api.get("/v1/participants/ICBC/payments/API/T1").json()["status"] == "settled"
        live = core.engine.state_hash()
    finally:
        core.close()
    assert replay(store, world_systems()).state_hash() == live


# ---------------------------------------------------------------------- keys, meta, docs


def test_keys_meta_openapi_docs_metrics(api: Api) -> None:
    assert_refusal(api.client.get("/v1/participants/ICBC/positions"), 401, "missing_key")
    assert_refusal(api.client.get("/v1/participants/ICBC/positions",
                                  headers={"Authorization": "Bearer nope"}), 401, "bad_key")
    assert api.get("/v1/me").json()["participant"] == "ICBC"
    assert api.get("/v1/me", "operator").json()["operator"] is True
    names = {p["name"] for p in api.get("/v1/participants", "CCB").json()}
    assert names == set(NAMES)
    assert api.client.get("/v1/health").json()["status"] == "ok"
    spec = api.client.get("/openapi.json").json()
    assert "/v1/participants/{participant}/transfers" in spec["paths"]
    assert "application/xml" in str(spec["paths"]["/v1/participants/{participant}/messages"])
    assert api.client.get("/docs").status_code == 200
    assert_refusal(api.client.get("/v1/nowhere"), 404, "not_found")
    assert_refusal(api.client.delete("/v1/health"), 405, "method_not_allowed")
    api.transfer()
    text = api.client.get("/metrics").text
    assert 'route="/v1/participants/{participant}/transfers",status="201"' in text
    assert "qingsuan_log_entries" in text and "ICBC" not in text


def test_operator_key_sends_no_payments_and_participants_move_no_clock(api: Api) -> None:
    assert_refusal(api.post("/v1/participants/ICBC/transfers", "operator", json=order()),
                   403, "participant_only")
    assert_refusal(api.clock(advance="1h") if False else
                   api.post("/v1/operator/clock", "ICBC", json={"advance": "1h"}),
                   403, "operator_only")
    assert_refusal(api.get("/v1/participants/NOPE/positions", "operator"), 404,
                   "unknown_participant")


# ---------------------------------------------------------------------- restart


def test_restart_keeps_every_acknowledged_payment_with_its_status(tmp_path: Path) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = f"sqlite:///{tmp_path / 's.db'}"
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        assert api.transfer().status_code == 201
        assert api.transfer(id="T2", urgent=True).status_code == 201
        assert api.xml(pacs008()).status_code == 200
        before = {pid: api.get(f"/v1/participants/ICBC/payments/{pid}").json()
                  for pid in ("API/T1", "API/T2", "ICBCM1/ICBCT1")}
        clock_before = api.get("/v1/operator/clock", "operator").json()["now"]
    finally:
        core.close()
    # reopened: the store is the world; a virtual clock resumes at the log's last time
    client, core = open_api(store, ring, SandboxClock("virtual"))
    api = Api(client, core, keys)
    try:
        for pid, doc in before.items():
            assert api.get(f"/v1/participants/ICBC/payments/{pid}").json() == doc
        assert api.get("/v1/operator/clock", "operator").json()["now"] == clock_before
        assert_refusal(api.transfer(), 409, "duplicate")
    finally:
        core.close()
    with pytest.raises(ValueError, match="never goes back"):
        SandboxCore(SANDBOX, store, SandboxClock("virtual", START - 1))


# ---------------------------------------------------------------------- the dashboard


def test_dashboard_page_and_its_live_feed(api: Api) -> None:
    page = api.client.get("/dashboard")
    assert page.status_code == 200 and "/v1/operator/stream" in page.text
    assert "text/html" in page.headers["content-type"]
    assert api.transfer(urgent=True).status_code == 201
    feed = api.get("/v1/operator/stream", "operator", params={"count": 2})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith(
        "text/event-stream")
    events = [json.loads(line[6:]) for line in feed.text.splitlines()
              if line.startswith("data: ")]
    assert len(events) == 2
    doc = events[-1]
    assert doc["clock"]["now"] == "2026-11-26T10:00:00+08:00"
    icbc = next(p for p in doc["participants"] if p["name"] == "ICBC")
    assert icbc["balance"] == "99998765.50" and set(icbc["net"]) == {"BEPS", "IBPS"}
    assert doc["last_payments"][0] == {"id": "ICBC/API/T1", "system": "HVPS",
                                       "status": "credited",
                                       "at": "2026-11-26T10:00:00+08:00",
                                       "from": "ICBC", "to": "CCB", "amount": "1234.50"}
    assert_refusal(api.get("/v1/operator/stream", params={"count": 1}), 403, "operator_only")
    assert_refusal(api.get("/v1/operator/stream", "operator", params={"count": 0}), 422,
                   "invalid_field", "count")


def test_cancel_a_waiting_payment_not_a_settled_one(api: Api) -> None:
    # after the cut-off a large transfer needs HVPS, which is closed: the bank holds it
    assert api.clock(at="2026-11-26T18:00").status_code == 200
    held = api.transfer(id="H1", amount="900000.00").json()
    assert held["status"] == "accepted" and "held_until" in held
    done = api.post("/v1/participants/ICBC/payments/API/H1/cancel")
    assert done.status_code == 200 and done.json()["payment"]["status"] == "cancelled"
    again = api.post("/v1/participants/ICBC/payments/API/H1/cancel")
    assert again.status_code == 409 and again.json()["reason"]
    assert_refusal(api.post("/v1/participants/ICBC/payments/API/NONE/cancel"), 404,
                   "unknown_payment")
    # a payment queued in HVPS (more than ICBC holds) is cancelled in CNAPS
    assert api.clock(at="2026-11-27T10:00").status_code == 200
    assert parse_pacs002(api.xml(pacs009(20_000_000_000, "M2", "T2")).content)[0].status == \
        "ACSP"
    queued = api.post("/v1/participants/ICBC/payments/M2/T2/cancel")
    assert queued.status_code == 200, queued.text
    assert api.get("/v1/participants/ICBC/positions").json()["hvps_queue"]["count"] == 0
    # settled: too late
    assert api.transfer(id="U1", urgent=True).json()["iso_status"] == "ACSC"
    late = api.post("/v1/participants/ICBC/payments/API/U1/cancel")
    assert late.status_code == 409 and late.json()["payment"]["status"] == "credited"


# ---------------------------------------------------------------------- operations


def test_operator_pledges_releases_and_sets_parameters(api: Api) -> None:
    pledged = api.post("/v1/operator/participants/ICBC/pledge", "operator",
                       json={"value": "5000000.00"})
    assert pledged.status_code == 200, pledged.text
    assert pledged.json()["credit"]["pledged"] == "5000000.00"
    too_much = api.post("/v1/operator/participants/ICBC/release", "operator",
                        json={"value": "6000000.00"})
    assert too_much.status_code == 409 and too_much.json()["field"] == "value"
    released = api.post("/v1/operator/participants/ICBC/release", "operator",
                        json={"value": "5000000.00"})
    assert released.status_code == 200 and released.json()["credit"]["pledged"] == "0.00"
    assert_refusal(api.post("/v1/operator/participants/NOPE/pledge", "operator",
                            json={"value": "1.00"}), 404, "unknown_participant")
    assert_refusal(api.post("/v1/operator/participants/ICBC/pledge", "operator",
                            json={"value": "1.001"}), 422, "amount_precision", "value")
    before = api.get("/v1/operator/params", "operator").json()
    assert before["banks.name_check"] in ("on", "off")
    after = api.post("/v1/operator/params", "operator",
                     json={"params": {"ibps.item_limit": "100000.00"}})
    assert after.status_code == 200 and after.json()["ibps.item_limit"] == "100000.00"
    # the new limit is the bank's: 60,000.00 mobile urgent goes through IBPS now
    assert api.transfer(id="M1", amount="60000.00", channel="mobile",
                        urgent=True).json()["system"] == "IBPS"
    seq = api.core.engine.applied_seq
    assert_refusal(api.post("/v1/operator/params", "operator",
                            json={"params": {"no.such": "1"}}), 422, "invalid_param")
    assert_refusal(api.post("/v1/operator/params", "operator",
                            json={"params": {"ibps.item_limit": "lots"}}), 422,
                   "invalid_param", "params.ibps.item_limit")
    assert_refusal(api.post("/v1/operator/params", "operator", json={"params": {}}), 422,
                   "missing_field")
    assert api.core.engine.applied_seq == seq


# ---------------------------------------------------------------------- inquiries


def test_ibps_account_and_balance_inquiries(api: Api) -> None:
    path = "/v1/participants/CCB/inquiries"
    found = api.get(f"{path}/account", "CCB", params={"bank": "ICBC", "account": ICBC1,
                                                      "name": "Holder ICBC 1"}).json()
    assert found["exists"] is True and found["name_matches"] is True
    wrong = api.get(f"{path}/account", "CCB", params={"bank": ICBC, "account": ICBC1,
                                                      "name": "Someone"}).json()
    assert wrong["name_matches"] is False
    none = api.get(f"{path}/account", "CCB", params={"bank": "ICBC", "account": "123456"})
    assert none.json()["exists"] is False and none.json()["reason"] == "AC01"
    assert_refusal(api.get(f"{path}/account", "CCB", params={"bank": "X", "account": ICBC1}),
                   422, "unknown_participant", "bank")
    assert_refusal(api.get(f"{path}/account", "CCB", params={"bank": "ICBC"}), 422,
                   "missing_field", "account")
    refused = api.get(f"{path}/balance", "CCB", params={"bank": "ICBC", "account": ICBC1})
    assert refused.json()["answered"] is False and refused.json()["reason"] == "AG01"
    given = api.post("/v1/participants/ICBC/consents", json={"account": ICBC1, "asker": "CCB"})
    assert given.status_code == 200, given.text
    seen = api.get(f"{path}/balance", "CCB", params={"bank": "ICBC", "account": ICBC1}).json()
    assert seen["answered"] is True and seen["balance"] == "100000000.00"
    # only CCB was let in
    other = api.get("/v1/participants/ABC/inquiries/balance", "ABC",
                    params={"bank": "ICBC", "account": ICBC1}).json()
    assert other["answered"] is False
    assert_refusal(api.post("/v1/participants/ICBC/consents",
                            json={"account": ICBC1, "asker": "ICBC"}), 422, "invalid_field")


def test_json_institution_transfer_settles_or_queues(api: Api) -> None:
    path = "/v1/participants/ICBC/institution-transfers"
    done = api.post(path, json={"id": "L1", "creditor_bank": "CCB", "amount": "1000000.00",
                                "priority": "urgent"})
    assert done.status_code == 201 and done.json()["iso_status"] == "ACSC", done.text
    queued = api.post(path, json={"id": "L2", "creditor_bank": CCB, "amount": "200000000.00"})
    assert queued.status_code == 201 and queued.json()["iso_status"] == "ACSP"
    assert api.get("/v1/participants/ICBC/positions").json()["hvps_queue"]["count"] == 1
    assert_refusal(api.post(path, json={"id": "L1", "creditor_bank": "CCB", "amount": "1.00"}),
                   409, "duplicate", "id")
    assert_refusal(api.post(path, json={"id": "L3", "creditor_bank": "ICBC",
                                        "amount": "1.00"}), 422, "same_account")
    assert_refusal(api.post(path, json={"id": "L3", "creditor_bank": "CCB",
                                        "amount": "-1.00"}), 422, "amount_negative", "amount")
    assert_refusal(api.post(path, json={"id": "L3", "creditor_bank": "CCB", "amount": "1.00",
                                        "priority": "correction"}), 422, "invalid_field",
                   "priority")


def test_inbox_of_notices_polled_with_a_cursor(api: Api) -> None:
    assert api.transfer(urgent=True).status_code == 201  # HVPS: ICBC settled, CCB credited
    assert api.transfer(id="T2").status_code == 201  # BEPS: ICBC netted, CCB incoming
    first = api.get("/v1/participants/CCB/notices", "CCB").json()
    events = [(n["system"], n["event"]) for n in first["notices"]]
    assert ("HVPS", "credited") in events and ("BEPS", "incoming") in events
    assert all(n["payment_id"] is None and n["ref"].startswith("ICBC/")
               for n in first["notices"] if n["event"] in ("credited", "incoming"))
    mine = api.get("/v1/participants/ICBC/notices").json()["notices"]
    assert {(n["event"], n["payment_id"]) for n in mine} >= {("settled", "API/T1"),
                                                            ("netted", "API/T2")}
    assert not any(n["event"] in ("credited", "incoming") for n in mine)
    again = api.get("/v1/participants/CCB/notices", "CCB", params={"after": first["next"]})
    assert again.json()["notices"] == []
    assert api.transfer(id="T3", urgent=True).status_code == 201
    new = api.get("/v1/participants/CCB/notices", "CCB",
                  params={"after": first["next"]}).json()["notices"]
    assert [n["event"] for n in new] == ["credited"] and new[0]["ref"] == "ICBC/API/T3"
    one = api.get("/v1/participants/ICBC/notices", params={"limit": 1}).json()
    assert len(one["notices"]) <= len(api.core.cnaps.net) + 1
    assert_refusal(api.get("/v1/participants/ICBC/notices", params={"after": "x;y"}), 422,
                   "invalid_cursor", "after")
    assert_refusal(api.get("/v1/participants/ICBC/notices", params={"limit": 0}), 422,
                   "invalid_field", "limit")


def test_operator_suspends_and_reactivates_a_participant(api: Api) -> None:
    path = "/v1/operator/participants/ICBC/status"
    suspended = api.post(path, "operator", json={"status": "suspended"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    refused = api.transfer(urgent=True)  # HVPS refuses a suspended sender
    assert_refusal(refused, 422, "AG01")
    (report,) = parse_pacs002(api.xml(pacs008()).content)
    assert report.status == "RJCT" and report.reason_code == "AG01"
    assert api.post(path, "operator", json={"status": "active"}).json()["status"] == "active"
    assert api.transfer(id="T2", urgent=True).json()["iso_status"] == "ACSC"
    assert_refusal(api.post(path, "operator", json={"status": "asleep"}), 422,
                   "invalid_field", "status")
    assert_refusal(api.post("/v1/operator/participants/NOPE/status", "operator",
                            json={"status": "active"}), 404, "unknown_participant")
