"""The scenario blocks only ``qingsuan simulate`` reads (docs/SIMULATE.md): ``stress:``,
``cash_managers:``, ``costs:``, ``regimes:`` and ``payroll:``, checked when the file is
loaded, each problem with its line. The scenario loader calls :func:`parse_blocks`; the
blocks' meaning lives in sim/stress.py, sim/policies.py, sim/costs.py, sim/sim_regimes.py
and sim/sim_payroll.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final, Protocol

from qingsuan.clock import from_datetime
from qingsuan.sim.costs import CostRates
from qingsuan.sim.policies import Policy, PolicyKind
from qingsuan.sim.sim_payroll import Payroll
from qingsuan.sim.sim_regimes import RegimeParams
from qingsuan.sim.stress import (
    MAX_HOLIDAY_DAYS,
    PPM,
    Holiday,
    Maintenance,
    Outage,
    Squeeze,
    SqueezeOf,
    Stress,
    StressKind,
)
from qingsuan.sim.yamlloc import LDict, LList

#: top-level keys of a scenario that belong to the simulator
BLOCK_KEYS: Final = ("stress", "cash_managers", "costs", "regimes", "payroll")
#: stress blocks one file may hold
MAX_STRESS: Final = 1_000
_SYSTEMS: Final = ("HVPS", "BEPS", "IBPS")


class Checker(Protocol):
    """What the scenario loader's checker offers (sim/scenario_checker.py)."""

    def add(self, line: int, message: str) -> None: ...

    def keys(self, doc: LDict, what: str, required: Iterable[str], optional: Iterable[str]
             ) -> bool: ...

    def amount(self, doc: LDict, key: str, what: str, *, allow_zero: bool = True,
               default: int | None = 0) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SimBlocks:
    stress: tuple[Stress, ...] = ()
    #: bank -> its cash manager's HVPS release policy (unlisted: release at once)
    cash_managers: tuple[tuple[str, Policy], ...] = ()
    costs: CostRates = field(default_factory=CostRates)
    regimes: RegimeParams = field(default_factory=RegimeParams)
    #: BEPS payroll credits on payroll days (None: no payroll block)
    payroll: Payroll | None = None

    def policy(self, bank: str) -> Policy:
        return dict(self.cash_managers).get(bank, Policy())


def parse_blocks(ck: Checker, top: LDict, participants: set[str],
                 beps_item_limit_fen: int) -> SimBlocks:
    """The simulator's blocks of a scenario (absent: none)."""
    return SimBlocks(_stress(ck, top, participants),
                     _cash_managers(ck, top, participants, beps_item_limit_fen),
                     _costs(ck, top), _regimes(ck, top),
                     _payroll(ck, top, beps_item_limit_fen))


def _payroll(ck: Checker, top: LDict, beps_item_limit_fen: int) -> Payroll | None:
    raw = top.get("payroll")
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, LDict):
        ck.add(top.line_of("payroll"), "payroll must be a mapping (days, share, mean)")
        return None
    if not ck.keys(raw, "payroll", (), ("days", "share", "mean", "sigma")):
        return None
    d = Payroll()
    days = raw.get("days", list(d.days))
    if (not isinstance(days, list) or not days or len(days) > 31
            or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 31
                   for x in days)):
        ck.add(raw.line_of("days"), f"payroll: days must be a list of days of the month "
                                    f"from 1 to 31 (got {days!r})")
        return None
    share = share_ppm(ck, raw, "share", "payroll", hi="100") if "share" in raw \
        else d.share_ppm
    mean = amount_fen(ck, raw, "mean", "payroll", d.mean_fen)
    if mean > beps_item_limit_fen:
        ck.add(raw.line_of("mean"), f"payroll: mean must be at most the BEPS item limit "
                                    f"{beps_item_limit_fen / 100:,.2f} (got {mean / 100:,.2f})")
        return None
    sigma = share_ppm(ck, raw, "sigma", "payroll", hi="4") if "sigma" in raw \
        else d.sigma_ppm
    if share is None or sigma is None:
        return None
    return Payroll(tuple(sorted(set(days))), share, mean, sigma, raw.line)


def _regimes(ck: Checker, top: LDict) -> RegimeParams:
    raw = top.get("regimes")
    d = RegimeParams()
    if raw is None or raw == {}:
        return d
    if not isinstance(raw, LDict):
        ck.add(top.line_of("regimes"), "regimes must be a mapping of parameters")
        return d
    if not ck.keys(raw, "regimes", (), ("draft_days", "escort_rate", "post_days",
                                        "wire_days")):
        return d
    days = {k: whole(ck, raw, k, "regimes", 0, 366, getattr(d, k))
            for k in ("draft_days", "post_days", "wire_days")}
    escort = share_ppm(ck, raw, "escort_rate", "regimes", lo_open=False) \
        if "escort_rate" in raw else d.escort_ppm
    if None in days.values() or escort is None:
        return d
    return RegimeParams(int(days["draft_days"] or 0), escort, int(days["post_days"] or 0),
                        int(days["wire_days"] or 0), raw.line)


def _cash_managers(ck: Checker, top: LDict, participants: set[str],
                   beps_item_limit_fen: int) -> tuple[tuple[str, Policy], ...]:
    raw = top.get("cash_managers")
    if raw is None or raw == {}:
        return ()
    if not isinstance(raw, LDict):
        ck.add(top.line_of("cash_managers"), "cash_managers must be a mapping of bank to "
                                             "policy")
        return ()
    out = []
    for bank, doc in raw.items():
        what = f"cash_managers: {bank}"
        if bank not in participants:
            ck.add(raw.line_of(bank), f"{what}: not a listed participant")
            continue
        if not isinstance(doc, LDict):
            ck.add(raw.line_of(bank), f"{what} must be a mapping like {{policy: buffer}}")
            continue
        kind = next((k for k in PolicyKind if k.value == doc.get("policy")), None)
        if kind is None:
            ck.add(doc.line_of("policy"), f"{what}: policy must be one of "
                                          f"{', '.join(k.value for k in PolicyKind)} "
                                          f"(got {doc.get('policy')!r})")
            continue
        allowed = {PolicyKind.IMMEDIATE: (), PolicyKind.BUFFER: ("buffer", "final_minutes"),
                   PolicyKind.DEADLINE: ("hold_minutes", "final_minutes"),
                   PolicyKind.SPLIT: ("max",)}[kind]
        if not ck.keys(doc, what, ("policy", *(("max",) if kind is PolicyKind.SPLIT
                                               else ())), allowed):
            continue
        buffer = (share_ppm(ck, doc, "buffer", what, lo_open=False)
                  if "buffer" in doc else Policy().buffer_ppm)
        hold = minutes(ck, doc, "hold_minutes", what, Policy().hold_minutes)
        final = minutes(ck, doc, "final_minutes", what, Policy().final_minutes)
        piece = amount_fen(ck, doc, "max", what, 0)
        if kind is PolicyKind.SPLIT and "max" in doc and piece and \
                piece <= beps_item_limit_fen:
            ck.add(doc.line_of("max"), f"{what}: max must be above the BEPS item limit "
                                       f"{beps_item_limit_fen // 100:,} CNY (a smaller "
                                       "piece would go through BEPS, not HVPS)")
            continue
        if buffer is None or hold is None or final is None:
            continue
        out.append((str(bank), Policy(kind, buffer, hold, final, piece, doc.line)))
    return tuple(out)


def _costs(ck: Checker, top: LDict) -> CostRates:
    raw = top.get("costs")
    if raw is None or raw == {}:
        return CostRates()
    if not isinstance(raw, LDict):
        ck.add(top.line_of("costs"), "costs must be a mapping of rates")
        return CostRates()
    keys = ("liquidity_rate", "delay_rate_per_hour", "end_of_day_rate", "overnight_rate")
    if not ck.keys(raw, "costs", (), keys):
        return CostRates()
    d = CostRates()
    got = [share_ppm(ck, raw, k, "costs", lo_open=False) if k in raw else None for k in keys]
    return CostRates(got[0] if got[0] is not None else d.liquidity_ppm,
                     got[1] if got[1] is not None else d.delay_ppm_per_hour,
                     got[2] if got[2] is not None else d.end_of_day_ppm,
                     got[3], raw.line)


def share_ppm(ck: Checker, doc: LDict, key: str, what: str, *, lo_open: bool = True,
              hi: str = "1") -> int | None:
    """A decimal share like 0.25 (at most 6 decimals) as parts per million."""
    raw = doc.get(key)
    try:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise InvalidOperation
        value = Decimal(str(raw))
        ppm = value * 1_000_000
        if ppm != ppm.to_integral_value() or not (
                (value > 0 if lo_open else value >= 0) and value <= Decimal(hi)):
            raise InvalidOperation
    except InvalidOperation:
        ck.add(doc.line_of(key), f"{what}: {key} must be a decimal "
                                 f"{'above' if lo_open else 'from'} 0 and at most {hi} with "
                                 f"at most 6 decimals (got {raw!r})")
        return None
    return int(ppm)


def _time(ck: Checker, doc: LDict, key: str, what: str) -> int | None:
    value = doc.get(key)
    try:
        if isinstance(value, dt.datetime):
            return from_datetime(value)
        if not isinstance(value, str):
            raise ValueError
        return from_datetime(dt.datetime.fromisoformat(value.strip()))
    except ValueError:
        ck.add(doc.line_of(key), f"{what}: {key} must be a date-time like "
                                 f"2026-09-30T10:00 (got {value!r})")
        return None


def _period(ck: Checker, doc: LDict, what: str) -> tuple[int, int] | None:
    start, until = _time(ck, doc, "from", what), _time(ck, doc, "until", what)
    if start is None or until is None:
        return None
    if until <= start:
        ck.add(doc.line_of("until"), f"{what}: until must be after from")
        return None
    return start, until


def _stress(ck: Checker, top: LDict, participants: set[str]) -> tuple[Stress, ...]:
    raw = top.get("stress")
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, LList):
        ck.add(top.line_of("stress"), "stress must be a list of blocks")
        return ()
    if len(raw) > MAX_STRESS:
        ck.add(raw.line, f"stress: more than {MAX_STRESS:,} blocks")
        return ()
    out: list[Stress] = []
    parsers: dict[StressKind, Callable[[LDict, str, int], Stress | None]] = {
        StressKind.OUTAGE: lambda d, w, line: _outage(ck, d, w, line, participants),
        StressKind.SQUEEZE: lambda d, w, line: _squeeze(ck, d, w, line, participants),
        StressKind.MAINTENANCE: lambda d, w, line: _maintenance(ck, d, w, line),
        StressKind.HOLIDAY: lambda d, w, line: _holiday(ck, d, w, line),
    }
    for k, (doc, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
        what = f"stress[{k}]"
        if not isinstance(doc, LDict):
            ck.add(line, f"{what} must be a mapping of keys to values")
            continue
        kind = next((x for x in StressKind if x.value == doc.get("kind")), None)
        if kind is None:
            ck.add(doc.line_of("kind"), f"{what}: kind must be one of "
                                        f"{', '.join(x.value for x in StressKind)} "
                                        f"(got {doc.get('kind')!r})")
            continue
        block = parsers[kind](doc, f"{what} ({kind.value})", line)
        if block is not None:
            out.append(block)
    return tuple(out)


def _outage(ck: Checker, doc: LDict, what: str, line: int, participants: set[str]
            ) -> Outage | None:
    if not ck.keys(doc, what, ("kind", "participant", "from", "until"), ()):
        return None
    name = doc["participant"]
    if name not in participants:
        ck.add(doc.line_of("participant"), f"{what}: participant {name!r} is not listed")
        return None
    period = _period(ck, doc, what)
    return Outage(str(name), *period, line) if period else None


def _squeeze(ck: Checker, doc: LDict, what: str, line: int, participants: set[str]
             ) -> Squeeze | None:
    if not ck.keys(doc, what, ("kind", "share"), ("of", "participants")):
        return None
    share = share_ppm(ck, doc, "share", what)
    of = next((x for x in SqueezeOf if x.value == doc.get("of", "balances")), None)
    if of is None:
        ck.add(doc.line_of("of"), f"{what}: of must be balances, collateral or both "
                                  f"(got {doc.get('of')!r})")
    names = doc.get("participants", [])
    if not isinstance(names, list) or any(n not in participants for n in names):
        ck.add(doc.line_of("participants"), f"{what}: participants must be a list of "
                                            f"listed participants (got {names!r})")
        return None
    if share is None or of is None:
        return None
    return Squeeze(share, of, tuple(str(n) for n in names), line)


def _maintenance(ck: Checker, doc: LDict, what: str, line: int) -> Maintenance | None:
    if not ck.keys(doc, what, ("kind", "system", "from", "until"), ()):
        return None
    system = doc["system"]
    if system not in _SYSTEMS:
        ck.add(doc.line_of("system"), f"{what}: system must be HVPS, BEPS or IBPS "
                                      f"(got {system!r})")
        return None
    period = _period(ck, doc, what)
    return Maintenance(str(system), *period, line) if period else None


def _date(ck: Checker, doc: LDict, key: str, what: str) -> dt.date | None:
    value = doc.get(key)
    try:
        if isinstance(value, dt.datetime):  # YAML reads 2026-10-01T00:00 as a date-time
            raise ValueError
        if isinstance(value, dt.date):  # and 2026-10-01 as a date
            return value
        if not isinstance(value, str):
            raise ValueError
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        ck.add(doc.line_of(key), f"{what}: {key} must be a date like 2026-10-01 "
                                 f"(got {value!r})")
        return None


def _holiday(ck: Checker, doc: LDict, what: str, line: int) -> Holiday | None:
    if not ck.keys(doc, what, ("kind", "from", "until"), ("traffic", "deferred")):
        return None
    first, until = _date(ck, doc, "from", what), _date(ck, doc, "until", what)
    traffic = share_ppm(ck, doc, "traffic", what, lo_open=False, hi="100") \
        if "traffic" in doc else PPM  # an ordinary day's
    deferred = share_ppm(ck, doc, "deferred", what, lo_open=False) \
        if "deferred" in doc else 0
    if first is None or until is None or traffic is None or deferred is None:
        return None
    if not 0 < (until - first).days <= MAX_HOLIDAY_DAYS:
        ck.add(doc.line_of("until"), f"{what}: until must be after from, at most "
                                     f"{MAX_HOLIDAY_DAYS} days on (the day after the last "
                                     "holiday)")
        return None
    return Holiday(first, until, traffic, deferred, line)


def amount_fen(ck: Checker, doc: LDict, key: str, what: str, default: int) -> int:
    """An amount written as a CNY string (at most two decimals, above zero), in fen; the
    default when it is absent, or when it is wrong (the checker has said why)."""
    value = ck.amount(doc, key, what, allow_zero=False, default=default)
    return default if value is None else value


def minutes(ck: Checker, doc: LDict, key: str, what: str, default: int) -> int | None:
    """Whole minutes from 0 to a day."""
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_440:
        ck.add(doc.line_of(key), f"{what}: {key} must be whole minutes from 0 to 1440 "
                                 f"(got {value!r})")
        return None
    return value


def whole(ck: Checker, doc: LDict, key: str, what: str, lo: int, hi: int, default: int
          ) -> int | None:
    """A whole number from lo to hi."""
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        ck.add(doc.line_of(key), f"{what}: {key} must be a whole number from {lo} to {hi} "
                                 f"(got {value!r})")
        return None
    return value
