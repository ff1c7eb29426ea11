"""The app's page (/app) in a real browser at a phone's viewport (390x844): Debian's
Chromium driven by Playwright on the wallet world served by uvicorn on a loopback port.
Li Lei logs in, sees his three bound cards with the balances his banks give (masked
numbers, yuan with two decimals), shows a payment code (its QR image and countdown),
claims the city's voucher, pays the noodle house's code with it, and repays his credit
card from his ICBC card; he tops up his wallet, withdraws to his CCB card, and rides the
metro with the transit code, paid in the next morning's batch. Screenshots go to $QINGSUAN_SHOTS
(default: qingsuan-shots in the temporary directory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from browser import SHOTS, chromium_page, require_chromium, served_over_http
from test_http_app_api import HAN, HAN_ABC, LI, LI_CCB, LI_CREDIT, LI_ICBC, START, WALLET

from qingsuan.server.http import SandboxCore
from qingsuan.server.http.app_auth import sandbox_user_key

PHONE = {"width": 390, "height": 844}

require_chromium("the app's page")

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Served:
    url: str
    core: SandboxCore
    keys: dict[str, str]

    def post(self, path: str, phone: str, doc: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/app{path}", json=doc, timeout=30, headers={
            "Authorization": f"Bearer {sandbox_user_key(phone)}"})


@pytest.fixture
def served() -> Iterator[Served]:
    """The wallet world at 10:00 on its first day: Li Lei has bound his ICBC and CCB debit
    cards and his ABC credit card, paid a 600.00 banquet with it, and ABC has run its
    statement; Han Meimei has bound her ABC card."""
    with served_over_http(WALLET, START, [p.name for p in WALLET.participants],
                          deliver=False) as (url, core, keys):
        s = Served(url, core, keys)
        for phone, pan, name in ((LI, LI_ICBC, "Li Lei"), (LI, LI_CCB, "Li Lei"),
                                 (LI, LI_CREDIT, "Li Lei"), (HAN, HAN_ABC, "Han Meimei")):
            assert s.post("/cards", phone, {"card": pan, "name": name}).status_code == 201
        listed = httpx.get(f"{s.url}/v1/app/cards", timeout=30, headers={
            "Authorization": f"Bearer {sandbox_user_key(LI)}"}).json()["cards"]
        card_id = next(c["card_id"] for c in listed if c["kind"] == "credit")
        assert s.post("/payments", LI, {"card_id": card_id, "amount": "600.00",
                                        "terminal": "POS00001"}).status_code == 201
        world = core.world
        with core.lock:  # ABC's statement run (账单日): the issuer's, no route of the app
            world.engine.command("banks.event", json.dumps(
                {"do": "credit_statement", "order": -1, "fields": {
                    "id": "stmt-nov", **world.card_vault().card_fields(LI_CREDIT)}},
                sort_keys=True).encode())
        yield s


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    with chromium_page(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                       has_touch=True) as page:
        yield page


def shot(page: Any, name: str, *, full: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"app-{name}.png"), full_page=full)


def log_in(page: Any, url: str, phone: str, key: str) -> None:
    page.goto(f"{url}/app")
    page.fill("#phone", phone)
    page.fill("#key", key)
    page.click("#loginForm button")


def test_log_in_see_cards_show_a_code_claim_pay_and_repay(served: Served, page: Any) -> None:
    expect = sync_api.expect
    log_in(page, served.url, LI, sandbox_user_key(LI))
    expect(page.locator("#who")).to_contain_text("Li Lei")
    expect(page.locator("#who")).to_contain_text("138****0001")
    # three cards, masked (first 6, last 4), each balance asked of its bank just now
    cards = page.locator("#cards .bank")
    expect(cards).to_have_count(3)
    expect(cards.nth(0)).to_contain_text("6222 02** **** 0014")
    expect(cards.nth(0).locator(".bal")).to_have_text("¥5,000.00")
    expect(cards.nth(1)).to_contain_text("CCB")
    expect(cards.nth(1).locator(".bal")).to_have_text("¥800.00")
    expect(cards.nth(2)).to_contain_text("Credit 信用卡")
    expect(cards.nth(2).locator(".bal")).to_have_text("¥600.00")  # what the banquet owes
    expect(cards.nth(2)).to_contain_text("Owed 已用额度")
    for pan in (LI_ICBC, LI_CCB, LI_CREDIT):
        assert pan not in page.content()
    # the page fits the phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "cards")

    # a payment code: its QR image drawn, its digits, its countdown
    page.select_option("#codeCard", index=0)
    page.click("#showCode")
    qr = page.locator("#qr")
    expect(qr).to_be_visible()
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    assert page.evaluate("document.getElementById('qr').naturalWidth") >= 200
    digits = page.locator("#codeDigits").inner_text().replace(" ", "")
    assert len(digits) == 18 and digits.startswith("62")
    expect(page.locator("#countdown")).to_contain_text("Valid for")
    expect(page.locator("#countdown")).to_contain_text("有效期")
    page.locator("#codeBox").scroll_into_view_if_needed()
    shot(page, "code")

    # the café scans it (the merchant's side, not the app's): the page sees it spent
    code_id = page.locator("#qr").get_attribute("data-code")
    with served.core.lock:
        served.core.world.engine.command("banks.event", json.dumps(
            {"do": "qr_pay", "order": -1, "fields": {"id": "cafe-scan", "code": code_id,
                                                     "terminal": "POS00002",
                                                     "amount_fen": 3600}}).encode())
    expect(page.locator("#countdown")).to_contain_text("商户已扫码")
    expect(qr).to_have_class("spent")  # the spent code is dimmed
    expect(cards.nth(0).locator(".bal")).to_have_text("¥4,964.00")  # 5,000.00 less 36.00
    shot(page, "code-scanned")

    # claim the city's spring voucher (20 off 100); it becomes Li's
    spring = page.locator('#campaigns .voucher[data-campaign="city-spring"]')
    expect(spring).to_contain_text("¥20.00")
    spring.locator("button.claim").click()
    expect(page.locator("#voucherMsg")).to_contain_text("Claimed")
    expect(page.locator("#myVouchers .voucherMine")).to_have_count(1)
    expect(spring).to_contain_text("claimed 已领取")
    page.locator("#vouchersBox").scroll_into_view_if_needed()
    shot(page, "vouchers")

    # scan the noodle house's code and pay 150.00 with the CCB card and the voucher
    page.fill("#merchant", "POS00001")
    page.fill("#amount", "150.00")
    page.select_option("#payCard", index=1)
    page.select_option("#payVoucher", "city-spring")
    page.click("#payForm button")
    expect(page.locator("#payMsg")).to_contain_text("Paid 支付成功 ¥130.00")
    expect(page.locator("#payMsg")).to_contain_text("¥20.00 off ¥150.00")
    expect(cards.nth(1).locator(".bal")).to_have_text("¥670.00")
    assert page.locator("#payCard option:checked").inner_text() == "CCB 0094"  # (kept)

    # the credit card's statement, and a repayment from the ICBC card (another bank)
    stmt = page.locator("#statements .statement")
    expect(stmt.locator(".owed")).to_have_text("¥600.00")
    expect(stmt.locator(".minimum")).to_have_text("¥60.00")
    expect(stmt.locator(".due")).to_have_text("2026-12-15")
    page.fill("#repayAmount", "600.01")
    page.click("#repayForm button")
    expect(page.locator("#repayMsg")).to_contain_text("REPAYMENT_TOO_LARGE")
    page.fill("#repayAmount", "300.00")
    page.click("#repayForm button")
    expect(page.locator("#repayMsg")).to_contain_text("¥300.00")
    expect(stmt.locator(".owed")).to_have_text("¥300.00")
    expect(stmt.locator(".repaid")).to_have_text("¥300.00")
    expect(stmt).to_contain_text("minimum met 已达最低还款")
    expect(page.locator("#myVouchers")).to_contain_text("used 已使用")
    expect(cards.nth(0).locator(".bal")).to_have_text("¥4,664.00")
    page.locator("#repayBox").scroll_into_view_if_needed()
    shot(page, "repay")
    shot(page, "full", full=True)


def test_a_wrong_key_does_not_log_in_and_a_user_sees_only_their_cards(
        served: Served, page: Any) -> None:
    expect = sync_api.expect
    log_in(page, served.url, LI, sandbox_user_key(HAN))
    expect(page.locator("#loginMsg")).to_contain_text("401")
    expect(page.locator("#app")).to_be_hidden()
    shot(page, "login-refused")
    log_in(page, served.url, HAN, sandbox_user_key(HAN))
    expect(page.locator("#cards .bank")).to_have_count(1)
    expect(page.locator("#cards")).to_contain_text("6228 48** **** 0034")
    expect(page.locator("#cards .bank .bal")).to_have_text("¥300.00")
    expect(page.locator("#statements")).to_contain_text("No credit card bound")
    assert "0014" not in page.content() and "Li Lei" not in page.content()
    shot(page, "han")


def test_top_up_withdraw_and_ride_with_the_transit_code(served: Served, page: Any) -> None:
    expect = sync_api.expect
    log_in(page, served.url, LI, sandbox_user_key(LI))
    cards = page.locator("#cards .bank")
    expect(cards).to_have_count(3)
    # the wallet takes only the debit cards: ICBC and CCB
    options = page.locator("#moveCard option").all_inner_texts()
    assert options == ["ICBC 0014", "CCB 0094"]
    expect(page.locator("#walletBal")).to_have_text("¥0.00")
    page.select_option("#moveCard", index=0)
    page.fill("#moveAmount", "1500.00")
    page.click("#topUp")
    expect(page.locator("#moveMsg")).to_contain_text("Top-up 充值 成功 ¥1,500.00")
    expect(page.locator("#walletBal")).to_have_text("¥1,500.00")
    expect(page.locator("#wallet")).to_have_text("¥1,500.00")  # the header's too
    expect(cards.nth(0).locator(".bal")).to_have_text("¥3,500.00")
    page.select_option("#moveCard", index=1)
    page.fill("#moveAmount", "200.00")
    page.click("#withdraw")
    expect(page.locator("#moveMsg")).to_contain_text("Withdrawal 提现 成功 ¥200.00")
    expect(page.locator("#walletBal")).to_have_text("¥1,300.00")
    expect(cards.nth(1).locator(".bal")).to_have_text("¥1,000.00")
    moves = page.locator("#moves .move")
    expect(moves).to_have_count(2)
    expect(moves.nth(0)).to_contain_text("Withdrawal 提现")
    expect(moves.nth(0)).to_contain_text("−¥200.00")
    expect(moves.nth(1)).to_contain_text("+¥1,500.00")
    # more than the wallet holds: refused, the reason shown, nothing moves
    page.fill("#moveAmount", "2000.00")
    page.click("#withdraw")
    expect(page.locator("#moveMsg")).to_contain_text("INSUFFICIENT_WALLET")
    expect(page.locator("#walletBal")).to_have_text("¥1,300.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#walletBox").scroll_into_view_if_needed()
    shot(page, "wallet")

    # the metro: the gate lets Li through offline; a fare above the limit is refused
    page.select_option("#rideCard", index=0)
    page.fill("#gate", "GATE0001")
    page.fill("#fare", "4.00")
    page.click("#rideForm button")
    expect(page.locator("#rideMsg")).to_contain_text("Gate open 闸机已开")
    rides = page.locator("#rides .ride")
    expect(rides).to_have_count(1)
    expect(rides.nth(0)).to_contain_text("待扣款")
    expect(page.locator("#transitToday")).to_contain_text("Today 今日 ¥4.00 of ¥100.00")
    page.fill("#fare", "25.00")
    page.click("#rideForm button")
    expect(page.locator("#rideMsg")).to_contain_text("RIDE_LIMIT")
    expect(rides).to_have_count(1)
    expect(cards.nth(0).locator(".bal")).to_have_text("¥3,500.00")  # nothing charged yet
    page.locator("#transitBox").scroll_into_view_if_needed()
    shot(page, "transit")
    # the next morning the batch goes by itself (the sandbox's clock, no event)
    moved = httpx.post(f"{served.url}/v1/operator/clock", json={"at": "2026-11-26T09:00"},
                       timeout=30, headers={"Authorization":
                                            f"Bearer {served.keys['operator']}"})
    assert moved.status_code == 200, moved.text
    page.click("#refresh")
    expect(rides.nth(0)).to_contain_text("paid 已扣款")
    expect(cards.nth(0).locator(".bal")).to_have_text("¥3,496.00")
    page.locator("#transitBox").scroll_into_view_if_needed()
    shot(page, "transit-paid")
    shot(page, "money-full", full=True)
