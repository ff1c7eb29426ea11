"""API keys: one per participant and one for the operator, kept only as SHA-256 hashes.

A key is sent as ``Authorization: Bearer KEY``. Keys are issued when a world is first
served (random: ``qs_<name>_<32 hex digits>``, printed once) and their hashes are written
to a key file beside the store (``STORE.apikeys``, 0600); a later start reads the hashes,
so the keys themselves exist only with whoever copied them. For a sandbox on one's own
machine the keys may instead be the documented ``sandbox-<NAME>`` (``sandbox-ICBC``,
``sandbox-operator``): anyone who reads the docs has them, which is the point of a
sandbox and no protection at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from qingsuan.store import file_beside

#: the operator's principal name (not a participant's: those are CNAPS names in capitals)
OPERATOR: Final = "operator"
KEY_FILE_SUFFIX: Final = ".apikeys"
SANDBOX_PREFIX: Final = "sandbox-"
_SAFE = re.compile(r"[^a-z0-9]")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a key belongs to: a participant (its CNAPS name) or the operator."""

    name: str

    @property
    def operator(self) -> bool:
        return self.name == OPERATOR


class KeyRing:
    """Principal name -> SHA-256 of its key; nothing else is kept."""

    def __init__(self, hashes: dict[str, str], *, sandbox: bool = False,
                 path: Path | None = None) -> None:
        self.hashes = dict(hashes)
        self._by_hash = {h: Principal(n) for n, h in self.hashes.items()}
        #: how a participant added while serving gets its key: the documented sandbox
        #: key, or a random one whose hash is written to ``path`` (when there is one)
        self.sandbox, self.path = sandbox, path

    def who(self, key: str) -> Principal | None:
        return self._by_hash.get(hash_key(key))

    def names(self) -> list[str]:
        return sorted(self.hashes)

    def missing(self, participants: Iterable[str]) -> list[str]:
        """The principals (participants and the operator) that have no key yet."""
        return [n for n in [*participants, OPERATOR] if n not in self.hashes]

    def issue(self, names: Iterable[str], *, sandbox: bool = False) -> dict[str, str]:
        """New keys for ``names`` (replacing theirs): name -> key, to be shown once."""
        keys = {n: sandbox_key(n) if sandbox else random_key(n) for n in names}
        self.hashes.update({n: hash_key(k) for n, k in keys.items()})
        self._by_hash = {h: Principal(n) for n, h in self.hashes.items()}
        return keys

    def admit(self, name: str) -> str:
        """A key for a participant added while serving (the operator's answer shows it
        once); its hash is in the key file, synced, before the participant is logged."""
        assert name != OPERATOR
        key = self.issue([name], sandbox=self.sandbox)[name]
        if self.path is not None:
            self.save(self.path)
        return key

    def learn(self, name: str, key_hash: str) -> None:
        """Another process issued ``name`` a key (the HTTP edge learns it this way)."""
        self.hashes[name] = key_hash
        self._by_hash = {h: Principal(n) for n, h in self.hashes.items()}

    @classmethod
    def for_world(cls, participants: Iterable[str], *, sandbox: bool = False
                  ) -> tuple[KeyRing, dict[str, str]]:
        ring = cls({}, sandbox=sandbox)
        keys = ring.issue([*participants, OPERATOR], sandbox=sandbox)
        return ring, keys

    # ------------------------------------------------------------------ the key file

    def to_json(self) -> str:
        return json.dumps({"sha256": dict(sorted(self.hashes.items()))}, indent=1) + "\n"

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """The hashes in ``path``; ValueError when it is not a key file."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            hashes = doc["sha256"]
            if not isinstance(hashes, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
                    for k, v in hashes.items()):
                raise ValueError("not name -> SHA-256")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"API key file {path} cannot be read: {exc}") from None
        return cls(hashes)

    def save(self, path: Path) -> None:
        """Write the hashes (only its owner may read the file: 0600), replacing it whole."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)


def random_key(name: str) -> str:
    return f"qs_{_SAFE.sub('', name.lower())}_{secrets.token_hex(16)}"


def sandbox_key(name: str) -> str:
    """The documented sandbox key of ``name`` (docs/SERVER.md)."""
    return f"{SANDBOX_PREFIX}{name}"


def key_file_of(store: str) -> Path | None:
    """``STORE.apikeys`` beside a SQLite store; None for PostgreSQL and memory stores."""
    return file_beside(store, KEY_FILE_SUFFIX)
