"""BEPS/IBPS netting: the vectorised path gives, item by item, the plain loop's outcome; the
outcome keeps every position within its cap at every moment; sessions settle exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.cnaps.netting import (
    ACCEPTED,
    QUEUED,
    REJECTED,
    NettingInvariantError,
    NettingResult,
    _net,
    net_items,
    net_items_reference,
    session_coverage,
    session_positions,
    settlement_instructions,
    settlement_postings,
)

I64 = npt.NDArray[np.int64]


def assert_same(got: NettingResult, want: NettingResult) -> None:
    assert got.status.tolist() == want.status.tolist()
    assert got.order.tolist() == want.order.tolist()
    assert got.position.tolist() == want.position.tolist()
    assert got.low.tolist() == want.low.tolist()
    assert got.queued_on_arrival.tolist() == want.queued_on_arrival.tolist()


def replay(position: list[int], cap: list[int], sender: list[int], receiver: list[int],
           amount: list[int], out: NettingResult) -> None:
    """Walk the netted order from the starting positions: no debit may end past the cap,
    and the walk must end at the reported positions with the reported lows."""
    pos = list(position)
    low = list(position)
    for j in out.order.tolist():
        s, r, a = sender[j], receiver[j], amount[j]
        pos[s] -= a
        assert pos[s] >= -cap[s], f"item {j} took participant {s} past its cap"
        low[s] = min(low[s], pos[s])
        pos[r] += a
    assert pos == out.position.tolist()
    assert low == out.low.tolist()
    assert sum(pos) == sum(position)  # zero-sum moves
    netted = out.order.tolist()
    assert len(netted) == len(set(netted))
    assert sorted(netted) == np.flatnonzero(out.status == ACCEPTED).tolist()


def check_semantics(position: list[int], cap: list[int], sender: list[int],
                    receiver: list[int], amount: list[int], out: NettingResult, mode: str,
                    carried: int = 0) -> None:
    """What the rule says, checked independently of both implementations."""
    replay(position, cap, sender, receiver, amount, out)
    status = out.status.tolist()
    if mode == "ibps":
        assert QUEUED not in status
        # accepted items net in arrival order; a rejected item would have passed the cap at
        # its moment, and changed nothing
        assert out.order.tolist() == sorted(out.order.tolist())
        pos = list(position)
        for i, st_ in enumerate(status):
            s, r, a = sender[i], receiver[i], amount[i]
            if st_ == REJECTED:
                assert pos[s] - a < -cap[s]
                assert out.queued_on_arrival[i]
            else:
                assert pos[s] - a >= -cap[s]
                pos[s] -= a
                pos[r] += a
        return
    assert REJECTED not in status
    # FIFO per sender: a sender's items net in index order, and what still waits comes after
    # everything of its own that netted
    seen: dict[int, int] = {}
    for j in out.order.tolist():
        assert seen.get(sender[j], -1) < j
        seen[sender[j]] = j
    for i, st_ in enumerate(status):
        if st_ == QUEUED:
            assert seen.get(sender[i], -1) < i
    for i in range(carried):
        assert out.queued_on_arrival[i]


instances = st.integers(2, 6).flatmap(lambda p: st.tuples(
    st.lists(st.integers(-1_500, 2_000), min_size=p, max_size=p),   # starting positions
    st.lists(st.integers(0, 2_000), min_size=p, max_size=p),         # caps
    st.lists(st.tuples(st.integers(0, p - 1), st.integers(1, p - 1), st.integers(1, 1_200)),
             max_size=60),
))


def _columns(items: list[tuple[int, int, int]], p: int) -> tuple[list[int], list[int],
                                                                   list[int]]:
    # the second number is an offset, so that receiver != sender by construction
    sender = [s for s, _, _ in items]
    receiver = [(s + k) % p for s, k, _ in items]
    amount = [a for _, _, a in items]
    return sender, receiver, amount


@settings(max_examples=400, deadline=None)
@given(instances, st.sampled_from(["beps", "ibps"]), st.integers(0, 60),
       st.sampled_from(["auto", "vector", "scalar"]), st.integers(1, 70))
def test_fast_path_equals_reference(instance: tuple[list[int], list[int],
                                                    list[tuple[int, int, int]]],
                                    mode: Any, carried: int, engine: Any, chunk: int) -> None:
    position, cap, items = instance
    sender, receiver, amount = _columns(items, len(position))
    carried = min(carried, len(items)) if mode == "beps" else 0
    waiting = np.arange(len(items)) < carried
    want = net_items_reference(position, cap, sender, receiver, amount, mode=mode,
                               start_queued=waiting)
    # small=0: "auto" takes the vector path even on tiny batches, gives up on it mid-chunk
    # (its budget is a few items here) and comes back to it, as on big ones
    got = _net(position, cap, sender, receiver, amount, mode=mode, start_queued=waiting,
               engine=engine, chunk=chunk, small=0)
    assert_same(got, want)
    check_semantics(position, cap, sender, receiver, amount, want, mode, carried)


@settings(max_examples=60, deadline=None)
@given(instances, st.sampled_from(["beps", "ibps"]))
def test_public_entry_point(instance: tuple[list[int], list[int], list[tuple[int, int, int]]],
                            mode: Any) -> None:
    position, cap, items = instance
    sender, receiver, amount = _columns(items, len(position))
    got = net_items(position, cap, sender, receiver, amount, mode=mode)
    assert_same(got, net_items_reference(position, cap, sender, receiver, amount, mode=mode))


def test_beps_fifo_head_blocks_and_cascade() -> None:
    # A (0) may go to -100, B (1) to -50, C (2) to 0.
    position, cap = [0, 0, 0], [100, 50, 0]
    sender = [0, 0, 0, 2, 1, 1]
    receiver = [1, 1, 2, 0, 0, 2]
    amount = [80, 40, 10, 50, 120, 5]
    out = net_items(position, cap, sender, receiver, amount, mode="beps")
    # 0: A -80 nets (A -80, B 80). 1: A would reach -120: queued. 2: A's queue is not
    # empty, so this item queues behind it although -90 would fit (FIFO). 3: C at 0 with
    # cap 0 cannot pay 50: queued. 4: B pays 120 (B -40, A 40); A's credit releases item 1
    # (A 0, B 0), then item 2 (A -10, C 10); C's credit retries item 3: 10 - 50 < 0,
    # blocked. 5: B pays 5 (B -5, C 15); C's head is still blocked.
    assert out.status.tolist() == [ACCEPTED, ACCEPTED, ACCEPTED, QUEUED, ACCEPTED, ACCEPTED]
    assert out.order.tolist() == [0, 4, 1, 2, 5]
    assert out.position.tolist() == [-10, -5, 15]
    assert out.low.tolist() == [-80, -40, 0]
    replay(position, cap, sender, receiver, amount, out)
    assert out.queued_on_arrival.tolist() == [False, True, True, True, False, False]
    assert_same(_net(position, cap, sender, receiver, amount, mode="beps", engine="vector"),
                net_items_reference(position, cap, sender, receiver, amount, mode="beps"))


def test_cascade_releases_down_a_chain() -> None:
    # C waits for A's payment, A waits for B's: one credit to B releases both, in order.
    position, cap = [0, 0, 0], [0, 0, 0]
    sender = [2, 0, 1]
    receiver = [1, 2, 0]
    amount = [30, 30, 30]
    out = _net(position, cap, sender, receiver, amount, mode="beps", engine="vector")
    assert out.status.tolist() == [QUEUED, QUEUED, QUEUED]
    out = _net([0, 30, 0], cap, sender, receiver, amount, mode="beps", engine="vector")
    assert out.order.tolist() == [2, 1, 0]
    assert out.position.tolist() == [0, 30, 0]
    for engine in ("vector", "scalar"):
        assert_same(_net([0, 30, 0], cap, sender, receiver, amount, mode="beps",
                         engine=engine),
                    net_items_reference([0, 30, 0], cap, sender, receiver, amount,
                                        mode="beps"))


def test_ibps_reject_changes_nothing() -> None:
    out = net_items([0, 0], [100, 0], [0, 0, 1, 0], [1, 1, 0, 1], [60, 60, 10, 40],
                    mode="ibps")
    assert out.status.tolist() == [ACCEPTED, REJECTED, ACCEPTED, ACCEPTED]
    assert out.position.tolist() == [-90, 90]
    assert out.low.tolist() == [-90, 0]
    assert out.peak_utilisation.tolist() == [90, 0]


def test_start_queued_carries_a_queue_into_the_next_batch() -> None:
    position, cap = [0, 0], [0, 10]
    first = net_items(position, cap, [0, 0, 1], [1, 1, 0], [5, 1, 3], mode="beps")
    assert first.status.tolist() == [QUEUED, QUEUED, ACCEPTED]
    # next batch: the two waiting items first, then a new one; a session reset positions
    waiting = [True, True, False]
    second = net_items([10, 0], cap, [0, 0, 0], [1, 1, 1], [5, 1, 2], mode="beps",
                       start_queued=waiting)
    assert second.order.tolist() == [0, 1, 2]
    assert second.position.tolist() == [2, 8]


def random_batch(n: int, p: int, seed: int, cap_scale: float) -> tuple[I64, ...]:
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, p + 1) ** 1.1
    w /= w.sum()
    sender = rng.choice(p, n, p=w)
    receiver = rng.choice(p, n, p=w)
    clash = sender == receiver
    receiver[clash] = (receiver[clash] + 1 + rng.integers(0, p - 1, int(clash.sum()))) % p
    amount = np.clip(rng.lognormal(np.log(50_000), 1.5, n), 1, 5_000_000).astype(np.int64)
    sd = np.sqrt(n * 2 * w) * 200_000
    cap = (cap_scale * rng.uniform(0.3, 1.5, p) * sd).astype(np.int64)
    position = rng.integers(-200_000, 200_000, p)
    return position, cap, sender, receiver, amount


@pytest.mark.parametrize("mode", ["beps", "ibps"])
@pytest.mark.parametrize("cap_scale", [0.3, 1.0])
def test_large_batch_equals_reference(mode: Any, cap_scale: float) -> None:
    position, cap, sender, receiver, amount = random_batch(100_000, 300, 11, cap_scale)
    want = net_items_reference(position, cap, sender, receiver, amount, mode=mode)
    failed = int(want.queued_on_arrival.sum())
    assert 0 < failed < len(amount)  # the instance does exercise breaches
    for engine in ("auto", "vector"):
        got = _net(position, cap, sender, receiver, amount, mode=mode, engine=engine,
                   chunk=1 << 14)
        assert_same(got, want)
    assert_same(net_items(position, cap, sender, receiver, amount, mode=mode), want)
    replay(position.tolist(), cap.tolist(), sender.tolist(), receiver.tolist(),
           amount.tolist(), want)


def test_many_participants_use_the_generic_sort() -> None:
    # more participants than int16 holds: the vector path sorts 64-bit keys instead
    position, cap, sender, receiver, amount = random_batch(20_000, 40_000, 5, 0.5)
    for mode in ("beps", "ibps"):
        assert_same(_net(position, cap, sender, receiver, amount, mode=mode, engine="vector",
                         chunk=5_000),
                    net_items_reference(position, cap, sender, receiver, amount, mode=mode))


def test_invalid_input_is_refused() -> None:
    ok: dict[str, Any] = dict(position=[0, 0], cap=[1, 1], sender=[0], receiver=[1],
                              amount=[1])
    with pytest.raises(ValueError, match="mode"):
        net_items(**ok, mode="hvps")  # type: ignore[arg-type]
    for bad, match in ((dict(amount=[0]), "positive"), (dict(receiver=[0]), "differ"),
                       (dict(sender=[2]), "indices"), (dict(cap=[-1, 0]), "negative"),
                       (dict(amount=[1, 2]), "one entry per item")):
        with pytest.raises(ValueError, match=match):
            net_items(**{**ok, **bad}, mode="beps")
    with pytest.raises(TypeError, match="fen"):
        net_items(**{**ok, "amount": [1.5]}, mode="beps")
    with pytest.raises(ValueError, match="prefix"):
        net_items([0, 0], [1, 1], [0, 0], [1, 1], [1, 1], mode="beps",
                  start_queued=[False, True])
    with pytest.raises(ValueError, match="BEPS only"):
        net_items([0, 0], [1, 1], [0], [1], [1], mode="ibps", start_queued=[True])
    with pytest.raises(ValueError, match="overflow"):
        net_items([2**61, 0], [2**61, 0], [0], [1], [1], mode="beps")


# ------------------------------------------------------------------------------ sessions


@settings(max_examples=200, deadline=None)
@given(instances, st.sampled_from(["beps", "ibps"]))
def test_session_positions_sum_to_zero_and_match_the_netting(
        instance: tuple[list[int], list[int], list[tuple[int, int, int]]], mode: Any) -> None:
    position, cap, items = instance
    p = len(position)
    sender, receiver, amount = _columns(items, p)
    out = net_items([0] * p, cap, sender, receiver, amount, mode=mode)
    net = session_positions(p, sender, receiver, amount, out.order)
    assert int(net.sum()) == 0
    assert net.tolist() == out.position.tolist()  # started from zero


positions = st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=12).map(
    lambda xs: [*xs, -sum(xs)])  # a zero-sum vector


@settings(max_examples=300, deadline=None)
@given(positions)
def test_instructions_settle_exactly_the_positions(position: list[int]) -> None:
    debits, credits = settlement_instructions(position)
    assert (debits.amount > 0).all() and (credits.amount > 0).all()
    assert int(debits.amount.sum()) == int(credits.amount.sum())
    moved = [0] * len(position)
    for p, a in zip(debits.participant.tolist(), debits.amount.tolist(), strict=True):
        moved[p] -= a
    for p, a in zip(credits.participant.tolist(), credits.amount.tolist(), strict=True):
        moved[p] += a
    assert moved == position
    assert len(debits) + len(credits) == sum(1 for x in position if x)


@settings(max_examples=300, deadline=None)
@given(positions, st.data())
def test_postings_credit_first_and_never_pass_a_limit(position: list[int],
                                                     data: st.DataObject) -> None:
    n = len(position)
    accounts = np.arange(100, 100 + n, dtype=np.int64)
    # balances just enough (or more) for every payer: then no account ever dips below 0
    balance = [max(0, -x) + data.draw(st.integers(0, 5)) for x in position]
    dr, cr, am = settlement_postings(position, accounts, 7)
    credits_done = False
    book = {int(a): b for a, b in zip(accounts.tolist(), balance, strict=True)}
    book[7] = 0
    for d, c, a in zip(dr.tolist(), cr.tolist(), am.tolist(), strict=True):
        assert a > 0
        if d == 7:
            assert not credits_done, "a credit after a debit"
        else:
            credits_done = True
            assert c == 7
        book[d] -= a  # settlement accounts: a debit lowers the balance
        book[c] += a
        if d != 7:
            assert book[d] >= 0, "a settlement account passed its limit mid-session"
    assert book[7] == 0
    assert [book[int(a)] - b for a, b in zip(accounts.tolist(), balance, strict=True)] == \
        position


@settings(max_examples=300, deadline=None)
@given(positions, st.data())
def test_coverage_finds_exactly_who_is_short(position: list[int], data: st.DataObject) -> None:
    n = len(position)
    balance = [data.draw(st.integers(0, 2 * 10**12)) for _ in range(n)]
    credit = [data.draw(st.integers(0, 10**11)) for _ in range(n)]
    cover = session_coverage(position, balance, credit)
    want = {p: -x - balance[p] - credit[p] for p, x in enumerate(position)
            if x < 0 and -x > balance[p] + credit[p]}
    assert dict(zip(cover.short.tolist(), cover.shortfall.tolist(), strict=True)) == want
    assert cover.covered == (not want)


def test_coverage_boundary_is_exact() -> None:
    position = [-500, 200, 300]
    assert session_coverage(position, [400, 0, 0], [100, 0, 0]).covered
    cover = session_coverage(position, [400, 0, 0], [99, 0, 0])
    assert not cover.covered
    assert cover.short.tolist() == [0] and cover.shortfall.tolist() == [1]
    # what a payee holds never matters; a payee never needs cover
    assert session_coverage(position, [500, -10**6, 0], [0, 0, 0]).covered


def test_positions_that_do_not_sum_to_zero_are_a_bug() -> None:
    for call in (lambda: settlement_instructions([1, 0]),
                 lambda: session_coverage([1, 0], [0, 0], [0, 0]),
                 lambda: settlement_postings([-1, 2], [1, 2], 0)):
        with pytest.raises(NettingInvariantError):
            call()
    # an int64 sum would wrap around to zero; the check sums Python ints
    with pytest.raises(NettingInvariantError):
        settlement_instructions([2**62, 2**62, 2**62, 2**62])


def test_session_timing_for_2000_positions() -> None:
    import time
    rng = np.random.default_rng(3)
    pos = rng.integers(-10**11, 10**11, 2000)
    pos[-1] -= int(pos.sum())
    accounts = np.arange(1, 2001, dtype=np.int64)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        settlement_instructions(pos)
        session_coverage(pos, np.abs(pos), np.zeros(2000, np.int64))
        settlement_postings(pos, accounts, 0)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.05
