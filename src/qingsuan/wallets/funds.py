"""The institution's customer funds (客户备付金): top-up by quick pay (快捷支付), withdrawal
to a bank account, and wallet-to-wallet transfers inside the institution.

A top-up is a real-time IBPS debit (实时借记) of the bound card's account, which the user
authorised when binding the card (the quick-pay agreement): the card's bank debits its
customer, IBPS nets the item, the institution's collection account is credited and the
institution moves it to the wallet. A withdrawal takes the wallet's money to the
collection account, then sends an IBPS credit to the card's account; if IBPS refuses it,
or the bank returns it (退汇), the money goes back to the wallet. The institution's
reserve at the PBOC moves with every netted item (checks.reserve_covers_wallets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qingsuan.banks import outgoing
from qingsuan.money import format_fen
from qingsuan.wallets.reasons import WalletReason

if TYPE_CHECKING:
    from qingsuan.banks.directory import CustomerAccount
    from qingsuan.wallets.state import User
    from qingsuan.wallets.system import Wallets

def _card_account(w: Wallets, f: dict[str, Any], do: str
                  ) -> tuple[User, CustomerAccount] | None:
    """The request's user and the bank account behind its bound card (the quick-pay
    agreement's account)."""
    found = w.bound_card(f, do)
    if found is None:
        return None
    card = w.switch.cards[f["card"]]
    return found[0], w.banks.directory.by_id[card.account.split(":", 2)[2]]


def post(w: Wallets, book: str, debit: str, credit: str, amount_fen: int) -> bool:
    """One transfer in ``book``; whether it was booked (a wallet must not overdraw)."""
    assert w.banks.books is not None
    return w.banks.books.post(book, debit, credit, amount_fen).done


def _room_fen(w: Wallets, user: User) -> int:
    return w.param("wallets.balance_limit") - w.balance_fen(user.institution, user.wallet)


def top_up(w: Wallets, f: dict[str, Any]) -> None:
    do = "wallet_top_up"
    found = _card_account(w, f, do)
    if found is None:
        return
    user, account = found
    amount = int(f["amount_fen"])
    if amount > _room_fen(w, user):
        w.refuse(f, do, WalletReason.WALLET_LIMIT, f"amount {format_fen(amount)} would take "
                 f"the wallet above {format_fen(w.param('wallets.balance_limit'))} "
                 "(wallets.balance_limit)")
        return
    pool = w.banks.directory.by_id[w.institutions[user.institution]]
    w.record(f, do, user=user.phone, amount=format_fen(amount), status="pending")
    w.waiting.append({"id": f["id"], "do": do, "phone": user.phone, "amount": amount})
    outgoing.net_payment(w.banks, {
        "id": f["id"], "system": "IBPS", "kind": "realtime_debit", "amount_fen": amount,
        "payer": ["customer", account.bank, account.account, account.id],
        "payee": ["customer", pool.bank, pool.account, pool.id], "payee_name": pool.name})


def withdrawal(w: Wallets, f: dict[str, Any]) -> None:
    do = "wallet_withdrawal"
    found = _card_account(w, f, do)
    if found is None:
        return
    user, account = found
    amount = int(f["amount_fen"])
    pool = w.banks.directory.by_id[w.institutions[user.institution]]
    if not post(w, user.institution, user.wallet, pool.ledger_name, amount):
        w.refuse(f, do, WalletReason.INSUFFICIENT_WALLET, f"{user.phone} cannot withdraw "
                 f"{format_fen(amount)}")
        return
    w.record(f, do, user=user.phone, amount=format_fen(amount), status="pending")
    _pay_from_pool(w, f, do, user.phone, pool, account, amount)


def transfer(w: Wallets, f: dict[str, Any]) -> None:
    """转账: from one wallet to another at the same institution, booked at once."""
    do = "wallet_transfer"
    payer = w.user(f, do, "from")
    payee = w.user(f, do, "to") if payer is not None else None
    if payer is None or payee is None:
        return
    amount = int(f["amount_fen"])
    if payer.institution != payee.institution:
        w.refuse(f, do, WalletReason.OTHER_INSTITUTION, f"{payer.phone} at "
                 f"{payer.institution}, {payee.phone} at {payee.institution}")
        return
    if amount > _room_fen(w, payee):
        w.refuse(f, do, WalletReason.WALLET_LIMIT, f"{payee.phone}'s wallet would hold more "
                 f"than {format_fen(w.param('wallets.balance_limit'))}")
        return
    if not post(w, payer.institution, payer.wallet, payee.wallet, amount):
        w.refuse(f, do, WalletReason.INSUFFICIENT_WALLET, f"{payer.phone} cannot pay "
                 f"{format_fen(amount)}")
        return
    w.record(f, do, user=payer.phone, to=payee.phone, amount=format_fen(amount))


def pay_merchant(w: Wallets, f: dict[str, Any]) -> None:
    """余额支付: the user scans the merchant's code and pays from the wallet. The
    institution takes the money from the wallet to its collection account and pays the
    merchant's account by an IBPS credit (in its own book when the merchant banks with
    it); refused by IBPS or returned, the money goes back to the wallet."""
    do = "wallet_pay"
    user = w.user(f, do)
    if user is None:
        return
    amount = int(f["amount_fen"])
    terminal = w.switch.terminals[f["terminal"]]
    merchant = w.banks.directory.by_id[(terminal.merchant or "::").split(":", 2)[2]]
    pool = w.banks.directory.by_id[w.institutions[user.institution]]
    if not post(w, user.institution, user.wallet, pool.ledger_name, amount):
        w.refuse(f, do, WalletReason.INSUFFICIENT_WALLET, f"{user.phone} cannot pay "
                 f"{format_fen(amount)} from the wallet")
        return
    rec = w.record(f, do, user=user.phone, merchant=merchant.id, amount=format_fen(amount))
    if merchant.bank == user.institution:  # the merchant's account is at the institution
        moved = post(w, user.institution, pool.ledger_name, merchant.ledger_name, amount)
        assert moved, "the collection account was just credited"
        return
    rec["status"] = "pending"
    _pay_from_pool(w, f, do, user.phone, pool, merchant, amount)


def _pay_from_pool(w: Wallets, f: dict[str, Any], do: str, phone: str, pool: CustomerAccount,
                   payee: CustomerAccount, amount: int) -> None:
    """The institution pays ``payee`` (a bank customer) from its collection account by an
    IBPS credit; the move waits for IBPS's outcome (``w.waiting``: refused or returned, the
    money goes back to ``phone``'s wallet)."""
    w.waiting.append({"id": f["id"], "do": do, "phone": phone, "amount": amount})
    outgoing.net_payment(w.banks, {
        "id": f["id"], "system": "IBPS", "kind": "credit", "amount_fen": amount,
        "payer": ["customer", pool.bank, pool.account, pool.id],
        "payee": ["customer", payee.bank, payee.account, payee.id],
        "payee_name": payee.name})
