"""Calibration: the share of value an RTGS with queues settles by offsetting (issue 14 §9).

Plays one day of HVPS traffic set up like the RBA's RITS (bench/calibration-rits.yaml: 59
direct participants, 35,500 payments worth 171 billion, liquidity 9.4% of the value,
bypass-FIFO queue, bilateral offset over up to 10 payments) and prints the share of the
value settled by each step of gridlock resolution, then the same at other liquidity
levels and with multilateral offsetting. A benchmark-style script, not a test: figures go
in docs/CALIBRATION.md.

    python bench/calibrate_rits.py [--liquidity 0.0936,0.05,0.02] [--seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_simulate import with_participants  # noqa: E402

from qingsuan.sim.scenario import load_scenario  # noqa: E402
from qingsuan.sim.simulate import Options, simulate  # noqa: E402
from qingsuan.sim.sweep import CHOICES, SETTINGS  # noqa: E402

FILE = ROOT / "bench" / "calibration-rits.yaml"
PARTICIPANTS = 59


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--liquidity", default="0.0936,0.05,0.03,0.02")
    ap.add_argument("--lsm", default="bilateral,lsm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=None,
                    help="the amounts' lognormal shape (default: the file's, 1.5)")
    ap.add_argument("--fifo", action="store_true",
                    help="CNAPS's strict FIFO queue instead of RITS's bypass-FIFO")
    ap.add_argument("--chunk-minutes", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = load_scenario(with_participants(str(FILE), PARTICIPANTS, Path(tmp)))
    print("| liquidity | hvps.lsm | credited bn | by bilateral | by multilateral | "
          "offset share | not settled bn |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for liquidity in (float(x) for x in args.liquidity.split(",")):
        for lsm in args.lsm.split(","):
            sc = CHOICES["lsm"][1](SETTINGS["liquidity"][2](base, liquidity), lsm)
            assert sc.traffic is not None
            if args.sigma is not None:
                sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, systems=tuple(
                    dataclasses.replace(x, sigma=args.sigma) for x in sc.traffic.systems)))
            if args.fifo:
                sc.params.set("hvps.bypass_fifo", "off")
            hv = simulate(sc, Options(seed=args.seed, chunk_minutes=args.chunk_minutes)
                          ).summary["systems"]["HVPS"]
            credited = hv["credited_value_fen"]
            bi, multi = (hv["lsm"][s]["value_fen"] for s in ("bilateral", "multilateral"))
            unsettled = hv["outcomes"].get("not_settled", {}).get("value_fen", 0)
            print(f"| {liquidity:.2%} | {lsm} | {credited / 1e11:,.1f} | {bi / 1e11:,.1f} | "
                  f"{multi / 1e11:,.1f} | {(bi + multi) / max(credited, 1):.1%} | "
                  f"{unsettled / 1e11:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
