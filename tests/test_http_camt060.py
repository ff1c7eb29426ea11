"""camt.060 (a participant's request for a report) over HTTP, as XML to .../messages and
as JSON to .../reports, and through `qingsuan cnaps send`: the participant gets the
camt.053 or camt.052 of its own settlement account, the same bytes the statement and
intraday routes answer; another's account, a report CNAPS does not make, a day without a
statement are refused 4xx with their reasons, and nothing is logged."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_api import CCB, DAY, ICBC, Api, assert_refusal, at, sandbox_api

from qingsuan.messages import (
    CAMT060,
    ReportRequest,
    build_camt060,
    parse_camt052,
    parse_camt053,
    parse_pacs002,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: ICBC's settlement account once funded, as the sandbox opens (100,000,000.00)
OPENING_FEN = 10_000_000_000
#: ICBC's urgent JSON transfer to CCB, through HVPS
SENT_FEN = 123_450
REPORTS = "/v1/participants/{}/reports"


def request(**fields: Any) -> bytes:
    """ICBC's camt.060 asking for the statement of DAY (fields change it)."""
    base = ReportRequest(msg_id="ICBCR1", created_at=at(10, 30), request_id="REQ1",
                         requested_message="camt.053", account=ICBC, account_owner=ICBC,
                         from_date=DAY)
    return build_camt060(dataclasses.replace(base, **fields))


def rejected(answer: Any, status: int, code: str, element: str | None = None) -> str:
    """The pacs.002 RJCT a refused camt.060 is answered with: its text."""
    assert answer.status_code == status, answer.text
    assert answer.headers["qingsuan-reason"] == code
    (report,) = parse_pacs002(answer.content)
    assert report.status == "RJCT" and report.reason_code == code
    assert report.original_msg_id == "ICBCR1" and report.original_message_type == CAMT060
    info = report.additional_info or ""
    if element is not None:
        assert element in info, info
    return info


@pytest.fixture
def api() -> Iterator[Api]:
    """The sandbox at 10:00 on DAY, ICBC having sent 1,234.50 to CCB through HVPS."""
    with sandbox_api() as opened:
        assert opened.transfer(urgent=True).status_code == 201
        yield opened


def close_day(api: Api, until: str = "2026-11-26T20:00") -> None:
    assert api.clock(at=until).status_code == 200


def test_camt052_asked_by_camt060_is_the_intraday_report(api: Api) -> None:
    seq = api.core.engine.applied_seq
    answer = api.xml(request(requested_message="camt.052", from_date=None))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/xml")
    (report,) = parse_camt052(answer.content)
    assert report.account == ICBC and report.business_date == DAY
    assert report.closing_balance_fen == OPENING_FEN - SENT_FEN
    assert [(e.direction, e.amount_fen) for e in report.entries][-1] == ("debit", SENT_FEN)
    # the same bytes as the intraday route: one piece of code answers both
    assert answer.content == api.get("/v1/participants/ICBC/reports/intraday").content
    # today named explicitly: the same report; the full version name is taken too
    again = api.xml(request(requested_message="camt.052.001.08", to_date=DAY))
    assert again.status_code == 200 and again.content == answer.content
    assert api.core.engine.applied_seq == seq  # a read: nothing logged


def test_camt053_asked_by_camt060_is_the_statement_of_the_closed_day(api: Api) -> None:
    close_day(api)
    answer = api.xml(request())
    assert answer.status_code == 200, answer.text
    (statement,) = parse_camt053(answer.content)
    assert statement.account == ICBC and statement.business_date == DAY
    # the sandbox opened that day: funded, then the transfer left
    assert (statement.opening_balance_fen, statement.closing_balance_fen) == (
        0, OPENING_FEN - SENT_FEN)
    assert [(e.direction, e.amount_fen) for e in statement.entries] == [
        ("credit", OPENING_FEN), ("debit", SENT_FEN)]
    assert answer.content == api.get("/v1/participants/ICBC/statements/2026-11-26").content
    # without Acct: the owner's own account
    assert api.xml(request(account=None)).content == answer.content


def test_a_period_answers_each_closed_business_day_in_it(api: Api) -> None:
    close_day(api, "2026-11-30T20:00")  # Thursday 26, Friday 27; Monday 30
    answer = api.xml(request(from_date=dt.date(2026, 11, 20), to_date=dt.date(2026, 11, 29)))
    assert answer.status_code == 200, answer.text
    statements = parse_camt053(answer.content)
    # the 20th to the 24th: before the world's first day (the 25th); 28 and 29: a weekend
    assert [s.business_date for s in statements] == [
        dt.date(2026, 11, 25), DAY, dt.date(2026, 11, 27)]
    assert statements[1].closing_balance_fen == statements[2].opening_balance_fen == \
        OPENING_FEN - SENT_FEN
    # two requests in one message: their days in one camt.053, each once
    two = build_camt060([
        ReportRequest(msg_id="ICBCR1", created_at=at(10, 30), requested_message="camt.053",
                      account_owner=ICBC, from_date=dt.date(2026, 11, 30)),
        ReportRequest(msg_id="ICBCR1", created_at=at(10, 30), requested_message="camt.053",
                      account_owner=ICBC, from_date=DAY, to_date=dt.date(2026, 11, 27))])
    days = [s.business_date for s in parse_camt053(api.xml(two).content)]
    assert days == [DAY, dt.date(2026, 11, 27), dt.date(2026, 11, 30)]


def test_another_participants_account_is_refused_and_shows_nothing(api: Api) -> None:
    close_day(api)
    seq = api.core.engine.applied_seq
    # CCB asks for ICBC's statement: as owner, or as the account
    for fields, code, element in (
            ({"account_owner": ICBC, "account": ICBC}, "RC01", "AcctOwnr"),
            ({"account_owner": CCB, "account": ICBC}, "AC01", "Acct/Id/Othr/Id"),
            ({"account_owner": "999999999999", "account": None}, "RC01", "AcctOwnr")):
        answer = api.xml(request(**fields), "CCB")
        info = rejected(answer, 403, code, element)
        assert "OPBD" not in answer.text and "100000000" not in info
        as_json = api.xml(request(**fields), "CCB", accept="application/json")
        assert_refusal(as_json, 403, "not_yours")
        assert as_json.json()["iso_reason"] == code
        assert element in as_json.json()["field"]
    # CCB's own: its statement, with nothing of ICBC's account
    mine = api.xml(request(account_owner=CCB, account=CCB), "CCB")
    (statement,) = parse_camt053(mine.content)
    assert statement.account == CCB and ICBC.encode() not in mine.content
    # on another participant's path, whatever the message says: 403 before it is read
    assert_refusal(api.post("/v1/participants/ICBC/messages", "CCB", content=request(),
                            headers={"content-type": "application/xml"}), 403, "not_yours")
    assert api.core.engine.applied_seq == seq


def test_a_day_without_a_statement_is_404(api: Api) -> None:
    # the day is not closed yet
    info = rejected(api.xml(request()), 404, "DT01", "FrDt")
    assert "no statement of 2026-11-26" in info
    close_day(api)
    for day in (dt.date(2026, 11, 28), dt.date(2030, 1, 2), dt.date(1999, 12, 31)):
        rejected(api.xml(request(from_date=day)), 404, "DT01")
    as_json = api.xml(request(from_date=dt.date(2026, 11, 28)), accept="application/json")
    assert_refusal(as_json, 404, "no_statement")
    # an intraday report is of today only
    rejected(api.xml(request(requested_message="camt.052", from_date=dt.date(2026, 11, 25))),
             404, "DT01", "FrDt")


def test_reports_cnaps_does_not_make_are_422(api: Api) -> None:
    for name in ("camt.054", "camt.053.001.02", "pacs.008.001.08"):
        info = rejected(api.xml(request(requested_message=name)), 422, "NARR", "ReqdMsgNmId")
        assert "camt.053" in info and "camt.052" in info
    as_json = api.xml(request(requested_message="camt.054"), accept="application/json")
    assert_refusal(as_json, 422, "unsupported_report")
    # one message, one kind of answer
    mixed = build_camt060([
        ReportRequest(msg_id="ICBCR1", created_at=at(10, 30), requested_message=name,
                      account_owner=ICBC) for name in ("camt.052", "camt.053")])
    rejected(api.xml(mixed), 422, "NARR")
    # a statement names its day; at most 31 days
    info = rejected(api.xml(request(from_date=None)), 422, "DT01", "FrDt")
    assert "names its day" in info
    rejected(api.xml(request(from_date=dt.date(2026, 1, 1), to_date=DAY)), 422, "DT01",
             "ToDt")


def test_xsd_invalid_camt060_is_400_naming_the_element(api: Api) -> None:
    seq = api.core.engine.applied_seq
    no_owner = request().replace(b"<AcctOwnr>", b"<Owner>").replace(b"</AcctOwnr>",
                                                                       b"</Owner>")
    answer = api.xml(no_owner)
    info = rejected(answer, 400, "FF01", "/Document/AcctRptgReq/RptgReq/Owner")
    assert "AcctOwnr" in info  # the validator says what it expected
    as_json = api.xml(no_owner, accept="application/json")
    assert_refusal(as_json, 400, "FF01", "/Document/AcctRptgReq/RptgReq/Owner")
    bad_date = request().replace(b"<FrDt>2026-11-26</FrDt>", b"<FrDt>26-11-2026</FrDt>")
    rejected(api.xml(bad_date), 400, "FF01", "FrDt")
    backwards = request(from_date=DAY, to_date=DAY).replace(b"<ToDt>2026-11-26",
                                                            b"<ToDt>2026-11-20")
    info = rejected(api.xml(backwards), 400, "DT01", "/RptgPrd/FrToDt/ToDt")
    assert "before it starts" in info
    short_code = request().replace(b"<MmbId>102100099996</MmbId>", b"<MmbId>1021</MmbId>")
    rejected(api.xml(short_code), 400, "RC01", "AcctOwnr/Agt/FinInstnId/ClrSysMmbId/MmbId")
    assert api.core.engine.applied_seq == seq


# ---------------------------------------------------------------------- JSON


def test_json_report_request_answers_the_same_reports(api: Api) -> None:
    intraday = api.post(REPORTS.format("ICBC"), json={"message": "camt.052"})
    assert intraday.status_code == 200 and intraday.headers["content-type"].startswith(
        "application/xml")
    assert intraday.content == api.get("/v1/participants/ICBC/reports/intraday").content
    close_day(api, "2026-11-27T20:00")
    one = api.post(REPORTS.format("ICBC"), json={"message": "camt.053", "date": "2026-11-26"})
    assert one.status_code == 200, one.text
    assert one.content == api.get("/v1/participants/ICBC/statements/2026-11-26").content
    period = api.post(REPORTS.format("ICBC"), json={"message": "camt.053.001.08",
                                                    "date": "2026-11-26", "to": "2026-11-29"})
    assert [s.business_date for s in parse_camt053(period.content)] == [
        DAY, dt.date(2026, 11, 27)]


@pytest.mark.parametrize(("body", "status", "reason", "field"), [
    ({"message": "camt.054"}, 422, "unsupported_report", "message"),
    ({"message": "camt.053", "date": "26-11-2026"}, 422, "invalid_date", "date"),
    ({"message": "camt.053", "date": "2026-11-26", "to": "2026-11-25"}, 422,
     "invalid_date", "to"),
    ({"message": "camt.053", "to": "2026-11-25"}, 422, "missing_field", "date"),
    ({"message": "camt.053"}, 422, "invalid_period", "date"),
    ({"message": "camt.053", "date": "2026-01-01", "to": "2026-11-26"}, 422,
     "invalid_period", "to"),
    ({"message": "camt.053", "date": "2026-11-28"}, 404, "no_statement", "date"),
    ({"message": "camt.052", "date": "2026-11-25"}, 404, "no_statement", "date"),
    ({"message": "camt.053", "date": "2026-11-26", "account": "x"}, 422, "unknown_field",
     "account"),
    ({"date": "2026-11-26"}, 422, "missing_field", "message"),
    ({"message": 53}, 422, "invalid_type", "message"),
])
def test_json_report_request_refusals(api: Api, body: dict[str, Any], status: int,
                                      reason: str, field: str) -> None:
    close_day(api)
    seq = api.core.engine.applied_seq
    assert_refusal(api.post(REPORTS.format("ICBC"), json=body), status, reason, field)
    assert api.core.engine.applied_seq == seq


def test_json_report_request_is_the_participants_own(api: Api) -> None:
    close_day(api)
    body = {"message": "camt.053", "date": "2026-11-26"}
    for target in ("ICBC", "NOSUCHBANK"):
        answer = api.post(REPORTS.format(target), "CCB", json=body)
        assert_refusal(answer, 403, "not_yours")
        assert "OPBD" not in answer.text
    assert_refusal(api.post(REPORTS.format("ICBC"), "operator", json=body), 403,
                   "participant_only")
    (own,) = parse_camt053(api.post(REPORTS.format("CCB"), "CCB", json=body).content)
    assert own.account == CCB and own.closing_balance_fen == OPENING_FEN + SENT_FEN
    assert [(e.direction, e.amount_fen) for e in own.entries][-1] == ("credit", SENT_FEN)


def test_cnaps_send_answers_a_camt060(tmp_path: Path) -> None:
    """The file-based sandbox: `qingsuan cnaps send` takes a camt.060 and prints the
    camt.053 asked for (exit 0), or the pacs.002 refusing another's account (exit 1)."""
    from test_cli import qingsuan

    story = Path(str(resources.files("qingsuan") / "scenarios" / "hvps-queue.yaml"))
    store = tmp_path / "world.db"
    assert qingsuan("run", story, "--store", store).returncode == 0
    ask = tmp_path / "camt060.xml"
    ask.write_bytes(request(account_owner=CCB, account=None,
                            from_date=dt.date(2026, 11, 25)))
    sent = qingsuan("cnaps", "send", ask, "--as", "CCB", "--store", store)
    assert sent.returncode == 0, sent.stderr
    (statement,) = parse_camt053(sent.stdout.encode())
    # funded with 2,000,000.00 at 08:00 that day, then 5,000,100.00 came in
    assert (statement.account, statement.closing_balance_fen) == (CCB, 700_010_000)
    theirs = qingsuan("cnaps", "send", ask, "--as", "ICBC", "--store", store)
    assert theirs.returncode == 1, theirs.stderr
    (refused,) = parse_pacs002(theirs.stdout.encode())
    assert refused.status == "RJCT" and refused.reason_code == "RC01"
    assert "OPBD" not in theirs.stdout


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(element=st.sampled_from([b"ReqdMsgNmId", b"FrDt", b"ToDt", b"MmbId", b"Id", b"MsgId",
                                b"CreDtTm", b"Tp"]),
       text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_random_camt060_values_never_5xx(api: Api, element: bytes, text: str) -> None:
    """Any value in any element of a camt.060: a report or a 4xx with a reason."""
    xml = request(to_date=DAY)
    start = xml.index(b"<" + element + b">") + len(element) + 2
    end = xml.index(b"</" + element + b">", start)
    value = text.replace("&", "&amp;").replace("<", "&lt;").encode()
    answer = api.xml(xml[:start] + value + xml[end:], accept="application/json")
    assert answer.status_code in (200, 400, 403, 404, 422), answer.text
    if answer.status_code != 200:
        assert answer.json()["reason"] and answer.json()["message"]
