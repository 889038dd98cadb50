"""How fast invoices become documents: PDFs and UBL files per second per core.

    .venv/bin/python -m bench.documents [--count N] [--lines L] [--plain]

Renders N documents (default 200) of one typical subscription invoice (five
licence lines, Dutch VAT) in this one process, after a warm-up render, and
prints documents per second for the PDF and — when ``billing.documents.ubl``
exists — the UBL (with that PDF embedded, as the billing run sends it), with
the ratio to the targets: PDF ≥ 15/s per core, UBL ≥ 500/s per core.
``--plain`` also times the same HTML rendered the plain WeasyPrint way.

The invoice is built in memory from unsaved model instances with their lines
and VAT rows attached, so the bench needs no database.
"""

import argparse
import logging
import os
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "afas_sb.settings.dev")

import django

django.setup()
# WeasyPrint logs every rendering step at INFO: seven lines per PDF drown the figures.
logging.getLogger("weasyprint").setLevel(logging.WARNING)

from django.conf import settings  # noqa: E402

from billing.models import Invoice, InvoiceLine, InvoiceVat  # noqa: E402
from billing.services.issue import seller_snapshot  # noqa: E402
from billing.vat import DUTCH_STANDARD, line_amount, totals  # noqa: E402

PDF_TARGET = 15.0
UBL_TARGET = 500.0

# (description, component code, unit, quantity, unit price): a typical licence.
TYPICAL_LICENCE = [
    ("Basislicentie AFAS SB", "base", "licentie", "1", "39.00"),
    ("Gebruiker", "users", "gebruiker", "4", "12.50"),
    ("Extra administratie", "administrations", "administratie", "2", "9.95"),
    ("Archieflicentie", "archive", "administratie", "1", "2.50"),
    ("Inkijklicentie", "view_only", "licentie", "1", "7.50"),
]


def typical_invoice(line_count: int = 5) -> Invoice:
    """An issued-looking subscription invoice that lives only in memory."""
    rows = [TYPICAL_LICENCE[i % len(TYPICAL_LICENCE)] for i in range(line_count)]
    treatment = DUTCH_STANDARD
    amounts = [line_amount(Decimal(q), Decimal(p)) for _d, _c, _u, q, p in rows]
    result = totals((treatment.category, treatment.rate, amount) for amount in amounts)
    issue = date(2027, 1, 1)
    invoice = Invoice(
        pk=1,  # never saved; a pk lets the related managers serve the lists below
        number="2027-000123",
        kind=Invoice.Kind.INVOICE,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        issue_date=issue,
        due_date=issue + timedelta(days=settings.INVOICE_PAYMENT_TERM_DAYS),
        period_start=issue,
        period_end=date(2027, 1, 31),
        net_total=result.net,
        vat_total=result.vat,
        gross_total=result.gross,
        vat_note=treatment.note,
        buyer_reference="OVK-2026-00042",
        **seller_snapshot(),
        buyer_name="Bakkerij De Gouden Korst B.V.",
        buyer_street="Kerkstraat 1",
        buyer_postcode="3511 AB",
        buyer_city="Utrecht",
        buyer_country="NL",
        buyer_kvk="12345678",
        buyer_vat_id="NL001234567B01",
        buyer_email="facturen@goudenkorst.nl",
    )
    lines = [
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=description,
            component_code=code,
            unit=unit,
            quantity=Decimal(quantity),
            unit_price=Decimal(price),
            net_amount=amount,
            vat_category=treatment.category,
            vat_rate=treatment.rate,
        )
        for position, ((description, code, unit, quantity, price), amount) in enumerate(
            zip(rows, amounts, strict=True), start=1
        )
    ]
    vat_rows = [
        InvoiceVat(
            invoice=invoice,
            category=row.category,
            rate=row.rate,
            taxable_amount=row.taxable_amount,
            tax_amount=row.tax_amount,
        )
        for row in result.breakdown
    ]
    # What prefetch_related would have loaded: related managers read this, no query.
    invoice._prefetched_objects_cache = {
        "lines": lines,
        "vat_breakdown": vat_rows,
        "documents": [],
    }
    return invoice


def measure(label: str, render, count: int, target: float) -> bytes:
    output = render()  # warm-up: fonts, stylesheet, template compiled once per process
    start = time.perf_counter()
    for _ in range(count):
        render()
    elapsed = time.perf_counter() - start
    rate = count / elapsed
    print(
        f"{label:<5} {rate:>8.1f} documents/s per core  "
        f"({elapsed * 1000 / count:.1f} ms each, {len(output):,} bytes)  "
        f"target ≥ {target:g}/s: ratio {rate / target:.2f}"
        f" {'OK' if rate >= target else 'BELOW TARGET'}"
    )
    return output


def measure_plain(html: str, count: int) -> None:
    """The same document the plain way: stylesheet inline, new fonts, GC on, each time."""
    import weasyprint

    from billing.documents.pdf import STYLESHEET

    inline = html.replace("</head>", f"<style>{STYLESHEET.read_text()}</style></head>")
    measure("plain", lambda: weasyprint.HTML(string=inline).write_pdf(), count, PDF_TARGET)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="documents per format")
    parser.add_argument("--lines", type=int, default=5, help="invoice lines")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also time the same HTML rendered the plain way (for comparison)",
    )
    args = parser.parse_args(argv)

    from billing.documents.pdf import PdfRenderer

    invoice = typical_invoice(args.lines)
    print(f"{args.count} renders of one invoice with {args.lines} lines, one process\n")
    pdf_renderer = PdfRenderer()
    pdf = measure("PDF", lambda: pdf_renderer.render(invoice)[2], args.count, PDF_TARGET)
    if args.plain:
        measure_plain(pdf_renderer.html(invoice), min(args.count, 50))

    try:
        from billing.documents.ubl import UblRenderer
    except ImportError:
        print("UBL   skipped: billing.documents.ubl does not exist yet")
        return
    ubl_renderer = UblRenderer()
    measure(
        "UBL",
        lambda: ubl_renderer.render(invoice, pdf_bytes=pdf)[2],
        args.count,
        UBL_TARGET,
    )


if __name__ == "__main__":
    main()
