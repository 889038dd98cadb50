"""Celery tasks for collection e-mails (R12): thin, take ids, call one service.

The state is in CollectionNotice, so a lost or duplicated message is harmless:
the 5-minute sweep sends whatever is still pending.
"""

from celery import shared_task

from .services import notices


@shared_task(acks_late=True, ignore_result=True)
def collection_notice_send(notice_id: int) -> str:
    return notices.notice_send(notice_id=notice_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def collection_notices_sweep(self) -> str:
    result = notices.notices_sweep()
    if result.more and not self.request.is_eager:
        self.apply_async(countdown=1)
    return f"{result.sent} sent, {result.pending} pending"
