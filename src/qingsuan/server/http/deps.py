"""Who is asking, and what they may see: the routes' dependencies.

A participant's key acts for that participant only: a path naming another participant is
refused with 403 whether or not that participant exists (a key learns nothing of others).
The operator's key reads any participant's views and runs the operator's routes; it sends
no payments (it is nobody's bank).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qingsuan.server.http import access
from qingsuan.server.http.auth import KeyRing, Principal
from qingsuan.server.http.core import SandboxCore
from qingsuan.server.http.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


async def core(request: Request) -> SandboxCore:
    found: SandboxCore = request.app.state.core
    return found


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
              ) -> Principal:
    ring: KeyRing = request.app.state.keys
    return access.principal(ring, None if credentials is None else credentials.credentials)


Who = Annotated[Principal, Depends(principal)]
Core = Annotated[SandboxCore, Depends(core)]


def known_participants(c: SandboxCore) -> frozenset[str]:
    """The participants a path may name: the world's banks in the CNAPS directory."""
    directory = c.cnaps.directory
    return frozenset(n for n in c.world.banks.members if n in directory)


def known_participant(c: SandboxCore, participant: str) -> None:
    """404 unless ``participant`` is one of the world's."""
    access.must_know(c.cnaps.directory if participant in c.world.banks.members else (),
                     participant)


async def acting_participant(participant: str, who: Who, c: Core) -> str:
    """The path's participant, when the key is that participant's (to send, to cancel)."""
    access.acting(who, participant)
    known_participant(c, participant)
    return participant


async def reading_participant(participant: str, who: Who, c: Core) -> str:
    """The path's participant, when the key is that participant's or the operator's."""
    if not who.operator and who.name != participant:
        raise ApiError(403, "not_yours", "this key sees its own participant only",
                       "participant")
    known_participant(c, participant)
    return participant


async def operator(who: Who) -> Principal:
    if not who.operator:
        raise ApiError(403, "operator_only", "this route takes the operator's key")
    return who


Acting = Annotated[str, Depends(acting_participant)]
Reading = Annotated[str, Depends(reading_participant)]
Operator = Annotated[Principal, Depends(operator)]


def accepts_json(request: Request) -> bool:
    """The client prefers JSON to XML for refusals (``Accept: application/json``)."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "xml" not in accept


