from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Facturatie")

    def ready(self):
        from licensing.hooks import register_agreement_start_check

        # Registers the billing calendar: invoicing on the 1st, first invoices daily,
        # the September indexation mailing, and direct debits daily.
        from . import (  # noqa: F401
            calendar_actions,
            debits_calendar,
            delivery_calendar,
            indexation_calendar,
        )
        from .services.mandates import require_mandate_for_agreement

        # R12: a direct customer's agreement starts only with an active mandate.
        register_agreement_start_check(require_mandate_for_agreement)
