"""The card switch (银联 CUPS) in the engine: routing, the issuer's decision, reversals.

Every request is a logged engine command (durable before it is answered); the answer is a
deterministic function of the request and the state. The issuers and acquirers not
connected from outside are simulated here from the banks' books:

* routing by BIN (the PAN's prefix, longest match; unknown -> 15), Luhn (14);
* duplicates: the same acquirer, STAN and transmission time again -> the original answer
  if the body is the same (a true retry), else 94;
* the issuer: card status (blocked -> 05), PIN (kept only as a salted hash; a wrong PIN ->
  55, blocked after ``cards.pin_tries``), amount (13), daily withdrawal limit (61), funds or
  credit limit (51); on approval it debits the cardholder and credits "due to the switch",
  and the acquirer debits "due from the switch" and pays the cash (ATM) or owes the
  merchant (POS);
* reversals (0400, field 90 names the original): unknown original -> 25, original
  declined -> 12; a reversal undoes the postings exactly, and a second one changes nothing;
* voids (撤销, 0200 processing code 20) of a purchase of the same clearing day;
* refunds (退货, 0220 processing code 20): a new transaction with the flows reversed, on the
  same or a later clearing day, at most the purchase's amount in all (docs/CARDS.md);
* issuer host faults (``cards.fault``: down, slow, up): no answer within
  ``cards.issuer_timeout`` -> 91 (or stand-in, 代授权, with ``cards.standin``: the switch
  approves small no-PIN purchases and the issuer books the advice when it is back); a late
  answer -> 68, and the switch reverses what the issuer booked;
* pre-authorisation (预授权, 0100 processing code 03): the issuer holds the amount (a
  pending ledger transfer that expires after ``cards.preauth_days``); its cancel (预授权撤销,
  0100 processing code 20) or a reversal releases the hold; its completion (预授权完成, 0200
  or 0220 processing code 00 with condition code 06) posts it, up to ``cards.preauth_tolerance``
  more, and is a new transaction that clears like a purchase;
* disputes (差错处理, ``cards.dispute``): credit adjustments, chargebacks and representments
  with their order, parties, deadlines and amounts; each accepted step is an item of the
  clearing day in which it is filed;
* the clearing day (日切): at the cut-off the day's transactions are cleared with the fees
  (cards/clearing.py), merchants are paid net of the MDR and of refunds, and the positions
  go to CNAPS to settle in HVPS.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from qingsuan.calendar import card_clearing_date
from qingsuan.cards.clearing import PURCHASE, REFUND, TO_ACQUIRER, TO_ISSUER, WITHDRAWAL
from qingsuan.cards.iso8583 import luhn_ok, mask_pan
from qingsuan.clock import from_datetime, to_beijing, to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.params import Params
from qingsuan.reasons import CodedReason

if TYPE_CHECKING:
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine

#: the card switch's name as a CNAPS participant
SWITCH: Final = "CUPS"

MAX_TXNS: Final = 10_000_000
#: entries a derived look-up cache holds at most
_CACHE_LIMIT: Final = 1_000_000


@dataclass
class Card:
    pan: str
    issuer: str
    account: str          # ledger name "BANK:customer:ID"
    kind: str             # debit / credit
    pin_hash: str | None  # hex of the salted PIN hash; never the PIN
    status: str = "active"
    wrong_pins: int = 0


@dataclass
class Terminal:
    id: str
    kind: str             # atm / pos
    acquirer: str
    merchant: str | None  # ledger name of the merchant's account (POS)
    mdr_ppm: int = 0      # the merchant discount rate its acquirer charges


@dataclass(slots=True)  # the switch keeps every one: slots halve its memory
class CardTxn:
    key: str
    mti: str
    proc: str
    pan_masked: str
    issuer: str | None
    acquirer: str
    terminal: str
    amount_fen: int
    rc: str
    status: str           # approved, declined, reversed
    at_us: int
    body: str             # the request as logged (JSON, for duplicate detection)
    rrn: str
    balance_fen: int | None = None
    card: str = ""        # the PAN (switch state only; reports show pan_masked)
    card_kind: str = "debit"
    clearing_date: str = ""  # 清算日期 (field 15): the clearing day it belongs to
    #: the net fee each side got (+) or paid (-), fixed when its clearing day closed
    issuer_fee_net_fen: int = 0
    acquirer_fee_net_fen: int = 0
    #: a refund (退货): the key of the purchase it refunds
    original_key: str = ""
    #: a purchase: what its refunds gave the cardholder back so far
    refunded_fen: int = 0
    #: a refund: the purchase's amount and what earlier refunds gave back (its fees are that
    #: share of the purchase's, cards/clearing.py)
    fee_base_fen: int = 0
    refunded_before_fen: int = 0
    #: 代授权: approved by the switch for an issuer that was down; ``advice`` is "pending"
    #: until the issuer is back and books it ("delivered"), or "cancelled" (reversed first)
    stand_in: bool = False
    advice: str = ""
    #: what the cardholder's account could not bear when a stand-in advice was booked: the
    #: issuer holds it as a receivable from the cardholder (持卡人欠款)
    receivable_fen: int = 0
    #: the issuer's own answer when it came too late (68): the switch reversed it
    late_rc: str = ""

    #: a dispute step (差错): its kind (credit_adjustment, first_chargeback, representment,
    #: second_chargeback); ``original_key`` names the disputed transaction
    dispute: str = ""
    #: why the switch refused a dispute step (readable; the code is in ``rc``)
    note: str = ""
    #: a pre-authorisation (预授权): the issuer's hold (a pending ledger transfer) and when
    #: it expires by itself (``cards.preauth_days`` after the pre-authorisation)
    hold_id: int = 0
    expires_us: int = 0

    @property
    def payer(self) -> str:
        """The side that owes the amount in clearing: the issuer, or the acquirer for a
        refund, a credit adjustment or a chargeback."""
        return self.acquirer if self.proc in TO_ISSUER_PROCS else (self.issuer or "")

    @property
    def payee(self) -> str:
        return (self.issuer or "") if self.proc in TO_ISSUER_PROCS else self.acquirer


class CardSwitch:
    """The engine system with prefix ``cards``."""

    prefix = "cards"

    def __init__(self, cnaps: Cnaps | None = None) -> None:
        #: where the clearing day's net positions go to settle (None: positions only)
        self.cnaps = cnaps
        self.days_closed: list[str] = []
        #: (time, transaction key, event): cleared, for the banks and the runner
        self.notices: list[tuple[int, str, str]] = []
        self.engine: Engine | None = None
        self.cards: dict[str, Card] = {}
        self.terminals: dict[str, Terminal] = {}
        self.bins: dict[str, str] = {}
        self.txns: dict[str, CardTxn] = {}
        self.daily: dict[str, int] = {}  # "PAN|YYYY-MM-DD" -> withdrawn fen
        #: merchant (ledger name) -> what it still owes its acquirer (fen, <= 0) after a
        #: clearing day whose refunds exceeded its takings and its account
        self.merchant_carry: dict[str, int] = {}
        #: issuer hosts that are not up: participant -> "down" or "slow"
        self.hosts: dict[str, str] = {}
        # Derived look-ups, not state (rebuilt on demand; cleared when the cards change):
        self._issuer_cache: dict[str, str | None] = {}
        self._day_cache: tuple[int, str] = (-1, "")
        self._clearing_cache: tuple[int, int, str] = (-1, -1, "")
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

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ commands

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        text = body.decode()
        doc = _JSON.decode(text)
        if kind == "cards.setup":
            for c in doc["cards"]:
                card = Card(**c)
                self.cards[card.pan] = card
                self.bins[card.pan[:6]] = card.issuer
            for t in doc["terminals"]:
                self.terminals[t["id"]] = Terminal(**t)
            self._issuer_cache.clear()
            return {"ok": True}
        if kind == "cards.request":
            return self._request(doc, text, timestamp_us)
        if kind == "cards.fault":
            return self._fault(doc["participant"], doc["mode"])
        if kind == "cards.dispute":
            return self._dispute(doc, text, timestamp_us)
        raise ValueError(f"unknown card command {kind!r}")

    def setup(self, cards: list[Card], terminals: list[Terminal]) -> None:
        assert self.engine is not None
        self.engine.command("cards.setup", json.dumps(
            {"cards": [asdict(c) for c in cards], "terminals": [asdict(t) for t in terminals]},
            sort_keys=True).encode())

    def request(self, fields: dict[str, str]) -> dict[str, str]:
        """Log one request (ISO 8583 fields as strings) and return the answer's fields."""
        assert self.engine is not None
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
        (:class:`DisputeKind`), ``4`` the amount in fen (12 digits)."""
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

    def _request(self, f: dict[str, str], body: str, now_us: int) -> dict[str, str]:
        mti = f.get("t", "")
        if mti == "0400":
            return self._reversal(f, body, now_us)
        if mti == "0200" and f.get("3", "")[:2] == "20" and "original_key" in f:
            return self._void(f, now_us)
        key = f"{f.get('32', '')}|{f.get('11', '')}|{f.get('7', '')}"
        seen = self.txns.get(key)
        if seen is not None:
            if seen.body == body:
                return self._answer(seen)  # a true retry: the same answer again
            return self._reply(f, "94")
        if len(self.txns) >= MAX_TXNS:
            raise RuntimeError(f"the switch holds {MAX_TXNS} transactions: refusing more")
        if mti != "0200":
            if mti == "0220":
                if f.get("3", "")[:2] == "00":
                    return self._completion(f, key, body, now_us)
                return self._refund(f, key, body, now_us)
            if mti == "0100":
                if f.get("3", "")[:2] == "20":
                    return self._preauth_cancel(f, key, body, now_us)
                return self._preauth(f, key, body, now_us)
        elif "original_key" in f:  # 0200 naming an original: a pre-authorisation completion
            return self._completion(f, key, body, now_us)
        pan = f.get("2", "")
        proc = f.get("3", "000000")[:2]
        amount = int(f.get("4", "0") or 0)
        terminal = self.terminals.get(f.get("41", ""))
        card = self.cards.get(pan)
        # The switch keeps every transaction: its strings are the card's, the terminal's
        # and shared constants where they can be, not copies from each request.
        txn = CardTxn(key, _SHARED.get(mti, mti), _SHARED.get(proc, proc),
                      mask_pan(pan) if pan else "", None,
                      terminal.acquirer if terminal else f.get("32", ""),
                      terminal.id if terminal else f.get("41", ""),
                      amount, "96", "declined", now_us, body, f.get("37", ""),
                      card=card.pan if card else pan)
        self.txns[key] = txn
        txn.rc = self._decide(txn, f, pan, proc, amount, terminal, now_us)
        txn.card_kind = card.kind if card else "debit"
        if txn.rc == "00":
            self._approve(txn, now_us)
        elif txn.rc == "68" and proc != "31":
            txn.status = "reversed"  # the switch reversed it at the issuer (冲正)
        return self._answer(txn)

    def _approve(self, txn: CardTxn, now_us: int) -> None:
        """Approved: it belongs to the clearing day of its time (field 15)."""
        assert self.engine is not None
        txn.status = "approved"
        txn.clearing_date = self._clearing_date(now_us)
        self._index_open(txn)

    def _index_open(self, txn: CardTxn) -> None:
        self._open_by_day.setdefault(txn.clearing_date, []).append(txn)
        terminal = self.terminals.get(txn.terminal)
        if terminal is not None and terminal.merchant is not None:
            self._open_by_merchant.setdefault(terminal.merchant, {})[txn.key] = txn

    def _unindex_open(self, txn: CardTxn) -> None:
        terminal = self.terminals.get(txn.terminal)
        if terminal is not None and terminal.merchant is not None:
            self._open_by_merchant.get(terminal.merchant, {}).pop(txn.key, None)

    def _decide(self, txn: CardTxn, f: dict[str, str], pan: str, proc: str, amount: int,
                terminal: Terminal | None, now_us: int) -> str:
        assert self.engine is not None
        if terminal is None or (proc == "01" and terminal.kind != "atm") or \
                (proc == "00" and terminal.kind != "pos") or proc not in ("00", "01", "31"):
            return "12"
        refused = self._route(txn, f, pan, terminal)
        if refused is not None:
            return refused
        mode = self.hosts.get(txn.issuer or "", "up")
        if mode == "down":  # no answer within cards.issuer_timeout
            return self._stand_in(txn, f, pan, proc, amount, terminal)
        rc = self._issuer_decides(txn, f, pan, proc, amount, terminal, now_us)
        if rc != "00" or proc == "31":
            if mode == "slow":
                txn.late_rc = rc
                return "68"
            return rc
        if mode == "slow":
            # the issuer approves and books it, but its answer comes after the timeout: the
            # acquirer gets 68 (no cash, no goods) and the switch sends the issuer a
            # reversal, which takes the issuer's booking back exactly
            txn.late_rc = "00" if self._post(txn, self._issuer_leg(txn)) else "96"
            if txn.late_rc == "00":
                undone = self._post(txn, _backwards(self._issuer_leg(txn)), allowance=-1)
                assert undone, "a reversal of what was just booked cannot fail"
            return "68"
        return "00" if self._post(txn, self._issuer_leg(txn) + self._acquirer_leg(txn)) \
            else "96"

    def _route(self, txn: CardTxn, f: dict[str, str], pan: str, terminal: Terminal
               ) -> str | None:
        """The switch's own checks before it asks the issuer; on success the issuer is set.
        A terminal that is not the acquirer's (field 32) 12: a participant acts only for
        itself; currency not CNY 30; Luhn 14; no issuer for the BIN 15."""
        acquirer = f.get("32")
        if acquirer is not None and acquirer != terminal.acquirer:
            return "12"
        if f.get("49", "156") != "156":
            return "30"
        if not pan.isdigit() or not luhn_ok(pan):
            return "14"
        issuer = self._issuer_of(pan)
        if issuer is None:
            return "15"
        txn.issuer = issuer
        return None

    def _issuer_of(self, pan: str) -> str | None:
        """The issuer by BIN: the longest prefix of the PAN in the BIN table."""
        hit = self._issuer_cache.get(pan, "?")
        if hit == "?":
            hit = next((self.bins[pan[:n]] for n in range(len(pan), 0, -1)
                        if pan[:n] in self.bins), None)
            if len(self._issuer_cache) < _CACHE_LIMIT:
                self._issuer_cache[pan] = hit
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
        minute = now_us // 60_000_000
        cutoff = int(self.engine.params["cards.cutoff"])
        if self._clearing_cache[:2] != (minute, cutoff):
            day = card_clearing_date(to_beijing_naive(now_us), _hhmm(cutoff)).isoformat()
            self._clearing_cache = (minute, cutoff, day)
        return self._clearing_cache[2]

    def _stand_in(self, txn: CardTxn, f: dict[str, str], pan: str, proc: str, amount: int,
                  terminal: Terminal) -> str:
        """代授权: with ``cards.standin`` on, the switch approves for an issuer that is down
        a POS purchase up to ``cards.standin_limit`` that needs no PIN, from its own card
        file (unknown 14, blocked 05); the acquirer books it now, the issuer when it is
        back (an advice). Anything else: 91."""
        assert self.engine is not None
        params = self.engine.params
        card = self.cards.get(pan)
        if not params["cards.standin"] or proc != "00" or terminal.kind != "pos":
            return "91"
        if card is None:
            return "14"
        if card.status != "active":
            return "05"
        if f.get("pin_hash") is not None or (
                card.kind == "debit" and amount > int(params["cards.pos_no_pin_limit"])):
            return "91"  # a PIN only the issuer can verify
        if amount <= 0:
            return "13"
        if amount > int(params["cards.standin_limit"]):
            return "91"
        result = self.engine.post(self._acquirer_leg(txn), linked=True)
        assert result.all_done, result.failures()
        txn.stand_in = True
        txn.advice = "pending"
        return "00"

    def _post(self, txn: CardTxn, legs: list[tuple[int, int, int]], allowance: int = 1
              ) -> bool:
        """Book ``legs`` all or nothing. For a withdrawal ``allowance`` +1 counts the amount
        against the card's daily allowance, -1 gives it back (the cardholder's leg taken
        back), 0 leaves it."""
        assert self.engine is not None
        if not self.engine.post(legs, linked=True).all_done:
            return False
        if txn.proc == "01" and allowance:
            k = f"{txn.card}|{self._day(txn.at_us)}"
            self.daily[k] = self.daily.get(k, 0) + allowance * txn.amount_fen
        return True

    def _issuer_decides(self, txn: CardTxn, f: dict[str, str], pan: str, proc: str,
                        amount: int, terminal: Terminal, now_us: int) -> str:
        """The issuer's checks; on approval it books its leg (not the acquirer's)."""
        assert self.engine is not None
        params = self.engine.params
        card = self.cards.get(pan)
        if card is None:
            return "14"
        if card.status != "active":
            return "05"
        pin = f.get("pin_hash")
        # An ATM always needs the PIN; at a POS a PIN given is checked, and a debit card
        # needs one above the no-PIN limit (小额免密免签).
        no_pin_limit = int(params["cards.pos_no_pin_limit"])
        if terminal.kind == "atm" or pin is not None or (
                card.kind == "debit" and amount > no_pin_limit):
            if card.pin_hash is None or pin is None or not hmac.compare_digest(
                    card.pin_hash, pin):
                card.wrong_pins += 1
                if card.wrong_pins >= int(params["cards.pin_tries"]):
                    card.status = "blocked"
                return "55"
            card.wrong_pins = 0
        ledger = self.engine.ledger
        account = self.engine.registry.account_id(card.account)
        available = ledger.available_fen(account)
        if proc == "31":
            txn.balance_fen = available
            return "00"
        if amount <= 0:
            return "13"
        if proc == "01":
            used = self.daily.get(f"{pan}|{self._day(now_us)}", 0)
            if used + amount > int(params["cards.daily_withdrawal_limit"]):
                return "61"
        if available - amount < -ledger.overdraft_limit_fen(account):
            return "51"
        return "00"

    def _void(self, f: dict[str, str], now_us: int) -> dict[str, str]:
        """撤销 (0200, processing code 20): the merchant cancels a purchase of the same
        clearing day; it undoes the original like a reversal. A void after a reversal is
        22, of something not an approved purchase 12, of an unknown original 25."""
        original = self.txns.get(f.get("original_key", ""))
        if original is None:
            return self._reply(f, "25")
        if original.status == "reversed":
            return self._reply(f, "22")
        if original.status != "approved" or original.proc != "00" or original.refunded_fen:
            return self._reply(f, "12")  # not a purchase, cleared, or partly refunded
        return self._undo(original, f)

    def _refund(self, f: dict[str, str], key: str, body: str, now_us: int) -> dict[str, str]:
        """退货 (0220, processing code 20): the merchant gives back all or part of a POS
        purchase, on the same or a later clearing day. A new transaction with its own key
        and the flows reversed: the issuer credits the cardholder, the acquirer takes it
        from what it owes the merchant."""
        original = self.txns.get(f.get("original_key", ""))
        amount = _amount(f.get("4", "0"))
        terminal = self.terminals.get(f.get("41", ""))
        txn = CardTxn(key, "0220", "20", original.pan_masked if original else "",
                      original.issuer if original else None,
                      terminal.acquirer if terminal else f.get("32", ""), f.get("41", ""),
                      amount, "96", "declined", now_us, body, f.get("37", ""),
                      card=original.card if original else "",
                      card_kind=original.card_kind if original else "debit",
                      original_key=f.get("original_key", ""))
        self.txns[key] = txn
        txn.rc = self._decide_refund(txn, original, terminal)
        if txn.rc == "00":
            self._approve(txn, now_us)
        elif txn.rc == "68":
            txn.status = "reversed"
        return self._answer(txn)

    def _decide_refund(self, txn: CardTxn, original: CardTxn | None,
                       terminal: Terminal | None) -> str:
        assert self.engine is not None
        if original is None:
            return "25"
        if original.mti not in ("0200", "0220") or original.proc != "00" or \
                original.status not in ("approved", "cleared") or original.issuer is None:
            return "12"  # reversed, declined, or not a purchase (or a completion)
        bought_at = self.terminals[original.terminal]
        if terminal is None or terminal.kind != "pos" or \
                terminal.acquirer != bought_at.acquirer or terminal.merchant != bought_at.merchant:
            return "12"  # a refund comes from the merchant that sold
        if txn.amount_fen <= 0 or original.refunded_fen + txn.amount_fen > original.amount_fen:
            return "13"
        merchant = terminal.merchant
        if merchant is not None and self._merchant_funds(merchant) < txn.amount_fen:
            return "51"  # the acquirer will not pay out what the merchant cannot cover
        mode = self.hosts.get(original.issuer, "up")
        if mode == "down":
            return "91"  # no stand-in for refunds: only the issuer credits its cardholder
        if mode == "slow":  # booked by the issuer, answered late, reversed by the switch
            txn.late_rc = "00" if self._post(txn, self._issuer_leg(txn)) else "96"
            if txn.late_rc == "00":
                undone = self._post(txn, _backwards(self._issuer_leg(txn)))
                assert undone, "a reversal of what was just booked cannot fail"
            return "68"
        if not self._post(txn, self._issuer_leg(txn) + self._acquirer_leg(txn)):
            return "96"
        txn.fee_base_fen = original.amount_fen
        txn.refunded_before_fen = original.refunded_fen
        original.refunded_fen += txn.amount_fen
        return "00"

    def _merchant_funds(self, merchant: str) -> int:
        """What a merchant can give back: its account (down to its limit), plus its takings
        not yet paid out (net of the MDR and of refunds), less what it still owes."""
        assert self.engine is not None
        reg, ledger = self.engine.registry, self.engine.ledger
        bank, name = merchant.split(":", 1)
        acc = reg.id(bank, name)
        funds = ledger.balance(acc).available_fen + ledger.account(acc).overdraft_limit_fen
        for t in self._open_by_merchant.get(merchant, {}).values():
            if not _open(t):
                continue
            terminal = self.terminals.get(t.terminal)
            if terminal is None or terminal.merchant != merchant:
                continue
            if t.proc == "00":
                funds += t.amount_fen - _mdr(t.amount_fen, terminal.mdr_ppm)
            elif t.proc in TO_ISSUER_PROCS:
                funds -= t.amount_fen
            elif t.proc == "02":
                funds += t.amount_fen
        return funds + self.merchant_carry.get(merchant, 0)

    def _issuer_leg(self, txn: CardTxn) -> list[tuple[int, int, int]]:
        """The issuer's posting: it debits the cardholder and owes the switch (purchase,
        withdrawal), or is owed by the switch and credits the cardholder (refund)."""
        assert self.engine is not None
        reg = self.engine.registry
        card = self.cards[txn.card]
        bank, name = card.account.split(":", 1)
        if txn.proc in TO_ISSUER_PROCS:
            return [(reg.id(bank, "due_from_switch"), reg.id(bank, name), txn.amount_fen)]
        if txn.receivable_fen:  # beyond what the account could bear (stand-in, representment)
            return [(reg.id(bank, name), reg.id(bank, "due_to_switch"),
                     txn.amount_fen - txn.receivable_fen),
                    (reg.id(bank, "cardholder_receivable"), reg.id(bank, "due_to_switch"),
                     txn.receivable_fen)][0 if txn.receivable_fen < txn.amount_fen else 1:]
        return [(reg.id(bank, name), reg.id(bank, "due_to_switch"), txn.amount_fen)]

    def _acquirer_leg(self, txn: CardTxn) -> list[tuple[int, int, int]]:
        """The acquirer's posting: owed by the switch, it pays the cash (ATM) or owes the
        merchant (POS); for a refund it takes the amount from what it owes the merchant
        and owes the switch."""
        assert self.engine is not None
        reg = self.engine.registry
        terminal = self.terminals[txn.terminal]
        acquirer = terminal.acquirer
        if txn.proc in TO_ISSUER_PROCS:
            # a refund, chargeback or credit adjustment: from what the acquirer owes the
            # merchant, or, at an ATM (it did not dispense), from the cash found in it
            debit = f"atm_cash:{terminal.id}" if terminal.kind == "atm" else "due_to_merchants"
            return [(reg.id(acquirer, debit), reg.id(acquirer, "due_to_switch"),
                     txn.amount_fen)]
        credit_to = f"atm_cash:{terminal.id}" if txn.proc == "01" else "due_to_merchants"
        return [(reg.id(acquirer, "due_from_switch"), reg.id(acquirer, credit_to),
                 txn.amount_fen)]

    def _reversal(self, f: dict[str, str], body: str, now_us: int) -> dict[str, str]:
        """0400: undo an approved original exactly; a second reversal changes nothing."""
        assert self.engine is not None
        original_key = f.get("original_key", "")
        original = self.txns.get(original_key)
        if original is None:
            return self._reply(f, "25")
        if original.status == "declined":
            return self._reply(f, "12")
        if original.status == "reversed":
            return self._reply(f, "00")  # idempotent: already undone
        if original.mti == "0100":
            return self._reverse_preauth(original, f, now_us)
        if original.status != "approved" or original.refunded_fen:
            return self._reply(f, "12")  # cleared already (too late), or partly refunded
        return self._undo(original, f)

    def _undo(self, original: CardTxn, f: dict[str, str]) -> dict[str, str]:
        """Take an approved transaction back out of both banks' books, exactly."""
        assert self.engine is not None
        if original.proc in ("00", "01", "20") and original.issuer is not None:
            legs = self._acquirer_leg(original)
            # a stand-in whose advice the issuer has not booked yet: only the acquirer's
            # side to undo, and the advice is cancelled
            issuer_booked = original.advice != "pending"
            if issuer_booked:
                legs = self._issuer_leg(original) + legs
            if not self._post(original, _backwards(legs), allowance=-1 if issuer_booked else 0):
                # only a refund can fail to come back: the cardholder spent the money
                assert original.proc == "20"
                return self._reply(f, "51")
            if not issuer_booked:
                original.advice = "cancelled"
            if original.proc == "20":
                refunded = self.txns[original.original_key]
                refunded.refunded_fen -= original.amount_fen
        original.status = "reversed"
        self._unindex_open(original)
        return self._reply(f, "00")

    # ------------------------------------------------------------------ pre-authorisation

    def _preauth(self, f: dict[str, str], key: str, body: str, now_us: int) -> dict[str, str]:
        """预授权 (0100, processing code 03): the issuer checks it like a POS purchase and
        holds the amount: a pending transfer from the cardholder to its "due to the switch"
        that expires by itself after ``cards.preauth_days``. Nothing is booked at the
        acquirer and nothing is cleared: only the completion is."""
        assert self.engine is not None
        pan = f.get("2", "")
        amount = _amount(f.get("4", "0"))
        terminal = self.terminals.get(f.get("41", ""))
        txn = CardTxn(key, "0100", "03", mask_pan(pan) if pan else "", None,
                      terminal.acquirer if terminal else f.get("32", ""), f.get("41", ""),
                      amount, "96", "declined", now_us, body, f.get("37", ""), card=pan)
        self.txns[key] = txn
        card = self.cards.get(pan)
        txn.card_kind = card.kind if card else "debit"
        txn.rc = self._decide_preauth(txn, f, pan, amount, terminal, now_us)
        if txn.rc == "00":
            txn.status = "authorised"
            self._open_preauths[key] = txn
        return self._answer(txn)

    def _decide_preauth(self, txn: CardTxn, f: dict[str, str], pan: str, amount: int,
                        terminal: Terminal | None, now_us: int) -> str:
        from qingsuan.ledger import Transfer, TransferFlags

        assert self.engine is not None
        if terminal is None or terminal.kind != "pos" or f.get("3", "")[:2] != "03":
            return "12"
        refused = self._route(txn, f, pan, terminal)
        if refused is not None:
            return refused
        mode = self.hosts.get(txn.issuer or "", "up")
        if mode == "down":
            return "91"  # no stand-in for a pre-authorisation: only the issuer can hold
        rc = self._issuer_decides(txn, f, pan, "03", amount, terminal, now_us)
        if mode == "slow":  # the switch reverses what the issuer held: nothing stays held
            txn.late_rc = rc
            return "68"
        if rc != "00":
            return rc
        bank, name = self.cards[pan].account.split(":", 1)
        reg = self.engine.registry
        days = int(self.engine.params["cards.preauth_days"])
        txn.hold_id = self.engine.next_derived_id()
        txn.expires_us = now_us + days * _DAY_US
        held = self.engine.post([Transfer(0, reg.id(bank, name), reg.id(bank, "due_to_switch"),
                                          amount, TransferFlags.PENDING,
                                          timeout_us=days * _DAY_US)])
        if not held.all_done:
            txn.hold_id = txn.expires_us = 0
            return "96"
        return "00"

    def _preauth_status(self, txn: CardTxn, now_us: int) -> str:
        """The pre-authorisation's status, after noting a hold the ledger let expire."""
        from qingsuan.ledger import PendingState

        assert self.engine is not None
        if txn.status == "authorised" and \
                self.engine.ledger.pending_state(txn.hold_id) is PendingState.EXPIRED:
            txn.status = "expired"
            self._open_preauths.pop(txn.key, None)
            self.notices.append((now_us, txn.key, "expired"))
        return txn.status

    def _release_hold(self, preauth: CardTxn) -> None:
        """Void the issuer's hold of an open pre-authorisation (VOID_PENDING)."""
        from qingsuan.ledger import Transfer, TransferFlags

        assert self.engine is not None
        done = self.engine.post([Transfer(0, 0, 0, 0, TransferFlags.VOID_PENDING,
                                          pending_id=preauth.hold_id)])
        assert done.all_done, done.failures()
        self._open_preauths.pop(preauth.key, None)

    def _preauth_original(self, f: dict[str, str], now_us: int
                          ) -> tuple[CardTxn | None, str]:
        """The pre-authorisation a cancel or completion names: (it, "00") when its hold is
        open and the request may act on it; else (it or None, response code): 25 unknown,
        12 not a pre-authorisation, not open (cancelled, completed, expired, reversed,
        declined), another card, or another merchant."""
        original = self.txns.get(f.get("original_key", ""))
        if original is None:
            return None, "25"
        if original.mti != "0100" or original.proc != "03":
            return original, "12"
        if self._preauth_status(original, now_us) != "authorised":
            return original, "12"
        if f.get("2") not in (None, original.card):
            return original, "12"
        terminal = self.terminals.get(f.get("41", original.terminal))
        held_at = self.terminals[original.terminal]
        if terminal is None or terminal.acquirer != held_at.acquirer or \
                terminal.merchant != held_at.merchant:
            return original, "12"  # only the merchant that holds it acts on it
        return original, "00"

    def _linked_txn(self, f: dict[str, str], key: str, body: str, now_us: int, mti: str,
                    proc: str, original: CardTxn | None) -> CardTxn:
        terminal_id = f.get("41", original.terminal if original else "")
        terminal = self.terminals.get(terminal_id)
        txn = CardTxn(key, mti, proc, original.pan_masked if original else "",
                      original.issuer if original else None,
                      terminal.acquirer if terminal else f.get("32", ""), terminal_id,
                      _amount(f.get("4", "0")), "96", "declined", now_us, body,
                      f.get("37", ""), card=original.card if original else "",
                      card_kind=original.card_kind if original else "debit",
                      original_key=f.get("original_key", ""))
        self.txns[key] = txn
        return txn

    def _preauth_cancel(self, f: dict[str, str], key: str, body: str, now_us: int
                        ) -> dict[str, str]:
        """预授权撤销 (0100, processing code 20): the merchant releases the hold of an open
        pre-authorisation. Unknown 25; not an open pre-authorisation (cancelled, completed,
        expired, reversed) 12; an amount (field 4, if given and not zero) other than the
        pre-authorised one 13. The cancel
        is kept under its own key (status "done"), so a true retry gets the first answer."""
        original, rc = self._preauth_original(f, now_us)
        txn = self._linked_txn(f, key, body, now_us, "0100", "20", original)
        if rc == "00" and original is not None:
            if not txn.amount_fen:  # field 4 absent (or zero): the pre-authorised amount
                txn.amount_fen = original.amount_fen
            mode = self.hosts.get(original.issuer or "", "up")
            if txn.amount_fen != original.amount_fen:
                rc = "13"
            elif mode != "up":
                rc = "91" if mode == "down" else "68"  # the hold stays as it was
            else:
                self._release_hold(original)
                original.status = "cancelled"
                self.notices.append((now_us, original.key, "cancelled"))
                txn.status = "done"
        txn.rc = rc
        return self._answer(txn)

    def _reverse_preauth(self, original: CardTxn, f: dict[str, str], now_us: int
                         ) -> dict[str, str]:
        """冲正 of a pre-authorisation: the hold is released and it is "reversed"; one whose
        hold is gone already (cancelled, expired) answers 00 and changes nothing; a
        completed one 12 (reverse the completion); a cancel 12."""
        if original.proc != "03":
            return self._reply(f, "12")
        status = self._preauth_status(original, now_us)
        if status in ("cancelled", "expired"):
            return self._reply(f, "00")
        if status != "authorised":
            return self._reply(f, "12")
        self._release_hold(original)
        original.status = "reversed"
        return self._reply(f, "00")

    def _completion(self, f: dict[str, str], key: str, body: str, now_us: int
                    ) -> dict[str, str]:
        """预授权完成 (0200 request or 0220 advice, processing code 00, condition code 25 =
        06): a new transaction for at most the pre-authorised amount times (1 +
        ``cards.preauth_tolerance``) (13). The issuer posts its hold (POST_PENDING for up to
        the held amount; the rest of the hold is released) and, above it, debits the
        difference (51 if the account cannot bear it: then nothing is posted); the acquirer
        books it as a purchase. It clears like a purchase on its clearing day; the
        pre-authorisation becomes "completed"."""
        original, rc = self._preauth_original(f, now_us)
        mti = f.get("t", "0200")
        txn = self._linked_txn(f, key, body, now_us, mti, "00", original)
        if rc == "00" and original is not None:
            rc = self._decide_completion(txn, f, original)
        txn.rc = rc
        if rc == "00" and original is not None:
            self._approve(txn, now_us)
            original.status = "completed"
            self._open_preauths.pop(original.key, None)
            self.notices.append((now_us, original.key, "completed"))
        return self._answer(txn)

    def _decide_completion(self, txn: CardTxn, f: dict[str, str], original: CardTxn) -> str:
        from qingsuan.ledger import Transfer, TransferFlags

        assert self.engine is not None
        if f.get("3", "")[:2] != "00" or f.get("25") != "06":
            return "12"  # not a completion (condition code 06)
        if f.get("49", "156") != "156":
            return "30"
        held = original.amount_fen
        tolerance = int(self.engine.params["cards.preauth_tolerance"])
        ceiling = held * (_PPM + tolerance) // _PPM
        if txn.amount_fen <= 0 or txn.amount_fen > ceiling:
            return "13"
        mode = self.hosts.get(original.issuer or "", "up")
        if mode != "up":
            return "91" if mode == "down" else "68"  # the hold stays as it was
        reg, ledger = self.engine.registry, self.engine.ledger
        bank, name = self.cards[txn.card].account.split(":", 1)
        account = reg.id(bank, name)
        extra = txn.amount_fen - held
        if extra > 0 and ledger.balance(account).available_fen - extra < \
                -ledger.overdraft_limit_fen(account):
            return "51"
        legs: list[tuple[int, int, int] | Transfer] = [
            Transfer(0, 0, 0, min(txn.amount_fen, held), TransferFlags.POST_PENDING,
                     pending_id=original.hold_id)]
        if extra > 0:
            legs.append((account, reg.id(bank, "due_to_switch"), extra))
        legs += self._acquirer_leg(txn)
        if not self.engine.post(legs, linked=True).all_done:
            return "96"
        return "00"

    # ------------------------------------------------------------------ disputes

    def _dispute(self, f: dict[str, str], body: str, now_us: int) -> dict[str, str]:
        """差错处理: a credit adjustment, chargeback or representment becomes an item of the
        clearing day in which it is filed (the next cut-off), between issuer and acquirer,
        with the cardholder's and the merchant's postings at once (docs/CARDS.md)."""
        key = f"{f.get('32', '')}|{f.get('11', '')}|{f.get('7', '')}"
        seen = self.txns.get(key)
        if seen is not None:
            if seen.body == body:
                return self._dispute_answer(seen)
            return {"t": "0630", "key": key, "status": "refused",
                    "reason": DisputeRefusal.DUPLICATE.code,
                    "message": DisputeRefusal.DUPLICATE.meaning}
        if len(self.txns) >= MAX_TXNS:
            raise RuntimeError(f"the switch holds {MAX_TXNS} transactions: refusing more")
        original = self.txns.get(f.get("original_key", ""))
        kind = next((k for k in DisputeKind if k.value == f.get("dispute")), None)
        txn = CardTxn(key, "0620", kind.proc if kind else "22",
                      original.pan_masked if original else "",
                      original.issuer if original else None,
                      original.acquirer if original else f.get("32", ""),
                      original.terminal if original else "", _amount(f.get("4", "0")),
                      "", "refused", now_us, body, f.get("37", ""),
                      card=original.card if original else "",
                      card_kind=original.card_kind if original else "debit",
                      original_key=f.get("original_key", ""),
                      dispute=kind.value if kind else "")
        self.txns[key] = txn
        assert self.engine is not None
        cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
        txn.clearing_date = card_clearing_date(to_beijing_naive(now_us), cutoff).isoformat()
        refusal = self._dispute_check(txn, kind, original, f.get("32", ""))
        if refusal is not None:
            txn.rc = refusal[0].code
            txn.note = refusal[1]
            return self._dispute_answer(txn)
        assert kind is not None and original is not None
        if kind.proc == "02":  # the cardholder is charged again, beyond the account if need be
            self._cover(txn)
        booked = self._post(txn, self._issuer_leg(txn) + self._acquirer_leg(txn))
        assert booked, "a dispute step's postings cannot fail (receivable, no MNO debits)"
        original.refunded_fen += -txn.amount_fen if kind.proc == "02" else txn.amount_fen
        txn.status, txn.rc = "accepted", "00"
        self._index_open(txn)
        return self._dispute_answer(txn)

    def _dispute_check(self, txn: CardTxn, kind: DisputeKind | None,
                       original: CardTxn | None, filer: str
                       ) -> tuple[DisputeRefusal, str] | None:
        """The rules of DOMAIN.md §4 (disputes): what kind of original, who files, in which
        order, by when, for how much. None: accepted."""
        assert self.engine is not None
        if kind is None:
            return DisputeRefusal.UNKNOWN_KIND, "kind must be one of " + ", ".join(
                k.value for k in DisputeKind)
        what = kind.value.replace("_", " ")
        if original is None:
            return DisputeRefusal.UNKNOWN_ORIGINAL, DisputeRefusal.UNKNOWN_ORIGINAL.meaning
        if original.mti not in ("0200", "0220") or original.proc not in ("00", "01") or \
                original.status in ("declined", "reversed") or original.issuer is None:
            return DisputeRefusal.INVALID_ORIGINAL, DisputeRefusal.INVALID_ORIGINAL.meaning
        if original.status != "cleared":
            return DisputeRefusal.NOT_CLEARED, DisputeRefusal.NOT_CLEARED.meaning
        if kind is not DisputeKind.CREDIT_ADJUSTMENT and (
                original.proc == "01" or original.card_kind != "credit"):
            return DisputeRefusal.NOT_ALLOWED, (
                f"a {what} is not allowed for "
                f"{'an ATM withdrawal' if original.proc == '01' else 'a debit card'} "
                "(only a credit adjustment is)")
        party = original.issuer if kind.filer == "issuer" else original.acquirer
        if filer != party:
            return DisputeRefusal.WRONG_PARTY, f"a {what} is filed by the {kind.filer} ({party})"
        steps = {t.dispute: t for t in self.txns.values()
                 if t.original_key == original.key and t.status in ("accepted", "cleared")
                 and t.dispute}
        previous = kind.previous
        if kind is not DisputeKind.CREDIT_ADJUSTMENT and kind.value in steps:
            return DisputeRefusal.OUT_OF_ORDER, f"there is already a {what} of this original"
        if previous is not None and previous.value not in steps:
            return DisputeRefusal.OUT_OF_ORDER, (
                f"a {what} answers a {previous.value.replace('_', ' ')}, and there is none")
        filed = dt.date.fromisoformat(txn.clearing_date)
        if previous is None:
            limit, since, of = int(self.engine.params["cards.chargeback_days"]), \
                original.clearing_date, "the original's clearing day"
            param = "cards.chargeback_days"
        else:
            limit, since, of = int(self.engine.params["cards.dispute_reply_days"]), \
                steps[previous.value].clearing_date, \
                f"the {previous.value.replace('_', ' ')}'s clearing day"
            param = "cards.dispute_reply_days"
        days = (filed - dt.date.fromisoformat(since)).days
        if days > limit:
            return DisputeRefusal.LATE, (
                f"{what} filed on clearing day {filed.isoformat()}, {days} days after {of} "
                f"{since} ({param}: {limit})")
        ceiling = original.amount_fen - original.refunded_fen if previous is None else \
            steps[previous.value].amount_fen
        if txn.amount_fen <= 0 or txn.amount_fen > ceiling:
            return DisputeRefusal.AMOUNT, (
                f"a {what} must be positive and at most {format_fen(ceiling)} ("
                + ("the original less what was already given back" if previous is None
                   else f"the {previous.value.replace('_', ' ')}") + ")")
        return None

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

    def _dispute_answer(self, txn: CardTxn) -> dict[str, str]:
        if txn.rc == "00":
            return {"t": "0630", "key": txn.key, "status": "accepted"}
        return {"t": "0630", "key": txn.key, "status": "refused", "reason": txn.rc,
                "message": txn.note}

    # ------------------------------------------------------------------ clearing day

    def next_cutoff_us(self, after_us: int) -> int | None:
        """The next cut-off (日切) while approved transactions wait to be cleared."""
        if not any(_open(t) for day in self._open_by_day.values() for t in day):
            return None
        return self.cutoff_after_us(after_us)

    def cutoff_after_us(self, after_us: int) -> int:
        """The first cut-off (``cards.cutoff``, Beijing time) after ``after_us``."""
        assert self.engine is not None
        cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
        day = to_beijing_naive(after_us).date()
        at = from_datetime(dt.datetime.combine(day, cutoff))
        if at <= after_us:
            at = from_datetime(dt.datetime.combine(day + dt.timedelta(days=1), cutoff))
        return at

    def next_preauth_expiry_us(self, after_us: int) -> int | None:
        """When the next open pre-authorisation's hold expires (a tick then marks it
        "expired"), if after ``after_us``."""
        return min((t.expires_us for t in self._open_preauths.values()
                    if t.expires_us > after_us), default=None)

    def on_tick(self, now_us: int) -> None:
        """At each cut-off, close the clearing day that ends there; pre-authorisations whose
        hold the ledger let expire become "expired"."""
        assert self.engine is not None
        if self._open_preauths:
            for txn in list(self._open_preauths.values()):
                self._preauth_status(txn, now_us)
        cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
        for day in sorted(self._open_by_day):
            ends = from_datetime(dt.datetime.combine(dt.date.fromisoformat(day), cutoff))
            if ends > now_us:
                continue
            if day in self.days_closed or not any(_open(t) for t in self._open_by_day[day]):
                del self._open_by_day[day]  # nothing of it left to clear (all reversed)
                continue
            self._close_day(day, now_us)

    def _close_day(self, day: str, now_us: int) -> None:
        """清分: the day's approved transactions into net positions with the fees; the
        banks' dues to and from the switch move into their CUPS clearing accounts, the
        acquirers pay their merchants net of the MDR and of refunds, and the positions go
        to HVPS."""
        from qingsuan.cards import clearing

        assert self.engine is not None
        params, reg = self.engine.params, self.engine.registry
        # in the order the switch took them (the files' and the postings' order)
        txns = [t for t in self.txns.values() if t.clearing_date == day and _open(t)]
        self.days_closed.append(day)
        self._open_by_day.pop(day, None)
        postings = self._pay_merchants(txns)
        onus = [t for t in txns if t.issuer == t.acquirer]
        for t in onus:  # 本行卡: the bank owes itself; nothing crosses to another bank
            postings.append((reg.id(t.acquirer, "due_to_switch"),
                             reg.id(t.acquirer, "due_from_switch"), t.amount_fen))
        inter = [t for t in txns if t.issuer != t.acquirer and t.issuer is not None]
        positions: dict[str, int] = {}
        if inter:
            names = sorted({t.issuer for t in inter if t.issuer} | {t.acquirer for t in inter}
                           | {SWITCH})
            index = {n: i for i, n in enumerate(names)}
            schedule = _schedule(params)
            result = clearing.clear(
                np.array([index[t.issuer] for t in inter if t.issuer], np.int64),
                np.array([index[t.acquirer] for t in inter], np.int64),
                np.array([_CLEARING_KIND[t.proc] for t in inter], np.int64),
                np.array([clearing.CREDIT if t.card_kind == "credit" else clearing.DEBIT
                          for t in inter], np.int64),
                np.array([t.amount_fen for t in inter], np.int64),
                n_participants=len(names), switch=index[SWITCH], schedule=schedule,
                fee_base_fen=np.array([t.fee_base_fen or t.amount_fen for t in inter],
                                      np.int64),
                refunded_before_fen=np.array([t.refunded_before_fen for t in inter],
                                             np.int64))
            for i, t in enumerate(inter):  # the clearing files show these, as cleared
                t.issuer_fee_net_fen = int(result.issuer_fee_net_fen[i])
                t.acquirer_fee_net_fen = int(result.acquirer_fee_net_fen[i])
            owed = {n: 0 for n in names}
            due = {n: 0 for n in names}
            for t in inter:
                owed[t.payer] += t.amount_fen
                due[t.payee] += t.amount_fen
            for n in names:
                p = int(result.positions_fen[index[n]])
                positions[n] = p
                if n == SWITCH:  # the network fees it took (or, for refunds, gave back)
                    if p > 0:
                        postings.append((reg.id(n, "cups_clearing"), reg.id(n, "fee_income"), p))
                    elif p < 0:
                        postings.append((reg.id(n, "fee_income"), reg.id(n, "cups_clearing"),
                                         -p))
                    continue
                clear_acc = reg.id(n, "cups_clearing")
                if owed[n]:
                    postings.append((reg.id(n, "due_to_switch"), clear_acc, owed[n]))
                if due[n]:
                    postings.append((clear_acc, reg.id(n, "due_from_switch"), due[n]))
                fee = p - (due[n] - owed[n])
                if fee > 0:
                    postings.append((clear_acc, reg.id(n, "interchange_income"), fee))
                elif fee < 0:
                    postings.append((reg.id(n, "interchange_expense"), clear_acc, -fee))
        if postings:
            done = self.engine.post(postings, linked=True)
            assert done.all_done, done.failures()
        if self.cnaps is not None and any(positions.values()):
            self.cnaps.net["CUPS"].add_positions(f"cards:{day}",
                                                 {k: v for k, v in positions.items() if v},
                                                 now_us)
        for t in txns:
            t.status = "cleared"
            self._unindex_open(t)
            self.notices.append((now_us, t.key, "cleared"))
        if not any(positions.values()):
            # Nothing crosses a settlement account (the day was all on-us, or it netted to
            # zero): the banks' own books are final at the close, there is no HVPS batch.
            # (The switch's own record stays "cleared", as for days settled in HVPS.)
            for t in txns:
                self.notices.append((now_us, t.key, "settled"))

    def _pay_merchants(self, txns: list[CardTxn]) -> list[tuple[int, int, int]]:
        """收单清算: each acquirer pays each of its merchants the day's takings net of the
        MDR (its fee income) and of the refunds; a merchant whose refunds exceed its
        takings pays the difference from its account, and what even that cannot cover it
        still owes (deducted from its next payout)."""
        assert self.engine is not None
        reg, ledger = self.engine.registry, self.engine.ledger
        net: dict[str, int] = {}
        mdr_total: dict[str, int] = {}
        for t in txns:
            terminal = self.terminals.get(t.terminal)
            if terminal is None or terminal.merchant is None or t.proc not in (
                    "00", "20", "22", "02"):
                continue
            m = terminal.merchant
            if t.proc == "00":
                mdr = _mdr(t.amount_fen, terminal.mdr_ppm)
                net[m] = net.get(m, 0) + t.amount_fen - mdr
                mdr_total[m] = mdr_total.get(m, 0) + mdr
            elif t.proc == "02":  # a representment: the merchant gets the amount back
                net[m] = net.get(m, 0) + t.amount_fen
            else:  # refunds, chargebacks, credit adjustments; the MDR is not given back
                net[m] = net.get(m, 0) - t.amount_fen
        postings: list[tuple[int, int, int]] = []
        for m in sorted(net):
            bank, name = m.split(":", 1)
            owed_to = reg.id(bank, "due_to_merchants")
            account = reg.id(bank, name)
            if mdr_total.get(m):
                postings.append((owed_to, reg.id(bank, "fee_income"), mdr_total[m]))
            total = net[m] + self.merchant_carry.pop(m, 0)
            if total > 0:
                postings.append((owed_to, account, total))
            elif total < 0:
                room = ledger.balance(account).available_fen + \
                    ledger.account(account).overdraft_limit_fen
                take = max(0, min(-total, room))
                if take:
                    postings.append((account, owed_to, take))
                if take < -total:
                    self.merchant_carry[m] = total + take
        return postings

    def _reply(self, f: dict[str, str], rc: str) -> dict[str, str]:
        return {"t": _response_mti(f.get("t", "0200")), "11": f.get("11", ""), "39": rc}

    def _answer(self, txn: CardTxn) -> dict[str, str]:
        out = {"t": _response_mti(txn.mti), "39": txn.rc, "key": txn.key}
        if txn.balance_fen is not None:
            out["54"] = format_fen(txn.balance_fen)
        return out

    # ------------------------------------------------------------------ state

    def dump_state(self) -> bytes:
        return json.dumps({
            "cards": [asdict(c) for c in self.cards.values()],
            "terminals": [asdict(t) for t in self.terminals.values()],
            "bins": self.bins, "txns": [asdict(t) for t in self.txns.values()],
            "daily": self.daily, "days_closed": self.days_closed,
            "notices": self.notices, "merchant_carry": self.merchant_carry,
            "hosts": self.hosts},
            sort_keys=True).encode()

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self.cards = {c["pan"]: Card(**c) for c in doc["cards"]}
        self.terminals = {t["id"]: Terminal(**t) for t in doc["terminals"]}
        self.bins = dict(doc["bins"])
        self.txns = {t["key"]: CardTxn(**t) for t in doc["txns"]}
        self.daily = {k: int(v) for k, v in doc["daily"].items()}
        self.days_closed = list(doc["days_closed"])
        self.notices = [(int(a), str(b), str(c)) for a, b, c in doc["notices"]]
        self.merchant_carry = {k: int(v) for k, v in doc.get("merchant_carry", {}).items()}
        self.hosts = {k: str(v) for k, v in doc.get("hosts", {}).items()}
        self._issuer_cache.clear()
        self._open_by_merchant = {}
        self._open_by_day = {}
        self._open_preauths = {}
        for t in self.txns.values():
            if _open(t):
                self._index_open(t)
            elif t.status == "authorised":
                self._open_preauths[t.key] = t


#: processing code -> the clearing kind (cards/clearing.py)
#: (dispute items: 22 credit to the cardholder, 02 debit to the cardholder)
_CLEARING_KIND: Final = {"00": PURCHASE, "01": WITHDRAWAL, "20": REFUND, "22": TO_ISSUER,
                         "02": TO_ACQUIRER}
#: processing codes whose amount the acquirer pays the issuer
TO_ISSUER_PROCS: Final = ("20", "22")


def _open(t: CardTxn) -> bool:
    """Approved (a dispute step: accepted) and waiting for its clearing day to close
    (inquiries never clear)."""
    return t.status in ("approved", "accepted") and t.proc in _CLEARING_KIND


class DisputeKind(Enum):
    """差错处理 steps: (who files it, processing code of its clearing item)."""

    CREDIT_ADJUSTMENT = "credit_adjustment"    # 贷记调整: acquirer gives the money back
    FIRST_CHARGEBACK = "first_chargeback"      # 第一次退单: issuer claims it back
    REPRESENTMENT = "representment"            # 再请款: acquirer claims it again
    SECOND_CHARGEBACK = "second_chargeback"    # 第二次退单: issuer claims it back again

    @property
    def filer(self) -> str:
        """The side that files this step: "issuer" or "acquirer"."""
        return "acquirer" if self in (DisputeKind.CREDIT_ADJUSTMENT,
                                      DisputeKind.REPRESENTMENT) else "issuer"

    @property
    def proc(self) -> str:
        return "02" if self is DisputeKind.REPRESENTMENT else "22"

    @property
    def previous(self) -> DisputeKind | None:
        """The step this one answers (None: it starts from the original)."""
        return {DisputeKind.REPRESENTMENT: DisputeKind.FIRST_CHARGEBACK,
                DisputeKind.SECOND_CHARGEBACK: DisputeKind.REPRESENTMENT}.get(self)


class DisputeRefusal(CodedReason):
    """Why the switch refuses a dispute step: (code, meaning)."""

    UNKNOWN_ORIGINAL = ("unknown_original", "no such original transaction")
    INVALID_ORIGINAL = ("invalid_original", "the original was declined or reversed, or is "
                                            "not a purchase or withdrawal")
    NOT_CLEARED = ("not_cleared", "the original is not cleared yet: before its clearing day "
                                  "closes, void or reverse it")
    NOT_ALLOWED = ("not_allowed", "chargebacks and representments are not for ATM "
                                  "transactions or debit cards")
    WRONG_PARTY = ("wrong_party", "this step is filed by the other side")
    OUT_OF_ORDER = ("out_of_order", "not the next step of this dispute")
    LATE = ("late", "filed after its deadline")
    AMOUNT = ("amount", "amount not positive or more than allowed")
    DUPLICATE = ("duplicate", "the same reference with a different body")
    UNKNOWN_KIND = ("unknown_kind", "not a dispute step")


#: microseconds in a day (pre-authorisation holds last ``cards.preauth_days`` of them)
_DAY_US: Final = 86_400_000_000
#: rates are parts per million (params.py)
_PPM: Final = 1_000_000

#: an issuer host's modes (fault events)
HOST_MODES: Final = ("down", "slow", "up")


def _amount(text: str) -> int:
    """Field 4 (amount in fen, digits); anything else reads as 0 (then 13)."""
    return int(text) if text.isdigit() and len(text) <= 12 else 0


def _mdr(amount_fen: int, mdr_ppm: int) -> int:
    """The merchant discount on an amount, rounded half-up to the fen."""
    return (amount_fen * mdr_ppm + 500_000) // 1_000_000


def _backwards(legs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The postings that undo ``legs`` exactly (debit and credit swapped)."""
    return [(credit, debit, amount) for debit, credit, amount in legs]


def _hhmm(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


def _schedule(params: Params) -> Any:
    from qingsuan.cards.clearing import FeeSchedule

    return FeeSchedule(
        enabled=bool(params["cards.fees"]),
        issuer_fee_debit_ppm=int(params["cards.issuer_fee_debit_rate"]),
        issuer_fee_debit_cap_fen=int(params["cards.issuer_fee_debit_cap"]),
        issuer_fee_credit_ppm=int(params["cards.issuer_fee_credit_rate"]),
        network_fee_ppm=int(params["cards.network_fee_rate"]),
        network_fee_cap_fen=int(params["cards.network_fee_cap"]),
        atm_fee_fen=int(params["cards.atm_interbank_fee"]))


def _response_mti(mti: str) -> str:
    hit = _RESPONSE_MTIS.get(mti)
    if hit is not None:
        return hit
    return mti[:2] + str(int(mti[2]) + 1) + mti[3:] if len(mti) == 4 and mti.isdigit() else \
        "0210"


#: message types and processing codes, one string each
_SHARED: Final = {v: v for v in ("0100", "0200", "0220", "0400", "00", "01", "03", "20", "31")}
_RESPONSE_MTIS: Final = {m: m[:2] + str(int(m[2]) + 1) + m[3] for m in
                         ("0100", "0200", "0220", "0400", "0800")}
#: one decoder for the commands' JSON (json.loads builds one per call for bytes)
_JSON: Final = json.JSONDecoder()

