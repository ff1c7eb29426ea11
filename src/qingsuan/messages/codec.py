"""Builders and parsers: domain objects <-> ISO 20022 XML (docs/MESSAGES.md).

Builders (``build_*``) take domain objects (one, or a sequence sharing the message-level
fields) and return UTF-8 XML bytes that have been validated against the official XSD.
Parsers (``parse_*``) take bytes and return a list of domain objects, or raise
:class:`~qingsuan.messages.errors.MessageError` carrying a
:class:`~qingsuan.messages.errors.MessageRejection`; they never raise anything else.
:func:`parse_inbound` never raises at all.

All functions are pure: no clock, no I/O beyond reading the packaged XSDs once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final, TypeVar

from xsdata.models.datatype import XmlDate, XmlDateTime

from qingsuan.money import MAX_AMOUNT_FEN

from . import codes
from .errors import MAX_REJECTION_MESSAGE, MessageError, MessageRejection, Reject
from .generated.camt_029_001_09 import camt_029_001_09 as c029
from .generated.camt_052_001_08 import camt_052_001_08 as c052
from .generated.camt_053_001_08 import camt_053_001_08 as c053
from .generated.camt_056_001_08 import camt_056_001_08 as c056
from .generated.camt_060_001_05 import camt_060_001_05 as c060
from .generated.pacs_002_001_10 import pacs_002_001_10 as p002
from .generated.pacs_003_001_08 import pacs_003_001_08 as p003
from .generated.pacs_004_001_09 import pacs_004_001_09 as p004
from .generated.pacs_008_001_08 import pacs_008_001_08 as p008
from .generated.pacs_009_001_08 import pacs_009_001_08 as p009
from .generated.pacs_028_001_03 import pacs_028_001_03 as p028
from .model import (
    CAMT029,
    CAMT052,
    CAMT053,
    CAMT056,
    CAMT060,
    CNAPS_CENTRE_CODE,
    CURRENCY,
    MAX_NOTE,
    PACS002,
    PACS003,
    PACS004,
    PACS008,
    PACS009,
    PACS028,
    SYSTEMS,
    CancelAnswer,
    CancelRequest,
    CreditTransfer,
    DirectDebit,
    DomainObject,
    InvalidField,
    PaymentStatus,
    Priority,
    ReportRequest,
    Return,
    Statement,
    StatementEntry,
    StatusReport,
    StatusRequest,
    System,
    check_bank_code,
)
from .xmlio import (
    DEFAULT_MAX_BYTES,
    bind,
    header_id,
    message_type_of,
    read_document,
    serialize,
    validate,
)

T = TypeVar("T")
D = TypeVar("D")

#: Beijing time: naive ISO date-times in inbound messages are read as UTC+8, and outbound
#: date-times are written in UTC+8 with an explicit offset.
BEIJING: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: ``ClrSysMmbId/ClrSysId/Cd``: ISO ExternalClearingSystemIdentification1Code for CNAPS.
CLEARING_SYSTEM: Final = "CNAPS"

#: HVPS priority <-> ``PmtTpInf/LclInstrm/Prtry`` (a Qingsuan convention, docs/MESSAGES.md).
PRIORITY_CODES: Final[Mapping[Priority, str]] = {
    "correction": "CORR",
    "extra_urgent": "XURG",
    "pboc_charge": "PBOC",
    "net_settlement": "NETS",
    "urgent": "URGT",
    "normal": "NORM",
}
_PRIORITY_BY_CODE: Final[Mapping[str, Priority]] = {v: k for k, v in PRIORITY_CODES.items()}
_SYSTEM_BY_NAME: Final[Mapping[str, System]] = {s: s for s in SYSTEMS}
_STATUS_BY_NAME: Final[Mapping[str, PaymentStatus]] = {
    s: s for s in ("ACSC", "ACSP", "ACCP", "RJCT", "PDNG")
}

#: ``OrgnlMsgId`` of a pacs.002 rejecting a message whose id could not be read.
NOT_PROVIDED: Final = "NOTPROVIDED"

_USTRD: Final = 140  # RmtInf/Ustrd is Max140Text: longer remittance info is split in lines
_ADDTL: Final = 105  # AddtlInf is Max105Text


# --- small conversions ------------------------------------------------------------------------


def fen_to_decimal(amount_fen: int) -> Decimal:
    """12345 -> Decimal('123.45'), exactly (always two decimals)."""
    return Decimal(amount_fen).scaleb(-2)


def decimal_to_fen(value: Decimal, *, field: str = "amount") -> int:
    """Decimal('123.45') -> 12345 exactly; ValueError for more than two decimals."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or not value.is_finite():
        raise ValueError(f"{field}: not a finite amount: {value}")
    if exponent < -2:
        raise ValueError(f"{field}: more than two decimals: {value}")
    return int(value.scaleb(2))


def _xdt(value: datetime) -> XmlDateTime:
    return XmlDateTime.from_datetime(value.astimezone(BEIJING))


def _xd(value: date) -> XmlDate:
    return XmlDate.from_date(value)


def _lines(text: str | None, width: int) -> list[str]:
    if not text:
        return []
    return [text[i:i + width] for i in range(0, len(text), width)]


def _joined(lines: Sequence[str]) -> str | None:
    text = "".join(lines)
    return text[:MAX_NOTE] if text else None


def _batch(items: T | Sequence[T], cls: type[T], shared: Sequence[str]) -> list[T]:
    batch = [items] if isinstance(items, cls) else list(items)  # type: ignore[arg-type]
    if not batch:
        raise ValueError(f"nothing to build: no {cls.__name__}")
    for item in batch:
        if not isinstance(item, cls):
            raise TypeError(f"expected {cls.__name__}, got {type(item).__name__}")
    first = batch[0]
    for name in shared:
        for item in batch[1:]:
            if getattr(item, name) != getattr(first, name):
                raise ValueError(f"all {cls.__name__} of one message must share {name}")
    return batch


def _unique(ids: Sequence[str], what: str) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate {what} in one message")


# --- building blocks shared by the generated modules (same ISO component names) -------------


def _agent(m: Any, code: str, name: str | None = None) -> Any:
    return m.BranchAndFinancialInstitutionIdentification6(
        fin_instn_id=m.FinancialInstitutionIdentification18(
            clr_sys_mmb_id=m.ClearingSystemMemberIdentification2(
                clr_sys_id=m.ClearingSystemIdentification2Choice(cd=CLEARING_SYSTEM),
                mmb_id=code),
            nm=name))


def _account(m: Any, account: str | None) -> Any:
    if account is None:
        return None
    return m.CashAccount38(
        id=m.AccountIdentification4Choice(othr=m.GenericAccountIdentification1(id=account)))


def _party(m: Any, name: str | None) -> Any:
    return m.PartyIdentification135(nm=name)


def _payment_type(m: Any, cls: Any, system: System, priority: Priority = "normal") -> Any:
    service = [m.ServiceLevel8Choice(prtry=system)]
    if system != "HVPS":
        return cls(svc_lvl=service)
    return cls(
        instr_prty=m.Priority2Code.NORM if priority == "normal" else m.Priority2Code.HIGH,
        svc_lvl=service,
        lcl_instrm=m.LocalInstrument2Choice(prtry=PRIORITY_CODES[priority]))


# --- reading helpers -------------------------------------------------------------------------


def _fen(amount: Any, path: str, tx_id: str | None, *, allow_zero: bool = False) -> int:
    if amount.ccy != CURRENCY:
        raise Reject(codes.AM03, f"currency {amount.ccy} is not accepted: CNAPS settles CNY only",
                     f"{path}/@Ccy", tx_id=tx_id)
    value: Decimal = amount.value
    try:
        fen = decimal_to_fen(value)
    except ValueError:
        raise Reject(codes.AM12, f"amount {value} has more than two decimals (CNY has fen)",
                     path, tx_id=tx_id) from None
    if fen == 0 and not allow_zero:
        raise Reject(codes.AM01, "amount must be greater than zero", path, tx_id=tx_id)
    if fen > MAX_AMOUNT_FEN:
        raise Reject(codes.AM02, f"amount {value} exceeds the largest accepted amount", path,
                     tx_id=tx_id)
    return fen


def _date(value: XmlDate | None, path: str, tx_id: str | None) -> date:
    if value is None:
        raise Reject(codes.DT01, "settlement date (IntrBkSttlmDt) is required", path,
                     tx_id=tx_id)
    try:
        return value.to_date()
    except (ValueError, OverflowError) as exc:
        raise Reject(codes.DT01, f"invalid date {value}: {exc}", path, tx_id=tx_id) from None


def _datetime(value: XmlDateTime | None, path: str, tx_id: str | None = None) -> datetime:
    if value is None:
        raise Reject(codes.DT01, "date-time is required", path, tx_id=tx_id)
    try:
        result = value.to_datetime()
        if result.tzinfo is None:
            result = result.replace(tzinfo=BEIJING)
        result.astimezone(UTC)  # out-of-range offsets fail here, not later
    except (ValueError, OverflowError) as exc:
        raise Reject(codes.DT01, f"invalid date-time {value}: {exc}", path, tx_id=tx_id) from None
    return result


def _agent_code(agent: Any, path: str, tx_id: str | None) -> str:
    where = f"{path}/FinInstnId/ClrSysMmbId/MmbId"
    member = None if agent is None else agent.fin_instn_id.clr_sys_mmb_id
    if member is None:
        raise Reject(codes.RC01, "bank code missing: ClrSysMmbId/MmbId must carry the 12-digit "
                     "CNAPS bank code", where, tx_id=tx_id)
    try:
        return check_bank_code("bank code", member.mmb_id)
    except InvalidField as exc:
        raise Reject(codes.RC01, exc.message, where, tx_id=tx_id) from None


def _party_agent_code(party: Any, path: str, tx_id: str | None) -> str:
    """A ``Party40Choice`` that must be an agent with a CNAPS bank code."""
    if party is None or party.agt is None:
        raise Reject(codes.RC01, "must be an agent (Agt) with a 12-digit CNAPS bank code",
                     f"{path}/Agt", tx_id=tx_id)
    return _agent_code(party.agt, f"{path}/Agt", tx_id)


def _account_id(account: Any) -> str | None:
    if account is None:
        return None
    ident = account.id
    if ident.othr is not None:
        return str(ident.othr.id)
    return None if ident.iban is None else str(ident.iban)


def _count(nb_of_txs: str | None, actual: int, path: str) -> None:
    if nb_of_txs is not None and int(nb_of_txs) != actual:
        raise Reject(codes.AM18, f"NbOfTxs is {nb_of_txs} but the message holds {actual} "
                     "transaction(s)", path)


def _control_sum(ctrl_sum: Decimal | None, total_fen: int, path: str) -> None:
    if ctrl_sum is not None and ctrl_sum != fen_to_decimal(total_fen):
        raise Reject(codes.AM10, f"CtrlSum {ctrl_sum} differs from the sum of the "
                     f"transactions {fen_to_decimal(total_fen)}", path)


def _total(amount: Any, total_fen: int, path: str) -> None:
    if amount is not None and _fen(amount, path, None, allow_zero=True) != total_fen:
        raise Reject(codes.AM10, f"total {amount.value} differs from the sum of the "
                     f"transactions {fen_to_decimal(total_fen)}", path)


def _no_duplicates(tx_id: str, seen: set[str], path: str) -> None:
    if tx_id in seen:
        raise Reject(codes.AM05, f"transaction id {tx_id} appears twice in the message", path,
                     tx_id=tx_id)
    seen.add(tx_id)


def _required(value: str | None, what: str, path: str, tx_id: str | None = None) -> str:
    if value is None:
        raise Reject(codes.FF01, f"{what} is required", path, tx_id=tx_id)
    return value


def _system(candidates: Sequence[tuple[Any, str]], default_path: str,
            tx_id: str | None) -> System:
    for info, path in candidates:
        if info is None or not info.svc_lvl:
            continue
        named = {s.prtry for s in info.svc_lvl if s.prtry in _SYSTEM_BY_NAME}
        if len(named) == 1:
            return _SYSTEM_BY_NAME[named.pop()]
        got = [s.prtry or s.cd for s in info.svc_lvl]
        raise Reject(codes.FF04, f"SvcLvl/Prtry must name exactly one CNAPS system "
                     f"(HVPS, BEPS or IBPS), got {got}", f"{path}/SvcLvl", tx_id=tx_id)
    raise Reject(codes.FF04, "PmtTpInf/SvcLvl/Prtry must name the CNAPS system "
                 "(HVPS, BEPS or IBPS)", f"{default_path}/PmtTpInf/SvcLvl/Prtry", tx_id=tx_id)


def _priority(system: System, candidates: Sequence[tuple[Any, str]],
              tx_id: str | None) -> Priority:
    if system != "HVPS":
        return "normal"
    local = next(((i.lcl_instrm, p) for i, p in candidates
                  if i is not None and i.lcl_instrm is not None), None)
    instr = next(((i.instr_prty, p) for i, p in candidates
                  if i is not None and i.instr_prty is not None), None)
    if local is not None:
        code = local[0].prtry
        priority = _PRIORITY_BY_CODE.get(code) if code else None
        if priority is None:
            raise Reject(codes.FF05, f"LclInstrm {code or local[0].cd!r} is not an HVPS priority "
                         f"code ({', '.join(PRIORITY_CODES.values())})",
                         f"{local[1]}/LclInstrm/Prtry", tx_id=tx_id)
        expected = "NORM" if priority == "normal" else "HIGH"
        if instr is not None and instr[0].value != expected:
            raise Reject(codes.FF03, f"InstrPrty {instr[0].value} contradicts LclInstrm/Prtry "
                         f"{code} (expected {expected})", f"{instr[1]}/InstrPrty", tx_id=tx_id)
        return priority
    if instr is not None and instr[0].value == "HIGH":
        return "urgent"
    return "normal"


def _reason(infos: Sequence[Any]) -> tuple[str | None, str | None]:
    """(code, additional info) of the first ``*RsnInf`` element."""
    if not infos:
        return None, None
    info = infos[0]
    text = _joined(info.addtl_inf)
    if info.rsn is None:
        return None, text
    if info.rsn.prtry is not None:  # a proprietary reason is kept as text, not as a code
        text = f"{info.rsn.prtry}: {text}" if text else info.rsn.prtry
    return info.rsn.cd, text


def _make(cls: Callable[..., T], paths: Mapping[str, str], base: str, tx_path: str,
          tx_id: str | None, /, **fields: Any) -> T:
    """Construct a domain object; an :class:`InvalidField` becomes a :class:`Reject` naming
    the element the field came from."""
    try:
        return cls(**fields)
    except InvalidField as exc:
        rel = paths.get(exc.field)
        path = None if rel is None else (base + rel if rel.startswith("/") else
                                          f"{tx_path}/{rel}")
        raise Reject(exc.reason_code, f"{exc.field}: {exc.message}", path,
                     tx_id=tx_id) from None


def _item_path(base: str, name: str, index: int, count: int) -> str:
    return f"{base}/{name}[{index}]" if count > 1 else f"{base}/{name}"


# --- pacs.008 / pacs.009: credit transfers ------------------------------------------------------

#: Domain field -> element, relative to the transaction (or to the message when it starts
#: with "/"). docs/MESSAGES.md shows the same table.
CREDIT_TRANSFER_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "instr_id": "PmtId/InstrId",
    "end_to_end_id": "PmtId/EndToEndId",
    "tx_id": "PmtId/TxId",
    "system": "PmtTpInf/SvcLvl/Prtry",
    "priority": "PmtTpInf/LclInstrm/Prtry",
    "amount_fen": "IntrBkSttlmAmt",
    "currency": "IntrBkSttlmAmt/@Ccy",
    "settlement_date": "IntrBkSttlmDt",
    "debtor_agent_code": "DbtrAgt/FinInstnId/ClrSysMmbId/MmbId",
    "creditor_agent_code": "CdtrAgt/FinInstnId/ClrSysMmbId/MmbId",
    "debtor_name": "Dbtr/Nm",
    "debtor_account": "DbtrAcct/Id/Othr/Id",
    "creditor_name": "Cdtr/Nm",
    "creditor_account": "CdtrAcct/Id/Othr/Id",
    "remittance_info": "RmtInf/Ustrd",
}
#: pacs.009: the debtor and creditor are institutions (Dbtr/Cdtr are agents).
INSTITUTION_TRANSFER_PATHS: Final[Mapping[str, str]] = {
    **CREDIT_TRANSFER_PATHS,
    "debtor_agent_code": "Dbtr/FinInstnId/ClrSysMmbId/MmbId",
    "creditor_agent_code": "Cdtr/FinInstnId/ClrSysMmbId/MmbId",
    "debtor_name": "Dbtr/FinInstnId/Nm",
    "creditor_name": "Cdtr/FinInstnId/Nm",
}


def build_pacs008(transfers: CreditTransfer | Sequence[CreditTransfer]) -> bytes:
    """pacs.008.001.08 (hvps.111 / beps.121 / ibps.101) for customer transfers sharing
    ``msg_id`` and ``created_at``."""
    txs = _batch(transfers, CreditTransfer, ("msg_id", "created_at"))
    if any(t.kind != "customer" for t in txs):
        raise ValueError("pacs.008 carries customer transfers; use build_pacs009 for "
                         "institution transfers")
    _unique([t.tx_id for t in txs], "tx_id")
    m = p008
    first = txs[0]
    doc = m.Document(fito_ficstmr_cdt_trf=m.FitoFicustomerCreditTransferV08(
        grp_hdr=m.GroupHeader93(
            msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at), nb_of_txs=str(len(txs)),
            ttl_intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                value=fen_to_decimal(sum(t.amount_fen for t in txs)), ccy=CURRENCY),
            sttlm_inf=m.SettlementInstruction7(sttlm_mtd=m.SettlementMethod1Code.CLRG)),
        cdt_trf_tx_inf=[
            m.CreditTransferTransaction39(
                pmt_id=m.PaymentIdentification7(
                    instr_id=t.instr_id, end_to_end_id=t.end_to_end_id, tx_id=t.tx_id),
                pmt_tp_inf=_payment_type(m, m.PaymentTypeInformation28, t.system, t.priority),
                intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                    value=fen_to_decimal(t.amount_fen), ccy=t.currency),
                intr_bk_sttlm_dt=_xd(t.settlement_date),
                chrg_br=m.ChargeBearerType1Code.SLEV,
                dbtr=_party(m, t.debtor_name),
                dbtr_acct=_account(m, t.debtor_account),
                dbtr_agt=_agent(m, t.debtor_agent_code),
                cdtr_agt=_agent(m, t.creditor_agent_code),
                cdtr=_party(m, t.creditor_name),
                cdtr_acct=_account(m, t.creditor_account),
                rmt_inf=(m.RemittanceInformation16(ustrd=_lines(t.remittance_info, _USTRD))
                         if t.remittance_info else None),
            )
            for t in txs
        ]))
    return serialize(doc, PACS008)


def build_pacs009(transfers: CreditTransfer | Sequence[CreditTransfer]) -> bytes:
    """pacs.009.001.08 (hvps.112) for institution transfers sharing ``msg_id`` and
    ``created_at``. The debtor and creditor institutions are ``Dbtr``/``Cdtr`` with the bank
    codes ``debtor_agent_code``/``creditor_agent_code``."""
    txs = _batch(transfers, CreditTransfer, ("msg_id", "created_at"))
    if any(t.kind != "institution" for t in txs):
        raise ValueError("pacs.009 carries institution transfers; use build_pacs008 for "
                         "customer transfers")
    _unique([t.tx_id for t in txs], "tx_id")
    m = p009
    first = txs[0]
    doc = m.Document(ficdt_trf=m.FinancialInstitutionCreditTransferV08(
        grp_hdr=m.GroupHeader93(
            msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at), nb_of_txs=str(len(txs)),
            ttl_intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                value=fen_to_decimal(sum(t.amount_fen for t in txs)), ccy=CURRENCY),
            sttlm_inf=m.SettlementInstruction7(sttlm_mtd=m.SettlementMethod1Code.CLRG)),
        cdt_trf_tx_inf=[
            m.CreditTransferTransaction36(
                pmt_id=m.PaymentIdentification7(
                    instr_id=t.instr_id, end_to_end_id=t.end_to_end_id, tx_id=t.tx_id),
                pmt_tp_inf=_payment_type(m, m.PaymentTypeInformation28, t.system, t.priority),
                intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                    value=fen_to_decimal(t.amount_fen), ccy=t.currency),
                intr_bk_sttlm_dt=_xd(t.settlement_date),
                dbtr=_agent(m, t.debtor_agent_code, t.debtor_name),
                dbtr_acct=_account(m, t.debtor_account),
                cdtr=_agent(m, t.creditor_agent_code, t.creditor_name),
                cdtr_acct=_account(m, t.creditor_account),
                rmt_inf=(m.RemittanceInformation2(ustrd=_lines(t.remittance_info, _USTRD))
                         if t.remittance_info else None),
            )
            for t in txs
        ]))
    return serialize(doc, PACS009)


def _from_pacs008(doc: p008.Document) -> list[CreditTransfer]:
    base = "/Document/FIToFICstmrCdtTrf"
    msg = doc.fito_ficstmr_cdt_trf
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    _count(hdr.nb_of_txs, len(msg.cdt_trf_tx_inf), f"{base}/GrpHdr/NbOfTxs")
    out: list[CreditTransfer] = []
    seen: set[str] = set()
    for i, tx in enumerate(msg.cdt_trf_tx_inf, 1):
        tp = _item_path(base, "CdtTrfTxInf", i, len(msg.cdt_trf_tx_inf))
        tx_id = _required(tx.pmt_id.tx_id, "PmtId/TxId", f"{tp}/PmtId/TxId")
        _no_duplicates(tx_id, seen, f"{tp}/PmtId/TxId")
        infos = [(tx.pmt_tp_inf, f"{tp}/PmtTpInf"), (hdr.pmt_tp_inf, f"{base}/GrpHdr/PmtTpInf")]
        system = _system(infos, tp, tx_id)
        out.append(_make(
            CreditTransfer, CREDIT_TRANSFER_PATHS, base, tp, tx_id,
            msg_id=hdr.msg_id, created_at=created_at, instr_id=tx.pmt_id.instr_id,
            end_to_end_id=tx.pmt_id.end_to_end_id, tx_id=tx_id, system=system, kind="customer",
            priority=_priority(system, infos, tx_id),
            amount_fen=_fen(tx.intr_bk_sttlm_amt, f"{tp}/IntrBkSttlmAmt", tx_id),
            settlement_date=_date(tx.intr_bk_sttlm_dt or hdr.intr_bk_sttlm_dt,
                                  f"{tp}/IntrBkSttlmDt", tx_id),
            debtor_agent_code=_agent_code(tx.dbtr_agt, f"{tp}/DbtrAgt", tx_id),
            creditor_agent_code=_agent_code(tx.cdtr_agt, f"{tp}/CdtrAgt", tx_id),
            debtor_name=tx.dbtr.nm, debtor_account=_account_id(tx.dbtr_acct),
            creditor_name=tx.cdtr.nm, creditor_account=_account_id(tx.cdtr_acct),
            remittance_info=_joined(tx.rmt_inf.ustrd) if tx.rmt_inf is not None else None))
    total = sum(t.amount_fen for t in out)
    _total(hdr.ttl_intr_bk_sttlm_amt, total, f"{base}/GrpHdr/TtlIntrBkSttlmAmt")
    _control_sum(hdr.ctrl_sum, total, f"{base}/GrpHdr/CtrlSum")
    return out


def _from_pacs009(doc: p009.Document) -> list[CreditTransfer]:
    base = "/Document/FICdtTrf"
    msg = doc.ficdt_trf
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    _count(hdr.nb_of_txs, len(msg.cdt_trf_tx_inf), f"{base}/GrpHdr/NbOfTxs")
    out: list[CreditTransfer] = []
    seen: set[str] = set()
    for i, tx in enumerate(msg.cdt_trf_tx_inf, 1):
        tp = _item_path(base, "CdtTrfTxInf", i, len(msg.cdt_trf_tx_inf))
        tx_id = _required(tx.pmt_id.tx_id, "PmtId/TxId", f"{tp}/PmtId/TxId")
        _no_duplicates(tx_id, seen, f"{tp}/PmtId/TxId")
        infos = [(tx.pmt_tp_inf, f"{tp}/PmtTpInf"), (hdr.pmt_tp_inf, f"{base}/GrpHdr/PmtTpInf")]
        system = _system(infos, tp, tx_id)
        # The settling participants: the agents when present, else the institutions.
        debtor_agent = (tx.dbtr_agt, f"{tp}/DbtrAgt") if tx.dbtr_agt else (tx.dbtr, f"{tp}/Dbtr")
        creditor_agent = ((tx.cdtr_agt, f"{tp}/CdtrAgt") if tx.cdtr_agt
                          else (tx.cdtr, f"{tp}/Cdtr"))
        out.append(_make(
            CreditTransfer, INSTITUTION_TRANSFER_PATHS, base, tp, tx_id,
            msg_id=hdr.msg_id, created_at=created_at, instr_id=tx.pmt_id.instr_id,
            end_to_end_id=tx.pmt_id.end_to_end_id, tx_id=tx_id, system=system,
            kind="institution", priority=_priority(system, infos, tx_id),
            amount_fen=_fen(tx.intr_bk_sttlm_amt, f"{tp}/IntrBkSttlmAmt", tx_id),
            settlement_date=_date(tx.intr_bk_sttlm_dt or hdr.intr_bk_sttlm_dt,
                                  f"{tp}/IntrBkSttlmDt", tx_id),
            debtor_agent_code=_agent_code(*debtor_agent, tx_id),
            creditor_agent_code=_agent_code(*creditor_agent, tx_id),
            debtor_name=tx.dbtr.fin_instn_id.nm, debtor_account=_account_id(tx.dbtr_acct),
            creditor_name=tx.cdtr.fin_instn_id.nm, creditor_account=_account_id(tx.cdtr_acct),
            remittance_info=_joined(tx.rmt_inf.ustrd) if tx.rmt_inf is not None else None))
    total = sum(t.amount_fen for t in out)
    _total(hdr.ttl_intr_bk_sttlm_amt, total, f"{base}/GrpHdr/TtlIntrBkSttlmAmt")
    _control_sum(hdr.ctrl_sum, total, f"{base}/GrpHdr/CtrlSum")
    return out


# --- pacs.003: direct debits ------------------------------------------------------------------

DIRECT_DEBIT_PATHS: Final[Mapping[str, str]] = {
    **{k: v for k, v in CREDIT_TRANSFER_PATHS.items() if k not in ("priority",)},
    "mandate_id": "DrctDbtTx/MndtRltdInf/MndtId",
}


def build_pacs003(debits: DirectDebit | Sequence[DirectDebit]) -> bytes:
    """pacs.003.001.08 (beps.127/131/133) for direct debits sharing ``msg_id`` and
    ``created_at``; the creditor's bank sends it."""
    txs = _batch(debits, DirectDebit, ("msg_id", "created_at"))
    _unique([t.tx_id for t in txs], "tx_id")
    m = p003
    first = txs[0]
    doc = m.Document(fito_ficstmr_drct_dbt=m.FitoFicustomerDirectDebitV08(
        grp_hdr=m.GroupHeader94(
            msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at), nb_of_txs=str(len(txs)),
            ttl_intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                value=fen_to_decimal(sum(t.amount_fen for t in txs)), ccy=CURRENCY),
            sttlm_inf=m.SettlementInstruction8(sttlm_mtd=m.SettlementMethod2Code.CLRG)),
        drct_dbt_tx_inf=[
            m.DirectDebitTransactionInformation24(
                pmt_id=m.PaymentIdentification7(
                    instr_id=t.instr_id, end_to_end_id=t.end_to_end_id, tx_id=t.tx_id),
                pmt_tp_inf=_payment_type(m, m.PaymentTypeInformation27, t.system),
                intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                    value=fen_to_decimal(t.amount_fen), ccy=t.currency),
                intr_bk_sttlm_dt=_xd(t.settlement_date),
                chrg_br=m.ChargeBearerType1Code.SLEV,
                drct_dbt_tx=(m.DirectDebitTransaction10(
                    mndt_rltd_inf=m.MandateRelatedInformation14(mndt_id=t.mandate_id))
                    if t.mandate_id is not None else None),
                cdtr=_party(m, t.creditor_name),
                cdtr_acct=_account(m, t.creditor_account),
                cdtr_agt=_agent(m, t.creditor_agent_code),
                dbtr=_party(m, t.debtor_name),
                dbtr_acct=_account(m, t.debtor_account),
                dbtr_agt=_agent(m, t.debtor_agent_code),
                rmt_inf=(m.RemittanceInformation16(ustrd=_lines(t.remittance_info, _USTRD))
                         if t.remittance_info else None),
            )
            for t in txs
        ]))
    return serialize(doc, PACS003)


def _from_pacs003(doc: p003.Document) -> list[DirectDebit]:
    base = "/Document/FIToFICstmrDrctDbt"
    msg = doc.fito_ficstmr_drct_dbt
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    _count(hdr.nb_of_txs, len(msg.drct_dbt_tx_inf), f"{base}/GrpHdr/NbOfTxs")
    out: list[DirectDebit] = []
    seen: set[str] = set()
    for i, tx in enumerate(msg.drct_dbt_tx_inf, 1):
        tp = _item_path(base, "DrctDbtTxInf", i, len(msg.drct_dbt_tx_inf))
        tx_id = _required(tx.pmt_id.tx_id, "PmtId/TxId", f"{tp}/PmtId/TxId")
        _no_duplicates(tx_id, seen, f"{tp}/PmtId/TxId")
        infos = [(tx.pmt_tp_inf, f"{tp}/PmtTpInf"), (hdr.pmt_tp_inf, f"{base}/GrpHdr/PmtTpInf")]
        mandate = tx.drct_dbt_tx.mndt_rltd_inf if tx.drct_dbt_tx is not None else None
        out.append(_make(
            DirectDebit, DIRECT_DEBIT_PATHS, base, tp, tx_id,
            msg_id=hdr.msg_id, created_at=created_at, instr_id=tx.pmt_id.instr_id,
            end_to_end_id=tx.pmt_id.end_to_end_id, tx_id=tx_id,
            system=_system(infos, tp, tx_id),
            amount_fen=_fen(tx.intr_bk_sttlm_amt, f"{tp}/IntrBkSttlmAmt", tx_id),
            settlement_date=_date(tx.intr_bk_sttlm_dt or hdr.intr_bk_sttlm_dt,
                                  f"{tp}/IntrBkSttlmDt", tx_id),
            creditor_agent_code=_agent_code(tx.cdtr_agt, f"{tp}/CdtrAgt", tx_id),
            debtor_agent_code=_agent_code(tx.dbtr_agt, f"{tp}/DbtrAgt", tx_id),
            creditor_name=tx.cdtr.nm, creditor_account=_account_id(tx.cdtr_acct),
            debtor_name=tx.dbtr.nm, debtor_account=_account_id(tx.dbtr_acct),
            mandate_id=mandate.mndt_id if mandate is not None else None,
            remittance_info=_joined(tx.rmt_inf.ustrd) if tx.rmt_inf is not None else None))
    total = sum(t.amount_fen for t in out)
    _total(hdr.ttl_intr_bk_sttlm_amt, total, f"{base}/GrpHdr/TtlIntrBkSttlmAmt")
    _control_sum(hdr.ctrl_sum, total, f"{base}/GrpHdr/CtrlSum")
    return out


# --- pacs.002: status reports -----------------------------------------------------------------

STATUS_REPORT_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "original_msg_id": "OrgnlGrpInf/OrgnlMsgId",
    "original_message_type": "OrgnlGrpInf/OrgnlMsgNmId",
    "original_tx_id": "OrgnlTxId",
    "status": "TxSts",
    "reason_code": "StsRsnInf/Rsn/Cd",
    "additional_info": "StsRsnInf/AddtlInf",
}
_GROUP_STATUS_PATHS: Final[Mapping[str, str]] = {
    **STATUS_REPORT_PATHS,
    "original_msg_id": "OrgnlMsgId",
    "original_message_type": "OrgnlMsgNmId",
    "status": "GrpSts",
}


def _status_reason(m: Any, code: str | None, info: str | None) -> list[Any]:
    if code is None and info is None:
        return []
    return [m.StatusReasonInformation12(
        rsn=m.StatusReason6Choice(cd=code) if code is not None else None,
        addtl_inf=_lines(info, _ADDTL))]


def build_pacs002(reports: StatusReport | Sequence[StatusReport]) -> bytes:
    """pacs.002.001.10 (ccms.900, beps.122/128): reports sharing ``msg_id`` and
    ``created_at``. A report without ``original_tx_id`` becomes an ``OrgnlGrpInfAndSts`` with
    ``GrpSts``; the others become ``TxInfAndSts`` (each with its ``OrgnlGrpInf``)."""
    items = _batch(reports, StatusReport, ("msg_id", "created_at"))
    m = p002
    first = items[0]
    doc = m.Document(fito_fipmt_sts_rpt=m.FitoFipaymentStatusReportV10(
        grp_hdr=m.GroupHeader91(msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at)),
        orgnl_grp_inf_and_sts=[
            m.OriginalGroupHeader17(
                orgnl_msg_id=r.original_msg_id, orgnl_msg_nm_id=r.original_message_type,
                grp_sts=r.status,
                sts_rsn_inf=_status_reason(m, r.reason_code, r.additional_info))
            for r in items if r.original_tx_id is None
        ],
        tx_inf_and_sts=[
            m.PaymentTransaction110(
                orgnl_grp_inf=m.OriginalGroupInformation29(
                    orgnl_msg_id=r.original_msg_id, orgnl_msg_nm_id=r.original_message_type),
                orgnl_tx_id=r.original_tx_id, tx_sts=r.status,
                sts_rsn_inf=_status_reason(m, r.reason_code, r.additional_info))
            for r in items if r.original_tx_id is not None
        ]))
    return serialize(doc, PACS002)


def _status(value: str, path: str, tx_id: str | None) -> PaymentStatus:
    status = _STATUS_BY_NAME.get(value)
    if status is None:
        raise Reject(codes.FF01, f"status {value!r} is not one of "
                     f"{', '.join(_STATUS_BY_NAME)}", path, tx_id=tx_id)
    return status


def _from_pacs002(doc: p002.Document) -> list[StatusReport]:
    base = "/Document/FIToFIPmtStsRpt"
    msg = doc.fito_fipmt_sts_rpt
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    out: list[StatusReport] = []
    groups = msg.orgnl_grp_inf_and_sts
    for i, grp in enumerate(groups, 1):
        if grp.grp_sts is None:
            continue
        gp = _item_path(base, "OrgnlGrpInfAndSts", i, len(groups))
        code, info = _reason(grp.sts_rsn_inf)
        out.append(_make(
            StatusReport, _GROUP_STATUS_PATHS, base, gp, None,
            msg_id=hdr.msg_id, created_at=created_at, original_msg_id=grp.orgnl_msg_id,
            original_message_type=grp.orgnl_msg_nm_id, original_tx_id=None,
            status=_status(grp.grp_sts, f"{gp}/GrpSts", None), reason_code=code,
            additional_info=info))
    for i, tx in enumerate(msg.tx_inf_and_sts, 1):
        tp = _item_path(base, "TxInfAndSts", i, len(msg.tx_inf_and_sts))
        tx_id = _required(tx.orgnl_tx_id, "OrgnlTxId", f"{tp}/OrgnlTxId")
        if tx.orgnl_grp_inf is not None:
            original = (tx.orgnl_grp_inf.orgnl_msg_id, tx.orgnl_grp_inf.orgnl_msg_nm_id)
        elif len(groups) == 1:
            original = (groups[0].orgnl_msg_id, groups[0].orgnl_msg_nm_id)
        else:
            raise Reject(codes.FF01, "OrgnlGrpInf is required when the report does not name "
                         "exactly one original message", f"{tp}/OrgnlGrpInf", tx_id=tx_id)
        code, info = _reason(tx.sts_rsn_inf)
        out.append(_make(
            StatusReport, STATUS_REPORT_PATHS, base, tp, tx_id,
            msg_id=hdr.msg_id, created_at=created_at, original_msg_id=original[0],
            original_message_type=original[1], original_tx_id=tx_id,
            status=_status(_required(tx.tx_sts, "TxSts", f"{tp}/TxSts", tx_id),
                           f"{tp}/TxSts", tx_id),
            reason_code=code, additional_info=info))
    if not out:
        raise Reject(codes.FF01, "the report carries no status: GrpSts or TxInfAndSts/TxSts "
                     "is required", f"{base}/TxInfAndSts")
    return out


# --- pacs.028: status requests ---------------------------------------------------------------

STATUS_REQUEST_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "requesting_participant": "/GrpHdr/InstgAgt/FinInstnId/ClrSysMmbId/MmbId",
    "instructed_agent_code": "/GrpHdr/InstdAgt/FinInstnId/ClrSysMmbId/MmbId",
    "request_id": "StsReqId",
    "original_msg_id": "OrgnlGrpInf/OrgnlMsgId",
    "original_message_type": "OrgnlGrpInf/OrgnlMsgNmId",
    "original_end_to_end_id": "OrgnlEndToEndId",
    "original_tx_id": "OrgnlTxId",
}


def build_pacs028(requests: StatusRequest | Sequence[StatusRequest]) -> bytes:
    """pacs.028.001.03 (ccms.316): status requests sharing ``msg_id``, ``created_at`` and the
    agents (``GrpHdr/InstgAgt`` asks, ``GrpHdr/InstdAgt`` answers); one ``TxInf`` each, with
    its own ``OrgnlGrpInf``."""
    items = _batch(requests, StatusRequest, ("msg_id", "created_at", "requesting_participant",
                                             "instructed_agent_code"))
    m = p028
    first = items[0]
    doc = m.Document(fito_fipmt_sts_req=m.FitoFipaymentStatusRequestV03(
        grp_hdr=m.GroupHeader91(
            msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at),
            instg_agt=_agent(m, first.requesting_participant),
            instd_agt=_agent(m, first.instructed_agent_code)),
        tx_inf=[
            m.PaymentTransaction113(
                sts_req_id=r.request_id,
                orgnl_grp_inf=m.OriginalGroupInformation29(
                    orgnl_msg_id=r.original_msg_id, orgnl_msg_nm_id=r.original_message_type),
                orgnl_end_to_end_id=r.original_end_to_end_id,
                orgnl_tx_id=r.original_tx_id)
            for r in items
        ]))
    return serialize(doc, PACS028)


def _from_pacs028(doc: p028.Document) -> list[StatusRequest]:
    base = "/Document/FIToFIPmtStsReq"
    msg = doc.fito_fipmt_sts_req
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    requester = _agent_code(hdr.instg_agt, f"{base}/GrpHdr/InstgAgt", None)
    instructed = (CNAPS_CENTRE_CODE if hdr.instd_agt is None
                  else _agent_code(hdr.instd_agt, f"{base}/GrpHdr/InstdAgt", None))
    if not msg.tx_inf:
        raise Reject(codes.FF01, "TxInf is required: which transaction to report on",
                     f"{base}/TxInf")
    groups = msg.orgnl_grp_inf
    out: list[StatusRequest] = []
    for i, tx in enumerate(msg.tx_inf, 1):
        tp = _item_path(base, "TxInf", i, len(msg.tx_inf))
        tx_id = _required(tx.orgnl_tx_id, "OrgnlTxId", f"{tp}/OrgnlTxId")
        if tx.orgnl_grp_inf is not None:
            original = (tx.orgnl_grp_inf.orgnl_msg_id, tx.orgnl_grp_inf.orgnl_msg_nm_id)
        elif len(groups) == 1:
            original = (groups[0].orgnl_msg_id, groups[0].orgnl_msg_nm_id)
        else:
            raise Reject(codes.FF01, "OrgnlGrpInf is required when the request does not name "
                         "exactly one original message", f"{tp}/OrgnlGrpInf", tx_id=tx_id)
        out.append(_make(
            StatusRequest, STATUS_REQUEST_PATHS, base, tp, tx_id,
            msg_id=hdr.msg_id, created_at=created_at, requesting_participant=requester,
            instructed_agent_code=instructed, request_id=tx.sts_req_id,
            original_msg_id=original[0], original_message_type=original[1],
            original_end_to_end_id=tx.orgnl_end_to_end_id, original_tx_id=tx_id))
    return out


# --- pacs.004: returns ------------------------------------------------------------------------

RETURN_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "return_id": "RtrId",
    "system": "OrgnlTxRef/PmtTpInf/SvcLvl/Prtry",
    "original_msg_id": "OrgnlGrpInf/OrgnlMsgId",
    "original_message_type": "OrgnlGrpInf/OrgnlMsgNmId",
    "original_end_to_end_id": "OrgnlEndToEndId",
    "original_tx_id": "OrgnlTxId",
    "returned_amount_fen": "RtrdIntrBkSttlmAmt",
    "currency": "RtrdIntrBkSttlmAmt/@Ccy",
    "settlement_date": "IntrBkSttlmDt",
    "returning_agent_code": "InstgAgt/FinInstnId/ClrSysMmbId/MmbId",
    "receiving_agent_code": "InstdAgt/FinInstnId/ClrSysMmbId/MmbId",
    "reason_code": "RtrRsnInf/Rsn/Cd",
    "additional_info": "RtrRsnInf/AddtlInf",
}


def build_pacs004(returns: Return | Sequence[Return]) -> bytes:
    """pacs.004.001.09 (退汇) for returns sharing ``msg_id`` and ``created_at``."""
    items = _batch(returns, Return, ("msg_id", "created_at"))
    _unique([r.return_id for r in items], "return_id")
    m = p004
    first = items[0]
    doc = m.Document(pmt_rtr=m.PaymentReturnV09(
        grp_hdr=m.GroupHeader90(
            msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at), nb_of_txs=str(len(items)),
            ttl_rtrd_intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                value=fen_to_decimal(sum(r.returned_amount_fen for r in items)), ccy=CURRENCY),
            sttlm_inf=m.SettlementInstruction7(sttlm_mtd=m.SettlementMethod1Code.CLRG)),
        tx_inf=[
            m.PaymentTransaction112(
                rtr_id=r.return_id,
                orgnl_grp_inf=m.OriginalGroupInformation29(
                    orgnl_msg_id=r.original_msg_id, orgnl_msg_nm_id=r.original_message_type),
                orgnl_end_to_end_id=r.original_end_to_end_id,
                orgnl_tx_id=r.original_tx_id,
                rtrd_intr_bk_sttlm_amt=m.ActiveCurrencyAndAmount(
                    value=fen_to_decimal(r.returned_amount_fen), ccy=r.currency),
                intr_bk_sttlm_dt=_xd(r.settlement_date),
                instg_agt=_agent(m, r.returning_agent_code),
                instd_agt=_agent(m, r.receiving_agent_code),
                rtr_rsn_inf=[m.PaymentReturnReason6(
                    rsn=m.ReturnReason5Choice(cd=r.reason_code),
                    addtl_inf=_lines(r.additional_info, _ADDTL))],
                orgnl_tx_ref=m.OriginalTransactionReference28(
                    pmt_tp_inf=_payment_type(m, m.PaymentTypeInformation27, r.system)),
            )
            for r in items
        ]))
    return serialize(doc, PACS004)


def _from_pacs004(doc: p004.Document) -> list[Return]:
    base = "/Document/PmtRtr"
    msg = doc.pmt_rtr
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    _count(hdr.nb_of_txs, len(msg.tx_inf), f"{base}/GrpHdr/NbOfTxs")
    if not msg.tx_inf:
        raise Reject(codes.FF01, "TxInf is required", f"{base}/TxInf")
    out: list[Return] = []
    seen: set[str] = set()
    for i, tx in enumerate(msg.tx_inf, 1):
        tp = _item_path(base, "TxInf", i, len(msg.tx_inf))
        return_id = _required(tx.rtr_id, "RtrId", f"{tp}/RtrId")
        tx_id = _required(tx.orgnl_tx_id, "OrgnlTxId", f"{tp}/OrgnlTxId", return_id)
        _no_duplicates(return_id, seen, f"{tp}/RtrId")
        if tx.orgnl_grp_inf is not None:
            original = (tx.orgnl_grp_inf.orgnl_msg_id, tx.orgnl_grp_inf.orgnl_msg_nm_id)
        elif msg.orgnl_grp_inf is not None:
            original = (msg.orgnl_grp_inf.orgnl_msg_id, msg.orgnl_grp_inf.orgnl_msg_nm_id)
        else:
            raise Reject(codes.FF01, "OrgnlGrpInf is required", f"{tp}/OrgnlGrpInf",
                         tx_id=return_id)
        code, info = _reason(tx.rtr_rsn_inf or (msg.orgnl_grp_inf.rtr_rsn_inf
                                                 if msg.orgnl_grp_inf is not None else []))
        ref = tx.orgnl_tx_ref
        out.append(_make(
            Return, RETURN_PATHS, base, tp, return_id,
            msg_id=hdr.msg_id, created_at=created_at, return_id=return_id,
            system=_system([(ref.pmt_tp_inf if ref is not None else None,
                             f"{tp}/OrgnlTxRef/PmtTpInf")], f"{tp}/OrgnlTxRef", return_id),
            original_msg_id=original[0], original_message_type=original[1],
            original_end_to_end_id=tx.orgnl_end_to_end_id, original_tx_id=tx_id,
            returned_amount_fen=_fen(tx.rtrd_intr_bk_sttlm_amt, f"{tp}/RtrdIntrBkSttlmAmt",
                                     return_id),
            settlement_date=_date(tx.intr_bk_sttlm_dt or hdr.intr_bk_sttlm_dt,
                                  f"{tp}/IntrBkSttlmDt", return_id),
            returning_agent_code=_agent_code(tx.instg_agt or hdr.instg_agt, f"{tp}/InstgAgt",
                                             return_id),
            receiving_agent_code=_agent_code(tx.instd_agt or hdr.instd_agt, f"{tp}/InstdAgt",
                                             return_id),
            reason_code=_required(code, "RtrRsnInf/Rsn/Cd", f"{tp}/RtrRsnInf/Rsn/Cd",
                                  return_id),
            additional_info=info))
    total = sum(r.returned_amount_fen for r in out)
    _total(hdr.ttl_rtrd_intr_bk_sttlm_amt, total, f"{base}/GrpHdr/TtlRtrdIntrBkSttlmAmt")
    _control_sum(hdr.ctrl_sum, total, f"{base}/GrpHdr/CtrlSum")
    return out


# --- camt.056: cancellation requests ----------------------------------------------------------

CANCEL_REQUEST_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/Assgnmt/Id",
    "created_at": "/Assgnmt/CreDtTm",
    "requesting_participant": "/Assgnmt/Assgnr/Agt/FinInstnId/ClrSysMmbId/MmbId",
    "assignee_code": "/Assgnmt/Assgne/Agt/FinInstnId/ClrSysMmbId/MmbId",
    "original_msg_id": "OrgnlGrpInf/OrgnlMsgId",
    "original_message_type": "OrgnlGrpInf/OrgnlMsgNmId",
    "original_end_to_end_id": "OrgnlEndToEndId",
    "original_tx_id": "OrgnlTxId",
    "reason_code": "CxlRsnInf/Rsn/Cd",
    "additional_info": "CxlRsnInf/AddtlInf",
}


def build_camt056(requests: CancelRequest | Sequence[CancelRequest]) -> bytes:
    """camt.056.001.08 (ccms.307): requests sharing the assignment (``msg_id``,
    ``created_at``, ``requesting_participant``, ``assignee_code``)."""
    items = _batch(requests, CancelRequest,
                   ("msg_id", "created_at", "requesting_participant", "assignee_code"))
    m = c056
    first = items[0]
    doc = m.Document(fito_fipmt_cxl_req=m.FitoFipaymentCancellationRequestV08(
        assgnmt=m.CaseAssignment5(
            id=first.msg_id,
            assgnr=m.Party40Choice(agt=_agent(m, first.requesting_participant)),
            assgne=m.Party40Choice(agt=_agent(m, first.assignee_code)),
            cre_dt_tm=_xdt(first.created_at)),
        ctrl_data=m.ControlData1(nb_of_txs=str(len(items))),
        undrlyg=[m.UnderlyingTransaction23(tx_inf=[
            m.PaymentTransaction106(
                orgnl_grp_inf=m.OriginalGroupInformation29(
                    orgnl_msg_id=r.original_msg_id, orgnl_msg_nm_id=r.original_message_type),
                orgnl_end_to_end_id=r.original_end_to_end_id,
                orgnl_tx_id=r.original_tx_id,
                cxl_rsn_inf=[m.PaymentCancellationReason5(
                    rsn=m.CancellationReason33Choice(cd=r.reason_code),
                    addtl_inf=_lines(r.additional_info, _ADDTL))])
            for r in items
        ])]))
    return serialize(doc, CAMT056)


def _from_camt056(doc: c056.Document) -> list[CancelRequest]:
    base = "/Document/FIToFIPmtCxlReq"
    msg = doc.fito_fipmt_cxl_req
    assignment = msg.assgnmt
    created_at = _datetime(assignment.cre_dt_tm, f"{base}/Assgnmt/CreDtTm")
    requester = _party_agent_code(assignment.assgnr, f"{base}/Assgnmt/Assgnr", None)
    assignee = _party_agent_code(assignment.assgne, f"{base}/Assgnmt/Assgne", None)
    out: list[CancelRequest] = []
    for u, under in enumerate(msg.undrlyg, 1):
        up = _item_path(base, "Undrlyg", u, len(msg.undrlyg))
        for i, tx in enumerate(under.tx_inf, 1):
            tp = _item_path(up, "TxInf", i, len(under.tx_inf))
            tx_id = _required(tx.orgnl_tx_id, "OrgnlTxId", f"{tp}/OrgnlTxId")
            grp = tx.orgnl_grp_inf or under.orgnl_grp_inf_and_cxl
            if grp is None:
                raise Reject(codes.FF01, "OrgnlGrpInf is required", f"{tp}/OrgnlGrpInf",
                             tx_id=tx_id)
            code, info = _reason(tx.cxl_rsn_inf or (under.orgnl_grp_inf_and_cxl.cxl_rsn_inf
                                                    if under.orgnl_grp_inf_and_cxl else []))
            out.append(_make(
                CancelRequest, CANCEL_REQUEST_PATHS, base, tp, tx_id,
                msg_id=assignment.id, created_at=created_at,
                requesting_participant=requester, assignee_code=assignee,
                original_msg_id=grp.orgnl_msg_id, original_message_type=grp.orgnl_msg_nm_id,
                original_end_to_end_id=tx.orgnl_end_to_end_id, original_tx_id=tx_id,
                reason_code=_required(code, "CxlRsnInf/Rsn/Cd", f"{tp}/CxlRsnInf/Rsn/Cd",
                                      tx_id),
                additional_info=info))
    if not out:
        raise Reject(codes.FF01, "Undrlyg/TxInf is required: which payment to cancel",
                     f"{base}/Undrlyg/TxInf")
    if msg.ctrl_data is not None:
        _count(msg.ctrl_data.nb_of_txs, len(out), f"{base}/CtrlData/NbOfTxs")
    return out


# --- camt.029: answers to cancellation requests -----------------------------------------------

CANCEL_ANSWER_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/Assgnmt/Id",
    "created_at": "/Assgnmt/CreDtTm",
    "answering_participant": "/Assgnmt/Assgnr/Agt/FinInstnId/ClrSysMmbId/MmbId",
    "requesting_participant": "/Assgnmt/Assgne/Agt/FinInstnId/ClrSysMmbId/MmbId",
    "cancel_request_id": "/RslvdCase/Id",
    "original_msg_id": "OrgnlGrpInf/OrgnlMsgId",
    "original_message_type": "OrgnlGrpInf/OrgnlMsgNmId",
    "original_tx_id": "OrgnlTxId",
    "accepted": "TxCxlSts",
    "reason_code": "CxlStsRsnInf/Rsn/Cd",
    "additional_info": "CxlStsRsnInf/AddtlInf",
}


def build_camt029(answers: CancelAnswer | Sequence[CancelAnswer]) -> bytes:
    """camt.029.001.09 (ccms.308): answers to one cancellation request (sharing ``msg_id``,
    ``created_at``, the participants and ``cancel_request_id``). ``Sts/Conf`` is CNCL when
    all are accepted, RJCR when none is, PECR (partially executed) otherwise."""
    items = _batch(answers, CancelAnswer, ("msg_id", "created_at", "answering_participant",
                                           "requesting_participant", "cancel_request_id"))
    m = c029
    first = items[0]
    accepted = sum(a.accepted for a in items)
    confirmation = "CNCL" if accepted == len(items) else "RJCR" if accepted == 0 else "PECR"
    doc = m.Document(rsltn_of_invstgtn=m.ResolutionOfInvestigationV09(
        assgnmt=m.CaseAssignment5(
            id=first.msg_id,
            assgnr=m.Party40Choice(agt=_agent(m, first.answering_participant)),
            assgne=m.Party40Choice(agt=_agent(m, first.requesting_participant)),
            cre_dt_tm=_xdt(first.created_at)),
        rslvd_case=m.Case5(id=first.cancel_request_id,
                           cretr=m.Party40Choice(agt=_agent(m, first.requesting_participant))),
        sts=m.InvestigationStatus5Choice(conf=confirmation),
        cxl_dtls=[m.UnderlyingTransaction22(tx_inf_and_sts=[
            m.PaymentTransaction102(
                orgnl_grp_inf=m.OriginalGroupInformation29(
                    orgnl_msg_id=a.original_msg_id, orgnl_msg_nm_id=a.original_message_type),
                orgnl_tx_id=a.original_tx_id,
                tx_cxl_sts=(m.CancellationIndividualStatus1Code.ACCR if a.accepted
                            else m.CancellationIndividualStatus1Code.RJCR),
                cxl_sts_rsn_inf=([m.CancellationStatusReason4(
                    rsn=(m.CancellationStatusReason3Choice(cd=a.reason_code)
                         if a.reason_code is not None else None),
                    addtl_inf=_lines(a.additional_info, _ADDTL))]
                    if a.reason_code is not None or a.additional_info is not None else []))
            for a in items
        ])]))
    return serialize(doc, CAMT029)


def _from_camt029(doc: c029.Document) -> list[CancelAnswer]:
    base = "/Document/RsltnOfInvstgtn"
    msg = doc.rsltn_of_invstgtn
    assignment = msg.assgnmt
    created_at = _datetime(assignment.cre_dt_tm, f"{base}/Assgnmt/CreDtTm")
    answering = _party_agent_code(assignment.assgnr, f"{base}/Assgnmt/Assgnr", None)
    requesting = _party_agent_code(assignment.assgne, f"{base}/Assgnmt/Assgne", None)
    if msg.rslvd_case is None:
        raise Reject(codes.FF01, "RslvdCase/Id (the cancellation request) is required",
                     f"{base}/RslvdCase")
    conf = msg.sts.conf
    out: list[CancelAnswer] = []
    for u, details in enumerate(msg.cxl_dtls, 1):
        up = _item_path(base, "CxlDtls", u, len(msg.cxl_dtls))
        for i, tx in enumerate(details.tx_inf_and_sts, 1):
            tp = _item_path(up, "TxInfAndSts", i, len(details.tx_inf_and_sts))
            tx_id = _required(tx.orgnl_tx_id, "OrgnlTxId", f"{tp}/OrgnlTxId")
            grp = tx.orgnl_grp_inf or details.orgnl_grp_inf_and_sts
            if grp is None:
                raise Reject(codes.FF01, "OrgnlGrpInf is required", f"{tp}/OrgnlGrpInf",
                             tx_id=tx_id)
            status = tx.tx_cxl_sts.value if tx.tx_cxl_sts is not None else None
            if status is None:
                status = {"CNCL": "ACCR", "RJCR": "RJCR"}.get(conf or "")
            if status not in ("ACCR", "RJCR"):
                raise Reject(codes.FF01, "the answer must accept (TxCxlSts ACCR / Conf CNCL) or "
                             "reject (RJCR) the cancellation", f"{tp}/TxCxlSts", tx_id=tx_id)
            code, info = _reason(tx.cxl_sts_rsn_inf)
            out.append(_make(
                CancelAnswer, CANCEL_ANSWER_PATHS, base, tp, tx_id,
                msg_id=assignment.id, created_at=created_at, answering_participant=answering,
                requesting_participant=requesting, cancel_request_id=msg.rslvd_case.id,
                original_msg_id=grp.orgnl_msg_id, original_message_type=grp.orgnl_msg_nm_id,
                original_tx_id=tx_id, accepted=status == "ACCR", reason_code=code,
                additional_info=info))
    if not out:
        raise Reject(codes.FF01, "CxlDtls/TxInfAndSts is required", f"{base}/CxlDtls")
    return out


# --- camt.053 / camt.052: statements and intraday reports -------------------------------------

STATEMENT_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "statement_id": "Id",
    "account": "Acct/Id/Othr/Id",
    "business_date": "Bal/Dt/Dt",
    "opening_balance_fen": "Bal[Tp/CdOrPrtry/Cd='OPBD']/Amt",
    "closing_balance_fen": "Bal[Tp/CdOrPrtry/Cd='CLBD']/Amt",
    "currency": "Acct/Ccy",
    "entries": "Ntry",
}
#: camt.052: the closing balance is the interim booked balance.
REPORT_PATHS: Final[Mapping[str, str]] = {
    **STATEMENT_PATHS,
    "closing_balance_fen": "Bal[Tp/CdOrPrtry/Cd='ITBD']/Amt",
}
STATEMENT_ENTRY_PATHS: Final[Mapping[str, str]] = {
    "reference": "NtryRef",
    "amount_fen": "Amt",
    "direction": "CdtDbtInd",
    "booked_at": "BookgDt/DtTm",
    "transaction_code": "BkTxCd/Prtry/Cd",
}


def _balance(m: Any, code: str, amount_fen: int, on: date) -> Any:
    return m.CashBalance8(
        tp=m.BalanceType13(cd_or_prtry=m.BalanceType10Choice(cd=code)),
        amt=m.ActiveOrHistoricCurrencyAndAmount(value=fen_to_decimal(abs(amount_fen)),
                                                 ccy=CURRENCY),
        cdt_dbt_ind=m.CreditDebitCode.DBIT if amount_fen < 0 else m.CreditDebitCode.CRDT,
        dt=m.DateAndDateTime2Choice(dt=_xd(on)))


def _entry(m: Any, e: StatementEntry) -> Any:
    return m.ReportEntry10(
        ntry_ref=e.reference,
        amt=m.ActiveOrHistoricCurrencyAndAmount(value=fen_to_decimal(e.amount_fen),
                                                 ccy=CURRENCY),
        cdt_dbt_ind=m.CreditDebitCode.CRDT if e.direction == "credit" else m.CreditDebitCode.DBIT,
        sts=m.EntryStatus1Choice(cd="BOOK"),
        bookg_dt=m.DateAndDateTime2Choice(dt_tm=_xdt(e.booked_at)),
        bk_tx_cd=m.BankTransactionCodeStructure4(
            prtry=m.ProprietaryBankTransactionCodeStructure1(cd=e.transaction_code,
                                                              issr=CLEARING_SYSTEM)))


def _report_fields(m: Any, s: Statement, closing_code: str) -> dict[str, Any]:
    return {
        "id": s.statement_id,
        "cre_dt_tm": _xdt(s.created_at),
        "acct": m.CashAccount39(
            id=m.AccountIdentification4Choice(othr=m.GenericAccountIdentification1(id=s.account)),
            ccy=s.currency),
        "bal": [_balance(m, "OPBD", s.opening_balance_fen, s.business_date),
                _balance(m, closing_code, s.closing_balance_fen, s.business_date)],
        "ntry": [_entry(m, e) for e in s.entries],
    }


def build_camt053(statements: Statement | Sequence[Statement]) -> bytes:
    """camt.053.001.08: end-of-day settlement account statements sharing ``msg_id`` and
    ``created_at``. Balances OPBD and CLBD, entries booked (BOOK)."""
    items = _batch(statements, Statement, ("msg_id", "created_at"))
    _unique([s.statement_id for s in items], "statement_id")
    m = c053
    doc = m.Document(bk_to_cstmr_stmt=m.BankToCustomerStatementV08(
        grp_hdr=m.GroupHeader81(msg_id=items[0].msg_id, cre_dt_tm=_xdt(items[0].created_at)),
        stmt=[m.AccountStatement9(**_report_fields(m, s, "CLBD")) for s in items]))
    return serialize(doc, CAMT053)


def build_camt052(reports: Statement | Sequence[Statement]) -> bytes:
    """camt.052.001.08: intraday account reports, the same data as a statement; the closing
    balance is the interim booked balance (ITBD) at ``created_at``."""
    items = _batch(reports, Statement, ("msg_id", "created_at"))
    _unique([s.statement_id for s in items], "statement_id")
    m = c052
    doc = m.Document(bk_to_cstmr_acct_rpt=m.BankToCustomerAccountReportV08(
        grp_hdr=m.GroupHeader81(msg_id=items[0].msg_id, cre_dt_tm=_xdt(items[0].created_at)),
        rpt=[m.AccountReport25(**_report_fields(m, s, "ITBD")) for s in items]))
    return serialize(doc, CAMT052)


def _signed_balance(bal: Any, path: str) -> int:
    fen = _fen(bal.amt, f"{path}/Amt", None, allow_zero=True)
    return -fen if bal.cdt_dbt_ind.value == "DBIT" else fen


def _balance_date(bal: Any, path: str) -> date:
    if bal.dt.dt is not None:
        return _date(bal.dt.dt, f"{path}/Dt/Dt", None)
    return _datetime(bal.dt.dt_tm, f"{path}/Dt/DtTm").astimezone(BEIJING).date()


def _from_reports(msg_id: str, created_at: datetime, reports: Sequence[Any], base: str,
                  name: str, closing_codes: Sequence[str],
                  paths: Mapping[str, str]) -> list[Statement]:
    out: list[Statement] = []
    seen: set[str] = set()
    for r, report in enumerate(reports, 1):
        rp = _item_path(base, name, r, len(reports))
        if report.id in seen:  # what we read we must be able to write: ids are unique
            raise Reject(codes.AM05, f"statement id {report.id} appears twice in the message",
                         f"{rp}/Id")
        seen.add(report.id)
        balances: dict[str, tuple[Any, str]] = {}
        for b, bal in enumerate(report.bal, 1):
            code = bal.tp.cd_or_prtry.cd or bal.tp.cd_or_prtry.prtry
            balances.setdefault(code, (bal, _item_path(rp, "Bal", b, len(report.bal))))
        if "OPBD" not in balances:
            raise Reject(codes.FF01, "the opening booked balance (Bal with Tp/CdOrPrtry/Cd "
                         "OPBD) is required", f"{rp}/Bal")
        closing = next((balances[c] for c in closing_codes if c in balances), None)
        if closing is None:
            raise Reject(codes.FF01, "the closing balance (Bal with Tp/CdOrPrtry/Cd "
                         f"{' or '.join(closing_codes)}) is required", f"{rp}/Bal")
        opening = balances["OPBD"]
        if report.acct.ccy is not None and report.acct.ccy != CURRENCY:
            raise Reject(codes.AM03, f"account currency {report.acct.ccy} is not CNY",
                         f"{rp}/Acct/Ccy")
        account = _account_id(report.acct)
        entries: list[StatementEntry] = []
        for n, ntry in enumerate(report.ntry, 1):
            ep = _item_path(rp, "Ntry", n, len(report.ntry))
            if (ntry.sts.cd or ntry.sts.prtry) != "BOOK":
                continue  # pending or informational entries do not move the booked balance
            booked = ntry.bookg_dt
            if booked is None or (booked.dt_tm is None and booked.dt is None):
                raise Reject(codes.DT01, "BookgDt/DtTm is required", f"{ep}/BookgDt/DtTm")
            booked_at = (_datetime(booked.dt_tm, f"{ep}/BookgDt/DtTm") if booked.dt_tm
                         else datetime.combine(_date(booked.dt, f"{ep}/BookgDt/Dt", None),
                                               time(), BEIJING))
            tx_code = ntry.bk_tx_cd.prtry.cd if ntry.bk_tx_cd.prtry is not None else (
                ntry.bk_tx_cd.domn.cd if ntry.bk_tx_cd.domn is not None else "PMNT")
            entries.append(_make(
                StatementEntry, STATEMENT_ENTRY_PATHS, base, ep, None,
                reference=_required(ntry.ntry_ref, "NtryRef", f"{ep}/NtryRef"),
                amount_fen=_fen(ntry.amt, f"{ep}/Amt", None),
                direction="credit" if ntry.cdt_dbt_ind.value == "CRDT" else "debit",
                booked_at=booked_at, transaction_code=tx_code))
        out.append(_make(
            Statement, paths, base, rp, None,
            msg_id=msg_id, created_at=created_at, statement_id=report.id, account=account,
            business_date=_balance_date(*opening),
            opening_balance_fen=_signed_balance(*opening),
            closing_balance_fen=_signed_balance(*closing),
            entries=tuple(entries)))
    return out


def _from_camt053(doc: c053.Document) -> list[Statement]:
    base = "/Document/BkToCstmrStmt"
    msg = doc.bk_to_cstmr_stmt
    created_at = _datetime(msg.grp_hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    return _from_reports(msg.grp_hdr.msg_id, created_at, msg.stmt, base, "Stmt", ("CLBD",),
                         STATEMENT_PATHS)


def _from_camt052(doc: c052.Document) -> list[Statement]:
    base = "/Document/BkToCstmrAcctRpt"
    msg = doc.bk_to_cstmr_acct_rpt
    created_at = _datetime(msg.grp_hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    return _from_reports(msg.grp_hdr.msg_id, created_at, msg.rpt, base, "Rpt",
                         ("ITBD", "CLBD"), REPORT_PATHS)


# --- camt.060: requests for a report ---------------------------------------------------------

REPORT_REQUEST_PATHS: Final[Mapping[str, str]] = {
    "msg_id": "/GrpHdr/MsgId",
    "created_at": "/GrpHdr/CreDtTm",
    "request_id": "Id",
    "requested_message": "ReqdMsgNmId",
    "account": "Acct/Id/Othr/Id",
    "account_owner": "AcctOwnr/Agt/FinInstnId/ClrSysMmbId/MmbId",
    "from_date": "RptgPrd/FrToDt/FrDt",
    "to_date": "RptgPrd/FrToDt/ToDt",
}


def build_camt060(requests: ReportRequest | Sequence[ReportRequest]) -> bytes:
    """camt.060.001.05: requests for reports sharing ``msg_id`` and ``created_at``; one
    ``RptgReq`` each, its period (when given) of type ``ALLL``."""
    items = _batch(requests, ReportRequest, ("msg_id", "created_at"))
    m = c060
    first = items[0]
    doc = m.Document(acct_rptg_req=m.AccountReportingRequestV05(
        grp_hdr=m.GroupHeader77(msg_id=first.msg_id, cre_dt_tm=_xdt(first.created_at)),
        rptg_req=[
            m.ReportingRequest5(
                id=r.request_id, reqd_msg_nm_id=r.requested_message,
                acct=_account(m, r.account),
                acct_ownr=m.Party40Choice(agt=_agent(m, r.account_owner)),
                rptg_prd=None if r.from_date is None else m.ReportingPeriod2(
                    fr_to_dt=m.DatePeriodDetails1(
                        fr_dt=_xd(r.from_date),
                        to_dt=None if r.to_date is None else _xd(r.to_date)),
                    tp=m.QueryType3Code.ALLL))
            for r in items
        ]))
    return serialize(doc, CAMT060)


def _from_camt060(doc: c060.Document) -> list[ReportRequest]:
    base = "/Document/AcctRptgReq"
    msg = doc.acct_rptg_req
    hdr = msg.grp_hdr
    created_at = _datetime(hdr.cre_dt_tm, f"{base}/GrpHdr/CreDtTm")
    out: list[ReportRequest] = []
    for i, req in enumerate(msg.rptg_req, 1):
        rp = _item_path(base, "RptgReq", i, len(msg.rptg_req))
        owner = _party_agent_code(req.acct_ownr, f"{rp}/AcctOwnr", req.id)
        period = None if req.rptg_prd is None else req.rptg_prd.fr_to_dt
        from_date = None if period is None else _date(
            period.fr_dt, f"{rp}/RptgPrd/FrToDt/FrDt", req.id)
        to_date = None if period is None or period.to_dt is None else _date(
            period.to_dt, f"{rp}/RptgPrd/FrToDt/ToDt", req.id)
        out.append(_make(
            ReportRequest, REPORT_REQUEST_PATHS, base, rp, req.id,
            msg_id=hdr.msg_id, created_at=created_at, request_id=req.id,
            requested_message=req.reqd_msg_nm_id, account=_account_id(req.acct),
            account_owner=owner, from_date=from_date, to_date=to_date))
    return out


# --- the field map (docs/MESSAGES.md prints it) -----------------------------------------------

_LAYOUT: Final[Mapping[str, tuple[str, str, Mapping[str, str]]]] = {
    PACS008: ("/Document/FIToFICstmrCdtTrf", "CdtTrfTxInf", CREDIT_TRANSFER_PATHS),
    PACS009: ("/Document/FICdtTrf", "CdtTrfTxInf", INSTITUTION_TRANSFER_PATHS),
    PACS003: ("/Document/FIToFICstmrDrctDbt", "DrctDbtTxInf", DIRECT_DEBIT_PATHS),
    PACS002: ("/Document/FIToFIPmtStsRpt", "TxInfAndSts", STATUS_REPORT_PATHS),
    PACS028: ("/Document/FIToFIPmtStsReq", "TxInf", STATUS_REQUEST_PATHS),
    PACS004: ("/Document/PmtRtr", "TxInf", RETURN_PATHS),
    CAMT056: ("/Document/FIToFIPmtCxlReq", "Undrlyg/TxInf", CANCEL_REQUEST_PATHS),
    CAMT029: ("/Document/RsltnOfInvstgtn", "CxlDtls/TxInfAndSts", CANCEL_ANSWER_PATHS),
    CAMT053: ("/Document/BkToCstmrStmt", "Stmt", STATEMENT_PATHS),
    CAMT052: ("/Document/BkToCstmrAcctRpt", "Rpt", REPORT_PATHS),
    CAMT060: ("/Document/AcctRptgReq", "RptgReq", REPORT_REQUEST_PATHS),
}


def field_paths(message_type: str) -> dict[str, str]:
    """Domain field -> absolute XPath (local names) in ``message_type``.

    For pacs.002 these are the transaction-level paths (``TxInfAndSts``); a report on a
    whole message uses ``OrgnlGrpInfAndSts/OrgnlMsgId``, ``OrgnlMsgNmId``, ``GrpSts`` and
    ``StsRsnInf`` instead. Statement entries appear as ``entries[].<field>``.
    """
    base, item, paths = _LAYOUT[message_type]
    out = {name: base + rel if rel.startswith("/") else f"{base}/{item}/{rel}"
           for name, rel in paths.items() if name != "entries"}
    if message_type in (CAMT053, CAMT052):
        out.update({f"entries[].{name}": f"{base}/{item}/Ntry/{rel}"
                    for name, rel in STATEMENT_ENTRY_PATHS.items()})
    return out


# --- decoding entry points --------------------------------------------------------------------

_DECODERS: Final[Mapping[str, tuple[type[Any], Callable[[Any], Sequence[DomainObject]]]]] = {
    PACS008: (p008.Document, _from_pacs008),
    PACS009: (p009.Document, _from_pacs009),
    PACS003: (p003.Document, _from_pacs003),
    PACS002: (p002.Document, _from_pacs002),
    PACS028: (p028.Document, _from_pacs028),
    PACS004: (p004.Document, _from_pacs004),
    CAMT056: (c056.Document, _from_camt056),
    CAMT029: (c029.Document, _from_camt029),
    CAMT053: (c053.Document, _from_camt053),
    CAMT052: (c052.Document, _from_camt052),
    CAMT060: (c060.Document, _from_camt060),
}
#: The message types :func:`parse_inbound` understands.
INBOUND_TYPES: Final = tuple(_DECODERS)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A decoded message: its type, its id and the domain objects it carries (in order)."""

    message_type: str
    msg_id: str
    items: tuple[DomainObject, ...]


#: What :func:`parse_inbound` returns.
Inbound = InboundMessage | MessageRejection


def _decode(xml: object, accept: Collection[str], max_bytes: int) -> InboundMessage:
    """The decoding pipeline; raises :class:`MessageError` and nothing else."""
    message_type: str | None = None
    msg_id: str | None = None
    try:
        root = read_document(xml, max_bytes=max_bytes)
        message_type = message_type_of(root)
        msg_id = header_id(root)
        if message_type not in accept:
            raise Reject(codes.FF01, f"a {message_type} message is not accepted here "
                         f"(expected {', '.join(sorted(accept))})", "/Document")
        validate(root, message_type)
        cls, mapper = _DECODERS[message_type]
        try:
            document = bind(root, cls)
        except Exception as exc:  # the XSD accepted it: a binding quirk, still bad input
            raise Reject(codes.FF01, f"cannot read the message: {exc}") from None
        items = tuple(mapper(document))
        return InboundMessage(message_type=message_type, msg_id=items[0].msg_id, items=items)
    except Reject as exc:
        raise MessageError(exc.rejection(message_type=message_type, msg_id=msg_id)) from None
    except Exception as exc:
        raise MessageError(MessageRejection(
            reason_code=codes.FF10,
            message=f"internal error while decoding: {type(exc).__name__}: {exc}"[
                :MAX_REJECTION_MESSAGE],
            message_type=message_type, msg_id=msg_id)) from exc


def parse_inbound(xml: bytes, *, accept: Collection[str] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> Inbound:
    """Decode any supported message; never raises.

    Returns an :class:`InboundMessage` or a :class:`MessageRejection` (reason code, message,
    element path). ``accept`` limits the message types (default: all of
    :data:`INBOUND_TYPES`); ``max_bytes`` refuses larger input before parsing it.
    """
    try:
        return _decode(xml, INBOUND_TYPES if accept is None else accept, max_bytes)
    except MessageError as exc:
        return exc.rejection


def _parse_as(xml: bytes, message_type: str, cls: type[T], max_bytes: int) -> list[T]:
    items = _decode(xml, (message_type,), max_bytes).items
    return [item for item in items if isinstance(item, cls)]


def parse_pacs008(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[CreditTransfer]:
    """The customer transfers of a pacs.008 (one per ``CdtTrfTxInf``); MessageError if bad."""
    return _parse_as(xml, PACS008, CreditTransfer, max_bytes)


def parse_pacs009(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[CreditTransfer]:
    """The institution transfers of a pacs.009; MessageError if bad."""
    return _parse_as(xml, PACS009, CreditTransfer, max_bytes)


def parse_pacs003(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[DirectDebit]:
    """The direct debits of a pacs.003; MessageError if bad."""
    return _parse_as(xml, PACS003, DirectDebit, max_bytes)


def parse_pacs002(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[StatusReport]:
    """The status reports of a pacs.002 (group-level ones first); MessageError if bad."""
    return _parse_as(xml, PACS002, StatusReport, max_bytes)


def parse_pacs028(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[StatusRequest]:
    """The status requests of a pacs.028 (one per ``TxInf``); MessageError if bad."""
    return _parse_as(xml, PACS028, StatusRequest, max_bytes)


def parse_pacs004(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Return]:
    """The returns of a pacs.004; MessageError if bad."""
    return _parse_as(xml, PACS004, Return, max_bytes)


def parse_camt056(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[CancelRequest]:
    """The cancellation requests of a camt.056 (one per ``TxInf``); MessageError if bad."""
    return _parse_as(xml, CAMT056, CancelRequest, max_bytes)


def parse_camt029(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[CancelAnswer]:
    """The cancellation answers of a camt.029; MessageError if bad."""
    return _parse_as(xml, CAMT029, CancelAnswer, max_bytes)


def parse_camt053(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Statement]:
    """The statements of a camt.053; MessageError if bad."""
    return _parse_as(xml, CAMT053, Statement, max_bytes)


def parse_camt052(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Statement]:
    """The intraday reports of a camt.052; MessageError if bad."""
    return _parse_as(xml, CAMT052, Statement, max_bytes)


def parse_camt060(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[ReportRequest]:
    """The report requests of a camt.060 (one per ``RptgReq``); MessageError if bad."""
    return _parse_as(xml, CAMT060, ReportRequest, max_bytes)


# --- rejecting ---------------------------------------------------------------------------------


def rejection_report(rejection: MessageRejection, *, msg_id: str,
                     created_at: datetime) -> StatusReport:
    """The pacs.002 RJCT answering a rejected message, at the group level.

    When the original message id could not be read, ``OrgnlMsgId`` is ``NOTPROVIDED`` (and
    ``OrgnlMsgNmId`` ``UNKNOWN`` when even the type is unknown): the generic rejection.
    """
    info = rejection.message
    if rejection.tx_id:
        info += f" (transaction {rejection.tx_id})"
    if rejection.element_path:
        info += f" at {rejection.element_path}"
    return StatusReport(
        msg_id=msg_id, created_at=created_at,
        original_msg_id=rejection.msg_id or NOT_PROVIDED,
        original_message_type=rejection.message_type or "UNKNOWN",
        original_tx_id=None, status="RJCT", reason_code=rejection.reason_code,
        additional_info=info[:MAX_NOTE])


def build_rejection_pacs002(rejection: MessageRejection, *, msg_id: str,
                            created_at: datetime) -> bytes:
    """pacs.002 bytes with ``GrpSts`` RJCT for a :class:`MessageRejection`."""
    return build_pacs002(rejection_report(rejection, msg_id=msg_id, created_at=created_at))
