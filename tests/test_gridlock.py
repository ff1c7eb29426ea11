"""HVPS gridlock resolution: hand-made queues with known answers, plus property tests that hold
every algorithm to exact feasibility and compare the optimum three ways (lsm, the MILP and a
brute force over every combination of queue prefixes)."""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.cnaps import gridlock as g
from qingsuan.cnaps.gridlock import (
    InfeasibleSolution,
    InvalidInstance,
    QueueInstance,
    balances_after,
    bilateral_offset,
    check_solution,
    fifo_with_retry,
    generate,
    largest_feasible_below,
    lsm,
    multilateral_offset,
    optimal,
    settled_value,
)

A, B, C, D = 0, 1, 2, 3
HEURISTICS = (fifo_with_retry, bilateral_offset, multilateral_offset, lsm)


def inst_of(liquidity: list[int], payments: list[tuple[int, int, int, int]]) -> QueueInstance:
    """payments: (sender, receiver, amount, priority) in arrival order."""
    cols: list[list[int]] = [[], [], [], []]
    for payment in payments:
        for col, value in zip(cols, payment, strict=True):
            col.append(value)
    return QueueInstance.from_arrays(liquidity, cols[0], cols[1], cols[2], cols[3])


def settled(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)]


def brute_force(inst: QueueInstance) -> int:
    """Best value over every combination of queue prefix lengths (tiny instances only)."""
    n_part = inst.participants
    cum_out, cum_in = [], []
    for p in range(n_part):
        pays = inst.queue_of(p)
        out = np.zeros(len(pays) + 1, dtype=np.int64)
        into = np.zeros((len(pays) + 1, n_part), dtype=np.int64)
        for j, i in enumerate(pays):
            out[j + 1] = out[j] + inst.amount[i]
            into[j + 1] = into[j]
            into[j + 1, inst.receiver[i]] += inst.amount[i]
        cum_out.append(out)
        cum_in.append(into)
    grids = np.meshgrid(*[np.arange(len(c)) for c in cum_out], indexing="ij")
    ks = np.stack([gr.ravel() for gr in grids], axis=1)  # (combinations, participants)
    outs = np.stack([cum_out[p][ks[:, p]] for p in range(n_part)], axis=1)
    ins = sum(cum_in[p][ks[:, p]] for p in range(n_part))
    ok = (inst.liquidity - outs + ins >= 0).all(axis=1)
    return int(outs.sum(axis=1)[ok].max())  # k = 0 everywhere is always feasible


# ------------------------------------------------------------------ hand-made queues


def test_three_bank_cycle_gridlock() -> None:
    # A owes B, B owes C, C owes A, 100 fen each, nobody has a fen: the textbook gridlock.
    inst = inst_of([0, 0, 0], [(A, B, 100, 5), (B, C, 100, 5), (C, A, 100, 5)])
    assert settled(fifo_with_retry(inst)) == []
    assert settled(bilateral_offset(inst)) == []  # no pair owes each other
    assert settled(multilateral_offset(inst)) == [0, 1, 2]
    assert settled(lsm(inst)) == [0, 1, 2]
    res = optimal(inst)
    assert (res.objective, res.bound, res.status) == (300, 300, "optimal")


def test_multilateral_trims_exactly_the_tail_of_the_deficit_bank() -> None:
    # A's queue is ordered by priority first: the urgent 100 to B (arrived second) is its
    # head, the normal 50 to C (arrived first) its tail. Settling all leaves A at -50;
    # removing its tail covers it exactly, and nothing else has to go.
    inst = inst_of([0, 0, 0], [(A, C, 50, 5), (A, B, 100, 4), (B, A, 100, 5)])
    assert list(inst.queue_of(A)) == [1, 0]
    for algo in (multilateral_offset, lsm):
        mask = algo(inst)
        assert settled(mask) == [1, 2]
        assert list(balances_after(inst, mask)) == [0, 0, 0]
    assert settled(fifo_with_retry(inst)) == []


def test_trimming_cascades_to_the_receivers() -> None:
    # A's deficit removes A->C 60; C then cannot cover C->D 60, which goes too.
    inst = inst_of([0, 0, 0, 0],
                   [(A, B, 100, 5), (A, C, 60, 5), (B, A, 100, 5), (C, D, 60, 5)])
    for algo in (multilateral_offset, lsm):
        assert settled(algo(inst)) == [0, 2]
    assert optimal(inst).objective == 200


def test_large_head_blocks_smaller_later_payments() -> None:
    # A has 50: the 10 and the 20 behind the 100 are covered, but FIFO keeps them waiting.
    inst = inst_of([50, 0, 0], [(A, B, 100, 5), (A, B, 10, 5), (A, C, 20, 5)])
    for algo in (*HEURISTICS, lambda i: optimal(i).mask):
        assert settled(algo(inst)) == []
    with pytest.raises(InfeasibleSolution, match="FIFO prefix"):
        check_solution(inst, np.array([False, True, False]))
    # An urgent payment overtakes normal ones: priority orders the queue before arrival.
    urgent = inst_of([50, 0, 0], [(A, B, 100, 5), (A, B, 10, 5), (A, C, 20, 4)])
    assert settled(fifo_with_retry(urgent)) == [2]
    assert settled(lsm(urgent)) == [2]


def test_check_solution_catches_overdraft_and_bad_masks() -> None:
    inst = inst_of([50, 0, 0], [(A, B, 100, 5), (B, C, 30, 5)])
    with pytest.raises(InfeasibleSolution, match="participant 0: balance after settlement -50"):
        check_solution(inst, np.array([True, False]))
    check_solution(inst, np.array([False, False]))
    short_by_one_fen = inst_of([99, 0], [(A, B, 100, 5)])
    with pytest.raises(InfeasibleSolution, match="-1 fen"):
        check_solution(short_by_one_fen, np.array([True]))
    check_solution(inst_of([100, 0], [(A, B, 100, 5)]), np.array([True]))
    with pytest.raises(InfeasibleSolution, match="participant 1"):  # B sends what it lacks
        check_solution(inst, np.array([False, True]))
    with pytest.raises(InfeasibleSolution, match="bool array"):
        check_solution(inst, np.array([1, 0]))


def test_bilateral_offset_settles_mutual_heads_within_the_candidate_limit() -> None:
    inst = inst_of([0, 0], [(A, B, 100, 5), (A, B, 100, 5), (B, A, 200, 5)])
    assert settled(fifo_with_retry(inst)) == []
    # Only one of A's payments is tested: 100 against 200 leaves B short, so nothing goes.
    assert settled(bilateral_offset(inst, max_candidates=1)) == []
    assert settled(bilateral_offset(inst, max_candidates=2)) == [0, 1, 2]
    with pytest.raises(ValueError, match="max_candidates"):
        bilateral_offset(inst, max_candidates=0)


def test_bilateral_offset_only_uses_the_run_at_the_head() -> None:
    # A's head goes to C, so A's payment to B behind it cannot be offset against B's.
    inst = inst_of([0, 0, 0], [(A, C, 10, 5), (A, B, 100, 5), (B, A, 100, 5)])
    assert settled(bilateral_offset(inst)) == []
    assert settled(lsm(inst)) == []  # C never pays A, so A can never pass its head
    # Once A can pay its head, FIFO frees the mutual pair and the offset settles it.
    inst2 = inst_of([10, 0, 0], [(A, C, 10, 5), (A, B, 100, 5), (B, A, 100, 5)])
    assert settled(bilateral_offset(inst2)) == [0, 1, 2]
    assert settled(fifo_with_retry(inst2)) == [0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sender": [0], "receiver": [0]}, "sender == receiver"),
        ({"amount": [0]}, "amount"),
        ({"liquidity": [-1, 0]}, "liquidity"),
        ({"amount": [1.5]}, "integers"),
        ({"receiver": [2]}, "out of range"),
        ({"priority": [6]}, "priority"),
        ({"amount": [10, 10]}, "length"),
    ],
)
def test_invalid_instances_are_rejected(kwargs: dict[str, list[float]], message: str) -> None:
    base: dict[str, list[float]] = {"liquidity": [0, 0], "sender": [0], "receiver": [1],
                                    "amount": [10], "priority": [5]}
    base.update(kwargs)
    with pytest.raises(InvalidInstance, match=message):
        QueueInstance.from_arrays(**base)


def test_instance_rejects_wrong_dtype_and_overflow_and_is_read_only() -> None:
    one = np.array([0], dtype=np.int64)
    with pytest.raises(InvalidInstance, match="int64"):
        QueueInstance(np.zeros(2, dtype=np.int32), one, one + 1, one + 5, one)
    big = np.array([2**62, 2**62], dtype=np.int64)
    with pytest.raises(InvalidInstance, match="overflows"):
        QueueInstance(np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64),
                      np.ones(2, dtype=np.int64), big, np.zeros(2, dtype=np.int64))
    liquidity = np.array([5, 0], dtype=np.int64)
    inst = QueueInstance(liquidity, one, one + 1, one + 5, one)
    liquidity[0] = 0  # the instance holds its own copy
    assert inst.liquidity[0] == 5
    with pytest.raises(ValueError, match="read-only"):
        inst.amount[0] = 1


def test_empty_queue() -> None:
    inst = inst_of([3, 4], [])
    for algo in HEURISTICS:
        assert algo(inst).shape == (0,)
    assert optimal(inst).objective == 0


def test_largest_feasible_below_repairs_a_bad_mask() -> None:
    # The repair path of `optimal`: a mask with a hole and an overdraft is cut back to the
    # best solution inside it.
    inst = inst_of([0, 0, 0, 0],
                   [(A, B, 100, 5), (A, C, 60, 5), (B, A, 100, 5), (C, D, 60, 5), (D, A, 60, 5)])
    everything = np.ones(5, dtype=np.bool_)
    assert np.array_equal(largest_feasible_below(inst, everything), lsm(inst))
    assert settled(largest_feasible_below(inst, everything)) == [0, 1, 2, 3, 4]
    # Without B->A, A cannot pay anything; C and D then have nothing either.
    assert settled(largest_feasible_below(inst, np.array([True, True, False, True, True]))) == []
    # A hole in A's queue (A->C out) leaves C short for C->D, so D cannot pay A either;
    # A->B and B->A still offset each other.
    no_a_to_c = np.array([True, False, True, True, True])
    assert settled(largest_feasible_below(inst, no_a_to_c)) == [0, 2]
    no_a_to_b = np.array([False, True, True, True, True])
    assert settled(largest_feasible_below(inst, no_a_to_b)) == []


# ------------------------------------------------------------------------- generator


def test_generator_is_seeded_and_follows_its_recipe() -> None:
    a, b = generate(30, 3000, 0.1, seed=7), generate(30, 3000, 0.1, seed=7)
    for name in ("liquidity", "sender", "receiver", "amount", "priority"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.amount, generate(30, 3000, 0.1, seed=8).amount)
    assert a.amount.min() >= 100 and (a.sender != a.receiver).all()
    outflow = np.zeros(30, dtype=np.int64)
    np.add.at(outflow, a.sender, a.amount)
    assert list(a.liquidity) == [int(o) * 1000 // 10_000 for o in outflow]  # 10%, floored
    assert 0.75 < float(np.mean(a.priority == 5)) < 0.9
    assert (a.priority < 4).any()
    # Heavy tail and a dense core: the top 10% of payments and of senders carry most value.
    top = np.sort(a.amount)[::-1]
    assert top[:300].sum() > 0.4 * top.sum()
    assert np.sort(outflow)[::-1][:3].sum() > 0.4 * outflow.sum()
    mean_yuan = float(a.amount.mean()) / 100
    assert 10e6 < mean_yuan < 40e6  # about 22 million CNY per HVPS item


def test_lsm_matches_the_milp_on_generated_instances() -> None:
    for seed, share in ((1, 0.05), (2, 0.1)):
        inst = generate(20, 400, share, seed)
        best = lsm(inst)
        res = optimal(inst, time_limit_s=20)
        assert res.status == "optimal"
        assert settled_value(inst, best) == res.objective
        assert np.array_equal(best, multilateral_offset(inst))
        assert settled_value(inst, best) >= settled_value(inst, fifo_with_retry(inst))
        warm = optimal(inst, time_limit_s=20, warm_start=best)
        assert warm.objective == res.objective


def test_lsm_rounds_and_worklist_agree_on_a_larger_instance() -> None:
    inst = generate(50, 2000, 0.05, seed=3)
    expected = multilateral_offset(inst)
    with mock.patch.object(g, "_LSM_MIN_DEFICIT", 1):  # numpy rounds do all the work
        assert np.array_equal(lsm(inst), expected)
    with mock.patch.object(g, "_LSM_MAX_ROUNDS", 0):  # the scalar worklist does it all
        assert np.array_equal(lsm(inst), expected)
    assert settled_value(inst, expected) > settled_value(inst, fifo_with_retry(inst))


# -------------------------------------------------------------------- property tests


@st.composite
def small_instances(draw: st.DrawFn) -> QueueInstance:
    n_part = draw(st.integers(2, 6))
    n_pay = draw(st.integers(0, 25))
    # Scale 10**7 puts amounts around 10**9..10**10 fen: the MILP's scaling is tested too.
    unit = draw(st.sampled_from([1, 10**7]))
    ints = st.integers
    sender = draw(st.lists(ints(0, n_part - 1), min_size=n_pay, max_size=n_pay))
    offset = draw(st.lists(ints(1, n_part - 1), min_size=n_pay, max_size=n_pay))
    amount = draw(st.lists(ints(1, 1000), min_size=n_pay, max_size=n_pay))
    priority = draw(st.lists(ints(0, 5), min_size=n_pay, max_size=n_pay))
    liquidity = draw(st.lists(st.one_of(st.just(0), ints(0, 1500)),
                              min_size=n_part, max_size=n_part))
    receiver = [(s + o) % n_part for s, o in zip(sender, offset, strict=True)]
    return QueueInstance.from_arrays(
        [x * unit for x in liquidity], sender, receiver, [x * unit for x in amount], priority)


@settings(max_examples=300, deadline=None)
@given(small_instances())
def test_heuristics_are_feasible_and_ordered(inst: QueueInstance) -> None:
    masks = {algo.__name__: algo(inst) for algo in HEURISTICS}
    for mask in masks.values():
        check_solution(inst, mask)
        assert int((balances_after(inst, mask) - inst.liquidity).sum()) == 0  # money conserved
    value = {name: settled_value(inst, mask) for name, mask in masks.items()}
    assert value["lsm"] == value["multilateral_offset"] >= 0
    assert value["lsm"] >= value["bilateral_offset"] >= value["fifo_with_retry"]
    # The optimum contains every feasible solution (feasible sets are closed under union).
    best = masks["lsm"]
    for name in ("fifo_with_retry", "bilateral_offset"):
        assert not (masks[name] & ~best).any()
    with mock.patch.object(g, "_LSM_MIN_DEFICIT", 1):
        assert np.array_equal(lsm(inst), best)


@settings(max_examples=80, deadline=None)
@given(small_instances())
def test_milp_and_lsm_reach_the_brute_force_optimum(inst: QueueInstance) -> None:
    exact = brute_force(inst)
    res = optimal(inst, time_limit_s=10)
    check_solution(inst, res.mask)
    assert res.status == "optimal"
    assert res.objective == exact
    assert res.bound >= exact
    assert settled_value(inst, lsm(inst)) == exact
    assert np.array_equal(largest_feasible_below(inst, res.mask), res.mask)
    for algo in HEURISTICS:
        assert res.objective >= settled_value(inst, algo(inst))


def test_brute_force_itself_on_a_known_case() -> None:
    # Guards the oracle: the cycle is worth 300 only when all three prefixes move together.
    inst = inst_of([0, 0, 0], [(A, B, 100, 5), (B, C, 100, 5), (C, A, 100, 5), (A, C, 7, 5)])
    assert brute_force(inst) == 300
    assert list(itertools.chain(inst.queue_of(A))) == [0, 3]
