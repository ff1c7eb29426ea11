"""The outcome of a run (docs/SCENARIOS.md, ``qingsuan run --json``) and the clearing files
of its closed card days: read from a world, never decided here."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from qingsuan.banks import reconcile
from qingsuan.clock import format_time, to_beijing_naive
from qingsuan.money import format_fen

if TYPE_CHECKING:
    from qingsuan.sim.scenario import Scenario
    from qingsuan.world import World

PBOC = "PBOC"


def outcome(world: World, sc: Scenario) -> dict[str, Any]:
    banks, engine = world.banks, world.engine
    assert banks.books is not None
    posted = banks.books.posted_fen
    customers = {c.id: format_fen(posted(c.bank, f"customer:{c.id}")) for c in sc.customers}
    settlement = {name: format_fen(posted(PBOC, f"settlement:{name}"))
                  for name in banks.settling}
    terminals = {t.id: format_fen(posted(t.bank, f"atm_cash:{t.id}"))
                 for t in sc.terminals if t.kind == "atm"}
    out: dict[str, Any] = {
        "scenario": sc.name,
        "ended_at": format_time(sc.run_until_us),
        "payments": {pid: rec.to_json() for pid, rec in banks.payments.items()},
        "balances": {"customers": customers, "settlement": settlement,
                     "terminals": terminals,
                     "mirrors": {name: format_fen(posted(name, "reserve_at_pboc"))
                                 for name in banks.settling}},
        "inquiries": banks.inquiries,
        "actions": banks.actions,
        "hvps": _hvps_report(world),
        "net": _net_report(world),
        "hvps_queue": [{"at": format_time(at), "queued": count, "value": format_fen(value)}
                       for at, count, value in world.cnaps.hvps.queue_length],
        "checks": checks(world),
        "log": {"entries": engine.commands_applied,
                "transfers": engine.ledger.transfer_count,
                "state_hash": engine.state_hash().hex()},
    }
    if world.wallets is not None and world.wallets.active:  # only a world with wallets
        from qingsuan.wallets import checks as wallet_checks

        out["wallets"] = wallet_checks.outcome(world.wallets)
    return out


def checks(world: World) -> dict[str, bool]:
    banks = world.banks
    out: dict[str, bool] = {"books_balanced": reconcile.books_balanced(banks),
                            "money_conserved": reconcile.money_conserved(banks),
                            "mirrors_match": reconcile.mirrors_match(banks),
                            "suspense_explained": reconcile.suspense_explained(banks)}
    if world.wallets is not None and world.wallets.active:
        from qingsuan.wallets.checks import reserve_covers_wallets

        out["reserve_covers_wallets"] = reserve_covers_wallets(world.wallets)
    return out


def _net_report(world: World) -> dict[str, Any]:
    """BEPS and IBPS: positions, caps, sessions and per-participant metrics."""
    out: dict[str, Any] = {}
    for name, net in sorted(world.cnaps.net.items()):
        out[name] = {
            "positions": {k: format_fen(v) for k, v in sorted(net.positions.items())},
            "caps": {k: format_fen(v) for k, v in sorted(net.caps.items())},
            "sessions": [{"at": format_time(s["at_us"]), "status": s["status"],
                          "items": s.get("items", 0),
                          "positions": {k: format_fen(v) for k, v in
                                        sorted(s["positions"].items())}}
                         for s in net.sessions],
            "participants": {k: {
                "netted_value": format_fen(m.netted_value_fen),
                "netted_count": m.netted_count,
                "received_value": format_fen(m.received_value_fen),
                "peak_cap_use": format_fen(-m.low_position_fen),
                "queue_time_s": m.queue_time_us / 1_000_000,
                "rejections": m.rejections or {},
            } for k, m in sorted(net.metrics.items()) if m.netted_count or m.rejections
                or m.received_value_fen},
            "in_transit": [{"at": format_time(at), "value": format_fen(v)}
                           for at, v in net.in_transit],
        }
    return out


def _hvps_report(world: World) -> dict[str, Any]:
    """Per participant: the HVPS metrics and credit (amounts as CNY strings)."""
    hvps = world.cnaps.hvps
    out: dict[str, Any] = {}
    for name in sorted(hvps.metrics):
        m = hvps.metrics[name]
        line = hvps.credit[name]
        wait = (m.queue_time_value_us / m.queued_value_fen / 1e6) if m.queued_value_fen else 0
        out[name] = {
            "settled_value": format_fen(m.settled_value_fen),
            "settled_count": m.settled_count,
            "queued_count": m.queued_count,
            "queue_time_value_weighted_s": round(wait, 3),
            "peak_liquidity_used": format_fen(m.peak_liquidity_used_fen),
            "gridlock_value_resolved": format_fen(m.gridlock_value_fen),
            "returned_count": m.returned_count,
            "cancelled_count": m.cancelled_count,
            "credit_peak_drawn": format_fen(line.peak_drawn_fen),
            "credit_overnight": format_fen(line.overnight_fen),
            "credit_interest": format_fen(line.interest_fen),
        }
    return out


def clearing_files(world: World) -> dict[str, str]:
    """Each participant's clearing file (清算文件) of each closed clearing day, by file name
    (``PARTICIPANT_YYYYMMDD.txt``): what the switch sends the banks after the cut-off,
    with masked PANs, the fees fixed at the cut-off and control totals (cards/files.py)."""
    from qingsuan.cards.files import Detail, write_clearing_file

    switch = world.switch
    out: dict[str, str] = {}
    for day in switch.days_closed:
        per: dict[str, list[Detail]] = {}
        for t in switch.txns.values():
            if (t.clearing_date != day or t.status not in ("cleared", "settled")
                    or t.proc == "31" or t.issuer in (None, t.acquirer)):
                continue
            stan = t.key.split("|")[1]
            local = to_beijing_naive(t.at_us)
            # D: pays the amount (the issuer; the acquirer for a refund), C: receives it
            for bank, fee in ((t.issuer or "", t.issuer_fee_net_fen),
                              (t.acquirer, t.acquirer_fee_net_fen)):
                direction = "D" if bank == t.payer else "C"
                per.setdefault(bank, []).append(Detail(
                    t.rrn, stan, t.mti, t.pan_masked, t.amount_fen, fee, direction,
                    t.terminal, local))
        for name in world.banks.members:
            out[f"{name}_{day.replace('-', '')}.txt"] = write_clearing_file(
                name, dt.date.fromisoformat(day), per.get(name, []))
    return out
