"""The scenario vocabulary of the app (docs/SCENARIOS.md, docs/WALLETS.md): the
``wallets:`` block (institutions, users, voucher campaigns) and the app's events, checked
when the file is loaded with errors naming the field and its line. The loader
(sim/scenario.py) hands this module its checker; nothing here reads the simulator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from qingsuan.money import format_fen
from qingsuan.wallets.events import WALLET_EVENTS
from qingsuan.wallets.system import APP_TERMINAL

_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")
_PHONE_RE: Final = re.compile(r"^1\d{10}$")
_PAN_RE: Final = re.compile(r"^\d{13,19}$")
_MCC_RE: Final = re.compile(r"^\d{4}$")

#: each app event's (required fields, optional fields), beside ``at`` and ``do``
EVENT_FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "bind_card": (("id", "user", "card", "name"), ()),
    "unbind_card": (("id", "user", "card"), ()),
    "card_balances": (("id", "user"), ()),
    "payment_code": (("id", "user", "card"), ()),
    "qr_pay": (("id", "terminal", "amount"), ("user", "card", "code", "voucher", "pin")),
    "wallet_top_up": (("id", "user", "card", "amount"), ()),
    "wallet_withdrawal": (("id", "user", "card", "amount"), ()),
    "wallet_transfer": (("id", "from", "to", "amount"), ()),
    "claim_voucher": (("id", "user", "campaign"), ()),
    "credit_statement": (("id", "card"), ()),
    "card_repayment": (("id", "user", "from_card", "card", "amount"), ()),
    "wallet_pay": (("id", "user", "terminal", "amount"), ()),
    "close_campaign": (("id", "campaign"), ()),
    "transit_ride": (("id", "user", "card", "terminal", "amount"), ()),
    "transit_clearing": (("id",), ()),
}
assert set(EVENT_FIELDS) == set(WALLET_EVENTS)


class Doc(Protocol):
    """A mapping read from the file that knows the line of each key."""

    line: int

    def line_of(self, key: str) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def __getitem__(self, key: str) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...


class Checker(Protocol):
    """The loader's problem collector (sim/scenario_checker.py)."""

    def add(self, line: int, message: str) -> None: ...
    def mapping(self, value: Any, line: int, what: str) -> Any: ...
    def seq(self, doc: Any, key: str) -> list[tuple[Any, int]]: ...
    def keys(self, doc: Any, what: str, required: Any, optional: Any) -> bool: ...
    def text(self, doc: Any, key: str, what: str, pattern: re.Pattern[str] | None = None,
             hint: str = "", default: str | None = None) -> str | None: ...
    def amount(self, doc: Any, key: str, what: str, *, allow_zero: bool = True,
               default: int | None = 0) -> int | None: ...
    def time(self, doc: Any, key: str, what: str) -> int | None: ...


class CustomerLike(Protocol):
    """A customer as the loader read it (sim/scenario_model.py Customer)."""

    @property
    def bank(self) -> str: ...
    @property
    def balance_fen(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def merchant(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class WalletsSpec:
    """The ``wallets:`` block, checked: what ``wallets.setup`` is built from."""

    #: payment institution -> its collection account (a customer id at it)
    institutions: dict[str, str]
    #: phone -> (name, institution)
    users: dict[str, tuple[str, str]]
    #: campaign id -> its fields as wallets/state.py Campaign takes them
    campaigns: dict[str, dict[str, Any]]
    #: the POS terminals a QR payment may be made at
    pos_terminals: frozenset[str] = field(default_factory=frozenset)

    def setup(self, customers: dict[str, Any]) -> dict[str, Any]:
        """The body of ``wallets.setup`` (part of ``world.build``)."""
        return {"institutions": sorted(self.institutions.items()),
                "users": [[phone, name, inst] for phone, (name, inst) in self.users.items()],
                "campaigns": list(self.campaigns.values()),
                "merchants": {cid: c.merchant.mcc for cid, c in sorted(customers.items())
                              if c.merchant is not None}}


def parse_block(ck: Checker, top: Doc, participants: dict[str, str],
                customers: dict[str, CustomerLike], terminals: dict[str, str]
                ) -> WalletsSpec | None:
    """The ``wallets:`` block, or None when the file has none. ``participants``: name ->
    kind; ``terminals``: id -> kind."""
    if "wallets" not in top:
        return None
    if APP_TERMINAL in terminals:
        ck.add(top.line_of("wallets"), f"terminal id {APP_TERMINAL} is the app's own at the "
                                       "switch: give the scenario's terminal another id")
    doc = ck.mapping(top["wallets"], top.line_of("wallets"), "wallets")
    if doc is None or not ck.keys(doc, "wallets", ("institutions", "users"), ("campaigns",)):
        return None
    institutions = _institutions(ck, doc, participants, customers)
    # a user of a listed institution that has a problem of its own is not reported again
    listed = doc.get("institutions")
    written = {str(item.get("participant")) for item in listed if isinstance(item, dict)
               } if isinstance(listed, list) else set()
    users = _users(ck, doc, institutions, written)
    campaigns = _campaigns(ck, doc, customers)
    return WalletsSpec(institutions, users, campaigns,
                       frozenset(t for t, kind in terminals.items() if kind == "pos"))


def _institutions(ck: Checker, doc: Doc, participants: dict[str, str],
                  customers: dict[str, CustomerLike]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw, line in ck.seq(doc, "institutions"):
        item = ck.mapping(raw, line, "a wallets institution")
        what = "wallets institution"
        if item is None or not ck.keys(item, what, ("participant", "collection_account"), ()):
            continue
        name = ck.text(item, "participant", what)
        pool = ck.text(item, "collection_account", what)
        if name is not None and participants.get(name) != "payment_institution":
            ck.add(item.line_of("participant"), f"{what}: {name!r} is not a participant of "
                                                "kind payment_institution")
            name = None
        if pool is not None and (pool not in customers or
                                 (name is not None and customers[pool].bank != name)):
            ck.add(item.line_of("collection_account"), f"{what} {name}: collection_account "
                   f"{pool!r} is not a customer at {name}")
            pool = None
        if name in out:
            ck.add(line, f"{what} {name} is listed twice")
            continue
        if name is not None and pool is not None:
            out[name] = pool
    return out


def _users(ck: Checker, doc: Doc, institutions: dict[str, str], written: set[str]
           ) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for raw, line in ck.seq(doc, "users"):
        item = ck.mapping(raw, line, "a wallets user")
        if item is None or not ck.keys(item, "wallets user", ("phone", "name", "institution"),
                                       ()):
            continue
        phone = ck.text(item, "phone", "wallets user", _PHONE_RE,
                        " (a quoted mobile number: 11 digits starting with 1)")
        what = f"wallets user {phone}"
        name = ck.text(item, "name", what)
        inst = ck.text(item, "institution", what)
        if inst is not None and inst not in institutions:
            if inst not in written:
                ck.add(item.line_of("institution"), f"{what}: institution {inst!r} is not "
                                                    "listed under wallets: institutions")
            inst = None
        if phone in out:
            ck.add(item.line_of("phone"), f"wallets user {phone} is listed twice")
            continue
        if phone is not None and name is not None and inst is not None:
            out[phone] = (name, inst)
    return out


def _campaigns(ck: Checker, doc: Doc, customers: dict[str, CustomerLike]
               ) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    pledged: dict[str, int] = {}
    keys = ("id", "sponsor", "budget", "discount", "threshold", "claim_from", "claim_until",
            "valid_from", "valid_until")
    for raw, line in ck.seq(doc, "campaigns"):
        item = ck.mapping(raw, line, "a voucher campaign")
        if item is None or not ck.keys(item, "campaign", keys,
                                       ("per_user", "merchants", "mccs")):
            continue
        cid = ck.text(item, "id", "campaign", _ID_RE)
        what = f"campaign {cid}"
        sponsor = ck.text(item, "sponsor", what)
        if sponsor is not None and (sponsor not in customers or customers[sponsor].closed):
            ck.add(item.line_of("sponsor"), f"{what}: sponsor {sponsor!r} is not a listed "
                                            "open customer account")
            sponsor = None
        budget = ck.amount(item, "budget", what, allow_zero=False, default=None)
        discount = ck.amount(item, "discount", what, allow_zero=False, default=None)
        threshold = ck.amount(item, "threshold", what, allow_zero=False, default=None)
        if discount is not None and threshold is not None and discount >= threshold:
            ck.add(item.line_of("discount"), f"{what}: discount {format_fen(discount)} must be "
                   f"below threshold {format_fen(threshold)} (the card pays the rest)")
            discount = None
        if discount is not None and budget is not None and discount > budget:
            ck.add(item.line_of("budget"), f"{what}: budget {format_fen(budget)} does not "
                                           "cover one discount")
            budget = None
        per_user = item.get("per_user", 1)
        if isinstance(per_user, bool) or not isinstance(per_user, int) or per_user < 1:
            ck.add(item.line_of("per_user"), f"{what}: per_user must be a whole number, at "
                                             f"least 1 (got {per_user!r})")
            per_user = None
        times = {k: ck.time(item, k, what) for k in keys[5:]}
        for start, end in (("claim_from", "claim_until"), ("valid_from", "valid_until")):
            a, b = times[start], times[end]
            if a is not None and b is not None and b < a:
                ck.add(item.line_of(end), f"{what}: {end} is before {start}")
                times[end] = None
        merchants = _listed_ids(ck, item, "merchants", what, lambda v: v in customers and
                                customers[v].merchant is not None,
                                "is not a customer with a merchant block")
        mccs = _listed_ids(ck, item, "mccs", what, lambda v: bool(_MCC_RE.match(v)),
                           "is not a 4-digit MCC")
        if cid in out:
            ck.add(item.line_of("id"), f"campaign {cid} is listed twice")
            continue
        if None in (cid, sponsor, budget, discount, threshold, per_user, merchants, mccs) or \
                None in times.values():
            continue
        assert sponsor is not None and budget is not None and cid is not None
        pledged[sponsor] = pledged.get(sponsor, 0) + budget
        if pledged[sponsor] > customers[sponsor].balance_fen:
            ck.add(item.line_of("budget"), f"{what}: sponsor {sponsor} holds "
                   f"{format_fen(customers[sponsor].balance_fen)}, less than its campaigns' "
                   f"budgets ({format_fen(pledged[sponsor])})")
            continue
        out[cid] = {"id": cid, "sponsor": sponsor, "sponsor_bank": customers[sponsor].bank,
                    "budget_fen": budget, "threshold_fen": threshold, "discount_fen": discount,
                    "per_user": per_user, "merchants": merchants, "mccs": mccs,
                    "claim_from_us": times["claim_from"],
                    "claim_until_us": times["claim_until"],
                    "valid_from_us": times["valid_from"],
                    "valid_until_us": times["valid_until"]}
    return out


def _listed_ids(ck: Checker, item: Doc, key: str, what: str, ok: Any, problem: str
                ) -> list[str] | None:
    values = []
    good = True
    for value, line in ck.seq(item, key):
        if not isinstance(value, str | int) or isinstance(value, bool) or not ok(str(value)):
            ck.add(line, f"{what}: {key}: {value!r} {problem}")
            good = False
        else:
            values.append(str(value))
    return values if good else None


# ---------------------------------------------------------------------- events

def check_event(ck: Checker, doc: Doc, fields: dict[str, Any], spec: WalletsSpec | None,
                known: dict[str, str]) -> bool:
    """Check one app event (its keys are checked already) and fill its fields; False when
    it has a problem (reported with its line)."""
    do = str(doc["do"])
    eid = ck.text(doc, "id", f"event {do}", _ID_RE)
    what = f"{do} {eid}"
    if spec is None:
        ck.add(doc.line_of("do"), f"event {what}: the scenario has no wallets: block (users "
                                  "and their institutions)")
        return False
    ok = eid is not None
    fields["id"] = eid
    for key in ("user", "from", "to"):
        if key in doc:
            phone = str(doc[key])
            if phone not in spec.users:
                ck.add(doc.line_of(key), f"{what}: {key} {doc[key]!r} is not a user listed "
                                         "under wallets: users")
                ok = False
            fields[key] = phone
    for key in ("card", "from_card"):
        if key in doc:
            fields[key] = ck.text(doc, key, what, _PAN_RE, " (a quoted card number of 13 "
                                                           "to 19 digits)")
            ok = ok and fields[key] is not None
    if "amount" in doc:
        fields["amount_fen"] = ck.amount(doc, "amount", what, allow_zero=False, default=None)
        ok = ok and fields["amount_fen"] is not None
    if "name" in doc:
        fields["name"] = ck.text(doc, "name", what)
        ok = ok and fields["name"] is not None
    if do == "wallet_transfer" and fields.get("from") == fields.get("to"):
        ck.add(doc.line_of("to"), f"{what}: from and to are the same user")
        ok = False
    if "campaign" in doc or "voucher" in doc:
        key = "campaign" if "campaign" in doc else "voucher"
        if str(doc[key]) not in spec.campaigns:
            ck.add(doc.line_of(key), f"{what}: {key} {doc[key]!r} is not a campaign listed "
                                     "under wallets: campaigns")
            ok = False
        fields[key] = str(doc[key])
    if do == "qr_pay":
        ok = _check_qr(ck, doc, fields, spec, known, what) and ok
    elif "terminal" in doc:  # wallet_pay (the merchant's code), transit_ride (the gate)
        fields["terminal"] = str(doc["terminal"])
        if fields["terminal"] not in spec.pos_terminals:
            ck.add(doc.line_of("terminal"), f"{what}: terminal {doc['terminal']!r} is not a "
                                            "listed POS terminal of a merchant")
            ok = False
    return ok


def _check_qr(ck: Checker, doc: Doc, fields: dict[str, Any], spec: WalletsSpec,
              known: dict[str, str], what: str) -> bool:
    ok = True
    terminal = str(doc["terminal"])
    if terminal not in spec.pos_terminals:
        ck.add(doc.line_of("terminal"), f"{what}: terminal {terminal!r} is not a listed POS "
                                        "terminal (the merchant's code names its terminal)")
        ok = False
    fields["terminal"] = terminal
    by_code = "code" in doc
    if by_code == ("user" in doc or "card" in doc) or (not by_code and not (
            "user" in doc and "card" in doc)):
        ck.add(doc.line, f"{what}: give code (the user's payment code, scanned by the "
                         "merchant) or user and card (the user scans the merchant's code)")
        return False
    if by_code:
        code = str(doc["code"])
        if known.get(code) != "payment_code":
            ck.add(doc.line_of("code"), f"{what}: code {code!r} is not the id of an earlier "
                                        "payment_code event")
            ok = False
        fields["code"] = code
        if "pin" in doc:
            ck.add(doc.line_of("pin"), f"{what}: a pin goes with user and card, not a code")
            ok = False
    if "pin" in doc:
        pin = doc["pin"]
        if not isinstance(pin, str) or not re.fullmatch(r"\d{4,12}", pin):
            ck.add(doc.line_of("pin"), f"{what}: pin must be a quoted string of 4 to 12 "
                                       "digits")  # never echo the PIN itself
            ok = False
        fields["pin"] = pin
    return ok
