"""The institutions' checks, as queries (nothing logged), beside banks/reconcile.py's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from qingsuan.money import format_fen
from qingsuan.wallets.credit import report as credit_report
from qingsuan.wallets.vouchers import report as voucher_report

if TYPE_CHECKING:
    from qingsuan.wallets.system import Wallets

PBOC = "PBOC"


def reserve_fen(w: Wallets, institution: str) -> int:
    """The institution's reserve (备付金): its settlement account at the PBOC, plus what
    the net systems owe it (netted, not yet settled: the PBOC settles it at the next
    session, so it is the institution's as surely as the account)."""
    net = sum(n.positions.get(institution, 0) for n in w.banks.cnaps.net.values())
    return w.balance_fen(PBOC, f"settlement:{institution}") + net


def customer_funds_fen(w: Wallets, institution: str) -> int:
    """What the institution owes its customers: wallets and the collection account."""
    pool = w.banks.directory.by_id[w.institutions[institution]]
    return (sum(w.balance_fen(u.institution, u.wallet) for u in w.users.values()
                if u.institution == institution)
            + w.balance_fen(institution, pool.ledger_name))


def reserve_covers_wallets(w: Wallets) -> bool:
    """Every institution's customer funds are covered by its reserve, at every moment."""
    return all(reserve_fen(w, name) >= customer_funds_fen(w, name) for name in w.institutions)


def outcome(w: Wallets) -> dict[str, Any]:
    """The outcome's ``wallets`` section: users' wallets and bound cards, institutions'
    reserves and customer funds, the app's records and the campaigns."""
    return {
        "users": {u.phone: {"institution": u.institution,
                            "wallet": format_fen(w.balance_fen(u.institution, u.wallet)),
                            "cards": [m for _, m in u.cards]} for u in w.users.values()},
        "institutions": {name: {"reserve": format_fen(reserve_fen(w, name)),
                                "customer_funds": format_fen(customer_funds_fen(w, name))}
                         for name in w.institutions},
        # each record's keys sorted, as a snapshot keeps them: a resumed run prints the
        # same bytes as an uninterrupted one
        "records": {k: json.loads(json.dumps(v, sort_keys=True)) for k, v in w.records.items()},
        "campaigns": voucher_report(w),
        "statements": credit_report(w),
    }
