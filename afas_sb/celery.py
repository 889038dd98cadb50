"""The Celery application. Workers and beat import it as `afas_sb`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "afas_sb.settings.dev")

app = Celery("afas_sb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
