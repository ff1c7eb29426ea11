"""The operator's commands on the world, each checked, then logged: pledge and release a
participant's collateral (质押/解押: the banks' logged pledge and release events, as a
scenario's), change rule parameters (a logged ``param`` command, every value checked
against the parameters' table first), run a net settlement session or HVPS's end of day
now (CNAPS's logged ``net_session`` and ``end_of_day``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qingsuan.cnaps.hvps import dumps
from qingsuan.params import ParamError
from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.views import positions

if TYPE_CHECKING:
    from qingsuan.world import World


def collateral(world: World, participant: str, do: str, value: str) -> dict[str, Any]:
    """``do``: pledge or release ``value`` (yuan) of ``participant``'s collateral; its
    positions after. 409 with CNAPS's reason when refused (more than is pledged, say)."""
    amount = inputs.amount_fen(value, "value")
    directory = world.cnaps.directory
    if participant not in directory or directory.settling(participant) != participant or \
            participant not in world.banks.members:
        raise ApiError(404, "unknown_participant", f"no direct participant {participant!r} "
                       "(collateral is pledged by who settles in its own account)",
                       "participant")
    world.engine.command("banks.event", dumps({"do": do, "order": -1, "fields": {
        "participant": participant, "value_fen": amount}}))
    action = world.banks.actions[-1]
    if not action["ok"]:
        reason = action["reason"] or {"code": "NARR", "message": f"not {do}d"}
        raise ApiError(409, reason["code"], reason["message"], "value")
    return positions(world, participant)


def set_params(world: World, values: dict[str, Any]) -> dict[str, str]:
    """Change parameters from now on (all or none); the parameters in force after."""
    if not values:
        raise ApiError(422, "missing_field", "give at least one parameter", "params")
    for name, value in values.items():
        if not isinstance(value, str | bool) or (isinstance(value, str) and len(value) > 200):
            raise ApiError(422, "invalid_param", "a parameter's value is a string as "
                           "docs/PARAMETERS.md writes it (on/off, true/false for a switch)",
                           f"params.{name}")
    try:
        world.engine.set_params(values)
    except ParamError as exc:
        named = next((n for n in values if n in str(exc)), None)
        raise ApiError(422, "invalid_param", str(exc)[:300],
                       f"params.{named}" if named else "params") from None
    return world.engine.params.written()


def set_status(world: World, participant: str, status: str) -> dict[str, Any]:
    """暂停/恢复: suspend a participant (it may receive, not send), close it (neither) or
    make it active again; logged as CNAPS's status command."""
    from qingsuan.cnaps.participants import ParticipantStatus

    directory = world.cnaps.directory
    if participant not in directory or participant not in world.banks.members:
        raise ApiError(404, "unknown_participant", f"no participant {participant!r}",
                       "participant")
    outcome = world.cnaps.set_status(participant, ParticipantStatus(status))
    if not outcome.ok:  # (CNAPS refuses nothing here today; kept for when it does)
        code, text = outcome.reason or ("NARR", "refused")
        raise ApiError(409, code, text, "status")
    p = directory.get(participant)
    return {"participant": p.name, "code": p.code, "status": p.status.value}


def net_session(world: World, system: str) -> dict[str, Any]:
    """A BEPS, IBPS or card (CUPS) settlement session now: what it settled, or who is
    short (the session then waits for funds, as a scheduled one does). 409 when it cannot
    run now (HVPS not open, the system closed for maintenance)."""
    from qingsuan.clock import format_time
    from qingsuan.money import format_fen

    net = world.cnaps.net[system]
    now = world.engine.clock.now_us()
    refused = net.session_refusal(now)
    if refused is not None:
        raise ApiError(409, "system_closed" if net.closed else "hvps_closed", refused,
                       "system")
    ran = world.engine.command("cnaps.net_session", dumps({"system": system}))
    assert ran["ok"], ran  # (checked just above, under the writer's lock)
    return {"system": system, "session": ran["key"], "at": format_time(now),
            "status": ran["status"].split(":")[0], "detail": ran["status"],
            "items_settled": ran["items"] if ran["status"] == "settled" else 0,
            "positions": {n: format_fen(p) for n, p in sorted(ran["positions"].items())}}


def end_of_day(world: World) -> dict[str, Any]:
    """日终 now: HVPS's clearing window and end of day for the open business day (what
    is still queued is returned AM04, credit drawn becomes overnight credit, the day's
    statements are written), and HVPS closed until the next business day. 409 when HVPS
    is closed already."""
    from qingsuan.clock import format_time

    hvps = world.cnaps.hvps
    now = world.engine.clock.now_us()
    refused = hvps.end_of_day_refusal(now)
    if refused is not None:
        raise ApiError(409, "hvps_closed", refused)
    done = world.engine.command("cnaps.end_of_day", dumps({}))
    assert done["ok"], done
    returned = set(done["returned"])
    return {"business_date": done["business_date"], "closed_at": format_time(now),
            "hvps_phase": hvps.phase(now)[0].value,
            "settled_in_window": [r for r in done["queued"] if r not in returned],
            "returned": done["returned"],
            "statements": f"/v1/participants/{{participant}}/statements/"
                          f"{done['business_date']}"}
