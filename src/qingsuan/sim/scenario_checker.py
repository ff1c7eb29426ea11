"""Reading one scenario file: the checker that collects every problem with its line, and
the shapes names, ids, bank codes and account numbers must have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from qingsuan.clock import from_datetime
from qingsuan.money import AmountError, parse_amount
from qingsuan.sim.scenario_model import Problem
from qingsuan.sim.yamlloc import LDict, LList

NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,31}$")
ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")
BANK_CODE_RE: Final = re.compile(r"^\d{12}$")
PI_CODE_RE: Final = re.compile(r"^[A-Z][A-Z0-9]{11}$")
ACCOUNT_RE: Final = re.compile(r"^\d{6,32}$")



class FileChecker:
    """Collects problems while reading one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LDict | None:
        if not isinstance(value, LDict):
            self.add(line, f"{what} must be a mapping of keys to values")
            return None
        return value

    def seq(self, doc: LDict, key: str) -> list[tuple[Any, int]]:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, LList):
            self.add(doc.line_of(key), f"{key} must be a list")
            return []
        return list(zip(value, value.item_lines, strict=True))

    def keys(self, doc: LDict, what: str, required: Iterable[str], optional: Iterable[str]
             ) -> bool:
        req = tuple(required)
        allowed = set(req) | set(optional)
        ok = True
        for key in doc:
            if key not in allowed:
                self.add(doc.line_of(key), f"{what}: unknown key {key!r} (allowed: "
                                           f"{', '.join(sorted(allowed))})")
                ok = False
        for key in req:
            if key not in doc:
                self.add(doc.line, f"{what}: missing required key {key!r}")
                ok = False
        return ok

    def text(self, doc: LDict, key: str, what: str, pattern: re.Pattern[str] | None = None,
             hint: str = "", default: str | None = None) -> str | None:
        if key not in doc:
            return default
        value = doc[key]
        if isinstance(value, bool) or value is None or not isinstance(value, str | int):
            self.add(doc.line_of(key), f"{what}: {key} must be text (got {value!r})")
            return None
        text = str(value)
        if pattern is not None and not pattern.match(text):
            self.add(doc.line_of(key), f"{what}: {key} {text!r} is not valid{hint}")
            return None
        return text

    def amount(self, doc: LDict, key: str, what: str, *, allow_zero: bool = True,
               default: int | None = 0) -> int | None:
        if key not in doc:
            return default
        try:
            return parse_amount(doc[key], field=f"{what}: {key}", allow_zero=allow_zero)
        except AmountError as exc:
            self.add(doc.line_of(key), str(exc))
            return None

    def time(self, doc: LDict, key: str, what: str) -> int | None:
        if key not in doc:
            return None
        value = doc[key]
        try:
            if isinstance(value, datetime):
                return from_datetime(value)
            if not isinstance(value, str):
                raise ValueError
            return from_datetime(datetime.fromisoformat(value.strip()))
        except ValueError:
            self.add(doc.line_of(key), f"{what}: {key} must be a date-time like "
                                       f"2026-11-25T10:00 (got {value!r})")
            return None


