"""UBL 2.1 Invoice / CreditNote per Peppol BIS Billing 3.0 (R9, R10).

Every generated document passes the UBL 2.1 XSD, the CEN EN 16931 rules
(schematron run by Saxon) and the Peppol BIS 3 / Dutch rules written out in
``ubl_validation``; a failing rule fails the test with its id.
"""

import base64
import hashlib
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from billing.documents.ubl import (
    CUSTOMIZATION_ID,
    PROFILE_ID,
    PaymentMeans,
    UblRenderer,
)
from billing.models import Invoice, InvoiceDocument
from billing.vat import REVERSE_CHARGE
from tests.billing.invoice_factories import (
    BE_ENTERPRISE_NUMBER,
    STANDARD_LINES,
    belgian_organisation,
    dutch_organisation,
    fake_pdf,
    make_credit_note,
    make_invoice,
)
from tests.billing.ubl_validation import (  # noqa: F401 - ubl_validator_fixture is a fixture
    CREDIT_NOTE_ROOT,
    INVOICE_ROOT,
    NS,
    parse_safely,
    peppol_nl_violations,
    ubl_validator_fixture,
)

pytestmark = pytest.mark.django_db

SUPPLIER = "cac:AccountingSupplierParty/cac:Party"
CUSTOMER = "cac:AccountingCustomerParty/cac:Party"

ODD_LINES = [
    ("Basislicentie", "base", "1", "39.00"),
    ("Gebruiker", "users", "7", "12.49"),
    ("Extra administratie", "administrations", "13", "9.95"),
    ("Archieflicentie", "archive", "3", "2.33"),
    ("Inkijklicentie", "view_only", "1", "0.01"),
    # A pro-rata first month: a fraction of a month at the full price.
    ("Basislicentie 11/31 januari", "base", "0.355", "39.00"),
]


def render(invoice, **kwargs) -> bytes:
    filename, content_type, content = UblRenderer().render(invoice, **kwargs)
    assert filename == f"{invoice.number}.xml"
    assert content_type == "application/xml"
    return content


def text(tree, path: str) -> str:
    return str(tree.getroot().xpath(f"string({path})", namespaces=NS))


def values(tree, path: str) -> list[str]:
    return [node if isinstance(node, str) else node.text for node in xpath(tree, path)]


def xpath(tree, path: str):
    return tree.getroot().xpath(path, namespaces=NS)


def rules_broken(tree) -> set[str]:
    return {finding.rule for finding in peppol_nl_violations(tree)}


# -- every kind of document passes XSD, EN 16931 and the Peppol/NL rules -------


def test_r10_ubl_dutch_invoice_standard_rate_is_valid(ubl_validator):
    invoice = make_invoice(lines=STANDARD_LINES)

    tree = ubl_validator.assert_valid(render(invoice))

    assert tree.getroot().tag == INVOICE_ROOT
    assert text(tree, "cbc:ID") == invoice.number
    assert text(tree, "cbc:IssueDate") == "2027-01-01"
    assert text(tree, "cbc:DueDate") == "2027-01-15"  # R9: 14 days
    assert text(tree, "cbc:InvoiceTypeCode") == "380"
    assert text(tree, "cbc:DocumentCurrencyCode") == "EUR"
    assert text(tree, "cac:InvoicePeriod/cbc:StartDate") == "2027-01-01"
    assert text(tree, "cac:InvoicePeriod/cbc:EndDate") == "2027-01-31"
    subtotal = "cac:TaxTotal/cac:TaxSubtotal"
    assert values(tree, f"{subtotal}/cac:TaxCategory/cbc:ID") == ["S"]
    assert text(tree, f"{subtotal}/cac:TaxCategory/cbc:Percent") == "21.00"
    assert text(tree, f"{subtotal}/cbc:TaxableAmount") == "76.50"
    assert text(tree, f"{subtotal}/cbc:TaxAmount") == "16.07"
    assert text(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "92.57"
    assert set(values(tree, "//@currencyID")) == {"EUR"}
    assert text(tree, "cac:PaymentTerms/cbc:Note").startswith("Betalen binnen 14 dagen")


def test_r10_ubl_belgian_invoice_reverse_charge_is_valid(ubl_validator):
    invoice = make_invoice(organisation=belgian_organisation(), lines=STANDARD_LINES)

    tree = ubl_validator.assert_valid(render(invoice))

    category = "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory"
    assert text(tree, f"{category}/cbc:ID") == "AE"
    assert text(tree, f"{category}/cbc:Percent") == "0.00"
    assert text(tree, f"{category}/cbc:TaxExemptionReasonCode") == "VATEX-EU-AE"
    assert text(tree, f"{category}/cbc:TaxExemptionReason") == REVERSE_CHARGE.exemption_reason
    assert text(tree, "cac:TaxTotal/cbc:TaxAmount") == "0.00"
    assert values(tree, "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID") == [
        "AE",
        "AE",
    ]
    assert text(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "76.50"
    # The legal mention of the PDF travels as the document's one note.
    assert text(tree, "cbc:Note") == REVERSE_CHARGE.note
    # Belgian buyer: enterprise number under scheme 0208, VAT id BE….
    assert xpath(tree, f"{CUSTOMER}/cbc:EndpointID/@schemeID") == ["0208"]
    assert text(tree, f"{CUSTOMER}/cbc:EndpointID") == BE_ENTERPRISE_NUMBER
    assert xpath(tree, f"{CUSTOMER}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == ["0208"]
    assert text(tree, f"{CUSTOMER}/cac:PartyTaxScheme/cbc:CompanyID") == (
        f"BE{BE_ENTERPRISE_NUMBER}"
    )


@pytest.mark.parametrize("negative", [True, False], ids=["stored-negative", "stored-positive"])
def test_r9_ubl_credit_note_is_valid_and_states_positive_amounts(ubl_validator, negative):
    invoice = make_invoice(lines=STANDARD_LINES)
    credit = make_credit_note(invoice, reason="Dubbel gefactureerd", negative=negative)

    tree = ubl_validator.assert_valid(render(credit))

    assert tree.getroot().tag == CREDIT_NOTE_ROOT
    assert text(tree, "cbc:CreditNoteTypeCode") == "381"
    assert text(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == (
        invoice.number
    )
    assert text(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate") == (
        "2027-01-01"
    )
    assert text(tree, "cbc:Note") == "Dubbel gefactureerd"
    assert values(tree, "cac:CreditNoteLine/cbc:CreditedQuantity") == ["1", "3"]
    assert values(tree, "cac:CreditNoteLine/cbc:LineExtensionAmount") == ["39.00", "37.50"]
    assert text(tree, "cac:TaxTotal/cbc:TaxAmount") == "16.07"
    assert text(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "92.57"
    # We pay a credit note, so no payment means of ours; the terms say what happens.
    assert xpath(tree, "cac:PaymentMeans") == []
    assert invoice.number in text(tree, "cac:PaymentTerms/cbc:Note")


def test_r10_ubl_reverse_charge_credit_note_is_valid(ubl_validator):
    credit = make_credit_note(make_invoice(organisation=belgian_organisation()), negative=True)

    tree = ubl_validator.assert_valid(render(credit))

    assert text(tree, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == "AE"
    # Reason and legal mention share the one note (PEPPOL-EN16931-R002).
    assert len(xpath(tree, "cbc:Note")) == 1


def test_r10_ubl_embeds_given_pdf_as_attachment(ubl_validator):
    invoice = make_invoice()
    pdf = fake_pdf()

    tree = ubl_validator.assert_valid(render(invoice, pdf_bytes=pdf))

    (binary,) = xpath(
        tree, "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject"
    )
    assert binary.get("mimeCode") == "application/pdf"
    assert binary.get("filename") == f"{invoice.number}.pdf"
    assert base64.b64decode(binary.text) == pdf
    assert text(tree, "cac:AdditionalDocumentReference/cbc:ID") == invoice.number


def test_r10_ubl_embeds_stored_pdf_document(ubl_validator, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = make_invoice()
    pdf = fake_pdf()
    InvoiceDocument.objects.create(
        invoice=invoice,
        format=InvoiceDocument.Format.PDF,
        filename=f"{invoice.number}.pdf",
        content_type="application/pdf",
        file=ContentFile(pdf, name=f"{invoice.number}.pdf"),
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
    )

    tree = ubl_validator.assert_valid(render(invoice))

    binary = text(
        tree, "cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject"
    )
    assert base64.b64decode(binary) == pdf


def test_r10_ubl_refuses_to_embed_stored_pdf_that_fails_its_checksum(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = make_invoice()
    InvoiceDocument.objects.create(
        invoice=invoice,
        format=InvoiceDocument.Format.PDF,
        filename=f"{invoice.number}.pdf",
        content_type="application/pdf",
        file=ContentFile(fake_pdf(), name=f"{invoice.number}.pdf"),
        sha256="0" * 64,
        size=len(fake_pdf()),
    )

    with pytest.raises(ValueError, match="checksum"):
        render(invoice)


def test_r10_ubl_without_pdf_has_no_attachment(ubl_validator):
    tree = ubl_validator.assert_valid(render(make_invoice()))

    assert xpath(tree, "cac:AdditionalDocumentReference") == []


def test_r10_ubl_multi_line_invoice_with_odd_amounts_is_valid(ubl_validator):
    invoice = make_invoice(lines=ODD_LINES)

    tree = ubl_validator.assert_valid(render(invoice))

    assert values(tree, "cac:InvoiceLine/cbc:ID") == ["1", "2", "3", "4", "5", "6"]
    assert values(tree, "cac:InvoiceLine/cbc:InvoicedQuantity") == [
        "1",
        "7",
        "13",
        "3",
        "1",
        "0.355",
    ]
    assert values(tree, "cac:InvoiceLine/cbc:LineExtensionAmount") == [
        "39.00",
        "87.43",
        "129.35",
        "6.99",
        "0.01",
        "13.85",  # 0.355 × 39.00 = 13.845, rounded half up
    ]
    # VAT on the category total, rounded once: 276.63 × 21% = 58.0923.
    assert text(tree, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount") == "276.63"
    assert text(tree, "cac:TaxTotal/cbc:TaxAmount") == "58.09"
    assert text(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "334.72"
    assert (invoice.net_total, invoice.vat_total) == (Decimal("276.63"), Decimal("58.09"))


def test_r10_ubl_one_off_invoice_without_period_is_valid(ubl_validator):
    invoice = make_invoice(period=None, lines=[("Cursus AFAS SB basis", "", "1", "295.00")])

    tree = ubl_validator.assert_valid(render(invoice))

    assert xpath(tree, "cac:InvoicePeriod") == []
    assert xpath(tree, "cac:InvoiceLine/cac:Item/cac:SellersItemIdentification") == []


def test_r10_ubl_buyer_without_vat_id_leaves_tax_scheme_out(ubl_validator):
    invoice = make_invoice(organisation=dutch_organisation(vat_id=""))

    tree = ubl_validator.assert_valid(render(invoice))

    assert xpath(tree, f"{CUSTOMER}/cac:PartyTaxScheme") == []


# -- Peppol BIS 3 rules, each its own test -------------------------------------


def test_r10_peppol_customization_and_profile_ids():
    tree = parse_safely(render(make_invoice()))

    assert CUSTOMIZATION_ID == (
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    )
    assert PROFILE_ID == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert text(tree, "cbc:CustomizationID") == CUSTOMIZATION_ID
    assert text(tree, "cbc:ProfileID") == PROFILE_ID
    assert not rules_broken(tree) & {"PEPPOL-EN16931-R004", "PEPPOL-EN16931-R007"}


def test_r10_peppol_r003_buyer_reference_is_present():
    invoice = make_invoice(buyer_reference="PO-2027-0042")

    tree = parse_safely(render(invoice))

    assert text(tree, "cbc:BuyerReference") == "PO-2027-0042"
    assert "PEPPOL-EN16931-R003" not in rules_broken(tree)


def test_r10_peppol_r003_buyer_reference_falls_back_to_invoice_number(ubl_validator):
    invoice = make_invoice(buyer_reference="")

    tree = ubl_validator.assert_valid(render(invoice))

    assert text(tree, "cbc:BuyerReference") == invoice.number


@pytest.mark.parametrize(
    ("make_buyer", "scheme", "endpoint"),
    [
        (lambda: dutch_organisation(kvk_number="87654321"), "0106", "87654321"),
        (belgian_organisation, "0208", BE_ENTERPRISE_NUMBER),
        (
            lambda: dutch_organisation(
                peppol_scheme="0190", peppol_endpoint_id="00000001003214345000"
            ),
            "0190",
            "00000001003214345000",
        ),
    ],
    ids=["nl-kvk", "be-enterprise-number", "peppol-id"],
)
def test_r10_peppol_r010_r020_both_endpoint_ids_have_a_scheme(
    ubl_validator, make_buyer, scheme, endpoint
):
    invoice = make_invoice(organisation=make_buyer())

    tree = ubl_validator.assert_valid(render(invoice))

    assert xpath(tree, f"{SUPPLIER}/cbc:EndpointID/@schemeID") == ["0106"]
    assert text(tree, f"{SUPPLIER}/cbc:EndpointID") == invoice.seller_kvk
    assert xpath(tree, f"{CUSTOMER}/cbc:EndpointID/@schemeID") == [scheme]
    assert text(tree, f"{CUSTOMER}/cbc:EndpointID") == endpoint
    assert not rules_broken(tree) & {"PEPPOL-EN16931-R010", "PEPPOL-EN16931-R020"}


def test_r10_peppol_r053_one_tax_total_with_subtotals():
    tree = parse_safely(render(make_invoice(lines=ODD_LINES)))

    assert len(xpath(tree, "cac:TaxTotal")) == 1
    assert len(xpath(tree, "cac:TaxTotal/cac:TaxSubtotal")) == 1
    assert "PEPPOL-EN16931-R053" not in rules_broken(tree)


def test_r10_peppol_r061_direct_debit_hook_carries_mandate_id(ubl_validator):
    invoice = make_invoice()
    means = PaymentMeans.direct_debit(
        invoice,
        mandate_id="SB-MANDAAT-000123",
        payer_iban="NL20 INGB 0001 2345 67",
        creditor_id="NL98ZZZ123456780000",
        collection_date=date(2027, 1, 10),
    )

    tree = ubl_validator.assert_valid(render(invoice, payment_means=means))

    assert text(tree, "cac:PaymentMeans/cbc:PaymentMeansCode") == "49"
    mandate = "cac:PaymentMeans/cac:PaymentMandate"
    assert text(tree, f"{mandate}/cbc:ID") == "SB-MANDAAT-000123"
    assert text(tree, f"{mandate}/cac:PayerFinancialAccount/cbc:ID") == "NL20INGB0001234567"
    assert xpath(tree, "cac:PaymentMeans/cac:PayeeFinancialAccount") == []
    assert xpath(tree, f"{SUPPLIER}/cac:PartyIdentification/cbc:ID[@schemeID='SEPA']/text()") == [
        "NL98ZZZ123456780000"
    ]
    assert text(tree, "cac:PaymentTerms/cbc:Note") == (
        "Het bedrag wordt op 10-01-2027 automatisch geïncasseerd "
        "(machtigingskenmerk SB-MANDAAT-000123)."
    )
    assert "PEPPOL-EN16931-R061" not in rules_broken(tree)


def test_r10_peppol_r061_direct_debit_through_renderer_hook(ubl_validator):
    invoice = make_invoice()
    renderer = UblRenderer(
        payment_means_for=lambda inv: PaymentMeans.direct_debit(
            inv, mandate_id="SB-MANDAAT-000777", payer_iban="NL20INGB0001234567"
        )
    )

    _name, _type, content = renderer.render(invoice)

    tree = ubl_validator.assert_valid(content)
    assert text(tree, "cac:PaymentMeans/cac:PaymentMandate/cbc:ID") == "SB-MANDAAT-000777"


def test_r10_peppol_r061_direct_debit_without_mandate_is_refused():
    invoice = make_invoice()

    with pytest.raises(ValueError, match="mandate"):
        PaymentMeans.direct_debit(invoice, mandate_id="", payer_iban="NL20INGB0001234567")
    with pytest.raises(ValueError, match="R061"):
        render(invoice, payment_means=PaymentMeans(code="59", payment_id=invoice.number))


def test_r10_peppol_r008_no_empty_elements_and_r002_one_note_at_most():
    for invoice in (
        make_invoice(organisation=dutch_organisation(vat_id="")),
        make_invoice(organisation=belgian_organisation()),
        make_credit_note(make_invoice(organisation=belgian_organisation()), negative=True),
    ):
        tree = parse_safely(render(invoice))

        assert not rules_broken(tree) & {"PEPPOL-EN16931-R008", "PEPPOL-EN16931-R002"}
        assert len(xpath(tree, "cbc:Note")) <= 1


# -- Dutch rules (NLCIUS in Peppol BIS 3) ---------------------------------------


def test_r9_nl_r001_credit_note_references_its_invoice():
    invoice = make_invoice()

    tree = parse_safely(render(make_credit_note(invoice, negative=True)))

    assert values(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        invoice.number
    ]
    assert "NL-R-001" not in rules_broken(tree)


def test_r10_nl_r002_r004_dutch_addresses_have_street_city_and_postcode():
    tree = parse_safely(render(make_invoice()))

    for party in (SUPPLIER, CUSTOMER):
        address = f"{party}/cac:PostalAddress"
        assert text(tree, f"{address}/cbc:StreetName")
        assert text(tree, f"{address}/cbc:CityName")
        assert text(tree, f"{address}/cbc:PostalZone")
        assert text(tree, f"{address}/cac:Country/cbc:IdentificationCode") == "NL"
    assert text(tree, f"{SUPPLIER}/cac:PostalAddress/cbc:StreetName") == "Philipsstraat 9"
    assert text(tree, f"{CUSTOMER}/cac:PostalAddress/cbc:PostalZone") == "3511 AB"
    assert not rules_broken(tree) & {"NL-R-002", "NL-R-004"}


def test_r10_nl_r003_r005_company_ids_use_kvk_scheme():
    tree = parse_safely(render(make_invoice(organisation=dutch_organisation())))

    assert xpath(tree, f"{SUPPLIER}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == ["0106"]
    assert xpath(tree, f"{CUSTOMER}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == ["0106"]
    assert not rules_broken(tree) & {"NL-R-003", "NL-R-005"}


def test_r10_nl_r007_r008_payment_means_between_dutch_parties():
    invoice = make_invoice()

    tree = parse_safely(render(invoice))

    assert values(tree, "cac:PaymentMeans/cbc:PaymentMeansCode") == ["58"]
    assert text(tree, "cac:PaymentMeans/cbc:PaymentID") == invoice.number
    assert text(tree, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == invoice.seller_iban
    assert text(
        tree, "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID"
    ) == (invoice.seller_bic)
    assert not rules_broken(tree) & {"NL-R-007", "NL-R-008"}


# -- the validators themselves catch what they should ---------------------------


def test_ubl_validator_fails_a_tampered_total_with_its_rule_id(ubl_validator):
    content = render(make_invoice(lines=STANDARD_LINES))
    tampered = content.replace(
        b'<cbc:PayableAmount currencyID="EUR">92.57<',
        b'<cbc:PayableAmount currencyID="EUR">92.58<',
    )
    assert tampered != content

    with pytest.raises(pytest.fail.Exception, match=r"BR-CO-16"):
        ubl_validator.assert_valid(tampered)


def test_ubl_validator_fails_a_schema_violation(ubl_validator):
    content = render(make_invoice()).replace(b"<cbc:DueDate>", b"<cbc:Due>", 1)
    content = content.replace(b"</cbc:DueDate>", b"</cbc:Due>", 1)

    with pytest.raises(pytest.fail.Exception, match="XSD"):
        ubl_validator.assert_valid(content)


def test_ubl_peppol_rules_catch_a_missing_endpoint_and_mandate():
    invoice = make_invoice()
    means = PaymentMeans.direct_debit(
        invoice, mandate_id="SB-MANDAAT-1", payer_iban="NL20INGB0001234567"
    )
    tree = parse_safely(render(invoice, payment_means=means))
    for path in (f"{CUSTOMER}/cbc:EndpointID", "cac:PaymentMeans/cac:PaymentMandate"):
        (node,) = xpath(tree, path)
        node.getparent().remove(node)
    xpath(tree, "cac:PaymentMeans/cbc:PaymentMeansCode")[0].text = "31"

    assert rules_broken(tree) == {"PEPPOL-EN16931-R010", "NL-R-008"}
    xpath(tree, "cac:PaymentMeans/cbc:PaymentMeansCode")[0].text = "49"
    assert rules_broken(tree) == {"PEPPOL-EN16931-R010", "PEPPOL-EN16931-R061"}


def test_ubl_validation_refuses_a_document_with_a_doctype():
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&x;</Invoice>'
    )

    with pytest.raises(AssertionError, match="DOCTYPE"):
        parse_safely(hostile)


def test_ubl_render_makes_no_queries_on_a_prefetched_invoice(django_assert_num_queries):
    invoice = make_credit_note(make_invoice(lines=ODD_LINES), negative=True)
    invoice = (
        Invoice.objects.select_related("credited_invoice")
        .prefetch_related("lines", "vat_breakdown", "documents")
        .get(pk=invoice.pk)
    )

    with django_assert_num_queries(0):
        render(invoice)
