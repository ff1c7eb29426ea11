"""CNAPS rules that cut across its systems: who may use which system (participant kinds),
and the bank code's check digit. Each asserted on statuses, reason codes and balances."""

from __future__ import annotations

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.ledger import Transfer

BANKS = {"ICBC": "102100099996", "CCB": "105100000017"}
PAYCO = "Z2000000001X"


class World:
    """Two banks and a payment institution (PAYCO), each with 10,000.00 CNY in its
    settlement account and one account its simulated responder knows; a Wednesday."""

    def __init__(self, params: dict[str, object] | None = None) -> None:
        self.clock = VirtualClock(parse_time("2026-11-25T09:30"))
        self.cnaps = Cnaps()
        self.engine = Engine.open("memory:", self.clock, systems=[self.cnaps])
        if params:
            self.engine.set_params(params)
        for name, code in BANKS.items():
            assert self.cnaps.join(name, code).ok
        assert self.cnaps.join("PAYCO", PAYCO, ParticipantKind.PAYMENT_INSTITUTION).ok
        self.names = [*BANKS, "PAYCO"]
        assert self.cnaps.register_accounts(
            [SimAccount(n, f"{n}-0001", f"customer of {n}", None) for n in self.names]).ok
        reg = self.engine.registry
        tid = 1
        for name in self.names:
            self.engine.submit_transfers([
                Transfer(tid, reg.id("PBOC", "issued"), reg.id("PBOC", f"settlement:{name}"),
                         1_000_000),
                Transfer(tid + 1, reg.id(name, "reserve_at_pboc"), reg.id(name, "hvps_incoming"),
                         1_000_000)])
            tid += 2

    def net(self, system: str, ref: str, sender: str, receiver: str) -> tuple[str, str | None]:
        kind = "ordinary_credit" if system == "BEPS" else "credit"
        out = self.cnaps.submit_net(system, ref, kind, sender, receiver, 1000,
                                    f"{sender}-0001", f"{receiver}-0001")
        return out.status, None if out.reason is None else out.reason[0]

    def hvps(self, ref: str, sender: str, receiver: str) -> tuple[str, str | None]:
        out = self.cnaps.submit_hvps(ref, sender, receiver, 1000)
        return out.status, None if out.reason is None else out.reason[0]

    def balances(self) -> dict[str, int]:
        return {n: self.cnaps.hvps._balance(n) for n in self.names}


# ---------------------------------------------------------------- who may use which system


def test_payment_institution_takes_part_in_ibps_only() -> None:
    """DOMAIN §3: non-bank payment institutions take part in IBPS only. HVPS and BEPS
    refuse a payment from or to one (AG01, naming the parameter); IBPS accepts it."""
    w = World()
    assert w.hvps("h-out", "PAYCO", "ICBC") == ("rejected", "AG01")
    assert w.hvps("h-in", "ICBC", "PAYCO") == ("rejected", "AG01")
    assert w.net("BEPS", "b-out", "PAYCO", "ICBC") == ("rejected", "AG01")
    assert w.net("BEPS", "b-in", "CCB", "PAYCO") == ("rejected", "AG01")
    reason = w.cnaps.hvps.payments["h-out"].reason
    assert reason is not None and "cnaps.payment_institution_systems" in reason[1]
    assert w.balances() == dict.fromkeys(w.names, 1_000_000)  # nothing moved
    assert w.cnaps.beps.positions == dict.fromkeys(w.names, 0)
    assert w.net("IBPS", "i-out", "PAYCO", "ICBC") == ("netted", None)
    assert w.net("IBPS", "i-in", "CCB", "PAYCO") == ("netted", None)
    assert w.cnaps.ibps.positions == {"ICBC": 1000, "CCB": -1000, "PAYCO": 0}
    assert w.hvps("bank", "ICBC", "CCB") == ("settled", None)  # banks use every system


def test_the_systems_of_each_kind_are_parameters() -> None:
    w = World(params={"cnaps.payment_institution_systems": "BEPS,IBPS",
                      "cnaps.bank_systems": "HVPS,IBPS"})
    assert w.net("BEPS", "pi", "PAYCO", "ICBC") == ("rejected", "AG01")  # the bank may not
    w.engine.set_params({"cnaps.bank_systems": "HVPS,BEPS,IBPS"})
    assert w.net("BEPS", "pi-2", "PAYCO", "ICBC") == ("netted", None)
    assert w.hvps("h", "PAYCO", "ICBC") == ("rejected", "AG01")


def test_card_switch_uses_cnaps_as_before() -> None:
    w = World()
    assert w.cnaps.join("CUPS", "903100000001", ParticipantKind.CARD_SWITCH).ok
    assert w.hvps("to-switch", "ICBC", "CUPS") == ("settled", None)
    assert w.hvps("from-switch", "CUPS", "CCB") == ("settled", None)
