"""CNAPS as an engine system: the participants directory and HVPS behind logged commands.

Every command is JSON (sorted keys) after the engine's timestamp. The convenience methods
(``submit_hvps``, ``cancel`` ...) log the command through the engine and return what
applying it answered; replaying the log applies the same commands to a fresh system.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from qingsuan.calendar import HvpsPhase
from qingsuan.clock import US_PER_MINUTE
from qingsuan.cnaps import gridlock
from qingsuan.cnaps.hvps import Hvps, HvpsPayment, Outcome, Priority, dumps
from qingsuan.cnaps.netsys import (
    ASKING,
    SYSTEMS,
    AccountsView,
    NetItem,
    NetOutcome,
    NetSystem,
    SimAccount,
)
from qingsuan.cnaps.netting import ACCEPTED as NET_ACCEPTED
from qingsuan.cnaps.netting import REJECTED as NET_REJECTED
from qingsuan.cnaps.netting import NettingResult, net_items
from qingsuan.cnaps.participants import (
    Directory,
    DirectoryError,
    Participant,
    ParticipantKind,
    ParticipantStatus,
    check_code,
)
from qingsuan.cnaps.rtgs_batch import (
    QUEUED,
    BatchOutcome,
    credit_needed,
    post_settlements,
    post_together,
    run_rtgs,
)
from qingsuan.reasons import Reason

if TYPE_CHECKING:
    from qingsuan.engine import Engine

_U32: Final = struct.Struct("<I")
#: a connected participant's answer (cnaps.ibps_confirm, cnaps.beps_receipt) -> its system
_ANSWERS: Final = {asking.command: name for name, asking in ASKING.items()}


class Cnaps:
    """The engine system with prefix ``cnaps``."""

    prefix = "cnaps"
    #: HVPS, made when the system is attached to an engine (none before). A plain
    #: attribute, not a property: the banks read it several times per event
    hvps: Hvps

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.directory = Directory()
        self.net: dict[str, NetSystem] = {}
        #: what the simulated participants know (BEPS receipts, IBPS confirmations,
        #: inquiries): accounts registered with CNAPS alone, until a world's banks answer
        #: from their own directory (:meth:`answer_from`)
        self.accounts: dict[tuple[str, str], SimAccount] = {}
        self._view: AccountsView | None = None
        self.agreements: set[tuple[str, str]] = set()
        #: (bank, account, asking participant): the holder lets the asker see its balance
        self.consents: set[tuple[str, str, str]] = set()
        #: participants connected from outside: they answer IBPS confirmations themselves
        self.connected: set[str] = set()
        #: (step, sending participant) -> [payments, value fen] that gridlock resolution
        #: settled in simulation-mode batches since the system was made (what the batches
        #: answered, for the simulator's metrics: not part of the state)
        self.batch_lsm: dict[tuple[str, str], list[int]] = {}

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self._make(engine)

    def _make(self, engine: Engine) -> None:
        self.hvps = Hvps(engine, self.directory)
        self.net = {name: NetSystem(engine, self.directory, self.hvps, name, self._lookup,
                                    self.agreements, self.connected) for name in SYSTEMS}

    @property
    def _lookup(self) -> AccountsView:
        return self._view if self._view is not None else self.accounts

    def answer_from(self, view: AccountsView) -> None:
        """The banks of a world answer CNAPS from their own directory: no second copy of
        the customer list is registered with CNAPS."""
        self._view = view
        for net in self.net.values():
            net.accounts = view

    @property
    def beps(self) -> NetSystem:
        return self.net["BEPS"]

    @property
    def ibps(self) -> NetSystem:
        return self.net["IBPS"]

    # ------------------------------------------------------------------ applying

    def payment(self, ref: str) -> HvpsPayment | NetItem | None:
        """The payment CNAPS carries under ``ref``: an HVPS payment, or a BEPS or IBPS item
        (both say sender, receiver and amount_fen); None if none has it."""
        found = self.hvps.payments.get(ref)
        if found is not None:
            return found
        for net in self.net.values():
            item = net.items.get(ref)
            if item is not None:
                return item
        return None

    def apply(self, kind: str, timestamp_us: int, body: bytes) -> Any:
        if kind == "cnaps.rtgs_batch":
            return self._apply_rtgs_batch(timestamp_us, body)
        if kind == "cnaps.net_batch":
            return self._apply_net_batch(timestamp_us, body)
        return self.handle(kind, timestamp_us, json.loads(body))

    def handle(self, kind: str, timestamp_us: int, doc: dict[str, Any]) -> Any:
        """Apply one command given as its decoded JSON document: what :meth:`apply` does
        after decoding, and what another system sends CNAPS while applying its own
        command (the banks: a message, without encoding and decoding it again)."""
        hvps = self.hvps
        if kind == "cnaps.net_submit":  # (the commands of every payment first)
            return self.net[doc["system"]].submit(
                doc["ref"], doc["kind"], doc["sender"], doc["receiver"], int(doc["amount_fen"]),
                timestamp_us, doc.get("payer"), doc.get("payee"), doc.get("original"),
                doc.get("payee_name"))
        if kind == "cnaps.hvps_submit":
            return hvps.submit(doc["ref"], doc["sender"], doc["receiver"], int(doc["amount_fen"]),
                               int(doc["priority"]), doc["kind"], timestamp_us,
                               doc.get("debtor"), doc.get("creditor"))
        if kind == "cnaps.join":
            try:
                hvps.join(Participant(doc["name"], doc["code"], ParticipantKind(doc["kind"]),
                                      settles_through=doc.get("settles_through")))
            except DirectoryError as exc:  # checked before logging; kept safe on replay
                return Outcome(False, "rejected", (Reason.RC01.code, str(exc)))
            for net in self.net.values():
                net.join(doc["name"])
            return Outcome(True, "joined")
        if kind == "cnaps.connect":
            if doc["participant"] not in self.directory:  # checked before logging too
                return Outcome(False, "rejected", (
                    Reason.RC01.code, f"{doc['participant']!r} is not a participant"))
            if doc["connected"]:
                self.connected.add(doc["participant"])
            else:
                self.connected.discard(doc["participant"])
            return Outcome(True, "connected" if doc["connected"] else "disconnected")
        if kind in _ANSWERS:
            net = self.net[_ANSWERS[kind]]
            codes = ASKING[net.name].reject_codes
            reason = None if doc["accept"] else (str(doc["code"]), str(doc["message"]))
            if reason is not None and reason[0] not in codes:
                return NetOutcome(False, "refused", (  # checked before logging too
                    Reason.NARR.code, f"code {reason[0]!r} is not one of {', '.join(codes)}"))
            return net.confirm(doc["ref"], doc["by"], bool(doc["accept"]), reason,
                               timestamp_us)
        if kind == "cnaps.net_cancel":
            return self.net[doc["system"]].cancel(doc["ref"], doc["by"], timestamp_us)
        if kind == "cnaps.net_cap":
            return self.net[doc["system"]].set_cap(doc["participant"], int(doc["cap_fen"]),
                                                   timestamp_us,
                                                   doc.get("backing", "collateral"))
        if kind == "cnaps.net_return":
            return self.net[doc["system"]].return_item(
                doc["ref"], (doc["code"], doc["message"]), timestamp_us)
        if kind == "cnaps.sim_accounts":
            if self._view is not None:
                raise ValueError("the banks answer from their own directory: no accounts "
                                 "are registered with CNAPS")
            for a in doc["accounts"]:
                self.accounts[(a["bank"], a["number"])] = SimAccount(
                    a["bank"], a["number"], a["name"], a.get("ledger_name"),
                    bool(a.get("closed", False)))
            return Outcome(True, "registered")
        if kind == "cnaps.debit_agreement":
            self.agreements.add((doc["payer"], doc["payee"]))
            return Outcome(True, "registered")
        if kind == "cnaps.balance_consent":
            self.consents.add((doc["bank"], doc["account"], doc["asker"]))
            return Outcome(True, "registered")
        if kind == "cnaps.status":
            self.directory.set_status(doc["participant"], ParticipantStatus(doc["status"]))
            return Outcome(True, doc["status"])
        if kind == "cnaps.hvps_cancel":
            return hvps.cancel(doc["ref"], doc["by"], timestamp_us)
        if kind == "cnaps.hvps_reprioritise":
            return hvps.reprioritise(doc["ref"], int(doc["priority"]), doc["by"], timestamp_us)
        if kind == "cnaps.pledge":
            return hvps.pledge(doc["participant"], int(doc["value_fen"]),
                               int(doc["haircut_ppm"]), timestamp_us)
        if kind == "cnaps.release":
            return hvps.release(doc["participant"], int(doc["value_fen"]),
                                int(doc["haircut_ppm"]), timestamp_us)
        if kind == "cnaps.net_session":  # the operator's: a session now, out of the timetable
            return self.net[doc["system"]].session_now(timestamp_us)
        if kind == "cnaps.end_of_day":  # the operator's: 日终 now, before its time
            return hvps.end_of_day_now(timestamp_us)
        raise ValueError(f"unknown CNAPS command {kind!r}")

    def _apply_rtgs_batch(self, timestamp_us: int, body: bytes) -> BatchOutcome:
        """Simulation mode: a columnar batch of HVPS payments (rtgs_batch module)."""
        (hlen,) = _U32.unpack_from(body)
        header = json.loads(body[_U32.size:_U32.size + hlen])
        names: list[str] = header["names"]
        n = int(header["n"])
        buf = memoryview(body)[_U32.size + hlen:]
        cols = []
        offset = 0
        for dtype in ("<u2", "<u2", "<i8", "<u1", "<u1"):
            arr = np.frombuffer(buf, np.dtype(dtype), count=n, offset=offset)
            offset += arr.nbytes
            cols.append(arr.astype(np.int64))
        sender, receiver, amount, priority, waiting = cols
        return self.rtgs_columns(names, sender, receiver, amount, priority, waiting,
                                 timestamp_us)

    def rtgs_columns(self, names: list[str], sender: Any, receiver: Any, amount: Any,
                     priority: Any, waiting: Any, timestamp_us: int) -> BatchOutcome:
        """HVPS in simulation mode, as part of the command being applied: payments as
        columns (indices into ``names``) settle gross or wait (run_rtgs), then what waits
        goes through gridlock resolution when it is due (``hvps.lsm``, on queueing or
        every ``hvps.lsm_interval_minutes``); the settled ones are posted as HVPS posts
        them. Nothing settles outside the operating day (all stay queued)."""
        n = len(amount)
        hvps = self.hvps
        phase, _ = hvps.phase(timestamp_us)
        if phase is not HvpsPhase.OPEN:
            return BatchOutcome.nothing(n, len(names))
        assert self.engine is not None
        params = self.engine.params
        interval_us = int(params["hvps.lsm_interval_minutes"]) * US_PER_MINUTE
        due = bool(params["hvps.lsm_on_queue"]) or bool(
            interval_us and timestamp_us - hvps.last_lsm_us >= interval_us)
        algorithm = str(params["hvps.lsm"]) if due else "off"
        # what each can pay: its free balance plus unused pledge credit (available_fen)
        free = np.array([hvps.free_fen(x) for x in names], np.int64)
        avail = free + np.array([hvps.credit[x].unused_fen for x in names], np.int64)
        outcome = run_rtgs(avail, sender, receiver, amount, priority,
                           bypass_fifo=bool(params["hvps.bypass_fifo"]), start_queued=waiting,
                           lsm=algorithm,
                           bilateral_candidates=int(params["hvps.bilateral_candidates"]),
                           retry_rank=np.argsort(np.argsort(np.array(names, dtype=object))))
        if algorithm != "off" and ((outcome.status == QUEUED)
                                   | (outcome.settled_by != gridlock.STAYS)).any():
            hvps.last_lsm_us = timestamp_us  # an attempt was made, as Hvps._gridlock notes
        # in the order they settled: gross, then what gridlock resolution settled together,
        # then what that released (gross again)
        order = outcome.settle_order
        together = outcome.settled_by[order] != gridlock.STAYS
        cut = np.flatnonzero(together[1:] != together[:-1]) + 1
        for k, run in enumerate(np.split(order, cut)):
            if run.size and outcome.settled_by[run[0]] != gridlock.STAYS:
                self._settle_together(names, sender, receiver, amount, run,
                                      outcome.settled_by[run])
            elif run.size:
                self._settle_gross(names, sender, receiver, amount, run,
                                   free if k == 0 else None)
        return outcome

    def _settle_gross(self, names: list[str], sender: Any, receiver: Any, amount: Any,
                      run: Any, free: Any = None) -> None:
        """Post payments settled one at a time, in ``run``'s order. Pledge credit counts in
        what a participant can pay (available_fen): a payer that needs it draws it before
        the settlements post, and incoming funds repay it after, as for a payment that
        comes alone. ``free``: each one's free balance now (read if not given)."""
        hvps = self.hvps
        assert self.engine is not None
        if free is None:
            free = np.array([hvps.free_fen(x) for x in names], np.int64)
        need = credit_needed(free, sender, receiver, amount, run)
        for k in np.flatnonzero(need).tolist():
            hvps.draw_credit(names[k], int(need[k]))
        post_settlements(self.engine, names, sender, receiver, amount, run)
        paid = np.zeros(len(names), np.int64)
        np.add.at(paid, receiver[run], 1)
        for k in np.flatnonzero((paid > 0) | (need > 0)).tolist():
            hvps.repay_credit(names[k])

    def _settle_together(self, names: list[str], sender: Any, receiver: Any, amount: Any,
                         chosen: Any, step: Any) -> None:
        """Post what gridlock resolution settled in a batch as Hvps._settle_together does
        (a participant short of its net draws pledge credit first; its receivers repay
        after), and count it per step and sending participant (``batch_lsm``)."""
        hvps = self.hvps
        assert self.engine is not None
        net = np.zeros(len(names), np.int64)
        np.subtract.at(net, sender[chosen], amount[chosen])
        np.add.at(net, receiver[chosen], amount[chosen])
        for k in np.flatnonzero(net).tolist():
            short = -(hvps.free_fen(names[k]) + int(net[k]))
            if short > 0:
                hvps.draw_credit(names[k], short)
        post_together(self.engine, names, sender, receiver, amount, chosen)
        for k in sorted(set(receiver[chosen].tolist()), key=lambda x: names[x]):
            hvps.repay_credit(names[k])
        for j, s, a in zip(step.tolist(), sender[chosen].tolist(), amount[chosen].tolist(),
                           strict=True):
            tally = self.batch_lsm.setdefault((gridlock.STEP_NAMES[j], names[s]), [0, 0])
            tally[0] += 1
            tally[1] += a

    def _apply_net_batch(self, timestamp_us: int, body: bytes) -> NettingResult:
        """Simulation mode for BEPS/IBPS: a columnar batch of items nets in one pass against
        the participants' positions and caps (netting module); the positions, metrics and
        funds in transit of the system move as if each item had come alone."""
        (hlen,) = _U32.unpack_from(body)
        header = json.loads(body[_U32.size:_U32.size + hlen])
        system, names, n = header["system"], header["names"], int(header["n"])
        buf = memoryview(body)[_U32.size + hlen:]
        cols = []
        offset = 0
        for dtype in ("<u2", "<u2", "<i8", "<u1"):
            arr = np.frombuffer(buf, np.dtype(dtype), count=n, offset=offset)
            offset += arr.nbytes
            cols.append(arr.astype(np.int64))
        sender, receiver, amount, waiting = cols
        return self.net_columns(system, names, sender, receiver, amount,
                                waiting if waiting.any() else None, timestamp_us)

    def net_columns(self, system: str, names: list[str], sender: Any, receiver: Any,
                    amount: Any, waiting: Any, timestamp_us: int) -> NettingResult:
        """BEPS or IBPS in simulation mode, as part of the command being applied: items as
        columns net in one pass against the positions and caps (netting module); the
        system's positions, metrics and funds in transit move as if each came alone."""
        net = self.net[system]
        net.advance(timestamp_us)
        position = np.array([net.positions[x] for x in names], np.int64)
        cap = np.array([net.caps[x] for x in names], np.int64)
        result = net_items(position, cap, sender, receiver, amount,
                           mode="beps" if system == "BEPS" else "ibps", start_queued=waiting)
        accepted = result.status == NET_ACCEPTED
        netted = np.zeros(len(names), np.int64)
        received = np.zeros(len(names), np.int64)
        np.add.at(netted, sender[accepted], amount[accepted])
        np.add.at(received, receiver[accepted], amount[accepted])
        counts = np.bincount(sender[accepted], minlength=len(names))
        rejected = np.bincount(sender[result.status == NET_REJECTED], minlength=len(names))
        # only the participants the batch moved, as Python ints (numpy scalars per field
        # and participant were most of a batch's fixed cost at 2,000 participants)
        positions, metrics = net.positions, net.metrics
        lowest = np.array([metrics[x].low_position_fen for x in names], np.int64)
        moved = np.flatnonzero((netted != 0) | (received != 0) | (rejected != 0)
                               | (result.position != position) | (result.low < lowest))
        for k, pos_fen, low_fen, out_fen, count, in_fen, refused in zip(
                moved.tolist(), result.position[moved].tolist(), result.low[moved].tolist(),
                netted[moved].tolist(), counts[moved].tolist(), received[moved].tolist(),
                rejected[moved].tolist(), strict=True):
            x = names[k]
            positions[x] = pos_fen
            m = metrics[x]
            m.netted_value_fen += out_fen
            m.netted_count += count
            m.received_value_fen += in_fen
            if low_fen < m.low_position_fen:
                m.low_position_fen = low_fen
            if refused:
                m.rejections = m.rejections or {}
                m.rejections["AM14"] = m.rejections.get("AM14", 0) + refused
        net.in_transit_fen += int(netted.sum())
        net.in_transit.append((timestamp_us, net.in_transit_fen))
        return result

    def net_batch(self, system: str, names: list[str], sender: Any, receiver: Any,
                  amount: Any, start_queued: Any = None) -> NettingResult:
        """Simulation mode: log and apply a columnar batch of BEPS or IBPS items (indices
        into ``names``; items already checked against the item limits). BEPS items still
        queued are the caller's to resubmit first, with ``start_queued`` set."""
        n = len(amount)
        header = json.dumps({"system": system, "names": names, "n": n}).encode()
        waiting = np.zeros(n, np.uint8) if start_queued is None else np.asarray(start_queued)
        body = b"".join([
            _U32.pack(len(header)), header,
            np.asarray(sender, "<u2").tobytes(), np.asarray(receiver, "<u2").tobytes(),
            np.asarray(amount, "<i8").tobytes(), np.asarray(waiting, "<u1").tobytes()])
        assert self.engine is not None
        result: NettingResult = self.engine.command("cnaps.net_batch", body)
        return result

    def rtgs_batch(self, names: list[str], sender: Any, receiver: Any, amount: Any,
                   priority: Any, start_queued: Any = None) -> BatchOutcome:
        """Simulation mode: log and apply a columnar batch of payments (indices into
        ``names``). Queues are the caller's between batches: resubmit what is still queued
        first, with ``start_queued`` set."""
        n = len(amount)
        header = json.dumps({"names": names, "n": n}).encode()
        waiting = np.zeros(n, np.uint8) if start_queued is None else np.asarray(start_queued)
        body = b"".join([
            _U32.pack(len(header)), header,
            np.asarray(sender, "<u2").tobytes(), np.asarray(receiver, "<u2").tobytes(),
            np.asarray(amount, "<i8").tobytes(), np.asarray(priority, "<u1").tobytes(),
            np.asarray(waiting, "<u1").tobytes()])
        assert self.engine is not None
        result: BatchOutcome = self.engine.command("cnaps.rtgs_batch", body)
        return result

    def on_tick(self, timestamp_us: int) -> None:
        if self.directory:
            self.hvps.advance(timestamp_us)
            for net in self.net.values():
                net.advance(timestamp_us)

    def dump_state(self) -> bytes:
        return dumps({
            "directory": self.directory.to_json(), "hvps": self.hvps.to_json(),
            "net": {k: v.to_json() for k, v in sorted(self.net.items())},
            "accounts": [[a.bank, a.number, a.name, a.ledger_name, a.closed]
                         for _, a in sorted(self.accounts.items())],
            "agreements": sorted(self.agreements),
            "consents": sorted(self.consents)}
            # absent when nobody is connected: a world without them hashes as before
            | ({"connected": sorted(self.connected)} if self.connected else {})
            # the batch path's gridlock tally (simulate's metrics), kept across a restart;
            # absent until a batch resolved gridlock, so other worlds hash as before
            | ({"batch_lsm": [[step, name, n, value] for (step, name), (n, value)
                              in sorted(self.batch_lsm.items())]} if self.batch_lsm else {}))

    def load_state(self, state: bytes) -> None:
        doc = json.loads(state)
        self.directory = Directory.from_json(doc["directory"])
        self.accounts.clear()
        for bank, number, name, ledger_name, closed in doc["accounts"]:
            self.accounts[(bank, number)] = SimAccount(bank, number, name, ledger_name, closed)
        self.agreements.clear()
        self.agreements.update((a, b) for a, b in doc["agreements"])
        self.consents.clear()
        self.consents.update((a, b, c) for a, b, c in doc.get("consents", []))
        self.connected.clear()
        self.connected.update(doc.get("connected", []))
        self.batch_lsm = {(str(step), str(name)): [int(n), int(value)]
                          for step, name, n, value in doc.get("batch_lsm", [])}
        assert self.engine is not None
        self._make(self.engine)
        self.hvps.load_json(doc["hvps"])
        for name, net in self.net.items():
            net.load_json(doc["net"][name])

    # ------------------------------------------------------------------ logging commands

    def _command(self, kind: str, doc: dict[str, Any]) -> Any:
        assert self.engine is not None
        return self.engine.command(kind, dumps(doc))

    def join(self, name: str, code: str, kind: ParticipantKind = ParticipantKind.DIRECT_BANK,
             settles_through: str | None = None) -> Outcome:
        """Add a participant. A bad code, a name or code in use, or an indirect participant
        without a direct one is refused before anything is logged."""
        problem = check_code(code, kind)
        if problem is None and name in self.directory:
            problem = f"participant {name} is already in the directory"
        if problem is None and self.directory.by_code(code) is not None:
            problem = f"code {code} is already in use"
        if problem is None and kind is ParticipantKind.INDIRECT_BANK and (
                settles_through not in self.directory):
            problem = f"indirect participant {name} must settle through a listed participant"
        if problem is not None:
            return Outcome(False, "rejected", (Reason.RC01.code, problem))
        result: Outcome = self._command("cnaps.join", {
            "name": name, "code": code, "kind": kind.value, "settles_through": settles_through})
        return result

    def set_status(self, participant: str, status: ParticipantStatus) -> Outcome:
        result: Outcome = self._command("cnaps.status",
                                        {"participant": participant, "status": status.value})
        return result

    def submit_hvps(self, ref: str, sender: str, receiver: str, amount_fen: int,
                    priority: Priority = Priority.NORMAL, kind: str = "customer",
                    debtor: str | None = None, creditor: str | None = None) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_submit", {
            "ref": ref, "sender": sender, "receiver": receiver, "amount_fen": amount_fen,
            "priority": int(priority), "kind": kind, "debtor": debtor, "creditor": creditor})
        return result

    def submit_net(self, system: str, ref: str, kind: str, sender: str, receiver: str,
                   amount_fen: int, payer: str | None = None, payee: str | None = None,
                   payee_name: str | None = None) -> NetOutcome:
        """A BEPS or IBPS item (kind: a BEPS business type, or "credit" for IBPS)."""
        doc: dict[str, Any] = {
            "system": system, "ref": ref, "kind": kind, "sender": sender,
            "receiver": receiver, "amount_fen": amount_fen, "payer": payer, "payee": payee}
        if payee_name is not None:
            doc["payee_name"] = payee_name
        result: NetOutcome = self._command("cnaps.net_submit", doc)
        return result

    def connect(self, participant: str, connected: bool = True) -> Outcome:
        """Mark a participant as connected from outside (it answers its IBPS confirmation
        requests and its BEPS debit receipt requests itself, within
        ``ibps.confirm_timeout_ms`` and ``beps.receipt_timeout_minutes``) or not (the
        simulated responder answers for it). An unknown participant is refused, nothing
        logged."""
        if participant not in self.directory:
            return Outcome(False, "rejected", (Reason.RC01.code,
                                               f"{participant!r} is not a participant"))
        result: Outcome = self._command("cnaps.connect", {"participant": participant,
                                                          "connected": bool(connected)})
        return result

    def ibps_confirm(self, ref: str, by: str, accept: bool, code: str | None = None,
                     message: str = "") -> NetOutcome:
        """A connected receiver's answer to an IBPS item awaiting its confirmation. A
        rejection needs a code of ``CONFIRM_REJECT_CODES``: another is refused unlogged."""
        return self._answer("IBPS", ref, by, accept, code, message)

    def beps_receipt(self, ref: str, by: str, accept: bool, code: str | None = None,
                     message: str = "") -> NetOutcome:
        """A connected payer's bank's receipt (回执) for a BEPS debit awaiting it. A refusal
        needs a code of ``RECEIPT_REJECT_CODES``: another is refused unlogged."""
        return self._answer("BEPS", ref, by, accept, code, message)

    def _answer(self, system: str, ref: str, by: str, accept: bool, code: str | None,
                message: str) -> NetOutcome:
        asking = ASKING[system]
        if not accept and code not in asking.reject_codes:
            return NetOutcome(False, "refused", (
                Reason.NARR.code, f"code {code!r} is not one of "
                                  f"{', '.join(asking.reject_codes)}"))
        doc: dict[str, Any] = {"ref": ref, "by": by, "accept": bool(accept)}
        if not accept:
            doc |= {"code": code, "message": message}
        result: NetOutcome = self._command(asking.command, doc)
        return result

    def cancel_net(self, system: str, ref: str, by: str) -> NetOutcome:
        result: NetOutcome = self._command("cnaps.net_cancel",
                                           {"system": system, "ref": ref, "by": by})
        return result

    def set_cap(self, system: str, participant: str, cap_fen: int,
                backing: str = "collateral") -> NetOutcome:
        """The net debit cap, backed by "collateral" or by "earmark"ed funds (圈存)."""
        result: NetOutcome = self._command("cnaps.net_cap", {
            "system": system, "participant": participant, "cap_fen": cap_fen,
            "backing": backing})
        return result

    def return_net(self, system: str, ref: str, code: str, message: str) -> NetOutcome:
        result: NetOutcome = self._command("cnaps.net_return", {
            "system": system, "ref": ref, "code": code, "message": message})
        return result

    def register_accounts(self, accounts: list[SimAccount]) -> Outcome:
        result: Outcome = self._command("cnaps.sim_accounts", {"accounts": [
            {"bank": a.bank, "number": a.number, "name": a.name,
             "ledger_name": a.ledger_name, "closed": a.closed} for a in accounts]})
        return result

    def debit_agreement(self, payer_account: str, payee_account: str) -> Outcome:
        result: Outcome = self._command("cnaps.debit_agreement",
                                        {"payer": payer_account, "payee": payee_account})
        return result

    def balance_consent(self, bank: str, account: str, asker: str) -> Outcome:
        """The account holder lets ``asker`` (another participant) see its balance."""
        result: Outcome = self._command("cnaps.balance_consent",
                                        {"bank": bank, "account": account, "asker": asker})
        return result

    def balance_inquiry(self, asker: str, bank: str, number: str) -> dict[str, Any]:
        """IBPS cross-bank balance inquiry: answered only with the holder's consent on file
        (a query: nothing logged)."""
        account = self._lookup.get((bank, number))
        if account is None:
            return {"answered": False, "reason": Reason.AC01.code}
        if (bank, number, asker) not in self.consents:
            return {"answered": False, "reason": Reason.AG01.code,
                    "message": "no consent of the account holder on file"}
        if account.ledger_name is None:
            return {"answered": False, "reason": Reason.NARR.code,
                    "message": "the bank's books are not in this world"}
        assert self.engine is not None
        book, name = account.ledger_name.split(":", 1)
        balance = self.engine.ledger.balance(self.engine.registry.id(book, name))
        return {"answered": True, "balance_fen": balance.posted_fen,
                "available_fen": balance.available_fen}

    def account_inquiry(self, bank: str, number: str, name: str | None) -> dict[str, Any]:
        """IBPS account inquiry: does the account exist at that bank, does the name match.
        A query: answered from what the bank's responder knows, nothing logged."""
        account = self._lookup.get((bank, number))
        if account is None:
            return {"exists": False, "name_matches": None, "reason": Reason.AC01.code}
        return {"exists": not account.closed, "closed": account.closed,
                "name_matches": None if name is None else account.name == name,
                "reason": Reason.AC04.code if account.closed else None}

    def cancel(self, ref: str, by: str) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_cancel", {"ref": ref, "by": by})
        return result

    def reprioritise(self, ref: str, priority: Priority, by: str) -> Outcome:
        result: Outcome = self._command("cnaps.hvps_reprioritise",
                                        {"ref": ref, "priority": int(priority), "by": by})
        return result

    def pledge(self, participant: str, value_fen: int, haircut_ppm: int | None = None
               ) -> Outcome:
        assert self.engine is not None
        haircut = self.engine.params["hvps.pledge_haircut"] if haircut_ppm is None else haircut_ppm
        result: Outcome = self._command("cnaps.pledge", {
            "participant": participant, "value_fen": value_fen, "haircut_ppm": int(haircut)})
        return result

    def release(self, participant: str, value_fen: int, haircut_ppm: int | None = None
                ) -> Outcome:
        assert self.engine is not None
        haircut = self.engine.params["hvps.pledge_haircut"] if haircut_ppm is None else haircut_ppm
        result: Outcome = self._command("cnaps.release", {
            "participant": participant, "value_fen": value_fen, "haircut_ppm": int(haircut)})
        return result
