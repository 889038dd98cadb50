"""R7/R9 on PostgreSQL: runs and chunks at the same moment give the result of one run.

Threads stand in for Celery workers: each has its own database connection, so
only the database (row locks, SKIP LOCKED, the unique constraint, the number
series lock) stands between them. Threads are held at exact SQL statements
with ``connection.execute_wrapper`` and released by events with timeouts;
nothing sleeps.
"""

import threading
from datetime import date

import pytest

from billing.models import BillingChunk, BillingRun, Invoice, NumberSeries
from billing.services import runs
from billing.services.runs import (
    billing_chunk_process,
    billing_run_start,
    billing_run_unfinished_chunk_ids,
)
from tests.concurrency import WAIT_SECONDS, Worker, hold_after, signal_before
from tests.factories import make_catalogue

from .builders import agreement_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JANUARY = date(2027, 1, 1)


def assert_one_invoice_each_and_gapless(agreements, run: BillingRun):
    invoices = Invoice.objects.filter(period_start=JANUARY)
    assert sorted(invoices.values_list("agreement_id", flat=True)) == sorted(
        a.pk for a in agreements
    )
    assert sorted(invoices.values_list("number", flat=True)) == [
        f"2027-{n:06d}" for n in range(1, len(agreements) + 1)
    ]
    assert NumberSeries.objects.get(key="invoice-2027").last_number == len(agreements)
    run.refresh_from_db()
    assert run.status == "done"
    assert run.chunks_done == run.chunks_total
    assert run.invoices_created == len(agreements)
    assert run.agreements_total == len(agreements)


def test_r7_two_runs_started_at_once_give_the_result_of_one(monkeypatch):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 4)
    catalogue = make_catalogue()
    agreements = [agreement_for(catalogue) for _ in range(18)]
    barrier = threading.Barrier(2, timeout=WAIT_SECONDS)

    def whole_run():
        barrier.wait()
        run = billing_run_start(period_start=JANUARY, enqueue=False)
        return [
            billing_chunk_process(chunk_id=chunk_id).result
            for chunk_id in billing_run_unfinished_chunk_ids(run=run)
        ]

    first, second = Worker(whole_run).start(), Worker(whole_run).start()
    outcomes = first.join() + second.join()

    run = BillingRun.objects.get()
    # Five chunks, each invoiced by exactly one of the two; the other found it busy or done.
    assert run.chunks.count() == 5
    assert outcomes.count("done") == 5
    assert set(outcomes) <= {"done", "busy", "already_done"}
    assert_one_invoice_each_and_gapless(agreements, run)


def test_r9_chunks_racing_for_one_agreement_roll_back_retry_once_and_stay_gapless(caplog):
    """The constraint is the last guard: the loser's insert fails, it rolls back and retries."""
    catalogue = make_catalogue()
    agreements = [agreement_for(catalogue) for _ in range(3)]
    run = billing_run_start(period_start=JANUARY, enqueue=False)
    first_chunk = run.chunks.get()
    # As if a second chunk had been made for the middle agreement as well.
    overlapping = BillingChunk.objects.create(run=run, number=2, agreement_ids=[agreements[1].pk])
    BillingRun.objects.filter(pk=run.pk).update(chunks_total=2)

    first_numbered, second_waits = threading.Event(), threading.Event()
    first = Worker(
        lambda: billing_chunk_process(chunk_id=first_chunk.pk),
        # Held inside its transaction, numbers taken, about to write its invoices.
        hold_after('UPDATE "billing_numberseries"', first_numbered, second_waits),
    ).start()
    try:
        assert first_numbered.wait(WAIT_SECONDS), "the first chunk never took its numbers"
        # The second read the agreement as not invoiced (the first has not committed) and
        # now waits for the number series that the first holds.
        second = Worker(
            lambda: billing_chunk_process(chunk_id=overlapping.pk),
            signal_before(('"billing_numberseries"', "FOR UPDATE"), second_waits),
        ).start()
        assert second_waits.wait(WAIT_SECONDS), "the second chunk never reached the series"
    finally:
        second_waits.set()

    first_outcome, second_outcome = first.join(), second.join()

    assert (first_outcome.result, first_outcome.invoices) == ("done", 3)
    # Its insert hit the constraint; the retry saw the invoice and skipped the agreement.
    assert (second_outcome.result, second_outcome.invoices) == ("done", 0)
    assert f"billing chunk {overlapping.pk} hit a constraint, retrying once" in caplog.text
    overlapping.refresh_from_db()
    assert (overlapping.status, overlapping.attempts) == ("done", 1)
    assert_one_invoice_each_and_gapless(agreements, run)


def test_r7_a_chunk_held_by_one_worker_is_skipped_by_another():
    catalogue = make_catalogue()
    agreements = [agreement_for(catalogue) for _ in range(2)]
    run = billing_run_start(period_start=JANUARY, enqueue=False)
    chunk = run.chunks.get()

    holding, release = threading.Event(), threading.Event()
    first = Worker(
        lambda: billing_chunk_process(chunk_id=chunk.pk),
        hold_after('FROM "billing_billingchunk"', holding, release),
    ).start()
    try:
        assert holding.wait(WAIT_SECONDS), "the first worker never locked the chunk"
        second = Worker(lambda: billing_chunk_process(chunk_id=chunk.pk)).start()
        second_outcome = second.join()
    finally:
        release.set()
    first_outcome = first.join()

    assert second_outcome.result == "busy"
    assert first_outcome.result == "done"
    assert_one_invoice_each_and_gapless(agreements, run)
