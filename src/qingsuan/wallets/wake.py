"""The wallets' own moments (the world's one wake-up rule, banks/system.py ``next_due_us``):
what happens at a time whether or not any event arrives then.

* **The issuer's statement run** (账单日): at 00:00 Beijing on day ``credit.statement_day``
  of every month (the month's last day when it is shorter) every credit card that owes
  something gets its statement (wallets/credit.py), with the interest what the previous
  statement left unpaid after its due date bore since then.
* **The transit batch** (乘车码): each day at ``wallets.transit_clearing_time`` the gates'
  acquirer sends the rides of earlier days still open (authorised, or declined before and
  retried: wallets/transit.py).
* **A campaign's close** (活动结束): in the first whole second after its validity window
  the campaign closes (wallets/vouchers.py); while one of its discounts is still in IBPS it
  closes after the command that ends the last of them.

A payment code's expiry needs no wake-up: a code holds no money and no reservation, and its
state (valid, used, expired) is read against the time of whoever asks.

Statements and the batch run while a logged tick is applied (``on_tick``): the batch sends
the switch its requests then, so the banks follow them after that command like any other.
A close only moves money within the sponsor bank's book, so it runs after any command
whose time is past the window (``after_apply``), a tick or not. Every decision reads only
the state and the command's time, so a replay takes them again identically."""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from qingsuan.clock import BEIJING, US_PER_MINUTE, US_PER_SECOND, from_datetime, to_beijing
from qingsuan.wallets import credit, transit, vouchers

if TYPE_CHECKING:
    from qingsuan.wallets.system import Wallets


@lru_cache(maxsize=64)  # asked after every command, with the same last run mostly
def statement_moment_after(after_us: int, day: int) -> int:
    """The first statement run strictly after ``after_us``: 00:00 Beijing on ``day`` of a
    month (the month's last day when it has fewer days)."""
    local = to_beijing(after_us)
    year, month = local.year, local.month
    while True:
        last = calendar.monthrange(year, month)[1]
        moment = from_datetime(datetime(year, month, min(day, last), tzinfo=BEIJING))
        if moment > after_us:
            return moment
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def clearing_moment_from(from_us: int, minutes: int) -> int:
    """The first daily batch at or after ``from_us``: ``minutes`` after Beijing midnight."""
    local = to_beijing(from_us)
    midnight = from_datetime(datetime.combine(local.date(), time(), BEIJING))
    moment = midnight + minutes * US_PER_MINUTE
    return moment if moment >= from_us else moment + 24 * 60 * US_PER_MINUTE


def close_moment(valid_until_us: int) -> int:
    """The first whole second after a campaign's validity window (the window includes
    ``valid_until`` itself)."""
    return (valid_until_us // US_PER_SECOND + 1) * US_PER_SECOND


def statement_due_us(w: Wallets) -> int | None:
    """The next statement run, in a world with credit cards."""
    if not w.has_credit_cards() or w.statements_us is None:
        return None
    return statement_moment_after(w.statements_us, w.param("credit.statement_day"))


def clearing_due_us(w: Wallets) -> int | None:
    """The next batch that has a ride to send: the first batch after the last one, on a
    day after the earliest open ride's."""
    first_day = w.open_ride_day()
    if first_day is None:
        return None
    return _batch_after(first_day, w.clearing_us, w.param("wallets.transit_clearing_time"))


@lru_cache(maxsize=64)  # asked after every command, with the same rides mostly
def _batch_after(first_day: str, last_batch_us: int, minutes: int) -> int:
    next_day = datetime.fromisoformat(first_day).replace(tzinfo=BEIJING) + timedelta(days=1)
    return clearing_moment_from(max(last_batch_us + 1, from_datetime(next_day)), minutes)


def next_due_us(w: Wallets, after_us: int) -> int | None:
    """The first of the wallets' moments strictly after ``after_us`` (None: none)."""
    if not w.active:
        return None
    candidates = [statement_due_us(w), clearing_due_us(w)]
    candidates += [close_moment(c.valid_until_us) for c in w.campaigns.values()
                   if not c.closed]
    future = [t for t in candidates if t is not None and t > after_us]
    return min(future) if future else None


def on_tick(w: Wallets, now_us: int) -> None:
    """A logged tick: the statement run and the transit batch whose time has come."""
    due = statement_due_us(w)
    if due is not None and due <= now_us:
        day = to_beijing(due).date().isoformat()
        w.statements_us = now_us
        for token, card in w.switch.cards.items():
            if card.kind == "credit" and credit.owed_fen(w, token) > 0:
                credit.statement(w, {"id": f"statement:{day}:{token}", "card": token,
                                     "pan_masked": card.pan_masked})
    due = clearing_due_us(w)
    if due is not None and due <= now_us:
        transit.clearing(w, {"id": f"transit_clearing:{to_beijing(now_us).date()}"})


def close_campaigns(w: Wallets, now_us: int) -> None:
    """Close every campaign past its window with none of its discounts in IBPS."""
    for campaign in w.campaigns.values():
        if not campaign.closed and now_us >= close_moment(campaign.valid_until_us) \
                and not vouchers.flying(w, campaign.id):
            vouchers.close(w, {"id": f"close:{campaign.id}", "campaign": campaign.id})
