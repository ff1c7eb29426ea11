"""A participant's inbox: what CNAPS tells it (queued, settled, credited, incoming,
netted, rejected, returned, cancelled, pledged, credit drawn), from HVPS and each net
system, in time order, polled with a cursor. Only its own notices: those addressed to it
or to the account it settles in."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from qingsuan.clock import format_time
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from qingsuan.world import World

MAX_LIMIT: Final = 1000
_CURSOR_RE: Final = re.compile(r"^([A-Z]+\.\d+)(-[A-Z]+\.\d+)*$")


def _cursor(text: str | None) -> dict[str, int]:
    """``HVPS.12-BEPS.3``: how many notices of each system were read (absent: none)."""
    if not text:
        return {}
    if not _CURSOR_RE.match(text) or len(text) > 200:
        raise ApiError(422, "invalid_cursor", "the cursor is the 'next' of an earlier "
                       "answer, like HVPS.12-BEPS.3", "after")
    return {k: int(v) for k, v in (part.split(".", 1) for part in text.split("-"))}


def inbox(world: World, participant: str, after: str | None, limit: int) -> dict[str, Any]:
    cnaps = world.cnaps
    read = _cursor(after)
    mine = {participant, cnaps.directory.settling(participant)}
    found: list[tuple[int, str, str, str, str]] = []
    positions: dict[str, int] = {}
    sources: list[tuple[str, list[Any]]] = [("HVPS", cnaps.hvps.notices)]
    sources += [(name, net.notices) for name, net in cnaps.net.items()]
    for system, notices in sources:
        index = min(read.get(system, 0), len(notices))
        taken = 0
        while index < len(notices) and taken < limit:  # (at most limit per system)
            n = notices[index]
            index += 1
            at, who, ref, event, detail = (n.at_us, n.participant, n.ref, n.event, n.detail) \
                if system == "HVPS" else n
            if who in mine:
                found.append((at, system, ref, event, detail))
                taken += 1
        positions[system] = index
    found.sort(key=lambda f: f[0])
    prefix = f"{participant}/"
    return {
        "notices": [{"at": format_time(at), "system": system, "event": event,
                     "payment_id": ref.removeprefix(prefix) if ref.startswith(prefix) else None,
                     "ref": ref or None, "detail": detail or None}
                    for at, system, ref, event, detail in found],
        "next": "-".join(f"{k}.{v}" for k, v in positions.items()),
    }


def sources(world: World) -> list[tuple[str, list[Any]]]:
    cnaps = world.cnaps
    sources: list[tuple[str, list[Any]]] = [("HVPS", cnaps.hvps.notices)]
    return sources + [(name, net.notices) for name, net in cnaps.net.items()]


def next_for(world: World, participant: str, read: dict[str, int]
             ) -> tuple[str, int, dict[str, Any]] | None:
    """The earliest of ``participant``'s notices not read yet (``read``: how many of each
    system's notices are behind it; moved past others' notices here, in place), as
    (system, its index in that system's notices, the notice as the inbox shows it); None
    when there is none. The index is a notice's stable name: the notices are rebuilt the
    same from the log."""
    mine = {participant, world.cnaps.directory.settling(participant)}
    best: tuple[int, str, int, Any] | None = None
    for system, notices in sources(world):
        index = min(read.get(system, 0), len(notices))
        while index < len(notices):
            n = notices[index]
            who = n.participant if system == "HVPS" else n[1]
            if who in mine:
                break
            index += 1
        read[system] = index  # (others' notices are never this participant's)
        if index < len(notices):
            at = notices[index].at_us if system == "HVPS" else notices[index][0]
            if best is None or at < best[0]:
                best = (at, system, index, notices[index])
    if best is None:
        return None
    at, system, index, n = best
    ref, event, detail = (n.ref, n.event, n.detail) if system == "HVPS" else n[2:]
    prefix = f"{participant}/"
    doc: dict[str, Any] = {
        "at": format_time(at), "system": system, "event": event,
        "payment_id": ref.removeprefix(prefix) if ref.startswith(prefix) else None,
        "ref": ref or None, "detail": detail or None}
    return system, index, doc
