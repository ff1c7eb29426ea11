"""A participant's routes: send ISO 20022 messages and JSON transfers, follow its payments,
read its statements and positions. Each acts only for the key's own participant."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from qingsuan.clock import to_beijing
from qingsuan.cnaps.gateway import ACCEPTED
from qingsuan.messages import CAMT060, MessageRejection, build_rejection_pacs002, parse_inbound
from qingsuan.messages.xmlio import DEFAULT_MAX_BYTES
from qingsuan.server.http import (
    inputs,
    inquiries,
    notices,
    reports,
    transfer_order,
    transfers,
    views,
)
from qingsuan.server.http.deps import Acting, Core, Reading, accepts_json
from qingsuan.server.http.errors import ERRORS, ApiError

XML: Final = "application/xml"
_XML_TYPES: Final = ("application/xml", "text/xml")
#: the largest message body taken (the codec's own limit)
MAX_XML_BYTES: Final = DEFAULT_MAX_BYTES
_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,34}$"

router = APIRouter(prefix="/v1/participants/{participant}", responses=ERRORS)

_XML_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {XML: {
    "schema": {"type": "string", "format": "binary"},
    "example": "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">"
               "...</Document>"}}}}
_XML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {XML: {"schema": {"type": "string"}}}, "description": "the answer message"},
    400: {**ERRORS[400], "content": {XML: {"schema": {"type": "string"}}},
          "description": "a message refused whole: a pacs.002 RJCT naming the reason "
                         "(the JSON refusal with Accept: application/json)"},
    **{code: {**ERRORS[code], "content": {XML: {"schema": {"type": "string"}}},
              "description": f"a camt.060 refused: {why} (a pacs.002 RJCT, or the JSON "
                             "refusal with Accept: application/json)"}
       for code, why in ((403, "another's account"), (404, "no statement of the period"),
                         (422, "a report CNAPS does not make"))}}

MsgId = Annotated[str, Path(pattern=_ID_PATTERN, description="GrpHdr/MsgId (API for JSON)")]
TxId = Annotated[str, Path(pattern=_ID_PATTERN, description="TxId (the id of a JSON one)")]


async def read_xml(request: Request) -> bytes:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in _XML_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the message as application/xml "
                       f"(got {inputs.clip(kind or 'no content type')})", "content-type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_XML_BYTES:
        raise ApiError(413, "too_large", f"a message is at most {MAX_XML_BYTES:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_XML_BYTES:
            raise ApiError(413, "too_large", f"a message is at most {MAX_XML_BYTES:,} bytes")
    if not body:
        raise ApiError(400, "missing_body", "the message is empty")
    return bytes(body)


@router.post("/messages", openapi_extra=_XML_BODY, responses=_XML_ANSWER,
             response_class=Response, summary="Send an ISO 20022 message")
async def send_message(request: Request, participant: Acting, c: Core) -> Response:
    """pacs.008 (customer transfer), pacs.009 (institution transfer), pacs.003 (BEPS
    debit), pacs.004 (return), camt.056 (cancel request), pacs.028 (status request) or
    camt.060 (report request), validated against the official XSDs. The answer is
    CNAPS's: pacs.002 (camt.029 for a camt.056), each transaction ACSC, ACSP, PDNG or RJCT
    with its reason; 200 even when transactions are rejected; a camt.060 is answered with
    the camt.053 or camt.052 asked for (403, 404, 422 with a pacs.002 RJCT when refused).
    A message refused whole (not XML, not valid against its XSD, a type CNAPS does not
    take) is 400 with a pacs.002 RJCT naming the reason and the element, or the JSON
    refusal when you send `Accept: application/json`."""
    xml = await read_xml(request)
    first = parse_inbound(xml, accept=ACCEPTED)  # (pure: no need of the engine's lock)
    if isinstance(first, MessageRejection):
        return _refused(request, c, first)
    if first.message_type == CAMT060:
        return await reports.answer_xml(request, c, participant, first)
    reply = await c.writer.call(lambda: c.gateway.receive(xml, participant, first))
    return Response(reply, media_type=XML)


def _refused(request: Request, c: Core, rejection: MessageRejection) -> Response:
    if accepts_json(request):
        return JSONResponse({"reason": rejection.reason_code, "field": rejection.element_path,
                             "message": rejection.message}, status_code=400)
    reply = build_rejection_pacs002(rejection, msg_id=f"QSR{c.engine.applied_seq:011d}",
                                    created_at=to_beijing(c.clock.now_us()))
    return Response(reply, status_code=400, media_type=XML,
                    headers={"Qingsuan-Reason": rejection.reason_code})


#: the transfer route's body in the OpenAPI: the pydantic model's schema (app.py puts it
#: in the components), read by transfer_order.parse_order rather than by FastAPI
TRANSFER_BODY: Final[dict[str, Any]] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/TransferIn"}}}}}


@router.post("/transfers", status_code=201, summary="Send a customer transfer (JSON)",
             openapi_extra=TRANSFER_BODY, response_model=None,
             responses={201: {"description": "the bank took the order: its payment"},
                        422: {"description": "refused: a bad field (nothing logged), or the "
                                             "bank refused the order at once (the body's "
                                             "payment, logged, has status rejected)"}})
async def send_transfer(request: Request, participant: Acting, c: Core) -> JSONResponse:
    """Your customer's transfer, booked and routed by your bank as at its counter or in
    its app. 201 with the payment (`status`: accepted, settled, queued, netted, credited
    within the bank; `iso_status` as a pacs.002 would say it). A refusal by the bank at
    once (insufficient funds AM04, above the IBPS limit AM02, a closed account AC04) is
    422 with its ISO reason and the payment it recorded."""
    refused = transfer_order.content_type_error(request.headers.get("content-type"))
    if refused is not None:
        raise refused
    order = transfer_order.parse_order(await request.body())
    doc = await c.writer.call(lambda: transfers.book(c.world, participant, order))
    status, body = transfers.answer(doc)
    return JSONResponse(body, status_code=status)


@router.post("/institution-transfers", status_code=201,
             summary="Send the bank's own payment (JSON pacs.009)")
async def send_institution_transfer(
        order: Annotated[transfers.InstitutionTransferIn, Body()], participant: Acting,
        c: Core) -> JSONResponse:
    """Your bank's own payment to another bank (hvps.112: interbank lending, say), from
    its own funds through HVPS: settled at once (ACSC) or queued for liquidity (ACSP)."""
    doc = await c.writer.call(lambda: transfers.book_institution(c.world, participant,
                                                                 order))
    if doc["status"] == "rejected":
        reason = doc["reason"] or {"code": "NARR", "message": "rejected"}
        return JSONResponse({"reason": reason["code"], "field": None,
                             "message": reason["message"], "payment": doc}, status_code=422)
    return JSONResponse(doc, status_code=201)


@router.get("/payments/{msg_id}/{tx_id}", summary="A payment's status")
async def payment(msg_id: MsgId, tx_id: TxId, participant: Reading, c: Core) -> Any:
    """One of your payments, by its message id and transaction id (a JSON transfer's:
    `API/<id>`): status, ISO status, reason, route and history."""
    doc = await c.writer.call(lambda: views.payment(c.world, participant, msg_id, tx_id))
    if doc is None:
        raise ApiError(404, "unknown_payment", f"{participant} sent no payment "
                       f"{msg_id}/{tx_id}", "tx_id")
    return doc


@router.post("/payments/{msg_id}/{tx_id}/cancel", summary="Cancel a payment that waits")
async def cancel(msg_id: MsgId, tx_id: TxId, participant: Acting, c: Core) -> Any:
    """撤销: cancel one of your payments while it still waits: queued in HVPS, behind the
    BEPS debit cap, or held by your bank until HVPS opens (a camt.056 does the same in
    XML). 409 with CNAPS's reason when it no longer waits (settled, netted, refused)."""
    return await c.writer.call(lambda: transfers.cancel(c.world, participant, msg_id, tx_id))


@router.get("/statements/{date}", response_class=Response, summary="camt.053 statement",
            responses={200: {"content": {XML: {"schema": {"type": "string"}}},
                             "description": "camt.053"}})
async def statement(date: str, participant: Reading, c: Core) -> Response:
    """The settlement account's statement of a closed business day (camt.053)."""
    day = inputs.date(date)

    def job() -> bytes:
        try:
            return c.gateway.statement(participant, day)
        except (KeyError, ValueError):
            raise ApiError(404, "no_statement", f"no statement of {day} for {participant}: "
                           "the day is not closed yet, or was not a business day",
                           "date") from None

    return Response(await c.writer.call(job), media_type=XML)


@router.get("/reports/intraday", response_class=Response, summary="camt.052 intraday report",
            responses={200: {"content": {XML: {"schema": {"type": "string"}}},
                             "description": "camt.052"}})
async def intraday(participant: Reading, c: Core) -> Response:
    """The settlement account's entries of today so far and its balance now (camt.052)."""
    return Response(await c.writer.call(lambda: c.gateway.intraday_report(participant)),
                    media_type=XML)


@router.get("/positions", summary="Balances, HVPS queue, net positions and caps")
async def positions(participant: Reading, c: Core) -> Any:
    """The settlement account (balance, available, with pledge financing), the HVPS queue
    by priority, and the BEPS/IBPS net positions against their debit caps."""
    return await c.writer.call(lambda: views.positions(c.world, participant))




@router.get("/inquiries/account", summary="IBPS account inquiry")
async def account_inquiry(participant: Acting, c: Core,
                          bank: Annotated[str, Query(description="CNAPS name or bank code")],
                          account: Annotated[str, Query(description="account number")],
                          name: Annotated[str | None, Query(description="holder's name, "
                                                            "to check")] = None) -> Any:
    """Does the account exist at that bank (AC01 no, AC04 closed), and is it in that
    name? A query: nothing is logged."""
    return await c.writer.call(lambda: inquiries.account(c.world, bank, account, name))


@router.get("/inquiries/balance", summary="IBPS balance inquiry")
async def balance_inquiry(participant: Acting, c: Core,
                          bank: Annotated[str, Query(description="CNAPS name or bank code")],
                          account: Annotated[str, Query(description="account number")]
                          ) -> Any:
    """Another bank's customer's balance, answered only when the holder has consented
    to you seeing it (AG01 otherwise). A query: nothing is logged."""
    return await c.writer.call(lambda: inquiries.balance(c.world, participant, bank,
                                                         account))


@router.post("/consents", summary="Let another participant see a customer's balance")
async def consent(given: Annotated[inquiries.ConsentIn, Body()], participant: Acting,
                  c: Core) -> Any:
    """Your customer consents to `asker` seeing its balance (IBPS balance inquiry);
    logged."""
    return await c.writer.call(lambda: inquiries.consent(c.world, participant, given))


@router.get("/notices", summary="Your inbox: what CNAPS told you")
async def inbox(participant: Reading, c: Core,
                after: Annotated[str | None, Query(description="the `next` of your last "
                                                   "poll; omit for the first")] = None,
                limit: Annotated[int, Query(ge=1, le=notices.MAX_LIMIT, description=(
                    "notices of each system at most"))] = 100) -> Any:
    """Your notices in time order: your payments queued, settled, netted, rejected,
    returned, cancelled; payments to you credited (HVPS) or incoming (BEPS, IBPS);
    pledges and credit drawn. Poll with `after` set to the last answer's `next`."""
    return await c.writer.call(lambda: notices.inbox(c.world, participant, after, limit))
