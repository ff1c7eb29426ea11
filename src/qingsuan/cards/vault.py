"""Card data at rest (docs/SECURITY.md): a world's card key, and what it makes of a PAN and
a PIN before either reaches the engine's state, the command log or a snapshot.

* a **token** ("tok_" + 24 hex: HMAC-SHA256 of the PAN under the token key, truncated) is
  the card's identifier everywhere in the engine (cards, transactions, daily allowances);
* the **masked PAN** (first 6, last 4) is kept beside it for reports, clearing files and
  routing (the BIN is its first 6 digits);
* the PAN itself exists at rest only **encrypted** (AES-256-GCM under the encryption key,
  the token as associated data), in the switch's card file;
* the issuer's **PIN verification value** is keyed with the world's PIN key: HMAC of the
  terminal's PIN digest (:func:`qingsuan.cards.pin.pin_verification_value` under the public
  sandbox key), so a copied log or snapshot gives no way to test PINs.

The three keys are derived from one 32-byte master key, which comes from an explicit key
file, the environment (``QINGSUAN_CARD_KEY``, 64 hex digits) or the key file next to a
SQLite store (``STORE.keys``, mode 0600, made at random with a new store); never from the
log. A store records only the key's check value (KCV), so opening it with another key is
refused instead of silently declining every card.

The one thing a reader would get wrong: encryption is deterministic (the nonce is derived
from the PAN), so a world rebuilt from its log is byte-for-byte the same state. Two
ciphertexts of one PAN are equal, which tells no more than the token already does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from qingsuan.cards.iso8583 import luhn_ok, mask_pan
from qingsuan.cards.pin import SANDBOX_PVK, hmac_pads, hmac_sha256, pin_verification_value
from qingsuan.store import file_beside

#: the environment variable holding a world's card key (64 hex digits)
KEY_ENV: Final = "QINGSUAN_CARD_KEY"
KEY_BYTES: Final = 32
TOKEN_PREFIX: Final = "tok_"
TOKEN_HEX: Final = 24
#: the suffix of the key file next to a SQLite store
KEY_FILE_SUFFIX: Final = ".keys"
_NONCE_BYTES: Final = 12
#: cards whose token and masked PAN a vault keeps, at most (about 200 bytes each), and PIN
#: digests whose verification value it keeps (about 150 bytes each)
MAX_CARDS_KEPT: Final = 1 << 20


class CardKeyError(ValueError):
    """No usable card key (missing, malformed, or not the key the world was built with).
    The message never holds key material."""


@dataclass(frozen=True)
class CardVault:
    """A world's card key and the three keys derived from it. ``origin`` says where the
    key came from (for messages; never the key)."""

    master: bytes = field(repr=False)
    origin: str = "given"
    #: the token and PIN keys' HMACs as padded hash states (cards/pin.py hmac_pads)
    _token: tuple[hashlib._Hash, hashlib._Hash] = field(init=False, repr=False,
                                                         compare=False)
    _nonce: hmac.HMAC = field(init=False, repr=False, compare=False)
    _pin: tuple[hashlib._Hash, hashlib._Hash] = field(init=False, repr=False,
                                                       compare=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)
    #: PAN -> (token, masked PAN) of the cards tokenised so far whose PAN passes the Luhn
    #: check: a world's cards are tokenised when it is built, then each of their requests
    #: asks again (one dict read instead of a Luhn check, an HMAC and a mask per request).
    #: Process memory only, like the scenario that holds the same PANs: never logged,
    #: dumped or shown (docs/SECURITY.md)
    _kept: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)
    #: terminal PIN digest -> its PIN verification value, for as many cards: the cards'
    #: values are keyed when the world is built, then each request with the right PIN
    #: asks again (one dict read instead of an HMAC). Process memory only, as ``_kept``
    _pin_values: dict[bytes, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.master) != KEY_BYTES:
            raise CardKeyError(f"a card key is {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)")
        set_ = object.__setattr__  # frozen: derived once here
        set_(self, "_token", hmac_pads(self._sub(b"token")))
        set_(self, "_nonce", hmac.new(self._sub(b"nonce"), digestmod=hashlib.sha256))
        set_(self, "_pin", hmac_pads(self._sub(b"pin")))
        set_(self, "_aead", AESGCM(self._sub(b"encrypt")))
        set_(self, "_kept", {})
        set_(self, "_pin_values", {})

    def _sub(self, label: bytes) -> bytes:
        return hmac.digest(self.master, b"qingsuan card key|" + label, "sha256")

    # ------------------------------------------------------------------ keys

    @classmethod
    def generate(cls, origin: str = "generated") -> CardVault:
        return cls(secrets.token_bytes(KEY_BYTES), origin)

    @classmethod
    def from_hex(cls, text: str, origin: str) -> CardVault:
        text = text.strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise CardKeyError(f"{origin}: not hex") from None
        if len(key) != KEY_BYTES:
            raise CardKeyError(f"{origin}: a card key is {2 * KEY_BYTES} hex digits, "
                               f"got {len(text)}")
        return cls(key, origin)

    @classmethod
    def sandbox(cls, seed: str) -> CardVault:
        """The deterministic sandbox default, derived from ``seed`` (the scenario's name):
        anyone can derive it, so it protects nothing (docs/SECURITY.md). For worlds whose
        store does not outlive the run (``qingsuan run`` without ``--store``, memory)."""
        return cls(hashlib.sha256(b"qingsuan sandbox card key|" + seed.encode()).digest(),
                   "the sandbox default (derived from the scenario: protects nothing)")

    def check_value(self) -> str:
        """The key's check value (KCV): 16 hex digits a store keeps to recognise its key;
        they reveal nothing of it."""
        return hmac.digest(self.master, b"qingsuan card key check", "sha256")[:8].hex()

    def write(self, path: Path) -> None:
        """Write the key to a new file only its owner may read (0600); never overwrites."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.master.hex() + "\n")

    # ------------------------------------------------------------------ cards

    def token(self, pan: str) -> str:
        """The card's identifier in the engine: one HMAC (the gateway's only per-request
        cost here), kept for a PAN that passes the Luhn check."""
        kept = self._kept.get(pan)
        if kept is not None:
            return kept[0]
        return self._token_of(pan, luhn_ok(pan))

    def _token_of(self, pan: str, luhn: bool) -> str:
        """The token of a PAN not kept yet (``luhn``: whether it passes the Luhn check);
        kept with its masked PAN if it passes and there is room."""
        token = TOKEN_PREFIX + hmac_sha256(self._token, pan.encode()).hexdigest()[:TOKEN_HEX]
        if luhn and len(self._kept) < MAX_CARDS_KEPT:
            self._kept[pan] = (token, mask_pan(pan))
        return token

    def card_fields(self, pan: str) -> dict[str, str]:
        """What a request carries instead of field 2: the token (empty for a PAN that is
        not digits with a right check digit: the switch answers 14) and the masked PAN."""
        kept = self._kept.get(pan)  # (a PAN kept passed the Luhn check)
        if kept is not None:
            return {"card": kept[0], "pan_masked": kept[1]}
        ok = luhn_ok(pan)  # (digits only, as ASCII)
        return {"card": self._token_of(pan, True) if ok else "", "pan_masked": mask_pan(pan)}

    def encrypt_pan(self, pan: str) -> str:
        """The PAN as the card file keeps it: hex of nonce | AES-GCM ciphertext and tag,
        bound to the card's token."""
        mac = self._nonce.copy()
        mac.update(pan.encode())
        nonce = mac.digest()[:_NONCE_BYTES]
        return (nonce + self._aead.encrypt(nonce, pan.encode(), self.token(pan).encode())).hex()

    def decrypt_pan(self, blob: str, token: str) -> str:
        """The PAN of an encrypted card number; :class:`CardKeyError` if it was not
        encrypted under this key for this token."""
        from cryptography.exceptions import InvalidTag

        raw = bytes.fromhex(blob)
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                      token.encode()).decode()
        except InvalidTag:
            raise CardKeyError("the card number does not decrypt under this key") from None

    # ------------------------------------------------------------------ PINs

    def key_pin_digest(self, digest: bytes) -> str:
        """The PIN verification value of a terminal's PIN digest (hex)."""
        value = self._pin_values.get(digest)
        if value is None:
            value = hmac_sha256(self._pin, digest).hexdigest()
            if len(self._pin_values) < MAX_CARDS_KEPT:
                self._pin_values[digest] = value
        return value

    def pvv(self, pan: str, pin: str) -> str:
        """The PIN verification value of a PAN and PIN under this world's PIN key (hex)."""
        return self.key_pin_digest(pin_verification_value(pan, pin, SANDBOX_PVK))

    # ------------------------------------------------------------------ requests

    def tokenise(self, fields: Mapping[str, str]) -> dict[str, str]:
        """A terminal's request (field 2 the PAN, ``pin_hash`` the terminal's PIN digest in
        hex) as the switch logs it: no PAN, the PIN value keyed."""
        out = dict(fields)
        pan = out.pop("2", None)
        if pan is not None:
            out.update(self.card_fields(pan))
        digest = out.get("pin_hash")
        if digest is not None:
            try:
                out["pin_hash"] = self.key_pin_digest(bytes.fromhex(digest))
            except ValueError:
                out["pin_hash"] = "undecipherable"  # never equals a stored value: 55
        return out


def key_file_of(store: str) -> Path | None:
    """The key file next to a SQLite store (``STORE.keys``); None for other stores."""
    return file_beside(store, KEY_FILE_SUFFIX)


def resolve(store: str, *, key_file: str | Path | None = None, create: bool = False,
            sandbox_seed: str | None = None) -> CardVault:
    """The card key of the world in ``store``, first found of: ``key_file`` (made at
    random when it does not exist and ``create``), ``QINGSUAN_CARD_KEY``, the key file next
    to a SQLite store (made at random, 0600, when it does not exist and ``create``), the
    sandbox default of ``sandbox_seed`` (a store that does not outlive its run). Else
    :class:`CardKeyError`."""
    if key_file is not None:
        return _from_file(Path(key_file), create)
    env = os.environ.get(KEY_ENV)
    if env:
        return CardVault.from_hex(env, KEY_ENV)
    beside = key_file_of(store)
    if beside is not None and (beside.exists() or sandbox_seed is None):
        return _from_file(beside, create)
    if sandbox_seed is not None:
        return CardVault.sandbox(sandbox_seed)
    raise CardKeyError(f"no card key for this store: set {KEY_ENV} or give a key file "
                       "(a PostgreSQL store has no key file beside it)")


def resolve_deferred(store: str, *, key_file: str | Path | None = None,
                     sandbox_seed: str | None = None) -> tuple[CardVault, Path | None]:
    """As :func:`resolve` with ``create``, but a new key is not written yet: (the key, the
    file to write it to once a world is built with it, or None). So a store that is then
    refused (not a store, another writer's) is left without a stray key file."""
    target = Path(key_file) if key_file is not None else \
        None if os.environ.get(KEY_ENV) else key_file_of(store)
    if target is not None and not target.exists() and (
            key_file is not None or sandbox_seed is None):
        return CardVault.generate(f"a new key for {target}"), target
    return resolve(store, key_file=key_file, sandbox_seed=sandbox_seed), None


def _from_file(path: Path, create: bool) -> CardVault:
    if not path.exists():
        if not create:
            raise CardKeyError(f"card key file {path} does not exist")
        vault = CardVault.generate(f"key file {path}")
        try:
            vault.write(path)
        except FileExistsError:  # made meanwhile: use that one
            return _from_file(path, False)
        return vault
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardKeyError(f"card key file {path}: cannot read it ({type(exc).__name__})"
                           ) from None
    return CardVault.from_hex(text, f"key file {path}")
