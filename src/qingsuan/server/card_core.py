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
import datetime as dt
import gc
import json
from collections.abc import Sequence
from typing import Any, Final

from qingsuan.cards.iso8583 import ResponseCode
from qingsuan.cards.switch import CardSwitch
from qingsuan.clock import Clock, WallClock, from_datetime, to_beijing_naive
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.server.card_edge import EdgeConfig, institution_id
from qingsuan.sim.scenario import Scenario

#: the longest the core sleeps between checks of the clock (cut-off, HVPS sessions)
MAX_IDLE_US: Final = 1_000_000
#: requests between two gc.freeze() calls
FREEZE_EVERY: Final = 20_000
#: requests one group commit takes at most (the edge batches what arrived meanwhile)
MAX_GROUP: Final = 4096


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

    def process(self, requests: Sequence[dict[str, str]]) -> list[dict[str, Any]]:
        """Answer a batch of requests (the switch's field vocabulary, as the edge makes
        them), in order, with one group commit."""
        assert len(requests) <= MAX_GROUP, len(requests)
        self.tick_if_due()
        answers: list[dict[str, Any] | None] = []
        commands: list[bytes] = []
        for f in requests:
            refusal = self._refusal(f)
            answers.append(refusal)
            if refusal is None:
                commands.append(json.dumps(f, sort_keys=True).encode())
        results = iter(self.engine.command_group("cards.request", commands)
                       if commands else [])
        if any(f.get("t") == "0100" for f in requests):
            self._due_us = None  # a new pre-authorisation may expire before what was due
        out: list[dict[str, Any]] = []
        for answer in answers:
            out.append(answer if answer is not None else self._enrich(next(results)))
        self.requests += len(requests)
        if self.requests >= self._next_freeze:
            # The switch keeps every transaction for the life of the process: move what
            # exists out of the cyclic collector's reach, or its full collections scan
            # them all (pauses of 100+ ms once there are some hundred thousand).
            gc.freeze()
            self._next_freeze = self.requests + FREEZE_EVERY
        return out

    def _refusal(self, f: dict[str, str]) -> dict[str, Any] | None:
        """A request the switch must not see: a terminal that is not the acquirer's (a
        participant acts only for itself)."""
        terminal = self.switch.terminals.get(f.get("41", ""))
        if terminal is not None and terminal.acquirer != f.get("32"):
            return {"t": _response_mti(f["t"]), "11": f.get("11", ""),
                    "39": ResponseCode.INVALID_TRANSACTION.value}
        return None

    def _enrich(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Add what the response carries from the switch's record: the clearing date, and
        the balance of an inquiry in fen."""
        txn = self.switch.txns.get(answer.get("key", ""))
        if txn is not None:
            if txn.clearing_date:
                answer["clearing_date"] = txn.clearing_date
            if txn.balance_fen is not None:
                answer["balance_fen"] = txn.balance_fen
        return answer

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
            candidates = [self._next_card_cutoff_us(after),
                          self.cnaps.hvps.next_wakeup_us(after)]
            candidates += [net.next_session_us(after) for net in self.cnaps.net.values()]
            candidates.append(self.switch.next_preauth_expiry_us(after))
            self._due_us = min(t for t in candidates if t is not None)
        return self._due_us

    def _next_card_cutoff_us(self, after_us: int) -> int:
        minutes = int(self.engine.params["cards.cutoff"])
        local = to_beijing_naive(after_us)
        at = dt.datetime.combine(local.date(), dt.time(minutes // 60, minutes % 60))
        if from_datetime(at) <= after_us:
            at += dt.timedelta(days=1)
        return from_datetime(at)

    def close(self) -> None:
        self.engine.close()


def _response_mti(mti: str) -> str:
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]
