"""Banks' cash managers (头寸管理, ``cash_managers:``, docs/SIMULATE.md "Cash managers"):
when each bank releases its HVPS payments, as pure functions over one bank's waiting
payments.

The simulator asks before every batch which of a bank's HVPS payments go now; the others
wait with the bank (their queue time counts). The one thing a reader would get wrong:
a policy decides what the bank *sends*; a payment sent may still queue in HVPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt

from qingsuan.clock import US_PER_MINUTE

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
PPM: Final = 1_000_000
#: pieces one payment may be split into at most
MAX_PIECES: Final = 1_000

#: defaults of the policies' parameters (docs/SIMULATE.md)
DEFAULT_BUFFER_PPM: Final = 200_000        # keep a fifth of the opening balance
DEFAULT_HOLD_MINUTES: Final = 30
DEFAULT_FINAL_MINUTES: Final = 30          # everything goes this long before the cut-off


class PolicyKind(Enum):
    IMMEDIATE = "immediate"   # release at once
    BUFFER = "buffer"         # release while a buffer of liquidity stays
    DEADLINE = "deadline"     # release when covered, or at the payment's deadline
    SPLIT = "split"           # split large payments, release at once


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind = PolicyKind.IMMEDIATE
    #: buffer: the share of the day's opening balance kept (ppm)
    buffer_ppm: int = DEFAULT_BUFFER_PPM
    #: deadline: a payment waits at most this long after its arrival
    hold_minutes: int = DEFAULT_HOLD_MINUTES
    #: buffer, deadline: everything goes this long before the HVPS cut-off
    final_minutes: int = DEFAULT_FINAL_MINUTES
    #: split: the largest piece (fen)
    max_piece_fen: int = 0
    line: int = 0


def release(policy: Policy, now_us: int, cutoff_us: int, at_us: I64, amount_fen: I64,
            available_fen: int, opening_fen: int) -> Mask:
    """Which of one bank's waiting HVPS payments (in arrival order) it sends at
    ``now_us``, given what it can pay now (balance plus unused credit) and its opening
    balance of the day."""
    n = len(amount_fen)
    if policy.kind in (PolicyKind.IMMEDIATE, PolicyKind.SPLIT) or n == 0:
        return np.ones(n, np.bool_)
    if now_us >= cutoff_us - policy.final_minutes * US_PER_MINUTE:
        return np.ones(n, np.bool_)
    keep = (max(opening_fen, 0) * policy.buffer_ppm // PPM
            if policy.kind is PolicyKind.BUFFER else 0)
    # in arrival order, while what is sent leaves the buffer: the first that does not fit
    # stops the ones after it (a bank pays in order)
    covered = np.cumsum(amount_fen) <= available_fen - keep
    covered &= np.cumprod(covered).astype(np.bool_)
    if policy.kind is PolicyKind.DEADLINE:
        covered |= now_us >= at_us + policy.hold_minutes * US_PER_MINUTE
    return np.asarray(covered, np.bool_)


def split(max_piece_fen: int, amount_fen: I64) -> tuple[I64, I64]:
    """Each amount as pieces of at most ``max_piece_fen`` (the last one the rest): the
    index of the payment each piece comes from, and the pieces' amounts."""
    assert max_piece_fen > 0
    pieces = np.minimum((amount_fen + max_piece_fen - 1) // max_piece_fen, MAX_PIECES)
    source = np.repeat(np.arange(len(amount_fen), dtype=np.int64), pieces)
    first = np.repeat(np.cumsum(pieces) - pieces, pieces)
    k = np.arange(len(source), dtype=np.int64) - first  # the piece's number
    size = np.maximum(amount_fen // pieces, max_piece_fen)[source]
    size = np.minimum(size, amount_fen[source])
    last = k == pieces[source] - 1
    piece = np.where(last, amount_fen[source] - size * (pieces[source] - 1), size)
    return source, piece.astype(np.int64)
