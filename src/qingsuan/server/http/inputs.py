"""The API's input values, checked at the edge: each bad one is an :class:`ApiError` (422)
naming the field and why, before anything reaches the engine."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from qingsuan.clock import parse_time
from qingsuan.money import MAX_AMOUNT_FEN, AmountError, format_fen, parse_amount
from qingsuan.server.http.errors import ApiError

#: a payment id the client chooses (ISO Max35Text, no slash: ids are parts of a path)
ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,34}$")
#: a customer's account number (as the worlds' scenario files write them)
ACCOUNT_RE: Final = re.compile(r"^\d{6,32}$")
_DURATION_RE: Final = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_NAME_CHARS: Final = 140


def amount_fen(value: object, field: str = "amount") -> int:
    """A CNY amount as a string of yuan with at most two decimals (``"1234.50"``) -> fen."""
    if not isinstance(value, str):
        raise ApiError(422, "invalid_amount", 'an amount is a string of yuan like "123.45", '
                       "never a number (a float cannot hold 0.10 exactly)", field)
    text = value.strip()
    if text.startswith("-"):
        raise ApiError(422, "amount_negative", f"an amount is never negative (got {clip(text)})",
                       field)
    try:
        return parse_amount(text, field=field)
    except AmountError as exc:
        if exc.reason == "more than two decimals":
            raise ApiError(422, "amount_precision", "at most two decimals: CNY has fen, no "
                           f"smaller unit (got {clip(text)})", field) from None
        if exc.reason.startswith("must be greater"):
            raise ApiError(422, "amount_zero", "an amount is greater than zero", field) from None
        if exc.reason.startswith("exceeds"):
            raise ApiError(422, "amount_too_large", "above the largest amount one item may "
                           f"carry, {format_fen(MAX_AMOUNT_FEN)}", field) from None
        raise ApiError(422, "invalid_amount", f'not an amount like "123.45" (got '
                       f"{clip(text)})", field) from None


def payment_id(value: str, field: str = "id") -> str:
    if not ID_RE.match(value):
        raise ApiError(422, "invalid_id", "1 to 35 characters: letters, digits, '-', '_', "
                       f"'.', starting with a letter or digit (got {clip(value)})", field)
    return value


def account(value: str, field: str) -> str:
    if not ACCOUNT_RE.match(value):
        raise ApiError(422, "invalid_account", f"an account number is 6 to 32 digits (got "
                       f"{clip(value)})", field)
    return value


def name(value: str, field: str) -> str:
    if not value.strip() or len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise ApiError(422, "invalid_name", f"a name is 1 to {MAX_NAME_CHARS} printable "
                       "characters", field)
    return value


def date(value: str, field: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid_date", f"not a date like 2026-11-25 (got {clip(value)})",
                       field) from None


def moment_us(value: str, field: str = "at") -> int:
    """An ISO 8601 date-time; without an offset it is Beijing time."""
    try:
        return parse_time(value, field=field)
    except (ValueError, OverflowError):
        raise ApiError(422, "invalid_time", "not a date-time like 2026-11-25T17:14 (Beijing "
                       f"time unless an offset is given; got {clip(value)})", field) from None


def duration_us(value: str, field: str = "advance") -> int:
    """``1d2h30m15s`` (any of the parts, in that order) -> microseconds; more than zero."""
    match = _DURATION_RE.match(value.strip())
    if match is None or not any(match.groups()):
        raise ApiError(422, "invalid_duration", "a duration like 15m, 2h30m or 1d (days, "
                       f"hours, minutes, seconds in that order; got {clip(value)})", field)
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1_000_000
    if total <= 0:
        raise ApiError(422, "invalid_duration", "a duration is more than zero", field)
    return total


def clip(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
