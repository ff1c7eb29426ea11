"""The simulator's metrics (docs/SIMULATE.md, "Output"): aggregated as the days run, per
system, participant and time bucket, and written as Parquet tables.

Pure numpy over what the loop hands in (final outcomes of transfers, and a sample of the
world's state after each window); it never reads the world. Money is int64 fen; the one
float is the queue time weighted by value (fen x seconds would overflow int64 at national
scale). The one thing a reader would get wrong: a bucket's state columns (balances,
queues, positions, funds in transit) are sampled at the end of each window (``--chunk-
minutes``), so a low point inside a window is not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from qingsuan.banks.bulk import BulkCode
from qingsuan.clock import US_PER_SECOND, format_time
from qingsuan.sim.traffic import TrafficSystem

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

SYSTEMS: Final = tuple(TrafficSystem)
OUTCOMES: Final = tuple(BulkCode)
#: the net systems whose positions, caps and funds in transit are sampled
NET_SYSTEMS: Final = (TrafficSystem.BEPS, TrafficSystem.IBPS)
#: the reason code each outcome stands for (banks/bulk.py); none for a credit, or for an
#: HVPS payment still queued when HVPS closed
REASONS: Final = {BulkCode.CREDITED: "", BulkCode.OVER_LIMIT: "AM02",
                  BulkCode.NO_FUNDS: "AM04", BulkCode.CLOSED: "AC04",
                  BulkCode.NOT_SETTLED: "", BulkCode.OVER_CAP: "AM14",
                  BulkCode.BARRED: "AG01", BulkCode.SYSTEM_CLOSED: "DT01"}
#: the steps of HVPS's gridlock resolution, as cnaps/gridlock.py names them
LSM_STEPS: Final = ("bilateral", "multilateral")
_BIG: Final = np.iinfo(np.int64).max
_PPM: Final = 1_000_000

_TIME: Final = pa.timestamp("us", tz="Asia/Shanghai")
#: every table's schema: fixed columns and types, so the bytes depend on the data only
SCHEMAS: Final = {
    "flows": pa.schema([("bucket_start", pa.string()), ("system", pa.string()),
                        ("participant", pa.string()), ("outcome", pa.string()),
                        ("reason", pa.string()), ("items", pa.int64()),
                        ("value_fen", pa.int64())]),
    "queues": pa.schema([("bucket_start", pa.string()), ("system", pa.string()),
                         ("participant", pa.string()), ("peak_items", pa.int64()),
                         ("peak_value_fen", pa.int64()), ("end_items", pa.int64()),
                         ("end_value_fen", pa.int64()), ("delayed_items", pa.int64()),
                         ("delayed_value_fen", pa.int64()),
                         ("queue_time_value_fen_s", pa.float64())]),
    "liquidity": pa.schema([("bucket_start", pa.string()), ("participant", pa.string()),
                            ("opening_balance_fen", pa.int64()),
                            ("min_balance_fen", pa.int64()), ("end_balance_fen", pa.int64()),
                            ("liquidity_used_fen", pa.int64()),
                            ("credit_line_fen", pa.int64()),
                            ("credit_drawn_peak_fen", pa.int64())]),
    "positions": pa.schema([("bucket_start", pa.string()), ("system", pa.string()),
                            ("participant", pa.string()), ("min_position_fen", pa.int64()),
                            ("end_position_fen", pa.int64()), ("cap_fen", pa.int64())]),
    "transit": pa.schema([("bucket_start", pa.string()), ("system", pa.string()),
                          ("peak_fen", pa.int64()), ("end_fen", pa.int64())]),
    "lsm": pa.schema([("bucket_start", pa.string()), ("step", pa.string()),
                      ("participant", pa.string()), ("items", pa.int64()),
                      ("value_fen", pa.int64())]),
    "items": pa.schema([("arrival", _TIME), ("done", _TIME),
                        ("system", pa.string()), ("payer", pa.int64()), ("payee", pa.int64()),
                        ("sender", pa.string()), ("receiver", pa.string()),
                        ("amount_fen", pa.int64()), ("outcome", pa.string()),
                        ("queue_time_s", pa.float64())]),
}


@dataclass(frozen=True, slots=True)
class Sample:
    """The world's state after a window, as the metrics need it (per participant, in the
    scenario's order)."""

    at_us: int
    balance_fen: I64
    credit_line_fen: I64
    credit_drawn_fen: I64
    #: [net system (BEPS, IBPS), participant]
    position_fen: I64
    cap_fen: I64
    #: per net system (BEPS, IBPS)
    transit_fen: I64
    #: [system, participant]: transfers held by the simulator (queued or held back)
    queue_items: I64
    queue_value_fen: I64


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Final outcomes of transfers, as columns (one row per transfer)."""

    done_us: int
    arrival_us: I64
    system: I64
    payer: I64
    payee: I64
    sender: I64
    receiver: I64
    amount_fen: I64
    code: I64
    #: seconds from arrival to the submission that settled it; 0 when it settled in the
    #: batch it arrived with
    queue_time_s: F64


@dataclass
class _Day:
    """One day's accumulators, [bucket, ...]."""

    buckets: int
    participants: int
    flow_items: I64 = field(init=False)
    flow_value: I64 = field(init=False)
    delayed_items: I64 = field(init=False)
    delayed_value: I64 = field(init=False)
    queue_time_value: F64 = field(init=False)
    queue_peak_items: I64 = field(init=False)
    queue_peak_value: I64 = field(init=False)
    queue_end_items: I64 = field(init=False)
    queue_end_value: I64 = field(init=False)
    min_balance: I64 = field(init=False)
    end_balance: I64 = field(init=False)
    credit_line: I64 = field(init=False)
    credit_peak: I64 = field(init=False)
    min_position: I64 = field(init=False)
    end_position: I64 = field(init=False)
    cap: I64 = field(init=False)
    transit_peak: I64 = field(init=False)
    transit_end: I64 = field(init=False)
    lsm_items: I64 = field(init=False)
    lsm_value: I64 = field(init=False)
    sampled: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        b, p, s, n = self.buckets, self.participants, len(SYSTEMS), len(NET_SYSTEMS)
        self.flow_items = np.zeros((b, s, p, len(OUTCOMES)), np.int64)
        self.flow_value = np.zeros((b, s, p, len(OUTCOMES)), np.int64)
        self.delayed_items = np.zeros((b, s, p), np.int64)
        self.delayed_value = np.zeros((b, s, p), np.int64)
        self.queue_time_value = np.zeros((b, s, p), np.float64)
        self.queue_peak_items = np.zeros((b, s, p), np.int64)
        self.queue_peak_value = np.zeros((b, s, p), np.int64)
        self.queue_end_items = np.zeros((b, s, p), np.int64)
        self.queue_end_value = np.zeros((b, s, p), np.int64)
        self.min_balance = np.full((b, p), _BIG, np.int64)
        self.end_balance = np.zeros((b, p), np.int64)
        self.credit_line = np.zeros((b, p), np.int64)
        self.credit_peak = np.zeros((b, p), np.int64)
        self.min_position = np.zeros((b, n, p), np.int64)
        self.end_position = np.zeros((b, n, p), np.int64)
        self.cap = np.zeros((b, n, p), np.int64)
        self.transit_peak = np.zeros((b, n), np.int64)
        self.transit_end = np.zeros((b, n), np.int64)
        self.lsm_items = np.zeros((b, len(LSM_STEPS), p), np.int64)
        self.lsm_value = np.zeros((b, len(LSM_STEPS), p), np.int64)
        self.sampled = np.zeros(b, np.bool_)


class Metrics:
    """Aggregates final outcomes and window samples day by day; a day's accumulators
    become compact rows when the day ends (memory bounded by one day)."""

    def __init__(self, participants: list[str], first_us: int, bucket_us: int,
                 buckets_per_day: int, keep_items: bool) -> None:
        self.names = participants
        self.first_us = first_us
        self.bucket_us = bucket_us
        self.buckets_per_day = buckets_per_day
        self.keep_items = keep_items
        self.day_index = -1
        self.day: _Day | None = None
        self.opening_fen = np.zeros(len(participants), np.int64)
        self.rows: dict[str, list[pa.Table]] = {name: [] for name in SCHEMAS}
        p, s = len(participants), len(SYSTEMS)
        # totals over the whole run, for the summary
        self.total_items = np.zeros((s, p, len(OUTCOMES)), np.int64)
        self.total_value = np.zeros((s, p, len(OUTCOMES)), np.int64)
        self.total_queue_time_value = np.zeros((s, p), np.float64)
        self.total_delayed_value = np.zeros((s, p), np.int64)
        self.total_delayed_items = np.zeros((s, p), np.int64)
        # transfers that waited and never settled (given back at the end): their wait
        self.total_unsettled_wait_value = np.zeros((s, p), np.float64)
        self.total_unsettled_value = np.zeros((s, p), np.int64)
        self.peak_queue_value = np.zeros((s, p), np.int64)
        self.peak_used = np.zeros(p, np.int64)
        self.peak_used_share_ppm = np.zeros(p, np.int64)
        self.available_at_peak = np.zeros(p, np.int64)
        self.peak_credit = np.zeros(p, np.int64)
        self.low_position = np.zeros((len(NET_SYSTEMS), p), np.int64)
        self.peak_cap_use_ppm = np.zeros((len(NET_SYSTEMS), p), np.int64)
        self.peak_transit = np.zeros(len(NET_SYSTEMS), np.int64)
        self.peak_queue_total = np.zeros(len(SYSTEMS), np.int64)
        # HVPS gridlock resolution: [step, sending participant], and the tally last seen
        self.total_lsm_items = np.zeros((len(LSM_STEPS), p), np.int64)
        self.total_lsm_value = np.zeros((len(LSM_STEPS), p), np.int64)
        self._lsm_seen: dict[tuple[str, str], tuple[int, int]] = {}

    # ------------------------------------------------------------------ the day

    def start_day(self, day: int, opening_fen: I64) -> None:
        """A new day: its accumulators, and each participant's opening balance (what
        liquidity used is measured from)."""
        self.end_day()
        self.day_index = day
        self.day = _Day(self.buckets_per_day, len(self.names))
        self.opening_fen = np.asarray(opening_fen, np.int64).copy()

    def _bucket(self, at_us: int | I64) -> Any:
        b = (np.asarray(at_us, np.int64) - self.first_us) // self.bucket_us \
            - self.day_index * self.buckets_per_day
        return np.clip(b, 0, self.buckets_per_day - 1)

    def outcomes(self, o: Outcomes) -> None:
        """Transfers whose fate is final, counted in the bucket of ``done_us``."""
        d = self.day
        assert d is not None, "start_day first"
        if not len(o.amount_fen):
            return
        b = int(self._bucket(o.done_us))
        index = (o.system, o.sender, o.code)
        np.add.at(d.flow_items[b], index, 1)
        np.add.at(d.flow_value[b], index, o.amount_fen)
        np.add.at(self.total_items, index, 1)
        np.add.at(self.total_value, index, o.amount_fen)
        late = np.flatnonzero((o.queue_time_s > 0) & (o.code == BulkCode.CREDITED))
        if late.size:
            at = (o.system[late], o.sender[late])
            weighted = o.amount_fen[late].astype(np.float64) * o.queue_time_s[late]
            np.add.at(d.delayed_items[b], at, 1)
            np.add.at(d.delayed_value[b], at, o.amount_fen[late])
            np.add.at(d.queue_time_value[b], at, weighted)
            np.add.at(self.total_delayed_items, at, 1)
            np.add.at(self.total_delayed_value, at, o.amount_fen[late])
            np.add.at(self.total_queue_time_value, at, weighted)
        stuck = np.flatnonzero((o.code == BulkCode.NOT_SETTLED) | (o.code == BulkCode.OVER_CAP))
        if stuck.size:
            at = (o.system[stuck], o.sender[stuck])
            np.add.at(self.total_unsettled_value, at, o.amount_fen[stuck])
            np.add.at(self.total_unsettled_wait_value, at,
                      o.amount_fen[stuck].astype(np.float64) * o.queue_time_s[stuck])
        if self.keep_items:
            names = np.array(self.names, dtype=object)
            systems = np.array([x.name for x in SYSTEMS], dtype=object)
            outcomes = np.array([x.name.lower() for x in OUTCOMES], dtype=object)
            n = len(o.amount_fen)
            self.rows["items"].append(pa.table({
                "arrival": pa.array(o.arrival_us, _TIME),
                "done": pa.array(np.full(n, o.done_us, np.int64), _TIME),
                "system": pa.array(systems[o.system], pa.string()),
                "payer": o.payer, "payee": o.payee,
                "sender": pa.array(names[o.sender], pa.string()),
                "receiver": pa.array(names[o.receiver], pa.string()),
                "amount_fen": o.amount_fen,
                "outcome": pa.array(outcomes[o.code], pa.string()),
                "queue_time_s": o.queue_time_s}, schema=SCHEMAS["items"]))

    def lsm(self, at_us: int, tally: dict[tuple[str, str], list[int]]) -> None:
        """What HVPS's gridlock resolution has settled since the last call, counted in the
        bucket of ``at_us``: ``tally`` is the running (step, sending participant) ->
        [payments, value] that CNAPS keeps (``Cnaps.batch_lsm``)."""
        d = self.day
        assert d is not None, "start_day first"
        b = int(self._bucket(at_us))
        where = {name: k for k, name in enumerate(self.names)}
        for key, (items, value) in tally.items():
            seen_items, seen_value = self._lsm_seen.get(key, (0, 0))
            if items == seen_items:
                continue
            self._lsm_seen[key] = (items, value)
            at = (LSM_STEPS.index(key[0]), where[key[1]])
            d.lsm_items[b][at] += items - seen_items
            d.lsm_value[b][at] += value - seen_value
            self.total_lsm_items[at] += items - seen_items
            self.total_lsm_value[at] += value - seen_value

    def sample(self, s: Sample) -> None:
        """The world's state after a window."""
        d = self.day
        assert d is not None, "start_day first"
        b = int(self._bucket(s.at_us))
        np.maximum(d.queue_peak_items[b], s.queue_items, out=d.queue_peak_items[b])
        np.maximum(d.queue_peak_value[b], s.queue_value_fen, out=d.queue_peak_value[b])
        d.queue_end_items[b] = s.queue_items
        d.queue_end_value[b] = s.queue_value_fen
        np.minimum(d.min_balance[b], s.balance_fen, out=d.min_balance[b])
        d.end_balance[b] = s.balance_fen
        d.credit_line[b] = s.credit_line_fen
        np.maximum(d.credit_peak[b], s.credit_drawn_fen, out=d.credit_peak[b])
        if not d.sampled[b]:
            d.min_position[b] = s.position_fen
        np.minimum(d.min_position[b], s.position_fen, out=d.min_position[b])
        d.end_position[b] = s.position_fen
        d.cap[b] = s.cap_fen
        np.maximum(d.transit_peak[b], s.transit_fen, out=d.transit_peak[b])
        d.transit_end[b] = s.transit_fen
        d.sampled[b] = True
        # the run's peaks, for the summary
        used = np.maximum(self.opening_fen - s.balance_fen, 0)
        available = np.maximum(self.opening_fen, 0) + s.credit_line_fen
        higher = used > self.peak_used
        self.peak_used[higher] = used[higher]
        self.available_at_peak[higher] = available[higher]
        share = np.where(available > 0, used * _PPM // np.maximum(available, 1), 0)
        np.maximum(self.peak_used_share_ppm, share, out=self.peak_used_share_ppm)
        np.maximum(self.peak_credit, s.credit_drawn_fen, out=self.peak_credit)
        np.minimum(self.low_position, s.position_fen, out=self.low_position)
        cap_use = np.where(s.cap_fen > 0, np.maximum(-s.position_fen, 0) * _PPM
                           // np.maximum(s.cap_fen, 1), 0)
        np.maximum(self.peak_cap_use_ppm, cap_use, out=self.peak_cap_use_ppm)
        np.maximum(self.peak_transit, s.transit_fen, out=self.peak_transit)
        np.maximum(self.peak_queue_value, s.queue_value_fen, out=self.peak_queue_value)
        np.maximum(self.peak_queue_total, s.queue_value_fen.sum(axis=1),
                   out=self.peak_queue_total)

    def end_day(self) -> None:
        """The day's accumulators become rows (only what occurred or was sampled)."""
        d = self.day
        if d is None:
            return
        self.day = None
        base = self.first_us + self.day_index * self.buckets_per_day * self.bucket_us
        starts = [format_time(base + k * self.bucket_us) for k in range(d.buckets)]
        names = self.names
        b, s, p, c = np.nonzero(d.flow_items)
        self._append("flows", {
            "bucket_start": [starts[x] for x in b], "system": [SYSTEMS[x].name for x in s],
            "participant": [names[x] for x in p], "outcome": [OUTCOMES[x].name.lower()
                                                              for x in c],
            "reason": [REASONS[OUTCOMES[x]] for x in c],
            "items": d.flow_items[b, s, p, c], "value_fen": d.flow_value[b, s, p, c]})
        b, s, p = np.nonzero(d.queue_peak_items | d.delayed_items)
        self._append("queues", {
            "bucket_start": [starts[x] for x in b], "system": [SYSTEMS[x].name for x in s],
            "participant": [names[x] for x in p],
            "peak_items": d.queue_peak_items[b, s, p],
            "peak_value_fen": d.queue_peak_value[b, s, p],
            "end_items": d.queue_end_items[b, s, p],
            "end_value_fen": d.queue_end_value[b, s, p],
            "delayed_items": d.delayed_items[b, s, p],
            "delayed_value_fen": d.delayed_value[b, s, p],
            "queue_time_value_fen_s": d.queue_time_value[b, s, p]})
        sampled = np.flatnonzero(d.sampled)
        b = np.repeat(sampled, len(names))
        p = np.tile(np.arange(len(names)), len(sampled))
        opening = self.opening_fen[p]
        self._append("liquidity", {
            "bucket_start": [starts[x] for x in b], "participant": [names[x] for x in p],
            "opening_balance_fen": opening, "min_balance_fen": d.min_balance[b, p],
            "end_balance_fen": d.end_balance[b, p],
            "liquidity_used_fen": np.maximum(opening - d.min_balance[b, p], 0),
            "credit_line_fen": d.credit_line[b, p],
            "credit_drawn_peak_fen": d.credit_peak[b, p]})
        b, n, p = np.nonzero(d.min_position | d.end_position)
        self._append("positions", {
            "bucket_start": [starts[x] for x in b],
            "system": [NET_SYSTEMS[x].name for x in n], "participant": [names[x] for x in p],
            "min_position_fen": d.min_position[b, n, p],
            "end_position_fen": d.end_position[b, n, p], "cap_fen": d.cap[b, n, p]})
        b, n = np.nonzero(d.transit_peak | d.transit_end)
        self._append("transit", {
            "bucket_start": [starts[x] for x in b],
            "system": [NET_SYSTEMS[x].name for x in n],
            "peak_fen": d.transit_peak[b, n], "end_fen": d.transit_end[b, n]})
        b, j, p = np.nonzero(d.lsm_items)
        self._append("lsm", {
            "bucket_start": [starts[x] for x in b], "step": [LSM_STEPS[x] for x in j],
            "participant": [names[x] for x in p], "items": d.lsm_items[b, j, p],
            "value_fen": d.lsm_value[b, j, p]})

    def _append(self, name: str, columns: dict[str, Any]) -> None:
        self.rows[name].append(pa.Table.from_pydict(columns, schema=SCHEMAS[name]))

    # ------------------------------------------------------------------ the output

    def tables(self) -> dict[str, pa.Table]:
        """Every table (``items`` only with keep_items), rows in time order."""
        self.end_day()
        return {name: pa.concat_tables(parts) if parts else SCHEMAS[name].empty_table()
                for name, parts in self.rows.items()
                if name != "items" or self.keep_items}

    def participant_summary(self) -> dict[str, Any]:
        """Per participant: liquidity, credit, queues, rejections, cap use (JSON-ready)."""
        out: dict[str, Any] = {}
        for k, name in enumerate(self.names):
            sent: dict[str, Any] = {}
            for s in SYSTEMS:
                items, values = self.total_items[s, k], self.total_value[s, k]
                if not items.any():
                    continue
                credited = int(values[BulkCode.CREDITED])
                sent[s.name] = {
                    "outcomes": {c.name.lower(): {"items": int(items[c]),
                                                  "value_fen": int(values[c])}
                                 for c in OUTCOMES if items[c]},
                    "delayed_items": int(self.total_delayed_items[s, k]),
                    "delayed_value_fen": int(self.total_delayed_value[s, k]),
                    "queue_time_s": weighted_time(
                        float(self.total_queue_time_value[s, k]), credited),
                    "peak_queue_value_fen": int(self.peak_queue_value[s, k]),
                }
                if s is TrafficSystem.HVPS:
                    sent[s.name]["lsm"] = self._lsm_doc(k)
            out[name] = {
                "peak_liquidity_used_fen": int(self.peak_used[k]),
                "available_at_peak_fen": int(self.available_at_peak[k]),
                "peak_liquidity_used_ppm": int(self.peak_used_share_ppm[k]),
                "peak_credit_drawn_fen": int(self.peak_credit[k]),
                "net": {n.name: {"low_position_fen": int(self.low_position[i, k]),
                                 "peak_cap_use_ppm": int(self.peak_cap_use_ppm[i, k])}
                        for i, n in enumerate(NET_SYSTEMS)},
                "sent": sent,
            }
        return out

    def waited_value_s(self) -> float:
        """Σ value x seconds waited, all systems, settled or given back at the end."""
        return float(self.total_queue_time_value.sum() + self.total_unsettled_wait_value.sum())

    def system_summary(self, s: TrafficSystem) -> dict[str, Any]:
        """Per system: value-weighted queue time, delayed items, peak queue and transit."""
        credited = int(self.total_value[s, :, BulkCode.CREDITED].sum())
        doc: dict[str, Any] = {
            "delayed_items": int(self.total_delayed_items[s].sum()),
            "delayed_value_fen": int(self.total_delayed_value[s].sum()),
            "queue_time_s": weighted_time(float(self.total_queue_time_value[s].sum()),
                                          credited),
            "delay_index_s": weighted_time(
                float(self.total_queue_time_value[s].sum()
                      + self.total_unsettled_wait_value[s].sum()),
                credited + int(self.total_unsettled_value[s].sum())),
            "peak_queue_value_fen": int(self.peak_queue_total[s]),
        }
        if s in NET_SYSTEMS:
            doc["peak_in_transit_fen"] = int(self.peak_transit[NET_SYSTEMS.index(s)])
        if s is TrafficSystem.HVPS:
            doc["lsm"] = self._lsm_doc(None)
            settled = sum(x["value_fen"] for x in doc["lsm"].values())
            doc["lsm_share_ppm"] = settled * _PPM // credited if credited else 0
        return doc

    def _lsm_doc(self, participant: int | None) -> dict[str, dict[str, int]]:
        """Payments and value settled by each step of gridlock resolution, by everyone or
        by one sending participant."""
        pick = slice(None) if participant is None else participant
        return {step: {"items": int(self.total_lsm_items[j, pick].sum()),
                       "value_fen": int(self.total_lsm_value[j, pick].sum())}
                for j, step in enumerate(LSM_STEPS)}


def weighted_time(value_seconds: float, value_fen: int) -> float:
    """Value-weighted mean queue time in seconds, to the millisecond (0 when nothing
    settled): Σ(value × seconds queued) / Σ value, over the settled transfers."""
    return round(value_seconds / value_fen, 3) if value_fen else 0.0


def queue_seconds(done_us: int, arrival_us: I64, queued: npt.NDArray[np.bool_]) -> F64:
    """Seconds from arrival to ``done_us`` for transfers that waited, 0 for the others."""
    return np.where(queued, (done_us - arrival_us) / US_PER_SECOND, 0.0).astype(np.float64)


def write_tables(tables: dict[str, pa.Table], out: Path) -> list[Path]:
    """Each table as ``NAME.parquet``: fixed schema, zstd, no timestamps (same data, same
    bytes)."""
    written = []
    for name, table in sorted(tables.items()):
        path = out / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd", write_statistics=True)
        written.append(path)
    return written
