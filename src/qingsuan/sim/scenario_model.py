"""A scenario's parts once read (docs/SCENARIOS.md): participants, customers, cards,
terminals, events and the problems found in a file. Plain frozen records, no parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, overload

from qingsuan.banks.ranges import CustomerRange, clash
from qingsuan.cards.pin import pin_verification_value
from qingsuan.ledger.registry import split_index
from qingsuan.params import Params
from qingsuan.sim.sim_app_block import AppSpec
from qingsuan.sim.sim_blocks import SimBlocks
from qingsuan.sim.traffic import (
    TrafficSpec,
)
from qingsuan.wallets import terms as wallet_terms

#: Bounds on what one scenario may hold (limits on everything).
MAX_PARTICIPANTS: Final = 10_000
MAX_CUSTOMERS: Final = 1_000_000
MAX_EVENTS: Final = 1_000_000
MAX_FILE_BYTES: Final = 64 * 1024 * 1024

PARTICIPANT_KINDS: Final = ("bank", "payment_institution")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file with problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Participant:
    """A CNAPS participant (参与者) with a settlement account (清算账户) at the PBOC."""

    name: str
    code: str
    kind: str
    settlement_balance_fen: int
    collateral_fen: int
    line: int
    #: net debit caps set for BEPS / IBPS ("beps", "ibps" -> fen); others use the default
    caps_fen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Merchant:
    mid: str
    mcc: str
    mdr_ppm: int


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer account in a bank's own books (行内账户)."""

    id: str
    bank: str
    account: str
    balance_fen: int
    name: str
    merchant: Merchant | None
    line: int
    #: a closed account (销户) takes no credits: payments to it are returned (AC04)
    closed: bool = False
    #: a credit-card account (信用卡账户) may go negative down to minus this limit
    credit_limit_fen: int = 0


class CustomerTable(Sequence[Customer]):
    """A scenario's customers: those listed one by one, then the generated ranges
    (banks/ranges.py), each a rule that makes its customers only when one is read. A
    world of ten million generated customers holds a few rules, not ten million records.
    Found by id without a scan."""

    __slots__ = ("_index", "_of_prefix", "_size", "listed", "ranges")

    def __init__(self, listed: Iterable[Customer] = (),
                 ranges: Iterable[CustomerRange] = ()) -> None:
        self.listed = tuple(listed)
        self.ranges = tuple(ranges)
        problem = clash(self.ranges, ((c.id, c.bank, c.account) for c in self.listed))
        if problem is not None:
            raise ValueError(problem)
        self._size = len(self.listed) + sum(r.count for r in self.ranges)
        self._index: dict[str, Customer] | None = None  # built when first asked
        self._of_prefix = {r.id_prefix: r for r in self.ranges}

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Customer]:
        yield from self.listed
        for rule in self.ranges:
            for k in range(rule.count):
                yield _generated(rule, k)

    @overload
    def __getitem__(self, i: int) -> Customer: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Customer]: ...

    def __getitem__(self, i: int | slice) -> Customer | Sequence[Customer]:
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(self._size)))
        if i < 0:
            i += self._size
        if not 0 <= i < self._size:
            raise IndexError(i)
        if i < len(self.listed):
            return self.listed[i]
        i -= len(self.listed)
        for rule in self.ranges:
            if i < rule.count:
                return _generated(rule, i)
            i -= rule.count
        raise AssertionError("the sizes add up")

    def get(self, cid: str) -> Customer | None:
        """The customer with id ``cid``, or None."""
        if self._index is None:
            self._index = {c.id: c for c in self.listed}
        found = self._index.get(cid)
        if found is not None or not self.ranges:
            return found
        split = split_index(cid)
        rule = self._of_prefix.get(split[0]) if split is not None else None
        k = rule.index_of_id(cid) if rule is not None else None
        return _generated(rule, k) if rule is not None and k is not None else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CustomerTable):
            return self.listed == other.listed and self.ranges == other.ranges
        return isinstance(other, Sequence) and not self.ranges and self.listed == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CustomerTable({len(self.listed)} listed, ranges={self.ranges!r})"


class KnownCustomers(dict[str, Customer | None]):
    """The customers a file's events and cards may name, by id: the listed ones (None:
    listed with a problem of its own, already reported) and, without a record each, every
    customer of the generated ranges."""

    def __init__(self, listed: dict[str, Customer | None], table: CustomerTable) -> None:
        super().__init__(listed)
        self._table = table

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (
            isinstance(key, str) and self._table.get(key) is not None)

    def __getitem__(self, key: str) -> Customer | None:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        found = self._table.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def _generated(rule: CustomerRange, k: int) -> Customer:
    return Customer(rule.id(k), rule.bank, rule.account(k), rule.balance_fen, rule.name(k),
                    None, 0)


@dataclass(frozen=True, slots=True)
class Card:
    """A card bound to a customer account. The PIN is kept only as a salted hash."""

    pan: str
    account: str
    kind: str
    pin_hash: bytes | None
    line: int


@dataclass(frozen=True, slots=True)
class Terminal:
    id: str
    kind: str
    bank: str
    cash_fen: int
    merchant: str | None
    line: int


@dataclass(frozen=True, slots=True)
class Event:
    at_us: int
    do: str
    order: int
    line: int
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        value = self.fields.get("id")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    file: str
    description: str
    start_us: int
    run_until_us: int
    calendar: str
    params: Params
    participants: tuple[Participant, ...]
    #: listed customers (a tuple) or a :class:`CustomerTable` with generated ranges; held
    #: as a table either way
    customers: Sequence[Customer]
    cards: tuple[Card, ...]
    terminals: tuple[Terminal, ...]
    events: tuple[Event, ...]
    #: the generated workload (``traffic:``, docs/SIMULATE.md), if the file asks for one
    traffic: TrafficSpec | None = None
    #: stress, cash managers and costs for ``qingsuan simulate`` (sim/sim_blocks.py)
    sim: SimBlocks = field(default_factory=SimBlocks)
    #: payment institutions, app users and voucher campaigns (``wallets:``, WALLETS.md)
    wallets: wallet_terms.WalletsSpec | None = None
    #: the app's generated day for ``qingsuan simulate`` (``app:``, sim/sim_app_block.py)
    app: AppSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.customers, CustomerTable):
            object.__setattr__(self, "customers", CustomerTable(self.customers))

    def participant(self, name: str) -> Participant:
        return next(p for p in self.participants if p.name == name)

    def customer_table(self) -> CustomerTable:
        assert isinstance(self.customers, CustomerTable)
        return self.customers

    def customer(self, cid: str) -> Customer:
        """The customer with id ``cid`` (KeyError if none), found without a scan."""
        found = self.customer_table().get(cid)
        if found is None:
            raise KeyError(f"no customer {cid!r}")
        return found


def hash_pin(pan: str, pin: str) -> bytes:
    """A PIN is never kept in clear: the issuer keeps its PIN verification value under the
    sandbox's PIN verification key (cards/pin.py)."""
    return pin_verification_value(pan, pin)


