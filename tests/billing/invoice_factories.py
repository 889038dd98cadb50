"""Issued-looking invoices and credit notes for the document tests (PDF, UBL, delivery).

Written straight as Invoice/InvoiceLine/InvoiceVat rows (the billing-run and
credit-note services are tested elsewhere); amounts come from ``billing.vat``
exactly as the services compute them, so the documents show real totals.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings

from billing.models import Invoice, InvoiceLine, InvoiceVat
from billing.services.issue import buyer_snapshot, seller_snapshot
from billing.vat import line_amount, totals, vat_treatment
from tests.factories import OrganisationFactory

_sequence = itertools.count(1)

# A line is (description, component code, unit, quantity, unit price), or the
# shorthand (description, component code, quantity, unit price) in ``DEFAULT_UNIT``.
DEFAULT_UNIT = "stuk"

# A typical licence. Its totals at 21 %: 118.90 net, 24.97 VAT, 143.87 gross.
TYPICAL_LINES = [
    ("Basislicentie AFAS SB", "base", "licentie", "1", "39.00"),
    ("Gebruiker", "users", "gebruiker", "4", "12.50"),
    ("Extra administratie", "administrations", "administratie", "2", "9.95"),
    ("Archieflicentie", "archive", "administratie", "1", "2.50"),
    ("Inkijklicentie", "view_only", "licentie", "1", "7.50"),
]

# A small licence. Its totals at 21 %: 76.50 net, 16.07 VAT, 92.57 gross.
STANDARD_LINES = [
    ("Basislicentie", "base", DEFAULT_UNIT, "1", "39.00"),
    ("Gebruiker", "users", DEFAULT_UNIT, "3", "12.50"),
]

# A valid Belgian enterprise number (mod 97 check, PEPPOL-COMMON-R043).
BE_ENTERPRISE_NUMBER = "0403170701"
_enterprise_bases = itertools.count(4031708)

# The Dutch customer's KvK number (the first one per test gets it).
NL_KVK_NUMBER = "87654321"


def be_enterprise_number(base: int) -> str:
    """A 10-digit Belgian enterprise number whose last two digits are 97 - base mod 97."""
    return f"{base:08d}{97 - base % 97:02d}"


def _registration_taken(country: str, number: str) -> bool:
    from licensing.models import Organisation

    return Organisation.objects.filter(country=country, kvk_number=number).exists()


def dutch_organisation(**overrides):
    """A Dutch business; the first one per test has KvK ``NL_KVK_NUMBER``."""
    defaults = {
        "legal_name": "Bakkerij De Gouden Korst B.V.",
        "vat_id": "NL001234567B01",
        "street": "Kerkstraat 1",
        "postcode": "3511 AB",
        "city": "Utrecht",
    }
    if not _registration_taken("NL", NL_KVK_NUMBER):
        defaults["kvk_number"] = NL_KVK_NUMBER
    # Otherwise the factory's own sequence keeps the registration unique.
    return OrganisationFactory(**(defaults | overrides))


def belgian_organisation(**overrides):
    """A Belgian business; the first one per test has ``BE_ENTERPRISE_NUMBER``."""
    number = BE_ENTERPRISE_NUMBER
    while _registration_taken("BE", number):
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


def _line_rows(lines) -> list[tuple[str, str, str, Decimal, Decimal]]:
    rows = []
    for line in lines:
        if len(line) == 4:
            description, code, quantity, price = line
            unit = DEFAULT_UNIT
        else:
            description, code, unit, quantity, price = line
        rows.append((description, code, unit, Decimal(quantity), Decimal(price)))
    return rows


def make_invoice(
    *,
    organisation=None,
    lines=TYPICAL_LINES,
    number: str | None = None,
    issue_date: date = date(2027, 1, 1),
    period: tuple[date, date] | None = (date(2027, 1, 1), date(2027, 1, 31)),
    buyer_reference: str = "OVK-2026-00042",
    **fields,
) -> Invoice:
    """An issued subscription invoice (a new Dutch customer by default).

    ``lines`` take either shape described at ``DEFAULT_UNIT``; ``fields``
    override snapshot fields, e.g. ``seller_name``.
    """
    organisation = organisation or dutch_organisation()
    treatment = vat_treatment(buyer_country=organisation.country, buyer_vat_id=organisation.vat_id)
    rows = _line_rows(lines)
    amounts = [line_amount(quantity, price) for *_rest, quantity, price in rows]
    result = totals((treatment.category, treatment.rate, amount) for amount in amounts)
    invoice = Invoice.objects.create(
        **{
            "number": number or f"2027-{next(_sequence):06d}",
            "kind": Invoice.Kind.INVOICE,
            "purpose": Invoice.Purpose.SUBSCRIPTION,
            "organisation": organisation,
            "issue_date": issue_date,
            "due_date": issue_date + timedelta(days=settings.INVOICE_PAYMENT_TERM_DAYS),
            "period_start": period[0] if period else None,
            "period_end": period[1] if period else None,
            "net_total": result.net,
            "vat_total": result.vat,
            "gross_total": result.gross,
            "vat_note": treatment.note,
            "buyer_reference": buyer_reference,
            **seller_snapshot(),
            **buyer_snapshot(organisation),
            **fields,
        }
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=description,
            component_code=code,
            unit=unit,
            quantity=quantity,
            unit_price=price,
            net_amount=amount,
            vat_category=treatment.category,
            vat_rate=treatment.rate,
        )
        for position, ((description, code, unit, quantity, price), amount) in enumerate(
            zip(rows, amounts, strict=True), start=1
        )
    )
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
    return invoice


def make_credit_note(
    invoice: Invoice,
    *,
    reason: str = "Gebruikers dubbel gefactureerd",
    number: str | None = None,
    negative: bool = False,
) -> Invoice:
    """A credit note for the whole of ``invoice``, issued five days later.

    Stored with positive amounts as the credit-note service does (the UBL
    CreditNote view); ``negative`` stores them below zero instead (the books'
    view). The renderers must produce the same document from both.
    """
    sign = Decimal(-1) if negative else Decimal(1)
    issue_date = invoice.issue_date + timedelta(days=5)
    credit = Invoice.objects.create(
        number=number or f"C2027-{next(_sequence):06d}",
        kind=Invoice.Kind.CREDIT_NOTE,
        purpose=invoice.purpose,
        organisation=invoice.organisation,
        agreement=invoice.agreement,
        credited_invoice=invoice,
        reason=reason,
        issue_date=issue_date,
        due_date=issue_date,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        net_total=invoice.net_total * sign,
        vat_total=invoice.vat_total * sign,
        gross_total=invoice.gross_total * sign,
        vat_note=invoice.vat_note,
        buyer_reference=invoice.buyer_reference,
        **{name: getattr(invoice, name) for name in (*SELLER_FIELDS, *BUYER_FIELDS)},
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
        for line in invoice.lines.all()
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
    """Enough of a PDF to embed: the UBL renderer only base64-encodes it."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


SELLER_FIELDS = (
    "seller_name",
    "seller_street",
    "seller_postcode",
    "seller_city",
    "seller_country",
    "seller_kvk",
    "seller_vat_id",
    "seller_iban",
    "seller_bic",
)
BUYER_FIELDS = (
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
