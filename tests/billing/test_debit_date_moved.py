"""R12: a pre-notified debit whose collection date moves is announced again, with the new date.

The customer was told amount and date (by the invoice or an e-mail). When the
bank can no longer be reached for that date (the calendar was down on the batch
day and catches up later), batching moves the debit to the first reachable date,
records the old one in the audit trail and queues one DATE_MOVED e-mail.
"""

from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from afas_sb.audit.models import ActorKind, AuditEvent
from billing.models import CollectionNotice, DirectDebit
from billing.services.debit_batches import debit_batches_create
from billing.services.ledger import invoice_lock
from billing.services.notices import notice_queue, notices_sweep
from tests.factories import make_catalogue

from .collection_builders import direct_customer, open_invoice
from .debit_builders import (
    NL_IBAN,
    at,
    customer_with_agreement,
    debit_for,
    invoice_month,
    live_debit,
    subscription_invoice,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sepa_outbox")]

JAN = date(2027, 1, 1)
PLANNED = date(2027, 1, 15)  # Friday: batch day Thursday the 14th (D-1)
CATCH_UP = date(2027, 1, 15)  # the calendar was down on the 14th and runs it on the 15th
MOVED_TO = date(2027, 1, 18)  # Monday: the first date Friday's batch still reaches
DATE_MOVED = CollectionNotice.Kind.DATE_MOVED


@pytest.fixture
def catalogue():
    return make_catalogue()


def invoiced_customer(catalogue):
    """A direct customer whose January invoice announces a debit on Friday 15 January."""
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    return organisation, live_debit(subscription_invoice(organisation, JAN))


def catch_up(day: date = date(2027, 1, 14), *, on: date = CATCH_UP):
    """The calendar runs batch day ``day`` on ``on``: late, unless they are the same day."""
    with at(on):
        return debit_batches_create(day=day)


def unannounced_debit(collection_date: date = PLANNED) -> DirectDebit:
    """A debit straight through ``debit_create``: nobody told the customer its date."""
    with at(date(2027, 1, 4)):
        organisation, mandate = direct_customer("Kapsalon Knip B.V.")
        invoice = open_invoice(organisation, issue_date=date(2027, 1, 4), number="KNIP-2027-1")
        with transaction.atomic():
            return debit_for(invoice_lock(invoice.pk), mandate, collection_date=collection_date)


def moved_events(debit: DirectDebit) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="debit.date_moved", object_type="billing.directdebit", object_id=str(debit.pk)
        ).order_by("pk")
    )


def test_r12_a_debit_moved_because_the_calendar_was_down_is_announced_again(catalogue):
    _organisation, debit = invoiced_customer(catalogue)
    assert debit.prenotified_at is not None and debit.collection_date == PLANNED

    assert catch_up() == []

    debit.refresh_from_db()
    assert (debit.status, debit.collection_date) == (DirectDebit.Status.SCHEDULED, MOVED_TO)
    notice = CollectionNotice.objects.get(debit=debit)
    assert notice.kind == DATE_MOVED
    assert notice.status == CollectionNotice.Status.PENDING
    assert (notice.organisation_id, notice.invoice_id) == (debit.organisation_id, debit.invoice_id)

    (batch,) = catch_up(CATCH_UP)  # Friday's own run batches it for Monday
    assert batch.collection_date == MOVED_TO
    assert CollectionNotice.objects.filter(debit=debit).count() == 1


def test_r12_the_date_moved_mail_gives_the_new_date_amount_and_mandate(catalogue, mailbox):
    organisation, debit = invoiced_customer(catalogue)
    invoice = debit.invoice
    mandate = debit.mandate
    catch_up()

    with at(CATCH_UP):
        assert notices_sweep().sent == 1
        assert notices_sweep().sent == 0

    (mail,) = mailbox
    assert organisation.billing_email in mail.to
    assert f"Nieuwe incassodatum voor factuur {invoice.number}" in mail.subject
    amount = f"€ {invoice.gross_total:.2f}".replace(".", ",")
    for text in (mail.body, mail.alternatives[0][0]):
        assert amount in text
        assert "niet op 15 januari 2027 af, zoals eerder aangekondigd" in text
        assert "18 januari 2027" in text
        assert "Je hoeft hiervoor niets te doen" in text
        assert mandate.reference in text
        assert mandate.iban_masked in text and NL_IBAN not in text
        assert "NL69ZZZ123456780000" in text  # the creditor id
        assert "/facturen" in text  # paying otherwise: the invoices page
    assert CollectionNotice.objects.get(debit=debit).status == CollectionNotice.Status.SENT


def test_r12_without_a_recorded_old_date_the_mail_speaks_of_the_date_announced_earlier(
    catalogue, mailbox
):
    _organisation, debit = invoiced_customer(catalogue)
    with at(CATCH_UP):
        notice_queue(debit=debit, kind=DATE_MOVED)  # queued without the previous date
        notices_sweep()

    (mail,) = mailbox
    for text in (mail.body, mail.alternatives[0][0]):
        assert "niet op de eerder aangekondigde datum af" in text
        assert "15 januari 2027" in text  # the debit's date, unchanged here


def test_r12_the_date_moved_mail_goes_out_after_the_batch_run_commits(
    catalogue, mailbox, django_capture_on_commit_callbacks
):
    _organisation, debit = invoiced_customer(catalogue)

    with at(CATCH_UP), django_capture_on_commit_callbacks(execute=True):
        debit_batches_create(day=date(2027, 1, 14))
        assert mailbox == []  # not before the run commits

    (mail,) = mailbox
    assert "18 januari 2027" in mail.body
    assert CollectionNotice.objects.get(debit=debit).status == CollectionNotice.Status.SENT


def test_r12_a_moved_debit_that_was_never_prenotified_gets_no_notice(catalogue):
    _organisation, announced = invoiced_customer(catalogue)
    unannounced = unannounced_debit()
    assert unannounced.prenotified_at is None

    catch_up()

    unannounced.refresh_from_db()
    assert unannounced.collection_date == MOVED_TO  # moved all the same
    assert len(moved_events(unannounced)) == 1
    assert list(CollectionNotice.objects.values_list("debit_id", "kind")) == [
        (announced.pk, DATE_MOVED)
    ]


def test_r12_batching_the_same_day_twice_queues_one_date_moved_notice(catalogue):
    _organisation, debit = invoiced_customer(catalogue)

    catch_up()
    catch_up()

    assert CollectionNotice.objects.filter(debit=debit, kind=DATE_MOVED).count() == 1
    assert len(moved_events(debit)) == 1


def test_r12_a_debit_that_is_due_on_time_is_not_announced_again(catalogue):
    _organisation, debit = invoiced_customer(catalogue)

    (batch,) = catch_up(on=date(2027, 1, 14))  # the calendar ran on time

    assert batch.collection_date == PLANNED
    assert not CollectionNotice.objects.filter(kind=DATE_MOVED).exists()
    assert moved_events(debit) == []


def test_r12_the_audit_trail_keeps_the_date_the_customer_was_told(catalogue):
    organisation, debit = invoiced_customer(catalogue)

    catch_up()

    (event,) = moved_events(debit)
    assert event.object_type == "billing.directdebit"
    assert event.organisation_id == organisation.pk
    assert event.actor_kind == ActorKind.CALENDAR
    assert event.reason
    assert event.data == {
        "end_to_end_id": debit.end_to_end_id,
        "from": "2027-01-15",
        "to": "2027-01-18",
    }


def test_r12_moved_twice_before_the_mail_went_out_names_the_first_date_and_the_last(
    catalogue, mailbox
):
    """Down on Thursday, and again from Friday to Monday: one e-mail, with the date the
    customer was actually told and the one the debit now has."""
    _organisation, debit = invoiced_customer(catalogue)
    catch_up()  # to Monday the 18th
    catch_up(CATCH_UP, on=date(2027, 1, 19))  # Friday's run on Tuesday: to Wednesday the 20th

    debit.refresh_from_db()
    assert debit.collection_date == date(2027, 1, 20)
    assert [(e.data["from"], e.data["to"]) for e in moved_events(debit)] == [
        ("2027-01-15", "2027-01-18"),
        ("2027-01-18", "2027-01-20"),
    ]
    with at(date(2027, 1, 19)):
        assert notices_sweep().sent == 1

    (mail,) = mailbox
    assert "niet op 15 januari 2027 af, zoals eerder aangekondigd, maar op 20 januari 2027" in (
        mail.body
    )


def test_r12_announcing_moved_debits_takes_the_same_number_of_queries_for_more(catalogue):
    def late_run(customers: int, month: date) -> tuple[int, int]:
        """``customers`` more, invoiced on the 1st of ``month``; the batch day of their
        debits is run a day late, so every scheduled debit moves (the earlier ones again)."""
        with at(month - timedelta(days=40)):
            for _ in range(customers):
                customer_with_agreement(catalogue, start=month)
        invoice_month(month)
        due = DirectDebit.objects.filter(invoice__period_start=month).latest("pk").collection_date
        with at(due), CaptureQueriesContext(connection) as captured:
            assert debit_batches_create(day=due - timedelta(days=1)) == []
        return AuditEvent.objects.filter(action="debit.date_moved").count(), len(captured)

    january = late_run(2, JAN)  # due Friday 15 January, run for the 14th on the 15th
    march = late_run(5, date(2027, 3, 1))  # due Monday 15 March, run for Sunday on the 15th

    # March moves its 7 debits and January's 2 again; one notice each all the same.
    assert (january[0], march[0]) == (2, 2 + 9)
    assert CollectionNotice.objects.filter(kind=DATE_MOVED).count() == 9
    assert january[1] == march[1]
