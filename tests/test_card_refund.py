"""Refunds (退货, 0220 processing code 20): rules, postings, clearing, files (issue 6 item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.cards.clearing import CREDIT, DEBIT, PURCHASE, REFUND, clear
from qingsuan.cards.files import parse_clearing_file
from qingsuan.clock import parse_time
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
CARD = "6222020200000000014"
CREDIT_CARD = "6222020200000000022"
ONUS_CARD = "6217000010000000045"

WORLD = """\
name: refunds
start: 2026-11-25T08:00
run_until: {until}
participants:
  - {{name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}}
customers:
  - {{id: alice, bank: ICBC, account: "6222020200000000014", balance: "1000.00"}}
  - {{id: carol, bank: ICBC, account: "6222020200000000022", balance: "0.00",
     credit_limit: "50000.00"}}
  - {{id: dan,   bank: CCB,  account: "6217000010000000045", balance: "500.00"}}
  - {{id: cafe,  bank: CCB,  account: "6217000010000000037", balance: "{cafe}",
     merchant: {{mid: "105290058120001", mcc: "5814", mdr: "0.0060"}}}}
cards:
  - {{pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}}
  - {{pan: "6222020200000000022", account: carol, kind: credit, pin: "654321"}}
  - {{pan: "6217000010000000045", account: dan, kind: debit, pin: "111111"}}
terminals:
  - {{id: "ATM00001", kind: atm, bank: CCB, cash: "200000.00"}}
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: cafe}}
events:
"""


def world(events: str, *, until: str = "2026-11-25T18:00", cafe: str = "0.00") -> str:
    return WORLD.format(until=until, cafe=cafe) + events


def run(events: str, **kw: str) -> dict[str, Any]:
    return run_scenario(parse_scenario(world(events, **kw), "refunds.yaml"), store="memory:")


def ev(at: str, body: str) -> str:
    return f"  - {{at: 2026-11-{at}, {body}}}\n"


def buy(at: str, pid: str, amount: str, card: str = CARD) -> str:
    return ev(at, f'do: pos_purchase, id: {pid}, card: "{card}", terminal: POS00001, '
                  f'amount: "{amount}"')


def refund(at: str, rid: str, target: str, amount: str) -> str:
    return ev(at, f'do: pos_refund, id: {rid}, target: {target}, amount: "{amount}"')


def statuses(out: dict[str, Any], pid: str) -> list[str]:
    return [h["status"] for h in out["payments"][pid]["history"]]


# ------------------------------------------------------------------------- the story


def test_the_refund_story_nets_to_zero_over_two_days() -> None:
    """scenarios/cards-refund.yaml: 300.00 bought, 100.00 refunded the same day, 200.00
    the next day after the purchase settled; 0.01 more is 13."""
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-refund.yaml"),
                       store="memory:")
    p = out["payments"]
    assert p["refund1"]["kind"] == "pos_refund" and p["refund1"]["system"] == "CUPS"
    for pid in ("buy", "refund1", "refund2"):
        assert statuses(out, pid) == ["approved", "cleared", "settled"], pid
    assert p["refund1"]["history"][1]["at"] == "2026-11-25T23:00:00+08:00"
    assert p["refund2"]["history"][1]["at"] == "2026-11-26T23:00:00+08:00"
    assert p["refund2"]["history"][2]["at"] == "2026-11-27T09:00:00+08:00"
    assert (p["refund3"]["status"], p["refund3"]["response_code"]) == ("declined", "13")
    # day 1: purchase 300.00 less its refund 100.00, fees in proportion (issuer fee 1.05 of
    # which 0.35 comes back, network fee 0.10 per side of which 0.03 comes back)
    day1, day2 = out["net"]["CUPS"]["sessions"]
    assert day1["positions"] == {"CCB": "199.23", "CUPS": "0.14", "ICBC": "-199.37"}
    assert day2["positions"] == {"CCB": "-199.23", "CUPS": "-0.14", "ICBC": "199.37"}
    assert out["balances"]["customers"] == {"alice": "5000.00", "cafe": "998.20"}
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "1000000.00",
                                             "CUPS": "0.00"}
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}


# ------------------------------------------------------------------------- rules


def test_refund_of_twice_the_amount_is_13_and_changes_nothing() -> None:
    out = run(buy("25T10:00", "p1", "50.00") + refund("25T10:30", "r1", "p1", "100.00"),
              cafe="500.00")
    r1 = out["payments"]["r1"]
    assert (r1["status"], r1["response_code"]) == ("declined", "13")
    assert r1["reason"]["message"] == "invalid amount"
    assert out["balances"]["customers"]["alice"] == "950.00"
    assert out["balances"]["customers"]["cafe"] == "500.00"
    assert all(out["checks"].values())


def test_partial_refunds_add_up_to_the_purchase_and_no_further() -> None:
    events = (buy("25T10:00", "p1", "100.00")
              + refund("25T10:10", "r1", "p1", "40.00")
              + refund("25T10:20", "r2", "p1", "60.01")   # 0.01 too much: 13
              + refund("25T10:30", "r3", "p1", "60.00")   # exactly what is left
              + refund("25T10:40", "r4", "p1", "0.01"))   # nothing left: 13
    out = run(events, cafe="100.00")
    codes = {k: v["response_code"] for k, v in out["payments"].items()}
    assert codes == {"p1": "00", "r1": "00", "r2": "13", "r3": "00", "r4": "13"}
    assert out["balances"]["customers"]["alice"] == "1000.00"
    assert all(out["checks"].values())


def test_balances_to_the_fen_after_settlement_with_a_credit_card() -> None:
    """A credit card (0.45% issuer fee, uncapped) buys 2,000.00; 500.00 is refunded the same
    day and 700.00 the next. Positions and balances by hand:
    purchase: issuer fee 9.00, network fee 0.65 per side;
    refund 500.00 (a quarter): 2.25 and 0.16 (0.1625 rounds down) back;
    refund 700.00: share(1200) - share(500) = 5.40 - 2.25 = 3.15 and 0.39 - 0.16 = 0.23."""
    events = (buy("25T10:00", "p1", "2000.00", CREDIT_CARD)
              + refund("25T12:00", "r1", "p1", "500.00")
              + refund("26T10:00", "r2", "p1", "700.00"))
    out = run(events, until="2026-11-27T12:00", cafe="0.00")
    day1, day2 = out["net"]["CUPS"]["sessions"]
    # ICBC owes 2000 - 9.00 + 0.65 = 1991.65 and is owed 500 - 2.25 + 0.16 = 497.91;
    # CCB is owed 2000 - 9.00 - 0.65 = 1990.35 and owes 500 - 2.25 - 0.16 = 497.59
    assert day1["positions"] == {"CCB": "1492.76", "CUPS": "0.98", "ICBC": "-1493.74"}
    # ICBC is owed 700 - 3.15 + 0.23 = 697.08; CCB owes 700 - 3.15 - 0.23 = 696.62
    assert day2["positions"] == {"CCB": "-696.62", "CUPS": "-0.46", "ICBC": "697.08"}
    assert out["balances"]["customers"]["carol"] == "-800.00"
    # the café: 2000 - 12.00 MDR - 500 paid on day 1 (1488.00), then 700 taken back
    assert out["balances"]["customers"]["cafe"] == "788.00"
    assert out["balances"]["settlement"] == {"ICBC": "999203.34", "CCB": "1000796.14",
                                             "CUPS": "0.52"}
    assert out["balances"]["mirrors"] == out["balances"]["settlement"]
    assert all(out["checks"].values())
    for pid in ("p1", "r1", "r2"):
        assert out["payments"][pid]["status"] == "settled"


def test_refund_after_the_original_settled() -> None:
    events = buy("25T10:00", "p1", "80.00") + refund("26T11:00", "r1", "p1", "80.00")
    out = run(events, until="2026-11-27T12:00", cafe="100.00")
    assert statuses(out, "p1") == ["approved", "cleared", "settled"]
    assert out["payments"]["p1"]["history"][-1]["at"] == "2026-11-26T09:00:00+08:00"
    assert statuses(out, "r1") == ["approved", "cleared", "settled"]
    assert out["payments"]["r1"]["history"][-1]["at"] == "2026-11-27T09:00:00+08:00"
    assert out["balances"]["customers"]["alice"] == "1000.00"
    # paid 80.00 less the 0.48 MDR on day 1, gives back 80.00 on day 2
    assert out["balances"]["customers"]["cafe"] == "99.52"
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "1000000.00",
                                             "CUPS": "0.00"}
    assert all(out["checks"].values())


def test_the_acquirer_refuses_a_refund_the_merchant_cannot_cover() -> None:
    """The MDR is not given back: a café with no money of its own that took 80.00 (79.52
    after its 0.6% MDR) cannot refund all 80.00 (51); 79.52 it can."""
    events = (buy("25T10:00", "p1", "80.00")
              + refund("26T11:00", "r1", "p1", "80.00")
              + refund("26T11:01", "r2", "p1", "79.52"))
    out = run(events, until="2026-11-27T12:00")
    assert out["payments"]["r1"]["response_code"] == "51"
    assert out["payments"]["r2"]["response_code"] == "00"
    assert out["balances"]["customers"] == {"alice": "999.52", "carol": "0.00",
                                            "dan": "500.00", "cafe": "0.00"}
    assert all(out["checks"].values())


def test_reversed_or_declined_originals_and_atm_withdrawals_cannot_be_refunded() -> None:
    events = (buy("25T10:00", "p1", "50.00")
              + ev("25T10:01", "do: reversal, id: x1, target: p1")
              + refund("25T10:02", "r1", "p1", "10.00")           # reversed original
              + buy("25T10:03", "p2", "5000.00")                   # 51: declined
              + refund("25T10:04", "r2", "p2", "10.00"))          # declined original
    out = run(events, cafe="100.00")
    assert out["payments"]["r1"]["response_code"] == "12"
    assert out["payments"]["r2"]["response_code"] == "12"
    assert out["balances"]["customers"]["alice"] == "1000.00"


def test_a_refunded_purchase_can_no_longer_be_voided_or_reversed() -> None:
    events = (buy("25T10:00", "p1", "50.00")
              + refund("25T10:01", "r1", "p1", "10.00")
              + ev("25T10:02", "do: pos_void, id: v1, target: p1")
              + ev("25T10:03", "do: reversal, id: x1, target: p1"))
    out = run(events)
    assert out["payments"]["v1"]["response_code"] == "12"
    assert out["actions"][-1]["reason"]["code"] == "12"
    assert out["balances"]["customers"]["alice"] == "960.00"
    assert all(out["checks"].values())


def test_an_on_us_refund_stays_within_the_bank() -> None:
    events = buy("25T10:00", "p1", "30.00", ONUS_CARD) + refund("25T11:00", "r1", "p1", "30.00")
    out = run(events, until="2026-11-26T12:00", cafe="10.00")
    assert out["balances"]["customers"]["dan"] == "500.00"
    assert out["balances"]["customers"]["cafe"] == "9.82"  # the MDR 0.18 is not given back
    assert out["net"]["CUPS"]["sessions"] == []
    # nothing crossed a settlement account: final in the bank's books at the close
    assert statuses(out, "r1") == ["approved", "cleared", "settled"]
    assert all(out["checks"].values())


# ------------------------------------------------------------------------- the switch


def _switch() -> Any:
    """A runner's world with the switch, for requests the gateway would send."""
    text = world(buy("25T10:00", "p1", "100.00"), cafe="100.00")
    runner = Runner(parse_scenario(text, "refunds.yaml"), store="memory:")
    runner.build_world()
    runner.clock.advance_to(parse_time("2026-11-25T10:00"))
    answer = runner.switch.request({
        "t": "0200", "2": CARD, "3": "000000", "4": "000000010000", "7": "1125100000",
        "11": "000001", "32": "CCB", "41": "POS00001", "49": "156", "37": "000000000001"})
    assert answer["39"] == "00" and answer["key"] == "CCB|000001|1125100000"
    return runner


def _refund_request(stan: str, amount: str, original: str = "CCB|000001|1125100000"
                    ) -> dict[str, str]:
    return {"t": "0220", "3": "200000", "4": amount, "7": "1125110000", "11": stan,
            "32": "CCB", "41": "POS00001", "37": f"000000{stan}", "original_key": original}


def test_switch_refund_answers_retries_duplicates_and_unknown_originals() -> None:
    runner = _switch()
    switch = runner.switch
    request = _refund_request("000002", "000000002000")
    first = switch.request(request)
    assert first == {"t": "0230", "39": "00", "key": "CCB|000002|1125110000"}
    assert switch.request(request) == first  # a true retry: nothing posted twice
    assert switch.request(dict(request, **{"4": "000000003000"}))["39"] == "94"
    assert switch.request(_refund_request("000003", "000000000100", "CCB|9|9"))["39"] == "25"
    assert switch.request(_refund_request("000004", "000000000000"))["39"] == "13"
    assert runner.balance_fen("ICBC", "customer:alice") == 100_000 - 10_000 + 2_000


def test_a_reversal_of_a_refund_undoes_it_and_frees_the_amount_again() -> None:
    runner = _switch()
    switch = runner.switch
    assert switch.request(_refund_request("000002", "000000010000"))["39"] == "00"
    assert switch.request(_refund_request("000003", "000000000001"))["39"] == "13"
    reversal = {"t": "0400", "11": "000004", "original_key": "CCB|000002|1125110000"}
    assert switch.request(reversal)["39"] == "00"
    assert switch.request(dict(reversal, **{"11": "000005"}))["39"] == "00"  # idempotent
    assert runner.balance_fen("ICBC", "customer:alice") == 100_000 - 10_000
    assert switch.request(_refund_request("000006", "000000010000"))["39"] == "00"
    assert runner.balance_fen("ICBC", "customer:alice") == 100_000
    assert runner.books_balanced() and runner.money_conserved()


def test_refunds_are_in_the_clearing_files_with_the_direction_reversed(tmp_path: Path) -> None:
    events = buy("25T10:00", "p1", "100.00") + refund("25T11:00", "r1", "p1", "25.00")
    scenario = parse_scenario(world(events, until="2026-11-26T12:00", cafe="50.00"), "r.yaml")
    run_scenario(scenario, store="memory:", clearing_dir=tmp_path)
    _, icbc, icbc_total = parse_clearing_file((tmp_path / "ICBC_20261125.txt").read_text())
    _, ccb, ccb_total = parse_clearing_file((tmp_path / "CCB_20261125.txt").read_text())
    by_mti = {d.mti: d for d in icbc}
    assert (by_mti["0200"].direction, by_mti["0220"].direction) == ("D", "C")
    assert {d.mti: d.direction for d in ccb} == {"0200": "C", "0220": "D"}
    assert by_mti["0220"].amount_fen == 2_500
    assert by_mti["0220"].pan == "622202****0014"
    # fees: purchase 0.35 issuer fee, 0.03 network; the quarter refund gives back 0.09, 0.01
    assert (by_mti["0200"].fee_fen, by_mti["0220"].fee_fen) == (35 - 3, -(9 - 1))
    assert (icbc_total.debit_total_fen, icbc_total.credit_total_fen) == (10_000, 2_500)
    assert (ccb_total.debit_total_fen, ccb_total.credit_total_fen) == (2_500, 10_000)


# ------------------------------------------------------------------------- fees


def test_two_half_refunds_of_a_capped_purchase_return_the_cap_once() -> None:
    """10,000.00 on a debit card: issuer fee 35.00 capped at 13.00, network fee 3.25 (cap).
    Each half refund alone would be 5,000.00 with 13.00 of fee; in proportion each returns
    6.50 and 1.63 / 1.62, so the purchase and its refunds net to exactly zero."""
    amount = 1_000_000
    r = clear([0, 0, 0], [1, 1, 1], [PURCHASE, REFUND, REFUND], [DEBIT] * 3,
              [amount, amount // 2, amount // 2], n_participants=3, switch=2,
              fee_base_fen=[amount] * 3, refunded_before_fen=[0, 0, amount // 2])
    assert r.issuer_fee_fen.tolist() == [1300, 650, 650]
    assert r.network_fee_fen.tolist() == [325, 163, 162]
    assert r.positions_fen.tolist() == [0, 0, 0]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**9), st.lists(st.integers(1, 10**6), min_size=1, max_size=6),
       st.sampled_from([DEBIT, CREDIT]))
def test_refund_fees_never_exceed_the_purchases_and_sum_to_them_when_full(
        amount: int, weights: list[int], card_kind: int) -> None:
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    parts[-1] += amount - sum(parts)
    parts = [p for p in parts if p > 0]
    before = [sum(parts[:i]) for i in range(len(parts))]
    n = len(parts) + 1
    r = clear([0] * n, [1] * n, [PURCHASE] + [REFUND] * len(parts), [card_kind] * n,
              [amount, *parts], n_participants=3, switch=2,
              fee_base_fen=[amount] * n, refunded_before_fen=[0, *before])
    assert int(r.issuer_fee_fen[1:].sum()) == int(r.issuer_fee_fen[0])
    assert int(r.network_fee_fen[1:].sum()) == int(r.network_fee_fen[0])
    assert r.positions_fen.tolist() == [0, 0, 0]
    partial = clear([0] * (n - 1), [1] * (n - 1), [PURCHASE] + [REFUND] * (n - 2),
                    [card_kind] * (n - 1), [amount, *parts[:-1]], n_participants=3,
                    switch=2, fee_base_fen=[amount] * (n - 1),
                    refunded_before_fen=[0, *before[:-1]])
    assert int(partial.issuer_fee_fen[1:].sum()) <= int(r.issuer_fee_fen[0])


def test_merchant_funds_are_rebuilt_from_a_snapshot(tmp_path: Path) -> None:
    """Refunds look at the merchant's open takings through an index the switch keeps; a
    restart from a snapshot rebuilds it: the same refund gets the same answer."""
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine

    text = world("", cafe="0.00")
    store = f"sqlite:///{tmp_path}/r.db"
    runner = Runner(parse_scenario(text, "refunds.yaml"), store=store)
    runner.build_world()
    runner.clock.advance_to(parse_time("2026-11-25T10:00"))
    assert runner.switch.request({
        "t": "0200", "2": CARD, "3": "000000", "4": "000000008000", "7": "1125100000",
        "11": "000001", "32": "CCB", "41": "POS00001", "49": "156",
        "37": "000000000001"})["39"] == "00"
    runner.engine.snapshot()
    runner.engine.close()
    switch = CardSwitch()
    with Engine.open(store, runner.clock, systems=[Cnaps(), switch]) as engine:
        assert engine.log.latest_snapshot() is not None
        # 80.00 less the 0.48 MDR is all the cafe (balance 0.00) can give back
        assert switch.request(_refund_request("000002", "000000008000",
                                              "CCB|000001|1125100000"))["39"] == "51"
        assert switch.request(_refund_request("000003", "000000007952",
                                              "CCB|000001|1125100000"))["39"] == "00"
