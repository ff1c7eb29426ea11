"""The banks' card batch (银行卡批量): many card purchases and withdrawals at once, as
columns, through the card switch's batch entry (cards/batch.py).

For the simulator: a batch of card transactions (cardholder, acceptor, amount, kind, card
kind) is one logged command (``banks.cards``). The cardholder is a customer of the issuer
(its bank); a purchase's acceptor is a merchant customer, whose bank acquires it and whose
discount rate (its ``mdr_ppm`` in the directory) the acquirer charges; a withdrawal's
acceptor is an ATM of the world, whose bank acquires it. A merchant without a discount
rate of its own in the directory is charged the batch's (its header's ``mdr_ppm``). The
switch decides each item by the issuer's rule, the banks' books take the approved ones as
the per-request path books them, and the day's cut-off clears and settles them with the
rest (docs/CARDS.md, "The batch entry"). No record is kept per item: the command answers
a response code per item, and the banks keep counts and values per kind and outcome.
"""

from __future__ import annotations

import json
import struct
import weakref
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.cards import batch, clearing
from qingsuan.cards.records import SWITCH
from qingsuan.ledger.types import MAX_TOTAL_FEN
from qingsuan.money import MAX_AMOUNT_FEN

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks

#: card transactions one command holds at most
MAX_CARD_BULK: Final = 4_000_000
_U32: Final = struct.Struct("<I")
#: one transaction of a command: cardholder, acceptor (customer or ATM index), amount,
#: kind, card kind (packed: 18 bytes)
_RECORD: Final = np.dtype([("cardholder", "<u4"), ("acceptor", "<u4"), ("amount", "<i8"),
                           ("kind", "<u1"), ("card_kind", "<u1")])
_FIELDS: Final = ("cardholder", "acceptor", "amount", "kind", "card_kind")
#: the kinds a batch carries (cards/clearing.py's numbering)
KINDS: Final = {clearing.PURCHASE: "purchase", clearing.WITHDRAWAL: "withdrawal"}

I64 = npt.NDArray[np.int64]


def encode(cardholder: Any, acceptor: Any, amount_fen: Any, kind: Any, card_kind: Any,
           mdr_ppm: int = 0) -> bytes:
    """The command's body: a small JSON header (the count, the discount rate of merchants
    without one of their own), then one packed record per transaction."""
    header = json.dumps({"n": len(amount_fen), "mdr_ppm": mdr_ppm}).encode()
    rows = np.zeros(len(amount_fen), _RECORD)
    for name, col in zip(_FIELDS, (cardholder, acceptor, amount_fen, kind, card_kind),
                         strict=True):
        rows[name] = col
    return _U32.pack(len(header)) + header + rows.tobytes()


def decode(body: bytes) -> tuple[I64, I64, I64, I64, I64, int]:
    (hlen,) = _U32.unpack_from(body)
    header = json.loads(body[_U32.size:_U32.size + hlen])
    n, mdr = int(header["n"]), int(header["mdr_ppm"])
    if not 0 <= mdr <= 1_000_000:
        raise ValueError(f"a discount rate is 0 to 1,000,000 ppm, not {mdr}")
    if not 0 < n <= MAX_CARD_BULK or len(body) != _U32.size + hlen + n * _RECORD.itemsize:
        raise ValueError(f"a card batch holds 1 to {MAX_CARD_BULK} transactions of "
                         f"{_RECORD.itemsize} bytes each")
    rows = np.frombuffer(body, _RECORD, count=n, offset=_U32.size + hlen)
    cardholder, acceptor, amount, kind, card_kind = (
        rows[name].astype(np.int64) for name in _FIELDS)
    return cardholder, acceptor, amount, kind, card_kind, mdr


class CardColumns:
    """What a card batch needs of the world as columns (derived, never stored): each
    customer's discount rate (-1: none of its own), each member's card accounts, the ATMs."""

    def __init__(self, b: Banks) -> None:
        assert b.engine is not None
        reg = b.engine.registry
        self.size = len(b.directory)
        self.mdr_ppm = np.array([-1 if c.mdr_ppm is None else c.mdr_ppm
                                 for c in b.directory.by_id.values()], np.int64)
        self.members = len(b.members)
        self.names = [*b.members, SWITCH]
        self.due_to_switch = np.array([reg.id(n, "due_to_switch") for n in b.members],
                                      np.int64)
        self.due_from_switch = np.array([reg.id(n, "due_from_switch") for n in b.members],
                                        np.int64)
        self.due_to_merchants = np.array([reg.id(n, "due_to_merchants") for n in b.members],
                                         np.int64)
        where = {name: k for k, name in enumerate(b.members)}
        atms = [(tid, bank) for tid, (bank, kind) in b.terminals.items() if kind == "atm"]
        self.atm_cash = np.array([reg.id(bank, f"atm_cash:{tid}") for tid, bank in atms],
                                 np.int64)
        self.atm_bank = np.array([where[bank] for _, bank in atms], np.int64)


_COLUMNS_OF: weakref.WeakKeyDictionary[Banks, CardColumns] = weakref.WeakKeyDictionary()


def columns(b: Banks) -> CardColumns:
    """The world's card columns (rebuilt when the directory or the members grew)."""
    held = _COLUMNS_OF.get(b)
    if held is None or held.size != len(b.directory) or held.members != len(b.members):
        held = _COLUMNS_OF[b] = CardColumns(b)
    return held


def check(b: Banks, cardholder: I64, acceptor: I64, amount: I64, kind: I64,
          card_kind: I64) -> None:
    """Raise ValueError for a batch that cannot be applied (nothing is logged then)."""
    n = len(amount)
    if any(len(c) != n for c in (cardholder, acceptor, kind, card_kind)):
        raise ValueError("cardholder, acceptor, amount, kind and card kind must have one "
                         "value per transaction")
    if not n:
        return
    size, atms = len(b.directory), len(columns(b).atm_cash)
    if not np.isin(kind, list(KINDS)).all() or not np.isin(
            card_kind, (clearing.DEBIT, clearing.CREDIT)).all():
        raise ValueError("kind must be 0 (purchase) or 1 (withdrawal), card kind 0 (debit) "
                         "or 1 (credit)")
    purchase = kind == clearing.PURCHASE
    if cardholder.min() < 0 or cardholder.max() >= size or acceptor.min() < 0 or \
            (acceptor[purchase] >= size).any() or (acceptor[~purchase] >= atms).any():
        raise ValueError(f"cardholders and merchants are customers 0 to {size - 1}, ATMs "
                         f"0 to {atms - 1}")
    if (purchase & (cardholder == acceptor)).any():
        raise ValueError("a cardholder cannot buy from its own account")
    if (amount <= 0).any() or int(amount.max()) > MAX_AMOUNT_FEN:
        raise ValueError(f"every amount must be from 1 to {MAX_AMOUNT_FEN} fen")
    if float(amount.sum(dtype=np.float64)) >= MAX_TOTAL_FEN / 4:
        raise ValueError("the batch's total is too large for the books")
    closed = b.bulk_columns().closed
    if closed[cardholder].any() or closed[acceptor[purchase]].any():
        raise ValueError("a card batch names a closed account")
    if not purchase.all():  # the ATMs pay out: each must hold what it may be asked for
        cash = columns(b).atm_cash
        asked = np.zeros(len(cash), np.int64)
        np.add.at(asked, acceptor[~purchase], amount[~purchase])
        assert b.engine is not None
        ledger = b.engine.ledger
        if any(int(asked[k]) > ledger.available_fen(int(cash[k]))
               for k in np.flatnonzero(asked).tolist()):
            raise ValueError("a card batch's withdrawals could take more cash than an ATM "
                             "holds: send those one at a time")


def apply(b: Banks, body: bytes) -> npt.NDArray[np.uint8]:
    """Apply one card batch; a response code per transaction (cards/batch.py)."""
    assert b.engine is not None
    cardholder, acceptor, amount, kind, card_kind, default_mdr = decode(body)
    check(b, cardholder, acceptor, amount, kind, card_kind)
    cols, accounts = columns(b), b.bulk_columns()
    issuer = accounts.bank[cardholder]
    purchase = kind == clearing.PURCHASE
    shop = np.where(purchase, acceptor, 0)
    atm = np.where(purchase, 0, acceptor)
    mdr = cols.mdr_ppm[shop]
    mdr = np.where(mdr < 0, default_mdr, mdr)  # a merchant's own rate, else the batch's
    acquirer = np.where(purchase, accounts.bank[shop], cols.atm_bank[atm] if len(
        cols.atm_bank) else 0)
    items = batch.Items(
        cols.names, issuer, acquirer, accounts.account[cardholder],
        np.where(purchase, cols.due_to_merchants[acquirer],
                 cols.atm_cash[atm] if len(cols.atm_cash) else 0),
        cols.due_to_switch[issuer], cols.due_from_switch[acquirer],
        np.where(purchase, accounts.account[shop], -1),
        np.where(purchase, mdr, 0), kind, card_kind, amount)
    now = b.engine.now_us
    rc = batch.authorise(b.switch, items, now)
    batch.book(b.switch, items, rc)
    batch.record(b.switch, items, rc, now)
    _count(b, kind, rc, amount)
    return rc


def _count(b: Banks, kind: I64, rc: npt.NDArray[np.uint8], amount: I64) -> None:
    """The banks' tally of card batches: count and value per kind and response code
    (``CUPS:purchase:00``), beside the bulk path's."""
    for k, name in KINDS.items():
        for code in np.unique(rc[kind == k]).tolist():
            mine = (kind == k) & (rc == code)
            key = f"CUPS:{name}:{code:02d}"
            count, total = b.bulk_tally.get(key, (0, 0))
            b.bulk_tally[key] = (count + int(mine.sum()), total + int(amount[mine].sum()))
