"""Credit cards at the issuer and their repayment across banks (wallets/credit.py): the
statement's amount owed, minimum payment and due date; interest on what a statement left
unpaid after its due date; repayments within a bank and through IBPS; the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import ScenarioError, parse_scenario

DEBIT_ICBC = "6222020200000000014"
DEBIT_ABC = "6228480000000000034"
CREDIT_ABC = "6228480000000005124"

BASE = f"""
name: credit
start: 2026-11-25T08:00
run_until: 2026-11-30T12:00
params: {{"credit.due_days": "1"}}
participants:
  - {{name: ICBC,  code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,   code: "105100000017", settlement_balance: "1000000.00"}}
  - {{name: ABC,   code: "103100000026", settlement_balance: "1000000.00"}}
  - {{name: PAYCO, code: "Z2000000001X", kind: payment_institution}}
customers:
  - {{id: li, bank: ICBC, account: "9222020200000000014", balance: "5000.00", name: "Li"}}
  - {{id: li-abc, bank: ABC, account: "6228480000000000034", balance: "2000.00", name: "Li"}}
  - {{id: li-cc, bank: ABC, account: "6228480000000000512", credit_limit: "1000.00",
      name: "Li"}}
  - {{id: pool, bank: PAYCO, account: "880000000001", name: "PAYCO funds"}}
  - {{id: shop, bank: CCB, account: "6217000010000000037", name: "Shop",
      merchant: {{mid: "105290058120002", mcc: "5812", mdr: "0.0060"}}}}
cards:
  - {{pan: "{DEBIT_ICBC}", account: li}}
  - {{pan: "{DEBIT_ABC}", account: li-abc}}
  - {{pan: "{CREDIT_ABC}", account: li-cc, kind: credit}}
terminals:
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: shop}}
wallets:
  institutions:
    - {{participant: PAYCO, collection_account: pool}}
  users:
    - {{phone: "13800000001", name: "Li", institution: PAYCO}}
events:
"""


def ev(at: str, do: str, **fields: str) -> str:
    body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items())
    return f"  - {{at: 2026-11-{at}, do: {do}, {body}}}\n"


BIND = "".join(ev(f"25T08:0{i}", "bind_card", id=f"b{i}", user="13800000001", card=card,
                  name="Li") for i, card in enumerate((DEBIT_ICBC, DEBIT_ABC, CREDIT_ABC)))
SPEND = ev("25T09:00", "qr_pay", id="spend", user="13800000001", card=CREDIT_ABC,
           terminal="POS00001", amount="1000.00")


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def run(events: str) -> dict[str, Any]:
    out = run_scenario(parse_scenario(BASE + BIND + events, "c.yaml"), store="memory:")
    assert all(out["checks"].values()), out["checks"]
    return out


def rec(out: dict[str, Any], eid: str) -> dict[str, Any]:
    found: dict[str, Any] = out["wallets"]["records"][eid]
    return found


def test_unpaid_after_the_due_date_bears_interest_at_the_next_statement() -> None:
    out = run(SPEND
              + ev("25T10:00", "credit_statement", id="s1", card=CREDIT_ABC)
              + ev("25T11:00", "card_repayment", id="r1", user="13800000001",
                   from_card=DEBIT_ICBC, card=CREDIT_ABC, amount="100.00")
              + ev("28T10:00", "credit_statement", id="s2", card=CREDIT_ABC))
    s1, s2 = out["wallets"]["statements"]["622848*********5124"]
    assert (s1["owed"], s1["minimum"], s1["due"], s1["repaid"], s1["minimum_met"]) == \
        ("1000.00", "100.00", "2026-11-26T10:00:00+08:00", "100.00", True)
    # 900.00 unpaid from the due date (26th 10:00) to the 28th 10:00: 2 days at 0.05%
    assert s2["interest"] == "0.90" and s2["owed"] == "900.90"
    assert out["balances"]["customers"]["li-cc"] == "-900.90"
    assert out["payments"]["r1"]["system"] == "IBPS"


def test_a_repayment_within_the_issuer_is_booked_at_once() -> None:
    out = run(SPEND + ev("25T10:00", "card_repayment", id="r", user="13800000001",
                         from_card=DEBIT_ABC, card=CREDIT_ABC, amount="1000.00"))
    assert rec(out, "r")["status"] == "done" and "r" not in out["payments"]
    assert out["balances"]["customers"]["li-cc"] == "0.00"
    assert out["balances"]["customers"]["li-abc"] == "1000.00"


def test_repayment_refusals_name_their_reason() -> None:
    out = run(SPEND
              + ev("25T10:00", "card_repayment", id="much", user="13800000001",
                   from_card=DEBIT_ICBC, card=CREDIT_ABC, amount="1000.01")
              + ev("25T10:01", "card_repayment", id="debit", user="13800000001",
                   from_card=DEBIT_ICBC, card=DEBIT_ABC, amount="1.00")
              + ev("25T10:02", "credit_statement", id="stmt", card=DEBIT_ABC)
              + ev("25T10:03", "unbind_card", id="u", user="13800000001", card=DEBIT_ICBC)
              + ev("25T10:04", "card_repayment", id="unbound", user="13800000001",
                   from_card=DEBIT_ICBC, card=CREDIT_ABC, amount="1.00")
              + ev("25T10:05", "card_repayment", id="poor", user="13800000001",
                   from_card=DEBIT_ABC, card=CREDIT_ABC, amount="1000.00")
              + ev("25T10:05", "card_repayment", id="poor2", user="13800000001",
                   from_card=DEBIT_ABC, card=CREDIT_ABC, amount="1.00"))
    codes = {k: (rec(out, k)["reason"] or {}).get("code")
             for k in ("much", "debit", "stmt", "unbound", "poor", "poor2")}
    assert codes == {"much": "REPAYMENT_TOO_LARGE", "debit": "NOT_CREDIT_CARD",
                     "stmt": "NOT_CREDIT_CARD", "unbound": "NOT_BOUND", "poor": None,
                     "poor2": "REPAYMENT_TOO_LARGE"}  # nothing is owed any more
    assert out["balances"]["customers"]["li-cc"] == "0.00"


def test_a_repayment_event_names_both_cards() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(BASE + ev("25T10:00", "card_repayment", id="r", user="13800000001",
                                 from_card="12", card=CREDIT_ABC, amount="1.00"), "c.yaml")
    assert "from_card '12' is not valid" in str(err.value)
