"""The batch endpoint's contract (routes_batch.py, docs/SERVER.md): a file of customer
transfers (CSV or JSON lines) booked as one logged bulk command, or refused whole naming
the line and field with nothing booked; its outcome kept across a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_api import CCB1, ICBC1, ICBC2, NAMES, Api, assert_refusal, open_api, sandbox_api

from qingsuan.banks import reconcile
from qingsuan.server.http import KeyRing

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HEADER = "debtor_account,creditor_bank,creditor_account,creditor_name,amount,urgent\n"
ROUTE = "/v1/participants/{}/transfer-batches"


@pytest.fixture
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def line(amount: str = "100.00", debtor: str = ICBC1, bank: str = "CCB",
         account: str = CCB1, name: str = "Holder CCB 1", urgent: str = "0") -> str:
    return f"{debtor},{bank},{account},{name},{amount},{urgent}\n"


def send_csv(api: Api, text: str, who: str = "ICBC") -> Any:
    return api.post(ROUTE.format(who), who, content=text.encode(),
                    headers={"content-type": "text/csv"})


def balance(api: Api, asker: str, bank: str, account: str) -> str:
    """A customer's balance as another participant sees it (IBPS balance inquiry, with
    the holder's consent given once)."""
    answer = api.get(f"/v1/participants/{asker}/inquiries/balance", asker,
                     params={"bank": bank, "account": account})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["balance"])


def consent(api: Api, holder_bank: str, account: str, asker: str) -> None:
    assert api.post(f"/v1/participants/{holder_bank}/consents", holder_bank,
                    json={"account": account, "asker": asker}).status_code == 200


def test_csv_batch_is_booked_and_balances_move(api: Api) -> None:
    consent(api, "CCB", CCB1, "ICBC")
    consent(api, "ICBC", ICBC1, "CCB")
    payer_before = balance(api, "CCB", "ICBC", ICBC1)
    payee_before = balance(api, "ICBC", "CCB", CCB1)
    text = HEADER + line("1234.50") + line("0.01") + \
        line("10", bank="ICBC", account=ICBC2, name="Holder ICBC 2") + line("80000.00")
    answer = send_csv(api, text)
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["items"] == 4 and doc["value"] == "81244.51"
    assert doc["credited"] == {"count": 4, "value": "81244.51"}
    assert doc["rejected"]["count"] == 0 and doc["queued"]["count"] == 0
    assert doc["by_system"]["BEPS"]["count"] == 2 and doc["by_system"]["BOOK"]["count"] == 1
    assert doc["by_system"]["HVPS"]["value"] == "80000.00"
    # the payer paid all four, the payee received the three to CCB (in fen: no floats)
    assert fen(balance(api, "CCB", "ICBC", ICBC1)) == fen(payer_before) - 8_124_451
    assert fen(balance(api, "ICBC", "CCB", CCB1)) == fen(payee_before) + 8_123_451
    items = api.get(doc["items_url"]).json()
    assert [(i["line"], i["system"], i["status"]) for i in items["items"]] == [
        (2, "BEPS", "credited"), (3, "BEPS", "credited"), (4, "BOOK", "credited"),
        (5, "HVPS", "credited")]
    assert items["next"] is None
    assert api.get(ROUTE.format("ICBC") + f"/{doc['id']}").json() == doc
    banks = api.core.world.banks
    assert reconcile.books_balanced(banks) and reconcile.money_conserved(banks)


def fen(text: str) -> int:
    yuan, _, cents = text.partition(".")
    return int(yuan) * 100 + int((cents + "00")[:2])


def test_jsonl_batch_and_rejections_by_reason(api: Api) -> None:
    rows = [{"debtor_account": ICBC1, "amount": "5.00", "urgent": True,
             "creditor": {"bank": "105100000017", "account": CCB1, "name": "Holder CCB 1"}},
            {"debtor_account": ICBC2, "amount": "999999999.00",  # more than it holds
             "creditor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}}]
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    answer = api.post(ROUTE.format("ICBC"), content=body.encode(),
                      headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 201, answer.text
    doc = answer.json()
    assert doc["credited"] == {"count": 1, "value": "5.00"}
    assert doc["rejected"]["by_reason"]["AM04"]["count"] == 1
    assert doc["rejected"]["by_reason"]["AM04"]["value"] == "999999999.00"
    items = api.get(doc["items_url"], params={"offset": 1, "limit": 1}).json()["items"]
    assert items == [{"line": 2, "system": "HVPS", "amount": "999999999.00",
                      "status": "rejected", "reason": "AM04"}]
    assert doc["by_system"]["IBPS"]["credited"] == 1


@pytest.mark.parametrize(("bad", "status", "reason", "field"), [
    (line("10.005"), 422, "amount_precision", "amount"),
    (line("-5.00"), 422, "amount_negative", "amount"),
    (line("0.00"), 422, "amount_zero", "amount"),
    (line("1e3"), 422, "invalid_amount", "amount"),
    (line(debtor="9222020000000099999"), 422, "unknown_account", "debtor_account"),
    (line(debtor=CCB1, account=ICBC2, bank="ICBC"), 422, "unknown_account",
     "debtor_account"),  # another bank's customer
    (line(account="9217000000000099999"), 422, "unknown_account", "creditor_account"),
    (line(bank="NOPE"), 422, "unknown_participant", "creditor_bank"),
    (line(bank="ICBC", account=ICBC1), 422, "same_account", "creditor_account"),
    (line(urgent="maybe"), 422, "invalid_field", "urgent"),
    ("a,b,c\n", 422, "invalid_line", "line"),
    (line(debtor="12ab"), 422, "invalid_account", "debtor_account"),
])
def test_a_bad_line_refuses_the_whole_batch_naming_it(api: Api, bad: str, status: int,
                                                      reason: str, field: str) -> None:
    seq = api.core.engine.applied_seq
    answer = send_csv(api, HEADER + line() + line() + bad + line())
    assert_refusal(answer, status, reason, field)
    assert answer.json()["line"] == 4 and answer.json()["message"].startswith("line 4:")
    assert api.core.engine.applied_seq == seq  # nothing booked, nothing logged


@pytest.mark.parametrize(("body", "kind", "status", "reason"), [
    ("", "text/csv", 400, "missing_body"),
    (HEADER, "text/csv", 400, "missing_body"),
    ("amount,debtor\n1,2\n", "text/csv", 400, "invalid_header"),
    (HEADER + line(), "application/json", 415, "unsupported_media_type"),
    ('{"debtor_account": 1}\n', "application/x-ndjson", 422, "invalid_type"),
    ("not json\n", "application/x-ndjson", 400, "invalid_json"),
])
def test_malformed_bodies(api: Api, body: str, kind: str, status: int, reason: str) -> None:
    seq = api.core.engine.applied_seq
    answer = api.post(ROUTE.format("ICBC"), content=body.encode(),
                      headers={"content-type": kind})
    assert_refusal(answer, status, reason)
    assert api.core.engine.applied_seq == seq


def test_jsonl_bad_amount_names_line_and_field(api: Api) -> None:
    good = {"debtor_account": ICBC1, "amount": "1.00",
            "creditor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}}
    body = "\n".join(json.dumps(r) for r in (good, {**good, "amount": "1.234"}))
    answer = api.post(ROUTE.format("ICBC"), content=body.encode(),
                      headers={"content-type": "application/x-ndjson"})
    assert_refusal(answer, 422, "amount_precision", "amount")
    assert answer.json()["line"] == 2


def test_quoted_csv_names_are_read(api: Api) -> None:
    answer = send_csv(api, HEADER + f'{ICBC1},CCB,{CCB1},"Holder CCB 1",7.00,0\n')
    assert answer.status_code == 201, answer.text
    assert answer.json()["credited"]["value"] == "7.00"


def test_another_participant_cannot_send_or_read(api: Api) -> None:
    doc = send_csv(api, HEADER + line()).json()
    mine = ROUTE.format("ICBC") + f"/{doc['id']}"
    seq = api.core.engine.applied_seq
    refused = send_csv(api, HEADER + line(), who="CCB").json()  # CCB sends ICBC's customer
    assert refused["reason"] == "unknown_account" and api.core.engine.applied_seq == seq
    assert api.post(ROUTE.format("ICBC"), "CCB", content=HEADER + line(),
                    headers={"content-type": "text/csv"}).status_code == 403
    assert api.get(mine, "CCB").status_code == 403
    theirs = api.get(ROUTE.format("CCB") + f"/{doc['id']}", "CCB")
    assert theirs.status_code == 404 and theirs.json()["reason"] == "unknown_batch"
    assert api.get(mine, "operator").status_code == 200


def test_the_outcome_is_there_after_a_restart(tmp_path: Path) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = f"sqlite:///{tmp_path}/s.db"
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        doc = send_csv(api, HEADER + line("3.00") + line("999999999.00",
                                                              debtor=ICBC2)).json()
    finally:
        core.close()
    client, core = open_api(store, ring)
    again = Api(client, core, keys)
    try:
        assert again.get(ROUTE.format("ICBC") + f"/{doc['id']}").json() == doc
        items = again.get(doc["items_url"]).json()["items"]
        assert [i["status"] for i in items] == ["credited", "rejected"]
    finally:
        core.close()


def test_an_outcome_whose_command_never_reached_the_log_is_not_shown(tmp_path: Path
                                                                      ) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = f"sqlite:///{tmp_path}/s.db"
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        doc = send_csv(api, HEADER + line("3.00")).json()
    finally:
        core.close()
    folder = tmp_path / "s.db.batches"
    (path,) = folder.iterdir()
    seq = int(doc["id"][1:])
    ghost = path.read_bytes().replace(f'"id": "B{seq}"'.encode(), f'"id": "B{seq + 1}"'
                                      .encode(), 1).replace(f'"seq": {seq},'.encode(),
                                                            f'"seq": {seq + 1},'.encode(), 1)
    (folder / f"ICBC.B{seq + 1}.batch").write_bytes(ghost)  # as if its append had failed
    client, core = open_api(store, ring)
    again = Api(client, core, keys)
    try:
        mine = ROUTE.format("ICBC")
        assert again.get(f"{mine}/B{seq + 1}").status_code == 404  # past the log's end
        assert again.transfer(amount="1.00").status_code == 201  # another command takes it
        assert core.engine.applied_seq == seq + 1
        assert again.get(f"{mine}/B{seq + 1}").status_code == 404  # not a batch's command
        assert again.get(f"{mine}/{doc['id']}").status_code == 200
    finally:
        core.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.text(max_size=24), min_size=0, max_size=7).map(",".join),
                min_size=0, max_size=4),
       st.sampled_from(["text/csv", "application/x-ndjson"]), st.booleans())
def test_random_files_never_5xx(api: Api, lines: list[str], kind: str, header: bool
                                ) -> None:
    text = (HEADER if header else "") + "\n".join(lines)
    answer = api.post(ROUTE.format("ICBC"), content=text.encode(),
                      headers={"content-type": kind})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["reason"] and answer.json()["message"]


def test_jsonl_unknown_creditor_is_named_as_json_names_it(api: Api) -> None:
    row = {"debtor_account": ICBC1, "amount": "1.00",
           "creditor": {"bank": "CCB", "account": "9217000000000099999", "name": "X"}}
    answer = api.post(ROUTE.format("ICBC"), content=json.dumps(row).encode(),
                      headers={"content-type": "application/x-ndjson"})
    assert_refusal(answer, 422, "unknown_account", "creditor.account")
    assert answer.json()["line"] == 1


def test_a_total_too_large_for_the_books_is_refused(api: Api) -> None:
    seq = api.core.engine.applied_seq
    huge = line("9999999999999.99")  # each within the item limit, ~1.15e18 fen together
    answer = send_csv(api, HEADER + huge * 1200)
    assert_refusal(answer, 422, "amount_too_large", "amount")
    assert api.core.engine.applied_seq == seq


GOOD_JSON = {"debtor_account": ICBC1, "amount": "1.00",
             "creditor": {"bank": "CCB", "account": CCB1, "name": "Holder CCB 1"}}


@pytest.mark.parametrize(("bad", "reason", "field"), [
    ({**GOOD_JSON, "urgent": 1}, "invalid_type", "urgent"),
    ({**GOOD_JSON, "amount": 1.5}, "invalid_amount", "amount"),
    ({**GOOD_JSON, "amount": "1,00"}, "invalid_amount", "amount"),
    ({**GOOD_JSON, "amount": "-1.00"}, "amount_negative", "amount"),
    ({**GOOD_JSON, "memo": "x"}, "unknown_field", "memo"),
    ({**GOOD_JSON, "creditor": {"bank": "CCB", "account": CCB1}}, "missing_field",
     "creditor.name"),
    ({k: v for k, v in GOOD_JSON.items() if k != "amount"}, "invalid_amount", "amount"),
])
def test_jsonl_bad_line_is_named(api: Api, bad: dict[str, Any], reason: str, field: str
                                 ) -> None:
    seq = api.core.engine.applied_seq
    body = "\n".join(json.dumps(r) for r in (GOOD_JSON, GOOD_JSON, bad, GOOD_JSON))
    answer = api.post(ROUTE.format("ICBC"), content=body.encode(),
                      headers={"content-type": "application/x-ndjson"})
    assert_refusal(answer, 422, reason, field)
    assert answer.json()["line"] == 3 and api.core.engine.applied_seq == seq


def test_a_batch_resent_with_its_key_is_not_booked_twice(tmp_path: Path) -> None:
    ring, keys = KeyRing.for_world(NAMES)
    store = f"sqlite:///{tmp_path}/s.db"
    path = ROUTE.format("ICBC") + "?key=PAYROLL-2026-11"
    client, core = open_api(store, ring)
    api = Api(client, core, keys)
    try:
        first = api.post(path, content=HEADER + line(), headers={"content-type": "text/csv"})
        assert first.status_code == 201 and first.json()["key"] == "PAYROLL-2026-11"
        seq = core.engine.applied_seq
        again = api.post(path, content=HEADER + line(), headers={"content-type": "text/csv"})
        assert_refusal(again, 409, "duplicate", "key")
        assert again.json()["batch"] == first.json()["id"] and core.engine.applied_seq == seq
        bad = api.post(ROUTE.format("ICBC") + "?key=a/b", content=HEADER + line(),
                       headers={"content-type": "text/csv"})
        assert_refusal(bad, 422, "invalid_id", "key")
        # CCB's own key space: the same key is CCB's first batch
        ccb = api.post(ROUTE.format("CCB") + "?key=PAYROLL-2026-11", "CCB",
                       content=HEADER + line(debtor=CCB1, bank="ICBC", account=ICBC2,
                                             name="Holder ICBC 2"),
                       headers={"content-type": "text/csv"})
        assert ccb.status_code == 201, ccb.text
    finally:
        core.close()
    client, core = open_api(store, ring)  # a restart remembers the key
    api = Api(client, core, keys)
    try:
        again = api.post(path, content=HEADER + line(), headers={"content-type": "text/csv"})
        assert again.status_code == 409 and again.json()["batch"] == first.json()["id"]
    finally:
        core.close()
