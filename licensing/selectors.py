"""Reads shared by pages, the API and jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import QuerySet

from afas_sb.money import ZERO, quantize

from .models import Agreement, LicenceLine, Organisation, Price, PriceList, TermsVersion


def firm_clients(*, firm: Organisation) -> QuerySet[Organisation]:
    """The organisations an accountancy firm serves."""
    return Organisation.objects.filter(accountancy_firm=firm).order_by("legal_name")


def live_agreement(*, organisation: Organisation) -> Agreement | None:
    return (
        Agreement.objects.filter(
            organisation=organisation,
            status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING],
        )
        .select_related("terms_version", "invoice_to")
        .first()
    )


def latest_agreement(*, organisation: Organisation) -> Agreement | None:
    return (
        Agreement.objects.filter(organisation=organisation)
        .select_related("terms_version", "invoice_to")
        .order_by("-start_date", "-pk")
        .first()
    )


def price_list_on(day: date) -> PriceList | None:
    """The approved price list valid on ``day`` (R4)."""
    return (
        PriceList.objects.filter(status=PriceList.Status.APPROVED, valid_from__lte=day)
        .order_by("-valid_from")
        .first()
    )


def current_terms_version(*, on: date) -> TermsVersion | None:
    return (
        TermsVersion.objects.filter(published_at__isnull=False, effective_date__lte=on)
        .order_by("-effective_date", "-pk")
        .first()
    )


@dataclass(frozen=True)
class PricedLine:
    component_name: str
    component_code: str
    unit: str
    quantity: int
    unit_price: Decimal | None

    @property
    def amount(self) -> Decimal | None:
        if self.unit_price is None:
            return None
        return quantize(self.unit_price * self.quantity)


@dataclass(frozen=True)
class LicencePrice:
    price_list: PriceList | None
    lines: list[PricedLine]

    @property
    def total(self) -> Decimal:
        """Σ quantity × unit price (R4); each line is rounded once, then summed."""
        return sum((line.amount or ZERO for line in self.lines), ZERO)

    @property
    def complete(self) -> bool:
        return all(line.unit_price is not None for line in self.lines)


def licence_price(*, agreement: Agreement, period_start: date) -> LicencePrice:
    """The licence's monthly price for the period starting on ``period_start`` (R4)."""
    price_list = price_list_on(period_start)
    lines = list(
        LicenceLine.objects.filter(agreement=agreement, quantity__gt=0)
        .select_related("component")
        .order_by("component__position", "component__name")
    )
    prices = {}
    if price_list is not None:
        prices = dict(
            Price.objects.filter(
                price_list=price_list, component__in=[line.component_id for line in lines]
            ).values_list("component_id", "unit_price")
        )
    return LicencePrice(
        price_list=price_list,
        lines=[
            PricedLine(
                component_name=line.component.name,
                component_code=line.component.code,
                unit=line.component.unit,
                quantity=line.quantity,
                unit_price=prices.get(line.component_id),
            )
            for line in lines
        ],
    )
