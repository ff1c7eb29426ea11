"""The vault keeps the token and masked PAN of the cards it tokenised (issue 11: a card
request asks for them again): the same answers as computing them afresh, nothing for a PAN
that fails the Luhn check, at most MAX_CARDS_KEPT cards, and no PAN in what it shows."""

from __future__ import annotations

import pytest

from qingsuan.cards import vault as vault_module
from qingsuan.cards.pin import SANDBOX_PVK, pin_verification_value
from qingsuan.cards.vault import CardVault

PAN = "6222020000000010017"  # passes the Luhn check
OTHER = "6222020000000010025"
BAD = "6222020000000010018"  # a wrong check digit


def test_kept_answers_are_the_fresh_ones() -> None:
    vault = CardVault.generate()
    fresh = CardVault(vault.master)
    first = vault.card_fields(PAN)
    assert vault.card_fields(PAN) == first == fresh.card_fields(PAN)
    assert vault.token(PAN) == first["card"] == CardVault(vault.master).token(PAN)
    assert vault.encrypt_pan(PAN) == fresh.encrypt_pan(PAN)
    # tokenised first (as a world's build does), then asked for its fields
    built = CardVault(vault.master)
    built.token(OTHER)
    assert built.card_fields(OTHER) == fresh.card_fields(OTHER)


def test_a_pan_failing_luhn_is_never_kept() -> None:
    vault = CardVault.generate()
    token = vault.token(BAD)  # a token all the same (the build tokenises every card)
    assert token == CardVault(vault.master).token(BAD)
    assert vault.card_fields(BAD) == {"card": "", "pan_masked": "622202*********0018"}
    assert vault.card_fields(BAD)["card"] == ""
    assert vault.token(BAD) == token


def test_at_most_max_cards_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_module, "MAX_CARDS_KEPT", 1)
    vault = CardVault.generate()
    fresh = CardVault(vault.master)
    vault.card_fields(PAN)
    assert vault.card_fields(OTHER) == fresh.card_fields(OTHER)  # computed, not kept
    assert vault.token(OTHER) == fresh.token(OTHER)
    assert len(vault._kept) == 1


def test_the_kept_pans_are_not_shown() -> None:
    vault = CardVault.generate()
    vault.card_fields(PAN)
    assert PAN not in repr(vault)
    assert vault == CardVault(vault.master, vault.origin)  # not part of its value


def test_kept_pin_values_are_the_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    vault = CardVault.generate()
    fresh = CardVault(vault.master)
    digest = pin_verification_value(PAN, "123456", SANDBOX_PVK)
    value = vault.key_pin_digest(digest)  # as the world's build keys a card's value
    assert vault.pvv(PAN, "123456") == value == fresh.pvv(PAN, "123456")
    assert vault.key_pin_digest(digest) == value
    assert vault.pvv(PAN, "123457") == fresh.pvv(PAN, "123457") != value
    assert vault.tokenise({"pin_hash": digest.hex()}) == fresh.tokenise(
        {"pin_hash": digest.hex()}) == {"pin_hash": value}
    monkeypatch.setattr(vault_module, "MAX_CARDS_KEPT", len(vault._pin_values))
    assert vault.pvv(OTHER, "123456") == fresh.pvv(OTHER, "123456")  # computed, not kept
    assert len(vault._pin_values) == 2
