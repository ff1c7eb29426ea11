"""Routes: connected participants answering IBPS confirmation requests and BEPS debit
receipt requests (issue 15).

A participant connected (by its own key or the operator's) answers the IBPS items paid to
it and the BEPS debits drawn on its customers itself: each waits
(``awaiting_confirmation``) until it accepts or rejects it with a reason, or its deadline
passes (``ibps.confirm_timeout_ms``: then it ends ``AB05``; ``beps.receipt_timeout_minutes``:
``AB06``). Its requests reach it as ``confirm_request`` and ``receipt_request`` notices (the
inbox, and its webhook when it registered one) and are listed here. Every answer is a
logged command (cnaps.ibps_confirm, cnaps.beps_receipt: netsys.ASKING).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from qingsuan.clock import format_time
from qingsuan.cnaps.netsys import ASKING, CONFIRM_REJECT_CODES, RECEIPT_REJECT_CODES
from qingsuan.money import format_fen
from qingsuan.server.http.deps import Acting, Core, Operator, Reading, known_participant
from qingsuan.server.http.errors import ERRORS, ApiError

router = APIRouter(responses=ERRORS)


class ConnectionIn(BaseModel):
    """Whether the participant answers its IBPS confirmation requests and its BEPS debit
    receipt requests itself."""

    model_config = ConfigDict(extra="forbid")
    # strict: 0, 1 or "yes" are not booleans (the schema says boolean; a typo must not
    # silently connect or disconnect)
    connected: StrictBool = Field(description="true: you answer; false: the simulated bank does")


class AnswerIn(BaseModel):
    """An answer to one confirmation request."""

    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=200,
                     description="the request's `ref` (GET .../ibps/confirmations)")
    answer: Literal["accept", "reject"]
    code: str | None = Field(None, description="a rejection's reason: "
                                               + ", ".join(CONFIRM_REJECT_CODES))
    message: str = Field("", max_length=105, description="a rejection's text")


class ReceiptIn(AnswerIn):
    """A receipt (回执) for one BEPS debit drawn on your customer: accept, or refuse."""

    ref: str = Field(min_length=1, max_length=200,
                     description="the request's `ref` (GET .../beps/receipts)")
    code: str | None = Field(None, description="a refusal's reason: "
                                               + ", ".join(RECEIPT_REJECT_CODES))


def _view(c: Any, participant: str) -> dict[str, Any]:
    """The participant's connection and the requests waiting for its answer."""
    ibps = c.cnaps.ibps
    pending = []
    for ref, (deadline, answerer) in sorted(ibps.awaiting.items(),
                                            key=lambda kv: (kv[1][0], kv[0])):
        if answerer != participant:
            continue
        item = ibps.items[ref]
        pending.append({"ref": ref, "from": item.sender, "amount": format_fen(item.amount_fen),
                        "payer_account": item.payer, "payee_account": item.payee,
                        "payee_name": item.payee_name,
                        "received_at": format_time(item.submitted_us),
                        "answer_by": format_time(deadline)})
    return {"participant": participant, "connected": participant in c.cnaps.connected,
            "timeout_ms": int(c.engine.params["ibps.confirm_timeout_ms"]),
            "pending": pending}


async def _connect(c: Any, participant: str, connected: bool) -> dict[str, Any]:
    def job() -> dict[str, Any]:
        outcome = c.cnaps.connect(participant, connected)
        assert outcome.ok, outcome  # the participant is known: checked before
        return _view(c, participant)
    result: dict[str, Any] = await c.writer.call(job)
    return result


@router.get("/v1/participants/{participant}/ibps/confirmations", tags=["participant"],
            summary="Your IBPS confirmation requests")
async def get_confirmations(participant: Reading, c: Core) -> Any:
    """Whether you answer IBPS items yourself, the timeout, and the items waiting for your
    answer (oldest deadline first)."""
    result: dict[str, Any] = await c.writer.call(lambda: _view(c, participant))
    return result


@router.put("/v1/participants/{participant}/ibps/confirmations", tags=["participant"],
            summary="Answer your IBPS confirmations yourself, or not")
async def put_connection(participant: Acting, order: Annotated[ConnectionIn, Body()],
                         c: Core) -> Any:
    """Connected, every IBPS item paid to you waits for your answer (`POST
    .../ibps/confirmations/answers`) until the IBPS timeout, then ends rejected AB05; not
    connected, the simulated bank answers at once. Items already waiting still wait."""
    return await _connect(c, participant, order.connected)


@router.put("/v1/operator/participants/{participant}/ibps/confirmations",
            tags=["operator"], summary="Connect a participant for IBPS confirmations")
async def operator_put_connection(participant: str, order: Annotated[ConnectionIn, Body()],
                                  _: Operator, c: Core) -> Any:
    """As the participant's own `PUT .../ibps/confirmations`."""
    known_participant(c, participant)
    return await _connect(c, participant, order.connected)


@router.post("/v1/participants/{participant}/ibps/confirmations/answers",
             tags=["participant"], summary="Accept or reject an IBPS item")
async def post_answer(participant: Acting, order: Annotated[AnswerIn, Body()],
                      c: Core) -> Any:
    """Accepted, the item nets and your customer is credited; rejected (with `code`), the
    payer's bank gives its customer the money back. An answer at or after the deadline is
    refused (409 `too_late`): the item was rejected AB05 then."""
    return await _answer(c, "IBPS", participant, order)


@router.get("/v1/participants/{participant}/beps/receipts", tags=["participant"],
            summary="Your BEPS debit receipt requests")
async def get_receipts(participant: Reading, c: Core) -> Any:
    """Whether you give the receipts (回执) for BEPS debits drawn on your customers
    yourself (connected: `PUT .../ibps/confirmations`, one connection for both), the
    deadline, and the debits waiting for your receipt (oldest deadline first)."""
    result: dict[str, Any] = await c.writer.call(lambda: _receipts_view(c, participant))
    return result


@router.post("/v1/participants/{participant}/beps/receipts/answers",
             tags=["participant"], summary="Give or refuse the receipt for a BEPS debit")
async def post_receipt(participant: Acting, order: Annotated[ReceiptIn, Body()],
                       c: Core) -> Any:
    """Accepted, the debit nets (or queues behind your BEPS net debit cap) and your
    customer is debited; refused (with `code`), nothing moves. A receipt at or after the
    deadline is refused (409 `too_late`): the debit was rejected AB06 then."""
    return await _answer(c, "BEPS", participant, order)


def _receipts_view(c: Any, participant: str) -> dict[str, Any]:
    """The participant's connection and the debits waiting for its receipt."""
    beps = c.cnaps.beps
    pending = []
    for ref, (deadline, answerer) in sorted(beps.awaiting.items(),
                                            key=lambda kv: (kv[1][0], kv[0])):
        if answerer != participant:
            continue
        item = beps.items[ref]
        pending.append({"ref": ref, "from": item.receiver, "kind": item.kind,
                        "amount": format_fen(item.amount_fen), "payer_account": item.payer,
                        "payee_account": item.payee,
                        "received_at": format_time(item.submitted_us),
                        "answer_by": format_time(deadline)})
    return {"participant": participant, "connected": participant in c.cnaps.connected,
            "timeout_minutes": int(c.engine.params["beps.receipt_timeout_minutes"]),
            "pending": pending}


async def _answer(c: Any, system: str, participant: str, order: AnswerIn) -> Any:
    """One answer to a request of ``system`` (netsys.ASKING): checked, then logged."""
    asking = ASKING[system]
    what = "IBPS confirmation request" if system == "IBPS" else "BEPS debit receipt request"
    accept = order.answer == "accept"
    if not accept and order.code not in asking.reject_codes:
        raise ApiError(422, "invalid_code", "a rejection needs a code among "
                       + ", ".join(asking.reject_codes), "code")
    if accept and order.code is not None:
        raise ApiError(422, "invalid_code", "an acceptance has no code", "code")

    def job() -> dict[str, Any]:
        # (the writer ticked first: an item whose deadline has come is rejected by that
        # logged tick, not by this query)
        net = c.cnaps.net[system]
        item = net.items.get(order.ref)
        held = net.awaiting.get(order.ref)
        mine = {participant, c.cnaps.directory.settling(participant)}
        if item is None or (held[1] != participant if held is not None
                            else _asked_of(system, item) not in mine):
            # never asked of this participant: another's item is not shown
            raise ApiError(404, "unknown_request", f"no {what} {order.ref!r} for "
                           f"{participant}", "ref")
        if held is None:
            _refuse_closed(order.ref, item, asking.silent_code)
        if system == "IBPS":
            outcome = c.cnaps.ibps_confirm(order.ref, participant, accept, order.code,
                                           order.message)
        else:
            outcome = c.cnaps.beps_receipt(order.ref, participant, accept, order.code,
                                           order.message)
        if not outcome.ok and outcome.status != "rejected":
            _refuse_closed(order.ref, item, asking.silent_code)
        return {"ref": order.ref, "status": outcome.status,
                "reason": None if outcome.reason is None else
                {"code": outcome.reason[0], "message": outcome.reason[1]}}
    result: dict[str, Any] = await c.writer.call(job)
    return result


def _asked_of(system: str, item: Any) -> str | None:
    """Who would have been asked about ``item``: an IBPS item's receiver, a BEPS debit's
    payer's bank (its sender); nobody for anything else."""
    if system == "IBPS":
        return None if item.kind == "positions" else str(item.receiver)
    return str(item.sender) if item.kind.endswith("_debit") else None


def _refuse_closed(ref: str, item: Any, silent_code: str) -> None:
    """409: the item waits for no answer (any more)."""
    if item.status == "rejected" and item.reason is not None and \
            item.reason[0] == silent_code:
        raise ApiError(409, "too_late", f"{ref} was rejected {silent_code} when its deadline "
                       "passed: the answer comes too late", "ref",
                       extra={"status": item.status})
    raise ApiError(409, "not_awaiting", f"{ref} is {item.status}: it waits for no answer "
                   "(answered already, or never asked)", "ref",
                   extra={"status": item.status})


__all__ = ["router"]
