"""The HTTP API in ``qingsuan serve``: uvicorn on its own thread and event loop, beside the
card port, over the same core.

The listening socket is bound first (by whoever parses the options: a port in use is
known before anything starts, and port 0 is resolved to the free port chosen), then
handed to the thread that serves it, in the process that owns the engine (the card port's
core process, or the one process with ``--core inline``). Stopping it stops accepting,
answers the requests in flight (the writer is still running), and then returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import Any, Final

import uvicorn

#: how long requests in flight get at a stop
GRACEFUL_S: Final = 10.0
#: how long the server gets to start listening
START_S: Final = 30.0
#: connections and requests at once; past it uvicorn answers 503 at once (a flood of
#: connections cannot take the process's memory)
MAX_CONCURRENCY: Final = 4096
#: a keep-alive connection idle this long is closed
KEEP_ALIVE_S: Final = 30

log = logging.getLogger("qingsuan.http")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (OSError when the address is in use or not ours)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class HttpServer:
    """uvicorn serving ``app`` on ``sock`` from a thread of its own."""

    def __init__(self, app: Any, sock: socket.socket, *, keep_alive_s: int | None = None
                 ) -> None:
        self.sock = sock
        config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning",
                                timeout_graceful_shutdown=int(GRACEFUL_S),
                                limit_concurrency=MAX_CONCURRENCY,
                                timeout_keep_alive=keep_alive_s or KEEP_ALIVE_S,
                                server_header=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="qingsuan-http", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start serving; RuntimeError when it did not start listening."""
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(START_S * 100)):
            if self.server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self.server.started:
            raise RuntimeError(f"the HTTP server did not start: {self._error or 'timeout'}")

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # reported by start(), or logged at the stop
            self._error = exc
            log.error("the HTTP server stopped: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                loop.close()

    def stop(self) -> None:
        """Stop accepting, answer what is in flight (at most :data:`GRACEFUL_S`), return."""
        self.server.should_exit = True
        self._thread.join(GRACEFUL_S + 5)
        with contextlib.suppress(OSError):
            self.sock.close()
