"""Channel routing at its boundaries."""

from __future__ import annotations

import pytest

from qingsuan.banks.routing import Route, route_transfer

LIMIT = 5_000_000  # 50,000.00


def route(channel: str, amount: int, *, urgent: bool = False, hvps_open: bool = True,
          same_bank: bool = False) -> Route:
    return route_transfer(channel=channel, urgent=urgent, same_bank=same_bank,
                          amount_fen=amount, hvps_open=hvps_open, beps_limit_fen=LIMIT,
                          ibps_limit_fen=LIMIT).route


@pytest.mark.parametrize("channel", ["counter", "mobile"])
def test_normal_transfers_at_the_beps_limit(channel: str) -> None:
    assert route(channel, 4_999_999) is Route.BEPS
    assert route(channel, 5_000_000) is Route.BEPS
    assert route(channel, 5_000_001) is Route.HVPS
    assert route(channel, 5_000_001, hvps_open=False) is Route.HOLD
    assert route(channel, 100, same_bank=True) is Route.BOOK


def test_urgent_counter_uses_hvps_when_open_else_beps() -> None:
    assert route("counter", 100, urgent=True) is Route.HVPS
    assert route("counter", 100, urgent=True, hvps_open=False) is Route.BEPS


def test_urgent_mobile_uses_ibps_up_to_its_limit_and_refuses_above() -> None:
    assert route("mobile", 5_000_000, urgent=True) is Route.IBPS
    assert route("mobile", 5_000_000, urgent=True, hvps_open=False) is Route.IBPS
    refused = route_transfer(channel="mobile", urgent=True, same_bank=False,
                             amount_fen=5_000_001, hvps_open=True, beps_limit_fen=LIMIT,
                             ibps_limit_fen=LIMIT)
    assert refused.route is Route.REFUSE and refused.refusal is not None
    assert refused.refusal[0] == "AM02"
    assert "50000.00" in refused.refusal[1] and "split" in refused.refusal[1]
    assert "normal" in refused.refusal[1]


def test_unknown_channel_is_an_error() -> None:
    with pytest.raises(ValueError, match="channel"):
        route("atm", 1)
