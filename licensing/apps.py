from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Klanten en licenties"

    def ready(self):
        from . import calendar_actions, terms_calendar  # noqa: F401
