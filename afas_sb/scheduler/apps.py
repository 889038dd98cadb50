from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    name = "afas_sb.scheduler"
    label = "scheduler"
    verbose_name = "Kalender"

    def ready(self):
        from . import builtin_actions  # noqa: F401  (registers the kernel's own actions)
