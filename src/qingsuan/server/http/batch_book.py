"""A checked batch file booked through the banks' bulk path (banks/bulk.py): its accounts
resolved against the world (any unknown one refuses the whole batch, naming the line),
then ONE logged ``banks.bulk`` command, and the outcome of each item.

Runs on the engine's writer (it reads the directory and logs): nothing is logged unless
every line resolves. What the bulk path does differently from single transfers (every
debit before any credit, no fee, an HVPS item that cannot settle at once given back) is in
banks/bulk.py's docstring; a payee must be an account of the world (the bulk path carries
customers by index), so an unknown creditor account refuses the batch rather than being
returned AC01 as a single transfer would be.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from qingsuan.banks import bulk
from qingsuan.banks.bulk import Route
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.ledger.types import MAX_TOTAL_FEN
from qingsuan.money import format_fen
from qingsuan.server.http import inputs
from qingsuan.server.http.batch_parse import Rows, refuse
from qingsuan.server.http.batch_store import Outcome
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from qingsuan.world import World

@dataclass
class AccountIndex:
    """(bank, account number) -> the customer's index in the directory's order (the bulk
    path's numbering), with each one's name; rebuilt when the directory grew."""

    size: int = -1
    by_number: dict[tuple[str, str], int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)

    def refresh(self, world: World) -> None:
        customers = world.banks.directory.by_id
        if len(customers) != self.size:
            self.by_number = {(c.bank, c.account): k
                              for k, c in enumerate(customers.values())}
            self.names = [c.name for c in customers.values()]
            self.size = len(customers)


def book(world: World, participant: str, rows: Rows, index: AccountIndex, at: str
         ) -> Outcome:
    """Resolve ``rows`` (ApiError naming the first bad line, nothing logged), then log them
    as one bulk command; the outcome of each item."""
    # the bulk path refuses (unlogged) a total that could overflow a balance: say so as a
    # 422 here rather than let its ValueError become a 500
    if float(rows.amount_fen.sum(dtype=np.float64)) >= MAX_TOTAL_FEN / 4:
        raise ApiError(422, "amount_too_large", "the batch's total is too large for the "
                       f"books (at most {format_fen(MAX_TOTAL_FEN // 4 - 1)}): split it",
                       "amount")
    index.refresh(world)
    payer = _payers(participant, rows, index)
    banks_of = _banks(world, rows)
    payee = _payees(world, rows, index, banks_of)
    same = np.flatnonzero(payer == payee)
    if same.size:
        raise refuse(rows.line[int(same[0])], rows.field("creditor_account"), ApiError(
            422, "same_account", "the debtor and creditor are the same account"))
    engine = world.engine
    beps_limit = world.cnaps.beps.item_limit_fen("ordinary_credit", engine.now_us) or 0
    same_bank = np.array([b == participant for b in banks_of], np.bool_)
    route = np.where(same_bank, Route.BOOK, np.where(
        rows.urgent, Route.IBPS, np.where(rows.amount_fen > beps_limit, Route.HVPS,
                                          Route.BEPS))).astype(np.int8)
    urgent = rows.urgent.astype(np.uint8)
    # (the body the banks will log: its digest lets a restart tell the outcome is real)
    digest = hashlib.sha256(bulk.encode(payer, payee, rows.amount_fen, urgent)).hexdigest()
    codes = world.banks.bulk_transfers(payer, payee, rows.amount_fen, urgent)
    return Outcome(f"B{engine.applied_seq}", participant, at, engine.applied_seq,
                   np.asarray(rows.line, np.int32), route, np.asarray(codes, np.int8),
                   rows.amount_fen, digest)


def _payers(participant: str, rows: Rows, index: AccountIndex) -> npt.NDArray[np.int64]:
    found = [index.by_number.get((participant, a)) for a in rows.debtor]
    if None in found:
        k = found.index(None)
        try:  # (not checked as text on the fast path: say first if it is no number)
            inputs.account(rows.debtor[k], "debtor_account")
        except ApiError as exc:
            raise refuse(rows.line[k], exc.field, exc) from None
        raise refuse(rows.line[k], "debtor_account", ApiError(
            422, "unknown_account", f"{participant} holds no account "
            f"{inputs.clip(rows.debtor[k])}"))
    return np.array(found, np.int64)


def _banks(world: World, rows: Rows) -> list[str]:
    """Each line's creditor bank as a member's name (a CNAPS name or a 12-digit code)."""
    directory, members = world.cnaps.directory, world.banks.members
    named: dict[str, str | None] = {}
    for token in set(rows.bank):
        receiver = directory.by_code(token) if token.isdigit() else \
            directory.get(token) if token in directory else None
        ok = receiver is not None and receiver.kind is not ParticipantKind.CARD_SWITCH \
            and receiver.name in members
        named[token] = receiver.name if ok and receiver is not None else None
    out = [named[b] for b in rows.bank]
    if None in out:
        k = out.index(None)
        raise refuse(rows.line[k], rows.field("creditor_bank"), ApiError(
            422, "unknown_participant", f"{inputs.clip(rows.bank[k])} is not a bank in this "
            "world (GET /v1/participants lists them)"))
    return [b for b in out if b is not None]


def _payees(world: World, rows: Rows, index: AccountIndex, banks_of: list[str]
            ) -> npt.NDArray[np.int64]:
    found = [index.by_number.get(key) for key in zip(banks_of, rows.account, strict=True)]
    if None in found:
        k = found.index(None)
        try:
            inputs.account(rows.account[k], rows.field("creditor_account"))
        except ApiError as exc:
            raise refuse(rows.line[k], exc.field, exc) from None
        raise refuse(rows.line[k], rows.field("creditor_account"), ApiError(
            422, "unknown_account", f"{banks_of[k]} holds no account "
            f"{inputs.clip(rows.account[k])} (a batch pays only accounts of this world)"))
    payee = np.array(found, np.int64)
    if world.banks.name_check():  # (a single transfer would be returned BE01)
        names = index.names
        wrong = [k for k, (p, n) in enumerate(zip(found, rows.name, strict=True))
                 if names[p or 0] != n]
        if wrong:
            k = wrong[0]
            raise refuse(rows.line[k], rows.field("creditor_name"), ApiError(
                422, "BE01", f"the name {inputs.clip(rows.name[k])} does not match account "
                f"{rows.account[k]} at {banks_of[k]}"))
    return payee
