"""How fast the monthly billing run invoices N agreements, against the raw-insert floor (R7).

    .venv/bin/python -m bench.billing_run --agreements 100000 [--workers 2]
        [--database-url postgres://postgres@127.0.0.1:5432/afas_sb_bench]

PostgreSQL only. Uses a dedicated database (created and migrated when
missing; its data is wiped at the start). It then

1. builds N agreements with 3–5 licence lines each (about 10 % Belgian
   businesses with reverse charge) with bulk inserts, not the services; each
   customer is an entrepreneur billed directly, so it first gets a direct debit
   mandate (R12), and the run plans a debit for every invoice;
2. times the billing run in this process: ``billing_run_start`` and every chunk
   through ``billing_chunk_process``, one after the other;
3. wipes the invoices and times the same run with ``--workers`` processes
   taking chunks in parallel (what Celery workers do);
4. times a raw ``COPY`` of the same invoice, line, VAT and debit rows (as Python
   tuples, through psycopg's ``write_row``) into scratch tables shaped like the
   real ones, indexes included: the floor for writing these rows at all;

and prints invoices per second, queries per chunk, peak memory and the ratio
run/raw. Target for N = 100 000 on 2 cores: the run in ≤ 60 s and within 5× of
the raw floor.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import time
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._database import QueryCounter, ensure_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/afas_sb_bench"
PERIOD = date(2027, 1, 1)
BATCH = 5000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agreements", type=int, default=10_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel run")
    parser.add_argument("--seed", type=int, default=2027)
    return parser.parse_args()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "afas_sb.settings.dev"
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def wipe(*, invoices_only: bool = False) -> None:
    from django.db import connection

    tables = ["billing_numberseries", "billing_billingrun", "billing_invoice", "audit_auditevent"]
    if not invoices_only:
        tables += ["licensing_organisation", "licensing_pricelist", "licensing_component"]
        tables += ["licensing_product", "bench_invoice", "bench_line", "bench_vat", "bench_debit"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [tables],
        )
        existing = [row[0] for row in cursor.fetchall()]
        if existing:
            cursor.execute(f"TRUNCATE {', '.join(existing)} RESTART IDENTITY CASCADE")


# Checksum-valid demo accounts: a mandate's IBAN need not be unique, only valid.
MANDATE_IBANS = {"NL": ("NL91ABNA0417164300", "ABNANL2A"), "BE": ("BE71096123456769", "GKCCBEBB")}


def build(count: int, seed: int) -> None:
    """N organisations, each with a mandate and one agreement of 3–5 lines, in bulk."""
    from django.db import connection

    from afas_sb import clock
    from billing.models import Mandate
    from licensing.models import (
        Agreement,
        Component,
        LicenceLine,
        Organisation,
        Price,
        PriceList,
        Product,
    )

    rng = random.Random(seed)  # noqa: S311 (reproducible data, not security)
    product = Product.objects.create(code="afas-sb", name="AFAS SB")
    rows = [
        ("base", "Basislicentie", "base", "licentie", "39.00"),
        ("users", "Gebruiker", "user", "gebruiker", "12.50"),
        ("administrations", "Extra administratie", "administration", "administratie", "9.95"),
        ("archive", "Archieflicentie", "archive", "administratie", "2.50"),
        ("view_only", "Inkijklicentie", "view_only", "licentie", "7.50"),
    ]
    components = Component.objects.bulk_create(
        Component(product=product, code=code, name=name, kind=kind, unit=unit, position=i)
        for i, (code, name, kind, unit, _price) in enumerate(rows, start=1)
    )
    price_list = PriceList.objects.create(
        name="Prijslijst 2027", valid_from=date(2027, 1, 1), status=PriceList.Status.APPROVED
    )
    Price.objects.bulk_create(
        Price(price_list=price_list, component=component, unit_price=Decimal(row[4]))
        for component, row in zip(components, rows, strict=True)
    )
    for offset in range(0, count, BATCH):
        size = min(BATCH, count - offset)
        organisations = []
        for n in range(offset, offset + size):
            belgian = n % 10 == 9
            organisations.append(
                Organisation(
                    kind=Organisation.Kind.ENTREPRENEUR,
                    legal_name=f"Klant {n} B.V.",
                    kvk_number=f"{n:010d}" if belgian else f"{n:08d}",
                    vat_id=f"BE{n:010d}" if belgian else f"NL{n:09d}B01",
                    country="BE" if belgian else "NL",
                    street="Kerkstraat 1",
                    postcode="1000" if belgian else "1234 AB",
                    city="Brussel" if belgian else "Utrecht",
                    billing_email=f"facturen{n}@example.nl",
                )
            )
        organisations = Organisation.objects.bulk_create(organisations)
        # R12: agreement_create refuses a direct customer without a mandate; these
        # bulk inserts bypass it, so they keep the rule themselves.
        now = clock.now()
        Mandate.objects.bulk_create(
            Mandate(
                organisation=organisation,
                reference=f"SB-{organisation.pk}-1",
                account_holder=organisation.legal_name,
                iban=MANDATE_IBANS[organisation.country][0],
                bic=MANDATE_IBANS[organisation.country][1],
                signed_at=now,
                mandate_text="Doorlopende machtiging SEPA (benchmark)",
            )
            for organisation in organisations
        )
        agreements = Agreement.objects.bulk_create(
            Agreement(
                number=f"SB{offset + i:08d}",
                organisation=organisation,
                invoice_to=organisation,
                start_date=date(2026, 1, 1),
            )
            for i, organisation in enumerate(organisations)
        )
        lines = []
        for agreement in agreements:
            chosen = [components[0], *rng.sample(components[1:], rng.randint(2, 4))]
            lines += [
                LicenceLine(agreement=agreement, component=c, quantity=rng.randint(1, 25))
                for c in chosen
            ]
        LicenceLine.objects.bulk_create(lines)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run_sequential() -> tuple[float, float, int, int]:
    """(start seconds, total seconds, chunks, queries) of a run in this process."""
    from django.db import connection

    from billing.services.runs import (
        billing_chunk_process,
        billing_run_start,
        billing_run_unfinished_chunk_ids,
    )

    counter = QueryCounter()
    began = time.perf_counter()
    run = billing_run_start(period_start=PERIOD, enqueue=False)
    started = time.perf_counter() - began
    chunk_ids = billing_run_unfinished_chunk_ids(run=run)
    with connection.execute_wrapper(counter):
        for chunk_id in chunk_ids:
            outcome = billing_chunk_process(chunk_id=chunk_id)
            assert outcome.result == "done", outcome
    return started, time.perf_counter() - began, len(chunk_ids), counter.count


def _worker_init():
    from django.db import connections

    connections.close_all()  # never share the parent's socket


def _process(chunk_id: int) -> tuple[str, int]:
    from billing.services.runs import billing_chunk_process

    outcome = billing_chunk_process(chunk_id=chunk_id)
    return outcome.result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_parallel(workers: int) -> tuple[float, int]:
    """(total seconds, peak RSS KiB of a worker) of a run with ``workers`` processes."""
    from django.db import connections

    from billing.services.runs import billing_run_start, billing_run_unfinished_chunk_ids

    began = time.perf_counter()
    run = billing_run_start(period_start=PERIOD, enqueue=False)
    chunk_ids = billing_run_unfinished_chunk_ids(run=run)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    peak = 0
    with context.Pool(workers, initializer=_worker_init) as pool:
        for result, rss in pool.imap_unordered(_process, chunk_ids):
            assert result == "done", result
            peak = max(peak, rss)
    return time.perf_counter() - began, peak


def chunk_memory() -> int:
    """Peak Python allocations (bytes) while invoicing one full chunk, by tracemalloc.

    Measured apart (after wiping the invoices): tracemalloc slows Python down.
    """
    from billing.services.runs import billing_chunk_process, billing_run_start

    wipe(invoices_only=True)
    run = billing_run_start(period_start=PERIOD, enqueue=False)
    chunk = run.chunks.order_by("number").first()
    tracemalloc.start()
    outcome = billing_chunk_process(chunk_id=chunk.pk)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome.result == "done" and outcome.invoices == len(chunk.agreement_ids), outcome
    return peak


def raw_copy_floor() -> tuple[float, int, int, int, int]:
    """Seconds to COPY the run's invoice, line, VAT and debit rows into look-alike scratch tables."""
    from django.db import connection

    pairs = [
        ("bench_invoice", "billing_invoice"),
        ("bench_line", "billing_invoiceline"),
        ("bench_vat", "billing_invoicevat"),
        ("bench_debit", "billing_directdebit"),
    ]
    data = {}
    with connection.cursor() as cursor:
        for scratch, real in pairs:
            cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
            cursor.execute(f"CREATE TABLE {scratch} (LIKE {real} INCLUDING ALL)")
            cursor.execute(f"SELECT * FROM {real}")  # noqa: S608 (fixed table names)
            data[scratch] = cursor.fetchall()
    raw = connection.connection  # the psycopg connection under Django's
    began = time.perf_counter()
    with raw.transaction(), raw.cursor() as cursor:
        for scratch, _real in pairs:
            with cursor.copy(f"COPY {scratch} FROM STDIN") as copy:
                for row in data[scratch]:
                    copy.write_row(row)
    elapsed = time.perf_counter() - began
    return elapsed, *(len(data[scratch]) for scratch, _real in pairs)


def main():
    args = parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench/billing_run.py measures PostgreSQL only (row locks, bulk inserts with "
            "RETURNING, COPY); give --database-url postgres://... (SQLite is refused)."
        )
    ensure_database(args.database_url)
    setup_django(args.database_url)
    from django.core.management import call_command

    from billing.models import Invoice
    from billing.services.runs import CHUNK_SIZE

    call_command("migrate", verbosity=0)
    wipe()
    began = time.perf_counter()
    build(args.agreements, args.seed)
    print(f"built {args.agreements:,} agreements in {time.perf_counter() - began:.1f} s")

    started, sequential, chunks, queries = run_sequential()
    invoices = Invoice.objects.count()
    assert invoices == args.agreements, invoices
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    wipe(invoices_only=True)
    parallel, worker_rss = run_parallel(args.workers)
    assert Invoice.objects.count() == args.agreements
    # The floor writes the rows the parallel run wrote, into scratch tables.
    copy_seconds, invoice_rows, line_rows, vat_rows, debit_rows = raw_copy_floor()
    assert debit_rows == args.agreements, debit_rows  # R12: every invoice is collected
    chunk_peak = chunk_memory()

    best = min(sequential, parallel)
    print(f"chunks                   {chunks} of ≤ {CHUNK_SIZE} agreements")
    print(
        f"run, 1 process           {sequential:8.1f} s  {invoices / sequential:10,.0f} invoices/s"
    )
    print(f"  of which start         {started:8.1f} s")
    print(
        f"run, {args.workers} processes         {parallel:8.1f} s  "
        f"{invoices / parallel:10,.0f} invoices/s"
    )
    # COPY statements bypass Django's execute wrappers: four per chunk (invoices, lines, VAT,
    # debits).
    print(f"queries per chunk        {queries / chunks:8.1f}  (+ 4 COPY on PostgreSQL)")
    print(
        f"peak memory              {peak_rss_mib:8.0f} MiB RSS (1 process); "
        f"{worker_rss / 1024:.0f} MiB per worker; "
        f"{chunk_peak / 2**20:.1f} MiB Python allocations per chunk"
    )
    print(
        f"raw COPY floor           {copy_seconds:8.1f} s  "
        f"({invoice_rows:,} invoices, {line_rows:,} lines, {vat_rows:,} VAT rows, "
        f"{debit_rows:,} debits)"
    )
    print(f"ratio run/raw            {best / copy_seconds:8.1f}x  (best run)")


if __name__ == "__main__":
    main()
