"""Credit cards at the issuer (信用卡) and their repayment across banks (跨行还款).

The issuer's statement run (账单日) for a card: what the cardholder owes (the credit
account's debit balance), the minimum payment (``credit.min_payment_rate`` of it, at least
``credit.min_payment_floor``, at most all of it) and the due date
(``credit.due_days`` after the statement: the interest-free period). At the next statement,
what the previous one left unpaid after its due date bears interest at
``credit.daily_interest_rate`` per day from the due date, booked as the issuer's income.

A repayment comes from one of the user's bound debit cards, at any bank: booked within the
bank when both cards are its own, otherwise an IBPS credit to the issuer (the card's
account as the payee). A repayment larger than what is owed is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks import outgoing
from qingsuan.clock import US_PER_DAY, format_time
from qingsuan.engine import AccountSpec
from qingsuan.ledger import NormalSide
from qingsuan.money import format_fen
from qingsuan.wallets.reasons import WalletReason

if TYPE_CHECKING:
    from qingsuan.banks.directory import CustomerAccount
    from qingsuan.wallets.system import Wallets

PPM: Final = 1_000_000


def _account(w: Wallets, token: str) -> CustomerAccount:
    card = w.switch.cards[token]
    return w.banks.directory.by_id[card.account.split(":", 2)[2]]


def _latest(w: Wallets, token: str) -> dict[str, Any] | None:
    statements = w.statements.get(token)
    return statements[-1] if statements else None


def owed_fen(w: Wallets, token: str) -> int:
    """What the cardholder owes the issuer now: the credit account's debit balance."""
    account = _account(w, token)
    return max(0, -w.balance_fen(account.bank, account.ledger_name))


def statement(w: Wallets, f: dict[str, Any]) -> None:
    """账单日: the issuer closes the card's statement (and charges the interest the
    previous one bore)."""
    do = "credit_statement"
    token, masked = f["card"], f["pan_masked"]
    card = w.switch.cards.get(token) if token else None
    if card is None:
        w.refuse(f, do, WalletReason.UNKNOWN_CARD, f"card {masked}")
        return
    if card.kind != "credit":
        w.refuse(f, do, WalletReason.NOT_CREDIT_CARD, f"card {masked} is a {card.kind} card")
        return
    interest = _interest(w, token)
    owed = owed_fen(w, token)
    rate, floor = w.param("credit.min_payment_rate"), w.param("credit.min_payment_floor")
    minimum = min(owed, max(floor, (owed * rate + PPM // 2) // PPM))
    due_us = w.now_us + w.param("credit.due_days") * US_PER_DAY
    w.statements.setdefault(token, []).append({
        "id": f["id"], "at_us": w.now_us, "owed_fen": owed, "minimum_fen": minimum,
        "due_us": due_us, "repaid_fen": 0, "interest_fen": interest})
    w.record(f, do, card=masked, issuer=card.issuer, owed=format_fen(owed),
             minimum=format_fen(minimum), due=format_time(due_us),
             interest=format_fen(interest))


def _interest(w: Wallets, token: str) -> int:
    """Interest on what the previous statement left unpaid after its due date, booked
    now: the cardholder's account owes it to the issuer."""
    previous = _latest(w, token)
    if previous is None or w.now_us <= previous["due_us"]:
        return 0
    unpaid = previous["owed_fen"] - previous["repaid_fen"]
    days = (w.now_us - previous["due_us"]) // US_PER_DAY
    interest = int(unpaid * w.param("credit.daily_interest_rate") * days + PPM // 2) // PPM
    if unpaid <= 0 or interest <= 0:
        return 0
    account = _account(w, token)
    books = w.banks.books
    assert books is not None and w.engine is not None
    if not books.post(account.bank, account.ledger_name, "fee_income", interest).done:
        # beyond the credit limit: the cardholder owes it to the issuer all the same
        if not w.engine.registry.has(f"{account.bank}:cardholder_receivable"):
            w.engine.open_derived([AccountSpec(account.bank, "cardholder_receivable",
                                               NormalSide.DEBIT)])
        books.post_all([(account.bank, "cardholder_receivable", "fee_income", interest)])
    return interest


def repayment(w: Wallets, f: dict[str, Any]) -> None:
    """还款: from the user's bound debit card to the user's bound credit card."""
    do = "card_repayment"
    user = w.user(f, do)
    if user is None:
        return
    for key, masked_key in (("from_card", "from_pan_masked"), ("card", "pan_masked")):
        if user.masked(f[key]) is None:
            w.refuse(f, do, WalletReason.NOT_BOUND, f"card {f[masked_key]}")
            return
    if w.switch.cards[f["card"]].kind != "credit":
        w.refuse(f, do, WalletReason.NOT_CREDIT_CARD, f"card {f['pan_masked']}")
        return
    amount, owed = int(f["amount_fen"]), owed_fen(w, f["card"])
    if amount > owed:
        w.refuse(f, do, WalletReason.REPAYMENT_TOO_LARGE, f"{format_fen(amount)} is more "
                 f"than the {format_fen(owed)} owed on card {f['pan_masked']}")
        return
    payer, payee = _account(w, f["from_card"]), _account(w, f["card"])
    latest = _latest(w, f["card"])
    rec = w.record(f, do, user=user.phone, card=f["pan_masked"],
                   from_card=f["from_pan_masked"], amount=format_fen(amount))
    if latest is not None:
        rec.update(statement=latest["id"], due=format_time(latest["due_us"]),
                   minimum=format_fen(latest["minimum_fen"]))
    books = w.banks.books
    assert books is not None
    if payer.bank == payee.bank:
        if not books.post(payer.bank, payer.ledger_name, payee.ledger_name, amount).done:
            rec["status"], rec["reason"] = "refused", WalletReason.INSUFFICIENT_FUNDS.detail(
                f"{f['from_pan_masked']} cannot pay {format_fen(amount)}")
            return
        repaid(w, f["card"], amount)
        return
    rec["status"] = "pending"
    w.waiting.append({"id": f["id"], "do": do, "phone": user.phone, "amount": amount,
                      "card": f["card"]})
    outgoing.net_payment(w.banks, {
        "id": f["id"], "system": "IBPS", "kind": "credit", "amount_fen": amount,
        "payer": ["customer", payer.bank, payer.account, payer.id],
        "payee": ["customer", payee.bank, payee.account, payee.id],
        "payee_name": payee.name})


def repaid(w: Wallets, token: str, amount_fen: int) -> None:
    """A repayment reached the issuer: it counts against the latest statement."""
    latest = _latest(w, token)
    if latest is not None:
        latest["repaid_fen"] += amount_fen


def report(w: Wallets) -> dict[str, Any]:
    """Each card's statements, by masked number."""
    return {w.switch.cards[token].pan_masked: [
        {"id": s["id"], "at": format_time(s["at_us"]), "owed": format_fen(s["owed_fen"]),
         "minimum": format_fen(s["minimum_fen"]), "due": format_time(s["due_us"]),
         "repaid": format_fen(s["repaid_fen"]), "interest": format_fen(s["interest_fen"]),
         "minimum_met": s["repaid_fen"] >= s["minimum_fen"]} for s in statements]
        for token, statements in w.statements.items()}
