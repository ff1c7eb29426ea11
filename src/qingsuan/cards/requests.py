"""A card request as the switch takes it (一笔银行卡交易请求): typed, read once from the
fields its logged command carries.

The wire format (ISO 8583 fields, framed over TCP) stays at the edges
(cards/iso8583.py, server/card_tcp.py) and the log keeps the request as those fields in
JSON, tokenised (cards/vault.py). The switch reads a request once, here, into named
fields; its decisions (switch.py, preauth.py, refunds.py, disputes.py) take this object.
A field the request does not carry is ``None``: for some the switch acts on its absence
(a completion without field 41 is at the pre-authorisation's terminal), so absence is
kept, never replaced by a default here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from typing import Any, Final

import orjson

from qingsuan.clock import to_beijing

_JSON: Final = json.JSONDecoder()


class Mti(StrEnum):
    """The message types the switch takes (报文类型)."""

    AUTHORISATION = "0100"  # pre-authorisation and its cancel (预授权, 预授权撤销)
    FINANCIAL = "0200"      # purchase, withdrawal, balance inquiry, void, completion
    ADVICE = "0220"         # refund (退货) and completion advice
    REVERSAL = "0400"       # 冲正
    DISPUTE = "0620"        # 差错 steps


class Processing(StrEnum):
    """The first two digits of the processing code (field 3) the switch acts on."""

    PURCHASE = "00"     # 消费 (and a pre-authorisation completion)
    WITHDRAWAL = "01"   # 取款
    PREAUTH = "03"      # 预授权
    RETURN = "20"       # void (撤销), refund (退货), pre-authorisation cancel
    BALANCE = "31"      # 余额查询


#: the types and codes a request's common path compares with, as module globals (imported
#: by name; as RC_APPROVED in cards/iso8583.py: an enum member read from its class is slow)
MTI_FINANCIAL: Final = Mti.FINANCIAL
MTI_REVERSAL: Final = Mti.REVERSAL
PROC_PURCHASE: Final = Processing.PURCHASE
PROC_WITHDRAWAL: Final = Processing.WITHDRAWAL
PROC_BALANCE: Final = Processing.BALANCE
PROC_RETURN: Final = Processing.RETURN


def request_key(acquirer: str | None, stan: str | None, transmitted: str | None) -> str:
    """A transaction's key at the switch: acquirer (field 32), STAN (11) and transmission
    time (7), an absent one empty."""
    return f"{acquirer or ''}|{stan or ''}|{transmitted or ''}"


@dataclass(slots=True)  # not frozen: that __init__ costs a call per field, per request
class CardRequest:
    """One request: the ISO 8583 fields the switch reads, by name (field numbers in the
    comments), and ``body``, the logged text (a retry is the same text again). Read-only
    by convention: the switch keeps ``body``, never the object."""

    body: str
    mti: str | None                 # t
    processing_code: str | None     # 3
    amount_text: str | None         # 4, 12 digits of fen
    transmitted: str | None         # 7, MMDDhhmmss
    stan: str | None                # 11
    pos_condition: str | None       # 25 (06: a pre-authorisation completion)
    acquirer: str | None            # 32
    rrn: str | None                 # 37
    terminal: str | None            # 41
    currency: str | None            # 49 (156: CNY)
    card: str | None                # the card's token (never a PAN: cards/vault.py)
    pan_masked: str | None
    pin_hash: str | None            # the PIN's keyed digest (never the PIN)
    original_key: str | None        # the transaction a void, reversal, completion names
    dispute: str | None             # a dispute step (disputes.DisputeKind)
    dispute_reason: str | None      # why the issuer charges back (disputes.ChargebackReason)
    #: the transaction's key at the switch: acquirer, STAN and transmission time (made
    #: once, with the request: every request is looked up by it; so a request is never
    #: changed once made). Derived, so not compared.
    key: str = field(compare=False)

    @classmethod
    def from_body(cls, body: str) -> CardRequest:
        """Read the logged fields (a JSON object of strings)."""
        fields = _JSON.decode(body)
        if not isinstance(fields, dict):
            raise ValueError("a card request is a JSON object of ISO 8583 fields")
        return cls.from_fields(fields, body)

    @classmethod
    def from_fields(cls, f: dict[str, Any], body: str) -> CardRequest:
        get = f.get
        transmitted, stan, acquirer = get("7"), get("11"), get("32")
        return cls(body, get("t"), get("3"), get("4"), transmitted, stan, get("25"), acquirer,
                   get("37"), get("41"), get("49"), get("card"), get("pan_masked"),
                   get("pin_hash"), get("original_key"), get("dispute"), get("dispute_reason"),
                   request_key(acquirer, stan, transmitted))

    @property
    def proc(self) -> str:
        """The processing code's first two digits ("" without field 3)."""
        return (self.processing_code or "")[:2]


def dumps_fields(fields: dict[str, Any]) -> str:
    """``json.dumps(fields, sort_keys=True)``, the text a request's logged command carries,
    at a third of its cost for the common request (string values in printable ASCII
    without a quote or backslash): orjson's compact text with json's separators put back.
    Any other request is left to json itself."""
    if all(type(v) is str for v in fields.values()):
        try:
            text = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a key not a string
            text = b"\\"
        # json escapes what orjson leaves: non-ASCII and DEL; a quote, backslash or control
        # character orjson escapes too (a backslash), and might differ in how. The
        # separators are put back where no string holds a '":' or ',"' of its own.
        n = len(fields)
        if text.isascii() and b"\\" not in text and b"\x7f" not in text and \
                text.count(b'":') == n and text.count(b',"') == n - 1:
            return text.replace(b'":', b'": ').replace(b',"', b', "').decode()
    return json.dumps(fields, sort_keys=True)


#: the ISO 8583 field 7 of a request (MMDDhhmmss, Beijing time): the MMDD of the day last
#: asked for, by Beijing day number
_transmitted_day: list[Any] = [None, ""]
#: Beijing's offset from UTC in seconds: fixed (no daylight saving), so hh:mm:ss of a time
#: is arithmetic on it
_BEIJING_OFFSET_S: Final = to_beijing(0).hour * 3600 + to_beijing(0).minute * 60
_S_PER_DAY: Final = 86_400
#: "hhmm" of each minute of a day, and "ss" of each second of a minute (index, not format:
#: a request's field 7 costs no int formatting)
_SS: Final = tuple(f"{s:02d}" for s in range(60))
_HHMM: Final = tuple(hh + mm for hh in _SS[:24] for mm in _SS)


def transmission_time(at_us: int) -> str:
    """Field 7 (传输日期时间, MMDDhhmmss in Beijing time) of a request sent at ``at_us``:
    ``to_beijing(at_us).strftime("%m%d%H%M%S")`` without a datetime per request."""
    day, second = divmod(at_us // 1_000_000 + _BEIJING_OFFSET_S, _S_PER_DAY)
    held = _transmitted_day
    if held[0] != day:
        held[1] = to_beijing(at_us).strftime("%m%d")
        held[0] = day
    mmdd: str = held[1]
    return mmdd + _HHMM[second // 60] + _SS[second % 60]


#: terminal -> the fixed texts of its requests' body, for one acquirer, processing code
#: and message type (a terminal's requests repeat them): (acquirer, processing code,
#: message type, the text between field 11 and 37, between 4 and 7, and the end); at most
#: MAX_SEGMENTS_KEPT terminals
_SEGMENTS: dict[Any, tuple[str, str, str, str, str, str]] = {}
MAX_SEGMENTS_KEPT: Final = 1 << 16


def _segments(mti: str, processing_code: str, acquirer: str, terminal: str
              ) -> tuple[str, str, str, str, str, str]:
    """The fixed texts of a terminal's request body (TypeError if a value is not a
    string), kept while there is room."""
    enc = encode_basestring_ascii
    held = (acquirer, processing_code, mti,
            f'", "3": {enc(processing_code)}, "32": {enc(acquirer)}, "37": "',
            f', "41": {enc(terminal)}, "49": "156", "7": "', f', "t": {enc(mti)}}}')
    if len(_SEGMENTS) < MAX_SEGMENTS_KEPT or terminal in _SEGMENTS:
        _SEGMENTS[terminal] = held
    return held


def terminal_request(mti: str, processing_code: str, amount_fen: Any, at_us: int, stan: int,
                     acquirer: str, terminal: str, card: Any, pan_masked: Any,
                     pin_hash: Any) -> CardRequest:
    """A terminal's request (purchase, withdrawal, balance inquiry, pre-authorisation) as
    the acquirer sends it at ``at_us``, with the body its logged command would carry (the
    fields ``t 3 4 7 11 32 37 41 49 card pan_masked`` and ``pin_hash`` if not None, as
    :func:`dumps_fields` writes them; field 4 ``f"{amount_fen:012d}"``, field 7
    :func:`transmission_time`, 11 and 37 the STAN in 6 and 12 digits), built without a
    dict and its encoding: a card purchase is the commonest command of a world."""
    # (zfill of an int's digits is its "0Nd" format, sign first; digits need no escaping)
    digits = str(stan)
    stan_text, rrn = digits.zfill(6), digits.zfill(12)
    if type(amount_fen) is int:
        amount_text = str(amount_fen).zfill(12)
        amount_json = f'"{amount_text}"'
    else:  # as the format makes it of anything else (a bool), or fails
        amount_text = f"{amount_fen:012d}"
        amount_json = encode_basestring_ascii(amount_text)
    transmitted = transmission_time(at_us)
    enc = encode_basestring_ascii
    try:
        # (a terminal unhashable, or a value not a string, raises TypeError)
        held = _SEGMENTS.get(terminal)
        if held is None or held[0] != acquirer or held[1] != processing_code or \
                held[2] != mti:
            held = _segments(mti, processing_code, acquirer, terminal)
        pin = "" if pin_hash is None else f', "pin_hash": {enc(pin_hash)}'
        body = (f'{{"11": "{stan_text}{held[3]}{rrn}", "4": {amount_json}{held[4]}'
                f'{transmitted}", "card": {enc(card)}, "pan_masked": {enc(pan_masked)}'
                f'{pin}{held[5]}')
    except TypeError:  # a value not a string: as json writes it, read back as the switch would
        fields = {"t": mti, "card": card, "pan_masked": pan_masked, "3": processing_code,
                  "4": amount_text, "7": transmitted, "11": stan_text, "32": acquirer,
                  "41": terminal, "49": "156", "37": rrn}
        if pin_hash is not None:
            fields["pin_hash"] = pin_hash
        return CardRequest.from_fields(fields, dumps_fields(fields))
    return CardRequest(body, mti, processing_code, amount_text, transmitted, stan_text, None,
                       acquirer, rrn, terminal, "156", card, pan_masked, pin_hash, None, None,
                       None, request_key(acquirer, stan_text, transmitted))
