"""CNAPS ISO 20022 messages: round trips, schema validity, money, rejections, hostile input."""

from __future__ import annotations

import copy
import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from qingsuan.messages import (
    BEIJING,
    CAMT029,
    CAMT052,
    CAMT053,
    CAMT056,
    CAMT060,
    INBOUND_TYPES,
    NOT_PROVIDED,
    PACS002,
    PACS003,
    PACS004,
    PACS008,
    PACS009,
    PACS028,
    PRIORITIES,
    PRIORITY_CODES,
    CancelAnswer,
    CancelRequest,
    CreditTransfer,
    DirectDebit,
    InboundMessage,
    InvalidField,
    MessageError,
    MessageRejection,
    ReportRequest,
    Return,
    Statement,
    StatementEntry,
    StatusReport,
    StatusRequest,
    build_camt029,
    build_camt052,
    build_camt053,
    build_camt056,
    build_camt060,
    build_pacs002,
    build_pacs003,
    build_pacs004,
    build_pacs008,
    build_pacs009,
    build_pacs028,
    build_rejection_pacs002,
    decimal_to_fen,
    fen_to_decimal,
    field_paths,
    parse_camt029,
    parse_camt052,
    parse_camt053,
    parse_camt056,
    parse_camt060,
    parse_inbound,
    parse_pacs002,
    parse_pacs003,
    parse_pacs004,
    parse_pacs008,
    parse_pacs009,
    parse_pacs028,
)

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_XSD_DIR = ROOT.parent / "shared" / "iso20022"
PACKAGED_XSD = resources.files("qingsuan.messages").joinpath("xsd")

T0 = datetime(2024, 5, 6, 9, 30, 15, 250000, tzinfo=BEIJING)
DAY = date(2024, 5, 6)
ICBC = "102100099996"
CCB = "105100000017"
BOC = "104100000004"


# --- an independent validator: lxml XMLSchema straight from the packaged XSD files -----------

_SCHEMAS: dict[str, etree.XMLSchema] = {}


def xsd_validate(xml: bytes, message_type: str) -> None:
    """Fail the test unless ``xml`` is valid against the official XSD of ``message_type``."""
    if message_type not in _SCHEMAS:
        data = PACKAGED_XSD.joinpath(f"{message_type}.xsd").read_bytes()
        _SCHEMAS[message_type] = etree.XMLSchema(etree.fromstring(data))
    schema = _SCHEMAS[message_type]
    doc = etree.fromstring(xml)
    assert etree.QName(doc).namespace == f"urn:iso:std:iso:20022:tech:xsd:{message_type}"
    assert schema.validate(doc), f"{message_type} invalid: {schema.error_log}"


def ct(**changes: object) -> CreditTransfer:
    base = CreditTransfer(
        msg_id="HVPS20240506000001", created_at=T0, end_to_end_id="E2E-1", tx_id="TX-1",
        instr_id="INSTR-1", system="HVPS", kind="customer", priority="urgent",
        amount_fen=12345, settlement_date=DAY, debtor_agent_code=ICBC,
        creditor_agent_code=CCB, debtor_name="张三", debtor_account="6222020200112233445",
        creditor_name="李四有限公司", creditor_account="6217000010002000300",
        remittance_info="货款 invoice 2024-001")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def institution(**changes: object) -> CreditTransfer:
    base = ct(kind="institution", priority="net_settlement", debtor_name="中国工商银行",
              creditor_name=None, debtor_account=None, creditor_account=None,
              remittance_info=None)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def direct_debit(**changes: object) -> DirectDebit:
    base = DirectDebit(
        msg_id="BEPS-DD-1", created_at=T0, end_to_end_id="DD-E2E-1", tx_id="DD-1",
        system="BEPS", amount_fen=8800, settlement_date=DAY, creditor_agent_code=CCB,
        debtor_agent_code=ICBC, creditor_name="北京自来水公司", creditor_account="110000111",
        debtor_name="王五", debtor_account="6222000000000001", mandate_id="AUTH-2024-77",
        remittance_info="2024年4月水费")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cancel_request(**changes: object) -> CancelRequest:
    base = CancelRequest(
        msg_id="CXL-1", created_at=T0, requesting_participant=ICBC,
        original_msg_id="HVPS20240506000001", original_end_to_end_id="E2E-1",
        original_tx_id="TX-1", reason_code="CUST", additional_info="客户要求撤销")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cancel_answer(**changes: object) -> CancelAnswer:
    base = CancelAnswer(
        msg_id="ANS-1", created_at=T0, requesting_participant=ICBC, cancel_request_id="CXL-1",
        original_msg_id="HVPS20240506000001", original_tx_id="TX-1", accepted=True)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def status_report(**changes: object) -> StatusReport:
    base = StatusReport(
        msg_id="ACK-1", created_at=T0, original_msg_id="HVPS20240506000001",
        original_tx_id="TX-1", status="RJCT", reason_code="AM04",
        additional_info="insufficient funds at the clearing window close")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def status_request(**changes: object) -> StatusRequest:
    base = StatusRequest(
        msg_id="STS-MSG-1", created_at=T0, requesting_participant=ICBC, request_id="STS-1",
        original_msg_id="HVPS20240506000001", original_end_to_end_id="E2E-1",
        original_tx_id="TX-1")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def a_return(**changes: object) -> Return:
    base = Return(
        msg_id="RTR-MSG-1", created_at=T0, return_id="RTR-1", system="HVPS",
        original_msg_id="HVPS20240506000001", original_end_to_end_id="E2E-1",
        original_tx_id="TX-1", returned_amount_fen=12345, settlement_date=DAY,
        returning_agent_code=CCB, receiving_agent_code=ICBC, reason_code="AC04",
        additional_info="账户已销户")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def report_request(**changes: object) -> ReportRequest:
    base = ReportRequest(
        msg_id="RPT-REQ-1", created_at=T0, request_id="REQ-1",
        requested_message="camt.053.001.08", account=ICBC, account_owner=ICBC,
        from_date=DAY - timedelta(days=3), to_date=DAY)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def statement(**changes: object) -> Statement:
    entries = (
        StatementEntry(reference="TX-1", amount_fen=12345, direction="debit",
                       booked_at=T0, transaction_code="HVPS"),
        StatementEntry(reference="TX-9", amount_fen=100_000_00, direction="credit",
                       booked_at=T0 + timedelta(hours=1), transaction_code="BEPS-NET"),
    )
    base = Statement(
        msg_id="STMT-MSG-1", created_at=T0 + timedelta(hours=9), statement_id="STMT-1",
        account=ICBC, business_date=DAY, opening_balance_fen=-5_000_00,
        closing_balance_fen=-5_000_00 - 12345 + 100_000_00, entries=entries)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- round trips: build -> XSD -> parse gives the same objects, for every message type -----

ROUND_TRIPS = [
    (PACS008, build_pacs008, parse_pacs008, [ct()]),
    (PACS008, build_pacs008, parse_pacs008,
     [ct(system="BEPS", priority="normal"),
      ct(system="IBPS", priority="normal", tx_id="TX-2", instr_id=None, remittance_info=None)]),
    (PACS009, build_pacs009, parse_pacs009, [institution()]),
    (PACS003, build_pacs003, parse_pacs003, [direct_debit(), direct_debit(tx_id="DD-2",
                                                                         mandate_id=None)]),
    (PACS002, build_pacs002, parse_pacs002,
     [status_report(original_tx_id=None, status="ACSC", reason_code=None,
                    additional_info=None),
      status_report(), status_report(original_tx_id="TX-2", status="ACSP", reason_code=None)]),
    (PACS004, build_pacs004, parse_pacs004, [a_return()]),
    (PACS028, build_pacs028, parse_pacs028, [status_request()]),
    (PACS028, build_pacs028, parse_pacs028,
     [status_request(), status_request(request_id=None, original_msg_id="M2",
                                       original_message_type=PACS009,
                                       original_end_to_end_id=None, original_tx_id="TX-2")]),
    (CAMT056, build_camt056, parse_camt056, [cancel_request()]),
    (CAMT029, build_camt029, parse_camt029, [cancel_answer()]),
    (CAMT029, build_camt029, parse_camt029,
     [cancel_answer(accepted=False, reason_code="ARDT", additional_info="already settled")]),
    (CAMT053, build_camt053, parse_camt053, [statement()]),
    (CAMT052, build_camt052, parse_camt052, [statement(statement_id="RPT-1")]),
    (CAMT060, build_camt060, parse_camt060,
     [report_request(), report_request(request_id=None, requested_message="camt.052",
                                       account=None, from_date=None, to_date=None)]),
]


@pytest.mark.parametrize(("message_type", "build", "parse", "items"), ROUND_TRIPS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROUND_TRIPS)])
def test_round_trip(message_type, build, parse, items) -> None:  # type: ignore[no-untyped-def]
    xml = build(items if len(items) > 1 else items[0])
    xsd_validate(xml, message_type)
    assert parse(xml) == items
    inbound = parse_inbound(xml)
    assert isinstance(inbound, InboundMessage), inbound
    assert inbound.message_type == message_type
    assert inbound.msg_id == items[0].msg_id
    assert list(inbound.items) == items
    assert build(items if len(items) > 1 else items[0]) == xml  # deterministic bytes


def test_every_message_type_has_a_round_trip() -> None:
    assert {r[0] for r in ROUND_TRIPS} == set(INBOUND_TYPES)


def test_packaged_xsds_are_the_official_ones() -> None:
    if not OFFICIAL_XSD_DIR.is_dir():
        pytest.skip("no ../shared/iso20022 here")
    for name in [*INBOUND_TYPES, "head.001.001.02"]:
        official = (OFFICIAL_XSD_DIR / f"{name}.xsd").read_bytes()
        assert PACKAGED_XSD.joinpath(f"{name}.xsd").read_bytes() == official, name


def test_generated_bindings_use_the_iso_namespaces() -> None:
    import importlib

    for name in [*INBOUND_TYPES, "head.001.001.02"]:
        mod = name.replace(".", "_")
        module = importlib.import_module(f"qingsuan.messages.generated.{mod}")
        assert module.__name__ == f"qingsuan.messages.generated.{mod}"
        inner = importlib.import_module(f"qingsuan.messages.generated.{mod}.{mod}")
        namespace = inner.__NAMESPACE__
        assert namespace == f"urn:iso:std:iso:20022:tech:xsd:{name}"


def test_hvps_priority_and_system_are_carried_in_the_payment_type() -> None:
    for priority in PRIORITIES:
        xml = build_pacs008(ct(priority=priority))
        xsd_validate(xml, PACS008)
        doc = etree.fromstring(xml)
        ns = {"d": f"urn:iso:std:iso:20022:tech:xsd:{PACS008}"}
        tp = "/d:Document/d:FIToFICstmrCdtTrf/d:CdtTrfTxInf/d:PmtTpInf"
        assert doc.xpath(f"{tp}/d:SvcLvl/d:Prtry/text()", namespaces=ns) == ["HVPS"]
        assert doc.xpath(f"{tp}/d:InstrPrty/text()", namespaces=ns) == [
            "NORM" if priority == "normal" else "HIGH"]
        assert len(doc.xpath(f"{tp}/d:LclInstrm/d:Prtry/text()", namespaces=ns)) == 1
        assert parse_pacs008(xml)[0].priority == priority
    with pytest.raises(InvalidField) as info:
        ct(system="BEPS", priority="urgent")
    assert info.value.reason_code == "FF03"


def test_status_rejection_carries_reason_and_long_text_exactly() -> None:
    long_text = "余额不足，" * 60  # 300 characters: three AddtlInf lines of at most 105
    report = status_report(additional_info=long_text)
    xml = build_pacs002(report)
    xsd_validate(xml, PACS002)
    assert parse_pacs002(xml) == [report]
    assert xml.count(b"<AddtlInf>") == 3


def test_long_remittance_info_is_split_into_lines_and_joined_back() -> None:
    transfer = ct(remittance_info="附言" * 150)
    xml = build_pacs008(transfer)
    xsd_validate(xml, PACS008)
    assert xml.count(b"<Ustrd>") == 3
    assert parse_pacs008(xml) == [transfer]


def test_cancel_answers_partially_accepted() -> None:
    answers = [cancel_answer(), cancel_answer(original_tx_id="TX-2", accepted=False,
                                              reason_code="ARDT")]
    xml = build_camt029(answers)
    xsd_validate(xml, CAMT029)
    assert b"<Conf>PECR</Conf>" in xml
    assert parse_camt029(xml) == answers


# --- money ----------------------------------------------------------------------------------


def test_amounts_are_exact_fen() -> None:
    assert fen_to_decimal(12345) == Decimal("123.45")
    assert str(fen_to_decimal(12345)) == "123.45"
    assert str(fen_to_decimal(5)) == "0.05"
    assert str(fen_to_decimal(100)) == "1.00"
    assert str(fen_to_decimal(10**15)) == "10000000000000.00"
    assert decimal_to_fen(Decimal("123.45")) == 12345
    assert decimal_to_fen(Decimal("123.4")) == 12340
    assert decimal_to_fen(Decimal("123")) == 12300
    assert decimal_to_fen(Decimal("0.10")) == 10
    with pytest.raises(ValueError):
        decimal_to_fen(Decimal("123.456"))
    xml = build_pacs008(ct(amount_fen=12345))
    assert b'<IntrBkSttlmAmt Ccy="CNY">123.45</IntrBkSttlmAmt>' in xml
    for text, fen in [(b"123.45", 12345), (b"0.1", 10), (b"7", 700), (b"99999999.99", 9999999999)]:
        edited = _retotal(xml, text)
        transfer = parse_pacs008(edited)[0]
        assert transfer.amount_fen == fen
        assert isinstance(transfer.amount_fen, int)


def _retotal(xml: bytes, amount: bytes) -> bytes:
    """Set both the transaction amount and the group total (a consistent message)."""
    return (xml.replace(b'<IntrBkSttlmAmt Ccy="CNY">123.45<',
                        b'<IntrBkSttlmAmt Ccy="CNY">' + amount + b"<")
               .replace(b'<TtlIntrBkSttlmAmt Ccy="CNY">123.45<',
                        b'<TtlIntrBkSttlmAmt Ccy="CNY">' + amount + b"<"))


def test_three_decimals_are_rejected() -> None:
    xml = _retotal(build_pacs008(ct()), b"123.456")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "AM12"
    assert result.element_path == "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt"
    assert result.msg_id == "HVPS20240506000001"
    assert result.tx_id == "TX-1"
    # "123.450" is three decimals too (CNY has two minor units)
    assert _reason(_retotal(build_pacs008(ct()), b"123.450")) == "AM12"
    with pytest.raises(MessageError) as info:
        parse_pacs008(xml)
    assert info.value.rejection == result


def test_other_currencies_are_rejected() -> None:
    xml = build_pacs008(ct()).replace(b'Ccy="CNY">123.45</IntrBkSttlmAmt',
                                      b'Ccy="USD">123.45</IntrBkSttlmAmt')
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "AM03"
    assert "USD" in result.message
    assert result.element_path is not None and result.element_path.endswith(
        "CdtTrfTxInf/IntrBkSttlmAmt/@Ccy")
    with pytest.raises(InvalidField) as info:
        ct(currency="USD")
    assert info.value.reason_code == "AM03"


def test_zero_and_huge_amounts() -> None:
    assert _reason(_retotal(build_pacs008(ct()), b"0.00")) == "AM01"
    assert _reason(_retotal(build_pacs008(ct()), b"99999999999999.99")) == "AM02"
    with pytest.raises(InvalidField):
        ct(amount_fen=0)
    with pytest.raises(InvalidField):
        ct(amount_fen=1.5)  # a float never carries money


def test_domain_objects_validate_their_fields() -> None:
    with pytest.raises(InvalidField) as info:
        ct(debtor_agent_code="10210009999")
    assert info.value.reason_code == "RC01"
    assert info.value.field == "debtor_agent_code"
    with pytest.raises(InvalidField):
        ct(created_at=datetime(2024, 5, 6, 9, 30))  # naive
    with pytest.raises(InvalidField):
        ct(msg_id="X" * 36)
    with pytest.raises(InvalidField):
        ct(debtor_name="bad\x00char")
    with pytest.raises(InvalidField) as info:
        ct(debtor_account=None)
    assert info.value.reason_code == "RR01"
    with pytest.raises(InvalidField) as info:
        statement(closing_balance_fen=0)
    assert info.value.reason_code == "AM10"


# --- rejections name the element ------------------------------------------------------------


def _reason(xml: bytes) -> str:
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection), result
    return result.reason_code


def test_not_well_formed_xml_is_ff01() -> None:
    for bad in [b"", b"   ", b"<Document", b"not xml at all", b"<a></b>", b"\xff\xfe\x00<",
                build_pacs008(ct())[:-30]]:
        result = parse_inbound(bad)
        assert isinstance(result, MessageRejection)
        assert result.reason_code == "FF01"
        assert result.message
    result = parse_inbound(b"<a></b>")
    assert isinstance(result, MessageRejection)
    assert "mismatch" in result.message.lower()


def test_non_bytes_input_is_rejected_not_raised() -> None:
    for bad in ["<Document/>", None, 42]:
        result = parse_inbound(bad)  # type: ignore[arg-type]
        assert isinstance(result, MessageRejection)
        assert result.reason_code == "FF01"


def test_missing_msg_id_names_the_element() -> None:
    xml = build_pacs008(ct()).replace(b"<MsgId>HVPS20240506000001</MsgId>", b"")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"
    assert "MsgId" in result.message
    assert result.element_path == "/Document/FIToFICstmrCdtTrf/GrpHdr/CreDtTm"
    assert result.message_type == PACS008
    assert result.msg_id is None


def test_unexpected_element_is_named() -> None:
    xml = build_pacs008(ct()).replace(b"<ChrgBr>SLEV</ChrgBr>",
                                      b"<ChrgBr>SLEV</ChrgBr><Bogus>1</Bogus>")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"
    assert "Bogus" in result.message
    assert result.element_path == "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/Bogus"
    assert result.msg_id == "HVPS20240506000001"


def test_bad_value_is_named() -> None:
    xml = build_pacs008(ct()).replace(b"<IntrBkSttlmDt>2024-05-06</IntrBkSttlmDt>",
                                      b"<IntrBkSttlmDt>2024-13-06</IntrBkSttlmDt>")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"
    assert "IntrBkSttlmDt" in result.message
    assert result.element_path == "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmDt"


def test_bank_code_not_12_digits_is_rc01() -> None:
    xml = build_pacs008(ct()).replace(f"<MmbId>{CCB}</MmbId>".encode(),
                                      b"<MmbId>10510000001</MmbId>")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "RC01"
    assert result.element_path == (
        "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId")


def test_system_and_priority_codes_are_checked() -> None:
    xml = build_pacs008(ct())
    assert _reason(xml.replace(b"<Prtry>HVPS</Prtry>", b"<Prtry>SWIFT</Prtry>")) == "FF04"
    assert _reason(xml.replace(b"<Prtry>URGT</Prtry>", b"<Prtry>FAST</Prtry>")) == "FF05"
    assert _reason(xml.replace(b"<InstrPrty>HIGH</InstrPrty>",
                               b"<InstrPrty>NORM</InstrPrty>")) == "FF03"
    # without the proprietary code, InstrPrty alone maps HIGH -> urgent
    plain = xml.replace(b"<LclInstrm>", b"<!--").replace(b"</LclInstrm>", b"-->")
    assert parse_pacs008(plain)[0].priority == "urgent"


def test_wrong_message_type_for_the_parser() -> None:
    with pytest.raises(MessageError) as info:
        parse_pacs008(build_pacs009(institution()))
    assert info.value.rejection.reason_code == "FF01"
    assert info.value.rejection.message_type == PACS009
    result = parse_inbound(build_pacs009(institution()), accept={PACS008})
    assert isinstance(result, MessageRejection)
    unknown = build_pacs008(ct()).replace(b"pacs.008.001.08", b"pacs.008.001.99")
    assert _reason(unknown) == "FF01"


# --- several transactions in one message -----------------------------------------------------


def test_multiple_transactions_in_one_pacs008() -> None:
    transfers = [ct(tx_id=f"TX-{i}", end_to_end_id=f"E2E-{i}", amount_fen=100 * i + 1)
                 for i in range(1, 4)]
    xml = build_pacs008(transfers)
    xsd_validate(xml, PACS008)
    assert b"<NbOfTxs>3</NbOfTxs>" in xml
    assert b'<TtlIntrBkSttlmAmt Ccy="CNY">6.03</TtlIntrBkSttlmAmt>' in xml
    parsed = parse_pacs008(xml)
    assert parsed == transfers
    assert [t.tx_id for t in parsed] == ["TX-1", "TX-2", "TX-3"]
    # a problem in the second transaction is located there
    bad = xml.replace(b"<TxId>TX-2</TxId>", b"<TxId>TX-1</TxId>")
    result = parse_inbound(bad)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "AM05"
    assert result.element_path == "/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/PmtId/TxId"
    assert _reason(xml.replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>")) == "AM18"
    assert _reason(xml.replace(b">6.03<", b">6.04<")) == "AM10"


def test_builders_refuse_inconsistent_batches() -> None:
    with pytest.raises(ValueError):
        build_pacs008([ct(), ct(tx_id="TX-2", msg_id="OTHER")])
    with pytest.raises(ValueError):
        build_pacs008([ct(), ct()])  # same tx id twice
    with pytest.raises(ValueError):
        build_pacs008(institution())
    with pytest.raises(ValueError):
        build_pacs009(ct())
    with pytest.raises(ValueError):
        build_pacs008([])


# --- pacs.002 for rejections -----------------------------------------------------------------


def test_rejection_becomes_a_pacs002_rjct() -> None:
    bad = _retotal(build_pacs008(ct()), b"1.001")
    rejection = parse_inbound(bad)
    assert isinstance(rejection, MessageRejection)
    xml = build_rejection_pacs002(rejection, msg_id="CCMS900-1", created_at=T0)
    xsd_validate(xml, PACS002)
    [report] = parse_pacs002(xml)
    assert report.status == "RJCT"
    assert report.original_msg_id == "HVPS20240506000001"
    assert report.original_message_type == PACS008
    assert report.original_tx_id is None
    assert report.reason_code == "AM12"
    assert report.additional_info is not None and "IntrBkSttlmAmt" in report.additional_info


def test_generic_rejection_when_the_message_id_is_unreadable() -> None:
    rejection = parse_inbound(b"<<<garbage")
    assert isinstance(rejection, MessageRejection)
    xml = build_rejection_pacs002(rejection, msg_id="CCMS900-2", created_at=T0)
    xsd_validate(xml, PACS002)
    [report] = parse_pacs002(xml)
    assert report.original_msg_id == NOT_PROVIDED
    assert report.status == "RJCT" and report.reason_code == "FF01"


# --- hostile input ---------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><FIToFICstmrCdtTrf><GrpHdr>
<MsgId>&lol9;</MsgId></GrpHdr></FIToFICstmrCdtTrf></Document>"""


def test_billion_laughs_is_rejected_safely() -> None:
    start = time.perf_counter()
    result = parse_inbound(BILLION_LAUGHS)
    assert time.perf_counter() - start < 2
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"
    assert "DOCTYPE" in result.message
    # the same in UTF-16, which a byte scan for "<!DOCTYPE" cannot see
    utf16 = BILLION_LAUGHS.replace(b'<?xml version="1.0"?>',
                                   b'<?xml version="1.0" encoding="UTF-16"?>').decode()
    result = parse_inbound(utf16.encode("utf-16"))
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"


def test_external_entities_are_never_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xml = build_pacs008(ct()).replace(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'.encode(),
    ).replace(b"<Nm>\xe5\xbc\xa0\xe4\xb8\x89</Nm>", b"<Nm>&x;</Nm>")
    result = parse_inbound(xml)
    assert isinstance(result, MessageRejection)
    assert "TOP-SECRET-VALUE" not in result.message


def test_oversized_input_is_rejected_before_parsing() -> None:
    xml = build_pacs008(ct())
    result = parse_inbound(xml, max_bytes=len(xml) - 1)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"
    assert "limit" in result.message
    assert result.msg_id is None  # not even parsed
    huge = b"<Document>" + b" " * (2 << 20) + b"</Document>"
    start = time.perf_counter()
    result = parse_inbound(huge)  # default limit: 1 MiB
    assert time.perf_counter() - start < 1
    assert isinstance(result, MessageRejection) and "limit" in result.message
    assert isinstance(parse_inbound(xml, max_bytes=len(xml)), InboundMessage)


def test_deep_nesting_is_rejected() -> None:
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    result = parse_inbound(deep)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "FF01"


VALID_PACS008 = build_pacs008([ct(), ct(tx_id="TX-2", end_to_end_id="E2E-2", amount_fen=1)])


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID_PACS008)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate"]))
        pos = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if kind == "flip":
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "delete":
            end = pos + draw(st.integers(min_value=1, max_value=40))
            del data[pos:end]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(
                [b"<", b">", b"&", b"&amp;", b"]]>", b"<!--", b"\x00", b"\xc3", b"9",
                 b"<Bogus/>", b"<MsgId>X</MsgId>", b'"', b".", b"-", b" ", b"\n"]))
        else:
            end = pos + draw(st.integers(min_value=1, max_value=200))
            data[pos:pos] = data[pos:end]
        if not data:
            break
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_fuzzed_pacs008_never_raises(xml: bytes) -> None:
    result = parse_inbound(xml)
    assert isinstance(result, InboundMessage | MessageRejection)
    if isinstance(result, MessageRejection):
        assert result.reason_code != "FF10", result  # an internal error would be a bug
        assert len(result.reason_code) == 4 and result.message
        # every rejection can be answered with a schema-valid pacs.002
        xsd_validate(build_rejection_pacs002(result, msg_id="R", created_at=T0), PACS002)
    else:
        transfers = [item for item in result.items if isinstance(item, CreditTransfer)]
        assert len(transfers) == len(result.items)
        xsd_validate(build_pacs008(transfers), PACS008)
    # the strict parser agrees, and raises nothing but MessageError
    if isinstance(result, InboundMessage) and result.message_type == PACS008:
        assert parse_pacs008(xml) == list(result.items)
    else:
        with pytest.raises(MessageError):
            parse_pacs008(xml)


_INTERESTING_TEXT = [
    "", " ", "0", "0.00", "1", "123.456", "123.45", "-1", "1E5", "99999999999999999.99",
    "2024-02-30", "2024-05-06", "0001-01-01", "9999-12-31", "2024-05-06T24:00:00",
    "2024-05-06T09:30:00+14:00", "2024-05-06T09:30:00-14:00", "2024-05-06T09:30:00",
    "CNY", "USD", "HVPS", "BEPS", "IBPS", "XURG", "NORM", "HIGH", "URGT", "CLRG", "SLEV",
    "RJCT", "ACSC", "ACCR", "RJCR", "CNCL", "OPBD", "CLBD", "ITBD", "BOOK", "CRDT", "DBIT",
    "102100099996", "10210009999", "1021000999961", "ICBC00000001", "x" * 36, "x" * 141,
    "中文", "2", "3", "true",
]


@st.composite
def tree_mutations(draw: st.DrawFn, valid: bytes) -> bytes:
    """Well-formed mutations: change texts and attributes, drop, duplicate and move elements."""
    root = etree.fromstring(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        elements = list(root.iter())
        el = draw(st.sampled_from(elements))
        kind = draw(st.sampled_from(["text", "drop", "duplicate", "move", "attr"]))
        parent = el.getparent()
        if kind == "text" and len(el) == 0:
            el.text = draw(st.sampled_from(_INTERESTING_TEXT) | st.text(max_size=50).filter(
                lambda s: all(c in "\t\n\r" or 0x20 <= ord(c) < 0xD800 for c in s)))
        elif kind == "drop" and parent is not None:
            parent.remove(el)
        elif kind == "duplicate" and parent is not None:
            parent.insert(parent.index(el), copy.deepcopy(el))
        elif kind == "move" and parent is not None:
            target = draw(st.sampled_from(elements))
            if target is not el and el not in target.iterancestors():
                parent.remove(el)
                target.append(el)
        elif kind == "attr":
            el.set("Ccy", draw(st.sampled_from(["CNY", "USD", "cny", ""])))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize(("message_type", "build", "parse", "items"), ROUND_TRIPS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROUND_TRIPS)])
def test_tree_fuzz_never_raises(message_type, build, parse, items) -> None:  # type: ignore[no-untyped-def]
    valid = build(items if len(items) > 1 else items[0])

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree_mutations(valid))
    def run(xml: bytes) -> None:
        result = parse_inbound(xml)
        if isinstance(result, MessageRejection):
            assert result.reason_code != "FF10", result
            xsd_validate(build_rejection_pacs002(result, msg_id="R", created_at=T0), PACS002)
            with pytest.raises(MessageError):
                parse(xml)
        else:
            assert result.message_type == message_type
            reparsed = parse(xml)
            assert reparsed == list(result.items)
            xsd_validate(build(reparsed), message_type)  # what we read, we can write

    run()


# --- property: any valid transfer round-trips exactly --------------------------------------

_xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff",
                           min_codepoint=0x09),
    min_size=1, max_size=35,
).filter(lambda s: all(c in "\t\n\r" or ord(c) >= 0x20 for c in s))
_bank_code = st.from_regex(r"[0-9]{12}", fullmatch=True)


@st.composite
def transfers(draw: st.DrawFn) -> CreditTransfer:
    system = draw(st.sampled_from(["HVPS", "BEPS", "IBPS"]))
    return CreditTransfer(
        msg_id=draw(_xml_text), created_at=draw(st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
            timezones=st.sampled_from([BEIJING, UTC]))),
        end_to_end_id=draw(_xml_text), tx_id=draw(_xml_text),
        instr_id=draw(st.none() | _xml_text), system=system,
        priority=draw(st.sampled_from(PRIORITIES)) if system == "HVPS" else "normal",
        amount_fen=draw(st.integers(min_value=1, max_value=10**15)),
        settlement_date=draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1))),
        debtor_agent_code=draw(_bank_code), creditor_agent_code=draw(_bank_code),
        debtor_name=draw(_xml_text), debtor_account=draw(_xml_text.filter(lambda s: len(s) <= 34)),
        creditor_name=draw(_xml_text),
        creditor_account=draw(_xml_text.filter(lambda s: len(s) <= 34)),
        remittance_info=draw(st.none() | st.text(
            alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xD7FF), min_size=1,
            max_size=400)),
    )


@settings(max_examples=150, deadline=None)
@given(transfers())
def test_any_valid_transfer_round_trips(transfer: CreditTransfer) -> None:
    xml = build_pacs008(transfer)
    xsd_validate(xml, PACS008)
    assert parse_pacs008(xml) == [transfer]


# --- statements ------------------------------------------------------------------------------


def test_statement_balances_must_add_up_on_parse() -> None:
    xml = build_camt053(statement())
    closing = fen_to_decimal(-5_000_00 - 12345 + 100_000_00)
    tampered = xml.replace(f">{closing}<".encode(), f">{closing + 1}<".encode())
    assert tampered != xml
    assert _reason(tampered) == "AM10"


def test_statement_negative_and_zero_balances() -> None:
    s = statement(opening_balance_fen=0, closing_balance_fen=-12345 + 100_000_00)
    assert parse_camt053(build_camt053(s)) == [s]
    empty = statement(entries=(), opening_balance_fen=-1, closing_balance_fen=-1)
    xml = build_camt052(empty)
    xsd_validate(xml, CAMT052)
    assert b"<Cd>ITBD</Cd>" in xml and b"<CdtDbtInd>DBIT</CdtDbtInd>" in xml
    assert parse_camt052(xml) == [empty]


def test_naive_times_are_beijing_time() -> None:
    xml = build_pacs008(ct()).replace(b"2024-05-06T09:30:15.250+08:00", b"2024-05-06T09:30:15.250")
    assert xml != build_pacs008(ct())
    [transfer] = parse_pacs008(xml)
    assert transfer.created_at == T0
    assert transfer.created_at.utcoffset() == timedelta(hours=8)


def test_cancel_request_and_return_reject_bad_codes() -> None:
    xml = build_camt056(cancel_request())
    bad = xml.replace(f"<MmbId>{ICBC}</MmbId>".encode(), b"<MmbId>ICBC</MmbId>", 1)
    result = parse_inbound(bad)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "RC01"
    assert result.element_path == (
        "/Document/FIToFIPmtCxlReq/Assgnmt/Assgnr/Agt/FinInstnId/ClrSysMmbId/MmbId")
    assert result.msg_id == "CXL-1"
    rtr = build_pacs004(a_return()).replace(b'Ccy="CNY">123.45</RtrdIntrBkSttlmAmt',
                                            b'Ccy="EUR">123.45</RtrdIntrBkSttlmAmt')
    assert _reason(rtr) == "AM03"


# --- the documentation stays true --------------------------------------------------------------

DOMAIN_CLASSES = {
    PACS008: CreditTransfer, PACS009: CreditTransfer, PACS003: DirectDebit,
    PACS002: StatusReport, PACS004: Return, PACS028: StatusRequest, CAMT056: CancelRequest,
    CAMT029: CancelAnswer,
    CAMT053: Statement, CAMT052: Statement, CAMT060: ReportRequest,
}


def test_every_domain_field_has_a_documented_element() -> None:
    doc = (ROOT / "docs" / "MESSAGES.md").read_text(encoding="utf-8")
    for message_type, cls in DOMAIN_CLASSES.items():
        paths = field_paths(message_type)
        fields = {f.name for f in dataclasses.fields(cls)} - {"kind", "entries"}
        if cls is DirectDebit:
            fields -= {"priority"}
        if cls is Statement:
            fields |= {f"entries[].{f.name}" for f in dataclasses.fields(StatementEntry)}
        assert fields <= set(paths), (message_type, fields - set(paths))
        for name, path in paths.items():
            assert f"| `{name}` | `{path}` |" in doc, (message_type, name)
    for priority, code in PRIORITY_CODES.items():
        assert f"| `{priority}`" in doc and f"| `{code}` |" in doc
    assert "tools/gen_messages.sh" in doc


def test_a_statement_id_twice_in_one_message_is_rejected() -> None:
    """Found by the tree fuzz: two reports with one id parsed, but could not be written."""
    xml = build_camt052(statement())
    start = xml.index(b"<Rpt>")
    end = xml.index(b"</Rpt>") + len(b"</Rpt>")
    doubled = xml[:end] + xml[start:end] + xml[end:]
    result = parse_inbound(doubled)
    assert isinstance(result, MessageRejection)
    assert result.reason_code == "AM05" and "appears twice" in result.message


# --- pacs.028: status requests -------------------------------------------------------------


def test_status_request_carries_the_asker_and_the_original_transaction() -> None:
    xml = build_pacs028(status_request())
    xsd_validate(xml, PACS028)
    doc = etree.fromstring(xml)
    ns = {"d": f"urn:iso:std:iso:20022:tech:xsd:{PACS028}"}
    hdr = "/d:Document/d:FIToFIPmtStsReq/d:GrpHdr"
    assert doc.xpath(f"{hdr}/d:InstgAgt/d:FinInstnId/d:ClrSysMmbId/d:MmbId/text()",
                     namespaces=ns) == [ICBC]
    assert doc.xpath(f"{hdr}/d:InstdAgt/d:FinInstnId/d:ClrSysMmbId/d:MmbId/text()",
                     namespaces=ns) == ["000000000000"]
    tx = "/d:Document/d:FIToFIPmtStsReq/d:TxInf"
    assert doc.xpath(f"{tx}/d:OrgnlGrpInf/d:OrgnlMsgNmId/text()", namespaces=ns) == [PACS008]
    assert doc.xpath(f"{tx}/d:OrgnlTxId/text()", namespaces=ns) == ["TX-1"]


def test_status_request_rejections_name_the_element() -> None:
    xml = build_pacs028(status_request())
    without_asker = xml.replace(xml[xml.index(b"<InstgAgt>"):
                                    xml.index(b"</InstgAgt>") + len(b"</InstgAgt>")], b"")
    result = parse_inbound(without_asker)
    assert isinstance(result, MessageRejection)
    assert (result.reason_code, result.msg_id) == ("RC01", "STS-MSG-1")
    assert result.element_path == "/Document/FIToFIPmtStsReq/GrpHdr/InstgAgt/FinInstnId/" \
                                  "ClrSysMmbId/MmbId"
    no_tx = parse_inbound(xml.replace(b"<OrgnlTxId>TX-1</OrgnlTxId>", b""))
    assert isinstance(no_tx, MessageRejection)
    assert no_tx.reason_code == "FF01" and no_tx.element_path == (
        "/Document/FIToFIPmtStsReq/TxInf/OrgnlTxId")
    start, end = xml.index(b"<TxInf>"), xml.index(b"</TxInf>") + len(b"</TxInf>")
    nothing_asked = parse_inbound(xml[:start] + xml[end:])
    assert isinstance(nothing_asked, MessageRejection)
    assert nothing_asked.reason_code == "FF01" and "TxInf is required" in nothing_asked.message
    with pytest.raises(InvalidField, match="requesting_participant") as exc:
        status_request(requesting_participant="ICBC")
    assert exc.value.reason_code == "RC01"
    with pytest.raises(ValueError, match="share requesting_participant"):
        build_pacs028([status_request(), status_request(requesting_participant=CCB)])


def test_status_request_reads_the_message_level_original_group() -> None:
    """OrgnlGrpInf may stand once at message level (OriginalGroupInformation27) for all."""
    xml = build_pacs028(status_request())
    group = xml[xml.index(b"<OrgnlGrpInf>"):xml.index(b"</OrgnlGrpInf>") + len(
        b"</OrgnlGrpInf>")]
    moved = xml.replace(group, b"").replace(b"</GrpHdr>", b"</GrpHdr>" + group)
    xsd_validate(moved, PACS028)
    assert parse_pacs028(moved) == [status_request()]
