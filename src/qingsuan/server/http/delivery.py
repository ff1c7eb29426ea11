"""Webhook deliveries to connected participants: each one's notices, in order, POSTed to
its callback URL, signed, retried with exponential back-off, at least once.

A delivery is a JSON body ``{"message_id", "participant", "type", "notice", ...}`` with the
headers ``Qingsuan-Message-Id``, ``Qingsuan-Attempt`` and ``Qingsuan-Signature: sha256=HEX``
(HMAC-SHA256 of the body with the participant's secret). The receiver acknowledges with a
2xx whose body is JSON ``{"received": MESSAGE_ID}``; anything else (a refused connection, a
timeout, a 3xx, 4xx or 5xx, a body that is not that JSON) is a failed attempt, tried again
after ``first_retry_s``, then twice as long each time (at most ``max_retry_s``), up to
``max_attempts``; then the message is given up, with the reason, in the participant's
failures (``GET .../callback``) and the next one goes. A participant's messages go one at
a time, in order. A message id is the notice's place among its system's notices
(``HVPS.12``): the same on every attempt and after a restart, so the receiver deduplicates
on it.

:meth:`Deliverer.step` does one round at a given time (the tests drive it); the thread
calls it every ``poll_s``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx

from qingsuan.clock import format_time
from qingsuan.money import format_fen
from qingsuan.server.http.callbacks import (
    ATTEMPT_HEADER,
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    Registration,
    Registry,
    sign,
)
from qingsuan.server.http.notices import next_for

if TYPE_CHECKING:
    from qingsuan.server.http.core import SandboxCore

log = logging.getLogger("qingsuan.http.callbacks")

#: the events that tell a participant it is paid
INCOMING: Final = {("HVPS", "credited"), ("BEPS", "incoming"), ("IBPS", "incoming")}
#: the longest answer body read from a receiver
MAX_ANSWER: Final = 4096


@dataclass(frozen=True)
class DeliveryParams:
    """How deliveries are tried (docs/SERVER.md lists the defaults)."""

    #: an attempt waits this long for the receiver's answer
    timeout_s: float = 5.0
    #: the wait before the second attempt
    first_retry_s: float = 1.0
    #: each next wait is this many times the last
    backoff: float = 2.0
    #: the longest wait between two attempts
    max_retry_s: float = 300.0
    #: attempts of one message before it is given up
    max_attempts: int = 8
    #: the thread looks for new notices this often
    poll_s: float = 0.2

    def wait_after(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt."""
        return float(min(self.max_retry_s, self.first_retry_s * self.backoff ** (attempts - 1)))


@dataclass
class Pending:
    """The message being tried for one participant."""

    message_id: str
    read_after: dict[str, int]
    body: bytes
    attempts: int = 0
    next_try: float = 0.0
    last_error: str | None = None


class Deliverer:
    def __init__(self, core: SandboxCore, registry: Registry,
                 params: DeliveryParams | None = None,
                 client: httpx.Client | None = None,
                 observe: Callable[[str], None] | None = None) -> None:
        """``observe``: told each attempt's outcome (delivered, failed, given_up)."""
        self.core = core
        self.observe = observe
        self.registry = registry
        self.params = params or DeliveryParams()
        self.client = client or httpx.Client(follow_redirects=False)
        #: participant -> (its registration, the message being tried)
        self.pending: dict[str, tuple[Registration, Pending]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one round

    def step(self, now: float) -> int:
        """One round at ``now`` (seconds, monotonic): for each connected participant whose
        next attempt is due, one attempt. How many messages were delivered."""
        done = 0
        for name in self.registry.names():
            reg = self.registry.get(name)
            if reg is None:
                continue
            held = self.pending.get(name)
            if held is not None and held[0] is not reg:  # registered again: start afresh
                held = None
            if held is None:
                message = self._next(name, reg)
                if message is None:
                    self.pending.pop(name, None)
                    continue
                held = (reg, message)
                self.pending[name] = held
            message = held[1]
            if message.next_try > now:
                continue
            message.attempts += 1
            error = self._post(reg, message)
            if self.observe is not None:
                self.observe("delivered" if error is None else "given_up"
                             if message.attempts >= self.params.max_attempts else "failed")
            if error is None:
                self.registry.advance(name, reg, message.read_after)
                self.pending.pop(name)
                done += 1
                continue
            message.last_error = error
            if message.attempts >= self.params.max_attempts:
                log.warning("callback of %s: message %s given up after %d attempts: %s",
                            name, message.message_id, message.attempts, error)
                self.registry.advance(name, reg, message.read_after, failure={
                    "message_id": message.message_id, "attempts": message.attempts,
                    "reason": error, "at": format_time(self.core.clock.now_us())})
                self.pending.pop(name)
            else:
                message.next_try = now + self.params.wait_after(message.attempts)
        return done

    def _next(self, name: str, reg: Registration) -> Pending | None:
        read = dict(reg.read)
        with self.core.lock:
            world = self.core.world
            found = next_for(world, name, read)
            if found is None:  # (past others' notices: not scanned again at each look)
                self.registry.skip(name, reg, read)
                return None
            system, index, notice = found
            read[system] = index + 1
            incoming = (system, notice["event"]) in INCOMING
            payment = _payment(world, notice["ref"]) if incoming else None
        message_id = f"{system}.{index}"
        doc: dict[str, Any] = {"message_id": message_id, "participant": name,
                               "type": "incoming_payment" if incoming else "notice",
                               "notice": notice}
        if payment is not None:
            doc["payment"] = payment
        body = json.dumps(doc, separators=(",", ":")).encode()
        return Pending(message_id, read, body)

    def _post(self, reg: Registration, message: Pending) -> str | None:
        """One attempt: None when acknowledged, else why not."""
        headers = {"Content-Type": "application/json",
                   MESSAGE_ID_HEADER: message.message_id,
                   ATTEMPT_HEADER: str(message.attempts),
                   SIGNATURE_HEADER: sign(reg.secret, message.body)}
        late = f"no answer within {self.params.timeout_s:g} s"
        # (httpx's timeout bounds each read: a receiver trickling its answer byte by byte
        # is bounded here, as a whole)
        deadline = time.monotonic() + self.params.timeout_s
        try:
            with self.client.stream("POST", reg.url, content=message.body, headers=headers,
                                    timeout=self.params.timeout_s) as answer:
                status = answer.status_code
                raw = b""
                for chunk in answer.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER:
                        break
                    if time.monotonic() > deadline:
                        return late
        except httpx.TimeoutException:
            return late
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if not 200 <= status < 300:
            return f"HTTP {status} (a 2xx with {{\"received\": id}} acknowledges)"
        try:
            ack = json.loads(raw)
        except ValueError:
            return f"HTTP {status} but the body is not JSON: {raw[:80]!r}"
        if not isinstance(ack, dict) or ack.get("received") != message.message_id:
            return (f"HTTP {status} but the body does not acknowledge "
                    f"{message.message_id} ({{\"received\": id}}): {raw[:80]!r}")
        return None

    def status(self, name: str) -> dict[str, Any] | None:
        """The message being tried for ``name``, if any."""
        held = self.pending.get(name)
        if held is None:
            return None
        message = held[1]
        return {"message_id": message.message_id, "attempts": message.attempts,
                "last_error": message.last_error}

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qingsuan-callbacks",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.step(time.monotonic())
            except Exception:  # a bug here must not stop deliveries for good
                log.exception("callback deliveries: a round failed")
                delivered = 0
            if not delivered:
                self._wake.wait(self.params.poll_s)
                self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.params.timeout_s + 5)
        self.client.close()


def _payment(world: Any, ref: str | None) -> dict[str, Any] | None:
    """An incoming payment as its receiver is told: who pays, how much."""
    if not ref:
        return None
    seen = world.cnaps.payment(ref)
    if seen is None:
        return None
    return {"ref": ref, "from": seen.sender, "to": seen.receiver,
            "amount": format_fen(seen.amount_fen)}
