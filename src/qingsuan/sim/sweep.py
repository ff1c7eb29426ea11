"""Sweeps (``--sweep``, docs/SIMULATE.md "Sweeps"): the same traffic over a grid of
settings, each point a whole simulation, run on Dask (``dask.distributed``).

A point is described by the scenario's text and its settings, so any worker (a process of
a local cluster, or a machine of an existing one) rebuilds the same world and the same
traffic from the seed: the answers are the same whatever the number of workers, and come
back in the grid's order. The one thing a reader would get wrong: the grid changes the
world (balances, cash managers, HVPS's gridlock resolution), never the traffic.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from qingsuan.cnaps.gridlock import ALGORITHMS
from qingsuan.params import Params
from qingsuan.sim.policies import Policy, PolicyKind
from qingsuan.sim.scenario import Scenario, parse_scenario
from qingsuan.sim.simulate import Options, simulate

#: grid points one sweep may hold
MAX_POINTS: Final = 10_000
#: values one axis written as start:stop:count may hold
MAX_STEPS: Final = 1_000


@dataclass(frozen=True, slots=True)
class Axis:
    """One swept setting and its values, in order."""

    name: str
    #: numbers, or the names of a choice (``lsm``)
    values: tuple[float, ...] | tuple[str, ...]


def _liquidity(sc: Scenario, value: float) -> Scenario:
    assert sc.traffic is not None
    return dataclasses.replace(sc, traffic=dataclasses.replace(
        sc.traffic, settlement_liquidity=value))


def _buffer(sc: Scenario, value: float) -> Scenario:
    """Every bank's cash manager keeps this share of its opening balance."""
    policies = tuple((p.name, Policy(PolicyKind.BUFFER, round(value * 1_000_000)))
                     for p in sc.participants)
    return dataclasses.replace(sc, sim=dataclasses.replace(sc.sim, cash_managers=policies))


def _lsm(sc: Scenario, value: str) -> Scenario:
    """HVPS's gridlock resolution (the ``hvps.lsm`` parameter) for this point."""
    params = Params(sc.params.written())
    params.set("hvps.lsm", value)
    return dataclasses.replace(sc, params=params)


#: what a sweep may vary: name -> (lowest, highest, how a value changes the scenario)
SETTINGS: Final[dict[str, tuple[float, float, Callable[[Scenario, float], Scenario]]]] = {
    "liquidity": (0.0, 1_000.0, _liquidity),   # traffic: settlement_liquidity
    "buffer": (0.0, 1.0, _buffer),             # cash_managers: every bank buffer
}
#: what a sweep may switch between named values: name -> (the values, how one changes it)
CHOICES: Final[dict[str, tuple[tuple[str, ...], Callable[[Scenario, str], Scenario]]]] = {
    "lsm": (ALGORITHMS, _lsm),                 # params: hvps.lsm
}


def parse_axis(text: str) -> Axis:
    """``NAME=START:STOP:COUNT`` (COUNT values from START to STOP, both included) or
    ``NAME=V1,V2,...``. Raises ValueError naming what is wrong."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not spec.strip():
        raise ValueError(f"--sweep {text!r}: write NAME=START:STOP:COUNT or NAME=V1,V2")
    if name in CHOICES:
        allowed = CHOICES[name][0]
        names = tuple(v.strip() for v in spec.split(","))
        bad_names = [v for v in names if v not in allowed]
        if bad_names:
            raise ValueError(f"--sweep {name}: {bad_names[0]!r} is not one of "
                             f"{', '.join(allowed)} (write {name}=V1,V2,...)")
        return Axis(name, names)
    if name not in SETTINGS:
        raise ValueError(f"--sweep {name}: unknown setting (one of "
                         f"{', '.join(sorted([*SETTINGS, *CHOICES]))})")
    lo, hi, _ = SETTINGS[name]
    try:
        if ":" in spec:
            start_text, stop_text, count_text = spec.split(":")
            start, stop, count = float(start_text), float(stop_text), int(count_text)
            if not 2 <= count <= MAX_STEPS:
                raise ValueError
            values = tuple(round(start + (stop - start) * k / (count - 1), 9)
                           for k in range(count))
        else:
            values = tuple(float(v) for v in spec.split(","))
    except ValueError:
        raise ValueError(f"--sweep {text!r}: values must be numbers, START:STOP:COUNT with "
                         f"COUNT from 2 to {MAX_STEPS}, or V1,V2,...") from None
    bad = [v for v in values if not lo < v <= hi and not (name == "buffer" and v == 0)]
    if bad:
        raise ValueError(f"--sweep {name}: {bad[0]:g} is outside ({lo:g}, {hi:g}]")
    return Axis(name, values)


def grid(axes: list[Axis]) -> list[dict[str, float | str]]:
    """Every combination, the first axis varying slowest."""
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise ValueError("--sweep: a setting is swept twice")
    values: list[tuple[float | str, ...]] = [tuple(a.values) for a in axes]
    points: list[dict[str, float | str]] = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    if len(points) > MAX_POINTS:
        raise ValueError(f"--sweep: {len(points):,} points is more than {MAX_POINTS:,}")
    return points


def run_point(text: str, file: str, options: Options, point: dict[str, float | str]
              ) -> dict[str, Any]:
    """One point of the grid (on whichever worker): its figures, JSON-ready."""
    sc = parse_scenario(text, file)
    for name, value in point.items():
        sc = (CHOICES[name][1](sc, value) if isinstance(value, str)
              else SETTINGS[name][2](sc, value))
    s = simulate(sc, options).summary
    hv = s["systems"]["HVPS"]
    metrics = s["participant_metrics"]
    return {
        **point,
        "hvps_queue_time_s": hv["queue_time_s"],
        "hvps_delay_index_s": hv["delay_index_s"],
        "hvps_delayed_value_fen": hv["delayed_value_fen"],
        "hvps_credited_value_fen": hv["credited_value_fen"],
        "hvps_not_settled_value_fen": hv["outcomes"].get("not_settled", {})
        .get("value_fen", 0),
        "hvps_lsm_bilateral_value_fen": hv["lsm"]["bilateral"]["value_fen"],
        "hvps_lsm_multilateral_value_fen": hv["lsm"]["multilateral"]["value_fen"],
        "liquidity_used_fen": sum(m["peak_liquidity_used_fen"] for m in metrics.values()),
        "costs_fen": s["costs"]["total_fen"],
        "checks": all(s["checks"].values()),
    }


def run_sweep(text: str, file: str, options: Options, axes: list[Axis], *,
              workers: int = 2, scheduler: str | None = None) -> list[dict[str, Any]]:
    """The grid's figures in the grid's order. ``scheduler``: an existing Dask
    scheduler's address; otherwise a local cluster of ``workers`` processes (listening on
    127.0.0.1), or, with ``workers`` 0, every point in this process."""
    points = grid(axes)
    if scheduler is None and workers == 0:
        return [run_point(text, file, options, p) for p in points]
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            return _gather(client, text, file, options, points)
    with LocalCluster(n_workers=workers, threads_per_worker=1,  # type: ignore[no-untyped-call]
                      processes=True, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:  # type: ignore[no-untyped-call]
        return _gather(client, text, file, options, points)


def _gather(client: Any, text: str, file: str, options: Options,
            points: list[dict[str, float | str]]) -> list[dict[str, Any]]:
    futures = [client.submit(run_point, text, file, options, p, pure=False)
               for p in points]
    return [dict(r) for r in client.gather(futures)]


SCHEMA_METRICS: Final = (("hvps_queue_time_s", pa.float64()),
                         ("hvps_delay_index_s", pa.float64()),
                         ("hvps_delayed_value_fen", pa.int64()),
                         ("hvps_credited_value_fen", pa.int64()),
                         ("hvps_not_settled_value_fen", pa.int64()),
                         ("hvps_lsm_bilateral_value_fen", pa.int64()),
                         ("hvps_lsm_multilateral_value_fen", pa.int64()),
                         ("liquidity_used_fen", pa.int64()), ("costs_fen", pa.int64()),
                         ("checks", pa.bool_()))


def table(axes: list[Axis], rows: list[dict[str, Any]]) -> pa.Table:
    """The sweep as one table: a column per swept setting, then the figures."""
    schema = pa.schema([(a.name, pa.string() if a.name in CHOICES else pa.float64())
                        for a in axes] + list(SCHEMA_METRICS))
    return pa.Table.from_pylist(rows, schema=schema)
