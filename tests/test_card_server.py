"""The card port: the ISO 8583 edge, the core behind it, and `qingsuan serve` over real
TCP (answers, durability, clean shutdown, malformed input, the load generator)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import iso8583
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.cards.framing import FrameDecoder, frame
from qingsuan.cards.iso8583 import SPEC, Decoded, decode_message, encode_message
from qingsuan.cards.pin import SANDBOX_PVK, pin_verification_value
from qingsuan.clock import BEIJING, VirtualClock, from_datetime
from qingsuan.engine import replay
from qingsuan.server.card_client import (
    ClientWorld,
    LoadPlan,
    original_data,
    request_fields,
    run_load,
    send_one,
)
from qingsuan.server.card_core import CardCore, edge_config
from qingsuan.server.card_edge import (
    EdgeConfig,
    Forward,
    Reply,
    inbound,
    outbound,
    request_body,
)
from qingsuan.sim.scenario import load_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = load_scenario(ROOT / "scenarios" / "card-sandbox.yaml")
WORLD = ClientWorld.from_scenario(SANDBOX)
CFG = edge_config(SANDBOX)
ICBC_CARD = "6222020000000010017"     # ICBC debit card of icbc1, PIN 123456
ICBC_CREDIT = "6222020000000010041"
CCB_POS = WORLD.terminal("POS00CCB")
CCB_ATM = WORLD.terminal("ATM00CCB")
ICBC_POS = WORLD.terminal("POS0ICBC")
AT = dt.datetime(2026, 11, 25, 10, 30, tzinfo=BEIJING)


def _raw(kind: str, stan: int, *, card: str | None = ICBC_CARD, terminal: Any = CCB_POS,
         amount_fen: int | None = 3600, pin: str | None = None, original: str | None = None,
         mac_key: bytes | None = None) -> bytes:
    mti, fields = request_fields(kind, card=card, terminal=terminal, stan=stan, at=AT,
                                 amount_fen=amount_fen, pin=pin, original=original)
    return encode_message(mti, fields, mac_key=mac_key)


def _decoded(raw: bytes | None) -> Decoded:
    assert raw is not None
    msg = decode_message(raw)
    assert isinstance(msg, Decoded), msg
    return msg


# ---------------------------------------------------------------------- the edge


def test_edge_forwards_a_purchase_in_the_switch_vocabulary() -> None:
    fwd = inbound(_raw("purchase", 7), CFG)
    assert isinstance(fwd, Forward)
    assert fwd.fields["32"] == "CCB" and fwd.fields["t"] == "0200"
    # the switch gets the card's token and masked PAN, never the PAN (cards/vault.py)
    assert "2" not in fwd.fields and ICBC_CARD.encode() not in fwd.body
    assert fwd.fields["card"] == CFG.vault.token(ICBC_CARD)
    assert fwd.fields["pan_masked"] == ICBC_CARD[:6] + "*" * 9 + ICBC_CARD[-4:]
    assert fwd.fields["4"] == "000000003600"
    assert "pin_hash" not in fwd.fields
    answer = _decoded(outbound(fwd, ("00", "CCB|000007|1125103000", "2026-11-25",
                                     None), CFG))
    assert answer.mti == "0210"
    assert answer.fields["2"] == ICBC_CARD  # the terminal gets its PAN back
    assert answer.fields["39"] == "00" and answer.fields["11"] == "000007"
    assert answer.fields["15"] == "1125" and len(str(answer.fields["38"])) == 6


def test_edge_turns_the_pin_block_into_the_verification_value_only() -> None:
    fwd = inbound(_raw("withdrawal", 8, terminal=CCB_ATM, amount_fen=10000, pin="123456"), CFG)
    assert isinstance(fwd, Forward)
    assert fwd.fields["pin_hash"] == CFG.vault.pvv(ICBC_CARD, "123456")
    assert fwd.fields["pin_hash"] != pin_verification_value(ICBC_CARD, "123456",
                                                            SANDBOX_PVK).hex()
    assert "123456" not in json.dumps(fwd.fields) and "52" not in fwd.fields
    other_key = EdgeConfig(CFG.institutions, CFG.vault, zpk=bytes(range(16)))
    wrong = inbound(_raw("withdrawal", 8, terminal=CCB_ATM, amount_fen=10000, pin="123456"),
                    other_key)
    assert isinstance(wrong, Forward) and wrong.fields["pin_hash"] == "undecipherable"


@pytest.mark.parametrize(("raw", "mti", "code"), [
    # a PAN failing Luhn: readable MTI and STAN -> 0210 with 30
    (encode_message("0200", {"2": "6222020000000010018", "3": "000000", "4": "000000000100",
                             "11": "000009"}, check=False), "0210", "30"),
    # a balance inquiry without its PIN block: 30
    (_raw("balance", 10, terminal=CCB_ATM, amount_fen=None), "0210", "30"),
    # an institution the switch does not know: 03
    (encode_message("0200", {**request_fields("purchase", card=ICBC_CARD, terminal=CCB_POS,
                                              stan=11, at=AT, amount_fen=100)[1],
                             "32": "99999999999"}), "0210", "03"),
    # sign-on: 0810 00; a 0100 with a processing code that is neither 03 nor 20: 0110 12
    (encode_message("0800", {"7": "1125103000", "11": "000012"}), "0810", "00"),
    (encode_message("0100", {"2": ICBC_CARD, "3": "000000", "4": "000000000100",
                             "11": "000013"}), "0110", "12"),
    # a reversal naming another acquirer's original: 12
    (_raw("reversal", 14, card=None, original=original_data("0200", "000001", "1125103000",
                                                            ICBC_POS.institution)),
     "0410", "12"),
])
def test_edge_answers_what_it_can_decide_itself(raw: bytes, mti: str, code: str) -> None:
    reply = inbound(raw, CFG)
    assert isinstance(reply, Reply), reply
    answer = _decoded(reply.raw)
    assert answer.mti == mti and answer.fields["39"] == code
    request, _ = iso8583.decode(raw, SPEC)
    assert answer.fields["11"] == request["11"]
    assert ICBC_CARD not in reply.note  # reasons never hold a PAN


def test_edge_drops_what_it_cannot_answer() -> None:
    for raw in (b"", b"02", b"xxxx" + bytes(8), encode_message(
            "0210", {"11": "000001", "39": "00"})):
        reply = inbound(raw, CFG)
        assert isinstance(reply, Reply) and reply.raw is None


def test_edge_mac_required_and_given() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    cfg = EdgeConfig(CFG.institutions, CFG.vault, mac_key=key)
    unsigned = inbound(_raw("purchase", 20), cfg)
    assert isinstance(unsigned, Reply) and _decoded(unsigned.raw).fields["39"] == "A0"
    wrong = inbound(_raw("purchase", 21, mac_key=bytes(16)), cfg)
    assert isinstance(wrong, Reply) and _decoded(wrong.raw).fields["39"] == "A0"
    signed = inbound(_raw("purchase", 22, mac_key=key), cfg)
    assert isinstance(signed, Forward)
    from qingsuan.cards.iso8583 import verify_message_mac
    assert verify_message_mac(outbound(signed, ("00", "", "", None), cfg), key)
    # a format error is answered with a MAC too
    bad = inbound(encode_message("0200", {"2": "6222020000000010018", "3": "000000",
                                          "4": "000000000100", "11": "000023"},
                                 check=False), cfg)
    assert isinstance(bad, Reply) and _decoded(bad.raw).fields["39"] == "30"
    assert bad.raw is not None and verify_message_mac(bad.raw, key)


# ---------------------------------------------------------------------- edge + core


@pytest.fixture
def core(tmp_path: Path) -> Iterator[CardCore]:
    clock = VirtualClock(from_datetime(dt.datetime(2026, 11, 25, 10, 0)))
    engine_core = CardCore(SANDBOX, f"sqlite:///{tmp_path}/core.db", clock, vault=CFG.vault)
    yield engine_core
    engine_core.close()


def _through(core: CardCore, *raws: bytes) -> list[Decoded]:
    """Frames through the edge and the core, as the server does them."""
    out: list[bytes | None] = []
    forwards = []
    for raw in raws:
        r = inbound(raw, CFG)
        if isinstance(r, Reply):
            out.append(r.raw)
        else:
            forwards.append((len(out), r))
            out.append(None)
    answers = core.process([f.body for _, f in forwards])
    for (i, fwd), answer in zip(forwards, answers, strict=True):
        out[i] = outbound(fwd, answer, CFG)
    return [_decoded(raw) for raw in out]


def _balance(core: CardCore, name: str) -> int:
    book, account = name.split(":", 1)
    return core.engine.ledger.balance(core.engine.registry.id(book, account)).available_fen


def test_purchase_withdrawal_inquiry_and_durable_group(core: CardCore, tmp_path: Path) -> None:
    before = _balance(core, "ICBC:customer:icbc1")
    seq = core.engine.applied_seq
    answers = _through(core, _raw("purchase", 1),
                       _raw("withdrawal", 2, terminal=CCB_ATM, amount_fen=50000, pin="123456"),
                       _raw("withdrawal", 3, terminal=CCB_ATM, amount_fen=50000, pin="111111"),
                       _raw("balance", 4, terminal=CCB_ATM, amount_fen=None, pin="123456"))
    assert [a.fields["39"] for a in answers] == ["00", "00", "55", "00"]
    assert core.engine.applied_seq == seq + 1  # the four in one group commit
    after = _balance(core, "ICBC:customer:icbc1")
    assert after == before - 3600 - 50000
    assert answers[3].fields["54"] == f"1002156C{after:012d}"
    expected = core.engine.state_hash()
    core.close()
    again = CardCore(SANDBOX, f"sqlite:///{tmp_path}/core.db",
                     VirtualClock(core.clock.now_us()), vault=CFG.vault)
    assert again.engine.state_hash() == expected
    again.close()


def test_duplicates_retries_reversals(core: CardCore) -> None:
    before = _balance(core, "ICBC:customer:icbc1")
    purchase = _raw("purchase", 31)
    first, retry = _through(core, purchase, purchase)
    assert first.fields["39"] == retry.fields["39"] == "00"
    assert first.fields["38"] == retry.fields["38"]  # the same answer to a true retry
    (dup,) = _through(core, _raw("purchase", 31, amount_fen=9900))  # same STAN, other body
    assert dup.fields["39"] == "94"
    assert _balance(core, "ICBC:customer:icbc1") == before - 3600
    original = original_data("0200", "000031", AT.strftime("%m%d%H%M%S"), CCB_POS.institution)
    rev1, rev2 = _through(core, _raw("reversal", 32, original=original),
                          _raw("reversal", 33, original=original))
    assert (rev1.mti, rev1.fields["39"], rev2.fields["39"]) == ("0410", "00", "00")
    assert _balance(core, "ICBC:customer:icbc1") == before  # undone once, exactly
    unknown = original_data("0200", "000099", "1125103000", CCB_POS.institution)
    (rev3,) = _through(core, _raw("reversal", 34, original=unknown))
    assert rev3.fields["39"] == "25"


def test_preauthorisation_hold_and_completion_through_the_edge(core: CardCore) -> None:
    """预授权 (0100/03) holds the amount, 预授权完成 (0200/00, 25 = 06, 90 -> the hold) books it;
    a second hold is cancelled (0100/20) and releases its amount."""
    account = "ICBC:customer:icbc1"
    posted = core.engine.ledger.balance(core.engine.registry.id(*account.split(":", 1)))
    before = _balance(core, account)
    hold, second = _through(core, _raw("preauth", 60, amount_fen=100_000),
                            _raw("preauth", 61, amount_fen=50_000))
    assert (hold.mti, hold.fields["39"], second.fields["39"]) == ("0110", "00", "00")
    assert _balance(core, account) == before - 150_000  # held, not booked
    f7 = AT.strftime("%m%d%H%M%S")
    done, cancel = _through(
        core,
        _raw("completion", 62, amount_fen=108_000,
             original=original_data("0100", "000060", f7, CCB_POS.institution)),
        _raw("preauth-cancel", 63, card=None, amount_fen=None,
             original=original_data("0100", "000061", f7, CCB_POS.institution)))
    assert (done.mti, done.fields["39"], done.fields["25"]) == ("0210", "00", "06")
    assert (cancel.mti, cancel.fields["39"]) == ("0110", "00")
    assert _balance(core, account) == before - 108_000  # within the 15% tolerance
    after = core.engine.ledger.balance(core.engine.registry.id(*account.split(":", 1)))
    assert after.debits_pending_fen == posted.debits_pending_fen  # no hold left
    (late,) = _through(core, _raw("completion", 64, amount_fen=100,
                                  original=original_data("0100", "000061", f7,
                                                         CCB_POS.institution)))
    assert late.fields["39"] == "12"  # the cancelled hold cannot be completed


def test_an_acquirer_uses_only_its_own_terminals(core: CardCore) -> None:
    mti, fields = request_fields("purchase", card=ICBC_CARD, terminal=CCB_POS, stan=40, at=AT,
                                 amount_fen=100)
    fields["32"] = ICBC_POS.institution  # ICBC claims CCB's terminal
    before = _balance(core, "ICBC:customer:icbc1")
    (answer,) = _through(core, encode_message(mti, fields))
    assert answer.fields["39"] == "12"
    assert _balance(core, "ICBC:customer:icbc1") == before


def _mutations() -> st.SearchStrategy[bytes]:
    valid = [_raw("purchase", 50), _raw("withdrawal", 51, terminal=CCB_ATM, amount_fen=100,
                                        pin="123456"),
             _raw("reversal", 52, original=original_data("0200", "000050", "1125103000",
                                                         CCB_POS.institution))]

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        raw = bytearray(draw(st.sampled_from(valid)))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            pos = draw(st.integers(0, max(0, len(raw) - 1)))
            if op == "flip" and raw:
                raw[pos] = draw(st.integers(0, 255))
            elif op == "cut":
                del raw[pos:pos + draw(st.integers(1, 8))]
            else:
                raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        return bytes(raw)

    return st.one_of(st.binary(max_size=300), mutate())


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_mutations(), min_size=1, max_size=8))
def test_fuzz_edge_and_core_never_crash_and_answer_readable_requests(
        core: CardCore, frames: list[bytes]) -> None:
    answers: list[tuple[bytes, bytes | None]] = []
    forwards = []
    for raw in frames:
        r = inbound(raw, CFG)  # never raises
        if isinstance(r, Reply):
            answers.append((raw, r.raw))
        else:
            forwards.append((raw, r))
    for (raw, fwd), answer in zip(forwards, core.process([f.body for _, f in forwards]),
                                  strict=True):
        answers.append((raw, outbound(fwd, answer, CFG)))
    for raw, reply in answers:
        try:
            request, _ = iso8583.decode(raw, SPEC)
        except Exception:
            continue  # unreadable: dropped or answered 30, both allowed
        stan, mti = request.get("11"), request.get("t", "")
        if mti in ("0100", "0200", "0220", "0400", "0800") and stan and stan.isdigit() and \
                len(stan) == 6:
            answer = _decoded(reply)  # every readable request gets an answer
            assert answer.mti == mti[:2] + str(int(mti[2]) + 1) + mti[3]
            assert answer.fields["11"] == stan
    core.engine.ledger.check_invariants()


# ---------------------------------------------------------------------- over TCP


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, store: Path) -> None:
        self.proc, self.port, self.store = proc, port, store

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def _serve(tmp_path: Path, *extra: str, store: Path | None = None) -> Served:
    store = store or tmp_path / "sandbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, (line, proc.stderr.read() if proc.stderr else "")
    port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
    return Served(proc, port, store)


def _now_raw(kind: str, stan: int, **kw: Any) -> bytes:
    mti, fields = request_fields(kind, card=kw.pop("card", ICBC_CARD),
                                 terminal=kw.pop("terminal", CCB_POS), stan=stan,
                                 at=dt.datetime.now(BEIJING), **kw)
    return encode_message(mti, fields)


@pytest.mark.parametrize(("core_mode", "snapshot_every"), [("process", 0), ("inline", 1)])
def test_serve_answers_over_tcp_and_stops_cleanly(tmp_path: Path, core_mode: str,
                                                  snapshot_every: int) -> None:
    served = _serve(tmp_path, "--core", core_mode, "--snapshot-every", str(snapshot_every))
    try:
        answer = send_one("127.0.0.1", served.port, _now_raw("purchase", 1, amount_fen=3600))
        assert isinstance(answer, Decoded) and answer.fields["39"] == "00"
        answer = send_one("127.0.0.1", served.port, _now_raw(
            "withdrawal", 2, terminal=CCB_ATM, amount_fen=10000, pin="999999"))
        assert isinstance(answer, Decoded) and answer.fields["39"] == "55"
    finally:
        assert served.stop() == 0
    assert "stopped cleanly after 2 requests" in (served.proc.stderr.read() if
                                                   served.proc.stderr else "")
    # the log holds both: a restart replays them
    again = CardCore(SANDBOX, f"sqlite:///{served.store}")
    try:
        codes = sorted(t.rc for t in again.switch.txns.values())
        assert codes == ["00", "55"]
        snap = again.engine.log.latest_snapshot()
        assert (snap is not None) == bool(snapshot_every)
        if snap is not None:  # the restart from the snapshot equals a full replay
            full = replay(f"sqlite:///{served.store}", world_systems())
            assert full.state_hash() == again.engine.state_hash()
    finally:
        again.close()


def test_serve_survives_malformed_frames_and_bad_headers(tmp_path: Path) -> None:
    served = _serve(tmp_path, "--core", "inline", "--frame", "ascii4")
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            bad = encode_message("0200", {"2": "6222020000000010018", "3": "000000",
                                          "4": "000000000100", "11": "000077"}, check=False)
            sock.sendall(frame(b"garbage", "ascii4") + frame(bad, "ascii4"))
            decoder = FrameDecoder("ascii4")
            got: list[bytes] = []
            while not got:
                got += decoder.feed(sock.recv(4096))
            answer = _decoded(got[0])
            assert (answer.mti, answer.fields["11"], answer.fields["39"]) == (
                "0210", "000077", "30")
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"ZZZZ" + bytes(20))  # not a length: the connection is closed
            assert sock.recv(100) == b""
        answer = send_one("127.0.0.1", served.port, _now_raw("purchase", 3, amount_fen=100),
                          frame_format="ascii4")
        assert isinstance(answer, Decoded) and answer.fields["39"] == "00"
    finally:
        assert served.stop() == 0


def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    served = _serve(tmp_path)
    approved: list[str] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        decoder = FrameDecoder("binary2")
        for stan in range(1, 301):
            writer.write(frame(_now_raw("purchase", stan, amount_fen=100), "binary2"))
        await writer.drain()
        served.proc.send_signal(signal.SIGTERM)  # while requests are in flight
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            for raw in decoder.feed(chunk):
                msg = _decoded(raw)
                if msg.fields["39"] == "00":
                    approved.append(str(msg.fields["11"]))
        writer.close()

    asyncio.run(client())
    assert served.proc.wait(timeout=30) == 0
    again = CardCore(SANDBOX, f"sqlite:///{served.store}")
    try:
        logged = {t.key.split("|")[1] for t in again.switch.txns.values() if t.rc == "00"}
    finally:
        again.close()
    assert approved, "the server answered nothing before stopping"
    assert set(approved) <= logged  # every approval the client saw is in the log


def test_load_generator_and_send_command(tmp_path: Path) -> None:
    served = _serve(tmp_path)
    try:
        plan = LoadPlan(connections=2, in_flight=8, duration_s=1.0, mix={"purchase": 1,
                                                                          "withdrawal": 1})
        report = asyncio.run(run_load("127.0.0.1", served.port, WORLD, plan))
        assert report.answered == report.sent > 0
        assert report.unanswered == 0 and report.malformed == 0
        assert set(report.codes) == {"00"}
        assert report.to_json()["latency_ms"]["p99"] > 0
        out = subprocess.run(
            [sys.executable, "-m", "qingsuan", "cards", "send", "purchase", "--card",
             ICBC_CREDIT, "--amount", "12.34", "--port", str(served.port), "--stan", "999",
             "--json"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["39"].startswith("00") and doc["2"] == "622202*********0041"
        declined = subprocess.run(
            [sys.executable, "-m", "qingsuan", "cards", "send", "withdrawal", "--card",
             ICBC_CARD, "--amount", "100.00", "--pin", "000000", "--terminal", "ATM00CCB",
             "--port", str(served.port), "--stan", "998"], capture_output=True, text=True,
            timeout=60)
        assert declined.returncode == 1 and "wrong PIN" in declined.stdout
        assert ICBC_CARD not in declined.stdout  # masked
    finally:
        assert served.stop() == 0


def _wait_until_gone(marker: str, timeout_s: float = 30.0) -> None:
    """Wait until no process has ``marker`` in its command line."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker.encode() in cmdline.read_bytes():
                    alive = True
                    break
            except OSError:
                continue
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"a process with {marker} in its command line is still running")


def test_sigkill_under_load_keeps_every_acknowledged_request(tmp_path: Path) -> None:
    """kill -9 while requests stream in: every approval a client received is in the log
    the restart replays (durable before acknowledged), and the restart succeeds."""
    served = _serve(tmp_path)
    approved: list[str] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        decoder = FrameDecoder("binary2")
        stan = 0
        try:
            while True:
                for _ in range(20):
                    stan += 1
                    writer.write(frame(_now_raw("purchase", stan, amount_fen=100), "binary2"))
                await writer.drain()
                if stan == 400:
                    os.kill(served.proc.pid, signal.SIGKILL)  # the edge and its core die
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    break
                for raw in decoder.feed(chunk):
                    msg = _decoded(raw)
                    if msg.fields["39"] == "00":
                        approved.append(str(msg.fields["11"]))
        except (ConnectionError, TimeoutError):
            pass
        writer.close()

    asyncio.run(client())
    served.proc.wait(timeout=30)
    # the core process outlives its parent for a moment: it ends on the pipe's EOF
    _wait_until_gone(str(served.store))
    again = CardCore(SANDBOX, f"sqlite:///{served.store}")
    try:
        logged = {t.key.split("|")[1] for t in again.switch.txns.values() if t.rc == "00"}
        again.engine.ledger.check_invariants()
    finally:
        again.close()
    assert approved, "nothing was answered before the kill"
    assert set(approved) <= logged


def test_deep_pipelining_against_the_process_core(tmp_path: Path) -> None:
    """Thousands of requests in flight on one connection: every one answered, in the log."""
    served = _serve(tmp_path)
    stans: set[str] = set()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"".join(frame(_now_raw("purchase", n, amount_fen=1), "binary2")
                              for n in range(1, 3001)))
        await writer.drain()
        decoder = FrameDecoder("binary2")
        while len(stans) < 3000:
            chunk = await asyncio.wait_for(reader.read(1 << 16), 30)
            assert chunk, f"closed after {len(stans)} answers"
            for raw in decoder.feed(chunk):
                msg = _decoded(raw)
                assert msg.fields["39"] == "00"
                stans.add(str(msg.fields["11"]))
        writer.close()

    try:
        asyncio.run(client())
    finally:
        assert served.stop() == 0
    assert len(stans) == 3000


def test_a_half_closed_client_still_gets_its_answers(tmp_path: Path) -> None:
    served = _serve(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"".join(frame(_now_raw("purchase", n, amount_fen=100), "binary2")
                                  for n in range(1, 6)))
            sock.shutdown(socket.SHUT_WR)  # "that is all": the answers must still come
            decoder = FrameDecoder("binary2")
            got: list[bytes] = []
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break  # the server closes after the last answer
                got += decoder.feed(chunk)
        assert sorted(_decoded(raw).fields["11"] for raw in got) == [
            f"{n:06d}" for n in range(1, 6)]
    finally:
        assert served.stop() == 0


def test_sigterm_to_the_process_group_stops_cleanly(tmp_path: Path) -> None:
    """`kill -- -PGID` (timeout, systemd, containers) reaches the core process too: it
    leaves stopping to the edge, which answers what it received and exits 0."""
    store = tmp_path / "group.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
    answer = send_one("127.0.0.1", port, _now_raw("purchase", 1, amount_fen=100))
    assert isinstance(answer, Decoded) and answer.fields["39"] == "00"
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    _wait_until_gone(str(store))


def test_a_failing_core_stops_the_server_with_exit_1() -> None:
    """Fail-stop: the engine refuses a command; the server answers nothing more, stops
    listening and returns 1 (also when the failure comes while it is stopping)."""
    from qingsuan.server.card_tcp import CardServer, InlineCore

    class Broken:
        clock = VirtualClock(0)

        def process(self, batch: list[dict[str, str]]) -> list[dict[str, Any]]:
            raise RuntimeError("disk on fire for 6222020000000010017")

        def next_wakeup_us(self) -> int:
            return 10**15

        def tick_if_due(self) -> bool:
            return False

        def close(self) -> None:
            pass

    async def run() -> tuple[int, list[bytes]]:
        server = CardServer(CFG, InlineCore(Broken))
        ports: list[int] = []
        task = asyncio.create_task(server.serve("127.0.0.1", 0, lambda h, p: ports.append(p)))
        while not ports:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
        writer.write(frame(_raw("purchase", 1), "binary2"))
        await writer.drain()
        got = await asyncio.wait_for(reader.read(), 30)  # closed without an answer
        status = await asyncio.wait_for(task, 30)
        assert server.failure is not None and "6222020000000010017" not in server.failure
        return status, [got]

    status, got = asyncio.run(run())
    assert status == 1 and got == [b""]


# ---------------------------------------------------------------------- bodies and answers


def _forward(raw: bytes) -> Forward:
    fwd = inbound(raw, CFG)
    assert isinstance(fwd, Forward)
    return fwd


def test_the_logged_body_is_the_canonical_json_and_holds_no_pin() -> None:
    fwd = _forward(_raw("withdrawal", 70, terminal=CCB_ATM, amount_fen=100, pin="123456"))
    assert fwd.body == json.dumps(fwd.fields, sort_keys=True).encode()
    assert b"123456" not in fwd.body.replace(b"000070", b"")  # the PIN never, the STAN is
    assert "pin_hash" in fwd.fields and _forward(
        _raw("withdrawal", 70, terminal=CCB_ATM, amount_fen=100, pin="123456")).body == fwd.body


def test_true_retry_duplicate_and_preauth_scheduling(core: CardCore) -> None:
    purchase = _forward(_raw("purchase", 71))
    first, retry = core.process([purchase.body, purchase.body])
    assert first == retry and first[0] == "00" and first[1] and first[2]
    (dup,) = core.process([_forward(_raw("purchase", 71, amount_fen=9900)).body])
    assert dup == ("94", "", "", None)
    assert outbound(purchase, first, CFG) == outbound(purchase, retry, CFG)
    hold = _forward(_raw("preauth", 72, amount_fen=1000))
    (answer,) = core.process([hold.body])
    assert answer[0] == "00"  # the world's next moment now counts the hold's expiry
    expires = core.switch.txns[answer[1]].expires_us
    assert core._due() <= expires


def test_card_txn_with_slots_round_trips_through_a_snapshot(core: CardCore) -> None:
    core.process([_forward(_raw("purchase", 73)).body])
    state = core.switch.dump_state()
    txn = next(iter(core.switch.txns.values()))
    assert not hasattr(txn, "__dict__") and dataclasses.asdict(txn)["key"] == txn.key
    core.switch.load_state(state)
    assert core.switch.dump_state() == state
    assert request_body({"b": "1", "a": "é"}) == json.dumps({"b": "1", "a": "é"},
                                                            sort_keys=True).encode()
