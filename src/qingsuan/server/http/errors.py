"""Every refusal of the HTTP API as one JSON shape: ``{"reason", "field", "message"}``.

``reason`` is an ISO 20022 status reason (four capitals: ``AM04``, ``FF01``) when the bank or
CNAPS refused a payment or a message, otherwise a lowercase API code (``amount_precision``,
``not_yours``). ``field`` names the input at fault (``creditor.account``, an XML element
path) or is null. A 4xx means nothing happened, unless the body also carries the
``payment`` the bank recorded as refused. Bad input is never a 5xx: a 5xx is the server's
own trouble (``engine_stopped``: the engine met a command it could not apply and stopped).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


class ApiError(Exception):
    """A refusal with its HTTP status; raised anywhere below a route, answered as JSON."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.status, self.reason, self.message, self.field = status, reason, message, field
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"reason": self.reason, "field": self.field, "message": self.message,
                **self.extra}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


class ErrorBody(BaseModel):
    """What every refusal answers (the OpenAPI schema of the 4xx responses)."""

    reason: str
    field: str | None = None
    message: str


#: the OpenAPI ``responses`` of a route that refuses bad input
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "malformed input"), (401, "no API key, or an unknown one"),
        (403, "not this key's participant, or not the operator"),
        (404, "no such payment, statement or participant"),
        (409, "a conflict: a payment id used before, the clock moved back"),
        (413, "the body is too large"), (415, "not the content type the route takes"),
        (422, "a field that is not valid: amount, account, date"))}

_STATUS_REASONS = {400: "bad_request", 401: "missing_key", 403: "forbidden", 404: "not_found",
                   405: "method_not_allowed", 406: "not_acceptable", 413: "too_large",
                   415: "unsupported_media_type"}


def _field(loc: Any) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": "invalid input"}
    kind = str(first.get("type", ""))
    field = _field(first.get("loc", ()))
    status, reason = 422, "invalid_field"
    if kind == "json_invalid":
        status, reason, field = 400, "invalid_json", None
    elif kind == "missing":
        reason = "missing_field"
        if field is None:
            status, reason = 400, "missing_body"
    elif kind == "extra_forbidden":
        reason = "unknown_field"
    elif kind.endswith("_type") or kind in ("model_attributes_type", "dict_type"):
        reason = "invalid_type"
    message = str(first.get("msg", "invalid input"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ApiError(status, reason, message, field).response()


#: the methods a 405's ``Allow`` may list
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> str:
    """Every method some route takes at this path. (Starlette's 405 names only the methods
    of the first route it found there: a path whose GET and POST are two routes would
    answer a DELETE with ``Allow: GET``, against RFC 9110.)"""
    routes = request.app.router.routes
    return ", ".join(m for m in _METHODS if any(
        route.matches({**request.scope, "method": m})[0] == Match.FULL for route in routes))


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = _STATUS_REASONS.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else reason.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        detail = f"{request.method} is not taken here; this path takes {headers['Allow']}"
    return ApiError(exc.status_code, reason, detail, headers=headers or None).response()


def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


def install(app: FastAPI) -> None:
    """Answer every refusal of ``app`` in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
