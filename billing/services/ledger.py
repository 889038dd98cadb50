"""An invoice's ledger: what it still owes, and recording money in and out (R12).

Owed = gross total − its credit notes − the sum of its payments. An invoice is
"paid" when nothing is owed (an over-payment leaves a negative balance, shown
as "te veel betaald"), and "open" again when a reversal makes it owe money.
A fully credited invoice stays "credited" whatever is paid on it.

Every write runs inside the caller's transaction with the invoice row locked
(``invoice_lock``), so two bank files settling the same invoice at once
serialise on that row; the unique constraints on ``Payment`` make a repeat a
no-op instead of a second payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from afas_sb import clock
from afas_sb.money import quantize

from ..models import Invoice, Payment

ZERO = Decimal("0.00")
_MONEY = DecimalField(max_digits=14, decimal_places=2)


@dataclass(frozen=True)
class Balance:
    gross: Decimal
    credited: Decimal
    paid: Decimal

    @property
    def owed(self) -> Decimal:
        """Still to pay; negative when the customer paid too much."""
        return self.gross - self.credited - self.paid

    @property
    def open_amount(self) -> Decimal:
        return max(self.owed, ZERO)

    @property
    def overpaid(self) -> Decimal:
        return max(-self.owed, ZERO)


def invoice_balance(invoice: Invoice) -> Balance:
    """Two aggregate queries; for lists use ``with_balances``."""
    credited = (
        Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE, credited_invoice=invoice).aggregate(
            total=Sum("gross_total")
        )["total"]
        or ZERO
    )
    paid = Payment.objects.filter(invoice=invoice).aggregate(total=Sum("amount"))["total"] or ZERO
    return Balance(gross=invoice.gross_total, credited=credited, paid=paid)


def with_balances(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Annotate ``credited_total``, ``paid_total`` and ``owed`` in the same query."""
    credited = (
        Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE, credited_invoice=OuterRef("pk"))
        .order_by()
        .values("credited_invoice")
        .annotate(total=Sum("gross_total"))
        .values("total")
    )
    paid = (
        Payment.objects.filter(invoice=OuterRef("pk"))
        .order_by()
        .values("invoice")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    zero = Value(ZERO, output_field=_MONEY)
    return invoices.annotate(
        credited_total=Coalesce(Subquery(credited, output_field=_MONEY), zero),
        paid_total=Coalesce(Subquery(paid, output_field=_MONEY), zero),
    )


def invoice_lock(invoice_id: int) -> Invoice:
    """The invoice row, locked until the caller's transaction ends."""
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def payment_record(
    *,
    invoice: Invoice,
    kind: str,
    amount: Decimal,
    booked_on: date,
    debit=None,
    bank_transaction=None,
    recorded_by=None,
) -> Payment | None:
    """Add one ledger row and bring the invoice's status in line; None when it was already there.

    Call inside a transaction after ``invoice_lock``. The savepoint keeps a
    duplicate (same debit and kind, or same bank booking and invoice) from
    breaking the caller's transaction.
    """
    amount = quantize(amount)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                invoice=invoice,
                organisation_id=invoice.organisation_id,
                kind=kind,
                amount=amount,
                booked_on=booked_on,
                debit=debit,
                bank_transaction=bank_transaction,
                recorded_by=recorded_by if recorded_by is not None and recorded_by.pk else None,
                created_at=clock.now(),
            )
    except IntegrityError:
        if _is_duplicate(
            invoice=invoice, kind=kind, debit=debit, bank_transaction=bank_transaction
        ):
            return None
        raise
    invoice_status_refresh(invoice)
    return payment


def _is_duplicate(*, invoice, kind, debit, bank_transaction) -> bool:
    match = Q(pk__in=[])
    if debit is not None:
        match |= Q(debit=debit, kind=kind)
    if bank_transaction is not None:
        match |= Q(bank_transaction=bank_transaction, invoice=invoice)
    return Payment.objects.filter(match).exists()


def invoice_status_refresh(invoice: Invoice) -> Invoice:
    """Open ↔ paid from the ledger; a credited invoice stays credited."""
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.CREDITED:
        return invoice
    status = Invoice.Status.PAID if invoice_balance(invoice).owed <= ZERO else Invoice.Status.OPEN
    if status != invoice.status:
        invoice.status = status
        invoice.save(update_fields=["status"])
    return invoice
