"""The engine's end of the link to the HTTP edge process (edge.py).

The edge parses HTTP and checks each JSON transfer (transfer_order.py) in its own process;
it sends the orders that passed in batches over a socket pair, as the card port's edge
sends its requests to the core (length-prefixed pickles, card_tcp.py). Here a thread reads
them and hands each batch to the writer: the orders are booked in order with the other
routes' jobs under the engine's lock, one group commit for all that wait, and the answers
go back only once durable.

Messages, edge to engine: ``("jobs", [(ticket, participant, Order), ...])``, ``("stats",
{status: count}, [latency_s, ...])`` (the edge's requests for /metrics), ``("stopped",)``.
Engine to edge: ``("hello", participants, key hashes)`` (the names a path may name, the
keys it knows), ``("answers", [(ticket, status, body, headers), ...])``, ``("learn", name,
key hash, token)`` (a participant the operator added: the edge answers ``("learnt",
token)`` once it takes its transfers), ``("stop",)``: stop accepting, answer what was
received, say ``stopped``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any, Final

from qingsuan.server.card_tcp import _Messages, _pack
from qingsuan.server.http import transfers
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.writer import Result

if TYPE_CHECKING:
    from qingsuan.server.http.auth import KeyRing
    from qingsuan.server.http.core import SandboxCore
    from qingsuan.server.http.metrics import Metrics
    from qingsuan.server.http.transfer_order import Order

#: the route the edge answers (its name in /metrics, as FastAPI's would be)
ROUTE: Final = "/v1/participants/{participant}/transfers"
#: how long the edge gets to answer what it received, at a stop
STOP_S: Final = 15.0

log = logging.getLogger("qingsuan.http")

#: an answer as it goes to the edge: (status, JSON body, extra headers)
Answer = tuple[int, dict[str, Any], dict[str, str] | None]


def answer_of(booked: transfers.Booked | BaseException) -> Answer:
    if isinstance(booked, tuple):
        status, body = booked
        return status, body, None
    if isinstance(booked, ApiError):
        return booked.status, booked.body(), booked.headers
    log.error("a transfer failed: %s: %s", type(booked).__name__, booked)
    return 500, {"reason": "internal_error", "field": None,
                 "message": f"the transfer failed: {type(booked).__name__}"}, None


class EdgeLink:
    def __init__(self, core: SandboxCore, sock: socket.socket, metrics: Metrics,
                 participants: list[str], ring: KeyRing | None = None) -> None:
        self.core, self.sock, self.metrics = core, sock, metrics
        self.participants, self.ring = participants, ring
        #: participants sent to the edge, by token, until it says it learnt them
        self._learning: dict[int, threading.Event] = {}
        self._tokens = itertools.count(1)
        self._send_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qingsuan-edge-link",
                                        daemon=True)

    def start(self) -> None:
        self.sock.setblocking(True)
        self._send(("hello", self.participants,
                    dict(self.ring.hashes) if self.ring is not None else None))
        self._thread.start()

    def _send(self, message: Any) -> None:
        data = _pack(message)
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:  # the edge is gone: nobody to answer
                self._stopped.set()

    def _run(self) -> None:
        reader = _Messages()
        try:
            while True:
                data = self.sock.recv(1 << 20)
                if not data:
                    return
                for message in reader.feed(data):
                    if message[0] == "jobs":
                        self._jobs(message[1])
                    elif message[0] == "stats":
                        self._stats(message[1], message[2])
                    elif message[0] == "learnt":
                        learnt = self._learning.pop(message[1], None)
                        if learnt is not None:
                            learnt.set()
                    elif message[0] == "stopped":
                        return
        except (OSError, ValueError) as exc:
            log.error("the link to the HTTP edge broke: %s", exc)
        finally:
            self._stopped.set()
            for learnt in list(self._learning.values()):
                learnt.set()  # (nobody left to wait for)

    def _jobs(self, jobs: list[tuple[int, str, Order]]) -> None:
        """The edge's batch as ONE writer job: its transfers in one logged group."""
        tickets = [ticket for ticket, _, _ in jobs]

        def done(results: list[Result]) -> None:
            [(ok, value)] = results
            booked = value if ok else [value] * len(tickets)
            with self.core.lock:
                self.core.count_requests(len(tickets))
            self._send(("answers", [(ticket, *answer_of(one))
                                    for ticket, one in zip(tickets, booked, strict=True)]))

        orders = [(participant, order) for _, participant, order in jobs]
        self.core.writer.submit([functools.partial(transfers.book_group, self.core.world,
                                                   orders)], done)

    def learn(self, name: str, key_hash: str) -> threading.Event:
        """Tell the edge of a participant the operator added (the name its paths may
        name, the hash of its key); the event is set once the edge has it (or is gone)."""
        token = next(self._tokens)
        learnt = self._learning[token] = threading.Event()
        self._send(("learn", name, key_hash, token))
        if self._stopped.is_set():
            learnt.set()
        return learnt

    def _stats(self, counts: dict[int, int], latencies: list[float]) -> None:
        requests, latency = self.metrics.requests, self.metrics.latency.labels(ROUTE)
        for status, n in counts.items():
            requests.labels("POST", ROUTE, str(status)).inc(n)
        for seconds in latencies:
            latency.observe(seconds)

    def stop(self) -> None:
        """Tell the edge to stop; wait (at most :data:`STOP_S`) until it has answered what
        it received and said so."""
        self._send(("stop",))
        self._stopped.wait(STOP_S)
        self._thread.join(1.0)
        self.sock.close()
