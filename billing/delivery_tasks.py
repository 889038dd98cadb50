"""Celery tasks for invoice delivery (R10): thin, take ids, call one service.

The state is in InvoiceDelivery, so a lost or duplicated message is harmless:
the sweep (beat, every 5 minutes, and the daily calendar action) sends
whatever is due, and delivery_send skips a row that is not due or is locked.
"""

from celery import shared_task

from .services import delivery


@shared_task(acks_late=True, ignore_result=True)
def invoice_delivery_send(delivery_id: int) -> str:
    """One attempt; retries are the row's own back-off, picked up by the sweep."""
    return delivery.delivery_send(delivery_id=delivery_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def invoice_deliveries_sweep(self) -> str:
    """Send due deliveries in batches; re-enqueue while a full batch came back."""
    result = delivery.deliveries_sweep()
    if result.more and not self.request.is_eager:
        self.apply_async(countdown=1)
    return str(result)
