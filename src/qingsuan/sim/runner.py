"""Play a scenario on the engine's virtual clock and report its outcome (SCENARIO.md).

The runner is a player: it opens the world (world.py), builds it on a new store, then
hands each scripted event, in time order (ties in file order), to the banks as one logged
command and ticks the world at the moments it asks for. Every decision is the engine's;
the runner only chooses when. A store that already holds part of the run is resumed: the
events it has applied are skipped, so a run killed at any command and started again ends
exactly where an uninterrupted run does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qingsuan.banks import reconcile
from qingsuan.banks.records import PaymentRecord
from qingsuan.cards.switch import CardSwitch
from qingsuan.clock import VirtualClock
from qingsuan.cnaps.hvps import Notice
from qingsuan.cnaps.system import Cnaps
from qingsuan.collector import few_collections, freeze_survivors
from qingsuan.engine import Engine
from qingsuan.ledger import TransferFlags
from qingsuan.ledger.registry import AccountRegistry
from qingsuan.params import Params
from qingsuan.sim import outcome as outcome_of
from qingsuan.sim.scenario import Event, Scenario
from qingsuan.world import World

__all__ = ["PaymentRecord", "Posting", "Runner", "StepHook", "run_scenario"]


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
#: told (events done, events in all) every PROGRESS_EVERY events and at the end
ProgressHook = Callable[[int, int], None]
PROGRESS_EVERY = 1024

#: commands a run makes durable together (one append and one fsync)
COMMIT_EVERY = 4096
#: events after which what the run keeps is left out of the collector's passes
#: (collector.freeze_survivors)
FREEZE_EVERY = 1024

#: the card events whose PIN the terminal turns into a PIN block before sending
_CARD_PIN_EVENTS = ("atm_withdrawal", "atm_balance_inquiry", "pos_purchase", "preauth",
                    "qr_pay")


class Runner:
    def __init__(self, scenario: Scenario, *, store: str | None = None,
                 on_step: StepHook | None = None, commit_every: int = COMMIT_EVERY,
                 on_progress: ProgressHook | None = None) -> None:
        """``store``: the command log url; default an embedded SQLite file in a temporary
        directory (the durable default, thrown away after the run). ``commit_every``:
        commands made durable together (one append, one fsync): the outcome is reported
        only at the end, so nothing is acknowledged before its group is durable."""
        self.commit_every = commit_every
        self.on_progress = on_progress
        self.scenario = scenario
        self.clock = VirtualClock(scenario.start_us)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qingsuan-run-")
            store = str(Path(self._tmp.name) / "run.db")
        # a store thrown away after the run (or in memory) takes the sandbox card key
        # derived from the scenario: the same file, the same state (docs/SECURITY.md)
        self.world = World.open(store, self.clock, sandbox_seed=scenario.name if (
            self._tmp is not None or store.startswith("memory:")) else None)
        if self.engine.now_us > self.clock.now_us():  # a resumed store: time never goes back
            self.clock.advance_to(self.engine.now_us)
        self.on_step = on_step
        self._seen_transfers = self.engine.ledger.transfer_count

    # ------------------------------------------------------------------ the world

    @property
    def engine(self) -> Engine:
        return self.world.engine

    @property
    def cnaps(self) -> Cnaps:
        return self.world.cnaps

    @property
    def switch(self) -> CardSwitch:
        return self.world.switch

    @property
    def registry(self) -> AccountRegistry:
        return self.engine.registry

    @property
    def params(self) -> Params:
        return self.engine.params

    @property
    def payments(self) -> dict[str, PaymentRecord]:
        return self.world.banks.payments

    @property
    def inquiries(self) -> dict[str, Any]:
        return self.world.banks.inquiries

    @property
    def actions(self) -> list[dict[str, Any]]:
        return self.world.banks.actions

    @property
    def routes(self) -> dict[str, str]:
        return self.world.banks.routes

    @property
    def step_notices(self) -> list[Notice]:
        """What the payment systems told the banks during the last step (narration)."""
        return self.world.banks.step_notices

    @property
    def settling_names(self) -> list[str]:
        return self.world.banks.settling

    def build_world(self) -> None:
        """Build the scenario's world on a new store (a stored world is resumed as is)."""
        if self.world.is_new:
            self.world.build(self.scenario)
            self._seen_transfers = self.engine.ledger.transfer_count

    def balance_fen(self, book: str, name: str) -> int:
        return self.engine.ledger.posted_fen(self.registry.id(book, name))

    # ------------------------------------------------------------------ running

    def run(self, clearing_dir: Path | None = None) -> dict[str, Any]:
        self.build_world()
        until = self.scenario.run_until_us
        done = self.world.banks.events_done
        events = [e for e in self.scenario.events if e.at_us <= until and e.order > done]
        i = 0
        # The built world (and the scenario) outlive the run: frozen, the collector's full
        # passes, which read every object of the heap (seconds for a world of millions of
        # customers), skip them and read only what the events make (collector.py).
        with few_collections(freeze=True), self.engine.deferred_commits(self.commit_every):
            while True:
                due = self.world.next_due_us()
                if i < len(events) and (due is None or events[i].at_us <= due):
                    self._fire(events[i])
                    i += 1
                    if i % FREEZE_EVERY == 0:
                        freeze_survivors()
                    if self.on_progress is not None and i % PROGRESS_EVERY == 0:
                        self.on_progress(i, len(events))
                elif due is not None and due <= until:
                    self._tick(due)
                else:
                    break
        if self.on_progress is not None:
            self.on_progress(len(events), len(events))
        result = self.outcome()
        if clearing_dir is not None:
            clearing_dir.mkdir(parents=True, exist_ok=True)
            for name, text in self.clearing_files().items():
                (clearing_dir / name).write_text(text, encoding="utf-8")
        self.engine.snapshot()  # the state the run reached, for `log verify` to compare
        self.close()
        return result

    def close(self) -> None:
        self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _fire(self, event: Event) -> None:
        self.clock.advance_to(max(event.at_us, self.clock.now_us()))
        self.world.banks.step_notices = []
        self.world.submit(event, _command_fields(event, self.world))
        if self.on_step is not None:
            self.on_step(event, self._new_postings(), self)

    def _tick(self, at_us: int) -> None:
        self.clock.advance_to(max(at_us, self.clock.now_us()))
        self.world.banks.step_notices = []
        self.engine.tick()
        if self.on_step is not None:
            postings = self._new_postings()
            if postings:
                self.on_step(Event(self.clock.now_us(), "tick", -1, 0, {}), postings, self)

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

    # ------------------------------------------------------------------ outcome

    def outcome(self) -> dict[str, Any]:
        return outcome_of.outcome(self.world, self.scenario)

    def clearing_files(self) -> dict[str, str]:
        return outcome_of.clearing_files(self.world)

    # the reconciliation checks (banks/reconcile.py), as the outcome reports them
    def books_balanced(self) -> bool:
        return reconcile.books_balanced(self.world.banks)

    def money_conserved(self) -> bool:
        return reconcile.money_conserved(self.world.banks)

    def mirrors_match(self) -> bool:
        return reconcile.mirrors_match(self.world.banks)

    def suspense_explained(self) -> bool:
        return reconcile.suspense_explained(self.world.banks)


def _command_fields(event: Event, world: World) -> dict[str, Any]:
    """The event's fields as the banks' command carries them: the card number becomes its
    token and masked PAN, a card PIN the world's PIN verification value (cards/vault.py:
    neither the PAN nor the PIN is ever logged)."""
    fields = dict(event.fields)
    if "from_card" in fields:  # a repayment's paying card (wallets/credit.py)
        paying = world.card_vault().card_fields(fields.pop("from_card"))
        fields["from_card"], fields["from_pan_masked"] = paying["card"], paying["pan_masked"]
    if "card" in fields:
        vault = world.card_vault()
        pan = fields.pop("card")
        fields.update(vault.card_fields(pan))
        if event.do in _CARD_PIN_EVENTS:
            pin = fields.pop("pin", None)
            fields["pin_hash"] = vault.pvv(pan, pin) if pin is not None else None
    return fields


def run_scenario(scenario: Scenario, *, store: str | None = None,
                 on_step: StepHook | None = None,
                 clearing_dir: Path | None = None,
                 on_progress: ProgressHook | None = None) -> dict[str, Any]:
    return Runner(scenario, store=store, on_step=on_step,
                  on_progress=on_progress).run(clearing_dir)
