"""The app's event kinds as the banks' command table names them (banks/system.py
HANDLERS): each is carried out by the world's ``wallets`` system. Imports nothing of the
banks, so the banks can import it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

#: the app's and the institutions' scenario events
WALLET_EVENTS: Final = ("bind_card", "unbind_card", "card_balances", "payment_code",
                        "qr_pay", "wallet_top_up", "wallet_withdrawal", "wallet_transfer",
                        "claim_voucher", "credit_statement", "card_repayment", "wallet_pay",
                        "close_campaign", "transit_ride", "transit_clearing")


def handler(do: str) -> Callable[[Any, dict[str, Any]], None]:
    """The banks' handler of ``do``: hands the event to the wallets system."""

    def run(b: Any, f: dict[str, Any]) -> None:
        wallets_of(b.engine).handle(do, f)

    run.__name__ = f"wallet_{do}"
    return run


def wallets_of(engine: Any) -> Any:
    """The world's wallets system (hosted by the world's builder, prefix ``world``: its
    state is the builder's), or None in an engine without one."""
    return getattr(engine.systems.get("world"), "wallets", None)
