from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def calendar_tick() -> int:
    """Beat sends this nightly and hourly; every date it covers is safe to repeat."""
    return len(services.calendar_tick())
