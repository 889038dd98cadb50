"""R13 (§3.6.2): on the 28th, two open subscription invoices end a direct customer's licence."""

import threading
from datetime import date

import pytest
import time_machine
from django.db import connection

from afas_sb.scheduler import services as calendar
from afas_sb.scheduler.models import CalendarDay
from billing.bankfiles import writer
from billing.models import DirectDebit, Invoice
from billing.services.credit import credit_note_issue
from billing.services.non_payment import is_termination_day, non_payment_terminations
from licensing.models import Agreement, Organisation, Termination
from tests.billing.builders import agreement_for, firm_client, run_month
from tests.billing.collection_builders import read, submit
from tests.factories import MembershipFactory, OrganisationFactory, make_catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return make_catalogue()


def _with_open_invoices(catalogue, organisation, months):
    agreement = agreement_for(catalogue, organisation, start=date(2026, 1, 1))
    for month in months:
        run_month(date(2026, month, 1))
    return agreement


def _terminated(agreement) -> bool:
    agreement.refresh_from_db()
    return agreement.status == Agreement.Status.TERMINATED


def test_r13_two_open_invoices_on_28th_terminates_direct_customer(catalogue, mailbox):
    organisation = OrganisationFactory()
    MembershipFactory(organisation=organisation, is_subscription_contact=True)
    agreement = _with_open_invoices(catalogue, organisation, [10, 11])

    assert non_payment_terminations(day=date(2026, 11, 28)) == 1

    assert _terminated(agreement)
    termination = Termination.objects.get(agreement=agreement)
    assert (termination.kind, termination.effective_date) == (
        Termination.Kind.NON_PAYMENT,
        date(2026, 11, 28),
    )
    organisation.refresh_from_db()
    assert organisation.status == Organisation.Status.TERMINATED
    assert mailbox == []  # "Er wordt hierover geen contact met je opgenomen."
    # The open invoices stay receivable.
    assert Invoice.objects.filter(agreement=agreement, status=Invoice.Status.OPEN).count() == 2


def test_r13_one_open_invoice_keeps_the_licence(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [11])

    assert non_payment_terminations(day=date(2026, 11, 28)) == 0
    assert not _terminated(agreement)


def test_r13_three_open_invoices_terminate_too(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [9, 10, 11])

    non_payment_terminations(day=date(2026, 11, 28))

    assert _terminated(agreement)


def test_r13_paid_and_credited_invoices_do_not_count(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    Invoice.objects.filter(agreement=agreement, period_start=date(2026, 10, 1)).update(
        status=Invoice.Status.PAID
    )

    assert non_payment_terminations(day=date(2026, 11, 28)) == 0
    assert not _terminated(agreement)


@pytest.mark.parametrize("months", [[11], [10, 11], [9, 10, 11]], ids=["one", "two", "three"])
def test_r13_clients_billed_via_an_accountancy_firm_are_never_touched(catalogue, months):
    firm, client = firm_client(billed_via_firm=True)
    agreement_for(catalogue, firm)
    client_agreement = _with_open_invoices(catalogue, client, months)

    non_payment_terminations(day=date(2026, 11, 28))

    assert not _terminated(client_agreement)
    assert Agreement.objects.filter(organisation=firm, status=Agreement.Status.ACTIVE).exists()


def test_r13_a_firms_client_that_pays_itself_is_a_direct_customer(catalogue):
    """Served by a firm but invoiced directly: the billing route decides, as the issue states."""
    _firm, client = firm_client(billed_via_firm=False)
    client_agreement = _with_open_invoices(catalogue, client, [10, 11])

    non_payment_terminations(day=date(2026, 11, 28))

    assert _terminated(client_agreement)


def test_r13_accountancy_firms_themselves_are_not_direct_sb_ondernemen_customers(catalogue):
    firm, _client = firm_client()
    agreement = _with_open_invoices(catalogue, firm, [10, 11])

    non_payment_terminations(day=date(2026, 11, 28))

    assert not _terminated(agreement)


def test_r13_the_rule_runs_on_every_28th_and_only_then():
    assert is_termination_day(date(2027, 2, 28))  # a Sunday
    assert date(2027, 2, 28).weekday() == 6
    assert is_termination_day(date(2028, 2, 28))  # leap year: the 28th, not the month end
    assert not is_termination_day(date(2026, 11, 27))
    assert not is_termination_day(date(2026, 11, 29))
    assert not is_termination_day(date(2028, 2, 29))


def test_r13_a_28th_on_sunday_terminates_through_the_calendar(catalogue):
    agreement = agreement_for(catalogue, OrganisationFactory(), start=date(2026, 12, 1))
    run_month(date(2027, 1, 1))
    run_month(date(2027, 2, 1))

    with time_machine.travel(date(2027, 2, 28)):
        calendar.calendar_run_range(start=date(2027, 2, 28), end=date(2027, 2, 28))

    assert _terminated(agreement)


def test_r13_missed_28th_is_caught_up_on_the_29th(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    with time_machine.travel(date(2026, 11, 27)):
        calendar.calendar_tick()  # the last day the calendar saw before it went down
    assert not _terminated(agreement)

    with time_machine.travel(date(2026, 11, 29)):
        results = calendar.calendar_tick()

    assert _terminated(agreement)
    assert ("billing.non_payment_termination", date(2026, 11, 28)) in {
        (r.action, r.day) for r in results
    }
    assert CalendarDay.objects.filter(date=date(2026, 11, 28), completed_at__isnull=False).exists()


def test_r13_running_twice_terminates_once(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])

    non_payment_terminations(day=date(2026, 11, 28))
    non_payment_terminations(day=date(2026, 11, 28))

    assert Termination.objects.filter(agreement=agreement).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r13_two_runs_at_once_terminate_once():
    catalogue = make_catalogue()
    agreements = [_with_open_invoices(catalogue, OrganisationFactory(), []) for _ in range(5)]
    run_month(date(2026, 10, 1))
    run_month(date(2026, 11, 1))
    start = threading.Barrier(2, timeout=20)
    errors = []

    def worker():
        try:
            start.wait()
            non_payment_terminations(day=date(2026, 11, 28))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    for agreement in agreements:
        assert Termination.objects.filter(agreement=agreement).count() == 1
        assert _terminated(agreement)


def _november_debit(agreement) -> DirectDebit:
    return DirectDebit.objects.get(
        invoice__agreement=agreement, invoice__period_start=date(2026, 11, 1)
    )


def test_r13_a_debit_the_bank_collected_before_its_statement_is_read_does_not_count(catalogue):
    """The calendar runs at night, before the morning's statement: a debit due is presumed paid."""
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    debit = _november_debit(agreement)
    debit.collection_date = date(2026, 11, 16)
    debit.save(update_fields=["collection_date"])
    submit(debit)

    assert non_payment_terminations(day=date(2026, 11, 28)) == 0
    assert not _terminated(agreement)


def test_r13_a_debit_due_after_the_28th_does_not_shield_its_invoice(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    debit = _november_debit(agreement)
    debit.collection_date = date(2026, 11, 30)  # e.g. a re-presentment still to come
    debit.save(update_fields=["collection_date"])
    submit(debit)

    assert non_payment_terminations(day=date(2026, 11, 28)) == 1
    assert _terminated(agreement)


def test_r13_a_returned_debit_makes_its_invoice_count_again(catalogue):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    debit = _november_debit(agreement)
    debit.collection_date = date(2026, 11, 16)
    debit.save(update_fields=["collection_date"])
    submit(debit)
    assert non_payment_terminations(day=date(2026, 11, 28)) == 0

    read(
        writer.camt053(
            [
                writer.debit_return(
                    debit.end_to_end_id, debit.amount, "MD06", booking_date=date(2026, 11, 28)
                )
            ]
        )
    )

    assert non_payment_terminations(day=date(2026, 11, 28)) == 1
    assert _terminated(agreement)


def test_r13_a_partial_credit_that_settles_the_rest_stops_the_invoice_counting(
    catalogue, staff_user
):
    agreement = _with_open_invoices(catalogue, OrganisationFactory(), [10, 11])
    october = Invoice.objects.get(agreement=agreement, period_start=date(2026, 10, 1))
    users_line = october.lines.get(component_code="users")
    paid = october.gross_total - users_line.net_amount * (1 + users_line.vat_rate / 100)
    read(writer.camt053([writer.transfer(paid, remittance=f"Factuur {october.number}")]))
    october.refresh_from_db()
    assert october.status == Invoice.Status.OPEN

    credit_note_issue(
        invoice=october,
        lines=[(users_line, users_line.quantity)],
        reason="Gebruikers te veel gerekend",
        staff_user=staff_user,
    )

    october.refresh_from_db()
    assert october.status == Invoice.Status.PAID
    assert non_payment_terminations(day=date(2026, 11, 28)) == 0
    assert not _terminated(agreement)


def test_r13_open_invoices_of_an_earlier_agreement_count_too(catalogue):
    organisation = OrganisationFactory()
    earlier = agreement_for(catalogue, organisation, start=date(2026, 1, 1), end=date(2026, 10, 31))
    run_month(date(2026, 10, 1))
    Agreement.objects.filter(pk=earlier.pk).update(status=Agreement.Status.TERMINATED)
    later = agreement_for(catalogue, organisation, start=date(2026, 11, 1))
    run_month(date(2026, 11, 1))
    assert Invoice.objects.filter(organisation=organisation, status="open").count() == 2

    assert non_payment_terminations(day=date(2026, 11, 28)) == 1
    assert _terminated(later)
