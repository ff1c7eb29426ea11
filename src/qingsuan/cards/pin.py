"""PINs (密码): ISO 9564 format-0 PIN blocks under a zone PIN key, and the issuer's PIN
verification value.

A PIN never exists in clear outside this module's two functions, never in the command log,
never in a message or a log line:

* on the wire, field 52 carries the PIN block (format 0: the PIN XOR the PAN's 12 rightmost
  digits before the check digit) encrypted under the acquirer's zone PIN key (ZPK, 3DES);
* the issuer keeps only a PIN verification value: HMAC-SHA256 under its PIN verification
  key (PVK) of the PAN and the PIN, a model of what an HSM derives (real issuers keep an
  IBM 3624 offset or a Visa PVV under a key). A keyed one-way value can be checked in a
  microsecond, unlike a slow password hash, and is useless without the key.

The sandbox's keys are fixed test keys (like every card scheme's test environment), printed
in docs/SERVE.md; ``qingsuan serve`` takes another zone PIN key from ``--zpk``. The value
under the public ``SANDBOX_PVK`` is only the terminal's digest of PAN and PIN (a 6-digit
PIN falls to a million HMACs): what issuers store and the log holds is that digest keyed
again with the world's secret PIN key (cards/vault.py).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

#: the sandbox's zone PIN key (double-length 3DES): the terminals' and the switch's
SANDBOX_ZPK: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
#: the sandbox issuers' PIN verification key
SANDBOX_PVK: Final = bytes.fromhex("5A5A5A5A5A5A5A5AA5A5A5A5A5A5A5A5")

PIN_MIN_LEN: Final = 4
PIN_MAX_LEN: Final = 12


class PinError(ValueError):
    """A PIN or PIN block that cannot be used (the message never holds the PIN)."""


def _pan_block(pan: str) -> bytes:
    if not pan.isdigit() or len(pan) < 13:
        raise PinError("PAN must be at least 13 digits for a format-0 PIN block")
    return bytes.fromhex("0000" + pan[-13:-1])


@functools.lru_cache(maxsize=64)
def _cipher(zpk: bytes) -> Cipher[modes.ECB]:
    """The 3DES cipher of a key, built once (building it costs more than using it)."""
    if len(zpk) not in (16, 24):
        raise PinError("the zone PIN key must be 16 or 24 bytes (3DES)")
    return Cipher(TripleDES(zpk if len(zpk) == 24 else zpk + zpk[:8]), modes.ECB())


@functools.lru_cache(maxsize=64)
def _decryptor(zpk: bytes) -> Any:
    """A long-lived ECB decryption context of a key (fed whole blocks, never finalised)."""
    return _cipher(zpk).decryptor()


def _pan_int(pan: str) -> int:
    return int.from_bytes(_pan_block(pan))


def hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256 under ``key`` as its inner and outer hash states with nothing fed yet
    (RFC 2104): :func:`hmac_sha256` of a value is then two copies of C hash objects, not
    a Python HMAC object per card request."""
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_SHA256_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)),
            hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def hmac_sha256(pads: tuple[hashlib._Hash, hashlib._Hash], value: bytes) -> hashlib._Hash:
    """HMAC-SHA256 of ``value`` under the key of ``pads`` (:func:`hmac_pads`): the outer
    hash object, to take its digest or hexdigest."""
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(value)
    outer.update(inner.digest())
    return outer


_SHA256_BLOCK: Final = 64


@functools.lru_cache(maxsize=64)
def _keyed_mac(pvk: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256 keyed with ``pvk`` and nothing fed yet (copied for each value)."""
    return hmac_pads(pvk)


def check_pin(pin: str) -> None:
    if not pin.isascii() or not pin.isdigit() or not PIN_MIN_LEN <= len(pin) <= PIN_MAX_LEN:
        raise PinError(f"a PIN is {PIN_MIN_LEN} to {PIN_MAX_LEN} digits")


def encrypt_pin_block(pin: str, pan: str, zpk: bytes = SANDBOX_ZPK) -> bytes:
    """The 8-byte field 52 a terminal sends: format-0 PIN block encrypted under ``zpk``."""
    check_pin(pin)
    clear = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))  # length: one hex nibble
    block = bytes(a ^ b for a, b in zip(clear, _pan_block(pan), strict=True))
    enc = _cipher(zpk).encryptor()
    return bytes(enc.update(block) + enc.finalize())


def decrypt_pin_block(block: bytes, pan: str, zpk: bytes = SANDBOX_ZPK) -> str:
    """The PIN inside a field 52; :class:`PinError` if the block is not a format-0 block
    for this PAN (wrong key, wrong PAN, garbage)."""
    if len(block) != 8:
        raise PinError("field 52 must be 8 bytes")
    # ECB has no chaining: one decryptor context serves block after block
    clear = f"{int.from_bytes(_decryptor(zpk).update(block)) ^ _pan_int(pan):016X}"
    if clear[0] != "0":
        raise PinError("field 52 is not a format-0 PIN block")
    n = int(clear[1], 16)
    pin, pad = clear[2:2 + n], clear[2 + n:]
    if not PIN_MIN_LEN <= n <= PIN_MAX_LEN or not pin.isdigit() or pad.strip("F"):
        raise PinError("field 52 does not decrypt to a PIN block (wrong key or PAN?)")
    return pin


def pin_verification_value(pan: str, pin: str, pvk: bytes = SANDBOX_PVK) -> bytes:
    """What the issuer stores and compares: HMAC-SHA256(PVK, PAN | PIN)."""
    check_pin(pin)
    return hmac_sha256(_keyed_mac(pvk), f"{pan}|{pin}".encode()).digest()
