"""Pre-authorisation (预授权) at the switch: the issuer's hold, its cancel, its reversal and
its completion (docs/CARDS.md). A hold is a pending ledger transfer that the ledger lets
expire by itself; the switch only notices it (a tick, or the next request naming it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from qingsuan.cards.iso8583 import ResponseCode as RC
from qingsuan.cards.records import Card, CardTxn, Terminal, amount_fen
from qingsuan.cards.requests import CardRequest, Mti, Processing

if TYPE_CHECKING:
    from qingsuan.cards.switch import CardSwitch

#: microseconds in a day (holds last ``cards.preauth_days`` of them)
_DAY_US: Final = 86_400_000_000
#: rates are parts per million (params.py)
_PPM: Final = 1_000_000


def authorise(sw: CardSwitch, req: CardRequest, key: str, now_us: int) -> dict[str, str]:
    """预授权 (0100, processing code 03): the issuer checks it like a POS purchase and
    holds the amount: a pending transfer from the cardholder to its "due to the switch"
    that expires by itself after ``cards.preauth_days``. Nothing is booked at the
    acquirer and nothing is cleared: only the completion is."""
    assert sw.engine is not None
    pan = req.card if req.card is not None else ""  # the card's token (cards/vault.py)
    amount = amount_fen(req.amount_text if req.amount_text is not None else "0")
    terminal_id = req.terminal if req.terminal is not None else ""
    terminal = sw.terminals.get(terminal_id)
    txn = CardTxn(key, Mti.AUTHORISATION.value, Processing.PREAUTH.value,
                  req.pan_masked if req.pan_masked is not None else "", None,
                  terminal.acquirer if terminal else req.acquirer or "", terminal_id,
                  amount, RC.SYSTEM_MALFUNCTION, "declined", now_us, req.body, req.rrn or "",
                  card=pan)
    sw.txns[key] = txn
    card = sw.cards.get(pan)
    txn.card_kind = card.kind if card else "debit"
    txn.rc = _decide(sw, txn, req, pan, card, amount, terminal, now_us)
    if txn.rc == RC.APPROVED:
        txn.status = "authorised"
        sw._open_preauths[key] = txn
    return sw._answer(txn)


def _decide(sw: CardSwitch, txn: CardTxn, req: CardRequest, pan: str, card: Card | None,
            amount: int, terminal: Terminal | None, now_us: int) -> str:
    from qingsuan.ledger import Transfer, TransferFlags

    assert sw.engine is not None
    if terminal is None or terminal.kind != "pos" or req.proc != Processing.PREAUTH:
        return RC.INVALID_TRANSACTION
    refused = sw._route(txn, req, pan, terminal)
    if refused is not None:
        return refused
    mode = sw.hosts.get(txn.issuer or "", "up")
    if mode == "down":
        # no stand-in for a pre-authorisation: only the issuer can hold
        return RC.ISSUER_UNAVAILABLE
    rc = sw._issuer_decides(txn, req, card, Processing.PREAUTH, amount, terminal, now_us)
    if mode == "slow":  # the switch reverses what the issuer held: nothing stays held
        txn.late_rc = rc
        return RC.RESPONSE_RECEIVED_TOO_LATE
    if rc != RC.APPROVED:
        return rc
    bank, name = sw.cards[pan].account.split(":", 1)
    reg = sw.engine.registry
    days = int(sw.engine.params["cards.preauth_days"])
    txn.hold_id = sw.engine.next_derived_id()
    txn.expires_us = now_us + days * _DAY_US
    held = sw.engine.post([Transfer(0, reg.id(bank, name), reg.id(bank, "due_to_switch"),
                                    amount, TransferFlags.PENDING,
                                    timeout_us=days * _DAY_US)])
    if not held.all_done:
        txn.hold_id = txn.expires_us = 0
        return RC.SYSTEM_MALFUNCTION
    return RC.APPROVED


def status(sw: CardSwitch, txn: CardTxn, now_us: int) -> str:
    """The pre-authorisation's status, after noting a hold the ledger let expire."""
    from qingsuan.ledger import PendingState

    assert sw.engine is not None
    if txn.status == "authorised" and \
            sw.engine.ledger.pending_state(txn.hold_id) is PendingState.EXPIRED:
        txn.status = "expired"
        sw._open_preauths.pop(txn.key, None)
        sw.notices.append((now_us, txn.key, "expired"))
    return txn.status


def note_expired(sw: CardSwitch, now_us: int) -> None:
    """Mark "expired" every open pre-authorisation whose hold the ledger let expire."""
    for txn in list(sw._open_preauths.values()):
        status(sw, txn, now_us)


def next_expiry_us(sw: CardSwitch, after_us: int) -> int | None:
    """When the next open pre-authorisation's hold expires, if after ``after_us``."""
    return min((t.expires_us for t in sw._open_preauths.values()
                if t.expires_us > after_us), default=None)


def _release_hold(sw: CardSwitch, preauth: CardTxn) -> None:
    """Void the issuer's hold of an open pre-authorisation (VOID_PENDING)."""
    from qingsuan.ledger import Transfer, TransferFlags

    assert sw.engine is not None
    done = sw.engine.post([Transfer(0, 0, 0, 0, TransferFlags.VOID_PENDING,
                                    pending_id=preauth.hold_id)])
    assert done.all_done, done.failures()
    sw._open_preauths.pop(preauth.key, None)


def _original(sw: CardSwitch, req: CardRequest, now_us: int
              ) -> tuple[CardTxn | None, str]:
    """The pre-authorisation a cancel or completion names: (it, "00") when its hold is
    open and the request may act on it; else (it or None, response code): 25 unknown,
    12 not a pre-authorisation, not open (cancelled, completed, expired, reversed,
    declined), another card, or another merchant."""
    original = sw.txns.get(req.original_key or "")
    if original is None:
        return None, RC.ORIGINAL_NOT_FOUND
    if original.mti != "0100" or original.proc != Processing.PREAUTH:
        return original, RC.INVALID_TRANSACTION
    if status(sw, original, now_us) != "authorised":
        return original, RC.INVALID_TRANSACTION
    if req.card not in (None, original.card):
        return original, RC.INVALID_TRANSACTION
    terminal = sw.terminals.get(req.terminal if req.terminal is not None
                                else original.terminal)
    held_at = sw.terminals[original.terminal]
    if terminal is None or terminal.acquirer != held_at.acquirer or \
            terminal.merchant != held_at.merchant:
        return original, RC.INVALID_TRANSACTION  # only the merchant that holds it acts on it
    return original, RC.APPROVED


def _linked_txn(sw: CardSwitch, req: CardRequest, key: str, now_us: int,
                mti: str, proc: str, original: CardTxn | None) -> CardTxn:
    terminal_id = req.terminal if req.terminal is not None else \
        original.terminal if original else ""
    terminal = sw.terminals.get(terminal_id)
    txn = CardTxn(key, mti, proc, original.pan_masked if original else "",
                  original.issuer if original else None,
                  terminal.acquirer if terminal else req.acquirer or "", terminal_id,
                  amount_fen(req.amount_text if req.amount_text is not None else "0"),
                  RC.SYSTEM_MALFUNCTION, "declined", now_us, req.body, req.rrn or "",
                  card=original.card if original else "",
                  card_kind=original.card_kind if original else "debit",
                  original_key=req.original_key or "")
    sw.txns[key] = txn
    return txn


def cancel(sw: CardSwitch, req: CardRequest, key: str, now_us: int) -> dict[str, str]:
    """预授权撤销 (0100, processing code 20): the merchant releases the hold of an open
    pre-authorisation. Unknown 25; not an open pre-authorisation (cancelled, completed,
    expired, reversed) 12; an amount (field 4, if given and not zero) other than the
    pre-authorised one 13. The cancel is kept under its own key (status "done"), so a
    true retry gets the first answer."""
    original, rc = _original(sw, req, now_us)
    txn = _linked_txn(sw, req, key, now_us, Mti.AUTHORISATION.value, Processing.RETURN.value,
                      original)
    if rc == RC.APPROVED and original is not None:
        if not txn.amount_fen:  # field 4 absent (or zero): the pre-authorised amount
            txn.amount_fen = original.amount_fen
        mode = sw.hosts.get(original.issuer or "", "up")
        if txn.amount_fen != original.amount_fen:
            rc = RC.INVALID_AMOUNT
        elif mode != "up":
            # the hold stays as it was
            rc = RC.ISSUER_UNAVAILABLE if mode == "down" else RC.RESPONSE_RECEIVED_TOO_LATE
        else:
            _release_hold(sw, original)
            original.status = "cancelled"
            sw.notices.append((now_us, original.key, "cancelled"))
            txn.status = "done"
    txn.rc = rc
    return sw._answer(txn)


def reverse(sw: CardSwitch, original: CardTxn, req: CardRequest, now_us: int
            ) -> dict[str, str]:
    """冲正 of a pre-authorisation: the hold is released and it is "reversed"; one whose
    hold is gone already (cancelled, expired) answers 00 and changes nothing; a
    completed one 12 (reverse the completion); a cancel 12."""
    if original.proc != Processing.PREAUTH:
        return sw._reply(req, RC.INVALID_TRANSACTION)
    state = status(sw, original, now_us)
    if state in ("cancelled", "expired"):
        return sw._reply(req, RC.APPROVED)
    if state != "authorised":
        return sw._reply(req, RC.INVALID_TRANSACTION)
    _release_hold(sw, original)
    original.status = "reversed"
    return sw._reply(req, RC.APPROVED)


def complete(sw: CardSwitch, req: CardRequest, key: str, now_us: int) -> dict[str, str]:
    """预授权完成 (0200 request or 0220 advice, processing code 00, condition code 25 =
    06): a new transaction for at most the pre-authorised amount times (1 +
    ``cards.preauth_tolerance``) (13). The issuer posts its hold (POST_PENDING for up to
    the held amount; the rest of the hold is released) and, above it, debits the
    difference (51 if the account cannot bear it: then nothing is posted); the acquirer
    books it as a purchase. It clears like a purchase on its clearing day; the
    pre-authorisation becomes "completed"."""
    original, rc = _original(sw, req, now_us)
    mti = req.mti if req.mti is not None else Mti.FINANCIAL.value
    txn = _linked_txn(sw, req, key, now_us, mti, Processing.PURCHASE.value, original)
    if rc == RC.APPROVED and original is not None:
        rc = _decide_completion(sw, txn, req, original)
    txn.rc = rc
    if rc == RC.APPROVED and original is not None:
        sw._approve(txn, now_us)
        original.status = "completed"
        sw._open_preauths.pop(original.key, None)
        sw.notices.append((now_us, original.key, "completed"))
    return sw._answer(txn)


def _decide_completion(sw: CardSwitch, txn: CardTxn, req: CardRequest, original: CardTxn
                       ) -> str:
    from qingsuan.ledger import Transfer, TransferFlags

    assert sw.engine is not None
    if req.proc != Processing.PURCHASE or req.pos_condition != "06":
        return RC.INVALID_TRANSACTION  # not a completion (condition code 06)
    if (req.currency if req.currency is not None else "156") != "156":
        return RC.FORMAT_ERROR
    held = original.amount_fen
    tolerance = int(sw.engine.params["cards.preauth_tolerance"])
    ceiling = held * (_PPM + tolerance) // _PPM
    if txn.amount_fen <= 0 or txn.amount_fen > ceiling:
        return RC.INVALID_AMOUNT
    mode = sw.hosts.get(original.issuer or "", "up")
    if mode != "up":
        # the hold stays as it was
        return RC.ISSUER_UNAVAILABLE if mode == "down" else RC.RESPONSE_RECEIVED_TOO_LATE
    reg, ledger = sw.engine.registry, sw.engine.ledger
    bank, name = sw.cards[txn.card].account.split(":", 1)
    account = reg.id(bank, name)
    extra = txn.amount_fen - held
    if extra > 0 and ledger.balance(account).available_fen - extra < \
            -ledger.overdraft_limit_fen(account):
        return RC.INSUFFICIENT_FUNDS
    legs: list[tuple[int, int, int] | Transfer] = [
        Transfer(0, 0, 0, min(txn.amount_fen, held), TransferFlags.POST_PENDING,
                 pending_id=original.hold_id)]
    if extra > 0:
        legs.append((account, reg.id(bank, "due_to_switch"), extra))
    legs += sw._acquirer_leg(txn)
    if not sw.engine.post(legs, linked=True).all_done:
        return RC.SYSTEM_MALFUNCTION
    return RC.APPROVED
