"""The payment institutions and the app as a system of the engine (prefix ``wallets``),
hosted by the world's builder (world.py: its state is the builder's, so stores written
before wallets existed still open).

The world's builder opens it with ``wallets.setup`` (part of ``world.build``: the
institutions, the users and their wallets, the voucher campaigns and their funds); the app's
events arrive as ``banks.event`` commands (banks/system.py HANDLERS names them) and are
carried out here, while the logged command is applied, through the banks, IBPS and the card
switch. After every log entry :meth:`Wallets.after_apply` books what IBPS finished (a
top-up credited to the institution, a withdrawal returned). A world without wallets keeps
nothing here: its state is empty bytes, so its state hash is what it always was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Final

from qingsuan.cards.records import Terminal
from qingsuan.clock import format_time
from qingsuan.engine import AccountSpec
from qingsuan.ledger import AccountFlags, NormalSide
from qingsuan.wallets import app, credit, follow, funds, transit, vouchers, wake
from qingsuan.wallets.reasons import WalletReason
from qingsuan.wallets.state import Campaign, PaymentCode, Ride, User, Voucher, dump

if TYPE_CHECKING:
    from qingsuan.banks.system import Banks
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.engine import Engine

#: the app's own terminal at the switch (云闪付 is the switch's app): balance inquiries
APP_TERMINAL: Final = "APPQUERY"

Handler = Callable[["Wallets", dict[str, Any]], None]


class Wallets:
    """The engine system with prefix ``wallets``."""

    prefix = "wallets"

    def __init__(self, banks: Banks, switch: CardSwitch) -> None:
        self.banks, self.switch = banks, switch
        self.engine: Engine | None = None
        self._reset()

    def _reset(self) -> None:
        self.active = False
        #: payment institution -> its collection account (a customer id in its own book)
        self.institutions: dict[str, str] = {}
        self.users: dict[str, User] = {}
        #: payment codes by the id of the event that issued them
        self.codes: dict[str, PaymentCode] = {}
        self.campaigns: dict[str, Campaign] = {}
        #: vouchers by the id of the claim
        self.vouchers: dict[str, Voucher] = {}
        #: (campaign, phone) -> the ids of the user's vouchers of the campaign, in claim
        #: order: derived from ``vouchers`` (rebuilt on load, never in the state), so a
        #: claim or a payment looks at the user's own vouchers, not at everyone's
        self.held: dict[tuple[str, str], list[str]] = {}
        #: bound card token -> its user's phone: derived from the users' cards (rebuilt
        #: on load, never in the state), so binding need not look at every user
        self.bound: dict[str, str] = {}
        #: merchant customer id -> its merchant category code (MCC)
        self.merchants: dict[str, str] = {}
        #: every app event's fate, by its id
        self.records: dict[str, dict[str, Any]] = {}
        #: phone -> the ids of the records naming the user (as ``user`` or ``to``), in
        #: record order: derived from ``records`` (rebuilt on load, never in the state), so
        #: a user's latest moves are read without looking at everyone's
        self.records_of: dict[str, list[str]] = {}
        #: top-ups, withdrawals and repayments whose IBPS item has not ended yet
        self.waiting: list[dict[str, Any]] = []
        #: credit-card statements by card token, oldest first (wallets/credit.py)
        self.statements: dict[str, list[dict[str, Any]]] = {}
        #: transit rides authorised offline, by the ride's event id (wallets/transit.py)
        self.rides: dict[str, Ride] = {}
        #: phone -> the ids of the user's rides, oldest first: derived from ``rides``
        #: (rebuilt on load), so a gate looks at the rider's own rides only
        self.rides_of: dict[str, list[str]] = {}
        #: the wallets' own moments (wallets/wake.py): the last statement run (the build
        #: at first; None in a store written before them, until its next command) and the
        #: last transit batch
        self.statements_us: int | None = None
        self.clearing_us = 0
        #: derived, never in the state: the earliest day of a ride still open ("" when
        #: not known: looked for again) and whether the switch holds any credit card
        self._open_ride_day: str | None = ""
        self._credit_cards: bool | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ applying

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        if kind != "wallets.setup":
            raise ValueError(f"unknown wallets command {kind!r}")
        self._setup(json.loads(body))
        return None

    def _setup(self, doc: dict[str, Any]) -> None:
        engine = self.engine
        assert engine is not None and self.banks.books is not None
        if self.active:
            raise ValueError("the wallets are set up already")
        self.active = True
        self.statements_us = engine.now_us  # the first statement run comes after the build
        self.institutions = dict(doc["institutions"])
        self.merchants = dict(doc["merchants"])
        specs = []
        for phone, name, institution in doc["users"]:
            user = self.users[phone] = User(phone, name, institution)
            specs.append(AccountSpec(institution, user.wallet, NormalSide.CREDIT,
                                     AccountFlags.MUST_NOT_OVERDRAW))
        for c in doc["campaigns"]:
            campaign = self.campaigns[c["id"]] = Campaign(**c)
            specs.append(AccountSpec(campaign.sponsor_bank, campaign.fund, NormalSide.CREDIT,
                                     AccountFlags.MUST_NOT_OVERDRAW))
        engine.open_derived(specs)
        for campaign in self.campaigns.values():  # the sponsor sets the budget aside
            code = self.banks.books.post(campaign.sponsor_bank,
                                         f"customer:{campaign.sponsor}", campaign.fund,
                                         campaign.budget_fen)
            if not code.done:
                raise ValueError(f"sponsor {campaign.sponsor} cannot fund campaign "
                                 f"{campaign.id}: {code.name}")
        self.switch.apply("cards.setup", engine.now_us, json.dumps({
            "cards": [], "key_check": self.switch.key_check,
            "terminals": [asdict(Terminal(APP_TERMINAL, "pos", "CUPS", None, 0))]},
            sort_keys=True).encode())

    def handle(self, do: str, f: dict[str, Any]) -> None:
        """Carry out one app event (a ``banks.event`` of a kind in :data:`HANDLERS`)."""
        HANDLERS[do](self, f)

    def after_apply(self) -> None:
        if not self.active:
            return
        if self.waiting:
            follow.follow(self)
        if self.statements_us is None:
            self.statements_us = self.now_us
        wake.close_campaigns(self, self.now_us)

    def on_tick(self, now_us: int) -> None:
        """A logged tick (hosted by the world's builder): the statement run and the
        transit batch whose time has come (wallets/wake.py)."""
        if self.active:
            wake.on_tick(self, now_us)

    def next_due_us(self, after_us: int) -> int | None:
        """The wallets' next moment after ``after_us`` (folded into the banks' wake-up)."""
        return wake.next_due_us(self, after_us)

    def has_credit_cards(self) -> bool:
        if self._credit_cards is None:
            self._credit_cards = any(c.kind == "credit" for c in self.switch.cards.values())
        return self._credit_cards

    def open_ride_day(self) -> str | None:
        """The Beijing day of the earliest ride not cleared yet (None: every ride is)."""
        if self._open_ride_day == "":
            self._open_ride_day = min((r.day for r in self.rides.values()
                                       if r.status in ("authorised", "declined")),
                                      default=None)
        return self._open_ride_day

    def forget_open_ride_day(self) -> None:
        """A ride was added or a batch ran: the earliest open ride is looked for again."""
        self._open_ride_day = ""

    # ------------------------------------------------------------------ helpers

    @property
    def now_us(self) -> int:
        assert self.engine is not None
        return self.engine.now_us

    def param(self, name: str) -> int:
        assert self.engine is not None
        return int(self.engine.params[name])

    def balance_fen(self, book: str, name: str) -> int:
        assert self.engine is not None
        reg = self.engine.registry
        return self.engine.ledger.balance(reg.id(book, name)).posted_fen

    def record(self, f: dict[str, Any], do: str, **extra: Any) -> dict[str, Any]:
        rec = {"do": do, "at": format_time(self.now_us), "status": "done", "reason": None,
               **extra}
        if f["id"] not in self.records:
            self._index_record(f["id"], rec)
        self.records[f["id"]] = rec
        return rec

    def _index_record(self, rid: str, rec: dict[str, Any]) -> None:
        for phone in {rec.get("user"), rec.get("to")} - {None}:
            self.records_of.setdefault(str(phone), []).append(rid)

    def refuse(self, f: dict[str, Any], do: str, reason: WalletReason, message: str
               ) -> None:
        """A refusal: recorded with its reason; nothing else changes."""
        rec = self.record(f, do)
        rec["status"] = "refused"
        rec["reason"] = reason.detail(message)

    def user(self, f: dict[str, Any], do: str, key: str = "user") -> User | None:
        found = self.users.get(str(f.get(key)))
        if found is None:
            self.refuse(f, do, WalletReason.UNKNOWN_USER, f"{key} {f.get(key)!r}")
        return found

    def bound_card(self, f: dict[str, Any], do: str) -> tuple[User, str] | None:
        """The request's user and the masked number of its card ``card``, which must be
        bound to that user (else the refusal is recorded and None comes back)."""
        user = self.user(f, do)
        if user is None:
            return None
        masked = user.masked(f["card"])
        if masked is None:
            self.refuse(f, do, WalletReason.NOT_BOUND, f"card {f['pan_masked']}")
            return None
        return user, masked

    def held_fen(self) -> int:
        """Money customers hold outside the banks' deposits: wallet balances and the
        campaigns' funds (money_conserved counts them beside the deposits)."""
        if not self.active:
            return 0
        return (sum(self.balance_fen(u.institution, u.wallet) for u in self.users.values())
                + sum(self.balance_fen(c.sponsor_bank, c.fund)
                      for c in self.campaigns.values()))

    # ------------------------------------------------------------------ state

    def dump_state(self) -> bytes:
        if not self.active:
            return b""  # a world without wallets: its state hash is unchanged
        return json.dumps({
            "institutions": self.institutions, "merchants": self.merchants,
            "users": [dump(u) for u in self.users.values()],
            "codes": {k: dump(v) for k, v in self.codes.items()},
            "code_order": list(self.codes),
            "campaigns": [dump(c) for c in self.campaigns.values()],
            "vouchers": {k: dump(v) for k, v in self.vouchers.items()},
            "voucher_order": list(self.vouchers),
            "records": self.records, "record_order": list(self.records),
            "waiting": self.waiting, "statements": self.statements,
            "statement_order": list(self.statements),
            "wake": {"statements_us": self.statements_us, "clearing_us": self.clearing_us},
            **({"rides": {k: dump(v) for k, v in self.rides.items()},
                "ride_order": list(self.rides)} if self.rides else {})},
            sort_keys=True, ensure_ascii=False).encode()

    def load_state(self, state: bytes) -> None:
        self._reset()
        if not state:
            return
        doc = json.loads(state)
        self.active = True
        self.institutions, self.merchants = doc["institutions"], doc["merchants"]
        self.users = {u["phone"]: User(**u) for u in doc["users"]}
        self.bound = {token: u.phone for u in self.users.values() for token, _ in u.cards}
        self.codes = {k: PaymentCode(**doc["codes"][k]) for k in doc["code_order"]}
        self.campaigns = {c["id"]: Campaign(**c) for c in doc["campaigns"]}
        self.vouchers = {k: Voucher(**doc["vouchers"][k]) for k in doc["voucher_order"]}
        for k, v in self.vouchers.items():
            self.held.setdefault((v.campaign, v.phone), []).append(k)
        self.records = {k: doc["records"][k] for k in doc["record_order"]}
        for k, rec in self.records.items():
            self._index_record(k, rec)
        self.waiting = doc["waiting"]
        self.statements = {k: doc["statements"][k] for k in doc["statement_order"]}
        rides = doc.get("rides", {})  # kept only once there is a ride
        self.rides = {k: Ride(**rides[k]) for k in doc.get("ride_order", [])}
        for k, r in self.rides.items():
            self.rides_of.setdefault(r.phone, []).append(k)
        # a store written before the wallets' own moments: its first command sets them
        moments = doc.get("wake", {})
        self.statements_us = moments.get("statements_us")
        self.clearing_us = moments.get("clearing_us", 0)


HANDLERS: Final[dict[str, Handler]] = {
    "bind_card": app.bind_card,
    "unbind_card": app.unbind_card,
    "card_balances": app.card_balances,
    "payment_code": app.payment_code,
    "qr_pay": app.qr_pay,
    "wallet_top_up": funds.top_up,
    "wallet_withdrawal": funds.withdrawal,
    "wallet_transfer": funds.transfer,
    "claim_voucher": vouchers.claim,
    "credit_statement": credit.statement,
    "card_repayment": credit.repayment,
    "wallet_pay": funds.pay_merchant,
    "close_campaign": vouchers.close,
    "transit_ride": transit.ride,
    "transit_clearing": transit.clearing,
}
