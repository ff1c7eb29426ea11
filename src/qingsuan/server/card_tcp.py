"""ISO 8583 over TCP: the card switch's port (``qingsuan serve``).

One asyncio event loop (uvloop when installed) does the connections, the framing and the
ISO 8583 edge; the core (engine + durable log) runs in a child process by default, so
parsing and encoding on one CPU overlap with deciding and fsyncing on the other. Frames
are queued per connection as they are read, decoded in the connection's turn (round-robin)
and sent to the core in chunks at once (up to :data:`MAX_IN_CORE` requests with it); the
core takes every chunk waiting into one group commit (so commits grow with the load) and
answers them in order; the edge encodes the responses. The two processes talk over a
socket pair (length-prefixed pickles; the edge's end is an asyncio transport, so it never
blocks).

Guarantees:

* an answer is written only after its request is durable in the log;
* responses on one connection may come in a different order than the requests (sign-on
  and format errors are answered at once): match them by STAN, as acquirers do;
* no input crashes the server: a frame that cannot be read is answered with 30 or dropped
  and logged; an impossible length header ends that connection only (after answering
  what came before it);
* no client starves the others (:class:`Limits`): connections are served round-robin;
  idle, slow (a frame not completed in time) and non-reading peers are cut off; a full
  table admits a newcomer by closing the idlest connection; refusals are logged sampled;
* SIGTERM (or SIGINT): stop accepting, stop reading, answer everything already received,
  close the log, exit 0. Nothing acknowledged is lost, nothing received is left
  unanswered (but what a connection the server cut off, or whose peer went away, had
  sent and was not yet with the core: never logged, nobody to answer).

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

from qingsuan.cards.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameFormat, FramingError
from qingsuan.cards.framing import frame as frame_payload
from qingsuan.collector import GC_THRESHOLDS, few_collections
from qingsuan.server.card_edge import (
    EdgeConfig,
    Forward,
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
#: requests with the core at most: a request read now waits behind no more than one
#: group commit (a greedy peer's backlog stays at the edge, in its connection's queue)
MAX_IN_CORE: Final = MAX_GROUP
#: requests one connection puts in a chunk before the next connection's turn (fairness)
QUANTUM: Final = 4
#: frames decoded in one go before the loop turns to its other work (then it goes on)
DECODE_BUDGET: Final = MAX_GROUP
#: a connection with this many unanswered requests is not read until it falls to half
MAX_UNANSWERED_PER_CONNECTION: Final = 4096
#: a peer whose answers pile up past this many times the write buffer is cut off at once
WRITE_BUFFER_HARD_FACTOR: Final = 4
#: at shutdown, how long peers get to close after their last answer
CLOSE_WAIT_S: Final = 3.0
#: at shutdown, how long the core process gets to close its log
CORE_CLOSE_S: Final = 60.0
#: the sweep for timeouts runs this many times per shortest timeout, at most once a second
SWEEPS_PER_TIMEOUT: Final = 4
#: warnings of one kind are counted over this window, then summed up
WARNING_WINDOW_S: Final = 60.0


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


# ---------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """What the port allows each client: the ``serve`` options of the same names
    (docs/SERVE.md says which attack each one stops)."""

    #: connections at once; a newcomer to a full table closes the idlest one
    max_connections: int = 1024
    #: connections at once from one client address
    max_connections_per_client: int = 256
    #: a connection with nothing unanswered and no request for this long is closed
    idle_timeout_ms: int = 120_000
    #: a frame must be complete this long after its first byte arrived
    read_timeout_ms: int = 10_000
    #: answers buffered for a peer before its reading pauses and its drain deadline starts
    write_buffer_bytes: int = 1 << 20
    #: a peer over its write buffer this long is cut off (it does not read its answers)
    drain_timeout_ms: int = 10_000
    #: warnings of one kind logged a minute; the rest are counted and summed up
    warnings_per_minute: int = 60

    def __post_init__(self) -> None:
        for name, low in (("max_connections", 1), ("max_connections_per_client", 1),
                          ("idle_timeout_ms", 1), ("read_timeout_ms", 1),
                          ("write_buffer_bytes", 1024), ("drain_timeout_ms", 1),
                          ("warnings_per_minute", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")

    @property
    def sweep_s(self) -> float:
        shortest_ms = min(self.idle_timeout_ms, self.read_timeout_ms)
        return min(1.0, shortest_ms / 1000 / SWEEPS_PER_TIMEOUT)


class Warnings:
    """Warnings by kind, at most ``per_minute`` of each kind a minute: the rest are counted
    and summed up in one line when the minute ends (and at the stop), so a flood of
    connections or of garbage cannot flood the log."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._now = now
        self._window_start = now()
        self._logged: collections.Counter[str] = collections.Counter()
        self.suppressed: collections.Counter[str] = collections.Counter()
        self.total: collections.Counter[str] = collections.Counter()

    def warn(self, kind: str, message: str, *args: object) -> None:
        self.total[kind] += 1
        if self._logged[kind] < self.per_minute:
            self._logged[kind] += 1
            log.warning(message, *args)
        else:
            self.suppressed[kind] += 1

    def roll(self) -> None:
        """At the end of a window: one line per kind for what was not logged."""
        now = self._now()
        if now - self._window_start >= WARNING_WINDOW_S:
            self.summarise(now)

    def summarise(self, now: float | None = None) -> None:
        now = self._now() if now is None else now
        for kind, n in sorted(self.suppressed.items()):
            log.warning("%d more warnings '%s' in the last %.0f s (logged: the first %d)",
                        n, kind, now - self._window_start, self.per_minute)
        self.suppressed.clear()
        self._logged.clear()
        self._window_start = now


# ---------------------------------------------------------------------- connections


Pending = list[tuple["_Connection", Forward]]  # requests with the core, in order


class _Connection(asyncio.Protocol):
    def __init__(self, server: CardServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(server.frame_format, server.max_frame)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.client = "?"            # the peer's address: the per-client limit counts it
        self.unanswered = 0          # frames read and not answered (queued ones too)
        self.queue: list[bytes] = []  # read, not yet decoded (that waits for its turn)
        self.queued = False          # in the server's round-robin of connections to serve
        self.paused = False          # reading paused: too many unanswered
        self.write_paused = False    # reading paused: the peer does not read its answers
        self.finishing = False       # no more input (EOF, bad header): close when answered
        self.out: list[bytes] = []
        self.closed = asyncio.Event()
        self.active_at = 0.0         # last request read or answer written (loop time)
        self.silent = True           # no complete frame yet: the first to be evicted
        self.partial_since = 0.0     # when the frame being read began (0: none)
        self._drain_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.active_at = self.server.now()
        refusal = self.server.admit(self)
        if refusal is not None:
            kind, reason = refusal
            self.server.stats.refused += 1
            if kind != "stopping":
                self.server.warnings.warn(f"refused: {kind}", "%s refused: %s", self.peer,
                                          reason)
            transport.close()
            self.closed.set()
            return
        buffer_bytes = self.server.limits.write_buffer_bytes
        self.transport.set_write_buffer_limits(high=buffer_bytes)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a fixed kernel buffer too: a peer that does not read is seen
            with contextlib.suppress(OSError):  # after about 3 times this, not 4 MiB more
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
        log.info("%s connected", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        """The peer is gone: what it sent that is not yet decoded is dropped (nobody to
        answer; never logged)."""
        self.server.stats.abandoned += len(self.queue)
        self.unanswered -= len(self.queue)
        self.queue.clear()
        self.server.forget(self)
        self._cancel_drain_timer()
        self.closed.set()
        log.info("%s disconnected", self.peer)

    def cut(self, kind: str, reason: str, *, warn: bool = True, abort: bool = False) -> None:
        """The server ends this connection (a limit): its requests not yet with the core
        are dropped (never logged, never answered: the peer retries or reverses them as
        after any lost connection); the answers of those with the core are discarded."""
        if warn:
            self.server.warnings.warn(kind, "%s %s: closing the connection", self.peer, reason)
        else:
            log.info("%s %s: closing the connection", self.peer, reason)
        self.server.stats.cut[kind] += 1
        self.server.stats.abandoned += len(self.queue)
        self.unanswered -= len(self.queue)
        self.queue.clear()
        self.server.forget(self)
        self.finishing = True
        self._cancel_drain_timer()
        t = self.transport
        if t is not None and not t.is_closing():
            if abort:
                t.abort()  # RST: what it has not read is thrown away
            else:
                t.close()

    def eof_received(self) -> bool:
        """The peer has sent all it will (half-close): answer what it sent, then close."""
        self.finishing = True
        self.flush()
        return True  # keep the transport open for the answers

    def pause_writing(self) -> None:
        """The peer does not read its answers: stop reading its requests, and give it
        the drain deadline to catch up."""
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()
        if self._drain_timer is None and self.server.loop is not None:
            self._drain_timer = self.server.loop.call_later(
                self.server.limits.drain_timeout_ms / 1000, self._not_draining)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._cancel_drain_timer()
        self._maybe_resume()

    def _not_draining(self) -> None:
        self._drain_timer = None
        if self.write_paused:
            self.cut("not reading", f"has not read its answers in "
                     f"{self.server.limits.drain_timeout_ms} ms", abort=True)

    def _cancel_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def data_received(self, data: bytes) -> None:
        if self.server.stopping or self.finishing:
            return  # closing: what comes now is not read (and never was acknowledged)
        server = self.server
        try:
            frames = self.decoder.feed(data)
        except FramingError as exc:
            server.received(self, exc.frames)
            self.warn("framing error, closing the connection once answered: %s", exc)
            server.stats.framing_errors += 1
            self.finishing = True
            self.partial_since = 0.0
            assert self.transport is not None
            self.transport.pause_reading()
            self.flush()
            return
        now = server.now()
        if self.decoder.buffered:  # the read timeout runs from a frame's first byte
            if frames or not self.partial_since:
                self.partial_since = now
        else:
            self.partial_since = 0.0
        if not frames:
            return  # bytes that complete no request are not activity (slow loris)
        self.active_at = now
        server.connections.move_to_end(self)  # the table is kept in order of activity
        if self.silent:
            self.silent = False
            del server.silent[self]
        server.received(self, frames)  # to the core at once: it decides while we read on
        if self.unanswered >= MAX_UNANSWERED_PER_CONNECTION and not self.paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self.paused = True

    def warn(self, message: str, *args: object) -> None:
        """A warning about this peer's input (sampled: a stream of garbage must not flood
        the log)."""
        self.server.warnings.warn("bad input", "%s " + message, self.peer, *args)

    def send(self, raw: bytes) -> None:
        self.out.append(frame_payload(raw, self.server.frame_format))

    def flush(self) -> None:
        t = self.transport
        if self.out and t is not None and not t.is_closing():
            t.write(b"".join(self.out))
        self.out.clear()
        if t is None or t.is_closing():
            return
        if t.get_write_buffer_size() > self.server.write_buffer_hard_bytes:
            self.cut("not reading", "does not read its answers", abort=True)
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
        if self.partial_since:  # the read timeout does not run while we do not read
            self.partial_since = self.server.now()
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
    #: connections refused at admission (stopping, per-client limit, table full)
    refused: int = 0
    #: requests dropped unlogged because the server cut their connection off
    abandoned: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    #: connections the server closed, by reason (idle, read timeout, not reading, evicted)
    cut: collections.Counter[str] = field(default_factory=collections.Counter)


class CardServer:
    """The port: connections and framing in, batches to the core, answers out."""

    def __init__(self, cfg: EdgeConfig, core: InlineCore | ProcessCore, *,
                 frame_format: FrameFormat = "binary2",
                 max_frame: int = DEFAULT_MAX_FRAME, limits: Limits | None = None) -> None:
        self.cfg = cfg
        self.core = core
        self.frame_format: FrameFormat = frame_format
        self.max_frame = max_frame
        self.limits = limits or Limits()
        self.write_buffer_hard_bytes = WRITE_BUFFER_HARD_FACTOR * self.limits.write_buffer_bytes
        #: the admitted connections, least recently active first (the idlest goes first)
        self.connections: collections.OrderedDict[_Connection, None] = \
            collections.OrderedDict()
        #: those that have not sent a whole frame yet, oldest first (evicted before all)
        self.silent: collections.OrderedDict[_Connection, None] = collections.OrderedDict()
        self.per_client: collections.Counter[str] = collections.Counter()
        #: connections with requests in their queue, served in turn
        self.ready: collections.deque[_Connection] = collections.deque()
        self.with_core: collections.deque[Pending] = collections.deque()
        self.in_core = 0
        self.stats = ServerStats()
        self.warnings = Warnings(self.limits.warnings_per_minute)
        self.stopping = False
        self.failure: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.now: Callable[[], float] = time.monotonic  # the loop's clock once serving
        self._done: asyncio.Future[None] | None = None
        self._listener: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._submit_soon = False
        core.on_answers = self._answered
        core.on_failure = self._failed

    # -- admission and limits

    def admit(self, conn: _Connection) -> tuple[str, str] | None:
        """Take ``conn`` into the table, or say why not (a kind, for sampling, and a
        reason). A full table makes room by closing its idlest connection: one that has
        not sent a whole request yet (the oldest), else the one with nothing unanswered
        whose last request or answer is the oldest. (Silent ones go first: a flood of new
        connections then turns over among itself, not over the clients at work.)"""
        limits = self.limits
        if self.stopping:
            return "stopping", "stopping"
        if self.per_client[conn.client] >= limits.max_connections_per_client:
            return "per-client limit", (f"{limits.max_connections_per_client} connections "
                                        f"from {conn.client} (--max-connections-per-client)")
        if len(self.connections) >= limits.max_connections:
            idlest = next(iter(self.silent), None) or \
                next((c for c in self.connections if not c.unanswered), None)
            if idlest is None:
                return "table full", (f"{limits.max_connections} connections, all waiting "
                                      "for answers (--max-connections)")
            idlest.cut("evicted", f"{'silent' if idlest.silent else 'idle'} for "
                       f"{self.now() - idlest.active_at:.1f} s, closed to admit {conn.peer} "
                       "(--max-connections)")
        self.connections[conn] = None
        self.silent[conn] = None
        self.per_client[conn.client] += 1
        return None

    def forget(self, conn: _Connection) -> None:
        """``conn`` leaves the table (once: both a cut and the loss of the connection
        come here)."""
        if conn not in self.connections:
            return
        del self.connections[conn]
        self.silent.pop(conn, None)
        self.per_client[conn.client] -= 1
        if not self.per_client[conn.client]:
            del self.per_client[conn.client]

    def _sweep(self) -> None:
        """Close connections past the idle or read timeout; sum up sampled warnings."""
        self._sweeper = None
        if self.stopping:
            return
        now = self.now()
        idle_s = self.limits.idle_timeout_ms / 1000
        read_s = self.limits.read_timeout_ms / 1000
        for conn in list(self.connections):
            if conn.partial_since and now - conn.partial_since > read_s and \
                    not conn.paused and not conn.write_paused:
                conn.cut("read timeout", f"sent part of a frame {now - conn.partial_since:.1f}"
                         f" s ago and not the rest (--read-timeout-ms)")
            elif not conn.unanswered and now - conn.active_at > idle_s:
                conn.cut("idle", f"idle for {now - conn.active_at:.1f} s (--idle-timeout-ms)",
                         warn=False)
        self.warnings.roll()
        assert self.loop is not None
        self._sweeper = self.loop.call_later(self.limits.sweep_s, self._sweep)

    # -- request path

    def received(self, conn: _Connection, frames: list[bytes]) -> None:
        """Frames read from ``conn``: queued as they are (decoding waits for the
        connection's turn, so a peer that sends thousands costs the loop nothing yet)."""
        if frames:
            conn.unanswered += len(frames)
            conn.queue += frames
            if not conn.queued:
                conn.queued = True
                self.ready.append(conn)
        self.submit()

    def _decode(self, conn: _Connection, raw: bytes) -> Forward | None:
        """One frame through the edge: a request for the core, or answered (or dropped)
        here."""
        self.stats.requests += 1
        result = inbound(raw, self.cfg)
        if isinstance(result, Forward):
            return result
        conn.unanswered -= 1
        if result.raw is None:
            self.stats.dropped += 1
            conn.warn("dropped a frame: %s", result.note)
        else:
            self.stats.edge_replies += 1
            if result.note.startswith("format error") or "MAC" in result.note:
                conn.warn("%s", result.note)
            conn.send(result.raw)
        return None

    def submit(self) -> None:
        """Decode what the connections have queued and hand it to the core in chunks, as
        far as the pipeline allows. Each connection in turn gives up to :data:`QUANTUM`
        frames, so a peer with thousands queued delays another's request by one turn, not
        by its backlog."""
        ready = self.ready
        replied: list[_Connection] = []
        decoded = 0
        while ready and decoded < DECODE_BUDGET and len(self.with_core) < PIPELINE_DEPTH \
                and self.in_core < MAX_IN_CORE and self.failure is None:
            batch: Pending = []
            taken = 0
            while ready and taken < MAX_BATCH:
                conn = ready[0]
                queue = conn.queue
                take = min(QUANTUM, MAX_BATCH - taken)
                if len(queue) <= take:
                    raws = queue
                    conn.queue = []
                    ready.popleft()
                    conn.queued = False
                else:
                    raws = queue[:take]
                    del queue[:take]
                    ready.rotate(-1)
                taken += len(raws)
                for raw in raws:
                    fwd = self._decode(conn, raw)
                    if fwd is not None:
                        batch.append((conn, fwd))
                    elif not replied or replied[-1] is not conn:
                        replied.append(conn)
            decoded += taken
            if batch:
                self.with_core.append(batch)
                self.in_core += len(batch)
                self.stats.batches += 1
                self.core.submit([fwd.body for _, fwd in batch])
        for conn in replied:
            conn.flush()
        if ready and decoded >= DECODE_BUDGET and not self._submit_soon and \
                self.loop is not None:
            self._submit_soon = True  # the rest after the loop's other work
            self.loop.call_soon(self._submit_later)
        self._check_done()

    def _submit_later(self) -> None:
        self._submit_soon = False
        self.submit()

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
        self.in_core -= len(batch)
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
            now = self.now()
            table = self.connections
            for conn in touched:
                conn.flush()
                conn.active_at = now  # idle counts from its last answer too
                if conn in table:
                    table.move_to_end(conn)
        if self.ready:
            self.submit()
        self._check_done()

    def _failed(self, reason: str) -> None:
        """The engine stopped (fail-stop): answer nothing more; the operator restarts from
        the log, which holds everything acknowledged."""
        if self.failure is None:
            log.error("the core failed, stopping: %s", reason)
            self.failure = reason
        for conn in self.ready:
            conn.queue.clear()
            conn.queued = False
        self.ready.clear()
        self.with_core.clear()
        self.in_core = 0
        if self.stopping:
            self._check_done()
        else:
            self.stop()

    # -- lifecycle

    async def serve(self, host: str, port: int,
                    ready: Callable[[str, int], None] | None = None) -> int:
        """Listen until stopped; returns the exit status (0 clean, 1 core failure)."""
        with few_collections():
            return await self._serve(host, port, ready)

    async def _serve(self, host: str, port: int,
                     ready: Callable[[str, int], None] | None) -> int:
        loop = self.loop = asyncio.get_running_loop()
        self.now = loop.time
        self._done = loop.create_future()
        await self.core.start(loop)
        try:
            self._listener = await loop.create_server(
                lambda: _Connection(self), host, port, reuse_address=True, backlog=1024)
        except OSError:
            await self.core.aclose()
            raise
        sock = self._listener.sockets[0].getsockname()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
                loop.add_signal_handler(sig, self.stop)
        self._sweeper = loop.call_later(self.limits.sweep_s, self._sweep)
        log.info("listening on %s:%s (%s frames)", sock[0], sock[1], self.frame_format)
        if ready is not None:
            ready(str(sock[0]), int(sock[1]))
        await self._done
        await self._close_connections()
        await self.core.aclose()
        stats = self.stats
        log.info("stopped: %d requests, %d answered by the switch, %d at the edge, %d dropped",
                 stats.requests, stats.answered, stats.edge_replies, stats.dropped)
        self.warnings.summarise()
        if stats.refused or stats.cut:
            log.warning("connections refused: %d; closed by the server: %s; requests "
                        "dropped with them: %d", stats.refused,
                        ", ".join(f"{n} {kind}" for kind, n in sorted(stats.cut.items()))
                        or "none", stats.abandoned)
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._listener is not None:
            self._listener.close()
        for conn in self.connections:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.pause_reading()
        self._check_done()

    def _check_done(self) -> None:
        if self.stopping and not self.ready and not self.with_core and \
                self._done is not None and not self._done.done():
            self._done.set_result(None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (several times faster for many small messages)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
