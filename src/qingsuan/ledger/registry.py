"""Names for books and accounts: the ledger speaks integers, people speak names.

Ids are handed out in the order names are registered, so the same world built in the same
order gets the same ids: a scenario run is reproducible down to the account numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from qingsuan.ledger.types import Account, AccountFlags, NormalSide


@dataclass(frozen=True, slots=True)
class Named:
    id: int
    name: str
    book: int


class AccountRegistry:
    def __init__(self) -> None:
        self._books: dict[str, int] = {}
        self._book_names: dict[int, str] = {}
        self._accounts: dict[str, Named] = {}
        self._by_id: dict[int, Named] = {}
        self.pending_books: list[tuple[int, str]] = []
        self.pending_accounts: list[Account] = []

    def book(self, name: str) -> int:
        """The id of the book ``name``, registering it on first use."""
        book_id = self._books.get(name)
        if book_id is None:
            book_id = len(self._books) + 1
            self._books[name] = book_id
            self._book_names[book_id] = name
            self.pending_books.append((book_id, name))
        return book_id

    def book_name(self, book_id: int) -> str:
        return self._book_names[book_id]

    def open(self, book: str, name: str, normal: NormalSide,
             flags: AccountFlags = AccountFlags.NONE, overdraft_limit_fen: int = 0) -> int:
        """Register the account ``book:name``; returns its id. Opening twice is an error."""
        full = f"{book}:{name}"
        if full in self._accounts:
            raise ValueError(f"account {full} is already open")
        book_id = self.book(book)
        account_id = len(self._accounts) + 1
        named = Named(account_id, full, book_id)
        self._accounts[full] = named
        self._by_id[account_id] = named
        self.pending_accounts.append(Account(account_id, book_id, normal, flags,
                                             overdraft_limit_fen))
        return account_id

    def id(self, book: str, name: str) -> int:
        return self._accounts[f"{book}:{name}"].id

    def name(self, account_id: int) -> str:
        return self._by_id[account_id].name

    def take_pending(self) -> tuple[list[tuple[int, str]], list[Account]]:
        """Books and accounts registered since the last call (to open them in the ledger)."""
        books, accounts = self.pending_books, self.pending_accounts
        self.pending_books, self.pending_accounts = [], []
        return books, accounts
