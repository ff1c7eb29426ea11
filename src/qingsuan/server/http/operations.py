"""The operator's commands on the world, each checked, then logged: pledge and release a
participant's collateral (质押/解押: the banks' logged pledge and release events, as a
scenario's), and change rule parameters (a logged ``param`` command, every value checked
against the parameters' table first)."""

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
