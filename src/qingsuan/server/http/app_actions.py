"""What the app's routes do, as jobs for the engine's single writer: each action is one
logged ``banks.event`` command (the app's events, wallets/system.py HANDLERS), and its
answer is the record the wallets kept of it, read after applying (the writer answers
only once the command is durable). Reads look at the user's own data only.

Every input is checked here before anything is logged (a card not the user's, an unknown
terminal or campaign, a malformed amount): a command the wallets could not carry out must
never reach the log. A refusal of the wallets themselves (a wrong name, a spent budget) is
their logged record, answered as a 4xx with their reason code.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from qingsuan.clock import format_time, to_beijing
from qingsuan.money import format_fen
from qingsuan.server.http.errors import ApiError
from qingsuan.wallets import app as wallet_app
from qingsuan.wallets import credit, qr

if TYPE_CHECKING:
    from qingsuan.wallets.system import Wallets
    from qingsuan.world import World

#: the input each wallets refusal points at
REASON_FIELD: Final = {
    "UNKNOWN_CARD": "card", "CARD_NOT_ACTIVE": "card", "ACCOUNT_CLOSED": "card",
    "NAME_MISMATCH": "name", "ALREADY_BOUND": "card", "TOO_MANY_CARDS": "card",
    "NOT_BOUND": "card", "CODE_UNKNOWN": "code", "CODE_EXPIRED": "code", "CODE_USED": "code",
    "CLAIM_WINDOW": "campaign", "CLAIM_LIMIT": "campaign", "BUDGET_EXHAUSTED": "campaign",
    "CAMPAIGN_CLOSED": "campaign", "NO_VOUCHER": "voucher", "VOUCHER_WINDOW": "voucher",
    "VOUCHER_MERCHANT": "voucher", "VOUCHER_THRESHOLD": "amount",
    "NOT_CREDIT_CARD": "card", "REPAYMENT_TOO_LARGE": "amount",
    "INSUFFICIENT_FUNDS": "from_card", "INSUFFICIENT_WALLET": "amount",
    "WALLET_LIMIT": "amount", "RIDE_LIMIT": "amount", "DAILY_LIMIT": "amount"}
#: refusals that are a conflict with what is already so (409); the others are 422
CONFLICTS: Final = frozenset({"ALREADY_BOUND", "CLAIM_LIMIT", "BUDGET_EXHAUSTED",
                              "CODE_USED", "CAMPAIGN_CLOSED", "TRANSIT_DEBT"})
#: IBPS's reasons for refusing an item that are about its amount (the others: none)
IBPS_AMOUNT_REASONS: Final = frozenset({"AM02", "AM04", "AM14"})
#: the app events that move a wallet's money, as GET /v1/app/wallet lists them
WALLET_MOVES: Final = ("wallet_top_up", "wallet_withdrawal", "wallet_transfer", "wallet_pay")
#: the user's wallet moves GET /v1/app/wallet lists at most, the latest first
WALLET_MOVES_SHOWN: Final = 20


def wallets_of(world: World) -> Wallets:
    w = world.wallets
    if w is None or not w.active:
        raise ApiError(404, "no_app", "this world has no wallets: the app has no users here")
    return w


def _submit(world: World, do: str, phone: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Log one app event for ``phone``; its record, or the wallets' refusal as ApiError."""
    w = wallets_of(world)
    n = len(w.records)
    while f"app-{phone}-{n}" in w.records:  # (ids are deterministic: replay gives the same)
        n += 1
    event_id = f"app-{phone}-{n}"
    world.engine.command("banks.event", json.dumps(
        {"do": do, "order": -1, "fields": {"id": event_id, **fields}},
        sort_keys=True, ensure_ascii=False).encode())
    rec = w.records[event_id]
    if rec["status"] == "refused":
        code = rec["reason"]["code"]
        raise ApiError(409 if code in CONFLICTS else 422, code, rec["reason"]["message"],
                       REASON_FIELD.get(code), extra={"id": event_id})
    if rec["status"] == "declined":  # the issuer declined the purchase: its response code
        rc = rec["reason"]["code"]
        raise ApiError(422, f"DECLINED_{rc}", f"the card's issuer declined it: "
                       f"{rec['reason']['message']} (response code {rc})", "card",
                       extra={"id": event_id})
    if rec["status"] == "failed":  # IBPS refused the item at once: nothing moved
        code = rec["reason"]["code"]
        raise ApiError(422, f"IBPS_{code}", f"IBPS refused it: {rec['reason']['message']}",
                       "amount" if code in IBPS_AMOUNT_REASONS else None,
                       extra={"id": event_id})
    return {"id": event_id, **rec}


def _card(w: Wallets, phone: str, card_id: str, field: str = "card") -> tuple[str, str]:
    """(token, masked number) of the user's bound card ``card_id``; 404 otherwise (another
    user's card is as unknown as a card that does not exist)."""
    masked = w.users[phone].masked(card_id)
    if masked is None:
        raise ApiError(404, "unknown_card", "you have bound no such card (GET /v1/app/cards "
                       "lists yours)", field)
    return card_id, masked


def _card_view(w: Wallets, token: str, masked: str) -> dict[str, Any]:
    card = w.switch.cards.get(token)
    return {"card_id": token, "card": masked, "issuer": card.issuer if card else None,
            "kind": card.kind if card else None}


# ---------------------------------------------------------------------- the user


def profile(world: World, phone: str) -> dict[str, Any]:
    w = wallets_of(world)
    user = w.users[phone]
    return {"phone": phone, "name": user.name, "institution": user.institution,
            "wallet": format_fen(w.balance_fen(user.institution, user.wallet)),
            "cards": len(user.cards), "now": format_time(w.now_us)}


def balances(world: World, phone: str) -> dict[str, Any]:
    """Every bound card with its balance: asked of each issuer through the switch now (a
    logged card_balances event); the app keeps none of them."""
    w = wallets_of(world)
    cards = list(w.users[phone].cards)
    if not cards:
        return {"cards": []}
    rec = _submit(world, "card_balances", phone, {"user": phone})
    out = []
    for (token, masked), answer in zip(cards, rec["cards"], strict=True):
        view = _card_view(w, token, masked)
        view.update({k: v for k, v in answer.items() if k != "card"})
        out.append(view)
    return {"id": rec["id"], "at": rec["at"], "cards": out}


def bind(world: World, phone: str, pan: str, name: str) -> dict[str, Any]:
    w = wallets_of(world)
    if not (pan.isascii() and pan.isdigit() and 13 <= len(pan) <= 19):
        raise ApiError(422, "invalid_card", "a card number is 13 to 19 digits", "card")
    if not name.strip() or len(name) > 70:
        raise ApiError(422, "invalid_name", "the cardholder's name, 1 to 70 characters",
                       "name")
    fields = world.card_vault().card_fields(pan)  # never the number itself in the log
    rec = _submit(world, "bind_card", phone, {"user": phone, "name": name, **fields})
    return {"id": rec["id"], **_card_view(w, fields["card"], rec["card"])}


# ---------------------------------------------------------------------- payment codes


def new_code(world: World, phone: str, card_id: str) -> dict[str, Any]:
    w = wallets_of(world)
    _card(w, phone, card_id)
    rec = _submit(world, "payment_code", phone, {"user": phone, "card": card_id,
                                                  "pan_masked": w.users[phone].masked(card_id)})
    return code_view(world, phone, rec["id"])


def _own_code(w: Wallets, phone: str, code_id: str) -> Any:
    pc = w.codes.get(code_id)
    if pc is None or pc.phone != phone:  # another user's code is as unknown as none
        raise ApiError(404, "unknown_code", "you have no such payment code", "code_id")
    return pc


def code_view(world: World, phone: str, code_id: str) -> dict[str, Any]:
    w = wallets_of(world)
    pc = _own_code(w, phone, code_id)
    now = w.now_us
    state = "used" if pc.used_by else "expired" if now > pc.expires_us else "valid"
    return {"id": code_id, "code": pc.code, "card": w.users[phone].masked(pc.card),
            "expires_at": format_time(pc.expires_us), "state": state,
            "seconds_left": max(0, (pc.expires_us - now) // 1_000_000),
            "payload": qr.payment_code_payload(w.users[phone].institution, pc.code,
                                               pc.expires_us),
            "png": f"/v1/app/codes/{code_id}/qr.png", "svg": f"/v1/app/codes/{code_id}/qr.svg"}


def code_image(world: World, phone: str, code_id: str) -> qr.QrImage:
    w = wallets_of(world)
    _own_code(w, phone, code_id)
    return wallet_app.code_image(w, code_id)


# ---------------------------------------------------------------------- paying


def merchant_terminal(w: Wallets, terminal: str | None, merchant_code: str | None) -> str:
    """The terminal the user scanned: named, or read from the merchant's code (收款码)."""
    if merchant_code is not None:
        try:
            read = qr.read_payload(merchant_code)
        except ValueError as exc:
            raise ApiError(422, "invalid_code", str(exc), "merchant_code") from None
        if read.kind != "merchant":
            raise ApiError(422, "invalid_code", "not a merchant's code (收款码)",
                           "merchant_code")
        terminal = read.code
    if terminal is None:
        raise ApiError(422, "missing_field", "scan the merchant's code (merchant_code) or "
                       "name its terminal", "terminal")
    found = w.switch.terminals.get(terminal)
    if found is None or found.merchant is None:
        raise ApiError(422, "unknown_merchant", "no merchant's terminal of this code",
                       "merchant_code" if merchant_code is not None else "terminal")
    return terminal


def pay(world: World, phone: str, card_id: str, amount_fen: int, terminal: str,
        voucher: str | None) -> dict[str, Any]:
    """扫码支付: the user scanned the merchant's code; the card pays through the switch."""
    w = wallets_of(world)
    _card(w, phone, card_id)
    if voucher is not None and voucher not in w.campaigns:
        raise ApiError(422, "unknown_campaign", "no such voucher campaign", "voucher")
    fields: dict[str, Any] = {"user": phone, "card": card_id, "terminal": terminal,
                              "amount_fen": amount_fen,
                              "pan_masked": w.users[phone].masked(card_id)}
    if voucher is not None:
        fields["voucher"] = voucher
    rec = _submit(world, "qr_pay", phone, fields)
    keep = ("id", "at", "status", "card", "merchant", "price", "card_paid", "voucher",
            "discount")
    return {k: rec[k] for k in keep if k in rec}


def merchant_code(world: World, terminal: str) -> qr.QrImage:
    w = wallets_of(world)
    if terminal not in w.switch.terminals or w.switch.terminals[terminal].merchant is None:
        raise ApiError(404, "unknown_merchant", "no merchant's terminal of this id",
                       "terminal")
    return wallet_app.merchant_image(w, terminal)


# ---------------------------------------------------------------------- vouchers


def vouchers(world: World, phone: str) -> dict[str, Any]:
    """The campaigns taking claims now or whose vouchers the user holds, and the user's
    own vouchers (never anyone else's)."""
    w = wallets_of(world)
    now = w.now_us
    mine = [(vid, v) for vid, v in w.vouchers.items() if v.phone == phone]
    held = {v.campaign for _, v in mine}
    campaigns = []
    for c in w.campaigns.values():
        open_now = not c.closed and c.claim_from_us <= now <= c.claim_until_us
        if not open_now and c.id not in held:
            continue
        campaigns.append({
            "id": c.id, "discount": format_fen(c.discount_fen),
            "threshold": format_fen(c.threshold_fen), "per_user": c.per_user,
            "claimable": open_now and len(w.held.get((c.id, phone), ())) < c.per_user,
            "claim_until": format_time(c.claim_until_us),
            "valid_from": format_time(c.valid_from_us),
            "valid_until": format_time(c.valid_until_us)})
    return {"campaigns": campaigns, "vouchers": [
        {"id": vid, "campaign": v.campaign, "status": v.status,
         "discount": format_fen(w.campaigns[v.campaign].discount_fen),
         "valid_until": format_time(w.campaigns[v.campaign].valid_until_us)}
        for vid, v in mine]}


def claim(world: World, phone: str, campaign: str) -> dict[str, Any]:
    w = wallets_of(world)
    if campaign not in w.campaigns:
        raise ApiError(422, "unknown_campaign", "no such voucher campaign", "campaign")
    rec = _submit(world, "claim_voucher", phone, {"user": phone, "campaign": campaign})
    return {"id": rec["id"], "campaign": campaign, "status": "claimed",
            "discount": rec["discount"], "valid_until": rec["valid_until"]}


# ---------------------------------------------------------------------- credit cards


def statements(world: World, phone: str) -> dict[str, Any]:
    """The statements of the user's bound credit cards, with what is owed now."""
    w = wallets_of(world)
    out = []
    for token, masked in w.users[phone].cards:
        card = w.switch.cards.get(token)
        if card is None or card.kind != "credit":
            continue
        out.append({**_card_view(w, token, masked),
                    "owed": format_fen(credit.owed_fen(w, token)),
                    "statements": [{
                        "id": s["id"], "at": format_time(s["at_us"]),
                        "owed": format_fen(s["owed_fen"]),
                        "minimum": format_fen(s["minimum_fen"]),
                        "due": format_time(s["due_us"]),
                        "repaid": format_fen(s["repaid_fen"]),
                        "interest": format_fen(s["interest_fen"]),
                        "minimum_met": s["repaid_fen"] >= s["minimum_fen"]}
                        for s in w.statements.get(token, [])]})
    return {"cards": out}


def repay(world: World, phone: str, from_card: str, card: str, amount_fen: int
          ) -> dict[str, Any]:
    """还款: from a bound debit card at any bank to a bound credit card."""
    w = wallets_of(world)
    _, from_masked = _card(w, phone, from_card, "from_card")
    _, masked = _card(w, phone, card)
    rec = _submit(world, "card_repayment", phone, {
        "user": phone, "from_card": from_card, "from_pan_masked": from_masked,
        "card": card, "pan_masked": masked, "amount_fen": amount_fen})
    keep = ("id", "at", "status", "card", "from_card", "amount", "statement", "due",
            "minimum")
    return {**{k: rec[k] for k in keep if k in rec},
            "owed": format_fen(credit.owed_fen(w, card))}


# ---------------------------------------------------------------------- the wallet


def _wallet_fen(w: Wallets, phone: str) -> str:
    user = w.users[phone]
    return format_fen(w.balance_fen(user.institution, user.wallet))


def wallet(world: World, phone: str) -> dict[str, Any]:
    """The wallet's balance and the user's latest moves of its money (top-ups,
    withdrawals, wallet transfers either way, wallet payments), each with its status."""
    w = wallets_of(world)
    moves = []
    for rid in reversed(w.records_of.get(phone, ())):  # the latest first
        rec = w.records[rid]
        if rec["do"] in WALLET_MOVES and phone in (rec.get("user"), rec.get("to")):
            moves.append({"id": rid, "do": rec["do"], "at": rec["at"],
                          "status": rec["status"], "amount": rec.get("amount"),
                          "reason": rec["reason"],
                          "direction": "in" if rec["do"] == "wallet_top_up" or (
                              rec["do"] == "wallet_transfer" and rec.get("to") == phone)
                          else "out"})
            if len(moves) == WALLET_MOVES_SHOWN:
                break
    user = w.users[phone]
    return {"wallet": _wallet_fen(w, phone), "institution": user.institution,
            "limit": format_fen(w.param("wallets.balance_limit")), "moves": moves}


def move_money(world: World, phone: str, do: str, card_id: str, amount_fen: int
               ) -> dict[str, Any]:
    """A top-up by quick pay from a bound card (wallet_top_up) or a withdrawal to it
    (wallet_withdrawal): an IBPS item, ``pending`` until IBPS nets it (mostly at once)."""
    assert do in ("wallet_top_up", "wallet_withdrawal")
    w = wallets_of(world)
    _, masked = _card(w, phone, card_id)
    rec = _submit(world, do, phone, {"user": phone, "card": card_id, "pan_masked": masked,
                                     "amount_fen": amount_fen})
    return {"id": rec["id"], "at": rec["at"], "status": rec["status"], "card": masked,
            "amount": rec["amount"], "wallet": _wallet_fen(w, phone)}


# ---------------------------------------------------------------------- the transit code


def gate_terminal(w: Wallets, gate: str) -> str:
    """A gate is a merchant's POS terminal at the switch (the transit operator's)."""
    found = w.switch.terminals.get(gate)
    if found is None or found.kind != "pos" or found.merchant is None:
        raise ApiError(422, "unknown_gate", "no gate of this id (a transit operator's "
                       "terminal)", "gate")
    return gate


def ride(world: World, phone: str, card_id: str, gate: str, amount_fen: int
         ) -> dict[str, Any]:
    """乘车码: the user's transit code for a bound card shown at ``gate`` (the sandbox
    stands in for the gate): authorised offline, cleared in the next day's batch."""
    w = wallets_of(world)
    _, masked = _card(w, phone, card_id)
    gate_terminal(w, gate)
    rec = _submit(world, "transit_ride", phone, {
        "user": phone, "card": card_id, "pan_masked": masked, "terminal": gate,
        "amount_fen": amount_fen})
    return {"id": rec["id"], "at": rec["at"], "status": rec["status"], "card": masked,
            "gate": gate, "fare": rec["fare"]}


def transit(world: World, phone: str) -> dict[str, Any]:
    """The user's rides (the latest first) with their fate in the batches, what the user
    owes for declined ones, and the gates' offline limits with what today used."""
    w = wallets_of(world)
    mine = [(k, w.rides[k]) for k in reversed(w.rides_of.get(phone, ()))]
    today = to_beijing(w.now_us).date().isoformat()
    rides = []
    for rid, r in mine:
        row: dict[str, Any] = {"id": rid, "at": format_time(r.at_us), "gate": r.terminal,
                               "card": r.masked, "fare": format_fen(r.fare_fen),
                               "status": r.status}
        paid = w.banks.payments.get(r.cleared_by) if r.cleared_by else None
        if paid is not None:
            row["cleared"] = paid.status
        rides.append(row)
    return {"rides": rides,
            "owed": format_fen(sum(r.fare_fen for _, r in mine if r.status == "declined")),
            "today": format_fen(sum(r.fare_fen for _, r in mine if r.day == today)),
            "ride_limit": format_fen(w.param("wallets.transit_ride_limit")),
            "daily_limit": format_fen(w.param("wallets.transit_daily_limit"))}
