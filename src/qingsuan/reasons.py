"""Reason codes carried by rejections and returns: ISO 20022 ExternalStatusReason codes.

CNAPS2 messages reuse the ISO 20022 code list; a rejection always names one code and a
readable message (SCENARIO.md: ``reason``).
"""

from __future__ import annotations

from enum import Enum


class CodedReason(Enum):
    """An enum whose members are (code, meaning) pairs: the base of the reason lists."""

    @property
    def code(self) -> str:
        return str(self.value[0])

    @property
    def meaning(self) -> str:
        return str(self.value[1])


class Reason(CodedReason):
    """(code, meaning)."""

    AC01 = ("AC01", "incorrect account number")
    AC04 = ("AC04", "closed account number")
    AC06 = ("AC06", "blocked account")
    AG01 = ("AG01", "transaction forbidden (participant suspended or closed)")
    AM02 = ("AM02", "amount exceeds the allowed maximum")
    AM04 = ("AM04", "insufficient funds")
    AM05 = ("AM05", "duplication")
    AM14 = ("AM14", "amount exceeds the agreed limit (net debit cap)")
    AB05 = ("AB05", "timeout at the creditor agent")
    AB06 = ("AB06", "timeout at the instructed agent (a debit's payer's bank)")
    MD01 = ("MD01", "no mandate (payer authorisation agreement)")
    BE01 = ("BE01", "inconsistent with end customer (name does not match the account)")
    DT01 = ("DT01", "invalid date (system not open)")
    FF01 = ("FF01", "invalid file format")
    NARR = ("NARR", "see the message")
    RC01 = ("RC01", "bank identifier incorrect (not a participant)")

    def detail(self, message: str | None = None) -> dict[str, str]:
        """The JSON form used in run outcomes: code and a readable message."""
        return {"code": self.code, "message": message or self.meaning}
