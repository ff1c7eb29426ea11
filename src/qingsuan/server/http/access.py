"""Who is asking and whether it may act for a participant: the pure part of the routes'
dependencies (deps.py), shared with the HTTP edge process (edge.py), which answers the
transfer route without FastAPI."""

from __future__ import annotations

from collections.abc import Container
from typing import Final

from qingsuan.server.http.auth import KeyRing, Principal
from qingsuan.server.http.errors import ApiError

CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, as FastAPI's HTTPBearer reads
    it (any other scheme, or none: None)."""
    if not authorization:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if not scheme or not key or scheme.lower() != "bearer":
        return None
    return key


def principal(ring: KeyRing, key: str | None) -> Principal:
    """Whose key this is; 401 when there is none, or it is not known here."""
    if key is None:
        raise ApiError(401, "missing_key", "send your API key as 'Authorization: Bearer KEY'",
                       headers=CHALLENGE)
    who = ring.who(key)
    if who is None:
        raise ApiError(401, "bad_key", "this API key is not known here", headers=CHALLENGE)
    return who


def acting(who: Principal, participant: str) -> str:
    """The path's participant, when the key is that participant's (to send, to cancel);
    whether it is one of the world's is :func:`must_know`'s."""
    if who.operator:
        raise ApiError(403, "participant_only", "the operator's key sends no payments: use "
                       f"{participant}'s key")
    if who.name != participant:
        raise ApiError(403, "not_yours", "this key acts for its own participant only",
                       "participant")
    return participant


def must_know(known: Container[str], participant: str) -> None:
    """404 unless ``participant`` is one of the world's."""
    if participant not in known:
        raise ApiError(404, "unknown_participant", f"no participant {participant!r} "
                       "(GET /v1/participants lists them)", "participant")
