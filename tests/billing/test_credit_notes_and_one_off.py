"""R9: issued invoices never change — credit notes correct them; R7: one-off invoices."""

from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Sum

from afas_sb.audit.models import AuditEvent
from afas_sb.errors import DomainError
from billing.models import Invoice, InvoiceLine, NumberSeries
from billing.selectors import open_amount
from billing.services.credit import credit_note_issue
from billing.services.issue import invoice_issue_one_off
from tests.factories import OrganisationFactory, make_catalogue

from .builders import agreement_for, belgian_business, run_month

pytestmark = pytest.mark.django_db

JANUARY = date(2027, 1, 1)


@pytest.fixture
def invoice(db, time_machine):
    """A January subscription invoice: 1 base (39,00) and 4 users (4 × 12,50), NL VAT.

    Credit notes are dated the day they are made: 20 January 2027 here.
    """
    time_machine.move_to(date(2027, 1, 20), tick=False)
    catalogue = make_catalogue()
    agreement = agreement_for(catalogue, base=1, users=4)
    run_month(JANUARY)
    return Invoice.objects.get(agreement=agreement)


def state():
    return (
        list(Invoice.objects.order_by("pk").values_list("number", "status", "gross_total")),
        InvoiceLine.objects.count(),
        list(NumberSeries.objects.order_by("key").values_list("key", "last_number")),
    )


# --- Credit notes ------------------------------------------------------------------------------


def test_r9_whole_invoice_credit_note(invoice, staff_user):
    credit_note = credit_note_issue(
        invoice=invoice, lines=None, reason="Dubbel gefactureerd", staff_user=staff_user
    )

    invoice.refresh_from_db()
    assert credit_note.number == "C2027-000001"
    assert (credit_note.kind, credit_note.purpose, credit_note.credited_invoice) == (
        "credit_note",
        "subscription",
        invoice,
    )
    # EN 16931: a credit note carries positive amounts; its type says they are subtracted.
    assert (credit_note.net_total, credit_note.vat_total, credit_note.gross_total) == (
        invoice.net_total,
        invoice.vat_total,
        invoice.gross_total,
    )
    assert [
        (line.position, line.description, line.quantity, line.unit_price, line.net_amount)
        for line in credit_note.lines.order_by("position")
    ] == [
        (line.position, line.description, line.quantity, line.unit_price, line.net_amount)
        for line in invoice.lines.order_by("position")
    ]
    assert (credit_note.issue_date, credit_note.reason) == (
        date(2027, 1, 20),
        "Dubbel gefactureerd",
    )
    assert (credit_note.buyer_name, credit_note.buyer_reference) == (
        invoice.buyer_name,
        invoice.buyer_reference,
    )
    assert (credit_note.period_start, credit_note.period_end) == (
        invoice.period_start,
        invoice.period_end,
    )
    assert invoice.status == "credited"
    assert open_amount(invoice.organisation) == Decimal("0.00")
    event = AuditEvent.objects.get(action="billing.credit_note_issued")
    assert (event.actor_user, event.reason) == (staff_user, "Dubbel gefactureerd")


def test_r9_partial_credit_note_per_line_then_the_rest(invoice, staff_user):
    users = invoice.lines.get(component_code="users")

    first = credit_note_issue(
        invoice=invoice, lines=[(users, 1)], reason="Eén gebruiker te veel", staff_user=staff_user
    )
    invoice.refresh_from_db()

    assert [(line.position, line.quantity, line.net_amount) for line in first.lines.all()] == [
        (users.position, Decimal("1"), Decimal("12.50"))
    ]
    assert (first.net_total, first.vat_total, first.gross_total) == (
        Decimal("12.50"),
        Decimal("2.63"),
        Decimal("15.13"),
    )
    assert invoice.status == "open"
    assert open_amount(invoice.organisation) == invoice.gross_total - Decimal("15.13")

    rest = credit_note_issue(invoice=invoice, lines=None, reason="Opgezegd", staff_user=staff_user)
    invoice.refresh_from_db()

    assert rest.number == "C2027-000002"
    assert [(line.component_code, line.quantity) for line in rest.lines.order_by("position")] == [
        ("base", Decimal("1")),
        ("users", Decimal("3")),
    ]
    assert invoice.status == "credited"
    credited_net = Invoice.objects.filter(credited_invoice=invoice).aggregate(Sum("net_total"))
    assert credited_net["net_total__sum"] == invoice.net_total


def test_r9_over_crediting_is_refused_and_nothing_is_stored(invoice, staff_user):
    users = invoice.lines.get(component_code="users")
    credit_note_issue(invoice=invoice, lines=[(users, 3)], reason="Te veel", staff_user=staff_user)
    before = state()

    with pytest.raises(DomainError) as error:
        credit_note_issue(
            invoice=invoice, lines=[(users, 2)], reason="Nog eens", staff_user=staff_user
        )

    assert error.value.code == "over_credit"
    assert "er kan nog hoogstens 1 gecrediteerd worden, niet 2" in error.value.message
    assert state() == before


def test_r9_a_fully_credited_invoice_cannot_be_credited_again(invoice, staff_user):
    credit_note_issue(invoice=invoice, lines=None, reason="Fout", staff_user=staff_user)
    before = state()

    with pytest.raises(DomainError) as error:
        credit_note_issue(invoice=invoice, lines=None, reason="Nog eens", staff_user=staff_user)

    assert error.value.message == f"Factuur {invoice.number} is al volledig gecrediteerd."
    assert state() == before


@pytest.mark.parametrize(
    ("quantity", "reason", "message"),
    [
        (1, "", "Geef een reden voor de creditnota."),
        (0, "Fout", "het aantal moet groter dan 0 zijn"),
        (-1, "Fout", "het aantal moet groter dan 0 zijn"),
        ("0.0005", "Fout", "hoogstens drie decimalen"),
        ("twee", "Fout", "het aantal moet groter dan 0 zijn"),
    ],
)
def test_r9_bad_credit_input_is_refused_in_dutch_and_stores_nothing(
    invoice, staff_user, quantity, reason, message
):
    users = invoice.lines.get(component_code="users")
    before = state()

    with pytest.raises(DomainError) as error:
        credit_note_issue(
            invoice=invoice, lines=[(users, quantity)], reason=reason, staff_user=staff_user
        )

    assert message in error.value.message
    assert state() == before


def test_r9_a_line_of_another_invoice_or_a_credit_note_is_refused(invoice, staff_user):
    other = invoice_issue_one_off(
        organisation=OrganisationFactory(),
        description="Cursus AFAS SB",
        quantity=1,
        unit_price="150.00",
        issue_date=JANUARY,
        reference="INS-1",
    )
    credit_note = credit_note_issue(
        invoice=other, lines=None, reason="Geannuleerd", staff_user=staff_user
    )
    before = state()

    with pytest.raises(DomainError, match="hoort niet bij factuur"):
        credit_note_issue(
            invoice=invoice, lines=[(other.lines.get(), 1)], reason="Fout", staff_user=staff_user
        )
    with pytest.raises(DomainError, match="is zelf een creditnota"):
        credit_note_issue(invoice=credit_note, lines=None, reason="Fout", staff_user=staff_user)
    assert state() == before


def test_r9_credit_note_keeps_the_reverse_charge_of_its_invoice(staff_user):
    catalogue = make_catalogue()
    agreement = agreement_for(catalogue, belgian_business(), base=1, users=1)
    run_month(JANUARY)
    invoice = Invoice.objects.get(agreement=agreement)

    credit_note = credit_note_issue(
        invoice=invoice, lines=None, reason="Fout", staff_user=staff_user
    )

    assert credit_note.vat_note == invoice.vat_note
    assert list(
        credit_note.vat_breakdown.values_list("category", "tax_amount", "exemption_reason")
    ) == [("AE", Decimal("0.00"), "Reverse charge")]


def test_r9_a_line_credited_in_parts_is_credited_to_the_cent(staff_user):
    """Three thirds of a line: the last part takes the exact remainder, not a rounded third."""
    invoice = invoice_issue_one_off(
        organisation=OrganisationFactory(),
        description="Maatwerk",
        quantity=1,
        unit_price="100.00",
        issue_date=JANUARY,
        reference="MW-1",
    )
    line = invoice.lines.get()

    notes = [
        credit_note_issue(
            invoice=invoice, lines=[(line, "0.333")], reason="Deel", staff_user=staff_user
        ),
        credit_note_issue(
            invoice=invoice, lines=[(line, "0.333")], reason="Deel", staff_user=staff_user
        ),
        credit_note_issue(
            invoice=invoice, lines=[(line, "0.334")], reason="Rest", staff_user=staff_user
        ),
    ]

    assert [note.net_total for note in notes] == [
        Decimal("33.30"),
        Decimal("33.30"),
        Decimal("33.40"),
    ]
    assert sum(note.net_total for note in notes) == invoice.net_total
    invoice.refresh_from_db()
    assert invoice.status == "credited"


def test_r9_an_issued_invoice_is_never_deleted(invoice):
    with pytest.raises(RuntimeError, match="never deleted"):
        invoice.delete()


# --- One-off invoices ---------------------------------------------------------------------------


def test_r7_one_off_invoice_for_a_course(db, settings):
    organisation = OrganisationFactory(legal_name="Bakkerij De Gouden Korst B.V.")

    invoice = invoice_issue_one_off(
        organisation=organisation,
        description="Cursus AFAS SB, 12 maart 2027",
        quantity=2,
        unit_price="195.00",
        issue_date=date(2027, 3, 12),
        reference="INS-2027-0042",
    )

    assert invoice.number == "2027-000001"
    assert (invoice.kind, invoice.purpose, invoice.status, invoice.agreement) == (
        "invoice",
        "one_off",
        "open",
        None,
    )
    assert (invoice.issue_date, invoice.due_date) == (date(2027, 3, 12), date(2027, 3, 26))
    assert (invoice.period_start, invoice.period_end) == (None, None)
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        Decimal("390.00"),
        Decimal("81.90"),
        Decimal("471.90"),
    )
    assert (invoice.buyer_name, invoice.buyer_reference, invoice.seller_name) == (
        "Bakkerij De Gouden Korst B.V.",
        "INS-2027-0042",
        settings.VENDOR_NAME,
    )
    line = invoice.lines.get()
    assert (line.description, line.quantity, line.unit_price, line.net_amount) == (
        "Cursus AFAS SB, 12 maart 2027",
        Decimal("2"),
        Decimal("195.00"),
        Decimal("390.00"),
    )


def test_r7_one_off_invoice_shares_the_years_series_with_subscriptions(db):
    catalogue = make_catalogue()
    agreement_for(catalogue)
    run_month(JANUARY)

    invoice = invoice_issue_one_off(
        organisation=belgian_business(),
        description="Cursus",
        quantity=1,
        unit_price="150.00",
        issue_date=date(2027, 1, 5),
        reference="INS-7",
    )

    assert invoice.number == "2027-000002"
    assert (invoice.vat_total, invoice.vat_breakdown.get().category) == (Decimal("0.00"), "AE")


def test_r7_one_off_with_the_same_reference_twice_is_one_invoice(db):
    organisation = OrganisationFactory()
    arguments = {
        "organisation": organisation,
        "description": "Cursus",
        "quantity": 1,
        "unit_price": "150.00",
        "issue_date": JANUARY,
        "reference": "INS-8",
    }

    assert invoice_issue_one_off(**arguments) == invoice_issue_one_off(**arguments)
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"description": " "}, "Geef een omschrijving"),
        ({"reference": ""}, "Geef een referentie"),
        ({"quantity": 0}, "groter dan 0"),
        ({"quantity": "abc"}, "moeten bedragen zijn"),
        ({"unit_price": "-1.00"}, "0 of meer"),
        ({"unit_price": "1.005"}, "hele centen"),
        ({"unit_price": 1.5}, "moeten bedragen zijn"),
    ],
)
def test_r7_bad_one_off_input_is_refused_and_stores_nothing(db, changes, message):
    arguments = {
        "organisation": OrganisationFactory(),
        "description": "Cursus",
        "quantity": 1,
        "unit_price": "150.00",
        "issue_date": JANUARY,
        "reference": "INS-9",
    }

    with pytest.raises(DomainError, match=message):
        invoice_issue_one_off(**{**arguments, **changes})

    assert Invoice.objects.count() == 0
    assert not NumberSeries.objects.exists()


@pytest.mark.parametrize(
    ("unit_price", "gross"),
    [("12.50", "15.13"), ("18.87", "22.83"), ("46.50", "56.27")],
)
def test_r9_amounts_that_binary_floats_cannot_add_are_stored_exactly(db, unit_price, gross):
    """gross = net + VAT to the cent; 12.50 + 2.63 is 15.129999… in floating point.

    Guards the model's CHECK constraint on SQLite, which compares REAL values.
    """
    invoice = invoice_issue_one_off(
        organisation=OrganisationFactory(),
        description="Cursus",
        quantity=1,
        unit_price=unit_price,
        issue_date=JANUARY,
        reference="INS-F",
    )

    invoice.refresh_from_db()
    assert invoice.gross_total == Decimal(gross)
    assert invoice.gross_total == invoice.net_total + invoice.vat_total
