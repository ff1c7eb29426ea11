"""The acquiring bank's host (收单行): its ATMs and POS terminals send card requests to the
switch (ISO 8583 fields, as its terminal would), and it records each transaction's fate
from the switch's answers and notices. Also the participants' dispute steps (差错) and the
faults of an issuer host, sent to the switch as its logged commands would be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from qingsuan.cards.disputes import DisputeKind
from qingsuan.cards.iso8583 import RC_APPROVED, ResponseCode
from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.requests import (
    PROC_PURCHASE,
    Mti,
    Processing,
    terminal_request,
    transmission_time,
)

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks
    from qingsuan.cards.switch import CardTxn

_RESPONSE_MEANINGS: Final[dict[str, str]] = {c.value: c.meaning for c in ResponseCode}


def _now(b: Banks) -> int:
    assert b.engine is not None
    return b.engine.now_us


def _switch(b: Banks, kind: str, fields: dict[str, Any]) -> Any:
    """Send the switch a message (the body its logged command would carry)."""
    return b.switch.take(kind, fields, _now(b))


def _next_stan(b: Banks) -> int:
    b.stan += 1
    return b.stan


def _card_request(b: Banks, do: str, f: dict[str, Any], proc: str, mti: str = "0200") -> None:
    assert b.engine is not None
    # (_now and _next_stan inline: a card purchase is the commonest command)
    now = b.engine.now_us
    b.stan += 1
    stan = b.stan
    terminal_id = f["terminal"]
    terminal = b.terminals.get(terminal_id)
    # the card as the runner logged it: its token and masked PAN (cards/vault.py); the
    # terminal sends the PIN's hash, never the PIN
    request = terminal_request(mti, proc + "0000", f["amount_fen"], now, stan,
                               terminal[0] if terminal else "", terminal_id, f["card"],
                               f["pan_masked"], f.get("pin_hash"))
    answer = b.switch.take_request(request, now)
    if do == "atm_balance_inquiry":
        b.inquiries[f["id"]] = {"kind": do, "response_code": answer["39"],
                                "balance": answer.get("54")}
        return
    _card_answer(b, do, f, answer, now)


def _card_answer(b: Banks, do: str, f: dict[str, Any], answer: dict[str, str],
                 now: int | None = None) -> None:
    """The acquirer's record of a card transaction from the switch's answer (``now``: the
    engine's time, if the caller has it)."""
    assert b.engine is not None
    rc = answer["39"]
    record = b.record(f["id"], do, "CUPS", rc)  # (rc positional: a keyword costs more)
    txn = None
    if "key" in answer:  # the switch keeps it (approved or declined)
        b.link_card(f["id"], answer["key"])
        txn = b.switch.txns.get(answer["key"])
    if now is None:
        now = b.engine.now_us
    if rc == RC_APPROVED and (txn is None or not txn.stand_in):  # the common case
        record.move(now, "approved")
        return
    timeout_s = int(b.engine.params["cards.issuer_timeout"])
    if rc in (RC.ISSUER_UNAVAILABLE, RC.RESPONSE_RECEIVED_TOO_LATE) or (
            txn is not None and txn.stand_in):
        now += timeout_s * 1_000_000  # the switch waited for the issuer in vain
    if rc == RC.APPROVED:
        record.move(now, "approved")
        record.stand_in = True
        return
    record.move(now, "declined")
    message = _RESPONSE_MEANINGS.get(rc, "declined")
    issuer = txn.issuer if txn is not None else None
    if rc == RC.ISSUER_UNAVAILABLE and issuer:
        message += f": {issuer} did not answer within {timeout_s} s (cards.issuer_timeout)"
    elif rc == RC.RESPONSE_RECEIVED_TOO_LATE and txn is not None:
        message += f": {issuer}'s answer ({txn.late_rc}) came after {timeout_s} s"
        if txn.late_rc == RC.APPROVED:
            message += "; the switch reversed it at the issuer (冲正)"
    elif rc == RC.INVALID_TRANSACTION and do in ("preauth_cancel", "preauth_completion"):
        held = b.switch.txns.get(b.card_keys.get(f["target"], ""))
        if held is not None and held.status != "authorised":
            message = (f"invalid transaction: the pre-authorisation {f['target']} is "
                       f"{held.status}")
    record.reason = {"code": rc, "message": message}


def atm_withdrawal(b: Banks, f: dict[str, Any]) -> None:
    _card_request(b, "atm_withdrawal", f, Processing.WITHDRAWAL)


def pos_purchase(b: Banks, f: dict[str, Any]) -> None:
    _card_request(b, "pos_purchase", f, PROC_PURCHASE)


def balance_inquiry(b: Banks, f: dict[str, Any]) -> None:
    _card_request(b, "atm_balance_inquiry", f, Processing.BALANCE)


def preauth(b: Banks, f: dict[str, Any]) -> None:
    """预授权 (0100, processing code 03): the issuer holds the amount; the record moves on
    to "completed", "cancelled" or "expired" when the switch says so."""
    _card_request(b, "preauth", f, Processing.PREAUTH, Mti.AUTHORISATION)


def _linked_request(b: Banks, f: dict[str, Any], mti: str, proc: str
                    ) -> tuple[dict[str, str], CardTxn | None]:
    """The fields of a request naming the card transaction ``target`` (a refund, a
    pre-authorisation's cancel or completion), sent from that transaction's terminal; and
    the transaction, if the switch has it."""
    key = b.card_keys.get(f["target"], "")
    original = b.switch.txns.get(key)  # from the terminal of the original
    terminal_id = original.terminal if original is not None else ""
    terminal = b.terminals.get(terminal_id)
    stan = _next_stan(b)
    fields = {"t": mti, "3": f"{proc}0000",
              "7": transmission_time(_now(b)),
              "11": f"{stan:06d}", "32": terminal[0] if terminal else "",
              "41": terminal_id, "37": f"{stan:012d}", "original_key": key}
    return fields, original


def _preauth_followup(b: Banks, f: dict[str, Any], mti: str, proc: str,
                      amount_fen: int | None) -> dict[str, str]:
    """A cancel or completion from the terminal of the pre-authorisation it names."""
    fields, original = _linked_request(b, f, mti, proc)
    fields["49"] = "156"
    if original is not None:
        fields["card"] = original.card  # the pre-authorisation's token
    if amount_fen is not None:
        fields["4"] = f"{amount_fen:012d}"
        fields["25"] = "06"
    elif original is not None:
        fields["4"] = f"{original.amount_fen:012d}"
    answer: dict[str, str] = _switch(b, "cards.request", fields)
    return answer


def preauth_cancel(b: Banks, f: dict[str, Any]) -> None:
    """预授权撤销 (0100, processing code 20): the hotel releases the hold."""
    _card_answer(b, "preauth_cancel", f,
                 _preauth_followup(b, f, Mti.AUTHORISATION, Processing.RETURN, None))


def preauth_completion(b: Banks, f: dict[str, Any]) -> None:
    """预授权完成 (0200, processing code 00, condition code 06): a new transaction that
    posts the hold and clears like a purchase."""
    _card_answer(b, "preauth_completion", f,
                 _preauth_followup(b, f, Mti.FINANCIAL, Processing.PURCHASE, f["amount_fen"]))


def reversal(b: Banks, f: dict[str, Any]) -> None:
    target = f["target"]
    original = b.payments.get(target)
    stan = _next_stan(b)
    answer = _switch(b, "cards.request", {"t": "0400", "11": f"{stan:06d}",
                                          "original_key": b.card_keys.get(target, "")})
    rc = answer["39"]
    b.action("reversal", f, rc == RC.APPROVED, None if rc == RC.APPROVED else
             {"code": rc, "message": _RESPONSE_MEANINGS.get(rc, "")})
    if rc == RC.APPROVED and original is not None and original.status == "approved":
        original.move(_now(b), "reversed")


def pos_refund(b: Banks, f: dict[str, Any]) -> None:
    """退货: the merchant gives back all or part of a purchase (0220, processing code 20),
    at the terminal of the purchase, on the same or a later clearing day."""
    fields, _ = _linked_request(b, f, Mti.ADVICE, Processing.RETURN)
    fields["4"] = f"{f['amount_fen']:012d}"
    _card_answer(b, "pos_refund", f, _switch(b, "cards.request", fields))


def pos_void(b: Banks, f: dict[str, Any]) -> None:
    """撤销: the merchant cancels a purchase the same clearing day."""
    original = b.payments.get(f["target"])
    stan = _next_stan(b)
    answer = _switch(b, "cards.request", {"t": "0200", "3": "200000", "11": f"{stan:06d}",
                                          "original_key": b.card_keys.get(f["target"], "")})
    rc = answer["39"]
    record = b.record(f["id"], "pos_void", "CUPS", response_code=rc)
    now = _now(b)
    if rc == RC.APPROVED:
        record.move(now, "approved")
        if original is not None and original.status == "approved":
            original.move(now, "reversed")
    else:
        record.move(now, "declined")
        record.reason = {"code": rc, "message": _RESPONSE_MEANINGS.get(rc, "declined")}


def fault(b: Banks, f: dict[str, Any]) -> None:
    """A participant's issuer host goes down, slow or up (the switch's command)."""
    outcome = _switch(b, "cards.fault", {"participant": f["participant"], "mode": f["mode"]})
    b.action("fault", f, True, None)["advices_delivered"] = outcome["delivered"]


def dispute(b: Banks, f: dict[str, Any]) -> None:
    """差错处理: the issuer (chargebacks) or the acquirer (credit adjustment,
    representment) files a dispute step on a card transaction with the switch; an accepted
    step is an item of the clearing day in which it is filed."""
    key = b.card_keys.get(f["target"], "")
    original = b.switch.txns.get(key)
    filer = ""
    if original is not None:
        filer = (original.issuer or "") if DisputeKind(f["kind"]).filer == "issuer" else \
            original.acquirer
    now = _now(b)
    stan = _next_stan(b)
    request = {"t": "0620", "32": filer, "11": f"{stan:06d}",
               "7": transmission_time(now), "37": f"{stan:012d}",
               "original_key": key, "dispute": f["kind"], "4": f"{f['amount_fen']:012d}"}
    if f.get("reason") is not None:
        request["dispute_reason"] = f["reason"]
    answer = _switch(b, "cards.dispute", request)
    record = b.record(f["id"], f"dispute:{f['kind']}", "CUPS")
    b.link_card(f["id"], answer["key"])
    if answer["status"] == "accepted":
        record.move(now, "accepted")
    else:
        record.move(now, "refused")
        record.reason = {"code": answer["reason"], "message": answer["message"]}


def follow_cards(b: Banks) -> bool:
    """The switch's notices (cleared, settled, a pre-authorisation completed, cancelled or
    expired) move the acquirer's records on."""
    notices = b.switch.notices
    seen = b.cursors.get("cards", 0)
    if seen >= len(notices):
        return False
    while seen < len(notices):
        at_us, key, event = notices[seen]
        seen += 1
        pid = b.pid_of_key(key)
        if pid is None:
            continue
        status = b.payments[pid].status
        if status in ("approved", "accepted") or (status == "cleared" and event == "settled"):
            b.payments[pid].move(at_us, event)
    b.cursors["cards"] = seen
    return True
