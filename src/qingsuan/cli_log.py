"""``qingsuan log``: check a command log (read-only) and repair it (explicitly)."""

from __future__ import annotations

from typing import Annotated

import typer

from qingsuan.cli_common import EXIT_INVALID
from qingsuan.cli_common import err as _err
from qingsuan.cli_common import out as _out

log_app = typer.Typer(help="Check a command log (read-only) or repair it (explicitly).",
                      no_args_is_help=True)

_URL_HELP = "memory:, PATH.db or postgresql://..."


@log_app.command("verify")
def log_verify(
    url: Annotated[str, typer.Argument(help=_URL_HELP)],
    expect: Annotated[list[str] | None, typer.Option(
        help="SEQ:HASH of an entry the log must hold (a proof from an answer, or the last "
             "line of an earlier verify): catches a swapped or rolled-back store")] = None,
) -> None:
    """Verify a command log without writing anything: its hash chain, its checkpoint (a
    shortened log, a changed entry) and its newest snapshot; replay it from the first entry
    and compare with the state the world recorded (its last snapshot and the entries after
    it). Exit 0 intact, 1 damaged or not matching, 2 not a command log."""
    from qingsuan.clock import VirtualClock
    from qingsuan.engine import Engine, ReplayError, replay
    from qingsuan.store import LogError, NotAStoreError, Proof, open_log
    from qingsuan.world import world_systems

    try:
        proofs = [Proof.parse(text) for text in expect or []]
    except ValueError as exc:
        _err().print(f"--expect: {exc}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    try:
        log = open_log(url, readonly=True)  # the chain and the checkpoint
    except NotAStoreError as exc:
        _err().print(str(exc), markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except (LogError, ValueError) as exc:
        _err().print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    try:
        # the state the world recorded: its last snapshot, and the entries after it ...
        recorded = Engine(log, VirtualClock(0), systems=world_systems())
        # ... and the same entries replayed from the first
        replayed = replay(log, world_systems(), until_seq=recorded.applied_seq)
        held = [(p, log.hash_at(p.seq)) for p in proofs]
        missing = [(p, found) for p, found in held if found != p.hash]
        checkpoint, last = log.checkpoint, log.proof()
    except (LogError, ReplayError, ValueError) as exc:
        _err().print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    finally:
        log.close()
    seq, hashes = recorded.applied_seq, (recorded.state_hash(), replayed.state_hash())
    if hashes[0] != hashes[1]:
        _err().print(f"{url}: replaying the log from its first entry ends on state hash "
                     f"{hashes[1].hex()}, but the world recorded {hashes[0].hex()} at entry "
                     f"{seq}: the log does not rebuild the world that wrote it", style="red",
                     markup=False, soft_wrap=True)
        raise typer.Exit(1)
    for proof, found in missing:
        _err().print(f"{url}: does not hold entry {proof}: "
                     + (f"the log ends at entry {last.seq}" if found is None
                        else f"its entry {proof.seq} has hash {found.hex()}")
                     + " (a different or rolled-back store)", style="red", markup=False,
                     soft_wrap=True)
    if missing:
        raise typer.Exit(1)
    ledger = replayed.ledger
    _out().print(f"{url}: chain intact, entries 1..{last.seq}, checkpoint at entry "
                 f"{checkpoint.seq}; {ledger.account_count} accounts, "
                 f"{ledger.transfer_count} transfers; state hash {hashes[1].hex()}",
                 soft_wrap=True, markup=False)
    _out().print(f"last entry {last}", soft_wrap=True, markup=False)


@log_app.command("repair")
def log_repair(
    url: Annotated[str, typer.Argument(help=_URL_HELP)],
    truncate_after: Annotated[int, typer.Option(
        "--truncate-after", help="keep entries 1..SEQ (they must be intact) and remove the "
                                 "rest", metavar="SEQ")],
) -> None:
    """Repair a command log that `log verify` refuses, after keeping a copy of it (SQLite: a
    backup file beside it; PostgreSQL: *_backup_* tables): keep entries 1..SEQ, remove the
    entries after them and any snapshot beyond them or unsound, and record the result in
    the checkpoint (which also accepts a tail that is already gone). Opening a store never
    does this on its own. Exit 0 repaired, 1 refused, 2 not a command log."""
    from qingsuan.store import LogError, NotAStoreError
    from qingsuan.store.repair import repair_log

    try:
        report = repair_log(url, truncate_after)
    except (NotAStoreError, ValueError) as exc:
        _err().print(str(exc), markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except LogError as exc:
        _err().print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    out = _out()
    if not report.backup:
        out.print(f"{url}: nothing to repair: entries 1..{report.kept_seq}, checkpoint "
                  "matches", markup=False, soft_wrap=True)
        return
    out.print(f"{url}: copy kept in {report.backup}", markup=False, soft_wrap=True)
    before = report.before
    out.print(f"kept entries 1..{report.kept_seq}; removed {report.removed_entries} "
              f"entr{'y' if report.removed_entries == 1 else 'ies'} after them; dropped "
              f"snapshots: {', '.join(map(str, report.dropped_snapshots)) or 'none'}; "
              f"checkpoint was entry {before.seq if before else '(missing)'}, now entry "
              f"{report.after.seq} ({report.after.hash.hex()})", markup=False, soft_wrap=True)
