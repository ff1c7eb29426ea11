"""The bulk path (banks/bulk.py): many customer transfers in one logged command, through
the banks, CNAPS's simulation mode and back to the payees, with every check holding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.banks import reconcile
from qingsuan.banks.bulk import MAX_BULK, BulkCode
from qingsuan.clock import parse_time
from qingsuan.engine import replay
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import parse_scenario
from qingsuan.world import world_systems

WORLD = """
name: bulk
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "10000000.00", ibps_cap: "%s"}
  - {name: CCB, code: "105100000017", settlement_balance: "10000000.00"}
customers:
  - {id: a, bank: ICBC, account: "6222020200000000014", balance: "1000.00"}
  - {id: b, bank: ICBC, account: "6222020200000000022", balance: "1000.00"}
  - {id: c, bank: CCB, account: "6217000010000000029", balance: "1000.00"}
  - {id: d, bank: CCB, account: "6217000010000000037", balance: "0.00", closed: true}
  - {id: e, bank: CCB, account: "6217000010000000045", balance: "200000.00"}
"""


def _runner(tmp_path: Path, *, at: str = "2026-11-25T10:00", ibps_cap: str = "10000000.00"
            ) -> Runner:
    runner = Runner(parse_scenario(WORLD % ibps_cap, "bulk.yaml"),
                    store=str(tmp_path / "bulk.db"))
    runner.build_world()
    runner.clock.advance_to(parse_time(at))
    return runner


def _balances(runner: Runner) -> dict[str, int]:
    return {c: runner.balance_fen(bank, f"customer:{c}")
            for c, bank in (("a", "ICBC"), ("b", "ICBC"), ("c", "CCB"), ("d", "CCB"),
                            ("e", "CCB"))}


def _checks(runner: Runner) -> None:
    banks = runner.world.banks
    assert reconcile.books_balanced(banks) and reconcile.money_conserved(banks)
    assert reconcile.mirrors_match(banks) and reconcile.suspense_explained(banks)


def test_each_route_pays_the_payee_and_every_check_holds(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    # a->b within ICBC; a->c BEPS; c->a IBPS (urgent); e->a HVPS (above the BEPS limit)
    codes = runner.world.banks.bulk_transfers(
        [0, 0, 2, 4], [1, 2, 0, 0], [10_000, 20_000, 5_000, 6_000_000],
        [False, False, True, False])
    assert codes.tolist() == [BulkCode.CREDITED] * 4
    assert _balances(runner) == {"a": 100_000 - 30_000 + 5_000 + 6_000_000,
                                 "b": 110_000, "c": 100_000 + 20_000 - 5_000, "d": 0,
                                 "e": 20_000_000 - 6_000_000}
    tally = runner.world.banks.bulk_tally
    assert tally["HVPS:credited"] == (1, 6_000_000) and tally["BOOK:credited"] == (1, 10_000)
    _checks(runner)


def test_refusals_change_nothing_for_the_refused(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    before = _balances(runner)
    codes = runner.world.banks.bulk_transfers(
        [0, 0, 2], [2, 3, 0], [200_000, 1_000, 5_100_000], [False, False, True])
    assert codes.tolist() == [BulkCode.NO_FUNDS, BulkCode.CLOSED, BulkCode.OVER_LIMIT]
    assert _balances(runner) == before
    _checks(runner)


def test_a_payer_is_refused_only_the_items_it_cannot_pay_in_order(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    # a has 1,000.00: 600 passes, 600 fails, 300 passes (a refused one does not count)
    codes = runner.world.banks.bulk_transfers([0, 0, 0], [1, 1, 1],
                                              [60_000, 60_000, 30_000])
    assert codes.tolist() == [BulkCode.CREDITED, BulkCode.NO_FUNDS, BulkCode.CREDITED]
    assert _balances(runner)["a"] == 10_000


def test_hvps_closed_gives_the_money_back(tmp_path: Path) -> None:
    runner = _runner(tmp_path, at="2026-11-25T18:00")  # after HVPS's cut-off
    before = _balances(runner)
    codes = runner.world.banks.bulk_transfers([4], [0], [6_000_000])
    assert codes.tolist() == [BulkCode.NOT_SETTLED]
    assert _balances(runner) == before
    _checks(runner)


def test_beyond_the_ibps_cap_comes_back(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ibps_cap="100.00")
    codes = runner.world.banks.bulk_transfers([0, 0], [2, 2], [6_000, 6_000], [True, True])
    assert codes.tolist() == [BulkCode.CREDITED, BulkCode.OVER_CAP]
    assert _balances(runner)["a"] == 94_000
    _checks(runner)


def test_bad_input_is_refused_before_anything_is_logged(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    entries = runner.engine.applied_seq
    banks = runner.world.banks
    for payer, payee, amount in (([0], [9], [1]), ([0], [0], [1]), ([0], [1], [0]),
                                 ([-1], [1], [1]), ([0, 1], [1], [1])):
        with pytest.raises(ValueError):
            banks.bulk_transfers(payer, payee, amount)
    assert runner.engine.applied_seq == entries
    assert MAX_BULK >= 1_000_000


def test_a_bulk_command_replays_to_the_same_state(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    rng = np.random.default_rng(7)
    payer = rng.integers(0, 5, 500)
    payee = (payer + rng.integers(1, 5, 500)) % 5
    runner.world.banks.bulk_transfers(payer, payee, rng.integers(1, 50_000, 500),
                                      rng.random(500) < 0.3)
    expected = runner.engine.state_hash()
    runner.engine.close()
    assert replay(str(tmp_path / "bulk.db"), world_systems()).state_hash() == expected


def test_without_the_ledger_history_the_state_and_its_replay_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator's setting (docs/LEDGER.md, "History retention"): a world whose
    ledger forgets the bulk path's postings (blocks of 64 rows here, every ledger of the
    test) ends with the same balances, checks and state hash as one that keeps them, and
    its log replays to that same hash."""
    from qingsuan.ledger import Ledger

    monkeypatch.setitem(Ledger.__init__.__kwdefaults__, "history_block_rows", 64)
    (tmp_path / "kept").mkdir()
    (tmp_path / "forgetful").mkdir()
    kept, forgetful = _runner(tmp_path / "kept"), _runner(tmp_path / "forgetful")
    forgetful.engine.ledger.keep_history = False
    rng = np.random.default_rng(11)
    for _ in range(8):
        payer = rng.integers(0, 5, 300)
        payee = (payer + rng.integers(1, 5, 300)) % 5
        amount, urgent = rng.integers(1, 20_000, 300), rng.random(300) < 0.3
        for runner in (kept, forgetful):
            runner.world.banks.bulk_transfers(payer, payee, amount, urgent)
    assert forgetful.engine.ledger.held_transfer_count < 200 < kept.engine.ledger.transfer_count
    assert _balances(forgetful) == _balances(kept)
    _checks(forgetful)
    expected = kept.engine.state_hash()
    assert forgetful.engine.state_hash() == expected
    forgetful.engine.close()
    assert replay(str(tmp_path / "forgetful" / "bulk.db"), world_systems()
                  ).state_hash() == expected


def _opening() -> list[int]:
    return [100_000, 100_000, 100_000, 0, 20_000_000]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 4), st.integers(1, 3_000_000),
                          st.booleans()), min_size=1, max_size=40))
def test_money_is_conserved_and_no_payer_passes_its_funds(
        tmp_path_factory: pytest.TempPathFactory,
        items: list[tuple[int, int, int, bool]]) -> None:
    runner = _runner(tmp_path_factory.mktemp("bulk"))
    payer = np.array([p for p, _, _, _ in items])
    payee = (payer + np.array([d for _, d, _, _ in items])) % 5
    amount = np.array([a for _, _, a, _ in items])
    codes = runner.world.banks.bulk_transfers(payer, payee, amount, [u for *_, u in items])
    assert all(v >= 0 for c, v in _balances(runner).items() if c != "d")
    paid = codes == BulkCode.CREDITED
    assert sum(_balances(runner).values()) == 100_000 * 3 + 20_000_000  # nothing created
    # the funds check is the ledger's rule taken in order, ignoring what arrives in the batch
    left = {c: v for c, v in zip("abcde", _opening(), strict=True)}
    for k, (p, _q, a) in enumerate(zip(payer.tolist(), payee.tolist(), amount.tolist(),
                                      strict=True)):
        if codes[k] in (BulkCode.OVER_LIMIT, BulkCode.CLOSED):
            continue
        name = "abcde"[p]
        assert (codes[k] == BulkCode.NO_FUNDS) == (a > left[name]), (k, codes.tolist())
        if a <= left[name]:
            left[name] -= a
    tally = runner.world.banks.bulk_tally
    assert int(amount[paid].sum()) == sum(v for k, (_, v) in tally.items()
                                          if k.endswith(":credited"))
    assert sum(c for c, _ in tally.values()) == len(items)
    _checks(runner)
    runner.engine.close()


def test_closed_systems_and_closed_payers_take_nothing(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    runner.engine.set_params({"beps.closed": True, "ibps.closed": True})
    before = _balances(runner)
    codes = runner.world.banks.bulk_transfers([0, 2, 3], [2, 0, 4], [1_000, 1_000, 1],
                                              [False, True, False])
    assert codes.tolist() == [BulkCode.SYSTEM_CLOSED, BulkCode.SYSTEM_CLOSED,
                              BulkCode.CLOSED]
    assert _balances(runner) == before
    _checks(runner)


def test_amounts_that_could_overflow_are_refused_before_logging(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    entries = runner.engine.applied_seq
    with pytest.raises(ValueError):
        runner.world.banks.bulk_transfers([4, 4], [0, 0], [2**62, 2**62])
    with pytest.raises(ValueError):
        runner.world.banks.bulk_transfers([4] * 3000, [0] * 3000, [10**15] * 3000)
    assert runner.engine.applied_seq == entries


def test_a_system_a_bank_may_not_use_is_barred_until_the_parameter_allows_it(
        tmp_path: Path) -> None:
    """The members barred from each system are worked out once and remembered: a change
    of ``cnaps.bank_systems`` is seen by the next batch."""
    runner = _runner(tmp_path)
    before = _balances(runner)
    runner.engine.set_params({"cnaps.bank_systems": "HVPS,IBPS"})  # no BEPS for banks
    codes = runner.world.banks.bulk_transfers([0, 2], [2, 0], [1_000, 1_000],
                                              [False, True])
    assert codes.tolist() == [BulkCode.BARRED, BulkCode.CREDITED]  # BEPS barred; IBPS not
    runner.engine.set_params({"cnaps.bank_systems": "HVPS,BEPS,IBPS"})
    assert runner.world.banks.bulk_transfers([0], [2], [1_000]).tolist() == \
        [BulkCode.CREDITED]
    # the barred one moved nothing; c paid a 10.00 by IBPS and a paid it back by BEPS
    assert _balances(runner) == before
    assert runner.world.banks.bulk_tally["BEPS:credited"] == (1, 1_000)
    _checks(runner)
