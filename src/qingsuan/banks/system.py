"""The banks as an engine system (prefix ``banks``): the commercial-bank tier of a world.

Every bank decision is taken here while a logged command is applied, from logged inputs:
routing a customer's transfer, reserving and booking its funds, holding it while HVPS is
closed, sending it to CNAPS, crediting the payee or returning the payment, answering for
the simulated banks, acquiring card transactions at the banks' terminals. After every
logged command (an event, a tick, a CNAPS or card command from any edge) the banks follow
what the payment systems told them (HVPS, BEPS/IBPS and card notices) and act on it, so
a world stopped at any point and restarted from its store carries on exactly.

The payment systems are driven by calling their ``apply`` with the same bodies their
logged commands carry: a bank sends CNAPS a message, it does not reach into its state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from qingsuan.banks import (
    acquirer,
    bulk,
    card_bulk,
    hub_debits,
    hub_returns,
    incoming,
    outgoing,
)
from qingsuan.banks.books import Books
from qingsuan.banks.directory import CustomerAccount, Directory, ResponderView
from qingsuan.banks.records import PaymentRecord
from qingsuan.clock import from_datetime, to_beijing_naive
from qingsuan.cnaps.hvps import Notice, dumps
from qingsuan.cnaps.netsys import NetNotice
from qingsuan.ledger.types import MAX_TOTAL_FEN
from qingsuan.money import MAX_AMOUNT_FEN
from qingsuan.reasons import Reason
from qingsuan.wallets.events import WALLET_EVENTS, wallets_of
from qingsuan.wallets.events import handler as wallet_handler

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine

#: rounds of following notices after one command (each round may make new ones: a
#: return sent back through HVPS); a world that needs more is looping, a bug
MAX_FOLLOW_ROUNDS: Final = 64

#: what the banks follow after each command, in this order: each returns whether it acted
FOLLOWERS: Final[tuple[Callable[[Banks], bool], ...]] = (
    incoming.follow_hvps, acquirer.follow_cards, incoming.follow_net, outgoing.send_held,
    outgoing.follow_payouts)

#: each follower's place in FOLLOWERS (:meth:`Banks._first_with_news` names them)
_HVPS, _CARDS, _NET, _HELD, _PAYOUTS = range(len(FOLLOWERS))
assert FOLLOWERS[_HVPS] is incoming.follow_hvps and FOLLOWERS[_CARDS] is acquirer.follow_cards
assert FOLLOWERS[_NET] is incoming.follow_net and FOLLOWERS[_HELD] is outgoing.send_held
assert FOLLOWERS[_PAYOUTS] is outgoing.follow_payouts
#: FOLLOWERS from each place on (a turn that begins there)
_FOLLOWERS_FROM: Final = tuple(FOLLOWERS[start:] for start in range(len(FOLLOWERS)))

#: an event's handler: it returns nothing, but for a hub's return (CNAPS's outcome of it)
Handler = Callable[["Banks", dict[str, Any]], Any]


class Banks:
    """The engine system with prefix ``banks``."""

    prefix = "banks"

    def __init__(self, cnaps: Cnaps, switch: CardSwitch) -> None:
        self.cnaps = cnaps
        self.switch = switch
        self.engine: Engine | None = None
        self.books: Books | None = None
        #: the notices followed during the current command (narration; not state): a
        #: net system's as (system, a list of its notice tuples) until read
        #: (:attr:`step_notices`)
        self._steps: list[Notice | tuple[str, list[NetNotice]]] = []
        self._ticked = False
        self._params_version = -1
        #: (engine, its wallets system): :meth:`_wallets`'s answer (derived, not state)
        self._wallets_of: tuple[Engine | None, Any] = (None, None)
        #: CNAPS's participants directory, once seen not empty (derived, not state)
        self._participants_seen: object = None
        self._reset()

    def _reset(self) -> None:
        self.directory = Directory()
        #: terminal id -> (acquiring bank, kind)
        self.terminals: dict[str, tuple[str, str]] = {}
        #: ATM id -> its cash at the start (money conservation counts what left it)
        self.atm_opening_fen: dict[str, int] = {}
        #: the world's banks and payment institutions, and everyone with a settlement
        #: account (those and the card switch)
        self.members: list[str] = []
        self.settling: list[str] = []
        self.opening_settlement_fen = 0
        self.opening_deposits_fen = 0
        self.payments: dict[str, PaymentRecord] = {}
        self.inquiries: dict[str, Any] = {}
        self.actions: list[dict[str, Any]] = []
        #: payment id -> why the bank routed it as it did
        self.routes: dict[str, str] = {}
        #: payments sent to HVPS / BEPS-IBPS, by id: who pays whom, the reservation
        self.hvps_refs: dict[str, dict[str, Any]] = {}
        self.net_refs: dict[str, dict[str, Any]] = {}
        #: payments held for HVPS's next opening, in the order they were accepted
        self.held: list[dict[str, Any]] = []
        #: returns (退汇) HVPS refused (a closed window, say): sent again when it opens
        self.returns_pending: list[dict[str, Any]] = []
        #: merchant payouts BEPS refused while closed for maintenance: sent again after
        self.payouts_waiting: list[dict[str, Any]] = []
        #: card payment id -> the switch's transaction key (and back)
        self.card_keys: dict[str, str] = {}
        self._pid_by_key: dict[str, str] = {}
        self.stan = 0
        #: file order of the last scenario event applied (a resumed run starts after it)
        self.events_done = -1
        #: how many notices of each system have been followed
        self.cursors: dict[str, int] = {}
        #: the next moment the world must be ticked at (None: nothing scheduled)
        self.wake_us: int | None = None
        #: when the card cut-off was last folded into :attr:`wake_us` by a command (None:
        #: not since the last whole fold); derived, not state (see after_apply)
        self._cutoff_folded_us: int | None = None
        #: bulk transfers: "ROUTE:outcome" -> (count, value in fen)
        self.bulk_tally: dict[str, tuple[int, int]] = {}
        self._bulk_columns: bulk.Columns | None = None

    @property
    def step_notices(self) -> list[Notice]:
        """The notices followed during the current command (narration; not state), a net
        system's event named ``SYSTEM:event``. Made when read: a run reads them only to
        narrate."""
        steps = self._steps
        if any(isinstance(step, tuple) for step in steps):
            made: list[Notice] = []
            for step in steps:
                if isinstance(step, tuple):
                    name, notices = step
                    made += [Notice(at_us, participant, ref, f"{name}:{event}", detail)
                             for at_us, participant, ref, event, detail in notices]
                else:
                    made.append(step)
            self._steps = steps = made  # type: ignore[assignment]
        return steps  # type: ignore[return-value]  # (every item made a Notice above)

    @step_notices.setter
    def step_notices(self, notices: list[Notice]) -> None:
        self._steps = list(notices)

    def note_steps(self, steps: list[Notice]) -> None:
        """HVPS notices followed, in order."""
        self._steps += steps

    def note_net_steps(self, system: str, notices: list[NetNotice]) -> None:
        """A net system's notices followed, in order (made Notices only when read)."""
        self._steps.append((system, notices))

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self.books = Books(engine)
        self.cnaps.answer_from(ResponderView(self))

    # ------------------------------------------------------------------ applying

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        if kind == "banks.bulk":
            return bulk.apply(self, body)
        if kind == "banks.cards":
            return card_bulk.apply(self, body)
        doc = orjson.loads(body)
        if kind == "banks.event":
            handler = HANDLERS.get(doc["do"])
            if handler is None:
                raise ValueError(f"the banks do not handle events of kind {doc['do']!r}")
            result = handler(self, doc["fields"])  # (None, but for a hub's return)
            order = int(doc["order"])
            if order > self.events_done:
                self.events_done = order
            return result
        if kind == "banks.setup":
            return self._setup(doc)
        raise ValueError(f"unknown banks command {kind!r}")

    def _setup(self, doc: dict[str, Any]) -> None:
        for cid, bank, account, name, closed, mdr in doc["customers"]:
            self.directory.add(CustomerAccount(cid, bank, account, name, bool(closed), mdr))
        for tid, bank, kind, cash in doc["terminals"]:
            self.terminals[tid] = (bank, kind)
            if kind == "atm":
                self.atm_opening_fen[tid] = int(cash)
        self.members = list(doc["members"])
        self.settling = list(doc["settling"])
        self.opening_settlement_fen += int(doc["opening_settlement_fen"])
        self.opening_deposits_fen += int(doc["opening_deposits_fen"])

    def on_tick(self, now_us: int) -> None:
        self._ticked = True

    def after_apply(self) -> None:
        """Follow what the payment systems told the banks, send held payments whose time
        has come, and fold the next scheduled moment into :attr:`wake_us`."""
        assert self.engine is not None
        start = self._first_with_news()
        if start is not None:  # (most commands leave nothing new: then no call of _follow)
            self._follow(start)
        now = self.engine.now_us
        version = self.engine.params.version
        if self._ticked or self.wake_us is None or version != self._params_version:
            # a whole fold: it sets the wake-up after a tick (or when none was set), and
            # brings it forward after a change of parameters
            nxt = self.next_due_us(now)
            self._cutoff_folded_us = None
            if self._ticked or self.wake_us is None or (nxt is not None and nxt < self.wake_us):
                self.wake_us = nxt
        else:
            # The timetable's moments (HVPS cut-off and close, net sessions) are each the
            # next one after a time: folded in at an earlier time, they are not earlier
            # now, unless a parameter changed the timetable. Otherwise only what a command
            # creates can bring the wake-up forward: open card transactions (the cut-off),
            # a pre-authorisation, a held payment, a queue. (A fold of everything gives
            # the same moment, only slower: after a restart, say.) The card cut-off is a
            # timetable moment too once there are transactions to clear: folded in once
            # since the last whole fold, it is not earlier now either.
            # (the directory's test inline: this runs after every command)
            if self.cnaps.directory is self._participants_seen or self._participants_known():
                nxt = self._first_state_moment(now)
                folded = self._cutoff_folded_us
                if folded is None or now < folded:
                    cutoff = self.switch.next_cutoff_us(now)
                    if cutoff is not None:
                        nxt = _earlier_after(nxt, cutoff, now)
                        self._cutoff_folded_us = now
                if nxt is not None and nxt < self.wake_us:
                    self.wake_us = nxt
        self._params_version = version
        self._ticked = False

    def _follow(self, start: int) -> None:
        """Run the followers in turn (HVPS's notices, the card switch's, BEPS/IBPS's, the
        held payments, the merchant payouts), from the first with something to find
        (``start``: :meth:`_first_with_news`), until each in a row found nothing to do.
        Each acts on all it finds; one that finds nothing changes nothing: a whole turn of
        them finding nothing is the end, wherever the turn began, and so is the moment
        after one acted when none has anything left to find. The calls before ``start``
        would find nothing."""
        quiet, everyone = start, len(FOLLOWERS)  # quiet: followers in a row that found nothing
        followers = _FOLLOWERS_FROM[start]  # (the first turn's: from the first with news)
        for _ in range(MAX_FOLLOW_ROUNDS):
            for follow in followers:
                if follow(self):
                    if self._caught_up():  # the rest would find nothing
                        return
                    quiet = 0
                else:
                    quiet += 1
                    if quiet == everyone:
                        return
            followers = FOLLOWERS
        raise AssertionError("the banks kept following notices: a loop")

    def _caught_up(self) -> bool:
        """Whether every follower would find nothing to do now: nothing held, no payout
        waiting, and every cursor at the end of its list (HVPS's, the card switch's and
        each net system's notices, the switch's payouts). A cursor never passes its list's
        end, so the cursors' sum equals the lists' lengths' only when each is at its end.
        :meth:`_first_with_news` is None, at a lower cost when it is (one sum, not a
        look-up a cursor); False may still leave them nothing to do (a held payment not
        due yet)."""
        if self.held or self.returns_pending or self.payouts_waiting:
            return False
        cnaps, switch = self.cnaps, self.switch
        ends = len(cnaps.hvps.notices) + len(switch.notices) + len(switch.payouts)
        for net in cnaps.net.values():
            ends += len(net.notices)
        # (right only while no cursor is past its list's end: each follower moves its
        # cursor at most to its list's length; tests/test_banks_follow.py checks every
        # cursor after every command. Asserted per list here it cost 1% of an event.)
        return ends == sum(self.cursors.values())

    def _first_with_news(self) -> int | None:
        """The place in FOLLOWERS of the first follower with something to find (None: none
        has): HVPS's, the card switch's or a net system's notices past their cursors, a
        held payment or return, a waiting payout or a payout past its cursor. The
        followers' first tests at once, for a fraction of the cost of calling them all."""
        cnaps, switch, cursors = self.cnaps, self.switch, self.cursors
        if len(cnaps.hvps.notices) > cursors.get("hvps", 0):
            return _HVPS
        if len(switch.notices) > cursors.get("cards", 0):
            return _CARDS
        for name, net in cnaps.net.items():
            if len(net.notices) > cursors.get(name, 0):
                return _NET
        if self.held or self.returns_pending:
            return _HELD
        if self.payouts_waiting or len(switch.payouts) > cursors.get("payouts", 0):
            return _PAYOUTS
        return None

    def next_due_us(self, after_us: int) -> int | None:
        """The world's one wake-up rule: the first moment after ``after_us`` at which a
        tick has work to do (HVPS cut-off, close or gridlock attempt, a net settlement
        session, the card cut-off, a pre-authorisation's expiry, a held payment)."""
        cnaps = self.cnaps
        if not cnaps.directory:
            return None
        candidates = [cnaps.hvps.next_wakeup_us(after_us), self._state_due_us(after_us)]
        candidates += [net.next_session_us(after_us) for net in cnaps.net.values()]
        future = [t for t in candidates if t is not None]
        return min(future) if future else None

    def _state_due_us(self, after_us: int) -> int | None:
        """The moments that depend on what the world holds, not on the timetable alone
        (the first after ``after_us``; asked only once there is a directory)."""
        return _earlier_after(self._first_state_moment(after_us),
                              self.switch.next_cutoff_us(after_us), after_us)

    def _participants_known(self) -> bool:
        """Whether CNAPS's participants directory is not empty (before, the world has no
        moments of its own)."""
        directory = self.cnaps.directory
        if directory is self._participants_seen:  # (its length asked once, not per command)
            return True
        if not directory:
            return False
        self._participants_seen = directory  # (nobody leaves it: never empty again)
        return True

    def _first_state_moment(self, after_us: int) -> int | None:
        """The first moment after ``after_us`` of :meth:`_state_due_us` but the card
        cut-off (None: none is)."""
        cnaps = self.cnaps
        hvps, nets = cnaps.hvps, cnaps.net
        ibps, beps = nets["IBPS"], nets["BEPS"]
        kept_for, wallets = self._wallets_of
        if kept_for is not self.engine:
            wallets = self._wallets()
        first = self.switch.next_preauth_expiry_us(after_us)  # (None, or after after_us)
        # (each part looked at only when it holds something: this runs after every
        # command, and most often nothing is queued, awaited or held)
        if not (hvps.queued_total or ibps.awaiting or beps.awaiting or self.held
                or self.returns_pending or (wallets is not None and wallets.active)):
            return first
        candidates = [first]
        if hvps.queued_total:
            interval = int(self.engine.params["hvps.lsm_interval_minutes"]) if self.engine else 0
            if interval:
                candidates.append(hvps.last_lsm_us + interval * 60_000_000)
        # an item a connected participant has not answered ends at its deadline (an IBPS
        # confirmation AB05, a BEPS debit receipt AB06)
        if ibps.awaiting:
            candidates.append(ibps.next_confirm_deadline_us())
        if beps.awaiting:
            candidates.append(beps.next_confirm_deadline_us())
        # the wallets' own moments: statements, the transit batch, a campaign's close (an
        # inactive wallets system has none: not asked)
        if wallets is not None and wallets.active:
            candidates.append(wallets.next_due_us(after_us))
        if self.held or self.returns_pending:
            waiting = self.held + self.returns_pending
            candidates += [h["due_us"] for h in waiting
                           if h["due_us"] is not None and h["due_us"] > after_us]
            if any(h["due_us"] is None for h in waiting) and self.engine is not None and \
                    not self.engine.params["hvps.closed"]:
                # held while HVPS was closed for maintenance: it is back, so the next opening
                candidates.append(from_datetime(hvps.schedule().next_open(
                    to_beijing_naive(after_us))))
        return _first_after(candidates, after_us)

    def _wallets(self) -> Any:
        """The world's wallets system (None without one), found in the engine now and kept
        for it (a system registered stays, its wallets the same object): after every
        command :meth:`_first_state_moment` reads the kept one, and asks here only when it was
        kept for another engine (or none was found yet: a world may register later)."""
        engine = self.engine
        if engine is None:
            return None
        wallets = wallets_of(engine)
        if wallets is not None:
            self._wallets_of = (engine, wallets)
        return wallets

    # ------------------------------------------------------------------ edges

    def customer_transfer(self, ref: str, system: str, priority: str, sender: str,
                          receiver: str, amount_fen: int, debtor_account: str,
                          creditor_account: str, creditor_name: str | None
                          ) -> PaymentRecord:
        """Log a customer credit transfer a participant's hub sent (pacs.008) for the
        sending bank to book and send; its record after applying. A reference already
        used is refused (AM05) and nothing is logged."""
        assert self.engine is not None
        refusal = self._hub_refusal(ref, debtor_account, creditor_account)
        if refusal is not None:
            return self._refused("pacs.008", system, refusal)
        self.engine.command("banks.event", dumps({
            "do": "customer_credit_transfer", "order": -1, "fields": {
                "id": ref, "system": system, "priority": priority, "sender": sender,
                "receiver": receiver, "amount_fen": amount_fen,
                "debtor_account": debtor_account, "creditor_account": creditor_account,
                "creditor_name": creditor_name}}))
        return self.payments[ref]

    def customer_direct_debit(self, ref: str, sender: str, receiver: str, amount_fen: int,
                              kind: str, debtor_account: str, creditor_account: str
                              ) -> PaymentRecord:
        """Log a direct debit a payee's bank's hub sent (pacs.003: ``sender`` the payee's
        bank, ``receiver`` the payer's) for the banks to book (banks/hub_debits.py); its
        record after applying. A reference used before is refused (AM05), nothing logged."""
        assert self.engine is not None
        refusal = self._hub_refusal(ref, debtor_account, creditor_account)
        if refusal is not None:
            return self._refused("pacs.003", "BEPS", refusal)
        self.engine.command("banks.event", dumps({
            "do": hub_debits.CUSTOMER_DIRECT_DEBIT, "order": -1, "fields": {
                "id": ref, "sender": sender, "receiver": receiver, "amount_fen": amount_fen,
                "kind": kind, "debtor_account": debtor_account,
                "creditor_account": creditor_account}}))
        return self.payments[ref]

    def customer_return(self, system: str, ref: str, code: str, message: str) -> Any:
        """Log a return (pacs.004) a receiving bank's hub sent of the netted credit ``ref``
        (checked by the gateway: netted, received by that bank, the whole amount) for the
        bank to take back from its customer and send (banks/hub_returns.py); CNAPS's
        outcome of the return item, or the bank's refusal."""
        assert self.engine is not None
        return self.engine.command("banks.event", dumps({
            "do": hub_returns.CUSTOMER_RETURN, "order": -1, "fields": {
                "system": system, "ref": ref, "code": code, "message": message}}))

    def institution_transfer(self, ref: str, sender: str, receiver: str, amount_fen: int,
                             priority: str) -> PaymentRecord:
        """Log a bank's own payment (pacs.009, hvps.112) for the sending bank to book from
        its own funds and send through HVPS; its record after applying. A reference used
        before is refused (AM05) and nothing is logged."""
        assert self.engine is not None
        refusal = None
        if ref in self.payments:
            refusal = Reason.AM05.detail(f"payment {ref} was sent before")
        elif sender == receiver:
            refusal = Reason.NARR.detail(f"{sender} cannot pay itself through HVPS")
        if refusal is not None:
            return self._refused("pacs.009", "HVPS", refusal)
        self.engine.command("banks.event", dumps({
            "do": "hvps_payment", "order": -1, "fields": {
                "id": ref, "amount_fen": amount_fen, "priority": priority,
                "payer": ["participant", sender], "payee": ["participant", receiver],
                "sender": sender, "receiver": receiver}}))
        return self.payments[ref]

    def _hub_refusal(self, ref: str, *accounts: str) -> dict[str, str] | None:
        """Why a hub's message is refused before anything is logged: an account that is no
        account number (AC01), else a reference used before (AM05); None if neither."""
        for account in accounts:
            if not account.isascii() or not account.isalnum():
                return Reason.AC01.detail(f"{account!r} is not an account number")
        if ref in self.payments:
            return Reason.AM05.detail(f"payment {ref} was sent before")
        return None

    def _refused(self, kind: str, system: str, reason: dict[str, str]) -> PaymentRecord:
        """The record of a message refused before anything was logged (kept nowhere)."""
        assert self.engine is not None
        refused = PaymentRecord(kind, system)
        refused.move(self.engine.clock.now_us(), "rejected")
        refused.reason = reason
        return refused

    def bulk_transfers(self, payer: Any, payee: Any, amount_fen: Any, urgent: Any = None
                       ) -> Any:
        """Many customer transfers at once (banks/bulk.py): customers by their index in
        the directory's order, amounts in fen, ``urgent`` (mobile banking's urgent: IBPS)
        per transfer or none. Logged as commands of up to ``bulk.MAX_BULK`` transfers;
        returns a :class:`~qingsuan.banks.bulk.BulkCode` per transfer."""
        import numpy as np

        assert self.engine is not None
        amount = np.asarray(amount_fen, np.int64)
        flags = np.zeros(len(amount), np.uint8) if urgent is None else np.asarray(urgent)
        payer, payee = np.asarray(payer), np.asarray(payee)
        size = len(self.directory)
        if len(payer) != len(amount) or len(payee) != len(amount) or \
                len(flags) != len(amount):
            raise ValueError("payer, payee, amount and urgent must have one value per "
                             "transfer")
        if len(amount) and (payer.min() < 0 or payee.min() < 0 or payer.max() >= size
                            or payee.max() >= size):
            raise ValueError(f"customers are numbered 0 to {size - 1}")
        if (amount <= 0).any() or (payer == payee).any():
            raise ValueError("every amount must be positive, every payee another account")
        # a command that cannot be applied must never be logged: no amount past the
        # ledger's limit, no batch whose total could overflow a balance
        if len(amount) and int(amount.max()) > MAX_AMOUNT_FEN:
            raise ValueError(f"an amount is above the limit {MAX_AMOUNT_FEN} fen")
        if float(amount.sum(dtype=np.float64)) >= MAX_TOTAL_FEN / 4:
            raise ValueError("the batch's total is too large for the books")
        codes = [self.engine.command("banks.bulk", bulk.encode(
            payer[i:i + bulk.MAX_BULK], payee[i:i + bulk.MAX_BULK],
            amount[i:i + bulk.MAX_BULK], flags[i:i + bulk.MAX_BULK]))
            for i in range(0, len(amount), bulk.MAX_BULK)]
        return np.concatenate(codes) if codes else np.zeros(0, np.int8)

    def card_transactions(self, cardholder: Any, acceptor: Any, amount_fen: Any, kind: Any,
                          card_kind: Any, mdr_ppm: int = 0) -> Any:
        """Many card purchases and withdrawals at once through the switch's batch entry
        (banks/card_bulk.py, cards/batch.py): cardholders by their index in the
        directory's order, a purchase's merchant likewise, a withdrawal's ATM by its index
        among the world's ATMs; ``kind`` 0 purchase, 1 withdrawal; ``card_kind`` 0 debit,
        1 credit; ``mdr_ppm`` the discount rate of merchants without one of their own
        (0 to 1,000,000). Logged as commands of up to ``card_bulk.MAX_CARD_BULK``; returns a
        response code per transaction (0 approved, 51, 61). Raises ValueError, nothing
        logged, for a batch that cannot be applied."""
        import numpy as np

        assert self.engine is not None
        cols = [np.asarray(c, np.int64) for c in (cardholder, acceptor, amount_fen, kind,
                                                  card_kind)]
        card_bulk.check(self, *cols)
        if not 0 <= mdr_ppm <= 1_000_000:
            raise ValueError(f"mdr_ppm must be 0 to 1,000,000 (got {mdr_ppm})")
        step = card_bulk.MAX_CARD_BULK
        holder, acceptor, amount, kinds, cards = cols
        codes = [self.engine.command("banks.cards", card_bulk.encode(
            holder[i:i + step], acceptor[i:i + step], amount[i:i + step],
            kinds[i:i + step], cards[i:i + step], mdr_ppm=mdr_ppm))
            for i in range(0, len(amount), step)]
        return np.concatenate(codes) if codes else np.zeros(0, np.uint8)

    def bulk_columns(self) -> bulk.Columns:
        """The directory as columns for the bulk path (derived; rebuilt when it grew)."""
        cols = self._bulk_columns
        if cols is None or cols.size != len(self.directory):
            cols = self._bulk_columns = bulk.Columns(self)
        return cols

    # ------------------------------------------------------------------ helpers

    def record(self, pid: str, kind: str, system: str, response_code: str | None = None
               ) -> PaymentRecord:
        """The record of payment ``pid``, made (with ``response_code``, a card answer's)
        if there is none yet."""
        rec = self.payments.get(pid)
        if rec is None:
            # (positional: a keyword costs more; a new record's status is "accepted")
            rec = self.payments[pid] = PaymentRecord(kind, system) if response_code is None \
                else PaymentRecord(kind, system, "accepted", response_code)
        return rec

    def cnaps_command(self, kind: str, doc: dict[str, Any]) -> Any:
        """Send CNAPS a message (the body its logged command would carry)."""
        assert self.engine is not None
        return self.cnaps.handle(kind, self.engine.now_us, doc)

    def action(self, do: str, f: dict[str, Any], ok: bool, reason: dict[str, str] | None
               ) -> dict[str, Any]:
        from qingsuan.clock import format_time
        from qingsuan.money import format_fen

        assert self.engine is not None
        doc: dict[str, Any] = {"at": format_time(self.engine.now_us), "do": do, "ok": ok,
                               "reason": reason}
        for key in ("target", "participant", "priority", "host", "mode"):
            if key in f:
                doc[key] = f[key]
        if "value_fen" in f:
            doc["value"] = format_fen(f["value_fen"])
        self.actions.append(doc)
        return doc

    def customer(self, cid: str) -> CustomerAccount:
        return self.directory[cid]

    def name_check(self) -> bool:
        assert self.engine is not None
        return bool(self.engine.params["banks.name_check"])

    def link_card(self, pid: str, key: str) -> None:
        self.card_keys[pid] = key
        self._pid_by_key[key] = pid

    def pid_of_key(self, key: str) -> str | None:
        return self._pid_by_key.get(key)

    # ------------------------------------------------------------------ state

    def dump_state(self) -> bytes:
        return dumps({
            "directory": self.directory.to_state(),
            "terminals": {k: list(v) for k, v in self.terminals.items()},
            "atm_opening": self.atm_opening_fen, "members": self.members,
            "settling": self.settling,
            "opening": [self.opening_settlement_fen, self.opening_deposits_fen],
            "payments": {k: v.to_state() for k, v in self.payments.items()},
            "payment_order": list(self.payments),
            "inquiries": self.inquiries, "actions": self.actions, "routes": self.routes,
            "hvps_refs": self.hvps_refs, "net_refs": self.net_refs, "held": self.held,
            "returns_pending": self.returns_pending, "payouts_waiting": self.payouts_waiting,
            "card_keys": self.card_keys, "card_order": list(self.card_keys),
            "stan": self.stan, "events_done": self.events_done, "cursors": self.cursors,
            "wake_us": self.wake_us,
            "bulk": {k: list(v) for k, v in sorted(self.bulk_tally.items())},
        })

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self._reset()
        self.directory = Directory.from_state(doc["directory"])
        self.terminals = {k: (v[0], v[1]) for k, v in doc["terminals"].items()}
        self.atm_opening_fen = {k: int(v) for k, v in doc["atm_opening"].items()}
        self.members, self.settling = list(doc["members"]), list(doc["settling"])
        self.opening_settlement_fen, self.opening_deposits_fen = doc["opening"]
        # the outcome lists payments in the order they were made: keep it (JSON objects
        # are dumped with sorted keys)
        self.payments = {k: PaymentRecord.from_state(doc["payments"][k])
                         for k in doc["payment_order"]}
        self.inquiries, self.actions = doc["inquiries"], doc["actions"]
        self.routes = doc["routes"]
        self.hvps_refs, self.net_refs, self.held = doc["hvps_refs"], doc["net_refs"], doc["held"]
        self.returns_pending = doc["returns_pending"]
        self.payouts_waiting = doc["payouts_waiting"]
        for pid in doc["card_order"]:
            self.link_card(pid, doc["card_keys"][pid])
        self.stan, self.events_done = int(doc["stan"]), int(doc["events_done"])
        self.cursors = {k: int(v) for k, v in doc["cursors"].items()}
        self.wake_us = doc["wake_us"]
        self.bulk_tally = {k: (int(c), int(v)) for k, (c, v) in doc["bulk"].items()}


def _first_after(moments: list[int | None], after_us: int) -> int | None:
    """The earliest of ``moments`` after ``after_us`` (None: none is)."""
    first = None
    for t in moments:  # (a loop, not a list and min: this runs after every command)
        if t is not None and t > after_us and (first is None or t < first):
            first = t
    return first


def _earlier_after(first: int | None, moment: int | None, after_us: int) -> int | None:
    """``first`` (None, or after ``after_us``), or ``moment`` if it is after ``after_us``
    and earlier."""
    if moment is not None and moment > after_us and (first is None or moment < first):
        return moment
    return first


def _set_param(b: Banks, f: dict[str, Any]) -> None:
    """An operator's change of a rule parameter (checked when the scenario was loaded)."""
    assert b.engine is not None
    value = f["value"]
    b.engine.params.set(f["name"], value if isinstance(value, bool) else str(value))


HANDLERS: Final[dict[str, Handler]] = {
    "set_param": _set_param,
    "transfer": outgoing.transfer,
    "customer_credit_transfer": outgoing.customer_credit_transfer,
    hub_debits.CUSTOMER_DIRECT_DEBIT: hub_debits.customer_direct_debit,
    hub_returns.CUSTOMER_RETURN: hub_returns.customer_return,
    "hvps_payment": outgoing.hvps_payment,
    "beps_payment": outgoing.net_payment,
    "ibps_payment": outgoing.net_payment,
    "debit_agreement": outgoing.debit_agreement,
    "ibps_account_inquiry": outgoing.account_inquiry,
    "cancel": outgoing.cancel,
    "reprioritise": outgoing.reprioritise,
    "pledge": outgoing.pledge,
    "release": outgoing.release,
    "atm_withdrawal": acquirer.atm_withdrawal,
    "pos_purchase": acquirer.pos_purchase,
    "atm_balance_inquiry": acquirer.balance_inquiry,
    "preauth": acquirer.preauth,
    "preauth_cancel": acquirer.preauth_cancel,
    "preauth_completion": acquirer.preauth_completion,
    "reversal": acquirer.reversal,
    "pos_void": acquirer.pos_void,
    "pos_refund": acquirer.pos_refund,
    "fault": acquirer.fault,
    "dispute": acquirer.dispute,
    # the app and the payment institutions (wallets/): carried out by the wallets system
    **{do: wallet_handler(do) for do in WALLET_EVENTS},
}
