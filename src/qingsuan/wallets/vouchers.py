"""Consumer vouchers (消费券): claimed in the app, applied at a QR payment.

A campaign's budget is set aside from the sponsor's account when the world opens (its
fund in the sponsor bank's book). A claim commits one discount against the budget and is
refused once the vouchers claimed could cost more than the budget: so the budget is never
overspent, whatever the order of the claims and whether or not the vouchers are used. At a
payment the card pays the price less the discount, and the sponsor's bank pays the
merchant the discount from the fund (in its own book, or as an IBPS credit to the
merchant's bank): the merchant receives the full price."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qingsuan.banks import outgoing
from qingsuan.clock import format_time
from qingsuan.money import format_fen
from qingsuan.wallets.reasons import WalletReason
from qingsuan.wallets.state import Voucher

if TYPE_CHECKING:
    from qingsuan.wallets.state import Campaign, User
    from qingsuan.wallets.system import Wallets


def _campaign(w: Wallets, f: dict[str, Any], do: str) -> Campaign | None:
    """The campaign ``f`` names, or the refusal recorded (the edges check it first; a
    logged command never stops the engine on it)."""
    found = w.campaigns.get(str(f["campaign"]))
    if found is None:
        w.refuse(f, do, WalletReason.UNKNOWN_CAMPAIGN, f"campaign {f['campaign']!r}")
    return found


def claim(w: Wallets, f: dict[str, Any]) -> None:
    do = "claim_voucher"
    user = w.user(f, do)
    if user is None:
        return
    campaign = _campaign(w, f, do)
    if campaign is None:
        return
    now = w.now_us
    if campaign.closed:
        w.refuse(f, do, WalletReason.CAMPAIGN_CLOSED, f"campaign {campaign.id}")
        return
    if not campaign.claim_from_us <= now <= campaign.claim_until_us:
        w.refuse(f, do, WalletReason.CLAIM_WINDOW, f"campaign {campaign.id} takes claims "
                 f"from {format_time(campaign.claim_from_us)} to "
                 f"{format_time(campaign.claim_until_us)}")
        return
    held = len(w.held.get((campaign.id, user.phone), ()))
    if held >= campaign.per_user:
        w.refuse(f, do, WalletReason.CLAIM_LIMIT, f"{user.phone} has {held} of campaign "
                 f"{campaign.id}'s vouchers, at most {campaign.per_user}")
        return
    if campaign.committed_fen() + campaign.discount_fen > campaign.budget_fen:
        w.refuse(f, do, WalletReason.BUDGET_EXHAUSTED, f"campaign {campaign.id}'s budget "
                 f"{format_fen(campaign.budget_fen)} is committed to {campaign.claimed} "
                 "vouchers")
        return
    campaign.claimed += 1
    assert campaign.committed_fen() <= campaign.budget_fen
    w.vouchers[f["id"]] = Voucher(campaign.id, user.phone)
    w.held.setdefault((campaign.id, user.phone), []).append(f["id"])
    w.record(f, do, user=user.phone, campaign=campaign.id,
             discount=format_fen(campaign.discount_fen),
             valid_until=format_time(campaign.valid_until_us))


def pick(w: Wallets, f: dict[str, Any], user: User, campaign_id: str, merchant: str,
         amount_fen: int) -> tuple[str, int] | None:
    """The user's first unused voucher of the campaign and its discount, if it applies
    to this payment; otherwise the payment is refused with the reason (and None)."""
    campaign = w.campaigns[campaign_id]
    voucher_id = _first_unused(w, campaign_id, user.phone)
    problem = _problem(w, campaign, voucher_id, merchant, amount_fen)
    if problem is not None:
        w.refuse(f, "qr_pay", *problem)
        return None
    assert voucher_id is not None
    return voucher_id, campaign.discount_fen


def applies(w: Wallets, campaign_id: str, phone: str, merchant: str, amount_fen: int,
            at_us: int) -> bool:
    """Whether the user's first unused voucher of the campaign would apply to a payment
    at ``at_us`` (what the app offers at checkout; a query: nothing changes)."""
    return _problem(w, w.campaigns[campaign_id], _first_unused(w, campaign_id, phone),
                    merchant, amount_fen, at_us) is None


def _first_unused(w: Wallets, campaign_id: str, phone: str) -> str | None:
    return next((k for k in w.held.get((campaign_id, phone), ())
                 if w.vouchers[k].status == "claimed"), None)


def _problem(w: Wallets, campaign: Campaign, voucher_id: str | None, merchant: str,
             amount_fen: int, at_us: int | None = None) -> tuple[WalletReason, str] | None:
    now = w.now_us if at_us is None else at_us
    # the window first: once it is over the campaign closes and its vouchers expire,
    # and the user is told why, not that there is no voucher
    if not campaign.valid_from_us <= now <= campaign.valid_until_us:
        return (WalletReason.VOUCHER_WINDOW, f"campaign {campaign.id}'s vouchers are "
                f"valid from {format_time(campaign.valid_from_us)} to "
                f"{format_time(campaign.valid_until_us)}")
    if voucher_id is None:
        return WalletReason.NO_VOUCHER, f"campaign {campaign.id}"
    eligible = (not campaign.merchants and not campaign.mccs) or \
        merchant in campaign.merchants or w.merchants.get(merchant) in campaign.mccs
    if not eligible:
        return (WalletReason.VOUCHER_MERCHANT, f"merchant {merchant} (MCC "
                f"{w.merchants.get(merchant, '?')}) is not in campaign {campaign.id}")
    if amount_fen < campaign.threshold_fen:
        return (WalletReason.VOUCHER_THRESHOLD, f"{format_fen(amount_fen)} is below "
                f"{format_fen(campaign.threshold_fen)}")
    return None


def redeem(w: Wallets, voucher_id: str, payment_id: str, merchant: str, price_fen: int
           ) -> str:
    """The voucher is used on an approved payment: the sponsor pays the merchant the
    discount. Returns how (``book`` within the sponsor's bank, or the IBPS item's id)."""
    voucher = w.vouchers[voucher_id]
    campaign = w.campaigns[voucher.campaign]
    voucher.status, voucher.used_by = "used", payment_id
    campaign.used += 1
    campaign.spend_fen += price_fen
    assert campaign.used <= campaign.claimed
    b = w.banks
    assert b.books is not None
    payee = b.directory.by_id[merchant]
    if payee.bank == campaign.sponsor_bank:
        done = b.books.post(payee.bank, campaign.fund, payee.ledger_name,
                            campaign.discount_fen).done
        assert done, "the fund holds every committed discount"
        subsidy_paid(w, campaign.id)
        return "book"
    sponsor = b.directory.by_id[campaign.sponsor]
    ref = f"{payment_id}.subsidy"
    w.waiting.append({"id": ref, "do": "voucher_subsidy", "campaign": campaign.id,
                      "payment": payment_id})
    outgoing.net_payment(b, {
        "id": ref, "system": "IBPS", "kind": "credit", "amount_fen": campaign.discount_fen,
        "payer": ["customer", sponsor.bank, sponsor.account, sponsor.id],
        "payee": ["customer", payee.bank, payee.account, payee.id],
        "payee_name": payee.name, "payer_ledger": campaign.fund})
    return ref


def subsidy_paid(w: Wallets, campaign_id: str) -> None:
    """The merchant has the discount: it counts as paid from the budget."""
    campaign = w.campaigns[campaign_id]
    campaign.paid_fen += campaign.discount_fen
    assert campaign.paid_fen <= campaign.committed_fen() <= campaign.budget_fen


def close(w: Wallets, f: dict[str, Any]) -> None:
    """The campaign ends (活动结束) after its validity window: the vouchers still unused
    expire and what is left of the fund goes back to the sponsor's account, in the
    sponsor bank's book. Refused while the window is open or a discount is in IBPS."""
    do = "close_campaign"
    campaign = _campaign(w, f, do)
    if campaign is None:
        return
    if campaign.closed:
        w.refuse(f, do, WalletReason.CAMPAIGN_CLOSED, f"campaign {campaign.id} was closed "
                 "already")
        return
    if w.now_us <= campaign.valid_until_us:
        w.refuse(f, do, WalletReason.CAMPAIGN_OPEN, f"campaign {campaign.id}'s vouchers are "
                 f"valid until {format_time(campaign.valid_until_us)}")
        return
    in_ibps = flying(w, campaign.id)
    if in_ibps:
        w.refuse(f, do, WalletReason.SUBSIDY_PENDING, f"{', '.join(in_ibps)} not ended yet")
        return
    expired = 0
    for voucher in w.vouchers.values():
        if voucher.campaign == campaign.id and voucher.status == "claimed":
            voucher.status = "expired"
            expired += 1
    left = w.balance_fen(campaign.sponsor_bank, campaign.fund)
    # every discount committed but not paid is free again: the fund holds exactly the
    # budget less the discounts paid (a refused subsidy's money came back to it)
    assert left == campaign.budget_fen - campaign.paid_fen, (left, campaign)
    b = w.banks
    assert b.books is not None
    if left:
        sponsor = b.directory.by_id[campaign.sponsor]
        done = b.books.post(campaign.sponsor_bank, campaign.fund, sponsor.ledger_name,
                            left).done
        assert done, "the fund holds what is left"
    campaign.closed, campaign.returned_fen = True, left
    w.record(f, do, campaign=campaign.id, sponsor=campaign.sponsor, expired=expired,
             returned=format_fen(left))


def flying(w: Wallets, campaign_id: str) -> list[str]:
    """The campaign's discounts still in IBPS (their items' ids)."""
    return [op["id"] for op in w.waiting
            if op["do"] == "voucher_subsidy" and op["campaign"] == campaign_id]


def report(w: Wallets) -> dict[str, Any]:
    """Each campaign: vouchers claimed and used, the spending they drove, the discounts
    paid, the budget left, and the leverage (spend driven per yuan of discount)."""
    out = {}
    for c in w.campaigns.values():
        out[c.id] = {"sponsor": c.sponsor, "budget": format_fen(c.budget_fen),
                     "claimed": c.claimed, "used": c.used,
                     "spend_driven": format_fen(c.spend_fen),
                     "discounts_paid": format_fen(c.paid_fen),
                     "fund_left": format_fen(w.balance_fen(c.sponsor_bank, c.fund)),
                     "leverage": f"{c.spend_fen / c.paid_fen:.2f}" if c.paid_fen else None,
                     "returned": format_fen(c.returned_fen) if c.closed else None}
    return out
