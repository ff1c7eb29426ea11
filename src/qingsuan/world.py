"""One world: the engine with every system wired once (CNAPS, the card switch, the banks).

Every edge opens its store through :meth:`World.open` (``qingsuan run``, ``demo``,
``serve``, ``cnaps send``/``statement``) and every replay (``log verify``) through
:func:`world_systems`, so a store is always rebuilt with exactly the systems that wrote it.
A new world is built from a scenario's description by :meth:`World.build`, as one logged
command: the log records what the world was built from.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from qingsuan.banks.books import bank_accounts
from qingsuan.banks.ranges import CustomerRange
from qingsuan.banks.system import Banks
from qingsuan.cards.iso8583 import mask_pan
from qingsuan.cards.switch import SWITCH, CardSwitch
from qingsuan.cards.switch import Card as CardRecord
from qingsuan.cards.switch import Terminal as TerminalRecord
from qingsuan.cards.vault import CardKeyError, CardVault, resolve
from qingsuan.clock import Clock
from qingsuan.cnaps.hvps import dumps
from qingsuan.cnaps.participants import ParticipantKind, check_code
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import AccountSpec, Engine, System
from qingsuan.ledger import AccountFlags, NormalSide
from qingsuan.ledger.batch import MAX_BATCH
from qingsuan.wallets.system import Wallets

if TYPE_CHECKING:
    from qingsuan.sim.scenario import Event, Scenario
    from qingsuan.sim.scenario_model import CustomerTable

PBOC: Final = "PBOC"
#: the card switch's bank code as a CNAPS participant (category 903: the card switch)
SWITCH_CODE: Final = "903100000001"
_MNO: Final = AccountFlags.MUST_NOT_OVERDRAW


def world_systems() -> list[System]:
    """A fresh set of the systems every world runs, wired together."""
    cnaps = Cnaps()
    switch = CardSwitch(cnaps)
    banks = Banks(cnaps, switch)
    return [cnaps, switch, banks, Builder(cnaps, switch, banks, Wallets(banks, switch))]


def world_spec(sc: Scenario, vault: CardVault | None = None) -> dict[str, Any]:
    """What a world is built from (the body of its ``world.build`` command): parameters,
    participants, customers, cards and terminals, amounts in fen. A card is its token,
    masked PAN, encrypted PAN and PIN verification value under ``vault`` (required when
    there are cards): the log never holds a PAN (cards/vault.py)."""
    table = sc.customer_table()
    if sc.cards and vault is None:
        raise CardKeyError("a world with cards is built with a card key")
    spec = {
        "name": sc.name,
        "params": {k: v if isinstance(v, bool) else str(v)
                   for k, v in sc.params.written().items()},
        "participants": [[p.name, p.code, p.kind, p.settlement_balance_fen, p.collateral_fen,
                          sorted(p.caps_fen.items())] for p in sc.participants],
        "customers": [[c.id, c.bank, c.account, c.name, c.closed, c.credit_limit_fen,
                       c.balance_fen, c.merchant.mdr_ppm if c.merchant else None]
                      for c in table.listed],
        "cards": [[vault.token(c.pan), mask_pan(c.pan), vault.encrypt_pan(c.pan),
                   _bank_of(table, c.account), c.account, c.kind,
                   vault.key_pin_digest(c.pin_hash) if c.pin_hash else None]
                  for c in sc.cards] if vault is not None else [],
        "card_key_check": vault.check_value() if vault is not None and sc.cards else "",
        "terminals": [[t.id, t.kind, t.bank, t.merchant, t.cash_fen] for t in sc.terminals],
    }
    if table.ranges:  # only then: a world of listed customers is described as before
        spec["customer_ranges"] = [r.to_spec() for r in table.ranges]
    if sc.traffic is not None and sc.traffic.cards is not None:
        spec["card_switch"] = "traffic"  # card traffic to play: the switch joins
    if sc.wallets is not None:  # only then: a world without wallets is built as before
        # (merchants are listed customers: a range makes none)
        spec["wallets"] = sc.wallets.setup({c.id: c for c in table.listed})
    return spec


def _bank_of(table: CustomerTable, cid: str) -> str:
    found = table.get(cid)
    if found is None:
        raise KeyError(f"no customer {cid!r}")
    return found.bank


class Builder:
    """The engine system with prefix ``world``: applies ``world.build``, opening the whole
    world while applying one logged command. Holds no state of its own; it hosts the
    payment institutions and the app (wallets/system.py), whose state is its state: empty
    in a world without wallets, so such a world's snapshots and state hash are what they
    were before wallets existed, and stores written before them still open."""

    prefix = "world"

    def __init__(self, cnaps: Cnaps, switch: CardSwitch, banks: Banks, wallets: Wallets
                 ) -> None:
        self.cnaps, self.switch, self.banks, self.wallets = cnaps, switch, banks, wallets
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self.wallets.attach(engine)

    def after_apply(self) -> None:
        self.wallets.after_apply()

    def on_tick(self, now_us: int) -> None:
        self.wallets.on_tick(now_us)

    def dump_state(self) -> bytes:
        return self.wallets.dump_state()

    def load_state(self, state: bytes) -> None:
        self.wallets.load_state(state)

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        if kind == "world.join":
            return self._join(json.loads(body))
        if kind != "world.build":
            raise ValueError(f"unknown world command {kind!r}")
        engine = self.engine
        assert engine is not None
        if engine.registry.books:
            raise ValueError("the world is built already")
        doc = json.loads(body)
        for name, value in doc["params"].items():
            engine.params.set(name, value)
        participants, customers = doc["participants"], doc["customers"]
        has_switch = bool(doc["cards"] or doc["terminals"] or doc.get("card_switch"))
        members = [p[0] for p in participants]
        joins = [(name, code, ParticipantKind.PAYMENT_INSTITUTION
                  if kind == "payment_institution" else ParticipantKind.DIRECT_BANK)
                 for name, code, kind, *_ in participants]
        if has_switch:  # the card switch is a CNAPS participant of its own
            joins.append((SWITCH, SWITCH_CODE, ParticipantKind.CARD_SWITCH))
        for name, code, pkind in joins:
            joined = self._cnaps("cnaps.join", {"name": name, "code": code,
                                                "kind": pkind.value, "settles_through": None})
            if not joined.ok:
                raise ValueError(f"participant {name} cannot join: {joined.reason}")
        specs: list[AccountSpec] = []
        for name in members:
            specs += bank_accounts(name)
        if has_switch:
            specs += [AccountSpec(SWITCH, "equity", NormalSide.CREDIT),
                      AccountSpec(SWITCH, "fee_income", NormalSide.CREDIT)]
        # the listed customers' accounts as they are opened, not a list of a million
        engine.open_derived(itertools.chain(specs, (
            AccountSpec(bank, f"customer:{cid}", NormalSide.CREDIT,
                        _MNO | AccountFlags.CLOSED if closed else _MNO,
                        overdraft_limit_fen=limit)
            for cid, bank, _, _, closed, limit, _, _ in customers), (
            AccountSpec(bank, f"atm_cash:{tid}", NormalSide.DEBIT, _MNO)
            for tid, kind, bank, _, _ in doc["terminals"] if kind == "atm")))
        # generated customers (banks/ranges.py): one registry range of accounts each
        ranges = [CustomerRange.from_spec(r) for r in doc.get("customer_ranges", ())]
        firsts = [engine.open_range(r.bank, f"customer:{r.id_prefix}", r.count, _MNO)
                  for r in ranges]
        self._open_balances(doc, list(zip(ranges, firsts, strict=True)))
        for name, _, _, _, collateral, caps in participants:
            if collateral:
                self._cnaps("cnaps.pledge", {
                    "participant": name, "value_fen": collateral,
                    "haircut_ppm": int(engine.params["hvps.pledge_haircut"])})
            for key, cap in caps:
                system, _, backing = key.partition("_")
                capped = self._cnaps("cnaps.net_cap", {
                    "system": system.upper(), "participant": name, "cap_fen": cap,
                    "backing": "earmark" if backing else "collateral"})
                assert capped.ok, (name, key, capped)
        mdr = {c[0]: c[7] for c in customers}
        bank_of = {c[0]: c[1] for c in customers}  # a merchant may bank elsewhere
        if has_switch:
            self.switch.apply("cards.setup", timestamp_us, json.dumps({
                "cards": [asdict(CardRecord(token, masked, enc, issuer,
                                            f"{issuer}:customer:{account}", kind, pin))
                          for token, masked, enc, issuer, account, kind, pin in doc["cards"]],
                "key_check": doc["card_key_check"],
                "terminals": [asdict(TerminalRecord(
                    tid, kind, bank,
                    f"{bank_of[merchant]}:customer:{merchant}" if merchant else None,
                    (mdr.get(merchant) or 0) if merchant else 0))
                    for tid, kind, bank, merchant, _ in doc["terminals"]]},
                sort_keys=True).encode())
        self.banks.apply("banks.setup", timestamp_us, json.dumps({
            "customers": [[cid, bank, account, name, closed, m]
                          for cid, bank, account, name, closed, _, _, m in customers],
            "terminals": [[tid, bank, kind, cash]
                          for tid, kind, bank, _, cash in doc["terminals"]],
            "members": members, "settling": members + ([SWITCH] if has_switch else []),
            "opening_settlement_fen": sum(p[3] for p in participants),
            "opening_deposits_fen": sum(c[6] for c in customers)
            + sum(r.count * r.balance_fen for r in ranges),
        }).encode())
        for rule in ranges:  # after the listed customers, in the directory's order
            self.banks.directory.add_range(rule)
        if "wallets" in doc:
            self.wallets.apply("wallets.setup", timestamp_us, json.dumps(
                doc["wallets"], sort_keys=True, ensure_ascii=False).encode())
        return None

    def _join(self, doc: dict[str, Any]) -> JoinOutcome:
        """``world.join``: one more participant while the world runs, opened exactly as
        ``world.build`` opens each of its own (CNAPS join, the bank's books and settlement
        account, the opening balance issued by the PBOC, collateral, caps, its customers).
        Checked before it is logged; checked again here, so a replay never half-applies."""
        problem = join_problem(self, doc)
        if problem is not None:
            return problem
        engine = self.engine
        assert engine is not None
        name, balance = doc["name"], int(doc["settlement_balance_fen"])
        joined = self._cnaps("cnaps.join", {"name": name, "code": doc["code"],
                                            "kind": doc["kind"], "settles_through": None})
        assert joined.ok, joined
        customers = [(f"{name.lower()}_{account}", account, holder, int(fen))
                     for account, holder, fen in doc["customers"]]
        engine.open_derived([*bank_accounts(name), *(
            AccountSpec(name, f"customer:{cid}", NormalSide.CREDIT, _MNO)
            for cid, _, _, _ in customers)])
        legs = [(PBOC, "issued", f"settlement:{name}", balance),
                (name, "reserve_at_pboc", "equity", balance),
                *((name, "other_assets", f"customer:{cid}", fen)
                  for cid, _, _, fen in customers)]
        reg = engine.registry
        self._post([(reg.id(book, debit), reg.id(book, credit), fen)
                    for book, debit, credit, fen in legs if fen])
        if doc["collateral_fen"]:
            self._cnaps("cnaps.pledge", {
                "participant": name, "value_fen": int(doc["collateral_fen"]),
                "haircut_ppm": int(engine.params["hvps.pledge_haircut"])})
        for key, cap in doc["caps"]:
            system, _, backing = key.partition("_")
            capped = self._cnaps("cnaps.net_cap", {
                "system": system.upper(), "participant": name, "cap_fen": int(cap),
                "backing": "earmark" if backing else "collateral"})
            assert capped.ok, (name, key, capped)
        banks = self.banks
        self.banks.apply("banks.setup", engine.now_us, json.dumps({
            "customers": [[cid, name, account, holder, False, None]
                          for cid, account, holder, _ in customers],
            "terminals": [], "members": [*banks.members, name],
            "settling": [*banks.settling, name], "opening_settlement_fen": balance,
            "opening_deposits_fen": sum(fen for *_, fen in customers)}).encode())
        return JoinOutcome(True, None, None, "joined")

    def _cnaps(self, kind: str, doc: dict[str, Any]) -> Any:
        assert self.engine is not None
        return self.cnaps.apply(kind, self.engine.now_us, dumps(doc))

    def _open_balances(self, doc: dict[str, Any], ranges: list[tuple[CustomerRange, int]]
                       ) -> None:
        """The opening balances: settlement accounts (and each bank's mirror), customer
        deposits (listed, then each range's from its first account id on), ATM cash."""
        assert self.engine is not None
        reg = self.engine.registry
        legs: list[tuple[int, int, int]] = []

        def move(book: str, debit: str, credit: str, amount_fen: int) -> None:
            if amount_fen:
                legs.append((reg.id(book, debit), reg.id(book, credit), amount_fen))

        for name, _, _, balance, *_ in doc["participants"]:
            move(PBOC, "issued", f"settlement:{name}", balance)
            move(name, "reserve_at_pboc", "equity", balance)
        for cid, bank, *_, balance, _ in doc["customers"]:
            move(bank, "other_assets", f"customer:{cid}", balance)
        for rule, first in ranges:  # after the listed customers, a block at a time
            self._post(legs)
            legs.clear()
            other_assets = reg.id(rule.bank, "other_assets")
            for start in range(0, rule.count if rule.balance_fen else 0, MAX_BATCH):
                stop = min(rule.count, start + MAX_BATCH)
                self.engine.post_columns(
                    np.full(stop - start, other_assets, np.int64),
                    np.arange(first + start, first + stop, dtype=np.int64),
                    np.full(stop - start, rule.balance_fen, np.int64))
        for tid, kind, bank, _, cash in doc["terminals"]:
            if kind == "atm":
                move(bank, f"atm_cash:{tid}", "equity", cash)
        self._post(legs)

    def _post(self, legs: list[tuple[int, int, int]]) -> None:
        if legs:  # as columns: a world of millions of customers opens in one pass
            assert self.engine is not None
            cols = np.array(legs, np.int64)
            self.engine.post_columns(cols[:, 0], cols[:, 1], cols[:, 2])


#: a participant added while the world runs: the kinds the banks' tier models (an indirect
#: participant's books would settle in another's account: not modelled yet)
JOIN_KINDS: Final = (ParticipantKind.DIRECT_BANK.value, ParticipantKind.PAYMENT_INSTITUTION.value)
#: customers a ``world.join`` opens at most (a larger bank is a scenario's)
MAX_JOIN_CUSTOMERS: Final = 1000
#: names no participant may take: the PBOC's book, the card switch's, the operator's key
RESERVED_NAMES: Final = frozenset({PBOC, SWITCH, "OPERATOR"})
_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$")
_ACCOUNT_RE: Final = re.compile(r"^\d{6,32}$")


@dataclass(frozen=True)
class JoinOutcome:
    """What ``world.join`` answered: joined, or why not (a reason code and the field)."""

    ok: bool
    reason: str | None
    field: str | None
    message: str


def join_problem(builder: Builder, doc: dict[str, Any]) -> JoinOutcome | None:
    """Why ``doc`` (a ``world.join`` body) cannot join this world, or None. The same
    checks before the command is logged (the operator's answer) and when it is applied."""

    def no(reason: str, field: str, message: str) -> JoinOutcome:
        return JoinOutcome(False, reason, field, message)

    engine, directory = builder.engine, builder.cnaps.directory
    if engine is None or not engine.registry.books:
        return no("no_world", "name", "the world is not built yet")
    name, code, kind = doc["name"], doc["code"], doc["kind"]
    if not isinstance(name, str) or not _NAME_RE.match(name) or \
            name.upper() in RESERVED_NAMES:
        return no("invalid_name", "name", "a participant's name is a letter, then letters, "
                  "digits, _ or -, at most 32, and not PBOC, CUPS or operator "
                  f"(got {str(name)[:40]!r})")
    if kind not in JOIN_KINDS:
        return no("invalid_field", "kind", f"kind is one of {', '.join(JOIN_KINDS)} "
                  f"(got {str(kind)[:40]!r})")
    problem = check_code(code, ParticipantKind(kind))
    if problem is not None:
        return no("invalid_code", "code", problem)
    if name in directory or name in engine.registry.books or name in builder.banks.members:
        return no("duplicate", "name", f"participant {name} is already in the directory")
    holder = directory.by_code(code)
    if holder is not None:
        return no("duplicate", "code", f"code {code} already belongs to {holder.name}")
    amounts = [("settlement_balance", doc["settlement_balance_fen"]),
               ("collateral", doc["collateral_fen"]), *doc["caps"],
               *((f"customers[{k}].balance", c[2]) for k, c in enumerate(doc["customers"]))]
    for field, fen in amounts:
        if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
            return no("invalid_amount", field, f"{field} is fen, never negative")
    keys = [key for key, _ in doc["caps"]]
    if len(set(keys)) != len(keys) or not set(keys) <= {
            "beps", "ibps", "beps_earmark", "ibps_earmark"} or \
            {"beps", "beps_earmark"} <= set(keys) or {"ibps", "ibps_earmark"} <= set(keys):
        return no("invalid_field", "caps", "a cap is beps or ibps (collateral-backed) or "
                  "beps_earmark or ibps_earmark, each system once")
    earmarked = sum(fen for key, fen in doc["caps"] if key.endswith("_earmark"))
    if earmarked > doc["settlement_balance_fen"]:
        return no("invalid_field", "caps", "the earmarks total more than the opening "
                  "settlement balance")
    customers = doc["customers"]
    if len(customers) > MAX_JOIN_CUSTOMERS:
        return no("too_many_items", "customers", f"at most {MAX_JOIN_CUSTOMERS} customers")
    if customers and builder.banks.directory.ranges:
        return no("invalid_field", "customers", "this world's customers are generated by "
                  "ranges: listed customers cannot be added after them")
    accounts = [c[0] for c in customers]
    for k, (account, holder_name, _) in enumerate(customers):
        if not isinstance(account, str) or not _ACCOUNT_RE.match(account):
            return no("invalid_account", f"customers[{k}].account",
                      "an account number is 6 to 32 digits")
        if not isinstance(holder_name, str) or not holder_name.strip() or \
                len(holder_name) > 140 or not holder_name.isprintable():
            return no("invalid_name", f"customers[{k}].name",
                      "a name is 1 to 140 printable characters")
        if accounts.index(account) != k:
            return no("duplicate", f"customers[{k}].account", f"account {account} is listed "
                      "twice")
        if builder.banks.directory.find_id(f"{name.lower()}_{account}") is not None:
            return no("duplicate", f"customers[{k}].account", f"customer id "
                      f"{name.lower()}_{account} is taken")
    return None


@dataclass
class World:
    engine: Engine
    cnaps: Cnaps
    switch: CardSwitch
    banks: Banks
    #: where the card key comes from (cards/vault.py resolve): the store's url, an
    #: explicit key file, the sandbox default's seed for a store that does not outlive
    #: its run; the key itself once needed (building cards, tokenising a request)
    store: str = ""
    card_key_file: str | None = None
    sandbox_seed: str | None = None
    vault: CardVault | None = None
    #: the payment institutions and the app (inactive in a world without wallets)
    wallets: Wallets | None = None

    @classmethod
    def open(cls, store: str, clock: Clock, *, snapshot_every: int = 0,
             readonly: bool = False, create: bool = False, vault: CardVault | None = None,
             card_key_file: str | None = None, sandbox_seed: str | None = None) -> World:
        """Open (or create) the store and rebuild the world its log records. ``readonly``:
        to read a world (a statement) beside its writer; nothing is written or created.
        The card key (``vault``, or found from ``card_key_file``, the environment, the
        store's key file, ``sandbox_seed``: cards/vault.py) is looked for only when a
        card must be built or tokenised: replay never needs it."""
        systems = world_systems()
        engine = Engine.open(store, clock, snapshot_every=snapshot_every, systems=systems,
                             readonly=readonly, create=create)
        cnaps, switch, banks, builder = systems
        assert isinstance(cnaps, Cnaps) and isinstance(switch, CardSwitch)
        assert isinstance(banks, Banks) and isinstance(builder, Builder)
        world = cls(engine, cnaps, switch, banks, store, card_key_file, sandbox_seed,
                    wallets=builder.wallets)
        if vault is not None:
            try:
                world.use_vault(vault)
            except CardKeyError:
                engine.close()
                raise
        return world

    def card_vault(self, *, create: bool = False) -> CardVault:
        """The world's card key (made, with its key file, when ``create`` and there is
        none yet). :class:`CardKeyError` when there is none, or it is not the key the
        world was built with."""
        if self.vault is None:
            self.use_vault(resolve(self.store, key_file=self.card_key_file, create=create,
                                   sandbox_seed=self.sandbox_seed))
        assert self.vault is not None
        return self.vault

    def use_vault(self, vault: CardVault) -> None:
        built_with = self.switch.key_check
        if built_with and built_with != vault.check_value():
            raise CardKeyError(f"the card key from {vault.origin} is not the key this world "
                               f"was built with (check value {vault.check_value()}, the "
                               f"world's {built_with})")
        self.vault = vault
        self.switch.vault = vault

    @property
    def is_new(self) -> bool:
        return self.engine.applied_seq == 0

    def close(self) -> None:
        self.engine.close()

    # ------------------------------------------------------------------ building

    def build(self, sc: Scenario) -> None:
        """Build a scenario's world on a new store, as ONE logged command (``world.build``)
        whose body is the world's description: a stop at any point leaves either no world
        or the whole of it, and the log records what the world was built from."""
        assert self.is_new, "a world is built once, on a new store"
        vault = self.card_vault(create=True) if sc.cards else None
        self.engine.command("world.build", json.dumps(
            world_spec(sc, vault), sort_keys=True, ensure_ascii=False).encode())

    def join(self, doc: dict[str, Any]) -> JoinOutcome:
        """Add one participant while the world runs, as ONE logged command (``world.join``)
        whose body is its description (:func:`join_problem` says what it holds); a problem
        is answered before anything is logged."""
        builder = self.builder
        problem = join_problem(builder, doc)
        if problem is not None:
            return problem
        outcome: JoinOutcome = self.engine.command("world.join", json.dumps(
            doc, sort_keys=True, ensure_ascii=False).encode())
        return outcome

    @property
    def builder(self) -> Builder:
        found = self.engine.systems["world"]
        assert isinstance(found, Builder)
        return found

    # ------------------------------------------------------------------ driving

    def submit(self, event: Event, fields: dict[str, Any]) -> None:
        """Log one scenario event for the banks to carry out (fields as JSON values). Under
        deferred commits (a run) the events between two other commands (a tick) share one
        log entry (Engine.command_in_window)."""
        # orjson: a tenth of json's cost, the same document (decoded by either)
        self.engine.command_in_window("banks.event", orjson.dumps(
            {"do": event.do, "order": event.order, "fields": fields},
            option=orjson.OPT_SORT_KEYS))

    def next_due_us(self) -> int | None:
        """The next moment the world must be ticked at (the one wake-up rule)."""
        return self.banks.wake_us

