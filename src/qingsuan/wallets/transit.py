"""The transit code (乘车码): the user shows the app's code for a bound card at a metro or
bus gate, and the gate lets the rider through at once, offline: no round trip to the
switch or the issuer (a gate must open in a fraction of a second, underground too). The
gate knows only what the code carries and its own limits: a fare at most
``wallets.transit_ride_limit``, a day's offline rides at most
``wallets.transit_daily_limit``, and no ride of the user's still unpaid.

The next day the gates' acquirer sends the rides of earlier days in a batch
(``transit_clearing``): each ride is a purchase through the switch at its gate's terminal,
decided by the issuer, cleared at the switch's cut-off and settled in HVPS like any card
purchase. A ride the issuer declines is the operator's risk: it stays the user's debt
(欠费), retried at every later batch, and the gates refuse the user until it is paid."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qingsuan.clock import to_beijing_naive
from qingsuan.money import format_fen
from qingsuan.wallets.reasons import WalletReason
from qingsuan.wallets.state import Ride

if TYPE_CHECKING:
    from qingsuan.wallets.system import Wallets


def _day(at_us: int) -> str:
    return to_beijing_naive(at_us).date().isoformat()


def ride(w: Wallets, f: dict[str, Any]) -> None:
    """A ride authorised offline at the gate ``terminal`` for the fare ``amount``."""
    do = "transit_ride"
    found = w.bound_card(f, do)  # the app draws transit codes for bound cards only
    if found is None:
        return
    user, masked = found
    fare = int(f["amount_fen"])
    mine = [w.rides[k] for k in w.rides_of.get(user.phone, ())]
    unpaid = [r for r in mine if r.status == "declined"]
    if unpaid:
        w.refuse(f, do, WalletReason.TRANSIT_DEBT, f"{user.phone} owes "
                 f"{format_fen(sum(r.fare_fen for r in unpaid))} for "
                 f"{len(unpaid)} ride(s) the issuer declined")
        return
    limit = w.param("wallets.transit_ride_limit")
    if fare > limit:
        w.refuse(f, do, WalletReason.RIDE_LIMIT, f"fare {format_fen(fare)} is above "
                 f"{format_fen(limit)} (wallets.transit_ride_limit)")
        return
    day = _day(w.now_us)
    today = sum(r.fare_fen for r in mine if r.day == day)
    daily = w.param("wallets.transit_daily_limit")
    if today + fare > daily:
        w.refuse(f, do, WalletReason.DAILY_LIMIT, f"{format_fen(today)} ridden on {day}, "
                 f"{format_fen(fare)} more would pass {format_fen(daily)} "
                 "(wallets.transit_daily_limit)")
        return
    w.rides[f["id"]] = Ride(user.phone, f["card"], masked, f["terminal"], fare, w.now_us, day)
    w.rides_of.setdefault(user.phone, []).append(f["id"])
    w.forget_open_ride_day()
    w.record(f, do, user=user.phone, card=masked, terminal=f["terminal"],
             fare=format_fen(fare), status="authorised")


def clearing(w: Wallets, f: dict[str, Any]) -> None:
    """The batch of the rides of earlier days (and the declined ones again), each a
    purchase through the switch at its gate; rides of today wait for tomorrow's batch."""
    from qingsuan.wallets.app import MEANINGS, card_request

    do = "transit_clearing"
    today = _day(w.now_us)
    due = [(k, r) for k, r in w.rides.items()
           if r.status in ("authorised", "declined") and r.day < today]
    if not due:
        w.refuse(f, do, WalletReason.NO_RIDES, f"before {today}")
        return
    b = w.banks
    w.clearing_us = w.now_us  # the next batch comes after this one
    w.forget_open_ride_day()
    cleared, declined = [], []
    for ride_id, r in due:
        r.attempts += 1
        pid = ride_id if r.attempts == 1 else f"{ride_id}.retry{r.attempts - 1}"
        answer = card_request(w, r.card, r.masked, r.terminal, "00", r.fare_fen)
        rc = answer["39"]
        card_record = b.record(pid, "transit_ride", "CUPS", response_code=rc)
        if "key" in answer:
            b.link_card(pid, answer["key"])
        if rc == "00":
            card_record.move(w.now_us, "approved")
            r.status, r.cleared_by = "cleared", pid
            cleared.append(ride_id)
        else:
            card_record.move(w.now_us, "declined")
            card_record.reason = {"code": rc, "message": MEANINGS.get(rc, "declined")}
            r.status = "declined"
            declined.append({"ride": ride_id, "response_code": rc,
                             "message": MEANINGS.get(rc, "declined")})
    w.record(f, do, rides=len(due), cleared=cleared, declined=declined,
             amount=format_fen(sum(w.rides[k].fare_fen for k in cleared)))
