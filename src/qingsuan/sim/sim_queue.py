"""Transfers the simulator holds between windows (docs/SIMULATE.md, "Queues"), as columns.

The bulk path gives back an HVPS payment still queued at the end of its batch, and a BEPS
item beyond its sender's cap (they do not wait in CNAPS between batches): the sending bank
keeps them and sends them again, first, with the next window, as HVPS's queue and BEPS's
cap queue would keep them. Transfers held back on purpose (an outage, a maintenance
window, a cash manager's policy) wait here too. The arrival time travels with each
transfer: queue time is measured from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

#: transfers the simulator may hold at once (bounded memory)
MAX_HELD: Final = 50_000_000


@dataclass(frozen=True, slots=True)
class Batch:
    """Transfers as columns: arrival, system, customers, their participants (indices in
    the scenario's order), amount, the last code the bulk path gave (-1: never sent) and
    whether it has waited (queued or held back) at least once."""

    at_us: I64
    system: I64
    payer: I64
    payee: I64
    sender: I64
    receiver: I64
    amount_fen: I64
    last_code: I64
    waited: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.at_us)

    def take(self, index: npt.ArrayLike) -> Batch:
        return Batch(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def empty() -> Batch:
        z = np.zeros(0, np.int64)
        return Batch(z, z, z, z, z, z, z, z, np.zeros(0, np.bool_))

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Batch.empty()
        if len(parts) == 1:
            return parts[0]
        return Batch(*(np.concatenate([getattr(p, f.name) for p in parts])
                       for f in fields(Batch)))

    def queue_by(self, systems: int, participants: int) -> tuple[I64, I64]:
        """Items and value held per [system, sender]."""
        items = np.zeros((systems, participants), np.int64)
        value = np.zeros((systems, participants), np.int64)
        np.add.at(items, (self.system, self.sender), 1)
        np.add.at(value, (self.system, self.sender), self.amount_fen)
        return items, value
