"""BEPS and IBPS (deferred net settlement), each rule asserted on positions, settlement
balances, mirrors, statuses and reason codes."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.hvps import Priority
from qingsuan.cnaps.netsys import NetItem, NetOutcome, NetSystem, SimAccount
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import AccountSpec, Engine
from qingsuan.ledger import AccountFlags, NormalSide, Transfer
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario, parse_scenario

BANKS = {"ICBC": "102100099996", "CCB": "105100000017", "BOC": "104100000004"}
WEDNESDAY = "2026-11-25T09:30"
SATURDAY = "2026-11-28T10:00"
LIMIT = 5_000_000  # 50,000.00 CNY: the default item limit of both systems, in fen


def acct(bank: str) -> str:
    """The one customer account each bank's simulated responder knows."""
    return f"{bank}-0001"


class World:
    """An engine with CNAPS, three banks with funded settlement accounts and one known
    customer account each, on a virtual clock (default: a Wednesday, HVPS open)."""

    def __init__(self, start: str = WEDNESDAY, balances: dict[str, int] | None = None,
                 params: Mapping[str, object] | None = None) -> None:
        self.clock = VirtualClock(parse_time(start))
        self.cnaps = Cnaps()
        self.engine = Engine.open("memory:", self.clock, systems=[self.cnaps])
        if params:
            self.engine.set_params(dict(params))
        for name, code in BANKS.items():
            assert self.cnaps.join(name, code).ok
        assert self.cnaps.register_accounts(
            [SimAccount(b, acct(b), f"customer of {b}", None) for b in BANKS]).ok
        self.next_id = 1
        self.issued = 0
        for name, amount in (balances or {}).items():
            self.fund(name, amount)

    # -- setup
    def fund(self, name: str, amount: int) -> None:
        """New central-bank money on the settlement account and its mirror."""
        if not amount:
            return
        reg = self.engine.registry
        self._post(reg.id("PBOC", "issued"), reg.id("PBOC", f"settlement:{name}"), amount)
        self._post(reg.id(name, "reserve_at_pboc"), reg.id(name, "hvps_incoming"), amount)
        self.issued += amount

    def _post(self, debit: int, credit: int, amount: int) -> None:
        receipt = self.engine.submit_transfers([Transfer(self.next_id, debit, credit, amount)])
        assert receipt.results.all_done
        self.next_id += 1

    def customer(self, bank: str, cid: str, balance: int) -> str:
        """A customer account in the bank's ledger, known to its responder; returns its
        account number."""
        reg = self.engine.registry
        specs = [AccountSpec(bank, f"customer:{cid}", NormalSide.CREDIT,
                             AccountFlags.MUST_NOT_OVERDRAW)]
        if not reg.has(f"{bank}:other_assets"):
            specs.append(AccountSpec(bank, "other_assets", NormalSide.DEBIT))
        self.engine.open_named(specs)
        if balance:
            self._post(reg.id(bank, "other_assets"), reg.id(bank, f"customer:{cid}"), balance)
        number = f"{bank}-{cid}"
        assert self.cnaps.register_accounts(
            [SimAccount(bank, number, cid, f"{bank}:customer:{cid}")]).ok
        return number

    def at(self, text: str) -> None:
        self.clock.advance_to(parse_time(text))

    def tick_at(self, text: str) -> None:
        self.at(text)
        self.engine.tick()

    # -- commands
    def ibps(self, ref: str, sender: str, receiver: str, amount: int,
             payee: str | None = None) -> NetOutcome:
        return self.cnaps.submit_net("IBPS", ref, "credit", sender, receiver, amount,
                                     acct(sender), payee or acct(receiver))

    def beps(self, ref: str, sender: str, receiver: str, amount: int,
             kind: str = "ordinary_credit", payer: str | None = None,
             payee: str | None = None) -> NetOutcome:
        return self.cnaps.submit_net("BEPS", ref, kind, sender, receiver, amount,
                                     payer or acct(sender), payee or acct(receiver))

    # -- state
    def net(self, system: str) -> NetSystem:
        return self.cnaps.net[system]

    def item(self, system: str, ref: str) -> NetItem:
        return self.net(system).items[ref]

    def pos(self, system: str) -> dict[str, int]:
        return dict(self.net(system).positions)

    def balance(self, name: str) -> int:
        return self.cnaps.hvps._balance(name)

    def balances(self) -> dict[str, int]:
        return {n: self.balance(n) for n in BANKS}

    def mirror(self, name: str) -> int:
        reg = self.engine.registry
        return self.engine.ledger.balance(reg.id(name, "reserve_at_pboc")).posted_fen

    def ledger_balance(self, book: str, name: str) -> int:
        reg = self.engine.registry
        return self.engine.ledger.balance(reg.id(book, name)).posted_fen

    def drawn(self) -> int:
        return sum(self.cnaps.hvps.credit[n].drawn_fen for n in BANKS)

    def check(self) -> None:
        """The invariants every state must keep."""
        self.engine.ledger.check_invariants()
        assert sum(self.balances().values()) == self.issued + self.drawn()
        for n in BANKS:
            assert self.balance(n) == self.mirror(n), n
            assert self.balance(n) >= 0, n
        for system, net in self.cnaps.net.items():
            effects = dict.fromkeys(BANKS, 0)
            netted = [i for i in net.items.values() if i.status == "netted"]
            for i in netted:
                effects[i.sender] -= i.amount_fen
                effects[i.receiver] += i.amount_fen
            assert net.positions == effects, system
            assert sum(net.positions.values()) == 0, system
            assert sorted(net.unsettled) == sorted(i.ref for i in netted), system
            for n in BANKS:
                assert net.positions[n] >= -net.caps[n], (system, n)
            queued = sorted(i.ref for i in net.items.values() if i.status == "queued")
            assert sorted(r for q in net.queues.values() for r in q) == queued, system
            assert net.in_transit_fen == sum(i.amount_fen for i in netted), system


def code(outcome: NetOutcome) -> str | None:
    return None if outcome.reason is None else outcome.reason[0]


def events(w: World, system: str, ref: str, who: str) -> list[str]:
    return [e for _at, p, r, e, _d in w.net(system).notices if r == ref and p == who]


ZERO = dict.fromkeys(BANKS, 0)


# ---------------------------------------------------------------------------- IBPS


def test_ibps_item_within_limit_and_cap_nets_at_once() -> None:
    w = World(balances={"ICBC": 1000})
    before = w.balances()
    out = w.ibps("i1", "ICBC", "CCB", 12_345)
    assert out == NetOutcome(True, "netted")  # the final status, in the same exchange
    assert w.pos("IBPS") == {"ICBC": -12_345, "CCB": 12_345, "BOC": 0}
    assert sum(w.pos("IBPS").values()) == 0
    assert w.pos("BEPS") == ZERO
    item = w.item("IBPS", "i1")
    assert (item.status, item.netted_us, item.reason) == ("netted", w.clock.now_us(), None)
    assert events(w, "IBPS", "i1", "ICBC") == ["netted"]
    assert events(w, "IBPS", "i1", "CCB") == ["incoming"]
    assert w.balances() == before  # nothing settles before the session
    m = w.net("IBPS").metrics
    assert (m["ICBC"].netted_value_fen, m["ICBC"].low_position_fen) == (12_345, -12_345)
    assert m["CCB"].received_value_fen == 12_345
    w.check()


def test_ibps_item_limit_rejects_am02_with_nothing_moved() -> None:
    w = World()
    assert w.ibps("at-limit", "ICBC", "CCB", LIMIT).status == "netted"
    out = w.ibps("over", "ICBC", "CCB", LIMIT + 1)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AM02")
    assert w.item("IBPS", "over").status == "rejected"
    assert w.pos("IBPS") == {"ICBC": -LIMIT, "CCB": LIMIT, "BOC": 0}
    w.engine.set_params({"ibps.item_limit": "100000.00"})  # the limit is a parameter
    assert w.ibps("over-2", "ICBC", "CCB", LIMIT + 1).status == "netted"
    assert w.net("IBPS").metrics["ICBC"].rejections == {"AM02": 1}
    w.check()


def test_ibps_beyond_cap_rejected_am14_not_queued() -> None:
    w = World()
    assert w.cnaps.set_cap("IBPS", "ICBC", 5000).ok
    assert w.ibps("fits", "ICBC", "CCB", 5000).status == "netted"  # exactly to the cap
    out = w.ibps("beyond", "ICBC", "BOC", 1)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AM14")
    assert w.item("IBPS", "beyond").status == "rejected"
    assert list(w.net("IBPS").queues["ICBC"]) == []
    assert w.pos("IBPS") == {"ICBC": -5000, "CCB": 5000, "BOC": 0}
    # an incoming item makes room: a new item fits again (the rejected one stays rejected)
    assert w.ibps("in", "BOC", "ICBC", 300).status == "netted"
    assert w.item("IBPS", "beyond").status == "rejected"
    assert w.ibps("again", "ICBC", "BOC", 300).status == "netted"
    assert w.pos("IBPS") == {"ICBC": -5000, "CCB": 5000, "BOC": 0}
    w.check()


def test_ibps_unknown_or_closed_receiving_account() -> None:
    w = World()
    out = w.ibps("nobody", "ICBC", "CCB", 100, payee="CCB-9999")
    assert (out.status, code(out)) == ("rejected", "AC01")
    # the account exists, but at another bank: the receiving bank does not know it
    assert code(w.ibps("elsewhere", "ICBC", "CCB", 100, payee=acct("BOC"))) == "AC01"
    w.cnaps.register_accounts([SimAccount("CCB", "CCB-closed", "gone", None, closed=True)])
    assert code(w.ibps("closed", "ICBC", "CCB", 100, payee="CCB-closed")) == "AC04"
    assert w.pos("IBPS") == ZERO
    w.check()


def test_ibps_timeout_ab05_leaves_no_trace() -> None:
    w = World(params={"ibps.confirm_timeout_ms": "30000", "ibps.sim_latency_ms": "30000"})
    assert w.ibps("just-in-time", "ICBC", "CCB", 100).status == "netted"
    w.engine.set_params({"ibps.sim_latency_ms": "30001"})
    out = w.ibps("slow", "ICBC", "CCB", 100)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AB05")
    assert w.pos("IBPS") == {"ICBC": -100, "CCB": 100, "BOC": 0}
    assert w.item("IBPS", "slow").netted_us is None
    assert "slow" not in w.net("IBPS").unsettled
    assert events(w, "IBPS", "slow", "CCB") == []  # the receiver never saw it credited
    w.check()


SLOW_IBPS = """\
name: ibps-timeout
start: 2026-11-25T09:00
run_until: 2026-11-25T12:00
calendar: cn
params:
  ibps.sim_latency_ms: "31000"
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "1234.56", name: "A"}
  - {id: bob,   bank: CCB,  account: "6217000010000000029", balance: "0.00", name: "B"}
events:
  - {at: 2026-11-25T09:30, do: ibps_payment, id: slow, from: alice, to: bob, amount: "1000.01"}
"""


def test_ibps_timeout_through_the_runner_refunds_the_payer_to_the_fen() -> None:
    out = run_scenario(parse_scenario(SLOW_IBPS, "slow.yaml"), store="memory:")
    slow = out["payments"]["slow"]
    assert slow["status"] == "rejected" and slow["reason"]["code"] == "AB05"
    assert [h["status"] for h in slow["history"]] == ["accepted", "rejected"]
    assert out["balances"]["customers"] == {"alice": "1234.56", "bob": "0.00"}
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "1000000.00"}
    assert out["net"]["IBPS"]["positions"] == {"CCB": "0.00", "ICBC": "0.00"}
    assert out["net"]["IBPS"]["sessions"] == []
    assert out["net"]["IBPS"]["participants"]["ICBC"]["rejections"] == {"AB05": 1}
    assert all(out["checks"].values())


def test_ibps_accept_ratio_zero_rejects_every_item() -> None:
    w = World(params={"ibps.sim_accept_ratio": "0"})
    for i in range(20):
        out = w.ibps(f"r{i}", "ICBC", "CCB", 100 + i)
        assert (out.ok, out.status, code(out)) == (False, "rejected", "NARR")
    assert w.pos("IBPS") == ZERO
    assert w.net("IBPS").metrics["ICBC"].rejections == {"NARR": 20}
    w.engine.set_params({"ibps.sim_accept_ratio": "1"})
    assert all(w.ibps(f"a{i}", "ICBC", "CCB", 1).ok for i in range(20))
    assert w.pos("IBPS")["CCB"] == 20
    w.check()


def test_ibps_duplicate_ref_am05_nets_once() -> None:
    w = World()
    assert w.ibps("dup", "ICBC", "CCB", 700).status == "netted"
    again = w.ibps("dup", "ICBC", "CCB", 700)
    assert (again.ok, again.status, code(again)) == (False, "netted", "AM05")
    other = w.ibps("dup", "BOC", "CCB", 900)  # same ref, other content: still a duplicate
    assert code(other) == "AM05"
    assert w.pos("IBPS") == {"ICBC": -700, "CCB": 700, "BOC": 0}
    assert w.item("IBPS", "dup").amount_fen == 700
    assert w.net("IBPS").unsettled == ["dup"]
    assert w.net("IBPS").metrics["ICBC"].netted_count == 1
    w.check()


# ---------------------------------------------------------------------------- BEPS


def test_beps_ordinary_credit_limit_and_periodic_credit_without_limit() -> None:
    w = World()
    assert w.beps("ok", "ICBC", "CCB", LIMIT).status == "netted"
    out = w.beps("over", "ICBC", "CCB", LIMIT + 1)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AM02")
    payroll = w.beps("payroll", "ICBC", "CCB", 10 * LIMIT, kind="periodic_credit")
    assert payroll.status == "netted"
    assert w.pos("BEPS") == {"ICBC": -11 * LIMIT, "CCB": 11 * LIMIT, "BOC": 0}
    w.check()
    # the limit is a parameter: a change holds from the next item, the same day
    w.engine.set_params({"beps.item_limit": "100000.00"})
    assert w.beps("over-now-fits", "ICBC", "CCB", LIMIT + 1).status == "netted"
    assert code(w.beps("over-new", "ICBC", "CCB", 10_000_001)) == "AM02"


def test_beps_holiday_item_limit_applies_on_saturday() -> None:
    params = {"beps.holiday_item_limit": "200000.00"}
    sat = World(start=SATURDAY, params=params)
    assert sat.beps("sat-big", "ICBC", "CCB", 2 * LIMIT).status == "netted"
    assert sat.beps("sat-max", "ICBC", "CCB", 4 * LIMIT).status == "netted"
    assert code(sat.beps("sat-over", "ICBC", "CCB", 4 * LIMIT + 1)) == "AM02"
    assert sat.pos("BEPS")["CCB"] == 6 * LIMIT
    sat.check()
    wed = World(params=params)  # a business day: the normal limit
    assert code(wed.beps("wed-big", "ICBC", "CCB", 2 * LIMIT)) == "AM02"
    assert wed.pos("BEPS") == ZERO
    # the same holds at the next business day in the first world
    sat.at("2026-11-30T10:00")
    assert code(sat.beps("mon-big", "ICBC", "CCB", 2 * LIMIT)) == "AM02"


def test_beps_beyond_cap_queues_fifo_and_incoming_credit_releases() -> None:
    w = World()
    assert w.cnaps.set_cap("BEPS", "ICBC", 1000).ok
    assert w.beps("a", "ICBC", "CCB", 800).status == "netted"
    assert w.beps("b", "ICBC", "CCB", 500) == NetOutcome(True, "queued")
    # FIFO: c would fit (-900) but waits behind b
    assert w.beps("c", "ICBC", "BOC", 100).status == "queued"
    assert list(w.net("BEPS").queues["ICBC"]) == ["b", "c"]
    assert w.pos("BEPS") == {"ICBC": -800, "CCB": 800, "BOC": 0}
    w.check()
    w.at("2026-11-25T09:40")
    assert w.beps("in", "CCB", "ICBC", 300).status == "netted"
    assert w.item("BEPS", "b").status == "netted"  # -500 - 500 = -1000: just fits
    assert w.item("BEPS", "c").status == "queued"  # -1100 would not
    assert list(w.net("BEPS").queues["ICBC"]) == ["c"]
    assert w.pos("BEPS") == {"ICBC": -1000, "CCB": 1000, "BOC": 0}
    assert events(w, "BEPS", "b", "ICBC") == ["queued", "released", "netted"]
    assert w.net("BEPS").metrics["ICBC"].queue_time_us == 10 * 60 * 1_000_000
    w.check()


def test_beps_session_restores_the_cap_and_releases_the_queue() -> None:
    """After the session the positions start again from zero: a BEPS item queued behind
    the cap nets at once, not at the next incoming item."""
    w = World(balances={"ICBC": 10_000})
    assert w.cnaps.set_cap("BEPS", "ICBC", 1000).ok
    assert w.beps("a", "ICBC", "CCB", 800).status == "netted"
    assert w.beps("b", "ICBC", "CCB", 500).status == "queued"
    w.tick_at("2026-11-25T11:00")
    assert w.item("BEPS", "a").status == "settled"
    assert w.item("BEPS", "b").status == "netted"
    assert w.pos("BEPS") == {"ICBC": -500, "CCB": 500, "BOC": 0}
    assert w.balances() == {"ICBC": 9200, "CCB": 800, "BOC": 0}
    w.check()


def test_beps_release_cascades_through_participants() -> None:
    w = World()
    for bank in ("ICBC", "BOC"):
        assert w.cnaps.set_cap("BEPS", bank, 0).ok
    assert w.beps("boc-ccb", "BOC", "CCB", 500).status == "queued"
    assert w.beps("icbc-boc", "ICBC", "BOC", 500).status == "queued"
    assert w.pos("BEPS") == ZERO
    # CCB pays ICBC: ICBC's item is released, which pays BOC, whose item is released
    assert w.beps("ccb-icbc", "CCB", "ICBC", 500).status == "netted"
    assert w.item("BEPS", "icbc-boc").status == "netted"
    assert w.item("BEPS", "boc-ccb").status == "netted"
    assert w.pos("BEPS") == ZERO
    assert all(not q for q in w.net("BEPS").queues.values())
    w.check()


def test_beps_raising_the_cap_releases_and_lowering_below_use_is_refused() -> None:
    w = World()
    assert w.cnaps.set_cap("BEPS", "ICBC", 0).ok
    assert w.beps("q1", "ICBC", "CCB", 600).status == "queued"
    assert w.beps("q2", "ICBC", "CCB", 400).status == "queued"
    assert w.cnaps.set_cap("BEPS", "ICBC", 700).ok
    assert (w.item("BEPS", "q1").status, w.item("BEPS", "q2").status) == ("netted", "queued")
    refused = w.cnaps.set_cap("BEPS", "ICBC", 599)
    assert (refused.ok, code(refused)) == (False, "AM14")
    assert w.net("BEPS").caps["ICBC"] == 700
    assert w.cnaps.set_cap("BEPS", "ICBC", 1000).ok
    assert w.item("BEPS", "q2").status == "netted"
    assert w.pos("BEPS") == {"ICBC": -1000, "CCB": 1000, "BOC": 0}
    assert code(w.cnaps.set_cap("BEPS", "ICBC", -1)) == "AM02"
    w.check()


def test_beps_cancel_only_queued_and_only_by_sender() -> None:
    w = World()
    assert w.cnaps.set_cap("BEPS", "ICBC", 1000).ok
    w.beps("netted", "ICBC", "CCB", 900)
    w.beps("head", "ICBC", "CCB", 500)
    w.beps("small", "ICBC", "CCB", 100)
    not_yours = w.cnaps.cancel_net("BEPS", "head", "CCB")
    assert not not_yours.ok and not_yours.status == "queued"
    assert w.item("BEPS", "head").status == "queued"
    late = w.cnaps.cancel_net("BEPS", "netted", "ICBC")
    assert not late.ok and late.status == "netted" and "netted" in late.reason[1]  # type: ignore[index]
    assert w.cnaps.cancel_net("BEPS", "head", "ICBC") == NetOutcome(True, "cancelled")
    # the item behind the cancelled head now fits and nets
    assert w.item("BEPS", "small").status == "netted"
    assert w.pos("BEPS") == {"ICBC": -1000, "CCB": 1000, "BOC": 0}
    assert not w.cnaps.cancel_net("BEPS", "head", "ICBC").ok  # once only
    assert w.cnaps.set_cap("BEPS", "ICBC", 10_000).ok  # a cancelled item never nets
    assert w.item("BEPS", "head").status == "cancelled"
    assert w.pos("BEPS") == {"ICBC": -1000, "CCB": 1000, "BOC": 0}
    assert events(w, "BEPS", "head", "ICBC") == ["queued", "cancelled"]
    w.check()


def test_beps_periodic_debit_needs_an_agreement() -> None:
    w = World()
    payer = w.customer("CCB", "worker", 100_000)
    payee = w.customer("ICBC", "power", 0)
    out = w.beps("bill", "CCB", "ICBC", 32_150, kind="periodic_debit", payer=payer,
                 payee=payee)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "MD01")
    assert w.pos("BEPS") == ZERO
    assert w.cnaps.debit_agreement(payer, payee).ok
    assert w.beps("bill-2", "CCB", "ICBC", 32_150, kind="periodic_debit", payer=payer,
                  payee=payee).status == "netted"
    # the payer's bank is the paying side
    assert w.pos("BEPS") == {"ICBC": 32_150, "CCB": -32_150, "BOC": 0}
    assert w.item("BEPS", "bill-2").sender == "CCB"
    # the agreement is for this payer and payee only
    other = w.customer("CCB", "neighbour", 100_000)
    assert code(w.beps("bill-3", "CCB", "ICBC", 1, kind="periodic_debit", payer=other,
                       payee=payee)) == "MD01"
    w.check()


def test_beps_debit_receipt_refuses_unfunded_unknown_or_closed_payer() -> None:
    w = World()
    payer = w.customer("CCB", "poor", 10_000)
    payee = w.customer("ICBC", "utility", 0)
    w.cnaps.debit_agreement(payer, payee)
    out = w.beps("too-much", "CCB", "ICBC", 10_001, kind="periodic_debit", payer=payer,
                 payee=payee)
    assert (out.status, code(out)) == ("rejected", "AM04")
    assert w.pos("BEPS") == ZERO
    assert w.beps("exact", "CCB", "ICBC", 10_000, kind="periodic_debit", payer=payer,
                  payee=payee).status == "netted"
    assert code(w.beps("nobody", "CCB", "ICBC", 1, kind="ordinary_debit", payer="CCB-404",
                       payee=payee)) == "AC01"
    w.cnaps.register_accounts([SimAccount("CCB", "CCB-shut", "x", None, closed=True)])
    assert code(w.beps("shut", "CCB", "ICBC", 1, kind="ordinary_debit", payer="CCB-shut",
                       payee=payee)) == "AC04"
    assert w.pos("BEPS") == {"ICBC": 10_000, "CCB": -10_000, "BOC": 0}
    w.check()


def test_return_of_a_netted_credit_moves_positions_back_exactly() -> None:
    w = World()
    assert w.beps("orig", "ICBC", "CCB", 4321).status == "netted"
    assert w.beps("other", "BOC", "CCB", 1000).status == "netted"
    before_return = w.pos("BEPS")
    out = w.cnaps.return_net("BEPS", "orig", "AC01", "no such account")
    assert out.ok and out.status == "netted"
    back = w.item("BEPS", "orig/return")
    assert (back.original, back.sender, back.receiver, back.amount_fen) == (
        "orig", "CCB", "ICBC", 4321)
    assert (back.payer, back.payee) == (acct("CCB"), acct("ICBC"))
    assert w.item("BEPS", "orig").returned_by == "orig/return"
    # net zero across both items: only "other" remains in the positions
    assert w.pos("BEPS") == {"ICBC": 0, "CCB": 1000, "BOC": -1000}
    assert before_return["ICBC"] == -4321
    assert events(w, "BEPS", "orig", "ICBC")[-1] == "returned"
    again = w.cnaps.return_net("BEPS", "orig", "AC01", "twice")
    assert (again.ok, code(again)) == (False, "AM05")
    assert w.pos("BEPS") == {"ICBC": 0, "CCB": 1000, "BOC": -1000}
    # IBPS returns net back the same way
    assert w.ibps("i", "BOC", "ICBC", 250).status == "netted"
    assert w.cnaps.return_net("IBPS", "i", "AC01", "no such account").ok
    assert w.item("IBPS", "i/return").original == "i"
    assert w.pos("IBPS") == ZERO
    w.check()


def test_return_of_a_credit_above_the_ordinary_limit() -> None:
    """A payroll item (no item limit) or a holiday item (the holiday limit) comes back as
    an ordinary credit: the return is of money already netted, the item limit of the day
    does not stop it."""
    w = World(start=SATURDAY, params={"beps.holiday_item_limit": "100000.00"})
    assert w.beps("payroll", "ICBC", "CCB", 3 * LIMIT, kind="periodic_credit").ok
    assert w.beps("holiday", "ICBC", "CCB", 2 * LIMIT).status == "netted"
    w.at("2026-11-30T08:00")  # Monday: the normal limit again
    for ref in ("payroll", "holiday"):
        out = w.cnaps.return_net("BEPS", ref, "AC01", "no such account")
        assert out.ok and out.status == "netted", out
    assert w.pos("BEPS") == ZERO
    w.check()


def test_only_a_netted_credit_can_be_returned() -> None:
    w = World()
    assert w.cnaps.set_cap("BEPS", "ICBC", 0).ok
    assert w.beps("queued", "ICBC", "CCB", 100).status == "queued"
    assert w.beps("rejected", "ICBC", "CCB", LIMIT + 1).status == "rejected"
    for ref in ("queued", "rejected", "no-such-item"):
        out = w.cnaps.return_net("BEPS", ref, "AC01", "no such account")
        assert not out.ok, ref
        assert f"{ref}/return" not in w.net("BEPS").items
    assert w.pos("BEPS") == ZERO
    w.engine.tick()  # the engine still works after the refusals
    w.check()


# ---------------------------------------------------------------------------- sessions


def test_session_settles_every_position_in_the_pboc_book() -> None:
    w = World(balances={"ICBC": 100_000, "CCB": 100_000, "BOC": 100_000})
    w.ibps("i1", "ICBC", "CCB", 3000)
    w.ibps("i2", "BOC", "ICBC", 1000)
    w.beps("b1", "CCB", "BOC", 7000)
    w.beps("b2", "ICBC", "BOC", 500)
    ibps, beps = w.pos("IBPS"), w.pos("BEPS")
    assert ibps == {"ICBC": -2000, "CCB": 3000, "BOC": -1000}
    assert beps == {"ICBC": -500, "CCB": -7000, "BOC": 7500}
    before = w.balances()
    w.tick_at("2026-11-25T10:59")  # no session time has passed
    assert w.balances() == before and w.pos("IBPS") == ibps
    w.tick_at("2026-11-25T11:00")
    assert w.balances() == {n: before[n] + ibps[n] + beps[n] for n in BANKS}
    assert w.balances() == {"ICBC": 97_500, "CCB": 96_000, "BOC": 106_500}
    for n in BANKS:
        assert w.mirror(n) == w.balance(n)
        assert w.ledger_balance(n, "ibps_clearing") == -ibps[n]
        assert w.ledger_balance(n, "beps_clearing") == -beps[n]
    assert w.ledger_balance("PBOC", "ibps_clearing") == 0
    assert w.ledger_balance("PBOC", "beps_clearing") == 0
    assert w.pos("IBPS") == ZERO and w.pos("BEPS") == ZERO
    for system, refs in (("IBPS", ("i1", "i2")), ("BEPS", ("b1", "b2"))):
        for ref in refs:
            item = w.item(system, ref)
            assert (item.status, item.session) == ("settled", 1)
            assert item.settled_us == parse_time("2026-11-25T11:00")
        assert w.net(system).sessions[-1]["status"] == "settled"
        assert w.net(system).sessions[-1]["key"] == "2026-11-25T11:00"
        assert w.net(system).unsettled == []
    assert events(w, "IBPS", "i1", "ICBC")[-1] == "settled"
    w.check()
    w.tick_at("2026-11-25T13:00")  # nothing to settle: no session recorded
    assert len(w.net("IBPS").sessions) == 1
    assert w.balances() == {"ICBC": 97_500, "CCB": 96_000, "BOC": 106_500}


def test_no_session_while_hvps_is_closed_positions_carry_to_monday() -> None:
    w = World(start=SATURDAY, balances=dict.fromkeys(BANKS, 10_000))
    w.ibps("sat-i", "ICBC", "CCB", 2000)
    w.beps("sat-b", "CCB", "BOC", 3000)
    ibps, beps = w.pos("IBPS"), w.pos("BEPS")
    for moment in ("2026-11-28T11:00", "2026-11-28T16:30", "2026-11-29T09:00",
                   "2026-11-29T16:30", "2026-11-29T21:00", "2026-11-30T08:59"):
        w.tick_at(moment)
        assert w.balances() == dict.fromkeys(BANKS, 10_000), moment
        assert (w.pos("IBPS"), w.pos("BEPS")) == (ibps, beps), moment
        assert w.net("IBPS").sessions == [] and w.net("BEPS").sessions == []
        assert w.item("IBPS", "sat-i").status == "netted"
    w.tick_at("2026-11-30T09:00")  # Monday's first session
    assert w.balances() == {"ICBC": 8000, "CCB": 9000, "BOC": 13_000}
    assert w.item("IBPS", "sat-i").settled_us == parse_time("2026-11-30T09:00")
    assert w.item("BEPS", "sat-b").status == "settled"
    assert w.pos("IBPS") == ZERO and w.pos("BEPS") == ZERO
    w.check()


def test_short_participant_makes_the_session_wait_until_funded() -> None:
    w = World(balances={"ICBC": 400, "CCB": 0, "BOC": 5000})
    w.ibps("x", "ICBC", "CCB", 1000)
    w.ibps("y", "BOC", "ICBC", 100)
    w.tick_at("2026-11-25T11:00")
    net = w.net("IBPS")
    assert net.sessions[-1]["status"] == "waiting: ICBC short 5.00"  # 900 owed, 400 held
    assert net.pending_session == "2026-11-25T11:00"
    assert w.balances() == {"ICBC": 400, "CCB": 0, "BOC": 5000}  # all or nothing
    assert w.pos("IBPS") == {"ICBC": -900, "CCB": 1000, "BOC": -100}
    assert w.item("IBPS", "x").status == "netted"
    w.check()
    w.fund("ICBC", 499)
    w.tick_at("2026-11-25T11:05")
    assert net.sessions[-1]["status"] == "waiting: ICBC short 0.01"
    assert len(net.sessions) == 1  # the same session, its status updated
    w.fund("ICBC", 1)
    w.tick_at("2026-11-25T11:10")  # the next tick after it is funded
    assert net.sessions[-1]["status"] == "settled" and net.pending_session is None
    assert net.sessions[-1]["at_us"] == parse_time("2026-11-25T11:10")
    assert w.balances() == {"ICBC": 0, "CCB": 1000, "BOC": 4900}
    assert w.item("IBPS", "x").status == "settled"
    assert w.pos("IBPS") == ZERO
    w.check()


def test_waiting_session_settles_with_pledge_financing() -> None:
    w = World(balances={"CCB": 0})
    w.beps("x", "ICBC", "CCB", 1000)
    w.tick_at("2026-11-25T11:00")
    assert w.net("BEPS").sessions[-1]["status"] == "waiting: ICBC short 10.00"
    w.cnaps.pledge("ICBC", 2000)  # lendable 1800 at the 10% haircut
    w.tick_at("2026-11-25T11:01")
    assert w.net("BEPS").sessions[-1]["status"] == "settled"
    line = w.cnaps.hvps.credit["ICBC"]
    assert (line.intraday_fen, line.peak_drawn_fen) == (1000, 1000)
    assert w.ledger_balance("PBOC", "intraday_credit:ICBC") == 1000
    assert w.balances() == {"ICBC": 0, "CCB": 1000, "BOC": 0}
    assert sum(w.balances().values()) == w.issued + w.drawn() == 1000
    w.check()


def test_waiting_session_does_not_settle_while_hvps_is_closed() -> None:
    w = World(start="2026-11-27T16:00")  # a Friday
    w.ibps("x", "ICBC", "CCB", 1000)
    w.tick_at("2026-11-27T16:30")
    assert w.net("IBPS").sessions[-1]["status"] == "waiting: ICBC short 10.00"
    w.at("2026-11-28T10:00")  # Saturday: HVPS closed
    w.fund("ICBC", 1000)
    w.tick_at("2026-11-28T11:00")
    assert w.net("IBPS").sessions[-1]["status"].startswith("waiting")
    assert w.balances() == {"ICBC": 1000, "CCB": 0, "BOC": 0}
    assert w.item("IBPS", "x").status == "netted"
    w.tick_at("2026-11-30T08:00")  # Monday, HVPS open
    assert w.net("IBPS").sessions[-1]["status"] == "settled"
    assert w.balances() == {"ICBC": 0, "CCB": 1000, "BOC": 0}
    w.check()


# ---------------------------------------------------------------------------- scenarios


def _story(name: str) -> dict[str, Any]:
    path = Path(str(resources.files("qingsuan") / "scenarios" / f"{name}.yaml"))
    return run_scenario(load_scenario(path), store="memory:")


def _statuses(out: dict[str, Any]) -> dict[str, str]:
    return {k: v["status"] for k, v in out["payments"].items()}


def test_story_ibps_night() -> None:
    out = _story("ibps-night")
    assert _statuses(out) == {"whole": "rejected", "half-1": "settled", "half-2": "settled"}
    assert out["payments"]["whole"]["reason"]["code"] == "AM02"
    half = out["payments"]["half-1"]["history"]
    assert [(h["at"], h["status"]) for h in half] == [
        ("2026-11-25T22:00:20+08:00", "accepted"), ("2026-11-25T22:00:20+08:00", "netted"),
        ("2026-11-25T22:00:20+08:00", "credited"), ("2026-11-26T09:00:00+08:00", "settled")]
    # 150,000.00 - 2 x 50,000.00; the refused 100,000.00 never left
    assert out["balances"]["customers"] == {"alice": "50000.00", "bob": "100000.00"}
    assert out["balances"]["settlement"] == {"ICBC": "900000.00", "CCB": "1100000.00"}
    ibps = out["net"]["IBPS"]
    assert ibps["positions"] == {"CCB": "0.00", "ICBC": "0.00"}
    assert ibps["sessions"] == [{"at": "2026-11-26T09:00:00+08:00", "status": "settled",
                                 "items": 2,
                                 "positions": {"CCB": "100000.00", "ICBC": "-100000.00"}}]
    assert out["net"]["BEPS"]["sessions"] == []
    assert out["inquiries"]["who-is-bob"]["exists"] is True
    assert out["inquiries"]["who-is-bob"]["name_matches"] is True
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}


def test_story_weekend() -> None:
    out = _story("weekend")
    assert _statuses(out) == {"big": "rejected", "payroll": "settled", "gift": "settled",
                              "typo": "returned", "bill": "settled",
                              "bill-no-mandate": "rejected"}
    p = out["payments"]
    assert p["big"]["reason"]["code"] == "DT01"
    assert p["typo"]["reason"]["code"] == "AC01"
    assert p["bill-no-mandate"]["reason"]["code"] == "MD01"
    for ref in ("payroll", "gift", "bill"):
        assert p[ref]["history"][-1]["at"] == "2026-11-30T09:00:00+08:00"
    # factory 900,000.00 - payroll 80,000.00 - gift 2,000.00 (the typo came back, the HVPS
    # payment was refused); worker 1,000.00 + 80,000.00 + 2,000.00 - bill 321.50
    assert out["balances"]["customers"] == {"factory": "818000.00", "worker": "82678.50",
                                            "power": "321.50", "neighbour": "5000.00"}
    # ICBC pays 80,000.00 + 2,000.00 and receives 321.50 at Monday's session
    assert out["balances"]["settlement"] == {"ICBC": "1918321.50", "CCB": "2081678.50"}
    beps, ibps = out["net"]["BEPS"], out["net"]["IBPS"]
    assert beps["sessions"] == [{"at": "2026-11-30T09:00:00+08:00", "status": "settled",
                                 "items": 4,
                                 "positions": {"CCB": "79678.50", "ICBC": "-79678.50"}}]
    assert ibps["sessions"] == [{"at": "2026-11-30T09:00:00+08:00", "status": "settled",
                                 "items": 1,
                                 "positions": {"CCB": "2000.00", "ICBC": "-2000.00"}}]
    assert beps["caps"]["CCB"] == "500000.00"
    assert beps["participants"]["CCB"]["rejections"] == {"MD01": 1}
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}


@pytest.mark.parametrize("name", ["ibps-night", "weekend"])
def test_story_replay_is_deterministic(name: str) -> None:
    first, second = _story(name), _story(name)
    assert first["log"]["state_hash"] == second["log"]["state_hash"]
    assert first["log"]["entries"] == second["log"]["entries"]
    assert first == second


# ---------------------------------------------------------------------------- property

CAP = 2000
OPS = ("ibps", "ibps", "beps", "beps", "beps", "cancel", "return", "return", "tick", "tick",
       "tick", "fund", "pledge", "cap")

ops = st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(list(BANKS)),
                         st.sampled_from(list(BANKS)), st.integers(1, 2500),
                         st.integers(0, 45)), min_size=10, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_any_interleaving_conserves_money_and_positions(
        seq: list[tuple[str, str, str, int, int]]) -> None:
    w = World(balances=dict.fromkeys(BANKS, 300))
    for system in ("BEPS", "IBPS"):
        for bank in BANKS:
            assert w.cnaps.set_cap(system, bank, CAP).ok
    now = parse_time(WEDNESDAY)
    for i, (op, a, b, amount, minutes) in enumerate(seq):
        now += minutes * 60 * 1_000_000  # every command may cross session times
        w.clock.advance_to(now)
        if op == "ibps" and a != b:
            out = w.ibps(f"i{i}", a, b, amount)
            assert out.status in ("netted", "rejected")
            assert out.ok or code(out) == "AM14"
        elif op == "beps" and a != b:
            assert w.beps(f"b{i}", a, b, amount).status in ("netted", "queued")
        elif op == "cancel":
            queued = [r for q in w.net("BEPS").queues.values() for r in q]
            if queued:
                ref = queued[amount % len(queued)]
                sender = w.item("BEPS", ref).sender
                if b != sender:
                    assert not w.cnaps.cancel_net("BEPS", ref, b).ok
                    assert w.item("BEPS", ref).status == "queued"
                assert w.cnaps.cancel_net("BEPS", ref, sender).ok
                assert w.item("BEPS", ref).status == "cancelled"
        elif op == "return":
            netted = [(s, it.ref) for s, net in sorted(w.cnaps.net.items())
                      for it in net.items.values()
                      if it.status in ("netted", "settled") and it.original is None
                      and it.returned_by is None]
            if netted:
                system, ref = netted[amount % len(netted)]
                out = w.cnaps.return_net(system, ref, "AC01", "no such account")
                assert out.status in ("netted", "queued", "rejected")
        elif op == "tick":
            w.engine.tick()
        elif op == "fund":
            w.fund(a, amount)
        elif op == "pledge":
            w.cnaps.pledge(a, amount)
        elif op == "cap":
            system = "BEPS" if amount % 2 else "IBPS"
            out = w.cnaps.set_cap(system, a, amount)
            assert out.ok == (w.pos(system)[a] >= -amount)
        w.check()


def test_earmarked_cap_is_out_of_hvps_reach_and_pays_the_session() -> None:
    """圈存: the cap's amount is reserved in the settlement account; HVPS cannot spend it;
    the session settles out of it and earmarks the cap again."""
    from qingsuan.clock import VirtualClock, parse_time
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine
    from qingsuan.ledger import Transfer

    clock = VirtualClock(parse_time("2026-11-25T10:00"))
    cn = Cnaps()
    engine = Engine.open("memory:", clock, systems=[cn])
    engine.set_params({"hvps.lsm": "off"})
    cn.join("ICBC", "102100099996")
    cn.join("CCB", "105100000017")
    reg = engine.registry
    engine.submit_transfers([
        Transfer(1, reg.id("PBOC", "issued"), reg.id("PBOC", "settlement:ICBC"), 10_000),
        Transfer(2, reg.id("ICBC", "reserve_at_pboc"), reg.id("ICBC", "hvps_incoming"), 10_000)])
    assert not cn.set_cap("IBPS", "ICBC", 20_000, "earmark").ok  # more than it holds
    assert cn.set_cap("IBPS", "ICBC", 6_000, "earmark").ok
    assert cn.hvps.available_fen("ICBC") == 4_000  # HVPS sees only the free part
    assert cn.submit_hvps("h1", "ICBC", "CCB", 5_000).status == "queued"
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob", None)])
    assert cn.submit_net("IBPS", "i1", "credit", "ICBC", "CCB", 6_000,
                         "6222020200000000014", "6217000010000000029").status == "netted"
    clock.advance_to(parse_time("2026-11-25T11:00"))
    engine.tick()  # the 11:00 session settles 6,000 out of the earmark
    assert cn.ibps.sessions[-1]["status"] == "settled"
    assert cn.hvps._balance("ICBC") == 4_000 and cn.hvps._balance("CCB") == 6_000
    # only 4,000 left: the earmark (and so the cap) shrinks to what the funds cover
    assert cn.ibps.caps["ICBC"] == 4_000 and cn.ibps.earmarks["ICBC"][1] == 4_000
    assert cn.hvps.available_fen("ICBC") == 0
    assert cn.hvps.payments["h1"].status.value == "queued"
    engine.ledger.check_invariants()


def test_simulation_batch_nets_like_single_items_and_settles_in_the_session() -> None:
    """cnaps.net_batch (simulation mode) moves the positions as the per-item path does,
    and the next session settles them in central-bank money."""
    import numpy as np

    from qingsuan.clock import VirtualClock, parse_time
    from qingsuan.cnaps.netting import ACCEPTED, REJECTED
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine
    from qingsuan.ledger import Transfer

    clock = VirtualClock(parse_time("2026-11-25T10:00"))
    cn = Cnaps()
    engine = Engine.open("memory:", clock, systems=[cn])
    names = ["ICBC", "CCB", "BOC"]
    for name, code in zip(names, ("102100099996", "105100000017", "104100000004"),
                          strict=True):
        cn.join(name, code)
    reg = engine.registry
    for i, name in enumerate(names):
        engine.submit_transfers([
            Transfer(2 * i + 1, reg.id("PBOC", "issued"), reg.id("PBOC", f"settlement:{name}"),
                     1_000_000),
            Transfer(2 * i + 2, reg.id(name, "reserve_at_pboc"), reg.id(name, "hvps_incoming"),
                     1_000_000)])
    for name in names:
        cn.set_cap("IBPS", name, 500)
    sender = np.array([0, 0, 1, 2, 0])
    receiver = np.array([1, 2, 0, 0, 1])
    amount = np.array([300, 300, 100, 50, 100])
    out = cn.net_batch("IBPS", names, sender, receiver, amount)
    # ICBC: -300, then -600 would pass its cap of 500: rejected; +100, +50, then -100
    assert out.status.tolist() == [ACCEPTED, REJECTED, ACCEPTED, ACCEPTED, ACCEPTED]
    assert cn.ibps.positions == {"ICBC": -250, "CCB": 300, "BOC": -50}
    assert cn.ibps.metrics["ICBC"].rejections == {"AM14": 1}
    clock.advance_to(parse_time("2026-11-25T11:00"))
    engine.tick()
    assert [cn.hvps._balance(x) for x in names] == [999_750, 1_000_300, 999_950]
    assert cn.ibps.positions == {"ICBC": 0, "CCB": 0, "BOC": 0}
    engine.ledger.check_invariants()


# ------------------------------------------------- funds from a session release the HVPS queue


def hvps_status(w: World, ref: str) -> str:
    return w.cnaps.hvps.payments[ref].status.value


@pytest.mark.parametrize("system", ["IBPS", "BEPS"])
def test_session_credit_releases_a_single_queued_hvps_payment_at_once(system: str) -> None:
    """DOMAIN story 6: a queued payment settles the moment funds arrive, here by the 11:00
    net settlement session, not at the 17:15 clearing window."""
    w = World(balances={"CCB": 10_000})
    assert w.cnaps.submit_hvps("h", "ICBC", "BOC", 1000).status == "queued"
    send = w.ibps if system == "IBPS" else w.beps
    assert send("in", "CCB", "ICBC", 1000).ok
    w.tick_at("2026-11-25T10:59")
    assert hvps_status(w, "h") == "queued"
    w.tick_at("2026-11-25T11:00")
    assert w.net(system).sessions[-1]["status"] == "settled"
    pay = w.cnaps.hvps.payments["h"]
    assert (pay.status.value, pay.settled_us) == ("settled", parse_time("2026-11-25T11:00"))
    assert w.balances() == {"ICBC": 0, "CCB": 9000, "BOC": 1000}
    w.check()


def test_card_switch_session_credit_releases_the_hvps_queue() -> None:
    """The card switch's positions settle in HVPS at the CUPS session: the participant
    credited there has its queue tried at once."""
    w = World(balances={"CCB": 10_000}, params={"cups.sessions": "11:00"})
    assert w.cnaps.join("CUPS", "903100000001", ParticipantKind.CARD_SWITCH).ok
    assert w.cnaps.submit_hvps("h", "ICBC", "BOC", 700).status == "queued"
    w.net("CUPS").add_positions("cards:2026-11-24", {"ICBC": 700, "CCB": -700},
                                parse_time(WEDNESDAY))
    w.tick_at("2026-11-25T11:00")
    assert w.net("CUPS").sessions[-1]["status"] == "settled"
    assert hvps_status(w, "h") == "settled"
    assert w.balances() == {"ICBC": 0, "CCB": 9300, "BOC": 700}


def test_session_credit_releases_the_queue_by_priority_then_fifo() -> None:
    """The credited participant's queue goes in order: the more urgent level first, then
    FIFO within a level (a small payment waits behind a larger one that does not fit)."""
    w = World(balances={"CCB": 10_000})
    w.cnaps.submit_hvps("n-big", "ICBC", "BOC", 800)
    w.cnaps.submit_hvps("n-small", "ICBC", "BOC", 100)
    w.cnaps.submit_hvps("urgent", "ICBC", "BOC", 500, Priority.URGENT)
    assert w.ibps("in", "CCB", "ICBC", 600).ok
    w.tick_at("2026-11-25T11:00")
    assert {r: hvps_status(w, r) for r in ("urgent", "n-big", "n-small")} == {
        "urgent": "settled", "n-big": "queued", "n-small": "queued"}
    assert w.balances() == {"ICBC": 100, "CCB": 9400, "BOC": 500}
    w.check()


def test_released_earmark_releases_the_hvps_queue() -> None:
    """Funds freed from an earmark (圈存) are funds arriving for HVPS: the queue is tried."""
    w = World(balances={"ICBC": 10_000}, params={"hvps.lsm": "off"})
    assert w.cnaps.set_cap("IBPS", "ICBC", 6_000, "earmark").ok
    assert w.cnaps.submit_hvps("h", "ICBC", "CCB", 5_000).status == "queued"
    assert w.cnaps.set_cap("IBPS", "ICBC", 6_000, "collateral").ok
    assert hvps_status(w, "h") == "settled"
    assert w.balances() == {"ICBC": 5_000, "CCB": 5_000, "BOC": 0}
    w.check()


# ---------------------------------------------------------------------------- maintenance


@pytest.mark.parametrize("system", ["IBPS", "BEPS"])
def test_closed_system_refuses_new_items_dt01_with_nothing_moved(system: str) -> None:
    """维护窗口: while closed the system accepts no items (DT01, it names the parameter);
    the sender's position and every balance stay; it takes items again once reopened."""
    w = World(balances={"ICBC": 10_000}, params={f"{system.lower()}.closed": "on"})
    send = w.ibps if system == "IBPS" else w.beps
    out = send("x", "ICBC", "CCB", 1000)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "DT01")
    assert out.reason is not None and f"{system.lower()}.closed" in out.reason[1]
    assert w.pos(system) == ZERO and w.net(system).unsettled == []
    assert w.net(system).metrics["ICBC"].rejections == {"DT01": 1}
    w.engine.set_params({f"{system.lower()}.closed": "off"})
    assert send("y", "ICBC", "CCB", 1000).status == "netted"
    w.check()


def test_closed_system_runs_no_session_and_positions_carry() -> None:
    """A session that falls in maintenance does not run: its positions settle at the next
    session after the system reopens."""
    w = World(balances={"ICBC": 10_000})
    assert w.ibps("x", "ICBC", "CCB", 1000).status == "netted"
    assert w.beps("b", "ICBC", "BOC", 500).status == "netted"
    w.engine.set_params({"ibps.closed": "on"})
    w.tick_at("2026-11-25T11:00")
    assert w.net("IBPS").sessions == [] and w.item("IBPS", "x").status == "netted"
    assert w.item("BEPS", "b").status == "settled"  # BEPS is open: its session ran
    assert w.balances() == {"ICBC": 9500, "CCB": 0, "BOC": 500}
    w.engine.set_params({"ibps.closed": "off"})
    w.tick_at("2026-11-25T12:00")  # the 11:00 session is not run late
    assert w.net("IBPS").sessions == []
    w.tick_at("2026-11-25T13:00")
    assert w.item("IBPS", "x").status == "settled"
    assert w.balances() == {"ICBC": 8500, "CCB": 1000, "BOC": 500}
    w.check()


def test_closed_beps_nets_nothing_and_releases_its_queue_when_reopened() -> None:
    """Items queued behind a cap before the maintenance wait (nothing nets while closed,
    a cancel is refused too) and net once BEPS is open again."""
    w = World()
    assert w.cnaps.set_cap("BEPS", "ICBC", 1000).ok
    assert w.beps("a", "ICBC", "CCB", 800).status == "netted"
    assert w.beps("b", "ICBC", "CCB", 500).status == "queued"
    w.engine.set_params({"beps.closed": "on"})
    assert w.cnaps.set_cap("BEPS", "ICBC", 2000).ok  # the cap is set, nothing nets
    assert w.item("BEPS", "b").status == "queued"
    refused = w.cnaps.cancel_net("BEPS", "b", "ICBC")
    assert (refused.ok, code(refused)) == (False, "DT01")
    w.engine.set_params({"beps.closed": "off"})
    w.tick_at("2026-11-25T09:45")
    assert w.item("BEPS", "b").status == "netted"
    assert w.pos("BEPS") == {"ICBC": -1300, "CCB": 1300, "BOC": 0}
    w.check()


# ---------------------------------------------------------------------------- narration


def test_card_story_narrates_the_cut_off_and_the_cups_session() -> None:
    """The 23:00 tick is the card switch's cut-off (日切) and the 09:00 one the CUPS net
    settlement session in HVPS: each is named as what it is, not 'the HVPS clock'."""
    from rich.console import Console

    from qingsuan.sim.narrate import narrator

    console = Console(record=True, width=300)
    path = Path(str(resources.files("qingsuan") / "scenarios" / "cards.yaml"))
    run_scenario(load_scenario(path), store="memory:", on_step=narrator(console))
    text = console.export_text()
    assert "HVPS clock" not in text
    ticks = {line[:16]: line[17:] for line in text.splitlines()
             if line.startswith(("2026-11-25 23:00", "2026-11-26 09:00"))}
    assert ticks["2026-11-25 23:00"].startswith("the card switch's cut-off (日切)")
    assert "clearing day 2026-11-25" in ticks["2026-11-25 23:00"]
    assert ticks["2026-11-26 09:00"].startswith("the CUPS net settlement session in HVPS")
    assert "clearing day 2026-11-25" in ticks["2026-11-26 09:00"]


def test_admission_follows_statuses_and_parameters_after_earlier_items() -> None:
    """Participants that sent and received before are admitted again by the rules in
    force now: a receiver closed since, a kind's systems changed by a parameter, and
    changed back (the admission kept per parameters must not outlive them)."""
    from qingsuan.cnaps.participants import ParticipantStatus

    w = World(balances={"ICBC": 1000})
    assert w.beps("a1", "ICBC", "CCB", 100).status == "netted"
    w.engine.set_params({"cnaps.bank_systems": "HVPS,IBPS"})
    out = w.beps("a2", "ICBC", "CCB", 100)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AG01")
    assert out.reason is not None and out.reason[1].startswith("sender ICBC")
    assert w.ibps("a3", "ICBC", "CCB", 100).status == "netted"
    w.engine.set_params({"cnaps.bank_systems": "HVPS,BEPS,IBPS"})
    assert w.beps("a4", "ICBC", "CCB", 100).status == "netted"
    assert w.cnaps.set_status("CCB", ParticipantStatus.CLOSED).ok
    out = w.beps("a5", "ICBC", "CCB", 100)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AG01")
    assert out.reason is not None and out.reason[1] == "receiver CCB is closed"
    out = w.beps("a6", "ICBC", "NOBANK", 100)
    assert (out.ok, code(out)) == (False, "RC01")
    assert w.pos("BEPS") == {"ICBC": -200, "CCB": 200, "BOC": 0}
    w.check()


def test_a_suspended_participant_sends_nothing_and_a_closed_one_receives_nothing() -> None:
    """As in HVPS: a suspended sender is refused (AG01) in BEPS and IBPS with nothing
    moved; a closed receiver too; reactivated, the sender pays again."""
    from qingsuan.cnaps.participants import ParticipantStatus

    w = World(balances={"ICBC": 1000})
    assert w.cnaps.set_status("ICBC", ParticipantStatus.SUSPENDED).ok
    out = w.ibps("s1", "ICBC", "CCB", 100)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AG01")
    assert w.pos("IBPS") == {"ICBC": 0, "CCB": 0, "BOC": 0}
    assert w.cnaps.set_status("ICBC", ParticipantStatus.ACTIVE).ok
    assert w.ibps("s2", "ICBC", "CCB", 100).status == "netted"
    assert w.cnaps.set_status("BOC", ParticipantStatus.CLOSED).ok
    out = w.ibps("s3", "ICBC", "BOC", 100)
    assert (out.ok, out.status, code(out)) == (False, "rejected", "AG01")
    assert w.pos("IBPS") == {"ICBC": -100, "CCB": 100, "BOC": 0}
    w.check()
