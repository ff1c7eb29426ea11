"""``qingsuan simulate``: generated traffic through the world (registered by cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from qingsuan.cli_common import err, fail, load_or_exit, out, store_url, writable_dir
from qingsuan.clock import format_time
from qingsuan.money import format_fen

# The simulator (numpy, pyarrow, matplotlib, Dask) is imported when a simulation runs,
# not with the CLI: every other command (run, serve, log verify) starts faster.
if TYPE_CHECKING:
    from qingsuan.sim.simulate import Options, Result

#: local Dask worker processes a sweep may start
MAX_WORKERS: Final = 64


def simulate(
    file: Annotated[Path, typer.Argument(help="scenario file with a traffic: block "
                                              "(docs/SIMULATE.md)")],
    days: Annotated[int, typer.Option(help="whole days to simulate, from the start's "
                                           "midnight")] = 1,
    seed: Annotated[int, typer.Option(help="same seed, same traffic, same summary.json")] = 0,
    scale: Annotated[float | None, typer.Option(
        help="share of the daily targets to generate (default: the block's scale)")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="write summary.json, the metrics' Parquet tables and report.html "
                      "into this folder")] = None,
    store: Annotated[str, typer.Option(
        help="command log: memory: (default) or a new PATH.db / postgresql://...")
    ] = "memory:",
    chunk_minutes: Annotated[int, typer.Option(
        help="simulated minutes of arrivals sent to the banks as one batch")] = 10,
    generate_minutes: Annotated[int, typer.Option(
        help="simulated minutes of arrivals generated at once (memory; the output does "
             "not depend on it)")] = 60,
    bucket_minutes: Annotated[int, typer.Option(
        help="metrics' time bucket, minutes (must divide a day)")] = 60,
    keep_items: Annotated[bool, typer.Option(
        help="also write items.parquet, one row per transfer, and keep the ledger's history "
             "of postings (without it, full blocks of rows are hashed and dropped; memory "
             "grows with the run)")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show the progress display")] = True,
    sweep: Annotated[list[str] | None, typer.Option(
        metavar="NAME=SPEC",
        help="run a grid instead of one run: NAME=START:STOP:COUNT or NAME=V1,V2 "
             "(liquidity, buffer; lsm=off,bilateral,multilateral,lsm); repeat for a "
             "grid")] = None,
    workers: Annotated[int, typer.Option(
        help="with --sweep: worker processes of the local Dask cluster (0: in this "
             "process)")] = 2,
    scheduler: Annotated[str | None, typer.Option(
        metavar="ADDRESS", help="with --sweep: the address of an existing Dask scheduler "
             "(tcp://HOST:PORT)")] = None,
) -> None:
    """Simulate days of generated traffic (customer transfers through HVPS, BEPS and IBPS;
    card purchases through the card switch with a cards system; with an app: block, the
    consumer app's payments, wallets and voucher campaign) through
    the banks and CNAPS; print a summary, write metrics and report.html with --out;
    with --sweep, run a grid of settings on Dask and draw the liquidity-delay curve."""
    if out_dir is not None:
        writable_dir(out_dir, "--out")
    url = store_url(store)
    if url.holds_a_log():
        fail(f"--store: {store} already holds a log: simulate builds a new world "
             "(give a new file, or memory:)")
    from qingsuan.sim.simulate import Options

    try:
        options = Options(days=days, seed=seed, scale=scale, store=store,
                          chunk_minutes=chunk_minutes, bucket_minutes=bucket_minutes,
                          keep_items=keep_items, generate_minutes=generate_minutes)
    except ValueError as exc:
        fail(str(exc))
    sc = load_or_exit(file)
    if sc.traffic is None and sc.app is None:
        fail(f"{file}: no traffic: block (nor app: block) to simulate (see docs/SIMULATE.md)")
    if sweep and sc.traffic is None:
        fail(f"{file}: --sweep varies the traffic: block's liquidity: the file has none")
    if sc.events:
        err().print(f"{file}: note: simulate plays the generated traffic only; its "
                    f"{len(sc.events)} scripted events are for run and demo", markup=False)
    if sweep:
        _sweep(file, options, sweep, workers, scheduler, out_dir)
        return
    try:
        result = _with_progress(sc, options, progress)
    except ValueError as exc:
        fail(str(exc))
    written = result.write(out_dir) if out_dir is not None else []
    _print_summary(out(), result, written)


def _sweep(file: Path, options: Options, specs: list[str], workers: int,
           scheduler: str | None, out_dir: Path | None) -> None:
    from qingsuan.sim.metrics import write_tables
    from qingsuan.sim.report import render_sweep, setting
    from qingsuan.sim.sweep import grid, parse_axis, run_sweep
    from qingsuan.sim.sweep import table as sweep_table

    if options.store != "memory:":
        fail("--sweep runs every point on a memory: store (drop --store)")
    if not 0 <= workers <= MAX_WORKERS:
        fail(f"--workers must be from 0 to {MAX_WORKERS} (got {workers})")
    try:
        axes = [parse_axis(x) for x in specs]
        points = len(grid(axes))
    except ValueError as exc:
        fail(str(exc))
    err().print(f"sweep: {points} points on "
                + (scheduler if scheduler else f"{workers} local worker(s)" if workers
                   else "this process"), markup=False)
    t0 = time.perf_counter()
    try:
        rows = run_sweep(file.read_text(encoding="utf-8"), str(file), options, axes,
                         workers=workers, scheduler=scheduler)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    sc = load_or_exit(file)
    assert sc.traffic is not None
    doc = {"scenario": sc.name, "seed": options.seed, "days": options.days,
           "scale": options.scale if options.scale is not None else sc.traffic.scale,
           "axes": [{"name": a.name, "values": list(a.values)} for a in axes],
           "points": rows}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"{sc.name}: sweep")
    for col in (*(a.name for a in axes), "queue time s", "not settled CNY",
                "liquidity used CNY", "costs CNY", "checks"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(*(setting(r[a.name]) for a in axes), f"{r['hvps_queue_time_s']:,.1f}",
                      _short_cny(r["hvps_not_settled_value_fen"]),
                      _short_cny(r["liquidity_used_fen"]), _short_cny(r["costs_fen"]),
                      "yes" if r["checks"] else "NO")
    console = out()
    console.print(table)
    console.print(f"{len(rows)} points in {time.perf_counter() - t0:.1f} s")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "sweep.json").write_text(
            json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8")
        write_tables({"sweep": sweep_table(axes, rows)}, out_dir)
        (out_dir / "report.html").write_text(render_sweep(doc), encoding="utf-8")
        console.print(f"wrote {out_dir}: sweep.json, sweep.parquet, report.html",
                      markup=False)
    if not all(r["checks"] for r in rows):
        raise typer.Exit(1)


def _with_progress(sc: Any, options: Options, show: bool) -> Result:
    from qingsuan.sim.simulate import simulate as run_simulation

    if not show:
        return run_simulation(sc, options)
    columns = (TextColumn("{task.fields[now]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("items  {task.fields[rate]} items/s"), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("simulate", total=None, now="", rate="-")
        t0 = time.perf_counter()

        def update(now_us: int, done: int, expected: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, total=max(expected, done),
                       now=format_time(now_us)[:16], rate=f"{rate:,.0f}")

        return run_simulation(sc, options, update)


def _short_cny(fen: int) -> str:
    """An amount for a table people read (exact amounts are in summary.json)."""
    cny = fen / 100
    for unit, size in (("tn", 1e12), ("bn", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(cny) >= size:
            return f"{cny / size:,.1f} {unit}"
    return format_fen(fen)


def _print_summary(console: Console, result: Result, written: list[Path]) -> None:
    s = result.summary
    title = (f"{s['scenario']}: {s['days']} day(s) from {s['from'][:10]}, "
             f"scale {s['scale']:g}, seed {s['seed']}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title)
    for col in ("system", "items", "credited", "no\nfunds", "not\nsettled", "over\ncap",
                "other", "credited\nCNY", "mean\nCNY", "queue\ntime s"):
        table.add_column(col, justify="left" if col == "system" else "right", no_wrap=True)
    for name, sysm in s["systems"].items():
        outcomes = sysm["outcomes"]

        def count(key: str, outcomes: dict[str, Any] = outcomes) -> int:
            return int(outcomes.get(key, {}).get("items", 0))

        shown = ("credited", "no_funds", "not_settled", "over_cap")
        other = sum(v["items"] for k, v in outcomes.items() if k not in shown)
        table.add_row(name, f"{sysm['generated_items']:,}",
                      *(f"{count(k):,}" for k in shown), f"{other:,}",
                      _short_cny(sysm["credited_value_fen"]),
                      _short_cny(sysm["generated_mean_fen"]), f"{sysm['queue_time_s']:,.1f}")
    console.print(table)
    sessions = s["net_sessions"]
    console.print("net sessions: " + ", ".join(
        f"{name} {sum(x['status'] == 'settled' for x in v)} settled"
        for name, v in sessions.items()))
    if "app" in s:
        app = s["app"]
        console.print(f"app: {app['payments']['items']:,} payments, "
                      f"{app['payments']['approved_items']:,} approved "
                      f"({_short_cny(app['payments']['approved_value_fen'])} CNY)"
                      + (f"; campaign {app['campaign']['id']}: {app['campaign']['used']:,} "
                         f"vouchers used of {app['campaign']['claimed']:,} claimed, "
                         f"leverage {app['campaign']['leverage']}"
                         if "campaign" in app else ""), markup=False)
    if "cards" in s:
        cards = s["cards"]
        declined = ", ".join(f"{k} {v['items']:,}" for k, v in cards["outcomes"].items()
                             if k != "approved")
        console.print(f"cards: {cards['generated_items']:,} purchases, "
                      f"{cards['outcomes'].get('approved', {}).get('items', 0):,} approved "
                      f"({_short_cny(cards['approved_value_fen'])} CNY), declined: "
                      f"{declined or 'none'}; {len(cards['clearing_days'])} clearing "
                      f"day(s) closed, {len(cards['settlements'])} CUPS session(s)",
                      markup=False)
    checks = s["checks"]
    console.print("checks: " + ", ".join(f"{k} {'yes' if v else 'NO'}"
                                         for k, v in checks.items()))
    rate = result.items / max(result.wall_s, 1e-9)
    console.print(f"{result.items:,} transfers in {result.wall_s:.1f} s ({rate:,.0f} items/s)")
    if written:
        console.print(f"wrote {written[0].parent}: " + ", ".join(p.name for p in written),
                      markup=False)
    if not all(checks.values()):
        raise typer.Exit(1)
