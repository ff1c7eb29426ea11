"""The wallets' rules under load and the loader's checks of the app's vocabulary: the
reserve covers the wallets after every step of random traffic, the budget is never
overspent by many claims at once, and every mistake in a ``wallets:`` block or an app
event is reported with its line."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.banks import reconcile
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import Event, ScenarioError, parse_scenario
from qingsuan.wallets.checks import reserve_covers_wallets

CARDS = ["6222020200000000014", "6217000010000000094", "6228480000000000034"]


def _scenario(n_users: int, events: str, budget: str = "100.00", per_user: int = 1,
              wallets_extra: str = "") -> str:
    users = "".join(f'    - {{phone: "138{i:08d}", name: "U{i}", institution: PAYCO}}\n'
                    for i in range(n_users))
    return f"""
name: rules
start: 2026-11-25T08:00
run_until: 2026-11-25T22:00
participants:
  - {{name: ICBC,  code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,   code: "105100000017", settlement_balance: "1000000.00"}}
  - {{name: ABC,   code: "103100000026", settlement_balance: "1000000.00"}}
  - {{name: PAYCO, code: "Z2000000001X", kind: payment_institution}}
customers:
  - {{id: a, bank: ICBC, account: "9222020200000000014", balance: "3000.00", name: "U0"}}
  - {{id: b, bank: CCB,  account: "6217000010000000029", balance: "3000.00", name: "U1"}}
  - {{id: c, bank: ABC,  account: "6228480000000000034", balance: "3000.00", name: "U2"}}
  - {{id: pool, bank: PAYCO, account: "880000000001", name: "PAYCO funds"}}
  - {{id: city, bank: ABC, account: "6228480000000000999", balance: "100000.00", name: "City"}}
  - {{id: shop, bank: CCB, account: "6217000010000000037", name: "Shop",
      merchant: {{mid: "105290058120002", mcc: "5812", mdr: "0.0060"}}}}
cards:
  - {{pan: "{CARDS[0]}", account: a}}
  - {{pan: "{CARDS[1]}", account: b}}
  - {{pan: "{CARDS[2]}", account: c}}
terminals:
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: shop}}
wallets:
  institutions:
    - {{participant: PAYCO, collection_account: pool}}
  users:
{users}  campaigns:
    - {{id: spring, sponsor: city, budget: "{budget}", discount: "20.00", threshold: "100.00",
       per_user: {per_user}, claim_from: 2026-11-25T08:00, claim_until: 2026-11-25T21:00,
       valid_from: 2026-11-25T08:00, valid_until: 2026-11-25T21:00}}
{wallets_extra}events:
{events}"""


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def _random_traffic(seed: int, n: int) -> str:
    rng = random.Random(seed)
    lines = [f'  - {{at: 2026-11-25T08:0{i}, do: bind_card, id: bind{i}, user: "138{i:08d}", '
             f'card: "{CARDS[i]}", name: "U{i}"}}\n' for i in range(3)]
    for k in range(n):
        at = f"2026-11-25T{9 + k // 60:02d}:{k % 60:02d}"
        i, j = rng.randrange(3), rng.randrange(3)
        amount = f"{rng.randint(1, 90000) / 100:.2f}"
        kind = rng.choice(["wallet_top_up", "wallet_top_up", "wallet_withdrawal",
                           "wallet_transfer", "qr_pay", "claim_voucher", "wallet_pay",
                           "transit_ride"])
        who = f'user: "138{i:08d}"'
        if kind == "wallet_transfer":
            if i == j:
                continue
            who = f'from: "138{i:08d}", to: "138{j:08d}"'
        rest = {"wallet_transfer": f"amount: \"{amount}\"",
                "claim_voucher": "campaign: spring",
                "qr_pay": f'card: "{CARDS[i]}", terminal: POS00001, amount: "{amount}", '
                          "voucher: spring",
                "wallet_pay": f'terminal: POS00001, amount: "{amount}"',
                "transit_ride": f'card: "{CARDS[i]}", terminal: POS00001, '
                                f'amount: "{rng.randint(1, 2500) / 100:.2f}"'}.get(
            kind, f'card: "{CARDS[j]}", amount: "{amount}"')
        lines.append(f"  - {{at: {at}, do: {kind}, id: e{k}, {who}, {rest}}}\n")
    return "".join(lines)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reserve_covers_the_wallets_after_every_step_of_random_traffic(seed: int
                                                                           ) -> None:
    sc = parse_scenario(_scenario(3, _random_traffic(seed, 150)), "rules.yaml")
    steps: list[str] = []

    def check(event: Event, postings: list[Any], runner: Runner) -> None:
        world = runner.world
        assert world.wallets is not None
        assert reserve_covers_wallets(world.wallets), event
        assert reconcile.books_balanced(world.banks), event
        assert reconcile.money_conserved(world.banks), event
        steps.append(event.do)

    out = Runner(sc, store="memory:", on_step=check).run()
    assert all(out["checks"].values()), out["checks"]
    statuses = {r["status"] for r in out["wallets"]["records"].values()}
    assert {"done", "refused", "authorised"} <= statuses  # the traffic did each
    paid = {r["do"] for r in out["wallets"]["records"].values() if r["status"] == "done"}
    assert "wallet_pay" in paid
    assert len(steps) >= 140  # every event (transfers to oneself were left out)


def test_many_claims_at_once_never_commit_more_than_the_budget() -> None:
    # 1,000 claims in ONE log entry (a group commit: arriving together) from 250 users
    # who may claim 4 each, against a budget of 37 discounts and a bit
    runner = Runner(parse_scenario(_scenario(250, "", budget="750.00", per_user=4),
                                   "rules.yaml"), store="memory:")
    runner.build_world()
    rng = random.Random(7)
    bodies = [json.dumps({"do": "claim_voucher", "order": -1, "fields": {
        "id": f"c{k}", "user": f"138{rng.randrange(250):08d}", "campaign": "spring"}}
    ).encode() for k in range(1000)]
    runner.engine.command_group("banks.event", bodies)
    wallets = runner.world.wallets
    assert wallets is not None
    codes = [r["reason"]["code"] if r["reason"] else None for r in wallets.records.values()]
    assert codes.count(None) == 37 == wallets.campaigns["spring"].claimed
    assert set(codes) == {None, "BUDGET_EXHAUSTED"}
    runner.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget_discounts=st.integers(1, 6), per_user=st.integers(1, 3),
       claims=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=14))
def test_claims_and_uses_never_overspend_the_budget(
        budget_discounts: int, per_user: int, claims: list[tuple[int, bool]]) -> None:
    lines = [f'  - {{at: 2026-11-25T08:0{i}, do: bind_card, id: bind{i}, user: "138{i:08d}", '
             f'card: "{CARDS[i]}", name: "U{i}"}}\n' for i in range(3)]
    for k, (who, pay) in enumerate(claims):
        user = f"138{min(who, 2):08d}"
        lines.append(f'  - {{at: 2026-11-25T09:{k:02d}, do: claim_voucher, id: c{k}, '
                     f'user: "{user}", campaign: spring}}\n')
        if pay:
            lines.append(f'  - {{at: 2026-11-25T09:{k:02d}:30, do: qr_pay, id: p{k}, '
                         f'user: "{user}", card: "{CARDS[min(who, 2)]}", terminal: POS00001, '
                         'amount: "100.00", voucher: spring}\n')
    budget = f"{20 * budget_discounts}.00"
    runner = Runner(parse_scenario(_scenario(3, "".join(lines), budget, per_user),
                                   "rules.yaml"), store="memory:")
    out = runner.run()
    spring = out["wallets"]["campaigns"]["spring"]
    assert spring["claimed"] <= budget_discounts
    assert spring["used"] <= spring["claimed"]
    # what the discounts did not use went back to the city when the campaign closed
    assert spring["fund_left"] == "0.00"
    assert int(spring["returned"].replace(".", "")) == \
        2000 * budget_discounts - 2000 * spring["used"]
    assert all(out["checks"].values()), out["checks"]


# ---------------------------------------------------------------------- the loader

BIND = '  - {at: 2026-11-25T09:00, do: bind_card, id: x, user: "13800000000", ' \
       f'card: "{CARDS[0]}", name: "U0"}}\n'


@pytest.mark.parametrize(("events", "extra", "line", "words"), [
    ('  - {at: 2026-11-25T09:00, do: bind_card, id: x, user: "13900000000", '
     f'card: "{CARDS[0]}", name: "U0"}}\n', "", 34, "is not a user listed"),
    ('  - {at: 2026-11-25T09:00, do: bind_card, id: x, user: "13800000000", '
     'card: "1234", name: "U0"}\n', "", 34, "card '1234' is not valid"),
    ('  - {at: 2026-11-25T09:00, do: qr_pay, id: x, terminal: POS00001, amount: "1.00"}\n',
     "", 34, "give code"),
    ('  - {at: 2026-11-25T09:00, do: qr_pay, id: x, code: nope, terminal: POS00001, '
     'amount: "1.00"}\n', "", 34, "not the id of an earlier payment_code"),
    ('  - {at: 2026-11-25T09:00, do: qr_pay, id: x, user: "13800000000", '
     f'card: "{CARDS[0]}", terminal: NOPE0001, amount: "1.00"}}\n', "", 34,
     "not a listed POS terminal"),
    ('  - {at: 2026-11-25T09:00, do: claim_voucher, id: x, user: "13800000000", '
     'campaign: autumn}\n', "", 34, "autumn' is not a campaign"),
    ('  - {at: 2026-11-25T09:00, do: wallet_top_up, id: x, user: "13800000000", '
     f'card: "{CARDS[0]}", amount: "0.00"}}\n', "", 34, "amount"),
    ('  - {at: 2026-11-25T09:00, do: wallet_transfer, id: x, from: "13800000000", '
     'to: "13800000000", amount: "1.00"}\n', "", 34, "from and to are the same user"),
])
def test_bad_app_events_are_reported_with_their_line(events: str, extra: str, line: int,
                                                     words: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_scenario(1, events, wallets_extra=extra), "bad.yaml")
    problems = err.value.problems
    assert len(problems) == 1, problems
    assert problems[0].line == line and words in problems[0].message, problems[0]


def test_bad_wallets_blocks_are_reported_with_their_lines() -> None:
    text = _scenario(1, BIND).replace(
        "discount: \"20.00\"", "discount: \"100.00\"").replace(
        "collection_account: pool", "collection_account: shop").replace(
        'phone: "13800000000"', 'phone: "2380000000"')
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "bad.yaml")
    messages = {p.line: p.message for p in err.value.problems}
    assert "collection_account 'shop' is not a customer at PAYCO" in messages[26]
    assert "phone '2380000000' is not valid" in messages[28]  # and nothing more
    assert "discount 100.00 must be below threshold 100.00" in messages[30]


def test_app_events_need_a_wallets_block() -> None:
    text = _scenario(1, BIND)
    start, end = text.index("wallets:"), text.index("events:")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text[:start] + text[end:], "bad.yaml")
    assert "has no wallets: block" in str(err.value)


def test_a_sponsor_cannot_pledge_more_than_it_holds() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_scenario(1, "", budget="100000.01"), "bad.yaml")
    assert "sponsor city holds 100000.00, less than its campaigns' budgets" in str(err.value)


def test_the_apps_own_terminal_id_is_not_a_scenario_terminals() -> None:
    text = _scenario(1, "").replace('id: "POS00001"', 'id: "APPQUERY"')
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "bad.yaml")
    assert "terminal id APPQUERY is the app's own" in str(err.value)



def test_an_unknown_terminal_or_campaign_is_refused_not_a_stopped_engine() -> None:
    """The loader and the HTTP edge check terminals and campaigns first; a logged command
    that still names one the world lacks is refused with its reason, and the run goes on
    (it used to stop the engine on a KeyError)."""
    events = (f'  - {{at: 2026-11-25T08:00, do: bind_card, id: bind0, user: "13800000000", '
              f'card: "{CARDS[0]}", name: "U0"}}\n'
              '  - {at: 2026-11-25T09:00, do: claim_voucher, id: c1, user: "13800000000", '
              'campaign: spring}\n'
              f'  - {{at: 2026-11-25T09:01, do: qr_pay, id: p1, user: "13800000000", '
              f'card: "{CARDS[0]}", terminal: POS00001, amount: "10.00"}}\n')
    sc = parse_scenario(_scenario(1, events), "rules.yaml")
    for event in sc.events:  # names the loader would have refused
        if event.do == "claim_voucher":
            event.fields["campaign"] = "autumn"
        if event.do == "qr_pay":
            event.fields["terminal"] = "POS99999"
    out = Runner(sc, store="memory:").run()
    records = out["wallets"]["records"]
    assert (records["c1"]["status"], records["c1"]["reason"]["code"]) == \
        ("refused", "UNKNOWN_CAMPAIGN")
    assert (records["p1"]["status"], records["p1"]["reason"]["code"]) == \
        ("refused", "UNKNOWN_TERMINAL")
    assert all(out["checks"].values()), out["checks"]
