"""Fuzzing at the edges: mutated ISO 8583 frames into the card edge (``card_edge.inbound``)
and mutated ISO 20022 documents into ``CnapsGateway.receive`` on a small world. Same seed,
same inputs, same verdict (docs/RELIABILITY.md).

The one thing a reader would get wrong: both edges already catch every exception at their
door (``inbound`` turns one into "internal edge error", ``decode_message`` into "internal
decode error"), so "never raises" is checked by looking for those notes, not for a raise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import iso8583
from lxml import etree

from qingsuan.banks.reconcile import (
    books_balanced,
    mirrors_match,
    money_conserved,
    suspense_explained,
)
from qingsuan.cards.iso8583 import (
    REQUEST_MTIS,
    SPEC,
    Decoded,
    decode_message,
    encode_message,
)
from qingsuan.clock import BEIJING, VirtualClock, from_datetime
from qingsuan.server.card_client import ClientWorld, original_data, request_fields
from qingsuan.server.card_core import edge_config
from qingsuan.server.card_edge import EdgeConfig, Forward, inbound

__all__ = ["EdgeRun", "Failure", "frame_inputs", "run_frames", "run_xml", "xml_inputs"]

ROOT: Final = Path(__file__).resolve().parents[3]
#: frames and documents one run checks at most
MAX_FRAMES: Final = 100_000_000
MAX_DOCUMENTS: Final = 10_000_000
#: failures one run keeps (their inputs are written to files); the rest are only counted
MAX_KEPT: Final = 100
#: a document the gateway takes longer than this over is a hang (entity expansion, ...)
XML_TIMEOUT_S: Final = 5.0
MAC_KEY: Final = bytes(range(16))
AT: Final = dt.datetime(2026, 11, 25, 10, 30, tzinfo=BEIJING)
_PAN_RUN: Final = re.compile(rb"\d{12,19}")


@dataclass(frozen=True)
class Failure:
    index: int
    problem: str
    data: bytes


@dataclass
class EdgeRun:
    """What one run saw: ``outcomes`` counts what the edge did with each input (the proof
    the mutators reach both refusals and valid inputs)."""

    what: str
    seed: int
    count: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    failed: int = 0
    seconds: float = 0.0
    slowest_s: float = 0.0

    def fail(self, index: int, problem: str, data: bytes) -> None:
        self.failed += 1
        if len(self.failures) < MAX_KEPT:
            self.failures.append(Failure(index, problem, data))

    def write_failures(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        ext = "bin" if self.what == "frames" else "xml"
        for f in self.failures:
            path = out_dir / f"{self.what}-seed{self.seed}-{f.index}.{ext}"
            path.write_bytes(f.data)
            paths.append(path)
        return paths


# ---------------------------------------------------------------------- ISO 8583 frames

#: (key, length prefix, data) of each part of a frame: "t", "p" (bitmaps), then fields
_Segments = list[tuple[str, bytes, bytes]]


def _base_frames() -> list[tuple[bool, _Segments]]:
    """Valid requests of the card sandbox (as ``qingsuan cards load`` sends them), as
    segments; ``True`` for the ones carrying a MAC."""
    from qingsuan.sim.scenario import load_scenario

    world = ClientWorld.from_scenario(load_scenario(ROOT / "scenarios" / "card-sandbox.yaml"))
    pos, atm = world.terminal("POS00CCB"), world.terminal("ATM00CCB")
    card = "6222020000000010017"
    orig = original_data("0200", "000050", "1125103000", pos.institution)
    preauth = original_data("0100", "000060", "1125103000", pos.institution)
    specs: list[tuple[str, dict[str, Any]]] = [
        ("purchase", {"terminal": pos, "amount_fen": 3600}),
        ("purchase", {"terminal": pos, "amount_fen": 1, "pin": "123456"}),
        ("withdrawal", {"terminal": atm, "amount_fen": 10_000, "pin": "123456"}),
        ("balance", {"terminal": atm, "pin": "123456"}),
        ("reversal", {"terminal": pos, "amount_fen": 3600, "original": orig, "card": None}),
        ("preauth", {"terminal": pos, "amount_fen": 50_000}),
        ("preauth-cancel", {"terminal": pos, "original": preauth}),
        ("completion", {"terminal": pos, "amount_fen": 40_000, "original": preauth}),
        ("void", {"terminal": pos, "amount_fen": 3600, "original": orig}),
        ("refund", {"terminal": pos, "amount_fen": 100, "original": orig}),
    ]
    bases: list[tuple[bool, _Segments]] = []
    for n, (kind, kw) in enumerate(specs):
        kw.setdefault("card", card)
        mti, fields = request_fields(kind, stan=100 + n, at=AT, **kw)
        for mac in (False, True):
            raw = encode_message(mti, fields, mac_key=MAC_KEY if mac else None)
            bases.append((mac, _segments(raw)))
    return bases


def _segments(raw: bytes) -> _Segments:
    _, enc = iso8583.decode(raw, SPEC)
    keys = ["t", "p", *sorted((k for k in enc if k not in ("t", "p")), key=int)]
    segs = [(k, enc[k]["len"], enc[k]["data"]) for k in keys]
    assert b"".join(p + d for _, p, d in segs) == raw
    return segs


def _join(segs: _Segments) -> bytes:
    return b"".join(p + d for _, p, d in segs)


def _bitmap(segs: _Segments) -> bytes:
    keys = {int(k) for k, _, _ in segs if k.isdigit() and k != "1"}
    bits = sum(1 << (128 - k) for k in keys)
    if any(k > 64 for k in keys):
        bits |= 1 << 127
        return bits.to_bytes(16, "big")
    return (bits >> 64).to_bytes(8, "big")


def _random_value(rng: random.Random, length: int) -> bytes:
    alphabet = rng.choice((b"0123456789", b"0123456789ABCDEFabcdef -+",
                           bytes(range(256))))
    return bytes(rng.choice(alphabet) for _ in range(length))


def _structural(rng: random.Random, segs: _Segments) -> _Segments:
    """One change to the message's structure: a field's value, its length prefix, a
    field dropped or added (bitmap kept right or not), two fields swapped."""
    segs = list(segs)
    fields = [i for i, (k, _, _) in enumerate(segs) if k.isdigit() and k != "1"]
    op = rng.randrange(7)
    i = rng.choice(fields)
    key, prefix, data = segs[i]
    if op == 0:  # a value: random content, same or random length
        length = len(data) if rng.random() < 0.6 else rng.randrange(0, 2 * len(data) + 2)
        value = _random_value(rng, length)
        if prefix:
            prefix = str(min(length, 10 ** len(prefix) - 1)).zfill(len(prefix)).encode()
        segs[i] = (key, prefix, value)
    elif op == 1:  # a digit of a numeric value changed (mostly still valid)
        if data and data.isdigit():
            pos = rng.randrange(len(data))
            data = data[:pos] + str(rng.randrange(10)).encode() + data[pos + 1:]
        segs[i] = (key, prefix, data)
    elif op == 2 and prefix:  # a length prefix: random digits or not digits at all
        segs[i] = (key, _random_value(rng, len(prefix)) if rng.random() < 0.3 else
                   str(rng.randrange(10 ** len(prefix))).zfill(len(prefix)).encode(), data)
    elif op == 3:  # dropped, the bitmap left saying it is there
        del segs[i]
    elif op == 4:  # dropped and the bitmap made to agree
        del segs[i]
        segs[1] = ("p", b"", _bitmap(segs))
    elif op == 5:  # two fields' places swapped
        j = rng.choice(fields)
        segs[i], segs[j] = segs[j], segs[i]
    else:  # a field added, with or without its bit
        new = rng.choice(_KEYS)
        if any(k == new for k, _, _ in segs):
            return segs
        width, max_len, _ = _LAYOUT[new]
        length = max_len if not width else rng.randrange(0, max_len + 1)
        value = _random_value(rng, length)
        seg = (new, str(length).zfill(width).encode() if width else b"", value)
        segs.append(seg)
        head, rest = segs[:2], sorted(segs[2:], key=lambda s: int(s[0]))
        segs = head + rest
        if rng.random() < 0.8:
            segs[1] = ("p", b"", _bitmap(segs))
    return segs


def _bytewise(rng: random.Random, raw: bytes) -> bytes:
    """One change to the bytes: flipped, truncated, extended, cut, inserted, a bitmap bit."""
    b = bytearray(raw)
    op = rng.randrange(7)
    pos = rng.randrange(len(b)) if b else 0
    if op == 0 and b:
        b[pos] = rng.randrange(256)
    elif op == 1 and b:
        b[pos] ^= 1 << rng.randrange(8)
    elif op == 2:
        del b[rng.randrange(len(b) + 1):]
    elif op == 3:
        b += _random_value(rng, rng.randrange(1, 40))
    elif op == 4:
        del b[pos:pos + rng.randrange(1, 9)]
    elif op == 5:
        b[pos:pos] = _random_value(rng, rng.randrange(1, 9))
    elif len(b) >= 12:  # a bit of the primary (or secondary) bitmap
        end = 20 if b[4] & 0x80 and len(b) >= 20 else 12
        bit = rng.randrange(4 * 8, end * 8)
        b[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(b)


_LAYOUT: Final = {k: (SPEC[k]["len_type"], SPEC[k]["max_len"], SPEC[k]["data_enc"] == "b")
                  for k in SPEC if k.isdigit() and k != "1"}
_KEYS: Final = tuple(sorted(_LAYOUT, key=int))


def frame_inputs(seed: int, count: int) -> Iterator[tuple[bool, bytes]]:
    """``count`` frames of ``seed``: (sent on a MAC link, frame). About 1 in 16 is a base
    frame unchanged, 1 in 4 has only structural changes (which re-encode lengths and
    bitmaps, so many decode), the rest get byte changes too."""
    assert 0 <= count <= MAX_FRAMES
    rng = random.Random(f"frames:{seed}")
    bases = _base_frames()
    for _ in range(count):
        mac, segs = rng.choice(bases)
        roll = rng.random()
        if roll < 1 / 16:
            yield mac, _join(segs)
            continue
        for _ in range(rng.randrange(1, 4)):
            segs = _structural(rng, segs)
        raw = _join(segs)
        if roll >= 0.3:
            for _ in range(rng.randrange(1, 4)):
                raw = _bytewise(rng, raw)
        yield mac, raw


def _readable(raw: bytes) -> tuple[str, str, bool] | None:
    """(request MTI, STAN, whole frame decodes) when pyiso8583 can read MTI and STAN,
    independently of the edge."""
    whole = True
    try:
        doc, _ = iso8583.decode(raw, SPEC)
    except iso8583.DecodeError as exc:
        doc, whole = exc.doc_dec, False
    except Exception:
        return None
    mti, stan = doc.get("t", ""), doc.get("11", "")
    if mti in REQUEST_MTIS and len(stan) == 6 and stan.isdigit():
        return mti, stan, whole
    return None


def check_frame(raw: bytes, cfg: EdgeConfig) -> tuple[str, str | None]:
    """(outcome, problem or None) of one frame through the edge."""
    result = inbound(raw, cfg)
    if isinstance(result, Forward):
        if "2" in result.fields:
            return "forwarded", "a forwarded request carries field 2"
        decoded = decode_message(raw)
        pan = decoded.fields.get("2") if isinstance(decoded, Decoded) else None
        if isinstance(pan, str) and pan.encode() in result.body:
            return "forwarded", "the logged body holds the PAN in clear"
        return "forwarded", None
    note = result.note
    if "internal" in note:
        return "internal", f"an exception inside the edge: {note}"
    for run in _PAN_RUN.findall(note.encode()):
        if run in raw:
            return "refused", f"a card number-like value of the frame in the note: {note!r}"
    if result.raw is None:
        readable = _readable(raw)
        if readable is None or "not a request" in note:
            return "dropped", None
        if not readable[2]:  # the STAN stands before what broke the frame: dropping is allowed
            return "dropped, STAN readable before the error", None
        return "dropped", (f"dropped though it decodes, with MTI {readable[0]} and STAN "
                           f"{readable[1]} ({note})")
    answer = decode_message(result.raw)
    if not isinstance(answer, Decoded):
        return "refused", f"the answer does not decode: {answer.reason}"
    request_mti = raw[:4].decode("ascii", "replace")
    if answer.mti != REQUEST_MTIS.get(request_mti):
        return "refused", f"answer MTI {answer.mti} to a {request_mti!r}"
    code = str(answer.fields.get("39", ""))
    if note.startswith("format error") and code != "30":
        return "refused", f"format error answered {code}"
    readable = _readable(raw)
    if readable is not None and answer.fields.get("11") != readable[1]:
        return "refused", f"answer STAN {answer.fields.get('11')!r} to STAN {readable[1]}"
    return f"answered {code}", None


def run_frames(seed: int, count: int, *,
               progress: Callable[[int], None] | None = None) -> EdgeRun:
    """``count`` mutated frames of ``seed`` through the edge (half the configurations
    with a MAC key, as a MAC link has)."""
    from qingsuan.sim.scenario import load_scenario

    sandbox = load_scenario(ROOT / "scenarios" / "card-sandbox.yaml")
    plain = edge_config(sandbox)
    with_mac = EdgeConfig(plain.institutions, plain.vault, mac_key=MAC_KEY)
    run = EdgeRun("frames", seed)
    t0 = time.perf_counter()
    for index, (mac, raw) in enumerate(frame_inputs(seed, count)):
        outcome, problem = check_frame(raw, with_mac if mac else plain)
        run.outcomes[outcome] += 1
        if problem is not None:
            run.fail(index, problem, raw)
        if progress is not None and (index + 1) % 100_000 == 0:
            progress(index + 1)
    run.count, run.seconds = count, time.perf_counter() - t0
    return run


# ---------------------------------------------------------------------- ISO 20022 documents

#: values a mutated element may get
AMOUNTS: Final = ("1.005", "-5.00", "0.00", "0", "99999999999999999999.99", "1e5", "NaN",
                  "abc", "", " 12.00 ", "12,00", "１２.00", "0.01", "100000000.00")
DATES: Final = ("2026-02-30", "2026-13-01", "1990-01-01", "2099-12-31", "2026-11-26",
                "2026-11-25", "yesterday", "2026-11-26T10:00:00", "")
DATETIMES: Final = ("2026-11-26T10:00:00", "2026-11-26T25:00:00+08:00", "not a time",
                    "0001-01-01T00:00:00Z", "2026-11-26")
CODES: Final = ("102100099996", "105100000017", "104100000004", "999999999999", "1021",
                "", "X" * 40)
WORDS: Final = ("", "x", "HVPS", "BEPS", "IBPS", "URGT", "NORM", "HIGH", "CNY", "USD", "0",
                "-1", "999999999", "名称", "\u202e", "A" * 140, "A" * 141, "A" * 10_000)
#: text tricks: each (what, bytes)
BILLION_LAUGHS: Final = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                         + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1)
                                    if i > 1 else b"&lol;") * 10) for i in range(1, 10))
                         + b"]>\n")
XXE: Final = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM '
              b'"file:///etc/passwd">]>\n')
XXE_HTTP: Final = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY % p SYSTEM '
                   b'"http://127.0.0.1:9/x.dtd"> %p;]>\n')
XINCLUDE: Final = (b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                   b'href="file:///etc/passwd" parse="text"/>')
PARTICIPANTS: Final = ("ICBC", "ICBC", "ICBC", "CCB", "BOC", "NOBODY", "")


def _base_documents() -> list[bytes]:
    """The examples/ messages and more built with the builders: BEPS, IBPS, several
    transactions, a pacs.028 about an unknown payment, a camt.056 of CCB's."""
    from qingsuan.messages import (
        PACS008,
        CancelRequest,
        CreditTransfer,
        StatusRequest,
        build_camt056,
        build_pacs008,
        build_pacs009,
        build_pacs028,
    )

    docs = [(ROOT / "examples" / name).read_bytes()
            for name in ("pacs008.xml", "pacs009.xml", "camt056.xml", "pacs028.xml")]
    day = dt.date(2026, 11, 25)
    at = dt.datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)
    icbc, ccb, boc = "102100099996", "105100000017", "104100000004"

    def ct(n: int, system: str, kind: str = "customer", amount_fen: int = 10_000,
           sender: str = icbc, receiver: str = ccb) -> CreditTransfer:
        customer = kind == "customer"
        return CreditTransfer(
            msg_id=f"FZ{n:08d}", created_at=at, end_to_end_id=f"E2E{n}", tx_id=f"TX{n}",
            system=system, kind=kind, priority="normal", amount_fen=amount_fen,  # type: ignore[arg-type]
            settlement_date=day, debtor_agent_code=sender, creditor_agent_code=receiver,
            debtor_name="Wuhan Steel Co" if customer else None,
            debtor_account="6222020200000000030" if customer else None,
            creditor_name="Shenzhen Build Co" if customer else None,
            creditor_account="6217000010000000045" if customer else None)

    docs.append(build_pacs008(ct(1, "BEPS")))
    docs.append(build_pacs008(ct(2, "IBPS", amount_fen=99)))
    second = dataclasses.replace(ct(3, "HVPS", amount_fen=5), tx_id="TX3B",
                                 end_to_end_id="E2E3B")
    docs.append(build_pacs008([ct(3, "HVPS"), second]))
    docs.append(build_pacs009(ct(4, "HVPS", "institution", 1_000_000, boc, icbc)))
    docs.append(build_pacs028(StatusRequest(
        msg_id="FZQ0001", created_at=at, requesting_participant=icbc, request_id="Q1",
        original_msg_id="FZ00000001", original_message_type=PACS008,
        original_end_to_end_id="E2E1", original_tx_id="TX1")))
    docs.append(build_camt056(CancelRequest(
        msg_id="FZC0001", created_at=at, requesting_participant=icbc,
        original_msg_id="FZ00000003", original_message_type=PACS008,
        original_end_to_end_id="E2E3", original_tx_id="TX3", reason_code="DUPL",
        additional_info="twice")))
    return docs


def _value_for(rng: random.Random, tag: str) -> str:
    if tag.endswith("Amt"):
        return rng.choice(AMOUNTS)
    if tag.endswith("DtTm"):
        return rng.choice(DATETIMES)
    if tag.endswith("Dt"):
        return rng.choice(DATES)
    if tag in ("MmbId", "BICFI", "Id") and rng.random() < 0.5:
        return rng.choice(CODES)
    return rng.choice(WORDS)


def _tree_mutation(rng: random.Random, root: etree._Element) -> None:
    elements = list(root.iter())[1:]
    if not elements:
        return
    el = rng.choice(elements)
    parent = el.getparent()
    tag = etree.QName(el).localname
    op = rng.randrange(7)
    if op == 0 and parent is not None:
        parent.remove(el)
    elif op == 1 and parent is not None:
        import copy
        parent.insert(parent.index(el), copy.deepcopy(el))
    elif op == 2:
        other = etree.QName(rng.choice(elements)).localname
        namespace = etree.QName(el).namespace
        name = rng.choice((other, tag + "X", "Foo"))
        el.tag = f"{{{namespace}}}{name}" if namespace else name
    elif op in (3, 4) and len(el) == 0:
        el.text = _value_for(rng, tag)
    elif op == 5 and el.attrib:
        name = rng.choice(list(el.attrib))
        if rng.random() < 0.3:
            del el.attrib[name]
        else:
            el.attrib[name] = rng.choice(("USD", "", "cny", "CNY", "X" * 50))
    else:  # an amount anywhere gets a bad value
        amounts = [e for e in elements if etree.QName(e).localname.endswith("Amt")]
        if amounts:
            rng.choice(amounts).text = rng.choice(AMOUNTS)


def _text_mutation(rng: random.Random, xml: bytes) -> bytes:
    op = rng.randrange(12)
    body = xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml
    if op == 0:
        return xml[:rng.randrange(len(xml) + 1)]
    if op == 1:
        pos = rng.randrange(len(xml) + 1)
        return xml[:pos] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6))) \
            + xml[pos:]
    if op == 2:
        return rng.choice((b'<?xml version="1.0" encoding="UTF-16"?>',
                           b'<?xml version="1.0" encoding="latin-1"?>',
                           b'<?xml version="1.0" encoding="bogus"?>', b"\xef\xbb\xbf",
                           b"\xff\xfe", b'<?xml version="9.9"?>')) + body
    if op == 3:
        return BILLION_LAUGHS + body.replace(b"</MsgId>", b"&lol9;</MsgId>", 1)
    if op == 4:
        return rng.choice((XXE, XXE_HTTP)) + body.replace(b"</MsgId>", b"&xxe;</MsgId>", 1)
    if op == 5:
        return xml.replace(b"</MsgId>", XINCLUDE + b"</MsgId>", 1)
    if op == 6:
        return xml.replace(b"</MsgId>", b"\xc3\x28\xa0\xa1</MsgId>", 1)  # not UTF-8
    if op == 7:
        depth = rng.choice((100, 3000))
        return xml.replace(b"</MsgId>", b"<a>" * depth + b"</a>" * depth + b"</MsgId>", 1)
    if op == 8:
        return xml.replace(b"</MsgId>", b"<![CDATA[<x>]]><!-- c --><?pi x?></MsgId>", 1)
    if op == 9:
        return xml.replace(b"urn:iso:std:iso:20022:tech:xsd:", rng.choice((
            b"urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10#", b"urn:x:",
            b"urn:iso:std:iso:20022:tech:xsd:camt.029.001.09")), 1)
    if op == 10:
        return xml + xml  # two documents
    return xml.replace(b"</MsgId>", b"x" * rng.choice((1 << 20, 70_000)) + b"</MsgId>", 1)


def xml_inputs(seed: int, count: int) -> Iterator[tuple[str, bytes]]:
    """``count`` documents of ``seed``: (sending participant, document). About 1 in 8 is a
    base document unchanged, half the rest get element changes only (so many are valid),
    the others element and byte changes."""
    assert 0 <= count <= MAX_DOCUMENTS
    rng = random.Random(f"xml:{seed}")
    bases = _base_documents()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for _ in range(count):
        xml = rng.choice(bases)
        participant = rng.choice(PARTICIPANTS)
        roll = rng.random()
        if roll >= 1 / 8:
            root = etree.fromstring(xml, parser)
            for _ in range(rng.randrange(1, 4)):
                _tree_mutation(rng, root)
            xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
            if roll >= 0.55:
                xml = _text_mutation(rng, xml)
        yield participant, xml


class _Hang(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Hang


@dataclass
class _Gateway:
    """A small world (scenarios/hvps-queue.yaml, in memory) and its gateway, reused."""

    world: Any
    gateway: Any

    @classmethod
    def open(cls) -> _Gateway:
        from qingsuan.cnaps.gateway import CnapsGateway
        from qingsuan.sim.scenario import load_scenario
        from qingsuan.world import World

        scenario = load_scenario(ROOT / "scenarios" / "hvps-queue.yaml")
        clock = VirtualClock(scenario.start_us)
        world = World.open("memory:", clock)
        world.build(scenario)
        clock.advance_to(from_datetime(dt.datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)))
        world.engine.tick()
        return cls(world, CnapsGateway(world.cnaps, world.banks))

    def broken_checks(self) -> list[str]:
        b = self.world.banks
        return [check.__name__ for check in (books_balanced, money_conserved, mirrors_match,
                                             suspense_explained) if not check(b)]


def check_answer(answer: object) -> str | None:
    """None when ``answer`` is the bytes of a parseable pacs.002 or camt.029."""
    from qingsuan.messages import CAMT029, PACS002, MessageError, parse_camt029, parse_pacs002
    from qingsuan.messages.xmlio import message_type_of, read_document

    if not isinstance(answer, bytes):
        return f"the answer is a {type(answer).__name__}, not bytes"
    try:
        kind = message_type_of(read_document(answer))
        if kind == PACS002:
            parse_pacs002(answer)
        elif kind == CAMT029:
            parse_camt029(answer)
        else:
            return f"the answer is a {kind}"
    except MessageError as exc:
        return f"the answer does not parse: {exc.rejection.message}"
    except Exception as exc:
        return f"the answer does not parse: {type(exc).__name__}: {exc}"
    return None


def run_xml(seed: int, count: int, *,
            progress: Callable[[int], None] | None = None) -> EdgeRun:
    """``count`` mutated documents of ``seed`` through one world's gateway; the world's
    checks after each."""
    gw = _Gateway.open()
    run = EdgeRun("xml", seed)
    alarm = threading.current_thread() is threading.main_thread() and hasattr(signal,
                                                                             "SIGALRM")
    previous = signal.signal(signal.SIGALRM, _on_alarm) if alarm else None
    broken: set[str] = set()
    t0 = time.perf_counter()
    try:
        for index, (participant, xml) in enumerate(xml_inputs(seed, count)):
            started = time.perf_counter()
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, XML_TIMEOUT_S)
            try:
                answer = gw.gateway.receive(xml, participant)
            except _Hang:
                run.outcomes["hang"] += 1
                run.fail(index, f"no answer within {XML_TIMEOUT_S} s (as {participant})", xml)
                continue
            except Exception as exc:
                run.outcomes["exception"] += 1
                run.fail(index, f"{type(exc).__name__}: {exc} (as {participant})", xml)
                continue
            finally:
                if alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            run.slowest_s = max(run.slowest_s, time.perf_counter() - started)
            problem = check_answer(answer)
            if problem is None and b"root:" in answer:
                problem = "the answer holds /etc/passwd (an external entity was read)"
            run.outcomes[_outcome(answer) if problem is None else "bad answer"] += 1
            # a check that broke stays broken: report the document that broke it, and go on
            # checking the others
            newly = [name for name in gw.broken_checks() if name not in broken]
            if newly:
                broken.update(newly)
                problem = (problem + "; " if problem else "") + \
                    f"the world's checks fail after it: {', '.join(newly)}"
            if problem is not None:
                run.fail(index, f"{problem} (as {participant})", xml)
            if progress is not None and (index + 1) % 10_000 == 0:
                progress(index + 1)
        run.count = count
    finally:
        if alarm:
            signal.signal(signal.SIGALRM, previous)
        gw.world.close()
    run.seconds = time.perf_counter() - t0
    return run


_STATUS: Final = re.compile(rb"<(?:\w+:)?(?:TxSts|GrpSts|Conf|CxlSts)>(\w+)<")
_REASON: Final = re.compile(rb"<(?:\w+:)?Rsn>\s*<(?:\w+:)?(?:Cd|Prtry)>(\w+)<")


def _outcome(answer: bytes) -> str:
    """"ACSC", "RJCT FF01", ...: the first status of the answer and its reason."""
    status = _STATUS.search(answer)
    reason = _REASON.search(answer)
    return " ".join(m.group(1).decode() for m in (status, reason) if m) or "answered"
