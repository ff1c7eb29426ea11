"""The switch's clearing day (日切): at the cut-off the day's items are cleared into net
positions with the fees (cards/clearing.py), the banks' dues to and from the switch move
into their CUPS clearing accounts, acquirers pay their merchants, and the positions go to
CNAPS to settle in HVPS (docs/CARDS.md). A day is closed from the switch's own records,
even while stand-in advices still wait for their issuer."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from qingsuan.cards import batch, clearing
from qingsuan.cards.records import (
    CLEARING_KIND,
    SWITCH,
    CardTxn,
    Terminal,
    awaiting_clearing,
    hhmm,
    mdr_fen,
)
from qingsuan.clock import from_datetime, to_beijing_naive
from qingsuan.params import Params

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch
    from qingsuan.engine import Engine


def cutoff_after_us(params: Params, after_us: int) -> int:
    """The first cut-off (``cards.cutoff``, Beijing time) after ``after_us``."""
    cutoff = hhmm(int(params["cards.cutoff"]))
    day = to_beijing_naive(after_us).date()
    at = from_datetime(dt.datetime.combine(day, cutoff))
    if at <= after_us:
        at = from_datetime(dt.datetime.combine(day + dt.timedelta(days=1), cutoff))
    return at


def close_due(sw: CardSwitch, now_us: int) -> None:
    """Close every clearing day whose cut-off has come."""
    assert sw.engine is not None
    cutoff = hhmm(int(sw.engine.params["cards.cutoff"]))
    for day in sorted(set(sw._open_by_day) | set(sw.batch_days)):
        ends = from_datetime(dt.datetime.combine(dt.date.fromisoformat(day), cutoff))
        if ends > now_us:
            continue
        if day in sw.days_closed or (day not in sw.batch_days and not any(
                awaiting_clearing(t) for t in sw._open_by_day[day])):
            sw._open_by_day.pop(day, None)  # nothing of it left to clear (all reversed)
            continue
        close_day(sw, day, now_us)


def close_day(sw: CardSwitch, day: str, now_us: int) -> None:
    """清分: the day's approved transactions into net positions with the fees; the
    banks' dues to and from the switch move into their CUPS clearing accounts, the
    acquirers pay their merchants net of the MDR and of refunds, and the positions go
    to HVPS."""
    assert sw.engine is not None
    params, reg = sw.engine.params, sw.engine.registry
    # in the order the switch took them (the files' and the postings' order)
    txns = [t for t in sw.txns.values() if t.clearing_date == day and awaiting_clearing(t)]
    sw.days_closed.append(day)
    sw._open_by_day.pop(day, None)
    bulk = batch.take_day(sw, day)  # what batches brought to the day (cards/batch.py)
    merchants, paid = None, None
    if bulk is not None:  # its merchants that the day's requests concern too: together
        apart = {sw.terminals[t.terminal].merchant for t in txns
                 if t.terminal in sw.terminals} | set(sw.merchant_carry)
        merchants, paid = batch.payouts(sw, bulk, {m for m in apart if m is not None})
    postings = merchant_payouts(sw.engine, sw.terminals, sw.merchant_carry, txns,
                                sw.payouts, day, merchants)
    onus = [(t.acquirer, t.amount_fen) for t in txns if t.issuer == t.acquirer]
    if bulk is not None:
        onus += sorted(bulk.onus_fen.items())
    for bank, amount in onus:  # 本行卡: the bank owes itself; nothing crosses to another bank
        postings.append((reg.id(bank, "due_to_switch"), reg.id(bank, "due_from_switch"),
                         amount))
    inter = [t for t in txns if t.issuer != t.acquirer and t.issuer is not None]
    positions: dict[str, int] = {}
    batched = bulk.by_name() if bulk is not None else {}
    if inter or batched:
        positions = _interbank(sw.engine, params, inter, postings, batched)
    if paid is not None:  # a payout per merchant, perhaps millions: the vector path
        cols = np.array(postings, np.int64).reshape(-1, 3)
        sw.engine.post_columns(*(np.concatenate([cols[:, k], paid[k]]) for k in range(3)))
    elif postings:
        done = sw.engine.post(postings, linked=True)
        assert done.all_done, done.failures()
    if sw.cnaps is not None and any(positions.values()):
        sw.cnaps.net["CUPS"].add_positions(f"cards:{day}",
                                           {k: v for k, v in positions.items() if v},
                                           now_us)
    for t in txns:
        t.status = "cleared"
        sw._unindex_open(t)
        sw.notices.append((now_us, t.key, "cleared"))
    if not any(positions.values()):
        # Nothing crosses a settlement account (the day was all on-us, or it netted to
        # zero): the banks' own books are final at the close, there is no HVPS batch.
        # (The switch's own record stays "cleared", as for days settled in HVPS.)
        for t in txns:
            sw.notices.append((now_us, t.key, "settled"))


def _interbank(engine: Engine, params: Params, inter: list[CardTxn],
               postings: list[tuple[int, int, int]], batched: dict[str, list[int]]
               ) -> dict[str, int]:
    """The net positions of the day's interbank items (the switch's included; they sum to
    zero), with the fees each side got or paid fixed on the items, and those the day's
    batches cleared (``batched``: cards/batch.py's totals per participant); appends each
    bank's move of its dues into ``cups_clearing`` and of its fee difference to
    ``interchange_income`` / ``interchange_expense`` to ``postings``."""
    reg = engine.registry
    names = sorted({t.issuer for t in inter if t.issuer} | {t.acquirer for t in inter}
                   | {SWITCH} | set(batched))
    index = {n: i for i, n in enumerate(names)}
    result = clearing.clear(
        np.array([index[t.issuer] for t in inter if t.issuer], np.int64),
        np.array([index[t.acquirer] for t in inter], np.int64),
        np.array([CLEARING_KIND[t.proc] for t in inter], np.int64),
        np.array([clearing.CREDIT if t.card_kind == "credit" else clearing.DEBIT
                  for t in inter], np.int64),
        np.array([t.amount_fen for t in inter], np.int64),
        n_participants=len(names), switch=index[SWITCH], schedule=fee_schedule(params),
        fee_base_fen=np.array([t.fee_base_fen or t.amount_fen for t in inter], np.int64),
        refunded_before_fen=np.array([t.refunded_before_fen for t in inter], np.int64))
    # the clearing files show these, as cleared (as Python ints: one column read each)
    for t, issuer_fee, acquirer_fee in zip(inter, result.issuer_fee_net_fen.tolist(),
                                           result.acquirer_fee_net_fen.tolist(), strict=True):
        t.issuer_fee_net_fen = issuer_fee
        t.acquirer_fee_net_fen = acquirer_fee
    # what each owes (as payer: CardTxn.payer) and is due (as payee) of the items' amounts
    # are the clearing's gross debit and credit totals
    positions: dict[str, int] = {}
    for n, p, owed, due in zip(names, result.positions_fen.tolist(),
                               result.debit_total_fen.tolist(),
                               result.credit_total_fen.tolist(), strict=True):
        if n in batched:  # [items, owed, due, fees paid, fees received, position]
            owed += batched[n][1]
            due += batched[n][2]
            p += batched[n][5]
        positions[n] = p
        if n == SWITCH:  # the network fees it took (or, for refunds, gave back)
            if p > 0:
                postings.append((reg.id(n, "cups_clearing"), reg.id(n, "fee_income"), p))
            elif p < 0:
                postings.append((reg.id(n, "fee_income"), reg.id(n, "cups_clearing"), -p))
            continue
        clear_acc = reg.id(n, "cups_clearing")
        if owed:
            postings.append((reg.id(n, "due_to_switch"), clear_acc, owed))
        if due:
            postings.append((clear_acc, reg.id(n, "due_from_switch"), due))
        fee = p - (due - owed)
        if fee > 0:
            postings.append((clear_acc, reg.id(n, "interchange_income"), fee))
        elif fee < 0:
            postings.append((reg.id(n, "interchange_expense"), clear_acc, -fee))
    return positions


def merchant_payouts(engine: Engine, terminals: dict[str, Terminal],
                     merchant_carry: dict[str, int], txns: list[CardTxn],
                     payouts: list[tuple[str, str, str, int]], day: str,
                     batched: dict[str, tuple[str, int, int]] | None = None
                     ) -> list[tuple[int, int, int]]:
    """收单清算: each acquirer pays each of its merchants the day's takings net of the
    MDR (its fee income) and of the refunds; a merchant whose refunds exceed its
    takings pays the difference from its account, and what even that cannot cover it
    still owes (kept in ``merchant_carry``, deducted from its next payout). A merchant
    whose account is at another bank is paid through BEPS: the payout is added to
    ``payouts`` (day, acquirer, merchant, amount) for the acquiring bank to send.
    ``batched``: the day's batch purchases per merchant, (acquirer, takings, MDR)."""
    reg, ledger = engine.registry, engine.ledger
    net: dict[str, int] = {}
    mdr_total: dict[str, int] = {}
    acquirer_of: dict[str, str] = {}
    for t in txns:
        terminal = terminals.get(t.terminal)
        if terminal is None or terminal.merchant is None or t.proc not in (
                "00", "20", "22", "02"):
            continue
        m = terminal.merchant
        acquirer_of[m] = terminal.acquirer
        if t.proc == "00":
            mdr = mdr_fen(t.amount_fen, terminal.mdr_ppm)
            net[m] = net.get(m, 0) + t.amount_fen - mdr
            mdr_total[m] = mdr_total.get(m, 0) + mdr
        elif t.proc == "02":  # a representment: the merchant gets the amount back
            net[m] = net.get(m, 0) + t.amount_fen
        else:  # refunds, chargebacks, credit adjustments; the MDR is not given back
            net[m] = net.get(m, 0) - t.amount_fen
    for m, (acquirer, takings, mdr) in (batched or {}).items():
        acquirer_of[m] = acquirer
        net[m] = net.get(m, 0) + takings - mdr
        mdr_total[m] = mdr_total.get(m, 0) + mdr
    postings: list[tuple[int, int, int]] = []
    for m in sorted(net):
        bank, name = m.split(":", 1)
        acquirer = acquirer_of[m]
        owed_to = reg.id(acquirer, "due_to_merchants")
        account = reg.id(bank, name)
        if mdr_total.get(m):
            postings.append((owed_to, reg.id(acquirer, "fee_income"), mdr_total[m]))
        total = net[m] + merchant_carry.pop(m, 0)
        if bank != acquirer:  # 跨行: the acquirer pays it through BEPS (the banks send it)
            if total > 0:
                payouts.append((day, acquirer, m, total))
            elif total < 0:
                merchant_carry[m] = total  # deducted from its next payout
            continue
        if total > 0:
            postings.append((owed_to, account, total))
        elif total < 0:
            room = ledger.balance(account).available_fen + \
                ledger.account(account).overdraft_limit_fen
            take = max(0, min(-total, room))
            if take:
                postings.append((account, owed_to, take))
            if take < -total:
                merchant_carry[m] = total + take
    return postings


def fee_schedule(params: Params) -> clearing.FeeSchedule:
    """The fees of DOMAIN.md §4 as the parameters set them (cards/clearing.py)."""
    return clearing.FeeSchedule(
        enabled=bool(params["cards.fees"]),
        issuer_fee_debit_ppm=int(params["cards.issuer_fee_debit_rate"]),
        issuer_fee_debit_cap_fen=int(params["cards.issuer_fee_debit_cap"]),
        issuer_fee_credit_ppm=int(params["cards.issuer_fee_credit_rate"]),
        network_fee_ppm=int(params["cards.network_fee_rate"]),
        network_fee_cap_fen=int(params["cards.network_fee_cap"]),
        atm_fee_fen=int(params["cards.atm_interbank_fee"]))
