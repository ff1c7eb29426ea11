"""QR images of the app's codes (wallets/qr.py): the image carries exactly the payload
(institution, code, expiry; never a card number), the same code gives the same bytes, and
an image proves nothing: a used or expired code is refused however often it is shown."""

from __future__ import annotations

from typing import Any

import pytest
import segno
from test_wallet import ALICE_CARD, ev, rec, world

from qingsuan.clock import parse_time
from qingsuan.sim.runner import Runner
from qingsuan.wallets import app, qr


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


CODES = (ev("09:00", "payment_code", id="c1", user="13800000001", card=ALICE_CARD)
         + ev("09:05", "payment_code", id="c2", user="13800000001", card=ALICE_CARD))


def _run(events: str) -> tuple[dict[str, Any], Any]:
    runner = Runner(world(events), store="memory:")
    out = runner.run()
    assert all(out["checks"].values()), out["checks"]
    return out, runner.world.wallets


def test_the_image_encodes_the_payload_and_nothing_else() -> None:
    out, w = _run(CODES)
    r = rec(out, "c1")
    payload = r["payload"]
    assert qr.read_payload(payload) == qr.CodePayload(
        "pay", "PAYCO", r["code"], parse_time("2026-11-25T09:01"))
    assert ALICE_CARD not in payload and ALICE_CARD[-10:] not in payload
    image = app.code_image(w, "c1")
    assert image.payload == payload
    # the PNG's modules are those of a symbol made from exactly this payload (and not of
    # the other code's): segno's matrix, read back from the PNG's pixels
    from_png = _png_modules(image.png)
    assert from_png == [list(row) for row in qr.symbol(payload).matrix]
    assert from_png != [list(row) for row in qr.symbol(rec(out, "c2")["payload"]).matrix]
    assert image.svg.startswith("<svg") and "qingsuan-qr" in image.svg


def test_the_same_code_gives_the_same_bytes() -> None:
    first = app.code_image(_run(CODES)[1], "c1")
    again = app.code_image(_run(CODES)[1], "c1")
    assert (first.png, first.svg) == (again.png, again.svg)
    assert first.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert qr.render(first.payload).png == first.png


def test_a_used_or_expired_code_is_refused_whatever_the_image() -> None:
    out, w = _run(CODES)
    shown = {k: app.code_image(w, k) for k in ("c1", "c2")}
    # the merchant scans the images: the payloads name the codes c1 and c2
    assert [app.scanned_code(w, shown[k].payload) for k in ("c1", "c2")] == ["c1", "c2"]
    out, w = _run(ev("09:00", "payment_code", id="c1", user="13800000001", card=ALICE_CARD)
                  + ev("09:00:20", "qr_pay", id="p1", code="c1", terminal="POS00001",
                       amount="50.00")
                  + ev("09:00:40", "qr_pay", id="p2", code="c1", terminal="POS00001",
                       amount="50.00")
                  + ev("09:05", "payment_code", id="c2", user="13800000001", card=ALICE_CARD)
                  + ev("09:06:01", "qr_pay", id="p3", code="c2", terminal="POS00001",
                       amount="50.00"))
    assert rec(out, "p1")["status"] == "done"
    assert rec(out, "p2")["reason"]["code"] == "CODE_USED"
    assert rec(out, "p3")["reason"]["code"] == "CODE_EXPIRED"
    # the images shown after use and after expiry are the very same bytes
    assert {k: app.code_image(w, k).png for k in ("c1", "c2")} == \
        {k: v.png for k, v in shown.items()}
    assert out["balances"]["customers"]["alice"] == "4950.00"  # paid once


def test_the_merchant_code_names_the_acquirer_and_terminal() -> None:
    _, w = _run("")
    image = app.merchant_image(w, "POS00001")
    assert qr.read_payload(image.payload) == qr.CodePayload("merchant", "CCB", "POS00001",
                                                            None)
    assert app.scanned_code(w, image.payload) is None  # not a payment code


@pytest.mark.parametrize(("payload", "problem"), [
    ("https://pay?inst=PAYCO&code=1", "not a qingsuan://pay"),
    ("qingsuan://pay?inst=PAYCO&exp=2026-11-25T09:01", "code is missing"),
    ("qingsuan://pay?inst=PAYCO&code=62", "exp is missing"),
    ("qingsuan://pay?inst=PAYCO&code=62&exp=soon", "payload exp"),
])
def test_a_bad_payload_is_refused_by_name(payload: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        qr.read_payload(payload)


def _png_modules(png: bytes) -> list[list[int]]:
    """The dark (1) and light (0) modules of a QR PNG written by :func:`qr.render`: each
    module's centre pixel, the quiet zone cut off (a reading of pixels, not a decoding)."""
    import struct
    import zlib

    width, height = struct.unpack(">II", png[16:24])
    depth, colour = png[24], png[25]
    assert colour == 0 and depth == 1, "segno writes a 1-bit greyscale PNG"
    data, pos = b"", 8
    while pos < len(png):
        size, = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + size]
        pos += 12 + size
    raw = _unfilter(zlib.decompress(data), (width + 7) // 8, height)
    stride = (width + 7) // 8 + 1
    scale, border = qr.SCALE_PX, qr.BORDER_MODULES
    n = width // scale - 2 * border

    def dark(x: int, y: int) -> int:
        byte = raw[y * stride + 1 + x // 8]
        return 0 if byte >> (7 - x % 8) & 1 else 1  # a set bit is white

    return [[dark((border + c) * scale + scale // 2, (border + r) * scale + scale // 2)
             for c in range(n)] for r in range(n)]


def _unfilter(raw: bytes, row_bytes: int, height: int) -> bytes:
    """PNG rows with their filters undone (PNG spec 9.2; one byte per pixel group), each
    row kept behind a 0 filter byte."""
    out, prior = bytearray(), bytearray(row_bytes)
    for y in range(height):
        start = y * (row_bytes + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + row_bytes])
        for i in range(row_bytes):
            left = line[i - 1] if i else 0
            up, corner = prior[i], prior[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                near = min((abs(p - left), 0, left), (abs(p - up), 1, up),
                           (abs(p - corner), 2, corner))[2]
                line[i] = (line[i] + near) & 0xFF
        out += b"\0" + line
        prior = line
    return bytes(out)


def test_segno_is_the_pinned_version() -> None:
    assert segno.__version__ == "1.6.6"  # the images' bytes depend on it


def test_only_the_app_s_payloads_are_drawn() -> None:
    with pytest.raises(ValueError, match="payload: must start with qingsuan://"):
        qr.render("6222020200000000014")  # a card number is never a code's payload
