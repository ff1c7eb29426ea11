"""``qingsuan log``: check a command log (read-only) and repair it (explicitly)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qingsuan.cli_common import err as _err
from qingsuan.cli_common import out as _out

log_app = typer.Typer(help="Inspect a command log.", no_args_is_help=True)


@log_app.command("verify")
def log_verify(url: Annotated[str, typer.Argument(help="memory:, PATH.db or postgresql://...")]
               ) -> None:
    """Open a command log, verify its hash chain, replay it from the first entry and print
    the state hash. Exit 1 when the chain is broken, an entry cannot be applied, or the
    replay ends on another state than the one the world recorded (its last snapshot)."""
    from qingsuan.clock import VirtualClock
    from qingsuan.engine import Engine, ReplayError, replay
    from qingsuan.store import LogError
    from qingsuan.world import world_systems

    # a SQLite file that does not exist: say so rather than create an empty log
    sqlite_path = (url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url
                   else None if "://" in url or url.startswith("memory:") else url)
    if sqlite_path is not None and not Path(sqlite_path).exists():
        _err().print(f"{url}: no such command log", markup=False)
        raise typer.Exit(1)
    try:
        engine = replay(url, world_systems())  # closed, holding the replayed state
        replayed = engine.state_hash()
        # the state the world recorded: its last snapshot, and the entries after it
        stored = Engine.open(url, VirtualClock(0), systems=world_systems())
        try:
            recorded, seq = stored.state_hash(), stored.applied_seq
        finally:
            stored.close()
    except (LogError, ReplayError, ValueError) as exc:
        _err().print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    if recorded != replayed:
        _err().print(f"{url}: replaying the log from its first entry ends on state hash "
                     f"{replayed.hex()}, but the world recorded {recorded.hex()} at entry "
                     f"{seq}: the log does not rebuild the world that wrote it", style="red",
                     markup=False, soft_wrap=True)
        raise typer.Exit(1)
    ledger = engine.ledger
    _out().print(f"{url}: chain intact; {ledger.account_count} accounts, "
                 f"{ledger.transfer_count} transfers; state hash {replayed.hex()}",
                 soft_wrap=True)
