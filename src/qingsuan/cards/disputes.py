"""Disputes (差错处理) at the switch: the steps, who files them, in which order, by when and
for how much (DOMAIN.md §4, docs/CARDS.md). A step is not a transaction of the card: it
names the original, and an accepted one that moves money is an item of the clearing day
in which it is filed, not of the original's."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING

from qingsuan.calendar import card_clearing_date
from qingsuan.cards.records import MAX_TXNS, CardTxn, amount_fen, hhmm
from qingsuan.clock import to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.reasons import CodedReason

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch


class DisputeKind(Enum):
    """差错处理 steps: (who files it, processing code of its clearing item)."""

    CREDIT_ADJUSTMENT = "credit_adjustment"    # 贷记调整: acquirer gives the money back
    FIRST_CHARGEBACK = "first_chargeback"      # 第一次退单: issuer claims it back
    REPRESENTMENT = "representment"            # 再请款: acquirer claims it again
    SECOND_CHARGEBACK = "second_chargeback"    # 第二次退单: issuer claims it back again

    @property
    def filer(self) -> str:
        """The side that files this step: "issuer" or "acquirer"."""
        return "acquirer" if self in (DisputeKind.CREDIT_ADJUSTMENT,
                                      DisputeKind.REPRESENTMENT) else "issuer"

    @property
    def proc(self) -> str:
        return "02" if self is DisputeKind.REPRESENTMENT else "22"

    @property
    def previous(self) -> DisputeKind | None:
        """The step this one answers (None: it starts from the original)."""
        return {DisputeKind.REPRESENTMENT: DisputeKind.FIRST_CHARGEBACK,
                DisputeKind.SECOND_CHARGEBACK: DisputeKind.REPRESENTMENT}.get(self)


class DisputeRefusal(CodedReason):
    """Why the switch refuses a dispute step: (code, meaning)."""

    UNKNOWN_ORIGINAL = ("unknown_original", "no such original transaction")
    INVALID_ORIGINAL = ("invalid_original", "the original was declined or reversed, or is "
                                            "not a purchase or withdrawal")
    NOT_CLEARED = ("not_cleared", "the original is not cleared yet: before its clearing day "
                                  "closes, void or reverse it")
    NOT_ALLOWED = ("not_allowed", "chargebacks and representments are not for ATM "
                                  "transactions or debit cards")
    WRONG_PARTY = ("wrong_party", "this step is filed by the other side")
    OUT_OF_ORDER = ("out_of_order", "not the next step of this dispute")
    LATE = ("late", "filed after its deadline")
    AMOUNT = ("amount", "amount not positive or more than allowed")
    DUPLICATE = ("duplicate", "the same reference with a different body")
    UNKNOWN_KIND = ("unknown_kind", "not a dispute step")


def file(sw: CardSwitch, f: dict[str, str], body: str, now_us: int) -> dict[str, str]:
    """差错处理: a credit adjustment, chargeback or representment becomes an item of the
    clearing day in which it is filed (the next cut-off), between issuer and acquirer,
    with the cardholder's and the merchant's postings at once (docs/CARDS.md)."""
    key = f"{f.get('32', '')}|{f.get('11', '')}|{f.get('7', '')}"
    seen = sw.txns.get(key)
    if seen is not None:
        if seen.body == body:
            return _answer(seen)
        return {"t": "0630", "key": key, "status": "refused",
                "reason": DisputeRefusal.DUPLICATE.code,
                "message": DisputeRefusal.DUPLICATE.meaning}
    if len(sw.txns) >= MAX_TXNS:
        raise RuntimeError(f"the switch holds {MAX_TXNS} transactions: refusing more")
    original = sw.txns.get(f.get("original_key", ""))
    kind = next((k for k in DisputeKind if k.value == f.get("dispute")), None)
    txn = CardTxn(key, "0620", kind.proc if kind else "22",
                  original.pan_masked if original else "",
                  original.issuer if original else None,
                  original.acquirer if original else f.get("32", ""),
                  original.terminal if original else "", amount_fen(f.get("4", "0")),
                  "", "refused", now_us, body, f.get("37", ""),
                  card=original.card if original else "",
                  card_kind=original.card_kind if original else "debit",
                  original_key=f.get("original_key", ""),
                  dispute=kind.value if kind else "")
    sw.txns[key] = txn
    assert sw.engine is not None
    cutoff = hhmm(int(sw.engine.params["cards.cutoff"]))
    txn.clearing_date = card_clearing_date(to_beijing_naive(now_us), cutoff).isoformat()
    refusal = _check(sw, txn, kind, original, f.get("32", ""))
    if refusal is not None:
        txn.rc = refusal[0].code
        txn.note = refusal[1]
        return _answer(txn)
    assert kind is not None and original is not None
    if kind.proc == "02":  # the cardholder is charged again, beyond the account if need be
        sw._cover(txn)
    booked = sw._post(txn, sw._issuer_leg(txn) + sw._acquirer_leg(txn))
    assert booked, "a dispute step's postings cannot fail (receivable, no MNO debits)"
    original.refunded_fen += -txn.amount_fen if kind.proc == "02" else txn.amount_fen
    txn.status, txn.rc = "accepted", "00"
    sw._index_open(txn)
    return _answer(txn)


def _check(sw: CardSwitch, txn: CardTxn, kind: DisputeKind | None,
           original: CardTxn | None, filer: str) -> tuple[DisputeRefusal, str] | None:
    """The rules of DOMAIN.md §4 (disputes): what kind of original, who files, in which
    order, by when, for how much. None: accepted."""
    assert sw.engine is not None
    if kind is None:
        return DisputeRefusal.UNKNOWN_KIND, "kind must be one of " + ", ".join(
            k.value for k in DisputeKind)
    what = kind.value.replace("_", " ")
    if original is None:
        return DisputeRefusal.UNKNOWN_ORIGINAL, DisputeRefusal.UNKNOWN_ORIGINAL.meaning
    if original.mti not in ("0200", "0220") or original.proc not in ("00", "01") or \
            original.status in ("declined", "reversed") or original.issuer is None:
        return DisputeRefusal.INVALID_ORIGINAL, DisputeRefusal.INVALID_ORIGINAL.meaning
    if original.status != "cleared":
        return DisputeRefusal.NOT_CLEARED, DisputeRefusal.NOT_CLEARED.meaning
    if kind is not DisputeKind.CREDIT_ADJUSTMENT and (
            original.proc == "01" or original.card_kind != "credit"):
        return DisputeRefusal.NOT_ALLOWED, (
            f"a {what} is not allowed for "
            f"{'an ATM withdrawal' if original.proc == '01' else 'a debit card'} "
            "(only a credit adjustment is)")
    party = original.issuer if kind.filer == "issuer" else original.acquirer
    if filer != party:
        return DisputeRefusal.WRONG_PARTY, f"a {what} is filed by the {kind.filer} ({party})"
    steps = {t.dispute: t for t in sw.txns.values()
             if t.original_key == original.key and t.status in ("accepted", "cleared")
             and t.dispute}
    previous = kind.previous
    if kind is not DisputeKind.CREDIT_ADJUSTMENT and kind.value in steps:
        return DisputeRefusal.OUT_OF_ORDER, f"there is already a {what} of this original"
    if previous is not None and previous.value not in steps:
        return DisputeRefusal.OUT_OF_ORDER, (
            f"a {what} answers a {previous.value.replace('_', ' ')}, and there is none")
    filed = dt.date.fromisoformat(txn.clearing_date)
    if previous is None:
        limit, since, of = int(sw.engine.params["cards.chargeback_days"]), \
            original.clearing_date, "the original's clearing day"
        param = "cards.chargeback_days"
    else:
        limit, since, of = int(sw.engine.params["cards.dispute_reply_days"]), \
            steps[previous.value].clearing_date, \
            f"the {previous.value.replace('_', ' ')}'s clearing day"
        param = "cards.dispute_reply_days"
    days = (filed - dt.date.fromisoformat(since)).days
    if days > limit:
        return DisputeRefusal.LATE, (
            f"{what} filed on clearing day {filed.isoformat()}, {days} days after {of} "
            f"{since} ({param}: {limit})")
    ceiling = original.amount_fen - original.refunded_fen if previous is None else \
        steps[previous.value].amount_fen
    if txn.amount_fen <= 0 or txn.amount_fen > ceiling:
        return DisputeRefusal.AMOUNT, (
            f"a {what} must be positive and at most {format_fen(ceiling)} ("
            + ("the original less what was already given back" if previous is None
               else f"the {previous.value.replace('_', ' ')}") + ")")
    return None


def _answer(txn: CardTxn) -> dict[str, str]:
    if txn.rc == "00":
        return {"t": "0630", "key": txn.key, "status": "accepted"}
    return {"t": "0630", "key": txn.key, "status": "refused", "reason": txn.rc,
            "message": txn.note}
