"""The daily calendar action that sweeps invoice deliveries (R10).

The sweep runs every 5 minutes from beat as well; this daily action is the
safety net when beat is down, and shows the outcome in the calendar's admin.
The calendar runs an action inside a transaction, while a delivery must commit
its SENDING marker before the external call: so the action only enqueues the
sweep, on commit.

Imported from BillingConfig.ready(), which registers it.
"""

from datetime import date

from django.db import transaction

from afas_sb.scheduler.registry import register

from .services.delivery import deliveries_due_ids


@register(
    "billing.invoice_delivery",
    # After the day's invoicing (50, 60) so new invoices go out the same day.
    order=90,
    description="Facturen versturen die nog wachten op verzending (R10)",
)
def invoice_delivery(day: date) -> str:
    from .delivery_tasks import invoice_deliveries_sweep

    due = len(deliveries_due_ids())
    transaction.on_commit(invoice_deliveries_sweep.delay)
    return f"{due} factuur/facturen klaar om te versturen"
