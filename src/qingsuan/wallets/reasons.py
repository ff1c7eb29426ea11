"""The app's and the institutions' refusal codes (拒绝原因): each with a readable meaning;
a refusal names the code and a message saying what was wrong with which field."""

from __future__ import annotations

from qingsuan.reasons import CodedReason


class WalletReason(CodedReason):
    """(code, meaning) of a refusal by the app, the institution or a voucher campaign."""

    UNKNOWN_USER = ("UNKNOWN_USER", "no such user of the app")
    UNKNOWN_CARD = ("UNKNOWN_CARD", "the switch knows no such card")
    UNKNOWN_TERMINAL = ("UNKNOWN_TERMINAL", "the switch knows no such terminal")
    UNKNOWN_CAMPAIGN = ("UNKNOWN_CAMPAIGN", "no such voucher campaign")
    CARD_NOT_ACTIVE = ("CARD_NOT_ACTIVE", "the issuer says the card is not active")
    NAME_MISMATCH = ("NAME_MISMATCH", "the name is not the cardholder's")
    ACCOUNT_CLOSED = ("ACCOUNT_CLOSED", "the card's account is closed")
    ALREADY_BOUND = ("ALREADY_BOUND", "the card is bound already")
    TOO_MANY_CARDS = ("TOO_MANY_CARDS", "the user has bound as many cards as allowed")
    NOT_BOUND = ("NOT_BOUND", "the card is not bound to this user")
    CODE_UNKNOWN = ("CODE_UNKNOWN", "no such payment code")
    CODE_EXPIRED = ("CODE_EXPIRED", "the payment code has expired")
    CODE_USED = ("CODE_USED", "the payment code was used already")
    INSUFFICIENT_WALLET = ("INSUFFICIENT_WALLET", "the wallet's balance is too low")
    WALLET_LIMIT = ("WALLET_LIMIT", "the wallet would hold more than its limit")
    OTHER_INSTITUTION = ("OTHER_INSTITUTION", "the wallets are at different institutions")
    CLAIM_WINDOW = ("CLAIM_WINDOW", "the campaign's claim window is not open")
    CLAIM_LIMIT = ("CLAIM_LIMIT", "the user has claimed as many vouchers as allowed")
    BUDGET_EXHAUSTED = ("BUDGET_EXHAUSTED", "the campaign's budget is spent")
    NO_VOUCHER = ("NO_VOUCHER", "the user holds no unused voucher of the campaign")
    VOUCHER_WINDOW = ("VOUCHER_WINDOW", "the voucher is outside its validity window")
    VOUCHER_MERCHANT = ("VOUCHER_MERCHANT", "the merchant is not eligible for the voucher")
    VOUCHER_THRESHOLD = ("VOUCHER_THRESHOLD", "the amount is below the voucher's threshold")
    NOT_CREDIT_CARD = ("NOT_CREDIT_CARD", "the card is not a credit card")
    REPAYMENT_TOO_LARGE = ("REPAYMENT_TOO_LARGE", "the repayment is larger than the balance "
                                                  "owed")
    INSUFFICIENT_FUNDS = ("INSUFFICIENT_FUNDS", "the paying account's balance is too low")
    CAMPAIGN_OPEN = ("CAMPAIGN_OPEN", "the campaign's validity window has not ended")
    CAMPAIGN_CLOSED = ("CAMPAIGN_CLOSED", "the campaign is closed and its budget returned")
    SUBSIDY_PENDING = ("SUBSIDY_PENDING", "a discount of the campaign is still in IBPS")
    RIDE_LIMIT = ("RIDE_LIMIT", "the fare is above the gate's offline limit per ride")
    DAILY_LIMIT = ("DAILY_LIMIT", "the day's offline rides would pass the daily limit")
    TRANSIT_DEBT = ("TRANSIT_DEBT", "a ride the issuer declined is still unpaid")
    NO_RIDES = ("NO_RIDES", "no offline ride of an earlier day is waiting to be cleared")

    def detail(self, message: str) -> dict[str, str]:
        """The JSON form of the outcome: code and a message naming what was wrong."""
        return {"code": self.code, "message": f"{self.meaning}: {message}"}
