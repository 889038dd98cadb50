"""Building blocks for direct-debit tests: customers with mandates, invoices with debits.

Everything goes through the real services (mandate_sign, the billing run,
debit_create); only the clock is moved, with time-machine, because collection
dates depend on the day an invoice is issued.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import time_machine

from billing.models import DirectDebit, Invoice, Mandate
from billing.services.debits import collection_date_for, debit_create
from billing.services.mandates import mandate_invalidate, mandate_sign
from licensing.models import Organisation
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

from .builders import agreement_for, run_month

NL_IBAN = "NL91ABNA0417164300"  # BIC ABNANL2A
NL_IBAN_2 = "NL20INGB0001234567"  # BIC INGBNL2A
BE_IBAN = "BE71096123456769"


def at(day: date, hour: int = 9):
    """time-machine at ``hour`` UTC of ``day`` (the same date in Amsterdam)."""
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC), tick=False)


def sign_mandate(
    organisation: Organisation, iban: str = NL_IBAN, *, holder: str = "J. de Vries"
) -> Mandate:
    return mandate_sign(
        organisation=organisation,
        account_holder=holder,
        iban=iban,
        accepted=True,
        user=UserFactory(),
        ip="192.0.2.10",
    )


def customer(*, mandate: bool = True, iban: str = NL_IBAN, **fields) -> Organisation:
    """A direct entrepreneur with a billing contact, and (by default) a signed mandate."""
    organisation = OrganisationFactory(**fields)
    MembershipFactory(organisation=organisation, is_subscription_contact=True)
    if mandate:
        sign_mandate(organisation, iban)
    return organisation


def customer_with_agreement(
    catalogue, *, mandate: bool = True, start: date = date(2026, 1, 1), **fields
) -> Organisation:
    """Without ``mandate``: R12 lets no direct customer start without one, so it signs one
    and the bank then invalidates it (AC04), the real way to a customer without a mandate."""
    organisation = customer(**fields)
    agreement_for(catalogue, organisation, start=start)
    if not mandate:
        mandate_invalidate(
            mandate=Mandate.objects.get(organisation=organisation, status=Mandate.Status.ACTIVE),
            reason_code="AC04",
        )
    return organisation


def invoice_month(period_start: date) -> None:
    """The month's billing run on its 1st, with the clock on that day."""
    with at(period_start):
        run_month(period_start)


def subscription_invoice(organisation: Organisation, period_start: date) -> Invoice:
    return Invoice.objects.get(
        organisation=organisation,
        kind=Invoice.Kind.INVOICE,
        purpose=Invoice.Purpose.SUBSCRIPTION,
        period_start=period_start,
    )


def live_debit(invoice: Invoice) -> DirectDebit:
    return DirectDebit.objects.get(invoice=invoice, status__in=DirectDebit.LIVE_STATUSES)


def debit_for(
    invoice: Invoice,
    mandate: Mandate,
    *,
    amount: Decimal | None = None,
    collection_date: date | None = None,
    today: date | None = None,
    attempt: int = 1,
) -> DirectDebit:
    """A scheduled debit straight through the primitive (for invoices made by factories)."""
    return debit_create(
        invoice=invoice,
        mandate=mandate,
        amount=amount if amount is not None else invoice.gross_total,
        collection_date=collection_date
        or collection_date_for(due_date=invoice.due_date, today=today or invoice.issue_date),
        attempt=attempt,
    )
