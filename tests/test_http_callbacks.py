"""Connected participants (server/http/callbacks.py, delivery.py, routes_callbacks.py): a
participant registers a callback URL and its notices (incoming payments among them) are
POSTed there, signed, retried with back-off, given up with the reason visible, each with a
message id that stays the same across attempts and restarts; nobody receives another's.
A receiver on a loopback port answers as told: well, 5xx, not JSON, or not at all. The
deliveries are stepped by the test at times it chooses (no waiting on back-off)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_api import CCB1, NAMES, SANDBOX, START, Api, order

from qingsuan.server.http import KeyRing, SandboxClock, SandboxCore, create_app
from qingsuan.server.http.callbacks import Registry, verify
from qingsuan.server.http.delivery import Deliverer, DeliveryParams

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: an attempt's timeout in these tests: a receiver that never answers costs this once
TIMEOUT_S = 0.5
PARAMS = DeliveryParams(timeout_s=TIMEOUT_S, first_retry_s=10, backoff=2, max_retry_s=1000,
                        max_attempts=3)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A participant's hub: records every POST; answers each path as its script says
    (``ok``, ``5xx``, ``badjson``, ``wrongid``, ``never``), then ``ok``."""

    url: str = ""
    got: list[Received] = field(default_factory=list)
    script: dict[str, list[str]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    #: set at each POST
    arrived: threading.Event = field(default_factory=threading.Event)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hub = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hub.got.append(Received(self.path, dict(self.headers), body))
            hub.arrived.set()
            steps = hub.script.get(self.path, [])
            how = steps.pop(0) if steps else "ok"
            if how == "never":  # holds the request past the sandbox's timeout
                hub.release.wait(30)
                return
            status, answer = {
                "ok": (200, json.dumps({"received": json.loads(body)["message_id"]})),
                "5xx": (503, "busy"), "badjson": (200, "thanks!"),
                "wrongid": (200, json.dumps({"received": "HVPS.999999"}))}[how]
            raw = answer.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield hub
    finally:
        hub.release.set()
        server.shutdown()
        server.server_close()


def open_sandbox(store: str, ring: KeyRing, registry: Registry | None = None
                 ) -> tuple[Api, SandboxCore, Deliverer]:
    from fastapi.testclient import TestClient

    core = SandboxCore(SANDBOX, store, SandboxClock("virtual", START))
    app = create_app(core, ring, callbacks=registry, delivery=PARAMS, deliver=False)
    return (Api(TestClient(app, raise_server_exceptions=False), core, {}), core,
            app.state.deliverer)


@pytest.fixture
def sandbox() -> Iterator[tuple[Api, Deliverer]]:
    ring, keys = KeyRing.for_world(NAMES)
    api, core, deliverer = open_sandbox(f"memory://{uuid.uuid4().hex}", ring)
    api.keys.update(keys)
    try:
        yield api, deliverer
    finally:
        core.close()


def connect(api: Api, who: str, url: str) -> dict[str, Any]:
    answer = api.client.put(f"/v1/participants/{who}/callback", headers=api.h(who),
                            json={"url": url})
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def drain(deliverer: Deliverer, now: float = 0.0) -> None:
    """Step until nothing more is delivered at ``now`` (bounded)."""
    for _ in range(50):
        if not deliverer.step(now):
            return
    raise AssertionError("deliveries did not settle")


def pay_ccb(api: Api, tx: str, amount: str = "1234.50", **more: Any) -> None:
    answer = api.transfer(id=tx, amount=amount, **more)
    assert answer.status_code == 201, answer.text


def test_a_connected_bank_receives_its_incoming_payment_signed(
        sandbox: tuple[Api, Deliverer], receiver: Receiver) -> None:
    api, deliverer = sandbox
    pay_ccb(api, "BEFORE")  # before CCB connects: in its inbox, not sent
    secrets = {who: connect(api, who, f"{receiver.url}/{who}")["secret"]
               for who in ("ICBC", "CCB", "ABC")}
    pay_ccb(api, "T1")  # BEPS: netted for ICBC, incoming for CCB
    drain(deliverer)

    (incoming,) = receiver.on("/CCB")
    doc = incoming.doc
    assert doc["participant"] == "CCB" and doc["type"] == "incoming_payment"
    assert doc["payment"] == {"ref": "ICBC/API/T1", "from": "ICBC", "to": "CCB",
                              "amount": "1234.50"}
    assert doc["notice"]["event"] == "incoming" and doc["notice"]["system"] == "BEPS"
    assert incoming.headers["Qingsuan-Message-Id"] == doc["message_id"]
    assert incoming.headers["Qingsuan-Attempt"] == "1"
    expected = hmac.new(secrets["CCB"].encode(), incoming.body, hashlib.sha256).hexdigest()
    assert incoming.headers["Qingsuan-Signature"] == f"sha256={expected}"
    # signed with CCB's secret, not another's
    other = hmac.new(secrets["ICBC"].encode(), incoming.body, hashlib.sha256).hexdigest()
    assert incoming.headers["Qingsuan-Signature"] != f"sha256={other}"
    signature = incoming.headers["Qingsuan-Signature"]
    assert verify(secrets["CCB"], incoming.body, signature)
    assert not verify(secrets["CCB"], incoming.body.replace(b"1234.50", b"9234.50"), signature)

    (sent,) = receiver.on("/ICBC")
    assert sent.doc["type"] == "notice" and sent.doc["notice"]["event"] == "netted"
    assert sent.doc["notice"]["payment_id"] == "API/T1"
    assert receiver.on("/ABC") == []  # ABC is in none of it
    assert all(r.doc["participant"] == r.path[1:] for r in receiver.got)
    assert "BEFORE" not in b"".join(r.body for r in receiver.got).decode()

    state = api.get("/v1/participants/CCB/callback", "CCB").json()
    assert state["connected"] and state["delivered"] == 1 and state["failures"] == []
    assert "secret" not in state and state["trying"] is None
    # the inbox still answers, with the same notice
    inbox = api.get("/v1/participants/CCB/notices", "CCB").json()["notices"]
    assert [n["ref"] for n in inbox if n["event"] == "incoming"] == [
        "ICBC/API/BEFORE", "ICBC/API/T1"]


def test_a_bank_that_answers_wrongly_is_retried_with_the_same_id_then_given_up(
        sandbox: tuple[Api, Deliverer], receiver: Receiver) -> None:
    api, deliverer = sandbox
    connect(api, "CCB", f"{receiver.url}/CCB")
    receiver.script["/CCB"] = ["5xx", "badjson", "wrongid"]
    pay_ccb(api, "T1")
    pay_ccb(api, "T2")

    assert deliverer.step(0) == 0  # attempt 1: 503
    assert deliverer.step(9.9) == 0  # the back-off: no attempt before 10 s
    assert len(receiver.got) == 1
    trying = api.get("/v1/participants/CCB/callback", "CCB").json()["trying"]
    assert trying["attempts"] == 1 and "HTTP 503" in trying["last_error"]
    assert deliverer.step(10) == 0  # attempt 2: not JSON
    assert deliverer.step(29.9) == 0  # then twice as long: 20 s
    assert len(receiver.got) == 2
    assert deliverer.step(30) == 0  # attempt 3: acknowledges another id: given up
    tries = receiver.got[:3]
    assert len({t.headers["Qingsuan-Message-Id"] for t in tries}) == 1
    assert [t.headers["Qingsuan-Attempt"] for t in tries] == ["1", "2", "3"]
    assert len({t.body for t in tries}) == 1  # the same message each time

    state = api.get("/v1/participants/CCB/callback", "CCB").json()
    (failure,) = state["failures"]
    assert failure["message_id"] == tries[0].doc["message_id"] and failure["attempts"] == 3
    assert "does not acknowledge" in failure["reason"]
    assert state["delivered"] == 0
    # the next message goes (T2), and the given-up one is not sent again
    assert deliverer.step(30) == 1
    assert receiver.got[3].doc["payment"]["ref"] == "ICBC/API/T2"
    metrics = api.client.get("/metrics").text
    for outcome, count in (("failed", 2), ("given_up", 1), ("delivered", 1)):
        assert f'qingsuan_callback_attempts_total{{outcome="{outcome}"}} {count}.0' in metrics
    drain(deliverer, 10_000)
    assert len(receiver.got) == 4


def test_a_bank_that_never_answers_or_answers_late(
        sandbox: tuple[Api, Deliverer], receiver: Receiver) -> None:
    api, deliverer = sandbox
    connect(api, "CCB", f"{receiver.url}/CCB")
    receiver.script["/CCB"] = ["never"]  # held past the timeout, then answered ok
    pay_ccb(api, "T1")
    assert deliverer.step(0) == 0
    trying = api.get("/v1/participants/CCB/callback", "CCB").json()["trying"]
    assert trying["last_error"] == f"no answer within {TIMEOUT_S:g} s"
    receiver.release.set()
    assert deliverer.step(10) == 1  # the retry is acknowledged
    first, second = receiver.on("/CCB")
    # the receiver got it twice: at least once; the message id lets it drop the repeat
    assert first.doc["message_id"] == second.doc["message_id"]
    assert second.headers["Qingsuan-Attempt"] == "2"
    assert api.get("/v1/participants/CCB/callback", "CCB").json()["delivered"] == 1

    # a receiver that is not there at all: refused connections, given up after 3
    connect(api, "ABC", "http://127.0.0.1:9/ABC")  # (the discard port: nobody listens)
    api.post("/v1/participants/ABC/transfers", "ABC", json=order(
        id="A1", debtor_account="9228480000000010017",
        creditor={"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}))
    for now in (100, 110, 130):
        deliverer.step(now)
    (failure,) = api.get("/v1/participants/ABC/callback", "ABC").json()["failures"]
    assert failure["attempts"] == 3 and "Connect" in failure["reason"]


def test_deliveries_survive_a_restart_with_the_same_message_id(
        tmp_path: Path, receiver: Receiver) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = str(tmp_path / "s.db")
    api, core, deliverer = open_sandbox(store, ring)
    api.keys.update(keys)
    try:
        connect(api, "CCB", f"{receiver.url}/CCB")
        receiver.script["/CCB"] = ["ok", "5xx"]
        pay_ccb(api, "T1")
        pay_ccb(api, "T2")
        assert deliverer.step(0) == 1  # T1 acknowledged
        assert deliverer.step(0) == 0  # T2 refused: retried later
    finally:
        core.close()
    assert oct((tmp_path / "s.db.callbacks").stat().st_mode & 0o777) == "0o600"
    unsent = receiver.got[1].doc["message_id"]

    api, core, deliverer = open_sandbox(store, ring)  # the registry read back from its file
    api.keys.update(keys)
    try:
        drain(deliverer)
        again = receiver.got[2:]
        assert [r.doc["message_id"] for r in again] == [unsent]  # T2 again, T1 not
        assert again[0].doc["payment"]["ref"] == "ICBC/API/T2"
        state = api.get("/v1/participants/CCB/callback", "CCB").json()
        assert state["connected"] and state["delivered"] == 2
    finally:
        core.close()


def test_callback_urls_are_checked_and_loopback_only(
        sandbox: tuple[Api, Deliverer], receiver: Receiver) -> None:
    api, deliverer = sandbox
    seq = api.core.engine.applied_seq

    def put(url: Any, who: str = "ICBC") -> Any:
        return api.client.put(f"/v1/participants/{who}/callback", headers=api.h(who),
                              json={"url": url})

    for url, reason in [("http://10.0.0.1/hook", "callback_not_loopback"),
                        ("https://example.com/hook", "callback_not_loopback"),
                        ("ftp://127.0.0.1/hook", "invalid_url"),
                        ("http://user:pw@127.0.0.1/hook", "invalid_url"),
                        ("http://127.0.0.1:99999/hook", "invalid_url"),
                        ("not a url", "invalid_url"), ("", "invalid_url")]:
        answer = put(url)
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["reason"] == reason and answer.json()["field"] == "url", url
    assert put(12).status_code == 422  # not a string
    assert api.get("/v1/participants/ICBC/callback", "ICBC").json()["connected"] is False
    assert api.core.engine.applied_seq == seq
    assert put("http://localhost:8/hook").status_code == 200
    assert put("http://[::1]:8/hook").status_code == 200
    # a new registration makes a new secret
    first = put("http://127.0.0.1:8/hook").json()["secret"]
    assert put("http://127.0.0.1:8/hook").json()["secret"] != first
    # allowed elsewhere only when the sandbox says so
    remote = Registry(None, allow_remote=True)
    assert remote.register("ICBC", "https://hub.example.com/q", {}).url.startswith("https")

    # the operator connects and disconnects a participant; a participant not connected
    # stays answered by its simulated bank
    operator = {"Authorization": f"Bearer {api.keys['operator']}"}
    put_op = api.client.put("/v1/operator/participants/CCB/callback", headers=operator,
                            json={"url": f"{receiver.url}/CCB"})
    assert put_op.status_code == 200 and put_op.json()["secret"]
    assert api.get("/v1/participants/CCB/callback", "CCB").json()["url"].endswith("/CCB")
    assert api.client.put("/v1/operator/participants/NOPE/callback", headers=operator,
                          json={"url": f"{receiver.url}/x"}).status_code == 404
    assert api.client.delete("/v1/operator/participants/CCB/callback",
                             headers=operator).status_code == 200
    pay_ccb(api, "T9")
    drain(deliverer)
    assert receiver.on("/CCB") == []
    assert api.client.delete("/v1/participants/CCB/callback",
                             headers=api.h("CCB")).json()["reason"] == "not_connected"


def test_the_delivery_thread_delivers_by_itself(receiver: Receiver) -> None:
    """As `qingsuan serve` runs it: nobody steps the deliveries."""
    from fastapi.testclient import TestClient

    ring, keys = KeyRing.for_world(NAMES)
    core = SandboxCore(SANDBOX, f"memory://{uuid.uuid4().hex}", SandboxClock("virtual", START))
    try:
        app = create_app(core, ring, delivery=PARAMS)  # (the thread starts)
        api = Api(TestClient(app, raise_server_exceptions=False), core, keys)
        connect(api, "CCB", f"{receiver.url}/CCB")
        pay_ccb(api, "T1")
        assert receiver.arrived.wait(30), "no delivery within 30 s"
        assert receiver.got[0].doc["payment"]["ref"] == "ICBC/API/T1"
    finally:
        core.close()  # (stops the thread)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
URLS = st.builds(lambda a, b, c: a + b + c,
                 st.sampled_from(["", "http://", "https://", "ftp://", "http://127.0.0.1",
                                  "http://[", "http://localhost:"]),
                 st.text(max_size=30), st.sampled_from(["", "/", ":99999", "@x"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(URLS, JSON_VALUES), st.booleans())
def test_random_callback_registrations_never_5xx(sandbox: tuple[Api, Deliverer], url: Any,
                                                 wrapped: bool) -> None:
    api, _ = sandbox  # (the deliveries are not stepped: nothing is POSTed anywhere)
    body = {"url": url} if wrapped else url
    answer = api.client.put("/v1/participants/ICBC/callback", headers=api.h("ICBC"),
                            json=body)
    assert answer.status_code in (200, 400, 422), answer.text
    if answer.status_code != 200:
        assert answer.json()["reason"] and answer.json()["message"]
    else:
        host = answer.json()["url"].split("//", 1)[1]
        assert host.startswith(("127.", "localhost", "[::1]")), answer.json()
