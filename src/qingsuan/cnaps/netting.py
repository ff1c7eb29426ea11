"""BEPS and IBPS netting in simulation mode: items against net debit caps, vectorised.

Both systems keep, per participant, a running **net position** (credits received minus debits
sent since the last settlement session) that may never fall below minus its **net debit cap**
(净借记限额). Items are netted in arrival order, exactly as if one at a time:

* an item is netted iff its sender's position minus the amount stays >= -cap at that moment;
* ``ibps``: an item that would pass the cap is **rejected** and changes nothing;
* ``beps``: it is **queued** in its sender's FIFO queue; while a queue is non-empty every new
  item of that sender joins it (FIFO, as ``NetSystem``), and every credit the sender receives
  retries the head of its queue (head by head, as long as the head fits), in cascade to the
  receivers of what is released: the release discipline of ``rtgs_batch.run_rtgs``.

``net_items_reference`` is that rule as a plain loop. ``net_items`` gives the same result item
by item (tests compare them) without visiting most items in Python:

1. **Prove per participant, not per batch.** For a chunk of items, the debit and credit
   events are grouped by participant in arrival order (one stable radix sort of 16-bit
   participant numbers) and each participant's running position is a cumulative sum. For
   every participant this gives the first debit that would take it past its cap if every
   item of the chunk were netted (the ledger's ``_first_limit_breach``, kept per participant).
   Items that touch no such breach and no queue are netted as they are, in one numpy step.
2. **Repair locally.** The earliest breach is handled (rejected or queued). That changes only
   its sender's and receiver's later positions, by a constant: those two participants carry a
   correction and only their next breach is searched again (a block-minimum index makes the
   search logarithmic-ish), instead of re-proving the whole rest of the chunk as the ledger
   does. A min-heap over the participants' next "interesting" item drives the loop.
3. **Queues are local too.** A participant with a non-empty BEPS queue has every later event
   of its own handled in Python (its items join the queue, its credits retry the head);
   everybody else stays on the vector path. Releases are corrections for sender and
   receiver, like a rejection in reverse.
4. **Adapt.** When a chunk needs Python for more than a few percent of its items (a queue
   that never drains, caps of zero), the next chunk runs as a tight plain loop over Python
   ints, whose cost does not depend on how many items fail; once failures are rare again the
   vector path resumes. Both share the same state between chunks.

This replaces the ledger's "exact window after a failure": with the proof kept per
participant, a failure costs a few microseconds of repair, not a re-proof of the rest of the
batch, so there is no window to size; the adaptive choice is made per chunk instead.

Positions are int64 fen throughout (no float weights: ``np.bincount`` with weights sums in
float64). ``_check_bounds`` proves before anything runs that no running sum can leave int64.

Sessions: ``session_positions`` recomputes the positions of a set of netted items,
``settlement_instructions`` splits positions into who pays and who receives,
``session_coverage`` says whether everyone who pays can (all or nothing) and who is short by
how much, ``settlement_postings`` builds the ledger's columns through a clearing account.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Mode = Literal["beps", "ibps"]
Engine = Literal["auto", "vector", "scalar"]

#: Per item status.
QUEUED: Final = 0    # BEPS: waiting in its sender's queue at the end of the batch
ACCEPTED: Final = 1  # netted (on arrival, or released from the queue later in the batch)
REJECTED: Final = 2  # IBPS: would have passed the cap; changed nothing

#: Items per vector chunk: big enough to amortise the numpy calls, small enough for the
#: cache and for bounded memory (about 150 bytes of scratch per item of the chunk).
#: Measured on the benchmark's workload: 2^16 and 2^20 were both slower.
CHUNK: Final = 1 << 18
#: Below this many items a batch runs as a plain loop: numpy's fixed costs would dominate.
_SMALL: Final = 4096
#: Above this share of items walked in Python, a vector chunk costs more than the plain
#: loop. Measured (2 cores): the vector path ~0.075 µs an item plus ~6 µs (BEPS) / ~9 µs
#: (IBPS: two searches per rejection) per walked item; the plain loop ~0.5 µs (BEPS) /
#: ~0.23 µs (IBPS) an item. Break-even ~7.5% and ~1.8%.
_VECTOR_MAX_SHARE: Final = {"beps": 0.06, "ibps": 0.02}
#: Block size of the block-minimum index used to search a participant's next breach.
_BLOCK: Final = 128
#: Every running sum stays below this magnitude (checked before anything runs).
_BOUND: Final = 1 << 62
_NEVER: Final = 1 << 62  # as an item index: "no further interesting item"
_SENTINEL: Final = int(np.iinfo(np.int64).max)


class NettingInvariantError(AssertionError):
    """Positions that do not sum to zero, or two computations of a position that differ:
    a bug (or corrupted input), never a business outcome."""


@dataclass(frozen=True, slots=True)
class NettingResult:
    #: per item: ACCEPTED, REJECTED (IBPS) or QUEUED (BEPS, still waiting at the end)
    status: npt.NDArray[np.int8]
    #: indices of the netted items in the order they were netted
    order: I64
    #: per participant: the position after the batch
    position: I64
    #: per participant: the lowest position reached (the starting position included); the
    #: peak cap utilisation is ``max(0, -low)``
    low: I64
    #: per item: True if it did not net on arrival (BEPS: queued, maybe released later;
    #: items carried in with ``start_queued`` count as queued on arrival)
    queued_on_arrival: npt.NDArray[np.bool_]

    @property
    def peak_utilisation(self) -> I64:
        """Per participant: the largest net debit reached, in fen (0 if never negative)."""
        return np.maximum(self.low, 0) - self.low


# ---------------------------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
class _Input:
    position: I64
    cap: I64
    sender: I64
    receiver: I64
    amount: I64
    carried: int  # length of the start_queued prefix


def _validate(position: npt.ArrayLike, cap: npt.ArrayLike, sender: npt.ArrayLike,
              receiver: npt.ArrayLike, amount: npt.ArrayLike, mode: str,
              start_queued: npt.ArrayLike | None) -> _Input:
    if mode not in ("beps", "ibps"):
        raise ValueError(f"mode must be 'beps' or 'ibps', not {mode!r}")
    pos = _int64(position, "position")
    cp = _int64(cap, "cap")
    snd = _int64(sender, "sender")
    rcv = _int64(receiver, "receiver")
    amt = _int64(amount, "amount")
    p = len(pos)
    n = len(snd)
    if len(cp) != p:
        raise ValueError("position and cap must have one entry per participant")
    if not (len(rcv) == len(amt) == n):
        raise ValueError("sender, receiver and amount must have one entry per item")
    if p and int(cp.min()) < 0:
        raise ValueError("a net debit cap is never negative")
    if n:
        if int(amt.min()) <= 0:
            raise ValueError("amounts must be positive")
        if min(int(snd.min()), int(rcv.min())) < 0 or max(int(snd.max()), int(rcv.max())) >= p:
            raise ValueError("sender and receiver must be participant indices")
        if bool((snd == rcv).any()):
            raise ValueError("an item's sender and receiver must differ")
    carried = 0
    if start_queued is not None:
        waiting = np.asarray(start_queued, bool)
        if len(waiting) != n:
            raise ValueError("start_queued must have one entry per item")
        carried = int(np.argmin(waiting)) if not bool(waiting.all()) else n
        if bool(waiting[carried:].any()):
            raise ValueError("start_queued must mark a prefix of the batch")
        if carried and mode == "ibps":
            raise ValueError("IBPS never queues: start_queued is for BEPS only")
    _check_bounds(pos, cp, amt)
    return _Input(pos, cp, snd, rcv, amt, carried)


def _int64(values: npt.ArrayLike, name: str) -> I64:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        # never floats: money is integer fen
        raise TypeError(f"{name} must be integers (fen), not {arr.dtype}")
    return np.ascontiguousarray(arr, np.int64)


def _check_bounds(pos: I64, cap: I64, amt: I64) -> None:
    """Every quantity the netting computes (a position, a running sum over the batch, a
    position plus a cap, a correction) is bounded in magnitude by max|position| + max cap +
    the batch's total amount; keeping that below 2^62 keeps all of them inside int64."""
    n = len(amt)
    top = int(np.abs(pos).max()) if len(pos) else 0
    top += int(cap.max()) if len(cap) else 0
    if n:
        biggest = int(amt.max())
        # the total itself may not fit int64: bound it with Python ints first
        total = biggest * n if biggest * n < _BOUND else sum(int(a) for a in amt.tolist())
        top += total
    if top >= _BOUND:
        raise ValueError("positions, caps and amounts this large could overflow int64")


# ---------------------------------------------------------------------------------- reference


def net_items_reference(position: npt.ArrayLike, cap: npt.ArrayLike, sender: npt.ArrayLike,
                        receiver: npt.ArrayLike, amount: npt.ArrayLike, *, mode: Mode,
                        start_queued: npt.ArrayLike | None = None) -> NettingResult:
    """The netting rule as a plain loop, one item at a time (the tests' oracle)."""
    inp = _validate(position, cap, sender, receiver, amount, mode, start_queued)
    pos: list[int] = inp.position.tolist()
    floor = [-c for c in inp.cap.tolist()]
    snd: list[int] = inp.sender.tolist()
    rcv: list[int] = inp.receiver.tolist()
    amt: list[int] = inp.amount.tolist()
    n = len(snd)
    low = list(pos)
    status = [ACCEPTED] * n
    late = [False] * n
    order: list[int] = []
    queues: list[deque[int]] = [deque() for _ in pos]

    def net(j: int) -> None:
        s, r, a = snd[j], rcv[j], amt[j]
        assert pos[s] - a >= floor[s]
        pos[s] -= a
        pos[r] += a
        low[s] = min(low[s], pos[s])
        status[j] = ACCEPTED
        order.append(j)

    def release(start: list[int]) -> None:
        work = deque(start)
        while work:
            x = work.popleft()
            released: list[int] = []
            while queues[x] and pos[x] - amt[queues[x][0]] >= floor[x]:
                j = queues[x].popleft()
                net(j)
                released.append(rcv[j])
            for y in released:
                if queues[y] and y not in work:
                    work.append(y)

    for i in range(inp.carried):
        queues[snd[i]].append(i)
        status[i] = QUEUED
        late[i] = True
    release([x for x in range(len(pos)) if queues[x]])
    for i in range(inp.carried, n):
        s = snd[i]
        if queues[s] or pos[s] - amt[i] < floor[s]:
            late[i] = True
            if mode == "ibps":
                status[i] = REJECTED
            else:
                status[i] = QUEUED
                queues[s].append(i)
            continue
        net(i)
        if queues[rcv[i]]:
            release([rcv[i]])
    return NettingResult(np.array(status, np.int8), np.array(order, np.int64),
                         np.array(pos, np.int64), np.array(low, np.int64),
                         np.array(late, np.bool_))


# ---------------------------------------------------------------------------------- fast path


def net_items(position: npt.ArrayLike, cap: npt.ArrayLike, sender: npt.ArrayLike,
              receiver: npt.ArrayLike, amount: npt.ArrayLike, *, mode: Mode,
              start_queued: npt.ArrayLike | None = None) -> NettingResult:
    """Net items in arrival order against net debit caps (see the module docstring).

    ``position[p]``: participant p's net position since the last session (int fen, may be
    negative); ``cap[p]`` >= 0: its net debit cap. Items: ``sender``, ``receiver`` (indices,
    different), ``amount`` > 0 (int fen). ``start_queued`` (BEPS): a prefix of items already
    waiting from an earlier batch, in their queues' order; they enter the queues without an
    attempt, ahead of this batch's arrivals, and every queue then gets one release attempt
    (positions may have changed meanwhile, e.g. reset by a settlement session).
    To carry a batch's still-queued items into the next batch, pass them (in index order)
    first with ``start_queued`` set for them.
    """
    return _net(position, cap, sender, receiver, amount, mode=mode,
                start_queued=start_queued)


def _net(position: npt.ArrayLike, cap: npt.ArrayLike, sender: npt.ArrayLike,
         receiver: npt.ArrayLike, amount: npt.ArrayLike, *, mode: Mode,
         start_queued: npt.ArrayLike | None = None, engine: Engine = "auto",
         chunk: int = CHUNK, small: int = _SMALL) -> NettingResult:
    """``net_items`` with the chunking under control (tests force each engine, small chunks
    and ``small=0``, so that every path, every switch between them and every chunk boundary
    is compared with the reference)."""
    inp = _validate(position, cap, sender, receiver, amount, mode, start_queued)
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    netter = _Netter(inp, mode)
    netter.opening()
    n = len(inp.sender)
    share = _VECTOR_MAX_SHARE[mode]
    use_vector = engine == "vector" or (engine == "auto" and n - inp.carried >= small)
    lo = inp.carried
    while lo < n:
        hi = min(n, lo + chunk)
        if use_vector:
            # auto: a vector chunk that has walked its share gives up there (it already cost
            # about what the plain loop costs for the whole chunk) and the loop takes the rest
            budget = _NEVER if engine == "vector" else max(1, int((hi - lo) * share))
            stop, handled = netter.vector(lo, hi, budget)
            if stop < hi:
                handled += netter.scalar(stop, hi)
        else:
            handled = netter.scalar(lo, hi)
        if engine == "auto":
            # the last chunk's share predicts the next one's: failures cluster in time (a
            # participant near its cap stays near it for a while)
            use_vector = handled <= (hi - lo) * share and n - hi >= small
        lo = hi
    return netter.result()


class _Netter:
    """State shared by the two engines between chunks: positions and lows as Python ints,
    the BEPS queues, and the per item outcome so far."""

    def __init__(self, inp: _Input, mode: Mode) -> None:
        self.inp = inp
        self.beps = mode == "beps"
        self.participants = len(inp.position)
        self.pos: list[int] = inp.position.tolist()
        self.low: list[int] = list(self.pos)
        self.floor: list[int] = [-c for c in inp.cap.tolist()]
        # queue entries carry (amount, receiver, index): heads are retried on every credit
        self.queues: list[deque[tuple[int, int, int]]] = [
            deque() for _ in range(self.participants)]
        n = len(inp.sender)
        self.status = np.full(n, ACCEPTED, np.int8)
        self.late = np.zeros(n, np.bool_)
        self.order: list[I64] = []
        # 16-bit participant numbers sort with numpy's radix sort (stable, linear)
        self.small_ids = self.participants <= np.iinfo(np.int16).max

    # -- shared pieces ------------------------------------------------------------------

    def opening(self) -> None:
        """Carried items enter their queues; every queue gets one release attempt."""
        k = self.inp.carried
        if not k:
            return
        snd = self.inp.sender[:k].tolist()
        rcv = self.inp.receiver[:k].tolist()
        amt = self.inp.amount[:k].tolist()
        for i in range(k):
            self.queues[snd[i]].append((amt[i], rcv[i], i))
        self.status[:k] = QUEUED
        self.late[:k] = True
        rel_t: list[int] = []
        rel_j: list[int] = []
        self._release_scalar([x for x in range(self.participants) if self.queues[x]], -1,
                             rel_t, rel_j)
        self.status[rel_j] = ACCEPTED
        self.order.append(np.array(rel_j, np.int64))

    def _release_scalar(self, start: list[int], trigger: int, rel_t: list[int],
                        rel_j: list[int]) -> None:
        """The release cascade on the plain positions (run_rtgs's order: first come, first
        retried; a receiver joins the work list once it is not already on it). Appends
        each released item to rel_j, and the item whose credit set it off to rel_t."""
        pos, low, floor, queues = self.pos, self.low, self.floor, self.queues
        work = deque(start)
        while work:
            x = work.popleft()
            q = queues[x]
            px = pos[x]
            fx = floor[x]
            gained: list[int] = []
            while q:
                a, y, j = q[0]
                if px - a < fx:
                    break  # FIFO: the head blocks the rest
                q.popleft()
                px -= a
                pos[y] += a
                rel_t.append(trigger)
                rel_j.append(j)
                gained.append(y)
            pos[x] = px
            if px < low[x]:
                low[x] = px
            for y in gained:
                if queues[y] and y not in work:
                    work.append(y)

    def result(self) -> NettingResult:
        order = np.concatenate(self.order) if self.order else np.zeros(0, np.int64)
        return NettingResult(self.status, order, np.array(self.pos, np.int64),
                             np.array(self.low, np.int64), self.late)

    def _write(self, lo: int, hi: int, failed: list[int], rel_t: list[int],
               rel_j: list[int]) -> None:
        """Record a chunk's outcome: ``failed`` (global indices, ascending) rejected or
        queued on arrival; every other item of the chunk netted on arrival, followed in the
        netted order by what its credit released (rel_t: trigger, rel_j: item released)."""
        fail = np.array(failed, np.int64)
        ok = np.ones(hi - lo, np.bool_)
        ok[fail - lo] = False
        on_arrival = np.flatnonzero(ok) + lo
        self.status[fail] = QUEUED if self.beps else REJECTED
        self.late[fail] = True
        if rel_j:
            released = np.array(rel_j, np.int64)
            at = np.searchsorted(on_arrival, np.array(rel_t, np.int64), side="right")
            self.order.append(np.insert(on_arrival, at, released))
            self.status[released] = ACCEPTED
        else:
            self.order.append(on_arrival)

    # -- plain loop -----------------------------------------------------------------------

    def scalar(self, lo: int, hi: int) -> int:
        """Items lo..hi-1 one by one. Returns how many needed more than the plain check
        (failed, or credited a queue), the measure the engine choice is made on."""
        inp = self.inp
        snd: list[int] = inp.sender[lo:hi].tolist()
        rcv: list[int] = inp.receiver[lo:hi].tolist()
        amt: list[int] = inp.amount[lo:hi].tolist()
        pos, low, floor, queues = self.pos, self.low, self.floor, self.queues
        failed: list[int] = []
        rel_t: list[int] = []
        rel_j: list[int] = []
        i = lo
        if not self.beps:
            for s, r, a in zip(snd, rcv, amt, strict=True):
                v = pos[s] - a
                if v < floor[s]:
                    failed.append(i)
                else:
                    pos[s] = v
                    if v < low[s]:
                        low[s] = v
                    pos[r] += a
                i += 1
            self._write(lo, hi, failed, rel_t, rel_j)
            return len(failed)
        cascades = 0
        release = self._release_scalar
        for s, r, a in zip(snd, rcv, amt, strict=True):
            q = queues[s]
            v = pos[s] - a
            if q or v < floor[s]:
                q.append((a, r, i))
                failed.append(i)
            else:
                pos[s] = v
                if v < low[s]:
                    low[s] = v
                pr = pos[r] + a
                pos[r] = pr
                q = queues[r]
                if q:
                    cascades += 1
                    if pr - q[0][0] >= floor[r]:  # else the head still does not fit: the
                        release([r], i, rel_t, rel_j)  # cascade would stop at once
            i += 1
        self._write(lo, hi, failed, rel_t, rel_j)
        return len(failed) + cascades

    # -- vector path ----------------------------------------------------------------------

    def vector(self, lo: int, hi: int, budget: int) -> tuple[int, int]:
        """Items lo..hi-1: prove per participant, repair locally (module docstring). Walks at
        most ``budget`` items in Python: returns where it stopped (hi if it did not) and how
        many items it walked."""
        inp = self.inp
        m = hi - lo
        p_count = self.participants
        # events: 2k is item k's debit (its sender), 2k+1 its credit (its receiver)
        ev = np.empty(2 * m, np.int16 if self.small_ids else np.int64)
        ev[0::2] = inp.sender[lo:hi]
        ev[1::2] = inp.receiver[lo:hi]
        if self.small_ids:
            perm = np.argsort(ev, kind="stable")
        else:  # one unique key per event: the default (SIMD) sort, no stable sort needed
            perm = np.argsort(ev.astype(np.int64) * (2 * m) + np.arange(2 * m, dtype=np.int64))
        ev_p = ev[perm].astype(np.int64)
        del ev
        ev_item = perm >> 1
        debit = (perm & 1) == 0
        amt_ev = inp.amount[lo:hi][ev_item]
        delta = np.where(debit, -amt_ev, amt_ev)
        del amt_ev
        counts = np.bincount(ev_p, minlength=p_count).astype(np.int64)
        ge = np.cumsum(counts)
        gs = ge - counts
        cs = np.cumsum(delta)
        base = np.concatenate((np.zeros(1, np.int64), cs))[gs]
        run = cs - base[ev_p]  # each participant's running movement within the chunk
        del cs, base
        pos0 = np.array(self.pos, np.int64)
        # a debit breaches iff pos0 + run + corr < -cap, i.e. run < thr0 - corr
        thr0 = -(inp.cap + pos0)
        check = np.where(debit, run, _SENTINEL)  # credits never breach
        del debit
        breach = np.flatnonzero(check < thr0[ev_p])
        nbpos = ge.copy()  # per participant: its first breaching event (ge: none)
        if len(breach):
            first = np.ones(len(breach), np.bool_)
            np.not_equal(ev_p[breach[1:]], ev_p[breach[:-1]], out=first[1:])
            nbpos[ev_p[breach[first]]] = breach[first]
        del breach
        in_queue = np.array([bool(q) for q in self.queues], np.bool_)
        nxt_pos = np.where(in_queue, gs, nbpos)
        live = np.flatnonzero(nxt_pos < ge)
        failed: list[int] = []
        releases: list[tuple[int, int, int, int, int]] = []  # (time, item, x, y, amount)
        corr = [0] * p_count
        handled = 0
        stop = m
        inv: I64 | None = None
        if len(live):
            # where item k's debit (2k) and credit (2k+1) events went in the sort
            inv = np.empty(2 * m, np.int64)
            inv[perm] = np.arange(2 * m, dtype=np.int64)
            heap = list(zip(ev_item[nxt_pos[live]].tolist(), live.tolist(), strict=True))
            handled, stop = self._repair(lo, m, heap, ev_item, inv, run, check, gs, ge, nbpos,
                                         thr0, pos0, corr, failed, releases, budget)
        del check, nbpos, nxt_pos
        if stop < m:
            # gave up before item `stop`: keep the events of the items before it (each
            # participant's running movement over them is unchanged, a prefix of its own)
            keep = ev_item < stop
            assert inv is not None
            inv = (np.cumsum(keep) - 1)[inv[: 2 * stop]]
            ev_p, ev_item, delta, run = ev_p[keep], ev_item[keep], delta[keep], run[keep]
            counts = np.bincount(ev_p, minlength=p_count).astype(np.int64)
            ge = np.cumsum(counts)
        self._finish_vector(lo, stop, ev_p, ev_item, delta, counts, ge, run, pos0, corr,
                            failed, releases, inv)
        return lo + stop, handled

    def _repair(self, lo: int, m: int, heap: list[tuple[int, int]], ev_item: I64, inv: I64,
                run: I64, check: I64, gs_a: I64, ge_a: I64, nbpos_a: I64, thr0_a: I64,
                pos0_a: I64, corr: list[int], failed: list[int],
                releases: list[tuple[int, int, int, int, int]], budget: int
                ) -> tuple[int, int]:
        """Walk the interesting items (a breach, or an event of a participant with a queue)
        in arrival order; the items between them net as computed. A participant's position
        is pos0 + run + corr, ``corr`` being what the repairs so far changed for it. Returns
        how many items were walked, and the item it stopped before (m if it did not) once
        ``budget`` items were walked."""
        inp = self.inp
        beps = self.beps
        queues = self.queues
        floor = self.floor
        gs: list[int] = gs_a.tolist()
        ge: list[int] = ge_a.tolist()
        nbpos: list[int] = nbpos_a.tolist()
        thr0: list[int] = thr0_a.tolist()
        pos0: list[int] = pos0_a.tolist()
        gp = list(gs)  # for a participant with a queue: its next event not yet walked
        item_of = ev_item.item
        run_at = run.item
        inv_at = inv.item
        first_below = _block_search(check)
        snd_at = inp.sender[lo:lo + m].item
        rcv_at = inp.receiver[lo:lo + m].item
        amt_at = inp.amount[lo:lo + m].item
        nxt = [_NEVER] * self.participants
        for t, p in heap:
            nxt[p] = t
        heapq.heapify(heap)
        pop = heapq.heappop
        push = heapq.heappush
        walked = 0

        def refresh(p: int) -> None:
            k = gp[p] if queues[p] else nbpos[p]
            t = item_of(k) if k < ge[p] else _NEVER
            if t != nxt[p]:
                nxt[p] = t
                if t != _NEVER:
                    push(heap, (t, p))

        while heap:
            t, p = pop(heap)
            if nxt[p] != t:
                continue  # superseded by a later repair
            if walked >= budget:
                return walked, t
            walked += 1
            s = snd_at(t)
            r = rcv_at(t)
            a = amt_at(t)
            es = inv_at(2 * t)
            er = inv_at(2 * t + 1)
            if queues[s] or pos0[s] + run_at(es) + corr[s] < floor[s]:
                failed.append(t)
                corr[s] += a
                if beps:
                    queues[s].append((a, r, lo + t))
                    gp[s] = es + 1
                else:  # a lower threshold: the next breach can only come later
                    nbpos[s] = first_below(es + 1, ge[s], thr0[s] - corr[s])
                # the receiver does not get the credit after all
                corr[r] -= a
                if queues[r]:
                    gp[r] = er + 1
                else:  # a higher threshold: its old breach still breaches, or one before
                    # it does (first_below answers the range's end, the old one, if none)
                    nbpos[r] = first_below(er + 1, nbpos[r], thr0[r] - corr[r])
                refresh(s)
                refresh(r)
                continue
            if not queues[r]:
                raise NettingInvariantError(f"item {lo + t} was walked but is neither a "
                                            "breach nor a credit to a queue")
            gp[r] = er + 1
            touched = [s, r]
            # the release cascade, in the order of _release_scalar
            work = deque([r])
            while work:
                x = work.popleft()
                q = queues[x]
                k = gp[x]
                px = pos0[x] + (run_at(k - 1) if k > gs[x] else 0) + corr[x]
                fx = floor[x]
                gained: list[int] = []
                while q:
                    aj, y, j = q[0]
                    if px - aj < fx:
                        break  # FIFO: the head blocks the rest
                    q.popleft()
                    px -= aj
                    corr[x] -= aj
                    corr[y] += aj
                    releases.append((t, j, x, y, aj))
                    gained.append(y)
                    if not queues[y] and nbpos[y] < ge[y]:
                        # a lower threshold: its next breach can only come later
                        nbpos[y] = first_below(nbpos[y], ge[y], thr0[y] - corr[y])
                if not q:  # back on the vector path from its next event
                    nbpos[x] = first_below(k, ge[x], thr0[x] - corr[x])
                touched.append(x)
                for y in gained:
                    touched.append(y)
                    if queues[y] and y not in work:
                        work.append(y)
            for x in touched:
                refresh(x)
        return walked, m

    def _finish_vector(self, lo: int, m: int, ev_p: I64, ev_item: I64, delta: I64,
                       counts: I64, ge: I64, run: I64, pos0: I64, corr: list[int],
                       failed: list[int], releases: list[tuple[int, int, int, int, int]],
                       inv: I64 | None) -> None:
        """Write the chunk's outcome: statuses, netted order, positions, lows."""
        nonempty = counts > 0
        new_pos = pos0 + np.where(nonempty, run[np.where(nonempty, ge - 1, 0)], 0)
        new_pos += np.array(corr, np.int64)
        failed.sort()
        fail = np.array(failed, np.int64)
        times = np.array([rel[0] for rel in releases], np.int64)
        self._write(lo, lo + m, [lo + t for t in failed], (times + lo).tolist(),
                    [rel[1] for rel in releases])
        if not failed and not releases:
            # nothing was repaired: the running movements are the positions
            cand = np.where(delta < 0, run, _SENTINEL)
            lows = self._group_min(cand, counts, ge - counts) + pos0
        else:
            # replay the events as they happened: failed items' events removed, releases
            # inserted right after the item that triggered them, one cumsum per participant
            d = delta.copy()
            if len(fail):
                assert inv is not None
                d[inv[2 * fail]] = 0
                d[inv[2 * fail + 1]] = 0
            p_ev, cnt = ev_p, counts
            if releases:
                rp = np.array([v for rel in releases for v in (rel[2], rel[3])], np.int64)
                rd = np.array([v for rel in releases for v in (-rel[4], rel[4])], np.int64)
                key = ev_p * (m + 1) + ev_item
                where = np.searchsorted(key, rp * (m + 1) + np.repeat(times, 2), side="right")
                # participants without events of their own share an insertion point: order
                # by point, then participant, then (stable) release order; np.insert keeps
                # the given order among equal points
                by = np.lexsort((rp, where))
                where, rp, rd = where[by], rp[by], rd[by]
                p_ev = np.insert(ev_p, where, rp)
                d = np.insert(d, where, rd)
                cnt = counts + np.bincount(rp, minlength=self.participants)
            cs = np.cumsum(d)
            ge2 = np.cumsum(cnt)
            gs2 = ge2 - cnt
            moved = cs - np.concatenate((np.zeros(1, np.int64), cs))[gs2][p_ev]
            has = cnt > 0
            ends = pos0 + np.where(has, moved[np.where(has, ge2 - 1, 0)], 0)
            if not np.array_equal(ends, new_pos):
                raise NettingInvariantError("replayed positions differ from corrected ones")
            lows = self._group_min(np.where(d < 0, moved, _SENTINEL), cnt, gs2) + pos0
        self.low = np.minimum(np.array(self.low, np.int64), lows).tolist()
        self.pos = new_pos.tolist()

    def _group_min(self, values: I64, counts: I64, starts: I64) -> I64:
        """Per participant, the minimum of its (contiguous) values, at most 2^62 ("none"):
        the caller adds a position (below 2^62 by _check_bounds) without overflow."""
        out = np.full(self.participants, _BOUND, np.int64)
        has = counts > 0
        if bool(has.any()):
            out[has] = np.minimum(np.minimum.reduceat(values, starts[has]), _BOUND)
        return out


def _block_search(values: I64) -> Callable[[int, int, int], int]:
    """``first_below(lo, hi, thr)``: the first k in [lo, hi) with values[k] < thr, else hi.
    Scans lo's block, then the block minima, then one block: a handful of numpy calls however
    far the answer is (a big bank's events span a large part of the chunk)."""
    full = len(values) // _BLOCK
    mins = values[: full * _BLOCK].reshape(full, _BLOCK).min(axis=1)

    def first_below(lo: int, hi: int, thr: int) -> int:
        if lo >= hi:
            return hi
        head = min(hi, (lo // _BLOCK + 1) * _BLOCK)
        hit = values[lo:head] < thr
        k = int(hit.argmax())
        if hit[k]:
            return lo + k
        if head >= hi:
            return hi
        b0 = head // _BLOCK  # head is block-aligned here
        b1 = min(hi // _BLOCK, full)
        tail = head
        if b1 > b0:
            hit = mins[b0:b1] < thr
            k = int(hit.argmax())
            if hit[k]:
                start = (b0 + k) * _BLOCK
                return start + int((values[start:start + _BLOCK] < thr).argmax())
            tail = b1 * _BLOCK
        if tail >= hi:
            return hi
        hit = values[tail:hi] < thr
        k = int(hit.argmax())
        return tail + k if hit[k] else hi

    return first_below


# ---------------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class Legs:
    """One side of a session's settlement: participants (ascending) and amounts (> 0)."""

    participant: I64
    amount: I64

    def __len__(self) -> int:
        return len(self.participant)


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether every participant that pays in a session can pay, all or nothing."""

    covered: bool
    #: participants that are short (ascending), and by how much (fen, > 0)
    short: I64
    shortfall: I64


def session_positions(participants: int, sender: npt.ArrayLike, receiver: npt.ArrayLike,
                      amount: npt.ArrayLike, netted: npt.ArrayLike) -> I64:
    """Net position of each participant over the netted items of a session (indices into
    the item columns, e.g. ``NettingResult.order``): credits received minus debits sent.
    Exact int64 sums (``np.add.at``, not float-weighted ``bincount``); they sum to zero."""
    idx = np.asarray(netted, np.int64)
    snd = _int64(sender, "sender")[idx]
    rcv = _int64(receiver, "receiver")[idx]
    amt = _int64(amount, "amount")[idx]
    if len(amt) and int(amt.min()) <= 0:
        raise ValueError("amounts must be positive")
    _check_bounds(np.zeros(1, np.int64), np.zeros(1, np.int64), amt)
    position = np.zeros(participants, np.int64)
    np.add.at(position, rcv, amt)
    np.subtract.at(position, snd, amt)
    _assert_zero_sum(position)
    return position


def _assert_zero_sum(position: I64) -> None:
    # Python-int sum: an int64 sum could wrap and hide a mismatch
    if sum(position.tolist()) != 0:
        raise NettingInvariantError("net positions do not sum to zero")


def settlement_instructions(position: npt.ArrayLike) -> tuple[Legs, Legs]:
    """Split a session's net positions into (debits, credits): who pays how much (the
    negative positions) and who receives how much (the positive ones). Zero positions take
    no part. Raises NettingInvariantError unless the positions sum to exactly zero."""
    pos = _int64(position, "position")
    _assert_zero_sum(pos)
    payers = np.flatnonzero(pos < 0).astype(np.int64)
    payees = np.flatnonzero(pos > 0).astype(np.int64)
    return Legs(payers, -pos[payers]), Legs(payees, pos[payees])


def session_coverage(position: npt.ArrayLike, balance: npt.ArrayLike,
                     credit: npt.ArrayLike) -> Coverage:
    """Can every participant that pays in the session pay? ``balance[p]``: its settlement
    account balance, ``credit[p]``: its unused pledge credit (intraday financing it may
    draw). A payer is short by ``-position - balance - credit`` when that is positive.
    All or nothing: the session settles only when nobody is short; the caller decides to
    wait (funds may come in) or to draw credit. Credits do not count towards a payer's
    cover: a participant has one net leg, so a payer receives nothing in the session."""
    pos = _int64(position, "position")
    bal = _int64(balance, "balance")
    cred = _int64(credit, "credit")
    if not (len(pos) == len(bal) == len(cred)):
        raise ValueError("position, balance and credit must have one entry per participant")
    if len(cred) and int(cred.min()) < 0:
        raise ValueError("unused credit is never negative")
    _assert_zero_sum(pos)
    _check_bounds(pos, np.abs(bal), cred)
    need = -pos - bal - cred  # > 0 only for payers short of cover
    short = np.flatnonzero((pos < 0) & (need > 0)).astype(np.int64)
    return Coverage(len(short) == 0, short, need[short])


def settlement_postings(position: npt.ArrayLike, settlement_account: npt.ArrayLike,
                        clearing_account: int) -> tuple[I64, I64, I64]:
    """The ledger postings of a session as columns (debit ids, credit ids, amounts), for
    ``Engine.post_columns``: every credit first (clearing account to the receiver's
    settlement account), then every debit (payer's settlement account to the clearing
    account), each group by participant. Crediting first means no settlement account is
    ever below its final balance in between, so none can pass its limit at an intermediate
    step; the clearing account dips and ends at exactly zero (it must not be guarded).
    ``settlement_account[p]``: the ledger id of participant p's settlement account."""
    debits, credits = settlement_instructions(position)
    acc = _int64(settlement_account, "settlement_account")
    if len(acc) != len(_int64(position, "position")):
        raise ValueError("one settlement account per participant")
    nc, nd = len(credits), len(debits)
    dr = np.empty(nc + nd, np.int64)
    cr = np.empty(nc + nd, np.int64)
    dr[:nc] = clearing_account
    cr[:nc] = acc[credits.participant]
    dr[nc:] = acc[debits.participant]
    cr[nc:] = clearing_account
    amounts = np.concatenate((credits.amount, debits.amount))
    return dr, cr, amounts


__all__ = [
    "ACCEPTED", "CHUNK", "QUEUED", "REJECTED", "Coverage", "Legs", "NettingInvariantError",
    "NettingResult", "net_items", "net_items_reference", "session_coverage",
    "session_positions", "settlement_instructions", "settlement_postings",
]
