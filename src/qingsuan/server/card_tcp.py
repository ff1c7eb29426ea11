"""ISO 8583 over TCP: the card switch's port (``qingsuan serve``).

One asyncio event loop (uvloop when installed) does the connections, the framing and the
ISO 8583 edge; the core (engine + durable log) runs in a child process by default, so
parsing and encoding on one core overlap with deciding and fsyncing on the other. The edge
batches what arrived during one turn of the loop into one group commit; up to
:data:`PIPELINE_DEPTH` chunks are with the core at once; the core takes every chunk waiting
into one group commit (so commits grow with the load) and answers them in order.

Guarantees:

* an answer is written only after its request is durable in the log;
* responses on one connection may come in a different order than the requests (sign-on
  and format errors are answered at once): match them by STAN, as acquirers do;
* no input crashes the server: a frame that cannot be read is answered with 30 or dropped
  and logged; an impossible length header closes that connection only;
* SIGTERM (or SIGINT): stop accepting, stop reading, answer everything already received,
  close the log, exit 0. Nothing acknowledged is lost, nothing received is left unanswered.

Logs name connections by peer address and never hold card data (reasons from the edge mask
PANs; PIN blocks and MACs are never logged).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final, cast

from qingsuan.cards.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameFormat, FramingError
from qingsuan.cards.framing import frame as frame_payload
from qingsuan.server.card_edge import EdgeConfig, Forward, Reply, inbound, outbound

log = logging.getLogger("qingsuan.serve")

#: chunks with the core at once: the core takes all that wait into one group commit
PIPELINE_DEPTH: Final = 64
#: requests of one chunk at most (the edge sends a chunk per turn of its loop)
MAX_BATCH: Final = 64
#: requests of one group commit at most
MAX_GROUP: Final = 1024
#: a connection with this many unanswered requests is not read until it falls to half
MAX_UNANSWERED_PER_CONNECTION: Final = 4096
MAX_CONNECTIONS: Final = 1024
#: at shutdown, how long peers get to close after their last answer
CLOSE_WAIT_S: Final = 3.0

CoreFactory = Callable[[], Any]


# ---------------------------------------------------------------------- the core, two ways


class InlineCore:
    """The core in the server's own process (one CPU, tests)."""

    def __init__(self, factory: CoreFactory) -> None:
        self.core = factory()
        self.on_answers: Callable[[list[dict[str, Any]]], None] = lambda _: None
        self.on_failure: Callable[[str], None] = lambda _: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arm()

    def _arm(self) -> None:
        assert self._loop is not None
        delay_s = max(0.0, (self.core.next_wakeup_us() - self.core.clock.now_us()) / 1e6)
        self._timer = self._loop.call_later(delay_s, self._wake)

    def _wake(self) -> None:
        try:
            self.core.tick_if_due()
        except Exception as exc:  # the engine is fail-stop
            self.on_failure(f"{type(exc).__name__}: {exc}")
            return
        self._arm()

    def submit(self, batch: list[dict[str, str]]) -> None:
        try:
            answers = self.core.process(batch)
        except Exception as exc:
            self.on_failure(f"{type(exc).__name__}: {exc}")
            return
        assert self._loop is not None
        self._loop.call_soon(self.on_answers, answers)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.core.close()


def _core_main(conn: Connection, parent_end: Connection, factory: CoreFactory) -> None:
    """The child process: open the core, then answer batches until told to stop, or until
    the parent is gone (its end of the pipe closes: EOF)."""
    parent_end.close()  # inherited by the fork: held open, the parent's death is never seen
    try:
        core = factory()
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    try:
        while True:
            wait_s = max(0.0, (core.next_wakeup_us() - core.clock.now_us()) / 1e6)
            if not conn.poll(wait_s):
                core.tick_if_due()
                continue
            batch = conn.recv()
            if batch is None:
                break
            # Group commit adapts to the load: take every chunk already waiting (up to
            # MAX_GROUP requests) into one commit; the answers go back in one message.
            stop = False
            while len(batch) < MAX_GROUP and conn.poll(0):
                more = conn.recv()
                if more is None:
                    stop = True
                    break
                batch += more
            conn.send(("answers", core.process(batch)))
            if stop:
                break
    except (EOFError, OSError):
        pass  # the parent is gone: close the log and end (nothing unanswered was acked)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        core.close()
        with contextlib.suppress(OSError):
            conn.send(("closed", None))


class ProcessCore:
    """The core in a child process, fed through a pipe; answers come back in order."""

    def __init__(self, factory: CoreFactory) -> None:
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_core_main, args=(child, self._conn, factory),
                                 name="qingsuan-core", daemon=True)
        self._proc.start()
        child.close()
        kind, detail = self._conn.recv()
        if kind != "ready":
            self._proc.join()
            raise RuntimeError(f"the core did not start: {detail}")
        self.on_answers: Callable[[list[dict[str, Any]]], None] = lambda _: None
        self.on_failure: Callable[[str], None] = lambda _: None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            kind, detail = self._conn.recv()
        except (EOFError, OSError):
            kind, detail = "failed", "the core process ended"
        if kind == "answers":
            self.on_answers(detail)
        elif kind == "failed":
            assert self._loop is not None
            self._loop.remove_reader(self._conn.fileno())
            self.on_failure(str(detail))

    def submit(self, batch: list[dict[str, str]]) -> None:
        self._conn.send(batch)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._conn.fileno())
        try:
            self._conn.send(None)
            while True:  # drain until the core says it closed its log
                kind, _ = self._conn.recv()
                if kind in ("closed", "failed"):
                    break
        except (EOFError, OSError):
            pass
        self._proc.join(timeout=30)
        self._conn.close()


# ---------------------------------------------------------------------- connections


class _Connection(asyncio.Protocol):
    def __init__(self, server: CardServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(server.frame_format, server.max_frame)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.unanswered = 0
        self.paused = False
        self.out: list[bytes] = []
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self.server.connections) >= MAX_CONNECTIONS or self.server.stopping:
            log.warning("%s refused: %s", self.peer,
                        "stopping" if self.server.stopping else "too many connections")
            transport.close()
            return
        self.server.connections.add(self)
        log.info("%s connected", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closed.set()
        log.info("%s disconnected", self.peer)

    def data_received(self, data: bytes) -> None:
        if self.server.stopping:
            return  # closing: what comes now is not read (and never was acknowledged)
        try:
            frames = self.decoder.feed(data)
        except FramingError as exc:
            for raw in exc.frames:
                self.server.received(self, raw)
            self.server.submit()
            log.warning("%s framing error, closing the connection: %s", self.peer, exc)
            self.server.stats.framing_errors += 1
            self.flush()
            assert self.transport is not None
            self.transport.close()
            return
        for raw in frames:
            self.server.received(self, raw)
        self.server.submit()  # to the core at once: it decides while we read the others
        self.flush()
        if self.unanswered >= MAX_UNANSWERED_PER_CONNECTION and not self.paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self.paused = True

    def send(self, raw: bytes) -> None:
        self.out.append(frame_payload(raw, self.server.frame_format))

    def flush(self) -> None:
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.out))
        self.out.clear()
        if self.paused and self.unanswered <= MAX_UNANSWERED_PER_CONNECTION // 2 and \
                self.transport is not None and not self.server.stopping:
            self.transport.resume_reading()
            self.paused = False


@dataclass
class ServerStats:
    requests: int = 0
    answered: int = 0
    edge_replies: int = 0
    dropped: int = 0
    framing_errors: int = 0
    batches: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)


class CardServer:
    """The port: connections and framing in, batches to the core, answers out."""

    def __init__(self, cfg: EdgeConfig, core: InlineCore | ProcessCore, *,
                 frame_format: FrameFormat = "binary2",
                 max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.cfg = cfg
        self.core = core
        self.frame_format: FrameFormat = frame_format
        self.max_frame = max_frame
        self.connections: set[_Connection] = set()
        self.pending: list[tuple[_Connection, Forward]] = []
        self.with_core: collections.deque[list[tuple[_Connection, Forward]]] = \
            collections.deque()
        self.stats = ServerStats()
        self.stopping = False
        self.failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._listener: asyncio.Server | None = None
        core.on_answers = self._answered
        core.on_failure = self._failed

    # -- request path

    def received(self, conn: _Connection, raw: bytes) -> None:
        self.stats.requests += 1
        result = inbound(raw, self.cfg)
        if isinstance(result, Reply):
            if result.raw is None:
                self.stats.dropped += 1
                log.warning("%s dropped a frame: %s", conn.peer, result.note)
            else:
                self.stats.edge_replies += 1
                if result.note.startswith("format error") or "MAC" in result.note:
                    log.warning("%s %s", conn.peer, result.note)
                conn.send(result.raw)
            return
        conn.unanswered += 1
        self.pending.append((conn, result))

    def submit(self) -> None:
        """Hand what is pending to the core, in chunks, as far as the pipeline allows."""
        while self.pending and len(self.with_core) < PIPELINE_DEPTH and self.failure is None:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            self.with_core.append(batch)
            self.stats.batches += 1
            self.core.submit([fwd.fields for _, fwd in batch])
        self._check_done()

    def _answered(self, answers: list[dict[str, Any]]) -> None:
        # the answers of one or more chunks, in the order they were submitted
        batch: list[tuple[_Connection, Forward]] = []
        while len(batch) < len(answers):
            batch += self.with_core.popleft()
        assert len(batch) == len(answers), (len(batch), len(answers))
        touched: set[_Connection] = set()
        cfg = self.cfg
        codes = self.stats.codes
        for (conn, fwd), answer in zip(batch, answers, strict=True):
            conn.unanswered -= 1
            codes[answer["39"]] += 1
            conn.send(outbound(fwd, answer, cfg))
            touched.add(conn)
        self.stats.answered += len(batch)
        for conn in touched:
            conn.flush()
        if self.pending:
            self.submit()
        self._check_done()

    def _failed(self, reason: str) -> None:
        """The engine stopped (fail-stop): answer nothing more; the operator restarts from
        the log, which holds everything acknowledged."""
        log.error("the core failed, stopping: %s", reason)
        self.failure = reason
        self.stop()

    # -- lifecycle

    async def serve(self, host: str, port: int,
                    ready: Callable[[str, int], None] | None = None) -> int:
        """Listen until stopped; returns the exit status (0 clean, 1 core failure)."""
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self.core.start(self._loop)
        self._listener = await self._loop.create_server(lambda: _Connection(self), host, port,
                                                        reuse_address=True, backlog=1024)
        sock = self._listener.sockets[0].getsockname()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
                self._loop.add_signal_handler(sig, self.stop)
        log.info("listening on %s:%s (%s frames)", sock[0], sock[1], self.frame_format)
        if ready is not None:
            ready(str(sock[0]), int(sock[1]))
        await self._done
        await self._close_connections()
        self.core.close()
        log.info("stopped: %d requests, %d answered by the switch, %d at the edge, %d dropped",
                 self.stats.requests, self.stats.answered, self.stats.edge_replies,
                 self.stats.dropped)
        return 1 if self.failure is not None else 0

    async def _close_connections(self) -> None:
        """Half-close each connection after its last answer (FIN, not RST: closing a
        socket with unread input would reset it and could destroy answers still in the
        peer's buffer), read and discard until the peer closes, at most a few seconds."""
        conns = list(self.connections)
        for conn in conns:
            conn.flush()
            t = conn.transport
            if t is None or t.is_closing():
                continue
            if t.can_write_eof():
                t.write_eof()
            t.resume_reading()
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.closed.wait()) for c in conns],
                               timeout=CLOSE_WAIT_S)
        for conn in conns:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.close()

    def stop(self) -> None:
        """Stop accepting and reading; finish what was received; then end :meth:`serve`."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: answering what was received")
        if self._listener is not None:
            self._listener.close()
        for conn in self.connections:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.pause_reading()
        if self.failure is not None:  # nothing more will be answered
            self.pending.clear()
            self.with_core.clear()
        self._check_done()

    def _check_done(self) -> None:
        if self.stopping and not self.pending and not self.with_core and \
                self._done is not None and not self._done.done():
            self._done.set_result(None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (several times faster for many small messages)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
