"""Simulation mode gives, payment by payment, the outcome of the per-payment HVPS path."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.hvps import HvpsStatus
from qingsuan.cnaps.rtgs_batch import SETTLED, run_rtgs
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.ledger import Transfer

NAMES = ["BOC", "CCB", "ICBC", "ABC"]
CODES = {"BOC": "104100000004", "CCB": "105100000017", "ICBC": "102100099996",
         "ABC": "103100000026"}


def _world(balances: list[int]) -> tuple[Engine, Cnaps]:
    cn = Cnaps()
    engine = Engine.open("memory:", VirtualClock(parse_time("2026-11-25T10:00")), systems=[cn])
    engine.set_params({"hvps.lsm": "off"})
    for name in NAMES:
        cn.join(name, CODES[name])
    reg = engine.registry
    for k, (name, bal) in enumerate(zip(NAMES, balances, strict=True)):
        if bal:
            engine.submit_transfers([
                Transfer(2 * k + 1, reg.id("PBOC", "issued"), reg.id("PBOC", f"settlement:{name}"),
                         bal),
                Transfer(2 * k + 2, reg.id(name, "reserve_at_pboc"), reg.id(name, "hvps_incoming"),
                         bal)])
    return engine, cn


payments = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 900),
                              st.sampled_from([0, 4, 5, 5, 5])), min_size=1, max_size=40)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(0, 1500), min_size=4, max_size=4), payments, st.booleans())
def test_batch_equals_per_payment_path(balances: list[int],
                                       pays: list[tuple[int, int, int, int]],
                                       bypass: bool) -> None:
    pays = [(s, r if r != s else (s + 1) % 4, a, p) for s, r, a, p in pays]
    sender, receiver, amount, priority = (np.array(c, np.int64) for c in zip(*pays, strict=True))
    # the per-payment path, one logged command each
    engine, cn = _world(balances)
    engine.set_params({"hvps.bypass_fifo": "on" if bypass else "off"})
    for i, (s, r, a, p) in enumerate(pays):
        cn.submit_hvps(f"p{i}", NAMES[s], NAMES[r], a, p)
    expected = [cn.hvps.payments[f"p{i}"].status is HvpsStatus.SETTLED for i in range(len(pays))]
    settle_seq = sorted((p.settled_us, p.arrival) for p in cn.hvps.payments.values()
                        if p.status is HvpsStatus.SETTLED)
    del settle_seq
    # simulation mode, one pure pass
    out = run_rtgs(balances, sender, receiver, amount, priority, bypass_fifo=bypass)
    assert (out.status == SETTLED).tolist() == expected
    assert out.balance.tolist() == [cn.hvps._balance(n) for n in NAMES]
    # and through the engine as one logged batch command, with the ledger posted
    engine2, cn2 = _world(balances)
    engine2.set_params({"hvps.bypass_fifo": "on" if bypass else "off"})
    res = cn2.rtgs_batch(NAMES, sender, receiver, amount, priority)
    assert (res.status == SETTLED).tolist() == expected
    assert [cn2.hvps._balance(n) for n in NAMES] == [cn.hvps._balance(n) for n in NAMES]
    engine2.ledger.check_invariants()
    for n in NAMES:
        mirror = engine2.ledger.balance(engine2.registry.id(n, "reserve_at_pboc")).posted_fen
        assert mirror == cn2.hvps._balance(n)


def test_release_cascade_and_resubmitted_queue() -> None:
    # 0 owes 1 (queued), 1 owes 2 (queued), 2 receives from 3: the chain unwinds
    out = run_rtgs([0, 0, 0, 100], [0, 1, 3], [1, 2, 0], [50, 50, 60], [5, 5, 5])
    assert out.status.tolist() == [1, 1, 1]
    assert out.settle_order.tolist() == [2, 0, 1]
    assert out.settled_at_arrival.tolist() == [2, 2, 2]
    assert out.balance.tolist() == [10, 0, 50, 40]
    # a payment still queued from an earlier batch waits ahead of new arrivals
    again = run_rtgs([50, 0], [0, 0], [1, 1], [80, 10], [5, 5], start_queued=[True, False])
    assert again.status.tolist() == [0, 0]  # FIFO: the new one waits behind the old one
    funded = run_rtgs([100, 0], [0, 0], [1, 1], [80, 10], [5, 5], start_queued=[True, False])
    assert funded.status.tolist() == [1, 1]  # funds came in meanwhile: both settle
    assert funded.settle_order.tolist() == [0, 1]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(0, 1500), min_size=4, max_size=4),
       st.lists(st.sampled_from([0, 0, 500, 2000]), min_size=4, max_size=4), payments)
def test_batch_draws_pledge_credit_like_the_per_payment_path(
        balances: list[int], pledges: list[int], pays: list[tuple[int, int, int, int]]) -> None:
    """Pledge credit counts in what a participant can pay: a batch that needs it draws it
    and repays it from incoming funds, ending where the per-payment path ends (statuses,
    balances, credit still drawn), with every book balanced."""
    pays = [(s, r if r != s else (s + 1) % 4, a, p) for s, r, a, p in pays]
    sender, receiver, amount, priority = (np.array(c, np.int64) for c in zip(*pays, strict=True))
    ends = []
    for batch in (False, True):
        engine, cn = _world(balances)
        for name, value in zip(NAMES, pledges, strict=True):
            if value:
                assert cn.pledge(name, value, 0).ok
        if batch:
            res = cn.rtgs_batch(NAMES, sender, receiver, amount, priority)
            settled = (res.status == SETTLED).tolist()
        else:
            for i, (s, r, a, p) in enumerate(pays):
                cn.submit_hvps(f"p{i}", NAMES[s], NAMES[r], a, p)
            settled = [cn.hvps.payments[f"p{i}"].status is HvpsStatus.SETTLED
                       for i in range(len(pays))]
        engine.ledger.check_invariants()
        ends.append((settled, [(cn.hvps._balance(n), cn.hvps.credit[n].drawn_fen)
                               for n in NAMES]))
    assert ends[0] == ends[1]


def test_credit_needed_is_the_depth_below_zero() -> None:
    from qingsuan.cnaps.rtgs_batch import credit_needed

    # 0 (free 20) pays 100, receives 30, pays 50: 20 -> -80 -> -50 -> -100, needs 100;
    # 1 (free 0) receives 100 before it pays 30: it never goes below zero
    free = np.array([20, 0, 500], np.int64)
    sender, receiver = np.array([0, 1, 0]), np.array([1, 0, 2])
    amount = np.array([100, 30, 50])
    assert credit_needed(free, sender, receiver, amount, np.array([0, 1, 2])).tolist() == \
        [100, 0, 0]
    # 1's payment first: it pays 30 from nothing (needs 30); 0 goes 20 -> 50 -> -50 -> -100
    assert credit_needed(free, sender, receiver, amount, np.array([1, 0, 2])).tolist() == \
        [100, 30, 0]
    # 0's second payment alone: 20 - 50 = -30
    assert credit_needed(free, sender, receiver, amount, np.array([2])).tolist() == [30, 0, 0]
