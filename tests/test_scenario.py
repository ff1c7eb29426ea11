"""Scenario files (docs/SCENARIO.md): the built-in intrabank story, determinism, and the
validator's promise that every problem is reported with its file, line and reason."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qingsuan.money import format_fen
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import Problem, ScenarioError, load_scenario, parse_scenario

INTRABANK = Path(str(resources.files("qingsuan") / "scenarios" / "intrabank.yaml"))


@pytest.fixture(scope="module")
def intrabank_outcome() -> dict[str, Any]:
    return run_scenario(load_scenario(INTRABANK), store="memory:")


# ----------------------------------------------------------------------------- built-in story


def test_intrabank_balances_to_the_fen(intrabank_outcome: dict[str, Any]) -> None:
    out = intrabank_outcome
    assert out["scenario"] == "intrabank-day"
    assert out["ended_at"] == "2026-11-25T18:00:00+08:00"
    assert out["balances"] == {
        "customers": {"alice": "46500.01", "carol": "4699.99", "bob": "254.50",
                      "dave": "45.50"},
        "settlement": {"ICBC": "1000000.00", "CCB": "800000.00", "CUPS": "0.00"},
        "terminals": {"ATM00001": "200000.00"},
        "mirrors": {"ICBC": "1000000.00", "CCB": "800000.00", "CUPS": "0.00"},
    }
    assert out["inquiries"] == {}


def test_intrabank_statuses_and_reasons(intrabank_outcome: dict[str, Any]) -> None:
    payments = intrabank_outcome["payments"]
    assert list(payments) == ["rent", "lunch", "too-much", "refund"]
    for pid in ("rent", "lunch", "refund"):
        assert payments[pid]["status"] == "credited", pid
        assert payments[pid]["reason"] is None, pid
        assert payments[pid]["kind"] == "transfer"
    too_much = payments["too-much"]
    assert too_much["status"] == "rejected"
    assert too_much["reason"]["code"] == "AM04"
    assert "dave" in too_much["reason"]["message"]
    assert "100.00" in too_much["reason"]["message"]


def test_intrabank_checks_all_true(intrabank_outcome: dict[str, Any]) -> None:
    checks = intrabank_outcome["checks"]
    assert {"books_balanced", "money_conserved"} <= set(checks)
    assert all(value is True for value in checks.values()), checks


def test_intrabank_history_in_beijing_time(intrabank_outcome: dict[str, Any]) -> None:
    payments = intrabank_outcome["payments"]
    assert payments["rent"]["history"] == [
        {"at": "2026-11-25T09:30:00+08:00", "status": "accepted"},
        {"at": "2026-11-25T09:30:00+08:00", "status": "credited"},
    ]
    assert payments["too-much"]["history"][-1] == {"at": "2026-11-25T11:00:00+08:00",
                                                   "status": "rejected"}
    for pid, payment in payments.items():
        assert payment["history"], pid
        assert payment["history"][-1]["status"] == payment["status"], pid
        for entry in payment["history"]:
            assert entry["at"].endswith("+08:00"), (pid, entry)
            assert entry["at"].startswith("2026-11-25T"), (pid, entry)


def test_same_file_twice_is_byte_identical() -> None:
    first = run_scenario(load_scenario(INTRABANK))
    second = run_scenario(load_scenario(INTRABANK))
    assert len(first["log"]["state_hash"]) == 64
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_default_store_and_memory_give_the_same_outcome(
        intrabank_outcome: dict[str, Any]) -> None:
    sqlite_outcome = run_scenario(load_scenario(INTRABANK))  # temporary SQLite file
    assert json.dumps(sqlite_outcome, sort_keys=True) == json.dumps(intrabank_outcome,
                                                                     sort_keys=True)


# ----------------------------------------------------------------------------- validation

# Block style, so that a key's line differs from its item's line.
BASE = """\
name: probe
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
calendar: cn
params:
  ibps.item_limit: "50000.00"
participants:
  - name: ICBC
    code: "102100099996"
    kind: bank
    settlement_balance: "1000000.00"
  - name: CCB
    code: "105100000017"
    settlement_balance: "800000.00"
customers:
  - id: alice
    bank: ICBC
    account: "6222020200000000014"
    balance: "500.00"
  - id: carol
    bank: ICBC
    account: "6222020200000000022"
    balance: "20.00"
  - id: bob
    bank: CCB
    account: "6217000010000000029"
    balance: "0.00"
events:
  - at: 2026-11-25T09:00
    do: transfer
    id: t1
    from: alice
    to: carol
    amount: "100.00"
  - at: 2026-11-25T10:00
    do: transfer
    id: t2
    from: carol
    to: alice
    amount: "5.00"
"""


def line_of(text: str, marker: str) -> int:
    """1-based number of the only line of ``text`` containing ``marker``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) == 1, f"{marker!r} is on lines {hits}"
    return hits[0]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    found = info.value.problems
    assert found, "a ScenarioError must list its problems"
    for problem in found:
        assert problem.file == "x.yaml"
        assert str(problem).startswith(f"x.yaml:{problem.line}: ")
    return found


def only_problem(text: str) -> Problem:
    """The single problem of ``text`` (a second one would be a misleading echo)."""
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_base_is_valid() -> None:
    sc = parse_scenario(BASE, "x.yaml")
    assert sc.name == "probe"
    assert [p.name for p in sc.participants] == ["ICBC", "CCB"]
    assert sc.customer("carol").balance_fen == 2000
    assert [e.id for e in sc.events] == ["t1", "t2"]
    assert sc.events[0].fields["amount_fen"] == 10000
    assert sc.params["ibps.item_limit"] == 5_000_000


def test_unknown_top_level_key() -> None:
    text = edit("calendar: cn\n", "calendar: cn\ncolour: blue\n")
    p = only_problem(text)
    assert p.line == line_of(text, "colour")
    assert "unknown key 'colour'" in p.message


def test_missing_name() -> None:
    p = only_problem(edit("name: probe\n", ""))
    assert p.line == 1
    assert "missing required key 'name'" in p.message


def test_amount_with_three_decimals() -> None:
    text = edit('amount: "5.00"', 'amount: "5.001"')
    p = only_problem(text)
    assert p.line == line_of(text, '"5.001"')
    assert "more than two decimals" in p.message


def test_float_amount_is_rejected() -> None:
    text = edit('amount: "5.00"', "amount: 100.5")
    p = only_problem(text)
    assert p.line == line_of(text, "100.5")
    assert "float" in p.message


def test_negative_balance() -> None:
    text = edit('balance: "20.00"', 'balance: "-20.00"')
    p = only_problem(text)  # and no echo on the events that name carol
    assert p.line == line_of(text, "-20.00")
    assert "negative" in p.message
    assert "carol" in p.message


def test_zero_transfer_amount() -> None:
    text = edit('amount: "100.00"', 'amount: "0.00"')
    p = only_problem(text)
    assert p.line == line_of(text, 'amount: "0.00"')
    assert "greater than zero" in p.message


def test_customer_at_unknown_bank() -> None:
    text = edit("bank: CCB\n", "bank: ABC\n")
    p = only_problem(text)
    assert p.line == line_of(text, "bank: ABC")
    assert "no participant named 'ABC'" in p.message


def test_duplicate_customer_id() -> None:
    text = edit("  - id: bob\n", "  - id: carol\n")
    found = problems(text)
    assert len(found) == 1, [str(p) for p in found]
    second_carol = [n for n, line in enumerate(text.splitlines(), 1)
                    if line == "  - id: carol"][1]
    assert found[0].line == second_carol
    assert "'carol' is listed twice" in found[0].message


def test_duplicate_event_id() -> None:
    text = edit("    id: t2\n", "    id: t1\n")
    p = only_problem(text)
    ids = [n for n, line in enumerate(text.splitlines(), 1) if line == "    id: t1"]
    assert p.line == ids[1]
    assert "'t1' is used twice" in p.message


def test_events_out_of_time_order() -> None:
    text = edit("at: 2026-11-25T10:00", "at: 2026-11-25T08:30")
    p = only_problem(text)
    assert p.line == line_of(text, "T08:30")
    assert "time order" in p.message


def test_event_before_start() -> None:
    text = edit("at: 2026-11-25T09:00", "at: 2026-11-25T07:00")
    p = only_problem(text)
    assert p.line == line_of(text, "T07:00")
    assert "before the scenario's start" in p.message


def test_unknown_event_kind() -> None:
    text = edit("    do: transfer\n    id: t2", "    do: fly\n    id: t2")
    p = only_problem(text)
    assert p.line == line_of(text, "do: fly")
    assert "'fly'" in p.message
    assert "transfer" in p.message  # says what is allowed


def test_refund_of_something_not_a_purchase_is_a_located_error() -> None:
    text = BASE + ("  - at: 2026-11-25T11:00\n    do: pos_refund\n    id: w1\n"
                   '    target: p0\n    amount: "100.00"\n')
    p = only_problem(text)
    assert p.line == line_of(text, "target: p0")
    assert "pos_refund w1" in p.message
    assert "not the id of an earlier pos_purchase" in p.message


def test_refund_needs_a_positive_amount() -> None:
    text = BASE + ("  - at: 2026-11-25T11:00\n    do: pos_refund\n    id: w1\n"
                   '    target: p0\n    amount: "0.00"\n')
    found = problems(text)
    assert any(p.line == line_of(text, 'amount: "0.00"') and "zero" in p.message
               for p in found), [str(p) for p in found]


def test_interbank_transfer_is_valid_and_routed() -> None:
    text = edit("    to: alice\n", "    to: bob\n")
    scenario = parse_scenario(text, "x.yaml")
    assert any(e.do == "transfer" for e in scenario.events)


def test_story_7_channel_routing_at_the_boundaries() -> None:
    path = Path(str(resources.files("qingsuan") / "scenarios" / "channels.yaml"))
    out = run_scenario(load_scenario(path), store="memory:")
    p = out["payments"]
    assert {k: (v["system"], v["status"]) for k, v in p.items()} == {
        "in-house": ("BOOK", "credited"),
        "beps-just-below": ("BEPS", "settled"),
        "beps-at-limit": ("BEPS", "settled"),
        "hvps-above": ("HVPS", "credited"),
        "counter-urgent": ("HVPS", "credited"),
        "mobile-urgent": ("IBPS", "settled"),
        "mobile-urgent-too-big": ("IBPS", "rejected"),
        "saturday-big": ("HVPS", "credited"),
    }
    refused = p["mobile-urgent-too-big"]["reason"]
    assert refused["code"] == "AM02" and "50000.00" in refused["message"]
    held = p["saturday-big"]
    assert held["held_until"] == "2026-11-29T20:30:00+08:00"
    assert [h["at"][:16] for h in held["history"]] == [
        "2026-11-28T10:00", "2026-11-29T20:30", "2026-11-29T20:30"]
    assert out["balances"]["customers"] == {"alice": "659900.00", "carol": "60000.00",
                                            "bob": "280100.00"}
    assert out["balances"]["settlement"] == {"ICBC": "4719900.00", "CCB": "5280100.00"}
    assert all(out["checks"].values())


def test_transfer_from_unknown_customer() -> None:
    text = edit("    from: alice\n", "    from: zed\n")
    p = only_problem(text)
    assert p.line == line_of(text, "from: zed")
    assert "'zed' is not a listed customer" in p.message


def test_bad_bank_code() -> None:
    text = edit('code: "105100000017"', 'code: "10510000001"')
    p = only_problem(text)  # and no echo on bob, who banks with CCB
    assert p.line == line_of(text, "10510000001")
    assert "12-character bank code" in p.message


def test_payment_institution_code_starts_with_a_letter() -> None:
    good = BASE.replace("customers:\n", "  - name: PAYCO\n    code: \"Z2000000001X\"\n"
                                        "    kind: payment_institution\ncustomers:\n")
    assert parse_scenario(good, "x.yaml").participant("PAYCO").kind == "payment_institution"
    text = good.replace("Z2000000001X", "12000000001X")
    p = only_problem(text)
    assert p.line == line_of(text, "12000000001X")
    assert "payment institution code" in p.message
    assert "letter" in p.message


def test_card_pan_failing_luhn_is_masked() -> None:
    pan = "6222020200000000015"  # ...014 is valid; the last digit is off by one
    text = BASE + f'cards:\n  - pan: "{pan}"\n    account: alice\n    pin: "123456"\n'
    p = only_problem(text)
    assert p.line == line_of(text, pan)
    assert "Luhn" in p.message
    assert pan not in p.message
    assert pan not in str(p)
    assert f"{pan[:6]}*********{pan[-4:]}" in p.message


def test_bad_pin_never_appears_in_the_error() -> None:
    for pin in ('"98x7"', "987654"):
        text = BASE + ('cards:\n  - pan: "6222020200000000014"\n    account: alice\n'
                       f"    pin: {pin}\n")
        p = only_problem(text)
        assert p.line == line_of(text, "pin:")
        assert "pin" in p.message
        assert pin.strip('"') not in p.message
        assert "6222020200000000014" not in p.message  # the PAN is masked here too


def test_unknown_param_name() -> None:
    text = edit('  ibps.item_limit: "50000.00"', '  ibps.item_limitt: "50000.00"')
    p = only_problem(text)
    assert p.line == line_of(text, "item_limitt")
    assert "unknown parameter 'ibps.item_limitt'" in p.message


def test_unquoted_param_time_gets_the_quote_hint() -> None:
    text = edit('  ibps.item_limit: "50000.00"\n', '  ibps.item_limit: "50000.00"\n'
                                                   "  hvps.open: 20:30\n")
    p = only_problem(text)
    assert p.line == line_of(text, "hvps.open")
    assert "quote times" in p.message
    assert "hvps.open" in p.message


def test_set_param_event_with_a_bad_value() -> None:
    text = BASE + ("  - at: 2026-11-25T12:00\n    do: set_param\n    name: banks.channel_fee\n"
                   "    value: lots\n")
    p = only_problem(text)
    assert p.line == line_of(text, "value: lots")
    assert "banks.channel_fee" in p.message


def test_set_param_event_is_valid_with_a_good_value() -> None:
    text = BASE + ("  - at: 2026-11-25T12:00\n    do: set_param\n    name: banks.channel_fee\n"
                   '    value: "0.50"\n')
    sc = parse_scenario(text, "x.yaml")
    assert sc.events[-1].do == "set_param"
    assert sc.events[-1].fields == {"name": "banks.channel_fee", "value": "0.50"}


def test_invalid_yaml_reports_its_line() -> None:
    text = edit("calendar: cn\n", "calendar: cn: weekdays\n")
    p = only_problem(text)
    assert p.line == line_of(text, "cn: weekdays")
    assert "not valid YAML" in p.message


def test_unclosed_quote_names_the_line_where_it_opened() -> None:
    text = edit('amount: "5.00"\n', 'amount: "5.00\n')
    p = only_problem(text)
    assert "not valid YAML" in p.message
    opened = line_of(text, '"5.00')
    assert p.line == opened or f"line {opened}" in p.message, str(p)


def test_several_problems_are_all_reported() -> None:
    text = edit("calendar: cn\n", "calendar: cn\ncolour: blue\n")
    text = edit('balance: "500.00"', 'balance: "500.001"', text)
    text = edit('code: "102100099996"', 'code: "1021000999"', text)
    text = edit("    do: transfer\n    id: t2", "    do: fly\n    id: t2", text)
    found = problems(text)
    by_line = {p.line: p.message for p in found}
    assert len(found) == 4, [str(p) for p in found]
    assert "colour" in by_line[line_of(text, "colour")]
    assert "two decimals" in by_line[line_of(text, "500.001")]
    assert "bank code" in by_line[line_of(text, "1021000999")]
    assert "'fly'" in by_line[line_of(text, "do: fly")]


def test_event_after_run_until_is_valid_and_not_run() -> None:
    text = BASE + ("  - at: 2026-11-25T19:00\n    do: transfer\n    id: late\n"
                   '    from: alice\n    to: carol\n    amount: "1.00"\n')
    sc = parse_scenario(text, "x.yaml")
    assert [e.id for e in sc.events] == ["t1", "t2", "late"]
    out = run_scenario(sc, store="memory:")
    assert set(out["payments"]) == {"t1", "t2"}
    assert out["balances"]["customers"] == {"alice": "405.00", "carol": "115.00",
                                            "bob": "0.00"}


# ----------------------------------------------------------------------------- properties

NAMES = ("ann", "ben", "cat")

transfers = st.lists(
    st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES),
              st.integers(min_value=1, max_value=200_000)).filter(lambda t: t[0] != t[1]),
    max_size=25,
)
openings = st.tuples(*(st.integers(min_value=0, max_value=300_000) for _ in NAMES))


def _world(balances: tuple[int, ...], items: list[tuple[str, str, int]]) -> str:
    lines = ["name: prop", "start: 2026-11-25T08:00", "run_until: 2026-11-25T18:00",
             "participants:", '  - {name: ICBC, code: "102100099996"}', "customers:"]
    for n, (cid, fen) in enumerate(zip(NAMES, balances, strict=True)):
        lines.append(f'  - {{id: {cid}, bank: ICBC, account: "62220202000000{n:05d}", '
                     f'balance: "{format_fen(fen)}"}}')
    lines.append("events:")
    for n, (src, dst, fen) in enumerate(items):
        # several events share a minute: ties run in file order
        lines.append(f"  - {{at: 2026-11-25T09:{n // 3:02d}, do: transfer, id: p{n}, "
                     f'from: {src}, to: {dst}, amount: "{format_fen(fen)}"}}')
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(openings, transfers)
def test_intrabank_transfers_conserve_deposits(balances: tuple[int, ...],
                                                items: list[tuple[str, str, int]]) -> None:
    out = run_scenario(parse_scenario(_world(balances, items), "prop.yaml"), store="memory:")
    model = dict(zip(NAMES, balances, strict=True))
    for n, (src, dst, fen) in enumerate(items):
        payment = out["payments"][f"p{n}"]
        if model[src] >= fen:
            model[src] -= fen
            model[dst] += fen
            assert payment["status"] == "credited", payment
            assert payment["reason"] is None
        else:
            assert payment["status"] == "rejected", payment
            assert payment["reason"]["code"] == "AM04"
    assert len(out["payments"]) == len(items)
    final = {cid: int(v.replace(".", "")) for cid, v in out["balances"]["customers"].items()}
    assert all(v >= 0 for v in final.values()), final
    assert sum(final.values()) == sum(balances)
    assert final == model
    assert all(out["checks"].values()), out["checks"]


def test_year_missing_from_calendar_is_an_error_unless_fallback() -> None:
    text = (
        "name: far\n"
        "start: 2100-01-04T08:00\n"
        "run_until: 2100-01-05T18:00\n"
        "participants:\n"
        "  - {name: ICBC, code: \"102100099996\"}\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "far.yaml")
    (problem,) = info.value.problems
    assert problem.line == 3
    assert "2100" in problem.message and "stops at 2099" in problem.message
    assert "calendar.missing_year: weekends" in problem.message
    fallback = text.replace("participants:", "params: {calendar.missing_year: weekends}\n"
                                              "participants:")
    assert parse_scenario(fallback, "far.yaml").params["calendar.missing_year"] == "weekends"


def test_earmark_beyond_the_settlement_balance_is_invalid() -> None:
    text = (
        "name: e\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T18:00\n"
        "participants:\n"
        "  - {name: ICBC, code: \"102100099996\", settlement_balance: \"10.00\","
        " beps_earmark: \"6.00\", ibps_earmark: \"5.00\"}\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "e.yaml")
    (problem,) = info.value.problems
    assert problem.line == 5 and "11.00 > 10.00" in problem.message


def test_story_3_two_banks_settle_only_the_difference() -> None:
    path = Path(str(resources.files("qingsuan") / "scenarios" / "netting.yaml"))
    out = run_scenario(load_scenario(path), store="memory:")
    assert {v["status"] for v in out["payments"].values()} == {"settled"}
    (session,) = out["net"]["BEPS"]["sessions"]
    assert session["at"] == "2026-11-25T11:00:00+08:00"
    assert session["positions"] == {"BANKA": "-200.00", "BANKB": "200.00"}
    assert out["balances"]["settlement"] == {"BANKA": "9800.00", "BANKB": "10200.00"}
    assert out["balances"]["customers"] == {"a1": "700.00", "a2": "1100.00", "b1": "1300.00",
                                            "b2": "900.00"}
    assert all(out["checks"].values())


def test_reconciliation_check_finds_an_unexplained_suspense_entry() -> None:
    """对账: the suspense check is true for a clean run and false once a stray posting sits
    in a transit account."""
    from qingsuan.ledger import Transfer
    from qingsuan.sim.runner import Runner

    path = Path(str(resources.files("qingsuan") / "scenarios" / "hvps-queue.yaml"))
    runner = Runner(load_scenario(path), store="memory:")
    outcome = runner.run()
    assert outcome["checks"]["suspense_explained"] is True
    reg = runner.engine.registry
    ledger = runner.engine.ledger  # (the run closed its log: post straight into the books)
    stray = Transfer(10**9, reg.id("ICBC", "hvps_outgoing"), reg.id("ICBC", "equity"), 1)
    assert ledger.create_transfer(stray, ledger.last_timestamp_us).done
    assert runner.suspense_explained() is False


def test_routing_at_the_hvps_opening_and_cutoff_minutes_and_on_a_tiaoxiu_saturday() -> None:
    """Above the BEPS limit a counter transfer needs HVPS: sent at once while HVPS accepts
    payments, held (funds reserved) from the cut-off to the next opening; on a 调休
    Saturday HVPS is open."""
    events = [("before-cutoff", "2026-11-25T17:14:59"), ("at-cutoff", "2026-11-25T17:15:00"),
              ("before-open", "2026-11-25T20:29:59"), ("at-open", "2026-11-25T20:30:00")]
    lines = "".join(
        f"  - {{at: {at}, do: transfer, id: {eid}, channel: counter, from: alice, to: bob,"
        f" amount: \"60000.00\"}}\n" for eid, at in events)
    text = (
        "name: edges\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T23:00\n"
        "participants:\n"
        "  - {name: ICBC, code: \"102100099996\", settlement_balance: \"1000000.00\"}\n"
        "  - {name: CCB, code: \"105100000017\"}\n"
        "customers:\n"
        "  - {id: alice, bank: ICBC, account: \"6222020200000000014\", balance: \"300000.00\"}\n"
        "  - {id: bob, bank: CCB, account: \"6217000010000000029\"}\n"
        "events:\n" + lines)
    out = run_scenario(parse_scenario(text, "edges.yaml"), store="memory:")
    p = out["payments"]
    assert p["before-cutoff"]["history"][1] == {"at": "2026-11-25T17:14:59+08:00",
                                                "status": "settled"}
    for held in ("at-cutoff", "before-open"):
        assert p[held]["held_until"] == "2026-11-25T20:30:00+08:00"
        assert p[held]["history"][1]["at"] == "2026-11-25T20:30:00+08:00"
    assert "held_until" not in p["at-open"]
    assert out["balances"]["customers"] == {"alice": "60000.00", "bob": "240000.00"}
    assert all(out["checks"].values())
    saturday = text.replace("2026-11-25", "2026-10-10")
    sat = run_scenario(parse_scenario(saturday, "sat.yaml"), store="memory:")
    assert sat["payments"]["before-cutoff"]["status"] == "credited"
    assert "held_until" not in sat["payments"]["before-cutoff"]


def test_returns_restore_the_payer_to_the_fen() -> None:
    path = Path(str(resources.files("qingsuan") / "scenarios" / "returns.yaml"))
    out = run_scenario(load_scenario(path), store="memory:")
    p = out["payments"]
    assert {k: (v["status"], (v["reason"] or {}).get("code")) for k, v in p.items()
            if "/" not in k} == {
        "to-nowhere": ("returned", "AC01"), "to-closed": ("returned", "AC04"),
        "wrong-name": ("returned", "BE01"), "right-name": ("credited", None),
        "beps-to-closed": ("returned", "AC04"), "ibps-wrong-name": ("rejected", "BE01"),
        "beps-wrong-name": ("returned", "BE01")}
    assert p["to-nowhere/return"]["status"] == "settled"
    assert out["balances"]["customers"] == {"alice": "445000.00", "bob": "55000.00",
                                            "gone": "0.00"}
    assert out["balances"]["settlement"] == {"ICBC": "945000.00", "CCB": "1055000.00"}
    assert all(out["checks"].values())


def test_a_closed_account_holds_no_money() -> None:
    text = (
        "name: c\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T18:00\n"
        "participants:\n  - {name: ICBC, code: \"102100099996\"}\n"
        "customers:\n"
        "  - {id: a, bank: ICBC, account: \"6222020200000000014\", balance: \"1.00\","
        " closed: true}\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "c.yaml")
    (problem,) = info.value.problems
    assert "closed account holds no money" in problem.message


def test_a_credit_card_account_spends_down_to_its_limit() -> None:
    text = (
        "name: card\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T18:00\n"
        "participants:\n  - {name: ICBC, code: \"102100099996\"}\n"
        "customers:\n"
        "  - {id: card, bank: ICBC, account: \"6222020200000000014\","
        " credit_limit: \"500.00\"}\n"
        "  - {id: shop, bank: ICBC, account: \"6222020200000000022\"}\n"
        "events:\n"
        "  - {at: 2026-11-25T09:00, do: transfer, id: buy, channel: counter, from: card,"
        " to: shop, amount: \"499.99\"}\n"
        "  - {at: 2026-11-25T09:01, do: transfer, id: more, channel: counter, from: card,"
        " to: shop, amount: \"0.02\"}\n"
    )
    out = run_scenario(parse_scenario(text, "card.yaml"), store="memory:")
    assert out["payments"]["buy"]["status"] == "credited"
    assert out["payments"]["more"]["reason"]["code"] == "AM04"
    assert out["balances"]["customers"] == {"card": "-499.99", "shop": "499.99"}
