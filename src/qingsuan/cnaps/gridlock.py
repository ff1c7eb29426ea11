"""HVPS gridlock resolution (the liquidity-saving mechanism, LSM) as pure functions over arrays.

A *queue instance* is a snapshot of the HVPS queue: every participant's available liquidity
(balance plus unused intraday credit, fen) and the payments waiting in the participants' queues.
A *solution* is a set of queued payments to settle simultaneously, as a boolean mask over the
payments. It is feasible when

(a) no participant ends below zero: ``liquidity[p] - out_p(S) + in_p(S) >= 0``, and
(b) every participant's settled outgoing payments form a PREFIX of its queue, the queue being
    ordered by ``(priority, arrival index)`` (HVPS rule: by level, FIFO within a level).

Rule (b) makes the feasible solutions closed under union: if S1 and S2 are feasible, take for
each participant the longer of its two prefixes; its outflow is that of one of the two solutions
and its inflow is at least as large, so its balance is not lower. Hence there is a single
greatest feasible solution S*, it contains every feasible solution, and it is the unique optimum
(amounts are positive). Trimming queue tails of participants in deficit, starting from "settle
everything", never removes a payment of S* (a participant in deficit under T ⊇ S* must settle
fewer payments than under T in every feasible solution below T), so the classic multilateral
offset reaches S* exactly, whatever the order of trimming. `lsm` and `multilateral_offset`
compute it by two different code paths; `optimal` (a MILP with highspy) confirms it
independently. See docs/GRIDLOCK.md.

Money is int64 fen throughout; floats appear only inside the MILP (scaled), and its answer is
re-checked with exact integers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from qingsuan.vocabulary import Priority

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: HVPS priority levels, most urgent first (qingsuan.vocabulary.Priority)
PRIORITY_LEVELS: Final = len(Priority)

# Every balance, inflow or outflow is bounded by max(liquidity) + sum(amount); keeping that
# below 2**63 makes every int64 sum in this module exact (numpy integer sums wrap silently).
_INT64_MAX: Final = 2**63 - 1


class InvalidInstance(ValueError):
    """A queue instance whose arrays break the model (shape, dtype, sign, self-payment...)."""


class InfeasibleSolution(ValueError):
    """A settlement mask that overdraws a participant or skips ahead in a queue."""


class QueueOrder(NamedTuple):
    """Each participant's queue, as one array of payment indices sorted by (sender, priority, i).

    ``order[starts[p]:starts[p + 1]]`` is participant p's queue, head first; ``position[i]`` is
    payment i's place in its sender's queue (0 = head).
    """

    order: IntArray
    starts: IntArray
    position: IntArray

    @property
    def lengths(self) -> IntArray:
        return np.diff(self.starts)


@dataclass(frozen=True, eq=False)
class QueueInstance:
    """A snapshot of the HVPS queue. Arrays are int64, validated, copied and made read-only."""

    liquidity: IntArray
    sender: IntArray
    receiver: IntArray
    amount: IntArray
    priority: IntArray

    def __post_init__(self) -> None:
        names = ("liquidity", "sender", "receiver", "amount", "priority")
        for name in names:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise InvalidInstance(f"{name}: must be a 1-d numpy array")
            if arr.dtype != np.int64:
                raise InvalidInstance(f"{name}: dtype must be int64, got {arr.dtype}")
            # A private read-only copy: the instance is a value, callers cannot mutate it later.
            frozen = arr.copy()
            frozen.setflags(write=False)
            object.__setattr__(self, name, frozen)
        n_part = self.liquidity.shape[0]
        n_pay = self.sender.shape[0]
        if n_part < 1:
            raise InvalidInstance("liquidity: at least one participant is needed")
        for name in names[1:]:
            if getattr(self, name).shape[0] != n_pay:
                raise InvalidInstance(f"{name}: length {getattr(self, name).shape[0]} != {n_pay}")
        if (self.liquidity < 0).any():
            raise InvalidInstance("liquidity: must be >= 0 (balance plus unused credit)")
        if n_pay == 0:
            return
        for name in ("sender", "receiver"):
            arr = getattr(self, name)
            if arr.min() < 0 or arr.max() >= n_part:
                raise InvalidInstance(f"{name}: participant index out of range 0..{n_part - 1}")
        if (self.sender == self.receiver).any():
            i = int(np.flatnonzero(self.sender == self.receiver)[0])
            raise InvalidInstance(f"payment {i}: sender == receiver")
        if (self.amount <= 0).any():
            i = int(np.flatnonzero(self.amount <= 0)[0])
            raise InvalidInstance(f"amount: payment {i} has amount {int(self.amount[i])} <= 0")
        if self.priority.min() < 0 or self.priority.max() >= PRIORITY_LEVELS:
            raise InvalidInstance(f"priority: must be in 0..{PRIORITY_LEVELS - 1}")
        # Exact Python-int total (an int64 sum could wrap before we could see it).
        total = sum(self.amount.tolist()) + int(self.liquidity.max())
        if total > _INT64_MAX:
            raise InvalidInstance("amount: total queued value plus liquidity overflows int64")

    @classmethod
    def from_arrays(
        cls,
        liquidity: npt.ArrayLike,
        sender: npt.ArrayLike,
        receiver: npt.ArrayLike,
        amount: npt.ArrayLike,
        priority: npt.ArrayLike | None = None,
    ) -> QueueInstance:
        """Build from lists or integer arrays; rejects floats rather than truncating money.

        ``priority`` defaults to 5 (normal) for every payment.
        """
        def as_int64(name: str, value: npt.ArrayLike) -> IntArray:
            arr = np.asarray(value)
            if arr.size and arr.dtype.kind not in "iu":
                raise InvalidInstance(f"{name}: must be integers, got dtype {arr.dtype}")
            return arr.astype(np.int64, copy=True).reshape(-1)

        snd = as_int64("sender", sender)
        pri = (np.full(snd.shape[0], PRIORITY_LEVELS - 1, dtype=np.int64) if priority is None
               else as_int64("priority", priority))
        return cls(as_int64("liquidity", liquidity), snd, as_int64("receiver", receiver),
                   as_int64("amount", amount), pri)

    @property
    def participants(self) -> int:
        return int(self.liquidity.shape[0])

    @property
    def payments(self) -> int:
        return int(self.sender.shape[0])

    @cached_property
    def queue(self) -> QueueOrder:
        """The participants' queues (computed once; the instance is immutable)."""
        return queue_order(self)

    def queue_of(self, participant: int) -> IntArray:
        """Participant's queued payment indices, head first."""
        q = self.queue
        return q.order[q.starts[participant]: q.starts[participant + 1]]


def queue_order(inst: QueueInstance) -> QueueOrder:
    """Sort the payments into per-sender queues ordered by (priority, arrival index)."""
    n = inst.payments
    idx = np.arange(n, dtype=np.int64)
    # lexsort sorts by the last key first: sender, then priority, then arrival.
    order = np.lexsort((idx, inst.priority, inst.sender)).astype(np.int64)
    counts = np.bincount(inst.sender, minlength=inst.participants).astype(np.int64)
    starts = np.zeros(inst.participants + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    position = np.empty(n, dtype=np.int64)
    position[order] = idx - np.repeat(starts[:-1], counts)
    return QueueOrder(order, starts, position)


# --------------------------------------------------------------------------- solutions


def _as_mask(inst: QueueInstance, mask: npt.ArrayLike) -> BoolArray:
    arr = np.asarray(mask)
    if arr.shape != (inst.payments,) or arr.dtype != np.bool_:
        raise InfeasibleSolution(f"mask: must be a bool array of shape ({inst.payments},)")
    return arr


def balances_after(inst: QueueInstance, mask: npt.ArrayLike) -> IntArray:
    """Each participant's liquidity after settling the masked payments (exact int64)."""
    m = _as_mask(inst, mask)
    out = np.zeros(inst.participants, dtype=np.int64)
    inc = np.zeros(inst.participants, dtype=np.int64)
    # np.add.at on int64 (not bincount, whose weights are float64 and would round fen).
    np.add.at(out, inst.sender[m], inst.amount[m])
    np.add.at(inc, inst.receiver[m], inst.amount[m])
    return inst.liquidity - out + inc


def settled_value(inst: QueueInstance, mask: npt.ArrayLike) -> int:
    """Total fen settled by the mask (exact: the instance's totals fit in int64)."""
    return int(inst.amount[_as_mask(inst, mask)].sum())


def check_solution(inst: QueueInstance, mask: npt.ArrayLike) -> None:
    """Raise InfeasibleSolution unless the mask keeps every balance >= 0 and every queue a prefix.

    Exact integer arithmetic; this is the ground truth every algorithm here is held to.
    """
    m = _as_mask(inst, mask)
    q = inst.queue
    in_queue = m[q.order]
    snd = inst.sender[q.order]
    # Within one sender's queue a settled payment may not follow an unsettled one.
    gaps = ~in_queue[:-1] & in_queue[1:] & (snd[:-1] == snd[1:])
    if gaps.any():
        j = int(np.flatnonzero(gaps)[0])
        raise InfeasibleSolution(
            f"participant {int(snd[j])}: payment {int(q.order[j + 1])} settles while "
            f"payment {int(q.order[j])}, ahead of it in the queue, does not (FIFO prefix rule)")
    bal = balances_after(inst, m)
    if (bal < 0).any():
        p = int(np.flatnonzero(bal < 0)[0])
        raise InfeasibleSolution(
            f"participant {p}: balance after settlement {int(bal[p])} fen < 0")


def mask_from_prefix(inst: QueueInstance, lengths: npt.ArrayLike) -> BoolArray:
    """The mask settling the first ``lengths[p]`` payments of each participant's queue."""
    k = np.asarray(lengths, dtype=np.int64)
    return np.asarray(inst.queue.position < k[inst.sender], dtype=np.bool_)


def prefix_from_mask(inst: QueueInstance, mask: npt.ArrayLike) -> IntArray:
    """Number of settled payments per participant (meaningful for prefix masks)."""
    m = _as_mask(inst, mask)
    return np.bincount(inst.sender[m], minlength=inst.participants).astype(np.int64)


# ------------------------------------------------------------------ shared sorted views


class _Sorted:
    """Payments in queue order as Python lists: the scalar loops below run on ints, not on
    numpy scalars, which are ~10x slower one at a time."""

    def __init__(self, inst: QueueInstance) -> None:
        q = inst.queue
        self.amount: list[int] = inst.amount[q.order].tolist()
        self.receiver: list[int] = inst.receiver[q.order].tolist()
        self.starts: list[int] = q.starts.tolist()


def _trim_tails(inst: QueueInstance, lengths: IntArray, srt: _Sorted | None = None) -> IntArray:
    """Greatest feasible prefix solution below ``lengths`` (multilateral tail trimming).

    Worklist of participants in deficit; each is trimmed from its tail one payment at a time
    until covered, and every trimmed payment is debited back from its receiver's inflow
    incrementally (O(1) per removal), which may put the receiver in deficit in turn.
    """
    s = srt or _Sorted(inst)
    amt, rcv, st = s.amount, s.receiver, s.starts
    end = (inst.queue.starts[:-1] + lengths).tolist()  # one past each settled prefix
    bal: list[int] = balances_after(inst, mask_from_prefix(inst, lengths)).tolist()
    pending = [b < 0 for b in bal]
    work = deque(p for p, b in enumerate(bal) if b < 0)
    while work:
        p = work.popleft()
        pending[p] = False
        b, j = bal[p], end[p]
        while b < 0:
            j -= 1
            if j < st[p]:  # impossible: with nothing sent, liquidity + inflow >= 0
                raise AssertionError(f"participant {p} in deficit with an empty prefix")
            a = amt[j]
            b += a
            r = rcv[j]
            br = bal[r] - a
            bal[r] = br
            if br < 0 and not pending[r]:
                pending[r] = True
                work.append(r)
        bal[p], end[p] = b, j
    return np.asarray(end, dtype=np.int64) - inst.queue.starts[:-1]


def largest_feasible_below(inst: QueueInstance, mask: npt.ArrayLike) -> BoolArray:
    """The greatest feasible solution contained in ``mask`` (which need not be feasible).

    Keeps each participant's longest queue prefix lying inside the mask, then trims tails
    until everyone is covered. Used to repair the MILP's float answer; with an all-true mask
    it is the optimum.
    """
    m = _as_mask(inst, mask)
    q = inst.queue
    lengths = q.lengths.copy()
    out_of_mask = ~m[q.order]
    positions = np.arange(inst.payments, dtype=np.int64) - np.repeat(q.starts[:-1], q.lengths)
    np.minimum.at(lengths, inst.sender[q.order][out_of_mask], positions[out_of_mask])
    result = mask_from_prefix(inst, _trim_tails(inst, lengths))
    check_solution(inst, result)
    return result


# -------------------------------------------------------------------------- algorithms


class _Heads:
    """Mutable queue heads and balances for the one-at-a-time (RTGS) algorithms."""

    def __init__(self, inst: QueueInstance) -> None:
        self.srt = _Sorted(inst)
        self.head: list[int] = self.srt.starts[:-1].copy()  # absolute position of each head
        self.end: list[int] = self.srt.starts[1:]
        self.bal: list[int] = inst.liquidity.tolist()

    def drain(self, work: Iterable[int], touched: list[int] | None = None) -> None:
        """Settle covered heads one at a time until none is covered (FIFO with retry).

        A credit can only help its receiver, so only receivers are retried; the end state
        does not depend on the order (a covered head stays covered until it settles).
        ``touched`` collects participants whose head or balance changed.
        """
        amt, rcv, head, end, bal = self.srt.amount, self.srt.receiver, self.head, self.end, self.bal
        queue = deque(work)
        pending = [False] * len(bal)
        for p in queue:
            pending[p] = True
        while queue:
            p = queue.popleft()
            pending[p] = False
            h, e, b = head[p], end[p], bal[p]
            while h < e and amt[h] <= b:
                a = amt[h]
                b -= a
                r = rcv[h]
                bal[r] += a
                h += 1
                if not pending[r]:
                    pending[r] = True
                    queue.append(r)
                if touched is not None:
                    touched.append(r)
            if touched is not None and h != head[p]:
                touched.append(p)
            head[p], bal[p] = h, b

    def lengths(self) -> IntArray:
        return (np.asarray(self.head, dtype=np.int64)
                - np.asarray(self.srt.starts[:-1], dtype=np.int64))


def fifo_with_retry(inst: QueueInstance) -> BoolArray:
    """Plain RTGS: settle covered queue heads one at a time, retrying receivers, until stuck."""
    heads = _Heads(inst)
    heads.drain(range(inst.participants))
    mask = mask_from_prefix(inst, heads.lengths())
    check_solution(inst, mask)
    return mask


def _head_run(heads: _Heads, p: int, to: int, limit: int) -> list[int]:
    """Cumulative amounts of the run of p's queue, from its head, that all go to ``to``."""
    amt, rcv = heads.srt.amount, heads.srt.receiver
    cum = [0]
    j, e = heads.head[p], min(heads.end[p], heads.head[p] + limit)
    while j < e and rcv[j] == to:
        cum.append(cum[-1] + amt[j])
        j += 1
    return cum


def bilateral_offset(inst: QueueInstance, max_candidates: int = 64) -> BoolArray:
    """FIFO with retry, plus bilateral offsetting of mutually blocked queue heads.

    Rule: two participants a and b are offset only when a's head goes to b and b's head goes
    to a. Because a's settled set must stay a prefix of its *whole* queue, only the run of
    payments to b at the head of a's queue can go (at most ``max_candidates`` of them are
    tested), likewise for b. Of those two runs, the longest prefixes (x, y) are settled with
    ``bal_a - A[x] + B[y] >= 0`` and ``bal_b - B[y] + A[x] >= 0``, found by trimming tails;
    then FIFO resumes. Repeats until neither FIFO nor any mutual pair can settle anything.
    """
    if max_candidates < 1:
        raise ValueError("max_candidates must be >= 1")
    heads = _Heads(inst)
    rcv, head, end, bal = heads.srt.receiver, heads.head, heads.end, heads.bal
    touched: list[int] = []
    heads.drain(range(inst.participants), touched)
    # A pair's outcome depends only on its two heads and balances, so after the first sweep
    # only participants whose head or balance changed need to be looked at again.
    work = deque(range(inst.participants))
    pending = [True] * inst.participants
    while work:
        a = work.popleft()
        pending[a] = False
        if head[a] == end[a]:
            continue
        b = rcv[head[a]]
        if head[b] == end[b] or rcv[head[b]] != a:
            continue
        cum_a = _head_run(heads, a, b, max_candidates)
        cum_b = _head_run(heads, b, a, max_candidates)
        x, y = len(cum_a) - 1, len(cum_b) - 1
        while True:
            x0, y0 = x, y
            while bal[a] - cum_a[x] + cum_b[y] < 0:
                x -= 1
            while bal[b] - cum_b[y] + cum_a[x] < 0:
                y -= 1
            if (x, y) == (x0, y0):
                break
        if x == 0 and y == 0:
            continue
        net = cum_b[y] - cum_a[x]
        bal[a] += net
        bal[b] -= net
        head[a] += x
        head[b] += y
        touched.clear()
        heads.drain((a, b), touched)
        for p in (a, b, *touched):
            if not pending[p]:
                pending[p] = True
                work.append(p)
    mask = mask_from_prefix(inst, heads.lengths())
    check_solution(inst, mask)
    return mask


def multilateral_offset(inst: QueueInstance) -> BoolArray:
    """Classic multilateral offset: offer everything, trim deficit participants' tails.

    Start from every queued payment; any participant whose liquidity plus net position is
    negative loses payments from the tail of its queue (lowest priority, latest first) until
    covered; each removal is debited incrementally from its receiver, which may fall into
    deficit in turn. Under the FIFO prefix rule this yields the optimum (module docstring).
    """
    lengths = _trim_tails(inst, inst.queue.lengths.copy())
    mask = mask_from_prefix(inst, lengths)
    check_solution(inst, mask)
    return mask


# A round costs a few O(N) numpy passes; once few participants are in deficit the scalar
# worklist (O(1) per removal) is cheaper. Both are exact, so these only tune speed.
_LSM_MAX_ROUNDS: Final = 64
_LSM_MIN_DEFICIT: Final = 4


def lsm(inst: QueueInstance) -> BoolArray:
    """The liquidity-saving mechanism: the greatest feasible prefix solution, hence optimal.

    Same fixed point as `multilateral_offset`, computed differently: whole rounds in numpy,
    where every participant in deficit is cut back at once to the longest prefix its current
    inflow covers (a binary search in the queue's prefix sums), and the removed payments are
    debited from their receivers with one scatter per round. Every cut is necessary for every
    feasible solution below the current one, so rounds never overshoot. Cascades of small
    rounds are left to the scalar worklist, which finishes exactly. The result is checked.
    """
    q = inst.queue
    n = inst.payments
    amt = inst.amount[q.order]
    rcv = inst.receiver[q.order]
    first = q.starts[:-1]
    cum = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(amt, out=cum[1:])
    end = q.starts[1:].copy()
    inc = np.zeros(inst.participants, dtype=np.int64)
    np.add.at(inc, rcv, amt)
    for _ in range(_LSM_MAX_ROUNDS):
        bal = inst.liquidity - (cum[end] - cum[first]) + inc
        deficit = np.flatnonzero(bal < 0)
        if deficit.size < _LSM_MIN_DEFICIT:
            break
        # Longest prefix p can afford: cum[new_end] <= cum[end] - deficit. cum is strictly
        # increasing (amounts > 0), and cum[first[p]] <= target since liquidity, inflow >= 0.
        target = cum[end[deficit]] + bal[deficit]
        new_end = np.searchsorted(cum, target, side="right").astype(np.int64) - 1
        cut = end[deficit] - new_end
        removed = np.arange(int(cut.sum()), dtype=np.int64) + np.repeat(
            new_end - (np.cumsum(cut) - cut), cut)
        np.subtract.at(inc, rcv[removed], amt[removed])
        end[deficit] = new_end
    lengths = _trim_tails(inst, end - first)
    mask = mask_from_prefix(inst, lengths)
    check_solution(inst, mask)
    return mask


#: how gridlock resolution settled a queued payment (:func:`resolve`'s answer)
STAYS: Final = 0
BILATERAL: Final = 1
MULTILATERAL: Final = 2
#: the steps, by code (STAYS has none)
STEP_NAMES: Final = ("", "bilateral", "multilateral")
#: ``hvps.lsm``'s choices
ALGORITHMS: Final = ("off", "bilateral", "multilateral", "lsm")


def resolve(inst: QueueInstance, algorithm: str, bilateral_candidates: int = 64, *,
            steps: bool = False) -> npt.NDArray[np.int8]:
    """Gridlock resolution as HVPS runs it (``hvps.lsm``): per queued payment, the step that
    settles it (BILATERAL, MULTILATERAL) or STAYS.

    ``bilateral`` settles what `bilateral_offset` settles; ``multilateral`` and ``lsm`` the
    optimum (`multilateral_offset`, `lsm`). With ``steps`` the optimum is split into its
    bilateral step (what `bilateral_offset` settles, a feasible solution hence part of the
    optimum) and the rest, the multilateral step: DOMAIN.md's "bilateral, then
    multilateral". The set settled is the same either way; ``steps`` costs one more pass.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"gridlock resolution: unknown algorithm {algorithm!r} (one of "
                         f"{', '.join(ALGORITHMS)})")
    out = np.zeros(inst.payments, np.int8)
    if algorithm == "off" or inst.payments < 2:
        return out
    if algorithm == "bilateral":
        out[bilateral_offset(inst, bilateral_candidates)] = BILATERAL
        return out
    best = multilateral_offset(inst) if algorithm == "multilateral" else lsm(inst)
    out[best] = MULTILATERAL
    if steps and best.any():
        pair = bilateral_offset(inst, bilateral_candidates)
        assert not (pair & ~best).any(), "a feasible solution lies outside the optimum"
        out[pair] = BILATERAL
    return out


# ---------------------------------------------------------------------- optimal (MILP)


class OptimalResult(NamedTuple):
    """MILP answer. ``objective`` and ``bound`` are fen; ``bound`` >= the true optimum up to
    solver tolerances. ``status`` is "optimal" (gap within mip_gap), "time_limit", or another
    HiGHS model status; ", repaired" is appended if exact re-checking had to trim the MILP's
    float solution."""

    mask: BoolArray
    objective: int
    bound: int
    status: str

    @property
    def gap(self) -> float:
        return (self.bound - self.objective) / self.bound if self.bound else 0.0


def optimal(
    inst: QueueInstance,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
    *,
    warm_start: BoolArray | None = None,
    unit_fen: int = 100,
    log: bool = False,
) -> OptimalResult:
    """Reference optimum by mixed-integer programming (HiGHS via highspy).

    max sum a_i x_i over binary x, s.t. per participant ``sum_in a x - sum_out a x >= -liq``
    and per consecutive pair in a queue ``x_next <= x_prev``. Amounts enter as floats in units
    of ``unit_fen`` (default: yuan) to keep HiGHS numerically sane; the returned mask is
    re-checked in exact fen and, should a tolerance have let a balance dip below zero, trimmed
    to the greatest feasible solution below it.
    """
    import highspy  # imported here so the heuristics work where the solver is not installed

    n, n_part = inst.payments, inst.participants
    if n == 0:
        return OptimalResult(np.zeros(0, dtype=np.bool_), 0, 0, "optimal")
    q = inst.queue
    scaled = inst.amount.astype(np.float64) / unit_fen
    snd_sorted = inst.sender[q.order]
    same = np.flatnonzero(snd_sorted[:-1] == snd_sorted[1:])  # consecutive pairs in one queue
    n_prec = same.size
    pay = np.arange(n, dtype=np.int64)
    prec_rows = n_part + np.arange(n_prec, dtype=np.int64)
    rows = np.concatenate([inst.sender, inst.receiver, prec_rows, prec_rows])
    cols = np.concatenate([pay, pay, q.order[same + 1], q.order[same]])
    vals = np.concatenate([-scaled, scaled, np.ones(n_prec), -np.ones(n_prec)])
    by_row = np.lexsort((cols, rows))
    n_rows = n_part + n_prec
    row_start = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=row_start[1:])

    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = n_rows
    lp.col_cost_ = scaled
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    inf = highspy.kHighsInf
    lp.row_lower_ = np.concatenate([-inst.liquidity.astype(np.float64) / unit_fen,
                                    np.full(n_prec, -inf)])
    lp.row_upper_ = np.concatenate([np.full(n_part, inf), np.zeros(n_prec)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = n_rows
    lp.a_matrix_.start_ = row_start.astype(np.int32)
    lp.a_matrix_.index_ = cols[by_row].astype(np.int32)
    lp.a_matrix_.value_ = vals[by_row]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    lp.sense_ = highspy.ObjSense.kMaximize

    h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy leaves __init__ unannotated
    h.setOptionValue("output_flag", log)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("random_seed", 0)  # deterministic search (up to the time limit)
    h.passModel(lp)
    if warm_start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = _as_mask(inst, warm_start).astype(np.float64).tolist()
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    model_status = h.getModelStatus()
    info = h.getInfo()
    if model_status == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif model_status == highspy.HighsModelStatus.kTimeLimit:
        status = "time_limit"
    else:
        status = h.modelStatusToString(model_status)

    if info.primal_solution_status == highspy.kSolutionStatusFeasible:
        mask = np.asarray(np.asarray(h.getSolution().col_value) > 0.5, dtype=np.bool_)
    else:
        mask = np.zeros(n, dtype=np.bool_)  # no incumbent: settling nothing is always feasible
    try:
        check_solution(inst, mask)
    except InfeasibleSolution:
        # A float tolerance let a balance dip below zero (or rounding broke a prefix).
        mask = largest_feasible_below(inst, mask)
        status += ", repaired"
    objective = settled_value(inst, mask)
    dual = float(info.mip_dual_bound)
    bound = math.ceil(dual * unit_fen) if math.isfinite(dual) else sum(inst.amount.tolist())
    bound = max(objective, min(bound, sum(inst.amount.tolist())))
    return OptimalResult(mask, objective, bound, status)


# ----------------------------------------------------------------------------- generator


def generate(
    participants: int,
    payments: int,
    liquidity_share: float,
    seed: int,
    *,
    mean_amount_fen: int = 2_200_000_000,
    sigma: float = 1.5,
    zipf_exponent: float = 1.1,
    priority_weights: Sequence[float] = (0.002, 0.008, 0.003, 0.012, 0.15, 0.825),
) -> QueueInstance:
    """A seeded HVPS queue snapshot.

    Amounts: lognormal with mean ``mean_amount_fen`` (22 million CNY, PBOC 2025: 36.15 trillion
    over 1.63 million items) and ``sigma``, rounded to whole fen, at least 1 yuan. Senders and
    receivers: drawn with power-law weights ``rank ** -zipf_exponent`` over a shuffled list of
    banks, so a few big banks exchange most of the value. Priority: mostly normal (5), some
    urgent (4), a few of the higher levels. Liquidity: ``liquidity_share`` of each participant's
    total queued outflow, rounded down to the fen.
    """
    if participants < 2 or payments < 0:
        raise ValueError("need >= 2 participants and >= 0 payments")
    if not 0.0 <= liquidity_share <= 1.0:
        raise ValueError("liquidity_share must be in [0, 1]")
    rng = np.random.default_rng(seed)
    weights = np.arange(1, participants + 1, dtype=np.float64) ** -zipf_exponent
    weights = weights[rng.permutation(participants)]
    weights /= weights.sum()
    sender = rng.choice(participants, size=payments, p=weights).astype(np.int64)
    receiver = rng.choice(participants, size=payments, p=weights).astype(np.int64)
    clash = np.flatnonzero(sender == receiver)
    while clash.size:  # redraw self-payments: the receiver law conditioned on != sender
        receiver[clash] = rng.choice(participants, size=clash.size, p=weights)
        clash = clash[sender[clash] == receiver[clash]]
    mu = math.log(mean_amount_fen) - sigma * sigma / 2.0
    # The only floats near money: a draw from a continuous law, rounded once to integer fen.
    raw = rng.lognormal(mu, sigma, size=payments)
    amount = np.clip(np.rint(raw), 100, 10**15).astype(np.int64)
    pw = np.asarray(priority_weights, dtype=np.float64)
    priority = rng.choice(PRIORITY_LEVELS, size=payments, p=pw / pw.sum()).astype(np.int64)
    outflow = np.zeros(participants, dtype=np.int64)
    np.add.at(outflow, sender, amount)
    bp = round(liquidity_share * 10_000)  # basis points: integer arithmetic below, no overflow
    liquidity = (outflow // 10_000) * bp + (outflow % 10_000) * bp // 10_000
    return QueueInstance(liquidity.astype(np.int64), sender, receiver, amount, priority)
