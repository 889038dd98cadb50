"""Importing bank files (R12): stored once, refused safely, exactly once under repeats and races.

The settlement itself (collections, returns, transfers) is in test_settlement,
test_return_reasons and test_transfer_matching; this file is about the import:
the file and its lines stored, the same file or booking twice, two imports at
once, a crash half-way, hostile XML, and a constant number of queries.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from afas_sb.audit.models import AuditEvent
from billing.admin.collections import SUMMARY_LABELS
from billing.bankfiles import BankFileError
from billing.bankfiles.writer import (
    camt053,
    camt054,
    collection,
    debit_return,
    transfer,
)
from billing.models import BankFileImport, BankTransaction, DirectDebit, Invoice, Payment
from billing.services import bank_import
from billing.services.ledger import invoice_balance
from tests.concurrency import Worker, hold_after, signal_before
from tests.factories import OrganisationFactory, UserFactory

from .collection_builders import (
    customer_with_debit,
    debit_at_bank,
    direct_customer,
    media_root,  # noqa: F401 - fixture
    open_invoice,
    read,
    stored_files,
    submitted_batch,
)
from .test_bankfiles import BILLION_LAUGHS, DATA, EXTERNAL_DTD, XXE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _march(time_machine, media_root):  # noqa: F811
    time_machine.move_to(datetime(2027, 3, 5, 9, 0, tzinfo=UTC), tick=False)


def debits(count: int, batch=None) -> list[DirectDebit]:
    batch = batch or submitted_batch()
    made = []
    for n in range(count):
        organisation, mandate = direct_customer(f"Klant {n} {batch.pk} B.V.")
        made.append(debit_at_bank(open_invoice(organisation), mandate, batch=batch))
    return made


def nothing_stored(root) -> bool:
    return (
        not BankFileImport.objects.exists()
        and not BankTransaction.objects.exists()
        and not Payment.objects.exists()
        and stored_files(root) == []
    )


# --- what is stored ------------------------------------------------------------------------


def test_r12_import_stores_the_file_its_lines_and_a_summary(media_root):  # noqa: F811
    _org, _mandate, invoice, debit = customer_with_debit()
    user = UserFactory(is_staff=True)
    data = camt053(
        [
            collection(debit.end_to_end_id, debit.amount),
            transfer("10.00", name="Onbekend", remittance="gift"),
            transfer("5.00", credit=False, name="Bank"),
        ],
        message_id="STMT-20270305-001",
    )

    result = read(data, "../../ABN AMRO 2027-03-05.xml", user=user)

    imported = result.import_file
    assert result.created
    assert (imported.kind, imported.version, imported.message_id) == (
        "camt.053",
        "camt.053.001.02",
        "STMT-20270305-001",
    )
    assert imported.filename == "../../ABN AMRO 2027-03-05.xml"
    assert imported.file.name.startswith("bankfiles/2027/ABN_AMRO_2027-03-05")
    imported.file.open("rb")
    assert imported.file.read() == data
    imported.file.close()
    assert (imported.size, imported.imported_by) == (len(data), user)
    assert result.summary == imported.summary
    assert {k: v for k, v in result.summary.items() if v} == {
        "entries": 3,
        "transactions": 3,
        "new": 3,
        "collected": 1,
        "unmatched": 1,
        "ignored": 1,
    }
    assert BankTransaction.objects.filter(import_file=imported).count() == 3
    event = AuditEvent.objects.get(action="bank_file.imported")
    assert (event.actor_user, event.data["collected"]) == (user, 1)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_r12_entry_not_booked_is_kept_but_settles_nothing():
    _org, _mandate, _invoice, debit = customer_with_debit()

    result = read(camt054([collection(debit.end_to_end_id, debit.amount, status="PDNG")]))

    assert result.summary["ignored"] == 1
    row = BankTransaction.objects.get()
    assert (row.state, row.kind) == ("ignored", "debit_collected")
    assert "PDNG" in row.note
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED
    # The booked line comes later, in another file, and settles.
    assert read(camt053([collection(debit.end_to_end_id, debit.amount)])).summary["collected"] == 1


def test_r12_reversal_by_the_bank_waits_for_staff():
    result = read(camt053([dataclasses.replace(transfer("10.00"), reversal=True)]))

    assert result.summary["unmatched"] == 1
    assert "Correctieboeking" in BankTransaction.objects.get().note


def test_r12_sample_files_written_by_hand_import():
    for name in (
        "camt053_001_02.xml",
        "camt053_001_08.xml",
        "camt054_001_02.xml",
        "pain002_001_03.xml",
        "pain002_001_10.xml",
    ):
        result = read((DATA / name).read_bytes(), name)
        assert result.created, name
    # None of their debits or invoices exist here: everything waits or is set aside.
    assert not Payment.objects.exists()
    assert BankTransaction.objects.filter(state="unmatched").count() >= 1


# --- the same file or booking twice ----------------------------------------------------------


def test_r12_the_same_file_twice_changes_nothing_the_second_time(media_root):  # noqa: F811
    _org, _mandate, _invoice, debit = customer_with_debit()
    data = camt053([collection(debit.end_to_end_id, debit.amount), transfer("10.00")])
    first = read(data)
    before = (BankTransaction.objects.count(), Payment.objects.count(), AuditEvent.objects.count())

    second = read(data, "again.xml")

    assert (first.created, second.created) == (True, False)
    assert second.import_file == first.import_file
    assert second.summary == first.summary
    after = (BankTransaction.objects.count(), Payment.objects.count(), AuditEvent.objects.count())
    assert after == before
    assert len(stored_files(media_root)) == 1


def test_r12_the_same_entries_under_another_checksum_are_duplicates():
    _org, _mandate, _invoice, debit = customer_with_debit()
    data = camt053([collection(debit.end_to_end_id, debit.amount)], message_id="STMT-1")
    read(data)

    # The bank sends the same statement again, reformatted: a new file, the same keys.
    again = read(data.replace(b"\n", b"\r\n"))

    assert again.created
    assert again.summary["duplicates"] == 1
    assert again.summary["new"] == 0
    assert Payment.objects.count() == 1


def same_booking(amount: str, **fields):
    """A transfer as the bank reports it in every file: its own reference stays the same."""
    return dataclasses.replace(
        transfer(amount, **fields), servicer_reference="ABN-SCT-20270304-0042"
    )


def test_r12_the_same_transfer_in_a_camt054_then_the_camt053_is_booked_once():
    invoice = open_invoice(OrganisationFactory(legal_name="Kapsalon Knip"))  # 92.57
    entry = same_booking("92.57", name="Kapsalon Knip", remittance=f"Factuur {invoice.number}")

    intraday = read(camt054([entry]), "intraday.xml")
    statement = read(camt053([entry]), "statement.xml")

    assert intraday.summary["transfers_matched"] == 1
    assert (statement.summary["transfers_matched"], statement.summary["duplicates"]) == (0, 1)
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert invoice_balance(invoice).owed == Decimal("0.00")
    repeat = BankTransaction.objects.get(import_file=statement.import_file)
    assert (repeat.state, repeat.kind, repeat.invoice) == ("ignored", "transfer_in", invoice)
    assert "al ingelezen (intraday.xml)" in repeat.note


def test_r12_the_same_unknown_transfer_in_two_files_waits_in_the_queue_once():
    entry = same_booking("40.00", name="Onbekend", remittance="gift")

    read(camt054([entry]))
    read(camt053([entry], version="08"))

    assert BankTransaction.objects.filter(state="unmatched").count() == 1
    assert BankTransaction.objects.filter(state="ignored").count() == 1


def test_r12_a_transfer_reported_twice_in_one_file_is_booked_once():
    invoice = open_invoice(OrganisationFactory(legal_name="Kapsalon Knip"))
    entry = same_booking("92.57", name="Kapsalon Knip", remittance=f"Factuur {invoice.number}")

    result = read(camt053([entry, entry]))

    assert (result.summary["transfers_matched"], result.summary["duplicates"]) == (1, 1)
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert "eerder in dit bestand" in BankTransaction.objects.get(state="ignored").note


def test_r12_two_equal_transfers_with_their_own_bank_references_are_both_booked():
    """Only the bank's reference says "the same booking": equal amounts, names and days don't."""
    invoice = open_invoice(OrganisationFactory(legal_name="Kapsalon Knip"))
    pay = transfer("50.00", name="Kapsalon Knip", remittance=f"Factuur {invoice.number}")

    read(camt054([pay]))
    read(camt053([pay, pay]))

    assert Payment.objects.filter(invoice=invoice).count() == 3
    assert invoice_balance(invoice).owed == Decimal("92.57") - Decimal("150.00")


def test_r12_summary_keys_cover_every_counter_the_import_writes():
    """A return on an invoice a transfer paid earlier in the file is 'settled'; the summary,
    its keys and the admin's labels agree on it."""
    _org, _mandate, invoice, debit = customer_with_debit()

    result = read(
        camt053(
            [
                collection(debit.end_to_end_id, debit.amount),
                transfer("92.57", remittance=f"Factuur {invoice.number}"),
                debit_return(debit.end_to_end_id, debit.amount, "AM04"),
            ]
        )
    )

    assert result.summary["settled"] == 1
    assert list(result.summary) == list(bank_import.SUMMARY_KEYS)
    assert set(SUMMARY_LABELS) == set(bank_import.SUMMARY_KEYS)


def test_r12_crash_half_way_leaves_nothing_and_the_reimport_does_it_once(
    monkeypatch,
    media_root,  # noqa: F811
):
    _org, _mandate, invoice, debit = customer_with_debit()
    data = camt053([collection(debit.end_to_end_id, debit.amount)])

    def crash(**kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(bank_import, "batches_refresh", crash)
    with pytest.raises(RuntimeError):
        read(data)

    assert nothing_stored(media_root)
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED

    monkeypatch.undo()
    result = read(data)

    assert result.created and result.summary["collected"] == 1
    assert Payment.objects.filter(debit=debit).count() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_r12_lines_over_chunk_boundaries_settle_like_one_chunk(monkeypatch):
    monkeypatch.setattr(bank_import, "CHUNK_SIZE", 2)
    made = debits(3)
    entries = [collection(d.end_to_end_id, d.amount) for d in made]
    entries.append(debit_return(made[0].end_to_end_id, made[0].amount, "MD06"))

    result = read(camt053(entries))

    assert (result.summary["collected"], result.summary["returned"]) == (3, 1)
    assert sorted(DirectDebit.objects.values_list("status", flat=True)) == [
        "collected",
        "collected",
        "returned",
    ]
    assert made[0].batch.__class__.objects.get(pk=made[0].batch_id).status == "returned"


def test_r12_import_queries_do_not_grow_with_the_number_of_lines():
    few, many = debits(5), debits(30)

    def queries(group):
        data = camt053([collection(d.end_to_end_id, d.amount) for d in group])
        with CaptureQueriesContext(connection) as captured:
            read(data)
        return len(captured)

    assert queries(many) == queries(few)
    assert Payment.objects.count() == 35


# --- refused files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (XXE, "DOCTYPE"),
        (BILLION_LAUGHS, "DOCTYPE"),
        (EXTERNAL_DTD, "DOCTYPE"),
        (b"<Document><BkToCstmrStmt></Document>", "geen geldige XML"),
        (b"<invoice/>", "Onbekend bestandstype"),
        (b"", "leeg"),
    ],
    ids=["xxe", "billion_laughs", "external_dtd", "malformed", "unknown", "empty"],
)
def test_r12_hostile_or_broken_file_is_refused_and_nothing_is_stored(
    data,
    message,
    media_root,  # noqa: F811
):
    with pytest.raises(BankFileError) as caught:
        read(data)

    assert message in caught.value.message
    assert nothing_stored(media_root)


def test_r12_oversized_file_is_refused_and_nothing_is_stored(media_root, settings):  # noqa: F811
    data = camt053([transfer("10.00")])

    with pytest.raises(BankFileError, match="te groot"):
        read(data, max_bytes=len(data) - 1)
    settings.BANK_FILE_MAX_BYTES = 100
    with pytest.raises(BankFileError, match="te groot"):
        read(data)

    assert nothing_stored(media_root)


def test_r12_invalid_amount_anywhere_refuses_the_whole_file(media_root):  # noqa: F811
    _org, _mandate, _invoice, debit = customer_with_debit()
    data = camt053([collection(debit.end_to_end_id, debit.amount), transfer("10.00")])
    data = data.replace(b">10.00<", b">1e1<")

    with pytest.raises(BankFileError, match="Ongeldig bedrag"):
        read(data)

    assert nothing_stored(media_root)
    debit.refresh_from_db()
    assert debit.status == DirectDebit.Status.SUBMITTED


def test_r12_two_statements_with_the_same_id_and_account_are_refused(media_root):  # noqa: F811
    data = camt053([transfer("10.00")])
    start, end = data.index(b"<Stmt>"), data.index(b"</Stmt>") + len(b"</Stmt>")

    with pytest.raises(BankFileError, match="Dubbele boekingsreferentie"):
        read(data[:end] + data[start:end] + data[end:])

    assert nothing_stored(media_root)


# --- two at once (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_two_imports_of_the_same_file_at_once_import_it_once(media_root):  # noqa: F811
    _org, _mandate, invoice, debit = customer_with_debit()
    data = camt053([collection(debit.end_to_end_id, debit.amount), transfer("10.00")])
    first_inserted, first_release, second_waiting = (threading.Event() for _ in range(3))
    insert = 'INSERT INTO "billing_bankfileimport"'

    first = Worker(
        lambda: read(data, "a.xml"), hold_after(insert, first_inserted, first_release)
    ).start()
    assert first_inserted.wait(10)
    second = Worker(lambda: read(data, "b.xml"), signal_before(insert, second_waiting)).start()
    assert second_waiting.wait(10)
    first_release.set()
    results = [first.join(), second.join()]

    assert sorted(r.created for r in results) == [False, True]
    assert results[0].import_file.pk == results[1].import_file.pk
    assert BankFileImport.objects.count() == 1
    assert BankTransaction.objects.count() == 2
    assert Payment.objects.filter(debit=debit).count() == 1
    assert len(stored_files(media_root)) == 1  # the loser's copy is removed
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_the_same_transfer_in_two_files_at_once_is_booked_once():
    """The notification and the statement of one transfer, imported at the same moment: the
    second finds the first's row after the lock, or runs into the unique booking key and
    imports again; either way the transfer is booked once."""
    entry = same_booking("40.00", name="Onbekend", remittance="gift")
    notification, statement = camt054([entry]), camt053([entry])
    done, release, waiting = (threading.Event() for _ in range(3))
    summary_update = 'UPDATE "billing_bankfileimport"'

    first = Worker(lambda: read(notification), hold_after(summary_update, done, release)).start()
    assert done.wait(10)
    second = Worker(lambda: read(statement), signal_before('"booking_key"', waiting)).start()
    assert waiting.wait(10)
    release.set()
    summaries = [first.join().summary, second.join().summary]

    assert [s["unmatched"] for s in summaries] == [1, 0]
    assert summaries[1]["duplicates"] == 1
    assert BankTransaction.objects.filter(state="unmatched").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_a_transfer_booked_by_another_import_meanwhile_is_a_duplicate_after_a_retry():
    """The first import looked the booking up, then the other one stored and committed it:
    the unique booking key refuses the first one's row, and its second go finds it."""
    entry = same_booking("40.00", name="Onbekend", remittance="gift")
    notification, statement = camt054([entry]), camt053([entry])
    looked_up, release = threading.Event(), threading.Event()

    first = Worker(
        lambda: read(notification), hold_after('"booking_key"', looked_up, release)
    ).start()
    assert looked_up.wait(10)
    second = read(statement)
    release.set()
    first_summary = first.join().summary

    assert (second.summary["unmatched"], first_summary["duplicates"]) == (1, 1)
    assert BankTransaction.objects.filter(state="unmatched").count() == 1
    assert BankFileImport.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_r12_the_same_return_in_two_files_at_once_reverses_once():
    _org, _mandate, invoice, debit = customer_with_debit()
    read(camt053([collection(debit.end_to_end_id, debit.amount)]))
    notification = camt054([debit_return(debit.end_to_end_id, debit.amount, "MD06")])
    statement = camt053([debit_return(debit.end_to_end_id, debit.amount, "MD06")])
    locked, release, waiting = (threading.Event() for _ in range(3))

    first = Worker(lambda: read(notification), hold_after("FOR UPDATE", locked, release)).start()
    assert locked.wait(10)
    second = Worker(lambda: read(statement), signal_before("FOR UPDATE", waiting)).start()
    assert waiting.wait(10)
    release.set()
    summaries = [first.join().summary, second.join().summary]

    assert sorted(s["returned"] for s in summaries) == [0, 1]
    assert Payment.objects.filter(debit=debit, kind="debit_reversal").count() == 1
    assert invoice.payments.count() == 2
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert Decimal(sum(p.amount for p in invoice.payments.all())) == Decimal("0.00")
    assert date(2027, 3, 4) in {p.booked_on for p in invoice.payments.all()}
