"""The card switch's core for the sandbox server: the engine (CNAPS + the switch) on the
wall clock and a durable command log, fed batches of requests from the ISO 8583 edge.

One batch is one group commit: every request of the batch is appended to the log and made
durable with one fsync, then applied in order, and only then are the answers handed back
to be sent (durable before acknowledged). The world (banks, customers, cards, terminals)
comes from a scenario file the first time a store is opened; after that the store is the
world, and opening it again replays the log (or resumes from its last snapshot).
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from typing import Any, Final

from qingsuan.cards.switch import CardSwitch
from qingsuan.clock import Clock, WallClock
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.server.card_edge import EdgeConfig, SwitchAnswer, institution_id
from qingsuan.sim.scenario import Scenario

#: the longest the core sleeps between checks of the clock (cut-off, HVPS sessions)
MAX_IDLE_US: Final = 1_000_000
#: requests between two gc.freeze() calls
FREEZE_EVERY: Final = 20_000


def edge_config(scenario: Scenario, **keys: Any) -> EdgeConfig:
    """The edge's view of a world: every participant's institution id, and the keys."""
    return EdgeConfig({institution_id(p.code): p.name for p in scenario.participants
                       if p.code[:11].isdigit()}, **keys)


class CardCore:
    """The engine behind the gateway. Not thread-safe: one caller at a time."""

    def __init__(self, scenario: Scenario, store: str, clock: Clock | None = None, *,
                 snapshot_every: int = 0) -> None:
        """``snapshot_every``: store a snapshot every N log entries, so a restart replays
        only the entries after it (0: never)."""
        from qingsuan.sim.runner import Runner

        self.clock = clock or WallClock()
        now = self.clock.now_us()
        # The world is built at the wall clock's time, not the scenario's start: the log's
        # timestamps never go back.
        runner = Runner(dataclasses.replace(scenario, start_us=now), store=store)
        if runner.engine.applied_seq == 0:
            runner.build_world()
        self.engine: Engine = runner.engine
        self.engine.clock = self.clock
        self.engine.snapshot_every = snapshot_every
        self.switch: CardSwitch = runner.switch
        self.cnaps: Cnaps = runner.cnaps
        self.requests = 0
        self._next_freeze = FREEZE_EVERY
        #: the next scheduled moment after the last command (None: to be computed)
        self._due_us: int | None = None

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
                if answer["t"] == "0110":
                    self._due_us = None  # a new pre-authorisation may expire before that
        self.requests += len(bodies)
        if self.requests >= self._next_freeze:
            # The switch keeps every transaction for the life of the process: move what
            # exists out of the cyclic collector's reach, or its full collections scan
            # them all (pauses of 100+ ms once there are some hundred thousand).
            gc.freeze()
            self._next_freeze = self.requests + FREEZE_EVERY
        return out

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
        self._due_us = None
        return True

    def _due(self) -> int:
        if self._due_us is None:
            after = self.engine.now_us
            candidates = [self.switch.cutoff_after_us(after),
                          self.cnaps.hvps.next_wakeup_us(after)]
            candidates += [net.next_session_us(after) for net in self.cnaps.net.values()]
            candidates.append(self.switch.next_preauth_expiry_us(after))
            self._due_us = min(t for t in candidates if t is not None)
        return self._due_us

    def close(self) -> None:
        self.engine.close()
