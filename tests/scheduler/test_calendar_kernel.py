"""The calendar kernel (R33): once per date, in date order, catching up, isolated failures."""

from datetime import date, timedelta

import pytest

from afas_sb import clock
from afas_sb.errors import DomainError
from afas_sb.scheduler import registry, services
from afas_sb.scheduler.models import CalendarDay, CalendarRun
from afas_sb.scheduler.services import Result
from licensing.models import Organisation
from tests.factories import OrganisationFactory

from .conftest import amsterdam, results_for

pytestmark = pytest.mark.django_db

D = date(2026, 3, 10)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def completed_days() -> list[date]:
    return list(
        CalendarDay.objects.filter(completed_at__isnull=False)
        .order_by("date")
        .values_list("date", flat=True)
    )


# --- once --------------------------------------------------------------------


def test_r33_calendar_run_range_runs_a_date_once_when_called_twice(register_action):
    action = register_action("test.counter")

    first = services.calendar_run_range(start=D, end=D)
    second = services.calendar_run_range(start=D, end=D)

    assert results_for(first, action.name) == [(D, Result.SUCCEEDED)]
    assert results_for(second, action.name) == [(D, Result.ALREADY_DONE)]
    assert action.calls == [D]
    run = CalendarRun.objects.get(action=action.name, date=D)
    assert run.status == CalendarRun.Status.SUCCEEDED
    assert run.attempts == 1
    assert run.outcome == "gedaan voor 2026-03-10"
    assert CalendarRun.objects.filter(action=action.name).count() == 1
    assert completed_days() == [D]


def test_r33_calendar_tick_twice_on_the_same_day_runs_the_action_once(register_action):
    action = register_action("test.counter")

    services.calendar_tick(today=D)
    again = services.calendar_tick(today=D)

    assert results_for(again, action.name) == [(D, Result.ALREADY_DONE)]
    assert action.calls == [D]


def test_r33_calendar_run_range_rolls_back_the_work_of_a_failed_run(register_action):
    """A failed run leaves nothing half done, so the retry starts from clean data."""

    def create_then_fail(day):
        OrganisationFactory(legal_name="Half werk B.V.")
        raise RuntimeError("afgebroken na het aanmaken")

    action = register_action("test.half_work", create_then_fail)

    results = services.calendar_run_range(start=D, end=D)

    assert results_for(results, action.name) == [(D, Result.FAILED)]
    assert not Organisation.objects.filter(legal_name="Half werk B.V.").exists()
    run = CalendarRun.objects.get(action=action.name, date=D)
    assert run.status == CalendarRun.Status.FAILED


def test_calendar_run_range_rejects_an_end_before_the_start():
    with pytest.raises(DomainError, match="ligt voor de begindatum"):
        services.calendar_run_range(start=D, end=D - timedelta(days=1))
    assert not CalendarDay.objects.exists()
    assert not CalendarRun.objects.exists()


# --- catching up, in order ---------------------------------------------------------


def test_r33_calendar_tick_catches_up_missed_days_in_order(register_action, time_machine):
    action = register_action("test.catch_up")
    time_machine.move_to(amsterdam(D), tick=False)
    services.calendar_tick()
    assert completed_days() == [D]

    time_machine.move_to(amsterdam(D + timedelta(days=5)), tick=False)
    results = services.calendar_tick()

    missed = days(D + timedelta(days=1), D + timedelta(days=5))
    assert results_for(results, action.name) == [(day, Result.SUCCEEDED) for day in missed]
    assert action.calls == [D, *missed]
    assert [item.day for item in results] == sorted(item.day for item in results)
    assert completed_days() == [D, *missed]


def test_calendar_tick_starts_today_when_the_calendar_never_ran(register_action, time_machine):
    action = register_action("test.first_run")
    time_machine.move_to(amsterdam(D), tick=False)

    results = services.calendar_tick()

    assert {item.day for item in results} == {D}
    assert action.calls == [D]
    assert list(CalendarDay.objects.values_list("date", flat=True)) == [D]


def test_calendar_tick_sees_the_new_business_day_just_after_midnight_in_amsterdam(
    register_action, time_machine
):
    """At 00:30 Amsterdam time UTC is still on yesterday; the calendar is not."""
    action = register_action("test.midnight")
    time_machine.move_to(amsterdam(D, hour=0, minute=30), tick=False)

    services.calendar_tick()

    assert action.calls == [D]


def test_r33_calendar_tick_catch_up_is_bounded_by_max_catch_up_days(
    register_action, time_machine, settings
):
    settings.CALENDAR_MAX_CATCH_UP_DAYS = 3
    action = register_action("test.bounded")
    time_machine.move_to(amsterdam(D), tick=False)
    services.calendar_tick()

    time_machine.move_to(amsterdam(D + timedelta(days=10)), tick=False)
    results = services.calendar_tick()

    # After a ten-day outage it goes back three days, not all ten and not none.
    caught_up = days(D + timedelta(days=7), D + timedelta(days=10))
    assert results_for(results, action.name) == [(day, Result.SUCCEEDED) for day in caught_up]
    assert action.calls == [D, *caught_up]


def test_r33_calendar_tick_catches_up_a_gap_as_long_as_the_bound_completely(
    register_action, time_machine, settings
):
    settings.CALENDAR_MAX_CATCH_UP_DAYS = 3
    action = register_action("test.bounded")
    time_machine.move_to(amsterdam(D), tick=False)
    services.calendar_tick()

    time_machine.move_to(amsterdam(D + timedelta(days=4)), tick=False)
    services.calendar_tick()

    assert action.calls == days(D, D + timedelta(days=4))


def test_r33_calendar_tick_gives_up_an_open_day_older_than_the_bound(
    register_action, time_machine, settings
):
    settings.CALENDAR_MAX_CATCH_UP_DAYS = 3
    broken = {"on": True}

    def fail_while_broken(day):
        if broken["on"]:
            raise RuntimeError("AFAS niet bereikbaar")

    action = register_action("test.old_failure", fail_while_broken)
    time_machine.move_to(amsterdam(D), tick=False)
    services.calendar_tick()
    assert completed_days() == []

    broken["on"] = False
    time_machine.move_to(amsterdam(D + timedelta(days=10)), tick=False)
    services.calendar_tick()

    assert action.calls == [D, *days(D + timedelta(days=7), D + timedelta(days=10))]
    assert CalendarRun.objects.get(action=action.name, date=D).status == "failed"


# --- failures: retried, isolated, in order -----------------------------------------------


def test_r33_calendar_tick_retries_a_failed_action_and_does_not_block_the_others(
    register_action,
):
    left_to_fail = [1]

    def fail_once(day):
        if left_to_fail[0]:
            left_to_fail[0] -= 1
            raise RuntimeError("AFAS niet bereikbaar")
        return "ok"

    flaky = register_action("test.a_flaky", fail_once, order=10)
    steady = register_action("test.b_steady", order=20)
    CalendarDay.objects.create(date=D, completed_at=clock.now())
    d1, d2, d3 = days(D + timedelta(days=1), D + timedelta(days=3))

    first = services.calendar_tick(today=d3)

    assert results_for(first, flaky.name) == [
        (d1, Result.FAILED),
        (d2, Result.BLOCKED),
        (d3, Result.BLOCKED),
    ]
    assert results_for(first, steady.name) == [(day, Result.SUCCEEDED) for day in (d1, d2, d3)]
    failed = CalendarRun.objects.get(action=flaky.name, date=d1)
    assert failed.status == CalendarRun.Status.FAILED
    assert failed.attempts == 1
    assert "RuntimeError: AFAS niet bereikbaar" in failed.error
    assert failed.finished_at is not None
    failure = next(item for item in first if item.action == flaky.name)
    assert failure.outcome == "RuntimeError: AFAS niet bereikbaar"
    # Blocked dates were not tried, so they have no run yet.
    assert not CalendarRun.objects.filter(action=flaky.name, date__gt=d1).exists()
    assert completed_days() == [D]

    second = services.calendar_tick(today=d3)

    assert results_for(second, flaky.name) == [(day, Result.SUCCEEDED) for day in (d1, d2, d3)]
    assert results_for(second, steady.name) == [(day, Result.ALREADY_DONE) for day in (d1, d2, d3)]
    assert flaky.calls == [d1, d1, d2, d3]
    assert steady.calls == [d1, d2, d3]
    retried = CalendarRun.objects.get(action=flaky.name, date=d1)
    assert retried.status == CalendarRun.Status.SUCCEEDED
    assert retried.attempts == 2
    assert retried.error == ""
    assert retried.outcome == "ok"
    assert completed_days() == [D, d1, d2, d3]


def test_r33_calendar_tick_stops_retrying_after_max_attempts_until_staff_retry(
    register_action, settings
):
    settings.CALENDAR_MAX_ATTEMPTS = 2
    broken = {"on": True}

    def fail_while_broken(day):
        if broken["on"]:
            raise RuntimeError("certificaat verlopen")
        return "ok"

    action = register_action("test.exhausting", fail_while_broken)

    for attempt in (1, 2):
        results = services.calendar_tick(today=D)
        assert results_for(results, action.name) == [(D, Result.FAILED)]
        assert CalendarRun.objects.get(action=action.name, date=D).attempts == attempt

    broken["on"] = False
    exhausted = services.calendar_tick(today=D)
    assert results_for(exhausted, action.name) == [(D, Result.EXHAUSTED)]
    outcome = next(item.outcome for item in exhausted if item.action == action.name)
    assert outcome == "RuntimeError: certificaat verlopen"
    assert action.calls == [D, D]  # not run a third time
    assert completed_days() == []

    run = CalendarRun.objects.get(action=action.name, date=D)
    assert services.calendar_run_retry(runs=[run]) == 1
    run.refresh_from_db()
    assert run.status == CalendarRun.Status.PENDING
    assert run.attempts == 0

    retried = services.calendar_tick(today=D)

    assert results_for(retried, action.name) == [(D, Result.SUCCEEDED)]
    assert action.calls == [D, D, D]
    run.refresh_from_db()
    assert run.status == CalendarRun.Status.SUCCEEDED
    assert run.attempts == 1
    assert completed_days() == [D]


def test_r33_calendar_run_range_rechecks_attempts_under_the_row_lock(
    register_action, settings, monkeypatch
):
    """Another process records the last allowed failure between our read and our lock."""
    settings.CALENDAR_MAX_ATTEMPTS = 2
    action = register_action("test.stale_read")
    real_get_or_create = CalendarRun.objects.get_or_create

    def get_or_create_then_other_process_fails(**kwargs):
        run, created = real_get_or_create(**kwargs)  # our read: pending, 0 attempts
        CalendarRun.objects.filter(pk=run.pk).update(
            status=CalendarRun.Status.FAILED, attempts=2, error="RuntimeError: elders mislukt"
        )
        return run, created

    monkeypatch.setattr(
        CalendarRun.objects, "get_or_create", get_or_create_then_other_process_fails
    )

    results = services.calendar_run_range(start=D, end=D)

    assert results_for(results, action.name) == [(D, Result.EXHAUSTED)]
    assert action.calls == []
    assert CalendarRun.objects.get(action=action.name, date=D).attempts == 2


def test_calendar_run_retry_leaves_succeeded_runs_alone(register_action):
    action = register_action("test.done")
    services.calendar_run_range(start=D, end=D)
    run = CalendarRun.objects.get(action=action.name, date=D)

    assert services.calendar_run_retry(runs=[run]) == 0

    run.refresh_from_db()
    assert run.status == CalendarRun.Status.SUCCEEDED
    assert run.attempts == 1


# --- is_due ---------------------------------------------------------------------------


def test_calendar_run_range_runs_a_first_of_month_action_only_on_the_first(register_action):
    monthly = register_action("test.monthly", is_due=lambda day: day.day == 1)
    daily = register_action("test.daily")

    results = services.calendar_run_range(start=date(2028, 1, 30), end=date(2028, 3, 1))

    assert monthly.calls == [date(2028, 2, 1), date(2028, 3, 1)]
    assert results_for(results, monthly.name) == [
        (date(2028, 2, 1), Result.SUCCEEDED),
        (date(2028, 3, 1), Result.SUCCEEDED),
    ]
    assert len(daily.calls) == 32  # 30-31 January, 29 days of February 2028, 1 March
    assert daily.calls[-3:] == [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]
    assert set(CalendarRun.objects.filter(action=monthly.name).values_list("date", flat=True)) == {
        date(2028, 2, 1),
        date(2028, 3, 1),
    }
    # A day on which the action is not due is complete without it.
    assert completed_days() == days(date(2028, 1, 30), date(2028, 3, 1))


def test_calendar_run_range_over_a_leap_day_runs_the_monthly_action_once(register_action):
    monthly = register_action("test.monthly", is_due=lambda day: day.day == 1)

    results = services.calendar_run_range(start=date(2028, 2, 28), end=date(2028, 3, 1))

    assert monthly.calls == [date(2028, 3, 1)]
    assert {item.day for item in results} <= {
        date(2028, 2, 28),
        date(2028, 2, 29),
        date(2028, 3, 1),
    }
    assert completed_days() == [date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)]


# --- the registry ----------------------------------------------------------------------


def test_registry_actions_run_in_order_then_name(register_action):
    register_action("test.z_early", order=1)
    register_action("test.a_late", order=2)
    register_action("test.b_late", order=2)

    names = [action.name for action in registry.actions()]

    assert names.index("test.z_early") < names.index("test.a_late") < names.index("test.b_late")


def test_registry_register_refuses_a_second_action_with_the_same_name(register_action):
    register_action("test.twice")

    with pytest.raises(ValueError, match="registered twice"):
        registry.register("test.twice")(lambda day: None)


def test_registry_holds_the_apps_real_actions():
    names = {action.name for action in registry.actions()}

    assert {"kernel.clear_expired_sessions", "portal.purge_stale_invitations"} <= names
