"""What the banks record of each payment, inquiry and action: the facts the outcome of a run
(docs/SCENARIOS.md) reports, kept in the engine's state so that a restarted world reports
exactly what an uninterrupted one would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qingsuan.clock import format_time


@dataclass(slots=True)
class PaymentRecord:
    """A payment's fate: its status, the reason of a refusal or return, its history."""

    kind: str
    system: str
    status: str = "accepted"
    response_code: str | None = None
    reason: dict[str, str] | None = None
    history: list[tuple[int, str]] = field(default_factory=list)
    #: a payment the bank holds until HVPS opens: when it will be sent ("" while the time
    #: is not known: HVPS closed for maintenance until an operator reopens it)
    held_until: str | None = None
    #: a card transaction the switch approved for an issuer that was down (代授权)
    stand_in: bool = False

    def move(self, at_us: int, status: str) -> None:
        self.status = status
        self.history.append((at_us, status))

    def to_json(self) -> dict[str, Any]:
        """The outcome's form (times in Beijing time)."""
        doc: dict[str, Any] = {
            "kind": self.kind, "system": self.system, "status": self.status,
            "response_code": self.response_code, "reason": self.reason,
            "history": [{"at": format_time(at), "status": s} for at, s in self.history],
        }
        if self.held_until is not None:
            doc["held_until"] = self.held_until
        if self.stand_in:
            doc["stand_in"] = True
        return doc

    def to_state(self) -> list[Any]:
        """The compact form kept in the engine's state."""
        return [self.kind, self.system, self.status, self.response_code, self.reason,
                self.history, self.held_until, self.stand_in]

    @classmethod
    def from_state(cls, doc: list[Any]) -> PaymentRecord:
        kind, system, status, rc, reason, history, held_until, stand_in = doc
        return cls(kind, system, status, rc, reason, [(int(a), str(s)) for a, s in history],
                   held_until, bool(stand_in))
