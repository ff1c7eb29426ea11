"""Money as an integer number of fen (分): parse at the edges, format at the edges.

Every amount inside Qingsuan is an ``int`` of fen. Floats never carry money: a float
cannot represent 0.10 exactly, and a payment system that rounds is a payment system that
loses or creates money. Strings like ``"123.45"`` or ``"123"`` are parsed here, and only here.
"""

from __future__ import annotations

import re
from typing import Final

FEN_PER_YUAN: Final = 100

#: Largest amount accepted for one item by default: 10 trillion CNY (HVPS moves about
#: 36 trillion a day in total; no single item is near this). A parameter of `parse_amount`.
MAX_AMOUNT_FEN: Final = 10**15

_AMOUNT_RE: Final = re.compile(r"^(?P<sign>-?)(?P<yuan>\d+)(?:\.(?P<fen>\d{1,2}))?$", re.ASCII)


class AmountError(ValueError):
    """An amount string or value that is not a valid CNY amount. The message names the field."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {value!r})")


def parse_amount(
    value: object,
    *,
    field: str = "amount",
    allow_zero: bool = False,
    allow_negative: bool = False,
    max_fen: int = MAX_AMOUNT_FEN,
) -> int:
    """Parse ``"123.45"`` / ``"123"`` / ``123`` (whole yuan as int) into fen.

    Rejects floats (a float is never an exact amount), more than two decimals, signs,
    thousands separators, exponents, zero (unless ``allow_zero``) and amounts beyond
    ``max_fen`` in absolute value.
    """
    if isinstance(value, bool):
        raise AmountError(field, value, "an amount must be a string like \"123.45\", not a boolean")
    if isinstance(value, float):
        raise AmountError(
            field, value, "an amount must be a string like \"123.45\", never a float"
        )
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise AmountError(field, value, "an amount must be a string like \"123.45\"")
    if len(text) > 40:
        raise AmountError(field, value, "amount string is too long")
    match = _AMOUNT_RE.match(text)
    if match is None:
        if re.match(r"^-?\d+\.\d{3,}$", text, re.ASCII):
            raise AmountError(field, value, "more than two decimals")
        raise AmountError(field, value, "not a decimal amount like \"123.45\"")
    fen_text = (match.group("fen") or "").ljust(2, "0")
    fen = int(match.group("yuan")) * FEN_PER_YUAN + int(fen_text or "0")
    if match.group("sign"):
        if not allow_negative:
            raise AmountError(field, value, "must not be negative")
        fen = -fen
    if fen == 0 and not allow_zero:
        raise AmountError(field, value, "must be greater than zero")
    if abs(fen) > max_fen:
        raise AmountError(field, value,
                          f"exceeds the largest accepted amount {format_fen(max_fen)}")
    return fen


def format_fen(amount_fen: int) -> str:
    """Format fen as a CNY string with exactly two decimals: 12345 -> ``"123.45"``."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool):
        raise TypeError(f"amount_fen must be int, got {type(amount_fen).__name__}")
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), FEN_PER_YUAN)
    return f"{sign}{yuan}.{fen:02d}"
