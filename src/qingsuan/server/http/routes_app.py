"""Routes: the consumer app's phone-sized web page (``/app``) and its JSON (``/v1/app``).

A user logs in with their phone and app key (app_auth.py) and from then on sends the key
as ``Authorization: Bearer KEY``; every route acts for and shows that user only: a card,
code or voucher of another user is as unknown (404) as one that does not exist. Each action
is a logged command run on the engine's single writer and answered once durable
(app_actions.py); a refusal is ``{reason, field, message}`` with the wallets' reason code.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from qingsuan.server.http import app_actions as act
from qingsuan.server.http import inputs
from qingsuan.server.http.app_auth import AppUser, user_keys
from qingsuan.server.http.app_page import PAGE
from qingsuan.server.http.deps import Core
from qingsuan.server.http.errors import ERRORS, ApiError

#: the JSON, under /v1/app; ``router`` (what app.py includes) holds it and the page
api = APIRouter(prefix="/v1/app", tags=["app"], responses=ERRORS)
router = APIRouter()
_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$"
CardId = Annotated[str, Field(max_length=64, description="a bound card's id (card_id in "
                                                         "GET /v1/app/cards)")]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(max_length=20, examples=["13800000001"])
    key: str = Field(max_length=200, description="the user's app key",
                     examples=["sandbox-app-13800000001"])


class BindIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: str = Field(max_length=19, description="the card's number (kept only as its "
                                                 "token and masked number)",
                      examples=["6222020200000000014"])
    name: str = Field(max_length=70, description="the cardholder's name, as the issuer "
                                                 "knows it", examples=["Li Lei"])


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_id: CardId


class PayIn(BaseModel):
    """The user scanned a merchant's code (收款码) and pays with a bound card."""

    model_config = ConfigDict(extra="forbid")
    card_id: CardId
    amount: str = Field(description="CNY as a string of yuan, at most two decimals",
                        examples=["150.00"])
    merchant_code: str | None = Field(None, max_length=300, description="the scanned "
                                      "code's text (qingsuan://merchant?...)")
    terminal: str | None = Field(None, max_length=16, description="or the merchant's "
                                 "terminal id", examples=["POS00001"])
    voucher: str | None = Field(None, max_length=64, description="use a voucher of this "
                                "campaign", examples=["city-spring"])


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str = Field(max_length=64, examples=["city-spring"])


class RepayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_card: CardId
    card: CardId = Field(description="the credit card repaid (its card_id)")
    amount: str = Field(description="CNY as a string of yuan", examples=["300.00"])


class MoveIn(BaseModel):
    """Money between the wallet and a bound card: a top-up (充值) by quick pay from it, or a
    withdrawal (提现) to it."""

    model_config = ConfigDict(extra="forbid")
    card_id: CardId
    amount: str = Field(description="CNY as a string of yuan, at most two decimals",
                        examples=["500.00"])


class RideIn(BaseModel):
    """The user's transit code (乘车码) shown at a gate: the sandbox stands in for the
    gate, which authorises the ride offline."""

    model_config = ConfigDict(extra="forbid")
    card_id: CardId
    gate: str = Field(max_length=16, description="the gate's terminal id",
                      examples=["GATE0001"])
    amount: str = Field(description="the fare, CNY as a string of yuan", examples=["4.00"])


CodeId = Annotated[str, Path(pattern=_ID, description="the payment code's id")]


async def _run(c: Any, job: Any) -> Any:
    return await c.writer.call(job)


@api.post("/login", summary="Log in as a user of the app")
async def login(request: Request, body: LoginIn, c: Core) -> dict[str, Any]:
    """The phone and its app key (answered alike for an unknown phone and a wrong key)."""
    keys = user_keys(request)
    if not keys.check(body.phone, body.key):
        raise ApiError(401, "bad_login", "this phone and key do not log in here", "key")
    phone = body.phone
    return dict(await _run(c, lambda: act.profile(c.world, phone)))


@api.get("/me", summary="The user, the wallet's balance")
async def me(phone: AppUser, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.profile(c.world, phone)))


@api.get("/cards", summary="Bound cards with their balances, asked of the issuers now")
async def cards(phone: AppUser, c: Core) -> dict[str, Any]:
    """Each bound card's balance by a balance inquiry through the switch to its issuer
    (a logged card_balances event); the app keeps no balance."""
    return dict(await _run(c, lambda: act.balances(c.world, phone)))


@api.post("/cards", status_code=201, summary="Bind a card (绑卡)")
async def bind(phone: AppUser, body: BindIn, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.bind(c.world, phone, body.card, body.name)))


@api.post("/codes", status_code=201, summary="A one-time payment code (付款码)")
async def new_code(phone: AppUser, body: CodeIn, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.new_code(c.world, phone, body.card_id)))


@api.get("/codes/{code_id}", summary="A payment code: valid, used or expired")
async def code(phone: AppUser, code_id: CodeId, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.code_view(c.world, phone, code_id)))


@api.get("/codes/{code_id}/qr.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}}, summary="The code's QR image")
async def code_png(phone: AppUser, code_id: CodeId, c: Core) -> Response:
    image = await _run(c, lambda: act.code_image(c.world, phone, code_id))
    return Response(image.png, media_type="image/png", headers={"Cache-Control": "no-store"})


@api.get("/codes/{code_id}/qr.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}}, summary="The code as SVG")
async def code_svg(phone: AppUser, code_id: CodeId, c: Core) -> Response:
    image = await _run(c, lambda: act.code_image(c.world, phone, code_id))
    return Response(image.svg, media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@api.post("/payments", status_code=201, summary="Pay a merchant's code (扫码支付)")
async def pay(phone: AppUser, body: PayIn, c: Core) -> dict[str, Any]:
    amount = inputs.amount_fen(body.amount)

    def job() -> dict[str, Any]:
        terminal = act.merchant_terminal(act.wallets_of(c.world), body.terminal, body.merchant_code)
        return act.pay(c.world, phone, body.card_id, amount, terminal, body.voucher)

    return dict(await _run(c, job))


@api.get("/vouchers", summary="Campaigns to claim from and the user's vouchers")
async def vouchers(phone: AppUser, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.vouchers(c.world, phone)))


@api.post("/vouchers", status_code=201, summary="Claim a voucher (领券)")
async def claim(phone: AppUser, body: ClaimIn, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.claim(c.world, phone, body.campaign)))


@api.get("/statements", summary="The bound credit cards' statements")
async def statements(phone: AppUser, c: Core) -> dict[str, Any]:
    return dict(await _run(c, lambda: act.statements(c.world, phone)))


@api.post("/repayments", status_code=201, summary="Repay a credit card (还款)")
async def repay(phone: AppUser, body: RepayIn, c: Core) -> dict[str, Any]:
    amount = inputs.amount_fen(body.amount)
    return dict(await _run(c, lambda: act.repay(c.world, phone, body.from_card, body.card,
                                                amount)))


@api.get("/wallet", summary="The wallet's balance and its latest moves")
async def wallet(phone: AppUser, c: Core) -> dict[str, Any]:
    """The balance, the wallet's limit, and the user's latest top-ups, withdrawals, wallet
    transfers and wallet payments (at most 20, the latest first) with their status."""
    return dict(await _run(c, lambda: act.wallet(c.world, phone)))


@api.post("/top-ups", status_code=201, summary="Top up the wallet from a card (充值)")
async def top_up(phone: AppUser, body: MoveIn, c: Core) -> dict[str, Any]:
    """Quick pay (快捷支付): a real-time IBPS debit of the bound card's account for the
    institution; ``pending`` until IBPS nets it, then the wallet is credited."""
    amount = inputs.amount_fen(body.amount)
    return dict(await _run(c, lambda: act.move_money(c.world, phone, "wallet_top_up",
                                                     body.card_id, amount)))


@api.post("/withdrawals", status_code=201, summary="Withdraw to a card's account (提现)")
async def withdraw(phone: AppUser, body: MoveIn, c: Core) -> dict[str, Any]:
    """An IBPS credit from the institution to the bound card's account; refused or
    returned by the bank, the money goes back to the wallet."""
    amount = inputs.amount_fen(body.amount)
    return dict(await _run(c, lambda: act.move_money(c.world, phone, "wallet_withdrawal",
                                                     body.card_id, amount)))


@api.get("/transit", summary="The transit code's rides (乘车码)")
async def transit(phone: AppUser, c: Core) -> dict[str, Any]:
    """The user's rides with their fate in the next day's batch, what declined rides
    owe, and the gates' offline limits with what today used."""
    return dict(await _run(c, lambda: act.transit(c.world, phone)))


@api.post("/transit/rides", status_code=201, summary="Ride through a gate (乘车码过闸)")
async def ride(phone: AppUser, body: RideIn, c: Core) -> dict[str, Any]:
    """The gate authorises the ride offline, at once; the ride waits for the next day's
    batch (``authorised``)."""
    amount = inputs.amount_fen(body.amount)
    return dict(await _run(c, lambda: act.ride(c.world, phone, body.card_id, body.gate,
                                               amount)))


@router.get("/app", response_class=HTMLResponse, tags=["app"],
            summary="The app's phone-sized page")
async def page() -> HTMLResponse:
    """The page holds no data and needs no key to load: it logs in with fetch."""
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})


router.include_router(api)
