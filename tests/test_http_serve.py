"""`qingsuan serve` runs the HTTP API beside the card port over one engine: JSON and XML
answered once durable, a clean SIGTERM, a restart (or a kill -9) that loses nothing
acknowledged, keys that survive a restart, the options' refusals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from test_http_api import CCB1, ICBC1, order, pacs008

from qingsuan.messages import parse_pacs002


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def keys(self) -> dict[str, str]:
        return {line.split("API key of ", 1)[1].split(":")[0]: line.split()[-1]
                for line in self.lines if "API key of " in line}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def serve(store: Path | str, *extra: str, new_keys: bool = True) -> Served:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", "--store", str(store), "--port", "0",
         "--http-port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    assert "card switch listening on" in lines[0], (lines, proc.stderr and proc.stderr.read())
    assert "HTTP API listening on http://" in lines[1], lines
    url = lines[1].split("listening on ", 1)[1].split()[0]
    while new_keys and "shown once" not in lines[-1]:
        lines.append(proc.stdout.readline())
        assert lines[-1], lines
    return Served(proc, url, lines)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("core", ["process", "inline"])
def test_serve_http_durable_clean_stop_and_restart(tmp_path: Path, core: str) -> None:
    store = tmp_path / "s.db"
    served = serve(store, "--core", core)
    keys = served.keys()
    assert set(keys) == {"ICBC", "CCB", "ABC", "BOC", "operator"}
    assert all(key not in (tmp_path / "s.db.apikeys").read_text() for key in keys.values())
    try:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            sent = http.post("/v1/participants/ICBC/transfers", headers=bearer(keys["ICBC"]),
                             json=order(urgent=True))
            assert sent.status_code == 201, sent.text
            xml = http.post("/v1/participants/ICBC/messages", content=pacs008(
                "M1", "T1"), headers={**bearer(keys["ICBC"]), "content-type": "text/xml"})
            assert xml.status_code == 200
            # (today, not the 26th: a date far from today is refused DT01, not a 5xx)
            assert parse_pacs002(xml.content)[0].status in ("ACSC", "RJCT")
            before = http.get("/v1/participants/ICBC/payments/API/T1",
                              headers=bearer(keys["ICBC"])).json()
            assert http.get("/v1/health").json()["status"] == "ok"
            assert "qingsuan_http_requests_total" in http.get("/metrics").text
    finally:
        assert served.stop() == 0
    again = serve(store, "--core", core, new_keys=False)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            after = http.get("/v1/participants/ICBC/payments/API/T1",
                             headers=bearer(keys["ICBC"]))
            assert after.status_code == 200 and after.json() == before
            assert http.get("/v1/operator/clock", headers=bearer(keys["operator"])
                            ).json()["mode"] == "wall"
    finally:
        assert again.stop() == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """``serve``'s arguments for a store: a SQLite file, or a PostgreSQL schema (with a
    card key file: no key file lives beside such a store)."""
    if request.param == "sqlite":
        yield [str(tmp_path / "s.db")]
        return
    import psycopg

    dsn = request.getfixturevalue("pg_dsn")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield [f"{dsn}?schema={schema}", "--card-key-file", str(tmp_path / "card.key")]
    with psycopg.connect(dsn.replace("+psycopg", "", 1), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_kill_9_loses_no_acknowledged_transfer(store: list[str]) -> None:
    served = serve(*store, "--api-keys", "sandbox", new_keys=False)
    acked: list[str] = []
    stop = threading.Event()

    def client(who: str, account: str, creditor: dict[str, str]) -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    r = http.post(f"/v1/participants/{who}/transfers",
                                  headers=bearer(f"sandbox-{who}"), json=order(
                                      id=f"K{n}", debtor_account=account, amount="1.00",
                                      creditor=creditor))
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked.append(f"{who}/K{n}")

    threads = [threading.Thread(target=client, args=args) for args in (
        ("ICBC", ICBC1, {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}),
        ("CCB", CCB1, {"bank": "ICBC", "account": ICBC1, "name": "Holder ICBC 1"}))]
    for t in threads:
        t.start()
    while len(acked) < 60:
        threading.Event().wait(0.05)
    served.kill()
    stop.set()
    for t in threads:
        t.join()
    again = serve(*store, "--api-keys", "sandbox", new_keys=False)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            for pid in acked:
                who, tx = pid.split("/")
                r = http.get(f"/v1/participants/{who}/payments/API/{tx}",
                             headers=bearer(f"sandbox-{who}"))
                assert r.status_code == 200, (pid, r.text)
    finally:
        assert again.stop() == 0


def test_virtual_clock_from_the_command_line(tmp_path: Path) -> None:
    served = serve(tmp_path / "s.db", "--api-keys", "sandbox", "--clock", "virtual",
                   "--clock-start", "2026-11-26T17:14", new_keys=False)
    try:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            op = bearer("sandbox-operator")
            clock = http.get("/v1/operator/clock", headers=op).json()
            assert clock["now"] == "2026-11-26T17:14:00+08:00" and clock["mode"] == "virtual"
            moved = http.post("/v1/operator/clock", headers=op, json={"advance": "2m"}).json()
            assert moved["hvps_phase"] == "clearing_window"
    finally:
        assert served.stop() == 0


def test_http_port_in_use_and_bad_options_exit_2(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        for args, words in (
                (["--http-port", str(port)], "--http-port"),
                (["--http-port", "70000"], "--http-port must be 0 to 65535"),
                (["--api-keys", "guessable"], "--api-keys"),
                (["--clock", "sundial"], "--clock is wall or virtual"),
                (["--clock-start", "2026-11-26T10:00"], "goes with --clock virtual"),
                (["--clock", "virtual", "--clock-start", "soon"], "--clock-start")):
            done = subprocess.run(
                [sys.executable, "-m", "qingsuan", "serve", "--store",
                 str(tmp_path / "x.db"), "--port", "0", *args], capture_output=True,
                text=True, timeout=60)
            assert done.returncode == 2, (args, done.stderr)
            assert words in done.stderr, (args, done.stderr)
    finally:
        taken.close()
    assert not (tmp_path / "x.db.apikeys").exists()


def test_sigterm_ends_a_dashboard_stream_and_stops_cleanly(tmp_path: Path) -> None:
    served = serve(tmp_path / "s.db", "--api-keys", "sandbox", new_keys=False)
    events: list[str] = []

    def watch() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http, http.stream(
                "GET", "/v1/operator/stream", headers=bearer("sandbox-operator")) as feed:
            for line in feed.iter_lines():
                if line.startswith("data: "):
                    events.append(line)

    watcher = threading.Thread(target=watch)
    watcher.start()
    while not events:
        threading.Event().wait(0.05)
    page = httpx.get(f"{served.url}/dashboard", timeout=30)
    assert page.status_code == 200 and "operator" in page.text
    assert served.stop() == 0  # the stream ends with the server: no wait for it
    watcher.join(timeout=30)
    assert not watcher.is_alive() and '"participants"' in events[0]


def test_a_kill_9_of_the_engine_s_process_alone_frees_the_http_port(tmp_path: Path) -> None:
    """kill -9 of `serve`'s main process alone (not its group, as an operator's kill of
    one pid): the other processes see their links close and end, so the HTTP port is free
    and a restart on the same port and store answers. (test_log_integrity's empty store
    covers the edge's end when the engine's process never spoke.)"""
    served = serve(tmp_path / "s.db", "--api-keys", "sandbox", new_keys=False)
    port = int(served.url.rsplit(":", 1)[1])
    served.proc.send_signal(signal.SIGKILL)  # the main process only
    served.proc.wait(timeout=30)
    deadline = threading.Event()
    for _ in range(100):  # the edge ends within moments of the link's close
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        deadline.wait(0.1)
    else:
        os.killpg(served.proc.pid, signal.SIGKILL)
        pytest.fail(f"the HTTP port {port} still answers after the engine's process died")
    again = serve(tmp_path / "s.db", "--api-keys", "sandbox", "--http-port", str(port),
                  new_keys=False)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as http:
            assert http.get("/v1/me", headers=bearer("sandbox-ICBC")).status_code == 200
    finally:
        assert again.stop() == 0
