"""The app under load, durable on SQLite: QR payments through the app, the card switch and
the banks, and a voucher campaign that a million users claim at once.

* **QR payments**: users with a debit card each, bound in the app, scan merchants' codes
  (``qr_pay``: the app sends a purchase through the switch to the issuer, which decides
  and books it; the acquirer books the merchant's side). Payments arrive together in
  group commits (``Engine.command_group``: one log entry, one append and fsync, per
  group) as a gateway takes its requests; the rate counts only the payments.
* **Voucher claims**: ``--claimers`` users claim a campaign's voucher at once, in group
  commits of ``--group``; the budget covers fewer vouchers than users ask for, so the
  last claims are refused (BUDGET_EXHAUSTED) and the budget is never overspent (asserted).

Every check (books balanced, money conserved, the reserve covering the wallets) is
asserted at the end of each part.

    python bench/bench_wallet.py [--users 20000] [--payments 100000] [--claimers 1000000]
                                 [--group 4096] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_world import bank_code, luhn_pan  # the same synthetic codes and card numbers
from rich.console import Console

from qingsuan.banks import reconcile
from qingsuan.clock import parse_time
from qingsuan.params import Params
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import Card, Customer, Merchant, Participant, Scenario, Terminal
from qingsuan.wallets.checks import reserve_covers_wallets
from qingsuan.wallets.terms import WalletsSpec

BANKS = 10
START = "2026-11-25T09:00"
DISCOUNT_FEN = 1_000  # 10.00 off
THRESHOLD_FEN = 5_000


def phone(i: int) -> str:
    return f"13{i:09d}"


def world(users: int, card_holders: int, budget_fen: int) -> Scenario:
    """10 banks, a payment institution, ``users`` app users (the first ``card_holders``
    with a debit card), a merchant with a POS terminal per bank, and one campaign."""
    banks = [f"B{i:02d}" for i in range(BANKS)]
    participants = [Participant(b, bank_code(i), "bank", 10**13, 0, 0)
                    for i, b in enumerate(banks)]
    participants.append(Participant("PAYCO", "Z2000000001X", "payment_institution",
                                    10**10, 0, 0))
    custs = [Customer(f"c{i}", banks[i % BANKS], f"62220{i:014d}", 100_000_000, f"U{i}",
                      None, 0) for i in range(card_holders)]
    custs += [Customer(f"m{i}", b, f"62171{i:014d}", 0, f"Shop {i}",
                       Merchant(f"M{i:014d}", "5812", 6_000), 0) for i, b in enumerate(banks)]
    custs += [Customer("pool", "PAYCO", "880000000001", 0, "PAYCO funds", None, 0),
              Customer("city", banks[0], "6217100000000000001", 10**13, "City", None, 0)]
    cards = [Card(luhn_pan(i), f"c{i}", "debit", None, 0) for i in range(card_holders)]
    terminals = [Terminal(f"POS{i:05d}", "pos", b, 0, f"m{i}", 0) for i, b in enumerate(banks)]
    start = parse_time(START)
    campaign = {"id": "city", "sponsor": "city", "sponsor_bank": banks[0],
                "budget_fen": budget_fen, "threshold_fen": THRESHOLD_FEN,
                "discount_fen": DISCOUNT_FEN, "per_user": 1, "merchants": [], "mccs": [],
                "claim_from_us": start, "claim_until_us": start + 86_400_000_000,
                "valid_from_us": start, "valid_until_us": start + 86_400_000_000}
    spec = WalletsSpec({"PAYCO": "pool"},
                       {phone(i): (f"U{i}", "PAYCO") for i in range(users)},
                       {"city": campaign}, frozenset(t.id for t in terminals))
    return Scenario("bench-wallet", "<bench>", "", start, start + 3600 * 1_000_000, "cn",
                    Params({"cards.fees": "off"}), tuple(participants), tuple(custs),
                    tuple(cards), tuple(terminals), (), wallets=spec)


def _groups(runner: Runner, bodies: list[bytes], group: int) -> float:
    """Send ``bodies`` as banks.event commands in group commits; seconds it took."""
    t0 = time.perf_counter()
    for k in range(0, len(bodies), group):
        runner.engine.command_group("banks.event", bodies[k:k + group])
    return time.perf_counter() - t0


def _body(do: str, fields: dict[str, Any]) -> bytes:
    return json.dumps({"do": do, "order": -1, "fields": fields}).encode()


def _checks(runner: Runner) -> None:
    banks = runner.world.banks
    wallets = runner.world.wallets
    assert wallets is not None
    assert reconcile.books_balanced(banks) and reconcile.money_conserved(banks)
    assert reconcile.mirrors_match(banks)
    assert reserve_covers_wallets(wallets)


def qr_payments(users: int, payments: int, group: int) -> dict[str, float]:
    sc = world(users, users, DISCOUNT_FEN)
    with tempfile.TemporaryDirectory(prefix="bench-wallet-") as tmp:
        runner = Runner(sc, store=str(Path(tmp) / "w.db"))
        runner.build_world()
        vault = runner.world.card_vault()
        cards = [vault.card_fields(luhn_pan(i)) for i in range(users)]
        binds = [_body("bind_card", {"id": f"b{i}", "user": phone(i), "name": f"U{i}",
                                     **cards[i]}) for i in range(users)]
        bind_s = _groups(runner, binds, group)
        pays = [_body("qr_pay", {"id": f"p{k}", "user": phone(k % users),
                                 "terminal": f"POS{(k % users + 1) % BANKS:05d}",
                                 "amount_fen": 3_600 + k % 100, "pin_hash": None,
                                 **cards[k % users]}) for k in range(payments)]
        pay_s = _groups(runner, pays, group)
        wallets = runner.world.wallets
        assert wallets is not None
        done = sum(1 for k in range(payments) if wallets.records[f"p{k}"]["status"] == "done")
        assert done == payments, f"{payments - done} payments not approved"
        _checks(runner)
        runner.close()
    return {"rate": payments / pay_s, "pay_s": pay_s, "bind_rate": users / bind_s}


def claims(claimers: int, group: int) -> dict[str, float]:
    budget_vouchers = claimers * 4 // 5  # the budget covers 80% of the users
    sc = world(claimers, 0, budget_vouchers * DISCOUNT_FEN)
    with tempfile.TemporaryDirectory(prefix="bench-wallet-") as tmp:
        runner = Runner(sc, store=str(Path(tmp) / "w.db"))
        t0 = time.perf_counter()
        runner.build_world()
        build_s = time.perf_counter() - t0
        bodies = [_body("claim_voucher", {"id": f"v{i}", "user": phone(i),
                                          "campaign": "city"}) for i in range(claimers)]
        claim_s = _groups(runner, bodies, group)
        wallets = runner.world.wallets
        assert wallets is not None
        campaign = wallets.campaigns["city"]
        assert campaign.claimed == budget_vouchers, campaign.claimed
        assert campaign.committed_fen() <= campaign.budget_fen  # never overspent
        refused = sum(1 for r in wallets.records.values() if r["status"] == "refused")
        assert refused == claimers - budget_vouchers
        _checks(runner)
        runner.close()
    return {"rate": claimers / claim_s, "claim_s": claim_s, "build_s": build_s,
            "granted": budget_vouchers, "refused": refused}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--claimers", type=int, default=1_000_000)
    parser.add_argument("--group", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    console = Console()
    console.print(f"{os.uname().machine}, {os.cpu_count()} CPUs (nproc); SQLite log, group "
                  f"commits of {args.group}")
    if args.payments:
        runs = [qr_payments(args.users, args.payments, args.group) for _ in range(args.runs)]
        rates = [r["rate"] for r in runs]
        console.print(f"QR payments: {args.payments:,} from {args.users:,} users: "
                      f"median {statistics.median(rates):,.0f}/s "
                      f"(runs: {', '.join(f'{x:,.0f}' for x in rates)}; card "
                      f"binding {runs[0]['bind_rate']:,.0f}/s); target >= 5,000/s")
    if args.claimers:
        runs = [claims(args.claimers, args.group) for _ in range(args.runs)]
        r = runs[0]
        rates = [x["rate"] for x in runs]
        console.print(f"voucher claims: {args.claimers:,} users at once: median "
                      f"{statistics.median(rates):,.0f} claims/s "
                      f"(runs: {', '.join(f'{x:,.0f}' for x in rates)}); "
                      f"{r['granted']:,.0f} granted, {r['refused']:,.0f} refused "
                      f"BUDGET_EXHAUSTED, budget never overspent; world built in "
                      f"{r['build_s']:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
