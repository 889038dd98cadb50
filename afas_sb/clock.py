"""The clock: the one way code asks what time or which business day it is.

Business dates are Europe/Amsterdam dates (settings.TIME_ZONE), whatever time
zone a request may have activated for display. Nothing else
in the code base calls ``date.today()`` or ``datetime.now()``: calendars are run
for any date by passing it explicitly, and tests move time with time-machine.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta

from django.utils import timezone

# Only ``replaying`` sets it; per thread and task, so a replay never leaks.
_offset: ContextVar[timedelta] = ContextVar("clock_offset", default=timedelta(0))


def now() -> datetime:
    """The current moment, timezone-aware (UTC)."""
    return timezone.now() + _offset.get()


def today() -> date:
    """Today's business date in Amsterdam.

    Between midnight and 01:00/02:00 Amsterdam time the UTC date is still
    yesterday; the calendar must already see the new day.
    """
    return timezone.localdate(now(), timezone.get_default_timezone())


def local(moment: datetime) -> datetime:
    """A stored (UTC) moment in Amsterdam time, for display and date cut-offs."""
    return timezone.localtime(moment, timezone.get_default_timezone())


def start_of_day(day: date) -> datetime:
    """Midnight at the start of ``day`` in Amsterdam, as an aware datetime.

    Date cut-offs ("before 1 December") compare stored moments with this.
    """
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


@contextmanager
def replaying(moment: datetime) -> Iterator[None]:
    """Inside the block the clock answers as if it were ``moment``, and runs on from there.

    For the demo, which replays past months through the real services: what
    the bank can still reach is decided from ``today()``, so the past can only
    be replayed as the past. Never ahead of the real moment. Django's own
    timestamps (``auto_now``, sessions, mail headers) stay real.
    """
    real = timezone.now()
    if moment > real:
        raise ValueError("the clock is never set ahead of the real moment")
    token = _offset.set(moment - real)
    try:
        yield
    finally:
        _offset.reset(token)
