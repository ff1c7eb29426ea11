"""The app (云闪付-style): bind and unbind cards of any bank, ask every bound card's
balance of its issuer, issue one-time payment codes, and pay merchants by QR code through
the card switch, as a purchase at the merchant's terminal with the merchant's MDR.

A card is bound only after its issuer answers (through the switch's BIN routing) that the
card is active, its account open and the name the user gave its cardholder's; the app keeps
the card's token and masked number, never the number, never a balance."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Final

from qingsuan.cards.iso8583 import ResponseCode
from qingsuan.clock import format_time, to_beijing
from qingsuan.money import format_fen
from qingsuan.wallets import qr, vouchers
from qingsuan.wallets.reasons import WalletReason

if TYPE_CHECKING:
    from qingsuan.wallets.state import User
    from qingsuan.wallets.system import Wallets

MEANINGS: Final[dict[str, str]] = {c.value: c.meaning for c in ResponseCode}


def card_request(w: Wallets, token: str, masked: str, terminal: str, proc: str,
                  amount_fen: int, pin_hash: str | None = None) -> dict[str, str]:
    """Send the switch a card request from ``terminal``, as the banks send theirs
    (:meth:`CardSwitch.take`); the STAN is the banks' (one counter for every terminal)."""
    b = w.banks
    b.stan += 1
    acquirer = w.switch.terminals[terminal].acquirer
    fields = {"t": "0200", "card": token, "pan_masked": masked, "3": f"{proc}0000",
              "4": f"{amount_fen:012d}", "7": to_beijing(w.now_us).strftime("%m%d%H%M%S"),
              "11": f"{b.stan:06d}", "32": acquirer, "41": terminal, "49": "156",
              "37": f"{b.stan:012d}"}
    if pin_hash is not None:
        fields["pin_hash"] = pin_hash
    answer: dict[str, str] = w.switch.take("cards.request", fields, w.now_us)
    return answer


def bind_card(w: Wallets, f: dict[str, Any]) -> None:
    """绑卡: the issuer verifies the card and the cardholder's name."""
    do = "bind_card"
    user = w.user(f, do)
    if user is None:
        return
    token, masked = f["card"], f["pan_masked"]
    card = w.switch.cards.get(token) if token else None
    if card is None:
        w.refuse(f, do, WalletReason.UNKNOWN_CARD, f"card {masked}")
        return
    customer = w.banks.directory.by_id.get(card.account.split(":", 2)[2])
    if card.status != "active":
        w.refuse(f, do, WalletReason.CARD_NOT_ACTIVE, f"card {masked} is {card.status} at "
                                                      f"{card.issuer}")
        return
    if customer is None or customer.closed:
        w.refuse(f, do, WalletReason.ACCOUNT_CLOSED, f"{card.issuer} closed the account of "
                                                     f"card {masked}")
        return
    if f["name"] != customer.name:  # the cardholder's name is never told back
        w.refuse(f, do, WalletReason.NAME_MISMATCH, f"{card.issuer} does not confirm the "
                                                    f"name given for card {masked}")
        return
    bound_to = w.bound.get(token)
    holder = None if bound_to is None else w.users[bound_to]
    if holder is not None:
        who = "this user" if holder is user else "another user"
        w.refuse(f, do, WalletReason.ALREADY_BOUND, f"card {masked} is bound to {who}")
        return
    limit = w.param("wallets.max_cards")
    if len(user.cards) >= limit:
        w.refuse(f, do, WalletReason.TOO_MANY_CARDS, f"{len(user.cards)} cards bound, at "
                                                     f"most {limit} (wallets.max_cards)")
        return
    user.cards.append([token, masked])
    w.bound[token] = user.phone
    w.record(f, do, user=user.phone, card=masked, issuer=card.issuer)


def unbind_card(w: Wallets, f: dict[str, Any]) -> None:
    """解绑: the card is no longer the app's to use (its codes stop working)."""
    do = "unbind_card"
    found = w.bound_card(f, do)
    if found is None:
        return
    user, masked = found
    user.cards = [c for c in user.cards if c[0] != f["card"]]
    del w.bound[f["card"]]
    w.record(f, do, user=user.phone, card=masked)


def card_balances(w: Wallets, f: dict[str, Any]) -> None:
    """Every bound card's balance in one view: a balance inquiry (processing code 31)
    through the switch to each card's issuer, at the user's request; nothing is kept but
    the answer given to this request."""
    do = "card_balances"
    user = w.user(f, do)
    if user is None:
        return
    from qingsuan.wallets.system import APP_TERMINAL

    answers = []  # in the order the cards were bound
    for token, masked in user.cards:
        answer = card_request(w, token, masked, APP_TERMINAL, "31", 0)
        rc = answer["39"]
        answers.append({"card": masked, "response_code": rc, "balance": answer.get("54")}
                       if rc == "00" else {"card": masked, "response_code": rc,
                                           "message": MEANINGS.get(rc, "declined")})
    w.record(f, do, user=user.phone, cards=answers)


def payment_code(w: Wallets, f: dict[str, Any]) -> None:
    """付款码: a one-time code for a bound card, valid ``wallets.payment_code_validity``
    seconds; the merchant scans it once."""
    do = "payment_code"
    found = w.bound_card(f, do)
    if found is None:
        return
    user, masked = found
    from qingsuan.wallets.state import PaymentCode

    digest = hashlib.sha256(f"{f['id']}|{user.phone}|{w.now_us}".encode()).digest()
    code = "62" + f"{int.from_bytes(digest[:8], 'big') % 10**16:016d}"
    expires_us = w.now_us + w.param("wallets.payment_code_validity") * 1_000_000
    w.codes[f["id"]] = PaymentCode(code, user.phone, f["card"], expires_us)
    w.record(f, do, user=user.phone, card=masked, code=code,
             expires_at=format_time(expires_us),
             payload=qr.payment_code_payload(user.institution, code, expires_us))


def code_image(w: Wallets, code_id: str) -> qr.QrImage:
    """The QR image the app shows for the payment code issued by event ``code_id``
    (KeyError when there is none); showing it changes nothing."""
    pc = w.codes[code_id]
    return qr.render(qr.payment_code_payload(w.users[pc.phone].institution, pc.code,
                                             pc.expires_us))


def merchant_image(w: Wallets, terminal: str) -> qr.QrImage:
    """The merchant's standing code (收款码) for a terminal: it names the acquirer and the
    terminal, which is all a user's scan tells the app (the amount is keyed in)."""
    return qr.render(qr.merchant_code_payload(w.switch.terminals[terminal].acquirer,
                                              terminal))


def scanned_code(w: Wallets, payload: str) -> str | None:
    """The id of the payment code event a scanned payload names, or None when the app
    issued no such code (an image proves nothing: the code's state decides)."""
    read = qr.read_payload(payload)
    if read.kind != "pay":
        return None
    return next((k for k, pc in w.codes.items() if pc.code == read.code
                 and w.users[pc.phone].institution == read.institution), None)


def qr_pay(w: Wallets, f: dict[str, Any]) -> None:
    """扫码支付: the user scans the merchant's code (``user`` and ``card`` given), or the
    merchant scans the user's payment code (``code``: the id of the payment_code event).
    The switch carries it as a purchase at the merchant's terminal (its MDR applies); a
    voucher takes its discount off what the card pays, and the sponsor pays the merchant
    the discount, so the merchant receives the full price."""
    do = "qr_pay"
    if f.get("code") is not None:
        found = _scan_code(w, f)
        if found is None:
            return
        user, token = found
    else:
        named = w.user(f, do)
        if named is None:
            return
        user, token = named, f["card"]
    masked = user.masked(token)
    if masked is None:
        w.refuse(f, do, WalletReason.NOT_BOUND, "the card paid with is not bound to "
                                                f"{user.phone}")
        return
    amount = int(f["amount_fen"])
    # checked again here, not only by the edges: a logged command never stops the engine
    terminal = w.switch.terminals.get(f["terminal"])
    if terminal is None:
        w.refuse(f, do, WalletReason.UNKNOWN_TERMINAL, f"terminal {f['terminal']!r}")
        return
    merchant = (terminal.merchant or "::").split(":", 2)[2]
    voucher_id, discount = None, 0
    if f.get("voucher") is not None:
        picked = vouchers.pick(w, f, user, str(f["voucher"]), merchant, amount)
        if picked is None:
            return
        voucher_id, discount = picked
    answer = card_request(w, token, masked, terminal.id, "00", amount - discount,
                           f.get("pin_hash"))
    rc = answer["39"]
    b = w.banks
    card_record = b.record(f["id"], do, "CUPS", response_code=rc)
    if "key" in answer:
        b.link_card(f["id"], answer["key"])
    rec = w.record(f, do, user=user.phone, card=masked, merchant=merchant,
                   price=_fmt(amount), card_paid=_fmt(amount - discount))
    if rc != "00":
        card_record.move(w.now_us, "declined")
        card_record.reason = {"code": rc, "message": MEANINGS.get(rc, "declined")}
        rec["status"] = "declined"
        rec["reason"] = card_record.reason
        return
    card_record.move(w.now_us, "approved")
    if voucher_id is not None:
        rec["voucher"] = voucher_id
        rec["discount"] = _fmt(discount)
        rec["subsidy"] = vouchers.redeem(w, voucher_id, f["id"], merchant, amount)


def _scan_code(w: Wallets, f: dict[str, Any]) -> tuple[User, str] | None:
    """The merchant scanned a payment code: whose, which card; refused when unknown,
    expired or used before. A scanned code is spent, whatever the payment's fate."""
    pc = w.codes.get(str(f["code"]))
    if pc is None:
        w.refuse(f, "qr_pay", WalletReason.CODE_UNKNOWN, f"code {f['code']!r}")
        return None
    if pc.used_by:
        w.refuse(f, "qr_pay", WalletReason.CODE_USED, f"code of {f['code']} was used by "
                                                      f"{pc.used_by}")
        return None
    if w.now_us > pc.expires_us:
        w.refuse(f, "qr_pay", WalletReason.CODE_EXPIRED, f"code of {f['code']} expired at "
                                                         f"{format_time(pc.expires_us)}")
        return None
    pc.used_by = f["id"]
    return w.users[pc.phone], pc.card


_fmt = format_fen
