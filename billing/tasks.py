"""Billing's Celery tasks: thin wrappers that take ids and call one service.

Tasks are sent on commit by the services. A message only nudges: the state
lives in the database (a chunk is pending, done or failed), so a lost message
delays the work and a duplicate one finds the chunk done or locked.
"""

from celery import shared_task

from .services import runs

# Retries for transient database errors only (connection lost, deadlock, failover),
# with back-off: 30 s, 60 s, 120 s. After that the chunk stays visibly failed in
# admin, where staff retry it.
CHUNK_MAX_RETRIES = 3
CHUNK_RETRY_BASE_SECONDS = 30


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=CHUNK_MAX_RETRIES)
def billing_chunk_process(self, chunk_id: int) -> str:
    """Invoice one chunk of a billing run; see billing.services.runs."""
    outcome = runs.billing_chunk_process(chunk_id=chunk_id)
    # Run in-process (eager, development without a broker) there is no worker to come
    # back later: the chunk stays failed, visibly, and the next start sends it again.
    retry = outcome.retryable and not self.request.is_eager
    if retry and self.request.retries < self.max_retries:
        raise self.retry(countdown=CHUNK_RETRY_BASE_SECONDS * 2**self.request.retries)
    return outcome.result


# Celery's autodiscovery imports only ``<app>.tasks``: the tasks kept in their own
# modules are registered by importing them here, so beat's names resolve in a worker.
from . import delivery_tasks, notice_tasks  # noqa: E402, F401
