"""HVPS rules, each asserted on settlement balances, mirrors and statuses."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.hvps import HvpsStatus, Priority
from qingsuan.cnaps.participants import ParticipantKind, ParticipantStatus
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine, replay
from qingsuan.ledger import Transfer
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario

BANKS = {"ICBC": "102100099996", "CCB": "105100000017", "BOC": "104100000004"}


class World:
    """An engine with CNAPS and three funded banks, on a virtual clock (a Wednesday)."""

    def __init__(self, url: str = "memory:", balances: dict[str, int] | None = None,
                 params: dict[str, object] | None = None) -> None:
        self.clock = VirtualClock(parse_time("2026-11-25T09:00"))
        self.cnaps = Cnaps()
        self.engine = Engine.open(url, self.clock, systems=[self.cnaps])
        if params:
            self.engine.set_params(params)
        for name, code in BANKS.items():
            assert self.cnaps.join(name, code).ok
        self.next_id = 1
        for name, amount in (balances or {}).items():
            self.fund(name, amount)

    def fund(self, name: str, amount: int) -> None:
        reg = self.engine.registry
        self.engine.submit_transfers([Transfer(self.next_id, reg.id("PBOC", "issued"),
                                               reg.id("PBOC", f"settlement:{name}"), amount)])
        self.next_id += 1
        self.engine.submit_transfers([Transfer(self.next_id, reg.id(name, "reserve_at_pboc"),
                                               reg.id(name, "hvps_incoming"), amount)])
        self.next_id += 1

    def at(self, text: str) -> None:
        self.clock.advance_to(parse_time(text))

    def balance(self, name: str) -> int:
        return self.cnaps.hvps._balance(name)

    def mirror(self, name: str) -> int:
        reg = self.engine.registry
        return self.engine.ledger.balance(reg.id(name, "reserve_at_pboc")).posted_fen

    def status(self, ref: str) -> HvpsStatus:
        return self.cnaps.hvps.payments[ref].status

    def check(self) -> None:
        self.engine.ledger.check_invariants()
        for name in BANKS:
            assert self.balance(name) == self.mirror(name), name


def test_settles_at_once_when_covered_and_mirrors_move() -> None:
    w = World(balances={"ICBC": 1000, "CCB": 0})
    out = w.cnaps.submit_hvps("p1", "ICBC", "CCB", 600, kind="institution")
    assert out.ok and out.status == "settled"
    assert (w.balance("ICBC"), w.balance("CCB")) == (400, 600)
    assert (w.mirror("ICBC"), w.mirror("CCB")) == (400, 600)
    w.check()


def test_queues_when_short_and_incoming_credit_releases() -> None:
    w = World(balances={"ICBC": 100, "CCB": 0, "BOC": 5000})
    assert w.cnaps.submit_hvps("big", "ICBC", "CCB", 500).status == "queued"
    assert w.balance("ICBC") == 100  # nothing moved
    w.at("2026-11-25T10:00")
    assert w.cnaps.submit_hvps("in", "BOC", "ICBC", 400).status == "settled"
    assert w.status("big") is HvpsStatus.SETTLED  # released by the incoming credit
    assert (w.balance("ICBC"), w.balance("CCB")) == (0, 500)
    events = [n.event for n in w.cnaps.hvps.notices_for("ICBC") if n.ref == "big"]
    assert events == ["queued", "released", "settled"]
    assert all(n.participant == "CCB" for n in w.cnaps.hvps.notices_for("CCB"))
    w.check()


def test_fifo_within_level_and_bypass_parameter() -> None:
    w = World(balances={"ICBC": 300}, params={"hvps.lsm": "off"})
    assert w.cnaps.submit_hvps("big", "ICBC", "CCB", 500).status == "queued"
    # FIFO: the small one waits behind the big one at the same level
    assert w.cnaps.submit_hvps("small", "ICBC", "CCB", 100).status == "queued"
    # a more urgent level goes first
    assert w.cnaps.submit_hvps("urgent", "ICBC", "CCB", 100, Priority.URGENT).status == "settled"
    assert w.balance("ICBC") == 200
    w2 = World(balances={"ICBC": 300}, params={"hvps.lsm": "off", "hvps.bypass_fifo": "on"})
    w2.cnaps.submit_hvps("big", "ICBC", "CCB", 500)
    assert w2.cnaps.submit_hvps("small", "ICBC", "CCB", 100).status == "settled"


def test_queue_notice_says_why_a_payment_waits() -> None:
    """The sender is told the real reason: not enough liquidity, or FIFO behind a payment
    queued before it at the same (or a more urgent) level although the funds are there."""
    w = World(balances={"ICBC": 300}, params={"hvps.lsm": "off"})
    w.cnaps.submit_hvps("big", "ICBC", "CCB", 500)
    w.cnaps.submit_hvps("small", "ICBC", "CCB", 100)
    why = {n.ref: n.detail for n in w.cnaps.hvps.notices_for("ICBC") if n.event == "queued"}
    assert why["big"].startswith("not enough in ICBC's settlement account")
    assert "3.00 available" in why["big"] and "5.00" in why["big"]
    assert why["small"].startswith("FIFO: it waits behind big (5.00)")
    assert "same level" in why["small"] and "not enough" not in why["small"]


def test_cancel_only_queued_and_only_by_sender() -> None:
    w = World(balances={"ICBC": 100}, params={"hvps.lsm": "off"})
    w.cnaps.submit_hvps("ok", "ICBC", "CCB", 100)
    w.cnaps.submit_hvps("wait", "ICBC", "CCB", 100)
    refused = w.cnaps.cancel("ok", "ICBC")
    assert not refused.ok and refused.reason is not None and "settled" in refused.reason[1]
    not_yours = w.cnaps.cancel("wait", "CCB")
    assert not not_yours.ok and w.status("wait") is HvpsStatus.QUEUED
    assert w.cnaps.cancel("wait", "ICBC").ok
    assert w.status("wait") is HvpsStatus.CANCELLED
    w.fund("ICBC", 1000)  # a cancelled payment never settles later
    w.engine.tick()
    assert w.status("wait") is HvpsStatus.CANCELLED
    assert w.balance("CCB") == 100


def test_reprioritise_moves_a_queued_payment_ahead() -> None:
    w = World(balances={"ICBC": 150}, params={"hvps.lsm": "off"})
    w.cnaps.submit_hvps("a", "ICBC", "CCB", 200)
    w.cnaps.submit_hvps("b", "ICBC", "CCB", 100)
    assert w.status("b") is HvpsStatus.QUEUED
    assert w.cnaps.reprioritise("b", Priority.URGENT, "ICBC").ok
    assert w.status("b") is HvpsStatus.SETTLED  # now ahead of the head, and covered
    assert w.status("a") is HvpsStatus.QUEUED


def test_duplicate_message_never_settles_twice() -> None:
    w = World(balances={"ICBC": 1000})
    assert w.cnaps.submit_hvps("m1", "ICBC", "CCB", 100).ok
    again = w.cnaps.submit_hvps("m1", "ICBC", "CCB", 100)
    assert not again.ok and again.reason is not None and again.reason[0] == "AM05"
    assert w.balance("CCB") == 100


def test_closed_hours_weekend_and_adjusted_workday() -> None:
    w = World(balances={"ICBC": 1000})
    w.at("2026-11-25T18:00")
    out = w.cnaps.submit_hvps("evening", "ICBC", "CCB", 1)
    assert out.status == "rejected" and out.reason is not None and out.reason[0] == "DT01"
    assert "opens 2026-11-25T20:30" in out.reason[1]
    w.at("2026-11-25T20:30")  # the evening session belongs to the next business day
    assert w.cnaps.submit_hvps("night", "ICBC", "CCB", 1).status == "settled"
    w.at("2026-11-28T11:00")  # Saturday
    assert w.cnaps.submit_hvps("sat", "ICBC", "CCB", 1).status == "rejected"
    # 2026-10-10 is a 调休 Saturday (an adjusted workday): HVPS is open
    cn = Cnaps()
    eng = Engine.open("memory:", VirtualClock(parse_time("2026-10-10T11:00")), systems=[cn])
    cn.join("ICBC", BANKS["ICBC"])
    cn.join("CCB", BANKS["CCB"])
    assert cn.submit_hvps("tiaoxiu", "ICBC", "CCB", 1).status == "queued"  # open, no funds
    eng.close()


def test_maintenance_parameter_closes_hvps() -> None:
    """hvps.closed: HVPS itself refuses every new payment (DT01, naming the maintenance);
    nothing moves; once reopened it settles again."""
    w = World(balances={"ICBC": 1000})
    w.engine.set_params({"hvps.closed": "on"})
    out = w.cnaps.submit_hvps("m", "ICBC", "CCB", 1)
    assert out.status == "rejected" and out.reason is not None
    assert out.reason[0] == "DT01" and "maintenance (hvps.closed)" in out.reason[1]
    assert (w.balance("ICBC"), w.balance("CCB")) == (1000, 0)
    w.engine.set_params({"hvps.closed": "off"})
    assert w.cnaps.submit_hvps("n", "ICBC", "CCB", 1).status == "settled"


def test_suspended_participant_may_not_send() -> None:
    w = World(balances={"ICBC": 1000, "CCB": 1000})
    w.cnaps.set_status("ICBC", ParticipantStatus.SUSPENDED)
    out = w.cnaps.submit_hvps("x", "ICBC", "CCB", 1)
    assert out.reason is not None and out.reason[0] == "AG01"
    assert w.cnaps.submit_hvps("y", "CCB", "ICBC", 1).status == "settled"  # may receive


def test_indirect_participant_settles_through_its_direct_participant() -> None:
    w = World(balances={"ICBC": 1000})
    assert w.cnaps.join("ZJRCB", "402331000007", ParticipantKind.INDIRECT_BANK,
                        settles_through="CCB").ok
    assert w.cnaps.submit_hvps("x", "ICBC", "ZJRCB", 300).status == "settled"
    assert w.balance("CCB") == 300
    assert not w.engine.registry.has("PBOC:settlement:ZJRCB")


def test_pledge_financing_drawn_repaid_and_never_above_lendable() -> None:
    w = World(balances={"ICBC": 100})
    w.cnaps.pledge("ICBC", 1000)  # lendable 900 at the 10% haircut
    assert w.cnaps.hvps.available_fen("ICBC") == 1000
    assert w.cnaps.submit_hvps("a", "ICBC", "CCB", 1000).status == "settled"
    line = w.cnaps.hvps.credit["ICBC"]
    assert (line.intraday_fen, w.balance("ICBC")) == (900, 0)
    assert w.cnaps.submit_hvps("b", "ICBC", "CCB", 1).status == "queued"  # credit exhausted
    refused = w.cnaps.release("ICBC", 1000)
    assert not refused.ok  # the collateral backs the credit drawn
    w.cnaps.submit_hvps("in", "CCB", "ICBC", 950)  # incoming funds repay first ...
    assert w.status("b") is HvpsStatus.SETTLED  # ... after releasing the queue
    assert line.intraday_fen == 0
    assert w.balance("ICBC") == 49
    assert w.cnaps.release("ICBC", 1000).ok
    w.check()


def test_end_of_day_returns_queue_and_makes_overnight_credit() -> None:
    w = World(balances={"ICBC": 0, "CCB": 0})
    w.cnaps.pledge("CCB", 2_000_000)
    w.cnaps.submit_hvps("draw", "CCB", "BOC", 1_000_000)
    w.cnaps.submit_hvps("stuck", "ICBC", "BOC", 500)
    w.at("2026-11-25T17:30")
    w.engine.tick()
    assert w.status("stuck") is HvpsStatus.RETURNED
    assert w.cnaps.hvps.payments["stuck"].reason[0] == "AM04"  # type: ignore[index]
    line = w.cnaps.hvps.credit["CCB"]
    assert (line.intraday_fen, line.overnight_fen) == (0, 1_000_000)
    assert line.interest_fen == 63  # 1,000,000 fen x 2.25% / 360, rounded up
    statements = w.cnaps.hvps.statements["CCB"]
    assert statements[-1]["closing_fen"] == 0 and statements[-1]["date"] == "2026-11-25"
    w.check()


def test_clearing_window_settles_by_level_then_amount() -> None:
    w = World(balances={"ICBC": 0}, params={"hvps.lsm": "off"})
    w.cnaps.submit_hvps("n-big", "ICBC", "CCB", 300)
    w.cnaps.submit_hvps("n-small", "ICBC", "CCB", 200)
    w.at("2026-11-25T17:16")
    assert w.cnaps.submit_hvps("late", "ICBC", "CCB", 1).reason[0] == "DT01"  # type: ignore[index]
    w.cnaps.pledge("ICBC", 250)  # funding in the window: 225 lendable
    assert w.status("n-small") is HvpsStatus.SETTLED  # smaller first, FIFO bypassed
    assert w.status("n-big") is HvpsStatus.QUEUED


def test_gridlock_resolved_by_multilateral_offsetting() -> None:
    w = World(balances={"ICBC": 10, "CCB": 10, "BOC": 10}, params={"hvps.lsm_on_queue": "off"})
    for ref, s, r in (("a", "ICBC", "CCB"), ("b", "CCB", "BOC"), ("c", "BOC", "ICBC")):
        assert w.cnaps.submit_hvps(ref, s, r, 1000).status == "queued"
    w.at("2026-11-25T09:10")
    w.engine.tick()  # the periodic attempt
    assert all(w.status(r) is HvpsStatus.SETTLED for r in "abc")
    assert [w.balance(b) for b in BANKS] == [10, 10, 10]
    assert w.cnaps.hvps.metrics["ICBC"].gridlock_value_fen == 1000
    w.check()


def test_replay_and_snapshot_rebuild_hvps_state(tmp_path: Path) -> None:
    url = str(tmp_path / "hvps.db")
    w = World(url, balances={"ICBC": 100, "BOC": 1000})
    w.engine.snapshot_every = 4
    w.cnaps.submit_hvps("q", "ICBC", "CCB", 500)
    w.cnaps.pledge("BOC", 100)
    w.cnaps.submit_hvps("in", "BOC", "ICBC", 450)
    expected = w.engine.state_hash()
    w.engine.close()
    assert replay(url, [Cnaps()]).state_hash() == expected
    cn = Cnaps()
    with Engine.open(url, VirtualClock(0), systems=[cn]) as again:
        assert again.state_hash() == expected
        assert cn.hvps.payments["q"].status is HvpsStatus.SETTLED


ops = st.lists(st.tuples(
    st.sampled_from(["pay", "pay", "pay", "cancel", "pledge", "fund", "tick"]),
    st.sampled_from(list(BANKS)), st.sampled_from(list(BANKS)), st.integers(1, 2000)),
    max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_any_sequence_conserves_money_and_mirrors(seq: list[tuple[str, str, str, int]]) -> None:
    w = World(balances={"ICBC": 500, "CCB": 500, "BOC": 500})
    issued = 1500
    for i, (op, a, b, amount) in enumerate(seq):
        minute = i + 1
        w.at(f"2026-11-25T{9 + minute // 60:02d}:{minute % 60:02d}")
        if op == "pay" and a != b:
            w.cnaps.submit_hvps(f"p{i}", a, b, amount)
        elif op == "cancel":
            queued = [p for p in w.cnaps.hvps.queued(a)]
            if queued:
                assert w.cnaps.cancel(queued[-1].ref, a).ok
        elif op == "pledge":
            w.cnaps.pledge(a, amount)
        elif op == "fund":
            w.fund(a, amount)
            issued += amount
        else:
            w.engine.tick()
        w.check()
        hvps = w.cnaps.hvps
        credit = sum(hvps.credit[n].drawn_fen for n in BANKS)
        assert sum(w.balance(n) for n in BANKS) == issued + credit  # money conserved
        for n in BANKS:
            assert hvps.credit[n].drawn_fen <= hvps.credit[n].lendable_fen
            assert w.balance(n) >= 0
    settled = [p for p in w.cnaps.hvps.payments.values() if p.status is HvpsStatus.SETTLED]
    assert len({p.ref for p in settled}) == len(settled)


def _story(name: str) -> dict[str, Any]:
    path = Path(str(resources.files("qingsuan") / "scenarios" / f"{name}.yaml"))
    return run_scenario(load_scenario(path), store="memory:")


def test_story_6_queue_released_by_incoming_payment() -> None:
    out = _story("hvps-queue")
    big = out["payments"]["big"]
    assert [h["status"] for h in big["history"]] == ["accepted", "queued", "settled", "credited"]
    assert big["history"][2]["at"] == "2026-11-25T10:30:00+08:00"
    assert out["balances"]["customers"] == {"steelco": "6499900.00", "buildco": "5000100.00",
                                            "shipco": "5500000.00"}
    assert out["balances"]["settlement"] == {"ICBC": "499900.00", "CCB": "7000100.00",
                                             "BOC": "6500000.00"}
    assert out["balances"]["mirrors"] == out["balances"]["settlement"]
    assert all(out["checks"].values())


def test_story_6_narration_says_why_each_payment_waits() -> None:
    """The narration says 'big' waits for funds and 'small' waits behind it (FIFO), not
    that ICBC lacks the 100.00."""
    from rich.console import Console

    from qingsuan.sim.narrate import narrator

    console = Console(record=True, width=300)
    path = Path(str(resources.files("qingsuan") / "scenarios" / "hvps-queue.yaml"))
    run_scenario(load_scenario(path), store="memory:", on_step=narrator(console))
    lines = [line for line in console.export_text().splitlines() if "HVPS queues" in line]
    assert len(lines) == 2
    assert "HVPS queues big: not enough in ICBC's settlement account" in lines[0]
    assert "HVPS queues small: FIFO: it waits behind big (5000000.00)" in lines[1]
    assert "not enough" not in lines[1]


def test_story_three_bank_gridlock() -> None:
    out = _story("hvps-gridlock")
    assert {k: v["status"] for k, v in out["payments"].items()} == dict.fromkeys(
        ("icbc-to-ccb", "ccb-to-boc", "boc-to-icbc"), "settled")
    assert out["balances"]["settlement"] == dict.fromkeys(("ICBC", "CCB", "BOC"), "100000.00")
    assert out["hvps"]["CCB"]["gridlock_value_resolved"] == "1000000.00"


def test_story_end_of_day_return() -> None:
    out = _story("hvps-end-of-day")
    p = out["payments"]
    assert p["stuck"]["status"] == "returned" and p["stuck"]["reason"]["code"] == "AM04"
    assert p["stuck"]["history"][-1]["at"] == "2026-11-25T17:30:00+08:00"
    assert p["too-big"]["status"] == "cancelled"
    assert p["late"]["status"] == "rejected" and p["late"]["reason"]["code"] == "DT01"
    assert p["on-credit"]["status"] == "credited"
    # the returned payment's customer has every fen back; the cancelled one's too
    assert out["balances"]["customers"] == {"alice": "5000000.00", "bob": "1500000.00",
                                            "dora": "1500000.00"}
    assert out["hvps"]["CCB"]["credit_overnight"] == "1000000.00"
    assert out["hvps"]["CCB"]["credit_interest"] == "62.50"
    assert all(out["checks"].values())


def test_hvps_scenario_validation_errors() -> None:
    from qingsuan.sim.scenario import ScenarioError, parse_scenario

    text = (
        "name: bad\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T18:00\n"
        "participants:\n  - {name: ICBC, code: \"102100099996\"}\n"
        "  - {name: CCB, code: \"105100000017\"}\n"
        "customers:\n  - {id: a, bank: ICBC, account: \"6222020200000000014\"}\n"
        "events:\n"
        "  - {at: 2026-11-25T09:00, do: hvps_payment, id: p, from: a, to: CCB, amount: \"1\"}\n"
        "  - {at: 2026-11-25T09:00, do: hvps_payment, id: q, from: ICBC, to: CCB, amount: \"1\","
        " priority: fast}\n"
        "  - {at: 2026-11-25T09:01, do: cancel, target: nosuch}\n"
        "  - {at: 2026-11-25T09:02, do: pledge, participant: ABC, value: \"1\"}\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.yaml")
    lines = {p.line: p.message for p in info.value.problems}
    assert set(lines) == {10, 11, 12, 13}
    assert "customer payment" in lines[10]
    assert "priority" in lines[11]
    assert "not the id of an earlier hvps_payment" in lines[12]
    assert "no participant named 'ABC'" in lines[13]
