"""The back office shows every run per date and action, and lets staff retry failures."""

from datetime import date

import pytest
from django.urls import reverse

from afas_sb.scheduler import services
from afas_sb.scheduler.models import CalendarRun

from .conftest import amsterdam

pytestmark = pytest.mark.django_db

D = date(2026, 3, 10)
CHANGELIST = "/admin/scheduler/calendarrun/"


@pytest.fixture
def broken_then_fixed(register_action, settings):
    """test.broken fails until ``state["broken"]`` is False; test.fine always succeeds."""
    settings.CALENDAR_MAX_ATTEMPTS = 1
    state = {"broken": True}

    def fail_while_broken(day):
        if state["broken"]:
            raise RuntimeError("AFAS niet bereikbaar")
        return "hersteld"

    broken = register_action("test.broken", fail_while_broken, order=10)
    register_action("test.fine", order=20)
    return broken, state


def test_calendar_run_admin_lists_runs_per_date_and_action_with_their_outcome(
    staff_client, broken_then_fixed
):
    services.calendar_run_range(start=D, end=D)

    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    shown = {(run.date, run.action, run.status) for run in response.context["cl"].result_list}
    assert (D, "test.broken", CalendarRun.Status.FAILED) in shown
    assert (D, "test.fine", CalendarRun.Status.SUCCEEDED) in shown
    content = response.content.decode()
    assert "test.broken" in content
    assert "mislukt" in content
    assert "geslaagd" in content
    assert "gedaan voor 2026-03-10" in content


def test_calendar_run_admin_filters_failed_runs(staff_client, broken_then_fixed):
    services.calendar_run_range(start=D, end=D)

    response = staff_client.get(CHANGELIST, {"status__exact": "failed"})

    assert response.status_code == 200
    assert [run.action for run in response.context["cl"].result_list] == ["test.broken"]


def test_calendar_run_admin_shows_the_error_of_a_run(staff_client, broken_then_fixed):
    services.calendar_run_range(start=D, end=D)
    run = CalendarRun.objects.get(action="test.broken", date=D)

    response = staff_client.get(f"{CHANGELIST}{run.pk}/change/")

    assert response.status_code == 200
    assert "RuntimeError: AFAS niet bereikbaar" in response.content.decode()


def test_calendar_run_admin_retry_resets_a_failed_run_and_runs_the_calendar(
    staff_client, broken_then_fixed, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(amsterdam(D), tick=False)
    broken, state = broken_then_fixed
    services.calendar_tick()
    services.calendar_tick()  # exhausted now: the calendar waits for staff
    run = CalendarRun.objects.get(action="test.broken", date=D)
    assert (run.status, run.attempts) == (CalendarRun.Status.FAILED, 1)
    assert broken.calls == [D]
    state["broken"] = False

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(
            CHANGELIST, {"action": "retry", "_selected_action": [run.pk]}, follow=True
        )

    assert response.status_code == 200
    assert "1 run staat klaar om opnieuw te draaien." in response.content.decode()
    run.refresh_from_db()
    assert (run.status, run.attempts) == (CalendarRun.Status.PENDING, 0)
    assert len(callbacks) == 1

    callbacks[0]()  # after commit: the calendar task (eager in tests) runs the day again

    run.refresh_from_db()
    assert (run.status, run.attempts, run.outcome) == (CalendarRun.Status.SUCCEEDED, 1, "hersteld")
    assert broken.calls == [D, D]


def test_calendar_day_admin_lists_days(staff_client, register_action):
    register_action("test.fine")
    services.calendar_run_range(start=D, end=D)

    response = staff_client.get("/admin/scheduler/calendarday/")

    assert response.status_code == 200
    assert [day.date for day in response.context["cl"].result_list] == [D]


def test_calendar_run_admin_sends_staff_without_a_passed_second_factor_to_reauthenticate(
    client, staff_user
):
    client.force_login(staff_user)  # a session without the MFA step

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response.url.startswith(reverse("mfa_reauthenticate"))
