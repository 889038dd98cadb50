"""VAT: which treatment a buyer gets, and totals per category (EN 16931).

One module for the database totals, the PDF and the UBL, so they can never
disagree. Each line's net amount is rounded once; VAT is computed per category
on the category's summed net amount, then rounded once (EN 16931 BR-CO-17).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from afas_sb.money import ZERO, quantize

STANDARD_RATE = Decimal("21.00")


@dataclass(frozen=True)
class VatTreatment:
    category: str  # UNCL 5305: S standard, AE reverse charge
    rate: Decimal
    note: str = ""  # legal mention printed on the invoice
    exemption_reason_code: str = ""  # CEF VATEX code, for UBL
    exemption_reason: str = ""


REVERSE_CHARGE = VatTreatment(
    category="AE",
    rate=Decimal("0.00"),
    note="Btw verlegd – intracommunautaire dienst, art. 196 Btw-richtlijn 2006/112/EG",
    exemption_reason_code="VATEX-EU-AE",
    exemption_reason="Reverse charge",
)
DUTCH_STANDARD = VatTreatment(category="S", rate=STANDARD_RATE)


def vat_treatment(*, buyer_country: str, buyer_vat_id: str) -> VatTreatment:
    """NL buyers pay Dutch VAT; Belgian businesses (with a VAT id) get reverse charge (R10).

    A Belgian buyer without a VAT id is not a business for VAT and pays Dutch VAT.
    """
    if buyer_country == "BE" and buyer_vat_id:
        return REVERSE_CHARGE
    return DUTCH_STANDARD


@dataclass(frozen=True)
class VatRow:
    category: str
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True)
class Totals:
    net: Decimal
    vat: Decimal
    gross: Decimal
    breakdown: list[VatRow]


def line_amount(quantity: Decimal | int, unit_price: Decimal) -> Decimal:
    """A line's net amount: quantity × unit price, rounded once to cents."""
    return quantize(Decimal(quantity) * unit_price)


def totals(lines: Iterable[tuple[str, Decimal, Decimal]]) -> Totals:
    """Totals from (category, rate, net_amount) per line; net amounts already rounded."""
    taxable: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for category, rate, net_amount in lines:
        taxable[(category, quantize(rate))] += net_amount
    breakdown = [
        VatRow(category, rate, quantize(amount), quantize(amount * rate / 100))
        for (category, rate), amount in sorted(taxable.items())
    ]
    net = sum((row.taxable_amount for row in breakdown), ZERO)
    vat = sum((row.tax_amount for row in breakdown), ZERO)
    return Totals(net=net, vat=vat, gross=net + vat, breakdown=breakdown)
