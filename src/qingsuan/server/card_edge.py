"""The ISO 8583 edge of the card switch: bytes in, the switch's request out; the switch's
answer in, bytes out. Pure functions over an :class:`EdgeConfig` (no sockets, no engine).

Edges translate, the core decides: everything here is about the message (format, MAC,
PIN block, who is asking); every business decision (card, funds, limits, duplicates,
originals) is the switch's, inside a logged engine command.

* A frame that does not decode gets the matching response (0210 for a 0200, ...) with
  39 = 30 when its MTI and STAN can be read; otherwise it is dropped (and logged by the
  caller). A response MTI sent to us is dropped.
* With a MAC key configured every request must carry a valid field 128 (else 39 = A0, and
  the request goes no further); every response carries one.
* Field 32 names the acquirer by its institution id: the participant's 12-digit CNAPS bank
  code without its check digit (11 digits, the most field 32 holds). An unknown institution
  gets 03 (invalid merchant/acquirer).
* Field 2 (the PAN) never goes further: the switch gets its token and masked PAN
  (cards/vault.py, one HMAC), and the response echoes the PAN from the request it answers.
* Field 52 (PIN block, ISO 9564 format 0 under the zone PIN key) is turned into the
  issuer's PIN verification value under the world's PIN key at once: the PIN exists in
  clear only inside :func:`qingsuan.cards.pin.decrypt_pin_block`. A block that does not
  decrypt counts as a wrong PIN.
* Field 90 (original data elements) names the original of a reversal, void or refund; an
  acquirer may only name its own originals (else 12).
* 0800 sign-on / echo test is answered here (0810, 00): it changes nothing.
* 0100 is pre-authorisation (processing code 03) and its cancel (20); the completion is a
  0200 (or a 0220 advice) with processing code 00, field 25 = 06 and field 90 naming the
  pre-authorisation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, cast

from qingsuan.cards.iso8583 import (
    MAC_LEN,
    REQUEST_MTIS,
    MacAlgorithm,
    Malformed,
    ResponseCode,
    decode_message,
    encode_message,
    format_error_response,
    mask_pan,
    verify_mac,
)
from qingsuan.cards.pin import SANDBOX_ZPK, PinError, decrypt_pin_block
from qingsuan.cards.vault import CardVault

#: Fields a response echoes from its request when present (CUPS practice).
ECHOED: Final = ("2", "3", "4", "7", "11", "12", "13", "25", "32", "37", "41", "42", "49",
                 "90")
#: Fields each request type must carry (beyond the MTI).
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "purchase": ("2", "3", "4", "7", "11", "32", "41", "49"),
    "withdrawal": ("2", "3", "4", "7", "11", "32", "41", "49", "52"),
    "balance": ("2", "3", "7", "11", "32", "41", "52"),
    "void": ("3", "4", "7", "11", "32", "41", "90"),
    "refund": ("2", "3", "4", "7", "11", "32", "41", "90"),
    "reversal": ("7", "11", "32", "90"),
    "preauth": ("2", "3", "4", "7", "11", "32", "41", "49"),
    "preauth_cancel": ("3", "7", "11", "32", "90"),
    "completion": ("3", "4", "7", "11", "25", "32", "41", "90"),
}
RC = ResponseCode


def institution_id(bank_code: str) -> str:
    """Field 32 / field 90 institution id of a participant: its CNAPS code less the check
    digit (11 digits)."""
    return bank_code[:11]


@dataclass(frozen=True)
class EdgeConfig:
    """What the edge needs to know: the institutions and the keys (``vault``: the world's
    card key, cards/vault.py)."""

    #: field 32 institution id -> participant name (as the switch knows it)
    institutions: Mapping[str, str]
    vault: CardVault
    zpk: bytes = SANDBOX_ZPK
    mac_key: bytes | None = None
    mac_algorithm: MacAlgorithm = "3des"
    _names: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._names.update({name: iid for iid, name in self.institutions.items()})

    def institution_of(self, name: str) -> str:
        return self._names.get(name, "")


@dataclass(frozen=True, slots=True)
class Reply:
    """Answered (or dropped, ``raw is None``) at the edge; ``note`` says why, without card
    data, for the server's log."""

    raw: bytes | None
    note: str


@dataclass(frozen=True, slots=True)
class Forward:
    """A request for the switch: ``fields`` in the switch's vocabulary, ``body`` the same as
    the command the core logs (canonical JSON: a true retry is the same bytes), ``echo``
    what the response repeats."""

    fields: dict[str, str]
    mti: str
    echo: dict[str, str]
    body: bytes


#: the switch's answer to one request, as the core hands it back: (response code 39, the
#: transaction's key, its clearing date (ISO, "" if none), the balance of an inquiry in fen
#: or None)
SwitchAnswer = tuple[str, str, str, int | None]


def request_body(fields: Mapping[str, str]) -> bytes:
    """The logged command of a request: its fields as canonical JSON."""
    return _CANONICAL.encode(fields).encode()


#: json.dumps(..., sort_keys=True) without building an encoder per call
_CANONICAL: Final = json.JSONEncoder(sort_keys=True)


def inbound(raw: bytes, cfg: EdgeConfig) -> Reply | Forward:
    """Classify one frame. Never raises."""
    try:
        return _inbound(raw, cfg)
    except Exception as exc:  # the contract is "no input crashes the gateway"
        return Reply(None, f"internal edge error {type(exc).__name__}: frame dropped")


def _inbound(raw: bytes, cfg: EdgeConfig) -> Reply | Forward:
    msg = decode_message(raw)
    if isinstance(msg, Malformed):
        return Reply(format_error_response(msg, mac_key=cfg.mac_key,
                                           mac_algorithm=cfg.mac_algorithm),
                     f"format error: {msg.reason}")
    mti = msg.mti
    f = cast(dict[str, str], msg.fields)  # text except 52 and 128, which are never echoed
    if mti not in REQUEST_MTIS:
        return Reply(None, f"a {mti} is not a request: dropped")
    if cfg.mac_key is not None and (
            "128" not in f or not verify_mac(raw[:-MAC_LEN], raw[-MAC_LEN:], cfg.mac_key,
                                             cfg.mac_algorithm)):
        return Reply(respond(mti, f, {"39": RC.MAC_FAILURE.value}, cfg),
                     "MAC missing or wrong")
    if mti == "0800":
        if "11" not in f or "7" not in f:
            return Reply(respond(mti, f, {"39": RC.FORMAT_ERROR.value}, cfg),
                         "format error: 0800 without field 7 or 11")
        return Reply(respond(mti, f, {"39": RC.APPROVED.value}, cfg), "sign-on")
    kind = "reversal" if mti == "0400" else _KINDS.get((mti, f.get("3", "")[:2]))
    if kind == "purchase" and "90" in f:
        kind = "completion"  # 预授权完成: a purchase naming its pre-authorisation
    if kind is None:
        return Reply(respond(mti, f, {"39": RC.INVALID_TRANSACTION.value}, cfg),
                     f"processing code {f.get('3', '')!r} not offered with {mti}")
    for key in REQUIRED[kind]:
        if key not in f:
            return Reply(respond(mti, f, {"39": RC.FORMAT_ERROR.value}, cfg),
                         f"format error: {kind} without field {key}")
    acquirer = cfg.institutions.get(f["32"])
    if acquirer is None:
        return Reply(respond(mti, f, {"39": RC.INVALID_MERCHANT.value}, cfg),
                     f"unknown acquirer institution {f['32']}")
    out = {"t": mti, "4": "000000000000"}
    for key in _FORWARDED:
        value = f.get(key)
        if value is not None:
            out[key] = value
    pan = f.get("2")
    if pan is not None:  # decode_message checked it: digits, check digit
        out["card"] = cfg.vault.token(pan)
        out["pan_masked"] = mask_pan(pan)
    out["32"] = acquirer
    original = f.get("90")
    if original is not None:
        if cfg.institutions.get(original[20:31]) != acquirer:
            return Reply(respond(mti, f, {"39": RC.INVALID_TRANSACTION.value}, cfg),
                         "field 90 names another acquirer's transaction")
        out["original_key"] = f"{acquirer}|{original[4:10]}|{original[10:20]}"
    block = msg.fields.get("52")
    if isinstance(block, bytes) and pan is not None:
        try:
            out["pin_hash"] = cfg.vault.pvv(pan, decrypt_pin_block(block, pan, cfg.zpk))
        except PinError:
            out["pin_hash"] = "undecipherable"  # never equals a stored value: 55
    return Forward(out, mti, {k: f[k] for k in ECHOED if k in f}, request_body(out))


#: (MTI, processing code) -> request kind
_KINDS: Final[dict[tuple[str, str], str]] = {
    ("0200", "00"): "purchase", ("0200", "01"): "withdrawal", ("0200", "31"): "balance",
    ("0200", "20"): "void", ("0220", "20"): "refund", ("0220", "00"): "completion",
    ("0100", "03"): "preauth", ("0100", "20"): "preauth_cancel",
}
#: the request fields the switch sees (field 32 becomes the acquirer's name, field 2 the
#: card's token and masked PAN)
_FORWARDED: Final = ("3", "4", "7", "11", "25", "37", "41", "49")


def respond(mti: str, echo: Mapping[str, str], extra: Mapping[str, str],
            cfg: EdgeConfig) -> bytes:
    """Encode the response to a request of type ``mti``: the echoed fields, ``extra`` (at
    least 39) and the MAC when configured."""
    doc: dict[str, str] = {}
    for key in ECHOED:
        value = echo.get(key)
        if value is not None:
            doc[key] = value
    doc.update(extra)
    # Our own fields, all text: the checks ran on the request
    return encode_message(REQUEST_MTIS[mti], doc, check=False, mac_key=cfg.mac_key,
                          mac_algorithm=cfg.mac_algorithm)


def outbound(fwd: Forward, answer: SwitchAnswer, cfg: EdgeConfig) -> bytes:
    """The response to a forwarded request from the switch's answer (39, and for an
    approval the clearing date 15, the authorisation code 38, a balance 54)."""
    rc, key, clearing_date, balance_fen = answer
    extra = {"39": rc}
    if rc == RC.APPROVED.value and key:
        extra["38"] = authorisation_code(key)
    if clearing_date:
        extra["15"] = clearing_date[5:7] + clearing_date[8:10]
    if balance_fen is not None:
        extra["54"] = balance_field(balance_fen)
    return respond(fwd.mti, fwd.echo, extra, cfg)


def authorisation_code(key: str) -> str:
    """Field 38: six characters derived from the transaction (deterministic: replay and
    retries give the same code)."""
    return hashlib.sha256(key.encode()).hexdigest()[:6].upper()


def balance_field(balance_fen: int) -> str:
    """Field 54 of a balance inquiry: account type 10 (savings), amount type 02 (available),
    currency 156, C/D sign, 12 digits of fen."""
    return f"1002156{'C' if balance_fen >= 0 else 'D'}{abs(balance_fen):012d}"
