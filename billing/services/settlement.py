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
their balances in memory. Lines are decided one by one against that state, so a
collection and its return in the same file settle right in either order; the
result is written back in bulk by ``flush`` (a 100 000-line statement must
import in seconds). What a failed debit leads to — a re-presentment, an
invalid mandate, a request to pay by transfer — follows after the flush,
through the ordinary services, because it is rare and reads the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import connection
from django.db.models import Count, JSONField, Max
from django.utils.translation import gettext as _
from psycopg import sql
from psycopg.types.json import Jsonb

from afas_sb import clock
from afas_sb.audit.models import ActorKind, AuditEvent
from afas_sb.audit.services import audit_record
from afas_sb.money import quantize

from ..models import CollectionNotice, DebitBatch, DirectDebit, Invoice, Mandate, Payment
from ..sepa.reasons import ReturnPath, describe, return_path
from .debits import collection_date_for, debit_create
from .ledger import ZERO, invoice_balance, with_balances
from .mandates import mandate_invalidate
from .notices import notice_queue

Status = DirectDebit.Status

# Debits the bank has (or may have) received: a collection or a verdict can arrive for them.
AT_BANK = (Status.BATCHED, Status.SUBMITTED)
FINAL = (Status.COLLECTED, Status.RETURNED, Status.REJECTED, Status.CANCELLED)


def in_query_size() -> int:
    """Values per ``IN (...)``: SQLite allows 999 parameters; Django sends the list to
    PostgreSQL as one array (``= ANY(%s)``), so there it can be a whole chunk."""
    return 900 if connection.vendor == "sqlite" else 5000


def batched(values: Iterable, size: int | None = None) -> Iterator[list]:
    size = size or in_query_size()
    chunk: list = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reserve_ids(model, count: int) -> list[int]:
    """``count`` primary keys for rows about to be inserted, so other rows can refer to them.

    PostgreSQL hands them out from the table's sequence. SQLite has one writer at
    a time and the caller's transaction has already written, so the next ones
    after the highest key are ours.
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{table}"')  # noqa: S608 - model table
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


def insert_rows(model, rows: list[dict]) -> None:
    """Insert plain rows (column name -> value, all with the same columns).

    A 100 000-line statement writes as many transactions, payments and audit
    rows; building model instances and an INSERT for them costs more than the
    rest of the import, so PostgreSQL gets them by ``COPY``. Elsewhere (SQLite)
    ``bulk_create``.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    columns = list(rows[0])
    json_columns = {
        f.attname for f in model._meta.concrete_fields if isinstance(f, JSONField)
    } & set(columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            values = [row[column] for column in columns]
            if json_columns:
                values = [
                    Jsonb(value) if column in json_columns else value
                    for column, value in zip(columns, values, strict=True)
                ]
            copy.write_row(values)


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
            rows = DirectDebit.objects.filter(end_to_end_id__in=ids).values_list(
                "end_to_end_id", "pk", "invoice_id"
            )
            self._found.update({e2e: (pk, invoice_id) for e2e, pk, invoice_id in rows})
        batch_ids = set(batch_ids)
        if batch_ids:
            for ids in batched(batch_ids):
                for batch in DebitBatch.objects.filter(message_id__in=ids):
                    self.batches[batch.message_id] = batch
            for ids in batched([b.pk for b in self.batches.values()]):
                rows = DirectDebit.objects.filter(batch_id__in=ids).values_list(
                    "batch_id", "pk", "invoice_id"
                )
                for batch_id, pk, invoice_id in rows:
                    self._found_in_batches[batch_id].append((pk, invoice_id))

    def names_debit(self, end_to_end_id: str | None) -> bool:
        return bool(end_to_end_id) and end_to_end_id in self._found

    def lock(self, *, invoice_ids: Iterable[int] = ()) -> None:
        """Lock the invoices (theirs and ``invoice_ids``) in primary-key order, then read
        their balances and the debits: after the locks, so what a concurrent import
        committed is seen."""
        found = list(self._found.values()) + [
            pair for group in self._found_in_batches.values() for pair in group
        ]
        wanted = sorted({invoice_id for _pk, invoice_id in found} | set(invoice_ids))
        for ids in batched(wanted):
            locked = Invoice.objects.select_for_update(of=("self",)).filter(pk__in=ids)
            rows = (
                with_balances(locked)
                .order_by("pk")
                .values_list(*InvoiceState.FIELDS, "gross_total", "credited_total", "paid_total")
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
            rows = DirectDebit.objects.filter(pk__in=ids).values_list(*DebitState.FIELDS)
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
            self._recorded.update(
                Payment.objects.filter(debit_id__in=ids).values_list("debit_id", "kind")
            )

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
        self, debit: DebitState, *, amount: Decimal, on: date, bank_transaction_id: int
    ) -> Outcome:
        """A credit booking for ``debit``: the invoice is paid by direct debit."""
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
        if amount != debit.amount:
            return Outcome(
                "unmatched",
                debit,
                debit.invoice_id,
                _("Bedrag %(amount)s wijkt af van de incasso (%(expected)s); controleer.")
                % {"amount": amount, "expected": debit.amount},
                unmatched=True,
            )
        self._collect(debit, on=on, bank_transaction_id=bank_transaction_id)
        return Outcome("collected", debit, debit.invoice_id)

    def _collect(self, debit: DebitState, *, on: date, bank_transaction_id: int | None) -> None:
        self.record(
            invoice_id=debit.invoice_id,
            kind=Payment.Kind.DIRECT_DEBIT,
            amount=debit.amount,
            booked_on=on,
            debit=debit,
            bank_transaction_id=bank_transaction_id,
        )
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
            note=_("Batch %(batch)s: %(count)s incasso's geïnd.")
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
            amount=-debit.amount,
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
            note=_("Batch %(batch)s geweigerd: %(count)s incasso's.")
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
                DirectDebit.objects.filter(pk__in=part).update(
                    status=Status.COLLECTED, collected_on=day, updated_at=now
                )
        for debit in self._changed.values():
            DirectDebit.objects.filter(pk=debit.pk).update(
                status=debit.status,
                return_reason=debit.return_reason,
                return_info=debit.return_info,
                returned_on=debit.returned_on,
                collected_on=debit.collected_on,
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
                Invoice.objects.filter(pk__in=part).update(status=status)

    def follow_up(self) -> dict[str, int]:
        """What each failed debit leads to; run after ``flush`` (it reads the ledger)."""
        counts: dict[str, int] = defaultdict(int)
        for failure in self.failures:
            counts[failure_follow_up(failure=failure, user=self.user)] += 1
        self.failures = []
        return counts


# --- after a debit failed ------------------------------------------------------------


def failure_follow_up(*, failure: Failure, user=None) -> str:
    """Re-present, invalidate the mandate, or ask to pay by transfer; 'represented',
    'pay_by_transfer' or 'settled' (nothing owed any more). Inside the import's transaction."""
    debit = DirectDebit.objects.select_related("mandate", "invoice").get(pk=failure.debit.pk)
    invoice = debit.invoice
    reason = failure.reason
    path = return_path(reason)
    if path is ReturnPath.INVALIDATE:
        mandate_invalidate(mandate=debit.mandate, reason_code=reason or "?")
        _cancel_scheduled_on_mandate(debit.mandate_id)
    open_amount = _open_amount(invoice)
    new_debit = None
    if path in (ReturnPath.RETRY, ReturnPath.RETRY_ONCE) and open_amount > ZERO:
        new_debit = _represent(debit, path=path, amount=open_amount)
    if new_debit is not None:
        outcome = "represented"
        notice_queue(debit=new_debit, kind=CollectionNotice.Kind.RETRY)
    elif open_amount > ZERO:
        outcome = "pay_by_transfer"
        notice_queue(debit=debit, kind=CollectionNotice.Kind.PAY_BY_TRANSFER)
    else:
        outcome = "settled"
    audit_record(
        action="debit.rejected" if failure.rejected else "debit.returned",
        actor_kind=ActorKind.SYSTEM,
        actor_user=user,
        organisation_id=debit.organisation_id,
        target=debit,
        reason=describe(reason) or _("Geen reden opgegeven"),
        data={
            "end_to_end_id": debit.end_to_end_id,
            "invoice": invoice.number,
            "amount": str(debit.amount),
            "code": reason or None,
            "path": path.value,
            "outcome": outcome,
            "new_debit": new_debit.end_to_end_id if new_debit else None,
        },
    )
    return outcome


def _open_amount(invoice: Invoice) -> Decimal:
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.CREDITED:
        return ZERO
    return invoice_balance(invoice).open_amount


def represent_allowed(debit: DirectDebit, *, path: ReturnPath) -> bool:
    """SEPA_MAX_REPRESENTMENTS re-attempts in all (attempt 1 is the first presentment),
    and after an MS03 at most one; only on the same mandate while it is active."""
    if debit.attempt - 1 >= int(settings.SEPA_MAX_REPRESENTMENTS):
        return False
    mandate = Mandate.objects.get(pk=debit.mandate_id)
    if mandate.status != Mandate.Status.ACTIVE:
        return False
    if path is ReturnPath.RETRY_ONCE:
        # An earlier attempt that failed with MS03 was already followed by a re-presentment.
        earlier_ms03 = DirectDebit.objects.filter(
            invoice_id=debit.invoice_id, attempt__lt=debit.attempt, return_reason="MS03"
        )
        if earlier_ms03.exists():
            return False
    return not DirectDebit.objects.filter(
        invoice_id=debit.invoice_id, status__in=DirectDebit.LIVE_STATUSES
    ).exists()


def _represent(debit: DirectDebit, *, path: ReturnPath, amount: Decimal) -> DirectDebit | None:
    if not represent_allowed(debit, path=path):
        return None
    returned_on = debit.returned_on or clock.today()
    due = returned_on + timedelta(days=int(settings.SEPA_REPRESENT_AFTER_DAYS))
    last_attempt = DirectDebit.objects.filter(invoice_id=debit.invoice_id).aggregate(
        last=Max("attempt")
    )["last"]
    return debit_create(
        invoice=debit.invoice,
        mandate=debit.mandate,
        amount=amount,
        collection_date=collection_date_for(due_date=due, today=clock.today()),
        attempt=max(last_attempt or 0, debit.attempt) + 1,
        # The RETRY e-mail queued with it announces amount, date and mandate.
        prenotified_at=clock.now(),
    )


def _cancel_scheduled_on_mandate(mandate_id: int) -> int:
    """An invalid mandate is never used again: its debits not yet in a batch are cancelled."""
    ids = list(
        DirectDebit.objects.filter(
            mandate_id=mandate_id, status=Status.SCHEDULED, batch__isnull=True
        ).values_list("pk", "organisation_id", "end_to_end_id")
    )
    if not ids:
        return 0
    cancelled = DirectDebit.objects.filter(
        pk__in=[pk for pk, _org, _e2e in ids], status=Status.SCHEDULED, batch__isnull=True
    ).update(status=Status.CANCELLED, updated_at=clock.now())
    for pk, organisation_id, e2e in ids:
        AuditEvent.objects.create(
            action="debit.cancelled",
            actor_kind=ActorKind.SYSTEM,
            organisation_id=organisation_id,
            object_type=DirectDebit._meta.label_lower,
            object_id=str(pk),
            reason=_("Machtiging ongeldig"),
            data={"end_to_end_id": e2e},
        )
    return cancelled


def scheduled_debits_follow_balance(*, owed: dict[int, Decimal], user=None) -> None:
    """After money came in by transfer: a debit not yet in a batch must not collect too much.

    Paid in full: the scheduled debit is cancelled. Paid in part: it collects
    only what is still open (less than announced, never more). The update only
    touches debits still scheduled, so one a batch took meanwhile is left alone.
    """
    if not owed:
        return
    now = clock.now()
    for ids in batched(owed):
        scheduled = DirectDebit.objects.filter(
            invoice_id__in=ids, status=Status.SCHEDULED, batch__isnull=True
        ).values_list("pk", "invoice_id", "organisation_id", "amount", "end_to_end_id")
        for pk, invoice_id, organisation_id, amount, e2e in list(scheduled):
            open_amount = owed[invoice_id]
            still = DirectDebit.objects.filter(pk=pk, status=Status.SCHEDULED, batch__isnull=True)
            if open_amount <= ZERO:
                changed = still.update(status=Status.CANCELLED, updated_at=now)
                action, data = "debit.cancelled", {"end_to_end_id": e2e}
            elif open_amount < amount:
                changed = still.update(amount=open_amount, updated_at=now)
                action = "debit.amount_lowered"
                data = {"end_to_end_id": e2e, "from": str(amount), "to": str(open_amount)}
            else:
                continue
            if changed:
                audit_record(
                    action=action,
                    actor_user=user,
                    actor_kind=ActorKind.STAFF if user is not None else ActorKind.SYSTEM,
                    organisation_id=organisation_id,
                    target=DirectDebit(pk=pk),
                    reason=_("Betaling per overboeking ontvangen"),
                    data=data,
                )


def _mandates_first_collected(mandate_ids: set[int], *, at) -> None:
    """FRST → RCUR for every mandate whose first debit was collected (bulk
    ``mandate_record_collection``: one audit row per mandate, repeats harmless)."""
    table = Mandate._meta.db_table
    for ids in batched(sorted(mandate_ids)):
        # One statement that sets and tells which it set: a repeat or a concurrent
        # import finds first_collected_at filled and writes no second audit row.
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{table}" SET "first_collected_at" = %s '  # noqa: S608 - model table
                f'WHERE "first_collected_at" IS NULL AND "id" IN ({", ".join(["%s"] * len(ids))}) '
                'RETURNING "id", "organisation_id", "reference"',
                [at, *ids],
            )
            first = cursor.fetchall()
        if not first:
            continue
        insert_rows(
            AuditEvent,
            [
                {
                    "created_at": at,
                    "action": "mandate.first_collected",
                    "actor_kind": ActorKind.SYSTEM,
                    "actor_user_id": None,
                    "organisation_id": organisation_id,
                    "object_type": Mandate._meta.label_lower,
                    "object_id": str(pk),
                    "reason": "",
                    "data": {"reference": reference},
                }
                for pk, organisation_id, reference in first
            ],
        )


def batches_refresh(*, batch_ids: Iterable[int]) -> int:
    """A batch is 'collected' when all its debits are final and none came back,
    'returned' when some did; until then it stays as it is. Returns how many changed."""
    ids = sorted(set(batch_ids))
    if not ids:
        return 0
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for part in batched(ids):
        rows = (
            DirectDebit.objects.filter(batch_id__in=part)
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
            pk__in=part,
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
