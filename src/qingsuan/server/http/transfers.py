"""A customer transfer in JSON: the participant's bank books its customer's order and
routes it, as at its counter or in its mobile app (banks/routing.py: 行内, HVPS, BEPS,
IBPS, or held until HVPS opens), or sends it through the system the hub names, as a
pacs.008 would. Every input is checked before anything is logged: a command that could
not be applied must never reach the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field

from qingsuan.cnaps.hvps import dumps
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.transfer_order import Order
from qingsuan.server.http.views import record_view, ref_of

if TYPE_CHECKING:
    from qingsuan.world import World

#: the message id of every JSON transfer (its payment id is ``API/<id>``)
JSON_MSG_ID: Final = "API"
#: orders of one logged group at most
MAX_GROUP: Final = 4096


class Creditor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank: str = Field(description="the creditor's bank: its CNAPS name (CCB) or 12-digit "
                                  "bank code (105100000017)", examples=["CCB"])
    account: str = Field(description="the creditor's account number (6 to 32 digits)",
                         examples=["9217000000000010011"])
    name: str = Field(description="the account holder's name (the receiving bank checks it "
                                  "when banks.name_check is on)", examples=["Holder CCB 1"])


class TransferIn(BaseModel):
    """A customer's transfer order (the route's OpenAPI schema; a body is checked by
    transfer_order.parse_order, which answers as this model would)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="your id for it, unique among your payments (1 to 35 "
                                "letters, digits, - _ .); its payment id is API/<id>",
                    examples=["INV-2026-0001"])
    debtor_account: str = Field(description="the paying customer's account at your bank",
                                examples=["9222020000000010017"])
    creditor: Creditor
    amount: str = Field(description="CNY as a string of yuan, at most two decimals",
                        examples=["1234.50"])
    channel: Literal["counter", "mobile"] = Field(
        "counter", description="where the customer ordered it: the bank routes a counter "
                               "order by amount and urgency (HVPS or BEPS), a mobile urgent "
                               "one through IBPS")
    urgent: bool = Field(False, description="the customer asks for urgent")
    system: Literal["HVPS", "BEPS", "IBPS"] | None = Field(
        None, description="send it through this system, as a pacs.008 would (the hub "
                          "routes); omit to let the bank route it by channel and urgency")


@dataclass(frozen=True)
class Checked:
    ref: str
    amount_fen: int
    debtor_id: str
    receiver: str


def check(world: World, participant: str, order: Order) -> Checked:
    """The refusals of an order that need the world (ApiError, nothing logged); what to
    book otherwise (transfer_order.parse_order checked the rest)."""
    banks, directory = world.banks, world.cnaps.directory
    debtor = banks.directory.by_number.get((participant, order.debtor_account))
    if debtor is None:
        raise ApiError(422, "unknown_account", f"{participant} holds no account "
                       f"{order.debtor_account}", "debtor_account")
    bank = order.creditor_bank
    receiver = directory.by_code(bank) if bank.isdigit() else \
        directory.get(bank) if bank in directory else None
    if receiver is None or receiver.kind is ParticipantKind.CARD_SWITCH or \
            receiver.name not in banks.members:
        raise ApiError(422, "unknown_participant", f"{inputs.clip(bank)} is not a bank in "
                       "this world (GET /v1/participants lists them)", "creditor.bank")
    if receiver.name == participant and order.creditor_account == order.debtor_account:
        raise ApiError(422, "same_account", "the debtor and creditor are the same account",
                       "creditor.account")
    ref = ref_of(participant, JSON_MSG_ID, order.id)
    if ref in banks.payments:
        raise _duplicate(participant, order.id)
    return Checked(ref, order.amount_fen, debtor.id, receiver.name)


def book(world: World, participant: str, order: Order) -> dict[str, Any]:
    """Log the order for the bank to carry out; the payment as it stands after applying."""
    c = check(world, participant, order)
    banks = world.banks
    if order.system is not None:
        record = banks.customer_transfer(
            c.ref, order.system, "urgent" if order.urgent else "normal", participant,
            c.receiver, c.amount_fen, order.debtor_account, order.creditor_account,
            order.creditor_name)
    else:
        world.engine.command("banks.event", _event(c, order))
        record = banks.payments[c.ref]
    return record_view(world, c.ref, JSON_MSG_ID, order.id, record)


def _event(c: Checked, order: Order) -> bytes:
    """The banks' logged event of a checked order the bank routes (orjson: the document
    hvps.dumps writes, at a tenth of the cost)."""
    return orjson.dumps({"do": "transfer", "order": -1, "fields": {
        "id": c.ref, "amount_fen": c.amount_fen, "channel": order.channel,
        "urgent": order.urgent, "from_customer": c.debtor_id, "to_customer": None,
        "to_account": [c.receiver, order.creditor_account, order.creditor_name]}},
        option=orjson.OPT_SORT_KEYS)


#: an order's answer in a group: (status, body), or its refusal
Booked = tuple[int, dict[str, Any]] | ApiError


def book_group(world: World, orders: Sequence[tuple[str, Order]]) -> list[Booked]:
    """Many participants' orders at once (the HTTP edge's batch): each checked as
    :func:`book` checks it, those the bank routes logged as ONE group of banks' events
    (one log entry: ``Engine.command_group``), applied in order; an order naming its
    system is booked alone, in its turn. Each order's answer (:func:`answer`) or refusal,
    in order. The orders of a group are checked before any of them is applied (an id
    used twice in it is a duplicate), as concurrent requests are: none of them waits for
    another's answer."""
    out: list[Booked | None] = [None] * len(orders)
    group: list[tuple[int, Checked, Order]] = []

    def flush() -> None:
        if group:
            world.engine.command_group("banks.event", [_event(c, o) for _, c, o in group])
            for i, c, o in group:
                out[i] = answer(record_view(world, c.ref, JSON_MSG_ID, o.id,
                                            world.banks.payments[c.ref]))
            group.clear()

    seen: set[str] = set()
    for i, (participant, order) in enumerate(orders):
        try:
            if order.system is not None:
                flush()
                out[i] = answer(book(world, participant, order))
                continue
            c = check(world, participant, order)
            if c.ref in seen:
                raise _duplicate(participant, order.id)
        except ApiError as exc:
            out[i] = exc
            continue
        seen.add(c.ref)
        group.append((i, c, order))
        if len(group) >= MAX_GROUP:
            flush()
    flush()
    assert all(o is not None for o in out)
    return cast(list[Booked], out)


def _duplicate(participant: str, tx_id: str) -> ApiError:
    return ApiError(409, "duplicate", f"you sent a payment {JSON_MSG_ID}/{tx_id} before "
                    f"(AM05): GET /v1/participants/{participant}/payments/{JSON_MSG_ID}/"
                    f"{tx_id} tells what became of it", "id")


def answer(doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to a booked order: 201 with the payment, or 422 with the bank's
    ISO reason when it refused the order at once (the payment, recorded, in the body)."""
    if doc["status"] != "rejected":
        return 201, doc
    reason = doc["reason"] or {"code": "NARR", "message": "rejected"}
    return 422, {"reason": reason["code"], "field": REFUSAL_FIELD.get(reason["code"]),
                 "message": reason["message"], "payment": doc}


#: the field a bank's refusal points at, by its reason code
REFUSAL_FIELD: Final = {"AM02": "amount", "AM04": "amount", "AC01": "creditor.account",
                        "BE01": "creditor.name", "AM05": "id", "DT01": "system"}


def cancel(world: World, participant: str, msg_id: str, tx_id: str) -> dict[str, Any]:
    """撤销: cancel one of ``participant``'s payments while it waits (queued in HVPS, behind
    the BEPS cap, held by the bank until HVPS opens), as the banks' logged ``cancel``
    event. 404 (nothing logged) when it has no such payment; 409 with CNAPS's reason when
    the payment no longer waits (it is in the log: the refusal is the bank's record)."""
    ref = ref_of(participant, msg_id, tx_id)
    banks = world.banks
    if ref not in banks.payments:
        raise ApiError(404, "unknown_payment", f"{participant} sent no payment "
                       f"{msg_id}/{tx_id} through its bank", "tx_id")
    world.engine.command("banks.event", dumps({"do": "cancel", "order": -1,
                                               "fields": {"target": ref}}))
    action = banks.actions[-1]
    doc = record_view(world, ref, msg_id, tx_id, banks.payments[ref])
    if not action["ok"]:
        reason = action["reason"] or {"code": "NARR", "message": "not cancelled"}
        raise ApiError(409, reason["code"], f"not cancelled: {reason['message']}", "tx_id",
                       extra={"payment": doc})
    return {"cancelled": True, "payment": doc}


class InstitutionTransferIn(BaseModel):
    """The bank's own payment to another bank (hvps.112, pacs.009): from its own funds,
    through HVPS."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="your id for it (its payment id is API/<id>)",
                    examples=["MM-LOAN-0001"])
    creditor_bank: str = Field(description="the bank paid: CNAPS name or bank code",
                               examples=["CCB"])
    amount: str = Field(description="CNY as a string of yuan, at most two decimals",
                        examples=["1000000.00"])
    priority: Literal["urgent", "normal"] = "normal"


def book_institution(world: World, participant: str, order: InstitutionTransferIn
                     ) -> dict[str, Any]:
    amount = inputs.amount_fen(order.amount)
    inputs.payment_id(order.id)
    directory = world.cnaps.directory
    bank = order.creditor_bank
    receiver = directory.by_code(bank) if bank.isdigit() else \
        directory.get(bank) if bank in directory else None
    if receiver is None or receiver.name not in world.banks.members:
        raise ApiError(422, "unknown_participant", f"{inputs.clip(bank)} is not a bank in "
                       "this world (GET /v1/participants lists them)", "creditor_bank")
    if receiver.name == participant:
        raise ApiError(422, "same_account", "a bank does not pay itself through HVPS",
                       "creditor_bank")
    ref = ref_of(participant, JSON_MSG_ID, order.id)
    if ref in world.banks.payments:
        raise ApiError(409, "duplicate", f"you sent a payment {JSON_MSG_ID}/{order.id} "
                       "before (AM05)", "id")
    record = world.banks.institution_transfer(ref, participant, receiver.name, amount,
                                              order.priority)
    return record_view(world, ref, JSON_MSG_ID, order.id, record)
