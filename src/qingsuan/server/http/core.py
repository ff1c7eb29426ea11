"""The sandbox's core: the world (CNAPS, the card switch, the banks) on the sandbox clock
with its durable log, shared by the ISO 8583 port and the HTTP API under one lock.

:class:`SandboxCore` is the card port's core (:class:`~qingsuan.server.card_core.CardCore`:
batches of card requests, one group commit each, ticks when a scheduled moment passes)
with the lock taken around everything the card port does, and a :class:`Writer` thread
that runs the HTTP API's jobs under the same lock. Whichever edge holds the lock is the
engine's one writer; each acknowledges only what is durable. When the engine stops on a
command it cannot apply (fail-stop), both edges stop acknowledging: the card port's next
call raises, and so the server exits 1 and restarts from the log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from qingsuan.cards.vault import CardVault
from qingsuan.cnaps.gateway import CnapsGateway
from qingsuan.engine import Engine, EngineFailed
from qingsuan.server.card_core import CardCore
from qingsuan.server.card_edge import SwitchAnswer
from qingsuan.server.http.clock import SandboxClock
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.writer import Job, Writer

if TYPE_CHECKING:
    from qingsuan.server.http.edge_link import EdgeLink
    from qingsuan.server.http.serve import HttpServer
    from qingsuan.sim.scenario import Scenario

#: log entries one batch defers at most before it makes them durable (a clock move of
#: many days logs thousands of ticks)
MAX_DEFERRED: Final = 4096


def engine_failed(engine: Engine) -> str | None:
    """Why the engine stopped (fail-stop), or None."""
    return engine.failed


class SandboxCore(CardCore):
    def __init__(self, scenario: Scenario, store: str, clock: SandboxClock | None = None, *,
                 snapshot_every: int = 0, vault: CardVault | None = None,
                 key_file: Path | None = None) -> None:
        sandbox_clock = clock if clock is not None else SandboxClock()
        super().__init__(scenario, store, sandbox_clock, snapshot_every=snapshot_every,
                         vault=vault, key_file=key_file)
        self.clock: SandboxClock = sandbox_clock
        #: the store's URL (files kept beside a SQLite store: the connected participants)
        self.store = store
        #: stopped at close, before the writer (the webhook deliveries)
        self.on_close: list[Callable[[], None]] = []
        engine = self.engine
        try:
            self.clock.resume(max(engine.now_us, engine.ledger.last_timestamp_us))
        except ValueError:
            engine.close()
            raise
        self.lock = threading.RLock()
        self.gateway = CnapsGateway(self.cnaps, self.world.banks)
        #: why the engine stopped, once it has (every edge refuses from then on)
        self.failure: str | None = None
        self.batches = 0
        self.http: HttpServer | None = None
        #: the link to the HTTP edge process, when HTTP is read there (stopped first)
        self.edge: EdgeLink | None = None
        #: set when the server stops: long-lived answers (the dashboard's stream) end
        self.closing = threading.Event()
        self.writer = Writer(self)

    # ------------------------------------------------------------------ the card port

    def process(self, bodies: Sequence[bytes]) -> list[SwitchAnswer]:
        with self.lock:
            self._refuse_if_failed()
            return super().process(bodies)

    def tick_if_due(self) -> bool:
        with self.lock:
            self._refuse_if_failed()
            return super().tick_if_due()

    def next_wakeup_us(self) -> int:
        with self.lock:
            return super().next_wakeup_us()

    def _refuse_if_failed(self) -> None:
        if self.failure is not None:
            raise EngineFailed(f"the engine stopped: {self.failure}; restart it from the log")

    # ------------------------------------------------------------------ the HTTP API

    def run_batch(self, jobs: list[Job]) -> list[tuple[bool, Any]]:
        """The writer's batch: due work first, then the jobs in order, one group commit;
        results only for what is durable."""
        engine = self.engine
        results: list[tuple[bool, Any]] = []
        with self.lock:
            if self.failure is None:
                try:
                    with engine.deferred_commits(MAX_DEFERRED):
                        super().tick_if_due()
                        for job in jobs:
                            try:
                                results.append((True, job()))
                            except ApiError as exc:
                                results.append((False, exc))
                            except Exception as exc:
                                results.append((False, exc))
                                if engine_failed(engine) is not None:
                                    break
                except Exception as exc:  # the tick or the group's append failed
                    self.failure = self.failure or f"{type(exc).__name__}: {exc}"
                why = engine_failed(engine)
                if why is not None or engine.log.last_seq != engine.applied_seq:
                    self.failure = self.failure or why or "the log is behind the state"
            self.batches += 1
        if self.failure is not None:  # nothing of this batch may be acknowledged
            stopped = ApiError(503, "engine_stopped", f"the engine stopped ({self.failure}): "
                               "nothing more is acknowledged; restart the server, which "
                               "resumes from the log")
            return [(False, stopped)] * len(jobs)
        return results

    def serve_http(self, server: HttpServer) -> None:
        """Attach the HTTP server (started by the caller); it is stopped first on close."""
        self.http = server

    def close(self) -> None:
        """Stop the HTTP edge process and the HTTP server (requests in flight are
        answered), then the writer (jobs handed in are run), then close the log."""
        self.closing.set()
        if self.edge is not None:  # (its requests in flight need the writer and the app)
            self.edge.stop()
        if self.http is not None:
            self.http.stop()
        for stop in self.on_close:
            stop()
        self.writer.stop()
        with self.lock:
            super().close()
