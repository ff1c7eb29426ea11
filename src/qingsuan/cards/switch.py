"""The card switch (银联 CUPS) in the engine: routing by BIN, the issuer's decision,
duplicates, reversals and voids, issuer host faults and stand-in; the other flows are rooms
of their own (preauth.py, refunds.py, disputes.py, dayclose.py), functions of the switch.

Every request is a logged engine command (durable before it is answered); the answer is a
deterministic function of the request and the state. The issuers and acquirers not
connected from outside are simulated here from the banks' books (docs/CARDS.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks import issuer
from qingsuan.banks.issuer import IssuerRules
from qingsuan.calendar import card_clearing_date
from qingsuan.cards import batch, dayclose, disputes, preauth, refunds
from qingsuan.cards.disputes import ChargebackReason, DisputeKind, DisputeRefusal
from qingsuan.cards.iso8583 import RC_APPROVED, RC_SYSTEM_MALFUNCTION, RC_TOO_LATE
from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.records import (
    AWAITING_STATUSES,
    MAX_TXNS,
    SWITCH,
    TO_ISSUER_PROCS,
    Card,
    CardTxn,
    Terminal,
    awaiting_clearing,
    backwards,
    hhmm,
)
from qingsuan.cards.requests import (
    MTI_FINANCIAL,
    MTI_REVERSAL,
    PROC_BALANCE,
    PROC_PURCHASE,
    PROC_RETURN,
    PROC_WITHDRAWAL,
    CardRequest,
    Mti,
    Processing,
    dumps_fields,
)
from qingsuan.clock import US_PER_DAY, to_beijing, to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.statejson import shallow
from qingsuan.vocabulary import HOST_MODES

if TYPE_CHECKING:
    from qingsuan.cards.vault import CardVault
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine

__all__ = ["HOST_MODES", "MAX_TXNS", "SWITCH", "TO_ISSUER_PROCS", "Card", "CardSwitch",
           "CardTxn", "ChargebackReason", "DisputeKind", "DisputeRefusal", "Terminal"]

#: entries a derived look-up cache holds at most
_CACHE_LIMIT: Final = 1_000_000


class CardSwitch:
    """The engine system with prefix ``cards``. Its underscored methods (routing, the
    issuer's checks, the legs, postings, answers) are the services the flow modules of
    this package build on; nothing outside ``qingsuan.cards`` calls them."""

    prefix = "cards"

    def __init__(self, cnaps: Cnaps | None = None, *, vault: CardVault | None = None
                 ) -> None:
        #: the world's card key, for :meth:`request` to tokenise a terminal's PAN and PIN
        #: value before they are logged (the world sets it; logged commands never need it)
        self.vault = vault
        #: where the clearing day's net positions go to settle (None: positions only)
        self.cnaps = cnaps
        self.days_closed: list[str] = []
        #: (time, transaction key, event): cleared, for the banks and the runner
        self.notices: list[tuple[int, str, str]] = []
        #: merchant payouts to send through BEPS (merchants banking elsewhere than their
        #: acquirer): (clearing day, acquirer, merchant's ledger name, fen), for the banks
        self.payouts: list[tuple[str, str, str, int]] = []
        self.engine: Engine | None = None
        self.cards: dict[str, Card] = {}  # by token
        #: the check value of the card key the world was built with (cards/vault.py)
        self.key_check = ""
        self.terminals: dict[str, Terminal] = {}
        self.bins: dict[str, str] = {}
        self.txns: dict[str, CardTxn] = {}
        self.daily: dict[str, int] = {}  # "PAN|YYYY-MM-DD" -> withdrawn fen
        #: merchant (ledger name) -> what it still owes its acquirer (fen, <= 0) after a
        #: clearing day whose refunds exceeded its takings and its account
        self.merchant_carry: dict[str, int] = {}
        #: issuer hosts that are not up: participant -> "down" or "slow"
        self.hosts: dict[str, str] = {}
        #: the issuers' rules from the parameters, kept while the parameters stand
        self._rules = IssuerRules(0, 0, 0)
        self._rules_version = -1
        # Derived look-ups, not state (rebuilt on demand; cleared when the cards change):
        self._issuer_cache: dict[str, str | None] = {}
        self._day_cache: tuple[int, str] = (-1, "")
        #: (the parameters, their version, the cut-off after the time last asked about)
        self._cutoff_cache: tuple[object, int, int] = (None, -1, 0)
        #: (the cut-off that ends a clearing day, its date)
        self._clearing_cache: tuple[int, str] = (-1, "")
        #: ledger name -> account id of the cardholders' accounts (a customer's id is
        #: derived from its name, the slow look-up of the registry), and (terminal,
        #: processing code) -> the acquirer's two accounts of its leg
        self._account_ids: dict[str, int] = {}
        self._acquirer_ids: dict[tuple[str, str], tuple[int, int]] = {}
        #: issuer (bank) -> its ``due_from_switch`` and ``due_to_switch`` account ids
        self._issuer_ids: dict[str, tuple[int, int]] = {}
        #: an approved transaction still waiting for its clearing day, with that day's list
        #: in ``_open_by_day``: while both hold, :meth:`next_cutoff_us` need not look
        self._waiting: tuple[list[CardTxn], CardTxn] | None = None
        #: merchant (ledger name) -> its transactions not yet cleared (refunds look here,
        #: not at every transaction the switch holds); rebuilt from ``txns`` on load
        self._open_by_merchant: dict[str, dict[str, CardTxn]] = {}
        #: clearing date (not yet closed) -> the transactions approved for it, some perhaps
        #: reversed since (the cut-off checks these, not every transaction the switch
        #: holds; a list, as appending never rehashes); rebuilt from ``txns`` on load
        self._open_by_day: dict[str, list[CardTxn]] = {}
        #: pre-authorisations whose hold is still open (key -> txn): ticks look here for
        #: expired holds, not at every transaction; rebuilt from ``txns`` on load
        self._open_preauths: dict[str, CardTxn] = {}
        #: clearing date (not yet closed) -> what batches brought to it (cards/batch.py)
        self.batch_days: dict[str, batch.BatchDay] = {}
        #: clearing date (closed) -> its batches' figures per participant (for reports)
        self.batch_cleared: dict[str, dict[str, dict[str, int]]] = {}

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def _forget_derived(self) -> None:
        """Clear the look-ups derived from the cards, the terminals and the registry."""
        self._issuer_cache.clear()
        self._account_ids.clear()
        self._acquirer_ids.clear()
        self._issuer_ids.clear()
        self._waiting = None

    def _account_id(self, name: str) -> int:
        """The id of a cardholder's account (KeyError naming it if there is none)."""
        hit = self._account_ids.get(name)
        if hit is None:
            assert self.engine is not None
            hit = self.engine.registry.account_id(name)
            if len(self._account_ids) < _CACHE_LIMIT:
                self._account_ids[name] = hit
        return hit

    # ------------------------------------------------------------------ commands

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        text = body.decode()
        doc = _JSON.decode(text)
        if kind == "cards.setup":
            for c in doc["cards"]:
                card = Card(**c)
                self.cards[card.token] = card
                self.bins[card.pan_masked[:6]] = card.issuer
            self.key_check = str(doc.get("key_check", ""))
            for t in doc["terminals"]:
                self.terminals[t["id"]] = Terminal(**t)
            self._forget_derived()
            return {"ok": True}
        if kind == "cards.request":
            return self._request(CardRequest.from_fields(doc, text), timestamp_us)
        if kind == "cards.fault":
            return self._fault(doc["participant"], doc["mode"])
        if kind == "cards.dispute":
            return disputes.file(self, CardRequest.from_fields(doc, text), timestamp_us)
        raise ValueError(f"unknown card command {kind!r}")

    def take(self, kind: str, fields: dict[str, Any], now_us: int) -> Any:
        """A request or dispute step from a bank of the world, while it applies its own
        logged command: as :meth:`apply` of the body ``fields`` would carry, without
        reading that body back."""
        body = dumps_fields(fields)
        if kind == "cards.request":
            return self._request(CardRequest.from_fields(fields, body), now_us)
        if kind == "cards.dispute":
            return disputes.file(self, CardRequest.from_fields(fields, body), now_us)
        return self.apply(kind, now_us, body.encode())

    def setup(self, cards: list[Card], terminals: list[Terminal]) -> None:
        assert self.engine is not None
        self.engine.command("cards.setup", json.dumps(
            {"cards": [asdict(c) for c in cards], "terminals": [asdict(t) for t in terminals],
             "key_check": self.vault.check_value() if self.vault else ""},
            sort_keys=True).encode())

    def request(self, fields: dict[str, str]) -> dict[str, str]:
        """Log one request (ISO 8583 fields as strings) and return the answer's fields.
        A terminal's field 2 (the PAN) and ``pin_hash`` (its PIN digest,
        :func:`qingsuan.sim.scenario.hash_pin`) are tokenised and keyed first
        (:meth:`CardVault.tokenise`): the log never holds either."""
        assert self.engine is not None
        if "2" in fields or "pin_hash" in fields:
            if self.vault is None:
                raise ValueError("the switch has no card key: it cannot take a PAN or PIN")
            fields = self.vault.tokenise(fields)
        result: dict[str, str] = self.engine.command(
            "cards.request", json.dumps(fields, sort_keys=True).encode())
        return result

    def fault(self, participant: str, mode: str) -> dict[str, Any]:
        """An issuer host goes ``down`` (no answers), ``slow`` (answers after the timeout)
        or ``up`` again; logged, so replay sees it. Raises ValueError (nothing logged) for a
        mode that is none of these."""
        assert self.engine is not None
        if mode not in HOST_MODES:
            raise ValueError(f"fault mode must be one of {', '.join(HOST_MODES)}, got {mode!r}")
        result: dict[str, Any] = self.engine.command("cards.fault", json.dumps(
            {"participant": participant, "mode": mode}, sort_keys=True).encode())
        return result

    def dispute(self, fields: dict[str, str]) -> dict[str, str]:
        """Log one dispute step (差错) and return the switch's answer: ``{"t": "0630",
        "key", "status": "accepted"}`` or ``{..., "status": "refused", "reason": CODE,
        "message": TEXT}`` (:class:`DisputeRefusal`). Fields: ``t`` 0620, ``32`` the
        participant filing it, ``11`` STAN, ``7`` transmission time, ``37`` RRN,
        ``original_key`` the disputed transaction's key, ``dispute`` the step
        (:class:`DisputeKind`), ``4`` the amount in fen (12 digits), ``dispute_reason``
        (optional) why the issuer charges back (:class:`ChargebackReason`)."""
        assert self.engine is not None
        result: dict[str, str] = self.engine.command(
            "cards.dispute", json.dumps(fields, sort_keys=True).encode())
        return result

    def _fault(self, participant: str, mode: str) -> dict[str, Any]:
        if mode == "up":
            self.hosts.pop(participant, None)
        else:
            self.hosts[participant] = mode
        delivered = 0
        if mode != "down":  # store and forward: the issuer takes its advices when back
            for txn in list(self.txns.values()):
                if txn.issuer == participant and txn.advice == "pending":
                    self._deliver_advice(txn)
                    delivered += 1
        return {"ok": True, "delivered": delivered}

    def _deliver_advice(self, txn: CardTxn) -> None:
        """The issuer books a stand-in purchase the switch approved for it: it must accept
        it, so what the cardholder's account cannot bear (below its limit) becomes the
        cardholder's debt to the issuer (``cardholder_receivable``)."""
        assert self.engine is not None
        self._cover(txn)
        result = self.engine.post(self._issuer_leg(txn), linked=True)
        assert result.all_done, result.failures()
        txn.advice = "delivered"

    # ------------------------------------------------------------------ decisions

    def _request(self, req: CardRequest, now_us: int) -> dict[str, str]:
        mti = req.mti if req.mti is not None else ""
        if mti == MTI_REVERSAL:
            return self._reversal(req, now_us)
        if mti == MTI_FINANCIAL and req.original_key is not None and \
                req.proc == PROC_RETURN:
            return self._void(req, now_us)
        key = req.key
        seen = self.txns.get(key)
        if seen is not None:
            if seen.body == req.body:
                return self._answer(seen)  # a true retry: the same answer again
            return self._reply(req, RC.DUPLICATE_TRANSMISSION)
        if len(self.txns) >= MAX_TXNS:
            raise RuntimeError(f"the switch holds {MAX_TXNS} transactions: refusing more")
        if mti != MTI_FINANCIAL:
            if mti == Mti.ADVICE:
                if req.proc == Processing.PURCHASE:
                    return preauth.complete(self, req, key, now_us)
                return refunds.refund(self, req, key, now_us)
            if mti == Mti.AUTHORISATION:
                if req.proc == Processing.RETURN:
                    return preauth.cancel(self, req, key, now_us)
                return preauth.authorise(self, req, key, now_us)
        elif req.original_key is not None:  # 0200 naming an original: a completion
            return preauth.complete(self, req, key, now_us)
        pan = req.card if req.card is not None else ""  # the token: never a PAN
        proc = (req.processing_code if req.processing_code is not None else "000000")[:2]
        amount = int(req.amount_text or 0)
        terminal = self.terminals.get(req.terminal if req.terminal is not None else "")
        card = self.cards.get(pan)
        # The switch keeps every transaction: its strings are the card's, the terminal's
        # and shared constants where they can be, not copies from each request. (All by
        # position, through ``card`` and ``card_kind``: keywords cost a match each.)
        txn = CardTxn(key, _SHARED.get(mti, mti), _SHARED.get(proc, proc),
                      card.pan_masked if card else req.pan_masked or "", None,
                      terminal.acquirer if terminal else req.acquirer or "",
                      terminal.id if terminal else req.terminal or "",
                      amount, RC_SYSTEM_MALFUNCTION, "declined", now_us, req.body, req.rrn or "",
                      None, card.token if card else pan, card.kind if card else "debit")
        self.txns[key] = txn
        txn.rc = self._decide(txn, req, card, proc, amount, terminal, now_us)
        if txn.rc == RC_APPROVED:
            self._approve(txn, now_us)
        elif txn.rc == RC_TOO_LATE and proc != PROC_BALANCE:
            txn.status = "reversed"  # the switch reversed it at the issuer (冲正)
        return self._answer(txn)

    #: :meth:`take` of a request already read (cards/requests.py terminal_request): the
    #: request itself, no call between (a card purchase is the commonest command)
    take_request = _request

    def _approve(self, txn: CardTxn, now_us: int) -> None:
        """Approved: it belongs to the clearing day of its time (field 15)."""
        assert self.engine is not None
        txn.status = "approved"
        txn.clearing_date = self._clearing_date(now_us)
        self._index_open(txn)

    def _index_open(self, txn: CardTxn) -> None:
        day = self._open_by_day.get(txn.clearing_date)
        if day is None:
            day = self._open_by_day[txn.clearing_date] = []
        day.append(txn)
        terminal = self.terminals.get(txn.terminal)
        if terminal is not None and terminal.merchant is not None:
            held = self._open_by_merchant.get(terminal.merchant)
            if held is None:  # (not setdefault: no new dict per approval)
                held = self._open_by_merchant[terminal.merchant] = {}
            held[txn.key] = txn

    def _unindex_open(self, txn: CardTxn) -> None:
        terminal = self.terminals.get(txn.terminal)
        if terminal is not None and terminal.merchant is not None:
            held = self._open_by_merchant.get(terminal.merchant)
            if held is not None:  # (no empty dict made for a default)
                held.pop(txn.key, None)

    def _decide(self, txn: CardTxn, req: CardRequest, card: Card | None, proc: str,
                amount: int, terminal: Terminal | None, now_us: int) -> str:
        """The answer to a purchase, withdrawal or balance inquiry of ``card`` (the
        switch's record of the request's token, if it has one)."""
        assert self.engine is not None
        if terminal is None or (proc == PROC_WITHDRAWAL and terminal.kind != "atm") or \
                (proc == PROC_PURCHASE and terminal.kind != "pos") or \
                proc not in _TERMINAL_PROCS:
            return RC.INVALID_TRANSACTION
        refused = self._route(txn, req, txn.card, terminal)
        if refused is not None:
            return refused
        mode = self.hosts.get(txn.issuer or "", "up") if self.hosts else "up"
        if mode == "down":  # no answer within cards.issuer_timeout
            return self._stand_in(txn, req, card, proc, amount, terminal)
        rc = self._issuer_decides(txn, req, card, proc, amount, terminal, now_us)
        if rc != RC_APPROVED or proc == PROC_BALANCE:
            if mode == "slow":
                txn.late_rc = rc
                return RC.RESPONSE_RECEIVED_TOO_LATE
            return rc
        if mode == "slow":
            # the issuer approves and books it, but its answer comes after the timeout: the
            # acquirer gets 68 (no cash, no goods) and the switch sends the issuer a
            # reversal, which takes the issuer's booking back exactly
            txn.late_rc = (RC.APPROVED if self._post(txn, self._issuer_leg(txn))
                           else RC.SYSTEM_MALFUNCTION)
            if txn.late_rc == RC.APPROVED:
                undone = self._post(txn, backwards(self._issuer_leg(txn)), allowance=-1)
                assert undone, "a reversal of what was just booked cannot fail"
            return RC.RESPONSE_RECEIVED_TOO_LATE
        return (RC_APPROVED if self._post(txn, self._issuer_leg(txn) + self._acquirer_leg(txn))
                else RC_SYSTEM_MALFUNCTION)

    def _route(self, txn: CardTxn, req: CardRequest, pan: str, terminal: Terminal
               ) -> str | None:
        """The switch's own checks before it asks the issuer; on success the issuer is set.
        A terminal that is not the acquirer's (field 32) 12: a participant acts only for
        itself; currency not CNY 30; Luhn 14 (no token: the vault gives none to a PAN that
        is not digits with a right check digit); no issuer for the BIN 15."""
        if req.acquirer is not None and req.acquirer != terminal.acquirer:
            return RC.INVALID_TRANSACTION
        if (req.currency if req.currency is not None else "156") != "156":
            return RC.FORMAT_ERROR
        if not pan:
            return RC.INVALID_CARD_NUMBER
        bin_ = txn.pan_masked[:6]
        issuer = self._issuer_cache.get(bin_, "?")  # (known: no call)
        if issuer == "?":
            issuer = self._issuer_of(bin_)
        if issuer is None:
            return RC.NO_SUCH_ISSUER
        txn.issuer = issuer
        return None

    def _issuer_of(self, bin_: str) -> str | None:
        """The issuer by BIN (the first 6 digits, kept in clear for routing): the longest
        prefix of it in the BIN table, kept (_route reads the kept answer first)."""
        hit = next((self.bins[bin_[:n]] for n in range(len(bin_), 0, -1)
                    if bin_[:n] in self.bins), None)
        if len(self._issuer_cache) < _CACHE_LIMIT:
            self._issuer_cache[bin_] = hit
        return hit

    def _day(self, now_us: int) -> str:
        """The Beijing calendar date of a time (ISO), remembered for the minute."""
        minute = now_us // 60_000_000
        if self._day_cache[0] != minute:
            self._day_cache = (minute, to_beijing(now_us).date().isoformat())
        return self._day_cache[1]

    def _clearing_date(self, now_us: int) -> str:
        """The clearing day (field 15) a transaction of this time belongs to."""
        assert self.engine is not None
        # one clearing day runs from a cut-off to the next: the date holds until the cut-off
        # after the time it was found for (which the parameter's time of day fixes)
        ends_us = self.cutoff_after_us(now_us)
        held_ends_us, day = self._clearing_cache
        if held_ends_us != ends_us:
            cutoff = int(self.engine.params["cards.cutoff"])
            day = card_clearing_date(to_beijing_naive(now_us), hhmm(cutoff)).isoformat()
            self._clearing_cache = (ends_us, day)
        return day

    def _stand_in(self, txn: CardTxn, req: CardRequest, card: Card | None, proc: str,
                  amount: int, terminal: Terminal) -> str:
        """代授权: with ``cards.standin`` on, the switch approves for an issuer that is down
        a POS purchase up to ``cards.standin_limit`` that needs no PIN, from its own card
        file (unknown 14, blocked 05); the acquirer books it now, the issuer when it is
        back (an advice). Anything else: 91."""
        assert self.engine is not None
        params = self.engine.params
        if not params["cards.standin"] or proc != Processing.PURCHASE or terminal.kind != "pos":
            return RC.ISSUER_UNAVAILABLE
        if card is None:
            return RC.INVALID_CARD_NUMBER
        if card.status != "active":
            return RC.DO_NOT_HONOUR
        if req.pin_hash is not None or (
                card.kind == "debit" and amount > int(params["cards.pos_no_pin_limit"])):
            return RC.ISSUER_UNAVAILABLE  # a PIN only the issuer can verify
        if amount <= 0:
            return RC.INVALID_AMOUNT
        if amount > int(params["cards.standin_limit"]):
            return RC.ISSUER_UNAVAILABLE
        result = self.engine.post(self._acquirer_leg(txn), linked=True)
        assert result.all_done, result.failures()
        txn.stand_in = True
        txn.advice = "pending"
        return RC.APPROVED

    def _post(self, txn: CardTxn, legs: list[tuple[int, int, int]], allowance: int = 1
              ) -> bool:
        """Book ``legs`` all or nothing. For a withdrawal ``allowance`` +1 counts the amount
        against the card's daily allowance, -1 gives it back (the cardholder's leg taken
        back), 0 leaves it."""
        assert self.engine is not None
        if len(legs) == 2:  # the issuer's leg and the acquirer's (a reversal's): commonest
            (d1, c1, a1), (d2, c2, a2) = legs
            if not self.engine.post_pair(d1, c1, a1, d2, c2, a2):
                return False
        elif not self.engine.post(legs, linked=True).all_done:
            return False
        if txn.proc == PROC_WITHDRAWAL and allowance:
            self._count_withdrawal(txn, allowance)
        return True

    def _count_withdrawal(self, txn: CardTxn, allowance: int) -> None:
        """+1: a withdrawal counts against the card's daily allowance; -1: given back."""
        k = f"{txn.card}|{self._day(txn.at_us)}"
        self.daily[k] = self.daily.get(k, 0) + allowance * txn.amount_fen

    def _issuer_decides(self, txn: CardTxn, req: CardRequest, card: Card | None, proc: str,
                        amount: int, terminal: Terminal, now_us: int) -> str:
        """The issuer host's answer (banks/issuer.py) from its card record (``card``, the
        switch's record of ``txn.card``) and the cardholder's account; on a balance
        inquiry the switch keeps the balance."""
        assert self.engine is not None
        available = limit = used = 0
        if card is not None:
            available, limit = self.engine.ledger.funds_fen(self._account_id(card.account))
            if proc == PROC_WITHDRAWAL:
                used = self.daily.get(f"{txn.card}|{self._day(now_us)}", 0)
        # (the rules kept read directly while the parameters stand: one call fewer)
        rules = self._rules if self._rules_version == self.engine.params.version else \
            self.issuer_rules()
        rc = issuer.authorise(card, pin_hash=req.pin_hash, proc=proc, amount_fen=amount,
                              at_atm=terminal.kind == "atm", available_fen=available,
                              overdraft_limit_fen=limit, withdrawn_today_fen=used,
                              rules=rules)
        if proc == PROC_BALANCE and rc == RC_APPROVED:
            txn.balance_fen = available
        return rc

    def issuer_rules(self) -> IssuerRules:
        """The issuers' rules from the parameters, kept while the parameters stand."""
        assert self.engine is not None
        params = self.engine.params
        if self._rules_version != params.version:
            self._rules = IssuerRules(int(params["cards.pos_no_pin_limit"]),
                                      int(params["cards.pin_tries"]),
                                      int(params["cards.daily_withdrawal_limit"]))
            self._rules_version = params.version
        return self._rules

    def _void(self, req: CardRequest, now_us: int) -> dict[str, str]:
        """撤销 (0200, processing code 20): the merchant cancels a purchase of the same
        clearing day; it undoes the original like a reversal. A void after a reversal is
        22, of something not an approved purchase 12, of an unknown original 25."""
        original = self.txns.get(req.original_key or "")
        if original is None:
            return self._reply(req, RC.ORIGINAL_NOT_FOUND)
        if original.status == "reversed":
            return self._reply(req, RC.SUSPECTED_MALFUNCTION)
        if original.status != "approved" or original.proc != Processing.PURCHASE or \
                original.refunded_fen:
            # not a purchase, cleared, or partly refunded
            return self._reply(req, RC.INVALID_TRANSACTION)
        return self._undo(original, req)

    def _issuer_leg(self, txn: CardTxn) -> list[tuple[int, int, int]]:
        """The issuer's posting: it debits the cardholder and owes the switch (purchase,
        withdrawal), or is owed by the switch and credits the cardholder (refund)."""
        assert self.engine is not None
        account = self.cards[txn.card].account
        bank = account.split(":", 1)[0]
        holder = self._account_id(account)
        ids = self._issuer_ids.get(bank)
        if ids is None:
            ids = self._issuer_accounts(bank)
        if txn.proc in TO_ISSUER_PROCS:
            return [(ids[0], holder, txn.amount_fen)]
        if txn.receivable_fen:  # beyond what the account could bear (stand-in, representment)
            return [(holder, ids[1], txn.amount_fen - txn.receivable_fen),
                    (self.engine.registry.id(bank, "cardholder_receivable"), ids[1],
                     txn.receivable_fen)][0 if txn.receivable_fen < txn.amount_fen else 1:]
        return [(holder, ids[1], txn.amount_fen)]

    def _issuer_accounts(self, bank: str) -> tuple[int, int]:
        """An issuer's ``due_from_switch`` and ``due_to_switch`` (kept: a bank's accounts
        never change)."""
        assert self.engine is not None
        reg = self.engine.registry
        ids = (reg.id(bank, "due_from_switch"), reg.id(bank, "due_to_switch"))
        if len(self._issuer_ids) < _CACHE_LIMIT:
            self._issuer_ids[bank] = ids
        return ids

    def _acquirer_leg(self, txn: CardTxn) -> list[tuple[int, int, int]]:
        """The acquirer's posting: owed by the switch, it pays the cash (ATM) or owes the
        merchant (POS); for a refund it takes the amount from what it owes the merchant
        and owes the switch."""
        ids = self._acquirer_ids.get((txn.terminal, txn.proc))
        if ids is None:
            ids = self._acquirer_accounts(txn.terminal, txn.proc)
        return [(ids[0], ids[1], txn.amount_fen)]

    def _acquirer_accounts(self, terminal_id: str, proc: str) -> tuple[int, int]:
        """The (debit, credit) accounts of the acquirer's leg at a terminal (kept: a
        terminal and its acquirer's accounts never change)."""
        assert self.engine is not None
        reg = self.engine.registry
        terminal = self.terminals[terminal_id]
        acquirer = terminal.acquirer
        if proc in TO_ISSUER_PROCS:
            # a refund, chargeback or credit adjustment: from what the acquirer owes the
            # merchant, or, at an ATM (it did not dispense), from the cash found in it
            debit = f"atm_cash:{terminal.id}" if terminal.kind == "atm" else "due_to_merchants"
            ids = (reg.id(acquirer, debit), reg.id(acquirer, "due_to_switch"))
        else:
            credit_to = (f"atm_cash:{terminal.id}" if proc == Processing.WITHDRAWAL
                         else "due_to_merchants")
            ids = (reg.id(acquirer, "due_from_switch"), reg.id(acquirer, credit_to))
        if len(self._acquirer_ids) < _CACHE_LIMIT:
            self._acquirer_ids[terminal_id, proc] = ids
        return ids

    def _reversal(self, req: CardRequest, now_us: int) -> dict[str, str]:
        """0400: undo an approved original exactly; a second reversal changes nothing."""
        assert self.engine is not None
        original = self.txns.get(req.original_key or "")
        if original is None:
            return self._reply(req, RC.ORIGINAL_NOT_FOUND)
        if original.status == "declined":
            return self._reply(req, RC.INVALID_TRANSACTION)
        if original.status == "reversed":
            return self._reply(req, RC.APPROVED)  # idempotent: already undone
        if original.mti == Mti.AUTHORISATION:
            return preauth.reverse(self, original, req, now_us)
        if original.status != "approved" or original.refunded_fen:
            # cleared already (too late), or partly refunded
            return self._reply(req, RC.INVALID_TRANSACTION)
        return self._undo(original, req)

    def _undo(self, original: CardTxn, req: CardRequest) -> dict[str, str]:
        """Take an approved transaction back out of both banks' books, exactly."""
        assert self.engine is not None
        if original.proc in (Processing.PURCHASE, Processing.WITHDRAWAL, Processing.RETURN) and \
                original.issuer is not None:
            legs = self._acquirer_leg(original)
            # a stand-in whose advice the issuer has not booked yet: only the acquirer's
            # side to undo, and the advice is cancelled
            issuer_booked = original.advice != "pending"
            if issuer_booked:
                legs = self._issuer_leg(original) + legs
            if not self._post(original, backwards(legs), allowance=-1 if issuer_booked else 0):
                # only a refund can fail to come back: the cardholder spent the money
                assert original.proc == Processing.RETURN
                return self._reply(req, RC.INSUFFICIENT_FUNDS)
            if not issuer_booked:
                original.advice = "cancelled"
            if original.proc == Processing.RETURN:
                refunded = self.txns[original.original_key]
                refunded.refunded_fen -= original.amount_fen
        original.status = "reversed"
        self._unindex_open(original)
        return self._reply(req, RC.APPROVED)

    def _cover(self, txn: CardTxn) -> None:
        """What the cardholder's account cannot bear of a debit the issuer must book
        becomes the cardholder's debt to the issuer (``cardholder_receivable``)."""
        from qingsuan.engine import AccountSpec
        from qingsuan.ledger import NormalSide

        assert self.engine is not None
        reg, ledger = self.engine.registry, self.engine.ledger
        bank, name = self.cards[txn.card].account.split(":", 1)
        acc = reg.id(bank, name)
        room = ledger.balance(acc).available_fen + ledger.account(acc).overdraft_limit_fen
        txn.receivable_fen = txn.amount_fen - max(0, min(txn.amount_fen, room))
        if txn.receivable_fen and not reg.has(f"{bank}:cardholder_receivable"):
            self.engine.open_derived([AccountSpec(bank, "cardholder_receivable",
                                                  NormalSide.DEBIT)])

    def _reply(self, req: CardRequest, rc: str) -> dict[str, str]:
        return {"t": _response_mti(req.mti if req.mti is not None else "0200"),
                "11": req.stan if req.stan is not None else "", "39": rc}

    def _answer(self, txn: CardTxn) -> dict[str, str]:
        # (the commonest types read directly: one call fewer for every request)
        out = {"t": _RESPONSE_MTIS.get(txn.mti) or _response_mti(txn.mti), "39": txn.rc,
               "key": txn.key}
        if txn.balance_fen is not None:
            out["54"] = format_fen(txn.balance_fen)
        return out

    # ------------------------------------------------------------------ time

    def next_cutoff_us(self, after_us: int) -> int | None:
        """The next cut-off (日切) while approved transactions wait to be cleared."""
        # Asked after every command: the transaction found waiting last time is looked at
        # first. The lists of open days only grow: still its day's list, it is still in it;
        # its processing code clears (it was found so), and only its status can change.
        held = self._waiting
        if held is not None and held[1].status in AWAITING_STATUSES and \
                self._open_by_day.get(held[1].clearing_date) is held[0]:
            return self.cutoff_after_us(after_us)
        if not self.batch_days and not self._awaiting_clearing():
            return None
        return self.cutoff_after_us(after_us)

    def _awaiting_clearing(self) -> bool:
        """Whether any transaction waits for its clearing day to close (the first found is
        kept for :meth:`next_cutoff_us` to look at first next time)."""
        for day in self._open_by_day.values():
            for txn in day:
                if awaiting_clearing(txn):
                    self._waiting = (day, txn)
                    return True
        self._waiting = None
        return False

    def cutoff_after_us(self, after_us: int) -> int:
        """The first cut-off (``cards.cutoff``, Beijing time) after ``after_us``."""
        assert self.engine is not None
        # Asked after every command: the last answer holds for the day before it (Beijing
        # has no daylight saving), unless ``cards.cutoff`` changed.
        params = self.engine.params
        held_params, version, at = self._cutoff_cache
        if held_params is params and version == params.version and \
                at - US_PER_DAY <= after_us < at:
            return at
        at = dayclose.cutoff_after_us(params, after_us)
        self._cutoff_cache = (params, params.version, at)
        return at

    def next_preauth_expiry_us(self, after_us: int) -> int | None:
        """When the next open pre-authorisation's hold expires (a tick then marks it
        "expired"), if after ``after_us``."""
        if not self._open_preauths:
            return None
        return preauth.next_expiry_us(self, after_us)

    def on_tick(self, now_us: int) -> None:
        """At each cut-off, close the clearing day that ends there; pre-authorisations whose
        hold the ledger let expire become "expired"."""
        assert self.engine is not None
        if self._open_preauths:
            preauth.note_expired(self, now_us)
        dayclose.close_due(self, now_us)

    # ------------------------------------------------------------------ state

    def dump_state(self) -> bytes:
        extra: dict[str, Any] = {}
        if self.batch_days or self.batch_cleared:  # only then: older states stay as they were
            extra["batch"] = {"open": {d: b.to_state() for d, b in self.batch_days.items()},
                              "cleared": self.batch_cleared}
        return json.dumps({**extra,
            "cards": [shallow(c) for c in self.cards.values()],
            "terminals": [shallow(t) for t in self.terminals.values()],
            "bins": self.bins, "txns": [shallow(t) for t in self.txns.values()],
            "daily": self.daily, "days_closed": self.days_closed,
            "notices": self.notices, "merchant_carry": self.merchant_carry,
            "payouts": self.payouts,
            "hosts": self.hosts, "key_check": self.key_check},
            sort_keys=True).encode()

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self.cards = {c["token"]: Card(**c) for c in doc["cards"]}
        self.key_check = str(doc.get("key_check", ""))
        self.terminals = {t["id"]: Terminal(**t) for t in doc["terminals"]}
        self.bins = dict(doc["bins"])
        self.txns = {t["key"]: CardTxn(**t) for t in doc["txns"]}
        self.daily = {k: int(v) for k, v in doc["daily"].items()}
        self.days_closed = list(doc["days_closed"])
        self.notices = [(int(a), str(b), str(c)) for a, b, c in doc["notices"]]
        self.payouts = [(str(d), str(a), str(m), int(v)) for d, a, m, v in doc["payouts"]]
        self.merchant_carry = {k: int(v) for k, v in doc.get("merchant_carry", {}).items()}
        self.hosts = {k: str(v) for k, v in doc.get("hosts", {}).items()}
        held = doc.get("batch", {"open": {}, "cleared": {}})
        self.batch_days = {d: batch.BatchDay.from_state(b) for d, b in held["open"].items()}
        self.batch_cleared = held["cleared"]
        self._forget_derived()
        self._open_by_merchant = {}
        self._open_by_day = {}
        self._open_preauths = {}
        for t in self.txns.values():
            if awaiting_clearing(t):
                self._index_open(t)
            elif t.status == "authorised":
                self._open_preauths[t.key] = t


def _response_mti(mti: str) -> str:
    hit = _RESPONSE_MTIS.get(mti)
    if hit is not None:
        return hit
    return mti[:2] + str(int(mti[2]) + 1) + mti[3:] if len(mti) == 4 and mti.isdigit() else \
        "0210"


#: what a terminal's request does (purchase, withdrawal, balance inquiry)
_TERMINAL_PROCS: Final = (PROC_PURCHASE, PROC_WITHDRAWAL, PROC_BALANCE)
#: message types and processing codes, one string each
_SHARED: Final = {v: v for v in ("0100", "0200", "0220", "0400", "00", "01", "03", "20", "31")}
_RESPONSE_MTIS: Final = {m: m[:2] + str(int(m[2]) + 1) + m[3] for m in
                         ("0100", "0200", "0220", "0400", "0800")}
#: one decoder for the commands' JSON (json.loads builds one per call for bytes)
_JSON: Final = json.JSONDecoder()

