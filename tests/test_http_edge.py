"""The HTTP edge (server/http/edge.py): the process of ``qingsuan serve`` that owns the
API's port, answers the transfer route itself up to the engine and relays the rest to the
application. Here the edge runs on a thread of the test's process over a real socket, the
application on a Unix socket, the engine behind its link: the answers must be those the
application gives itself, in the requests' order, also when one connection mixes both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_http_api import CCB1, ICBC1, ICBC2, NAMES, SANDBOX, START, open_api, order

from qingsuan.server.http import KeyRing, SandboxClock, SandboxCore, create_app
from qingsuan.server.http import edge as edge_module
from qingsuan.server.http.deps import known_participants
from qingsuan.server.http.edge import Edge
from qingsuan.server.http.edge_link import EdgeLink
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.serve import HttpServer, bind
from qingsuan.server.http.transfer_order import _structure, parse_order
from qingsuan.server.http.transfers import TransferIn

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RING, KEYS = KeyRing.for_world(NAMES)
TRANSFERS = "/v1/participants/{}/transfers"


@contextlib.contextmanager
def edge_server(ring: KeyRing = RING) -> Iterator[tuple[str, SandboxCore]]:
    """A sandbox on a memory store with the edge in front: its URL and its core. The edge
    holds its own copy of the keys, as the forked edge process does (a participant added
    while serving reaches it over the link)."""
    core = SandboxCore(SANDBOX, f"memory://{uuid.uuid4().hex}",
                       SandboxClock("virtual", START))
    app = create_app(core, ring, deliver=False)
    folder = tempfile.mkdtemp(prefix="qingsuan-edge-test-")
    path = str(Path(folder) / "app.sock")
    app_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    app_sock.bind(path)
    app_sock.listen(64)
    server = HttpServer(app, app_sock)
    server.start()
    core.serve_http(server)
    public = bind("127.0.0.1", 0)
    ours, theirs = socket.socketpair()
    link = EdgeLink(core, ours, app.state.metrics, sorted(known_participants(core)), ring)
    core.edge = link
    edges_ring = KeyRing(dict(ring.hashes))

    async def edge_main() -> None:
        await Edge(edges_ring, path).serve(public, theirs)

    thread = threading.Thread(target=lambda: asyncio.run(edge_main()), daemon=True)
    thread.start()
    link.start()
    host, port = public.getsockname()[:2]
    try:
        yield f"http://{host}:{port}", core
    finally:
        core.close()  # (stops the edge first: it says when it has answered everything)
        thread.join(timeout=30)
        assert not thread.is_alive()


def bearer(who: str) -> dict[str, str]:
    """The Authorization header of ``who``'s key (or of ``who`` itself: a key unknown)."""
    return {"Authorization": f"Bearer {KEYS.get(who, who)}"}


# each (who, path's participant, body as sent, content type): good orders, each refusal
# the edge makes itself, the engine's refusals, and the bank's
REQUESTS: list[tuple[str | None, str, bytes, str | None]] = [
    ("ICBC", "ICBC", json.dumps(order()).encode(), "application/json"),
    ("ICBC", "ICBC", json.dumps(order()).encode(), "application/json"),  # duplicate
    ("ICBC", "ICBC", json.dumps(order(id="T2", urgent=True)).encode(), "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T3", creditor={
        "bank": "ICBC", "account": ICBC2, "name": "Holder ICBC 2"})).encode(), None),
    ("ICBC", "ICBC", json.dumps(order(id="T4", system="IBPS")).encode(),
     "application/json; charset=utf-8"),
    ("ICBC", "ICBC", json.dumps(order(id="BIG", amount="60000.00", channel="mobile",
                                      urgent=True)).encode(), "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T5", amount="1.005")).encode(), "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T6", amount=12.5)).encode(), "application/json"),
    ("ICBC", "ICBC", json.dumps({"id": 5, "creditor": {"bank": 1}, "x": 1}).encode(),
     "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T7", debtor_account=CCB1)).encode(),
     "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T8", creditor={"bank": "NOPE", "account": CCB1,
                                                         "name": "x"})).encode(), None),
    ("ICBC", "ICBC", json.dumps(order(id="T9", urgent="yes")).encode(), None),
    ("ICBC", "ICBC", json.dumps([1]).encode(), None),
    ("ICBC", "ICBC", b"{not json", "application/json"),
    ("ICBC", "ICBC", b"", "application/json"),
    ("ICBC", "ICBC", json.dumps(order(id="T10")).encode(), "text/plain"),
    ("CCB", "ICBC", json.dumps(order(id="T11")).encode(), "application/json"),
    ("operator", "ICBC", json.dumps(order(id="T12")).encode(), "application/json"),
    (None, "ICBC", json.dumps(order(id="T13")).encode(), "application/json"),
    ("qs_icbc_0000", "ICBC", json.dumps(order(id="T15")).encode(), "application/json"),
    ("ICBC", "NOBODY", json.dumps(order(id="T14")).encode(), "application/json"),
]


def test_the_edge_answers_as_the_application_does() -> None:
    """The same requests, through the edge and to the application itself (FastAPI's
    route), on two identical sandboxes: the same statuses and bodies, and the payments
    read back the same."""
    client, twin = open_api(f"memory://{uuid.uuid4().hex}", RING)
    try:
        with edge_server() as (url, core), httpx.Client(base_url=url, timeout=30) as http:
            for who, path_of, body, kind in REQUESTS:
                headers = {**(bearer(who) if who else {}),
                           **({"content-type": kind} if kind else {})}
                got = http.post(TRANSFERS.format(path_of), content=body, headers=headers)
                want = client.post(TRANSFERS.format(path_of), content=body, headers=headers)
                assert (got.status_code, got.json()) == (want.status_code, want.json()), body
                assert got.headers.get("www-authenticate") == \
                    want.headers.get("www-authenticate")
            for tx in ("T1", "T2", "T3", "T4", "BIG"):  # (read through the relay)
                path = f"/v1/participants/ICBC/payments/API/{tx}"
                assert http.get(path, headers=bearer("ICBC")).json() == \
                    client.get(path, headers=bearer("ICBC")).json()
            assert core.engine.applied_seq == twin.engine.applied_seq
    finally:
        twin.close()


def test_one_connection_mixing_both_gets_its_answers_in_order() -> None:
    """Pipelined on one keep-alive connection: a transfer, a read the application
    answers, a refused transfer, a transfer: four answers, in that order."""
    def post(tx: str, amount: str = "1.00") -> bytes:
        body = json.dumps(order(id=tx, amount=amount)).encode()
        return (f"POST /v1/participants/ICBC/transfers HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {KEYS['ICBC']}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    read = (f"GET /v1/participants/ICBC/payments/API/P1 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {KEYS['ICBC']}\r\n\r\n").encode()
    with edge_server() as (url, _):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(post("P1") + read + post("P2", "0.001") + post("P3"))
            answers = _read_answers(conn, 4)
    assert [status for status, _ in answers] == [201, 200, 422, 201]
    assert answers[0][1]["payment_id"] == "API/P1" == answers[1][1]["payment_id"]
    assert answers[2][1]["reason"] == "amount_precision"
    assert answers[3][1]["payment_id"] == "API/P3"


def _read_answers(conn: socket.socket, n: int) -> list[tuple[int, Any]]:
    return _read_answers_from(conn.makefile("rb"), n)


def test_the_relay_carries_a_chunked_batch_and_the_metrics_count_the_edge() -> None:
    csv = ("debtor_account,creditor_bank,creditor_account,creditor_name,amount\n" +
           "".join(f"{ICBC1},CCB,{CCB1},Holder CCB 1,1.{i:02d}\n" for i in range(50)))

    def chunks() -> Iterator[bytes]:  # (no length: sent chunked)
        data = csv.encode()
        for i in range(0, len(data), 300):
            yield data[i:i + 300]

    with edge_server() as (url, _), httpx.Client(base_url=url, timeout=30) as http:
        batch = http.post("/v1/participants/ICBC/transfer-batches", content=chunks(),
                          headers={**bearer("ICBC"), "content-type": "text/csv"})
        assert batch.status_code == 201, batch.text
        assert batch.json()["credited"]["count"] == 50
        assert http.post(TRANSFERS.format("ICBC"), json=order(),
                         headers=bearer("ICBC")).status_code == 201
        assert http.get("/v1/health").json()["status"] == "ok"
        assert http.get("/openapi.json").json()["components"]["schemas"]["TransferIn"]
    # the edge's own requests reach /metrics (sent once a second, and at the stop)


def test_a_client_that_trickles_its_request_is_answered_408_and_cut_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slowloris (a header sent a piece at a time, never finished) does not keep its
    connection: past REQUEST_S it gets 408 and the connection closes."""
    monkeypatch.setattr(edge_module, "REQUEST_S", 0.5)
    with edge_server() as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/participants/ICBC/transfers HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while chunk := sock.recv(4096):  # until the edge closes it
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"request_timeout" in answer


def test_a_stop_answers_what_was_received() -> None:
    """Transfers in flight when the engine's process stops are answered (201: durable),
    and nothing after the stop is taken."""
    results: list[int] = []
    with edge_server() as (url, core):
        def send(n: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                results.append(http.post(TRANSFERS.format("ICBC"), json=order(
                    id=f"S{n}", amount="1.00"), headers=bearer("ICBC")).status_code)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [201] * 20
    assert all(f"ICBC/API/S{n}" in core.world.banks.payments for n in range(20))


# ---------------------------------------------------------------------- the order's checks

_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["counter", "mobile", "HVPS", "x"]))
_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False),
                   _TEXT, st.lists(st.integers(), max_size=2))
_CREDITOR = st.one_of(_VALUE, st.dictionaries(
    st.sampled_from(["bank", "account", "name", "iban"]), _VALUE, max_size=4))
_ORDER = st.dictionaries(
    st.sampled_from(["id", "debtor_account", "creditor", "amount", "channel", "urgent",
                     "system", "extra"]),
    st.one_of(_VALUE, _CREDITOR), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_ORDER)
def test_the_structure_check_is_the_schemas(doc: dict[str, Any]) -> None:
    """The body's structure is refused exactly when the OpenAPI schema (the pydantic
    model, strictly: JSON types as the schema says) refuses it."""
    try:
        TransferIn.model_validate(doc, strict=True)
        valid = True
    except ValidationError:
        valid = False
    assert (not _structure(doc)) == valid, doc


def test_an_order_that_passes_carries_its_values() -> None:
    parsed = parse_order(json.dumps(order(amount="1234.50", channel="mobile", urgent=True,
                                          system="IBPS")).encode())
    assert (parsed.amount_fen, parsed.channel, parsed.urgent, parsed.system,
            parsed.creditor_bank) == (123_450, "mobile", True, "IBPS", "CCB")
    with pytest.raises(ApiError) as refused:
        parse_order(b"[" * 60_000)
    assert refused.value.reason == "invalid_json"


def test_expect_100_continue_on_both_doors() -> None:
    """A client that waits for 100 Continue before its body (curl does, above 1 KiB) gets
    it from the edge for a transfer and, relayed, from the application for a batch."""
    csv = (f"debtor_account,creditor_bank,creditor_account,creditor_name,amount\n"
           f"{ICBC1},CCB,{CCB1},Holder CCB 1,2.00\n").encode()
    body = json.dumps(order(id="C1")).encode()
    with edge_server() as (url, _):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        for path, kind, data in (("/v1/participants/ICBC/transfers", "application/json", body),
                                 ("/v1/participants/ICBC/transfer-batches", "text/csv", csv)):
            with socket.create_connection((host, int(port)), timeout=30) as conn:
                conn.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                              f"{KEYS['ICBC']}\r\nContent-Type: {kind}\r\nContent-Length: "
                              f"{len(data)}\r\nExpect: 100-continue\r\n\r\n").encode())
                stream = conn.makefile("rb")
                assert stream.readline().startswith(b"HTTP/1.1 100")
                assert stream.readline() == b"\r\n"
                conn.sendall(data)
                [(status, answer)] = _read_answers_from(stream, 1)
                assert status == 201, answer


def _read_answers_from(stream: Any, n: int) -> list[tuple[int, Any]]:
    out = []
    for _ in range(n):
        status = int(stream.readline().split()[1])
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        out.append((status, json.loads(stream.read(length))))
    return out


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), _JSON.map(lambda v: json.dumps(v).encode()),
                 _ORDER.map(lambda v: json.dumps(v).encode())))
def test_any_body_is_an_order_or_a_4xx(body: bytes) -> None:
    """No body makes the check raise anything but a refusal with a 4xx status."""
    try:
        parse_order(body)
    except ApiError as exc:
        assert 400 <= exc.status < 500 and exc.reason, exc
