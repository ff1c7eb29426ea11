"""Gridlock resolution in simulation mode ends where the per-payment HVPS path ends."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rtgs_batch import NAMES, _world

from qingsuan.cnaps import gridlock
from qingsuan.cnaps.hvps import HvpsStatus
from qingsuan.cnaps.rtgs_batch import SETTLED, run_rtgs

payments = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 900),
                              st.sampled_from([0, 4, 5, 5, 5])), min_size=2, max_size=40)


def _columns(pays: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(c, np.int64) for c in zip(*pays, strict=True))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 1500), min_size=4, max_size=4),
       st.lists(st.sampled_from([0, 0, 500, 2000]), min_size=4, max_size=4), payments,
       st.sampled_from(["bilateral", "multilateral", "lsm"]), st.booleans())
def test_batch_with_lsm_ends_where_the_per_payment_path_ends(
        balances: list[int], pledges: list[int], pays: list[tuple[int, int, int, int]],
        algorithm: str, bypass: bool) -> None:
    """A batch resolves gridlock once its payments are in (they arrive at one instant);
    the per-payment path, given the same payments one by one at that instant with no
    attempt on queueing, does the same at its periodic attempt: the same payments settle,
    every balance, mirror and pledge credit ends the same, and no money is made."""
    pays = [(s, r if r != s else (s + 1) % 4, a, p) for s, r, a, p in pays]
    sender, receiver, amount, priority = _columns(pays)
    ends = []
    for batch in (False, True):
        engine, cn = _world(balances)
        engine.set_params({"hvps.lsm": algorithm, "hvps.bypass_fifo": "on" if bypass else "off",
                           "hvps.lsm_on_queue": "off" if not batch else "on",
                           "hvps.lsm_interval_minutes": "0" if not batch else "5"})
        for name, value in zip(NAMES, pledges, strict=True):
            if value:
                assert cn.pledge(name, value, 0).ok
        if batch:
            res = cn.rtgs_batch(NAMES, sender, receiver, amount, priority)
            settled = (res.status == SETTLED).tolist()
            together = res.settled_by != gridlock.STAYS
            lsm_value = int(amount[together].sum())
            tally = sum(v for _, v in cn.batch_lsm.values())
            assert tally == lsm_value
        else:
            for i, (s, r, a, p) in enumerate(pays):
                cn.submit_hvps(f"p{i}", NAMES[s], NAMES[r], a, p)
            engine.set_params({"hvps.lsm_interval_minutes": "5"})
            engine.tick()  # the periodic attempt, at the same instant
            got = [cn.hvps.payments[f"p{i}"] for i in range(len(pays))]
            settled = [p.status is HvpsStatus.SETTLED for p in got]
            lsm_value = sum(p.amount_fen for p in got
                            if p.settled_by in ("bilateral", "multilateral"))
        engine.ledger.check_invariants()
        reg = engine.registry
        for n in NAMES:
            mirror = engine.ledger.balance(reg.id(n, "reserve_at_pboc")).posted_fen
            assert mirror == cn.hvps._balance(n)
        assert engine.ledger.balance(reg.id("PBOC", "lsm_clearing")).posted_fen == 0
        # money conserved: what the participants hold is what was issued plus credit drawn
        held = sum(cn.hvps._balance(n) for n in NAMES)
        assert held == sum(balances) + sum(cn.hvps.credit[n].drawn_fen for n in NAMES)
        ends.append((settled, lsm_value, [(cn.hvps._balance(n), cn.hvps.credit[n].drawn_fen)
                                          for n in NAMES]))
    assert ends[0] == ends[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1500), min_size=4, max_size=4), payments,
       st.sampled_from(["bilateral", "multilateral", "lsm"]))
def test_lsm_never_settles_less_than_none(balances: list[int],
                                          pays: list[tuple[int, int, int, int]],
                                          algorithm: str) -> None:
    """On the same payments and balances, a batch with gridlock resolution settles every
    payment the batch without settles, and perhaps more; the steps add up."""
    pays = [(s, r if r != s else (s + 1) % 4, a, p) for s, r, a, p in pays]
    sender, receiver, amount, priority = _columns(pays)
    plain = run_rtgs(balances, sender, receiver, amount, priority)
    with_lsm = run_rtgs(balances, sender, receiver, amount, priority, lsm=algorithm)
    before, after = plain.status == SETTLED, with_lsm.status == SETTLED
    assert not (before & ~after).any()
    together = with_lsm.settled_by != gridlock.STAYS
    assert (after == before | together).all()
    if algorithm == "bilateral":
        assert not (with_lsm.settled_by == gridlock.MULTILATERAL).any()
    assert with_lsm.balance.sum() == plain.balance.sum() == sum(balances)
    assert (with_lsm.balance >= 0).all()


def test_a_circle_settles_by_offsetting_and_the_steps_are_named() -> None:
    # 0 and 1 owe each other 100 (a bilateral pair); 2 -> 3 -> 2 likewise; 0 -> 2 -> 1 -> 0
    # would need the others first. Nobody holds anything.
    sender = np.array([0, 1, 2, 3], np.int64)
    receiver = np.array([1, 0, 3, 2], np.int64)
    amount = np.array([100, 100, 70, 70], np.int64)
    priority = np.full(4, 5, np.int64)
    off = run_rtgs([0, 0, 0, 0], sender, receiver, amount, priority)
    assert (off.status == SETTLED).sum() == 0
    out = run_rtgs([0, 0, 0, 0], sender, receiver, amount, priority, lsm="lsm")
    assert out.status.tolist() == [SETTLED] * 4
    assert out.settled_by.tolist() == [gridlock.BILATERAL] * 4
    assert out.settled_at_arrival.tolist() == [3, 3, 3, 3]
    # a circle of three has no bilateral pair: the multilateral step settles it
    circle = run_rtgs([0, 0, 0], [0, 1, 2], [1, 2, 0], [50, 50, 50], [5, 5, 5], lsm="lsm")
    assert circle.settled_by.tolist() == [gridlock.MULTILATERAL] * 3
    only_pairs = run_rtgs([0, 0, 0], [0, 1, 2], [1, 2, 0], [50, 50, 50], [5, 5, 5],
                          lsm="bilateral")
    assert (only_pairs.status == SETTLED).sum() == 0


def test_without_an_attempt_on_queueing_a_batch_resolves_only_when_the_interval_is_due() -> None:
    """hvps.lsm_on_queue off: the first batch's attempt is due (none before), one a minute
    later is not (the 5-minute interval), one 5 minutes after the first is again."""
    engine, cn = _world([0, 0, 0, 0])
    engine.set_params({"hvps.lsm": "lsm", "hvps.lsm_on_queue": "off",
                       "hvps.lsm_interval_minutes": "5"})
    pair = (np.array([0, 1]), np.array([1, 0]), np.array([100, 100]), np.array([5, 5]))
    settled = []
    start = engine.clock.now_us()
    for minutes in (0, 1, 5):
        engine.clock.advance_to(start + minutes * 60_000_000)
        res = cn.rtgs_batch(NAMES, *pair)
        settled.append(int((res.status == SETTLED).sum()))
    assert settled == [2, 0, 2]
    assert sum(n for n, _ in cn.batch_lsm.values()) == 4
    engine.ledger.check_invariants()


def test_a_payment_to_oneself_blocks_the_offset_of_what_waits_behind_it() -> None:
    # 0 owes itself 50 (it cannot pay: it waits), then owes 1 100 while 1 owes 0 100: the
    # pair would offset, but 0's payment to 1 waits behind its payment to itself (FIFO)
    out = run_rtgs([0, 0], [0, 0, 1], [0, 1, 0], [50, 100, 100], [5, 5, 5], lsm="lsm")
    assert (out.status == SETTLED).tolist() == [False, False, False]
    # more urgent than the payment to itself, the pair offsets
    urgent = run_rtgs([0, 0], [0, 0, 1], [0, 1, 0], [50, 100, 100], [5, 4, 5], lsm="lsm")
    assert (urgent.status == SETTLED).tolist() == [False, True, True]


def test_the_gridlock_tally_survives_a_restart_from_a_snapshot() -> None:
    """The batch path's tally by step (simulate's LSM metrics) is in CNAPS's saved state:
    a world loaded from it reports the same value settled by offsetting."""
    engine, cn = _world([0] * len(NAMES))
    engine.set_params({"hvps.lsm": "lsm"})
    sender, receiver, amount, priority = _columns([(0, 1, 100, 5), (1, 0, 100, 5)])
    cn.rtgs_batch(NAMES, sender, receiver, amount, priority)
    assert cn.batch_lsm == {("bilateral", NAMES[0]): [1, 100], ("bilateral", NAMES[1]): [1, 100]}
    _, other = _world([0] * len(NAMES))
    other.load_state(cn.dump_state())
    assert other.batch_lsm == cn.batch_lsm
    assert other.dump_state() == cn.dump_state()
