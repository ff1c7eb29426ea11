"""A return (退汇, pacs.004) from the receiving bank's own payment hub (the sandbox): the
bank gives back a BEPS or IBPS credit that netted and that it had credited to its
customer.

The bank takes the amount back from the customer it credited (AM04 when the account no
longer holds it, AC04 when it has been closed since: nothing sent), and sends the return
item as it does for a credit it cannot apply (banks/incoming.py ``send_back``): netted,
the original payer's bank credits its customer and the payment is ``returned``. A return
CNAPS refuses gives the customer the money back at once. A credit the banks did not book
for a customer (an institution's own, say) goes back through CNAPS alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks import incoming
from qingsuan.cnaps.netsys import NetOutcome
from qingsuan.reasons import Reason

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks

#: the banks' event kind this module handles
CUSTOMER_RETURN: Final = "customer_return"
#: a customer credit the receiving bank can give back: netted and credited to its customer
_RETURNABLE: Final = frozenset({"credited", "settled"})


def customer_return(b: Banks, f: dict[str, Any]) -> NetOutcome:
    """``f``: system, ref (the original credit's), code and message (the return's
    reason). CNAPS's outcome of the return item, or the bank's refusal."""
    ref, record = b.net_refs.get(f["ref"]), b.payments.get(f["ref"])
    if ref is None or record is None or ref.get("kind") == "net_return" or \
            ref["debit"] or record.status not in _RETURNABLE:
        result: NetOutcome = b.cnaps_command("cnaps.net_return", {
            "system": f["system"], "ref": f["ref"], "code": f["code"],
            "message": f["message"]})
        return result
    assert b.books is not None
    payee_id, problem = incoming.payee_of(b, ref)
    if problem is not None:
        return NetOutcome(False, "rejected", (Reason.AC04.code, (
            f"{problem[1]}: the bank cannot take back what it credited")))
    clearing = f"{ref['system'].lower()}_clearing"
    receiver, amount = ref["receiver"], ref["amount"]
    taken = b.books.post(receiver, f"customer:{payee_id}", clearing, amount)
    if not taken.done:
        return NetOutcome(False, "rejected", (Reason.AM04.code, (
            f"{payee_id}'s account at {receiver} no longer holds the credit to return")))
    outcome: NetOutcome = incoming.send_back(b, ref, record, f["code"], f["message"])
    if not outcome.ok:  # CNAPS refused the return: the customer keeps the money
        b.books.post_all([(receiver, clearing, f"customer:{payee_id}", amount)])
    return outcome
