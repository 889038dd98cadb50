"""The monthly billing run (R7, R8, R9, R11): every billable agreement invoiced exactly once.

Shape
-----
``billing_run_start`` makes (or finds) the one ``BillingRun`` of a period and
splits the agreements that still lack their invoice into chunks of at most
``CHUNK_SIZE``; one Celery task per unfinished chunk is sent when the start
commits. ``billing_chunk_process`` invoices one chunk in **one transaction**:

1. lock the chunk (``SELECT ... FOR UPDATE SKIP LOCKED``): a chunk another
   worker holds is skipped, a finished one is left alone;
2. load the chunk's agreements, lines, components, buyers and terminations in
   a constant number of queries, leaving out those invoiced meanwhile;
3. build every invoice, line and VAT row in memory;
4. take all numbers in one call, as late as possible (the series lock is held
   until commit), and write invoices, lines and VAT rows in three bulk writes
   (``COPY`` on PostgreSQL, ``bulk_create`` elsewhere);
5. mark the chunk done and add its counts to the run with F() expressions.

Guarantees (each proven in tests/billing/test_billing_run*.py)
---------------------------------------------------------------
* **Exactly once.** The database refuses a second subscription invoice for an
  (agreement, period); a start finds the existing run and only makes chunks
  for the gaps; a chunk skips agreements invoiced meanwhile. Should two chunks
  still race for one agreement, the loser's insert fails on the constraint,
  its transaction rolls back, and it is retried once, when it sees the
  winner's invoice and skips it. Two runs started at once give the result of
  one.
* **Gapless.** Numbers are taken inside the chunk's transaction, so a chunk
  that fails anywhere leaves no invoice and no number behind. It is marked
  failed, with the error, in a separate small transaction; retrying it (or
  starting the run again) fills the gap.
* **Catch-up.** The run is keyed by its period, not by the day it runs: a run
  that starts late still invoices the month as it was on its first day.

Lock order: chunk → number series → run. ``billing_run_start`` locks only the
run, and never while holding a series.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import date
from functools import partial

from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, Exists, F, Max, OuterRef, Value, When
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from afas_sb import clock
from afas_sb.audit.models import ActorKind
from afas_sb.audit.services import audit_record
from afas_sb.calendars import month_period
from afas_sb.errors import DomainError

from ..models import BillingChunk, BillingRun
from ..selectors import agreements_to_invoice, billable_agreements, subscription_invoices
from .issue import drafts_store, subscription_drafts

logger = logging.getLogger(__name__)

# At most this many agreements per chunk (one transaction, one task). Large enough
# that the fixed cost per chunk (about 15 queries) is small per invoice, small
# enough that a chunk commits in about a second and a failure redoes little.
CHUNK_SIZE = 500

# Errors after which the same chunk may well succeed a moment later.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class ChunkResult:
    DONE = "done"
    ALREADY_DONE = "already_done"
    BUSY = "busy"  # another worker holds the chunk right now
    FAILED = "failed"
    MISSING = "missing"


@dataclass(frozen=True)
class ChunkOutcome:
    chunk_id: int
    result: str
    invoices: int = 0
    error: str = ""
    retryable: bool = False


# --- Start --------------------------------------------------------------------------------


def billing_run_start(
    *,
    period_start: date,
    actor=None,
    actor_kind: str | None = None,
    enqueue: bool = True,
) -> BillingRun:
    """Start (or continue) the run of the month beginning on ``period_start``.

    Idempotent: the first call creates the run and its chunks; a later call
    (a retry, the command run by hand, a second process at the same moment)
    makes chunks only for billable agreements that have no invoice yet and are
    not in an unfinished chunk, and sends every unfinished chunk (pending or
    failed) to the workers again. With ``enqueue=False`` nothing is sent; the
    caller processes the chunks itself (the command's ``--in-process``, the
    benchmark).
    """
    if period_start.day != 1:
        raise DomainError(
            _("Een facturatierun begint op de eerste dag van een maand, niet op %(date)s.")
            % {"date": date_format(period_start, "j F Y")},
            code="not_a_month",
        )
    with transaction.atomic():
        run, _created = BillingRun.objects.get_or_create(period_start=period_start)
        # One start at a time per period: a second one waits here and then sees
        # the first one's chunks.
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        unfinished = list(
            run.chunks.exclude(status=BillingChunk.Status.DONE)
            .order_by("number")
            .values_list("pk", "agreement_ids")
        )
        covered = {pk for _pk, ids in unfinished for pk in ids}
        invoiced = subscription_invoices(period_start=period_start).filter(agreement=OuterRef("pk"))
        gaps = [
            pk
            for pk in billable_agreements(period_start=period_start)
            .exclude(Exists(invoiced))
            .order_by("pk")
            .values_list("pk", flat=True)
            if pk not in covered
        ]
        last_number = run.chunks.aggregate(last=Max("number"))["last"] or 0
        new_chunks = BillingChunk.objects.bulk_create(
            BillingChunk(
                run=run,
                number=last_number + index + 1,
                agreement_ids=gaps[offset : offset + CHUNK_SIZE],
            )
            for index, offset in enumerate(range(0, len(gaps), CHUNK_SIZE))
        )
        pending = [pk for pk, _ids in unfinished] + [chunk.pk for chunk in new_chunks]
        run.agreements_total += len(gaps)
        run.chunks_total += len(new_chunks)
        if pending:
            run.status = BillingRun.Status.RUNNING
            run.finished_at = None
        elif run.finished_at is None:
            run.status = BillingRun.Status.DONE
            run.finished_at = clock.now()
        run.save(update_fields=["agreements_total", "chunks_total", "status", "finished_at"])
        audit_record(
            action="billing.run_started",
            actor_kind=ActorKind.STAFF if actor is not None else actor_kind or ActorKind.SYSTEM,
            actor_user=actor,
            target=run,
            data={
                "period": f"{period_start:%Y-%m}",
                "new_agreements": len(gaps),
                "new_chunks": len(new_chunks),
                "queued_chunks": len(pending),
            },
        )
        if enqueue and pending:
            transaction.on_commit(partial(_enqueue, pending))
    return run


def _enqueue(chunk_ids: list[int]) -> None:
    from .. import tasks  # the tasks module imports this one

    for chunk_id in chunk_ids:
        tasks.billing_chunk_process.delay(chunk_id)


# --- One chunk ------------------------------------------------------------------------------


def billing_chunk_process(*, chunk_id: int) -> ChunkOutcome:
    """Invoice one chunk in one transaction; on failure record why and store nothing else.

    Never raises for a failing chunk: the outcome says what happened, and
    ``retryable`` whether a transient database error might pass on a retry
    (the Celery task retries those, bounded).
    """
    for attempt in (1, 2):
        try:
            return _invoice_chunk(chunk_id)
        except IntegrityError as exc:
            # Normally: a concurrent chunk invoiced one of our agreements between our
            # read and our insert. Everything rolled back; the retry reads again and
            # skips it. Any other constraint fails the retry the same way, and is recorded.
            if attempt == 1:
                logger.warning(
                    "billing chunk %s hit a constraint, retrying once: %s", chunk_id, exc
                )
                continue
            return _chunk_failed(chunk_id, exc)
        except TRANSIENT_ERRORS as exc:
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
            return _chunk_failed(chunk_id, exc, retryable=True)
        except DomainError as exc:
            # A configuration error (a missing price): the message says it all.
            logger.error("billing chunk %s failed: %s", chunk_id, exc.message)
            return _chunk_failed(chunk_id, exc)
        except Exception as exc:
            logger.exception("billing chunk %s failed", chunk_id)
            return _chunk_failed(chunk_id, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _invoice_chunk(chunk_id: int) -> ChunkOutcome:
    with transaction.atomic():
        chunk = (
            BillingChunk.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run")
            .filter(pk=chunk_id)
            .first()
        )
        if chunk is None:
            result = (
                ChunkResult.BUSY
                if BillingChunk.objects.filter(pk=chunk_id).exists()
                else ChunkResult.MISSING
            )
            return ChunkOutcome(chunk_id, result)
        if chunk.status == BillingChunk.Status.DONE:
            return ChunkOutcome(chunk_id, ChunkResult.ALREADY_DONE, chunk.invoices_created)
        run = chunk.run
        agreements = agreements_to_invoice(period_start=run.period_start, ids=chunk.agreement_ids)
        drafts = subscription_drafts(
            agreements,
            month=month_period(run.period_start),
            issue_date=run.period_start,
            billing_run_id=run.pk,
        )
        invoices = drafts_store(drafts)
        was_failed = chunk.status == BillingChunk.Status.FAILED
        BillingChunk.objects.filter(pk=chunk.pk).update(
            status=BillingChunk.Status.DONE,
            attempts=F("attempts") + 1,
            invoices_created=len(invoices),
            error="",
            finished_at=clock.now(),
        )
        BillingRun.objects.filter(pk=run.pk).update(
            chunks_done=F("chunks_done") + 1,
            chunks_failed=F("chunks_failed") - int(was_failed),
            invoices_created=F("invoices_created") + len(invoices),
        )
        _close_run_if_complete(run.pk)
        audit_record(
            action="billing.chunk_invoiced",
            actor_kind=ActorKind.SYSTEM,
            target=chunk,
            data={
                "period": f"{run.period_start:%Y-%m}",
                "chunk": chunk.number,
                "agreements": len(chunk.agreement_ids),
                "invoices": len(invoices),
                "first": invoices[0].number if invoices else "",
                "last": invoices[-1].number if invoices else "",
            },
        )
    return ChunkOutcome(chunk_id, ChunkResult.DONE, len(invoices))


def _chunk_failed(chunk_id: int, exc: BaseException, *, retryable: bool = False) -> ChunkOutcome:
    """Record the failure in a small transaction of its own: the chunk's own rolled back."""
    if isinstance(exc, DomainError):
        message = exc.message
    else:
        detail = "".join(traceback.format_exception(exc))[-3000:]
        message = f"{type(exc).__name__}: {exc}\n\n{detail}"
    try:
        with transaction.atomic():
            chunk = BillingChunk.objects.select_for_update().filter(pk=chunk_id).first()
            if chunk is None:
                return ChunkOutcome(chunk_id, ChunkResult.MISSING, error=message)
            if chunk.status == BillingChunk.Status.DONE:
                # Another worker finished it after ours failed: nothing to record.
                return ChunkOutcome(chunk_id, ChunkResult.ALREADY_DONE, chunk.invoices_created)
            was_failed = chunk.status == BillingChunk.Status.FAILED
            BillingChunk.objects.filter(pk=chunk.pk).update(
                status=BillingChunk.Status.FAILED,
                attempts=F("attempts") + 1,
                error=message,
                finished_at=clock.now(),
            )
            if not was_failed:
                BillingRun.objects.filter(pk=chunk.run_id).update(
                    chunks_failed=F("chunks_failed") + 1
                )
            _close_run_if_complete(chunk.run_id)
    except Exception:
        logger.exception("could not record the failure of billing chunk %s", chunk_id)
    return ChunkOutcome(chunk_id, ChunkResult.FAILED, error=message, retryable=retryable)


def _close_run_if_complete(run_id: int) -> None:
    """Once every chunk is done or failed, the run is finished: done, or with failures.

    Runs in the transaction that just changed the counters and holds the run's
    row lock, so it reads the counts of every chunk committed before.
    """
    BillingRun.objects.filter(
        pk=run_id, chunks_total__lte=F("chunks_done") + F("chunks_failed")
    ).update(
        status=Case(
            When(chunks_failed=0, then=Value(BillingRun.Status.DONE)),
            default=Value(BillingRun.Status.FAILED),
        ),
        finished_at=clock.now(),
    )


# --- Helpers for admin and the command -------------------------------------------------------


def billing_run_unfinished_chunk_ids(*, run: BillingRun) -> list[int]:
    return list(
        run.chunks.exclude(status=BillingChunk.Status.DONE)
        .order_by("number")
        .values_list("pk", flat=True)
    )
