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
        self.net = np.zeros(n, np.int64)
        self.prefunding = Prefunding(n)
        self.day_end_us = 0

    def start_day(self, day_end_us: int) -> None:
        self.net[:] = 0
        self.prefunding = Prefunding(self.participants)
        self.day_end_us = day_end_us

    def add(self, at_us: I64, sender: I64, receiver: I64, amount_fen: I64) -> None:
        """Some of the day's interbank transfers (sender != receiver), in time order,
        after those added before."""
        assert (sender != receiver).all()
        if not len(amount_fen):
            return
        p = self.params
        value = int(amount_fen.sum())
        weights = amount_fen.astype(np.float64)
        np.add.at(self.net, receiver, amount_fen)
        np.subtract.at(self.net, sender, amount_fen)
        self.prefunding.add(sender, receiver, amount_fen)
        # draft houses: every draft takes draft_days
        t = self.tallies["draft_houses"]
        t.transit_value_s += float(weights.sum()) * p.draft_days * US_PER_DAY / US_PER_SECOND
        t.value_fen += value
        self.tallies["correspondent"].value_fen += value
        # a hub: net at the day's end, payees credited transit_days later
        waited = (self.day_end_us - at_us).astype(np.float64) / US_PER_SECOND
        for name, days in (("hub_post", p.post_days), ("hub_wire", p.wire_days)):
            t = self.tallies[name]
            t.transit_value_s += float((weights * (waited + days * US_PER_DAY
                                                   / US_PER_SECOND)).sum())
            t.value_fen += value

    def end_day(self) -> None:
        """The day's liquidity needs, once all its transfers were added."""
        net_debits = int(np.maximum(-self.net, 0).sum())  # Σ net debits = Σ net credits
        # draft houses: each receiving branch pays out what it receives net, in cash moved
        # there by escort
        t = self.tallies["draft_houses"]
        t.liquidity_fen = max(t.liquidity_fen, net_debits)
        t.cost_fen += net_debits * self.params.escort_ppm // PPM
        # correspondent banking: prefunding that credits every payment at once
        t = self.tallies["correspondent"]
        t.liquidity_fen = max(t.liquidity_fen, self.prefunding.total_fen())
        for name in ("hub_post", "hub_wire"):
            t = self.tallies[name]
            t.liquidity_fen = max(t.liquidity_fen, net_debits)

    def day(self, day_end_us: int, at_us: I64, sender: I64, receiver: I64,
            amount_fen: I64) -> None:
        """One whole day's interbank transfers (sender != receiver)."""
        self.start_day(day_end_us)
        self.add(at_us, sender, receiver, amount_fen)
        self.end_day()

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


class Prefunding:
    """The correspondent banks' prefunding, fed in time order: for every unordered pair
    the running net flow (lower index pays higher: +), its high and its low of the day."""

    def __init__(self, participants: int) -> None:
        self.n = participants
        self.running = np.zeros(participants * participants, np.int64)
        self.high = np.zeros(participants * participants, np.int64)
        self.low = np.zeros(participants * participants, np.int64)

    def add(self, sender: I64, receiver: I64, amount_fen: I64) -> None:
        if not len(amount_fen):
            return
        lo, hi = np.minimum(sender, receiver), np.maximum(sender, receiver)
        pair = lo * self.n + hi
        flow = np.where(sender == lo, amount_fen, -amount_fen)  # + lo pays hi, - hi pays lo
        order = np.argsort(pair, kind="stable")  # in time order within a pair
        pair, flow = pair[order], flow[order]
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        running = np.cumsum(flow)
        base = np.repeat(np.r_[0, running[starts[1:] - 1]], np.diff(np.r_[starts, len(flow)]))
        running = running - base  # each pair's own running net in this part, from 0
        key = pair[starts]
        before = self.running[key]
        self.high[key] = np.maximum(self.high[key], before + np.maximum.reduceat(running, starts))
        self.low[key] = np.minimum(self.low[key], before + np.minimum.reduceat(running, starts))
        self.running[key] = before + np.add.reduceat(flow, starts)

    def total_fen(self) -> int:
        return int(np.maximum(self.high, 0).sum() + np.maximum(-self.low, 0).sum())


def prefunding_fen(at_us: I64, sender: I64, receiver: I64, amount_fen: I64) -> int:
    """Σ over ordered pairs (s, r) of the most s's account at r must hold for every
    payment s -> r of the day to be credited at once: the peak of the running bilateral
    net flow s -> r (payments r -> s refill it), at least 0."""
    order = np.argsort(at_us, kind="stable")
    f = Prefunding(int(max(sender.max(), receiver.max())) + 1)
    f.add(sender[order], receiver[order], amount_fen[order])
    return f.total_fen()
