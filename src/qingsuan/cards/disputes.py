"""Disputes (差错处理) at the switch: the steps, who files them, in which order, by when and
for how much (DOMAIN.md §4, docs/CARDS.md). A step is not a transaction of the card: it
names the original, and an accepted one that moves money is an item of the clearing day
in which it is filed, not of the original's."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import TYPE_CHECKING, Final, NamedTuple

from qingsuan.calendar import card_clearing_date
from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.records import MAX_TXNS, CardTxn, amount_fen, hhmm
from qingsuan.cards.requests import CardRequest, Mti, Processing
from qingsuan.clock import to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.params import Params
from qingsuan.reasons import CodedReason

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch


class DisputeKind(Enum):
    """差错处理 steps; who files each, what it moves and what it answers: ``_RULES``."""

    CREDIT_ADJUSTMENT = "credit_adjustment"    # 贷记调整: acquirer gives the money back
    RETRIEVAL_REQUEST = "retrieval_request"    # 调单: issuer asks for the merchant's documents
    RETRIEVAL_REPLY = "retrieval_reply"        # 调单回复: acquirer sends them
    FIRST_CHARGEBACK = "first_chargeback"      # 第一次退单: issuer claims it back
    REPRESENTMENT = "representment"            # 再请款: acquirer claims it again
    SECOND_CHARGEBACK = "second_chargeback"    # 第二次退单: issuer claims it back again

    @property
    def filer(self) -> str:
        """The side that files this step: "issuer" or "acquirer"."""
        return _RULES[self].filer

    @property
    def proc(self) -> str:
        """The processing code of its clearing item ("": it moves no money)."""
        return _RULES[self].proc

    @property
    def moves_money(self) -> bool:
        return _RULES[self].proc != ""

    @property
    def previous(self) -> DisputeKind | None:
        """The step this one answers (None: it starts from the original)."""
        return _RULES[self].previous

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


class _Rule(NamedTuple):
    filer: str                      # issuer / acquirer
    proc: str                       # its clearing item: 22 to the issuer, 02 to the acquirer
    previous: DisputeKind | None    # the step it answers
    any_card: bool                  # also for debit cards and ATM withdrawals
    once: bool                      # at most one per original


_RULES: Final = {
    DisputeKind.CREDIT_ADJUSTMENT: _Rule("acquirer", "22", None, True, False),
    DisputeKind.RETRIEVAL_REQUEST: _Rule("issuer", "", None, True, True),
    DisputeKind.RETRIEVAL_REPLY: _Rule("acquirer", "", DisputeKind.RETRIEVAL_REQUEST, True,
                                       True),
    DisputeKind.FIRST_CHARGEBACK: _Rule("issuer", "22", None, False, True),
    DisputeKind.REPRESENTMENT: _Rule("acquirer", "02", DisputeKind.FIRST_CHARGEBACK, False,
                                     True),
    DisputeKind.SECOND_CHARGEBACK: _Rule("issuer", "22", DisputeKind.REPRESENTMENT, False,
                                         True),
}
assert set(_RULES) == set(DisputeKind)


class ChargebackReason(Enum):
    """Why the issuer charges back (差错原因, the request's ``dispute_reason``): for some only
    the merchant's documents (the signed slip, the order) can tell, and the issuer must ask
    for them first (调单): ``_NEEDS_DOCUMENTS``."""

    NOT_RECOGNISED = "not_recognised"              # 持卡人否认交易
    AMOUNT_DIFFERS = "amount_differs"              # 交易金额不符
    NOT_RECEIVED = "not_received"                  # 未收到商品或服务
    DUPLICATE = "duplicate"                        # 重复扣款: the switch's records show it
    CREDIT_NOT_PROCESSED = "credit_not_processed"  # 退货未退款

    @property
    def needs_documents(self) -> bool:
        return self in _NEEDS_DOCUMENTS

    @property
    def words(self) -> str:
        return self.value.replace("_", " ")


_NEEDS_DOCUMENTS: Final = frozenset({ChargebackReason.NOT_RECOGNISED,
                                     ChargebackReason.AMOUNT_DIFFERS})
_REASONS: Final = {r.value: r for r in ChargebackReason}


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
    UNKNOWN_REASON = ("unknown_reason", "not a chargeback reason")
    RETRIEVAL_NEEDED = ("retrieval_needed", "a first chargeback for this reason needs the "
                                            "merchant's documents: a retrieval request (调单) "
                                            "answered, or left unanswered past its deadline")
    FORFEITED = ("forfeited", "the acquirer did not answer the retrieval request in time: it "
                              "cannot re-present the chargeback that followed")


def file(sw: CardSwitch, req: CardRequest, now_us: int) -> dict[str, str]:
    """差错处理: a credit adjustment, chargeback or representment becomes an item of the
    clearing day in which it is filed (the next cut-off), between issuer and acquirer,
    with the cardholder's and the merchant's postings at once; a retrieval request and
    its reply move no money (docs/CARDS.md)."""
    key = req.key
    seen = sw.txns.get(key)
    if seen is not None:
        if seen.body == req.body:
            return _answer(seen)
        return {"t": "0630", "key": key, "status": "refused",
                "reason": DisputeRefusal.DUPLICATE.code,
                "message": DisputeRefusal.DUPLICATE.meaning}
    if len(sw.txns) >= MAX_TXNS:
        raise RuntimeError(f"the switch holds {MAX_TXNS} transactions: refusing more")
    original = sw.txns.get(req.original_key or "")
    kind = next((k for k in DisputeKind if k.value == req.dispute), None)
    txn = CardTxn(key, Mti.DISPUTE.value, kind.proc if kind else "22",
                  original.pan_masked if original else "",
                  original.issuer if original else None,
                  original.acquirer if original else req.acquirer or "",
                  original.terminal if original else "",
                  amount_fen(req.amount_text if req.amount_text is not None else "0"),
                  "", "refused", now_us, req.body, req.rrn or "",
                  card=original.card if original else "",
                  card_kind=original.card_kind if original else "debit",
                  original_key=req.original_key or "",
                  dispute=kind.value if kind else "")
    sw.txns[key] = txn
    assert sw.engine is not None
    cutoff = hhmm(int(sw.engine.params["cards.cutoff"]))
    txn.clearing_date = card_clearing_date(to_beijing_naive(now_us), cutoff).isoformat()
    refusal = _check(sw, txn, kind, original, req.acquirer or "", req.dispute_reason)
    if refusal is not None:
        txn.rc = refusal[0].code
        txn.note = refusal[1]
        return _answer(txn)
    assert kind is not None and original is not None
    txn.status, txn.rc = "accepted", RC.APPROVED
    if not kind.moves_money:  # 调单: documents only, no clearing item
        if kind is DisputeKind.RETRIEVAL_REPLY:
            request = _steps(sw, original)[DisputeKind.RETRIEVAL_REQUEST.value]
            request.status = "answered"
            sw.notices.append((now_us, request.key, "answered"))
        return _answer(txn)
    if kind.proc == "02":  # the cardholder is charged again, beyond the account if need be
        sw._cover(txn)
    booked = sw._post(txn, sw._issuer_leg(txn) + sw._acquirer_leg(txn))
    assert booked, "a dispute step's postings cannot fail (receivable, no MNO debits)"
    original.refunded_fen += -txn.amount_fen if kind.proc == "02" else txn.amount_fen
    sw._index_open(txn)
    return _answer(txn)


def _steps(sw: CardSwitch, original: CardTxn) -> dict[str, CardTxn]:
    """The accepted steps of a dispute by kind (the last, for credit adjustments)."""
    return {t.dispute: t for t in sw.txns.values()
            if t.original_key == original.key and t.status in ("accepted", "cleared",
                                                                "answered")
            and t.dispute}


def _check(sw: CardSwitch, txn: CardTxn, kind: DisputeKind | None,
           original: CardTxn | None, filer: str, reason_code: str | None
           ) -> tuple[DisputeRefusal, str] | None:
    """The rules of DOMAIN.md §4 (disputes): what kind of original, who files, in which
    order, by when, with which documents, for how much. None: accepted."""
    assert sw.engine is not None
    params = sw.engine.params
    if kind is None:
        return DisputeRefusal.UNKNOWN_KIND, "kind must be one of " + ", ".join(
            k.value for k in DisputeKind)
    reason = _REASONS.get(reason_code or "")
    if reason_code is not None and reason is None:
        return DisputeRefusal.UNKNOWN_REASON, "dispute_reason must be one of " + ", ".join(
            _REASONS)
    what = kind.words
    if original is None:
        return DisputeRefusal.UNKNOWN_ORIGINAL, DisputeRefusal.UNKNOWN_ORIGINAL.meaning
    if original.mti not in (Mti.FINANCIAL, Mti.ADVICE) or \
            original.proc not in (Processing.PURCHASE, Processing.WITHDRAWAL) or \
            original.status in ("declined", "reversed") or original.issuer is None:
        return DisputeRefusal.INVALID_ORIGINAL, DisputeRefusal.INVALID_ORIGINAL.meaning
    if original.status != "cleared":
        return DisputeRefusal.NOT_CLEARED, DisputeRefusal.NOT_CLEARED.meaning
    if not _RULES[kind].any_card and (original.proc == Processing.WITHDRAWAL
                                      or original.card_kind != "credit"):
        return DisputeRefusal.NOT_ALLOWED, (
            f"a {what} is not allowed for "
            f"{'an ATM withdrawal' if original.proc == '01' else 'a debit card'} "
            "(only a credit adjustment or a retrieval is)")
    party = original.issuer if kind.filer == "issuer" else original.acquirer
    if filer != party:
        return DisputeRefusal.WRONG_PARTY, f"a {what} is filed by the {kind.filer} ({party})"
    steps = _steps(sw, original)
    previous = kind.previous
    if _RULES[kind].once and kind.value in steps:
        return DisputeRefusal.OUT_OF_ORDER, f"there is already a {what} of this original"
    if previous is not None and previous.value not in steps:
        return DisputeRefusal.OUT_OF_ORDER, (
            f"a {what} answers a {previous.words}, and there is none")
    if kind is DisputeKind.RETRIEVAL_REQUEST and \
            DisputeKind.FIRST_CHARGEBACK.value in steps:
        return DisputeRefusal.OUT_OF_ORDER, "a retrieval request comes before the first " \
                                            "chargeback, and there is one"
    filed = dt.date.fromisoformat(txn.clearing_date)
    documents = kind is DisputeKind.FIRST_CHARGEBACK and reason is not None and \
        reason.needs_documents
    late = _late(params, filed, _windows(kind, original, steps, documents, params))
    if late is not None:
        return DisputeRefusal.LATE, f"{what} filed on clearing day {filed.isoformat()}, {late}"
    if documents:
        assert reason is not None
        refused = _needs_retrieval(params, filed, reason, steps)
        if refused is not None:
            return DisputeRefusal.RETRIEVAL_NEEDED, refused
    if kind is DisputeKind.REPRESENTMENT:
        chargeback = steps[DisputeKind.FIRST_CHARGEBACK.value]
        charged_for = _REASONS.get(CardRequest.from_body(chargeback.body).dispute_reason or "")
        request = steps.get(DisputeKind.RETRIEVAL_REQUEST.value)
        if charged_for is not None and charged_for.needs_documents and request is not None \
                and request.status != "answered":
            return DisputeRefusal.FORFEITED, (
                f"the acquirer did not answer the retrieval request of clearing day "
                f"{request.clearing_date} in time: it cannot re-present the first chargeback "
                f"that followed ({charged_for.words})")
    ceiling = original.amount_fen - original.refunded_fen if previous is None else \
        steps[previous.value].amount_fen
    if txn.amount_fen <= 0 or txn.amount_fen > ceiling:
        return DisputeRefusal.AMOUNT, (
            f"a {what} must be positive and at most {format_fen(ceiling)} ("
            + ("the original less what was already given back" if previous is None
               else f"the {previous.words}") + ")")
    return None


def _windows(kind: DisputeKind, original: CardTxn, steps: dict[str, CardTxn],
             documents: bool, params: Params) -> list[tuple[str, str, str]]:
    """The periods in which a step may be filed, as (since clearing day, of what, the
    parameter giving its length in natural days): it is in time within any of them. A
    first chargeback that needs documents may also follow its retrieval: within
    ``cards.dispute_reply_days`` of the reply, or of the last day the reply could come."""
    previous = kind.previous
    if previous is not None:
        return [(steps[previous.value].clearing_date,
                 f"the {previous.words}'s clearing day", "cards.dispute_reply_days")]
    out = [(original.clearing_date, "the original's clearing day", "cards.chargeback_days")]
    request = steps.get(DisputeKind.RETRIEVAL_REQUEST.value)
    if documents and request is not None:
        reply = steps.get(DisputeKind.RETRIEVAL_REPLY.value)
        if reply is not None:
            out.append((reply.clearing_date, "the retrieval reply's clearing day",
                        "cards.dispute_reply_days"))
        else:
            last = _reply_deadline(params, request)
            out.append((last.isoformat(), "the last day for the retrieval reply",
                        "cards.dispute_reply_days"))
    return out


def _late(params: Params, filed: dt.date, windows: list[tuple[str, str, str]]) -> str | None:
    """Why a step filed on ``filed`` is late (how many days after what), or None: in time."""
    overdue = []
    for since, of, param in windows:
        limit = int(params[param])
        days = (filed - dt.date.fromisoformat(since)).days
        if days <= limit:
            return None
        overdue.append(f"{days} days after {of} {since} ({param}: {limit})")
    return " and ".join(overdue)


def _reply_deadline(params: Params, request: CardTxn) -> dt.date:
    """The last clearing day on which the acquirer may answer a retrieval request."""
    return dt.date.fromisoformat(request.clearing_date) + dt.timedelta(
        days=int(params["cards.dispute_reply_days"]))


def _needs_retrieval(params: Params, filed: dt.date, reason: ChargebackReason,
                     steps: dict[str, CardTxn]) -> str | None:
    """A first chargeback for a reason only documents can tell follows a retrieval request
    that was answered (the issuer still disputes) or left unanswered past its deadline
    (the acquirer then cannot re-present it); None: it does."""
    request = steps.get(DisputeKind.RETRIEVAL_REQUEST.value)
    if request is None:
        return (f"a first chargeback because of {reason.words} needs the merchant's "
                "documents: the issuer files a retrieval request (调单) first")
    last = _reply_deadline(params, request)
    if request.status != "answered" and filed <= last:
        days = int(params["cards.dispute_reply_days"])
        return (f"the acquirer may answer the retrieval request of clearing day "
                f"{request.clearing_date} until clearing day {last.isoformat()} "
                f"(cards.dispute_reply_days: {days}): a first chargeback because of "
                f"{reason.words} waits for the reply or that day's end")
    return None


def _answer(txn: CardTxn) -> dict[str, str]:
    if txn.rc == RC.APPROVED:
        return {"t": "0630", "key": txn.key, "status": "accepted"}
    return {"t": "0630", "key": txn.key, "status": "refused", "reason": txn.rc,
            "message": txn.note}

