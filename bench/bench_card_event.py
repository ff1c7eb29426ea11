"""The CPU cost of one scripted card purchase through the whole bank tier.

bench_world.py's world (100 banks, 10,000 customers, 100,000 debit card holders), run with
only its POS purchases (``pos_purchase``, 30% of bench_world's mix): each a logged
``banks.event`` on a SQLite log, through the acquirer, the switch's issuer decision, the
ledger postings and the wake-up fold. Prints the CPU time (``time.process_time``) spent
firing the events, per event: CPU time, not wall time, so that a machine shared with
other work disturbs it less (compare runs interleaved, A/B, and take the least).

    python bench/bench_card_event.py [--events 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_world

from qingsuan.sim.runner import Runner


def card_event_us(events: int) -> float:
    """CPU microseconds per POS purchase event, the outcome and snapshots left out."""
    scenario = bench_world.world(10_000, 4 * events, 0)
    purchases = tuple(e for e in scenario.events if e.do == "pos_purchase")[:events]
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(replace(scenario, events=purchases), store=str(Path(tmp) / "w.db"))
        runner.build_world()
        runner.outcome = lambda: {}  # type: ignore[method-assign]
        runner.engine.snapshot = lambda *a, **k: None  # type: ignore[assignment,method-assign]
        spent = [0.0]
        fire = runner._fire

        def timed(*args: Any, **kwargs: Any) -> None:
            start = time.process_time()
            try:
                fire(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - start

        runner._fire = timed  # type: ignore[method-assign]
        runner.run()
    return 1e6 * spent[0] / len(purchases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    costs = [card_event_us(args.events) for _ in range(args.runs)]
    print(f"card purchase: {min(costs):.1f} us CPU per event (least of {args.runs}: "
          + ", ".join(f"{c:.1f}" for c in costs) + ")")


if __name__ == "__main__":
    main()
