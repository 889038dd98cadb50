"""The clock: Amsterdam business dates from a UTC now, across midnight and DST changes.

2026 DST changes in Europe/Amsterdam: Sunday 29 March 02:00 CET -> 03:00 CEST
(01:00 UTC) and Sunday 25 October 03:00 CEST -> 02:00 CET (01:00 UTC).
"""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from afas_sb import clock


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_clock_today_is_already_tomorrow_in_amsterdam_before_utc_midnight():
    with time_machine.travel(utc(2026, 11, 30, 23, 30), tick=False):
        assert clock.now().date() == date(2026, 11, 30)  # UTC is still on the 30th

        assert clock.today() == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # winter (CET, UTC+1)
        (utc(2026, 11, 30, 22, 59, 59), date(2026, 11, 30)),
        (utc(2026, 11, 30, 23, 0), date(2026, 12, 1)),
        (utc(2026, 12, 31, 22, 59, 59), date(2026, 12, 31)),
        (utc(2026, 12, 31, 23, 0), date(2027, 1, 1)),
        # summer (CEST, UTC+2)
        (utc(2026, 6, 30, 21, 59, 59), date(2026, 6, 30)),
        (utc(2026, 6, 30, 22, 0), date(2026, 7, 1)),
        (utc(2026, 6, 30, 23, 30), date(2026, 7, 1)),
        # spring forward, 29 March 2026 (23 hours long)
        (utc(2026, 3, 28, 22, 59, 59), date(2026, 3, 28)),
        (utc(2026, 3, 28, 23, 0), date(2026, 3, 29)),
        (utc(2026, 3, 29, 0, 59, 59), date(2026, 3, 29)),  # 01:59:59 CET
        (utc(2026, 3, 29, 1, 0), date(2026, 3, 29)),  # 03:00 CEST
        (utc(2026, 3, 29, 21, 59, 59), date(2026, 3, 29)),
        (utc(2026, 3, 29, 22, 0), date(2026, 3, 30)),
        # fall back, 25 October 2026 (25 hours long)
        (utc(2026, 10, 24, 21, 59, 59), date(2026, 10, 24)),
        (utc(2026, 10, 24, 22, 0), date(2026, 10, 25)),
        (utc(2026, 10, 25, 0, 30), date(2026, 10, 25)),  # 02:30 CEST
        (utc(2026, 10, 25, 1, 30), date(2026, 10, 25)),  # 02:30 CET, the second time
        (utc(2026, 10, 25, 22, 59, 59), date(2026, 10, 25)),
        (utc(2026, 10, 25, 23, 0), date(2026, 10, 26)),
    ],
)
def test_clock_today_is_the_amsterdam_date(moment, expected):
    with time_machine.travel(moment, tick=False):
        assert clock.today() == expected


def test_clock_now_is_aware_utc():
    moment = utc(2026, 3, 29, 1, 30)

    with time_machine.travel(moment, tick=False):
        result = clock.now()

    assert result == moment
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("moment", "local_wall_time", "offset_hours"),
    [
        (utc(2026, 11, 30, 23, 30), datetime(2026, 12, 1, 0, 30), 1),  # noqa: DTZ001
        (utc(2026, 7, 1, 12, 0), datetime(2026, 7, 1, 14, 0), 2),  # noqa: DTZ001
        (utc(2026, 3, 29, 0, 59), datetime(2026, 3, 29, 1, 59), 1),  # noqa: DTZ001
        (utc(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 3, 0), 2),  # noqa: DTZ001
        (utc(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 2, 30), 2),  # noqa: DTZ001
        (utc(2026, 10, 25, 1, 30), datetime(2026, 10, 25, 2, 30), 1),  # noqa: DTZ001
    ],
)
def test_clock_local_shows_a_utc_moment_in_amsterdam_time(moment, local_wall_time, offset_hours):
    result = clock.local(moment)

    # The same instant. (Compare in UTC: Python's == across zones is False for a
    # moment in the repeated hour of 25 October, by PEP 495.)
    assert result.astimezone(UTC) == moment
    assert result.replace(tzinfo=None) == local_wall_time
    assert result.utcoffset() == timedelta(hours=offset_hours)
    assert str(result.tzinfo) == "Europe/Amsterdam"


def test_clock_local_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        clock.local(datetime(2026, 3, 29, 12, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("day", "expected_utc"),
    [
        (date(2026, 3, 29), utc(2026, 3, 28, 23, 0)),  # still CET at midnight
        (date(2026, 3, 30), utc(2026, 3, 29, 22, 0)),  # CEST
        (date(2026, 10, 25), utc(2026, 10, 24, 22, 0)),  # still CEST at midnight
        (date(2026, 10, 26), utc(2026, 10, 25, 23, 0)),  # CET
        (date(2026, 12, 1), utc(2026, 11, 30, 23, 0)),
        (date(2026, 7, 1), utc(2026, 6, 30, 22, 0)),
        (date(2027, 1, 1), utc(2026, 12, 31, 23, 0)),
    ],
)
def test_clock_start_of_day_is_amsterdam_midnight(day, expected_utc):
    result = clock.start_of_day(day)

    assert result.tzinfo is not None
    assert result.astimezone(UTC) == expected_utc
    local = clock.local(result)
    assert local.date() == day
    assert local.time() == time(0, 0)


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 3, 29), 23),
        (date(2026, 10, 25), 25),
        (date(2026, 6, 15), 24),
        (date(2026, 12, 15), 24),
    ],
)
def test_clock_start_of_day_spans_dst_days_of_23_and_25_hours(day, hours):
    # In UTC: subtracting two datetimes with the same tzinfo gives wall-clock time.
    start = clock.start_of_day(day).astimezone(UTC)
    length = clock.start_of_day(day + timedelta(days=1)).astimezone(UTC) - start

    assert length == timedelta(hours=hours)


@pytest.mark.parametrize(
    "day", [date(2026, 3, 29), date(2026, 3, 30), date(2026, 10, 25), date(2026, 10, 26)]
)
def test_clock_today_turns_over_exactly_at_start_of_day(day):
    with time_machine.travel(clock.start_of_day(day) - timedelta(microseconds=1), tick=False):
        assert clock.today() == day - timedelta(days=1)

    with time_machine.travel(clock.start_of_day(day), tick=False):
        assert clock.today() == day


def test_clock_start_of_day_as_cutoff_places_late_utc_evening_in_the_next_day():
    # "Before 1 December": 30 November 23:30 UTC is already 1 December in Amsterdam.
    cutoff = clock.start_of_day(date(2026, 12, 1))

    assert utc(2026, 11, 30, 22, 59, 59) < cutoff
    assert not utc(2026, 11, 30, 23, 30) < cutoff


def test_today_ignores_a_time_zone_activated_for_display():
    import zoneinfo

    from django.utils import timezone

    with time_machine.travel(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), tick=False):
        timezone.activate(zoneinfo.ZoneInfo("America/New_York"))
        try:
            assert clock.today() == date(2026, 12, 1)
        finally:
            timezone.deactivate()


def test_replaying_moves_the_clock_back_for_the_block_only_and_runs_on():
    real = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with time_machine.travel(real, tick=False) as traveller:
        with clock.replaying(datetime(2026, 9, 1, 8, 0, tzinfo=UTC)):
            assert clock.today() == date(2026, 9, 1)
            traveller.shift(timedelta(hours=1))
            assert clock.now() == datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
        assert clock.now() == real + timedelta(hours=1)


def test_replaying_never_sets_the_clock_ahead():
    with time_machine.travel(datetime(2026, 11, 24, 12, 0, tzinfo=UTC), tick=False):
        with pytest.raises(ValueError), clock.replaying(datetime(2026, 11, 25, tzinfo=UTC)):
            pass  # pragma: no cover
        assert clock.today() == date(2026, 11, 24)
