"""Generated customers as a rule (客户号段): "N customers at bank B, each opening with X".

A world of millions of customers is described, logged and held as a handful of such
rules instead of millions of records: customer ``k`` of a range (0 <= k < count) is
derived from the rule and ``k`` alone, and ``k`` from a customer's id or account number,
so a look-up costs the same at ten customers or ten million.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from qingsuan.ledger.registry import split_index

#: a range's id prefix: what a customer id may start with, not ending in a digit
_ID_PREFIX_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_\-.]{0,40}[A-Za-z_\-.]$|^[A-Za-z]$")
_ACCOUNT_PREFIX_RE: Final = re.compile(r"^\d{0,31}$")
#: account numbers are 6 to 32 digits (docs/SCENARIOS.md)
ACCOUNT_DIGITS_MIN: Final = 6
ACCOUNT_DIGITS_MAX: Final = 32


@dataclass(frozen=True, slots=True)
class CustomerRange:
    """``count`` customers at ``bank``: customer ``k`` has id ``{id_prefix}{k}``, account
    number ``{account_prefix}{k}`` padded with zeros to ``account_digits`` digits in all,
    name ``{name_prefix}{k}``, an open deposit account (no overdraft, no merchant) that
    opens with ``balance_fen``."""

    bank: str
    count: int
    balance_fen: int
    id_prefix: str
    account_prefix: str
    account_digits: int
    name_prefix: str

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ValueError(problem)

    def problem(self) -> str | None:
        """What is wrong with the rule, naming the field; None when it is sound."""
        if not _ID_PREFIX_RE.match(self.id_prefix):
            return (f"customer range at {self.bank}: id_prefix {self.id_prefix!r} must start "
                    f"with a letter and not end in a digit (at most 42 characters)")
        if not ACCOUNT_DIGITS_MIN <= self.account_digits <= ACCOUNT_DIGITS_MAX or \
                not _ACCOUNT_PREFIX_RE.match(self.account_prefix) or \
                len(self.account_prefix) >= self.account_digits:
            return (f"customer range {self.id_prefix}N: account_digits must be 6 to 32 and "
                    f"longer than account_prefix {self.account_prefix!r} (digits only)")
        if not 0 < self.count <= 10 ** (self.account_digits - len(self.account_prefix)):
            return (f"customer range {self.id_prefix}N: count {self.count} does not fit "
                    f"{self.account_digits - len(self.account_prefix)} account digits")
        if self.balance_fen < 0:
            return f"customer range {self.id_prefix}N: balance_fen must not be negative"
        return None

    # ------------------------------------------------------------------ customer k

    def id(self, k: int) -> str:
        return f"{self.id_prefix}{k}"

    def account(self, k: int) -> str:
        # (zfill: a third of a nested format's cost; k is never negative)
        return self.account_prefix + str(k).zfill(self.account_digits - len(self.account_prefix))

    def name(self, k: int) -> str:
        return f"{self.name_prefix}{k}"

    def index_of_id(self, cid: str) -> int | None:
        split = split_index(cid)
        if split is None or split[0] != self.id_prefix or split[1] >= self.count:
            return None
        return split[1]

    def index_of_account(self, account: str) -> int | None:
        if len(account) != self.account_digits or not account.startswith(self.account_prefix):
            return None
        digits = account[len(self.account_prefix):]
        if not digits.isdigit() or not digits.isascii():
            return None
        k = int(digits)
        return k if k < self.count else None

    # ------------------------------------------------------------------ as logged

    def to_spec(self) -> list[Any]:
        return [self.bank, self.count, self.balance_fen, self.id_prefix, self.account_prefix,
                self.account_digits, self.name_prefix]

    @classmethod
    def from_spec(cls, spec: list[Any]) -> CustomerRange:
        bank, count, balance, id_prefix, account_prefix, digits, name_prefix = spec
        return cls(str(bank), int(count), int(balance), str(id_prefix), str(account_prefix),
                   int(digits), str(name_prefix))


def clash(ranges: Iterable[CustomerRange], listed: Iterable[tuple[str, str, str]]
          ) -> str | None:
    """The first customer two rules (or a rule and a listed customer: id, bank, account)
    would both be, or None. Ranges are told apart by their id prefix (a name splits into
    prefix and index one way only) and, at one bank, by account numbers of another length
    or prefixes neither of which begins the other."""
    ranges = list(ranges)
    prefixes: set[str] = set()
    for k, r in enumerate(ranges):
        if r.id_prefix in prefixes:
            return f"customer ids {r.id_prefix}N are generated by two ranges"
        prefixes.add(r.id_prefix)
        for other in ranges[:k]:
            if other.bank == r.bank and other.account_digits == r.account_digits and (
                    other.account_prefix.startswith(r.account_prefix)
                    or r.account_prefix.startswith(other.account_prefix)):
                return (f"account numbers {r.account_prefix}... at {r.bank} may be "
                        f"generated by two ranges ({other.id_prefix}N and {r.id_prefix}N)")
    if not ranges:
        return None
    by_prefix = {r.id_prefix: r for r in ranges}
    by_bank: dict[str, list[CustomerRange]] = {}
    for r in ranges:
        by_bank.setdefault(r.bank, []).append(r)
    for cid, bank, account in listed:
        split = split_index(cid)
        hit = by_prefix.get(split[0]) if split is not None else None
        if hit is not None and hit.index_of_id(cid) is not None:
            return f"customer id {cid!r} is listed and generated by the range {hit.id_prefix}N"
        for r in by_bank.get(bank, ()):
            if r.index_of_account(account) is not None:
                return (f"account {account} at {bank} is listed and generated by the range "
                        f"{r.id_prefix}N")
    return None
