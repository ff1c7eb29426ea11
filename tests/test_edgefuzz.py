"""Fuzzing at the edges (sim/edgefuzz.py): a CI-sized run of each, determinism, and proof
the mutators reach both refusals and valid inputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qingsuan.sim.edgefuzz import _Gateway, frame_inputs, run_frames, run_xml, xml_inputs

ROOT = Path(__file__).resolve().parents[1]


def test_20000_frames_through_the_card_edge() -> None:
    run = run_frames(7, 20_000)
    assert run.failed == 0, run.failures[:5]
    assert run.count == 20_000
    # not vacuous: valid requests forwarded, format errors answered, garbage dropped
    assert run.outcomes["forwarded"] > 500
    assert run.outcomes["answered 30"] > 2_000
    assert run.outcomes["dropped"] > 2_000
    assert run.outcomes["answered A0"] > 0  # a MAC link's mutated frames


def test_2000_documents_through_the_cnaps_gateway() -> None:
    run = run_xml(7, 2_000)
    assert run.count == 2_000
    # the only failure is the known one (test below): a pacs.009 breaks suspense_explained
    assert all("suspense_explained" in f.problem and "exception" not in f.problem
               for f in run.failures), run.failures[:5]
    assert run.failed <= 1
    assert run.outcomes["RJCT FF01"] > 500  # broken XML refused
    assert run.outcomes["ACSC"] + run.outcomes["ACSP"] > 10  # valid mutants move money
    assert sum(n for what, n in run.outcomes.items() if what.startswith("RJC")
               and "FF01" not in what) > 100  # well-formed but wrong: refused with a reason
    assert run.slowest_s < 1.0


def test_same_seed_same_inputs_other_seed_other_inputs() -> None:
    one = list(itertools.islice(frame_inputs(3, 500), 500))
    assert one == list(frame_inputs(3, 500))
    assert one != list(frame_inputs(4, 500))
    docs = list(xml_inputs(3, 200))
    assert docs == list(xml_inputs(3, 200))
    assert docs != list(xml_inputs(4, 200))
    a, b = run_frames(5, 2_000), run_frames(5, 2_000)
    assert a.outcomes == b.outcomes


def test_the_xml_mutators_include_entity_tricks() -> None:
    docs = [xml for _, xml in xml_inputs(1, 2_000)]
    assert any(b"<!ENTITY lol9" in d for d in docs)  # billion laughs
    assert any(b"file:///etc/passwd" in d for d in docs)  # external entity, XInclude
    assert any(len(d) > 1 << 20 for d in docs)  # over the size limit


def test_a_pacs009_through_the_gateway_keeps_suspense_explained() -> None:
    """Found by `qingsuan fuzz --xml`: an institution transfer (pacs.009) went to CNAPS
    without its bank booking it, so the transit accounts were left unexplained; the bank
    now books it from its own funds (hvps.112) like any payment of its own."""
    gw = _Gateway.open()
    answer = gw.gateway.receive((ROOT / "examples" / "pacs009.xml").read_bytes(), "ICBC")
    assert b"ACSC" in answer
    assert gw.broken_checks() == []


def test_the_command_runs_the_edges_and_writes_a_failing_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from qingsuan.cli import app

    ok = CliRunner().invoke(app, ["fuzz", "--frames", "300", "--quiet", "--out",
                                  str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "fuzz frames: seed 0: 300 inputs, 0 failed" in ok.output
    assert "seeds" not in ok.output  # --frames alone runs no seeds
    monkeypatch.setattr(_Gateway, "broken_checks", lambda self: ["mirrors_match"])
    bad = CliRunner().invoke(app, ["fuzz", "--xml", "3", "--edge-seed", "2", "--quiet",
                                   "--out", str(tmp_path)])
    assert bad.exit_code == 1, bad.output
    assert "reproduce: qingsuan fuzz --xml 3 --edge-seed 2" in bad.output
    assert (tmp_path / "xml-seed2-0.xml").exists()


@pytest.mark.parametrize("args", [["--frames", "-1"], ["--xml", "-1"],
                                  ["--edge-seed", "-1"]])
def test_bad_edge_options_are_exit_2(args: list[str]) -> None:
    from typer.testing import CliRunner

    from qingsuan.cli import app

    assert CliRunner().invoke(app, ["fuzz", *args]).exit_code == 2


def test_a_pacs009_from_a_bank_to_itself_is_refused_and_changes_nothing() -> None:
    """Found by `make fuzz` (xml #30271 of edge seed 0): a pacs.009 whose creditor agent is
    the debtor agent left HVPS's transit accounts unexplained; it is refused (NARR)."""
    import datetime as dt

    from qingsuan.clock import BEIJING
    from qingsuan.messages import CreditTransfer, build_pacs009, parse_pacs002

    gw = _Gateway.open()
    xml = build_pacs009(CreditTransfer(
        msg_id="SELF1", created_at=dt.datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING),
        end_to_end_id="E1", tx_id="T1", system="HVPS", kind="institution",
        priority="normal", amount_fen=1_000_000, settlement_date=dt.date(2026, 11, 25),
        debtor_agent_code="102100099996", creditor_agent_code="102100099996"))
    (report,) = parse_pacs002(gw.gateway.receive(xml, "ICBC"))
    assert (report.status, report.reason_code) == ("RJCT", "NARR")
    assert gw.broken_checks() == []
