"""Generated card traffic (银行卡跨行交易): a day of interbank card purchases, seeded, slot by
slot, like the CNAPS systems' traffic (sim/traffic.py), but not played yet.

A card transaction goes from the acquirer (收单行, the merchant's bank) through the card
switch (CUPS, 银联) to the issuer (发卡行); the daily targets default to 2025's UnionPay
interbank figures (DOMAIN.md §7: 1.04 billion items, 0.77 trillion CNY). Issuer and
acquirer are drawn from the same scale-free weights as the other systems' participants
(banks only, never the same bank: interbank traffic), the cardholder and the merchant
among their customers, the amount from a lognormal calibrated to the value per item.

Played by ``qingsuan simulate`` (a ``cards`` system in the ``traffic:`` block) window by
window through the banks' card batch (``Banks.card_transactions``: the switch's batch
entry, cards/batch.py), cleared at the switch's cut-off and settled in HVPS at the CUPS
net system's session. :class:`CardPlayer` does that and keeps the metrics. The one thing a
reader would get wrong: every generated item is a POS purchase (no withdrawals: the
generated world has no ATMs), its card a credit card with probability ``credit_share``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa

from qingsuan.cards.batch import APPROVED, NO_FUNDS, OVER_WITHDRAWAL_LIMIT
from qingsuan.clock import US_PER_DAY, US_PER_MINUTE, format_time
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

if TYPE_CHECKING:
    from qingsuan.sim.traffic import TrafficSpec
    from qingsuan.world import World

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

#: the share of credit cards among the transactions (of value: the interchange is
#: higher), and the merchants' discount rate: this model's assumptions
CARD_CREDIT_SHARE_PPM: Final = 300_000
CARD_MDR_PPM: Final = 6_000


@dataclass(frozen=True, slots=True)
class CardTraffic:
    """A day's card targets (before the scale)."""

    items_per_day: int = CARD_ITEMS_PER_DAY
    value_per_day_fen: int = CARD_VALUE_PER_DAY_FEN
    sigma: float = CARD_SIGMA
    scale: float = 1.0
    #: the share of transactions made with a credit card (ppm)
    credit_share_ppm: int = CARD_CREDIT_SHARE_PPM
    #: the discount rate charged to generated merchants (without one of their own), ppm
    mdr_ppm: int = CARD_MDR_PPM

    def __post_init__(self) -> None:
        if self.items_per_day < 1 or self.value_per_day_fen < self.items_per_day:
            raise ValueError("cards: items_per_day must be above 0 and value_per_day at "
                             "least 0.01 CNY per item")
        if not 0 < self.sigma <= 4:
            raise ValueError(f"cards: sigma must be above 0 and at most 4 (got {self.sigma})")
        if not 0 < self.scale <= 100:
            raise ValueError(f"cards: scale must be above 0 and at most 100 "
                             f"(got {self.scale})")
        if not 0 <= self.credit_share_ppm <= 1_000_000 or not 0 <= self.mdr_ppm <= 1_000_000:
            raise ValueError("cards: credit_share and mdr must be from 0 to 1")
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
    indices), merchant and cardholder (customer indices), amount in fen, card kind (0
    debit, 1 credit: cards/clearing.py)."""

    at_us: I64
    acquirer: I64
    issuer: I64
    merchant: I64
    cardholder: I64
    amount_fen: I64
    credit: I64

    def take(self, rows: slice) -> CardSlot:
        return CardSlot(*(getattr(self, k)[rows] for k in _SLOT_COLUMNS))

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
        self.credit_share = spec.credit_share_ppm / 1_000_000
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
        credit = (rng.random(n) < self.credit_share).astype(np.int64)  # drawn last
        return CardSlot(at, acquirer, issuer, merchant, cardholder, amount, credit)

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


_SLOT_COLUMNS: Final = ("at_us", "acquirer", "issuer", "merchant", "cardholder",
                        "amount_fen", "credit")


def _concat(parts: list[CardSlot]) -> CardSlot:
    return CardSlot(*(np.concatenate([getattr(p, k) for p in parts]) for k in _SLOT_COLUMNS))


class CardStream:
    """A :class:`CardDay` taken window by window: the transactions arriving before a
    time, not taken yet (memory: a window's slots)."""

    def __init__(self, day: CardDay) -> None:
        self.day = day
        self.next_slot = 0
        self.pending: CardSlot | None = None

    def take_until(self, until_us: int) -> CardSlot:
        parts = [] if self.pending is None else [self.pending]
        while self.next_slot < SLOTS_PER_DAY and self.day.midnight_us + self.next_slot * \
                SLOT_MINUTES * US_PER_MINUTE < until_us:
            parts.append(self.day.slot(self.next_slot))
            self.next_slot += 1
        if not parts:
            empty = np.zeros(0, np.int64)
            return CardSlot(*(empty for _ in _SLOT_COLUMNS))
        got = _concat(parts)
        j = int(np.searchsorted(got.at_us, until_us, side="left"))
        self.pending = got.take(slice(j, None))
        return got.take(slice(0, j))


#: response codes of a batch item and what the summary calls them
CODES: Final = {APPROVED: "approved", NO_FUNDS: "no_funds",
                OVER_WITHDRAWAL_LIMIT: "over_withdrawal_limit"}
_CODE_INDEX: Final = {code: k for k, code in enumerate(CODES)}
#: the ``cards.parquet`` table: per bucket, participant, role and response code
CARDS_SCHEMA: Final = pa.schema([
    ("bucket_start", pa.string()), ("participant", pa.string()), ("role", pa.string()),
    ("response_code", pa.string()), ("items", pa.int64()), ("value_fen", pa.int64())])
_ROLES: Final = ("acquirer", "issuer")


class CardPlayer:
    """Plays a ``cards`` traffic system through a simulated world: each window's
    arrivals as one card batch at the time of its last arrival, and the metrics: per
    bucket, participant (as acquirer and as issuer) and response code the items and
    value; per participant the fees of the clearing days (from the switch)."""

    def __init__(self, world: World, spec: TrafficSpec, network: Network, seed: int,
                 first_us: int, bucket_us: int, buckets_per_day: int, days: int) -> None:
        assert spec.cards is not None
        self.world, self.network, self.seed = world, network, seed
        self.cards = replace(spec.cards, scale=spec.scale)
        self.first_us, self.bucket_us = first_us, bucket_us
        self.names = [m.name for m in network.members]
        #: [role, code, participant, bucket] -> items / value over the run
        shape = (2, len(CODES), len(self.names), buckets_per_day * days)
        self.items = np.zeros(shape, np.int64)
        self.value = np.zeros(shape, np.int64)
        self.generated = np.zeros(2, np.int64)  # items, value
        self.stream: CardStream | None = None

    def items_per_day(self) -> int:
        return self.cards.items()

    def start_day(self, day: int, midnight_us: int) -> None:
        self.stream = CardStream(CardDay(self.cards, self.network, self.seed, day,
                                         midnight_us))

    def play_until(self, until_us: int, start_us: int, clock: Any) -> int:
        """Send the transactions arriving before ``until_us`` (none before ``start_us``,
        the scenario's start) as one batch at the time of the last; how many."""
        assert self.stream is not None
        s = self.stream.take_until(until_us)
        keep = slice(int(np.searchsorted(s.at_us, start_us, side="left")), None)
        s = s.take(keep)
        n = len(s)
        if not n:
            return 0
        self.generated += (n, int(s.amount_fen.sum()))
        clock.advance_to(max(int(s.at_us[-1]), clock.now_us()))
        rc = np.asarray(self.world.banks.card_transactions(
            s.cardholder, s.merchant, s.amount_fen, np.zeros(n, np.int64), s.credit,
            mdr_ppm=self.cards.mdr_ppm), np.int64)
        bucket = (s.at_us - self.first_us) // self.bucket_us
        code = np.zeros(n, np.int64)
        for value, k in _CODE_INDEX.items():
            code[rc == value] = k
        for role, who in enumerate((s.acquirer, s.issuer)):
            np.add.at(self.items[role], (code, who, bucket), 1)
            np.add.at(self.value[role], (code, who, bucket), s.amount_fen)
        return n

    def table(self) -> pa.Table:
        rows: dict[str, list[Any]] = {f.name: [] for f in CARDS_SCHEMA}
        buckets = self.items.shape[3]
        for b in range(buckets):
            start = format_time(self.first_us + b * self.bucket_us)
            for p, name in enumerate(self.names):
                for role, role_name in enumerate(_ROLES):
                    for k, code in enumerate(CODES):
                        n = int(self.items[role, k, p, b])
                        if n:
                            for key, v in (("bucket_start", start), ("participant", name),
                                           ("role", role_name),
                                           ("response_code", f"{code:02d}"), ("items", n),
                                           ("value_fen", int(self.value[role, k, p, b]))):
                                rows[key].append(v)
        return pa.table(rows, schema=CARDS_SCHEMA)

    def summary(self, first_us: int, end_us: int) -> dict[str, Any]:
        """``summary.json``'s ``cards``: the targets and what was generated, the outcomes
        by response code, per participant its acquiring and issuing and the fees of its
        closed clearing days, the CUPS settlements in the period and the positions still
        waiting for one (a holiday's: HVPS is closed)."""
        switch, cups = self.world.switch, self.world.cnaps.net.get("CUPS")
        items, value = self.items.sum(axis=3), self.value.sum(axis=3)
        outcomes = {CODES[c]: {"response_code": f"{c:02d}", "items": int(items[0, k].sum()),
                               "value_fen": int(value[0, k].sum())}
                    for c, k in _CODE_INDEX.items() if items[0, k].sum()}
        fees: dict[str, dict[str, int]] = {}
        for day in switch.batch_cleared.values():
            for name, figures in day.items():
                held = fees.setdefault(name, {})
                for key, v in figures.items():
                    held[key] = held.get(key, 0) + int(v)
        participants: dict[str, Any] = {}
        for p, name in enumerate(self.names):
            doc: dict[str, Any] = {}
            for role, role_name in enumerate(_ROLES):
                ok = _CODE_INDEX[APPROVED]
                if items[role, :, p].sum():
                    doc[role_name] = {
                        "approved_items": int(items[role, ok, p]),
                        "approved_value_fen": int(value[role, ok, p]),
                        "declined": {CODES[c]: {"items": int(items[role, k, p]),
                                                "value_fen": int(value[role, k, p])}
                                     for c, k in _CODE_INDEX.items()
                                     if c != APPROVED and items[role, k, p]}}
            if name in fees:
                doc["cleared"] = fees[name]
            if doc:
                participants[name] = doc
        if "CUPS" in fees:
            participants["CUPS"] = {"cleared": fees["CUPS"]}
        sessions = [] if cups is None else [
            {"at": format_time(int(x["at_us"])), "status": x["status"],
             "positions_fen": dict(sorted(x["positions"].items()))}
            for x in cups.sessions if first_us <= int(x["at_us"]) <= end_us]
        n, v = int(self.generated[0]), int(self.generated[1])
        return {
            "target_items_per_day": self.cards.items(),
            "target_mean_fen": round(self.cards.mean_fen),
            "credit_share_ppm": self.cards.credit_share_ppm, "mdr_ppm": self.cards.mdr_ppm,
            "generated_items": n, "generated_value_fen": v,
            "generated_mean_fen": v // n if n else 0,
            "outcomes": outcomes,
            "approved_value_fen": int(value[0, _CODE_INDEX[APPROVED]].sum()),
            "clearing_days": sorted(switch.batch_cleared),
            "open_clearing_days": sorted(switch.batch_days),
            "settlements": sessions,
            "open_positions_fen": {} if cups is None else {
                k: v for k, v in sorted(cups.positions.items()) if v},
            "participants": participants,
        }
