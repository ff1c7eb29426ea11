"""Generated card traffic (sim/sim_cards.py): seeded, calibrated to its targets, interbank
between banks, the same whatever the windows (played: tests/test_sim_cards_play.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qingsuan.clock import US_PER_HOUR, parse_time
from qingsuan.sim.sim_cards import CardDay, CardTraffic, day_totals
from qingsuan.sim.traffic import Member, Network

MIDNIGHT = parse_time("2026-09-30T00:00")


def _network() -> Network:
    members = [Member(f"B{i}", True, np.arange(i * 20, (i + 1) * 20)) for i in range(12)]
    members.append(Member("PAY", False, np.arange(240, 260)))  # no card business
    return Network(members, 1.1)


def _columns(day: CardDay) -> dict[str, np.ndarray]:
    slots = [day.slot(k) for k in day.slots()]
    return {c: np.concatenate([getattr(s, c) for s in slots])
            for c in ("at_us", "acquirer", "issuer", "merchant", "cardholder", "amount_fen")}


def test_a_card_day_has_its_targets_between_two_banks() -> None:
    """Count exact (a 1/100,000 day: 10,400); mean per item within 4 standard errors and
    5% of 740.38 CNY; issuer and acquirer two different banks, merchant and cardholder
    their customers; an evening peak above the small hours."""
    spec = CardTraffic(scale=1e-5)
    cols = _columns(CardDay(spec, _network(), 1, 0, MIDNIGHT))
    amount = cols["amount_fen"]
    assert len(amount) == 10_400 and amount.dtype == np.int64 and (amount >= 1).all()
    mean, error = float(amount.mean()), float(amount.std()) / math.sqrt(len(amount))
    assert abs(mean - spec.mean_fen) <= 4 * error and abs(mean / spec.mean_fen - 1) < 0.05
    assert (cols["acquirer"] != cols["issuer"]).all()
    assert not ((cols["acquirer"] == 12) | (cols["issuer"] == 12)).any()
    assert (cols["merchant"] // 20 == cols["acquirer"]).all()
    assert (cols["cardholder"] // 20 == cols["issuer"]).all()
    hour = (cols["at_us"] - MIDNIGHT) // US_PER_HOUR
    assert (np.diff(cols["at_us"]) >= 0).all()
    assert np.sum((hour >= 18) & (hour < 21)) > 10 * np.sum((hour >= 2) & (hour < 5))


def test_same_seed_same_bytes_another_seed_differs() -> None:
    spec = CardTraffic(scale=1e-5)
    a, b, c = (_columns(CardDay(spec, _network(), seed, 0, MIDNIGHT)) for seed in (3, 3, 4))
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert a["amount_fen"].tobytes() != c["amount_fen"].tobytes()


def test_the_day_totals_are_what_each_bank_acquired_and_issued() -> None:
    day = CardDay(CardTraffic(scale=1e-5), _network(), 5, 0, MIDNIGHT)
    items, value, acquired, issued = day_totals(day, 13)
    cols = _columns(day)
    assert items == 10_400 and value == int(cols["amount_fen"].sum())
    assert acquired.sum() == issued.sum() == value and acquired[12] == issued[12] == 0
    assert acquired[0] > acquired[6]  # the big bank acquires more


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"items_per_day": 0}, "items_per_day must be above 0"),
    ({"sigma": 0.0}, "sigma must be above 0"),
    ({"scale": 3.0}, "more than 2,000,000,000"),
])
def test_bad_card_targets_name_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CardTraffic(**kwargs)  # type: ignore[arg-type]

