"""Invoices for the UBL tests, written straight as Invoice/InvoiceLine/InvoiceVat rows.

The billing-run and credit-note services are built elsewhere; these tests only
need issued-looking invoices. Amounts come from ``billing.vat`` exactly as the
services compute them, so the documents are checked against real totals.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings

from billing.models import Invoice, InvoiceLine, InvoiceVat
from billing.vat import line_amount, totals, vat_treatment
from tests.factories import OrganisationFactory

_numbers = itertools.count(1)

# (description, component code, quantity, unit price)
STANDARD_LINES = [
    ("Basislicentie", "base", "1", "39.00"),
    ("Gebruiker", "users", "3", "12.50"),
]

# A valid Belgian enterprise number (mod 97 check, PEPPOL-COMMON-R043).
BE_ENTERPRISE_NUMBER = "0403170701"
_enterprise_bases = itertools.count(4031708)


def be_enterprise_number(base: int) -> str:
    """A 10-digit Belgian enterprise number whose last two digits are 97 - base mod 97."""
    return f"{base:08d}{97 - base % 97:02d}"


def dutch_organisation(**overrides):
    defaults = {
        "legal_name": "Bakkerij De Gouden Korst B.V.",
        "vat_id": "NL001234567B01",
        "street": "Kerkstraat 1",
        "postcode": "3511 AB",
        "city": "Utrecht",
    }
    return OrganisationFactory(**(defaults | overrides))


def belgian_organisation(**overrides):
    """A Belgian business; the first one per test has ``BE_ENTERPRISE_NUMBER``."""
    from licensing.models import Organisation

    number = BE_ENTERPRISE_NUMBER
    while Organisation.objects.filter(country="BE", kvk_number=number).exists():
        number = be_enterprise_number(next(_enterprise_bases))
    defaults = {
        "legal_name": "Boulangerie Van Damme BV",
        "country": "BE",
        "kvk_number": number,
        "vat_id": f"BE{number}",
        "street": "Grote Markt 7",
        "postcode": "1000",
        "city": "Brussel",
    }
    return OrganisationFactory(**(defaults | overrides))


def make_invoice(
    *,
    organisation=None,
    lines=STANDARD_LINES,
    issue_date: date = date(2027, 1, 1),
    period: tuple[date, date] | None = (date(2027, 1, 1), date(2027, 1, 31)),
    number: str | None = None,
    buyer_reference: str | None = None,
) -> Invoice:
    """An issued subscription invoice for ``organisation`` (a new Dutch one by default)."""
    organisation = organisation or dutch_organisation()
    treatment = vat_treatment(buyer_country=organisation.country, buyer_vat_id=organisation.vat_id)
    rows = [
        (description, code, Decimal(quantity), Decimal(price))
        for description, code, quantity, price in lines
    ]
    amounts = [line_amount(quantity, price) for _d, _c, quantity, price in rows]
    result = totals((treatment.category, treatment.rate, amount) for amount in amounts)
    invoice = Invoice.objects.create(
        number=number or f"2027-{next(_numbers):06d}",
        kind=Invoice.Kind.INVOICE,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        organisation=organisation,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=settings.INVOICE_PAYMENT_TERM_DAYS),
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        net_total=result.net,
        vat_total=result.vat,
        gross_total=result.gross,
        vat_note=treatment.note,
        buyer_reference=buyer_reference
        if buyer_reference is not None
        else f"Klant {organisation.kvk_number}",
        **_seller_snapshot(),
        **_buyer_snapshot(organisation),
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=description,
            component_code=code,
            unit="stuk",
            quantity=quantity,
            unit_price=price,
            net_amount=amount,
            vat_category=treatment.category,
            vat_rate=treatment.rate,
        )
        for position, ((description, code, quantity, price), amount) in enumerate(
            zip(rows, amounts, strict=True), start=1
        )
    )
    _store_breakdown(invoice, result, treatment)
    return invoice


def make_credit_note(
    invoice: Invoice,
    *,
    negative: bool = True,
    reason: str = "Dubbel gefactureerd",
    number: str | None = None,
) -> Invoice:
    """A credit note for the whole of ``invoice``.

    ``negative`` stores the amounts below zero (the books' view); with False
    they are stored positive (the UBL CreditNote view). The renderer must
    produce the same document from both.
    """
    sign = Decimal(-1) if negative else Decimal(1)
    source_lines = list(invoice.lines.all())
    credit = Invoice.objects.create(
        number=number or f"C2027-{next(_numbers):06d}",
        kind=Invoice.Kind.CREDIT_NOTE,
        purpose=invoice.purpose,
        organisation=invoice.organisation,
        credited_invoice=invoice,
        reason=reason,
        issue_date=invoice.issue_date + timedelta(days=5),
        due_date=invoice.issue_date + timedelta(days=5),
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        net_total=invoice.net_total * sign,
        vat_total=invoice.vat_total * sign,
        gross_total=invoice.gross_total * sign,
        vat_note=invoice.vat_note,
        buyer_reference=invoice.buyer_reference,
        **{
            field: getattr(invoice, field)
            for field in (*_seller_snapshot().keys(), *_buyer_fields())
        },
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=credit,
            position=line.position,
            description=line.description,
            component_code=line.component_code,
            unit=line.unit,
            quantity=line.quantity * sign,
            unit_price=line.unit_price,
            net_amount=line.net_amount * sign,
            vat_category=line.vat_category,
            vat_rate=line.vat_rate,
        )
        for line in source_lines
    )
    InvoiceVat.objects.bulk_create(
        InvoiceVat(
            invoice=credit,
            category=row.category,
            rate=row.rate,
            taxable_amount=row.taxable_amount * sign,
            tax_amount=row.tax_amount * sign,
            exemption_reason=row.exemption_reason,
        )
        for row in invoice.vat_breakdown.all()
    )
    return credit


def fake_pdf() -> bytes:
    """Enough of a PDF to embed: the renderer only base64-encodes it."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _store_breakdown(invoice, result, treatment) -> None:
    InvoiceVat.objects.bulk_create(
        InvoiceVat(
            invoice=invoice,
            category=row.category,
            rate=row.rate,
            taxable_amount=row.taxable_amount,
            tax_amount=row.tax_amount,
            exemption_reason=treatment.exemption_reason,
        )
        for row in result.breakdown
    )


def _seller_snapshot() -> dict:
    return {
        "seller_name": settings.VENDOR_NAME,
        "seller_street": settings.VENDOR_STREET,
        "seller_postcode": settings.VENDOR_POSTCODE,
        "seller_city": settings.VENDOR_CITY,
        "seller_country": settings.VENDOR_COUNTRY,
        "seller_kvk": settings.VENDOR_KVK,
        "seller_vat_id": settings.VENDOR_VAT_ID,
        "seller_iban": settings.VENDOR_IBAN,
        "seller_bic": settings.VENDOR_BIC,
    }


def _buyer_fields() -> tuple[str, ...]:
    return (
        "buyer_name",
        "buyer_street",
        "buyer_postcode",
        "buyer_city",
        "buyer_country",
        "buyer_kvk",
        "buyer_vat_id",
        "buyer_email",
        "buyer_peppol_scheme",
        "buyer_peppol_id",
    )


def _buyer_snapshot(organisation) -> dict:
    return {
        "buyer_name": organisation.legal_name,
        "buyer_street": organisation.street,
        "buyer_postcode": organisation.postcode,
        "buyer_city": organisation.city,
        "buyer_country": organisation.country,
        "buyer_kvk": organisation.kvk_number,
        "buyer_vat_id": organisation.vat_id,
        "buyer_email": organisation.billing_email,
        "buyer_peppol_scheme": organisation.peppol_scheme,
        "buyer_peppol_id": organisation.peppol_endpoint_id,
    }
