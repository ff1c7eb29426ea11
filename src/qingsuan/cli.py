"""The ``qingsuan`` command."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qingsuan import __version__, cli_cards
from qingsuan.cli_common import EXIT_INVALID
from qingsuan.cli_common import err as _err
from qingsuan.cli_common import load_or_exit as _load
from qingsuan.cli_common import out as _out
from qingsuan.cli_log import log_app
from qingsuan.params import SPECS
from qingsuan.sim.narrate import narrator
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario

app = typer.Typer(
    help="清算 Qingsuan: a working model of China's interbank payment system "
         "(CNAPS HVPS/BEPS/IBPS, card switch, banks) on one deterministic engine.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)
app.add_typer(log_app, name="log")
cards_app = typer.Typer(help="The card switch: send requests to `qingsuan serve`, load it, "
                             "reconcile clearing files.", no_args_is_help=True)
app.add_typer(cards_app, name="cards")
cnaps_app = typer.Typer(help="Talk ISO 20022 to the CNAPS of a stored world (a file-based "
                             "sandbox: build the world with `qingsuan run FILE --store PATH.db`).",
                        no_args_is_help=True)
app.add_typer(cnaps_app, name="cnaps")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="scenario file (YAML, see docs/SCENARIOS.md)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as one JSON "
                                          "object (the SCENARIO.md contract)")] = False,
    store: Annotated[str | None, typer.Option(
        help="command log: memory:, PATH.db (SQLite) or postgresql://...; default a "
             "temporary SQLite file")] = None,
    clearing_files: Annotated[Path | None, typer.Option(
        "--clearing-files", help="write each participant's card clearing file of each "
                                 "closed clearing day into this directory")] = None,
) -> None:
    """Run a scenario on the virtual clock and print its outcome.

    Exit code 0 when the scenario ran (whatever the payments' fates), 2 when the file is
    invalid (every problem is listed with its line; nothing runs).
    """
    scenario = _load(file)
    outcome = run_scenario(scenario, store=store, clearing_dir=clearing_files)
    if as_json:
        sys.stdout.write(json.dumps(outcome, ensure_ascii=False, indent=2) + "\n")
        return
    _print_outcome(outcome)


@app.command()
def check(file: Annotated[Path, typer.Argument(help="scenario file")]) -> None:
    """Validate a scenario without running it (exit 0 valid, 2 invalid)."""
    scenario = _load(file)
    _out().print(f"{file}: valid: {len(scenario.participants)} participants, "
                 f"{len(scenario.customers)} customers, {len(scenario.events)} events")


@app.command()
def params() -> None:
    """List every rule parameter with its documented default."""
    table = Table(title="Parameters (override under params: in a scenario)")
    table.add_column("name")
    table.add_column("default", justify="right")
    table.add_column("meaning")
    for spec in SPECS:
        table.add_row(spec.name, spec.default, spec.doc)
    _out().print(table)


def _builtin(name: str) -> Path:
    path = Path(str(resources.files("qingsuan") / "scenarios" / f"{name}.yaml"))
    if not path.exists():
        names = sorted(p.stem for p in Path(path.parent).glob("*.yaml"))
        _err().print(f"no built-in story {name!r}; available: {', '.join(names)}")
        raise typer.Exit(EXIT_INVALID)
    return path


DEMO_ORDER = ("intrabank", "cards", "cards-refund", "cards-timeout", "cards-disputes",
              "cards-preauth", "netting", "channels", "hvps-queue", "hvps-gridlock",
              "hvps-end-of-day", "returns", "ibps-night", "weekend", "holiday-cards")

#: built-in scenarios that are worlds, not stories (no events to play)
NOT_STORIES = frozenset({"card-sandbox"})


def demo(
    story: Annotated[str | None, typer.Option(
        help="play only this built-in story (see --list); default: all, in order")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the built-in stories")] = False,
    step: Annotated[bool, typer.Option("--step", help="wait for Enter between steps")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="outcomes as JSON (by story)")] = False,
) -> None:
    """Play the built-in stories, narrating every step and every ledger posting in every
    book, then a summary table. The stories run on the embedded SQLite command log."""
    folder = Path(str(resources.files("qingsuan") / "scenarios"))
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    ordered = [n for n in DEMO_ORDER if n in names] + [
        n for n in names if n not in DEMO_ORDER and n not in NOT_STORIES]
    if list_:
        for name in ordered:
            sc = load_scenario(folder / f"{name}.yaml")
            _out().print(f"[bold]{name}[/]: {' '.join(sc.description.split())}")
        return
    chosen = [story] if story is not None else ordered
    scenarios = [_load(_builtin(name)) for name in chosen]
    out = _out()
    if as_json:
        doc = {sc.name: run_scenario(sc) for sc in scenarios}
        sys.stdout.write(json.dumps(doc if story is None else doc[scenarios[0].name],
                                    ensure_ascii=False, indent=2) + "\n")
        return
    summary = []
    for scenario in scenarios:
        out.rule(f"[bold]{scenario.name}[/]")
        if scenario.description:
            out.print(" ".join(scenario.description.split()))
        outcome = run_scenario(scenario, on_step=narrator(out, step=step))
        out.print()
        _print_outcome(outcome)
        statuses: dict[str, int] = {}
        for p in outcome["payments"].values():
            statuses[p["status"]] = statuses.get(p["status"], 0) + 1
        summary.append((scenario.name, ", ".join(f"{n} {k}" for k, n in statuses.items()),
                        "yes" if all(outcome["checks"].values()) else "NO"))
    if len(summary) > 1:
        table = Table(title="Summary: every story, its payments' fates, and the checks "
                            "(books balanced, money conserved, mirrors match)")
        for col in ("story", "payments", "checks pass"):
            table.add_column(col)
        for row in summary:
            table.add_row(*row)
        out.print(table)


app.command()(demo)


def _print_outcome(outcome: dict[str, Any]) -> None:
    out = _out()
    table = Table(title=f"Payments of {outcome['scenario']}")
    for col in ("id", "kind", "system", "status", "reason"):
        table.add_column(col)
    for pid, p in outcome["payments"].items():
        reason = p["reason"]
        table.add_row(pid, p["kind"], p["system"], p["status"],
                      f"{reason['code']} {reason['message']}" if reason else "")
    out.print(table)
    bal = Table(title="Balances (CNY)")
    bal.add_column("account")
    bal.add_column("balance", justify="right")
    for group, values in outcome["balances"].items():
        for name, amount in values.items():
            bal.add_row(f"{group}: {name}", amount)
    out.print(bal)
    checks = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in outcome["checks"].items())
    out.print(f"checks: {checks}; ended {outcome['ended_at']}")


@cards_app.command("reconcile")
def cards_reconcile(
    switch_file: Annotated[Path, typer.Argument(help="the clearing file the switch sent")],
    own_file: Annotated[Path, typer.Argument(help="the participant's own records, in the "
                                                  "same format")],
) -> None:
    """对账: compare a participant's own records with the switch's clearing file. Exit 0
    when everything matches, 1 when there are differences, 2 when a file is malformed."""
    from qingsuan.cards.files import ClearingFileError, parse_clearing_file, reconcile

    parsed = []
    for path in (switch_file, own_file):
        try:
            parsed.append(parse_clearing_file(path.read_text(encoding="utf-8")))
        except ClearingFileError as exc:
            _err().print(f"{path}: {exc}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
        except (OSError, UnicodeDecodeError) as exc:
            _err().print(f"{path}: cannot read: {exc}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
    (_, switch_details, _), (_, own_details, _) = parsed
    try:
        report = reconcile(own_details, switch_details)
    except ValueError as exc:
        _err().print(f"{own_file}: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    _out().print(report.summary(), markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _open_world(store: str, at: str | None) -> Any:
    """The engine of a stored world, with its clock at ``at`` or the log's last time."""
    from qingsuan.clock import VirtualClock, parse_time
    from qingsuan.engine import ReplayError
    from qingsuan.store import LogError
    from qingsuan.world import World

    if not store.startswith(("memory:", "postgres")) and not Path(
            store.removeprefix("sqlite:///")).exists():
        _err().print(f"no such command log: {store}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    clock = VirtualClock(0)
    try:
        world = World.open(store, clock)
    except (LogError, ReplayError) as exc:
        _err().print(str(exc), markup=False)
        raise typer.Exit(1) from None
    engine = world.engine
    start = engine.ledger.last_timestamp_us
    if at is not None:
        try:
            start = max(start, parse_time(at, field="--at"))
        except ValueError as exc:
            _err().print(str(exc), markup=False)
            raise typer.Exit(EXIT_INVALID) from None
    clock.advance_to(start)
    return engine, world


@cnaps_app.command("send")
def cnaps_send(
    file: Annotated[Path, typer.Argument(help="pacs.008, pacs.009 or camt.056 XML file")],
    participant: Annotated[str, typer.Option("--as", help="the sending participant's name")],
    store: Annotated[str, typer.Option(help="the world's command log (PATH.db or "
                                            "postgresql://...)")],
    at: Annotated[str | None, typer.Option(help="Beijing time of sending (default: the "
                                                 "log's last time)")] = None,
) -> None:
    """Send one ISO 20022 message as a participant; print the answer (pacs.002/camt.029)."""
    from qingsuan.cnaps.gateway import CnapsGateway

    try:
        xml = file.read_bytes()
    except OSError as exc:
        _err().print(f"{file}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    engine, world = _open_world(store, at)
    cnaps = world.cnaps
    if participant not in cnaps.directory:
        _err().print(f"no participant named {participant!r} in {store}", markup=False)
        engine.close()
        raise typer.Exit(EXIT_INVALID)
    try:
        engine.tick()  # the day cycle catches up to the sending time
        answer = CnapsGateway(cnaps, world.banks).receive(xml, participant)
    finally:
        engine.close()
    sys.stdout.write(answer.decode() + "\n")


@cnaps_app.command("statement")
def cnaps_statement(
    participant: Annotated[str, typer.Option("--as", help="the participant's name")],
    store: Annotated[str, typer.Option(help="the world's command log")],
    date: Annotated[str | None, typer.Option(help="business date YYYY-MM-DD of a closed "
                                                   "day (camt.053); omit for the intraday "
                                                   "report (camt.052)")] = None,
) -> None:
    """Print a participant's own settlement account statement (camt.053) or intraday
    report (camt.052)."""
    import datetime as dt

    from qingsuan.cnaps.gateway import CnapsGateway

    engine, world = _open_world(store, None)
    cnaps = world.cnaps
    try:
        if participant not in cnaps.directory:
            _err().print(f"no participant named {participant!r} in {store}", markup=False)
            raise typer.Exit(EXIT_INVALID)
        gateway = CnapsGateway(cnaps)
        if date is None:
            xml = gateway.intraday_report(participant)
        else:
            try:
                xml = gateway.statement(participant, dt.date.fromisoformat(date))
            except (KeyError, ValueError) as exc:
                _err().print(str(exc).strip("'\""), markup=False)
                raise typer.Exit(EXIT_INVALID) from None
    finally:
        engine.close()
    sys.stdout.write(xml.decode() + "\n")


app.command()(cli_cards.serve)
cards_app.command("send")(cli_cards.cards_send)
cards_app.command("load")(cli_cards.cards_load)


def version_callback(value: bool) -> None:
    if value:
        _out().print(f"qingsuan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=version_callback,
                                          is_eager=True, help="print the version")] = False,
) -> None:
    """清算 Qingsuan."""


def main() -> None:
    app()
