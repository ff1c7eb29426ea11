"""The sending bank (汇出行): a customer's or the bank's own payment, from the channel to
CNAPS. Route it (banks/routing.py), charge the channel fee, reserve the funds, book it at
once within the bank, send it to HVPS, BEPS or IBPS, or hold it until HVPS opens; cancel,
reorder, pledge and release on the participant's behalf.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks import incoming
from qingsuan.banks.books import CLEARING
from qingsuan.banks.routing import (
    ROUTE_BEPS,
    ROUTE_BOOK,
    ROUTE_HVPS,
    ROUTE_IBPS,
    ROUTE_REFUSE,
    route,
)
from qingsuan.clock import format_time, from_datetime, to_beijing_naive
from qingsuan.cnaps.hvps import PHASE_OPEN, Priority
from qingsuan.ledger import TransferResult
from qingsuan.ledger.types import DONE_MAX  # (code <= DONE_MAX: code.done without a call)
from qingsuan.money import format_fen
from qingsuan.reasons import Reason

if TYPE_CHECKING:
    from qingsuan.banks.records import PaymentRecord
    from qingsuan.banks.system import Banks

_REASONS: dict[TransferResult, Reason] = {
    TransferResult.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS: Reason.AM04,
    TransferResult.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS: Reason.AM04,
    TransferResult.DEBIT_ACCOUNT_CLOSED: Reason.AC04,
    TransferResult.CREDIT_ACCOUNT_CLOSED: Reason.AC04,
    TransferResult.DEBIT_ACCOUNT_NOT_FOUND: Reason.AC01,
    TransferResult.CREDIT_ACCOUNT_NOT_FOUND: Reason.AC01,
    TransferResult.AMOUNT_TOO_LARGE: Reason.AM02,
}


#: a priority's level by the name an event gives (Priority.parse reads the enum by name, and
#: takes other spellings too: asked for those)
_LEVELS: Final = {p.label: int(p) for p in Priority}


def _now(b: Banks) -> int:
    assert b.engine is not None
    return b.engine.now_us


def _books(b: Banks) -> Any:
    assert b.books is not None
    return b.books


def _short(payer: str, bank: str, amount_fen: int,
           code: TransferResult = TransferResult.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS
           ) -> dict[str, str]:
    """Why the payer's bank could not take the funds: short of them (AM04), or the account
    is closed (AC04) or unknown (AC01)."""
    reason = _REASONS.get(code, Reason.AM04)
    if reason is Reason.AM04:
        return Reason.AM04.detail(f"insufficient funds: {payer} at {bank} cannot pay "
                                  f"{format_fen(amount_fen)}")
    return reason.detail(f"{reason.meaning}: {payer} at {bank}")


# ---------------------------------------------------------------------- customer transfers

def transfer(b: Banks, f: dict[str, Any]) -> None:
    """A customer's transfer at a channel: the bank routes it (banks/routing.py)."""
    assert b.engine is not None
    directory = b.directory
    pid = f["id"]
    payer = directory[f["from_customer"]]
    to_customer = f.get("to_customer")
    if to_customer is not None:
        payee = directory[to_customer]
        payee_ref = payee_id = payee.id
        payee_bank, payee_account, payee_name = payee.bank, payee.account, payee.name
    else:  # an account that is not a listed customer: it may not exist (a return)
        payee_bank, payee_account, payee_name = f["to_account"]
        payee_ref = f"{payee_bank}|{payee_account}|{payee_name}"
        payee_id = ""
    now = b.engine.now_us
    payer_bank = payer.bank
    same_bank = payer_bank == payee_bank
    channel, urgent, amount = f["channel"], f["urgent"], f["amount_fen"]
    # only what the route can depend on is read (route_transfer's docstring): whether
    # HVPS is open only for an urgent transfer or one above the BEPS limit
    express = channel == "mobile" and urgent and not same_bank
    normal = not same_bank and not express
    cnaps = b.cnaps
    beps_limit = (cnaps.net["BEPS"].item_limit_fen("ordinary_credit", now) or 0) \
        if normal else 0
    decision = route(
        channel, urgent, same_bank, amount,
        normal and (urgent or amount > beps_limit) and
        cnaps.hvps.phase(now)[0] is PHASE_OPEN,
        beps_limit, int(b.engine.params["ibps.item_limit"]) if express else 0)
    b.routes[pid] = decision.why
    route_ = decision.route
    if route_ is ROUTE_BOOK:
        _book_intrabank(b, f, payer_bank, payer.id, payee_ref)
        return
    # (the record's system named here, not by the route's value: an enum's value property
    # is Python code)
    system = "BEPS" if route_ is ROUTE_BEPS else "IBPS" if route_ is ROUTE_IBPS or \
        route_ is ROUTE_REFUSE else "HVPS"
    record = b.record(pid, "transfer", system)
    if route_ is ROUTE_REFUSE:
        assert decision.refusal is not None
        record.move(now, "rejected")
        record.reason = {"code": decision.refusal[0], "message": decision.refusal[1]}
        return
    # the channel fee (banks.channel_fee, default 0: read here, charged only when set)
    fee = int(b.engine.params["banks.channel_fee"])
    if fee and not _charge_fee(b, payer_bank, payer.id, record, fee):
        return
    if route_ is ROUTE_BEPS or route_ is ROUTE_IBPS:
        _submit_net(b, record, pid, system,
                    "ordinary_credit" if route_ is ROUTE_BEPS else "credit", amount,
                    payee_name, payer_bank, payer.account, payer.id, payee_bank,
                    payee_account, payee_id, None)
    else:
        fields = {"id": pid, "amount_fen": amount,
                  "priority": "urgent" if urgent else "normal",
                  "payer": ("customer", payer.id), "payee": ("customer", payee_ref),
                  "sender": payer_bank, "receiver": payee_bank}
        if route_ is ROUTE_HVPS:
            _send_hvps(b, "transfer", fields)
        else:
            _hold(b, fields, record)
    if fee and record.status == "rejected":  # refused at once: the fee is given back
        _books(b).post_all([(payer_bank, "fee_income", f"customer:{payer.id}", fee)])


def _hold(b: Banks, fields: dict[str, Any], record: Any) -> None:
    """HVPS is closed: reserve the funds now, send when it opens (held payments keep their
    order). Closed for maintenance (``hvps.closed``), nobody knows when it reopens: the
    payment waits for the first moment it is open again."""
    now = _now(b)
    payer, sender = fields["payer"][1], fields["sender"]
    code, reserve_id = _books(b).reserve(sender, f"customer:{payer}", "hvps_outgoing",
                                         fields["amount_fen"])
    if not code.done:
        record.move(now, "rejected")
        record.reason = _short(payer, sender, fields["amount_fen"])
        return
    fields["reserve_id"] = reserve_id
    assert b.engine is not None
    due_us: int | None = None
    if not b.engine.params["hvps.closed"]:
        due_us = from_datetime(b.cnaps.hvps.schedule().next_open(to_beijing_naive(now)))
    record.move(now, "accepted")
    record.held_until = format_time(due_us) if due_us is not None else "when HVPS reopens"
    b.held.append({"fields": fields, "due_us": due_us})


def send_held(b: Banks) -> bool:
    """Send the held payments (and returns HVPS refused before) whose time has come, in
    order, if HVPS is open now."""
    if not b.held and not b.returns_pending:
        return False
    now = _now(b)
    phase, _ = b.cnaps.hvps.phase(now)
    if phase is not PHASE_OPEN:
        return False
    waiting = [r for r in b.returns_pending if r["due_us"] is None or r["due_us"] <= now]
    if waiting:
        b.returns_pending = [r for r in b.returns_pending if r not in waiting]
        for r in waiting:
            incoming.send_return(b, r, now)
        return True
    due = [h for h in b.held if h["due_us"] is None or h["due_us"] <= now]
    if not due:
        return False
    b.held = [h for h in b.held if not (h["due_us"] is None or h["due_us"] <= now)]
    for h in due:
        _send_hvps(b, "transfer", h["fields"])
    return True


def _charge_fee(b: Banks, bank: str, customer: str, record: Any, fee: int) -> bool:
    """The channel fee is the bank's fee income: whether the customer paid it (if not,
    the payment is refused)."""
    if _books(b).post(bank, f"customer:{customer}", "fee_income", fee).done:
        return True
    record.move(_now(b), "rejected")
    record.reason = Reason.AM04.detail(f"insufficient funds for the fee {format_fen(fee)}")
    return False


def _book_intrabank(b: Banks, f: dict[str, Any], bank: str, payer: str, payee_ref: str
                    ) -> None:
    """行内: the bank books it at once in its own book (or refuses: no such account)."""
    assert b.engine is not None and b.books is not None  # (read here: once per event)
    record = b.record(f["id"], "transfer", "BOOK")
    now = b.engine.now_us
    record.move(now, "accepted")
    if "|" in payee_ref:
        _, account, name = payee_ref.split("|", 2)
        found, problem = b.directory.resolve(bank, account, name, name_check=b.name_check())
        if found is None:
            assert problem is not None
            record.reason = {"code": problem[0], "message": problem[1]}
            record.move(now, "rejected")
            return
        payee_ref = found.id
    code = b.books.post(bank, f"customer:{payer}", f"customer:{payee_ref}", f["amount_fen"])
    if code <= DONE_MAX:
        record.move(now, "credited")
        return
    reason = _REASONS.get(code, Reason.NARR)
    message = reason.meaning
    if reason is Reason.AM04:
        message = (f"insufficient funds: {payer} at {bank} cannot pay "
                   f"{format_fen(f['amount_fen'])}")
    elif reason is Reason.NARR:
        message = f"ledger refused the transfer: {code.name}"
    record.reason = reason.detail(message)
    record.move(now, "rejected")


# ---------------------------------------------------------------------- HVPS

def hvps_payment(b: Banks, f: dict[str, Any]) -> None:
    _send_hvps(b, "hvps_payment", f)


def _send_hvps(b: Banks, do: str, f: dict[str, Any]) -> None:
    """The sending bank accepts its customer's order (reserving the funds) or its own
    payment, then sends it to HVPS (hvps.111 customer / hvps.112 institution)."""
    assert b.engine is not None and b.books is not None  # (read here: once per payment)
    now = b.engine.now_us
    payer_kind, payer = f["payer"]
    _payee_kind, payee = f["payee"]
    kind = "customer" if payer_kind == "customer" else "institution"
    record = b.record(f["id"], do, "HVPS")
    record.system = "HVPS"
    sender, receiver, amount = f["sender"], f["receiver"], f["amount_fen"]
    reserve_id = f.get("reserve_id", 0)
    if "reserve_id" not in f:  # (a held payment's funds are reserved already)
        if kind == "customer":
            code, reserve_id = b.books.reserve(sender, f"customer:{payer}",
                                               "hvps_outgoing", amount)
        else:
            code = b.books.post(sender, "equity", "hvps_outgoing", amount)
        if code > DONE_MAX:
            record.move(now, "rejected")
            record.reason = _short(payer, sender, amount, code)
            return
        record.move(now, "accepted")
    b.hvps_refs[f["id"]] = {"id": f["id"], "kind": kind, "payer": payer, "payee": payee,
                            "sender": sender, "receiver": receiver, "amount": amount,
                            "reserve_id": reserve_id}
    level = _LEVELS.get(f["priority"])
    # HVPS takes the message as its logged cnaps.hvps_submit would carry it, handed over as
    # its fields (a bank's message made while a logged command is applied is not logged)
    b.cnaps.hvps.submit(f["id"], sender, receiver, int(amount),
                        int(Priority.parse(f["priority"])) if level is None else level, kind,
                        now, payer, payee)


# ---------------------------------------------------------------------- BEPS and IBPS

def net_payment(b: Banks, f: dict[str, Any]) -> None:
    _send_net(b, "beps_payment" if f["system"] == "BEPS" else "ibps_payment", f)


def _send_net(b: Banks, do: str, f: dict[str, Any]) -> None:
    """A BEPS or IBPS item, its fields as an event names them (:func:`_submit_net`)."""
    system = f["system"]
    _, sender, payer_account, payer_id = f["payer"]
    _payee_kind, receiver, payee_account, payee_id = f["payee"]
    record = b.record(f["id"], do, system)
    record.system = system
    # a payer's account other than the customer's (an acquirer's due_to_merchants) is
    # noted in the item's reference
    payer_ledger = (f.get("payer_ledger") or f"customer:{payer_id}") \
        if "payer_ledger" in f else None
    _submit_net(b, record, f["id"], system, f["kind"], f["amount_fen"], f.get("payee_name"),
                sender, payer_account, payer_id, receiver, payee_account, payee_id,
                payer_ledger)


def _submit_net(b: Banks, record: PaymentRecord, pid: str, system: str, kind: str,
                amount: int, payee_name: str | None, sender: str, payer_account: str,
                payer_id: str, receiver: str, payee_account: str, payee_id: str,
                payer_ledger: str | None) -> None:
    """A BEPS or IBPS item sent to CNAPS (its record made). A credit's funds are reserved
    at once; a debit's payer bank reserves them when it gives its receipt (回执).
    ``payer_ledger``: the account that pays, when not the customer's."""
    assert b.engine is not None and b.books is not None
    now = b.engine.now_us
    debit = kind.endswith("_debit")
    ref = {"id": pid, "system": system, "sender": sender, "receiver": receiver,
           "payee_name": payee_name or "", "amount": amount, "payer_id": payer_id,
           "payee_id": payee_id, "payee_account": payee_account, "debit": debit,
           "reserve_id": 0}
    if payer_ledger is not None:
        ref["payer_ledger"] = payer_ledger
    else:
        payer_ledger = f"customer:{payer_id}"
    clearing = CLEARING[system]
    if not debit:
        code, ref["reserve_id"] = b.books.reserve(sender, payer_ledger, clearing, amount)
        if code > DONE_MAX:
            record.move(now, "rejected")
            record.reason = _short(payer_id, sender, amount, code)
            return
    record.move(now, "accepted")
    b.net_refs[pid] = ref
    # CNAPS takes the message as its logged cnaps.net_submit would carry it (a bank's
    # message made while a logged command is applied is not logged itself): handed over
    # as its fields, not as a document to take apart again
    outcome = b.cnaps.net[system].submit(pid, kind, sender, receiver, int(amount), now,
                                         payer_account, payee_account, None, payee_name)
    if debit and outcome.status == "queued":
        # the payer's bank has given its receipt: it holds the funds until netting
        code, ref["reserve_id"] = b.books.reserve(sender, f"customer:{payer_id}", clearing,
                                                  amount)
        assert code.done, code
        ref["reserved"] = True


def debit_agreement(b: Banks, f: dict[str, Any]) -> None:
    outcome = b.cnaps_command("cnaps.debit_agreement", {"payer": f["payer"],
                                                        "payee": f["payee"]})
    b.action("debit_agreement", f, outcome.ok, None)


def account_inquiry(b: Banks, f: dict[str, Any]) -> None:
    answer = b.cnaps.account_inquiry(f["bank"], f["account"], f["name"])
    b.inquiries[f["id"]] = {"kind": "ibps_account_inquiry", "from": f["asker"],
                            "bank": f["bank"], "account": f["account"], **answer}


# ---------------------------------------------------------------------- participant actions

def _reason(outcome: Any) -> dict[str, str] | None:
    return None if outcome.reason is None else {"code": outcome.reason[0],
                                                "message": outcome.reason[1]}


def cancel(b: Banks, f: dict[str, Any]) -> None:
    """撤销: the sender cancels a payment still queued (HVPS) or queued past its cap
    (BEPS); a held payment the bank has not sent yet is simply given back."""
    target = f["target"]
    ref = b.hvps_refs.get(target)
    if ref is not None:
        outcome = b.cnaps_command("cnaps.hvps_cancel", {"ref": target, "by": ref["sender"]})
        b.action("cancel", f, outcome.ok, _reason(outcome))
        return
    net = b.net_refs.get(target)
    if net is not None:
        outcome = b.cnaps_command("cnaps.net_cancel", {"system": net["system"], "ref": target,
                                                       "by": net["sender"]})
        b.action("cancel", f, outcome.ok, _reason(outcome))
        return
    for h in b.held:
        if h["fields"]["id"] == target:
            b.held.remove(h)
            _books(b).settle_reservation(h["fields"]["reserve_id"], post=False)
            b.payments[target].move(_now(b), "cancelled")
            b.action("cancel", f, True, None)
            return
    b.action("cancel", f, False, Reason.NARR.detail(f"{target} never reached CNAPS"))


def reprioritise(b: Banks, f: dict[str, Any]) -> None:
    target = f["target"]
    ref = b.hvps_refs.get(target)
    if ref is None:
        b.action("reprioritise", f, False,
                 Reason.NARR.detail(f"{target} never reached HVPS"))
        return
    outcome = b.cnaps_command("cnaps.hvps_reprioritise", {
        "ref": target, "priority": int(Priority.parse(f["priority"])), "by": ref["sender"]})
    b.action("reprioritise", f, outcome.ok, _reason(outcome))


def _haircut(b: Banks, f: dict[str, Any]) -> int:
    assert b.engine is not None
    value = f.get("haircut_ppm")
    return int(b.engine.params["hvps.pledge_haircut"] if value is None else value)


def pledge(b: Banks, f: dict[str, Any]) -> None:
    outcome = b.cnaps_command("cnaps.pledge", {
        "participant": f["participant"], "value_fen": f["value_fen"],
        "haircut_ppm": _haircut(b, f)})
    b.action("pledge", f, outcome.ok, None)


def release(b: Banks, f: dict[str, Any]) -> None:
    outcome = b.cnaps_command("cnaps.release", {
        "participant": f["participant"], "value_fen": f["value_fen"],
        "haircut_ppm": _haircut(b, f)})
    b.action("release", f, outcome.ok, _reason(outcome))


# ---------------------------------------------------------------------- from a participant's hub

def customer_credit_transfer(b: Banks, f: dict[str, Any]) -> None:
    """A pacs.008 from a participant's own payment hub (the sandbox): the sending bank
    books its customer's order (the debtor must hold the account at the sender: AC01
    otherwise; funds reserved: AM04 when short), then it travels as any other payment, and
    the receiving bank credits the creditor's account or returns it."""
    sender, receiver = f["sender"], f["receiver"]
    debtor = b.directory.by_number.get((sender, f["debtor_account"]))
    record = b.record(f["id"], "pacs.008", f["system"])
    if debtor is None:
        record.move(_now(b), "rejected")
        record.reason = Reason.AC01.detail(f"no account {f['debtor_account']} at {sender}")
        return
    name = f.get("creditor_name") or ""
    if sender == receiver:  # both accounts in the sending bank: booked at once (行内)
        record.system = "BOOK"
        _book_intrabank(b, f, sender, debtor.id, f"{receiver}|{f['creditor_account']}|{name}")
        return
    if f["system"] == "HVPS":
        _send_hvps(b, "pacs.008", {
            "id": f["id"], "amount_fen": f["amount_fen"], "priority": f["priority"],
            "payer": ("customer", debtor.id),
            "payee": ("customer", f"{receiver}|{f['creditor_account']}|{name}"),
            "sender": sender, "receiver": receiver})
        return
    _send_net(b, "pacs.008", {
        "id": f["id"], "system": f["system"],
        "kind": "ordinary_credit" if f["system"] == "BEPS" else "credit",
        "amount_fen": f["amount_fen"], "payee_name": name or None,
        "payer": ("customer", sender, debtor.account, debtor.id),
        "payee": ("outside", receiver, f["creditor_account"], "")})


# ---------------------------------------------------------------------- merchant payouts

def follow_payouts(b: Banks) -> bool:
    """收单清算 across banks: after a card cut-off the acquirer pays each merchant that banks
    elsewhere its day's takings (net of the MDR) by a BEPS credit from what it owes its
    merchants (DOMAIN story 2, step 8); the merchant's bank credits it when it nets."""
    moved = _resend_payouts(b) if b.payouts_waiting else False  # (its own first test)
    payouts = b.switch.payouts
    seen = b.cursors.get("payouts", 0)
    if seen >= len(payouts):
        return moved
    while seen < len(payouts):
        day, acquirer, merchant, amount = payouts[seen]
        seen += 1
        b.cursors["payouts"] = seen
        merchant_id = merchant.split(":customer:", 1)[1]
        customer = b.customer(merchant_id)
        ref = f"payout:{day}:{acquirer}:{merchant_id}"
        _send_net(b, "merchant_payout", {
            "id": ref, "system": "BEPS", "kind": "ordinary_credit", "amount_fen": amount,
            "payee_name": customer.name, "payer_ledger": "due_to_merchants",
            "payer": ("institution", acquirer, "", ""),
            "payee": ("customer", customer.bank, customer.account, customer.id)})
    return True


def _resend_payouts(b: Banks) -> bool:
    """Payouts BEPS refused during maintenance, sent again once it is open."""
    if not b.payouts_waiting or b.cnaps.beps.closed:
        return False
    waiting, b.payouts_waiting = b.payouts_waiting, []
    for ref in waiting:
        attempt = 2
        new_id = f"{ref['id']}/{attempt}"
        while new_id in b.payments:
            attempt += 1
            new_id = f"{ref['id']}/{attempt}"
        _send_net(b, "merchant_payout", {
            "id": new_id, "system": "BEPS", "kind": "ordinary_credit",
            "amount_fen": ref["amount"], "payee_name": ref["payee_name"] or None,
            "payer_ledger": "due_to_merchants", "payer": ("institution", ref["sender"], "", ""),
            "payee": ("customer", ref["receiver"], ref["payee_account"], ref["payee_id"])})
    return True
