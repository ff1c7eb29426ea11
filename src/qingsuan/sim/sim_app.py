"""The app's generated day (docs/SIMULATE.md, "App traffic"): seeded app activity played
through the wallets system and the engine, beside the CNAPS traffic of ``qingsuan
simulate``.

Three parts. :func:`with_app_world` adds the block's generated users (a debit account and
card each, some a credit card at another bank) and merchants (a POS terminal each) to the
scenario before the world is built. :class:`AppDay` draws a day of events from the
stream (seed, day, 5): QR payments both ways (the user scans the merchant's code, or the
merchant scans the user's one-time payment code), payments from the wallet's balance,
top-ups, withdrawals and credit-card repayments; the campaign's claims come once for the
whole run from the stream (seed, 6). :class:`AppPlayer` sends them as ``banks.event``
commands in group commits (``Engine.command_group``, as bench/bench_wallet.py does), one
group per minute of arrivals at the time of its last, and reads what the wallets system
decided from its records: nothing is re-modelled here.

The one thing a reader would get wrong: the player reads the state in two places, as a user
of the app would. A payment carries a voucher only when the app would offer it (the user
holds an unused voucher that applies: ``vouchers.applies``), and a repayment is a share of
what the card owes when it is sent (``credit.owed_fen``); nothing else depends on the
state, so the events are drawn from the seed alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa

from qingsuan.cards.iso8583 import luhn_ok
from qingsuan.clock import US_PER_MINUTE, US_PER_SECOND, format_time
from qingsuan.sim.scenario_model import Card, Customer, Merchant, Scenario, Terminal
from qingsuan.sim.sim_app_block import PPM, AppSpec
from qingsuan.sim.traffic import (
    I64,
    SLOT_MINUTES,
    calibrate_mu,
    lognormal_amounts,
    slot_weights,
)
from qingsuan.wallets import checks, credit, vouchers

if TYPE_CHECKING:
    from qingsuan.clock import VirtualClock
    from qingsuan.world import World

#: app events per hour (relative; uniform within a segment), an assumption: quiet small
#: hours, a morning commute, a lunch peak and a larger evening peak (dinner, shopping)
APP_PROFILE: Final = (
    ("00:00", "06:00", 0.1), ("06:00", "08:00", 0.5), ("08:00", "11:00", 1.0),
    ("11:00", "13:30", 1.8), ("13:30", "17:00", 1.0), ("17:00", "21:00", 2.0),
    ("21:00", "24:00", 0.7))
#: the stream keys of the app's events and of the campaign's claims (after HVPS 0, BEPS
#: 1, IBPS 2, cards 3, payroll 4)
APP_STREAM: Final = 5
CLAIM_STREAM: Final = 6
#: the generated world's draws (banks of users and merchants): the same whatever the seed
WORLD_STREAM: Final = 7
#: app events in one group commit at most (one log entry, one append)
GROUP: Final = 4_096
#: the events of one minute go as one group, at the time of the minute's last
GROUP_US: Final = 60 * US_PER_SECOND
#: participant weights 1 / rank^zipf for the generated users' and merchants' banks, when
#: the scenario has no traffic: block (with one: its zipf)
DEFAULT_ZIPF: Final = 1.1


class Kind(IntEnum):
    """What an app event is (the order of a tie at the same microsecond)."""

    CLAIM = 0          # claim_voucher
    QR_SCAN = 1        # qr_pay: the user scans the merchant's code
    QR_CODE = 2        # payment_code, then qr_pay: the merchant scans the user's code
    WALLET_PAY = 3     # wallet_pay: from the wallet's balance
    TOP_UP = 4         # wallet_top_up
    WITHDRAWAL = 5     # wallet_withdrawal
    REPAYMENT = 6      # card_repayment

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {Kind.CLAIM: "claim_voucher", Kind.QR_SCAN: "qr_pay_merchant_code",
                  Kind.QR_CODE: "qr_pay_payment_code", Kind.WALLET_PAY: "wallet_pay",
                  Kind.TOP_UP: "wallet_top_up", Kind.WITHDRAWAL: "wallet_withdrawal",
                  Kind.REPAYMENT: "card_repayment"}
_PAYMENTS: Final = (Kind.QR_SCAN, Kind.QR_CODE, Kind.WALLET_PAY)
#: what the user saw changed the event: a wallet payment the balance could not cover went
#: by card; a withdrawal from an empty wallet and a repayment of a card owing nothing were
#: not sent
_NOT_SENT: Final = ("card_repayment_nothing_owed", "wallet_pay_by_card",
                    "wallet_withdrawal_empty")


# ---------------------------------------------------------------------- the world


def _luhn(body: str) -> str:
    """``body`` with the check digit that makes it a valid card number."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def _banks_drawn(sc: Scenario, n: int, salt: int) -> list[str]:
    """``n`` banks drawn by the participants' weights (banks only)."""
    banks = [p.name for p in sc.participants if p.kind == "bank"]
    zipf = sc.traffic.zipf if sc.traffic is not None else DEFAULT_ZIPF
    weights = 1.0 / np.arange(1, len(banks) + 1, dtype=np.float64) ** zipf
    rng = np.random.default_rng(np.random.SeedSequence([WORLD_STREAM, salt]))
    return [banks[k] for k in rng.choice(len(banks), n, p=weights / weights.sum())]


def with_app_world(sc: Scenario) -> Scenario:
    """The scenario with the ``app:`` block's generated users (customer, debit card, for
    ``credit_holders`` of them a credit card at another bank) and merchants (customer and
    POS terminal), and the users in the ``wallets:`` block. Raises ValueError when a
    generated id, number or phone is taken by a listed one."""
    spec, wallets = sc.app, sc.wallets
    assert spec is not None and wallets is not None
    institution = spec.institution or next(iter(wallets.institutions))
    banks = [p.name for p in sc.participants if p.kind == "bank"]
    if not banks and (spec.users or spec.merchants):
        raise ValueError("app: generated users and merchants need a bank among the "
                         "participants (their accounts and cards are at banks)")
    customers, cards, terminals = list(sc.customers), list(sc.cards), list(sc.terminals)
    users = dict(wallets.users)
    credit_every = PPM / spec.credit_holders_ppm if spec.credit_holders_ppm else 0.0
    credit_k = 0  # a credit card for every (1 / share)-th user: exact, no draw
    for k, bank in enumerate(_banks_drawn(sc, spec.users, 0)):
        name = f"App user {k}"
        customers.append(Customer(f"app.u{k}", bank, f"70{k:010d}", spec.card_balance_fen,
                                  name, None, spec.line))
        cards.append(Card(_luhn(f"6230{k:011d}"), f"app.u{k}", "debit", None, spec.line))
        if credit_every and k + 1 >= (credit_k + 1) * credit_every:
            credit_k += 1
            issuer = banks[(banks.index(bank) + 1) % len(banks)]
            customers.append(Customer(f"app.c{k}", issuer, f"71{k:010d}", 0, name, None,
                                      spec.line, credit_limit_fen=spec.credit_limit_fen))
            cards.append(Card(_luhn(f"6259{k:011d}"), f"app.c{k}", "credit", None,
                              spec.line))
        users[f"170{k:08d}"] = (name, institution)
    for j, bank in enumerate(_banks_drawn(sc, spec.merchants, 1)):
        mcc = spec.merchant_mccs[j % len(spec.merchant_mccs)]
        customers.append(Customer(f"app.m{j}", bank, f"72{j:010d}", 0, f"App merchant {j}",
                                  Merchant(f"{j:015d}", mcc, spec.merchant_mdr_ppm),
                                  spec.line))
        terminals.append(Terminal(f"AP{j:06d}", "pos", bank, 0, f"app.m{j}", spec.line))
    _unique("customer id", [c.id for c in customers])
    _unique("account", [f"{c.bank}:{c.account}" for c in customers])
    _unique("card number", [c.pan for c in cards])
    _unique("terminal id", [t.id for t in terminals])
    if len(users) != len(wallets.users) + spec.users:
        raise ValueError("app: a generated user's phone (170 and 8 digits) is listed "
                         "under wallets: users already")
    new_terminals = {t.id for t in terminals[len(sc.terminals):]}
    return dataclasses.replace(
        sc, customers=tuple(customers), cards=tuple(cards), terminals=tuple(terminals),
        wallets=dataclasses.replace(wallets, users=users,
                                    pos_terminals=wallets.pos_terminals | new_terminals))


def _unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"app: generated {what} {v} is taken by a listed one")
        seen.add(v)


@dataclass(frozen=True, slots=True)
class AppPlan:
    """Who the app's events are about: the users (phones, in the wallets' order), each
    user's cards (those of open accounts in the user's name, in the cards' order: what
    the user binds), and the merchants' POS terminals with their merchants."""

    phones: list[str]
    names: list[str]
    #: per user: (pan, kind) of the cards the user binds
    cards: list[list[tuple[str, str]]]
    terminals: list[str]
    merchant_of: dict[str, str]

    @classmethod
    def of(cls, sc: Scenario) -> AppPlan:
        assert sc.wallets is not None
        customers = {c.id: c for c in sc.customers}
        by_name: dict[str, list[tuple[str, str]]] = {}
        for card in sc.cards:
            owner = customers[card.account]
            if not owner.closed:
                by_name.setdefault(owner.name, []).append((card.pan, card.kind))
        phones = list(sc.wallets.users)
        names = [sc.wallets.users[p][0] for p in phones]
        pos = [t for t in sc.terminals if t.kind == "pos" and t.merchant is not None]
        return cls(phones, names, [by_name.get(n, []) for n in names],
                   [t.id for t in pos], {t.id: str(t.merchant) for t in pos})

    def with_cards(self, kinds: tuple[str, ...]) -> I64:
        """The users holding a card of each of ``kinds`` (``()``: any card)."""
        return np.array([u for u, cards in enumerate(self.cards)
                         if cards and all(any(k == kind for _, k in cards) for kind in kinds)],
                        np.int64)


# ---------------------------------------------------------------------- a day's events


@dataclass(frozen=True, slots=True)
class AppEvents:
    """App events as columns, in time order: the user (index in the plan), the card
    (index in the user's cards), ``other`` (the terminal's index for a payment, the paying
    debit card's for a repayment), the amount (for a repayment: 0, decided when sent) and
    whether the user would use a voucher."""

    at_us: I64
    kind: I64
    user: I64
    card: I64
    other: I64
    amount_fen: I64
    voucher: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.at_us)

    def take(self, idx: I64) -> AppEvents:
        return AppEvents(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    @staticmethod
    def concat(parts: list[AppEvents]) -> AppEvents:
        """The parts merged in time order (ties: by kind, then as given)."""
        cols = [np.concatenate([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(AppEvents)]
        merged = AppEvents(*cols)
        return merged.take(np.lexsort((merged.kind, merged.at_us)))


def _arrivals(rng: np.random.Generator, n: int, midnight_us: int) -> I64:
    """``n`` arrival times over the day by :data:`APP_PROFILE` (the slots' counts from
    one multinomial draw, uniform within a slot)."""
    counts = rng.multinomial(n, slot_weights(APP_PROFILE))
    slot_us = SLOT_MINUTES * US_PER_MINUTE
    starts = np.repeat(np.arange(len(counts), dtype=np.int64) * slot_us, counts)
    return midnight_us + starts + np.floor(rng.random(n) * slot_us).astype(np.int64)


def _count(rate_ppm: int, users: int) -> int:
    return (rate_ppm * users + PPM // 2) // PPM


def _pick(rng: np.random.Generator, plan: AppPlan, users: I64, kind: str | None) -> I64:
    """For each user, the index of one of its cards (of ``kind``, or any), uniformly."""
    out = np.empty(len(users), np.int64)
    draws = rng.random(len(users))
    for k, (u, x) in enumerate(zip(users.tolist(), draws.tolist(), strict=True)):
        choice = [i for i, (_, ck) in enumerate(plan.cards[u]) if kind is None or ck == kind]
        out[k] = choice[min(int(x * len(choice)), len(choice) - 1)]
    return out


def app_day(spec: AppSpec, plan: AppPlan, seed: int, day: int, midnight_us: int
            ) -> AppEvents:
    """Day ``day``'s events (claims apart), from the stream (seed, day, 5), each kind from
    a stream of its own (spawn key: the kind): changing one rate does not change the
    other kinds' events."""
    parts: list[AppEvents] = []
    entropy = [seed, day, APP_STREAM]
    holders = {None: plan.with_cards(()), "debit": plan.with_cards(("debit",)),
               "repay": plan.with_cards(("debit", "credit"))}
    for kind, rate, who, mean, sigma in (
            (Kind.QR_SCAN, spec.payments_ppm, None, spec.payment_mean_fen,
             spec.payment_sigma_ppm),
            (Kind.TOP_UP, spec.top_ups_ppm, "debit", spec.top_up_mean_fen,
             spec.top_up_sigma_ppm),
            (Kind.WITHDRAWAL, spec.withdrawals_ppm, "debit", spec.withdrawal_mean_fen,
             spec.withdrawal_sigma_ppm),
            (Kind.REPAYMENT, spec.repayments_ppm, "repay", 0, 0)):
        eligible = holders[who]
        n = _count(rate, len(eligible))
        if not n or not len(eligible):
            continue
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(int(kind),)))
        at = _arrivals(rng, n, midnight_us)
        users = eligible[rng.integers(0, len(eligible), n)]
        kinds = np.full(n, int(kind), np.int64)
        other = np.zeros(n, np.int64)
        voucher = np.zeros(n, np.bool_)
        amount = np.zeros(n, np.int64)
        if mean:
            s = sigma / PPM
            amount = lognormal_amounts(rng, n, calibrate_mu(mean, s, 1.0, math.inf), s, 1,
                                       None)
        if kind is Kind.QR_SCAN:
            card = _pick(rng, plan, users, None)
            other = rng.integers(0, len(plan.terminals), n)
            way = rng.random(n) * PPM
            kinds[way < spec.payment_codes_ppm] = Kind.QR_CODE
            wallet = (way >= spec.payment_codes_ppm) & (
                way < spec.payment_codes_ppm + spec.wallet_payments_ppm)
            kinds[wallet] = Kind.WALLET_PAY
            voucher = (rng.random(n) * PPM < spec.voucher_use_ppm) & ~wallet
        elif kind is Kind.REPAYMENT:
            card = _pick(rng, plan, users, "credit")
            other = _pick(rng, plan, users, "debit")
        else:
            card = _pick(rng, plan, users, "debit")
        parts.append(AppEvents(at, kinds, users, card, other, amount, voucher))
    if not parts:
        return _empty()
    return AppEvents.concat(parts)


def _empty() -> AppEvents:
    z = np.zeros(0, np.int64)
    return AppEvents(z, z, z, z, z, z, np.zeros(0, np.bool_))


def claims(spec: AppSpec, plan: AppPlan, campaign: Any, seed: int) -> AppEvents:
    """The campaign's claims for the whole run, from the stream (seed, 6): ``claimers``
    of the users (those with a card), each claiming once, at the claim window's opening
    plus an exponential delay of mean ``claim_minutes``, cut at the window's end (the
    inverse transform of the truncated exponential)."""
    users = plan.with_cards(())
    n = _count(spec.claimers_ppm, len(users))
    if campaign is None or not n:
        return _empty()
    rng = np.random.default_rng(np.random.SeedSequence([seed, CLAIM_STREAM]))
    who = np.sort(rng.permutation(users)[:n])
    mean_us = spec.claim_minutes * US_PER_MINUTE
    width_us = campaign.claim_until_us - campaign.claim_from_us
    u = rng.random(n)
    delay = -mean_us * np.log1p(-u * -np.expm1(-width_us / mean_us))
    at = campaign.claim_from_us + np.minimum(np.floor(delay).astype(np.int64), width_us)
    z = np.zeros(n, np.int64)
    return AppEvents(at, np.full(n, int(Kind.CLAIM), np.int64), who, z, z, z,
                     np.zeros(n, np.bool_)).take(np.argsort(at, kind="stable"))


# ---------------------------------------------------------------------- play


@dataclass(slots=True)
class _Sent:
    """One event sent: its id (the record to read), kind, arrival and amount."""

    id: str
    kind: Kind
    at_us: int
    amount_fen: int


class AppPlayer:
    """Sends the app's events to the world as they arrive and reads back what happened."""

    def __init__(self, world: World, clock: VirtualClock, sc: Scenario, seed: int,
                 first_us: int, end_us: int) -> None:
        spec = sc.app
        assert spec is not None and world.wallets is not None
        self.world, self.clock, self.spec, self.seed = world, clock, spec, seed
        self.wallets = world.wallets
        self.plan = AppPlan.of(sc)
        vault = world.card_vault()
        self.fields = [[vault.card_fields(pan) for pan, _ in cards]
                       for cards in self.plan.cards]
        self.campaign = (self.wallets.campaigns[spec.campaign]
                         if spec.campaign is not None else None)
        self.start_us = sc.start_us
        all_claims = claims(spec, self.plan, self.campaign, seed)
        keep = (all_claims.at_us >= max(first_us, sc.start_us)) & (all_claims.at_us < end_us)
        self.claims = all_claims.take(np.flatnonzero(keep))
        self.pending = _empty()
        self.day = 0
        self.numbered = 0  # the next event's number in the day (its id)
        self.sent: list[_Sent] = []
        self.binds: list[str] = []
        #: events not sent, or sent otherwise, because of what the user saw in the app
        self.skipped: Counter[str] = Counter()

    # -------------------------------------------------------------- sending

    def bind_cards(self) -> None:
        """Every user binds the cards in its name (绑卡), as one group, now."""
        bodies = []
        for u, phone in enumerate(self.plan.phones):
            for i, card in enumerate(self.fields[u]):
                eid = f"app.bind.{u}.{i}"
                self.binds.append(eid)
                bodies.append(_body("bind_card", {"id": eid, "user": phone,
                                                  "name": self.plan.names[u], **card}))
        self._send(bodies)

    def start_day(self, day: int, midnight_us: int) -> None:
        """The day's events (and the claims arriving that day) wait to be played."""
        self.day = day
        events = app_day(self.spec, self.plan, self.seed, day, midnight_us)
        end = midnight_us + 24 * 60 * US_PER_MINUTE
        today = (self.claims.at_us >= midnight_us) & (self.claims.at_us < end)
        merged = AppEvents.concat([self.pending, events,
                                   self.claims.take(np.flatnonzero(today))])
        self.pending = merged.take(np.flatnonzero(merged.at_us >= self.start_us))
        self.numbered = 0  # the next event's number in the day (its id)

    def play_until(self, until_us: int) -> None:
        """Send the events arriving before ``until_us``: one group per minute of
        arrivals, at the time of that minute's last event (never before the clock)."""
        n = int(np.searchsorted(self.pending.at_us, until_us, side="left"))
        if not n:
            return
        now = self.pending.take(np.arange(n))
        self.pending = self.pending.take(np.arange(n, len(self.pending)))
        minute = now.at_us // GROUP_US
        cuts = np.flatnonzero(np.diff(minute)) + 1
        for idx in np.split(np.arange(n), cuts):
            group = now.take(idx)
            self.clock.advance_to(max(int(group.at_us[-1]), self.clock.now_us()))
            self._send(self._bodies(group, self.clock.now_us()))

    def _send(self, bodies: list[bytes]) -> None:
        engine = self.world.engine
        for k in range(0, len(bodies), GROUP):
            engine.command_group("banks.event", bodies[k:k + GROUP])

    def _bodies(self, g: AppEvents, at_us: int) -> list[bytes]:
        bodies: list[bytes] = []
        w, plan, spec = self.wallets, self.plan, self.spec
        vouchered: set[int] = set()  # users given a voucher in this group (one each)
        repaying: Counter[str] = Counter()  # repaid in this group, per credit card
        spending: Counter[int] = Counter()  # taken from each user's wallet in this group
        cols = zip(g.at_us.tolist(), g.kind.tolist(), g.user.tolist(), g.card.tolist(),
                   g.other.tolist(), g.amount_fen.tolist(), g.voucher.tolist(), strict=True)
        for at, kind_n, u, c, other, amount, wants in cols:
            kind = Kind(kind_n)
            eid = f"app.{self.day}.{self.numbered}"
            self.numbered += 1
            phone, card = plan.phones[u], self.fields[u][c]
            if kind in (Kind.WALLET_PAY, Kind.WITHDRAWAL):
                # the user sees the wallet's balance: a payment it cannot cover goes by
                # card, a withdrawal takes at most what is there
                user = w.users[phone]
                room = w.balance_fen(user.institution, user.wallet) - spending[u]
                if kind is Kind.WALLET_PAY and room < amount:
                    kind = Kind.QR_SCAN
                    self.skipped["wallet_pay_by_card"] += 1
                elif kind is Kind.WITHDRAWAL:
                    amount = min(amount, room)
                    if amount <= 0:
                        self.skipped["wallet_withdrawal_empty"] += 1
                        continue
                spending[u] += amount if kind is not Kind.QR_SCAN else 0
            if kind is Kind.CLAIM:
                assert self.campaign is not None
                eid = f"app.claim.{u}"
                bodies.append(_body("claim_voucher", {"id": eid, "user": phone,
                                                     "campaign": self.campaign.id}))
            elif kind in _PAYMENTS:
                terminal = plan.terminals[other]
                if kind is Kind.WALLET_PAY:
                    fields = {"id": eid, "user": phone, "terminal": terminal,
                              "amount_fen": amount}
                    bodies.append(_body("wallet_pay", fields))
                else:
                    fields = {"id": eid, "terminal": terminal, "amount_fen": amount}
                    if kind is Kind.QR_CODE:
                        bodies.append(_body("payment_code", {"id": f"{eid}.code",
                                                             "user": phone, **card}))
                        fields["code"] = f"{eid}.code"
                    else:
                        fields.update(user=phone, pin_hash=None, **card)
                    if (wants and self.campaign is not None and u not in vouchered
                            and vouchers.applies(w, self.campaign.id, phone,
                                                 plan.merchant_of[terminal], amount, at_us)):
                        vouchered.add(u)
                        fields["voucher"] = self.campaign.id
                    bodies.append(_body("qr_pay", fields))
            elif kind is Kind.REPAYMENT:
                owed = credit.owed_fen(w, card["card"]) - repaying[card["card"]]
                amount = min(owed, -(-owed * spec.repayment_share_ppm // PPM))
                if amount <= 0:
                    self.skipped["card_repayment_nothing_owed"] += 1
                    continue
                repaying[card["card"]] += amount
                paying = self.fields[u][other]
                bodies.append(_body("card_repayment", {
                    "id": eid, "user": phone, "amount_fen": amount, "card": card["card"],
                    "pan_masked": card["pan_masked"], "from_card": paying["card"],
                    "from_pan_masked": paying["pan_masked"]}))
            else:
                do = "wallet_top_up" if kind is Kind.TOP_UP else "wallet_withdrawal"
                bodies.append(_body(do, {"id": eid, "user": phone, "amount_fen": amount,
                                         **card}))
            self.sent.append(_Sent(eid, kind, at, amount))
        return bodies

    # -------------------------------------------------------------- what happened

    def _outcome(self, eid: str) -> tuple[str, str]:
        """(status, reason code: the issuer's response code for a declined payment, the
        app's or IBPS's code otherwise; empty when done or pending)."""
        rec = self.wallets.records[eid]
        reason = rec.get("reason")
        return str(rec["status"]), str(reason["code"]) if reason else ""

    def summary(self) -> dict[str, Any]:
        """The ``app`` section of summary.json (amounts in fen)."""
        w = self.wallets
        events: dict[str, dict[str, Any]] = {}
        declines: Counter[str] = Counter()
        pay = {"items": 0, "value_fen": 0, "approved_items": 0, "approved_value_fen": 0}
        for s in self.sent:
            status, reason = self._outcome(s.id)
            e = events.setdefault(s.kind.label, {"items": 0, "value_fen": 0,
                                                 "done_items": 0, "done_value_fen": 0,
                                                 "outcomes": Counter()})
            e["items"] += 1
            e["value_fen"] += s.amount_fen
            e["outcomes"][f"{status}:{reason}" if reason else status] += 1
            if status == "done":
                e["done_items"] += 1
                e["done_value_fen"] += s.amount_fen
            if s.kind in _PAYMENTS:
                pay["items"] += 1
                pay["value_fen"] += s.amount_fen
                if status == "done":
                    pay["approved_items"] += 1
                    pay["approved_value_fen"] += s.amount_fen
                elif reason:
                    declines[reason] += 1
        for e in events.values():
            e["outcomes"] = dict(sorted(e["outcomes"].items()))
        bound = [self._outcome(b) for b in self.binds]
        out: dict[str, Any] = {
            "parameters": self.spec.parameters(),
            "users": len(self.plan.phones), "merchants": len(self.plan.terminals),
            "cards_bound": sum(1 for status, _ in bound if status == "done"),
            "bind_refused": dict(sorted(Counter(r for status, r in bound
                                                if status != "done").items())),
            "events": dict(sorted(events.items())),
            "payments": {**pay, "declines": dict(sorted(declines.items()))},
            "not_sent": {k: self.skipped[k] for k in _NOT_SENT},
            "institutions": {name: {"reserve_fen": checks.reserve_fen(w, name),
                                    "customer_funds_fen": checks.customer_funds_fen(w, name)}
                             for name in sorted(w.institutions)},
        }
        if self.campaign is not None:
            out["campaign"] = self._campaign_report()
        return out

    def _campaign_report(self) -> dict[str, Any]:
        c = self.campaign
        assert c is not None
        claimed = [self._outcome(s.id) for s in self.sent if s.kind is Kind.CLAIM]
        value = c.used * c.discount_fen
        fund = self.wallets.balance_fen(c.sponsor_bank, c.fund)
        return {
            "id": c.id, "sponsor": c.sponsor, "budget_fen": c.budget_fen,
            "discount_fen": c.discount_fen, "threshold_fen": c.threshold_fen,
            "claims": len(claimed),
            "claim_refused": dict(sorted(Counter(r for status, r in claimed
                                                 if status != "done").items())),
            "claimed": c.claimed, "used": c.used, "voucher_value_fen": value,
            "spend_driven_fen": c.spend_fen, "discounts_paid_fen": c.paid_fen,
            "committed_fen": c.committed_fen(),
            "budget_left_fen": c.budget_fen - c.committed_fen(),
            "fund_left_fen": fund,
            # closed the second its validity window ended (wallets/wake.py): what was left
            # of the fund went back to the sponsor
            "closed": c.closed, "returned_fen": c.returned_fen,
            # spend driven per yuan of the vouchers used (the article's 5 亿 -> 10.5 亿)
            "leverage": round(c.spend_fen / value, 4) if value else None,
        }

    def checks(self) -> dict[str, bool]:
        """The reserve covers the wallets; the campaign never spent beyond its budget
        (committed, paid and the fund's balance)."""
        out = {"reserve_covers_wallets": checks.reserve_covers_wallets(self.wallets)}
        c = self.campaign
        if c is not None:
            fund = self.wallets.balance_fen(c.sponsor_bank, c.fund)
            out["campaign_within_budget"] = (
                c.paid_fen <= c.committed_fen() <= c.budget_fen and fund >= 0
                and c.paid_fen + fund <= c.budget_fen)
        return out

    def table(self, first_us: int, bucket_us: int) -> pa.Table:
        """``app.parquet``: one row per bucket (of arrival), event kind, status and
        reason that occurred: items and value."""
        rows: Counter[tuple[str, str, str, str]] = Counter()
        value: Counter[tuple[str, str, str, str]] = Counter()
        for s in self.sent:
            status, reason = self._outcome(s.id)
            bucket = format_time(first_us + (s.at_us - first_us) // bucket_us * bucket_us)
            key = (bucket, s.kind.label, status, reason)
            rows[key] += 1
            value[key] += s.amount_fen
        keys = sorted(rows)
        return pa.table({
            "bucket_start": pa.array([k[0] for k in keys], pa.string()),
            "kind": pa.array([k[1] for k in keys], pa.string()),
            "status": pa.array([k[2] for k in keys], pa.string()),
            "reason": pa.array([k[3] for k in keys], pa.string()),
            "items": pa.array([rows[k] for k in keys], pa.int64()),
            "value_fen": pa.array([value[k] for k in keys], pa.int64())})


def _body(do: str, fields: dict[str, Any]) -> bytes:
    """A ``banks.event`` command's body, as ``World.submit`` writes one (orjson)."""
    return orjson.dumps({"do": do, "order": -1, "fields": fields},
                        option=orjson.OPT_SORT_KEYS)
