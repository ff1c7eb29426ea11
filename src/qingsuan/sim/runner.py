"""Play a scenario on the engine's virtual clock and report its outcome (SCENARIO.md).

The runner builds the world in the ledger (the PBOC's book with every participant's
settlement account, each participant's book with its mirror of that account, its customers
and its ATM cash), books the opening balances, then fires the scripted events in time order
(ties in file order) through the scheduler, each as logged engine commands.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qingsuan.banks.routing import Route, route_transfer
from qingsuan.calendar import HvpsPhase
from qingsuan.cards.iso8583 import ResponseCode
from qingsuan.cards.switch import SWITCH, CardSwitch, CardTxn
from qingsuan.cards.switch import Card as CardRecord
from qingsuan.cards.switch import Terminal as TerminalRecord
from qingsuan.clock import (
    Scheduler,
    Timer,
    VirtualClock,
    format_time,
    from_datetime,
    to_beijing,
    to_beijing_naive,
)
from qingsuan.cnaps.hvps import Notice, Priority
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import AccountSpec, Engine
from qingsuan.ledger import (
    AccountFlags,
    NormalSide,
    PendingState,
    Transfer,
    TransferFlags,
    TransferResult,
)
from qingsuan.ledger.registry import AccountRegistry
from qingsuan.money import format_fen
from qingsuan.reasons import Reason
from qingsuan.sim.scenario import Event, Scenario, hash_pin

PBOC = "PBOC"
MNO = AccountFlags.MUST_NOT_OVERDRAW

_RESPONSE_MEANINGS: dict[str, str] = {c.value: c.meaning for c in ResponseCode}
#: the card switch's bank code as a CNAPS participant (category 903: the card switch)
SWITCH_CODE = "903100000001"

_REASONS: dict[TransferResult, Reason] = {
    TransferResult.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS: Reason.AM04,
    TransferResult.CREDIT_ACCOUNT_INSUFFICIENT_FUNDS: Reason.AM04,
    TransferResult.DEBIT_ACCOUNT_CLOSED: Reason.AC04,
    TransferResult.CREDIT_ACCOUNT_CLOSED: Reason.AC04,
    TransferResult.DEBIT_ACCOUNT_NOT_FOUND: Reason.AC01,
    TransferResult.CREDIT_ACCOUNT_NOT_FOUND: Reason.AC01,
    TransferResult.AMOUNT_TOO_LARGE: Reason.AM02,
}


@dataclass
class PaymentRecord:
    """A payment's fate as the outcome reports it."""

    kind: str
    system: str
    status: str = "accepted"
    response_code: str | None = None
    reason: dict[str, str] | None = None
    history: list[tuple[int, str]] = field(default_factory=list)
    #: a payment the bank holds until HVPS opens: when it will be sent
    held_until: str | None = None
    #: a card transaction the switch approved for an issuer that was down (代授权)
    stand_in: bool = False

    def move(self, at_us: int, status: str) -> None:
        self.status = status
        self.history.append((at_us, status))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": self.kind, "system": self.system, "status": self.status,
            "response_code": self.response_code, "reason": self.reason,
            "history": [{"at": format_time(at), "status": s} for at, s in self.history],
        }
        if self.held_until is not None:
            doc["held_until"] = self.held_until
        if self.stand_in:
            doc["stand_in"] = True
        return doc


@dataclass(frozen=True, slots=True)
class Posting:
    """One ledger transfer as people read it: in which book, from which account to which."""

    at_us: int
    book: str
    debit: str
    credit: str
    amount_fen: int
    debit_id: int = 0
    credit_id: int = 0
    #: "posted", "pending" (a reservation), "post" (a reservation booked), "void"
    phase: str = "posted"


StepHook = Callable[[Event, list[Posting], "Runner"], None]


class Runner:
    def __init__(self, scenario: Scenario, *, store: str | None = None,
                 on_step: StepHook | None = None) -> None:
        """``store``: the command log url; default an embedded SQLite file in a temporary
        directory (the durable default, thrown away after the run)."""
        self.scenario = scenario
        self.clock = VirtualClock(scenario.start_us)
        self.scheduler = Scheduler(self.clock)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qingsuan-run-")
            store = str(Path(self._tmp.name) / "run.db")
        self.cnaps = Cnaps()
        self.switch = CardSwitch(self.cnaps)
        self.engine = Engine.open(store, self.clock, systems=[self.cnaps, self.switch])
        self._stan = 0
        self._card_keys: dict[str, str] = {}
        self._card_seen = 0
        self.params = self.engine.params
        self.actions: list[dict[str, Any]] = []
        #: HVPS notices seen during the current step (for narration)
        self.step_notices: list[Notice] = []
        self._notices_seen = 0
        self._wakeup: Timer | None = None
        #: event id -> (payer kind, payer, payee kind, payee, pending reservation id)
        self._hvps_refs: dict[str, dict[str, Any]] = {}
        self._net_refs: dict[str, dict[str, Any]] = {}
        #: transfer id -> why the bank routed it as it did (narration)
        self.routes: dict[str, str] = {}
        #: payments held for HVPS's next opening
        self._held: list[Event] = []
        self._net_seen: dict[str, int] = {}
        self.payments: dict[str, PaymentRecord] = {}
        self.inquiries: dict[str, Any] = {}
        self.on_step = on_step
        self._next_transfer_id = 1
        self._seen_transfers = 0
        self._opening_settlement_fen = 0
        self._opening_deposits_fen = 0

    # ------------------------------------------------------------------ world

    def build_world(self) -> None:
        sc = self.scenario
        self.engine.set_params(dict(sc.params.written()))  # logged: replay sees them too
        for p in sc.participants:
            kind = (ParticipantKind.PAYMENT_INSTITUTION if p.kind == "payment_institution"
                    else ParticipantKind.DIRECT_BANK)
            outcome = self.cnaps.join(p.name, p.code, kind)
            assert outcome.ok, outcome
        if self.has_switch:  # the card switch is a CNAPS participant of its own
            joined = self.cnaps.join(SWITCH, SWITCH_CODE, ParticipantKind.CARD_SWITCH)
            assert joined.ok, joined
        specs: list[AccountSpec] = []
        for p in sc.participants:
            specs += [AccountSpec(p.name, "equity", NormalSide.CREDIT),
                      AccountSpec(p.name, "other_assets", NormalSide.DEBIT),
                      AccountSpec(p.name, "fee_income", NormalSide.CREDIT),
                      AccountSpec(p.name, "vault_cash", NormalSide.DEBIT, MNO),
                      # the card switch's clearing with this bank (used by the card issue)
                      AccountSpec(p.name, "due_to_switch", NormalSide.CREDIT),
                      AccountSpec(p.name, "due_from_switch", NormalSide.DEBIT),
                      AccountSpec(p.name, "due_to_merchants", NormalSide.CREDIT),
                      AccountSpec(p.name, "interchange_income", NormalSide.CREDIT),
                      AccountSpec(p.name, "interchange_expense", NormalSide.DEBIT)]
        if self.has_switch:
            specs += [AccountSpec(SWITCH, "equity", NormalSide.CREDIT),
                      AccountSpec(SWITCH, "fee_income", NormalSide.CREDIT)]
        specs += [AccountSpec(c.bank, f"customer:{c.id}", NormalSide.CREDIT,
                              MNO | AccountFlags.CLOSED if c.closed else MNO,
                              overdraft_limit_fen=c.credit_limit_fen)
                  for c in sc.customers]
        specs += [AccountSpec(t.bank, f"atm_cash:{t.id}", NormalSide.DEBIT, MNO)
                  for t in sc.terminals if t.kind == "atm"]
        self.engine.open_named(specs)
        opening: list[Transfer] = []
        for p in sc.participants:
            if p.settlement_balance_fen:
                opening.append(self._t(PBOC, "issued", f"settlement:{p.name}",
                                       p.settlement_balance_fen))
                opening.append(self._t(p.name, "reserve_at_pboc", "equity",
                                       p.settlement_balance_fen))
        for c in sc.customers:
            if c.balance_fen:
                opening.append(self._t(c.bank, "other_assets", f"customer:{c.id}",
                                       c.balance_fen))
        for t in sc.terminals:
            if t.kind == "atm" and t.cash_fen:
                opening.append(self._t(t.bank, f"atm_cash:{t.id}", "equity", t.cash_fen))
        if opening:
            receipt = self.engine.submit_transfers(opening)
            assert receipt.results.all_done, receipt.results.failures()
        for p in sc.participants:
            if p.collateral_fen:
                self.cnaps.pledge(p.name, p.collateral_fen)
            for key, cap in sorted(p.caps_fen.items()):
                system, _, backing = key.partition("_")
                capped = self.cnaps.set_cap(system.upper(), p.name, cap,
                                            "earmark" if backing else "collateral")
                assert capped.ok, (p.name, key, capped)
        if sc.cards or sc.terminals:
            bank_of = {c.id: c.bank for c in sc.customers}
            self.switch.setup(
                [CardRecord(c.pan, bank_of[c.account], f"{bank_of[c.account]}:customer:"
                            f"{c.account}", c.kind, c.pin_hash.hex() if c.pin_hash else None)
                 for c in sc.cards],
                [TerminalRecord(t.id, t.kind, t.bank,
                                f"{t.bank}:customer:{t.merchant}" if t.merchant else None,
                                self._mdr(t.merchant))
                 for t in sc.terminals])
        if sc.customers:
            self.cnaps.register_accounts([
                SimAccount(c.bank, c.account, c.name, f"{c.bank}:customer:{c.id}", c.closed)
                for c in sc.customers])
        self._seen_transfers = self.engine.ledger.transfer_count
        self._opening_settlement_fen = sum(p.settlement_balance_fen for p in sc.participants)
        self._opening_deposits_fen = sum(c.balance_fen for c in sc.customers)

    @property
    def has_switch(self) -> bool:
        return bool(self.scenario.cards or self.scenario.terminals)

    @property
    def settling_names(self) -> list[str]:
        """Every participant with a settlement account: the banks, and the card switch."""
        return [p.name for p in self.scenario.participants] + (
            [SWITCH] if self.has_switch else [])

    def _mdr(self, merchant: str | None) -> int:
        if merchant is None:
            return 0
        block = self.scenario.customer(merchant).merchant
        return block.mdr_ppm if block is not None else 0

    @property
    def registry(self) -> AccountRegistry:
        return self.engine.registry

    def _t(self, book: str, debit: str, credit: str, amount_fen: int,
           flags: TransferFlags = TransferFlags.NONE) -> Transfer:
        tid = self._next_transfer_id
        self._next_transfer_id += 1
        return Transfer(tid, self.registry.id(book, debit), self.registry.id(book, credit),
                        amount_fen, flags)

    def _reserve(self, book: str, debit: str, credit: str, amount_fen: int) -> Transfer:
        """A reservation (pending transfer): the customer can no longer spend the funds."""
        return self._t(book, debit, credit, amount_fen, TransferFlags.PENDING)

    def _settle_reservation(self, reserve_id: int, *, post: bool) -> Transfer:
        """Book (post) or release (void) a reservation made by :meth:`_reserve`."""
        tid = self._next_transfer_id
        self._next_transfer_id += 1
        flag = TransferFlags.POST_PENDING if post else TransferFlags.VOID_PENDING
        return Transfer(tid, 0, 0, 0, flag, pending_id=reserve_id)

    # ------------------------------------------------------------------ running

    def run(self, clearing_dir: Path | None = None) -> dict[str, Any]:
        self.build_world()
        for event in self.scenario.events:
            if event.at_us > self.scenario.run_until_us:
                continue  # after the horizon: not run (SCENARIO.md)
            self.scheduler.schedule(event.at_us, _bind(self._fire, event), priority=event.order)
        self._schedule_wakeup()
        self.scheduler.run_until(self.scenario.run_until_us)
        outcome = self.outcome()
        if clearing_dir is not None:
            clearing_dir.mkdir(parents=True, exist_ok=True)
            for name, text in self.clearing_files().items():
                (clearing_dir / name).write_text(text, encoding="utf-8")
        self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        return outcome

    def _fire(self, event: Event) -> None:
        self.step_notices = []
        handler = getattr(self, f"_do_{event.do}")
        handler(event)
        self._follow_notices()
        self._follow_net_notices()
        self._schedule_wakeup()
        if self.on_step is not None:
            self.on_step(event, self._new_postings(), self)

    def _schedule_wakeup(self) -> None:
        """Tick the engine at HVPS's next cut-off, close or periodic gridlock attempt."""
        if not self.cnaps.directory:
            return
        now = self.clock.now_us()
        candidates = [self.cnaps.hvps.next_wakeup_us(now), self.switch.next_cutoff_us(now),
                      self.switch.next_preauth_expiry_us(now)] + [
            net.next_session_us(now) for net in self.cnaps.net.values()]
        future = [t for t in candidates if t is not None]
        nxt = min(future) if future else None
        if nxt is None or nxt > self.scenario.run_until_us:
            return
        if self._wakeup is not None and not self._wakeup.cancelled and \
                self._wakeup.seq != -1 and self._wakeup.at_us <= nxt:
            return
        if self._wakeup is not None:
            self.scheduler.cancel(self._wakeup)
        # ticks fire after the events of the same moment (priority after every event)
        self._wakeup = self.scheduler.schedule(nxt, self._tick, priority=1 << 40)

    def _tick(self) -> None:
        self.step_notices = []
        self._wakeup = None
        self.engine.tick()
        self._follow_notices()
        self._follow_net_notices()
        self._schedule_wakeup()
        if self.on_step is not None:
            postings = self._new_postings()
            if postings:
                tick = Event(self.clock.now_us(), "tick", -1, 0, {})
                self.on_step(tick, postings, self)

    def _new_postings(self) -> list[Posting]:
        ledger = self.engine.ledger
        out = []
        for rec in ledger.transfers_since(self._seen_transfers):
            t = rec.transfer
            debit_name = self.registry.name(t.debit_account_id)
            book, debit = debit_name.split(":", 1)
            credit = self.registry.name(t.credit_account_id).split(":", 1)[1]
            phase = ("pending" if t.flags & TransferFlags.PENDING else
                     "post" if t.flags & TransferFlags.POST_PENDING else
                     "void" if t.flags & TransferFlags.VOID_PENDING else "posted")
            out.append(Posting(rec.timestamp_us, book, debit, credit, t.amount_fen,
                               t.debit_account_id, t.credit_account_id, phase))
        self._seen_transfers = ledger.transfer_count
        return out

    # ------------------------------------------------------------------ HVPS events

    def _do_hvps_payment(self, event: Event) -> None:
        """The sending bank accepts its customer's order (reserving the funds) or its own
        payment, then sends it to HVPS (hvps.111 customer / hvps.112 institution)."""
        f = event.fields
        now = self.clock.now_us()
        payer_kind, payer = f["payer"]
        payee_kind, payee = f["payee"]
        kind = "customer" if payer_kind == "customer" else "institution"
        record = self.payments.get(f["id"]) or PaymentRecord(event.do, "HVPS")
        record.system = "HVPS"
        self.payments[f["id"]] = record
        sender, receiver = f["sender"], f["receiver"]
        amount = f["amount_fen"]
        reserve_id = f.get("reserve_id", self._next_transfer_id)
        if "reserve_id" not in f:  # (a held payment's funds are reserved already)
            if kind == "customer":
                hold = self._reserve(sender, f"customer:{payer}", "hvps_outgoing", amount)
            else:
                hold = self._t(sender, "equity", "hvps_outgoing", amount)
            code = self.engine.submit_transfers([hold]).results[0]
            if not code.done:
                record.move(now, "rejected")
                record.reason = Reason.AM04.detail(
                    f"insufficient funds: {payer} at {sender} cannot pay {format_fen(amount)}")
                return
            record.move(now, "accepted")
        self._hvps_refs[f["id"]] = {"id": f["id"], "kind": kind, "payer": payer, "payee": payee,
                                    "payee_kind": payee_kind, "sender": sender,
                                    "receiver": receiver, "amount": amount,
                                    "reserve_id": reserve_id}
        self.cnaps.submit_hvps(f["id"], sender, receiver, amount,
                               Priority.parse(f["priority"]), kind, debtor=payer, creditor=payee)

    def _follow_notices(self) -> None:
        """Act on what HVPS told the banks: settle, credit, release or return the funds."""
        notices = self.cnaps.hvps.notices
        while self._notices_seen < len(notices):
            n = notices[self._notices_seen]
            self._notices_seen += 1
            self.step_notices.append(n)
            ref = self._hvps_refs.get(n.ref)
            record = self.payments.get(n.ref)
            if ref is None or record is None:
                continue
            if n.event == "queued" and n.participant == ref["sender"]:
                record.move(n.at_us, "queued")
            elif n.event == "settled" and n.participant == ref["sender"]:
                record.move(n.at_us, "settled")
                self._complete(ref, record, n.at_us)
            elif n.event in ("rejected", "returned", "cancelled") and \
                    n.participant == ref["sender"]:
                pay = self.cnaps.hvps.payments[n.ref]
                self._unwind(ref)
                record.move(n.at_us, n.event)
                if pay.reason is not None:
                    code, message = pay.reason
                    record.reason = {"code": code, "message": message}

    def _follow_card_notices(self) -> None:
        by_key = {key: pid for pid, key in self._card_keys.items()}
        while self._card_seen < len(self.switch.notices):
            at_us, key, event = self.switch.notices[self._card_seen]
            self._card_seen += 1
            pid = by_key.get(key)
            if pid is None:
                continue
            status = self.payments[pid].status
            if status in ("approved", "accepted") or (status == "cleared" and
                                                      event == "settled"):
                self.payments[pid].move(at_us, event)

    def _card_settled(self, at_us: int, batch: str) -> None:
        day = batch.split(":", 1)[1]
        for pid, key in self._card_keys.items():
            txn = self.switch.txns.get(key)
            if txn is not None and txn.clearing_date == day and \
                    self.payments[pid].status == "cleared":
                self.payments[pid].move(at_us, "settled")

    def _follow_net_notices(self) -> None:
        self._follow_card_notices()
        for name, net in self.cnaps.net.items():
            seen = self._net_seen.get(name, 0)
            while seen < len(net.notices):
                at_us, participant, ref_id, event, detail = net.notices[seen]
                seen += 1
                self.step_notices.append(Notice(at_us, participant, ref_id, f"{name}:{event}",
                                                detail))
                if name == "CUPS" and event == "settled" and ref_id.startswith("cards:"):
                    self._card_settled(at_us, ref_id)
                ref = self._net_refs.get(ref_id)
                record = self.payments.get(ref_id)
                if ref is None or record is None:
                    continue
                if participant != ref["sender"] and event != "incoming":
                    continue
                if event == "queued":
                    record.move(at_us, "queued")
                elif event == "netted":
                    record.move(at_us, "netted")
                    self._net_deliver(ref, record, at_us)
                elif event == "settled" and record.status != "returned":
                    record.move(at_us, "settled")
                elif event in ("rejected", "cancelled"):
                    item = net.items[ref_id]
                    self._net_unwind(ref)
                    record.move(at_us, event)
                    if item.reason is not None:
                        record.reason = {"code": item.reason[0], "message": item.reason[1]}
            self._net_seen[name] = seen

    def _net_deliver(self, ref: dict[str, Any], record: PaymentRecord, at_us: int) -> None:
        """The item is netted: the payer's bank books the debit, the payee's bank credits
        its customer, or returns the credit (退汇) if it has no such account."""
        key = ref["system"].lower()
        transfers: list[Transfer] = []
        if ref["debit"] and not ref.get("reserved"):
            transfers.append(self._t(ref["sender"], f"customer:{ref['payer_id']}",
                                     f"{key}_clearing", ref["amount"]))
        else:
            transfers.append(self._settle_reservation(ref["reserve_id"], post=True))
        payee_id, problem = self._resolve_payee(
            ref["receiver"],
            ref["payee_id"] or f"{ref['receiver']}|{ref['payee_account']}|{ref['payee_name']}")
        if problem is None:
            transfers.append(self._t(ref["receiver"], f"{key}_clearing",
                                     f"customer:{payee_id}", ref["amount"]))
        result = self.engine.submit_transfers(transfers).results
        assert result.all_done, result.failures()
        if problem is None:
            record.move(at_us, "credited")
            return
        # the receiving bank cannot apply it: it sends the credit back (退汇)
        outcome = self.cnaps.return_net(ref["system"], ref["id"], *problem)
        if outcome.ok:
            back = self._t(ref["sender"], f"{key}_clearing", f"customer:{ref['payer_id']}",
                           ref["amount"])
            result = self.engine.submit_transfers([back]).results
            assert result.all_done, result.failures()
            record.move(self.clock.now_us(), "returned")
            record.reason = {"code": problem[0], "message": f"{problem[1]}: returned (退汇) to "
                                                            f"{ref['payer_id']}"}

    def _net_unwind(self, ref: dict[str, Any]) -> None:
        if ref["debit"] and not ref.get("reserved"):
            return  # nothing was reserved: the payer's bank debits only on its receipt
        void = self._settle_reservation(ref["reserve_id"], post=False)
        result = self.engine.submit_transfers([void]).results
        assert result.all_done, result.failures()

    def _do_beps_payment(self, event: Event) -> None:
        self._net_payment(event)

    def _do_ibps_payment(self, event: Event) -> None:
        self._net_payment(event)

    def _net_payment(self, event: Event) -> None:
        f = event.fields
        now = self.clock.now_us()
        system, kind, amount = f["system"], f["kind"], f["amount_fen"]
        _, sender, payer_account, payer_id = f["payer"]
        _payee_kind, receiver, payee_account, payee_id = f["payee"]
        record = self.payments.get(f["id"]) or PaymentRecord(event.do, system)
        record.system = system
        self.payments[f["id"]] = record
        debit = kind.endswith("_debit")
        ref = {"id": f["id"], "system": system, "sender": sender, "receiver": receiver,
               "payee_name": f.get("payee_name") or "",
               "amount": amount, "payer_id": payer_id, "payee_id": payee_id,
               "payee_account": payee_account, "debit": debit,
               "reserve_id": self._next_transfer_id}
        if not debit:
            hold = self._reserve(sender, f"customer:{payer_id}", f"{system.lower()}_clearing",
                                 amount)
            if not self.engine.submit_transfers([hold]).results[0].done:
                record.move(now, "rejected")
                record.reason = Reason.AM04.detail(
                    f"insufficient funds: {payer_id} at {sender} cannot pay {format_fen(amount)}")
                return
        record.move(now, "accepted")
        self._net_refs[f["id"]] = ref
        outcome = self.cnaps.submit_net(system, f["id"], kind, sender, receiver, amount,
                                        payer_account, payee_account, f.get("payee_name"))
        if debit and outcome.status == "queued":
            # the payer's bank has given its receipt: it holds the funds until netting
            ref["reserve_id"] = self._next_transfer_id
            hold = self._reserve(sender, f"customer:{payer_id}", f"{system.lower()}_clearing",
                                 amount)
            held = self.engine.submit_transfers([hold]).results[0]
            assert held.done, held
            ref["reserved"] = True

    def _do_debit_agreement(self, event: Event) -> None:
        f = event.fields
        outcome = self.cnaps.debit_agreement(f["payer"], f["payee"])
        self._action(event, outcome.ok, None)

    def _do_ibps_account_inquiry(self, event: Event) -> None:
        f = event.fields
        answer = self.cnaps.account_inquiry(f["bank"], f["account"], f["name"])
        self.inquiries[f["id"]] = {"kind": "ibps_account_inquiry", "from": f["asker"],
                                   "bank": f["bank"], "account": f["account"], **answer}

    def _resolve_payee(self, bank: str, payee: str) -> tuple[str | None, tuple[str, str] | None]:
        """The receiving bank looks the payee up in its books: (customer id, None), or
        (None, (reason code, message)) when it must return the payment: no such account
        (AC01), a closed account (AC04), or the name does not match (BE01, when
        ``banks.name_check`` is on)."""
        if "|" not in payee:
            customer = self.scenario.customer(payee)
            account, name = customer.account, customer.name
        else:
            _, account, name = payee.split("|", 2)
        found = next((c for c in self.scenario.customers
                      if c.bank == bank and c.account == account), None)
        if found is None:
            return None, (Reason.AC01.code, f"no account {account} at {bank}")
        if found.closed:
            return None, (Reason.AC04.code, f"account {account} at {bank} is closed")
        if self.params["banks.name_check"] and name and name != found.name:
            return None, (Reason.BE01.code, f"the name {name!r} does not match account "
                                            f"{account} at {bank}")
        return found.id, None

    def _complete(self, ref: dict[str, Any], record: PaymentRecord, at_us: int) -> None:
        receiver, amount = ref["receiver"], ref["amount"]
        if ref["kind"] == "return":  # a return came back: the payer gets its money again
            original = self.payments[ref["original"]]
            result = self.engine.submit_transfers([self._t(
                receiver, "hvps_incoming", f"customer:{ref['payee']}", amount)]).results
            assert result.all_done, result.failures()
            original.move(at_us, "returned")
            return
        transfers = []
        problem = None
        if ref["kind"] == "customer":
            transfers.append(self._settle_reservation(ref["reserve_id"], post=True))
            payee_id, problem = self._resolve_payee(receiver, ref["payee"])
            if problem is None:
                transfers.append(self._t(receiver, "hvps_incoming", f"customer:{payee_id}",
                                         amount))
        else:
            transfers.append(self._t(receiver, "hvps_incoming", "equity", amount))
        result = self.engine.submit_transfers(transfers).results
        assert result.all_done, result.failures()
        if problem is not None:
            self._hvps_return(ref, record, problem, at_us)
        elif ref["kind"] == "customer":
            record.move(at_us, "credited")

    def _hvps_return(self, ref: dict[str, Any], record: PaymentRecord,
                     problem: tuple[str, str], at_us: int) -> None:
        """退汇 through HVPS: the receiving bank sends the money back as a new payment (at
        the correction level, ahead of its own queue), referencing the original."""
        back = f"{ref['id']}/return"
        receiver, sender, amount = ref["receiver"], ref["sender"], ref["amount"]
        result = self.engine.submit_transfers([self._t(
            receiver, "hvps_incoming", "hvps_outgoing", amount)]).results
        assert result.all_done, result.failures()
        record.reason = {"code": problem[0], "message": f"{problem[1]}: returned (退汇)"}
        self._hvps_refs[back] = {"id": back, "kind": "return", "payer": "", "payee":
                                 ref["payer"], "payee_kind": "customer", "sender": receiver,
                                 "receiver": sender, "amount": amount, "reserve_id": 0,
                                 "original": ref["id"]}
        self.payments[back] = PaymentRecord("return", "HVPS")
        self.payments[back].move(at_us, "accepted")
        self.cnaps.submit_hvps(back, receiver, sender, amount, Priority.CORRECTION, "customer")

    def _unwind(self, ref: dict[str, Any]) -> None:
        """The payment will not happen: give the payer its money back."""
        if ref["kind"] == "customer":
            transfers = [self._settle_reservation(ref["reserve_id"], post=False)]
        else:
            transfers = [self._t(ref["sender"], "hvps_outgoing", "equity", ref["amount"])]
        result = self.engine.submit_transfers(transfers).results
        assert result.all_done, result.failures()

    def _do_cancel(self, event: Event) -> None:
        target = event.fields["target"]
        ref = self._hvps_refs.get(target)
        if ref is None:  # the bank refused it before HVPS saw it
            self._action(event, False, Reason.NARR.detail(f"{target} never reached HVPS"))
            return
        outcome = self.cnaps.cancel(target, ref["sender"])
        self._action(event, outcome.ok, None if outcome.reason is None else
                     {"code": outcome.reason[0], "message": outcome.reason[1]})

    def _do_reprioritise(self, event: Event) -> None:
        target = event.fields["target"]
        ref = self._hvps_refs.get(target)
        if ref is None:
            self._action(event, False, Reason.NARR.detail(f"{target} never reached HVPS"))
            return
        outcome = self.cnaps.reprioritise(target, Priority.parse(event.fields["priority"]),
                                          ref["sender"])
        self._action(event, outcome.ok, None if outcome.reason is None else
                     {"code": outcome.reason[0], "message": outcome.reason[1]})

    def _do_pledge(self, event: Event) -> None:
        f = event.fields
        outcome = self.cnaps.pledge(f["participant"], f["value_fen"], f["haircut_ppm"])
        self._action(event, outcome.ok, None)

    def _do_release(self, event: Event) -> None:
        f = event.fields
        outcome = self.cnaps.release(f["participant"], f["value_fen"], f["haircut_ppm"])
        self._action(event, outcome.ok, None if outcome.reason is None else
                     {"code": outcome.reason[0], "message": outcome.reason[1]})

    def _action(self, event: Event, ok: bool, reason: dict[str, str] | None) -> None:
        doc: dict[str, Any] = {"at": format_time(event.at_us), "do": event.do, "ok": ok,
                               "reason": reason}
        for key in ("target", "participant", "priority", "host", "mode"):
            if key in event.fields:
                doc[key] = event.fields[key]
        if "value_fen" in event.fields:
            doc["value"] = format_fen(event.fields["value_fen"])
        self.actions.append(doc)

    # ------------------------------------------------------------------ card events

    def _card_request(self, event: Event, proc: str, mti: str = "0200") -> None:
        f = event.fields
        now = self.clock.now_us()
        local = to_beijing(now)
        self._stan += 1
        terminal = self._terminal(f["terminal"])
        fields = {"t": mti, "2": f["card"], "3": f"{proc}0000",
                  "4": f"{f['amount_fen']:012d}", "7": local.strftime("%m%d%H%M%S"),
                  "11": f"{self._stan:06d}", "32": terminal.bank if terminal else "",
                  "41": f["terminal"], "49": "156", "37": f"{self._stan:012d}"}
        if f["pin"] is not None:  # the terminal sends the PIN's hash, never the PIN
            fields["pin_hash"] = hash_pin(f["card"], f["pin"]).hex()
        answer = self.switch.request(fields)
        rc = answer["39"]
        if event.do == "atm_balance_inquiry":
            self.inquiries[f["id"]] = {"kind": event.do, "response_code": rc,
                                       "balance": answer.get("54")}
            return
        self._card_answer(event, answer)

    def _card_answer(self, event: Event, answer: dict[str, str]) -> None:
        """The acquirer's record of a card transaction from the switch's answer."""
        rc = answer["39"]
        record = PaymentRecord(event.do, "CUPS", response_code=rc)
        self.payments[event.fields["id"]] = record
        txn = None
        if "key" in answer:  # the switch keeps it (approved or declined)
            self._card_keys[event.fields["id"]] = answer["key"]
            txn = self.switch.txns.get(answer["key"])
        now = self.clock.now_us()
        timeout_s = int(self.params["cards.issuer_timeout"])
        if rc in ("91", "68") or (txn is not None and txn.stand_in):
            now += timeout_s * 1_000_000  # the switch waited for the issuer in vain
        if rc == "00":
            record.move(now, "approved")
            record.stand_in = txn is not None and txn.stand_in
            return
        record.move(now, "declined")
        message = _RESPONSE_MEANINGS.get(rc, "declined")
        issuer = txn.issuer if txn is not None else None
        if rc == "91" and issuer:
            message += f": {issuer} did not answer within {timeout_s} s (cards.issuer_timeout)"
        elif rc == "68" and txn is not None:
            message += f": {issuer}'s answer ({txn.late_rc}) came after {timeout_s} s"
            if txn.late_rc == "00":
                message += "; the switch reversed it at the issuer (冲正)"
        elif rc == "12" and event.do in ("preauth_cancel", "preauth_completion"):
            held = self.switch.txns.get(self._card_keys.get(event.fields["target"], ""))
            if held is not None and held.status != "authorised":
                message = (f"invalid transaction: the pre-authorisation "
                           f"{event.fields['target']} is {held.status}")

        record.reason = {"code": rc, "message": message}

    def _do_atm_withdrawal(self, event: Event) -> None:
        self._card_request(event, "01")

    def _do_pos_purchase(self, event: Event) -> None:
        self._card_request(event, "00")

    def _do_atm_balance_inquiry(self, event: Event) -> None:
        self._card_request(event, "31")

    def _do_preauth(self, event: Event) -> None:
        """预授权 (0100, processing code 03): the issuer holds the amount; the record moves
        on to "completed", "cancelled" or "expired" when the switch says so."""
        self._card_request(event, "03", "0100")

    def _terminal(self, terminal_id: str) -> Any:
        """The scenario's terminal of that id, if any."""
        return next((t for t in self.scenario.terminals if t.id == terminal_id), None)

    def _linked_request(self, event: Event, mti: str, proc: str
                        ) -> tuple[dict[str, str], CardTxn | None]:
        """The fields of a request naming the card transaction ``target`` (a refund, a
        pre-authorisation's cancel or completion), sent from that transaction's terminal;
        and the transaction, if the switch has it."""
        key = self._card_keys.get(event.fields["target"], "")
        original = self.switch.txns.get(key)  # from the terminal of the original
        terminal_id = original.terminal if original is not None else ""
        terminal = self._terminal(terminal_id)
        self._stan += 1
        fields = {"t": mti, "3": f"{proc}0000",
                  "7": to_beijing(self.clock.now_us()).strftime("%m%d%H%M%S"),
                  "11": f"{self._stan:06d}", "32": terminal.bank if terminal else "",
                  "41": terminal_id, "37": f"{self._stan:012d}", "original_key": key}
        return fields, original

    def _preauth_followup(self, event: Event, mti: str, proc: str, amount_fen: int | None
                          ) -> dict[str, str]:
        """A cancel or completion from the terminal of the pre-authorisation it names."""
        fields, original = self._linked_request(event, mti, proc)
        fields["49"] = "156"
        if original is not None:
            fields["2"] = original.card
        if amount_fen is not None:
            fields["4"] = f"{amount_fen:012d}"
            fields["25"] = "06"
        elif original is not None:
            fields["4"] = f"{original.amount_fen:012d}"
        return self.switch.request(fields)

    def _do_preauth_cancel(self, event: Event) -> None:
        """预授权撤销 (0100, processing code 20): the hotel releases the hold."""
        self._card_answer(event, self._preauth_followup(event, "0100", "20", None))

    def _do_preauth_completion(self, event: Event) -> None:
        """预授权完成 (0200, processing code 00, condition code 06): a new transaction that
        posts the hold and clears like a purchase."""
        self._card_answer(event, self._preauth_followup(event, "0200", "00",
                                                        event.fields["amount_fen"]))

    def _do_reversal(self, event: Event) -> None:
        f = event.fields
        target = f["target"]
        original = self.payments.get(target)
        key = self._card_keys.get(target, "")
        self._stan += 1
        answer = self.switch.request({"t": "0400", "11": f"{self._stan:06d}",
                                      "original_key": key})
        rc = answer["39"]
        self._action(event, rc == "00", None if rc == "00" else
                     {"code": rc, "message": _RESPONSE_MEANINGS.get(rc, "")})
        if rc == "00" and original is not None and original.status == "approved":
            original.move(self.clock.now_us(), "reversed")

    def clearing_files(self) -> dict[str, str]:
        """Each participant's clearing file (清算文件) of each closed clearing day, by file
        name (``PARTICIPANT_YYYYMMDD.txt``): what the switch sends the banks after the
        cut-off, with masked PANs, the fees fixed at the cut-off and control totals
        (cards/files.py)."""
        import datetime as dt

        from qingsuan.cards.files import Detail, write_clearing_file

        out: dict[str, str] = {}
        for day in self.switch.days_closed:
            per: dict[str, list[Detail]] = {}
            for t in self.switch.txns.values():
                if (t.clearing_date != day or t.status not in ("cleared", "settled")
                        or t.proc == "31" or t.issuer in (None, t.acquirer)):
                    continue
                stan = t.key.split("|")[1]
                local = to_beijing_naive(t.at_us)
                # D: pays the amount (the issuer; the acquirer for a refund), C: receives it
                for bank, fee in ((t.issuer or "", t.issuer_fee_net_fen),
                                  (t.acquirer, t.acquirer_fee_net_fen)):
                    direction = "D" if bank == t.payer else "C"
                    per.setdefault(bank, []).append(Detail(
                        t.rrn, stan, t.mti, t.card, t.amount_fen, fee, direction,
                        t.terminal, local))
            for p in self.scenario.participants:
                out[f"{p.name}_{day.replace('-', '')}.txt"] = write_clearing_file(
                    p.name, dt.date.fromisoformat(day), per.get(p.name, []))
        return out

    def _do_fault(self, event: Event) -> None:
        """A participant's issuer host goes down, slow or up (a logged switch command)."""
        f = event.fields
        outcome = self.switch.fault(f["participant"], f["mode"])
        self._action(event, True, None)
        self.actions[-1]["advices_delivered"] = outcome["delivered"]

    def _do_dispute(self, event: Event) -> None:
        """差错处理: the issuer (chargebacks) or the acquirer (credit adjustment,
        representment) files a dispute step on a card transaction with the switch; an
        accepted step is an item of the clearing day in which it is filed."""
        f = event.fields
        key = self._card_keys.get(f["target"], "")
        original = self.switch.txns.get(key)
        filer = ""
        if original is not None:
            filer = (original.issuer or "") if f["kind"].endswith("chargeback") else \
                original.acquirer
        now = self.clock.now_us()
        self._stan += 1
        answer = self.switch.dispute({
            "t": "0620", "32": filer, "11": f"{self._stan:06d}",
            "7": to_beijing(now).strftime("%m%d%H%M%S"), "37": f"{self._stan:012d}",
            "original_key": key, "dispute": f["kind"], "4": f"{f['amount_fen']:012d}"})
        record = PaymentRecord(f"dispute:{f['kind']}", "CUPS")
        self.payments[f["id"]] = record
        self._card_keys[f["id"]] = answer["key"]
        if answer["status"] == "accepted":
            record.move(now, "accepted")
        else:
            record.move(now, "refused")
            record.reason = {"code": answer["reason"], "message": answer["message"]}

    def _do_pos_refund(self, event: Event) -> None:
        """退货: the merchant gives back all or part of a purchase (0220, processing code
        20), at the terminal of the purchase, on the same or a later clearing day."""
        fields, _ = self._linked_request(event, "0220", "20")
        fields["4"] = f"{event.fields['amount_fen']:012d}"
        self._card_answer(event, self.switch.request(fields))

    def _do_pos_void(self, event: Event) -> None:
        """撤销: the merchant cancels a purchase the same clearing day."""
        f = event.fields
        original = self.payments.get(f["target"])
        self._stan += 1
        answer = self.switch.request({"t": "0200", "3": "200000", "11": f"{self._stan:06d}",
                                      "original_key": self._card_keys.get(f["target"], "")})
        rc = answer["39"]
        record = PaymentRecord(event.do, "CUPS", response_code=rc)
        self.payments[f["id"]] = record
        now = self.clock.now_us()
        if rc == "00":
            record.move(now, "approved")
            if original is not None and original.status == "approved":
                original.move(now, "reversed")
        else:
            record.move(now, "declined")
            record.reason = {"code": rc, "message": _RESPONSE_MEANINGS.get(rc, "declined")}

    def _do_set_param(self, event: Event) -> None:
        self.engine.set_params({event.fields["name"]: event.fields["value"]})

    def _do_transfer(self, event: Event) -> None:
        """A customer's transfer at a channel: the bank routes it (banks/routing.py)."""
        f = event.fields
        payer = self.scenario.customer(f["from_customer"])
        payee = self.scenario.customer(f["to_customer"])
        now = self.clock.now_us()
        phase, _ = self.cnaps.hvps.phase(now)
        decision = route_transfer(
            channel=f["channel"], urgent=f["urgent"], same_bank=payer.bank == payee.bank,
            amount_fen=f["amount_fen"], hvps_open=phase is HvpsPhase.OPEN,
            beps_limit_fen=self.cnaps.beps.item_limit_fen("ordinary_credit", now) or 0,
            ibps_limit_fen=int(self.params["ibps.item_limit"]))
        self.routes[f["id"]] = decision.why
        if decision.route is Route.BOOK:
            self._book_intrabank(f, payer.bank, payer.id, payee.id)
            return
        record = PaymentRecord("transfer", "IBPS" if decision.route is Route.REFUSE
                               else "HVPS" if decision.route is Route.HOLD
                               else decision.route.value)
        self.payments[f["id"]] = record
        if decision.route is Route.REFUSE:
            assert decision.refusal is not None
            record.move(now, "rejected")
            record.reason = {"code": decision.refusal[0], "message": decision.refusal[1]}
            return
        if not self._charge_fee(payer.bank, payer.id, now, record):
            return
        if decision.route in (Route.BEPS, Route.IBPS):
            fields = {"id": f["id"], "system": decision.route.value,
                      "kind": "ordinary_credit" if decision.route is Route.BEPS else "credit",
                      "amount_fen": f["amount_fen"],
                      "payer": ("customer", payer.bank, payer.account, payer.id),
                      "payee": ("customer", payee.bank, payee.account, payee.id)}
            self._net_payment(Event(event.at_us, "transfer", event.order, event.line, fields))
            return
        fields = {"id": f["id"], "amount_fen": f["amount_fen"],
                  "priority": "urgent" if f["urgent"] else "normal",
                  "payer": ("customer", payer.id), "payee": ("customer", payee.id),
                  "sender": payer.bank, "receiver": payee.bank}
        if decision.route is Route.HVPS:
            self._do_hvps_payment(Event(event.at_us, "transfer", event.order, event.line,
                                        fields))
            return
        # HOLD: reserve the funds now, send when HVPS opens (held payments keep their order)
        fields["reserve_id"] = self._next_transfer_id
        hold = self._reserve(payer.bank, f"customer:{payer.id}", "hvps_outgoing",
                             f["amount_fen"])
        code = self.engine.submit_transfers([hold]).results[0]
        if not code.done:
            record.move(now, "rejected")
            record.reason = Reason.AM04.detail(
                f"insufficient funds: {payer.id} at {payer.bank} cannot pay "
                f"{format_fen(f['amount_fen'])}")
            return
        opens = self.cnaps.hvps.schedule().next_open(to_beijing_naive(now))
        at_us = from_datetime(opens)
        record.move(now, "accepted")
        record.held_until = format_time(at_us)
        held = Event(at_us, "transfer", event.order, event.line, fields)
        self._held.append(held)
        self.scheduler.schedule(at_us, _bind(self._send_held, held), priority=event.order)

    def _send_held(self, event: Event) -> None:
        self.step_notices = []
        self._do_hvps_payment(event)
        self._follow_notices()
        self._schedule_wakeup()
        if self.on_step is not None:
            self.on_step(Event(event.at_us, "tick", -1, 0, {}), self._new_postings(), self)

    def _charge_fee(self, bank: str, customer: str, now_us: int, record: PaymentRecord
                    ) -> bool:
        """The channel fee (banks.channel_fee, default 0) is the bank's fee income."""
        fee = int(self.params["banks.channel_fee"])
        if not fee:
            return True
        code = self.engine.submit_transfers([self._t(bank, f"customer:{customer}",
                                                     "fee_income", fee)]).results[0]
        if code.done:
            return True
        record.move(now_us, "rejected")
        record.reason = Reason.AM04.detail(f"insufficient funds for the fee {format_fen(fee)}")
        return False

    def _book_intrabank(self, f: dict[str, Any], bank: str, payer: str, payee: str) -> None:
        """行内: the bank books it at once in its own book."""
        record = PaymentRecord("transfer", "BOOK")
        self.payments[f["id"]] = record
        now = self.clock.now_us()
        record.move(now, "accepted")
        transfer = self._t(bank, f"customer:{payer}", f"customer:{payee}", f["amount_fen"])
        code = self.engine.submit_transfers([transfer]).results[0]
        if code.done:
            record.move(now, "credited")
            return
        reason = _REASONS.get(code, Reason.NARR)
        message = reason.meaning
        if reason is Reason.AM04:
            message = (f"insufficient funds: {payer} at {bank} cannot pay "
                       f"{format_fen(f['amount_fen'])}")
        elif reason is Reason.NARR:
            message = f"ledger refused the transfer: {code.name}"
        record.reason = reason.detail(message)
        record.move(now, "rejected")

    # ------------------------------------------------------------------ outcome

    def balance_fen(self, book: str, name: str) -> int:
        return self.engine.ledger.balance(self.registry.id(book, name)).posted_fen

    def outcome(self) -> dict[str, Any]:
        sc = self.scenario
        ledger = self.engine.ledger
        customers = {c.id: format_fen(self.balance_fen(c.bank, f"customer:{c.id}"))
                     for c in sc.customers}
        settlement = {name: format_fen(self.balance_fen(PBOC, f"settlement:{name}"))
                      for name in self.settling_names}
        terminals = {t.id: format_fen(self.balance_fen(t.bank, f"atm_cash:{t.id}"))
                     for t in sc.terminals if t.kind == "atm"}
        return {
            "scenario": sc.name,
            "ended_at": format_time(sc.run_until_us),
            "payments": {pid: rec.to_json() for pid, rec in self.payments.items()},
            "balances": {"customers": customers, "settlement": settlement,
                         "terminals": terminals,
                         "mirrors": {name: format_fen(self.balance_fen(name, "reserve_at_pboc"))
                                     for name in self.settling_names}},
            "inquiries": self.inquiries,
            "actions": self.actions,
            "hvps": self._hvps_report(),
            "net": self._net_report(),
            "hvps_queue": [{"at": format_time(at), "queued": count, "value": format_fen(value)}
                           for at, count, value in self.cnaps.hvps.queue_length],
            "checks": {"books_balanced": self.books_balanced(),
                       "money_conserved": self.money_conserved(),
                       "mirrors_match": self.mirrors_match(),
                       "suspense_explained": self.suspense_explained()},
            "log": {"entries": self.engine.applied_seq,
                    "transfers": ledger.transfer_count,
                    "state_hash": self.engine.state_hash().hex()},
        }

    def books_balanced(self) -> bool:
        return all(p == 0 and q == 0 for p, q in self.engine.ledger.book_totals().values())

    def money_conserved(self) -> bool:
        """Central-bank money (all settlement accounts) and commercial-bank money (all
        customer deposits) are what the scenario opened with, apart from the credit the
        system grants (HVPS intraday and overnight credit; issuers' receivables from
        cardholders whose stand-in purchases overdrew them) and stand-in purchases whose
        advice the issuer has not booked yet (in transit). Balances are booked (posted)
        balances: a card pre-authorisation's hold (预授权, a pending transfer) moves no
        money until its completion posts it (suspense_explained checks the holds)."""
        sc = self.scenario
        names = self.settling_names
        settlement = sum(self.balance_fen(PBOC, f"settlement:{n}") for n in names)
        credit = sum(self.balance_fen(PBOC, f"{kind}:{n}") for n in names
                     for kind in ("intraday_credit", "overnight_credit"))
        deposits = sum(self.balance_fen(c.bank, f"customer:{c.id}") for c in sc.customers)
        # what customers hold or were charged: deposits, what merchants are still owed, cash
        # taken out of ATMs, and the fees banks charged them (channel fees, MDR)
        owed = sum(self.balance_fen(p.name, "due_to_merchants") + self.balance_fen(
            p.name, "fee_income") for p in sc.participants)
        cash_out = sum(t.cash_fen - self.balance_fen(t.bank, f"atm_cash:{t.id}")
                       for t in sc.terminals if t.kind == "atm")
        # card purchases the switch approved in stand-in for an issuer still down: the
        # merchant is owed them, the cardholder not yet charged (the advice in transit);
        # and what cardholders owe their issuers beyond their accounts (stand-in advices
        # their accounts could not bear): bank credit, money the banks created
        advices = sum(t.amount_fen for t in self.switch.txns.values()
                      if t.advice == "pending")
        lent = sum(self.balance_fen(p.name, "cardholder_receivable")
                   for p in sc.participants
                   if self.registry.has(f"{p.name}:cardholder_receivable"))
        return (settlement - credit == self._opening_settlement_fen
                and deposits + owed + cash_out - advices - lent == self._opening_deposits_fen)

    def _net_report(self) -> dict[str, Any]:
        """BEPS and IBPS: positions, caps, sessions and per-participant metrics."""
        out: dict[str, Any] = {}
        for name, net in sorted(self.cnaps.net.items()):
            out[name] = {
                "positions": {k: format_fen(v) for k, v in sorted(net.positions.items())},
                "caps": {k: format_fen(v) for k, v in sorted(net.caps.items())},
                "sessions": [{"at": format_time(s["at_us"]), "status": s["status"],
                              "items": s.get("items", 0),
                              "positions": {k: format_fen(v) for k, v in
                                            sorted(s["positions"].items())}}
                             for s in net.sessions],
                "participants": {k: {
                    "netted_value": format_fen(m.netted_value_fen),
                    "netted_count": m.netted_count,
                    "received_value": format_fen(m.received_value_fen),
                    "peak_cap_use": format_fen(-m.low_position_fen),
                    "queue_time_s": m.queue_time_us / 1_000_000,
                    "rejections": m.rejections or {},
                } for k, m in sorted(net.metrics.items()) if m.netted_count or m.rejections
                    or m.received_value_fen},
                "in_transit": [{"at": format_time(at), "value": format_fen(v)}
                               for at, v in net.in_transit],
            }
        return out

    def _hvps_report(self) -> dict[str, Any]:
        """Per participant: the HVPS metrics and credit (amounts as CNY strings)."""
        hvps = self.cnaps.hvps
        out: dict[str, Any] = {}
        for name in sorted(hvps.metrics):
            m = hvps.metrics[name]
            line = hvps.credit[name]
            wait = (m.queue_time_value_us / m.queued_value_fen / 1e6) if m.queued_value_fen else 0
            out[name] = {
                "settled_value": format_fen(m.settled_value_fen),
                "settled_count": m.settled_count,
                "queued_count": m.queued_count,
                "queue_time_value_weighted_s": round(wait, 3),
                "peak_liquidity_used": format_fen(m.peak_liquidity_used_fen),
                "gridlock_value_resolved": format_fen(m.gridlock_value_fen),
                "returned_count": m.returned_count,
                "cancelled_count": m.cancelled_count,
                "credit_peak_drawn": format_fen(line.peak_drawn_fen),
                "credit_overnight": format_fen(line.overnight_fen),
                "credit_interest": format_fen(line.interest_fen),
            }
        return out

    def suspense_explained(self) -> bool:
        """对账: every bank's transit (suspense) accounts are explained by items in transit.
        BEPS/IBPS: its clearing account equals its net position (netted, not yet settled).
        HVPS: nothing is left posted in transit, and the funds reserved on the outgoing
        account are exactly the bank's payments accepted but not yet settled. Cards: the
        holds reserved on an issuer's "due to switch" are exactly its open
        pre-authorisations (预授权; an expired hold is no longer reserved)."""
        ledger, reg = self.engine.ledger, self.registry
        hvps = self.cnaps.hvps
        held: dict[str, int] = {}
        for t in self.switch.txns.values():
            if t.status == "authorised" and t.issuer is not None and \
                    ledger.pending_state(t.hold_id) is PendingState.PENDING:
                held[t.issuer] = held.get(t.issuer, 0) + t.amount_fen
        for p in self.scenario.participants:
            if ledger.balance(reg.id(p.name, "due_to_switch")).credits_pending_fen != \
                    held.get(p.name, 0):
                return False
        for p in self.scenario.participants:
            name = p.name
            for net in self.cnaps.net.values():
                account = ledger.balance(reg.id(name, f"{net.key}_clearing"))
                if account.posted_fen != net.positions.get(name, 0):
                    return False
            out = ledger.balance(reg.id(name, "hvps_outgoing"))
            inc = ledger.balance(reg.id(name, "hvps_incoming"))
            waiting = sum(r["amount"] for ref_id, r in self._hvps_refs.items()
                          if r["sender"] == name and r["kind"] == "customer"
                          and self.payments[ref_id].status in ("accepted", "queued"))
            waiting += sum(int(e.fields["amount_fen"]) for e in self._held_waiting(name))
            own = sum(r["amount"] for ref_id, r in self._hvps_refs.items()
                      if r["sender"] == name and r["kind"] in ("institution", "return")
                      and self.payments[ref_id].status in ("accepted", "queued"))
            if out.posted_fen != -own or inc.posted_fen != 0 or \
                    out.credits_pending_fen != waiting:
                return False
        del hvps
        return True

    def _held_waiting(self, bank: str) -> list[Event]:
        """Held payments of ``bank`` not yet sent to HVPS."""
        return [e for e in self._held if e.fields["sender"] == bank
                and e.fields["id"] not in self._hvps_refs]

    def mirrors_match(self) -> bool:
        """Each participant's "reserve at PBOC" equals its settlement account at the PBOC."""
        return all(self.balance_fen(PBOC, f"settlement:{n}")
                   == self.balance_fen(n, "reserve_at_pboc") for n in self.settling_names)


def _bind(fn: Callable[[Event], None], event: Event) -> Callable[[], None]:
    return lambda: fn(event)


def run_scenario(scenario: Scenario, *, store: str | None = None,
                 on_step: StepHook | None = None,
                 clearing_dir: Path | None = None) -> dict[str, Any]:
    return Runner(scenario, store=store, on_step=on_step).run(clearing_dir)
