"""A BEPS direct debit (pacs.003) and a return (pacs.004, 退汇) in JSON: each body is
checked here (every refusal a 4xx naming the field, nothing logged), turned into the
message's domain object and answered by the same gateway code as the XML message, so
CNAPS sees no difference. A debit is sent by the payee's bank (the path's participant)
to collect from a customer of another bank; a return is sent by the bank that received
a netted BEPS or IBPS credit, to give the whole of it back."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from qingsuan.clock import to_beijing
from qingsuan.cnaps.participants import Participant, ParticipantKind
from qingsuan.messages import DirectDebit, InvalidField, Return
from qingsuan.money import format_fen
from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.transfers import JSON_MSG_ID
from qingsuan.server.http.views import payment

if TYPE_CHECKING:
    from qingsuan.cnaps.gateway import CnapsGateway
    from qingsuan.world import World

#: an ISO 20022 return reason (ExternalReturnReason1Code: AC04, AM09, MD06, ...)
REASON_RE: Final = re.compile(r"^[A-Z0-9]{4}$")
#: a message id or transaction id of a payment received (ISO Max35Text, printable)
MAX_ID_CHARS: Final = 35
#: a return's note to the payer's bank (pacs.004 AddtlInf: longer is split in lines)
MAX_NOTE_CHARS: Final = 140
#: the field a refusal by CNAPS points at, by its reason code
REFUSAL_FIELD: Final = {"AM02": "amount", "AM04": "amount", "AC01": "debtor.account",
                        "AC04": "debtor.account", "MD01": "mandate"}


class Payer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank: str = Field(description="the payer's bank: its CNAPS name (CCB) or 12-digit bank "
                                  "code", examples=["CCB"])
    account: str = Field(description="the payer's account number (6 to 32 digits)",
                         examples=["9217000000000010011"])
    name: str = Field(description="the payer's name", examples=["Holder CCB 1"])


class Payee(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(description="your customer's account (6 to 32 digits), paid by the "
                                     "debit", examples=["9222020000000010017"])
    name: str = Field(description="your customer's name", examples=["Holder ICBC 1"])


class DirectDebitIn(BaseModel):
    """A BEPS debit (pacs.003, beps.127 ordinary or beps.131 periodic) in JSON."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="your id for it, unique among your payments (1 to 35 "
                                "letters, digits, - _ .); its payment id is API/<id>",
                    examples=["DD-2026-0001"])
    debtor: Payer
    creditor: Payee
    amount: str = Field(description="CNY as a string of yuan, at most two decimals",
                        examples=["88.00"])
    mandate: str | None = Field(None, description="the payer's agreement (a periodic debit, "
                                                  "定期借记: refused MD01 without one on "
                                                  "file); omit for an ordinary debit",
                                examples=[None])


class Received(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender: str = Field(description="the bank that sent it: CNAPS name or bank code",
                        examples=["ICBC"])
    msg_id: str = Field(description="its message id (API for a JSON transfer)",
                        examples=["API"])
    tx_id: str = Field(description="its transaction id", examples=["INV-1"])


class ReturnIn(BaseModel):
    """A return (pacs.004, 退汇) of a BEPS or IBPS credit you received, in JSON."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="your id for the return (1 to 35 letters, digits, - _ .)",
                    examples=["RT-0001"])
    payment: Received = Field(description="the payment returned: the `ref` of its "
                                          "notice is SENDER/MSG_ID/TX_ID")
    amount: str = Field(description="the payment's whole amount, yuan (a return gives it "
                                    "all back)", examples=["1234.50"])
    reason: str = Field(description="ISO return reason, four capitals or digits",
                        examples=["AC04"])
    message: str | None = Field(None, description="a note for the payer's bank",
                                examples=["account closed"])


def book_debit(world: World, gateway: CnapsGateway, participant: str,
               order: DirectDebitIn) -> tuple[int, dict[str, Any]]:
    """Check the order, then send it to CNAPS as a pacs.003 would: (201, the payment) or
    (422, CNAPS's refusal with the payment it recorded)."""
    amount_fen = inputs.amount_fen(order.amount)
    inputs.payment_id(order.id)
    inputs.account(order.debtor.account, "debtor.account")
    inputs.name(order.debtor.name, "debtor.name")
    inputs.account(order.creditor.account, "creditor.account")
    inputs.name(order.creditor.name, "creditor.name")
    if order.mandate is not None:
        inputs.payment_id(order.mandate, "mandate")
    payer_bank = _bank(world, order.debtor.bank, "debtor.bank")
    if world.banks.directory.by_number.get((participant, order.creditor.account)) is None:
        raise ApiError(422, "unknown_account", f"{participant} holds no account "
                       f"{order.creditor.account}", "creditor.account")
    if payment(world, participant, JSON_MSG_ID, order.id) is not None:
        raise _duplicate(participant, order.id)
    now = to_beijing(world.engine.clock.now_us())
    me = world.cnaps.directory.get(participant)
    item = _domain(DirectDebit, {"end_to_end_id": "id", "tx_id": "id"},
                   msg_id=JSON_MSG_ID, created_at=now, end_to_end_id=order.id,
                   tx_id=order.id, system="BEPS", amount_fen=amount_fen,
                   settlement_date=now.date(), creditor_agent_code=me.code,
                   debtor_agent_code=payer_bank.code, creditor_name=order.creditor.name,
                   creditor_account=order.creditor.account, debtor_name=order.debtor.name,
                   debtor_account=order.debtor.account, mandate_id=order.mandate)
    status, code, info = gateway.one_debit(item, participant)
    doc = payment(world, participant, JSON_MSG_ID, order.id)
    kind = "periodic_debit" if order.mandate else "ordinary_debit"
    return _answer(status, code, info, doc, {"payment_id": f"{JSON_MSG_ID}/{order.id}",
                                             "kind": kind})


def book_return(world: World, gateway: CnapsGateway, participant: str,
                order: ReturnIn) -> tuple[int, dict[str, Any]]:
    """Check the return, then send it as a pacs.004 would: (201, the return) or (422,
    CNAPS's refusal). A payment you did not receive is 404 whoever sent it."""
    amount_fen = inputs.amount_fen(order.amount)
    inputs.payment_id(order.id)
    if not REASON_RE.match(order.reason):
        raise ApiError(422, "invalid_field", "an ISO return reason: four capitals or digits "
                       f"like AC04 (got {inputs.clip(order.reason)})", "reason")
    if order.message is not None and (not order.message.strip() or len(order.message) >
                                      MAX_NOTE_CHARS or not order.message.isprintable()):
        raise ApiError(422, "invalid_field", f"a note is 1 to {MAX_NOTE_CHARS} printable "
                       "characters", "message")
    for field, value in (("payment.msg_id", order.payment.msg_id),
                         ("payment.tx_id", order.payment.tx_id)):
        if not value or len(value) > MAX_ID_CHARS or not value.isprintable():
            raise ApiError(422, "invalid_id", f"1 to {MAX_ID_CHARS} printable characters "
                           f"(got {inputs.clip(value)})", field)
    sender = _bank(world, order.payment.sender, "payment.sender")
    ref = f"{sender.name}/{order.payment.msg_id}/{order.payment.tx_id}"
    directory = world.cnaps.directory
    net = next((n for n in world.cnaps.net.values() if ref in n.items), None)
    if net is None or net.items[ref].receiver != directory.settling(participant):
        raise ApiError(404, "unknown_payment", f"{participant} received no BEPS or IBPS "
                       f"payment {inputs.clip(ref)}", "payment")
    received = net.items[ref]
    if received.returned_by is not None:
        raise ApiError(409, "duplicate", f"{ref} was returned already (AM05)", "payment")
    if received.status not in ("netted", "settled"):
        raise ApiError(409, "not_returnable", f"only a netted credit is returned: {ref} is "
                       f"{received.status}", "payment")
    now = to_beijing(world.engine.clock.now_us())
    item = _domain(Return, {"return_id": "id", "reason_code": "reason",
                            "additional_info": "message"},
                   msg_id=JSON_MSG_ID, created_at=now, return_id=order.id, system=net.name,
                   original_msg_id=order.payment.msg_id, original_tx_id=order.payment.tx_id,
                   returned_amount_fen=amount_fen, settlement_date=now.date(),
                   returning_agent_code=directory.get(participant).code,
                   receiving_agent_code=sender.code, reason_code=order.reason,
                   additional_info=order.message)
    status, code, info = gateway.one_return(item, participant)
    back = net.items.get(f"{ref}/return")
    doc = {"id": order.id, "payment": order.payment.model_dump(), "system": net.name,
           "amount": format_fen(amount_fen),
           "status": "refused" if back is None else back.status,
           "reason": None if back is None or back.reason is None else
           {"code": back.reason[0], "message": back.reason[1]}}
    return _answer(status, code, info, doc if back is not None else None, doc)


def _bank(world: World, bank: str, field: str) -> Participant:
    """A bank of this world by CNAPS name or bank code (as a JSON transfer names it)."""
    directory = world.cnaps.directory
    found = directory.by_code(bank) if bank.isdigit() else \
        directory.get(bank) if bank in directory else None
    if found is None or found.kind is ParticipantKind.CARD_SWITCH or \
            found.name not in world.banks.members:
        raise ApiError(422, "unknown_participant", f"{inputs.clip(bank)} is not a bank in "
                       "this world (GET /v1/participants lists them)", field)
    return found


def _domain(cls: Any, fields: dict[str, str], **values: Any) -> Any:
    """The message's domain object; a field it refuses (the checks above should have)
    is a 422 naming the JSON field."""
    try:
        return cls(**values)
    except InvalidField as exc:
        raise ApiError(422, "invalid_field", exc.message,
                       fields.get(exc.field, exc.field)) from None


def _answer(status: str, code: str | None, info: str | None, doc: dict[str, Any] | None,
            base: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """201 with the payment and its pacs.002 status, or 422 with CNAPS's ISO reason (and
    the payment CNAPS recorded as refused, when it did)."""
    shown = {**base, **(doc or {}), "iso_status": status}
    if status != "RJCT":
        if info:
            shown["note"] = info
        return 201, shown
    body: dict[str, Any] = {"reason": code or "NARR", "field": REFUSAL_FIELD.get(code or ""),
                            "message": info or "rejected"}
    if doc is not None:
        body["payment"] = shown
    return 422, body


def _duplicate(participant: str, tx_id: str) -> ApiError:
    return ApiError(409, "duplicate", f"you sent a payment {JSON_MSG_ID}/{tx_id} before "
                    f"(AM05): GET /v1/participants/{participant}/payments/{JSON_MSG_ID}/"
                    f"{tx_id} tells what became of it", "id")
