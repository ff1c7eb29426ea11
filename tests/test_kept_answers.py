"""The per-payment paths of the banks and CNAPS keep answers they derived (BEPS's item
limit for a Beijing day, HVPS's phase for a span of time, a participant's admission for a
parameters version) and answer a payee at its own bank from its record. Every built-in
scenario is run with each answer checked, when it is given, against the answer derived
afresh (the caches emptied) or by the general path (the directory's resolve)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from qingsuan.banks import incoming
from qingsuan.banks.routing import route, route_transfer
from qingsuan.cnaps.hvps import Hvps
from qingsuan.cnaps.netsys import NetSystem
from qingsuan.cnaps.participants import Directory
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import load_scenario

SCENARIOS = Path(str(resources.files("qingsuan") / "scenarios"))


@pytest.fixture(autouse=True)
def _card_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QINGSUAN_CARD_KEY", "5c" * 32)


def _resolved_by_number(b: Any, bank: str, payee: str) -> tuple[str | None, Any]:
    """The general path: the payee's account number looked up at ``bank``."""
    if "|" not in payee:
        customer = b.directory[payee]
        account, name = customer.account, customer.name
    else:
        _, account, name = payee.split("|", 2)
    found, problem = b.directory.resolve(bank, account, name, name_check=b.name_check())
    return (found.id if found is not None else None), problem


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIOS.glob("*.yaml")
                                        if not p.stem.startswith("sim-")))
def test_kept_answers_are_the_fresh_ones(name: str, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    asked = {"resolve": 0, "limit": 0, "phase": 0, "admit": 0}
    resolve, limit, phase, admit = (incoming._resolve, NetSystem.item_limit_fen, Hvps.phase,
                                    Directory.admit)

    def checked_resolve(b: Any, bank: str, payee: str) -> Any:
        answer = resolve(b, bank, payee)
        assert answer == _resolved_by_number(b, bank, payee)
        asked["resolve"] += 1
        return answer

    def checked_limit(net: NetSystem, kind: str, now_us: int) -> int | None:
        answer = limit(net, kind, now_us)
        net._limit_cache = (0, 0, None, -1, 0)
        assert limit(net, kind, now_us) == answer
        asked["limit"] += 1
        return answer

    def checked_phase(hvps: Hvps, at_us: int) -> Any:
        answer = phase(hvps, at_us)
        hvps._phase_cache = (None, -1, 0, 0, answer)
        assert phase(hvps, at_us) == answer
        asked["phase"] += 1
        return answer

    def checked_admit(d: Directory, who: str, role: str, system: str, params: Any) -> Any:
        answer = admit(d, who, role, system, params)
        d._admitted = {}
        assert admit(d, who, role, system, params) == answer
        asked["admit"] += 1
        return answer

    monkeypatch.setattr(incoming, "_resolve", checked_resolve)
    monkeypatch.setattr(NetSystem, "item_limit_fen", checked_limit)
    monkeypatch.setattr(Hvps, "phase", checked_phase)
    monkeypatch.setattr(Directory, "admit", checked_admit)
    run_scenario(load_scenario(SCENARIOS / f"{name}.yaml"))
    if name in ("channels", "netting", "returns", "wallet", "weekend"):
        assert all(asked.values()), asked  # (these scenarios ask each answer)


def test_route_by_position_is_route_by_keywords() -> None:
    for channel in ("counter", "mobile"):
        for urgent in (False, True):
            for same_bank in (False, True):
                for amount in (1, 5_000_000, 20_000_000, 60_000_000):
                    for hvps_open in (False, True):
                        args = (channel, urgent, same_bank, amount, hvps_open, 5_000_000,
                                50_000_000)
                        assert route(*args) == route_transfer(
                            channel=channel, urgent=urgent, same_bank=same_bank,
                            amount_fen=amount, hvps_open=hvps_open,
                            beps_limit_fen=5_000_000, ibps_limit_fen=50_000_000)
    with pytest.raises(ValueError, match="counter or mobile"):
        route("atm", False, False, 1, True, 1, 1)

