"""Historical regimes on the same generated workload (docs/SIMULATE.md, "Historical
regimes"): how much liquidity, how much money in transit and how much delay the same
day's interbank payments would have needed before CNAPS.

Pure functions over one day's interbank transfers (arrival, sending and receiving
participant, amount), each regime a stated model with its parameters (defaults documented):

* draft houses (票号): every payment a draft, paid out at the receiving branch after
  ``draft_days``; branches hold the cash they pay out net, and the house escorts silver to
  rebalance them at ``escort_rate`` of the value moved;
* correspondent banking (同业头寸): every bank prefunds an account at every bank it pays
  (N x (N-1) accounts) so that each payment is credited at once; bilateral nets settled
  at the day's end;
* a clearing hub (手工联行 by post, then the EIS wire): payments netted multilaterally at
  the day's end, the payees credited ``transit_days`` later; banks fund their net debits.

CNAPS's own figures come from the simulation itself. The one thing a reader would get
wrong: these are models of the regimes' mechanics on today's traffic, not reconstructions
of historical volumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.clock import US_PER_DAY, US_PER_SECOND

I64 = npt.NDArray[np.int64]
PPM: Final = 1_000_000

DEFAULT_DRAFT_DAYS: Final = 10        # a draft travels with the merchant or a courier
DEFAULT_ESCORT_PPM: Final = 10_000    # 1% of the silver escorted between branches
DEFAULT_POST_DAYS: Final = 2          # 手工联行: advices by post
DEFAULT_WIRE_DAYS: Final = 1          # the EIS wire hub (电子联行)

REGIMES: Final = ("draft_houses", "correspondent", "hub_post", "hub_wire", "cnaps")


@dataclass(frozen=True, slots=True)
class RegimeParams:
    draft_days: int = DEFAULT_DRAFT_DAYS
    escort_ppm: int = DEFAULT_ESCORT_PPM
    post_days: int = DEFAULT_POST_DAYS
    wire_days: int = DEFAULT_WIRE_DAYS
    line: int = 0


@dataclass
class Tally:
    """One regime over the days: the largest day's liquidity, value x seconds in transit,
    the value moved, the cost."""

    liquidity_fen: int = 0
    transit_value_s: float = 0.0
    value_fen: int = 0
    cost_fen: int = 0
    accounts: int = 0

    def doc(self, period_s: float) -> dict[str, Any]:
        return {"liquidity_fen": self.liquidity_fen,
                "in_transit_fen": round(self.transit_value_s / period_s) if period_s else 0,
                "delay_s": round(self.transit_value_s / self.value_fen, 3)
                if self.value_fen else 0.0,
                "cost_fen": self.cost_fen, "accounts": self.accounts}


@dataclass
class Regimes:
    """The regimes' tallies, fed one day at a time."""

    params: RegimeParams
    participants: int
    tallies: dict[str, Tally] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.participants
        self.tallies = {name: Tally() for name in REGIMES}
        self.tallies["draft_houses"].accounts = n          # one branch per place
        self.tallies["correspondent"].accounts = n * (n - 1)
        for name in ("hub_post", "hub_wire", "cnaps"):
            self.tallies[name].accounts = n

    def day(self, day_end_us: int, at_us: I64, sender: I64, receiver: I64,
            amount_fen: I64) -> None:
        """One day's interbank transfers (sender != receiver)."""
        assert (sender != receiver).all()
        n, p = len(amount_fen), self.params
        if n == 0:
            return
        value = int(amount_fen.sum())
        weights = amount_fen.astype(np.float64)
        net = np.zeros(self.participants, np.int64)
        np.add.at(net, receiver, amount_fen)
        np.subtract.at(net, sender, amount_fen)
        net_debits = int(np.maximum(-net, 0).sum())  # Σ net debits = Σ net credits
        # draft houses: each receiving branch pays out what it receives net, in cash moved
        # there by escort; every draft takes draft_days
        t = self.tallies["draft_houses"]
        t.liquidity_fen = max(t.liquidity_fen, net_debits)
        t.transit_value_s += float(weights.sum()) * p.draft_days * US_PER_DAY / US_PER_SECOND
        t.value_fen += value
        t.cost_fen += net_debits * p.escort_ppm // PPM
        # correspondent banking: prefunding that credits every payment at once
        t = self.tallies["correspondent"]
        t.liquidity_fen = max(t.liquidity_fen,
                              prefunding_fen(at_us, sender, receiver, amount_fen))
        t.value_fen += value
        # a hub: net at the day's end, payees credited transit_days later
        waited = (day_end_us - at_us).astype(np.float64) / US_PER_SECOND
        for name, days in (("hub_post", p.post_days), ("hub_wire", p.wire_days)):
            t = self.tallies[name]
            t.liquidity_fen = max(t.liquidity_fen, net_debits)
            t.transit_value_s += float((weights * (waited + days * US_PER_DAY
                                                   / US_PER_SECOND)).sum())
            t.value_fen += value

    def cnaps(self, liquidity_fen: int, waited_value_s: float, value_fen: int) -> None:
        """CNAPS's figures, from the simulation."""
        t = self.tallies["cnaps"]
        t.liquidity_fen, t.transit_value_s, t.value_fen = liquidity_fen, waited_value_s, \
            value_fen

    def summary(self, period_s: float) -> dict[str, Any]:
        p = self.params
        return {"parameters": {"draft_days": p.draft_days, "escort_ppm": p.escort_ppm,
                               "post_days": p.post_days, "wire_days": p.wire_days},
                **{name: t.doc(period_s) for name, t in self.tallies.items()}}


def prefunding_fen(at_us: I64, sender: I64, receiver: I64, amount_fen: I64) -> int:
    """Σ over ordered pairs (s, r) of the most s's account at r must hold for every
    payment s -> r of the day to be credited at once: the peak of the running bilateral
    net flow s -> r (payments r -> s refill it), at least 0."""
    lo, hi = np.minimum(sender, receiver), np.maximum(sender, receiver)
    pair = lo * (int(max(sender.max(), receiver.max())) + 1) + hi
    flow = np.where(sender == lo, amount_fen, -amount_fen)  # + lo pays hi, - hi pays lo
    order = np.lexsort((at_us, pair))
    pair, flow = pair[order], flow[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    running = np.cumsum(flow)
    base = np.repeat(np.r_[0, running[starts[1:] - 1]], np.diff(np.r_[starts, len(flow)]))
    running = running - base  # each pair's own running net, from 0
    high = np.maximum.reduceat(running, starts)
    low = np.minimum.reduceat(running, starts)
    return int(np.maximum(high, 0).sum() + np.maximum(-low, 0).sum())
