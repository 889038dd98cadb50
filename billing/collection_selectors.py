"""Reads about collections shared by the portal and the back office (R12).

What an invoice still owes comes from its ledger (``billing.services.ledger``):
gross total − credit notes − payments. Every list here costs a fixed number of
queries: balances are subquery annotations, debits one prefetch, the monthly
overview a handful of grouped aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import TruncMonth

from afas_sb.money import ZERO, format_eur
from licensing.models import Organisation

from .models import BankTransaction, DirectDebit, Invoice, Mandate
from .sepa.reasons import DESCRIPTIONS
from .services.ledger import with_balances

_MONEY = DecimalField(max_digits=14, decimal_places=2)
FAILED_STATUSES = (DirectDebit.Status.RETURNED, DirectDebit.Status.REJECTED)
OVERVIEW_MONTHS = 12
TOP_REASONS = 3


def _owed():
    """gross − credited − paid, on a queryset annotated by ``with_balances``."""
    return ExpressionWrapper(
        F("gross_total") - F("credited_total") - F("paid_total"), output_field=_MONEY
    )


def reason_text(code: str | None) -> str:
    """'Onvoldoende saldo (AM04)' for the customer; the bare code when it is not in the list."""
    code = (code or "").strip().upper()
    if not code:
        return ""
    description = DESCRIPTIONS.get(code)
    return f"{description} ({code})" if description else code


def formatted_iban(iban: str) -> str:
    """In groups of four, as printed on an invoice: 'NL91 ABNA 0417 1643 00'."""
    compact = (iban or "").replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# --- Open amounts ---------------------------------------------------------------------------


def open_amount_with_payments(organisation: Organisation) -> Decimal:
    """What the organisation still owes: its open invoices minus credit notes and payments.

    Like ``billing.selectors.open_amount`` (invoices addressed to the
    organisation), but a partial payment counts. One query.
    """
    open_invoices = with_balances(
        Invoice.objects.filter(
            organisation=organisation, kind=Invoice.Kind.INVOICE, status=Invoice.Status.OPEN
        )
    )
    total = open_invoices.aggregate(total=Sum(_owed()))["total"] or ZERO
    return max(total, ZERO)


# --- Payment state per invoice (portal: Facturen) -------------------------------------------


class PaymentStateKind(StrEnum):
    DEBIT_SCHEDULED = "debit_scheduled"  # "Wordt op <datum> geïncasseerd"
    DEBIT_RETRY = "debit_retry"  # "Gestorneerd: <reden> – we proberen het opnieuw op <datum>"
    DEBIT_FAILED = "debit_failed"  # "Gestorneerd: <reden> – graag overmaken naar …"
    COLLECTED = "collected"  # "Geïncasseerd op <datum>"
    PAID = "paid"
    PARTLY_PAID = "partly_paid"
    OVERPAID = "overpaid"


@dataclass(frozen=True)
class PaymentState:
    """What the customer reads about paying one invoice; None-valued fields do not apply."""

    kind: PaymentStateKind
    on: date | None = None
    amount: Decimal | None = None  # the debit's amount, what is still open, or what was overpaid
    reason: str = ""
    rejected: bool = False  # refused before collection (pain.002) rather than returned
    open_amount: Decimal | None = None  # after a failed debit that was partly paid otherwise
    vendor_iban: str = ""
    reference: str = ""

    @property
    def amount_eur(self) -> str:
        return _eur_unbroken(self.amount)

    @property
    def open_amount_eur(self) -> str:
        return _eur_unbroken(self.open_amount)


def _eur_unbroken(amount: Decimal | None) -> str:
    # "€ 12,50" must not wrap between the sign and the number in a narrow table cell.
    return "" if amount is None else format_eur(amount).replace(" ", "\u00a0")


def invoices_with_payment_state(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """Balances annotated and the debits prefetched (``debit_attempts``, by attempt).

    Two queries for any page of invoices; ``payment_state`` then reads no more.
    """
    return with_balances(invoices).prefetch_related(
        Prefetch(
            "debits",
            queryset=DirectDebit.objects.exclude(status=DirectDebit.Status.CANCELLED).order_by(
                "attempt"
            ),
            to_attr="debit_attempts",
        )
    )


def payment_state(invoice: Invoice) -> PaymentState | None:
    """The payment state of an invoice from ``invoices_with_payment_state``.

    None for credit notes, credited invoices and open invoices nobody paid or
    debited yet: their status says it all. The order matters: money paid too
    much is the first thing to tell; a debit still under way says when money
    will move; a failed last debit says what the customer must do.
    """
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.CREDITED:
        return None
    owed = invoice.gross_total - invoice.credited_total - invoice.paid_total
    debits = getattr(invoice, "debit_attempts", [])
    last = debits[-1] if debits else None
    failed_before = [d for d in debits[:-1] if d.status in FAILED_STATUSES]
    if owed < ZERO:
        return PaymentState(PaymentStateKind.OVERPAID, amount=-owed)
    if last is not None and last.is_live:
        if failed_before:
            previous = failed_before[-1]
            return PaymentState(
                PaymentStateKind.DEBIT_RETRY,
                on=last.collection_date,
                amount=last.amount,
                reason=reason_text(previous.return_reason),
                rejected=previous.status == DirectDebit.Status.REJECTED,
            )
        return PaymentState(
            PaymentStateKind.DEBIT_SCHEDULED, on=last.collection_date, amount=last.amount
        )
    if owed == ZERO:
        if last is not None and last.status == DirectDebit.Status.COLLECTED:
            return PaymentState(
                PaymentStateKind.COLLECTED, on=last.collected_on or last.collection_date
            )
        return PaymentState(PaymentStateKind.PAID)
    if last is not None and last.status in FAILED_STATUSES:
        return PaymentState(
            PaymentStateKind.DEBIT_FAILED,
            on=last.returned_on,
            reason=reason_text(last.return_reason),
            rejected=last.status == DirectDebit.Status.REJECTED,
            open_amount=owed if invoice.paid_total > ZERO else None,
            vendor_iban=formatted_iban(settings.VENDOR_IBAN),
            reference=invoice.number,
        )
    if invoice.paid_total > ZERO:
        return PaymentState(PaymentStateKind.PARTLY_PAID, amount=owed)
    return None


# --- Betaalgegevens -----------------------------------------------------------------------------


def upcoming_debits(*, today: date) -> QuerySet[DirectDebit]:
    """Debits still to be collected on ``today`` or later, soonest first.

    Scope them to a tenant before use. A submitted debit whose date has passed
    is left out: the money has moved, and the bank's file will say so.
    """
    return (
        DirectDebit.objects.filter(status__in=DirectDebit.LIVE_STATUSES, collection_date__gte=today)
        .select_related("invoice")
        .order_by("collection_date", "pk")
    )


def invalidated_mandate(mandates: QuerySet[Mandate]) -> Mandate | None:
    """The latest mandate when the bank made it unusable and none replaced it yet.

    ``mandates`` is already scoped to one organisation. One query.
    """
    latest = mandates.order_by("-signed_at", "-pk").first()
    if latest is None or latest.status != Mandate.Status.INVALID:
        return None
    latest.reason_text = reason_text(latest.invalid_reason)
    return latest


# --- Back office -----------------------------------------------------------------------------


def unmatched_transactions_count() -> int:
    return BankTransaction.objects.filter(state=BankTransaction.State.UNMATCHED).count()


def open_invoice_by_number(number: str) -> Invoice | None:
    """An invoice (not a credit note) by its number, with its balance; None when unknown."""
    return (
        with_balances(Invoice.objects.filter(kind=Invoice.Kind.INVOICE))
        .select_related("organisation")
        .filter(number=(number or "").strip())
        .first()
    )


def match_candidates(transaction: BankTransaction, *, limit: int = 20) -> list[Invoice]:
    """Open invoices that may be what a transfer pays: the number in its text, the same
    open amount, or the payer's name. One query; each invoice gets ``owed``."""
    text = f"{transaction.reference} {transaction.description}".upper()
    words = {word.strip(".,:;()/") for word in text.split()}
    likely = Q(number__in=[word for word in words if word]) | Q(owed=transaction.amount)
    if transaction.counterparty_name:
        likely |= Q(buyer_name__iexact=transaction.counterparty_name.strip())
    return list(
        with_balances(Invoice.objects.filter(kind=Invoice.Kind.INVOICE, status=Invoice.Status.OPEN))
        .annotate(owed=_owed())
        .filter(likely)
        .select_related("organisation")
        .order_by("due_date", "number")[:limit]
    )


@dataclass
class OverviewMonth:
    """One month of collection dates in the overview; amounts in euros."""

    month: date
    collected_count: int = 0
    collected_amount: Decimal = ZERO
    failed_count: int = 0
    failed_amount: Decimal = ZERO
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    live_count: int = 0
    live_amount: Decimal = ZERO
    open_invoice_count: int = 0
    open_invoice_amount: Decimal = ZERO


@dataclass
class CollectionsOverview:
    months: list[OverviewMonth]
    totals: OverviewMonth
    # Open invoices of direct customers due before the first month shown.
    older_open_count: int = 0
    older_open_amount: Decimal = ZERO


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def _as_date(value) -> date:
    # TruncMonth over a DateField gives a date; some backends hand back a datetime.
    return value.date() if hasattr(value, "date") and callable(value.date) else value


def collections_overview(*, today: date, months: int = OVERVIEW_MONTHS) -> CollectionsOverview:
    """Per month of collection date, newest first: collected, returned or rejected (with the
    most frequent reasons) and still under way; and per month of due date what direct
    customers still owe on open invoices. The next month shows too once debits are
    planned in it. Three queries, whatever the number of debits.
    """
    first = _add_months(_month_start(today), -(months - 1))
    next_month = _add_months(_month_start(today), 1)
    after_next = _add_months(next_month, 1)
    in_window = {"collection_date__gte": first, "collection_date__lt": after_next}

    rows: dict[date, OverviewMonth] = {}

    def row(month) -> OverviewMonth:
        month = _as_date(month)
        return rows.setdefault(month, OverviewMonth(month=month))

    debits = (
        DirectDebit.objects.filter(**in_window)
        .exclude(status=DirectDebit.Status.CANCELLED)
        .annotate(month=TruncMonth("collection_date"))
        .values("month", "status")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by()
    )
    for item in debits:
        target = row(item["month"])
        if item["status"] == DirectDebit.Status.COLLECTED:
            target.collected_count += item["count"]
            target.collected_amount += item["amount"]
        elif item["status"] in FAILED_STATUSES:
            target.failed_count += item["count"]
            target.failed_amount += item["amount"]
        else:
            target.live_count += item["count"]
            target.live_amount += item["amount"]

    reasons = (
        DirectDebit.objects.filter(status__in=FAILED_STATUSES, **in_window)
        .annotate(month=TruncMonth("collection_date"))
        .values("month", "return_reason")
        .annotate(count=Count("pk"))
        .order_by()
    )
    by_month: dict[date, list[tuple[str, int]]] = {}
    for item in reasons:
        by_month.setdefault(_as_date(item["month"]), []).append(
            (item["return_reason"] or "?", item["count"])
        )
    for month, counts in by_month.items():
        counts.sort(key=lambda pair: (-pair[1], pair[0]))
        row(month).top_reasons = counts[:TOP_REASONS]

    overview = CollectionsOverview(months=[], totals=OverviewMonth(month=first))
    open_invoices = (
        with_balances(
            Invoice.objects.filter(
                kind=Invoice.Kind.INVOICE,
                status=Invoice.Status.OPEN,
                due_date__lt=after_next,
                organisation__kind=Organisation.Kind.ENTREPRENEUR,
                organisation__billed_via__isnull=True,
            )
        )
        .annotate(month=TruncMonth("due_date"))
        .values("month")
        .annotate(count=Count("pk"), amount=Sum(_owed()))
        .order_by()
    )
    for item in open_invoices:
        month = _as_date(item["month"])
        if month < first:
            overview.older_open_count += item["count"]
            overview.older_open_amount += item["amount"] or ZERO
            continue
        target = row(month)
        target.open_invoice_count += item["count"]
        target.open_invoice_amount += item["amount"] or ZERO

    shown = [_add_months(first, offset) for offset in range(months)]
    if next_month in rows:
        shown.append(next_month)
    overview.months = [rows.get(month) or OverviewMonth(month=month) for month in reversed(shown)]
    totals = overview.totals
    reason_totals: dict[str, int] = {}
    for month in overview.months:
        for name in (
            "collected_count",
            "collected_amount",
            "failed_count",
            "failed_amount",
            "live_count",
            "live_amount",
            "open_invoice_count",
            "open_invoice_amount",
        ):
            setattr(totals, name, getattr(totals, name) + getattr(month, name))
    totals.open_invoice_count += overview.older_open_count
    totals.open_invoice_amount += overview.older_open_amount
    for counts in by_month.values():
        for code, count in counts:
            reason_totals[code] = reason_totals.get(code, 0) + count
    totals.top_reasons = sorted(reason_totals.items(), key=lambda pair: (-pair[1], pair[0]))[
        :TOP_REASONS
    ]
    return overview
