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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

FORMAT_VERSION = 1

_PARTICIPANT = re.compile(r"[0-9A-Za-z]{1,11}")
_RRN = re.compile(r"[0-9A-Za-z]{12}")
_STAN = re.compile(r"[0-9]{6}")
_MTI = re.compile(r"[0-9]{4}")
_MASKED_PAN = re.compile(r"[0-9]{6}\*{4}[0-9]{4}")
_FULL_PAN = re.compile(r"[0-9]{12,19}")
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
    """``6222021234567890123`` -> ``622202****0123``; an already masked PAN is kept."""
    if _MASKED_PAN.fullmatch(pan):
        return pan
    if not _FULL_PAN.fullmatch(pan):
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
