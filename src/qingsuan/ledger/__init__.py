"""The double-entry ledger (账簿): books, accounts, transfers. Knows no payment system."""

from qingsuan.ledger.batch import TransferBatch, decode_batch, encode_batch
from qingsuan.ledger.ledger import BatchResult, Ledger, LedgerInvariantError
from qingsuan.ledger.types import (
    Account,
    AccountFlags,
    AccountResult,
    Balance,
    NormalSide,
    PendingState,
    Transfer,
    TransferFlags,
    TransferRecord,
    TransferResult,
)

__all__ = [
    "Account", "AccountFlags", "AccountResult", "Balance", "BatchResult", "Ledger",
    "LedgerInvariantError", "NormalSide", "PendingState", "Transfer", "TransferBatch",
    "TransferFlags", "TransferRecord", "TransferResult", "decode_batch", "encode_batch",
]
