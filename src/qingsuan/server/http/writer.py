"""The engine's single writer for the HTTP edge: one thread that runs the handlers' jobs
against the world, in batches, one group commit per batch.

A handler (on the HTTP server's event loop) hands the writer a job, a function of no
arguments that reads or changes the world, and awaits its result (:meth:`Writer.call`);
the thread that reads the HTTP edge's batches hands it jobs with a function to call with
their results (:meth:`Writer.submit`). The thread takes every
job waiting (up to :data:`MAX_BATCH`), holds the core's lock (the card port takes the same
lock: one writer at a time), applies them in order with the engine's commits deferred,
makes them durable with one append and one fsync, and only then hands the results back.
So an answer is never sent before what it acknowledges is in the log, and the commit
grows with the load. A job that refuses (:class:`ApiError`) changes nothing; a batch whose
commands could not be made durable fails whole (nobody was told anything about it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from qingsuan.server.http.errors import ApiError

T = TypeVar("T")
#: jobs in one group commit at most
MAX_BATCH: Final = 1024
#: jobs waiting at most; past it a request is refused at once (503) rather than queued
MAX_WAITING: Final = 16_384

Job = Callable[[], Any]
#: a job's outcome: (True, its result) or (False, the exception it raised)
Result = tuple[bool, Any]


class _Group:
    """Jobs handed in together from another thread (the HTTP edge's batch): their
    results, and whom to tell once all are durable."""

    __slots__ = ("done", "left", "results")

    def __init__(self, done: Callable[[list[Result]], None], n: int) -> None:
        self.done, self.left = done, n
        self.results: list[Result] = [(False, None)] * n


class BatchRunner(Protocol):
    def run_batch(self, jobs: list[Job]) -> list[Result]:
        """Run ``jobs`` under the lock with one group commit: (ok, result or exception)."""


class Writer:
    def __init__(self, runner: BatchRunner, *, on_batch: Callable[[int], None] | None = None
                 ) -> None:
        self.runner = runner
        self.on_batch = on_batch
        # (job, the event loop and future that await it) or (job, None, (group, index))
        self._jobs: collections.deque[tuple[Job, Any, Any]] = collections.deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="qingsuan-engine", daemon=True)
        self._thread.start()

    async def call(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the writer; its result once durable (or its exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cv:
            refused = self._refusal()
            if refused is not None:
                raise refused
            self._jobs.append((job, loop, future))
            self._cv.notify()
        return await future

    def submit(self, jobs: list[Job], done: Callable[[list[Result]], None]) -> None:
        """From any thread: run ``jobs`` in order (in one batch or more) and call ``done``
        with their results, on the writer's thread, once all of them are durable (or
        refused: each then fails with the refusal)."""
        group = _Group(done, len(jobs))
        with self._cv:
            refused = self._refusal()
            if refused is None:
                self._jobs.extend((job, None, (group, i)) for i, job in enumerate(jobs))
                self._cv.notify()
        if refused is not None:
            done([(False, refused)] * len(jobs))

    def _refusal(self) -> ApiError | None:
        """Why a job handed in now is not taken (the condition's lock held)."""
        if self._stopping:
            return ApiError(503, "stopping", "the sandbox is stopping")
        if len(self._jobs) >= MAX_WAITING:
            return ApiError(503, "busy", f"{MAX_WAITING} requests are waiting for the "
                            "engine: try again shortly", headers={"Retry-After": "1"})
        return None

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stopping:
                    self._cv.wait()
                if not self._jobs:
                    return
                batch = [self._jobs.popleft() for _ in range(min(MAX_BATCH, len(self._jobs)))]
            try:
                results = self.runner.run_batch([job for job, _, _ in batch])
            except BaseException as exc:  # the runner itself broke: every job fails
                results = [(False, exc)] * len(batch)
            # one wake-up per event loop for the whole batch, not one per answer
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any],
                                                                Result]]] = {}
            for (_, loop, future), result in zip(batch, results, strict=True):
                if loop is not None:
                    answers.setdefault(loop, []).append((future, result))
                    continue
                group, index = future
                group.results[index] = result
                group.left -= 1
                if not group.left:
                    group.done(group.results)
            for loop, settled in answers.items():
                with contextlib.suppress(RuntimeError):  # (that loop is closed: nobody
                    loop.call_soon_threadsafe(_settle_all, settled)  # waits for them)
            if self.on_batch is not None:
                self.on_batch(len(batch))

    def stop(self, timeout_s: float = 60.0) -> None:
        """Run every job already handed in, then end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout_s)


def _settle_all(settled: list[tuple[asyncio.Future[Any], Result]]) -> None:
    for future, (ok, value) in settled:
        if future.done():  # the client went away: the job ran all the same
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
