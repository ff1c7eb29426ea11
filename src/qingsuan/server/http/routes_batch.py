"""Routes: a file of customer transfers in one request, booked through the banks' bulk
path (issue 15): ``POST /v1/participants/{p}/transfer-batches`` (CSV or JSON lines), then
the batch's outcome and each item's by the batch id."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from qingsuan.clock import format_time
from qingsuan.server.http import batch_book, batch_gc, batch_parse, inputs
from qingsuan.server.http.batch_book import AccountIndex
from qingsuan.server.http.batch_parse import MAX_BODY_BYTES, Rows
from qingsuan.server.http.batch_store import BatchStore, Outcome
from qingsuan.server.http.core import SandboxCore
from qingsuan.server.http.deps import Acting, Core, Reading
from qingsuan.server.http.errors import ERRORS, ApiError

router = APIRouter(prefix="/v1/participants/{participant}/transfer-batches",
                   responses=ERRORS)

_CSV: Final = {"text/csv", "application/csv"}
_JSONL: Final = {"application/jsonl", "application/x-ndjson", "application/x-jsonlines",
                 "application/json-lines"}
_BATCH_ID: Final = re.compile(r"^B\d{1,19}$")
#: items one page of ``/items`` holds at most
MAX_PAGE: Final = 10_000

_BODY: Final = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example":
                 "debtor_account,creditor_bank,creditor_account,creditor_name,amount,urgent\n"
                 "9222020000000010017,CCB,9217000000000010011,Holder CCB 1,1234.50,0\n"},
    "application/x-ndjson": {"schema": {"type": "string"}, "example":
                             '{"debtor_account": "9222020000000010017", "creditor": {"bank": '
                             '"CCB", "account": "9217000000000010011", "name": "Holder CCB '
                             '1"}, "amount": "1234.50", "urgent": false}\n'}}}}


def _state(request: Request, c: SandboxCore) -> tuple[BatchStore, AccountIndex]:
    """The app's batch outcomes and account index, made at first use (the event loop's
    thread only: no two requests make them at once)."""
    state = request.app.state
    if getattr(state, "batches", None) is None:
        state.batches = BatchStore.beside(c.store)
        state.batch_index = AccountIndex()
    return state.batches, state.batch_index


async def _read(request: Request) -> tuple[str, bytes]:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in _CSV and kind not in _JSONL:
        raise ApiError(415, "unsupported_media_type", "send the batch as text/csv (with a "
                       "header line) or application/x-ndjson (JSON lines)", "content-type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"a batch is at most {MAX_BODY_BYTES:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"a batch is at most {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    if size == 0:
        raise ApiError(400, "missing_body", "the batch is empty")
    return ("csv" if kind in _CSV else "jsonl"), b"".join(chunks)


def _parse(kind: str, body: bytes) -> Rows:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"a batch is UTF-8 text (byte {exc.start} "
                       "is not)") from None
    with batch_gc.paused():
        return batch_parse.parse_csv(text) if kind == "csv" else \
            batch_parse.parse_jsonl(text)


@router.post("", status_code=201, openapi_extra=_BODY,
             summary="Send a batch of customer transfers (CSV or JSON lines)")
async def send_batch(request: Request, participant: Acting, c: Core,
                     key: Annotated[str | None, Query(description=(
                         "your idempotency key for this batch (1 to 35 letters, digits, "
                         "- _ .): a batch sent again with the same key is refused 409 "
                         "`duplicate` naming the first one's id, never booked twice"))] = None
                     ) -> JSONResponse:
    """Your customers' transfers, up to 1,000,000 in one body of up to 128 MiB
    (`batch_parse.MAX_ITEMS`, `MAX_BODY_BYTES`): `text/csv` with the header
    `debtor_account,creditor_bank,creditor_account,creditor_name,amount[,urgent]`, or
    `application/x-ndjson`, one `{"debtor_account", "creditor": {"bank", "account",
    "name"}, "amount", "urgent"}` a line. Any bad line (an amount with more than two
    decimals, negative, an account that is not your customer's, an unknown creditor
    account) refuses the whole batch, naming the line (`line`) and the field: nothing is
    booked. Otherwise the batch is ONE logged bulk command through your bank (行内, BEPS
    up to its item limit, HVPS above, IBPS when `urgent`), durable before the answer:
    201 with the batch id, counts and value credited and rejected by reason, and the
    link to each item's status."""
    store, index = _state(request, c)
    if key is not None:
        inputs.payment_id(key, "key")
    kind, body = await _read(request)
    rows = await run_in_threadpool(_parse, kind, body)

    def job() -> Outcome:
        prior = None if key is None else store.by_key(participant, key, c.engine.log)
        if prior is not None:
            raise ApiError(409, "duplicate", f"you sent a batch with key {key!r} before: "
                           f"{prior.id}", "key", extra={"batch": prior.id})
        with batch_gc.paused():
            outcome = batch_book.book(c.world, participant, rows, index,
                                      format_time(c.engine.now_us))
        outcome.key = key
        store.save(outcome)  # (before the group commit: see batch_store.py)
        store.added(outcome)  # (a resend in this same group is a duplicate already)
        return outcome

    outcome = await c.writer.call(job)
    summary = await run_in_threadpool(outcome.summary)
    return JSONResponse(summary, status_code=201,
                        headers={"Location": summary["items_url"].rsplit("/", 1)[0]})


async def _outcome(request: Request, c: SandboxCore, participant: str, batch_id: str
                   ) -> Outcome:
    store, _ = _state(request, c)
    found = None
    if _BATCH_ID.match(batch_id):
        found = await c.writer.call(lambda: store.get(participant, batch_id, c.engine.log))
    if found is None:
        raise ApiError(404, "unknown_batch", f"{participant} sent no batch "
                       f"{batch_id[:40]!r}", "batch_id")
    return found


@router.get("/{batch_id}", summary="A batch's outcome")
async def batch(request: Request, batch_id: str, participant: Reading, c: Core) -> Any:
    """Counts and value credited and rejected (by reason), by system, as the answer to
    the batch said them."""
    return (await _outcome(request, c, participant, batch_id)).summary()


@router.get("/{batch_id}/items", summary="Each item's status in a batch")
async def batch_items(request: Request, batch_id: str, participant: Reading, c: Core,
                      offset: Annotated[int, Query(ge=0, description="the first item (0: "
                                                   "the batch's first line)")] = 0,
                      limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=(
                          "items at most"))] = 1000) -> Any:
    """Each item in the file's order: its line, system, amount, status (credited or
    rejected) and reason; page with `offset` = the last answer's `next`."""
    return (await _outcome(request, c, participant, batch_id)).items(offset, limit)
