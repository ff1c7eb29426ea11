"""CPU time per scripted event of one kind, through the whole bank tier, durable (SQLite).

The world of bench_world.py (100 banks, 10,000 customers); for each kind, its first 3,000
events of that kind (行内 book, HVPS, BEPS, IBPS transfers, or card purchases), or the first
10,000 events of the mix. Only the events are timed, in CPU seconds of this process
(``time.process_time``: on a shared machine wall time says more about the neighbours); the
outcome and the final snapshot are not made.

    python bench/bench_transfers.py [book hvps beps ibps card mix]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import bench_world

from qingsuan.sim.runner import Runner

#: bench_world gives each transfer route its own amount
KIND_OF_AMOUNT = {10_000: "book", 10_000_000: "hvps", 20_000: "beps", 30_000: "ibps"}
KINDS = ("book", "hvps", "beps", "ibps", "card", "mix")
PER_KIND = 3_000
MIX = 10_000


def events_of(scenario: Any, kind: str) -> tuple[Any, ...]:
    if kind == "mix":
        return tuple(scenario.events[:MIX])
    if kind == "card":
        return tuple([e for e in scenario.events if e.do != "transfer"][:PER_KIND])
    return tuple([e for e in scenario.events if e.do == "transfer"
                  and KIND_OF_AMOUNT[e.fields["amount_fen"]] == kind][:PER_KIND])


def cpu_us_per_event(scenario: Any, kind: str) -> float:
    events = events_of(scenario, kind)
    with tempfile.TemporaryDirectory(prefix="bench-transfers-") as tmp:
        runner = Runner(replace(scenario, events=events), store=str(Path(tmp) / "w.db"))
        runner.build_world()
        runner.outcome = dict  # type: ignore[method-assign]
        runner.engine.snapshot = lambda: None  # type: ignore[assignment,method-assign,return-value]
        spent = [0.0]
        fire = runner._fire

        def timed(event: Any) -> None:
            start = time.process_time()
            try:
                fire(event)
            finally:
                spent[0] += time.process_time() - start

        runner._fire = timed  # type: ignore[method-assign]
        runner.run()
    return 1e6 * spent[0] / len(events)


def main() -> None:
    kinds = sys.argv[1:] or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"unknown kinds {unknown}: choose from {', '.join(KINDS)}")
    scenario = bench_world.world(10_000, 30_000, 0)
    for kind in kinds:
        print(f"{kind:5s} {cpu_us_per_event(scenario, kind):7.1f} us/event", flush=True)


if __name__ == "__main__":
    main()
