"""``manage.py run_calendar``: run dates by hand, refuse what makes no sense."""

import os
import subprocess
import sys
from datetime import date, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from afas_sb.scheduler import registry
from afas_sb.scheduler.models import CalendarDay, CalendarRun

from .conftest import amsterdam

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 20)
D = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _today(time_machine):
    time_machine.move_to(amsterdam(TODAY), tick=False)


def run_calendar(*args: str) -> str:
    out = StringIO()
    call_command("run_calendar", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def lines_for(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if f"  {name} " in line]


def stored() -> tuple[int, int]:
    return CalendarRun.objects.count(), CalendarDay.objects.count()


def test_run_calendar_runs_a_single_date(register_action):
    action = register_action("test.command")

    output = run_calendar("--date", D.isoformat())

    assert action.calls == [D]
    assert lines_for(output, action.name) == [
        f"2026-03-10  {action.name:<40} geslaagd  (gedaan voor 2026-03-10)"
    ]
    assert CalendarDay.objects.get(date=D).completed_at is not None


def test_run_calendar_runs_a_range_and_prints_one_line_per_action_and_date(register_action):
    action = register_action("test.command")
    until = D + timedelta(days=2)

    output = run_calendar("--date", D.isoformat(), "--until", until.isoformat())

    assert action.calls == [D, D + timedelta(days=1), until]
    assert [line.split()[0] for line in lines_for(output, action.name)] == [
        "2026-03-10",
        "2026-03-11",
        "2026-03-12",
    ]
    due = sum(
        action.is_due(day)
        for day in (D, D + timedelta(days=1), until)
        for action in registry.actions()
    )
    assert len(output.splitlines()) == due


def test_r33_run_calendar_twice_for_a_date_reports_it_was_already_done(register_action):
    action = register_action("test.command")
    run_calendar("--date", D.isoformat())

    output = run_calendar("--date", D.isoformat())

    assert action.calls == [D]
    assert lines_for(output, action.name) == [
        f"2026-03-10  {action.name:<40} was al gedaan  (gedaan voor 2026-03-10)"
    ]


def test_run_calendar_without_arguments_catches_up_to_today(register_action):
    CalendarDay.objects.create(date=TODAY - timedelta(days=3), completed_at=amsterdam(D))
    action = register_action("test.command")

    run_calendar()

    assert action.calls == [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "--date '2026-13-01' is geen datum; gebruik JJJJ-MM-DD."),
        (
            ["--date", "2026-03-01", "--until", "1-3-2026"],
            "--until '1-3-2026' is geen datum; gebruik JJJJ-MM-DD.",
        ),
        (
            ["--date", "2026-03-10", "--until", "2026-03-09"],
            "De einddatum 2026-03-09 ligt voor de begindatum 2026-03-10.",
        ),
        (
            ["--date", "2026-03-21"],
            "2026-03-21 ligt na vandaag (2026-03-20); de kalender loopt niet vooruit.",
        ),
        (
            ["--date", "2026-03-19", "--until", "2026-03-21"],
            "2026-03-21 ligt na vandaag (2026-03-20); de kalender loopt niet vooruit.",
        ),
        (["--until", "2026-03-10"], "--until werkt alleen samen met --date."),
    ],
    ids=["bad-date", "bad-until", "until-before-date", "future-date", "future-until", "no-date"],
)
def test_run_calendar_refuses_bad_arguments_and_stores_nothing(register_action, args, message):
    action = register_action("test.command")
    before = stored()

    with pytest.raises(CommandError) as excinfo:
        run_calendar(*args)

    assert str(excinfo.value) == message
    assert "\n" not in str(excinfo.value)
    assert stored() == before
    assert action.calls == []


def test_run_calendar_fails_after_printing_when_an_action_fails(register_action):
    def fail(day):
        raise RuntimeError("AFAS niet bereikbaar")

    failing = register_action("test.failing", fail, order=10)
    fine = register_action("test.fine", order=20)
    out = StringIO()

    with pytest.raises(
        CommandError, match=r"^1 actie\(s\) mislukt; zie het overzicht hierboven\.$"
    ):
        call_command("run_calendar", "--date", D.isoformat(), stdout=out, stderr=StringIO())

    output = out.getvalue()
    assert lines_for(output, failing.name) == [
        f"2026-03-10  {failing.name:<40} MISLUKT  (RuntimeError: AFAS niet bereikbaar)"
    ]
    assert lines_for(output, fine.name) == [
        f"2026-03-10  {fine.name:<40} geslaagd  (gedaan voor 2026-03-10)"
    ]


def test_run_calendar_reports_an_exhausted_action_as_failed(register_action, settings):
    settings.CALENDAR_MAX_ATTEMPTS = 1

    def fail(day):
        raise RuntimeError("AFAS niet bereikbaar")

    failing = register_action("test.failing", fail)
    with pytest.raises(CommandError):
        run_calendar("--date", D.isoformat())
    out = StringIO()

    with pytest.raises(CommandError, match=r"^1 actie\(s\) mislukt"):
        call_command("run_calendar", "--date", D.isoformat(), stdout=out, stderr=StringIO())

    assert lines_for(out.getvalue(), failing.name) == [
        f"2026-03-10  {failing.name:<40} MISLUKT, wacht op medewerker"
        "  (RuntimeError: AFAS niet bereikbaar)"
    ]
    assert failing.calls == [D]


def test_run_calendar_as_a_process_exits_non_zero_with_one_readable_line_on_a_bad_date():
    """The real command line: argument errors fail before the (non-test) database is touched."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "afas_sb.settings.test"}

    completed = subprocess.run(
        [sys.executable, "manage.py", "run_calendar", "--date", "2026-13-01"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines() == [
        "CommandError: --date '2026-13-01' is geen datum; gebruik JJJJ-MM-DD."
    ]
    assert completed.stdout == ""
