"""camt.060 over HTTP: a report request sent as XML to ``.../messages`` or as JSON to
``.../reports``, answered by the gateway's code that serves the statements and intraday
report routes. A refusal is a 4xx by its kind: 403 another's account (nothing of it
shown), 404 no statement in the period, 422 a report CNAPS does not make or a bad
period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from qingsuan.clock import to_beijing
from qingsuan.cnaps.gateway import REPORTS, ReportRefusal, ReportRefusalKind
from qingsuan.messages import (
    CAMT060,
    InboundMessage,
    InvalidField,
    MessageRejection,
    ReportRequest,
    build_rejection_pacs002,
)
from qingsuan.server.http import inputs
from qingsuan.server.http.deps import accepts_json
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from qingsuan.server.http.core import SandboxCore

XML: Final = "application/xml"
#: the HTTP status of each kind of refusal
STATUS: Final = {ReportRefusalKind.NOT_YOURS: 403, ReportRefusalKind.NO_REPORT: 404,
                 ReportRefusalKind.UNSUPPORTED: 422, ReportRefusalKind.INVALID_PERIOD: 422}
#: a request's field -> the JSON body's
_JSON_FIELD: Final = {"requested_message": "message", "from_date": "date", "to_date": "to",
                      "account_owner": "participant", "account": "participant"}


class ReportIn(BaseModel):
    """A camt.060 in JSON: which report, of which day or period."""

    model_config = ConfigDict(extra="forbid")
    message: str = Field(description="camt.053 (the statements of closed business days) or "
                                     "camt.052 (today's intraday report); the version "
                                     "answered (camt.053.001.08) is taken too",
                         examples=["camt.053"])
    date: str | None = Field(None, description="camt.053: the day (YYYY-MM-DD), or the "
                                               "first of a period ending at `to`; camt.052: "
                                               "today, or omit", examples=["2026-11-26"])
    to: str | None = Field(None, description="camt.053: the period's last day (at most 31 "
                                             "days)", examples=[None])


async def answer_xml(request: Request, c: SandboxCore, participant: str,
                     inbound: InboundMessage) -> Response:
    """The answer to a camt.060 sent as XML: the report (200), or the refusal as a
    pacs.002 RJCT (the JSON refusal with ``Accept: application/json``)."""
    answer = await c.writer.call(lambda: c.gateway.report(inbound, participant))
    if not isinstance(answer, ReportRefusal):
        return Response(answer, media_type=XML)
    status = STATUS[answer.kind]
    if accepts_json(request):
        return JSONResponse({"reason": answer.kind.value, "field": answer.element_path,
                             "message": answer.message, "iso_reason": answer.reason_code},
                            status_code=status)
    rejection = MessageRejection(reason_code=answer.reason_code, message=answer.message,
                                 element_path=answer.element_path, message_type=CAMT060,
                                 msg_id=inbound.msg_id)
    reply = build_rejection_pacs002(rejection, msg_id=f"QSR{c.engine.applied_seq:011d}",
                                    created_at=to_beijing(c.clock.now_us()))
    return Response(reply, status_code=status, media_type=XML,
                    headers={"Qingsuan-Reason": answer.reason_code})


def answer_json(c: SandboxCore, participant: str, order: ReportIn) -> bytes:
    """The report a JSON request asks for (run by the writer), or its refusal."""
    if order.message not in REPORTS:
        raise ApiError(422, "unsupported_report", "CNAPS reports with camt.053 (the statement "
                       "of closed days) or camt.052 (the intraday report), not "
                       f"{inputs.clip(order.message)}", "message")
    first = None if order.date is None else inputs.date(order.date, "date")
    last = None if order.to is None else inputs.date(order.to, "to")
    if last is not None and first is None:
        raise ApiError(422, "missing_field", "a period's first day (`date`) goes with its "
                       "last (`to`)", "date")
    me = c.cnaps.directory.get(participant)
    try:
        request = ReportRequest(msg_id="API", created_at=to_beijing(c.clock.now_us()),
                                requested_message=order.message, account_owner=me.code,
                                from_date=first, to_date=last)
    except InvalidField as exc:
        raise ApiError(422, "invalid_date", exc.message,
                       _JSON_FIELD.get(exc.field, exc.field)) from None
    answer = c.gateway.report(InboundMessage(CAMT060, "API", (request,)), participant)
    if isinstance(answer, ReportRefusal):
        raise ApiError(STATUS[answer.kind], answer.kind.value, answer.message,
                       _JSON_FIELD.get(answer.field, answer.field),
                       extra={"iso_reason": answer.reason_code})
    return answer
