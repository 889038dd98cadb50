"""UBL 2.1 Invoice and CreditNote per Peppol BIS Billing 3.0 (EN 16931), R10.

The document is built only from the invoice's snapshot fields, its lines and
its VAT breakdown, so an invoice renders the same XML in ten years. Amounts are
never recomputed here: the totals and VAT rows were made by ``billing.vat`` at
issue, and the UBL must say exactly what the PDF says.

Speed matters (the billing run renders one per invoice, target ≥ 500/s per
core): the tree is built with ``SubElement`` and Clark names computed once,
and serialised without pretty printing.

Rules the EN 16931 schematron does not check but Peppol and the Dutch CIUS do,
and which this module therefore keeps by construction:
- PEPPOL-EN16931-R008: no empty elements — optional values are left out, never
  written empty;
- R002: at most one ``cbc:Note``; R003: a BuyerReference; R010/R020: both
  EndpointIDs with a schemeID; R053: one TaxTotal with subtotals; R061: a
  mandate id with direct debit (49/59);
- NL-R-001 credit note references its invoice; NL-R-002/004 street, city and
  postcode; NL-R-003/005 CompanyID with scheme 0106 (KvK); NL-R-007/008
  payment means 30/48/49/57/58/59 when the customer pays.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from afas_sb.money import quantize
from billing.documents.base import DocumentRenderer
from billing.models import Invoice
from billing.vat import REVERSE_CHARGE

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_TYPE_CODE = "380"  # UNCL 1001: commercial invoice
CREDIT_NOTE_TYPE_CODE = "381"  # UNCL 1001: credit note

# Electronic address / ICD schemes (Peppol EAS, ISO 6523).
SCHEME_NL_KVK = "0106"
SCHEME_BE_ENTERPRISE = "0208"
# Legal registration scheme per country of the party.
REGISTRATION_SCHEME = {"NL": SCHEME_NL_KVK, "BE": SCHEME_BE_ENTERPRISE}

# UNCL 4461 payment means.
CREDIT_TRANSFER = "30"
SEPA_CREDIT_TRANSFER = "58"
SEPA_DIRECT_DEBIT = "59"
DIRECT_DEBIT = "49"
DIRECT_DEBIT_CODES = frozenset({DIRECT_DEBIT, SEPA_DIRECT_DEBIT})

# Every line is a count of licences, users or administrations: UN/ECE rec. 20 "one".
UNIT_CODE = "C62"

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


class _Tags:
    """Clark names (``{namespace}Local``), each computed once on first use."""

    def __init__(self, namespace: str):
        self._namespace = namespace

    def __getattr__(self, local: str) -> str:
        tag = f"{{{self._namespace}}}{local}"
        setattr(self, local, tag)  # later look-ups are plain attribute reads
        return tag


CAC = _Tags(CAC_NS)
CBC = _Tags(CBC_NS)
_NSMAP_INVOICE = {None: INVOICE_NS, "cac": CAC_NS, "cbc": CBC_NS}
_NSMAP_CREDIT_NOTE = {None: CREDIT_NOTE_NS, "cac": CAC_NS, "cbc": CBC_NS}
_INVOICE_ROOT = f"{{{INVOICE_NS}}}Invoice"
_CREDIT_NOTE_ROOT = f"{{{CREDIT_NOTE_NS}}}CreditNote"

_SubElement = etree.SubElement
_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class PaymentMeans:
    """How the customer pays (BG-16); the hook for direct debit once collections exist.

    ``credit_transfer()`` is what every invoice gets today. Collections pass
    ``direct_debit(...)`` (code 49, with the SEPA mandate and the payer's IBAN)
    through ``UblRenderer(payment_means_for=...)`` or ``render(payment_means=...)``.
    """

    code: str
    payment_id: str  # BT-83 remittance information: the invoice number
    payee_iban: str = ""  # BT-84, required with 30/58 (BR-61)
    payee_bic: str = ""  # BT-86
    payee_name: str = ""  # BT-85
    mandate_id: str = ""  # BT-89, required with 49/59 (PEPPOL-EN16931-R061)
    payer_iban: str = ""  # BT-91, the debited account
    creditor_id: str = ""  # BT-90, SEPA creditor identifier of the seller
    terms_note: str = ""  # BT-20; the renderer writes its own when empty

    @classmethod
    def credit_transfer(cls, invoice) -> PaymentMeans:
        return cls(
            code=SEPA_CREDIT_TRANSFER,
            payment_id=invoice.number,
            payee_iban=_compact(invoice.seller_iban),
            payee_bic=invoice.seller_bic,
            payee_name=invoice.seller_name,
        )

    @classmethod
    def direct_debit(
        cls,
        invoice,
        *,
        mandate_id: str,
        payer_iban: str,
        creditor_id: str = "",
        collection_date: date | None = None,
    ) -> PaymentMeans:
        if not mandate_id or not payer_iban:
            raise ValueError("A direct debit needs the mandate id and the payer's IBAN.")
        when = collection_date or invoice.due_date
        note = (
            f"Het bedrag wordt op {when:%d-%m-%Y} automatisch geïncasseerd "
            f"(machtigingskenmerk {mandate_id})."
        )
        return cls(
            code=DIRECT_DEBIT,
            payment_id=invoice.number,
            mandate_id=mandate_id,
            payer_iban=_compact(payer_iban),
            creditor_id=creditor_id,
            terms_note=note,
        )


def default_payment_means(invoice) -> PaymentMeans | None:
    """Invoices are paid by SEPA credit transfer; a credit note is paid by us, so none.

    (NL-R-007 only asks for payment means when the customer pays.)
    """
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return None
    return PaymentMeans.credit_transfer(invoice)


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def _amount(value: Decimal, sign: int) -> str:
    # Unary minus keeps zero unsigned ("0.00", never "-0.00").
    amount = quantize(value)
    return str(-amount if sign < 0 else amount)


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _rate(value: Decimal) -> str:
    return str(quantize(value))


def _text(parent, tag: str, value: str, **attributes) -> None:
    """A leaf element, left out when empty (PEPPOL-EN16931-R008 forbids empty elements)."""
    if value:
        _SubElement(parent, tag, attributes).text = value


class UblRenderer(DocumentRenderer):
    """Renders an Invoice as UBL 2.1 ``Invoice`` or ``CreditNote`` (Peppol BIS Billing 3.0)."""

    format = "ubl"
    content_type = "application/xml"

    def __init__(self, *, payment_means_for: Callable[[object], PaymentMeans | None] | None = None):
        self.payment_means_for = payment_means_for or default_payment_means

    def render(
        self,
        invoice,
        *,
        pdf_bytes: bytes | None = None,
        payment_means: PaymentMeans | None = None,
    ) -> tuple[str, str, bytes]:
        """(filename, content_type, bytes).

        ``pdf_bytes`` is embedded as the visual representation; without it the
        stored PDF document of the invoice is embedded when there is one.
        ``payment_means`` overrides ``payment_means_for(invoice)``.
        """
        if pdf_bytes is None:
            pdf_bytes = self._stored_pdf(invoice)
        if payment_means is None:
            payment_means = self.payment_means_for(invoice)
        root = self.build(invoice, pdf_bytes=pdf_bytes, payment_means=payment_means)
        content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return f"{invoice.number}.xml", self.content_type, content

    # -- the tree ------------------------------------------------------------

    def build(
        self, invoice, *, pdf_bytes: bytes | None, payment_means: PaymentMeans | None
    ) -> etree._Element:
        credit_note = invoice.kind == Invoice.Kind.CREDIT_NOTE
        # Credit notes may be stored with negative amounts; a UBL CreditNote
        # states them positive (its type already says the money goes back).
        sign = -1 if credit_note and (invoice.net_total < 0 or invoice.gross_total < 0) else 1
        if credit_note:
            root = etree.Element(_CREDIT_NOTE_ROOT, nsmap=_NSMAP_CREDIT_NOTE)
        else:
            root = etree.Element(_INVOICE_ROOT, nsmap=_NSMAP_INVOICE)
        sub = _SubElement

        sub(root, CBC.CustomizationID).text = CUSTOMIZATION_ID
        sub(root, CBC.ProfileID).text = PROFILE_ID
        sub(root, CBC.ID).text = invoice.number
        sub(root, CBC.IssueDate).text = invoice.issue_date.isoformat()
        if credit_note:
            # UBL 2.1 CreditNote has no DueDate: the payment terms note says it.
            sub(root, CBC.CreditNoteTypeCode).text = CREDIT_NOTE_TYPE_CODE
        else:
            sub(root, CBC.DueDate).text = invoice.due_date.isoformat()
            sub(root, CBC.InvoiceTypeCode).text = INVOICE_TYPE_CODE
        # One note at most (PEPPOL-EN16931-R002).
        note = "\n".join(part for part in (invoice.reason, invoice.vat_note) if part)
        _text(root, CBC.Note, note)
        sub(root, CBC.DocumentCurrencyCode).text = invoice.currency
        # PEPPOL-EN16931-R003: the buyer's own reference routes the invoice on
        # their side; without one, our invoice number is the reference they know.
        sub(root, CBC.BuyerReference).text = invoice.buyer_reference or invoice.number

        if invoice.period_start and invoice.period_end:
            period = sub(root, CAC.InvoicePeriod)
            sub(period, CBC.StartDate).text = invoice.period_start.isoformat()
            sub(period, CBC.EndDate).text = invoice.period_end.isoformat()

        if credit_note:
            credited = invoice.credited_invoice
            reference = sub(sub(root, CAC.BillingReference), CAC.InvoiceDocumentReference)
            sub(reference, CBC.ID).text = credited.number
            sub(reference, CBC.IssueDate).text = credited.issue_date.isoformat()

        if pdf_bytes:
            self._attachment(root, invoice, pdf_bytes)

        self._supplier(root, invoice, payment_means)
        self._customer(root, invoice)
        if payment_means is not None:
            self._payment_means(root, payment_means)
        terms = self._terms_note(invoice, payment_means)
        sub(sub(root, CAC.PaymentTerms), CBC.Note).text = terms

        currency = {"currencyID": invoice.currency}
        self._tax_total(root, invoice, sign, currency)

        totals = sub(root, CAC.LegalMonetaryTotal)
        net = _amount(invoice.net_total, sign)
        gross = _amount(invoice.gross_total, sign)
        sub(totals, CBC.LineExtensionAmount, currency).text = net
        sub(totals, CBC.TaxExclusiveAmount, currency).text = net
        sub(totals, CBC.TaxInclusiveAmount, currency).text = gross
        sub(totals, CBC.PayableAmount, currency).text = gross

        self._lines(root, invoice, sign, currency, credit_note)
        return root

    def _attachment(self, root, invoice, pdf_bytes: bytes) -> None:
        """The PDF as the invoice's visual representation (BG-24)."""
        sub = _SubElement
        reference = sub(root, CAC.AdditionalDocumentReference)
        sub(reference, CBC.ID).text = invoice.number
        sub(reference, CBC.DocumentDescription).text = (
            "Creditnota" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "Factuur"
        )
        attachment = sub(reference, CAC.Attachment)
        sub(
            attachment,
            CBC.EmbeddedDocumentBinaryObject,
            {"mimeCode": "application/pdf", "filename": f"{invoice.number}.pdf"},
        ).text = base64.b64encode(pdf_bytes).decode("ascii")

    def _supplier(self, root, invoice, payment_means: PaymentMeans | None) -> None:
        sub = _SubElement
        kvk = _NON_DIGITS.sub("", invoice.seller_kvk)
        party = sub(sub(root, CAC.AccountingSupplierParty), CAC.Party)
        sub(party, CBC.EndpointID, schemeID=SCHEME_NL_KVK).text = kvk
        sub(sub(party, CAC.PartyIdentification), CBC.ID, schemeID=SCHEME_NL_KVK).text = kvk
        if payment_means is not None and payment_means.creditor_id:
            # BT-90: the SEPA creditor id travels as a seller identifier.
            identification = sub(party, CAC.PartyIdentification)
            sub(identification, CBC.ID, schemeID="SEPA").text = payment_means.creditor_id
        sub(sub(party, CAC.PartyName), CBC.Name).text = invoice.seller_name
        self._address(
            party,
            invoice.seller_street,
            invoice.seller_city,
            invoice.seller_postcode,
            invoice.seller_country,
        )
        self._tax_scheme(party, invoice.seller_vat_id)
        legal = sub(party, CAC.PartyLegalEntity)
        sub(legal, CBC.RegistrationName).text = invoice.seller_name
        # NL-R-003: a Dutch supplier's legal id is its KvK number (0106).
        sub(legal, CBC.CompanyID, schemeID=SCHEME_NL_KVK).text = kvk

    def _customer(self, root, invoice) -> None:
        sub = _SubElement
        country = invoice.buyer_country
        registration_scheme = REGISTRATION_SCHEME.get(country, SCHEME_NL_KVK)
        registration = _NON_DIGITS.sub("", invoice.buyer_kvk)
        if invoice.buyer_peppol_id and invoice.buyer_peppol_scheme:
            endpoint_scheme, endpoint = invoice.buyer_peppol_scheme, invoice.buyer_peppol_id
        else:
            endpoint_scheme, endpoint = registration_scheme, registration
        party = sub(sub(root, CAC.AccountingCustomerParty), CAC.Party)
        sub(party, CBC.EndpointID, schemeID=endpoint_scheme).text = endpoint
        identification = sub(party, CAC.PartyIdentification)
        sub(identification, CBC.ID, schemeID=registration_scheme).text = registration
        sub(sub(party, CAC.PartyName), CBC.Name).text = invoice.buyer_name
        self._address(
            party, invoice.buyer_street, invoice.buyer_city, invoice.buyer_postcode, country
        )
        self._tax_scheme(party, invoice.buyer_vat_id)
        legal = sub(party, CAC.PartyLegalEntity)
        sub(legal, CBC.RegistrationName).text = invoice.buyer_name
        sub(legal, CBC.CompanyID, schemeID=registration_scheme).text = registration
        if invoice.buyer_email:
            sub(sub(party, CAC.Contact), CBC.ElectronicMail).text = invoice.buyer_email

    @staticmethod
    def _address(party, street: str, city: str, postcode: str, country: str) -> None:
        # NL-R-002/004: Dutch parties need street, city and postcode (all three
        # are required snapshot fields).
        address = _SubElement(party, CAC.PostalAddress)
        _text(address, CBC.StreetName, street)
        _text(address, CBC.CityName, city)
        _text(address, CBC.PostalZone, postcode)
        _SubElement(_SubElement(address, CAC.Country), CBC.IdentificationCode).text = country

    @staticmethod
    def _tax_scheme(party, vat_id: str) -> None:
        if vat_id:
            scheme = _SubElement(party, CAC.PartyTaxScheme)
            _SubElement(scheme, CBC.CompanyID).text = vat_id
            _SubElement(_SubElement(scheme, CAC.TaxScheme), CBC.ID).text = "VAT"

    @staticmethod
    def _payment_means(root, means: PaymentMeans) -> None:
        sub = _SubElement
        element = sub(root, CAC.PaymentMeans)
        sub(element, CBC.PaymentMeansCode).text = means.code
        _text(element, CBC.PaymentID, means.payment_id)
        if means.payee_iban:
            account = sub(element, CAC.PayeeFinancialAccount)
            sub(account, CBC.ID).text = means.payee_iban
            _text(account, CBC.Name, means.payee_name)
            if means.payee_bic:
                sub(sub(account, CAC.FinancialInstitutionBranch), CBC.ID).text = means.payee_bic
        if means.code in DIRECT_DEBIT_CODES or means.mandate_id:
            if not means.mandate_id:
                raise ValueError("A direct debit needs the mandate id (PEPPOL-EN16931-R061).")
            mandate = sub(element, CAC.PaymentMandate)
            sub(mandate, CBC.ID).text = means.mandate_id
            if means.payer_iban:
                sub(sub(mandate, CAC.PayerFinancialAccount), CBC.ID).text = means.payer_iban

    @staticmethod
    def _terms_note(invoice, means: PaymentMeans | None) -> str:
        # Document text, not UI: an issued invoice reads the same whatever the
        # language of whoever renders it later, so no gettext here.
        if means is not None and means.terms_note:
            return means.terms_note
        if invoice.kind == Invoice.Kind.CREDIT_NOTE:
            return (
                f"Creditering van factuur {invoice.credited_invoice.number}; "
                "het bedrag wordt verrekend of teruggestort."
            )
        days = (invoice.due_date - invoice.issue_date).days
        return (
            f"Betalen binnen {days} dagen, uiterlijk {invoice.due_date:%d-%m-%Y}, "
            f"onder vermelding van factuurnummer {invoice.number}."
        )

    @staticmethod
    def _tax_total(root, invoice, sign: int, currency: dict) -> None:
        """One TaxTotal with a subtotal per VAT row (PEPPOL-EN16931-R053, BR-CO-18)."""
        sub = _SubElement
        tax_total = sub(root, CAC.TaxTotal)
        sub(tax_total, CBC.TaxAmount, currency).text = _amount(invoice.vat_total, sign)
        rows = sorted(invoice.vat_breakdown.all(), key=lambda row: (row.category, row.rate))
        for row in rows:
            subtotal = sub(tax_total, CAC.TaxSubtotal)
            sub(subtotal, CBC.TaxableAmount, currency).text = _amount(row.taxable_amount, sign)
            sub(subtotal, CBC.TaxAmount, currency).text = _amount(row.tax_amount, sign)
            category = sub(subtotal, CAC.TaxCategory)
            sub(category, CBC.ID).text = row.category
            sub(category, CBC.Percent).text = _rate(row.rate)
            if row.category == REVERSE_CHARGE.category:
                # BR-AE-10: reverse charge states why no VAT is charged.
                reason = row.exemption_reason or REVERSE_CHARGE.exemption_reason
                sub(
                    category, CBC.TaxExemptionReasonCode
                ).text = REVERSE_CHARGE.exemption_reason_code
                sub(category, CBC.TaxExemptionReason).text = reason
            sub(sub(category, CAC.TaxScheme), CBC.ID).text = "VAT"

    @staticmethod
    def _lines(root, invoice, sign: int, currency: dict, credit_note: bool) -> None:
        sub = _SubElement
        line_tag = CAC.CreditNoteLine if credit_note else CAC.InvoiceLine
        quantity_tag = CBC.CreditedQuantity if credit_note else CBC.InvoicedQuantity
        unit = {"unitCode": UNIT_CODE}
        for line in invoice.lines.all():
            quantity, price = line.quantity, line.unit_price
            if price < 0:
                # BR-27: a price is never negative; a negative line is a negative quantity.
                quantity, price = -quantity, -price
            if sign < 0:
                quantity = -quantity
            element = sub(root, line_tag)
            sub(element, CBC.ID).text = str(line.position)
            sub(element, quantity_tag, unit).text = _quantity(quantity)
            sub(element, CBC.LineExtensionAmount, currency).text = _amount(line.net_amount, sign)
            item = sub(element, CAC.Item)
            sub(item, CBC.Name).text = line.description
            if line.component_code:
                sub(sub(item, CAC.SellersItemIdentification), CBC.ID).text = line.component_code
            tax = sub(item, CAC.ClassifiedTaxCategory)
            sub(tax, CBC.ID).text = line.vat_category
            sub(tax, CBC.Percent).text = _rate(line.vat_rate)
            sub(sub(tax, CAC.TaxScheme), CBC.ID).text = "VAT"
            sub(sub(element, CAC.Price), CBC.PriceAmount, currency).text = _amount(price, 1)

    # -- the stored PDF ------------------------------------------------------

    @staticmethod
    def _stored_pdf(invoice) -> bytes | None:
        """The invoice's stored PDF, checked against its checksum.

        Goes through ``documents.all()`` so a caller that prefetched the
        documents pays no query per invoice.
        """
        if invoice.pk is None:
            return None
        for document in invoice.documents.all():
            if document.format == "pdf":
                with document.file.open("rb") as handle:
                    content = handle.read()
                if hashlib.sha256(content).hexdigest() != document.sha256:
                    # A corrupted archive copy must never travel as the invoice.
                    raise ValueError(f"Stored PDF of {invoice.number} fails its checksum.")
                return content
        return None
