from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Klantportal"

    def ready(self):
        from . import calendar_actions  # noqa: F401
