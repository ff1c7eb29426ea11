"""A scenario's parts once read (docs/SCENARIOS.md): participants, customers, cards,
terminals, events and the problems found in a file. Plain frozen records, no parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from qingsuan.cards.pin import pin_verification_value
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
    customers: tuple[Customer, ...]
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

    def participant(self, name: str) -> Participant:
        return next(p for p in self.participants if p.name == name)

    def customer(self, cid: str) -> Customer:
        return next(c for c in self.customers if c.id == cid)


def hash_pin(pan: str, pin: str) -> bytes:
    """A PIN is never kept in clear: the issuer keeps its PIN verification value under the
    sandbox's PIN verification key (cards/pin.py)."""
    return pin_verification_value(pan, pin)
