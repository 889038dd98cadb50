"""Incoming transfers (R12): by payment reference, then amount and name, else the staff queue.

Partial payments leave the invoice open for the rest; over-payments show as a
negative balance; paying an invoice stops its debit that is not yet in a batch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import DomainError
from billing.bankfiles.writer import camt053, collection, debit_return, transfer
from billing.models import BankTransaction, DebitBatch, DirectDebit, Invoice, Payment
from billing.services.ledger import invoice_balance
from billing.services.mandates import RCUR, mandate_sequence_type
from billing.services.transfers import (
    bank_transaction_ignore,
    bank_transaction_match,
    invoice_numbers_in,
    normalise_name,
)
from tests.billing.invoice_factories import make_credit_note
from tests.factories import OrganisationFactory, UserFactory

from .collection_builders import customer_with_debit, direct_customer, open_invoice, read

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _march(time_machine):
    time_machine.move_to(datetime(2027, 3, 5, 9, 0, tzinfo=UTC), tick=False)


def customer_invoice(name="Bakkerij De Gouden Korst B.V.", **fields) -> Invoice:
    return open_invoice(OrganisationFactory(legal_name=name), **fields)


def owed(invoice) -> Decimal:
    return invoice_balance(invoice).owed


def status_of(invoice) -> str:
    invoice.refresh_from_db()
    return invoice.status


# --- the reference ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("Factuur 2027-000123", ["2027-000123"]),
        ("fact.nr 2027000123 en 2027/000124", ["2027-000123", "2027-000124"]),
        ("2027 000123, 2027-000123", ["2027-000123"]),
        ("creditnota C2027-000004", []),
        ("klantnummer 120270001234", []),
        ("IBAN NL91ABNA0417164300", []),
    ],
)
def test_r12_invoice_numbers_are_found_as_people_type_them(text, numbers):
    assert invoice_numbers_in(text) == numbers


@pytest.mark.parametrize(
    "bank_name",
    ["BAKKERIJ DE GOUDEN KORST BV", "Bakkerij de Gouden Korst", "bakkerij de gouden korst b. v."],
)
def test_r12_names_match_without_case_punctuation_and_legal_form(bank_name):
    assert normalise_name(bank_name) == normalise_name("Bakkerij De Gouden Korst B.V.")


def test_r12_vof_nv_and_accents_are_normalised():
    assert normalise_name("Café De Hoek V.O.F.") == normalise_name("CAFE DE HOEK VOF")
    assert normalise_name("Groothandel Jansen N.V.") == "groothandel jansen"


@pytest.mark.parametrize("where", ["remittance", "structured"])
def test_r12_transfer_with_invoice_number_pays_that_invoice(where):
    invoice = customer_invoice()
    reference = (
        {"remittance": f"Betaling factuur {invoice.number}"}
        if where == "remittance"
        else {"structured_reference": invoice.number}
    )

    result = read(camt053([transfer("92.57", name="Iemand Anders", **reference)]))

    assert result.summary["transfers_matched"] == 1
    assert status_of(invoice) == Invoice.Status.PAID
    row = BankTransaction.objects.get()
    assert (row.kind, row.state, row.invoice) == ("transfer_in", "processed", invoice)
    assert Payment.objects.get().kind == Payment.Kind.TRANSFER


def test_r12_one_transfer_pays_two_invoices_in_the_order_named():
    first = customer_invoice()
    second = customer_invoice()

    read(camt053([transfer("185.14", remittance=f"{second.number} {first.number}")]))

    assert status_of(first) == status_of(second) == Invoice.Status.PAID
    row = BankTransaction.objects.get()
    assert sorted(
        Payment.objects.filter(bank_transaction=row).values_list("amount", flat=True)
    ) == [Decimal("92.57"), Decimal("92.57")]


def test_r12_partial_payment_leaves_the_rest_open():
    invoice = customer_invoice()

    read(camt053([transfer("50.00", remittance=invoice.number)]))

    assert status_of(invoice) == Invoice.Status.OPEN
    assert owed(invoice) == Decimal("42.57")


def test_r12_partial_payment_over_two_invoices_fills_the_first_first():
    first = customer_invoice()
    second = customer_invoice()

    read(camt053([transfer("100.00", remittance=f"{first.number} + {second.number}")]))

    assert status_of(first) == Invoice.Status.PAID
    assert owed(second) == Decimal("85.14")


def test_r12_over_payment_lands_on_the_last_invoice_as_a_negative_balance():
    first = customer_invoice()
    second = customer_invoice()

    read(camt053([transfer("200.00", remittance=f"{first.number}, {second.number}")]))

    assert owed(first) == Decimal("0.00")
    assert owed(second) == Decimal("-14.86")
    assert invoice_balance(second).overpaid == Decimal("14.86")
    assert status_of(second) == Invoice.Status.PAID


def test_r12_paying_an_invoice_twice_is_an_over_payment_on_it():
    invoice = customer_invoice()
    read(camt053([transfer("92.57", remittance=invoice.number)]))

    read(camt053([transfer("92.57", remittance=invoice.number)]))

    assert owed(invoice) == Decimal("-92.57")
    assert BankTransaction.objects.filter(state="processed").count() == 2


def test_r12_credited_invoice_is_not_matched_by_reference():
    invoice = customer_invoice()
    make_credit_note(invoice)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.CREDITED)

    result = read(camt053([transfer("92.57", name="Niemand", remittance=invoice.number)]))

    assert result.summary["unmatched"] == 1
    assert not Payment.objects.exists()


# --- amount and name ----------------------------------------------------------------------


def test_r12_transfer_without_reference_matches_on_amount_and_name():
    invoice = customer_invoice("Bakkerij De Gouden Korst B.V.")
    customer_invoice("Kapsalon Knip")  # same amount, other name

    result = read(camt053([transfer("92.57", name="BAKKERIJ DE GOUDEN KORST BV")]))

    assert result.summary["transfers_matched"] == 1
    assert status_of(invoice) == Invoice.Status.PAID
    assert "bedrag en naam" in BankTransaction.objects.get().note


def test_r12_amount_and_name_match_uses_the_open_amount_after_a_partial_payment():
    invoice = customer_invoice("Kapsalon Knip")
    read(camt053([transfer("50.00", remittance=invoice.number)]))

    read(camt053([transfer("42.57", name="Kapsalon Knip")]))

    assert status_of(invoice) == Invoice.Status.PAID


def test_r12_two_invoices_with_that_amount_and_name_wait_for_staff():
    organisation = OrganisationFactory(legal_name="Kapsalon Knip")
    open_invoice(organisation)
    open_invoice(organisation, issue_date=date(2027, 3, 1))

    result = read(camt053([transfer("92.57", name="Kapsalon Knip")]))

    assert result.summary["unmatched"] == 1
    assert "Meerdere" in BankTransaction.objects.get().note


@pytest.mark.parametrize("amount, name", [("92.58", "Kapsalon Knip"), ("92.57", "Knip Kapsalon")])
def test_r12_transfer_matching_nothing_waits_in_the_staff_queue(amount, name):
    customer_invoice("Kapsalon Knip")

    result = read(camt053([transfer(amount, name=name, remittance="bedankt!")]))

    assert result.summary["unmatched"] == 1
    row = BankTransaction.objects.get()
    assert (row.kind, row.state) == ("transfer_in", "unmatched")
    assert not Payment.objects.exists()


def test_r12_outgoing_payments_and_fees_are_ignored():
    result = read(camt053([transfer("12.50", name="Bank", credit=False)]))

    assert result.summary["ignored"] == 1
    assert BankTransaction.objects.get().state == "ignored"


# --- paying stops the debit ------------------------------------------------------------------


def test_r12_paying_an_invoice_cancels_its_debit_not_yet_in_a_batch():
    organisation, mandate = direct_customer()
    invoice = open_invoice(organisation)
    debit = DirectDebit.objects.create(
        invoice=invoice,
        organisation=organisation,
        mandate=mandate,
        amount=Decimal("92.57"),
        collection_date=date(2027, 3, 15),
        end_to_end_id=f"{invoice.number}-1",
        created_at=datetime(2027, 3, 1, tzinfo=UTC),
    )

    read(camt053([transfer("92.57", remittance=invoice.number)]))

    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.CANCELLED
    assert AuditEvent.objects.filter(action="debit.cancelled", object_id=str(debit.pk)).exists()


def test_r12_partial_payment_lowers_the_scheduled_debit_to_the_open_amount():
    organisation, mandate = direct_customer()
    invoice = open_invoice(organisation)
    debit = DirectDebit.objects.create(
        invoice=invoice,
        organisation=organisation,
        mandate=mandate,
        amount=Decimal("92.57"),
        collection_date=date(2027, 3, 15),
        end_to_end_id=f"{invoice.number}-1",
        created_at=datetime(2027, 3, 1, tzinfo=UTC),
    )

    read(camt053([transfer("50.00", remittance=invoice.number)]))

    debit.refresh_from_db()
    assert (debit.status, debit.amount) == (DirectDebit.Status.SCHEDULED, Decimal("42.57"))


def test_r12_a_debit_already_at_the_bank_is_left_alone_when_paid_by_transfer():
    _org, _mandate, invoice, debit = customer_with_debit()

    read(camt053([transfer("92.57", remittance=invoice.number)]))

    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED


# --- the staff queue ---------------------------------------------------------------------------


def unmatched(amount="92.57", name="Onbekend") -> BankTransaction:
    read(camt053([transfer(amount, name=name, remittance="geen kenmerk")]))
    return BankTransaction.objects.get(state="unmatched", amount=Decimal(amount))


def test_r12_staff_matches_an_unmatched_transfer_to_an_invoice(staff_user):
    invoice = customer_invoice()
    row = unmatched()

    payment = bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    assert (payment.kind, payment.amount, payment.recorded_by) == (
        "transfer",
        Decimal("92.57"),
        staff_user,
    )
    row.refresh_from_db()
    assert (row.state, row.invoice, row.matched_by) == ("matched", invoice, staff_user)
    assert status_of(invoice) == Invoice.Status.PAID
    event = AuditEvent.objects.get(action="bank_transaction.matched")
    assert (event.actor_user, event.data["invoice"]) == (staff_user, invoice.number)


def test_r12_staff_match_of_part_of_the_amount(staff_user):
    invoice = customer_invoice()
    row = unmatched("100.00")

    bank_transaction_match(transaction=row, invoice=invoice, user=staff_user, amount="92.57")

    assert owed(invoice) == Decimal("0.00")


def test_r12_staff_match_of_part_leaves_the_rest_in_the_queue_until_it_is_booked(staff_user):
    """One transfer pays two invoices without naming them: staff books it in two parts,
    and the rest never disappears from the queue in between."""
    first = customer_invoice()  # 92.57
    second = customer_invoice("Fietsen Van Dam")
    row = unmatched("200.00")

    bank_transaction_match(transaction=row, invoice=first, user=staff_user, amount="92.57")

    row.refresh_from_db()
    assert row.state == "unmatched"
    assert "nog te koppelen: 107.43" in row.note
    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=second, user=staff_user, amount="107.44")
    assert caught.value.code == "amount_invalid"

    bank_transaction_match(transaction=row, invoice=second, user=staff_user)  # the rest

    row.refresh_from_db()
    assert row.state == "matched"
    assert sum(p.amount for p in row.payments.all()) == Decimal("200.00")
    assert owed(first) == Decimal("0.00")
    assert owed(second) == Decimal("-14.86")  # over-paid, visible as a negative balance


def test_r12_staff_books_the_rest_of_a_transfer_on_another_invoice_not_the_same_one(staff_user):
    invoice = customer_invoice()
    row = unmatched("100.00")
    bank_transaction_match(transaction=row, invoice=invoice, user=staff_user, amount="50.00")

    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    assert caught.value.code == "bank_transaction_invoice_twice"
    assert Payment.objects.get().amount == Decimal("50.00")


def test_r12_staff_match_of_a_collection_with_another_amount_settles_its_debit(staff_user):
    """The bank booked another amount than the debit's, so the line waited with the debit
    attached; staff confirms it: the debit is collected, not left "submitted" forever."""
    _org, mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, "92.75", booking_date=date(2027, 3, 4))]))
    row = BankTransaction.objects.get(state="unmatched")
    assert row.debit == debit

    payment = bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    assert (payment.kind, payment.amount, payment.debit, payment.bank_transaction) == (
        "direct_debit",
        Decimal("92.75"),
        debit,
        row,
    )
    debit.refresh_from_db()
    assert (debit.status, debit.collected_on) == ("collected", date(2027, 3, 4))
    assert debit.batch.status == DebitBatch.Status.COLLECTED
    row.refresh_from_db()
    assert (row.state, row.invoice, row.matched_by) == ("matched", invoice, staff_user)
    assert status_of(invoice) == Invoice.Status.PAID
    mandate.refresh_from_db()
    assert mandate_sequence_type(mandate) == RCUR
    # The statement reports the same collection again: nothing is booked twice.
    assert read(camt053([collection(debit.end_to_end_id, "92.57")])).summary["already"] == 1
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_r12_a_return_after_a_staff_confirmed_collection_takes_back_what_came_in(staff_user):
    """Staff booked the 92.75 the bank credited for a 92.57 debit; when the debit comes back,
    the reversal is those 92.75, so the invoice owes its full amount again, not 0.18 less."""
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, "92.75", booking_date=date(2027, 3, 4))]))
    row = BankTransaction.objects.get(state="unmatched")
    bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    summary = read(camt053([debit_return(debit.end_to_end_id, "92.75", "MD06")])).summary

    assert summary["returned"] == 1
    amounts = sorted(Payment.objects.filter(debit=debit).values_list("kind", "amount"))
    assert amounts == [("debit_reversal", Decimal("-92.75")), ("direct_debit", Decimal("92.75"))]
    assert owed(invoice) == invoice.gross_total
    assert status_of(invoice) == Invoice.Status.OPEN


def test_r12_staff_match_of_a_collection_goes_to_its_debits_invoice_only(staff_user):
    _org, _mandate, _invoice, debit = customer_with_debit()
    other = customer_invoice("Fietsen Van Dam")
    read(camt053([collection(debit.end_to_end_id, "92.75")]))
    row = BankTransaction.objects.get(state="unmatched")

    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=other, user=staff_user)

    assert caught.value.code == "bank_transaction_names_debit"
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED
    assert not Payment.objects.exists()


def test_r12_staff_cannot_match_twice(staff_user):
    invoice = customer_invoice()
    row = unmatched()
    bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    assert caught.value.code == "bank_transaction_not_unmatched"
    assert "al verwerkt" in caught.value.message
    assert Payment.objects.count() == 1


def test_r12_staff_cannot_match_an_automatically_processed_transfer(staff_user):
    invoice = customer_invoice()
    read(camt053([transfer("92.57", remittance=invoice.number)]))
    row = BankTransaction.objects.get()

    with pytest.raises(DomainError, match="al verwerkt"):
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)


def test_r12_staff_cannot_match_a_debit_booking(staff_user):
    invoice = customer_invoice()
    read(camt053([debit_return("2027-999999-1", "92.57", "AM04")]))
    row = BankTransaction.objects.get(state="unmatched")

    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)

    assert caught.value.code == "bank_transaction_not_credit"


def test_r12_staff_cannot_match_on_a_credit_note_or_credited_invoice(staff_user):
    invoice = customer_invoice()
    credit_note = make_credit_note(invoice)
    row = unmatched()

    with pytest.raises(DomainError, match="creditnota"):
        bank_transaction_match(transaction=row, invoice=credit_note, user=staff_user)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.CREDITED)
    with pytest.raises(DomainError, match="gecrediteerd"):
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user)


@pytest.mark.parametrize("amount", ["0", "-5", "92.58"])
def test_r12_staff_match_amount_must_be_positive_and_at_most_what_came_in(staff_user, amount):
    invoice = customer_invoice()
    row = unmatched()

    with pytest.raises(DomainError) as caught:
        bank_transaction_match(transaction=row, invoice=invoice, user=staff_user, amount=amount)

    assert caught.value.code == "amount_invalid"
    row.refresh_from_db()
    assert row.state == "unmatched"


def test_r12_staff_ignores_an_unmatched_booking_with_a_note(staff_user):
    row = unmatched()

    bank_transaction_ignore(transaction=row, user=staff_user, note="  Teruggestort aan klant ")

    row.refresh_from_db()
    assert (row.state, row.note, row.matched_by) == (
        "ignored",
        "Teruggestort aan klant",
        staff_user,
    )
    assert AuditEvent.objects.filter(action="bank_transaction.ignored").count() == 1


def test_r12_staff_ignore_needs_a_note_and_an_unmatched_booking(staff_user):
    row = unmatched()
    with pytest.raises(DomainError, match="toelichting"):
        bank_transaction_ignore(transaction=row, user=staff_user, note="  ")
    bank_transaction_ignore(transaction=row, user=staff_user, note="Niet van ons")

    with pytest.raises(DomainError, match="al verwerkt"):
        bank_transaction_ignore(transaction=row, user=staff_user, note="nog eens")


def test_r12_matching_by_staff_cancels_the_scheduled_debit(staff_user):
    organisation, mandate = direct_customer()
    invoice = open_invoice(organisation)
    debit = DirectDebit.objects.create(
        invoice=invoice,
        organisation=organisation,
        mandate=mandate,
        amount=Decimal("92.57"),
        collection_date=date(2027, 3, 15),
        end_to_end_id=f"{invoice.number}-1",
        created_at=datetime(2027, 3, 1, tzinfo=UTC),
    )
    row = unmatched()

    bank_transaction_match(transaction=row, invoice=invoice, user=UserFactory(is_staff=True))

    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.CANCELLED
