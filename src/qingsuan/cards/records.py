"""The card switch's records (cards, terminals, the transactions it keeps) and the small
arithmetic every flow of the switch shares (cards/switch.py and the flow modules)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from qingsuan.cards.clearing import PURCHASE, REFUND, TO_ACQUIRER, TO_ISSUER, WITHDRAWAL

_Fen = TypeVar("_Fen", int, npt.NDArray[np.int64])

#: the card switch's name as a CNAPS participant
SWITCH: Final = "CUPS"

MAX_TXNS: Final = 10_000_000


@dataclass
class Card:
    """A card in the switch's card file. Never the PAN in clear (cards/vault.py)."""

    token: str            # the card's identifier everywhere in the engine ("tok_...")
    pan_masked: str       # first 6, last 4: the BIN routes it, reports show it
    pan_enc: str          # the PAN under the world's card key (AES-GCM, hex)
    issuer: str
    account: str          # ledger name "BANK:customer:ID"
    kind: str             # debit / credit
    pin_hash: str | None  # PIN verification value under the world's PIN key; never the PIN
    status: str = "active"
    wrong_pins: int = 0


@dataclass
class Terminal:
    id: str
    kind: str             # atm / pos
    acquirer: str
    merchant: str | None  # ledger name of the merchant's account (POS)
    mdr_ppm: int = 0      # the merchant discount rate its acquirer charges


@dataclass(slots=True)  # the switch keeps every one: slots halve its memory
class CardTxn:
    key: str
    mti: str
    proc: str
    pan_masked: str
    issuer: str | None
    acquirer: str
    terminal: str
    amount_fen: int
    rc: str
    status: str           # approved, declined, reversed
    at_us: int
    body: str             # the request as logged (JSON, for duplicate detection)
    rrn: str
    balance_fen: int | None = None
    card: str = ""        # the card's token (cards/vault.py); reports show pan_masked
    card_kind: str = "debit"
    clearing_date: str = ""  # 清算日期 (field 15): the clearing day it belongs to
    #: the net fee each side got (+) or paid (-), fixed when its clearing day closed
    issuer_fee_net_fen: int = 0
    acquirer_fee_net_fen: int = 0
    #: a refund (退货): the key of the purchase it refunds
    original_key: str = ""
    #: a purchase: what its refunds gave the cardholder back so far
    refunded_fen: int = 0
    #: a refund: the purchase's amount and what earlier refunds gave back (its fees are that
    #: share of the purchase's, cards/clearing.py)
    fee_base_fen: int = 0
    refunded_before_fen: int = 0
    #: 代授权: approved by the switch for an issuer that was down; ``advice`` is "pending"
    #: until the issuer is back and books it ("delivered"), or "cancelled" (reversed first)
    stand_in: bool = False
    advice: str = ""
    #: what the cardholder's account could not bear when a stand-in advice was booked: the
    #: issuer holds it as a receivable from the cardholder (持卡人欠款)
    receivable_fen: int = 0
    #: the issuer's own answer when it came too late (68): the switch reversed it
    late_rc: str = ""

    #: a dispute step (差错): its kind (cards/disputes.py DisputeKind); ``original_key`` names
    #: the disputed transaction. Its status: refused, accepted, cleared; a retrieval request
    #: (no money, never cleared) becomes "answered" when the acquirer replies
    dispute: str = ""
    #: why the switch refused a dispute step (readable; the code is in ``rc``)
    note: str = ""
    #: a pre-authorisation (预授权): the issuer's hold (a pending ledger transfer) and when
    #: it expires by itself (``cards.preauth_days`` after the pre-authorisation)
    hold_id: int = 0
    expires_us: int = 0

    @property
    def payer(self) -> str:
        """The side that owes the amount in clearing: the issuer, or the acquirer for a
        refund, a credit adjustment or a chargeback."""
        return self.acquirer if self.proc in TO_ISSUER_PROCS else (self.issuer or "")

    @property
    def payee(self) -> str:
        return (self.issuer or "") if self.proc in TO_ISSUER_PROCS else self.acquirer


#: processing code -> the clearing kind (cards/clearing.py)
#: (dispute items: 22 credit to the cardholder, 02 debit to the cardholder)
CLEARING_KIND: Final = {"00": PURCHASE, "01": WITHDRAWAL, "20": REFUND, "22": TO_ISSUER,
                        "02": TO_ACQUIRER}
#: processing codes whose amount the acquirer pays the issuer
TO_ISSUER_PROCS: Final = ("20", "22")


#: the statuses of a transaction that waits for its clearing day (with a processing code
#: that clears)
AWAITING_STATUSES: Final = ("approved", "accepted")


def awaiting_clearing(t: CardTxn) -> bool:
    """Approved (a dispute step: accepted) and waiting for its clearing day to close
    (inquiries never clear)."""
    return t.status in AWAITING_STATUSES and t.proc in CLEARING_KIND


def amount_fen(text: str) -> int:
    """Field 4 (amount in fen, digits); anything else reads as 0 (then 13)."""
    return int(text) if text.isdigit() and len(text) <= 12 else 0


def mdr_fen(amount_fen: _Fen, mdr_ppm: _Fen) -> _Fen:
    """The merchant discount on an amount, rounded half-up to the fen (ints, or int64
    columns: the card batch's, cards/batch.py)."""
    return (amount_fen * mdr_ppm + 500_000) // 1_000_000


def backwards(legs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The postings that undo ``legs`` exactly (debit and credit swapped)."""
    return [(credit, debit, amount) for debit, credit, amount in legs]


def hhmm(minutes: int) -> dt.time:
    """A time of day given in minutes after midnight (as params.py holds them)."""
    return dt.time(minutes // 60, minutes % 60)
