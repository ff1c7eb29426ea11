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
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

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


@dataclass(frozen=True, slots=True)
class CardRequest:
    """One request: the ISO 8583 fields the switch reads, by name (field numbers in the
    comments), and ``body``, the logged text (a retry is the same text again)."""

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
        return cls(body, get("t"), get("3"), get("4"), get("7"), get("11"), get("25"),
                   get("32"), get("37"), get("41"), get("49"), get("card"),
                   get("pan_masked"), get("pin_hash"), get("original_key"), get("dispute"),
                   get("dispute_reason"))

    @property
    def key(self) -> str:
        """The transaction's key at the switch: acquirer, STAN and transmission time."""
        return f"{self.acquirer or ''}|{self.stan or ''}|{self.transmitted or ''}"

    @property
    def proc(self) -> str:
        """The processing code's first two digits ("" without field 3)."""
        return (self.processing_code or "")[:2]
