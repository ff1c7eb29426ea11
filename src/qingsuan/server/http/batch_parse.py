"""A batch file of customer transfers, read and checked as text (no engine): CSV with a
header, or JSON lines. Any bad line refuses the whole batch, naming the line and field.

CSV columns (the header names them, in this order; ``urgent`` may be left out):
``debtor_account,creditor_bank,creditor_account,creditor_name,amount[,urgent]``.
A JSON line: ``{"debtor_account", "creditor": {"bank", "account", "name"}, "amount",
"urgent"}`` (the single transfer's fields but its id, channel and system).

Speed matters here (issue 15: >= 100,000 items/s end to end), so unquoted CSV is checked a
column at a time (a split, one regular expression over the amounts joined, the distinct
names, banks and flags: C speed); only when that finds something wrong is every line walked
one by one, with the single endpoint's checks, either to name the first bad line or to read
quoted fields.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt

from qingsuan.money import MAX_AMOUNT_FEN
from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError

#: transfers one batch holds at most
MAX_ITEMS: Final = 1_000_000
#: bytes one batch's body holds at most (a million CSV lines of about 80 bytes)
MAX_BODY_BYTES: Final = 128 * 1024 * 1024

COLUMNS: Final = ("debtor_account", "creditor_bank", "creditor_account", "creditor_name",
                  "amount")
_URGENT_WORDS: Final = {"": False, "0": False, "false": False, "1": True, "true": True}
_AMOUNTS: Final = re.compile(r"\d{1,13}(?:\.\d{1,2})?(?:,\d{1,13}(?:\.\d{1,2})?)*",
                            re.ASCII)
#: the fen of an amount's decimals as written: "" 0, "5" 50, "05" 5 (a dict look-up is
#: several times faster than int() per item)
_DECIMALS: Final = {"": 0, **{f"{d}": d * 10 for d in range(10)},
                    **{f"{d:02d}": d for d in range(100)}}


@dataclass
class Rows:
    """The batch's transfers as columns, in the file's order; ``line`` is each one's line
    number in the file (the header is line 1 of a CSV)."""

    line: list[int]
    debtor: list[str]
    bank: list[str]
    account: list[str]
    name: list[str]
    amount_fen: npt.NDArray[np.int64]
    urgent: npt.NDArray[np.bool_]
    #: fields named as JSON lines name them (``creditor.account``), not as CSV columns
    dotted: bool = False

    def field(self, column: str) -> str:
        """A CSV column's name as this batch's format names that field."""
        return column.replace("creditor_", "creditor.") if self.dotted else column

    def __len__(self) -> int:
        return len(self.line)


def refuse(line: int, field: str | None, error: ApiError) -> ApiError:
    """``error`` (a field's refusal) as the batch's: the line named in field and message."""
    return ApiError(error.status, error.reason, f"line {line}: {error.message}",
                    field or "line", extra={"line": line})


def _too_many(n: int) -> ApiError:
    return ApiError(413, "too_many_items", f"a batch holds at most {MAX_ITEMS:,} transfers "
                    f"(this one {n:,}): split it")


def _empty() -> ApiError:
    return ApiError(400, "missing_body", "the batch holds no transfer")


def parse_csv(text: str) -> Rows:
    head, _, rest = text.lstrip("\ufeff").replace("\r\n", "\n").partition("\n")
    header = [h.strip() for h in head.split(",")]
    if header not in (list(COLUMNS), [*COLUMNS, "urgent"]):
        raise ApiError(400, "invalid_header", "the first line names the columns: "
                       f"{','.join(COLUMNS)}[,urgent] (got {inputs.clip(head)})",
                       "line", extra={"line": 1})
    with_urgent = len(header) == 6
    body = rest[:-1] if rest.endswith("\n") else rest
    count = body.count("\n") + 1 if body else 0
    if count == 0:
        raise _empty()
    if count > MAX_ITEMS:
        raise _too_many(count)
    lines = body.split("\n")
    rows = None if '"' in body else _fast_rows(lines, with_urgent)
    return rows if rows is not None else _slow_csv(lines, with_urgent)


def _fast_rows(lines: list[str], with_urgent: bool) -> Rows | None:
    """Rows of plain lines (no quotes), checked by column in C (a join and one regular
    expression, a set of the distinct values), or None when anything looks wrong: the slow
    path then names the line. Account numbers are not checked here: the accounts of the
    world are looked up (batch_book.py), and one that is not there is refused then."""
    width = 6 if with_urgent else 5
    if set(map(str.count, lines, repeat(","))) != {width - 1}:
        return None
    # one split of the whole text, then columns by slicing: no list per line
    flat = ",".join(lines).split(",")
    cols = [flat[k::width] for k in range(width)]
    if with_urgent:
        if not set(cols[5]) <= _URGENT_WORDS.keys():
            return None
        urgent = np.array([_URGENT_WORDS[u] for u in cols[5]], np.bool_)
    else:
        urgent = np.zeros(len(lines), np.bool_)
    return _checked(2, cols[0], cols[1], cols[2], cols[3], cols[4], urgent)


def _checked(first: int, debtor: list[str], bank: list[str], account: list[str],
             name: list[str], amount: list[str], urgent: npt.NDArray[np.bool_]
             ) -> Rows | None:
    """Rows from columns of strings, the amounts, names and banks checked a column at a
    time; None when one is bad (the slow path then names the line)."""
    joined = ",".join(amount)
    if joined.count(",") != len(amount) - 1 or not _AMOUNTS.fullmatch(joined):
        return None
    whole, decimals = zip(*(a.partition(".")[::2] for a in amount), strict=True)
    fen = np.array(list(map(int, whole)), np.int64) * 100 + \
        np.array(list(map(_DECIMALS.__getitem__, decimals)), np.int64)
    if (fen <= 0).any() or (fen > MAX_AMOUNT_FEN).any():
        return None
    for one in set(name):
        if not one.strip() or len(one) > inputs.MAX_NAME_CHARS or not one.isprintable():
            return None
    if any(not b or not b.isalnum() for b in set(bank)):
        return None
    return Rows(list(range(first, first + len(amount))), list(debtor), list(bank),
                list(account), list(name), fen, urgent)


_JSON_KEYS: Final = frozenset({"debtor_account", "creditor", "amount", "urgent"})
_CREDITOR_KEYS: Final = frozenset({"bank", "account", "name"})


def _fast_jsonl(lines: list[str]) -> Rows | None:
    """JSON lines read by one ``json.loads`` of them all as an array (C speed), checked a
    column at a time; None when anything looks wrong (the slow path names the line)."""
    try:
        docs = json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        return None
    if len(docs) != len(lines) or set(map(type, docs)) != {dict}:
        return None  # (a line holding two values, or not an object)
    if not set().union(*map(dict.keys, docs)) <= _JSON_KEYS:
        return None
    try:
        creditors = [d["creditor"] for d in docs]
        if set(map(type, creditors)) != {dict} or \
                not set().union(*map(dict.keys, creditors)) <= _CREDITOR_KEYS:
            return None
        debtor = [d["debtor_account"] for d in docs]
        amount = [d["amount"] for d in docs]
        bank = [c["bank"] for c in creditors]
        account = [c["account"] for c in creditors]
        name = [c["name"] for c in creditors]
    except KeyError:
        return None
    if any(set(map(type, col)) != {str} for col in (debtor, amount, bank, account, name)):
        return None
    flags = [d.get("urgent", False) for d in docs]
    if set(map(type, flags)) != {bool}:
        return None
    rows = _checked(1, debtor, bank, account, name, amount, np.array(flags, np.bool_))
    if rows is not None:
        rows.dotted = True
    return rows


def _slow_csv(lines: list[str], with_urgent: bool) -> Rows:
    width = 6 if with_urgent else 5
    out = _Builder()
    for k, raw in enumerate(lines):
        number = k + 2
        try:
            cells = next(csv.reader([raw.rstrip("\r")]), [])
        except csv.Error as exc:  # (a stray carriage return, a NUL)
            raise ApiError(422, "invalid_line", f"line {number}: not a CSV line ({exc})",
                           "line", extra={"line": number}) from None
        if len(cells) != width:
            raise ApiError(422, "invalid_line", f"line {number}: {width} columns expected, "
                           f"{len(cells)} found", "line", extra={"line": number})
        urgent = cells[5].strip().lower() if with_urgent else ""
        if urgent not in _URGENT_WORDS:
            raise refuse(number, "urgent", ApiError(422, "invalid_field", "urgent is 0, 1, "
                                                    f"true or false (got {inputs.clip(urgent)})"))
        out.add(number, cells[0].strip(), cells[1].strip(), cells[2].strip(), cells[3],
                cells[4], _URGENT_WORDS[urgent])
    return out.rows()


def parse_jsonl(text: str) -> Rows:
    lines = text.split("\n")
    if lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise _empty()
    if len(lines) > MAX_ITEMS:
        raise _too_many(len(lines))
    fast = _fast_jsonl(lines)
    if fast is not None:
        return fast
    out = _Builder()
    for k, raw in enumerate(lines):
        number = k + 1
        try:
            doc = json.loads(raw)
        except ValueError:
            raise ApiError(400, "invalid_json", f"line {number}: not a JSON object",
                           "line", extra={"line": number}) from None
        if not isinstance(doc, dict):
            raise ApiError(400, "invalid_json", f"line {number}: not a JSON object",
                           "line", extra={"line": number})
        creditor = doc.get("creditor")
        unknown = set(doc) - {"debtor_account", "creditor", "amount", "urgent"}
        if not unknown and isinstance(creditor, dict):
            unknown = {f"creditor.{f}" for f in set(creditor) - {"bank", "account", "name"}}
        if unknown:
            raise refuse(number, min(unknown), ApiError(422, "unknown_field",
                                                        f"unknown field {min(unknown)}"))
        if not isinstance(creditor, dict):
            raise refuse(number, "creditor", ApiError(422, "invalid_type", "creditor is an "
                                                      "object {bank, account, name}"))
        urgent = doc.get("urgent", False)
        if not isinstance(urgent, bool):
            raise refuse(number, "urgent", ApiError(422, "invalid_type", "urgent is true or "
                                                    "false"))
        fields = (doc.get("debtor_account"), creditor.get("bank"), creditor.get("account"),
                  creditor.get("name"))
        for field, value in zip(("debtor_account", "creditor.bank", "creditor.account",
                                 "creditor.name"), fields, strict=True):
            if not isinstance(value, str):
                raise refuse(number, field, ApiError(422, "missing_field" if value is None
                                                     else "invalid_type", f"{field} is a "
                                                     "string"))
        out.add(number, str(fields[0]), str(fields[1]), str(fields[2]), str(fields[3]),
                doc.get("amount"), urgent, dotted=True)
    rows = out.rows()
    rows.dotted = True
    return rows


class _Builder:
    """Rows checked one at a time, with the single endpoint's checks (inputs.py)."""

    def __init__(self) -> None:
        self.line: list[int] = []
        self.debtor: list[str] = []
        self.bank: list[str] = []
        self.account: list[str] = []
        self.name: list[str] = []
        self.fen: list[int] = []
        self.urgent: list[bool] = []

    def add(self, number: int, debtor: str, bank: str, account: str, name: str,
            amount: object, urgent: bool, *, dotted: bool = False) -> None:
        fields = ("debtor_account", "creditor.bank", "creditor.account", "creditor.name") \
            if dotted else ("debtor_account", "creditor_bank", "creditor_account",
                            "creditor_name")
        try:
            fen = inputs.amount_fen(amount, "amount")
            inputs.account(debtor, fields[0])
            if not bank:
                raise ApiError(422, "missing_field", "the creditor's bank is empty", fields[1])
            inputs.account(account, fields[2])
            inputs.name(name, fields[3])
        except ApiError as exc:
            raise refuse(number, exc.field, exc) from None
        self.line.append(number)
        self.debtor.append(debtor)
        self.bank.append(bank)
        self.account.append(account)
        self.name.append(name)
        self.fen.append(fen)
        self.urgent.append(urgent)

    def rows(self) -> Rows:
        return Rows(self.line, self.debtor, self.bank, self.account, self.name,
                    np.array(self.fen, np.int64), np.array(self.urgent, np.bool_))
