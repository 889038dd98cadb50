"""The invoice and credit-note PDF (R8, R9, R10), rendered with WeasyPrint.

The PDF is built only from the invoice's snapshot fields, lines and VAT rows,
so it renders the same in ten years; amounts are never recomputed here.

Speed (the billing run renders one per invoice; target ≥ 15 PDFs/s per core):
one small stylesheet compiled once, one font family from the machine, an
inline SVG logo and no other images, no network, and a FontConfiguration
shared by every render of a thread (Pango's font map is not thread-safe).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.template.loader import get_template
from django.utils import dateformat, translation

from afas_sb.money import format_eur
from billing.documents.base import DocumentRenderer

TEMPLATE = "billing/invoice_pdf.html"
STYLESHEET = Path(__file__).with_name("invoice_pdf.css")

COUNTRY_NAMES = {"NL": "Nederland", "BE": "België"}
# What a party's legal registration number is called, per country.
REGISTRATION_LABELS = {"NL": "KvK", "BE": "Ondernemingsnr."}
VAT_CATEGORY_LABELS = {
    "S": "Btw {rate}",
    "AE": "Btw verlegd ({rate})",
    "Z": "Btw 0%",
    "E": "Vrijgesteld van btw",
    "K": "Intracommunautaire levering",
    "G": "Export buiten de EU",
}


class PdfRenderer(DocumentRenderer):
    """Renders an Invoice as an A4 PDF from ``templates/billing/invoice_pdf.html``.

    ``payment_text_for(invoice)`` returns the payment paragraph; the default
    asks for a bank transfer. Collections pass one that says the amount is
    collected by SEPA direct debit on a date, with the mandate reference.
    """

    format = "pdf"
    content_type = "application/pdf"

    def __init__(self, *, payment_text_for: Callable[[object], str] | None = None):
        self.payment_text_for = payment_text_for or default_payment_text

    def render(self, invoice, *, payment_text: str | None = None) -> tuple[str, str, bytes]:
        """(filename, content_type, bytes)."""
        html = self.html(invoice, payment_text=payment_text)
        pdf = _write_pdf(html, identifier=invoice.number.encode())
        return f"{invoice.number}.pdf", self.content_type, pdf

    def html(self, invoice, *, payment_text: str | None = None) -> str:
        # Dutch month names whatever language the caller (a request, a worker) has active.
        with translation.override("nl"):
            context = invoice_context(invoice)
            context["payment_text"] = (
                payment_text if payment_text is not None else self.payment_text_for(invoice)
            )
            return get_template(TEMPLATE).render(context)


# -- what the template shows ----------------------------------------------------


def invoice_context(invoice) -> dict:
    """Everything the template prints, already formatted (Dutch notation)."""
    credit_note = invoice.kind == "credit_note"
    # A credit note reads as money going back: amounts below zero, whichever
    # sign convention it was stored with.
    sign = -1 if credit_note and (invoice.net_total > 0 or invoice.gross_total > 0) else 1
    title = "Creditnota" if credit_note else "Factuur"

    facts = [
        (f"{title}nummer", invoice.number),
        (f"{title}datum", dutch_date(invoice.issue_date)),
    ]
    if invoice.period_start and invoice.period_end:
        facts.append(("Periode", dutch_period(invoice.period_start, invoice.period_end)))
    if not credit_note:
        facts.append(("Vervaldatum", dutch_date(invoice.due_date)))
    if invoice.buyer_reference:
        facts.append(("Uw referentie", invoice.buyer_reference))
    if credit_note:
        credited = invoice.credited_invoice
        facts.append(("Op factuur", credited.number))
        subtitle = (
            f"Creditering van factuur {credited.number} van {dutch_date(credited.issue_date)}."
        )
    elif invoice.purpose == "subscription" and invoice.period_start and invoice.period_end:
        subtitle = (
            "Abonnement AFAS SB, maandelijks vooraf gefactureerd, voor de periode "
            f"{dutch_period(invoice.period_start, invoice.period_end)}."
        )
    else:
        subtitle = ""

    invoice_lines = sorted(invoice.lines.all(), key=lambda line: line.position)
    lines = [
        {
            "description": line.description,
            "quantity": dutch_quantity(line.quantity * sign),
            "unit": line.unit,
            "unit_price": format_eur(line.unit_price),
            "vat": dutch_percentage(line.vat_rate),
            "amount": format_eur(line.net_amount * sign),
        }
        for line in invoice_lines
    ]
    vat_rows = [
        {
            "label": VAT_CATEGORY_LABELS.get(row.category, "Btw {rate}").format(
                rate=dutch_percentage(row.rate)
            ),
            "taxable": format_eur(row.taxable_amount * sign),
            "tax": format_eur(row.tax_amount * sign),
        }
        for row in sorted(invoice.vat_breakdown.all(), key=lambda row: (row.category, row.rate))
    ]
    # A VAT column per line only says something when rates differ; the totals
    # carry the rate otherwise.
    show_line_vat = len({(line.vat_category, line.vat_rate) for line in invoice_lines}) > 1
    return {
        "show_line_vat": show_line_vat,
        "title": title,
        "number": invoice.number,
        "created": invoice.issue_date.isoformat(),
        "subtitle": subtitle,
        "facts": facts,
        "seller": {
            "name": invoice.seller_name,
            "street": invoice.seller_street,
            "postcode": invoice.seller_postcode,
            "city": invoice.seller_city,
            "country_name": COUNTRY_NAMES.get(invoice.seller_country, invoice.seller_country),
            "kvk": invoice.seller_kvk,
            "vat_id": invoice.seller_vat_id,
            "iban": dutch_iban(invoice.seller_iban),
            "bic": invoice.seller_bic,
        },
        "buyer": {
            "name": invoice.buyer_name,
            "street": invoice.buyer_street,
            "postcode": invoice.buyer_postcode,
            "city": invoice.buyer_city,
            # A Dutch address needs no country line on a Dutch invoice.
            "country_name": ""
            if invoice.buyer_country == invoice.seller_country
            else COUNTRY_NAMES.get(invoice.buyer_country, invoice.buyer_country),
            "registration_label": REGISTRATION_LABELS.get(invoice.buyer_country, "KvK"),
            "kvk": invoice.buyer_kvk,
            "vat_id": invoice.buyer_vat_id,
        },
        "lines": lines,
        "vat_rows": vat_rows,
        "vat_note": invoice.vat_note,
        "net_total": format_eur(invoice.net_total * sign),
        "vat_total": format_eur(invoice.vat_total * sign),
        "gross_total": format_eur(invoice.gross_total * sign),
        "gross_label": "Totaal creditnota" if credit_note else "Totaal te betalen",
        "reason": invoice.reason if credit_note else "",
    }


def default_payment_text(invoice) -> str:
    """Bank transfer within the term (R9); a credit note is paid back or set off by us."""
    if invoice.kind == "credit_note":
        return (
            "Het gecrediteerde bedrag verrekenen wij met uw openstaande facturen; "
            "is er niets te verrekenen, dan storten wij het terug op uw rekening."
        )
    days = (invoice.due_date - invoice.issue_date).days
    return (
        f"Betaal binnen {days} dagen, uiterlijk {dutch_date(invoice.due_date)}, "
        f"op {dutch_iban(invoice.seller_iban)} t.n.v. {invoice.seller_name} "
        f"o.v.v. {invoice.number}."
    )


def dutch_date(value: date) -> str:
    """1 januari 2027 (call under translation.override("nl"))."""
    return dateformat.format(value, "j F Y")


def dutch_period(start: date, end: date) -> str:
    return f"{dutch_date(start)} t/m {dutch_date(end)}"


def dutch_quantity(value: Decimal) -> str:
    """3 or 1,5 — quantities are stored with three places but shown without padding."""
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def dutch_percentage(value: Decimal) -> str:
    """21% or 9,5% or 0%."""
    return f"{dutch_quantity(Decimal(value))}%"


def dutch_iban(value: str) -> str:
    """NL91 ABNA 0417 1643 00: the paper notation, in groups of four."""
    compact = "".join(value.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# -- WeasyPrint, set up once per thread -------------------------------------------

_local = threading.local()


def _weasyprint():
    """(weasyprint module, FontConfiguration, compiled CSS, URL fetcher) of this thread."""
    setup = getattr(_local, "weasyprint", None)
    if setup is None:
        # Imported lazily: loading WeasyPrint (Pango, fontconfig) costs a
        # second, which a web request that never renders a PDF should not pay.
        import weasyprint
        from weasyprint.text.fonts import FontConfiguration

        font_config = FontConfiguration()
        # Only data: URLs may be fetched: a document never reaches the network or the disk.
        fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
        stylesheet = weasyprint.CSS(
            string=STYLESHEET.read_text(encoding="utf-8"),
            font_config=font_config,
            url_fetcher=fetcher,
        )
        setup = _local.weasyprint = (weasyprint, font_config, stylesheet, fetcher)
    return setup


def _write_pdf(html: str, *, identifier: bytes) -> bytes:
    weasyprint, font_config, stylesheet, fetcher = _weasyprint()
    with _gc_paused():
        document = weasyprint.HTML(string=html, url_fetcher=fetcher)
        return document.write_pdf(
            stylesheets=[stylesheet],
            font_config=font_config,
            optimize_images=False,
            presentational_hints=False,
            # From the number, not random: the same invoice gives the same bytes.
            pdf_identifier=identifier,
        )


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused():
    """The cyclic garbage collector off while WeasyPrint renders.

    A render allocates a few hundred thousand short-lived objects, so the
    collector would run dozens of times per PDF scanning them (about 15 % of
    the render time). Reference counting still frees nearly everything at
    once; the few cycles wait for the next collection. Counted, so
    overlapping renders in threads restore the collector exactly once.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
