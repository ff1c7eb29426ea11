"""No input gets a 5xx: random JSON bodies, ids, dates and XML bytes on every participant
route, and random clock changes, are each answered 2xx or a 4xx with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http_api import Api, order, pacs008, sandbox_api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
FIELDS = ["id", "debtor_account", "amount", "channel", "urgent", "system", "creditor"]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with sandbox_api() as opened:
        yield opened


def _ok(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400 and "json" in answer.headers.get("content-type", ""):
        body = answer.json()
        assert body["reason"] and body["message"], body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=7),
       st.booleans(), st.text(max_size=12))
def test_random_transfers_never_5xx(api: Api, fields: dict[str, Any], base: bool,
                                    suffix: str) -> None:
    body = {**order(id=f"F{uuid.uuid4().hex[:8]}"), **fields} if base else fields
    _ok(api.post("/v1/participants/ICBC/transfers", json=body))
    part = quote(suffix, safe="") or "x"
    _ok(api.get(f"/v1/participants/ICBC/payments/API/{part}"))
    _ok(api.get(f"/v1/participants/ICBC/statements/{part}"))


def test_json_that_python_reads_but_json_forbids(api: Api) -> None:
    for raw in (b'{"id": Infinity}', b'{"amount": NaN}', b'[1, 2]', b'"text"', b"null",
                b'{"creditor": {"bank": -Infinity}}'):
        _ok(api.post("/v1/participants/ICBC/transfers", content=raw,
                     headers={"content-type": "application/json"}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.integers(0, 2000), st.binary(max_size=20))
def test_random_xml_never_5xx(api: Api, junk: bytes, cut: int, insert: bytes) -> None:
    _ok(api.xml(junk, accept="application/json"))
    valid = pacs008(f"M{uuid.uuid4().hex[:10]}", "T1")
    _ok(api.xml(valid[:cut] + insert + valid[cut:]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["at", "advance", "mode"]), json_values, max_size=3))
def test_random_clock_changes_never_5xx(api: Api, change: dict[str, Any]) -> None:
    _ok(api.post("/v1/operator/clock", "operator", json=change))
