"""The HTTP edge of ``qingsuan serve``: a process of its own that owns the API's port.

The engine's process spends about 200 µs of CPU on a transfer; parsing HTTP and checking
JSON there, on the same core, cost it more than that again (FastAPI and uvicorn). So, as
the card port's edge does for ISO 8583, this process reads every request, answers
``POST /v1/participants/{p}/transfers`` itself up to the engine (the key, the path, the
body checked by transfer_order.py, refusals answered here) and sends the orders that
passed to the engine in batches (edge_link.py): one group commit for all that wait, each
answer written once durable. Every other request is relayed, as it came, to the FastAPI
application, which the engine's process serves on a private Unix socket; its answer is
relayed back. One connection may mix both: answers go back in the requests' order.

Stopping (the engine's process says ``stop``): no new connection, a new request is
refused 503 ``stopping``, what was received is answered; then ``stopped``. When the link
to the engine closes (the engine's process is gone) the edge ends at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from http import HTTPStatus
from typing import Any, Final, cast
from urllib.parse import unquote

import httptools
import orjson

from qingsuan.collector import GC_THRESHOLDS
from qingsuan.server.card_tcp import _Messages, _pack
from qingsuan.server.http import access, transfer_order
from qingsuan.server.http.auth import KeyRing
from qingsuan.server.http.errors import ApiError

#: connections at once; past it a new one is answered 503 and closed
MAX_CONNECTIONS: Final = 4096
#: a keep-alive connection idle this long is closed
KEEP_ALIVE_S: Final = 30.0
#: a request must be read whole within this long of its first byte: a client that trickles
#: its header or body (slowloris) is answered 408 and cut off, not kept for ever
REQUEST_S: Final = 60.0
#: at a stop, how long requests in flight get
GRACEFUL_S: Final = 10.0
#: bytes relayed to the application unsent before the client is no longer read
RELAY_HIGH_BYTES: Final = 1 << 20
#: the edge's request counts and latencies go to the engine's /metrics this often
STATS_EVERY_S: Final = 1.0

_PREFIX: Final = b"/v1/participants/"
_SUFFIX: Final = b"/transfers"
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

log = logging.getLogger("qingsuan.http")


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
            keep_alive: bool = True) -> bytes:
    data = orjson.dumps(body)  # (the bytes JSONResponse writes for these documents)
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-length: {len(data)}"
            "\r\ncontent-type: application/json\r\n"]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value}\r\n")
    if not keep_alive:
        head.append("connection: close\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + data


def refusal(exc: ApiError, keep_alive: bool = True) -> bytes:
    return respond(exc.status, exc.body(), exc.headers, keep_alive)


class Slot:
    """One request's place in its connection's answers (answers go in request order)."""

    __slots__ = ("chunks", "done", "keep_alive", "started")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = False
        self.keep_alive = True
        self.started = time.perf_counter()


class Edge:
    def __init__(self, ring: KeyRing, upstream: str) -> None:
        self.ring, self.upstream = ring, upstream
        self.loop = asyncio.get_running_loop()
        self.known: frozenset[str] = frozenset()
        self.connections: set[Connection] = set()
        self.stopping = False
        self.stop_asked = asyncio.Event()
        self.link_gone = False
        self._link: asyncio.Transport | None = None
        self._tickets: dict[int, tuple[Connection, Slot]] = {}
        self._next_ticket = 0
        self._outbox: list[tuple[int, str, transfer_order.Order]] = []
        self._counts: collections.Counter[int] = collections.Counter()
        self._latencies: list[float] = []

    # ------------------------------------------------------------------ the link

    def hello(self, participants: list[str], hashes: dict[str, str] | None = None) -> None:
        self.known = frozenset(participants)
        if hashes is not None:  # (the keys as the engine's process has them now)
            self.ring = KeyRing(hashes)

    def learn(self, name: str, key_hash: str, token: int) -> None:
        """A participant the operator added: its paths and its key work from now on."""
        self.ring.learn(name, key_hash)
        self.known = self.known | {name}
        if self._link is not None and not self.link_gone:
            self._link.write(_pack(("learnt", token)))

    def submit(self, conn: Connection, slot: Slot, participant: str,
               order: transfer_order.Order) -> None:
        ticket = self._next_ticket = self._next_ticket + 1
        self._tickets[ticket] = (conn, slot)
        if not self._outbox:
            self.loop.call_soon(self._flush)  # every order of this turn in one message
        self._outbox.append((ticket, participant, order))

    def _flush(self) -> None:
        jobs, self._outbox = self._outbox, []
        if self._link is not None and not self.link_gone:
            self._link.write(_pack(("jobs", jobs)))

    def answers(self, answers: list[tuple[int, int, dict[str, Any], dict[str, str] | None]]
                ) -> None:
        for ticket, status, body, headers in answers:
            conn, slot = self._tickets.pop(ticket)
            conn.finish(slot, status, respond(status, body, headers, slot.keep_alive))

    def counted(self, status: int, started: float) -> None:
        self._counts[status] += 1
        self._latencies.append(time.perf_counter() - started)

    def _stats(self) -> None:
        if self._counts and self._link is not None and not self.link_gone:
            self._link.write(_pack(("stats", dict(self._counts), self._latencies)))
            self._counts, self._latencies = collections.Counter(), []
        self.loop.call_later(STATS_EVERY_S, self._stats)

    # ------------------------------------------------------------------ serving

    async def serve(self, public: socket.socket, link: socket.socket) -> None:
        hello: asyncio.Future[None] = self.loop.create_future()
        transport, _ = await self.loop.connect_accepted_socket(
            lambda: _Link(self, hello), link)
        self._link = transport
        await hello  # (the engine is open: the participants are known)
        if self.link_gone:
            return
        server = await self.loop.create_server(lambda: Connection(self), sock=public,
                                               backlog=1024)
        self.loop.call_later(STATS_EVERY_S, self._stats)
        self.loop.call_later(1.0, self._sweep)
        await self.stop_asked.wait()
        server.close()
        if not self.link_gone:  # answer what was received, then say so
            self.stopping = True
            for conn in list(self.connections):
                conn.stop_if_idle()
            deadline = self.loop.time() + GRACEFUL_S
            while self.connections and not self.link_gone and self.loop.time() < deadline:
                await asyncio.sleep(0.01)
            self._stats_now()
            if self._link is not None and not self.link_gone:
                self._link.write(_pack(("stopped",)))
        for conn in list(self.connections):
            conn.close()
        if self._link is not None:
            self._link.close()

    def _stats_now(self) -> None:
        if self._counts and self._link is not None and not self.link_gone:
            self._link.write(_pack(("stats", dict(self._counts), self._latencies)))

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            if not conn.slots and not conn.mid_request and now - conn.last_s > KEEP_ALIVE_S:
                conn.close()
            elif conn.mid_request and now - conn.began_s > REQUEST_S:
                conn.too_slow()
        self.loop.call_later(1.0, self._sweep)

    def gone(self) -> None:
        """The link closed: the engine's process is gone or stopped."""
        self.link_gone = True
        self.stop_asked.set()


class _Link(asyncio.Protocol):
    def __init__(self, edge: Edge, hello: asyncio.Future[None]) -> None:
        self.edge, self.hello_seen = edge, hello
        self.reader = _Messages()

    def data_received(self, data: bytes) -> None:
        for message in self.reader.feed(data):
            kind = message[0]
            if kind == "answers":
                self.edge.answers(message[1])
            elif kind == "hello":
                self.edge.hello(*message[1:])
                self.hello_seen.set_result(None)
            elif kind == "learn":
                self.edge.learn(message[1], message[2], message[3])
            elif kind == "stop":
                self.edge.stop_asked.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.edge.gone()
        if not self.hello_seen.done():
            self.hello_seen.set_result(None)


class _Relayed:
    """A request for the application: its bytes not yet sent, whether it was read whole,
    whether it is a HEAD (its answer has no body)."""

    __slots__ = ("answered", "complete", "head", "parts", "slot")

    def __init__(self, slot: Slot, first: bytes, head: bool) -> None:
        self.slot, self.parts, self.head = slot, [first], head
        self.complete = False
        #: part of the application's answer came (and may have been written)
        self.answered = False


class Connection(asyncio.Protocol):
    """One client connection: its requests parsed in order, each answered here (the
    transfer route) or relayed to the application over this connection's own upstream
    connection, one request at a time."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.slots: collections.deque[Slot] = collections.deque()
        self.last_s = time.monotonic()
        self.mid_request = False
        #: when the request being read began (its first byte)
        self.began_s = self.last_s
        self.closing = False
        # the request being read
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._slot: Slot | None = None
        self._hot = self._refused = self._chunked = False
        # the application's side: the requests for it, the first being answered
        self.upstream: Upstream | None = None
        self._relayed: collections.deque[_Relayed] = collections.deque()
        self._sending: _Relayed | None = None
        self._upstream_full = False
        self._reading = True

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # (uvloop's are not subclasses)
        self.transport = transport
        if len(self.edge.connections) >= MAX_CONNECTIONS or self.edge.stopping:
            transport.write(refusal(ApiError(503, "busy", "too many connections: try again "
                                             "shortly", headers={"Retry-After": "1"}), False))
            transport.close()
            self.closing = True
            return
        self.edge.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.edge.connections.discard(self)
        if self.upstream is not None:
            self.upstream.close()

    def data_received(self, data: bytes) -> None:
        self.last_s = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ApiError(400, "bad_request", "protocol upgrades are not served here"))
        except httptools.HttpParserError as exc:
            self._fail(ApiError(400, "bad_request", f"not an HTTP/1.1 request: {exc}"))

    def pause_writing(self) -> None:  # (the client reads slower than the app answers)
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def upstream_full(self, full: bool) -> None:
        """The application's connection has too much unsent (or no longer)."""
        self._upstream_full = full
        self._read_or_not()

    def _read_or_not(self) -> None:
        """Read the client unless a second request waits for the application, or the
        application's connection is full."""
        want = not self._upstream_full and len(self._relayed) <= 1
        if want != self._reading and self.transport is not None and not self.closing:
            self._reading = want
            (self.transport.resume_reading if want else self.transport.pause_reading)()

    # ------------------------------------------------------------------ httptools

    def on_message_begin(self) -> None:
        self.mid_request = True
        self.began_s = time.monotonic()
        self._url, self._headers, self._body, self._size = b"", [], [], 0
        self._chunked = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        slot = self._slot = Slot()
        self.slots.append(slot)
        method = self.parser.get_method()
        path = self._url.split(b"?", 1)[0]
        middle = path[len(_PREFIX):-len(_SUFFIX)]
        self._hot = (method == b"POST" and path.startswith(_PREFIX) and path.endswith(_SUFFIX)
                     and len(path) > len(_PREFIX) + len(_SUFFIX) and b"/" not in middle)
        self._refused = self.edge.stopping  # (answered 503 once read)
        if self._refused:
            return
        expect = False
        for name, value in self._headers:
            lower = name.lower()
            if lower == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
            elif lower == b"expect" and value.lower() == b"100-continue":
                expect = True
        if self._hot:
            if expect and self.slots[0] is slot and self.transport is not None:
                self.transport.write(_CONTINUE)
            return
        head = [method, b" ", self._url, b" HTTP/", self.parser.get_http_version().encode(),
                b"\r\n"]
        for name, value in self._headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        self._relayed.append(_Relayed(slot, b"".join(head), method == b"HEAD"))
        self._read_or_not()
        self._send_next()

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        if self._hot:
            self._size += len(body)
            if self._size <= transfer_order.MAX_BODY_BYTES:
                self._body.append(body)
            return
        self._relay(b"%x\r\n%b\r\n" % (len(body), body) if self._chunked else body)

    def on_message_complete(self) -> None:
        self.mid_request = False
        slot, self._slot = self._slot, None
        assert slot is not None
        slot.keep_alive = self.parser.should_keep_alive()
        if self._refused:
            self._answer_here(slot, ApiError(503, "stopping", "the sandbox is stopping"))
            return
        if not self._hot:
            if self._chunked:
                self._relay(b"0\r\n\r\n")
            self._relayed[-1].complete = True
            return
        if self._size > transfer_order.MAX_BODY_BYTES:
            self._answer_here(slot, ApiError(413, "too_large", "a transfer is at most "
                                             f"{transfer_order.MAX_BODY_BYTES:,} bytes"))
            return
        try:
            participant = self._participant()
            order = transfer_order.parse_order(b"".join(self._body))
        except ApiError as exc:
            self._answer_here(slot, exc)
            return
        self.edge.submit(self, slot, participant, order)

    def _participant(self) -> str:
        """The path's participant when this key may act for it (else the refusal), and
        the body's declared type, checked in the order the FastAPI route checks them."""
        authorization = content_type = None
        for name, value in self._headers:
            lower = name.lower()
            if lower == b"authorization":
                authorization = value.decode("latin-1")
            elif lower == b"content-type":
                content_type = value.decode("latin-1")
        path = self._url.split(b"?", 1)[0]
        participant = unquote(path[len(_PREFIX):-len(_SUFFIX)].decode("latin-1"))
        who = access.principal(self.edge.ring, access.bearer(authorization))
        access.acting(who, participant)
        access.must_know(self.edge.known, participant)
        refused = transfer_order.content_type_error(content_type)
        if refused is not None:
            raise refused
        return participant

    # ------------------------------------------------------------------ answers

    def _answer_here(self, slot: Slot, exc: ApiError) -> None:
        self.finish(slot, exc.status, refusal(exc, slot.keep_alive), counted=self._hot)

    def finish(self, slot: Slot, status: int, data: bytes, counted: bool = True) -> None:
        """An answer made here (a transfer's, a refusal), written in its turn."""
        if counted:
            self.edge.counted(status, slot.started)
        slot.chunks.append(data)
        slot.done = True
        self._write_ready()

    def _write_ready(self) -> None:
        """Write the answers at the head of the queue that are complete; the one being
        relayed streams as it comes when it is at the head."""
        transport = self.transport
        while self.slots and transport is not None and not self.closing:
            head = self.slots[0]
            if head.chunks:
                transport.write(b"".join(head.chunks) if len(head.chunks) > 1
                                else head.chunks[0])
                head.chunks.clear()
            if not head.done:
                return
            self.slots.popleft()
            if not head.keep_alive:
                self.close()
                return
        if self.edge.stopping:
            self.stop_if_idle()

    def stop_if_idle(self) -> None:
        if not self.slots and not self.mid_request:
            self.close()

    def close(self) -> None:
        if not self.closing and self.transport is not None:
            self.closing = True
            self.transport.close()

    def too_slow(self) -> None:
        """The request took longer than REQUEST_S to arrive: 408, then close."""
        self._fail(ApiError(408, "request_timeout", f"the request was not read whole within "
                                                    f"{REQUEST_S:g} s of its first byte"))

    def _fail(self, exc: ApiError) -> None:
        """Unreadable input: answer it after what came before, then close."""
        if self.transport is not None:
            self.transport.pause_reading()
        slot, self._slot = self._slot, None
        self.mid_request = False
        if slot is not None and self._relayed and self._relayed[-1].slot is slot:
            self.close()  # (part of it may be with the application already)
            return
        if slot is None:
            slot = Slot()
            self.slots.append(slot)
        slot.keep_alive = False
        self.finish(slot, exc.status, refusal(exc, False), counted=False)

    # ------------------------------------------------------------------ the relay

    def _relay(self, data: bytes) -> None:
        """Part of the request being read, for the application."""
        request = self._relayed[-1]
        if request is self._sending and self.upstream is not None:
            self.upstream.send(data)
        else:
            request.parts.append(data)

    def _send_next(self) -> None:
        """Send the next request waiting to the application, when none is there."""
        if self._sending is not None or not self._relayed or self.closing:
            return
        request = self._sending = self._relayed[0]
        if self.upstream is None:
            self.upstream = Upstream(self)
            self.edge.loop.create_task(self.upstream.connect(self.edge.upstream))
        self.upstream.head = request.head
        for data in request.parts:
            self.upstream.send(data)
        request.parts.clear()

    def relay_answer(self, data: bytes) -> None:
        if self._sending is not None:
            self._sending.answered = True
            self._sending.slot.chunks.append(data)
            if self.slots and self.slots[0] is self._sending.slot:
                self._write_ready()

    def relay_done(self, keep_alive: bool) -> None:
        request, self._sending = self._sending, None
        if request is None:
            return
        self._relayed.popleft()
        request.slot.keep_alive = request.slot.keep_alive and keep_alive
        request.slot.done = True
        self._write_ready()
        self._read_or_not()
        self._send_next()

    def relay_failed(self) -> None:
        """The application's connection ended before its answer was complete."""
        request, self._sending = self._sending, None
        self.upstream = None
        if request is None:
            return
        self._relayed.popleft()
        if request.answered:
            self.close()  # part of an answer may have gone: the connection cannot go on
            return
        request.slot.keep_alive = False
        self.finish(request.slot, 503, refusal(ApiError(503, "stopping", "the sandbox is "
                                                        "stopping"), False), counted=False)


class Upstream(asyncio.Protocol):
    """A connection to the application (the engine's process) for one client connection;
    the application's answer is relayed as it comes, its end found by a response parser."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self._pending: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)
        self._status = 0
        #: the request answered is a HEAD (no body follows the answer's head)
        self.head = False

    async def connect(self, path: str) -> None:
        try:
            await self.conn.edge.loop.create_unix_connection(lambda: self, path)
        except OSError:
            self.conn.relay_failed()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        if self.conn.closing:  # (the client went away while this connected)
            transport.close()
            return
        transport.set_write_buffer_limits(high=RELAY_HIGH_BYTES)
        if self._pending:
            transport.write(b"".join(self._pending))
            self._pending.clear()

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
        else:
            self._pending.append(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        self.conn.upstream_full(True)

    def resume_writing(self) -> None:
        self.conn.upstream_full(False)

    def data_received(self, data: bytes) -> None:
        self.conn.relay_answer(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.conn.close()

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self.head and self._status >= 200:  # (no body follows)
            self._complete()

    def on_message_complete(self) -> None:
        if self._status < 200 or self.head:
            return  # an interim answer (100 Continue): the answer follows
        self._complete()

    def _complete(self) -> None:
        keep_alive = self._parser.should_keep_alive()
        self._parser = httptools.HttpResponseParser(self)
        if not keep_alive:
            self.close()
            self.conn.upstream = None
        self.conn.relay_done(keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn.upstream is self:
            self.conn.relay_failed()


# ---------------------------------------------------------------------- the process


def run(public: socket.socket, link: socket.socket, upstream: str, ring: KeyRing) -> None:
    """The edge process's life: serve until the engine's process says stop or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (the parent stops everything)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def main() -> None:
        edge = Edge(ring, upstream)
        await edge.serve(public, link)

    try:
        loop.run_until_complete(main())
    except Exception as exc:
        log.error("the HTTP edge stopped: %s", exc)
    finally:
        with contextlib.suppress(Exception):
            loop.close()


def fork(public: socket.socket, link: socket.socket, upstream: str, ring: KeyRing,
         parents_end: socket.socket) -> int:
    """Start the edge process (forked: it inherits the sockets and the keys); its pid.
    ``parents_end`` is the link's other end: the child closes its copy, so that the link
    reads end-of-file once the engine's process is gone, even if it never spoke (a store
    that would not open, say), and the edge ends instead of holding the port."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 0
        try:
            parents_end.close()
            run(public, link, upstream, ring)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    return pid
