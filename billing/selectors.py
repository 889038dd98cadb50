"""Reads shared by the billing run, the portal and admin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from afas_sb.money import ZERO
from licensing.models import Agreement, LicenceLine, Organisation, Termination

from .models import Invoice

LIVE_TERMINATION = (Termination.Status.SCHEDULED, Termination.Status.EFFECTIVE)


def billable_agreements(*, period_start: date) -> QuerySet[Agreement]:
    """Agreements that owe the subscription period starting on ``period_start`` (R1, R7, R14).

    Invoicing is monthly in advance: an agreement owes a period when its service
    runs on the period's first day, i.e.

    * it started on or before that day;
    * no agreed end date before it (``end_date`` is also the last day of an
      agreement that has ended, see licensing's ``_end_agreement``);
    * no termination (scheduled or effective) whose last day of service lies
      before it;
    * it is live (active or terminating) — or it ended, but on or after that
      day. The second case matters when the calendar catches up: a January run
      that only runs on 2 February must still invoice an agreement whose
      termination took effect after 31 January, although it is terminated by
      then.
    """
    ended_before = Termination.objects.filter(
        agreement=OuterRef("pk"),
        status__in=LIVE_TERMINATION,
        effective_date__lt=period_start,
    )
    return (
        Agreement.objects.filter(start_date__lte=period_start)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=period_start))
        .filter(
            Q(status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING])
            | Q(status=Agreement.Status.TERMINATED, end_date__isnull=False)
        )
        .exclude(Exists(ended_before))
    )


def subscription_invoices(*, period_start: date) -> QuerySet[Invoice]:
    """The subscription invoices of one period (the key of the exactly-once constraint)."""
    return Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        period_start=period_start,
    )


BUYER_FIELDS = (
    "legal_name",
    "street",
    "postcode",
    "city",
    "country",
    "kvk_number",
    "vat_id",
    "billing_email",
    "peppol_scheme",
    "peppol_endpoint_id",
)


@dataclass(frozen=True, slots=True)
class Buyer:
    """Who an invoice is addressed to, as the snapshot needs it (an Organisation's fields)."""

    id: int
    legal_name: str
    street: str
    postcode: str
    city: str
    country: str
    kvk_number: str
    vat_id: str
    billing_email: str
    peppol_scheme: str
    peppol_endpoint_id: str


@dataclass(frozen=True, slots=True)
class BillableLine:
    component_id: int
    code: str
    name: str
    unit: str
    quantity: int


@dataclass(slots=True)
class BillableAgreement:
    """An agreement as the billing run reads it: plain values, no model instances.

    ``last_days`` are the last days of service of its live terminations.
    """

    id: int
    number: str
    start_date: date
    end_date: date | None
    buyer: Buyer
    lines: list[BillableLine] = field(default_factory=list)
    last_days: list[date] = field(default_factory=list)


def agreements_to_invoice(*, period_start: date, ids: Iterable[int]) -> list[BillableAgreement]:
    """The agreements among ``ids`` that still owe the period, with all a draft needs.

    Three queries whatever the number of agreements: the agreements joined with
    the organisation they are invoiced to, their lines with quantity > 0 joined
    with the components, and their live terminations. Agreements that
    meanwhile got their invoice for the period are left out. Plain values, not
    model instances: the run reads hundreds of thousands of rows.
    """
    invoiced = subscription_invoices(period_start=period_start).filter(agreement=OuterRef("pk"))
    rows = (
        billable_agreements(period_start=period_start)
        .filter(pk__in=list(ids))
        .exclude(Exists(invoiced))
        .order_by("pk")
        .values_list(
            "pk",
            "number",
            "start_date",
            "end_date",
            "invoice_to_id",
            *(f"invoice_to__{name}" for name in BUYER_FIELDS),
        )
    )
    agreements = {
        row[0]: BillableAgreement(
            id=row[0],
            number=row[1],
            start_date=row[2],
            end_date=row[3],
            buyer=Buyer(row[4], *row[5:]),
        )
        for row in rows
    }
    if not agreements:
        return []
    lines = (
        LicenceLine.objects.filter(agreement_id__in=list(agreements), quantity__gt=0)
        .order_by("agreement_id", "component__position", "component__name", "pk")
        .values_list(
            "agreement_id",
            "component_id",
            "component__code",
            "component__name",
            "component__unit",
            "quantity",
        )
    )
    for agreement_id, *line in lines:
        agreements[agreement_id].lines.append(BillableLine(*line))
    last_days = Termination.objects.filter(
        agreement_id__in=list(agreements), status__in=LIVE_TERMINATION
    ).values_list("agreement_id", "effective_date")
    for agreement_id, last_day in last_days:
        agreements[agreement_id].last_days.append(last_day)
    return list(agreements.values())


def open_amount(organisation: Organisation) -> Decimal:
    """What the organisation still owes: open invoices minus what credit notes took off them.

    Invoices addressed to the organisation only (for a firm, also the client
    licences it pays for). Two queries. A partly credited invoice stays open for
    its remainder; a fully credited one is no longer open at all.
    """
    open_invoices = Invoice.objects.filter(
        organisation=organisation, kind=Invoice.Kind.INVOICE, status=Invoice.Status.OPEN
    )
    invoiced = open_invoices.aggregate(total=Sum("gross_total"))["total"] or ZERO
    credited = (
        Invoice.objects.filter(
            kind=Invoice.Kind.CREDIT_NOTE, credited_invoice__in=open_invoices
        ).aggregate(total=Sum("gross_total"))["total"]
        or ZERO
    )
    return max(invoiced - credited, ZERO)
