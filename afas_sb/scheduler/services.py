"""The calendar kernel: run every due action once per date, in date order.

Guarantees, each proven in tests/scheduler:

* once: a (action, date) pair succeeds at most once. The row is unique and is
  locked (``SELECT ... FOR UPDATE SKIP LOCKED``) while the action runs inside
  the same transaction, so a second process skips it and a repeat finds it done;
* in order: a tick starts at the first day that is not complete, so days missed
  while nothing ran are caught up oldest first; an action that fails on a day
  is not run for later days in that tick (it would run out of order), and is
  retried on the next tick, up to CALENDAR_MAX_ATTEMPTS;
* isolated: one action failing never stops the others.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max

from afas_sb import clock
from afas_sb.errors import DomainError

from . import registry
from .models import CalendarDay, CalendarRun

logger = logging.getLogger(__name__)


class Result:
    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already_done"
    FAILED = "failed"
    BUSY = "busy"  # another process holds the run right now
    EXHAUSTED = "exhausted"  # failed too often; waits for staff
    BLOCKED = "blocked"  # an earlier date of this action is not done yet


@dataclass(frozen=True)
class ActionResult:
    day: date
    action: str
    result: str
    outcome: str = ""


def calendar_tick(*, today: date | None = None) -> list[ActionResult]:
    """The nightly entry point: every date from the first unfinished one up to today."""
    today = today or clock.today()
    return calendar_run_range(start=_first_day_to_run(today), end=today)


def calendar_run_range(*, start: date, end: date) -> list[ActionResult]:
    """Run the calendar for each date from ``start`` to ``end``, oldest first."""
    if end < start:
        raise DomainError(f"De einddatum {end} ligt voor de begindatum {start}.")
    results: list[ActionResult] = []
    blocked: set[str] = set()
    day = start
    while day <= end:
        results.extend(_run_day(day, blocked))
        day += timedelta(days=1)
    return results


def calendar_run_retry(*, runs) -> int:
    """Give failed runs a fresh set of attempts; the next tick runs them, in order."""
    return (
        CalendarRun.objects.filter(pk__in=[run.pk for run in runs])
        .exclude(status=CalendarRun.Status.SUCCEEDED)
        .update(status=CalendarRun.Status.PENDING, attempts=0)
    )


def _first_day_to_run(today: date) -> date:
    floor = today - timedelta(days=settings.CALENDAR_MAX_CATCH_UP_DAYS)
    days = CalendarDay.objects.filter(date__lte=today)
    first_open = (
        days.filter(date__gte=floor, completed_at__isnull=True)
        .order_by("date")
        .values_list("date", flat=True)
    ).first()
    if first_open is not None:
        return first_open
    last_seen = days.aggregate(last=Max("date"))["last"]
    if last_seen is not None:
        # After an outage longer than the bound: the last CALENDAR_MAX_CATCH_UP_DAYS
        # days, not none of them.
        return min(max(last_seen + timedelta(days=1), floor), today)
    # A calendar that never ran starts today: it does not invent a past.
    return today


def _run_day(day: date, blocked: set[str]) -> list[ActionResult]:
    CalendarDay.objects.get_or_create(date=day)
    due = [action for action in registry.actions() if action.is_due(day)]
    results = []
    for action in due:
        if action.name in blocked:
            results.append(ActionResult(day, action.name, Result.BLOCKED))
            continue
        result = _run_action(action, day)
        if result.result not in (Result.SUCCEEDED, Result.ALREADY_DONE):
            blocked.add(action.name)
        results.append(result)
    _complete_day_if_done(day, [action.name for action in due])
    return results


def _run_action(action: registry.CalendarAction, day: date) -> ActionResult:
    run, _ = CalendarRun.objects.get_or_create(action=action.name, date=day)
    if run.status == CalendarRun.Status.SUCCEEDED:
        return ActionResult(day, action.name, Result.ALREADY_DONE, run.outcome)
    if _is_exhausted(run):
        return _exhausted(run, action, day)
    started_at = clock.now()
    try:
        with transaction.atomic():
            locked = (
                CalendarRun.objects.select_for_update(skip_locked=True).filter(pk=run.pk).first()
            )
            if locked is None:
                return ActionResult(day, action.name, Result.BUSY)
            if locked.status == CalendarRun.Status.SUCCEEDED:
                return ActionResult(day, action.name, Result.ALREADY_DONE, locked.outcome)
            # Another process may have recorded the last allowed failure since our read.
            if _is_exhausted(locked):
                return _exhausted(locked, action, day)
            outcome = (action.run(day) or "")[:255]
            locked.status = CalendarRun.Status.SUCCEEDED
            locked.attempts = F("attempts") + 1
            locked.outcome = outcome
            locked.error = ""
            locked.started_at = started_at
            locked.finished_at = clock.now()
            locked.save(
                update_fields=[
                    "status",
                    "attempts",
                    "outcome",
                    "error",
                    "started_at",
                    "finished_at",
                ]
            )
    except Exception as exc:
        logger.exception("calendar action %s failed for %s", action.name, day)
        _record_failure(run.pk, started_at, exc)
        return ActionResult(day, action.name, Result.FAILED, f"{type(exc).__name__}: {exc}"[:255])
    logger.info(
        "calendar action done",
        extra={"action": action.name, "day": day.isoformat(), "outcome": outcome},
    )
    return ActionResult(day, action.name, Result.SUCCEEDED, outcome)


def _is_exhausted(run: CalendarRun) -> bool:
    return (
        run.status == CalendarRun.Status.FAILED and run.attempts >= settings.CALENDAR_MAX_ATTEMPTS
    )


def _exhausted(run: CalendarRun, action: registry.CalendarAction, day: date) -> ActionResult:
    last_line = (run.error.strip().splitlines() or [""])[-1]
    return ActionResult(day, action.name, Result.EXHAUSTED, last_line[:255])


def _record_failure(run_pk: int, started_at, exc: Exception) -> None:
    detail = "".join(traceback.format_exception(exc))[-4000:]
    CalendarRun.objects.filter(pk=run_pk).exclude(status=CalendarRun.Status.SUCCEEDED).update(
        status=CalendarRun.Status.FAILED,
        attempts=F("attempts") + 1,
        error=detail,
        started_at=started_at,
        finished_at=clock.now(),
    )


def _complete_day_if_done(day: date, due_names: list[str]) -> None:
    succeeded = CalendarRun.objects.filter(
        date=day, action__in=due_names, status=CalendarRun.Status.SUCCEEDED
    ).count()
    if succeeded == len(due_names):
        CalendarDay.objects.filter(date=day, completed_at__isnull=True).update(
            completed_at=clock.now()
        )
