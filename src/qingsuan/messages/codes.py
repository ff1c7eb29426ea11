"""ISO 20022 ExternalStatusReason1Code values the message codecs reject with.

CNAPS2 reuses the ISO code list. Each constant is the code; :data:`MEANINGS` says when the
codecs use it (docs/MESSAGES.md has the same table).
"""

from __future__ import annotations

from typing import Final

FF01: Final = "FF01"  # InvalidFileFormat
FF03: Final = "FF03"  # InvalidPaymentTypeInformation
FF04: Final = "FF04"  # InvalidServiceLevelCode
FF05: Final = "FF05"  # InvalidLocalInstrumentCode
FF10: Final = "FF10"  # BankSystemProcessingError
AM01: Final = "AM01"  # ZeroAmount
AM02: Final = "AM02"  # NotAllowedAmount
AM03: Final = "AM03"  # NotAllowedCurrency
AM05: Final = "AM05"  # Duplication
AM10: Final = "AM10"  # InvalidControlSum
AM12: Final = "AM12"  # InvalidAmount
AM18: Final = "AM18"  # InvalidNumberOfTransactions
AC01: Final = "AC01"  # IncorrectAccountNumber
RC01: Final = "RC01"  # BankIdentifierIncorrect
RR01: Final = "RR01"  # MissingDebtorAccountOrIdentification
RR02: Final = "RR02"  # MissingDebtorNameOrAddress
RR03: Final = "RR03"  # MissingCreditorNameOrAddress
DT01: Final = "DT01"  # InvalidDate
NARR: Final = "NARR"  # Narrative

MEANINGS: Final[dict[str, str]] = {
    FF01: "not well-formed XML, not valid against the XSD, a DOCTYPE, an unsupported "
          "message type, too large, or a required element missing",
    FF03: "priority (InstrPrty / LclInstrm) inconsistent or not allowed for the system",
    FF04: "PmtTpInf/SvcLvl/Prtry does not name HVPS, BEPS or IBPS",
    FF05: "PmtTpInf/LclInstrm/Prtry is not a known HVPS priority code",
    FF10: "internal error while decoding (a bug: never expected)",
    AM01: "amount is zero",
    AM02: "amount above the largest accepted amount",
    AM03: "currency other than CNY",
    AM05: "the same transaction id twice in one message",
    AM10: "control sum / total amount / statement balances do not add up",
    AM12: "amount with more than two decimals",
    AM18: "NbOfTxs differs from the number of transactions",
    AC01: "creditor account missing",
    RC01: "bank code (ClrSysMmbId/MmbId) missing or not 12 digits",
    RR01: "debtor account missing",
    RR02: "debtor name missing",
    RR03: "creditor name missing",
    DT01: "date or time missing or out of range",
    NARR: "see the additional information",
}
