"""The clock: the one way code asks what time or which business day it is.

Business dates are Europe/Amsterdam dates (settings.TIME_ZONE), whatever time
zone a request may have activated for display. Nothing else
in the code base calls ``date.today()`` or ``datetime.now()``: calendars are run
for any date by passing it explicitly, and tests move time with time-machine.
"""

from datetime import date, datetime, time

from django.utils import timezone


def now() -> datetime:
    """The current moment, timezone-aware (UTC)."""
    return timezone.now()


def today() -> date:
    """Today's business date in Amsterdam.

    Between midnight and 01:00/02:00 Amsterdam time the UTC date is still
    yesterday; the calendar must already see the new day.
    """
    return timezone.localdate(timezone.now(), timezone.get_default_timezone())


def local(moment: datetime) -> datetime:
    """A stored (UTC) moment in Amsterdam time, for display and date cut-offs."""
    return timezone.localtime(moment, timezone.get_default_timezone())


def start_of_day(day: date) -> datetime:
    """Midnight at the start of ``day`` in Amsterdam, as an aware datetime.

    Date cut-offs ("before 1 December") compare stored moments with this.
    """
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())
