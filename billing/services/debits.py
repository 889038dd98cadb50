"""SEPA direct debits: one per open subscription invoice of a customer with a mandate (R12).

The invoice is the pre-notification: it states the amount, the collection date
and the mandate reference. The collection date is the invoice's due date moved
to a TARGET2 business day; the batch that carries it is made
``SEPA_DEBIT_LEAD_DAYS`` TARGET2 days before (the bank's cut-off: D-1 under the
SEPA Core rulebook, D-2 at some banks). When that moment has passed (a mandate
signed late, a re-presentment, a calendar that was down) the debit goes on the
first collection date still reachable from today.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils.translation import gettext as _
from psycopg import sql

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.calendars import (
    add_sepa_business_days,
    is_sepa_business_day,
    sepa_business_day_on_or_after,
    sepa_business_days_before,
)
from afas_sb.errors import Conflict
from afas_sb.money import ZERO, quantize

from ..models import CollectionNotice, DirectDebit, Invoice, Mandate
from .ledger import with_balances
from .notices import notice_queue


def lead_days() -> int:
    return max(1, int(getattr(settings, "SEPA_DEBIT_LEAD_DAYS", 1)))


def earliest_collection_date(today: date) -> date:
    """The first collection date a batch made today (or on the next TARGET2 day) can still reach."""
    batch_day = today if is_sepa_business_day(today) else sepa_business_day_on_or_after(today)
    return add_sepa_business_days(batch_day, lead_days())


def batch_day_for(collection_date: date) -> date:
    """The TARGET2 day on which the batch for ``collection_date`` is made."""
    return sepa_business_days_before(collection_date, lead_days())


def prenotification_days() -> int:
    return max(1, int(getattr(settings, "SEPA_PRENOTIFICATION_DAYS", 5)))


def collection_date_for(*, due_date: date, today: date) -> date:
    """The due date on a TARGET2 day, or the earliest date still reachable when that is too soon.

    A debit announced today (by e-mail: a late mandate, a re-presentment, an
    overdue invoice) is never collected sooner than the pre-notification period
    the mandate text agrees; an invoice due 14 days after issue always is.
    """
    announced = sepa_business_day_on_or_after(today + timedelta(days=prenotification_days()))
    return max(sepa_business_day_on_or_after(due_date), earliest_collection_date(today), announced)


def end_to_end_id_for(invoice: Invoice, attempt: int) -> str:
    """'<invoice number>-<attempt>': SEPA characters, ≤ 35, unique, readable on a bank statement."""
    return f"{invoice.number}-{attempt}"


def debit_create(
    *,
    invoice: Invoice,
    mandate: Mandate,
    amount,
    collection_date: date,
    attempt: int = 1,
    prenotified_at=None,
) -> DirectDebit:
    """Insert one scheduled debit. Call inside a transaction holding the invoice's row lock.

    An invoice is never in two live debits: refused here with a clear message,
    and by the partial unique index should two callers race without the lock.
    """
    if DirectDebit.objects.filter(
        invoice_id=invoice.pk, status__in=DirectDebit.LIVE_STATUSES
    ).exists():
        raise Conflict(
            _("Factuur %(number)s wordt al geïncasseerd.") % {"number": invoice.number},
            code="debit_live",
        )
    return DirectDebit.objects.create(
        invoice=invoice,
        organisation_id=invoice.organisation_id,
        mandate=mandate,
        attempt=attempt,
        amount=amount,
        collection_date=collection_date,
        end_to_end_id=end_to_end_id_for(invoice, attempt),
        prenotified_at=prenotified_at,
        created_at=clock.now(),
    )


# --- Planning -------------------------------------------------------------------------
#
# Lock order, shared with the ledger and the batches: invoices (by pk), then their
# debits, then mandates. Mandate services lock organisation → mandate and never an
# invoice, so no cycle can form.

PLAN_CHUNK_SIZE = 500
NOT_CANCELLED = tuple(
    status for status, _label in DirectDebit.Status.choices if status != "cancelled"
)


def _active_mandate_pk():
    return Mandate.objects.filter(
        organisation=OuterRef("organisation_id"), status=Mandate.Status.ACTIVE
    ).values("pk")[:1]


def debits_plan_for_invoices(*, invoice_ids: Iterable[int], today: date | None = None) -> int:
    """Attempt 1 for each new subscription invoice whose payer has an active mandate (R12).

    Called by ``drafts_store`` inside the issuing transaction, after the rows
    are stored and before the documents are rendered: the invoice is the
    pre-notification (its PDF and UBL state amount, date and mandate), so
    ``prenotified_at`` is now. One query and one insert (COPY on PostgreSQL),
    however many invoices. Returns how many debits were planned.
    """
    ids = list(invoice_ids)
    if not ids:
        return 0
    today = today or clock.today()
    rows = (
        Invoice.objects.filter(
            pk__in=ids,
            kind=Invoice.Kind.INVOICE,
            purpose=Invoice.Purpose.SUBSCRIPTION,
            gross_total__gt=0,
        )
        .annotate(active_mandate=Subquery(_active_mandate_pk()))
        .filter(active_mandate__isnull=False)
        .values_list("pk", "number", "organisation_id", "due_date", "gross_total", "active_mandate")
    )
    now = clock.now()
    debits = [
        {
            **_DEBIT_DEFAULTS,
            "invoice_id": pk,
            "organisation_id": organisation_id,
            "mandate_id": mandate_id,
            "attempt": 1,
            "amount": gross_total,
            "collection_date": collection_date_for(due_date=due_date, today=today),
            "end_to_end_id": f"{number}-1",
            "prenotified_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for pk, number, organisation_id, due_date, gross_total, mandate_id in rows
    ]
    _insert(debits)
    return len(debits)


# Plain column values, not model instances: a chunk of the billing run plans 500 at once.
_DEBIT_DEFAULTS = {
    field.attname: field.get_default()
    for field in DirectDebit._meta.concrete_fields
    if not field.primary_key
}


def _insert(debits: list[dict]) -> None:
    """New rows, without reading their keys back: ``COPY`` on PostgreSQL, bulk_create elsewhere.

    Every invoice of a customer with a mandate gets one in the billing run;
    COPY writes a chunk's 500 in about 10 ms, bulk_create in about 60 ms.
    """
    if not debits:
        return
    if connection.vendor != "postgresql":
        DirectDebit.objects.bulk_create(DirectDebit(**debit) for debit in debits)
        return
    columns = list(_DEBIT_DEFAULTS)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(DirectDebit._meta.db_table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        for debit in debits:
            copy.write_row([debit[column] for column in columns])


def debits_plan(*, day: date) -> int:
    """The daily sweep: a debit for every open subscription invoice that should have one (R12).

    First the scheduled debits whose mandate ended are cancelled
    (``debits_cancel_without_mandate``). Then every open subscription invoice
    with something still to pay, whose organisation has an active mandate and
    which has no debit other than cancelled ones, gets the next attempt on
    that mandate for its open amount: a mandate signed after the invoice, an
    invoice from before collections existed, or a mandate replaced by a new
    IBAN. The invoice did not announce these, so each gets a pre-notification
    e-mail. An invoice with a returned or rejected debit is left to the
    return's own path (re-presentment or a request to pay by transfer).
    Returns how many debits were planned; safe to run twice or at once.
    """
    today = max(day, clock.today())
    debits_cancel_without_mandate()
    has_debit = DirectDebit.objects.filter(invoice=OuterRef("pk"), status__in=NOT_CANCELLED)
    active_mandate = Mandate.objects.filter(
        organisation=OuterRef("organisation_id"), status=Mandate.Status.ACTIVE
    )
    candidates = list(
        Invoice.objects.filter(
            Exists(active_mandate),
            ~Exists(has_debit),
            kind=Invoice.Kind.INVOICE,
            purpose=Invoice.Purpose.SUBSCRIPTION,
            status=Invoice.Status.OPEN,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    planned = 0
    for start in range(0, len(candidates), PLAN_CHUNK_SIZE):
        planned += _plan_chunk(candidates[start : start + PLAN_CHUNK_SIZE], today)
    return planned


def _plan_chunk(invoice_ids: list[int], today: date) -> int:
    with transaction.atomic():
        # Lock, then read again: a concurrent sweep or a settlement may have been first.
        list(
            Invoice.objects.select_for_update()
            .filter(pk__in=invoice_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        last_attempt = (
            DirectDebit.objects.filter(invoice=OuterRef("pk"))
            .order_by("-attempt")
            .values("attempt")[:1]
        )
        rows = (
            with_balances(Invoice.objects.filter(pk__in=invoice_ids, status=Invoice.Status.OPEN))
            .annotate(
                active_mandate=Subquery(_active_mandate_pk()),
                last_attempt=Subquery(last_attempt),
                has_debit=Exists(
                    DirectDebit.objects.filter(invoice=OuterRef("pk"), status__in=NOT_CANCELLED)
                ),
            )
            .order_by("pk")
        )
        now = clock.now()
        debits = []
        for invoice in rows:
            owed = invoice.gross_total - invoice.credited_total - invoice.paid_total
            if invoice.has_debit or invoice.active_mandate is None or owed <= ZERO:
                continue
            attempt = (invoice.last_attempt or 0) + 1
            debits.append(
                DirectDebit(
                    invoice=invoice,
                    organisation_id=invoice.organisation_id,
                    mandate_id=invoice.active_mandate,
                    attempt=attempt,
                    amount=quantize(owed),
                    collection_date=collection_date_for(due_date=invoice.due_date, today=today),
                    end_to_end_id=end_to_end_id_for(invoice, attempt),
                    # The e-mail queued below announces it; it goes out once this commits.
                    prenotified_at=now,
                    created_at=now,
                )
            )
        DirectDebit.objects.bulk_create(debits)
        for debit in debits:
            notice_queue(debit=debit, kind=CollectionNotice.Kind.PRENOTIFICATION)
            audit_record(
                action="debit.planned",
                actor_kind=ActorKind.CALENDAR,
                organisation_id=debit.organisation_id,
                target=debit,
                data={
                    "invoice": debit.invoice.number,
                    "attempt": debit.attempt,
                    "amount": str(debit.amount),
                    "collection_date": debit.collection_date.isoformat(),
                    "mandate_id": debit.mandate_id,
                },
            )
    return len(debits)


def debits_cancel_without_mandate() -> int:
    """Cancel scheduled debits whose mandate is no longer active (revoked, replaced, invalid).

    Not yet in a batch, so nothing reaches the bank. The next ``debits_plan``
    puts the invoice on the organisation's new mandate, if it has one.
    """
    stale = list(
        DirectDebit.objects.filter(status=DirectDebit.Status.SCHEDULED)
        .exclude(mandate__status=Mandate.Status.ACTIVE)
        .order_by("invoice_id")
        .values_list("invoice_id", flat=True)
    )
    cancelled = 0
    for start in range(0, len(stale), PLAN_CHUNK_SIZE):
        invoice_ids = stale[start : start + PLAN_CHUNK_SIZE]
        with transaction.atomic():
            list(
                Invoice.objects.select_for_update()
                .filter(pk__in=invoice_ids)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            debits = list(
                DirectDebit.objects.select_for_update()
                .filter(invoice_id__in=invoice_ids, status=DirectDebit.Status.SCHEDULED)
                .exclude(mandate__status=Mandate.Status.ACTIVE)
                .select_related("mandate")
                .order_by("pk")
            )
            debits_cancel(
                debits=debits, reason="mandate_inactive", note=_("Machtiging niet meer actief")
            )
            cancelled += len(debits)
    return cancelled


def debits_cancel(*, debits: list[DirectDebit], reason: str, note: str) -> None:
    """Cancel scheduled debits the caller has locked (with their invoices); one audit row each."""
    if not debits:
        return
    now = clock.now()
    DirectDebit.objects.filter(
        pk__in=[debit.pk for debit in debits], status=DirectDebit.Status.SCHEDULED
    ).update(status=DirectDebit.Status.CANCELLED, updated_at=now)
    for debit in debits:
        debit.status = DirectDebit.Status.CANCELLED
        audit_record(
            action="debit.cancelled",
            actor_kind=ActorKind.SYSTEM,
            organisation_id=debit.organisation_id,
            target=debit,
            reason=note,
            data={"end_to_end_id": debit.end_to_end_id, "code": reason},
        )
