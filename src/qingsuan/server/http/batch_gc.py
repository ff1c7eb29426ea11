"""The cyclic garbage collector held off while a batch is read or resolved.

A batch of 100,000 lines makes hundreds of thousands of short-lived lists and tuples, which
set off the collector's young-generation passes again and again (it counts allocations);
each pass walks the batch's live objects: measured, a third of the time of reading a batch.
Nothing of a batch forms a cycle (reference counting frees it all), so the collector is
paused for the batch's duration, and resumed when the last batch in progress ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
