"""``qingsuan fuzz``: deterministic simulation testing (sim/fuzz.py; registered by cli.py)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Final

import typer

from qingsuan.cli_common import err, fail, out, writable_dir
from qingsuan.sim.edgefuzz import MAX_DOCUMENTS, MAX_FRAMES, EdgeRun, run_frames, run_xml
from qingsuan.sim.fuzz import MAX_MUTANTS, check_mutants, generate, run_case

#: seeds one command runs at most (make fuzz runs 10,000)
MAX_SEEDS: Final = 10_000_000


def fuzz(
    seeds: Annotated[int | None, typer.Option(
        help="how many seeds to run, from --start (default 100; none when --frames or "
             "--xml is given)")] = None,
    start: Annotated[int, typer.Option(help="the first seed")] = 0,
    out_dir: Annotated[Path, typer.Option(
        "--out", help="where a failing seed's scenario file (and failing mutants) go")
    ] = Path("fuzz-failures"),
    mutants: Annotated[int, typer.Option(
        help="mutated copies of each seed's scenario file to check (a listed error or a "
             "valid run, never a traceback)")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress line")] = False,
    frames: Annotated[int, typer.Option(
        help="mutated ISO 8583 frames to send through the card edge (sim/edgefuzz.py)")] = 0,
    xml: Annotated[int, typer.Option(
        help="mutated ISO 20022 documents to send through the CNAPS gateway")] = 0,
    edge_seed: Annotated[int, typer.Option(
        help="the seed of the --frames and --xml inputs")] = 0,
) -> None:
    """Deterministic simulation testing: each seed makes a random world (2-4 banks, a
    payment institution, customers, cards, terminals) and traffic across HVPS, BEPS, IBPS,
    cards and the banks, with faults (issuer host down/slow, duplicate card requests,
    maintenance windows, a holiday, parameter changes); checks every invariant after every
    step, crashes the engine at a random log append and resumes it, and replays the log.

    --frames and --xml fuzz the edges: mutated ISO 8583 frames (never an exception, a 30
    answer or a drop, no PAN in an error) and ISO 20022 documents (always a parseable
    pacs.002/camt.029, the world's checks hold after each).

    Exit 0 when every seed passes, 1 when one fails (each failure prints the one command
    that reproduces it and writes its scenario file under --out), 2 on bad options."""
    if not 0 <= frames <= MAX_FRAMES:
        fail(f"--frames must be 0 to {MAX_FRAMES:,}, got {frames}")
    if not 0 <= xml <= MAX_DOCUMENTS:
        fail(f"--xml must be 0 to {MAX_DOCUMENTS:,}, got {xml}")
    if edge_seed < 0:
        fail(f"--edge-seed must be 0 or more, got {edge_seed}")
    edge_failed = _edges(frames, xml, edge_seed, out_dir, quiet) if frames or xml else False
    if seeds is None and (frames or xml):
        if edge_failed:
            raise typer.Exit(1)
        return
    seeds = 100 if seeds is None else seeds
    if not 1 <= seeds <= MAX_SEEDS:
        fail(f"--seeds must be 1 to {MAX_SEEDS:,}, got {seeds}")
    if start < 0:
        fail(f"--start must be 0 or more, got {start}")
    if not 0 <= mutants <= MAX_MUTANTS:
        fail(f"--mutants must be 0 to {MAX_MUTANTS:,}, got {mutants}")
    writable_dir(out_dir, "--out")  # checked before the first seed, created at the first failure
    console, errors = out(), err()
    failed: list[int] = []
    steps = duplicates = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qingsuan-fuzz-") as tmp:
        for seed in range(start, start + seeds):
            case = generate(seed)
            verdict = run_case(case)
            steps, duplicates = steps + verdict.steps, duplicates + verdict.duplicates_sent
            problems = list(verdict.problems)
            if mutants:
                problems += check_mutants(case, mutants, Path(tmp))
            if problems:
                failed.append(seed)
                out_dir.mkdir(parents=True, exist_ok=True)
                path = out_dir / f"seed-{seed}.yaml"
                path.write_text(case.file_text(), encoding="utf-8")
                for mutant in Path(tmp).glob(f"mutant-{seed}-*.yaml"):
                    mutant.replace(out_dir / mutant.name)
                errors.print(f"seed {seed} FAILED", markup=False)
                for problem in problems:
                    errors.print("  " + problem.replace(tmp, str(out_dir)).rstrip()
                                 .replace("\n", "\n  "), markup=False, soft_wrap=True)
                errors.print(f"  scenario: {path}\n  reproduce: qingsuan fuzz --seeds 1 "
                             f"--start {seed}", markup=False, soft_wrap=True)
            done = seed - start + 1
            if not quiet and (done % 100 == 0 or done == seeds):
                rate = done / max(time.perf_counter() - t0, 1e-9)
                errors.print(f"{done:,}/{seeds:,} seeds, {len(failed)} failed, "
                             f"{rate:,.1f} seeds/s", markup=False)
    seconds = time.perf_counter() - t0
    console.print(f"fuzz: seeds {start}..{start + seeds - 1}: {seeds - len(failed):,} passed, "
                  f"{len(failed):,} failed; {steps:,} steps checked, {duplicates:,} duplicate "
                  f"card requests; {seconds:.1f} s ({seeds / max(seconds, 1e-9):,.1f} seeds/s)",
                  markup=False, soft_wrap=True)
    if failed or edge_failed:
        if not failed:
            raise typer.Exit(1)
        console.print("failed seeds: " + " ".join(map(str, failed[:50]))
                      + (" ..." if len(failed) > 50 else ""), markup=False, soft_wrap=True)
        raise typer.Exit(1)


def _edges(frames: int, xml: int, seed: int, out_dir: Path, quiet: bool) -> bool:
    """The edge runs; True when one found something (its inputs written under out_dir)."""
    console, errors = out(), err()
    runs: list[tuple[EdgeRun, str]] = []
    if frames:
        runs.append((run_frames(seed, frames, progress=None if quiet else lambda n: errors.print(
            f"{n:,}/{frames:,} frames", markup=False)), f"--frames {frames}"))
    if xml:
        runs.append((run_xml(seed, xml, progress=None if quiet else lambda n: errors.print(
            f"{n:,}/{xml:,} documents", markup=False)), f"--xml {xml}"))
    for run, option in runs:
        shown = ", ".join(f"{n:,} {what}" for what, n in run.outcomes.most_common())
        slowest = f", slowest {run.slowest_s * 1000:.1f} ms" if run.what == "xml" else ""
        console.print(f"fuzz {run.what}: seed {seed}: {run.count:,} inputs, {run.failed:,} "
                      f"failed; {shown}; {run.seconds:.1f} s "
                      f"({run.count / max(run.seconds, 1e-9):,.0f}/s{slowest})",
                      markup=False, soft_wrap=True)
        if run.failures:
            paths = run.write_failures(out_dir)
            for failure, path in zip(run.failures, paths, strict=True):
                errors.print(f"{run.what} #{failure.index} FAILED: {failure.problem}\n  "
                             f"input: {path}", markup=False, soft_wrap=True)
            errors.print(f"  reproduce: qingsuan fuzz {option} --edge-seed {seed}",
                         markup=False, soft_wrap=True)
    return any(run.failed for run, _ in runs)
