"""IBPS confirmations answered by a connected participant (docs/NET.md, "Connected
participants"): accepted, the payee is credited; rejected, the payer has its money back;
silent, the item ends AB05 at the deadline and not before; the log replays to the same
state and a restart resumes the waiting item exactly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from qingsuan.clock import format_time, from_datetime
from qingsuan.cnaps.netsys import AWAITING
from qingsuan.engine import replay
from qingsuan.server.http import SandboxClock, SandboxCore
from qingsuan.sim.scenario import load_scenario
from qingsuan.world import world_systems

SANDBOX = load_scenario(Path(str(resources.files("qingsuan") / "scenarios" /
                                 "card-sandbox.yaml")))
ICBC1, CCB1 = "9222020000000010017", "9217000000000010011"
START = from_datetime(dt.datetime(2026, 11, 26, 10, 0))  # a Thursday
TIMEOUT_US = 30_000 * 1000  # ibps.confirm_timeout_ms's default


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def open_core(store: str, resume: bool = False) -> SandboxCore:
    """A new world at START, or (``resume``) the store's, at its last logged time."""
    return SandboxCore(SANDBOX, store,
                       SandboxClock("virtual") if resume else SandboxClock("virtual", START))


@pytest.fixture
def core(tmp_path: Path) -> Iterator[SandboxCore]:
    c = open_core(str(tmp_path / "w.db"))
    try:
        yield c
    finally:
        c.close()


def available(core: SandboxCore, bank: str, customer: str) -> int:
    engine = core.engine
    return engine.ledger.balance(engine.registry.id(bank, f"customer:{customer}")).available_fen


def send(core: SandboxCore, ref: str, amount_fen: int = 123_450) -> str:
    record = core.world.banks.customer_transfer(ref, "IBPS", "normal", "ICBC", "CCB",
                                                amount_fen, ICBC1, CCB1, "Holder CCB 1")
    return record.status


def move_to(core: SandboxCore, at_us: int) -> None:
    core.clock.set_virtual(at_us)
    core.tick_if_due()


def test_without_connection_the_simulated_bank_answers_at_once(core: SandboxCore) -> None:
    assert send(core, "P1") == "credited"
    assert core.cnaps.ibps.items["P1"].status == "netted"


def test_accepted_item_nets_and_the_payee_is_credited(core: SandboxCore) -> None:
    assert core.cnaps.connect("CCB").ok
    payer, payee = available(core, "ICBC", "icbc1"), available(core, "CCB", "ccb1")
    assert send(core, "P1") == "accepted"
    item = core.cnaps.ibps.items["P1"]
    assert item.status == AWAITING
    # the payer's funds are reserved while the receiver decides; nothing reached the payee
    assert available(core, "ICBC", "icbc1") == payer - 123_450
    assert available(core, "CCB", "ccb1") == payee
    notice = core.cnaps.ibps.notices[-1]
    assert notice[1:4] == ("CCB", "P1", "confirm_request")
    assert notice[4] == format_time(START + TIMEOUT_US)
    # another participant cannot answer: to it the item does not exist
    assert core.cnaps.ibps_confirm("P1", "ABC", True).status == "unknown"
    assert item.status == AWAITING
    assert core.cnaps.ibps_confirm("P1", "CCB", True).status == "netted"
    assert core.world.banks.payments["P1"].status == "credited"
    assert available(core, "CCB", "ccb1") == payee + 123_450
    assert available(core, "ICBC", "icbc1") == payer - 123_450
    # answered once: a second answer is refused and changes nothing
    again = core.cnaps.ibps_confirm("P1", "CCB", False, "AC04", "closed")
    assert not again.ok and again.status == "netted"


def test_rejected_item_gives_the_payer_its_money_back(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    payer = available(core, "ICBC", "icbc1")
    send(core, "P1")
    out = core.cnaps.ibps_confirm("P1", "CCB", False, "AC04", "the account is closed")
    assert out.status == "rejected" and out.reason is not None and out.reason[0] == "AC04"
    record = core.world.banks.payments["P1"]
    assert record.status == "rejected" and record.reason is not None
    assert record.reason["code"] == "AC04"
    assert available(core, "ICBC", "icbc1") == payer
    assert core.cnaps.ibps.positions["ICBC"] == 0


def test_a_reject_code_outside_the_list_is_refused_unlogged(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    send(core, "P1")
    seq = core.engine.log.last_seq
    out = core.cnaps.ibps_confirm("P1", "CCB", False, "AM05", "no")
    assert not out.ok and out.status == "refused"
    assert core.engine.log.last_seq == seq
    assert core.cnaps.ibps.items["P1"].status == AWAITING


def test_silence_rejects_ab05_at_the_deadline_not_before(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    payer = available(core, "ICBC", "icbc1")
    send(core, "P1")
    deadline = START + TIMEOUT_US
    # the world's wake-up rule has the deadline: the server ticks exactly then
    assert core.world.next_due_us() == deadline
    move_to(core, deadline - 1)
    assert core.cnaps.ibps.items["P1"].status == AWAITING
    assert core.world.banks.payments["P1"].status == "accepted"
    move_to(core, deadline)
    item = core.cnaps.ibps.items["P1"]
    assert item.status == "rejected" and item.reason is not None
    assert item.reason[0] == "AB05"
    assert core.world.banks.payments["P1"].status == "rejected"
    assert available(core, "ICBC", "icbc1") == payer
    assert core.cnaps.ibps.notices[-1][0] == deadline
    # a late answer is refused: the item stays rejected
    late = core.cnaps.ibps_confirm("P1", "CCB", True)
    assert not late.ok and late.status == "rejected"


def test_the_timeout_is_the_ibps_parameter(core: SandboxCore) -> None:
    core.engine.set_params({"ibps.confirm_timeout_ms": "5000"})
    core.cnaps.connect("CCB")
    send(core, "P1")
    assert core.world.next_due_us() == START + 5_000_000


def test_waiting_items_hold_the_senders_cap(core: SandboxCore) -> None:
    core.cnaps.set_cap("IBPS", "ICBC", 200_000)
    core.cnaps.connect("CCB")
    send(core, "P1", 150_000)
    send(core, "P2", 100_000)  # 150,000 held + 100,000 > the cap of 200,000
    item = core.cnaps.ibps.items["P2"]
    assert item.status == "rejected" and item.reason is not None and item.reason[0] == "AM14"
    assert core.cnaps.ibps_confirm("P1", "CCB", True).status == "netted"
    assert core.cnaps.ibps.positions["ICBC"] == -150_000


def test_disconnected_the_simulated_bank_answers_again(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    send(core, "P1")
    assert core.cnaps.connect("CCB", False).ok
    assert send(core, "P2") == "credited"
    # what waited still waits for CCB's answer
    assert core.cnaps.ibps.items["P1"].status == AWAITING
    assert not core.cnaps.connect("NOBODY").ok


def test_replay_and_restart_rebuild_the_waiting_item(tmp_path: Path) -> None:
    store = str(tmp_path / "w.db")
    c = open_core(store)
    c.cnaps.connect("CCB")
    send(c, "P1")
    send(c, "P2")
    c.cnaps.ibps_confirm("P2", "CCB", True)
    move_to(c, START + 1_000_000)
    send(c, "P3")
    c.engine.snapshot()
    state = c.engine.state_hash()
    c.close()
    assert replay(store, world_systems()).state_hash() == state
    resumed = open_core(store, resume=True)
    try:
        assert resumed.engine.state_hash() == state
        ibps = resumed.cnaps.ibps
        assert ibps.items["P1"].status == AWAITING and ibps.items["P3"].status == AWAITING
        assert "CCB" in resumed.cnaps.connected
        assert resumed.world.next_due_us() == START + TIMEOUT_US
        move_to(resumed, START + TIMEOUT_US)
        assert ibps.items["P1"].status == "rejected"
        assert ibps.items["P3"].status == AWAITING
        assert resumed.cnaps.ibps_confirm("P3", "CCB", True).status == "netted"
        assert resumed.world.banks.payments["P3"].status == "credited"
    finally:
        resumed.close()
