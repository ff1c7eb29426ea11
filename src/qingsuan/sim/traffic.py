"""Generated traffic (docs/SIMULATE.md): customer transfers by system, seeded, as columns.

A day's transfers of one system are drawn from its daily count and value targets (2025
defaults, DOMAIN.md §7, times a scale), between participants with scale-free weights, at
customers of those participants, with lognormal amounts truncated to what the banks route
to that system and calibrated so that the mean per item is the target's. Floats live only
here, before the amounts are rounded to the fen; what reaches the engine is int64 fen.
The one thing a reader would get wrong: the same seed gives the same transfers byte for
byte only for the same world (the customers and participants, in the same order).
"""

from __future__ import annotations

import math
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from qingsuan.clock import US_PER_DAY, US_PER_MINUTE
from qingsuan.sim.sim_payroll import PAYROLL_PROFILE, PAYROLL_STREAM, Payroll

if TYPE_CHECKING:
    from qingsuan.sim.sim_cards import CardTraffic

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: transfers one generated day of one system may hold (bounded memory)
MAX_ITEMS_PER_DAY: Final = 50_000_000
#: customers a traffic block may generate per bank
MAX_CUSTOMERS_PER_BANK: Final = 100_000
#: a system's value per day at most (fen; 100 times 2025's HVPS day)
MAX_VALUE_PER_DAY_FEN: Final = 4 * 10**17


class TrafficSystem(IntEnum):
    """The systems a traffic block generates customer transfers for (the routes they take
    through the banks: HVPS above the BEPS item limit, BEPS up to it, IBPS urgent)."""

    HVPS = 0
    BEPS = 1
    IBPS = 2


@dataclass(frozen=True, slots=True)
class SystemDefaults:
    items_per_day: int
    value_per_day_fen: int
    #: the lognormal's shape (the log's standard deviation): heavier tails when larger
    sigma: float
    #: the arrival profile: (from "HH:MM", to "HH:MM", items per hour, relative)
    profile: tuple[tuple[str, str, float], ...]
    #: only on HVPS business days (HVPS is closed on the others)
    business_days_only: bool


#: 2025, PBOC annual figures per day (DOMAIN.md §7). The sigmas and profiles are this
#: model's assumptions, not published figures (docs/SIMULATE.md).
DEFAULTS: Final = {
    TrafficSystem.HVPS: SystemDefaults(
        1_630_000, 3_615_000_000_000_000, 1.5,
        (("08:30", "10:00", 0.8), ("10:00", "12:00", 1.0), ("12:00", "13:30", 0.6),
         ("13:30", "15:30", 1.2), ("15:30", "17:15", 2.2)), True),
    TrafficSystem.BEPS: SystemDefaults(
        13_950_000, 56_000_000_000_000, 0.8,
        (("00:00", "07:00", 0.1), ("07:00", "09:00", 0.6), ("09:00", "12:00", 1.5),
         ("12:00", "14:00", 1.0), ("14:00", "17:30", 1.4), ("17:30", "21:00", 0.5),
         ("21:00", "24:00", 0.2)), False),
    TrafficSystem.IBPS: SystemDefaults(
        46_690_000, 77_000_000_000_000, 1.2,
        (("00:00", "01:00", 0.4), ("01:00", "07:00", 0.1), ("07:00", "09:00", 0.8),
         ("09:00", "12:00", 1.5), ("12:00", "14:00", 1.1), ("14:00", "18:00", 1.3),
         ("18:00", "19:00", 1.0), ("19:00", "22:30", 1.7), ("22:30", "24:00", 0.7)), False),
}


@dataclass(frozen=True, slots=True)
class SystemTraffic:
    """One system's targets in a traffic block (before the scale)."""

    system: TrafficSystem
    items_per_day: int
    value_per_day_fen: int
    sigma: float

    @property
    def mean_fen(self) -> float:
        return self.value_per_day_fen / self.items_per_day


@dataclass(frozen=True, slots=True)
class TrafficSpec:
    """A scenario's ``traffic:`` block (docs/SIMULATE.md)."""

    systems: tuple[SystemTraffic, ...]
    scale: float = 1.0
    #: participant weights 1 / rank ** zipf, rank = the order the participants are listed
    zipf: float = 1.1
    customers_per_bank: int = 0
    #: a generated customer's opening balance, as a multiple of its expected daily outflow
    #: plus the largest mean item
    customer_liquidity: float = 2.0
    #: each participant's settlement balance as a share of its expected daily outflow
    #: (None: the balance the file lists)
    settlement_liquidity: float | None = None
    line: int = 0
    #: card traffic (a ``cards`` system, sim/sim_cards.py): its targets before the scale
    cards: CardTraffic | None = None

    def scaled(self, scale: float) -> TrafficSpec:
        return TrafficSpec(self.systems, scale, self.zipf, self.customers_per_bank,
                           self.customer_liquidity, self.settlement_liquidity, self.line,
                           self.cards)

    def items_per_day(self, s: SystemTraffic) -> int:
        return round(s.items_per_day * self.scale)


def default_systems() -> tuple[SystemTraffic, ...]:
    return tuple(SystemTraffic(k, d.items_per_day, d.value_per_day_fen, d.sigma)
                 for k, d in DEFAULTS.items())


# ---------------------------------------------------------------------- the network


@dataclass(frozen=True, slots=True)
class Member:
    """A participant as the generator sees it: its kind and its open customers' indices
    in the banks' directory order."""

    name: str
    is_bank: bool
    customers: I64


class Network:
    """Who may send to whom, with which probability: participants weighted 1 / rank **
    zipf; a pair (sender, receiver) drawn with probability w_s * w_r, s != r (a symmetric
    law: each participant's expected inflow equals its expected outflow)."""

    def __init__(self, members: list[Member], zipf: float) -> None:
        assert members, "a network needs participants"
        self.members = members
        rank = np.arange(1, len(members) + 1, dtype=np.float64)
        self.weight: F64 = 1.0 / rank ** zipf
        self.offsets = np.array([0] + [len(m.customers) for m in members], np.int64).cumsum()
        self.customers: I64 = (np.concatenate([m.customers for m in members])
                               if self.offsets[-1] else np.zeros(0, np.int64))
        self._eligible: dict[TrafficSystem, F64] = {}
        self._aliases: dict[TrafficSystem, tuple[F64, I64]] = {}

    def eligible(self, system: TrafficSystem) -> F64:
        """Weights of the participants that may send and receive in ``system`` (non-bank
        payment institutions: IBPS only) and have a customer; zero for the others."""
        if system not in self._eligible:
            ok = np.array([len(m.customers) > 0
                           and (m.is_bank or system is TrafficSystem.IBPS)
                           for m in self.members], np.bool_)
            w = np.where(ok, self.weight, 0.0)
            self._eligible[system] = np.asarray(
                w / w.sum() if w.sum() > 0 and ok.sum() >= 2 else w * 0.0, np.float64)
        return self._eligible[system]

    def sender_share(self, system: TrafficSystem) -> F64:
        """Each participant's probability of being an item's sender (s != r redrawn)."""
        w = self.eligible(system)
        denom = 1.0 - float(np.sum(w * w))
        return np.asarray(w * (1.0 - w) / denom if denom > 0 else w, np.float64)

    def alias(self, system: TrafficSystem) -> tuple[F64, I64]:
        """Walker's alias table of the eligible weights (one uniform per draw, no search:
        the draw costs the same for 2,000 participants as for 9)."""
        if system not in self._aliases:
            self._aliases[system] = alias_table(self.eligible(system))
        return self._aliases[system]

    def draw(self, rng: np.random.Generator, n: int, system: TrafficSystem) -> I64:
        """n participants, each with probability its eligible weight."""
        accept, alias = self.alias(system)
        u = rng.random(n) * len(accept)
        k = u.astype(np.int64)
        return np.where(u - k < accept[k], k, alias[k])

    def pairs(self, rng: np.random.Generator, n: int, system: TrafficSystem
              ) -> tuple[I64, I64]:
        s = self.draw(rng, n, system)
        r = self.draw(rng, n, system)
        again = np.flatnonzero(s == r)
        for _ in range(1_000):  # equal pairs redrawn: exact; a few rounds in practice
            if not len(again):
                break
            s[again] = self.draw(rng, len(again), system)
            r[again] = self.draw(rng, len(again), system)
            again = again[s[again] == r[again]]
        assert not len(again), "could not draw distinct sender and receiver"
        return s, r

    def customer_of(self, rng: np.random.Generator, member: I64) -> I64:
        """A customer of each given participant, uniformly among its customers."""
        start = self.offsets[member]
        size = self.offsets[member + 1] - start
        pick = start + np.floor(rng.random(len(member)) * size).astype(np.int64)
        return np.asarray(self.customers[np.minimum(pick, self.offsets[member + 1] - 1)],
                          np.int64)


def alias_table(p: F64) -> tuple[F64, I64]:
    """Walker's alias method (Vose's construction): index k is kept with probability
    accept[k], else alias[k] is taken; a zero weight is never drawn."""
    n = len(p)
    scaled = np.asarray(p, np.float64) * n / max(float(p.sum()), 1e-300)
    accept = np.ones(n, np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [k for k in range(n) if scaled[k] < 1.0]
    large = [k for k in range(n) if scaled[k] >= 1.0]
    while small and large:
        lo, hi = small.pop(), large.pop()
        accept[lo], alias[lo] = scaled[lo], hi
        scaled[hi] -= 1.0 - scaled[lo]
        (small if scaled[hi] < 1.0 else large).append(hi)
    for k in small + large:  # rounding leftovers: kept (their weight is ~1)
        accept[k] = 1.0 if scaled[k] > 0 else 0.0
        if scaled[k] <= 0:
            alias[k] = int(np.argmax(p))
    return accept, alias


# ---------------------------------------------------------------------- amounts


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    """The mean of a lognormal(mu, sigma) restricted to [lo, hi] (hi may be inf)."""
    a = (math.log(lo) - mu) / sigma
    b = (math.log(hi) - mu) / sigma if math.isfinite(hi) else math.inf
    mass = _phi(b) - _phi(a)
    assert mass > 0, "the interval holds no probability"
    return math.exp(mu + sigma * sigma / 2) * (_phi(b - sigma) - _phi(a - sigma)) / mass


def calibrate_mu(mean: float, sigma: float, lo: float, hi: float) -> float:
    """The mu whose lognormal truncated to [lo, hi] has the given mean (bisection: the
    truncated mean grows with mu)."""
    if not lo < mean < hi:
        raise ValueError(f"a mean of {mean / 100:,.2f} CNY per item is not between "
                         f"{lo / 100:,.2f} and {hi / 100:,.2f}")
    left = math.log(lo) - 12 * sigma
    right = (math.log(hi) if math.isfinite(hi) else math.log(mean)) + 12 * sigma
    for _ in range(200):
        mid = (left + right) / 2
        if truncated_mean(mid, sigma, lo, hi) < mean:
            left = mid
        else:
            right = mid
    return (left + right) / 2


def _ndtri(p: F64) -> F64:
    """The standard normal's quantile function (Acklam's rational approximation, relative
    error below 1.2e-9; numpy has none and scipy is not a dependency)."""
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
         3.754408661907416e+00)
    p = np.clip(p, 1e-300, 1.0 - 1e-16)
    out = np.empty_like(p)
    low, high = p < 0.02425, p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
                (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1))
    for mask, sign, tail in ((low, 1.0, p[low]), (high, -1.0, 1.0 - p[high])):
        q = np.sqrt(-2.0 * np.log(tail))
        out[mask] = sign * ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q
                             + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1))
    return out


def draw_amounts(rng: np.random.Generator, n: int, mean_fen: float, sigma: float,
                 lo_fen: int, hi_fen: int | None) -> I64:
    """n lognormal amounts in [lo_fen, hi_fen], mean per item ``mean_fen``, by inverse
    transform (one uniform per item, no redraws), rounded to the fen."""
    hi = math.inf if hi_fen is None else float(hi_fen)
    return lognormal_amounts(rng, n, calibrate_mu(mean_fen, sigma, float(lo_fen), hi), sigma,
                      lo_fen, hi_fen)


def lognormal_amounts(rng: np.random.Generator, n: int, mu: float, sigma: float, lo_fen: int,
               hi_fen: int | None) -> I64:
    pa = _phi((math.log(lo_fen) - mu) / sigma)
    pb = 1.0 if hi_fen is None else _phi((math.log(float(hi_fen)) - mu) / sigma)
    u = pa + rng.random(n) * (pb - pa)
    x = np.exp(mu + sigma * _ndtri(u))
    top = np.iinfo(np.int64).max // 4 if hi_fen is None else hi_fen
    return np.clip(np.rint(x), lo_fen, top).astype(np.int64)


# ---------------------------------------------------------------------- arrivals


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


# ---------------------------------------------------------------------- a day


@dataclass(frozen=True, slots=True)
class DayTraffic:
    """One day's generated transfers, in time order (ties: HVPS, BEPS, IBPS, then draw)."""

    at_us: I64
    system: npt.NDArray[np.int8]
    payer: I64
    payee: I64
    amount_fen: I64

    def __len__(self) -> int:
        return len(self.at_us)

    @property
    def urgent(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.system == TrafficSystem.IBPS, np.bool_)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the banks route where (from the parameters): an item above the BEPS limit
    goes to HVPS, an urgent one at most the IBPS limit goes to IBPS."""

    beps_item_limit_fen: int
    ibps_item_limit_fen: int

    def bounds(self, system: TrafficSystem) -> tuple[int, int | None]:
        if system is TrafficSystem.HVPS:
            return self.beps_item_limit_fen + 1, None
        if system is TrafficSystem.BEPS:
            return 1, self.beps_item_limit_fen
        return 1, self.ibps_item_limit_fen


#: the generator's slot (minutes): a day's items of one system are spread over the day's
#: slots by the arrival profile (one multinomial draw per day and system), and each slot
#: is drawn from a stream of its own (seed, day, system, slot), so the traffic is the same
#: byte for byte however the simulator windows it. Every profile boundary is a multiple.
SLOT_MINUTES: Final = 5
SLOTS_PER_DAY: Final = 1_440 // SLOT_MINUTES


def _empty_day() -> DayTraffic:
    empty = np.zeros(0, np.int64)
    return DayTraffic(empty, np.zeros(0, np.int8), empty, empty, empty)


def _concat(parts: list[DayTraffic]) -> DayTraffic:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_day()
    if len(parts) == 1:
        return parts[0]
    return DayTraffic(*(np.concatenate([getattr(p, k) for p in parts])
                        for k in ("at_us", "system", "payer", "payee", "amount_fen")))


def slot_weights(profile: tuple[tuple[str, str, float], ...]) -> F64:
    """Each slot's share of a system's day (rate x overlap with each profile segment)."""
    weight = np.zeros(SLOTS_PER_DAY, np.float64)
    for a, b, rate in profile:
        lo, hi = _minutes(a), _minutes(b)
        assert lo % SLOT_MINUTES == 0 and hi % SLOT_MINUTES == 0, "profile off the slots"
        weight[lo // SLOT_MINUTES:hi // SLOT_MINUTES] += rate
    return np.asarray(weight / weight.sum(), np.float64)


@dataclass(frozen=True, slots=True)
class _Stream:
    """One stream of the day (a system's traffic, or BEPS's payroll credits): its items
    per slot, what its amounts need and the key of its random stream."""

    system: SystemTraffic
    counts: I64
    mu: float
    lo_fen: int
    hi_fen: int | None
    key: int


class DayGenerator:
    """Day ``day``'s transfers, generated slot by slot as they are asked for (memory: the
    slots not yet played, not the day). Each system's slot counts come from the stream
    (seed, day, system); each slot's transfers from the stream (seed, day, system) spawned
    with key (slot,) (numpy's SeedSequence): changing one system changes no other, and
    how the day is taken (window sizes) changes nothing."""

    def __init__(self, spec: TrafficSpec, network: Network, limits: Limits, seed: int,
                 day: int, midnight_us: int, hvps_open: bool,
                 payroll: Payroll | None = None) -> None:
        """``payroll``: BEPS payroll credits to add (a payroll day's; sim/sim_payroll.py)."""
        self.network, self.seed, self.day, self.midnight_us = network, seed, day, midnight_us
        self.streams: list[_Stream] = []
        self.payroll_items = 0
        for s in spec.systems:
            n = spec.items_per_day(s)
            if n <= 0 or (DEFAULTS[s.system].business_days_only and not hvps_open):
                continue
            if n > MAX_ITEMS_PER_DAY:
                raise ValueError(f"{s.system.name}: {n:,} transfers a day is more than "
                                 f"{MAX_ITEMS_PER_DAY:,}: lower the scale")
            if network.eligible(s.system).sum() == 0:
                continue
            self._add(s, n, DEFAULTS[s.system].profile, int(s.system), limits)
            if payroll is not None and s.system is TrafficSystem.BEPS:
                extra = payroll.items(n)
                if extra:
                    self.payroll_items = extra
                    self._add(SystemTraffic(s.system, extra, extra * payroll.mean_fen,
                                            payroll.sigma), extra, PAYROLL_PROFILE,
                              PAYROLL_STREAM, limits)
        self.next_slot = 0
        self.pending = _empty_day()
        self.prefetched: dict[int, Future[DayTraffic]] = {}

    def _add(self, s: SystemTraffic, n: int, profile: tuple[tuple[str, str, float], ...],
             key: int, limits: Limits) -> None:
        rng = np.random.default_rng(self._seq(key))
        counts = rng.multinomial(n, slot_weights(profile))
        lo, hi = limits.bounds(s.system)
        mu = calibrate_mu(s.mean_fen, s.sigma, float(lo), math.inf if hi is None else float(hi))
        self.streams.append(_Stream(s, np.asarray(counts, np.int64), mu, lo, hi, key))
        self.network.alias(s.system)  # built here, before a pool's thread draws

    def _seq(self, key: int, *slot: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, self.day, key], spawn_key=slot)

    @property
    def items(self) -> int:
        return int(sum(int(x.counts.sum()) for x in self.streams))

    def slot(self, k: int) -> DayTraffic:
        """Slot k's transfers, in time order (ties: HVPS, BEPS, IBPS, then draw)."""
        parts = []
        start_us = self.midnight_us + k * SLOT_MINUTES * US_PER_MINUTE
        for x in self.streams:
            n = int(x.counts[k])
            if not n:
                continue
            rng = np.random.default_rng(self._seq(x.key, k))
            at = start_us + np.sort(np.floor(rng.random(n) * (SLOT_MINUTES * US_PER_MINUTE))
                                    .astype(np.int64))
            sender, receiver = self.network.pairs(rng, n, x.system.system)
            payer = self.network.customer_of(rng, sender)
            payee = self.network.customer_of(rng, receiver)
            amount = lognormal_amounts(rng, n, x.mu, x.system.sigma, x.lo_fen, x.hi_fen)
            parts.append(DayTraffic(at, np.full(n, int(x.system.system), np.int8), payer,
                                    payee, amount))
        day = _concat(parts)
        if len(parts) < 2:
            return day
        order = np.argsort(day.at_us, kind="stable")  # by time, then system (their order)
        return DayTraffic(day.at_us[order], day.system[order], day.payer[order],
                          day.payee[order], day.amount_fen[order])

    def take_until(self, until_us: int, ahead_slots: int = 1,
                   pool: Executor | None = None) -> DayTraffic:
        """The transfers arriving before ``until_us`` not taken yet; slots are generated
        ``ahead_slots`` at a time (memory against calls; the transfers do not change).
        With a ``pool``, the next slots are drawn there while the caller plays these
        (numpy draws without the GIL; each slot its own stream: the same transfers)."""
        parts = [self.pending]
        while (self.next_slot < SLOTS_PER_DAY and self.midnight_us + self.next_slot
               * SLOT_MINUTES * US_PER_MINUTE < until_us):
            last = min(self.next_slot + max(ahead_slots, 1), SLOTS_PER_DAY)
            for k in range(self.next_slot, last):
                ready = self.prefetched.pop(k, None)
                parts.append(ready.result() if ready is not None else self.slot(k))
            self.next_slot = last
            if pool is not None:
                for k in range(last, min(last + max(ahead_slots, 1), SLOTS_PER_DAY)):
                    if k not in self.prefetched:
                        self.prefetched[k] = pool.submit(self.slot, k)
        day = _concat(parts)
        j = int(np.searchsorted(day.at_us, until_us, side="left"))
        self.pending = DayTraffic(*(getattr(day, k)[j:] for k in
                                    ("at_us", "system", "payer", "payee", "amount_fen")))
        return DayTraffic(*(getattr(day, k)[:j] for k in
                            ("at_us", "system", "payer", "payee", "amount_fen")))

    def close(self) -> None:
        """Drop the slots drawn ahead and not taken (waiting for those running)."""
        for ready in self.prefetched.values():
            if not ready.cancel():
                ready.result()
        self.prefetched.clear()


def generate_day(spec: TrafficSpec, network: Network, limits: Limits, seed: int, day: int,
                 midnight_us: int, hvps_open: bool) -> DayTraffic:
    """Day ``day``'s transfers, whole (midnight_us: its start, Beijing time): the same as
    a :class:`DayGenerator` taken in any windows."""
    gen = DayGenerator(spec, network, limits, seed, day, midnight_us, hvps_open)
    return gen.take_until(midnight_us + US_PER_DAY, SLOTS_PER_DAY)


def expected_outflow_fen(spec: TrafficSpec, network: Network) -> F64:
    """Each participant's expected daily outflow (value sent) over the systems of the
    block (card transactions: as issuer), in fen (a float: for sizing opening balances,
    never booked as is)."""
    out = np.zeros(len(network.members), np.float64)
    for s in spec.systems:
        out += network.sender_share(s.system) * s.value_per_day_fen * spec.scale
    if spec.cards is not None:  # the issuers pay (banks only: drawn as BEPS's pairs)
        out += network.sender_share(TrafficSystem.BEPS) * spec.cards.value_per_day_fen \
            * spec.scale
    return out
