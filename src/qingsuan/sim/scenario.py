"""Scenario files (docs/SCENARIOS.md): load, validate, and describe a payment world.

Validation is complete before anything runs: every problem is reported with the file, the
line and the reason, and a file with any problem runs nothing (exit code 2).
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from qingsuan.banks.directory import MAX_CUSTOMERS as WORLD_MAX_CUSTOMERS
from qingsuan.banks.ranges import CustomerRange
from qingsuan.params import ParamError, Params
from qingsuan.sim.scenario_checker import FileChecker
from qingsuan.sim.scenario_events import EVENT_KINDS, RUNNABLE_EVENTS, parse_events
from qingsuan.sim.scenario_model import (
    MAX_CUSTOMERS,
    MAX_EVENTS,
    MAX_FILE_BYTES,
    MAX_PARTICIPANTS,
    Card,
    Customer,
    CustomerTable,
    Event,
    KnownCustomers,
    Merchant,
    Participant,
    Problem,
    Scenario,
    ScenarioError,
    Terminal,
    hash_pin,
)
from qingsuan.sim.scenario_traffic import parse_traffic
from qingsuan.sim.scenario_world import (
    check_calendar_years,
    listed,
    parse_cards,
    parse_customer_ranges,
    parse_customers,
    parse_participants,
    parse_terminals,
)
from qingsuan.sim.sim_app_block import parse_app
from qingsuan.sim.sim_blocks import BLOCK_KEYS, parse_blocks
from qingsuan.sim.yamlloc import LDict, YamlError, load
from qingsuan.wallets import terms as wallet_terms

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = ["EVENT_KINDS", "MAX_CUSTOMERS", "MAX_EVENTS", "MAX_FILE_BYTES", "MAX_PARTICIPANTS",
           "RUNNABLE_EVENTS", "Card", "Customer", "CustomerRange", "CustomerTable", "Event",
           "Merchant", "Participant",
           "Problem", "Scenario", "ScenarioError", "Terminal", "hash_pin", "load_scenario",
           "parse_scenario"]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file. Raises ScenarioError listing every problem."""
    path = Path(path)
    file = str(path)
    try:
        # read at most one byte past the limit: a device or a pipe has no size to stat
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError([Problem(file, 1, f"file is larger than {MAX_FILE_BYTES:,} "
                                                  "bytes: not a scenario this release takes")])
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(file, 0, "no such file")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, 0, "is a folder, not a scenario file")]) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError([Problem(file, line, f"not UTF-8 text (byte {exc.start}: "
                                                 f"{exc.reason})")]) from None
    except OSError as exc:
        raise ScenarioError([Problem(file, 0, f"cannot read: {exc.strerror or exc}")]
                            ) from None
    return parse_scenario(text, file)


def _gc_paused(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``func`` with the cycle collector paused: reading a large file builds millions of
    objects and no cycles, and the collector's passes over them took a third of the time."""

    @functools.wraps(func)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    return paused


@_gc_paused
def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Validate a scenario's text. Raises ScenarioError listing every problem."""
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError([Problem(file, 1, f"more than {MAX_FILE_BYTES:,} characters: not "
                                              "a scenario this release takes")])
    try:
        doc = load(text)
    except YamlError as exc:
        raise ScenarioError([Problem(file, exc.line, exc.message)]) from None
    ck = FileChecker(file)
    top = ck.mapping(doc, 1, "a scenario")
    if top is None:
        raise ScenarioError(ck.problems)
    ck.keys(top, "scenario", ("name", "start", "run_until", "participants"),
            ("description", "timezone", "calendar", "params", "customers", "cards",
             "terminals", "events", "traffic", "wallets", "app", "customer_ranges",
             *BLOCK_KEYS))
    name = ck.text(top, "name", "scenario", re.compile(r"^[\w\-. ]{1,80}$"),
                   " (letters, digits, - _ . and spaces, at most 80)") or "unnamed"
    description = str(top.get("description") or "")
    tz = top.get("timezone", "Asia/Shanghai")
    if tz != "Asia/Shanghai":
        ck.add(top.line_of("timezone"), f"timezone must be Asia/Shanghai (Beijing time), got "
                                        f"{tz!r}")
    calendar = ck.text(top, "calendar", "scenario", re.compile(r"^(cn|weekdays)$"),
                       " (cn or weekdays)", default="cn") or "cn"
    start = ck.time(top, "start", "scenario")
    until = ck.time(top, "run_until", "scenario")
    if start is not None and until is not None and until < start:
        ck.add(top.line_of("run_until"), "run_until is before start")

    params = Params()
    raw_params = top.get("params")
    if raw_params is not None:
        pdoc = ck.mapping(raw_params, top.line_of("params"), "params")
        for key, value in (pdoc or {}).items():
            try:
                params.set(key, value)
            except ParamError as exc:
                assert pdoc is not None
                ck.add(pdoc.line_of(key), str(exc))

    params.set("calendar.name", calendar)
    if start is not None and until is not None and params["calendar.missing_year"] == "error":
        check_calendar_years(ck, top, calendar, start, until)

    participants = parse_participants(ck, top)
    # a reference to an entry that has its own problem is not reported again as unknown
    pnames = {p.name for p in participants} | listed(top, "participants", "name")
    customers = parse_customers(ck, top, pnames)
    table = _customer_table(ck, top, customers, parse_customer_ranges(ck, top, pnames))
    cards = parse_cards(ck, top, KnownCustomers(
        dict.fromkeys({c.id for c in customers} | listed(top, "customers", "id")), table))
    terminals = parse_terminals(ck, top, pnames, {c.id: c for c in customers})
    traffic = parse_traffic(ck, top, params)
    sim = parse_blocks(ck, top, pnames, int(params["beps.item_limit"]))
    wallets = wallet_terms.parse_block(ck, top, {p.name: p.kind for p in participants},
                                       {c.id: c for c in customers},
                                       {t.id: t.kind for t in terminals})
    app = parse_app(ck, top, wallets, {t.id: t for t in terminals})
    events = parse_events(ck, top, start, until, participants, customers, wallets, table)
    if ck.problems:
        raise ScenarioError(ck.problems)
    assert start is not None and until is not None
    return Scenario(name, file, description, start, until, calendar, params,
                    tuple(participants), table, tuple(cards), tuple(terminals),
                    tuple(events), traffic, sim, wallets, app)


def _customer_table(ck: FileChecker, top: LDict, customers: list[Customer],
                    ranges: list[CustomerRange]) -> CustomerTable:
    """The listed customers and the generated ranges, or the listed alone (and the
    problem) when a rule would make a customer twice or the world too large."""
    try:
        table = CustomerTable(customers, ranges)
    except ValueError as exc:
        ck.add(top.line_of("customer_ranges"), str(exc))
        return CustomerTable(customers)
    if len(table) > WORLD_MAX_CUSTOMERS:
        ck.add(top.line_of("customer_ranges"),
               f"a world holds at most {WORLD_MAX_CUSTOMERS} customers (these make "
               f"{len(table)})")
        return CustomerTable(customers)
    return table
