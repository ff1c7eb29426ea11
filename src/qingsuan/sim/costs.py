"""Banks' costs of a simulated run (``costs:``, docs/SIMULATE.md "Costs"), in fen.

Four parts per bank, each from a rate with a documented default:

* intraday liquidity: ``liquidity_rate`` (per day) x the day's peak liquidity used (the
  opening balance run down, and pledge credit drawn beyond it);
* delay: ``delay_rate_per_hour`` x value x hours each payment waited (all systems);
* end of day: ``end_of_day_rate`` x the value still unsettled at the end (HVPS
  ``not_settled``, BEPS ``over_cap``);
* overnight credit: the pledge financing left unpaid at each day's end x
  ``overnight_rate`` / 360 (default: the world's ``hvps.credit_rate``).

The one thing a reader would get wrong: these are an analyst's shadow prices for comparing
policies, not fees anyone books; nothing here touches the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

PPM: Final = 1_000_000
DAYS_PER_YEAR: Final = 360  # the money-market convention of PBOC lending rates

DEFAULT_LIQUIDITY_PPM: Final = 100      # 0.0001 a day: 1 basis point
DEFAULT_DELAY_PPM_PER_HOUR: Final = 20  # 0.00002 an hour
DEFAULT_END_OF_DAY_PPM: Final = 1_000   # 0.001: 10 basis points


@dataclass(frozen=True, slots=True)
class CostRates:
    liquidity_ppm: int = DEFAULT_LIQUIDITY_PPM
    delay_ppm_per_hour: int = DEFAULT_DELAY_PPM_PER_HOUR
    end_of_day_ppm: int = DEFAULT_END_OF_DAY_PPM
    #: annual; None: the world's hvps.credit_rate
    overnight_ppm: int | None = None
    line: int = 0


KEYS: Final = ("liquidity_fen", "delay_fen", "end_of_day_fen", "overnight_fen", "total_fen")


def bank_costs(rates: CostRates, overnight_ppm: int, names: list[str],
               tables: dict[str, pa.Table], overnight_fen: dict[str, int]
               ) -> dict[str, Any]:
    """Per bank and in all (JSON-ready). ``overnight_fen``: per bank, the sum over the
    days of the pledge credit left unpaid at the day's end."""
    peak: dict[tuple[str, str], int] = defaultdict(int)  # (day, bank) -> peak used
    for r in tables["liquidity"].select(["bucket_start", "participant",
                                         "liquidity_used_fen"]).to_pylist():
        key = (r["bucket_start"][:10], r["participant"])
        peak[key] = max(peak[key], int(r["liquidity_used_fen"]))
    used: dict[str, int] = defaultdict(int)
    for (_, bank), value in peak.items():
        used[bank] += value
    waited: dict[str, float] = defaultdict(float)
    for r in tables["queues"].select(["participant", "queue_time_value_fen_s"]).to_pylist():
        waited[r["participant"]] += float(r["queue_time_value_fen_s"])
    unsettled: dict[str, int] = defaultdict(int)
    for r in tables["flows"].select(["participant", "outcome", "value_fen"]).to_pylist():
        if r["outcome"] in ("not_settled", "over_cap"):
            unsettled[r["participant"]] += int(r["value_fen"])
    banks: dict[str, dict[str, int]] = {}
    for name in names:
        doc = {
            "liquidity_fen": used[name] * rates.liquidity_ppm // PPM,
            "delay_fen": round(waited[name] * rates.delay_ppm_per_hour / PPM / 3600),
            "end_of_day_fen": unsettled[name] * rates.end_of_day_ppm // PPM,
            "overnight_fen": overnight_fen.get(name, 0) * overnight_ppm
            // PPM // DAYS_PER_YEAR,
        }
        doc["total_fen"] = sum(doc.values())
        banks[name] = doc
    return {
        "rates_ppm": {"liquidity_per_day": rates.liquidity_ppm,
                      "delay_per_hour": rates.delay_ppm_per_hour,
                      "end_of_day": rates.end_of_day_ppm, "overnight_per_year": overnight_ppm},
        "banks": banks,
        "total_fen": sum(b["total_fen"] for b in banks.values()),
    }
