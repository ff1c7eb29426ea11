"""The card switch's core for the sandbox server: the engine (CNAPS + the switch) on the
wall clock and a durable command log, fed batches of requests from the ISO 8583 edge.

One batch is one group commit: every request of the batch is appended to the log and made
durable with one fsync, then applied in order, and only then are the answers handed back
to be sent (durable before acknowledged). The world (banks, customers, cards, terminals)
comes from a scenario file the first time a store is opened; after that the store is the
world, and opening it again replays the log (or resumes from its last snapshot).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from qingsuan.cards.switch import CardSwitch
from qingsuan.cards.vault import CardVault, resolve_deferred
from qingsuan.clock import Clock, WallClock
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.server.card_edge import EdgeConfig, SwitchAnswer, institution_id
from qingsuan.sim.scenario import Scenario
from qingsuan.world import World

#: the longest the core sleeps between checks of the clock (cut-off, HVPS sessions)
MAX_IDLE_US: Final = 1_000_000
#: requests between two gc.freeze() calls
FREEZE_EVERY: Final = 20_000


def edge_config(scenario: Scenario, vault: CardVault | None = None, **keys: Any
                ) -> EdgeConfig:
    """The edge's view of a world: every participant's institution id, and the keys
    (``vault``: the world's card key; default the sandbox key of the scenario, for tests
    of the edge alone)."""
    return EdgeConfig({institution_id(p.code): p.name for p in scenario.participants
                       if p.code[:11].isdigit()},
                      vault if vault is not None else CardVault.sandbox(scenario.name), **keys)


def card_vault(scenario: Scenario, store: str, key_file: str | None = None
               ) -> tuple[CardVault, Path | None]:
    """The card key of the world in ``store`` (cards/vault.py), and the key file to write
    it to when it is new (``STORE.keys`` of a new SQLite store, written by
    :class:`CardCore` when it builds the world); the sandbox default for a store in
    memory. The edge and the core must share it: resolve it once, before the core
    starts."""
    return resolve_deferred(store, key_file=key_file, sandbox_seed=scenario.name
                            if store.startswith("memory:") else None)


class CardCore:
    """The engine behind the gateway. Not thread-safe: one caller at a time."""

    def __init__(self, scenario: Scenario, store: str, clock: Clock | None = None, *,
                 snapshot_every: int = 0, vault: CardVault | None = None,
                 key_file: Path | None = None) -> None:
        """``snapshot_every``: store a snapshot every N log entries, so a restart replays
        only the entries after it (0: never). ``vault``: the world's card key, and
        ``key_file`` where to write it if it is new (default: :func:`card_vault`); a key
        that is not the world's is refused."""
        if vault is None:
            vault, key_file = card_vault(scenario, store)
        self.clock = clock or WallClock()
        # The world is built at the clock's time, not the scenario's start: the log's
        # timestamps never go back.
        self.world = World.open(store, self.clock, snapshot_every=snapshot_every,
                                vault=vault)
        if self.world.is_new:
            if key_file is not None and scenario.cards:
                vault.write(key_file)  # before the world that needs it is logged
            self.world.build(scenario)
        self.engine: Engine = self.world.engine
        self.switch: CardSwitch = self.world.switch
        self.cnaps: Cnaps = self.world.cnaps
        self.requests = 0
        self._next_freeze = FREEZE_EVERY

    # ------------------------------------------------------------------ requests

    def process(self, bodies: Sequence[bytes]) -> list[SwitchAnswer]:
        """Answer a batch of requests (their logged bodies, as the edge makes them:
        :func:`~qingsuan.server.card_edge.request_body`), in order, with one group commit
        (the engine bounds its size)."""
        self.tick_if_due()
        if not bodies:
            return []
        answers = self.engine.command_group("cards.request", bodies)
        txns = self.switch.txns
        out: list[SwitchAnswer] = []
        for answer in answers:
            # what the response carries from the switch's record: the clearing date, and
            # the balance of an inquiry in fen
            txn = txns.get(answer.get("key", ""))
            if txn is None:
                out.append((answer["39"], "", "", None))
            else:
                out.append((answer["39"], txn.key, txn.clearing_date or "", txn.balance_fen))
        self.count_requests(len(bodies))
        return out

    def count_requests(self, n: int) -> None:
        """``n`` more requests applied (any edge's)."""
        self.requests += n
        if self.requests >= self._next_freeze:
            # The world keeps every transaction and payment for the life of the process:
            # move what exists out of the cyclic collector's reach, or its full
            # collections scan them all (pauses of 100+ ms once there are some hundred
            # thousand).
            gc.freeze()
            self._next_freeze = self.requests + FREEZE_EVERY

    # ------------------------------------------------------------------ time

    def next_wakeup_us(self) -> int:
        """When to look at the clock again: the next scheduled moment (card cut-off, HVPS
        cut-off or close, net settlement session), at most :data:`MAX_IDLE_US` from now."""
        return min(self._due(), self.clock.now_us() + MAX_IDLE_US)

    def tick_if_due(self) -> bool:
        """Log a tick when a scheduled moment has passed since the last command."""
        if self._due() > self.clock.now_us():
            return False
        self.engine.tick()
        return True

    def _due(self) -> int:
        """The world's next scheduled moment (world.py: one wake-up rule for every edge)."""
        due = self.world.next_due_us()
        return due if due is not None else self.clock.now_us() + MAX_IDLE_US

    def close(self) -> None:
        self.engine.close()
