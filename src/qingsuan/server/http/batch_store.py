"""What became of each booked batch, kept so that it can be read later and after a restart.

The bulk path keeps no record per item (banks/bulk.py: the command answers a code per item,
which a replay recomputes and drops), so the edge keeps each batch's outcome itself: in
memory, and beside a SQLite store in ``STORE.batches/`` (one file per batch, written whole,
synced and renamed) *before* the group commit that makes its command durable. A file whose
command did not reach the log (the append failed: the engine stopped) is never shown: an
outcome is shown only once the log's entry of its number is its very command (the SHA-256
of the command's body is in the file), which a later command taking that number fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from qingsuan.banks.bulk import BulkCode, Route
from qingsuan.money import format_fen
from qingsuan.store import file_beside
from qingsuan.store.base import CommandLog

DIR_SUFFIX: Final = ".batches"
_NAME: Final = re.compile(r"^([A-Za-z0-9_]+)\.(B\d+)\.batch$")
_REASONS: Final = {BulkCode.OVER_LIMIT: "AM02", BulkCode.NO_FUNDS: "AM04",
                   BulkCode.CLOSED: "AC04", BulkCode.NOT_SETTLED: "not_settled",
                   BulkCode.OVER_CAP: "AM14", BulkCode.BARRED: "AG01",
                   BulkCode.SYSTEM_CLOSED: "DT01"}
#: what each reason means, for the answer
REASON_TEXT: Final = {
    "AM02": "urgent (IBPS) above the IBPS item limit", "AM04": "the payer's account cannot "
    "pay it", "AC04": "the payer's or payee's account is closed", "not_settled": "HVPS "
    "closed, or the item could not settle at once: given back to the payer", "AM14":
    "beyond the sender's net debit cap: given back", "AG01": "a participant that may not "
    "use the system", "DT01": "BEPS or IBPS closed for maintenance"}


def _fen(value: int) -> str:
    return format_fen(int(value))


@dataclass
class Outcome:
    id: str
    participant: str
    at: str
    seq: int
    line: npt.NDArray[np.int32]
    route: npt.NDArray[np.int8]
    code: npt.NDArray[np.int8]
    amount_fen: npt.NDArray[np.int64]
    #: SHA-256 (hex) of the bulk command's body, as logged
    digest: str
    #: the client's idempotency key (``?key=``), if it gave one
    key: str | None = None

    def summary(self) -> dict[str, Any]:
        credited = self.code == BulkCode.CREDITED
        rejected: dict[str, Any] = {}
        for code in np.unique(self.code[~credited]).tolist():
            hit = self.code == code
            reason = _REASONS[BulkCode(code)]
            rejected[reason] = {"count": int(hit.sum()),
                                "value": _fen(self.amount_fen[hit].sum()),
                                "meaning": REASON_TEXT[reason]}
        systems: dict[str, Any] = {}
        for r in np.unique(self.route).tolist():
            hit = self.route == r
            systems[Route(r).name] = {"count": int(hit.sum()),
                                      "credited": int((hit & credited).sum()),
                                      "value": _fen(self.amount_fen[hit].sum())}
        n = len(self.code)
        return {
            "id": self.id, "key": self.key, "participant": self.participant, "at": self.at,
            "items": n, "value": _fen(self.amount_fen.sum()),
            "credited": {"count": int(credited.sum()),
                         "value": _fen(self.amount_fen[credited].sum())},
            # (the bulk path queues nothing: what cannot settle at once is given back)
            "queued": {"count": 0, "value": "0.00"},
            "rejected": {"count": int(n - credited.sum()),
                         "value": _fen(self.amount_fen[~credited].sum()),
                         "by_reason": rejected},
            "by_system": systems,
            "items_url": f"/v1/participants/{self.participant}/transfer-batches/{self.id}"
                         "/items"}

    def items(self, offset: int, limit: int) -> dict[str, Any]:
        end = min(len(self.code), offset + limit)
        out = []
        for k in range(offset, end):
            code = BulkCode(int(self.code[k]))
            out.append({"line": int(self.line[k]), "system": Route(int(self.route[k])).name,
                        "amount": _fen(self.amount_fen[k]),
                        "status": "credited" if code is BulkCode.CREDITED else "rejected",
                        "reason": None if code is BulkCode.CREDITED else _REASONS[code]})
        return {"batch": self.id, "items": out, "offset": offset,
                "next": end if end < len(self.code) else None}

    def to_bytes(self) -> bytes:
        head = json.dumps({"id": self.id, "participant": self.participant, "at": self.at,
                           "seq": self.seq, "n": len(self.code),
                           "digest": self.digest, "key": self.key}).encode() + b"\n"
        return b"".join([head, self.line.astype("<i4").tobytes(),
                         self.route.astype("<i1").tobytes(), self.code.astype("<i1").tobytes(),
                         self.amount_fen.astype("<i8").tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> Outcome:
        head, _, rest = data.partition(b"\n")
        doc = json.loads(head)
        n = int(doc["n"])
        cols = []
        offset = 0
        for dtype in ("<i4", "<i1", "<i1", "<i8"):
            arr = np.frombuffer(rest, np.dtype(dtype), count=n, offset=offset)
            offset += arr.nbytes
            cols.append(arr)
        return cls(doc["id"], doc["participant"], doc["at"], int(doc["seq"]),
                   cols[0].astype(np.int32), cols[1].astype(np.int8),
                   cols[2].astype(np.int8), cols[3].astype(np.int64), doc["digest"],
                   doc.get("key"))


class BatchStore:
    """The outcomes by (participant, batch id); files under ``directory`` when given."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self._memory: dict[tuple[str, str], Outcome] = {}
        self._files: dict[tuple[str, str], Path] = {}
        self._checked: set[tuple[str, str]] = set()
        #: (participant, idempotency key) -> batch id
        self._keys: dict[tuple[str, str], str] = {}
        if directory is not None and directory.is_dir():
            for path in directory.iterdir():
                match = _NAME.match(path.name)
                if match is not None:
                    self._files[(match.group(1), match.group(2))] = path
                    with open(path, "rb") as f:
                        key = json.loads(f.readline()).get("key")
                    if key is not None:
                        self._keys[(match.group(1), key)] = match.group(2)

    @classmethod
    def beside(cls, store: str) -> BatchStore:
        return cls(file_beside(store, DIR_SUFFIX))

    def save(self, outcome: Outcome) -> None:
        """Keep ``outcome`` (synced to disk when there is a directory)."""
        key = (outcome.participant, outcome.id)
        if outcome.key is not None:
            with self.lock:
                self._keys[(outcome.participant, outcome.key)] = outcome.id
        if self.directory is None:
            with self.lock:
                self._memory[key] = outcome
            return
        self.directory.mkdir(mode=0o700, exist_ok=True)
        path = self.directory / f"{outcome.participant}.{outcome.id}.batch"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(outcome.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self.lock:
            self._files[key] = path

    def get(self, participant: str, batch_id: str, log: CommandLog) -> Outcome | None:
        """``participant``'s batch ``batch_id`` once its command is in ``log``, or None
        (another participant's is None too). On the writer: it reads the log."""
        key = (participant, batch_id)
        with self.lock:
            found = self._memory.get(key)
            path = self._files.get(key)
        if found is None and path is not None:
            found = Outcome.from_bytes(path.read_bytes())
        if found is None or key in self._checked:
            return found
        if not _logged(found, log):
            return None
        with self.lock:
            self._checked.add(key)
        return found

    def by_key(self, participant: str, key: str, log: CommandLog) -> Outcome | None:
        """``participant``'s batch sent with idempotency key ``key``, if its command is in
        ``log`` (or was logged by this process)."""
        with self.lock:
            batch_id = self._keys.get((participant, key))
        return None if batch_id is None else self.get(participant, batch_id, log)

    def added(self, outcome: Outcome) -> None:
        """``outcome`` was just logged by this process: no need to look it up."""
        with self.lock:
            self._checked.add((outcome.participant, outcome.id))


def _logged(outcome: Outcome, log: CommandLog) -> bool:
    if outcome.seq > log.last_seq:
        return False
    entry = next(iter(log.entries(outcome.seq - 1)), None)
    # (a command's payload is its 8-byte timestamp, then the body)
    return entry is not None and entry.seq == outcome.seq and entry.kind == "banks.bulk" \
        and hashlib.sha256(memoryview(entry.payload)[8:]).hexdigest() == outcome.digest
