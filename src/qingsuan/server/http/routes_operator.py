"""The operator's routes: the clock (wall or virtual; set, advance) and running what is due,
participants (add, suspend, collateral), parameters. Every move of the clock is logged as
ticks (server/http/clock.py); every other change as its own command."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from qingsuan.server.http import inputs, joining, operations
from qingsuan.server.http.clock import clock_view, move_to
from qingsuan.server.http.deps import Core, Operator
from qingsuan.server.http.edge_link import STOP_S
from qingsuan.server.http.errors import ERRORS, ApiError

router = APIRouter(prefix="/v1/operator", responses=ERRORS)


class ClockIn(BaseModel):
    """One change of the clock: go to a time, go ahead by a duration, or change mode."""

    model_config = ConfigDict(extra="forbid")
    at: str | None = Field(None, description="move the virtual clock to this Beijing time "
                                             "(ISO 8601), never back",
                           examples=["2026-11-26T17:14"])
    advance: str | None = Field(None, description="move the virtual clock ahead by this much",
                                examples=["15m", "2h30m", "1d"])
    mode: Literal["wall", "virtual"] | None = Field(
        None, description="virtual: the clock stops where it is until moved; wall: real "
                          "time (held while the virtual clock was ahead of it)")


@router.get("/clock", summary="The clock")
async def get_clock(_: Operator, c: Core) -> Any:
    """The clock's mode and time, the next scheduled moment, HVPS's phase and business
    date."""
    return await c.writer.call(lambda: clock_view(c.world, c.clock))


@router.post("/clock", summary="Set, advance or switch the clock")
async def set_clock(change: Annotated[ClockIn, Body()], _: Operator, c: Core) -> Any:
    """`at` or `advance` moves the virtual clock (switching to it) the way time passes:
    each scheduled moment on the way (HVPS cut-off and close, net sessions, the card
    cut-off) is run and logged at its own time. `mode: wall` returns to real time."""
    if change.at is not None and change.advance is not None:
        raise ApiError(422, "invalid_field", "give at or advance, not both", "advance")
    if change.at is None and change.advance is None and change.mode is None:
        raise ApiError(422, "missing_field", "give at, advance or mode", "at")
    if change.mode == "wall" and (change.at or change.advance):
        raise ApiError(422, "invalid_field", "moving the clock makes it virtual: mode wall "
                       "goes with neither at nor advance", "mode")
    target = inputs.moment_us(change.at) if change.at is not None else None
    step = inputs.duration_us(change.advance) if change.advance is not None else None

    def job() -> dict[str, Any]:
        moved = None
        if target is not None or step is not None:
            to = target if target is not None else c.clock.now_us() + (step or 0)
            moved = move_to(c.world, c.clock, to)
        elif change.mode == "virtual":
            c.clock.set_virtual(c.clock.now_us())
        else:
            c.clock.use_wall()
        doc = clock_view(c.world, c.clock)
        doc["ticks"] = moved.ticks if moved is not None else 0
        return doc

    return await c.writer.call(job)


@router.post("/tick", summary="Run what is due now")
async def tick(_: Operator, c: Core) -> Any:
    """Log a tick at the clock's time: whatever is due (a net session, the cut-off, a
    held payment, an expired pre-authorisation) runs now. The server does this by itself
    when a moment passes; this is for a clock you just moved, or to see it happen."""

    def job() -> dict[str, Any]:
        c.engine.tick()
        return {**clock_view(c.world, c.clock), "ticks": 1}

    return await c.writer.call(job)


class CollateralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(description="the collateral's value in yuan (its lendable part is "
                                   "the value less the haircut, hvps.pledge_haircut)",
                       examples=["5000000.00"])


@router.post("/participants/{participant}/pledge", summary="Pledge collateral (质押)")
async def pledge(participant: str, change: Annotated[CollateralIn, Body()], _: Operator,
                 c: Core) -> Any:
    """Pledge collateral for the participant's automatic pledge financing in HVPS; its
    positions after."""
    return await c.writer.call(lambda: operations.collateral(
        c.world, participant, "pledge", change.value))


@router.post("/participants/{participant}/release", summary="Release collateral (解押)")
async def release(participant: str, change: Annotated[CollateralIn, Body()], _: Operator,
                  c: Core) -> Any:
    """Release pledged collateral (409 when more than is free: financing drawn on it)."""
    return await c.writer.call(lambda: operations.collateral(
        c.world, participant, "release", change.value))


def _string_or_boolean(value: Any) -> Any:
    # before pydantic's lax reading, which takes 1 for true: the schema says string or boolean
    if not isinstance(value, str | bool):
        raise ValueError("a value is a string (or true, false) as docs/PARAMETERS.md writes "
                         "it: \"15\", not 15")
    return value


class ParamsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Annotated[str | bool, BeforeValidator(_string_or_boolean)]] = Field(
        description="parameter name -> value as docs/PARAMETERS.md writes it",
        examples=[{"hvps.lsm_interval_minutes": "15", "banks.name_check": True}])


@router.get("/params", summary="The rule parameters in force")
async def get_params(_: Operator, c: Core) -> Any:
    return await c.writer.call(lambda: c.engine.params.written())


@router.post("/params", summary="Change rule parameters")
async def set_params(change: Annotated[ParamsIn, Body()], _: Operator, c: Core) -> Any:
    """Change parameters from now on, all or none (each checked first; logged, so a
    replay sees the same values); the parameters in force after."""
    return await c.writer.call(lambda: operations.set_params(c.world, change.params))


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["active", "suspended", "closed"] = Field(
        description="suspended: it may receive, not send; closed: neither")


@router.post("/participants/{participant}/status", summary="Suspend or reactivate")
async def set_status(participant: str, change: Annotated[StatusIn, Body()], _: Operator,
                     c: Core) -> Any:
    """暂停: a suspended participant's HVPS payments are refused (AG01) until it is made
    active again; a closed one is not paid either."""
    return await c.writer.call(lambda: operations.set_status(c.world, participant,
                                                             change.status))


@router.post("/participants", status_code=201, summary="Add a participant (加入)")
async def add_participant(change: Annotated[joining.ParticipantIn, Body()], request: Request,
                          _: Operator, c: Core) -> JSONResponse:
    """A new CNAPS participant while the sandbox runs, opened as a scenario's are (its
    settlement account funded with the opening balance, its bank's books, collateral,
    caps, customers), logged as one command. The answer holds its API key, shown only
    here; its transfers are taken at once. 409 `duplicate` for a name or code in use, 422
    naming the field for a bad code (its check digit) or kind."""
    ring = request.app.state.keys
    answer, key_hash = await c.writer.call(lambda: joining.admit(
        c.world, ring, joining.join_doc(c.world, change)))
    if c.edge is not None:  # the HTTP edge takes its transfers before it is told it exists
        learnt = c.edge.learn(change.name, key_hash)
        await asyncio.to_thread(learnt.wait, STOP_S)
    return JSONResponse(answer, status_code=201, headers={
        "Location": f"/v1/participants/{change.name}/positions"})


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: Literal["BEPS", "IBPS", "CUPS", "cards"] = Field(
        description="BEPS, IBPS, or the card switch's clearing positions (CUPS; cards says "
                    "the same)", examples=["BEPS"])


@router.post("/sessions", summary="Run a net settlement session now")
async def run_session(change: Annotated[SessionIn, Body()], _: Operator, c: Core) -> Any:
    """The system's net positions settle in HVPS now, out of its timetable (a session
    waiting for funds is tried again): the items settled and the positions, or who is
    short (it then waits, as a scheduled session does). Logged. 409 while HVPS is not open
    or the system is closed for maintenance."""
    system = "CUPS" if change.system == "cards" else change.system
    return await c.writer.call(lambda: operations.net_session(c.world, system))


@router.post("/end-of-day", summary="Close HVPS's business day now (日终)")
async def end_of_day(_: Operator, c: Core) -> Any:
    """The clearing window and end of day of the open business day, now: queued payments
    that still cannot settle are returned (AM04), credit drawn becomes overnight credit,
    the day's statements are written; HVPS stays closed until the next business day
    (payments meanwhile are held for it). Logged. 409 when HVPS is closed."""
    return await c.writer.call(lambda: operations.end_of_day(c.world))
