"""The JSON forms of the ISO 20022 messages that are no transfer: a BEPS direct debit
(pacs.003), a return (pacs.004) and a report request (camt.060). Each is answered by the
gateway's code for the XML message; the path's participant acts for itself only."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse, Response

from qingsuan.server.http import net_orders, reports
from qingsuan.server.http.deps import Acting, Core
from qingsuan.server.http.errors import ERRORS

router = APIRouter(prefix="/v1/participants/{participant}", responses=ERRORS)

XML: Final = "application/xml"
_BOOKED: Final[dict[int | str, dict[str, Any]]] = {
    201: {"description": "CNAPS took it: the payment, `iso_status` as a pacs.002 says it"},
    404: {"description": "a payment you did not receive (returns)"},
    409: {"description": "an id used before, a payment returned already or not netted"},
    422: {"description": "a bad field (nothing logged), or CNAPS refused it (its ISO "
                         "reason; the `payment` it recorded, when it did)"}}


@router.post("/direct-debits", status_code=201, responses=_BOOKED,
             summary="Send a BEPS direct debit (JSON pacs.003)")
async def send_direct_debit(order: Annotated[net_orders.DirectDebitIn, Body()],
                            participant: Acting, c: Core) -> JSONResponse:
    """Collect from a customer of another bank for your customer (beps.127 ordinary
    debit; beps.131 periodic with a `mandate`), as a pacs.003 would: the payer's bank
    answers with its receipt (insufficient funds AM04, no such account AC01, no agreement
    MD01: 422 with the payment recorded), and the debit nets in BEPS (201, ACSP)."""
    status, body = await c.writer.call(lambda: net_orders.book_debit(
        c.world, c.gateway, participant, order))
    return JSONResponse(body, status_code=status)


@router.post("/returns", status_code=201, responses=_BOOKED,
             summary="Return a BEPS or IBPS credit you received (JSON pacs.004)")
async def send_return(order: Annotated[net_orders.ReturnIn, Body()], participant: Acting,
                      c: Core) -> JSONResponse:
    """退汇: give back the whole of a netted BEPS or IBPS credit paid to you, as a pacs.004
    would; it nets back to the sender (201). A payment you did not receive is 404, one
    returned already or not netted 409, a part of its amount 422 AM02."""
    status, body = await c.writer.call(lambda: net_orders.book_return(
        c.world, c.gateway, participant, order))
    return JSONResponse(body, status_code=status)


@router.post("/reports", response_class=Response, summary="Ask for a report (JSON camt.060)",
             responses={200: {"content": {XML: {"schema": {"type": "string"}}},
                              "description": "camt.053 or camt.052"},
                        404: {"description": "no statement of the day or period"},
                        422: {"description": "a report CNAPS does not make, a bad date"}})
async def request_report(order: Annotated[reports.ReportIn, Body()], participant: Acting,
                         c: Core) -> Response:
    """A camt.060 in JSON: `{"message": "camt.053", "date": "2026-11-26"}` (with `to`: a
    period of at most 31 days) answers the camt.053 of each closed business day in it;
    `{"message": "camt.052"}` today's camt.052. Nothing is logged."""
    xml = await c.writer.call(lambda: reports.answer_json(c, participant, order))
    return Response(xml, media_type=XML)
