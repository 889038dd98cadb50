"""Reads about collections (R12): payment state per invoice, open amounts, the monthly overview."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import override_settings

from billing.collection_selectors import (
    PaymentStateKind,
    collections_overview,
    invoices_with_payment_state,
    match_candidates,
    open_amount_with_payments,
    payment_state,
    reason_text,
)
from billing.models import BankFileImport, BankTransaction, Invoice
from billing.selectors import open_amount
from billing.services.credit import credit_note_issue
from billing.services.mandates import mandate_invalidate
from tests.factories import FirmFactory, OrganisationFactory, UserFactory

from .collection_states import (
    BATCH_DAY,
    COLLECTION,
    bounce,
    collect,
    debited,
    one_off,
    pay_by_transfer,
    represent,
    submit_debits,
)
from .debit_builders import customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SEPA_SUBMISSION = "manual"


def state_of(invoice):
    return payment_state(invoices_with_payment_state(Invoice.objects.filter(pk=invoice.pk)).get())


# --- Payment state ------------------------------------------------------------------------


def test_r12_payment_state_of_a_planned_debit_says_when():
    invoice, debit = debited(customer())

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.DEBIT_SCHEDULED
    assert (state.on, state.amount) == (COLLECTION, Decimal("121.00"))
    assert debit.collection_date == COLLECTION


def test_r12_payment_state_of_a_collected_debit_says_when_it_was_collected():
    invoice, debit = debited(customer())
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    collect(debit)

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.COLLECTED
    assert state.on == COLLECTION
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_r12_payment_state_of_a_returned_debit_that_is_presented_again():
    invoice, debit = debited(customer())
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    bounce(collect(debit), "AM04", on=date(2027, 3, 17))
    represent(debit, date(2027, 3, 24))

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.DEBIT_RETRY
    assert state.on == date(2027, 3, 24)
    assert state.reason == "Onvoldoende saldo (AM04)"
    assert state.rejected is False


@override_settings(VENDOR_IBAN="NL91ABNA0417164300")
def test_r12_payment_state_after_the_last_failed_debit_asks_for_a_transfer():
    invoice, debit = debited(customer())
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    bounce(collect(debit), "MD06")

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.DEBIT_FAILED
    assert state.reason == "Terugboeking op verzoek van de betaler (MD06)"
    assert state.vendor_iban == "NL91 ABNA 0417 1643 00"
    assert state.reference == invoice.number
    assert state.open_amount is None  # nothing was paid otherwise: the whole invoice is open


def test_r12_payment_state_of_a_debit_rejected_before_collection():
    invoice, debit = debited(customer())
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    bounce(debit, "MS02", rejected=True)

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.DEBIT_FAILED
    assert state.rejected is True
    assert state.reason == "Geweigerd door de betaler (MS02)"


def test_r12_payment_state_after_a_failed_debit_and_part_paid_by_transfer():
    invoice, debit = debited(customer())
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    bounce(collect(debit), "MD06")
    pay_by_transfer(invoice, "21.00", date(2027, 3, 20))

    state = state_of(invoice)

    assert state.kind == PaymentStateKind.DEBIT_FAILED
    assert state.open_amount == Decimal("100.00")


def test_r12_payment_state_paid_partly_paid_and_overpaid_by_transfer():
    organisation = customer(mandate=False)
    paid, partly, overpaid, untouched = (one_off(organisation) for _ in range(4))
    pay_by_transfer(paid, "121.00", date(2027, 3, 10))
    pay_by_transfer(partly, "100.00", date(2027, 3, 10))
    pay_by_transfer(overpaid, "131.50", date(2027, 3, 10))

    assert state_of(paid).kind == PaymentStateKind.PAID
    assert (state_of(partly).kind, state_of(partly).amount) == (
        PaymentStateKind.PARTLY_PAID,
        Decimal("21.00"),
    )
    assert (state_of(overpaid).kind, state_of(overpaid).amount) == (
        PaymentStateKind.OVERPAID,
        Decimal("10.50"),
    )
    assert state_of(untouched) is None


def test_payment_state_leaves_credit_notes_and_credited_invoices_alone():
    organisation = customer(mandate=False)
    invoice = one_off(organisation)
    credit_note = credit_note_issue(
        invoice=invoice, lines=None, reason="Dubbel", staff_user=UserFactory(is_staff=True)
    )

    assert state_of(invoice) is None
    assert state_of(credit_note) is None


def test_payment_states_of_a_page_cost_two_queries(django_assert_num_queries):
    organisation = customer()
    for _ in range(5):
        debited(organisation)
    submit_debits(BATCH_DAY)

    with django_assert_num_queries(2):
        states = [
            payment_state(invoice)
            for invoice in invoices_with_payment_state(
                Invoice.objects.filter(organisation=organisation)
            )
        ]

    assert {state.kind for state in states} == {PaymentStateKind.DEBIT_SCHEDULED}


def test_reason_text_names_the_reason_then_the_code():
    assert reason_text("am04") == "Onvoldoende saldo (AM04)"
    assert reason_text("XX99") == "XX99"
    assert reason_text("") == ""


# --- Open amount --------------------------------------------------------------------------


def test_r12_open_amount_counts_partial_payments_and_credit_notes():
    organisation = customer(mandate=False)
    partly, credited, open_one = (one_off(organisation) for _ in range(3))
    assert open_amount_with_payments(organisation) == open_amount(organisation) == Decimal("363.00")

    pay_by_transfer(partly, "100.00", date(2027, 3, 10))
    credit_note_issue(
        invoice=credited, lines=None, reason="Dubbel", staff_user=UserFactory(is_staff=True)
    )

    assert open_amount_with_payments(organisation) == Decimal("142.00")  # 21.00 + 121.00
    assert open_invoice_is_untouched(open_one)


def open_invoice_is_untouched(invoice) -> bool:
    invoice.refresh_from_db()
    return invoice.status == Invoice.Status.OPEN


def test_open_amount_ignores_other_organisations_and_overpayments():
    organisation = customer(mandate=False)
    other = customer(mandate=False)
    one_off(other)
    overpaid = one_off(organisation)
    pay_by_transfer(overpaid, "200.00", date(2027, 3, 10))

    assert open_amount_with_payments(organisation) == Decimal("0.00")


# --- Overview --------------------------------------------------------------------------------


def _overview_data():
    """March 2027: one collected, one returned AM04 (re-presented in April), one returned AC04.
    April: the re-presentment under way. A firm's open invoice is not a direct customer's."""
    first, second, third = customer(), customer(), customer()
    invoice_1, debit_1 = debited(first)
    invoice_2, debit_2 = debited(second, "50.00")
    invoice_3, debit_3 = debited(third, "200.00")
    submit_debits(BATCH_DAY)
    for debit in (debit_1, debit_2, debit_3):
        debit.refresh_from_db()
    collect(debit_1)
    bounce(collect(debit_2), "AM04", on=date(2027, 3, 17))
    represent(debit_2, date(2027, 4, 15))
    bounce(collect(debit_3), "AC04", on=date(2027, 3, 17))
    mandate_invalidate(mandate=debit_3.mandate, reason_code="AC04")
    one_off(FirmFactory())
    return invoice_1, invoice_2, invoice_3


def test_r12_collections_overview_per_month(django_assert_max_num_queries):
    _overview_data()

    with django_assert_max_num_queries(3):
        overview = collections_overview(today=date(2027, 4, 20))

    months = {row.month: row for row in overview.months}
    assert len(overview.months) == 12
    assert overview.months[0].month == date(2027, 4, 1)  # newest first
    assert overview.months[-1].month == date(2026, 5, 1)
    march, april = months[date(2027, 3, 1)], months[date(2027, 4, 1)]
    assert (march.collected_count, march.collected_amount) == (1, Decimal("121.00"))
    assert (march.failed_count, march.failed_amount) == (2, Decimal("302.50"))
    assert march.top_reasons == [("AC04", 1), ("AM04", 1)]
    assert (march.open_invoice_count, march.open_invoice_amount) == (2, Decimal("302.50"))
    assert (april.live_count, april.live_amount) == (1, Decimal("60.50"))
    assert overview.totals.collected_amount == Decimal("121.00")
    assert overview.totals.open_invoice_amount == Decimal("302.50")


def test_collections_overview_query_count_does_not_grow(django_assert_max_num_queries):
    _overview_data()
    for _ in range(3):
        _overview_data()

    with django_assert_max_num_queries(3):
        overview = collections_overview(today=date(2027, 4, 20))

    assert overview.totals.collected_count == 4


def test_collections_overview_shows_next_month_once_debits_are_planned_there():
    debited(customer(), issued=date(2027, 3, 25))  # due 8 April

    overview = collections_overview(today=date(2027, 3, 26))

    assert overview.months[0].month == date(2027, 4, 1)
    assert overview.months[0].live_count == 1
    assert len(overview.months) == 13


def test_collections_overview_puts_older_open_invoices_in_one_line():
    one_off(customer(mandate=False), issued=date(2025, 1, 6))

    overview = collections_overview(today=date(2027, 4, 20))

    assert overview.older_open_count == 1
    assert overview.older_open_amount == Decimal("121.00")
    assert overview.totals.open_invoice_amount == Decimal("121.00")


# --- Match candidates ----------------------------------------------------------------------------


def test_match_candidates_by_number_in_the_text_amount_or_name():
    organisation = customer(mandate=False, legal_name="Bakkerij Korst B.V.")
    by_number = one_off(organisation, "10.00")
    by_amount = one_off(OrganisationFactory(), "20.00")
    by_name = one_off(organisation, "30.00")
    one_off(OrganisationFactory(), "40.00")
    bank_file = BankFileImport.objects.create(
        kind="camt.053",
        version="001.02",
        message_id="M1",
        filename="a.xml",
        sha256="0" * 64,
        size=1,
        imported_at=by_number.created_at,
    )
    transaction = BankTransaction.objects.create(
        import_file=bank_file,
        unique_key="k1",
        kind=BankTransaction.Kind.TRANSFER_IN,
        state=BankTransaction.State.UNMATCHED,
        amount=Decimal("24.20"),
        credit_debit="CRDT",
        description=f"Betaling {by_number.number}, bedankt",
        counterparty_name="bakkerij korst b.v.",
        created_at=by_number.created_at,
    )

    found = match_candidates(transaction)

    assert {invoice.number for invoice in found} == {
        by_number.number,
        by_amount.number,
        by_name.number,
    }
    assert {invoice.owed for invoice in found} == {
        Decimal("12.10"),
        Decimal("24.20"),
        Decimal("36.30"),
    }
