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
  declined -> 12; a reversal undoes the postings exactly, and a second one changes nothing.

Clearing (the cut-off, fees, files) and the HVPS settlement of the day's positions are the
next step (cards/clearing.py and cards/files.py already compute them).
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from qingsuan.calendar import card_clearing_date
from qingsuan.cards.iso8583 import luhn_ok, mask_pan
from qingsuan.clock import from_datetime, to_beijing, to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.params import Params

if TYPE_CHECKING:
    from qingsuan.cnaps.system import Cnaps
    from qingsuan.engine import Engine

#: the card switch's name as a CNAPS participant
SWITCH: Final = "CUPS"

MAX_TXNS: Final = 10_000_000


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


@dataclass
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

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ commands

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        doc = json.loads(body)
        if kind == "cards.setup":
            for c in doc["cards"]:
                card = Card(**c)
                self.cards[card.pan] = card
                self.bins[card.pan[:6]] = card.issuer
            for t in doc["terminals"]:
                self.terminals[t["id"]] = Terminal(**t)
            return {"ok": True}
        if kind == "cards.request":
            return self._request(doc, body.decode(), timestamp_us)
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
        pan = f.get("2", "")
        proc = f.get("3", "000000")[:2]
        amount = int(f.get("4", "0") or 0)
        terminal = self.terminals.get(f.get("41", ""))
        txn = CardTxn(key, mti, proc, mask_pan(pan) if pan else "", None,
                      terminal.acquirer if terminal else f.get("32", ""), f.get("41", ""),
                      amount, "96", "declined", now_us, body, f.get("37", ""), card=pan)
        self.txns[key] = txn
        txn.rc = self._decide(txn, f, pan, proc, amount, terminal, now_us)
        if txn.rc == "00":
            txn.status = "approved"
            card = self.cards.get(pan)
            txn.card_kind = card.kind if card else "debit"
            assert self.engine is not None
            cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
            txn.clearing_date = card_clearing_date(to_beijing_naive(now_us), cutoff).isoformat()
        return self._answer(txn)

    def _decide(self, txn: CardTxn, f: dict[str, str], pan: str, proc: str, amount: int,
                terminal: Terminal | None, now_us: int) -> str:
        assert self.engine is not None
        params = self.engine.params
        if terminal is None or (proc == "01" and terminal.kind != "atm") or \
                (proc == "00" and terminal.kind != "pos") or proc not in ("00", "01", "31"):
            return "12"
        if f.get("49", "156") != "156":
            return "30"
        if not pan.isdigit() or not luhn_ok(pan):
            return "14"
        issuer = next((self.bins[pan[:n]] for n in range(len(pan), 0, -1)
                       if pan[:n] in self.bins), None)
        if issuer is None:
            return "15"
        txn.issuer = issuer
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
        reg, ledger = self.engine.registry, self.engine.ledger
        bank, name = card.account.split(":", 1)
        balance = ledger.balance(reg.id(bank, name))
        if proc == "31":
            txn.balance_fen = balance.available_fen
            return "00"
        if amount <= 0:
            return "13"
        day = to_beijing(now_us).date().isoformat()
        if proc == "01":
            used = self.daily.get(f"{pan}|{day}", 0)
            if used + amount > int(params["cards.daily_withdrawal_limit"]):
                return "61"
        if balance.available_fen - amount < -ledger.account(reg.id(bank, name)
                                                           ).overdraft_limit_fen:
            return "51"
        acquirer = terminal.acquirer
        credit_to = (terminal.acquirer, f"atm_cash:{terminal.id}") if proc == "01" else \
            (terminal.acquirer, "due_to_merchants")
        result = self.engine.post([
            (reg.id(bank, name), reg.id(bank, "due_to_switch"), amount),
            (reg.id(acquirer, "due_from_switch"), reg.id(*credit_to), amount),
        ], linked=True)
        if not result.all_done:
            return "96"
        if proc == "01":
            self.daily[f"{pan}|{day}"] = self.daily.get(f"{pan}|{day}", 0) + amount
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
        if original.status != "approved" or original.proc != "00":
            return self._reply(f, "12")
        return self._undo(original, f)

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
        if original.status != "approved":
            return self._reply(f, "12")  # cleared already: too late for a reversal
        return self._undo(original, f)

    def _undo(self, original: CardTxn, f: dict[str, str]) -> dict[str, str]:
        """Take an approved transaction back out of both banks' books, exactly."""
        assert self.engine is not None
        if original.proc in ("00", "01") and original.issuer is not None:
            card = self.cards[original.card]
            reg = self.engine.registry
            bank, name = card.account.split(":", 1)
            terminal = self.terminals[original.terminal]
            credit_back = (terminal.acquirer, f"atm_cash:{terminal.id}") \
                if original.proc == "01" else (terminal.acquirer, "due_to_merchants")
            result = self.engine.post([
                (reg.id(bank, "due_to_switch"), reg.id(bank, name), original.amount_fen),
                (reg.id(*credit_back), reg.id(terminal.acquirer, "due_from_switch"),
                 original.amount_fen),
            ], linked=True)
            assert result.all_done, result.failures()
            if original.proc == "01":
                day = to_beijing(original.at_us).date().isoformat()
                k = f"{card.pan}|{day}"
                self.daily[k] = self.daily.get(k, 0) - original.amount_fen
        original.status = "reversed"
        return self._reply(f, "00")

    # ------------------------------------------------------------------ clearing day

    def next_cutoff_us(self, after_us: int) -> int | None:
        """The next cut-off (日切) while approved transactions wait to be cleared."""
        assert self.engine is not None
        if not any(t.status == "approved" and t.proc != "31" for t in self.txns.values()):
            return None
        cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
        day = to_beijing_naive(after_us).date()
        for offset in (0, 1):
            at = from_datetime(dt.datetime.combine(day + dt.timedelta(days=offset), cutoff))
            if at > after_us:
                return at
        return None

    def on_tick(self, now_us: int) -> None:
        """At each cut-off, close the clearing day that ends there."""
        assert self.engine is not None
        cutoff = _hhmm(int(self.engine.params["cards.cutoff"]))
        days = sorted({t.clearing_date for t in self.txns.values()
                       if t.status == "approved" and t.proc != "31"})
        for day in days:
            ends = from_datetime(dt.datetime.combine(dt.date.fromisoformat(day), cutoff))
            if ends <= now_us and day not in self.days_closed:
                self._close_day(day, now_us)

    def _close_day(self, day: str, now_us: int) -> None:
        """清分: the day's approved transactions into net positions with the fees; the
        banks' dues to and from the switch move into their CUPS clearing accounts, the
        acquirers pay their merchants net of the MDR, and the positions go to HVPS."""
        from qingsuan.cards import clearing

        assert self.engine is not None
        params, reg = self.engine.params, self.engine.registry
        txns = [t for t in self.txns.values() if t.clearing_date == day
                and t.status == "approved" and t.proc in ("00", "01")]
        self.days_closed.append(day)
        postings: list[tuple[int, int, int]] = []
        for t in txns:  # merchants: paid net of the MDR by their acquirer (收单清算)
            terminal = self.terminals[t.terminal]
            if t.proc == "00" and terminal.merchant:
                mdr = (t.amount_fen * terminal.mdr_ppm + 500_000) // 1_000_000
                bank, name = terminal.merchant.split(":", 1)
                postings.append((reg.id(bank, "due_to_merchants"), reg.id(bank, name),
                                 t.amount_fen - mdr))
                if mdr:
                    postings.append((reg.id(bank, "due_to_merchants"),
                                     reg.id(bank, "fee_income"), mdr))
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
                np.array([clearing.WITHDRAWAL if t.proc == "01" else clearing.PURCHASE
                          for t in inter], np.int64),
                np.array([clearing.CREDIT if t.card_kind == "credit" else clearing.DEBIT
                          for t in inter], np.int64),
                np.array([t.amount_fen for t in inter], np.int64),
                n_participants=len(names), switch=index[SWITCH], schedule=schedule)
            for i, t in enumerate(inter):  # the clearing files show these, as cleared
                t.issuer_fee_net_fen = int(result.issuer_fee_net_fen[i])
                t.acquirer_fee_net_fen = int(result.acquirer_fee_net_fen[i])
            owed = {n: 0 for n in names}
            due = {n: 0 for n in names}
            for t in inter:
                owed[t.issuer or ""] += t.amount_fen
                due[t.acquirer] += t.amount_fen
            for n in names:
                p = int(result.positions_fen[index[n]])
                positions[n] = p
                if n == SWITCH:
                    if p:
                        postings.append((reg.id(n, "cups_clearing"), reg.id(n, "fee_income"), p))
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
            self.notices.append((now_us, t.key, "cleared"))

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
            "notices": self.notices}, sort_keys=True).encode()

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self.cards = {c["pan"]: Card(**c) for c in doc["cards"]}
        self.terminals = {t["id"]: Terminal(**t) for t in doc["terminals"]}
        self.bins = dict(doc["bins"])
        self.txns = {t["key"]: CardTxn(**t) for t in doc["txns"]}
        self.daily = {k: int(v) for k, v in doc["daily"].items()}
        self.days_closed = list(doc["days_closed"])
        self.notices = [(int(a), str(b), str(c)) for a, b, c in doc["notices"]]


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
    return mti[:2] + str(int(mti[2]) + 1) + mti[3:] if len(mti) == 4 and mti.isdigit() else \
        "0210"

