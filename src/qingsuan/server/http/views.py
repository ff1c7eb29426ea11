"""What the API shows of the world, read under the engine's lock: a participant's
payments, positions and the directory. Amounts are strings of yuan with two decimals,
times ISO 8601 Beijing time. A participant's views hold only what is its own."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Final

from qingsuan.clock import format_time
from qingsuan.cnaps.gateway import record_status  # the pacs.002 status of a bank record
from qingsuan.cnaps.hvps import Priority
from qingsuan.cnaps.participants import ParticipantKind
from qingsuan.money import format_fen
from qingsuan.world import PBOC

if TYPE_CHECKING:
    from qingsuan.banks.records import PaymentRecord
    from qingsuan.world import World

#: queued payments listed in a position at most (the counts and sums cover them all)
MAX_LISTED: Final = 100


def ref_of(participant: str, msg_id: str, tx_id: str) -> str:
    """The engine's id of a participant's payment: what the ISO gateway names a pacs.008's
    transaction (``SENDER/MsgId/TxId``); a JSON transfer's message id is ``API``."""
    return f"{participant}/{msg_id}/{tx_id}"


def participants(world: World) -> list[dict[str, Any]]:
    """The CNAPS directory: who can be paid (public, as a bank directory is)."""
    return [{"name": p.name, "code": p.code, "kind": p.kind.value, "status": p.status.value}
            for p in world.cnaps.directory if p.kind is not ParticipantKind.CARD_SWITCH]


def payment(world: World, participant: str, msg_id: str, tx_id: str) -> dict[str, Any] | None:
    """One of ``participant``'s own payments (sent as XML or JSON), or None: another's is
    the same as none."""
    ref = ref_of(participant, msg_id, tx_id)
    record = world.banks.payments.get(ref)
    if record is not None:
        return record_view(world, ref, msg_id, tx_id, record)
    status = world.cnaps.hvps.payments.get(ref)
    if status is not None:
        return {"msg_id": msg_id, "tx_id": tx_id, "system": "HVPS",
                "status": status.status.value,
                "reason": None if status.reason is None else
                {"code": status.reason[0], "message": status.reason[1]}}
    for net in world.cnaps.net.values():
        item = net.items.get(ref)
        if item is not None:
            return {"msg_id": msg_id, "tx_id": tx_id, "system": net.name,
                    "status": item.status, "amount": format_fen(item.amount_fen),
                    "reason": None if item.reason is None else
                    {"code": item.reason[0], "message": item.reason[1]}}
    return None


#: format_time of the moments payments' histories hold, remembered (a logged group's
#: payments share theirs: 6 µs each, three a transfer's view, a sixth of an HTTP
#: transfer's time in the engine's process)
_moment: Final = functools.lru_cache(maxsize=4096)(format_time)


def record_view(world: World, ref: str, msg_id: str, tx_id: str, record: PaymentRecord
                ) -> dict[str, Any]:
    iso, code, info = record_status(record.system, record.status, record.reason)
    doc: dict[str, Any] = {
        "msg_id": msg_id, "tx_id": tx_id, "payment_id": f"{msg_id}/{tx_id}",
        "kind": record.kind, "system": record.system, "status": record.status,
        "iso_status": iso, "reason": record.reason,
        "route": world.banks.routes.get(ref),
        "history": [{"at": _moment(at), "status": s} for at, s in record.history],
    }
    if iso != "RJCT" and (code or info):
        doc["note"] = info
    if record.held_until is not None:
        doc["held_until"] = record.held_until
    return doc


def positions(world: World, participant: str) -> dict[str, Any]:
    """Settlement account, pledge financing, HVPS queue and BEPS/IBPS net positions
    against their caps, of the account ``participant`` settles in."""
    cnaps, engine = world.cnaps, world.engine
    me = cnaps.directory.get(participant)
    name = cnaps.directory.settling(participant)
    hvps = cnaps.hvps
    balance = engine.ledger.balance(engine.registry.id(PBOC, f"settlement:{name}"))
    credit = hvps.credit[name]
    queued = hvps.queued(name)
    levels: dict[str, dict[str, Any]] = {}
    for pay in queued:
        level = levels.setdefault(Priority(pay.priority).name.lower(), {"count": 0, "value": 0})
        level["count"] += 1
        level["value"] += pay.amount_fen
    prefix = f"{participant}/"
    net: dict[str, Any] = {}
    for system in cnaps.net.values():
        if name not in system.positions:
            continue
        position, cap = system.positions[name], system.caps[name]
        net[system.name] = {
            "position": format_fen(position), "cap": format_fen(cap),
            "headroom": format_fen(cap + position),
            "queued": len(system.queues[name]),
            "cap_backing": "earmark" if name in system.earmark_backed else "collateral",
        }
    return {
        "participant": participant, "code": me.code, "settles_in": name,
        "at": format_time(world.engine.clock.now_us()),
        "settlement": {"balance": format_fen(balance.posted_fen),
                       "available": format_fen(balance.available_fen),
                       "available_with_credit": format_fen(hvps.available_fen(name))},
        "credit": {"pledged": format_fen(credit.pledged_value_fen),
                   "lendable": format_fen(credit.lendable_fen),
                   "drawn": format_fen(credit.drawn_fen)},
        "hvps_queue": {
            "count": len(queued), "value": format_fen(sum(p.amount_fen for p in queued)),
            "by_priority": {k: {"count": v["count"], "value": format_fen(v["value"])}
                            for k, v in levels.items()},
            "payments": [{"payment_id": p.ref.removeprefix(prefix),
                          "amount": format_fen(p.amount_fen),
                          "priority": Priority(p.priority).name.lower(),
                          "queued_at": format_time(p.queued_us) if p.queued_us else None}
                         for p in queued[:MAX_LISTED]],
        },
        "net": net,
    }
