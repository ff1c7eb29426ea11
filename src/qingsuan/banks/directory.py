"""The banks' customer directory (客户信息): every customer account of every bank, found by
its id or by (bank, account number) in one dictionary look-up, never by a scan.

It is the one list of customers in a world: the receiving bank resolves payees from it,
the simulated responder answers CNAPS from it, the acquirer finds its merchants in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from qingsuan.cnaps.netsys import SimAccount
from qingsuan.reasons import Reason

#: customers one world holds at most
MAX_CUSTOMERS: Final = 10_000_000


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
    def __init__(self) -> None:
        self.by_id: dict[str, CustomerAccount] = {}
        self.by_number: dict[tuple[str, str], CustomerAccount] = {}

    def add(self, customer: CustomerAccount) -> None:
        if customer.id in self.by_id:
            raise ValueError(f"customer {customer.id} is already in the directory")
        if (customer.bank, customer.account) in self.by_number:
            raise ValueError(f"account {customer.account} at {customer.bank} is already open")
        if len(self.by_id) >= MAX_CUSTOMERS:
            raise ValueError(f"a world holds at most {MAX_CUSTOMERS} customers")
        self.by_id[customer.id] = customer
        self.by_number[(customer.bank, customer.account)] = customer

    def __len__(self) -> int:
        return len(self.by_id)

    def __getitem__(self, cid: str) -> CustomerAccount:
        return self.by_id[cid]

    def resolve(self, bank: str, account: str, name: str | None, *, name_check: bool
                ) -> tuple[CustomerAccount | None, tuple[str, str] | None]:
        """The receiving bank looks a payee up in its books: (the account, None), or (None,
        (reason code, message)) when it must return the payment: no such account (AC01), a
        closed account (AC04), or a name that does not match (BE01, with ``name_check``)."""
        found = self.by_number.get((bank, account))
        if found is None:
            return None, (Reason.AC01.code, f"no account {account} at {bank}")
        if found.closed:
            return None, (Reason.AC04.code, f"account {account} at {bank} is closed")
        if name_check and name and name != found.name:
            return None, (Reason.BE01.code, f"the name {name!r} does not match account "
                                            f"{account} at {bank}")
        return found, None

    def to_state(self) -> list[Any]:
        return [c.to_state() for c in self.by_id.values()]

    @classmethod
    def from_state(cls, doc: list[Any]) -> Directory:
        out = cls()
        for cid, bank, account, name, closed, mdr in doc:
            out.add(CustomerAccount(cid, bank, account, name, bool(closed), mdr))
        return out


class ResponderView:
    """The directory as the simulated responders' look-up (cnaps/netsys.AccountsView):
    (bank, account number) -> what the bank answers about it. Reads the banks' current
    directory each time (it is replaced when a snapshot is loaded)."""

    def __init__(self, banks: Any) -> None:
        self._banks = banks

    def get(self, key: tuple[str, str], /) -> SimAccount | None:
        found = self._banks.directory.by_number.get(key)
        if found is None:
            return None
        return SimAccount(found.bank, found.account, found.name,
                          f"{found.bank}:{found.ledger_name}", found.closed)
