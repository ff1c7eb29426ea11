"""HVPS 大额实时支付系统: real-time gross settlement with queues, automatic pledge financing,
gridlock resolution and the day cycle.

Rules (DOMAIN.md §3; every number a parameter):

* A payment settles at once, debiting the sender's and crediting the receiver's settlement
  accounts (清算账户) in the PBOC's book and their mirrors in their own books, when the
  sender's available liquidity (balance plus unused pledge financing) covers it and nothing
  of the same or a more urgent level waits before it. Otherwise it **queues** (排队).
* Six priority levels; FIFO within a level (bypass-FIFO is a parameter). The sender may
  cancel (撤销) a queued payment, never a settled one, and move it between levels.
* Every credit retries the receiver's own queue at once: an incoming payment, a net
  settlement session (BEPS, IBPS, the card switch), a pledge.
* Automatic pledge financing (自动质押融资): when short, credit is drawn up to the lendable
  value of the pledged collateral, and repaid from incoming funds; what is unpaid at the end
  of the day becomes overnight credit with interest.
* Gridlock resolution (LSM): when a payment queues and every ``hvps.lsm_interval_minutes``,
  and in the clearing window, queued payments that can settle together are settled together.
* Day cycle (HvpsSchedule): open from 20:30 the evening before to 17:15; the clearing window
  to 17:30 (only funding, cancelling and reordering, and settlement of what that frees, by
  level, then amount, then time); then everything still queued is returned item by item.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from qingsuan.calendar import HvpsPhase, HvpsSchedule, OperatingWindows, load_calendar
from qingsuan.clock import (
    US_PER_DAY,
    US_PER_MINUTE,
    beijing_day,
    from_datetime,
    to_beijing_naive,
)
from qingsuan.cnaps.participants import Directory, Participant
from qingsuan.ledger import AccountFlags, NormalSide
from qingsuan.money import format_fen
from qingsuan.params import PPM
from qingsuan.reasons import Reason
from qingsuan.statejson import shallow
from qingsuan.vocabulary import Priority

if TYPE_CHECKING:
    from qingsuan.engine import Engine

PBOC: Final = "PBOC"
_NEVER_US: Final = 1 << 62
MNO: Final = AccountFlags.MUST_NOT_OVERDRAW
#: Upper bound on payments waiting in all queues at once.
MAX_QUEUED: Final = 5_000_000


LEVELS: Final = len(Priority)


class HvpsStatus(Enum):
    QUEUED = "queued"
    SETTLED = "settled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RETURNED = "returned"


#: the members every payment compares with, as module globals (imported by name): 3.11's
#: EnumType defines __getattr__, so each ``HvpsPhase.OPEN`` read is a slow generic look-up
#: (some 900 instructions)
PHASE_OPEN: Final = HvpsPhase.OPEN
PHASE_CLEARING_WINDOW: Final = HvpsPhase.CLEARING_WINDOW
PAY_QUEUED: Final = HvpsStatus.QUEUED
PAY_SETTLED: Final = HvpsStatus.SETTLED


@dataclass(slots=True)
class HvpsPayment:
    """One hvps.111 (customer, pacs.008) or hvps.112 (institution, pacs.009) payment.
    (Slots: one is made per payment, without an instance dict, which the collector would
    read too.)"""

    ref: str
    sender: str
    receiver: str
    amount_fen: int
    priority: int
    kind: str
    arrival: int
    submitted_us: int
    status: HvpsStatus
    settled_us: int | None = None
    queued_us: int | None = None
    settled_by: str | None = None  # gross, released, bilateral, multilateral, window
    reason: tuple[str, str] | None = None
    #: Opaque to HVPS: the banks' references (payer, payee) carried along.
    debtor: str | None = None
    creditor: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = shallow(self)
        doc["status"] = self.status.value
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> HvpsPayment:
        doc = dict(doc)
        doc["status"] = HvpsStatus(doc["status"])
        if doc["reason"] is not None:
            doc["reason"] = tuple(doc["reason"])
        return cls(**doc)


@dataclass(slots=True)
class Notice:
    """What a participant is told: queued, released, settled, cancelled, returned, ...
    Never changed once made (not frozen: a frozen dataclass's __init__ sets each field
    through object.__setattr__, four times the cost, and a payment makes two or more)."""

    at_us: int
    participant: str
    ref: str
    event: str
    detail: str = ""


@dataclass
class CreditLine:
    """Automatic pledge financing (自动质押融资) of one participant."""

    pledged_value_fen: int = 0
    lendable_fen: int = 0
    intraday_fen: int = 0
    overnight_fen: int = 0
    peak_drawn_fen: int = 0
    interest_fen: int = 0

    @property
    def drawn_fen(self) -> int:
        return self.intraday_fen + self.overnight_fen

    @property
    def unused_fen(self) -> int:
        # (drawn_fen's sum, not its property: read for every payment)
        return max(0, self.lendable_fen - self.intraday_fen - self.overnight_fen)


@dataclass
class Metrics:
    """Per participant: what the simulator's reports need (issue 3 §10)."""

    settled_value_fen: int = 0
    settled_count: int = 0
    received_value_fen: int = 0
    queued_count: int = 0
    #: sum of amount x time in queue (value-weighted queue time = this / queued value)
    queue_time_value_us: int = 0
    queued_value_fen: int = 0
    #: running net flow (in - out) and its low point: peak liquidity used = -min_net
    net_flow_fen: int = 0
    min_net_flow_fen: int = 0
    gridlock_value_fen: int = 0
    returned_count: int = 0
    cancelled_count: int = 0

    @property
    def peak_liquidity_used_fen(self) -> int:
        return -self.min_net_flow_fen


@dataclass
class Outcome:
    """What a submission, cancel or reprioritise answers."""

    ok: bool
    status: str
    reason: tuple[str, str] | None = None


class Hvps:
    """The HVPS state machine. Lives inside the engine; every change comes from a logged
    command, so replaying the log rebuilds it."""

    def __init__(self, engine: Engine, directory: Directory) -> None:
        self.engine = engine
        self.directory = directory
        self.payments: dict[str, HvpsPayment] = {}
        #: per settling participant: one list of refs per level, each in arrival order
        self.queues: dict[str, list[list[str]]] = {}
        self.credit: dict[str, CreditLine] = {}
        self.metrics: dict[str, Metrics] = {}
        self.notices: list[Notice] = []
        #: (time, payments queued, value queued) after every change of the queues
        self.queue_length: list[tuple[int, int, int]] = []
        self.statements: dict[str, list[dict[str, Any]]] = {}
        self.arrivals = 0
        self.queued_total = 0
        self.queued_value_fen = 0
        self.cutoffs_done: set[str] = set()
        self.days_closed: set[str] = set()
        #: business days the operator closed before their time (end_of_day_now): day ->
        #: the moment; HVPS stays closed for the rest of that business day
        self.closed_early: dict[str, int] = {}
        self.cursor_date: str | None = None
        self.last_lsm_us = 0
        self._schedule_key: tuple[Any, ...] | None = None
        self._schedule: HvpsSchedule | None = None
        #: phase's answer, for (the parameters object, its version, a span of time)
        self._phase_cache: tuple[Any, int, int, int, tuple[HvpsPhase, dt.date | None]] = (
            None, -1, 0, 0, (HvpsPhase.CLOSED, None))
        #: the parameters object and version the schedule was last checked against
        self._schedule_params: object = None
        self._schedule_version = -1
        #: advance's walk of the day cycle, skipped while it could do nothing: (Beijing day
        #: number, parameters object, version, the first cut-off or close not yet run)
        self._walk_cache: tuple[int, object, int, int] = (-1, None, -1, 0)
        #: per direct participant, the ids of the accounts a gross settlement moves
        #: (_gross_ids): looked up once, not six times per payment
        self._gross: dict[str, tuple[int, int, int, int]] = {}

    # ------------------------------------------------------------------ accounts

    def _acc(self, book: str, name: str) -> int:
        return self.engine.registry.id(book, name)

    def _gross_ids(self, participant: str) -> tuple[int, int, int, int]:
        """The ids of a direct participant's settlement account in the PBOC's book, its
        mirror (reserve_at_pboc), hvps_outgoing and hvps_incoming (accounts are never
        removed nor renumbered: kept once found)."""
        ids = self._gross.get(participant)
        if ids is None:
            ids = self._gross[participant] = (
                self._acc(PBOC, f"settlement:{participant}"),
                self._acc(participant, "reserve_at_pboc"),
                self._acc(participant, "hvps_outgoing"),
                self._acc(participant, "hvps_incoming"))
        return ids

    def _balance(self, participant: str) -> int:
        return self.engine.ledger.posted_fen(self._gross_ids(participant)[0])

    def _free(self, participant: str) -> int:
        """The balance less funds earmarked (圈存) for BEPS/IBPS: what HVPS may use."""
        return self.engine.ledger.available_fen(self._gross_ids(participant)[0])

    def available_fen(self, participant: str) -> int:
        """Free balance plus unused pledge financing: what the participant can pay now."""
        return self._available(participant, self._free(participant))

    def _available(self, participant: str, free_fen: int) -> int:
        """What the participant can pay now, its free balance ``free_fen`` read already."""
        return free_fen + self.credit[participant].unused_fen

    def join(self, p: Participant) -> None:
        """Add a participant; a direct one gets its settlement account, its mirror, its
        credit accounts and its HVPS transit accounts."""
        from qingsuan.engine import AccountSpec

        self.directory.add(p)
        settling = self.directory.settling(p.name)
        if settling != p.name:
            return  # an indirect participant uses its direct participant's accounts
        if not self.engine.registry.has(f"{PBOC}:issued"):
            self.engine.open_derived([
                AccountSpec(PBOC, "issued", NormalSide.DEBIT),
                AccountSpec(PBOC, "lsm_clearing", NormalSide.DEBIT),
                AccountSpec(PBOC, "interest_income", NormalSide.CREDIT),
            ])
        name = p.name
        self.engine.open_derived([
            AccountSpec(PBOC, f"settlement:{name}", NormalSide.CREDIT, MNO),
            AccountSpec(PBOC, f"intraday_credit:{name}", NormalSide.DEBIT),
            AccountSpec(PBOC, f"overnight_credit:{name}", NormalSide.DEBIT),
            AccountSpec(PBOC, f"interest_receivable:{name}", NormalSide.DEBIT),
            AccountSpec(name, "reserve_at_pboc", NormalSide.DEBIT, MNO),
            AccountSpec(name, "pboc_credit", NormalSide.CREDIT),
            AccountSpec(name, "interest_payable", NormalSide.CREDIT),
            AccountSpec(name, "interest_expense", NormalSide.DEBIT),
            AccountSpec(name, "hvps_outgoing", NormalSide.DEBIT),
            AccountSpec(name, "hvps_incoming", NormalSide.CREDIT),
        ])
        self.queues[name] = [[] for _ in range(LEVELS)]
        self.credit[name] = CreditLine()
        self.metrics[name] = Metrics()

    # ------------------------------------------------------------------ the day cycle

    def schedule(self) -> HvpsSchedule:
        params = self.engine.params
        # asked several times per payment: the parameters did not change since
        if params is self._schedule_params and params.version == self._schedule_version:
            assert self._schedule is not None
            return self._schedule
        self._schedule_params, self._schedule_version = params, params.version
        key = (params["calendar.name"], params["calendar.missing_year"], params["hvps.open"],
               params["hvps.cutoff"], params["hvps.clearing_end"])
        if self._schedule is None or key != self._schedule_key:
            calendar = load_calendar(str(params["calendar.name"]),
                                     missing_year=str(params["calendar.missing_year"]))
            windows = OperatingWindows.from_params(params.written())
            self._schedule = HvpsSchedule(calendar, windows)
            self._schedule_key = key
        return self._schedule

    def phase(self, at_us: int) -> tuple[HvpsPhase, dt.date | None]:
        # Asked several times per command: the answer holds over a span of the day
        # (HvpsSchedule.phase_holds_until), for as long as the parameters (the timetable,
        # hvps.closed) are the same: looked at first
        params = self.engine.params
        held_params, held_version, start_us, end_us, answer = self._phase_cache
        if held_params is params and held_version == params.version and \
                start_us <= at_us < end_us:
            return answer
        if params["hvps.closed"]:
            return HvpsPhase.CLOSED, None
        sched = self.schedule()
        moment = to_beijing_naive(at_us)
        state = sched.phase(moment)
        answer = (state.phase, state.business_date)
        until_us = from_datetime(sched.phase_holds_until(moment))
        early_us = self.closed_early.get(state.business_date.isoformat()) \
            if self.closed_early and state.business_date is not None else None
        if early_us is not None:
            if at_us >= early_us:
                return HvpsPhase.CLOSED, None  # the operator closed the day (not cached)
            until_us = min(until_us, early_us)
        self._phase_cache = (params, params.version, at_us, until_us, answer)
        return answer

    def advance(self, now_us: int) -> None:
        """Run the day-cycle steps whose time has come: the cut-off's clearing-window
        settlement, and the end of day. Called before every HVPS command and on ticks."""
        params = self.engine.params
        day_number = beijing_day(now_us)
        walked_day, walked_params, walked_version, next_step_us = self._walk_cache
        if not (day_number == walked_day and now_us < next_step_us and
                params is walked_params and params.version == walked_version):
            self._walk(now_us)
            self._walk_cache = (day_number, params, params.version, self._next_step_us(now_us))
        if not self.queued_total:
            return  # (nothing queued: no gridlock to resolve, whatever the interval)
        interval = int(params["hvps.lsm_interval_minutes"])
        if (interval and now_us - self.last_lsm_us >= interval * US_PER_MINUTE
                and self.phase(now_us)[0] is PHASE_OPEN):
            self._gridlock(now_us, None)  # hvps.lsm's choice, "off" included (HVPS.md)

    def _walk(self, now_us: int) -> None:
        """Run every cut-off and close due by ``now_us`` from the cursor's day to today."""
        today = to_beijing_naive(now_us).date()
        if self.cursor_date is None:
            self.cursor_date = (today - dt.timedelta(days=1)).isoformat()
        day = dt.date.fromisoformat(self.cursor_date)
        sched = self.schedule()
        while day <= today:
            if sched.calendar.is_business_day(day):
                session = sched.session(day)
                key = day.isoformat()
                cutoff_us = from_datetime(session.cutoff_at)
                close_us = from_datetime(session.closes_at)
                if cutoff_us <= now_us and key not in self.cutoffs_done:
                    self.cutoffs_done.add(key)
                    self._clearing_window(cutoff_us)
                if close_us <= now_us and key not in self.days_closed:
                    self.days_closed.add(key)
                    self._end_of_day(day, close_us)
            day += dt.timedelta(days=1)
        self.cursor_date = (today - dt.timedelta(days=1)).isoformat()

    def _next_step_us(self, now_us: int) -> int:
        """The first of today's cut-off and close after ``now_us`` (the end of time if
        none): until then, on the same day, :meth:`_walk` would find nothing to run and set
        the cursor to the day it holds already."""
        today = to_beijing_naive(now_us).date()
        sched = self.schedule()
        later = []
        for day in (today - dt.timedelta(days=1), today):  # the days the walk looks at
            if sched.calendar.is_business_day(day):
                session = sched.session(day)
                later += [t for t in (from_datetime(session.cutoff_at),
                                      from_datetime(session.closes_at)) if t > now_us]
        return min(later, default=_NEVER_US)

    def next_wakeup_us(self, after_us: int) -> int | None:
        """When the driver should tick next: the next cut-off or close, or the next periodic
        gridlock attempt while payments are queued."""
        sched = self.schedule()
        day = to_beijing_naive(after_us).date()
        times: list[int] = []
        for offset in range(0, 15):
            d = day + dt.timedelta(days=offset)
            if not sched.calendar.covers(d.year) and sched.calendar.missing_year == "error":
                break
            if sched.calendar.is_business_day(d):
                s = sched.session(d)
                times += [from_datetime(s.cutoff_at), from_datetime(s.closes_at)]
            if len([t for t in times if t > after_us]) >= 2:
                break
        interval = int(self.engine.params["hvps.lsm_interval_minutes"])
        if interval and self.queued_total:
            times.append(self.last_lsm_us + interval * US_PER_MINUTE)
        future = [t for t in times if t > after_us]
        return min(future) if future else None

    # ------------------------------------------------------------------ commands

    def submit(self, ref: str, sender: str, receiver: str, amount_fen: int, priority: int,
               kind: str, now_us: int, debtor: str | None = None,
               creditor: str | None = None) -> Outcome:
        """A payment message arrives. Settles, queues, or is rejected with a reason."""
        self.advance(now_us)
        existing = self.payments.get(ref)
        if existing is not None:
            # a duplicate message id never settles twice: answer with the original's fate
            return Outcome(False, existing.status.value,
                           (Reason.AM05.code, f"duplicate message {ref}: already "
                                              f"{existing.status.value}"))
        reason = self._refuse(sender, receiver, amount_fen, now_us)
        # (the directory's kept answers read first: asked per payment)
        settles = self.directory.settles
        s_set = settles.get(sender) or self.directory.settling_kept(sender)
        r_set = settles.get(receiver) or self.directory.settling_kept(receiver)
        self.arrivals += 1
        # (the fields in order: a call by keywords costs more)
        pay = HvpsPayment(ref, s_set, r_set, amount_fen, int(priority), kind, self.arrivals,
                          now_us, PAY_QUEUED, None, None, None, None, debtor, creditor)
        self.payments[ref] = pay
        if reason is not None:
            pay.status = HvpsStatus.REJECTED
            pay.reason = reason
            self._notice(now_us, s_set, ref, "rejected", f"{reason[0]} {reason[1]}")
            return Outcome(False, "rejected", reason)
        if s_set == r_set:
            # both sides settle in the same account: nothing moves in central-bank money
            self._mark_settled(pay, now_us, "gross")
            return Outcome(True, "settled")
        # (nothing queued anywhere, most of the time: nobody is ahead)
        ahead = None if not self.queued_total or self.engine.params["hvps.bypass_fifo"] \
            else self._head(s_set, pay.priority)
        free = self._free(s_set)  # (read once: the settlement needs it too)
        if ahead is None and self._available(s_set, free) >= amount_fen:
            self._settle_gross(pay, now_us, "gross", free)
            self._after_settlement(now_us, {r_set, s_set})
            return Outcome(True, "settled")
        self._enqueue(pay, now_us, self._why_queued(pay, ahead))
        if self.engine.params["hvps.lsm_on_queue"]:
            self._gridlock(now_us, None)
        return Outcome(True, pay.status.value)

    def _refuse(self, sender: str, receiver: str, amount_fen: int, now_us: int
                ) -> tuple[str, str] | None:
        phase, _ = self.phase(now_us)
        if phase is not PHASE_OPEN:  # (closed, among others, while hvps.closed is set)
            if self.engine.params["hvps.closed"]:
                return (Reason.DT01.code, "HVPS is closed for maintenance (hvps.closed): it "
                                          "accepts no payments until it reopens")
            when = "in the clearing window (only funding, cancelling and reordering)" \
                if phase is HvpsPhase.CLEARING_WINDOW else "closed"
            opens = ""
            if phase is HvpsPhase.CLOSED:
                try:
                    nxt = self.schedule().next_open(to_beijing_naive(now_us))
                    opens = f"; it opens {nxt.isoformat(timespec='minutes')}"
                except ValueError:
                    opens = ""
            return (Reason.DT01.code, f"HVPS is {when}{opens}")
        refusal = self.directory.refuse_payment(sender, receiver, "HVPS", self.engine.params,
                                                False)
        if refusal is not None:
            return refusal
        if amount_fen <= 0:
            return (Reason.AM02.code, "amount must be positive")
        return None

    def cancel(self, ref: str, by: str, now_us: int) -> Outcome:
        """撤销: only the sender, only while queued."""
        self.advance(now_us)
        pay = self.payments.get(ref)
        if pay is None:
            return Outcome(False, "unknown", (Reason.NARR.code, f"no payment {ref}"))
        if self.directory.settling(by) != pay.sender:
            return Outcome(False, pay.status.value,
                           (Reason.NARR.code, f"only the sender may cancel {ref}"))
        if pay.status is not HvpsStatus.QUEUED:
            return Outcome(False, pay.status.value,
                           (Reason.NARR.code, f"{ref} is {pay.status.value}: only a queued "
                                              "payment can be cancelled"))
        self._dequeue(pay, now_us)
        pay.status = HvpsStatus.CANCELLED
        self.metrics[pay.sender].cancelled_count += 1
        self._notice(now_us, pay.sender, ref, "cancelled")
        # the queue behind it may move now
        self._after_settlement(now_us, {pay.sender})
        return Outcome(True, "cancelled")

    def reprioritise(self, ref: str, priority: int, by: str, now_us: int) -> Outcome:
        """Move a queued payment to another level (its arrival order stays)."""
        self.advance(now_us)
        pay = self.payments.get(ref)
        if pay is None:
            return Outcome(False, "unknown", (Reason.NARR.code, f"no payment {ref}"))
        if self.directory.settling(by) != pay.sender:
            return Outcome(False, pay.status.value,
                           (Reason.NARR.code, f"only the sender may reorder {ref}"))
        if pay.status is not HvpsStatus.QUEUED:
            return Outcome(False, pay.status.value,
                           (Reason.NARR.code, f"{ref} is {pay.status.value}: only a queued "
                                              "payment can be reordered"))
        level = self.queues[pay.sender][pay.priority]
        level.remove(ref)
        pay.priority = int(priority)
        self._insert(pay)
        self._notice(now_us, pay.sender, ref, "reprioritised", Priority(pay.priority).name)
        self._after_settlement(now_us, {pay.sender})
        return Outcome(True, pay.status.value)

    def pledge(self, participant: str, value_fen: int, haircut_ppm: int, now_us: int
               ) -> Outcome:
        """Pledge collateral: the lendable value rises by value x (1 - haircut)."""
        self.advance(now_us)
        name = self.directory.settling(participant)
        line = self.credit[name]
        line.pledged_value_fen += value_fen
        line.lendable_fen += value_fen * (PPM - haircut_ppm) // PPM
        self._notice(now_us, name, "", "pledged", format_fen(value_fen))
        self.funds_arrived({name}, now_us)
        return Outcome(True, "pledged")

    def funds_arrived(self, participants: set[str], now_us: int) -> None:
        """Liquidity reached these participants outside an HVPS settlement (a BEPS, IBPS or
        card switch net settlement session, a pledge, funds freed from an earmark): each
        one's queue is tried at once, by level then FIFO (in the clearing window: by level,
        then amount, then time)."""
        self.advance(now_us)
        self._after_settlement(now_us, participants)
        if self.phase(now_us)[0] is PHASE_CLEARING_WINDOW:
            self._clearing_window(now_us)

    def release(self, participant: str, value_fen: int, haircut_ppm: int, now_us: int
                ) -> Outcome:
        """Take collateral back: only what is not backing credit drawn."""
        self.advance(now_us)
        name = self.directory.settling(participant)
        line = self.credit[name]
        lendable = value_fen * (PPM - haircut_ppm) // PPM
        if value_fen > line.pledged_value_fen:
            return Outcome(False, "refused", (Reason.NARR.code, f"{name} pledged only "
                                                                f"{format_fen(line.pledged_value_fen)}"))
        if line.lendable_fen - lendable < line.drawn_fen:
            return Outcome(False, "refused", (Reason.NARR.code,
                                              f"{name} has drawn {format_fen(line.drawn_fen)}"
                                              ": the collateral backs it"))
        line.pledged_value_fen -= value_fen
        line.lendable_fen -= lendable
        self._notice(now_us, name, "", "released", format_fen(value_fen))
        return Outcome(True, "released")

    # ------------------------------------------------------------------ queues

    def _insert(self, pay: HvpsPayment) -> None:
        level = self.queues[pay.sender][pay.priority]
        arrivals = [self.payments[r].arrival for r in level]
        level.insert(bisect.bisect(arrivals, pay.arrival), pay.ref)

    def _head(self, participant: str, priority: int) -> HvpsPayment | None:
        """The first payment queued at ``priority`` or a more urgent level: under FIFO a new
        payment at ``priority`` waits behind it."""
        level = next((lv for lv in self.queues[participant][:priority + 1] if lv), None)
        return None if level is None else self.payments[level[0]]

    def _why_queued(self, pay: HvpsPayment, ahead: HvpsPayment | None) -> str:
        """The sender's notice: FIFO behind an earlier payment, or not enough liquidity."""
        available = format_fen(self.available_fen(pay.sender))
        if ahead is not None:
            level = "the same level" if ahead.priority == pay.priority else \
                "a more urgent level"
            return (f"FIFO: it waits behind {ahead.ref} ({format_fen(ahead.amount_fen)}), "
                    f"queued before it at {level}; {available} available")
        return (f"not enough in {pay.sender}'s settlement account: {available} available "
                f"(free balance and unused pledge financing) for "
                f"{format_fen(pay.amount_fen)}")

    def _enqueue(self, pay: HvpsPayment, now_us: int, why: str) -> None:
        if self.queued_total >= MAX_QUEUED:
            raise RuntimeError(f"HVPS holds {MAX_QUEUED} queued payments: refusing more")
        pay.status = PAY_QUEUED
        pay.queued_us = now_us
        self._insert(pay)
        self.queued_total += 1
        self.queued_value_fen += pay.amount_fen
        m = self.metrics[pay.sender]
        m.queued_count += 1
        m.queued_value_fen += pay.amount_fen
        self._notice(now_us, pay.sender, pay.ref, "queued", why)
        self.queue_length.append((now_us, self.queued_total, self.queued_value_fen))

    def _dequeue(self, pay: HvpsPayment, now_us: int) -> None:
        self.queues[pay.sender][pay.priority].remove(pay.ref)
        self.queued_total -= 1
        self.queued_value_fen -= pay.amount_fen
        assert pay.queued_us is not None
        self.metrics[pay.sender].queue_time_value_us += pay.amount_fen * (now_us - pay.queued_us)
        self.queue_length.append((now_us, self.queued_total, self.queued_value_fen))

    def queued(self, participant: str) -> list[HvpsPayment]:
        """A participant's queue in order (level, then arrival)."""
        return [self.payments[r] for level in self.queues[participant] for r in level]

    # ------------------------------------------------------------------ settlement

    def _settle_gross(self, pay: HvpsPayment, now_us: int, how: str,
                      free_fen: int | None = None) -> None:
        """Settle one payment now (``free_fen``: the sender's free balance, if read)."""
        s, r, amt = pay.sender, pay.receiver, pay.amount_fen
        transfers: list[tuple[int, int, int]] = []
        short = amt - (self._free(s) if free_fen is None else free_fen)
        if short > 0:
            transfers += self._draw(s, short)
        s_settlement, s_reserve, s_outgoing, _ = self._gross_ids(s)
        r_settlement, r_reserve, _, r_incoming = self._gross_ids(r)
        transfers += [
            (s_settlement, r_settlement, amt),
            (s_outgoing, s_reserve, amt),
            (r_reserve, r_incoming, amt),
        ]
        result = self.engine.post(transfers, linked=True)
        assert result.all_done, (pay.ref, result.failures())
        self._mark_settled(pay, now_us, how)

    def _draw(self, participant: str, amount_fen: int) -> list[tuple[int, int, int]]:
        line = self.credit[participant]
        assert amount_fen <= line.unused_fen, (participant, amount_fen, line)
        line.intraday_fen += amount_fen
        line.peak_drawn_fen = max(line.peak_drawn_fen, line.drawn_fen)
        self._notice(self.engine.now_us, participant, "", "credit_drawn", format_fen(amount_fen))
        return [
            (self._acc(PBOC, f"intraday_credit:{participant}"),
             self._acc(PBOC, f"settlement:{participant}"), amount_fen),
            (self._acc(participant, "reserve_at_pboc"), self._acc(participant, "pboc_credit"),
             amount_fen),
        ]

    def free_fen(self, participant: str) -> int:
        """What the participant holds for HVPS without drawing on its pledge credit."""
        return self._free(participant)

    def draw_credit(self, participant: str, amount_fen: int) -> None:
        """Draw ``amount_fen`` of the participant's unused pledge credit into its
        settlement account now (a batch of payments that needs it, cnaps/system.py)."""
        result = self.engine.post(self._draw(participant, amount_fen), linked=True)
        assert result.all_done, result.failures()

    def repay_credit(self, participant: str) -> None:
        """Repay drawn pledge credit from the free balance, overnight credit first."""
        self._repay(participant)

    def _repay(self, participant: str) -> None:
        """Incoming funds repay pledge financing, overnight credit first."""
        line = self.credit[participant]
        drawn_fen = line.intraday_fen + line.overnight_fen  # (drawn_fen: asked per session)
        if not drawn_fen:
            return
        pay_fen = min(drawn_fen, self._free(participant))
        if pay_fen <= 0:
            return
        transfers = []
        for attr, account in (("overnight_fen", "overnight_credit"),
                              ("intraday_fen", "intraday_credit")):
            part = min(pay_fen, getattr(line, attr))
            if part:
                setattr(line, attr, getattr(line, attr) - part)
                pay_fen -= part
                transfers += [
                    (self._acc(PBOC, f"settlement:{participant}"),
                     self._acc(PBOC, f"{account}:{participant}"), part),
                    (self._acc(participant, "pboc_credit"),
                     self._acc(participant, "reserve_at_pboc"), part),
                ]
        result = self.engine.post(transfers, linked=True)
        assert result.all_done, result.failures()

    def _mark_settled(self, pay: HvpsPayment, now_us: int, how: str) -> None:
        was_queued = pay.status is PAY_QUEUED and pay.queued_us is not None
        if was_queued:
            self._dequeue(pay, now_us)
            self._notice(now_us, pay.sender, pay.ref, "released", how)
        pay.status = PAY_SETTLED
        pay.settled_us = now_us
        pay.settled_by = how
        ms, mr = self.metrics[pay.sender], self.metrics[pay.receiver]
        ms.settled_value_fen += pay.amount_fen
        ms.settled_count += 1
        mr.received_value_fen += pay.amount_fen
        if pay.sender != pay.receiver:
            flow = ms.net_flow_fen = ms.net_flow_fen - pay.amount_fen
            if flow < ms.min_net_flow_fen:
                ms.min_net_flow_fen = flow
            mr.net_flow_fen += pay.amount_fen
        if how in ("bilateral", "multilateral", "window"):
            ms.gridlock_value_fen += pay.amount_fen
        notices = self.notices  # (_notice's, appended here)
        notices.append(Notice(now_us, pay.sender, pay.ref, "settled", how))
        notices.append(Notice(now_us, pay.receiver, pay.ref, "credited", how))

    def _after_settlement(self, now_us: int, touched: set[str]) -> None:
        """Incoming credits retry the receivers' queues (cascading), then repay credit."""
        if not self.queued_total:
            # nothing queued anywhere (most of the time): no queue to retry, only credit to
            # repay, by those that drew some (_repay's own first test)
            credit = self.credit
            for name in sorted(touched):
                line = credit[name]
                if line.intraday_fen + line.overnight_fen:  # (drawn_fen)
                    self._repay(name)
            return
        work = sorted(touched)
        seen_receivers = set(touched)
        while work:
            name = work.pop(0)
            for receiver in self._retry_queue(name, now_us):
                seen_receivers.add(receiver)
                if receiver not in work:
                    work.append(receiver)
        for name in sorted(seen_receivers):
            self._repay(name)

    def _retry_queue(self, name: str, now_us: int) -> list[str]:
        """Release what the participant's funds now cover: the head first (FIFO); with
        bypass-FIFO any queued payment that fits. Returns the receivers credited."""
        receivers: list[str] = []
        if not any(self.queues[name]):
            return receivers  # nothing queued (most payments settle at once)
        bypass = bool(self.engine.params["hvps.bypass_fifo"])
        progress = True
        while progress:
            progress = False
            for pay in self.queued(name):
                if self.available_fen(name) >= pay.amount_fen:
                    self._settle_gross(pay, now_us, "released")
                    receivers.append(pay.receiver)
                    progress = True
                    break
                if not bypass:
                    break
        return receivers

    # ------------------------------------------------------------------ gridlock

    def _gridlock(self, now_us: int, algorithm: str | None, *, window: bool = False) -> int:
        """Settle together the queued payments that can settle together. Returns the value
        settled."""
        from qingsuan.cnaps import gridlock

        self.last_lsm_us = now_us
        algo = algorithm or str(self.engine.params["hvps.lsm"])
        if algo == "off" or self.queued_total < 2:
            return 0
        names = sorted(self.queues)
        index = {n: i for i, n in enumerate(names)}
        queued = sorted((p for n in names for p in self.queued(n)), key=lambda p: p.arrival)
        inst = gridlock.QueueInstance(
            liquidity=np.array([max(0, self.available_fen(n)) for n in names], np.int64),
            sender=np.array([index[p.sender] for p in queued], np.int64),
            receiver=np.array([index[p.receiver] for p in queued], np.int64),
            amount=np.array([p.amount_fen for p in queued], np.int64),
            priority=np.array([p.priority for p in queued], np.int64),
        )
        mask = gridlock.resolve(inst, algo,
                                int(self.engine.params["hvps.bilateral_candidates"])) > 0
        gridlock.check_solution(inst, mask)
        chosen = [p for p, m in zip(queued, mask.tolist(), strict=True) if m]
        if not chosen:
            return 0
        self._settle_together(chosen, now_us, "window" if window else
                              ("bilateral" if algo == "bilateral" else "multilateral"))
        self._after_settlement(now_us, {p.receiver for p in chosen})
        return sum(p.amount_fen for p in chosen)

    def _settle_together(self, chosen: list[HvpsPayment], now_us: int, how: str) -> None:
        """Simultaneous settlement: the net position of each participant is covered, but
        one payment at a time could overdraw someone. Credits go first, through the PBOC's
        clearing account, so that no balance dips below its final value."""
        net: dict[str, int] = {}
        for p in chosen:
            net[p.sender] = net.get(p.sender, 0) - p.amount_fen
            net[p.receiver] = net.get(p.receiver, 0) + p.amount_fen
        transfers: list[tuple[int, int, int]] = []
        for name in sorted(net):
            short = -(self._free(name) + net[name])
            if short > 0:
                transfers += self._draw(name, short)
        clearing = self._acc(PBOC, "lsm_clearing")
        for p in chosen:  # every credit first ...
            transfers += [(clearing, self._acc(PBOC, f"settlement:{p.receiver}"), p.amount_fen),
                          (self._acc(p.receiver, "reserve_at_pboc"),
                           self._acc(p.receiver, "hvps_incoming"), p.amount_fen)]
        for p in chosen:  # ... then every debit
            transfers += [(self._acc(PBOC, f"settlement:{p.sender}"), clearing, p.amount_fen),
                          (self._acc(p.sender, "hvps_outgoing"),
                           self._acc(p.sender, "reserve_at_pboc"), p.amount_fen)]
        result = self.engine.post(transfers, linked=True)
        assert result.all_done, result.failures()
        for p in chosen:
            self._mark_settled(p, now_us, how)

    def _clearing_window(self, now_us: int) -> None:
        """清算窗口: settle by level, then amount, then time (any that fits), then offset."""
        progress = True
        while progress and self.queued_total:  # (most often nothing is queued)
            progress = False
            queued = sorted((p for n in sorted(self.queues) for p in self.queued(n)),
                            key=lambda p: (p.priority, p.amount_fen, p.arrival))
            for pay in queued:
                if self.available_fen(pay.sender) >= pay.amount_fen:
                    self._settle_gross(pay, now_us, "window")
                    self._repay(pay.receiver)
                    progress = True
        self._gridlock(now_us, None, window=True)

    def end_of_day_refusal(self, now_us: int) -> str | None:
        """Why the operator cannot close the business day now (None: it can)."""
        phase, day = self.phase(now_us)
        if phase is HvpsPhase.CLOSED or day is None:
            return "HVPS is closed: no business day is open to close"
        return None

    def end_of_day_now(self, now_us: int) -> dict[str, Any]:
        """日终 run by the operator before its time: the clearing window and the end of day
        of the open business day now; HVPS is closed for the rest of that day (what
        comes is held for the next one) and its statement ends now."""
        refused = self.end_of_day_refusal(now_us)
        if refused is not None:  # (checked before logging too)
            return {"ok": False, "reason": refused}
        self.advance(now_us)
        _, day = self.phase(now_us)
        assert day is not None
        key = day.isoformat()
        queued = [p.ref for n in sorted(self.queues) for p in self.queued(n)]
        self.cutoffs_done.add(key)
        self.days_closed.add(key)
        self.closed_early[key] = now_us
        self._phase_cache = (None, -1, 0, 0, (HvpsPhase.CLOSED, None))
        scheduled_us = from_datetime(self.schedule().session(day).closes_at)
        self._end_of_day(day, now_us, from_us=scheduled_us - US_PER_DAY)
        return {"ok": True, "business_date": key, "queued": queued,
                "returned": [r for r in queued
                             if self.payments[r].status is HvpsStatus.RETURNED]}

    def _end_of_day(self, day: dt.date, close_us: int, from_us: int | None = None) -> None:
        """日终: return what is still queued, turn unpaid credit into overnight credit with
        interest, and write each participant's statement of the day (from ``from_us``: a
        day closed early starts where its scheduled close would have)."""
        self._clearing_window(close_us)
        # what is still queued is returned (most days: nothing, and no queue is read)
        for name in sorted(self.queues) if self.queued_total else ():
            for pay in self.queued(name):
                self._dequeue(pay, close_us)
                pay.status = HvpsStatus.RETURNED
                pay.reason = (Reason.AM04.code,
                              f"still queued when HVPS closed on {day.isoformat()}: returned "
                              f"for lack of funds ({format_fen(self.available_fen(name))} "
                              "available)")
                self.metrics[name].returned_count += 1
                self._notice(close_us, name, pay.ref, "returned", pay.reason[1])
        rate_ppm = int(self.engine.params["hvps.credit_rate"])
        for name in sorted(self.credit):
            line = self.credit[name]
            if line.intraday_fen:
                amount = line.intraday_fen
                interest = -(-line.drawn_fen * rate_ppm // (PPM * 360))  # ACT/360, one day
                line.overnight_fen += amount
                line.intraday_fen = 0
                transfers = [(self._acc(PBOC, f"overnight_credit:{name}"),
                              self._acc(PBOC, f"intraday_credit:{name}"), amount)]
                if interest:
                    line.interest_fen += interest
                    transfers += [
                        (self._acc(PBOC, f"interest_receivable:{name}"),
                         self._acc(PBOC, "interest_income"), interest),
                        (self._acc(name, "interest_expense"),
                         self._acc(name, "interest_payable"), interest),
                    ]
                result = self.engine.post(transfers, linked=True)
                assert result.all_done, result.failures()
                self._notice(close_us, name, "", "overnight_credit",
                             f"{format_fen(amount)}, interest {format_fen(interest)}")
        # A day's statement keeps only its closing balance and moment: its entries are in
        # the ledger, read when the statement is asked for (statement()), so the state does
        # not grow with every settlement.
        for name in sorted(self.queues):
            self.statements.setdefault(name, []).append(
                {"participant": name, "date": day.isoformat(), "close_us": close_us,
                 "closing_fen": self._balance(name)}
                | ({"from_us": from_us} if from_us is not None else {}))

    def statement(self, name: str, day: dt.date) -> dict[str, Any] | None:
        """The closed business day's statement of a settlement account (camt.053 content):
        opening and closing balance and the day's entries; None if that day is not closed
        (or was no business day)."""
        kept = next((d for d in self.statements.get(name, [])
                     if d["date"] == day.isoformat()), None)
        if kept is None:
            return None
        if "entries" in kept:  # a state written before statements were read on demand
            return kept
        return self._statement(name, day, int(kept["close_us"]), int(kept["closing_fen"]),
                               kept.get("from_us"))

    def _statement(self, name: str, day: dt.date, close_us: int, closing_fen: int | None = None,
                   from_us: int | None = None) -> dict[str, Any]:
        """The entries on the participant's settlement account in the day up to
        ``close_us``, and its balance then (``closing_fen``; now, if not given)."""
        account = self._acc(PBOC, f"settlement:{name}")
        start_us = close_us - US_PER_DAY if from_us is None else from_us
        entries = []
        closing = self._balance(name) if closing_fen is None else closing_fen
        moved = 0
        for rec in self.engine.ledger.history_between(account, start_us, close_us):
            t = rec.transfer
            credit = t.credit_account_id == account
            moved += t.amount_fen if credit else -t.amount_fen
            other = t.debit_account_id if credit else t.credit_account_id
            entries.append({"at_us": rec.timestamp_us, "amount_fen": t.amount_fen,
                            "credit": credit, "counterparty": self.engine.registry.name(other),
                            "transfer_id": t.id})
        return {"participant": name, "date": day.isoformat(), "opening_fen": closing - moved,
                "closing_fen": closing, "entries": entries}

    # ------------------------------------------------------------------ notices and state

    def _notice(self, at_us: int, participant: str, ref: str, event: str,
                detail: str = "") -> None:
        self.notices.append(Notice(at_us, participant, ref, event, detail))

    def notices_for(self, participant: str) -> list[Notice]:
        """What one participant may see: its own notices only."""
        return [n for n in self.notices if n.participant == participant]

    def to_json(self) -> dict[str, Any]:
        return {
            "payments": [p.to_json() for p in self.payments.values()],
            "queues": self.queues,
            "credit": {k: shallow(v) for k, v in sorted(self.credit.items())},
            "metrics": {k: shallow(v) for k, v in sorted(self.metrics.items())},
            "notices": [shallow(n) for n in self.notices],
            "queue_length": self.queue_length,
            "statements": self.statements,
            "arrivals": self.arrivals,
            "cutoffs_done": sorted(self.cutoffs_done),
            "days_closed": sorted(self.days_closed),
            "cursor_date": self.cursor_date,
            "last_lsm_us": self.last_lsm_us,
        } | ({"closed_early": dict(sorted(self.closed_early.items()))}  # (absent: as before)
             if self.closed_early else {})

    def load_json(self, doc: dict[str, Any]) -> None:
        self.payments = {p["ref"]: HvpsPayment.from_json(p) for p in doc["payments"]}
        self.queues = {k: [list(level) for level in v] for k, v in doc["queues"].items()}
        self.credit = {k: CreditLine(**v) for k, v in doc["credit"].items()}
        self.metrics = {k: Metrics(**v) for k, v in doc["metrics"].items()}
        self.notices = [Notice(**n) for n in doc["notices"]]
        self.queue_length = [(int(a), int(b), int(c)) for a, b, c in doc["queue_length"]]
        self.statements = doc["statements"]
        self.arrivals = int(doc["arrivals"])
        self.cutoffs_done = set(doc["cutoffs_done"])
        self.days_closed = set(doc["days_closed"])
        self.closed_early = {k: int(v) for k, v in doc.get("closed_early", {}).items()}
        self.cursor_date = doc["cursor_date"]
        self._walk_cache = (-1, None, -1, 0)  # a state loaded: walk the day cycle again
        self._gross = {}
        self.last_lsm_us = int(doc["last_lsm_us"])
        queued = [self.payments[r] for q in self.queues.values() for lv in q for r in lv]
        self.queued_total = len(queued)
        self.queued_value_fen = sum(p.amount_fen for p in queued)


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


__all__ = ["Hvps", "HvpsPayment", "HvpsStatus", "Notice", "Outcome", "Priority", "dumps"]
