from datetime import date

import pytest
from django.urls import reverse

from billing.models import InvoiceDocument
from billing.services.issue import invoice_issue_one_off


@pytest.fixture
def invoice(org_admin, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return invoice_issue_one_off(
        organisation=org_admin.organisation,
        description="Cursus AFAS SB",
        quantity=1,
        unit_price="295.00",
        issue_date=date(2026, 11, 2),
        reference="CURSUS-1",
    )


def test_r10_customer_downloads_the_invoice_as_pdf_and_ubl(org_admin_client, invoice):
    listing = org_admin_client.get(reverse("portal:facturen")).content.decode()
    assert reverse("portal:invoice_pdf", args=[invoice.pk]) in listing

    pdf = org_admin_client.get(reverse("portal:invoice_pdf", args=[invoice.pk]))
    ubl = org_admin_client.get(reverse("portal:invoice_ubl", args=[invoice.pk]))

    assert pdf["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in pdf["Content-Disposition"]
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    body = b"".join(ubl.streaming_content)
    assert b"urn:fdc:peppol.eu:2017:poacc:billing:3.0" in body
    assert invoice.number.encode() in body
    # Rendered once, served as stored afterwards (an issued invoice's documents never change).
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 2
    again = org_admin_client.get(reverse("portal:invoice_pdf", args=[invoice.pk]))
    assert b"".join(again.streaming_content) == b"".join(
        org_admin_client.get(reverse("portal:invoice_pdf", args=[invoice.pk])).streaming_content
    )
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 2
