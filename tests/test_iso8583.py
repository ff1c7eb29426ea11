"""ISO 8583 card-switch messages and TCP framing (qingsuan.cards)."""

from __future__ import annotations

import itertools
import random
from typing import get_args

import iso8583
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.cards.framing import (
    FrameDecoder,
    FrameFormat,
    FramingError,
    frame,
    parse_length,
)
from qingsuan.cards.iso8583 import (  # the fast path itself
    BINARY_FIELDS,
    DATA_FIELDS,
    SPEC,
    Decoded,
    MacAlgorithm,
    Malformed,
    ResponseCode,
    _fast_encode,
    _fast_fields,
    _first_unknown_field,
    compute_mac,
    decode_message,
    encode_message,
    format_error_response,
    luhn_ok,
    mask_pan,
    read_fields,
    response_mti,
    verify_mac,
    verify_message_mac,
)


def with_luhn(body: str) -> str:
    """Append the Luhn check digit to ``body``."""
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("no check digit")


PAN = with_luhn("622202123456789012")  # 19-digit UnionPay-style PAN
BAD_PAN = PAN[:-1] + str((int(PAN[-1]) + 1) % 10)
MAC_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIN_BLOCK = bytes.fromhex("1A2B3C4D5E6F7081")


def purchase_fields() -> dict[str, str | bytes]:
    return {
        "2": PAN,
        "3": "000000",
        "4": "000000012345",  # 123.45 CNY in fen
        "7": "0315143000",
        "11": "000123",
        "12": "143000",
        "13": "0315",
        "14": "2812",
        "18": "5411",
        "22": "051",
        "25": "00",
        "32": "01020000",
        "33": "03010000",
        "35": PAN + "=28121010000000000",
        "37": "240315000123",
        "41": "TERM0001",
        "42": "102310058120001",
        "43": "Qingsuan Supermarket Chaoyang Beijing CN",
        "49": "156",
        "52": PIN_BLOCK,
        "53": "2600000000000000",
        "60": "22000001000600",
    }


def encoded_purchase(**overrides: str | bytes) -> bytes:
    return encode_message("0200", {**purchase_fields(), **overrides}, check=False)


# --- helpers ---------------------------------------------------------------------------------


def test_luhn_and_mask() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
    assert not luhn_ok("7992739871x")
    assert luhn_ok(PAN) and not luhn_ok(BAD_PAN)
    masked = mask_pan(PAN)
    assert masked == PAN[:6] + "*" * (len(PAN) - 10) + PAN[-4:]
    assert PAN not in masked
    assert mask_pan("1234") == "****"


@given(st.text(alphabet="0123456789", min_size=2, max_size=19))
def test_luhn_equals_the_textbook_rule(digits: str) -> None:
    """From the right, double every second digit, subtract 9 from doubles over 9, sum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    assert luhn_ok(digits) == (total % 10 == 0)


def test_response_mti_and_codes() -> None:
    pairs = {"0100": "0110", "0200": "0210", "0220": "0230", "0400": "0410", "0800": "0810"}
    for req, resp in pairs.items():
        assert response_mti(req) == resp
    with pytest.raises(ValueError, match="mti"):
        response_mti("0210")
    codes = {c.value for c in ResponseCode}
    expected = "00 03 05 12 13 14 15 22 25 30 51 55 61 68 91 94 96 A0"
    assert " ".join(sorted(codes)) == expected
    assert ResponseCode("30").meaning == "format error"
    assert all(c.meaning for c in ResponseCode)


# --- round trips -----------------------------------------------------------------------------


def test_purchase_0200_round_trip() -> None:
    fields = purchase_fields()
    raw = encode_message("0200", fields, mac_key=MAC_KEY)
    assert raw[:4] == b"0200"
    assert raw[4] & 0x80, "secondary bitmap flag set because field 128 is present"
    got = decode_message(raw)
    assert isinstance(got, Decoded), got
    assert got.mti == "0200"
    mac = got.fields.pop("128")
    assert got.fields == fields
    assert isinstance(mac, bytes) and len(mac) == 8
    assert got.fields["52"] == PIN_BLOCK
    assert verify_message_mac(raw, MAC_KEY)


def test_purchase_without_secondary_bitmap() -> None:
    fields = purchase_fields()
    raw = encode_message("0200", fields)
    assert not raw[4] & 0x80
    assert raw[12 : 12 + 2] == b"%02d" % len(PAN)  # LLVAR PAN right after the primary bitmap
    assert decode_message(raw) == Decoded("0200", fields)


@pytest.mark.parametrize("mti", ["0110", "0210"])
def test_approval_responses(mti: str) -> None:
    fields: dict[str, str | bytes] = {
        "2": PAN,
        "3": "310000" if mti == "0210" else "030000",
        "4": "000000012345",
        "7": "0315143001",
        "11": "000123",
        "15": "0315",
        "32": "01020000",
        "37": "240315000123",
        "38": "A1B2C3",
        "39": ResponseCode.APPROVED.value,
        "41": "TERM0001",
        "42": "102310058120001",
        "49": "156",
        "54": "1002156C000000100000",  # ledger balance 1000.00 CNY (credit)
    }
    raw = encode_message(mti, fields)
    assert decode_message(raw) == Decoded(mti, fields)


def test_reversal_0400_with_original_data() -> None:
    original = "0200" + "000123" + "0315143000" + "00001020000" + "00003010000"
    assert len(original) == 42
    fields = {**purchase_fields(), "11": "000124", "90": original}
    del fields["52"]
    assert decode_message(encode_message("0400", fields)) == Decoded("0400", fields)
    bad = original[:14] + "99" + original[16:]  # hour 99 in original transmission time
    got = decode_message(encode_message("0400", {**fields, "90": bad}, check=False))
    assert isinstance(got, Malformed) and got.field == "90"


def test_balance_inquiry_may_carry_zero_amount() -> None:
    fields = {**purchase_fields(), "3": "310000", "4": "000000000000"}
    assert isinstance(decode_message(encode_message("0200", fields)), Decoded)
    got = decode_message(encoded_purchase(**{"4": "000000000000"}))
    assert isinstance(got, Malformed) and got.field == "4" and "> 0" in got.reason


# --- content checks --------------------------------------------------------------------------


def test_wrong_luhn_pan_is_malformed_and_masked() -> None:
    raw = encoded_purchase(**{"2": BAD_PAN, "35": BAD_PAN + "=2812101"})
    got = decode_message(raw)
    assert isinstance(got, Malformed)
    assert got.field == "2"
    assert got.mti == "0200" and got.stan == "000123"
    assert "Luhn" in got.reason
    assert mask_pan(BAD_PAN) in got.reason
    assert BAD_PAN not in repr(got)
    with pytest.raises(ValueError, match="field 2") as exc_info:
        encode_message("0200", {**purchase_fields(), "2": BAD_PAN})
    assert BAD_PAN not in str(exc_info.value)


def test_non_digit_in_pan_never_leaks() -> None:
    pan = PAN[:10] + "X" + PAN[11:]
    got = decode_message(encoded_purchase(**{"2": pan}))
    assert isinstance(got, Malformed) and got.field == "2"
    assert pan not in repr(got)


def test_non_digit_amount() -> None:
    got = decode_message(encoded_purchase(**{"4": "00000001234A"}))
    assert isinstance(got, Malformed)
    assert got.field == "4" and "digits" in got.reason
    with pytest.raises(ValueError, match="field 4"):
        encode_message("0200", {**purchase_fields(), "4": "00000001234A"})


def test_currency_840_rejected() -> None:
    got = decode_message(encoded_purchase(**{"49": "840"}))
    assert isinstance(got, Malformed)
    assert got.field == "49" and "156" in got.reason


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("13", "1332"),
        ("13", "0230"),
        ("15", "0001"),
        ("12", "240000"),
        ("7", "0315146000"),
        ("14", "2813"),
    ],
)
def test_bad_dates_and_times(key: str, value: str) -> None:
    got = decode_message(encoded_purchase(**{key: value}))
    assert isinstance(got, Malformed)
    assert got.field == key
    assert got.stan == "000123"


def test_leap_day_accepted() -> None:
    assert isinstance(decode_message(encoded_purchase(**{"13": "0229"})), Decoded)


def test_character_classes() -> None:
    for key, value in [("37", "24031500012-"), ("41", "TERM\t001"), ("39", "0 ")]:
        got = decode_message(encoded_purchase(**{key: value}))
        assert isinstance(got, Malformed) and got.field == key, (key, got)


def test_undefined_field_in_bitmap() -> None:
    raw = bytearray(encoded_purchase())
    raw[4 + 0] |= 0x01  # bit 8: field 8 is not in the CUPS spec
    got = decode_message(bytes(raw))
    assert isinstance(got, Malformed) and got.field == "8"


def test_non_digit_length_prefix() -> None:
    raw = encoded_purchase()
    assert raw[12:14] == b"19"
    got = decode_message(raw[:12] + b"+9" + raw[14:])
    assert isinstance(got, Malformed)


def test_format_error_response_for_bad_request() -> None:
    got = decode_message(encoded_purchase(**{"13": "1332"}))
    assert isinstance(got, Malformed)
    resp = format_error_response(got)
    assert resp is not None
    decoded = decode_message(resp)
    assert decoded == Decoded("0210", {"11": "000123", "39": "30"})


def test_truncated_request_still_answered_when_stan_read() -> None:
    raw = encoded_purchase()
    got = decode_message(raw[:-3])
    assert isinstance(got, Malformed)
    assert got.mti == "0200" and got.stan == "000123"
    assert format_error_response(got) is not None


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe\x00garbage", b"hello world", b"02"])
def test_garbage_is_dropped(garbage: bytes) -> None:
    got = decode_message(garbage)
    assert isinstance(got, Malformed)
    assert got.mti is None and got.stan is None
    assert format_error_response(got) is None


def test_malformed_response_is_not_answered() -> None:
    raw = encode_message("0210", {"11": "000123", "39": "00", "49": "840"}, check=False)
    got = decode_message(raw)
    assert isinstance(got, Malformed) and got.mti == "0210" and got.stan == "000123"
    assert format_error_response(got) is None


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="field 11"):
        encode_message("0200", {**purchase_fields(), "11": "12345"})
    with pytest.raises(ValueError, match="field 52"):
        encode_message("0200", {**purchase_fields(), "52": "1A2B3C4D5E6F7081"})
    with pytest.raises(ValueError, match="field 8"):
        encode_message("0200", {**purchase_fields(), "8": "1"})
    with pytest.raises(ValueError, match="mti"):
        encode_message("9999", {"11": "000001"})


# --- MAC -------------------------------------------------------------------------------------


def test_mac_known_vectors() -> None:
    # SM4 reference vector (GB/T 32907-2016): one block, so CBC-MAC = E(K, P).
    sm4_key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert compute_mac(sm4_key, sm4_key, "sm4") == bytes.fromhex("681edf34d206965e")
    # TDEA reference vector (NIST SP 800-67): first block of "The qufck brown fox jump".
    k3 = bytes.fromhex("0123456789ABCDEF23456789ABCDEF01456789ABCDEF0123")
    assert compute_mac(b"The qufc", k3, "3des") == bytes.fromhex("A826FD8CE53B855F")


def test_mac_is_cbc_mac_with_zero_padding() -> None:
    data = b"0200 some message bytes, 37 long...."
    ecb = Cipher(TripleDES(MAC_KEY + MAC_KEY[:8]), modes.ECB()).encryptor()
    padded = data + bytes(-len(data) % 8)
    state = bytes(8)
    for i in range(0, len(padded), 8):
        block = bytes(a ^ b for a, b in zip(state, padded[i : i + 8], strict=True))
        state = ecb.update(block)
    assert compute_mac(data, MAC_KEY, "3des") == state


@pytest.mark.parametrize("algorithm", ["3des", "sm4"])
def test_mac_compute_verify_and_bit_flip(algorithm: MacAlgorithm) -> None:
    alg = algorithm
    raw = encode_message("0200", purchase_fields(), mac_key=MAC_KEY, mac_algorithm=alg)
    assert verify_message_mac(raw, MAC_KEY, alg)
    assert verify_mac(raw[:-8], raw[-8:], MAC_KEY, alg)
    assert not verify_message_mac(raw, bytes(16), alg)
    for pos in (0, 20, len(raw) - 20, len(raw) - 9, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x01
        assert not verify_message_mac(bytes(flipped), MAC_KEY, alg), pos
    assert not verify_message_mac(encode_message("0200", purchase_fields()), MAC_KEY, alg)


def test_mac_bad_key() -> None:
    with pytest.raises(ValueError):
        compute_mac(b"x", b"short", "3des")
    with pytest.raises(ValueError):
        compute_mac(b"x", bytes(24), "sm4")


# --- framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["binary2", "ascii4"])
def test_framing_round_trip(fmt: FrameFormat) -> None:
    f = fmt
    payloads = [encoded_purchase(), b"", b"x" * 300]
    stream = b"".join(frame(p, f) for p in payloads)
    assert FrameDecoder(f).feed(stream) == payloads
    if f == "ascii4":
        assert frame(b"abc", f) == b"0003abc"
    else:
        assert frame(b"abc", f) == b"\x00\x03abc"


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=600), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=20),
    fmt=st.sampled_from(get_args(FrameFormat)),
)
def test_framing_split_and_merged_chunks(
    payloads: list[bytes], cuts: list[int], fmt: FrameFormat
) -> None:
    f = fmt
    stream = b"".join(frame(p, f) for p in payloads)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    dec = FrameDecoder(f)
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out += dec.feed(stream[a:b])
    assert out == payloads
    assert dec.buffered == 0


def test_framing_byte_by_byte() -> None:
    payloads = [b"abc", encoded_purchase()]
    stream = b"".join(frame(p, "ascii4") for p in payloads)
    dec = FrameDecoder("ascii4")
    out: list[bytes] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
        if i < len(stream) - 1:
            assert len(out) < 2
    assert out == payloads


def test_framing_bad_ascii_length() -> None:
    dec = FrameDecoder("ascii4")
    with pytest.raises(FramingError, match="ASCII digits") as exc_info:
        dec.feed(frame(b"ok", "ascii4") + b"00x5hello")
    assert exc_info.value.frames == [b"ok"]
    with pytest.raises(FramingError):
        dec.feed(b"0002hi")  # the stream stays failed
    with pytest.raises(FramingError):
        parse_length(b"-001", "ascii4")


def test_framing_over_max_frame() -> None:
    with pytest.raises(FramingError, match="max_frame"):
        FrameDecoder("binary2", max_frame=100).feed(b"\x01\x00")
    with pytest.raises(FramingError):
        frame(b"x" * 10000, "ascii4")
    with pytest.raises(FramingError):
        FrameDecoder("bcd2")  # type: ignore[arg-type]


# --- fuzzing ---------------------------------------------------------------------------------

VALID_MESSAGES = [
    encoded_purchase(),
    encode_message("0200", purchase_fields(), mac_key=MAC_KEY),
    encode_message("0210", {"2": PAN, "11": "000123", "39": "51", "49": "156"}),
    encode_message("0800", {"7": "0315080000", "11": "000001", "33": "03010000"}),
]


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(VALID_MESSAGES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "set" and raw:
            raw[pos] = draw(st.sampled_from(b"0123456789 A=\x00\xff"))
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del raw[pos : pos + draw(st.integers(min_value=1, max_value=3))]
        else:
            del raw[pos:]
    return bytes(raw)


def _check_never_raises(raw: bytes) -> None:
    got = decode_message(raw)
    assert isinstance(got, Decoded | Malformed)
    if isinstance(got, Malformed):
        assert not got.reason.startswith("internal"), got.reason  # no hidden crash
        assert PAN not in got.reason
        format_error_response(got)  # must not raise either
        return
    again = decode_message(encode_message(got.mti, got.fields))
    assert again == got


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=400))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _check_never_raises(raw)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutated_message())
def test_fuzz_mutated_messages(raw: bytes) -> None:
    _check_never_raises(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400))
def test_fuzz_after_valid_header(raw: bytes) -> None:
    _check_never_raises(b"0200" + raw)


# --- the fast path against pyiso8583 (the reference) -----------------------------------------
#
# decode_message and encode_message parse and build through plans compiled from SPEC, and
# fall back to pyiso8583 for anything the plan does not accept. These hold the two equal.

def _reference_fields(raw: bytes) -> dict[str, str | bytes] | None:
    """pyiso8583's reading of ``raw`` (None: it refuses it, or a length prefix is not all
    digits, which we refuse on top). A bitmap announcing a field the spec lacks is refused
    before either parser runs (pyiso8583 raises KeyError on it)."""
    if _first_unknown_field(raw) is not None:
        return None
    try:
        doc, enc = iso8583.decode(raw, SPEC)
    except iso8583.DecodeError:
        return None
    if any(not e["len"].isdigit() for k, e in enc.items() if k in DATA_FIELDS and
           SPEC[k]["len_type"]):
        return None
    return {k: bytes.fromhex(v) if k in BINARY_FIELDS else v
            for k, v in doc.items() if k in DATA_FIELDS}


def _same_as_reference(raw: bytes) -> None:
    assert _fast_fields(raw) == _reference_fields(raw)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutated_message())
def test_fast_decode_equals_pyiso8583_on_mutated_messages(raw: bytes) -> None:
    if raw[:4].isdigit():  # the MTI is checked before either parser runs
        _same_as_reference(raw)


@settings(max_examples=500, deadline=None)
@given(raw=st.binary(max_size=200))
def test_fast_decode_equals_pyiso8583_on_random_bytes(raw: bytes) -> None:
    _same_as_reference(b"0200" + raw)


def test_fast_decode_reads_every_valid_message() -> None:
    for raw in VALID_MESSAGES:
        assert _fast_fields(raw) is not None
        assert _fast_fields(raw) == _reference_fields(raw)


_TEXT = st.text(alphabet=st.sampled_from("0123456789AZaz =\u00e9"), max_size=45)


@st.composite
def field_sets(draw: st.DrawFn) -> dict[str, str | bytes]:
    keys = draw(st.sets(st.sampled_from(sorted(DATA_FIELDS, key=int)), max_size=12))
    out: dict[str, str | bytes] = {}
    for key in keys:
        size = SPEC[key]["max_len"]
        fixed = SPEC[key]["len_type"] == 0
        if key in BINARY_FIELDS:
            n = draw(st.sampled_from([size, size, size - 1, size + 1]))
            out[key] = draw(st.binary(min_size=n, max_size=n))
        elif fixed and draw(st.booleans()):
            out[key] = draw(st.text(alphabet="0123456789", min_size=size, max_size=size))
        else:
            out[key] = draw(_TEXT)
    return out


@settings(max_examples=1500, deadline=None)
@given(fields=field_sets(), mti=st.sampled_from(["0200", "0210", "0800", "02X0"]))
def test_fast_encode_equals_pyiso8583(fields: dict[str, str | bytes], mti: str) -> None:
    doc = {"t": mti, **{k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}}
    try:
        raw, _ = iso8583.encode(doc, SPEC)
        expected: bytes | None = bytes(raw)
    except iso8583.EncodeError:
        expected = None
    assert _fast_encode(mti, fields) == expected
    if expected is not None:
        assert _fast_fields(expected) == fields  # and it reads back what it wrote


def test_read_fields_takes_what_decode_takes_and_no_more() -> None:
    """The load generator's reader: the fields of a message that parses; nothing for an
    unreadable MTI; bytes-like input as decode_message takes it."""
    answer = encode_message("0210", {"11": "000123", "39": "00"})
    assert read_fields(answer) == {"11": "000123", "39": "00"}
    assert read_fields(bytearray(answer)) == read_fields(memoryview(answer)) == \
        {"11": "000123", "39": "00"}
    assert read_fields(b"\xff\xff\xff\xff" + answer[4:]) is None
    assert read_fields(b"ABCD" + answer[4:]) is None
    assert read_fields(answer[:-1]) is None


def test_encode_rejects_a_non_text_mti_with_a_value_error() -> None:
    with pytest.raises(ValueError, match="mti"):
        encode_message(None, {"11": "123456"}, check=False)  # type: ignore[arg-type]


def test_a_secondary_bitmap_without_secondary_fields_parses_like_pyiso8583() -> None:
    primary = bytearray(8)
    primary[0] |= 0x80  # field 1: a secondary bitmap follows (all zero here)
    primary[1] |= 0x20  # field 11
    primary[4] |= 0x02  # field 39
    raw = b"0210" + bytes(primary) + bytes(8) + b"123456" + b"00"
    assert _reference_fields(raw) == {"11": "123456", "39": "00"}
    assert read_fields(raw) == {"11": "123456", "39": "00"}
    msg = decode_message(raw)
    assert isinstance(msg, Decoded) and msg.fields == {"11": "123456", "39": "00"}


def test_empty_llvar_and_non_ascii_fields() -> None:
    raw = encode_message("0210", {"11": "123456", "39": "00", "54": ""}, check=False)
    assert raw == bytes(iso8583.encode({"t": "0210", "11": "123456", "39": "00", "54": ""},
                                       SPEC)[0])
    assert read_fields(raw) == {"11": "123456", "39": "00", "54": ""}
    bad = raw.replace(b"123456", b"12\xe9456")
    assert _reference_fields(bad) is None and read_fields(bad) is None
    assert isinstance(decode_message(bad), Malformed)
    with pytest.raises(ValueError):
        encode_message("0210", {"11": "12é456", "39": "00"}, check=False)


def test_encoding_does_not_depend_on_the_order_of_the_keys() -> None:
    fields: dict[str, str | bytes] = {"2": "6222020000000010017", "11": "000001",
                                      "39": "00", "90": "0" * 42, "128": bytes(range(8))}
    keys = list(fields)
    seen = set()
    for _ in range(20):
        random.shuffle(keys)
        seen.add(encode_message("0210", {k: fields[k] for k in keys}, check=False))
    doc = {"t": "0210", **{k: (v.hex() if isinstance(v, bytes) else v)
                           for k, v in fields.items()}}
    assert seen == {bytes(iso8583.encode(doc, SPEC)[0])}


def test_luhn_refuses_non_ascii_digits() -> None:
    assert not luhn_ok("١٨") and not luhn_ok("1 8") and luhn_ok("18")
