"""CNAPS rules that cut across its systems: who may use which system (participant kinds),
and the bank code's check digit. Each asserted on statuses, reason codes and balances."""

from __future__ import annotations

import pytest

from qingsuan.clock import VirtualClock, parse_time
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.cnaps.participants import ParticipantKind, check_code, check_digit
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


# ---------------------------------------------------------------- the bank code's check digit

#: Published CNAPS codes (head offices and clearing centres) of banks of every category.
PUBLISHED = {
    "102100099996": "ICBC", "103100000026": "ABC", "104100000004": "BOC",
    "105100000017": "CCB", "301290000007": "BoCom", "302100011000": "CITIC",
    "303100000006": "CEB", "304100040000": "Hua Xia", "305100000013": "CMBC",
    "306581000003": "CGB", "307584007998": "Ping An", "308584000013": "CMB",
    "309391000011": "CIB", "310290000013": "SPDB", "313100000013": "Bank of Beijing",
    "313290000017": "Bank of Shanghai", "313301099999": "Bank of Jiangsu",
    "314581000011": "Guangzhou Rural Commercial Bank", "316331000018": "CZB",
    "402331000007": "Zhejiang Rural Credit Union", "402584009991": "Shenzhen RCB",
    "403100000004": "PSBC", "102584000002": "ICBC Shenzhen",
}


@pytest.mark.parametrize("code", sorted(PUBLISHED))
def test_published_bank_codes_have_a_valid_check_digit(code: str) -> None:
    assert check_digit(code[:11]) == code[11]
    assert check_code(code, ParticipantKind.DIRECT_BANK) is None
    assert check_code(code, ParticipantKind.INDIRECT_BANK) is None


@pytest.mark.parametrize("code", ["102100099996", "402331000007", "313100000013"])
def test_every_single_digit_error_is_caught(code: str) -> None:
    for position in range(12):
        for digit in "0123456789":
            if digit == code[position]:
                continue
            wrong = code[:position] + digit + code[position + 1:]
            problem = check_code(wrong, ParticipantKind.DIRECT_BANK)
            assert problem is not None and "check digit" in problem, wrong


def test_join_refuses_a_bad_check_digit_and_logs_nothing() -> None:
    cn = Cnaps()
    engine = Engine.open("memory:", VirtualClock(parse_time("2026-11-25T09:30")), systems=[cn])
    logged = engine.applied_seq
    out = cn.join("BANKB", "313200000029")
    assert (out.ok, out.reason is not None and out.reason[0]) == (False, "RC01")
    assert out.reason is not None and "check digit is 9, not 7" in out.reason[1]
    assert "BANKB" not in cn.directory and engine.applied_seq == logged
    assert cn.join("BANKB", "313200000027").ok


def test_card_switch_and_payment_institution_codes_keep_their_rules() -> None:
    """The card switch (category 903) and payment institutions have codes of their own,
    not checked by the bank codes' check digit."""
    assert check_code("903100000001", ParticipantKind.CARD_SWITCH) is None
    assert check_code("Z2000000001X", ParticipantKind.PAYMENT_INSTITUTION) is None
    assert check_code("Z2000000001x", ParticipantKind.PAYMENT_INSTITUTION) is not None
    assert check_code("10210009999X", ParticipantKind.DIRECT_BANK) is not None
