"""A direct debit (pacs.003, beps.127/128) from the payee's bank's own payment hub (the
sandbox): the payee's bank asks, on its customer's behalf, for the payer's account at
another bank to be debited.

The payee's bank first checks its own customer (the creditor's account must be in its
books: AC01 otherwise, nothing sent). Then the item travels as any BEPS debit
(banks/outgoing.py ``_send_net``): the payer's bank gives its receipt (回执: the simulated
one, from its own books, or a connected participant's), the item nets, the payer's bank
debits its customer and the payee's bank credits its own (banks/incoming.py).

A payer's account the world's books do not hold (AC01) or hold closed (AC04) is refused
before CNAPS asks anyone: the world could not book the debit, whoever gave the receipt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qingsuan.banks.outgoing import _send_net
from qingsuan.reasons import Reason

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks

#: the banks' event kind this module handles
CUSTOMER_DIRECT_DEBIT = "customer_direct_debit"


def customer_direct_debit(b: Banks, f: dict[str, Any]) -> None:
    """``f``: id, sender (the payee's bank), receiver (the payer's bank), amount_fen, kind
    (``ordinary_debit`` or ``periodic_debit``), debtor_account, creditor_account."""
    payee_bank, payer_bank = f["sender"], f["receiver"]
    creditor = b.directory.by_number.get((payee_bank, f["creditor_account"]))
    if creditor is None or creditor.closed:
        _refuse(b, f, creditor is None, f"the payee's bank {payee_bank} has no open account "
                                        f"{f['creditor_account']}: a debit is asked for its "
                                        "own customer")
        return
    debtor = b.directory.by_number.get((payer_bank, f["debtor_account"]))
    if debtor is None or debtor.closed:
        _refuse(b, f, debtor is None, f"the payer's bank {payer_bank} has no open account "
                                      f"{f['debtor_account']}")
        return
    _send_net(b, f["kind"], {
        "id": f["id"], "system": "BEPS", "kind": f["kind"], "amount_fen": f["amount_fen"],
        "payee_name": None,
        "payer": ("customer", payer_bank, debtor.account, debtor.id),
        "payee": ("customer", payee_bank, creditor.account, creditor.id)})


def _refuse(b: Banks, f: dict[str, Any], unknown: bool, message: str) -> None:
    """Refused before CNAPS sees it: no such account (AC01) or a closed one (AC04)."""
    assert b.engine is not None
    record = b.record(f["id"], f["kind"], "BEPS")
    record.move(b.engine.now_us, "rejected")
    record.reason = (Reason.AC01 if unknown else Reason.AC04).detail(message)
