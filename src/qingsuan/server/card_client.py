"""The acquirer's side of the card port: build requests, send one, or load the switch
(``qingsuan cards send`` and ``qingsuan cards load``).

Requests are built with pyiso8583 from the same spec the switch uses. The load generator
builds each (kind, card, terminal) message once and then only patches its fixed-width
fields (STAN, times, RRN) per request, so one client process can keep a switch busy; it
reads every answer with pyiso8583 and matches it by STAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import iso8583
import numpy as np

from qingsuan.cards.framing import FrameDecoder, FrameFormat, FramingError, header_length
from qingsuan.cards.framing import frame as frame_payload
from qingsuan.cards.iso8583 import (
    SPEC,
    Decoded,
    Malformed,
    decode_message,
    read_fields,
)
from qingsuan.cards.pin import SANDBOX_ZPK, encrypt_pin_block
from qingsuan.clock import BEIJING
from qingsuan.server.card_edge import institution_id
from qingsuan.sim.scenario import Scenario

#: processing code and MTI of each request kind
KINDS: Final[dict[str, tuple[str, str]]] = {
    "purchase": ("0200", "000000"),
    "withdrawal": ("0200", "010000"),
    "balance": ("0200", "310000"),
    "void": ("0200", "200000"),
    "refund": ("0220", "200000"),
    "reversal": ("0400", "000000"),
    "preauth": ("0100", "030000"),
    "preauth-cancel": ("0100", "200000"),
    "completion": ("0200", "000000"),
}
#: the forwarding institution in field 90 (none: the acquirer sends directly)
NO_FORWARDER: Final = "0" * 11


@dataclass(frozen=True)
class Terminal:
    id: str
    kind: str            # atm / pos
    institution: str     # field 32


@dataclass(frozen=True)
class ClientWorld:
    """What an acquirer's test system knows: the terminals and the test cards."""

    cards: tuple[str, ...]
    terminals: tuple[Terminal, ...]

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ClientWorld:
        code = {p.name: p.code for p in scenario.participants}
        return cls(tuple(c.pan for c in scenario.cards),
                   tuple(Terminal(t.id, t.kind, institution_id(code[t.bank]))
                         for t in scenario.terminals))

    def terminal(self, terminal_id: str) -> Terminal:
        for t in self.terminals:
            if t.id == terminal_id:
                return t
        raise ValueError(f"no terminal {terminal_id!r} in this world")


def original_data(mti: str, stan: str, transmitted: str, institution: str) -> str:
    """Field 90: original MTI, STAN, transmission time (MMDDhhmmss), acquirer id and
    forwarding id (11 digits each)."""
    return f"{mti}{stan}{transmitted}{institution.rjust(11, '0')}{NO_FORWARDER}"


def request_fields(kind: str, *, card: str | None, terminal: Terminal, stan: int,
                   at: dt.datetime, amount_fen: int | None = None, pin: str | None = None,
                   original: str | None = None, zpk: bytes = SANDBOX_ZPK,
                   lean: bool = False) -> tuple[str, dict[str, Any]]:
    """(MTI, fields) of one request. ``at`` is the local (Beijing) transmission time;
    ``original`` is field 90 for a reversal, void or refund. ``lean``: only the fields
    the switch requires (no local time and date 12/13, entry mode 22, condition 25)."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; one of {', '.join(KINDS)}")
    mti, proc = KINDS[kind]
    local = at.astimezone(BEIJING)
    f: dict[str, Any] = {
        "3": proc, "7": local.strftime("%m%d%H%M%S"), "11": f"{stan % 1_000_000:06d}",
        "12": local.strftime("%H%M%S"), "13": local.strftime("%m%d"),
        "22": "051" if pin else "021", "25": "00", "32": terminal.institution,
        "37": f"{local:%H%M%S}{stan % 1_000_000:06d}", "41": terminal.id, "49": "156",
    }
    if kind == "completion":
        f["25"] = "06"  # 预授权完成
    elif lean:
        del f["25"]
    if lean:
        for key in ("12", "13", "22"):
            del f[key]
    if card is not None:
        f["2"] = card
    if amount_fen is not None:
        f["4"] = f"{amount_fen:012d}"
    if pin is not None and card is not None:
        f["52"] = encrypt_pin_block(pin, card, zpk)
    if original is not None:
        f["90"] = original
    return mti, f


# ---------------------------------------------------------------------- one request


def send_one(host: str, port: int, raw: bytes, *, frame_format: FrameFormat = "binary2",
             timeout_s: float = 10.0) -> Decoded | Malformed:
    """Send one message and wait for one answer (raises OSError/TimeoutError)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(frame_payload(raw, frame_format))
        decoder = FrameDecoder(frame_format)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the switch closed the connection without answering")
            frames = decoder.feed(chunk)
            if frames:
                return decode_message(frames[0])


# ---------------------------------------------------------------------- load


@dataclass(frozen=True)
class LoadPlan:
    connections: int = 8
    in_flight: int = 64
    rate_per_s: int = 0          # 0: as fast as the switch answers
    duration_s: float = 10.0
    mix: Mapping[str, int] = field(default_factory=lambda: {"purchase": 7, "withdrawal": 3})
    seed: int = 1
    pin: str = "123456"
    #: after the duration, how long to wait for the last answers
    drain_s: float = 5.0

    def check(self) -> None:
        if not 1 <= self.connections <= 1024:
            raise ValueError("connections: 1 to 1024")
        if not self.connections <= self.in_flight <= 100_000:
            raise ValueError("in-flight: at least one per connection, at most 100000")
        if self.rate_per_s < 0 or self.duration_s <= 0:
            raise ValueError("rate must be >= 0 and duration > 0")
        unknown = set(self.mix) - {"purchase", "withdrawal", "balance"}
        if unknown or not self.mix or min(self.mix.values()) < 0 or not sum(self.mix.values()):
            raise ValueError("mix: positive weights of purchase, withdrawal, balance")


@dataclass
class LoadReport:
    sent: int = 0
    answered: int = 0
    unanswered: int = 0
    malformed: int = 0
    elapsed_s: float = 0.0
    codes: Counter[str] = field(default_factory=Counter)
    latencies_us: list[int] = field(default_factory=list)
    #: answers per whole second of the run
    per_second: list[int] = field(default_factory=list)

    #: answers received before the duration ended (the drain's are not throughput)
    answered_in_time: int = 0

    @property
    def throughput_per_s(self) -> float:
        return self.answered_in_time / self.elapsed_s if self.elapsed_s else 0.0

    def percentiles_ms(self) -> dict[str, float]:
        if not self.latencies_us:
            return {}
        arr = np.asarray(self.latencies_us, dtype=np.int64)
        qs = np.percentile(arr, [50, 90, 99, 99.9])
        return {"p50": qs[0] / 1e3, "p90": qs[1] / 1e3, "p99": qs[2] / 1e3,
                "p99.9": qs[3] / 1e3, "max": float(arr.max()) / 1e3}

    def to_json(self) -> dict[str, Any]:
        full = self.per_second[1:-1] or self.per_second  # whole seconds only
        return {"sent": self.sent, "answered": self.answered, "unanswered": self.unanswered,
                "malformed": self.malformed, "elapsed_s": round(self.elapsed_s, 3),
                "throughput_per_s": round(self.throughput_per_s, 1),
                "per_second_min": min(full, default=0),
                "per_second_median": float(np.median(full)) if full else 0.0,
                "per_second": list(self.per_second),
                "latency_ms": {k: round(v, 3) for k, v in self.percentiles_ms().items()},
                "response_codes": dict(sorted(self.codes.items()))}


class _Template:
    """One encoded request whose fixed-width fields are patched per send."""

    PATCHED: Final = ("7", "11", "12", "13", "37")

    def __init__(self, mti: str, fields: dict[str, Any]) -> None:
        doc: dict[str, str] = {"t": mti}
        for k, v in fields.items():
            doc[k] = v.hex() if isinstance(v, bytes) else v
        raw, enc = iso8583.encode(doc, SPEC)
        self.raw = bytes(raw)
        self.offsets: dict[str, int] = {}
        pos = 0
        for key in ("t", "p", "1", *sorted((k for k in enc if k.isdigit() and k != "1"),
                                           key=int)):
            if key not in enc:
                continue
            pos += len(enc[key]["len"])
            if key in self.PATCHED:
                self.offsets[key] = pos
            pos += len(enc[key]["data"])
        assert pos == len(self.raw), (pos, len(self.raw))

    def render(self, stan: bytes, md: bytes, hms: bytes) -> bytes:
        """The message with STAN ``stan`` (6 digits) sent at MMDD ``md``, hhmmss ``hms``."""
        out = bytearray(self.raw)
        o = self.offsets
        out[o["7"]:o["7"] + 10] = md + hms
        out[o["11"]:o["11"] + 6] = stan
        out[o["37"]:o["37"] + 12] = hms + stan
        if "12" in o:
            out[o["12"]:o["12"] + 6] = hms
        if "13" in o:
            out[o["13"]:o["13"] + 4] = md
        return bytes(out)


class _LoadConnection(asyncio.Protocol):
    def __init__(self, gen: _LoadGenerator, slots: int) -> None:
        self.gen = gen
        self.slots = slots           # requests this connection may have in flight
        self.sent_at: dict[bytes, int] = {}
        self.decoder = FrameDecoder(gen.frame_format)
        self.transport: asyncio.Transport | None = None
        self.hlen = header_length(gen.frame_format)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FramingError:
            self.gen.report.malformed += 1
            assert self.transport is not None
            self.transport.close()
            return
        now = time.perf_counter_ns() // 1000
        gen = self.gen
        report = gen.report
        for raw in frames:
            doc = read_fields(raw)
            if doc is None:
                report.malformed += 1
                continue
            stan = doc.get("11", "")
            sent = self.sent_at.pop(stan.encode() if isinstance(stan, str) else b"", None)
            if sent is None:
                report.malformed += 1  # an answer to nothing we asked
                continue
            report.answered += 1
            report.codes[str(doc.get("39", "??"))] += 1
            report.latencies_us.append(now - sent)
            gen.window += 1
        if gen.running and not gen.paced:
            self.fill()
        gen.maybe_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)

    def free(self) -> int:
        return self.slots - len(self.sent_at)

    def fill(self, limit: int | None = None) -> int:
        """Send until the connection's slots are full (or ``limit`` requests)."""
        n = self.free() if limit is None else min(limit, self.free())
        if n <= 0 or self.transport is None or self.transport.is_closing():
            return 0
        out = []
        for _ in range(n):
            stan, raw = self.gen.next_request()
            self.sent_at[stan] = time.perf_counter_ns() // 1000
            out.append(frame_payload(raw, self.gen.frame_format))
        self.transport.write(b"".join(out))
        self.gen.report.sent += n
        return n


#: the amounts the load generator uses, per request kind (balance inquiries have none)
_AMOUNTS_FEN: Final[dict[str, list[int | None]]] = {
    "purchase": [1_00, 36_00, 128_50, 499_00], "withdrawal": [100_00, 500_00],
    "balance": [None]}


class _LoadGenerator:
    def __init__(self, world: ClientWorld, plan: LoadPlan, frame_format: FrameFormat) -> None:
        plan.check()
        self.plan = plan
        self.frame_format: FrameFormat = frame_format
        self.report = LoadReport()
        self.rng = random.Random(plan.seed)
        self.running = True
        self.paced = plan.rate_per_s > 0
        self.window = 0
        # STANs start at an offset of this process, so two load runs in the same second
        # (same acquirer, same transmission time) do not send the same keys
        self.stan = (os.getpid() * 7919) % 1_000_000
        self.conns: list[_LoadConnection] = []
        self.done: asyncio.Future[None] | None = None
        atms = [t for t in world.terminals if t.kind == "atm"]
        poss = [t for t in world.terminals if t.kind == "pos"]
        if not world.cards or not atms or not poss:
            raise ValueError("the world needs cards, an ATM and a POS terminal")
        # Templates: every card at every terminal of the right kind, a few amounts each.
        self.kinds = list(plan.mix)
        self.weights = [plan.mix[k] for k in self.kinds]
        self.templates: dict[str, list[_Template]] = {}
        now = dt.datetime.now(BEIJING)
        for kind in self.kinds:
            terminals = poss if kind == "purchase" else atms
            amounts = _AMOUNTS_FEN[kind]
            self.templates[kind] = [
                _Template(*request_fields(kind, card=card, terminal=t, stan=0, at=now,
                                          amount_fen=amount, lean=True,
                                          pin=plan.pin if kind != "purchase" else None))
                for card in world.cards for t in terminals for amount in amounts]

    def next_request(self) -> tuple[bytes, bytes]:
        self.stan += 1
        kind = self.rng.choices(self.kinds, self.weights)[0]
        template = self.rng.choice(self.templates[kind])
        second = int(time.time())
        if second != self._second:  # the transmission time's text, once a second
            local = dt.datetime.fromtimestamp(second, BEIJING)
            self._second = second
            self._md, self._hms = (local.strftime("%m%d").encode(),
                                   local.strftime("%H%M%S").encode())
        stan = b"%06d" % (self.stan % 1_000_000)
        return stan, template.render(stan, self._md, self._hms)

    _second = -1
    _md = _hms = b""

    def lost(self, conn: _LoadConnection) -> None:
        self.report.unanswered += len(conn.sent_at)
        conn.sent_at.clear()
        if conn in self.conns:
            self.conns.remove(conn)
        self.maybe_done()

    def maybe_done(self) -> None:
        if not self.running and self.done is not None and not self.done.done() and \
                all(not c.sent_at for c in self.conns):
            self.done.set_result(None)


async def run_load(host: str, port: int, world: ClientWorld, plan: LoadPlan, *,
                   frame_format: FrameFormat = "binary2",
                   progress: Callable[[float, LoadReport], None] | None = None) -> LoadReport:
    """Drive the switch for ``plan.duration_s`` and report what it answered and how fast."""
    gen = _LoadGenerator(world, plan, frame_format)
    loop = asyncio.get_running_loop()
    gen.done = loop.create_future()
    base, extra = divmod(plan.in_flight, plan.connections)
    for i in range(plan.connections):
        slots = base + (1 if i < extra else 0)
        _, conn = await loop.create_connection(
            functools.partial(_LoadConnection, gen, slots), host, port)
        gen.conns.append(conn)
    start = time.perf_counter()
    report = gen.report
    if not gen.paced:
        for c in gen.conns:
            c.fill()
    sent_target = 0.0
    next_second = start + 1.0
    last_answered = 0
    while True:
        await asyncio.sleep(0.001 if gen.paced else 0.05)
        now = time.perf_counter()
        if now - start >= plan.duration_s or not gen.conns:
            break
        if gen.paced:
            sent_target = (now - start) * plan.rate_per_s
            due = int(sent_target) - report.sent
            for c in gen.conns:
                if due <= 0:
                    break
                due -= c.fill(due)
        if now >= next_second:
            report.per_second.append(report.answered - last_answered)
            last_answered = report.answered
            next_second += 1.0
            if progress is not None:
                progress(now - start, report)
    gen.running = False
    report.elapsed_s = time.perf_counter() - start
    report.per_second.append(report.answered - last_answered)
    # throughput counts what was answered within the duration, not during the drain
    report.answered_in_time = report.answered
    gen.maybe_done()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gen.done, plan.drain_s)
    for c in list(gen.conns):
        report.unanswered += len(c.sent_at)
        c.sent_at.clear()
        if c.transport is not None:
            c.transport.close()
    if progress is not None:
        progress(report.elapsed_s, report)
    return report


def parse_mix(text: str) -> dict[str, int]:
    """``purchase=7,withdrawal=3`` -> weights."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if not weight.strip().isdigit():
            raise ValueError(f"mix: {part.strip()!r} is not KIND=WEIGHT")
        out[name.strip()] = int(weight)
    return out


def describe(msg: Decoded | Malformed) -> list[tuple[str, str]]:
    """(field, value) rows of an answer for people: the PAN masked, binary as hex."""
    from qingsuan.cards.iso8583 import ResponseCode, mask_pan

    if isinstance(msg, Malformed):
        return [("error", msg.reason)]
    rows = [("MTI", msg.mti)]
    for key in sorted(msg.fields, key=int):
        value = msg.fields[key]
        text = value.hex().upper() if isinstance(value, bytes) else value
        if key == "2":
            text = mask_pan(text)
        if key == "39":
            with contextlib.suppress(ValueError):
                text = f"{text} ({ResponseCode(text).meaning})"
        rows.append((key, text))
    return rows


__all__: Sequence[str] = ["ClientWorld", "LoadPlan", "LoadReport", "describe",
                          "original_data", "parse_mix", "request_fields",
                          "run_load", "send_one"]
