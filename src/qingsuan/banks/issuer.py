"""The issuing bank's host (发卡行): its answer to an authorisation the switch forwards.

A pure decision from the card's record, what the terminal sent and what the cardholder's
account can bear, in the order an issuer checks: the card (14 unknown, 05 not active), the
PIN (55, blocking the card after ``cards.pin_tries`` wrong ones), a balance inquiry
(answered with the available balance), the amount (13), the daily cash limit (61) and the
funds with the account's credit limit (51). The switch asks it for every issuer that is up
and books the issuer's leg when it approves (docs/CARDS.md).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from qingsuan.cards.iso8583 import RC_APPROVED
from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.requests import PROC_BALANCE, PROC_WITHDRAWAL


class CardRecord(Protocol):
    """What the issuer keeps of a card (the switch holds the records for its BIN table)."""

    kind: str
    pin_hash: str | None
    status: str
    wrong_pins: int


@dataclass(frozen=True, slots=True)
class IssuerRules:
    """The parameters an issuer's decision reads (cards.*), in fen and counts."""

    pos_no_pin_limit_fen: int
    pin_tries: int
    daily_withdrawal_limit_fen: int


def authorise(card: CardRecord | None, *, pin_hash: str | None, proc: str, amount_fen: int,
              at_atm: bool, available_fen: int, overdraft_limit_fen: int,
              withdrawn_today_fen: int, rules: IssuerRules) -> str:
    """The issuer's response code. Mutates the card's PIN counter and status (the
    issuer's own record), as the real host does when it answers."""
    if card is None:
        return RC.INVALID_CARD_NUMBER
    if card.status != "active":
        return RC.DO_NOT_HONOUR
    # An ATM always needs the PIN; at a POS a PIN given is checked, and a debit card
    # needs one above the no-PIN limit (小额免密免签).
    if at_atm or pin_hash is not None or (
            card.kind == "debit" and amount_fen > rules.pos_no_pin_limit_fen):
        if card.pin_hash is None or pin_hash is None or not hmac.compare_digest(
                card.pin_hash, pin_hash):
            card.wrong_pins += 1
            if card.wrong_pins >= rules.pin_tries:
                card.status = "blocked"
            return RC.WRONG_PIN
        card.wrong_pins = 0
    if proc == PROC_BALANCE:
        return RC_APPROVED
    if amount_fen <= 0:
        return RC.INVALID_AMOUNT
    if proc == PROC_WITHDRAWAL and \
            withdrawn_today_fen + amount_fen > rules.daily_withdrawal_limit_fen:
        return RC.EXCEEDS_WITHDRAWAL_LIMIT
    if available_fen - amount_fen < -overdraft_limit_fen:
        return RC.INSUFFICIENT_FUNDS
    return RC_APPROVED
