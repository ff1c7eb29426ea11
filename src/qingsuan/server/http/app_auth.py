"""Who is using the app: each user of a world with wallets logs in with their phone number
and a key of their own, sent after login as ``Authorization: Bearer KEY``.

Like the participants' keys (auth.py), a user's key is kept only as its SHA-256 hash. A
sandbox served with the documented participant keys (``sandbox-operator`` works) gives each
user the documented key ``sandbox-app-<PHONE>`` (``sandbox-app-13800000001``): no
protection at all, which is the point of a sandbox. Otherwise the app has only the keys
issued with :func:`issue_user_keys` (none by default: every app route answers 401), so a
server with random participant keys never opens its users to a guessable key.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qingsuan.server.http.auth import OPERATOR, KeyRing, hash_key, sandbox_key
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qingsuan.server.http.core import SandboxCore

APP_SANDBOX_PREFIX: Final = "sandbox-app-"
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <the user's app key>")
_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}


class UserKeys:
    """Phone -> SHA-256 of the user's app key; nothing else is kept."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.hashes = dict(hashes)
        self._by_hash = {h: p for p, h in self.hashes.items()}

    def who(self, key: str) -> str | None:
        """The phone whose key this is, or None."""
        return self._by_hash.get(hash_key(key))

    def check(self, phone: str, key: str) -> bool:
        """``key`` is ``phone``'s (compared in constant time: a wrong key says nothing)."""
        return hmac.compare_digest(self.hashes.get(phone, "-" * 64), hash_key(key))


def sandbox_user_key(phone: str) -> str:
    """The documented sandbox key of the app's user ``phone`` (docs/WALLETS.md)."""
    return f"{APP_SANDBOX_PREFIX}{phone}"


def issue_user_keys(app: FastAPI, phones: list[str]) -> dict[str, str]:
    """Random keys for ``phones`` (replacing theirs): phone -> key, to be shown once; only
    their hashes stay with the server."""
    keys = {p: f"qs_app_{p}_{secrets.token_hex(16)}" for p in phones}
    ring = _ring(app)
    app.state.app_keys = UserKeys({**ring.hashes, **{p: hash_key(k) for p, k in keys.items()}})
    return keys


def _ring(app: FastAPI) -> UserKeys:
    """The app's keys: issued ones, or (first asked, on a sandbox served with the documented
    participant keys) the documented key of every user of the world."""
    found: UserKeys | None = getattr(app.state, "app_keys", None)
    if found is not None:
        return found
    keys: KeyRing = app.state.keys
    core: SandboxCore = app.state.core
    who = keys.who(sandbox_key(OPERATOR))
    wallets = core.world.wallets
    sandbox = who is not None and who.operator and wallets is not None
    phones = list(wallets.users) if sandbox and wallets is not None else []
    ring = UserKeys({p: hash_key(sandbox_user_key(p)) for p in phones})
    app.state.app_keys = ring
    return ring


def user_keys(request: Request) -> UserKeys:
    return _ring(request.app)


async def app_user(request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None,
                                          Depends(_bearer)]) -> str:
    """The phone of the user whose key is sent (401 otherwise: a participant's key is not
    a user's)."""
    if credentials is None:
        raise ApiError(401, "missing_key", "log in: send your app key as "
                       "'Authorization: Bearer KEY'", headers=_CHALLENGE)
    phone = user_keys(request).who(credentials.credentials)
    if phone is None:
        raise ApiError(401, "bad_key", "this is not an app user's key here",
                       headers=_CHALLENGE)
    return phone


AppUser = Annotated[str, Depends(app_user)]
