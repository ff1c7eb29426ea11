"""Records as JSON for snapshots and state hashes, without ``dataclasses.asdict``'s deep
copies (which cost more than the encoding itself on worlds of millions of records)."""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any


@cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def shallow(record: Any) -> dict[str, Any]:
    """The record's fields by name, as ``asdict`` gives them for flat records (whose
    fields are numbers, strings, tuples or None): the same JSON, far faster."""
    return {name: getattr(record, name) for name in _names(type(record))}
