"""Connecting a participant: register its callback URL (by its own key, or the operator's),
see how its deliveries go, disconnect it. The deliveries themselves: server/http/delivery.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from qingsuan.server.http.callbacks import Registration, Registry
from qingsuan.server.http.deps import Acting, Core, Operator, Reading, known_participant
from qingsuan.server.http.errors import ERRORS, ApiError
from qingsuan.server.http.notices import sources

router = APIRouter(responses=ERRORS)


class CallbackIn(BaseModel):
    """Where a participant's notices and incoming payments are POSTed."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="http(s) URL; a loopback address unless the sandbox allows "
                                 "others", examples=["http://127.0.0.1:9000/qingsuan"])


def _registry(request: Request) -> Registry:
    found: Registry = request.app.state.callbacks
    return found


def _view(request: Request, participant: str, reg: Registration | None, *,
          secret: bool = False) -> dict[str, Any]:
    if reg is None:
        return {"participant": participant, "connected": False}
    doc: dict[str, Any] = {"participant": participant, "connected": True, "url": reg.url,
                           "delivered": reg.delivered, "failures": reg.failures,
                           "trying": request.app.state.deliverer.status(participant)}
    if secret:
        doc["secret"] = reg.secret
    return doc


async def _register(request: Request, participant: str, url: str, c: Any) -> dict[str, Any]:
    registry = _registry(request)
    # from the next notice on: what is there now is in the inbox already
    read = await c.writer.call(lambda: {s: len(n) for s, n in sources(c.world)})
    reg = registry.register(participant, url, read)
    request.app.state.deliverer.wake()
    return _view(request, participant, reg, secret=True)


def _unregister(request: Request, participant: str) -> dict[str, Any]:
    if not _registry(request).unregister(participant):
        raise ApiError(404, "not_connected", f"{participant} has no callback URL",
                       "participant")
    return {"participant": participant, "connected": False}


@router.put("/v1/participants/{participant}/callback", tags=["participant"],
            summary="Connect: register your callback URL")
async def put_callback(request: Request, order: Annotated[CallbackIn, Body()],
                       participant: Acting, c: Core) -> Any:
    """Your notices (incoming payments among them) are POSTed to `url` from the next one
    on, signed with the `secret` of this answer (shown here only; registering again makes
    a new one). docs/SERVER.md says what a delivery is and how to acknowledge it."""
    return await _register(request, participant, order.url, c)


@router.get("/v1/participants/{participant}/callback", tags=["participant"],
            summary="Your callback and its deliveries")
async def get_callback(request: Request, participant: Reading) -> Any:
    """Connected or not; the URL, messages delivered, the one being tried (attempts, last
    error) and the messages given up, with why."""
    return _view(request, participant, _registry(request).get(participant))


@router.delete("/v1/participants/{participant}/callback", tags=["participant"],
               summary="Disconnect")
async def delete_callback(request: Request, participant: Acting) -> Any:
    """No more deliveries (the inbox still answers)."""
    return _unregister(request, participant)


@router.put("/v1/operator/participants/{participant}/callback", tags=["operator"],
            summary="Connect a participant")
async def operator_put_callback(request: Request, participant: str,
                                order: Annotated[CallbackIn, Body()], _: Operator,
                                c: Core) -> Any:
    """As the participant's own `PUT .../callback` (the secret is in this answer)."""
    known_participant(c, participant)
    return await _register(request, participant, order.url, c)


@router.delete("/v1/operator/participants/{participant}/callback", tags=["operator"],
               summary="Disconnect a participant")
async def operator_delete_callback(request: Request, participant: str, _: Operator,
                                   c: Core) -> Any:
    known_participant(c, participant)
    return _unregister(request, participant)
