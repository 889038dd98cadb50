"""How much the holiday-aware calendars cost over plain weekday arithmetic.

    .venv/bin/python -m bench.working_days [--calls N]

The termination cut-off (R14) and the collection dates (R12) call these for
every agreement in a run, so they must stay cheap. Prints calls per second for
the Dutch (Algemene termijnenwet) and TARGET2 calendars, a weekday-only
baseline, and the ratio calendar/baseline.
"""

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afas_sb.calendars import NL_WORKING_DAYS, TARGET2


def weekdays_only(day: date, count: int) -> date:
    step = 1 if count >= 0 else -1
    remaining = abs(count)
    while remaining:
        day += timedelta(days=step)
        if day.weekday() < 5:
            remaining -= 1
    return day


def measure(label, func, cases):
    start = time.perf_counter()
    for day, count in cases:
        func(day, count)
    elapsed = time.perf_counter() - start
    rate = len(cases) / elapsed
    print(f"{label:<28} {rate:>12,.0f} calls/s  ({elapsed * 1000:,.0f} ms)")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(2026)  # noqa: S311 (reproducible test dates, not security)
    first = date(2025, 1, 1)
    cases = [(first + timedelta(days=rng.randrange(6 * 365)), -3) for _ in range(args.calls)]

    baseline = measure("weekdays only (baseline)", weekdays_only, cases)
    dutch = measure("Dutch working days (Atw)", NL_WORKING_DAYS.add, cases)
    target2 = measure("TARGET2 business days", TARGET2.add, cases)
    print(f"ratio Atw/baseline     {dutch / baseline:.2f}x")
    print(f"ratio TARGET2/baseline {target2 / baseline:.2f}x")


if __name__ == "__main__":
    main()
