"""Routes for everyone with a key (who am I, the directory) and for nobody's key (health)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qingsuan.server.http import views
from qingsuan.server.http.deps import Core, Who
from qingsuan.server.http.errors import ERRORS, ApiError

router = APIRouter(prefix="/v1")


@router.get("/health", summary="Is the engine running", tags=["meta"])
async def health(c: Core) -> Any:
    """No key needed: 200 while the engine takes commands, 503 once it has stopped."""
    from fastapi.responses import JSONResponse

    if c.failure is not None:
        return JSONResponse({"status": "stopped", "reason": c.failure}, status_code=503)
    return {"status": "ok", "log_entries": c.engine.applied_seq}


@router.get("/me", summary="Whose key this is", responses=ERRORS, tags=["meta"])
async def me(who: Who, c: Core) -> Any:
    if who.operator:
        return {"operator": True, "participant": None}

    def job() -> dict[str, Any]:
        if who.name not in c.cnaps.directory:  # (a key file from another world)
            raise ApiError(403, "unknown_participant", f"{who.name} is not a participant of "
                           "this world: its key is not valid here")
        p = c.cnaps.directory.get(who.name)
        return {"operator": False, "participant": p.name, "code": p.code,
                "kind": p.kind.value}

    return await c.writer.call(job)


@router.get("/participants", summary="The CNAPS directory", responses=ERRORS, tags=["meta"])
async def participants(_: Who, c: Core) -> Any:
    """Every participant's name, bank code, kind and status: whom you can pay."""
    return await c.writer.call(lambda: views.participants(c.world))
