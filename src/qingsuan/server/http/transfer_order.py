"""A JSON customer transfer's body read and checked without the engine: the structure
(the fields of :class:`~qingsuan.server.http.transfers.TransferIn`, their JSON types, no
other field) and every value that needs no world (amount, id, account numbers, name).

One function for both doors of the route: the FastAPI route (``create_app``) and the HTTP
edge process of ``qingsuan serve`` (edge.py), so a bad order gets the same refusal from
either. It costs a few microseconds where pydantic and FastAPI's request handling cost
hundreds; the pydantic model stays the route's OpenAPI schema.

A problem of structure is answered as FastAPI answered its validation errors (errors.py):
``missing_body`` and ``invalid_json`` (400), ``missing_field``, ``unknown_field``,
``invalid_type``, ``invalid_field`` (422), the first problem in the fields' order, then the
count of the others.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import orjson

from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError

CHANNELS: Final = ("counter", "mobile")
SYSTEMS: Final = ("HVPS", "BEPS", "IBPS")
#: the order's fields in their documented order (the order problems are reported in)
FIELDS: Final = ("id", "debtor_account", "creditor", "amount", "channel", "urgent", "system")
CREDITOR_FIELDS: Final = ("bank", "account", "name")
_REQUIRED: Final = frozenset(("id", "debtor_account", "creditor", "amount"))
#: the largest body taken for one transfer (a real one is about 200 bytes)
MAX_BODY_BYTES: Final = 64 * 1024
_JSON_TYPES: Final = ("application/json",)


class Order(NamedTuple):
    """A customer's transfer order, every value checked but against the world (a named
    tuple: it crosses to the engine's process by the thousand, and pickles as a tuple)."""

    id: str
    debtor_account: str
    creditor_bank: str
    creditor_account: str
    creditor_name: str
    amount_fen: int
    channel: str = "counter"
    urgent: bool = False
    system: str | None = None


def content_type_error(content_type: str | None) -> ApiError | None:
    """415 unless the body is declared JSON (or not declared: read as JSON)."""
    if not content_type:
        return None
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in _JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json")):
        return None
    return ApiError(415, "unsupported_media_type", "send the transfer as application/json "
                    f"(got {inputs.clip(kind)})", "content-type")


def parse_order(body: bytes) -> Order:
    """The order in ``body`` (JSON), or the refusal (ApiError) of its first problem."""
    if not body:
        raise ApiError(400, "missing_body", "send the transfer as a JSON object")
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"a transfer is at most {MAX_BODY_BYTES:,} bytes")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # (also: not UTF-8, nested too deep)
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "invalid_type", "the body is a JSON object (the order), not "
                       f"{_json_type(doc)}")
    problems = _structure(doc)
    if problems:
        status, reason, message, field = problems[0]
        if len(problems) > 1:
            more = len(problems) - 1
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ApiError(status, reason, message, field)
    creditor = doc["creditor"]
    amount = inputs.amount_fen(doc["amount"])
    order = Order(inputs.payment_id(doc["id"]),
                  inputs.account(doc["debtor_account"], "debtor_account"),
                  creditor["bank"], inputs.account(creditor["account"], "creditor.account"),
                  inputs.name(creditor["name"], "creditor.name"), amount,
                  doc.get("channel", "counter"), doc.get("urgent", False), doc.get("system"))
    return order


Problem = tuple[int, str, str, str | None]


def _structure(doc: dict[str, Any]) -> list[Problem]:
    """Every problem of structure, in the fields' order, unknown fields last."""
    problems: list[Problem] = []
    for name in FIELDS:
        if name not in doc:
            if name in _REQUIRED:
                problems.append((422, "missing_field", f"the field {name} is missing", name))
            continue
        value = doc[name]
        if name == "creditor":
            problems += _creditor(value)
        elif name == "amount":
            if not isinstance(value, str):  # a number: the amount check says why not
                try:
                    inputs.amount_fen(value)
                except ApiError as exc:
                    problems.append((exc.status, exc.reason, exc.message, exc.field))
        elif name == "channel":
            if not isinstance(value, str) or value not in CHANNELS:
                problems.append((422, "invalid_field", "channel is 'counter' or 'mobile' "
                                 f"(got {_shown(value)})", name))
        elif name == "urgent":
            if not isinstance(value, bool):
                problems.append((422, "invalid_type", "urgent is true or false (got "
                                 f"{_shown(value)})", name))
        elif name == "system":
            if value is not None and (not isinstance(value, str) or value not in SYSTEMS):
                problems.append((422, "invalid_field", "system is 'HVPS', 'BEPS', 'IBPS' "
                                 f"or null (got {_shown(value)})", name))
        elif not isinstance(value, str):
            problems.append(_not_text(name, value))
    problems += [_unknown(name, FIELDS) for name in doc if name not in FIELDS]
    return problems


def _creditor(value: Any) -> list[Problem]:
    if not isinstance(value, dict):
        return [(422, "invalid_type", "creditor is an object {bank, account, name} (got "
                 f"{_json_type(value)})", "creditor")]
    problems: list[Problem] = []
    for name in CREDITOR_FIELDS:
        field = f"creditor.{name}"
        if name not in value:
            problems.append((422, "missing_field", f"the field {field} is missing", field))
        elif not isinstance(value[name], str):
            problems.append(_not_text(field, value[name]))
    problems += [_unknown(f"creditor.{name}", CREDITOR_FIELDS) for name in value
                 if name not in CREDITOR_FIELDS]
    return problems


def _not_text(field: str, value: Any) -> Problem:
    return (422, "invalid_type", f"{field} is a string (got {_json_type(value)})", field)


def _unknown(field: str, known: tuple[str, ...]) -> Problem:
    return (422, "unknown_field", f"no field {inputs.clip(field)} here (the fields: "
            f"{', '.join(known)})", field)


def _shown(value: Any) -> str:
    return inputs.clip(value) if isinstance(value, str) else _json_type(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
