"""Issuer host faults, timeouts, the switch's own reversal and stand-in (issue 6 item 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.engine import replay
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import ScenarioError, load_scenario, parse_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1]
CARD = "6222020200000000014"
CREDIT_CARD = "6222020200000000022"

WORLD = """\
name: faults
start: 2026-11-25T08:00
run_until: {until}
params:
{params}
participants:
  - {{name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}}
customers:
  - {{id: alice, bank: ICBC, account: "6222020200000000014", balance: "{alice}"}}
  - {{id: carol, bank: ICBC, account: "6222020200000000022", balance: "0.00",
     credit_limit: "3000.00"}}
  - {{id: cafe,  bank: CCB,  account: "6217000010000000037", balance: "0.00",
     merchant: {{mid: "105290058120001", mcc: "5814", mdr: "0.0060"}}}}
cards:
  - {{pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}}
  - {{pan: "6222020200000000022", account: carol, kind: credit, pin: "654321"}}
terminals:
  - {{id: "ATM00001", kind: atm, bank: CCB, cash: "200000.00"}}
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: cafe}}
events:
"""


def world(events: str, *, until: str = "2026-11-25T18:00", alice: str = "1000.00",
          params: dict[str, str] | None = None) -> str:
    lines = "\n".join(f'  {k}: "{v}"' for k, v in (params or {}).items()) or \
        '  cards.cutoff: "23:00"'
    return WORLD.format(until=until, alice=alice, params=lines) + events


def run(events: str, **kw: Any) -> dict[str, Any]:
    return run_scenario(parse_scenario(world(events, **kw), "faults.yaml"), store="memory:")


def ev(at: str, body: str) -> str:
    return f"  - {{at: 2026-11-{at}, {body}}}\n"


def fault(at: str, mode: str, who: str = "ICBC") -> str:
    return ev(at, f"do: fault, participant: {who}, host: issuer, mode: {mode}")


def withdraw(at: str, wid: str, amount: str) -> str:
    return ev(at, f'do: atm_withdrawal, id: {wid}, card: "{CARD}", terminal: ATM00001, '
                  f'amount: "{amount}", pin: "123456"')


def buy(at: str, pid: str, amount: str, card: str = CARD, pin: str | None = None) -> str:
    extra = f', pin: "{pin}"' if pin else ""
    return ev(at, f'do: pos_purchase, id: {pid}, card: "{card}", terminal: POS00001, '
                  f'amount: "{amount}"{extra}')


STANDIN = {"cards.standin": "on"}


# ------------------------------------------------------------------------- the story


def test_the_timeout_story() -> None:
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-timeout.yaml"),
                       store="memory:")
    p = out["payments"]
    assert (p["late"]["status"], p["late"]["response_code"]) == ("declined", "68")
    assert "reversed it at the issuer" in p["late"]["reason"]["message"]
    assert p["late"]["history"] == [{"at": "2026-11-25T10:05:30+08:00", "status": "declined"}]
    assert [a["ok"] for a in out["actions"] if a["do"] == "reversal"] == [True]
    assert p["no-answer"]["response_code"] == "91"
    assert (p["coffee"]["status"], p["coffee"].get("stand_in")) == ("settled", True)
    assert p["too-big"]["response_code"] == "91"
    assert p["cash"]["status"] == "settled"
    assert [a.get("advices_delivered") for a in out["actions"] if a["do"] == "fault"] == [
        0, 0, 1]
    (session,) = out["net"]["CUPS"]["sessions"]
    assert session["positions"] == {"CCB": "138.83", "CUPS": "0.08", "ICBC": "-138.91"}
    assert out["balances"]["customers"] == {"alice": "4864.00", "cafe": "35.78"}
    assert out["balances"]["terminals"] == {"ATM00001": "199900.00"}
    assert out["balances"]["settlement"] == {"ICBC": "999861.09", "CCB": "1000138.83",
                                             "CUPS": "0.08"}
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}


# ------------------------------------------------------------------------- down, slow, up


def test_a_down_issuer_gets_91_after_the_timeout_and_nothing_is_posted() -> None:
    events = fault("25T09:00", "down") + withdraw("25T09:10", "w1", "100.00") + buy(
        "25T09:20", "p1", "10.00")
    out = run(events, params={"cards.issuer_timeout": "45"})
    for pid in ("w1", "p1"):  # stand-in is off by default: a small purchase is 91 too
        rec = out["payments"][pid]
        assert (rec["status"], rec["response_code"]) == ("declined", "91")
        assert "within 45 s" in rec["reason"]["message"]
    assert out["payments"]["w1"]["history"][0]["at"] == "2026-11-25T09:10:45+08:00"
    assert out["balances"]["customers"] == {"alice": "1000.00", "carol": "0.00",
                                            "cafe": "0.00"}
    assert out["balances"]["terminals"] == {"ATM00001": "200000.00"}
    assert out["log"]["transfers"] == run("")["log"]["transfers"]  # not one posting
    assert all(out["checks"].values())


def test_a_slow_issuer_is_68_and_the_switch_reversal_gives_the_money_back() -> None:
    events = (fault("25T09:00", "slow") + withdraw("25T09:10", "w1", "300.00")
              + ev("25T09:11", "do: reversal, id: x1, target: w1")   # the ATM's own, later
              + ev("25T09:12", "do: reversal, id: x2, target: w1")   # and again
              + fault("25T10:00", "up") + withdraw("25T10:10", "w2", "1000.00"))
    out = run(events, params={"cards.daily_withdrawal_limit": "1000.00"})
    w1 = out["payments"]["w1"]
    assert (w1["status"], w1["response_code"]) == ("declined", "68")
    assert [a["ok"] for a in out["actions"] if a["do"] == "reversal"] == [True, True]
    # the full daily allowance is free again: the late withdrawal did not use it
    assert out["payments"]["w2"]["response_code"] == "00"
    assert out["balances"]["customers"]["alice"] == "0.00"
    assert out["balances"]["terminals"] == {"ATM00001": "199000.00"}
    assert all(out["checks"].values())


def test_a_slow_issuer_that_declines_is_still_68_and_books_nothing() -> None:
    out = run(fault("25T09:00", "slow") + withdraw("25T09:10", "w1", "5000.00"))
    assert out["payments"]["w1"]["response_code"] == "68"
    assert "answer (51)" in out["payments"]["w1"]["reason"]["message"]
    assert "reversed" not in out["payments"]["w1"]["reason"]["message"]
    assert out["balances"]["customers"]["alice"] == "1000.00"


def test_a_reversal_twice_changes_nothing_the_second_time() -> None:
    base = withdraw("25T09:10", "w1", "200.00") + ev("25T09:11", "do: reversal, id: x1, "
                                                                 "target: w1")
    once = run(base)
    twice = run(base + ev("25T09:12", "do: reversal, id: x2, target: w1"))
    assert twice["balances"] == once["balances"]
    assert twice["log"]["transfers"] == once["log"]["transfers"]
    assert twice["actions"][-1]["ok"] is True


def test_only_the_faulty_issuer_is_affected() -> None:
    events = fault("25T09:00", "down", "CCB") + withdraw("25T09:10", "w1", "100.00")
    out = run(events)
    assert out["payments"]["w1"]["response_code"] == "00"  # ICBC's card, ICBC is up


def test_refunds_need_the_issuer() -> None:
    events = (buy("25T09:00", "p1", "50.00") + fault("25T09:10", "down")
              + ev("25T09:11", 'do: pos_refund, id: r1, target: p1, amount: "10.00"')
              + fault("25T09:20", "slow")
              + ev("25T09:21", 'do: pos_refund, id: r2, target: p1, amount: "10.00"')
              + fault("25T09:30", "up")
              + ev("25T09:31", 'do: pos_refund, id: r3, target: p1, amount: "40.00"'))
    out = run(events)
    codes = {k: v["response_code"] for k, v in out["payments"].items()}
    assert codes == {"p1": "00", "r1": "91", "r2": "68", "r3": "00"}
    assert out["balances"]["customers"]["alice"] == "990.00"
    assert all(out["checks"].values())


# ------------------------------------------------------------------------- stand-in


def test_stand_in_limits_pins_and_atms() -> None:
    params = {**STANDIN, "cards.standin_limit": "2000.00"}
    events = (fault("25T09:00", "down")
              + buy("25T09:01", "ok", "2000.00", CREDIT_CARD)            # at the limit
              + buy("25T09:02", "over", "2000.01", CREDIT_CARD)          # above it: 91
              + buy("25T09:03", "pin", "10.00", CREDIT_CARD, "654321")   # a PIN: 91
              + buy("25T09:04", "debit-pin", "1500.00")                  # needs a PIN: 91
              + buy("25T09:05", "small", "20.00")                        # no PIN needed
              + withdraw("25T09:06", "atm", "20.00"))                    # never: 91
    out = run(events, params=params)
    codes = {k: v["response_code"] for k, v in out["payments"].items()}
    assert codes == {"ok": "00", "over": "91", "pin": "91", "debit-pin": "91", "small": "00",
                     "atm": "91"}
    assert out["payments"]["ok"]["stand_in"] is True
    # nothing booked at the issuer yet: the advices wait for it
    assert out["balances"]["customers"]["carol"] == "0.00"
    assert out["balances"]["customers"]["alice"] == "1000.00"
    assert all(out["checks"].values())


def test_stand_in_is_booked_when_the_issuer_is_back_even_beyond_the_limit() -> None:
    """The issuer must accept a stand-in advice: what the account cannot bear becomes the
    cardholder's debt (cardholder_receivable); every book balances and money is conserved
    counting that credit."""
    events = (fault("25T09:00", "down") + buy("25T09:05", "p1", "400.00")
              + buy("25T09:06", "p2", "400.00") + fault("25T10:00", "up"))
    runner = Runner(parse_scenario(world(events, alice="500.00", until="2026-11-26T12:00",
                                         params=STANDIN), "f.yaml"), store="memory:")
    out = runner.run()
    assert out["balances"]["customers"]["alice"] == "0.00"
    assert runner.balance_fen("ICBC", "cardholder_receivable") == 30_000
    assert [out["payments"][p]["status"] for p in ("p1", "p2")] == ["settled", "settled"]
    assert out["balances"]["customers"]["cafe"] == "795.20"
    assert all(out["checks"].values())


def test_stand_in_pending_at_the_cutoff_is_cleared_and_booked_later() -> None:
    events = (fault("25T20:00", "down") + buy("25T21:00", "p1", "100.00")
              + fault("26T08:00", "up"))
    before = run(events, until="2026-11-26T07:00", params=STANDIN)
    assert before["payments"]["p1"]["status"] == "cleared"
    assert before["balances"]["customers"]["alice"] == "1000.00"
    assert all(before["checks"].values())
    after = run(events, until="2026-11-26T12:00", params=STANDIN)
    assert after["payments"]["p1"]["status"] == "settled"
    assert after["balances"]["customers"]["alice"] == "900.00"
    assert after["balances"]["customers"]["cafe"] == "99.40"
    assert all(after["checks"].values())


def test_a_stand_in_reversed_before_the_issuer_is_back_never_reaches_it() -> None:
    events = (fault("25T09:00", "down") + buy("25T09:05", "p1", "100.00")
              + ev("25T09:06", "do: reversal, id: x1, target: p1")
              + fault("25T10:00", "up"))
    out = run(events, params=STANDIN)
    assert out["payments"]["p1"]["status"] == "reversed"
    assert out["actions"][-1]["advices_delivered"] == 0
    assert out["balances"]["customers"]["alice"] == "1000.00"
    assert all(out["checks"].values())


# ------------------------------------------------------------------------- replay


def test_replay_rebuilds_the_same_state(tmp_path: Path) -> None:
    url = str(tmp_path / "faults.db")
    scenario = load_scenario(ROOT / "scenarios" / "cards-timeout.yaml")
    out = run_scenario(scenario, store=url)
    assert replay(url, world_systems()).state_hash().hex() == \
        out["log"]["state_hash"]


def test_a_bad_mode_is_refused_before_it_is_logged() -> None:
    runner = Runner(parse_scenario(world(""), "f.yaml"), store="memory:")
    runner.build_world()
    entries = runner.engine.applied_seq
    with pytest.raises(ValueError, match="mode"):
        runner.switch.fault("ICBC", "sideways")
    assert runner.engine.applied_seq == entries


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("body", "marker", "words"), [
    ("participant: BOC, host: issuer, mode: down", "BOC", "no participant named 'BOC'"),
    ("participant: ICBC, host: issuer, mode: sideways", "sideways", "mode must be one of"),
    ("participant: ICBC, host: acquirer, mode: down", "acquirer", "host must be issuer"),
])
def test_fault_events_are_validated_with_the_line(body: str, marker: str, words: str) -> None:
    text = world(withdraw("25T09:00", "w0", "1.00") + ev("25T09:10", f"do: fault, {body}"))
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "f.yaml")
    (problem,) = info.value.problems
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "do: fault" in t)
    assert (problem.file, problem.line) == ("f.yaml", line)
    assert words in problem.message
    assert marker in text.splitlines()[line - 1]


# ------------------------------------------------------------------------- property

OPS = st.lists(st.tuples(
    st.sampled_from(["down", "slow", "up", "withdraw", "withdraw", "buy", "buy",
                     "reverse", "refund"]),
    st.integers(1, 400)), min_size=3, max_size=16)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.booleans())
def test_no_fault_leaves_a_cardholder_debited_without_the_goods_or_the_cash(
        ops: list[tuple[str, int]], standin: bool) -> None:
    """Whatever the faults and their order, the cardholder has paid exactly the approved,
    unreversed purchases and withdrawals less the approved refunds (declined ones, 68s and
    91s included, cost nothing), the ATM paid out exactly the approved withdrawals, and
    every check holds."""
    events = ""
    kinds: dict[str, str] = {}
    amounts: dict[str, int] = {}
    t = 0
    for op, n in ops:
        t += 1
        at = f"25T{9 + t // 60:02d}:{t % 60:02d}"
        amount = f"{n}.00"
        pid = f"e{t}"
        if op in ("down", "slow", "up"):
            events += fault(at, op)
        elif op == "withdraw":
            events += withdraw(at, pid, amount)
        elif op == "buy":
            events += buy(at, pid, amount)
        else:
            targets = [k for k, v in kinds.items() if v in ("withdraw", "buy")]
            if not targets:
                continue
            target = targets[n % len(targets)]
            if op == "reverse":
                events += ev(at, f"do: reversal, id: {pid}, target: {target}")
                continue
            if kinds[target] != "buy":
                continue
            n = min(n, amounts[target])
            events += ev(at, f'do: pos_refund, id: {pid}, target: {target}, '
                             f'amount: "{n}.00"')
        kinds[pid], amounts[pid] = op, n
    runner = Runner(parse_scenario(world(events, alice="2000.00", params={
        "cards.standin": "on" if standin else "off", "cards.daily_withdrawal_limit":
        "100000.00"}), "p.yaml"), store="memory:")
    out = runner.run()
    paid = cash = 0
    for pid, rec in out["payments"].items():
        if rec["status"] not in ("approved", "cleared", "settled"):
            continue
        fen = amounts[pid] * 100
        paid += -fen if kinds[pid] == "refund" else fen
        cash += fen if kinds[pid] == "withdraw" else 0
    owed = runner.balance_fen("ICBC", "cardholder_receivable") if runner.registry.has(
        "ICBC:cardholder_receivable") else 0
    pending = sum(tx.amount_fen for tx in runner.switch.txns.values()
                  if tx.advice == "pending")
    assert 200_000 - runner.balance_fen("ICBC", "customer:alice") + owed + pending == paid
    assert 20_000_000 - runner.balance_fen("CCB", "atm_cash:ATM00001") == cash
    assert all(out["checks"].values()), out["checks"]
