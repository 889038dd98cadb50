"""R33 on PostgreSQL: two processes at once run each (action, date) exactly once.

Threads stand in for processes: each has its own database connection, so the
row lock (SELECT ... FOR UPDATE SKIP LOCKED) is the only thing between them.
Synchronisation is by events with a timeout, never by sleeping.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.db import connection

from afas_sb import clock
from afas_sb.scheduler import services
from afas_sb.scheduler.models import CalendarDay, CalendarRun
from afas_sb.scheduler.services import Result

from .conftest import WAIT_SECONDS, results_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

D = date(2026, 3, 10)


class Worker:
    """Runs ``target`` in a thread with its own connection; keeps its result or error."""

    def __init__(self, target: Callable[[], list]):
        self.target = target
        self.results: list | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.results = self.target()
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()

    def start(self) -> "Worker":
        self.thread.start()
        return self

    def join(self) -> list:
        self.thread.join(WAIT_SECONDS)
        assert not self.thread.is_alive(), "thread did not finish in time"
        if self.error is not None:
            raise self.error
        assert self.results is not None
        return self.results


def holding_on(hold_day: date, entered: threading.Event, release: threading.Event):
    """Behaviour: the first run for ``hold_day`` waits, holding the row lock, until released."""

    def behaviour(day: date) -> str:
        if day == hold_day and not entered.is_set():
            entered.set()
            if not release.wait(WAIT_SECONDS):
                raise TimeoutError("the test never released the action")
        return "ok"

    return behaviour


def test_r33_calendar_run_range_in_two_processes_at_once_runs_the_date_once(register_action):
    entered, release = threading.Event(), threading.Event()
    action = register_action("test.slow", holding_on(D, entered, release))

    first = Worker(lambda: services.calendar_run_range(start=D, end=D)).start()
    try:
        assert entered.wait(WAIT_SECONDS), "the first process never started the action"
        # The first process now holds the row lock inside the action.
        second = Worker(lambda: services.calendar_run_range(start=D, end=D)).start()
        second_results = second.join()
    finally:
        release.set()
    first_results = first.join()

    assert results_for(second_results, action.name) == [(D, Result.BUSY)]
    assert results_for(first_results, action.name) == [(D, Result.SUCCEEDED)]
    assert action.calls == [D]
    run = CalendarRun.objects.get(action=action.name, date=D)
    assert run.status == CalendarRun.Status.SUCCEEDED
    assert run.attempts == 1
    assert CalendarDay.objects.get(date=D).completed_at is not None


def test_r33_calendar_tick_in_two_processes_over_a_gap_runs_each_date_once(register_action):
    CalendarDay.objects.create(date=D, completed_at=clock.now())
    today = D + timedelta(days=5)
    missed = [D + timedelta(days=n) for n in range(1, 6)]
    hold_day = missed[2]
    entered, release = threading.Event(), threading.Event()
    slow = register_action("test.slow", holding_on(hold_day, entered, release), order=10)
    other = register_action("test.other", order=20)

    first = Worker(lambda: services.calendar_tick(today=today)).start()
    try:
        assert entered.wait(WAIT_SECONDS), "the first process never reached the held day"
        second = Worker(lambda: services.calendar_tick(today=today)).start()
        second_results = second.join()
    finally:
        release.set()
    first.join()

    # The second process starts at the held day (the first completed the days
    # before it), finds it locked and does not run this action out of order.
    assert results_for(second_results, slow.name) == [
        (hold_day, Result.BUSY),
        (missed[3], Result.BLOCKED),
        (missed[4], Result.BLOCKED),
    ]
    assert slow.calls == missed
    assert Counter(other.calls) == Counter(missed)
    for name in (slow.name, other.name):
        runs = CalendarRun.objects.filter(action=name).order_by("date")
        assert [(run.date, run.status, run.attempts) for run in runs] == [
            (day, CalendarRun.Status.SUCCEEDED, 1) for day in missed
        ]
    assert not CalendarDay.objects.filter(completed_at__isnull=True).exists()


@pytest.mark.parametrize("round_", range(3))
def test_r33_calendar_tick_in_two_free_running_processes_runs_each_date_once(
    register_action, round_
):
    """No choreography: both start together at a barrier and race over six days."""
    CalendarDay.objects.create(date=D, completed_at=clock.now())
    today = D + timedelta(days=6)
    missed = [D + timedelta(days=n) for n in range(1, 7)]
    actions = [register_action(f"test.race_{n}", order=n) for n in range(3)]
    start = threading.Barrier(2, timeout=WAIT_SECONDS)

    def tick():
        start.wait()
        return services.calendar_tick(today=today)

    workers = [Worker(tick).start(), Worker(tick).start()]
    for worker in workers:
        worker.join()

    for action in actions:
        # Exactly once per date in total, and never a later date before an earlier one.
        assert action.calls == missed
        assert CalendarRun.objects.filter(
            action=action.name, status=CalendarRun.Status.SUCCEEDED, attempts=1
        ).count() == len(missed)
