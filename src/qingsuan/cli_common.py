"""What the ``qingsuan`` commands share: consoles, the exit code of bad input, reading a
scenario with every problem listed, and checking the paths and store urls a user types
(``cli.py``, ``cli_cards.py``, ``cli_log.py``).

Every user mistake ends in one line saying what is wrong (``fail``), never a traceback, and
is found before anything is written."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import typer
from rich.console import Console

from qingsuan.sim.scenario import ScenarioError, load_scenario

#: exit code of bad input (an invalid file, bad options): nothing was done
EXIT_INVALID: Final = 2
#: a value quoted in a message is cut to this many characters (a 50 MB value is not echoed)
MAX_QUOTED_CHARS: Final = 200
#: a problem line is cut to this many characters
MAX_LINE_CHARS: Final = 1_000


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    # never hard-wrapped: each problem stays one FILE:LINE: reason line, whatever the width
    return Console(stderr=True, highlight=False, soft_wrap=True)


def clip(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def quoted(value: object) -> str:
    """``repr(value)`` for a message, cut to :data:`MAX_QUOTED_CHARS`."""
    return repr(clip(value if isinstance(value, str) else str(value)))


def reason(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's "background" link is not)."""
    text = str(exc).strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Say what is wrong in one line on stderr (cut if it is huge) and exit."""
    err().print(clip(" ".join(message.split("\n")), MAX_LINE_CHARS), markup=False)
    raise typer.Exit(code)


def load_or_exit(file: Path) -> Any:
    """The scenario in ``file``, or every problem with its line on stderr and exit 2."""
    try:
        return load_scenario(file)
    except ScenarioError as exc:
        console = err()
        console.print(f"[bold red]{clip(str(file))}: invalid scenario, nothing was run[/] "
                      f"({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})")
        for problem in exc.problems:
            console.print(f"  {clip(str(problem), MAX_LINE_CHARS)}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def warn_events_after_run_until(scenario: Any) -> None:
    """A warning on stderr when some events come after ``run_until`` (valid; not run)."""
    late = [e for e in scenario.events if e.at_us > scenario.run_until_us]
    if late:
        err().print(f"{clip(scenario.file)}:{late[0].line}: warning: {len(late)} event"
                    f"{'s' if len(late) != 1 else ''} after run_until (from this line on) "
                    "will not run", markup=False)


# ---------------------------------------------------------------------- store urls


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A ``--store`` value the user typed, understood: its kind and, for SQLite, its file."""

    text: str
    kind: str  # "memory", "sqlite" or "postgresql"
    path: Path | None = None  # the SQLite file

    def holds_a_log(self) -> bool:
        """Whether something may already be stored there (a SQLite file that is not empty,
        any PostgreSQL database); a fresh ``memory:`` never does."""
        if self.kind == "sqlite":
            assert self.path is not None
            return self.path.exists() and self.path.stat().st_size > 0
        return self.kind == "postgresql"


_SQLITE_PREFIXES: Final = ("sqlite:///", "sqlite+pysqlite:///")
_POSTGRES_PREFIXES: Final = ("postgresql://", "postgres://", "postgresql+psycopg://")
_STORE_FORMS: Final = "memory:, PATH.db, sqlite:///PATH or postgresql://USER@HOST:PORT/DB"


def store_url(text: str, option: str = "--store", *, must_exist: bool = False) -> StoreUrl:
    """``text`` as a store url, or exit 2 saying why it cannot be one: an unknown form, a
    SQLite file in a folder that does not exist, a folder, or (``must_exist``) no file."""
    if text.startswith("memory:"):
        if must_exist:
            fail(f"{option}: {quoted(text)} is a fresh in-memory log: it holds nothing")
        return StoreUrl(text, "memory")
    if text.startswith(_POSTGRES_PREFIXES):
        return StoreUrl(text, "postgresql")
    prefix = next((p for p in _SQLITE_PREFIXES if text.startswith(p)), None)
    if prefix is not None:
        path = Path(text[len(prefix):])
    elif "://" not in text and text.endswith(".db"):
        path = Path(text)
    else:
        fail(f"{option}: {quoted(text)} is not a command log: use {_STORE_FORMS}")
    if not str(path) or str(path) == ":memory:":
        fail(f"{option}: {quoted(text)} names no file: use {_STORE_FORMS}")
    if path.is_dir():
        fail(f"{option}: {quoted(str(path))} is a folder, not a command log file")
    if must_exist and not path.exists():
        fail(f"{option}: no such command log: {quoted(str(path))}")
    parent = path.parent
    if not parent.is_dir():
        fail(f"{option}: cannot create {quoted(str(path))}: no folder {quoted(str(parent))}")
    if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
        fail(f"{option}: cannot create {quoted(str(path))}: the folder is not writable")
    return StoreUrl(text, "sqlite", path)


def writable_dir(path: Path, option: str) -> Path:
    """A folder that exists and is writable, or can be created (nothing is created here);
    else exit 2 saying why."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if path.exists() and not path.is_dir():
        fail(f"{option}: {quoted(str(path))} is a file, not a folder")
    if not probe.is_dir():
        fail(f"{option}: cannot create {quoted(str(path))}: {quoted(str(probe))} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        fail(f"{option}: {quoted(str(probe))} is not writable")
    return path


def open_log_or_exit(url: StoreUrl, *, readonly: bool) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    from qingsuan.store import LogError, open_log

    try:
        return open_log(url.text, readonly=readonly)
    except (LogError, ValueError, OSError, SQLAlchemyError) as exc:
        fail(f"--store: cannot open {quoted(url.text)}: {reason(exc)}")


def stored_world_spec(url: StoreUrl) -> tuple[dict[str, Any] | None, int]:
    """What the world in a store was built from (the body of its first command,
    ``world.build``) and how many log entries it holds; (None, 0) for an empty store. Opened
    read-only: nothing is locked or written. Exit 2 when it is not a world's log."""
    from qingsuan.store import EmptyStoreError, open_log

    try:  # a new PostgreSQL schema or database: nothing there yet, a new store
        log = open_log(url.text, readonly=True)
    except EmptyStoreError:
        return None, 0
    except Exception:
        log = open_log_or_exit(url, readonly=True)  # the same error, said as for any open
    try:
        count = log.last_seq
        first = next(iter(log.entries(0)), None)
    finally:
        log.close()
    if first is None:
        return None, 0
    try:
        spec = json.loads(first.payload[8:])  # after the command's 8-byte timestamp
    except ValueError:
        spec = None
    if first.kind != "world.build" or not isinstance(spec, dict):
        fail(f"--store: {quoted(url.text)} is a command log, but not of a world built from a "
             f"scenario (its first command is {quoted(first.kind)}); not touching it")
    return spec, count
