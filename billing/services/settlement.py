"""Settling direct debits from the bank's answer: collected, returned, rejected (R12).

The same booking may reach us twice with different keys (a camt.054 during the
day, the camt.053 statement at night), so "exactly once" is decided on meaning,
not on the bank file's keys: a debit is collected once and reversed once
(``Payment`` is unique per debit and kind), and a debit's status only moves
forward (submitted → collected → returned; submitted → returned; submitted →
rejected). A return whose collection we never saw records both, net zero, so a
collection line arriving later is a no-op.

``SettlementBook`` holds the invoices and debits one chunk of a bank file
touches, with the invoices locked (by primary key, the ledger's order) and
their balances in memory, read after the locks. Lines are decided one by one
against that state, so a collection and its return in the same file settle
right in either order; the result is written back in bulk by ``flush``, with
plain rows rather than model instances (``bulk``): a 100 000-line statement
must import in well under a minute. What the chunk's failed debits lead to — a
re-presentment, an invalid mandate, a request to pay by transfer — follows
after the flush (``failures_follow_up``), also in bulk: a statement may bring
thousands of returns.

Sequence type: a mandate is "first collected" (RCUR from then on) when a debit
on it is collected, and "unused" again (FRST) when its first collection comes
back and nothing else was collected on it, whichever order the bank reports
the collection and the return in; SEPA accepts both since the November 2016
rulebook, this keeps one rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from afas_sb import clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.audit.services import audit_record
from afas_sb.money import quantize

from ..models import (
    CollectionNotice,
    DebitBatch,
    DirectDebit,
    Invoice,
    Mandate,
    Payment,
    SequenceType,
)
from ..sepa.reasons import ReturnPath, describe, return_path
from .bulk import among, audit_row, batched, insert_rows, reserve_ids, sql_among
from .debits import collection_date_for, end_to_end_id_for
from .ledger import ZERO, with_balances
from .mandates import mandates_invalidate

Status = DirectDebit.Status

# Debits the bank has (or may have) received: a collection or a verdict can arrive for them.
AT_BANK = (Status.BATCHED, Status.SUBMITTED)
FINAL = (Status.COLLECTED, Status.RETURNED, Status.REJECTED, Status.CANCELLED)


@dataclass(slots=True)
class DebitState:
    """The columns of a debit that settling reads and writes (a model instance per line is
    too slow for a 100 000-line statement); written back by ``SettlementBook.flush``."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "pk",
        "invoice_id",
        "organisation_id",
        "mandate_id",
        "batch_id",
        "amount",
        "status",
        "end_to_end_id",
        "attempt",
        "sequence_type",
        "collected_on",
    )

    pk: int
    invoice_id: int
    organisation_id: int
    mandate_id: int
    batch_id: int | None
    amount: Decimal
    status: str
    end_to_end_id: str
    attempt: int
    sequence_type: str
    collected_on: date | None = None
    return_reason: str = ""
    return_info: str = ""
    returned_on: date | None = None

    def get_status_display(self) -> str:
        return str(Status(self.status).label)


@dataclass(slots=True)
class InvoiceState:
    FIELDS: ClassVar[tuple[str, ...]] = ("pk", "organisation_id", "kind", "status", "number")

    pk: int
    organisation_id: int
    kind: str
    status: str
    number: str


@dataclass
class Failure:
    """A debit that came back (returned) or never went (rejected), for the follow-up."""

    debit: DebitState
    reason: str
    rejected: bool


@dataclass(frozen=True)
class Outcome:
    """What one line did: a summary counter, the debit and invoice it concerned, a note."""

    counter: str
    debit: DebitState | None = None
    invoice_id: int | None = None
    note: str = ""
    unmatched: bool = False
    count: int = 1  # debits settled by the line (a batch booking settles many)


class SettlementBook:
    """The invoices and debits of one chunk of a bank file, locked, with balances in memory."""

    def __init__(self, *, user=None):
        self.user = user if user is not None and getattr(user, "pk", None) else None
        self.user_id = self.user.pk if self.user is not None else None
        self.invoices: dict[int, InvoiceState] = {}
        self.owed: dict[int, Decimal] = {}
        self.by_end_to_end: dict[str, DebitState] = {}
        self.batches: dict[str, DebitBatch] = {}
        self.batch_debits: dict[int, list[DebitState]] = defaultdict(list)
        self._found: dict[str, tuple[int, int]] = {}  # end-to-end id -> (debit, invoice)
        self._found_in_batches: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self._recorded: set[tuple[int, str]] = set()
        # What a collected debit brought in, when staff confirmed another amount than
        # the debit's: a return takes back what came in, not what was asked.
        self._collected_amounts: dict[int, Decimal] = {}
        self._payments: list[dict] = []
        self._collected: dict[date, list[int]] = defaultdict(list)
        self._changed: dict[int, DebitState] = {}
        self._mandates_collected: set[int] = set()
        self._paid_by_transfer: set[int] = set()
        self.touched_batches: set[int] = set()
        self.failures: list[Failure] = []

    # --- loading ------------------------------------------------------------------

    def find_debits(self, *, end_to_end_ids: Iterable[str], batch_ids: Iterable[str]) -> None:
        """The debits the lines name (unlocked: only to tell collections from transfers)."""
        for ids in batched(set(end_to_end_ids)):
            rows = DirectDebit.objects.filter(among("end_to_end_id", ids)).values_list(
                "end_to_end_id", "pk", "invoice_id"
            )
            self._found.update({e2e: (pk, invoice_id) for e2e, pk, invoice_id in rows})
        batch_ids = set(batch_ids)
        if batch_ids:
            for ids in batched(batch_ids):
                for batch in DebitBatch.objects.filter(among("message_id", ids)):
                    self.batches[batch.message_id] = batch
            for ids in batched([b.pk for b in self.batches.values()]):
                rows = DirectDebit.objects.filter(among("batch_id", ids)).values_list(
                    "batch_id", "pk", "invoice_id"
                )
                for batch_id, pk, invoice_id in rows:
                    self._found_in_batches[batch_id].append((pk, invoice_id))

    def names_debit(self, end_to_end_id: str | None) -> bool:
        return bool(end_to_end_id) and end_to_end_id in self._found

    def invoice_ids_of(self, end_to_end_ids: Iterable[str]) -> set[int]:
        """The invoices of the named debits (those found)."""
        return {self._found[e2e][1] for e2e in end_to_end_ids if e2e in self._found}

    def lock(self, *, invoice_ids: Iterable[int] = ()) -> None:
        """Lock the invoices (theirs and ``invoice_ids``) in primary-key order, then read
        their balances and the debits: after the locks, so what a concurrent import
        committed is seen."""
        found = list(self._found.values()) + [
            pair for group in self._found_in_batches.values() for pair in group
        ]
        wanted = sorted({invoice_id for _pk, invoice_id in found} | set(invoice_ids))
        for ids in batched(wanted):
            list(
                Invoice.objects.select_for_update()
                .filter(among("pk", ids))
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            # A statement of its own: one that waited for a lock still reads other rows
            # (the payments) as they were when it began, before the holder committed.
            rows = with_balances(Invoice.objects.filter(among("pk", ids))).values_list(
                *InvoiceState.FIELDS, "gross_total", "credited_total", "paid_total"
            )
            for *fields, gross, credited, paid in rows:
                state = InvoiceState(*fields)
                self.invoices[state.pk] = state
                self.owed[state.pk] = gross - credited - paid
        # The debits are read, not locked, once their invoices are: every change to a
        # debit at the bank is made under its invoice's lock (settling here; batching
        # locks invoices first too), except batched -> submitted, which we treat alike.
        # Locking 100 000 debit rows as well would cost a second for nothing.
        fresh: dict[int, DebitState] = {}
        for ids in batched(sorted({pk for pk, _invoice_id in found})):
            rows = DirectDebit.objects.filter(among("pk", ids)).values_list(*DebitState.FIELDS)
            for fields in rows:
                fresh[fields[0]] = DebitState(*fields)
        self.by_end_to_end = {
            e2e: fresh[pk] for e2e, (pk, _invoice_id) in self._found.items() if pk in fresh
        }
        for batch_id, group in self._found_in_batches.items():
            self.batch_debits[batch_id] = [fresh[pk] for pk, _i in group if pk in fresh]
        # A debit still at the bank has no ledger rows yet (a return records both at once).
        settled = [pk for pk, debit in fresh.items() if debit.status not in AT_BANK]
        for ids in batched(settled):
            rows = Payment.objects.filter(among("debit_id", ids)).values_list(
                "debit_id", "kind", "amount"
            )
            for debit_id, kind, amount in rows:
                self._recorded.add((debit_id, kind))
                if kind == Payment.Kind.DIRECT_DEBIT:
                    self._collected_amounts[debit_id] = amount

    # --- money --------------------------------------------------------------------

    def record(
        self,
        *,
        invoice_id: int,
        kind: str,
        amount: Decimal,
        booked_on: date,
        debit: DebitState | None = None,
        bank_transaction_id: int | None = None,
    ) -> bool:
        """Add a ledger row (written by ``flush``); False when this debit already has one of ``kind``."""
        if debit is not None:
            if (debit.pk, kind) in self._recorded:
                return False
            self._recorded.add((debit.pk, kind))
        amount = quantize(amount)
        self._payments.append(
            {
                "invoice_id": invoice_id,
                "organisation_id": self.invoices[invoice_id].organisation_id,
                "kind": kind,
                "amount": amount,
                "booked_on": booked_on,
                "debit_id": debit.pk if debit is not None else None,
                "bank_transaction_id": bank_transaction_id,
                "recorded_by_id": self.user_id,
                "created_at": clock.now(),
            }
        )
        self.owed[invoice_id] -= amount
        if kind == Payment.Kind.TRANSFER:
            self._paid_by_transfer.add(invoice_id)
        return True

    # --- debits -------------------------------------------------------------------

    def collect(
        self,
        debit: DebitState,
        *,
        amount: Decimal,
        on: date,
        bank_transaction_id: int,
        confirmed: bool = False,
    ) -> Outcome:
        """A credit booking for ``debit``: the invoice is paid by direct debit.

        Another amount than the debit's waits for staff; ``confirmed`` when staff
        matched the booking to the debit's invoice: what came in is booked.
        """
        if debit.status in (Status.COLLECTED, Status.RETURNED):
            return Outcome("already", debit, debit.invoice_id, _("Al eerder verwerkt."))
        if debit.status not in AT_BANK:
            return Outcome(
                "unmatched",
                debit,
                debit.invoice_id,
                _("Geld ontvangen voor een incasso met status %(status)s; controleer.")
                % {"status": debit.get_status_display()},
                unmatched=True,
            )
        if amount != debit.amount and not confirmed:
            return Outcome(
                "unmatched",
                debit,
                debit.invoice_id,
                _("Bedrag %(amount)s wijkt af van de incasso (%(expected)s); controleer.")
                % {"amount": amount, "expected": debit.amount},
                unmatched=True,
            )
        self._collect(debit, on=on, bank_transaction_id=bank_transaction_id, amount=amount)
        return Outcome("collected", debit, debit.invoice_id)

    def _collect(
        self,
        debit: DebitState,
        *,
        on: date,
        bank_transaction_id: int | None,
        amount: Decimal | None = None,
    ) -> None:
        amount = debit.amount if amount is None else quantize(amount)
        self.record(
            invoice_id=debit.invoice_id,
            kind=Payment.Kind.DIRECT_DEBIT,
            amount=amount,
            booked_on=on,
            debit=debit,
            bank_transaction_id=bank_transaction_id,
        )
        self._collected_amounts[debit.pk] = amount
        debit.status = Status.COLLECTED
        debit.collected_on = on
        self._collected[on].append(debit.pk)
        self._mandates_collected.add(debit.mandate_id)
        self._touch_batch(debit)

    def collect_batch(
        self, batch: DebitBatch, *, amount: Decimal, on: date, bank_transaction_id: int
    ) -> Outcome:
        """A batch booked as one amount without details: every debit of it that is at the bank."""
        debits = self.batch_debits.get(batch.pk, [])
        expected = sum(
            (d.amount for d in debits if d.status not in (Status.REJECTED, Status.CANCELLED)),
            ZERO,
        )
        if not debits or amount != expected:
            return Outcome(
                "unmatched",
                note=_(
                    "Bedrag %(amount)s klopt niet met batch %(batch)s (%(expected)s); controleer."
                )
                % {"amount": amount, "batch": batch.message_id, "expected": expected},
                unmatched=True,
            )
        pending = [d for d in debits if d.status in AT_BANK]
        for debit in pending:
            self._collect(debit, on=on, bank_transaction_id=bank_transaction_id)
        if not pending:
            return Outcome("already", note=_("Al eerder verwerkt."))
        return Outcome(
            "collected",
            note=ngettext(
                "Batch %(batch)s: %(count)s incasso geïnd.",
                "Batch %(batch)s: %(count)s incasso's geïnd.",
                len(pending),
            )
            % {"batch": batch.message_id, "count": len(pending)},
            count=len(pending),
        )

    def return_debit(
        self, debit: DebitState, *, reason: str, info: str, on: date, bank_transaction_id: int
    ) -> Outcome:
        """A debit booking that undoes a collection (R-transaction after settlement)."""
        if debit.status == Status.RETURNED:
            return Outcome("already", debit, debit.invoice_id, _("Al eerder verwerkt."))
        if debit.status not in (*AT_BANK, Status.COLLECTED):
            return Outcome(
                "unmatched",
                debit,
                debit.invoice_id,
                _("Storno op een incasso met status %(status)s; controleer.")
                % {"status": debit.get_status_display()},
                unmatched=True,
            )
        if debit.status in AT_BANK:
            # Its collection is not in our books yet (it may come in a later file):
            # record it now, so the reversal nets it out and the later line is a
            # no-op. The mandate does not count as used: the money came back.
            self.record(
                invoice_id=debit.invoice_id,
                kind=Payment.Kind.DIRECT_DEBIT,
                amount=debit.amount,
                booked_on=on,
                debit=debit,
            )
            debit.collected_on = on
        self.record(
            invoice_id=debit.invoice_id,
            kind=Payment.Kind.DEBIT_REVERSAL,
            amount=-self._collected_amounts.get(debit.pk, debit.amount),
            booked_on=on,
            debit=debit,
            bank_transaction_id=bank_transaction_id,
        )
        self._fail(debit, status=Status.RETURNED, reason=reason, info=info, on=on)
        return Outcome("returned", debit, debit.invoice_id)

    def reject(self, debit: DebitState, *, reason: str, info: str, on: date) -> Outcome:
        """pain.002 RJCT: the debit never reached the debtor's account; no money moved."""
        if debit.status in (Status.REJECTED, Status.RETURNED):
            return Outcome("already", debit, debit.invoice_id, _("Al eerder verwerkt."))
        if debit.status not in AT_BANK:
            return Outcome(
                "ignored",
                debit,
                debit.invoice_id,
                _("Weigering genegeerd: de incasso heeft status %(status)s.")
                % {"status": debit.get_status_display()},
            )
        self._fail(debit, status=Status.REJECTED, reason=reason, info=info, on=on)
        return Outcome("rejected", debit, debit.invoice_id)

    def reject_batch(self, batch: DebitBatch, *, reason: str, info: str, on: date) -> Outcome:
        """pain.002 that rejects the whole file: every debit of the batch still at the bank."""
        pending = [d for d in self.batch_debits.get(batch.pk, []) if d.status in AT_BANK]
        for debit in pending:
            self._fail(debit, status=Status.REJECTED, reason=reason, info=info, on=on)
        if not pending:
            return Outcome("already", note=_("Al eerder verwerkt."))
        return Outcome(
            "rejected",
            note=ngettext(
                "Batch %(batch)s geweigerd: %(count)s incasso.",
                "Batch %(batch)s geweigerd: %(count)s incasso's.",
                len(pending),
            )
            % {"batch": batch.message_id, "count": len(pending)},
            count=len(pending),
        )

    def _fail(self, debit: DebitState, *, status: str, reason: str, info: str, on: date) -> None:
        debit.status = status
        debit.return_reason = (reason or "").strip().upper()[:4]
        debit.return_info = (info or "")[:255]
        debit.returned_on = on
        self._changed[debit.pk] = debit
        self._touch_batch(debit)
        self.failures.append(
            Failure(debit=debit, reason=debit.return_reason, rejected=status == Status.REJECTED)
        )

    def _touch_batch(self, debit: DebitState) -> None:
        if debit.batch_id is not None:
            self.touched_batches.add(debit.batch_id)

    # --- writing --------------------------------------------------------------------

    def flush(self) -> None:
        """Write the payments, debit and invoice states and first collections of this chunk."""
        now = clock.now()
        insert_rows(Payment, self._payments)
        for day, ids in self._collected.items():
            for part in batched(ids):
                DirectDebit.objects.filter(among("pk", part)).update(
                    status=Status.COLLECTED, collected_on=day, updated_at=now
                )
        # Failed debits: one UPDATE per outcome (status, reason, dates), not one per debit.
        outcomes: dict[tuple, list[int]] = defaultdict(list)
        for debit in self._changed.values():
            outcome = (
                debit.status,
                debit.return_reason,
                debit.return_info,
                debit.returned_on,
                debit.collected_on,
            )
            outcomes[outcome].append(debit.pk)
        for (status, reason, info, returned_on, collected_on), ids in outcomes.items():
            for part in batched(ids):
                DirectDebit.objects.filter(among("pk", part)).update(
                    status=status,
                    return_reason=reason,
                    return_info=info,
                    returned_on=returned_on,
                    collected_on=collected_on,
                    updated_at=now,
                )
        self._refresh_invoices()
        scheduled_debits_follow_balance(
            owed={pk: self.owed[pk] for pk in self._paid_by_transfer}, user=self.user
        )
        _mandates_first_collected(self._mandates_collected, at=now)
        self._payments, self._collected, self._changed = [], defaultdict(list), {}
        self._mandates_collected, self._paid_by_transfer = set(), set()

    def _refresh_invoices(self) -> None:
        touched = {p["invoice_id"] for p in self._payments}
        target: dict[str, list[int]] = defaultdict(list)
        for pk in touched:
            invoice = self.invoices[pk]
            if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.CREDITED:
                continue
            status = Invoice.Status.PAID if self.owed[pk] <= ZERO else Invoice.Status.OPEN
            if status != invoice.status:
                invoice.status = status
                target[status].append(pk)
        for status, ids in target.items():
            for part in batched(ids):
                Invoice.objects.filter(among("pk", part)).update(status=status)

    def open_amount(self, invoice_id: int) -> Decimal:
        """What the invoice still asks to be paid; nothing on a credit note or credited invoice."""
        invoice = self.invoices[invoice_id]
        if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.CREDITED:
            return ZERO
        return max(self.owed[invoice_id], ZERO)

    def follow_up(self) -> dict[str, int]:
        """What the chunk's failed debits lead to (``failures_follow_up``); after ``flush``."""
        failures, self.failures = self.failures, []
        return failures_follow_up(failures, book=self)


# --- after a debit failed ------------------------------------------------------------


def failures_follow_up(failures: list[Failure], *, book: SettlementBook) -> dict[str, int]:
    """Per failed debit: re-present it, invalidate its mandate (and re-present on the
    customer's other active mandate, if there is one), or ask to pay by transfer.

    Returns how many were 'represented', 'pay_by_transfer' or 'settled' (nothing
    owed any more: a transfer earlier in the file paid). Runs inside the import's
    transaction after ``flush``, with the invoices still locked, so the book's
    balances are the ledger's; a few queries for all of a chunk's failures, since
    a statement can bring thousands of returns.
    """
    if not failures:
        return {}
    now = clock.now()
    paths = [return_path(failure.reason) for failure in failures]
    invalid: dict[int, str] = {}
    for failure, path in zip(failures, paths, strict=True):
        if path is ReturnPath.INVALIDATE:
            invalid.setdefault(failure.debit.mandate_id, failure.reason or "?")
    mandates_invalidate(codes=invalid, at=now)
    _cancel_scheduled(mandate_ids=invalid, reason=_("Machtiging ongeldig"), at=now)
    _mandates_first_collection_returned(
        {
            failure.debit.mandate_id
            for failure in failures
            if not failure.rejected and failure.debit.sequence_type == SequenceType.FRST
        },
        at=now,
    )
    open_amounts = [book.open_amount(failure.debit.invoice_id) for failure in failures]
    new_debits = _represent(
        [
            (failure, path, amount)
            for failure, path, amount in zip(failures, paths, open_amounts, strict=True)
            # An account or mandate error ends that mandate, but a customer who already
            # signed another one (a new IBAN) is collected from it, not asked to transfer.
            if path in (ReturnPath.RETRY, ReturnPath.RETRY_ONCE, ReturnPath.INVALIDATE)
            and amount > ZERO
        ],
        book=book,
        at=now,
    )
    counts: dict[str, int] = defaultdict(int)
    notices, audits = [], []
    for failure, path, amount in zip(failures, paths, open_amounts, strict=True):
        debit = failure.debit
        new_debit = new_debits.get(debit.pk)
        if new_debit is not None:
            outcome = "represented"
            notices.append(
                _notice(CollectionNotice.Kind.RETRY, debit_id=new_debit["id"], of=debit, at=now)
            )
        elif amount > ZERO:
            outcome = "pay_by_transfer"
            notices.append(
                _notice(CollectionNotice.Kind.PAY_BY_TRANSFER, debit_id=debit.pk, of=debit, at=now)
            )
        else:
            outcome = "settled"
        counts[outcome] += 1
        audits.append(
            audit_row(
                "debit.rejected" if failure.rejected else "debit.returned",
                DirectDebit,
                debit.pk,
                organisation_id=debit.organisation_id,
                user_id=book.user_id,
                reason=describe(failure.reason) or _("Geen reden opgegeven"),
                data={
                    "end_to_end_id": debit.end_to_end_id,
                    "invoice": book.invoices[debit.invoice_id].number,
                    "amount": str(debit.amount),
                    "code": failure.reason or None,
                    "path": path.value,
                    "outcome": outcome,
                    "new_debit": new_debit["end_to_end_id"] if new_debit else None,
                },
                at=now,
            )
        )
    # ``notice_queue`` for many: one per debit and kind (a repeat is ignored); sent
    # after commit by the sweep (``notices_send_after_commit``), not a task each.
    CollectionNotice.objects.bulk_create(notices, batch_size=500, ignore_conflicts=True)
    insert_rows(AuditEvent, audits)
    return dict(counts)


def notices_send_after_commit() -> None:
    """Send the queued collection e-mails once the import commits: one sweep (it goes on
    while more are due) instead of a task per e-mail for thousands of returns."""

    def enqueue() -> None:
        from ..notice_tasks import collection_notices_sweep

        collection_notices_sweep.delay()

    transaction.on_commit(enqueue)


def _notice(kind: str, *, debit_id: int, of: DebitState, at) -> CollectionNotice:
    """The e-mail about debit ``debit_id`` (the failed one, or its re-presentment) to the
    customer of the failed debit ``of``; due at once."""
    return CollectionNotice(
        organisation_id=of.organisation_id,
        invoice_id=of.invoice_id,
        debit_id=debit_id,
        kind=kind,
        next_attempt_at=at,
        created_at=at,
    )


FAILED = (Status.RETURNED, Status.REJECTED)


def represent_allowed(
    debit: DebitState,
    *,
    path: ReturnPath,
    history: list[tuple[int, str, str]],
    mandate_id: int | None,
) -> bool:
    """SEPA_MAX_REPRESENTMENTS re-attempts after the first failed presentment, and after
    an MS03 at most one; on the organisation's active mandate (``mandate_id``), none
    without one.

    ``history``: (attempt, status, return reason) of every debit of the invoice. The
    re-attempts are counted as the invoice's earlier debits that came back (returned
    or rejected), not by attempt number: a debit cancelled before it reached the bank
    (re-planned after an IBAN change) uses up nothing.
    """
    if mandate_id is None:
        return False
    failed_before = sum(
        1 for attempt, status, _r in history if attempt < debit.attempt and status in FAILED
    )
    if failed_before >= int(settings.SEPA_MAX_REPRESENTMENTS):
        return False
    if path is ReturnPath.RETRY_ONCE and any(
        # An earlier attempt that failed with MS03 was already followed by a re-presentment.
        attempt < debit.attempt and status in FAILED and reason == "MS03"
        for attempt, status, reason in history
    ):
        return False
    return not any(status in DirectDebit.LIVE_STATUSES for _attempt, status, _r in history)


# A new debit's columns before it is filled in: the model's defaults.
_DEBIT_DEFAULTS = {
    field.attname: field.get_default()
    for field in DirectDebit._meta.concrete_fields
    if not field.primary_key
}


def _represent(
    retries: list[tuple[Failure, ReturnPath, Decimal]], *, book: SettlementBook, at
) -> dict[int, dict]:
    """The next attempt (a new scheduled debit for the open amount, on the organisation's
    active mandate, ``SEPA_REPRESENT_AFTER_DAYS`` after the return) of each failure that
    may have one; by the failed debit's key. The invoices are locked, as ``debit_create``
    asks.

    The active mandate, not the failed debit's: a customer who signed a new IBAN
    after the debit went out is collected from the new account (FRST, as the batch
    decides for a new mandate) instead of being asked to pay by transfer."""
    if not retries:
        return {}
    history: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for ids in batched(sorted({failure.debit.invoice_id for failure, _p, _a in retries})):
        rows = DirectDebit.objects.filter(among("invoice_id", ids)).values_list(
            "invoice_id", "attempt", "status", "return_reason"
        )
        for invoice_id, *attempt in rows:
            history[invoice_id].append(tuple(attempt))
    active: dict[int, int] = {}  # organisation -> its active mandate
    for ids in batched(sorted({failure.debit.organisation_id for failure, _p, _a in retries})):
        active.update(
            Mandate.objects.filter(
                among("organisation_id", ids), status=Mandate.Status.ACTIVE
            ).values_list("organisation_id", "pk")
        )
    today = clock.today()
    after = timedelta(days=int(settings.SEPA_REPRESENT_AFTER_DAYS))
    new: dict[int, dict] = {}
    for failure, path, amount in retries:
        debit = failure.debit
        attempts = history[debit.invoice_id]
        mandate_id = active.get(debit.organisation_id)
        if not represent_allowed(debit, path=path, history=attempts, mandate_id=mandate_id):
            continue
        attempt = max((a for a, _s, _r in attempts), default=debit.attempt) + 1
        attempts.append((attempt, Status.SCHEDULED, ""))  # live now: one per invoice
        invoice = book.invoices[debit.invoice_id]
        due = (debit.returned_on or today) + after
        new[debit.pk] = {
            **_DEBIT_DEFAULTS,
            "invoice_id": invoice.pk,
            "organisation_id": invoice.organisation_id,
            "mandate_id": mandate_id,
            "attempt": attempt,
            "amount": amount,
            "collection_date": collection_date_for(due_date=due, today=today),
            "end_to_end_id": end_to_end_id_for(invoice, attempt),
            # The RETRY e-mail queued with it announces amount, date and mandate.
            "prenotified_at": at,
            "created_at": at,
            "updated_at": at,
        }
    for row_id, row in zip(reserve_ids(DirectDebit, len(new)), new.values(), strict=True):
        row["id"] = row_id
    insert_rows(DirectDebit, list(new.values()))
    return new


def _cancel_scheduled(
    *,
    mandate_ids: Iterable[int] = (),
    debit_ids: Iterable[int] = (),
    reason: str,
    at,
    actor_kind: str = ActorKind.SYSTEM,
    user_id: int | None = None,
) -> None:
    """Cancel the debits not yet in a batch (of these mandates, or these debits), one audit
    row each. One statement sets and tells which it set: a debit a batch took meanwhile
    is left alone and gets no audit row."""
    table = DirectDebit._meta.db_table
    audits = []
    for column, ids in (("mandate_id", sorted(set(mandate_ids))), ("id", sorted(set(debit_ids)))):
        for part in batched(ids):
            condition, params = sql_among(column, part)
            with connection.cursor() as cursor:
                cursor.execute(
                    f'UPDATE "{table}" SET "status" = %s, "updated_at" = %s '  # noqa: S608 - model table
                    f'WHERE "status" = %s AND "batch_id" IS NULL AND {condition} '
                    'RETURNING "id", "organisation_id", "end_to_end_id"',
                    [Status.CANCELLED, at, Status.SCHEDULED, *params],
                )
                cancelled = cursor.fetchall()
            audits += [
                audit_row(
                    "debit.cancelled",
                    DirectDebit,
                    pk,
                    organisation_id=organisation_id,
                    actor_kind=actor_kind,
                    user_id=user_id,
                    reason=reason,
                    data={"end_to_end_id": e2e},
                    at=at,
                )
                for pk, organisation_id, e2e in cancelled
            ]
    insert_rows(AuditEvent, audits)


def scheduled_debits_follow_balance(*, owed: dict[int, Decimal], user=None) -> None:
    """After money came in by transfer: a debit not yet in a batch must not collect too much.

    Paid in full: the scheduled debit is cancelled. Paid in part: it collects
    only what is still open (less than announced, never more). Only debits still
    scheduled are touched, so one a batch took meanwhile is left alone.
    """
    if not owed:
        return
    now = clock.now()
    user_id = user.pk if user is not None and getattr(user, "pk", None) else None
    actor_kind = ActorKind.STAFF if user is not None else ActorKind.SYSTEM
    scheduled = []
    for ids in batched(owed):
        scheduled += DirectDebit.objects.filter(
            among("invoice_id", ids), status=Status.SCHEDULED, batch__isnull=True
        ).values_list("pk", "invoice_id", "organisation_id", "amount", "end_to_end_id")
    reason = _("Betaling per overboeking ontvangen")
    _cancel_scheduled(
        debit_ids=[pk for pk, invoice_id, *_rest in scheduled if owed[invoice_id] <= ZERO],
        reason=reason,
        at=now,
        actor_kind=actor_kind,
        user_id=user_id,
    )
    lowered = []
    for pk, invoice_id, organisation_id, amount, e2e in scheduled:
        open_amount = owed[invoice_id]
        if not ZERO < open_amount < amount:
            continue
        changed = DirectDebit.objects.filter(
            pk=pk, status=Status.SCHEDULED, batch__isnull=True
        ).update(amount=open_amount, updated_at=now)
        if changed:
            lowered.append(
                audit_row(
                    "debit.amount_lowered",
                    DirectDebit,
                    pk,
                    organisation_id=organisation_id,
                    actor_kind=actor_kind,
                    user_id=user_id,
                    reason=reason,
                    data={"end_to_end_id": e2e, "from": str(amount), "to": str(open_amount)},
                    at=now,
                )
            )
    insert_rows(AuditEvent, lowered)


def _mandates_first_collected(mandate_ids: set[int], *, at) -> None:
    """FRST → RCUR for every mandate whose first debit was collected (bulk
    ``mandate_record_collection``: one audit row per mandate, repeats harmless)."""
    table = Mandate._meta.db_table
    for ids in batched(sorted(mandate_ids)):
        condition, params = sql_among("id", ids)
        # One statement that sets and tells which it set: a repeat or a concurrent
        # import finds first_collected_at filled and writes no second audit row.
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" SET "first_collected_at" = %s '  # noqa: S608 - model table
                f'WHERE "first_collected_at" IS NULL AND {condition} '
                'RETURNING "id", "organisation_id", "reference"',
                [at, *params],
            )
            first = cursor.fetchall()
        insert_rows(
            AuditEvent,
            [
                audit_row(
                    "mandate.first_collected",
                    Mandate,
                    pk,
                    organisation_id=organisation_id,
                    data={"reference": reference},
                    at=at,
                )
                for pk, organisation_id, reference in first
            ],
        )


def _mandates_first_collection_returned(mandate_ids: set[int], *, at) -> None:
    """FRST again for a mandate whose first collection came back with nothing else collected
    on it: the mandate counts as unused, as when the return arrived before the collection
    (then it was never marked). One audit row per mandate, repeats harmless."""
    if not mandate_ids:
        return
    audits = []
    for ids in batched(sorted(mandate_ids)):
        marked = list(
            Mandate.objects.filter(among("pk", ids), first_collected_at__isnull=False)
            .order_by("pk")
            .values_list("pk", "organisation_id", "reference")
        )
        if not marked:
            continue
        # Two queries, not NOT EXISTS: the planner's statistics predate this import's own
        # writes, so it may guess one collected debit and scan all of them once per
        # mandate (seconds for a 100 000-line statement); here it scans them once at most.
        collected = set(
            DirectDebit.objects.filter(
                among("mandate_id", [pk for pk, *_rest in marked]), status=Status.COLLECTED
            ).values_list("mandate_id", flat=True)
        )
        unused = [row for row in marked if row[0] not in collected]
        if not unused:
            continue
        Mandate.objects.filter(among("pk", [pk for pk, *_rest in unused])).update(
            first_collected_at=None
        )
        audits += [
            audit_row(
                "mandate.first_collection_returned",
                Mandate,
                pk,
                organisation_id=organisation_id,
                reason=_("Eerste incasso gestorneerd: de volgende is weer een eerste (FRST)"),
                data={"reference": reference},
                at=at,
            )
            for pk, organisation_id, reference in unused
        ]
    insert_rows(AuditEvent, audits)


def batches_refresh(*, batch_ids: Iterable[int]) -> int:
    """A batch is 'collected' when all its debits are final and none came back,
    'returned' when some did; until then it stays as it is. Returns how many changed."""
    ids = sorted(set(batch_ids))
    if not ids:
        return 0
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for part in batched(ids):
        rows = (
            DirectDebit.objects.filter(among("batch_id", part))
            .values("batch_id", "status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            counts[row["batch_id"]][row["status"]] = row["n"]
    changed = 0
    now = clock.now()
    for part in batched(ids):
        batches = DebitBatch.objects.select_for_update().filter(
            among("pk", part),
            status__in=[
                DebitBatch.Status.SUBMITTED,
                DebitBatch.Status.COLLECTED,
                DebitBatch.Status.RETURNED,
            ],
        )
        for batch in batches.order_by("pk"):
            statuses = counts.get(batch.pk, {})
            if not statuses or any(s not in FINAL for s in statuses):
                continue
            failed = statuses.get(Status.RETURNED, 0) + statuses.get(Status.REJECTED, 0)
            status = DebitBatch.Status.RETURNED if failed else DebitBatch.Status.COLLECTED
            if status == batch.status:
                continue
            batch.status = status
            batch.settled_at = batch.settled_at or now
            batch.save(update_fields=["status", "settled_at"])
            audit_record(
                action=f"debit_batch.{status}",
                target=batch,
                data={"message_id": batch.message_id, "statuses": statuses},
            )
            changed += 1
    return changed
