"""The banks' customer directory (客户信息): every customer account of every bank, found by
its id or by (bank, account number) in one dictionary look-up (or, for a generated
customer, by reading its index off the id or number: banks/ranges.py), never by a scan.

It is the one list of customers in a world: the receiving bank resolves payees from it,
the simulated responder answers CNAPS from it, the acquirer finds its merchants in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, ValuesView
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.banks.ranges import CustomerRange, clash
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.ledger.registry import DIGITS, AccountRegistry, canonical_index
from qingsuan.ledger.types import slot_setters
from qingsuan.reasons import Reason

#: customers one world holds at most
MAX_CUSTOMERS: Final = 10_000_000
#: generated customers kept made (a cache: a look-up past it makes the record again)
MAX_MADE: Final = 1 << 16


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    """A customer account in a bank's own books (行内账户)."""

    id: str
    bank: str
    account: str
    name: str
    closed: bool = False
    #: the merchant discount rate (扣率) of a merchant customer, in millionths
    mdr_ppm: int | None = None

    @property
    def ledger_name(self) -> str:
        """The account's name in its bank's book."""
        return f"customer:{self.id}"

    def to_state(self) -> list[Any]:
        return [self.id, self.bank, self.account, self.name, self.closed, self.mdr_ppm]


class Directory:
    """The customers listed one by one (a dictionary each way), then the generated ranges
    (banks/ranges.py: a rule each, nothing per customer). :attr:`by_id` and
    :attr:`by_number` read both as one mapping; the directory's order (the bulk path's
    numbering) is the listed customers in the order they were added, then each range."""

    def __init__(self) -> None:
        self._listed: dict[str, CustomerAccount] = {}
        self._numbers: dict[tuple[str, str], CustomerAccount] = {}
        self.ranges: list[CustomerRange] = []
        self._range_of_prefix: dict[str, CustomerRange] = {}
        self._ranges_at: dict[str, list[CustomerRange]] = {}
        self._size = 0
        #: generated customers already made, by id and by (bank, account number): records
        #: never change once made, so an event's look-ups make none again
        self._made: dict[str, CustomerAccount] = {}
        self._made_numbers: dict[tuple[str, str], CustomerAccount] = {}
        #: customer id -> the account; (bank, account number) -> the account
        self.by_id = _ById(self)
        self.by_number = _ByNumber(self)

    def add(self, customer: CustomerAccount) -> None:
        if self.ranges:
            raise ValueError("listed customers are added before the generated ranges")
        if customer.id in self._listed:
            raise ValueError(f"customer {customer.id} is already in the directory")
        if (customer.bank, customer.account) in self._numbers:
            raise ValueError(f"account {customer.account} at {customer.bank} is already open")
        self._check_room(1)
        self._listed[customer.id] = customer
        self._numbers[(customer.bank, customer.account)] = customer
        self._size += 1

    def add_range(self, rule: CustomerRange) -> None:
        """Add a range of generated customers after the listed ones (and earlier ranges)."""
        problem = clash([*self.ranges, rule], ((c.id, c.bank, c.account)
                                                for c in self._listed.values()))
        if problem is not None:
            raise ValueError(problem)
        self._check_room(rule.count)
        self.ranges.append(rule)
        self._range_of_prefix[rule.id_prefix] = rule
        self._ranges_at.setdefault(rule.bank, []).append(rule)
        self._size += rule.count

    def _check_room(self, more: int) -> None:
        if self._size + more > MAX_CUSTOMERS:
            raise ValueError(f"a world holds at most {MAX_CUSTOMERS} customers")

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, cid: str) -> CustomerAccount:
        found = self._listed.get(cid) or self._made.get(cid)  # the per-event path
        if found is None:
            found = self._generated(cid)
            if found is None:
                raise KeyError(cid)
        return found

    def customers(self) -> Iterator[CustomerAccount]:
        """Every customer in the directory's order (a range's made as they are read)."""
        yield from self._listed.values()
        for rule in self.ranges:
            for k in range(rule.count):
                yield _member(rule, k)

    def columns(self, registry: AccountRegistry, bank_index: dict[str, int]
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Every customer's ledger account id, bank (its index in ``bank_index``) and
        whether it is closed, in the directory's order, as columns: a range's from its
        rule (its accounts' ids are consecutive), never a record per customer."""
        listed = self._listed.values()
        account = [np.array([registry.id(c.bank, c.ledger_name) for c in listed], np.int64)]
        bank = [np.array([bank_index[c.bank] for c in listed], np.int64)]
        closed = [np.array([c.closed for c in listed], np.bool_)]
        for rule in self.ranges:
            first = registry.id(rule.bank, f"customer:{rule.id(0)}")
            account.append(np.arange(first, first + rule.count, dtype=np.int64))
            bank.append(np.full(rule.count, bank_index[rule.bank], np.int64))
            closed.append(np.zeros(rule.count, np.bool_))
        return np.concatenate(account), np.concatenate(bank), np.concatenate(closed)

    def find_id(self, cid: str) -> CustomerAccount | None:
        found = self._listed.get(cid) or self._made.get(cid)
        return found if found is not None else self._generated(cid)

    def _generated(self, cid: str) -> CustomerAccount | None:
        """The generated customer ``cid`` (not made yet), or None."""
        if not self.ranges:
            return None
        # registry.split_index's steps, the prefix looked up before the index is read
        # (most events at a million customers meet one not made yet)
        prefix = cid.rstrip(DIGITS)
        rule = self._range_of_prefix.get(prefix)
        if rule is None:
            return None
        # (canonical and below the rule's count: cid is the rule's id for k)
        k = canonical_index(cid[len(prefix):], rule.count)
        return self._keep(_member(rule, k, cid)) if k is not None else None

    def find_number(self, bank: str, account: str) -> CustomerAccount | None:
        """The customer holding account number ``account`` at ``bank`` (None if none)."""
        return self.number_of((bank, account))

    def number_of(self, key: tuple[str, str]) -> CustomerAccount | None:
        """:meth:`find_number` of ``(bank, account number)`` as one key (the responder's,
        the mapping view's)."""
        found = self._numbers.get(key) or self._made_numbers.get(key)
        if found is not None:
            return found
        bank, account = key
        for rule in self._ranges_at.get(bank, ()):
            k = rule.index_of_account(account)
            if k is not None:
                return self._keep(_member(rule, k))
        return None

    def _keep(self, made: CustomerAccount) -> CustomerAccount:
        if len(self._made) >= MAX_MADE:
            self._made.clear()
            self._made_numbers.clear()
        self._made[made.id] = made
        self._made_numbers[(made.bank, made.account)] = made
        return made

    def resolve(self, bank: str, account: str, name: str | None, *, name_check: bool
                ) -> tuple[CustomerAccount | None, tuple[str, str] | None]:
        """The receiving bank looks a payee up in its books: (the account, None), or (None,
        (reason code, message)) when it must return the payment: no such account (AC01), a
        closed account (AC04), or a name that does not match (BE01, with ``name_check``)."""
        found = self.number_of((bank, account))
        if found is None:
            return None, (Reason.AC01.code, f"no account {account} at {bank}")
        problem = refusal(found, name, name_check=name_check)
        return (None, problem) if problem is not None else (found, None)

    def to_state(self) -> list[Any]:
        """The listed customers, then each range as ``{"range": rule}``."""
        return [c.to_state() for c in self._listed.values()] + \
            [{"range": rule.to_spec()} for rule in self.ranges]

    @classmethod
    def from_state(cls, doc: list[Any]) -> Directory:
        out = cls()
        for item in doc:
            if isinstance(item, dict):
                out.add_range(CustomerRange.from_spec(item["range"]))
                continue
            cid, bank, account, name, closed, mdr = item
            out.add(CustomerAccount(cid, bank, account, name, bool(closed), mdr))
        return out


def refusal(found: CustomerAccount, name: str | None, *, name_check: bool
            ) -> tuple[str, str] | None:
    """Why the receiving bank returns a payment to an account it holds: closed (AC04), or
    a name that does not match (BE01, with ``name_check``); None if neither. (incoming's
    _resolve asks it only for a closed account when the payee is named by its own id at
    its own bank: a new reason to refuse must be added there too.)"""
    if found.closed:
        return (Reason.AC04.code, f"account {found.account} at {found.bank} is closed")
    if name_check and name and name != found.name:
        return (Reason.BE01.code, f"the name {name!r} does not match account "
                                  f"{found.account} at {found.bank}")
    return None


# A generated customer's record is made at its first meeting (at a million customers, two
# an event), and the responder's answer about it once for each record: both frozen slots
# dataclasses, filled through their slots' setters (ledger/types.py slot_setters).
_NEW: Final = object.__new__
_SET_ID, _SET_BANK, _SET_ACCOUNT, _SET_NAME, _SET_CLOSED, _SET_MDR = slot_setters(
    CustomerAccount, ("id", "bank", "account", "name", "closed", "mdr_ppm"))
_SET_SIM: Final = slot_setters(SimAccount, ("bank", "number", "name", "ledger_name", "closed"))


def _member(rule: CustomerRange, k: int, cid: str | None = None) -> CustomerAccount:
    """Customer ``k`` of ``rule`` (``cid``: its id, when known already): an open account,
    no merchant, as ``CustomerAccount(id, bank, account, name)``."""
    made = _NEW(CustomerAccount)
    _SET_ID(made, cid if cid is not None else rule.id(k))
    _SET_BANK(made, rule.bank)
    _SET_ACCOUNT(made, rule.account(k))
    _SET_NAME(made, rule.name(k))
    _SET_CLOSED(made, False)
    _SET_MDR(made, None)
    return made


def _answer(found: CustomerAccount) -> SimAccount:
    """What the responder answers about ``found``: ``SimAccount(bank, number, name,
    "BANK:customer:ID", closed)``."""
    set_bank, set_number, set_name, set_ledger_name, set_closed = _SET_SIM
    answer = _NEW(SimAccount)
    set_bank(answer, found.bank)
    set_number(answer, found.account)
    set_name(answer, found.name)
    set_ledger_name(answer, f"{found.bank}:{found.ledger_name}")  # its ledger_name in full
    set_closed(answer, found.closed)
    return answer


class _ById(Mapping[str, CustomerAccount]):
    """Customer id -> account, over the listed customers and the ranges."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def __getitem__(self, cid: str) -> CustomerAccount:
        found = self._directory.find_id(cid)
        if found is None:
            raise KeyError(cid)
        return found

    def __iter__(self) -> Iterator[str]:
        return (c.id for c in self._directory.customers())

    def __len__(self) -> int:
        return len(self._directory)

    def values(self) -> ValuesView[CustomerAccount]:
        return _Values(self, self._directory)


class _Values(ValuesView[CustomerAccount]):
    """The accounts in the directory's order, without looking each id up again."""

    def __init__(self, mapping: _ById, directory: Directory) -> None:
        super().__init__(mapping)
        self._directory = directory

    def __iter__(self) -> Iterator[CustomerAccount]:
        return self._directory.customers()


class _ByNumber(Mapping[tuple[str, str], CustomerAccount]):
    """(bank, account number) -> account, over the listed customers and the ranges."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def __getitem__(self, key: tuple[str, str]) -> CustomerAccount:
        found = self._directory.number_of(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((c.bank, c.account) for c in self._directory.customers())

    def __len__(self) -> int:
        return len(self._directory)


class ResponderView:
    """The directory as the simulated responders' look-up (cnaps/netsys.AccountsView):
    (bank, account number) -> what the bank answers about it. Reads the banks' current
    directory each time (it is replaced when a snapshot is loaded)."""

    def __init__(self, banks: Any) -> None:
        self._banks = banks
        #: (bank, account number) -> (the record, its answer): an answer is made once for
        #: as long as the directory holds the same record (both immutable; a record that
        #: changes, an account closed, is a new record)
        self._answers: dict[tuple[str, str], tuple[CustomerAccount, SimAccount]] = {}

    def get(self, key: tuple[str, str], /) -> SimAccount | None:
        found = self._banks.directory.number_of(key)
        if found is None:
            return None
        kept = self._answers.get(key)
        if kept is not None and kept[0] is found:
            return kept[1]
        answer = _answer(found)
        if len(self._answers) >= MAX_MADE:
            self._answers.clear()
        self._answers[key] = (found, answer)
        return answer
