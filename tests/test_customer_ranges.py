"""Generated customers as range rules (banks/ranges.py): a world of many customers
described, logged and held as a few rules; each customer found by id or account number
without a scan, paid and paying like a listed one, and the world replays to its state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.banks import reconcile
from qingsuan.banks.directory import CustomerAccount, Directory
from qingsuan.banks.ranges import CustomerRange
from qingsuan.clock import parse_time
from qingsuan.engine import replay
from qingsuan.ledger.registry import AccountRegistry
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import Event, Scenario, ScenarioError, parse_scenario
from qingsuan.sim.scenario_model import CustomerTable
from qingsuan.world import World, world_systems

WORLD = """
name: ranges
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "10000000.00"}
  - {name: CCB, code: "105100000017", settlement_balance: "10000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "1000.00"}
"""

ICBC = CustomerRange("ICBC", 50, 100_000, "icbc.c", "6222", 19, "ICBC customer ")
CCB = CustomerRange("CCB", 30, 0, "ccb.c", "6217", 19, "CCB customer ")


def _transfer(order: int, at: str, payer: str, amount_fen: int, *, payee: str | None = None,
              to_account: list[str] | None = None, urgent: bool = False) -> Event:
    return Event(parse_time(at), "transfer", order, 0, {
        "id": f"t{order}", "amount_fen": amount_fen,
        "channel": "mobile" if urgent else "counter", "urgent": urgent,
        "from_customer": payer, "to_customer": payee, "to_account": to_account})


def _scenario(*events: Event) -> Scenario:
    sc = parse_scenario(WORLD, "ranges.yaml")
    return dataclasses.replace(sc, customers=CustomerTable(sc.customers, (ICBC, CCB)),
                               events=events)


# ---------------------------------------------------------------------- the rule


@given(st.integers(1, 10_000), st.data())
def test_a_member_is_found_by_its_id_and_number_and_nothing_else_is(count: int,
                                                                     data: st.DataObject
                                                                     ) -> None:
    rule = CustomerRange("B", count, 0, "b.x", "62", 12, "n")
    k = data.draw(st.integers(0, count - 1))
    assert rule.index_of_id(rule.id(k)) == k
    assert rule.index_of_account(rule.account(k)) == k and len(rule.account(k)) == 12
    outside = data.draw(st.integers(count, 10**10 - 1))
    assert rule.index_of_id(rule.id(outside)) is None
    assert rule.index_of_account(rule.account(outside)) is None
    assert rule.index_of_id(f"b.x0{k}") is None  # a leading zero names nobody
    assert rule.index_of_id(f"c.x{k}") is None


@pytest.mark.parametrize(("fields", "field"), [
    ({"id_prefix": "c7"}, "id_prefix"), ({"account_digits": 40}, "account_digits"),
    ({"account_prefix": "12x"}, "account_digits"), ({"count": 0}, "count"),
    ({"count": 101, "account_prefix": "6222", "account_digits": 6}, "count"),
    ({"balance_fen": -1}, "balance_fen")])
def test_a_bad_rule_is_refused_naming_its_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(ICBC, **fields)  # type: ignore[arg-type]


def test_a_customer_two_rules_or_a_rule_and_a_list_would_both_be_is_refused() -> None:
    with pytest.raises(ValueError, match="two ranges"):
        CustomerTable((), (ICBC, dataclasses.replace(ICBC, id_prefix="other.")))
    listed = parse_scenario(WORLD, "ranges.yaml").customers
    clash = dataclasses.replace(listed[0], id="icbc.c7")
    with pytest.raises(ValueError, match=r"icbc\.c7"):
        CustomerTable((clash,), (ICBC,))
    directory = Directory()
    directory.add_range(ICBC)
    with pytest.raises(ValueError, match="listed customers are added before"):
        directory.add(CustomerAccount("bob", "CCB", "6217000010000000029", "Bob"))


def test_the_scenario_table_reads_listed_then_generated_customers() -> None:
    sc = _scenario()
    table = sc.customer_table()
    assert len(table) == 81 and len(list(table)) == 81
    assert [c.id for c in table[:3]] == ["alice", "icbc.c0", "icbc.c1"]
    assert table[-1].id == "ccb.c29" and table[51].id == "ccb.c0"
    assert sc.customer("icbc.c49").account == "6222000000000000049"
    assert table.get("icbc.c50") is None
    with pytest.raises(KeyError):
        sc.customer("nobody")


# ---------------------------------------------------------------------- the registry


def test_the_registry_names_a_range_without_a_name_per_account() -> None:
    reg = AccountRegistry()
    reg.add_book(1, "ICBC")
    reg.add_account(1, 1, "ICBC:equity")
    reg.add_range("ICBC:customer:icbc.c", 1_000_000, 2)
    assert reg.id("ICBC", "customer:icbc.c999999") == 1_000_001
    assert reg.name(1_000_001) == "ICBC:customer:icbc.c999999"
    assert not reg.has("ICBC:customer:icbc.c1000000") and reg.next_account_id() == 1_000_002
    assert len(reg.to_bytes()) < 200
    again = AccountRegistry.from_bytes(reg.to_bytes())
    assert again.to_bytes() == reg.to_bytes() and again.id("ICBC", "customer:icbc.c7") == 9
    with pytest.raises(ValueError, match="belongs to a range"):
        reg.add_account(5, 1, "ICBC:other")
    reg.add_account(2_000_000, 1, "ICBC:gl7")
    with pytest.raises(ValueError, match="falls in the range"):
        reg.add_range("ICBC:gl", 8, 3_000_000)
    with pytest.raises(ValueError, match="overlap"):
        reg.add_range("ICBC:x", 3, 1_000_000)


# ---------------------------------------------------------------------- the world


def test_generated_customers_pay_and_are_paid_on_every_route(tmp_path: Path) -> None:
    sc = _scenario(
        _transfer(0, "2026-11-25T10:00", "icbc.c3", 20_000, payee="ccb.c4"),  # BEPS
        _transfer(1, "2026-11-25T10:01", "icbc.c5", 30_000, payee="ccb.c4", urgent=True),
        _transfer(2, "2026-11-25T10:02", "icbc.c6", 10_000, payee="alice"),  # 行内
        _transfer(3, "2026-11-25T10:03", "alice", 5_000, to_account=[
            "CCB", CCB.account(30), "nobody"]),  # past the range's end: no such account
        _transfer(4, "2026-11-25T10:04", "alice", 7_000, to_account=[
            "CCB", CCB.account(29), "CCB customer 29"]))
    store = str(tmp_path / "w.db")
    runner = Runner(sc, store=store)
    out = runner.run()
    assert all(out["checks"].values()), out["checks"]
    balances = out["balances"]["customers"]
    assert len(balances) == 81
    assert balances["ccb.c4"] == "500.00" and balances["ccb.c29"] == "70.00"
    assert balances["icbc.c3"] == "800.00" and balances["icbc.c0"] == "1000.00"
    assert balances["alice"] == str(f"{1000 + 100 - 70:.2f}")
    payments = out["payments"]
    assert payments["t3"]["reason"]["code"] == "AC01"
    assert {payments[f"t{k}"]["system"] for k in range(3)} == {"BEPS", "IBPS", "BOOK"}
    banks = runner.world.banks
    assert reconcile.money_conserved(banks) and reconcile.books_balanced(banks)
    final = runner.engine.state_hash()  # the run ended with a snapshot and closed
    assert replay(store, world_systems()).state_hash() == final
    reopened = World.open(store, runner.clock)  # from the snapshot: the rules in its state
    try:
        assert reopened.engine.state_hash() == final
        assert reopened.banks.directory["ccb.c4"].account == CCB.account(4)
    finally:
        reopened.close()


def test_the_bulk_path_numbers_generated_customers_after_the_listed(tmp_path: Path) -> None:
    runner = Runner(_scenario(), store=str(tmp_path / "w.db"))
    runner.build_world()
    runner.clock.advance_to(parse_time("2026-11-25T10:00"))
    # 1 = icbc.c0 pays 51 = ccb.c0; 2 = icbc.c1 pays 0 = alice
    codes = runner.world.banks.bulk_transfers([1, 2], [51, 0], [1_000, 2_000])
    assert codes.tolist() == [0, 0]
    assert runner.balance_fen("CCB", "customer:ccb.c0") == 1_000
    assert runner.balance_fen("ICBC", "customer:alice") == 102_000
    runner.close()


# ---------------------------------------------------------------------- in a scenario file

RANGES = """
customer_ranges:
  - {bank: ICBC, count: 50, balance: "1000.00", id_prefix: icbc.c, account_prefix: "6222",
     account_digits: 19, name_prefix: "ICBC customer "}
  - {bank: CCB, count: 30, id_prefix: ccb.c, account_prefix: "6217", account_digits: 19}
"""


def test_a_file_writes_ranges_and_its_events_name_their_customers(tmp_path: Path) -> None:
    text = WORLD + RANGES + """
events:
  - {at: 2026-11-25T10:00, do: transfer, id: t1, from: icbc.c49, to: ccb.c29,
     amount: "200.00", channel: counter}
"""
    sc = parse_scenario(text, "ranges.yaml")
    assert sc.customers == CustomerTable(parse_scenario(WORLD, "w.yaml").customers,
                                         (ICBC, CCB))  # CCB's names: the default prefix
    out = Runner(sc, store=str(tmp_path / "w.db")).run()
    assert out["payments"]["t1"]["status"] == "settled"
    assert out["balances"]["customers"]["ccb.c29"] == "200.00"


@pytest.mark.parametrize(("rules", "line", "message"), [
    ("  - {bank: BOC, count: 5, id_prefix: x, account_digits: 19}", 11,
     "no participant named 'BOC'"),
    ("  - {bank: CCB, count: five, id_prefix: x, account_digits: 19}", 11,
     "count and account_digits must be whole numbers"),
    ("  - {bank: CCB, count: 5, id_prefix: x7, account_digits: 19}", 11, "id_prefix 'x7'"),
    ("  - {bank: CCB, count: 5, id_prefix: x, account_digits: 19, colour: red}", 11,
     "unknown key 'colour'"),
    ("  - {bank: ICBC, count: 5, id_prefix: alice, account_digits: 19}\n"
     "  - {bank: ICBC, count: 5, id_prefix: alice, account_digits: 19}", 10,
     "generated by two ranges"),
    ("  - {bank: ICBC, count: 10000001, id_prefix: x, account_digits: 19}", 10,
     "at most 10000000 customers")])
def test_a_bad_range_in_a_file_is_a_problem_on_its_line(rules: str, line: int, message: str
                                                        ) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(WORLD + "customer_ranges:\n" + rules + "\n", "ranges.yaml")
    problems = caught.value.problems
    assert [p.line for p in problems] == [line] and message in problems[0].message, problems


def test_an_event_naming_a_customer_past_a_range_is_a_problem() -> None:
    text = WORLD + RANGES + """
events:
  - {at: 2026-11-25T10:00, do: transfer, id: t1, from: icbc.c50, to: alice,
     amount: "1.00", channel: counter}
"""
    with pytest.raises(ScenarioError, match=r"icbc\.c50"):
        parse_scenario(text, "ranges.yaml")
