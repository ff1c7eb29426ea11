"""One world: every built-in scenario, stopped at any command and resumed from its store,
ends exactly where an uninterrupted run does, and its log replays to that state."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.engine import replay
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import load_scenario, parse_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


class _Crash(Exception):
    """The process dies here."""


def _run_until_crash(path: Path, store: str, stop_at: int, durable: bool,
                     commit_every: int) -> None:
    """Run ``path`` on ``store`` and die at the ``stop_at``-th log append: before it is
    durable (its commands are lost, never acknowledged) or just after (durable, applied
    or not). With ``commit_every`` > 1 the commands of a group are applied before their
    append: a crash before it loses them all."""
    runner = Runner(load_scenario(path), store=store, commit_every=commit_every)
    log = runner.engine.log
    append = log.append
    count = 0

    def dying_append(commands: Any) -> Any:
        nonlocal count
        count += 1
        if count == stop_at and not durable:
            raise _Crash
        entries = append(commands)
        if count == stop_at:
            raise _Crash
        return entries

    log.append = dying_append  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        runner.run()
    log.close()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_a_run_stopped_at_any_command_resumes_to_the_same_outcome(
        path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one card key for every store here (else each makes its own, and so its own tokens
    # and state hash: cards/vault.py)
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)
    whole = run_scenario(load_scenario(path), store=str(tmp_path / "whole.db"))
    entries = whole["log"]["entries"]
    rng = random.Random(path.stem)
    for k in range(4):
        commit_every = 1 if k < 2 else 3
        appends = entries // commit_every
        if appends < 1:
            continue
        stop_at = rng.randint(1, appends)
        store = str(tmp_path / f"stopped{k}.db")
        _run_until_crash(path, store, stop_at, durable=k % 2 == 0, commit_every=commit_every)
        resumed = run_scenario(load_scenario(path), store=store)
        assert resumed == whole, f"stopped at append {stop_at}"
        assert replay(store, world_systems()).state_hash().hex() == \
            whole["log"]["state_hash"]


@pytest.mark.parametrize("name", ["cards", "cards-disputes", "holiday-cards", "returns"])
def test_log_verify_reproduces_the_state_hash_of_the_run(name: str, tmp_path: Path) -> None:
    store = str(tmp_path / "w.db")
    out = run_scenario(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), store=store)
    result = CliRunner().invoke(app, ["log", "verify", store])
    assert result.exit_code == 0, result.output
    assert out["log"]["state_hash"] in result.output


def test_log_verify_fails_when_the_log_does_not_rebuild_the_recorded_world(
        tmp_path: Path) -> None:
    """A snapshot that disagrees with the log (a release that replays differently, or a
    tampered snapshot) is an error naming both hashes."""
    from qingsuan.clock import VirtualClock
    from qingsuan.world import World

    store = str(tmp_path / "w.db")
    run_scenario(load_scenario(ROOT / "scenarios" / "intrabank.yaml"), store=store)
    world = World.open(store, VirtualClock(0))
    alice = world.engine.registry.id("ICBC", "customer:alice")
    other = world.engine.registry.id("ICBC", "other_assets")
    from qingsuan.ledger import Transfer
    ledger = world.engine.ledger
    assert ledger.create_transfer(Transfer(10**9, other, alice, 1), ledger.last_timestamp_us).done
    world.engine.snapshot()  # a recorded state the log does not lead to
    world.close()
    result = CliRunner().invoke(app, ["log", "verify", store])
    assert result.exit_code == 1
    assert "replaying the log" in result.output and "recorded" in result.output


def test_the_banks_decide_while_applying_so_a_second_world_agrees(tmp_path: Path) -> None:
    """The same scenario run twice, on two stores, reaches the same state hash: nothing the
    runner keeps outside the log changes the outcome."""
    path = ROOT / "scenarios" / "channels.yaml"
    one = run_scenario(load_scenario(path), store=str(tmp_path / "a.db"))
    two = run_scenario(load_scenario(path), store=str(tmp_path / "b.db"))
    assert one == two


def test_held_payment_waits_for_the_end_of_maintenance(tmp_path: Path) -> None:
    """HVPS closed for maintenance (hvps.closed): the bank holds a counter payment above the
    BEPS limit until HVPS is back (not rejected at once), then sends and settles it."""
    text = """
name: maintenance
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "10000000.00"}
  - {name: CCB, code: "105100000017", settlement_balance: "10000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "200000.00"}
  - {id: bob, bank: CCB, account: "6217000010000000029", balance: "0.00"}
events:
  - {at: 2026-11-25T09:00, do: set_param, name: hvps.closed, value: "on"}
  - {at: 2026-11-25T10:00, do: transfer, id: t1, from: alice, to: bob, amount: "100000.00",
     channel: counter}
  - {at: 2026-11-25T11:00, do: set_param, name: hvps.closed, value: "off"}
"""
    out = run_scenario(parse_scenario(text, "m.yaml"), store=str(tmp_path / "m.db"))
    t1 = out["payments"]["t1"]
    assert t1["held_until"] == "when HVPS reopens"
    assert [h["status"] for h in t1["history"]] == ["accepted", "settled", "credited"]
    assert t1["history"][1]["at"].startswith("2026-11-25T11:00")
    assert out["balances"]["customers"] == {"alice": "100000.00", "bob": "100000.00"}
    assert all(out["checks"].values())


def _pacs008(path: Path, tx_id: str, amount_fen: int, creditor_account: str,
             debtor_account: str = "6222020200000000030") -> Path:
    import datetime as dt

    from qingsuan.clock import BEIJING
    from qingsuan.messages import CreditTransfer, build_pacs008

    path.write_bytes(build_pacs008(CreditTransfer(
        msg_id=f"M{tx_id}", created_at=dt.datetime(2026, 11, 26, 10, 0, tzinfo=BEIJING),
        end_to_end_id=f"E{tx_id}", tx_id=tx_id, system="HVPS", kind="customer",
        priority="normal", amount_fen=amount_fen, settlement_date=dt.date(2026, 11, 26),
        debtor_agent_code="102100099996", creditor_agent_code="105100000017",
        debtor_name="Wuhan Steel Co", debtor_account=debtor_account,
        creditor_name="Shenzhen Build Co", creditor_account=creditor_account)))
    return path


def _balances(store: str) -> dict[str, int]:
    from qingsuan.clock import VirtualClock
    from qingsuan.world import World

    world = World.open(store, VirtualClock(0))
    try:
        reg, ledger = world.engine.registry, world.engine.ledger
        return {name: ledger.balance(reg.id(book, f"customer:{name}")).posted_fen
                for book, name in (("ICBC", "steelco"), ("CCB", "buildco"))}
    finally:
        world.close()


def test_a_pacs008_from_outside_debits_the_debtor_and_credits_the_creditor(
        tmp_path: Path) -> None:
    from qingsuan.messages import parse_pacs002

    store = str(tmp_path / "w.db")
    run_scenario(load_scenario(ROOT / "scenarios" / "hvps-queue.yaml"), store=store)
    before = _balances(store)
    xml = _pacs008(tmp_path / "p8.xml", "T1", 12_345_600, "6217000010000000045")
    sent = CliRunner().invoke(app, ["cnaps", "send", str(xml), "--as", "ICBC", "--store",
                                    store, "--at", "2026-11-26T10:00"])
    assert sent.exit_code == 0, sent.output
    assert [(r.original_tx_id, r.status) for r in parse_pacs002(sent.stdout.encode())] == [
        ("T1", "ACSC")]
    after = _balances(store)
    assert after["steelco"] == before["steelco"] - 12_345_600
    assert after["buildco"] == before["buildco"] + 12_345_600
    verify = CliRunner().invoke(app, ["log", "verify", store])
    assert verify.exit_code == 0, verify.output


def test_a_pacs008_to_an_unknown_account_comes_back_and_one_from_a_stranger_is_refused(
        tmp_path: Path) -> None:
    from qingsuan.messages import parse_pacs002

    store = str(tmp_path / "w.db")
    run_scenario(load_scenario(ROOT / "scenarios" / "hvps-queue.yaml"), store=store)
    before = _balances(store)
    xml = _pacs008(tmp_path / "p8.xml", "T2", 50_000, "6217009999999999999")
    sent = CliRunner().invoke(app, ["cnaps", "send", str(xml), "--as", "ICBC", "--store",
                                    store, "--at", "2026-11-26T10:00"])
    assert sent.exit_code == 0, sent.output
    # HVPS settled it; CCB has no such account and returns it at once (退汇)
    assert [r.status for r in parse_pacs002(sent.stdout.encode())] == ["ACSC"]
    assert _balances(store) == before  # every fen back with the payer
    stranger = _pacs008(tmp_path / "p8b.xml", "T3", 100, "6217000010000000045",
                        debtor_account="6222029999999999999")
    sent = CliRunner().invoke(app, ["cnaps", "send", str(stranger), "--as", "ICBC",
                                    "--store", store])
    (report,) = parse_pacs002(sent.stdout.encode())
    assert (report.status, report.reason_code) == ("RJCT", "AC01")
    assert _balances(store) == before


def test_a_merchant_at_another_bank_is_paid_through_beps(tmp_path: Path) -> None:
    """Story 2, step 8 across banks: the POS is CCB's, the coffee shop banks with ICBC.
    After the cut-off CCB pays the shop its takings net of the MDR by a BEPS credit, and
    ICBC credits the shop when it nets (was: a traceback, 'no account CCB:customer:shop')."""
    text = """
name: merchant-elsewhere
start: 2026-11-25T08:00
run_until: 2026-11-26T18:00
params: {cards.fees: "off"}
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB, code: "105100000017", settlement_balance: "1000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "500.00"}
  - {id: shop, bank: ICBC, account: "6222020200000000022", balance: "0.00", name: "Shop",
     merchant: {mid: "105290058120001", mcc: "5814", mdr: "0.0060"}}
cards:
  - {pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}
terminals:
  - {id: "POS00001", kind: pos, bank: CCB, merchant: shop}
events:
  - {at: 2026-11-25T12:30, do: pos_purchase, id: p1, card: "6222020200000000014",
     terminal: POS00001, amount: "100.00", pin: "123456"}
"""
    store = str(tmp_path / "m.db")
    out = run_scenario(parse_scenario(text, "m.yaml"), store=store)
    assert out["payments"]["p1"]["status"] == "settled"
    payout = out["payments"]["payout:2026-11-25:CCB:shop"]
    assert payout["system"] == "BEPS" and payout["status"] in ("credited", "settled")
    assert out["balances"]["customers"] == {"alice": "400.00", "shop": "99.40"}
    assert all(out["checks"].values()), out["checks"]
    assert replay(store, world_systems()).state_hash().hex() == out["log"]["state_hash"]


def _two_banks(events: str, *, alice: str = "200000.00", params: str = "{}",
               icbc: str = "") -> str:
    return f"""
name: t
start: 2026-11-25T08:00
run_until: 2026-11-26T18:00
params: {params}
participants:
  - {{name: ICBC, code: "102100099996", settlement_balance: "10000000.00"{icbc}}}
  - {{name: CCB, code: "105100000017", settlement_balance: "10000000.00"}}
customers:
  - {{id: alice, bank: ICBC, account: "6222020200000000014", balance: "{alice}"}}
  - {{id: bob, bank: CCB, account: "6217000010000000029", balance: "0.00", name: "Bob"}}
events:
{events}"""


@pytest.mark.parametrize(("amount", "channel", "urgent", "system", "code"), [
    ("100000.00", "counter", "false", "HVPS", "AC01"),
    ("100.00", "counter", "false", "BEPS", "AC01"),
    ("100.00", "mobile", "true", "IBPS", "AC01"),
])
def test_a_transfer_to_an_account_that_does_not_exist_comes_back_every_fen(
        amount: str, channel: str, urgent: str, system: str, code: str,
        tmp_path: Path) -> None:
    text = _two_banks(
        f'  - {{at: 2026-11-25T10:00, do: transfer, id: t1, from: alice, amount: "{amount}",'
        f' channel: {channel}, urgent: {urgent},'
        ' to: {bank: CCB, account: "6217000099999999999", name: "Nobody"}}')
    out = run_scenario(parse_scenario(text, "t.yaml"), store=str(tmp_path / "t.db"))
    t1 = out["payments"]["t1"]
    assert t1["system"] == system
    assert t1["reason"]["code"] == code
    assert t1["status"] in ("returned", "rejected")
    assert out["balances"]["customers"]["alice"] == "200000.00"
    assert all(out["checks"].values()), out["checks"]


def test_a_transfer_to_an_unlisted_account_that_exists_is_credited(tmp_path: Path) -> None:
    text = _two_banks(
        '  - {at: 2026-11-25T10:00, do: transfer, id: t1, from: alice, amount: "100.00",'
        ' channel: counter, to: {bank: CCB, account: "6217000010000000029", name: "Bob"}}')
    out = run_scenario(parse_scenario(text, "t.yaml"), store=str(tmp_path / "t.db"))
    assert out["payments"]["t1"]["status"] in ("credited", "settled")
    assert out["balances"]["customers"] == {"alice": "199900.00", "bob": "100.00"}


def test_a_beps_payment_queued_past_its_cap_can_be_cancelled(tmp_path: Path) -> None:
    text = _two_banks(
        '  - {at: 2026-11-25T10:01, do: beps_payment, id: b1, from: alice, to: bob,'
        ' amount: "100.00"}\n'
        '  - {at: 2026-11-25T10:02, do: cancel, target: b1}', icbc=', beps_cap: "50.00"')
    out = run_scenario(parse_scenario(text, "t.yaml"), store=str(tmp_path / "t.db"))
    b1 = out["payments"]["b1"]
    assert [h["status"] for h in b1["history"]] == ["accepted", "queued", "cancelled"]
    assert out["actions"][-1]["do"] == "cancel" and out["actions"][-1]["ok"] is True
    assert out["balances"]["customers"] == {"alice": "200000.00", "bob": "0.00"}
    assert all(out["checks"].values()), out["checks"]


def test_a_return_hvps_refuses_stays_the_payers_and_goes_out_at_the_next_opening(
        tmp_path: Path) -> None:
    """A payment settled in the clearing window to an account that does not exist: the
    receiving bank's return is refused (DT01, window); the money stays in transit as the
    payer's (was: booked to the bank's equity) and the return goes out at 20:30."""
    text = """
name: return-in-clearing-window
start: 2026-11-25T08:00
run_until: 2026-11-26T10:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: BOC,  code: "104100000004", settlement_balance: "0.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "5000000.00"}
  - {id: dora,  bank: BOC,  account: "6216610000000000069", balance: "0.00"}
events:
  - {at: 2026-11-25T10:00, do: hvps_payment, id: stuck, from: alice,
     to: {bank: BOC, account: "6216619999999999990", name: "Nobody"}, amount: "3000000.00"}
  - {at: 2026-11-25T17:20, do: pledge, participant: ICBC, value: "5000000.00"}
"""
    seen: list[dict[str, bool]] = []

    def check(event: Any, postings: Any, runner: Runner) -> None:
        seen.append({"money": runner.money_conserved(), "suspense": runner.suspense_explained()})

    out = run_scenario(parse_scenario(text, "w.yaml"), store=str(tmp_path / "w.db"),
                       on_step=check)
    assert all(all(s.values()) for s in seen), seen
    assert out["payments"]["stuck/return"]["status"] == "rejected"
    assert out["payments"]["stuck/return2"]["status"] == "settled"
    assert out["payments"]["stuck/return2"]["history"][0]["at"].startswith(
        "2026-11-25T20:30")
    assert out["payments"]["stuck"]["status"] == "returned"
    assert out["balances"]["customers"]["alice"] == "5000000.00"
    assert all(out["checks"].values())


def test_a_merchant_payout_refused_during_beps_maintenance_is_sent_again(
        tmp_path: Path) -> None:
    text = """
name: payout-while-beps-closed
start: 2026-11-25T08:00
run_until: 2026-11-27T18:00
params: {cards.fees: "off"}
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "300000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "50000.00"}
  - {name: BOC,  code: "104100000004", settlement_balance: "10000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "200000.00"}
  - {id: dora,  bank: BOC,  account: "6216610000000000069", balance: "5000.00", name: "Dora",
     merchant: {mid: "104290058120001", mcc: "5814", mdr: "0.0060"}}
cards:
  - {pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}
terminals:
  - {id: "POS00001", kind: pos, bank: CCB, merchant: dora}
events:
  - {at: 2026-11-25T12:00, do: pos_purchase, id: p1, card: "6222020200000000014",
     terminal: POS00001, amount: "1000.00", pin: "123456"}
  - {at: 2026-11-25T22:00, do: set_param, name: beps.closed, value: true}
  - {at: 2026-11-26T02:00, do: set_param, name: beps.closed, value: false}
"""
    out = run_scenario(parse_scenario(text, "p.yaml"), store=str(tmp_path / "p.db"))
    first = out["payments"]["payout:2026-11-25:CCB:dora"]
    assert first["status"] == "rejected" and first["reason"]["code"] == "DT01"
    again = out["payments"]["payout:2026-11-25:CCB:dora/2"]
    assert again["history"][0]["at"].startswith("2026-11-26T02:00")
    assert again["status"] == "settled"
    assert out["balances"]["customers"]["dora"] == "5994.00"  # 1000.00 less the 6.00 MDR
    assert all(out["checks"].values())


def test_the_channel_fee_is_given_back_when_the_bank_refuses_the_payment(
        tmp_path: Path) -> None:
    text = _two_banks(
        '  - {at: 2026-11-25T10:00, do: transfer, id: t1, from: alice, to: bob,'
        ' amount: "300000.00", channel: counter}', params='{banks.channel_fee: "2.00"}')
    out = run_scenario(parse_scenario(text, "t.yaml"), store=str(tmp_path / "t.db"))
    assert out["payments"]["t1"]["status"] == "rejected"
    assert out["payments"]["t1"]["reason"]["code"] == "AM04"
    assert out["balances"]["customers"]["alice"] == "200000.00"
    assert all(out["checks"].values())


def test_a_long_run_reports_its_progress() -> None:
    """The runner tells its progress hook (events done, events in all) as it goes and at
    the end; the CLI draws it on a terminal's stderr for long runs."""
    calls: list[tuple[int, int]] = []
    sc = load_scenario(ROOT / "scenarios" / "returns.yaml")
    Runner(sc, store="memory:", on_progress=lambda d, t: calls.append((d, t))).run()
    total = len(sc.events)
    assert calls and calls[-1] == (total, total)
    assert all(d <= t for d, t in calls)
