"""A participant the operator adds while the sandbox runs: the request checked and turned
into the ``world.join`` command's body (world.py), logged, its key issued and shown once.

The checks that need the world (a name or code taken, the check digit, the earmarks
against the balance) are world.py's :func:`~qingsuan.world.join_problem`, the same
before the command is logged and when it is applied (a replay never half-applies it)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from qingsuan.money import format_fen
from qingsuan.server.http import inputs
from qingsuan.server.http.auth import KeyRing, hash_key
from qingsuan.server.http.errors import ApiError
from qingsuan.server.http.views import positions
from qingsuan.world import MAX_JOIN_CUSTOMERS, join_problem

if TYPE_CHECKING:
    from qingsuan.world import World

#: the caps a participant may be given, as a scenario file names them (docs/SCENARIOS.md)
CAP_FIELDS: Final = ("beps_cap", "ibps_cap", "beps_earmark", "ibps_earmark")
_ZERO: Final = re.compile(r"^0+(\.0{1,2})?$")


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(description="the account number, 6 to 32 digits",
                         examples=["6200000000000001"])
    name: str = Field(description="the holder's name", examples=["New Holder 1"])
    balance: str = Field("0.00", description="the opening deposit in yuan",
                         examples=["100000.00"])


class ParticipantIn(BaseModel):
    """A participant to add: what a scenario file's ``participants:`` entry says."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="its CNAPS name: a letter, then letters, digits, _ or -, "
                                  "at most 32", examples=["NEWB"])
    code: str = Field(description="its 12-character code: a bank's 行号 with its check "
                                  "digit (ISO/IEC 7064 MOD 11,10), a payment "
                                  "institution's a capital letter then 11 capitals or "
                                  "digits", examples=["313100000013"])
    kind: Literal["direct_bank", "indirect_bank", "payment_institution"] = Field(
        "direct_bank", description="direct_bank (its own settlement account) or "
                                   "payment_institution (IBPS only, cnaps.payment_"
                                   "institution_systems); indirect_bank is refused: the "
                                   "banks' tier does not model one yet")
    settles_through: str | None = Field(None, description="an indirect bank's direct "
                                                          "participant")
    settlement_balance: str = Field(description="the opening balance of its settlement "
                                                "account (清算账户) in yuan, issued by the "
                                                "PBOC as at a world's building",
                                    examples=["50000000.00"])
    collateral: str = Field("0.00", description="collateral pledged for HVPS pledge "
                                                "financing, in yuan")
    beps_cap: str | None = Field(None, description="BEPS net debit cap (collateral-backed)")
    ibps_cap: str | None = Field(None, description="IBPS net debit cap (collateral-backed)")
    beps_earmark: str | None = Field(None, description="BEPS cap backed by earmarked funds "
                                                       "(圈存), instead of beps_cap")
    ibps_earmark: str | None = Field(None, description="IBPS cap backed by earmarked funds")
    customers: list[CustomerIn] = Field(
        default_factory=list, max_length=MAX_JOIN_CUSTOMERS,
        description=f"its customers' accounts (at most {MAX_JOIN_CUSTOMERS}), so that it can "
                    "send and receive customer transfers at once")


def balance_fen(value: str, field: str) -> int:
    """A balance in yuan: as an amount, but zero is a balance."""
    if isinstance(value, str) and _ZERO.match(value.strip()):
        return 0
    return inputs.amount_fen(value, field)


def join_doc(world: World, change: ParticipantIn) -> dict[str, Any]:
    """The ``world.join`` body of ``change``; 422 for what needs no world to see."""
    if change.kind == "indirect_bank":
        through = change.settles_through
        if through is None:
            raise ApiError(422, "missing_field", "an indirect bank names the direct "
                           "participant it settles through", "settles_through")
        directory = world.cnaps.directory
        if through not in directory or directory.settling(through) != through:
            raise ApiError(422, "unknown_participant", f"no direct participant {through!r} "
                           "to settle through", "settles_through")
        raise ApiError(422, "unsupported_kind", "an indirect bank's customers would settle "
                       f"in {through}'s account: the banks' tier does not model that yet; "
                       "add it as a direct_bank", "kind")
    if change.settles_through is not None:
        raise ApiError(422, "invalid_field", "only an indirect bank settles through another",
                       "settles_through")
    caps = sorted((name.replace("_cap", ""), balance_fen(value, name))
                  for name in CAP_FIELDS if (value := getattr(change, name)) is not None)
    return {
        "name": change.name, "code": change.code, "kind": change.kind,
        "settlement_balance_fen": balance_fen(change.settlement_balance, "settlement_balance"),
        "collateral_fen": balance_fen(change.collateral, "collateral"),
        "caps": [[key, fen] for key, fen in caps],
        "customers": [[c.account, c.name, balance_fen(c.balance, f"customers.{k}.balance")]
                      for k, c in enumerate(change.customers)],
    }


def admit(world: World, ring: KeyRing, doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """On the writer: check ``doc`` against the world, issue the key (its hash kept
    first), log ``world.join``; the answer (with the key, shown only here) and the key's
    hash (for the HTTP edge)."""
    problem = join_problem(world.builder, doc)
    if problem is not None:
        assert problem.reason is not None
        raise ApiError(409 if problem.reason == "duplicate" else 422, problem.reason,
                       problem.message, _api_field(problem.field, doc))
    name = doc["name"]
    key = ring.admit(name)
    outcome = world.join(doc)
    assert outcome.ok, outcome  # (checked just above, under the writer's lock)
    p = world.cnaps.directory.get(name)
    answer = {
        "participant": name, "code": p.code, "kind": p.kind.value, "status": p.status.value,
        "api_key": key,
        "key_note": "shown once: only its SHA-256 is kept" if not ring.sandbox else
                    "the documented sandbox key (--api-keys sandbox)",
        "customers": [{"account": account, "name": holder, "balance": format_fen(fen)}
                      for account, holder, fen in doc["customers"]],
        "positions": positions(world, name),
    }
    return answer, hash_key(key)


def _api_field(field: str | None, doc: dict[str, Any]) -> str | None:
    """world.py's field names as the API's body names them."""
    if field is None:
        return None
    if field == "caps":  # (from the API, only earmarks beyond the balance are refused)
        return next((k for k, _ in doc["caps"] if k.endswith("_earmark")), "beps_earmark")
    if field in ("beps", "ibps"):
        return f"{field}_cap"
    return re.sub(r"\[(\d+)\]", r".\1", field)
