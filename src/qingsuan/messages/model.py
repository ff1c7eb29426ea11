"""Domain objects carried by the CNAPS ISO 20022 messages (docs/MESSAGES.md).

These are what the rest of Qingsuan sees: plain frozen dataclasses with money as ``int`` fen,
dates as :class:`datetime.date`, times as timezone-aware :class:`datetime.datetime` and bank
codes as 12-digit strings. They know nothing about XML; :mod:`qingsuan.messages.codec` maps
them to and from the xsdata bindings generated from the official XSDs.

Every constructor validates its fields and raises :class:`InvalidField` (a ``ValueError``)
naming the field and an ISO 20022 reason code, so an object that exists can always be
serialised into a schema-valid message, and a parsed message that breaks a rule is rejected
with the same code a builder would have raised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, Literal, get_args

from qingsuan.money import MAX_AMOUNT_FEN
from qingsuan.vocabulary import PRIORITY_LABELS

from . import codes

System = Literal["HVPS", "BEPS", "IBPS"]
#: The CNAPS systems, carried as ``PmtTpInf/SvcLvl/Prtry``.
SYSTEMS: Final[tuple[System, ...]] = get_args(System)

Priority = Literal[
    "correction", "extra_urgent", "pboc_charge", "net_settlement", "urgent", "normal"
]
#: HVPS queue priority levels, highest first: error corrections, extra-urgent, PBOC
#: charges, clearing-house net positions, urgent, normal. Defined by
#: :class:`qingsuan.vocabulary.Priority`; the Literal above spells them for the type checker.
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
assert PRIORITIES == PRIORITY_LABELS, "the message model's priorities are the vocabulary's"

TransferKind = Literal["customer", "institution"]
#: ``customer``: pacs.008 (hvps.111, beps.121, ibps.101); ``institution``: pacs.009 (hvps.112).
TRANSFER_KINDS: Final[tuple[TransferKind, ...]] = get_args(TransferKind)

PaymentStatus = Literal["ACSC", "ACSP", "ACCP", "RJCT", "PDNG"]
PAYMENT_STATUSES: Final[tuple[PaymentStatus, ...]] = get_args(PaymentStatus)

Direction = Literal["credit", "debit"]
DIRECTIONS: Final[tuple[Direction, ...]] = get_args(Direction)

#: The only currency CNAPS settles.
CURRENCY: Final = "CNY"

#: Who a cancellation request is addressed to by default: the CNAPS processing centre,
#: modelled as participant code ``000000000000`` (a Qingsuan convention).
CNAPS_CENTRE_CODE: Final = "000000000000"

#: ISO 20022 message identifiers (the namespace suffix and the ``OrgnlMsgNmId`` value).
PACS008: Final = "pacs.008.001.08"
PACS009: Final = "pacs.009.001.08"
PACS002: Final = "pacs.002.001.10"
PACS004: Final = "pacs.004.001.09"
PACS003: Final = "pacs.003.001.08"
PACS028: Final = "pacs.028.001.03"
CAMT056: Final = "camt.056.001.08"
CAMT029: Final = "camt.029.001.09"
CAMT053: Final = "camt.053.001.08"
CAMT052: Final = "camt.052.001.08"
CAMT060: Final = "camt.060.001.05"
HEAD001: Final = "head.001.001.02"

_BANK_CODE_RE: Final = re.compile(r"[0-9]{12}", re.ASCII)
_REASON_CODE_RE: Final = re.compile(r"[A-Z0-9]{1,4}", re.ASCII)
# Characters XML 1.0 can carry (anything else cannot be serialised at all).
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: ISO 20022 text lengths used below.
MAX35: Final = 35
MAX34: Final = 34
MAX140: Final = 140
MAX_NOTE: Final = 10_000  # remittance info / additional info: split into lines on the wire


class InvalidField(ValueError):
    """A domain field that cannot go into (or did not come out of) a valid message.

    ``field`` is the dataclass field name, ``reason_code`` the ISO 20022 status reason code a
    rejection of such a message carries (see :mod:`qingsuan.messages.codes`).
    """

    def __init__(self, field: str, reason_code: str, message: str) -> None:
        self.field = field
        self.reason_code = reason_code
        self.message = message
        super().__init__(f"{field}: {message}")


# --- field checks ----------------------------------------------------------------------------


def check_text(name: str, value: object, max_len: int, *, code: str = codes.FF01) -> str:
    """A non-empty string of at most ``max_len`` characters that XML can carry."""
    if not isinstance(value, str):
        raise InvalidField(name, code, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidField(name, code, "must not be empty")
    if len(value) > max_len:
        raise InvalidField(name, code, f"longer than {max_len} characters ({len(value)})")
    if _NOT_XML_CHAR.search(value):
        raise InvalidField(name, code, "contains a character XML cannot carry")
    return value


def check_optional_text(
    name: str, value: object, max_len: int, *, code: str = codes.FF01
) -> str | None:
    if value is None:
        return None
    return check_text(name, value, max_len, code=code)


def check_bank_code(name: str, value: object) -> str:
    """A CNAPS bank code (行号): exactly 12 ASCII digits, else RC01."""
    if not isinstance(value, str) or not _BANK_CODE_RE.fullmatch(value):
        raise InvalidField(
            name, codes.RC01, f"bank code must be exactly 12 digits, got {value!r}"
        )
    return value


def check_fen(name: str, value: object, *, allow_zero: bool = False,
              allow_negative: bool = False) -> int:
    """An ``int`` of fen within ±MAX_AMOUNT_FEN: AM01 for zero, AM02 beyond the maximum."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(name, codes.AM12, f"must be an int of fen, got {type(value).__name__}")
    if value == 0 and not allow_zero:
        raise InvalidField(name, codes.AM01, "amount must be greater than zero")
    if value < 0 and not allow_negative:
        raise InvalidField(name, codes.AM12, f"amount must not be negative, got {value}")
    if abs(value) > MAX_AMOUNT_FEN:
        raise InvalidField(name, codes.AM02, f"amount exceeds the maximum {MAX_AMOUNT_FEN} fen")
    return value


def check_currency(name: str, value: object) -> str:
    if value != CURRENCY:
        raise InvalidField(name, codes.AM03, f"currency must be {CURRENCY}, got {value!r}")
    return CURRENCY


def check_choice(name: str, value: object, allowed: Sequence[str], code: str) -> None:
    if value not in allowed:
        raise InvalidField(name, code, f"must be one of {', '.join(allowed)}, got {value!r}")


def check_reason_code(name: str, value: object, *, optional: bool = True) -> str | None:
    """An ISO 20022 external code: 1 to 4 upper-case letters or digits (e.g. AM04)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _REASON_CODE_RE.fullmatch(value):
        raise InvalidField(name, codes.FF01, f"reason code must be like AM04, got {value!r}")
    return value


def check_datetime(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidField(name, codes.DT01, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidField(name, codes.DT01, "must be timezone-aware (Beijing time is UTC+8)")
    if not 1 <= value.year <= 9998:
        raise InvalidField(name, codes.DT01, f"year out of range: {value.year}")
    return value


def check_date(name: str, value: object) -> date:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidField(name, codes.DT01, f"must be a date, got {type(value).__name__}")
    if not 1 <= value.year <= 9998:
        raise InvalidField(name, codes.DT01, f"year out of range: {value.year}")
    return value


# --- domain objects --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditTransfer:
    """One credit transfer: a pacs.008 (customer) or pacs.009 (institution) transaction.

    ``msg_id`` and ``created_at`` belong to the message (group header) and are shared by all
    transactions of one message. For ``kind="customer"`` the debtor and creditor are the
    customers and their names and accounts are required; for ``kind="institution"`` they are
    the banks themselves and names and accounts are optional.
    """

    msg_id: str
    created_at: datetime
    end_to_end_id: str
    tx_id: str
    instr_id: str | None = None
    system: System
    kind: TransferKind = "customer"
    priority: Priority = "normal"
    amount_fen: int
    currency: str = CURRENCY
    settlement_date: date
    debtor_agent_code: str
    creditor_agent_code: str
    debtor_name: str | None = None
    debtor_account: str | None = None
    creditor_name: str | None = None
    creditor_account: str | None = None
    remittance_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_text("end_to_end_id", self.end_to_end_id, MAX35)
        check_text("tx_id", self.tx_id, MAX35)
        check_optional_text("instr_id", self.instr_id, MAX35)
        check_choice("system", self.system, SYSTEMS, codes.FF04)
        check_choice("kind", self.kind, TRANSFER_KINDS, codes.FF01)
        check_choice("priority", self.priority, PRIORITIES, codes.FF03)
        if self.system != "HVPS" and self.priority != "normal":
            raise InvalidField("priority", codes.FF03,
                               f"queue priorities are an HVPS feature; {self.system} is 'normal'")
        check_fen("amount_fen", self.amount_fen)
        check_currency("currency", self.currency)
        check_date("settlement_date", self.settlement_date)
        check_bank_code("debtor_agent_code", self.debtor_agent_code)
        check_bank_code("creditor_agent_code", self.creditor_agent_code)
        customer = self.kind == "customer"
        _party_name("debtor_name", self.debtor_name, required=customer, code=codes.RR02)
        _party_name("creditor_name", self.creditor_name, required=customer, code=codes.RR03)
        _account("debtor_account", self.debtor_account, required=customer, code=codes.RR01)
        _account("creditor_account", self.creditor_account, required=customer,
                 code=codes.AC01)
        check_optional_text("remittance_info", self.remittance_info, MAX_NOTE)

    @property
    def message_type(self) -> str:
        return PACS008 if self.kind == "customer" else PACS009


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectDebit:
    """One pacs.003 direct debit (BEPS beps.127/131/133): the creditor's bank collects."""

    msg_id: str
    created_at: datetime
    end_to_end_id: str
    tx_id: str
    instr_id: str | None = None
    system: System = "BEPS"
    amount_fen: int
    currency: str = CURRENCY
    settlement_date: date
    creditor_agent_code: str
    debtor_agent_code: str
    creditor_name: str
    creditor_account: str
    debtor_name: str
    debtor_account: str
    mandate_id: str | None = None
    remittance_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_text("end_to_end_id", self.end_to_end_id, MAX35)
        check_text("tx_id", self.tx_id, MAX35)
        check_optional_text("instr_id", self.instr_id, MAX35)
        check_choice("system", self.system, SYSTEMS, codes.FF04)
        check_fen("amount_fen", self.amount_fen)
        check_currency("currency", self.currency)
        check_date("settlement_date", self.settlement_date)
        check_bank_code("creditor_agent_code", self.creditor_agent_code)
        check_bank_code("debtor_agent_code", self.debtor_agent_code)
        _party_name("creditor_name", self.creditor_name, required=True, code=codes.RR03)
        _account("creditor_account", self.creditor_account, required=True, code=codes.AC01)
        _party_name("debtor_name", self.debtor_name, required=True, code=codes.RR02)
        _account("debtor_account", self.debtor_account, required=True, code=codes.RR01)
        check_optional_text("mandate_id", self.mandate_id, MAX35)
        check_optional_text("remittance_info", self.remittance_info, MAX_NOTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequest:
    """camt.056 (ccms.307): cancel a payment that is still queued (撤销)."""

    msg_id: str
    created_at: datetime
    requesting_participant: str
    assignee_code: str = CNAPS_CENTRE_CODE
    original_msg_id: str
    original_message_type: str = PACS008
    original_end_to_end_id: str | None = None
    original_tx_id: str
    reason_code: str
    additional_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_bank_code("requesting_participant", self.requesting_participant)
        check_bank_code("assignee_code", self.assignee_code)
        check_text("original_msg_id", self.original_msg_id, MAX35)
        check_text("original_message_type", self.original_message_type, MAX35)
        check_optional_text("original_end_to_end_id", self.original_end_to_end_id, MAX35)
        check_text("original_tx_id", self.original_tx_id, MAX35)
        check_reason_code("reason_code", self.reason_code, optional=False)
        check_optional_text("additional_info", self.additional_info, MAX_NOTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRequest:
    """pacs.028 (ccms.316): ask the status of one of the asker's own earlier transactions.

    ``requesting_participant`` is the asking bank (``GrpHdr/InstgAgt``); the request goes to
    the CNAPS processing centre unless ``instructed_agent_code`` says otherwise. The answer is
    a pacs.002 with the transaction's current status.
    """

    msg_id: str
    created_at: datetime
    requesting_participant: str
    instructed_agent_code: str = CNAPS_CENTRE_CODE
    request_id: str | None = None
    original_msg_id: str
    original_message_type: str = PACS008
    original_end_to_end_id: str | None = None
    original_tx_id: str

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_bank_code("requesting_participant", self.requesting_participant)
        check_bank_code("instructed_agent_code", self.instructed_agent_code)
        check_optional_text("request_id", self.request_id, MAX35)
        check_text("original_msg_id", self.original_msg_id, MAX35)
        check_text("original_message_type", self.original_message_type, MAX35)
        check_optional_text("original_end_to_end_id", self.original_end_to_end_id, MAX35)
        check_text("original_tx_id", self.original_tx_id, MAX35)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAnswer:
    """camt.029 (ccms.308): the answer to a cancellation request."""

    msg_id: str
    created_at: datetime
    answering_participant: str = CNAPS_CENTRE_CODE
    requesting_participant: str
    cancel_request_id: str
    original_msg_id: str
    original_message_type: str = PACS008
    original_tx_id: str
    accepted: bool
    reason_code: str | None = None
    additional_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_bank_code("answering_participant", self.answering_participant)
        check_bank_code("requesting_participant", self.requesting_participant)
        check_text("cancel_request_id", self.cancel_request_id, MAX35)
        check_text("original_msg_id", self.original_msg_id, MAX35)
        check_text("original_message_type", self.original_message_type, MAX35)
        check_text("original_tx_id", self.original_tx_id, MAX35)
        if not isinstance(self.accepted, bool):
            raise InvalidField("accepted", codes.FF01, "must be a bool")
        check_reason_code("reason_code", self.reason_code)
        check_optional_text("additional_info", self.additional_info, MAX_NOTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """pacs.002 (ccms.900, beps.122/128, IBPS receipts): the status of a message or transaction.

    ``original_tx_id=None`` reports on the whole original message (``GrpSts``); otherwise on
    one transaction (``TxInfAndSts``).
    """

    msg_id: str
    created_at: datetime
    original_msg_id: str
    original_message_type: str = PACS008
    original_tx_id: str | None = None
    status: PaymentStatus
    reason_code: str | None = None
    additional_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_text("original_msg_id", self.original_msg_id, MAX35)
        check_text("original_message_type", self.original_message_type, MAX35)
        check_optional_text("original_tx_id", self.original_tx_id, MAX35)
        check_choice("status", self.status, PAYMENT_STATUSES, codes.FF01)
        check_reason_code("reason_code", self.reason_code)
        check_optional_text("additional_info", self.additional_info, MAX_NOTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """pacs.004 (退汇): funds sent back by the creditor's bank before crediting the payee."""

    msg_id: str
    created_at: datetime
    return_id: str
    system: System
    original_msg_id: str
    original_message_type: str = PACS008
    original_end_to_end_id: str | None = None
    original_tx_id: str
    returned_amount_fen: int
    currency: str = CURRENCY
    settlement_date: date
    returning_agent_code: str
    receiving_agent_code: str
    reason_code: str
    additional_info: str | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_text("return_id", self.return_id, MAX35)
        check_choice("system", self.system, SYSTEMS, codes.FF04)
        check_text("original_msg_id", self.original_msg_id, MAX35)
        check_text("original_message_type", self.original_message_type, MAX35)
        check_optional_text("original_end_to_end_id", self.original_end_to_end_id, MAX35)
        check_text("original_tx_id", self.original_tx_id, MAX35)
        check_fen("returned_amount_fen", self.returned_amount_fen)
        check_currency("currency", self.currency)
        check_date("settlement_date", self.settlement_date)
        check_bank_code("returning_agent_code", self.returning_agent_code)
        check_bank_code("receiving_agent_code", self.receiving_agent_code)
        check_reason_code("reason_code", self.reason_code, optional=False)
        check_optional_text("additional_info", self.additional_info, MAX_NOTE)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementEntry:
    """One booked movement on a settlement account."""

    reference: str
    amount_fen: int
    direction: Direction
    booked_at: datetime
    transaction_code: str = "PMNT"

    def __post_init__(self) -> None:
        check_text("reference", self.reference, MAX35)
        check_fen("amount_fen", self.amount_fen)
        check_choice("direction", self.direction, DIRECTIONS, codes.FF01)
        check_datetime("booked_at", self.booked_at)
        check_text("transaction_code", self.transaction_code, MAX35)

    @property
    def signed_fen(self) -> int:
        return self.amount_fen if self.direction == "credit" else -self.amount_fen


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """A settlement account statement (camt.053, end of day) or intraday report (camt.052).

    ``account`` is the participant's bank code. Balances may be negative (a debit balance).
    The entries must add up: opening + credits - debits == closing (AM10 otherwise). In a
    camt.052 the closing balance is the interim booked balance at ``created_at``.
    """

    msg_id: str
    created_at: datetime
    statement_id: str
    account: str
    business_date: date
    opening_balance_fen: int
    closing_balance_fen: int
    currency: str = CURRENCY
    entries: tuple[StatementEntry, ...] = field(default=())

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_text("statement_id", self.statement_id, MAX35)
        check_bank_code("account", self.account)
        check_date("business_date", self.business_date)
        check_fen("opening_balance_fen", self.opening_balance_fen, allow_zero=True,
                  allow_negative=True)
        check_fen("closing_balance_fen", self.closing_balance_fen, allow_zero=True,
                  allow_negative=True)
        check_currency("currency", self.currency)
        if not isinstance(self.entries, tuple) or not all(
            isinstance(e, StatementEntry) for e in self.entries
        ):
            raise InvalidField("entries", codes.FF01, "must be a tuple of StatementEntry")
        moved = sum(e.signed_fen for e in self.entries)
        if self.opening_balance_fen + moved != self.closing_balance_fen:
            raise InvalidField(
                "closing_balance_fen", codes.AM10,
                f"opening {self.opening_balance_fen} + entries {moved} != closing "
                f"{self.closing_balance_fen} (fen)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRequest:
    """camt.060 (AccountReportingRequest): a participant asks for a report on its own
    settlement account: ``requested_message`` (``ReqdMsgNmId``) names the report wanted
    (camt.053 statement, camt.052 intraday report), ``from_date``/``to_date`` the period.

    ``account_owner`` is the asking bank's code (``AcctOwnr/Agt``); ``account`` the
    account asked about (``Acct/Id/Othr/Id``: a settlement account is named by its
    participant's bank code, as in a statement), the owner's own when absent. Which
    reports CNAPS answers, and for whom, is the gateway's rule, not the message's.
    """

    msg_id: str
    created_at: datetime
    request_id: str | None = None
    requested_message: str
    account: str | None = None
    account_owner: str
    from_date: date | None = None
    to_date: date | None = None

    def __post_init__(self) -> None:
        check_text("msg_id", self.msg_id, MAX35)
        check_datetime("created_at", self.created_at)
        check_optional_text("request_id", self.request_id, MAX35)
        check_text("requested_message", self.requested_message, MAX35)
        check_optional_text("account", self.account, MAX34, code=codes.AC01)
        check_bank_code("account_owner", self.account_owner)
        if self.from_date is not None:
            check_date("from_date", self.from_date)
        if self.to_date is not None:
            check_date("to_date", self.to_date)
            if self.from_date is None:
                raise InvalidField("to_date", codes.DT01, "a period's end needs its start "
                                   "(from_date)")
            if self.to_date < self.from_date:
                raise InvalidField("to_date", codes.DT01, f"the period ends ({self.to_date}) "
                                   f"before it starts ({self.from_date})")

    @property
    def account_asked(self) -> str:
        """The account the report is of: ``account``, else the owner's own."""
        return self.account if self.account is not None else self.account_owner


def _party_name(name: str, value: object, *, required: bool, code: str) -> None:
    if value is None:
        if required:
            raise InvalidField(name, code, "is required for a customer transfer")
        return
    check_text(name, value, MAX140, code=code)


def _account(name: str, value: object, *, required: bool, code: str) -> None:
    if value is None:
        if required:
            raise InvalidField(name, code, "is required for a customer transfer")
        return
    check_text(name, value, MAX34, code=code)


#: Any object a message decodes into.
DomainObject = (
    CreditTransfer | DirectDebit | CancelRequest | CancelAnswer | StatusReport | StatusRequest
    | Return | Statement | ReportRequest
)
