"""CNAPS as an engine system: the participants directory and HVPS behind logged commands.

Every command is JSON (sorted keys) after the engine's timestamp. The convenience methods
(``submit_hvps``, ``cancel`` ...) log the command through the engine and return what
applying it answered; replaying the log applies the same commands to a fresh system.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from qingsuan.cnaps.hvps import Hvps, Outcome, Priority, dumps
from qingsuan.cnaps.participants import (
    Directory,
    Participant,
    ParticipantKind,
    ParticipantStatus,
)

if TYPE_CHECKING:
    from qingsuan.engine import Engine


class Cnaps:
    """The engine system with prefix ``cnaps``."""

    prefix = "cnaps"

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.directory = Directory()
        self._hvps: Hvps | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self._hvps = Hvps(engine, self.directory)

    @property
    def hvps(self) -> Hvps:
        assert self._hvps is not None, "attach the system to an engine first"
        return self._hvps

    # ------------------------------------------------------------------ applying

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        doc = json.loads(body)
        hvps = self.hvps
        if kind == "cnaps.join":
            hvps.join(Participant(doc["name"], doc["code"], ParticipantKind(doc["kind"]),
                                  settles_through=doc.get("settles_through")))
            return Outcome(True, "joined")
        if kind == "cnaps.status":
            self.directory.set_status(doc["participant"], ParticipantStatus(doc["status"]))
            return Outcome(True, doc["status"])
        if kind == "cnaps.hvps_submit":
            return hvps.submit(doc["ref"], doc["sender"], doc["receiver"], int(doc["amount_fen"]),
                               int(doc["priority"]), doc["kind"], timestamp_us,
                               doc.get("debtor"), doc.get("creditor"))
        if kind == "cnaps.hvps_cancel":
            return hvps.cancel(doc["ref"], doc["by"], timestamp_us)
        if kind == "cnaps.hvps_reprioritise":
            return hvps.reprioritise(doc["ref"], int(doc["priority"]), doc["by"], timestamp_us)
        if kind == "cnaps.pledge":
            return hvps.pledge(doc["participant"], int(doc["value_fen"]),
                               int(doc["haircut_ppm"]), timestamp_us)
        if kind == "cnaps.release":
            return hvps.release(doc["participant"], int(doc["value_fen"]),
                                int(doc["haircut_ppm"]), timestamp_us)
        raise ValueError(f"unknown CNAPS command {kind!r}")

    def on_tick(self, timestamp_us: int) -> None:
        if self.directory:
            self.hvps.advance(timestamp_us)

    def dump_state(self) -> bytes:
        return dumps({"directory": self.directory.to_json(), "hvps": self.hvps.to_json()})

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self.directory = Directory.from_json(doc["directory"])
        assert self.engine is not None
        self._hvps = Hvps(self.engine, self.directory)
        self._hvps.load_json(doc["hvps"])

    # ------------------------------------------------------------------ logging commands

    def _command(self, kind: str, doc: dict[str, Any]) -> Any:
        assert self.engine is not None
        return self.engine.command(kind, dumps(doc))

    def join(self, name: str, code: str, kind: ParticipantKind = ParticipantKind.DIRECT_BANK,
             settles_through: str | None = None) -> Outcome:
        result: Outcome = self._command("cnaps.join", {
            "name": name, "code": code, "kind": kind.value, "settles_through": settles_through})
        return result

    def set_status(self, participant: str, status: ParticipantStatus) -> Outcome:
        result: Outcome = self._command("cnaps.status",
                                        {"participant": participant, "status": status.value})
        return result

    def submit_hvps(self, ref: str, sender: str, receiver: str, amount_fen: int,
                    priority: Priority = Priority.NORMAL, kind: str = "customer",
                    debtor: str | None = None, creditor: str | None = None) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_submit", {
            "ref": ref, "sender": sender, "receiver": receiver, "amount_fen": amount_fen,
            "priority": int(priority), "kind": kind, "debtor": debtor, "creditor": creditor})
        return result

    def cancel(self, ref: str, by: str) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_cancel", {"ref": ref, "by": by})
        return result

    def reprioritise(self, ref: str, priority: Priority, by: str) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_reprioritise",
                                        {"ref": ref, "priority": int(priority), "by": by})
        return result

    def pledge(self, participant: str, value_fen: int, haircut_ppm: int | None = None
               ) -> Outcome:
        assert self.engine is not None
        haircut = self.engine.params["hvps.pledge_haircut"] if haircut_ppm is None else haircut_ppm
        result: Outcome = self._command("cnaps.pledge", {
            "participant": participant, "value_fen": value_fen, "haircut_ppm": int(haircut)})
        return result

    def release(self, participant: str, value_fen: int, haircut_ppm: int | None = None
                ) -> Outcome:
        assert self.engine is not None
        haircut = self.engine.params["hvps.pledge_haircut"] if haircut_ppm is None else haircut_ppm
        result: Outcome = self._command("cnaps.release", {
            "participant": participant, "value_fen": value_fen, "haircut_ppm": int(haircut)})
        return result
