"""The nightly task through the real Redis broker and a real (embedded) Celery worker."""

import threading
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from celery.result import _set_task_join_will_block, task_join_will_block
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection

from afas_sb import clock
from afas_sb.celery import app
from afas_sb.scheduler.models import CalendarDay, CalendarRun
from afas_sb.scheduler.tasks import calendar_tick

from .conftest import WAIT_SECONDS

pytestmark = [
    pytest.mark.skipif(
        not settings.REDIS_URL, reason="needs a Redis broker; set REDIS_URL to run it — CI does"
    ),
    pytest.mark.django_db(transaction=True),
]


def _close_worker_connection(**kwargs):
    """The worker thread's database connection must not outlive the test."""
    connection.close()


@pytest.fixture
def broker_app():
    """The project's Celery app sending to Redis instead of running tasks eagerly."""
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    app.conf.task_always_eager = False
    app.conf.broker_url = settings.REDIS_URL
    task_postrun.connect(_close_worker_connection, weak=False)
    # Starting a worker marks the whole process as one ("never call result.get() within
    # a task"): later tests in this xdist worker call .get() on eager results.
    will_block = task_join_will_block()
    try:
        yield app
    finally:
        task_postrun.disconnect(_close_worker_connection)
        app.conf.update(saved)
        _set_task_join_will_block(will_block)


def wait_for(condition, seconds: float = WAIT_SECONDS) -> bool:
    """Poll the database for the worker's effect, in short bounded steps."""
    pause = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        pause.wait(0.05)
    return condition()


def test_r33_calendar_tick_task_runs_the_calendar_through_the_redis_broker(
    broker_app, register_action
):
    action = register_action("test.via_redis")
    # A queue of our own: nothing else on the shared Redis reaches this worker.
    queue = f"test-calendar-{uuid.uuid4().hex[:8]}"

    today = clock.today()

    try:
        with start_worker(broker_app, perform_ping_check=False, queues=[queue]):
            calendar_tick.apply_async(queue=queue)
            finished = wait_for(
                lambda: CalendarDay.objects.filter(completed_at__isnull=False).exists()
            )
    finally:
        with broker_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)

    assert finished, "the worker did not complete a calendar day within the timeout"
    day = CalendarDay.objects.get()
    assert day.date in {today, clock.today()}  # the worker's today (midnight may pass)
    assert action.calls == [day.date]
    run = CalendarRun.objects.get(action=action.name)
    assert (run.date, run.status, run.attempts) == (day.date, CalendarRun.Status.SUCCEEDED, 1)
