"""Refunds (退货) at the switch: a new transaction that gives the cardholder back all or
part of a POS purchase, on the same or a later clearing day (docs/CARDS.md). The one
thing easy to get wrong: the merchant must be able to cover it (its account and its
takings not yet paid out), or the acquirer would pay out money it does not hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.records import (
    TO_ISSUER_PROCS,
    CardTxn,
    Terminal,
    amount_fen,
    awaiting_clearing,
    backwards,
    mdr_fen,
)
from qingsuan.cards.requests import CardRequest, Mti, Processing

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch


def refund(sw: CardSwitch, req: CardRequest, key: str, now_us: int) -> dict[str, str]:
    """退货 (0220, processing code 20): a new transaction with its own key and the flows
    reversed: the issuer credits the cardholder, the acquirer takes it from what it owes
    the merchant."""
    original = sw.txns.get(req.original_key or "")
    amount = amount_fen(req.amount_text if req.amount_text is not None else "0")
    terminal_id = req.terminal if req.terminal is not None else ""
    terminal = sw.terminals.get(terminal_id)
    txn = CardTxn(key, Mti.ADVICE.value, Processing.RETURN.value,
                  original.pan_masked if original else "",
                  original.issuer if original else None,
                  terminal.acquirer if terminal else req.acquirer or "", terminal_id,
                  amount, RC.SYSTEM_MALFUNCTION, "declined", now_us, req.body, req.rrn or "",
                  card=original.card if original else "",
                  card_kind=original.card_kind if original else "debit",
                  original_key=req.original_key or "")
    sw.txns[key] = txn
    txn.rc = _decide(sw, txn, original, terminal)
    if txn.rc == RC.APPROVED:
        sw._approve(txn, now_us)
    elif txn.rc == RC.RESPONSE_RECEIVED_TOO_LATE:
        txn.status = "reversed"
    return sw._answer(txn)


def _decide(sw: CardSwitch, txn: CardTxn, original: CardTxn | None,
            terminal: Terminal | None) -> str:
    assert sw.engine is not None
    if original is None:
        return RC.ORIGINAL_NOT_FOUND
    if original.mti not in ("0200", "0220") or original.proc != Processing.PURCHASE or \
            original.status not in ("approved", "cleared") or original.issuer is None:
        return RC.INVALID_TRANSACTION  # reversed, declined, or not a purchase (or a completion)
    bought_at = sw.terminals[original.terminal]
    if terminal is None or terminal.kind != "pos" or \
            terminal.acquirer != bought_at.acquirer or terminal.merchant != bought_at.merchant:
        return RC.INVALID_TRANSACTION  # a refund comes from the merchant that sold
    if txn.amount_fen <= 0 or original.refunded_fen + txn.amount_fen > original.amount_fen:
        return RC.INVALID_AMOUNT
    merchant = terminal.merchant
    if merchant is not None and merchant_funds(sw, merchant) < txn.amount_fen:
        return RC.INSUFFICIENT_FUNDS  # the acquirer will not pay out what the merchant cannot cover
    mode = sw.hosts.get(original.issuer, "up")
    if mode == "down":
        # no stand-in for refunds: only the issuer credits its cardholder
        return RC.ISSUER_UNAVAILABLE
    if mode == "slow":  # booked by the issuer, answered late, reversed by the switch
        txn.late_rc = RC.APPROVED if sw._post(txn, sw._issuer_leg(txn)) else RC.SYSTEM_MALFUNCTION
        if txn.late_rc == RC.APPROVED:
            undone = sw._post(txn, backwards(sw._issuer_leg(txn)))
            assert undone, "a reversal of what was just booked cannot fail"
        return RC.RESPONSE_RECEIVED_TOO_LATE
    if not sw._post(txn, sw._issuer_leg(txn) + sw._acquirer_leg(txn)):
        return RC.SYSTEM_MALFUNCTION
    txn.fee_base_fen = original.amount_fen
    txn.refunded_before_fen = original.refunded_fen
    original.refunded_fen += txn.amount_fen
    return RC.APPROVED


def merchant_funds(sw: CardSwitch, merchant: str) -> int:
    """What a merchant can give back: its account (down to its limit), plus its takings
    not yet paid out (net of the MDR and of refunds), less what it still owes."""
    assert sw.engine is not None
    reg, ledger = sw.engine.registry, sw.engine.ledger
    bank, name = merchant.split(":", 1)
    acc = reg.id(bank, name)
    funds = ledger.balance(acc).available_fen + ledger.account(acc).overdraft_limit_fen
    for t in sw._open_by_merchant.get(merchant, {}).values():
        if not awaiting_clearing(t):
            continue
        terminal = sw.terminals.get(t.terminal)
        if terminal is None or terminal.merchant != merchant:
            continue
        if t.proc == Processing.PURCHASE:
            funds += t.amount_fen - mdr_fen(t.amount_fen, terminal.mdr_ppm)
        elif t.proc in TO_ISSUER_PROCS:
            funds -= t.amount_fen
        elif t.proc == "02":
            funds += t.amount_fen
    return funds + sw.merchant_carry.get(merchant, 0)
