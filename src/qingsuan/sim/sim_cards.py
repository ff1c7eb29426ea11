"""Generated card traffic (银行卡跨行交易): a day of interbank card purchases, seeded, slot by
slot, like the CNAPS systems' traffic (sim/traffic.py), but not played yet.

A card transaction goes from the acquirer (收单行, the merchant's bank) through the card
switch (CUPS, 银联) to the issuer (发卡行); the daily targets default to 2025's UnionPay
interbank figures (DOMAIN.md §7: 1.04 billion items, 0.77 trillion CNY). Issuer and
acquirer are drawn from the same scale-free weights as the other systems' participants
(banks only, never the same bank: interbank traffic), the cardholder and the merchant
among their customers, the amount from a lognormal calibrated to the value per item.

The one thing a reader would get wrong: nothing here reaches the switch. The switch takes
one request at a time (``CardSwitch.take``: fields, ISO 8583 rules, the issuer's answer);
it has no columnar entry a simulated day of millions of transactions could go through, so
``qingsuan simulate`` refuses card traffic with :data:`NOT_PLAYABLE` (docs/SIMULATE.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from qingsuan.clock import US_PER_DAY, US_PER_MINUTE
from qingsuan.sim.traffic import (
    I64,
    SLOT_MINUTES,
    SLOTS_PER_DAY,
    Network,
    TrafficSystem,
    calibrate_mu,
    lognormal_amounts,
    slot_weights,
)

#: 2025, UnionPay interbank card transactions per day (DOMAIN.md §7)
CARD_ITEMS_PER_DAY: Final = 1_040_000_000
CARD_VALUE_PER_DAY_FEN: Final = 77_000_000_000_000
#: the lognormal's shape: this model's assumption, not a published figure
CARD_SIGMA: Final = 1.3
#: the stream key of card traffic (after HVPS 0, BEPS 1, IBPS 2)
CARDS_STREAM: Final = 3
#: card transactions one generated day may hold at most (a slot's share is in memory)
MAX_CARD_ITEMS_PER_DAY: Final = 2_000_000_000
#: arrivals (items per hour, relative), an assumption: daytime shopping with a lunch bump
#: and an evening peak (online and restaurants), quiet small hours
CARD_PROFILE: Final = (
    ("00:00", "01:00", 0.5), ("01:00", "07:00", 0.1), ("07:00", "09:00", 0.7),
    ("09:00", "11:30", 1.0), ("11:30", "13:30", 1.5), ("13:30", "17:30", 1.1),
    ("17:30", "21:30", 1.8), ("21:30", "24:00", 1.0))

#: why simulate stops at generation (the switch's missing entry point)
NOT_PLAYABLE: Final = (
    "card traffic is generated but cannot be played: the card switch takes one request "
    "at a time (CardSwitch.take) and has no batch entry for a day of transactions as "
    "columns (issuer, acquirer, card, merchant, amount -> response codes and "
    "interchange); see docs/SIMULATE.md")


@dataclass(frozen=True, slots=True)
class CardTraffic:
    """A day's card targets (before the scale)."""

    items_per_day: int = CARD_ITEMS_PER_DAY
    value_per_day_fen: int = CARD_VALUE_PER_DAY_FEN
    sigma: float = CARD_SIGMA
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.items_per_day < 1 or self.value_per_day_fen < self.items_per_day:
            raise ValueError("cards: items_per_day must be above 0 and value_per_day at "
                             "least 0.01 CNY per item")
        if not 0 < self.sigma <= 4:
            raise ValueError(f"cards: sigma must be above 0 and at most 4 (got {self.sigma})")
        if not 0 < self.scale <= 100:
            raise ValueError(f"cards: scale must be above 0 and at most 100 "
                             f"(got {self.scale})")
        if self.items() > MAX_CARD_ITEMS_PER_DAY:
            raise ValueError(f"cards: {self.items():,} transactions a day is more than "
                             f"{MAX_CARD_ITEMS_PER_DAY:,}: lower the scale")

    def items(self) -> int:
        return round(self.items_per_day * self.scale)

    @property
    def mean_fen(self) -> float:
        return self.value_per_day_fen / self.items_per_day


@dataclass(frozen=True, slots=True)
class CardSlot:
    """Card transactions as columns, in time order: acquirer and issuer (participant
    indices), merchant and cardholder (customer indices), amount in fen."""

    at_us: I64
    acquirer: I64
    issuer: I64
    merchant: I64
    cardholder: I64
    amount_fen: I64

    def __len__(self) -> int:
        return len(self.at_us)


class CardDay:
    """Day ``day``'s card transactions, slot by slot (5 minutes): the slot counts from the
    stream (seed, day, cards), each slot from that stream spawned with key (slot,), so the
    transactions are the same whatever windows they are taken in."""

    def __init__(self, spec: CardTraffic, network: Network, seed: int, day: int,
                 midnight_us: int) -> None:
        self.network, self.midnight_us = network, midnight_us
        self.entropy = [seed, day, CARDS_STREAM]
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy))
        self.counts = np.asarray(rng.multinomial(spec.items(), slot_weights(CARD_PROFILE)),
                                 np.int64)
        self.sigma = spec.sigma
        self.mu = calibrate_mu(spec.mean_fen, spec.sigma, 1.0, math.inf)
        network.alias(TrafficSystem.BEPS)  # banks only: the BEPS weights

    def slot(self, k: int) -> CardSlot:
        n = int(self.counts[k])
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(k,)))
        start_us = self.midnight_us + k * SLOT_MINUTES * US_PER_MINUTE
        at = start_us + np.sort(np.floor(rng.random(n) * (SLOT_MINUTES * US_PER_MINUTE))
                                .astype(np.int64))
        acquirer, issuer = self.network.pairs(rng, n, TrafficSystem.BEPS)
        merchant = self.network.customer_of(rng, acquirer)
        cardholder = self.network.customer_of(rng, issuer)
        amount = lognormal_amounts(rng, n, self.mu, self.sigma, 1, None)
        return CardSlot(at, acquirer, issuer, merchant, cardholder, amount)

    def slots(self) -> range:
        return range(SLOTS_PER_DAY)


def day_totals(day: CardDay, participants: int) -> tuple[int, int, I64, I64]:
    """Generate the whole day slot by slot (memory: one slot): its items, value, and the
    value each participant acquired and issued (what the switch would be offered)."""
    items = value = 0
    acquired = np.zeros(participants, np.int64)
    issued = np.zeros(participants, np.int64)
    for k in day.slots():
        s = day.slot(k)
        items += len(s)
        value += int(s.amount_fen.sum())
        np.add.at(acquired, s.acquirer, s.amount_fen)
        np.add.at(issued, s.issuer, s.amount_fen)
    assert US_PER_DAY == SLOTS_PER_DAY * SLOT_MINUTES * US_PER_MINUTE
    return items, value, acquired, issued
