"""The dashboard (/dashboard) in a real browser: Debian's Chromium driven by Playwright
opens the page on a small world served by uvicorn on a loopback port, and finds what an
operator watches (settlement balances, HVPS queues per priority, BEPS/IBPS positions
against their caps, the last payments, the clock and HVPS's phase); a transfer made
through the API then appears without a reload (the page reads the SSE stream).
Screenshots (1280x800) go to $QINGSUAN_SHOTS (default: qingsuan-shots in the
temporary directory)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from browser import SHOTS, chromium_page, require_chromium, served_over_http
from test_http_api import CCB1, ICBC1, NAMES, SANDBOX, START, order

from qingsuan.server.http import SandboxCore

require_chromium("the dashboard")

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Served:
    url: str
    core: SandboxCore
    keys: dict[str, str]

    def post(self, path: str, who: str, doc: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=doc, timeout=30,
                          headers={"Authorization": f"Bearer {self.keys[who]}"})


@pytest.fixture
def served() -> Iterator[Served]:
    with served_over_http(SANDBOX, START, NAMES) as (url, core, keys):
        yield Served(url, core, keys)


@pytest.fixture
def page(served: Served) -> Iterator[Any]:
    with chromium_page(viewport={"width": 1280, "height": 800}) as page:
        yield page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def row(page: Any, table: str, first: str) -> Any:
    return page.locator(f"#{table} tbody tr").filter(
        has=page.locator("td:first-child", has_text=first))


def test_dashboard_shows_the_world_and_a_transfer_live(served: Served, page: Any) -> None:
    expect = sync_api.expect
    # ICBC's customer pays CCB's 1,234.50 through BEPS (netted: a position against the cap)
    assert served.post("/v1/participants/ICBC/transfers", "ICBC",
                       order(id="NET-1")).status_code == 201
    # CCB lends 150,000,000.00 urgently, more than its settlement balance: queued in HVPS
    lent = served.post("/v1/participants/CCB/institution-transfers", "CCB",
                       {"id": "LOAN-1", "creditor_bank": "ABC", "amount": "150000000.00",
                        "priority": "urgent"})
    assert lent.status_code == 201 and lent.json()["status"] == "queued", lent.text
    # and 1.00 at the normal priority, behind it (HVPS keeps the more urgent first)
    lent = served.post("/v1/participants/CCB/institution-transfers", "CCB",
                       {"id": "LOAN-2", "creditor_bank": "BOC", "amount": "1.00",
                        "priority": "normal"})
    assert lent.status_code == 201 and lent.json()["status"] == "queued", lent.text

    page.goto(f"{served.url}/dashboard#key={served.keys['operator']}")
    expect(page.locator("#now")).to_have_text("2026-11-26 10:00:00")
    expect(page.locator("#phase")).to_contain_text("open")
    expect(page.locator("#day")).to_contain_text("2026-11-26")
    # the key left the address bar (a fragment is never sent, and now not even shown)
    assert "key=" not in page.url
    # the settlement balances, in yuan with two decimals and thousands grouped
    icbc, ccb = row(page, "participants", "ICBC"), row(page, "participants", "CCB")
    expect(icbc.locator("td.balance")).to_have_text("100,000,000.00")
    expect(ccb.locator("td.balance")).to_have_text("100,000,000.00")
    # the HVPS queue per priority: CCB's urgent loan waits
    expect(ccb.locator("td.queue")).to_have_text("urgent 1, normal 1")
    expect(icbc.locator("td.queue")).to_have_text("-")
    expect(page.locator("#queued")).to_have_text("2")
    expect(page.locator("#queuedv")).to_contain_text("150,000,001.00")
    # BEPS net positions against the caps: ICBC owes what it sent, CCB is owed it
    expect(icbc.locator("td.beps")).to_contain_text("-1,234.50")
    expect(icbc.locator("td.beps")).to_contain_text("10,000,000.00")
    expect(ccb.locator("td.beps")).to_contain_text("1,234.50")
    expect(icbc.locator("td.ibps")).to_contain_text("0.00")
    # the last payments with their status
    expect(row(page, "payments", "API/LOAN-1")).to_contain_text("queued")
    expect(row(page, "payments", "API/NET-1")).to_contain_text("BEPS")
    shot(page, "dashboard-before")

    # a transfer through the API: HVPS (above the BEPS item limit) settles it at once, and
    # the page shows it without a reload
    page.evaluate("window.qingsuanLoaded = true")  # (gone if the page reloaded)
    sent = served.post("/v1/participants/ICBC/transfers", "ICBC",
                       order(id="LIVE-1", amount="80000.00", urgent=True,
                             creditor={"bank": "CCB", "account": CCB1,
                                       "name": "Holder CCB 1"}))
    assert sent.status_code == 201 and sent.json()["system"] == "HVPS", sent.text
    live = row(page, "payments", "API/LIVE-1")
    expect(live).to_contain_text("HVPS")
    expect(live).to_contain_text("credited")
    expect(live).to_contain_text("80,000.00")
    expect(icbc.locator("td.balance")).to_have_text("99,920,000.00")
    expect(ccb.locator("td.balance")).to_have_text("100,080,000.00")
    assert page.evaluate("window.qingsuanLoaded") is True
    assert ICBC1 not in page.content()  # the page shows payments, not customers' accounts
    shot(page, "dashboard-live")

    # the clock moved by the operator past the 11:00 BEPS session: netted becomes settled
    moved = served.post("/v1/operator/clock", "operator", {"at": "2026-11-26T11:05"})
    assert moved.status_code == 200, moved.text
    expect(page.locator("#now")).to_have_text("2026-11-26 11:05:00")
    expect(row(page, "payments", "API/NET-1")).to_contain_text("settled")
    expect(icbc.locator("td.beps")).to_contain_text("0.00 /")


def test_dashboard_refuses_a_wrong_key_and_says_so(served: Served, page: Any) -> None:
    page.goto(f"{served.url}/dashboard")
    page.fill("#key", served.keys["ICBC"])
    page.click("#login button")
    sync_api.expect(page.locator("#state")).to_contain_text("403")
    sync_api.expect(page.locator("#participants tbody tr")).to_have_count(0)
    shot(page, "dashboard-refused")
