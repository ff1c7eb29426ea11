"""QR images (二维码) of the app's codes: the user's one-time payment code (付款码), which
the merchant scans, and the merchant's code (收款码), which the user scans.

A code's image carries only its payload: a URL-like string naming the institution, the
code and its expiry, never a card number (the code stands for the card inside the app).
The image proves nothing: whoever scans it, the app still looks the code up and refuses
it when unknown, expired or used (wallets/app.py). Rendering is a pure function: the same
payload gives the same PNG bytes and the same SVG text."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlencode, urlsplit

import segno

from qingsuan.clock import format_time, parse_time

#: the payload's scheme (the app's own, as 云闪付's codes name their app)
SCHEME: Final = "qingsuan"
#: error correction: M recovers about 15% of a damaged code (a phone screen's glare)
ERROR_LEVEL: Final = "m"
#: pixels per module and the quiet zone in modules (ISO/IEC 18004 asks for 4)
SCALE_PX: Final = 8
BORDER_MODULES: Final = 4


@dataclass(frozen=True)
class CodePayload:
    """What a code's image says: which kind (``pay``: a user's payment code; ``merchant``:
    a merchant's code), the institution that issued it, the code, and its expiry (None for
    a merchant's standing code)."""

    kind: str
    institution: str
    code: str
    expires_us: int | None


@dataclass(frozen=True)
class QrImage:
    payload: str
    png: bytes
    svg: str


def payment_code_payload(institution: str, code: str, expires_us: int) -> str:
    """The payload of a user's payment code (付款码): its institution, its digits and the
    moment it expires."""
    return _payload("pay", institution, code, expires_us)


def merchant_code_payload(acquirer: str, terminal: str, expires_us: int | None = None
                          ) -> str:
    """The payload of a merchant's code (收款码): the acquiring bank and the terminal it
    names; a standing code has no expiry."""
    return _payload("merchant", acquirer, terminal, expires_us)


def _payload(kind: str, institution: str, code: str, expires_us: int | None) -> str:
    query = {"inst": institution, "code": code}
    if expires_us is not None:
        query["exp"] = format_time(expires_us)
    return f"{SCHEME}://{kind}?{urlencode(query)}"


def read_payload(payload: str) -> CodePayload:
    """The fields of a scanned payload; ValueError naming what is wrong otherwise."""
    parts = urlsplit(payload)
    if parts.scheme != SCHEME or parts.netloc not in ("pay", "merchant"):
        raise ValueError(f"payload: not a {SCHEME}://pay or {SCHEME}://merchant code")
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    for key in ("inst", "code"):
        if not query.get(key):
            raise ValueError(f"payload: {key} is missing")
    if parts.netloc == "pay" and "exp" not in query:
        raise ValueError("payload: exp is missing (a payment code always expires)")
    expires = parse_time(query["exp"], field="payload exp") if "exp" in query else None
    return CodePayload(parts.netloc, query["inst"], query["code"], expires)


def render(payload: str, *, scale_px: int = SCALE_PX, border_modules: int = BORDER_MODULES
           ) -> QrImage:
    """The payload as a QR image: PNG bytes and SVG text (deterministic: segno chooses
    the version and mask from the payload alone)."""
    if not payload.startswith(f"{SCHEME}://"):
        raise ValueError(f"payload: must start with {SCHEME}:// (got {payload[:20]!r})")
    qr = symbol(payload)
    png, svg = io.BytesIO(), io.BytesIO()
    qr.save(png, kind="png", scale=scale_px, border=border_modules)
    qr.save(svg, kind="svg", scale=scale_px, border=border_modules, xmldecl=False,
            svgclass="qingsuan-qr", lineclass=None)
    return QrImage(payload, png.getvalue(), svg.getvalue().decode("ascii"))


def symbol(payload: str) -> segno.QRCode:
    """The QR symbol of ``payload`` (a full QR code, never a Micro QR: phones read it)."""
    return segno.make(payload, error=ERROR_LEVEL, micro=False, boost_error=False)
