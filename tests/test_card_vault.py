"""Card data at rest (issue 13.3, docs/SECURITY.md): no clear PAN in anything the system
writes, PIN values keyed with the world's secret, keys that never come from the log."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qingsuan.cards.pin import SANDBOX_PVK, pin_verification_value
from qingsuan.cards.vault import (
    KEY_ENV,
    TOKEN_HEX,
    TOKEN_PREFIX,
    CardKeyError,
    CardVault,
    key_file_of,
    resolve,
)
from qingsuan.clock import VirtualClock
from qingsuan.sim.runner import run_scenario
from qingsuan.sim.scenario import Scenario, load_scenario
from qingsuan.world import World

ROOT = Path(__file__).resolve().parents[1]
CARD_SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml")
                        if load_scenario(p).cards)
SANDBOX = ROOT / "scenarios" / "card-sandbox.yaml"
PAN = "6222020000000010017"  # the sandbox's ICBC debit card, PIN 123456


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _pans(sc: Scenario) -> set[str]:
    """Every card number a scenario uses: its cards and those its events name."""
    return {c.pan for c in sc.cards} | {str(e.fields["card"]) for e in sc.events
                                        if "card" in e.fields}


def _own_accounts(path: Path, tmp_path: Path) -> Path:
    """The scenario with account numbers of their own: the built-in ones use each debit
    card's number as its account's number, which the world keeps in clear as an account
    number (docs/SECURITY.md)."""
    text = path.read_text(encoding="utf-8")
    for pan in _pans(load_scenario(path)):
        own = int(hashlib.sha256(pan.encode()).hexdigest(), 16) % 10**14
        text = text.replace(f'account: "{pan}"', f'account: "10{own:014d}"')
    out = tmp_path / path.name
    out.write_text(text, encoding="utf-8")
    return out


def _luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def _written(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _assert_no_pan(blobs: dict[str, bytes], pans: set[str]) -> None:
    assert pans
    for name, data in blobs.items():
        for pan in pans:
            assert pan.encode() not in data, f"{pan[:6]}...{pan[-4:]} in clear in {name}"


# ---------------------------------------------------------------------- the vault


def test_tokens_are_keyed_truncated_and_stable() -> None:
    vault, other = CardVault.generate(), CardVault.generate()
    token = vault.token(PAN)
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + TOKEN_HEX
    assert vault.token(PAN) == token and other.token(PAN) != token
    assert vault.token("6222020000000010025") != token
    assert vault.card_fields(PAN) == {"card": token, "pan_masked": "622202*********0017"}
    # a PAN with a wrong check digit gets no token: the switch answers 14
    assert vault.card_fields("6222020000000010018")["card"] == ""


def test_pans_are_encrypted_bound_to_their_token() -> None:
    vault = CardVault.generate()
    blob = vault.encrypt_pan(PAN)
    assert PAN not in blob and PAN.encode().hex() not in blob
    assert vault.encrypt_pan(PAN) == blob  # deterministic: replay rebuilds the same state
    assert vault.decrypt_pan(blob, vault.token(PAN)) == PAN
    with pytest.raises(CardKeyError):
        CardVault.generate().decrypt_pan(blob, vault.token(PAN))  # another key
    with pytest.raises(CardKeyError):
        vault.decrypt_pan(blob, vault.token("6222020000000010025"))  # another card's


def test_pin_values_need_the_worlds_secret() -> None:
    vault = CardVault.generate()
    public = pin_verification_value(PAN, "123456", SANDBOX_PVK)
    value = vault.pvv(PAN, "123456")
    assert value == vault.key_pin_digest(public)
    assert value != public.hex() and value != vault.pvv(PAN, "123457")
    assert CardVault.generate().pvv(PAN, "123456") != value
    # the attack: a million HMACs under the public key no longer find the PIN
    assert all(pin_verification_value(PAN, f"{pin:06d}", SANDBOX_PVK).hex() != value
               for pin in range(123_400, 123_500))


def test_keys_come_from_a_file_the_environment_or_beside_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "w.db"
    assert key_file_of(str(store)) == key_file_of(f"sqlite:///{store}") == \
        tmp_path / "w.db.keys"
    assert key_file_of("memory:") is None and key_file_of("postgresql://h/db") is None
    with pytest.raises(CardKeyError, match="does not exist"):
        resolve(str(store))
    made = resolve(str(store), create=True)
    keys = tmp_path / "w.db.keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert resolve(f"sqlite:///{store}").check_value() == made.check_value()
    monkeypatch.setenv(KEY_ENV, "ab" * 32)
    assert resolve(str(store)).master == bytes.fromhex("ab" * 32)  # the environment first
    monkeypatch.setenv(KEY_ENV, "ab" * 31)
    with pytest.raises(CardKeyError, match="64 hex digits") as short:
        resolve(str(store))
    assert "ab" not in str(short.value)  # the message never holds key material
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(CardKeyError, match="PostgreSQL"):
        resolve("postgresql://h/db")
    assert resolve("memory:", sandbox_seed="x") == CardVault.sandbox("x")
    explicit = tmp_path / "mine.key"
    assert resolve(str(store), key_file=explicit, create=True).master != made.master
    assert explicit.read_text().strip() == resolve(str(store), key_file=explicit).master.hex()


def test_a_store_refuses_a_key_that_is_not_its_own(tmp_path: Path) -> None:
    sc = load_scenario(SANDBOX)
    store = str(tmp_path / "w.db")
    world = World.open(store, VirtualClock(sc.start_us))
    world.build(sc)
    check = world.switch.key_check
    assert check == world.card_vault().check_value()
    world.close()
    # the log and the snapshot hold the check value, never the key
    assert resolve(store).master.hex().encode() not in (tmp_path / "w.db").read_bytes()
    with pytest.raises(CardKeyError, match="not the key this world was built with"):
        World.open(store, VirtualClock(sc.start_us), vault=CardVault.generate())
    again = World.open(store, VirtualClock(sc.start_us))
    assert again.card_vault().check_value() == check  # its key file
    card = again.switch.cards[again.card_vault().token(PAN)]
    assert card.pan_masked == "622202*********0017"
    assert again.card_vault().decrypt_pan(card.pan_enc, card.token) == PAN
    again.close()


def test_the_same_scenario_gives_the_same_state_hash_without_a_store() -> None:
    sc = load_scenario(ROOT / "scenarios" / "cards.yaml")
    first, second = run_scenario(sc), run_scenario(sc, store="memory:")
    assert first == second  # the sandbox default: same file, same state


# ---------------------------------------------------------------------- every byte written


@pytest.mark.parametrize("path", CARD_SCENARIOS, ids=lambda p: p.stem)
def test_a_run_writes_no_pan(path: Path, tmp_path: Path) -> None:
    path = _own_accounts(path, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    store = out / "run.db"
    run = subprocess.run(
        [sys.executable, "-m", "qingsuan", "run", str(path), "--store", str(store),
         "--clearing-files", str(out / "clearing"), "--json"],
        capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    outcome = json.loads(run.stdout)
    written = _written(out)
    assert any(name.startswith("clearing/") for name in written) or not outcome["payments"]
    # the WAL is folded in at close: read what the store holds as SQLite sees it too
    with sqlite3.connect(store) as db:
        rows = [bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()
                for table, in db.execute("select name from sqlite_master where type='table'")
                for row in db.execute(f'select * from "{table}"') for v in row]
    _assert_no_pan({**written, "stdout": run.stdout, "stderr": run.stderr,
                    "store rows": b"\n".join(rows)}, _pans(load_scenario(path)))


def _serve(scenario: Path, store: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qingsuan", "serve", str(scenario), "--store", str(store),
         "--port", "0",
         "--snapshot-every", "1", "--core", "inline"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert b"listening on" in line, line
    return proc, int(line.split(b"listening on ", 1)[1].split()[0].rsplit(b":", 1)[1])


def test_serve_writes_no_pan(tmp_path: Path) -> None:
    scenario = _own_accounts(SANDBOX, tmp_path)
    sc = load_scenario(scenario)
    out = tmp_path / "out"
    out.mkdir()
    store = out / "sandbox.db"
    unknown = _luhn("622202000000009999")
    proc, port = _serve(scenario, store)
    sends: list[subprocess.CompletedProcess[bytes]] = []
    try:
        credit = next(c.pan for c in sc.cards if c.kind == "credit")
        other = next(c.pan for c in sc.cards if c.pan[:6] != PAN[:6])
        stan = int(time.time()) % 900_000
        for n, args in enumerate([
                ("purchase", "--card", PAN, "--amount", "36.00"),
                ("withdrawal", "--card", PAN, "--amount", "100.00", "--pin", "123456",
                 "--terminal", "ATM00CCB"),
                ("withdrawal", "--card", other, "--amount", "1.00", "--pin", "000000",
                 "--terminal", "ATM00CCB"),  # a wrong PIN
                ("balance", "--card", credit, "--pin", "123456", "--terminal", "ATM00CCB"),
                ("preauth", "--card", credit, "--amount", "10.00"),
                ("purchase", "--card", unknown, "--amount", "1.00")]):  # unknown card: 14
            sends.append(subprocess.run(
                [sys.executable, "-m", "qingsuan", "cards", "send", *args, "--port",
                 str(port), "--stan", str(stan + n), "--scenario", str(scenario)],
                capture_output=True, timeout=60))
        assert [s.returncode for s in sends] == [0, 0, 1, 0, 0, 1], \
            [s.stdout.decode() + s.stderr.decode() for s in sends]
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.decode()
    written = _written(out)
    assert "sandbox.db.keys" in written and "sandbox.db" in written
    assert stat.S_IMODE((out / "sandbox.db.keys").stat().st_mode) == 0o600
    blobs = {**written, "serve stdout": stdout, "serve stderr": stderr}
    for n, s in enumerate(sends):
        blobs[f"send {n} stdout"], blobs[f"send {n} stderr"] = s.stdout, s.stderr
    _assert_no_pan(blobs, _pans(sc) | {unknown})
    # what it did write names the cards by token and mask
    log = written["sandbox.db"]
    assert b"tok_" in log and b"622202*********0017" in log
