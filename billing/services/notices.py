"""Collection e-mails that must reach the customer exactly once (R12).

A service that decides a customer must hear something (a debit the invoice did
not announce, a failed debit tried again, a request to pay by transfer, an
announced collection date the bank can no longer reach) calls ``notice_queue``
inside its own transaction (or, for many at once, ``bulk_create`` with
``ignore_conflicts``). The row is the promise; the mail goes out after commit
and, should SMTP be down, from the 5-minute sweep with back-off. ``(debit,
kind)`` is unique, so a repeated decision queues nothing new.

Templates: ``templates/billing/email/collection_<kind>.txt`` and ``.html``,
rendered with ``notice_context``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from afas_sb import clock
from afas_sb.mail import send_templated_mail
from afas_sb.money import format_eur

from ..models import CollectionNotice, DirectDebit, Mandate
from ..sepa.reasons import describe
from .indexation import billing_contacts
from .ledger import invoice_balance
from .mandates import direct_customer_needs_mandate, sepa_creditor_id

logger = logging.getLogger(__name__)

Kind = CollectionNotice.Kind
Status = CollectionNotice.Status

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_MAX = timedelta(hours=6)
SWEEP_BATCH_SIZE = 200

# Marked for translation here, translated when sent (in the recipient's language).
SUBJECTS = {
    Kind.PRENOTIFICATION: gettext_noop("Aankondiging automatische incasso factuur %(number)s"),
    Kind.RETRY: gettext_noop("Incasso factuur %(number)s is niet gelukt: we proberen het opnieuw"),
    Kind.PAY_BY_TRANSFER: gettext_noop(
        "Incasso factuur %(number)s is niet gelukt: graag overmaken"
    ),
    Kind.DATE_MOVED: gettext_noop("Nieuwe incassodatum voor factuur %(number)s"),
}


def notice_queue(*, debit: DirectDebit, kind: str) -> CollectionNotice | None:
    """Promise one e-mail of ``kind`` about ``debit``; None when it was already promised.

    Call inside the transaction that made the decision; the mail is sent after commit.
    """
    try:
        with transaction.atomic():
            notice = CollectionNotice.objects.create(
                organisation_id=debit.organisation_id,
                invoice_id=debit.invoice_id,
                debit=debit,
                kind=kind,
                next_attempt_at=clock.now(),
                created_at=clock.now(),
            )
    except IntegrityError:
        if CollectionNotice.objects.filter(debit=debit, kind=kind).exists():
            return None
        raise
    transaction.on_commit(lambda: _enqueue_send(notice.pk))
    return notice


def _enqueue_send(notice_id: int) -> None:
    from ..notice_tasks import collection_notice_send

    collection_notice_send.delay(notice_id)


def notice_context(notice: CollectionNotice) -> dict:
    """What every collection e-mail may show: amounts, dates, mandate and how to pay."""
    debit = notice.debit
    invoice = notice.invoice
    balance = invoice_balance(invoice)
    failed = _failed_attempt(debit)
    return {
        "organisation_name": invoice.buyer_name,
        "invoice_number": invoice.number,
        "invoice_date": invoice.issue_date,
        "amount": format_eur(debit.amount),
        "open_amount": format_eur(balance.open_amount),
        "collection_date": debit.collection_date,
        "announced_date": notice.previous_date,
        "mandate_reference": debit.mandate.reference,
        "iban_masked": debit.mandate.iban_masked,
        "creditor_id": sepa_creditor_id(),
        "return_reason": describe(failed.return_reason),
        "failed_collection_date": failed.collection_date,
        "mandate_invalid": debit.mandate.status == Mandate.Status.INVALID,
        "direct_customer": direct_customer_needs_mandate(invoice.organisation),
        "vendor_iban": settings.VENDOR_IBAN,
        "vendor_bic": settings.VENDOR_BIC,
        "payment_reference": invoice.number,
        "invoices_url": settings.SITE_URL + reverse("portal:facturen"),
        "payment_details_url": settings.SITE_URL + reverse("portal:betaalgegevens"),
        "kind": notice.kind,
    }


def _failed_attempt(debit: DirectDebit) -> DirectDebit:
    """A RETRY notice is about the new attempt; why it is needed is the previous attempt's reason."""
    if debit.return_reason or debit.attempt <= 1:
        return debit
    previous = (
        DirectDebit.objects.filter(invoice_id=debit.invoice_id, attempt__lt=debit.attempt)
        .order_by("-attempt")
        .first()
    )
    return previous or debit


def _backoff(attempts: int) -> timedelta:
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def notice_send(*, notice_id: int) -> str:
    """Send one due notice; 'sent', 'retry', 'failed', 'busy' or 'not_due'. Safe twice or at once.

    The row stays locked while the mail goes out, so two workers never send it twice.
    """
    now = clock.now()
    with transaction.atomic():
        notice = (
            CollectionNotice.objects.select_for_update(skip_locked=True)
            .select_related("debit__mandate", "invoice")
            .filter(pk=notice_id)
            .first()
        )
        if notice is None:
            return "busy"
        if notice.status != Status.PENDING or (
            notice.next_attempt_at is not None and notice.next_attempt_at > now
        ):
            return "not_due"
        recipients = billing_contacts(organisation_ids=[notice.organisation_id]).get(
            notice.organisation_id, []
        )
        recipients = recipients or [notice.invoice.buyer_email]
        notice.attempts += 1
        notice.recipients = ", ".join(recipients)
        try:
            send_templated_mail(
                to=recipients,
                subject=_(SUBJECTS[notice.kind]) % {"number": notice.invoice.number},
                template=f"billing/email/collection_{notice.kind}",
                context=notice_context(notice),
            )
        except Exception as exc:  # SMTP trouble: try again later, boundedly
            logger.warning("collection notice %s failed: %s", notice.pk, exc)
            notice.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if notice.attempts >= MAX_ATTEMPTS:
                notice.status = Status.FAILED
                notice.next_attempt_at = None
            else:
                notice.next_attempt_at = now + _backoff(notice.attempts)
            notice.save(
                update_fields=["attempts", "recipients", "last_error", "status", "next_attempt_at"]
            )
            return "failed" if notice.status == Status.FAILED else "retry"
        notice.status = Status.SENT
        notice.sent_at = now
        notice.next_attempt_at = None
        notice.last_error = ""
        notice.save(
            update_fields=[
                "attempts",
                "recipients",
                "status",
                "sent_at",
                "next_attempt_at",
                "last_error",
            ]
        )
    return "sent"


@dataclass(frozen=True)
class NoticeSweep:
    sent: int
    pending: int
    more: bool


def notices_due_ids(*, limit: int = SWEEP_BATCH_SIZE) -> list[int]:
    return list(
        CollectionNotice.objects.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=clock.now()),
            status=Status.PENDING,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def notices_sweep(*, limit: int = SWEEP_BATCH_SIZE) -> NoticeSweep:
    ids = notices_due_ids(limit=limit)
    sent = sum(1 for pk in ids if notice_send(notice_id=pk) == "sent")
    return NoticeSweep(sent=sent, pending=len(ids) - sent, more=len(ids) == limit)
