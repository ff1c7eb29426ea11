"""IBPS inquiries (查询): does an account exist at another bank and does the name match
(account inquiry); what does it hold, when its holder has consented (balance inquiry, and
the consent its own bank registers for it). Inquiries are queries, as in CNAPS's model:
nothing logged; a consent is a logged command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from qingsuan.money import format_fen
from qingsuan.server.http import inputs
from qingsuan.server.http.errors import ApiError

if TYPE_CHECKING:
    from qingsuan.cnaps.participants import Participant
    from qingsuan.world import World


def bank_of(world: World, bank: str, field: str) -> Participant:
    """A bank of the world by its CNAPS name or 12-digit code (422 otherwise)."""
    directory = world.cnaps.directory
    found = directory.by_code(bank) if bank.isdigit() else \
        directory.get(bank) if bank in directory else None
    if found is None or found.name not in world.banks.members:
        raise ApiError(422, "unknown_participant", f"{inputs.clip(bank)} is not a bank in "
                       "this world (GET /v1/participants lists them)", field)
    return found


def account(world: World, bank: str, number: str, name: str | None) -> dict[str, Any]:
    target = bank_of(world, bank, "bank")
    inputs.account(number, "account")
    answer = world.cnaps.account_inquiry(target.name, number, name)
    return {"bank": target.name, "account": number, **answer}


def balance(world: World, asker: str, bank: str, number: str) -> dict[str, Any]:
    target = bank_of(world, bank, "bank")
    inputs.account(number, "account")
    answer = dict(world.cnaps.balance_inquiry(asker, target.name, number))
    for key in ("balance_fen", "available_fen"):
        if key in answer:
            answer[key.removesuffix("_fen")] = format_fen(int(answer.pop(key)))
    return {"bank": target.name, "account": number, **answer}


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(description="your customer's account", examples=["9222020000000010017"])
    asker: str = Field(description="the participant it lets see the balance", examples=["CCB"])


def consent(world: World, participant: str, given: ConsentIn) -> dict[str, Any]:
    inputs.account(given.account, "account")
    if (participant, given.account) not in world.banks.directory.by_number:
        raise ApiError(422, "unknown_account", f"{participant} holds no account "
                       f"{given.account}", "account")
    asker = bank_of(world, given.asker, "asker")
    if asker.name == participant:
        raise ApiError(422, "invalid_field", "a bank sees its own customers' balances: "
                       "consent is for another participant", "asker")
    outcome = world.cnaps.balance_consent(participant, given.account, asker.name)
    if not outcome.ok:
        code, text = outcome.reason or ("NARR", "refused")
        raise ApiError(409, code, text, "account")
    return {"account": given.account, "asker": asker.name, "consent": True}
