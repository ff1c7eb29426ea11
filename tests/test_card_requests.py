"""The card request's logged text and fields, built on the fast paths (cards/requests.py),
are exactly what json and strftime make of them, and a card's token and PIN verification
value (cards/vault.py, cards/pin.py) exactly the HMACs: the log, the duplicate check and
the state hash depend on them byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.cards.pin import SANDBOX_PVK, hmac_pads, hmac_sha256
from qingsuan.cards.requests import (
    CardRequest,
    Mti,
    dumps_fields,
    terminal_request,
    transmission_time,
)
from qingsuan.cards.vault import CardVault
from qingsuan.clock import to_beijing

# strings with what json escapes and orjson might not, and the separators' characters
TEXT = st.text(alphabet=st.sampled_from('ab09:," {}[]\\\x7f\x01\n\u00e9\u4e2d'), max_size=6)
VALUE = st.one_of(TEXT, st.integers(-10, 10), st.none(), st.lists(TEXT, max_size=2))


@settings(max_examples=400)
@given(st.dictionaries(TEXT, VALUE, max_size=6))
def test_the_fields_text_is_jsons_with_sorted_keys(fields: dict[str, object]) -> None:
    assert dumps_fields(fields) == json.dumps(fields, sort_keys=True)


@settings(max_examples=400)
@given(st.integers(-10**15, 5 * 10**15))
def test_field_7_is_the_beijing_time_of_sending(at_us: int) -> None:
    assert transmission_time(at_us) == to_beijing(at_us).strftime("%m%d%H%M%S")


@settings(max_examples=300)
@given(st.sampled_from(["0200", Mti.AUTHORISATION]), st.integers(0, 10**7),
       st.one_of(TEXT, st.integers(0, 9)), TEXT, st.one_of(TEXT, st.none()),
       st.one_of(TEXT, st.none()),
       st.one_of(st.integers(-10**13, 10**13), st.booleans()),
       st.integers(-10**15, 5 * 10**15))
def test_a_terminals_request_reads_as_its_logged_fields(
        mti: str, stan: int, terminal: str | int, acquirer: str, pan_masked: str | None,
        pin_hash: str | None, amount_fen: int, at_us: int) -> None:
    fields: dict[str, object] = {
        "t": mti, "card": "tok_ab", "pan_masked": pan_masked, "3": "000000",
        "4": f"{amount_fen:012d}", "7": to_beijing(at_us).strftime("%m%d%H%M%S"),
        "11": f"{stan:06d}", "32": acquirer, "41": terminal, "49": "156",
        "37": f"{stan:012d}"}
    if pin_hash is not None:
        fields["pin_hash"] = pin_hash
    built = terminal_request(mti, "000000", amount_fen, at_us, stan, acquirer, terminal,
                             "tok_ab", pan_masked, pin_hash)
    assert built == CardRequest.from_fields(fields, json.dumps(fields, sort_keys=True))


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32), st.text(max_size=30))
def test_a_cards_token_is_the_hmac_of_its_number(key: bytes, pan: str) -> None:
    vault = CardVault(key)
    token_key = hmac.digest(key, b"qingsuan card key|token", "sha256")
    assert vault.token(pan) == "tok_" + hmac.new(token_key, pan.encode(),
                                                 hashlib.sha256).hexdigest()[:24]


@settings(max_examples=100)
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_the_pads_make_the_standard_hmac(key: bytes, value: bytes) -> None:
    assert hmac_sha256(hmac_pads(key), value).digest() == hmac.digest(key, value, "sha256")


def test_a_pin_verification_value_is_the_hmac_of_the_pan_and_pin() -> None:
    vault = CardVault(bytes(range(32)))
    pin_key = hmac.digest(bytes(range(32)), b"qingsuan card key|pin", "sha256")
    pvv = hmac.digest(SANDBOX_PVK, b"6222020000000012347|123456", "sha256")
    assert vault.pvv("6222020000000012347", "123456") == hmac.new(
        pin_key, pvv, hashlib.sha256).hexdigest()
