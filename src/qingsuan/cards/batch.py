"""The switch's batch entry (批量授权): many card purchases and withdrawals at once, as
columns, for a simulated day of millions of transactions (docs/CARDS.md, "The batch entry").

One batch is part of one logged command (the banks' ``banks.cards``, banks/card_bulk.py)
and stands for an instant: every item has the command's time, so its clearing day (field
15) and the day of its withdrawal allowance. Each item is decided by the issuer's own rule
(:func:`qingsuan.banks.issuer.authorise`, the per-request path's) for a card whose PIN the
terminal verified: the daily withdrawal allowance (61) and the funds or credit limit of the
cardholder's account (51), taken in the batch's order per cardholder, so a declined item
does not count against the ones after it. Approved items are booked as the per-request
path books them (the issuer debits the cardholder and owes the switch; the acquirer is
owed by the switch and owes the merchant or paid the ATM's cash), through the ledger's
vector path, and cleared at once into the day's totals: fees per item by
:func:`qingsuan.cards.clearing.clear` with the parameters in force, positions, the on-us
amounts and each merchant's takings and MDR. The cut-off closes them with the day's
per-request transactions (cards/dayclose.py): the same postings, the same payouts, the same
positions for the CUPS net system's next session.

What a batch keeps no record of: the items themselves (no ``CardTxn``, no clearing-file
line, no reversal, void, refund or dispute of them); what it answers is a response code
per item. Its fees are fixed with the fee parameters of the moment it is applied (the
per-request path's at the cut-off): a fee parameter changed between a batch and its
cut-off applies to later batches only.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.banks import issuer
from qingsuan.cards import clearing
from qingsuan.cards.records import SWITCH, mdr_fen

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: the response codes a batch item gets, as numbers (ISO 8583 field 39)
APPROVED: Final = 0
NO_FUNDS: Final = 51
OVER_WITHDRAWAL_LIMIT: Final = 61
#: what the stand-in card and its terminal carry: the PIN the terminal verified
_VERIFIED: Final = "verified"


#: a cleared batch day's figures per participant (:attr:`CardSwitch.batch_cleared`), and
#: ``mdr_fen``: the discount its merchants paid it (an acquirer's)
CLEARED_KEYS: Final = ("items", "owed_fen", "due_fen", "fees_paid_fen", "fees_received_fen",
                       "position_fen")


@dataclass(frozen=True, slots=True)
class Items:
    """One batch as columns (each of one value per item): the issuer and the acquirer
    (indices into ``names``, the switch's place there being :data:`SWITCH`'s), the
    cardholder's account and the account the acquirer credits (its ``due_to_merchants``
    for a purchase, the ATM's cash for a withdrawal; ledger ids), the issuer's
    ``due_to_switch`` and the acquirer's ``due_from_switch`` (ledger ids), the merchant's
    account (ledger id, -1 for a withdrawal) and its discount rate (ppm), the kind
    (:data:`clearing.PURCHASE` or :data:`clearing.WITHDRAWAL`), the card kind
    (:data:`clearing.DEBIT` or :data:`clearing.CREDIT`) and the amount (fen, above 0)."""

    names: list[str]
    issuer: I64
    acquirer: I64
    cardholder: I64
    acceptor: I64
    due_to_switch: I64
    due_from_switch: I64
    merchant: I64
    mdr_ppm: I64
    kind: I64
    card_kind: I64
    amount_fen: I64


@dataclass(slots=True)
class BatchDay:
    """What batches brought to one clearing day, until its cut-off: per participant (a
    row of ``totals`` per name of ``names``) the clearing totals, per bank the on-us
    amount, per merchant (indexed by its ledger id) the takings, the MDR and its acquirer
    (a row of ``totals``)."""

    #: the participants of ``totals``' rows
    names: list[str] = field(default_factory=list)
    #: per participant: items, owed (pays gross), due (receives gross), fees paid, fees
    #: received, position (:data:`CLEARED_KEYS`)
    totals: I64 = field(default_factory=lambda: np.zeros((0, len(CLEARED_KEYS)), np.int64))
    onus_fen: dict[str, int] = field(default_factory=dict)
    takings_fen: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    mdr_fen: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    acquirer: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def by_name(self) -> dict[str, list[int]]:
        """The participants with a figure, each its :data:`CLEARED_KEYS` figures."""
        return {self.names[k]: [int(x) for x in self.totals[k]]
                for k in np.flatnonzero(self.totals.any(axis=1)).tolist()}

    def merchants(self) -> I64:
        """The ledger ids of the merchants with takings."""
        return np.flatnonzero(self.takings_fen)

    def align(self, names: list[str]) -> None:
        """Rows in the order of ``names`` (the world's members grew since the last batch;
        figures kept by name)."""
        if self.names is names or self.names == names:
            return
        held = self.by_name()
        where = {name: k for k, name in enumerate(names)}
        missing = [n for n in self.names if n not in where]
        assert not missing, f"participants left the world: {missing}"
        remap = np.array([where[n] for n in self.names] or [0], np.int64)
        self.acquirer = remap[self.acquirer]
        self.names = list(names)
        self.totals = np.zeros((len(names), len(CLEARED_KEYS)), np.int64)
        for name, row in held.items():
            self.totals[where[name]] = row

    def grow(self, size: int) -> None:
        """Room for merchant ledger ids below ``size``."""
        if len(self.takings_fen) < size:
            more = max(size, 2 * len(self.takings_fen)) - len(self.takings_fen)
            zeros = np.zeros(more, np.int64)
            self.takings_fen = np.concatenate([self.takings_fen, zeros])
            self.mdr_fen = np.concatenate([self.mdr_fen, zeros])
            self.acquirer = np.concatenate([self.acquirer, zeros])

    def to_state(self) -> dict[str, Any]:
        ids = self.merchants()
        return {"names": self.names, "totals": self.totals.tolist(), "onus": self.onus_fen,
                "merchants": np.stack([ids, self.takings_fen[ids], self.mdr_fen[ids],
                                       self.acquirer[ids]], axis=1).tolist()}

    @classmethod
    def from_state(cls, doc: dict[str, Any]) -> BatchDay:
        day = cls(list(doc["names"]), np.array(doc["totals"], np.int64).reshape(
            len(doc["names"]), len(CLEARED_KEYS)), {k: int(v) for k, v in doc["onus"].items()})
        rows = np.array(doc["merchants"], np.int64).reshape(-1, 4)
        day.grow(int(rows[:, 0].max()) + 1 if len(rows) else 0)
        ids = rows[:, 0]
        day.takings_fen[ids], day.mdr_fen[ids], day.acquirer[ids] = rows[:, 1], rows[:, 2], \
            rows[:, 3]
        return day


@dataclass(slots=True)
class _Card:
    """The issuer's card record for a batch item: active, its PIN verified at the
    terminal (the batch carries no PIN), of the item's card kind."""

    kind: str
    pin_hash: str | None = _VERIFIED
    status: str = "active"
    wrong_pins: int = 0


def authorise(sw: CardSwitch, items: Items, now_us: int) -> U8:
    """Each item's response code (:data:`APPROVED`, :data:`OVER_WITHDRAWAL_LIMIT`,
    :data:`NO_FUNDS`), as the issuer decides them one by one in the batch's order. A
    cardholder whose items all fit (funds and withdrawal allowance) is settled with sums;
    only the others are walked, item by item, through the issuer's rule."""
    assert sw.engine is not None
    n = len(items.amount_fen)
    rc = np.zeros(n, np.uint8)
    if n == 0:
        return rc
    engine = sw.engine
    rules = sw.issuer_rules()
    day = sw._day(now_us)
    holders, slot = np.unique(items.cardholder, return_inverse=True)
    headroom = engine.ledger.debit_headroom_fen(holders)
    total = np.zeros(len(holders), np.int64)
    np.add.at(total, slot, items.amount_fen)
    withdrawal = items.kind == clearing.WITHDRAWAL
    cash = np.zeros(len(holders), np.int64)
    used = np.zeros(len(holders), np.int64)
    if withdrawal.any():
        np.add.at(cash, slot[withdrawal], items.amount_fen[withdrawal])
        for h in np.flatnonzero(cash).tolist():
            used[h] = sw.daily.get(_allowance_key(sw, int(holders[h]), day), 0)
    short = (total > headroom) | (used + cash > rules.daily_withdrawal_limit_fen)
    for h in np.flatnonzero(short).tolist():
        rows = np.flatnonzero(slot == h)
        left, spent = int(headroom[h]), int(used[h])
        for i in rows.tolist():
            amount = int(items.amount_fen[i])
            proc = "01" if withdrawal[i] else "00"
            card = _Card("credit" if items.card_kind[i] == clearing.CREDIT else "debit")
            # available - amount < -limit is the issuer's test: the headroom is both
            code = issuer.authorise(card, pin_hash=_VERIFIED, proc=proc, amount_fen=amount,
                                    at_atm=proc == "01", available_fen=left,
                                    overdraft_limit_fen=0, withdrawn_today_fen=spent,
                                    rules=rules)
            if code == "00":
                left -= amount
                spent += amount if proc == "01" else 0
            else:
                rc[i] = int(code)
    ok = rc == APPROVED
    taken = np.zeros(len(holders), np.int64)
    np.add.at(taken, slot[ok & withdrawal], items.amount_fen[ok & withdrawal])
    for h in np.flatnonzero(taken).tolist():
        key = _allowance_key(sw, int(holders[h]), day)
        sw.daily[key] = sw.daily.get(key, 0) + int(taken[h])
    return rc


def _allowance_key(sw: CardSwitch, account_id: int, day: str) -> str:
    """A batch names accounts, not cards: its withdrawals count against the daily
    allowance of the account's first card in the switch's card file (the one the
    per-request path counts, ``CardSwitch.daily``), or of the account when it has none."""
    assert sw.engine is not None
    name = sw.engine.registry.name(account_id)
    held = _CARD_OF.get(sw)
    if held is None or held[0] != (id(sw.cards), len(sw.cards)):
        first: dict[str, str] = {}
        for card in sw.cards.values():
            first.setdefault(card.account, card.token)
        held = _CARD_OF[sw] = ((id(sw.cards), len(sw.cards)), first)
    return f"{held[1].get(name, name)}|{day}"


#: each switch's cardholder accounts -> their first card's token (derived from the card
#: file, rebuilt when it grew or was loaded; cards are only ever added)
_CARD_OF: weakref.WeakKeyDictionary[CardSwitch, tuple[tuple[int, int], dict[str, str]]] = \
    weakref.WeakKeyDictionary()


def book(sw: CardSwitch, items: Items, rc: U8) -> None:
    """The approved items' postings, as the per-request path's legs (switch.py
    ``_issuer_leg``, ``_acquirer_leg``), in two vector posts."""
    assert sw.engine is not None
    ok = np.flatnonzero(rc == APPROVED)
    if not ok.size:
        return
    amount = items.amount_fen[ok]
    sw.engine.post_columns(np.concatenate([items.cardholder[ok], items.due_from_switch[ok]]),
                           np.concatenate([items.due_to_switch[ok], items.acceptor[ok]]),
                           np.concatenate([amount, amount]))


def record(sw: CardSwitch, items: Items, rc: U8, now_us: int) -> BatchDay | None:
    """The approved items into their clearing day's totals (the switch's
    :attr:`~qingsuan.cards.switch.CardSwitch.batch_days`); the day, or None if nothing
    was approved."""
    assert sw.engine is not None
    ok = rc == APPROVED
    if not ok.any():
        return None
    day = sw.batch_days.setdefault(sw._clearing_date(now_us), BatchDay())
    names = items.names
    day.align(names)
    onus = ok & (items.issuer == items.acquirer)
    if onus.any():
        per_bank = np.zeros(len(names), np.int64)
        np.add.at(per_bank, items.acquirer[onus], items.amount_fen[onus])
        for k in np.flatnonzero(per_bank).tolist():
            day.onus_fen[names[k]] = day.onus_fen.get(names[k], 0) + int(per_bank[k])
    inter = np.flatnonzero(ok & (items.issuer != items.acquirer))
    if inter.size:
        _clear_into(sw, day, items, inter)
    shop = np.flatnonzero(ok & (items.merchant >= 0))
    if shop.size:
        merchant, amount = items.merchant[shop], items.amount_fen[shop]
        day.grow(int(merchant.max()) + 1)
        np.add.at(day.takings_fen, merchant, amount)
        np.add.at(day.mdr_fen, merchant, mdr_fen(amount, items.mdr_ppm[shop]))
        day.acquirer[merchant] = items.acquirer[shop]  # a merchant's bank acquires it
    return day


def _clear_into(sw: CardSwitch, day: BatchDay, items: Items, rows: I64) -> None:
    """The interbank items' fees and positions (cards/clearing.py) added to the day's."""
    from qingsuan.cards.dayclose import fee_schedule

    assert sw.engine is not None
    names = items.names
    switch = names.index(SWITCH)
    result = clearing.clear(items.issuer[rows], items.acquirer[rows], items.kind[rows],
                            items.card_kind[rows], items.amount_fen[rows],
                            n_participants=len(names), switch=switch,
                            schedule=fee_schedule(sw.engine.params))
    amount = items.amount_fen[rows]
    owed = np.zeros(len(names), np.int64)
    due = np.zeros(len(names), np.int64)
    np.add.at(owed, items.issuer[rows], amount)  # purchases and withdrawals: issuer pays
    np.add.at(due, items.acquirer[rows], amount)
    day.totals += np.stack([result.count, owed, due, result.fees_paid_fen,
                            result.fees_received_fen, result.positions_fen], axis=1)


def take_day(sw: CardSwitch, day: str) -> BatchDay | None:
    """The batches' part of a clearing day, at its cut-off (cards/dayclose.py); its
    per-participant figures stay in :attr:`CardSwitch.batch_cleared` for reports."""
    found = sw.batch_days.pop(day, None)
    if found is not None:
        figures = {name: dict(zip(CLEARED_KEYS, t, strict=True))
                   for name, t in found.by_name().items()}
        ids = found.merchants()
        mdr = np.zeros(len(found.names), np.int64)
        np.add.at(mdr, found.acquirer[ids], found.mdr_fen[ids])
        for k in np.flatnonzero(mdr).tolist():
            held = figures.setdefault(found.names[k], dict.fromkeys(CLEARED_KEYS, 0))
            held["mdr_fen"] = int(mdr[k])
        sw.batch_cleared[day] = dict(sorted(figures.items()))
    return found


def payouts(sw: CardSwitch, day: BatchDay, apart: set[str]
            ) -> tuple[dict[str, tuple[str, int, int]], list[I64]]:
    """The day's merchant payouts of the batches (收单清算, each acquirer pays its
    merchants the takings less the MDR, its fee income): for the merchants named in
    ``apart`` (those the day's per-request transactions or an earlier debt also concern),
    by ledger name (acquirer, takings, MDR) for :func:`dayclose.merchant_payouts` to
    settle with the rest; for the others at once, as posting columns (debit, credit,
    amount): the payouts, then each acquirer's MDR to its fee income."""
    assert sw.engine is not None
    reg = sw.engine.registry
    ids = day.merchants()
    apart_ids = [reg.account_id(n) for n in apart if reg.has(n)]
    named = np.isin(ids, apart_ids)
    out = {}
    for m in ids[named].tolist():
        out[reg.name(m)] = (day.names[int(day.acquirer[m])], int(day.takings_fen[m]),
                            int(day.mdr_fen[m]))
    rest = ids[~named]
    acquirers = [k for k, n in enumerate(day.names) if n != SWITCH]
    owed_to = np.full(len(day.names), -1, np.int64)
    fee_income = np.full(len(day.names), -1, np.int64)
    for k in acquirers:
        owed_to[k] = reg.id(day.names[k], "due_to_merchants")
        fee_income[k] = reg.id(day.names[k], "fee_income")
    acquirer = day.acquirer[rest]
    pay = day.takings_fen[rest] - day.mdr_fen[rest]
    mdr = np.zeros(len(day.names), np.int64)
    np.add.at(mdr, acquirer, day.mdr_fen[rest])
    paid, charged = pay > 0, np.flatnonzero(mdr)
    assert (owed_to[acquirer] >= 0).all(), "a merchant without an acquiring bank"
    return out, [np.concatenate([owed_to[acquirer[paid]], owed_to[charged]]),
                 np.concatenate([rest[paid], fee_income[charged]]),
                 np.concatenate([pay[paid], mdr[charged]])]
