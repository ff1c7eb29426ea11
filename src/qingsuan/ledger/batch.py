"""Columnar batches of transfers: the ledger's primary input, and their bytes in the log.

A batch is eight parallel numpy columns rather than a list of objects: the hot path
validates and applies a whole batch with vectorised operations, and the command log stores
the columns' raw bytes, so neither side pays per-item object churn.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from qingsuan.ledger.types import Transfer, TransferFlags

#: Largest batch one command may carry (TigerBeetle's 8,190 per message is the model).
MAX_BATCH: Final = 8190 * 16

I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]

_FORMAT_VERSION: Final = 1
_HEADER: Final = struct.Struct("<BqIB")  # version, timestamp_us, count, optional-column mask
_OPT_PENDING_ID: Final = 1
_OPT_TIMEOUT: Final = 2
_OPT_FLAGS: Final = 4
_OPT_CODE: Final = 8


class BatchFormatError(ValueError):
    """A logged or received batch whose bytes do not decode."""


@dataclass(frozen=True, slots=True)
class TransferBatch:
    id: I64
    debit_account_id: I64
    credit_account_id: I64
    amount_fen: I64
    flags: U16
    pending_id: I64
    timeout_us: I64
    code: U16

    def __post_init__(self) -> None:
        n = len(self.id)
        for name in ("debit_account_id", "credit_account_id", "amount_fen", "flags",
                     "pending_id", "timeout_us", "code"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"batch column {name} has {len(getattr(self, name))} rows, "
                                 f"id has {n}")
        if n > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} transfers, got {n}")

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def of(
        cls,
        id: npt.ArrayLike,
        debit_account_id: npt.ArrayLike,
        credit_account_id: npt.ArrayLike,
        amount_fen: npt.ArrayLike,
        flags: npt.ArrayLike | None = None,
        pending_id: npt.ArrayLike | None = None,
        timeout_us: npt.ArrayLike | None = None,
        code: npt.ArrayLike | None = None,
    ) -> TransferBatch:
        """Build a batch from array-likes; missing optional columns are zero."""
        ids = _i64(id, "id")
        n = len(ids)
        return cls(
            ids,
            _i64(debit_account_id, "debit_account_id"),
            _i64(credit_account_id, "credit_account_id"),
            _i64(amount_fen, "amount_fen"),
            np.zeros(n, np.uint16) if flags is None else _u16(flags, "flags"),
            np.zeros(n, np.int64) if pending_id is None else _i64(pending_id, "pending_id"),
            np.zeros(n, np.int64) if timeout_us is None else _i64(timeout_us, "timeout_us"),
            np.zeros(n, np.uint16) if code is None else _u16(code, "code"),
        )

    @classmethod
    def from_transfers(cls, transfers: Sequence[Transfer]) -> TransferBatch:
        return cls.of(
            [t.id for t in transfers],
            [t.debit_account_id for t in transfers],
            [t.credit_account_id for t in transfers],
            [t.amount_fen for t in transfers],
            [int(t.flags) for t in transfers],
            [t.pending_id for t in transfers],
            [t.timeout_us for t in transfers],
            [t.code for t in transfers],
        )

    def __iter__(self) -> Iterator[Transfer]:
        cols = zip(self.id.tolist(), self.debit_account_id.tolist(),
                   self.credit_account_id.tolist(), self.amount_fen.tolist(),
                   self.flags.tolist(), self.pending_id.tolist(), self.timeout_us.tolist(),
                   self.code.tolist(), strict=True)
        for tid, dr, cr, amt, fl, pid, tmo, code in cols:
            yield Transfer(tid, dr, cr, amt, TransferFlags(fl), pid, tmo, code)

    def slice(self, start: int, stop: int) -> TransferBatch:
        return TransferBatch(self.id[start:stop], self.debit_account_id[start:stop],
                             self.credit_account_id[start:stop], self.amount_fen[start:stop],
                             self.flags[start:stop], self.pending_id[start:stop],
                             self.timeout_us[start:stop], self.code[start:stop])


def _i64(values: npt.ArrayLike, name: str) -> I64:
    try:
        arr = np.asarray(values)
        if arr.size == 0:
            return np.zeros(0, np.int64)
        if arr.dtype.kind == "f":
            raise ValueError(f"batch column {name} must be integers, not floats")
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > 2**63 - 1:
            raise ValueError(f"batch column {name} exceeds the signed 64-bit range")
        return np.ascontiguousarray(arr, dtype=np.int64).reshape(-1)
    except OverflowError as exc:
        raise ValueError(f"batch column {name} exceeds the signed 64-bit range") from exc


def _u16(values: npt.ArrayLike, name: str) -> U16:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, np.uint16)
    if arr.dtype.kind == "f":
        raise ValueError(f"batch column {name} must be integers, not floats")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
        raise ValueError(f"batch column {name} must fit 16 bits")
    return np.ascontiguousarray(arr, dtype=np.uint16).reshape(-1)


def encode_batch(batch: TransferBatch, timestamp_us: int) -> bytes:
    """The batch as it is written to the command log: a header and raw little-endian columns.
    All-zero optional columns are left out (most batches are plain single-phase transfers)."""
    mask = 0
    parts: list[npt.NDArray[np.generic]] = [
        batch.id, batch.debit_account_id, batch.credit_account_id, batch.amount_fen]
    for bit, col in ((_OPT_PENDING_ID, batch.pending_id), (_OPT_TIMEOUT, batch.timeout_us),
                     (_OPT_FLAGS, batch.flags), (_OPT_CODE, batch.code)):
        if col.any():
            mask |= bit
            parts.append(col)
    header = _HEADER.pack(_FORMAT_VERSION, timestamp_us, len(batch), mask)
    return header + b"".join(p.astype(p.dtype.newbyteorder("<"), copy=False).tobytes()
                             for p in parts)


def decode_batch(payload: bytes) -> tuple[TransferBatch, int]:
    """Inverse of :func:`encode_batch`: (batch, timestamp_us)."""
    if len(payload) < _HEADER.size:
        raise BatchFormatError("transfer batch shorter than its header")
    version, timestamp_us, n, mask = _HEADER.unpack_from(payload)
    if version != _FORMAT_VERSION:
        raise BatchFormatError(f"unknown transfer batch format version {version}")
    if n > MAX_BATCH:
        raise BatchFormatError(f"transfer batch claims {n} transfers (max {MAX_BATCH})")
    widths = [8, 8, 8, 8]
    opt = [(_OPT_PENDING_ID, 8), (_OPT_TIMEOUT, 8), (_OPT_FLAGS, 2), (_OPT_CODE, 2)]
    widths += [w for bit, w in opt if mask & bit]
    expected = _HEADER.size + n * sum(widths)
    if len(payload) != expected:
        raise BatchFormatError(f"transfer batch is {len(payload)} bytes, expected {expected}")
    buf = memoryview(payload)
    offset = _HEADER.size

    def take(dtype: str) -> npt.NDArray[np.generic]:
        nonlocal offset
        arr = np.frombuffer(buf, dtype=np.dtype(dtype), count=n, offset=offset)
        offset += arr.nbytes
        return arr

    ids, dr, cr, amt = (take("<i8") for _ in range(4))
    zeros64 = np.zeros(n, np.int64)
    zeros16 = np.zeros(n, np.uint16)
    pid = take("<i8") if mask & _OPT_PENDING_ID else zeros64
    tmo = take("<i8") if mask & _OPT_TIMEOUT else zeros64
    flags = take("<u2") if mask & _OPT_FLAGS else zeros16
    code = take("<u2") if mask & _OPT_CODE else zeros16
    batch = TransferBatch(ids.astype(np.int64), dr.astype(np.int64), cr.astype(np.int64),
                          amt.astype(np.int64), flags.astype(np.uint16),
                          pid.astype(np.int64), tmo.astype(np.int64), code.astype(np.uint16))
    return batch, timestamp_us
