"""Settling direct debits from bank files (R12): collected, returned, rejected, exactly once.

The bank files are generated from Python data (billing/bankfiles/writer.py) in
the shapes of the hand-written samples; debits are put at the bank with the
ORM (collection_builders), independent of batch planning.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from afas_sb.audit.models import AuditEvent
from billing.bankfiles.writer import (
    batch_collection,
    camt053,
    camt054,
    collection,
    debit_return,
    pain002,
    status,
)
from billing.models import BankTransaction, DebitBatch, DirectDebit, Invoice, Mandate, Payment
from billing.services.debit_batches import debit_batches_create
from billing.services.debits import batch_day_for
from billing.services.ledger import invoice_balance
from billing.services.mandates import FRST, RCUR, mandate_sequence_type

from .collection_builders import (
    customer_with_debit,
    debit_at_bank,
    direct_customer,
    open_invoice,
    read,
    submitted_batch,
)

pytestmark = pytest.mark.django_db

MARCH_5 = datetime(2027, 3, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(MARCH_5, tick=False)


def payments(debit) -> list[tuple[str, Decimal]]:
    return sorted(Payment.objects.filter(debit=debit).values_list("kind", "amount"))


# --- collected ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["02", "08"])
def test_r12_collected_debit_pays_invoice_and_makes_mandate_rcur(version):
    _org, mandate, invoice, debit = customer_with_debit()
    assert mandate_sequence_type(mandate) == FRST

    result = read(
        camt053(
            [collection(debit.end_to_end_id, debit.amount, booking_date=date(2027, 3, 4))],
            version=version,
        )
    )

    assert result.created
    assert result.summary["collected"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.COLLECTED
    assert debit.collected_on == date(2027, 3, 4)
    assert payments(debit) == [("direct_debit", Decimal("92.57"))]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice_balance(invoice).owed == Decimal("0.00")
    mandate.refresh_from_db()
    assert mandate_sequence_type(mandate) == RCUR
    assert AuditEvent.objects.filter(action="mandate.first_collected").count() == 1
    row = BankTransaction.objects.get()
    assert row.kind == BankTransaction.Kind.DEBIT_COLLECTED
    assert row.state == BankTransaction.State.PROCESSED
    assert (row.debit, row.invoice) == (debit, invoice)
    assert debit.batch.__class__.objects.get(pk=debit.batch_id).status == "collected"


def test_r12_batch_booking_without_details_settles_every_debit_of_the_batch():
    batch = submitted_batch(message_id="SB-DD-20270304-FRST")
    debits = []
    for name in ("Kapsalon Knip", "Fietsen Van Dam", "Bakkerij Bol"):
        _org, mandate = direct_customer(name)
        debits.append(debit_at_bank(open_invoice(_org), mandate, batch=batch))

    result = read(
        camt053(
            [
                batch_collection(
                    [(d.end_to_end_id, d.amount) for d in debits],
                    message_id="SB-DD-20270304-FRST",
                    payment_information_id="SB-DD-20270304-FRST",
                    with_details=False,
                )
            ]
        )
    )

    assert result.summary["collected"] == 3
    assert set(DirectDebit.objects.values_list("status", flat=True)) == {"collected"}
    assert Payment.objects.filter(kind="direct_debit").count() == 3
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.COLLECTED
    assert batch.settled_at is not None


def test_r12_batch_booking_with_wrong_total_waits_for_staff():
    batch = submitted_batch(message_id="SB-DD-20270304-RCUR")
    _org, mandate = direct_customer()
    debit = debit_at_bank(open_invoice(_org), mandate, batch=batch)

    result = read(
        camt053(
            [
                batch_collection(
                    [(debit.end_to_end_id, "10.00")],
                    message_id="SB-DD-20270304-RCUR",
                    with_details=False,
                )
            ]
        )
    )

    assert result.summary["unmatched"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED
    row = BankTransaction.objects.get()
    assert row.state == BankTransaction.State.UNMATCHED
    assert "klopt niet" in row.note


def test_r12_batch_details_settle_each_debit_by_end_to_end_id():
    batch = submitted_batch()
    debits = []
    for name in ("Kapsalon Knip", "Fietsen Van Dam"):
        _org, mandate = direct_customer(name)
        debits.append(debit_at_bank(open_invoice(_org), mandate, batch=batch))

    result = read(
        camt053([batch_collection([(d.end_to_end_id, d.amount) for d in debits], message_id="X")])
    )

    assert result.summary["collected"] == 2
    assert BankTransaction.objects.count() == 2
    assert Invoice.objects.filter(status="paid").count() == 2


def test_r12_collection_with_other_amount_than_the_debit_waits_for_staff():
    _org, _mandate, _invoice, debit = customer_with_debit()

    result = read(camt053([collection(debit.end_to_end_id, "90.00")]))

    assert result.summary["unmatched"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED
    assert not Payment.objects.exists()


# --- returned ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["02", "08"])
def test_r12_camt054_return_after_collection_reopens_invoice_with_reason(version):
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))

    result = read(
        camt054(
            [
                debit_return(
                    debit.end_to_end_id,
                    debit.amount,
                    "MD06",
                    info="Terugboeking",
                    booking_date=date(2027, 3, 8),
                )
            ],
            version=version,
        )
    )

    assert result.summary["returned"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.RETURNED
    assert (debit.return_reason, debit.return_info) == ("MD06", "Terugboeking")
    assert debit.returned_on == date(2027, 3, 8)
    assert payments(debit) == [
        ("debit_reversal", Decimal("-92.57")),
        ("direct_debit", Decimal("92.57")),
    ]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert invoice_balance(invoice).owed == Decimal("92.57")
    assert debit.batch.__class__.objects.get(pk=debit.batch_id).status == "returned"
    event = AuditEvent.objects.get(action="debit.returned")
    assert event.data["code"] == "MD06"


@pytest.mark.parametrize("order", ["collection_first", "return_first"])
def test_r12_collection_and_return_in_one_file_in_either_order(order):
    _org, mandate, invoice, debit = customer_with_debit()
    entries = [
        collection(debit.end_to_end_id, debit.amount),
        debit_return(debit.end_to_end_id, debit.amount, "MD06"),
    ]
    if order == "return_first":
        entries.reverse()

    result = read(camt053(entries))

    assert result.summary["returned"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.RETURNED
    assert payments(debit) == [
        ("debit_reversal", Decimal("-92.57")),
        ("direct_debit", Decimal("92.57")),
    ]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    mandate.refresh_from_db()
    # Its only collection came back: the mandate is unused again, in either order.
    assert mandate_sequence_type(mandate) == FRST


def test_r12_return_before_its_collection_records_both_and_the_collection_is_a_no_op():
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt054([debit_return(debit.end_to_end_id, debit.amount, "MD06")]))

    later = read(camt053([collection(debit.end_to_end_id, debit.amount)]))

    assert later.summary["collected"] == 0
    assert later.summary["already"] == 1
    assert payments(debit) == [
        ("debit_reversal", Decimal("-92.57")),
        ("direct_debit", Decimal("92.57")),
    ]
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.RETURNED
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


def test_r12_camt054_then_camt053_for_the_same_return_reverses_once():
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))
    notification = camt054([debit_return(debit.end_to_end_id, debit.amount, "MD06")])
    statement = camt053([debit_return(debit.end_to_end_id, debit.amount, "MD06")])

    first = read(notification)
    second = read(statement)

    assert (first.summary["returned"], second.summary["returned"]) == (1, 0)
    assert second.summary["already"] == 1
    assert Payment.objects.filter(debit=debit, kind="debit_reversal").count() == 1
    assert BankTransaction.objects.filter(kind="debit_returned").count() == 2
    assert invoice_balance(invoice).owed == Decimal("92.57")


def test_r12_return_of_an_unknown_debit_waits_for_staff():
    result = read(camt053([debit_return("2027-999999-1", "10.00", "AM04")]))

    assert result.summary["unmatched"] == 1
    row = BankTransaction.objects.get()
    assert (row.kind, row.state) == ("debit_returned", "unmatched")


# --- pain.002 ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["03", "10"])
def test_r12_pain002_rejected_and_accepted(version):
    batch = submitted_batch(message_id="SB-DD-20270304-FRST")
    org_a, mandate_a = direct_customer("Kapsalon Knip")
    org_b, mandate_b = direct_customer("Fietsen Van Dam")
    rejected = debit_at_bank(open_invoice(org_a), mandate_a, batch=batch)
    accepted = debit_at_bank(open_invoice(org_b), mandate_b, batch=batch)

    result = read(
        pain002(
            [
                status(rejected.end_to_end_id, "RJCT", reason="MD06", amount=rejected.amount),
                status(accepted.end_to_end_id, "ACCP", amount=accepted.amount),
            ],
            original_message_id="SB-DD-20270304-FRST",
            version=version,
            group_status="PART",
        )
    )

    assert result.import_file.kind == "pain.002"
    assert (result.summary["rejected"], result.summary["accepted"]) == (1, 1)
    rejected.refresh_from_db()
    accepted.refresh_from_db()
    assert rejected.status == DirectDebit.Status.REJECTED
    assert rejected.return_reason == "MD06"
    assert rejected.returned_on == date(2027, 3, 3)
    assert accepted.status == DirectDebit.Status.SUBMITTED
    assert not Payment.objects.exists()  # a reject moves no money
    kinds = dict(BankTransaction.objects.values_list("end_to_end_id", "kind"))
    assert kinds == {
        rejected.end_to_end_id: "debit_rejected",
        accepted.end_to_end_id: "debit_accepted",
    }


def test_r12_pain002_rejecting_the_whole_file_rejects_every_debit_of_the_batch():
    batch = submitted_batch(message_id="SB-DD-20270304-RCUR")
    debits = []
    for name in ("Kapsalon Knip", "Fietsen Van Dam"):
        org, mandate = direct_customer(name)
        debits.append(debit_at_bank(open_invoice(org), mandate, batch=batch))

    result = read(
        pain002(original_message_id="SB-DD-20270304-RCUR", group_status="RJCT", group_reason="FF01")
    )

    assert result.summary["rejected"] == 2
    assert set(DirectDebit.objects.values_list("status", "return_reason")) == {("rejected", "FF01")}
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.RETURNED


@pytest.mark.parametrize("version", ["03", "10"])
def test_r12_pain002_rejecting_one_payment_information_block_without_lines_rejects_its_debits(
    version,
):
    """PmtInfSts RJCT for our batch, no transaction lines, a group status that is not RJCT."""
    batch = submitted_batch(message_id="SB-DD-20270304-FRST-7")
    for name in ("Kapsalon Knip", "Fietsen Van Dam"):
        org, mandate = direct_customer(name)
        debit_at_bank(open_invoice(org), mandate, batch=batch)
    data = pain002(
        original_message_id=batch.message_id,
        payment_information_id=batch.message_id,
        payment_status="RJCT",
        group_status="PART",
        version=version,
    ).replace(
        b"<PmtInfSts>RJCT</PmtInfSts>",
        b"<PmtInfSts>RJCT</PmtInfSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>",
    )

    result = read(data)

    assert (result.summary["rejected"], result.summary["represented"]) == (2, 2)
    assert set(DirectDebit.objects.filter(batch=batch).values_list("status", "return_reason")) == {
        ("rejected", "AM04")
    }
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.RETURNED
    assert BankTransaction.objects.get().note == f"Batch {batch.message_id} geweigerd: 2 incasso's."
    assert read(data.replace(b"</Document>", b"</Document>\n")).summary["duplicates"] == 1


def test_r12_pain002_accepting_a_payment_information_block_changes_nothing():
    _org, _mandate, _invoice, debit = customer_with_debit()

    result = read(
        pain002(
            original_message_id=debit.batch.message_id,
            payment_information_id=debit.batch.message_id,
            payment_status="ACCP",
        )
    )

    assert result.summary["transactions"] == 0
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED


def test_r12_a_batch_of_one_debit_is_one_incasso_in_the_notes():
    batch = submitted_batch()
    org, mandate = direct_customer()
    debit = debit_at_bank(open_invoice(org), mandate, batch=batch)
    other = submitted_batch()
    org_b, mandate_b = direct_customer("Fietsen Van Dam")
    debit_at_bank(open_invoice(org_b), mandate_b, batch=other)

    read(
        camt053(
            [
                batch_collection(
                    [(debit.end_to_end_id, debit.amount)],
                    message_id=batch.message_id,
                    with_details=False,
                )
            ]
        )
    )
    read(pain002(original_message_id=other.message_id, group_status="RJCT", group_reason="FF01"))

    assert sorted(BankTransaction.objects.values_list("note", flat=True)) == [
        f"Batch {batch.message_id}: 1 incasso geïnd.",
        f"Batch {other.message_id} geweigerd: 1 incasso.",
    ]


def test_r12_reject_after_collection_changes_nothing():
    _org, _mandate, _invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))

    result = read(
        pain002([status(debit.end_to_end_id, "RJCT", reason="AM04")], original_message_id="X")
    )

    assert result.summary["ignored"] == 1
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.COLLECTED


def test_r12_batch_stays_submitted_until_every_debit_is_final():
    batch = submitted_batch()
    org_a, mandate_a = direct_customer("Kapsalon Knip")
    org_b, mandate_b = direct_customer("Fietsen Van Dam")
    first = debit_at_bank(open_invoice(org_a), mandate_a, batch=batch)
    second = debit_at_bank(open_invoice(org_b), mandate_b, batch=batch)

    read(camt053([collection(first.end_to_end_id, first.amount)]))
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.SUBMITTED

    read(camt053([collection(second.end_to_end_id, second.amount)]))
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.COLLECTED


def test_r12_a_frst_collected_then_returned_in_a_later_file_makes_the_next_attempt_frst(
    settings, tmp_path, time_machine
):
    """The bank books the collection first and the return days later: the mandate's only
    collection came back, so the re-presentment is its first collection again (FRST), as
    when the return comes first."""
    settings.SEPA_OUTBOX_DIR = str(tmp_path / "outbox")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    _org, mandate, invoice, debit = customer_with_debit()  # in a FRST batch
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))
    mandate.refresh_from_db()
    assert mandate_sequence_type(mandate) == RCUR

    read(camt054([debit_return(debit.end_to_end_id, debit.amount, "AM04")]))

    mandate.refresh_from_db()
    assert mandate_sequence_type(mandate) == FRST
    assert AuditEvent.objects.filter(action="mandate.first_collection_returned").count() == 1
    retry = DirectDebit.objects.get(invoice=invoice, attempt=2)
    day = batch_day_for(retry.collection_date)
    time_machine.move_to(datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC), tick=False)
    (batch,) = debit_batches_create(day=day)
    assert (batch.sequence_type, list(batch.debits.all())) == (FRST, [retry])


def test_r12_a_return_after_an_earlier_collection_on_the_mandate_keeps_it_rcur():
    organisation, mandate, _invoice, first = customer_with_debit()
    read(camt053([collection(first.end_to_end_id, first.amount)]))
    later = debit_at_bank(
        open_invoice(organisation, issue_date=date(2027, 3, 1)),
        mandate,
        batch=submitted_batch(sequence_type=RCUR),
    )
    read(camt053([collection(later.end_to_end_id, later.amount)]))

    read(camt054([debit_return(later.end_to_end_id, later.amount, "AM04")]))

    mandate.refresh_from_db()
    assert mandate_sequence_type(mandate) == RCUR


def test_r12_failed_first_debit_leaves_the_mandate_frst():
    _org, mandate, _invoice, debit = customer_with_debit()

    read(pain002([status(debit.end_to_end_id, "RJCT", reason="MS02")], original_message_id="X"))

    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE
    assert mandate_sequence_type(mandate) == FRST
