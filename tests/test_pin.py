"""PIN blocks (ISO 9564 format 0 under a 3DES zone PIN key) and verification values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qingsuan.cards.pin import (
    SANDBOX_ZPK,
    PinError,
    decrypt_pin_block,
    encrypt_pin_block,
    pin_verification_value,
)

PAN = "6222020200000000014"


def test_format0_block_known_answer() -> None:
    # clear block 06123456FFFFFFFF XOR 0000 + the 12 PAN digits before the check digit
    # (020000000001) = 06123656FFFFFFFE, then 3DES under the ZPK
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    dec = Cipher(TripleDES(SANDBOX_ZPK + SANDBOX_ZPK[:8]), modes.ECB()).decryptor()
    clear = dec.update(encrypt_pin_block("123456", PAN)) + dec.finalize()
    assert clear.hex().upper() == "06123656FFFFFFFE"


@given(st.from_regex(r"[0-9]{4,12}", fullmatch=True),
       st.from_regex(r"62[0-9]{15}", fullmatch=True))
def test_round_trip(pin: str, pan: str) -> None:
    assert decrypt_pin_block(encrypt_pin_block(pin, pan), pan) == pin


def test_wrong_key_or_pan_is_refused_not_guessed() -> None:
    block = encrypt_pin_block("123456", PAN)
    with pytest.raises(PinError):
        decrypt_pin_block(block, PAN, bytes(16))
    with pytest.raises(PinError):
        decrypt_pin_block(block[:7], PAN)
    with pytest.raises(PinError, match="4 to 12 digits"):
        encrypt_pin_block("12a4", PAN)


def test_verification_value_is_keyed_and_never_the_pin() -> None:
    pvv = pin_verification_value(PAN, "123456")
    assert pvv != pin_verification_value(PAN, "123457")
    assert pvv != pin_verification_value(PAN, "123456", bytes(16))
    assert b"123456" not in pvv and len(pvv) == 32
