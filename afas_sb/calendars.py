"""Business calendars: Dutch working days, SEPA (TARGET2) days, month arithmetic.

Two calendars matter to the terms:

* Dutch working days as the Algemene termijnenwet counts them (art. 3): no
  Saturday or Sunday, and not New Year's Day, Easter Monday, King's Day,
  5 May, Ascension Day, Whit Monday, Christmas or Boxing Day. Termination
  cut-offs (R14) count in these days.
* TARGET2 business days, on which SEPA direct debits settle (R12).

The results of these functions decide end dates and collection dates: they
must never change for a given input. Change them only with a rule change and a
test that names the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.easter import easter
from dateutil.relativedelta import relativedelta


class BusinessCalendar:
    """Weekdays minus a set of holidays, with the arithmetic every rule needs."""

    name = "abstract"

    def holidays_in(self, year: int) -> dict[date, str]:
        raise NotImplementedError

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _holiday_dates(self, day.year)

    def add(self, day: date, count: int) -> date:
        """The business day ``count`` business days after ``day`` (before, if negative).

        ``day`` itself is not counted, so add(Friday, 1) is the next Monday.
        """
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        current = day
        while remaining:
            current += timedelta(days=step)
            if self.is_business_day(current):
                remaining -= 1
        return current

    def before(self, day: date, count: int) -> date:
        """The business day that lies ``count`` business days before ``day``."""
        if count < 0:
            raise ValueError("count must not be negative")
        return self.add(day, -count)

    def on_or_after(self, day: date) -> date:
        """``day`` when it is a business day, else the first business day after it."""
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def on_or_before(self, day: date) -> date:
        while not self.is_business_day(day):
            day -= timedelta(days=1)
        return day

    def between(self, start: date, end: date) -> int:
        """Business days in the half-open range (start, end]."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            count += self.is_business_day(current)
        return count


class DutchWorkingDays(BusinessCalendar):
    """Working days under the Algemene termijnenwet.

    Built on the `holidays` library's NL calendar, adjusted here and only here:
    the library lists Good Friday (not a holiday under the Atw) and 5 May only
    in lustrum years (the Atw names 5 May every year).
    """

    name = "nl-atw"

    def holidays_in(self, year: int) -> dict[date, str]:
        days = dict(holidays.country_holidays("NL", years=year, language="en_US"))
        days.pop(easter(year) - timedelta(days=2), None)  # Good Friday is a working day
        days[date(year, 5, 5)] = "Liberation Day"
        # Easter Sunday and Whit Sunday fall on a Sunday anyway; keeping them is harmless.
        return days


class Target2BusinessDays(BusinessCalendar):
    """Days on which TARGET2 settles SEPA payments (ECB closing days excluded)."""

    name = "target2"

    def holidays_in(self, year: int) -> dict[date, str]:
        return dict(holidays.financial_holidays("XECB", years=year))


@lru_cache(maxsize=256)
def _holiday_dates(calendar: BusinessCalendar, year: int) -> frozenset[date]:
    return frozenset(calendar.holidays_in(year))


NL_WORKING_DAYS = DutchWorkingDays()
TARGET2 = Target2BusinessDays()


def is_working_day(day: date) -> bool:
    return NL_WORKING_DAYS.is_business_day(day)


def add_working_days(day: date, count: int) -> date:
    """Dutch working days after (count > 0) or before (count < 0) ``day``."""
    return NL_WORKING_DAYS.add(day, count)


def working_days_before(day: date, count: int) -> date:
    """The Dutch working day ``count`` working days before ``day``.

    working_days_before(date(2026, 12, 1), 3) is Thursday 26 November 2026.
    """
    return NL_WORKING_DAYS.before(day, count)


def is_sepa_business_day(day: date) -> bool:
    return TARGET2.is_business_day(day)


def sepa_business_day_on_or_after(day: date) -> date:
    """``day`` itself when TARGET2 is open, else the next day it is (a debit's collection date)."""
    return TARGET2.on_or_after(day)


def add_sepa_business_days(day: date, count: int) -> date:
    """The TARGET2 business day ``count`` business days after ``day``."""
    return TARGET2.add(day, count)


def sepa_business_days_before(day: date, count: int) -> date:
    """The TARGET2 business day ``count`` business days before ``day`` (a batch's cut-off)."""
    return TARGET2.before(day, count)


# --- Months ----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A closed range of dates, normally one calendar month."""

    start: date
    end: date

    def __post_init__(self):
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def key(self) -> str:
        """YYYY-MM of the month the period starts in."""
        return f"{self.start:%Y-%m}"

    def next(self) -> Period:
        return month_period(self.end + timedelta(days=1))


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def last_of_month(day: date) -> date:
    return first_of_month(day) + relativedelta(months=1) - timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    return day + relativedelta(months=months)


def next_month_start(day: date) -> date:
    return first_of_month(day) + relativedelta(months=1)


def month_period(day: date) -> Period:
    """The calendar month that contains ``day``."""
    return Period(first_of_month(day), last_of_month(day))


def parse_month(value: str) -> Period:
    """'2027-01' -> the period of January 2027. Raises ValueError on anything else."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", value) if isinstance(value, str) else None
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"'{value}' is not a month in the form YYYY-MM")
    return month_period(date(int(match[1]), int(match[2]), 1))
