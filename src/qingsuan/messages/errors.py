"""Rejections: what a message that cannot be accepted turns into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Longest rejection message kept (validator messages listing expected elements can be long).
MAX_REJECTION_MESSAGE: Final = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRejection:
    """Why an inbound message was not accepted.

    ``reason_code`` is an ISO 20022 status reason (:mod:`qingsuan.messages.codes`),
    ``message`` a readable explanation, ``element_path`` the element at fault as a path of
    local names (``/Document/FIToFICstmrCdtTrf/GrpHdr/MsgId``) when one is known.
    ``message_type`` (``pacs.008.001.08``), ``msg_id`` and ``tx_id`` are filled in when they
    could be read, so a pacs.002 rejection can refer to the original message.
    """

    reason_code: str
    message: str
    element_path: str | None = None
    message_type: str | None = None
    msg_id: str | None = None
    tx_id: str | None = None

    def __str__(self) -> str:
        where = f" at {self.element_path}" if self.element_path else ""
        return f"{self.reason_code}: {self.message}{where}"


class MessageError(ValueError):
    """Raised by the ``parse_*`` functions; carries the :class:`MessageRejection`."""

    def __init__(self, rejection: MessageRejection) -> None:
        self.rejection = rejection
        super().__init__(str(rejection))


class Reject(Exception):
    """Internal: raised while decoding, turned into a :class:`MessageRejection`."""

    def __init__(self, reason_code: str, message: str, element_path: str | None = None,
                 *, tx_id: str | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message[:MAX_REJECTION_MESSAGE]
        self.element_path = element_path
        self.tx_id = tx_id

    def rejection(self, *, message_type: str | None, msg_id: str | None) -> MessageRejection:
        return MessageRejection(
            reason_code=self.reason_code, message=self.message,
            element_path=self.element_path, message_type=message_type, msg_id=msg_id,
            tx_id=self.tx_id)
