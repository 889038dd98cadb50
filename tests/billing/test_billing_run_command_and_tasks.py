"""`manage.py billing_run --period YYYY-MM` and the chunk task (R7, R33)."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from billing import tasks
from billing.models import BillingChunk, BillingRun, Invoice
from billing.services import runs
from billing.services.runs import billing_run_start
from tests.factories import make_catalogue

from .builders import agreement_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return make_catalogue()


def command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("billing_run", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("period", ["2027-13", "2027-1", "januari", "2027-01-01", "", " "])
def test_billing_run_command_refuses_a_bad_period_in_one_line_and_stores_nothing(period):
    with pytest.raises(CommandError) as error:
        command("--period", period)

    assert "geef een maand als JJJJ-MM, bijvoorbeeld 2027-01" in str(error.value)
    assert "\n" not in str(error.value)
    assert BillingRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_billing_run_command_invoices_the_month_and_prints_the_counts():
    """Without a broker the chunk tasks run in-process as soon as the start commits."""
    catalogue = make_catalogue()
    agreement_for(catalogue)
    agreement_for(catalogue)

    out, _err = command("--period", "2027-01")

    assert Invoice.objects.filter(period_start=date(2027, 1, 1)).count() == 2
    assert "Facturatierun 2027-01: klaar" in out
    assert "2 overeenkomsten in 1 delen, 1 klaar, 0 mislukt, 2 facturen gemaakt." in out


def test_billing_run_command_in_process_and_repeated(catalogue):
    agreement_for(catalogue)

    command("--period", "2027-01", "--in-process")
    out, _err = command("--period", "2027-01", "--in-process")

    assert Invoice.objects.count() == 1
    assert "1 overeenkomsten in 1 delen, 1 klaar, 0 mislukt, 1 facturen gemaakt." in out


def test_billing_run_command_reports_a_failed_chunk(catalogue):
    from licensing.models import Price

    agreement_for(catalogue, base=1, view_only=1)
    Price.objects.filter(component=catalogue["view_only"]).delete()

    out, err = command("--period", "2027-01", "--in-process")

    assert "met fouten" in out
    assert "Deel 1 mislukte: Prijslijst 'Prijslijst' heeft geen prijs" in err


def test_billing_run_start_sends_one_task_per_chunk_on_commit(
    catalogue, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(runs, "CHUNK_SIZE", 1)
    for _ in range(3):
        agreement_for(catalogue)
    sent = []
    monkeypatch.setattr(tasks.billing_chunk_process, "delay", sent.append)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = billing_run_start(period_start=date(2027, 1, 1))
    assert sent == []  # nothing leaves before the start commits
    for callback in callbacks:
        callback()

    assert sorted(sent) == sorted(run.chunks.values_list("pk", flat=True))


class RetryCalled(Exception):
    pass


@pytest.fixture
def transient_chunk(catalogue, monkeypatch):
    """A chunk whose invoicing fails with a lost database connection; retry() is recorded."""
    agreement_for(catalogue)
    chunk = billing_run_start(period_start=date(2027, 1, 1), enqueue=False).chunks.get()

    def lost_connection(chunk_id):
        raise OperationalError("server closed the connection unexpectedly")

    retries = []

    def retry(**options):
        retries.append(options)
        return RetryCalled()

    monkeypatch.setattr(runs, "_invoice_chunk", lost_connection)
    monkeypatch.setattr(tasks.billing_chunk_process, "retry", retry)
    return chunk, retries


@pytest.mark.parametrize(("attempt", "countdown"), [(0, 30), (1, 60), (2, 120)])
def test_billing_chunk_task_retries_a_transient_database_error_with_back_off(
    transient_chunk, attempt, countdown
):
    chunk, retries = transient_chunk
    tasks.billing_chunk_process.push_request(retries=attempt, is_eager=False)
    try:
        with pytest.raises(RetryCalled):
            tasks.billing_chunk_process.run(chunk.pk)
    finally:
        tasks.billing_chunk_process.pop_request()

    assert retries == [{"countdown": countdown}]
    chunk.refresh_from_db()
    assert chunk.status == "failed"
    assert "OperationalError: server closed the connection" in chunk.error


def test_billing_chunk_task_gives_up_after_its_retries_and_leaves_the_chunk_failed(
    transient_chunk,
):
    chunk, retries = transient_chunk
    tasks.billing_chunk_process.push_request(retries=tasks.CHUNK_MAX_RETRIES, is_eager=False)
    try:
        result = tasks.billing_chunk_process.run(chunk.pk)
    finally:
        tasks.billing_chunk_process.pop_request()

    assert (result, retries) == ("failed", [])
    chunk.refresh_from_db()
    assert chunk.status == "failed"
    assert BillingRun.objects.get().chunks_failed == 1


def test_billing_chunk_task_run_in_process_records_the_failure_without_retrying(transient_chunk):
    chunk, retries = transient_chunk

    result = tasks.billing_chunk_process.apply(args=[chunk.pk])

    assert (result.get(), retries) == ("failed", [])


def test_billing_chunk_task_does_not_retry_a_configuration_error(catalogue, monkeypatch):
    from licensing.models import Price

    agreement_for(catalogue, base=1, view_only=1)
    Price.objects.filter(component=catalogue["view_only"]).delete()
    run = billing_run_start(period_start=date(2027, 1, 1), enqueue=False)
    chunk = run.chunks.get()

    result = tasks.billing_chunk_process.apply(args=[chunk.pk])

    chunk.refresh_from_db()
    assert result.get() == "failed"
    assert (chunk.status, chunk.attempts) == (BillingChunk.Status.FAILED, 1)
