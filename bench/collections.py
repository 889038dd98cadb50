"""How fast collections go: a pain.008 of N debits, and a camt.053 of N entries imported (R12).

    .venv/bin/python -m bench.collections --debits 100000   (or: python bench/collections.py)
        [--database-url postgres://postgres@127.0.0.1:5432/afas_sb_bench_collections]

PostgreSQL only. Uses a dedicated database (created and migrated when
missing; its data is wiped at the start) and a temporary MEDIA_ROOT for the
files. It then

1. builds N customers with bulk inserts, not the services: each an
   organisation with an active mandate (a tenth new, so FRST; the rest collected
   on before, RCUR), one open subscription invoice and its scheduled debit;
2. times ``debit_batches_create`` for the debits' batch day: two pain.008 files
   (FRST and RCUR) through ``render_pain008`` (sepaxml, XSD check), stored and
   handed to the outbox; and apart from it ``render_pain008`` alone for N debits;
3. writes a camt.053 of N entries with ``billing.bankfiles.writer`` that settles
   those debits: most collected, 3 % of them returned (AM04, MS03, MD06, AC04),
   transfers for half of the returned invoices (by invoice number in the text,
   in the structured reference, or by amount and name) and a few from unknown
   payers; the rest of the debits stay at the bank for a later statement;
4. times ``bank_file_import`` of it end to end, and the parse alone;
5. imports it again (same bytes: found by checksum) and once more re-sent with
   another checksum (every line found by its key), both must change nothing;

checks the outcome (every invoice paid, reopened or still waiting as it should
be) and prints each figure with its ratio to the budget: 30 s for each of the
pain.008 and the import at N = 100 000 on 2 cores.
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``collections``. Run as a script,
# its folder comes first on sys.path and it would shadow that module for every
# import below; the project root takes the folder's place.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE)] + [
    p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE
]

import argparse  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

from bench._database import QueryCounter, ensure_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/afas_sb_bench_collections"
BUDGET_SECONDS = 30.0
BATCH = 5000
RETURN_SHARE = 0.03  # of the debits: returned by the debtor's bank
REASONS = ("AM04", "MS03", "MD06", "AC04")  # retry, retry once, no retry, mandate invalid
UNKNOWN_SHARE = 0.001  # of the entries: transfers from payers we cannot match
# Of the mandates: collected on before, so their debit is RCUR; the rest are new
# customers (FRST), whose first collection also records the mandate's first use.
RCUR_SHARE = 0.9
MANDATE_IBANS = (("NL91ABNA0417164300", "ABNANL2A"), ("NL20INGB0001234567", "INGBNL2A"))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debits", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--seed", type=int, default=2027)
    return parser.parse_args()


def setup_django(url: str, media_root: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "afas_sb.settings.dev"
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory
    os.environ["MEDIA_ROOT"] = media_root
    os.environ["SEPA_SUBMISSION"] = "outbox"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from afas_sb.celery import app

    # Without Redis, Celery would run the e-mail tasks the import queues (one per
    # returned debit) in this process, inside the timing. In production they go to
    # the broker and a worker sends them: here they go to an in-memory broker.
    app.conf.task_always_eager = False


def wipe() -> None:
    from django.db import connection

    tables = [
        "billing_bankfileimport",
        "billing_debitbatch",
        "billing_invoice",
        "billing_mandate",
        "licensing_organisation",
        "audit_auditevent",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def build(count: int, seed: int):
    """N organisations, each with a mandate, an open invoice and its scheduled debit."""
    from django.db import connection

    from afas_sb import clock
    from afas_sb.money import quantize
    from billing.models import DirectDebit, Invoice, Mandate
    from billing.services.debits import batch_day_for, earliest_collection_date
    from billing.services.issue import buyer_snapshot, seller_snapshot
    from licensing.models import Organisation

    seller = seller_snapshot()
    rng = random.Random(seed)  # noqa: S311 (reproducible data, not security)
    collection_date = earliest_collection_date(clock.today())
    now = clock.now()
    year = collection_date.year
    for offset in range(0, count, BATCH):
        size = min(BATCH, count - offset)
        organisations = Organisation.objects.bulk_create(
            Organisation(
                kind=Organisation.Kind.ENTREPRENEUR,
                legal_name=f"Klant {n} B.V.",
                kvk_number=f"{n:08d}",
                vat_id=f"NL{n:09d}B01",
                country="NL",
                street="Kerkstraat 1",
                postcode="1234 AB",
                city="Utrecht",
                billing_email=f"facturen{n}@example.nl",
            )
            for n in range(offset, offset + size)
        )
        mandates = Mandate.objects.bulk_create(
            Mandate(
                organisation=organisation,
                reference=f"SB-{organisation.pk}-1",
                account_holder=organisation.legal_name,
                iban=MANDATE_IBANS[organisation.pk % 2][0],
                bic=MANDATE_IBANS[organisation.pk % 2][1],
                signed_at=now - timedelta(days=400),
                mandate_text="Doorlopende machtiging SEPA (benchmark)",
                first_collected_at=now - timedelta(days=30) if rng.random() < RCUR_SHARE else None,
            )
            for organisation in organisations
        )
        invoices = []
        for i, organisation in enumerate(organisations):
            net = Decimal(rng.randint(2_000, 90_000)) / 100
            vat = quantize(net * Decimal("0.21"))
            invoices.append(
                Invoice(
                    number=f"{year}-{offset + i + 1:06d}",
                    kind=Invoice.Kind.INVOICE,
                    purpose=Invoice.Purpose.SUBSCRIPTION,
                    status=Invoice.Status.OPEN,
                    organisation=organisation,
                    issue_date=collection_date - timedelta(days=14),
                    due_date=collection_date,
                    net_total=net,
                    vat_total=vat,
                    gross_total=net + vat,
                    vat_note="",
                    buyer_reference=f"SB{offset + i:08d}",
                    **seller,
                    **buyer_snapshot(organisation),
                )
            )
        invoices = Invoice.objects.bulk_create(invoices)
        DirectDebit.objects.bulk_create(
            DirectDebit(
                invoice=invoice,
                organisation_id=invoice.organisation_id,
                mandate=mandate,
                attempt=1,
                amount=invoice.gross_total,
                collection_date=collection_date,
                end_to_end_id=f"{invoice.number}-1",
                prenotified_at=now,
                created_at=now,
            )
            for invoice, mandate in zip(invoices, mandates, strict=True)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return batch_day_for(collection_date)


def create_batches(day):
    """(seconds, batches) of ``debit_batches_create`` for ``day``, submission to the outbox included."""
    from billing.models import DebitBatch
    from billing.services.debit_batches import debit_batches_create

    began = time.perf_counter()
    batches = debit_batches_create(day=day)
    elapsed = time.perf_counter() - began
    # Outside a transaction the outbox submission ran right after the batches committed.
    statuses = set(DebitBatch.objects.values_list("status", flat=True))
    assert statuses == {DebitBatch.Status.SUBMITTED}, statuses
    return elapsed, batches


def render_alone(batch) -> tuple[float, int, int]:
    """(seconds, bytes, debits) of ``render_pain008`` for every debit, as one batch."""
    from django.conf import settings

    from afas_sb import clock
    from billing.models import DirectDebit
    from billing.sepa.pain008 import Pain008Debit, render_pain008
    from billing.services.mandates import creditor_name, sepa_creditor_id

    rows = DirectDebit.objects.order_by("pk").values_list(
        "end_to_end_id",
        "amount",
        "mandate__reference",
        "mandate__signed_at",
        "mandate__account_holder",
        "mandate__iban",
        "mandate__bic",
        "invoice__number",
    )
    debits = [
        Pain008Debit(
            end_to_end_id=e2e,
            amount=amount,
            mandate_id=reference,
            mandate_signed_on=clock.local(signed_at).date(),
            debtor_name=holder,
            debtor_iban=iban,
            debtor_bic=bic,
            remittance=f"Factuur {number} AFAS SB",
        )
        for e2e, amount, reference, signed_at, holder, iban, bic, number in rows
    ]
    began = time.perf_counter()
    content = render_pain008(
        message_id="SB-DD-BENCH-RCUR",
        collection_date=batch.collection_date,
        sequence_type="RCUR",
        creditor_name=creditor_name(),
        creditor_iban=settings.VENDOR_IBAN,
        creditor_bic=settings.VENDOR_BIC,
        creditor_id=sepa_creditor_id(),
        debits=debits,
    )
    return time.perf_counter() - began, len(content), len(debits)


def statement(count: int, seed: int):
    """The camt.053 (bytes) of ``count`` entries, and which debit ended how."""
    from billing.bankfiles import writer
    from billing.models import DirectDebit

    rng = random.Random(seed + 1)  # noqa: S311 (reproducible data, not security)
    debits = list(
        DirectDebit.objects.order_by("pk").values_list(
            "pk", "end_to_end_id", "amount", "invoice__number", "invoice__buyer_name"
        )
    )
    returned = rng.sample(range(len(debits)), round(len(debits) * RETURN_SHARE))
    paid_by_transfer = returned[: len(returned) // 2]
    unknown = round(count * UNKNOWN_SHARE)
    # One line per entry: the debits a return or transfer needs room for wait for
    # tomorrow's statement (still at the bank).
    late = len(returned) + len(paid_by_transfer) + unknown + len(debits) - count
    assert 0 <= late <= len(debits) - len(returned), "too few debits for that many entries"
    waiting = set(rng.sample(sorted(set(range(len(debits))) - set(returned)), late))
    day = DirectDebit.objects.values_list("collection_date", flat=True).first()
    entries = []
    for i, (_pk, e2e, amount, _number, name) in enumerate(debits):
        if i not in waiting:
            entries.append(writer.collection(e2e, amount, name=name, booking_date=day))
    reasons = {}
    for n, i in enumerate(returned):
        _pk, e2e, amount, _number, name = debits[i]
        reasons[i] = REASONS[n % len(REASONS)]
        entries.append(writer.debit_return(e2e, amount, reasons[i], name=name, booking_date=day))
    for n, i in enumerate(paid_by_transfer):
        _pk, _e2e, amount, number, name = debits[i]
        if n % 3 == 0:
            entry = writer.transfer(amount, name=name, remittance=f"Factuur {number}")
        elif n % 3 == 1:
            entry = writer.transfer(amount, name=name, structured_reference=number.replace("-", ""))
        else:
            entry = writer.transfer(amount, name=name.upper().replace(" B.V.", " BV"))
        entries.append(entry)
    for n in range(unknown):
        entries.append(writer.transfer(Decimal("12.34") + n, name=f"Onbekend {n}", remittance=""))
    assert len(entries) == count, len(entries)
    data = writer.camt053(entries)
    by_pk = {debits[i][0]: reasons[i] for i in returned}
    transfer_pks = {debits[i][0] for i in paid_by_transfer}
    waiting_pks = {debits[i][0] for i in waiting}
    return data, by_pk, transfer_pks, waiting_pks, unknown


def timed_import(data: bytes, filename: str):
    from django.conf import settings
    from django.db import connection

    from billing.services.bank_import import bank_file_import

    counter = QueryCounter()
    began = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = bank_file_import(
            data=data, filename=filename, max_bytes=settings.BANK_FILE_MAX_BYTES
        )
    return time.perf_counter() - began, result, counter.count


def timed_parse(data: bytes) -> float:
    """The parse alone, as the import runs it: with the cyclic garbage collector paused."""
    from django.conf import settings

    from billing.bankfiles import parse_bank_file

    gc.disable()
    try:
        began = time.perf_counter()
        parse_bank_file(data, max_bytes=settings.BANK_FILE_MAX_BYTES)
        return time.perf_counter() - began
    finally:
        gc.enable()


def check(count: int, returned: dict[int, str], transfers: set[int], waiting: set[int]) -> dict:
    """The books after the import: what the bank said, exactly once."""
    from django.db.models import Count

    from billing.models import (
        BankTransaction,
        CollectionNotice,
        DebitBatch,
        DirectDebit,
        Invoice,
        Mandate,
        Payment,
    )

    first = DirectDebit.objects.filter(attempt=1)
    statuses = dict(first.values_list("status").annotate(n=Count("pk")).order_by())
    collected = count - len(waiting) - len(returned)
    assert statuses == {
        DirectDebit.Status.COLLECTED: collected,
        DirectDebit.Status.RETURNED: len(returned),
        DirectDebit.Status.SUBMITTED: len(waiting),
    }, statuses
    paid = Invoice.objects.filter(status=Invoice.Status.PAID)
    # Every collected debit's invoice is paid; a returned one only when a transfer paid it.
    assert (
        not first.filter(status=DirectDebit.Status.COLLECTED)
        .exclude(invoice__status=Invoice.Status.PAID)
        .exists()
    )
    assert (
        set(
            first.filter(
                status=DirectDebit.Status.RETURNED, invoice__status=Invoice.Status.PAID
            ).values_list("pk", flat=True)
        )
        == transfers
    )
    assert not first.filter(status=DirectDebit.Status.SUBMITTED, invoice__status="paid").exists()
    assert paid.count() == collected + len(transfers)
    payments = Payment.objects.count()
    assert payments == (count - len(waiting)) + len(returned) + len(transfers), payments
    kinds = dict(Payment.objects.values_list("kind").annotate(n=Count("pk")).order_by())
    assert kinds == {
        Payment.Kind.DIRECT_DEBIT: count - len(waiting),
        Payment.Kind.DEBIT_REVERSAL: len(returned),
        Payment.Kind.TRANSFER: len(transfers),
    }, kinds
    # What a return leads to: AM04/MS03 re-presented, unless a transfer in the same
    # chunk of the file paid first (then, or when one pays later, nothing is collected
    # again); AC04 invalidates the mandate; MD06 asks to pay by transfer.
    retried = [pk for pk, code in returned.items() if code in ("AM04", "MS03")]
    second = dict(DirectDebit.objects.filter(attempt=2).values_list("invoice_id", "status"))
    for invoice_id, invoice_status in first.filter(pk__in=retried).values_list(
        "invoice_id", "invoice__status"
    ):
        if invoice_status == Invoice.Status.OPEN:
            assert second.pop(invoice_id) == DirectDebit.Status.SCHEDULED
        else:
            assert second.pop(invoice_id, "cancelled") == DirectDebit.Status.CANCELLED
    assert not second, second
    invalid = Mandate.objects.filter(status=Mandate.Status.INVALID).count()
    assert invalid == sum(code == "AC04" for code in returned.values())
    notices = CollectionNotice.objects.count()
    unmatched = BankTransaction.objects.filter(state=BankTransaction.State.UNMATCHED).count()
    assert DebitBatch.objects.filter(status=DebitBatch.Status.SUBMITTED).exists() == bool(waiting)
    return {
        "payments": payments,
        "transactions": BankTransaction.objects.count(),
        "paid": paid.count(),
        "unmatched": unmatched,
        "notices": notices,
        "debits": DirectDebit.objects.count(),
    }


def line(label: str, seconds: float, detail: str = "", budget: bool = False) -> None:
    ratio = f"  (budget {BUDGET_SECONDS:.0f} s: {seconds / BUDGET_SECONDS:.2f}x)" if budget else ""
    print(f"{label:<34}{seconds:8.2f} s{ratio}{'  ' + detail if detail else ''}")


def main():
    args = parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench/collections.py measures PostgreSQL only (row locks, COPY); "
            "give --database-url postgres://... (SQLite is refused)."
        )
    media_root = tempfile.mkdtemp(prefix="afas-bench-collections-")
    try:
        run(args, media_root)
    finally:
        shutil.rmtree(media_root, ignore_errors=True)


def run(args, media_root: str) -> None:
    ensure_database(args.database_url)
    setup_django(args.database_url, media_root)
    from django.core.management import call_command

    from billing.models import BankTransaction, Payment

    n = args.debits
    call_command("migrate", verbosity=0)
    wipe()
    began = time.perf_counter()
    day = build(n, args.seed)
    print(f"built {n:,} invoices with a scheduled debit in {time.perf_counter() - began:.1f} s")

    batch_seconds, batches = create_batches(day)
    pain_bytes = sum(batch.file.size for batch in batches)
    render_seconds, render_bytes, rendered = render_alone(batches[0])

    began = time.perf_counter()
    data, returned, transfers, waiting, unknown = statement(n, args.seed)
    write_seconds = time.perf_counter() - began
    parse_seconds = timed_parse(data)
    import_seconds, result, queries = timed_import(data, "camt053-bench.xml")
    summary = result.summary
    assert result.created and summary["new"] == n, summary
    counts = check(n, returned, transfers, waiting)
    assert summary["returned"] == len(returned), summary
    assert summary["transfers_matched"] == len(transfers), summary
    assert summary["unmatched"] == unknown == counts["unmatched"], summary
    assert summary["represented"] + summary["pay_by_transfer"] == counts["notices"], summary
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    again_seconds, again, _q = timed_import(data, "camt053-bench.xml")
    assert not again.created
    resent_seconds, resent, _q = timed_import(data + b"\n", "camt053-bench-resent.xml")
    assert resent.created and resent.summary["duplicates"] == n and resent.summary["new"] == 0
    assert check(n, returned, transfers, waiting) == counts
    assert Payment.objects.count() == counts["payments"]
    assert BankTransaction.objects.count() == counts["transactions"] == n

    kinds = ", ".join(f"{b.sequence_type} {b.debit_count:,}" for b in batches)
    line(
        f"pain.008 {n:,} debits",
        batch_seconds,
        f"{len(batches)} batches ({kinds}), {pain_bytes / 1e6:.0f} MB, "
        f"{n / batch_seconds:,.0f} debits/s",
        budget=True,
    )
    line(
        f"  render_pain008 alone, {rendered:,}",
        render_seconds,
        f"{render_bytes / 1e6:.0f} MB, {rendered / render_seconds:,.0f} debits/s",
    )
    line(f"camt.053 written, {n:,} entries", write_seconds, f"{len(data) / 1e6:.0f} MB")
    line(
        f"camt.053 import, {n:,} entries",
        import_seconds,
        f"{n / import_seconds:,.0f} lines/s, {queries:,} queries + COPY",
        budget=True,
    )
    line("  parse alone", parse_seconds, f"import/parse {import_seconds / parse_seconds:.1f}x")
    line("  same file again (checksum)", again_seconds, "nothing changed")
    line("  re-sent, other checksum", resent_seconds, f"{n:,} duplicates, nothing changed")
    print(
        f"outcome: {summary['collected']:,} collected, {summary['returned']:,} returned "
        f"({summary['represented']:,} re-presented, {summary['pay_by_transfer']:,} asked to "
        f"transfer, {summary.get('settled', 0):,} paid by a transfer before that), "
        f"{summary['transfers_matched']:,} transfers matched, "
        f"{summary['unmatched']:,} unmatched; {len(waiting):,} debits still at the bank"
    )
    print(
        f"books: {counts['payments']:,} payments, {counts['paid']:,} invoices paid, "
        f"{counts['notices']:,} notices queued; peak memory {peak_rss_mib:,.0f} MiB RSS"
    )


if __name__ == "__main__":
    main()
