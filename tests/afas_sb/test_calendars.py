"""Business calendars: Dutch working days (Atw art. 3), TARGET2 days, month arithmetic.

Expected dates are written out by hand (Easter and King's Day tables below), not
derived from dateutil or the holidays library, so a wrong library or a wrong
adjustment in calendars.py fails these tests.
"""

import dataclasses
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afas_sb.calendars import (
    NL_WORKING_DAYS,
    TARGET2,
    Period,
    add_months,
    add_working_days,
    first_of_month,
    is_sepa_business_day,
    is_working_day,
    last_of_month,
    month_period,
    next_month_start,
    parse_month,
    working_days_before,
)

DAY = timedelta(days=1)

# Western Easter Sunday, from published tables.
EASTER = {
    2025: date(2025, 4, 20),
    2026: date(2026, 4, 5),
    2027: date(2027, 3, 28),
    2028: date(2028, 4, 16),
    2029: date(2029, 4, 1),
    2030: date(2030, 4, 21),
}
YEARS = sorted(EASTER)

# 27 April, or 26 April when 27 April is a Sunday (2025). Not moved for a Saturday (2030).
KINGS_DAY = {
    2025: date(2025, 4, 26),
    2026: date(2026, 4, 27),
    2027: date(2027, 4, 27),
    2028: date(2028, 4, 27),
    2029: date(2029, 4, 27),
    2030: date(2030, 4, 27),
}


def good_friday(year: int) -> date:
    return EASTER[year] - 2 * DAY


def easter_monday(year: int) -> date:
    return EASTER[year] + DAY


def ascension_day(year: int) -> date:
    return EASTER[year] + 39 * DAY


def whit_monday(year: int) -> date:
    return EASTER[year] + 50 * DAY


# The days the Algemene termijnenwet (art. 3) names, besides Saturday and Sunday.
ATW_HOLIDAYS = {
    "new_years_day": lambda year: date(year, 1, 1),
    "easter_monday": easter_monday,
    "kings_day": KINGS_DAY.__getitem__,
    "liberation_day": lambda year: date(year, 5, 5),
    "ascension_day": ascension_day,
    "whit_monday": whit_monday,
    "christmas_day": lambda year: date(year, 12, 25),
    "boxing_day": lambda year: date(year, 12, 26),
}

# The days TARGET2 is closed, besides Saturday and Sunday.
TARGET2_CLOSING_DAYS = {
    "new_years_day": lambda year: date(year, 1, 1),
    "good_friday": good_friday,
    "easter_monday": easter_monday,
    "labour_day": lambda year: date(year, 5, 1),
    "christmas_day": lambda year: date(year, 12, 25),
    "boxing_day": lambda year: date(year, 12, 26),
}

# Dutch holidays on which TARGET2 settles.
TARGET2_OPEN_DUTCH_HOLIDAYS = ("kings_day", "liberation_day", "ascension_day", "whit_monday")

MONDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = 0, 3, 4, 5, 6


def days_of(year: int) -> list[date]:
    start = date(year, 1, 1)
    return [start + n * DAY for n in range((date(year + 1, 1, 1) - start).days)]


def test_table_easter_dates_are_sundays_and_derived_feasts_fall_on_their_weekdays():
    # Guards the hand-written tables the other tests trust.
    for year in YEARS:
        assert EASTER[year].weekday() == SUNDAY
        assert good_friday(year).weekday() == FRIDAY
        assert easter_monday(year).weekday() == MONDAY
        assert ascension_day(year).weekday() == THURSDAY
        assert whit_monday(year).weekday() == MONDAY
        assert KINGS_DAY[year].weekday() != SUNDAY


# --- Dutch working days (Atw art. 3) ----------------------------------------------


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("holiday", sorted(ATW_HOLIDAYS))
def test_is_working_day_false_on_every_atw_holiday(holiday, year):
    day = ATW_HOLIDAYS[holiday](year)

    assert not is_working_day(day)
    # Also listed as a holiday, so the test bites when the day falls in a weekend.
    assert day in NL_WORKING_DAYS.holidays_in(year)


@pytest.mark.parametrize("year", YEARS)
def test_is_working_day_non_working_weekdays_are_exactly_the_atw_holidays(year):
    expected = {
        holiday(year) for holiday in ATW_HOLIDAYS.values() if holiday(year).weekday() < SATURDAY
    }

    non_working_weekdays = {
        day for day in days_of(year) if day.weekday() < SATURDAY and not is_working_day(day)
    }

    assert non_working_weekdays == expected


@pytest.mark.parametrize("year", YEARS)
def test_is_working_day_true_on_good_friday(year):
    day = good_friday(year)

    assert is_working_day(day)
    assert day not in NL_WORKING_DAYS.holidays_in(year)


@pytest.mark.parametrize("year", [2026, 2027, 2028])
def test_is_working_day_false_on_5_may_in_a_non_lustrum_year(year):
    day = date(year, 5, 5)
    assert day.weekday() < SATURDAY

    assert not is_working_day(day)


def test_is_working_day_kings_day_2025_is_saturday_26_april():
    assert date(2025, 4, 27).weekday() == SUNDAY
    assert date(2025, 4, 26) in NL_WORKING_DAYS.holidays_in(2025)
    assert date(2025, 4, 27) not in NL_WORKING_DAYS.holidays_in(2025)


def test_is_working_day_kings_day_on_saturday_2030_is_not_moved_to_friday():
    assert date(2030, 4, 27).weekday() == SATURDAY

    assert is_working_day(date(2030, 4, 26))


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 3, 14),  # Saturday
        date(2026, 3, 15),  # Sunday
        date(2027, 12, 25),  # Christmas on a Saturday
    ],
)
def test_is_working_day_false_at_the_weekend(day):
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 3, 16),  # an ordinary Monday
        date(2026, 5, 1),  # Labour Day: not an Atw holiday
        date(2026, 4, 28),  # the day after King's Day
        date(2026, 5, 4),  # the day before 5 May
        date(2026, 5, 15),  # the Friday after Ascension
        date(2026, 12, 24),  # Christmas Eve
        date(2026, 12, 31),  # New Year's Eve
        date(2027, 12, 27),  # Monday after Christmas on a weekend: no substitute day
        date(2028, 1, 3),  # Monday after New Year on a Saturday: no substitute day
    ],
)
def test_is_working_day_true_on_ordinary_and_neighbouring_weekdays(day):
    assert is_working_day(day)


def test_is_working_day_2026_has_254_working_days():
    # 261 weekdays minus 7 weekday holidays (1 Jan, Easter Monday, King's Day,
    # 5 May, Ascension, Whit Monday, Christmas; Boxing Day is a Saturday).
    assert NL_WORKING_DAYS.between(date(2025, 12, 31), date(2026, 12, 31)) == 254


# --- TARGET2 / SEPA -----------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("closing_day", sorted(TARGET2_CLOSING_DAYS))
def test_is_sepa_business_day_false_on_target2_closing_days(closing_day, year):
    day = TARGET2_CLOSING_DAYS[closing_day](year)

    assert not is_sepa_business_day(day)
    assert day in TARGET2.holidays_in(year)


@pytest.mark.parametrize("year", YEARS)
def test_is_sepa_business_day_closed_weekdays_are_exactly_the_target2_closing_days(year):
    expected = {
        closing(year)
        for closing in TARGET2_CLOSING_DAYS.values()
        if closing(year).weekday() < SATURDAY
    }

    closed_weekdays = {
        day for day in days_of(year) if day.weekday() < SATURDAY and not is_sepa_business_day(day)
    }

    assert closed_weekdays == expected


@pytest.mark.parametrize(
    ("holiday", "year"),
    [
        (holiday, year)
        for holiday in TARGET2_OPEN_DUTCH_HOLIDAYS
        for year in YEARS
        if ATW_HOLIDAYS[holiday](year).weekday() < SATURDAY
    ],
)
def test_is_sepa_business_day_true_on_dutch_holidays_target2_keeps_open(holiday, year):
    day = ATW_HOLIDAYS[holiday](year)
    assert not is_working_day(day)

    assert is_sepa_business_day(day)


@pytest.mark.parametrize("day", [date(2026, 3, 14), date(2026, 3, 15)])
def test_is_sepa_business_day_false_at_the_weekend(day):
    assert not is_sepa_business_day(day)


@pytest.mark.parametrize("day", [date(2026, 12, 24), date(2026, 12, 31), date(2026, 3, 16)])
def test_is_sepa_business_day_true_on_christmas_eve_new_years_eve_and_ordinary_days(day):
    assert is_sepa_business_day(day)


def test_is_sepa_business_day_2026_has_256_target2_days():
    # 261 weekdays minus 1 Jan, Good Friday, Easter Monday, 1 May, 25 Dec (26 Dec is a Saturday).
    assert TARGET2.between(date(2025, 12, 31), date(2026, 12, 31)) == 256


def test_r12_collection_date_moves_past_labour_day():
    assert TARGET2.on_or_after(date(2026, 5, 1)) == date(2026, 5, 4)


def test_r12_collection_date_moves_past_good_friday_and_easter_monday():
    assert TARGET2.on_or_after(date(2026, 4, 3)) == date(2026, 4, 7)


def test_r12_collection_on_kings_day_stays_on_kings_day():
    assert TARGET2.on_or_after(date(2026, 4, 27)) == date(2026, 4, 27)
    # The Dutch working-day calendar would move it; SEPA must not.
    assert NL_WORKING_DAYS.on_or_after(date(2026, 4, 27)) == date(2026, 4, 28)


def test_r12_collection_on_liberation_day_ascension_and_whit_monday_stays_put():
    for day in (date(2026, 5, 5), date(2026, 5, 14), date(2026, 5, 25)):
        assert TARGET2.on_or_after(day) == day


def test_r12_collection_date_moves_past_christmas_and_new_year():
    assert TARGET2.on_or_after(date(2026, 12, 25)) == date(2026, 12, 28)
    assert TARGET2.add(date(2025, 12, 24), 1) == date(2025, 12, 29)
    assert TARGET2.add(date(2025, 12, 31), 1) == date(2026, 1, 2)


def test_r12_collection_two_target2_days_after_king_s_day_weekend():
    # Friday 24 April 2026 + 2 TARGET2 days: Monday 27 April (King's Day) counts.
    assert TARGET2.add(date(2026, 4, 24), 2) == date(2026, 4, 28)
    assert add_working_days(date(2026, 4, 24), 2) == date(2026, 4, 29)


# --- R14: termination cut-off -------------------------------------------------------


def test_r14_cutoff_docstring_example_december_2026():
    assert working_days_before(date(2026, 12, 1), 3) == date(2026, 11, 26)


def test_r14_cutoff_counts_kings_day_as_non_working():
    # King's Day Thursday 27 April 2028 and Friday 27 April 2029 are skipped.
    assert working_days_before(date(2028, 5, 1), 3) == date(2028, 4, 25)
    assert working_days_before(date(2029, 5, 1), 3) == date(2029, 4, 25)


def test_r14_cutoff_for_may_2027_is_unaffected_by_kings_day_on_tuesday():
    # 1 May 2027 is a Saturday: Fri 30, Thu 29, Wed 28 April; King's Day (27th) is not reached.
    assert working_days_before(date(2027, 5, 1), 3) == date(2027, 4, 28)


def test_r14_cutoff_for_january_2027_crosses_the_year_boundary():
    assert working_days_before(date(2027, 1, 1), 3) == date(2026, 12, 29)


def test_r14_cutoff_for_january_2026_is_monday_29_december_2025():
    assert working_days_before(date(2026, 1, 1), 3) == date(2025, 12, 29)


def test_r14_cutoff_counts_good_friday_and_skips_easter_monday():
    # 1 April 2027: Wed 31, Tue 30 March, (Easter Monday 29th skipped), Good Friday 26th.
    assert working_days_before(date(2027, 4, 1), 3) == date(2027, 3, 26)
    # 1 April 2029 is Easter Sunday; Good Friday 30 March counts.
    assert working_days_before(date(2029, 4, 1), 3) == date(2029, 3, 28)


def test_r14_cutoff_skips_ascension_day():
    assert working_days_before(date(2025, 6, 1), 3) == date(2025, 5, 27)
    assert working_days_before(date(2030, 6, 1), 3) == date(2030, 5, 28)


def test_r14_cutoff_for_every_month_start_leaves_exactly_two_working_days_in_between():
    for year in YEARS:
        for month in range(1, 13):
            start = date(year, month, 1)
            cutoff = working_days_before(start, 3)

            assert cutoff < start
            assert is_working_day(cutoff)
            assert NL_WORKING_DAYS.between(cutoff, start - DAY) == 2, start


# --- add_working_days / working_days_before ---------------------------------------


@pytest.mark.parametrize(
    ("day", "count", "expected"),
    [
        (date(2026, 3, 13), 1, date(2026, 3, 16)),  # Friday -> Monday
        (date(2026, 3, 14), 1, date(2026, 3, 16)),  # Saturday -> Monday
        (date(2026, 3, 15), 1, date(2026, 3, 16)),  # Sunday -> Monday
        (date(2026, 3, 11), 5, date(2026, 3, 18)),  # a full week
        (date(2026, 3, 11), 10, date(2026, 3, 25)),  # two weekends
        (date(2026, 3, 16), -1, date(2026, 3, 13)),  # Monday -> Friday
        (date(2026, 3, 14), -1, date(2026, 3, 13)),  # Saturday -> Friday
        (date(2026, 3, 18), -5, date(2026, 3, 11)),
        (date(2026, 12, 24), 1, date(2026, 12, 28)),  # Christmas Friday + weekend
        (date(2027, 12, 24), 1, date(2027, 12, 27)),  # Christmas on the weekend
        (date(2025, 12, 24), 3, date(2025, 12, 31)),  # Christmas Thu/Fri + weekend
        (date(2025, 12, 24), 4, date(2026, 1, 2)),  # ... and New Year's Day
        (date(2026, 1, 2), -4, date(2025, 12, 24)),  # back across both
        (date(2026, 4, 24), 1, date(2026, 4, 28)),  # weekend + King's Day Monday
        (date(2026, 4, 24), 7, date(2026, 5, 7)),  # King's Day and 5 May
        (date(2026, 5, 7), -7, date(2026, 4, 24)),
        (date(2026, 5, 13), 1, date(2026, 5, 15)),  # Ascension
        (date(2026, 5, 22), 1, date(2026, 5, 26)),  # Whit Monday
        (date(2026, 4, 2), 1, date(2026, 4, 3)),  # Good Friday counts
        (date(2026, 4, 3), 1, date(2026, 4, 7)),  # Easter Monday does not
        (date(2026, 1, 30), 1, date(2026, 2, 2)),  # month end on a Friday
        (date(2026, 2, 27), 1, date(2026, 3, 2)),
        (date(2026, 3, 2), -1, date(2026, 2, 27)),
    ],
)
def test_add_working_days_skips_weekends_and_holidays(day, count, expected):
    assert add_working_days(day, count) == expected


def test_add_working_days_zero_returns_the_day_itself():
    assert add_working_days(date(2026, 3, 11), 0) == date(2026, 3, 11)
    # Zero steps means no move, even from a non-working day.
    assert add_working_days(date(2026, 3, 14), 0) == date(2026, 3, 14)


@pytest.mark.parametrize(
    ("day", "count", "expected"),
    [
        (date(2026, 12, 1), 3, date(2026, 11, 26)),
        (date(2026, 5, 6), 3, date(2026, 4, 30)),  # 5 May skipped
        (date(2026, 5, 6), 5, date(2026, 4, 28)),  # 5 May and King's Day skipped
        (date(2026, 1, 2), 3, date(2025, 12, 29)),  # New Year's Day skipped
        (date(2025, 12, 29), 1, date(2025, 12, 24)),  # weekend and Christmas skipped
        (date(2026, 3, 1), 1, date(2026, 2, 27)),  # Sunday month start
        (date(2026, 8, 1), 3, date(2026, 7, 29)),  # Saturday month start
        (date(2026, 3, 11), 1, date(2026, 3, 10)),
    ],
)
def test_working_days_before_counts_back(day, count, expected):
    assert working_days_before(day, count) == expected


def test_working_days_before_zero_returns_the_day():
    assert working_days_before(date(2026, 3, 11), 0) == date(2026, 3, 11)


def test_working_days_before_refuses_a_negative_count():
    with pytest.raises(ValueError, match="negative"):
        working_days_before(date(2026, 3, 11), -1)


# --- on_or_after / on_or_before / between --------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 11), date(2026, 3, 11)),
        (date(2026, 3, 14), date(2026, 3, 16)),
        (date(2026, 3, 15), date(2026, 3, 16)),
        (date(2025, 12, 25), date(2025, 12, 29)),
        (date(2026, 4, 27), date(2026, 4, 28)),
        (date(2026, 5, 5), date(2026, 5, 6)),
        (date(2026, 4, 3), date(2026, 4, 3)),  # Good Friday
        (date(2027, 12, 25), date(2027, 12, 27)),
        (date(2028, 1, 1), date(2028, 1, 3)),
    ],
)
def test_business_calendar_on_or_after(day, expected):
    assert NL_WORKING_DAYS.on_or_after(day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 11), date(2026, 3, 11)),
        (date(2026, 3, 15), date(2026, 3, 13)),
        (date(2026, 1, 1), date(2025, 12, 31)),
        (date(2025, 12, 28), date(2025, 12, 24)),
        (date(2026, 5, 5), date(2026, 5, 4)),
        (date(2026, 4, 6), date(2026, 4, 3)),  # Easter Monday -> Good Friday
        (date(2026, 3, 1), date(2026, 2, 27)),
    ],
)
def test_business_calendar_on_or_before(day, expected):
    assert NL_WORKING_DAYS.on_or_before(day) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 11), date(2026, 3, 11), 0),
        (date(2026, 3, 11), date(2026, 3, 12), 1),  # end counts, start does not
        (date(2026, 3, 10), date(2026, 3, 12), 2),
        (date(2026, 3, 13), date(2026, 3, 16), 1),  # Friday -> Monday
        (date(2026, 3, 14), date(2026, 3, 15), 0),  # Saturday -> Sunday
        (date(2026, 3, 9), date(2026, 3, 16), 5),
        (date(2025, 12, 24), date(2026, 1, 2), 4),  # 29, 30, 31 Dec and 2 Jan
        (date(2026, 4, 24), date(2026, 5, 8), 8),  # King's Day and 5 May excluded
        (date(2026, 12, 31), date(2027, 1, 31), 20),  # January 2027
    ],
)
def test_business_calendar_between_counts_the_half_open_range(start, end, expected):
    assert NL_WORKING_DAYS.between(start, end) == expected


# --- properties ------------------------------------------------------------------------

dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2031, 12, 31))
counts = st.integers(min_value=-40, max_value=40)
positive_counts = st.integers(min_value=1, max_value=40)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(day=dates, count=counts.filter(bool))
def test_add_working_days_lands_on_a_working_day(day, count):
    assert is_working_day(add_working_days(day, count))


@PROPERTY_SETTINGS
@given(day=dates, count=counts.filter(bool))
def test_target2_add_lands_on_a_sepa_business_day(day, count):
    assert is_sepa_business_day(TARGET2.add(day, count))


@PROPERTY_SETTINGS
@given(day=dates, count=st.integers(min_value=0, max_value=40))
def test_business_calendar_between_inverts_add(day, count):
    assert NL_WORKING_DAYS.between(day, add_working_days(day, count)) == count


@PROPERTY_SETTINGS
@given(day=dates, count=positive_counts)
def test_add_working_days_there_and_back_returns_to_the_nearest_working_day(day, count):
    assert add_working_days(add_working_days(day, count), -count) == NL_WORKING_DAYS.on_or_before(
        day
    )
    assert add_working_days(add_working_days(day, -count), count) == NL_WORKING_DAYS.on_or_after(
        day
    )


@PROPERTY_SETTINGS
@given(day=dates, count=counts)
def test_add_working_days_is_strictly_increasing_in_count(day, count):
    assert add_working_days(day, count) < add_working_days(day, count + 1)


@PROPERTY_SETTINGS
@given(
    day=dates,
    first=st.integers(min_value=0, max_value=20),
    second=st.integers(min_value=0, max_value=20),
    sign=st.sampled_from([1, -1]),
)
def test_add_working_days_composes_for_steps_in_one_direction(day, first, second, sign):
    first, second = sign * first, sign * second
    assert add_working_days(day, first + second) == add_working_days(
        add_working_days(day, first), second
    )


@PROPERTY_SETTINGS
@given(day=dates, count=st.integers(min_value=0, max_value=40))
def test_working_days_before_equals_adding_a_negative_count(day, count):
    assert working_days_before(day, count) == add_working_days(day, -count)


@PROPERTY_SETTINGS
@given(day=dates)
def test_business_calendar_on_or_after_and_on_or_before_skip_only_non_working_days(day):
    after = NL_WORKING_DAYS.on_or_after(day)
    before = NL_WORKING_DAYS.on_or_before(day)

    assert before <= day <= after
    assert is_working_day(after)
    assert is_working_day(before)
    assert NL_WORKING_DAYS.between(before, after) == (0 if is_working_day(day) else 1)


# --- months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 17), date(2026, 3, 1)),
        (date(2026, 3, 1), date(2026, 3, 1)),
        (date(2026, 12, 31), date(2026, 12, 1)),
    ],
)
def test_first_of_month(day, expected):
    assert first_of_month(day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 1, 15), date(2026, 1, 31)),
        (date(2026, 4, 1), date(2026, 4, 30)),
        (date(2026, 12, 31), date(2026, 12, 31)),
        (date(2027, 2, 1), date(2027, 2, 28)),  # not a leap year
        (date(2028, 2, 1), date(2028, 2, 29)),  # leap year
        (date(2100, 2, 10), date(2100, 2, 28)),  # century, not a leap year
        (date(2000, 2, 10), date(2000, 2, 29)),  # divisible by 400, a leap year
    ],
)
def test_last_of_month(day, expected):
    assert last_of_month(day) == expected


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # clamps once, at the target month
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2027, 1, 31), -2, date(2026, 11, 30)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2026, 5, 31), 0, date(2026, 5, 31)),
        (date(2026, 3, 15), -15, date(2024, 12, 15)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 12, 31), date(2027, 1, 1)),
        (date(2026, 12, 1), date(2027, 1, 1)),
        (date(2026, 1, 31), date(2026, 2, 1)),
        (date(2028, 2, 29), date(2028, 3, 1)),
        (date(2026, 6, 15), date(2026, 7, 1)),
    ],
)
def test_next_month_start(day, expected):
    assert next_month_start(day) == expected


def test_month_period_is_the_calendar_month_containing_the_day():
    assert month_period(date(2028, 2, 10)) == Period(date(2028, 2, 1), date(2028, 2, 29))
    assert month_period(date(2026, 12, 31)) == Period(date(2026, 12, 1), date(2026, 12, 31))


@pytest.mark.parametrize(
    ("period", "days"),
    [
        (Period(date(2026, 1, 1), date(2026, 1, 31)), 31),
        (Period(date(2027, 2, 1), date(2027, 2, 28)), 28),
        (Period(date(2028, 2, 1), date(2028, 2, 29)), 29),
        (Period(date(2026, 3, 11), date(2026, 3, 11)), 1),
        (Period(date(2026, 1, 15), date(2026, 1, 31)), 17),
    ],
)
def test_period_days_counts_both_ends(period, days):
    assert period.days == days


def test_period_key_is_the_start_month():
    assert Period(date(2027, 1, 1), date(2027, 1, 31)).key == "2027-01"
    assert Period(date(2026, 11, 15), date(2026, 12, 14)).key == "2026-11"


def test_period_next_is_the_following_calendar_month():
    assert Period(date(2026, 12, 1), date(2026, 12, 31)).next() == Period(
        date(2027, 1, 1), date(2027, 1, 31)
    )
    assert Period(date(2028, 2, 1), date(2028, 2, 29)).next() == Period(
        date(2028, 3, 1), date(2028, 3, 31)
    )
    # A partial first month is followed by the whole next month.
    assert Period(date(2026, 1, 15), date(2026, 1, 31)).next() == Period(
        date(2026, 2, 1), date(2026, 2, 28)
    )


def test_period_contains_both_ends_and_nothing_outside():
    period = Period(date(2026, 3, 1), date(2026, 3, 31))

    assert date(2026, 3, 1) in period
    assert date(2026, 3, 15) in period
    assert date(2026, 3, 31) in period
    assert date(2026, 2, 28) not in period
    assert date(2026, 4, 1) not in period


def test_period_rejects_an_end_before_the_start():
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 3, 2), date(2026, 3, 1))


def test_period_is_immutable():
    period = Period(date(2026, 3, 1), date(2026, 3, 31))

    with pytest.raises(dataclasses.FrozenInstanceError):
        period.end = date(2026, 4, 30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-01", Period(date(2027, 1, 1), date(2027, 1, 31))),
        ("2028-02", Period(date(2028, 2, 1), date(2028, 2, 29))),
        ("2027-12", Period(date(2027, 12, 1), date(2027, 12, 31))),
    ],
)
def test_parse_month_accepts_yyyy_mm(value, expected):
    period = parse_month(value)

    assert period == expected
    assert period.key == value


@pytest.mark.parametrize(
    "value", ["2027-13", "2027-00", "abc", "2027", "", "2027-01-01", "2027-ab", "-01"]
)
def test_parse_month_refuses_anything_else_with_value_error(value):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(value)


@pytest.mark.parametrize("value", ["2027-1", " 2027-01", "20_27-01", "2027-+1", "2027-00", None])
def test_parse_month_is_strict(value):
    with pytest.raises(ValueError):
        parse_month(value)
