"""The wallet story told in words (`qingsuan demo --story wallet`): every app event has
its sentence, card numbers masked, refusals with their reason code."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from qingsuan.sim.narrate import narrator
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1] / "src" / "qingsuan" / "scenarios"


def _told() -> str:
    console = Console(record=True, width=400)
    run_scenario(load_scenario(ROOT / "wallet.yaml"), store="memory:",
                 on_step=narrator(console))
    return console.export_text()


def test_the_wallet_story_tells_each_app_event() -> None:
    text = _told()
    expected = [
        "Li Lei (13800000001) binds card 622202...0014 in the app (绑卡)",
        "ICBC confirms: the card is bound",
        "refused NAME_MISMATCH",
        "refused UNKNOWN_CARD",
        "refused ACCOUNT_CLOSED",
        "card 621700...0094: balance 800.00 CNY",
        "tops up the wallet (充值) with 500.00 CNY from card 622202...0014 by quick pay",
        "claims a voucher (领券) of campaign city-spring",
        "refused CLAIM_LIMIT",
        "pays 150.00 CNY with card 621700...0094, using a voucher of campaign city-spring",
        "the card pays 130.00 CNY to Noodle House",
        "the merchant receives the full 150.00 CNY",
        "shows a payment code (付款码) for card 622202...0014",
        "scans Li Lei's payment code (code-1) for 36.00 CNY",
        "refused CODE_USED",
        "refused CODE_EXPIRED",
        "sends Han Meimei (13900000002) 100.00 CNY wallet to wallet (转账)",
        "withdraws 200.00 CNY from the wallet to card 621700...0094 (提现)",
        "ABC finds 600.00 CNY owed: minimum payment (最低还款额) 60.00 CNY, due (到期还款日) "
        "2026-12-15",
        "refused REPAYMENT_TOO_LARGE",
        "an IBPS credit to the issuer",
        "Han Meimei (13900000002) scans the QR code of terminal POS00002 and pays 30.00 CNY "
        "from the wallet's balance (余额支付)",
        "an IBPS credit to Corner Cafe's bank",
        "shows the transit code (乘车码) of card 622202...0014 at gate GATE0001: fare 4.00",
        "authorised offline (脱机): no switch, no issuer",
        "refused RIDE_LIMIT",
        "2 ride(s): each a purchase (0200) at its gate's terminal, decided by the issuer; 2 "
        "approved for 9.00 CNY",
        "campaign cafe-evening ends (活动结束)",
        "the unused budget, 50.00 CNY, goes back from the campaign's fund to the sponsor City "
        "of Hangzhou",
    ]
    missing = [s for s in expected if s not in text]
    assert missing == []


def test_the_story_never_prints_a_whole_card_number() -> None:
    text = _told()
    for pan in ("6222020200000000014", "6217000010000000094", "6228480000000005124"):
        assert pan not in text
