"""Every number in a rule is a parameter: the registry of documented defaults.

A parameter has a dotted name, a kind (how its value is written), a default and a line of
documentation. Scenario files override them under ``params:`` and ``set_param`` events
change them at a moment; an unknown name or a bad value is an error naming the parameter.
``qingsuan params`` prints this table; docs/PARAMETERS.md is generated from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from qingsuan.money import AmountError, format_fen, parse_amount


class ParamKind(Enum):
    AMOUNT = "amount"      # "50000.00" CNY -> int fen
    TIME = "time"          # "HH:MM" Beijing time -> minutes since midnight
    BOOL = "bool"          # on/off, true/false
    INT = "int"
    RATE = "rate"          # decimal fraction "0.0035" -> parts per million (int)
    CHOICE = "choice"
    TIMES = "times"        # "HH:MM,HH:MM,..." in order
    SET = "set"            # "A,B": some of the choices, written in the choices' order


class ParamError(ValueError):
    """A parameter name or value that is not acceptable. The message names the parameter."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    kind: ParamKind
    default: str
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    #: a parameter of an optional part of a world (the wallets, connected participants'
    #: receipts): among the written values
    #: (reports, the world's description, the state hash) only once set, so that a world
    #: without that part is written and hashed exactly as before the part existed
    optional: bool = False


_TIME_RE: Final = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$", re.ASCII)
_RATE_RE: Final = re.compile(r"^\d+(\.\d{1,6})?$", re.ASCII)
PPM: Final = 1_000_000
#: The CNAPS systems a participant sends and receives through (the ``cnaps.*_systems`` sets).
CNAPS_SYSTEMS: Final = ("HVPS", "BEPS", "IBPS")

SPECS: Final[tuple[ParamSpec, ...]] = (
    # -- calendar and operating windows (DOMAIN.md §3) --------------------------------
    ParamSpec("calendar.name", ParamKind.CHOICE, "cn",
              "business calendar: cn (Chinese holidays and 调休) or weekdays (Monday-Friday)",
              ("cn", "weekdays")),
    ParamSpec("calendar.missing_year", ParamKind.CHOICE, "error",
              "what to do for a year missing from the holiday table: error, or weekends "
              "(Monday-Friday are business days)", ("error", "weekends")),
    ParamSpec("hvps.open", ParamKind.TIME, "20:30",
              "HVPS business day D opens at this time on the previous natural day"),
    ParamSpec("hvps.cutoff", ParamKind.TIME, "17:15",
              "HVPS business cut-off (业务截止) on day D"),
    ParamSpec("hvps.clearing_end", ParamKind.TIME, "17:30",
              "end of the HVPS clearing window (清算窗口); queued payments are returned"),
    ParamSpec("hvps.closed", ParamKind.BOOL, "off",
              "HVPS closed for maintenance (维护) regardless of the calendar: it refuses new "
              "payments (DT01) and runs no BEPS/IBPS/card settlement session"),
    ParamSpec("hvps.bypass_fifo", ParamKind.BOOL, "off",
              "release any queued payment that fits, not only the head of the queue"),
    ParamSpec("hvps.lsm", ParamKind.CHOICE, "lsm",
              "gridlock resolution: off, bilateral, multilateral, or lsm (multilateral, "
              "then re-adding what fits)", ("off", "bilateral", "multilateral", "lsm")),
    ParamSpec("hvps.lsm_on_queue", ParamKind.BOOL, "on",
              "try gridlock resolution whenever a payment queues"),
    ParamSpec("hvps.lsm_interval_minutes", ParamKind.INT, "5",
              "also try gridlock resolution every N minutes while payments are queued "
              "(0 = never periodically)", minimum=0),
    ParamSpec("hvps.bilateral_candidates", ParamKind.INT, "100",
              "queued payments tested per bilateral offsetting attempt", minimum=1),
    ParamSpec("hvps.pledge_haircut", ParamKind.RATE, "0.1",
              "haircut on pledged collateral (质押折扣): lendable = value x (1 - haircut)"),
    ParamSpec("hvps.credit_rate", ParamKind.RATE, "0.0225",
              "annual rate of pledge financing left unpaid at the end of the day (overnight, "
              "ACT/360)"),
    ParamSpec("cards.cutoff", ParamKind.TIME, "23:00",
              "card switch clearing-day cut-off (日切)"),
    # -- who may use which CNAPS system (DOMAIN.md §3) --------------------------------
    ParamSpec("cnaps.bank_systems", ParamKind.SET, "HVPS,BEPS,IBPS",
              "CNAPS systems a bank (direct or indirect participant) may send and receive "
              "through; the others refuse it with AG01", CNAPS_SYSTEMS),
    ParamSpec("cnaps.payment_institution_systems", ParamKind.SET, "IBPS",
              "CNAPS systems a non-bank payment institution may send and receive through; "
              "the others refuse it with AG01", CNAPS_SYSTEMS),
    ParamSpec("cnaps.card_switch_systems", ParamKind.SET, "HVPS,BEPS,IBPS",
              "CNAPS systems the card switch may send and receive through; its clearing "
              "positions settle in HVPS sessions whatever this says", CNAPS_SYSTEMS),
    # -- item limits ------------------------------------------------------------------
    ParamSpec("beps.item_limit", ParamKind.AMOUNT, "50000.00",
              "BEPS ordinary credit per-item limit (小额贷记单笔上限)"),
    ParamSpec("beps.holiday_item_limit", ParamKind.AMOUNT, "50000.00",
              "BEPS ordinary credit per-item limit on non-business days"),
    ParamSpec("ibps.item_limit", ParamKind.AMOUNT, "50000.00",
              "IBPS per-item limit (网银单笔上限)"),
    ParamSpec("ibps.confirm_timeout_ms", ParamKind.INT, "30000",
              "time the receiving bank has to accept or reject an IBPS item", minimum=1),
    ParamSpec("ibps.sim_latency_ms", ParamKind.INT, "200",
              "how long a simulated receiving bank takes to answer an IBPS item", minimum=0),
    ParamSpec("ibps.sim_accept_ratio", ParamKind.RATE, "1",
              "share of valid IBPS items a simulated receiving bank accepts"),
    ParamSpec("ibps.default_cap", ParamKind.AMOUNT, "10000000.00",
              "IBPS net debit cap (净借记限额) of a participant unless set"),
    ParamSpec("ibps.sessions", ParamKind.TIMES, "09:00,11:00,13:00,15:00,16:30",
              "IBPS settlement sessions in HVPS (on HVPS business days, while it is open)"),
    ParamSpec("cups.sessions", ParamKind.TIMES, "09:00",
              "HVPS sessions at which the card switch's clearing positions settle"),
    ParamSpec("cups.default_cap", ParamKind.AMOUNT, "1000000000000.00",
              "net debit cap for card positions (the switch's clearing is not capped)"),
    ParamSpec("beps.package_max_items", ParamKind.INT, "1000",
              "most items in one BEPS package (one sender, one receiving bank)", minimum=1),
    ParamSpec("beps.default_cap", ParamKind.AMOUNT, "10000000.00",
              "BEPS net debit cap of a participant unless set"),
    ParamSpec("beps.sessions", ParamKind.TIMES, "09:00,11:00,13:00,15:00,16:30",
              "BEPS settlement sessions in HVPS (on HVPS business days, while it is open)"),
    ParamSpec("beps.closed", ParamKind.BOOL, "off",
              "BEPS closed for maintenance (维护窗口): it accepts no items (DT01; the sending "
              "bank holds them), nets nothing and runs no session until it reopens"),
    ParamSpec("ibps.closed", ParamKind.BOOL, "off",
              "IBPS closed for maintenance (维护窗口): it refuses every item at once (DT01) "
              "and runs no session until it reopens"),
    # -- card fees (DOMAIN.md §4) -----------------------------------------------------
    ParamSpec("cards.fees", ParamKind.BOOL, "on", "charge the card fees below"),
    ParamSpec("cards.pos_no_pin_limit", ParamKind.AMOUNT, "1000.00",
              "POS purchases up to this amount need no PIN (小额免密免签)"),
    ParamSpec("cards.pin_tries", ParamKind.INT, "3",
              "wrong PINs in a row after which the issuer blocks the card", minimum=1),
    ParamSpec("cards.daily_withdrawal_limit", ParamKind.AMOUNT, "20000.00",
              "cash a card may withdraw per day (61 above it)"),
    ParamSpec("cards.issuer_fee_debit_rate", ParamKind.RATE, "0.0035",
              "issuer service fee (发卡行服务费), debit cards"),
    ParamSpec("cards.issuer_fee_debit_cap", ParamKind.AMOUNT, "13.00",
              "cap of the issuer service fee per debit-card item"),
    ParamSpec("cards.issuer_fee_credit_rate", ParamKind.RATE, "0.0045",
              "issuer service fee, credit cards (uncapped)"),
    ParamSpec("cards.network_fee_rate", ParamKind.RATE, "0.000325",
              "network service fee (网络服务费), charged to issuer and acquirer each"),
    ParamSpec("cards.network_fee_cap", ParamKind.AMOUNT, "3.25",
              "cap of the network service fee per side per item"),
    ParamSpec("cards.atm_interbank_fee", ParamKind.AMOUNT, "3.00",
              "fixed interbank fee per ATM withdrawal, paid by the issuer to the acquirer"),
    # -- card switch: issuer hosts (faults, timeouts, stand-in) --------------------------
    ParamSpec("cards.issuer_timeout", ParamKind.INT, "30",
              "seconds the switch waits for an issuer's answer: none in time is 91 (issuer "
              "unavailable), one after it is 68 and the switch reverses it at the issuer",
              minimum=1),
    ParamSpec("cards.standin", ParamKind.BOOL, "off",
              "stand-in authorisation (代授权): the switch approves for an issuer that is down "
              "POS purchases without a PIN up to cards.standin_limit"),
    ParamSpec("cards.standin_limit", ParamKind.AMOUNT, "500.00",
              "largest POS purchase the switch approves in stand-in (91 above it)"),
    # -- card disputes (差错处理, DOMAIN.md §4) ---------------------------------------------
    ParamSpec("cards.chargeback_days", ParamKind.INT, "120",
              "natural days after the original's clearing day within which the issuer may "
              "file a first chargeback and the acquirer a credit adjustment", minimum=1),
    ParamSpec("cards.dispute_reply_days", ParamKind.INT, "20",
              "natural days after a dispute step's clearing day within which the other side "
              "may answer it (representment, second chargeback)", minimum=1),
    # -- card pre-authorisation (预授权, DOMAIN.md §4: 0100/0110) ------------------------
    ParamSpec("cards.preauth_days", ParamKind.INT, "30",
              "natural days an issuer holds the amount of a pre-authorisation (预授权); the "
              "hold expires by itself after them and a completion is then refused (12)",
              minimum=1),
    ParamSpec("cards.preauth_tolerance", ParamKind.RATE, "0.15",
              "a pre-authorisation completion (预授权完成) may exceed the pre-authorised "
              "amount by at most this fraction of it (13 above it; CUPS allows 115%)"),
    # -- banks ------------------------------------------------------------------------
    ParamSpec("banks.name_check", ParamKind.BOOL, "off",
              "a receiving bank returns a payment whose payee name does not match the account "
              "(BE01)"),
    ParamSpec("banks.channel_fee", ParamKind.AMOUNT, "0.00",
              "fee a bank charges its customer per outgoing interbank transfer", minimum=0),
    # -- payment institutions and the app (docs/WALLETS.md) ------------------------------
    ParamSpec("wallets.payment_code_validity", ParamKind.INT, "60",
              "seconds a payment code (付款码) the user shows stays valid (CODE_EXPIRED after)",
              minimum=1, optional=True),
    ParamSpec("wallets.max_cards", ParamKind.INT, "10",
              "cards one app user may bind at most (TOO_MANY_CARDS beyond)", minimum=1,
              optional=True),
    ParamSpec("wallets.balance_limit", ParamKind.AMOUNT, "100000.00",
              "most a wallet at a payment institution may hold (WALLET_LIMIT above it)",
              optional=True),
    ParamSpec("wallets.transit_ride_limit", ParamKind.AMOUNT, "20.00",
              "the highest fare a gate authorises offline with the transit code (乘车码) "
              "(RIDE_LIMIT above it)", optional=True),
    ParamSpec("wallets.transit_daily_limit", ParamKind.AMOUNT, "100.00",
              "the most one user may ride offline in a day before the batch clears it "
              "(DAILY_LIMIT beyond it)", optional=True),
    ParamSpec("wallets.transit_clearing_time", ParamKind.TIME, "08:00",
              "each day at this time the gates' acquirer sends the batch of the transit "
              "code's rides of earlier days (and the declined ones again) through the switch",
              optional=True),
    ParamSpec("credit.statement_day", ParamKind.INT, "1",
              "the issuer's statement run (账单日): 00:00 on this day of every month (a "
              "shorter month's last day), for every credit card that owes something",
              minimum=1, optional=True),
    ParamSpec("credit.due_days", ParamKind.INT, "20",
              "days from a credit card's statement (账单日) to its due date (到期还款日)",
              minimum=1, optional=True),
    ParamSpec("credit.min_payment_rate", ParamKind.RATE, "0.1",
              "a credit card's minimum payment (最低还款额): this share of what is owed",
              optional=True),
    ParamSpec("credit.min_payment_floor", ParamKind.AMOUNT, "10.00",
              "the minimum payment is at least this (or all that is owed, if less)",
              optional=True),
    ParamSpec("credit.daily_interest_rate", ParamKind.RATE, "0.0005",
              "interest per day on what a statement left unpaid after its due date, charged "
              "at the next statement", optional=True),
    # -- connected participants (docs/SERVER.md; optional: only a world with one uses it)
    ParamSpec("beps.receipt_timeout_minutes", ParamKind.INT, "1440",
              "time a connected payer's bank has to give its receipt (回执) for a BEPS debit "
              "before the debit ends rejected AB06 (the PBOC's deadlines run to days by "
              "business type: one figure here)", minimum=1, optional=True),
)

_BY_NAME: Final = {spec.name: spec for spec in SPECS}


def spec(name: str) -> ParamSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        close = [n for n in _BY_NAME if n.split(".")[0] == name.split(".")[0]]
        hint = f"; known {name.split('.')[0]}.* parameters: {', '.join(close)}" if close else ""
        raise ParamError(f"unknown parameter {name!r}{hint}") from None


def parse_value(name: str, value: object) -> int | bool | str:
    """Check and convert a parameter value written as in a scenario file."""
    s = spec(name)
    if isinstance(value, float):
        raise ParamError(f"parameter {name}: write the value as a quoted string, not a float "
                         f"(got {value!r})")
    text = str(value).strip() if not isinstance(value, bool) else ("on" if value else "off")
    if s.kind is ParamKind.AMOUNT:
        try:
            return parse_amount(text, field=f"parameter {name}", allow_zero=True)
        except AmountError as exc:
            raise ParamError(str(exc)) from None
    if s.kind is ParamKind.TIME:
        if isinstance(value, int):
            raise ParamError(f"parameter {name}: quote times, e.g. \"20:30\" (YAML reads an "
                             f"unquoted 20:30 as the number {value})")
        m = _TIME_RE.match(text)
        if m is None:
            raise ParamError(f"parameter {name}: not a time HH:MM (got {value!r})")
        return int(m.group(1)) * 60 + int(m.group(2))
    if s.kind is ParamKind.BOOL:
        low = text.lower()
        if low in ("on", "true", "yes"):
            return True
        if low in ("off", "false", "no"):
            return False
        raise ParamError(f"parameter {name}: use on or off (got {value!r})")
    if s.kind is ParamKind.INT:
        if not re.fullmatch(r"-?\d+", text, re.ASCII):
            raise ParamError(f"parameter {name}: not a whole number (got {value!r})")
        number = int(text)
        if s.minimum is not None and number < s.minimum:
            raise ParamError(f"parameter {name}: must be at least {s.minimum} (got {number})")
        return number
    if s.kind is ParamKind.TIMES:
        parts = [p.strip() for p in text.split(",")] if text else []
        if any(not _TIME_RE.match(p) for p in parts) or parts != sorted(set(parts)):
            raise ParamError(f"parameter {name}: times HH:MM separated by commas, in order "
                             f"(got {value!r})")
        return ",".join(parts)
    if s.kind is ParamKind.RATE:
        if not _RATE_RE.match(text):
            raise ParamError(f"parameter {name}: not a decimal rate with at most 6 decimals "
                             f"(got {value!r})")
        whole, _, frac = text.partition(".")
        ppm = int(whole) * PPM + int(frac.ljust(6, "0") or "0")
        if ppm > PPM:
            raise ParamError(f"parameter {name}: a rate above 1 (100%) (got {value!r})")
        return ppm
    if s.kind is ParamKind.SET:
        members = [p.strip() for p in text.split(",")] if text else []
        if any(m not in s.choices for m in members) or len(set(members)) != len(members):
            raise ParamError(f"parameter {name}: some of {', '.join(s.choices)}, separated "
                             f"by commas, each once (got {value!r})")
        return ",".join(c for c in s.choices if c in members)
    if text not in s.choices:
        raise ParamError(f"parameter {name}: one of {', '.join(s.choices)} (got {value!r})")
    return text


def format_value(name: str, value: int | bool | str) -> str:
    """The canonical written form of a parsed value (inverse of :func:`parse_value`)."""
    s = spec(name)
    if s.kind is ParamKind.AMOUNT:
        assert isinstance(value, int)
        return format_fen(value)
    if s.kind is ParamKind.TIME:
        assert isinstance(value, int)
        return f"{value // 60:02d}:{value % 60:02d}"
    if s.kind is ParamKind.BOOL:
        return "on" if value else "off"
    if s.kind is ParamKind.RATE:
        assert isinstance(value, int)
        return f"{value // PPM}.{value % PPM:06d}".rstrip("0").rstrip(".")
    return str(value)


class Params(Mapping[str, int | bool | str]):
    """The parameters in force: defaults overridden by a scenario, changed by events."""

    def __init__(self, overrides: Mapping[str, object] | None = None) -> None:
        self._values: dict[str, int | bool | str] = {
            s.name: parse_value(s.name, s.default) for s in SPECS if not s.optional}
        #: how many values were set: a reader that derived something from the parameters
        #: (a schedule) knows it must derive it again when this changes
        self.version = 0
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def set(self, name: str, value: object) -> None:
        self._values[name] = parse_value(name, value)
        self.version += 1

    def __contains__(self, name: object) -> bool:
        return name in self._values or (isinstance(name, str) and name in _BY_NAME)

    def __getitem__(self, name: str) -> int | bool | str:
        try:
            return self._values[name]  # every known parameter has a value
        except KeyError:
            s = spec(name)  # raises ParamError naming it, with the known ones
            if s.optional:  # not set: its default
                return parse_value(name, s.default)
            raise

    def __iter__(self) -> Iterator[str]:  # every known parameter, set or not
        yield from self._values
        yield from (s.name for s in SPECS if s.optional and s.name not in self._values)

    def __len__(self) -> int:
        return len(_BY_NAME)

    def amount(self, name: str) -> int:
        value = self[name]
        assert isinstance(value, int) and spec(name).kind is ParamKind.AMOUNT
        return value

    def written(self) -> dict[str, str]:
        """All parameters in their written form (for reports and `qingsuan params`)."""
        return {name: format_value(name, v) for name, v in self._values.items()}


def _choices_note(s: ParamSpec) -> str:
    return f" (some of {', '.join(s.choices)})" if s.kind is ParamKind.SET else ""


def markdown() -> str:
    """docs/PARAMETERS.md, generated from the registry (a test keeps the file in sync)."""
    lines = [
        "# Parameters", "",
        "Every number in a rule is a parameter with a documented default. A scenario overrides",
        "them under `params:` (dotted names, values written as quoted strings) and `set_param`",
        "events change them at a moment. Generated from `src/qingsuan/params.py` by",
        "`python tools/gen_params_doc.py` (`qingsuan params` prints the same). Amounts are CNY",
        "with at most two decimals, times `HH:MM` Beijing time, rates decimal fractions, sets",
        "some of their choices separated by commas.", "",
        "| name | kind | default | meaning |", "|---|---|---|---|",
    ]
    lines += [f"| `{s.name}` | {s.kind.value} | `{s.default}` | {s.doc}"
              f"{_choices_note(s)} |" for s in SPECS]
    lines += ["", "The ledger's largest accepted amount per item is 10^15 fen (10 trillion CNY),",
              "`qingsuan.money.MAX_AMOUNT_FEN`, a constructor parameter of `Ledger`."]
    return "\n".join(lines) + "\n"
