"""The operator adds a participant while the sandbox runs (`POST /v1/operator/participants`,
docs/SERVER.md): one logged `world.join`, its key shown once; its transfers work at once,
through the application and through the HTTP edge, after a restart and in a replay."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_customer_ranges import CCB as CCB_RANGE
from test_customer_ranges import ICBC as ICBC_RANGE
from test_customer_ranges import WORLD
from test_http_api import (
    CCB1,
    ICBC1,
    NAMES,
    START,
    Api,
    assert_refusal,
    open_api,
    sandbox_api,
)
from test_http_edge import edge_server
from test_http_serve import serve

from qingsuan.banks import reconcile
from qingsuan.clock import VirtualClock
from qingsuan.cnaps.participants import check_digit
from qingsuan.engine import replay
from qingsuan.server.http import KeyRing, SandboxClock
from qingsuan.sim.scenario import parse_scenario
from qingsuan.sim.scenario_model import CustomerTable
from qingsuan.world import World, world_systems

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADD = "/v1/operator/participants"
NEWB_CODE = "3131000000" + "1" + check_digit("31310000001")  # a city commercial bank
NEWB1 = "6200000000000001"


@pytest.fixture
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def newb(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "NEWB", "code": NEWB_CODE, "settlement_balance": "5000000.00",
        "collateral": "1000000.00", "beps_cap": "2000000.00",
        "customers": [{"account": NEWB1, "name": "New Holder 1", "balance": "30000.00"}]}
    doc.update(fields)
    return doc


def pay(who: str, tx: str, debtor: str, bank: str, account: str, name: str, amount: str,
        **extra: Any) -> dict[str, Any]:
    return {"id": tx, "debtor_account": debtor, "amount": amount,
            "creditor": {"bank": bank, "account": account, "name": name}, **extra}


def customer_fen(api: Api, bank: str, cid: str) -> int:
    engine = api.core.engine
    return engine.ledger.balance(engine.registry.id(bank, f"customer:{cid}")).posted_fen


def settlement(api: Api, who: str, key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else api.h(who)
    got = api.client.get(f"/v1/participants/{who}/positions", headers=headers)
    assert got.status_code == 200, got.text
    balance: str = got.json()["settlement"]["balance"]
    return balance


def test_an_added_bank_sends_and_receives_at_once_and_sees_only_its_own(api: Api) -> None:
    added = api.post(ADD, "operator", json=newb())
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["participant"], body["code"], body["kind"], body["status"]) == \
        ("NEWB", NEWB_CODE, "direct_bank", "active")
    assert body["positions"]["settlement"]["balance"] == "5000000.00"
    assert body["positions"]["credit"]["pledged"] == "1000000.00"
    assert body["positions"]["net"]["BEPS"]["cap"] == "2000000.00"
    assert added.headers["location"] == "/v1/participants/NEWB/positions"
    key = body["api_key"]
    assert key.startswith("qs_newb_")  # (random: the fixture's keys are not the sandbox's)
    assert not any(key.encode() in e.payload for e in api.core.engine.log.entries(0))
    api.keys["NEWB"] = key
    assert api.get("/v1/me", "NEWB").json()["participant"] == "NEWB"
    directory = {p["name"]: p for p in api.get("/v1/participants", "CCB").json()}
    assert directory["NEWB"]["code"] == NEWB_CODE
    assert customer_fen(api, "NEWB", f"newb_{NEWB1}") == 3_000_000

    # NEWB's customer pays ICBC's through HVPS; ICBC's pays NEWB's through BEPS
    out = api.post("/v1/participants/NEWB/transfers", "NEWB", json=pay(
        "NEWB", "N1", NEWB1, "ICBC", ICBC1, "Holder ICBC 1", "20000.00", urgent=True))
    assert out.status_code == 201, out.text
    assert (out.json()["system"], out.json()["iso_status"]) == ("HVPS", "ACSC")
    back = api.post("/v1/participants/ICBC/transfers", "ICBC", json=pay(
        "ICBC", "I1", ICBC1, NEWB_CODE, NEWB1, "New Holder 1", "500.00"))
    assert back.status_code == 201, back.text
    assert (back.json()["system"], back.json()["status"]) == ("BEPS", "credited")
    assert customer_fen(api, "NEWB", f"newb_{NEWB1}") == 3_000_000 - 2_000_000 + 50_000
    assert settlement(api, "NEWB") == "4980000.00"  # (the BEPS credit settles at a session)
    assert api.get("/v1/participants/NEWB/positions", "NEWB").json()["net"]["BEPS"][
        "position"] == "500.00"
    # too much for the customer: the bank refuses it, AM04
    assert_refusal(api.post("/v1/participants/NEWB/transfers", "NEWB", json=pay(
        "NEWB", "N2", NEWB1, "CCB", CCB1, "Holder CCB 1", "20000.00")), 422, "AM04")

    # isolation both ways: 403 on another's path, 404 for another's payment on its own
    assert_refusal(api.get("/v1/participants/ICBC/positions", "NEWB"), 403, "not_yours")
    assert_refusal(api.get("/v1/participants/NEWB/positions", "ICBC"), 403, "not_yours")
    assert_refusal(api.get("/v1/participants/NEWB/payments/API/N1", "CCB"), 403, "not_yours")
    assert_refusal(api.get("/v1/participants/NEWB/payments/API/I1", "NEWB"), 404,
                   "unknown_payment")
    assert_refusal(api.post("/v1/participants/ICBC/transfers", "NEWB", json=pay(
        "ICBC", "X1", ICBC1, "CCB", CCB1, "Holder CCB 1", "1.00")), 403, "not_yours")
    assert_refusal(api.post("/v1/operator/tick", "NEWB"), 403, "operator_only")
    assert api.get("/v1/participants/NEWB/payments/API/N1", "NEWB").json()["status"] == \
        "credited"
    assert api.get("/v1/participants/NEWB/payments/API/N1", "operator").status_code == 200
    # the world's invariants hold with it: money conserved (its opening balance and
    # deposits counted), mirrors, balanced books, transit explained
    banks = api.core.world.banks
    assert reconcile.books_balanced(banks) and reconcile.mirrors_match(banks)
    assert reconcile.money_conserved(banks) and reconcile.suspense_explained(banks)


def test_a_payment_institution_joins_with_an_institution_code(api: Api) -> None:
    added = api.post(ADD, "operator", json={
        "name": "NEWPAY", "code": "Z20261101AAA", "kind": "payment_institution",
        "settlement_balance": "0", "ibps_earmark": "0.00"})
    assert added.status_code == 201, added.text
    assert added.json()["kind"] == "payment_institution"
    assert added.json()["positions"]["settlement"]["balance"] == "0.00"
    assert added.json()["positions"]["net"]["IBPS"]["cap_backing"] == "earmark"
    assert added.json()["customers"] == []


@pytest.mark.parametrize(("fields", "status", "reason", "field"), [
    ({"code": NEWB_CODE[:11] + str((int(NEWB_CODE[11]) + 1) % 10)}, 422, "invalid_code",
     "code"),
    ({"code": "31310000001"}, 422, "invalid_code", "code"),
    ({"code": "Z20261101AAA"}, 422, "invalid_code", "code"),  # a bank's code is digits
    ({"name": "ICBC"}, 409, "duplicate", "name"),
    ({"code": "102100099996"}, 409, "duplicate", "code"),  # ICBC's
    ({"name": "operator"}, 422, "invalid_name", "name"),
    ({"name": "PBOC"}, 422, "invalid_name", "name"),
    ({"name": "9LIVES"}, 422, "invalid_name", "name"),
    ({"kind": "indirect_bank"}, 422, "missing_field", "settles_through"),
    ({"kind": "indirect_bank", "settles_through": "NOPE"}, 422, "unknown_participant",
     "settles_through"),
    ({"kind": "indirect_bank", "settles_through": "ICBC"}, 422, "unsupported_kind", "kind"),
    ({"settles_through": "ICBC"}, 422, "invalid_field", "settles_through"),
    ({"kind": "card_switch"}, 422, "invalid_field", "kind"),
    ({"settlement_balance": "10.005"}, 422, "amount_precision", "settlement_balance"),
    ({"settlement_balance": "-1.00"}, 422, "amount_negative", "settlement_balance"),
    ({"settlement_balance": 100}, 422, "invalid_type", "settlement_balance"),
    ({"collateral": "1e5"}, 422, "invalid_amount", "collateral"),
    ({"ibps_earmark": "5000000.01"}, 422, "invalid_field", "ibps_earmark"),
    ({"customers": [{"account": "12AB", "name": "x"}]}, 422, "invalid_account",
     "customers.0.account"),
    ({"customers": [{"account": NEWB1, "name": "a"}, {"account": NEWB1, "name": "b"}]}, 409,
     "duplicate", "customers.1.account"),
    ({"customers": [{"account": NEWB1, "name": "a", "balance": "0.001"}]}, 422,
     "amount_precision", "customers.0.balance"),
    ({"name": None}, 422, "invalid_type", "name"),
    ({"colour": "red"}, 422, "unknown_field", "colour"),
])
def test_refusals_name_the_field_and_log_nothing(api: Api, fields: dict[str, Any],
                                                 status: int, reason: str, field: str) -> None:
    before = api.core.engine.applied_seq
    assert_refusal(api.post(ADD, "operator", json=newb(**fields)), status, reason, field)
    assert api.core.engine.applied_seq == before
    assert "NEWB" not in api.core.cnaps.directory


def test_only_the_operator_adds_and_a_missing_body_is_refused(api: Api) -> None:
    assert_refusal(api.post(ADD, "ICBC", json=newb()), 403, "operator_only")
    assert_refusal(api.client.post(ADD, json=newb()), 401, "missing_key")
    refused = api.post(ADD, "operator", json={"name": "NEWB"})
    assert refused.status_code == 422 and refused.json()["reason"] == "missing_field"
    assert "NEWB" not in api.core.cnaps.directory


def test_restart_and_replay_rebuild_the_added_bank_and_its_key_stays_valid(
        tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    key_file = tmp_path / "s.db.apikeys"
    ring, keys = KeyRing.for_world(NAMES)
    ring.path = key_file
    ring.save(key_file)
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        added = api.post(ADD, "operator", json=newb())
        assert added.status_code == 201, added.text
        api.keys["NEWB"] = added.json()["api_key"]
        assert api.post("/v1/participants/NEWB/transfers", "NEWB", json=pay(
            "NEWB", "N1", NEWB1, "CCB", CCB1, "Holder CCB 1", "100.00")).status_code == 201
        assert api.clock(at="2026-11-26T11:05").status_code == 200  # the 11:00 session
        status = api.get("/v1/participants/NEWB/payments/API/N1", "NEWB").json()
        assert status["status"] == "settled"
        balance = settlement(api, "NEWB")
        assert balance == "4999900.00"
        live = core.engine.state_hash()
    finally:
        core.close()
    assert replay(store, world_systems()).state_hash() == live
    # the key's hash was kept in the key file: a restart reads it
    reread = KeyRing.load(key_file)
    assert "NEWB" in reread.hashes and api.keys["NEWB"] not in key_file.read_text()
    client, core = open_api(store, reread, SandboxClock("virtual"))
    again = Api(client, core, api.keys)
    try:
        assert again.get("/v1/participants/NEWB/payments/API/N1", "NEWB").json() == status
        assert settlement(again, "NEWB") == balance
        assert again.post("/v1/participants/NEWB/transfers", "NEWB", json=pay(
            "NEWB", "N2", NEWB1, "ICBC", ICBC1, "Holder ICBC 1", "1.00")).status_code == 201
        assert_refusal(again.post(ADD, "operator", json=newb()), 409, "duplicate", "name")
    finally:
        core.close()


def test_the_http_edge_takes_the_added_bank_s_transfers_at_once() -> None:
    ring, keys = KeyRing.for_world(NAMES)
    with edge_server(ring) as (url, core), httpx.Client(base_url=url, timeout=30) as http:
        operator = {"Authorization": f"Bearer {keys['operator']}"}
        added = http.post(ADD, headers=operator, json=newb())  # (relayed to the app)
        assert added.status_code == 201, added.text
        mine = {"Authorization": f"Bearer {added.json()['api_key']}"}
        sent = http.post("/v1/participants/NEWB/transfers", headers=mine, json=pay(
            "NEWB", "N1", NEWB1, "ICBC", ICBC1, "Holder ICBC 1", "25.00"))
        assert sent.status_code == 201, sent.text  # (answered by the edge itself)
        assert sent.json()["status"] == "credited"
        other = http.post("/v1/participants/NEWB/transfers",
                          headers={"Authorization": f"Bearer {keys['ICBC']}"},
                          json=pay("NEWB", "N2", NEWB1, "ICBC", ICBC1, "Holder ICBC 1", "1"))
        assert other.status_code == 403 and other.json()["reason"] == "not_yours"
        assert core.world.banks.payments["NEWB/API/N1"].status == "credited"


def test_serve_keeps_an_added_bank_across_a_restart(tmp_path: Path) -> None:
    """`qingsuan serve` with the documented keys: the added bank's key is sandbox-NEWB,
    taken by the edge process at once and again after a restart."""
    store = tmp_path / "s.db"
    args = ("--api-keys", "sandbox", "--clock", "virtual", "--clock-start", "2026-11-26T10:00")
    operator = {"Authorization": "Bearer sandbox-operator"}
    mine = {"Authorization": "Bearer sandbox-NEWB"}
    served = serve(store, *args, new_keys=False)
    try:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            added = http.post(ADD, headers=operator, json=newb())
            assert added.status_code == 201, added.text
            assert added.json()["api_key"] == "sandbox-NEWB"
            sent = http.post("/v1/participants/NEWB/transfers", headers=mine, json=pay(
                "NEWB", "N1", NEWB1, "CCB", CCB1, "Holder CCB 1", "10.00", urgent=True))
            assert sent.status_code == 201 and sent.json()["iso_status"] == "ACSC", sent.text
    finally:
        assert served.stop() == 0
    again = serve(store, *args[:4], new_keys=False)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            got = http.get("/v1/participants/NEWB/payments/API/N1", headers=mine)
            assert got.status_code == 200 and got.json()["status"] == "credited"
            sent = http.post("/v1/participants/NEWB/transfers", headers=mine, json=pay(
                "NEWB", "N2", NEWB1, "CCB", CCB1, "Holder CCB 1", "10.00", urgent=True))
            assert sent.status_code == 201, sent.text
            assert http.get("/v1/participants/NEWB/positions", headers=mine).json()[
                "settlement"]["balance"] == "4999980.00"
    finally:
        assert again.stop() == 0



def _serve_reading_keys(store: Path, new_keys: bool = True) -> tuple[Any, str, dict[str, str]]:
    """`qingsuan serve` with random keys: the process, its URL and the keys it printed
    (an added participant's, when the key file is new, as the world opens)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0",
         "--http-port", "0", "--clock", "virtual"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while not any("HTTP API listening" in line for line in lines) or (
            new_keys and not any("keys above are shown once" in line for line in lines)):
        lines.append(proc.stdout.readline())
        assert lines[-1], (lines, proc.stderr and proc.stderr.read())
    url = next(line for line in lines if "HTTP API listening" in line).split(
        "listening on ", 1)[1].split()[0]
    keys = {line.split("API key of ", 1)[1].split(":")[0]: line.split()[5]
            for line in lines if "API key of " in line}
    return proc, url, keys


def test_new_random_keys_include_the_added_bank_and_survive_the_next_restart(
        tmp_path: Path) -> None:
    """With random keys: the added bank's key is kept in the key file; deleting the file
    issues new keys for every participant, the added one too (printed as the world
    opens), and those are kept for the restart after."""
    store, key_file = tmp_path / "s.db", tmp_path / "s.db.apikeys"

    def stop(proc: Any) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0

    def pays(url: str, key: str, tx: str) -> int:
        with httpx.Client(base_url=url, timeout=30) as http:
            return http.post("/v1/participants/NEWB/transfers",
                             headers={"Authorization": f"Bearer {key}"}, json=pay(
                                 "NEWB", tx, NEWB1, "CCB", CCB1, "Holder CCB 1", "1.00")
                             ).status_code

    proc, url, keys = _serve_reading_keys(store)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            added = http.post(ADD, json=newb(), headers={
                "Authorization": f"Bearer {keys['operator']}"})
            assert added.status_code == 201, added.text
        first = added.json()["api_key"]
        assert pays(url, first, "N1") == 201
        assert first not in key_file.read_text() and '"NEWB"' in key_file.read_text()
    finally:
        stop(proc)
    key_file.unlink()  # new keys for everyone
    proc, url, keys = _serve_reading_keys(store)
    try:
        assert set(keys) == {*NAMES, "NEWB", "operator"}, keys
        assert pays(url, keys["NEWB"], "N2") == 201
        assert pays(url, first, "N3") == 401
    finally:
        stop(proc)
    proc, url, again = _serve_reading_keys(store, new_keys=False)
    try:
        assert again == {}  # (nothing new: the file holds every key's hash)
        assert pays(url, keys["NEWB"], "N4") == 201
    finally:
        stop(proc)


def test_a_world_of_generated_customers_takes_a_bank_but_not_its_listed_customers() -> None:
    """Listed customers come before the generated ranges in the directory's order (the
    bulk path's numbering): a bank joining such a world brings none; without, it joins."""
    sc = parse_scenario(WORLD, "ranges.yaml")
    sc = dataclasses.replace(sc, customers=CustomerTable(sc.customers, (ICBC_RANGE, CCB_RANGE)))
    world = World.open(f"memory://{uuid.uuid4().hex}", VirtualClock(START), create=True)
    try:
        world.build(sc)
        doc = {"name": "NEWB", "code": NEWB_CODE, "kind": "direct_bank",
               "settlement_balance_fen": 100_000, "collateral_fen": 0, "caps": [],
               "customers": [[NEWB1, "New Holder 1", 0]]}
        before = world.engine.applied_seq
        refused = world.join(doc)
        assert (refused.ok, refused.reason, refused.field) == (False, "invalid_field",
                                                               "customers")
        assert world.engine.applied_seq == before
        joined = world.join({**doc, "customers": []})
        assert joined.ok and world.banks.members[-1] == "NEWB"
        assert len(world.banks.directory) == 1 + 50 + 30
    finally:
        world.close()
