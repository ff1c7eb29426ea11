"""Review of the card gateway's performance work (f9fa5d8..): the ledger's deferred tail,
the ISO 8583 fast path, the edge/core answer tuples, CardTxn with slots, Params and the
SQLite one-row append. Each test pins a behaviour that must not change."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import iso8583
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qingsuan.ledger.ledger as ledger_module
from qingsuan.cards.iso8583 import (
    BINARY_FIELDS,
    DATA_FIELDS,
    SPEC,
    Decoded,
    Malformed,
    decode_message,
    encode_message,
    luhn_ok,
    read_fields,
)
from qingsuan.clock import VirtualClock, from_datetime
from qingsuan.ledger import (
    Account,
    AccountFlags,
    Ledger,
    NormalSide,
    PendingState,
    Transfer,
    TransferBatch,
    TransferFlags,
)
from qingsuan.ledger import TransferResult as R
from qingsuan.params import ParamError, Params
from qingsuan.server.card_core import CardCore
from qingsuan.server.card_edge import Forward, inbound, outbound, request_body
from qingsuan.store import open_log

F = TransferFlags
MNO = AccountFlags.MUST_NOT_OVERDRAW
ACCOUNTS = (1, 2, 3, 4, 10, 11)


def _ledger() -> Ledger:
    ledger = Ledger()
    ledger.create_book(1, "A")
    ledger.create_book(2, "B")
    ledger.create_accounts([
        Account(1, 1, NormalSide.DEBIT), Account(2, 1, NormalSide.CREDIT, MNO),
        Account(3, 1, NormalSide.CREDIT, MNO, overdraft_limit_fen=5000),
        Account(4, 1, NormalSide.DEBIT, MNO), Account(10, 2, NormalSide.CREDIT),
        Account(11, 2, NormalSide.DEBIT)])
    return ledger


class _Pair:
    """A ledger with a long tail (nothing flushed until read) beside one that writes its
    columns at the end of every batch (the behaviour before the tail, _TAIL_ROWS = 0);
    every call goes to both with the module's tail size set for each."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mp = monkeypatch
        self.deferred, self.written = _ledger(), _ledger()

    def both(self, call: Callable[[Ledger], Any]) -> Any:
        self.mp.setattr(ledger_module, "_TAIL_ROWS", 10**9)
        got = call(self.deferred)
        self.mp.setattr(ledger_module, "_TAIL_ROWS", 0)
        want = call(self.written)
        assert _plain(got) == _plain(want)
        for a in ACCOUNTS:
            assert self.deferred.balance(a) == self.written.balance(a)
        assert self.deferred.transfer_count == self.written.transfer_count
        return got

    def post(self, transfers: list[Transfer], ts: int) -> list[R]:
        return list(self.both(lambda led: led.create_transfers(transfers, ts)))

    def same_state(self) -> None:
        assert self.deferred.state_hash() == self.written.state_hash()


def _plain(value: Any) -> Any:
    if hasattr(value, "codes"):
        return [int(c) for c in value.codes]
    return value


def test_linked_chain_fails_inside_the_monotone_prefix_held_in_the_tail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(1, 1, 2, 100), Transfer(2, 1, 2, 100)], 1) == [R.OK] * 2
    assert pair.deferred._buffer, "rows stay in the tail"
    # a chain extends the prefix by one row, then fails: the prefix's last id comes back
    # from the tail (row 1, id 2)
    codes = pair.post([Transfer(3, 1, 2, 50, F.LINKED), Transfer(4, 2, 1, 10**6)], 2)
    assert codes == [R.LINKED_EVENT_FAILED, R.DEBIT_ACCOUNT_INSUFFICIENT_FUNDS]
    assert pair.deferred._mono_last_id == 2
    assert pair.post([Transfer(3, 1, 2, 7)], 3) == [R.OK]  # id 3 is free again
    assert pair.both(lambda led: led.lookup_transfer(3)).transfer.amount_fen == 7
    pair.same_state()


def test_pending_in_the_tail_posted_voided_and_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(1, 1, 2, 1000)], 1) == [R.OK]
    assert pair.post([Transfer(10, 2, 1, 300, F.PENDING),
                      Transfer(11, 2, 1, 200, F.PENDING, timeout_us=5),
                      Transfer(12, 2, 1, 100, F.PENDING, timeout_us=2)], 2) == [R.OK] * 3
    # post and void while the pending rows are still in the tail
    assert pair.post([Transfer(20, 0, 0, 0, F.POST_PENDING, pending_id=10),
                      Transfer(21, 0, 0, 0, F.VOID_PENDING, pending_id=10)], 3) == \
        [R.OK, R.PENDING_TRANSFER_ALREADY_POSTED]
    # 12 expires at 4 while its row is in the tail; 11 at 7 by a clock tick
    assert pair.post([Transfer(22, 0, 0, 0, F.POST_PENDING, pending_id=12)], 4) == \
        [R.PENDING_TRANSFER_EXPIRED]
    assert pair.both(lambda led: led.advance_time(7)) == [11]
    assert pair.both(lambda led: led.pending_state(11)) is PendingState.EXPIRED
    pair.same_state()
    pair.deferred.check_invariants()


def test_duplicates_of_rows_in_the_tail_and_a_column_batch_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    assert pair.post([Transfer(5, 1, 2, 100), Transfer(3, 1, 2, 100, code=7)], 1) == [R.OK] * 2
    assert pair.post([Transfer(5, 1, 2, 100), Transfer(5, 1, 2, 101),
                      Transfer(3, 1, 2, 100, code=8)], 2) == \
        [R.EXISTS, R.EXISTS_WITH_DIFFERENT_AMOUNT, R.EXISTS_WITH_DIFFERENT_CODE]
    # a column batch (vector path, monotone ids) after small batches: flushed first
    batch = TransferBatch.from_transfers([Transfer(100 + i, 1, 2, 1) for i in range(40)])
    assert pair.both(lambda led: led.create_transfers(batch, 3)).all_done
    assert pair.post([Transfer(5, 1, 2, 100)], 4) == [R.EXISTS]
    assert pair.both(lambda led: led.history(2)) == pair.written.history(2)
    pair.same_state()


def test_snapshot_in_the_middle_of_a_tail_continues_identically(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pair = _Pair(monkeypatch)
    pair.post([Transfer(1, 1, 2, 500), Transfer(2, 2, 1, 100, F.PENDING, timeout_us=3)], 1)
    assert pair.deferred._buffer
    restored = Ledger.from_bytes(pair.deferred.to_bytes())
    assert restored.state_hash() == pair.written.state_hash()
    nxt = [Transfer(3, 0, 0, 0, F.POST_PENDING, pending_id=2), Transfer(4, 1, 2, 1)]
    assert list(restored.create_transfers(nxt, 2).codes) == \
        pair.post(nxt, 2)
    assert restored.state_hash() == pair.written.state_hash()


ids = st.integers(1, 30)
acc = st.sampled_from(ACCOUNTS)
transfer = st.one_of(
    st.builds(lambda i, d, c, a, link: Transfer(i, d, c, a, F.LINKED if link else F.NONE),
              ids, acc, acc, st.integers(1, 3000), st.booleans()),
    st.builds(lambda i, d, c, a, t: Transfer(i, d, c, a, F.PENDING, timeout_us=t),
              ids, acc, acc, st.integers(1, 3000), st.integers(0, 4)),
    st.builds(lambda i, p, a, post: Transfer(i, 0, 0, a, pending_id=p, flags=(
        F.POST_PENDING if post else F.VOID_PENDING)), ids, ids, st.integers(0, 3000),
        st.booleans()))


def _columns(batch: TransferBatch, ts: int, led: Ledger) -> Any:
    return led.create_transfers(batch, ts)


def _tick(ts: int, led: Ledger) -> list[int]:
    return led.advance_time(ts)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(transfer, max_size=5), st.integers(0, 2),
                          st.sampled_from(["small", "columns", "tick", "snapshot"])),
                max_size=30))
def test_long_tail_equals_flushing_every_batch(
        monkeypatch: pytest.MonkeyPatch, plan: list[tuple[list[Transfer], int, str]]) -> None:
    pair = _Pair(monkeypatch)
    ts = 0
    for batch, step, how in plan:
        ts += step
        if how == "columns":
            columns = TransferBatch.from_transfers(batch)
            pair.both(functools.partial(_columns, columns, ts))
        else:
            pair.post(batch, ts)
        if how == "tick":
            ts += 1
            pair.both(functools.partial(_tick, ts))
        elif how == "snapshot":
            restored = Ledger.from_bytes(pair.deferred.to_bytes())
            assert restored.state_hash() == pair.written.state_hash()
    pair.same_state()


# ---------------------------------------------------------------------- ISO 8583


def _reference(raw: bytes) -> dict[str, Any] | None:
    try:
        doc, _ = iso8583.decode(raw, SPEC)
    except iso8583.DecodeError:
        return None
    return {k: (bytes.fromhex(v) if k in BINARY_FIELDS else v) for k, v in doc.items()
            if k in DATA_FIELDS}


def test_a_secondary_bitmap_without_secondary_fields_parses_like_pyiso8583() -> None:
    primary = bytearray(8)
    primary[0] |= 0x80  # field 1: a secondary bitmap follows (all zero here)
    primary[1] |= 0x20  # field 11
    primary[4] |= 0x02  # field 39
    raw = b"0210" + bytes(primary) + bytes(8) + b"123456" + b"00"
    assert _reference(raw) == {"11": "123456", "39": "00"}
    assert read_fields(raw) == {"11": "123456", "39": "00"}
    msg = decode_message(raw)
    assert isinstance(msg, Decoded) and msg.fields == {"11": "123456", "39": "00"}


def test_empty_llvar_and_non_ascii_fields() -> None:
    raw = encode_message("0210", {"11": "123456", "39": "00", "54": ""}, check=False)
    assert raw == bytes(iso8583.encode({"t": "0210", "11": "123456", "39": "00", "54": ""},
                                       SPEC)[0])
    assert read_fields(raw) == {"11": "123456", "39": "00", "54": ""}
    bad = raw.replace(b"123456", b"12\xe9456")
    assert _reference(bad) is None and read_fields(bad) is None
    assert isinstance(decode_message(bad), Malformed)
    with pytest.raises(ValueError):
        encode_message("0210", {"11": "12é456", "39": "00"}, check=False)


def test_encoding_does_not_depend_on_the_order_of_the_keys() -> None:
    fields: dict[str, str | bytes] = {"2": "6222020000000010017", "11": "000001",
                                      "39": "00", "90": "0" * 42, "128": bytes(range(8))}
    keys = list(fields)
    seen = set()
    for _ in range(20):
        random.shuffle(keys)
        seen.add(encode_message("0210", {k: fields[k] for k in keys}, check=False))
    doc = {"t": "0210", **{k: (v.hex() if isinstance(v, bytes) else v)
                           for k, v in fields.items()}}
    assert seen == {bytes(iso8583.encode(doc, SPEC)[0])}


def _textbook_luhn(pan: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@given(st.text(alphabet="0123456789", max_size=30))
def test_luhn_is_the_textbook_check(pan: str) -> None:
    assert luhn_ok(pan) == (len(pan) >= 2 and _textbook_luhn(pan))


def test_luhn_refuses_non_ascii_digits() -> None:
    assert not luhn_ok("١٨") and not luhn_ok("1 8") and luhn_ok("18")


# ---------------------------------------------------------------------- edge + core


@pytest.fixture
def core(tmp_path: Path) -> Iterator[CardCore]:
    from test_card_server import SANDBOX
    clock = VirtualClock(from_datetime(dt.datetime(2026, 11, 25, 10, 0)))
    engine_core = CardCore(SANDBOX, f"sqlite:///{tmp_path}/core.db", clock)
    yield engine_core
    engine_core.close()


def _forward(raw: bytes) -> Forward:
    from test_card_server import CFG
    fwd = inbound(raw, CFG)
    assert isinstance(fwd, Forward)
    return fwd


def test_the_logged_body_is_the_canonical_json_and_holds_no_pin() -> None:
    from test_card_server import _raw
    fwd = _forward(_raw("withdrawal", 70, terminal=_atm(), amount_fen=100, pin="123456"))
    assert fwd.body == json.dumps(fwd.fields, sort_keys=True).encode()
    assert b"123456" not in fwd.body.replace(b"000070", b"")  # the PIN never, the STAN is
    assert "pin_hash" in fwd.fields and _forward(
        _raw("withdrawal", 70, terminal=_atm(), amount_fen=100, pin="123456")).body == fwd.body


def _atm() -> Any:
    from test_card_server import CCB_ATM
    return CCB_ATM


def test_true_retry_duplicate_and_preauth_scheduling(core: CardCore) -> None:
    from test_card_server import CFG, _raw
    purchase = _forward(_raw("purchase", 71))
    first, retry = core.process([purchase.body, purchase.body])
    assert first == retry and first[0] == "00" and first[1] and first[2]
    (dup,) = core.process([_forward(_raw("purchase", 71, amount_fen=9900)).body])
    assert dup == ("94", "", "", None)
    assert outbound(purchase, first, CFG) == outbound(purchase, retry, CFG)
    core._due()
    assert core._due_us is not None
    hold = _forward(_raw("preauth", 72, amount_fen=1000))
    (answer,) = core.process([hold.body])
    assert answer[0] == "00" and core._due_us is None  # recomputed with the new expiry
    expires = core.switch.txns[answer[1]].expires_us
    assert core._due() <= expires


def test_card_txn_with_slots_round_trips_through_a_snapshot(core: CardCore) -> None:
    from test_card_server import _raw
    core.process([_forward(_raw("purchase", 73)).body])
    state = core.switch.dump_state()
    txn = next(iter(core.switch.txns.values()))
    assert not hasattr(txn, "__dict__") and dataclasses.asdict(txn)["key"] == txn.key
    core.switch.load_state(state)
    assert core.switch.dump_state() == state
    assert request_body({"b": "1", "a": "é"}) == json.dumps({"b": "1", "a": "é"},
                                                            sort_keys=True).encode()


# ---------------------------------------------------------------------- params, store


def test_params_unknown_name_still_raises_param_error() -> None:
    params = Params()
    assert params["cards.preauth_days"] == Params()["cards.preauth_days"]
    with pytest.raises(ParamError, match="unknown parameter"):
        params["cards.no_such_thing"]


def test_sqlite_one_entry_append_is_committed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = open_log(f"sqlite:///{path}")
    try:
        log.append([("x.one", b"payload")])
        db: sqlite3.Connection = log._db  # type: ignore[attr-defined]
        assert not db.in_transaction  # nothing left open: durable when append returns
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("SELECT count(*) FROM command_log").fetchone()[0] == 1
        finally:
            other.close()
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        log.append([("x.two", b"a"), ("x.three", b"b")])
        assert not db.in_transaction
    finally:
        log.close()
