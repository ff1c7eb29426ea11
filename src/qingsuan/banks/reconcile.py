"""对账: the checks any edge can run on a world, as queries (nothing is logged).

Each answers one question a participant or the central bank asks of the books: do they
balance, is money conserved, does every bank's mirror of its settlement account agree with
the PBOC's books, is every amount in transit explained by a payment in transit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qingsuan.ledger import PendingState
from qingsuan.wallets.events import wallets_of

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks

PBOC = "PBOC"


def _posted(b: Banks, book: str, name: str) -> int:
    assert b.books is not None
    return b.books.posted_fen(book, name)


def books_balanced(b: Banks) -> bool:
    assert b.engine is not None
    return all(p == 0 and q == 0 for p, q in b.engine.ledger.book_totals().values())


def mirrors_match(b: Banks) -> bool:
    """Each participant's "reserve at PBOC" equals its settlement account at the PBOC."""
    return all(_posted(b, PBOC, f"settlement:{n}") == _posted(b, n, "reserve_at_pboc")
               for n in b.settling)


def money_conserved(b: Banks) -> bool:
    """Central-bank money (all settlement accounts) and commercial-bank money (all customer
    deposits) are what the world opened with, apart from the credit the system grants
    (HVPS intraday and overnight credit; issuers' receivables from cardholders whose
    stand-in purchases overdrew them) and stand-in purchases whose advice the issuer has
    not booked yet (in transit). Balances are booked (posted) balances: a card
    pre-authorisation's hold (预授权, a pending transfer) moves no money until its
    completion posts it (suspense_explained checks the holds)."""
    assert b.engine is not None
    registry = b.engine.registry
    names = b.settling
    settlement = sum(_posted(b, PBOC, f"settlement:{n}") for n in names)
    credit = sum(_posted(b, PBOC, f"{kind}:{n}") for n in names
                 for kind in ("intraday_credit", "overnight_credit"))
    deposits = sum(_posted(b, c.bank, c.ledger_name) for c in b.directory.by_id.values())
    # money customers hold at payment institutions (wallets) and in voucher funds
    wallets = wallets_of(b.engine)
    deposits += wallets.held_fen() if wallets is not None else 0
    # what customers hold or were charged: deposits, what merchants are still owed, cash
    # taken out of ATMs, and the fees banks charged them (channel fees, MDR)
    owed = sum(_posted(b, n, "due_to_merchants") + _posted(b, n, "fee_income")
               + _posted(b, n, "returns_payable") for n in b.members)
    cash_out = sum(opening - _posted(b, b.terminals[tid][0], f"atm_cash:{tid}")
                   for tid, opening in b.atm_opening_fen.items())
    # card purchases the switch approved in stand-in for an issuer still down: the merchant
    # is owed them, the cardholder not yet charged (the advice in transit); and what
    # cardholders owe their issuers beyond their accounts: bank credit, money banks created
    advices = sum(t.amount_fen for t in b.switch.txns.values() if t.advice == "pending")
    lent = sum(_posted(b, n, "cardholder_receivable") for n in b.members
               if registry.has(f"{n}:cardholder_receivable"))
    # returns (退汇) on their way back to the payer: the payer's money, in HVPS transit
    returning = sum(r["amount"] for ref_id, r in b.hvps_refs.items() if r["kind"] == "return"
                    and b.payments[ref_id].status in ("accepted", "queued"))
    returning += sum(r["amount"] for r in b.returns_pending)
    return (settlement - credit == b.opening_settlement_fen
            and deposits + owed + cash_out + returning - advices - lent
            == b.opening_deposits_fen)


def suspense_explained(b: Banks) -> bool:
    """Every bank's transit (suspense) accounts are explained by items in transit.
    BEPS/IBPS: its clearing account equals its net position (netted, not yet settled).
    HVPS: nothing is left posted in transit, and the funds reserved on the outgoing account
    are exactly the bank's payments accepted but not yet settled (held ones included).
    Cards: the holds reserved on an issuer's "due to switch" are exactly its open
    pre-authorisations (预授权; an expired hold is no longer reserved)."""
    assert b.engine is not None
    ledger, reg = b.engine.ledger, b.engine.registry
    held: dict[str, int] = {}
    for t in b.switch.txns.values():
        if t.status == "authorised" and t.issuer is not None and \
                ledger.pending_state(t.hold_id) is PendingState.PENDING:
            held[t.issuer] = held.get(t.issuer, 0) + t.amount_fen
    waiting: dict[str, int] = {}
    own: dict[str, int] = {}
    for ref_id, r in b.hvps_refs.items():
        if b.payments[ref_id].status in ("accepted", "queued"):
            into = waiting if r["kind"] == "customer" else own
            into[r["sender"]] = into.get(r["sender"], 0) + r["amount"]
    for r in b.returns_pending:  # refused by HVPS, waiting in transit to be sent again
        own[r["sender"]] = own.get(r["sender"], 0) + r["amount"]
    for h in b.held:
        sender = h["fields"]["sender"]
        waiting[sender] = waiting.get(sender, 0) + int(h["fields"]["amount_fen"])
    owed_back: dict[str, int] = {}
    for r in b.net_refs.values():  # BEPS/IBPS returns waiting behind their sender's cap
        if r.get("kind") == "net_return":
            owed_back[r["sender"]] = owed_back.get(r["sender"], 0) + r["amount"]
    for name in b.members:
        if ledger.balance(reg.id(name, "due_to_switch")).credits_pending_fen != \
                held.get(name, 0):
            return False
        if ledger.balance(reg.id(name, "returns_payable")).posted_fen != \
                owed_back.get(name, 0):
            return False
        for net in b.cnaps.net.values():
            if ledger.balance(reg.id(name, f"{net.key}_clearing")).posted_fen != \
                    net.positions.get(name, 0):
                return False
        out = ledger.balance(reg.id(name, "hvps_outgoing"))
        inc = ledger.balance(reg.id(name, "hvps_incoming"))
        if out.posted_fen != -own.get(name, 0) or inc.posted_fen != 0 or \
                out.credits_pending_fen != waiting.get(name, 0):
            return False
    return True
