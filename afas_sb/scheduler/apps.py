from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulerConfig(AppConfig):
    name = "afas_sb.scheduler"
    label = "scheduler"
    verbose_name = _("Kalender")

    def ready(self):
        from . import builtin_actions  # noqa: F401  (registers the kernel's own actions)
