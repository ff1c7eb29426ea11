"""The card switch's clearing day (清分): fees and per-participant net positions.

Input: the columns of the approved, unreversed transactions of one clearing day (field 15):
``issuer`` and ``acquirer`` (participant indices), ``kind`` (:data:`PURCHASE`,
:data:`WITHDRAWAL`, :data:`REFUND`), ``card_kind`` (:data:`DEBIT`, :data:`CREDIT`) and
``amount_fen`` (int64, > 0); ``kind`` may also be a dispute item (:data:`TO_ISSUER`,
:data:`TO_ACQUIRER`). Everything is vectorised over these columns; money is int64 fen,
rates are parts per million (ppm) and fees are rounded half-up to the fen with integer
arithmetic only: ``fee = (amount * ppm + 500_000) // 1_000_000``, then capped.

Flows per transaction (DOMAIN.md §4, fees since 2016):

* purchase: the issuer pays the acquirer the amount minus the issuer service fee (发卡行服务费;
  the issuer keeps it); issuer and acquirer each pay the network service fee (网络服务费) to
  the switch;
* withdrawal (ATM): the issuer pays the acquirer the amount plus the fixed ATM interbank fee;
  both sides pay the network fee to the switch; no issuer service fee;
* dispute items (差错处理, :data:`TO_ISSUER`, :data:`TO_ACQUIRER`): the amount moves from
  the acquirer to the issuer (credit adjustment 贷记调整, first and second chargeback 退单)
  or from the issuer to the acquirer (representment 再请款); they carry no fees;
* refund: the exact reverse of a purchase of the same amount and card kind: the acquirer pays
  the issuer the amount minus the issuer service fee and the switch pays each side back its
  network fee, so a purchase and its full refund net to zero for all three parties. A
  partial refund (退货 of part of a purchase) gives back the fees in proportion: with the
  optional columns ``fee_base_fen`` (the original purchase's amount) and
  ``refunded_before_fen`` (what earlier refunds of that purchase gave back), a refund of
  ``a`` returns ``share(before + a) - share(before)`` of each fee, where ``share(x)`` is the
  purchase's fee times ``x / base`` rounded half-up; so the fees returned by all the refunds
  of a purchase never exceed what it paid, and add up to exactly that when it is refunded
  in full, caps included (two refunds of half a capped purchase return the cap once, not
  twice).

Per participant the result holds the gross amounts it pays (debit total) and receives (credit
total), the fees it pays and receives (gross, never negative), and the net position
``credit - debit + fees received - fees paid`` (positive: the participant is owed money).
The switch is a participant index of its own (``switch``); it only ever takes fees. The
positions of all participants, switch included, sum to exactly zero: :func:`clear` asserts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]

PURCHASE = 0
WITHDRAWAL = 1
REFUND = 2
#: dispute items (差错, no fees): credit adjustments and chargebacks move the amount from the
#: acquirer to the issuer, representments from the issuer to the acquirer
TO_ISSUER = 3
TO_ACQUIRER = 4
KINDS = (PURCHASE, WITHDRAWAL, REFUND, TO_ISSUER, TO_ACQUIRER)

DEBIT = 0
CREDIT = 1

PPM = 1_000_000
#: Largest amount for which ``amount * ppm`` cannot overflow int64 (any ppm <= 1,000,000).
MAX_AMOUNT_FEN = (2**63 - 1 - PPM // 2) // PPM


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Card fees (DOMAIN.md §4 defaults). Rates in ppm, amounts and caps in fen.

    A cap of ``None`` means uncapped. ``enabled=False`` turns every fee off (pure amounts).
    """

    issuer_fee_debit_ppm: int = 3500
    issuer_fee_debit_cap_fen: int | None = 1300
    issuer_fee_credit_ppm: int = 4500
    issuer_fee_credit_cap_fen: int | None = None
    network_fee_ppm: int = 325
    network_fee_cap_fen: int | None = 325
    atm_fee_fen: int = 300
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("issuer_fee_debit_ppm", "issuer_fee_credit_ppm", "network_fee_ppm"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= PPM:
                raise ValueError(f"{name} must be an int in 0..{PPM} ppm, got {value!r}")
        for name in ("issuer_fee_debit_cap_fen", "issuer_fee_credit_cap_fen",
                     "network_fee_cap_fen", "atm_fee_fen"):
            value = getattr(self, name)
            if value is None and name != "atm_fee_fen":
                continue
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a non-negative int (fen), got {value!r}")


def ppm_fee(amount_fen: I64, ppm: int, cap_fen: int | None) -> I64:
    """``amount * ppm / 10**6`` rounded half-up to the fen (integers only), then capped."""
    fee = (amount_fen * np.int64(ppm) + np.int64(PPM // 2)) // np.int64(PPM)
    if cap_fen is not None:
        np.minimum(fee, np.int64(cap_fen), out=fee)
    return fee.astype(np.int64, copy=False)


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """Positions and totals per participant (length ``n_participants``) and fee columns per
    transaction (length of the input). All int64 fen except ``count``.

    Per transaction: ``issuer_fee_fen`` (0 for withdrawals), ``network_fee_fen`` (charged to
    each side, so the switch takes twice that), ``atm_fee_fen`` (withdrawals only): magnitudes,
    never negative; for a refund they are the fees returned. ``issuer_fee_net_fen`` and
    ``acquirer_fee_net_fen`` are the signed fee effect on each side (positive: received),
    the "fee" column of the clearing files.
    """

    positions_fen: I64
    count: I64
    debit_total_fen: I64
    credit_total_fen: I64
    fees_paid_fen: I64
    fees_received_fen: I64
    issuer_fee_fen: I64
    network_fee_fen: I64
    atm_fee_fen: I64
    issuer_fee_net_fen: I64
    acquirer_fee_net_fen: I64


def _column(name: str, values: npt.ArrayLike, n: int | None) -> I64:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer column, got dtype {arr.dtype}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows, expected {n}")
    return arr.astype(np.int64, copy=False)


def compute_fees(
    kind: I64, card_kind: I64, amount_fen: I64, schedule: FeeSchedule
) -> tuple[I64, I64, I64]:
    """Per-transaction (issuer service fee, network fee per side, ATM fee), all >= 0."""
    n = amount_fen.shape[0]
    if not schedule.enabled:
        zero = np.zeros(n, dtype=np.int64)
        return zero, zero.copy(), zero.copy()
    is_withdrawal = kind == WITHDRAWAL
    debit_fee = ppm_fee(amount_fen, schedule.issuer_fee_debit_ppm,
                        schedule.issuer_fee_debit_cap_fen)
    credit_fee = ppm_fee(amount_fen, schedule.issuer_fee_credit_ppm,
                         schedule.issuer_fee_credit_cap_fen)
    issuer_fee = np.where(card_kind == CREDIT, credit_fee, debit_fee)
    issuer_fee[is_withdrawal] = 0
    network_fee = ppm_fee(amount_fen, schedule.network_fee_ppm, schedule.network_fee_cap_fen)
    dispute = kind >= TO_ISSUER  # dispute items carry no fees
    issuer_fee[dispute] = 0
    network_fee[dispute] = 0
    atm_fee = np.where(is_withdrawal, np.int64(schedule.atm_fee_fen), np.int64(0))
    return issuer_fee, network_fee, atm_fee.astype(np.int64, copy=False)


def clear(
    issuer: npt.ArrayLike,
    acquirer: npt.ArrayLike,
    kind: npt.ArrayLike,
    card_kind: npt.ArrayLike,
    amount_fen: npt.ArrayLike,
    *,
    n_participants: int,
    switch: int,
    schedule: FeeSchedule | None = None,
    fee_base_fen: npt.ArrayLike | None = None,
    refunded_before_fen: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Clear one clearing day's transactions into net positions, totals and fee columns.

    ``fee_base_fen`` and ``refunded_before_fen`` (optional, read for refunds only): the
    original purchase's amount and what earlier refunds of it gave back, for the proportional
    fees of a partial refund (module docstring); by default a refund is a whole purchase of
    its own amount.

    Raises ``ValueError`` on bad columns: an index out of ``0..n_participants-1``, the switch as
    issuer or acquirer, an on-us item (issuer == acquirer: it never reaches the switch), an
    unknown kind or card kind, an amount not in ``1..MAX_AMOUNT_FEN``, or a refund whose
    ``refunded_before + amount`` exceeds its ``fee_base``.
    """
    schedule = FeeSchedule() if schedule is None else schedule
    amount = _column("amount_fen", amount_fen, None)
    n = amount.shape[0]
    iss = _column("issuer", issuer, n)
    acq = _column("acquirer", acquirer, n)
    knd = _column("kind", kind, n)
    ck = _column("card_kind", card_kind, n)
    if not 0 <= switch < n_participants:
        raise ValueError(f"switch {switch} is not a participant index (0..{n_participants - 1})")
    if n:
        for name, col in (("issuer", iss), ("acquirer", acq)):
            if int(col.min()) < 0 or int(col.max()) >= n_participants:
                raise ValueError(f"{name} index out of 0..{n_participants - 1}")
            if bool((col == switch).any()):
                raise ValueError(f"the switch ({switch}) cannot be {name}")
        if bool((iss == acq).any()):
            raise ValueError("on-us item (issuer == acquirer) in the clearing columns")
        if int(knd.min()) < PURCHASE or int(knd.max()) > TO_ACQUIRER:
            raise ValueError("kind must be PURCHASE (0), WITHDRAWAL (1), REFUND (2), "
                             "TO_ISSUER (3) or TO_ACQUIRER (4)")
        if int(ck.min()) < DEBIT or int(ck.max()) > CREDIT:
            raise ValueError("card_kind must be DEBIT (0) or CREDIT (1)")
        if int(amount.min()) <= 0 or int(amount.max()) > MAX_AMOUNT_FEN:
            raise ValueError(f"amount_fen must be in 1..{MAX_AMOUNT_FEN}")

    issuer_fee, network_fee, atm_fee = compute_fees(knd, ck, amount, schedule)
    refund = knd == REFUND
    if fee_base_fen is not None or refunded_before_fen is not None:
        base = amount if fee_base_fen is None else _column("fee_base_fen", fee_base_fen, n)
        before = (np.zeros(n, dtype=np.int64) if refunded_before_fen is None
                  else _column("refunded_before_fen", refunded_before_fen, n))
        _partial_refund_fees(refund, ck, amount, base, before, schedule, issuer_fee,
                             network_fee)
    purchase = knd == PURCHASE
    withdrawal = knd == WITHDRAWAL
    zero = np.int64(0)

    # Gross fees each side pays and receives (never negative), per transaction.
    iss_paid = np.where(refund, issuer_fee, network_fee + atm_fee)
    iss_recv = np.where(purchase, issuer_fee, np.where(refund, network_fee, zero))
    acq_paid = np.where(purchase, issuer_fee + network_fee, np.where(withdrawal, network_fee, zero))
    acq_recv = np.where(refund, issuer_fee + network_fee, atm_fee)
    # The gross amount moves from payer to payee: the acquirer pays on a refund, a credit
    # adjustment or a chargeback.
    to_issuer = refund | (knd == TO_ISSUER)
    payer = np.where(to_issuer, acq, iss)
    payee = np.where(to_issuer, iss, acq)

    count = np.zeros(n_participants, dtype=np.int64)
    debit = np.zeros(n_participants, dtype=np.int64)
    credit = np.zeros(n_participants, dtype=np.int64)
    paid = np.zeros(n_participants, dtype=np.int64)
    received = np.zeros(n_participants, dtype=np.int64)
    np.add.at(count, iss, np.int64(1))
    np.add.at(count, acq, np.int64(1))
    np.add.at(debit, payer, amount)
    np.add.at(credit, payee, amount)
    np.add.at(paid, iss, iss_paid)
    np.add.at(paid, acq, acq_paid)
    np.add.at(received, iss, iss_recv)
    np.add.at(received, acq, acq_recv)
    switch_network = 2 * network_fee
    received[switch] += np.int64(switch_network[~refund].sum(dtype=np.int64))
    paid[switch] += np.int64(switch_network[refund].sum(dtype=np.int64))

    positions = credit - debit + received - paid
    total = int(positions.sum(dtype=np.int64))
    assert total == 0, f"clearing positions sum to {total} fen, not 0"
    assert int(paid.sum()) == int(received.sum()), "fees paid != fees received"
    return ClearingResult(
        positions_fen=positions,
        count=count,
        debit_total_fen=debit,
        credit_total_fen=credit,
        fees_paid_fen=paid,
        fees_received_fen=received,
        issuer_fee_fen=issuer_fee,
        network_fee_fen=network_fee,
        atm_fee_fen=atm_fee,
        issuer_fee_net_fen=(iss_recv - iss_paid).astype(np.int64, copy=False),
        acquirer_fee_net_fen=(acq_recv - acq_paid).astype(np.int64, copy=False),
    )


def _share(fee: int, done_fen: int, base_fen: int) -> int:
    """``fee * done / base`` rounded half-up (Python integers: no overflow)."""
    return (2 * fee * done_fen + base_fen) // (2 * base_fen)


def _partial_refund_fees(refund: npt.NDArray[np.bool_], card_kind: I64, amount: I64,
                         base: I64, before: I64, schedule: FeeSchedule, issuer_fee: I64,
                         network_fee: I64) -> None:
    """Replace, in place, the fees of the refunds that are part of a larger purchase by their
    proportional share of that purchase's fees (the rows are few: a plain loop)."""
    partial = refund & ((base != amount) | (before != 0))
    rows = np.flatnonzero(partial)
    if not len(rows):
        return
    if bool((base[rows] <= 0).any()) or bool((before[rows] < 0).any()) or \
            bool((before[rows] + amount[rows] > base[rows]).any()):
        raise ValueError("a refund's refunded_before + amount must be within its fee_base")
    purchase = np.full(len(rows), PURCHASE, dtype=np.int64)
    full_issuer, full_network, _ = compute_fees(purchase, card_kind[rows], base[rows], schedule)
    for j, i in enumerate(rows.tolist()):
        b, done, a = int(base[i]), int(before[i]), int(amount[i])
        issuer_fee[i] = _share(int(full_issuer[j]), done + a, b) - _share(
            int(full_issuer[j]), done, b)
        network_fee[i] = _share(int(full_network[j]), done + a, b) - _share(
            int(full_network[j]), done, b)
