"""The bulk path (批量): many customer transfers at once through the banks, as columns.

For the simulator: a batch of customer transfers (payer, payee, amount, urgent) is one
logged command, applied with numpy: each bank routes its customers' transfers (行内, HVPS,
BEPS, IBPS) by the same rules as one at a time (banks/routing.py), debits the payers (a
payer short of funds is refused: AM04), CNAPS settles or nets them in its simulation mode
(``Cnaps.rtgs_columns``, ``Cnaps.net_columns``), and the receiving banks credit the
payees. No record is kept per item: the command answers a code per item, and the banks
keep counts and values per route and outcome.

Where a batch differs from the same transfers sent one by one (on purpose, so that a batch
is one pass): every debit of the batch is booked before any credit (a payer cannot spend
within the batch what it receives in it); a payee whose account is closed is refused up
front (AC04) rather than returned; no channel fee is charged; an HVPS payment still
queued at the end of the batch, or sent while HVPS is closed, and a BEPS item still
queued behind its sender's cap, go back to the payer (the batch is a clearing cycle of
its own); BEPS and IBPS closed for maintenance take nothing (DT01).
"""

from __future__ import annotations

import json
import struct
import weakref
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.calendar import HvpsPhase
from qingsuan.cnaps.hvps import Priority
from qingsuan.cnaps.netting import ACCEPTED as NET_ACCEPTED
from qingsuan.cnaps.participants import SYSTEMS_PARAM
from qingsuan.cnaps.rtgs_batch import SETTLED
from qingsuan.ledger.types import MAX_TOTAL_FEN
from qingsuan.money import MAX_AMOUNT_FEN

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks

#: transfers one bulk command holds at most
MAX_BULK: Final = 4_000_000
_U32: Final = struct.Struct("<I")
_COLUMNS: Final = ("<u4", "<u4", "<i8", "<u1")

I64 = npt.NDArray[np.int64]
#: account ids up to this many more than a batch's items are tallied in a table by id
_DENSE_IDS: Final = 1 << 22


class Route(IntEnum):
    BOOK = 0
    HVPS = 1
    BEPS = 2
    IBPS = 3


class BulkCode(IntEnum):
    """The fate of one transfer of a batch (the reason code it stands for in brackets)."""

    CREDITED = 0      # the payee's account is credited
    OVER_LIMIT = 1    # urgent above the IBPS item limit (AM02)
    NO_FUNDS = 2      # the payer's account cannot pay it (AM04)
    CLOSED = 3        # the payer's or the payee's account is closed (AC04)
    NOT_SETTLED = 4   # HVPS closed, or still queued at the end of the batch: given back
    OVER_CAP = 5      # beyond the sender's net debit cap (IBPS AM14; BEPS queued): back
    BARRED = 6        # a participant that may not use the system (AG01)
    SYSTEM_CLOSED = 7  # BEPS or IBPS closed for maintenance (DT01)


def encode(payer: Any, payee: Any, amount_fen: Any, urgent: Any) -> bytes:
    """The command's body: a small JSON header, then the columns."""
    n = len(amount_fen)
    header = json.dumps({"n": n}).encode()
    return b"".join([_U32.pack(len(header)), header,
                     np.asarray(payer, "<u4").tobytes(), np.asarray(payee, "<u4").tobytes(),
                     np.asarray(amount_fen, "<i8").tobytes(),
                     np.asarray(urgent, "<u1").tobytes()])


def decode(body: bytes) -> tuple[I64, I64, I64, npt.NDArray[np.bool_]]:
    (hlen,) = _U32.unpack_from(body)
    n = int(json.loads(body[_U32.size:_U32.size + hlen])["n"])
    if not 0 < n <= MAX_BULK:
        raise ValueError(f"a bulk command holds 1 to {MAX_BULK} transfers, not {n}")
    buf = memoryview(body)[_U32.size + hlen:]
    cols = []
    offset = 0
    for dtype in _COLUMNS:
        arr = np.frombuffer(buf, np.dtype(dtype), count=n, offset=offset)
        offset += arr.nbytes
        cols.append(arr)
    if offset != len(buf):
        raise ValueError("a bulk command's columns do not fill its body")
    payer, payee, amount, urgent = cols
    return (payer.astype(np.int64), payee.astype(np.int64), amount.astype(np.int64),
            urgent.astype(np.bool_))


class Columns:
    """The directory as columns (derived from it, never stored): each customer's ledger
    account, bank (an index into the banks' members) and whether the account is closed;
    and each bank's transit accounts by route."""

    def __init__(self, b: Banks) -> None:
        assert b.engine is not None
        reg = b.engine.registry
        bank_index = {name: k for k, name in enumerate(b.members)}
        self.size = len(b.directory)
        self.account, self.bank, self.closed = b.directory.columns(reg, bank_index)
        #: [route, bank] -> the account a payer's debit goes to (BOOK row unused)
        self.outgoing = np.zeros((4, len(b.members)), np.int64)
        #: [route, bank] -> the account a payee's credit comes from
        self.incoming = np.zeros((4, len(b.members)), np.int64)
        for k, name in enumerate(b.members):
            self.outgoing[Route.HVPS, k] = reg.id(name, "hvps_outgoing")
            self.incoming[Route.HVPS, k] = reg.id(name, "hvps_incoming")
            for route in (Route.BEPS, Route.IBPS):
                acc = reg.id(name, f"{route.name.lower()}_clearing")
                self.outgoing[route, k] = self.incoming[route, k] = acc


def apply(b: Banks, body: bytes) -> npt.NDArray[np.int8]:
    """Apply one bulk command; a code (:class:`BulkCode`) per transfer."""
    assert b.engine is not None
    engine, cnaps = b.engine, b.cnaps
    payer, payee, amount, urgent = decode(body)
    cols = b.bulk_columns()
    if (payer >= cols.size).any() or (payee >= cols.size).any() or (amount <= 0).any() \
            or (payer == payee).any() or (amount > MAX_AMOUNT_FEN).any():
        raise ValueError("a bulk transfer names an unknown customer, the same account "
                         "twice, or an amount that is not positive or above the limit")
    if float(amount.sum(dtype=np.float64)) >= MAX_TOTAL_FEN / 4:  # no sum can overflow
        raise ValueError("a bulk command's total is too large for the books")
    now = engine.now_us
    n = len(amount)
    bp, bq = cols.bank[payer], cols.bank[payee]
    beps_limit = cnaps.beps.item_limit_fen("ordinary_credit", now) or 0
    ibps_limit = int(engine.params["ibps.item_limit"])
    route = np.where(bp == bq, Route.BOOK, np.where(
        urgent, Route.IBPS, np.where(amount > beps_limit, Route.HVPS, Route.BEPS)))
    code = np.full(n, BulkCode.CREDITED, np.int8)
    code[(route == Route.IBPS) & (amount > ibps_limit)] = BulkCode.OVER_LIMIT
    for r, barred in _barred(b).items():
        if barred.any():
            code[(route == r) & (barred[bp] | barred[bq])] = BulkCode.BARRED
    code[(cols.closed[payee] | cols.closed[payer]) & (code == BulkCode.CREDITED)] = \
        BulkCode.CLOSED
    for r in (Route.BEPS, Route.IBPS):
        if cnaps.net[r.name].closed:
            code[(route == r) & (code == BulkCode.CREDITED)] = BulkCode.SYSTEM_CLOSED
    hvps_open = cnaps.hvps.phase(now)[0] is HvpsPhase.OPEN
    if not hvps_open:
        code[(route == Route.HVPS) & (code == BulkCode.CREDITED)] = BulkCode.NOT_SETTLED
    # 1. the payers' banks debit them (within one bank: straight to the payee), each payer
    # in the batch's order: one that cannot pay an item is refused that one only
    live = np.flatnonzero(code == BulkCode.CREDITED)
    code[live[~_funded(engine, cols.account[payer[live]], amount[live])]] = BulkCode.NO_FUNDS
    live = np.flatnonzero(code == BulkCode.CREDITED)
    dest = np.where(route == Route.BOOK, cols.account[payee], cols.outgoing[route, bp])
    if live.size:
        engine.post_columns(cols.account[payer[live]], dest[live], amount[live])
    # 2. CNAPS: HVPS settles gross or queues; BEPS and IBPS net against the caps
    back: list[I64] = []
    hv = np.flatnonzero((code == BulkCode.CREDITED) & (route == Route.HVPS))
    if hv.size:
        priority = np.where(urgent[hv], int(Priority.URGENT), int(Priority.NORMAL))
        out = cnaps.rtgs_columns(b.members, bp[hv], bq[hv], amount[hv], priority,
                                 np.zeros(hv.size, np.uint8), now)
        waiting = hv[out.status != SETTLED]
        code[waiting] = BulkCode.NOT_SETTLED
        back.append(waiting)
    for r in (Route.BEPS, Route.IBPS):
        items = np.flatnonzero((code == BulkCode.CREDITED) & (route == r))
        if items.size:
            result = cnaps.net_columns(r.name, b.members, bp[items], bq[items],
                                       amount[items], None, now)
            refused = items[result.status != NET_ACCEPTED]
            code[refused] = BulkCode.OVER_CAP
            back.append(refused)
    # what CNAPS did not take goes back to the payer from where it was debited
    if back:
        undo = np.concatenate(back)
        if undo.size:
            engine.post_columns(dest[undo], cols.account[payer[undo]], amount[undo])
    # 3. the payees' banks credit them
    paid = np.flatnonzero((code == BulkCode.CREDITED) & (route != Route.BOOK))
    if paid.size:
        engine.post_columns(cols.incoming[route[paid], bq[paid]], cols.account[payee[paid]],
                            amount[paid])
    _count(b, route, code, amount)
    return code


#: each world's members barred from each system, and what that was worked out from (the
#: members and the parameters saying which kind may use which system): asked per batch,
#: it changes only with those
_BARRED: weakref.WeakKeyDictionary[Banks, tuple[tuple[object, ...], dict[
    Route, npt.NDArray[np.bool_]]]] = weakref.WeakKeyDictionary()


def _barred(b: Banks) -> dict[Route, npt.NDArray[np.bool_]]:
    """Per system, which members may not use it (their kind's ``cnaps.*_systems``)."""
    assert b.engine is not None
    params = b.engine.params
    key = (len(b.members), *(params[name] for name in SYSTEMS_PARAM.values()))
    held = _BARRED.get(b)
    if held is not None and held[0] == key:
        return held[1]
    masks = {r: np.array([b.cnaps.directory.barred(name, r.name, params) is not None
                          for name in b.members], np.bool_)
             for r in (Route.HVPS, Route.BEPS, Route.IBPS)}
    _BARRED[b] = (key, masks)
    return masks


def _funded(engine: Any, accounts: I64, amount: I64) -> npt.NDArray[np.bool_]:
    """Which debits each payer's account can bear, taken in order (a refused one does not
    count against the ones after it), exactly as the ledger would decide them one by one.
    A payer whose debits in the batch all fit is settled by one sum; only the items of the
    payers that run out are walked, and those only from their first shortfall."""
    n = len(amount)
    ok = np.ones(n, np.bool_)
    if n == 0:
        return ok
    top = int(accounts.max()) + 1
    if top <= 4 * n + _DENSE_IDS:
        # the registry's ids are dense: a table by account id instead of a sort (np.unique
        # was most of this function's time on a batch of millions)
        total = np.zeros(top, np.int64)
        np.add.at(total, accounts, amount)
        payers = np.flatnonzero(total)  # every amount is positive
        headroom = np.zeros(top, np.int64)
        headroom[payers] = engine.ledger.debit_headroom_fen(payers)
        slot = accounts
    else:
        payers, slot = np.unique(accounts, return_inverse=True)
        headroom = engine.ledger.debit_headroom_fen(payers)
        total = np.zeros(len(payers), np.int64)
        np.add.at(total, slot, amount)
    short_payer = total > headroom
    if not short_payer.any():
        return ok
    items = np.flatnonzero(short_payer[slot])  # in the batch's order
    order = items[np.argsort(slot[items], kind="stable")]
    group = slot[order]
    amt_sorted = amount[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    running = np.cumsum(amt_sorted)
    before_group = np.repeat(np.r_[0, running[starts[1:] - 1]], sizes)
    group_headroom = np.repeat(headroom[group[starts]], sizes)
    short = (running - before_group) > group_headroom
    first_short = np.flatnonzero(short)
    group_index = np.repeat(np.arange(len(starts)), sizes)
    gs, first = np.unique(group_index[first_short], return_index=True)
    for g, f in zip(gs.tolist(), first_short[first].tolist(), strict=True):
        lo = int(starts[g])
        hi = int(starts[g + 1]) if g + 1 < len(starts) else len(order)
        left = int(group_headroom[f]) - (int(running[f - 1] - before_group[f - 1])
                                         if f > lo else 0)
        for k in range(f, hi):
            a = int(amt_sorted[k])
            if a <= left:
                left -= a
            else:
                ok[order[k]] = False
    return ok


def _count(b: Banks, route: I64, code: npt.NDArray[np.int8], amount: I64) -> None:
    """The banks' tally of bulk transfers: count and value per route and outcome."""
    key = route * 16 + code
    counts = np.bincount(key, minlength=64)
    values = np.zeros(64, np.int64)  # money stays integer fen (no bincount weights)
    np.add.at(values, key, amount)
    for found in np.flatnonzero(counts):
        k = int(found)
        value = int(values[k])
        name = f"{Route(k // 16).name}:{BulkCode(k % 16).name.lower()}"
        count, total = b.bulk_tally.get(name, (0, 0))
        b.bulk_tally[name] = (count + int(counts[k]), total + value)
