"""What the app's IBPS items became: after every log entry the wallets look at the items
they sent (top-ups, withdrawals, repayments, voucher subsidies) and book what an item's end
means for the wallet, the statement or the campaign."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from qingsuan.wallets import credit, funds, vouchers

if TYPE_CHECKING:
    from qingsuan.wallets.system import Wallets

#: what an IBPS record's status means for the operation waiting on it
_DONE: Final = ("credited", "settled")
_FAILED: Final = ("rejected", "returned", "cancelled")


def follow(w: Wallets) -> None:
    """Book what IBPS finished: a top-up credited to the collection account goes to the
    wallet; a withdrawal refused or returned goes back to it; a repayment counts against
    the card's statement; a voucher's subsidy counts as paid from the budget (refused, its
    money stays in the fund and the payment's record says why)."""
    still = []
    for op in w.waiting:
        status = w.banks.payments[op["id"]].status
        if status not in _DONE and status not in _FAILED:
            still.append(op)
            continue
        ok = status in _DONE
        if op["do"] == "voucher_subsidy":
            if ok:
                vouchers.subsidy_paid(w, op["campaign"])
            else:
                w.records[op["payment"]]["subsidy_failed"] = w.banks.payments[op["id"]].reason
            continue
        rec = w.records[op["id"]]
        rec["status"] = "done" if ok else "failed"
        if not ok:
            rec["reason"] = w.banks.payments[op["id"]].reason
        if op["do"] == "card_repayment":
            if ok:
                credit.repaid(w, op["card"], op["amount"])
            continue
        user = w.users[op["phone"]]
        pool = w.banks.directory.by_id[w.institutions[user.institution]]
        # a top-up credited goes to the wallet; a withdrawal that failed comes back to it
        if ok == (op["do"] == "wallet_top_up"):
            moved = funds.post(w, user.institution, pool.ledger_name, user.wallet, op["amount"])
            assert moved, (op, status)  # the collection account was just credited
    w.waiting = still
