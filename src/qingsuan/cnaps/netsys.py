"""BEPS 小额批量支付系统 and IBPS 网上支付跨行清算系统 (超级网银): deferred net settlement.

Both run 7x24 and share one mechanism: each participant has a running **net position** per
system (credits received minus debits sent since the last settlement session) that may not
fall below minus its **net debit cap** (净借记限额). At scheduled **settlement sessions**
during HVPS hours the positions are settled in central-bank money as one multilateral net
settlement through HVPS (all or nothing; a participant short of funds draws automatic
pledge financing, or the session waits, with its status saying who is short).

* **IBPS**: one item at a time; item limit (``ibps.item_limit``); the receiving participant
  accepts or rejects each item within ``ibps.confirm_timeout_ms``; accepted items net at
  once and the sender learns the final status in the same exchange; an item beyond the cap
  is **rejected**; a timeout ends the item rejected with nothing moved.
* **BEPS**: six business types; ordinary credits have an item limit (a separate one on
  non-business days); debits need a receipt (回执) from the payer's bank (periodic debits
  only under a registered payer agreement); an item beyond its sender's cap **queues**
  (FIFO) and is released when the position improves or the cap is raised; the sender may
  cancel a queued item; a credit the receiving bank cannot apply is **returned** (退汇) as a
  new item referencing the original.

Participants not connected from outside are answered by a simulated responder that reads
the accounts registered for it (existence, closed, name) and the ledger (payer's funds),
with parameters for accept ratio and latency; the banks issue replaces it with real books.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from qingsuan.calendar import HvpsPhase
from qingsuan.clock import (
    US_PER_DAY,
    US_PER_MINUTE,
    beijing_day,
    beijing_day_start_us,
    format_time,
    from_datetime,
    to_beijing_naive,
)
from qingsuan.cnaps.hvps import PHASE_OPEN
from qingsuan.money import format_fen
from qingsuan.params import PPM
from qingsuan.reasons import Reason
from qingsuan.statejson import shallow
from qingsuan.vocabulary import BEPS_KINDS

if TYPE_CHECKING:
    from qingsuan.cnaps.hvps import Hvps
    from qingsuan.cnaps.participants import Directory
    from qingsuan.engine import Engine
    from qingsuan.params import Params

PBOC: Final = "PBOC"
#: BEPS, IBPS, and the card switch's daily net positions (CUPS) that settle in HVPS sessions
SYSTEMS: Final = ("BEPS", "IBPS", "CUPS")
MAX_ITEMS: Final = 50_000_000
#: The status of an item waiting for a connected participant's answer: an IBPS item for
#: its receiver's confirmation, a BEPS debit for the payer's bank's receipt (回执).
AWAITING: Final = "awaiting_confirmation"
#: The reason codes a connected receiver may reject an IBPS item with.
CONFIRM_REJECT_CODES: Final = ("AC01", "AC04", "AC06", "AG01", "BE01", "NARR")
#: The reason codes a connected payer's bank may refuse its receipt for a BEPS debit with.
RECEIPT_REJECT_CODES: Final = tuple(r.code for r in (
    Reason.AC01, Reason.AC04, Reason.AC06, Reason.AM04, Reason.MD01, Reason.NARR))
#: The maintenance switch of each system that can close on its own (the card switch's
#: positions settle in HVPS sessions: they stop only when HVPS does).
CLOSED_PARAM: Final = {"BEPS": "beps.closed", "IBPS": "ibps.closed"}


#: a net system's notice: (at, participant, ref, event, detail)
NetNotice = tuple[int, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Asking:
    """What a net system asks a connected participant, and how it ends when it is silent."""

    command: str               # the logged answer
    request: str               # the notice that asks (its detail: the deadline)
    timeout_param: str
    timeout_unit_us: int       # of the parameter's value
    silent_code: str           # the item's end at the deadline without an answer
    reject_codes: tuple[str, ...]


#: Per system, defined once: IBPS asks the receiver to confirm a credit within seconds;
#: BEPS asks the payer's bank for its receipt of a debit within a much longer deadline.
#: AB06: the instructed agent (the debit's payer's bank) did not answer in time.
ASKING: Final = {
    "IBPS": Asking("cnaps.ibps_confirm", "confirm_request", "ibps.confirm_timeout_ms", 1000,
                   Reason.AB05.code, CONFIRM_REJECT_CODES),
    "BEPS": Asking("cnaps.beps_receipt", "receipt_request", "beps.receipt_timeout_minutes",
                   US_PER_MINUTE, Reason.AB06.code, RECEIPT_REJECT_CODES),
}


@dataclass(slots=True)
class NetItem:
    ref: str
    system: str
    kind: str
    sender: str      # the participant that pays (for a debit: the payer's bank)
    receiver: str    # the participant that is paid
    amount_fen: int
    arrival: int
    submitted_us: int
    status: str = "accepted"   # accepted, queued, netted, settled, rejected, cancelled,
    #                            awaiting_confirmation (a connected participant's answer)
    netted_us: int | None = None
    settled_us: int | None = None
    session: int | None = None
    reason: tuple[str, str] | None = None
    payer: str | None = None   # account numbers (opaque to the system)
    payee: str | None = None
    original: str | None = None  # for a return: the item it returns
    returned_by: str | None = None
    payee_name: str | None = None


@dataclass
class NetMetrics:
    netted_value_fen: int = 0
    netted_count: int = 0
    received_value_fen: int = 0
    low_position_fen: int = 0       # the position's low point (high-water mark of use)
    queue_time_us: int = 0
    rejections: dict[str, int] | None = None

    def reject(self, code: str) -> None:
        self.rejections = self.rejections or {}
        self.rejections[code] = self.rejections.get(code, 0) + 1


@dataclass(frozen=True, slots=True)
class NetOutcome:
    ok: bool
    status: str
    reason: tuple[str, str] | None = None


#: the answer to an item that netted at once (immutable: one for all)
NETTED: Final = NetOutcome(True, "netted")


@dataclass(frozen=True, slots=True)
class SimAccount:
    """An account the simulated responder of a bank knows."""

    bank: str
    number: str
    name: str
    ledger_name: str | None   # "BANK:customer:ID" when it is in the ledger
    closed: bool = False


class AccountsView(Protocol):
    """What the simulated responders look accounts up in: a dictionary of registered
    accounts (CNAPS alone), or the banks' own directory (a whole world)."""

    def get(self, key: tuple[str, str], /) -> SimAccount | None: ...


class NetSystem:
    """One deferred-net-settlement system (BEPS or IBPS) inside the CNAPS engine system."""

    def __init__(self, engine: Engine, directory: Directory, hvps: Hvps, name: str,
                 accounts: AccountsView,
                 agreements: set[tuple[str, str]],
                 connected: set[str] | None = None) -> None:
        assert name in SYSTEMS
        self.engine = engine
        #: the timetable walk's cache (advance): valid below this time, for this version
        self._walked_until_us = 0
        self._walked_version = -1
        #: the parameters' version the queues were last swept at (advance): -1, sweep now
        self._swept_version = -1
        #: shared with the other net system: what the simulated responders know
        self.accounts = accounts
        self.agreements = agreements
        self.directory = directory
        self.hvps = hvps
        self.name = name
        self.key = name.lower()
        self.positions: dict[str, int] = {}
        self.caps: dict[str, int] = {}
        self.items: dict[str, NetItem] = {}
        self.queues: dict[str, deque[str]] = {}
        self.metrics: dict[str, NetMetrics] = {}
        self.sessions: list[dict[str, Any]] = []
        self.sessions_done: set[str] = set()
        self.pending_session: str | None = None
        self.unsettled: list[str] = []      # netted items waiting for the next session
        self.arrivals = 0
        self.notices: list[NetNotice] = []
        #: (at, value of netted items not yet settled in central-bank money)
        self.in_transit: list[tuple[int, int]] = []
        self.in_transit_fen = 0
        #: position batches (card clearing days) settled, in order
        self.settled_batches: list[str] = []
        #: participants whose cap is backed by earmarked funds, and the reservation held
        self.earmark_backed: set[str] = set()
        self.earmarks: dict[str, tuple[int, int]] = {}
        #: participants that answer IBPS confirmations and BEPS debit receipts themselves
        #: (shared with CNAPS)
        self.connected: set[str] = connected if connected is not None else set()
        #: items waiting for a connected participant: ref -> (deadline, who answers)
        self.awaiting: dict[str, tuple[int, str]] = {}
        #: the item limit (IBPS's, or BEPS's for ordinary credits), asked for every item,
        #: kept for the (Beijing day as its first and past-the-last microsecond, parameters
        #: object, its version) it holds for (derived, never in the state)
        self._limit_cache: tuple[int, int, object, int, int] = (0, 0, None, -1, 0)
        #: the maintenance switch's value, kept for the (parameters object, its version)
        #: it was read at (asked several times per item; derived, never in the state)
        self._closed_cache: tuple[object, int, bool] = (None, -1, False)
        #: the ids of this system's clearing accounts by book (_clearing_id; derived)
        self._clearing_ids: dict[str, int] = {}
        #: the simulated IBPS receiver's rules read from the parameters, for (parameters
        #: object, its version): whether it answers too late, the timeout as written, the
        #: name check, the accept ratio (derived, never in the state)
        self._confirm_rules: tuple[object, int, bool, int | bool | str, int | bool | str, int] = (
            None, -1, False, 0, False, 0)

    # ------------------------------------------------------------------ participants

    def join(self, name: str) -> None:
        from qingsuan.engine import AccountSpec
        from qingsuan.ledger import NormalSide

        if not self.engine.registry.has(f"{PBOC}:{self.key}_clearing"):
            self.engine.open_derived([AccountSpec(PBOC, f"{self.key}_clearing",
                                                  NormalSide.DEBIT),
                                      AccountSpec(PBOC, f"{self.key}_earmarked",
                                                  NormalSide.CREDIT)])
        if self.directory.settling(name) == name:
            self.engine.open_derived([AccountSpec(name, f"{self.key}_clearing",
                                                  NormalSide.DEBIT)])
            self.positions[name] = 0
            self.caps[name] = int(self.engine.params[f"{self.key}.default_cap"])
            self.queues[name] = deque()
            self.metrics[name] = NetMetrics()

    def set_cap(self, participant: str, cap_fen: int, now_us: int,
                backing: str = "collateral") -> NetOutcome:
        """Set the net debit cap. ``backing``: "collateral" (the participant's pledged
        collateral stands behind it: a short session draws pledge financing) or "earmark"
        (圈存: the cap's amount is reserved in its settlement account, out of HVPS's reach).
        Raising the cap releases queued BEPS items that now fit."""
        name = self.directory.settling(participant)
        if cap_fen < 0:
            return NetOutcome(False, "refused", (Reason.AM02.code, "a cap is never negative"))
        if backing not in ("collateral", "earmark"):
            return NetOutcome(False, "refused", (
                Reason.NARR.code, f"backing is collateral or earmark, not {backing!r}"))
        if -self.positions[name] > cap_fen:
            return NetOutcome(False, "refused", (
                Reason.AM14.code, f"{name}'s position {format_fen(self.positions[name])} is "
                                  f"already below minus {format_fen(cap_fen)}"))
        free_before_fen = self.hvps._free(name)
        self._unearmark(name)
        if backing == "earmark" and self.hvps._free(name) < cap_fen:
            free = self.hvps._free(name)
            if name in self.earmark_backed:
                self._earmark(name, self.caps[name])  # put the old earmark back
            return NetOutcome(False, "refused", (
                Reason.AM04.code, f"{name} has {format_fen(free)} free to earmark, not "
                                  f"{format_fen(cap_fen)}"))
        self.caps[name] = cap_fen
        if backing == "earmark":
            self.earmark_backed.add(name)
            self._earmark(name, cap_fen)
        else:
            self.earmark_backed.discard(name)
        self._release(name, now_us)
        if self.hvps._free(name) > free_before_fen:  # funds freed from the earmark
            self.hvps.funds_arrived({name}, now_us)
        return NetOutcome(True, "set")

    def _earmark(self, name: str, amount_fen: int) -> None:
        """Reserve funds in the settlement account (a pending ledger transfer)."""
        from qingsuan.ledger import Transfer, TransferFlags

        if amount_fen <= 0:
            return
        acc = self.engine.registry.id
        tid = self.engine.next_derived_id()
        result = self.engine.post([Transfer(0, acc(PBOC, f"settlement:{name}"),
                                            acc(PBOC, f"{self.key}_earmarked"), amount_fen,
                                            TransferFlags.PENDING)])
        assert result.all_done, result.failures()
        self.earmarks[name] = (tid, amount_fen)

    def _unearmark(self, name: str) -> None:
        from qingsuan.ledger import Transfer, TransferFlags

        held = self.earmarks.pop(name, None)
        if held is not None:
            result = self.engine.post([Transfer(0, 0, 0, 0, TransferFlags.VOID_PENDING,
                                                pending_id=held[0])])
            assert result.all_done, result.failures()

    # ------------------------------------------------------------------ items

    @property
    def closed(self) -> bool:
        """Closed for maintenance (维护窗口): it takes no business, nets nothing and runs
        no session (PBOC: 暂停受理业务; the banks hold their customers' payments)."""
        return self._closed_under(self.engine.params)

    def _closed_under(self, params: Params) -> bool:
        """:attr:`closed` under ``params``, the parameters in force (read already)."""
        # asked several times per item: only a parameter changes it
        held_params, version, closed = self._closed_cache
        if held_params is params and version == params.version:
            return closed
        param = CLOSED_PARAM.get(self.name)
        closed = param is not None and bool(params[param])
        self._closed_cache = (params, params.version, closed)
        return closed

    def _closed_reason(self) -> tuple[str, str]:
        return (Reason.DT01.code, f"{self.name} is closed for maintenance "
                                  f"({CLOSED_PARAM[self.name]}): it accepts nothing until it "
                                  "reopens")

    def item_limit_fen(self, kind: str, now_us: int) -> int | None:
        """The per-item limit of ``kind`` now: IBPS's; BEPS ordinary credits have one limit
        on business days and another on the other (calendar) days; the rest none."""
        if kind != "ordinary_credit" and self.name != "IBPS":
            return None  # periodic credits and debits have no item limit
        # asked for every item: the answer holds for a Beijing day (BEPS's business days
        # come from the calendar, named in the parameters) and the parameters' version
        params = self.engine.params
        start_us, end_us, cached_params, cached_version, limit = self._limit_cache
        if start_us <= now_us < end_us and cached_params is params and \
                cached_version == params.version:
            return limit
        if self.name == "IBPS":
            key = "ibps.item_limit"
        elif self.hvps.schedule().calendar.is_business_day(_local_date(now_us)):
            key = "beps.item_limit"
        else:
            key = "beps.holiday_item_limit"
        limit = int(params[key])
        start_us = beijing_day_start_us(beijing_day(now_us))
        self._limit_cache = (start_us, start_us + US_PER_DAY, params, params.version, limit)
        return limit

    def submit(self, ref: str, kind: str, sender: str, receiver: str, amount_fen: int,
               now_us: int, payer: str | None, payee: str | None,
               original: str | None = None, payee_name: str | None = None) -> NetOutcome:
        """An item (or a BEPS package of one) arrives from the sender's bank."""
        self.advance(now_us)
        items = self.items
        existing = items.get(ref)
        if existing is not None:
            return NetOutcome(False, existing.status, (
                Reason.AM05.code, f"duplicate item {ref}: already {existing.status}"))
        if len(items) >= MAX_ITEMS:
            raise RuntimeError(f"{self.name} holds {MAX_ITEMS} items: refusing more")
        # (the directory's kept answers read first: asked per item)
        settles = self.directory.settles
        s = settles.get(sender) or self.directory.settling_kept(sender)
        r = settles.get(receiver) or self.directory.settling_kept(receiver)
        self.arrivals += 1
        # (the fields in order: a call by keywords costs more)
        item = NetItem(ref, self.name, kind, s, r, amount_fen, self.arrivals, now_us,
                       "accepted", None, None, None, None, payer, payee, original, None,
                       payee_name)
        items[ref] = item
        reason = self._refuse(item, sender, receiver, now_us)
        # (nobody connected, nobody answers for itself: the common case, asked first)
        answerer = self._answerer(item, sender, receiver) if self.connected else None
        if reason is None and answerer is None:
            if kind.endswith("_debit"):
                reason = self._debit_receipt(item)
            elif self.name == "IBPS":
                reason = self._confirm(item)
        if reason is not None:
            return self._reject(item, reason, now_us)
        if answerer is not None:
            return self._await(item, answerer, now_us)
        if s == r:
            self._net(item, now_us)  # both sides in one settlement account: nothing to net
            return NETTED
        # items awaiting a connected receiver's answer hold part of the cap
        held = self.held_fen(s) if self.awaiting else 0
        if self.positions[s] - held - amount_fen < -self.caps[s] or (
                self.queues[s] and self.name == "BEPS"):
            if self.name == "IBPS":
                return self._reject(item, (Reason.AM14.code, (
                    f"{s}'s IBPS net debit cap {format_fen(self.caps[s])} would be exceeded "
                    f"(position {format_fen(self.positions[s])})")), now_us)
            item.status = "queued"
            self.queues[s].append(ref)
            self._notice(now_us, s, ref, "queued", f"cap {format_fen(self.caps[s])}")
            return NetOutcome(True, "queued")
        self._net(item, now_us)
        if self.queues.get(r):  # (_release's own first test: most often nothing waits)
            self._release(r, now_us)
        return NETTED

    def _refuse(self, item: NetItem, sender: str, receiver: str, now_us: int
                ) -> tuple[str, str] | None:
        params = self.engine.params
        if self._closed_under(params):
            return self._closed_reason()
        # as in HVPS; a return (退汇) only gives back what was received: a suspended
        # participant sends it too
        refusal = self.directory.refuse_payment(sender, receiver, self.name, params,
                                                item.original is not None)
        if refusal is not None:
            return refusal
        if item.amount_fen <= 0:
            return (Reason.AM02.code, "amount must be positive")
        # a return (退汇) sends back money already netted: no item limit stops it
        limit = None if item.original is not None else self.item_limit_fen(item.kind, now_us)
        if limit is not None and item.amount_fen > limit:
            return (Reason.AM02.code, f"{format_fen(item.amount_fen)} exceeds the {self.name} "
                                      f"item limit {format_fen(limit)}: split it, or send it "
                                      "through HVPS")
        return None

    def _debit_receipt(self, item: NetItem) -> tuple[str, str] | None:
        """回执: the payer's bank answers a debit request (simulated responder)."""
        if item.kind == "periodic_debit" and (item.payer or "", item.payee or "") not in \
                self.agreements:
            return (Reason.MD01.code, f"no payer authorisation agreement for "
                                      f"{item.payer} -> {item.payee}")
        account = self.accounts.get((item.sender, item.payer or ""))
        if account is None or account.closed:
            return (Reason.AC01.code if account is None else Reason.AC04.code,
                    f"the payer's bank {item.sender} has no open account {item.payer}")
        return self._payer_short(item, account)

    def _payer_short(self, item: NetItem, account: SimAccount | None) -> tuple[str, str] | None:
        """AM04 when the payer's account is in the world's ledger and cannot pay the debit
        (its books never go below zero, whoever gave the receipt)."""
        if account is None or account.ledger_name is None:
            return None
        bank, name = account.ledger_name.split(":", 1)
        avail = self.engine.ledger.available_fen(self.engine.registry.id(bank, name))
        if avail < item.amount_fen:
            return (Reason.AM04.code, f"the payer's bank refuses: insufficient funds in "
                                      f"{item.payer}")
        return None

    def _confirm(self, item: NetItem) -> tuple[str, str] | None:
        """IBPS: the receiving participant must accept or reject within the timeout."""
        params = self.engine.params
        rules = self._confirm_rules
        if rules[0] is not params or rules[1] != params.version:  # (kept: asked per item)
            timeout = params["ibps.confirm_timeout_ms"]
            rules = self._confirm_rules = (
                params, params.version, int(params["ibps.sim_latency_ms"]) > int(timeout),
                timeout, params["banks.name_check"], int(params["ibps.sim_accept_ratio"]))
        _, _, too_slow, timeout, name_check, ratio = rules
        if too_slow:
            return (Reason.AB05.code, f"{item.receiver} did not answer within {timeout} ms")
        account = self.accounts.get((item.receiver, item.payee or ""))
        if account is None:
            return (Reason.AC01.code, f"{item.receiver} has no account {item.payee}")
        if account.closed:
            return (Reason.AC04.code, f"account {item.payee} at {item.receiver} is closed")
        if name_check and item.payee_name and item.payee_name != account.name:
            return (Reason.BE01.code, f"the name {item.payee_name!r} does not match account "
                                      f"{item.payee} at {item.receiver}")
        if ratio >= PPM:  # every draw (below 2**32) is accepted: no need to draw
            return None
        draw = int.from_bytes(hashlib.sha256(f"{item.ref}".encode()).digest()[:4], "big")
        if draw * PPM >= ratio * (1 << 32):
            return (Reason.NARR.code, f"{item.receiver} rejected the item")
        return None

    # ------------------------------------------------------------------ connected answerers

    def _answerer(self, item: NetItem, sender: str, receiver: str) -> str | None:
        """The connected participant that answers this item itself, if any: for an IBPS
        item its receiver, for a BEPS debit the payer's bank that gives the receipt (the
        item's sender); the participant named, or the direct participant it settles
        through. A return (退汇) only gives back what was received: the simulated path
        takes it, as before."""
        if not self.connected or item.original is not None:
            return None
        if self.name == "IBPS":
            named = (receiver, item.receiver)
        elif self.name == "BEPS" and item.kind.endswith("_debit"):
            named = (sender, item.sender)
        else:
            return None
        for who in named:
            if who in self.connected:
                return who
        return None

    def held_fen(self, sender: str) -> int:
        """What the sender's IBPS items awaiting an answer hold of its net debit cap (a
        BEPS debit awaiting its receipt holds none: the payer's bank has not agreed yet,
        and an accepted debit beyond the cap queues)."""
        if self.name != "IBPS":
            return 0
        return sum(self.items[ref].amount_fen for ref in self.awaiting
                   if self.items[ref].sender == sender
                   and self.items[ref].receiver != sender)

    def _await(self, item: NetItem, answerer: str, now_us: int) -> NetOutcome:
        """The item waits for the connected participant's answer. An IBPS item's amount
        holds the sender's cap meanwhile, so that an accepted item always nets."""
        s = item.sender
        if self.name == "IBPS" and s != item.receiver and (
                self.positions[s] - self.held_fen(s) - item.amount_fen < -self.caps[s]):
            return self._reject(item, (Reason.AM14.code, (
                f"{s}'s IBPS net debit cap {format_fen(self.caps[s])} would be exceeded "
                f"(position {format_fen(self.positions[s])}, "
                f"{format_fen(self.held_fen(s))} awaiting confirmation)")), now_us)
        asking = ASKING[self.name]
        deadline = now_us + int(self.engine.params[asking.timeout_param]) * \
            asking.timeout_unit_us
        item.status = AWAITING
        self.awaiting[item.ref] = (deadline, answerer)
        # the detail: the answer's deadline, as every API shows a time
        self._notice(now_us, answerer, item.ref, asking.request, format_time(deadline))
        return NetOutcome(True, AWAITING)

    def confirm(self, ref: str, by: str, accept: bool, reason: tuple[str, str] | None,
                now_us: int) -> NetOutcome:
        """A connected participant's answer to an item awaiting it (an IBPS confirmation,
        a BEPS debit receipt): accepted, it nets (a BEPS debit may queue behind the cap);
        rejected, it ends with the answerer's reason. Too late (at or after the deadline),
        the item has already been rejected (AB05, AB06) and the answer is refused."""
        self.advance(now_us)  # a deadline reached rejects the item before the answer
        item = self.items.get(ref)
        if item is None:
            return NetOutcome(False, "unknown", (Reason.NARR.code,
                                                 f"no {self.name} item {ref}"))
        held = self.awaiting.get(ref)
        if held is None:
            return NetOutcome(False, item.status, (
                Reason.NARR.code, f"{ref} is {item.status}: it awaits no answer"
                + (f" ({item.reason[0]})" if item.reason else "")))
        deadline, answerer = held
        if by != answerer:
            return NetOutcome(False, "unknown", (Reason.NARR.code,
                                                 f"no {self.name} item {ref}"))
        assert now_us < deadline, "advance rejects an item at its deadline"
        del self.awaiting[ref]
        if not accept:
            assert reason is not None and reason[0] in ASKING[self.name].reject_codes, reason
            return self._reject(item, (reason[0], f"{answerer} rejected the item: "
                                                  f"{reason[1]}"), now_us)
        if self.name == "BEPS":
            return self._receipt_given(item, now_us)
        if self.closed:
            return self._reject(item, self._closed_reason(), now_us)
        s = item.sender
        if s != item.receiver and (self.positions[s] - self.held_fen(s) - item.amount_fen
                                   < -self.caps[s]):
            # the cap was lowered while the item waited
            return self._reject(item, (Reason.AM14.code, (
                f"{s}'s IBPS net debit cap {format_fen(self.caps[s])} would be exceeded "
                f"(position {format_fen(self.positions[s])})")), now_us)
        self._net(item, now_us)
        self._release(item.receiver, now_us)
        return NETTED

    def _receipt_given(self, item: NetItem, now_us: int) -> NetOutcome:
        """BEPS: the payer's bank gave its receipt: the debit enters netting as a simulated
        receipt's does, netting at once or queueing (behind the cap, or while BEPS is
        closed, to net when it reopens)."""
        if self._payer_short(item, self.accounts.get((item.sender, item.payer or ""))):
            return self._reject(item, (Reason.AM04.code, (
                f"{item.sender} gave its receipt, but {item.payer} has not the funds in the "
                "world's books")), now_us)
        s, r = item.sender, item.receiver
        if self.closed or (s != r and (self.queues[s] or self.positions[s] - item.amount_fen
                                       < -self.caps[s])):
            item.status = "queued"
            self.queues[s].append(item.ref)
            self._notice(now_us, s, item.ref, "queued", f"cap {format_fen(self.caps[s])}")
            return NetOutcome(True, "queued")
        self._net(item, now_us)
        self._release(r, now_us)
        return NETTED

    def _expire(self, now_us: int) -> None:
        """Items whose answerer was silent until the deadline end rejected (AB05, AB06)."""
        due = sorted((deadline, ref) for ref, (deadline, _) in self.awaiting.items()
                     if deadline <= now_us)
        asking = ASKING[self.name]
        timeout = self.engine.params[asking.timeout_param]
        unit = asking.timeout_param.rsplit("_", 1)[1]  # (units last in names: ms, minutes)
        for _deadline, ref in due:
            _, answerer = self.awaiting.pop(ref)
            self._reject(self.items[ref], (asking.silent_code, (
                f"{answerer} did not answer within {timeout} {unit}")), now_us)

    def next_confirm_deadline_us(self) -> int | None:
        """The first deadline of an item awaiting an answer (the wake-up rule)."""
        return min((d for d, _ in self.awaiting.values()), default=None)

    def _reject(self, item: NetItem, reason: tuple[str, str], now_us: int) -> NetOutcome:
        item.status = "rejected"
        item.reason = reason
        if item.sender in self.metrics:
            self.metrics[item.sender].reject(reason[0])
        self._notice(now_us, item.sender, item.ref, "rejected", f"{reason[0]} {reason[1]}")
        return NetOutcome(False, "rejected", reason)

    def _net(self, item: NetItem, now_us: int) -> None:
        s, r = item.sender, item.receiver
        if s != r:
            amount = item.amount_fen
            positions = self.positions
            position = positions[s] = positions[s] - amount
            assert position >= -self.caps[s], (item.ref, s, position)
            positions[r] += amount
            ms, mr = self.metrics[s], self.metrics[r]
            ms.netted_value_fen += amount
            ms.netted_count += 1
            if position < ms.low_position_fen:
                ms.low_position_fen = position
            mr.received_value_fen += amount
            if item.status == "queued":
                ms.queue_time_us += now_us - item.submitted_us
            in_transit = self.in_transit_fen = self.in_transit_fen + amount
            self.in_transit.append((now_us, in_transit))
        item.status = "netted"
        item.netted_us = now_us
        ref = item.ref
        self.unsettled.append(ref)
        notices, name = self.notices, self.name  # (_notice's tuples, appended here)
        notices.append((now_us, s, ref, "netted", name))
        notices.append((now_us, r, ref, "incoming", name))

    def _release(self, name: str, now_us: int) -> None:
        """Incoming credits (or a higher cap) release the head of a BEPS queue, in cascade."""
        if not self.queues.get(name):
            return  # (most often: nothing waits behind its cap)
        if self.closed:
            return  # nothing nets during maintenance: the queue waits for the reopening
        work = deque([name])
        while work:
            x = work.popleft()
            q = self.queues.get(x)
            while q:
                item = self.items[q[0]]
                if self.positions[x] - item.amount_fen < -self.caps[x]:
                    break
                q.popleft()
                self._notice(now_us, x, item.ref, "released", "")
                self._net(item, now_us)
                if item.receiver not in work:
                    work.append(item.receiver)

    def cancel(self, ref: str, by: str, now_us: int) -> NetOutcome:
        item = self.items.get(ref)
        if item is None:
            return NetOutcome(False, "unknown", (Reason.NARR.code, f"no item {ref}"))
        if self.directory.settling(by) != item.sender:
            return NetOutcome(False, item.status, (Reason.NARR.code,
                                                   f"only the sender may cancel {ref}"))
        if self.closed:
            return NetOutcome(False, item.status, self._closed_reason())
        if item.status != "queued":
            return NetOutcome(False, item.status, (
                Reason.NARR.code, f"{ref} is {item.status}: only a queued item can be cancelled"))
        self.queues[item.sender].remove(ref)
        item.status = "cancelled"
        self._notice(now_us, item.sender, ref, "cancelled", "")
        self._release(item.sender, now_us)
        return NetOutcome(True, "cancelled")

    def add_positions(self, ref: str, positions: dict[str, int], now_us: int) -> None:
        """A clearing centre's net positions (the card switch's clearing day) join this
        system's positions, to settle at its next session; ``ref`` names the batch."""
        assert sum(positions.values()) == 0, f"{ref}: positions do not sum to zero"
        total = sum(v for v in positions.values() if v > 0)
        item = NetItem(ref, self.name, "positions", "", "", total, self.arrivals + 1, now_us,
                       status="netted", netted_us=now_us)
        self.arrivals += 1
        self.items[ref] = item
        for name, delta in sorted(positions.items()):
            self.positions[name] = self.positions.get(name, 0) + delta
            m = self.metrics[name]
            if delta < 0:
                m.netted_value_fen -= delta
                m.low_position_fen = min(m.low_position_fen, self.positions[name])
            else:
                m.received_value_fen += delta
        self.unsettled.append(ref)
        self.in_transit_fen += total
        self.in_transit.append((now_us, self.in_transit_fen))
        self._notice(now_us, "", ref, "netted", self.name)

    def return_item(self, ref: str, reason: tuple[str, str], now_us: int) -> NetOutcome:
        """退汇: the receiving bank sends a netted credit back as a new item."""
        item = self.items.get(ref)
        if item is None or item.status not in ("netted", "settled"):
            return NetOutcome(False, "unknown" if item is None else item.status, (
                Reason.NARR.code, f"only a netted item can be returned: {ref} is "
                                  f"{'unknown' if item is None else item.status}"))
        back = f"{ref}/return"
        outcome = self.submit(back, "ordinary_credit" if self.name == "BEPS" else "return",
                              item.receiver, item.sender, item.amount_fen, now_us,
                              item.payee, item.payer, original=ref)
        if outcome.ok:
            item.returned_by = back
            self._notice(now_us, item.sender, ref, "returned", f"{reason[0]} {reason[1]}")
        return outcome

    # ------------------------------------------------------------------ sessions

    def session_times(self) -> list[tuple[int, int]]:
        text = str(self.engine.params[f"{self.key}.sessions"])
        return [(int(t[:2]), int(t[3:5])) for t in text.split(",") if t.strip()]

    def advance(self, now_us: int) -> None:
        """Run the sessions whose time has come (only while HVPS is open and this system is
        not closed for maintenance; positions carry over nights, weekends, holidays and
        maintenance to the next session that runs)."""
        version = self.engine.params.version
        if (now_us < self._walked_until_us and version == self._walked_version
                and version == self._swept_version and self.pending_session is None
                and not self.awaiting):
            return  # (every step below would do nothing: asked before every item)
        if self.awaiting:
            self._expire(now_us)
        closed = self.closed
        if not closed and version != self._swept_version:
            # open (again): what waited behind a cap during maintenance nets now. Only a
            # parameter opens a system again, so the queues are swept once per parameters'
            # version, not on every item (every other change that lets a queued item fit
            # releases its queue where it happens): a sweep costs one look per participant
            self._swept_version = version
            for name in [n for n, q in self.queues.items() if q]:
                self._release(name, now_us)
        if (self.pending_session is not None and not closed
                and self.hvps.phase(now_us)[0] is PHASE_OPEN):
            self._try_session(self.pending_session, now_us)
        # the timetable is walked only once a session's time has come (or the parameters
        # changed): every session up to the last walk's time has been seen then
        if now_us < self._walked_until_us and version == self._walked_version:
            return
        self._walked_version = version
        self._walked_until_us = self.next_session_us(now_us) or 0
        today = _local_date(now_us)
        for days_back in (1, 0):
            day = today - dt.timedelta(days=days_back)
            for hh, mm in self.session_times():
                at = from_datetime(dt.datetime.combine(day, dt.time(hh, mm)))
                key = f"{day.isoformat()}T{hh:02d}:{mm:02d}"
                if at > now_us or key in self.sessions_done:
                    continue
                self.sessions_done.add(key)
                phase, _ = self.hvps.phase(at)
                if closed or phase is not PHASE_OPEN:
                    continue  # closed (night, weekend, holiday, maintenance): positions carry
                if self.pending_session is None:
                    self._try_session(key, now_us)

    def next_session_us(self, after_us: int) -> int | None:
        day = _local_date(after_us)
        for offset in range(0, 3):
            d = day + dt.timedelta(days=offset)
            for hh, mm in self.session_times():
                at = from_datetime(dt.datetime.combine(d, dt.time(hh, mm)))
                if at > after_us:
                    return at
        return None

    def session_refusal(self, now_us: int) -> str | None:
        """Why a session cannot run now (None: it can): it settles in HVPS while open."""
        if self.closed:
            return self._closed_reason()[1]
        if self.hvps.phase(now_us)[0] is not HvpsPhase.OPEN:
            return f"HVPS is not open: {self.name} positions settle in HVPS while it is open"
        return None

    def session_now(self, now_us: int) -> dict[str, Any]:
        """A session the operator runs now, out of the timetable (the one that waits for
        funds, if any): what it settled, or who is short (it then waits, as a scheduled
        session does), or nothing to settle."""
        refused = self.session_refusal(now_us)
        if refused is not None:  # (checked before logging too)
            return {"ok": False, "reason": refused}
        key = self.pending_session or \
            f"{to_beijing_naive(now_us).isoformat(timespec='seconds')}/operator"
        items, positions = len(self.unsettled), {n: p for n, p in self.positions.items() if p}
        self._try_session(key, now_us)
        ran = bool(positions or items)
        return {"ok": True, "key": key, "items": items if ran else 0, "positions": positions,
                "status": self.sessions[-1]["status"] if ran else "nothing to settle"}

    def _try_session(self, key: str, now_us: int) -> None:
        """One multilateral net settlement in HVPS: all or nothing."""
        positions = self.positions
        names = sorted(positions)
        pos = {n: p for n in names if (p := positions[n])}
        assert sum(pos.values()) == 0, f"{self.name} positions do not sum to zero"
        if not pos and not self.unsettled:
            self.pending_session = None
            return
        for n in sorted(self.earmarks):  # the earmarked funds pay this session's debits
            self._unearmark(n)
        hvps = self.hvps
        # each one's free balance, read once: nothing moves until the session posts
        free = {n: hvps._free(n) for n in pos}
        short = {}
        for n, p in pos.items():
            if p < 0:
                available = hvps._available(n, free[n])
                if available < -p:
                    short[n] = -p - available
        if short:
            self._re_earmark(now_us)
            self.pending_session = key
            status = "waiting: " + ", ".join(f"{n} short {format_fen(v)}"
                                             for n, v in sorted(short.items()))
            if not self.sessions or self.sessions[-1]["key"] != key:
                self.sessions.append({"key": key, "status": status, "at_us": now_us,
                                      "positions": pos})
            else:
                self.sessions[-1]["status"] = status
            return
        transfers: list[tuple[int, int, int]] = []
        for n in sorted(pos):  # draw credit where the balance alone is short
            need = -pos[n] - free[n]
            if need > 0:
                transfers += hvps._draw(n, need)
        clearing = self._clearing_id(PBOC)
        for n in sorted(pos):  # credits first ...
            if pos[n] > 0:
                settlement, reserve, _, _ = hvps._gross_ids(n)
                transfers += [(clearing, settlement, pos[n]),
                              (reserve, self._clearing_id(n), pos[n])]
        for n in sorted(pos):  # ... then debits: no account dips below its final balance
            if pos[n] < 0:
                settlement, reserve, _, _ = hvps._gross_ids(n)
                transfers += [(settlement, clearing, -pos[n]),
                              (self._clearing_id(n), reserve, -pos[n])]
        if transfers:
            result = self.engine.post(transfers, linked=True)
            assert result.all_done, result.failures()
        number = len([s for s in self.sessions if s["status"] == "settled"]) + 1
        if self.sessions and self.sessions[-1]["key"] == key:
            self.sessions.pop()
        self.sessions.append({"key": key, "status": "settled", "at_us": now_us,
                              "positions": pos, "items": len(self.unsettled)})
        items, notices = self.items, self.notices  # (_notice's tuples, appended here)
        for ref in self.unsettled:
            item = items[ref]
            item.status = "settled"
            item.settled_us = now_us
            item.session = number
            notices.append((now_us, item.sender, ref, "settled", key))
            if item.kind == "positions":
                self.settled_batches.append(ref)
        self.unsettled = []
        for n in names:
            positions[n] = 0
        self.in_transit_fen = 0
        self.in_transit.append((now_us, 0))
        self.pending_session = None
        for n in sorted(pos):
            self.hvps._repay(n)
        self._re_earmark(now_us)
        # funds arriving in central-bank money release the HVPS queues they now cover
        self.hvps.funds_arrived({n for n, p in pos.items() if p > 0}, now_us)
        queues = self.queues
        for n in names:  # every position is back to zero: the caps have room again
            if queues.get(n):  # (_release's own first test: most often nothing waits)
                self._release(n, now_us)

    def _clearing_id(self, book: str) -> int:
        """The id of this system's clearing account in ``book`` (the PBOC's, or a direct
        participant's): a session posts to each (accounts are never removed nor
        renumbered: kept once found)."""
        found = self._clearing_ids.get(book)
        if found is None:
            found = self._clearing_ids[book] = self.engine.registry.id(
                book, f"{self.key}_clearing")
        return found

    def _re_earmark(self, now_us: int) -> None:
        """Earmark the caps again after a session; a participant that can no longer fund
        its whole cap gets the cap its free funds allow (and is told)."""
        for n in sorted(self.earmark_backed):
            amount = min(self.caps[n], max(0, self.hvps._free(n)))
            if amount < self.caps[n]:
                self.caps[n] = max(amount, -self.positions[n])
                self._notice(now_us, n, "", "cap_reduced", format_fen(self.caps[n]))
            self._earmark(n, amount)

    # ------------------------------------------------------------------ notices and state

    def _notice(self, at_us: int, participant: str, ref: str, event: str, detail: str) -> None:
        self.notices.append((at_us, participant, ref, event, detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "positions": self.positions, "caps": self.caps,
            "items": [shallow(i) for i in self.items.values()],
            "queues": {k: list(v) for k, v in self.queues.items()},
            "metrics": {k: shallow(v) for k, v in sorted(self.metrics.items())},
            "sessions": self.sessions, "sessions_done": sorted(self.sessions_done),
            "pending_session": self.pending_session, "unsettled": self.unsettled,
            "arrivals": self.arrivals, "notices": self.notices, "in_transit": self.in_transit,
            "in_transit_fen": self.in_transit_fen,
            "earmark_backed": sorted(self.earmark_backed),
            "settled_batches": self.settled_batches,
            "earmarks": {k: list(v) for k, v in sorted(self.earmarks.items())},
        } | ({"awaiting": {k: list(v) for k, v in sorted(self.awaiting.items())}}
             if self.awaiting else {})  # absent when empty: older states hash the same

    def load_json(self, doc: dict[str, Any]) -> None:
        self._swept_version = -1
        self.positions = {k: int(v) for k, v in doc["positions"].items()}
        self.caps = {k: int(v) for k, v in doc["caps"].items()}
        self.items = {}
        for d in doc["items"]:
            if d["reason"] is not None:
                d["reason"] = tuple(d["reason"])
            self.items[d["ref"]] = NetItem(**d)
        self.queues = {k: deque(v) for k, v in doc["queues"].items()}
        self.metrics = {k: NetMetrics(**v) for k, v in doc["metrics"].items()}
        self.sessions = doc["sessions"]
        self.sessions_done = set(doc["sessions_done"])
        self.pending_session = doc["pending_session"]
        self.unsettled = list(doc["unsettled"])
        self.arrivals = int(doc["arrivals"])
        self.notices = [(int(a), str(p), str(r), str(e), str(d))
                        for a, p, r, e, d in doc["notices"]]
        self.in_transit = [(int(a), int(b)) for a, b in doc["in_transit"]]
        self.in_transit_fen = int(doc["in_transit_fen"])
        self.earmark_backed = set(doc["earmark_backed"])
        self.settled_batches = list(doc.get("settled_batches", []))
        self.earmarks = {k: (int(v[0]), int(v[1])) for k, v in doc["earmarks"].items()}
        self.awaiting = {k: (int(v[0]), str(v[1]))
                         for k, v in doc.get("awaiting", {}).items()}


def _local_date(at_us: int) -> dt.date:
    return to_beijing_naive(at_us).date()


__all__ = [
    "ASKING",
    "AWAITING",
    "BEPS_KINDS",
    "CONFIRM_REJECT_CODES",
    "RECEIPT_REJECT_CODES",
    "SYSTEMS",
    "US_PER_MINUTE",
    "Asking",
    "NetItem",
    "NetNotice",
    "NetOutcome",
    "NetSystem",
    "SimAccount",
]
