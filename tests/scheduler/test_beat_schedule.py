from celery.schedules import crontab
from django.conf import settings

from afas_sb.celery import app


def test_r33_beat_runs_the_calendar_nightly_and_hourly_in_amsterdam_time():
    entries = settings.CELERY_BEAT_SCHEDULE
    nightly = entries["calendar-nightly"]

    assert nightly["schedule"] == crontab(hour=0, minute=30)
    assert settings.CELERY_TIMEZONE == "Europe/Amsterdam"
    # What a worker does at start: autodiscovery imports every app's tasks module.
    app.loader.import_default_modules()
    for entry in entries.values():
        assert entry["task"] in app.tasks, f"{entry['task']} is not a registered task"


def test_beat_uses_the_database_scheduler():
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
