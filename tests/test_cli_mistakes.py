"""Every subcommand, given the mistakes people make: a one-line reason, the documented exit
code (2 bad input, 1 a refused payment), never a traceback, and nothing written.

The catalogue runs in-process (typer's CliRunner) to keep the suite fast: an exception that
escapes a command is a traceback for the user, and fails the case here.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from qingsuan.cli import app

SCENARIOS = Path(str(resources.files("qingsuan") / "scenarios"))
INTRABANK = SCENARIOS / "intrabank.yaml"
HVPS_QUEUE = SCENARIOS / "hvps-queue.yaml"
CARDS = SCENARIOS / "cards.yaml"
CARD = "6222020000000010017"  # a card of the sandbox world
#: a 600-byte alias bomb: nine levels of nine aliases stand for 387 million strings
ALIAS_BOMB = "name: bomb\n" + "a0: &a0 [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
#: more than any message should ever echo back
HUGE = "9" * 5_000_000


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_refused(result: Result, code: int, *words: str) -> None:
    """Exit ``code``, no escaped exception (a traceback), a short message with ``words``."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), (
        f"traceback: {result.exception!r}")
    assert result.exit_code == code, (result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output
    assert len(result.stderr) < 5_000, f"{len(result.stderr)} characters on stderr"
    for word in words:
        assert word in " ".join(result.output.split()), (word, result.output[-2000:])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hvps-queue story kept in a SQLite store (cnaps send and statement use it)."""
    store = tmp_path_factory.mktemp("world") / "world.db"
    result = invoke("run", HVPS_QUEUE, "--store", store)
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def store(world: Path, tmp_path: Path) -> Path:
    """A copy of the stored world for one test to write to."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(world, copy)
    return copy


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# ---------------------------------------------------------------------- run, check


@dataclass(frozen=True)
class Case:
    """A command with bad input, the exit code it must end with and words the reason has;
    ``setup`` makes the files it needs in the test's folder and returns the arguments."""

    name: str
    setup: Callable[[Path], list[str | Path]]
    code: int
    words: tuple[str, ...] = ()


def _text(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


SCENARIO_MISTAKES = [
    Case("no such file", lambda d: [d / "nosuch.yaml"], 2, ("no such file",)),
    Case("a folder", lambda d: [d], 2, ("is a folder",)),
    Case("not UTF-8", lambda d: [_bytes(d, "bin.yaml", b"name: \xff\xfe\n")], 2,
         ("not UTF-8", ":1:")),
    Case("empty file", lambda d: [_text(d, "empty.yaml", "")], 2, ("mapping",)),
    Case("a list, not a mapping", lambda d: [_text(d, "list.yaml", "- 1\n- 2\n")], 2,
         ("mapping",)),
    Case("alias bomb", lambda d: [_text(d, "bomb.yaml", ALIAS_BOMB)], 2,
         ("alias bomb", "bomb.yaml:")),
    Case("deep nesting", lambda d: [_text(d, "deep.yaml", "a: " + "[" * 100_000)], 2,
         ("nested more than",)),
    Case("undefined alias", lambda d: [_text(d, "alias.yaml", "name: *nowhere\n")], 2,
         ("alias.yaml:1:", "no anchor")),
    Case("python tag", lambda d: [_text(d, "tag.yaml", "name: !!python/object:os.system x\n")],
         2, ("tag.yaml:1:", "not allowed")),
    Case("two documents", lambda d: [_text(d, "two.yaml", "name: a\n---\nname: b\n")], 2,
         ("one document",)),
    Case("a tab", lambda d: [_text(d, "tab.yaml", "name: x\n\tstart: 1\n")], 2,
         ("tab.yaml:2:", "tab")),
    Case("a huge value", lambda d: [_text(d, "huge.yaml", f"name: x{HUGE}\n")], 2,
         ("more characters",)),
    Case("a huge number", lambda d: [_text(d, "number.yaml", f"name: {HUGE}\n")], 2,
         ("number.yaml:1:", "too long")),
]


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", SCENARIO_MISTAKES, ids=lambda c: c.name)
def test_bad_scenario_files(command: str, case: Case, tmp_path: Path) -> None:
    args = case.setup(tmp_path)
    before = _files(tmp_path)
    started = time.monotonic()
    result = invoke(command, *args)
    assert time.monotonic() - started < 10, "a bad file must be refused quickly"
    assert_refused(result, case.code, *case.words)
    assert _files(tmp_path) == before  # nothing written


RUN_MISTAKES = [
    Case("store not a url", lambda d: ["--store", "foo.txt"], 2, ("not a command log",)),
    Case("store in no folder", lambda d: ["--store", d / "nodir" / "x.db"], 2, ("no folder",)),
    Case("store is a folder", lambda d: ["--store", (d / "f.db").mkdir() or d / "f.db"], 2,
         ("is a folder",)),
    Case("store not a log", lambda d: ["--store", _text(d, "t.db", "not a database")], 2,
         ("cannot open",)),
    Case("store not a log, --new", lambda d: ["--store", _text(d, "t.db", "hello"), "--new"],
         2, ("cannot open",)),
    Case("store an empty file", lambda d: ["--store", _text(d, "e.db", "")], 2,
         ("empty file", "--new")),
    Case("store huge", lambda d: ["--store", HUGE], 2, ("more characters",)),
    Case("clearing files under a file",
         lambda d: ["--clearing-files", _text(d, "file", "") / "out", "--store", d / "r.db"],
         2, ("--clearing-files", "is a file")),
    Case("clearing files is a file",
         lambda d: ["--clearing-files", _text(d, "out", ""), "--store", d / "r.db"], 2,
         ("--clearing-files", "not a folder")),
    Case("resume and new", lambda d: ["--store", d / "r.db", "--resume", "--new"], 2,
         ("give one",)),
    Case("new without a store", lambda d: ["--new"], 2, ("--store",)),
]


@pytest.mark.parametrize("case", RUN_MISTAKES, ids=lambda c: c.name)
def test_bad_run_options(case: Case, tmp_path: Path) -> None:
    args = case.setup(tmp_path)
    before = _files(tmp_path)
    result = invoke("run", CARDS, *args)
    assert_refused(result, case.code, *case.words)
    assert _files(tmp_path) == before  # checked before anything ran: nothing written


def test_run_on_a_stored_run_needs_resume_or_new(world: Path, tmp_path: Path) -> None:
    """The README's `run FILE --store run.db`, twice: the second says what to do. --resume
    continues the same scenario (and refuses another), --new starts again."""
    db = tmp_path / "run.db"
    shutil.copyfile(world, db)
    again = invoke("run", HVPS_QUEUE, "--store", db, "--json")
    assert_refused(again, 2, "already holds a run of 'hvps-queue'", "--resume", "--new")
    other = invoke("run", INTRABANK, "--store", db, "--resume")
    assert_refused(other, 2, "'intrabank-day'", "resume it with the file it was built from")
    resumed = invoke("run", HVPS_QUEUE, "--store", db, "--resume", "--json")
    assert resumed.exit_code == 0, resumed.output
    replaced = invoke("run", INTRABANK, "--store", db, "--new", "--json")
    assert replaced.exit_code == 0, replaced.output
    assert '"scenario": "intrabank-day"' in replaced.stdout
    verify = invoke("log", "verify", db)
    assert verify.exit_code == 0, verify.output


def test_new_refuses_a_store_another_process_writes_to(world: Path, tmp_path: Path) -> None:
    from qingsuan.store import open_log

    db = tmp_path / "busy.db"
    shutil.copyfile(world, db)
    writer = open_log(str(db))  # holds the store's writer lock, as `serve` would
    try:
        result = invoke("run", HVPS_QUEUE, "--store", db, "--new")
        assert_refused(result, 2, "--store")
        assert db.exists()
    finally:
        writer.close()
    empty = _text(tmp_path, "empty.db", "")
    made = invoke("run", INTRABANK, "--store", empty, "--new")
    assert made.exit_code == 0, made.output


def test_resume_refuses_another_world_under_the_same_name(world: Path, tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    shutil.copyfile(world, db)
    changed = _text(tmp_path, "changed.yaml", HVPS_QUEUE.read_text(encoding="utf-8").replace(
        'settlement_balance: "3000000.00"', 'settlement_balance: "3000001.00"'))
    result = invoke("run", changed, "--store", db, "--resume")
    assert_refused(result, 2, "another world under the same name", "participants")


def test_events_after_run_until_are_announced(tmp_path: Path) -> None:
    text = INTRABANK.read_text(encoding="utf-8").replace("run_until: 2026-11-25T18:00",
                                                         "run_until: 2026-11-25T09:30")
    late = _text(tmp_path, "late.yaml", text)
    for command in ("check", "run"):
        result = invoke(command, late)
        assert result.exit_code == 0, result.output
        assert "warning:" in result.stderr and "after run_until" in result.stderr
        assert "will not run" in result.stderr


def test_check_of_a_large_scenario_counts_every_event(tmp_path: Path) -> None:
    """100,000 events (about 10 MB): the C parser, no composer, no cycle collector. Not
    timed here (benchmarks are not tests; a bound failed on a loaded machine): about 3 s
    on 2 cores, where the composer took 74 s."""
    head = INTRABANK.read_text(encoding="utf-8")
    head = head[:head.index("events:")]
    lines = [head, "events:\n"]
    for n in range(100_000):
        at = dt.datetime(2026, 11, 25, 9) + dt.timedelta(milliseconds=300 * n)
        lines.append(f"  - {{at: {at:%Y-%m-%dT%H:%M:%S}, do: transfer, id: t{n}, from: alice, "
                     f"to: carol, amount: \"0.01\"}}\n")
    big = _text(tmp_path, "big.yaml", "".join(lines))
    result = invoke("check", big)
    assert result.exit_code == 0, result.output[-2000:]
    assert "100000 events" in result.stdout


# ---------------------------------------------------------------------- demo, params


@pytest.mark.parametrize(("args", "words"), [
    (["demo", "--story", "nosuch"], ("no built-in story", "intrabank")),
    (["demo", "--story", HUGE], ("more characters",)),
    (["demo", "--bogus"], ("No such option",)),
    (["params", "--bogus"], ("No such option",)),
    (["params", "extra"], ("unexpected extra argument",)),
    (["run"], ("Missing argument",)),
    (["nosuch"], ("No such command",)),
])
def test_bad_demo_params_and_usage(args: list[str], words: tuple[str, ...]) -> None:
    assert_refused(invoke(*args), 2, *words)


# ---------------------------------------------------------------------- cnaps


def _pacs008(folder: Path, settlement: dt.date, creditor_account: str = "6217000010000000045"
             ) -> Path:
    from qingsuan.clock import BEIJING
    from qingsuan.messages import CreditTransfer, build_pacs008

    return _bytes(folder, f"p8-{settlement}.xml", build_pacs008(CreditTransfer(
        msg_id=f"M{settlement:%Y%m%d}", created_at=dt.datetime(2026, 11, 26, 10,
                                                               tzinfo=BEIJING),
        end_to_end_id="E1", tx_id="T1", system="HVPS", kind="customer", amount_fen=100,
        settlement_date=settlement, debtor_agent_code="102100099996",
        creditor_agent_code="105100000017", debtor_name="Wuhan Steel Co",
        debtor_account="6222020200000000030", creditor_name="Shenzhen Build Co",
        creditor_account=creditor_account)))


CNAPS_MISTAKES = [
    Case("no such message", lambda d: [d / "nosuch.xml", "--as", "ICBC"], 2, ("nosuch.xml",)),
    Case("message is a folder", lambda d: [d, "--as", "ICBC"], 2, ()),
    Case("no such participant",
         lambda d: [_pacs008(d, dt.date(2026, 11, 26)), "--as", "NOBODY"], 2,
         ("no participant named 'NOBODY'", "ICBC")),
    Case("a huge participant",
         lambda d: [_pacs008(d, dt.date(2026, 11, 26)), "--as", HUGE], 2,
         ("more characters",)),
    Case("at is not a time",
         lambda d: [_pacs008(d, dt.date(2026, 11, 26)), "--as", "ICBC", "--at", "tomorrow"],
         2, ("--at", "not a date-time")),
    Case("at before the log's last time",
         lambda d: [_pacs008(d, dt.date(2026, 11, 26)), "--as", "ICBC", "--at",
                    "2026-11-25T09:00"], 2, ("before the last time", "never goes back")),
    Case("at beyond the calendar (the tick would be logged, then fail to apply)",
         lambda d: [_pacs008(d, dt.date(2026, 11, 26)), "--as", "ICBC", "--at",
                    "2100-01-05T10:00"], 2, ("business calendar", "not 2100")),
]


@pytest.mark.parametrize("case", CNAPS_MISTAKES, ids=lambda c: c.name)
def test_bad_cnaps_send(case: Case, store: Path, tmp_path: Path) -> None:
    args = case.setup(tmp_path)
    size = store.stat().st_size
    result = invoke("cnaps", "send", *args, "--store", store)
    assert_refused(result, case.code, *case.words)
    assert store.stat().st_size == size and not Path(f"{store}-wal").exists()


@pytest.mark.parametrize("bad_store", ["foo.txt", "nosuch.db", "memory:"])
def test_cnaps_commands_need_an_existing_store(bad_store: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = _pacs008(tmp_path, dt.date(2026, 11, 26))
    before = _files(tmp_path)
    sent = invoke("cnaps", "send", message, "--as", "ICBC", "--store", bad_store)
    assert_refused(sent, 2, "--store")
    statement = invoke("cnaps", "statement", "--as", "CCB", "--store", bad_store)
    assert_refused(statement, 2, "--store")
    assert _files(tmp_path) == before  # no empty log created


def test_a_store_held_by_a_writer_refuses_send_but_not_statement(store: Path,
                                                                  tmp_path: Path) -> None:
    """One writer per store: a send beside it is refused naming the holder (exit 2); a
    statement reads beside it."""
    from qingsuan.store import open_log

    writer = open_log(str(store))
    try:
        sent = invoke("cnaps", "send", _pacs008(tmp_path, dt.date(2026, 11, 26)), "--as",
                      "ICBC", "--store", store, "--at", "2026-11-26T10:00")
        assert_refused(sent, 2, "open for writing by pid")
        read = invoke("cnaps", "statement", "--as", "CCB", "--store", store, "--date",
                      "2026-11-25")
        assert read.exit_code == 0, read.output
        assert "camt.053" in read.stdout
    finally:
        writer.close()


@pytest.mark.parametrize("year", [1990, 2099])
def test_a_settlement_date_far_from_today_is_rejected_exit_1(year: int, store: Path,
                                                             tmp_path: Path) -> None:
    from qingsuan.messages import parse_pacs002

    result = invoke("cnaps", "send", _pacs008(tmp_path, dt.date(year, 11, 26)), "--as", "ICBC",
                    "--store", store, "--at", "2026-11-26T10:00")
    assert_refused(result, 1)
    (report,) = parse_pacs002(result.stdout.encode())
    assert (report.status, report.reason_code) == ("RJCT", "DT01")
    assert str(year) in (report.additional_info or "")


def test_a_rejected_or_unreadable_message_exits_1(store: Path, tmp_path: Path) -> None:
    from qingsuan.messages import parse_pacs002

    garbage = invoke("cnaps", "send", _text(tmp_path, "x.xml", "<not a message"), "--as",
                     "ICBC", "--store", store)
    assert_refused(garbage, 1)
    assert {r.status for r in parse_pacs002(garbage.stdout.encode())} == {"RJCT"}
    accepted = invoke("cnaps", "send", _pacs008(tmp_path, dt.date(2026, 11, 26)), "--as",
                      "ICBC", "--store", store, "--at", "2026-11-26T10:00")
    assert accepted.exit_code == 0, accepted.output
    assert [r.status for r in parse_pacs002(accepted.stdout.encode())] == ["ACSC"]


@pytest.mark.parametrize(("args", "words"), [
    (["--as", "CCB", "--date", "yesterday"], ("--date", "not a date")),
    (["--as", "CCB", "--date", "2020-01-01"], ("no statement",)),
    (["--as", "NOBODY"], ("no participant named 'NOBODY'",)),
])
def test_bad_cnaps_statement(args: list[str], words: tuple[str, ...], store: Path) -> None:
    size = store.stat().st_size
    assert_refused(invoke("cnaps", "statement", "--store", store, *args), 2, *words)
    assert store.stat().st_size == size


# ---------------------------------------------------------------------- cards


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("args", "words"), [
    (["purchase", "--card", CARD, "--amount", "1.00", "--stan", "-1"], ("--stan", "1 to 999999")),
    (["purchase", "--card", CARD, "--amount", "1.00", "--stan", "0"], ("--stan",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--stan", "1000000"], ("--stan",)),
    (["purchase", "--amount", "1.00"], ("needs --card",)),
    (["balance"], ("needs --card",)),
    (["void", "--amount", "1.00"], ("needs --original",)),
    (["void", "--amount", "1.00", "--original", "abc"], ("--original", "MMDDhhmmss")),
    (["void", "--amount", "1.00", "--original", "a/b/c/d"], ("--original",)),
    (["void", "--amount", "1.00", "--original", "000001/1399999999"],
     ("not a time MMDDhhmmss",)),
    (["void", "--amount", "1.00", "--original", "0999/000001/1125103000"], ("--original",)),
    (["void", "--amount", "1.00", "--original", "000000/1125103000"], ("the STAN",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--original", "000001/1125103000"],
     ("names no original",)),
    (["teleport", "--card", CARD], ("unknown request kind", "purchase")),
    (["purchase", "--card", CARD, "--amount", HUGE], ("more characters",)),
    (["purchase", "--card", CARD, "--amount", "-1.00"], ("--amount",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--terminal", HUGE],
     ("no terminal", "more characters")),
    (["purchase", "--card", CARD, "--amount", "1.00", "--port", "0"], ("--port",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--port", "70000"], ("--port",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--frame", "smoke"], ("--frame",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--mac-key", "xyz"], ("--mac-key",)),
    (["purchase", "--card", CARD, "--amount", "1.00", "--scenario", "nosuch.yaml"],
     ("no such file",)),
])
def test_bad_cards_send(args: list[str], words: tuple[str, ...]) -> None:
    assert_refused(invoke("cards", "send", *args), 2, *words)


def test_cards_send_to_no_server_says_so() -> None:
    port = _closed_port()
    result = invoke("cards", "send", "purchase", "--card", CARD, "--amount", "1.00", "--port",
                    str(port))
    assert_refused(result, 2, "no answer from", str(port))


def test_two_sends_in_one_second_are_two_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --stan each send takes its own STAN (the clock's milliseconds), so the
    switch does not answer the second as a duplicate (94) of the first."""
    from qingsuan.cards.iso8583 import decode_message
    from qingsuan.cli_cards import MAX_STAN, default_stan
    from qingsuan.server import card_client

    sent: list[str] = []

    def fake_send(host: str, port: int, raw: bytes, **_: object) -> object:
        request = decode_message(raw)
        sent.append(request.fields["11"])  # type: ignore[union-attr]
        return decode_message(raw)

    monkeypatch.setattr(card_client, "send_one", fake_send)
    for _ in range(2):
        invoke("cards", "send", "purchase", "--card", CARD, "--amount", "1.00")
        time.sleep(0.002)
    assert len(sent) == 2 and sent[0] != sent[1], sent
    assert all(1 <= int(s) <= MAX_STAN for s in sent)
    now = time.time_ns()
    assert default_stan(now) != default_stan(now + 1_000_000)
    assert {default_stan(n * 1_000_000) for n in (0, MAX_STAN - 1)} == {1, MAX_STAN}


@pytest.mark.parametrize(("args", "words"), [
    (["--duration", "-1"], ("duration",)),
    (["--mix", "bogus"], ("mix",)),
    (["--in-flight", "0"], ("in-flight",)),
    (["--scenario", "nosuch.yaml"], ("no such file",)),
])
def test_bad_cards_load(args: list[str], words: tuple[str, ...]) -> None:
    assert_refused(invoke("cards", "load", *args), 2, *words)


def test_cards_load_with_no_server_says_so() -> None:
    port = _closed_port()
    result = invoke("cards", "load", "--duration", "0.5", "--port", str(port))
    assert_refused(result, 2, str(port))


@pytest.mark.parametrize("kind", ["missing", "folder", "binary"])
def test_bad_cards_reconcile(kind: str, tmp_path: Path) -> None:
    path = {"missing": tmp_path / "nosuch.txt", "folder": tmp_path,
            "binary": _bytes(tmp_path, "b.txt", b"\xff\xfe\x00")}[kind]
    assert_refused(invoke("cards", "reconcile", path, path), 2, str(path.name or path))


@pytest.mark.parametrize(("args", "words"), [
    (["--port", "70000"], ("--port must be 0 to 65535",)),
    (["--port", "-1"], ("--port must be 0 to 65535",)),
    (["--port", "eighty"], ("--port", "valid integer")),
    (["--frame", "smoke"], ("--frame",)),
])
def test_bad_serve_options(args: list[str], words: tuple[str, ...], tmp_path: Path) -> None:
    result = invoke("serve", "--store", tmp_path / "s.db", *args)
    assert_refused(result, 2, *words)
    assert not (tmp_path / "s.db").exists()


def test_serve_with_another_world_file_than_its_store_says_so(tmp_path: Path) -> None:
    """`serve OTHER.yaml` on a store built from another world refuses (it used to serve the
    stored world without a word); without a file it serves the stored world."""
    store = tmp_path / "w.db"
    assert invoke("run", CARDS, "--store", store).exit_code == 0
    sandbox = SCENARIOS / "card-sandbox.yaml"
    assert_refused(invoke("serve", sandbox, "--store", store, "--port", "0"), 2,
                   "holds the world 'cards'", "not the one")


@pytest.mark.postgres
def test_a_new_postgresql_schema_is_a_new_store_for_serve(pg_dsn: str) -> None:
    """``serve SCENARIO --store postgresql://...?schema=NEW`` builds the world there: a
    schema with no tables yet is an empty store, not "no command log there" (exit 2)."""
    import uuid

    import psycopg

    from qingsuan.cli_common import store_url, stored_world_spec

    schema = f"new_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(pg_dsn.replace("+psycopg", "", 1), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        assert stored_world_spec(store_url(f"{pg_dsn}?schema={schema}")) == (None, 0)
    finally:
        with psycopg.connect(pg_dsn.replace("+psycopg", "", 1), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
