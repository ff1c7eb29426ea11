"""Clearing files (清算/对账文件): one per participant per clearing day, and reconciliation.

Format: UTF-8 text, one record a line, fields separated by commas (no field may contain a
comma, so there is no quoting), lines ending in ``\\n``::

    H,<participant>,<clearing date YYYYMMDD>,<version>
    D,<rrn>,<stan>,<mti>,<masked PAN>,<amount fen>,<fee fen>,<direction>,<terminal id>,<local>
    ...
    T,<count>,<debit total fen>,<credit total fen>

* header: participant code ``[0-9A-Za-z]{1,11}`` (field 32 style), clearing date (field 15),
  file format version (positive int, currently 1);
* detail: RRN (field 37, 12 alphanumerics), STAN (field 11, 6 digits), MTI (4 digits), PAN
  masked as first six digits, ``****``, last four digits (a full PAN is an error), amount in
  fen (non-negative int, no sign, no leading zeros), the participant's net fee on the item in
  fen (signed int: positive received, negative paid), direction ``D`` (the participant pays the
  amount) or ``C`` (it receives it), terminal id (field 41, 8 alphanumerics), local date-time
  of the transaction ``YYYYMMDDhhmmss``;
* trailer: number of detail lines, sum of the ``D`` amounts, sum of the ``C`` amounts (the
  control totals; fees are not in them).

:func:`parse_clearing_file` never lets a malformed file end in a traceback: it raises
:class:`ClearingFileError` with the 1-based line number and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import BinaryIO, overload

import numpy as np
import numpy.typing as npt

FORMAT_VERSION = 1

_PARTICIPANT = re.compile(r"[0-9A-Za-z]{1,11}")
_RRN = re.compile(r"[0-9A-Za-z]{12}")
_STAN = re.compile(r"[0-9]{6}")
_MTI = re.compile(r"[0-9]{4}")
_MASKED_PAN = re.compile(r"[0-9]{6}\*{4}[0-9]{4}")
_FULL_PAN = re.compile(r"[0-9]{12,19}")
#: a PAN as the switch keeps it (cards/iso8583.py mask_pan: one star per hidden digit)
_SWITCH_MASKED_PAN = re.compile(r"[0-9]{6}\*{2,9}[0-9]{4}")
_AMOUNT = re.compile(r"0|[1-9][0-9]*")
_FEE = re.compile(r"0|-?[1-9][0-9]*")
_TERMINAL = re.compile(r"[0-9A-Za-z]{8}")
_DATE = re.compile(r"[0-9]{8}")
_DATETIME = re.compile(r"[0-9]{14}")
_VERSION = re.compile(r"[1-9][0-9]*")


class ClearingFileError(ValueError):
    """A malformed clearing file: ``line_no`` (1-based) and ``message``."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message


def mask_pan(pan: str) -> str:
    """``6222021234567890123`` (or the switch's ``622202*********0123``) ->
    ``622202****0123``; an already masked PAN is kept."""
    if _MASKED_PAN.fullmatch(pan):
        return pan
    if not _FULL_PAN.fullmatch(pan) and not _SWITCH_MASKED_PAN.fullmatch(pan):
        raise ValueError(f"not a PAN (12-19 digits): {pan!r}")
    return f"{pan[:6]}****{pan[-4:]}"


@dataclass(frozen=True, slots=True)
class Header:
    participant: str
    clearing_date: date
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class Detail:
    """One item as a participant sees it. ``pan`` is masked (the writer masks a full PAN)."""

    rrn: str
    stan: str
    mti: str
    pan: str
    amount_fen: int
    fee_fen: int
    direction: str
    terminal_id: str
    local_time: datetime

    @property
    def key(self) -> tuple[str, str]:
        """Reconciliation key: (RRN, STAN)."""
        return (self.rrn, self.stan)


@dataclass(frozen=True, slots=True)
class Trailer:
    count: int
    debit_total_fen: int
    credit_total_fen: int


def _check_detail(d: Detail) -> str | None:
    """The first problem with a detail's fields, or None."""
    if not _RRN.fullmatch(d.rrn):
        return f"RRN must be 12 alphanumerics, got {d.rrn!r}"
    if not _STAN.fullmatch(d.stan):
        return f"STAN must be 6 digits, got {d.stan!r}"
    if not _MTI.fullmatch(d.mti):
        return f"MTI must be 4 digits, got {d.mti!r}"
    if not _MASKED_PAN.fullmatch(d.pan):
        return "PAN must be masked as first6****last4"
    if type(d.amount_fen) is not int or d.amount_fen < 0:
        return f"amount must be a non-negative int (fen), got {d.amount_fen!r}"
    if type(d.fee_fen) is not int:
        return f"fee must be an int (fen), got {d.fee_fen!r}"
    if d.direction not in ("D", "C"):
        return f"direction must be D or C, got {d.direction!r}"
    if not _TERMINAL.fullmatch(d.terminal_id):
        return f"terminal id must be 8 alphanumerics, got {d.terminal_id!r}"
    return None


def write_clearing_file(
    participant: str,
    clearing_date: date,
    details: Iterable[Detail],
    *,
    version: int = FORMAT_VERSION,
) -> str:
    """The clearing file text for ``participant``; full PANs are masked, totals computed.

    Raises ``ValueError`` on a field the format cannot carry.
    """
    if not _PARTICIPANT.fullmatch(participant):
        raise ValueError(f"participant code must be 1-11 alphanumerics, got {participant!r}")
    if type(version) is not int or version < 1:
        raise ValueError(f"version must be a positive int, got {version!r}")
    lines = [f"H,{participant},{clearing_date:%Y%m%d},{version}"]
    count = debit = credit = 0
    for d in details:
        masked = d if _MASKED_PAN.fullmatch(d.pan) else _replace_pan(d, mask_pan(d.pan))
        problem = _check_detail(masked)
        if problem:
            raise ValueError(f"detail {count + 1}: {problem}")
        lines.append(
            f"D,{masked.rrn},{masked.stan},{masked.mti},{masked.pan},{masked.amount_fen},"
            f"{masked.fee_fen},{masked.direction},{masked.terminal_id},"
            f"{masked.local_time:%Y%m%d%H%M%S}"
        )
        count += 1
        if masked.direction == "D":
            debit += masked.amount_fen
        else:
            credit += masked.amount_fen
    lines.append(f"T,{count},{debit},{credit}")
    return "\n".join(lines) + "\n"


def _replace_pan(d: Detail, pan: str) -> Detail:
    return Detail(d.rrn, d.stan, d.mti, pan, d.amount_fen, d.fee_fen, d.direction,
                  d.terminal_id, d.local_time)


def _int_field(line_no: int, name: str, text: str, pattern: re.Pattern[str]) -> int:
    if not pattern.fullmatch(text):
        raise ClearingFileError(line_no, f"{name} is not a valid integer: {text!r}")
    return int(text)


def _parse_detail(line_no: int, fields: list[str]) -> Detail:
    if len(fields) != 10:
        raise ClearingFileError(line_no, f"detail line has {len(fields)} fields, expected 10")
    _, rrn, stan, mti, pan, amount, fee, direction, terminal, local = fields
    if _FULL_PAN.fullmatch(pan):
        raise ClearingFileError(line_no, "unmasked PAN: a clearing file must carry first6****last4")
    if not _DATETIME.fullmatch(local):
        raise ClearingFileError(line_no, f"local date-time must be YYYYMMDDhhmmss, got {local!r}")
    try:
        local_time = datetime.strptime(local, "%Y%m%d%H%M%S")
    except ValueError:
        raise ClearingFileError(line_no, f"invalid local date-time {local!r}") from None
    detail = Detail(
        rrn, stan, mti, pan,
        _int_field(line_no, "amount", amount, _AMOUNT),
        _int_field(line_no, "fee", fee, _FEE),
        direction, terminal, local_time,
    )
    problem = _check_detail(detail)
    if problem:
        raise ClearingFileError(line_no, problem)
    return detail


def parse_clearing_file(text: str) -> tuple[Header, list[Detail], Trailer]:
    """Parse and check a clearing file; raise :class:`ClearingFileError` on any defect.

    Checks every field, one header first, one trailer last, no duplicate (RRN, STAN), and the
    trailer's control totals (count, debit total, credit total) against the details.
    """
    if not isinstance(text, str):
        raise ClearingFileError(0, "clearing file must be text")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ClearingFileError(1, "empty file: no header")
    first = lines[0].split(",")
    if first[0] != "H":
        raise ClearingFileError(1, "first line must be the header (H)")
    if len(first) != 4:
        raise ClearingFileError(1, f"header has {len(first)} fields, expected 4")
    _, participant, date_text, version_text = first
    if not _PARTICIPANT.fullmatch(participant):
        raise ClearingFileError(1, f"invalid participant code {participant!r}")
    if not _DATE.fullmatch(date_text):
        raise ClearingFileError(1, f"clearing date must be YYYYMMDD, got {date_text!r}")
    try:
        clearing_date = datetime.strptime(date_text, "%Y%m%d").date()
    except ValueError:
        raise ClearingFileError(1, f"invalid clearing date {date_text!r}") from None
    version = _int_field(1, "version", version_text, _VERSION)
    if version != FORMAT_VERSION:
        raise ClearingFileError(1, f"unsupported format version {version}")
    header = Header(participant, clearing_date, version)

    details: list[Detail] = []
    seen: dict[tuple[str, str], int] = {}
    trailer: Trailer | None = None
    trailer_line = 0
    for line_no, line in enumerate(lines[1:], start=2):
        if trailer is not None:
            raise ClearingFileError(line_no, "line after the trailer")
        fields = line.split(",")
        tag = fields[0]
        if tag == "D":
            detail = _parse_detail(line_no, fields)
            if detail.key in seen:
                raise ClearingFileError(
                    line_no, f"duplicate RRN+STAN {detail.key} (first on line {seen[detail.key]})"
                )
            seen[detail.key] = line_no
            details.append(detail)
        elif tag == "T":
            if len(fields) != 4:
                raise ClearingFileError(line_no, f"trailer has {len(fields)} fields, expected 4")
            trailer = Trailer(
                _int_field(line_no, "count", fields[1], _AMOUNT),
                _int_field(line_no, "debit total", fields[2], _AMOUNT),
                _int_field(line_no, "credit total", fields[3], _AMOUNT),
            )
            trailer_line = line_no
        elif tag == "H":
            raise ClearingFileError(line_no, "second header")
        else:
            raise ClearingFileError(line_no, f"unknown record type {tag!r} (expected D or T)")
    if trailer is None:
        raise ClearingFileError(len(lines) + 1, "missing trailer (T)")
    debit = sum(d.amount_fen for d in details if d.direction == "D")
    credit = sum(d.amount_fen for d in details if d.direction == "C")
    problems = []
    if trailer.count != len(details):
        problems.append(f"count {trailer.count} but {len(details)} detail lines")
    if trailer.debit_total_fen != debit:
        problems.append(f"debit total {trailer.debit_total_fen} but details sum to {debit}")
    if trailer.credit_total_fen != credit:
        problems.append(f"credit total {trailer.credit_total_fen} but details sum to {credit}")
    if problems:
        raise ClearingFileError(trailer_line, "trailer control totals: " + "; ".join(problems))
    return header, details, trailer


@dataclass(frozen=True, slots=True)
class AmountMismatch:
    key: tuple[str, str]
    own_amount_fen: int
    switch_amount_fen: int
    own_fee_fen: int
    switch_fee_fen: int
    own_direction: str
    switch_direction: str


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """Result of :func:`reconcile`, all keyed by (RRN, STAN).

    * ``missing_own``: in the switch's file but not in the participant's records: the switch
      cleared an item the participant has no trace of. For a ``C`` item the participant's
      clearing account holds more than its books explain (长款, a surplus); for a ``D`` item
      less (短款, a shortfall).
    * ``missing_switch``: in the participant's records but not in the switch's file: not
      cleared, so the books expect money that will not move: a ``C`` item is a shortfall
      (短款) against the books, a ``D`` item a surplus (长款).
    * ``mismatched``: on both sides with a different amount, fee or direction.
    """

    matched: list[tuple[str, str]] = field(default_factory=list)
    missing_own: list[Detail] = field(default_factory=list)
    missing_switch: list[Detail] = field(default_factory=list)
    mismatched: list[AmountMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_own or self.missing_switch or self.mismatched)

    def summary(self) -> str:
        lines = [
            f"reconciliation {'OK' if self.ok else 'FAILED'}: {len(self.matched)} matched, "
            f"{len(self.missing_own)} missing on participant side, "
            f"{len(self.missing_switch)} missing on switch side, "
            f"{len(self.mismatched)} mismatched"
        ]
        for d in self.missing_own:
            kind = "长款 surplus" if d.direction == "C" else "短款 shortfall"
            lines.append(f"  not in own records: RRN {d.rrn} STAN {d.stan} "
                         f"{d.direction} {d.amount_fen} fen ({kind})")
        for d in self.missing_switch:
            kind = "短款 shortfall" if d.direction == "C" else "长款 surplus"
            lines.append(f"  not in switch file: RRN {d.rrn} STAN {d.stan} "
                         f"{d.direction} {d.amount_fen} fen ({kind})")
        for m in self.mismatched:
            lines.append(
                f"  mismatch RRN {m.key[0]} STAN {m.key[1]}: own {m.own_direction} "
                f"{m.own_amount_fen} fee {m.own_fee_fen}, switch {m.switch_direction} "
                f"{m.switch_amount_fen} fee {m.switch_fee_fen}"
            )
        return "\n".join(lines)


def reconcile(own: Sequence[Detail], switch_details: Sequence[Detail]) -> ReconciliationReport:
    """Match the participant's own records against the switch file's details by RRN+STAN."""
    own_by_key: dict[tuple[str, str], Detail] = {}
    for d in own:
        if d.key in own_by_key:
            raise ValueError(f"duplicate RRN+STAN in own records: {d.key}")
        own_by_key[d.key] = d
    report = ReconciliationReport()
    seen: set[tuple[str, str]] = set()
    for s in switch_details:
        seen.add(s.key)
        o = own_by_key.get(s.key)
        if o is None:
            report.missing_own.append(s)
        elif (o.amount_fen, o.fee_fen, o.direction) != (s.amount_fen, s.fee_fen, s.direction):
            report.mismatched.append(AmountMismatch(
                s.key, o.amount_fen, s.amount_fen, o.fee_fen, s.fee_fen, o.direction,
                s.direction,
            ))
        else:
            report.matched.append(s.key)
    report.missing_switch.extend(d for d in own if d.key not in seen)
    return report


# --- bulk writer (numpy columns) ----------------------------------------------------------

_U8 = npt.NDArray[np.uint8]
_I64 = npt.NDArray[np.int64]
_BOOL = npt.NDArray[np.bool_]
_BULK_CHUNK = 1 << 16
_FILL_CHUNK = 1 << 17

_PAIRS = np.array([ord(f"{i:02d}"[0]) | ord(f"{i:02d}"[1]) << 8 for i in range(100)],
                  dtype="<u2")  # two ASCII digits as one little-endian uint16


def _byte_column(name: str, col: npt.ArrayLike, n: int, width: int) -> npt.NDArray[np.bytes_]:
    """A bytes column as dtype ``S<width>`` (a shorter value is NUL-padded and then fails the
    caller's character check; a longer one is an error)."""
    arr = np.asarray(col)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a one-dimensional column of {n} rows")
    if arr.dtype.kind != "S":
        raise TypeError(f"{name} must be a fixed-width bytes column (dtype 'S..'), got {arr.dtype}")
    if arr.dtype.itemsize != width:
        if arr.dtype.itemsize > width and n and bool((np.strings.str_len(arr) > width).any()):
            raise ValueError(f"{name} must be {width} bytes")
        arr = arr.astype(f"S{width}")
    return np.ascontiguousarray(arr)


def _char_ok(m: _U8, alpha: bool) -> _BOOL:
    ok: _BOOL = (m - np.uint8(48)) < 10
    if alpha:
        ok |= ((m | np.uint8(32)) - np.uint8(97)) < 26
    return ok


def _check_chars(name: str, col: npt.NDArray[np.bytes_], alpha: bool, what: str,
                 first_row: int = 0) -> None:
    m = np.ascontiguousarray(col).view(np.uint8).reshape(col.shape[0], col.dtype.itemsize)
    ok = _char_ok(m, alpha)
    if not bool(ok.all()):
        row = first_row + int(np.flatnonzero(~ok.all(axis=1))[0])
        raise ValueError(f"{name} must be {what} (first bad row {row})")


def _int_column(name: str, values: npt.ArrayLike, n: int) -> _I64:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a one-dimensional column of {n} rows")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer column (fen), got dtype {arr.dtype}")
    if arr.dtype == np.uint64 and n and int(arr.max()) > 2**63 - 1:
        raise ValueError(f"{name} does not fit int64")
    return arr.astype(np.int64, copy=False)


def _pan_column(pan: npt.ArrayLike, n: int) -> npt.NDArray[np.bytes_]:
    arr = np.asarray(pan)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"pan must be a one-dimensional column of {n} rows")
    if arr.dtype.kind != "S":
        raise TypeError(f"pan must be a fixed-width bytes column (dtype 'S..'), got {arr.dtype}")
    return _byte_column("pan", arr, n, max(arr.dtype.itemsize, 14))


def _masked_pans(col: npt.NDArray[np.bytes_], first_row: int) -> tuple[
        npt.NDArray[np.bytes_], npt.NDArray[np.bytes_]]:
    """First six and last four digits (``S6``, ``S4``) of each PAN (12-19 digits, or already
    masked first6****last4): what the masked field shows."""
    n = col.shape[0]
    col = np.ascontiguousarray(col)
    m = col.view(np.uint8).reshape(n, col.dtype.itemsize)
    length = np.strings.str_len(col)
    stars = np.ascontiguousarray(m[:, 6:10]).view("<u4")[:, 0] == 0x2A2A2A2A
    first6 = np.empty(n, dtype="S6")
    last4 = np.empty(n, dtype="S4")
    first6.view(np.uint8).reshape(n, 6)[:] = m[:, :6]
    bad = np.zeros(n, dtype=np.bool_)
    for size in np.unique(length).tolist():
        rows = length == size
        uniform = bool(rows.all())
        sub = m if uniform else m[rows]
        masked = stars if uniform else stars[rows]
        digits = _char_ok(sub[:, :size], False)
        if size == 14:
            digits[:, 6:10] |= masked[:, None]
        elif not 12 <= size <= 19:
            digits[:] = False
        row_ok = digits.all(axis=1) if not bool(digits.all()) else np.ones(len(sub), np.bool_)
        tail = np.ascontiguousarray(sub[:, size - 4:size]).view("S4")[:, 0] if size >= 4 else (
            np.zeros(len(sub), dtype="S4"))
        if uniform:
            last4[:] = tail
            bad |= ~row_ok
        else:
            last4[rows] = tail
            bad[rows] = ~row_ok
    if bool(bad.any()):
        row = first_row + int(np.flatnonzero(bad)[0])
        raise ValueError(f"pan must be 12-19 digits or masked as first6****last4 (row {row})")
    return first6, last4


def _datetime_column(local_time: npt.ArrayLike, n: int) -> npt.NDArray[np.datetime64]:
    arr = np.asarray(local_time)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"local_time must be a one-dimensional column of {n} rows")
    if arr.dtype.kind != "M":
        raise TypeError(f"local_time must be a datetime64 column, got dtype {arr.dtype}")
    return arr


def _datetime_field(arr: npt.NDArray[np.datetime64], first_row: int) -> npt.NDArray[np.bytes_]:
    """A datetime64 column (truncated to seconds) as ``S14`` ``YYYYMMDDhhmmss``."""
    n = arr.shape[0]
    sec64 = arr.astype("datetime64[s]")
    if bool(np.isnat(sec64).any()):
        raise ValueError(f"local_time has NaT (row {first_row + int(np.isnat(sec64).argmax())})")
    secs = sec64.view(np.int64)
    days = secs // 86_400
    sod = secs - days * 86_400
    # civil date from days since 1970-01-01 (proleptic Gregorian, integers only)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if n and (int(year.min()) < 1000 or int(year.max()) > 9999):
        raise ValueError(f"local_time years must be in 1000..9999 (rows {first_row}+)")
    pairs = np.empty((n, 7), dtype="<u2")
    hour = sod // 3600
    minute = sod // 60 - hour * 60
    for j, part in enumerate((year // 100, year % 100, month, day, hour, minute, sod % 60)):
        pairs[:, j] = _PAIRS[part]
    return pairs.view("S14")[:, 0]


def _put_digits(out: _U8, value: _I64, *, pad: bool) -> npt.NDArray[np.int8]:
    """Write the decimal digits of non-negative ``value`` right-aligned into ``out`` (n, w);
    leading zeros become NUL if ``pad`` (the ones digit always stays). Returns the digit
    counts (with ``pad``; else zeros)."""
    w = out.shape[1]
    small = value.shape[0] == 0 or int(value.max()) < 2**32
    v: npt.NDArray[np.uint32] | npt.NDArray[np.uint64] = (
        value.astype(np.uint32) if small else value.astype(np.uint64))
    ten = v.dtype.type(10)
    nd = np.ones(value.shape[0], dtype=np.int8)
    for k in range(w - 1, -1, -1):
        q = v // ten
        digit = (v - q * ten).astype(np.uint8)
        digit += np.uint8(48)
        if pad and k < w - 1:
            nonzero = v != 0
            digit *= nonzero
            nd += nonzero
        out[:, k] = digit
        v = q
    return nd


def _put_fee(out: _U8, fee: _I64) -> None:
    """Signed ``fee`` right-aligned into ``out`` (n, w), NUL-padded, ``-`` before a negative."""
    nd = _put_digits(out, np.abs(fee), pad=True)
    neg = np.flatnonzero(fee < 0)
    if neg.shape[0]:
        out[neg, out.shape[1] - 1 - nd[neg].astype(np.intp)] = 45  # '-'


def _ndigits(value: _I64) -> int:
    return len(str(int(value.max()))) if value.shape[0] else 1


@overload
def write_clearing_files_bulk(
    participants: Sequence[str], clearing_date: date, *, issuer: npt.ArrayLike,
    acquirer: npt.ArrayLike, rrn: npt.ArrayLike, stan: npt.ArrayLike, mti: npt.ArrayLike,
    pan: npt.ArrayLike, amount_fen: npt.ArrayLike, issuer_fee_fen: npt.ArrayLike,
    acquirer_fee_fen: npt.ArrayLike, issuer_direction: npt.ArrayLike,
    terminal_id: npt.ArrayLike, local_time: npt.ArrayLike, directory: None = None,
    version: int = FORMAT_VERSION,
) -> list[bytes]: ...


@overload
def write_clearing_files_bulk(
    participants: Sequence[str], clearing_date: date, *, issuer: npt.ArrayLike,
    acquirer: npt.ArrayLike, rrn: npt.ArrayLike, stan: npt.ArrayLike, mti: npt.ArrayLike,
    pan: npt.ArrayLike, amount_fen: npt.ArrayLike, issuer_fee_fen: npt.ArrayLike,
    acquirer_fee_fen: npt.ArrayLike, issuer_direction: npt.ArrayLike,
    terminal_id: npt.ArrayLike, local_time: npt.ArrayLike, directory: str | os.PathLike[str],
    version: int = FORMAT_VERSION,
) -> list[Path]: ...


def write_clearing_files_bulk(
    participants: Sequence[str],
    clearing_date: date,
    *,
    issuer: npt.ArrayLike,
    acquirer: npt.ArrayLike,
    rrn: npt.ArrayLike,
    stan: npt.ArrayLike,
    mti: npt.ArrayLike,
    pan: npt.ArrayLike,
    amount_fen: npt.ArrayLike,
    issuer_fee_fen: npt.ArrayLike,
    acquirer_fee_fen: npt.ArrayLike,
    issuer_direction: npt.ArrayLike,
    terminal_id: npt.ArrayLike,
    local_time: npt.ArrayLike,
    directory: str | os.PathLike[str] | None = None,
    version: int = FORMAT_VERSION,
) -> list[bytes] | list[Path]:
    """Every participant's clearing file for a day, from numpy columns, in bulk.

    ``participants[i]`` is the code of participant index ``i``; one file per participant
    (an idle one gets a header and ``T,0,0,0``). Per transaction (one row): ``issuer`` and
    ``acquirer`` (participant indices, never equal), ``rrn`` (``S12``), ``stan`` (``S6``),
    ``mti`` (``S4``), ``pan`` (``S<k>``, full 12-19 digits or masked; always written masked),
    ``amount_fen`` (int, >= 0), ``issuer_fee_fen`` and ``acquirer_fee_fen`` (each side's
    signed net fee, int), ``issuer_direction`` (``S1``, ``b"D"`` or ``b"C"``; the acquirer's
    line carries the other one), ``terminal_id`` (``S8``), ``local_time`` (datetime64).

    Each transaction is a detail line in the issuer's and in the acquirer's file, in row
    order. The files are byte-identical to :func:`write_clearing_file` given the same details
    (UTF-8). Returns the bytes per participant index, or with ``directory`` writes
    ``<participant>_<YYYYMMDD>.txt`` files there and returns their paths. Raises
    ``ValueError`` (``TypeError`` for a wrongly typed column) on a field the format cannot
    carry. Rows are grouped with one stable sort; lines are built as a uint8 matrix per chunk
    (variable-width numbers NUL-padded, the padding then dropped).
    """
    n_parts = len(participants)
    for code in participants:
        if not isinstance(code, str) or not _PARTICIPANT.fullmatch(code):
            raise ValueError(f"participant code must be 1-11 alphanumerics, got {code!r}")
    if type(version) is not int or version < 1:
        raise ValueError(f"version must be a positive int, got {version!r}")
    iss = _int_column("issuer", issuer, np.asarray(issuer).shape[0])
    n = iss.shape[0]
    acq = _int_column("acquirer", acquirer, n)
    if n:
        for name, col in (("issuer", iss), ("acquirer", acq)):
            if int(col.min()) < 0 or int(col.max()) >= n_parts:
                raise ValueError(f"{name} index out of 0..{n_parts - 1}")
        if bool((iss == acq).any()):
            raise ValueError("issuer == acquirer: an item would appear twice in one file")
    amount = _int_column("amount_fen", amount_fen, n)
    if n and int(amount.min()) < 0:
        raise ValueError("amount_fen must be non-negative")
    fee2 = np.empty((n, 2), dtype=np.int64)
    fee2[:, 0] = _int_column("issuer_fee_fen", issuer_fee_fen, n)
    fee2[:, 1] = _int_column("acquirer_fee_fen", acquirer_fee_fen, n)
    if n and int(fee2.min()) == -(2**63):
        raise ValueError("fee out of range")
    dir_m = _byte_column("issuer_direction", issuer_direction, n, 1).view(np.uint8)
    if not bool(((dir_m == 68) | (dir_m == 67)).all()):
        raise ValueError("issuer_direction must be b'D' or b'C'")

    # Per transaction, the parts of its lines that do not depend on the side, one block:
    # rrn,stan,mti,pan,<amount NUL-padded>,  then  <issuer's dir>,terminal,local\n
    wa = _ndigits(amount)
    la = 41 + wa
    bw = la + 26
    columns = (
        ("rrn", _byte_column("rrn", rrn, n, 12), True, "12 alphanumerics"),
        ("stan", _byte_column("stan", stan, n, 6), False, "6 digits"),
        ("mti", _byte_column("mti", mti, n, 4), False, "4 digits"),
        ("term", _byte_column("terminal_id", terminal_id, n, 8), True, "8 alphanumerics"),
    )
    pan_c = _pan_column(pan, n)
    local_c = _datetime_column(local_time, n)
    dir_s = dir_m.view("S1")
    fields = np.dtype({
        "names": ["rrn", "stan", "mti", "first6", "last4", "dir", "term", "local"],
        "formats": ["S12", "S6", "S4", "S6", "S4", "S1", "S8", "S14"],
        "offsets": [0, 13, 20, 25, 35, la, la + 2, la + 11],
        "itemsize": bw,
    })
    template = np.zeros(bw, dtype=np.uint8)
    template[[12, 19, 24, 39, la - 1, la + 1, la + 10]] = 44
    template[31:35] = 42
    template[la + 25] = 10
    rec = np.empty(n, dtype=fields)
    block = rec.view(np.uint8).reshape(n, bw)

    def fill(lo: int) -> None:
        # in slices small enough for the temporaries to be reused, not freshly mapped
        hi = min(lo + _FILL_CHUNK, n)
        part = rec[lo:hi]
        block[lo:hi] = template
        for name, col, alpha, what in columns:
            _check_chars("terminal_id" if name == "term" else name, col[lo:hi], alpha, what,
                         lo)
            part[name] = col[lo:hi]
        part["first6"], part["last4"] = _masked_pans(pan_c[lo:hi], lo)
        part["dir"] = dir_s[lo:hi]
        part["local"] = _datetime_field(local_c[lo:hi], lo)
        _put_digits(block[lo:hi, 40:40 + wa], amount[lo:hi], pad=True)

    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fill, range(0, n, _FILL_CHUNK)))

    # Control totals per participant (int64, exact): the issuer pays on a D item.
    issuer_pays = dir_m == 68
    count = np.zeros(n_parts, dtype=np.int64)
    debit = np.zeros(n_parts, dtype=np.int64)
    credit = np.zeros(n_parts, dtype=np.int64)
    np.add.at(count, iss, np.int64(1))
    np.add.at(count, acq, np.int64(1))
    np.add.at(debit, np.where(issuer_pays, iss, acq), amount)
    np.add.at(credit, np.where(issuer_pays, acq, iss), amount)

    # Side rows 2*i (issuer's line) and 2*i+1 (acquirer's), grouped by participant in row
    # order by one stable sort (radix for small integer keys).
    keys = np.empty((n, 2), dtype=np.uint16 if n_parts <= 1 << 16 else np.int64)
    keys[:, 0] = iss
    keys[:, 1] = acq
    order = np.argsort(keys.ravel(), kind="stable")
    del keys
    bounds = np.zeros(n_parts + 1, dtype=np.int64)
    np.cumsum(count, out=bounds[1:])

    # The fee field (NUL-padded, signed) from a lookup table when the fees span a small range.
    fee_flat = fee2.ravel()
    wf = _ndigits(np.abs(fee_flat)) + 1  # room for the sign
    fee_min = int(fee_flat.min()) if n else 0
    fee_span = (int(fee_flat.max()) - fee_min + 1) if n else 1
    fee_lut: _U8 | None = None
    if fee_span <= 1 << 20:
        fee_lut = np.zeros((fee_span, wf), dtype=np.uint8)
        _put_fee(fee_lut, np.arange(fee_min, fee_min + fee_span, dtype=np.int64))
    c_fee = 2 + la
    c_right = c_fee + wf + 1
    width = c_right + 26

    def build(lo: int) -> tuple[int, int, _U8, _I64]:
        hi = min(lo + _BULK_CHUNK, 2 * n)
        side_rows = order[lo:hi]
        blk = np.take(block, side_rows >> 1, axis=0)
        mat = np.empty((hi - lo, width), dtype=np.uint8)
        mat[:, 0] = 68
        mat[:, 1] = 44
        mat[:, 2:c_fee] = blk[:, :la]
        fee = fee_flat[side_rows]
        if fee_lut is not None:
            mat[:, c_fee:c_fee + wf] = np.take(fee_lut, fee - fee_min, axis=0)
        else:
            _put_fee(mat[:, c_fee:c_fee + wf], fee)
        mat[:, c_right - 1] = 44
        mat[:, c_right:] = blk[:, la:]
        # the acquirer's line (odd side row) flips the direction: D (68) <-> C (67)
        mat[:, c_right] ^= (side_rows & 1).astype(np.uint8) * np.uint8(68 ^ 67)
        keep = mat != 0
        # bytes at each participant boundary inside the chunk
        p_first = int(np.searchsorted(bounds, lo, side="right")) - 1
        p_last = int(np.searchsorted(bounds, hi - 1, side="right")) - 1
        cuts = np.clip(bounds[p_first + 1:p_last + 1], lo, hi) - lo
        sizes = [np.count_nonzero(part) for part in np.split(keep, cuts)]
        ends = np.cumsum(np.asarray(sizes, dtype=np.int64))
        return p_first, p_last, mat[keep], ends

    out_dir = None if directory is None else Path(directory)
    pieces: list[list[bytes | memoryview]] = [[] for _ in participants]
    paths: list[Path] = []
    handle: BinaryIO | None = None
    current = -1

    def advance(to: int) -> None:
        """Close the files before ``to`` (trailer) and open those up to it (header)."""
        nonlocal current, handle
        while current < to:
            if current >= 0:
                trailer = (f"T,{int(count[current])},{int(debit[current])},"
                           f"{int(credit[current])}\n").encode()
                if handle is not None:
                    handle.write(trailer)
                    handle.close()
                    handle = None
                else:
                    pieces[current].append(trailer)
            current += 1
            if current < n_parts:
                code = participants[current]
                header = f"H,{code},{clearing_date:%Y%m%d},{version}\n".encode()
                if out_dir is not None:
                    path = out_dir / f"{code}_{clearing_date:%Y%m%d}.txt"
                    paths.append(path)
                    handle = path.open("wb")
                    handle.write(header)
                else:
                    pieces[current].append(header)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # a bounded window of chunks in flight, consumed (written) in order
            starts = iter(range(0, 2 * n, _BULK_CHUNK))
            window = deque(pool.submit(build, lo) for lo in islice(starts, 2 * workers))
            while window:
                p_first, p_last, data, ends = window.popleft().result()
                for lo in islice(starts, 1):
                    window.append(pool.submit(build, lo))
                buf = data.data
                a = 0
                for p, b in zip(range(p_first, p_last + 1), ends.tolist(), strict=True):
                    if b > a:
                        advance(p)
                        if handle is not None:
                            handle.write(buf[a:b])
                        else:
                            pieces[p].append(buf[a:b])
                    a = b
        advance(n_parts)
    finally:
        if handle is not None:
            handle.close()
    if out_dir is not None:
        return paths
    return [b"".join(parts) for parts in pieces]
