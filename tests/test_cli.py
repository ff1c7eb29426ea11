"""The ``qingsuan`` command, run as a user runs it: a separate process, output on pipes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qingsuan.cli import NOT_STORIES, app

INTRABANK = Path(str(resources.files("qingsuan") / "scenarios" / "intrabank.yaml"))
_SCRIPT = Path(sys.executable).with_name("qingsuan")
COMMAND = ([str(_SCRIPT)] if _SCRIPT.exists()
           else [sys.executable, "-c", "from qingsuan.cli import main; main()"])

INVALID = """\
name: broken
colour: blue
start: 2026-11-25T08:00
run_until: 2026-11-25T18:00
participants:
  - {name: ICBC, code: "102100099996", settlement_balance: "1000.00"}
customers:
  - {id: alice, bank: ICBC, account: "6222020200000000014", balance: "10.001"}
  - {id: carol, bank: ICBC, account: "6222020200000000022", balance: "0.00"}
events:
  - {at: 2026-11-25T09:00, do: pos_refund, id: w1, target: nope, amount: "1.00"}
"""
#: (line, words of the reason) of every problem of INVALID
INVALID_PROBLEMS = [
    (2, "unknown key 'colour' (allowed: app, calendar, cards, "),
    (8, "more than two decimals"),
    (11, "target 'nope' is not the id of an earlier pos_purchase"),
]


def qingsuan(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60, check=False)


def flat(text: str) -> str:
    """Output with every run of whitespace (including wrapping) made one space."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``run --json --store PATH.db`` of the built-in story: the log file and the outcome."""
    db = tmp_path_factory.mktemp("log") / "run.db"
    proc = qingsuan("run", INTRABANK, "--json", "--store", db)
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)  # exactly one JSON document, nothing else
    assert db.exists()
    return db, outcome


def test_run_json_prints_the_outcome_contract(stored_run: tuple[Path, dict[str, Any]]) -> None:
    _, out = stored_run
    assert isinstance(out, dict)
    assert {"scenario", "ended_at", "payments", "balances", "inquiries", "checks"} <= set(out)
    assert out["scenario"] == "intrabank-day"
    assert out["ended_at"] == "2026-11-25T18:00:00+08:00"
    assert set(out["balances"]) == {"customers", "settlement", "terminals", "mirrors"}
    assert out["balances"]["customers"]["alice"] == "46500.01"
    assert out["balances"]["settlement"] == {"ICBC": "1000000.00", "CCB": "800000.00",
                                             "CUPS": "0.00"}
    assert out["balances"]["terminals"] == {"ATM00001": "200000.00"}
    assert out["payments"]["too-much"]["status"] == "rejected"
    assert out["payments"]["too-much"]["reason"]["code"] == "AM04"
    assert out["inquiries"] == {}
    assert all(out["checks"].values())


def test_run_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(INVALID, encoding="utf-8")
    proc = qingsuan("run", path, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    problem_lines = [line.strip() for line in lines
                     if re.match(rf"\s*{re.escape(str(path))}:\d+: ", line)]
    assert len(problem_lines) == len(INVALID_PROBLEMS), proc.stderr
    for (line, reason), shown in zip(INVALID_PROBLEMS, problem_lines, strict=True):
        # one line per problem, FILE:LINE: reason, whatever the width of the terminal
        assert shown.startswith(f"{path}:{line}: "), shown
        assert reason in shown, shown
    assert "nothing was run" in proc.stderr


def test_run_missing_file(tmp_path: Path) -> None:
    proc = qingsuan("run", tmp_path / "nosuch.yaml")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "no such file" in proc.stderr
    assert "nosuch.yaml" in proc.stderr


def test_check_valid_and_invalid(tmp_path: Path) -> None:
    good = qingsuan("check", INTRABANK)
    assert good.returncode == 0, good.stderr
    assert "valid" in good.stdout
    assert "2 participants, 4 customers, 5 events" in flat(good.stdout)
    path = tmp_path / "broken.yaml"
    path.write_text(INVALID, encoding="utf-8")
    bad = qingsuan("check", path)
    assert bad.returncode == 2
    assert f"{path}:8: " in bad.stderr
    assert "Traceback" not in bad.stderr


def test_demo_list() -> None:
    proc = qingsuan("demo", "--list")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^intrabank: ", proc.stdout, re.MULTILINE), proc.stdout


def test_demo_story_names_agree_between_list_heading_and_story() -> None:
    """--list, the heading of a story and --story use one name (the file's); --story also
    takes the name inside the file (intrabank's is intrabank-day)."""
    wide = CliRunner().invoke(app, ["demo", "--list"], env={"COLUMNS": "5000"})
    listed = re.findall(r"^([\w-]+): ", wide.stdout, re.MULTILINE)
    assert "intrabank" in listed and "card-sandbox" not in listed
    folder = INTRABANK.parent
    assert set(listed) == {p.stem for p in folder.glob("*.yaml")} - NOT_STORIES
    for name in ("intrabank", "intrabank-day"):
        played = CliRunner().invoke(app, ["demo", "--story", name])
        assert played.exit_code == 0, played.output
        heading = next(line for line in played.stdout.splitlines() if "─" in line)
        assert re.search(r"\bintrabank\b", heading) and "intrabank-day" not in heading


def test_run_twice_on_one_store_says_what_to_do(stored_run: tuple[Path, dict[str, Any]],
                                                tmp_path: Path) -> None:
    """The README's `run FILE --store run.db`, a second time: a clear refusal, the log
    untouched (log verify still passes)."""
    db, _ = stored_run
    again = qingsuan("run", INTRABANK, "--store", db)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "already holds a run of 'intrabank-day'" in flat(again.stderr)
    assert "--resume" in again.stderr and "--new" in again.stderr
    assert CliRunner().invoke(app, ["log", "verify", str(db)]).exit_code == 0


def test_demo_narrates_the_postings() -> None:
    proc = qingsuan("demo")
    assert proc.returncode == 0, proc.stderr
    text = flat(proc.stdout)
    assert "ICBC book: debit customer:alice 3500.00" in text
    assert "credit customer:carol (now 4700.00)" in text
    assert "CCB book: debit customer:bob 45.50" in text
    assert "rejected AM04" in text
    assert "46500.01" in text  # the closing balances


def test_demo_unknown_story() -> None:
    proc = qingsuan("demo", "--story", "nosuch")
    assert proc.returncode == 2
    assert "nosuch" in proc.stderr
    assert "intrabank" in proc.stderr  # says what is available
    assert "Traceback" not in proc.stderr


def test_params_lists_the_defaults() -> None:
    proc = qingsuan("params")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "ibps.item_limit" in line)
    assert "50000.00" in row
    assert "hvps.open" in proc.stdout


def test_help_of_the_installed_command() -> None:
    proc = qingsuan("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "check", "demo", "params", "log"):
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.MULTILINE), command


@pytest.mark.parametrize("command", [["run"], ["check"], ["demo"], ["params"], ["log"],
                                     ["log", "verify"]])
def test_help_of_each_command(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert " ".join(command) in result.output


def test_log_verify_intact(stored_run: tuple[Path, dict[str, Any]]) -> None:
    db, outcome = stored_run
    proc = qingsuan("log", "verify", db)
    assert proc.returncode == 0, proc.stderr
    assert "chain intact" in proc.stdout
    match = re.search(r"state hash ([0-9a-f]{64})\b", proc.stdout)  # on one line
    assert match, proc.stdout
    assert match.group(1) == outcome["log"]["state_hash"]


def test_log_verify_tampered(stored_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    db, _ = stored_run
    tampered = tmp_path / "tampered.db"
    tampered.write_bytes(db.read_bytes())
    conn = sqlite3.connect(tampered)
    with conn:
        changed = conn.execute("UPDATE command_log SET payload = CAST(X'00' || payload AS BLOB)"
                               " WHERE seq = 2").rowcount
    conn.close()
    assert changed == 1
    proc = qingsuan("log", "verify", tampered)
    assert proc.returncode != 0
    assert "chain intact" not in proc.stdout
    assert "Traceback" not in proc.stderr
    assert "entry 2" in flat(proc.stderr)


def test_log_verify_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.db"
    proc = qingsuan("log", "verify", missing)
    assert proc.returncode != 0
    assert "chain intact" not in proc.stdout
    assert "Traceback" not in proc.stderr
    assert "nosuch.db" in proc.stderr
    assert not missing.exists()  # verifying must not create an empty log


def test_cnaps_send_and_statement_on_a_stored_world(tmp_path: Path) -> None:
    """The file-based sandbox: build a world, send a pacs.008 as ICBC, read the answer and
    CCB's camt.053 of the closed day."""
    import datetime as dt

    from qingsuan.clock import BEIJING
    from qingsuan.messages import CreditTransfer, build_pacs008, parse_camt053, parse_pacs002

    story = Path(str(resources.files("qingsuan") / "scenarios" / "hvps-queue.yaml"))
    store = tmp_path / "world.db"
    assert qingsuan("run", story, "--store", store).returncode == 0
    xml = tmp_path / "p8.xml"
    xml.write_bytes(build_pacs008(CreditTransfer(
        msg_id="SANDBOX1", created_at=dt.datetime(2026, 11, 26, 10, 0, tzinfo=BEIJING),
        end_to_end_id="E1", tx_id="T1", system="HVPS", kind="customer", priority="normal",
        amount_fen=12_345_600, settlement_date=dt.date(2026, 11, 26),
        debtor_agent_code="102100099996", creditor_agent_code="105100000017",
        debtor_name="Wuhan Steel Co", debtor_account="6222020200000000030",
        creditor_name="Shenzhen Build Co", creditor_account="6217000010000000045")))
    sent = qingsuan("cnaps", "send", xml, "--as", "ICBC", "--store", store,
                    "--at", "2026-11-26T10:00")
    assert sent.returncode == 0, sent.stderr
    assert [(r.original_tx_id, r.status) for r in parse_pacs002(sent.stdout.encode())] == [
        ("T1", "ACSC")]
    stmt = qingsuan("cnaps", "statement", "--as", "CCB", "--store", store,
                    "--date", "2026-11-25")
    assert stmt.returncode == 0, stmt.stderr
    (statement,) = parse_camt053(stmt.stdout.encode())
    # funded with 2,000,000.00 at 08:00 that day, then 5,000,100.00 came in
    assert (statement.opening_balance_fen, statement.closing_balance_fen) == (0, 700_010_000)
    assert sorted(e.amount_fen for e in statement.entries) == [10_000, 200_000_000,
                                                               500_000_000]
    stranger = qingsuan("cnaps", "send", xml, "--as", "NOBODY", "--store", store)
    assert stranger.returncode == 2 and "no participant named 'NOBODY'" in stranger.stderr


def test_clearing_files_and_cards_reconcile(tmp_path: Path) -> None:
    """The switch's clearing files of a run, reconciled by the participant: untouched ->
    exit 0, a changed amount -> exit 1 naming it, a broken file -> exit 2 with its line."""
    story = Path(str(resources.files("qingsuan") / "scenarios" / "cards.yaml"))
    files = tmp_path / "clearing"
    assert qingsuan("run", story, "--clearing-files", files).returncode == 0
    ccb = files / "CCB_20261125.txt"
    text = ccb.read_text()
    assert "6222020200000000014" not in text and "622202****0014" in text
    same = qingsuan("cards", "reconcile", ccb, ccb)
    assert same.returncode == 0 and "2 matched" in same.stdout
    own = tmp_path / "own.txt"
    own.write_text(text.replace(",10000,", ",10001,").replace("T,2,0,13600", "T,2,0,13601"))
    differs = qingsuan("cards", "reconcile", ccb, own)
    assert differs.returncode == 1 and "1 mismatched" in differs.stdout
    broken = tmp_path / "broken.txt"
    broken.write_text(text.replace(",10000,", ",10001,"))
    bad = qingsuan("cards", "reconcile", ccb, broken)
    assert bad.returncode == 2 and "line 4" in bad.stderr and "Traceback" not in bad.stderr
