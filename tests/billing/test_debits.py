"""R12: planning direct debits — one per open subscription invoice of a customer with a mandate.

The debit of a new invoice is planned in the issuing transaction (the invoice
announces it); the daily sweep plans what the invoices could not announce and
e-mails a pre-notification. Collection dates are due dates on TARGET2 days.
"""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings

from afas_sb import clock
from afas_sb.audit.models import AuditEvent
from afas_sb.errors import Conflict
from billing.models import CollectionNotice, DirectDebit, Invoice, Mandate, Payment
from billing.services.credit import credit_note_issue
from billing.services.debit_batches import debit_batches_create
from billing.services.debits import (
    batch_day_for,
    collection_date_for,
    debits_cancel_without_mandate,
    debits_plan,
    debits_plan_for_invoices,
    earliest_collection_date,
)
from billing.services.issue import first_invoices_issue, invoice_issue_one_off
from billing.services.ledger import payment_record
from billing.services.mandates import mandate_revoke, mandate_text_for
from tests.factories import UserFactory, make_catalogue

from .builders import agreement_for, firm_client
from .debit_builders import (
    NL_IBAN_2,
    at,
    customer,
    customer_with_agreement,
    debit_for,
    invoice_month,
    live_debit,
    sign_mandate,
    subscription_invoice,
)

pytestmark = pytest.mark.django_db

JAN = date(2027, 1, 1)


@pytest.fixture
def catalogue():
    return make_catalogue()


# --- Collection dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (date(2027, 1, 15), date(2027, 1, 15)),  # a Friday: the due date itself
        (date(2027, 1, 16), date(2027, 1, 18)),  # Saturday → Monday
        (date(2027, 1, 17), date(2027, 1, 18)),  # Sunday → Monday
        (date(2027, 3, 26), date(2027, 3, 30)),  # Good Friday → after Easter Monday
        (date(2027, 3, 29), date(2027, 3, 30)),  # Easter Monday → Tuesday
        (date(2026, 5, 1), date(2026, 5, 4)),  # 1 May (a Friday) → Monday
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas (Fri) → Monday
        (date(2025, 12, 25), date(2025, 12, 29)),  # Christmas Thu, 26 Dec Fri → Monday
        (date(2025, 12, 26), date(2025, 12, 29)),  # 26 December → Monday
        (date(2027, 1, 1), date(2027, 1, 4)),  # New Year's Day (Fri) → Monday
        (date(2028, 2, 29), date(2028, 2, 29)),  # leap day, a Tuesday
    ],
)
def test_r12_collection_date_is_the_due_date_on_a_target2_day(due, expected):
    assert collection_date_for(due_date=due, today=date(2025, 11, 1)) == expected


def test_r12_collection_date_too_soon_is_announced_the_agreed_days_ahead(settings):
    # Due today (Wednesday 13 January), announced today: five days' notice → Monday 18th.
    assert collection_date_for(due_date=date(2027, 1, 13), today=date(2027, 1, 13)) == date(
        2027, 1, 18
    )
    # Notice ending on Good Friday (a TARGET2 closing day): after Easter Monday.
    assert collection_date_for(due_date=date(2027, 3, 1), today=date(2027, 3, 21)) == date(
        2027, 3, 30
    )
    settings.SEPA_PRENOTIFICATION_DAYS = 1
    # With one day's notice the bank's cut-off decides: a batch today reaches Thursday.
    assert collection_date_for(due_date=date(2027, 1, 13), today=date(2027, 1, 13)) == date(
        2027, 1, 14
    )
    # Planned on Good Friday for an overdue invoice: the bank's next day is Tuesday,
    # so Wednesday is the first collection date.
    assert earliest_collection_date(date(2027, 3, 26)) == date(2027, 3, 31)


@pytest.mark.parametrize(
    ("lead", "collection", "batch_day"),
    [
        (1, date(2027, 1, 15), date(2027, 1, 14)),  # D-1
        (2, date(2027, 1, 15), date(2027, 1, 13)),  # D-2
        (1, date(2027, 1, 18), date(2027, 1, 15)),  # Monday: the Friday before
        (1, date(2027, 3, 30), date(2027, 3, 25)),  # after Easter: Thursday before Good Friday
        (2, date(2026, 12, 29), date(2026, 12, 24)),  # over Christmas
        (1, date(2027, 1, 4), date(2026, 12, 31)),  # after New Year's Day
    ],
)
def test_r12_batch_day_is_the_configured_number_of_target2_days_before(lead, collection, batch_day):
    with override_settings(SEPA_DEBIT_LEAD_DAYS=lead):
        assert batch_day_for(collection) == batch_day


# --- Planned at issue -----------------------------------------------------------------------


def test_r12_billing_run_plans_a_debit_for_each_invoice_with_a_mandate_and_none_without(
    catalogue,
):
    with at(date(2026, 12, 20)):
        debited = customer_with_agreement(catalogue)
        paying_by_transfer = customer_with_agreement(catalogue, mandate=False)

    invoice_month(JAN)

    invoice = subscription_invoice(debited, JAN)
    debit = live_debit(invoice)
    assert debit.attempt == 1
    assert debit.status == DirectDebit.Status.SCHEDULED
    assert debit.amount == invoice.gross_total > 0
    assert debit.organisation_id == debited.pk
    assert debit.mandate == Mandate.objects.get(organisation=debited)
    # Due 15 January 2027, a Friday and a TARGET2 day.
    assert invoice.due_date == debit.collection_date == date(2027, 1, 15)
    assert debit.end_to_end_id == f"{invoice.number}-1"
    assert debit.prenotified_at is not None  # the invoice announces it
    assert not CollectionNotice.objects.exists()  # so no separate e-mail
    assert not DirectDebit.objects.filter(invoice__organisation=paying_by_transfer).exists()


def test_r12_a_firm_paying_for_its_client_is_debited_on_the_firms_mandate(catalogue):
    with at(date(2026, 12, 20)):
        firm, client = firm_client()
        sign_mandate(firm)
        agreement_for(catalogue, client)

    invoice_month(JAN)

    invoice = Invoice.objects.get(agreement__organisation=client, period_start=JAN)
    assert invoice.organisation == firm
    debit = live_debit(invoice)
    assert debit.organisation == firm
    assert debit.mandate.organisation == firm


def test_r12_first_invoice_due_on_christmas_is_collected_on_the_next_target2_day(catalogue):
    with at(date(2026, 12, 1)):
        organisation = customer()
        agreement_for(catalogue, organisation, start=date(2026, 12, 11))

    with at(date(2026, 12, 11)):
        assert first_invoices_issue(day=date(2026, 12, 11)) == 1

    invoice = Invoice.objects.get(organisation=organisation)
    assert invoice.due_date == date(2026, 12, 25)
    assert live_debit(invoice).collection_date == date(2026, 12, 28)


def test_r12_first_invoice_due_on_good_friday_is_collected_after_easter_monday(catalogue):
    with at(date(2027, 3, 1)):
        organisation = customer()
        agreement_for(catalogue, organisation, start=date(2027, 3, 12))

    with at(date(2027, 3, 12)):
        first_invoices_issue(day=date(2027, 3, 12))

    invoice = Invoice.objects.get(organisation=organisation)
    assert invoice.due_date == date(2027, 3, 26)  # Good Friday
    assert live_debit(invoice).collection_date == date(2027, 3, 30)


def test_r12_one_off_invoices_and_credit_notes_are_not_debited(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer()
        one_off = invoice_issue_one_off(
            organisation=organisation,
            description="Cursus AFAS SB basis",
            quantity=1,
            unit_price="195.00",
            issue_date=date(2026, 12, 20),
            reference="cursus-1",
        )

    assert not DirectDebit.objects.filter(invoice=one_off).exists()


def test_r12_planning_at_issue_takes_a_constant_number_of_queries(
    catalogue, django_assert_max_num_queries
):
    with at(date(2026, 12, 20)):
        organisations = [customer_with_agreement(catalogue) for _ in range(3)]
        customer_with_agreement(catalogue, mandate=False)
    invoice_month(JAN)
    DirectDebit.objects.all().delete()
    ids = list(Invoice.objects.values_list("pk", flat=True))

    # One SELECT and one INSERT (on PostgreSQL a COPY, which the counter does not see).
    with at(JAN), django_assert_max_num_queries(2):
        assert debits_plan_for_invoices(invoice_ids=ids) == len(organisations)


# --- One live debit per invoice -------------------------------------------------------------


def test_r12_no_invoice_in_two_live_debits_the_service_refuses(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    mandate = Mandate.objects.get(organisation=organisation)

    with pytest.raises(Conflict) as refused:
        debit_for(invoice, mandate, attempt=2)

    assert refused.value.code == "debit_live"
    assert "wordt al geïncasseerd" in refused.value.message
    assert DirectDebit.objects.filter(invoice=invoice).count() == 1


def test_r12_no_invoice_in_two_live_debits_the_database_refuses(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    first = live_debit(subscription_invoice(organisation, JAN))

    with pytest.raises(IntegrityError), transaction.atomic():
        DirectDebit.objects.create(
            invoice=first.invoice,
            organisation=organisation,
            mandate=first.mandate,
            attempt=2,
            amount=Decimal("1.00"),
            collection_date=first.collection_date,
            end_to_end_id=f"{first.invoice.number}-2",
            created_at=clock.now(),
        )


# --- The daily sweep ------------------------------------------------------------------------


def test_r12_mandate_signed_after_the_invoice_gets_a_debit_and_a_prenotification(
    catalogue, mailbox, django_capture_on_commit_callbacks
):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue, mandate=False)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    assert not invoice.debits.exists()

    with at(date(2027, 1, 5)):
        mandate = sign_mandate(organisation, NL_IBAN_2)
        with django_capture_on_commit_callbacks(execute=True):
            assert debits_plan(day=date(2027, 1, 5)) == 1

    debit = live_debit(invoice)
    assert (debit.attempt, debit.mandate, debit.amount) == (1, mandate, invoice.gross_total)
    assert debit.collection_date == date(2027, 1, 15)
    notice = CollectionNotice.objects.get(debit=debit)
    assert notice.kind == CollectionNotice.Kind.PRENOTIFICATION
    assert notice.status == CollectionNotice.Status.SENT
    (message,) = mailbox
    assert f"Aankondiging automatische incasso factuur {invoice.number}" in message.subject
    body = message.body
    amount = f"{invoice.gross_total:.2f}".replace(".", ",")
    assert f"€ {amount}" in body
    assert "15 januari 2027" in body
    assert mandate.reference in body
    assert "NL69ZZZ123456780000" in body  # the creditor id
    assert "4567" in body and NL_IBAN_2 not in body  # the account, masked
    assert invoice.number in body
    html = message.alternatives[0][0]
    assert mandate.reference in html and "NL69ZZZ123456780000" in html


def test_r12_sweep_is_idempotent_and_skips_paid_and_transfer_customers(catalogue):
    with at(date(2026, 12, 20)):
        late = customer_with_agreement(catalogue, mandate=False)
        paid = customer_with_agreement(catalogue, mandate=False)
        no_mandate = customer_with_agreement(catalogue, mandate=False)
    invoice_month(JAN)
    paid_invoice = subscription_invoice(paid, JAN)
    with at(date(2027, 1, 4)):
        payment_record(
            invoice=paid_invoice,
            kind=Payment.Kind.TRANSFER,
            amount=paid_invoice.gross_total,
            booked_on=date(2027, 1, 4),
        )
        sign_mandate(late)
        sign_mandate(paid)

        assert debits_plan(day=date(2027, 1, 5)) == 1
        assert debits_plan(day=date(2027, 1, 5)) == 0

    assert DirectDebit.objects.get().invoice == subscription_invoice(late, JAN)
    assert not DirectDebit.objects.filter(organisation__in=[paid, no_mandate]).exists()


def test_r12_sweep_debits_only_the_open_amount_after_a_partial_credit_note(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue, mandate=False)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    users = invoice.lines.get(component_code="users")
    with at(date(2027, 1, 4)):
        credit = credit_note_issue(
            invoice=invoice,
            lines=[(users, 1)],
            reason="Eén gebruiker te veel",
            staff_user=UserFactory(is_staff=True),
        )
        sign_mandate(organisation)
        debits_plan(day=date(2027, 1, 4))

    assert live_debit(invoice).amount == invoice.gross_total - credit.gross_total


def test_r12_overdue_invoice_is_collected_after_the_agreed_notice(catalogue):
    with at(date(2026, 11, 20)):
        organisation = customer_with_agreement(catalogue, mandate=False, start=date(2026, 12, 1))
    invoice_month(date(2026, 12, 1))
    invoice = subscription_invoice(organisation, date(2026, 12, 1))

    # Signed on Christmas Eve, long after the due date (15 December).
    with at(date(2026, 12, 24)):
        sign_mandate(organisation)
        debits_plan(day=date(2026, 12, 24))

    # Announced on 24 December with five days' notice: Tuesday 29 December (a TARGET2
    # day), although a batch made that day could reach Monday the 28th.
    assert live_debit(invoice).collection_date == date(2026, 12, 29)


def test_r12_revoked_mandate_cancels_the_scheduled_debit(catalogue):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    debit = live_debit(invoice)

    with at(date(2027, 1, 6)):
        # Staff revoke it without a replacement (R12 refuses the customer that).
        mandate_revoke(mandate=debit.mandate, allow_without_replacement=True)
        assert debits_cancel_without_mandate() == 1
        assert debits_plan(day=date(2027, 1, 6)) == 0

    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.CANCELLED
    assert not DirectDebit.objects.filter(status__in=DirectDebit.LIVE_STATUSES).exists()
    event = AuditEvent.objects.get(action="debit.cancelled")
    assert event.data["code"] == "mandate_inactive"


def test_r12_new_iban_moves_the_debit_to_the_new_mandate_as_the_next_attempt(
    catalogue, mailbox, django_capture_on_commit_callbacks
):
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    invoice = subscription_invoice(organisation, JAN)
    first = live_debit(invoice)

    with at(date(2027, 1, 7)):
        new_mandate = sign_mandate(organisation, NL_IBAN_2)
        with django_capture_on_commit_callbacks(execute=True):
            assert debits_plan(day=date(2027, 1, 7)) == 1

    first.refresh_from_db()
    assert first.status == DirectDebit.Status.CANCELLED
    second = live_debit(invoice)
    assert (second.attempt, second.mandate) == (2, new_mandate)
    assert second.end_to_end_id == f"{invoice.number}-2"
    assert second.collection_date == date(2027, 1, 15)
    assert CollectionNotice.objects.get(debit=second).kind == "prenotification"
    assert len(mailbox) == 1 and new_mandate.reference in mailbox[0].body


def test_r12_returned_debit_is_not_replanned_by_the_sweep(catalogue):
    """A return has its own path (re-presentment or transfer); the sweep keeps out of it."""
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    invoice_month(JAN)
    debit = live_debit(subscription_invoice(organisation, JAN))
    with at(date(2027, 1, 14)):
        debit_batches_create(day=date(2027, 1, 14))
    DirectDebit.objects.filter(pk=debit.pk).update(status=DirectDebit.Status.RETURNED)

    with at(date(2027, 1, 20)):
        assert debits_plan(day=date(2027, 1, 20)) == 0


def test_r12_the_mandate_text_agrees_the_shorter_prenotification_period(settings):
    settings.SEPA_PRENOTIFICATION_DAYS = 6
    organisation = customer(mandate=False)

    text = mandate_text_for(organisation=organisation, reference="SB-TEST-1")

    assert "ten minste 6 dagen vooraf" in text
