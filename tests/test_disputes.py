"""Disputes (差错处理): credit adjustments, chargebacks, representments (issue 6 item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qingsuan.cards.clearing import TO_ACQUIRER, TO_ISSUER, clear
from qingsuan.cards.files import parse_clearing_file
from qingsuan.cards.switch import CardSwitch, ChargebackReason, DisputeKind, DisputeRefusal
from qingsuan.clock import parse_time
from qingsuan.engine import replay
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import ScenarioError, hash_pin, load_scenario, parse_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1]
DEBIT_CARD = "6222020200000000014"
CREDIT_CARD = "6222020200000000022"

WORLD = """\
name: disputes
start: 2026-06-01T08:00
run_until: {until}
params:
{params}
participants:
  - {{name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}}
customers:
  - {{id: alice, bank: ICBC, account: "6222020200000000014", balance: "5000.00"}}
  - {{id: carol, bank: ICBC, account: "6222020200000000022", balance: "{carol}",
     credit_limit: "{limit}"}}
  - {{id: shop,  bank: CCB,  account: "6217000010000000037", balance: "2000.00",
     merchant: {{mid: "105290058120002", mcc: "5732", mdr: "0.0050"}}}}
cards:
  - {{pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}}
  - {{pan: "6222020200000000022", account: carol, kind: credit, pin: "654321"}}
terminals:
  - {{id: "ATM00001", kind: atm, bank: CCB, cash: "200000.00"}}
  - {{id: "POS00002", kind: pos, bank: CCB, merchant: shop}}
events:
"""


def world(events: str, *, until: str = "2026-06-30T12:00", carol: str = "0.00",
          limit: str = "20000.00", params: dict[str, str] | None = None) -> str:
    lines = "\n".join(f'  {k}: "{v}"' for k, v in (params or {}).items()) or \
        '  cards.fees: "off"'
    return WORLD.format(until=until, carol=carol, limit=limit, params=lines) + events


def run(events: str, **kw: Any) -> dict[str, Any]:
    return run_scenario(parse_scenario(world(events, **kw), "d.yaml"), store="memory:")


def ev(at: str, body: str) -> str:
    return f"  - {{at: 2026-{at}, {body}}}\n"


def buy(at: str = "06-01T10:00", pid: str = "order", amount: str = "1000.00",
        card: str = CREDIT_CARD) -> str:
    return ev(at, f'do: pos_purchase, id: {pid}, card: "{card}", terminal: POS00002, '
                  f'amount: "{amount}"')


def withdraw(at: str = "06-01T11:00", wid: str = "cash", amount: str = "500.00") -> str:
    return ev(at, f'do: atm_withdrawal, id: {wid}, card: "{DEBIT_CARD}", terminal: ATM00001, '
                  f'amount: "{amount}", pin: "123456"')


def dispute(at: str, did: str, kind: str, amount: str, target: str = "order") -> str:
    return ev(at, f'do: dispute, id: {did}, target: {target}, kind: {kind}, '
                  f'amount: "{amount}"')


def status(out: dict[str, Any], pid: str) -> tuple[str, str | None]:
    rec = out["payments"][pid]
    return rec["status"], (rec["reason"] or {}).get("code")


# ------------------------------------------------------------------------- the story


def test_the_dispute_story_balances_after_settlement() -> None:
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-disputes.yaml"),
                       store="memory:")
    p = out["payments"]
    for pid, kind in (("adjust", "credit_adjustment"), ("chargeback1", "first_chargeback"),
                      ("represent", "representment"), ("chargeback2", "second_chargeback")):
        assert p[pid]["kind"] == f"dispute:{kind}"
        assert [h["status"] for h in p[pid]["history"]] == ["accepted", "cleared", "settled"]
    assert p["chargeback1"]["history"][1]["at"] == "2026-06-15T23:00:00+08:00"
    assert p["chargeback2"]["history"][2]["at"] == "2026-07-13T09:00:00+08:00"  # a Monday
    assert status(out, "atm-chargeback") == ("refused", "not_allowed")
    assert "ATM withdrawal" in p["atm-chargeback"]["reason"]["message"]
    assert status(out, "chargeback2-again") == ("refused", "out_of_order")
    positions = [s["positions"] for s in out["net"]["CUPS"]["sessions"]]
    assert positions == [
        {"CCB": "1498.01", "CUPS": "0.98", "ICBC": "-1498.99"},  # the purchase and the ATM
        {"CCB": "-500.00", "ICBC": "500.00"},     # credit adjustment: CCB gives it back
        {"CCB": "-1000.00", "ICBC": "1000.00"},   # first chargeback
        {"CCB": "600.00", "ICBC": "-600.00"},     # representment
        {"CCB": "-600.00", "ICBC": "600.00"},     # second chargeback
    ]
    # Carol paid nothing in the end; Alice has her 500.00; the ATM's count is right again;
    # the shop lost the sale and paid its 0.5% MDR (5.00)
    assert out["balances"]["customers"] == {"alice": "5000.00", "carol": "0.00",
                                            "shop": "1995.00"}
    assert out["balances"]["terminals"] == {"ATM00001": "200000.00"}
    assert out["balances"]["settlement"] == {"ICBC": "1000001.01", "CCB": "999998.01",
                                             "CUPS": "0.98"}
    assert out["checks"] == {"books_balanced": True, "money_conserved": True,
                             "mirrors_match": True, "suspense_explained": True}


def test_the_story_replays_to_the_same_state(tmp_path: Path) -> None:
    url = str(tmp_path / "d.db")
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-disputes.yaml"), store=url)
    assert replay(url, world_systems()).state_hash().hex() == \
        out["log"]["state_hash"]


# ------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(("at", "accepted"), [
    ("09-29T10:00", True),    # 120 days after the clearing day 2026-06-01
    ("09-29T22:59", True),
    ("09-29T23:30", False),   # after the cut-off: clearing day 09-30, 121 days
    ("09-30T10:00", False),
])
def test_a_first_chargeback_within_120_days_of_the_clearing_day(at: str, accepted: bool
                                                                ) -> None:
    out = run(buy() + dispute(at, "cb", "first_chargeback", "100.00"),
              until=f"2026-{at[:5]}T23:59")
    if accepted:
        assert out["payments"]["cb"]["history"][0]["status"] == "accepted"
        assert out["payments"]["cb"]["reason"] is None
    else:
        assert status(out, "cb") == ("refused", "late")
        assert "121 days after the original's clearing day 2026-06-01" in \
            out["payments"]["cb"]["reason"]["message"]
        assert "cards.chargeback_days: 120" in out["payments"]["cb"]["reason"]["message"]


def test_replies_within_20_days_of_the_previous_step() -> None:
    events = (buy() + dispute("06-10T10:00", "cb1", "first_chargeback", "1000.00")
              + dispute("06-30T10:00", "rep", "representment", "1000.00")        # day 20
              + dispute("07-21T10:00", "cb2", "second_chargeback", "1000.00"))   # day 21
    out = run(events, until="2026-07-22T12:00")
    assert status(out, "rep") == ("settled", None)
    assert status(out, "cb2") == ("refused", "late")
    assert "the representment's clearing day 2026-06-30" in \
        out["payments"]["cb2"]["reason"]["message"]
    late = run(buy() + dispute("06-10T10:00", "cb1", "first_chargeback", "1000.00")
               + dispute("07-01T10:00", "rep", "representment", "1000.00"),
               until="2026-07-01T12:00")
    assert status(late, "rep") == ("refused", "late")


def test_deadlines_are_parameters() -> None:
    events = buy() + dispute("06-04T10:00", "cb", "first_chargeback", "10.00")
    out = run(events, until="2026-06-04T12:00",
              params={"cards.chargeback_days": "2", "cards.fees": "off"})
    assert status(out, "cb") == ("refused", "late")


# ------------------------------------------------------------------------- who, what, order


def test_chargebacks_are_not_for_debit_cards_or_atm_but_credit_adjustments_are() -> None:
    events = (buy(pid="debit-buy", amount="100.00", card=DEBIT_CARD) + withdraw()
              + dispute("06-02T10:00", "cb-debit", "first_chargeback", "100.00", "debit-buy")
              + dispute("06-02T10:01", "cb-atm", "first_chargeback", "100.00", "cash")
              + dispute("06-02T10:02", "adj-debit", "credit_adjustment", "30.00", "debit-buy")
              + dispute("06-02T10:03", "adj-atm", "credit_adjustment", "500.00", "cash")
              + dispute("06-02T10:04", "rep-atm", "representment", "10.00", "cash"))
    out = run(events, until="2026-06-03T12:00")
    assert status(out, "cb-debit") == ("refused", "not_allowed")
    assert "debit card" in out["payments"]["cb-debit"]["reason"]["message"]
    assert status(out, "cb-atm") == ("refused", "not_allowed")
    assert status(out, "rep-atm") == ("refused", "not_allowed")
    assert status(out, "adj-debit") == ("settled", None)
    assert status(out, "adj-atm") == ("settled", None)
    # Alice: -100 -500 +30 +500; the shop: 100 - 0.50 MDR - 30; the ATM found its 500.00
    assert out["balances"]["customers"]["alice"] == "4930.00"
    assert out["balances"]["customers"]["shop"] == "2069.50"
    assert out["balances"]["terminals"]["ATM00001"] == "200000.00"
    assert all(out["checks"].values())


def test_steps_in_order_only() -> None:
    events = (buy()
              + dispute("06-05T10:00", "rep0", "representment", "100.00")          # no cb yet
              + dispute("06-05T10:01", "cb2-0", "second_chargeback", "100.00")    # no rep yet
              + dispute("06-05T10:02", "cb1", "first_chargeback", "400.00")
              + dispute("06-05T10:03", "cb1-again", "first_chargeback", "100.00")
              + dispute("06-05T10:04", "cb2-1", "second_chargeback", "100.00")    # no rep yet
              + dispute("06-06T10:00", "rep", "representment", "400.00"))
    out = run(events, until="2026-06-08T12:00")  # settled on Monday
    assert status(out, "rep0") == ("refused", "out_of_order")
    assert "answers a first chargeback, and there is none" in \
        out["payments"]["rep0"]["reason"]["message"]
    assert status(out, "cb2-0") == ("refused", "out_of_order")
    assert status(out, "cb1")[0] == "settled"
    assert status(out, "cb1-again") == ("refused", "out_of_order")
    assert status(out, "cb2-1") == ("refused", "out_of_order")
    assert status(out, "rep")[0] == "settled"


def test_amounts_at_most_the_original_or_the_previous_step() -> None:
    events = (buy(amount="300.00")
              + dispute("06-02T10:00", "too-much", "first_chargeback", "300.01")
              + dispute("06-02T10:01", "cb1", "first_chargeback", "200.00")
              + dispute("06-03T10:00", "rep-big", "representment", "200.01")
              + dispute("06-03T10:01", "rep", "representment", "150.00")
              + dispute("06-04T10:00", "cb2-big", "second_chargeback", "150.01")
              + dispute("06-04T10:01", "cb2", "second_chargeback", "150.00")
              # given back so far: 200 - 150 + 150 = 200 of 300: 100.00 left to refund
              + ev("06-04T10:02", 'do: pos_refund, id: ref-big, target: order, '
                                  'amount: "100.01"')
              + ev("06-04T10:03", 'do: pos_refund, id: ref, target: order, '
                                  'amount: "100.00"')
              + dispute("06-04T10:04", "adj", "credit_adjustment", "0.01"))
    out = run(events, until="2026-06-05T12:00")
    for pid in ("too-much", "rep-big", "cb2-big", "adj"):
        assert status(out, pid) == ("refused", "amount"), pid
    assert "at most 300.00" in out["payments"]["too-much"]["reason"]["message"]
    assert "at most 200.00 (the first chargeback)" in \
        out["payments"]["rep-big"]["reason"]["message"]
    assert out["payments"]["ref-big"]["response_code"] == "13"
    assert out["payments"]["ref"]["response_code"] == "00"
    assert out["balances"]["customers"]["carol"] == "0.00"   # all 300.00 back
    # the shop: 300 - 1.50 MDR, then -200 +150 -150 -100
    assert out["balances"]["customers"]["shop"] == "1998.50"
    assert all(out["checks"].values())


def test_a_dispute_needs_a_cleared_original() -> None:
    events = (buy() + dispute("06-01T12:00", "early", "first_chargeback", "10.00")
              + buy("06-01T12:01", "gone", "20.00")
              + ev("06-01T12:02", "do: reversal, id: x, target: gone")
              + dispute("06-02T10:00", "of-reversed", "credit_adjustment", "10.00", "gone"))
    out = run(events, until="2026-06-02T12:00")
    assert status(out, "early") == ("refused", "not_cleared")
    assert status(out, "of-reversed") == ("refused", "invalid_original")


def test_a_representment_beyond_the_cardholders_account_becomes_a_receivable() -> None:
    """Carol's card has a 1,000.00 limit: bought 1000, charged back 1000 (she is at 0),
    spends 800 again, and the acquirer re-presents 1000: 200 fits her limit, 800 she owes."""
    events = (buy()
              + dispute("06-02T10:00", "cb1", "first_chargeback", "1000.00")
              + buy("06-02T11:00", "again", "800.00")
              + dispute("06-03T10:00", "rep", "representment", "1000.00"))
    text = world(events, until="2026-06-04T12:00", limit="1000.00")
    runner = Runner(parse_scenario(text, "d.yaml"), store="memory:")
    out = runner.run()
    assert status(out, "rep") == ("settled", None)
    assert out["balances"]["customers"]["carol"] == "-1000.00"
    assert runner.balance_fen("ICBC", "cardholder_receivable") == 80_000
    assert all(out["checks"].values())


# ------------------------------------------------------------------------- the switch


def test_switch_dispute_answers_retries_duplicates_and_refusals() -> None:
    runner = Runner(parse_scenario(world(""), "d.yaml"), store="memory:")
    runner.build_world()
    switch = runner.switch
    runner.clock.advance_to(parse_time("2026-06-01T10:00"))
    key = switch.request({
        "t": "0200", "2": CREDIT_CARD, "3": "000000", "4": "000000010000", "7": "0601100000",
        "11": "000001", "32": "CCB", "41": "POS00002", "49": "156",
        "37": "000000000001"})["key"]
    runner.clock.advance_to(parse_time("2026-06-01T23:00"))
    runner.engine.tick()  # the cut-off clears it
    assert switch.txns[key].status == "cleared"
    runner.clock.advance_to(parse_time("2026-06-02T10:00"))
    request = {"t": "0620", "32": "ICBC", "11": "000002", "7": "0602100000",
               "37": "000000000002", "original_key": key, "dispute": "first_chargeback",
               "4": "000000001000"}
    first = switch.dispute(request)
    assert first == {"t": "0630", "key": "ICBC|000002|0602100000", "status": "accepted"}
    assert switch.dispute(request) == first  # a true retry: booked once
    assert switch.dispute(dict(request, **{"4": "000000002000"}))["reason"] == \
        DisputeRefusal.DUPLICATE.code
    again = {**request, "11": "000003", "32": "CCB"}
    assert switch.dispute(again)["reason"] == "wrong_party"
    assert switch.dispute({**again, "11": "000004", "dispute": "refund"})["reason"] == \
        "unknown_kind"
    assert switch.dispute({**again, "11": "000005", "original_key": "x"})["reason"] == \
        "unknown_original"
    assert runner.balance_fen("ICBC", "customer:carol") == -10_000 + 1_000
    assert runner.books_balanced() and runner.money_conserved()


def test_clearing_kinds_for_dispute_items_carry_no_fees() -> None:
    r = clear([0, 0], [1, 1], [TO_ISSUER, TO_ACQUIRER], [1, 1], [10_000, 4_000],
              n_participants=3, switch=2)
    assert r.positions_fen.tolist() == [6_000, -6_000, 0]
    assert int(r.fees_paid_fen.sum()) == 0
    assert r.issuer_fee_net_fen.tolist() == [0, 0]


def test_dispute_items_are_in_the_clearing_files(tmp_path: Path) -> None:
    events = buy() + dispute("06-02T10:00", "cb1", "first_chargeback", "250.00")
    scenario = parse_scenario(world(events, until="2026-06-03T12:00"), "d.yaml")
    run_scenario(scenario, store="memory:", clearing_dir=tmp_path)
    _, icbc, _ = parse_clearing_file((tmp_path / "ICBC_20260602.txt").read_text())
    _, ccb, _ = parse_clearing_file((tmp_path / "CCB_20260602.txt").read_text())
    assert [(d.mti, d.amount_fen, d.fee_fen, d.direction) for d in icbc] == [
        ("0620", 25_000, 0, "C")]
    assert [(d.mti, d.direction, d.terminal_id) for d in ccb] == [("0620", "D", "POS00002")]
    assert icbc[0].pan == "622202****0022"


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("body", "marker", "words"), [
    ('id: d1, target: order, kind: refund_please, amount: "1.00"', "refund_please",
     "kind must be one of credit_adjustment"),
    ('id: d1, target: nope, kind: first_chargeback, amount: "1.00"', "nope",
     "not the id of an earlier pos_purchase or atm_withdrawal"),
])
def test_dispute_events_are_validated_with_the_line(body: str, marker: str, words: str
                                                    ) -> None:
    text = world(buy() + ev("06-02T10:00", f"do: dispute, {body}"))
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "d.yaml")
    (problem,) = info.value.problems
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "do: dispute" in t)
    assert (problem.file, problem.line) == ("d.yaml", line)
    assert words in problem.message
    assert marker in text.splitlines()[line - 1]


# ------------------------------------------------------------------------- retrievals (调单)


class Desk:
    """The switch of the dispute world, driven directly: the scenario's ``dispute`` event
    does not file retrieval steps (sim/scenario.py validates its own list of kinds)."""

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.runner = Runner(parse_scenario(world("", until="2026-12-31T12:00",
                                                  params=params), "d.yaml"), store="memory:")
        self.runner.build_world()
        self.switch = self.runner.switch
        self.stan = 0

    def at(self, when: str) -> None:
        self.runner.clock.advance_to(parse_time(f"2026-{when}"))
        self.runner.engine.tick()

    def _ref(self, when: str) -> tuple[str, str]:
        self.stan += 1
        return f"{self.stan:06d}", when[:2] + when[3:5] + when[6:8] + when[9:11] + "00"

    def buy(self, when: str = "06-01T10:00", card: str = CREDIT_CARD,
            amount_fen: int = 100_000, atm: bool = False) -> str:
        """A purchase (``atm``: a withdrawal), cleared at its day's cut-off: its key."""
        self.at(when)
        stan, f7 = self._ref(when)
        fields = {"t": "0200", "2": card, "3": "010000" if atm else "000000",
                  "4": f"{amount_fen:012d}", "7": f7, "11": stan, "32": "CCB",
                  "41": "ATM00001" if atm else "POS00002", "49": "156", "37": "0" * 6 + stan}
        if atm:
            fields["pin_hash"] = hash_pin(card, "123456").hex()
        answer = self.switch.request(fields)
        assert answer["39"] == "00", answer
        self.at(when[:5] + "T23:00")
        assert self.switch.txns[answer["key"]].status == "cleared"
        return answer["key"]

    def file(self, when: str, filer: str, kind: str, key: str, amount_fen: int = 100_000,
             reason: str | None = None) -> dict[str, str]:
        self.at(when)
        stan, f7 = self._ref(when)
        fields = {"t": "0620", "32": filer, "11": stan, "7": f7, "37": "0" * 6 + stan,
                  "original_key": key, "dispute": kind, "4": f"{amount_fen:012d}"}
        if reason is not None:
            fields["dispute_reason"] = reason
        return self.switch.dispute(fields)


def refused(answer: dict[str, str]) -> str:
    assert answer["status"] == "refused", answer
    return answer["reason"]


def test_a_retrieval_and_its_reply_move_no_money_then_the_chargeback_follows() -> None:
    desk = Desk()
    key = desk.buy()
    runner = desk.runner
    before = {(b, n): runner.balance_fen(b, n) for b, n in (
        ("ICBC", "customer:carol"), ("CCB", "customer:shop"), ("ICBC", "due_from_switch"),
        ("CCB", "due_to_merchants"), ("CCB", "due_to_switch"))}
    request = desk.file("06-05T10:00", "ICBC", "retrieval_request", key)
    assert request["status"] == "accepted"
    assert desk.file("06-05T10:01", "ICBC", "first_chargeback", key,
                     reason="not_recognised")["reason"] == "retrieval_needed"
    reply = desk.file("06-20T10:00", "CCB", "retrieval_reply", key)   # the 15th day
    assert reply["status"] == "accepted"
    assert desk.switch.txns[request["key"]].status == "answered"
    assert desk.switch.notices[-1][1:] == (request["key"], "answered")
    # nothing booked, nothing waits for a cut-off, nothing in the clearing day
    assert {k: runner.balance_fen(*k) for k in before} == before
    assert desk.switch.next_cutoff_us(parse_time("2026-06-20T10:00")) is None
    assert desk.switch.days_closed == ["2026-06-01"]
    # the documents came and the cardholder still disputes: the issuer charges back
    assert desk.file("06-21T10:00", "ICBC", "first_chargeback", key,
                     reason="not_recognised")["status"] == "accepted"
    assert runner.balance_fen("ICBC", "customer:carol") == 0
    # and the acquirer, which answered, may re-present
    assert desk.file("06-22T10:00", "CCB", "representment", key, 50_000)["status"] == \
        "accepted"
    assert runner.books_balanced()


def test_retrieval_refusals() -> None:
    desk = Desk()
    key = desk.buy()
    assert refused(desk.file("06-02T10:00", "CCB", "retrieval_request", key)) == \
        "wrong_party"
    answer = desk.file("06-02T10:01", "ICBC", "retrieval_reply", key)
    assert refused(answer) == "wrong_party"   # the filer is checked before the order
    answer = desk.file("06-02T10:02", "CCB", "retrieval_reply", key)
    assert refused(answer) == "out_of_order"
    assert desk.switch.txns[answer["key"]].note == \
        "a retrieval reply answers a retrieval request, and there is none"
    assert desk.file("06-02T10:03", "ICBC", "retrieval_request", key,
                     reason="pretty_please")["reason"] == "unknown_reason"
    assert refused(desk.file("06-02T10:04", "ICBC", "retrieval_request", key, 100_001)) == \
        "amount"
    assert desk.file("06-02T10:05", "ICBC", "retrieval_request", key)["status"] == \
        "accepted"
    answer = desk.file("06-02T10:06", "ICBC", "retrieval_request", key)
    assert refused(answer) == "out_of_order"
    assert "already a retrieval request" in desk.switch.txns[answer["key"]].note
    answer = desk.file("06-23T10:00", "CCB", "retrieval_reply", key)
    assert refused(answer) == "late"
    assert desk.switch.txns[answer["key"]].note == (
        "retrieval reply filed on clearing day 2026-06-23, 21 days after the retrieval "
        "request's clearing day 2026-06-02 (cards.dispute_reply_days: 20)")
    # a retrieval after the first chargeback; one 121 days after the original
    charged = desk.buy("06-24T10:00", amount_fen=20_000)
    old = desk.buy("06-25T10:00", amount_fen=30_000)
    assert desk.file("06-26T10:00", "ICBC", "first_chargeback", charged, 20_000,
                     reason="not_received")["status"] == "accepted"
    assert refused(desk.file("06-26T10:01", "ICBC", "retrieval_request", charged,
                             20_000)) == "out_of_order"
    answer = desk.file("10-24T10:00", "ICBC", "retrieval_request", old, 30_000)
    assert refused(answer) == "late"
    assert "121 days after the original's clearing day 2026-06-25 " \
           "(cards.chargeback_days: 120)" in desk.switch.txns[answer["key"]].note
    assert desk.runner.books_balanced()


def test_a_chargeback_for_documents_waits_for_the_reply_or_its_deadline() -> None:
    desk = Desk()
    key = desk.buy()
    # without a retrieval, only the reasons that need no documents
    answer = desk.file("06-02T10:00", "ICBC", "first_chargeback", key, reason="amount_differs")
    assert refused(answer) == "retrieval_needed"
    assert "files a retrieval request (调单) first" in desk.switch.txns[answer["key"]].note
    desk.file("06-02T10:01", "ICBC", "retrieval_request", key)
    answer = desk.file("06-22T10:00", "ICBC", "first_chargeback", key,
                       reason="amount_differs")   # the acquirer may still reply today
    assert refused(answer) == "retrieval_needed"
    assert "until clearing day 2026-06-22 (cards.dispute_reply_days: 20)" in \
        desk.switch.txns[answer["key"]].note
    # no reply by its deadline: the issuer charges back, and the acquirer cannot re-present
    assert desk.file("06-23T10:00", "ICBC", "first_chargeback", key,
                     reason="amount_differs")["status"] == "accepted"
    answer = desk.file("06-24T10:00", "CCB", "representment", key)
    assert refused(answer) == "forfeited"
    assert "retrieval request of clearing day 2026-06-02" in desk.switch.txns[
        answer["key"]].note
    assert desk.runner.books_balanced()


@pytest.mark.parametrize("reason", [None, "not_received", "duplicate",
                                    "credit_not_processed"])
def test_other_reasons_need_no_retrieval(reason: str | None) -> None:
    desk = Desk()
    key = desk.buy()
    assert desk.file("06-02T10:00", "ICBC", "first_chargeback", key,
                     reason=reason)["status"] == "accepted"
    assert desk.file("06-03T10:00", "CCB", "representment", key)["status"] == "accepted"


def test_a_retrieval_gives_the_documents_chargeback_its_reply_time() -> None:
    """Filed late in the 120 days, a retrieval still leads to a chargeback: within
    ``cards.dispute_reply_days`` of the reply (or of the reply's deadline)."""
    desk = Desk()
    key = desk.buy()                                                    # cleared 06-01
    other = desk.buy("06-02T10:00", amount_fen=20_000)
    desk.file("09-24T10:00", "ICBC", "retrieval_request", key)         # day 115
    desk.file("09-25T10:00", "ICBC", "retrieval_request", other, 20_000)   # day 115
    desk.file("10-04T10:00", "CCB", "retrieval_reply", key)            # day 125
    assert refused(desk.file("10-05T10:00", "ICBC", "first_chargeback", key,
                             reason="not_received")) == "late"          # no documents
    assert desk.file("10-24T10:00", "ICBC", "first_chargeback", key,  # 20 after the reply
                     reason="not_recognised")["status"] == "accepted"
    answer = desk.file("11-05T10:00", "ICBC", "first_chargeback", other, 20_000,
                       reason="not_recognised")   # unanswered: 10-15 was the reply's last day
    assert refused(answer) == "late"
    assert desk.switch.txns[answer["key"]].note == (
        "first chargeback filed on clearing day 2026-11-05, 156 days after the original's "
        "clearing day 2026-06-02 (cards.chargeback_days: 120) and 21 days after the last "
        "day for the retrieval reply 2026-10-15 (cards.dispute_reply_days: 20)")


def test_retrievals_are_for_debit_cards_and_atm_withdrawals_too() -> None:
    desk = Desk()
    cash = desk.buy(card=DEBIT_CARD, amount_fen=50_000, atm=True)
    debit = desk.buy("06-02T10:00", card=DEBIT_CARD, amount_fen=10_000)
    for key, amount, m in ((cash, 50_000, "00"), (debit, 10_000, "01")):
        assert desk.file(f"06-03T10:{m}", "ICBC", "retrieval_request", key,
                         amount)["status"] == "accepted"
    for key, amount, m in ((cash, 50_000, "00"), (debit, 10_000, "01")):
        assert desk.file(f"06-04T10:{m}", "CCB", "retrieval_reply", key,
                         amount)["status"] == "accepted"
    for key, amount, m in ((cash, 50_000, "00"), (debit, 10_000, "01")):
        answer = desk.file(f"06-05T10:{m}", "ICBC", "first_chargeback", key, amount,
                           reason="not_recognised")
        assert refused(answer) == "not_allowed"
        assert "(only a credit adjustment or a retrieval is)" in \
            desk.switch.txns[answer["key"]].note


def test_the_reply_deadline_is_a_parameter_and_the_state_survives_a_restart() -> None:
    desk = Desk({"cards.dispute_reply_days": "5", "cards.fees": "off"})
    key = desk.buy()
    request = desk.file("06-02T10:00", "ICBC", "retrieval_request", key)
    assert refused(desk.file("06-08T10:00", "CCB", "retrieval_reply", key)) == "late"
    assert desk.file("06-08T10:01", "ICBC", "first_chargeback", key,
                     reason="not_recognised")["status"] == "accepted"
    state = desk.switch.dump_state()
    again = CardSwitch()
    again.load_state(state)
    assert again.dump_state() == state
    assert again.txns[request["key"]].status == "accepted"   # never answered
    assert next(iter(again.txns.values())).status == "cleared"


def test_dispute_kinds_and_reasons_are_one_vocabulary() -> None:
    assert [k.value for k in DisputeKind][:1] == ["credit_adjustment"]
    assert {k.value for k in DisputeKind} >= {"retrieval_request", "retrieval_reply"}
    assert (DisputeKind.RETRIEVAL_REQUEST.filer, DisputeKind.RETRIEVAL_REPLY.filer) == (
        "issuer", "acquirer")
    assert not DisputeKind.RETRIEVAL_REPLY.moves_money
    assert DisputeKind.RETRIEVAL_REPLY.previous is DisputeKind.RETRIEVAL_REQUEST
    assert {r.value for r in ChargebackReason if r.needs_documents} == {
        "not_recognised", "amount_differs"}
