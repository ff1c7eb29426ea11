"""The table of event kinds (docs/SCENARIOS.md) and the check of each event's fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from qingsuan.cards.disputes import ChargebackReason, DisputeKind
from qingsuan.params import ParamError, parse_value
from qingsuan.sim.scenario_checker import ACCOUNT_RE, ID_RE, FileChecker
from qingsuan.sim.scenario_model import (
    MAX_EVENTS,
    Customer,
    CustomerTable,
    Event,
    KnownCustomers,
    Participant,
)
from qingsuan.sim.scenario_world import listed
from qingsuan.sim.yamlloc import LDict
from qingsuan.vocabulary import BEPS_KINDS, CHANNELS, HOST_MODES, PRIORITY_LABELS
from qingsuan.wallets import terms as wallet_terms
from qingsuan.wallets.events import WALLET_EVENTS


def parse_events(ck: FileChecker, top: LDict, start: int | None, until: int | None,
                 participants: list[Participant], customers: list[Customer],
                 wallets: wallet_terms.WalletsSpec | None = None,
                 table: CustomerTable | None = None) -> list[Event]:
    """The ``events:`` list, each checked against its kind's row of EVENT_TABLE."""
    out: list[Event] = []
    ids: set[str] = set()
    known: dict[str, str] = {}  # event id -> its kind, for cancel / reprioritise targets
    last_at: int | None = None
    # None: listed, but with a problem of its own (already reported)
    cust: dict[str, Customer | None] = dict.fromkeys(listed(top, "customers", "id"))
    cust.update((c.id, c) for c in customers)
    if table is not None and table.ranges:  # and the generated customers, by their rules
        cust = KnownCustomers(cust, table)
    items = ck.seq(top, "events")
    if len(items) > MAX_EVENTS:
        ck.add(top.line_of("events"), f"more than {MAX_EVENTS} events")
        return out
    for order, (raw, line) in enumerate(items):
        doc = ck.mapping(raw, line, "an event")
        if doc is None:
            continue
        do = doc.get("do")
        if not isinstance(do, str) or do not in EVENT_KINDS:
            ck.add(doc.line_of("do") if "do" in doc else line,
                   f"event: do must be one of {', '.join(EVENT_KINDS)} (got {do!r})")
            continue
        if do not in RUNNABLE_EVENTS:
            ck.add(doc.line_of("do"), f"event {do!r} is not available in this release "
                                      f"({EVENT_KINDS[do]})")
            continue
        kind = EVENT_TABLE[do]
        required, optional = kind.required, kind.optional
        if not ck.keys(doc, f"event {do}", ("at", "do", *required), optional):
            continue
        at = ck.time(doc, "at", f"event {do}")
        if at is None:
            continue
        if start is not None and at < start:
            ck.add(doc.line_of("at"), f"event {do}: at is before the scenario's start")
        if last_at is not None and at < last_at:
            ck.add(doc.line_of("at"), f"event {do}: events must be in time order (this one is "
                                      "earlier than the one before)")
        last_at = at
        fields: dict[str, Any] = {}
        fields["known"] = known
        if kind.check is None:
            ok = wallet_terms.check_event(ck, doc, fields, wallets, known)
        else:
            ok = kind.check(ck, doc, fields, cust, participants)
        del fields["known"]
        if not ok:
            continue
        eid = fields.get("id")
        if eid is not None:
            if eid in ids:
                ck.add(doc.line_of("id"), f"event id {eid!r} is used twice")
                continue
            ids.add(eid)
            known[eid] = do
        out.append(Event(at, do, order, line, fields))
    del until  # events after run_until are valid; the runner does not run them
    return out


def _check_transfer(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                    cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event transfer", ID_RE)
    what = f"transfer {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    channel = ck.text(doc, "channel", what, re.compile(f"^({'|'.join(CHANNELS)})$"),
                      f" ({' or '.join(CHANNELS)})", default="counter")
    urgent = doc.get("urgent", False)
    if not isinstance(urgent, bool):
        ck.add(doc.line_of("urgent"), f"{what}: urgent must be true or false")
        return False
    payer_ref = doc["from"]
    if not isinstance(payer_ref, str) or payer_ref not in cust:
        ck.add(doc.line_of("from"), f"{what}: from {payer_ref!r} is not a listed customer")
        return False
    payer = cust[payer_ref]
    if payer is None:
        return False
    to = doc["to"]
    payee: Customer | None = None
    to_account: list[str] | None = None
    if isinstance(to, dict):  # an account that is not listed: it may not exist (a return)
        bank, account, name = to.get("bank"), to.get("account"), to.get("name", "")
        if set(to) - {"bank", "account", "name"} or \
                not isinstance(bank, str) or bank not in {p.name for p in participants} or \
                not isinstance(account, str) or not ACCOUNT_RE.fullmatch(account) or \
                not isinstance(name, str):
            ck.add(doc.line_of("to"), f"{what}: to must be a customer id or "
                                      "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return False
        to_account = [bank, account, name]
    elif not isinstance(to, str) or to not in cust:
        ck.add(doc.line_of("to"), f"{what}: to {to!r} is not a listed customer (an account "
                                  "outside the list: {bank: ..., account: ..., name: ...})")
        return False
    else:
        payee = cust[to]
        if payee is None:
            return False
        if payee.id == payer.id:
            ck.add(doc.line_of("to"), f"{what}: from and to are the same account")
            return False
    if eid is None or amount is None or channel is None:
        return False
    fields.update(id=eid, amount_fen=amount, channel=channel, urgent=urgent,
                  from_customer=payer.id, to_customer=payee.id if payee else None,
                  to_account=to_account)
    return True


def _check_set_param(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                     cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    name = doc["name"]
    try:
        if not isinstance(name, str):
            raise ParamError(f"set_param: name must be a parameter name (got {name!r})")
        parse_value(name, doc["value"])
    except ParamError as exc:
        ck.add(doc.line_of("value" if isinstance(name, str) else "name"), str(exc))
        return False
    fields.update(name=name, value=doc["value"])
    return True


_PRIORITIES: Final = PRIORITY_LABELS


def _party(ck: FileChecker, doc: LDict, key: str, what: str, cust: dict[str, Customer | None],
           pnames: set[str]) -> tuple[str, str] | None:
    """``from`` / ``to`` of an interbank payment: ("customer", id) or ("participant", name)."""
    ref = doc[key]
    if isinstance(ref, str) and ref in cust:
        return ("customer", ref) if cust[ref] is not None else None
    if isinstance(ref, str) and ref in pnames:
        return ("participant", ref)
    if isinstance(ref, dict) and key == "to":
        bank, account, name = ref.get("bank"), ref.get("account"), ref.get("name", "")
        if set(ref) - {"bank", "account", "name"} or not isinstance(bank, str) or \
                bank not in pnames or \
                not isinstance(account, str) or not re.fullmatch(r"\d{6,32}", account) or \
                not isinstance(name, str):
            ck.add(doc.line_of(key), f"{what}: to must be a customer id, a participant or "
                                     "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return None
        return ("outside", f"{bank}|{account}|{name}")
    ck.add(doc.line_of(key), f"{what}: {key} {ref!r} is neither a listed customer nor a "
                             "participant")
    return None


def _check_hvps_payment(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                        cust: dict[str, Customer | None], participants: list[Participant]
                        ) -> bool:
    eid = ck.text(doc, "id", "event hvps_payment", ID_RE)
    what = f"hvps_payment {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    priority = ck.text(doc, "priority", what, re.compile(f"^({'|'.join(_PRIORITIES)})$"),
                       f" (one of {', '.join(_PRIORITIES)})", default="normal")
    pnames = {p.name for p in participants}
    payer = _party(ck, doc, "from", what, cust, pnames)
    payee = _party(ck, doc, "to", what, cust, pnames)
    if None in (eid, amount, priority, payer, payee):
        return False
    assert payer is not None and payee is not None
    banks = []
    for party in (payer, payee):
        c = cust.get(party[1]) if party[0] == "customer" else None
        banks.append(c.bank if c is not None else party[1].split("|")[0])
    if payee[0] == "outside":
        payee = ("customer", payee[1]) if payer[0] == "customer" else payee
    if payer[0] != payee[0]:
        ck.add(doc.line_of("to"), f"{what}: a customer payment (hvps.111) goes from a customer "
                                  "to a customer, an institution payment (hvps.112) from a "
                                  "participant to a participant")
        return False
    if banks[0] == banks[1]:
        ck.add(doc.line_of("to"), f"{what}: payer and payee are both at {banks[0]}: that is an "
                                  "intrabank transfer (use do: transfer)")
        return False
    fields.update(id=eid, amount_fen=amount, priority=priority, payer=payer, payee=payee,
                  sender=banks[0], receiver=banks[1])
    return True


def _check_target(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    # a cancel names any payment that may still wait (HVPS queue, BEPS queue behind the
    # cap, a transfer held or routed to either); a reprioritise an HVPS payment only
    kinds = ("hvps_payment",) if doc["do"] == "reprioritise" else (
        "hvps_payment", "beps_payment", "transfer")
    if not isinstance(target, str) or known.get(target) not in kinds:
        ck.add(doc.line_of("target"), f"target {target!r} is not the id of an earlier "
                                      f"{' or '.join(kinds)} event")
        return False
    fields["target"] = target
    if "priority" in doc:
        priority = ck.text(doc, "priority", f"reprioritise {target}",
                           re.compile(f"^({'|'.join(_PRIORITIES)})$"),
                           f" (one of {', '.join(_PRIORITIES)})")
        if priority is None:
            return False
        fields["priority"] = priority
    return True


def _check_pledge(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    name = doc["participant"]
    if not isinstance(name, str) or name not in {p.name for p in participants}:
        ck.add(doc.line_of("participant"), f"no participant named {name!r}")
        return False
    value = ck.amount(doc, "value", f"pledge by {name}", allow_zero=False, default=None)
    haircut = None
    if "haircut" in doc:
        try:
            haircut = parse_value("hvps.pledge_haircut", doc["haircut"])
        except ParamError as exc:
            ck.add(doc.line_of("haircut"), str(exc).replace("parameter hvps.pledge_haircut",
                                                             "haircut"))
            return False
    if value is None:
        return False
    fields.update(participant=name, value_fen=value, haircut_ppm=haircut)
    return True


_BEPS_KINDS: Final = BEPS_KINDS


def _net_party(ck: FileChecker, doc: LDict, key: str, what: str,
               cust: dict[str, Customer | None], pnames: set[str]
               ) -> tuple[str, str, str, str] | None:
    """A BEPS/IBPS payer or payee: (kind, bank, account number, customer id or "")."""
    ref = doc[key]
    if isinstance(ref, str) and ref in cust:
        c = cust[ref]
        return None if c is None else ("customer", c.bank, c.account, c.id)
    if isinstance(ref, dict):
        bank, account = ref.get("bank"), ref.get("account")
        unknown = set(ref) - {"bank", "account", "name"}
        if unknown or not isinstance(bank, str) or bank not in pnames or \
                not isinstance(account, str) or not re.fullmatch(r"\d{6,32}", account):
            ck.add(doc.line_of(key), f"{what}: {key} must be a customer id or "
                                     "{bank: PARTICIPANT, account: \"DIGITS\", name: ...}")
            return None
        return ("outside", bank, account, "")
    ck.add(doc.line_of(key), f"{what}: {key} {ref!r} is not a listed customer")
    return None


def _check_net_payment(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                       cust: dict[str, Customer | None], participants: list[Participant]
                       ) -> bool:
    system = "BEPS" if doc["do"] == "beps_payment" else "IBPS"
    eid = ck.text(doc, "id", f"event {doc['do']}", ID_RE)
    what = f"{doc['do']} {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    kind = "credit"
    if system == "BEPS":
        kind = ck.text(doc, "kind", what, re.compile(f"^({'|'.join(_BEPS_KINDS)})$"),
                       f" (one of {', '.join(_BEPS_KINDS)})", default="ordinary_credit") or ""
    pnames = {p.name for p in participants}
    payer = _net_party(ck, doc, "from", what, cust, pnames)
    payee = _net_party(ck, doc, "to", what, cust, pnames)
    if None in (eid, amount, payer, payee) or not kind:
        return False
    assert payer is not None and payee is not None
    if payer[0] != "customer":
        ck.add(doc.line_of("from"), f"{what}: the payer must be a listed customer (its bank "
                                    "debits it)")
        return False
    if payer[1] == payee[1]:
        ck.add(doc.line_of("to"), f"{what}: payer and payee are both at {payer[1]}: that is an "
                                  "intrabank transfer (use do: transfer)")
        return False
    if kind.endswith("_debit") and payee[0] != "customer":
        ck.add(doc.line_of("to"), f"{what}: a debit is initiated by the payee: it must be a "
                                  "listed customer")
        return False
    to = doc["to"]
    listed = cust.get(to) if isinstance(to, str) else None
    payee_name = to.get("name") if isinstance(to, dict) else (
        listed.name if listed is not None else None)
    fields.update(id=eid, system=system, kind=kind, amount_fen=amount, payer=payer, payee=payee,
                  payee_name=payee_name)
    return True


def _check_agreement(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                     cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event debit_agreement", ID_RE)
    ends = []
    for key in ("payer", "payee"):
        ref = doc[key]
        c = cust.get(ref) if isinstance(ref, str) else None
        if c is None:
            if not (isinstance(ref, str) and ref in cust):
                ck.add(doc.line_of(key), f"debit_agreement {eid}: {key} {ref!r} is not a "
                                         "listed customer")
            return False
        ends.append(c)
    if eid is None:
        return False
    fields.update(id=eid, payer=ends[0].account, payee=ends[1].account)
    return True


def _check_inquiry(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                   cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    eid = ck.text(doc, "id", "event ibps_account_inquiry", ID_RE)
    pnames = {p.name for p in participants}
    asker, bank = doc["from"], doc["bank"]
    ok = True
    for key, value in (("from", asker), ("bank", bank)):
        if not isinstance(value, str) or value not in pnames:
            ck.add(doc.line_of(key), f"ibps_account_inquiry {eid}: no participant named "
                                     f"{value!r}")
            ok = False
    account = ck.text(doc, "account", f"ibps_account_inquiry {eid}", ACCOUNT_RE,
                      " (6 to 32 digits)")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        ck.add(doc.line_of("name"), f"ibps_account_inquiry {eid}: name must be text")
        ok = False
    if not ok or eid is None or account is None:
        return False
    fields.update(id=eid, asker=asker, bank=bank, account=account, name=name)
    return True


def _check_card_event(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                      cust: dict[str, Customer | None], participants: list[Participant]
                      ) -> bool:
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", ID_RE)
    what = f"{do} {eid}"
    pan = doc["card"]
    if not isinstance(pan, str) or not re.fullmatch(r"\d{12,19}", pan):
        ck.add(doc.line_of("card"), f"{what}: card must be a quoted card number")
        return False
    terminal = doc["terminal"]
    if not isinstance(terminal, str):
        ck.add(doc.line_of("terminal"), f"{what}: terminal must be a terminal id")
        return False
    amount = 0
    if "amount" in doc:
        parsed = ck.amount(doc, "amount", what, allow_zero=False, default=None)
        if parsed is None:
            return False
        amount = parsed
    pin = doc.get("pin")
    if pin is not None and (not isinstance(pin, str) or not re.fullmatch(r"\d{4,12}", pin)):
        ck.add(doc.line_of("pin"), f"{what}: pin must be a quoted string of 4 to 12 digits")
        return False
    if do.startswith("atm") and pin is None:
        ck.add(doc.line, f"{what}: an ATM needs the PIN")
        return False
    if eid is None:
        return False
    fields.update(id=eid, card=pan, terminal=terminal, amount_fen=amount, pin=pin)
    return True


def _check_reversal(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                    cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", ID_RE)
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    allowed = ("pos_purchase", "preauth_completion") if do == "pos_void" else (
        "atm_withdrawal", "pos_purchase", "preauth", "preauth_completion")
    if not isinstance(target, str) or known.get(target) not in allowed:
        ck.add(doc.line_of("target"), f"{do} {eid}: target {target!r} is not the id of an "
                                      f"earlier {' or '.join(allowed)}")
        return False
    if eid is None:
        return False
    fields.update(id=eid, target=target)
    return True


def _check_refund(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                  cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """pos_refund: ``target`` an earlier pos_purchase, ``amount`` positive (the switch checks
    it against what is left to refund, 13)."""
    eid = ck.text(doc, "id", "event pos_refund", ID_RE)
    what = f"pos_refund {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) not in ("pos_purchase",
                                                                "preauth_completion"):
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier pos_purchase or preauth_completion")
        return False
    if eid is None or amount is None:
        return False
    fields.update(id=eid, target=target, amount_fen=amount)
    return True


def _check_preauth_followup(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                            cust: dict[str, Customer | None], participants: list[Participant]
                            ) -> bool:
    """preauth_cancel (``id``, ``target``) and preauth_completion (``id``, ``target``,
    ``amount`` positive): ``target`` an earlier preauth. Whether the pre-authorisation is
    still open and the amount within the tolerance is the switch's decision at run time
    (12, 13), not a validation error."""
    do = doc["do"]
    eid = ck.text(doc, "id", f"event {do}", ID_RE)
    what = f"{do} {eid}"
    amount = None
    if do == "preauth_completion":
        amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
        if amount is None:
            return False
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) != "preauth":
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier preauth")
        return False
    if eid is None:
        return False
    fields.update(id=eid, target=target)
    if amount is not None:
        fields["amount_fen"] = amount
    return True


FAULT_HOSTS: Final = ("issuer",)
FAULT_MODES: Final = HOST_MODES


def _check_fault(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                 cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """fault: a participant's issuer host goes down, slow or up (docs/CARDS.md)."""
    name = doc["participant"]
    ok = True
    if not isinstance(name, str) or name not in {p.name for p in participants}:
        ck.add(doc.line_of("participant"), f"fault: no participant named {name!r}")
        ok = False
    host = doc.get("host", "issuer")
    if host not in FAULT_HOSTS:
        ck.add(doc.line_of("host"), f"fault: host must be {' or '.join(FAULT_HOSTS)} (the card "
                                    f"issuer's host is the one modelled), got {host!r}")
        ok = False
    mode = doc["mode"]
    if mode not in FAULT_MODES:
        ck.add(doc.line_of("mode"), f"fault: mode must be one of {', '.join(FAULT_MODES)} "
                                    f"(got {mode!r})")
        ok = False
    if ok:
        fields.update(participant=name, host=host, mode=mode)
    return ok


#: the dispute steps (差错), defined once by the switch (credit_adjustment first)
DISPUTE_KINDS: Final = tuple(k.value for k in DisputeKind)
CHARGEBACK_REASONS: Final = tuple(r.value for r in ChargebackReason)


def _check_dispute(ck: FileChecker, doc: LDict, fields: dict[str, Any],
                   cust: dict[str, Customer | None], participants: list[Participant]) -> bool:
    """dispute: ``target`` an earlier card purchase or withdrawal, ``kind`` a dispute step,
    ``amount`` positive. Whether the step is allowed (card kind, order, deadline, amount)
    is the switch's decision at run time: a refused step is reported, not an invalid file."""
    eid = ck.text(doc, "id", "event dispute", ID_RE)
    what = f"dispute {eid}"
    amount = ck.amount(doc, "amount", what, allow_zero=False, default=None)
    kind = doc["kind"]
    ok = True
    if kind not in DISPUTE_KINDS:
        ck.add(doc.line_of("kind"), f"{what}: kind must be one of {', '.join(DISPUTE_KINDS)} "
                                    f"(got {kind!r})")
        ok = False
    target = doc["target"]
    known: dict[str, str] = fields["known"]
    if not isinstance(target, str) or known.get(target) not in (
            "pos_purchase", "atm_withdrawal", "preauth_completion"):
        ck.add(doc.line_of("target"), f"{what}: target {target!r} is not the id of an "
                                      "earlier pos_purchase or atm_withdrawal or "
                                      "preauth_completion")
        ok = False
    reason = doc.get("reason")
    if reason is not None and reason not in CHARGEBACK_REASONS:
        ck.add(doc.line_of("reason"), f"{what}: reason must be one of "
                                      f"{', '.join(CHARGEBACK_REASONS)} (got {reason!r})")
        ok = False
    if not ok or eid is None or amount is None:
        return False
    fields.update(id=eid, target=target, kind=kind, amount_fen=amount, reason=reason)
    return True


@dataclass(frozen=True, slots=True)
class EventKind:
    """One ``do:`` of the scenario format: what the release does with it, its fields, and
    the function that checks them (None: the wallets' own check, wallets/terms.py)."""

    runs: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    check: Callable[..., bool] | None


_CARD_FLOW = "runs (authorisation; clearing and settlement come next)"

#: Every event kind of the scenario format, in the order the error message lists them.
EVENT_TABLE: Final[dict[str, EventKind]] = {
    "transfer": EventKind("runs: the bank routes it (行内, HVPS, BEPS, IBPS)",
                          ("id", "from", "to", "amount"), ("channel", "urgent"),
                          _check_transfer),
    "set_param": EventKind("runs", ("name", "value"), (), _check_set_param),
    "hvps_payment": EventKind("runs", ("id", "from", "to", "amount"), ("priority",),
                              _check_hvps_payment),
    "beps_payment": EventKind("runs", ("id", "from", "to", "amount"), ("kind",),
                              _check_net_payment),
    "debit_agreement": EventKind("runs", ("id", "payer", "payee"), (), _check_agreement),
    "ibps_payment": EventKind("runs", ("id", "from", "to", "amount"), (), _check_net_payment),
    "ibps_account_inquiry": EventKind("runs", ("id", "from", "bank", "account"), ("name",),
                                      _check_inquiry),
    "cancel": EventKind("runs", ("target",), (), _check_target),
    "reprioritise": EventKind("runs", ("target", "priority"), (), _check_target),
    "pledge": EventKind("runs", ("participant", "value"), ("haircut",), _check_pledge),
    "release": EventKind("runs", ("participant", "value"), ("haircut",), _check_pledge),
    "atm_withdrawal": EventKind(_CARD_FLOW, ("id", "card", "terminal", "amount"), ("pin",),
                                _check_card_event),
    "atm_balance_inquiry": EventKind(_CARD_FLOW, ("id", "card", "terminal"), ("pin",),
                                     _check_card_event),
    "pos_purchase": EventKind(_CARD_FLOW, ("id", "card", "terminal", "amount"), ("pin",),
                              _check_card_event),
    "pos_void": EventKind("runs", ("id", "target"), (), _check_reversal),
    "reversal": EventKind(_CARD_FLOW, ("id", "target"), (), _check_reversal),
    "pos_refund": EventKind("runs", ("id", "target", "amount"), (), _check_refund),
    "fault": EventKind("runs (host: issuer; modes down, slow, up)", ("participant", "mode"),
                       ("host",), _check_fault),
    "dispute": EventKind("runs (credit_adjustment, retrieval_request, retrieval_reply, "
                         "first_chargeback, representment, second_chargeback)",
                         ("id", "target", "kind", "amount"), ("reason",), _check_dispute),
    "preauth": EventKind("runs (预授权: the issuer holds the amount)",
                         ("id", "card", "terminal", "amount"), ("pin",), _check_card_event),
    "preauth_cancel": EventKind("runs (预授权撤销: the hold is released)", ("id", "target"),
                                (), _check_preauth_followup),
    "preauth_completion": EventKind("runs (预授权完成: clears like a purchase)",
                                    ("id", "target", "amount"), (), _check_preauth_followup),
    **{do: EventKind("runs (the app and payment institutions: docs/WALLETS.md)",
                     *wallet_terms.EVENT_FIELDS[do], None) for do in WALLET_EVENTS},
}
#: Every event kind and what this release does with it (docs/SCENARIOS.md lists them).
EVENT_KINDS: Final = {do: kind.runs for do, kind in EVENT_TABLE.items()}
#: The kinds this release runs: all of them (a kind recognised but not yet runnable would
#: be listed in EVENT_KINDS only, so its error says what is missing, not "unknown").
RUNNABLE_EVENTS: Final = tuple(EVENT_TABLE)
