"""Gapless invoice numbers (R9): one counter per series, taken inside the issuing transaction.

Dutch invoicing rules ask for unique numbers that follow each other without gaps
within a series. The counter row of the series is locked (``SELECT ... FOR
UPDATE``) and raised in the same transaction that inserts the invoices, so:

* two transactions never get the same number (the lock serialises them, and
  ``Invoice.number`` is unique as the last guard);
* a transaction that rolls back (a failed chunk, a refused credit note) rolls
  the counter back with it: the numbers it took are handed out again, no hole.

Callers take the numbers as late as they can (after building everything in
memory), because the series lock is held until their transaction commits and
every other issuer of the series waits for it.

NEVER CHANGE the format of existing series: issued numbers are printed on
documents that customers and the tax authority keep for seven years.
"""

from __future__ import annotations

from datetime import date

from django.db import connection

from ..models import Invoice, NumberSeries

NUMBER_DIGITS = 6


def invoice_series(issue_date: date) -> tuple[str, str]:
    """(series key, prefix) of invoices issued on ``issue_date``: ``2027-000001``, per year."""
    return f"invoice-{issue_date.year}", f"{issue_date.year}-"


def credit_note_series(issue_date: date) -> tuple[str, str]:
    """(series key, prefix) of credit notes issued on ``issue_date``: ``C2027-000001``."""
    return f"credit-{issue_date.year}", f"C{issue_date.year}-"


def series_for(kind: str, issue_date: date) -> tuple[str, str]:
    if kind == Invoice.Kind.CREDIT_NOTE:
        return credit_note_series(issue_date)
    return invoice_series(issue_date)


def take_numbers(*, series_key: str, prefix: str, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers of the series; the caller's rollback returns them.

    Must run inside the transaction that stores the numbered documents. The
    series row is created on first use (the first invoice of a new year starts
    at ``000001``); two first users at once are serialised by the unique key.
    """
    assert connection.in_atomic_block, (
        "take_numbers() must run inside the transaction that stores the invoices, "
        "else a failure after it leaves a gap in the series"
    )
    if count <= 0:
        return []
    series = NumberSeries.objects.select_for_update().filter(key=series_key).first()
    if series is None:
        # A concurrent creator's insert waits on the unique key and then fails inside
        # get_or_create's savepoint, which reads the winner's row instead.
        NumberSeries.objects.get_or_create(key=series_key, defaults={"prefix": prefix})
        series = NumberSeries.objects.select_for_update().get(key=series_key)
    first = series.last_number + 1
    series.last_number += count
    series.save(update_fields=["last_number"])
    return [f"{series.prefix}{number:0{NUMBER_DIGITS}d}" for number in range(first, first + count)]
