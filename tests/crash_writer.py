"""Child process of the crash test: writes batches through the engine until killed.

Prints ``ACK <seq> <hash hex>`` after each batch is acknowledged (durable, applied), so the
parent knows exactly what was acknowledged when it sends SIGKILL.
"""

from __future__ import annotations

import sys

import numpy as np

from qingsuan.clock import VirtualClock
from qingsuan.engine import Engine
from qingsuan.ledger import Account, AccountFlags, NormalSide, TransferBatch

ACCOUNTS = 20


def main(url: str, seed: int) -> None:
    clock = VirtualClock(1_000_000)
    engine = Engine.open(url, clock, snapshot_every=7)
    clock.advance_to(max(clock.now_us(), engine.ledger.last_timestamp_us))
    if engine.ledger.account_count == 0:
        engine.open_accounts([(1, "BANK")], [Account(1000, 1, NormalSide.DEBIT)] + [
            Account(i, 1, NormalSide.CREDIT, AccountFlags.MUST_NOT_OVERDRAW)
            for i in range(1, ACCOUNTS + 1)])
        engine.submit_transfers(TransferBatch.of(np.arange(1, ACCOUNTS + 1),
                                                 np.full(ACCOUNTS, 1000),
                                                 np.arange(1, ACCOUNTS + 1),
                                                 np.full(ACCOUNTS, 10**12)))
    rng = np.random.default_rng(seed)
    while True:
        seq = engine.applied_seq + 1
        n = int(rng.integers(1, 400))
        dr = rng.integers(1, ACCOUNTS + 1, n)
        cr = rng.integers(1, ACCOUNTS, n)
        cr = np.where(cr >= dr, cr + 1, cr)
        ids = seq * 1000 + np.arange(n)  # ids derive from the seq: each batch is distinct
        clock.advance_to(clock.now_us() + 1000)
        receipt = engine.submit_transfers(TransferBatch.of(ids, dr, cr, rng.integers(1, 10**6, n)))
        assert receipt.seq == seq
        sys.stdout.write(f"ACK {receipt.seq} {engine.log.last_hash.hex()}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
