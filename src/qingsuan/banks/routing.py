"""Channel routing (DOMAIN.md §5 story 7): which system carries a customer's transfer.

A pure decision: the channel, the urgency, the amount, whether both accounts are in one
bank, and whether HVPS accepts payments now. Every number is a parameter (the systems' item
limits). The rules, as a Chinese bank's channels apply them:

* same bank: booked in the bank's own books (行内), no payment system;
* counter, and mobile "normal": HVPS when the amount is above the BEPS item limit, or when
  the customer asks for urgent and HVPS is open; BEPS otherwise. A payment that needs HVPS
  while HVPS is closed is **held** by the bank and sent at the next opening;
* mobile "urgent": IBPS up to its item limit; above it the bank refuses, saying the limit
  and suggesting splitting the amount or sending it "normal".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Final

from qingsuan.money import format_fen
from qingsuan.vocabulary import CHANNELS


class Route(Enum):
    BOOK = "BOOK"       # 行内: within the bank
    HVPS = "HVPS"
    BEPS = "BEPS"
    IBPS = "IBPS"
    HOLD = "HOLD"       # needs HVPS, which is closed: held for its next opening
    REFUSE = "REFUSE"


#: the routes as module globals (imported by name), for the per-transfer code: 3.11's
#: EnumType defines __getattr__, so each ``Route.BOOK`` read is a slow generic look-up
#: (some 900 instructions)
ROUTE_BOOK: Final = Route.BOOK
ROUTE_HVPS: Final = Route.HVPS
ROUTE_BEPS: Final = Route.BEPS
ROUTE_IBPS: Final = Route.IBPS
ROUTE_HOLD: Final = Route.HOLD
ROUTE_REFUSE: Final = Route.REFUSE


@dataclass(frozen=True, slots=True)
class Decision:
    route: Route
    why: str
    #: for REFUSE: the reason code and message told to the customer
    refusal: tuple[str, str] | None = None


def route_transfer(*, channel: str, urgent: bool, same_bank: bool, amount_fen: int,
                   hvps_open: bool, beps_limit_fen: int, ibps_limit_fen: int) -> Decision:
    """The route; ``ibps_limit_fen`` is read only for a mobile urgent transfer, and
    ``beps_limit_fen`` only for the others, between two banks; ``hvps_open`` only for
    those of them that are urgent or above ``beps_limit_fen``."""
    return route(channel, urgent, same_bank, amount_fen, hvps_open, beps_limit_fen,
                 ibps_limit_fen)


def route(channel: str, urgent: bool, same_bank: bool, amount_fen: int, hvps_open: bool,
          beps_limit_fen: int, ibps_limit_fen: int) -> Decision:
    """:func:`route_transfer` with its arguments in order (the per-transfer call: a call
    by keywords costs more)."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be counter or mobile, not {channel!r}")
    if same_bank:
        return _BOOK
    if channel == "mobile" and urgent:
        if amount_fen <= ibps_limit_fen:
            return _ibps(ibps_limit_fen)
        return _refuse(ibps_limit_fen)
    if amount_fen > beps_limit_fen:
        return _hvps(beps_limit_fen) if hvps_open else _hold(beps_limit_fen)
    if urgent and hvps_open:
        return _URGENT
    return _beps(beps_limit_fen)


_BOOK: Final = Decision(Route.BOOK, "both accounts are in this bank: booked at once (行内)")
_URGENT: Final = Decision(Route.HVPS, "urgent, and HVPS is open: settled gross in real time")


# The decisions that name a limit, made once per limit (a transfer's route is decided on
# every event, and the limits seldom change): a cache per route, keyed by the limit alone
# (a Route in the key would be hashed by Enum.__hash__, Python code, on every transfer).

@lru_cache(maxsize=256)
def _ibps(limit_fen: int) -> Decision:
    return Decision(Route.IBPS, f"mobile urgent up to {format_fen(limit_fen)}: IBPS, "
                                "confirmed in real time, 7x24")


@lru_cache(maxsize=256)
def _refuse(limit_fen: int) -> Decision:
    return Decision(Route.REFUSE, "above the IBPS item limit", (
        "AM02", f"urgent mobile transfers go through IBPS, whose limit is "
                f"{format_fen(limit_fen)} per item: split the amount, or send it as a "
                "normal transfer"))


@lru_cache(maxsize=256)
def _hvps(limit_fen: int) -> Decision:
    return Decision(Route.HVPS, f"above the BEPS item limit {format_fen(limit_fen)}: HVPS, "
                                "settled gross in real time")


@lru_cache(maxsize=256)
def _hold(limit_fen: int) -> Decision:
    return Decision(Route.HOLD, f"above the BEPS item limit {format_fen(limit_fen)} and HVPS "
                                "is closed: held for its next opening")


@lru_cache(maxsize=256)
def _beps(limit_fen: int) -> Decision:
    return Decision(Route.BEPS, f"up to {format_fen(limit_fen)}, not urgent (or HVPS "
                                "closed): BEPS, netted and settled at the next session")
