"""One world: the engine with every system wired once (CNAPS, the card switch, the banks).

Every edge opens its store through :meth:`World.open` (``qingsuan run``, ``demo``,
``serve``, ``cnaps send``/``statement``) and every replay (``log verify``) through
:func:`world_systems`, so a store is always rebuilt with exactly the systems that wrote it.
A new world is built from a scenario's description by :meth:`World.build`, as logged
commands: the log records what the world was built from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from qingsuan.banks.books import bank_accounts
from qingsuan.banks.system import Banks
from qingsuan.cards.switch import SWITCH, CardSwitch
from qingsuan.cards.switch import Card as CardRecord
from qingsuan.cards.switch import Terminal as TerminalRecord
from qingsuan.clock import Clock
from qingsuan.cnaps.netsys import SimAccount
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import AccountSpec, Engine, System
from qingsuan.ledger import AccountFlags, NormalSide, Transfer

if TYPE_CHECKING:
    from qingsuan.sim.scenario import Event, Scenario

PBOC: Final = "PBOC"
#: the card switch's bank code as a CNAPS participant (category 903: the card switch)
SWITCH_CODE: Final = "903100000001"
_MNO: Final = AccountFlags.MUST_NOT_OVERDRAW


def world_systems() -> list[System]:
    """A fresh set of the systems every world runs, wired together."""
    cnaps = Cnaps()
    switch = CardSwitch(cnaps)
    return [cnaps, switch, Banks(cnaps, switch)]


@dataclass
class World:
    engine: Engine
    cnaps: Cnaps
    switch: CardSwitch
    banks: Banks

    @classmethod
    def open(cls, store: str, clock: Clock, *, snapshot_every: int = 0) -> World:
        """Open (or create) the store and rebuild the world its log records."""
        systems = world_systems()
        engine = Engine.open(store, clock, snapshot_every=snapshot_every, systems=systems)
        cnaps, switch, banks = systems
        assert isinstance(cnaps, Cnaps) and isinstance(switch, CardSwitch)
        assert isinstance(banks, Banks)
        return cls(engine, cnaps, switch, banks)

    @property
    def is_new(self) -> bool:
        return self.engine.applied_seq == 0

    def close(self) -> None:
        self.engine.close()

    # ------------------------------------------------------------------ building

    def build(self, sc: Scenario) -> None:
        """Open a scenario's world on a new store: parameters, participants and their
        settlement accounts, every bank's books and customers, ATM cash, opening balances,
        collateral and caps, cards and terminals, and the banks' directory."""
        assert self.is_new, "a world is built once, on a new store"
        engine, cnaps = self.engine, self.cnaps
        has_switch = bool(sc.cards or sc.terminals)
        engine.set_params(dict(sc.params.written()))  # logged: replay sees them too
        for p in sc.participants:
            kind = (ParticipantKind.PAYMENT_INSTITUTION if p.kind == "payment_institution"
                    else ParticipantKind.DIRECT_BANK)
            joined = cnaps.join(p.name, p.code, kind)
            assert joined.ok, joined
        if has_switch:  # the card switch is a CNAPS participant of its own
            joined = cnaps.join(SWITCH, SWITCH_CODE, ParticipantKind.CARD_SWITCH)
            assert joined.ok, joined
        specs: list[AccountSpec] = []
        for p in sc.participants:
            specs += bank_accounts(p.name)
        if has_switch:
            specs += [AccountSpec(SWITCH, "equity", NormalSide.CREDIT),
                      AccountSpec(SWITCH, "fee_income", NormalSide.CREDIT)]
        specs += [AccountSpec(c.bank, f"customer:{c.id}", NormalSide.CREDIT,
                              _MNO | AccountFlags.CLOSED if c.closed else _MNO,
                              overdraft_limit_fen=c.credit_limit_fen)
                  for c in sc.customers]
        specs += [AccountSpec(t.bank, f"atm_cash:{t.id}", NormalSide.DEBIT, _MNO)
                  for t in sc.terminals if t.kind == "atm"]
        engine.open_named(specs)
        self._open_balances(sc)
        for p in sc.participants:
            if p.collateral_fen:
                cnaps.pledge(p.name, p.collateral_fen)
            for key, cap in sorted(p.caps_fen.items()):
                system, _, backing = key.partition("_")
                capped = cnaps.set_cap(system.upper(), p.name, cap,
                                       "earmark" if backing else "collateral")
                assert capped.ok, (p.name, key, capped)
        customers = {c.id: c for c in sc.customers}
        if has_switch:
            self.switch.setup(
                [CardRecord(c.pan, customers[c.account].bank,
                            f"{customers[c.account].bank}:customer:{c.account}", c.kind,
                            c.pin_hash.hex() if c.pin_hash else None) for c in sc.cards],
                [TerminalRecord(t.id, t.kind, t.bank,
                                f"{t.bank}:customer:{t.merchant}" if t.merchant else None,
                                _mdr(customers, t.merchant))
                 for t in sc.terminals])
        if sc.customers:
            cnaps.register_accounts([
                SimAccount(c.bank, c.account, c.name, f"{c.bank}:customer:{c.id}", c.closed)
                for c in sc.customers])
        members = [p.name for p in sc.participants]
        engine.command("banks.setup", json.dumps({
            "customers": [[c.id, c.bank, c.account, c.name, c.closed,
                           c.merchant.mdr_ppm if c.merchant else None] for c in sc.customers],
            "terminals": [[t.id, t.bank, t.kind, t.cash_fen] for t in sc.terminals],
            "members": members, "settling": members + ([SWITCH] if has_switch else []),
            "opening_settlement_fen": sum(p.settlement_balance_fen for p in sc.participants),
            "opening_deposits_fen": sum(c.balance_fen for c in sc.customers),
        }, sort_keys=True, ensure_ascii=False).encode())

    def _open_balances(self, sc: Scenario) -> None:
        registry = self.engine.registry
        opening: list[Transfer] = []

        def move(book: str, debit: str, credit: str, amount_fen: int) -> None:
            opening.append(Transfer(len(opening) + 1, registry.id(book, debit),
                                    registry.id(book, credit), amount_fen))

        for p in sc.participants:
            if p.settlement_balance_fen:
                move(PBOC, "issued", f"settlement:{p.name}", p.settlement_balance_fen)
                move(p.name, "reserve_at_pboc", "equity", p.settlement_balance_fen)
        for c in sc.customers:
            if c.balance_fen:
                move(c.bank, "other_assets", f"customer:{c.id}", c.balance_fen)
        for t in sc.terminals:
            if t.kind == "atm" and t.cash_fen:
                move(t.bank, f"atm_cash:{t.id}", "equity", t.cash_fen)
        if opening:
            receipt = self.engine.submit_transfers(opening)
            assert receipt.results.all_done, receipt.results.failures()

    # ------------------------------------------------------------------ driving

    def submit(self, event: Event, fields: dict[str, Any]) -> None:
        """Log one scenario event for the banks to carry out (fields as JSON values)."""
        self.engine.command("banks.event", json.dumps(
            {"do": event.do, "order": event.order, "fields": fields},
            sort_keys=True, ensure_ascii=False).encode())

    def next_due_us(self) -> int | None:
        """The next moment the world must be ticked at (the one wake-up rule)."""
        return self.banks.wake_us


def _mdr(customers: dict[str, Any], merchant: str | None) -> int:
    if merchant is None:
        return 0
    block = customers[merchant].merchant
    return block.mdr_ppm if block is not None else 0
