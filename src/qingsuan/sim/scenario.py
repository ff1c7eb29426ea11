"""Scenario files (docs/SCENARIOS.md): load, validate, and describe a payment world.

Validation is complete before anything runs: every problem is reported with the file, the
line and the reason, and a file with any problem runs nothing (exit code 2).
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

from qingsuan.cards.disputes import ChargebackReason, DisputeKind
from qingsuan.cards.iso8583 import luhn_ok, mask_pan
from qingsuan.cards.pin import pin_verification_value
from qingsuan.clock import from_datetime
from qingsuan.cnaps.participants import ParticipantKind, check_code
from qingsuan.money import AmountError, format_fen, parse_amount
from qingsuan.params import ParamError, Params, parse_value
from qingsuan.sim.sim_blocks import BLOCK_KEYS, SimBlocks, parse_blocks
from qingsuan.sim.traffic import (
    DEFAULTS,
    MAX_CUSTOMERS_PER_BANK,
    MAX_ITEMS_PER_DAY,
    MAX_VALUE_PER_DAY_FEN,
    SystemTraffic,
    TrafficSpec,
    TrafficSystem,
)
from qingsuan.sim.yamlloc import LDict, LList, YamlError, load
from qingsuan.vocabulary import BEPS_KINDS, CHANNELS, HOST_MODES, PRIORITY_LABELS
from qingsuan.wallets import terms as wallet_terms
from qingsuan.wallets.events import WALLET_EVENTS

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Bounds on what one scenario may hold (limits on everything).
MAX_PARTICIPANTS: Final = 10_000
MAX_CUSTOMERS: Final = 1_000_000
MAX_EVENTS: Final = 1_000_000
MAX_FILE_BYTES: Final = 64 * 1024 * 1024

PARTICIPANT_KINDS: Final = ("bank", "payment_institution")

#: Every event kind of the scenario format, and whether this release can run it. The
#: others are recognised (so the error says what is missing, not "unknown").
EVENT_KINDS: Final = {
    "transfer": "runs: the bank routes it (行内, HVPS, BEPS, IBPS)",
    "set_param": "runs",
    "hvps_payment": "runs",
    "beps_payment": "runs",
    "debit_agreement": "runs",
    "ibps_payment": "runs",
    "ibps_account_inquiry": "runs",
    "cancel": "runs",
    "reprioritise": "runs",
    "pledge": "runs",
    "release": "runs",
    "atm_withdrawal": "runs (authorisation; clearing and settlement come next)",
    "atm_balance_inquiry": "runs (authorisation; clearing and settlement come next)",
    "pos_purchase": "runs (authorisation; clearing and settlement come next)",
    "pos_void": "runs",
    "reversal": "runs (authorisation; clearing and settlement come next)",
    "pos_refund": "runs",
    "fault": "runs (host: issuer; modes down, slow, up)",
    "dispute": "runs (credit_adjustment, retrieval_request, retrieval_reply, "
               "first_chargeback, representment, second_chargeback)",
    "preauth": "runs (预授权: the issuer holds the amount)",
    "preauth_cancel": "runs (预授权撤销: the hold is released)",
    "preauth_completion": "runs (预授权完成: clears like a purchase)",
    **dict.fromkeys(WALLET_EVENTS, "runs (the app and payment institutions: docs/WALLETS.md)"),
}
RUNNABLE_EVENTS: Final = ("transfer", "set_param", "hvps_payment", "cancel", "reprioritise",
                          "pledge", "release", "beps_payment", "ibps_payment",
                          "debit_agreement", "ibps_account_inquiry", "atm_withdrawal",
                          "atm_balance_inquiry", "pos_purchase", "reversal", "pos_void",
                          "pos_refund", "fault", "dispute", "preauth", "preauth_cancel",
                          "preauth_completion", *WALLET_EVENTS)

_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")
_BANK_CODE_RE: Final = re.compile(r"^\d{12}$")
_PI_CODE_RE: Final = re.compile(r"^[A-Z][A-Z0-9]{11}$")
_ACCOUNT_RE: Final = re.compile(r"^\d{6,32}$")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file with problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class Participant:
    """A CNAPS participant (参与者) with a settlement account (清算账户) at the PBOC."""

    name: str
    code: str
    kind: str
    settlement_balance_fen: int
    collateral_fen: int
    line: int
    #: net debit caps set for BEPS / IBPS ("beps", "ibps" -> fen); others use the default
    caps_fen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Merchant:
    mid: str
    mcc: str
    mdr_ppm: int


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer account in a bank's own books (行内账户)."""

    id: str
    bank: str
    account: str
    balance_fen: int
    name: str
    merchant: Merchant | None
    line: int
    #: a closed account (销户) takes no credits: payments to it are returned (AC04)
    closed: bool = False
    #: a credit-card account (信用卡账户) may go negative down to minus this limit
    credit_limit_fen: int = 0


@dataclass(frozen=True, slots=True)
class Card:
    """A card bound to a customer account. The PIN is kept only as a salted hash."""

    pan: str
    account: str
    kind: str
    pin_hash: bytes | None
    line: int


@dataclass(frozen=True, slots=True)
class Terminal:
    id: str
    kind: str
    bank: str
    cash_fen: int
    merchant: str | None
    line: int


@dataclass(frozen=True, slots=True)
class Event:
    at_us: int
    do: str
    order: int
    line: int
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        value = self.fields.get("id")
        return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    file: str
    description: str
    start_us: int
    run_until_us: int
    calendar: str
    params: Params
    participants: tuple[Participant, ...]
    customers: tuple[Customer, ...]
    cards: tuple[Card, ...]
    terminals: tuple[Terminal, ...]
    events: tuple[Event, ...]
    #: the generated workload (``traffic:``, docs/SIMULATE.md), if the file asks for one
    traffic: TrafficSpec | None = None
    #: stress, cash managers and costs for ``qingsuan simulate`` (sim/sim_blocks.py)
    sim: SimBlocks = field(default_factory=SimBlocks)
    #: payment institutions, app users and voucher campaigns (``wallets:``, WALLETS.md)
    wallets: wallet_terms.WalletsSpec | None = None

    def participant(self, name: str) -> Participant:
        return next(p for p in self.participants if p.name == name)

    def customer(self, cid: str) -> Customer:
        return next(c for c in self.customers if c.id == cid)


def hash_pin(pan: str, pin: str) -> bytes:
    """A PIN is never kept in clear: the issuer keeps its PIN verification value under the
    sandbox's PIN verification key (cards/pin.py)."""
    return pin_verification_value(pan, pin)


class _Checker:
    """Collects problems while reading one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LDict | None:
        if not isinstance(value, LDict):
            self.add(line, f"{what} must be a mapping of keys to values")
            return None
        return value

    def seq(self, doc: LDict, key: str) -> list[tuple[Any, int]]:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, LList):
            self.add(doc.line_of(key), f"{key} must be a list")
            return []
        return list(zip(value, value.item_lines, strict=True))

    def keys(self, doc: LDict, what: str, required: Iterable[str], optional: Iterable[str]
             ) -> bool:
        req = tuple(required)
        allowed = set(req) | set(optional)
        ok = True
        for key in doc:
            if key not in allowed:
                self.add(doc.line_of(key), f"{what}: unknown key {key!r} (allowed: "
                                           f"{', '.join(sorted(allowed))})")
                ok = False
        for key in req:
            if key not in doc:
                self.add(doc.line, f"{what}: missing required key {key!r}")
                ok = False
        return ok

    def text(self, doc: LDict, key: str, what: str, pattern: re.Pattern[str] | None = None,
             hint: str = "", default: str | None = None) -> str | None:
        if key not in doc:
            return default
        value = doc[key]
        if isinstance(value, bool) or value is None or not isinstance(value, str | int):
            self.add(doc.line_of(key), f"{what}: {key} must be text (got {value!r})")
            return None
        text = str(value)
        if pattern is not None and not pattern.match(text):
            self.add(doc.line_of(key), f"{what}: {key} {text!r} is not valid{hint}")
            return None
        return text

    def amount(self, doc: LDict, key: str, what: str, *, allow_zero: bool = True,
               default: int | None = 0) -> int | None:
        if key not in doc:
            return default
        try:
            return parse_amount(doc[key], field=f"{what}: {key}", allow_zero=allow_zero)
        except AmountError as exc:
            self.add(doc.line_of(key), str(exc))
            return None

    def time(self, doc: LDict, key: str, what: str) -> int | None:
        if key not in doc:
            return None
        value = doc[key]
        try:
            if isinstance(value, datetime):
                return from_datetime(value)
            if not isinstance(value, str):
                raise ValueError
            return from_datetime(datetime.fromisoformat(value.strip()))
        except ValueError:
            self.add(doc.line_of(key), f"{what}: {key} must be a date-time like "
                                       f"2026-11-25T10:00 (got {value!r})")
            return None


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
    ck = _Checker(file)
    top = ck.mapping(doc, 1, "a scenario")
    if top is None:
        raise ScenarioError(ck.problems)
    ck.keys(top, "scenario", ("name", "start", "run_until", "participants"),
            ("description", "timezone", "calendar", "params", "customers", "cards",
             "terminals", "events", "traffic", "wallets", *BLOCK_KEYS))
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
        _check_calendar_years(ck, top, calendar, start, until)

    participants = _participants(ck, top)
    # a reference to an entry that has its own problem is not reported again as unknown
    pnames = {p.name for p in participants} | _listed(top, "participants", "name")
    customers = _customers(ck, top, pnames)
    cards = _cards(ck, top, {c.id for c in customers} | _listed(top, "customers", "id"))
    terminals = _terminals(ck, top, pnames, {c.id: c for c in customers})
    traffic = _traffic(ck, top, params)
    sim = parse_blocks(ck, top, pnames, int(params["beps.item_limit"]))
    wallets = wallet_terms.parse_block(ck, top, {p.name: p.kind for p in participants},
                                       {c.id: c for c in customers},
                                       {t.id: t.kind for t in terminals})
    events = _events(ck, top, start, until, participants, customers, wallets)
    if ck.problems:
        raise ScenarioError(ck.problems)
    assert start is not None and until is not None
    return Scenario(name, file, description, start, until, calendar, params,
                    tuple(participants), tuple(customers), tuple(cards), tuple(terminals),
                    tuple(events), traffic, sim, wallets)


def _traffic(ck: _Checker, top: LDict, params: Params) -> TrafficSpec | None:
    """The ``traffic:`` block (docs/SIMULATE.md): a mapping, or nothing (absent, ``[]``)."""
    raw = top.get("traffic")
    if not raw:
        return None
    doc = ck.mapping(raw, top.line_of("traffic"), "traffic")
    if doc is None or not ck.keys(doc, "traffic", (), (
            "scale", "zipf", "customers_per_bank", "customer_liquidity",
            "settlement_liquidity", "systems")):
        return None
    bad = False

    def number(d: LDict, key: str, what: str, lo: float, hi: float, default: float
               ) -> float:
        nonlocal bad
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not lo < value <= hi:
            ck.add(d.line_of(key), f"{what}: {key} must be a number above {lo:g} and at "
                                   f"most {hi:g} (got {value!r})")
            bad = True
            return default
        return float(value)

    scale = number(doc, "scale", "traffic", 0, 100, 1.0)
    zipf = number(doc, "zipf", "traffic", 0, 5, 1.1)
    per_bank = doc.get("customers_per_bank", 0)
    if isinstance(per_bank, bool) or not isinstance(per_bank, int) \
            or not 0 <= per_bank <= MAX_CUSTOMERS_PER_BANK:
        ck.add(doc.line_of("customers_per_bank"), f"traffic: customers_per_bank must be a "
               f"whole number from 0 to {MAX_CUSTOMERS_PER_BANK:,} (got {per_bank!r})")
        bad, per_bank = True, 0
    customer_liquidity = number(doc, "customer_liquidity", "traffic", 0, 1_000, 2.0)
    settlement = (number(doc, "settlement_liquidity", "traffic", 0, 1_000, 1.0)
                  if "settlement_liquidity" in doc else None)
    limits = {TrafficSystem.BEPS: int(params["beps.item_limit"]),
              TrafficSystem.IBPS: int(params["ibps.item_limit"])}
    systems = []
    raw_systems = doc.get("systems")
    sdoc = (ck.mapping(raw_systems, doc.line_of("systems"), "traffic: systems")
            if raw_systems is not None else None)
    names = list(sdoc) if sdoc is not None else [k.name for k in TrafficSystem]
    if raw_systems is not None and sdoc is None:
        return None
    for key in names:
        kind = TrafficSystem.__members__.get(str(key))
        line = sdoc.line_of(key) if sdoc is not None else doc.line
        if kind is None:
            ck.add(line, f"traffic: systems: unknown system {key!r} (HVPS, BEPS or IBPS)")
            bad = True
            continue
        d = DEFAULTS[kind]
        one = sdoc.get(key) if sdoc is not None else None
        if one is None:  # `HVPS:` alone, or no systems: the defaults
            one = LDict()
            one.line, one.key_lines = line, {}
        sd = ck.mapping(one, line, f"traffic: {kind.name}")
        if sd is None or not ck.keys(sd, f"traffic: {kind.name}", (),
                                     ("items_per_day", "value_per_day", "sigma")):
            bad = True
            continue
        items = sd.get("items_per_day", d.items_per_day)
        if isinstance(items, bool) or not isinstance(items, int) or items < 1:
            ck.add(sd.line_of("items_per_day"), f"traffic: {kind.name}: items_per_day must "
                                                f"be a whole number above 0 (got {items!r})")
            bad = True
            continue
        value: int | None = d.value_per_day_fen
        if "value_per_day" in sd:  # a whole system's day: beyond one payment's bound
            try:
                value = parse_amount(sd["value_per_day"], allow_zero=False,
                                     field=f"traffic: {kind.name}: value_per_day",
                                     max_fen=MAX_VALUE_PER_DAY_FEN)
            except AmountError as exc:
                ck.add(sd.line_of("value_per_day"), str(exc))
                value = None
        sigma = number(sd, "sigma", f"traffic: {kind.name}", 0, 4, d.sigma)
        if value is None:
            bad = True
            continue
        if round(items * scale) > MAX_ITEMS_PER_DAY:
            ck.add(line, f"traffic: {kind.name}: {items:,} items a day at scale {scale:g} "
                         f"is more than {MAX_ITEMS_PER_DAY:,}")
            bad = True
        # the banks route an item by its amount: the mean must fit the system's range
        lo = limits[TrafficSystem.BEPS] if kind is TrafficSystem.HVPS else 0
        hi = limits.get(kind)
        mean = value / items
        if not (lo < mean and (hi is None or mean < hi)):
            where = (f"above the BEPS item limit {format_fen(lo)}" if hi is None else
                     f"below the {kind.name} item limit {format_fen(hi)}")
            ck.add(line, f"traffic: {kind.name}: the mean per item "
                         f"{format_fen(round(mean))} must be {where}")
            bad = True
        systems.append(SystemTraffic(kind, items, value, sigma))
    if bad:
        return None
    return TrafficSpec(tuple(systems), scale, zipf, per_bank, customer_liquidity, settlement,
                       top.line_of("traffic"))


def _listed(top: LDict, section: str, key: str) -> set[str]:
    """The names written in a section, valid or not."""
    items = top.get(section)
    if not isinstance(items, LList):
        return set()
    return {str(item[key]) for item in items if isinstance(item, LDict) and key in item}


def _check_calendar_years(ck: _Checker, top: LDict, name: str, start: int, until: int
                          ) -> None:
    """The business calendar must cover every year the scenario runs through (plus the next
    day, whose HVPS session opens the evening before), unless the stated fallback is on.
    Years after the last published schedule are covered by the projection, up to its end."""
    from qingsuan.calendar import load_calendar
    from qingsuan.clock import US_PER_DAY, to_beijing

    calendar = load_calendar(name)
    first = to_beijing(start).year
    last = to_beijing(until + US_PER_DAY).year
    missing = [y for y in range(first, last + 1) if not calendar.covers(y)]
    if missing:
        covered = f"{calendar.years[0]}-{calendar.years[-1]}" if len(calendar.years) else "none"
        past_projection = bool(calendar.projected_years) and missing[0] > calendar.years[-1]
        remedy = (f"the holiday projection stops at {calendar.years[-1]}; set params:"
                  if past_projection else "add the year's table, or set params:")
        ck.add(top.line_of("run_until"),
               f"calendar {name} has no holiday table for {', '.join(map(str, missing))} "
               f"(covers {covered}); {remedy} "
               f"calendar.missing_year: weekends to treat Monday-Friday as business days")


def _participants(ck: _Checker, top: LDict) -> list[Participant]:
    out: list[Participant] = []
    names: set[str] = set()
    codes: set[str] = set()
    items = ck.seq(top, "participants")
    if not items and "participants" in top:
        ck.add(top.line_of("participants"), "a scenario needs at least one participant")
    if len(items) > MAX_PARTICIPANTS:
        ck.add(top.line_of("participants"), f"more than {MAX_PARTICIPANTS} participants")
        return out
    for raw, line in items:
        doc = ck.mapping(raw, line, "a participant")
        if doc is None or not ck.keys(doc, "participant", ("name", "code"),
                                      ("kind", "settlement_balance", "collateral", "beps_cap",
                                       "ibps_cap", "beps_earmark", "ibps_earmark")):
            continue
        name = ck.text(doc, "name", "participant", _NAME_RE,
                       " (a letter, then letters, digits, _ or -; at most 32)")
        kind = ck.text(doc, "kind", "participant", re.compile(r"^(bank|payment_institution)$"),
                       f" (one of {', '.join(PARTICIPANT_KINDS)})", default="bank")
        code = ck.text(doc, "code", "participant")
        if code is not None and kind is not None:
            pattern = _PI_CODE_RE if kind == "payment_institution" else _BANK_CODE_RE
            if not pattern.match(code):
                ck.add(doc.line_of("code"), f"participant: code {code!r} is not a 12-character "
                       + ("payment institution code (a capital letter, then 11 capitals or "
                          "digits)" if kind == "payment_institution" else
                          "bank code (行号: 3-digit category, 4-digit area, 4-digit branch, "
                          "1 check digit)"))
                code = None
            elif kind == "bank" and (problem := check_code(code, ParticipantKind.DIRECT_BANK)):
                ck.add(doc.line_of("code"), f"participant: {problem}")
                code = None
        balance = ck.amount(doc, "settlement_balance", f"participant {name}")
        collateral = ck.amount(doc, "collateral", f"participant {name}")
        caps = {sysname: ck.amount(doc, f"{sysname}_cap", f"participant {name}", default=None)
                for sysname in ("beps", "ibps") if f"{sysname}_cap" in doc}
        for sysname in ("beps", "ibps"):
            if f"{sysname}_earmark" in doc:
                if f"{sysname}_cap" in doc:
                    ck.add(doc.line_of(f"{sysname}_earmark"),
                           f"participant {name}: give {sysname}_cap (collateral-backed) or "
                           f"{sysname}_earmark (backed by earmarked funds), not both")
                caps[f"{sysname}_earmark"] = ck.amount(doc, f"{sysname}_earmark",
                                                       f"participant {name}", default=None)
        earmarked = sum(v or 0 for k, v in caps.items() if k.endswith("_earmark"))
        if balance is not None and earmarked > balance:
            ck.add(line, f"participant {name}: earmarks total more than its settlement balance "
                         f"({format_fen(earmarked)} > {format_fen(balance)})")
        if name in names:
            ck.add(line, f"participant {name!r} is listed twice")
        if code in codes:
            ck.add(doc.line_of("code"), f"bank code {code} is used twice")
        if None in (name, kind, code, balance, collateral):
            continue
        assert name and kind and code and balance is not None and collateral is not None
        names.add(name)
        codes.add(code)
        out.append(Participant(name, code, kind, balance, collateral, line,
                               {k: v for k, v in caps.items() if v is not None}))
    return out


def _customers(ck: _Checker, top: LDict, banks: set[str]) -> list[Customer]:
    out: list[Customer] = []
    ids: set[str] = set()
    accounts: set[tuple[str, str]] = set()
    items = ck.seq(top, "customers")
    if len(items) > MAX_CUSTOMERS:
        ck.add(top.line_of("customers"), f"more than {MAX_CUSTOMERS} customers")
        return out
    for raw, line in items:
        doc = ck.mapping(raw, line, "a customer")
        if doc is None or not ck.keys(doc, "customer", ("id", "bank", "account"),
                                      ("balance", "name", "merchant", "closed",
                                       "credit_limit")):
            continue
        cid = ck.text(doc, "id", "customer", _ID_RE)
        bank = ck.text(doc, "bank", f"customer {cid}")
        if bank is not None and (not isinstance(bank, str) or bank not in banks):
            ck.add(doc.line_of("bank"), f"customer {cid}: no participant named {bank!r}")
            bank = None
        account = ck.text(doc, "account", f"customer {cid}", _ACCOUNT_RE, " (6 to 32 digits)")
        balance = ck.amount(doc, "balance", f"customer {cid}")
        display = ck.text(doc, "name", f"customer {cid}", default=cid or "")
        merchant = None
        if "merchant" in doc:
            merchant = _merchant(ck, doc["merchant"], doc.line_of("merchant"), cid)
        if cid in ids:
            ck.add(line, f"customer id {cid!r} is listed twice")
            continue
        if bank is not None and account is not None and (bank, account) in accounts:
            ck.add(doc.line_of("account"), f"account {account} at {bank} is listed twice")
            continue
        if None in (cid, bank, account, balance, display):
            continue
        assert cid and bank and account and balance is not None and display is not None
        ids.add(cid)
        accounts.add((bank, account))
        closed = doc.get("closed", False)
        if not isinstance(closed, bool):
            ck.add(doc.line_of("closed"), f"customer {cid}: closed must be true or false")
            continue
        if closed and balance:
            ck.add(doc.line_of("closed"), f"customer {cid}: a closed account holds no money "
                                          "(balance must be 0.00)")
            continue
        credit_limit = ck.amount(doc, "credit_limit", f"customer {cid}")
        if credit_limit is None:
            continue
        out.append(Customer(cid, bank, account, balance, display, merchant, line, closed,
                            credit_limit))
    return out


def _merchant(ck: _Checker, raw: Any, line: int, cid: str | None) -> Merchant | None:
    doc = ck.mapping(raw, line, f"customer {cid}: merchant")
    if doc is None or not ck.keys(doc, f"customer {cid}: merchant", ("mid", "mcc"), ("mdr",)):
        return None
    mid = ck.text(doc, "mid", "merchant", re.compile(r"^\d{15}$"), " (15 digits)")
    mcc = ck.text(doc, "mcc", "merchant", re.compile(r"^\d{4}$"), " (4 digits)")
    mdr = doc.get("mdr", "0")
    try:
        rate = str(mdr)
        if isinstance(mdr, float) or not re.fullmatch(r"0(\.\d{1,6})?|1(\.0{1,6})?", rate):
            raise ValueError
        whole, _, frac = rate.partition(".")
        mdr_ppm = int(whole) * 1_000_000 + int(frac.ljust(6, "0") or "0")
    except ValueError:
        ck.add(doc.line_of("mdr"), f"merchant: mdr must be a quoted rate between \"0\" and "
                                   f"\"1\" with at most 6 decimals (got {mdr!r})")
        return None
    if mid is None or mcc is None:
        return None
    return Merchant(mid, mcc, mdr_ppm)


def _cards(ck: _Checker, top: LDict, customers: set[str]) -> list[Card]:
    out: list[Card] = []
    pans: set[str] = set()
    for raw, line in ck.seq(top, "cards"):
        doc = ck.mapping(raw, line, "a card")
        if doc is None or not ck.keys(doc, "card", ("pan", "account"), ("kind", "pin")):
            continue
        pan = ck.text(doc, "pan", "card", re.compile(r"^\d{13,19}$"), " (13 to 19 digits)")
        if pan is not None and not luhn_ok(pan):
            ck.add(doc.line_of("pan"), f"card {mask_pan(pan)}: check digit wrong (Luhn)")
            pan = None
        shown = mask_pan(pan) if pan else "?"
        account = ck.text(doc, "account", f"card {shown}")
        if account is not None and (not isinstance(account, str) or account not in customers):
            ck.add(doc.line_of("account"), f"card {shown}: no customer {account!r}")
            account = None
        kind = ck.text(doc, "kind", f"card {shown}", re.compile(r"^(debit|credit)$"),
                       " (debit or credit)", default="debit")
        pin_hash = None
        if "pin" in doc:
            pin = doc["pin"]
            if not isinstance(pin, str) or not re.fullmatch(r"\d{4,12}", pin):
                # never echo the PIN itself
                ck.add(doc.line_of("pin"), f"card {shown}: pin must be a quoted string of 4 "
                                           "to 12 digits")
            elif pan is not None:
                pin_hash = hash_pin(pan, pin)
        if pan in pans:
            ck.add(doc.line_of("pan"), f"card {shown} is listed twice")
            continue
        if pan is None or account is None or kind is None:
            continue
        pans.add(pan)
        out.append(Card(pan, account, kind, pin_hash, line))
    return out


def _terminals(ck: _Checker, top: LDict, banks: set[str], customers: dict[str, Customer]
               ) -> list[Terminal]:
    out: list[Terminal] = []
    ids: set[str] = set()
    for raw, line in ck.seq(top, "terminals"):
        doc = ck.mapping(raw, line, "a terminal")
        if doc is None or not ck.keys(doc, "terminal", ("id", "kind", "bank"),
                                      ("cash", "merchant")):
            continue
        tid = ck.text(doc, "id", "terminal", re.compile(r"^[A-Za-z0-9]{8}$"),
                      " (8 letters or digits, ISO 8583 field 41)")
        kind = ck.text(doc, "kind", f"terminal {tid}", re.compile(r"^(atm|pos)$"),
                       " (atm or pos)")
        bank = ck.text(doc, "bank", f"terminal {tid}")
        if bank is not None and (not isinstance(bank, str) or bank not in banks):
            ck.add(doc.line_of("bank"), f"terminal {tid}: no participant named {bank!r}")
            bank = None
        cash = ck.amount(doc, "cash", f"terminal {tid}")
        merchant = ck.text(doc, "merchant", f"terminal {tid}")
        if merchant is not None:
            cust = customers.get(merchant)
            if cust is None or cust.merchant is None:
                ck.add(doc.line_of("merchant"), f"terminal {tid}: {merchant!r} is not a "
                                                "customer with a merchant block")
                merchant = None
        if kind == "pos" and "merchant" not in doc:
            ck.add(line, f"terminal {tid}: a POS terminal needs a merchant")
        if kind == "pos" and "cash" in doc:
            ck.add(doc.line_of("cash"), f"terminal {tid}: only an ATM holds cash")
        if tid in ids:
            ck.add(line, f"terminal {tid} is listed twice")
            continue
        if tid is None or kind is None or bank is None or cash is None:
            continue
        ids.add(tid)
        out.append(Terminal(tid, kind, bank, cash, merchant, line))
    return out


_EVENT_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "atm_withdrawal": (("id", "card", "terminal", "amount"), ("pin",)),
    "atm_balance_inquiry": (("id", "card", "terminal"), ("pin",)),
    "pos_purchase": (("id", "card", "terminal", "amount"), ("pin",)),
    "reversal": (("id", "target"), ()),
    "pos_void": (("id", "target"), ()),
    "pos_refund": (("id", "target", "amount"), ()),
    "fault": (("participant", "mode"), ("host",)),
    "dispute": (("id", "target", "kind", "amount"), ("reason",)),
    "preauth": (("id", "card", "terminal", "amount"), ("pin",)),
    "preauth_cancel": (("id", "target"), ()),
    "preauth_completion": (("id", "target", "amount"), ()),
    "beps_payment": (("id", "from", "to", "amount"), ("kind",)),
    "ibps_payment": (("id", "from", "to", "amount"), ()),
    "debit_agreement": (("id", "payer", "payee"), ()),
    "ibps_account_inquiry": (("id", "from", "bank", "account"), ("name",)),
    "hvps_payment": (("id", "from", "to", "amount"), ("priority",)),
    "cancel": (("target",), ()),
    "reprioritise": (("target", "priority"), ()),
    "pledge": (("participant", "value"), ("haircut",)),
    "release": (("participant", "value"), ("haircut",)),
    "transfer": (("id", "from", "to", "amount"), ("channel", "urgent")),
    "set_param": (("name", "value"), ()),
    **wallet_terms.EVENT_FIELDS,
}


def _events(ck: _Checker, top: LDict, start: int | None, until: int | None,
            participants: list[Participant], customers: list[Customer],
            wallets: wallet_terms.WalletsSpec | None = None) -> list[Event]:
    out: list[Event] = []
    ids: set[str] = set()
    known: dict[str, str] = {}  # event id -> its kind, for cancel / reprioritise targets
    last_at: int | None = None
    # None: listed, but with a problem of its own (already reported)
    cust: dict[str, Customer | None] = dict.fromkeys(_listed(top, "customers", "id"))
    cust.update((c.id, c) for c in customers)
    items = ck.seq(top, "events")
    if len(items) > MAX_EVENTS:
        ck.add(top.line_of("events"), f"more than {MAX_EVENTS} events")
        return out
    for order, (raw, line) in enumerate(items):
        doc = ck.mapping(raw, line, "an event")
        if doc is None:
            continue
        do = doc.get("do")
        if not isinstance(do, str) or do not in EVENT_KINDS:
            ck.add(doc.line_of("do") if "do" in doc else line,
                   f"event: do must be one of {', '.join(EVENT_KINDS)} (got {do!r})")
            continue
        if do not in RUNNABLE_EVENTS:
            ck.add(doc.line_of("do"), f"event {do!r} is not available in this release "
                                      f"({EVENT_KINDS[do]})")
            continue
        required, optional = _EVENT_FIELDS[do]
        if not ck.keys(doc, f"event {do}", ("at", "do", *required), optional):
            continue
        at = ck.time(doc, "at", f"event {do}")
        if at is None:
            continue
        if start is not None and at < start:
            ck.add(doc.line_of("at"), f"event {do}: at is before the scenario's start")
        if last_at is not None and at < last_at:
            ck.add(doc.line_of("at"), f"event {do}: events must be in time order (this one is "
                                      "earlier than the one before)")
        last_at = at
        fields: dict[str, Any] = {}
        fields["known"] = known
        if do in WALLET_EVENTS:
            ok = wallet_terms.check_event(ck, doc, fields, wallets, known)
        else:
            ok = _EVENT_CHECKS[do](ck, doc, fields, cust, participants)
        del fields["known"]
        if not ok:
            continue
        eid = fields.get("id")
        if eid is not None:
            if eid in ids:
                ck.add(doc.line_of("id"), f"event id {eid!r} is used twice")
                continue
            ids.add(eid)
            known[eid] = do
        out.append(Event(at, do, order, line, fields))
    del until  # events after run_until are valid; the runner does not run them
    return out


def _check_transfer(ck: _Checker, doc: LDict, fields: dict[str, Any],
                    cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event transfer", _ID_RE)
    what = f"transfer {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    channel = ck.text(doc, "channel", what, re.compile(f"^({'|'.join(CHANNELS)})$"),
                      f" ({' or '.join(CHANNELS)})", default="counter")
    urgent = doc.get("urgent", False)
    if not isinstance(urgent, bool):
        ck.add(doc.line_of("urgent"), f"{what}: urgent must be true or false")
        return False
    payer_ref = doc["from"]
    if not isinstance(payer_ref, str) or payer_ref not in cust:
        ck.add(doc.line_of("from"), f"{what}: from {payer_ref!r} is not a listed customer")
        return False
    payer = cust[payer_ref]
    if payer is None:
        return False
    to = doc["to"]
    payee: Customer | None = None
    to_account: list[str] | None = None
    if isinstance(to, dict):  # an account that is not listed: it may not exist (a return)
        bank, account, name = to.get("bank"), to.get("account"), to.get("name", "")
        if set(to) - {"bank", "account", "name"} or \
                not isinstance(bank, str) or bank not in {p.name for p in participants} or \
                not isinstance(account, str) or not _ACCOUNT_RE.fullmatch(account) or \
                not isinstance(name, str):
            ck.add(doc.line_of("to"), f"{what}: to must be a customer id or "
                                      "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return False
        to_account = [bank, account, name]
    elif not isinstance(to, str) or to not in cust:
        ck.add(doc.line_of("to"), f"{what}: to {to!r} is not a listed customer (an account "
                                  "outside the list: {bank: ..., account: ..., name: ...})")
        return False
    else:
        payee = cust[to]
        if payee is None:
            return False
        if payee.id == payer.id:
            ck.add(doc.line_of("to"), f"{what}: from and to are the same account")
            return False
    if eid is None or amount is None or channel is None:
        return False
    fields.update(id=eid, amount_fen=amount, channel=channel, urgent=urgent,
                  from_customer=payer.id, to_customer=payee.id if payee else None,
                  to_account=to_account)
    return True


def _check_set_param(ck: _Checker, doc: LDict, fields: dict[str, Any],
                     cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    name = doc["name"]
    try:
        if not isinstance(name, str):
            raise ParamError(f"set_param: name must be a parameter name (got {name!r})")
        parse_value(name, doc["value"])
    except ParamError as exc:
        ck.add(doc.line_of("value" if isinstance(name, str) else "name"), str(exc))
        return False
    fields.update(name=name, value=doc["value"])
    return True


_PRIORITIES: Final = PRIORITY_LABELS


def _party(ck: _Checker, doc: LDict, key: str, what: str, cust: dict[str, Customer | None],
           pnames: set[str]) -> tuple[str, str] | None:
    """``from`` / ``to`` of an interbank payment: ("customer", id) or ("participant", name)."""
    ref = doc[key]
    if isinstance(ref, str) and ref in cust:
        return ("customer", ref) if cust[ref] is not None else None
    if isinstance(ref, str) and ref in pnames:
        return ("participant", ref)
    if isinstance(ref, dict) and key == "to":
        bank, account, name = ref.get("bank"), ref.get("account"), ref.get("name", "")
        if set(ref) - {"bank", "account", "name"} or not isinstance(bank, str) or \
                bank not in pnames or \
                not isinstance(account, str) or not re.fullmatch(r"\d{6,32}", account) or \
                not isinstance(name, str):
            ck.add(doc.line_of(key), f"{what}: to must be a customer id, a participant or "
                                     "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return None
        return ("outside", f"{bank}|{account}|{name}")
    ck.add(doc.line_of(key), f"{what}: {key} {ref!r} is neither a listed customer nor a "
                             "participant")
    return None


def _check_hvps_payment(ck: _Checker, doc: LDict, fields: dict[str, Any],
                        cust: dict[str, Customer | None], participants: list[Participant]
                        ) -> bool:
    eid = ck.text(doc, "id", "event hvps_payment", _ID_RE)
    what = f"hvps_payment {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    priority = ck.text(doc, "priority", what, re.compile(f"^({'|'.join(_PRIORITIES)})$"),
                       f" (one of {', '.join(_PRIORITIES)})", default="normal")
    pnames = {p.name for p in participants}
    payer = _party(ck, doc, "from", what, cust, pnames)
    payee = _party(ck, doc, "to", what, cust, pnames)
    if None in (eid, amount, priority, payer, payee):
        return False
    assert payer is not None and payee is not None
    banks = []
    for party in (payer, payee):
        c = cust.get(party[1]) if party[0] == "customer" else None
        banks.append(c.bank if c is not None else party[1].split("|")[0])
    if payee[0] == "outside":
        payee = ("customer", payee[1]) if payer[0] == "customer" else payee
    if payer[0] != payee[0]:
        ck.add(doc.line_of("to"), f"{what}: a customer payment (hvps.111) goes from a customer "
                                  "to a customer, an institution payment (hvps.112) from a "
                                  "participant to a participant")
        return False
    if banks[0] == banks[1]:
        ck.add(doc.line_of("to"), f"{what}: payer and payee are both at {banks[0]}: that is an "
                                  "intrabank transfer (use do: transfer)")
        return False
    fields.update(id=eid, amount_fen=amount, priority=priority, payer=payer, payee=payee,
                  sender=banks[0], receiver=banks[1])
    return True


def _check_target(ck: _Checker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    # a cancel names any payment that may still wait (HVPS queue, BEPS queue behind the
    # cap, a transfer held or routed to either); a reprioritise an HVPS payment only
    kinds = ("hvps_payment",) if doc["do"] == "reprioritise" else (
        "hvps_payment", "beps_payment", "transfer")
    if not isinstance(target, str) or known.get(target) not in kinds:
        ck.add(doc.line_of("target"), f"target {target!r} is not the id of an earlier "
                                      f"{' or '.join(kinds)} event")
        return False
    fields["target"] = target
    if "priority" in doc:
        priority = ck.text(doc, "priority", f"reprioritise {target}",
                           re.compile(f"^({'|'.join(_PRIORITIES)})$"),
                           f" (one of {', '.join(_PRIORITIES)})")
        if priority is None:
            return False
        fields["priority"] = priority
    return True


def _check_pledge(ck: _Checker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    name = doc["participant"]
    if not isinstance(name, str) or name not in {p.name for p in participants}:
        ck.add(doc.line_of("participant"), f"no participant named {name!r}")
        return False
    value = ck.amount(doc, "value", f"pledge by {name}", allow_zero=False, default=None)
    haircut = None
    if "haircut" in doc:
        try:
            haircut = parse_value("hvps.pledge_haircut", doc["haircut"])
        except ParamError as exc:
            ck.add(doc.line_of("haircut"), str(exc).replace("parameter hvps.pledge_haircut",
                                                             "haircut"))
            return False
    if value is None:
        return False
    fields.update(participant=name, value_fen=value, haircut_ppm=haircut)
    return True


_BEPS_KINDS: Final = BEPS_KINDS


def _net_party(ck: _Checker, doc: LDict, key: str, what: str,
               cust: dict[str, Customer | None], pnames: set[str]
               ) -> tuple[str, str, str, str] | None:
    """A BEPS/IBPS payer or payee: (kind, bank, account number, customer id or "")."""
    ref = doc[key]
    if isinstance(ref, str) and ref in cust:
        c = cust[ref]
        return None if c is None else ("customer", c.bank, c.account, c.id)
    if isinstance(ref, dict):
        bank, account = ref.get("bank"), ref.get("account")
        unknown = set(ref) - {"bank", "account", "name"}
        if unknown or not isinstance(bank, str) or bank not in pnames or \
                not isinstance(account, str) or not re.fullmatch(r"\d{6,32}", account):
            ck.add(doc.line_of(key), f"{what}: {key} must be a customer id or "
                                     "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return None
        return ("outside", bank, account, "")
    ck.add(doc.line_of(key), f"{what}: {key} {ref!r} is not a listed customer")
    return None


def _check_net_payment(ck: _Checker, doc: LDict, fields: dict[str, Any],
                       cust: dict[str, Customer | None], participants: list[Participant]
                       ) -> bool:
    system = "BEPS" if doc["do"] == "beps_payment" else "IBPS"
    eid = ck.text(doc, "id", f"event {doc['do']}", _ID_RE)
    what = f"{doc['do']} {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    kind = "credit"
    if system == "BEPS":
        kind = ck.text(doc, "kind", what, re.compile(f"^({'|'.join(_BEPS_KINDS)})$"),
                       f" (one of {', '.join(_BEPS_KINDS)})", default="ordinary_credit") or ""
    pnames = {p.name for p in participants}
    payer = _net_party(ck, doc, "from", what, cust, pnames)
    payee = _net_party(ck, doc, "to", what, cust, pnames)
    if None in (eid, amount, payer, payee) or not kind:
        return False
    assert payer is not None and payee is not None
    if payer[0] != "customer":
        ck.add(doc.line_of("from"), f"{what}: the payer must be a listed customer (its bank "
                                    "debits it)")
        return False
    if payer[1] == payee[1]:
        ck.add(doc.line_of("to"), f"{what}: payer and payee are both at {payer[1]}: that is an "
                                  "intrabank transfer (use do: transfer)")
        return False
    if kind.endswith("_debit") and payee[0] != "customer":
        ck.add(doc.line_of("to"), f"{what}: a debit is initiated by the payee: it must be a "
                                  "listed customer")
        return False
    to = doc["to"]
    listed = cust.get(to) if isinstance(to, str) else None
    payee_name = to.get("name") if isinstance(to, dict) else (
        listed.name if listed is not None else None)
    fields.update(id=eid, system=system, kind=kind, amount_fen=amount, payer=payer, payee=payee,
                  payee_name=payee_name)
    return True


def _check_agreement(ck: _Checker, doc: LDict, fields: dict[str, Any],
                     cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event debit_agreement", _ID_RE)
    ends = []
    for key in ("payer", "payee"):
        ref = doc[key]
        c = cust.get(ref) if isinstance(ref, str) else None
        if c is None:
            if not (isinstance(ref, str) and ref in cust):
                ck.add(doc.line_of(key), f"debit_agreement {eid}: {key} {ref!r} is not a "
                                         "listed customer")
            return False
        ends.append(c)
    if eid is None:
        return False
    fields.update(id=eid, payer=ends[0].account, payee=ends[1].account)
    return True


def _check_inquiry(ck: _Checker, doc: LDict, fields: dict[str, Any],
                   cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event ibps_account_inquiry", _ID_RE)
    pnames = {p.name for p in participants}
    asker, bank = doc["from"], doc["bank"]
    ok = True
    for key, value in (("from", asker), ("bank", bank)):
        if not isinstance(value, str) or value not in pnames:
            ck.add(doc.line_of(key), f"ibps_account_inquiry {eid}: no participant named "
                                     f"{value!r}")
            ok = False
    account = ck.text(doc, "account", f"ibps_account_inquiry {eid}", _ACCOUNT_RE,
                      " (6 to 32 digits)")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        ck.add(doc.line_of("name"), f"ibps_account_inquiry {eid}: name must be text")
        ok = False
    if not ok or eid is None or account is None:
        return False
    fields.update(id=eid, asker=asker, bank=bank, account=account, name=name)
    return True


def _check_card_event(ck: _Checker, doc: LDict, fields: dict[str, Any],
                      cust: dict[str, Customer | None], participants: list[Participant]
                      ) -> bool:
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", _ID_RE)
    what = f"{do} {eid}"
    pan = doc["card"]
    if not isinstance(pan, str) or not re.fullmatch(r"\d{12,19}", pan):
        ck.add(doc.line_of("card"), f"{what}: card must be a quoted card number")
        return False
    terminal = doc["terminal"]
    if not isinstance(terminal, str):
        ck.add(doc.line_of("terminal"), f"{what}: terminal must be a terminal id")
        return False
    amount = 0
    if "amount" in doc:
        parsed = ck.amount(doc, "amount", what, allow_zero=False, default=None)
        if parsed is None:
            return False
        amount = parsed
    pin = doc.get("pin")
    if pin is not None and (not isinstance(pin, str) or not re.fullmatch(r"\d{4,12}", pin)):
        ck.add(doc.line_of("pin"), f"{what}: pin must be a quoted string of 4 to 12 digits")
        return False
    if do.startswith("atm") and pin is None:
        ck.add(doc.line, f"{what}: an ATM needs the PIN")
        return False
    if eid is None:
        return False
    fields.update(id=eid, card=pan, terminal=terminal, amount_fen=amount, pin=pin)
    return True


def _check_reversal(ck: _Checker, doc: LDict, fields: dict[str, Any],
                    cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", _ID_RE)
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    allowed = ("pos_purchase", "preauth_completion") if do == "pos_void" else (
        "atm_withdrawal", "pos_purchase", "preauth", "preauth_completion")
    if not isinstance(target, str) or known.get(target) not in allowed:
        ck.add(doc.line_of("target"), f"{do} {eid}: target {target!r} is not the id of an "
                                      f"earlier {' or '.join(allowed)}")
        return False
    if eid is None:
        return False
    fields.update(id=eid, target=target)
    return True


def _check_refund(ck: _Checker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """pos_refund: ``target`` an earlier pos_purchase, ``amount`` positive (the switch checks
    it against what is left to refund, 13)."""
    eid = ck.text(doc, "id", "event pos_refund", _ID_RE)
    what = f"pos_refund {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) not in ("pos_purchase",
                                                                "preauth_completion"):
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier pos_purchase or preauth_completion")
        return False
    if eid is None or amount is None:
        return False
    fields.update(id=eid, target=target, amount_fen=amount)
    return True


def _check_preauth_followup(ck: _Checker, doc: LDict, fields: dict[str, Any],
                            cust: dict[str, Customer | None], participants: list[Participant]
                            ) -> bool:
    """preauth_cancel (``id``, ``target``) and preauth_completion (``id``, ``target``,
    ``amount`` positive): ``target`` an earlier preauth. Whether the pre-authorisation is
    still open and the amount within the tolerance is the switch's decision at run time
    (12, 13), not a validation error."""
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", _ID_RE)
    what = f"{do} {eid}"
    amount = None
    if do == "preauth_completion":
        amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
        if amount is None:
            return False
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) != "preauth":
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier preauth")
        return False
    if eid is None:
        return False
    fields.update(id=eid, target=target)
    if amount is not None:
        fields["amount_fen"] = amount
    return True


FAULT_HOSTS: Final = ("issuer",)
FAULT_MODES: Final = HOST_MODES


def _check_fault(ck: _Checker, doc: LDict, fields: dict[str, Any],
                 cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """fault: a participant's issuer host goes down, slow or up (docs/CARDS.md)."""
    name = doc["participant"]
    ok = True
    if not isinstance(name, str) or name not in {p.name for p in participants}:
        ck.add(doc.line_of("participant"), f"fault: no participant named {name!r}")
        ok = False
    host = doc.get("host", "issuer")
    if host not in FAULT_HOSTS:
        ck.add(doc.line_of("host"), f"fault: host must be {' or '.join(FAULT_HOSTS)} (the card "
                                    f"issuer's host is the one modelled), got {host!r}")
        ok = False
    mode = doc["mode"]
    if mode not in FAULT_MODES:
        ck.add(doc.line_of("mode"), f"fault: mode must be one of {', '.join(FAULT_MODES)} "
                                    f"(got {mode!r})")
        ok = False
    if ok:
        fields.update(participant=name, host=host, mode=mode)
    return ok


#: the dispute steps (差错), defined once by the switch (credit_adjustment first)
DISPUTE_KINDS: Final = tuple(k.value for k in DisputeKind)
CHARGEBACK_REASONS: Final = tuple(r.value for r in ChargebackReason)


def _check_dispute(ck: _Checker, doc: LDict, fields: dict[str, Any],
                   cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """dispute: ``target`` an earlier card purchase or withdrawal, ``kind`` a dispute step,
    ``amount`` positive. Whether the step is allowed (card kind, order, deadline, amount)
    is the switch's decision at run time: a refused step is reported, not an invalid file."""
    eid = ck.text(doc, "id", "event dispute", _ID_RE)
    what = f"dispute {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    kind = doc["kind"]
    ok = True
    if kind not in DISPUTE_KINDS:
        ck.add(doc.line_of("kind"), f"{what}: kind must be one of {', '.join(DISPUTE_KINDS)} "
                                    f"(got {kind!r})")
        ok = False
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) not in (
            "pos_purchase", "atm_withdrawal", "preauth_completion"):
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier pos_purchase or atm_withdrawal or "
                                      "preauth_completion")
        ok = False
    reason = doc.get("reason")
    if reason is not None and reason not in CHARGEBACK_REASONS:
        ck.add(doc.line_of("reason"), f"{what}: reason must be one of "
                                      f"{', '.join(CHARGEBACK_REASONS)} (got {reason!r})")
        ok = False
    if not ok or eid is None or amount is None:
        return False
    fields.update(id=eid, target=target, kind=kind, amount_fen=amount, reason=reason)
    return True


_EVENT_CHECKS: Final[dict[str, Callable[..., bool]]] = {
    "dispute": _check_dispute,
    "fault": _check_fault,
    "pos_refund": _check_refund,
    "atm_withdrawal": _check_card_event,
    "atm_balance_inquiry": _check_card_event,
    "pos_purchase": _check_card_event,
    "preauth": _check_card_event,
    "preauth_cancel": _check_preauth_followup,
    "preauth_completion": _check_preauth_followup,
    "reversal": _check_reversal,
    "pos_void": _check_reversal,
    "beps_payment": _check_net_payment,
    "ibps_payment": _check_net_payment,
    "debit_agreement": _check_agreement,
    "ibps_account_inquiry": _check_inquiry,
    "hvps_payment": _check_hvps_payment,
    "cancel": _check_target,
    "reprioritise": _check_target,
    "pledge": _check_pledge,
    "release": _check_pledge,
    "transfer": _check_transfer,
    "set_param": _check_set_param,
}
