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
    from qingsuan.cards.vault import CardVault
    from qingsuan.engine import Engine

    switch = CardSwitch(vault=CardVault.sandbox("test"))
    with Engine.open("memory:", VirtualClock(parse_time("2026-11-25T09:00")),
                     systems=[switch]) as _:
        request = {"t": "0200", "2": "4111111111111111", "3": "000000", "4": "000000000100",
                   "7": "1125090000", "11": "000007", "32": "CCB", "41": "POS00001"}
        first = switch.request(request)
        assert switch.request(request) == first
        changed = dict(request, **{"4": "000000000200"})
        assert switch.request(changed)["39"] == "94"


def _story(name: str) -> dict[str, Any]:
    from importlib import resources
    from pathlib import Path

    from qingsuan.sim.scenario import load_scenario

    path = Path(str(resources.files("qingsuan") / "scenarios" / f"{name}.yaml"))
    return run_scenario(load_scenario(path), store="memory:")


def test_stories_1_and_2_clear_at_the_cutoff_and_settle_in_hvps_with_fees() -> None:
    """ATM 100.00 + coffee 36.00, debit card, fees on: ICBC pays 100 + 3.00 ATM fee + 36
    - 0.13 issuer fee it keeps + 0.04 network fees = 138.91; CCB receives 100 + 3.00 + 36
    - 0.13 - 0.04 = 138.83; the switch 0.08; the café 36.00 less 0.6% MDR = 35.78."""
    out = _story("cards")
    for pid in ("atm", "coffee"):
        assert [h["status"] for h in out["payments"][pid]["history"]] == [
            "approved", "cleared", "settled"]
        assert out["payments"][pid]["history"][1]["at"] == "2026-11-25T23:00:00+08:00"
        assert out["payments"][pid]["history"][2]["at"] == "2026-11-26T09:00:00+08:00"
    (session,) = out["net"]["CUPS"]["sessions"]
    assert session["positions"] == {"CCB": "138.83", "CUPS": "0.08", "ICBC": "-138.91"}
    assert out["balances"]["customers"] == {"alice": "4864.00", "cafe": "35.78"}
    assert out["balances"]["settlement"] == {"ICBC": "999861.09", "CCB": "1000138.83",
                                             "CUPS": "0.08"}
    assert out["balances"]["mirrors"] == out["balances"]["settlement"]
    assert all(out["checks"].values())


def test_story_5_cards_work_through_the_holiday_and_settle_after_it() -> None:
    out = _story("holiday-cards")
    assert [out["payments"][p]["history"][-1]["at"] for p in ("day2", "day5")] == [
        "2026-10-08T09:00:00+08:00"] * 2
    (session,) = out["net"]["CUPS"]["sessions"]
    assert session["positions"] == {"CCB": "500.00", "ICBC": "-500.00"}
    assert out["balances"]["settlement"] == {"ICBC": "999500.00", "CCB": "1000500.00",
                                             "CUPS": "0.00"}
    assert all(out["checks"].values())


def test_the_scenario_md_example_gives_the_contracts_outcome() -> None:
    """The worked example of ../shared/docs/SCENARIO.md, balances as the contract shows."""
    text = (
        "name: atm-withdrawal\ntimezone: Asia/Shanghai\nstart: 2026-11-25T08:00\n"
        "run_until: 2026-11-26T18:00\ncalendar: cn\n"
        "params:\n  ibps.item_limit: \"50000.00\"\n  hvps.open: \"20:30\"\n"
        "  cards.cutoff: \"23:00\"\n  cards.fees: \"off\"\n"
        "participants:\n"
        "  - {name: ICBC, code: \"102100099996\", kind: bank, settlement_balance: \"1000000.00\","
        " collateral: \"0.00\"}\n"
        "  - {name: CCB,  code: \"105100000017\", kind: bank, settlement_balance: \"1000000.00\"}\n"
        "  - {name: PAYCO, code: \"Z2000000001X\", kind: payment_institution,"
        " settlement_balance: \"0.00\"}\n"
        "customers:\n"
        "  - {id: alice, bank: ICBC, account: \"6222020200000000014\", balance: \"50000.00\"}\n"
        "  - {id: bob,   bank: CCB,  account: \"6217000010000000029\", balance: \"0.00\"}\n"
        "  - {id: cafe,  bank: CCB,  account: \"6217000010000000037\", balance: \"0.00\",\n"
        "     merchant: {mid: \"105290058120001\", mcc: \"5814\", mdr: \"0.0000\"}}\n"
        "cards:\n"
        "  - {pan: \"6222020200000000014\", account: alice, kind: debit, pin: \"123456\"}\n"
        "terminals:\n"
        "  - {id: \"ATM00001\", kind: atm, bank: CCB, cash: \"200000.00\"}\n"
        "  - {id: \"POS00001\", kind: pos, bank: CCB, merchant: cafe}\n"
        "events:\n"
        "  - {at: 2026-11-25T10:00, do: atm_withdrawal, id: w1, card: \"6222020200000000014\","
        " terminal: ATM00001, amount: \"100.00\", pin: \"123456\"}\n"
        "  - {at: 2026-11-25T12:30, do: pos_purchase, id: p1, card: \"6222020200000000014\","
        " terminal: POS00001, amount: \"36.00\"}\n"
        "  - {at: 2026-11-25T22:00, do: transfer, id: t1, channel: mobile, urgent: true,"
        " from: alice, to: bob, amount: \"30000.00\"}\n"
        "traffic: []\n")
    out = run_scenario(parse_scenario(text, "example.yaml"), store="memory:")
    assert out["ended_at"] == "2026-11-26T18:00:00+08:00"
    w1 = out["payments"]["w1"]
    assert (w1["system"], w1["status"], w1["response_code"]) == ("CUPS", "settled", "00")
    assert [h["status"] for h in w1["history"]] == ["approved", "cleared", "settled"]
    assert out["balances"]["customers"] == {"alice": "19864.00", "bob": "30000.00",
                                            "cafe": "36.00"}
    settlement = out["balances"]["settlement"]
    assert {k: settlement[k] for k in ("ICBC", "CCB", "PAYCO")} == {
        "ICBC": "969864.00", "CCB": "1030136.00", "PAYCO": "0.00"}
    assert out["balances"]["terminals"] == {"ATM00001": "199900.00"}
    assert out["checks"]["books_balanced"] and out["checks"]["money_conserved"]


def test_void_undoes_a_purchase_and_void_after_reversal_is_22() -> None:
    events = "".join([
        ev("10:00", f'do: pos_purchase, id: p1, card: "{CARD}", terminal: POS00001, '
                    'amount: "50.00"'),
        ev("10:05", "do: pos_void, id: v1, target: p1"),
        ev("10:06", "do: pos_void, id: v2, target: p1"),
        ev("10:10", f'do: pos_purchase, id: p2, card: "{CARD}", terminal: POS00001, '
                    'amount: "20.00"'),
        ev("10:11", "do: reversal, id: r2, target: p2"),
        ev("10:12", "do: pos_void, id: v3, target: p2"),
    ])
    out = run(events)
    p = out["payments"]
    assert p["p1"]["status"] == "reversed" and p["v1"]["response_code"] == "00"
    assert p["v2"]["response_code"] == "22"  # voided already (a reversed original)
    assert p["v3"]["response_code"] == "22"  # void after reversal
    assert out["balances"]["customers"] == {"alice": "1000.00", "cafe": "0.00"}
    assert all(out["checks"].values())


def test_a_reversal_after_the_cutoff_is_too_late() -> None:
    events = "".join([
        ev("10:00", f'do: pos_purchase, id: p1, card: "{CARD}", terminal: POS00001, '
                    'amount: "50.00"'),
        ev("23:30", "do: reversal, id: late, target: p1"),
    ])
    world = WORLD.replace("run_until: 2026-11-25T18:00", "run_until: 2026-11-26T08:00")
    out = run_scenario(parse_scenario(world + events, "late.yaml"), store="memory:")
    assert out["payments"]["p1"]["status"] == "cleared"
    assert out["actions"][0]["ok"] is False and out["actions"][0]["reason"]["code"] == "12"
    assert out["balances"]["customers"]["cafe"] == "49.70"  # 50.00 less the 0.6% MDR


def test_an_all_on_us_day_is_settled_at_its_close_without_hvps() -> None:
    """本行卡 at the bank's own terminal: nothing crosses a settlement account, so the day is
    final in the bank's books at the cut-off (no CUPS batch in HVPS)."""
    outcome = run_scenario(parse_scenario(ONUS, "onus.yaml"))
    coffee = outcome["payments"]["coffee"]
    assert [h["status"] for h in coffee["history"]] == ["approved", "cleared", "settled"]
    assert coffee["history"][2]["at"] == "2026-11-25T23:00:00+08:00"
    assert outcome["balances"]["customers"] == {"alice": "4964.00", "shop": "35.78"}
    assert outcome["balances"]["settlement"]["ICBC"] == "1000000.00"
    assert all(outcome["checks"].values())


ONUS = """
name: onus
start: 2026-11-25T08:00
run_until: 2026-11-26T12:00
calendar: cn
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "5000.00"}
  - {id: shop, bank: ICBC, account: "6222020200000000022", balance: "0.00",
     merchant: {mid: "102290058120001", mcc: "5411", mdr: "0.0060"}}
cards:
  - {pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}
terminals:
  - {id: "POS00001", kind: pos, bank: ICBC, merchant: shop}
events:
  - {at: 2026-11-25T12:30, do: pos_purchase, id: coffee, card: "6222020200000000014",
     terminal: POS00001, amount: "36.00"}
"""


def test_the_issuer_decides_in_the_order_an_issuer_checks() -> None:
    """banks/issuer.authorise: unknown card 14, blocked 05, wrong PIN 55 (blocking after the
    tries), balance inquiry 00, amount 13, daily cash limit 61, funds with credit 51."""
    from dataclasses import dataclass

    from qingsuan.banks.issuer import IssuerRules, authorise

    @dataclass
    class _Card:
        kind: str = "debit"
        pin_hash: str | None = "ab"
        status: str = "active"
        wrong_pins: int = 0

    rules = IssuerRules(pos_no_pin_limit_fen=100_000, pin_tries=2,
                        daily_withdrawal_limit_fen=2_000_000)

    def ask(card: _Card | None, **kw: object) -> str:
        args: dict[str, object] = {"pin_hash": "ab", "proc": "00", "amount_fen": 1_000,
                                   "at_atm": False, "available_fen": 5_000,
                                   "overdraft_limit_fen": 0, "withdrawn_today_fen": 0}
        args.update(kw)
        return authorise(card, rules=rules, **args)  # type: ignore[arg-type]

    assert ask(None) == "14"
    assert ask(_Card(status="blocked")) == "05"
    card = _Card()
    assert ask(card, pin_hash="cd") == "55" and card.status == "active"
    assert ask(card, pin_hash="cd") == "55" and card.status == "blocked"
    assert ask(_Card(), proc="31") == "00"
    assert ask(_Card(), amount_fen=0) == "13"
    assert ask(_Card(), proc="01", withdrawn_today_fen=1_999_500) == "61"
    assert ask(_Card(), amount_fen=6_000) == "51"
    assert ask(_Card(kind="credit"), amount_fen=6_000, overdraft_limit_fen=1_000) == "00"
    # a small POS purchase without a PIN passes on a debit card below the no-PIN limit
    assert ask(_Card(), pin_hash=None, amount_fen=50_000, available_fen=500_000) == "00"
    assert ask(_Card(), pin_hash=None, amount_fen=150_000, available_fen=500_000) == "55"
    assert ask(_Card(), pin_hash=None, at_atm=True) == "55"
