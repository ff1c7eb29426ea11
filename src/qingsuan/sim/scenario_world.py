"""The world a scenario describes: participants, customers, cards and terminals, each
checked as it is read (docs/SCENARIOS.md).
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import Any

from qingsuan.banks.ranges import CustomerRange
from qingsuan.cards.iso8583 import luhn_ok, mask_pan
from qingsuan.cnaps.participants import ParticipantKind, check_code
from qingsuan.money import format_fen
from qingsuan.sim.scenario_checker import (
    ACCOUNT_RE,
    BANK_CODE_RE,
    ID_RE,
    NAME_RE,
    PI_CODE_RE,
    FileChecker,
)
from qingsuan.sim.scenario_model import (
    MAX_CUSTOMERS,
    MAX_PARTICIPANTS,
    PARTICIPANT_KINDS,
    Card,
    Customer,
    Merchant,
    Participant,
    Terminal,
    hash_pin,
)
from qingsuan.sim.yamlloc import LDict, LList


def listed(top: LDict, section: str, key: str) -> set[str]:
    """The names written in a section, valid or not."""
    items = top.get(section)
    if not isinstance(items, LList):
        return set()
    return {str(item[key]) for item in items if isinstance(item, LDict) and key in item}


def check_calendar_years(ck: FileChecker, top: LDict, name: str, start: int, until: int
                         ) -> None:
    """The business calendar must cover every year the scenario runs through (plus the next
    day, whose HVPS session opens the evening before), unless the stated fallback is on.
    Years after the last published schedule are covered by the projection, up to its end."""
    from qingsuan.calendar import load_calendar
    from qingsuan.clock import US_PER_DAY, to_beijing

    calendar = load_calendar(name)
    first = to_beijing(start).year
    last = to_beijing(until + US_PER_DAY).year
    missing = [y for y in range(first, last + 1) if not calendar.covers(y)]
    if missing:
        covered = f"{calendar.years[0]}-{calendar.years[-1]}" if len(calendar.years) else "none"
        past_projection = bool(calendar.projected_years) and missing[0] > calendar.years[-1]
        remedy = (f"the holiday projection stops at {calendar.years[-1]}; set params:"
                  if past_projection else "add the year's table, or set params:")
        ck.add(top.line_of("run_until"),
               f"calendar {name} has no holiday table for {', '.join(map(str, missing))} "
               f"(covers {covered}); {remedy} "
               f"calendar.missing_year: weekends to treat Monday-Friday as business days")


def parse_participants(ck: FileChecker, top: LDict) -> list[Participant]:
    out: list[Participant] = []
    names: set[str] = set()
    codes: set[str] = set()
    items = ck.seq(top, "participants")
    if not items and "participants" in top:
        ck.add(top.line_of("participants"), "a scenario needs at least one participant")
    if len(items) > MAX_PARTICIPANTS:
        ck.add(top.line_of("participants"), f"more than {MAX_PARTICIPANTS} participants")
        return out
    for raw, line in items:
        doc = ck.mapping(raw, line, "a participant")
        if doc is None or not ck.keys(doc, "participant", ("name", "code"),
                                      ("kind", "settlement_balance", "collateral", "beps_cap",
                                       "ibps_cap", "beps_earmark", "ibps_earmark")):
            continue
        name = ck.text(doc, "name", "participant", NAME_RE,
                       " (a letter, then letters, digits, _ or -; at most 32)")
        kind = ck.text(doc, "kind", "participant", re.compile(r"^(bank|payment_institution)$"),
                       f" (one of {', '.join(PARTICIPANT_KINDS)})", default="bank")
        code = ck.text(doc, "code", "participant")
        if code is not None and kind is not None:
            pattern = PI_CODE_RE if kind == "payment_institution" else BANK_CODE_RE
            if not pattern.match(code):
                ck.add(doc.line_of("code"), f"participant: code {code!r} is not a 12-character "
                       + ("payment institution code (a capital letter, then 11 capitals or "
                          "digits)" if kind == "payment_institution" else
                          "bank code (行号: 3-digit category, 4-digit area, 4-digit branch, "
                          "1 check digit)"))
                code = None
            elif kind == "bank" and (problem := check_code(code, ParticipantKind.DIRECT_BANK)):
                ck.add(doc.line_of("code"), f"participant: {problem}")
                code = None
        balance = ck.amount(doc, "settlement_balance", f"participant {name}")
        collateral = ck.amount(doc, "collateral", f"participant {name}")
        caps = {sysname: ck.amount(doc, f"{sysname}_cap", f"participant {name}", default=None)
                for sysname in ("beps", "ibps") if f"{sysname}_cap" in doc}
        for sysname in ("beps", "ibps"):
            if f"{sysname}_earmark" in doc:
                if f"{sysname}_cap" in doc:
                    ck.add(doc.line_of(f"{sysname}_earmark"),
                           f"participant {name}: give {sysname}_cap (collateral-backed) or "
                           f"{sysname}_earmark (backed by earmarked funds), not both")
                caps[f"{sysname}_earmark"] = ck.amount(doc, f"{sysname}_earmark",
                                                       f"participant {name}", default=None)
        earmarked = sum(v or 0 for k, v in caps.items() if k.endswith("_earmark"))
        if balance is not None and earmarked > balance:
            ck.add(line, f"participant {name}: earmarks total more than its settlement balance "
                         f"({format_fen(earmarked)} > {format_fen(balance)})")
        if name in names:
            ck.add(line, f"participant {name!r} is listed twice")
        if code in codes:
            ck.add(doc.line_of("code"), f"bank code {code} is used twice")
        if None in (name, kind, code, balance, collateral):
            continue
        assert name and kind and code and balance is not None and collateral is not None
        names.add(name)
        codes.add(code)
        out.append(Participant(name, code, kind, balance, collateral, line,
                               {k: v for k, v in caps.items() if v is not None}))
    return out


def parse_customers(ck: FileChecker, top: LDict, banks: set[str]) -> list[Customer]:
    out: list[Customer] = []
    ids: set[str] = set()
    accounts: set[tuple[str, str]] = set()
    items = ck.seq(top, "customers")
    if len(items) > MAX_CUSTOMERS:
        ck.add(top.line_of("customers"), f"more than {MAX_CUSTOMERS} customers")
        return out
    for raw, line in items:
        doc = ck.mapping(raw, line, "a customer")
        if doc is None or not ck.keys(doc, "customer", ("id", "bank", "account"),
                                      ("balance", "name", "merchant", "closed",
                                       "credit_limit")):
            continue
        cid = ck.text(doc, "id", "customer", ID_RE)
        bank = ck.text(doc, "bank", f"customer {cid}")
        if bank is not None and (not isinstance(bank, str) or bank not in banks):
            ck.add(doc.line_of("bank"), f"customer {cid}: no participant named {bank!r}")
            bank = None
        account = ck.text(doc, "account", f"customer {cid}", ACCOUNT_RE, " (6 to 32 digits)")
        balance = ck.amount(doc, "balance", f"customer {cid}")
        display = ck.text(doc, "name", f"customer {cid}", default=cid or "")
        merchant = None
        if "merchant" in doc:
            merchant = _merchant(ck, doc["merchant"], doc.line_of("merchant"), cid)
        if cid in ids:
            ck.add(line, f"customer id {cid!r} is listed twice")
            continue
        if bank is not None and account is not None and (bank, account) in accounts:
            ck.add(doc.line_of("account"), f"account {account} at {bank} is listed twice")
            continue
        if None in (cid, bank, account, balance, display):
            continue
        assert cid and bank and account and balance is not None and display is not None
        ids.add(cid)
        accounts.add((bank, account))
        closed = doc.get("closed", False)
        if not isinstance(closed, bool):
            ck.add(doc.line_of("closed"), f"customer {cid}: closed must be true or false")
            continue
        if closed and balance:
            ck.add(doc.line_of("closed"), f"customer {cid}: a closed account holds no money "
                                          "(balance must be 0.00)")
            continue
        credit_limit = ck.amount(doc, "credit_limit", f"customer {cid}")
        if credit_limit is None:
            continue
        out.append(Customer(cid, bank, account, balance, display, merchant, line, closed,
                            credit_limit))
    return out


def parse_customer_ranges(ck: FileChecker, top: LDict, banks: set[str]
                          ) -> list[CustomerRange]:
    """``customer_ranges:``: generated customers, a rule each (banks/ranges.py), e.g.
    ``{bank: ICBC, count: 1000000, balance: "1000.00", id_prefix: icbc.c, account_prefix:
    "6222", account_digits: 19}``: customers ``icbc.c0`` .. ``icbc.c999999``."""
    out: list[CustomerRange] = []
    for raw, line in ck.seq(top, "customer_ranges"):
        doc = ck.mapping(raw, line, "a customer range")
        if doc is None or not ck.keys(doc, "customer range", (
                "bank", "count", "id_prefix", "account_digits"),
                ("balance", "account_prefix", "name_prefix")):
            continue
        bank = ck.text(doc, "bank", "customer range")
        if bank is not None and bank not in banks:
            ck.add(doc.line_of("bank"), f"customer range: no participant named {bank!r}")
            continue
        balance = ck.amount(doc, "balance", f"customer range at {bank}")
        numbers = {key: doc[key] for key in ("count", "account_digits")}
        if any(isinstance(v, bool) or not isinstance(v, int) for v in numbers.values()):
            ck.add(line, f"customer range at {bank}: count and account_digits must be whole "
                         f"numbers (got {numbers['count']!r}, {numbers['account_digits']!r})")
            continue
        id_prefix = ck.text(doc, "id_prefix", f"customer range at {bank}")
        account_prefix = ck.text(doc, "account_prefix", f"customer range at {bank}",
                                 default="")
        if None in (bank, balance, id_prefix, account_prefix):
            continue
        assert bank is not None and balance is not None
        assert id_prefix is not None and account_prefix is not None
        rule = dict(bank=bank, count=numbers["count"], balance_fen=balance,
                    id_prefix=id_prefix, account_prefix=account_prefix,
                    account_digits=numbers["account_digits"],
                    name_prefix=str(doc.get("name_prefix", f"{bank} customer ")))
        try:
            out.append(CustomerRange(**rule))
        except ValueError as exc:
            ck.add(line, str(exc))
    return out


def _merchant(ck: FileChecker, raw: Any, line: int, cid: str | None) -> Merchant | None:
    doc = ck.mapping(raw, line, f"customer {cid}: merchant")
    if doc is None or not ck.keys(doc, f"customer {cid}: merchant", ("mid", "mcc"), ("mdr",)):
        return None
    mid = ck.text(doc, "mid", "merchant", re.compile(r"^\d{15}$"), " (15 digits)")
    mcc = ck.text(doc, "mcc", "merchant", re.compile(r"^\d{4}$"), " (4 digits)")
    mdr = doc.get("mdr", "0")
    try:
        rate = str(mdr)
        if isinstance(mdr, float) or not re.fullmatch(r"0(\.\d{1,6})?|1(\.0{1,6})?", rate):
            raise ValueError
        whole, _, frac = rate.partition(".")
        mdr_ppm = int(whole) * 1_000_000 + int(frac.ljust(6, "0") or "0")
    except ValueError:
        ck.add(doc.line_of("mdr"), f"merchant: mdr must be a quoted rate between \"0\" and "
                                   f"\"1\" with at most 6 decimals (got {mdr!r})")
        return None
    if mid is None or mcc is None:
        return None
    return Merchant(mid, mcc, mdr_ppm)


def parse_cards(ck: FileChecker, top: LDict, customers: Container[str]) -> list[Card]:
    out: list[Card] = []
    pans: set[str] = set()
    for raw, line in ck.seq(top, "cards"):
        doc = ck.mapping(raw, line, "a card")
        if doc is None or not ck.keys(doc, "card", ("pan", "account"), ("kind", "pin")):
            continue
        pan = ck.text(doc, "pan", "card", re.compile(r"^\d{13,19}$"), " (13 to 19 digits)")
        if pan is not None and not luhn_ok(pan):
            ck.add(doc.line_of("pan"), f"card {mask_pan(pan)}: check digit wrong (Luhn)")
            pan = None
        shown = mask_pan(pan) if pan else "?"
        account = ck.text(doc, "account", f"card {shown}")
        if account is not None and (not isinstance(account, str) or account not in customers):
            ck.add(doc.line_of("account"), f"card {shown}: no customer {account!r}")
            account = None
        kind = ck.text(doc, "kind", f"card {shown}", re.compile(r"^(debit|credit)$"),
                       " (debit or credit)", default="debit")
        pin_hash = None
        if "pin" in doc:
            pin = doc["pin"]
            if not isinstance(pin, str) or not re.fullmatch(r"\d{4,12}", pin):
                # never echo the PIN itself
                ck.add(doc.line_of("pin"), f"card {shown}: pin must be a quoted string of 4 "
                                           "to 12 digits")
            elif pan is not None:
                pin_hash = hash_pin(pan, pin)
        if pan in pans:
            ck.add(doc.line_of("pan"), f"card {shown} is listed twice")
            continue
        if pan is None or account is None or kind is None:
            continue
        pans.add(pan)
        out.append(Card(pan, account, kind, pin_hash, line))
    return out


def parse_terminals(ck: FileChecker, top: LDict, banks: set[str],
                    customers: dict[str, Customer]) -> list[Terminal]:
    out: list[Terminal] = []
    ids: set[str] = set()
    for raw, line in ck.seq(top, "terminals"):
        doc = ck.mapping(raw, line, "a terminal")
        if doc is None or not ck.keys(doc, "terminal", ("id", "kind", "bank"),
                                      ("cash", "merchant")):
            continue
        tid = ck.text(doc, "id", "terminal", re.compile(r"^[A-Za-z0-9]{8}$"),
                      " (8 letters or digits, ISO 8583 field 41)")
        kind = ck.text(doc, "kind", f"terminal {tid}", re.compile(r"^(atm|pos)$"),
                       " (atm or pos)")
        bank = ck.text(doc, "bank", f"terminal {tid}")
        if bank is not None and (not isinstance(bank, str) or bank not in banks):
            ck.add(doc.line_of("bank"), f"terminal {tid}: no participant named {bank!r}")
            bank = None
        cash = ck.amount(doc, "cash", f"terminal {tid}")
        merchant = ck.text(doc, "merchant", f"terminal {tid}")
        if merchant is not None:
            cust = customers.get(merchant)
            if cust is None or cust.merchant is None:
                ck.add(doc.line_of("merchant"), f"terminal {tid}: {merchant!r} is not a "
                                                "customer with a merchant block")
                merchant = None
        if kind == "pos" and "merchant" not in doc:
            ck.add(line, f"terminal {tid}: a POS terminal needs a merchant")
        if kind == "pos" and "cash" in doc:
            ck.add(doc.line_of("cash"), f"terminal {tid}: only an ATM holds cash")
        if tid in ids:
            ck.add(line, f"terminal {tid} is listed twice")
            continue
        if tid is None or kind is None or bank is None or cash is None:
            continue
        ids.add(tid)
        out.append(Terminal(tid, kind, bank, cash, merchant, line))
    return out


