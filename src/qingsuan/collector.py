"""Settings of Python's cyclic garbage collector for long loops over the engine.

Everything an event or a request allocates is freed at once by reference counting, or
kept for the life of the world (payment records, the switch's transactions): the
collector's young passes find nothing to free, and with CPython's default thresholds
(700, 10, 10) they run every few events and cost a few per cent of the CPU. Its full
passes read every object of the heap, seconds for a world of millions of customers,
unless what was built before the loop is frozen (``gc.freeze``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Final

#: the collector's thresholds (young allocations, then passes of each older generation)
#: in the servers' processes and during a run's events
GC_THRESHOLDS: Final = (20_000, 20, 20)


def freeze_survivors() -> None:
    """Within ``few_collections(freeze=True)``: leave what is alive now out of every later
    pass too (a run's payment records and transactions, kept for the life of the world).
    Without it the young passes read each kept object again until it reaches the oldest
    generation: a run's passes found nothing to free yet cost 6-12% of its time, the
    more the larger the world. O(1); the block's end returns them to the collector.
    Garbage cycles not yet collected are frozen too and freed only then: a run's passes
    found none (their ``collected`` was 0), so nothing is held that a pass would free."""
    gc.freeze()


@contextlib.contextmanager
def few_collections(*, freeze: bool = False) -> Iterator[None]:
    """Collect rarely while the block runs (:data:`GC_THRESHOLDS`); with ``freeze``, the
    objects alive at its start are left out of every pass. Restored after the block."""
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if freeze:
            gc.unfreeze()
        gc.set_threshold(*previous)
