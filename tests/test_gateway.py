"""CNAPS's ISO 20022 edge: messages in, logged commands, messages out (each validated
against its XSD by the builders), and bad input answered, never raised."""

from __future__ import annotations

import datetime as dt
import shlex
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.clock import BEIJING, VirtualClock, parse_time
from qingsuan.cnaps.gateway import CnapsGateway
from qingsuan.cnaps.hvps import HvpsStatus
from qingsuan.cnaps.system import Cnaps
from qingsuan.engine import Engine
from qingsuan.ledger import Transfer
from qingsuan.messages import (
    PACS028,
    CancelRequest,
    CreditTransfer,
    StatusReport,
    StatusRequest,
    build_camt056,
    build_pacs008,
    build_pacs028,
    parse_camt029,
    parse_camt052,
    parse_camt053,
    parse_pacs002,
)

ICBC, CCB = "102100099996", "105100000017"
ROOT = Path(__file__).resolve().parents[1]


def _world() -> tuple[Engine, Cnaps, CnapsGateway, VirtualClock]:
    clock = VirtualClock(parse_time("2026-11-25T09:00"))
    cn = Cnaps()
    engine = Engine.open("memory:", clock, systems=[cn])
    engine.set_params({"hvps.lsm": "off"})
    cn.join("ICBC", ICBC)
    cn.join("CCB", CCB)
    reg = engine.registry
    engine.submit_transfers([
        Transfer(1, reg.id("PBOC", "issued"), reg.id("PBOC", "settlement:ICBC"), 100_000),
        Transfer(2, reg.id("ICBC", "reserve_at_pboc"), reg.id("ICBC", "hvps_incoming"), 100_000)])
    return engine, cn, CnapsGateway(cn), clock


def _pacs008(msg: str, tx: str, amount_fen: int, debtor: str = ICBC, creditor: str = CCB
             ) -> bytes:
    return build_pacs008(CreditTransfer(
        msg_id=msg, created_at=dt.datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING),
        end_to_end_id=tx, tx_id=tx, system="HVPS", kind="customer", priority="normal",
        amount_fen=amount_fen, settlement_date=dt.date(2026, 11, 25),
        debtor_agent_code=debtor, creditor_agent_code=creditor, debtor_name="Alice Wang",
        debtor_account="6222020200000000014", creditor_name="Bob Zhang",
        creditor_account="6217000010000000029"))


def test_pacs008_settles_and_answers_acsc() -> None:
    _, cn, gw, _ = _world()
    answer = parse_pacs002(gw.receive(_pacs008("M1", "T1", 60_000), "ICBC"))
    assert [(r.original_tx_id, r.status) for r in answer] == [("T1", "ACSC")]
    assert cn.hvps._balance("ICBC") == 40_000 and cn.hvps._balance("CCB") == 60_000
    assert gw.payment_status("ICBC", "M1", "T1") == "settled"


def test_queued_answers_acsp_and_duplicate_never_settles_twice() -> None:
    _, cn, gw, _ = _world()
    assert parse_pacs002(gw.receive(_pacs008("M1", "T1", 150_000), "ICBC"))[0].status == "ACSP"
    again = parse_pacs002(gw.receive(_pacs008("M1", "T1", 150_000), "ICBC"))[0]
    assert again.status == "RJCT" and again.reason_code == "AM05"
    assert len(cn.hvps.queued("ICBC")) == 1 and cn.hvps._balance("CCB") == 0


def test_camt056_cancels_a_queued_payment_not_a_settled_one() -> None:
    _, _, gw, _ = _world()
    gw.receive(_pacs008("M1", "T1", 150_000), "ICBC")
    gw.receive(_pacs008("M2", "T2", 10_000), "ICBC")  # FIFO: waits behind T1

    def cancel(msg: str, tx: str) -> bytes:
        return build_camt056(CancelRequest(
            msg_id=f"C{msg}", created_at=dt.datetime(2026, 11, 25, 9, 5, tzinfo=BEIJING),
            requesting_participant=ICBC, original_msg_id=msg, original_tx_id=tx,
            reason_code="CUST"))

    answer = parse_camt029(gw.receive(cancel("M1", "T1"), "ICBC"))
    assert [a.accepted for a in answer] == [True]
    assert gw.payment_status("ICBC", "M1", "T1") == "cancelled"
    assert gw.payment_status("ICBC", "M2", "T2") == "settled"  # the queue moved on
    refused = parse_camt029(gw.receive(cancel("M2", "T2"), "ICBC"))
    assert [a.accepted for a in refused] == [False]
    # another participant cannot cancel ICBC's payment
    assert [a.accepted for a in parse_camt029(gw.receive(cancel("M1", "T1"), "CCB"))] == [False]


def test_bad_input_is_answered_with_a_rejection_and_changes_nothing() -> None:
    engine, cn, gw, _ = _world()
    seq = engine.applied_seq
    garbage = parse_pacs002(gw.receive(b"<not xml", "ICBC"))
    assert garbage[0].status == "RJCT" and garbage[0].reason_code == "FF01"
    broken = _pacs008("M1", "T1", 100).replace(b"<MsgId>M1</MsgId>", b"")
    report = parse_pacs002(gw.receive(broken, "ICBC"))[0]
    assert report.status == "RJCT" and "MsgId" in (report.additional_info or "")
    assert engine.applied_seq == seq  # nothing was logged
    # a participant may not send on another's behalf
    spoof = parse_pacs002(gw.receive(_pacs008("M9", "T9", 100, debtor=CCB, creditor=ICBC),
                                     "ICBC"))[0]
    assert spoof.status == "RJCT" and spoof.reason_code == "RC01"
    assert cn.hvps._balance("CCB") == 0


def test_statement_and_intraday_report() -> None:
    engine, cn, gw, clock = _world()
    gw.receive(_pacs008("M1", "T1", 25_000), "ICBC")
    report = parse_camt052(gw.intraday_report("ICBC"))[0]
    assert report.closing_balance_fen == 75_000 and len(report.entries) == 2
    clock.advance_to(parse_time("2026-11-25T17:31"))
    engine.tick()
    stmt = parse_camt053(gw.statement("CCB", dt.date(2026, 11, 25)))[0]
    assert (stmt.opening_balance_fen, stmt.closing_balance_fen) == (0, 25_000)
    assert [(e.direction, e.amount_fen) for e in stmt.entries] == [("credit", 25_000)]
    etree.fromstring(gw.statement("ICBC", dt.date(2026, 11, 25)))  # well-formed XML
    assert cn.hvps.payments["ICBC/M1/T1"].status is HvpsStatus.SETTLED


def test_beps_and_ibps_credits_and_a_beps_debit_through_the_gateway() -> None:
    from qingsuan.cnaps.netsys import SimAccount
    from qingsuan.messages import DirectDebit, build_pacs003

    engine, cn, gw, _ = _world()
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob Zhang", None),
                          SimAccount("ICBC", "6222020200000000014", "Alice Wang", None)])

    def credit(system: str, tx: str, amount: int) -> bytes:
        return build_pacs008(CreditTransfer(
            msg_id=f"N{tx}", created_at=dt.datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING),
            end_to_end_id=tx, tx_id=tx, system=system, kind="customer", priority="normal",  # type: ignore[arg-type]
            amount_fen=amount, settlement_date=dt.date(2026, 11, 25),
            debtor_agent_code=ICBC, creditor_agent_code=CCB, debtor_name="Alice Wang",
            debtor_account="6222020200000000014", creditor_name="Bob Zhang",
            creditor_account="6217000010000000029"))

    assert parse_pacs002(gw.receive(credit("IBPS", "I1", 30_000), "ICBC"))[0].status == "ACSP"
    too_big = parse_pacs002(gw.receive(credit("IBPS", "I2", 5_000_001), "ICBC"))[0]
    assert too_big.status == "RJCT" and too_big.reason_code == "AM02"
    assert parse_pacs002(gw.receive(credit("BEPS", "B1", 20_000), "ICBC"))[0].status == "ACSP"
    assert cn.ibps.positions == {"ICBC": -30_000, "CCB": 30_000}
    assert cn.beps.positions == {"ICBC": -20_000, "CCB": 20_000}
    debit = build_pacs003(DirectDebit(
        msg_id="D1", created_at=dt.datetime(2026, 11, 25, 9, 1, tzinfo=BEIJING),
        end_to_end_id="D1", tx_id="D1", system="BEPS", amount_fen=5_000,
        settlement_date=dt.date(2026, 11, 25), creditor_agent_code=ICBC,
        debtor_agent_code=CCB, creditor_name="Alice Wang",
        creditor_account="6222020200000000014", debtor_name="Bob Zhang",
        debtor_account="6217000010000000029"))
    assert parse_pacs002(gw.receive(debit, "ICBC"))[0].status == "ACSP"
    assert cn.beps.positions == {"ICBC": -15_000, "CCB": 15_000}
    # CCB cannot send ICBC's debit for it
    assert parse_pacs002(gw.receive(debit.replace(b"D1<", b"D2<"), "CCB"))[0].status == "RJCT"
    assert gw.payment_status("ICBC", "NB1", "B1") == "netted"
    assert engine.ledger.book_totals()


def test_pacs004_returns_a_netted_beps_credit() -> None:
    from qingsuan.cnaps.netsys import SimAccount
    from qingsuan.messages import Return, build_pacs004

    _, cn, gw, _ = _world()
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob Zhang", None)])
    sent = build_pacs008(CreditTransfer(
        msg_id="NB1", created_at=dt.datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING),
        end_to_end_id="B1", tx_id="B1", system="BEPS", kind="customer", priority="normal",
        amount_fen=20_000, settlement_date=dt.date(2026, 11, 25), debtor_agent_code=ICBC,
        creditor_agent_code=CCB, debtor_name="Alice Wang",
        debtor_account="6222020200000000014", creditor_name="Bob Zhang",
        creditor_account="6217000010000000029"))
    assert parse_pacs002(gw.receive(sent, "ICBC"))[0].status == "ACSP"

    def back(amount: int) -> bytes:
        return build_pacs004(Return(
            msg_id="RT1", created_at=dt.datetime(2026, 11, 25, 9, 5, tzinfo=BEIJING),
            return_id="RT1", system="BEPS", original_msg_id="NB1", original_tx_id="B1",
            returned_amount_fen=amount, settlement_date=dt.date(2026, 11, 25),
            returning_agent_code=CCB, receiving_agent_code=ICBC, reason_code="AC01"))

    assert parse_pacs002(gw.receive(back(10_000), "CCB"))[0].status == "RJCT"  # not partial
    assert parse_pacs002(gw.receive(back(20_000), "ICBC"))[0].reason_code == "RC01"
    assert parse_pacs002(gw.receive(back(20_000), "CCB"))[0].status == "ACSP"
    assert cn.beps.positions == {"ICBC": 0, "CCB": 0}
    assert cn.beps.items["ICBC/NB1/B1/return"].original == "ICBC/NB1/B1"


def test_a_beps_message_is_a_package_with_a_size_limit() -> None:
    from qingsuan.cnaps.netsys import SimAccount

    engine, cn, gw, _ = _world()
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob Zhang", None)])
    engine.set_params({"beps.package_max_items": "2"})

    def item(tx: str, creditor: str = CCB) -> CreditTransfer:
        return CreditTransfer(
            msg_id="PKG1", created_at=dt.datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING),
            end_to_end_id=tx, tx_id=tx, system="BEPS", kind="customer", priority="normal",
            amount_fen=1_000, settlement_date=dt.date(2026, 11, 25), debtor_agent_code=ICBC,
            creditor_agent_code=creditor, debtor_name="Alice Wang",
            debtor_account="6222020200000000014", creditor_name="Bob Zhang",
            creditor_account="6217000010000000029")

    too_many = parse_pacs002(gw.receive(build_pacs008([item("a"), item("b"), item("c")]),
                                        "ICBC"))
    assert [r.status for r in too_many] == ["RJCT"] and "at most 2" in (
        too_many[0].additional_info or "")
    mixed = parse_pacs002(gw.receive(build_pacs008([item("a"), item("b", ICBC)]), "ICBC"))
    assert mixed[0].status == "RJCT"
    assert cn.beps.positions["ICBC"] == 0  # refused whole: nothing netted
    ok = parse_pacs002(gw.receive(build_pacs008([item("a"), item("b")]), "ICBC"))
    assert [r.status for r in ok] == ["ACSP", "ACSP"]
    assert cn.beps.positions == {"ICBC": -2_000, "CCB": 2_000}


def test_balance_inquiry_needs_the_holders_consent() -> None:
    from qingsuan.cnaps.netsys import SimAccount
    from qingsuan.engine import AccountSpec
    from qingsuan.ledger import AccountFlags, NormalSide

    engine, cn, _, _ = _world()
    engine.open_named([AccountSpec("CCB", "customer:bob", NormalSide.CREDIT,
                                   AccountFlags.MUST_NOT_OVERDRAW),
                       AccountSpec("CCB", "other_assets", NormalSide.DEBIT)])
    reg = engine.registry
    engine.submit_transfers([Transfer(50, reg.id("CCB", "other_assets"),
                                      reg.id("CCB", "customer:bob"), 12_345)])
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob Zhang",
                                     "CCB:customer:bob")])
    refused = cn.balance_inquiry("ICBC", "CCB", "6217000010000000029")
    assert refused["answered"] is False and refused["reason"] == "AG01"
    cn.balance_consent("CCB", "6217000010000000029", "ICBC")
    answer = cn.balance_inquiry("ICBC", "CCB", "6217000010000000029")
    assert answer == {"answered": True, "balance_fen": 12_345, "available_fen": 12_345}
    assert cn.balance_inquiry("BOC", "CCB", "6217000010000000029")["answered"] is False


# ---------------------------------------------------------------------- pacs.028


def _ask(gw: CnapsGateway, participant: str, *txs: tuple[str, str],
         asker: str | None = None) -> list[StatusReport]:
    """Send a pacs.028 as ``participant`` about (msg id, tx id) pairs; the pacs.002 back."""
    code = asker or {"ICBC": ICBC, "CCB": CCB}[participant]
    xml = build_pacs028([StatusRequest(
        msg_id=f"Q{participant}", created_at=dt.datetime(2026, 11, 25, 9, 30, tzinfo=BEIJING),
        requesting_participant=code, original_msg_id=msg, original_tx_id=tx)
        for msg, tx in txs])
    return parse_pacs002(gw.receive(xml, participant))


def test_pacs028_answers_what_the_payment_is_now_and_logs_nothing() -> None:
    engine, _, gw, _ = _world()
    settled = parse_pacs002(gw.receive(_pacs008("M1", "T1", 60_000), "ICBC"))[0]
    queued = parse_pacs002(gw.receive(_pacs008("M2", "T2", 150_000), "ICBC"))[0]
    assert (settled.status, queued.status) == ("ACSC", "ACSP")
    seq = engine.applied_seq
    answer = _ask(gw, "ICBC", ("M1", "T1"), ("M2", "T2"))
    assert engine.applied_seq == seq  # a question changes nothing
    # the same status (and text) the payment's own message got
    assert [(r.original_msg_id, r.original_tx_id, r.status, r.additional_info)
            for r in answer] == [("M1", "T1", "ACSC", None),
                                 ("M2", "T2", "ACSP", queued.additional_info)]
    assert {r.original_message_type for r in answer} == {"pacs.008.001.08"}
    # cancelled, it is refused with the reason
    gw.receive(build_camt056(CancelRequest(
        msg_id="C1", created_at=dt.datetime(2026, 11, 25, 9, 40, tzinfo=BEIJING),
        requesting_participant=ICBC, original_msg_id="M2", original_tx_id="T2",
        reason_code="CUST")), "ICBC")
    (cancelled,) = _ask(gw, "ICBC", ("M2", "T2"))
    assert (cancelled.status, cancelled.reason_code) == ("RJCT", "NARR")
    assert "cancelled" in (cancelled.additional_info or "")


def test_pacs028_a_net_item_behind_the_cap_is_pending() -> None:
    from qingsuan.cnaps.netsys import SimAccount

    _, cn, gw, _ = _world()
    cn.register_accounts([SimAccount("CCB", "6217000010000000029", "Bob Zhang", None)])
    cn.set_cap("BEPS", "ICBC", 30_000)

    def credit(tx: str, amount_fen: int) -> bytes:
        return build_pacs008(CreditTransfer(
            msg_id=f"N{tx}", created_at=dt.datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING),
            end_to_end_id=tx, tx_id=tx, system="BEPS", kind="customer", priority="normal",
            amount_fen=amount_fen, settlement_date=dt.date(2026, 11, 25),
            debtor_agent_code=ICBC, creditor_agent_code=CCB, debtor_name="Alice Wang",
            debtor_account="6222020200000000014", creditor_name="Bob Zhang",
            creditor_account="6217000010000000029"))

    sent = [parse_pacs002(gw.receive(credit(tx, amount), "ICBC"))[0]
            for tx, amount in (("B1", 20_000), ("B2", 20_000))]
    assert [r.status for r in sent] == ["ACSP", "PDNG"]
    answer = _ask(gw, "ICBC", ("NB1", "B1"), ("NB2", "B2"))
    assert [(r.status, r.additional_info) for r in answer] == [
        (r.status, r.additional_info) for r in sent]


def test_pacs028_never_reveals_another_participants_payment() -> None:
    _, _, gw, _ = _world()
    gw.receive(_pacs008("M1", "T1", 60_000), "ICBC")
    (theirs,) = _ask(gw, "CCB", ("M1", "T1"))
    (nothing,) = _ask(gw, "CCB", ("M404", "T404"))
    assert (theirs.status, theirs.reason_code) == ("RJCT", "NARR")
    assert "unknown transaction" in (theirs.additional_info or "")
    # not even the text tells the two apart
    assert theirs.additional_info == (nothing.additional_info or "").replace("M404/T404",
                                                                             "M1/T1")
    # nor may CCB ask in ICBC's name: the whole request is refused
    (spoof,) = _ask(gw, "CCB", ("M1", "T1"), asker=ICBC)
    assert (spoof.status, spoof.reason_code, spoof.original_tx_id) == ("RJCT", "RC01", None)
    assert spoof.original_message_type == PACS028


def test_pacs028_an_unknown_transaction_is_refused() -> None:
    _, _, gw, _ = _world()
    (unknown,) = _ask(gw, "ICBC", ("NOPE", "T1"))
    assert (unknown.status, unknown.reason_code) == ("RJCT", "NARR")
    assert unknown.additional_info == "unknown transaction: ICBC sent CNAPS no NOPE/T1"
    broken = parse_pacs002(gw.receive(build_pacs028(StatusRequest(
        msg_id="Q1", created_at=dt.datetime(2026, 11, 25, 9, 30, tzinfo=BEIJING),
        requesting_participant=ICBC, original_msg_id="M1", original_tx_id="T1"))
        .replace(b"<OrgnlTxId>T1</OrgnlTxId>", b""), "ICBC"))
    assert [(r.status, r.reason_code) for r in broken] == [("RJCT", "FF01")]


def test_the_pacs028_example_asks_about_the_pacs008_example(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qingsuan cnaps send examples/pacs028.xml --as ICBC` on the world of docs/CNAPS.md."""
    from qingsuan.messages import parse_pacs028, validate
    from qingsuan.messages.xmlio import read_document

    example = (ROOT / "examples" / "pacs028.xml").read_bytes()
    validate(read_document(example), PACS028)
    (request,) = parse_pacs028(example)
    assert (request.original_msg_id, request.original_tx_id) == (
        "ICBC20261126000001", "ICBC20261126T00001")
    for name in ("scenarios", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)

    def qingsuan(line: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, shlex.split(line))
        assert not (result.exception and not isinstance(result.exception, SystemExit)), (
            line, result.exception)
        return result.exit_code, result.stdout

    story = Path(str(resources.files("qingsuan") / "scenarios" / "hvps-queue.yaml"))
    assert qingsuan(f"run {story} --store world.db")[0] == 0
    code, out = qingsuan("cnaps send examples/pacs028.xml --as ICBC --store world.db "
                         "--at 2026-11-26T09:55")
    assert code == 1 and "unknown transaction" in out  # not sent yet
    assert qingsuan("cnaps send examples/pacs008.xml --as ICBC --store world.db "
                    "--at 2026-11-26T10:00")[0] == 0
    code, out = qingsuan("cnaps send examples/pacs028.xml --as ICBC --store world.db "
                         "--at 2026-11-26T10:15")
    assert code == 0, out
    assert [(r.original_tx_id, r.status) for r in parse_pacs002(out.encode())] == [
        ("ICBC20261126T00001", "ACSC")]
    code, out = qingsuan("cnaps send examples/pacs028.xml --as CCB --store world.db")
    assert code == 1 and "RC01" in out


def test_an_ibps_item_waiting_for_its_receiver_is_pending_not_accepted() -> None:
    """pacs.002 for an IBPS credit to a connected receiver that has not confirmed yet:
    PDNG (it may still be refused), not ACSP."""
    from qingsuan.cnaps.gateway import _net_status
    from qingsuan.cnaps.netsys import AWAITING

    assert _net_status(True, AWAITING, None)[:2] == ("PDNG", None)
    assert _net_status(True, "netted", None)[0] == "ACSP"
    assert _net_status(True, "queued", None)[0] == "PDNG"
