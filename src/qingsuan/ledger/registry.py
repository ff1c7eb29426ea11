"""Names for books and accounts: the ledger speaks integers, people speak names.

The engine fills the registry while applying logged ``accounts`` commands (each account is
logged with its full name ``BOOK:NAME``), so replaying the log rebuilds the names too, and
ids handed out in order make a world built in the same order get the same ids.

A world of millions of generated customers opens their accounts as **ranges**: ``count``
accounts named ``PREFIX0`` .. ``PREFIX{count-1}`` with consecutive ids. A range keeps no
name of its own: a name is derived from its id and an id from its name (the prefix, then
the index in decimal without leading zeros), so ten million accounts cost a few integers.
"""

from __future__ import annotations

import bisect
import json
from typing import Any, Final

#: the characters a range member's name ends in (its index)
DIGITS: Final = "0123456789"


def canonical_index(digits: str, count: int | None = None) -> int | None:
    """The index a range member's trailing ``digits`` give: canonical decimal (no leading
    zero but ``0`` itself), so that the name is the one its range gives that index; None
    otherwise (no digits, or a leading zero), and when ``count`` is given for one not below
    it (past the range's end)."""
    if not digits or (digits[0] == "0" and len(digits) > 1):
        return None
    k = int(digits)
    return k if count is None or k < count else None


def split_index(name: str) -> tuple[str, int] | None:
    """``name`` as (prefix, index) when it ends in a canonical decimal index: the form
    range members are named in; None otherwise."""
    prefix = name.rstrip(DIGITS)
    k = canonical_index(name[len(prefix):])
    return None if k is None else (prefix, k)


class AccountRegistry:
    def __init__(self) -> None:
        #: book name -> book id
        self.books: dict[str, int] = {}
        self._book_names: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._max_id = 0
        #: ranges: full-name prefix -> (count, first id); and their first ids in order
        self._ranges: dict[str, tuple[int, int]] = {}
        self._range_starts: list[int] = []
        self._range_prefixes: list[str] = []
        #: the ranges again by book, then the rest of the prefix: (count, first id) under
        #: every split of the full prefix at a colon (a book's name may hold one), so that
        #: :meth:`id` finds a range member's id without making its full name
        self._ranges_in: dict[str, dict[str, tuple[int, int]]] = {}

    def add_book(self, book_id: int, name: str) -> None:
        self.books[name] = book_id
        self._book_names[book_id] = name

    def add_account(self, account_id: int, book_id: int, full_name: str) -> None:
        if self.has(full_name):
            raise ValueError(f"account name {full_name} is used twice")
        if self._in_range(account_id) is not None:
            raise ValueError(f"account id {account_id} belongs to a range")
        self._ids[full_name] = account_id
        self._names[account_id] = full_name
        self._max_id = max(self._max_id, account_id)

    def add_range(self, prefix: str, count: int, first_id: int) -> None:
        """Name ``count`` accounts with ids ``first_id``, ``first_id + 1``, ...:
        ``PREFIX0``, ``PREFIX1``, ... (full names, ``BOOK:name``). The prefix must not end
        in a digit (a name splits into prefix and index one way only), nor be a range's
        already; no named account may fall in the range, by name or by id."""
        if count <= 0 or first_id <= 0:
            raise ValueError(f"a range of {count} accounts from id {first_id}")
        if not prefix or prefix[-1] in DIGITS:
            raise ValueError(f"a range's prefix ends in a letter or a sign: {prefix!r}")
        if prefix in self._ranges:
            raise ValueError(f"account names {prefix}N are used twice")
        last_id = first_id + count - 1
        k = bisect.bisect_right(self._range_starts, last_id)
        if k and self._range_starts[k - 1] + self._ranges[self._range_prefixes[k - 1]][0] \
                > first_id:
            raise ValueError(f"account ids {first_id}-{last_id} overlap a range")
        for name, aid in self._ids.items():  # the named accounts: a world's few
            split = split_index(name)
            if (split is not None and split[0] == prefix and split[1] < count) or \
                    first_id <= aid <= last_id:
                raise ValueError(f"account {name} (id {aid}) falls in the range {prefix}N")
        self._ranges[prefix] = (count, first_id)
        for at, sign in enumerate(prefix):
            if sign == ":":
                self._ranges_in.setdefault(prefix[:at], {})[prefix[at + 1:]] = (count, first_id)
        self._range_starts.insert(k, first_id)
        self._range_prefixes.insert(k, prefix)
        self._max_id = max(self._max_id, last_id)

    def _in_range(self, account_id: int) -> tuple[str, int] | None:
        """(prefix, index) of an id that belongs to a range."""
        k = bisect.bisect_right(self._range_starts, account_id) - 1
        if k < 0:
            return None
        prefix = self._range_prefixes[k]
        count, first = self._ranges[prefix]
        return (prefix, account_id - first) if account_id < first + count else None

    def _lookup(self, full_name: str) -> int | None:
        found = self._ids.get(full_name)
        if found is not None or not self._ranges:
            return found
        # (split_index inline: no tuple made)
        prefix = full_name.rstrip(DIGITS)
        hit = self._ranges.get(prefix)  # (count, first id)
        if hit is None:
            return None
        k = canonical_index(full_name[len(prefix):], hit[0])
        return None if k is None else hit[1] + k

    def next_account_id(self) -> int:
        return self._max_id + 1

    def has(self, full_name: str) -> bool:
        return self._lookup(full_name) is not None

    def id(self, book: str, name: str) -> int:
        """The id of account ``book:name``; KeyError naming it if unknown."""
        # a range member first, read off its name (no account is named as one: add_range
        # and add_account see to it), without making the full name: at a million
        # customers most events meet customers whose ids no cache holds
        in_book = self._ranges_in.get(book)
        if in_book is not None:
            prefix = name.rstrip(DIGITS)
            hit = in_book.get(prefix)  # (count, first id)
            if hit is not None:
                k = canonical_index(name[len(prefix):], hit[0])
                if k is not None:
                    return hit[1] + k
        found = self._ids.get(f"{book}:{name}")
        if found is None:
            raise KeyError(f"no account {book}:{name}")
        return found

    def account_id(self, full_name: str) -> int:
        """The id of account ``BOOK:name`` by its full name; KeyError naming it if unknown."""
        found = self._lookup(full_name)
        if found is None:
            raise KeyError(f"no account {full_name}")
        return found

    def name(self, account_id: int) -> str:
        found = self._names.get(account_id)
        if found is not None:
            return found
        hit = self._in_range(account_id) if self._ranges else None
        return f"{hit[0]}{hit[1]}" if hit is not None else f"#{account_id}"

    def book_name(self, book_id: int) -> str:
        return self._book_names[book_id]

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"books": sorted(self.books.items()),
                               "accounts": sorted(self._names.items())}
        if self._ranges:  # only then: a registry without ranges reads as it always did
            doc["ranges"] = [[p, *self._ranges[p]] for p in self._range_prefixes]
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AccountRegistry:
        doc = json.loads(data)
        reg = cls()
        for name, book_id in doc["books"]:
            reg.add_book(int(book_id), str(name))
        for account_id, full in doc["accounts"]:
            reg._ids[str(full)] = int(account_id)
            reg._names[int(account_id)] = str(full)
            reg._max_id = max(reg._max_id, int(account_id))
        for prefix, count, first in doc.get("ranges", ()):
            reg.add_range(str(prefix), int(count), int(first))
        return reg
