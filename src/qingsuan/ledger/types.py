"""The ledger's vocabulary: books, accounts, transfers, flags and result codes.

A *book* (账簿) is one institution's set of accounts: the PBOC's, each bank's, the card
switch's. A transfer debits one account and credits another of the same book, so every
book sums to zero at every instant. Money crosses books only through a payment system,
which posts matching transfers in each book involved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag
from typing import Any, Final

#: Identifiers are positive and fit a signed 64-bit column (numpy, SQL BIGINT).
MAX_ID: Final = 2**63 - 1
#: Cumulative debits or credits of one account must stay below this (int64 headroom).
MAX_TOTAL_FEN: Final = 2**62


class NormalSide(IntEnum):
    """Which side increases an account's balance: assets are debit-normal (a bank's reserve
    at the PBOC in the bank's book), liabilities credit-normal (a customer's deposit)."""

    DEBIT = 0
    CREDIT = 1


class AccountFlags(IntFlag):
    NONE = 0
    #: The balance on the normal side (posted, less pending outflows) must stay at or above
    #: minus the overdraft limit (透支额度). With limit 0 the account can never go negative.
    MUST_NOT_OVERDRAW = 1
    #: A closed account takes no new transfers (销户).
    CLOSED = 2


class TransferFlags(IntFlag):
    NONE = 0
    #: Linked with the next transfer of the batch: the chain succeeds or fails as one.
    LINKED = 1
    #: Phase one of a two-phase transfer: reserve the amount (pending), post or void later.
    PENDING = 2
    #: Phase two: post (part of) the pending transfer named by ``pending_id``.
    POST_PENDING = 4
    #: Phase two: void the pending transfer named by ``pending_id``.
    VOID_PENDING = 8


PHASE_TWO: Final = TransferFlags.POST_PENDING | TransferFlags.VOID_PENDING
KNOWN_TRANSFER_FLAGS: Final = (
    TransferFlags.LINKED | TransferFlags.PENDING | TransferFlags.POST_PENDING
    | TransferFlags.VOID_PENDING
)


class AccountResult(IntEnum):
    """Why an account was not created. One code per cause."""

    OK = 0
    EXISTS = 1
    EXISTS_WITH_DIFFERENT_FIELDS = 2
    ID_OUT_OF_RANGE = 3
    BOOK_NOT_FOUND = 4
    OVERDRAFT_LIMIT_NEGATIVE = 5
    UNKNOWN_FLAGS = 6


class TransferResult(IntEnum):
    """The fate of one transfer of a batch. ``OK`` and ``EXISTS`` mean it is (already) done;
    every other code names exactly one cause of failure, and a failed transfer changes
    nothing and is not stored (so a retry after the cause is fixed can succeed)."""

    OK = 0
    #: Same id, same body: an idempotent retry of a transfer already done.
    EXISTS = 1
    EXISTS_WITH_DIFFERENT_ACCOUNTS = 2
    EXISTS_WITH_DIFFERENT_AMOUNT = 3
    EXISTS_WITH_DIFFERENT_FLAGS = 4
    EXISTS_WITH_DIFFERENT_PENDING_ID = 5
    EXISTS_WITH_DIFFERENT_TIMEOUT = 6
    EXISTS_WITH_DIFFERENT_CODE = 7
    LINKED_EVENT_FAILED = 8
    LINKED_CHAIN_OPEN = 9
    ID_OUT_OF_RANGE = 10
    UNKNOWN_FLAGS = 11
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 12
    AMOUNT_MUST_BE_POSITIVE = 13
    AMOUNT_TOO_LARGE = 14
    ACCOUNTS_MUST_BE_DIFFERENT = 15
    DEBIT_ACCOUNT_NOT_FOUND = 16
    CREDIT_ACCOUNT_NOT_FOUND = 17
    ACCOUNTS_IN_DIFFERENT_BOOKS = 18
    DEBIT_ACCOUNT_CLOSED = 19
    CREDIT_ACCOUNT_CLOSED = 20
    TIMEOUT_RESERVED_FOR_PENDING = 21
    TIMEOUT_NEGATIVE = 22
    PENDING_ID_MUST_BE_ZERO = 23
    PENDING_ID_REQUIRED = 24
    PENDING_ID_MUST_BE_DIFFERENT = 25
    PENDING_TRANSFER_NOT_FOUND = 26
    PENDING_TRANSFER_NOT_PENDING = 27
    PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS = 28
    PENDING_TRANSFER_EXCEEDED = 29
    PENDING_TRANSFER_ALREADY_POSTED = 30
    PENDING_TRANSFER_ALREADY_VOIDED = 31
    PENDING_TRANSFER_EXPIRED = 32
    DEBIT_ACCOUNT_INSUFFICIENT_FUNDS = 33
    CREDIT_ACCOUNT_INSUFFICIENT_FUNDS = 34
    OVERFLOWS_DEBITS = 35
    OVERFLOWS_CREDITS = 36

    @property
    def done(self) -> bool:
        """True when the transfer is in the ledger (new or an idempotent retry)."""
        return self <= DONE_MAX


#: the codes of a transfer that is (already) in the ledger are OK and EXISTS, the lowest:
#: their bound as a module global (in Python 3.11 reading a member off its enum class,
#: TransferResult.OK, costs about 1,000 instructions: EnumType defines __getattr__, which
#: sends every attribute read off the class down the slow generic path)
DONE_MAX: Final = int(TransferResult.EXISTS)
assert int(TransferResult.OK) == 0 and min(map(int, TransferResult)) == 0
#: the credit side, as a module global (for the same reason)
_CREDIT: Final = NormalSide.CREDIT


class PendingState(IntEnum):
    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class Account:
    """An account in one book. Immutable once created (limits change by new accounts or,
    later, by logged commands: never by editing history)."""

    id: int
    book: int
    normal: NormalSide = NormalSide.CREDIT
    flags: AccountFlags = AccountFlags.NONE
    overdraft_limit_fen: int = 0
    #: A free tag for the owner's chart of accounts (科目号); not interpreted by the ledger.
    code: int = 0


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer. For POST_PENDING / VOID_PENDING the accounts may be 0 (taken from the
    pending transfer) and amount 0 means the whole pending amount."""

    id: int
    debit_account_id: int
    credit_account_id: int
    amount_fen: int
    flags: TransferFlags = TransferFlags.NONE
    pending_id: int = 0
    #: For PENDING: how long the reservation lives before it voids itself (0 = no timeout).
    timeout_us: int = 0
    #: A free tag (business type, reason code); not interpreted by the ledger.
    code: int = 0


@dataclass(frozen=True, slots=True, init=False)
class Balance:
    """An account's four running totals and what they mean on its normal side."""

    debits_pending_fen: int
    debits_posted_fen: int
    credits_pending_fen: int
    credits_posted_fen: int
    normal: NormalSide

    def __init__(self, debits_pending_fen: int, debits_posted_fen: int,
                 credits_pending_fen: int, credits_posted_fen: int,
                 normal: NormalSide) -> None:
        # the __init__ dataclass writes for a frozen class sets each field through
        # object.__setattr__ (in Python 3.11 about 1,600 instructions a field: a
        # balance query cost 8,000); the slots' own setters, where that call ends, cost
        # a third. The same fields, in the same order: dataclass's eq, hash and repr
        _SET_BALANCE[0](self, debits_pending_fen)
        _SET_BALANCE[1](self, debits_posted_fen)
        _SET_BALANCE[2](self, credits_pending_fen)
        _SET_BALANCE[3](self, credits_posted_fen)
        _SET_BALANCE[4](self, normal)

    @property
    def posted_fen(self) -> int:
        """The booked balance on the normal side."""
        if self.normal is _CREDIT:
            return self.credits_posted_fen - self.debits_posted_fen
        return self.debits_posted_fen - self.credits_posted_fen

    @property
    def available_fen(self) -> int:
        """Posted balance less pending outflows (reservations): what may still be spent."""
        return available_fen(self.debits_pending_fen, self.debits_posted_fen,
                             self.credits_pending_fen, self.credits_posted_fen, self.normal)


def slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of a frozen slots dataclass's fields, which must be ``names`` in order:
    a record filled through all of them (on ``object.__new__(cls)``) is the one its
    ``__init__`` makes, at a third of the cost (that ``__init__`` calls
    ``object.__setattr__`` once a field, which looks the slot up again each time). For a
    class without ``__post_init__``."""
    assert tuple(f.name for f in fields(cls)) == names, (cls, names)
    assert "__post_init__" not in cls.__dict__, cls
    return tuple(cls.__dict__[name].__set__ for name in names)


#: the setter of each of Balance's slots, in field order (Balance.__init__)
_SET_BALANCE: Final = slot_setters(Balance, ("debits_pending_fen", "debits_posted_fen",
                                             "credits_pending_fen", "credits_posted_fen",
                                             "normal"))


def available_fen(dp: int, dpo: int, cp: int, cpo: int, normal: int) -> int:
    """What an account with these totals (debits pending and posted, credits pending and
    posted) may still spend on its normal side: posted less pending outflows."""
    if normal == _CREDIT:
        return cpo - dpo - dp
    return dpo - cpo - cp


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A stored transfer with the time the ledger applied it."""

    transfer: Transfer
    timestamp_us: int
    #: For a pending transfer, its current state; else None.
    pending_state: PendingState | None = None
