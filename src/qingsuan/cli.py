"""The ``qingsuan`` command."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from qingsuan import __version__, cli_cards, cli_fuzz, cli_simulate
from qingsuan.cli_common import (
    EXIT_INVALID,
    StoreUrl,
    clip,
    fail,
    open_log_or_exit,
    quoted,
    reason,
    store_url,
    stored_world_spec,
    warn_events_after_run_until,
    writable_dir,
)
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
    resume: Annotated[bool, typer.Option(
        "--resume", help="the store holds this scenario's run (stopped or finished): "
                         "continue it")] = False,
    new: Annotated[bool, typer.Option(
        "--new", help="the store holds a run: delete it and start again (SQLite only)")
                   ] = False,
    clearing_files: Annotated[Path | None, typer.Option(
        "--clearing-files", help="write each participant's card clearing file of each "
                                 "closed clearing day into this directory")] = None,
) -> None:
    """Run a scenario on the virtual clock and print its outcome.

    Exit code 0 when the scenario ran (whatever the payments' fates), 2 when the file is
    invalid (every problem is listed with its line; nothing runs) or an option is wrong: a
    --store that already holds a run needs --resume (continue it) or --new (replace it).
    """
    if resume and new:
        fail("--resume continues the stored run, --new replaces it: give one of them")
    scenario = _load(file)
    if clearing_files is not None:
        writable_dir(clearing_files, "--clearing-files")
    if store is not None:
        _prepare_store(store_url(store), scenario, resume=resume, new=new)
    elif resume or new:
        fail("--resume and --new are about a --store: without one the run uses a new "
             "temporary store")
    warn_events_after_run_until(scenario)
    from qingsuan.store import NotAStoreError, WriterLockedError

    try:
        with _run_progress(len(scenario.events)) as progress:
            outcome = run_scenario(scenario, store=store, clearing_dir=clearing_files,
                                   on_progress=progress)
    except (WriterLockedError, NotAStoreError) as exc:  # (nothing was written)
        fail(f"--store: {reason(exc)}")
    if as_json:
        sys.stdout.write(json.dumps(outcome, ensure_ascii=False, indent=2) + "\n")
        return
    _print_outcome(outcome)


#: scenarios with more events than this show a progress bar (on a terminal's stderr)
PROGRESS_EVENTS = 20_000


@contextlib.contextmanager
def _run_progress(events: int) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr for a long run, when stderr is a terminal (so a
    script reading --json sees nothing of it); otherwise nothing."""
    err = _err()
    if events < PROGRESS_EVENTS or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("events", total=events)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _prepare_store(url: StoreUrl, scenario: Any, *, resume: bool, new: bool) -> None:
    """Make sure ``run --store`` does what it was asked: a store already holding a run is
    continued only with --resume (and only for the same world), replaced only with --new."""
    from qingsuan.world import world_spec

    if url.kind == "memory" or (url.path is not None and not url.path.exists()):
        return  # a new store
    if url.path is not None and url.path.stat().st_size == 0:
        if not new:
            fail(f"--store: {quoted(url.text)} is an empty file, not a command log: give "
                 "--new to make one there, or another --store")
        url.path.unlink()
        return
    spec, count = stored_world_spec(url)
    if spec is None:  # created, nothing logged yet: a new store
        return
    held = f"{quoted(url.text)} already holds a run of {quoted(spec.get('name'))} " \
           f"({count} log entries)"
    if new:
        if url.kind != "sqlite":
            fail(f"--new: {held}; the run deletes only SQLite files: drop its tables "
                 "yourself, or name another database or ?schema=")
        assert url.path is not None
        open_log_or_exit(url, readonly=False).close()  # nobody is writing to it
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{url.path}{suffix}").unlink(missing_ok=True)
        return
    if not resume:
        fail(f"--store: {held}: give --resume to continue it, --new to delete it and start "
             "again, or another --store")
    from qingsuan.cards.vault import CardKeyError, resolve

    try:  # the cards as the store's own key makes them (cards/vault.py)
        vault = resolve(str(url.path) if url.path else url.text) if scenario.cards else None
    except CardKeyError as exc:
        fail(f"--store: {exc}")
    mine = json.loads(json.dumps(world_spec(scenario, vault), sort_keys=True,
                                 ensure_ascii=False))
    if spec != mine:
        what = (f"this file is {quoted(scenario.name)}" if spec.get("name") != scenario.name
                else "this file describes another world under the same name (" + ", ".join(
                    k for k in sorted(set(spec) | set(mine)) if spec.get(k) != mine.get(k))
                + " differ)")
        fail(f"--resume: {held}, and {what}: resume it with the file it was built from, or "
             "give --new")


@app.command()
def check(file: Annotated[Path, typer.Argument(help="scenario file")]) -> None:
    """Validate a scenario without running it (exit 0 valid, 2 invalid)."""
    scenario = _load(file)
    warn_events_after_run_until(scenario)
    _out().print(f"{file}: valid: {len(scenario.participants)} participants, "
                 f"{len(scenario.customers)} customers, {len(scenario.events)} events",
                 markup=False)


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


DEMO_ORDER = ("intrabank", "cards", "cards-refund", "cards-timeout", "cards-disputes",
              "cards-preauth", "netting", "channels", "hvps-queue", "hvps-gridlock",
              "hvps-end-of-day", "returns", "ibps-night", "weekend", "holiday-cards")

#: built-in scenarios that are worlds, not stories (no events to play): the card
#: sandbox's world, and the simulator's examples (stress, the app's generated day)
NOT_STORIES = frozenset({"card-sandbox", "sim-stress", "sim-holiday-week", "app-day"})


def _stories() -> list[str]:
    """The built-in stories in the order the demo plays them (by file name: the name
    ``--list``, the headings and ``--story`` use)."""
    names = sorted(p.stem for p in _story_dir().glob("*.yaml") if p.stem not in NOT_STORIES)
    return [n for n in DEMO_ORDER if n in names] + [n for n in names if n not in DEMO_ORDER]


def _story_dir() -> Path:
    return Path(str(resources.files("qingsuan") / "scenarios"))


def _builtin(name: str) -> str:
    """The story called ``name``, by its file name or the ``name:`` inside it (the one
    story whose two differ: intrabank, named intrabank-day)."""
    stories = _stories()
    if name in stories:
        return name
    for story in stories:
        if load_scenario(_story_dir() / f"{story}.yaml").name == name:
            return story
    fail(f"no built-in story {quoted(name)}; available: {', '.join(stories)}")


def demo(
    story: Annotated[str | None, typer.Option(
        help="play only this built-in story (see --list); default: all, in order")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the built-in stories")] = False,
    step: Annotated[bool, typer.Option("--step", help="wait for Enter between steps")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="outcomes as JSON (by story)")] = False,
) -> None:
    """Play the built-in stories, narrating every step and every ledger posting in every
    book, then a summary table. The stories run on the embedded SQLite command log."""
    folder = _story_dir()
    ordered = _stories()
    if list_:
        for name in ordered:
            sc = load_scenario(folder / f"{name}.yaml")
            _out().print(f"[bold]{name}[/]: {' '.join(sc.description.split())}")
        return
    chosen = [_builtin(story)] if story is not None else ordered
    stories = [(name, _load(folder / f"{name}.yaml")) for name in chosen]
    out = _out()
    if as_json:
        doc = {sc.name: run_scenario(sc) for _, sc in stories}
        sys.stdout.write(json.dumps(doc if story is None else doc[stories[0][1].name],
                                    ensure_ascii=False, indent=2) + "\n")
        return
    summary = []
    for name, scenario in stories:
        out.rule(f"[bold]{name}[/]")
        if scenario.description:
            out.print(" ".join(scenario.description.split()))
        outcome = run_scenario(scenario, on_step=narrator(out, step=step))
        out.print()
        _print_outcome(outcome)
        statuses: dict[str, int] = {}
        for p in outcome["payments"].values():
            statuses[p["status"]] = statuses.get(p["status"], 0) + 1
        summary.append((name, ", ".join(f"{n} {k}" for k, n in statuses.items()),
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


def _open_world(store: str, at: str | None, *, readonly: bool = False) -> Any:
    """The engine of a stored world, with its clock at ``at`` (not before the log's last
    time: the log never goes back) or the log's last time. ``readonly``: to read it beside
    its writer, writing and creating nothing. Exit 2 when the store does not exist, is held
    by another writer, or ``at`` is not a time the world can move to; 1 when its log is
    broken."""
    from qingsuan.clock import VirtualClock, format_time, parse_time
    from qingsuan.engine import ReplayError
    from qingsuan.store import LogError, NotAStoreError, WriterLockedError
    from qingsuan.world import World

    url = store_url(store, must_exist=True)
    at_us = None
    if at is not None:
        try:
            at_us = parse_time(at, field="--at")
        except (ValueError, OverflowError) as exc:
            fail(str(exc))
    clock = VirtualClock(0)
    try:
        world = World.open(url.text, clock, readonly=readonly)
    except (NotAStoreError, WriterLockedError) as exc:
        fail(f"--store: cannot open {quoted(store)}: {reason(exc)}")
    except (LogError, ReplayError, ValueError) as exc:
        fail(f"--store: cannot open {quoted(store)}: {reason(exc)}", 1)
    engine = world.engine
    last = max(engine.now_us, engine.ledger.last_timestamp_us)
    if at_us is not None and at_us < last:
        engine.close()
        fail(f"--at {clip(at or '')} is before the last time in {quoted(store)} "
             f"({format_time(last)}): the world's time never goes back")
    if at_us is not None:
        _check_calendar_covers(world, at_us, at or "")
    clock.advance_to(last if at_us is None else at_us)
    return engine, world


def _check_calendar_covers(world: Any, at_us: int, at: str) -> None:
    """Exit 2 (the world closed, nothing logged) when the world's business calendar has no
    data for the sending day or the next (HVPS's day D opens the evening before): the tick
    to ``at`` would be logged and then could not be applied."""
    import datetime as dt

    from qingsuan.clock import to_beijing

    calendar = world.cnaps.hvps.schedule().calendar
    if calendar.missing_year != "error":
        return
    day = to_beijing(at_us).date()
    for year in sorted({day.year, (day + dt.timedelta(days=1)).year}):
        if not calendar.covers(year):
            world.engine.close()
            years = calendar.years
            fail(f"--at {clip(at)}: the world's business calendar {calendar.name!r} covers "
                 f"{years.start}-{years.stop - 1}, not {year} (docs/CALENDAR.md)")


@cnaps_app.command("send")
def cnaps_send(
    file: Annotated[Path, typer.Argument(help="pacs.008, pacs.009, pacs.003, pacs.004, "
                                              "camt.056, pacs.028 or camt.060 XML file "
                                              "(examples/, docs/CNAPS.md)")],
    participant: Annotated[str, typer.Option("--as", help="the sending participant's name")],
    store: Annotated[str, typer.Option(help="the world's command log (PATH.db or "
                                            "postgresql://...)")],
    at: Annotated[str | None, typer.Option(help="Beijing time of sending, not before the "
                                                 "log's last time (default: that time)")
                  ] = None,
) -> None:
    """Send one ISO 20022 message as a participant; print the answer (pacs.002/camt.029;
    the camt.053/camt.052 a camt.060 asks for).

    Exit 0 when CNAPS accepted every transaction (settled, queued or netted), 1 when it
    rejected any (RJCT in the pacs.002, a refused cancellation in the camt.029), 2 on bad
    input (no such file, store or participant; --at before the log's last time)."""
    from qingsuan.cnaps.gateway import CnapsGateway

    try:
        with file.open("rb") as handle:
            xml = handle.read(_MAX_MESSAGE_BYTES + 1)
    except OSError as exc:
        fail(f"{clip(str(file))}: {exc.strerror or exc}")
    if len(xml) > _MAX_MESSAGE_BYTES:
        fail(f"{clip(str(file))}: larger than {_MAX_MESSAGE_BYTES:,} bytes: not a message "
             "CNAPS takes")
    engine, world = _open_world(store, at)
    cnaps = world.cnaps
    if participant not in cnaps.directory:
        engine.close()
        fail(f"no participant named {quoted(participant)} in {quoted(store)} (there are "
             f"{', '.join(sorted(p.name for p in cnaps.directory))})")
    try:
        engine.tick()  # the day cycle catches up to the sending time
        answer = CnapsGateway(cnaps, world.banks).receive(xml, participant)
    finally:
        engine.close()
    sys.stdout.write(answer.decode() + "\n")
    if _rejected(answer):
        raise typer.Exit(1)


#: the largest message ``cnaps send`` reads (the gateway's own limit is checked after)
_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024


def _rejected(answer: bytes) -> bool:
    """Whether CNAPS's answer refuses anything: a pacs.002 with RJCT (the message or one of
    its transactions, a camt.060 refused), a camt.029 refusing a cancellation."""
    from qingsuan.messages import (
        CAMT029,
        PACS002,
        CancelAnswer,
        MessageRejection,
        StatusReport,
        parse_inbound,
    )

    inbound = parse_inbound(answer, max_bytes=len(answer) + 1)  # (a statement may be long)
    if isinstance(inbound, MessageRejection):  # (never: CNAPS's answers are valid)
        return True
    if inbound.message_type == PACS002:
        return any(isinstance(r, StatusReport) and r.status == "RJCT" for r in inbound.items)
    if inbound.message_type == CAMT029:
        return not all(isinstance(a, CancelAnswer) and a.accepted for a in inbound.items)
    return False  # the report a camt.060 asked for


@cnaps_app.command("statement")
def cnaps_statement(
    participant: Annotated[str, typer.Option("--as", help="the participant's name")],
    store: Annotated[str, typer.Option(help="the world's command log")],
    date: Annotated[str | None, typer.Option(help="business date YYYY-MM-DD of a closed "
                                                   "day (camt.053); omit for the intraday "
                                                   "report (camt.052)")] = None,
) -> None:
    """Print a participant's own settlement account statement (camt.053) or intraday
    report (camt.052). Reads the store without writing to it (beside a running writer).
    Exit 2 on bad input (no such store, participant or closed day)."""
    import datetime as dt

    from qingsuan.cnaps.gateway import CnapsGateway

    day = None
    if date is not None:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            fail(f"--date: {quoted(date)} is not a date like 2026-11-25")
    engine, world = _open_world(store, None, readonly=True)
    cnaps = world.cnaps
    try:
        if participant not in cnaps.directory:
            fail(f"no participant named {quoted(participant)} in {quoted(store)} (there are "
                 f"{', '.join(sorted(p.name for p in cnaps.directory))})")
        gateway = CnapsGateway(cnaps)
        if day is None:
            xml = gateway.intraday_report(participant)
        else:
            try:
                xml = gateway.statement(participant, day)
            except (KeyError, ValueError) as exc:
                fail(reason(exc))
    finally:
        engine.close()
    sys.stdout.write(xml.decode() + "\n")


app.command()(cli_cards.serve)
app.command()(cli_simulate.simulate)
app.command()(cli_fuzz.fuzz)
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
