"""R12: debits into pain.008 batches per collection date and sequence type, handed to the bank."""

import hashlib
import threading
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from lxml import etree

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import DomainError
from afas_sb.scheduler.models import CalendarRun
from billing.models import DebitBatch, DirectDebit, Invoice, Mandate, Payment
from billing.services.credit import credit_note_issue
from billing.services.debit_batches import (
    debit_batch_content,
    debit_batch_mark_submitted,
    debit_batches_create,
    debit_batches_submit_pending,
)
from billing.services.debits import debits_plan
from billing.services.ledger import payment_record
from billing.services.mandates import mandate_record_collection, mandate_revoke
from tests.concurrency import WAIT_SECONDS, Worker, hold_after, signal_before
from tests.factories import FirmFactory, OrganisationFactory, UserFactory, make_catalogue

from .builders import agreement_for
from .debit_builders import (
    NL_IBAN_2,
    at,
    customer_with_agreement,
    invoice_month,
    live_debit,
    sign_mandate,
    subscription_invoice,
)

pytestmark = pytest.mark.django_db

JAN = date(2027, 1, 1)
FEB = date(2027, 2, 1)
JAN_BATCH_DAY = date(2027, 1, 14)  # collection Friday 15 January, D-1
FEB_BATCH_DAY = date(2027, 2, 12)  # collection Monday 15 February, D-1: the Friday before
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}


@pytest.fixture
def catalogue():
    return make_catalogue()


@pytest.fixture(autouse=True)
def outbox(sepa_outbox):
    return sepa_outbox


def batch_on(day: date) -> list[DebitBatch]:
    with at(day):
        return debit_batches_create(day=day)


def xml(batch: DebitBatch):
    return etree.fromstring(debit_batch_content(batch))


def texts(root, path: str) -> list[str]:
    return [node.text for node in root.iterfind(path, NS)]


# --- Sequence types ---------------------------------------------------------------------------


def test_r12_first_collection_is_frst_then_rcur_after_it_was_collected(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    mandate = Mandate.objects.get(organisation=organisation)
    invoice_month(JAN)

    (january,) = batch_on(JAN_BATCH_DAY)
    assert (january.sequence_type, january.collection_date) == ("FRST", date(2027, 1, 15))
    assert january.message_id == f"SB-DD-20270115-FRST-{january.pk}"
    assert texts(xml(january), ".//p:PmtTpInf/p:SeqTp") == ["FRST"]
    assert live_debit(subscription_invoice(organisation, JAN)).sequence_type == "FRST"

    with at(date(2027, 1, 18)):
        mandate_record_collection(mandate=mandate)
    invoice_month(FEB)
    (february,) = batch_on(FEB_BATCH_DAY)

    assert (february.sequence_type, february.collection_date) == ("RCUR", date(2027, 2, 15))
    assert texts(xml(february), ".//p:PmtTpInf/p:SeqTp") == ["RCUR"]


def test_r12_while_the_first_collection_is_unsettled_the_next_debit_is_still_frst(catalogue):
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)
    batch_on(JAN_BATCH_DAY)  # FRST, never confirmed as collected
    invoice_month(FEB)

    (february,) = batch_on(FEB_BATCH_DAY)

    assert february.sequence_type == "FRST"


def test_r12_two_debits_on_one_new_mandate_go_in_one_frst_batch(catalogue):
    with at(date(2026, 12, 20)):
        firm = FirmFactory()
        sign_mandate(firm)
        for _ in range(2):
            client = OrganisationFactory(accountancy_firm=firm, billed_via=firm)
            agreement_for(catalogue, client)
    invoice_month(JAN)

    (batch,) = batch_on(JAN_BATCH_DAY)

    assert (batch.sequence_type, batch.debit_count) == ("FRST", 2)
    assert set(batch.debits.values_list("organisation", flat=True)) == {firm.pk}


def test_r12_a_new_iban_makes_a_new_mandate_whose_first_collection_is_frst_again(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    batch_on(JAN_BATCH_DAY)
    with at(date(2027, 1, 18)):
        mandate_record_collection(mandate=Mandate.objects.get(organisation=organisation))
        new_mandate = sign_mandate(organisation, NL_IBAN_2)
    invoice_month(FEB)

    (february,) = batch_on(FEB_BATCH_DAY)

    assert february.sequence_type == "FRST"
    root = xml(february)
    assert texts(root, ".//p:MndtRltdInf/p:MndtId") == [new_mandate.reference]
    assert texts(root, ".//p:DbtrAcct/p:Id/p:IBAN") == [NL_IBAN_2]


def test_r12_batches_per_collection_date_and_sequence_type(catalogue):
    with at(date(2026, 12, 20)):
        known = customer_with_agreement(catalogue)
        new = customer_with_agreement(catalogue)
        late = customer_with_agreement(catalogue, mandate=False)
    with at(date(2027, 1, 2)):
        mandate_record_collection(mandate=Mandate.objects.get(organisation=known))
    invoice_month(JAN)
    with at(date(2027, 1, 9)):
        sign_mandate(late)
        debits_plan(day=date(2027, 1, 9))  # announced five days ahead: in time for the 15th

    batches = batch_on(JAN_BATCH_DAY)

    assert [(b.collection_date, b.sequence_type, b.debit_count) for b in batches] == [
        (date(2027, 1, 15), "FRST", 2),
        (date(2027, 1, 15), "RCUR", 1),
    ]
    assert set(batches[0].debits.values_list("organisation", flat=True)) == {new.pk, late.pk}


# --- Batch day and cut-off ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "too_early", "batch_day"),
    [(1, date(2027, 1, 13), date(2027, 1, 14)), (2, date(2027, 1, 12), date(2027, 1, 13))],
)
def test_r12_batch_is_made_the_configured_number_of_target2_days_before(
    catalogue, lead, too_early, batch_day
):
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)

    with override_settings(SEPA_DEBIT_LEAD_DAYS=lead):
        assert batch_on(too_early) == []
        (batch,) = batch_on(batch_day)

    assert batch.collection_date == date(2027, 1, 15)
    assert DirectDebit.objects.get().status == DirectDebit.Status.BATCHED


def test_r12_nothing_is_due_on_a_weekend_or_target2_holiday(catalogue):
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)  # collection Friday 15 January

    for closed in (date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)):
        assert batch_on(closed) == []


def test_r12_a_missed_cut_off_moves_the_collection_date_to_the_first_reachable_one(catalogue):
    """The calendar was down on Thursday 14 January; Friday's catch-up runs the 14th first."""
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)

    with at(date(2027, 1, 15)):
        assert debit_batches_create(day=date(2027, 1, 14)) == []
        debit = DirectDebit.objects.get()
        assert debit.collection_date == date(2027, 1, 18)  # Monday: Friday's batch reaches it
        (batch,) = debit_batches_create(day=date(2027, 1, 15))

    assert batch.collection_date == date(2027, 1, 18)
    assert texts(xml(batch), ".//p:PmtInf/p:ReqdColltnDt") == ["2027-01-18"]


def test_r12_calendar_actions_plan_and_batch_through_run_calendar(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue, mandate=False)
    invoice_month(JAN)
    with at(date(2027, 1, 8)):
        sign_mandate(organisation)

    out = StringIO()
    with at(date(2027, 1, 9)):
        call_command("run_calendar", "--date", "2027-01-09", stdout=out)
    with at(date(2027, 1, 14)):
        call_command("run_calendar", "--date", "2027-01-10", "--until", "2027-01-14", stdout=out)

    output = out.getvalue()
    assert "billing.debit_planning" in output and "billing.debit_batches" in output
    # Planned on the 9th, announced five days ahead: collected on the due date, the 15th.
    planning = CalendarRun.objects.get(action="billing.debit_planning", date=date(2027, 1, 9))
    assert planning.outcome.startswith("1 incasso('s) gepland")
    run = CalendarRun.objects.get(action="billing.debit_batches", date=date(2027, 1, 14))
    batch = DebitBatch.objects.get()
    assert batch.message_id in run.outcome
    assert CalendarRun.objects.get(
        action="billing.debit_batches", date=date(2027, 1, 13)
    ).outcome == ("geen incasso's te verwerken")


# --- Checked again just before batching -----------------------------------------------------


def test_r12_a_partial_credit_note_before_batching_lowers_the_debit(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    users = invoice.lines.get(component_code="users")
    with at(date(2027, 1, 8)):
        credit = credit_note_issue(
            invoice=invoice,
            lines=[(users, 1)],
            reason="Eén gebruiker te veel",
            staff_user=UserFactory(is_staff=True),
        )

    (batch,) = batch_on(JAN_BATCH_DAY)

    expected = invoice.gross_total - credit.gross_total
    assert live_debit(invoice).amount == expected
    assert batch.total == expected
    root = xml(batch)
    assert texts(root, ".//p:DrctDbtTxInf/p:InstdAmt") == [f"{expected:.2f}"]
    assert AuditEvent.objects.filter(action="debit.amount_lowered").count() == 1


def test_r12_a_full_credit_note_or_a_transfer_before_batching_cancels_the_debit(catalogue):
    with at(date(2026, 12, 20)):
        credited = customer_with_agreement(catalogue)
        transferred = customer_with_agreement(catalogue)
    invoice_month(JAN)
    credited_invoice = subscription_invoice(credited, JAN)
    paid_invoice = subscription_invoice(transferred, JAN)
    with at(date(2027, 1, 8)):
        credit_note_issue(
            invoice=credited_invoice,
            lines=None,
            reason="Dubbel gefactureerd",
            staff_user=UserFactory(is_staff=True),
        )
        payment_record(
            invoice=paid_invoice,
            kind=Payment.Kind.TRANSFER,
            amount=paid_invoice.gross_total,
            booked_on=date(2027, 1, 8),
        )

    assert batch_on(JAN_BATCH_DAY) == []

    assert set(DirectDebit.objects.values_list("status", flat=True)) == {"cancelled"}
    assert not DebitBatch.objects.exists()
    assert AuditEvent.objects.filter(action="debit.cancelled").count() == 2


def test_r12_a_mandate_revoked_before_batching_cancels_the_debit(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    with at(JAN_BATCH_DAY):
        mandate_revoke(
            mandate=Mandate.objects.get(organisation=organisation), allow_without_replacement=True
        )

    assert batch_on(JAN_BATCH_DAY) == []
    assert DirectDebit.objects.get().status == DirectDebit.Status.CANCELLED


def test_r12_a_mandate_reference_outside_the_sepa_charset_is_not_batched(catalogue):
    with at(date(2026, 12, 20)):
        good = customer_with_agreement(catalogue)
        bad = customer_with_agreement(catalogue)
    invoice_month(JAN)
    # Written past the model's validator, as a faulty import might.
    Mandate.objects.filter(organisation=bad).update(reference="SB-ÄÖ-1")

    (batch,) = batch_on(JAN_BATCH_DAY)

    assert set(batch.debits.values_list("organisation", flat=True)) == {good.pk}
    refused = DirectDebit.objects.get(organisation=bad)
    assert refused.status == DirectDebit.Status.SCHEDULED
    assert AuditEvent.objects.get(action="debit.refused").object_id == str(refused.pk)


# --- Idempotent and concurrent --------------------------------------------------------------


def test_r12_batching_twice_makes_nothing_new(catalogue):
    with at(date(2026, 12, 20)):
        for _ in range(3):
            customer_with_agreement(catalogue)
    invoice_month(JAN)

    first = batch_on(JAN_BATCH_DAY)
    second = batch_on(JAN_BATCH_DAY)

    assert len(first) == 1 and second == []
    assert DebitBatch.objects.count() == 1
    assert DirectDebit.objects.filter(batch=first[0]).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_two_batch_runs_at_once_put_each_debit_in_exactly_one_batch(catalogue, settings):
    with at(date(2026, 12, 20)):
        organisations = [customer_with_agreement(catalogue) for _ in range(12)]
    invoice_month(JAN)
    start = threading.Barrier(2, timeout=WAIT_SECONDS)
    results, errors = [], []

    def worker():
        try:
            start.wait()
            results.append(debit_batches_create(day=JAN_BATCH_DAY))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    with at(JAN_BATCH_DAY):  # one clock for both threads
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert errors == []
    debits = DirectDebit.objects.all()
    assert debits.count() == len(organisations)
    assert not debits.filter(batch__isnull=True).exists()
    assert sum(batch.debit_count for batch in DebitBatch.objects.all()) == len(organisations)
    assert sorted(len(made) for made in results) == [0, 1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_a_second_batch_run_waits_for_the_first_and_finds_its_debits_batched(catalogue):
    """Held exactly where the first run has locked the invoices: the second must wait."""
    with at(date(2026, 12, 20)):
        for _ in range(4):
            customer_with_agreement(catalogue)
    invoice_month(JAN)
    first_locked, second_waits = threading.Event(), threading.Event()

    with at(JAN_BATCH_DAY):
        first = Worker(
            lambda: debit_batches_create(day=JAN_BATCH_DAY),
            hold_after('FOR UPDATE OF "billing_invoice"', first_locked, second_waits),
        ).start()
        try:
            assert first_locked.wait(WAIT_SECONDS), "the first run never locked the invoices"
            second = Worker(
                lambda: debit_batches_create(day=JAN_BATCH_DAY),
                signal_before('FOR UPDATE OF "billing_invoice"', second_waits),
            ).start()
            assert second_waits.wait(WAIT_SECONDS), "the second run never reached the lock"
        finally:
            second_waits.set()
        made_first, made_second = first.join(), second.join()

    assert [batch.debit_count for batch in made_first] == [4]
    assert made_second == []
    assert DirectDebit.objects.filter(batch=made_first[0]).count() == 4


# --- Submission -----------------------------------------------------------------------------


def test_r12_outbox_submission_writes_the_file_and_marks_batch_and_debits_submitted(
    catalogue, outbox, django_capture_on_commit_callbacks
):
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)

    with at(JAN_BATCH_DAY), django_capture_on_commit_callbacks(execute=True):
        (batch,) = debit_batches_create(day=JAN_BATCH_DAY)

    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.SUBMITTED
    assert batch.submitted_at is not None and batch.submitted_by is None
    written = (outbox / f"{batch.message_id}.xml").read_bytes()
    assert hashlib.sha256(written).hexdigest() == batch.sha256
    assert written == debit_batch_content(batch)
    assert DirectDebit.objects.get().status == DirectDebit.Status.SUBMITTED
    assert AuditEvent.objects.get(action="debit_batch.submitted").data["via"] == "outbox"


def test_r12_a_failed_outbox_write_leaves_the_batch_created_for_the_next_run(
    catalogue, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox should be")
    settings.SEPA_OUTBOX_DIR = str(blocked)
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)

    with at(JAN_BATCH_DAY), django_capture_on_commit_callbacks(execute=True):
        (batch,) = debit_batches_create(day=JAN_BATCH_DAY)

    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.CREATED
    settings.SEPA_OUTBOX_DIR = str(tmp_path / "outbox-fixed")
    assert debit_batches_submit_pending() == 1
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.SUBMITTED


def test_r12_manual_mode_waits_for_staff_who_mark_the_batch_submitted_once(
    catalogue, settings, outbox, django_capture_on_commit_callbacks
):
    settings.SEPA_SUBMISSION = "manual"
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)
    with at(JAN_BATCH_DAY), django_capture_on_commit_callbacks(execute=True):
        (batch,) = debit_batches_create(day=JAN_BATCH_DAY)
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.CREATED
    assert DirectDebit.objects.get().status == DirectDebit.Status.BATCHED
    assert not outbox.exists()
    staff = UserFactory(is_staff=True)

    with at(JAN_BATCH_DAY):
        marked = debit_batch_mark_submitted(batch=batch, user=staff)
        again = debit_batch_mark_submitted(batch=batch, user=UserFactory(is_staff=True))

    assert marked.status == again.status == DebitBatch.Status.SUBMITTED
    assert again.submitted_by == staff
    assert DirectDebit.objects.get().status == DirectDebit.Status.SUBMITTED
    event = AuditEvent.objects.get(action="debit_batch.submitted")
    assert (event.actor_user, event.data["via"]) == (staff, "manual")


def test_r12_stored_batch_file_is_checked_against_its_checksum(catalogue):
    with at(date(2026, 12, 20)):
        customer_with_agreement(catalogue)
    invoice_month(JAN)
    (batch,) = batch_on(JAN_BATCH_DAY)
    with batch.file.open("wb") as handle:
        handle.write(b"<Document/>")

    with pytest.raises(DomainError) as corrupt:
        debit_batch_content(batch)

    assert "controlegetal" in corrupt.value.message


def test_r12_batch_file_is_stored_with_count_total_and_creditor(catalogue):
    with at(date(2026, 12, 20)):
        organisations = [customer_with_agreement(catalogue) for _ in range(2)]
    invoice_month(JAN)

    (batch,) = batch_on(JAN_BATCH_DAY)

    invoices = Invoice.objects.filter(organisation__in=organisations)
    total = sum(invoice.gross_total for invoice in invoices)
    assert (batch.debit_count, batch.total) == (2, total)
    assert batch.creditor_id == "NL69ZZZ123456780000"
    assert batch.file.name.endswith(f"{batch.message_id}.xml")
    root = xml(batch)
    assert texts(root, "p:CstmrDrctDbtInitn/p:GrpHdr/p:CtrlSum") == [f"{total:.2f}"]
    assert sorted(texts(root, ".//p:PmtId/p:EndToEndId")) == sorted(
        f"{invoice.number}-1" for invoice in invoices
    )
    event = AuditEvent.objects.get(action="debit_batch.created")
    assert event.data["count"] == 2


def test_r12_batching_takes_the_same_number_of_queries_for_more_debits(catalogue):
    def batch_with_new_customers(customers: int, day: date) -> tuple[int, int]:
        with at(day - timedelta(days=40)):
            for _ in range(customers):
                customer_with_agreement(catalogue, start=day.replace(day=1))
        invoice_month(day.replace(day=1))
        with at(day), CaptureQueriesContext(connection) as captured:
            (batch,) = debit_batches_create(day=day)
        return batch.debit_count, len(captured)

    january = batch_with_new_customers(2, JAN_BATCH_DAY)
    february = batch_with_new_customers(6, FEB_BATCH_DAY)  # and the first two again

    assert (january[0], february[0]) == (2, 8)
    assert january[1] == february[1]
