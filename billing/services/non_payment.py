"""The 28th-of-the-month rule (R13, terms §3.6.2).

"Op het moment dat op de 28ste van de maand er twee abonnementsfacturen
openstaan, wordt de licentie automatisch beëindigd. [...] Er wordt hierover geen
contact met je opgenomen." The rule is for SB-ondernemen customers billed
directly ("niet via de accountant"): an entrepreneur whose licence is invoiced to
itself. Customers billed via an accountancy firm, and the firms themselves, are
never touched by it. Open invoices stay receivable: only the licence ends.
"""

from __future__ import annotations

import logging
from datetime import date

from django.db.models import Count, Exists, F, OuterRef

from licensing.models import Agreement, Organisation
from licensing.services.terminations import agreement_terminate_for_non_payment

from ..models import DirectDebit, Invoice

logger = logging.getLogger(__name__)

OPEN_INVOICES_THAT_END_A_LICENCE = 2


def is_termination_day(day: date) -> bool:
    """The 28th of every month, whatever weekday it falls on."""
    return day.day == 28


def open_subscription_invoices(*, day: date):
    """Subscription invoices that count as open on ``day`` for the 28th rule.

    A debit the bank was asked to collect on or before ``day`` is presumed
    collected until the bank says otherwise: the calendar runs at night, before
    that morning's statement is imported, and a customer whose money left its
    account yesterday must not lose its licence over our reading delay. A later
    return reopens the invoice and the next 28th counts it.
    """
    in_flight = DirectDebit.objects.filter(
        invoice=OuterRef("pk"),
        status=DirectDebit.Status.SUBMITTED,
        collection_date__lte=day,
    )
    return Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        status=Invoice.Status.OPEN,
    ).exclude(Exists(in_flight))


def non_payment_candidates(*, day: date) -> list[int]:
    """Live agreements of direct customers owing two or more subscription invoices.

    Counted per customer, not per agreement: open invoices of an earlier
    agreement still count ("er twee abonnementsfacturen openstaan").
    """
    owing = (
        open_subscription_invoices(day=day)
        .values("organisation")
        .annotate(open_invoices=Count("pk"))
        .filter(open_invoices__gte=OPEN_INVOICES_THAT_END_A_LICENCE)
        .values("organisation")
    )
    return list(
        Agreement.objects.filter(
            status__in=[Agreement.Status.ACTIVE, Agreement.Status.TERMINATING],
            organisation__kind=Organisation.Kind.ENTREPRENEUR,
            organisation__billed_via__isnull=True,
            invoice_to=F("organisation"),
            organisation__in=owing,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def non_payment_terminations(*, day: date) -> int:
    """Terminate every qualifying licence at once, without a message; returns how many.

    Safe to run twice or concurrently: the termination service locks the
    agreement and returns the existing termination on a repeat, and an agreement
    already terminated is no longer a candidate.
    """
    terminated = 0
    for agreement_id in non_payment_candidates(day=day):
        agreement_terminate_for_non_payment(
            agreement=Agreement.objects.get(pk=agreement_id), on=day
        )
        terminated += 1
    logger.info("non-payment terminations", extra={"day": day.isoformat(), "count": terminated})
    return terminated
