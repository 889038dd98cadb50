from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Facturatie")

    def ready(self):
        # Registers the billing calendar: invoicing on the 1st, first invoices daily,
        # and the September indexation mailing.
        from . import calendar_actions, delivery_calendar, indexation_calendar  # noqa: F401
