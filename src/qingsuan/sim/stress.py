"""Stress blocks (``stress:``, docs/SIMULATE.md "Stress"): what goes wrong on a simulated
day, as data and pure functions the loop applies.

* an **outage** of a participant: its outgoing transfers wait with it for the period (the
  ones to it still arrive: it becomes a liquidity sink, 流动性黑洞);
* a **squeeze**: opening settlement balances and/or pledged collateral cut by a share;
* a **maintenance** window of a system: nothing is sent to it for the period; the banks
  hold its transfers and send them when it is back.

The one thing a reader would get wrong: a held transfer is not refused; it waits (its
queue time counts) and goes first once the period ends.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from qingsuan.sim.scenario import Participant

I64 = npt.NDArray[np.int64]
PPM: Final = 1_000_000


class StressKind(Enum):
    OUTAGE = "outage"
    SQUEEZE = "squeeze"
    MAINTENANCE = "maintenance"


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


Stress = Outage | Squeeze | Maintenance


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
