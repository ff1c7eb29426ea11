"""Random worlds: any mix of events runs to the end without an exception, and every check
of the outcome holds (books balanced, money conserved, mirrors, suspense explained)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import parse_scenario

CUSTOMERS = {"alice": ("ICBC", "6222020200000000014"), "carol": ("ICBC", "6222020200000000022"),
             "bob": ("CCB", "6217000010000000029"), "dora": ("BOC", "6216610000000000069")}
HEADER = """\
name: random
start: 2026-11-27T08:00
run_until: 2026-11-30T12:00
params:
  hvps.lsm_interval_minutes: "30"
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "300000.00", collateral: "100000.00"}
  - {name: CCB,  code: "105100000017", settlement_balance: "50000.00", beps_cap: "20000.00"}
  - {name: BOC,  code: "104100000004", settlement_balance: "0.00", ibps_earmark: "0.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "200000.00"}
  - {id: carol, bank: ICBC, account: "6222020200000000022", balance: "1000.00"}
  - {id: bob,   bank: CCB,  account: "6217000010000000029", balance: "90000.00"}
  - {id: dora,  bank: BOC,  account: "6216610000000000069", balance: "5000.00"}
events:
"""

START = dt.datetime(2026, 11, 27)
LAST_MINUTE = 3 * 24 * 60 + 11 * 60  # Monday 2026-11-30 11:00

kinds = st.sampled_from(["transfer", "transfer", "hvps", "beps", "ibps", "cancel", "pledge",
                         "debit"])
event = st.tuples(kinds, st.sampled_from(sorted(CUSTOMERS)), st.sampled_from(sorted(CUSTOMERS)),
                  st.integers(1, 12_000_000), st.sampled_from(["counter", "mobile"]),
                  st.booleans(), st.integers(0, 80))


def _scenario(events: list[tuple[str, str, str, int, str, bool, int]]) -> str:
    lines = []
    minute = 8 * 60 + 1  # the scenario starts at 08:00 on the first day
    paid: list[str] = []
    for i, (kind, a, b, fen, channel, urgent, step) in enumerate(events):
        minute = min(minute + step * 7, LAST_MINUTE)  # over the weekend and Monday
        at = (START + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M")
        amount = f"{fen // 100}.{fen % 100:02d}"
        eid = f"e{i}"
        if kind == "transfer" and a != b:
            lines.append(f"  - {{at: {at}, do: transfer, id: {eid}, channel: {channel}, "
                         f"urgent: {str(urgent).lower()}, from: {a}, to: {b}, "
                         f"amount: \"{amount}\"}}")
        elif kind in ("hvps", "beps", "ibps") and CUSTOMERS[a][0] != CUSTOMERS[b][0]:
            lines.append(f"  - {{at: {at}, do: {kind}_payment, id: {eid}, from: {a}, to: {b}, "
                         f"amount: \"{amount}\"}}")
            if kind == "hvps":
                paid.append(eid)
        elif kind == "debit" and CUSTOMERS[a][0] != CUSTOMERS[b][0]:
            lines.append(f"  - {{at: {at}, do: beps_payment, id: {eid}, kind: ordinary_debit, "
                         f"from: {a}, to: {b}, amount: \"{amount}\"}}")
        elif kind == "cancel" and paid:
            lines.append(f"  - {{at: {at}, do: cancel, target: {paid[-1]}}}")
        elif kind == "pledge":
            bank = CUSTOMERS[a][0]
            lines.append(f"  - {{at: {at}, do: pledge, participant: {bank}, "
                         f"value: \"{amount}\"}}")
    if not lines:
        return HEADER.replace("events:\n", "events: []\n")
    return HEADER + "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(event, max_size=25))
def test_any_mix_of_events_runs_and_every_check_holds(
        events: list[tuple[str, str, str, int, str, bool, int]]) -> None:
    text = _scenario(events)
    out = run_scenario(parse_scenario(text, "random.yaml"), store="memory:")
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}, text
    assert out["balances"]["mirrors"] == out["balances"]["settlement"]
    finals = {"credited", "settled", "rejected", "returned", "cancelled", "queued",
              "netted", "accepted"}
    assert {p["status"] for p in out["payments"].values()} <= finals
