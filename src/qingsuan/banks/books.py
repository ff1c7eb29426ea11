"""Each bank's chart of accounts (会计科目) and the few ledger moves the bank tier makes.

Every participant's book has the same accounts; the payment systems open their own transit
accounts (``hvps_outgoing``, ``beps_clearing`` ...) when the participant joins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from qingsuan.cnaps.netsys import SYSTEMS
from qingsuan.engine import AccountSpec
from qingsuan.ledger import AccountFlags, NormalSide, TransferFlags, TransferResult
from qingsuan.ledger.types import DONE_MAX  # (code <= DONE_MAX: code.done without a call)

if TYPE_CHECKING:
    from qingsuan.engine import Engine

MNO: Final = AccountFlags.MUST_NOT_OVERDRAW
_PENDING: Final = int(TransferFlags.PENDING)
_POST: Final = int(TransferFlags.POST_PENDING)
_VOID: Final = int(TransferFlags.VOID_PENDING)
#: each net system's clearing account in a bank's book (BEPS: beps_clearing), named once
#: (formatted per item before)
CLEARING: Final = {system: f"{system.lower()}_clearing" for system in SYSTEMS}
#: account ids the books keep read (a cache)
MAX_IDS_KEPT: Final = 1 << 16

#: (name, normal side, flags) of the accounts every participant's book has
BANK_ACCOUNTS: Final = (
    ("equity", NormalSide.CREDIT, AccountFlags.NONE),
    ("other_assets", NormalSide.DEBIT, AccountFlags.NONE),
    ("fee_income", NormalSide.CREDIT, AccountFlags.NONE),
    ("vault_cash", NormalSide.DEBIT, MNO),
    # the card switch's clearing with this bank
    ("due_to_switch", NormalSide.CREDIT, AccountFlags.NONE),
    ("due_from_switch", NormalSide.DEBIT, AccountFlags.NONE),
    ("due_to_merchants", NormalSide.CREDIT, AccountFlags.NONE),
    ("interchange_income", NormalSide.CREDIT, AccountFlags.NONE),
    ("interchange_expense", NormalSide.DEBIT, AccountFlags.NONE),
    # a BEPS/IBPS credit the bank could not apply, owed back to the payer while its return
    # (退汇) waits behind the bank's net debit cap
    ("returns_payable", NormalSide.CREDIT, AccountFlags.NONE),
)


def bank_accounts(bank: str) -> list[AccountSpec]:
    return [AccountSpec(bank, name, normal, flags) for name, normal, flags in BANK_ACCOUNTS]


class Books:
    """The bank tier's postings, made while applying a logged command (derived ids)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: (book, name) -> account id, for the registry it was read from (an account's id
        #: never changes; a snapshot loaded brings another registry: read again)
        self._ids: dict[tuple[str, str], int] = {}
        self._registry = engine.registry

    def _kept(self) -> dict[tuple[str, str], int]:
        """The ids kept, for the engine's registry now (emptied when it is another)."""
        registry = self.engine.registry
        if registry is not self._registry:
            self._registry, self._ids = registry, {}
        return self._ids

    def id(self, book: str, name: str) -> int:
        ids = self._kept()
        found = ids.get((book, name))
        return found if found is not None else self._read(ids, book, name)

    def _read(self, ids: dict[tuple[str, str], int], book: str, name: str) -> int:
        """An id not kept in ``ids`` (:meth:`_kept`'s answer), read from the registry and
        kept."""
        found = self._registry.id(book, name)
        if len(ids) >= MAX_IDS_KEPT:
            ids.clear()
        ids[(book, name)] = found
        return found

    def _pair(self, book: str, debit: str, credit: str) -> tuple[int, int]:
        """The ids of a posting's two accounts (the kept ones read here, the registry
        asked only for one not kept: every posting asks, and most customers' accounts
        are met once in a while)."""
        ids = self._ids if self.engine.registry is self._registry else self._kept()
        return (ids.get((book, debit)) or self._read(ids, book, debit),
                ids.get((book, credit)) or self._read(ids, book, credit))

    def post(self, book: str, debit: str, credit: str, amount_fen: int) -> TransferResult:
        """Book one transfer in ``book``; its result (insufficient funds, closed ...)."""
        debit_id, credit_id = self._pair(book, debit, credit)
        return self.engine.post_one(debit_id, credit_id, amount_fen)

    def post_all(self, legs: list[tuple[str, str, str, int]]) -> None:
        """Book transfers that cannot fail (transit accounts, or funds reserved before)."""
        if len(legs) == 1:  # one transfer: the single-row path (the same id, row and code)
            ((book, debit, credit, amount),) = legs
            code = self.engine.post_one(*self._pair(book, debit, credit), amount)
            assert code <= DONE_MAX, code
            return
        result = self.engine.post([(self.id(b, d), self.id(b, c), a) for b, d, c, a in legs])
        assert result.all_done, result.failures()

    def reserve(self, book: str, debit: str, credit: str, amount_fen: int
                ) -> tuple[TransferResult, int]:
        """A reservation (pending transfer): the customer can no longer spend the funds.
        Returns its result and its id (to post or void it later)."""
        reserve_id = self.engine.next_derived_id()
        debit_id, credit_id = self._pair(book, debit, credit)
        return self.engine.post_one(debit_id, credit_id, amount_fen, _PENDING), reserve_id

    def settle_reservation(self, reserve_id: int, *, post: bool) -> None:
        """Book (post) or release (void) a reservation made by :meth:`reserve`."""
        code = self.engine.post_one(0, 0, 0, _POST if post else _VOID, reserve_id)
        assert code <= DONE_MAX, code

    def settle_and_post(self, reserve_id: int, book: str, debit: str, credit: str,
                        amount_fen: int) -> None:
        """Book a reservation made by :meth:`reserve`, then a transfer that cannot fail
        (the payee's credit it pays for): the ids, rows and codes of a batch of the two
        (neither linked, each applied on its own), without building the batch."""
        code = self.engine.post_one(0, 0, 0, _POST, reserve_id)
        assert code <= DONE_MAX, code
        debit_id, credit_id = self._pair(book, debit, credit)
        code = self.engine.post_one(debit_id, credit_id, amount_fen)
        assert code <= DONE_MAX, code

    def posted_fen(self, book: str, name: str) -> int:
        return self.engine.ledger.posted_fen(self.id(book, name))
