"""The card switch's batch entry (cards/batch.py, banks/card_bulk.py): a batch of card
purchases and withdrawals ends where the same transactions sent one request at a time end:
the same response codes, balances, fees, clearing positions and settlement."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.banks import reconcile
from qingsuan.clock import parse_time
from qingsuan.engine import replay
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import parse_scenario
from qingsuan.world import world_systems

os.environ.setdefault("QINGSUAN_CARD_KEY", "5c" * 32)

WORLD = """
name: card-batch
start: 2026-11-25T08:00
run_until: 2026-11-26T12:00
calendar: cn
params:
  cards.daily_withdrawal_limit: "900.00"
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}
  - {name: BOC,  code: "104100000012", settlement_balance: "1000000.00"}
customers:
  - {id: h0, bank: ICBC, account: "9222020200000000014", balance: "2000.00"}
  - {id: h1, bank: CCB,  account: "9217000010000000029", balance: "300.00",
     credit_limit: "1500.00"}
  - {id: h2, bank: BOC,  account: "9104000000000000011", balance: "1200.00"}
  - {id: m0, bank: CCB,  account: "6217000010000000037", balance: "0.00",
     merchant: {mid: "105290058120001", mcc: "5814", mdr: "0.0060"}}
  - {id: m1, bank: ICBC, account: "6222020200000000022", balance: "10.00",
     merchant: {mid: "102290058120002", mcc: "5411", mdr: "0.0038"}}
  - {id: m2, bank: BOC,  account: "6104000000000000029", balance: "0.00",
     merchant: {mid: "104290058120003", mcc: "5812", mdr: "0"}}
cards:
  - {pan: "6222020200000000014", account: h0, kind: debit, pin: "123456"}
  - {pan: "6217000010000000029", account: h1, kind: credit, pin: "123456"}
  - {pan: "6013820000000000013", account: h2, kind: debit, pin: "123456"}
terminals:
  - {id: "POS00000", kind: pos, bank: CCB, merchant: m0}
  - {id: "POS00001", kind: pos, bank: ICBC, merchant: m1}
  - {id: "POS00002", kind: pos, bank: BOC, merchant: m2}
  - {id: "ATM00000", kind: atm, bank: CCB, cash: "200000.00"}
  - {id: "ATM00001", kind: atm, bank: BOC, cash: "200000.00"}
"""
PANS = ("6222020200000000014", "6217000010000000029", "6013820000000000013")
HOLDERS, MERCHANTS = 3, 3  # customers 0-2 hold the cards, 3-5 are the merchants
AT = "2026-11-25T10:00"
UNTIL = parse_time("2026-11-26T12:00")  # after the 23:00 cut-off and the 09:00 session

#: (cardholder, acceptor: merchant 0-2 for a purchase, ATM 0-1 for a withdrawal,
#: withdrawal?, amount in fen)
Item = tuple[int, int, bool, int]


def _events(items: list[Item]) -> str:
    lines = ["events:"]
    for k, (holder, acceptor, cash, amount) in enumerate(items):
        do, terminal = (("atm_withdrawal", f"ATM0000{acceptor}") if cash
                        else ("pos_purchase", f"POS0000{acceptor}"))
        lines.append(f'  - {{at: {AT}, do: {do}, id: t{k}, card: "{PANS[holder]}", '
                     f'terminal: {terminal}, amount: "{amount // 100}.{amount % 100:02d}", '
                     f'pin: "123456"}}')
    return "\n".join(lines) + "\n"


def _play(runner: Runner, until_us: int) -> None:
    """Tick the world at every moment it asks for until ``until_us``."""
    while True:
        due = runner.world.next_due_us()
        if due is None or due > until_us:
            return
        runner.clock.advance_to(max(due, runner.clock.now_us()))
        runner.engine.tick()


def _books(runner: Runner) -> dict[str, int]:
    """Every ledger account's posted balance, by name."""
    reg, ledger = runner.registry, runner.engine.ledger
    out = {}
    for k in range(1, reg.next_account_id()):
        if ledger.has_account(k):
            out[reg.name(k)] = ledger.balance(k).posted_fen
    return out


def _per_request(items: list[Item]) -> tuple[list[int], dict[str, int], Runner]:
    runner = Runner(parse_scenario(WORLD + _events(items), "batch.yaml"), store="memory:")
    runner.build_world()
    for event in runner.scenario.events:
        runner._fire(event)
    codes = [int(runner.payments[f"t{k}"].response_code) for k in range(len(items))]
    _play(runner, UNTIL)
    return codes, _books(runner), runner


def _batched(items: list[Item]) -> tuple[list[int], dict[str, int], Runner]:
    runner = Runner(parse_scenario(WORLD, "batch.yaml"), store="memory:")
    runner.build_world()
    runner.clock.advance_to(parse_time(AT))
    codes: list[int] = []
    if items:
        holder, acceptor, cash, amount = (np.array(c) for c in zip(*items, strict=True))
        kinds = cash.astype(np.int64)
        codes = runner.world.banks.card_transactions(
            holder, np.where(cash, acceptor, acceptor + HOLDERS), amount, kinds,
            (holder == 1).astype(np.int64)).tolist()  # h1's card is a credit card
    _play(runner, UNTIL)
    return codes, _books(runner), runner


def _checks(runner: Runner) -> None:
    banks = runner.world.banks
    assert reconcile.books_balanced(banks) and reconcile.money_conserved(banks)
    assert reconcile.mirrors_match(banks) and reconcile.suspense_explained(banks)


ITEMS = st.lists(st.tuples(st.integers(0, HOLDERS - 1), st.integers(0, MERCHANTS - 1),
                           st.booleans(), st.integers(1, 120_000)), max_size=12).map(
    lambda xs: [(h, a % 2 if cash else a, cash, amount) for h, a, cash, amount in xs])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ITEMS)
def test_a_batch_ends_where_one_request_at_a_time_ends(items: list[Item]) -> None:
    """Same codes (approved, 51 short of funds or credit, 61 over the day's cash
    allowance), same balance in every account of every book after the cut-off and the
    next morning's settlement, every check holding on both sides."""
    codes, books, one = _per_request(items)
    batch_codes, batch_books, many = _batched(items)
    assert batch_codes == codes
    assert batch_books == books
    assert many.cnaps.net["CUPS"].positions == one.cnaps.net["CUPS"].positions
    _checks(one)
    _checks(many)


def test_fees_and_payouts_of_a_small_batch() -> None:
    """h0 (ICBC debit) buys 300.00 at m0 (CCB, MDR 0.6%) and takes 100.00 from CCB's ATM;
    h2 (BOC) buys 50.00 at m2 (BOC: on-us). At the cut-off ICBC owes CCB 300.00 - 1.05
    issuer fee + 100.00 + 3.00 ATM fee and each pays the switch its network fees; m0 is
    paid 298.20, m2 50.00; the next morning HVPS settles the positions."""
    codes, books, runner = _batched([(0, 0, False, 30_000), (0, 0, True, 10_000),
                                     (2, 2, False, 5_000)])
    assert codes == [0, 0, 0]
    assert books["ICBC:customer:h0"] == 200_000 - 40_000
    assert books["CCB:customer:m0"] == 30_000 - 180
    assert books["BOC:customer:m2"] == 5_000
    network = 10 + 3  # 0.0325% of 300.00 and of 100.00, per side
    assert books["PBOC:settlement:ICBC"] == 100_000_000 - (30_000 - 105 + 10_000 + 300) \
        - network
    assert books["PBOC:settlement:CCB"] == 100_000_000 + (30_000 - 105 + 10_000 + 300) \
        - network
    assert books["PBOC:settlement:CUPS"] == 2 * network
    cleared = runner.switch.batch_cleared["2026-11-25"]
    assert cleared["ICBC"]["fees_received_fen"] == 105
    assert cleared["CUPS"]["position_fen"] == 2 * network
    _checks(runner)


def test_declines_change_nothing_for_the_declined() -> None:
    """h1 (credit, 300.00 + 1,500.00 limit) is declined 51 beyond it; h0's third
    withdrawal is 61 (900.00 a day), and a declined item does not count for later ones."""
    codes, books, runner = _batched([(1, 0, False, 180_000), (1, 0, False, 180_001),
                                     (0, 0, True, 50_000), (0, 1, True, 50_000),
                                     (0, 1, True, 40_000)])
    assert codes == [0, 51, 0, 61, 0]
    assert books["CCB:customer:h1"] == 30_000 - 180_000
    assert books["ICBC:customer:h0"] == 200_000 - 90_000
    tally = runner.world.banks.bulk_tally
    assert tally["CUPS:purchase:51"] == (1, 180_001)
    assert tally["CUPS:withdrawal:61"] == (1, 50_000)
    _checks(runner)


def test_bad_batches_are_refused_before_anything_is_logged() -> None:
    runner = Runner(parse_scenario(WORLD, "batch.yaml"), store="memory:")
    runner.build_world()
    banks, entries = runner.world.banks, runner.engine.applied_seq
    bad: list[tuple[Any, ...]] = [
        ([0], [9], [1], [0], [0]),        # no customer 9
        ([0], [2], [1], [1], [0]),        # no ATM 2
        ([0], [0], [1], [0], [0]),        # buys from itself
        ([0], [3], [0], [0], [0]),        # amount 0
        ([0], [3], [1], [2], [0]),        # unknown kind
        ([0], [3], [1], [0], [2]),        # unknown card kind
        ([0, 1], [3], [1], [0], [0]),     # columns of different lengths
        ([0], [0], [20_000_001], [1], [0]),  # more cash than the ATM holds
    ]
    for cols in bad:
        with pytest.raises(ValueError):
            banks.card_transactions(*cols)
    assert runner.engine.applied_seq == entries


def test_replay_rebuilds_the_same_state(tmp_path: Any) -> None:
    store = str(tmp_path / "cards.db")
    runner = Runner(parse_scenario(WORLD, "batch.yaml"), store=store)
    runner.build_world()
    runner.clock.advance_to(parse_time(AT))
    runner.world.banks.card_transactions([0, 1, 2], [3, 4, 0], [10_000, 20_000, 5_000],
                                         [0, 0, 1], [0, 1, 0])
    state = runner.engine.state_hash()
    runner.close()
    replayed = replay(store, world_systems())
    assert replayed.state_hash() == state


def test_a_merchant_without_its_own_rate_is_charged_the_batchs() -> None:
    """h2 (no merchant terms of its own) sells 100.00 to h0 with the batch's 0.6%: paid
    99.40 at the cut-off; m2's own rate (0) still applies to m2."""
    runner = Runner(parse_scenario(WORLD, "batch.yaml"), store="memory:")
    runner.build_world()
    runner.clock.advance_to(parse_time(AT))
    codes = runner.world.banks.card_transactions([0, 0], [2, 5], [10_000, 10_000], [0, 0],
                                                 [0, 0], mdr_ppm=6_000)
    assert codes.tolist() == [0, 0]
    _play(runner, UNTIL)
    assert runner.balance_fen("BOC", "customer:h2") == 120_000 + 9_940
    assert runner.balance_fen("BOC", "customer:m2") == 10_000
    _checks(runner)


def test_a_snapshot_keeps_the_open_batch_day() -> None:
    """The switch's state with a batch day still open loads back to the same state, and
    the cut-off closes it the same way (a restart from a snapshot carries on)."""
    runner = Runner(parse_scenario(WORLD, "batch.yaml"), store="memory:")
    runner.build_world()
    runner.clock.advance_to(parse_time(AT))
    runner.world.banks.card_transactions([0, 1, 2], [3, 4, 0], [10_000, 20_000, 5_000],
                                         [0, 0, 1], [0, 1, 0], mdr_ppm=6_000)
    switch = runner.switch
    state = switch.dump_state()
    assert b'"batch"' in state and switch.batch_days
    again = type(switch)()
    again.load_state(state)
    assert again.dump_state() == state
    switch.load_state(state)  # the loaded state closes the day as the original would
    _play(runner, UNTIL)
    assert runner.balance_fen("CCB", "customer:m0") == 10_000 - 60
    _checks(runner)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ITEMS, ITEMS)
def test_requests_and_batches_on_the_same_day_close_together(first: list[Item],
                                                             then: list[Item]) -> None:
    """Some transactions one request at a time, then others as a batch, the same day:
    the cut-off pays each merchant once for both (its per-request and batch takings less
    the MDR) and ends where all of them one at a time end."""
    codes, books, one = _per_request(first + then)
    runner = Runner(parse_scenario(WORLD + _events(first), "batch.yaml"), store="memory:")
    runner.build_world()
    for event in runner.scenario.events:
        runner._fire(event)
    mixed = [int(runner.payments[f"t{k}"].response_code) for k in range(len(first))]
    if then:
        holder, acceptor, cash, amount = (np.array(c) for c in zip(*then, strict=True))
        mixed += runner.world.banks.card_transactions(
            holder, np.where(cash, acceptor, acceptor + HOLDERS), amount,
            cash.astype(np.int64), (holder == 1).astype(np.int64)).tolist()
    _play(runner, UNTIL)
    assert mixed == codes
    assert _books(runner) == books
    assert runner.cnaps.net["CUPS"].positions == one.cnaps.net["CUPS"].positions
    _checks(runner)


def test_a_batch_withdrawal_shares_the_cards_daily_allowance() -> None:
    """h0 takes 500.00 at an ATM one request at a time; a batch withdrawal of 500.00 from
    h0's account the same day is over the card's 900.00 a day (61), 400.00 is not."""
    first: list[Item] = [(0, 0, True, 50_000)]
    runner = Runner(parse_scenario(WORLD + _events(first), "batch.yaml"), store="memory:")
    runner.build_world()
    for event in runner.scenario.events:
        runner._fire(event)
    codes = runner.world.banks.card_transactions([0, 0], [1, 1], [50_000, 40_000], [1, 1],
                                                 [0, 0])
    assert runner.payments["t0"].response_code == "00" and codes.tolist() == [61, 0]
