"""Card clearing day: fees, positions, clearing files and reconciliation (issue 6)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qingsuan.cards.clearing import (
    CREDIT,
    DEBIT,
    PURCHASE,
    REFUND,
    WITHDRAWAL,
    ClearingResult,
    FeeSchedule,
    clear,
)
from qingsuan.cards.files import (
    ClearingFileError,
    Detail,
    parse_clearing_file,
    reconcile,
    write_clearing_file,
    write_clearing_files_bulk,
)

ISS, ACQ, SWITCH, N = 0, 1, 2, 3


def one(kind: int, card_kind: int, amount: int, schedule: FeeSchedule | None = None
        ) -> ClearingResult:
    return clear([ISS], [ACQ], [kind], [card_kind], [amount], n_participants=N, switch=SWITCH,
                 schedule=schedule)


def test_debit_purchase_100_cny() -> None:
    r = one(PURCHASE, DEBIT, 10_000)
    assert r.issuer_fee_fen.tolist() == [35]  # 0.35% of 100.00
    assert r.network_fee_fen.tolist() == [3]  # 3.25 fen rounds half-up to 3
    # issuer pays 10000 - 35, plus 3 network fee; acquirer gets 9965 minus its 3
    assert r.positions_fen.tolist() == [-(10_000 - 35) - 3, 10_000 - 35 - 3, 6]
    assert r.issuer_fee_net_fen.tolist() == [32]
    assert r.acquirer_fee_net_fen.tolist() == [-38]
    assert r.debit_total_fen.tolist() == [10_000, 0, 0]
    assert r.credit_total_fen.tolist() == [0, 10_000, 0]
    assert r.fees_paid_fen.tolist() == [3, 38, 0]
    assert r.fees_received_fen.tolist() == [35, 0, 6]
    assert r.count.tolist() == [1, 1, 0]


def test_half_up_rounding() -> None:
    # 0.0325% of 20000 = 6.5 fen -> 7 (half-up), of 19999 = 6.49967 -> 6
    r = clear([ISS, ISS], [ACQ, ACQ], [PURCHASE] * 2, [DEBIT] * 2, [20_000, 19_999],
              n_participants=N, switch=SWITCH)
    assert r.network_fee_fen.tolist() == [7, 6]
    assert r.issuer_fee_fen.tolist() == [70, 70]  # 69.9965 -> 70


def test_debit_purchase_hits_caps() -> None:
    # 5,000.00 CNY: 0.35% = 17.50 > 13.00 cap; 0.0325% = 1.625 CNY (under 3.25 cap)
    r = one(PURCHASE, DEBIT, 500_000)
    assert r.issuer_fee_fen.tolist() == [1300]
    assert r.network_fee_fen.tolist() == [163]  # 162.5 -> 163
    # 20,000.00 CNY: network fee 6.50 CNY capped at 3.25 per side
    r = one(PURCHASE, DEBIT, 2_000_000)
    assert r.issuer_fee_fen.tolist() == [1300]
    assert r.network_fee_fen.tolist() == [325]
    assert r.positions_fen.tolist() == [-(2_000_000 - 1300) - 325, 2_000_000 - 1300 - 325, 650]


def test_credit_purchase_uncapped() -> None:
    r = one(PURCHASE, CREDIT, 2_000_000)  # 0.45% of 20,000.00 = 90.00, no cap
    assert r.issuer_fee_fen.tolist() == [9000]
    assert r.positions_fen.tolist() == [-(2_000_000 - 9000) - 325, 2_000_000 - 9000 - 325, 650]


def test_atm_withdrawal_100_cny() -> None:
    r = one(WITHDRAWAL, DEBIT, 10_000)
    assert r.issuer_fee_fen.tolist() == [0]
    assert r.atm_fee_fen.tolist() == [300]
    assert r.network_fee_fen.tolist() == [3]
    assert r.positions_fen.tolist() == [-10_000 - 300 - 3, 10_000 + 300 - 3, 6]


def test_refund_reverses_purchase() -> None:
    r = one(REFUND, DEBIT, 10_000)
    assert r.positions_fen.tolist() == [10_000 - 35 + 3, -(10_000 - 35) + 3, -6]
    both = clear([ISS, ISS], [ACQ, ACQ], [PURCHASE, REFUND], [CREDIT, CREDIT],
                 [123_456, 123_456], n_participants=N, switch=SWITCH)
    assert both.positions_fen.tolist() == [0, 0, 0]
    assert both.debit_total_fen.tolist() == [123_456, 123_456, 0]


def test_fees_off_gives_pure_amounts() -> None:
    off = FeeSchedule(enabled=False)
    r = clear([0, 1, 3], [1, 3, 0], [PURCHASE, WITHDRAWAL, REFUND], [DEBIT, CREDIT, CREDIT],
              [10_000, 2_000_000, 500], n_participants=4, switch=SWITCH, schedule=off)
    assert r.positions_fen.tolist() == [-10_000 - 500, 10_000 - 2_000_000, 0, 2_000_000 + 500]
    assert int(r.fees_paid_fen.sum()) == 0


def test_bad_columns_rejected() -> None:
    with pytest.raises(ValueError, match="on-us"):
        clear([0], [0], [PURCHASE], [DEBIT], [1], n_participants=N, switch=SWITCH)
    with pytest.raises(ValueError, match="switch"):
        clear([SWITCH], [0], [PURCHASE], [DEBIT], [1], n_participants=N, switch=SWITCH)
    with pytest.raises(TypeError):
        clear([0], [1], [PURCHASE], [DEBIT], [1.5], n_participants=N, switch=SWITCH)
    with pytest.raises(ValueError):
        FeeSchedule(network_fee_ppm=-1)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 400), st.integers(3, 30))
def test_positions_sum_to_zero(seed: int, n: int, parts: int) -> None:
    rng = np.random.default_rng(seed)
    switch = int(rng.integers(parts))
    others = np.array([p for p in range(parts) if p != switch])
    iss = rng.choice(others, n)
    acq = rng.choice(others, n)
    acq = np.where(acq == iss, others[(np.searchsorted(others, iss) + 1) % len(others)], acq)
    kind = rng.integers(0, 3, n)
    ck = rng.integers(0, 2, n)
    amount = rng.integers(1, 10**9, n)
    r = clear(iss, acq, kind, ck, amount, n_participants=parts, switch=switch)
    assert r.positions_fen.dtype == np.int64
    assert int(r.positions_fen.sum()) == 0
    assert int(r.count.sum()) == 2 * n
    net = r.credit_total_fen - r.debit_total_fen + r.fees_received_fen - r.fees_paid_fen
    assert (net == r.positions_fen).all()
    # per-participant positions recomputed item by item with Python ints
    expect = [0] * parts
    for i in range(n):
        a = int(amount[i])
        nf = min((a * 325 + 500_000) // 1_000_000, 325)
        ppm, cap = (4500, None) if ck[i] == CREDIT else (3500, 1300)
        fi = (a * ppm + 500_000) // 1_000_000
        fi = fi if cap is None else min(fi, cap)
        s, b = int(iss[i]), int(acq[i])
        if kind[i] == PURCHASE:
            expect[s] -= a - fi + nf
            expect[b] += a - fi - nf
            expect[switch] += 2 * nf
        elif kind[i] == REFUND:
            expect[s] += a - fi + nf
            expect[b] -= a - fi - nf
            expect[switch] -= 2 * nf
        else:
            expect[s] -= a + 300 + nf
            expect[b] += a + 300 - nf
            expect[switch] += 2 * nf
    assert r.positions_fen.tolist() == expect


# --- clearing files -----------------------------------------------------------------------

DAY = date(2025, 6, 30)


def details() -> list[Detail]:
    return [
        Detail(f"{500000000000 + i}", f"{i + 1:06d}", "0200", "6222021234567890123",
               10_000 * (i + 1), -3 * (i + 1), "D" if i % 3 else "C", f"T{i:07d}",
               datetime(2025, 6, 30, 10, i, 0))
        for i in range(5)
    ]


def test_file_round_trip_and_masking() -> None:
    text = write_clearing_file("0102", DAY, details())
    assert "6222021234567890123" not in text
    assert "622202****0123" in text
    header, parsed, trailer = parse_clearing_file(text)
    assert (header.participant, header.clearing_date, header.version) == ("0102", DAY, 1)
    assert [d.key for d in parsed] == [d.key for d in details()]
    assert [(d.amount_fen, d.fee_fen, d.direction) for d in parsed] == [
        (d.amount_fen, d.fee_fen, d.direction) for d in details()]
    assert trailer.count == 5
    assert trailer.credit_total_fen == 10_000 + 40_000
    assert trailer.debit_total_fen == 20_000 + 30_000 + 50_000
    assert write_clearing_file("0102", DAY, parsed) == text


def test_untouched_file_reconciles() -> None:
    _, parsed, _ = parse_clearing_file(write_clearing_file("0102", DAY, details()))
    report = reconcile(details(), parsed)
    assert report.ok
    assert len(report.matched) == 5
    assert "OK" in report.summary()


def test_tampered_amount_found_by_reconciliation() -> None:
    text = write_clearing_file("0102", DAY, details())
    lines = text.splitlines()
    # change item 3's amount and fix the trailer so the file itself is consistent
    fields = lines[3].split(",")
    fields[5] = "30001"
    lines[3] = ",".join(fields)
    lines[-1] = "T,5,100001,50000"
    _, parsed, _ = parse_clearing_file("\n".join(lines) + "\n")
    report = reconcile(details(), parsed)
    assert not report.ok
    assert [m.key for m in report.mismatched] == [details()[2].key]
    assert (report.mismatched[0].own_amount_fen, report.mismatched[0].switch_amount_fen) == (
        30_000, 30_001)
    assert report.missing_own == [] and report.missing_switch == []
    assert "mismatch RRN 500000000002" in report.summary()


def test_deleted_line_breaks_control_totals() -> None:
    lines = write_clearing_file("0102", DAY, details()).splitlines()
    del lines[2]
    with pytest.raises(ClearingFileError) as err:
        parse_clearing_file("\n".join(lines) + "\n")
    assert err.value.line_no == 6  # the trailer, now on line 6
    assert "line 6" in str(err.value) and "count 5 but 4" in str(err.value)
    assert "debit total" in str(err.value)


def test_missing_items_both_sides() -> None:
    own = details()
    _, parsed, _ = parse_clearing_file(write_clearing_file("0102", DAY, own[1:]))
    report = reconcile(own[:4], parsed)
    assert [d.key for d in report.missing_switch] == [own[0].key]
    assert [d.key for d in report.missing_own] == [own[4].key]
    assert len(report.matched) == 3


def test_unmasked_pan_rejected() -> None:
    lines = write_clearing_file("0102", DAY, details()).splitlines()
    lines[4] = lines[4].replace("622202****0123", "6222021234567890123")
    with pytest.raises(ClearingFileError) as err:
        parse_clearing_file("\n".join(lines) + "\n")
    assert err.value.line_no == 5
    assert "unmasked PAN" in err.value.message


@pytest.mark.parametrize(
    ("text", "line_no"),
    [
        ("", 1),
        ("X,1\n", 1),
        ("H,0102,20250631,1\nT,0,0,0\n", 1),
        ("H,0102,20250630,1\nD,1,2\nT,0,0,0\n", 2),
        ("H,0102,20250630,1\nT,0,0,0\nD,x\n", 3),
        ("H,0102,20250630,1\nD,500000000000,000001,0200,622202****0123,1.5,0,D,T0000000,"
         "20250630100000\nT,1,0,0\n", 2),
        ("H,0102,20250630,1\n", 2),
        ("H,0102,20250630,1\nT,-1,0,0\n", 2),
    ],
)
def test_malformed_files_get_line_numbers(text: str, line_no: int) -> None:
    with pytest.raises(ClearingFileError) as err:
        parse_clearing_file(text)
    assert err.value.line_no == line_no


# --- bulk writer ------------------------------------------------------------------------------


def bulk_columns(n: int, parts: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    iss = rng.integers(0, parts, n)
    acq = rng.integers(0, parts, n)
    acq = np.where(acq == iss, (acq + 1) % parts, acq)
    lens = rng.integers(12, 20, n)
    pan = np.array(["".join(map(str, rng.integers(0, 10, k))) for k in lens], dtype="S19")
    pan[::7] = b"622202****0123"
    return {
        "issuer": iss,
        "acquirer": acq,
        "rrn": np.array([f"{i:06d}AbZ{i % 997:03d}" for i in range(n)], dtype="S12"),
        "stan": np.array([f"{i % 1_000_000:06d}" for i in range(n)], dtype="S6"),
        "mti": rng.choice(np.array([b"0200", b"0220"]), n),
        "pan": pan,
        "amount_fen": rng.integers(0, 10 ** rng.integers(1, 13, n)),
        "issuer_fee_fen": rng.integers(-(10**9), 10**9, n),
        "acquirer_fee_fen": rng.integers(-99, 100, n),
        "issuer_direction": rng.choice(np.array([b"D", b"C"]), n),
        "terminal_id": np.array([f"T{i:07d}" for i in range(n)], dtype="S8"),
        "local_time": np.datetime64("2024-02-29T12:00:00")
        + rng.integers(-(10**9), 10**9, n).astype("timedelta64[s]"),
    }


def reference_files(codes: list[str], cols: dict[str, np.ndarray]) -> list[bytes]:
    per: list[list[Detail]] = [[] for _ in codes]
    for i in range(len(cols["rrn"])):
        direction = cols["issuer_direction"][i].decode()
        common = (cols["rrn"][i].decode(), cols["stan"][i].decode(), cols["mti"][i].decode(),
                  cols["pan"][i].decode(), int(cols["amount_fen"][i]))
        when = cols["local_time"][i].astype(datetime)
        term = cols["terminal_id"][i].decode()
        per[int(cols["issuer"][i])].append(
            Detail(*common, int(cols["issuer_fee_fen"][i]), direction, term, when))
        per[int(cols["acquirer"][i])].append(
            Detail(*common, int(cols["acquirer_fee_fen"][i]), "C" if direction == "D" else "D",
                   term, when))
    return [write_clearing_file(code, DAY, d).encode() for code, d in zip(codes, per, strict=True)]


@pytest.mark.parametrize(("n", "parts", "chunk"), [(3000, 7, 1 << 16), (2500, 40, 97), (0, 3, 64)])
def test_bulk_files_byte_identical(n: int, parts: int, chunk: int,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import qingsuan.cards.files as files

    monkeypatch.setattr(files, "_BULK_CHUNK", chunk)
    monkeypatch.setattr(files, "_FILL_CHUNK", max(chunk // 3, 1))
    cols = bulk_columns(n, parts, seed=n + parts)
    codes = [f"B{p:03d}x" for p in range(parts)]
    out = write_clearing_files_bulk(codes, DAY, **cols)
    assert out == reference_files(codes, cols)
    for blob in out:
        _, parsed, trailer = parse_clearing_file(blob.decode())
        assert trailer.count == len(parsed)
        assert all("****" in d.pan for d in parsed)
    for full in cols["pan"][:50]:
        if b"*" not in full:
            assert all(full not in blob for blob in out)


def test_bulk_files_to_directory(tmp_path: Path) -> None:
    cols = bulk_columns(500, 5, seed=1)
    codes = [f"P{p}" for p in range(5)]
    paths = write_clearing_files_bulk(codes, DAY, directory=tmp_path, **cols)
    assert [p.name for p in paths] == [f"P{p}_20250630.txt" for p in range(5)]
    assert [p.read_bytes() for p in paths] == write_clearing_files_bulk(codes, DAY, **cols)


def test_bulk_rejects_bad_columns() -> None:
    codes = ["A", "B", "C"]
    good = bulk_columns(20, 3, seed=2)
    cases: list[tuple[str, object, type[Exception]]] = [
        ("rrn", np.where(np.arange(20) == 5, b"12345678901-", good["rrn"]), ValueError),
        ("stan", good["stan"].astype("S5"), ValueError),
        ("pan", np.where(np.arange(20) == 3, b"62220212345", good["pan"]), ValueError),
        ("pan", np.where(np.arange(20) == 3, b"6222****12345", good["pan"]), ValueError),
        ("amount_fen", good["amount_fen"].astype(np.float64), TypeError),
        ("amount_fen", -good["amount_fen"] - 1, ValueError),
        ("issuer_direction", np.full(20, b"X"), ValueError),
        ("terminal_id", good["rrn"], ValueError),
        ("acquirer", good["issuer"], ValueError),
        ("issuer", good["issuer"] + 3, ValueError),
    ]
    for name, value, error in cases:
        with pytest.raises(error):
            write_clearing_files_bulk(codes, DAY, **{**good, name: value})
    with pytest.raises(ValueError):
        write_clearing_files_bulk(["A", "B", "C,"], DAY, **good)
