"""The invoice and credit-note PDF (R8, R9, R10): what it says, in Dutch, on one A4 page."""

import io
import re
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import translation
from pypdf import PdfReader

from billing.documents.pdf import PdfRenderer
from tests.billing.invoice_factories import (
    TYPICAL_LINES,
    belgian_organisation,
    make_credit_note,
    make_invoice,
)

pytestmark = pytest.mark.django_db

A4_POINTS = (595, 842)


def render(invoice, renderer=None):
    return (renderer or PdfRenderer()).render(invoice)


def read(pdf: bytes) -> tuple[PdfReader, str]:
    """The parsed PDF and its text with runs of whitespace folded to one space."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return reader, re.sub(r"\s+", " ", text)


def test_pdf_renders_one_a4_page_for_a_typical_licence():
    invoice = make_invoice(number="2027-000001")

    filename, content_type, pdf = render(invoice)

    assert (filename, content_type) == ("2027-000001.pdf", "application/pdf")
    assert pdf.startswith(b"%PDF-")
    reader, _text = read(pdf)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == A4_POINTS


def test_pdf_six_lines_still_fit_on_one_page_for_a_belgian_customer():
    lines = [*TYPICAL_LINES, ("Extra gebruiker jaarafsluiting", "users", "gebruiker", "2", "12.50")]
    invoice = make_invoice(organisation=belgian_organisation(), lines=lines)

    reader, _text = read(render(invoice)[2])

    assert len(reader.pages) == 1


def test_r8_pdf_shows_quantity_unit_price_and_amount_per_component():
    invoice = make_invoice()

    _reader, text = read(render(invoice)[2])

    for description, _code, unit, _quantity, _price in TYPICAL_LINES:
        assert description in text
        assert unit in text
    # Gebruiker: 4 × € 12,50 = € 50,00; Extra administratie: 2 × € 9,95 = € 19,90.
    assert "Gebruiker 4 gebruiker € 12,50 € 50,00" in text
    assert "Extra administratie 2 administratie € 9,95 € 19,90" in text


def test_r9_pdf_shows_number_dates_period_due_date_and_totals_in_dutch_notation():
    invoice = make_invoice(number="2027-000007", buyer_reference="OVK-2026-00042")

    _reader, text = read(render(invoice)[2])

    assert "Factuur 2027-000007" in text
    assert "Factuurdatum 1 januari 2027" in text
    assert "Periode 1 januari 2027 t/m 31 januari 2027" in text
    assert "Vervaldatum 15 januari 2027" in text
    assert "Uw referentie OVK-2026-00042" in text
    assert "Totaal excl. btw € 118,90" in text
    assert "Btw 21% over € 118,90 € 24,97" in text
    assert "Totaal te betalen € 143,87" in text
    assert (
        "Betaal binnen 14 dagen, uiterlijk 15 januari 2027, op NL91 ABNA 0417 1643 00 "
        "t.n.v. AFAS Software B.V. o.v.v. 2027-000007." in text
    )


def test_pdf_shows_thousands_in_dutch_notation():
    invoice = make_invoice(lines=[("Gebruiker", "users", "gebruiker", "120", "12.50")])

    _reader, text = read(render(invoice)[2])

    assert "Gebruiker 120 gebruiker € 12,50 € 1.500,00" in text
    assert "Totaal te betalen € 1.815,00" in text


def test_pdf_shows_seller_and_buyer_identities():
    invoice = make_invoice()

    _reader, text = read(render(invoice)[2])

    assert "AFAS Software B.V." in text
    assert "Philipsstraat 9, 3833 LC Leusden" in text
    assert "KvK 12345678 · Btw-id NL004495445B01" in text
    assert "IBAN NL91 ABNA 0417 1643 00 · BIC ABNANL2A" in text
    assert "Bakkerij De Gouden Korst B.V. Kerkstraat 1 3511 AB Utrecht" in text
    assert "KvK 87654321 · Btw-id NL001234567B01" in text


@override_settings(
    VENDOR_NAME="Nieuwe Naam B.V.", VENDOR_IBAN="NL02RABO0123456789", VENDOR_KVK="99999999"
)
def test_pdf_reads_the_seller_from_the_invoice_snapshot_not_from_settings():
    # Issued before the vendor moved bank and renamed: the invoice keeps its own data.
    invoice = make_invoice(
        seller_name="AFAS Software B.V.", seller_iban="NL91ABNA0417164300", seller_kvk="12345678"
    )

    _reader, text = read(render(invoice)[2])

    assert "Nieuwe Naam" not in text and "RABO" not in text and "99999999" not in text
    assert "NL91 ABNA 0417 1643 00" in text and "KvK 12345678" in text


def test_r10_pdf_for_a_belgian_business_states_reverse_charge():
    invoice = make_invoice(organisation=belgian_organisation())

    _reader, text = read(render(invoice)[2])

    assert "Boulangerie Van Damme BV Grote Markt 7 1000 Brussel België" in text
    assert "Ondernemingsnr. 0403170701 · Btw-id BE0403170701" in text
    assert "Btw verlegd (0%) over € 118,90 € 0,00" in text
    assert "Btw verlegd – intracommunautaire dienst, art. 196 Btw-richtlijn 2006/112/EG" in text
    assert "Totaal te betalen € 118,90" in text


@pytest.mark.parametrize("negative", [False, True], ids=["stored-positive", "stored-negative"])
def test_r9_credit_note_pdf_names_the_credited_invoice_and_the_reason(negative):
    invoice = make_invoice(number="2027-000010")
    credit_note = make_credit_note(
        invoice, number="C2027-000001", reason="Gebruikers dubbel gefactureerd", negative=negative
    )

    filename, _content_type, pdf = render(credit_note)

    assert filename == "C2027-000001.pdf"
    _reader, text = read(pdf)
    assert "Creditnota C2027-000001" in text
    assert "Creditnotadatum 6 januari 2027" in text
    assert "Op factuur 2027-000010" in text
    assert "Creditering van factuur 2027-000010 van 1 januari 2027." in text
    assert "Gebruikers dubbel gefactureerd" in text
    # Money goes back: negative amounts, whichever sign the rows were stored with.
    assert "Gebruiker -4 gebruiker € 12,50 € -50,00" in text
    assert "Totaal creditnota € -143,87" in text
    assert "Vervaldatum" not in text and "Betaal binnen" not in text


def test_pdf_payment_block_can_be_swapped_for_direct_debit():
    invoice = make_invoice(number="2027-000020")
    renderer = PdfRenderer(
        payment_text_for=lambda invoice: (
            f"Het bedrag van factuur {invoice.number} wordt op 22 januari 2027 automatisch "
            "geïncasseerd (machtigingskenmerk SB-000123)."
        )
    )

    _reader, text = read(render(invoice, renderer)[2])

    assert "wordt op 22 januari 2027 automatisch geïncasseerd" in text
    assert "SB-000123" in text
    assert "Betaal binnen" not in text


def test_pdf_is_dutch_whatever_language_is_active():
    invoice = make_invoice()

    with translation.override("en"):
        _reader, text = read(render(invoice)[2])

    assert "1 januari 2027" in text and "January" not in text


def test_pdf_same_invoice_gives_the_same_bytes():
    invoice = make_invoice()

    assert render(invoice)[2] == render(invoice)[2]


def test_pdf_escapes_text_from_the_invoice():
    invoice = make_invoice(
        lines=[("<b>Gebruiker</b> & <img src='x.png'>", "users", "stuk", "1", "1.00")]
    )

    _reader, text = read(render(invoice)[2])

    assert "<b>Gebruiker</b> & <img src='x.png'> 1 stuk" in text


def test_pdf_long_invoice_continues_on_a_second_page_with_the_number_in_the_footer():
    lines = [
        (f"Administratie {i}", "administrations", "administratie", "1", "9.95") for i in range(40)
    ]
    invoice = make_invoice(number="2027-000030", lines=lines)

    reader, _text = read(render(invoice)[2])

    assert len(reader.pages) == 2
    second_page = re.sub(r"\s+", " ", reader.pages[1].extract_text())
    assert "Factuur 2027-000030 · pagina 2 van 2" in second_page
    assert "Totaal te betalen € 481,58" in second_page  # 40 × 9,95 = 398,00 + 83,58 btw


def test_pdf_quantity_with_a_fraction_is_written_the_dutch_way():
    invoice = make_invoice(lines=[("Consultancy", "", "uur", "1.5", "100.00")])

    _reader, text = read(render(invoice)[2])

    assert "Consultancy 1,5 uur € 100,00 € 150,00" in text
    assert Decimal("150.00") == invoice.net_total
