"""Routes: connected participants answering IBPS confirmation requests (issue 15).

A participant connected for confirmations (by its own key or the operator's) answers the
IBPS items paid to it itself: each waits (``awaiting_confirmation``) until it accepts or
rejects it with a reason, or ``ibps.confirm_timeout_ms`` passes (then it ends ``AB05``).
Its requests reach it as ``confirm_request`` notices (the inbox, and its webhook when it
registered one) and are listed here. Every answer is a logged command (cnaps.ibps_confirm).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from qingsuan.clock import format_time
from qingsuan.cnaps.netsys import CONFIRM_REJECT_CODES
from qingsuan.money import format_fen
from qingsuan.server.http.deps import Acting, Core, Operator, Reading, known_participant
from qingsuan.server.http.errors import ERRORS, ApiError

router = APIRouter(responses=ERRORS)


class ConnectionIn(BaseModel):
    """Whether the participant answers its IBPS confirmation requests itself."""

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
    accept = order.answer == "accept"
    if not accept and order.code not in CONFIRM_REJECT_CODES:
        raise ApiError(422, "invalid_code", "a rejection needs a code among "
                       + ", ".join(CONFIRM_REJECT_CODES), "code")
    if accept and order.code is not None:
        raise ApiError(422, "invalid_code", "an acceptance has no code", "code")

    def job() -> dict[str, Any]:
        # (the writer ticked first: an item whose deadline has come is rejected AB05 by
        # that logged tick, not by this query)
        ibps = c.cnaps.ibps
        item = ibps.items.get(order.ref)
        held = ibps.awaiting.get(order.ref)
        paid_to = {participant, c.cnaps.directory.settling(participant)}
        if item is None or (held[1] != participant if held is not None
                            else item.receiver not in paid_to or item.kind == "positions"):
            # never asked of this participant: another's item is not shown
            raise ApiError(404, "unknown_request", f"no IBPS confirmation request "
                           f"{order.ref!r} for {participant}", "ref")
        if held is None:
            _refuse_closed(order.ref, item)
        outcome = c.cnaps.ibps_confirm(order.ref, participant, accept, order.code,
                                       order.message)
        if not outcome.ok and outcome.status != "rejected":
            _refuse_closed(order.ref, item)
        return {"ref": order.ref, "status": outcome.status,
                "reason": None if outcome.reason is None else
                {"code": outcome.reason[0], "message": outcome.reason[1]}}
    result: dict[str, Any] = await c.writer.call(job)
    return result


def _refuse_closed(ref: str, item: Any) -> None:
    """409: the item waits for no answer (any more)."""
    if item.status == "rejected" and item.reason is not None and item.reason[0] == "AB05":
        raise ApiError(409, "too_late", f"{ref} was rejected AB05 when its deadline passed: "
                       "the answer comes too late", "ref", extra={"status": item.status})
    raise ApiError(409, "not_awaiting", f"{ref} is {item.status}: it waits for no answer "
                   "(answered already, or never asked)", "ref",
                   extra={"status": item.status})


__all__ = ["router"]
