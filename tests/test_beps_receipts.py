"""BEPS debit receipts (回执) given by a connected payer's bank (docs/NET.md, "Connected
participants"): the debit waits for the receipt; accepted, it nets and the payer is
debited; refused, it ends with the bank's code and nothing moves; silent, it ends AB06 at
``beps.receipt_timeout_minutes`` and not before; not connected, the simulated bank answers
at once as before; the log replays to the same state and a restart resumes the wait."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_net_confirm
from test_net_confirm import CCB1, ICBC1, START, available, open_core

from qingsuan.clock import US_PER_MINUTE, format_time
from qingsuan.cnaps.netsys import AWAITING, RECEIPT_REJECT_CODES
from qingsuan.engine import replay
from qingsuan.server.http import SandboxCore
from qingsuan.sim.scenario_model import Event
from qingsuan.world import world_systems

DEADLINE = START + 1440 * US_PER_MINUTE  # beps.receipt_timeout_minutes's default

# the IBPS confirmations' world (the card sandbox at START, its card key): the same fixtures
_card_key = pytest.fixture(autouse=True)(test_net_confirm._card_key.__wrapped__)  # type: ignore[attr-defined]
core = pytest.fixture(test_net_confirm.core.__wrapped__)  # type: ignore[attr-defined]


def collect(core: SandboxCore, ref: str, amount_fen: int = 32_150,
            kind: str = "ordinary_debit") -> str:
    """ICBC's customer (a utility, say) collects from CCB's customer by BEPS debit: the
    payer's bank, CCB, gives the receipt. Returns the payment's status at the banks."""
    fields = {"id": ref, "system": "BEPS", "kind": kind, "amount_fen": amount_fen,
              "payer": ["customer", "CCB", CCB1, "ccb1"],
              "payee": ["customer", "ICBC", ICBC1, "icbc1"], "payee_name": "Holder ICBC 1"}
    core.world.submit(Event(core.engine.now_us, "beps_payment", 0, 0, fields), fields)
    return core.world.banks.payments[ref].status


def move_to(core: SandboxCore, at_us: int) -> None:
    core.clock.set_virtual(at_us)
    core.tick_if_due()


def test_not_connected_the_simulated_bank_answers_at_once(core: SandboxCore) -> None:
    payer = available(core, "CCB", "ccb1")
    core.cnaps.connect("ICBC")  # the payee's bank connected: it gives no receipt
    assert collect(core, "D1") == "credited"
    assert core.cnaps.beps.items["D1"].status == "netted"
    assert available(core, "CCB", "ccb1") == payer - 32_150
    assert not any(n[3] == "receipt_request" for n in core.cnaps.beps.notices)


def test_accepted_receipt_nets_and_the_payer_is_debited(core: SandboxCore) -> None:
    assert core.cnaps.connect("CCB").ok
    payer, payee = available(core, "CCB", "ccb1"), available(core, "ICBC", "icbc1")
    assert collect(core, "D1") == AWAITING  # the payer's bank is asked for its receipt
    beps = core.cnaps.beps
    item = beps.items["D1"]
    assert item.status == AWAITING
    # nothing moves while the payer's bank decides
    assert available(core, "CCB", "ccb1") == payer
    assert beps.positions["CCB"] == 0
    notice = beps.notices[-1]
    assert notice[1:4] == ("CCB", "D1", "receipt_request")
    assert notice[4] == format_time(DEADLINE)
    # the payee's bank cannot give the payer's receipt: to it the item does not exist
    assert core.cnaps.beps_receipt("D1", "ICBC", True).status == "unknown"
    assert item.status == AWAITING
    assert core.cnaps.beps_receipt("D1", "CCB", True).status == "netted"
    assert core.world.banks.payments["D1"].status == "credited"
    assert available(core, "CCB", "ccb1") == payer - 32_150
    assert available(core, "ICBC", "icbc1") == payee + 32_150
    assert (beps.positions["CCB"], beps.positions["ICBC"]) == (-32_150, 32_150)
    # answered once: a second answer is refused and changes nothing
    again = core.cnaps.beps_receipt("D1", "CCB", False, "AM04", "no")
    assert not again.ok and again.status == "netted"


@pytest.mark.parametrize("code", RECEIPT_REJECT_CODES)
def test_refused_receipt_ends_with_the_banks_code_and_nothing_moves(
        core: SandboxCore, code: str) -> None:
    core.cnaps.connect("CCB")
    payer, payee = available(core, "CCB", "ccb1"), available(core, "ICBC", "icbc1")
    collect(core, "D1")
    out = core.cnaps.beps_receipt("D1", "CCB", False, code, "the payer says no")
    assert out.status == "rejected" and out.reason is not None and out.reason[0] == code
    record = core.world.banks.payments["D1"]
    assert record.status == "rejected" and record.reason is not None
    assert record.reason["code"] == code
    assert available(core, "CCB", "ccb1") == payer
    assert available(core, "ICBC", "icbc1") == payee
    assert core.cnaps.beps.positions["CCB"] == 0


def test_a_refusal_code_outside_the_list_is_refused_unlogged(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    collect(core, "D1")
    seq = core.engine.log.last_seq
    for code in ("AB05", "BE01", None):  # (an IBPS confirmation's BE01 is not a receipt's)
        out = core.cnaps.beps_receipt("D1", "CCB", False, code, "no")
        assert not out.ok and out.status == "refused"
    assert core.engine.log.last_seq == seq
    assert core.cnaps.beps.items["D1"].status == AWAITING


def test_silence_rejects_ab06_at_the_deadline_not_before(core: SandboxCore) -> None:
    core.engine.set_params({"beps.receipt_timeout_minutes": "30"})
    core.cnaps.connect("CCB")
    payer = available(core, "CCB", "ccb1")
    collect(core, "D1")
    deadline = START + 30 * US_PER_MINUTE
    # the world's wake-up rule has the deadline: the server ticks exactly then
    assert core.world.next_due_us() == deadline
    move_to(core, deadline - 1)
    assert core.cnaps.beps.items["D1"].status == AWAITING
    assert core.world.banks.payments["D1"].status == AWAITING
    move_to(core, deadline)
    item = core.cnaps.beps.items["D1"]
    assert item.status == "rejected" and item.reason is not None
    assert item.reason[0] == "AB06" and "30 minutes" in item.reason[1]
    assert core.world.banks.payments["D1"].status == "rejected"
    assert available(core, "CCB", "ccb1") == payer
    assert core.cnaps.beps.notices[-1][0] == deadline
    late = core.cnaps.beps_receipt("D1", "CCB", True)
    assert not late.ok and late.status == "rejected"


def test_the_default_deadline_is_a_day(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    collect(core, "D1")
    assert core.cnaps.beps.awaiting["D1"] == (DEADLINE, "CCB")


def test_an_accepted_receipt_beyond_the_cap_queues_with_the_funds_held(
        core: SandboxCore) -> None:
    core.cnaps.set_cap("BEPS", "CCB", 10_000)
    core.cnaps.connect("CCB")
    payer = available(core, "CCB", "ccb1")
    collect(core, "D1")
    out = core.cnaps.beps_receipt("D1", "CCB", True)
    assert out.ok and out.status == "queued"
    assert core.world.banks.payments["D1"].status == "queued"
    assert available(core, "CCB", "ccb1") == payer - 32_150  # held until it nets
    assert core.cnaps.set_cap("BEPS", "CCB", 1_000_000).ok
    assert core.cnaps.beps.items["D1"].status == "netted"
    assert core.world.banks.payments["D1"].status == "credited"
    assert available(core, "CCB", "ccb1") == payer - 32_150
    engine = core.engine
    assert engine.ledger.balance(engine.registry.id("CCB", "customer:ccb1")).posted_fen == \
        payer - 32_150


def test_a_receipt_for_more_than_the_account_holds_ends_am04(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    payer = available(core, "CCB", "ccb1")
    collect(core, "D1", payer + 1)
    out = core.cnaps.beps_receipt("D1", "CCB", True)
    assert out.status == "rejected" and out.reason is not None and out.reason[0] == "AM04"
    assert core.world.banks.payments["D1"].status == "rejected"
    assert available(core, "CCB", "ccb1") == payer


def test_the_connected_bank_decides_on_the_mandate(core: SandboxCore) -> None:
    # no agreement on file with CNAPS: the simulated bank would refuse MD01 at once; the
    # connected bank keeps its own mandates and is asked
    core.cnaps.connect("CCB")
    assert collect(core, "D1", kind="periodic_debit") == AWAITING
    assert core.cnaps.beps_receipt("D1", "CCB", False, "MD01", "no mandate").reason == (
        "MD01", "CCB rejected the item: no mandate")
    core.cnaps.connect("CCB", False)
    collect(core, "D2", kind="periodic_debit")
    reason = core.cnaps.beps.items["D2"].reason
    assert reason is not None and reason[0] == "MD01"


def test_credits_are_not_asked_for_receipts(core: SandboxCore) -> None:
    core.cnaps.connect("CCB")
    core.cnaps.connect("ICBC")
    record = core.world.banks.customer_transfer("C1", "BEPS", "normal", "CCB", "ICBC", 10_000,
                                               CCB1, ICBC1, "Holder ICBC 1")
    assert record.status == "credited"
    assert core.cnaps.beps.awaiting == {}


def test_replay_and_restart_rebuild_the_waiting_debit(tmp_path: Path) -> None:
    store = str(tmp_path / "w.db")
    c = open_core(store)
    c.cnaps.connect("CCB")
    collect(c, "D1")
    collect(c, "D2")
    c.cnaps.beps_receipt("D2", "CCB", True)
    collect(c, "D3")
    c.cnaps.beps_receipt("D3", "CCB", False, "AC04", "closed")
    move_to(c, START + US_PER_MINUTE)
    collect(c, "D4")
    c.engine.snapshot()
    state = c.engine.state_hash()
    c.close()
    assert replay(store, world_systems()).state_hash() == state
    resumed = open_core(store, resume=True)
    try:
        assert resumed.engine.state_hash() == state
        beps = resumed.cnaps.beps
        assert beps.items["D1"].status == AWAITING and beps.items["D4"].status == AWAITING
        assert beps.items["D2"].status == "netted" and beps.items["D3"].status == "rejected"
        assert beps.awaiting["D4"] == (DEADLINE + US_PER_MINUTE, "CCB")
        move_to(resumed, DEADLINE)
        assert beps.items["D1"].status == "rejected" and beps.items["D4"].status == AWAITING
        assert resumed.cnaps.beps_receipt("D4", "CCB", True).ok
        assert resumed.world.banks.payments["D4"].status == "credited"
    finally:
        resumed.close()
