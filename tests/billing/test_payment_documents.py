"""R12: a debited invoice is its own pre-notification — the PDF and the UBL announce the debit.

Through the renderers every caller uses (``invoice_renderers``): delivery,
``export_invoice`` and the portal download.
"""

import io
import re
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from pypdf import PdfReader

from billing.models import DirectDebit, InvoiceDocument
from billing.services.delivery import deliveries_sweep
from billing.services.payment_terms import (
    invoice_renderers,
    payment_means_for,
    payment_text_for,
)
from tests.billing.invoice_factories import make_credit_note, make_invoice
from tests.billing.ubl_validation import (  # noqa: F401 - ubl_validator_fixture is a fixture
    NS,
    peppol_nl_violations,
    ubl_validator_fixture,
)
from tests.factories import MembershipFactory, make_catalogue

from .debit_builders import (
    NL_IBAN,
    at,
    customer,
    customer_with_agreement,
    debit_for,
    invoice_month,
    subscription_invoice,
)

pytestmark = pytest.mark.django_db

CREDITOR_ID = "NL69ZZZ123456780000"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def debited_invoice(**fields):
    """A typical invoice (€ 143,87, due 15 January 2027) with its first debit scheduled."""
    with at(date(2026, 12, 20)):
        organisation = customer(**fields)
    invoice = make_invoice(organisation=organisation, number="2027-000042")
    mandate = organisation.mandates.get()
    with at(date(2027, 1, 1)):
        debit_for(invoice, mandate)
    return invoice, mandate


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def xpath(tree, path: str):
    return tree.getroot().xpath(path, namespaces=NS)


def text(tree, path: str) -> str:
    return str(tree.getroot().xpath(f"string({path})", namespaces=NS))


def test_r12_debited_invoice_pdf_states_amount_date_account_mandate_and_creditor():
    invoice, mandate = debited_invoice()
    pdf_renderer, _ubl = invoice_renderers()

    _name, _type, content = pdf_renderer.render(invoice)

    expected = (
        "Het bedrag van € 143,87 wordt op 15-01-2027 automatisch geïncasseerd van rekening "
        f"•••• 4300 (machtigingskenmerk {mandate.reference}, incassant-ID {CREDITOR_ID})."
    )
    assert payment_text_for(invoice) == expected
    extracted = pdf_text(content)
    assert "automatisch geïncasseerd van rekening" in extracted
    assert "15-01-2027" in extracted and "€ 143,87" in extracted
    assert mandate.reference in extracted and CREDITOR_ID in extracted
    assert "4300" in extracted and NL_IBAN not in extracted
    assert "Betaal binnen" not in extracted


def test_r12_debited_invoice_ubl_is_valid_and_carries_means_49_mandate_payer_and_creditor(
    ubl_validator,
):
    invoice, mandate = debited_invoice()
    _pdf, ubl_renderer = invoice_renderers()

    _name, _type, content = ubl_renderer.render(invoice)

    tree = ubl_validator.assert_valid(content)
    assert text(tree, "cac:PaymentMeans/cbc:PaymentMeansCode") == "49"
    assert text(tree, "cac:PaymentMeans/cbc:PaymentID") == invoice.number
    assert text(tree, "cac:PaymentMeans/cac:PaymentMandate/cbc:ID") == mandate.reference
    assert (
        text(tree, "cac:PaymentMeans/cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID")
        == NL_IBAN
    )
    supplier = "cac:AccountingSupplierParty/cac:Party"
    assert xpath(tree, f"{supplier}/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']/text()") == [
        CREDITOR_ID
    ]
    assert text(tree, "cac:PaymentTerms/cbc:Note") == (
        f"Het bedrag wordt op 15-01-2027 automatisch geïncasseerd "
        f"(machtigingskenmerk {mandate.reference})."
    )
    assert {finding.rule for finding in peppol_nl_violations(tree)} == set()


def test_r12_invoice_without_debit_asks_for_a_transfer(ubl_validator):
    invoice = make_invoice(number="2027-000043")
    pdf_renderer, ubl_renderer = invoice_renderers()

    assert payment_text_for(invoice).startswith("Betaal binnen 14 dagen, uiterlijk 15 januari 2027")
    assert payment_means_for(invoice).code == "58"
    tree = ubl_validator.assert_valid(ubl_renderer.render(invoice)[2])
    assert xpath(tree, "cac:PaymentMeans/cac:PaymentMandate") == []
    assert "Betaal binnen" in pdf_text(pdf_renderer.render(invoice)[2])


def test_r12_cancelled_first_debit_falls_back_to_a_transfer():
    invoice, _mandate = debited_invoice()
    DirectDebit.objects.filter(invoice=invoice).update(status=DirectDebit.Status.CANCELLED)

    assert payment_means_for(invoice).code == "58"
    assert payment_text_for(invoice).startswith("Betaal binnen")


def test_r12_credit_note_of_a_debited_invoice_has_no_payment_means():
    invoice, _mandate = debited_invoice()
    credit = make_credit_note(invoice)

    assert payment_means_for(credit) is None
    assert "verrekenen" in payment_text_for(credit)


def test_r12_delivered_invoice_of_a_billing_run_announces_its_debit(
    ubl_validator, mailbox, django_capture_on_commit_callbacks
):
    catalogue = make_catalogue()
    with at(date(2026, 12, 20)):
        organisation = customer_with_agreement(catalogue)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_month(date(2027, 1, 1))  # schedules the invoice's delivery
    with at(date(2027, 1, 1)):
        assert deliveries_sweep().results == {"sent": 1}

    invoice = subscription_invoice(organisation, date(2027, 1, 1))
    documents = {document.format: document for document in invoice.documents.all()}
    with documents["pdf"].file.open("rb") as handle:
        assert "automatisch geïncasseerd" in pdf_text(handle.read())
    with documents["ubl"].file.open("rb") as handle:
        tree = ubl_validator.assert_valid(handle.read())
    assert text(tree, "cac:PaymentMeans/cbc:PaymentMeansCode") == "49"
    assert len(mailbox) == 1  # the invoice e-mail, which is the pre-notification


def test_r12_export_invoice_command_writes_the_debit_ubl(tmp_path, ubl_validator):
    invoice, mandate = debited_invoice()
    target = tmp_path / "factuur.xml"

    call_command(
        "export_invoice",
        invoice.number,
        "--format",
        "ubl",
        "--output",
        str(target),
        stdout=StringIO(),
    )

    tree = ubl_validator.assert_valid(target.read_bytes())
    assert text(tree, "cac:PaymentMeans/cac:PaymentMandate/cbc:ID") == mandate.reference


def test_r12_portal_pdf_download_announces_the_debit(client):
    invoice, mandate = debited_invoice()
    membership = MembershipFactory(organisation=invoice.organisation)
    client.force_login(membership.user)

    response = client.get(reverse("portal:invoice_pdf", args=[invoice.pk]))

    assert response.status_code == 200
    assert mandate.reference in pdf_text(b"".join(response.streaming_content))
    assert InvoiceDocument.objects.filter(invoice=invoice, format="pdf").count() == 1


def test_r12_payment_means_of_an_invoice_with_a_debit_is_looked_up_once(
    django_assert_num_queries,
):
    invoice, _mandate = debited_invoice()

    with django_assert_num_queries(1):
        payment_text_for(invoice)
        payment_means_for(invoice)
