"""Simulate days of generated traffic through one world (docs/SIMULATE.md).

The loop is a player, like the runner: it builds the world (with the customers the traffic
block asks for), then hands each window of generated transfers (at most ``chunk_minutes``
of arrivals, cut at every moment the world asks to be ticked, so nothing sent before the
HVPS cut-off arrives after it) to the banks' bulk path at the time of the window's last
arrival, and ticks the world at the moments it asks for. What the bulk path gives back
queued waits with the sender and goes again first in the next window (sim/sim_queue.py).
Metrics are aggregated as the day runs (sim/metrics.py), per item only if asked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from qingsuan.banks import reconcile
from qingsuan.banks.bulk import BulkCode
from qingsuan.calendar import HvpsPhase, load_calendar
from qingsuan.clock import (
    US_PER_DAY,
    US_PER_MINUTE,
    US_PER_SECOND,
    format_time,
    from_datetime,
    to_beijing,
)
from qingsuan.sim.costs import bank_costs
from qingsuan.sim.metrics import (
    NET_SYSTEMS,
    OUTCOMES,
    REASONS,
    SYSTEMS,
    Metrics,
    Outcomes,
    Sample,
    queue_seconds,
    write_tables,
)
from qingsuan.sim.policies import PolicyKind, release, split
from qingsuan.sim.report import render
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import Customer, Scenario
from qingsuan.sim.sim_app import AppPlayer, with_app_world
from qingsuan.sim.sim_cards import CardPlayer
from qingsuan.sim.sim_queue import Batch
from qingsuan.sim.sim_regimes import Regimes
from qingsuan.sim.stress import (
    boundaries,
    day_factors,
    day_traffic,
    held_back,
    holiday_summary,
    squeezed,
)
from qingsuan.sim.traffic import (
    SLOT_MINUTES,
    DayGenerator,
    Limits,
    Member,
    Network,
    TrafficSpec,
    TrafficSystem,
    expected_outflow_fen,
)
from qingsuan.world import World

#: days one simulation may cover
MAX_DAYS: Final = 366
#: ticks one window may take (a wake-up that never moves on is a bug, not a workload)
MAX_TICKS_PER_WINDOW: Final = 10_000

#: (simulated now, items done, items expected) after each window
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class Options:
    days: int = 1
    seed: int = 0
    #: overrides the block's scale (None: the block's)
    scale: float | None = None
    store: str = "memory:"
    chunk_minutes: int = 10
    bucket_minutes: int = 60
    #: one row per transfer in items.parquet (memory grows with the run)
    keep_items: bool = False
    #: minutes of arrivals generated at once, ahead of the windows (memory against calls;
    #: the traffic and every output are the same whatever it is)
    generate_minutes: int = 60

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_DAYS:
            raise ValueError(f"days must be from 1 to {MAX_DAYS} (got {self.days})")
        if not 1 <= self.chunk_minutes <= 1_440 or not 1 <= self.bucket_minutes <= 1_440:
            raise ValueError("chunk and bucket minutes must be from 1 to 1440")
        if not SLOT_MINUTES <= self.generate_minutes <= 1_440:
            raise ValueError(f"generate minutes must be from {SLOT_MINUTES} to 1440 "
                             f"(got {self.generate_minutes})")
        if 1_440 % self.bucket_minutes:
            raise ValueError(f"bucket minutes must divide a day (got {self.bucket_minutes})")
        if self.scale is not None and not 0 < self.scale <= 100:
            raise ValueError(f"scale must be above 0 and at most 100 (got {self.scale})")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be from 0 to 2**63 - 1 (got {self.seed})")


@dataclass
class Result:
    """What a simulation reports: ``summary`` (JSON-ready, deterministic), the metrics'
    tables (docs/SIMULATE.md, "Output"), the transfers played and the wall time (kept out
    of the summary)."""

    summary: dict[str, Any]
    tables: dict[str, pa.Table]
    items: int
    wall_s: float

    def write(self, out: Path, *, report: bool = True) -> list[Path]:
        """``summary.json``, one Parquet file per table and ``report.html`` in ``out``
        (same seed, same bytes); the paths written."""
        out.mkdir(parents=True, exist_ok=True)
        path = out / "summary.json"
        path.write_text(json.dumps(self.summary, indent=2, sort_keys=True,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
        written = [path, *write_tables(self.tables, out)]
        if report:
            page = out / "report.html"
            page.write_text(render(self.summary, self.tables), encoding="utf-8")
            written.append(page)
        return written


def midnight_us(at_us: int) -> int:
    day = to_beijing(at_us).date()
    return from_datetime(dt.datetime(day.year, day.month, day.day))


# ---------------------------------------------------------------------- the world


def network_of(sc: Scenario, spec: TrafficSpec, customers: list[tuple[str, bool]]
               ) -> Network:
    """The participants with their open customers' indices (``customers``: bank and
    closed, in the directory's order)."""
    by_bank: dict[str, list[int]] = {p.name: [] for p in sc.participants}
    for k, (bank, closed) in enumerate(customers):
        if not closed:
            by_bank[bank].append(k)
    return Network([Member(p.name, p.kind == "bank", np.array(by_bank[p.name], np.int64))
                    for p in sc.participants], spec.zipf)


def with_traffic_world(sc: Scenario, spec: TrafficSpec) -> Scenario:
    """The scenario with ``customers_per_bank`` generated customers at every participant
    (after the listed ones) and, with ``settlement_liquidity``, the settlement balances it
    asks for. Balances are sized from the expected outflows, rounded to the fen."""
    n = spec.customers_per_bank
    listed = [(c.bank, c.closed) for c in sc.customers]
    generated = [(p.name, False) for p in sc.participants for _ in range(n)]
    network = network_of(sc, spec, listed + generated)
    outflow = expected_outflow_fen(spec, network)
    largest_mean = max((s.mean_fen for s in spec.systems), default=0.0)
    customers = list(sc.customers)
    for p, member, out_fen in zip(sc.participants, network.members, outflow, strict=True):
        if not n:
            break
        per_customer = float(out_fen) / max(len(member.customers), 1)
        balance = round(spec.customer_liquidity * (per_customer + largest_mean))
        customers += [Customer(f"g.{p.name}.{k}", p.name, f"9{k:011d}", balance,
                               f"{p.name} customer {k}", None, spec.line)
                      for k in range(n)]
    participants = sc.participants
    if spec.settlement_liquidity is not None:
        participants = tuple(dataclasses.replace(
            p, settlement_balance_fen=round(spec.settlement_liquidity * float(out_fen)))
            for p, out_fen in zip(sc.participants, outflow, strict=True))
    participants = squeezed(participants, sc.sim.stress)
    return dataclasses.replace(sc, customers=tuple(customers), participants=participants)


def directory_columns(world: World) -> list[tuple[str, bool]]:
    return [(c.bank, c.closed) for c in world.banks.directory.by_id.values()]


# ---------------------------------------------------------------------- the loop


def simulate(sc: Scenario, options: Options, on_progress: Progress | None = None) -> Result:
    """Run ``options.days`` whole days (from the start's midnight, Beijing time) of the
    scenario's generated traffic through its world."""
    if sc.traffic is None and sc.app is None:
        raise ValueError(f"{sc.file}: no traffic: block (nor app: block) to simulate "
                         "(docs/SIMULATE.md)")
    traffic = sc.traffic or TrafficSpec(())  # an app: block alone: no CNAPS traffic
    spec = traffic if options.scale is None else traffic.scaled(options.scale)
    wall0 = time.perf_counter()
    world_sc = with_traffic_world(sc, spec)
    if sc.app is not None:
        world_sc = with_app_world(world_sc)
    runner = Runner(world_sc, store=options.store)
    # the bulk path's postings stay in the log, not in memory, unless items are kept
    # (docs/LEDGER.md, "History retention": balances and state hash are the same)
    runner.engine.ledger.keep_history = options.keep_items
    # one thread draws the next slots of traffic while the world plays these
    pool = ThreadPoolExecutor(1, thread_name_prefix="traffic")
    try:
        runner.build_world()
        return _run(runner, world_sc, spec, options, on_progress, wall0, pool)
    finally:
        pool.shutdown(cancel_futures=True)
        runner.close()



class _State:
    """Reads what the metrics sample from the world after each window (read only)."""

    def __init__(self, world: World, names: list[str]) -> None:
        self.world = world
        self.names = names
        engine = world.banks.engine
        assert engine is not None
        self.ledger = engine.ledger
        reg = engine.registry
        self.settlement = [reg.id("PBOC", f"settlement:{n}")
                           if reg.has(f"PBOC:settlement:{n}") else -1 for n in names]

    def balances(self) -> npt.NDArray[np.int64]:
        ids = np.array(self.settlement, np.int64)
        out = np.zeros(len(ids), np.int64)
        known = ids >= 0
        if known.any():  # one read of the ledger's columns for all participants
            out[known] = self.ledger.posted_columns(ids[known])[0]
        return out

    def sample(self, at_us: int, held: Batch) -> Sample:
        hvps = self.world.cnaps.hvps
        net = [self.world.cnaps.net[s.name] for s in NET_SYSTEMS]  # (an enum's name is slow)
        lines = [hvps.credit.get(n) for n in self.names]
        queue_items, queue_value = held.queue_by(len(SYSTEMS), len(self.names))
        return Sample(
            at_us, self.balances(),
            np.array([x.lendable_fen if x else 0 for x in lines], np.int64),
            np.array([x.drawn_fen if x else 0 for x in lines], np.int64),
            np.array([[x.positions.get(n, 0) for n in self.names] for x in net], np.int64),
            np.array([[x.caps.get(n, 0) for n in self.names] for x in net], np.int64),
            np.array([x.in_transit_fen for x in net], np.int64),
            queue_items, queue_value)


def _run(runner: Runner, sc: Scenario, spec: TrafficSpec, options: Options,
         on_progress: Progress | None, wall0: float, pool: Executor) -> Result:
    world, clock = runner.world, runner.clock
    directory = directory_columns(world)
    network = network_of(sc, spec, directory)
    names = [p.name for p in sc.participants]
    where = {name: k for k, name in enumerate(names)}
    participant_of = np.array([where[bank] for bank, _ in directory], np.int64)
    limits = Limits(int(sc.params["beps.item_limit"]), int(sc.params["ibps.item_limit"]))
    calendar = load_calendar(sc.calendar, str(sc.params["calendar.missing_year"]))
    first = midnight_us(sc.start_us)
    end = first + options.days * US_PER_DAY
    bucket_us = options.bucket_minutes * US_PER_MINUTE
    chunk_us = options.chunk_minutes * US_PER_MINUTE
    metrics = Metrics(names, first, bucket_us, US_PER_DAY // bucket_us, options.keep_items)
    state = _State(world, names)
    business = [calendar.is_business_day(to_beijing(first + d * US_PER_DAY).date())
                for d in range(options.days)]
    # each day's targets: a holiday block's share of an ordinary day (sim/stress.py)
    day_specs = [day_traffic(spec, *day_factors(sc.sim.stress, to_beijing(
        first + d * US_PER_DAY).date(), calendar.is_business_day)) for d in range(options.days)]
    expected = sum(day_specs[d].items_per_day(s) for d in range(options.days)
                   for s in day_specs[d].systems
                   if business[d] or s.system is not TrafficSystem.HVPS)
    if sc.sim.payroll is not None:  # progress only: the payroll days' extra BEPS credits
        expected += sum(sc.sim.payroll.items(spec.items_per_day(s))
                        for d in range(options.days) for s in spec.systems
                        if s.system is TrafficSystem.BEPS
                        and sc.sim.payroll.on(to_beijing(first + d * US_PER_DAY).date()))
    generated = np.zeros((len(SYSTEMS), 2), np.int64)  # items, value
    held = Batch.empty()
    done = 0
    cuts = boundaries(sc.sim.stress)
    system_names = [s.name for s in SYSTEMS]
    policies = [(k, sc.sim.policy(name)) for k, name in enumerate(names)]
    deciders = [(k, p) for k, p in policies
                if p.kind in (PolicyKind.BUFFER, PolicyKind.DEADLINE)]
    splitters = {k: p.max_piece_fen for k, p in policies if p.kind is PolicyKind.SPLIT}
    cutoff_minutes = int(sc.params["hvps.cutoff"])
    overnight_fen: dict[str, int] = dict.fromkeys(names, 0)
    hvps = world.cnaps.hvps
    regimes = Regimes(sc.sim.regimes, len(names))
    ahead = options.generate_minutes // SLOT_MINUTES
    regime_work: list[Future[None]] = []
    payroll_items = 0
    app = (AppPlayer(world, clock, sc, options.seed, first, end) if sc.app is not None
           else None)
    if app is not None:  # the users bind their cards as the simulation starts
        app.bind_cards()
    cards = (CardPlayer(world, spec, network, options.seed, first, bucket_us,
                        US_PER_DAY // bucket_us, options.days)
             if spec.cards is not None else None)  # card traffic (sim/sim_cards.py)
    expected += cards.items_per_day() * options.days if cards is not None else 0

    def hold(now_us: int, b: Batch) -> npt.NDArray[np.bool_]:
        """Transfers that may not go now: a stress period (sim/stress.py), or a bank's
        cash manager keeping an HVPS payment back (sim/policies.py)."""
        back = held_back(sc.sim.stress, names, system_names, now_us, b.sender, b.system)
        cutoff_us = midnight_us(now_us) + cutoff_minutes * US_PER_MINUTE
        for k, policy in deciders:
            mine = np.flatnonzero((b.sender == k) & (b.system == TrafficSystem.HVPS) & ~back)
            if mine.size:
                go = release(policy, now_us, cutoff_us, b.at_us[mine], b.amount_fen[mine],
                             hvps.available_fen(names[k]), int(metrics.opening_fen[k]))
                back[mine[~go]] = True
        return back

    def tick_until(at_us: int) -> None:
        for _ in range(MAX_TICKS_PER_WINDOW):
            due = world.next_due_us()
            if due is None or due > at_us:
                return
            clock.advance_to(max(due, clock.now_us()))
            runner.engine.tick()
        raise AssertionError(f"the world kept asking to be ticked before {format_time(at_us)}")

    def arrivals_until(traffic: DayGenerator, until_us: int) -> Batch:
        """The day's transfers arriving before ``until_us`` not sent yet, generated
        now (nothing arrives before the clock starts)."""
        fresh = traffic.take_until(until_us, ahead, pool)
        keep = fresh.at_us >= sc.start_us
        at, amount = fresh.at_us[keep], fresh.amount_fen[keep]
        system = fresh.system[keep].astype(np.int64)
        payer, payee = fresh.payer[keep], fresh.payee[keep]
        sender, receiver = participant_of[payer], participant_of[payee]
        for s in SYSTEMS:
            mine = system == s
            generated[s] += (int(mine.sum()), int(amount[mine].sum()))
        # the regimes' tallies (sorts, mostly without the GIL) in the pool, in order
        regime_work.append(pool.submit(regimes.add, at, sender, receiver, amount))
        return _split(Batch(at, system, payer, payee, sender, receiver, amount,
                            np.full(len(at), -1, np.int64), np.zeros(len(at), np.bool_)),
                      splitters)

    for day in range(options.days):
        midnight = first + day * US_PER_DAY
        tick_until(max(midnight, clock.now_us()))
        metrics.start_day(day, state.balances())
        payroll = sc.sim.payroll
        traffic = DayGenerator(day_specs[day], network, limits, options.seed, day, midnight,
                               business[day], payroll if payroll is not None
                               and payroll.on(to_beijing(midnight).date()) else None)
        payroll_items += traffic.payroll_items
        if app is not None:
            app.start_day(day, midnight)
        if cards is not None:
            cards.start_day(day, midnight)
        regimes.start_day(midnight + US_PER_DAY)
        t = max(midnight, clock.now_us())
        day_end = midnight + US_PER_DAY
        while t < day_end:
            tick_until(t)
            w_end = min(t + chunk_us, day_end)
            due = world.next_due_us()
            if due is not None and t < due < w_end:
                w_end = due  # the world has something to do then: the window stops there
            cut = next((c for c in cuts if t < c < w_end), None)
            if cut is not None:
                w_end = cut  # a stress period starts or ends then
            fresh = arrivals_until(traffic, w_end)
            if len(held):
                # what waits goes again as the window opens (after a session, at the end
                # of a stress period), then with the window's arrivals
                now = max(t, clock.now_us())
                clock.advance_to(now)
                held = _send(world, held, now, metrics, hold(now, held))
            if app is not None:  # the app's events of the window, a group per minute
                app.play_until(w_end)
            if len(fresh):
                now = max(int(fresh.at_us[-1]), clock.now_us())
                clock.advance_to(now)
                batch = Batch.concat([held, fresh])
                held = _send(world, batch, now, metrics, hold(now, batch))
                done += len(fresh)
            del fresh
            if cards is not None:  # the window's card transactions: one batch
                done += cards.play_until(w_end, sc.start_us, clock)
            tick_until(w_end)
            metrics.sample(state.sample(w_end - 1, held))
            t = w_end
            if on_progress is not None:
                on_progress(t, done, expected)
        for work in regime_work:
            work.result()
        regime_work.clear()
        regimes.end_day()
        traffic.close()
        for name in names:  # pledge credit left unpaid as the day ends (overnight)
            line = hvps.credit.get(name)
            overnight_fen[name] += line.overnight_fen if line else 0
    clock.advance_to(max(end, clock.now_us()))
    tick_until(end)
    # what is still held at the end has the fate it last had (never sent: not settled)
    code = np.where(held.last_code < 0, int(BulkCode.NOT_SETTLED), held.last_code)
    if metrics.day is None:
        metrics.start_day(options.days - 1, state.balances())
    metrics.outcomes(_outcomes(held, code, end - 1))
    tables = metrics.tables()
    summary = _summary(runner, sc, spec, options, metrics, generated, first, end)
    rates = sc.sim.costs
    summary["costs"] = bank_costs(rates, rates.overnight_ppm if rates.overnight_ppm is not None
                                  else int(sc.params["hvps.credit_rate"]), names, tables,
                                  overnight_fen)
    summary["cash_managers"] = {name: p.kind.value for name, p in sc.sim.cash_managers}
    if holidays := holiday_summary(sc.sim.stress, calendar.is_business_day):
        summary["holidays"] = holidays
    summary["reasons"] = {c.name.lower(): REASONS[c] for c in OUTCOMES if REASONS[c]}
    regimes.cnaps(_daily_peak_liquidity(tables), metrics.waited_value_s(),
                  int(generated[:, 1].sum()))
    summary["regimes"] = regimes.summary((end - first) / US_PER_SECOND)
    if sc.sim.payroll is not None:
        p = sc.sim.payroll
        summary["payroll"] = {"days": list(p.days), "share_ppm": p.share_ppm,
                              "mean_fen": p.mean_fen, "sigma_ppm": p.sigma_ppm,
                              "generated_items": payroll_items}
    if cards is not None:
        summary["cards"] = cards.summary(first, end)
        tables["cards"] = cards.table()
    if app is not None:
        summary["app"] = app.summary()
        summary["checks"].update(app.checks())
        tables["app"] = app.table(first, bucket_us)
    return Result(summary, tables, done, time.perf_counter() - wall0)


def _daily_peak_liquidity(tables: dict[str, pa.Table]) -> int:
    """The largest day's liquidity used by all participants together (each at its own
    peak of that day)."""
    peak: dict[tuple[str, str], int] = {}
    for r in tables["liquidity"].select(["bucket_start", "participant",
                                         "liquidity_used_fen"]).to_pylist():
        key = (r["bucket_start"][:10], r["participant"])
        peak[key] = max(peak.get(key, 0), int(r["liquidity_used_fen"]))
    days: dict[str, int] = {}
    for (day, _), value in peak.items():
        days[day] = days.get(day, 0) + value
    return max(days.values(), default=0)


def _split(b: Batch, max_piece_fen: dict[int, int]) -> Batch:
    """The HVPS payments of banks whose cash manager splits them, in pieces (in place of
    the payment, in its arrival order)."""
    limit = np.zeros(len(b), np.int64)
    for k, piece in max_piece_fen.items():
        limit[b.sender == k] = piece
    big = np.flatnonzero((b.system == TrafficSystem.HVPS) & (limit > 0)
                         & (b.amount_fen > limit))
    if not big.size:
        return b
    counts = np.ones(len(b), np.int64)
    amounts = [b.amount_fen[:0]] * len(b)  # filled for the split payments only
    for row in big.tolist():
        _, pieces = split(int(limit[row]), b.amount_fen[row:row + 1])
        counts[row] = len(pieces)
        amounts[row] = pieces
    out = b.take(np.repeat(np.arange(len(b)), counts))
    amount = out.amount_fen.copy()
    starts = np.cumsum(counts) - counts  # where each payment's rows start
    for row in big.tolist():
        amount[starts[row]:starts[row] + counts[row]] = amounts[row]
    return dataclasses.replace(out, amount_fen=amount)


def _outcomes(b: Batch, code: npt.NDArray[np.int64], done_us: int) -> Outcomes:
    return Outcomes(done_us, b.at_us, b.system, b.payer, b.payee, b.sender, b.receiver,
                    b.amount_fen, code.astype(np.int64), queue_seconds(done_us, b.at_us,
                                                                       b.waited))


def _send(world: World, batch: Batch, now_us: int, metrics: Metrics,
          back: npt.NDArray[np.bool_]) -> Batch:
    """One window's batch through the bulk path (what waited first, in arrival order),
    but for the transfers held ``back``; what must wait comes back, in arrival order
    (docs/SIMULATE.md, "Queues")."""
    hvps_open = world.cnaps.hvps.phase(now_us)[0] is HvpsPhase.OPEN
    sent = batch.take(np.flatnonzero(~back))
    codes = np.asarray(world.banks.bulk_transfers(
        sent.payer, sent.payee, sent.amount_fen, sent.system == TrafficSystem.IBPS),
        np.int64)
    again = (((codes == BulkCode.NOT_SETTLED) & (sent.system == TrafficSystem.HVPS)
              & hvps_open)
             | ((codes == BulkCode.OVER_CAP) & (sent.system == TrafficSystem.BEPS)))
    final = np.flatnonzero(~again)
    metrics.outcomes(_outcomes(sent.take(final), codes[final], now_us))
    metrics.lsm(now_us, world.cnaps.batch_lsm)
    wait = np.flatnonzero(again)
    kept = batch.take(np.flatnonzero(back))
    requeued = sent.take(wait)
    held = Batch.concat([
        dataclasses.replace(kept, waited=np.ones(len(kept), np.bool_)),
        dataclasses.replace(requeued, last_code=codes[wait],
                            waited=np.ones(len(wait), np.bool_))])
    return held.take(np.argsort(held.at_us, kind="stable"))


# ---------------------------------------------------------------------- the report


def _summary(runner: Runner, sc: Scenario, spec: TrafficSpec, options: Options,
             metrics: Metrics, generated: npt.NDArray[np.int64], first: int, end: int
             ) -> dict[str, Any]:
    world = runner.world
    systems: dict[str, Any] = {}
    for s in SYSTEMS:
        target = next((t for t in spec.systems if t.system is s), None)
        n, value = int(generated[s, 0]), int(generated[s, 1])
        items = metrics.total_items[s].sum(axis=0)
        values = metrics.total_value[s].sum(axis=0)
        systems[s.name] = {
            "target_items_per_day": spec.items_per_day(target) if target else 0,
            "target_mean_fen": round(target.mean_fen) if target else 0,
            "generated_items": n, "generated_value_fen": value,
            "generated_mean_fen": value // n if n else 0,
            "outcomes": {c.name.lower(): {"items": int(items[c]), "value_fen": int(values[c])}
                         for c in OUTCOMES if items[c]},
            "credited_value_fen": int(values[BulkCode.CREDITED]),
            **metrics.system_summary(s),
        }
    sessions: dict[str, list[dict[str, Any]]] = {}
    for name in ("BEPS", "IBPS"):
        sessions[name] = [
            {"at": format_time(int(x["at_us"])), "status": x["status"],
             "positions_fen": dict(sorted(x["positions"].items())),
             "gross_debits_fen": -sum(v for v in x["positions"].values() if v < 0)}
            for x in world.cnaps.net[name].sessions if first <= int(x["at_us"]) <= end]
    banks = world.banks
    return {
        "scenario": sc.name,
        "seed": options.seed, "scale": spec.scale, "days": options.days,
        "from": format_time(first), "to": format_time(end),
        "bucket_minutes": options.bucket_minutes, "chunk_minutes": options.chunk_minutes,
        "participants": len(sc.participants), "customers": len(banks.directory),
        "systems": systems,
        "participant_metrics": metrics.participant_summary(),
        "net_sessions": sessions,
        "open_net_positions_fen": {name: dict(sorted(world.cnaps.net[name].positions.items()))
                                   for name in ("BEPS", "IBPS")},
        "checks": {
            "books_balanced": reconcile.books_balanced(banks),
            "money_conserved": reconcile.money_conserved(banks),
            "mirrors_match": reconcile.mirrors_match(banks),
            "suspense_explained": reconcile.suspense_explained(banks),
        },
    }
