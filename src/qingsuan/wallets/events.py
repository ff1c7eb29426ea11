"""The app's event kinds as the banks' command table names them (banks/system.py
HANDLERS): each is carried out by the world's ``wallets`` system. Imports nothing of the
banks, so the banks can import it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

#: the app's and the institutions' scenario events
WALLET_EVENTS: Final = ("bind_card", "unbind_card", "card_balances", "payment_code",
                        "qr_pay", "wallet_top_up", "wallet_withdrawal", "wallet_transfer",
                        "claim_voucher")


def handler(do: str) -> Callable[[Any, dict[str, Any]], None]:
    """The banks' handler of ``do``: hands the event to the wallets system."""

    def run(b: Any, f: dict[str, Any]) -> None:
        b.engine.systems["wallets"].handle(do, f)

    run.__name__ = f"wallet_{do}"
    return run
