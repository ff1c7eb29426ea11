"""Names for books and accounts: the ledger speaks integers, people speak names.

The engine fills the registry while applying logged ``accounts`` commands (each account is
logged with its full name ``BOOK:NAME``), so replaying the log rebuilds the names too, and
ids handed out in order make a world built in the same order get the same ids.
"""

from __future__ import annotations

import json


class AccountRegistry:
    def __init__(self) -> None:
        #: book name -> book id
        self.books: dict[str, int] = {}
        self._book_names: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._max_id = 0

    def add_book(self, book_id: int, name: str) -> None:
        self.books[name] = book_id
        self._book_names[book_id] = name

    def add_account(self, account_id: int, book_id: int, full_name: str) -> None:
        if full_name in self._ids:
            raise ValueError(f"account name {full_name} is used twice")
        self._ids[full_name] = account_id
        self._names[account_id] = full_name
        self._max_id = max(self._max_id, account_id)

    def next_account_id(self) -> int:
        return self._max_id + 1

    def has(self, full_name: str) -> bool:
        return full_name in self._ids

    def id(self, book: str, name: str) -> int:
        """The id of account ``book:name``; KeyError naming it if unknown."""
        full = f"{book}:{name}"
        try:
            return self._ids[full]
        except KeyError:
            raise KeyError(f"no account {full}") from None

    def account_id(self, full_name: str) -> int:
        """The id of account ``BOOK:name`` by its full name; KeyError naming it if unknown."""
        try:
            return self._ids[full_name]
        except KeyError:
            raise KeyError(f"no account {full_name}") from None

    def name(self, account_id: int) -> str:
        return self._names.get(account_id, f"#{account_id}")

    def book_name(self, book_id: int) -> str:
        return self._book_names[book_id]

    def to_bytes(self) -> bytes:
        doc = {"books": sorted(self.books.items()), "accounts": sorted(self._names.items())}
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
        return reg
