"""Prometheus metrics at ``/metrics``: requests by route and status, their latency, the
engine's group commits, and the world's gauges (log entries, HVPS queue) as of the last
batch. Aggregates only: no participant's name is a label."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from qingsuan.server.http.core import SandboxCore

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("qingsuan_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("qingsuan_http_request_seconds", "HTTP request latency",
                                 ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batches = Counter("qingsuan_engine_batches", "group commits of the HTTP edge",
                               registry=r)
        self.batch_jobs = Histogram("qingsuan_engine_batch_jobs", "requests per group commit",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
                                    registry=r)
        self.log_entries = Gauge("qingsuan_log_entries", "entries in the command log",
                                 registry=r)
        self.hvps_queued = Gauge("qingsuan_hvps_queued", "payments queued in HVPS",
                                 registry=r)
        self.hvps_queued_value = Gauge("qingsuan_hvps_queued_value_fen",
                                       "value queued in HVPS, in fen", registry=r)
        self.clock = Gauge("qingsuan_clock_seconds", "the sandbox clock (Unix time)",
                           registry=r)
        self.up = Gauge("qingsuan_engine_up", "1 while the engine takes commands", registry=r)
        self.up.set(1)
        self.callbacks = Counter("qingsuan_callback_attempts", "webhook delivery attempts, "
                                 "by outcome (delivered, failed: retried, given_up)",
                                 ["outcome"], registry=r)

    def after_batch(self, core: SandboxCore, jobs: int) -> None:
        """On the writer's thread, after a batch (ints read without the lock: a gauge may
        be one batch behind)."""
        self.batches.inc()
        self.batch_jobs.observe(jobs)
        hvps = core.cnaps.hvps
        self.log_entries.set(core.engine.applied_seq)
        self.hvps_queued.set(hvps.queued_total)
        self.hvps_queued_value.set(hvps.queued_value_fen)
        self.clock.set(core.clock.now_us() / 1e6)
        self.up.set(0 if core.failure is not None else 1)

    def callback_attempt(self, outcome: str) -> None:
        self.callbacks.labels(outcome).inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every request by its route's template (``/v1/participants/{participant}/
    positions``), so ids and names do not make labels."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", ""), name, str(status[0])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
