"""The card switch's authorisation path: routing, the issuer's checks, postings, reversals."""

from __future__ import annotations

from typing import Any

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import parse_scenario

WORLD = """\
name: cards
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
params:
  cards.daily_withdrawal_limit: "300.00"
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "1000.00"}
  - {id: cafe,  bank: CCB,  account: "6217000010000000037", balance: "0.00",
     merchant: {mid: "105290058120001", mcc: "5814", mdr: "0.0060"}}
cards:
  - {pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}
terminals:
  - {id: "ATM00001", kind: atm, bank: CCB, cash: "200000.00"}
  - {id: "POS00001", kind: pos, bank: CCB, merchant: cafe}
events:
"""
CARD = "6222020200000000014"


def run(events: str) -> dict[str, Any]:
    return run_scenario(parse_scenario(WORLD + events, "cards.yaml"), store="memory:")


def ev(at: str, body: str) -> str:
    return f"  - {{at: 2026-11-25T{at}, {body}}}\n"


def test_atm_withdrawal_debits_the_cardholder_and_pays_out_cash() -> None:
    out = run(ev("10:00", f'do: atm_withdrawal, id: w1, card: "{CARD}", terminal: ATM00001, '
                          'amount: "100.00", pin: "123456"'))
    w1 = out["payments"]["w1"]
    assert (w1["system"], w1["status"], w1["response_code"]) == ("CUPS", "approved", "00")
    assert out["balances"]["customers"]["alice"] == "900.00"
    assert out["balances"]["terminals"]["ATM00001"] == "199900.00"
    assert all(out["checks"].values())


def test_issuer_checks_pin_funds_limits_and_routing() -> None:
    events = "".join([
        ev("09:00", f'do: atm_withdrawal, id: bad-pin, card: "{CARD}", terminal: ATM00001, '
                    'amount: "10.00", pin: "000000"'),
        ev("09:01", f'do: atm_withdrawal, id: over-limit, card: "{CARD}", '
                    'terminal: ATM00001, amount: "300.01", pin: "123456"'),
        ev("09:02", f'do: pos_purchase, id: no-funds, card: "{CARD}", terminal: POS00001, '
                    'amount: "1000.01", pin: "123456"'),
        ev("09:03", 'do: pos_purchase, id: no-bin, card: "4111111111111111", '
                    'terminal: POS00001, amount: "1.00"'),
        ev("09:04", 'do: pos_purchase, id: bad-luhn, card: "6222020200000000015", '
                    'terminal: POS00001, amount: "1.00"'),
        ev("09:05", f'do: atm_balance_inquiry, id: bal, card: "{CARD}", terminal: ATM00001, '
                    'pin: "123456"'),
        ev("09:06", f'do: pos_purchase, id: coffee, card: "{CARD}", terminal: POS00001, '
                    'amount: "36.00"'),
    ])
    out = run(events)
    codes = {k: v["response_code"] for k, v in out["payments"].items()}
    assert codes == {"bad-pin": "55", "over-limit": "61", "no-funds": "51", "no-bin": "15",
                     "bad-luhn": "14", "coffee": "00"}
    assert out["inquiries"]["bal"]["balance"] == "1000.00"
    assert out["balances"]["customers"]["alice"] == "964.00"
    assert out["payments"]["no-funds"]["status"] == "declined"


def test_three_wrong_pins_block_the_card() -> None:
    events = "".join(ev(f"09:0{i}", f'do: atm_withdrawal, id: try{i}, card: "{CARD}", '
                                    'terminal: ATM00001, amount: "10.00", pin: "999999"')
                     for i in range(3))
    events += ev("09:05", f'do: atm_withdrawal, id: right, card: "{CARD}", '
                          'terminal: ATM00001, amount: "10.00", pin: "123456"')
    out = run(events)
    assert [out["payments"][f"try{i}"]["response_code"] for i in range(3)] == ["55"] * 3
    assert out["payments"]["right"]["response_code"] == "05"  # blocked
    assert out["balances"]["customers"]["alice"] == "1000.00"


def test_a_reversal_undoes_exactly_and_twice_changes_nothing() -> None:
    events = "".join([
        ev("10:00", f'do: atm_withdrawal, id: w1, card: "{CARD}", terminal: ATM00001, '
                    'amount: "200.00", pin: "123456"'),
        ev("10:01", "do: reversal, id: r1, target: w1"),
        ev("10:02", "do: reversal, id: r2, target: w1"),
        ev("10:03", f'do: atm_withdrawal, id: w2, card: "{CARD}", terminal: ATM00001, '
                    'amount: "300.00", pin: "123456"'),  # the daily limit was given back
    ])
    out = run(events)
    assert out["payments"]["w1"]["status"] == "reversed"
    assert [a["ok"] for a in out["actions"]] == [True, True]
    assert out["payments"]["w2"]["response_code"] == "00"
    assert out["balances"]["customers"]["alice"] == "700.00"
    assert out["balances"]["terminals"]["ATM00001"] == "199700.00"
    assert all(out["checks"].values())


def test_reversal_rules_by_response_code() -> None:
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.engine import Engine

    switch = CardSwitch()
    with Engine.open("memory:", VirtualClock(parse_time("2026-11-25T09:00")),
                     systems=[switch]) as _:
        assert switch.request({"t": "0400", "11": "000001", "original_key": "nope"})["39"] == "25"


def test_a_true_retry_gets_the_original_answer_and_a_changed_one_94() -> None:
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.engine import Engine

    switch = CardSwitch()
    with Engine.open("memory:", VirtualClock(parse_time("2026-11-25T09:00")),
                     systems=[switch]) as _:
        request = {"t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000000100",
                   "7": "1125090000", "11": "000007", "32": "CCB", "41": "POS00001"}
        first = switch.request(request)
        assert switch.request(request) == first
        changed = dict(request, **{"4": "000000000200"})
        assert switch.request(changed)["39"] == "94"
