"""What the banks do with what CNAPS tells them: the sender books or releases its
customer's reserved funds; the receiving bank (汇入行) resolves the payee in its books and
credits it, or sends the payment back (退汇: AC01 no such account, AC04 closed, BE01 name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks.books import CLEARING
from qingsuan.banks.directory import refusal
from qingsuan.clock import from_datetime, to_beijing_naive
from qingsuan.cnaps.hvps import Priority
from qingsuan.cnaps.netsys import ASKING, AWAITING, NetNotice

if TYPE_CHECKING:
    from qingsuan.banks.books import Books
    from qingsuan.banks.records import PaymentRecord
    from qingsuan.banks.system import Banks
    from qingsuan.cnaps.netsys import NetSystem

#: the notice that asks a connected payer's bank for its receipt of a debit
_RECEIPT_REQUEST: Final = ASKING["BEPS"].request


def _books(b: Banks) -> Books:
    assert b.books is not None
    return b.books


def _resolve(b: Banks, bank: str, payee: str) -> tuple[str | None, tuple[str, str] | None]:
    """The payee's customer id at ``bank``, or why the bank must return the payment.
    ``payee``: a customer id, or ``BANK|ACCOUNT|NAME`` for an account not listed."""
    if "|" not in payee:
        customer = b.directory[payee]
        if customer.bank == bank:
            # its own bank: the account its number finds is this customer (one customer
            # per number), so directory.resolve's answer without looking it up again; the
            # name is its own, so only a closed account is refused
            if not customer.closed:
                return customer.id, None
            return None, refusal(customer, customer.name, name_check=False)
        account, name = customer.account, customer.name
    else:
        _, account, name = payee.split("|", 2)
    found, problem = b.directory.resolve(bank, account, name, name_check=b.name_check())
    return (found.id if found is not None else None), problem


# ---------------------------------------------------------------------- HVPS

def follow_hvps(b: Banks) -> bool:
    """Act on HVPS's notices: settle, credit, release or return the funds."""
    hvps = b.cnaps.hvps
    notices = hvps.notices
    cursors = b.cursors
    seen = cursors.get("hvps", 0)
    if seen >= len(notices):
        return False
    hvps_refs, payments = b.hvps_refs, b.payments
    while seen < len(notices):  # (acting on them may add more: a return, say)
        new = notices[seen:]
        seen = cursors["hvps"] = len(notices)
        b.note_steps(new)
        for n in new:
            ref = hvps_refs.get(n.ref)
            record = payments.get(n.ref)
            if ref is None or record is None or n.participant != ref["sender"]:
                continue
            event = n.event
            if event == "settled":  # (the most frequent first: the tests exclude each other)
                record.move(n.at_us, "settled")
                _complete(b, ref, record, n.at_us)
            elif event == "queued":
                record.move(n.at_us, "queued")
            elif event in ("rejected", "returned", "cancelled"):
                pay = hvps.payments[n.ref]
                record.move(n.at_us, event)
                if pay.reason is not None:
                    code, message = pay.reason
                    record.reason = {"code": code, "message": message}
                if ref["kind"] == "return":
                    # the money belongs to the payer: it stays in transit and the return
                    # is sent again when HVPS next takes payments (never kept by the bank)
                    b.returns_pending.append({**ref, "due_us": _next_open_us(b, n.at_us)})
                else:
                    _unwind(b, ref)
    return True


def _complete(b: Banks, ref: dict[str, Any], record: PaymentRecord, at_us: int) -> None:
    receiver, amount = ref["receiver"], ref["amount"]
    books = b.books
    assert books is not None  # (read here: once per payment)
    if ref["kind"] == "return":  # a return came back: the payer gets its money again
        books.post_all([(receiver, "hvps_incoming", f"customer:{ref['payee']}", amount)])
        b.payments[ref["original"]].move(at_us, "returned")
        return
    problem = None
    if ref["kind"] == "customer":
        # (the payee looked up first: the look-up books nothing, and then the reservation's
        # post and the credit are one call, the same ledger moves in the same order)
        payee_id, problem = _resolve(b, receiver, ref["payee"])
        if problem is None:
            books.settle_and_post(ref["reserve_id"], receiver, "hvps_incoming",
                                  f"customer:{payee_id}", amount)
        else:
            books.settle_reservation(ref["reserve_id"], post=True)
    else:
        books.post_all([(receiver, "hvps_incoming", "equity", amount)])
    if problem is not None:
        _hvps_return(b, ref, record, problem, at_us)
    elif ref["kind"] == "customer":
        record.move(at_us, "credited")


def _hvps_return(b: Banks, ref: dict[str, Any], record: PaymentRecord,
                 problem: tuple[str, str], at_us: int) -> None:
    """退汇 through HVPS: the receiving bank sends the money back as a new payment (at the
    correction level, ahead of its own queue), referencing the original."""
    receiver, sender, amount = ref["receiver"], ref["sender"], ref["amount"]
    _books(b).post_all([(receiver, "hvps_incoming", "hvps_outgoing", amount)])
    record.reason = {"code": problem[0], "message": f"{problem[1]}: returned (退汇)"}
    send_return(b, {"kind": "return", "payer": "", "payee": ref["payer"], "sender": receiver,
                    "receiver": sender, "amount": amount, "reserve_id": 0,
                    "original": ref["id"]}, at_us)


def send_return(b: Banks, ref: dict[str, Any], at_us: int) -> None:
    """Send a return (its money already in the returning bank's outgoing transit) as a
    new HVPS payment at the correction level, under a reference no message can have."""
    back = f"{ref['original']}/return"
    attempt = 2
    while back in b.payments or back in b.cnaps.hvps.payments:
        back = f"{ref['original']}/return{attempt}"
        attempt += 1
    b.hvps_refs[back] = {**{k: v for k, v in ref.items() if k != "due_us"}, "id": back}
    b.record(back, "return", "HVPS").move(at_us, "accepted")
    b.cnaps_command("cnaps.hvps_submit", {
        "ref": back, "sender": ref["sender"], "receiver": ref["receiver"],
        "amount_fen": ref["amount"], "priority": int(Priority.CORRECTION),
        "kind": "customer", "debtor": None, "creditor": None})


def _next_open_us(b: Banks, after_us: int) -> int | None:
    """When HVPS next takes payments (None while it is closed for maintenance)."""
    assert b.engine is not None
    if b.engine.params["hvps.closed"]:
        return None
    opens = b.cnaps.hvps.schedule().next_open(to_beijing_naive(after_us))
    return from_datetime(opens)


def _unwind(b: Banks, ref: dict[str, Any]) -> None:
    """The payment will not happen: give the payer its money back."""
    if ref["kind"] == "customer":
        _books(b).settle_reservation(ref["reserve_id"], post=False)
    else:
        _books(b).post_all([(ref["sender"], "hvps_outgoing", "equity", ref["amount"])])


# ---------------------------------------------------------------------- BEPS and IBPS

def follow_net(b: Banks) -> bool:
    moved = False
    cursors = b.cursors
    for name, net in b.cnaps.net.items():
        notices = net.notices
        seen = cursors.get(name, 0)
        if seen >= len(notices):
            continue  # (most often: nothing new)
        while seen < len(notices):  # (acting on them may add more: a return, say)
            moved = True
            new = notices[seen:]
            seen = cursors[name] = len(notices)
            b.note_net_steps(name, new)
            _act_on_net(b, name, net, new)
    return moved


def _act_on_net(b: Banks, name: str, net: NetSystem, notices: list[NetNotice]) -> None:
    """Act on a net system's notices, in order."""
    net_refs, payments = b.net_refs, b.payments
    for at_us, participant, ref_id, event, _ in notices:
        if event == "incoming":
            continue  # the receiving bank credits its customer on the "netted" notice
        if name == "CUPS" and event == "settled" and ref_id.startswith("cards:"):
            _card_day_settled(b, at_us, ref_id)
        ref = net_refs.get(ref_id)
        if ref is None:
            continue
        if "kind" in ref and ref["kind"] == "net_return":  # (tests, not a call of get)
            if event == "netted" and participant == ref["sender"]:
                del net_refs[ref_id]
                _return_netted(b, ref, waited=True)
            continue
        record = payments.get(ref_id)
        if record is None or participant != ref["sender"]:
            continue
        if event == "netted":  # (the most frequent first: the tests exclude each other)
            record.move(at_us, "netted")
            _net_deliver(b, ref, record, at_us)
        elif event == _RECEIPT_REQUEST:  # a debit: the payer's bank has not answered yet
            record.move(at_us, AWAITING)
        elif event == "queued":
            record.move(at_us, "queued")
            if ref["debit"] and not ref.get("reserved"):
                # a connected payer's bank gave its receipt and the debit queued: the
                # bank holds the funds until netting, as for a simulated receipt
                code, ref["reserve_id"] = _books(b).reserve(
                    ref["sender"], f"customer:{ref['payer_id']}", CLEARING[ref["system"]],
                    ref["amount"])
                assert code.done, code  # BEPS checked the funds with the receipt
                ref["reserved"] = True
        elif event == "settled" and record.status != "returned":
            record.move(at_us, "settled")
        elif event in ("rejected", "cancelled"):
            item = net.items[ref_id]
            _net_unwind(b, ref)
            record.move(at_us, event)
            if item.reason is not None:
                record.reason = {"code": item.reason[0], "message": item.reason[1]}
            if ref_id.startswith("payout:") and item.reason is not None and \
                    item.reason[0] == "DT01":
                # a merchant payout BEPS refused while closed: the acquirer still owes
                # it, and sends it again once BEPS takes business
                b.payouts_waiting.append(ref)


def _card_day_settled(b: Banks, at_us: int, batch: str) -> None:
    """The card switch's clearing day settled in HVPS: its transactions are settled."""
    day = batch.split(":", 1)[1]
    for pid, key in b.card_keys.items():
        txn = b.switch.txns.get(key)
        if txn is not None and txn.clearing_date == day and \
                b.payments[pid].status == "cleared":
            b.payments[pid].move(at_us, "settled")


def payee_of(b: Banks, ref: dict[str, Any]) -> tuple[str | None, tuple[str, str] | None]:
    """The customer id a BEPS/IBPS item pays at its receiving bank, or why it cannot."""
    return _resolve(b, ref["receiver"], ref["payee_id"] or
                    f"{ref['receiver']}|{ref['payee_account']}|{ref['payee_name']}")


def _net_deliver(b: Banks, ref: dict[str, Any], record: PaymentRecord, at_us: int) -> None:
    """The item is netted: the payer's bank books the debit, the payee's bank credits its
    customer, or returns the credit (退汇) if it has no such account."""
    clearing = CLEARING[ref["system"]]
    books = b.books
    assert books is not None  # (read here: once per item)
    payee_id, problem = payee_of(b, ref)
    reserved = not ref["debit"] or ref.get("reserved")
    if problem is None and reserved:  # the common case: one batch for both banks' books
        books.settle_and_post(ref["reserve_id"], ref["receiver"], clearing,
                              f"customer:{payee_id}", ref["amount"])
        record.move(at_us, "credited")
        return
    if not reserved:
        payer_ledger = ref.get("payer_ledger") or f"customer:{ref['payer_id']}"
        books.post_all([(ref["sender"], payer_ledger, clearing, ref["amount"])])
    else:
        books.settle_reservation(ref["reserve_id"], post=True)
    if problem is None:
        books.post_all([(ref["receiver"], clearing, f"customer:{payee_id}", ref["amount"])])
        record.move(at_us, "credited")
        return
    # the receiving bank cannot apply it: it sends the credit back (退汇)
    send_back(b, ref, record, problem[0], problem[1])


def send_back(b: Banks, ref: dict[str, Any], record: PaymentRecord, code: str, message: str
              ) -> Any:
    """The receiving bank sends a netted credit back (退汇) with its reason, the amount in
    its clearing account: CNAPS's outcome of the return item. Netted at once, the payer's
    bank credits its customer; behind the returning bank's cap, it owes the money until
    the return nets (banks/incoming.py follow_net)."""
    clearing = CLEARING[ref["system"]]
    outcome = b.cnaps_command("cnaps.net_return", {
        "system": ref["system"], "ref": ref["id"], "code": code, "message": message})
    if not outcome.ok:
        return outcome
    record.reason = {"code": code, "message": f"{message}: returned (退汇) to "
                                              f"{ref['payer_id']}"}
    returning = {**ref, "id": f"{ref['id']}/return", "kind": "net_return",
                 "sender": ref["receiver"], "receiver": ref["sender"], "original": ref["id"],
                 "payer_ledger": ref.get("payer_ledger") or f"customer:{ref['payer_id']}"}
    if outcome.status == "queued":
        # behind the returning bank's cap: it owes the money back until the return nets,
        # and the payer is credited then
        _books(b).post_all([(ref["receiver"], clearing, "returns_payable", ref["amount"])])
        b.net_refs[returning["id"]] = returning
        return outcome
    _return_netted(b, returning)
    return outcome


def _return_netted(b: Banks, returning: dict[str, Any], *, waited: bool = False) -> None:
    """A return item netted: the original payer's bank gives its customer the money back."""
    clearing = CLEARING[returning["system"]]
    legs = [(returning["receiver"], clearing, returning["payer_ledger"], returning["amount"])]
    if waited:  # the returning bank no longer owes it
        legs.insert(0, (returning["sender"], "returns_payable", clearing, returning["amount"]))
    _books(b).post_all(legs)
    assert b.engine is not None
    b.payments[returning["original"]].move(b.engine.now_us, "returned")


def _net_unwind(b: Banks, ref: dict[str, Any]) -> None:
    if ref["debit"] and not ref.get("reserved"):
        return  # nothing was reserved: the payer's bank debits only on its receipt
    _books(b).settle_reservation(ref["reserve_id"], post=False)
