"""HVPS simulation mode: a day's payments through RTGS queues in one tight pass.

The analyst's simulator feeds HVPS a million payments at a time. Building an object, a log
entry and three ledger postings per payment would cap it near 20,000 payments a second, so
simulation mode runs the same rules as :class:`qingsuan.cnaps.hvps.Hvps` (gross settlement
when covered, six FIFO levels, every incoming credit retrying the receiver's queue at once)
over plain columns, and hands back columns: each payment's status, the order in which the
payments settled and when. The ledger is then posted in bulk (``post_settlements``): every
settlement gross in the PBOC's book, the participants' mirrors by their net movement.

Gridlock resolution (LSM, ``hvps.lsm``) runs once at the end of a batch, on what is still
queued (the batch stands for an instant: the queueing of its payments is one event), with
the algorithms of ``cnaps/gridlock.py``; what it settles is posted as HVPS settles it
together (``post_together``: every credit first, through the PBOC's clearing account).

Tests run random instances through both this and the per-payment engine path and compare
the outcomes payment by payment.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from qingsuan.cnaps import gridlock
from qingsuan.ledger import TransferBatch

if TYPE_CHECKING:
    from qingsuan.engine import Engine

I64 = npt.NDArray[np.int64]

QUEUED: Final = 0
SETTLED: Final = 1
LEVELS: Final = 6
_NONE: Final = LEVELS  # "no queued payment" as a level


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    #: per payment: SETTLED or QUEUED (still waiting at the end of the batch)
    status: npt.NDArray[np.int8]
    #: indices of settled payments in the order they settled
    settle_order: I64
    #: per payment: index of the arrival that triggered its settlement (itself when it
    #: settled on arrival), -1 if still queued
    settled_at_arrival: I64
    #: balances after the batch
    balance: I64
    #: per payment: how it settled: gridlock.STAYS (gross, on arrival or released from
    #: the queue, or still queued), gridlock.BILATERAL or gridlock.MULTILATERAL (settled
    #: together by gridlock resolution at the end of the batch)
    settled_by: npt.NDArray[np.int8]

    @staticmethod
    def nothing(n: int, participants: int) -> BatchOutcome:
        """Every payment still queued (HVPS not open)."""
        return BatchOutcome(np.zeros(n, np.int8), np.zeros(0, np.int64),
                            np.full(n, -1, np.int64), np.zeros(participants, np.int64),
                            np.zeros(n, np.int8))



def run_rtgs(balance: npt.ArrayLike, sender: npt.ArrayLike, receiver: npt.ArrayLike,
             amount: npt.ArrayLike, priority: npt.ArrayLike, *, bypass_fifo: bool = False,
             start_queued: npt.ArrayLike | None = None, lsm: str = "off",
             bilateral_candidates: int = 100, retry_rank: npt.ArrayLike | None = None
             ) -> BatchOutcome:
    """Process payments in arrival order under HVPS's queue rules.

    ``balance[p]``: what participant p can pay (balance plus unused credit), int fen.
    Payments are indexed in arrival order; ``priority`` 0 (correction) to 5 (normal).
    ``start_queued``: payments already waiting from an earlier batch (they enter the queues
    without a settlement attempt, ahead of this batch's arrivals). ``lsm``: gridlock
    resolution run once what the batch brings has been tried (``hvps.lsm``'s choices;
    ``off``: none), split into its bilateral and multilateral steps (gridlock.resolve);
    its receivers' queues are then retried as after any settlement, in the order of
    ``retry_rank`` (Hvps retries them by name; default: by index).
    """
    bal: list[int] = np.asarray(balance, np.int64).tolist()
    snd: list[int] = np.asarray(sender, np.int64).tolist()
    rcv: list[int] = np.asarray(receiver, np.int64).tolist()
    amt: list[int] = np.asarray(amount, np.int64).tolist()
    pri: list[int] = np.asarray(priority, np.int64).tolist()
    n = len(snd)
    if not (len(rcv) == len(amt) == len(pri) == n):
        raise ValueError("sender, receiver, amount and priority must have one row per payment")
    if n and (min(amt) <= 0 or min(pri) < 0 or max(pri) >= LEVELS):
        raise ValueError("amounts must be positive and priorities 0..5")
    participants = len(bal)
    # a participant's six queues are made when it first queues something (most of 2,000
    # participants never do in a batch); read only where qmin says something is queued
    queues: defaultdict[int, list[deque[int]]] = defaultdict(
        lambda: [deque() for _ in range(LEVELS)])
    qmin = [_NONE] * participants  # most urgent level with something queued
    status = bytearray(n)
    order: list[int] = []
    trigger = [-1] * n
    step = bytearray(n)
    append = order.append
    waiting: list[bool] = ([False] * n if start_queued is None
                           else np.asarray(start_queued, bool).tolist())

    # payments still waiting from an earlier batch (a prefix) re-enter their queues first;
    # then every queue gets one release attempt, as funds may have come in meanwhile
    first = 0
    while first < n and waiting[first]:
        queues[snd[first]][pri[first]].append(first)
        qmin[snd[first]] = min(qmin[snd[first]], pri[first])
        first += 1
    if any(waiting[first:]):
        raise ValueError("start_queued must mark a prefix of the batch")
    pending_release = [x for x in range(participants) if qmin[x] != _NONE]

    # i = n is not an arrival: the batch's gridlock resolution, once everything is in
    for i in range(first - 1 if pending_release else first, n + 1 if lsm != "off" else n):
        t = i  # the arrival that triggers what settles now
        if first <= i < n:
            s = snd[i]
            a = amt[i]
            lv = pri[i]
            if (qmin[s] <= lv and not bypass_fifo) or bal[s] < a:
                queues[s][lv].append(i)
                if lv < qmin[s]:
                    qmin[s] = lv
                continue
            r = rcv[i]
            bal[s] -= a
            bal[r] += a
            status[i] = SETTLED
            trigger[i] = i
            append(i)
            if qmin[r] == _NONE:
                continue
            start = [r]
        elif i == n:
            t = n - 1
            start = _resolve_gridlock(bal, snd, rcv, amt, pri, queues, qmin, status, step, lsm,
                                      bilateral_candidates, retry_rank)
            for j in np.flatnonzero(np.frombuffer(bytes(step), np.int8)).tolist():
                trigger[j] = t
                append(j)
        else:  # the one-off release attempt for queues carried over
            start = pending_release
        # the receiver's own queue may move now, and so on down the chain, in the same
        # order as Hvps._after_settlement (first come, first retried)
        work = deque(start)
        while work:
            x = work.popleft()
            released: list[int] = []
            progress = True
            while progress and qmin[x] != _NONE:
                progress = False
                for level in range(qmin[x], LEVELS):
                    q = queues[x][level]
                    k = 0
                    while k < len(q):
                        j = q[k]
                        if bal[x] >= amt[j]:
                            del q[k]
                            y = rcv[j]
                            bal[x] -= amt[j]
                            bal[y] += amt[j]
                            status[j] = SETTLED
                            trigger[j] = t
                            append(j)
                            released.append(y)
                            progress = True
                            if not bypass_fifo:
                                break  # the next head is tried in the next round
                        elif not bypass_fifo:
                            break
                        else:
                            k += 1
                    if not bypass_fifo and (q or progress):
                        break  # FIFO: a level blocks the levels after it
                qmin[x] = _head_level(queues[x])
            for y in released:
                if qmin[y] != _NONE and y not in work:
                    work.append(y)
    return BatchOutcome(np.frombuffer(bytes(status), np.int8).copy(),
                        np.array(order, np.int64), np.array(trigger, np.int64),
                        np.array(bal, np.int64), np.frombuffer(bytes(step), np.int8).copy())


def _head_level(levels: list[deque[int]]) -> int:
    """The most urgent level with something queued (_NONE: nothing)."""
    for level in range(LEVELS):
        if levels[level]:
            return level
    return _NONE


def _resolve_gridlock(bal: list[int], snd: list[int], rcv: list[int], amt: list[int],
                      pri: list[int], queues: defaultdict[int, list[deque[int]]],
                      qmin: list[int], status: bytearray, step: bytearray, algorithm: str,
                      bilateral_candidates: int, retry_rank: npt.ArrayLike | None
                      ) -> list[int]:
    """Gridlock resolution on what is still queued: the payments that settle together
    leave their queues (each sender's settled ones are the head of its queue), are marked
    settled with their step, and the balances move by their net. Returns the receivers,
    in the order their queues are retried."""
    queued = np.flatnonzero(np.frombuffer(bytes(status), np.int8) == QUEUED)
    sender, receiver = np.array(snd, np.int64), np.array(rcv, np.int64)
    # a payment to oneself moves nothing: it settles gross or not at all, and what waits
    # behind it in its sender's queue (by level, then arrival) is not offered either
    own = queued[sender[queued] == receiver[queued]]
    if own.size:
        level = np.array(pri, np.int64)
        key = level * len(snd) + np.arange(len(snd))  # place in the sender's queue
        first_own = np.full(len(bal), np.iinfo(np.int64).max)
        np.minimum.at(first_own, sender[own], key[own])
        queued = queued[key[queued] < first_own[sender[queued]]]
    if queued.size < 2:
        return []
    inst = gridlock.QueueInstance(
        liquidity=np.maximum(np.array(bal, np.int64), 0), sender=sender[queued],
        receiver=receiver[queued], amount=np.array(amt, np.int64)[queued],
        priority=np.array(pri, np.int64)[queued])
    got = gridlock.resolve(inst, algorithm, bilateral_candidates, steps=True)
    chosen = queued[got != gridlock.STAYS].tolist()
    for j, how in zip(chosen, got[got != gridlock.STAYS].tolist(), strict=True):
        popped = queues[snd[j]][pri[j]].popleft()
        assert popped == j, "gridlock resolution settled a payment behind another"
        status[j] = SETTLED
        step[j] = how
        bal[snd[j]] -= amt[j]
        bal[rcv[j]] += amt[j]
    for x in {snd[j] for j in chosen}:
        assert bal[x] >= 0, "gridlock resolution overdrew a participant"
        qmin[x] = _head_level(queues[x])
    rank = (np.arange(len(bal)) if retry_rank is None
            else np.asarray(retry_rank, np.int64)).tolist()
    return sorted({rcv[j] for j in chosen}, key=lambda x: rank[x])


def credit_needed(free_fen: I64, sender: I64, receiver: I64, amount: I64, order: I64) -> I64:
    """What each participant must draw on its pledge credit (质押融资) so that its free
    balance never goes below zero while the payments settle in ``order``: the depth of
    its lowest running balance below zero (0 if it never goes there)."""
    p = len(free_fen)
    out: I64 = np.zeros(p, np.int64)
    if len(order) == 0:
        return out
    s, r, a = sender[order], receiver[order], amount[order]
    who = np.empty(2 * len(order), np.int64)
    delta = np.empty(2 * len(order), np.int64)
    who[0::2], who[1::2] = s, r  # each payment leaves its sender, then reaches its receiver
    delta[0::2], delta[1::2] = -a, a
    by = np.argsort(who, kind="stable")  # each participant's movements, in settlement order
    who, delta = who[by], delta[by]
    running = np.cumsum(delta)
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
    before = np.r_[0, running[starts[1:] - 1]]  # the running sum where each group begins
    lowest = np.minimum.reduceat(running, starts) - before
    lowest = np.minimum(lowest, 0)
    out[who[starts]] = np.maximum(0, -(free_fen[who[starts]] + lowest))
    return out


def post_settlements(engine: Engine, names: list[str], sender: I64, receiver: I64,
                     amount: I64, order: I64) -> None:
    """Post settled payments into the ledger as part of the current command: each one gross
    in the PBOC's book (settlement order, so no account passes its limit), and each
    participant's mirror by its net movement (inflows first)."""
    if len(order) == 0:
        return
    reg = engine.registry
    settle_ids = np.array([reg.id("PBOC", f"settlement:{n}") for n in names], np.int64)
    s, r, a = sender[order], receiver[order], amount[order]
    engine.post_columns(settle_ids[s], settle_ids[r], a)
    p = len(names)
    outflow = np.zeros(p, np.int64)
    inflow = np.zeros(p, np.int64)
    np.add.at(outflow, s, a)
    np.add.at(inflow, r, a)
    dr: list[int] = []
    cr: list[int] = []
    am: list[int] = []
    for k, name in enumerate(names):
        if inflow[k]:
            dr.append(reg.id(name, "reserve_at_pboc"))
            cr.append(reg.id(name, "hvps_incoming"))
            am.append(int(inflow[k]))
    for k, name in enumerate(names):
        if outflow[k]:
            dr.append(reg.id(name, "hvps_outgoing"))
            cr.append(reg.id(name, "reserve_at_pboc"))
            am.append(int(outflow[k]))
    engine.post_columns(np.array(dr, np.int64), np.array(cr, np.int64),
                        np.array(am, np.int64))


def post_together(engine: Engine, names: list[str], sender: I64, receiver: I64,
                  amount: I64, chosen: I64) -> None:
    """Post payments settled together by gridlock resolution as HVPS posts them
    (``Hvps._settle_together``): every credit first, then every debit, each gross through
    the PBOC's clearing account and the participants' mirrors, so no balance dips below its
    final value (which is covered: the caller has drawn any pledge credit it needs)."""
    if len(chosen) == 0:
        return
    reg = engine.registry
    settle = np.array([reg.id("PBOC", f"settlement:{n}") for n in names], np.int64)
    reserve = np.array([reg.id(n, "reserve_at_pboc") for n in names], np.int64)
    incoming = np.array([reg.id(n, "hvps_incoming") for n in names], np.int64)
    outgoing = np.array([reg.id(n, "hvps_outgoing") for n in names], np.int64)
    clearing = reg.id("PBOC", "lsm_clearing")
    s, r, a = sender[chosen], receiver[chosen], amount[chosen]
    k = len(chosen)
    dr = np.empty(4 * k, np.int64)
    cr = np.empty(4 * k, np.int64)
    # per payment, as the per-payment path lists them: credit in the PBOC's book, then the
    # receiver's mirror; after every credit, the debit in the PBOC's book, then the mirror
    dr[0:2 * k:2], cr[0:2 * k:2] = clearing, settle[r]
    dr[1:2 * k:2], cr[1:2 * k:2] = reserve[r], incoming[r]
    dr[2 * k::2], cr[2 * k::2] = settle[s], clearing
    dr[2 * k + 1::2], cr[2 * k + 1::2] = outgoing[s], reserve[s]
    engine.post_columns(dr, cr, np.tile(np.repeat(a, 2), 2))


__all__ = ["QUEUED", "SETTLED", "BatchOutcome", "TransferBatch", "post_settlements",
           "post_together", "run_rtgs"]
