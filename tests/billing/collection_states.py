"""Invoices in every payment state, for the screens that show them (portal and admin).

Debits are planned by the billing run, batched by ``debit_batches_create`` and
handed to the bank with ``debit_batch_mark_submitted``. What the bank then
says (collected, returned, rejected) is written the way the settlement does it:
the debit's status, and the ledger through ``payment_record`` under the
invoice's lock. The screens read those rows; how a bank file produces them is
tested with the import.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count

from django.db import transaction

from billing.models import DirectDebit, Invoice, Mandate, Payment
from billing.services.debit_batches import debit_batch_mark_submitted, debit_batches_create
from billing.services.debits import debit_create
from billing.services.issue import invoice_issue_one_off
from billing.services.ledger import invoice_lock, payment_record
from billing.services.mandates import mandate_record_collection

from .debit_builders import at, debit_for, live_debit

ISSUED = date(2027, 3, 1)  # Monday; due 15 March (Monday), batch on Friday 12 March
BATCH_DAY = date(2027, 3, 12)
COLLECTION = date(2027, 3, 15)

_references = count(1)


def one_off(organisation, amount="100.00", *, issued: date = ISSUED) -> Invoice:
    """An invoice of 1 × ``amount`` + 21 % VAT (100.00 → 121.00)."""
    with at(issued):
        return invoice_issue_one_off(
            organisation=organisation,
            description="Cursus AFAS SB",
            quantity=1,
            unit_price=amount,
            issue_date=issued,
            reference=f"CURSUS-{next(_references)}",
        )


def debited(organisation, amount="100.00", *, issued: date = ISSUED):
    """(invoice, its scheduled debit on the organisation's active mandate)."""
    invoice = one_off(organisation, amount, issued=issued)
    mandate = Mandate.objects.get(organisation=organisation, status=Mandate.Status.ACTIVE)
    with at(issued):
        return invoice, debit_for(invoice, mandate)


def submitted(organisation, amount="100.00"):
    """(invoice, its debit handed to the bank in the batch of BATCH_DAY)."""
    invoice, debit = debited(organisation, amount)
    submit_debits(BATCH_DAY)
    debit.refresh_from_db()
    return invoice, debit


def submit_debits(batch_day: date) -> list:
    """Batch what is due on ``batch_day`` and mark those batches as handed to the bank."""
    with at(batch_day):
        batches = debit_batches_create(day=batch_day)
        return [debit_batch_mark_submitted(batch=batch) for batch in batches]


def collect(debit: DirectDebit, on: date | None = None) -> DirectDebit:
    on = on or debit.collection_date
    with transaction.atomic():
        invoice = invoice_lock(debit.invoice_id)
        debit.status = DirectDebit.Status.COLLECTED
        debit.collected_on = on
        debit.save(update_fields=["status", "collected_on"])
        payment_record(
            invoice=invoice,
            kind=Payment.Kind.DIRECT_DEBIT,
            amount=debit.amount,
            booked_on=on,
            debit=debit,
        )
    mandate_record_collection(mandate=debit.mandate)
    return debit


def bounce(
    debit: DirectDebit, code: str, *, on: date | None = None, rejected: bool = False
) -> DirectDebit:
    """A return after collection (reversal on the ledger) or a reject before it (nothing booked)."""
    on = on or debit.collection_date
    with transaction.atomic():
        invoice = invoice_lock(debit.invoice_id)
        was_collected = debit.status == DirectDebit.Status.COLLECTED
        debit.status = DirectDebit.Status.REJECTED if rejected else DirectDebit.Status.RETURNED
        debit.return_reason = code
        debit.returned_on = on
        debit.save(update_fields=["status", "return_reason", "returned_on"])
        if was_collected:
            payment_record(
                invoice=invoice,
                kind=Payment.Kind.DEBIT_REVERSAL,
                amount=-debit.amount,
                booked_on=on,
                debit=debit,
            )
    return debit


def represent(debit: DirectDebit, collection_date: date) -> DirectDebit:
    """The next attempt on the same mandate, as a re-presentment after AM04/MS03 plans it."""
    with transaction.atomic():
        invoice = invoice_lock(debit.invoice_id)
        return debit_create(
            invoice=invoice,
            mandate=debit.mandate,
            amount=debit.amount,
            collection_date=collection_date,
            attempt=debit.attempt + 1,
        )


def pay_by_transfer(invoice: Invoice, amount: str | Decimal, on: date) -> Payment:
    with transaction.atomic():
        locked = invoice_lock(invoice.pk)
        return payment_record(
            invoice=locked, kind=Payment.Kind.TRANSFER, amount=Decimal(amount), booked_on=on
        )


__all__ = [
    "bounce",
    "collect",
    "live_debit",
    "pay_by_transfer",
    "represent",
    "submit_debits",
]
