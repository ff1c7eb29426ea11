"""Pre-authorisation (预授权, 0100/0110): the hold, its cancel (预授权撤销), its completion
(预授权完成), reversals, expiry, clearing like a purchase, replay (docs/CARDS.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qingsuan.cards.files import parse_clearing_file
from qingsuan.cards.switch import CardSwitch
from qingsuan.clock import parse_time, to_beijing
from qingsuan.engine import replay
from qingsuan.ledger import PendingState
from qingsuan.sim.runner import Runner, run_scenario
from qingsuan.sim.scenario import ScenarioError, hash_pin, load_scenario, parse_scenario
from qingsuan.world import world_systems

ROOT = Path(__file__).resolve().parents[1]
ALICE = "6222020200000000014"   # ICBC debit, 2,000.00, PIN 123456
BOB = "6222020200000000022"     # ICBC credit, limit 5,000.00, PIN 654321
DAN = "6217000010000000045"     # CCB debit (on-us at the hotel), 500.00
CHECKS = {"books_balanced": True, "money_conserved": True, "mirrors_match": True,
          "suspense_explained": True}
DAY_US = 86_400_000_000

WORLD = """\
name: preauth
start: 2026-11-25T08:00
run_until: {until}
{params}participants:
  - {{name: ICBC, code: "102100099996", settlement_balance: "1000000.00"}}
  - {{name: CCB,  code: "105100000017", settlement_balance: "1000000.00"}}
customers:
  - {{id: alice, bank: ICBC, account: "6222020200000000014", balance: "2000.00"}}
  - {{id: bob,   bank: ICBC, account: "6222020200000000022", balance: "0.00",
     credit_limit: "5000.00"}}
  - {{id: dan,   bank: CCB,  account: "6217000010000000045", balance: "500.00"}}
  - {{id: hotel, bank: CCB,  account: "6217000010000000037", balance: "0.00",
     merchant: {{mid: "105290070110001", mcc: "7011", mdr: "0.0060"}}}}
  - {{id: shop,  bank: CCB,  account: "6217000010000000052", balance: "0.00",
     merchant: {{mid: "105290054110001", mcc: "5411", mdr: "0.0060"}}}}
cards:
  - {{pan: "6222020200000000014", account: alice, kind: debit, pin: "123456"}}
  - {{pan: "6222020200000000022", account: bob, kind: credit, pin: "654321"}}
  - {{pan: "6217000010000000045", account: dan, kind: debit, pin: "111111"}}
terminals:
  - {{id: "POS00001", kind: pos, bank: CCB, merchant: hotel}}
  - {{id: "POS00002", kind: pos, bank: CCB, merchant: shop}}
  - {{id: "ATM00001", kind: atm, bank: CCB, cash: "100000.00"}}
events:
"""
PINS = {ALICE: "123456", BOB: "654321", DAN: "111111"}


def world(events: str = "", *, until: str = "2026-11-27T12:00",
          params: dict[str, str] | None = None) -> str:
    block = "params:\n" + "".join(f'  {k}: "{v}"\n' for k, v in params.items()) \
        if params else ""
    return WORLD.format(until=until, params=block) + events


def run(events: str, **kw: Any) -> dict[str, Any]:
    return run_scenario(parse_scenario(world(events, **kw), "preauth.yaml"), store="memory:")


def ev(at: str, body: str) -> str:
    return f"  - {{at: 2026-{at}, {body}}}\n"


def statuses(out: dict[str, Any], pid: str) -> list[str]:
    return [h["status"] for h in out["payments"][pid]["history"]]


# ------------------------------------------------------------------------- the desk


class Desk:
    """The switch of a built world, driven request by request on the virtual clock."""

    def __init__(self, params: dict[str, str] | None = None) -> None:
        self.runner = Runner(parse_scenario(world(params=params), "preauth.yaml"),
                             store="memory:")
        self.runner.build_world()
        self.switch = self.runner.switch
        self.ledger = self.runner.engine.ledger
        self.stan = 0

    def at(self, when: str) -> None:
        self.runner.clock.advance_to(parse_time(when))

    def tick(self, at_us: int) -> None:
        self.runner.clock.advance_to(at_us)
        self.runner.engine.tick()

    def send(self, mti: str, proc: str, **extra: str) -> dict[str, str]:
        self.stan += 1
        now = self.runner.clock.now_us()
        fields = {"t": mti, "3": f"{proc}0000", "7": to_beijing(now).strftime("%m%d%H%M%S"),
                  "11": f"{self.stan:06d}", "32": "CCB", "41": "POS00001", "49": "156",
                  "37": f"{self.stan:012d}"}
        fields.update(extra)
        return self.switch.request(fields)

    def preauth(self, amount_fen: int, card: str = ALICE, *, pin: bool = True,
                **extra: str) -> dict[str, str]:
        fields = {"2": card, "4": f"{amount_fen:012d}", **extra}
        if pin:
            fields["pin_hash"] = hash_pin(card, PINS[card]).hex()
        return self.send("0100", "03", **fields)

    def cancel(self, key: str, **extra: str) -> dict[str, str]:
        return self.send("0100", "20", original_key=key, **extra)

    def complete(self, key: str, amount_fen: int, mti: str = "0200", **extra: str
                 ) -> dict[str, str]:
        return self.send(mti, "00", original_key=key, **{"4": f"{amount_fen:012d}",
                                                          "25": "06", **extra})

    def purchase(self, amount_fen: int, card: str = ALICE) -> dict[str, str]:
        return self.send("0200", "00", **{"2": card, "4": f"{amount_fen:012d}",
                                          "pin_hash": hash_pin(card, PINS[card]).hex()})

    def reverse(self, key: str) -> dict[str, str]:
        self.stan += 1
        return self.switch.request({"t": "0400", "11": f"{self.stan:06d}",
                                    "original_key": key})

    def void(self, key: str) -> dict[str, str]:
        return self.send("0200", "20", original_key=key)

    def account(self, bank: str, name: str) -> tuple[int, int]:
        """(posted, available) of an account, fen."""
        b = self.ledger.balance(self.runner.registry.id(bank, name))
        return b.posted_fen, b.available_fen

    def held(self, bank: str = "ICBC") -> int:
        """What is reserved on the issuer's "due to switch" (its open holds)."""
        return self.ledger.balance(self.runner.registry.id(bank, "due_to_switch")
                                   ).credits_pending_fen

    def status(self, key: str) -> str:
        return self.switch.txns[key].status


# ------------------------------------------------------------------------- the hold


def test_a_preauth_holds_the_amount_available_drops_posted_does_not() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    answer = desk.preauth(100_000)
    assert (answer["t"], answer["39"]) == ("0110", "00")
    key = answer["key"]
    assert desk.status(key) == "authorised"
    assert desk.account("ICBC", "customer:alice") == (200_000, 100_000)
    assert desk.held() == 100_000
    txn = desk.switch.txns[key]
    assert desk.ledger.pending_state(txn.hold_id) is PendingState.PENDING
    assert txn.expires_us == parse_time("2026-11-25T15:00") + 30 * DAY_US
    # nothing at the acquirer yet, nothing owed between the banks
    assert desk.account("CCB", "due_to_merchants") == (0, 0)
    assert desk.account("CCB", "due_from_switch") == (0, 0)
    assert desk.account("ICBC", "due_to_switch")[0] == 0
    # the hold counts against what she may still spend
    assert desk.purchase(100_001)["39"] == "51"
    assert desk.purchase(100_000)["39"] == "00"
    assert desk.account("ICBC", "customer:alice") == (100_000, 0)


def test_the_issuer_checks_a_preauth_like_a_purchase() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    assert desk.preauth(200_001)["39"] == "51"                       # funds
    assert desk.preauth(0)["39"] == "13"                             # amount
    assert desk.preauth(1_000, "6222020200000000015", pin=False)["39"] == "14"  # Luhn
    assert desk.preauth(1_000, "4111111111111111", pin=False)["39"] == "15"  # BIN
    assert desk.preauth(1_000, **{"41": "ATM00001"})["39"] == "12"   # not at an ATM
    assert desk.preauth(1_000, pin=False, **{"pin_hash": "00" * 32})["39"] == "55"  # PIN
    # a debit card above the no-PIN limit needs its PIN (cards.pos_no_pin_limit 1,000.00)
    assert desk.preauth(100_001, pin=False)["39"] == "55"
    assert desk.preauth(100_000, pin=False)["39"] == "00"
    # a credit card within its limit (its account may go to -5,000.00)
    assert desk.preauth(500_000, BOB, pin=False)["39"] == "00"
    assert desk.preauth(1, BOB, pin=False)["39"] == "51"
    assert desk.held() == 600_000
    assert desk.account("ICBC", "customer:bob") == (0, -500_000)


def test_a_preauth_while_the_issuer_is_down_is_91_and_holds_nothing() -> None:
    desk = Desk(params={"cards.standin": "on"})
    desk.at("2026-11-25T15:00")
    desk.switch.fault("ICBC", "down")
    assert desk.preauth(10_000, pin=False)["39"] == "91"  # no stand-in for a hold
    assert desk.held() == 0


# ------------------------------------------------------------------------- completion


def test_completion_within_the_tolerance_posts_the_hold_and_the_difference() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    desk.at("2026-11-26T11:00")
    assert desk.complete(key, 115_001)["39"] == "13"   # above 1,000.00 x 1.15
    assert desk.status(key) == "authorised" and desk.held() == 100_000
    assert desk.account("ICBC", "customer:alice") == (200_000, 100_000)
    answer = desk.complete(key, 115_000)                # exactly 115%
    assert (answer["t"], answer["39"]) == ("0210", "00")
    assert answer["key"] != key                         # a new transaction
    assert desk.status(key) == "completed"
    assert desk.status(answer["key"]) == "approved"
    assert desk.ledger.pending_state(desk.switch.txns[key].hold_id) is PendingState.POSTED
    assert desk.account("ICBC", "customer:alice") == (85_000, 85_000)
    assert desk.held() == 0
    assert desk.account("ICBC", "due_to_switch") == (115_000, 115_000)
    assert desk.account("CCB", "due_from_switch") == (115_000, 115_000)
    assert desk.account("CCB", "due_to_merchants") == (115_000, 115_000)
    # it is done: a second completion, a cancel, a reversal of the pre-auth are 12
    assert desk.complete(key, 1_000)["39"] == "12"
    assert desk.cancel(key)["39"] == "12"
    assert desk.reverse(key)["39"] == "12"


def test_completion_below_the_hold_releases_the_rest() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    assert desk.complete(key, 70_000)["39"] == "00"
    assert desk.account("ICBC", "customer:alice") == (130_000, 130_000)
    assert desk.held() == 0
    assert desk.account("CCB", "due_to_merchants") == (70_000, 70_000)


def test_the_tolerance_is_a_parameter() -> None:
    desk = Desk(params={"cards.preauth_tolerance": "0"})
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    assert desk.complete(key, 100_001)["39"] == "13"
    assert desk.complete(key, 100_000)["39"] == "00"


def test_completion_above_the_hold_without_the_funds_is_51_and_posts_nothing() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    assert desk.purchase(90_000)["39"] == "00"         # 100.00 left to spend
    before = desk.ledger.transfer_count
    assert desk.complete(key, 110_001)["39"] == "51"   # 100.01 above the hold
    assert desk.ledger.transfer_count == before
    assert desk.status(key) == "authorised" and desk.held() == 100_000
    assert desk.account("ICBC", "customer:alice") == (110_000, 10_000)
    assert desk.account("CCB", "due_to_merchants") == (90_000, 90_000)
    assert desk.complete(key, 110_000)["39"] == "00"   # exactly what she has
    assert desk.account("ICBC", "customer:alice") == (0, 0)
    assert desk.account("CCB", "due_to_merchants") == (200_000, 200_000)


def test_completion_advice_0220_is_treated_the_same() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    answer = desk.complete(key, 100_000, mti="0220")
    assert (answer["t"], answer["39"]) == ("0230", "00")
    assert desk.switch.txns[answer["key"]].mti == "0220"
    assert desk.account("ICBC", "customer:alice") == (100_000, 100_000)


def test_completion_must_name_an_open_preauth_of_the_same_merchant_and_card() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    buy = desk.purchase(1_000)["key"]
    assert desk.complete("CCB|999999|1125150000", 1_000)["39"] == "25"  # unknown
    assert desk.complete(buy, 1_000)["39"] == "12"                       # not a pre-auth
    assert desk.complete(key, 1_000, **{"41": "POS00002"})["39"] == "12"  # another shop
    assert desk.complete(key, 1_000, **{"2": BOB})["39"] == "12"          # another card
    assert desk.complete(key, 1_000, **{"25": "00"})["39"] == "12"        # not a completion
    assert desk.complete(key, 0)["39"] == "13"
    assert desk.status(key) == "authorised" and desk.held() == 100_000


# ------------------------------------------------------------------------- cancel, reversal


def test_cancel_releases_the_hold_and_a_true_retry_gets_the_same_answer() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    desk.at("2026-11-25T18:00")
    first = {"t": "0100", "3": "200000", "7": "1125180000", "11": "000100", "32": "CCB",
             "41": "POS00001", "4": f"{100_000:012d}", "original_key": key}
    answer = desk.switch.request(first)
    assert (answer["t"], answer["39"]) == ("0110", "00")
    assert desk.status(key) == "cancelled"
    assert desk.status(answer["key"]) == "done"
    assert desk.account("ICBC", "customer:alice") == (200_000, 200_000)
    assert desk.held() == 0
    assert desk.ledger.pending_state(desk.switch.txns[key].hold_id) is PendingState.VOIDED
    count = desk.ledger.transfer_count
    assert desk.switch.request(dict(first)) == answer           # a true retry: 00 again
    assert desk.switch.request({**first, "37": "1"})["39"] == "94"  # same key, other body
    assert desk.cancel(key)["39"] == "12"                       # a new cancel: not open
    assert desk.complete(key, 1_000)["39"] == "12"              # completion after cancel
    assert desk.reverse(key)["39"] == "00"                      # nothing left to release
    assert desk.status(key) == "cancelled"
    assert desk.ledger.transfer_count == count


def test_cancel_rules() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    assert desk.cancel("CCB|999999|1125150000")["39"] == "25"
    assert desk.cancel(key, **{"4": f"{99_999:012d}"})["39"] == "13"   # not the amount held
    assert desk.cancel(key, **{"41": "POS00002"})["39"] == "12"        # another shop
    assert desk.held() == 100_000
    assert desk.cancel(key, **{"4": "000000000000"})["39"] == "00"     # 0: the amount held
    assert desk.held() == 0
    key = desk.preauth(100_000)["key"]
    cancel = desk.cancel(key)                                          # amount defaults
    assert cancel["39"] == "00" and desk.held() == 0
    assert desk.reverse(cancel["key"])["39"] == "12"                   # a cancel is final


def test_reversal_of_a_preauth_releases_the_hold_and_twice_changes_nothing() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    answer = desk.reverse(key)
    assert (answer["t"], answer["39"]) == ("0410", "00")
    assert desk.status(key) == "reversed"
    assert desk.account("ICBC", "customer:alice") == (200_000, 200_000)
    assert desk.held() == 0
    count = desk.ledger.transfer_count
    assert desk.reverse(key)["39"] == "00"
    assert desk.ledger.transfer_count == count
    assert desk.account("ICBC", "customer:alice") == (200_000, 200_000)
    assert desk.complete(key, 1_000)["39"] == "12"
    assert desk.cancel(key)["39"] == "12"


def test_reversal_or_void_of_a_completion_undoes_it_and_the_hold_stays_gone() -> None:
    for undo in ("reverse", "void"):
        desk = Desk()
        desk.at("2026-11-25T15:00")
        key = desk.preauth(100_000)["key"]
        done = desk.complete(key, 108_000)["key"]
        answer = getattr(desk, undo)(done)
        assert answer["39"] == "00", undo
        assert desk.status(done) == "reversed"
        assert desk.status(key) == "completed"
        assert desk.account("ICBC", "customer:alice") == (200_000, 200_000)
        assert desk.held() == 0
        assert desk.account("CCB", "due_to_merchants") == (0, 0)
        assert desk.account("ICBC", "due_to_switch") == (0, 0)
        assert desk.complete(key, 1_000)["39"] == "12"


def test_a_completion_can_be_refunded_like_a_purchase() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    done = desk.complete(key, 108_000)["key"]
    refund = desk.send("0220", "20", original_key=done, **{"4": f"{8_000:012d}"})
    assert (refund["t"], refund["39"]) == ("0230", "00")
    assert desk.account("ICBC", "customer:alice") == (100_000, 100_000)
    assert desk.switch.txns[done].refunded_fen == 8_000
    assert desk.void(done)["39"] == "12"                  # partly refunded: no void


# ------------------------------------------------------------------------- expiry


def test_the_hold_expires_after_preauth_days_on_a_tick() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    expires = parse_time("2026-11-25T15:00") + 30 * DAY_US
    assert desk.switch.next_preauth_expiry_us(parse_time("2026-11-25T15:00")) == expires
    desk.tick(expires - 1)
    assert desk.status(key) == "authorised" and desk.held() == 100_000
    assert desk.account("ICBC", "customer:alice") == (200_000, 100_000)
    desk.tick(expires)
    assert desk.status(key) == "expired"
    assert (expires, key, "expired") in desk.switch.notices
    assert desk.ledger.pending_state(desk.switch.txns[key].hold_id) is PendingState.EXPIRED
    assert desk.account("ICBC", "customer:alice") == (200_000, 200_000)
    assert desk.held() == 0
    assert desk.switch.next_preauth_expiry_us(expires) is None
    assert desk.complete(key, 1_000)["39"] == "12"
    assert desk.cancel(key)["39"] == "12"
    assert desk.reverse(key)["39"] == "00"     # the hold is gone already: nothing to do
    assert desk.status(key) == "expired"


def test_preauth_days_is_a_parameter_and_a_request_sees_the_expiry_without_a_tick() -> None:
    desk = Desk(params={"cards.preauth_days": "3"})
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    desk.at("2026-11-28T14:59")
    assert desk.complete(key, 1_000, **{"11": "000050"})["39"] == "00"
    key2 = desk.preauth(50_000)["key"]
    desk.at("2026-12-01T14:59")
    assert desk.status(key2) == "authorised"
    desk.at("2026-12-01T15:00")                 # 3 days later, no tick in between
    assert desk.complete(key2, 1_000)["39"] == "12"
    assert desk.status(key2) == "expired"
    assert desk.held() == 0


def test_open_holds_survive_a_snapshot_of_the_switch() -> None:
    desk = Desk()
    desk.at("2026-11-25T15:00")
    key = desk.preauth(100_000)["key"]
    desk.cancel(desk.preauth(20_000)["key"])
    restored = CardSwitch()
    restored.load_state(desk.switch.dump_state())
    assert restored.dump_state() == desk.switch.dump_state()
    assert restored.next_preauth_expiry_us(0) == desk.switch.txns[key].expires_us
    assert restored.txns[key].hold_id == desk.switch.txns[key].hold_id


# ------------------------------------------------------------------------- scenarios


def hotel(completion: str) -> str:
    return (ev("11-25T15:00", f'do: preauth, id: h1, card: "{ALICE}", terminal: POS00001, '
                              'amount: "1000.00", pin: "123456"')
            + ev("11-26T11:00", completion))


def test_the_completion_clears_exactly_like_a_purchase_of_the_same_amount(
        tmp_path: Path) -> None:
    pre = Runner(parse_scenario(world(hotel(
        'do: preauth_completion, id: c1, target: h1, amount: "1080.00"')), "p.yaml"),
        store="memory:")
    out_pre = pre.run(tmp_path / "pre")
    buy = Runner(parse_scenario(world(
        ev("11-26T11:00", f'do: pos_purchase, id: c1, card: "{ALICE}", terminal: POS00001, '
                          'amount: "1080.00", pin: "123456"')), "b.yaml"), store="memory:")
    out_buy = buy.run(tmp_path / "buy")
    c1 = out_pre["payments"]["c1"]
    assert c1["kind"] == "preauth_completion" and c1["system"] == "CUPS"
    assert statuses(out_pre, "c1") == ["approved", "cleared", "settled"]
    assert statuses(out_pre, "c1") == statuses(out_buy, "c1")
    assert [h["at"] for h in c1["history"]] == \
        [h["at"] for h in out_buy["payments"]["c1"]["history"]]
    assert statuses(out_pre, "h1") == ["approved", "completed"]
    # 1,080.00 by a debit card: issuer fee 3.78, network fee 0.35 a side, MDR 6.48
    session = {"CCB": "1075.87", "CUPS": "0.70", "ICBC": "-1076.57"}
    assert out_pre["net"]["CUPS"]["sessions"][0]["positions"] == session
    assert out_buy["net"]["CUPS"]["sessions"][0]["positions"] == session
    assert out_pre["balances"] == out_buy["balances"]
    assert out_pre["balances"]["customers"]["hotel"] == "1073.52"
    assert out_pre["balances"]["customers"]["alice"] == "920.00"
    for bank in ("ICBC", "CCB"):
        name = f"{bank}_20261126.txt"
        _, pre_lines, pre_trailer = parse_clearing_file((tmp_path / "pre" / name).read_text())
        _, buy_lines, buy_trailer = parse_clearing_file((tmp_path / "buy" / name).read_text())
        assert [(d.amount_fen, d.fee_fen, d.direction, d.mti) for d in pre_lines] == \
            [(d.amount_fen, d.fee_fen, d.direction, d.mti) for d in buy_lines]
        assert pre_trailer == buy_trailer
    assert out_pre["checks"] == CHECKS and out_buy["checks"] == CHECKS


def test_an_open_hold_at_the_end_is_explained_and_money_is_conserved() -> None:
    out = run(ev("11-25T15:00", f'do: preauth, id: h1, card: "{ALICE}", terminal: POS00001, '
                                'amount: "1000.00"')
              + ev("11-25T15:01", f'do: atm_balance_inquiry, id: bal, card: "{ALICE}", '
                                  'terminal: ATM00001, pin: "123456"'),
              until="2026-11-26T12:00")
    assert statuses(out, "h1") == ["approved"]
    assert out["payments"]["h1"]["kind"] == "preauth"
    assert out["inquiries"]["bal"]["balance"] == "1000.00"   # available: 2,000.00 - hold
    assert out["balances"]["customers"]["alice"] == "2000.00"  # booked: unchanged
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "1000000.00",
                                             "CUPS": "0.00"}
    assert out["net"]["CUPS"]["sessions"] == []              # a pre-auth is not cleared
    assert out["checks"] == CHECKS


def test_scenario_cancel_reversal_and_refusals() -> None:
    out = run(ev("11-25T15:00", f'do: preauth, id: h1, card: "{ALICE}", terminal: POS00001, '
                                'amount: "500.00"')
              + ev("11-25T15:05", f'do: preauth, id: h2, card: "{BOB}", terminal: POS00001, '
                                  'amount: "800.00"')
              + ev("11-25T15:10", f'do: preauth, id: h3, card: "{DAN}", terminal: POS00001, '
                                  'amount: "300.00"')
              + ev("11-25T16:00", "do: preauth_cancel, id: x1, target: h1")
              + ev("11-25T16:01", "do: preauth_cancel, id: x1b, target: h1")
              + ev("11-25T16:02", 'do: preauth_completion, id: c1, target: h1, '
                                  'amount: "500.00"')
              + ev("11-25T16:03", "do: reversal, id: r2, target: h2")
              + ev("11-25T16:04", "do: reversal, id: r2b, target: h2")
              + ev("11-25T16:05", 'do: preauth_completion, id: c3b, target: h3, '
                                  'amount: "345.01"')
              + ev("11-25T16:06", 'do: preauth_completion, id: c3, target: h3, '
                                  'amount: "345.00"')
              + ev("11-25T16:07", "do: reversal, id: r3, target: c3"))
    p = out["payments"]
    assert statuses(out, "h1") == ["approved", "cancelled"]
    assert (p["x1"]["kind"], p["x1"]["status"], p["x1"]["response_code"]) == \
        ("preauth_cancel", "approved", "00")
    assert (p["x1b"]["status"], p["x1b"]["response_code"]) == ("declined", "12")
    assert (p["c1"]["status"], p["c1"]["response_code"]) == ("declined", "12")
    assert statuses(out, "h2") == ["approved", "reversed"]
    assert [a["ok"] for a in out["actions"]] == [True, True, True]
    # Dan's on-us card: 345.00 is 115% of 300.00; 345.01 is 13; the completion reversed
    assert statuses(out, "h3") == ["approved", "completed"]
    assert statuses(out, "c3") == ["approved", "reversed"]
    assert (p["c3b"]["status"], p["c3b"]["response_code"]) == ("declined", "13")
    assert out["balances"]["customers"] == {"alice": "2000.00", "bob": "0.00",
                                            "dan": "500.00", "hotel": "0.00", "shop": "0.00"}
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "1000000.00",
                                             "CUPS": "0.00"}
    assert out["checks"] == CHECKS


def test_the_hotel_story() -> None:
    """scenarios/cards-preauth.yaml: a completion 8% above the hold, a cancelled stay, and
    a hold that expires after 30 days (its completion the day after: 12)."""
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-preauth.yaml"),
                       store="memory:")
    p = out["payments"]
    assert {k: (v["kind"], v["status"], v["response_code"]) for k, v in p.items()} == {
        "alice-in": ("preauth", "completed", "00"),
        "bob-in": ("preauth", "cancelled", "00"),
        "carol-in": ("preauth", "expired", "00"),
        "bob-cancel": ("preauth_cancel", "approved", "00"),
        "alice-out": ("preauth_completion", "settled", "00"),
        "carol-late": ("preauth_completion", "declined", "12")}
    assert p["carol-in"]["history"][-1]["at"] == "2026-12-25T16:00:00+08:00"
    assert p["carol-late"]["reason"] == {
        "code": "12", "message": "invalid transaction: the pre-authorisation carol-in is expired"}
    assert [h["at"] for h in p["alice-out"]["history"]] == [
        "2026-11-26T11:00:00+08:00", "2026-11-26T23:00:00+08:00", "2026-11-27T09:00:00+08:00"]
    assert out["net"]["CUPS"]["sessions"][0]["positions"] == {
        "CCB": "1075.87", "CUPS": "0.70", "ICBC": "-1076.57"}
    assert len(out["net"]["CUPS"]["sessions"]) == 1
    assert out["balances"]["customers"] == {"alice": "3920.00", "bob": "0.00",
                                            "carol": "1000.00", "hotel": "1073.52"}
    assert out["balances"]["settlement"] == {"ICBC": "998923.43", "CCB": "1001075.87",
                                             "CUPS": "0.70"}
    assert out["balances"]["mirrors"] == out["balances"]["settlement"]
    assert out["checks"] == CHECKS


def test_the_hotel_story_replays_to_the_same_state(tmp_path: Path) -> None:
    url = str(tmp_path / "preauth.db")
    out = run_scenario(load_scenario(ROOT / "scenarios" / "cards-preauth.yaml"), store=url)
    assert replay(url, world_systems()).state_hash().hex() == \
        out["log"]["state_hash"]


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("body", "marker", "words"), [
    ("do: preauth_cancel, id: x1, target: nope", "target: nope",
     "preauth_cancel x1: target 'nope' is not the id of an earlier preauth"),
    ('do: preauth_completion, id: c1, target: p1, amount: "10.00"', "target: p1",
     "preauth_completion c1: target 'p1' is not the id of an earlier preauth"),
    ('do: preauth_completion, id: c1, target: h1, amount: "0.00"', 'amount: "0.00"',
     "preauth_completion c1"),
    ('do: preauth, id: h2, card: 6222020200000000014, terminal: POS00001, amount: "1.00"',
     "id: h2", "preauth h2: card must be a quoted card number"),
])
def test_preauth_events_are_validated_with_the_line(body: str, marker: str, words: str
                                                    ) -> None:
    events = (ev("11-25T10:00", f'do: pos_purchase, id: p1, card: "{ALICE}", '
                                'terminal: POS00001, amount: "1.00"')
              + ev("11-25T10:01", f'do: preauth, id: h1, card: "{ALICE}", terminal: POS00001, '
                                  'amount: "1.00"')
              + ev("11-25T11:00", body))
    text = world(events)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "preauth.yaml")
    (problem,) = info.value.problems
    assert problem.file == "preauth.yaml"
    assert problem.line == next(i for i, line in enumerate(text.splitlines(), 1)
                                if marker in line and "11-25T11:00" in line)
    assert words in problem.message
