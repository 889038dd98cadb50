"""Direct-debit batches: scheduled debits into pain.008 files, handed to the bank (R12).

Every TARGET2 day the calendar takes the scheduled debits whose batch day has
come (``batch_day_for(collection date) <= day``: the bank's cut-off of
``SEPA_DEBIT_LEAD_DAYS`` TARGET2 days before the collection date) and groups
them per collection date and sequence type, one ``DebitBatch`` and one
pain.008 file each.

Just before a debit goes into a file it is checked again under lock, because
days may have passed since it was planned: an invoice paid by transfer or
fully credited cancels it, a partial credit note lowers it to what is still
open, an ended mandate cancels it (the daily planning moves the invoice to a
new mandate), and a collection date the bank can no longer reach (the
calendar was down on the batch day) moves to the first one it can. A customer
who was told the old date (by the invoice or an e-mail) gets a DATE_MOVED
e-mail with the old date and the new one, once per debit, sent after the
batches commit; every move is also in the debit's "debit.date_moved" audit row.

The sequence type is the mandate's at batch time: FRST until a collection on
it has succeeded, RCUR after. So two debits of one new mandate in the same
file are both FRST, and a debit batched while the mandate's FRST is still
unsettled is FRST too; SEPA allows both. A returned or rejected FRST keeps the
next one FRST, also when the bank booked the collection before the return:
settling the return makes a mandate with nothing else collected unused again
(``billing.services.settlement``).

Concurrency: invoices are locked first (in pk order, the ledger's order), then
their debits and mandates; a second run waits, then finds the debits already
batched. Each batch is created with a placeholder message id that becomes
``SB-DD-<date>-<FRST|RCUR>-<batch pk>``, unique without a counter to race on.

After the batches commit they are submitted (``billing.sepa.submission``):
written to the bank's outbox and marked submitted, or left for staff in
"manual" mode. A submission that failed (disk full) is retried by the next
run, since every run submits whatever is still "created".
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.audit.services import actor_kind_for, audit_record
from afas_sb.errors import DomainError

from ..models import CollectionNotice, DebitBatch, DirectDebit, Invoice, Mandate
from ..models.mandates import validate_sepa_reference
from ..sepa.pain008 import Pain008Debit, render_pain008
from ..sepa.submission import submission_for
from .bulk import among, audit_row, batched, insert_rows
from .debits import batch_day_for, debits_cancel, earliest_collection_date
from .ledger import with_balances
from .mandates import FRST, RCUR, creditor_name, sepa_creditor_id
from .settlement import notices_send_after_commit

logger = logging.getLogger(__name__)

# How far ahead scheduled collection dates are looked at; batch days lie a few
# TARGET2 days before them, so a month is far more than enough.
LOOKAHEAD_DAYS = 31


@dataclass(slots=True)
class _Mandate:
    """What batching reads of a mandate (a run may hold 100 000: no model instances)."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "pk",
        "reference",
        "account_holder",
        "iban",
        "bic",
        "signed_at",
        "status",
        "first_collected_at",
    )

    pk: int
    reference: str
    account_holder: str
    iban: str
    bic: str
    signed_at: datetime
    status: str
    first_collected_at: datetime | None


@dataclass(slots=True)
class _Debit:
    """What batching reads and writes of a debit, and the mandate it goes out on."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "pk",
        "invoice_id",
        "invoice__number",
        "organisation_id",
        "mandate_id",
        "amount",
        "collection_date",
        "end_to_end_id",
        "prenotified_at",
    )

    pk: int
    invoice_id: int
    invoice_number: str
    organisation_id: int
    mandate_id: int
    amount: Decimal
    collection_date: date
    end_to_end_id: str
    prenotified_at: datetime | None
    mandate: _Mandate | None = None
    # The collection date before this run moved it (the one the customer may have been told).
    moved_from: date | None = None

    def as_model(self) -> DirectDebit:
        """The model instance the rarer paths (cancel, lower, refuse) audit and update by."""
        return DirectDebit(
            pk=self.pk,
            invoice_id=self.invoice_id,
            organisation_id=self.organisation_id,
            mandate_id=self.mandate_id,
            amount=self.amount,
            collection_date=self.collection_date,
            end_to_end_id=self.end_to_end_id,
            prenotified_at=self.prenotified_at,
            status=DirectDebit.Status.SCHEDULED,
        )


@dataclass
class _Group:
    collection_date: date
    sequence_type: str
    debits: list[_Debit]


def debit_batches_create(*, day: date) -> list[DebitBatch]:
    """Batch every scheduled debit whose batch day is ``day`` or earlier; the new batches.

    Idempotent (a second run finds nothing scheduled that is due) and safe to
    run concurrently (see the module docstring). Runs in one transaction; the
    files are handed to the bank after it commits.
    """
    # What is due follows the calendar's day; what the bank can still reach
    # follows the real one (a catch-up run for yesterday submits today).
    reach_from = max(day, clock.today())
    due_dates = _due_collection_dates(day)
    batches: list[DebitBatch] = []
    if due_dates:
        with transaction.atomic():
            batches = _batch(day=day, due_dates=due_dates, reach_from=reach_from)
    transaction.on_commit(debit_batches_submit_pending, robust=True)
    return batches


def _due_collection_dates(day: date) -> list[date]:
    horizon = earliest_collection_date(day).toordinal() + LOOKAHEAD_DAYS
    dates = (
        DirectDebit.objects.filter(
            status=DirectDebit.Status.SCHEDULED,
            collection_date__lte=date.fromordinal(horizon),
        )
        .order_by("collection_date")
        .values_list("collection_date", flat=True)
        .distinct()
    )
    return [collection_date for collection_date in dates if batch_day_for(collection_date) <= day]


def _batch(*, day: date, due_dates: list[date], reach_from: date) -> list[DebitBatch]:
    invoice_ids = list(
        Invoice.objects.select_for_update(of=("self",))
        .filter(
            debits__status=DirectDebit.Status.SCHEDULED,
            debits__collection_date__in=due_dates,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    debits: list[_Debit] = []
    owed: dict[int, Decimal] = {}
    for chunk in batched(invoice_ids):
        # Read after the invoice locks: a run that went first has batched these already.
        rows = (
            DirectDebit.objects.select_for_update(of=("self",))
            .filter(
                among("invoice_id", chunk),
                status=DirectDebit.Status.SCHEDULED,
                collection_date__in=due_dates,
            )
            .order_by("pk")
            .values_list(*_Debit.FIELDS)
        )
        debits += [_Debit(*row) for row in rows]
        for pk, status, gross, credited, paid in with_balances(
            Invoice.objects.filter(among("pk", chunk))
        ).values_list("pk", "status", "gross_total", "credited_total", "paid_total"):
            owed[pk] = gross - credited - paid if status == Invoice.Status.OPEN else Decimal(0)
    mandates = _locked_mandates({debit.mandate_id for debit in debits})

    earliest = earliest_collection_date(reach_from)
    groups: dict[tuple[date, str], _Group] = {}
    to_cancel: dict[str, list[_Debit]] = defaultdict(list)
    moved: list[_Debit] = []
    lowered: list[_Debit] = []
    refused: list[_Debit] = []
    for debit in debits:
        mandate = mandates[debit.mandate_id]
        debit.mandate = mandate
        open_amount = owed.get(debit.invoice_id, Decimal(0))
        if open_amount <= 0:
            to_cancel["invoice_settled"].append(debit)
            continue
        if mandate.status != Mandate.Status.ACTIVE:
            to_cancel["mandate_inactive"].append(debit)
            continue
        if open_amount < debit.amount:
            debit.amount = open_amount
            lowered.append(debit)
        if debit.collection_date < earliest:
            debit.moved_from = debit.collection_date
            debit.collection_date = earliest
            moved.append(debit)
            if batch_day_for(debit.collection_date) > day:
                continue  # a TARGET2 closing day: the next TARGET2 day batches it
        if not _sepa_identifiers_valid(debit, mandate):
            refused.append(debit)
            continue
        sequence_type = RCUR if mandate.first_collected_at is not None else FRST
        key = (debit.collection_date, sequence_type)
        groups.setdefault(key, _Group(debit.collection_date, sequence_type, [])).debits.append(
            debit
        )

    debits_cancel(
        debits=[debit.as_model() for debit in to_cancel["invoice_settled"]],
        reason="invoice_settled",
        note=_("Factuur betaald of gecrediteerd voordat de incasso werd aangeboden"),
    )
    debits_cancel(
        debits=[debit.as_model() for debit in to_cancel["mandate_inactive"]],
        reason="mandate_inactive",
        note=_("Machtiging niet meer actief"),
    )
    _save_amounts_and_dates(lowered, moved)
    _announce_moved(moved)
    _report_refused(refused)
    return [_create_batch(group) for _key, group in sorted(groups.items())]


def _locked_mandates(mandate_ids: set[int]) -> dict[int, _Mandate]:
    """The debits' mandates, locked against a revocation until the batch commits."""
    mandates: dict[int, _Mandate] = {}
    for chunk in batched(sorted(mandate_ids)):
        rows = (
            Mandate.objects.select_for_update(no_key=True)
            .filter(among("pk", chunk))
            .order_by("pk")
            .values_list(*_Mandate.FIELDS)
        )
        mandates.update((row[0], _Mandate(*row)) for row in rows)
    return mandates


def _sepa_identifiers_valid(debit: _Debit, mandate: _Mandate) -> bool:
    try:
        validate_sepa_reference(mandate.reference)
        validate_sepa_reference(debit.end_to_end_id)
    except ValidationError:
        return False
    return True


def _save_amounts_and_dates(lowered: list[_Debit], moved: list[_Debit]) -> None:
    """Lowered amounts one by one (rare: a partial credit note); moved dates per date, with
    an audit row each that keeps the old date (a missed run may move thousands: in bulk)."""
    now = clock.now()
    for debit in lowered:
        DirectDebit.objects.filter(pk=debit.pk).update(amount=debit.amount, updated_at=now)
        audit_record(
            action="debit.amount_lowered",
            organisation_id=debit.organisation_id,
            target=debit.as_model(),
            reason=_("Deels gecrediteerd of betaald voordat de incasso werd aangeboden"),
            data={"end_to_end_id": debit.end_to_end_id, "amount": str(debit.amount)},
        )
    by_date: dict[date, list[int]] = defaultdict(list)
    for debit in moved:
        by_date[debit.collection_date].append(debit.pk)
    for collection_date, pks in by_date.items():
        for chunk in batched(pks):
            DirectDebit.objects.filter(among("pk", chunk)).update(
                collection_date=collection_date, updated_at=now
            )
    reason = _("Geplande incassodatum niet meer haalbaar; verschoven naar de eerste haalbare datum")
    for chunk in batched(moved):
        insert_rows(
            AuditEvent,
            [
                audit_row(
                    "debit.date_moved",
                    DirectDebit,
                    debit.pk,
                    organisation_id=debit.organisation_id,
                    actor_kind=ActorKind.CALENDAR,
                    reason=reason,
                    data={
                        "end_to_end_id": debit.end_to_end_id,
                        "from": debit.moved_from.isoformat(),
                        "to": debit.collection_date.isoformat(),
                    },
                    at=now,
                )
                for debit in chunk
            ],
        )


def _announce_moved(moved: list[_Debit]) -> None:
    """A DATE_MOVED e-mail for each moved debit whose customer was told the old date.

    ``notice_queue`` for many: once per debit (a repeat is ignored), sent after commit
    by one sweep (``notices_send_after_commit``) rather than a task each. A debit
    without ``prenotified_at`` announced no date, so there is nothing to correct.
    """
    now = clock.now()
    notices = [
        CollectionNotice(
            organisation_id=debit.organisation_id,
            invoice_id=debit.invoice_id,
            debit_id=debit.pk,
            kind=CollectionNotice.Kind.DATE_MOVED,
            # Kept by the first move only (one notice per debit): the date the customer knew.
            previous_date=debit.moved_from,
            next_attempt_at=now,
            created_at=now,
        )
        for debit in moved
        if debit.prenotified_at is not None
    ]
    if not notices:
        return
    CollectionNotice.objects.bulk_create(notices, batch_size=500, ignore_conflicts=True)
    notices_send_after_commit()


def _report_refused(refused: list[_Debit]) -> None:
    """Left scheduled, loudly: staff correct the reference; cancelling would re-plan it daily."""
    for debit in refused:
        logger.error(
            "debit %s not batched: mandate reference %r or end-to-end id %r is not SEPA text",
            debit.pk,
            debit.mandate.reference,
            debit.end_to_end_id,
        )
        audit_record(
            action="debit.refused",
            organisation_id=debit.organisation_id,
            target=debit.as_model(),
            reason=_("Machtigingskenmerk of end-to-end-id bevat tekens buiten de SEPA-tekenset"),
            data={"end_to_end_id": debit.end_to_end_id, "mandate": debit.mandate.reference},
        )


def _create_batch(group: _Group) -> DebitBatch:
    now = clock.now()
    creditor_id = sepa_creditor_id()
    batch = DebitBatch.objects.create(
        message_id=f"new-{uuid.uuid4().hex}"[:35],
        collection_date=group.collection_date,
        sequence_type=group.sequence_type,
        creditor_id=creditor_id,
        created_at=now,
    )
    batch.message_id = f"SB-DD-{group.collection_date:%Y%m%d}-{group.sequence_type}-{batch.pk}"
    content = render_pain008(
        message_id=batch.message_id,
        collection_date=group.collection_date,
        sequence_type=group.sequence_type,
        creditor_name=creditor_name(),
        creditor_iban=settings.VENDOR_IBAN,
        creditor_bic=settings.VENDOR_BIC,
        creditor_id=creditor_id,
        debits=(_pain008_debit(debit) for debit in group.debits),
        created_at=now,
    )
    batch.debit_count = len(group.debits)
    batch.total = sum((debit.amount for debit in group.debits), Decimal("0.00"))
    batch.sha256 = hashlib.sha256(content).hexdigest()
    # Written inside the transaction: a rollback leaves an unreferenced file, never
    # a batch without its file.
    batch.file.save(f"{batch.message_id}.xml", ContentFile(content), save=False)
    batch.save(update_fields=["message_id", "debit_count", "total", "sha256", "file"])
    for chunk in batched([debit.pk for debit in group.debits]):
        DirectDebit.objects.filter(among("pk", chunk)).update(
            status=DirectDebit.Status.BATCHED,
            batch=batch,
            sequence_type=group.sequence_type,
            collection_date=group.collection_date,
            updated_at=now,
        )
    audit_record(
        action="debit_batch.created",
        actor_kind=ActorKind.CALENDAR,
        target=batch,
        data={
            "message_id": batch.message_id,
            "collection_date": group.collection_date.isoformat(),
            "sequence_type": group.sequence_type,
            "count": batch.debit_count,
            "total": str(batch.total),
        },
    )
    return batch


def _pain008_debit(debit: _Debit) -> Pain008Debit:
    mandate = debit.mandate
    return Pain008Debit(
        end_to_end_id=debit.end_to_end_id,
        amount=debit.amount,
        mandate_id=mandate.reference,
        mandate_signed_on=clock.local(mandate.signed_at).date(),
        debtor_name=mandate.account_holder,
        debtor_iban=mandate.iban,
        debtor_bic=mandate.bic,
        remittance=f"Factuur {debit.invoice_number} AFAS SB",
    )


# --- Submission ---------------------------------------------------------------------------


def debit_batches_submit_pending() -> int:
    """Hand every batch still "created" to the bank; how many were submitted.

    Does nothing in "manual" mode. A batch that fails (the outbox is not
    writable) stays "created" and is tried again on the next run.
    """
    submission = submission_for()
    if submission.name == "manual":
        return 0
    pending = DebitBatch.objects.filter(status=DebitBatch.Status.CREATED).order_by("pk")
    submitted = 0
    for batch_id in pending.values_list("pk", flat=True):
        try:
            submitted += debit_batch_submit(batch_id=batch_id) == "submitted"
        except (OSError, DomainError):
            logger.exception("debit batch %s could not be submitted", batch_id)
    return submitted


def debit_batch_submit(*, batch_id: int) -> str:
    """Submit one batch the configured way: 'submitted', 'manual', 'already' or 'busy'."""
    submission = submission_for()
    with transaction.atomic():
        batch = DebitBatch.objects.select_for_update(skip_locked=True).filter(pk=batch_id).first()
        if batch is None:
            return "busy"
        if batch.status != DebitBatch.Status.CREATED:
            return "already"
        if not submission.submit(message_id=batch.message_id, content=debit_batch_content(batch)):
            return "manual"
        _mark_submitted(batch, user=None, via=submission.name)
    return "submitted"


def debit_batch_mark_submitted(*, batch: DebitBatch, user=None) -> DebitBatch:
    """Staff uploaded the file to the bank themselves ("manual" mode). A repeat changes nothing."""
    with transaction.atomic():
        batch = DebitBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != DebitBatch.Status.CREATED:
            return batch
        _mark_submitted(batch, user=user, via="manual")
    return batch


def _mark_submitted(batch: DebitBatch, *, user, via: str) -> None:
    now = clock.now()
    batch.status = DebitBatch.Status.SUBMITTED
    batch.submitted_at = now
    batch.submitted_by = user if user is not None and user.pk else None
    batch.save(update_fields=["status", "submitted_at", "submitted_by"])
    DirectDebit.objects.filter(batch=batch, status=DirectDebit.Status.BATCHED).update(
        status=DirectDebit.Status.SUBMITTED, updated_at=now
    )
    audit_record(
        action="debit_batch.submitted",
        actor_kind=actor_kind_for(user) if user is not None else ActorKind.SYSTEM,
        actor_user=user,
        target=batch,
        reason=_("Incassobatch aangeboden aan de bank"),
        data={"message_id": batch.message_id, "via": via, "count": batch.debit_count},
    )


def debit_batch_content(batch: DebitBatch) -> bytes:
    """The stored pain.008 file, checked against its checksum: exactly what the bank gets."""
    if not batch.file:
        raise DomainError(
            _("Incassobatch %(id)s heeft geen bestand.") % {"id": batch.message_id},
            code="batch_file_missing",
        )
    try:
        with batch.file.open("rb") as handle:
            content = handle.read()
    except OSError:
        raise DomainError(
            _("Het bestand van incassobatch %(id)s is niet te lezen.") % {"id": batch.message_id},
            code="batch_file_missing",
        ) from None
    if hashlib.sha256(content).hexdigest() != batch.sha256:
        raise DomainError(
            _("Het bestand van incassobatch %(id)s klopt niet met zijn controlegetal.")
            % {"id": batch.message_id},
            code="batch_file_corrupt",
        )
    return content
