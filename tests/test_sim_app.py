"""The app's generated day in ``qingsuan simulate`` (sim/sim_app.py, the app: block): the
same seed gives the same summary and tables; the voucher campaign never spends beyond its
budget; money is conserved, the books balance and the reserve covers the wallets after a
day of app traffic; every parameter's bad value is refused naming its field and line; the
built-in app-day scenario runs."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from qingsuan.cli import app as cli
from qingsuan.clock import VirtualClock
from qingsuan.money import format_fen
from qingsuan.sim import report
from qingsuan.sim.scenario import ScenarioError, load_scenario, parse_scenario
from qingsuan.sim.sim_app import AppPlan, app_day, with_app_world
from qingsuan.sim.simulate import Options, Result, simulate
from qingsuan.wallets import checks
from qingsuan.world import World

APP_DAY = Path(str(resources.files("qingsuan") / "scenarios" / "app-day.yaml"))

WORLD = """
name: t-app
start: 2026-11-25T00:00
run_until: 2026-11-26T00:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}
  - {name: CCB, code: "105100000017", settlement_balance: "1000000.00"}
  - {name: PAYCO, code: "Z2000000001X", kind: payment_institution,
     settlement_balance: "100000.00"}
customers:
  - {id: pool, bank: PAYCO, account: "880000000001", name: "PAYCO funds"}
  - {id: city, bank: CCB, account: "6217000010000000999", balance: "100000.00", name: City}
  - {id: noodles, bank: CCB, account: "6217000010000000037", name: "Noodle House",
     merchant: {mid: "105290058120002", mcc: "5812", mdr: "0.0060"}}
terminals:
  - {id: "POS00001", kind: pos, bank: CCB, merchant: noodles}
wallets:
  institutions:
    - {participant: PAYCO, collection_account: pool}
  users: []
  campaigns:
    - {id: dinner, sponsor: city, budget: "%(budget)s", discount: "20.00",
       threshold: "100.00", mccs: ["5812"], claim_from: 2026-11-25T09:00,
       claim_until: 2026-11-25T20:00, valid_from: 2026-11-25T09:00,
       valid_until: 2026-12-31T23:59}
"""
APP = """
app:
  users: 60
  merchants: 4
  merchant_mccs: ["5812"]
  payments: 3
  payment_mean: "120.00"
  top_ups: 0.5
  withdrawals: 0.2
  repayments: 0.5
  campaign: dinner
  claimers: 0.8
  claim_minutes: 20
"""


def _scenario(budget: str = "400.00", app: str = APP) -> str:
    return WORLD % {"budget": budget} + app


def _run(text: str, seed: int = 0) -> Result:
    return simulate(parse_scenario(text), Options(seed=seed))


@pytest.fixture(scope="module")
def day() -> Result:
    return _run(_scenario())


def test_same_seed_same_summary_and_tables_another_seed_other_events(tmp_path: Path
                                                                     ) -> None:
    a, b = _run(_scenario(), seed=5), _run(_scenario(), seed=5)
    a.write(tmp_path / "a", report=False)
    b.write(tmp_path / "b", report=False)
    for name in ("summary.json", "app.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = _run(_scenario(), seed=6).summary["app"]
    assert other["events"] != a.summary["app"]["events"]


def test_a_day_of_app_traffic_conserves_money_and_the_reserve_covers_the_wallets(
        day: Result) -> None:
    s = day.summary
    assert s["checks"] == {"books_balanced": True, "money_conserved": True,
                           "mirrors_match": True, "suspense_explained": True,
                           "reserve_covers_wallets": True, "campaign_within_budget": True}
    a = s["app"]
    assert a["users"] == 60 and a["merchants"] == 5
    assert a["cards_bound"] == 60 + 18 and a["bind_refused"] == {}  # 30% hold a credit card
    events = a["events"]
    # both ways of QR payment, from the wallet, top-ups, withdrawals and repayments ran
    for kind in ("qr_pay_merchant_code", "qr_pay_payment_code", "wallet_pay",
                 "wallet_top_up", "wallet_withdrawal", "card_repayment"):
        assert events[kind]["done_items"] > 0, kind
    pay = a["payments"]
    assert pay["items"] == sum(events[k]["items"] for k in
                               ("qr_pay_merchant_code", "qr_pay_payment_code", "wallet_pay"))
    assert pay["items"] == 3 * 60  # 3 a day for each of the 60 users with a card
    assert pay["items"] - pay["approved_items"] == sum(pay["declines"].values())
    for name, inst in a["institutions"].items():
        assert inst["reserve_fen"] >= inst["customer_funds_fen"], name


def test_the_campaign_never_overspends_when_claims_outrun_the_budget(day: Result) -> None:
    c = day.summary["app"]["campaign"]
    assert c["budget_fen"] == 40_000 and c["discount_fen"] == 2_000
    assert c["claims"] == 48  # 80% of the users
    assert c["claimed"] == 20 and c["claim_refused"] == {"BUDGET_EXHAUSTED": 28}
    assert c["committed_fen"] == c["budget_fen"] and c["budget_left_fen"] == 0
    assert 0 < c["used"] <= c["claimed"]
    assert c["voucher_value_fen"] == c["used"] * c["discount_fen"]
    assert c["discounts_paid_fen"] <= c["voucher_value_fen"] <= c["budget_fen"]
    assert c["fund_left_fen"] + c["discounts_paid_fen"] <= c["budget_fen"]
    # every voucher went on a purchase at or above the threshold
    assert c["spend_driven_fen"] >= c["used"] * c["threshold_fen"]
    assert c["leverage"] == round(c["spend_driven_fen"] / c["voucher_value_fen"], 4)


@pytest.mark.parametrize("budget", ["20.00", "100000.00"])
def test_the_budget_holds_whether_one_voucher_or_more_than_claimed(budget: str) -> None:
    c = _run(_scenario(budget), seed=2).summary["app"]["campaign"]
    assert c["claimed"] == min(c["claims"], c["budget_fen"] // c["discount_fen"])
    assert c["committed_fen"] <= c["budget_fen"]
    assert c["discounts_paid_fen"] <= c["budget_fen"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vouchers=st.integers(1, 60), claimers=st.sampled_from(["0.2", "0.5", "1"]),
       seed=st.integers(0, 2**20))
def test_no_budget_claimers_or_seed_overspends(vouchers: int, claimers: str, seed: int
                                               ) -> None:
    """Property: whatever the budget (in discounts), the share who claim and the seed,
    the claims granted are exactly what the budget covers, and neither the commitments
    nor the discounts paid exceed it."""
    app = APP.replace("claimers: 0.8", f"claimers: {claimers}").replace(
        "payments: 3", "payments: 1")
    s = _run(_scenario(format_fen(vouchers * 2_000), app), seed=seed).summary
    c = s["app"]["campaign"]
    assert c["claimed"] == min(c["claims"], vouchers)
    assert c["committed_fen"] <= c["budget_fen"]
    assert c["discounts_paid_fen"] <= c["voucher_value_fen"] <= c["committed_fen"]
    assert all(s["checks"].values())


def test_a_campaign_that_ends_during_the_run_gives_the_rest_back_and_stays_in_budget(
        ) -> None:
    text = _scenario().replace("valid_until: 2026-12-31T23:59",
                               "valid_until: 2026-11-25T21:00")
    s = simulate(parse_scenario(text), Options(seed=1, days=2)).summary
    c = s["app"]["campaign"]
    assert c["closed"] and c["fund_left_fen"] == 0
    assert c["returned_fen"] == c["budget_fen"] - c["discounts_paid_fen"] > 0
    assert 0 < c["used"] < c["claimed"]
    assert all(s["checks"].values())


def test_app_traffic_beside_cnaps_traffic_keeps_every_check() -> None:
    """The app's events and the traffic: block's transfers in one world and one day: both
    are played and every check holds."""
    text = _scenario() + ("traffic: {scale: 0.00001, customers_per_bank: 5, "
                          "settlement_liquidity: 2, systems: {IBPS: {}}}\n")
    s = _run(text, seed=1).summary
    assert all(s["checks"].values()) and len(s["checks"]) == 6
    ibps = s["systems"]["IBPS"]
    assert ibps["generated_items"] == 467 and ibps["outcomes"]["credited"]["items"] > 0
    assert s["app"]["payments"]["approved_items"] > 0


def test_replaying_the_log_rebuilds_the_app_s_day(tmp_path: Path) -> None:
    """Every app event was logged before its outcome was read: the store's log, replayed
    in a new process's world, gives the same wallets, campaign and records."""
    store = str(tmp_path / "day.db")
    sc = parse_scenario(_scenario())
    s = simulate(sc, Options(store=store, seed=3)).summary["app"]
    world = World.open(store, VirtualClock(sc.start_us), readonly=True)
    w = world.wallets
    assert w is not None
    assert {name: {"reserve_fen": checks.reserve_fen(w, name),
                   "customer_funds_fen": checks.customer_funds_fen(w, name)}
            for name in w.institutions} == s["institutions"]
    c = w.campaigns["dinner"]
    assert (c.claimed, c.used, c.spend_fen, c.paid_fen) == (
        s["campaign"]["claimed"], s["campaign"]["used"], s["campaign"]["spend_driven_fen"],
        s["campaign"]["discounts_paid_fen"])
    done = sum(1 for k, r in w.records.items()
               if k.startswith("app.") and not k.endswith(".code") and r["status"] == "done"
               and not k.startswith("app.bind"))
    assert done == sum(e["done_items"] for e in s["events"].values())
    world.engine.close()


def test_events_follow_the_profile_and_the_rates() -> None:
    sc = with_app_world(parse_scenario(_scenario()))
    assert sc.app is not None
    plan = AppPlan.of(sc)
    midnight = sc.start_us
    events = app_day(sc.app, plan, 9, 0, midnight)
    hour = (events.at_us - midnight) // 3_600_000_000
    assert list(events.at_us) == sorted(events.at_us)
    # the evening (17-21) carries twice the hourly rate of the morning (8-11)
    evening, morning = (hour >= 17) & (hour < 21), (hour >= 8) & (hour < 11)
    assert evening.sum() / 4 > 1.4 * morning.sum() / 3
    assert len(events) == 180 + 30 + 12 + 9  # payments, top-ups, withdrawals, repayments


def test_a_wallet_without_balance_pays_by_card_and_an_empty_one_withdraws_nothing() -> None:
    text = _scenario(app=APP.replace("top_ups: 0.5", "top_ups: 0")
                     .replace("payments: 3", "payments: 3\n  wallet_payments: 0.5"))
    a = _run(text).summary["app"]
    assert "wallet_pay" not in a["events"] and "wallet_withdrawal" not in a["events"]
    assert a["not_sent"]["wallet_pay_by_card"] > 0
    assert a["not_sent"]["wallet_withdrawal_empty"] == 12


BAD = [
    ("users: -1", "app: users must be a whole number from 0 to 1000000"),
    ("users: 1.5", "app: users must be a whole number"),
    ("merchants: 100001", "app: merchants must be a whole number from 0 to 100000"),
    ("claim_minutes: 0", "app: claim_minutes must be a whole number from 1"),
    ("card_balance: \"abc\"", "app: card_balance"),
    ("credit_limit: \"-5.00\"", "app: credit_limit"),
    ("payment_mean: \"0.00\"", "app: payment_mean"),
    ("top_up_mean: \"1.001\"", "app: top_up_mean"),
    ("withdrawal_mean: []", "app: withdrawal_mean"),
    ("credit_holders: 1.5", "app: credit_holders must be a decimal from 0 and at most 1"),
    ("merchant_mdr: 2", "app: merchant_mdr must be a decimal"),
    ("payment_codes: -0.1", "app: payment_codes must be a decimal"),
    ("wallet_payments: 0.7", "app: payment_codes and wallet_payments are shares"),
    ("repayment_share: 0", "app: repayment_share must be a decimal above 0"),
    ("claimers: 2", "app: claimers must be a decimal"),
    ("voucher_use: 1.0000001", "app: voucher_use must be a decimal"),
    ("payments: 101", "app: payments must be a decimal from 0 and at most 100"),
    ("top_ups: -1", "app: top_ups must be a decimal"),
    ("withdrawals: x", "app: withdrawals must be a decimal"),
    ("repayments: true", "app: repayments must be a decimal"),
    ("payment_sigma: 0", "app: payment_sigma must be a decimal above 0 and at most 4"),
    ("top_up_sigma: 5", "app: top_up_sigma must be a decimal above 0"),
    ("withdrawal_sigma: -1", "app: withdrawal_sigma must be a decimal above 0"),
    ("institution: NOPE", "app: institution 'NOPE' is not listed under wallets"),
    ("merchant_mccs: [\"58\"]", "app: merchant_mccs must be a list of quoted 4-digit"),
    ("merchant_mccs: []", "app: merchant_mccs must be a list"),
    ("campaign: nope", "app: campaign 'nope' is not a campaign listed"),
    ("colour: red", "app: unknown key 'colour'"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_each_bad_parameter_is_refused_naming_its_field_and_line(line: str, message: str
                                                                 ) -> None:
    text = _scenario(app=f"app:\n  payment_codes: 0.4\n  {line}\n")
    if line.startswith("payment_codes"):
        text = _scenario(app=f"app:\n  {line}\n")
    lines = text.splitlines()
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    problems = [p for p in err.value.problems if message in p.message]
    assert problems, str(err.value)
    key = line.split(":")[0]
    assert lines[problems[0].line - 1].strip().startswith(key), (problems[0], key)


def test_an_app_block_needs_wallets_and_a_merchant() -> None:
    no_wallets = WORLD.split("wallets:")[0]
    with pytest.raises(ScenarioError, match="app: the scenario has no wallets: block"):
        parse_scenario(no_wallets + "app: {users: 5}\n")
    no_pos = _scenario(app="app: {users: 5}\n").replace(
        "  - {id: \"POS00001\", kind: pos, bank: CCB, merchant: noodles}\n", "")
    with pytest.raises(ScenarioError, match="app: no merchant to pay"):
        parse_scenario(no_pos.replace("terminals:\n", ""))
    with pytest.raises(ScenarioError, match="app must be a mapping"):
        parse_scenario(_scenario(app="app: [1]\n"))
    with pytest.raises(ScenarioError, match="events a day is more than"):
        parse_scenario(_scenario(app="app: {users: 1000000, payments: 100}\n"))


def test_the_built_in_app_day_runs_and_reports(tmp_path: Path) -> None:
    """The scenario of the README's list, through the command: every check holds, the
    campaign's budget runs out before the claims do, and the report shows the section."""
    done = CliRunner().invoke(cli, ["simulate", str(APP_DAY), "--no-progress",
                                    "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert all(s["checks"].values())
    c = s["app"]["campaign"]
    assert c["claim_refused"]["BUDGET_EXHAUSTED"] > 0 and c["used"] > 0
    assert c["committed_fen"] == c["budget_fen"] == 200_000
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "云闪付与消费券" in page
    cells = re.findall(r'data-key="(app\.[^"]+)" data-kind="(\w+)">([^<]*)<', page)
    assert len(cells) >= 20
    for key, kind, text in cells:  # every figure of the section is summary.json's
        value = functools.reduce(lambda d, k: d[k], key.split("."), s)
        assert text == (report.grouped_cny(value) if kind == "fen" else f"{value:,}"
                        if kind == "int" else str(value)), key
    assert (tmp_path / "app.parquet").exists()
    assert load_scenario(APP_DAY).app is not None
