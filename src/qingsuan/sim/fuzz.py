"""Deterministic simulation testing: a seed makes a world, its traffic and its faults; the
world is run with every invariant checked after every step, crashed at a random log append
and resumed, and its log replayed. Same seed, same world, same verdict (docs/RELIABILITY.md).

The one thing a reader would get wrong: the scenario file a seed writes is not the whole
case. Duplicate card requests and the crash are not scenario events; they are listed in the
file's header comment, and only ``qingsuan fuzz --seeds 1 --start SEED`` replays them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from qingsuan.engine import KIND_WINDOW, replay, window_commands
from qingsuan.money import format_fen
from qingsuan.sim.runner import Runner
from qingsuan.sim.scenario import Event, Scenario, ScenarioError, load_scenario, parse_scenario
from qingsuan.store.memory import discard
from qingsuan.world import world_systems

__all__ = ["Case", "Verdict", "check_mutants", "generate", "mutate", "run_case", "run_seeds"]

#: (name, code, card BIN) of the banks a world draws from
BANKS: Final = (("ICBC", "102100099996", "622202"), ("CCB", "105100000017", "621700"),
                ("BOC", "104100000004", "621661"), ("ABC", "103100000018", "622848"))
#: the payment institution every world has (IBPS only, no cards)
PAYCO: Final = ("PAYCO", "Z2000000001X")
#: start days: eves of 2026's holidays (the range holds one) and ordinary days
HOLIDAY_EVES: Final = ("2026-02-13", "2026-04-03", "2026-04-30", "2026-06-18", "2026-09-24",
                       "2026-09-30", "2026-10-07", "2026-12-31")
ORDINARY_DAYS: Final = ("2026-03-10", "2026-05-08", "2026-07-15", "2026-11-24", "2026-11-25",
                        "2026-11-27")
#: parameters a seed may change mid-run, and the values it draws from
PARAM_CHANGES: Final[dict[str, tuple[Any, ...]]] = {
    "banks.channel_fee": ("0.00", "1.50", "5.00"),
    "banks.name_check": (True, False),
    "cards.standin": (True, False),
    "cards.standin_limit": ("100.00", "500.00", "2000.00"),
    "cards.issuer_timeout": ("5", "30", "60"),
    "cards.fees": (True, False),
    "cards.pos_no_pin_limit": ("0.00", "1000.00"),
    "beps.item_limit": ("1000.00", "50000.00"),
    "ibps.item_limit": ("5000.00", "50000.00"),
    "hvps.lsm": ("off", "bilateral", "lsm"),
}
MAINTENANCE: Final = ("hvps.closed", "beps.closed", "ibps.closed")
CARD_KINDS: Final = ("pos_purchase", "atm_withdrawal", "preauth", "preauth_completion",
                     "pos_refund")
DISPUTE_STEPS: Final = ("credit_adjustment", "retrieval_request", "retrieval_reply",
                        "first_chargeback", "representment", "second_chargeback")
#: bounds on what one seed makes (the CI's 200 seeds must stay well under a minute)
MAX_EVENTS: Final = 24
MAX_DAYS: Final = 3
#: mutants of a seed's scenario checked by :func:`check_mutants`
MAX_MUTANTS: Final = 1_000


def _luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _amount(rng: random.Random, balance_fen: int = 0) -> str:
    """Mostly what the payer can pay, sometimes anything (a refusal, a route's limit)."""
    if balance_fen > 1 and rng.random() < 0.75:
        return format_fen(rng.randrange(1, balance_fen // 2 + 2)).replace(",", "")
    low, high = rng.choice(((1, 10_000), (10_000, 1_000_000), (1_000_000, 6_000_000),
                            (5_000_000, 30_000_000)))
    return format_fen(rng.randrange(low, high)).replace(",", "")


def _balance(rng: random.Random) -> str:
    return format_fen(rng.randrange(10 ** rng.randint(2, 10))).replace(",", "")


# ---------------------------------------------------------------------- the case


@dataclass(frozen=True, slots=True)
class Duplicate:
    """After event ``after`` the card request of event ``of`` is sent again with its STAN:
    as it was (a retry: the same answer, nothing booked) or ``altered`` (answer 94)."""

    after: str
    of: str
    altered: bool


@dataclass(frozen=True, slots=True)
class Case:
    """Everything a seed makes."""

    seed: int
    text: str
    duplicates: tuple[Duplicate, ...]
    #: the engine dies at this log append (taken modulo the whole run's appends, plus 1)
    crash_append: int
    #: the dying append is durable (the crash comes after it) or lost
    crash_durable: bool
    #: commands per append in the crashed run
    commit_every: int

    def file_text(self) -> str:
        """The scenario with a header naming what is not in it."""
        dups = ", ".join(f"{d.of} again after {d.after}{' altered' if d.altered else ''}"
                         for d in self.duplicates) or "none"
        return (f"# qingsuan fuzz seed {self.seed}: reproduce with "
                f"`qingsuan fuzz --seeds 1 --start {self.seed}`\n"
                f"# duplicate card requests (not scenario events): {dups}\n"
                f"# crash: at log append {self.crash_append} (mod the run's appends, + 1), "
                f"{'after' if self.crash_durable else 'before'} it is durable, "
                f"{self.commit_every} commands per append\n" + self.text)


def generate(seed: int) -> Case:
    """The case of ``seed``: a world of 2-4 banks and a payment institution, its traffic
    and its faults. A pure function of the seed."""
    rng = random.Random(f"qingsuan-fuzz:{seed}")
    banks = rng.sample(BANKS, rng.randint(2, 4))
    start = dt.datetime.fromisoformat(rng.choice(
        HOLIDAY_EVES if rng.random() < 0.5 else ORDINARY_DAYS) + "T08:00")
    days = rng.randint(1, MAX_DAYS)
    until = start + dt.timedelta(days=days - 1, hours=rng.randint(4, 15))
    if until.year > start.year:
        until = dt.datetime(start.year, 12, 31, 23, 0)  # the calendar covers 2026 only
    parts: list[dict[str, Any]] = []
    for name, code, _ in banks:
        p: dict[str, Any] = {"name": name, "code": code, "settlement_balance": rng.choice(
            ("0.00", "20000.00", "500000.00", "10000000.00"))}
        if rng.random() < 0.3:
            p["collateral"] = rng.choice(("100000.00", "1000000.00"))
        if rng.random() < 0.3:
            p["beps_cap"] = rng.choice(("500.00", "20000.00"))
        parts.append(p)
    parts.append({"name": PAYCO[0], "code": PAYCO[1], "kind": "payment_institution",
                  "settlement_balance": rng.choice(("0.00", "100000.00"))})
    customers: list[dict[str, Any]] = []
    accounts: dict[str, tuple[str, str]] = {}  # id -> (bank, account)
    for bname, _, bin6 in banks:
        for _ in range(rng.randint(1, 3)):
            cid = f"c{len(customers)}"
            acct = bin6 + f"{rng.randrange(10**9):09d}"
            acct += _luhn_digit(acct)
            c: dict[str, Any] = {"id": cid, "bank": bname, "account": acct,
                                 "balance": _balance(rng), "name": f"Customer {cid}"}
            roll = rng.random()
            if roll < 0.1:
                c["closed"], c["balance"] = True, "0.00"
            elif roll < 0.3:
                c["credit_limit"] = rng.choice(("1000.00", "50000.00"))
            customers.append(c)
            accounts[cid] = (bname, acct)
    if rng.random() < 0.7:  # a customer of the payment institution
        acct = f"88{rng.randrange(10**10):010d}"
        customers.append({"id": "w0", "bank": PAYCO[0], "account": acct,
                          "balance": _balance(rng), "name": "Wallet"})
        accounts["w0"] = (PAYCO[0], acct)
    # the merchant banks at one bank, its POS belongs to another (story 2, step 8)
    m_bank, pos_bank = banks[0][0], banks[1][0]
    m_acct = banks[0][2] + f"{rng.randrange(10**9):09d}"
    m_acct += _luhn_digit(m_acct)
    customers.append({"id": "shop", "bank": m_bank, "account": m_acct, "balance": "0.00",
                      "name": "Shop", "merchant": {"mid": "104290058120001", "mcc": "5814",
                                                   "mdr": "0.0060"}})
    accounts["shop"] = (m_bank, m_acct)
    open_bank = [c for c in customers if c["bank"] != PAYCO[0] and not c.get("closed")
                 and c["id"] != "shop"]
    cards: list[dict[str, Any]] = []
    pins: dict[str, str] = {}
    for c in open_bank:
        if rng.random() < 0.8:
            bin6 = next(b for n, _, b in banks if n == c["bank"])
            pan = bin6 + f"{rng.randrange(10**9):09d}"
            pan += _luhn_digit(pan)
            pin = f"{rng.randrange(10**6):06d}"
            cards.append({"pan": pan, "account": c["id"], "pin": pin,
                          "kind": "credit" if "credit_limit" in c else "debit"})
            pins[pan] = pin
    terminals = [{"id": "POS00001", "kind": "pos", "bank": pos_bank, "merchant": "shop"},
                 {"id": "ATM00001", "kind": "atm", "bank": rng.choice(banks)[0],
                  "cash": rng.choice(("500.00", "200000.00"))}]
    balances = {c["id"]: int(c["balance"].replace(".", "")) for c in customers}
    for card in cards:  # a card's payer is its cardholder
        balances[card["pan"]] = balances[card["account"]]
    events, duplicates = _traffic(rng, start, until, parts, customers, accounts, cards, pins,
                                  balances)
    params: dict[str, Any] = {}
    if rng.random() < 0.5:
        params["cards.standin"] = True
    if rng.random() < 0.3:
        params["banks.channel_fee"] = "2.00"
    top = {"name": f"fuzz-{seed}", "start": start.strftime("%Y-%m-%dT%H:%M"),
           "run_until": until.strftime("%Y-%m-%dT%H:%M"), "calendar": "cn"}
    lines = [f"{k}: {json.dumps(v)}" for k, v in top.items()]
    lines.append(f"params: {json.dumps(params)}")
    for key, items in (("participants", parts), ("customers", customers), ("cards", cards),
                       ("terminals", terminals), ("events", events)):
        lines.append(f"{key}:" + ("" if items else " []"))
        lines += [f"  - {json.dumps(item, ensure_ascii=False)}" for item in items]
    return Case(seed, "\n".join(lines) + "\n", tuple(duplicates),
                crash_append=rng.randrange(1, 10**6), crash_durable=rng.random() < 0.5,
                commit_every=rng.choice((1, 1, 3)))


def _traffic(rng: random.Random, start: dt.datetime, until: dt.datetime,
             parts: list[dict[str, Any]], customers: list[dict[str, Any]],
             accounts: dict[str, tuple[str, str]], cards: list[dict[str, Any]],
             pins: dict[str, str], balances: dict[str, int]
             ) -> tuple[list[dict[str, Any]], list[Duplicate]]:
    """The events of a case, in time order, and the duplicate card requests among them."""
    span_min = int((until - start).total_seconds() // 60)
    times = sorted(rng.randrange(1, span_min) for _ in range(rng.randint(4, MAX_EVENTS)))
    ids = [c["id"] for c in customers]
    banks = [p["name"] for p in parts if p.get("kind") != "payment_institution"]
    done: dict[str, list[str]] = {}  # kind -> event ids so far
    events: list[dict[str, Any]] = []
    duplicates: list[Duplicate] = []
    closed_now: set[str] = set()
    for n, minute in enumerate(times):
        at = (start + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M")
        eid = f"e{n}"
        ev = _event(rng, eid, ids, banks, accounts, cards, pins, balances, done, closed_now)
        if ev is None:
            continue
        events.append({"at": at, **ev})
        done.setdefault(ev["do"], []).append(eid)
        earlier = [i for k in CARD_KINDS for i in done.get(k, [])]
        if earlier and rng.random() < 0.25:  # the same STAN again: a retry, late or not
            duplicates.append(Duplicate(eid, rng.choice(earlier), rng.random() < 0.3))
    return events, duplicates


def _event(rng: random.Random, eid: str, ids: list[str], banks: list[str],
           accounts: dict[str, tuple[str, str]], cards: list[dict[str, Any]],
           pins: dict[str, str], balances: dict[str, int], done: dict[str, list[str]],
           closed_now: set[str]) -> dict[str, Any] | None:
    kind = rng.choices(
        ("transfer", "unlisted", "hvps", "beps", "ibps", "card", "reversal", "void", "refund",
         "preauth", "preauth_end", "dispute", "fault", "maintenance", "param", "cancel",
         "pledge"),
        (12, 4, 3, 3, 3, 10, 3, 1, 2, 3, 3, 2, 3, 3, 2, 1, 1))[0]
    a, b = rng.choice(ids), rng.choice(ids)
    amount = _amount(rng, balances.get(a, 0))
    purchases = done.get("pos_purchase", []) + done.get("preauth_completion", [])
    if kind == "transfer" and a != b:
        return {"do": "transfer", "id": eid, "from": a, "to": b, "amount": amount,
                "channel": rng.choice(("counter", "mobile")), "urgent": rng.random() < 0.4}
    if kind == "unlisted":
        bank = rng.choice(banks)
        acct = accounts[b][1] if accounts[b][0] == bank and rng.random() < 0.3 else \
            f"6{rng.randrange(10**15):015d}"
        return {"do": "transfer", "id": eid, "from": a, "amount": amount,
                "channel": rng.choice(("counter", "mobile")), "urgent": rng.random() < 0.4,
                "to": {"bank": bank, "account": acct, "name": rng.choice(("X", f"Customer {b}"))}}
    if kind in ("hvps", "beps", "ibps") and accounts[a][0] != accounts[b][0]:
        return {"do": f"{kind}_payment", "id": eid, "from": a, "to": b, "amount": amount}
    if kind == "card" and cards:
        card = rng.choice(cards)
        pin = pins[card["pan"]] if rng.random() < 0.85 else "000000"
        if rng.random() < 0.6:
            ev = {"do": "pos_purchase", "id": eid, "card": card["pan"], "terminal": "POS00001",
                  "amount": _amount(rng, balances[card["pan"]])}
            if rng.random() < 0.5:
                ev["pin"] = pin
            return ev
        return {"do": "atm_withdrawal", "id": eid, "card": card["pan"],
                "terminal": "ATM00001", "amount": f"{rng.randint(1, 3000)}.00", "pin": pin}
    if kind == "reversal":
        targets = purchases + done.get("atm_withdrawal", []) + done.get("preauth", [])
        if targets:
            return {"do": "reversal", "id": eid, "target": rng.choice(targets)}
    if kind == "void" and done.get("pos_purchase"):
        return {"do": "pos_void", "id": eid, "target": rng.choice(done["pos_purchase"])}
    if kind == "refund" and purchases:
        return {"do": "pos_refund", "id": eid, "target": rng.choice(purchases),
                "amount": _amount(rng)}
    if kind == "preauth" and cards:
        card = rng.choice(cards)
        return {"do": "preauth", "id": eid, "card": card["pan"], "terminal": "POS00001",
                "amount": _amount(rng, balances[card["pan"]]), "pin": pins[card["pan"]]}
    if kind == "preauth_end" and done.get("preauth"):
        target = rng.choice(done["preauth"])
        if rng.random() < 0.3:
            return {"do": "preauth_cancel", "id": eid, "target": target}
        return {"do": "preauth_completion", "id": eid, "target": target, "amount": amount}
    if kind == "dispute":
        targets = purchases + done.get("atm_withdrawal", [])
        if targets:
            return {"do": "dispute", "id": eid, "target": rng.choice(targets),
                    "kind": rng.choice(DISPUTE_STEPS), "amount": amount}
    if kind == "fault":
        return {"do": "fault", "participant": rng.choice(banks), "host": "issuer",
                "mode": rng.choice(("down", "slow", "up", "up"))}
    if kind == "maintenance":
        name = rng.choice(MAINTENANCE)
        on = name not in closed_now
        (closed_now.add if on else closed_now.discard)(name)
        return {"do": "set_param", "name": name, "value": on}
    if kind == "param":
        name = rng.choice(sorted(PARAM_CHANGES))
        return {"do": "set_param", "name": name, "value": rng.choice(PARAM_CHANGES[name])}
    if kind == "cancel":
        targets = done.get("hvps_payment", []) + done.get("beps_payment", []) + \
            done.get("transfer", [])
        if targets:
            return {"do": "cancel", "target": rng.choice(targets)}
    if kind == "pledge":
        return {"do": rng.choice(("pledge", "release")), "participant": rng.choice(banks),
                "value": rng.choice(("10000.00", "1000000.00"))}
    return None


# ---------------------------------------------------------------------- running


@dataclass
class Verdict:
    seed: int
    problems: list[str] = field(default_factory=list)
    steps: int = 0
    entries: int = 0
    state_hash: str = ""
    duplicates_sent: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class _Crash(Exception):
    """The engine dies here."""


class _Invariant(AssertionError):
    pass


def invariants(runner: Runner) -> dict[str, bool]:
    """The checks that must hold after every step: the four reconciliation checks, every
    net system's positions add up to zero, and no payment is settled or credited twice."""
    net_ok = all(sum(net.positions.values()) == 0 for net in runner.cnaps.net.values())
    once = all(not any(sum(1 for _, s in p.history if s == final) > 1
                       for final in ("settled", "credited", "cleared"))
               for p in runner.payments.values())
    return {"books_balanced": runner.books_balanced(),
            "money_conserved": runner.money_conserved(),
            "mirrors_match": runner.mirrors_match(),
            "suspense_explained": runner.suspense_explained(),
            "net_positions_sum_to_zero": net_ok, "no_double_settlement": once}


class _Driver:
    """The on_step hook of a case's runs: checks the invariants and sends its duplicates."""

    def __init__(self, case: Case, verdict: Verdict) -> None:
        self.verdict = verdict
        self.after: dict[str, list[Duplicate]] = {}
        for d in case.duplicates:
            self.after.setdefault(d.after, []).append(d)

    def __call__(self, event: Event, postings: Any, runner: Runner) -> None:
        self.verdict.steps += 1
        self.check(runner, f"after {event.do} (line {event.line})")
        for dup in self.after.get(str(event.fields.get("id", "")), []):
            self.send(runner, dup)

    def check(self, runner: Runner, where: str) -> None:
        failed = [k for k, v in invariants(runner).items() if not v]
        if failed:
            raise _Invariant(f"{where}: {', '.join(failed)} failed")

    def send(self, runner: Runner, dup: Duplicate) -> None:
        """The card request of ``dup.of`` again, as the terminal's retry would be: it must
        book nothing and answer as before (or 94 when its content differs)."""
        key = runner.world.banks.card_keys.get(dup.of)
        txn = runner.switch.txns.get(key) if key is not None else None
        if txn is None:
            return
        body = txn.body
        if dup.altered:
            doc = json.loads(body)
            doc["4"] = f"{int(doc.get('4', '0') or 0) + 1:012d}"
            body = json.dumps(doc, sort_keys=True)
        transfers, state = runner.engine.ledger.transfer_count, runner.switch.dump_state()
        answer = runner.engine.command("cards.request", body.encode())
        self.verdict.duplicates_sent += 1
        want = "94" if dup.altered else txn.rc
        if answer.get("39") != want or runner.engine.ledger.transfer_count != transfers or \
                runner.switch.dump_state() != state:
            raise _Invariant(f"the request of {dup.of} sent again after {dup.after}"
                             f"{' altered' if dup.altered else ''}: answered "
                             f"{answer.get('39')} (want {want}) and booked "
                             f"{runner.engine.ledger.transfer_count - transfers} transfers")
        self.check(runner, f"after the duplicate of {dup.of}")

    def resume(self, runner: Runner, scenario: Scenario) -> None:
        """A run stopped between an event and its duplicates sends them now (they come
        right after the event, before any tick: the log's last entry tells)."""
        log = runner.engine.log
        last = next(iter(log.entries(log.last_seq - 1)), None) if log.last_seq else None
        if last is None:
            return
        kind, payload = last.kind, last.payload
        if kind == KIND_WINDOW:  # a run's events logged together: the last one tells
            kind, payload = window_commands(payload)[-1]
        if kind != "banks.event":
            return
        order = int(json.loads(payload[8:])["order"])
        event = next(e for e in scenario.events if e.order == order)
        for dup in self.after.get(str(event.fields.get("id", "")), []):
            self.send(runner, dup)


def _store(seed: int, what: str) -> str:
    return f"memory://qingsuan-fuzz-{seed}-{what}-{uuid.uuid4().hex[:8]}"


def run_case(case: Case) -> Verdict:
    """Run a case: the whole run with the invariants after every step, its replay, then
    a run crashed at a random append and resumed, which must end where the whole one did."""
    verdict = Verdict(case.seed)
    try:
        scenario = parse_scenario(case.text, f"fuzz-{case.seed}.yaml")
    except ScenarioError as exc:
        verdict.problems.append(f"the generator made an invalid scenario: {exc}")
        return verdict
    whole_url, crash_url = _store(case.seed, "whole"), _store(case.seed, "crash")
    stage = "the whole run"
    try:
        whole, appends = _whole(case, scenario, whole_url, verdict)
        verdict.entries, verdict.state_hash = whole["log"]["entries"], whole["log"]["state_hash"]
        stage = "the replay of the whole run"
        replayed = replay(whole_url, world_systems()).state_hash().hex()
        if replayed != verdict.state_hash:
            verdict.problems.append(f"replay ends on {replayed}, the live run on "
                                    f"{verdict.state_hash}")
        stage = "the crashed run"
        stop_at = 1 + case.crash_append % max(1, appends // case.commit_every)
        _crashed(case, scenario, crash_url, stop_at, verdict)
        stage = "the resumed run"
        driver = _Driver(case, Verdict(case.seed))
        runner = Runner(scenario, store=crash_url, on_step=driver)
        driver.resume(runner, scenario)
        resumed = runner.run()
        if resumed != whole:
            diff = sorted(k for k in set(whole) | set(resumed) if whole.get(k) != resumed.get(k))
            verdict.problems.append(f"the run crashed at append {stop_at} and resumed differs "
                                    f"from the whole run in {', '.join(diff)}")
        stage = "the replay of the resumed run"
        replayed = replay(crash_url, world_systems()).state_hash().hex()
        if replayed != verdict.state_hash:
            verdict.problems.append(f"the resumed run's log replays to {replayed}, the whole "
                                    f"run ended on {verdict.state_hash}")
    except _Invariant as exc:
        verdict.problems.append(f"{stage}: {exc}")
    except Exception:  # a bug anywhere is the verdict, with its traceback
        verdict.problems.append(f"{stage}: {traceback.format_exc(limit=-6)}")
    finally:
        for url in (whole_url, crash_url):
            discard(url.removeprefix("memory://"))
    return verdict


def _whole(case: Case, scenario: Scenario, url: str, verdict: Verdict
           ) -> tuple[dict[str, Any], int]:
    runner = Runner(scenario, store=url, on_step=_Driver(case, verdict), commit_every=1)
    log = runner.engine.log
    append, count = log.append, [0]

    def counting(commands: Any) -> Any:
        count[0] += 1
        return append(commands)

    log.append = counting  # type: ignore[method-assign]
    runner.build_world()
    _Driver(case, verdict).check(runner, "after the world was built")
    return runner.run(), count[0]


def _crashed(case: Case, scenario: Scenario, url: str, stop_at: int,
             verdict: Verdict) -> None:
    runner = Runner(scenario, store=url, on_step=_Driver(case, Verdict(case.seed)),
                    commit_every=case.commit_every)
    log = runner.engine.log
    append, count = log.append, [0]

    def dying(commands: Any) -> Any:
        count[0] += 1
        if count[0] == stop_at and not case.crash_durable:
            raise _Crash
        entries = append(commands)
        if count[0] == stop_at:
            raise _Crash
        return entries

    log.append = dying  # type: ignore[method-assign]
    try:
        runner.run()
    except _Crash:
        pass
    finally:
        log.close()


def run_seeds(seeds: range, on_verdict: Callable[[Verdict], None] | None = None
              ) -> Iterator[Verdict]:
    for seed in seeds:
        verdict = run_case(generate(seed))
        if on_verdict is not None:
            on_verdict(verdict)
        yield verdict


# ---------------------------------------------------------------------- mutated files

_ODD_VALUES: Final[tuple[Any, ...]] = (
    None, 0, -1, 1.5, "x", [], {}, True, "99999999999999999999.99", "-5.00", "1.234",
    "2026-13-45T25:61", "20:30", "", "ICBC", "0" * 40, {"a": [1, {"b": None}]})


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def mutate(text: str, rng: random.Random) -> str:
    """A mutant of a valid scenario: a key dropped, a value of another type, a key written
    twice, random bytes, a cut, or two lines swapped."""
    how = rng.randrange(6)
    if how <= 1:
        doc = yaml.safe_load(text)
        path = rng.choice(list(_paths(doc))[1:])
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if how == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(_ODD_VALUES)
        return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    lines = text.splitlines(keepends=True)
    if how == 2:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "".join(lines)
    if how == 3:
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return data.decode("utf-8", errors="surrogateescape")
    if how == 4:
        return text[:rng.randrange(len(text))]
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def check_mutants(case: Case, count: int, folder: Path) -> list[str]:
    """Write ``count`` mutants of the case's scenario into ``folder`` and load each as
    ``qingsuan check`` does: a listed error (ScenarioError) or a valid scenario, which then
    runs with every check holding. Anything else (a traceback) is a problem, named with the
    mutant's file, which is kept."""
    assert 0 <= count <= MAX_MUTANTS
    rng = random.Random(f"qingsuan-fuzz-mutants:{case.seed}")
    problems = []
    for n in range(count):
        path = folder / f"mutant-{case.seed}-{n}.yaml"
        text = mutate(case.text, rng)
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        try:
            scenario = load_scenario(path)
        except ScenarioError:
            path.unlink()
            continue
        except Exception:
            problems.append(f"{path}: qingsuan check: {traceback.format_exc(limit=-4)}")
            continue
        url = _store(case.seed, f"mutant{n}")
        try:
            out = Runner(scenario, store=url).run()
            failed = [k for k, v in out["checks"].items() if not v]
            if failed:
                problems.append(f"{path}: runs, and {', '.join(failed)} failed")
            else:
                path.unlink()
        except Exception:
            problems.append(f"{path}: qingsuan run: {traceback.format_exc(limit=-4)}")
        finally:
            discard(url.removeprefix("memory://"))
    return problems
