"""The FastAPI application of the CNAPS sandbox: ``create_app(core, keys)``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

from qingsuan import __version__
from qingsuan.server.http import (
    dashboard,
    errors,
    routes_app,
    routes_batch,
    routes_callbacks,
    routes_confirm,
    routes_iso,
    routes_meta,
    routes_operator,
    routes_participant,
    transfers,
)
from qingsuan.server.http.auth import KeyRing
from qingsuan.server.http.callbacks import Registry
from qingsuan.server.http.core import SandboxCore
from qingsuan.server.http.delivery import Deliverer, DeliveryParams
from qingsuan.server.http.metrics import Metrics, MetricsMiddleware

DESCRIPTION = """\
The CNAPS sandbox of Qingsuan (清算): send ISO 20022 messages and JSON customer transfers as a
participant's payment hub, follow your payments, read your statements and positions; as the
operator, move the clock. Every request that changes something is in the durable log before
it is answered.

**Keys**: `Authorization: Bearer KEY`, one key per participant and one for the operator
(docs/SERVER.md). A participant's key acts and reads for its own participant only.

**Refusals**: a 4xx JSON body `{"reason", "field", "message"}`; `reason` is an ISO 20022
reason code when the bank or CNAPS refused a payment, an API code otherwise.
"""


def create_app(core: SandboxCore, keys: KeyRing, *, metrics: Metrics | None = None,
               callbacks: Registry | None = None, delivery: DeliveryParams | None = None,
               deliver: bool = True) -> FastAPI:
    """The API over ``core`` (which owns the world and its single writer), with ``keys``.
    ``callbacks``: the connected participants (default: the file beside a SQLite store,
    loopback URLs only); ``delivery``: how their deliveries are tried; ``deliver``: start
    the thread that delivers (off: a test calls ``app.state.deliverer.step``)."""
    app = FastAPI(title="Qingsuan CNAPS sandbox", version=__version__,
                  description=DESCRIPTION, openapi_tags=[
                      {"name": "participant", "description": "as a participant's hub"},
                      {"name": "operator", "description": "the operator's key"},
                      {"name": "meta", "description": "health, the directory, whose key"}])
    app.state.core = core
    app.state.keys = keys
    errors.install(app)
    app.include_router(routes_meta.router)
    app.include_router(routes_participant.router, tags=["participant"])
    app.include_router(routes_iso.router, tags=["participant"])
    app.include_router(routes_operator.router, tags=["operator"])
    app.include_router(routes_callbacks.router)
    app.include_router(routes_batch.router, tags=["participant"])
    app.include_router(routes_confirm.router, tags=["participant"])
    app.include_router(routes_app.router)
    app.include_router(dashboard.router)
    watch = metrics if metrics is not None else Metrics()
    app.state.metrics = watch
    registry = callbacks if callbacks is not None else Registry.beside(core.store)
    deliverer = Deliverer(core, registry, delivery, observe=watch.callback_attempt)
    app.state.callbacks, app.state.deliverer = registry, deliverer
    core.on_close.append(deliverer.stop)
    if deliver:
        deliverer.start()

    def after_batch(jobs: int) -> None:
        watch.after_batch(core, jobs)
        if registry.by_name:  # (something may be new to deliver)
            deliverer.wake()

    core.writer.on_batch = after_batch

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return watch.response()

    app.add_middleware(MetricsMiddleware, metrics=watch)
    _with_schemas(app, transfers.TransferIn)
    return app


def _with_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put ``models`` (bodies that routes read themselves, named by ``$ref`` in their
    ``openapi_extra``) in the OpenAPI components, as FastAPI does for a typed body."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


