"""The app's JSON routes (/v1/app): a user of the wallet world logs in with their phone and
key, binds cards, sees each card's balance asked of its issuer, shows a payment code (a
real QR image), pays a merchant's code with a voucher, claims vouchers and repays a credit
card; refusals carry the wallets' reason codes; a user never sees another's cards, codes,
vouchers or statements, and a participant's key is not a user's."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qingsuan.clock import BEIJING, from_datetime
from qingsuan.server.http import KeyRing, SandboxClock, SandboxCore, create_app
from qingsuan.server.http.app_auth import sandbox_user_key
from qingsuan.sim.scenario import Scenario, load_scenario

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WALLET = load_scenario(Path(str(resources.files("qingsuan") / "scenarios" / "wallet.yaml")))
#: 10:00 in Beijing on the story's first day: the city's spring campaign takes claims
START = from_datetime(dt.datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING))
LI, HAN = "13800000001", "13900000002"
LI_ICBC, LI_CCB, LI_CREDIT = "6222020200000000014", "6217000010000000094", "6228480000000005124"
HAN_ABC = "6228480000000000034"


@dataclass
class App:
    client: TestClient
    core: SandboxCore
    keys: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        key = self.keys.get(who) or sandbox_user_key(who)
        return {"Authorization": f"Bearer {key}"}

    def get(self, path: str, who: str) -> Any:
        return self.client.get("/v1/app" + path, headers=self.h(who))

    def post(self, path: str, who: str, doc: dict[str, Any]) -> Any:
        return self.client.post("/v1/app" + path, headers=self.h(who), json=doc)

    def card_id(self, who: str, last4: str) -> str:
        cards = self.get("/cards", who).json()["cards"]
        return str(next(c["card_id"] for c in cards if c["card"].endswith(last4)))

    def issuer_runs_statement(self, pan: str) -> None:
        """ABC's statement run (账单日): the issuer's, not the user's (no app route)."""
        world = self.core.world
        with self.core.lock:
            world.engine.command("banks.event", json.dumps(
                {"do": "credit_statement", "order": -1, "fields": {
                    "id": f"stmt-{pan[-4:]}", **world.card_vault().card_fields(pan)}},
                sort_keys=True).encode())


def open_app(scenario: Scenario = WALLET, *, sandbox: bool = True) -> App:
    ring, keys = KeyRing.for_world([p.name for p in scenario.participants], sandbox=sandbox)
    core = SandboxCore(scenario, f"memory://{uuid.uuid4().hex}",
                       SandboxClock("virtual", START))
    return App(TestClient(create_app(core, ring, deliver=False),
                          raise_server_exceptions=False), core, keys)


def bind_all(app: App) -> None:
    for who, pan, name in ((LI, LI_ICBC, "Li Lei"), (LI, LI_CCB, "Li Lei"),
                           (LI, LI_CREDIT, "Li Lei"), (HAN, HAN_ABC, "Han Meimei")):
        answer = app.post("/cards", who, {"card": pan, "name": name})
        assert answer.status_code == 201, answer.text


@pytest.fixture
def app() -> Iterator[App]:
    found = open_app()
    try:
        bind_all(found)
        yield found
    finally:
        found.core.close()


def refused(answer: Any, status: int, reason: str, field: str | None) -> None:
    assert answer.status_code == status, answer.text
    doc = answer.json()
    assert doc["reason"] == reason and doc["field"] == field, doc
    assert doc["message"]


# ---------------------------------------------------------------------- logging in


def test_login_with_phone_and_key(app: App) -> None:
    ok = app.client.post("/v1/app/login", json={"phone": LI, "key": sandbox_user_key(LI)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "Li Lei" and ok.json()["institution"] == "PAYCO"
    assert ok.json()["wallet"] == "0.00" and ok.json()["cards"] == 3
    # a wrong key and an unknown phone are answered alike
    for phone, key in ((LI, sandbox_user_key(HAN)), ("13700000000", "sandbox-app-13700000000"),
                       (LI, "")):
        refused(app.client.post("/v1/app/login", json={"phone": phone, "key": key}),
                401, "bad_login", "key")


def test_participant_and_operator_keys_are_not_users(app: App) -> None:
    for who in ("ICBC", "PAYCO", "operator"):
        refused(app.get("/me", who), 401, "bad_key", None)
    refused(app.client.get("/v1/app/cards"), 401, "missing_key", None)
    # and a user's key opens no participant's route
    answer = app.client.get("/v1/participants/PAYCO/positions", headers=app.h(LI))
    assert answer.status_code == 401


def test_a_server_with_random_keys_gives_users_no_guessable_key() -> None:
    app = open_app(sandbox=False)
    try:
        refused(app.get("/me", LI), 401, "bad_key", None)
        refused(app.client.post("/v1/app/login", json={"phone": LI,
                                                       "key": sandbox_user_key(LI)}),
                401, "bad_login", "key")
    finally:
        app.core.close()


# ---------------------------------------------------------------------- cards


def test_cards_with_balances_asked_of_each_issuer(app: App) -> None:
    seq = app.core.engine.applied_seq
    answer = app.get("/cards", LI)
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert [(c["card"], c["issuer"], c["kind"], c["balance"]) for c in cards] == [
        ("622202*********0014", "ICBC", "debit", "5000.00"),
        ("621700*********0094", "CCB", "debit", "800.00"),
        ("622848*********5124", "ABC", "credit", "0.00")]
    assert all(c["response_code"] == "00" for c in cards)
    assert app.core.engine.applied_seq == seq + 1  # one logged inquiry, answered durable
    assert LI_ICBC not in answer.text and LI_CCB not in answer.text
    han = app.get("/cards", HAN).json()["cards"]
    assert [c["card"] for c in han] == ["622848*********0034"]


def test_binding_refusals_name_the_field(app: App) -> None:
    fresh = open_app()
    try:
        refused(fresh.post("/cards", LI, {"card": LI_CCB, "name": "Li Lie"}), 422,
                "NAME_MISMATCH", "name")
        refused(fresh.post("/cards", LI, {"card": "6222020200000000055", "name": "Li Lei"}),
                422, "UNKNOWN_CARD", "card")
        refused(fresh.post("/cards", LI, {"card": "6222020200000000048", "name": "Li Lei"}),
                422, "ACCOUNT_CLOSED", "card")
        seq = fresh.core.engine.applied_seq
        refused(fresh.post("/cards", LI, {"card": "62220202-0014", "name": "Li Lei"}), 422,
                "invalid_card", "card")
        assert fresh.core.engine.applied_seq == seq  # bad input: nothing logged
        assert fresh.get("/cards", LI).json()["cards"] == []
    finally:
        fresh.core.close()
    # Han cannot bind Li's card (bound to another user: she is not told whose)
    answer = app.post("/cards", HAN, {"card": LI_ICBC, "name": "Li Lei"})
    refused(answer, 409, "ALREADY_BOUND", "card")
    assert LI not in answer.text


# ---------------------------------------------------------------------- payment codes


def test_payment_code_with_its_qr_image(app: App) -> None:
    icbc = app.card_id(LI, "0014")
    made = app.post("/codes", LI, {"card_id": icbc})
    assert made.status_code == 201, made.text
    code = made.json()
    assert code["state"] == "valid" and code["seconds_left"] == 60
    assert len(code["code"]) == 18 and code["code"].startswith("62")
    assert code["card"] == "622202*********0014" and LI_ICBC not in made.text
    png = app.client.get(code["png"], headers=app.h(LI))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = app.client.get(code["svg"], headers=app.h(LI))
    assert svg.status_code == 200 and svg.text.lstrip().startswith(("<?xml", "<svg"))
    # another user's key: as unknown as no code at all, image and all
    for path in (f"/v1/app/codes/{code['id']}", code["png"], code["svg"]):
        refused(app.client.get(path, headers=app.h(HAN)), 404, "unknown_code", "code_id")
    # a card of another user cannot make a code
    refused(app.post("/codes", HAN, {"card_id": icbc}), 404, "unknown_card", "card")
    # the café scans it (the merchant's side): the code is spent
    with app.core.lock:
        app.core.world.engine.command("banks.event", json.dumps(
            {"do": "qr_pay", "order": -1, "fields": {"id": "cafe-scan", "code": code["id"],
                                                     "terminal": "POS00002",
                                                     "amount_fen": 3600}}).encode())
    assert app.get(f"/codes/{code['id']}", LI).json()["state"] == "used"


def test_a_code_expires_with_the_sandbox_clock(app: App) -> None:
    code = app.post("/codes", LI, {"card_id": app.card_id(LI, "0014")}).json()
    moved = app.client.post("/v1/operator/clock", headers=app.h("operator"),
                            json={"advance": "61s"})
    assert moved.status_code == 200, moved.text
    seen = app.get(f"/codes/{code['id']}", LI).json()
    assert (seen["state"], seen["seconds_left"]) == ("expired", 0)


# ---------------------------------------------------------------------- paying, vouchers


def test_claim_a_voucher_and_pay_a_merchants_code_with_it(app: App) -> None:
    listed = app.get("/vouchers", LI).json()
    spring = next(c for c in listed["campaigns"] if c["id"] == "city-spring")
    assert spring["claimable"] and spring["discount"] == "20.00" and listed["vouchers"] == []
    claimed = app.post("/vouchers", LI, {"campaign": "city-spring"})
    assert claimed.status_code == 201 and claimed.json()["discount"] == "20.00", claimed.text
    refused(app.post("/vouchers", LI, {"campaign": "city-spring"}), 409, "CLAIM_LIMIT",
            "campaign")
    refused(app.post("/vouchers", LI, {"campaign": "no-such"}), 422, "unknown_campaign",
            "campaign")
    # the café's evening campaign takes claims from 17:00 only (it is 10:00)
    assert "cafe-evening" not in {c["id"] for c in listed["campaigns"]}
    refused(app.post("/vouchers", LI, {"campaign": "cafe-evening"}), 422, "CLAIM_WINDOW",
            "campaign")
    assert app.get("/vouchers", HAN).json()["vouchers"] == []  # Li's voucher is his
    # Li scans the noodle house's code (收款码) and pays 150.00 with his CCB card
    noodles = app.core.world.wallets
    assert noodles is not None
    from qingsuan.wallets.app import merchant_image
    scanned = merchant_image(noodles, "POS00001").payload
    paid = app.post("/payments", LI, {"card_id": app.card_id(LI, "0094"), "amount": "150.00",
                                      "merchant_code": scanned, "voucher": "city-spring"})
    assert paid.status_code == 201, paid.text
    assert {k: paid.json()[k] for k in ("price", "card_paid", "discount", "merchant")} == {
        "price": "150.00", "card_paid": "130.00", "discount": "20.00", "merchant": "noodles"}
    assert app.get("/vouchers", LI).json()["vouchers"][0]["status"] == "used"
    cards = {c["card"][-4:]: c["balance"] for c in app.get("/cards", LI).json()["cards"]}
    assert cards["0094"] == "670.00"  # 800.00 less what the card paid


def test_payment_refusals(app: App) -> None:
    mine = app.card_id(LI, "0014")
    seq = app.core.engine.applied_seq
    refused(app.post("/payments", LI, {"card_id": mine, "amount": "1.005",
                                       "terminal": "POS00001"}), 422, "amount_precision",
            "amount")
    refused(app.post("/payments", LI, {"card_id": mine, "amount": 12.5,
                                       "terminal": "POS00001"}), 422, "invalid_type",
            "amount")
    refused(app.post("/payments", LI, {"card_id": mine, "amount": "10.00",
                                       "terminal": "NOPE"}), 422, "unknown_merchant",
            "terminal")
    refused(app.post("/payments", LI, {"card_id": mine, "amount": "10.00",
                                       "merchant_code": "http://evil"}), 422, "invalid_code",
            "merchant_code")
    refused(app.post("/payments", HAN, {"card_id": mine, "amount": "10.00",
                                        "terminal": "POS00001"}), 404, "unknown_card", "card")
    assert app.core.engine.applied_seq == seq  # none of them logged anything
    # no voucher claimed: the wallets refuse (logged, with their reason)
    refused(app.post("/payments", LI, {"card_id": mine, "amount": "120.00",
                                       "terminal": "POS00001", "voucher": "city-spring"}),
            422, "NO_VOUCHER", "voucher")


# ---------------------------------------------------------------------- repayment


def test_statement_and_repayment_from_another_bank(app: App) -> None:
    credit, icbc = app.card_id(LI, "5124"), app.card_id(LI, "0014")
    assert app.post("/payments", LI, {"card_id": credit, "amount": "600.00",
                                      "terminal": "POS00001"}).status_code == 201
    app.issuer_runs_statement(LI_CREDIT)
    cards = app.get("/statements", LI).json()["cards"]
    assert len(cards) == 1 and cards[0]["card"] == "622848*********5124"
    stmt = cards[0]["statements"][-1]
    assert (cards[0]["owed"], stmt["owed"], stmt["minimum"], stmt["due"][:10]) == (
        "600.00", "600.00", "60.00", "2026-12-15")
    refused(app.post("/repayments", LI, {"from_card": icbc, "card": credit,
                                         "amount": "600.01"}), 422, "REPAYMENT_TOO_LARGE",
            "amount")
    repaid = app.post("/repayments", LI, {"from_card": icbc, "card": credit,
                                          "amount": "300.00"})
    assert repaid.status_code == 201, repaid.text
    assert repaid.json()["amount"] == "300.00"
    after = app.get("/statements", LI).json()["cards"][0]
    assert after["statements"][-1]["repaid"] == "300.00"
    assert after["statements"][-1]["minimum_met"] is True
    # Han has no credit card, sees none of Li's, and cannot repay his
    assert app.get("/statements", HAN).json() == {"cards": []}
    han = app.card_id(HAN, "0034")
    refused(app.post("/repayments", HAN, {"from_card": han, "card": credit,
                                          "amount": "1.00"}), 404, "unknown_card", "card")
    refused(app.post("/repayments", LI, {"from_card": icbc, "card": icbc,
                                         "amount": "1.00"}), 422, "NOT_CREDIT_CARD", "card")


def test_every_app_route_refuses_another_users_data(app: App) -> None:
    """Han's key on each of Li's things: 404, never Li's data."""
    li_card = app.card_id(LI, "0014")
    code = app.post("/codes", LI, {"card_id": li_card}).json()["id"]
    han_card = app.card_id(HAN, "0034")
    tries = [
        app.get(f"/codes/{code}", HAN),
        app.client.get(f"/v1/app/codes/{code}/qr.png", headers=app.h(HAN)),
        app.post("/codes", HAN, {"card_id": li_card}),
        app.post("/payments", HAN, {"card_id": li_card, "amount": "1.00",
                                    "terminal": "POS00001"}),
        app.post("/repayments", HAN, {"from_card": li_card, "card": han_card,
                                      "amount": "1.00"}),
    ]
    for answer in tries:
        assert answer.status_code == 404, answer.text
        assert LI not in answer.text and "0014" not in answer.text
    for path in ("/me", "/cards", "/vouchers", "/statements"):
        answer = app.get(path, HAN)
        assert answer.status_code == 200 and LI not in answer.text and "0014" not in \
            answer.text, (path, answer.text)
