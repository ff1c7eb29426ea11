"""Stress blocks (``stress:``, docs/SIMULATE.md "Stress"): what goes wrong on a simulated
day, as data and pure functions the loop applies.

* an **outage** of a participant: its outgoing transfers wait with it for the period (the
  ones to it still arrive: it becomes a liquidity sink, 流动性黑洞);
* a **squeeze**: opening settlement balances and/or pledged collateral cut by a share;
* a **maintenance** window of a system: nothing is sent to it for the period; the banks
  hold its transfers and send them when it is back;
* a **holiday** week: the calendar already closes HVPS on the real holidays (its net
  positions wait for the next business day); the block shapes the traffic over the
  period (a share of an ordinary day's transfers) and sends the HVPS payments deferred
  from its closed weekdays on the first business day after it (节后首日).

The one thing a reader would get wrong: a held transfer is not refused; it waits (its
queue time counts) and goes first once the period ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from qingsuan.sim.scenario import Participant
    from qingsuan.sim.traffic import TrafficSpec

I64 = npt.NDArray[np.int64]
PPM: Final = 1_000_000


class StressKind(Enum):
    OUTAGE = "outage"
    SQUEEZE = "squeeze"
    MAINTENANCE = "maintenance"
    HOLIDAY = "holiday"


class SqueezeOf(Enum):
    """What a squeeze cuts."""

    BALANCES = "balances"
    COLLATERAL = "collateral"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Outage:
    participant: str
    from_us: int
    until_us: int
    line: int = 0


@dataclass(frozen=True, slots=True)
class Squeeze:
    #: the share cut, parts per million (500_000: half)
    share_ppm: int
    of: SqueezeOf
    #: the participants squeezed (empty: every one)
    participants: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Maintenance:
    #: HVPS, BEPS or IBPS
    system: str
    from_us: int
    until_us: int
    line: int = 0


@dataclass(frozen=True, slots=True)
class Holiday:
    """A holiday period [first, until) of whole days (Beijing time)."""

    first: dt.date
    until: dt.date
    #: each day's traffic as a share of an ordinary day's, parts per million (every system)
    traffic_ppm: int = PPM
    #: the share of an ordinary day's HVPS payments deferred from each closed weekday of the
    #: period to the first business day after it, parts per million
    deferred_ppm: int = 0
    line: int = 0

    def covers(self, day: dt.date) -> bool:
        return self.first <= day < self.until

    def closed_weekdays(self, is_business_day: Callable[[dt.date], bool]) -> int:
        """Monday-to-Friday days of the period on which HVPS is closed (the calendar)."""
        days = (self.first + dt.timedelta(k) for k in range((self.until - self.first).days))
        return sum(1 for d in days if d.weekday() < 5 and not is_business_day(d))

    def deferred_to(self, is_business_day: Callable[[dt.date], bool]) -> dt.date:
        """The first business day on or after the period's end."""
        day = self.until
        for _ in range(MAX_HOLIDAY_DAYS * 2):
            if is_business_day(day):
                return day
            day += dt.timedelta(1)
        raise ValueError(f"no business day within {MAX_HOLIDAY_DAYS * 2} days after "
                         f"{self.until.isoformat()}")


#: days one holiday block may span
MAX_HOLIDAY_DAYS: Final = 31

Stress = Outage | Squeeze | Maintenance | Holiday


def day_factors(blocks: tuple[Stress, ...], day: dt.date,
                is_business_day: Callable[[dt.date], bool]) -> tuple[float, float]:
    """(every system's traffic, HVPS's traffic) on ``day`` as shares of an ordinary day's:
    the holiday blocks covering it multiply the traffic; on the first business day after a
    block, HVPS also carries ``deferred`` x the block's closed weekdays of ordinary days."""
    share, extra = 1.0, 0.0
    for b in blocks:
        if not isinstance(b, Holiday):
            continue
        if b.covers(day):
            share *= b.traffic_ppm / PPM
        elif b.deferred_ppm and day == b.deferred_to(is_business_day):
            extra += b.deferred_ppm / PPM * b.closed_weekdays(is_business_day)
    return share, share + extra


def holiday_summary(blocks: tuple[Stress, ...], is_business_day: Callable[[dt.date], bool]
                    ) -> list[dict[str, object]]:
    """The holiday blocks as summary.json gives them (JSON-ready)."""
    return [{"from": b.first.isoformat(), "until": b.until.isoformat(),
             "traffic_ppm": b.traffic_ppm, "deferred_ppm": b.deferred_ppm,
             "closed_weekdays": b.closed_weekdays(is_business_day),
             "deferred_to": b.deferred_to(is_business_day).isoformat()}
            for b in blocks if isinstance(b, Holiday)]


def day_traffic(spec: TrafficSpec, share: float, hvps_share: float) -> TrafficSpec:
    """The traffic block with every system's daily targets (count and value, so the mean
    per item stays) scaled by ``share``, HVPS's by ``hvps_share``."""
    from qingsuan.sim.traffic import TrafficSystem

    if share == hvps_share == 1.0:
        return spec
    systems = tuple(dataclasses.replace(
        s, items_per_day=round(s.items_per_day * f), value_per_day_fen=round(
            s.value_per_day_fen * f))
        for s in spec.systems
        for f in (hvps_share if s.system is TrafficSystem.HVPS else share,))
    return dataclasses.replace(spec, systems=systems)


def squeezed(participants: tuple[Participant, ...], blocks: tuple[Stress, ...]
             ) -> tuple[Participant, ...]:
    """The participants with their opening balances and collateral cut (rounded down to
    the fen kept: the cut is ``amount x share_ppm // 1e6``); blocks apply one after the
    other."""
    out = list(participants)
    for b in blocks:
        if not isinstance(b, Squeeze):
            continue
        for k, p in enumerate(out):
            if b.participants and p.name not in b.participants:
                continue
            balances = b.of in (SqueezeOf.BALANCES, SqueezeOf.BOTH)
            collateral = b.of in (SqueezeOf.COLLATERAL, SqueezeOf.BOTH)
            out[k] = dataclasses.replace(
                p, settlement_balance_fen=_cut(p.settlement_balance_fen, b.share_ppm)
                if balances else p.settlement_balance_fen,
                collateral_fen=_cut(p.collateral_fen, b.share_ppm)
                if collateral else p.collateral_fen)
    return tuple(out)


def _cut(amount_fen: int, share_ppm: int) -> int:
    return amount_fen - amount_fen * share_ppm // PPM


def held_back(blocks: tuple[Stress, ...], names: list[str], system_names: list[str],
              now_us: int, sender: I64, system: I64) -> npt.NDArray[np.bool_]:
    """Which transfers may not be sent at ``now_us`` (sender in an outage, system in
    maintenance). ``system`` indexes ``system_names``; ``sender`` indexes ``names``."""
    hold = np.zeros(len(sender), np.bool_)
    for b in blocks:
        if isinstance(b, Outage) and b.from_us <= now_us < b.until_us:
            hold |= sender == names.index(b.participant)
        elif isinstance(b, Maintenance) and b.from_us <= now_us < b.until_us:
            hold |= system == system_names.index(b.system)
    return hold


def boundaries(blocks: tuple[Stress, ...]) -> list[int]:
    """The moments a period starts or ends (the loop cuts its windows there, so that
    nothing is sent inside a period and the held transfers go as soon as it ends)."""
    return sorted({t for b in blocks if isinstance(b, Outage | Maintenance)
                   for t in (b.from_us, b.until_us)})
