"""Delivering issued invoices (R10): schedule, send with retries and back-off, resend, sweep.

The state lives in ``InvoiceDelivery``, never only in a Celery message: a
periodic sweep sends whatever is due, so a lost message or an SMTP /
access-point outage delays delivery and loses nothing.

One attempt (``delivery_send``), crash-safe as zulip's ``invoice_plan``:
1. lock the row (skip it when another worker holds it), re-check that it is
   due, mark it SENDING and commit — before anything leaves the building;
2. render/store the documents and call the transport outside any lock, with
   an idempotency key derived from the invoice;
3. record the outcome in a second short transaction: SENT, back to PENDING
   with back-off (transient error), or FAILED (permanent, or out of attempts).

A worker that dies between 1 and 3 leaves the row SENDING; the sweep takes it
up again after ``SENDING_STALE_AFTER``. E-mail is therefore at-least-once in
that one crash window; the access point deduplicates on the Idempotency-Key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.errors import Conflict
from billing.delivery.base import (
    DeliveryError,
    Document,
    Parcel,
    transport_for,
)
from billing.documents.base import document_store
from billing.models import Invoice, InvoiceDelivery
from billing.services.bulk import among, batched
from billing.services.indexation import billing_contacts
from billing.services.payment_terms import invoice_renderers

logger = logging.getLogger(__name__)

Status = InvoiceDelivery.Status
Channel = InvoiceDelivery.Channel

DEFAULT_MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_MAX = timedelta(hours=6)
# A SENDING row older than this belongs to a worker that died mid-attempt.
SENDING_STALE_AFTER = timedelta(minutes=15)
SWEEP_BATCH_SIZE = 500
RECIPIENT_MAX_LENGTH = InvoiceDelivery._meta.get_field("recipient").max_length


def max_attempts() -> int:
    return getattr(settings, "INVOICE_DELIVERY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: 5 min, 10, 20, ... at most 6 h."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


# -- scheduling ---------------------------------------------------------------------


def delivery_schedule(*, invoice: Invoice, enqueue: bool = False) -> InvoiceDelivery:
    """The invoice's delivery, created pending and due now on first call (idempotent).

    Peppol when the buyer snapshot has an endpoint id (R10), else e-mail.
    ``enqueue`` sends it right after commit; otherwise the sweep sends it
    within minutes (keeps a billing run from rendering PDFs in its chunks).
    """
    delivery, created = InvoiceDelivery.objects.get_or_create(
        invoice=invoice,
        defaults=_new_delivery(
            invoice, billing_contacts(organisation_ids=[invoice.organisation_id])
        ),
    )
    if created and enqueue:
        _enqueue_send(delivery.pk)
    return delivery


class _Addressee(NamedTuple):
    """What choosing a channel and recipient reads of an invoice (its snapshot)."""

    pk: int
    organisation_id: int
    buyer_email: str
    buyer_peppol_scheme: str
    buyer_peppol_id: str


def delivery_schedule_for_invoices(*, invoice_ids: Iterable[int], enqueue: bool = False) -> int:
    """Pending deliveries for many invoices at once (a billing chunk); returns how many are new.

    A constant number of queries: the invoices, the contacts, one insert (and the
    existing deliveries first where the insert cannot count what it skipped).
    Concurrent callers are harmless: the one-to-one constraint drops duplicates
    (``ON CONFLICT DO NOTHING``).
    """
    invoice_ids = sorted(set(invoice_ids))
    if not invoice_ids:
        return 0
    existing = set()
    # PostgreSQL's insert skips (and does not count) the invoices that have one already.
    for part in batched(invoice_ids) if connection.vendor != "postgresql" else ():
        existing.update(
            InvoiceDelivery.objects.filter(among("invoice_id", part)).values_list(
                "invoice_id", flat=True
            )
        )
    invoices: list[_Addressee] = []
    for part in batched([pk for pk in invoice_ids if pk not in existing]):
        invoices += map(
            _Addressee._make,
            Invoice.objects.filter(among("pk", part))
            .order_by("pk")
            .values_list(*_Addressee._fields),
        )
    if not invoices:
        return 0
    contacts = billing_contacts(organisation_ids={invoice.organisation_id for invoice in invoices})
    rows = [(invoice.pk, *_channel_and_recipient(invoice, contacts)) for invoice in invoices]
    created = _insert_pending(rows)
    if enqueue:
        transaction.on_commit(_enqueue_sweep)
    return created


def _insert_pending(rows: list[tuple[int, str, str]]) -> int:
    """Insert pending deliveries (invoice, channel, recipient), skipping invoices that have
    one; how many were inserted. A billing chunk brings 500: on PostgreSQL one statement
    over arrays, not a model instance and a dozen parameters per row."""
    now = clock.now()
    if connection.vendor != "postgresql":
        created = InvoiceDelivery.objects.bulk_create(
            [
                InvoiceDelivery(
                    invoice_id=invoice_id,
                    channel=channel,
                    recipient=recipient,
                    status=Status.PENDING,
                    next_attempt_at=now,
                )
                for invoice_id, channel, recipient in rows
            ],
            ignore_conflicts=True,
        )
        return len(created)
    invoice_ids, channels, recipients = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{InvoiceDelivery._meta.db_table}" '  # noqa: S608 - model table
            '("invoice_id", "channel", "recipient", "status", "attempts", "next_attempt_at", '
            '"last_error", "external_id", "sent_at", "created_at", "updated_at") '
            "SELECT t.invoice_id, t.channel, t.recipient, %s, 0, %s, '', '', NULL, %s, %s "
            "FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[]) "
            "AS t(invoice_id, channel, recipient) "
            'ON CONFLICT ("invoice_id") DO NOTHING',
            [Status.PENDING, now, now, now, invoice_ids, channels, recipients],
        )
        return cursor.rowcount


def _channel_and_recipient(invoice, contacts: dict[int, list[str]]) -> tuple[str, str]:
    if invoice.buyer_peppol_id:
        return Channel.PEPPOL, _peppol_address(invoice)
    return Channel.EMAIL, _joined(_email_recipients(invoice, contacts))


def _new_delivery(invoice: Invoice, contacts: dict[int, list[str]]) -> dict:
    channel, recipient = _channel_and_recipient(invoice, contacts)
    return {
        "channel": channel,
        "recipient": recipient,
        "status": Status.PENDING,
        "next_attempt_at": clock.now(),
    }


def _peppol_address(invoice: Invoice) -> str:
    return f"{invoice.buyer_peppol_scheme}:{invoice.buyer_peppol_id}"


def _email_recipients(invoice: Invoice, contacts: dict[int, list[str]]) -> list[str]:
    """The invoice address from the snapshot first, then the customer's billing contacts."""
    addresses = [invoice.buyer_email, *contacts.get(invoice.organisation_id, [])]
    seen, unique = set(), []
    for address in addresses:
        if address and address.lower() not in seen:
            seen.add(address.lower())
            unique.append(address)
    return unique


def _joined(addresses: list[str]) -> str:
    """As many whole addresses as fit the column; the send uses the full list."""
    joined = ""
    for address in addresses:
        candidate = f"{joined}, {address}" if joined else address
        if len(candidate) > RECIPIENT_MAX_LENGTH:
            break
        joined = candidate
    return joined


# -- sending ------------------------------------------------------------------------


class SendResult:
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    NOT_DUE = "not_due"
    BUSY = "busy"
    MISSING = "missing"


def _due_filter(now: datetime) -> Q:
    # FAILED rows have no next attempt (None never compares <=): they wait for staff.
    return Q(status__in=[Status.PENDING, Status.FAILED, Status.SENDING], next_attempt_at__lte=now)


def delivery_send(*, delivery_id: int) -> str:
    """One attempt to deliver; returns a ``SendResult``. Harmless to call twice or concurrently."""
    now = clock.now()
    with transaction.atomic():
        delivery = (
            InvoiceDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            exists = InvoiceDelivery.objects.filter(pk=delivery_id).exists()
            return SendResult.BUSY if exists else SendResult.MISSING
        if not InvoiceDelivery.objects.filter(_due_filter(now), pk=delivery.pk).exists():
            return SendResult.NOT_DUE
        # The crash-safe marker, committed before the external call.
        delivery.status = Status.SENDING
        delivery.next_attempt_at = now + SENDING_STALE_AFTER
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])

    invoice = Invoice.objects.get(pk=delivery.invoice_id)
    try:
        parcel = _parcel(delivery, invoice)
        external_id = transport_for(delivery.channel).send(parcel)
    except DeliveryError as exc:
        return _record_failure(delivery.pk, str(exc), permanent=exc.permanent)
    except Exception as exc:  # unknown trouble is retried, boundedly
        logger.exception("invoice delivery %s failed unexpectedly", delivery.pk)
        return _record_failure(delivery.pk, f"{type(exc).__name__}: {exc}", permanent=False)
    return _record_sent(delivery.pk, external_id, parcel)


def _parcel(delivery: InvoiceDelivery, invoice: Invoice) -> Parcel:
    # The PDF first: the UBL embeds the stored PDF.
    pdf_renderer, ubl_renderer = invoice_renderers()
    pdf = document_store(invoice=invoice, renderer=pdf_renderer)
    ubl = document_store(invoice=invoice, renderer=ubl_renderer)
    if delivery.channel == Channel.EMAIL:
        contacts = billing_contacts(organisation_ids=[invoice.organisation_id])
        recipients = tuple(_email_recipients(invoice, contacts))
    else:
        recipients = (_peppol_address(invoice),)
    return Parcel(
        invoice=invoice,
        pdf=_read(pdf),
        ubl=_read(ubl),
        recipients=recipients,
        idempotency_key=invoice.number,
    )


def _read(document) -> Document:
    with document.file.open("rb") as handle:
        content = handle.read()
    return Document(document.filename, document.content_type, content)


def _record_sent(delivery_id: int, external_id: str, parcel: Parcel) -> str:
    now = clock.now()
    with transaction.atomic():
        delivery = InvoiceDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.status = Status.SENT
        delivery.attempts += 1
        delivery.sent_at = now
        delivery.external_id = external_id[:255]
        delivery.next_attempt_at = None
        delivery.last_error = ""
        if delivery.channel == Channel.EMAIL:
            delivery.recipient = _joined(list(parcel.recipients))
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "sent_at",
                "external_id",
                "next_attempt_at",
                "last_error",
                "recipient",
                "updated_at",
            ]
        )
        audit_record(
            action="billing.invoice_delivered",
            actor_kind=ActorKind.SYSTEM,
            organisation_id=parcel.invoice.organisation_id,
            target=delivery,
            data={
                "invoice": parcel.invoice.number,
                "channel": delivery.channel,
                "recipients": list(parcel.recipients),
                "external_id": delivery.external_id,
                "attempts": delivery.attempts,
            },
        )
    return SendResult.SENT


def _record_failure(delivery_id: int, error: str, *, permanent: bool) -> str:
    now = clock.now()
    with transaction.atomic():
        delivery = (
            InvoiceDelivery.objects.select_for_update()
            .select_related("invoice")
            .get(pk=delivery_id)
        )
        delivery.attempts += 1
        delivery.last_error = error
        if permanent or delivery.attempts >= max_attempts():
            delivery.status = Status.FAILED
            delivery.next_attempt_at = None
            result = SendResult.FAILED
        else:
            delivery.status = Status.PENDING
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            result = SendResult.RETRY
        delivery.save(
            update_fields=["status", "attempts", "last_error", "next_attempt_at", "updated_at"]
        )
        if result == SendResult.FAILED:
            # Visible in admin; staff fix the cause and send again.
            audit_record(
                action="billing.invoice_delivery_failed",
                actor_kind=ActorKind.SYSTEM,
                organisation_id=delivery.invoice.organisation_id,
                target=delivery,
                reason=error,
                data={
                    "invoice": delivery.invoice.number,
                    "attempts": delivery.attempts,
                    "permanent": permanent,
                },
            )
    logger.warning("invoice delivery %s: %s (%s)", delivery_id, error, result)
    return result


# -- staff -------------------------------------------------------------------------


def delivery_resend(
    *, delivery: InvoiceDelivery, staff_user, enqueue: bool = True
) -> InvoiceDelivery:
    """Staff: deliver again now — a failed one, or a sent one the customer cannot find."""
    now = clock.now()
    with transaction.atomic():
        delivery = (
            InvoiceDelivery.objects.select_for_update()
            .select_related("invoice")
            .get(pk=delivery.pk)
        )
        if delivery.status == Status.SENDING and delivery.next_attempt_at > now:
            raise Conflict(
                _("Factuur %(number)s wordt op dit moment verstuurd; probeer het zo opnieuw.")
                % {"number": delivery.invoice.number},
                code="delivery_in_progress",
            )
        previous = delivery.status
        delivery.status = Status.PENDING
        delivery.attempts = 0  # a fresh series of attempts, with its own back-off
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        audit_record(
            action="billing.invoice_delivery_resent",
            actor_kind=ActorKind.STAFF,
            actor_user=staff_user,
            organisation_id=delivery.invoice.organisation_id,
            target=delivery,
            data={"invoice": delivery.invoice.number, "previous_status": previous},
        )
        if enqueue:
            _enqueue_send(delivery.pk)
    return delivery


# -- the sweep ----------------------------------------------------------------------


@dataclass
class SweepResult:
    results: dict[str, int] = field(default_factory=dict)
    more: bool = False

    def __str__(self) -> str:
        if not self.results:
            return "geen facturen te versturen"
        return ", ".join(f"{name}: {count}" for name, count in sorted(self.results.items()))


def deliveries_due_ids(*, now: datetime | None = None, limit: int = SWEEP_BATCH_SIZE) -> list[int]:
    now = now or clock.now()
    return list(
        InvoiceDelivery.objects.filter(_due_filter(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def deliveries_sweep(*, now: datetime | None = None, limit: int = SWEEP_BATCH_SIZE) -> SweepResult:
    """Send every due delivery (pending and due, or SENDING and stale), at most ``limit``.

    ``more`` tells the caller (the Celery task) to come back for the rest.
    """
    ids = deliveries_due_ids(now=now, limit=limit)
    result = SweepResult(more=len(ids) == limit)
    for delivery_id in ids:
        outcome = delivery_send(delivery_id=delivery_id)
        result.results[outcome] = result.results.get(outcome, 0) + 1
    return result


def _enqueue_send(delivery_id: int) -> None:
    from billing.delivery_tasks import invoice_delivery_send

    transaction.on_commit(lambda: invoice_delivery_send.delay(delivery_id))


def _enqueue_sweep() -> None:
    from billing.delivery_tasks import invoice_deliveries_sweep

    invoice_deliveries_sweep.delay()
