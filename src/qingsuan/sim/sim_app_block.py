"""The ``app:`` block of a scenario (docs/SIMULATE.md, "App traffic"): the app's generated
day for ``qingsuan simulate``, checked when the file is loaded, each problem with its line
and the field it names. The block's meaning (generation and play) is sim/sim_app.py's.

Every number is a parameter with a default (:class:`AppSpec`); shares and rates are kept in
parts per million, amounts in fen, so the spec holds no float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Final

from qingsuan.sim.sim_blocks import Checker, amount_fen, share_ppm, whole
from qingsuan.sim.yamlloc import LDict, LList

PPM: Final = 1_000_000
#: generated users and merchants one file may ask for
MAX_APP_USERS: Final = 1_000_000
MAX_APP_MERCHANTS: Final = 100_000
#: app events one generated day may hold (each kind's count is rate x users)
MAX_APP_EVENTS_PER_DAY: Final = 20_000_000
_MCC_RE: Final = re.compile(r"^\d{4}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")

#: the block's numbers: (key, how it is read: "whole" a whole number, "minutes" whole
#: minutes, "amount" CNY, "share" a decimal from 0 to 1 ("share1": above 0), "rate" a
#: decimal per user per day from 0 to 100, "sigma" above 0 and at most 4)
_NUMBERS: Final[tuple[tuple[str, str], ...]] = (
    ("users", "whole"), ("merchants", "whole"), ("claim_minutes", "minutes"),
    ("card_balance", "amount"), ("credit_limit", "amount"), ("payment_mean", "amount"),
    ("top_up_mean", "amount"), ("withdrawal_mean", "amount"),
    ("credit_holders", "share"), ("merchant_mdr", "share"), ("payment_codes", "share"),
    ("wallet_payments", "share"), ("repayment_share", "share1"), ("claimers", "share"),
    ("voucher_use", "share"),
    ("payments", "rate"), ("top_ups", "rate"), ("withdrawals", "rate"),
    ("repayments", "rate"),
    ("payment_sigma", "sigma"), ("top_up_sigma", "sigma"), ("withdrawal_sigma", "sigma"),
)
BLOCK_KEYS: Final = (*(k for k, _ in _NUMBERS), "institution", "merchant_mccs", "campaign")


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A scenario's ``app:`` block (defaults: this model's assumptions, not published
    figures)."""

    #: users generated beside the ``wallets:`` block's, each with a debit card
    users: int = 0
    #: the generated users' institution (None: the first under ``wallets: institutions``)
    institution: str | None = None
    #: merchants generated beside the listed ones, each with a POS terminal at its bank
    merchants: int = 0
    #: a generated user's debit account's opening balance: 5,000.00
    card_balance_fen: int = 500_000
    #: generated users who also hold a credit card (at another bank)
    credit_holders_ppm: int = 300_000
    #: a generated credit card's limit: 20,000.00
    credit_limit_fen: int = 2_000_000
    #: a generated merchant's MDR (0.6%) and MCCs (in turn)
    merchant_mdr_ppm: int = 6_000
    merchant_mccs: tuple[str, ...] = ("5812", "5411", "5814", "5311")
    #: QR payments per user per day, their mean (80.00) and lognormal shape
    payments_ppm: int = 2_000_000
    payment_mean_fen: int = 8_000
    payment_sigma_ppm: int = 1_000_000
    #: payments by the user's payment code (the merchant scans it; the others: the user
    #: scans the merchant's code) and from the wallet's balance (余额支付)
    payment_codes_ppm: int = 400_000
    wallet_payments_ppm: int = 100_000
    #: top-ups per user per day, mean 300.00
    top_ups_ppm: int = 300_000
    top_up_mean_fen: int = 30_000
    top_up_sigma_ppm: int = 500_000
    #: withdrawals per user per day, mean 100.00
    withdrawals_ppm: int = 50_000
    withdrawal_mean_fen: int = 10_000
    withdrawal_sigma_ppm: int = 500_000
    #: repayments per credit-card holder per day, each of this share of what is owed then
    repayments_ppm: int = 200_000
    repayment_share_ppm: int = 1_000_000
    #: the voucher campaign played (an id under ``wallets: campaigns``; None: none)
    campaign: str | None = None
    #: users who claim one voucher, the mean minutes from the claim window's opening to
    #: a claim (a rush: exponential, cut at the window's end), and the eligible payments
    #: of a voucher holder on which the app applies it
    claimers_ppm: int = 500_000
    claim_minutes: int = 60
    voucher_use_ppm: int = 1_000_000
    line: int = 0

    def parameters(self) -> dict[str, Any]:
        """The block as summary.json gives it (its fields: fen, ppm, minutes)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self) if f.name != "line"}


#: the field of AppSpec each number of the block sets
_FIELD: Final = {"users": "users", "merchants": "merchants",
                 "claim_minutes": "claim_minutes", "card_balance": "card_balance_fen",
                 "credit_limit": "credit_limit_fen", "payment_mean": "payment_mean_fen",
                 "top_up_mean": "top_up_mean_fen", "withdrawal_mean": "withdrawal_mean_fen"}


def parse_app(ck: Checker, top: LDict, wallets: Any, terminals: dict[str, Any]
              ) -> AppSpec | None:
    """The ``app:`` block (absent or empty: None). ``wallets``: the checked ``wallets:``
    block (wallets/terms.py WalletsSpec) or None; ``terminals`` by id as the loader read
    them."""
    raw = top.get("app")
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, LDict):
        ck.add(top.line_of("app"), "app must be a mapping of parameters (docs/SIMULATE.md, "
                                   "\"App traffic\")")
        return None
    if not ck.keys(raw, "app", (), BLOCK_KEYS):
        return None
    bad = False
    d = AppSpec()
    got: dict[str, Any] = {}
    for key, kind in _NUMBERS:
        name = _FIELD.get(key, f"{key}_ppm")
        default = getattr(d, name)
        if key not in raw:
            got[name] = default
            continue
        value: int | None
        if kind == "whole":
            hi = MAX_APP_USERS if key == "users" else MAX_APP_MERCHANTS
            value = whole(ck, raw, key, "app", 0, hi, default)
        elif kind == "minutes":
            value = whole(ck, raw, key, "app", 1, 525_600, default)
        elif kind == "amount":
            value = amount_fen(ck, raw, key, "app", -1)
            value = None if value < 0 else value
        elif kind == "rate":
            value = share_ppm(ck, raw, key, "app", lo_open=False, hi="100")
        elif kind == "sigma":
            value = share_ppm(ck, raw, key, "app", hi="4")
        else:  # a share: 0 to 1 (the repayment's share of what is owed: above 0)
            value = share_ppm(ck, raw, key, "app", lo_open=kind == "share1")
        if value is None:
            bad = True
        got[name] = value
    mccs = _mccs(ck, raw, d.merchant_mccs)
    if not bad and got["payment_codes_ppm"] + got["wallet_payments_ppm"] > PPM:
        ck.add(raw.line_of("wallet_payments"), "app: payment_codes and wallet_payments are "
               "shares of the same payments: together at most 1")
        bad = True
    institution = _institution(ck, raw, wallets)
    campaign = _campaign(ck, raw, wallets)
    if wallets is None:
        ck.add(raw.line, "app: the scenario has no wallets: block (its payment institution "
                         "and, for a campaign, the campaign): the app needs one")
        return None
    if not bad and not got["merchants"] and not any(
            t.kind == "pos" and t.merchant is not None for t in terminals.values()):
        ck.add(raw.line_of("merchants") if "merchants" in raw else raw.line,
               "app: no merchant to pay: list a POS terminal of a merchant or set merchants "
               "(generated merchants)")
        bad = True
    if not bad:
        per_day = max(got["users"] + len(wallets.users), 1) * (
            got["payments_ppm"] + got["top_ups_ppm"] + got["withdrawals_ppm"]
            + got["repayments_ppm"]) // PPM
        if per_day > MAX_APP_EVENTS_PER_DAY:
            ck.add(raw.line, f"app: {per_day:,} events a day is more than "
                             f"{MAX_APP_EVENTS_PER_DAY:,}: lower the rates or the users")
            bad = True
    if bad or mccs is None or institution is False or campaign is False:
        return None
    assert institution is not True and campaign is not True
    return AppSpec(institution=institution, merchant_mccs=mccs, campaign=campaign,
                   line=raw.line, **got)


def _mccs(ck: Checker, raw: LDict, default: tuple[str, ...]) -> tuple[str, ...] | None:
    if "merchant_mccs" not in raw:
        return default
    value = raw["merchant_mccs"]
    if (not isinstance(value, LList) or not value
            or any(not isinstance(v, str) or not _MCC_RE.match(v) for v in value)):
        ck.add(raw.line_of("merchant_mccs"), f"app: merchant_mccs must be a list of quoted "
                                             f"4-digit MCCs like \"5812\" (got {value!r})")
        return None
    return tuple(str(v) for v in value)


def _institution(ck: Checker, raw: LDict, wallets: Any) -> str | bool | None:
    """The named institution (None: the default), or False when it is wrong."""
    if "institution" not in raw:
        if wallets is not None and not wallets.institutions:
            ck.add(raw.line, "app: the wallets: block lists no institution for the users")
            return False
        return None
    name = raw["institution"]
    if not isinstance(name, str) or (wallets is not None and name not in wallets.institutions):
        ck.add(raw.line_of("institution"), f"app: institution {name!r} is not listed under "
                                           "wallets: institutions")
        return False
    return str(name)


def _campaign(ck: Checker, raw: LDict, wallets: Any) -> str | bool | None:
    """The named campaign (None: none), or False when it is wrong."""
    if "campaign" not in raw:
        return None
    cid = raw["campaign"]
    if not isinstance(cid, str) or not _ID_RE.match(cid) or (
            wallets is not None and cid not in wallets.campaigns):
        ck.add(raw.line_of("campaign"), f"app: campaign {cid!r} is not a campaign listed "
                                        "under wallets: campaigns")
        return False
    return cid
