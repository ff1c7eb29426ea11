"""Write the sample ISO 20022 messages of this folder (docs/CNAPS.md) for the world of
scenarios/hvps-queue.yaml, with the builders of ``qingsuan.messages``:

    .venv/bin/python examples/generate.py

tests/test_docs.py checks that the files are what this writes and valid against the XSDs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qingsuan.clock import BEIJING
from qingsuan.messages import (
    PACS008,
    PACS009,
    CancelRequest,
    CreditTransfer,
    ReportRequest,
    StatusRequest,
    build_camt056,
    build_camt060,
    build_pacs008,
    build_pacs009,
    build_pacs028,
)

HERE = Path(__file__).resolve().parent
ICBC, CCB = "102100099996", "105100000017"
DAY = dt.date(2026, 11, 26)  # the business day after the story (a Thursday)


def at(hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), BEIJING)


def messages() -> dict[str, bytes]:
    """File name -> message: what each file holds."""
    return {
        # ICBC's customer Wuhan Steel Co pays CCB's Shenzhen Build Co 123,456.00 in HVPS
        "pacs008.xml": build_pacs008(CreditTransfer(
            msg_id="ICBC20261126000001", created_at=at(10, 0),
            end_to_end_id="STEEL-INV-8812", tx_id="ICBC20261126T00001", system="HVPS",
            kind="customer", priority="normal", amount_fen=12_345_600, settlement_date=DAY,
            debtor_agent_code=ICBC, creditor_agent_code=CCB, debtor_name="Wuhan Steel Co",
            debtor_account="6222020200000000030", creditor_name="Shenzhen Build Co",
            creditor_account="6217000010000000045", remittance_info="invoice 8812")),
        # ICBC lends CCB 1,000,000.00 overnight (an institution transfer): more than ICBC's
        # settlement account holds after the story and the pacs.008, so HVPS queues it
        "pacs009.xml": build_pacs009(CreditTransfer(
            msg_id="ICBC20261126000002", created_at=at(10, 5),
            end_to_end_id="MM-LOAN-0001", tx_id="ICBC20261126T00002", system="HVPS",
            kind="institution", priority="urgent", amount_fen=100_000_000,
            settlement_date=DAY, debtor_agent_code=ICBC, creditor_agent_code=CCB)),
        # ICBC cancels the queued pacs.009 (撤销): still queued, so CNAPS accepts
        "camt056.xml": build_camt056(CancelRequest(
            msg_id="ICBC20261126C00001", created_at=at(10, 10), requesting_participant=ICBC,
            original_msg_id="ICBC20261126000002", original_message_type=PACS009,
            original_end_to_end_id="MM-LOAN-0001", original_tx_id="ICBC20261126T00002",
            reason_code="DUPL", additional_info="sent twice by the treasury desk")),
        # ICBC asks CNAPS what became of the steel company's pacs.008 (ccms.316): settled
        "pacs028.xml": build_pacs028(StatusRequest(
            msg_id="ICBC20261126Q00001", created_at=at(10, 15), requesting_participant=ICBC,
            request_id="STS-8812", original_msg_id="ICBC20261126000001",
            original_message_type=PACS008, original_end_to_end_id="STEEL-INV-8812",
            original_tx_id="ICBC20261126T00001")),
        # CCB asks for its statement of the story's day (camt.060): a camt.053 answers
        "camt060.xml": build_camt060(ReportRequest(
            msg_id="CCB20261126R00001", created_at=at(10, 20), request_id="STMT-1125",
            requested_message="camt.053", account=CCB, account_owner=CCB,
            from_date=DAY - dt.timedelta(days=1))),
    }


def main() -> None:
    for name, xml in messages().items():
        (HERE / name).write_bytes(xml)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
