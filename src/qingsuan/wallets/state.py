"""What the app and the institutions keep (all of it in the engine's state, so replay
rebuilds it exactly): users and their bound cards, payment codes, campaigns and their
vouchers, and the record of every app event. Never a card number (only its token and
masked form) and never a card balance: balances are asked of the issuer each time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class User:
    """An app user (用户): a phone number, a name, a wallet at one institution."""

    phone: str
    name: str
    institution: str
    #: bound cards (绑卡) in the order bound: [token, masked PAN]
    cards: list[list[str]] = field(default_factory=list)

    def masked(self, token: str) -> str | None:
        """The masked PAN of a bound card; None when the card is not bound."""
        return next((m for t, m in self.cards if t == token), None)

    @property
    def wallet(self) -> str:
        """The wallet's account in the institution's book."""
        return f"wallet:{self.phone}"


@dataclass
class PaymentCode:
    """A one-time payment code (付款码) the user shows the merchant."""

    code: str
    phone: str
    card: str
    expires_us: int
    used_by: str = ""


@dataclass
class Campaign:
    """A voucher campaign (消费券活动): ``discount_fen`` off a purchase of at least
    ``threshold_fen`` at an eligible merchant, funded by the sponsor's budget."""

    id: str
    sponsor: str          # the sponsor's customer id (a city government, a bank)
    sponsor_bank: str
    budget_fen: int
    threshold_fen: int
    discount_fen: int
    per_user: int
    merchants: list[str]  # eligible merchants' customer ids (empty: any)
    mccs: list[str]       # eligible merchant category codes (empty: any)
    claim_from_us: int
    claim_until_us: int
    valid_from_us: int
    valid_until_us: int
    claimed: int = 0
    used: int = 0
    spend_fen: int = 0    # the full prices of the purchases vouchers were used on
    paid_fen: int = 0     # discounts paid to merchants
    returned_fen: int = 0  # the unused budget given back to the sponsor at the close
    closed: bool = False

    @property
    def fund(self) -> str:
        """The campaign's budget, set aside in the sponsor bank's book."""
        return f"voucher_fund:{self.id}"

    def committed_fen(self) -> int:
        """What the vouchers claimed so far may cost at most: never above the budget."""
        return self.claimed * self.discount_fen


@dataclass
class Voucher:
    campaign: str
    phone: str
    status: str = "claimed"  # claimed, used, expired (unused when the campaign closed)
    used_by: str = ""


def dump(obj: Any) -> dict[str, Any]:
    return asdict(obj)


@dataclass
class Ride:
    """A ride through a gate authorised offline with the transit code (乘车码), waiting for
    the next day's batch (``authorised``), cleared through the switch (``cleared``), or
    declined by the issuer and retried at each later batch (``declined``: the user's
    debt to the operator, 欠费)."""

    phone: str
    card: str             # the card's token, never its number
    masked: str
    terminal: str
    fare_fen: int
    at_us: int
    day: str              # the Beijing date of the ride (the daily offline limit's day)
    status: str = "authorised"
    attempts: int = 0
    cleared_by: str = ""  # the switch record of the attempt that paid it
