"""The payment institutions and the app (wallets/): every flow end to end, with money
conserved, books balanced and the reserve covering the wallets; each refusal with its
reason code; replay rebuilds the state exactly; a world without wallets is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qingsuan.engine import replay
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario, parse_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1] / "src" / "qingsuan" / "scenarios"
ALICE_CARD = "6222020200000000014"   # ICBC, Alice Wang
BOB_CARD = "6217000010000000094"     # CCB, Bob Zhang
CAROL_CARD = "6228480000000000034"   # ABC, Carol (a PAYCO2 user)

BASE = f"""
name: wallet-test
start: 2026-11-25T08:00
run_until: 2026-11-26T12:00
params: {{PARAMS}}
participants:
  - {{name: ICBC,   code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,    code: "105100000017", settlement_balance: "1000000.00"}}
  - {{name: ABC,    code: "103100000026", settlement_balance: "1000000.00"}}
  - {{name: PAYCO,  code: "Z2000000001X", kind: payment_institution, settlement_balance: "1000.00"}}
  - {{name: PAYCO2, code: "Z2000000002X", kind: payment_institution}}
customers:
  - {{id: alice, bank: ICBC, account: "9222020200000000014", balance: "5000.00",
      name: "Alice Wang"}}
  - {{id: bob,   bank: CCB,  account: "6217000010000000029", balance: "800.00", name: "Bob Zhang"}}
  - {{id: carol, bank: ABC,  account: "6228480000000000034", balance: "300.00", name: "Carol Li"}}
  - {{id: pool,  bank: PAYCO, account: "880000000001", name: "PAYCO funds"}}
  - {{id: pool2, bank: PAYCO2, account: "880000000002", name: "PAYCO2 funds"}}
  - {{id: city,  bank: ABC, account: "6228480000000000999", balance: "1000.00", name: "City"}}
  - {{id: shop,  bank: CCB, account: "6217000010000000037", name: "Shop",
      merchant: {{mid: "105290058120002", mcc: "5812", mdr: "0.0060"}}}}
  - {{id: mall,  bank: ABC, account: "6228480000000000111", name: "Mall",
      merchant: {{mid: "103290058120009", mcc: "5311", mdr: "0.0050"}}}}
cards:
  - {{pan: "{ALICE_CARD}", account: alice, kind: debit, pin: "123456"}}
  - {{pan: "{BOB_CARD}", account: bob, kind: debit, pin: "654321"}}
  - {{pan: "{CAROL_CARD}", account: carol, kind: debit, pin: "111111"}}
terminals:
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: shop}}
  - {{id: "POS00002", kind: pos, bank: ABC, merchant: mall}}
wallets:
  institutions:
    - {{participant: PAYCO, collection_account: pool}}
    - {{participant: PAYCO2, collection_account: pool2}}
  users:
    - {{phone: "13800000001", name: "Alice Wang", institution: PAYCO}}
    - {{phone: "13800000002", name: "Bob Zhang", institution: PAYCO}}
    - {{phone: "13800000003", name: "Carol Li", institution: PAYCO2}}
  campaigns:
    - {{id: spring, sponsor: city, budget: "{{BUDGET}}", discount: "20.00", threshold: "100.00",
       per_user: {{PER_USER}}, mccs: ["5812"], claim_from: 2026-11-25T09:00,
       claim_until: 2026-11-25T18:00, valid_from: 2026-11-25T09:00,
       valid_until: 2026-11-25T20:00}}
events:
  - {{at: 2026-11-25T08:30, do: bind_card, id: b-alice, user: "13800000001",
      card: "{ALICE_CARD}", name: "Alice Wang"}}
  - {{at: 2026-11-25T08:31, do: bind_card, id: b-bob, user: "13800000002",
      card: "{BOB_CARD}", name: "Bob Zhang"}}
  - {{at: 2026-11-25T08:32, do: bind_card, id: b-carol, user: "13800000003",
      card: "{CAROL_CARD}", name: "Carol Li"}}
"""


def world(events: str = "", params: str = "{}", budget: str = "100.00", per_user: int = 1,
          ) -> Any:
    text = BASE.replace("{PARAMS}", params).replace("{BUDGET}", budget).replace(
        "{PER_USER}", str(per_user))
    return parse_scenario(text + events, "w.yaml")


def run(events: str = "", **kw: Any) -> dict[str, Any]:
    out = run_scenario(world(events, **kw), store="memory:")
    assert all(out["checks"].values()), out["checks"]
    return out


def rec(out: dict[str, Any], eid: str) -> dict[str, Any]:
    found: dict[str, Any] = out["wallets"]["records"][eid]
    return found


def code(out: dict[str, Any], eid: str) -> str | None:
    reason = rec(out, eid)["reason"]
    return None if reason is None else str(reason["code"])


def wallet(out: dict[str, Any], phone: str) -> str:
    return str(out["wallets"]["users"][phone]["wallet"])


def ev(at: str, do: str, **fields: str) -> str:
    body = ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
    return f"  - {{at: 2026-11-25T{at}, do: {do}, {body}}}\n"


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


# ---------------------------------------------------------------------- the story

def test_the_built_in_story_runs_with_every_check_passing() -> None:
    out = run_scenario(load_scenario(ROOT / "wallet.yaml"), store="memory:")
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True,
                             "reserve_covers_wallets": True}
    customers = out["balances"]["customers"]
    # 5000 - 500 top-up - 36 coffee - 300 repaid to the credit card - 9 for two metro
    # rides; 800 - 130 (the dinner less the voucher) + 200 withdrawn; 600 spent on
    # credit, 300 repaid
    assert customers["lilei"] == "4155.00" and customers["lilei-ccb"] == "870.00"
    assert customers["lilei-cc"] == "-300.00"
    # the restaurant gets the full 150.00, less its MDR on the 130.00 the card paid, and
    # the 600.00 banquet less its MDR
    assert customers["noodles"] == "745.62"
    assert out["wallets"]["users"]["13800000001"]["wallet"] == "200.00"
    assert out["wallets"]["users"]["13900000002"]["wallet"] == "70.00"  # 30.00 coffee
    assert customers["cafe"] == "65.86"  # 36.00 by card less its MDR, 30.00 from a wallet
    assert customers["metro"] == "8.98"  # the rides, cleared the next day, less its MDR
    assert customers["city"] == "800000.00"  # the café campaign's 50.00 came back
    refusals = {k: v["reason"]["code"] for k, v in out["wallets"]["records"].items()
                if v["status"] == "refused"}
    assert refusals == {"bind-wrong-name": "NAME_MISMATCH", "bind-unknown": "UNKNOWN_CARD",
                        "bind-closed": "ACCOUNT_CLOSED", "claim-2": "CLAIM_LIMIT",
                        "coffee-again": "CODE_USED", "coffee-late": "CODE_EXPIRED",
                        "repay-too-much": "REPAYMENT_TOO_LARGE", "ride-far": "RIDE_LIMIT"}
    spring = out["wallets"]["campaigns"]["city-spring"]
    assert (spring["used"], spring["spend_driven"], spring["discounts_paid"],
            spring["leverage"]) == (1, "150.00", "20.00", "7.50")
    evening = rec(out, "balances-evening")["cards"]
    assert [(v["card"], v["balance"]) for v in evening] == [
        ("622202*********0014", "4464.00"), ("621700*********0094", "870.00"),
        ("622848*********5124", "0.00")]  # in the order bound
    (statement,) = out["wallets"]["statements"]["622848*********5124"]
    assert (statement["owed"], statement["minimum"], statement["due"], statement["repaid"]) \
        == ("600.00", "60.00", "2026-12-15T20:00:00+08:00", "300.00")
    assert out["payments"]["repay"]["system"] == "IBPS"


def test_replay_of_the_log_rebuilds_the_same_state(tmp_path: Path) -> None:
    store = str(tmp_path / "w.db")
    out = run_scenario(load_scenario(ROOT / "wallet.yaml"), store=store)
    assert replay(store, world_systems()).state_hash().hex() == out["log"]["state_hash"]
    # reopened from its snapshot, the world reports the same outcome, byte for byte
    again = run_scenario(load_scenario(ROOT / "wallet.yaml"), store=store)
    assert json.dumps(again, ensure_ascii=False) == json.dumps(out, ensure_ascii=False)


def test_a_world_without_wallets_keeps_no_wallet_state_and_reports_none() -> None:
    out = run_scenario(load_scenario(ROOT / "cards.yaml"), store="memory:")
    assert "wallets" not in out and "reserve_covers_wallets" not in out["checks"]
    builder = next(s for s in world_systems() if s.prefix == "world")
    assert builder.dump_state() == b""


def test_snapshots_keep_the_parts_stores_written_before_wallets_have() -> None:
    # a store written before wallets existed holds exactly these parts in its snapshots:
    # the engine refuses a snapshot missing a system's part, so wallets add none
    from qingsuan.clock import VirtualClock
    from qingsuan.world import World

    world = World.open("memory:", VirtualClock(0))
    state = world.engine._dump_state()
    world.close()
    header = json.loads(state[len(b"QSNAP2\n") + 8:].split(b"}", 1)[0] + b"}")
    assert set(header) == {"ledger", "registry", "params", "engine", "system:banks",
                           "system:cards", "system:cnaps", "system:world"}
    assert header["system:world"] == 0


# ---------------------------------------------------------------------- binding

def test_binding_refusals_name_their_reason() -> None:
    out = run(ev("09:00", "bind_card", id="again", user="13800000001", card=ALICE_CARD,
                 name="Alice Wang")
              + ev("09:01", "bind_card", id="other", user="13800000002", card=ALICE_CARD,
                   name="Alice Wang")
              + ev("09:02", "unbind_card", id="unbind", user="13800000002", card=ALICE_CARD)
              + ev("09:02:30", "unbind_card", id="free", user="13800000002", card=BOB_CARD)
              + ev("09:03", "bind_card", id="second", user="13800000001", card=BOB_CARD,
                   name="Bob Zhang"),
              params='{"wallets.max_cards": "1"}')
    assert code(out, "again") == "ALREADY_BOUND"
    assert code(out, "other") == "ALREADY_BOUND"
    assert code(out, "unbind") == "NOT_BOUND"
    assert code(out, "second") == "TOO_MANY_CARDS"
    assert "Bob" not in json.dumps(rec(out, "second"))  # another's name is never told


def test_the_balances_view_asks_the_issuer_each_time() -> None:
    out = run(ev("09:00", "card_balances", id="q1", user="13800000001")
              + ev("09:30", "qr_pay", id="pay", user="13800000001", card=ALICE_CARD,
                   terminal="POS00001", amount="40.00")
              + ev("10:00", "card_balances", id="q2", user="13800000001"))
    masked = out["wallets"]["users"]["13800000001"]["cards"][0]
    assert ALICE_CARD not in json.dumps(out)  # only the masked number anywhere
    assert rec(out, "q1")["cards"] == [{"card": masked, "response_code": "00",
                                        "balance": "5000.00"}]
    assert rec(out, "q2")["cards"][0]["balance"] == "4960.00"


# ---------------------------------------------------------------------- funds

def test_top_up_transfer_and_withdrawal_move_money_through_ibps() -> None:
    out = run(ev("09:00", "wallet_top_up", id="up", user="13800000001", card=ALICE_CARD,
                 amount="300.00")
              + ev("09:10", "wallet_transfer", id="tr", **{"from": "13800000001",
                                                           "to": "13800000002"},
                   amount="120.00")
              + ev("09:20", "wallet_withdrawal", id="out", user="13800000002", card=BOB_CARD,
                   amount="100.00"))
    assert out["payments"]["up"]["system"] == "IBPS"
    assert [rec(out, k)["status"] for k in ("up", "tr", "out")] == ["done"] * 3
    assert wallet(out, "13800000001") == "180.00" and wallet(out, "13800000002") == "20.00"
    customers = out["balances"]["customers"]
    assert customers["alice"] == "4700.00" and customers["bob"] == "900.00"
    assert customers["pool"] == "0.00"
    # PAYCO's reserve: its 1000.00 plus the 200.00 its customers still hold
    assert out["wallets"]["institutions"]["PAYCO"] == {"reserve": "1200.00",
                                                      "customer_funds": "200.00"}


def test_wallet_refusals_change_nothing() -> None:
    out = run(ev("09:00", "wallet_top_up", id="up", user="13800000001", card=ALICE_CARD,
                 amount="100.00")
              + ev("09:01", "wallet_withdrawal", id="over", user="13800000001",
                   card=ALICE_CARD, amount="100.01")
              + ev("09:02", "wallet_transfer", id="far", **{"from": "13800000001",
                                                            "to": "13800000003"},
                   amount="10.00")
              + ev("09:03", "wallet_transfer", id="much", **{"from": "13800000001",
                                                             "to": "13800000002"},
                   amount="100.01")
              + ev("09:04", "wallet_top_up", id="limit", user="13800000001",
                   card=ALICE_CARD, amount="300.01")
              + ev("09:05", "wallet_top_up", id="unbound", user="13800000001", card=BOB_CARD,
                   amount="1.00")
              + ev("09:06", "wallet_top_up", id="poor", user="13800000003", card=CAROL_CARD,
                   amount="300.01"),
              params='{"wallets.balance_limit": "400.00"}')
    assert code(out, "over") == "INSUFFICIENT_WALLET"
    assert code(out, "far") == "OTHER_INSTITUTION"
    assert code(out, "much") == "INSUFFICIENT_WALLET"
    assert code(out, "limit") == "WALLET_LIMIT"
    assert code(out, "unbound") == "NOT_BOUND"
    # the card's bank refuses the quick-pay debit: the top-up fails with IBPS's reason
    assert rec(out, "poor")["status"] == "failed" and code(out, "poor") == "AM04"
    assert wallet(out, "13800000001") == "100.00" and wallet(out, "13800000003") == "0.00"
    assert out["balances"]["customers"]["alice"] == "4900.00"


def test_a_withdrawal_ibps_refuses_goes_back_to_the_wallet() -> None:
    out = run(ev("09:00", "wallet_top_up", id="up", user="13800000001", card=ALICE_CARD,
                 amount="100.00")
              + "  - {at: 2026-11-25T09:01, do: set_param, name: ibps.closed, value: \"on\"}\n"
              + ev("09:02", "wallet_withdrawal", id="out", user="13800000001",
                   card=ALICE_CARD, amount="60.00"))
    assert rec(out, "out")["status"] == "failed" and code(out, "out") == "DT01"
    assert wallet(out, "13800000001") == "100.00"


# ---------------------------------------------------------------------- QR codes

def test_payment_codes_pay_once_within_their_validity() -> None:
    out = run(ev("09:00", "payment_code", id="c1", user="13800000001", card=ALICE_CARD)
              + ev("09:00:29", "qr_pay", id="p1", code="c1", terminal="POS00001",
                   amount="50.00")
              + ev("09:00:29", "qr_pay", id="p2", code="c1", terminal="POS00001",
                   amount="50.00")
              + ev("09:01", "payment_code", id="c2", user="13800000001", card=ALICE_CARD)
              + ev("09:01:31", "qr_pay", id="p3", code="c2", terminal="POS00001",
                   amount="50.00")
              + ev("09:02", "payment_code", id="c3", user="13800000001", card=ALICE_CARD)
              + ev("09:02:10", "unbind_card", id="u", user="13800000001", card=ALICE_CARD)
              + ev("09:02:20", "qr_pay", id="p4", code="c3", terminal="POS00001",
                   amount="50.00"),
              params='{"wallets.payment_code_validity": "30"}')
    assert rec(out, "p1")["status"] == "done"
    assert out["payments"]["p1"]["status"] == "settled"
    assert code(out, "p2") == "CODE_USED"
    assert code(out, "p3") == "CODE_EXPIRED"
    assert code(out, "p4") == "NOT_BOUND"
    assert out["balances"]["customers"]["alice"] == "4950.00"
    assert out["balances"]["customers"]["shop"] == "49.70"  # 50.00 less 0.6% MDR


def test_a_purchase_the_issuer_declines_is_declined_with_its_code() -> None:
    out = run(ev("09:00", "qr_pay", id="big", user="13800000003", card=CAROL_CARD,
                 terminal="POS00001", amount="300.01"))
    assert rec(out, "big")["status"] == "declined"
    assert out["payments"]["big"]["response_code"] == "51"


# ---------------------------------------------------------------------- vouchers

def test_a_voucher_is_paid_by_the_sponsor_and_the_merchant_gets_the_full_price() -> None:
    out = run(ev("09:00", "claim_voucher", id="v", user="13800000002", campaign="spring")
              + ev("10:00", "qr_pay", id="pay", user="13800000002", card=BOB_CARD,
                   terminal="POS00001", amount="100.00", voucher="spring"))
    assert rec(out, "pay")["card_paid"] == "80.00" and rec(out, "pay")["discount"] == "20.00"
    customers = out["balances"]["customers"]
    assert customers["bob"] == "720.00"
    assert customers["shop"] == "99.52"  # 80.00 - 0.48 MDR + 20.00 from the city
    # the budget was set aside; the campaign closed by itself at 20:00:01 and gave back
    # what its one discount did not use
    assert customers["city"] == "980.00"
    assert out["payments"]["pay.subsidy"]["system"] == "IBPS"
    spring = out["wallets"]["campaigns"]["spring"]
    assert (spring["fund_left"], spring["returned"]) == ("0.00", "80.00")


def test_voucher_refusals_name_their_reason() -> None:
    out = run(ev("08:59", "claim_voucher", id="early", user="13800000001", campaign="spring")
              + ev("09:00", "claim_voucher", id="v1", user="13800000001", campaign="spring")
              + ev("09:01", "qr_pay", id="mall", user="13800000001", card=ALICE_CARD,
                   terminal="POS00002", amount="100.00", voucher="spring")
              + ev("09:02", "qr_pay", id="small", user="13800000001", card=ALICE_CARD,
                   terminal="POS00001", amount="99.99", voucher="spring")
              + ev("09:03", "qr_pay", id="none", user="13800000002", card=BOB_CARD,
                   terminal="POS00001", amount="100.00", voucher="spring")
              + ev("20:01", "qr_pay", id="late", user="13800000001", card=ALICE_CARD,
                   terminal="POS00001", amount="100.00", voucher="spring"))
    assert code(out, "early") == "CLAIM_WINDOW"
    assert code(out, "mall") == "VOUCHER_MERCHANT"
    assert code(out, "small") == "VOUCHER_THRESHOLD"
    assert code(out, "none") == "NO_VOUCHER"
    assert code(out, "late") == "VOUCHER_WINDOW"
    assert out["balances"]["customers"]["alice"] == "5000.00"  # nothing was paid


def test_the_budget_is_never_overspent_by_many_claims() -> None:
    # 3 users claiming up to 4 each against a budget of 5 discounts: 5 claims succeed
    events = "".join(ev(f"09:{i:02d}", "claim_voucher", id=f"c{i}",
                        user=f"1380000000{1 + i % 3}", campaign="spring") for i in range(12))
    out = run(events, budget="100.00", per_user=4)
    codes = [code(out, f"c{i}") for i in range(12)]
    assert codes.count(None) == 5 and set(codes) == {None, "BUDGET_EXHAUSTED"}
    spring = out["wallets"]["campaigns"]["spring"]
    assert spring["claimed"] == 5


def test_a_large_qr_payment_needs_the_card_pin() -> None:
    out = run(ev("09:00", "qr_pay", id="nopin", user="13800000001", card=ALICE_CARD,
                 terminal="POS00001", amount="1500.00")
              + ev("09:01", "qr_pay", id="pin", user="13800000001", card=ALICE_CARD,
                   terminal="POS00001", amount="1500.00", pin="123456"))
    assert out["payments"]["nopin"]["response_code"] == "55"
    assert rec(out, "pin")["status"] == "done"
    assert out["balances"]["customers"]["alice"] == "3500.00"
    assert "123456" not in json.dumps(out)


def test_a_subsidy_ibps_refuses_stays_in_the_fund_and_the_record_says_why() -> None:
    out = run(ev("09:00", "claim_voucher", id="v", user="13800000002", campaign="spring")
              + "  - {at: 2026-11-25T09:30, do: set_param, name: ibps.closed, value: \"on\"}\n"
              + ev("10:00", "qr_pay", id="pay", user="13800000002", card=BOB_CARD,
                   terminal="POS00001", amount="100.00", voucher="spring"))
    assert rec(out, "pay")["subsidy_failed"]["code"] == "DT01"
    spring = out["wallets"]["campaigns"]["spring"]
    # the discount stayed in the fund: all of it went back to the city at the close
    assert (spring["used"], spring["discounts_paid"], spring["returned"]) == \
        (1, "0.00", "100.00")
    assert out["balances"]["customers"]["shop"] == "79.52"
