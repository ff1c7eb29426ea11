"""A live dashboard: one page (``/dashboard``) fed by server-sent events from
``/v1/operator/stream`` (the operator's key): the clock and HVPS's phase, each
participant's settlement balance, HVPS queue by priority and BEPS/IBPS net positions
against their caps, gridlock resolutions, throughput, the last payments with their status.

The page holds no data and needs no key to load; it asks for the operator's key and reads
the stream with ``fetch`` (so the key travels in the Authorization header, not the URL).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from qingsuan.clock import format_time
from qingsuan.cnaps.hvps import Priority
from qingsuan.money import format_fen
from qingsuan.server.http.clock import clock_view
from qingsuan.server.http.dashboard_page import PAGE
from qingsuan.server.http.deps import Core, Operator
from qingsuan.server.http.errors import ERRORS, ApiError
from qingsuan.world import PBOC

if TYPE_CHECKING:
    from qingsuan.server.http.core import SandboxCore
    from qingsuan.world import World

#: seconds between two snapshots of the stream
INTERVAL_S: Final = 1.0
#: payments listed as the last ones
LAST_PAYMENTS: Final = 12

router = APIRouter()


def snapshot(core: SandboxCore) -> dict[str, Any]:
    """The world as the dashboard shows it (on the writer: a consistent view)."""
    world = core.world
    cnaps, engine, banks = world.cnaps, world.engine, world.banks
    hvps = cnaps.hvps
    rows = []
    for name in banks.members:
        if cnaps.directory.settling(name) != name:
            continue
        queued = hvps.queued(name)
        # most urgent first (correction, extra_urgent, ..., normal)
        levels = {Priority(p).name.lower(): 0 for p in sorted({q.priority for q in queued})}
        for pay in queued:
            levels[Priority(pay.priority).name.lower()] += 1
        rows.append({
            "name": name,
            "balance": format_fen(engine.ledger.balance(
                engine.registry.id(PBOC, f"settlement:{name}")).posted_fen),
            "queued": levels,
            "gridlock_settled": format_fen(hvps.metrics[name].gridlock_value_fen),
            "net": {net.name: {"position": format_fen(net.positions[name]),
                               "cap": format_fen(net.caps[name])}
                    for net in cnaps.net.values() if name in net.positions and
                    net.name != "CUPS"},
        })
    last = list(banks.payments.items())[-LAST_PAYMENTS:]
    return {
        "clock": clock_view(world, core.clock), "log_entries": engine.applied_seq,
        "hvps_queued": hvps.queued_total, "hvps_queued_value": format_fen(hvps.queued_value_fen),
        "participants": rows,
        "last_payments": [{"id": ref, "system": rec.system, "status": rec.status,
                           "at": format_time(rec.history[-1][0]) if rec.history else None,
                           **_between(world, ref)}
                          for ref, rec in reversed(last)],
    }


def _between(world: World, ref: str) -> dict[str, Any]:
    """Who pays whom how much, as CNAPS saw the payment (nothing for a payment CNAPS did
    not carry: 行内, or refused by the bank before it was sent)."""
    seen = world.cnaps.payment(ref)
    if seen is None:
        return {}
    return {"from": seen.sender, "to": seen.receiver, "amount": format_fen(seen.amount_fen)}


#: one event of the stream (OpenAPI 3.1: the schema of a text/event-stream is an event's)
_EVENT: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {
    "data": {"type": "string", "contentMediaType": "application/json",
             "description": "the dashboard's snapshot"}}}


@router.get("/v1/operator/stream", tags=["operator"], response_class=StreamingResponse,
            responses={**ERRORS, 200: {"description": "server-sent events, one a second",
                                       "content": {"text/event-stream": {"schema": _EVENT}}}},
            summary="The dashboard's live feed (server-sent events)")
async def stream(request: Request, _: Operator, c: Core,
                 count: Annotated[int | None, Query(ge=1, le=100_000, description=(
                     "end after this many events (default: until you disconnect)"))] = None
                 ) -> StreamingResponse:
    """One `data:` event a second with the dashboard's snapshot (JSON)."""

    async def events() -> AsyncIterator[str]:
        sent = 0
        previous: int | None = None
        while not c.closing.is_set() and (count is None or sent < count):
            try:
                doc = await c.writer.call(lambda: snapshot(c))
            except ApiError:
                return  # the server stops
            entries = doc["log_entries"]
            doc["entries_per_s"] = 0 if previous is None else round(
                (entries - previous) / INTERVAL_S)
            previous = entries
            yield f"data: {json.dumps(doc, separators=(',', ':'))}\n\n"
            sent += 1
            if count is not None and sent >= count:
                return
            for _ in range(int(INTERVAL_S * 10)):
                if c.closing.is_set() or await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})
