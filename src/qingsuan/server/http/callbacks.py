"""Connected participants: who registered a callback URL, the secret its deliveries are
signed with, and how far its deliveries went, kept durable.

A participant that registers a URL is *connected*: its notices (incoming payments among
them) are POSTed to that URL (server/http/delivery.py) instead of waiting in its inbox to be
polled (the inbox still answers). The registrations and each one's progress (the cursor
of the notices delivered or given up, the last failures) are in a file beside a SQLite
store (``STORE.callbacks``, 0600: it holds the signing secrets), written whole, synced and
renamed at each change. What is to be delivered is not kept: it is derived from the
world's notices, which the log rebuilds the same; so a restart resumes at the cursor, and
what was sent but not yet recorded is sent again with the same message id (at least once).
A PostgreSQL or ``memory:`` store keeps them in memory only (registrations are lost at a
restart).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from qingsuan.server.http.errors import ApiError
from qingsuan.store import file_beside

FILE_SUFFIX: Final = ".callbacks"
#: the longest callback URL taken
MAX_URL: Final = 2000
#: failures (given up) kept per participant, newest last
MAX_FAILURES: Final = 100
SIGNATURE_HEADER: Final = "Qingsuan-Signature"
MESSAGE_ID_HEADER: Final = "Qingsuan-Message-Id"
ATTEMPT_HEADER: Final = "Qingsuan-Attempt"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of the body, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does with a delivery before trusting it: is ``signature`` (the
    header) the body's, with its secret? (compared in constant time)"""
    return hmac.compare_digest(sign(secret, body), signature)


def check_url(url: str, *, allow_remote: bool = False) -> str:
    """The callback URL, or 422: http(s), no user:password, and a loopback host unless
    ``allow_remote`` (a sandbox must not be made to POST to other machines)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ApiError(422, "invalid_url", f"a URL of at most {MAX_URL} characters", "url")
    try:
        parts = urllib.parse.urlsplit(url)
        host, _ = parts.hostname, parts.port  # (a bad port raises ValueError)
    except ValueError as exc:
        raise ApiError(422, "invalid_url", f"not a URL: {exc}", "url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ApiError(422, "invalid_url", "an http:// or https:// URL with a host", "url")
    if parts.username is not None or parts.password is not None:
        raise ApiError(422, "invalid_url", "no user or password in the URL: deliveries are "
                       "signed instead", "url")
    if not allow_remote and not _loopback(host):
        raise ApiError(422, "callback_not_loopback", f"{host!r} is not a loopback address "
                       "(127.0.0.1, ::1, localhost): this sandbox calls back its own machine "
                       "only (serve it with remote callbacks allowed to lift this)", "url")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Registration:
    """One connected participant."""

    url: str
    secret: str
    #: notices of each system delivered or given up (the inbox's cursor)
    read: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    #: messages given up: {"message_id", "attempts", "reason", "at"}
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "secret": self.secret, "read": self.read,
                "delivered": self.delivered, "failures": self.failures}


class Registry:
    """The connected participants, durable in ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None = None, *, allow_remote: bool = False) -> None:
        self.path = path
        self.allow_remote = allow_remote
        self.lock = threading.Lock()
        self.by_name: dict[str, Registration] = {}
        if path is not None and path.exists():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                self.by_name = {name: Registration(
                    str(r["url"]), str(r["secret"]),
                    {str(k): int(v) for k, v in r.get("read", {}).items()},
                    int(r.get("delivered", 0)), list(r.get("failures", [])))
                    for name, r in doc.items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}: not a callbacks file ({exc})") from None

    @classmethod
    def beside(cls, store: str, *, allow_remote: bool = False) -> Registry:
        return cls(file_beside(store, FILE_SUFFIX), allow_remote=allow_remote)

    def register(self, participant: str, url: str, read: dict[str, int]) -> Registration:
        """Connect ``participant`` (or change its URL): a new secret; deliveries start with
        the notices after ``read`` (what exists now is in the inbox already)."""
        check_url(url, allow_remote=self.allow_remote)
        with self.lock:
            old = self.by_name.get(participant)
            reg = Registration(url, "whsec_" + secrets.token_hex(32), dict(read))
            if old is not None:  # a new URL or secret: the progress goes on
                reg.read, reg.delivered, reg.failures = old.read, old.delivered, old.failures
            self.by_name[participant] = reg
            self.save()
            return reg

    def unregister(self, participant: str) -> bool:
        with self.lock:
            gone = self.by_name.pop(participant, None) is not None
            if gone:
                self.save()
            return gone

    def get(self, participant: str) -> Registration | None:
        with self.lock:
            return self.by_name.get(participant)

    def names(self) -> list[str]:
        with self.lock:
            return list(self.by_name)

    def advance(self, participant: str, reg: Registration, read: dict[str, int], *,
                failure: dict[str, Any] | None = None) -> None:
        """Record a message delivered (or given up, with why) and the cursor past it."""
        with self.lock:
            if self.by_name.get(participant) is not reg:
                return  # (unregistered or registered again meanwhile)
            reg.read = dict(read)
            if failure is None:
                reg.delivered += 1
            else:
                reg.failures = [*reg.failures, failure][-MAX_FAILURES:]
            self.save()

    def skip(self, participant: str, reg: Registration, read: dict[str, int]) -> None:
        """Move the cursor past notices that are not the participant's (not saved: losing
        it costs a scan, not a message)."""
        with self.lock:
            if self.by_name.get(participant) is reg:
                reg.read = dict(read)

    def save(self) -> None:
        """Write the file whole (0600), synced, then renamed over the old one."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({n: r.to_json() for n, r in self.by_name.items()}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
