"""ISO 8583 over TCP: the card switch's port (``qingsuan serve``).

One asyncio event loop (uvloop when installed) does the connections, the framing and the
ISO 8583 edge; the core (engine + durable log) runs in a child process by default, so
parsing and encoding on one CPU overlap with deciding and fsyncing on the other. Each
connection's requests go to the core as a chunk as soon as they are read (up to
:data:`PIPELINE_DEPTH` chunks with the core at once); the core takes every chunk waiting
into one group commit (so commits grow with the load) and answers them in order; the edge
encodes the responses. The two processes talk over a socket pair (length-prefixed pickles; the
edge's end is an asyncio transport, so it never blocks).

Guarantees:

* an answer is written only after its request is durable in the log;
* responses on one connection may come in a different order than the requests (sign-on
  and format errors are answered at once): match them by STAN, as acquirers do;
* no input crashes the server: a frame that cannot be read is answered with 30 or dropped
  and logged; an impossible length header ends that connection only (after answering
  what came before it); a peer that does not read its answers is not read either, and is
  cut off past :data:`WRITE_BUFFER_MAX`;
* SIGTERM (or SIGINT): stop accepting, stop reading, answer everything already received,
  close the log, exit 0. Nothing acknowledged is lost, nothing received is left unanswered.

Logs name connections by peer address and never hold card data (reasons from the edge mask
PANs; PIN blocks and MACs are never logged).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import multiprocessing as mp
import pickle
import re
import select
import signal
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from qingsuan.cards.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameFormat, FramingError
from qingsuan.cards.framing import frame as frame_payload
from qingsuan.server.card_edge import (
    EdgeConfig,
    Forward,
    Reply,
    SwitchAnswer,
    inbound,
    outbound,
)

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
#: at shutdown, how long the core process gets to close its log
CORE_CLOSE_S: Final = 60.0
#: answers buffered for a peer before its reading pauses, and before it is cut off
WRITE_BUFFER_HIGH: Final = 1 << 20
WRITE_BUFFER_MAX: Final = 16 << 20
#: warnings about one peer's input logged in full before they are sampled
WARNINGS_IN_FULL: Final = 20

#: the cyclic collector's thresholds in the server's processes (CPython's: 700, 10, 10).
#: What a request allocates is freed at once by reference counting or kept for the life
#: of the process (the switch's transactions, which the core also freezes): frequent
#: young collections find nothing and cost a few per cent of the CPU.
GC_THRESHOLDS: Final = (20_000, 20, 20)

CoreFactory = Callable[[], Any]


# ---------------------------------------------------------------------- the core, two ways


Item = bytes  # a request's logged body (card_edge.request_body)


class InlineCore:
    """The core in the server's own process (one CPU, tests)."""

    def __init__(self, factory: CoreFactory) -> None:
        self.core = factory()
        self.on_answers: Callable[[list[SwitchAnswer]], None] = lambda _: None
        self.on_failure: Callable[[str], None] = lambda _: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failed = False

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
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
            self._fail(exc)
            return
        self._arm()

    def submit(self, batch: list[Item]) -> None:
        if self._failed:
            return
        try:
            answers = self.core.process(batch)
        except Exception as exc:
            self._fail(exc)
            return
        assert self._loop is not None
        self._loop.call_soon(self.on_answers, answers)

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        assert self._loop is not None
        self._loop.call_soon(self.on_failure, failure_reason(exc))

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.core.close()


# Between the edge and the core process: a socket pair carrying length-prefixed pickles
# (both ends are this program). The edge's end is an asyncio transport (it never blocks,
# writes are buffered); the core's end is a plain blocking socket.
_MSG_HEADER: Final = struct.Struct(">I")
MAX_MESSAGE: Final = 1 << 28


def _pack(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=5)
    assert len(data) <= MAX_MESSAGE, len(data)
    return _MSG_HEADER.pack(len(data)) + data


class _Messages:
    """Incremental reader of the length-prefixed messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        while len(buf) - pos >= _MSG_HEADER.size:
            (n,) = _MSG_HEADER.unpack_from(buf, pos)
            if n > MAX_MESSAGE:
                raise ValueError(f"a message of {n} bytes between edge and core")
            if len(buf) - pos - _MSG_HEADER.size < n:
                break
            start = pos + _MSG_HEADER.size
            out.append(pickle.loads(buf[start:start + n]))
            pos = start + n
        del buf[:pos]
        return out


class _ParentGone(Exception):
    pass


def _core_main(sock: socket.socket, parent_end: socket.socket, factory: CoreFactory
               ) -> None:
    """The child process: open the core, then answer batches until told to stop, or until
    the parent is gone (its end of the socket pair closes: EOF)."""
    parent_end.close()  # inherited by the fork: held open, the parent's death is never seen
    # Signals are for the parent (a terminal's Ctrl-C and `kill -- -PGID` reach the whole
    # group): it stops the core through the socket, after answering what it received.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        core = factory()
    except Exception as exc:
        sock.sendall(_pack(("failed", failure_reason(exc))))
        return
    sock.sendall(_pack(("ready", None)))
    reader = _Messages()
    waiting: collections.deque[Any] = collections.deque()

    def receive(timeout_s: float | None) -> None:
        """Wait up to ``timeout_s`` for input, then take everything available."""
        ready, _, _ = select.select([sock], [], [], timeout_s)
        while ready:
            try:
                data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not data:
                raise _ParentGone
            waiting.extend(reader.feed(data))

    try:
        while True:
            if not waiting:
                receive(max(0.0, (core.next_wakeup_us() - core.clock.now_us()) / 1e6))
                if not waiting:
                    core.tick_if_due()
                    continue
            else:
                receive(0)
            # Group commit adapts to the load: every chunk already waiting (up to MAX_GROUP
            # requests) goes into one commit; the answers go back in one message.
            batch: list[Item] = []
            stop = False
            while waiting and len(batch) < MAX_GROUP:
                chunk = waiting.popleft()
                if chunk is None:
                    stop = True
                    break
                batch += chunk
            if batch:
                sock.sendall(_pack(("answers", core.process(batch))))
            if stop:
                break
    except (_ParentGone, BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone: close the log and end (nothing unanswered was acked)
    except Exception as exc:
        with contextlib.suppress(OSError):
            sock.sendall(_pack(("failed", failure_reason(exc))))
    finally:
        core.close()
        with contextlib.suppress(OSError):
            sock.sendall(_pack(("closed", None)))


class _CoreLink(asyncio.Protocol):
    """The edge's end of the socket pair."""

    def __init__(self, owner: ProcessCore) -> None:
        self.owner = owner
        self.reader = _Messages()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.reader.feed(data)
        except Exception as exc:
            self.owner.ended(f"garbled message from the core: {failure_reason(exc)}")
            return
        for kind, detail in messages:
            if kind == "answers":
                self.owner.on_answers(detail)
            elif kind == "failed":
                self.owner.ended(str(detail))
            elif kind == "closed":
                self.owner.closed_log()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.ended("the core process ended")


class ProcessCore:
    """The core in a child process, fed through a socket pair; answers come back in
    order."""

    def __init__(self, factory: CoreFactory) -> None:
        ctx = mp.get_context("fork")
        self._sock, child = socket.socketpair()
        self._proc = ctx.Process(target=_core_main, args=(child, self._sock, factory),
                                 name="qingsuan-core", daemon=True)
        self._proc.start()
        child.close()
        reader = _Messages()
        messages: list[Any] = []
        while not messages:  # the handshake, blocking: the loop is not running yet
            data = self._sock.recv(65536)
            if not data:
                self._proc.join()
                raise RuntimeError("the core process ended before it was ready")
            messages = reader.feed(data)
        kind, detail = messages[0]
        if kind != "ready":
            self._proc.join()
            raise RuntimeError(f"the core did not start: {detail}")
        self._sock.setblocking(False)
        self.on_answers: Callable[[list[SwitchAnswer]], None] = lambda _: None
        self.on_failure: Callable[[str], None] = lambda _: None
        self._transport: asyncio.Transport | None = None
        self._closing = False
        self._ended = False
        self._log_closed: asyncio.Future[None] | None = None

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._log_closed = loop.create_future()
        transport, _ = await loop.connect_accepted_socket(lambda: _CoreLink(self),
                                                          self._sock)
        self._transport = transport

    def submit(self, batch: list[Item]) -> None:
        if self._transport is not None and not self._ended:
            self._transport.write(_pack(batch))

    def ended(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._log_closed is not None and not self._log_closed.done():
            self._log_closed.set_result(None)
        if not self._closing:
            self.on_failure(reason)

    def closed_log(self) -> None:
        if self._log_closed is not None and not self._log_closed.done():
            self._log_closed.set_result(None)

    async def aclose(self) -> None:
        """Tell the core to stop, wait until it has closed its log, reap the process."""
        self._closing = True
        if self._transport is not None and not self._ended:
            self._transport.write(_pack(None))
            if self._log_closed is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._log_closed), CORE_CLOSE_S)
        if self._transport is not None:
            self._transport.close()
        await asyncio.get_running_loop().run_in_executor(None, self._proc.join, CORE_CLOSE_S)
        if self._proc.is_alive():  # it would not stop: its log is re-verified on reopen
            log.error("the core process did not stop in %s s: killing it", CORE_CLOSE_S)
            self._proc.kill()
            self._proc.join()


_DIGITS = re.compile(r"\d{12,19}")


def failure_reason(exc: BaseException) -> str:
    """An exception as a line for the log and the operator, with any run of 12 to 19
    digits (a card number, perhaps) masked."""
    from qingsuan.cards.iso8583 import mask_pan

    return _DIGITS.sub(lambda m: mask_pan(m.group()), f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------- connections


class _Connection(asyncio.Protocol):
    def __init__(self, server: CardServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(server.frame_format, server.max_frame)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.unanswered = 0
        self.paused = False          # reading paused: too many unanswered
        self.write_paused = False    # reading paused: the peer does not read its answers
        self.finishing = False       # no more input (EOF, bad header): close when answered
        self.out: list[bytes] = []
        self.closed = asyncio.Event()
        self.warnings = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self.server.connections) >= MAX_CONNECTIONS or self.server.stopping:
            log.warning("%s refused: %s", self.peer,
                        "stopping" if self.server.stopping else "too many connections")
            transport.close()
            self.closed.set()
            return
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.server.connections.add(self)
        log.info("%s connected", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closed.set()
        log.info("%s disconnected", self.peer)

    def eof_received(self) -> bool:
        """The peer has sent all it will (half-close): answer what it sent, then close."""
        self.finishing = True
        self.flush()
        return True  # keep the transport open for the answers

    def pause_writing(self) -> None:
        """The peer does not read its answers: stop reading its requests."""
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._maybe_resume()

    def data_received(self, data: bytes) -> None:
        if self.server.stopping or self.finishing:
            return  # closing: what comes now is not read (and never was acknowledged)
        try:
            frames = self.decoder.feed(data)
        except FramingError as exc:
            for raw in exc.frames:
                self.server.received(self, raw)
            self.server.submit()
            self.warn("framing error, closing the connection once answered: %s", exc)
            self.server.stats.framing_errors += 1
            self.finishing = True
            assert self.transport is not None
            self.transport.pause_reading()
            self.flush()
            return
        for raw in frames:
            self.server.received(self, raw)
        self.server.submit()  # to the core at once: it decides while we read the others
        self.flush()
        if self.unanswered >= MAX_UNANSWERED_PER_CONNECTION and not self.paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self.paused = True

    def warn(self, message: str, *args: object) -> None:
        """A warning about this peer's input: the first few, then one in a thousand (a
        stream of garbage must not flood the log)."""
        self.warnings += 1
        if self.warnings <= WARNINGS_IN_FULL or self.warnings % 1000 == 0:
            log.warning("%s " + message + (f" ({self.warnings} so far)" if
                                           self.warnings > WARNINGS_IN_FULL else ""),
                        self.peer, *args)

    def send(self, raw: bytes) -> None:
        self.out.append(frame_payload(raw, self.server.frame_format))

    def flush(self) -> None:
        t = self.transport
        if self.out and t is not None and not t.is_closing():
            t.write(b"".join(self.out))
        self.out.clear()
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > WRITE_BUFFER_MAX:
            log.warning("%s does not read its answers: closing the connection", self.peer)
            t.abort()
            return
        if self.finishing and not self.unanswered:
            # everything it sent is answered: end our side too (FIN after the answers)
            if t.can_write_eof():
                t.write_eof()
            t.close()
            return
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        t = self.transport
        if t is None or t.is_closing() or self.server.stopping or self.finishing or \
                self.write_paused:
            return
        if self.paused and self.unanswered > MAX_UNANSWERED_PER_CONNECTION // 2:
            return
        self.paused = False
        t.resume_reading()


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
                conn.warn("dropped a frame: %s", result.note)
            else:
                self.stats.edge_replies += 1
                if result.note.startswith("format error") or "MAC" in result.note:
                    conn.warn("%s", result.note)
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
            self.core.submit([fwd.body for _, fwd in batch])
        self._check_done()

    def _answered(self, answers: list[SwitchAnswer]) -> None:
        """The answers of one or more chunks, in the order they were submitted."""
        if self.failure is not None:
            return
        batch: list[tuple[_Connection, Forward]] = []
        while len(batch) < len(answers) and self.with_core:
            batch += self.with_core.popleft()
        if len(batch) != len(answers):  # the core and the edge disagree: stop, answer nothing
            self._failed(f"{len(answers)} answers for {len(batch)} requests")
            return
        touched: set[_Connection] = set()
        codes = self.stats.codes
        cfg = self.cfg
        try:
            for (conn, fwd), answer in zip(batch, answers, strict=True):
                try:
                    raw = outbound(fwd, answer, cfg)
                except Exception as exc:  # never expected: answer 96 rather than nothing
                    log.error("cannot encode an answer (%s): 96 instead", failure_reason(exc))
                    answer = ("96", "", "", None)
                    raw = outbound(fwd, answer, cfg)
                conn.unanswered -= 1
                codes[answer[0]] += 1
                conn.send(raw)
                touched.add(conn)
            self.stats.answered += len(batch)
        finally:
            for conn in touched:
                conn.flush()
        if self.pending:
            self.submit()
        self._check_done()

    def _failed(self, reason: str) -> None:
        """The engine stopped (fail-stop): answer nothing more; the operator restarts from
        the log, which holds everything acknowledged."""
        if self.failure is None:
            log.error("the core failed, stopping: %s", reason)
            self.failure = reason
        self.pending.clear()
        self.with_core.clear()
        if self.stopping:
            self._check_done()
        else:
            self.stop()

    # -- lifecycle

    async def serve(self, host: str, port: int,
                    ready: Callable[[str, int], None] | None = None) -> int:
        """Listen until stopped; returns the exit status (0 clean, 1 core failure)."""
        previous = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            return await self._serve(host, port, ready)
        finally:
            gc.set_threshold(*previous)

    async def _serve(self, host: str, port: int,
                     ready: Callable[[str, int], None] | None) -> int:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        await self.core.start(self._loop)
        try:
            self._listener = await self._loop.create_server(
                lambda: _Connection(self), host, port, reuse_address=True, backlog=1024)
        except OSError:
            await self.core.aclose()
            raise
        sock = self._listener.sockets[0].getsockname()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
                self._loop.add_signal_handler(sig, self.stop)
        log.info("listening on %s:%s (%s frames)", sock[0], sock[1], self.frame_format)
        if ready is not None:
            ready(str(sock[0]), int(sock[1]))
        await self._done
        await self._close_connections()
        await self.core.aclose()
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
