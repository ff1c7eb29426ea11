"""Deterministic simulation testing (qingsuan fuzz, sim/fuzz.py): 200 seeds in CI, the same
seed gives the same world and verdict, the harness catches what it claims to, a failing seed
prints its reproduction, and mutated scenario files never make `qingsuan check` crash."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qingsuan.cli import app
from qingsuan.sim import fuzz
from qingsuan.sim.fuzz import check_mutants, generate, mutate, run_case
from qingsuan.sim.scenario import ScenarioError, load_scenario, parse_scenario

CI_SEEDS = 200
CHUNK = 50

#: seeds of bugs the fuzzer found (fixed), each kept as a regression test below
KNOWN_BEPS_RETURN_BEHIND_CAP = (218, 259, 540, 554, 929)


@pytest.mark.parametrize("first", range(0, CI_SEEDS, CHUNK))
def test_every_invariant_holds_for_200_seeds(first: int) -> None:
    """Four chunks of 50, so that `pytest -n 2` spreads them over both cores."""
    failed = {}
    for seed in range(first, first + CHUNK):
        verdict = run_case(generate(seed))
        if not verdict.ok:
            failed[seed] = verdict.problems
    assert not failed, "\n".join(
        f"seed {s}: {p[0]}\n  reproduce: qingsuan fuzz --seeds 1 --start {s}"
        for s, p in failed.items())


def test_the_same_seed_makes_the_same_case_and_verdict() -> None:
    assert generate(7) == generate(7)
    assert generate(7).text != generate(8).text
    one, two = run_case(generate(7)), run_case(generate(7))
    assert one.ok and one == two
    assert one.state_hash and one.entries > 1


def test_the_generator_reaches_every_route_and_fault() -> None:
    """Over 60 seeds the traffic covers each event kind and fault the brief lists, a
    holiday, 2 to 4 banks, and duplicates both true and altered."""
    kinds: set[str] = set()
    params: set[str] = set()
    banks: set[int] = set()
    altered: set[bool] = set()
    holiday = False
    for seed in range(60):
        case = generate(seed)
        sc = parse_scenario(case.text, "f.yaml")
        kinds |= {e.do for e in sc.events}
        params |= {e.fields["name"] for e in sc.events if e.do == "set_param"}
        banks.add(sum(1 for p in sc.participants if p.kind == "bank"))
        altered |= {d.altered for d in case.duplicates}
        holiday |= sc.name and any(d in case.text for d in fuzz.HOLIDAY_EVES)
        assert any(p.kind == "payment_institution" for p in sc.participants)
        shop = next(c for c in sc.customers if c.id == "shop")
        pos = next(t for t in sc.terminals if t.kind == "pos")
        assert pos.bank != shop.bank  # the merchant banks elsewhere than its POS
    assert {"transfer", "hvps_payment", "beps_payment", "ibps_payment", "pos_purchase",
            "atm_withdrawal", "reversal", "pos_refund", "preauth", "preauth_completion",
            "dispute", "fault", "set_param", "cancel"} <= kinds
    assert set(fuzz.MAINTENANCE) <= params
    assert banks == {2, 3, 4} and altered == {True, False} and holiday


def test_a_broken_invariant_fails_the_seed_and_says_where(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness is not vacuous: money that is not conserved after some step fails."""
    calls = [0]
    real = fuzz.Runner.money_conserved

    def flaky(self: fuzz.Runner) -> bool:
        calls[0] += 1
        return calls[0] < 5 and real(self)

    monkeypatch.setattr(fuzz.Runner, "money_conserved", flaky)
    verdict = run_case(generate(3))
    assert not verdict.ok
    assert "money_conserved failed" in verdict.problems[0]


def test_a_duplicate_that_books_again_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A switch that forgets its transactions (so that a retry is decided and booked again)
    fails the seeds whose duplicates find it out, saying which request."""
    from qingsuan.cards.switch import CardSwitch

    real = CardSwitch.apply

    def forgetful(self: CardSwitch, kind: str, timestamp_us: int, body: bytes) -> object:
        if kind == "cards.request":
            doc = json.loads(body)
            self.txns.pop(f"{doc.get('32', '')}|{doc.get('11', '')}|{doc.get('7', '')}", None)
        return real(self, kind, timestamp_us, body)

    monkeypatch.setattr(CardSwitch, "apply", forgetful)
    problems = [p for seed in range(30) for p in run_case(generate(seed)).problems]
    assert any("sent again" in p for p in problems), problems


def test_the_resumed_run_is_compared_with_the_whole_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume that loses the duplicates of the event it stopped after is a difference."""
    monkeypatch.setattr(fuzz._Driver, "resume", lambda self, runner, scenario: None)
    bad = [s for s in range(120) if not run_case(generate(s)).ok]
    assert bad, "some crash lands between an event and its duplicate"


@pytest.mark.parametrize("seed", [2163, 2214, 2230, 2540])
def test_a_run_stopped_after_a_window_of_events_resumes_their_duplicates(seed: int) -> None:
    """These seeds crash right after a window entry (a run's events logged together,
    engine.py): the resume reads the window's last event, as it reads a lone one."""
    verdict = run_case(generate(seed))
    assert verdict.ok, verdict.problems


def test_a_failing_seed_prints_its_reproduction_and_writes_its_scenario(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz.Runner, "mirrors_match", lambda self: False)
    result = CliRunner().invoke(app, ["fuzz", "--seeds", "2", "--start", "40", "--out",
                                      str(tmp_path / "out"), "--mutants", "0", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "reproduce: qingsuan fuzz --seeds 1 --start 40" in result.output
    assert "mirrors_match failed" in result.output
    written = tmp_path / "out" / "seed-40.yaml"
    assert "qingsuan fuzz --seeds 1 --start 40" in written.read_text()
    assert load_scenario(written).name == "fuzz-40"  # qingsuan run can play it


def test_the_command_passes_and_reports_its_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["fuzz", "--seeds", "3", "--start", "0", "--out",
                                      str(tmp_path), "--quiet", "--mutants", "1"])
    assert result.exit_code == 0, result.output
    assert "3 passed, 0 failed" in result.output and "seeds/s" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["--seeds", "0"], ["--start", "-1"],
                                  ["--mutants", "1000001"]])
def test_bad_options_are_exit_2(args: list[str]) -> None:
    assert CliRunner().invoke(app, ["fuzz", *args]).exit_code == 2


@pytest.mark.parametrize("seed", KNOWN_BEPS_RETURN_BEHIND_CAP)
def test_a_beps_return_behind_the_cap_credits_the_payer_when_it_nets(seed: int) -> None:
    """Seeds the fuzzer found (a BEPS return queued behind the returning bank's cap was
    booked as returned at once): the returning bank owes the money (returns_payable) until
    the return nets, then the payer is credited."""
    assert run_case(generate(seed)).ok


# ---------------------------------------------------------------------- mutated files

def test_mutants_are_a_listed_error_or_a_valid_run(tmp_path: Path) -> None:
    """300 mutants of 30 seeds' scenarios: `qingsuan check` answers every one with a listed
    error or takes it, and a taken one runs with every check holding."""
    problems = []
    for seed in range(30):
        problems += check_mutants(generate(seed), 10, tmp_path)
    assert not problems, "\n".join(problems)


def test_mutations_change_the_file_in_every_way() -> None:
    rng = random.Random(1)
    text = generate(1).text
    mutants = {mutate(text, rng) for _ in range(60)}
    assert text not in mutants or len(mutants) > 40
    outcomes = {"error": 0, "valid": 0}
    for m in mutants:
        try:
            parse_scenario(m, "m.yaml")
            outcomes["valid"] += 1
        except ScenarioError:
            outcomes["error"] += 1
        except Exception:  # counted by the test above, not here
            pass
    assert outcomes["error"] > 10 and outcomes["valid"] > 0


_ONE_BANK = ('name: x\nstart: 2026-11-25T08:00\nrun_until: 2026-11-25T09:00\n'
             'participants: [{name: ICBC, code: "102100099996", settlement_balance: "0.00"}]\n'
             'customers: [{id: a, bank: ICBC, account: "6222020200000000014", '
             'balance: "1.00"}]\nevents:\n')


@pytest.mark.parametrize("event", [
    "{at: 2026-11-25T08:30, do: [1]}",
    "{at: 2026-11-25T08:30, do: {a: 1}}",
    '{at: 2026-11-25T08:30, do: transfer, id: t, from: a, amount: "1.00",'
    ' to: {bank: [1], account: "6222020200000000022"}}',
])
def test_a_list_where_a_word_belongs_is_a_listed_error(event: str, tmp_path: Path) -> None:
    """Mutants the fuzzer found crashed `qingsuan check` (unhashable type)."""
    path = tmp_path / "s.yaml"
    path.write_text(_ONE_BANK + f"  - {event}\n")
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.exception
