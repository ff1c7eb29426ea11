"""The ISO 20022 edge of CNAPS: what a connected participant sends and receives.

A participant sends pacs.008 (hvps.111 customer transfer), pacs.009 (hvps.112 institution
transfer), camt.056 (ccms.307 cancel request) or pacs.028 (ccms.316 status request); it gets
back pacs.002 (ccms.900: ACSC settled, ACSP queued, RJCT with an ISO reason code) or camt.029
(ccms.308), and can ask for its camt.053 end-of-day statement and camt.052 intraday report
(directly, or with a camt.060 report request).
Decoding happens here, at the edge; HVPS sees only domain values, through logged commands.
Bad input never raises: it gets a pacs.002 RJCT naming the reason (and the element, for
schema violations) and changes nothing. A participant acts only for itself and sees only
its own accounts and payments.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from qingsuan.clock import to_beijing
from qingsuan.cnaps.hvps import HvpsStatus, Priority
from qingsuan.cnaps.netsys import AWAITING
from qingsuan.cnaps.system import Cnaps
from qingsuan.messages import (
    CAMT052,
    CAMT053,
    CAMT056,
    CAMT060,
    PACS003,
    PACS004,
    PACS008,
    PACS009,
    PACS028,
    CancelAnswer,
    CancelRequest,
    CreditTransfer,
    DirectDebit,
    InboundMessage,
    MessageRejection,
    PaymentStatus,
    ReportRequest,
    Return,
    Statement,
    StatementEntry,
    StatusReport,
    StatusRequest,
    build_camt029,
    build_camt052,
    build_camt053,
    build_pacs002,
    build_rejection_pacs002,
    field_paths,
    parse_inbound,
)

#: how far a transfer's settlement date (IntrBkSttlmDt) may be from the day it is sent: the
#: next business day after the longest closure (National Day, 1-8 October) is within it; a
#: date of 1990 or 2099 is a mistake, refused with DT01
MAX_SETTLEMENT_DATE_DAYS: Final = 10
ACCEPTED: Final = frozenset({PACS008, PACS009, PACS003, PACS004, PACS028, CAMT056, CAMT060})
#: what a camt.060's ReqdMsgNmId may ask for: the message's name, or the version CNAPS
#: answers with
REPORTS: Final[Mapping[str, str]] = {"camt.053": CAMT053, CAMT053: CAMT053,
                                     "camt.052": CAMT052, CAMT052: CAMT052}
#: the most days of statements one camt.060 asks for (a month's, with its weekends)
MAX_REPORT_DAYS: Final = 31
_PRIORITY: Final = {
    "correction": Priority.CORRECTION, "extra_urgent": Priority.EXTRA_URGENT,
    "pboc_charge": Priority.PBOC_CHARGE, "net_settlement": Priority.NET_SETTLEMENT,
    "urgent": Priority.URGENT, "normal": Priority.NORMAL,
}

#: A pacs.028's answer for a payment CNAPS holds: (HVPS or a net system, its status) ->
#: (pacs.002 status, text). The same answers the payment's own message got: HVPS queues it
#: (ACSP), BEPS/IBPS net it (ACSP) or hold it behind the debit cap (PDNG). A refusal keeps
#: the payment's own reason code when it has one, NARR otherwise.
STATUS_ANSWERS: Final[Mapping[tuple[str, str], tuple[PaymentStatus, str | None]]] = {
    ("HVPS", "settled"): ("ACSC", None),
    ("HVPS", "queued"): ("ACSP", "queued: waiting for liquidity"),
    ("HVPS", "rejected"): ("RJCT", "rejected"),
    ("HVPS", "cancelled"): ("RJCT", "cancelled at the sender's request (camt.056)"),
    ("HVPS", "returned"): ("RJCT", "still queued when HVPS closed: returned unsettled"),
    ("net", "accepted"): ("ACSP", "accepted: nets at once"),
    ("net", "netted"): ("ACSP", "netted: settles at the next session"),
    ("net", "queued"): ("PDNG", "queued: beyond the net debit cap"),
    ("net", "settled"): ("ACSC", None),
    ("net", "rejected"): ("RJCT", "rejected"),
    ("net", "cancelled"): ("RJCT", "cancelled at the sender's request (camt.056)"),
}


class CustomerBanks(Protocol):
    """The banks of the world, which book a customer's transfer before CNAPS sees it."""

    def customer_transfer(self, ref: str, system: str, priority: str, sender: str,
                          receiver: str, amount_fen: int, debtor_account: str,
                          creditor_account: str, creditor_name: str | None) -> Any: ...

    def institution_transfer(self, ref: str, sender: str, receiver: str, amount_fen: int,
                             priority: str) -> Any: ...

    def customer_direct_debit(self, ref: str, sender: str, receiver: str, amount_fen: int,
                              kind: str, debtor_account: str, creditor_account: str
                              ) -> Any: ...

    def customer_return(self, system: str, ref: str, code: str, message: str) -> Any: ...


class CnapsGateway:
    def __init__(self, cnaps: Cnaps, banks: CustomerBanks | None = None) -> None:
        """``banks``: the world's banks; a customer transfer (pacs.008) then debits the
        debtor at the sending bank and credits the creditor at the receiving bank (or comes
        back as a return). Without them the message goes to CNAPS alone."""
        self.cnaps = cnaps
        self.banks = banks

    @property
    def _engine(self):  # type: ignore[no-untyped-def]
        assert self.cnaps.engine is not None
        return self.cnaps.engine

    def _now(self) -> dt.datetime:
        return to_beijing(self._engine.clock.now_us())

    def _reply_id(self) -> str:
        """Deterministic message ids for answers: the log position they answer."""
        return f"QS{self._engine.applied_seq:012d}"

    def receive(self, xml: bytes, participant: str, parsed: InboundMessage | None = None
                ) -> bytes:
        """One message from ``participant``; returns the answer message's bytes.
        ``parsed``: ``parse_inbound(xml, accept=ACCEPTED)`` when the caller has it already
        (an XML message costs about 2 ms to read)."""
        inbound = parsed if parsed is not None else parse_inbound(xml, accept=ACCEPTED)
        if isinstance(inbound, MessageRejection):
            return build_rejection_pacs002(inbound, msg_id=self._reply_id(),
                                           created_at=self._now())
        me = self.cnaps.directory.get(participant) if participant in self.cnaps.directory \
            else None
        if me is None:
            return self._reject_all(inbound, "RC01", f"{participant!r} is not a participant")
        if inbound.message_type == CAMT056:
            return self._cancel(inbound, participant)
        if inbound.message_type == PACS004:
            return self._returns(inbound, participant)
        if inbound.message_type == PACS028:
            return self._status_requests(inbound, participant)
        if inbound.message_type == CAMT060:
            answer = self.report(inbound, participant)
            if isinstance(answer, ReportRefusal):
                return self._reject_all(inbound, answer.reason_code, answer.message,
                                        answer.element_path)
            return answer
        return self._credit_transfers(inbound, participant)

    def _reject_all(self, inbound: InboundMessage, code: str, message: str,
                    element_path: str | None = None) -> bytes:
        rejection = MessageRejection(reason_code=code, message=message,
                                     element_path=element_path,
                                     message_type=inbound.message_type, msg_id=inbound.msg_id)
        return build_rejection_pacs002(rejection, msg_id=self._reply_id(),
                                       created_at=self._now())

    def _ref(self, sender: str, msg_id: str, tx_id: str) -> str:
        return f"{sender}/{msg_id}/{tx_id}"

    def _credit_transfers(self, inbound: InboundMessage, participant: str) -> bytes:
        results: list[tuple[CreditTransfer | DirectDebit, str, str | None, str | None]] = []
        package = self._package_problem(inbound)
        if package is not None:
            return self._reject_all(inbound, *package)
        for item in inbound.items:
            if isinstance(item, DirectDebit):
                results.append((item, *self.one_debit(item, participant)))
            else:
                assert isinstance(item, CreditTransfer)
                results.append((item, *self._one_transfer(item, participant)))
        reply_id, created = self._reply_id(), self._now()
        return build_pacs002([StatusReport(
            msg_id=reply_id, created_at=created, original_msg_id=item.msg_id,
            original_message_type=inbound.message_type, original_tx_id=item.tx_id,
            status=status, reason_code=code, additional_info=info)  # type: ignore[arg-type]
            for item, status, code, info in results])

    def _package_problem(self, inbound: InboundMessage) -> tuple[str, str] | None:
        """A BEPS message is a package (包): one sender, one receiving bank, at most
        ``beps.package_max_items`` items. A package that breaks this is refused whole."""
        beps = [i for i in inbound.items
                if isinstance(i, CreditTransfer | DirectDebit) and i.system == "BEPS"]
        if not beps:
            return None
        limit = int(self._engine.params["beps.package_max_items"])
        if len(beps) > limit:
            return ("NARR", f"a BEPS package holds at most {limit} items "
                            f"(this one {len(beps)})")
        pairs = {(i.debtor_agent_code, i.creditor_agent_code) for i in beps}
        if len(pairs) > 1 or len(beps) != len(inbound.items):
            return ("NARR", "a BEPS package goes from one bank to one bank, BEPS items only")
        return None

    def _agents(self, participant: str, own_code: str, own_role: str, other_code: str,
                other_role: str, rule: str) -> tuple[Any, ...]:
        """(own agent, other agent) of a message, or the pacs.002 rejection when the sender
        is not the agent it must be, or the other agent is not a participant."""
        dirx = self.cnaps.directory
        own, other = dirx.by_code(own_code), dirx.by_code(other_code)
        if own is None or dirx.settling(own.name) != dirx.settling(participant):
            return ("RJCT", "RC01", f"{own_role} agent {own_code} is not {participant} ({rule})")
        if other is None:
            return ("RJCT", "RC01", f"{other_role} agent {other_code} is not a CNAPS "
                                    "participant")
        return (own, other)

    def _date_problem(self, settlement_date: dt.date) -> tuple[str, str, str] | None:
        """The pacs.002 rejection of a settlement date far from the sending day."""
        today = self._now().date()
        if abs((settlement_date - today).days) <= MAX_SETTLEMENT_DATE_DAYS:
            return None
        return ("RJCT", "DT01", f"settlement date {settlement_date} is more than "
                                f"{MAX_SETTLEMENT_DATE_DAYS} days from today, {today}")

    def _one_transfer(self, item: CreditTransfer, participant: str
                      ) -> tuple[str, str | None, str | None]:
        date_problem = self._date_problem(item.settlement_date)
        if date_problem is not None:
            return date_problem
        agents = self._agents(participant, item.debtor_agent_code, "debtor",
                              item.creditor_agent_code, "creditor",
                              "a participant sends only its own payments")
        if isinstance(agents[0], str):
            return agents
        sender, receiver = agents
        ref = self._ref(sender.name, item.msg_id, item.tx_id)
        if self.banks is not None and item.kind == "institution" and item.system == "HVPS":
            # the bank's own payment: it books it from its own funds (hvps.112)
            record = self.banks.institution_transfer(ref, sender.name, receiver.name,
                                                     item.amount_fen, item.priority)
            return record_status(record.system, record.status, record.reason)
        if self.banks is not None and item.kind == "customer":
            assert item.debtor_account is not None and item.creditor_account is not None
            record = self.banks.customer_transfer(
                ref, item.system, item.priority, sender.name, receiver.name, item.amount_fen,
                item.debtor_account, item.creditor_account, item.creditor_name)
            return record_status(record.system, record.status, record.reason)
        if item.system != "HVPS":
            if item.kind != "customer":
                return ("RJCT", "NARR", f"{item.system} carries customer transfers (pacs.008)")
            kind = "ordinary_credit" if item.system == "BEPS" else "credit"
            net = self.cnaps.submit_net(item.system, ref, kind, sender.name, receiver.name,
                                        item.amount_fen, item.debtor_account,
                                        item.creditor_account)
            return _net_status(net.ok, net.status, net.reason)
        outcome = self.cnaps.submit_hvps(
            ref, sender.name, receiver.name, item.amount_fen, _PRIORITY[item.priority],
            item.kind, debtor=item.debtor_account, creditor=item.creditor_account)
        if outcome.reason is not None and not outcome.ok:
            return ("RJCT", outcome.reason[0], outcome.reason[1][:105])
        return ("ACSC", None, None) if outcome.status == "settled" else \
            ("ACSP", None, "queued: waiting for liquidity")

    def _returns(self, inbound: InboundMessage, participant: str) -> bytes:
        """pacs.004 (退汇): the receiving bank of a netted BEPS/IBPS credit sends it back."""
        reply_id, created = self._reply_id(), self._now()
        reports = []
        for item in inbound.items:
            assert isinstance(item, Return)
            status, code, info = self.one_return(item, participant)
            reports.append(StatusReport(
                msg_id=reply_id, created_at=created, original_msg_id=item.msg_id,
                original_message_type=PACS004, original_tx_id=item.return_id, status=status,  # type: ignore[arg-type]
                reason_code=code, additional_info=info))
        return build_pacs002(reports)

    def one_return(self, item: Return, participant: str
                   ) -> tuple[str, str | None, str | None]:
        """One pacs.004 transaction (or its JSON form): (pacs.002 status, reason, text)."""
        dirx = self.cnaps.directory
        original_sender = dirx.by_code(item.receiving_agent_code)
        net = self.cnaps.net.get(item.system)
        ref = None if original_sender is None else self._ref(
            original_sender.name, item.original_msg_id, item.original_tx_id)
        if item.returning_agent_code != dirx.get(participant).code:
            return ("RJCT", "RC01", "a participant returns only what it received")
        if net is None or ref not in net.items or net.items[ref].status not in (
                "netted", "settled") or net.items[ref].receiver != dirx.settling(participant):
            return ("RJCT", "NARR", "no such netted credit")
        if item.returned_amount_fen != net.items[ref].amount_fen:
            return ("RJCT", "AM02", "a return gives back the whole amount")
        message = item.additional_info or "returned"
        if self.banks is not None:  # the bank takes it back from the customer it credited
            out = self.banks.customer_return(item.system, ref, item.reason_code, message)
        else:
            out = self.cnaps.return_net(item.system, ref, item.reason_code, message)
        return _net_status(out.ok, out.status, out.reason)

    def one_debit(self, item: DirectDebit, participant: str
                  ) -> tuple[str, str | None, str | None]:
        """pacs.003 (beps.127 ordinary debit): sent by the payee's bank; the payer's bank
        answers with its receipt (simulated, or its own when connected) and, if it accepts,
        the item nets. With the world's banks, the payer's customer is debited and the
        payee's credited (banks/hub_debits.py)."""
        date_problem = self._date_problem(item.settlement_date)
        if date_problem is not None:
            return date_problem
        agents = self._agents(participant, item.creditor_agent_code, "creditor",
                              item.debtor_agent_code, "debtor",
                              "a debit is sent by the payee's bank")
        if isinstance(agents[0], str):
            return agents
        payee_bank, payer_bank = agents
        if item.system != "BEPS":
            return ("RJCT", "NARR", "debits travel in BEPS")
        kind = "periodic_debit" if item.mandate_id else "ordinary_debit"
        ref = self._ref(payee_bank.name, item.msg_id, item.tx_id)
        if self.banks is not None:
            # the banks book it: the payer's customer debited, the payee's credited
            record = self.banks.customer_direct_debit(
                ref, payee_bank.name, payer_bank.name, item.amount_fen, kind,
                item.debtor_account, item.creditor_account)
            return record_status(record.system, record.status, record.reason)
        net = self.cnaps.submit_net("BEPS", ref, kind, payer_bank.name, payee_bank.name,
                                    item.amount_fen, item.debtor_account, item.creditor_account)
        return _net_status(net.ok, net.status, net.reason)

    def _cancel(self, inbound: InboundMessage, participant: str) -> bytes:
        answers = []
        reply_id, created = self._reply_id(), self._now()
        me = self.cnaps.directory.get(participant)
        for item in inbound.items:
            assert isinstance(item, CancelRequest)
            ref = self._ref(participant, item.original_msg_id, item.original_tx_id)
            code: str | None
            info: str | None
            if item.requesting_participant != me.code:
                ok, code, info = False, "RC01", "a participant cancels only its own payments"
            elif ref not in self.cnaps.hvps.payments:
                net = next((n for n in self.cnaps.net.values() if ref in n.items), None)
                if net is None:
                    ok, code, info = False, "NARR", "no such payment"
                else:
                    answer = self.cnaps.cancel_net(net.name, ref, participant)
                    ok = answer.ok
                    code = None if ok else (answer.reason[0] if answer.reason else "NARR")
                    info = None if ok else (answer.reason[1][:105] if answer.reason else None)
            else:
                outcome = self.cnaps.cancel(ref, participant)
                ok = outcome.ok
                code = None if ok else (outcome.reason[0] if outcome.reason else "NARR")
                info = None if ok else (outcome.reason[1][:105] if outcome.reason else None)
            answers.append(CancelAnswer(
                msg_id=reply_id, created_at=created, requesting_participant=me.code,
                cancel_request_id=item.msg_id, original_msg_id=item.original_msg_id,
                original_message_type=item.original_message_type,
                original_tx_id=item.original_tx_id, accepted=ok, reason_code=code,
                additional_info=info))
        return build_camt029(answers)

    def payment_status(self, participant: str, msg_id: str, tx_id: str) -> str | None:
        """The status of one of ``participant``'s own payments (None if unknown)."""
        found = self._payment(participant, msg_id, tx_id)
        return None if found is None else found[1]

    def _payment(self, participant: str, msg_id: str, tx_id: str
                 ) -> tuple[str, str, tuple[str, str] | None, bool] | None:
        """(``HVPS`` or ``net``, status, reason, returned by the receiver) of one of
        ``participant``'s own payments; None when it sent no such payment to CNAPS."""
        ref = self._ref(participant, msg_id, tx_id)
        pay = self.cnaps.hvps.payments.get(ref)
        if pay is not None:
            return ("HVPS", pay.status.value, pay.reason, False)
        for net in self.cnaps.net.values():
            item = net.items.get(ref)
            if item is not None:
                return ("net", item.status, item.reason, item.returned_by is not None)
        return None

    def _status_requests(self, inbound: InboundMessage, participant: str) -> bytes:
        """pacs.028 (ccms.316): the current status of each transaction asked about, as a
        pacs.002. It changes nothing and is not logged. A participant sees only its own
        payments: another's, or one that does not exist, is the same unknown transaction."""
        me = self.cnaps.directory.get(participant)
        first = inbound.items[0]
        assert isinstance(first, StatusRequest)
        asker = first.requesting_participant  # GrpHdr/InstgAgt: one for the whole message
        if asker != me.code:
            return self._reject_all(inbound, "RC01", f"InstgAgt {asker} is not {participant}: "
                                                     "a participant asks only about its own "
                                                     "payments")
        reply_id, created = self._reply_id(), self._now()
        reports = []
        for item in inbound.items:
            assert isinstance(item, StatusRequest)
            status, code, info = self._status_answer(participant, item)
            reports.append(StatusReport(
                msg_id=reply_id, created_at=created, original_msg_id=item.original_msg_id,
                original_message_type=item.original_message_type,
                original_tx_id=item.original_tx_id, status=status, reason_code=code,
                additional_info=info))
        return build_pacs002(reports)

    def _status_answer(self, participant: str, item: StatusRequest
                       ) -> tuple[PaymentStatus, str | None, str | None]:
        found = self._payment(participant, item.original_msg_id, item.original_tx_id)
        if found is None:
            return ("RJCT", "NARR", f"unknown transaction: {participant} sent CNAPS no "
                                    f"{item.original_msg_id}/{item.original_tx_id}")
        family, state, reason, returned = found
        status, text = STATUS_ANSWERS.get((family, state), ("PDNG", state))
        if status == "RJCT":
            code, why = reason or ("NARR", text or state)
            return (status, code, why[:105])
        if returned:
            return (status, "NARR", "returned by the receiving bank (pacs.004)")
        return (status, None, text)

    # ------------------------------------------------------------------ reports

    def statement(self, participant: str, business_date: dt.date) -> bytes:
        """camt.053: the participant's settlement account statement of a closed day."""
        found = self._closed_day(participant, business_date)
        if found is None:
            raise KeyError(f"no statement of {business_date} for {participant} (the day is "
                           "not closed, or it was not a business day)")
        return build_camt053(found)

    def _closed_day(self, participant: str, business_date: dt.date) -> Statement | None:
        me = self.cnaps.directory.get(participant)
        doc = self.cnaps.hvps.statement(self.cnaps.directory.settling(participant),
                                        business_date)
        return None if doc is None else self._statement(me.code, business_date, doc, "STMT")

    def report(self, inbound: InboundMessage, participant: str) -> bytes | ReportRefusal:
        """camt.060: the reports asked for, of ``participant``'s own settlement account: a
        camt.053 with the statement of each closed business day of the periods asked
        (days without one, weekends and holidays, are left out), or the camt.052 of
        today. Reads only: nothing is logged. A request for another's account, for a
        report CNAPS does not make, or for days without any statement is refused whole
        (:class:`ReportRefusal`), and shows nothing of anyone's account."""
        me = self.cnaps.directory.get(participant)
        requests = [item for item in inbound.items if isinstance(item, ReportRequest)]
        assert requests and len(requests) == len(inbound.items)
        refuse = functools.partial(_report_refusal, len(requests))
        wanted: set[str] = set()
        for i, req in enumerate(requests):
            if req.account_owner != me.code:
                return refuse(ReportRefusalKind.NOT_YOURS, "RC01", f"AcctOwnr "
                              f"{req.account_owner} is not {participant} ({me.code}): a "
                              "participant asks only for its own account's reports", i,
                              "account_owner")
            if req.account_asked != me.code:
                return refuse(ReportRefusalKind.NOT_YOURS, "AC01", f"account "
                              f"{req.account_asked[:35]} is not {participant}'s settlement "
                              f"account (named by its bank code, {me.code})", i, "account")
            message = REPORTS.get(req.requested_message)
            if message is None:
                return refuse(ReportRefusalKind.UNSUPPORTED, "NARR", f"ReqdMsgNmId "
                              f"{req.requested_message!r}: CNAPS reports with camt.053 (the "
                              "statement of a closed day) or camt.052 (the intraday report)",
                              i, "requested_message")
            wanted.add(message)
        if len(wanted) > 1:
            return refuse(ReportRefusalKind.UNSUPPORTED, "NARR", "one camt.060 asks for one "
                          "kind of report (its answer is one message): camt.053 or camt.052",
                          0, "requested_message")
        if wanted == {CAMT052}:
            today = self._now().date()
            for i, req in enumerate(requests):
                for field, day in (("from_date", req.from_date), ("to_date", req.to_date)):
                    if day is not None and day != today:
                        return refuse(ReportRefusalKind.NO_REPORT, "DT01", f"an intraday "
                                      f"report (camt.052) is of today, {today}, not {day}: "
                                      "ask camt.053 for a closed day", i, field)
            return self.intraday_report(participant)
        return self._statements(requests, participant)

    def _statements(self, requests: list[ReportRequest], participant: str
                    ) -> bytes | ReportRefusal:
        refuse = functools.partial(_report_refusal, len(requests))
        days: list[dt.date] = []
        for i, req in enumerate(requests):
            if req.from_date is None:
                return refuse(ReportRefusalKind.INVALID_PERIOD, "DT01", "a statement "
                              "(camt.053) request names its day: RptgPrd/FrToDt/FrDt (and "
                              "ToDt for a period)", i, "from_date")
            last = req.to_date or req.from_date
            span = (last - req.from_date).days + 1
            if len(days) + span > MAX_REPORT_DAYS:
                return refuse(ReportRefusalKind.INVALID_PERIOD, "DT01", f"at most "
                              f"{MAX_REPORT_DAYS} days of statements in one request", i,
                              "to_date")
            days += [req.from_date + dt.timedelta(days=n) for n in range(span)]
        found = [s for s in (self._closed_day(participant, day) for day in sorted(set(days)))
                 if s is not None]
        if not found:
            first, last = min(days), max(days)
            period = str(first) if first == last else f"{first} to {last}"
            return refuse(ReportRefusalKind.NO_REPORT, "DT01", f"no statement of {period} "
                          f"for {participant}: not closed yet, or no business day", 0,
                          "from_date")
        return build_camt053(found)

    def intraday_report(self, participant: str) -> bytes:
        """camt.052: the settlement account's entries of today so far and its balance now."""
        me = self.cnaps.directory.get(participant)
        name = self.cnaps.directory.settling(participant)
        hvps = self.cnaps.hvps
        now = self._engine.clock.now_us()
        today = to_beijing(now).date()
        start = dt.datetime.combine(today, dt.time(), to_beijing(now).tzinfo)
        start_us = int((start - to_beijing(0)).total_seconds() * 1_000_000)
        doc = hvps._statement(name, today, now)
        doc["entries"] = [e for e in doc["entries"] if e["at_us"] > start_us]
        doc["opening_fen"] = doc["closing_fen"] - sum(
            e["amount_fen"] if e["credit"] else -e["amount_fen"] for e in doc["entries"])
        return build_camt052(self._statement(me.code, today, doc, "RPT"))

    def _statement(self, code: str, day: dt.date, doc: dict[str, object], kind: str
                   ) -> Statement:
        entries = tuple(
            StatementEntry(reference=str(e["transfer_id"]), amount_fen=int(e["amount_fen"]),
                           direction="credit" if e["credit"] else "debit",
                           booked_at=to_beijing(int(e["at_us"])))
            for e in doc["entries"])  # type: ignore[attr-defined]
        return Statement(msg_id=self._reply_id(), created_at=self._now(),
                         statement_id=f"{kind}{code}{day:%Y%m%d}", account=code,
                         business_date=day, opening_balance_fen=int(doc["opening_fen"]),  # type: ignore[call-overload]
                         closing_balance_fen=int(doc["closing_fen"]),  # type: ignore[call-overload]
                         entries=entries)


class ReportRefusalKind(StrEnum):
    """Why a camt.060 is refused (the HTTP API answers each with its own status)."""

    NOT_YOURS = "not_yours"                    # another's account: nothing shown
    UNSUPPORTED = "unsupported_report"         # a ReqdMsgNmId CNAPS does not answer
    INVALID_PERIOD = "invalid_period"          # no day, or too many days
    NO_REPORT = "no_statement"                 # no closed business day in the period


@dataclass(frozen=True, slots=True)
class ReportRefusal:
    """A camt.060 refused whole: its kind, the ISO reason of the pacs.002 RJCT answering
    it, the message, and the request's field and element at fault."""

    kind: ReportRefusalKind
    reason_code: str
    message: str
    field: str
    element_path: str


def _report_refusal(count: int, kind: ReportRefusalKind, code: str, message: str,
                    index: int, field: str) -> ReportRefusal:
    """The refusal of a camt.060 of ``count`` requests, naming the ``index``-th one's
    element that holds ``field``."""
    path = field_paths(CAMT060)[field]
    if count > 1:
        path = path.replace("/RptgReq/", f"/RptgReq[{index + 1}]/", 1)
    return ReportRefusal(kind, code, message, field, path)


def record_status(system: str, status: str, reason: dict[str, str] | None
                  ) -> tuple[str, str | None, str | None]:
    """The pacs.002 status of a customer transfer from the banks' record of it."""
    if status == "returned":  # settled, then the receiving bank sent it back (a pacs.004)
        reason = reason or {"code": "NARR", "message": "returned"}
        return ("ACSC", reason["code"], f"returned: {reason['message']}"[:105])
    if status in ("rejected", "cancelled"):
        reason = reason or {"code": "NARR", "message": status}
        return ("RJCT", reason["code"], reason["message"][:105])
    if system in ("HVPS", "BOOK"):  # BOOK: both accounts at the sending bank (行内)
        return ("ACSC", None, None) if status in ("settled", "credited") else \
            ("ACSP", None, "queued: waiting for liquidity")
    return _net_status(True, status, None)


def _net_status(ok: bool, status: str, reason: tuple[str, str] | None
                ) -> tuple[str, str | None, str | None]:
    """BEPS/IBPS: netted is final for the participants but settles later in central-bank
    money (ACSP); queued behind the cap, or waiting for a connected receiver's
    confirmation, is pending (PDNG); refused is RJCT."""
    if not ok:
        code, text = reason or ("NARR", "rejected")
        return ("RJCT", code, text[:105])
    if status == "queued":
        return ("PDNG", None, "queued: beyond the net debit cap")
    if status == AWAITING:
        return ("PDNG", None, "awaiting the receiver's confirmation")
    return ("ACSP", None, "netted: settles at the next session")


__all__ = ["CnapsGateway", "HvpsStatus", "ReportRefusal", "ReportRefusalKind"]
